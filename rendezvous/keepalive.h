/* keepalive.h - WebSocket pings and the idle close of every connection,
 * from the server's sweep (issue 15).
 *
 * lws 4.1.6 can do both per connection (the vhost's
 * retry_and_idle_policy), but it keeps every timer of the loop in one
 * sorted list and each re-arm (at the handshake, at every ping and every
 * pong) walks it: ~45 instructions per connection held, ~900k per re-arm at
 * 19,500 nodes, so an idle server of 19,500 nodes spent 0.7-1 core on it
 * (perf: 77 % in lws_dll2_add_sorted) and a handshake cost grew with the
 * nodes held. Here a connection costs a 4-byte time (in deciseconds) and
 * two flags, and the server a pass over its connections, a slice at a
 * time (conn_sweep.h).
 *
 * The rules are lws' (README --ping-interval, --idle-timeout): a ping when
 * --ping-interval has passed since the connection opened or last answered
 * a ping (a WebSocket pong) and no ping is outstanding since; the
 * connection is dropped (no close handshake: its peer is not answering)
 * once --idle-timeout has passed since then. Any non-empty pong counts
 * (an empty one never reaches the protocol in lws 4.1.6, so the ping
 * carries a payload). Times are as coarse as the sweep's pass (half a
 * second, up to ~4 s at 19,500 connections).
 */
#ifndef SRV_KEEPALIVE_H
#define SRV_KEEPALIVE_H

#include <stdint.h>

#include "rendezvous/conn.h"

struct srv_server;

/* Our ping's payload (echoed by the pong). */
#define SRV_KEEPALIVE_PING "rdv"

/* c's WebSocket is established (now: srv_mono_ms()). */
void srv_keepalive_start(srv_conn *c, int64_t now);

/* c answered a ping (LWS_CALLBACK_RECEIVE_PONG). */
void srv_keepalive_pong(srv_conn *c, int64_t now);

/* Asks for c's ping when one is due, drops c past the idle timeout (now:
 * srv_mono_ms()). From the connection sweep (conn_sweep.h); loop thread. */
void srv_keepalive_check(struct srv_server *srv, srv_conn *c, int64_t now);

/* From c's WRITEABLE callback, before anything else: writes the ping
 * asked for. Returns 0 (written or none due) or -1 (the socket failed:
 * close c). */
int srv_keepalive_write(srv_conn *c);

#endif
