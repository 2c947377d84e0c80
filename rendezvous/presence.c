/* presence.c - node map, watches and presence messages (see presence.h). */
#include "rendezvous/presence.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/conn_limits.h"
#include "schema/ids.h"
#include "rendezvous/log.h"
#include "rendezvous/offline.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

int srv_presence_init(srv_server *srv)
{
    if (srv_hmap_init(&srv->nodes, RDV_NODE_ID_BYTES,
                      (ptrdiff_t)offsetof(srv_conn, node_id) -
                          (ptrdiff_t)offsetof(srv_conn, link.node)) != 0)
        return -1;
    if (srv_hmap_init(&srv->watches, RDV_NODE_ID_BYTES,
                      (ptrdiff_t)offsetof(srv_watch_entry, id) -
                          (ptrdiff_t)offsetof(srv_watch_entry, node)) != 0)
        return -1;
    return 0;
}

static void free_entry(srv_hnode *n, void *user)
{
    srv_server *srv = user;
    srv_watch_entry *e = srv_container_of(n, srv_watch_entry, node);
    srv_hmap_del(&srv->watches, n);
    free(e->watchers);
    free(e);
}

void srv_presence_free(srv_server *srv)
{
    srv_hmap_each(&srv->watches, free_entry, srv);
    srv_hmap_free(&srv->watches);
    srv_hmap_free(&srv->nodes);
}

srv_conn *srv_presence_find(srv_server *srv, const uint8_t id[RDV_NODE_ID_BYTES])
{
    srv_hnode *n = srv_hmap_get(&srv->nodes, id);
    return n ? srv_container_of(n, srv_conn, link.node) : NULL;
}

srv_conn *srv_presence_attach(srv_server *srv, srv_conn *c)
{
    srv_conn *old = srv_presence_find(srv, c->node_id);
    if (old)
        srv_hmap_del(&srv->nodes, &old->link.node);
    c->serial = ++srv->next_serial;
    c->link.node.next = NULL;
    srv_hmap_put(&srv->nodes, &c->link.node);
    return old;
}

void srv_presence_joined(srv_server *srv, srv_conn *c, const char *hex, const char *ip,
                         bool notify)
{
    srv_engine_joined(srv->engine, hex, c->serial, rdv_wire_nat_name(c->nat_type), ip,
                      c->observed_port, rdv_now_ms());
    srv_server_store_dirty(srv);
    srv_offline_deliver(srv, c, hex);
    if (notify)
        srv_presence_notify(srv, c, true);
}

/* Removes c from entry e's watchers; frees e when nobody watches it. */
static void entry_remove(srv_server *srv, srv_watch_entry *e, const srv_conn *c)
{
    for (uint32_t i = 0; i < e->n; i++) {
        if (e->watchers[i] == c) {
            e->watchers[i] = e->watchers[--e->n];
            break;
        }
    }
    if (e->n == 0) {
        srv_hmap_del(&srv->watches, &e->node);
        free(e->watchers);
        free(e);
    }
}

/* Drops every watch of c. */
static void drop_watches(srv_server *srv, srv_conn *c)
{
    srv_watchset *ws = c->watches;
    if (!ws)
        return;
    for (uint32_t i = 0; i < ws->n; i++)
        entry_remove(srv, ws->e[i], c);
    free(ws->e);
    free(ws);
    c->watches = NULL;
}

void srv_presence_detach(srv_server *srv, srv_conn *c)
{
    drop_watches(srv, c);
    if (c->state != SRV_CONN_AUTHED && c->state != SRV_CONN_CLOSING)
        return;
    if (srv_presence_find(srv, c->node_id) != c)
        return; /* never authenticated, or replaced by a newer connection */
    srv_hmap_del(&srv->nodes, &c->link.node);
    char hex[RDV_NODE_ID_HEXLEN + 1];
    srv_conn_node_hex(c, hex);
    srv_engine_left(srv->engine, hex, c->serial, rdv_now_ms());
    srv_server_store_dirty(srv);
    srv_info(srv->log, "node %s offline", hex);
    srv_presence_notify(srv, c, false);
}

/* Pushes peerOnline / peerOffline for node id (hex) to its watchers here,
 * but not to `skip` (the node's own connection). */
static void notify_watchers(srv_server *srv, const uint8_t *id, const char *hex, bool online,
                            const char *nat, int64_t last_seen, const srv_conn *skip)
{
    srv_hnode *n = srv_hmap_get(&srv->watches, id);
    if (!n)
        return;
    srv_watch_entry *e = srv_container_of(n, srv_watch_entry, node);
    json_t *b = online ? json_pack("{s:s, s:s, s:I}", "nodeID", hex, "natType",
                                   nat ? nat : "unknown", "lastSeen", (json_int_t)last_seen)
                       : json_pack("{s:s, s:I}", "nodeID", hex, "lastSeen",
                                   (json_int_t)last_seen);
    json_t *env = b ? rdv_msg_wrap(online ? RDV_MSG_PEER_ONLINE : RDV_MSG_PEER_OFFLINE, b) : NULL;
    size_t len = 0;
    char *text = env ? rdv_msg_dump(env, &len) : NULL;
    json_decref(env);
    if (!text) {
        srv_error(srv->log, "cannot build presence push (out of memory)");
        return;
    }
    /* a send may close a slow watcher, which does not touch this entry
     * until its CLOSED callback, so iterating by index is safe */
    for (uint32_t i = 0; i < e->n; i++)
        if (e->watchers[i] != skip && e->watchers[i]->state == SRV_CONN_AUTHED)
            (void)srv_conn_send(srv, e->watchers[i], text, len, false);
    free(text);
}

void srv_presence_notify(srv_server *srv, const srv_conn *c, bool online)
{
    char hex[RDV_NODE_ID_HEXLEN + 1];
    srv_conn_node_hex(c, hex);
    notify_watchers(srv, c->node_id, hex, online, rdv_wire_nat_name(c->nat_type), rdv_now_ms(),
                    c);
}

void srv_presence_remote(void *user, const char *hex, bool online, const char *nat,
                         int64_t last_seen)
{
    srv_server *srv = user;
    uint8_t id[RDV_NODE_ID_BYTES];
    if (!hex || rdv_node_id_to_pk(hex, id) != 0)
        return;
    srv_conn *here = srv_presence_find(srv, id);
    if (!online && here)
        return; /* connected here now: the other instance's news is old */
    notify_watchers(srv, id, hex, online, nat, last_seen, NULL);
}

/* Records one connected node in the engine again. */
static void rejoin_one(srv_hnode *n, void *user)
{
    srv_server *srv = user;
    srv_conn *c = srv_container_of(n, srv_conn, link.node);
    char hex[RDV_NODE_ID_HEXLEN + 1], ip[64] = "0.0.0.0";
    uint8_t key[16];
    uint16_t port = c->observed_port;
    srv_conn_node_hex(c, hex);
    if (c->wsi)
        (void)srv_peer_address(c->wsi, key, ip, sizeof ip, &port);
    srv_engine_joined(srv->engine, hex, c->serial, rdv_wire_nat_name(c->nat_type), ip,
                      c->observed_port, rdv_now_ms());
}

void srv_presence_rejoin(void *user)
{
    srv_server *srv = user;
    srv_info(srv->log, "engine: the shared store answers again; recording %zu node(s) here",
             srv->nodes.count);
    srv_hmap_each(&srv->nodes, rejoin_one, srv);
}

void srv_presence_replaced(void *user, const char *hex, uint32_t serial)
{
    srv_server *srv = user;
    uint8_t id[RDV_NODE_ID_BYTES];
    if (!hex || rdv_node_id_to_pk(hex, id) != 0)
        return;
    srv_conn *c = srv_presence_find(srv, id);
    if (!c || c->serial != serial)
        return;
    /* out of the map first: the node is online elsewhere, so closing this
     * connection is no "offline" */
    srv_hmap_del(&srv->nodes, &c->link.node);
    srv_info(srv->log, "node %s authenticated on another instance; closing its connection here",
             hex);
    srv_conn_close(srv, c, RDV_EC_REPLACED,
                   "this node authenticated on a newer connection; this one is closed", 4001);
}

/* A presence request waiting for the engine: who asked (found again by
 * node ID and serial), the IDs in request order and the requestID. */
typedef struct presence_req {
    srv_server *srv;
    uint8_t asker[RDV_NODE_ID_BYTES];
    uint32_t serial;
    size_t n;
    char rid[RDV_MAX_REQUEST_ID + 1];
    bool has_rid;
    char ids[RDV_MAX_IDS_PER_REQUEST][RDV_NODE_ID_HEXLEN + 1];
} presence_req;

/* Presence entry for one node ID: connected here is online now; else what
 * the engine knows (online on another instance, or last seen). */
static json_t *peer_entry(srv_server *srv, const char *hex, const srv_presence *pr)
{
    uint8_t id[RDV_NODE_ID_BYTES];
    if (rdv_node_id_to_pk(hex, id) != 0)
        return NULL;
    srv_conn *p = srv_presence_find(srv, id);
    if (p)
        return json_pack("{s:s, s:b, s:I, s:s}", "nodeID", hex, "online", 1, "lastSeen",
                         (json_int_t)rdv_now_ms(), "natType", rdv_wire_nat_name(p->nat_type));
    bool known = pr && pr->known;
    return json_pack("{s:s, s:b, s:I, s:s}", "nodeID", hex, "online", known && pr->online,
                     "lastSeen", (json_int_t)(known ? pr->last_seen : 0), "natType",
                     known && pr->nat_type[0] ? pr->nat_type : "unknown");
}

/* The engine's answer: sends `presence` to the asker if still connected. */
static void presence_answer(void *user, const srv_presence *res, size_t nres)
{
    presence_req *q = user;
    srv_server *srv = q->srv;
    srv_conn *c = srv_presence_find(srv, q->asker);
    if (!c || c->serial != q->serial || c->state != SRV_CONN_AUTHED) {
        free(q);
        return;
    }
    const char *rid = q->has_rid ? q->rid : NULL;
    json_t *peers = json_array();
    json_t *b = json_object();
    if (!peers || !b)
        goto oom;
    for (size_t i = 0; i < q->n; i++) {
        json_t *e = peer_entry(srv, q->ids[i], i < nres ? &res[i] : NULL);
        if (!e || json_array_append_new(peers, e) != 0)
            goto oom;
    }
    if (rid && json_object_set_new(b, "requestID", json_string(rid)) != 0)
        goto oom;
    if (json_object_set_new(b, "peers", peers) != 0) {
        peers = NULL;
        goto oom;
    }
    (void)srv_conn_send_json(srv, c, RDV_MSG_PRESENCE, b);
    free(q);
    return;
oom:
    json_decref(peers);
    json_decref(b);
    (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, "server out of memory", rid, NULL, NULL);
    free(q);
}

/* Sends `presence` for body.nodeIDs (validated by the codec: 1 ... 64 node
 * IDs), echoing requestID, once the engine has answered. */
static int send_presence(srv_server *srv, srv_conn *c, const json_t *body)
{
    const json_t *ids = json_object_get(body, "nodeIDs");
    const char *rid = rdv_msg_get_str(body, "requestID");
    presence_req *q = calloc(1, sizeof *q);
    if (!q) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, "server out of memory", rid, NULL,
                                  NULL);
        return 0;
    }
    q->srv = srv;
    memcpy(q->asker, c->node_id, RDV_NODE_ID_BYTES);
    q->serial = c->serial;
    if (rid) {
        q->has_rid = true;
        snprintf(q->rid, sizeof q->rid, "%s", rid);
    }
    const char *list[RDV_MAX_IDS_PER_REQUEST];
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (q->n >= RDV_MAX_IDS_PER_REQUEST)
            break;
        snprintf(q->ids[q->n], sizeof q->ids[q->n], "%s", json_string_value(v));
        list[q->n] = q->ids[q->n];
        q->n++;
    }
    srv_engine_lookup(srv->engine, list, q->n, presence_answer, q); /* frees q */
    return 0;
}

/* Presence scanning limit (PROTOCOL.md section 8): takes n tokens from
 * c's bucket of node IDs (--presence-rate per minute, --presence-burst but
 * never less than --max-watches) and returns true; or, when fewer than n
 * are left, takes none, answers the request with rate_limited (ref the
 * requestID) and returns false. */
static bool presence_admit(srv_server *srv, srv_conn *c, size_t n, const char *type,
                           const char *rid)
{
    const srv_config *cfg = srv->cfg;
    if (cfg->presence_rate <= 0 || n == 0)
        return true;
    float cap = (float)(cfg->presence_burst > cfg->max_watches ? cfg->presence_burst
                                                               : cfg->max_watches);
    int64_t now = srv_mono_ms();
    if (c->presence_ms == 0) {
        c->presence_tokens = cap;
        c->presence_ms = now;
    } else if (now > c->presence_ms) {
        float t = c->presence_tokens +
                  (float)(now - c->presence_ms) * (float)cfg->presence_rate / 60000.0f;
        c->presence_tokens = t > cap ? cap : t;
        c->presence_ms = now;
    }
    if (c->presence_tokens >= (float)n) {
        c->presence_tokens -= (float)n;
        return true;
    }
    char m[200];
    snprintf(m, sizeof m,
             "%s of %zu node IDs refused: over %d IDs looked up or watched per minute "
             "(%.0f left now); ask for fewer, later",
             type, n, cfg->presence_rate, (double)c->presence_tokens);
    (void)srv_conn_send_error(srv, c, RDV_EC_RATE_LIMITED, m, rid, type, "nodeIDs");
    return false;
}

int srv_presence_lookup(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    const json_t *ids = json_object_get(msg->body, "nodeIDs");
    if (!presence_admit(srv, c, json_array_size(ids), "lookup",
                        rdv_msg_get_str(msg->body, "requestID")))
        return 0;
    (void)send_presence(srv, c, msg->body);
    return 0;
}

/* True when c's watch set holds id. */
static bool watches_has(const srv_watchset *ws, const uint8_t *id)
{
    for (uint32_t i = 0; ws && i < ws->n; i++)
        if (!memcmp(ws->e[i]->id, id, RDV_NODE_ID_BYTES))
            return true;
    return false;
}

/* Adds id to c's set and c to id's entry. Returns 0 or -1 (OOM). */
static int watch_add(srv_server *srv, srv_conn *c, const uint8_t *id)
{
    srv_watchset *ws = c->watches;
    if (!ws) {
        ws = calloc(1, sizeof *ws);
        if (!ws)
            return -1;
        c->watches = ws;
    }
    if (ws->n == ws->cap) {
        uint32_t cap = ws->cap ? ws->cap * 2 : 8;
        srv_watch_entry **ne = realloc(ws->e, cap * sizeof *ne);
        if (!ne)
            return -1;
        ws->e = ne;
        ws->cap = cap;
    }
    srv_hnode *n = srv_hmap_get(&srv->watches, id);
    srv_watch_entry *e = n ? srv_container_of(n, srv_watch_entry, node) : NULL;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e)
            return -1;
        memcpy(e->id, id, RDV_NODE_ID_BYTES);
        srv_hmap_put(&srv->watches, &e->node);
    }
    if (e->n == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 4;
        srv_conn **nw = realloc(e->watchers, cap * sizeof *nw);
        if (!nw) {
            if (e->n == 0)
                entry_remove(srv, e, c);
            return -1;
        }
        e->watchers = nw;
        e->cap = cap;
    }
    e->watchers[e->n++] = c;
    ws->e[ws->n++] = e;
    return 0;
}

int srv_presence_watch(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    const json_t *ids = json_object_get(msg->body, "nodeIDs");
    const char *rid = rdv_msg_get_str(msg->body, "requestID");
    uint8_t want[RDV_MAX_IDS_PER_REQUEST][RDV_NODE_ID_BYTES];
    size_t nwant = 0, i;
    const json_t *v;
    json_array_foreach(ids, i, v)
    {
        uint8_t id[RDV_NODE_ID_BYTES];
        if (nwant >= RDV_MAX_IDS_PER_REQUEST ||
            rdv_node_id_to_pk(json_string_value(v), id) != 0)
            continue;
        bool dup = watches_has(c->watches, id);
        for (size_t k = 0; !dup && k < nwant; k++)
            dup = !memcmp(want[k], id, RDV_NODE_ID_BYTES);
        if (!dup)
            memcpy(want[nwant++], id, RDV_NODE_ID_BYTES);
    }
    uint32_t have = c->watches ? c->watches->n : 0;
    if (have + nwant > (size_t)srv->cfg->max_watches) {
        char m[160];
        snprintf(m, sizeof m,
                 "watching %u + %zu node IDs would exceed the limit of %d; unwatch some first",
                 have, nwant, srv->cfg->max_watches);
        (void)srv_conn_send_error(srv, c, RDV_EC_LIMIT_EXCEEDED, m, rid, "watch", "nodeIDs");
        return 0;
    }
    if (!presence_admit(srv, c, nwant, "watch", rid))
        return 0;
    for (size_t k = 0; k < nwant; k++) {
        if (watch_add(srv, c, want[k]) != 0) {
            (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, "server out of memory", rid,
                                      "watch", NULL);
            return 0;
        }
    }
    return send_presence(srv, c, msg->body);
}

int srv_presence_unwatch(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    const json_t *ids = json_object_get(msg->body, "nodeIDs");
    srv_watchset *ws = c->watches;
    size_t i;
    const json_t *v;
    if (!ws)
        return 0;
    json_array_foreach(ids, i, v)
    {
        uint8_t id[RDV_NODE_ID_BYTES];
        if (rdv_node_id_to_pk(json_string_value(v), id) != 0)
            continue;
        for (uint32_t k = 0; k < ws->n; k++) {
            if (!memcmp(ws->e[k]->id, id, RDV_NODE_ID_BYTES)) {
                srv_watch_entry *e = ws->e[k];
                ws->e[k] = ws->e[--ws->n];
                entry_remove(srv, e, c);
                break;
            }
        }
    }
    return 0;
}
