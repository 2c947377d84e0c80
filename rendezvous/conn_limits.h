/* conn_limits.h - admission limits of the server: the per-connection token
 * bucket (messages per second, burst, sustained flood closes), total
 * connections and connections per source address.
 */
#ifndef RDV_SERVER_CONN_LIMITS_H
#define RDV_SERVER_CONN_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "schema/ids.h" /* and schema/wire_limits.h */

struct lws;
struct sockaddr_storage;
struct rdv_server;
struct rdv_conn;

/* Counter of open connections from one source address. */
typedef struct rdv_ip_entry {
    rdv_hnode node;                /* chains the ips map */
    uint8_t addr[16];              /* IPv6, or IPv4-mapped IPv6 */
    uint32_t count;                /* WebSocket connections (past the upgrade) */
    uint32_t handshakes;           /* connections not yet upgraded (slowloris cap) */
} rdv_ip_entry;

/* Source address of wsi's socket: 16-byte key (IPv4 mapped into IPv6),
 * the text form (IPv4 dotted quad for IPv4 and IPv4-mapped peers) and the
 * port. Returns 0, or -1 when the socket has no peer address. */
int rdv_peer_address(struct lws *wsi, uint8_t key[16], char *text, size_t textlen,
                     uint16_t *port);

/* True when a new WebSocket from wsi's address may be accepted now (not
 * shutting down, under --max-connections and --max-connections-per-ip). */
bool rdv_limits_accept(struct rdv_server *srv, struct lws *wsi);

/* Slowloris guard, for LWS_CALLBACK_FILTER_NETWORK_CONNECTION: false when
 * address `from` already has --max-handshakes-per-ip connections that have
 * not finished the HTTP upgrade (counted, logged at most every 10 s); the
 * caller then refuses the connection. */
bool rdv_limits_handshake_allowed(struct rdv_server *srv, const struct sockaddr_storage *from);

/* Counts a new TCP connection (wsi) as a handshake of its address until
 * rdv_limits_handshake_end(); keeps the entry in wsi's opaque user data.
 * Returns 0, or -1 when out of memory (refuse the connection). */
int rdv_limits_handshake_begin(struct rdv_server *srv, struct lws *wsi);

/* Ends wsi's handshake count (upgrade done, or the connection is gone).
 * Idempotent; nothing for a wsi that was never counted. */
void rdv_limits_handshake_end(struct rdv_server *srv, struct lws *wsi);

/* Counts c as open (per address and in total) and fills its token bucket.
 * Returns 0 or -1 on allocation failure. */
int rdv_limits_attach(struct rdv_server *srv, struct rdv_conn *c);

/* Undoes rdv_limits_attach(); safe when it was never called. */
void rdv_limits_detach(struct rdv_server *srv, struct rdv_conn *c);

/* Takes one token for an incoming message. False: the message must be
 * dropped (an `error` rate_limited was queued, or, when the flood is
 * sustained, the connection is being closed with 1008). */
bool rdv_limits_admit(struct rdv_server *srv, struct rdv_conn *c);

#endif
