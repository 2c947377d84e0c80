/* offline.c - forward or queue, deliver, expire (see offline.h). */
#include "rendezvous/offline.h"

#include <stdlib.h>
#include <string.h>

#include "schema/ids.h"
#include "rendezvous/log.h"
#include "rendezvous/presence.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

/* What a routing callback needs to answer the sender, who may be gone by
 * the time the engine answers (found again by node ID and serial). */
typedef struct route_ctx {
    srv_server *srv;
    uint8_t sender[RDV_NODE_ID_BYTES];
    uint32_t serial;
    rdv_msg_type type;
    int64_t expires;
    char to[RDV_NODE_ID_HEXLEN + 1];
    char sid[RDV_MAX_REQUEST_ID + 1];
} route_ctx;

/* The connection ctx was made for, if it is still open. */
static srv_conn *sender_of(route_ctx *x)
{
    srv_conn *c = srv_presence_find(x->srv, x->sender);
    return c && c->serial == x->serial && c->state == SRV_CONN_AUTHED ? c : NULL;
}

static void routed(void *user, srv_route_result r)
{
    route_ctx *x = user;
    srv_server *srv = x->srv;
    srv_conn *c = sender_of(x);
    const char *name = rdv_msg_type_name(x->type);
    const char *sid = x->sid[0] ? x->sid : NULL;
    switch (r) {
    case SRV_ROUTE_FORWARDED:
        srv->m.routed[x->type]++;
        break;
    case SRV_ROUTE_QUEUED: {
        srv->m.routed[x->type]++;
        srv_server_store_dirty(srv);
        if (!c)
            break;
        json_t *b = json_pack("{s:s, s:s, s:s, s:I}", "sessionID", sid ? sid : "", "toNodeID",
                              x->to, "type", name, "expiresAt", (json_int_t)x->expires);
        if (!b || srv_conn_send_json(srv, c, RDV_MSG_QUEUED, b) != 0)
            srv_debug(srv->log, "queued notice not sent");
        srv_debug(srv->log, "%s -> %s queued (offline)", name, x->to);
        break;
    }
    case SRV_ROUTE_QUEUE_FULL: {
        srv->m.dropped[SRV_DROP_QUEUE_FULL]++;
        if (!c)
            break;
        char m[200];
        snprintf(m, sizeof m,
                 "node %.16s... is offline and already has %d messages waiting; retry later",
                 x->to, srv->cfg->offline_queue_max);
        (void)srv_conn_send_error(srv, c, RDV_EC_QUEUE_FULL, m, sid, name, NULL);
        break;
    }
    case SRV_ROUTE_ERROR: {
        /* The SQLite engine answers before returning, so the store's last
         * failure is this one; it names the cause (busy database, full
         * disk) for the sender and the log. Redis: no store here. */
        const char *cause = srv->store ? srv_store_cause(srv->store) : NULL;
        srv->m.dropped[SRV_DROP_STORE_ERROR]++;
        srv_error(srv->log, "engine: cannot route or queue %s for %s: %s (%.300s)", name, x->to,
                  cause ? cause : "store error",
                  srv->store ? srv_store_errmsg(srv->store) : "engine error");
        if (c) {
            char m[240];
            snprintf(m, sizeof m,
                     "the server could not store the message for the offline node%s%.100s;"
                     " nothing was queued, try again later",
                     cause ? ": " : "", cause ? cause : "");
            (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, m, sid, name, NULL);
        }
        break;
    }
    }
    free(x);
}

void srv_offline_route(srv_server *srv, srv_conn *c, rdv_msg_type type, const char *from,
                       const char *to, const char *sid, const uint8_t *raw, size_t len)
{
    const char *name = rdv_msg_type_name(type);
    route_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, "server out of memory", sid, name,
                                  NULL);
        return;
    }
    int64_t now = rdv_now_ms();
    x->srv = srv;
    memcpy(x->sender, c->node_id, RDV_NODE_ID_BYTES);
    x->serial = c->serial;
    x->type = type;
    x->expires = now + srv->cfg->offline_ttl_ms;
    snprintf(x->to, sizeof x->to, "%s", to);
    if (sid)
        snprintf(x->sid, sizeof x->sid, "%s", sid);
    srv_route_msg m = {
        .to = to,
        .from = from,
        .type = name,
        .session_id = sid,
        .raw = raw,
        .raw_len = len,
        .created = now,
        .expires = x->expires,
        .cap = srv->cfg->offline_queue_max,
    };
    srv_engine_route(srv->engine, &m, routed, x); /* frees x */
}

typedef struct deliver_ctx {
    srv_server *srv;
    uint8_t node[RDV_NODE_ID_BYTES];
    uint32_t serial;
    char hex[RDV_NODE_ID_HEXLEN + 1];
} deliver_ctx;

static srv_conn *receiver_of(deliver_ctx *d)
{
    srv_conn *c = srv_presence_find(d->srv, d->node);
    return c && c->serial == d->serial && !c->close_code ? c : NULL;
}

static void deliver_one(void *user, const srv_queued_msg *m)
{
    deliver_ctx *d = user;
    srv_conn *c = receiver_of(d);
    if (c) {
        (void)srv_conn_send_backlog(d->srv, c, m->raw, m->raw_len);
        return;
    }
    /* the node left while its queue was read: keep the message */
    srv_engine_requeue(d->srv->engine, m);
}

static void delivered(void *user, int n)
{
    deliver_ctx *d = user;
    srv_server *srv = d->srv;
    if (n < 0)
        srv_error(srv->log, "engine: cannot read the queued messages of %s", d->hex);
    else if (n > 0)
        srv_info(srv->log, "delivered %d queued message(s) to %s", n, d->hex);
    srv_server_store_dirty(srv);
    free(d);
}

void srv_offline_deliver(srv_server *srv, srv_conn *c, const char *hex)
{
    deliver_ctx *d = calloc(1, sizeof *d);
    if (!d) {
        srv_error(srv->log, "out of memory: queued messages of %s stay queued", hex);
        return;
    }
    d->srv = srv;
    memcpy(d->node, c->node_id, RDV_NODE_ID_BYTES);
    d->serial = c->serial;
    snprintf(d->hex, sizeof d->hex, "%s", hex);
    srv_engine_take(srv->engine, hex, rdv_now_ms(), deliver_one, delivered, d); /* frees d */
}

/* An expired message: its sender hears `peer_offline`, here or on the
 * instance it is connected to. */
static void expired_one(void *user, const srv_queued_msg *m)
{
    srv_server *srv = user;
    uint8_t id[RDV_NODE_ID_BYTES];
    srv->m.dropped[SRV_DROP_EXPIRED]++;
    srv_server_store_dirty(srv); /* the deletion commits with the batch */
    if (!m->sender || rdv_node_id_to_pk(m->sender, id) != 0)
        return;
    char text[240];
    snprintf(text, sizeof text,
             "peer %.64s stayed offline for %lld s; your %s was dropped undelivered",
             m->recipient ? m->recipient : "?", (long long)((m->expires - m->created) / 1000),
             m->type ? m->type : "message");
    srv_conn *s = srv_presence_find(srv, id);
    if (s) {
        if (s->state == SRV_CONN_AUTHED)
            (void)srv_conn_send_error(srv, s, RDV_EC_PEER_OFFLINE, text, m->session_id, m->type,
                                      NULL);
        return;
    }
    size_t len = 0;
    char *raw = rdv_msg_build_error(RDV_EC_PEER_OFFLINE, text, m->session_id, &len);
    if (!raw)
        return;
    srv_engine_notify(srv->engine, m->sender, (const uint8_t *)raw, len);
    free(raw);
}

void srv_offline_expire(srv_server *srv)
{
    srv_engine_expire(srv->engine, rdv_now_ms(), expired_one, srv);
}

void srv_offline_arrived(srv_server *srv, const srv_queued_msg *m)
{
    uint8_t id[RDV_NODE_ID_BYTES];
    if (!m->recipient || rdv_node_id_to_pk(m->recipient, id) != 0)
        return;
    srv_conn *c = srv_presence_find(srv, id);
    if (c && c->state == SRV_CONN_AUTHED && !c->close_code) {
        if (srv_conn_send(srv, c, m->raw, m->raw_len, false) == 0)
            srv->m.routed[rdv_msg_type_from_name(m->type ? m->type : "",
                                                 m->type ? strlen(m->type) : 0)]++;
        return;
    }
    if (m->expires > 0) /* a routed message; a notice (expires 0) is dropped */
        srv_engine_requeue(srv->engine, m);
}
