/* direct.h - direct paths between nodes: NAT discovery, candidates, hole
 * punching with authenticated probes, keepalive, fallback to the relay and
 * upgrade from it (internal; never installed). PROTOCOL.md 14 is the wire
 * format; README "Direct connections" the behaviour.
 *
 * A session made by rdv_connect() (or the peer's offer carrying e2eKey) is
 * an rdv__relay with a non-NULL `d`: it shares the relay session's ID,
 * peer, state, keys (one rdv__e2e: one counter space and one replay
 * window for both paths) and UDP proxy, and adds the direct-path state
 * below. Its relay "leg" (relayOpen / relayReady with the same session ID)
 * is opened by the initiator only when the decision needs it.
 *
 * Locking as in client_internal.h: rdv__direct lives inside a session and
 * is protected by c->lock; sockets are read and timers run on the service
 * thread only.
 */
#ifndef RDV_CLIENT_DIRECT_H
#define RDV_CLIENT_DIRECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cand.h"
#include "dwire.h"
#include "hold.h"

#define RDV__MAX_REMOTE_CANDS 16     /* candidates kept per session */
#define RDV__UDP_BUFFER_BYTES (4 * 1024 * 1024) /* SO_RCVBUF / SO_SNDBUF asked */
#define RDV__MAX_PAIRS 32            /* (local socket, remote address) checks */
#define RDV__MAX_LOCAL_CANDS 12      /* our gathered candidates */
#define RDV__SPRAY_MAX 256           /* sockets of the symmetric side */
#define RDV__SPRAY_TOTAL_MAX 1024    /* spray sockets of all sessions */
#define RDV__SPRAY_PROBES_PER_PORT 32 /* cone side: probes per spray socket */
#define RDV__SPRAY_BATCH 64          /* cone side: probes per 50 ms tick */
#define RDV__SPRAY_HARD_MS 30000     /* symmetric side keeps its ports open */
#define RDV__SPRAY_PORT_MIN 1024     /* ports a NAT allocates from */
#define RDV__CLOSE_REPEAT 3          /* close probes sent (datagrams get lost) */
#define RDV__CONSENT_QUIET_MS 5000   /* sending but hearing nothing: check */
#define RDV__CONSENT_DEAD_MS 10000   /* ...and give the path up after this */
#define RDV__STUN_REFRESH_MS 20000   /* keeps the server-reflexive mapping */
#define RDV__STUN_REDISCOVER_MS 300000 /* full discovery again */
#define RDV__REASON_DIRECT "direct"  /* relayClose of a leg no longer needed */
#define RDV__NO_PATH_MS 30000        /* an open session without a path ends */
#define RDV__OFFER_WAIT_MS 5000      /* rdv_connect() waits for discovery */
#define RDV__LEG_LINGER_MS 3000      /* relay leg kept after the direct path
                                      * came up, while the peer confirms its own */
#define RDV__RETRICKLE_GAP_MS 200    /* new candidates: one session per gap
                                      * (the server's message rate) */

/* One connectivity check: a remote address probed from a local socket. */
typedef struct rdv__pair {
    int fd;
    struct sockaddr_storage addr;
    socklen_t len;
    uint32_t prio;                   /* the remote candidate's priority */
    uint8_t txid[RDV__DWIRE_TXID_BYTES];
    bool valid;                      /* its ack came back */
} rdv__pair;

/* Direct-path state of one session. */
typedef struct rdv__direct {
    rdv_nat_type peer_nat;
    uint8_t my_pk[32];               /* our e2eKey, sent again in relayOpen/Ready */
    uint8_t tx_mac[32], rx_mac[32];  /* probe MAC keys (dwire.h) */
    bool keys;                       /* e2e keys and MAC keys derived */
    rdv__cand remote[RDV__MAX_REMOTE_CANDS];
    size_t nremote;
    rdv__pair pairs[RDV__MAX_PAIRS];
    size_t npairs;
    int64_t t0;                      /* rdv_connect() / accept, monotonic ms */
    int64_t probe_start, next_probe; /* checks; 0 = not running */
    int64_t direct_deadline;         /* initiator: relay after this; 0 none */
    bool checks_deferred;            /* relay first: checks once it is up */
    bool relay_leg;                  /* relayOpen sent (initiator) or received */
    bool relay_up;                   /* relay leg usable */
    bool direct_up;
    int dfd;                         /* socket of the direct path */
    struct sockaddr_storage daddr;   /* the peer's address on it */
    socklen_t dlen;
    int64_t last_rx;                 /* last authenticated packet on it */
    int64_t last_tx_data;
    int64_t next_keepalive;
    int64_t next_consent;
    uint8_t ka_txid[RDV__DWIRE_TXID_BYTES]; /* last keepalive / consent probe */
    bool relay_wanted;               /* initiator: the decision needs the leg */
    int64_t next_relay_try;          /* retry of a relayOpen that failed */
    int64_t leg_close_at;            /* initiator: close the relay leg then */
    bool offer_pending;              /* initiator: offer waits for discovery */
    bool retrickle;                  /* our candidates changed: send them again */
    int64_t no_path_since;           /* open without any path since; 0 */
    int path;                        /* rdv_traversal */
    int64_t first_path_ms, relayed_ms, direct_ms;
    bool announced;                  /* initiator: cb_relay_ready given */
    bool upgraded, via_spray;
    /* Many-port probing. Symmetric side: sockets that each probe the
     * peer's server-reflexive address. Cone side: probes to random ports
     * of the peer's public IP. */
    int spray_fd[RDV__SPRAY_MAX];
    bool spray_used[RDV__SPRAY_MAX]; /* carried authenticated peer traffic:
                                      * kept while the session lives (the
                                      * peer's path may end there) */
    size_t nspray;
    bool spraying;                   /* symmetric side: probing from them */
    int64_t spray_until, next_spray;
    uint8_t spray_txid[RDV__DWIRE_TXID_BYTES];
    bool spray_started;              /* spray_txid is in use */
    struct sockaddr_storage spray_target; /* peer srflx (hard) / IP (easy) */
    socklen_t spray_target_len;
    uint32_t spray_left;             /* cone side: probes still to send */
    uint64_t dtx, drx;
    rdv__hold held;                  /* sent while between two paths */
    int last_err;
    char last_err_text[128];
} rdv__direct;

#endif
