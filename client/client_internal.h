/* client_internal.h - private state of an rdv_client, shared by the files of
 * client/ (never installed).
 *
 * Split of concerns:
 *   client.c    handle life cycle, configuration, the public send/lookup/
 *               watch API, the bounded outbound queue, locking;
 *   loop.c      libwebsockets glue: the lws context, connecting, reading and
 *               writing frames, timers, the epoll fd of the embedded mode and
 *               the background thread;
 *   proto.c     the protocol state machine: what to do with each received
 *               message (challenge -> hello, welcome, routed messages,
 *               presence, errors) and building outbound messages;
 *   verify.c    checks of received signed messages (recipient, signature,
 *               freshness) and the replay cache, pure functions of their
 *               inputs;
 *   url.c       ws:// / wss:// URL parsing;
 *   backoff.c   the reconnect delay (exponential, capped, jittered);
 *   relay.c     relay sessions (PROTOCOL.md 9): open/accept/reject/close,
 *               relayOpen/relayReady/relayClose/relayData handling, the
 *               encrypted binary fast path, timeouts, network status;
 *   e2e.c       end-to-end encryption of session data (pure);
 *   proxy.c     the UDP proxy bound to a relay session.
 *
 * Threads: fields marked (L) are protected by `lock`; fields marked (S) are
 * touched only by the service thread (the one inside rdv_client_process()
 * or the background thread); the rest is immutable after create. User
 * callbacks are always called from the service thread with no lock held.
 */
#ifndef RDV_CLIENT_INTERNAL_H
#define RDV_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "e2e.h"

#include "message.h"
#include "rendezvous/rendezvous.h"

struct lws;
struct lws_context;

/* Bounds (named, as STYLE.md asks). */
#define RDV__OUTQ_MAX_MSGS 256           /* messages waiting to be written */
#define RDV__OUTQ_MAX_BYTES (1024 * 1024) /* bytes waiting to be written */
#define RDV__WATCH_MAX_LOCAL 4096        /* watch set before the 1st welcome */
#define RDV__REPLAY_SLOTS 4096           /* replay cache entries */
#define RDV__CONNECT_TICK_MS 10          /* embedded: tick while connecting */
#define RDV__HOUSEKEEPING_MS 1000        /* longest sleep (lws timers) */
#define RDV__LWS_PRE 16                  /* must equal LWS_PRE (checked) */

/* A parsed server URL. */
typedef struct rdv__url {
    bool tls;
    char host[256];
    int port;
    char path[256];
} rdv__url;

/* Parses ws://host[:port][/path] or wss://...; host may be [IPv6]. Path
 * defaults to "/v1". Returns 0 or RDV_ERR_INVALID. */
int rdv__url_parse(const char *url, rdv__url *out);

/* Server URLs of one client: the instances of one cluster. */
#define RDV__MAX_URLS 8
#define RDV__URL_TEXT 512

/* Parses a comma-separated list of URLs (spaces around commas ignored)
 * into out[] and their texts; *n of them. Returns 0, or RDV_ERR_INVALID
 * when one is not a URL, one is empty, or there are more than
 * RDV__MAX_URLS. */
int rdv__url_list_parse(const char *list, rdv__url out[RDV__MAX_URLS],
                        char text[RDV__MAX_URLS][RDV__URL_TEXT], int *n);

/* Reconnect delay in ms before attempt number `attempt` (0 for the first
 * retry) under `p` (defaults already applied); `rnd` is a uniform random
 * 32-bit value (jitter). */
/* The delay after the n-th refusal (not_admitted, revoked) in a row:
 * 60 s, doubling, at most 15 min, minus up to 20 % jitter (backoff.c). */
int64_t rdv__refused_delay_ms(unsigned n, uint32_t rnd);

/* Reads the fleet certificate file at path for node_id (cert.c): 0 and a
 * new object in *out, or RDV_ERR_NOT_FOUND / RDV_ERR_IO / RDV_ERR_FORMAT. */
int rdv__cert_load(const char *path, const char *node_id, json_t **out);

int64_t rdv__backoff_ms(const rdv_reconnect_policy *p, unsigned attempt,
                        uint32_t rnd);

/* One replay-cache entry: a hash of (type, sender, signature) and the
 * message's timestamp. */
typedef struct rdv__replay_entry {
    uint8_t key[16];
    int64_t ts;
} rdv__replay_entry;

typedef struct rdv__replay {
    rdv__replay_entry *slots; /* RDV__REPLAY_SLOTS */
    size_t used;
    size_t next;              /* round-robin eviction when full */
} rdv__replay;

/* Freshness window in force (welcome limits or the defaults). */
typedef struct rdv__fresh {
    int64_t past_ms;
    int64_t future_ms;
} rdv__fresh;

/* Verifies a received routed signed message `m` for node `self_id` at
 * server time `now`: recipient (RDV_ERR_MISROUTED), signature
 * (RDV_ERR_BAD_SIGNATURE), freshness (RDV_ERR_STALE), replay
 * (RDV_ERR_DUPLICATE; an accepted message is remembered in `rc`, which may
 * be NULL to skip). Returns 0 when the message may be delivered. */
int rdv__verify_routed(const rdv_msg *m, const char *self_id, int64_t now,
                       const rdv__fresh *fresh, rdv__replay *rc)
    __attribute__((warn_unused_result));

int rdv__replay_init(rdv__replay *rc);
void rdv__replay_free(rdv__replay *rc);

/* A message waiting to be written: RDV__LWS_PRE bytes of headroom, then the
 * text. `ref` and `type` identify it in a "dropped" error. */
typedef struct rdv__outmsg {
    struct rdv__outmsg *next;
    size_t len;
    bool binary;         /* a relay data frame (datagram: dropped silently) */
    char ref[RDV_REQUEST_ID_LEN + 1];
    char type[16];
    unsigned char buf[]; /* RDV__LWS_PRE + len + 1 */
} rdv__outmsg;

/* Connection phase, (S). */
typedef enum rdv__phase {
    RDV__PH_IDLE = 0,     /* no connection (waiting for a reconnect) */
    RDV__PH_CONNECTING,   /* TCP / TLS / upgrade in progress */
    RDV__PH_AUTH,         /* upgraded; waiting for challenge, then welcome */
    RDV__PH_READY         /* welcome received */
} rdv__phase;

/* Relay session states (this node's view). */
typedef enum rdv__relay_state {
    RDV__RS_REQUESTED = 0, /* peer's relayOpen received, not answered yet */
    RDV__RS_OPENING,       /* our relayOpen sent, waiting for relayReady */
    RDV__RS_OPEN           /* keys derived, data flows */
} rdv__relay_state;

/* One relay session, in c->relays (L). */
typedef struct rdv__relay {
    struct rdv__relay *next;
    char sid[RDV_SESSION_ID_LEN + 1];
    uint8_t sid_bytes[RDV__E2E_AD_BYTES];
    char peer[RDV_NODE_ID_LEN + 1];
    rdv__relay_state st;
    bool initiator;                 /* we sent relayOpen */
    rdv__e2e_keypair kp;            /* ours; wiped once keys are derived */
    uint8_t peer_pk[RDV__E2E_PK_BYTES]; /* REQUESTED: the opener's e2eKey */
    rdv__e2e e2e;                   /* OPEN: keys, counters, window */
    int64_t deadline;               /* monotonic ms: open / answer timeout */
    int64_t req_ts;                 /* relayOpen timestamp (REQUESTED) */
    struct rdv__direct *d;          /* direct-path state of a session made
                                     * by rdv_connect() (direct.h), or NULL */
    /* UDP proxy (proxy.c); proxy_fd -1 when none. */
    int proxy_fd;
    struct sockaddr_storage dest;   /* last local sender / forward address */
    socklen_t dest_len;             /* 0: nowhere to deliver yet */
} rdv__relay;

/* Relay statistics and errors for rdv_client_network_status (L). */
typedef struct rdv__relay_stats {
    uint64_t opened, tx_dgrams, rx_dgrams, tx_bytes, rx_bytes, dropped;
    int last_error;
    char last_error_text[128];
    int last_traversal;             /* rdv_traversal */
} rdv__relay_stats;

/* What NAT discovery found (direct.c), (L). */
typedef struct rdv__natinfo {
    bool done;                      /* finished (even without an answer) */
    rdv_nat_type nat;
    bool no_nat;
    bool have_mapped;
    struct sockaddr_storage mapped; /* server-reflexive address */
    socklen_t mapped_len;
    char method[160];
    char server[54];                /* "ip:port" that answered */
    int64_t ms;                     /* how long it took, -1 */
} rdv__natinfo;

struct rdv__stunc;
struct rdv__cand;

typedef enum rdv__mode { RDV__MODE_NONE = 0, RDV__MODE_THREAD, RDV__MODE_EMBED } rdv__mode;

struct rdv_client {
    /* Immutable after create. */
    rdv_client_config cfg;       /* strings point to the copies below */
    char *url_copy;
    char *ca_copy;
    char *software_copy;
    rdv__url url;                /* the first URL tried (its host: the default STUN) */
    rdv__url urls[RDV__MAX_URLS]; /* server_url split at commas */
    char url_text[RDV__MAX_URLS][RDV__URL_TEXT];
    int n_urls;
    int url_idx;                 /* service thread: urls[] of the next or current
                                  * connection; the next one after each end */
    rdv_identity id;
    char node_id[RDV_NODE_ID_LEN + 1];
    int epfd;                    /* the fd of rdv_client_fd() */
    int evfd;                    /* eventfd: wakes the service thread */

    pthread_mutex_t lock;
    /* (L) */
    rdv_state state;
    rdv__outmsg *outq_head, *outq_tail;
    size_t outq_count, outq_bytes;
    char (*watches)[RDV_NODE_ID_LEN + 1];
    size_t nwatch, capwatch;
    char server_name[254];
    char observed_ip[RDV_IP_LEN + 1];
    uint16_t observed_port;
    int64_t time_offset_ms;
    rdv_limits limits;
    unsigned connects;
    unsigned attempt;
    int last_error;
    char last_error_text[400];   /* the cb_error text of last_error */
    unsigned req_counter;
    int64_t last_sign_ts;
    rdv__relay *relays;          /* relay sessions (relay.c) */
    rdv__relay_stats rstats;
    int *dead_fds;               /* proxy sockets to close on the service
                                  * thread (never while it may use them) */
    size_t ndead, capdead;

    /* NAT traversal (direct.c). Sockets: immutable after create. */
    int udp4, udp6;              /* STUN and direct-path sockets, -1 none */
    uint16_t udp4_port, udp6_port;
    char **stun_names;           /* copies of cfg.stun_servers */
    rdv__natinfo nat;            /* (L) */
    struct rdv__cand *lcand;     /* (L) our candidates, RDV__MAX_LOCAL_CANDS */
    size_t nlcand;               /* (L) */
    uint64_t direct_sessions;    /* (L) */
    int64_t last_connect_ms, last_direct_ms; /* (L) */
    int last_derr;               /* (L) last direct error of an ended session */
    uint8_t *dtx_buf;            /* (L) a direct datagram being sealed */
    char last_derr_text[128];    /* (L) */
    struct rdv__stunc *stunc;    /* (S) discovery engine, NULL before */
    struct sockaddr_storage *stun_addrs; /* (S) resolved servers */
    socklen_t *stun_lens;        /* (S) */
    size_t nstun;                /* (S) */
    bool stun_resolved, stun_reported; /* (S) */
    uint64_t stun_changes;       /* (S) mapping changes seen by refreshes */
    int64_t stun_started_at, stun_next_refresh, stun_next_rediscover, stun_due; /* (S) */
    bool net_changed;            /* (L) rdv_network_changed() asked */
    int64_t next_retrickle;      /* (S) candidates go to one session then */
    struct sockaddr_storage server_addr; /* (L) the WebSocket's peer */
    socklen_t server_addr_len;   /* (L) 0: unknown */

    /* (S) */
    struct lws_context *ctx;
    void *ssl_ctx;               /* SSL_CTX of a wss:// client, or NULL */
    int tls_verify_err;          /* X509_V_ERR_* of this attempt's refused
                                  * server certificate, 0 */
    char tls_verify_what[160];   /* that certificate: its names or issuer */
    struct lws *wsi;
    rdv__phase phase;
    int reg_fd;                  /* socket fd registered in epfd, or -1 */
    uint32_t reg_events;
    int64_t next_connect_at;     /* monotonic ms */
    int64_t deadline;            /* connect/auth deadline, monotonic ms */
    int64_t last_rx;             /* monotonic ms of the last frame */
    int64_t ping_sent;           /* monotonic ms, 0 when no ping out */
    bool got_challenge;
    int end_reason;              /* RDV_ERR_* to report when the wsi ends */
    const char *end_detail;      /* static text for that report, or NULL */
    bool final_failure;          /* go FAILED instead of reconnecting */
    json_t *cert;                /* fleet certificate sent in hello, or NULL */
    unsigned refusals;           /* not_admitted / revoked in a row (slow retry) */
    char refusal_text[400];      /* the server's message of the last one */
    int http_status;             /* HTTP status of a refused upgrade, 0 */
    char *rx;
    size_t rx_len, rx_cap;
    bool rx_skip;                /* current message too large: skipping */
    bool rx_binary;              /* current message is a binary frame */
    uint8_t *scratch;            /* decrypted relay datagram (S) */
    rdv__replay replay;
    rdv__fresh fresh;

    /* Mode and threads. */
    atomic_int mode;             /* rdv__mode */
    atomic_int busy;             /* inside process() */
    atomic_int stop;
    atomic_bool destroying;
    pthread_t thread;
    bool thread_started;
    pthread_t service_tid;       /* thread inside process() while busy */
};

/* True when called from this client's service thread, i.e. from one of
 * its callbacks. */
bool rdv__in_callback(rdv_client *c);

/* Monotonic clock, ms. */
int64_t rdv__mono_ms(void);

/* Server-time estimate (local wall clock + offset). */
int64_t rdv__server_now(rdv_client *c);

/* Wakes the service thread (eventfd write). Safe from any thread. */
void rdv__wake(rdv_client *c);

/* Queues text[0..len) for the current connection. `force` queues even
 * when not AUTHENTICATED (hello). Returns 0, RDV_ERR_NOT_CONNECTED,
 * RDV_ERR_BACKLOG, RDV_ERR_TOO_LARGE, RDV_ERR_NOMEM. Takes the lock. */
int rdv__enqueue(rdv_client *c, const char *text, size_t len,
                 const char *type, const char *ref, bool force);

/* Builds, validates, optionally signs (with the client's key) and queues a
 * message of `type` whose body is `body` (reference stolen). */
int rdv__send_body(rdv_client *c, rdv_msg_type type, json_t *body,
                   const char *ref, bool force);

/* Sets the state and calls cb_state_changed if it changed. (S) */
void rdv__set_state(rdv_client *c, rdv_state st);

/* Reports an error to cb_error (no lock held). */
void rdv__report(rdv_client *c, int code, const char *server_code,
                 const char *message, const char *ref, const char *msg_type,
                 const char *field, const char *from);

/* Handles one complete received text message. Returns 0, or -1 to close
 * the connection (end_reason set). (S) */
int rdv__proto_on_text(rdv_client *c, const char *text, size_t len);

/* Called when the WebSocket upgrade completed. (S) */
void rdv__proto_on_established(rdv_client *c);

/* Queues the watch set in `watch` requests of at most
 * RDV_MAX_IDS_PER_CALL IDs (after welcome). (S) */
void rdv__proto_send_watches(rdv_client *c);

/* Queues a `ping` keep-alive. (S) */
void rdv__proto_send_ping(rdv_client *c);

/* Removes and returns the whole outbound queue (caller frees it). (L taken) */
rdv__outmsg *rdv__outq_take_all(rdv_client *c);

/* Appends m to the outbound queue if the state and bounds allow (see
 * rdv__enqueue). Returns 0 (m is owned by the queue) or an RDV_ERR_* (m
 * still the caller's). (L taken) */
int rdv__outq_append_locked(rdv_client *c, rdv__outmsg *m, bool force);

/* ---- relay.c ---- */

/* Scratch size for one decrypted datagram (largest binary frame). */
#define RDV__SCRATCH_BYTES RDV_MAX_MESSAGE_BYTES

/* A verified relayOpen / relayReady. (S) */
void rdv__relay_on_routed(rdv_client *c, const rdv_msg *m);
/* relayClose from the server. (S) */
void rdv__relay_on_close(rdv_client *c, const json_t *body);
/* relayData text form. (S) */
void rdv__relay_on_data_text(rdv_client *c, const json_t *body);
/* A complete binary frame. (S) */
void rdv__relay_on_binary(rdv_client *c, const uint8_t *buf, size_t len);
/* A server `error`: ends the relay session it is about, if any. Returns
 * true when the error only concerned the relay leg of a session a direct
 * path carries (not worth reporting). (S) */
bool rdv__relay_on_server_error(rdv_client *c, rdv_ec ec, const char *ref,
                                const char *type, const char *message);
/* The connection ended: every session ends with RDV_ERR_CONNECT. (S) */
void rdv__relay_on_conn_lost(rdv_client *c);
/* Timeouts of opening / requested sessions; closes dead proxy fds. (S) */
void rdv__relay_tick(rdv_client *c, int64_t now);
/* Frees every session without callbacks (destroy). */
void rdv__relay_free_all(rdv_client *c);
/* Encrypts and queues one datagram on open session `r`. (L held) */
int rdv__relay_send_locked(rdv_client *c, rdv__relay *r, const void *buf, size_t len);
/* Finds a session by ID. (L held) */
rdv__relay *rdv__relay_find_locked(rdv_client *c, const char *sid);
/* Forgets the proxy socket of r: removed from epfd, closed later on the
 * service thread. (L held) */
void rdv__proxy_detach_locked(rdv_client *c, rdv__relay *r);
/* Removes fd from epfd and closes it later on the service thread (never
 * while it may be read). (L held) */
void rdv__defer_close_locked(rdv_client *c, int fd);
/* Session table helpers shared with direct.c. (L held unless said) */
rdv__relay *rdv__relay_find_bytes_locked(rdv_client *c, const uint8_t sid[16]);
unsigned rdv__relay_count_locked(rdv_client *c, int state /* -1: all */);
/* Unlinks r, detaches its sockets and wipes its keys; returns r. */
rdv__relay *rdv__relay_end_locked(rdv_client *c, rdv__relay *r);
/* A new session we open to `peer`: checks the arguments (session_id_out
 * gets "" first) and that we are AUTHENTICATED, then makes it OPENING,
 * initiator, with a fresh UUID, ephemeral keypair and the open timeout;
 * not linked. Returns 0 and *out, or RDV_ERR_INVALID, RDV_ERR_NOT_CONNECTED,
 * RDV_ERR_NOMEM, RDV_ERR_CRYPTO. (no lock held) */
int rdv__relay_new_outgoing(rdv_client *c, const char *peer, char session_id_out[],
                            rdv__relay **out);
/* Ends and frees session sid without a callback (a set-up that failed
 * before the caller got it). (no lock held) */
void rdv__relay_forget(rdv_client *c, const char *sid);
/* Wipes and frees a session already unlinked. (no lock needed) */
void rdv__relay_free(rdv__relay *r);
/* Calls cb_relay_closed (no lock held) and frees r. */
void rdv__relay_report_closed(rdv_client *c, rdv__relay *r, int err, const char *reason);
/* Signs and queues relayOpen / relayReady with e2eKey pk. (no lock) */
int rdv__relay_send_signed(rdv_client *c, rdv_msg_type type, const char *to,
                           const char *sid, const uint8_t pk[32]);
/* Queues relayClose. (no lock) */
int rdv__relay_send_close(rdv_client *c, const char *sid, const char *reason);
/* Decrypts one received packet of session sid_bytes and delivers it (proxy
 * or cb_relay_data). A packet from the direct path names its socket and
 * source (direct_from non-NULL): it is counted there and a failure is only
 * counted, never reported. Returns the plaintext length or an RDV_ERR_*.
 * (S) */
int64_t rdv__relay_on_packet(rdv_client *c, const uint8_t sid_bytes[16], const uint8_t *pkt,
                             size_t len, int direct_fd, const struct sockaddr_storage *direct_from);

/* ---- discovery.c ---- */

/* Opens the UDP sockets (create); an explicit cfg.udp_port must bind in
 * every family the host has. Returns 0 or RDV_ERR_IO (errno kept). */
int rdv__direct_init(rdv_client *c);
/* Closes them and frees discovery state (destroy, after the sessions). */
void rdv__direct_free(rdv_client *c);
/* A nonblocking UDP socket bound to any:port of `fam` (IPv6: v6-only);
 * -1 with errno on failure. */
int rdv__udp_socket(int fam, uint16_t port);
/* The client's socket of family fam, or -1. */
int rdv__udp_for(rdv_client *c, int fam);
/* The NAT type we use and report: cfg.nat_type, else the discovered one
 * (_locked: L held; the other takes the lock). */
rdv_nat_type rdv__nat_effective(rdv_client *c);
rdv_nat_type rdv__nat_effective_locked(rdv_client *c);
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

/* ---- direct.c ---- */

/* Reads the UDP sockets, runs discovery and the sessions' timers. (S) */
void rdv__direct_service(rdv_client *c, int64_t now);
/* Monotonic ms of the next direct.c or discovery timer, INT64_MAX when
 * none. (S) */
int64_t rdv__direct_next_due(rdv_client *c);
/* A verified offer / answer / iceCandidate: true when it belonged to the
 * direct machinery (a connect request or one of its sessions). (S) */
bool rdv__direct_on_routed(rdv_client *c, const rdv_msg *m);
/* Declines a connect request: an answer without e2eKey (PROTOCOL.md
 * 14.1). Returns what rdv__send_body returns. */
int rdv__direct_send_refusal(rdv_client *c, const char *peer, const char *sid);
/* rdv_relay_accept() of a connect request. */
int rdv__direct_accept(rdv_client *c, const char *sid);
/* relayOpen / relayReady / relayClose about a connect session: true when
 * handled there. (S) */
bool rdv__direct_on_relay_open(rdv_client *c, const char *sid, const char *from);
bool rdv__direct_on_relay_ready(rdv_client *c, const char *sid, const char *from);
bool rdv__direct_on_relay_close(rdv_client *c, const char *sid, const char *reason);
/* Our candidates gained an address (discovery, a network change): every
 * session whose offer / answer went out sends its candidates again
 * (paced), and those without a direct path check again at once. (L held) */
void rdv__direct_candidates_gained_locked(rdv_client *c, int64_t now);
/* rdv_network_changed(): direct paths are checked at once (a keepalive
 * now), sessions without one probe on the fast schedule again. (L held) */
void rdv__direct_network_changed_locked(rdv_client *c, int64_t now);
/* Sends a datagram on the direct path: 0, an RDV_ERR_*, or 1 when the
 * session has no direct path now. (L held) */
int rdv__direct_send_locked(rdv_client *c, rdv__relay *r, const void *buf, size_t len);
/* A datagram for a session without a usable path now: before its first
 * path RDV_ERR_STATE; between two paths (a fallback, a relay leg being
 * reopened) a copy is held, bounded, and sent on the next path: 0, or
 * RDV_ERR_BACKLOG / RDV_ERR_NOMEM when it cannot be held. (L held) */
int rdv__direct_hold_locked(rdv__relay *r, const void *buf, size_t len);
/* Frees the held datagrams (wiped), counting them as dropped when c is
 * not NULL. (L held, or r unlinked) */
void rdv__direct_drop_held(rdv_client *c, rdv__relay *r);
/* An authenticated DATA packet of session r arrived on fd from `from`:
 * counts it and keeps the direct path alive. (L held) */
void rdv__direct_on_rx_locked(rdv__relay *r, int fd, const struct sockaddr_storage *from,
                              int64_t now);
/* The session ends: close probes to the peer, spray sockets deferred.
 * (L held) */
void rdv__direct_detach_locked(rdv_client *c, rdv__relay *r);
/* Fills the NAT / direct fields of a network status. (L held) */
void rdv__direct_status_locked(rdv_client *c, rdv_network_status *st);

/* ---- proxy.c ---- */

/* Reads the proxy sockets (bounded per call) and relays what arrived. (S) */
void rdv__proxy_service(rdv_client *c);
/* Writes a datagram from the peer to the proxy's local destination; the
 * caller copied fd and destination under the lock. (S) */
void rdv__proxy_deliver(rdv_client *c, int fd, const struct sockaddr_storage *dest,
                        socklen_t dest_len, const uint8_t *buf, size_t len);
/* Closes the proxy fds queued by rdv__proxy_detach_locked. (S) */
void rdv__proxy_close_dead(rdv_client *c);

#endif
