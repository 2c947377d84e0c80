/* conn.h - per-connection state of one node's WebSocket.
 *
 * Kept small (it is allocated by libwebsockets for every connection, idle or
 * not): no fixed buffers. The receive buffer exists only while a message
 * split over several receive callbacks is being reassembled; the outbound
 * queue is a list of heap messages with LWS_PRE headroom, bounded in bytes
 * (--send-queue-max). Data is written only from LWS_CALLBACK_SERVER_WRITEABLE.
 * A connection is closed by queueing an `error`, then, once the queue has
 * drained, sending a close frame with the code (srv_conn_close()).
 */
#ifndef SRV_CONN_H
#define SRV_CONN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/errors.h"
#include "rendezvous/hmap.h"
#include "schema/ids.h" /* and schema/wire_limits.h */
#include "schema/message.h"
#include "schema/nat_type.h"

struct lws;
struct srv_server;
struct srv_ip_entry;
struct srv_watchset;
struct srv_conn_cert;
struct srv_replay;
struct srv_vjob;

typedef enum srv_conn_state {
    SRV_CONN_PENDING = 0, /* challenge sent, waiting for hello */
    SRV_CONN_AUTHED,      /* welcome sent; in the node map */
    SRV_CONN_CLOSING      /* error queued; closes when the queue drains */
} srv_conn_state;

/* One queued outbound message; buf holds LWS_PRE bytes, then len bytes. */
typedef struct srv_outmsg {
    struct srv_outmsg *next;
    uint32_t len;
    uint8_t binary;
    uint8_t buf[];
} srv_outmsg;

typedef struct srv_conn {
    struct lws *wsi;
    union {
        struct {
            struct srv_conn *prev, *next;
        } pending;       /* SRV_CONN_PENDING: auth-deadline FIFO */
        srv_hnode node;  /* SRV_CONN_AUTHED: entry of the node map */
    } link;
    srv_outmsg *out_head, *out_tail;
    uint8_t *rx_buf;                 /* only while a message is split */
    struct srv_ip_entry *ip;         /* per-source-address counter */
    struct srv_watchset *watches;    /* NULL until the first watch */
    struct srv_conn_cert *cert;      /* fleet certificate's serial and groups
                                      * (admission.h), set at hello; NULL when
                                      * admitted without one */
    struct srv_replay *replay;       /* signatures seen (replay.h); NULL
                                      * until the first signed message */
    struct srv_vjob *vq_head, *vq_tail; /* messages waiting for a verify
                                      * worker and those after them (vpool.h) */
    int64_t connected_ms;            /* monotonic ms: auth deadline base */
    int64_t bucket_ms;               /* monotonic ms of the last refill */
    uint32_t rx_len, rx_cap;
    uint32_t out_bytes;              /* payload bytes waiting in out_* */
    float tokens;                    /* token bucket */
    float presence_tokens;           /* IDs this node may still look up or
                                      * watch (presence.c) */
    uint32_t rx_debt;                /* bytes taken off the socket the
                                      * callbacks never saw (frame_guard.h) */
    int64_t presence_ms;             /* monotonic ms of its last refill; 0:
                                      * not used yet (full) */
    uint16_t strikes;                /* consecutive rate-limited messages */
    uint32_t frames;                 /* frames in the window (frame_guard.h) */
    uint32_t rx_seen;                /* bytes the callbacks saw since the
                                      * last check (frame_guard.h) */
    uint8_t rx_fragmented;           /* the message being received has had a
                                      * frame without FIN (frame_guard.h) */
    uint8_t channel;                 /* a relay channel (relay_channel.h), not
                                      * a main connection (in padding: no
                                      * bytes per idle node) */
    uint8_t chan_live;               /* channel: relay data for the node goes
                                      * down it (relay_channel.c) */
    int64_t frames_ms;               /* monotonic ms the frame window began */
    uint32_t alive_ds;               /* monotonic deciseconds (ms / 100) of
                                      * the open or the last pong
                                      * (keepalive.h); 0: not yet open */
    uint16_t close_code;             /* nonzero: close after draining */
    uint16_t observed_port;
    uint64_t rx_wire;                /* bytes taken off the socket at the last
                                      * check (frame_guard.h) */
    uint32_t serial;                 /* this connection among the node's
                                      * connections (engine.h): set at hello */
    uint8_t state;                   /* srv_conn_state */
    uint8_t nat_type;                /* rdv_wire_nat (schema/nat_type.h) */
    uint8_t rx_binary;               /* message being reassembled is binary */
    uint8_t close_sent;              /* our close frame is written */
    uint8_t ping_due;                /* a ping to write (keepalive.h) */
    uint8_t ping_sent;               /* our ping is unanswered (keepalive.h) */
    uint16_t vq_count;               /* jobs on vq_* (about SRV_VPOOL_CONN_MAX at most) */
    uint8_t vq_paused;               /* reading paused: vq_* is full */
    uint8_t vq_mark;                 /* vpool.c: in the batch being drained */
    union {
        uint8_t nonce[RDV_NONCE_BYTES];     /* PENDING: the challenge's nonce */
        uint8_t node_id[RDV_NODE_ID_BYTES]; /* AUTHED (and CLOSING after it) */
    };
} srv_conn;

/* lws allocates one per connection: 232 bytes are a 240-byte malloc chunk,
 * one more byte a 256-byte one, 16 bytes more per idle node (issue 15's
 * budget of 2 KiB a node, bench/idle.sh). Grow it on purpose. */
_Static_assert(sizeof(srv_conn) <= 232, "srv_conn grew past a malloc size class");


/* Queues len bytes (text frame, or binary) for c. Over the send cap the
 * queue is dropped and c closed with `slow_consumer`. Returns 0 when
 * queued, -1 when not (closing, over the cap, out of memory). */
int srv_conn_send(struct srv_server *srv, srv_conn *c, const void *data, size_t len,
                  bool binary);

/* Queues a stored message delivered at welcome, exempt from the send cap:
 * the backlog is bounded by --offline-queue-max x --max-message-bytes, and
 * closing the node as a slow consumer would lose messages already taken
 * from the durable queue. Returns 0, or -1 when closing / out of memory. */
int srv_conn_send_backlog(struct srv_server *srv, srv_conn *c, const void *data,
                          size_t len);

/* Wraps body (reference stolen) in an envelope of type and queues it. */
int srv_conn_send_json(struct srv_server *srv, srv_conn *c, rdv_msg_type type,
                       json_t *body);

/* Queues an `error`. message NULL: the code's hint. ref, type, field: NULL
 * or empty to leave out. Counts it in the metrics. */
int srv_conn_send_error(struct srv_server *srv, srv_conn *c, rdv_ec code,
                        const char *message, const char *ref, const char *type,
                        const char *field);

/* Queues an error (unless code is RDV_EC_NONE) and closes c with
 * close_code once everything queued before it is written. Ignores further
 * input. Idempotent: the first close wins. */
void srv_conn_close(struct srv_server *srv, srv_conn *c, rdv_ec code, const char *message,
                    uint16_t close_code);

/* Feeds one receive callback's data. Reassembles split messages and hands
 * every complete one to srv_route_message(). Returns -1 when lws must close
 * the connection now. */
int srv_conn_on_receive(struct srv_server *srv, srv_conn *c, const uint8_t *in, size_t len);

/* Writes the next queued message. Returns -1 when lws must close now. */
int srv_conn_on_writeable(struct srv_server *srv, srv_conn *c);

/* The peer sent a close frame (LWS_CALLBACK_WS_PEER_INITIATED_CLOSE).
 * Returns the callback's result: -1 (hang up) when it answers ours. */
int srv_conn_on_peer_close(srv_conn *c);

/* Frees everything c owns (queues, buffers); the struct itself is lws'. */
void srv_conn_release(srv_conn *c);

/* Lowercase hex of c's node ID into out[65]. */
void srv_conn_node_hex(const srv_conn *c, char out[RDV_NODE_ID_HEXLEN + 1]);

#endif
