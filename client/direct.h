/* direct.h - the direct leg of a session (internal; never installed): UDP
 * hole punching with authenticated probes, keepalive and consent, and the
 * signaling that sets it up. PROTOCOL.md 14 is the wire format; client/README
 * "Direct connections" the behaviour. Three files implement it:
 *   direct_signal.c  rdv_client_connect(), offer / answer / iceCandidate of
 *                    the direct leg, accepting a connect request;
 *   direct_probe.c   connectivity checks (probes, acks), many-port probing
 *                    ("spray"), reading the UDP sockets;
 *   direct_path.c    the direct path once confirmed: keepalive and consent,
 *                    sending data on it, losing it, the status fields.
 * The session that owns the leg, and the decision between the direct and
 * the relay leg, are session.h; the UDP sockets and NAT discovery are
 * nat/discovery.h.
 *
 * A direct-then-relay session is an rdv__session with a non-NULL `direct`:
 * it shares the session's ID, peer, state, keys (one rdv__e2e: one counter
 * space and one replay window for both legs) and UDP proxy, and adds the
 * state below. Its relay leg (relayOpen / relayReady with the same session
 * ID) is opened by the initiator only when the decision needs it.
 *
 * Locking: rdv__direct lives inside a session and is protected by c->lock;
 * sockets are read and timers run on the service thread only.
 */
#ifndef RDV_CLIENT_DIRECT_H
#define RDV_CLIENT_DIRECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/client.h"

#include "client/nat/candidates.h"
#include "client/nat/path_wire.h"
#include "client/session.h"
#include "client/session_hold.h"

#define RDV__MAX_REMOTE_CANDS 16     /* candidates kept per session */
#define RDV__MAX_PAIRS 32            /* (local socket, remote address) checks */
#define RDV__SPRAY_MAX 256           /* sockets of the symmetric side */
#define RDV__SPRAY_TOTAL_MAX 1024    /* spray sockets of all sessions */
#define RDV__SPRAY_PROBES_PER_PORT 32 /* cone side: probes per spray socket */
#define RDV__SPRAY_BATCH 64          /* cone side: probes per 50 ms tick */
#define RDV__SPRAY_HARD_MS 30000     /* symmetric side keeps its ports open */
#define RDV__SPRAY_PORT_MIN 1024     /* ports a NAT allocates from */
#define RDV__CLOSE_REPEAT 3          /* close probes sent (datagrams get lost) */
#define RDV__CONSENT_QUIET_MS 5000   /* sending but hearing nothing: check */
#define RDV__CONSENT_DEAD_MS 10000   /* ...and give the path up after this */
#define RDV__REASON_DIRECT "direct"  /* relayClose of a leg no longer needed */
#define RDV__NO_PATH_MS 30000        /* an open session without a path ends */
#define RDV__OFFER_WAIT_MS 5000      /* an offer / answer waits for the
                                      * mapping behaviour (nat.decided) */
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
    uint8_t txid[RDV__PATH_WIRE_TXID_BYTES];
    bool valid;                      /* its ack came back */
} rdv__pair;

/* Direct-path state of one session. */
typedef struct rdv__direct {
    rdv_nat_type peer_nat;
    uint8_t my_pk[32];               /* our e2eKey, sent again in relayOpen/Ready */
    uint8_t tx_mac[32], rx_mac[32];  /* probe MAC keys (nat/path_wire.h) */
    bool keys;                       /* e2e keys and MAC keys derived */
    bool peer_mapped;                /* a remote candidate is portMapped */
    rdv__cand remote[RDV__MAX_REMOTE_CANDS];
    size_t nremote;
    rdv__pair pairs[RDV__MAX_PAIRS];
    size_t npairs;
    int64_t t0;                      /* rdv_session_connect() / accept, monotonic ms */
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
    uint8_t ka_txid[RDV__PATH_WIRE_TXID_BYTES]; /* last keepalive / consent probe */
    bool relay_wanted;               /* initiator: the decision needs the leg */
    int64_t next_relay_try;          /* retry of a relayOpen that failed */
    int64_t leg_close_at;            /* initiator: close the relay leg then */
    bool offer_pending;              /* initiator: offer waits for nat.decided */
    bool answer_pending;             /* answerer: accepted, the answer waits
                                      * for nat.decided (then the decision) */
    bool retrickle;                  /* our candidates changed: send them again */
    int64_t no_path_since;           /* open without any path since; 0 */
    rdv_path path;                   /* now */
    int64_t first_path_ms, relayed_ms, direct_ms;
    int64_t cands_ms, checks_ms;     /* rdv_session_info candidates_ms / checks_ms */
    uint32_t probe_rounds;           /* check rounds sent while no direct path */
    bool announced;                  /* initiator: cb_session_ready given */
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
    uint8_t spray_txid[RDV__PATH_WIRE_TXID_BYTES];
    bool spray_started;              /* spray_txid is in use */
    struct sockaddr_storage spray_target; /* peer srflx (hard) / IP (easy) */
    socklen_t spray_target_len;
    uint32_t spray_left;             /* cone side: probes still to send */
    uint64_t dtx, drx;
    rdv__hold held;                  /* sent while between two paths */
    int last_err;
    char last_err_text[128];
} rdv__direct;

/* ---- helpers shared by the three files ---- */

static inline int64_t rdv__direct_ms_since(const rdv__direct *d, int64_t now)
{
    return now - d->t0;
}

static inline bool rdv__nat_is_symmetric(rdv_nat_type n)
{
    return n == RDV_NAT_SYMMETRIC;
}

static inline bool rdv__nat_is_cone(rdv_nat_type n)
{
    return n == RDV_NAT_FULL_CONE || n == RDV_NAT_RESTRICTED_CONE ||
           n == RDV_NAT_PORT_RESTRICTED;
}

/* Records the leg's last error (text copied, cut to fit). */
void rdv__direct_set_error(rdv__direct *d, int err, const char *text);

/* ---- direct_signal.c ---- */

/* A verified offer / answer / iceCandidate: true when it belonged to the
 * direct machinery (a connect request or one of its sessions). (S) */
bool rdv__direct_on_routed(rdv_client *c, const rdv_msg *m);
/* Declines a connect request: an answer without e2eKey (PROTOCOL.md
 * 14.1). Returns what rdv__send_body returns. */
int rdv__direct_send_refusal(rdv_client *c, const char *peer, const char *sid);
/* Accepting a connect request: keys, answer, the decision. */
int rdv__direct_accept(rdv_client *c, const char *sid);
/* Our candidates gained an address (discovery, a network change): every
 * session whose offer / answer went out sends its candidates again
 * (paced), and those without a direct path check again at once. (L held) */
void rdv__direct_candidates_gained_locked(rdv_client *c, int64_t now);
/* rdv_client_network_changed(): direct paths are checked at once (a
 * keepalive now), sessions without one probe on the fast schedule
 * again. (L held) */
void rdv__direct_network_changed_locked(rdv_client *c, int64_t now);
/* Sends the offers and answers that waited for the mapping behaviour and
 * the candidates of one session that wants them again (paced). (S) */
void rdv__direct_signal_service(rdv_client *c, int64_t now);

/* ---- direct_probe.c ---- */

/* True when both sides have a global IPv6 address (our host candidates,
 * the peer's candidates so far): a direct path over IPv6 is expected
 * whatever the IPv4 NATs are (rdv__cand_addr_global_v6). (L held) */
bool rdv__direct_v6_both_locked(const rdv_client *c, const rdv__direct *d);
/* Adds a remote candidate (deduplicated) and its check. (L held) */
void rdv__direct_add_remote_locked(rdv_client *c, rdv__direct *d, const rdv__cand *k);
/* Sends one probe (txid, our role's flags | extra) from fd to `to`.
 * (L held) */
void rdv__direct_send_probe_locked(rdv__session *r, int fd, const struct sockaddr_storage *to,
                                   socklen_t tolen,
                                   const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES], uint8_t extra);
/* Starts the checks and, between a symmetric and a cone NAT, many-port
 * probing. (L held) */
void rdv__direct_start_probing_locked(rdv_client *c, rdv__session *r, int64_t now);
/* Ends many-port probing: closes every spray socket (all), or those that
 * never carried authenticated traffic from the peer and do not carry our
 * path. (L held) */
void rdv__direct_close_spray_locked(rdv_client *c, rdv__direct *d, bool all);
/* Notes that spray socket fd (if it is one) carried authenticated traffic
 * from the peer. (L held) */
void rdv__direct_spray_used_locked(rdv__direct *d, int fd);
/* Checks and many-port probes due now, for a leg without a path. (L held) */
void rdv__direct_probe_tick_locked(rdv_client *c, rdv__session *r, int64_t now);
/* Reads the client's two UDP sockets (STUN goes to discovery), and the
 * spray sockets of every session. (S) */
void rdv__direct_read_main(rdv_client *c, int64_t now);
void rdv__direct_read_spray(rdv_client *c, int64_t now);

/* ---- direct_path.c ---- */

/* A check succeeded: (fd, addr) reaches the peer; the path is direct.
 * (L held) */
void rdv__direct_confirmed_locked(rdv_client *c, rdv__session *r, int fd,
                                  const struct sockaddr_storage *a, socklen_t len, bool spray,
                                  int64_t now, rdv__session_events *q);
/* The direct path stopped answering (`why`): back to the relay. (L held) */
void rdv__direct_lost_locked(rdv_client *c, rdv__session *r, int64_t now, const char *why,
                             rdv__session_events *q);
/* Keepalive and consent of a confirmed path: a probe when due, the path
 * lost when it stopped answering. (L held) */
void rdv__direct_keepalive_tick_locked(rdv_client *c, rdv__session *r, int64_t now,
                                       rdv__session_events *q);
/* Sends a datagram on the direct path: 0, an RDV_ERR_*, or 1 when the
 * session has no direct path now. (L held) */
int rdv__direct_send_locked(rdv_client *c, rdv__session *r, const void *buf, size_t len);
/* An authenticated DATA packet of session r arrived on fd from `from`:
 * counts it and keeps the direct path alive. (L held) */
void rdv__direct_on_rx_locked(rdv__session *r, int fd, const struct sockaddr_storage *from,
                              int64_t now);
/* The session ends: close probes to the peer, spray sockets deferred.
 * (L held) */
void rdv__direct_detach_locked(rdv_client *c, rdv__session *r);
/* Fills the NAT / direct fields of a network status. (L held) */
void rdv__direct_status_locked(rdv_client *c, rdv_network_status *st);

#endif
