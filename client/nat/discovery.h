/* discovery.h - the client's UDP sockets and NAT discovery (discovery.c;
 * internal): the IPv4 / IPv6 sockets that STUN and every direct path
 * share, the STUN engine (stun_client.h) driven from the service loop, the
 * NAT type found, our candidates (candidates.h), and the NAT fields of the
 * network status. */
#ifndef RDV_CLIENT_NAT_DISCOVERY_H
#define RDV_CLIENT_NAT_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rendezvous/rendezvous.h"

#define RDV__MAX_LOCAL_CANDS 12      /* our gathered candidates */
#define RDV__UDP_BUFFER_BYTES (4 * 1024 * 1024) /* SO_RCVBUF / SO_SNDBUF asked */
#define RDV__STUN_REFRESH_MS 20000   /* keeps the server-reflexive mapping */
#define RDV__STUN_REDISCOVER_MS 300000 /* full discovery again */
#define RDV__STUN_AUX_RX_BUDGET 16   /* datagrams read per call from a second socket */

/* What NAT discovery found (discovery.c), (L). */
typedef struct rdv__natinfo {
    bool done;                      /* finished (even without an answer) */
    bool decided;                   /* the mapping behaviour is known (or
                                     * done): `nat` is symmetric or not for
                                     * good and the server-reflexive address
                                     * is known; offers and answers may go.
                                     * Before done, the filtering part of a
                                     * cone type is the strictest so far. */
    rdv_nat_type nat;
    bool no_nat;
    bool have_mapped;
    struct sockaddr_storage mapped; /* server-reflexive address */
    socklen_t mapped_len;
    char method[160];
    char server[54];                /* "ip:port" that answered */
    int64_t ms;                     /* how long it took, -1 */
} rdv__natinfo;


/* Opens the UDP sockets (create); an explicit cfg.udp_port must bind in
 * every family the host has. Returns 0 or RDV_ERR_IO (errno kept). */
int rdv__discovery_init(rdv_client *c);
/* Closes them and frees discovery state (destroy, after the sessions). */
void rdv__discovery_free(rdv_client *c);
/* A nonblocking UDP socket bound to any:port of `fam` (IPv6: v6-only);
 * -1 with errno on failure. */
int rdv__udp_socket(int fam, uint16_t port);
/* The client's socket of family fam, or -1. */
int rdv__udp_for(rdv_client *c, int fam);
/* The NAT type we use and report: cfg.nat_type, else the discovered one
 * (_locked: L held; the other takes the lock). */
rdv_nat_type rdv__nat_effective(rdv_client *c);
rdv_nat_type rdv__nat_effective_locked(rdv_client *c);
/* Gathers our candidates again now (a port mapping came, changed or
 * went); peers of open sessions learn new addresses. (S) */
void rdv__discovery_regather(rdv_client *c);
/* Starts, refreshes and repeats discovery when due. (S) */
void rdv__discovery_tick(rdv_client *c, int64_t now);
/* A datagram from a UDP socket: true when it was STUN (fed to the
 * engine). (S) */
bool rdv__discovery_on_packet(rdv_client *c, const uint8_t *buf, size_t len,
                              const struct sockaddr_storage *from, socklen_t flen, int64_t now);
/* After the sockets were read: engine timers, and the result once done
 * (then our candidates are gathered). (S) */
void rdv__discovery_after_read(rdv_client *c, int64_t now);
/* Monotonic ms of the next discovery timer, INT64_MAX when none. (S) */
int64_t rdv__discovery_next_due(rdv_client *c);
/* Fills the NAT fields of a network status. (L held) */
void rdv__discovery_status_locked(rdv_client *c, rdv_network_status *st);

#endif
