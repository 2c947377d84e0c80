/* relay.h - the relay of last resort (PROTOCOL.md section 9): relay
 * sessions between two authenticated nodes, created by a routed relayOpen
 * and opened by the recipient's relayReady, carrying opaque relayData
 * (base64 text frames or binary frames with a 17-byte header) with
 * datagram semantics.
 *
 * State: a session table keyed by the 16-byte session ID and a table of
 * "relay peers" keyed by connection, each with the list of its sessions
 * (for cleanup on disconnect / replacement) and its byte token bucket.
 * A session is OPENING (relayOpen forwarded, waiting for consent) or OPEN
 * (relayReady forwarded); CLOSED sessions are freed at once.
 *
 * Limits (srv_relay_limits): payload per message, sessions per node,
 * relayed bytes per second per node and for the whole server (token
 * buckets), bytes per session (quota) and the idle timeout. Relay data is
 * never buffered without bound: when the receiver's send queue holds more
 * than `queue_threshold` bytes the message is dropped and counted; the rest
 * of the send queue stays free for signaling, which is never dropped so.
 *
 * Everything runs on the event loop thread. The caller (route.c, conn.c,
 * auth.c, server.c) checks sender binding, freshness and signatures of
 * relayOpen / relayReady before handing them here.
 */
#ifndef SRV_RELAY_H
#define SRV_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/conn.h"
#include "rendezvous/hmap.h"
#include "schema/message.h"

struct srv_server;

/* Configured limits (flags --relay-*; README "Configuration"). */
typedef struct srv_relay_limits {
    size_t max_payload;      /* payload bytes per relayData (decoded for text) */
    int max_sessions;        /* per node: sessions it opened + OPEN ones it joined */
    uint64_t rate;           /* payload bytes/s a node may send; 0 = unlimited */
    uint64_t global_rate;    /* payload bytes/s for the server; 0 = unlimited */
    uint64_t quota;          /* payload bytes per session (both ways); 0 = unlimited */
    int64_t idle_timeout_ms; /* OPEN session without data this long is closed */
    int64_t open_timeout_ms; /* OPENING session not answered this long is closed */
    size_t queue_threshold;  /* receiver's queued bytes over which data is dropped */
} srv_relay_limits;

/* Why relay data was not delivered (label `reason` of the drop metrics). */
typedef enum srv_relay_drop {
    SRV_RELAY_DROP_RATE = 0,        /* "rate_limited": sender over --relay-rate */
    SRV_RELAY_DROP_GLOBAL,          /* "global_rate": server over --relay-global-rate */
    SRV_RELAY_DROP_QUOTA,           /* "quota": session over --relay-quota (closed) */
    SRV_RELAY_DROP_CONGESTED,       /* "congested": receiver's send queue over threshold */
    SRV_RELAY_DROP_TOO_LARGE,       /* "too_large": payload over --relay-max-payload */
    SRV_RELAY_DROP_NO_CONSENT,      /* "no_consent": session still OPENING */
    SRV_RELAY_DROP_UNKNOWN_SESSION, /* "unknown_session" */
    SRV_RELAY_DROP_NOT_IN_SESSION,  /* "not_in_session": a third node's data */
    SRV_RELAY_DROP_CLOSING,         /* "closing": receiver's connection is closing */
    SRV_RELAY_DROP__COUNT
} srv_relay_drop;

/* Why a session ended (label `reason` of the close metric; also the
 * relayClose reason the server sends, except BY_PEER which forwards the
 * closer's reason when it gave one). */
typedef enum srv_relay_end {
    SRV_RELAY_END_BY_PEER = 0,   /* "closed_by_peer" */
    SRV_RELAY_END_DISCONNECTED,  /* "peer_disconnected" */
    SRV_RELAY_END_REPLACED,      /* "replaced" */
    SRV_RELAY_END_IDLE,          /* "idle" (also an unanswered relayOpen) */
    SRV_RELAY_END_QUOTA,         /* "quota" */
    SRV_RELAY_END_SHUTDOWN,      /* "shutting_down" */
    SRV_RELAY_END_REVOKED,       /* "revoked": the operator revoked the other side */
    SRV_RELAY_END__COUNT
} srv_relay_end;

typedef struct srv_relay_metrics {
    uint64_t bytes;                                 /* payload bytes forwarded */
    uint64_t messages;                              /* relayData forwarded */
    uint64_t dropped_msgs[SRV_RELAY_DROP__COUNT];
    uint64_t dropped_bytes[SRV_RELAY_DROP__COUNT];  /* payload bytes (0 if unknown) */
    uint64_t opened;                                /* sessions that reached OPEN */
    uint64_t closed[SRV_RELAY_END__COUNT];          /* sessions ended, by reason */
    uint64_t channel_in;                            /* relay data frames received on
                                                     * relay channels (relay_channel.h) */
    uint64_t channel_out;                           /* relay data frames sent down them */
} srv_relay_metrics;

typedef struct srv_relay {
    srv_relay_limits lim;
    srv_hmap sessions;       /* 16-byte session ID -> srv_relay_session */
    srv_hmap peers;          /* srv_conn pointer -> srv_relay_peer */
    uint64_t n_opening;      /* gauge */
    uint64_t n_open;         /* gauge */
    int64_t global_tokens;   /* global token bucket (bytes) */
    int64_t global_ms;       /* its last refill (monotonic ms) */
    srv_relay_metrics m;
} srv_relay;

/* Label value of a drop reason / an end reason (static strings). */
const char *srv_relay_drop_name(srv_relay_drop d);
const char *srv_relay_end_name(srv_relay_end e);

/* Initialises r with limits lim (copied). Returns 0 or -1 (OOM). */
int srv_relay_init(srv_relay *r, const srv_relay_limits *lim)
    __attribute__((warn_unused_result));

/* Frees every session and peer entry without sending anything (the
 * connections are being destroyed). Safe on a zeroed r. */
void srv_relay_free(srv_relay *r);

/* relayOpen from c, already checked by the router (sender = c's node,
 * fresh, signature). Creates an OPENING session and forwards the original
 * bytes to the recipient, or answers c with peer_offline (never queued),
 * invalid_field (session ID in use) or limit_exceeded (c's session cap).
 * Always returns 0. */
int srv_relay_open(srv_relay *r, struct srv_server *srv, srv_conn *c, const rdv_msg *msg,
                   const uint8_t *raw, size_t len);

/* relayReady from c, already checked like relayOpen. Consent is valid only
 * from exactly the recipient of the relayOpen, addressed to its sender: the
 * session becomes OPEN and the original bytes go to the opener. Otherwise
 * c gets unknown_session / not_in_session / invalid_field /
 * limit_exceeded and nothing is forwarded. Always returns 0. */
int srv_relay_ready(srv_relay *r, struct srv_server *srv, srv_conn *c, const rdv_msg *msg,
                    const uint8_t *raw, size_t len);

/* relayData in a parsed text message (raw: its original bytes, forwarded
 * unchanged) from main connection c, received on `via` (c, or c's relay
 * channel: relay_channel.h). Always returns 0; refusals are answered with
 * an error on c when via is c, else where c's relay data and relayClose
 * go (in order with them). Data for the peer goes down its channel when it
 * has one, else its main connection. */
int srv_relay_data_text(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_conn *via,
                        const rdv_msg *msg, const uint8_t *raw, size_t len);

/* One complete binary frame from c (received on `via`, as above): kind
 * 0x01, 16-byte session ID,
 * payload (never parsed), forwarded unchanged. Frames of another kind or
 * shorter than the header get invalid_field. Always returns 0. */
int srv_relay_data_binary(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_conn *via,
                          const uint8_t *data, size_t len);

/* True when a text frame is a compact relayData ('{"relayData":' first):
 * such messages skip the per-message rate limit and are charged to the
 * relay byte buckets instead (refusals still take a message token). */
bool srv_relay_is_data_text(const uint8_t *data, size_t len);

/* relayClose from c: ends the session and tells the other side (reason
 * closed_by_peer or c's own reason). Always returns 0. */
int srv_relay_close_msg(srv_relay *r, struct srv_server *srv, srv_conn *c, const rdv_msg *msg);

/* c is going away (disconnect, close, replacement): ends all its sessions
 * with `why`, telling the other sides. Idempotent; cheap for connections
 * that never used the relay. */
void srv_relay_conn_gone(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_relay_end why);

/* Engine event (user: the server): a relay frame from another instance
 * (relay.c's "R ..." format) for a session whose other side is here. */
void srv_relay_bus_in(void *user, const uint8_t *payload, size_t len);

/* Ends OPEN sessions idle longer than lim.idle_timeout_ms and OPENING ones
 * older than lim.open_timeout_ms (reason idle). now: monotonic ms. */
void srv_relay_sweep(srv_relay *r, struct srv_server *srv, int64_t now);

/* The operator's policy (policy.h) for c: its own session cap, byte rate
 * (0 = unlimited) and per-session quota (0 = unlimited) in place of the
 * server's. Returns 0 or -1 (OOM). */
int srv_relay_set_limits(srv_relay *r, srv_conn *c, int max_sessions, uint64_t rate,
                         uint64_t quota);

/* c's relay use for the admin API: sessions it is in and their payload
 * bytes so far. */
void srv_relay_conn_usage(srv_relay *r, srv_conn *c, int *sessions, uint64_t *bytes);

#endif
