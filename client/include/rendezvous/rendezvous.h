/* rendezvous.h - librendezvous, the node-side library of rendezvous.
 *
 * A node holds an Ed25519 identity; its node ID is the lowercase hex of the
 * public key. It keeps one WebSocket open to a rendezvous server
 * (`rendezvousd`, wire protocol v1: schema/PROTOCOL.md), through which it
 * exchanges signed messages with other nodes, looks up and watches their
 * presence, and opens end-to-end encrypted sessions with them: on a direct
 * UDP path when the NATs allow one, through the server's relay otherwise.
 * This header (with rendezvous/version.h) is the whole public API.
 * Functions return 0 (or a count) on success, a negative rdv_err on
 * failure; rdv_strerror() names the code.
 *
 * Names: rdv_client_* act on a client (connection, presence, watches, NAT
 * status); rdv_session_* on one session between two nodes; rdv_identity_*
 * on a key.
 *
 * Which level to use: sessions. rdv_session_connect() (direct first, the
 * relay as fallback) or rdv_session_open() (relay only), then
 * rdv_session_send() / cb_session_data, or rdv_session_proxy() for a UDP
 * application such as WireGuard. The raw signaling level
 * (rdv_client_send_offer / _answer / _candidate with cb_offer / cb_answer /
 * cb_candidate) is for applications that run their own NAT traversal: the
 * library then only signs, routes and verifies those messages.
 *
 * Use: fill an rdv_client_config, rdv_client_create(), then run the client
 * (client/README.md has a complete program) EITHER with rdv_client_start()
 * (the library's thread runs the connection and calls the callbacks) OR in
 * embedded mode: poll rdv_client_fd() for readability with
 * rdv_client_timeout_ms() as the timeout and call rdv_client_process() when
 * it is readable or the timeout expired; callbacks then run inside
 * rdv_client_process(). Never both.
 *
 * Threads: every rdv_client_* / rdv_session_* function may be called from
 * any thread and from callbacks, except rdv_client_process() (one thread
 * at a time; from a callback RDV_ERR_BUSY, or RDV_ERR_STATE in threaded
 * mode) and rdv_client_destroy() (refused from a callback; must not race
 * other calls on the client). Callbacks of one client never run
 * concurrently and never with an internal lock held; pointers passed to a
 * callback are valid only during the call. rdv_identity_* are thread safe
 * on different structs.
 *
 * Process-wide effects: the first rdv_client_create() points libwebsockets'
 * (global) log at the library's log (rdv_log_set_handler()); libwebsockets
 * ignores SIGPIPE; the background thread blocks all signals.
 */
#ifndef RENDEZVOUS_RENDEZVOUS_H
#define RENDEZVOUS_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

#include "rendezvous/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RDV_API __attribute__((visibility("default")))
#define RDV_MUST_CHECK __attribute__((warn_unused_result))
#else
#define RDV_API
#define RDV_MUST_CHECK
#endif

/* Error codes: 0 is success, failures are negative ("received message":
 * a message from another node that the library dropped). */
typedef enum rdv_err {
    RDV_OK = 0,
    RDV_ERR_INVALID = -1,         /* invalid argument */
    RDV_ERR_NOMEM = -2,           /* allocation failed */
    RDV_ERR_IO = -3,              /* file or socket error (errno kept) */
    RDV_ERR_PERM = -4,            /* key file readable by others: refused */
    RDV_ERR_FORMAT = -5,          /* file or message content malformed */
    RDV_ERR_CRYPTO = -6,          /* libsodium failed to initialise */
    RDV_ERR_EXISTS = -7,          /* refusing to overwrite an existing file */
    RDV_ERR_NOT_CONNECTED = -8,   /* not authenticated now: not sent (fail fast) */
    RDV_ERR_STATE = -9,           /* not valid in this state (e.g. start twice) */
    RDV_ERR_BUSY = -10,           /* called re-entrantly (process() from a callback) */
    RDV_ERR_TIMEOUT = -11,        /* connect / authentication timed out, or the
                                   * server stopped answering */
    RDV_ERR_CONNECT = -12,        /* DNS, TCP, TLS or WebSocket upgrade failed,
                                   * or the connection dropped */
    RDV_ERR_AUTH = -13,           /* the server refused our hello, or its welcome
                                   * did not match our identity */
    RDV_ERR_REPLACED = -14,       /* another connection authenticated with this
                                   * identity; the client stops (FAILED) */
    RDV_ERR_BAD_SIGNATURE = -15,  /* received message: signature does not verify */
    RDV_ERR_STALE = -16,          /* received message: timestamp not fresh */
    RDV_ERR_DUPLICATE = -17,      /* received message: a replayed copy */
    RDV_ERR_MISROUTED = -18,      /* received message: not to us, or from us */
    RDV_ERR_PROTOCOL = -19,       /* the server broke PROTOCOL.md */
    RDV_ERR_SERVER = -20,         /* a server error not mapped here (server_code) */
    RDV_ERR_PEER_OFFLINE = -21,   /* recipient offline; the message expired or
                                   * could not wait */
    RDV_ERR_PEER_QUEUE_FULL = -22, /* recipient's offline queue on the server full */
    RDV_ERR_RATE_LIMITED = -23,   /* the server dropped a message: over the rate */
    RDV_ERR_LIMIT = -24,          /* a server limit (watches, sessions) exceeded */
    RDV_ERR_TOO_LARGE = -25,      /* larger than the server's maxMessageBytes */
    RDV_ERR_BACKLOG = -26,        /* the client's bounded send queue is full */
    RDV_ERR_NOT_SUPPORTED = -27,  /* feature not available */
    RDV_ERR_DECRYPT = -28,        /* session data failed end-to-end authentication
                                   * (tampered, wrong key or session); dropped */
    RDV_ERR_NO_SESSION = -29,     /* no such session (never, not yet, or no more) */
    RDV_ERR_NOT_FOUND = -30,      /* no such file or directory (identity files) */
    RDV_ERR_BAD_URL = -31,        /* not ws://HOST[:PORT][/PATH] or wss://... */
    RDV_ERR_TLS_VERIFY = -32,     /* wss://: the server's certificate was refused
                                   * (CA, host name, expiry: last_error_text) */
    RDV_ERR_NOT_ADMITTED = -33,   /* the server admits only its fleet and refused
                                   * us (allowlist, fleet certificate: see
                                   * last_error_text); retried every 60 s .. 15 min */
    RDV_ERR_REVOKED = -34,        /* the operator revoked our node ID or
                                   * certificate; retried as NOT_ADMITTED */
    RDV_ERR_FORBIDDEN = -35,      /* the operator's policy refused this message
                                   * for our groups; the connection stays */
} rdv_err;

/* A static, human-readable description of an rdv_err code. */
RDV_API const char *rdv_strerror(int err);

/* The library's version (RDV_VERSION_STRING of the build that made it). */
RDV_API const char *rdv_version(void);

/* Levels of the log (rdv_log_set_handler()). */
typedef enum rdv_log_level {
    RDV_LOG_ERROR = 0, RDV_LOG_WARN, RDV_LOG_INFO, RDV_LOG_DEBUG
} rdv_log_level;

/* "error", "warn", "info", "debug". */
RDV_API const char *rdv_log_level_name(rdv_log_level level);

/* A log message: one line, no trailing newline; valid during the call. */
typedef void (*rdv_cb_log)(rdv_log_level level, const char *message, void *user_ptr);

/* Sends the log messages of the library and of libwebsockets under it, up
 * to `max_level`, to `cb` (NULL: the default, stderr at every level only
 * when the environment has RDV_DEBUG=1). Process-wide; safe from any
 * thread. The callback may run on any client's thread, must not block for
 * long nor call rdv_log_set_handler(); once this returns the previous
 * callback is no longer called. */
RDV_API void rdv_log_set_handler(rdv_log_level max_level, rdv_cb_log cb, void *user_ptr);

/* Sizes of an identity and of the protocol's strings; *_LEN excludes the NUL. */
#define RDV_PUBLIC_KEY_BYTES 32
#define RDV_SECRET_KEY_BYTES 64
#define RDV_NODE_ID_LEN 64        /* hex characters */
#define RDV_SESSION_ID_LEN 36     /* UUID 8-4-4-4-12 */
#define RDV_IP_LEN 45             /* longest IP text (IPv6) */
#define RDV_KEY_HEX_LEN 64        /* wgPublicKey / e2eKey hex */
#define RDV_REQUEST_ID_LEN 64     /* longest requestID */
#define RDV_MAX_IDS_PER_CALL 64   /* node IDs per lookup() / watch() call */
#define RDV_CANDIDATE_TYPE_LEN 15 /* "serverReflexive" */
#define RDV_FOUNDATION_LEN 32     /* ICE foundation (RFC 8445 5.1.1.3) */
#define RDV_MSG_TYPE_LEN 15       /* a message type ("iceCandidate") */
#define RDV_SERVER_NAME_LEN 253   /* a DNS name */
#define RDV_URL_LEN 255           /* a server URL as reported (cut to fit) */
#define RDV_ENDPOINT_LEN (RDV_IP_LEN + 8) /* "[ip]:port" / "ip:port" */
#define RDV_NAT_METHOD_LEN 159    /* how the NAT type was found */
#define RDV_ERROR_TEXT_LEN 399    /* the explanation of a connection error */
#define RDV_SESSION_ERROR_TEXT_LEN 127 /* a session's last error */
#define RDV_PORTMAP_PROTOCOL_LEN 7 /* "natpmp", "upnp" */

/* An Ed25519 identity. Wipe it with rdv_identity_wipe() when done. */
typedef struct rdv_identity {
    uint8_t public_key[RDV_PUBLIC_KEY_BYTES];
    uint8_t secret_key[RDV_SECRET_KEY_BYTES]; /* libsodium form: seed||pk */
} rdv_identity;

/* Generates a new random identity. Returns 0, RDV_ERR_INVALID, RDV_ERR_CRYPTO. */
RDV_API int rdv_identity_generate(rdv_identity *id) RDV_MUST_CHECK;

/* Writes the node ID (64 lowercase hex chars and a NUL) of id into out. */
RDV_API void rdv_identity_node_id(const rdv_identity *id, char out[RDV_NODE_ID_LEN + 1]);

/* Saves id to `path` (one line "rendezvous-ed25519-v1 <seed hex>"), created
 * with mode 0600 (never wider). RDV_ERR_EXISTS when the file exists and
 * `overwrite` is 0, RDV_ERR_NOT_FOUND when its directory does not exist,
 * RDV_ERR_IO for other failures (errno kept). */
RDV_API int rdv_identity_save(const rdv_identity *id, const char *path,
                              int overwrite) RDV_MUST_CHECK;

/* Loads an identity from `path`. RDV_ERR_PERM for a file its group or
 * others can read or write, or that is not a regular file;
 * RDV_ERR_NOT_FOUND when there is none (make one with
 * rdv_identity_generate() + rdv_identity_save(), or `rdv keygen`);
 * RDV_ERR_FORMAT when it is no key file; RDV_ERR_IO (errno kept). */
RDV_API int rdv_identity_load(rdv_identity *id, const char *path) RDV_MUST_CHECK;

/* Overwrites the secret key material with zeros. */
RDV_API void rdv_identity_wipe(rdv_identity *id);

/* Writes a fresh random (version 4) UUID, lowercase 8-4-4-4-12 and a NUL:
 * a new SessionID for rdv_client_send_offer(). Never fails. */
RDV_API void rdv_session_id_generate(char out[RDV_SESSION_ID_LEN + 1]);

/* 1 when s is a valid node ID (64 lowercase hex digits), else 0. */
RDV_API int rdv_node_id_is_valid(const char *s);

/* ------------------------------------------------------------------------
 * The client
 * ---------------------------------------------------------------------- */

typedef struct rdv_client rdv_client;

/* Connection state. DISCONNECTED at first and after any drop (retried
 * after a backoff); CONNECTING (TCP, TLS, WebSocket upgrade,
 * challenge/hello); AUTHENTICATED (welcome received: messages may be
 * sent). FAILED is final: the identity was replaced by another connection,
 * or reconnect.max_attempts was reached. */
typedef enum rdv_state {
    RDV_STATE_DISCONNECTED = 0,
    RDV_STATE_CONNECTING = 1,
    RDV_STATE_AUTHENTICATED = 2,
    RDV_STATE_FAILED = 3
} rdv_state;

/* A static name for a state ("authenticated", ...). */
RDV_API const char *rdv_state_name(rdv_state state);

/* NAT classification (PROTOCOL.md 3, NatType). */
typedef enum rdv_nat_type {
    RDV_NAT_UNKNOWN = 0,
    RDV_NAT_FULL_CONE,
    RDV_NAT_RESTRICTED_CONE,
    RDV_NAT_PORT_RESTRICTED,
    RDV_NAT_SYMMETRIC
} rdv_nat_type;

/* Wire name of a NAT type ("fullCone", ...; "unknown" when out of range). */
RDV_API const char *rdv_nat_type_name(rdv_nat_type nat);

/* Parses a wire name; RDV_NAT_UNKNOWN for anything unknown. */
RDV_API rdv_nat_type rdv_nat_type_from_name(const char *name);

/* The path that carries a session's datagrams (cb_path,
 * rdv_session_get_info) and the latest one any session got
 * (rdv_network_status). */
typedef enum rdv_path {
    RDV_PATH_UNKNOWN = 0,        /* none (yet, or between two paths) */
    RDV_PATH_DIRECT,             /* a direct UDP path (hole punching) */
    RDV_PATH_RELAYED             /* through the server's relay */
} rdv_path;

/* "Unknown", "Direct", "Relayed". */
RDV_API const char *rdv_path_name(rdv_path path);

/* Raw signaling messages (cb_offer / cb_answer / cb_candidate and
 * rdv_client_send_*; sessions do not need them).
 *
 * How a node can be reached (PROTOCOL.md 3.1). Unknown addresses are
 * "0.0.0.0" (an empty string is sent as "0.0.0.0") and port 0;
 * wg_public_key is "" when absent. */
typedef struct rdv_connection_info {
    char public_ip[RDV_IP_LEN + 1];
    uint16_t public_port;
    char local_ip[RDV_IP_LEN + 1];
    uint16_t local_port;
    rdv_nat_type nat_type;
    char wg_public_key[RDV_KEY_HEX_LEN + 1];
} rdv_connection_info;

/* One ICE candidate (PROTOCOL.md 3.2). foundation and related_ip are ""
 * and related_port 0 when absent. */
typedef struct rdv_candidate {
    char ip[RDV_IP_LEN + 1];
    uint16_t port;               /* 1 ... 65535 */
    char type[RDV_CANDIDATE_TYPE_LEN + 1]; /* "host", "serverReflexive",
                                            * "peerReflexive", "relayed" */
    uint32_t priority;
    char foundation[RDV_FOUNDATION_LEN + 1];
    char related_ip[RDV_IP_LEN + 1];
    uint16_t related_port;
} rdv_candidate;

/* A verified offer or answer. e2e_key is "" when absent; `json` is the
 * received body (unknown fields included), for extensions. */
typedef struct rdv_session_msg {
    char from_node_id[RDV_NODE_ID_LEN + 1];
    char to_node_id[RDV_NODE_ID_LEN + 1];
    char session_id[RDV_SESSION_ID_LEN + 1];
    int64_t timestamp;           /* sender's signing time, ms since epoch */
    rdv_connection_info info;
    char e2e_key[RDV_KEY_HEX_LEN + 1];
    const char *json;
} rdv_session_msg;

/* A verified iceCandidate. */
typedef struct rdv_candidate_msg {
    char from_node_id[RDV_NODE_ID_LEN + 1];
    char to_node_id[RDV_NODE_ID_LEN + 1];
    char session_id[RDV_SESSION_ID_LEN + 1];
    int64_t timestamp;
    rdv_candidate candidate;
    const char *json;
} rdv_candidate_msg;

/* Presence of one node (a `presence` entry, `peerOnline`, `peerOffline`). */
typedef struct rdv_peer {
    char node_id[RDV_NODE_ID_LEN + 1];
    int online;
    int64_t last_seen;           /* ms since epoch, 0 = never seen */
    rdv_nat_type nat_type;       /* RDV_NAT_UNKNOWN in peerOffline */
} rdv_peer;

/* The server queued a message for an offline recipient (`queued`). */
typedef struct rdv_queued {
    char session_id[RDV_SESSION_ID_LEN + 1];
    char to_node_id[RDV_NODE_ID_LEN + 1];
    char type[RDV_MSG_TYPE_LEN + 1]; /* "offer", "answer", "iceCandidate" */
    int64_t expires_at;          /* ms since epoch (server clock) */
} rdv_queued;

/* An error, given to cb_error. Strings other than message are NULL when
 * not applicable. */
typedef struct rdv_error_info {
    int code;                    /* an rdv_err */
    const char *server_code;     /* wire code of a server `error`
                                  * ("peer_offline"); NULL when found locally */
    const char *message;         /* human-readable, never NULL */
    const char *ref;             /* sessionID or requestID it is about */
    const char *msg_type;        /* type of the message concerned */
    const char *field;           /* offending field (dotted), if named */
    const char *from_node_id;    /* claimed sender of a rejected message */
} rdv_error_info;

/* Limits the server announced in `welcome` (PROTOCOL.md 6); 0 before the
 * first welcome; members it left out have PROTOCOL.md's defaults
 * (maxRelaySessions 8, maxRelayPayload 16384, relayIdleTimeoutMs 60000,
 * the rest 0 = not announced). */
typedef struct rdv_limits {
    int64_t max_message_bytes, messages_per_second, message_burst;
    int64_t offline_ttl_ms, offline_queue_max, max_watches;
    int64_t ping_interval_ms, idle_timeout_ms, fresh_past_ms, fresh_future_ms;
    int64_t max_relay_sessions, max_relay_payload, relay_bytes_per_second;
    int64_t relay_global_bytes_per_second; /* 0: none announced */
    int64_t relay_session_quota;           /* bytes per session; 0: none */
    int64_t relay_idle_timeout_ms;         /* open session without data */
} rdv_limits;

/* A snapshot of the client (rdv_client_get_info()). Observed address,
 * server name, time offset and limits are those of the last welcome (kept
 * while disconnected; empty/0 before the first). */
typedef struct rdv_client_info {
    rdv_state state;
    char node_id[RDV_NODE_ID_LEN + 1];
    char server_name[RDV_SERVER_NAME_LEN + 1];
    char observed_ip[RDV_IP_LEN + 1];
    uint16_t observed_port;
    int64_t server_time_offset_ms; /* server clock - local clock */
    rdv_limits limits;
    unsigned connects;             /* welcomes received so far */
    unsigned reconnect_attempt;    /* failed attempts since the last welcome */
    int last_error;                /* last rdv_err of the connection, 0 */
    /* what cb_error said about it: the URL, the cause and the fix (e.g.
     * "... refused the WebSocket upgrade at path /x (HTTP 404): the
     * rendezvous endpoint is /v1"); "" */
    char last_error_text[RDV_ERROR_TEXT_LEN + 1];
} rdv_client_info;

/* Callbacks. `user_ptr` is rdv_client_config.user_ptr. All are optional. */
typedef void (*rdv_cb_state)(rdv_client *c, rdv_state state, void *user_ptr);
typedef void (*rdv_cb_session_msg)(rdv_client *c, const rdv_session_msg *msg, void *user_ptr);
typedef void (*rdv_cb_candidate)(rdv_client *c, const rdv_candidate_msg *msg, void *user_ptr);
typedef void (*rdv_cb_presence)(rdv_client *c, const char *request_id, const rdv_peer *peers,
                                size_t count, void *user_ptr);
typedef void (*rdv_cb_peer)(rdv_client *c, const rdv_peer *peer, void *user_ptr);
typedef void (*rdv_cb_queued)(rdv_client *c, const rdv_queued *q, void *user_ptr);
typedef void (*rdv_cb_error)(rdv_client *c, const rdv_error_info *err, void *user_ptr);

/* A node asked us for a session (a verified relayOpen, or an offer from
 * its rdv_session_connect() carrying its e2eKey). Answer with
 * rdv_session_accept() or rdv_session_reject(), in the callback or later;
 * unanswered within RDV_SESSION_ANSWER_MS it is rejected ("timeout").
 * Without cb_session_request every request is rejected ("no relay
 * handler"). */
typedef struct rdv_session_request {
    char session_id[RDV_SESSION_ID_LEN + 1];
    char from_node_id[RDV_NODE_ID_LEN + 1];
    int64_t timestamp;           /* sender's signing time, ms since epoch */
    int direct;                  /* 1: from rdv_session_connect() (an offer
                                  * with e2eKey); 0: a plain relayOpen */
    rdv_nat_type peer_nat;       /* direct: the NAT type the peer reported */
} rdv_session_request;
typedef void (*rdv_cb_session_request)(rdv_client *c, const rdv_session_request *req,
                                       void *user_ptr);
/* A session we opened is usable: the peer's verified relayReady arrived
 * (rdv_session_open()), or its first path is up (rdv_session_connect()). */
typedef void (*rdv_cb_session_ready)(rdv_client *c, const char *session_id,
                                     const char *peer_node_id, void *user_ptr);
/* One datagram received on an open session, decrypted and authenticated
 * (replays and forgeries go to cb_error as RDV_ERR_DUPLICATE /
 * RDV_ERR_DECRYPT). Not called for a session with a UDP proxy. */
typedef void (*rdv_cb_session_data)(rdv_client *c, const char *session_id,
                                    const uint8_t *data, size_t len, void *user_ptr);
/* A session ended other than by our rdv_session_close() / _reject().
 * `err`: 0 the peer closed or rejected it (reason: its text, e.g.
 * "closed_by_peer"); PEER_OFFLINE; CONNECT (our connection dropped, the
 * server shuts down); TIMEOUT (no relayReady in time, an unanswered
 * request, the server's idle timeout); LIMIT (a session limit or quota);
 * REPLACED; PROTOCOL (no usable e2eKey from the peer); another rdv_err for
 * a server error about it. `reason` is never NULL. The session ID is
 * invalid after this call. */
typedef void (*rdv_cb_session_closed)(rdv_client *c, const char *session_id, int err,
                                      const char *reason, void *user_ptr);
/* The path of an rdv_session_connect() session changed: its first path,
 * an upgrade RELAYED -> DIRECT, a fallback DIRECT -> RELAYED when the
 * direct path stopped answering, or UNKNOWN while it has none for a moment
 * (e.g. between a lost direct path and the relay leg the opener reopens).
 * `elapsed_ms`: since rdv_session_connect() / rdv_session_accept(). */
typedef void (*rdv_cb_path)(rdv_client *c, const char *session_id,
                            const char *peer_node_id, rdv_path path,
                            int64_t elapsed_ms, void *user_ptr);

/* Reconnect policy: after a drop, wait
 *   d = min(max_backoff_ms, initial_backoff_ms * 2^attempt)
 * less a random fraction up to jitter_percent % (d*(1-j) ... d), then
 * connect again. 0 in a field means its default. */
#define RDV_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define RDV_DEFAULT_AUTH_TIMEOUT_MS 10000
#define RDV_DEFAULT_KEEPALIVE_MS 15000   /* below the 55-60 s proxies allow */
#define RDV_DEFAULT_INITIAL_BACKOFF_MS 500
#define RDV_DEFAULT_MAX_BACKOFF_MS 30000
#define RDV_DEFAULT_JITTER_PERCENT 50

typedef struct rdv_reconnect_policy {
    int initial_backoff_ms;    /* first delay */
    int max_backoff_ms;        /* cap */
    int jitter_percent;        /* 0..100; -1 = no jitter */
    int max_attempts;          /* consecutive failures before FAILED; 0 = forever */
} rdv_reconnect_policy;

/* A client's configuration. 0 / NULL in a field means its default. */
typedef struct rdv_client_config {
    /* ws://host[:port][/path] or wss://...; path defaults to "/v1"; IPv6
     * literals in brackets. Required. Copied. Up to 8 URLs separated by
     * commas are one cluster's instances (rendezvousd --redis): the client
     * starts at a random one and moves to the next when a connection fails
     * or ends (client/README "Connection"). */
    const char *server_url;
    const rdv_identity *identity; /* Required. Copied (wiped on destroy). */
    const char *tls_ca_file;   /* PEM CAs to verify a wss:// server; NULL: system's */
    /* The node's fleet certificate file (`rdv fleet sign` writes one), for
     * a server in --admission fleet mode: read at create (RDV_ERR_NOT_FOUND,
     * RDV_ERR_FORMAT when it is no certificate or one for another node)
     * and sent in every hello. NULL: none. */
    const char *cert_file;
    /* hello.software, 1..64 chars (default "librendezvous/"
     * RDV_VERSION_STRING); "" to omit. */
    const char *software;
    /* hello.natType (what lookup shows others). RDV_NAT_UNKNOWN (default):
     * the type NAT discovery found, when it finished before the hello. */
    rdv_nat_type nat_type;
    int connect_timeout_ms;    /* TCP+TLS+upgrade (RDV_DEFAULT_CONNECT_TIMEOUT_MS) */
    int auth_timeout_ms;       /* upgrade -> welcome (RDV_DEFAULT_AUTH_TIMEOUT_MS) */
    /* Silence after which the client sends a `ping`; a connection silent
     * for twice this long is dropped and reconnected (default 15000). */
    int keepalive_ms;
    rdv_reconnect_policy reconnect;

    rdv_cb_state cb_state_changed;
    rdv_cb_session_msg cb_offer;     /* raw level */
    rdv_cb_session_msg cb_answer;    /* raw level */
    rdv_cb_candidate cb_candidate;   /* raw level */
    rdv_cb_presence cb_presence;     /* answers to lookup() and watch() */
    rdv_cb_peer cb_peer_online;      /* a watched node came online */
    rdv_cb_peer cb_peer_offline;     /* a watched node went offline */
    rdv_cb_queued cb_queued;
    /* Server errors; received messages the library rejected (signature,
     * recipient, freshness, replay, malformed: they never reach
     * cb_offer/cb_answer/cb_candidate); why a connection attempt failed or
     * a connection dropped (RDV_ERR_CONNECT, RDV_ERR_TIMEOUT,
     * RDV_ERR_AUTH...); messages accepted by a send call but dropped unsent
     * by a disconnect (RDV_ERR_NOT_CONNECTED). */
    rdv_cb_error cb_error;
    rdv_cb_session_request cb_session_request; /* a peer asks for a session */
    rdv_cb_session_ready cb_session_ready;     /* a session we opened is usable */
    rdv_cb_session_data cb_session_data;       /* a decrypted datagram */
    rdv_cb_session_closed cb_session_closed;   /* a session ended */
    rdv_cb_path cb_path;                       /* rdv_session_connect() path changes */

    /* NAT traversal (rdv_session_connect(), README "Direct connections").
     * The client owns one UDP socket per address family for STUN and every
     * direct path. STUN servers as "host:port" or "[IPv6]:port", tried in
     * order (one that does not answer within the retransmission schedule
     * is skipped for the next). NULL: the server URL's host at
     * RDV_DEFAULT_STUN_PORT. At most RDV_MAX_STUN_SERVERS. Copied. */
    const char *const *stun_servers;
    size_t stun_server_count;
    int stun_disable;          /* 1: no NAT discovery (no server-reflexive
                                * candidate, NAT type from nat_type) */
    int stun_rto_ms;           /* initial STUN retransmission timeout
                                * (RFC 8489 6.2.1; default 250) */
    uint16_t udp_port;         /* local UDP port for STUN and direct paths
                                * (0 = any) */
    int direct_disable;        /* 1: rdv_session_connect() goes straight to the relay */
    int direct_timeout_ms;     /* how long a direct attempt runs before the
                                * relay takes over (default 2500) */
    int direct_keepalive_ms;   /* keepalive on a direct path: every
                                * [k, 5k/3] ms (default 15000: 15-25 s) */
    int spray_ports;           /* many-port probing (symmetric <-> cone):
                                * sockets the symmetric side opens; the
                                * cone side probes 32x as many ports
                                * (default 256; -1 disables) */
    /* Port mapping (README "Port mapping"): unless disabled, the client
     * asks the gateway for a UDP mapping of its IPv4 port with NAT-PMP,
     * else UPnP-IGD, on a thread of its own (never delaying a session),
     * offers the mapped address as a candidate, renews the mapping at half
     * its lifetime and deletes it in rdv_client_destroy(). On by default
     * (as Tailscale does); it lets symmetric NATs connect directly. Never
     * with a server on this host (localhost, 127.x, ::1). */
    int portmap_disable;       /* 1: never ask the gateway */
    int portmap_lease_s;       /* lifetime asked, s (default 7200; at most
                                * RDV_MAX_PORTMAP_LEASE_S) */
    void *user_ptr;
} rdv_client_config;

/* Creates a client from `config` (copied: the caller's strings and
 * identity may be freed afterwards). Does not connect yet: the first
 * rdv_client_process() or rdv_client_start() does (resolving host names
 * synchronously). Returns 0 and the client in *out, or RDV_ERR_INVALID
 * (no identity, or one whose public key does not match its secret key; a
 * value out of range), RDV_ERR_BAD_URL, RDV_ERR_NOMEM, RDV_ERR_CRYPTO,
 * RDV_ERR_IO (no event fd; tls_ca_file or the system CA store of a wss://
 * URL unreadable), cert_file's RDV_ERR_NOT_FOUND / RDV_ERR_FORMAT. */
RDV_API int rdv_client_create(const rdv_client_config *config,
                              rdv_client **out) RDV_MUST_CHECK;

/* Stops the client (closes the connection, joins the background thread if
 * started) and frees it. Pending messages are dropped without error
 * callbacks; no callback runs once this returns. Refused (a message on
 * stderr, nothing done) from a callback of this client. NULL is fine. */
RDV_API void rdv_client_destroy(rdv_client *c);

/* Threaded mode: starts the library's background thread, which connects
 * and keeps the client connected; callbacks run on that thread. Returns 0,
 * RDV_ERR_STATE (already started, or rdv_client_process() was called),
 * RDV_ERR_IO (thread creation failed). */
RDV_API int rdv_client_start(rdv_client *c) RDV_MUST_CHECK;

/* Embedded mode: the descriptor to poll for POLLIN, an epoll fd readable
 * when the WebSocket needs service, a proxy socket (rdv_session_proxy) or
 * the client's UDP sockets received a datagram, or an API call from any
 * thread queued work. Owned by the client (do not close it); the same for
 * the client's life. */
RDV_API int rdv_client_fd(const rdv_client *c);

/* Embedded mode: the longest the application may wait before calling
 * rdv_client_process() even when the fd is not readable, in ms (0 = now;
 * at most 1000; at most 10 while a connection is being set up). Never
 * negative. Call it from the thread that calls rdv_client_process(). */
RDV_API int rdv_client_timeout_ms(rdv_client *c);

/* Embedded mode: does all due work without blocking: connects (the first
 * call starts the first connection), reads and writes the sockets, runs
 * timers, and calls the callbacks. Returns 0, RDV_ERR_STATE on a client
 * started with rdv_client_start(), RDV_ERR_BUSY when called from a
 * callback or from two threads at once. */
RDV_API int rdv_client_process(rdv_client *c);

/* Fills *info with a snapshot of the client. Returns 0 or RDV_ERR_INVALID. */
RDV_API int rdv_client_get_info(rdv_client *c, rdv_client_info *info);

/* Current state (as the last state callback reported it). */
RDV_API rdv_state rdv_client_state(rdv_client *c);

/* The client's node ID (static for the client's life). */
RDV_API const char *rdv_client_node_id(const rdv_client *c);

/* Server clock estimate, ms since epoch: local clock + the offset measured
 * at the last challenge/welcome. Signed messages carry this time. */
RDV_API int64_t rdv_client_server_time_ms(rdv_client *c);

/* Sending (the send, lookup and watch calls below, and the session calls).
 * Messages are queued for the current connection (bounded:
 * RDV_ERR_BACKLOG when full) and written by the service loop. They fail
 * fast with RDV_ERR_NOT_CONNECTED unless AUTHENTICATED; nothing is queued
 * across reconnects. One accepted (0) but dropped by a disconnect before
 * it was written is reported to cb_error (RDV_ERR_NOT_CONNECTED, its ref),
 * as are failures the server reports (peer_offline, queue_full...).
 * RDV_ERR_INVALID: a bad node ID (or to = self), session ID, or field. */

/* Raw level: signs and sends an `offer` to `to_node_id` for `session_id`
 * (a new UUID from rdv_session_id_generate()) with our connection info. */
RDV_API int rdv_client_send_offer(rdv_client *c, const char *to_node_id, const char *session_id,
                                  const rdv_connection_info *info) RDV_MUST_CHECK;

/* Raw level: signs and sends an `answer` (the offer's session_id). */
RDV_API int rdv_client_send_answer(rdv_client *c, const char *to_node_id, const char *session_id,
                                   const rdv_connection_info *info) RDV_MUST_CHECK;

/* Raw level: signs and sends an `iceCandidate` for session_id. */
RDV_API int rdv_client_send_candidate(rdv_client *c, const char *to_node_id,
                                      const char *session_id,
                                      const rdv_candidate *cand) RDV_MUST_CHECK;

/* Sends `lookup` for `count` (1..RDV_MAX_IDS_PER_CALL) node IDs; the answer
 * arrives at cb_presence with the request ID written to request_id_out
 * (may be NULL). */
RDV_API int rdv_client_lookup(rdv_client *c, const char *const *node_ids, size_t count,
                              char request_id_out[RDV_REQUEST_ID_LEN + 1]) RDV_MUST_CHECK;

/* Adds node IDs to the watch set. Watches are state, not a message: the
 * set is sent now when AUTHENTICATED (answered by cb_presence) and again
 * after every reconnect, so this succeeds while disconnected too. IDs
 * already watched are ignored; cb_peer_online / cb_peer_offline report
 * changes. RDV_ERR_LIMIT when the set would exceed the server's
 * maxWatches (4096 before the first welcome). */
RDV_API int rdv_client_watch(rdv_client *c, const char *const *node_ids,
                             size_t count) RDV_MUST_CHECK;

/* Removes node IDs from the watch set (sends `unwatch` when connected).
 * IDs not watched are ignored. Succeeds while disconnected. */
RDV_API int rdv_client_unwatch(rdv_client *c, const char *const *node_ids,
                               size_t count) RDV_MUST_CHECK;

/* Number of node IDs in the watch set. */
RDV_API size_t rdv_client_watch_count(rdv_client *c);

/* Number of messages (text and relay frames) queued and not yet handed to
 * the socket. To have its last messages delivered (e.g. data then
 * rdv_session_close()), a program waits for 0 before rdv_client_destroy(). */
RDV_API size_t rdv_client_pending(rdv_client *c);

/* ------------------------------------------------------------------------
 * Sessions, end-to-end encrypted (client/README "Relay", PROTOCOL.md 9)
 *
 * The opener calls rdv_session_open() (relay only) or rdv_session_connect()
 * (direct first, next section); the peer gets cb_session_request and
 * answers rdv_session_accept() (open for it when that returns 0) or
 * rdv_session_reject(); the opener gets cb_session_ready or
 * cb_session_closed. Both sides use rdv_session_send() / cb_session_data
 * and end with rdv_session_close(). Datagrams are encrypted between the two
 * nodes (X25519 keys per session as `e2eKey`, ChaCha20-Poly1305, a replay
 * window); no retransmission. Sessions live with the connection: a drop
 * ends those without a direct path (cb_session_closed, RDV_ERR_CONNECT).
 * ---------------------------------------------------------------------- */

#define RDV_RELAY_OVERHEAD 24          /* counter (8) + tag (16) per datagram */
#define RDV_RELAY_DEFAULT_PAYLOAD 16384 /* maxRelayPayload if not announced */
#define RDV_SESSION_OPEN_TIMEOUT_MS 30000 /* opener waits this for relayReady */
#define RDV_SESSION_ANSWER_MS 30000    /* an unanswered request is rejected */
#define RDV_MAX_SESSIONS 64            /* sessions (any state) per client */

/* Opens a relay session to `peer_node_id`: makes an ephemeral key, signs
 * and sends relayOpen with it. The new session ID is written to
 * session_id_out before relayOpen is queued (a callback may name it before
 * this returns); "" on failure. Returns 0, RDV_ERR_INVALID (bad node ID,
 * ourselves), RDV_ERR_NOT_CONNECTED, RDV_ERR_NOT_SUPPORTED (the server's
 * relay is off: maxRelaySessions 0), RDV_ERR_LIMIT (RDV_MAX_SESSIONS, or
 * the server's maxRelaySessions counting our open and opening sessions),
 * RDV_ERR_BACKLOG, RDV_ERR_NOMEM, RDV_ERR_CRYPTO. Delivery problems (peer
 * offline, server limits) arrive as cb_session_closed. */
RDV_API int rdv_session_open(rdv_client *c, const char *peer_node_id,
                             char session_id_out[RDV_SESSION_ID_LEN + 1]) RDV_MUST_CHECK;

/* Accepts a pending request (cb_session_request): makes our ephemeral key,
 * derives the session keys, signs and sends relayReady; the session is
 * open when this returns 0 (no cb_session_ready on this side). A
 * direct-capable request (req->direct) gets the answer and our candidates
 * instead, and has no path until cb_path reports one (rdv_session_send()
 * returns RDV_ERR_STATE until then). Returns 0, RDV_ERR_NO_SESSION (no
 * such pending request: answered, expired or closed by the peer),
 * RDV_ERR_NOT_CONNECTED, RDV_ERR_BACKLOG, RDV_ERR_CRYPTO (the peer's key
 * is unusable; the request is rejected). */
RDV_API int rdv_session_accept(rdv_client *c, const char *session_id) RDV_MUST_CHECK;

/* Rejects a pending request: sends relayClose with `reason` (NULL:
 * "rejected"; at most 512 characters) and forgets it. A direct-capable
 * request is declined with an answer without e2eKey instead (the opener
 * sees "rejected"). Returns 0, RDV_ERR_NO_SESSION, RDV_ERR_INVALID (reason
 * too long). */
RDV_API int rdv_session_reject(rdv_client *c, const char *session_id, const char *reason);

/* Encrypts buf[0..len) (len may be 0) and sends it on an open session: as
 * one binary relayData frame (PROTOCOL.md 9.3), or on an
 * rdv_session_connect() session's current path. Returns 0,
 * RDV_ERR_NO_SESSION (unknown or not open yet), RDV_ERR_STATE (an
 * rdv_session_connect() session before its first path), RDV_ERR_TOO_LARGE
 * (len > rdv_client_max_payload()), RDV_ERR_NOT_CONNECTED,
 * RDV_ERR_BACKLOG (send queue full: not sent; drop it or retry later),
 * RDV_ERR_LIMIT (2^64 datagrams sent: close and reopen), RDV_ERR_NOMEM.
 * Between two paths (cb_path reported RDV_PATH_UNKNOWN after a first
 * path) a session holds what is sent, up to RDV_PATH_GAP_MAX_DATAGRAMS
 * datagrams and RDV_PATH_GAP_MAX_BYTES bytes (beyond: RDV_ERR_BACKLOG),
 * and sends it in order on the next path; held datagrams of a session
 * that ends are dropped. */
RDV_API int rdv_session_send(rdv_client *c, const char *session_id, const void *buf,
                             size_t len) RDV_MUST_CHECK;

/* Ends a session in any state (open, opening, or an unanswered request =
 * a reject): sends relayClose with reason "closed_by_peer" (PROTOCOL.md
 * 9.3; the peer's cb_session_closed gets err 0 and that reason, on either
 * path), wipes the keys, closes its UDP proxy. No cb_session_closed for
 * it here. Returns 0 or RDV_ERR_NO_SESSION. */
RDV_API int rdv_session_close(rdv_client *c, const char *session_id);

/* Largest datagram rdv_session_send() takes: the server's maxRelayPayload
 * (RDV_RELAY_DEFAULT_PAYLOAD before the first welcome or when not
 * announced) minus RDV_RELAY_OVERHEAD. */
RDV_API size_t rdv_client_max_payload(rdv_client *c);

/* Number of sessions that are open now. */
RDV_API unsigned rdv_client_session_count(rdv_client *c);

/* UDP proxy on an OPEN session, e.g. for WireGuard (client/README "UDP
 * proxy"): binds a UDP socket to `listen_addr` ("127.0.0.1:PORT" or
 * "[::1]:PORT"; port 0 picks one, written to *port_out if not NULL).
 * Datagrams received on it go to the peer (too big or meeting a full
 * queue: dropped and counted); the peer's go to the last local sender,
 * or before any to `forward_addr` (NULL: dropped). The socket is part of
 * rdv_client_fd(), closed with the session; no cb_session_data for it.
 * Bind to loopback: any local process that can send to it can send into
 * the session. Returns 0, RDV_ERR_NO_SESSION, RDV_ERR_INVALID (bad
 * address), RDV_ERR_STATE (already has a proxy), RDV_ERR_IO (errno). */
RDV_API int rdv_session_proxy(rdv_client *c, const char *session_id,
                              const char *listen_addr, const char *forward_addr,
                              uint16_t *port_out) RDV_MUST_CHECK;

/* ------------------------------------------------------------------------
 * Direct connections: NAT traversal with the relay as fallback
 * (client/README "Direct connections", PROTOCOL.md 14)
 *
 * rdv_session_connect() sends a signed offer with an e2eKey, trickles our
 * candidates, and both sides punch with authenticated probes. Neither side
 * symmetric: a direct attempt for direct_timeout_ms, then the relay; a
 * symmetric side: the relay at once, upgraded when a probe (many-port
 * probing between symmetric and cone) gets through; both symmetric: relay
 * only. A direct path is kept alive and falls back to the relay. The peer
 * gets cb_session_request with req->direct = 1; both sides get cb_path for
 * every path change; the session API works the same on either path.
 * ---------------------------------------------------------------------- */

#define RDV_DEFAULT_STUN_PORT 3478
#define RDV_MAX_STUN_SERVERS 8
#define RDV_DEFAULT_DIRECT_TIMEOUT_MS 2500
#define RDV_DEFAULT_DIRECT_KEEPALIVE_MS 15000
#define RDV_DEFAULT_SPRAY_PORTS 256
#define RDV_MAX_PORTMAP_LEASE_S 604800 /* a week: UPnP-IGD's longest lease */
#define RDV_DIRECT_OVERHEAD 41   /* kind (1) + session (16) + counter (8) +
                                  * tag (16) per direct datagram */
/* Held per session while it is between two paths (see rdv_session_send). */
#define RDV_PATH_GAP_MAX_DATAGRAMS 256
#define RDV_PATH_GAP_MAX_BYTES (256 * 1024)

/* Opens a direct-then-relay session to `peer_node_id` (see above). The
 * session ID is written to session_id_out before anything is queued.
 * Returns 0, RDV_ERR_INVALID, RDV_ERR_NOT_CONNECTED, RDV_ERR_LIMIT,
 * RDV_ERR_BACKLOG, RDV_ERR_NOMEM, RDV_ERR_CRYPTO; later failures arrive
 * as cb_session_closed. */
RDV_API int rdv_session_connect(rdv_client *c, const char *peer_node_id,
                                char session_id_out[RDV_SESSION_ID_LEN + 1]) RDV_MUST_CHECK;

/* The client's NAT traversal, as `rdv network status` shows it. NAT fields
 * are filled once discovery finished (nat_discovered); times not reached
 * are -1. */
typedef struct rdv_network_status {
    rdv_state state;
    char relay_server[RDV_URL_LEN + 1]; /* the server URL (relay of last resort) */
    char server_name[RDV_SERVER_NAME_LEN + 1]; /* as its challenge names it, "" before */
    /* public endpoint: from STUN when discovery answered
     * (public_endpoint_from_stun), else the address the server observed
     * for our WebSocket */
    char public_ip[RDV_IP_LEN + 1];
    uint16_t public_port;
    int public_endpoint_from_stun;
    rdv_nat_type nat_type;           /* discovered (or config nat_type) */
    int nat_discovered;              /* discovery finished (even "unknown") */
    int no_nat;                      /* STUN saw our own address: no NAT */
    char nat_method[RDV_NAT_METHOD_LEN + 1]; /* how the type was found */
    char stun_server[RDV_ENDPOINT_LEN + 1]; /* "ip:port" that answered, "" none */
    int64_t nat_discovery_ms;        /* how long discovery took */
    uint64_t direct_sessions;        /* sessions that reached a direct path */
    int64_t last_connect_ms;         /* last session: time to its first path
                                      * (relay: relayOpen to relayReady; 0 on
                                      * the accepting side) */
    int64_t last_direct_ms;          /* last session: time to direct */
    int relay_available;             /* server announced maxRelaySessions>0 */
    int64_t max_relay_sessions;
    unsigned active_relays;          /* open sessions */
    unsigned pending_relays;         /* opening or awaiting our answer */
    uint64_t relays_opened;          /* sessions that reached open */
    uint64_t relay_tx_datagrams, relay_rx_datagrams;
    uint64_t relay_tx_bytes, relay_rx_bytes; /* plaintext bytes */
    uint64_t relay_dropped;          /* replayed, forged, too big, backlog */
    rdv_path last_path;
    int last_direct_error;           /* rdv_err; 0 none (no direct path yet) */
    char last_direct_error_text[RDV_SESSION_ERROR_TEXT_LEN + 1];
    int last_relay_error;            /* rdv_err of the last failed or
                                      * abnormally ended session, 0 none */
    char last_relay_error_text[RDV_SESSION_ERROR_TEXT_LEN + 1];
    /* Port mapping (cfg.portmap_disable): */
    char portmap_protocol[RDV_PORTMAP_PROTOCOL_LEN + 1]; /* "natpmp", "upnp"; "" none */
    char portmap_public[RDV_ENDPOINT_LEN + 1]; /* mapped "ip:port", "" none */
    uint32_t portmap_lifetime_s;     /* granted (0: permanent or none) */
    uint32_t portmap_renewals;       /* renewals the gateway granted */
    char portmap_status[RDV_NAT_METHOD_LEN + 1]; /* what the mapper did last */
} rdv_network_status;

/* Fills *st. Returns 0 or RDV_ERR_INVALID. */
RDV_API int rdv_client_get_network_status(rdv_client *c, rdv_network_status *st);

/* Tells the client that the host's network changed (an interface or
 * address came or went, a Wi-Fi or VPN switch). Soon after, on its thread
 * (or in the next rdv_client_process()): NAT discovery runs again, our
 * candidates are gathered again and new ones go to the peers of open
 * rdv_session_connect() sessions (one session every 200 ms); direct paths
 * are checked at once and sessions without one probe on the fast schedule
 * again. Without this call the client finds changes itself, more slowly
 * (mapping refreshed every 20 s, discovery every 5 min). Returns 0 or
 * RDV_ERR_INVALID. */
RDV_API int rdv_client_network_changed(rdv_client *c);

/* One session's path, from rdv_session_get_info(). Times are ms since
 * rdv_session_connect() / rdv_session_accept(); -1 when not reached. */
typedef struct rdv_session_info {
    char peer_node_id[RDV_NODE_ID_LEN + 1];
    int direct_capable;              /* made by rdv_session_connect() (or its offer) */
    int open;                        /* keys agreed */
    rdv_path path;                   /* now (UNKNOWN: none yet) */
    int64_t first_path_ms;           /* first usable path */
    int64_t relayed_ms;              /* relay path usable */
    int64_t direct_ms;               /* direct path confirmed */
    int upgraded;                    /* direct after the session was relayed */
    int via_spray;                   /* found by many-port probing */
    rdv_nat_type peer_nat;
    char remote[RDV_ENDPOINT_LEN + 1]; /* direct path "ip:port" / "[ip]:port" */
    uint64_t direct_tx_datagrams, direct_rx_datagrams;
    int last_direct_error;           /* RDV_ERR_*, 0 none */
    char last_direct_error_text[RDV_SESSION_ERROR_TEXT_LEN + 1];
    /* The direct leg's timeline, ms since rdv_session_connect() / accept
     * like the times above (-1: not yet): keys and the peer's
     * connectionInfo in hand (its other candidates follow in the same
     * order on the WebSocket), and the connectivity checks started (later
     * when a symmetric NAT makes the relay go first). */
    int64_t candidates_ms;
    int64_t checks_ms;
    uint32_t probe_rounds;           /* check rounds sent while no direct path */
} rdv_session_info;

/* Fills *out for session `session_id`. Returns 0, RDV_ERR_INVALID,
 * RDV_ERR_NO_SESSION. */
RDV_API int rdv_session_get_info(rdv_client *c, const char *session_id,
                                 rdv_session_info *out) RDV_MUST_CHECK;

#ifdef __cplusplus
}
#endif

#endif
