/* portmap_proto.h - the two gateway protocols of the port mapper
 * (internal; never installed): NAT-PMP (RFC 6886, libnatpmp;
 * portmap_natpmp.c) and UPnP-IGD (libminiupnpc; portmap_upnp.c). Every
 * call blocks, bounded in time, and is made only from the port mapper's
 * worker thread (portmap.c); nothing here touches the client.
 */
#ifndef RDV_CLIENT_NAT_PORTMAP_PROTO_H
#define RDV_CLIENT_NAT_PORTMAP_PROTO_H

#include <netinet/in.h>
#include <stdint.h>
#include <stddef.h>

#define RDV__PM_WHY_MAX 96           /* a failure's text */

/* A mapping the gateway granted: its public address and lease. */
typedef struct rdv__pm_lease {
    struct sockaddr_in pub;          /* public IPv4 address and port */
    uint32_t lifetime_s;             /* granted; 0: permanent (UPnP) */
} rdv__pm_lease;

/* NAT-PMP: asks the default gateway (UDP 5351) for its public address,
 * then maps UDP `iport` (public port `eport` suggested, 0: any) for
 * `lifetime_s` (> 0). Retransmits per RFC 6886 3.1 (250 ms, doubling) but
 * gives up after `budget_ms` in all. Returns 0 with *out filled, or -1
 * with a reason in why[0..cap) (no gateway, no answer, refused with the
 * result code, a response that does not fit the request). */
int rdv__pm_natpmp_map(uint16_t iport, uint16_t eport, uint32_t lifetime_s, int budget_ms,
                       rdv__pm_lease *out, char *why, size_t cap);

/* NAT-PMP: deletes the mapping of UDP `iport` (lifetime 0). Best effort
 * within budget_ms; returns 0 when the gateway confirmed, -1 otherwise. */
int rdv__pm_natpmp_unmap(uint16_t iport, int budget_ms);

/* An Internet Gateway Device found by SSDP (opaque). */
typedef struct rdv__pm_upnp rdv__pm_upnp;

/* UPnP: SSDP discovery (waits up to delay_ms for answers per search
 * type, two types), then the IGD's description. Returns the IGD or NULL
 * with a reason in why. */
rdv__pm_upnp *rdv__pm_upnp_find(int delay_ms, char *why, size_t cap);

/* UPnP: AddPortMapping UDP `eport` -> (our LAN address):`iport` for
 * lease_s (0 = permanent), then GetExternalIPAddress. `eport` 0 tries
 * iport first and, on a conflict, a few other ports. A gateway that only
 * takes permanent leases (error 725) gets lease 0. Returns 0 with *out,
 * or -1 with a reason. */
int rdv__pm_upnp_map(rdv__pm_upnp *u, uint16_t iport, uint16_t eport, uint32_t lease_s,
                     rdv__pm_lease *out, char *why, size_t cap);

/* UPnP: DeletePortMapping UDP `eport`. 0 or -1. */
int rdv__pm_upnp_unmap(rdv__pm_upnp *u, uint16_t eport);

/* Frees an IGD (NULL is fine). */
void rdv__pm_upnp_free(rdv__pm_upnp *u);

#endif
