/* vpool.c - signature verification on worker threads, each connection's
 * messages in order (see vpool.h).
 *
 * Locking: in_* / out_* / stop / woken under p->lock; a job's cnext, c,
 * done and the connection's queue belong to the loop thread; a worker
 * touches only the job's data, scan and result between taking it from
 * in_* and putting it on out_*.
 */
#include "rendezvous/vpool.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <sched.h>
#include <sodium.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rendezvous/auth.h"
#include "rendezvous/conn.h"
#include "rendezvous/log.h"
#include "rendezvous/route.h"
#include "rendezvous/server.h"

/* VJ_VERIFY: a scanned message; VJ_HELLO: a hello's signing input, then
 * its signature and key (data[len..len+96)); VJ_HOLD: a message behind. */
enum { VJ_VERIFY, VJ_HOLD, VJ_HELLO };

struct srv_vjob {
    srv_vjob *next;   /* in_* / out_* of the pool */
    srv_vjob *cnext;  /* the connection's queue */
    srv_conn *c;      /* NULL once the connection is gone */
    rdv_scan scan;    /* VJ_VERIFY: pointers rebased onto data */
    json_t *hello;    /* VJ_HELLO: the hello's body (a reference; loop only) */
    int result;       /* VJ_VERIFY, VJ_HELLO: 0 when the signature is valid */
    uint32_t len;
    uint8_t kind;
    uint8_t binary;   /* VJ_HOLD: a binary frame */
    uint8_t done;     /* VJ_HOLD always; VJ_VERIFY / VJ_HELLO once back from a worker */
    uint8_t data[];
};

/* Whether a job waits for a worker (not done until it comes back). */
static bool needs_worker(const srv_vjob *j)
{
    return j->kind == VJ_VERIFY || j->kind == VJ_HELLO;
}

/* The signature check of a job, on whichever thread runs it. */
static int job_verify(const srv_vjob *j)
{
    if (j->kind == VJ_HELLO)
        return crypto_sign_verify_detached(j->data + j->len, j->data, j->len,
                                           j->data + j->len + RDV_SIG_BYTES) == 0
                   ? 0
                   : -1;
    return rdv_scan_verify(j->data, &j->scan);
}

/* Frees a job and what it holds. Loop thread (a hello's body is a jansson
 * reference the loop owns). */
static void job_free(srv_vjob *j)
{
    if (j->hello)
        json_decref(j->hello);
    free(j);
}

static void *worker(void *arg)
{
    srv_vpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->in_head && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stop)
            break;
        srv_vjob *j = p->in_head;
        p->in_head = j->next;
        if (!p->in_head)
            p->in_tail = NULL;
        pthread_mutex_unlock(&p->lock);

        j->result = job_verify(j);

        pthread_mutex_lock(&p->lock);
        j->next = NULL;
        if (p->out_tail)
            p->out_tail->next = j;
        else
            p->out_head = j;
        p->out_tail = j;
        if (!p->woken) {
            p->woken = true; /* one wake-up per drain */
            lws_cancel_service(p->ctx);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Nanoseconds of one Ed25519 check here, timed over a few of them on a
 * message the size of an offer's signing input; 0 when it cannot tell. */
static int64_t verify_cost_ns(void)
{
    enum { ROUNDS = 16, INPUT = 400 };
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char msg[INPUT], sig[crypto_sign_BYTES];
    memset(msg, 'x', sizeof msg);
    if (crypto_sign_keypair(pk, sk) != 0 ||
        crypto_sign_detached(sig, NULL, msg, sizeof msg, sk) != 0)
        return 0;
    sodium_memzero(sk, sizeof sk);
    struct timespec a, b;
    if (clock_gettime(CLOCK_MONOTONIC, &a) != 0)
        return 0;
    int ok = 0;
    for (int i = 0; i < ROUNDS; i++)
        ok += crypto_sign_verify_detached(sig, msg, sizeof msg, pk) == 0;
    if (clock_gettime(CLOCK_MONOTONIC, &b) != 0 || ok != ROUNDS)
        return 0;
    return ((int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec)) / ROUNDS;
}

/* How many checks per window inline_pct percent of it holds. */
static int inline_budget(int inline_pct)
{
    if (inline_pct <= 0)
        return 0;
    int64_t cost = verify_cost_ns();
    if (cost <= 0)
        cost = 50000; /* a slow core's figure */
    int64_t n = (int64_t)SRV_VPOOL_INLINE_WINDOW_MS * 1000000 * inline_pct / 100 / cost;
    return n < 1 ? 1 : n > 100000 ? 100000 : (int)n;
}

/* Loop thread: whether the loop may verify one more by itself in this
 * window (and counts it when so): not while the loop is behind (see the
 * top of vpool.h). */
static bool take_inline(srv_server *srv)
{
    srv_vpool *p = &srv->vpool;
    if (p->inline_max <= 0)
        return false;
    int64_t now = srv_mono_ms();
    if (srv_conn_sweep_behind_ms(&srv->conn_sweep, now) >= SRV_VPOOL_INLINE_LAG_MS)
        return false;
    if (now - p->inline_window_ms >= SRV_VPOOL_INLINE_WINDOW_MS) {
        p->inline_window_ms = now;
        p->inline_used = 0;
    }
    if (p->inline_used >= p->inline_max)
        return false;
    p->inline_used++;
    p->inline_jobs++;
    return true;
}

int srv_vpool_start(srv_vpool *p, int nthreads, int inline_pct, struct lws_context *ctx)
{
    memset(p, 0, sizeof *p);
    if (nthreads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = cores > 0 ? (int)cores : 1;
    }
    if (nthreads > SRV_VPOOL_MAX_THREADS)
        nthreads = SRV_VPOOL_MAX_THREADS;
    p->ctx = ctx;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return -1;
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    p->inline_max = inline_budget(inline_pct);
    p->inited = true;
    return 0;
}

void srv_vpool_stop(srv_vpool *p)
{
    if (!p->inited || p->nthreads == 0)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    p->ctx = NULL;
}

static void free_list(srv_vjob *j)
{
    while (j) {
        srv_vjob *n = j->next;
        job_free(j);
        j = n;
    }
}

void srv_vpool_free(srv_vpool *p)
{
    if (!p->inited)
        return;
    free_list(p->in_head);
    free_list(p->out_head);
    p->in_head = p->in_tail = p->out_head = p->out_tail = NULL;
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    p->inited = false;
}

/* A job for len bytes of data (and room for extra bytes after them), or
 * NULL (out of memory). */
static srv_vjob *job_new(const uint8_t *data, size_t len, int kind, size_t extra)
{
    if (len > UINT32_MAX - extra)
        return NULL;
    srv_vjob *j = malloc(sizeof *j + len + extra);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->len = (uint32_t)len;
    j->kind = (uint8_t)kind;
    memcpy(j->data, data, len);
    return j;
}

/* Appends j to c's queue; pauses reading c when it is full. */
static void conn_push(srv_conn *c, srv_vjob *j)
{
    j->c = c;
    if (c->vq_tail)
        c->vq_tail->cnext = j;
    else
        c->vq_head = j;
    c->vq_tail = j;
    if (++c->vq_count >= SRV_VPOOL_CONN_MAX && !c->vq_paused) {
        c->vq_paused = 1;
        lws_rx_flow_control(c->wsi, 0);
    }
}

/* Moves a pointer into the message at `from` to the same byte of `to`. */
static const char *rebase(const char *ptr, const uint8_t *from, const uint8_t *to)
{
    return (const char *)to + (ptr - (const char *)from);
}

/* Queues j on c and hands it to a worker. */
static void submit(srv_vpool *p, srv_conn *c, srv_vjob *j)
{
    conn_push(c, j);
    pthread_mutex_lock(&p->lock);
    if (p->in_tail)
        p->in_tail->next = j;
    else
        p->in_head = j;
    p->in_tail = j;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

bool srv_vpool_defer(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len,
                     const rdv_scan *s)
{
    srv_vpool *p = &srv->vpool;
    if (!p->inited || p->nthreads == 0 || (!c->vq_head && take_inline(srv)))
        return false;
    srv_vjob *j = job_new(data, len, VJ_VERIFY, 0);
    if (!j)
        return false;
    j->scan = *s;
    j->scan.from = rebase(s->from, data, j->data);
    j->scan.to = rebase(s->to, data, j->data);
    j->scan.sid = rebase(s->sid, data, j->data);
    j->scan.sig = rebase(s->sig, data, j->data);
    submit(p, c, j);
    return true;
}

bool srv_vpool_defer_hello(srv_server *srv, srv_conn *c, const uint8_t *input, size_t len,
                           const uint8_t *sig, const uint8_t *pk, json_t *body)
{
    srv_vpool *p = &srv->vpool;
    if (!p->inited || p->nthreads == 0 || c->vq_head || take_inline(srv))
        return false;
    srv_vjob *j = job_new(input, len, VJ_HELLO, RDV_SIG_BYTES + RDV_NODE_ID_BYTES);
    if (!j)
        return false;
    memcpy(j->data + len, sig, RDV_SIG_BYTES);
    memcpy(j->data + len + RDV_SIG_BYTES, pk, RDV_NODE_ID_BYTES);
    j->hello = json_incref(body);
    submit(p, c, j);
    return true;
}

bool srv_vpool_hold(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len, bool binary)
{
    if (!c->vq_head)
        return false;
    srv_vjob *j = job_new(data, len, VJ_HOLD, 0);
    if (!j) {
        srv_error(srv->log, "out of memory holding a %zu-byte message", len);
        srv_conn_close(srv, c, RDV_EC_INTERNAL, "server out of memory",
                       LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
        return true;
    }
    j->binary = binary;
    j->done = 1;
    conn_push(c, j);
    return true;
}

/* Takes the job at the head of c's queue off it. */
static srv_vjob *conn_pop(srv_conn *c)
{
    srv_vjob *j = c->vq_head;
    c->vq_head = j->cnext;
    if (!c->vq_head)
        c->vq_tail = NULL;
    c->vq_count--;
    return j;
}

/* Routes and frees the (done) job at the head of c's queue; the route
 * function's result. */
static int route_head(srv_server *srv, srv_conn *c)
{
    srv_vjob *j = conn_pop(c);
    int rc;
    if (j->kind == VJ_VERIFY)
        rc = srv_route_verified(srv, c, j->data, j->len, &j->scan, j->result == 0);
    else if (j->kind == VJ_HELLO)
        rc = srv_auth_hello_verified(srv, c, j->hello, j->result == 0);
    else
        rc = srv_route_held(srv, c, j->data, j->len, j->binary);
    job_free(j);
    return rc;
}

/* Routes c's queue from its head while the jobs there are done. */
static void conn_advance(srv_server *srv, srv_conn *c)
{
    while (c->vq_head && c->vq_head->done) {
        if (c->close_code) {
            job_free(conn_pop(c)); /* refused by the server: dropped */
            continue;
        }
        if (route_head(srv, c) < 0 && !c->close_code) {
            /* a handler asked lws to close c; we are outside its callback */
            c->close_code = LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
    if (c->vq_paused && c->vq_count <= SRV_VPOOL_CONN_MAX / 2) {
        c->vq_paused = 0;
        lws_rx_flow_control(c->wsi, 1);
    }
}

void srv_vpool_drain(srv_server *srv)
{
    srv_vpool *p = &srv->vpool;
    if (!p->inited)
        return;
    pthread_mutex_lock(&p->lock);
    srv_vjob *list = p->out_head;
    p->out_head = p->out_tail = NULL;
    p->woken = false;
    pthread_mutex_unlock(&p->lock);
    /* Mark them all done first, keeping one job per connection (linked by
     * next) to advance from: advancing a connection routes and frees every
     * job of it that is done, this batch's included. */
    srv_vjob *ready = NULL;
    while (list) {
        srv_vjob *j = list;
        list = j->next;
        p->jobs++;
        if (!j->c) {
            job_free(j); /* its connection is gone */
            continue;
        }
        j->done = 1;
        if (!j->c->vq_mark) {
            j->c->vq_mark = 1;
            j->next = ready;
            ready = j;
        }
    }
    while (ready) {
        srv_conn *c = ready->c;
        ready = ready->next; /* before conn_advance frees it */
        c->vq_mark = 0;
        conn_advance(srv, c);
    }
}

/* Removes j from the pool list head..tail (linked by next); false when it
 * is not on it. Under p->lock. */
static bool list_unlink(srv_vjob **head, srv_vjob **tail, srv_vjob *j)
{
    srv_vjob *prev = NULL;
    for (srv_vjob *k = *head; k; prev = k, k = k->next) {
        if (k != j)
            continue;
        if (prev)
            prev->next = k->next;
        else
            *head = k->next;
        if (*tail == k)
            *tail = prev;
        return true;
    }
    return false;
}

/* Takes the not-yet-done job j back from the pool: out of the in-queue
 * when no worker has it yet (returns false: not verified), or off the done
 * list once its worker has put it there (returns true, j->result set).
 * While a worker holds it, waits: one signature check, tens of µs. Jobs a
 * drain has taken are all marked done before any is routed, so a job that
 * is not done is always on one of the two lists or at a worker. */
static bool take_back(srv_vpool *p, srv_vjob *j)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (list_unlink(&p->in_head, &p->in_tail, j)) {
            pthread_mutex_unlock(&p->lock);
            return false;
        }
        if (list_unlink(&p->out_head, &p->out_tail, j)) {
            p->jobs++;
            pthread_mutex_unlock(&p->lock);
            return true;
        }
        pthread_mutex_unlock(&p->lock);
        sched_yield();
    }
}

void srv_vpool_conn_flush(srv_server *srv, srv_conn *c)
{
    srv_vpool *p = &srv->vpool;
    while (c->vq_head) {
        srv_vjob *j = c->vq_head;
        if (needs_worker(j) && !j->done) {
            if (!take_back(p, j))
                j->result = job_verify(j);
            j->done = 1;
        }
        (void)route_head(srv, c);
    }
}

void srv_vpool_conn_gone(srv_server *srv, srv_conn *c)
{
    (void)srv;
    srv_vjob *j = c->vq_head;
    while (j) {
        srv_vjob *n = j->cnext;
        if (needs_worker(j) && !j->done)
            j->c = NULL; /* at a worker or on the done list: freed there */
        else
            job_free(j); /* only on this queue */
        j = n;
    }
    c->vq_head = c->vq_tail = NULL;
    c->vq_count = 0;
    c->vq_paused = 0;
    c->vq_mark = 0;
}
