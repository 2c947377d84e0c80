/* engine_sqlite.c - the default engine: one instance alone on the SQLite
 * store (store.c). Every call completes before it returns; no node is ever
 * on another instance, so route() always queues and nothing arrives from
 * outside (see engine.h).
 */
#include <stdlib.h>
#include <string.h>

#include "rendezvous/engine.h"

typedef struct sqlite_engine {
    srv_engine base;
    srv_store *store;
    uint64_t errors;
} sqlite_engine;

static sqlite_engine *of(srv_engine *e)
{
    return (sqlite_engine *)e;
}

static void sq_joined(srv_engine *e, const char *id, uint32_t serial, const char *nat,
                      const char *ip, int port, int64_t now)
{
    (void)serial;
    if (srv_store_node_online(of(e)->store, id, nat, ip, port, now) != SRV_STORE_OK)
        of(e)->errors++;
}

static void sq_left(srv_engine *e, const char *id, uint32_t serial, int64_t now)
{
    (void)serial;
    int rc = srv_store_node_offline(of(e)->store, id, now);
    if (rc != SRV_STORE_OK && rc != SRV_STORE_ENOTFOUND)
        of(e)->errors++;
}

static void sq_lookup(srv_engine *e, const char *const *ids, size_t n, srv_lookup_cb cb,
                      void *user)
{
    srv_presence res[RDV_MAX_IDS_PER_REQUEST];
    if (n > RDV_MAX_IDS_PER_REQUEST)
        n = RDV_MAX_IDS_PER_REQUEST;
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        if (srv_store_lookup(of(e)->store, ids[i], &res[i]) != SRV_STORE_OK) {
            memset(&res[i], 0, sizeof res[i]);
            of(e)->errors++;
        }
    }
    cb(user, res, n);
}

static void sq_route(srv_engine *e, const srv_route_msg *m, srv_route_cb cb, void *user)
{
    int rc = srv_store_queue_push(of(e)->store, m->to, m->from, m->type, m->session_id, m->raw,
                                  m->raw_len, m->created, m->expires, m->cap);
    if (rc == SRV_STORE_OK)
        cb(user, SRV_ROUTE_QUEUED);
    else if (rc == SRV_STORE_EFULL)
        cb(user, SRV_ROUTE_QUEUE_FULL);
    else {
        of(e)->errors++;
        cb(user, SRV_ROUTE_ERROR);
    }
}

/* Nothing arrives from other instances, so nothing is ever put back. */
static void sq_requeue(srv_engine *e, const srv_queued_msg *m)
{
    (void)e;
    (void)m;
}

typedef struct take_ctx {
    srv_msg_cb each;
    void *user;
} take_ctx;

static void take_one(const srv_queued_msg *m, void *user)
{
    take_ctx *t = user;
    t->each(t->user, m);
}

static void sq_take(srv_engine *e, const char *id, int64_t now, srv_msg_cb each,
                    srv_done_cb done, void *user)
{
    take_ctx t = {each, user};
    int n = srv_store_queue_take(of(e)->store, id, now, take_one, &t);
    if (n < 0)
        of(e)->errors++;
    if (done)
        done(user, n < 0 ? -1 : n);
}

static void sq_expire(srv_engine *e, int64_t now, srv_msg_cb each, void *user)
{
    take_ctx t = {each, user};
    if (srv_store_queue_expire(of(e)->store, now, take_one, &t) < 0)
        of(e)->errors++;
}

/* A node not connected here is connected nowhere. */
static void sq_notify(srv_engine *e, const char *to, const uint8_t *raw, size_t len)
{
    (void)e;
    (void)to;
    (void)raw;
    (void)len;
}

/* Alone: no node is on another instance. */
static void sq_relay_route(srv_engine *e, const char *to, const uint8_t *payload, size_t len,
                           srv_relay_route_cb cb, void *user)
{
    (void)e;
    (void)to;
    (void)payload;
    (void)len;
    cb(user, NULL);
}

static void sq_relay_send(srv_engine *e, const char *inst, const uint8_t *payload, size_t len)
{
    (void)e;
    (void)inst;
    (void)payload;
    (void)len;
}

static int64_t sq_queue_depth(srv_engine *e)
{
    return srv_store_queue_depth(of(e)->store);
}

static bool sq_healthy(srv_engine *e)
{
    return srv_store_writable(of(e)->store);
}

static int sq_flush(srv_engine *e)
{
    if (srv_store_flush(of(e)->store) == SRV_STORE_OK)
        return 0;
    of(e)->errors++;
    return -1;
}

static void sq_poll(srv_engine *e)
{
    (void)e;
}

static void sq_status(srv_engine *e, srv_engine_status *out)
{
    memset(out, 0, sizeof *out);
    out->engine = "sqlite";
    out->instances = 1;
    out->connected = srv_store_writable(of(e)->store);
    out->errors = of(e)->errors;
    out->cluster_nodes = -1; /* alone: the server's own count */
}

static void sq_detach(srv_engine *e)
{
    (void)e;
}

static void sq_destroy(srv_engine *e)
{
    free(e);
}

typedef struct adm_ctx {
    srv_adm_each_cb each;
    void *user;
} adm_ctx;

static void adm_one(void *user, int list, const char *key, int64_t added)
{
    adm_ctx *a = user;
    a->each(a->user, list, key, added);
}

static void sq_adm_load(srv_engine *e, srv_adm_each_cb each, srv_done_cb done, void *user)
{
    adm_ctx a = {each, user};
    int n = srv_store_adm_load(of(e)->store, adm_one, &a);
    if (n < 0)
        of(e)->errors++;
    if (done)
        done(user, n < 0 ? -1 : n);
}

/* Alone: no other instance to tell. */
static void sq_adm_set(srv_engine *e, int list, const char *key, bool present, int64_t added,
                       srv_done_cb done, void *user)
{
    int rc = srv_store_adm_set(of(e)->store, list, key, present, added);
    if (rc == SRV_STORE_ERR)
        of(e)->errors++;
    if (done)
        done(user, rc == SRV_STORE_OK ? 0 : rc == SRV_STORE_ENOTFOUND ? 1 : -1);
}

static const srv_engine_ops sqlite_ops = {
    .name = "sqlite",
    .joined = sq_joined,
    .left = sq_left,
    .lookup = sq_lookup,
    .route = sq_route,
    .requeue = sq_requeue,
    .take = sq_take,
    .expire = sq_expire,
    .notify = sq_notify,
    .relay_route = sq_relay_route,
    .relay_send = sq_relay_send,
    .queue_depth = sq_queue_depth,
    .healthy = sq_healthy,
    .flush = sq_flush,
    .poll = sq_poll,
    .status = sq_status,
    .detach = sq_detach,
    .destroy = sq_destroy,
    .adm_load = sq_adm_load,
    .adm_set = sq_adm_set,
};

srv_engine *srv_engine_sqlite_new(srv_store *store, const srv_engine_events *ev)
{
    sqlite_engine *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &sqlite_ops;
    if (ev)
        s->base.ev = *ev;
    s->store = store;
    return &s->base;
}
