/* engine.h - where the server keeps what outlives a connection or spans
 * instances: node presence, the offline queue, and delivery to nodes that
 * are connected to another instance of the same cluster.
 *
 * Two engines implement it:
 *   - sqlite (engine_sqlite.c, the default): one instance alone, presence
 *     and the queue in the SQLite file of store.c; nothing is ever on
 *     "another instance".
 *   - redis (engine_redis.c, --redis URL): any number of instances share
 *     one Redis for presence, the queue and a pub/sub bus between them.
 * Routing, presence and auth code call only this interface, so a third
 * engine (NATS, Valkey cluster) needs no change there.
 *
 * Threading: every call and every callback happens on the event loop's
 * thread. An engine that waits on a network (redis) does so on threads of
 * its own and hands results back through srv_engine_poll(), which the loop
 * calls when woken (lws_cancel_service). A callback may therefore run
 * before the call that started it returns (sqlite) or much later (redis):
 * callers keep nothing on the stack for it and find their connection again
 * by node ID and serial (srv_conn.serial) when it runs.
 */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/ids.h"
#include "rendezvous/store.h" /* srv_presence, srv_queued_msg */

struct lws_context;

typedef struct srv_engine srv_engine;

/* What the engine hands the server (on the loop thread). */
typedef struct srv_engine_events {
    void *user;
    /* A message for node m->recipient that another instance routed here.
     * The server sends m->raw if the node is connected here, else puts it
     * back in the queue (srv_engine_requeue). */
    void (*deliver)(void *user, const srv_queued_msg *m);
    /* Node `id` authenticated on another instance: the server closes its
     * connection here with serial `serial` (4001, replaced). */
    void (*replaced)(void *user, const char *id, uint32_t serial);
    /* Presence of `id` changed on another instance (peerOnline /
     * peerOffline for watchers here). nat is NULL when going offline. */
    void (*presence)(void *user, const char *id, bool online, const char *nat,
                     int64_t last_seen);
    /* The shared store answers again after an outage (or a late start):
     * the server records its connected nodes again (srv_engine_joined). */
    void (*reconnected)(void *user);
    /* A relay frame from another instance ("R ..." header + bytes, the
     * relay's own format: relay.c). */
    void (*relay_in)(void *user, const uint8_t *payload, size_t len);
    /* Another instance changed an admission list (SRV_ADM_LIST_*, store.h):
     * key added (present) at `added`, or removed (admission.c). */
    void (*admission)(void *user, int list, const char *key, bool present, int64_t added);
} srv_engine_events;

/* Outcome of srv_engine_route(). */
typedef enum srv_route_result {
    SRV_ROUTE_FORWARDED = 0, /* handed to the instance the node is connected to */
    SRV_ROUTE_QUEUED,        /* stored for the offline node; `queued` may be sent */
    SRV_ROUTE_QUEUE_FULL,    /* the node's queue is at its cap: nothing stored */
    SRV_ROUTE_ERROR          /* the engine could not store it: nothing stored */
} srv_route_result;

/* One message to route to a node that is not connected to this instance. */
typedef struct srv_route_msg {
    const char *to, *from, *type, *session_id; /* session_id may be NULL */
    const uint8_t *raw;
    size_t raw_len;
    int64_t created, expires; /* ms since the epoch */
    int cap;                  /* --offline-queue-max */
} srv_route_msg;

typedef void (*srv_route_cb)(void *user, srv_route_result r);
typedef void (*srv_lookup_cb)(void *user, const srv_presence *res, size_t n);
typedef void (*srv_msg_cb)(void *user, const srv_queued_msg *m);
typedef void (*srv_done_cb)(void *user, int n);
/* inst: the instance the frame went to, NULL when the node is connected to
 * no other live instance. */
typedef void (*srv_relay_route_cb)(void *user, const char *inst);

/* The cluster view for /status and /metrics. */
typedef struct srv_engine_status {
    const char *engine;        /* "sqlite" or "redis" */
    char instance_id[33];      /* "" for sqlite */
    int instances;             /* instances alive (1 for sqlite) */
    bool connected;            /* the shared store answers */
    uint64_t bus_in, bus_out;  /* messages received from / sent to other instances */
    uint64_t errors;           /* engine errors since start */
    int64_t cluster_nodes;     /* nodes on every live instance (-1: this one's count) */
} srv_engine_status;

/* One admission list entry (srv_engine_adm_load). */
typedef void (*srv_adm_each_cb)(void *user, int list, const char *key, int64_t added);

typedef struct srv_engine_ops {
    const char *name;
    void (*joined)(srv_engine *e, const char *id, uint32_t serial, const char *nat,
                   const char *ip, int port, int64_t now);
    void (*left)(srv_engine *e, const char *id, uint32_t serial, int64_t now);
    void (*lookup)(srv_engine *e, const char *const *ids, size_t n, srv_lookup_cb cb,
                   void *user);
    void (*route)(srv_engine *e, const srv_route_msg *m, srv_route_cb cb, void *user);
    void (*requeue)(srv_engine *e, const srv_queued_msg *m);
    void (*take)(srv_engine *e, const char *id, int64_t now, srv_msg_cb each, srv_done_cb done,
                 void *user);
    void (*expire)(srv_engine *e, int64_t now, srv_msg_cb each, void *user);
    void (*notify)(srv_engine *e, const char *to, const uint8_t *raw, size_t len);
    void (*relay_route)(srv_engine *e, const char *to, const uint8_t *payload, size_t len,
                        srv_relay_route_cb cb, void *user);
    void (*relay_send)(srv_engine *e, const char *inst, const uint8_t *payload, size_t len);
    int64_t (*queue_depth)(srv_engine *e);
    bool (*healthy)(srv_engine *e);
    int (*flush)(srv_engine *e);
    void (*poll)(srv_engine *e);
    void (*status)(srv_engine *e, srv_engine_status *out);
    void (*detach)(srv_engine *e);
    void (*destroy)(srv_engine *e);
    void (*adm_load)(srv_engine *e, srv_adm_each_cb each, srv_done_cb done, void *user);
    void (*adm_set)(srv_engine *e, int list, const char *key, bool present, int64_t added,
                    srv_done_cb done, void *user);
} srv_engine_ops;

struct srv_engine {
    const srv_engine_ops *ops;
    srv_engine_events ev;
};

/* The SQLite engine over an open store (not owned: the caller closes it
 * after srv_engine_destroy). Returns NULL when out of memory. */
srv_engine *srv_engine_sqlite_new(srv_store *store, const srv_engine_events *ev);

/* The Redis engine for url ("redis://HOST:PORT[/DB]" or "unix:///PATH"),
 * password from the environment variable RENDEZVOUS_REDIS_PASSWORD (never
 * a flag: ps shows flags). ctx is woken (lws_cancel_service) when results
 * wait for srv_engine_poll. It connects in the background: a Redis that
 * is down at start is retried with backoff. The local store keeps serving
 * nothing in this mode. Returns NULL with a message in err. */
srv_engine *srv_engine_redis_new(const char *url, struct lws_context *ctx,
                                 const srv_engine_events *ev, char *err, size_t errlen);

/* Records that node id authenticated here on the connection with serial
 * `serial` (replaces an older connection elsewhere: events.replaced). */
static inline void srv_engine_joined(srv_engine *e, const char *id, uint32_t serial,
                                     const char *nat, const char *ip, int port, int64_t now)
{
    e->ops->joined(e, id, serial, nat, ip, port, now);
}

/* Records that the connection `serial` of node id ended (nothing when the
 * node has since authenticated elsewhere). */
static inline void srv_engine_left(srv_engine *e, const char *id, uint32_t serial, int64_t now)
{
    e->ops->left(e, id, serial, now);
}

/* Stored presence of n node IDs (online on any instance, last seen, NAT
 * type); cb gets n results in order. */
static inline void srv_engine_lookup(srv_engine *e, const char *const *ids, size_t n,
                                     srv_lookup_cb cb, void *user)
{
    e->ops->lookup(e, ids, n, cb, user);
}

/* Routes a message for a node not connected here: to the instance that
 * has it, else into its offline queue (cb says which). */
static inline void srv_engine_route(srv_engine *e, const srv_route_msg *m, srv_route_cb cb,
                                    void *user)
{
    e->ops->route(e, m, cb, user);
}

/* Puts back a message that reached this instance for a node that had
 * already gone (no answer to anyone; expires as it would have). */
static inline void srv_engine_requeue(srv_engine *e, const srv_queued_msg *m)
{
    e->ops->requeue(e, m);
}

/* Takes the unexpired messages queued for id (each, in order), then done
 * with their number or -1 on failure. */
static inline void srv_engine_take(srv_engine *e, const char *id, int64_t now, srv_msg_cb each,
                                   srv_done_cb done, void *user)
{
    e->ops->take(e, id, now, each, done, user);
}

/* Removes the messages whose TTL passed; each is called once per message
 * cluster-wide (on the instance that removed it). */
static inline void srv_engine_expire(srv_engine *e, int64_t now, srv_msg_cb each, void *user)
{
    e->ops->expire(e, now, each, user);
}

/* Sends a server-made message (an `error` for a sender) to node `to`
 * wherever it is connected; dropped when it is not connected anywhere. */
static inline void srv_engine_notify(srv_engine *e, const char *to, const uint8_t *raw,
                                     size_t len)
{
    e->ops->notify(e, to, raw, len);
}

/* Sends a relay frame to the live instance that holds node `to` (not
 * this one); cb says which instance, or NULL (then nothing was sent). */
static inline void srv_engine_relay_route(srv_engine *e, const char *to, const uint8_t *payload,
                                          size_t len, srv_relay_route_cb cb, void *user)
{
    e->ops->relay_route(e, to, payload, len, cb, user);
}

/* Sends a relay frame to instance `inst` (fire and forget: a frame for a
 * session the other side no longer has is dropped there). */
static inline void srv_engine_relay_send(srv_engine *e, const char *inst,
                                         const uint8_t *payload, size_t len)
{
    e->ops->relay_send(e, inst, payload, len);
}

/* Messages waiting in the queue (cluster-wide), or -1. */
static inline int64_t srv_engine_queue_depth(srv_engine *e)
{
    return e->ops->queue_depth(e);
}

/* True while the engine can store (for /healthz). */
static inline bool srv_engine_healthy(srv_engine *e)
{
    return e->ops->healthy(e);
}

/* Commits batched writes (sqlite; nothing for redis). Returns 0 or -1. */
static inline int srv_engine_flush(srv_engine *e)
{
    return e->ops->flush(e);
}

/* Runs the callbacks of finished work (the loop calls it when woken). */
static inline void srv_engine_poll(srv_engine *e)
{
    e->ops->poll(e);
}

/* Fills the cluster view. */
static inline void srv_engine_status_get(srv_engine *e, srv_engine_status *out)
{
    e->ops->status(e, out);
}

/* The loop's context is about to be destroyed: never wake it again
 * (results wait, callbacks still run from srv_engine_poll). */
static inline void srv_engine_detach(srv_engine *e)
{
    e->ops->detach(e);
}

/* Reads every admission list entry (each), then done with the count, or
 * -1 when the store cannot be read (admission.c keeps them in memory). */
static inline void srv_engine_adm_load(srv_engine *e, srv_adm_each_cb each, srv_done_cb done,
                                       void *user)
{
    e->ops->adm_load(e, each, done, user);
}

/* Writes one admission change durably and tells the other instances
 * (events.admission there). done (may be NULL) gets 0, 1 when removing a
 * key that was not there, or -1 when the store failed. */
static inline void srv_engine_adm_set(srv_engine *e, int list, const char *key, bool present,
                                      int64_t added, srv_done_cb done, void *user)
{
    e->ops->adm_set(e, list, key, present, added, done, user);
}

/* Stops the engine's threads (pending callbacks are dropped) and frees it.
 * NULL-safe. */
static inline void srv_engine_destroy(srv_engine *e)
{
    if (e)
        e->ops->destroy(e);
}

#endif
