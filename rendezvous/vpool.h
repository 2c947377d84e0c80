/* vpool.h - signature verification off the event loop, each connection's
 * messages kept in their order (issue 15).
 *
 * A routed message that needs its Ed25519 check (scan.h fast path, verify
 * on), or a hello (auth.c), becomes a job: a copy of its bytes, queued on the connection and
 * handed to one of --verify-threads worker threads. A worker verifies,
 * puts the job on the done list and, when that list was empty, wakes the
 * loop with lws_cancel_service() (the one lws call another thread may
 * make; LWS_CALLBACK_EVENT_WAIT_CANCELLED then runs srv_vpool_drain() on
 * the loop). Everything else about a job happens on the loop thread.
 *
 * Light load: a hand-off costs two thread wake-ups, more than the check
 * itself when the loop has time to spare (and, on one core, the latency of
 * both). So a message of a connection with nothing queued is verified by
 * the loop itself while the loop has spent less than --verify-inline
 * percent of the current SRV_VPOOL_INLINE_WINDOW_MS on it (counted in
 * verifications: the share over the cost of one, timed at start); past
 * that, in that window, it goes to the workers. Nor while the loop is
 * behind, whatever the share: when its 50 ms sweep tick ran or is due
 * SRV_VPOOL_INLINE_LAG_MS late or more (conn_sweep.h), other work holds
 * the loop (a reconnect storm's handshakes: there it did every check
 * itself, ~19 % of its time, while the workers idled), so every check
 * goes to the workers. Order is unaffected: a
 * connection with jobs queued never has a message verified inline.
 *
 * Order: while a connection has jobs queued, every later message of it,
 * text or binary, verified or not, is queued behind them ("held") and
 * handled only when everything before it is; the loop routes a
 * connection's queue from its head as far as the jobs are done. So
 * messages leave in the order they came, whichever worker finishes
 * first. A connection with SRV_VPOOL_CONN_MAX jobs queued stops being
 * read (lws_rx_flow_control) until half of them are done. A connection
 * that its node closes has its queue routed first (srv_vpool_conn_flush);
 * one the server closes leaves its jobs to be freed when they come back.
 */
#ifndef SRV_VPOOL_H
#define SRV_VPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/scan.h"

struct lws_context;
struct srv_server;
struct srv_conn;

#define SRV_VPOOL_MAX_THREADS 64
#define SRV_VPOOL_CONN_MAX 64 /* queued jobs per connection before reads pause */
#define SRV_VPOOL_INLINE_WINDOW_MS 10 /* the window of the --verify-inline share */
#define SRV_VPOOL_INLINE_LAG_MS 5     /* the loop this late: no check inline */

typedef struct srv_vjob srv_vjob;

typedef struct srv_vpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    srv_vjob *in_head, *in_tail;   /* waiting for a worker (lock) */
    srv_vjob *out_head, *out_tail; /* verified, for the loop (lock) */
    bool stop;                     /* (lock) */
    bool woken;                    /* a wake-up is on its way (lock) */
    bool inited;                   /* started: lock and cond exist */
    int nthreads;                  /* workers running; 0: verify inline */
    pthread_t threads[SRV_VPOOL_MAX_THREADS];
    struct lws_context *ctx;
    uint64_t jobs;                 /* verified off the loop (metrics) */
    /* loop thread only: the --verify-inline budget (see the top) */
    int inline_max;                /* verifications per window the loop may do */
    int inline_used;               /* ... done in the current window */
    int64_t inline_window_ms;      /* its start, monotonic */
    uint64_t inline_jobs;          /* verified on the loop instead (metrics) */
} srv_vpool;

/* Starts nthreads workers (0: one per online CPU core) that wake ctx, and
 * lets the loop verify by itself up to inline_pct percent of its time
 * (0..100; see the top). Returns 0, or -1 when none could start (p is then
 * unused: verify inline). */
int srv_vpool_start(srv_vpool *p, int nthreads, int inline_pct, struct lws_context *ctx);

/* Stops and joins the workers (no wake-ups after it returns). */
void srv_vpool_stop(srv_vpool *p);

/* Frees every job left (after srv_vpool_stop and after the connections
 * are gone). */
void srv_vpool_free(srv_vpool *p);

/* Verifies the scanned message data[0..len) of c on a worker and routes it
 * in order afterwards (srv_route_verified). Returns true when queued;
 * false when there is no pool, the loop's inline budget allows it (light
 * load, c has nothing queued) or no memory for the job: verify inline. */
bool srv_vpool_defer(struct srv_server *srv, struct srv_conn *c, const uint8_t *data,
                     size_t len, const rdv_scan *s);

/* Verifies a hello's Ed25519 signature sig (RDV_SIG_BYTES) over its
 * signing input input[0..len) with the key pk (RDV_NODE_ID_BYTES) on a
 * worker; srv_auth_hello_verified(srv, c, body, valid) then completes it
 * on the loop, and c's later messages wait behind it. Keeps a reference to
 * body until then. Returns true when queued; false when there is no pool,
 * c already has jobs queued, the loop's inline budget allows it, or no
 * memory (verify inline then). */
bool srv_vpool_defer_hello(struct srv_server *srv, struct srv_conn *c, const uint8_t *input,
                           size_t len, const uint8_t *sig, const uint8_t *pk,
                           struct json_t *body);

/* When c has jobs queued, queues a copy of this message behind them
 * (handled by srv_route_held once they are) and returns true; false when
 * nothing is queued (handle it now). Out of memory: c is closed, true. */
bool srv_vpool_hold(struct srv_server *srv, struct srv_conn *c, const uint8_t *data,
                    size_t len, bool binary);

/* Loop thread, on LWS_CALLBACK_EVENT_WAIT_CANCELLED: takes the verified
 * jobs and routes every connection's queue from its head while done. */
void srv_vpool_drain(struct srv_server *srv);

/* c was closed by its node (not refused by the server): routes what it
 * sent before it hung up, in order, verifying on the loop thread what no
 * worker has taken yet (a node may send its answer and close at once; the
 * answer must still reach its peer). Nothing is sent to c: the caller has
 * set c->close_code. */
void srv_vpool_conn_flush(struct srv_server *srv, struct srv_conn *c);

/* c is going away: its queued messages are dropped (jobs still at a
 * worker are freed when they come back). */
void srv_vpool_conn_gone(struct srv_server *srv, struct srv_conn *c);

#endif
