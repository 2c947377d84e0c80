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
 *   hold unparsed. It adds up, less SRV_FRAME_GUARD_DECAY_BYTES per
 *   SRV_FRAME_GUARD_ROUND_MS since the last check (a ping every few
 *   seconds never adds up); over SRV_FRAME_GUARD_HIDDEN_BYTES plus that
 *   read-ahead slack (a TLS record, --rx-buffer and 4 KiB) closes the
 *   connection. A bare masked ping is 6 bytes: ~6,000 pings at once, or
 *   a steady ~170 a second, with TLS fewer.
 *
 * The checks are spread out: two system calls per connection, all at
 * once, held the loop for ~60 ms every half second at 19,500 nodes (the
 * p99 of every message then). Every SRV_FRAME_GUARD_TICK_MS the guard
 * checks the next slice of the connections (a pass over all of them every
 * SRV_FRAME_GUARD_ROUND_MS), at most SRV_FRAME_GUARD_PER_TICK at a time:
 * past 2,560 connections a pass takes longer (~4 s at 19,500), and a
 * connection hiding frames is caught within one pass. Connections
 * awaiting their hello are checked (the oldest SRV_FRAME_GUARD_PER_TICK)
 * once a pass; --auth-timeout bounds them anyway.
 *
 * Either closes with `error` rate_limited and 1008. A real node sends at
 * most --burst messages at once (default 100), one frame each
 * (librendezvous does not fragment), and a ping every 15 s or so; relay
 * datagrams are whole binary messages, thousands a second at most.
 */
#ifndef SRV_FRAME_GUARD_H
#define SRV_FRAME_GUARD_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_server;
struct srv_conn;

#define SRV_FRAME_GUARD_MAX 2000         /* frames per window */
#define SRV_FRAME_GUARD_WINDOW_MS 1000
#define SRV_FRAME_GUARD_FRAME_BYTES 64   /* header, mask and TLS record, a frame */
#define SRV_FRAME_GUARD_HIDDEN_BYTES 8192 /* unseen bytes over the slack */
#define SRV_FRAME_GUARD_DECAY_BYTES 512   /* forgiven per SRV_FRAME_GUARD_ROUND_MS */
#define SRV_FRAME_GUARD_TLS_RECORD 16709  /* largest TLS record on the wire */
#define SRV_FRAME_GUARD_TICK_MS 50        /* a slice of the connections checked */
#define SRV_FRAME_GUARD_ROUND_MS 500      /* a pass over all of them, at least */
#define SRV_FRAME_GUARD_PER_TICK 256      /* connections checked per tick, at most */

/* The unseen-bytes check's place in its pass (srv_server.guard). */
typedef struct srv_frame_guard {
    lws_sorted_usec_list_t sul;  /* the tick */
    size_t bucket;               /* the node map's next bucket (hmap.h) */
    int ticks;                   /* ticks into the current pass */
    bool walked;                 /* the pass has been over the whole map */
    int64_t pass_ms;             /* monotonic ms the current pass began */
    int64_t last_pass_ms;        /* how long the previous pass took */
} srv_frame_guard;

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

/* Starts the periodic check of bytes the callbacks never saw (a slice of
 * the open connections every SRV_FRAME_GUARD_TICK_MS, see the top), on
 * srv's loop. */
void srv_frame_guard_start(struct srv_server *srv);

/* Stops it (before the context goes). */
void srv_frame_guard_stop(struct srv_server *srv);

#endif
