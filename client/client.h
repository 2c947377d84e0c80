/* client.h - the handle: private state of an rdv_client and the core
 * functions every part of the library uses (client.c: life cycle,
 * configuration, signing and the bounded outbound queue; loop.c: the
 * service thread). Internal; never installed. Each part has its own
 * header: url.h, backoff.h, verify.h, proto.h, session.h (a session and
 * its legs: relay.h, direct.h), proxy.h, e2e.h, nat/ (discovery.h,
 * stun_client.h, candidates.h, path_wire.h).
 *
 * Threads: fields marked (L) are protected by `lock`; fields marked (S) are
 * touched only by the service thread (the one inside rdv_client_process()
 * or the background thread); the rest is immutable after create. User
 * callbacks are always called from the service thread with no lock held.
 */
#ifndef RDV_CLIENT_CLIENT_H
#define RDV_CLIENT_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "client/nat/discovery.h"
#include "client/relay.h"
#include "client/relay_channel.h"
#include "client/session.h"
#include "client/url.h"
#include "client/verify.h"
#include "rendezvous/rendezvous.h"
#include "schema/message.h"

struct lws;
struct lws_context;

/* Bounds (named, as STYLE.md asks). */
#define RDV__OUTQ_MAX_MSGS 256           /* messages waiting to be written */
#define RDV__OUTQ_MAX_BYTES (1024 * 1024) /* bytes waiting to be written */
#define RDV__WATCH_MAX_LOCAL 4096        /* watch set before the 1st welcome */
#define RDV__CONNECT_TICK_MS 10          /* embedded: tick while connecting */
#define RDV__HOUSEKEEPING_MS 1000        /* longest sleep (lws timers) */
#define RDV__LWS_PRE 16                  /* must equal LWS_PRE (checked) */

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

struct rdv__stun_client;
struct rdv__portmap;
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
    rdv__session *sessions;      /* sessions (session.h) */
    rdv__relay_stats rstats;
    int *dead_fds;               /* proxy sockets to close on the service
                                  * thread (never while it may use them) */
    size_t ndead, capdead;

    /* NAT traversal (nat/discovery.c, direct_*.c). Sockets: immutable
     * after create. */
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
    struct rdv__stun_client *stun_client;    /* (S) discovery engine, NULL before */
    struct sockaddr_storage *stun_addrs; /* (S) resolved servers */
    socklen_t *stun_lens;        /* (S) */
    size_t nstun;                /* (S) */
    bool stun_resolved, stun_reported, stun_early_reported; /* (S) */
    int stun_aux4, stun_aux6;    /* (S) second sockets: the filtering tests,
                                  * beside the mapping test (stun_client.h) */
    uint64_t stun_changes;       /* (S) mapping changes seen by refreshes */
    int64_t stun_started_at, stun_next_refresh, stun_next_rediscover, stun_due; /* (S) */
    bool net_changed;            /* (L) rdv_client_network_changed() asked */
    int64_t next_retrickle;      /* (S) candidates go to one session then */
    /* Port mapping (nat/portmap.h): the worker's state, NULL when it does
     * not run; written (L) by the service thread (start) and destroy. */
    struct rdv__portmap *portmap;
    bool portmap_tried;          /* (S) start() ran */
    uint64_t portmap_seen;       /* (S) last generation taken */
    char portmap_status[RDV_NAT_METHOD_LEN + 1]; /* (L) why none runs */
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
    rdv__chan chan;              /* the relay channel (relay_channel.h) */

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

/* Builds, validates and optionally signs (with the client's key) a message
 * of `type` whose body is `body` (reference stolen): its text (malloc'd,
 * length *len), or NULL with *rc an RDV_ERR_*. */
char *rdv__build_text(rdv_client *c, rdv_msg_type type, json_t *body, size_t *len, int *rc);

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

/* Removes and returns the whole outbound queue (caller frees it). (L taken) */
rdv__outmsg *rdv__outq_take_all(rdv_client *c);

/* Appends m to the outbound queue if the state and bounds allow (see
 * rdv__enqueue). Returns 0 (m is owned by the queue) or an RDV_ERR_* (m
 * still the caller's). (L taken) */
int rdv__outq_append_locked(rdv_client *c, rdv__outmsg *m, bool force);

/* The service thread's libwebsockets side (loop.c). */
int rdv__loop_init(rdv_client *c);
void rdv__loop_free(rdv_client *c);
void rdv__loop_stop_thread(rdv_client *c);

#endif
