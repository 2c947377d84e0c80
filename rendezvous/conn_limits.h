/* conn_limits.h - admission limits of the server: the per-connection token
 * bucket (messages per second, burst, sustained flood closes), total
 * connections and connections per source address.
 */
#ifndef SRV_CONN_LIMITS_H
#define SRV_CONN_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/hmap.h"
#include "schema/ids.h" /* and schema/wire_limits.h */

struct lws;
struct sockaddr_storage;
struct srv_server;
struct srv_conn;

/* Counter of open connections from one source address. */
typedef struct srv_ip_entry {
    srv_hnode node;                /* chains the ips map */
    uint8_t addr[16];              /* IPv6, or IPv4-mapped IPv6 */
    uint32_t count;                /* WebSocket connections (past the upgrade) */
    uint32_t handshakes;           /* connections not yet upgraded (slowloris cap) */
} srv_ip_entry;

/* Source address of wsi's socket: 16-byte key (IPv4 mapped into IPv6),
 * the text form (IPv4 dotted quad for IPv4 and IPv4-mapped peers) and the
 * port. Returns 0, or -1 when the socket has no peer address. */
int srv_peer_address(struct lws *wsi, uint8_t key[16], char *text, size_t textlen,
                     uint16_t *port);

/* True when a new WebSocket from wsi's address may be accepted now (not
 * shutting down, under --max-connections and --max-connections-per-ip). */
bool srv_limits_accept(struct srv_server *srv, struct lws *wsi);

/* Slowloris guard, for LWS_CALLBACK_FILTER_NETWORK_CONNECTION: false when
 * address `from` already has --max-handshakes-per-ip connections that have
 * not finished the HTTP upgrade (counted, logged at most every 10 s); the
 * caller then refuses the connection. */
bool srv_limits_handshake_allowed(struct srv_server *srv, const struct sockaddr_storage *from);

/* Counts a new TCP connection (wsi) as a handshake of its address until
 * srv_limits_handshake_end(); keeps the entry in wsi's opaque user data.
 * Returns 0, or -1 when out of memory (refuse the connection). */
int srv_limits_handshake_begin(struct srv_server *srv, struct lws *wsi);

/* Ends wsi's handshake count (upgrade done, or the connection is gone).
 * Idempotent; nothing for a wsi that was never counted. */
void srv_limits_handshake_end(struct srv_server *srv, struct lws *wsi);

/* Counts c as open (per address and in total) and fills its token bucket.
 * Returns 0 or -1 on allocation failure. */
int srv_limits_attach(struct srv_server *srv, struct srv_conn *c);

/* Undoes srv_limits_attach(); safe when it was never called. */
void srv_limits_detach(struct srv_server *srv, struct srv_conn *c);

/* Takes one token for an incoming message. False: the message must be
 * dropped (an `error` rate_limited was queued, or, when the flood is
 * sustained, the connection is being closed with 1008). */
bool srv_limits_admit(struct srv_server *srv, struct srv_conn *c);

#endif
