/* session.h - a session between two nodes (internal; never installed).
 *
 * A session has an ID, a peer, a state and one set of end-to-end keys, and
 * owns up to two legs that carry its datagrams:
 *   - the relay leg (relay.c): relayOpen / relayReady / relayData through
 *     the server, PROTOCOL.md 9;
 *   - the direct leg (direct.h: direct_signal.c, direct_probe.c,
 *     direct_path.c), for a session made by rdv_client_connect() or an offer
 *     carrying e2eKey, PROTOCOL.md 14.
 * A session opened with the relay API has no direct leg (`direct` NULL) and
 * its relay leg is the session. A direct-then-relay session decides which
 * leg carries it (session.c: the path decision), holds what the
 * application sends while it is between two paths (session_hold.h), and
 * reports the path in cb_path.
 *
 * Locking: sessions live in c->sessions under c->lock; callbacks are
 * called on the service thread after the lock was released, from the work
 * collected in an rdv__session_events.
 */
#ifndef RDV_CLIENT_SESSION_H
#define RDV_CLIENT_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/e2e.h"
#include "rendezvous/rendezvous.h"

struct rdv__direct;

/* Session states (this node's view). */
typedef enum rdv__session_state {
    RDV__SS_REQUESTED = 0, /* peer's relayOpen / offer received, not answered yet */
    RDV__SS_OPENING,       /* our relayOpen / offer sent, waiting for the answer */
    RDV__SS_OPEN           /* keys derived, data flows */
} rdv__session_state;

/* One session, in c->sessions (L). */
typedef struct rdv__session {
    struct rdv__session *next;
    char sid[RDV_SESSION_ID_LEN + 1];
    uint8_t sid_bytes[RDV__E2E_AD_BYTES];
    char peer[RDV_NODE_ID_LEN + 1];
    rdv__session_state st;
    bool initiator;                 /* we opened it */
    rdv__e2e_keypair kp;            /* ours; wiped once keys are derived */
    uint8_t peer_pk[RDV__E2E_PK_BYTES]; /* REQUESTED: the opener's e2eKey */
    rdv__e2e e2e;                   /* OPEN: keys, counters, window (both legs) */
    int64_t deadline;               /* monotonic ms: open / answer timeout */
    int64_t req_ts;                 /* relayOpen timestamp (REQUESTED) */
    struct rdv__direct *direct;     /* the direct leg (direct.h), or NULL */
    /* UDP proxy (proxy.c); proxy_fd -1 when none. */
    int proxy_fd;
    struct sockaddr_storage dest;   /* last local sender / forward address */
    socklen_t dest_len;             /* 0: nowhere to deliver yet */
} rdv__session;

/* ---- the session table (session.c) ---- */

/* Finds a session by ID text / by its 16 UUID bytes. (L held) */
rdv__session *rdv__session_find_locked(rdv_client *c, const char *sid);
rdv__session *rdv__session_find_bytes_locked(rdv_client *c, const uint8_t sid[16]);
/* Sessions in `state` (-1: all). (L held) */
unsigned rdv__session_count_locked(rdv_client *c, int state);
/* Unlinks r, detaches its sockets and legs and wipes its keys; returns r.
 * (L held) */
rdv__session *rdv__session_end_locked(rdv_client *c, rdv__session *r);
/* A new session we open to `peer`: checks the arguments (session_id_out
 * gets "" first) and that we are AUTHENTICATED, then makes it OPENING,
 * initiator, with a fresh UUID, ephemeral keypair and the open timeout;
 * not linked. Returns 0 and *out, or RDV_ERR_INVALID, RDV_ERR_NOT_CONNECTED,
 * RDV_ERR_NOMEM, RDV_ERR_CRYPTO. (no lock held) */
int rdv__session_new_outgoing(rdv_client *c, const char *peer, char session_id_out[],
                              rdv__session **out);
/* Ends and frees session sid without a callback (a set-up that failed
 * before the caller got it). (no lock held) */
void rdv__session_forget(rdv_client *c, const char *sid);
/* Wipes and frees a session already unlinked. (no lock needed) */
void rdv__session_free(rdv__session *r);
/* Frees every session without callbacks (destroy). */
void rdv__session_free_all(rdv_client *c);
/* Records an abnormal end as the last relay error, calls cb_session_closed
 * (no lock held) and frees r. */
void rdv__session_report_closed(rdv_client *c, rdv__session *r, int err, const char *reason);

/* ---- work for after the lock (session.c) ---- */

/* Work collected under the lock for after it: one tick may touch every
 * session (a network change loses all direct paths at once). An event
 * beyond the bound is not delivered (rdv_session_get_info() still tells
 * the state); a relay leg or an end beyond it is retried by the next tick. */
#define RDV__EV_MAX RDV_MAX_SESSIONS
#define RDV__ENDED_REJECTED 1 /* ended_err: the peer declined (err 0) */
typedef struct rdv__session_event {
    int kind;                         /* 1 path, 2 ended by the peer */
    char sid[RDV_SESSION_ID_LEN + 1];
    char peer[RDV_NODE_ID_LEN + 1];
    rdv_path path;
    int64_t ms;
    bool ready;                       /* also cb_session_ready (initiator) */
} rdv__session_event;

typedef struct rdv__session_events {
    rdv__session_event ev[RDV__EV_MAX];
    size_t n;
    rdv__session *ended[RDV__EV_MAX]; /* sessions to report closed, unlinked */
    int ended_err[RDV__EV_MAX];       /* with this error (0: by the peer) */
    size_t nended;
    char relay_open[RDV__EV_MAX][RDV_SESSION_ID_LEN + 1]; /* relay legs to open */
    char relay_open_peer[RDV__EV_MAX][RDV_NODE_ID_LEN + 1];
    uint8_t relay_open_pk[RDV__EV_MAX][32];
    size_t nopen;
    char relay_close[RDV__EV_MAX][RDV_SESSION_ID_LEN + 1]; /* legs to close */
    size_t nclose;
} rdv__session_events;

/* Sends the relay legs asked for, the closes, calls cb_session_ready /
 * cb_path and reports the ended sessions. (no lock held) */
void rdv__session_run_events(rdv_client *c, rdv__session_events *q);

/* ---- path state and the decision (session.c; direct-then-relay only) ---- */

/* Sets the session's path and queues cb_path (and cb_session_ready for the
 * initiator's first path); a path again sends what was held. (L held) */
void rdv__session_set_path_locked(rdv_client *c, rdv__session *r, rdv_path path, int64_t now,
                                  rdv__session_events *q);
/* The decision, once the keys are known: checks now (direct expected),
 * or the relay leg first and checks once it is up. (L held) */
void rdv__session_decide_locked(rdv_client *c, rdv__session *r, int64_t now,
                                rdv__session_events *q);
/* A port mapping appeared (ours, or a portMapped candidate of the peer):
 * a session the decision left relay only (both symmetric) starts its
 * checks now if its relay leg is up, else once it is (PROTOCOL.md 14.6).
 * Nothing for other sessions. (L held) */
void rdv__session_mapping_gained_locked(rdv_client *c, rdv__session *r, int64_t now);
/* Asks for the relay leg (initiator; sent after unlock). (L held) */
void rdv__session_want_relay_locked(rdv__session *r, rdv__session_events *q);
/* Closes the relay leg (sent after unlock) when there is one. (L held) */
void rdv__session_close_relay_leg_locked(rdv__session *r, rdv__session_events *q);
/* relayOpen / relayReady / relayClose about a direct-then-relay session's
 * relay leg: true when it was about such a session (close: when the
 * session lives on without the leg). (S) */
bool rdv__session_on_leg_open(rdv_client *c, const char *sid, const char *from);
bool rdv__session_on_leg_ready(rdv_client *c, const char *sid, const char *from);
bool rdv__session_on_leg_close(rdv_client *c, const char *sid, const char *reason);

/* ---- hold (session.c, session_hold.h) ---- */

/* A datagram for a session without a usable path now: before its first
 * path RDV_ERR_STATE; between two paths (a fallback, a relay leg being
 * reopened) a copy is held, bounded, and sent on the next path: 0, or
 * RDV_ERR_BACKLOG / RDV_ERR_NOMEM when it cannot be held. (L held) */
int rdv__session_hold_locked(rdv__session *r, const void *buf, size_t len);
/* Frees the held datagrams (wiped), counting them as dropped when c is
 * not NULL. (L held, or r unlinked) */
void rdv__session_drop_held(rdv_client *c, rdv__session *r);

/* ---- the service loop (session.c) ---- */

/* Reads the UDP sockets (discovery, direct legs), sends pending
 * signaling and runs the sessions' timers. (S) */
void rdv__session_service(rdv_client *c, int64_t now);
/* Monotonic ms of the next session or discovery timer, INT64_MAX when
 * none. (S) */
int64_t rdv__session_next_due(rdv_client *c);

#endif
