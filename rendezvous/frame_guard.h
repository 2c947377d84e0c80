/* frame_guard.h - bounds on WebSocket frames per connection, whatever
 * their kind, so that a flood of tiny frames costs the abuser its
 * connection instead of the loop's time.
 *
 * libwebsockets 4.1.6 parses every frame but bounds none of these: it
 * answers each ping with a pong (dropping a ping only while a pong is
 * still pending) and tells the protocol nothing about pings, hands every
 * unsolicited pong to the protocol callback, and passes every
 * continuation frame, empty ones included (a message that never grows
 * escapes --max-message-bytes). The message rate limit (--rate) counts
 * whole messages only. So the server counts, per connection:
 *
 * - frames it sees that are not whole messages (each fragment of a
 *   fragmented message in LWS_CALLBACK_RECEIVE; whole messages are
 *   bounded already, by --rate or the relay's limits) and each pong
 *   (LWS_CALLBACK_RECEIVE_PONG): over SRV_FRAME_GUARD_MAX in one
 *   SRV_FRAME_GUARD_WINDOW_MS window closes the connection;
 * - bytes it does not see: a check compares what was taken off the
 *   socket (TCP_INFO tcpi_bytes_received less the receive queue, FIONREAD)
 *   since the connection's last check with the payload that reached the
 *   callbacks plus a generous framing allowance (SRV_FRAME_GUARD_FRAME_BYTES
 *   a frame, 1/256 of the payload for TLS records). What is left is pings
 *   and other frames lws handled alone, or bytes lws / OpenSSL read and
 *   hold unparsed. It adds up, less SRV_FRAME_GUARD_DECAY_BYTES per half
 *   second since the last check (a ping every few seconds never adds up);
 *   over SRV_FRAME_GUARD_HIDDEN_BYTES plus that read-ahead slack (a TLS
 *   record, --rx-buffer and 4 KiB) closes the connection. A bare masked
 *   ping is 6 bytes: ~6,000 pings at once, or a steady ~170 a second, with
 *   TLS fewer. The checks run from the connection sweep (conn_sweep.h),
 *   a slice of the connections at a time.
 *
 * Either closes with `error` rate_limited and 1008. A real node sends at
 * most --burst messages at once (default 100), one frame each
 * (librendezvous does not fragment), and a ping every 15 s or so; relay
 * datagrams are whole binary messages, thousands a second at most.
 */
#ifndef SRV_FRAME_GUARD_H
#define SRV_FRAME_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_server;
struct srv_conn;

#define SRV_FRAME_GUARD_MAX 2000         /* frames per window */
#define SRV_FRAME_GUARD_WINDOW_MS 1000
#define SRV_FRAME_GUARD_FRAME_BYTES 64   /* header, mask and TLS record, a frame */
#define SRV_FRAME_GUARD_HIDDEN_BYTES 8192 /* unseen bytes over the slack */
#define SRV_FRAME_GUARD_DECAY_BYTES 512   /* forgiven per half second */
#define SRV_FRAME_GUARD_TLS_RECORD 16709  /* largest TLS record on the wire */


/* Counts `len` payload bytes received for c in one RECEIVE callback (a
 * frame's framing allowance when `frame_end`: lws has none of the frame's
 * payload left), and a fragment when that frame is part of a message of
 * several (`final`: lws_is_final_fragment). Returns true when c may go
 * on; false when over the bound: c is being closed (rate_limited, 1008)
 * and the caller drops the data. */
bool srv_frame_guard_rx(struct srv_server *srv, struct srv_conn *c, size_t len,
                        bool frame_end, bool final);

/* Counts one pong received (as srv_frame_guard_rx). */
bool srv_frame_guard_pong(struct srv_server *srv, struct srv_conn *c);

/* Notes how many bytes c's socket has received when the WebSocket opens
 * (LWS_CALLBACK_ESTABLISHED: the upgrade and a TLS handshake are before). */
void srv_frame_guard_begin(struct srv_conn *c);

/* The check of bytes c's callbacks never saw since its last check
 * (conn_sweep.c), `decay` bytes forgiven for the time since then
 * (SRV_FRAME_GUARD_DECAY_BYTES per half second). Over the bound c is
 * being closed (rate_limited, 1008). */
void srv_frame_guard_check(struct srv_server *srv, struct srv_conn *c, int64_t decay);

#endif
