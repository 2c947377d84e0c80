/* portmap.h - the port mapper (portmap.c; internal): asks the gateway for
 * a UDP mapping of the client's IPv4 socket with NAT-PMP (RFC 6886), else
 * UPnP-IGD (portmap_proto.h), so that the socket is reachable from anyone
 * at a fixed public address - even behind a symmetric NAT. The mapped
 * address becomes a candidate (serverReflexive, marked portMapped;
 * PROTOCOL.md 14.2) and lets two symmetric NATs connect directly (14.6).
 *
 * Threads: the gateway protocols block (SSDP waits for answers, HTTP to
 * the IGD, NAT-PMP retransmissions), so they run on a worker thread of
 * the client's own, started by the service loop's first pass (never on
 * the critical path of a session: the first path never waits for it).
 * The worker publishes each change under the mapper's mutex and wakes the
 * service thread (rdv__wake), which regathers our candidates. It renews
 * the mapping at half its lifetime and deletes it when the client is
 * destroyed (rdv__portmap_stop joins it; every gateway call is bounded,
 * so that wait is too: at most one call in flight plus the deletion).
 * Lock order: c->lock, then the mapper's mutex; the worker never takes
 * c->lock.
 */
#ifndef RDV_CLIENT_NAT_PORTMAP_H
#define RDV_CLIENT_NAT_PORTMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "client/nat/candidates.h"
#include "rendezvous/rendezvous.h"

#define RDV__PM_LEASE_S 7200          /* lease asked (RFC 6886 3.3 recommends 7200 s) */
#define RDV__PM_NATPMP_BUDGET_MS 1000 /* NAT-PMP: 250 + 500 ms retransmissions */
#define RDV__PM_UPNP_DELAY_MS 500     /* SSDP: wait per search type (two types) */
#define RDV__PM_DELETE_BUDGET_MS 500  /* NAT-PMP deletion on close */
#define RDV__PM_RETRY_MS 120000       /* no gateway answered: search again then */
#define RDV__PM_RENEW_RETRY_MS 5000   /* a renewal failed: search again then */
#define RDV__PM_PERMANENT_CHECK_S 1800 /* a permanent UPnP lease: re-added then */
#define RDV__PM_MIN_RENEW_MS 1000     /* never renew more often than this */

enum { RDV__PM_NONE = 0, RDV__PM_NATPMP = 1, RDV__PM_UPNP = 2 };

/* Starts the worker on the first call when port mapping is on and the
 * client has an IPv4 socket; then takes what the worker published (a new,
 * renewed or lost mapping): our candidates are gathered again and sessions
 * that were relay only start their checks. (S) */
void rdv__portmap_service(rdv_client *c, int64_t now);

/* Stops the worker (destroy): the mapping is deleted at the gateway, the
 * thread joined, the mapper freed. Safe when none was started. */
void rdv__portmap_stop(rdv_client *c);

/* True when the gateway granted a mapping now. (L held) */
bool rdv__portmap_active_locked(rdv_client *c);

/* The mapped address as a candidate (serverReflexive with port_mapped,
 * base `base` (NULL / 0: none), local preference max) into *out. Returns
 * true when there is a mapping. (L held) */
bool rdv__portmap_candidate_locked(rdv_client *c, const struct sockaddr *base,
                                   socklen_t base_len, rdv__cand *out);

/* rdv_client_network_changed(): the mapping is deleted and searched for
 * again (another gateway, another address). */
void rdv__portmap_network_changed(rdv_client *c);

/* Fills the portmap_* fields of a network status. (L held) */
void rdv__portmap_status_locked(rdv_client *c, rdv_network_status *st);

#endif
