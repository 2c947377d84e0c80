/* relay.c - relay sessions, consent and datagram forwarding (see relay.h).
 *
 * Data structures. A session (srv_relay_session) sits in the session table
 * under its 16-byte ID and in the session lists of both its relay peers
 * (srv_relay_peer, one per connection that opened or was offered a
 * session; kept until the connection goes so that its token bucket cannot
 * be reset by closing and reopening sessions). side[0] is the opener, side[1]
 * the recipient; a session's links in side[i]'s list are next[i]/prev[i].
 *
 * Counting against --relay-max-sessions: the opener counts a session from
 * relayOpen on, the recipient only once it consented (OPEN), so nobody can
 * fill another node's slots with unanswered relayOpens.
 *
 * Across instances (--redis). A side may be a node on another instance: a
 * "remote peer" (conn NULL, its node ID and instance), owned by its one
 * session and never in the peers table. What the local code would send to
 * it goes as a bus frame to its instance ("R KIND SID FROM FROMINST TO\n"
 * + the original bytes; KIND o relayOpen, r relayReady, c close (bytes:
 * the reason), d text relayData, b binary relayData), and that instance,
 * which holds the mirror session (the remote side there is this one's
 * local node), delivers it (srv_relay_bus_in). Each instance enforces the
 * limits of its own node: the sender's rate, quota and session cap where
 * it sends, the receiver's congestion where it receives. The recipient's
 * instance is learnt from the engine when relayOpen is routed, the
 * opener's from the frames it sends.
 *
 * Re-entrancy. Sending a message can close its receiver (slow_consumer),
 * and closing a connection ends its sessions (srv_relay_conn_gone), which
 * sends more messages. So a session is always taken out of every table and
 * list and freed before anything is sent about it, loops re-read list heads
 * after each send, and the idle sweep collects IDs first and looks each up
 * again before ending it.
 */
#include "rendezvous/relay.h"

#include <libwebsockets.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/conn_limits.h"
#include "schema/ids.h"
#include "rendezvous/log.h"
#include "rendezvous/presence.h"
#include "rendezvous/relay_channel.h"
#include "rendezvous/server.h"

enum { S_OPENING = 0, S_OPEN = 1 };

/* Longest gap over which a token bucket is refilled in one step (ms):
 * keeps dt * rate far from int64 overflow; buckets are full long before. */
#define MAX_REFILL_MS 100000

struct srv_relay_session;

typedef struct srv_relay_peer {
    srv_hnode node;
    srv_conn *conn;                  /* the key (pointer bytes); NULL: remote */
    struct srv_relay_session *head;  /* sessions this connection is in */
    int count;                       /* counted against max_sessions */
    int64_t tokens;                  /* per-node byte bucket */
    int64_t refill_ms;
    bool own_limits;                 /* the policy set rate/max_sessions/quota */
    int max_sessions;                /* own_limits: this node's session cap */
    uint64_t rate, quota;            /* own_limits: bytes/s, bytes per session */
    /* a remote peer only: */
    uint8_t node_id[RDV_NODE_ID_BYTES];
    char inst[33];                   /* its instance; "" until known */
} srv_relay_peer;

typedef struct srv_relay_session {
    srv_hnode node;
    uint8_t id[RDV_UUID_BYTES];      /* the key */
    uint8_t state;                   /* S_OPENING / S_OPEN */
    srv_relay_peer *side[2];         /* 0: opener, 1: recipient */
    struct srv_relay_session *next[2], *prev[2];
    uint64_t bytes;                  /* payload relayed, both ways (quota) */
    int64_t last_ms;                 /* created / consented / last data (mono) */
} srv_relay_session;

static const char *const drop_names[SRV_RELAY_DROP__COUNT] = {
    [SRV_RELAY_DROP_RATE] = "rate_limited",
    [SRV_RELAY_DROP_GLOBAL] = "global_rate",
    [SRV_RELAY_DROP_QUOTA] = "quota",
    [SRV_RELAY_DROP_CONGESTED] = "congested",
    [SRV_RELAY_DROP_TOO_LARGE] = "too_large",
    [SRV_RELAY_DROP_NO_CONSENT] = "no_consent",
    [SRV_RELAY_DROP_UNKNOWN_SESSION] = "unknown_session",
    [SRV_RELAY_DROP_NOT_IN_SESSION] = "not_in_session",
    [SRV_RELAY_DROP_CLOSING] = "closing",
};

static const char *const end_names[SRV_RELAY_END__COUNT] = {
    [SRV_RELAY_END_BY_PEER] = "closed_by_peer",
    [SRV_RELAY_END_DISCONNECTED] = "peer_disconnected",
    [SRV_RELAY_END_REPLACED] = "replaced",
    [SRV_RELAY_END_IDLE] = "idle",
    [SRV_RELAY_END_QUOTA] = "quota",
    [SRV_RELAY_END_SHUTDOWN] = "shutting_down",
    [SRV_RELAY_END_REVOKED] = "revoked",
};

const char *srv_relay_drop_name(srv_relay_drop d)
{
    return (unsigned)d < SRV_RELAY_DROP__COUNT ? drop_names[d] : "unknown";
}

const char *srv_relay_end_name(srv_relay_end e)
{
    return (unsigned)e < SRV_RELAY_END__COUNT ? end_names[e] : "unknown";
}

/* ---- tables ------------------------------------------------------------ */

static int64_t burst_of(const srv_relay *r, uint64_t rate);

int srv_relay_init(srv_relay *r, const srv_relay_limits *lim)
{
    memset(r, 0, sizeof *r);
    r->lim = *lim;
    if (srv_hmap_init(&r->sessions, RDV_UUID_BYTES,
                      (ptrdiff_t)offsetof(srv_relay_session, id) -
                          (ptrdiff_t)offsetof(srv_relay_session, node)) != 0)
        return -1;
    if (srv_hmap_init(&r->peers, sizeof(srv_conn *),
                      (ptrdiff_t)offsetof(srv_relay_peer, conn) -
                          (ptrdiff_t)offsetof(srv_relay_peer, node)) != 0) {
        srv_hmap_free(&r->sessions);
        return -1;
    }
    r->global_ms = srv_mono_ms();
    r->global_tokens = burst_of(r, lim->global_rate);
    return 0;
}

static void free_session_cb(srv_hnode *n, void *user)
{
    srv_relay *r = user;
    srv_relay_session *s = srv_container_of(n, srv_relay_session, node);
    srv_hmap_del(&r->sessions, n);
    for (int i = 0; i < 2; i++)
        if (s->side[i] && !s->side[i]->conn)
            free(s->side[i]); /* a remote peer: owned by the session */
    free(s);
}

static void free_peer_cb(srv_hnode *n, void *user)
{
    srv_relay *r = user;
    srv_hmap_del(&r->peers, n);
    free(srv_container_of(n, srv_relay_peer, node));
}

void srv_relay_free(srv_relay *r)
{
    srv_hmap_each(&r->sessions, free_session_cb, r);
    srv_hmap_each(&r->peers, free_peer_cb, r);
    srv_hmap_free(&r->sessions);
    srv_hmap_free(&r->peers);
    r->n_open = r->n_opening = 0;
}

/* Token bucket size for a rate: one second of traffic, and at least two
 * messages of the largest payload so a burst of one is always possible. */
static int64_t burst_of(const srv_relay *r, uint64_t rate)
{
    int64_t floor = 2 * (int64_t)(r->lim.max_payload + RDV_RELAY_FRAME_HEADER);
    return (int64_t)rate > floor ? (int64_t)rate : floor;
}

/* The relay peer entry of c; created (full bucket) when `create`. NULL
 * when absent or out of memory. */
static srv_relay_peer *peer_of(srv_relay *r, srv_conn *c, bool create)
{
    srv_hnode *n = srv_hmap_get(&r->peers, (const uint8_t *)&c);
    if (n || !create)
        return n ? srv_container_of(n, srv_relay_peer, node) : NULL;
    srv_relay_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->conn = c;
    p->tokens = burst_of(r, r->lim.rate);
    p->refill_ms = srv_mono_ms();
    srv_hmap_put(&r->peers, &p->node);
    return p;
}

/* The policy's limits of p (policy.h), else the server's. */
static int peer_max(const srv_relay *r, const srv_relay_peer *p)
{
    return p->own_limits ? p->max_sessions : r->lim.max_sessions;
}

static uint64_t peer_rate(const srv_relay *r, const srv_relay_peer *p)
{
    return p->own_limits ? p->rate : r->lim.rate;
}

/* A session's quota: the smaller of its sides' (0: unlimited). */
static uint64_t session_quota(const srv_relay *r, const srv_relay_session *s)
{
    uint64_t q = 0;
    for (int i = 0; i < 2; i++) {
        const srv_relay_peer *p = s->side[i];
        uint64_t v = p && p->own_limits ? p->quota : r->lim.quota;
        if (v && (!q || v < q))
            q = v;
    }
    return q;
}

/* A peer for node `id` on another instance (inst may be "" for now). */
static srv_relay_peer *remote_peer_new(const uint8_t id[RDV_NODE_ID_BYTES], const char *inst)
{
    srv_relay_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    memcpy(p->node_id, id, RDV_NODE_ID_BYTES);
    snprintf(p->inst, sizeof p->inst, "%.32s", inst ? inst : "");
    return p;
}

static const uint8_t *peer_node(const srv_relay_peer *p)
{
    return p->conn ? p->conn->node_id : p->node_id;
}

/* Sends a bus frame of `kind` for session sid (text) from node `from` to
 * the remote peer `to` (nothing while its instance is unknown). */
static void bus_send(struct srv_server *srv, const srv_relay_peer *to, char kind,
                     const char *sid, const uint8_t *from, const uint8_t *body, size_t len)
{
    if (!to->inst[0] || !srv->engine)
        return;
    char fromhex[RDV_NODE_ID_HEXLEN + 1], tohex[RDV_NODE_ID_HEXLEN + 1];
    sodium_bin2hex(fromhex, sizeof fromhex, from, RDV_NODE_ID_BYTES);
    sodium_bin2hex(tohex, sizeof tohex, to->node_id, RDV_NODE_ID_BYTES);
    char head[256];
    int n = snprintf(head, sizeof head, "R %c %s %s %s %s\n", kind, sid, fromhex,
                     srv->instance_id, tohex);
    if (n < 0 || (size_t)n >= sizeof head)
        return;
    uint8_t *f = malloc((size_t)n + len);
    if (!f)
        return;
    memcpy(f, head, (size_t)n);
    if (len)
        memcpy(f + n, body, len);
    srv_engine_relay_send(srv->engine, to->inst, f, (size_t)n + len);
    free(f);
}

static srv_relay_session *session_get(srv_relay *r, const uint8_t id[RDV_UUID_BYTES])
{
    srv_hnode *n = srv_hmap_get(&r->sessions, id);
    return n ? srv_container_of(n, srv_relay_session, node) : NULL;
}

/* Index of p in s (0 or 1). */
static int side_of(const srv_relay_session *s, const srv_relay_peer *p)
{
    return s->side[0] == p ? 0 : 1;
}

static void list_push(srv_relay_session *s, int i)
{
    srv_relay_peer *p = s->side[i];
    s->prev[i] = NULL;
    s->next[i] = p->head;
    if (p->head)
        p->head->prev[side_of(p->head, p)] = s;
    p->head = s;
}

static void list_unlink(srv_relay_session *s, int i)
{
    srv_relay_peer *p = s->side[i];
    if (s->prev[i])
        s->prev[i]->next[side_of(s->prev[i], p)] = s->next[i];
    else
        p->head = s->next[i];
    if (s->next[i])
        s->next[i]->prev[side_of(s->next[i], p)] = s->prev[i];
    s->next[i] = s->prev[i] = NULL;
}

/* Enters the new session s (zeroed) as OPENING between opener p0 and
 * recipient p1: in the table and both peers' lists, counted against the
 * opener's cap (the recipient's counts once it consents). */
static void session_add(srv_relay *r, srv_relay_session *s, const uint8_t id[RDV_UUID_BYTES],
                        srv_relay_peer *p0, srv_relay_peer *p1)
{
    memcpy(s->id, id, RDV_UUID_BYTES);
    s->state = S_OPENING;
    s->side[0] = p0;
    s->side[1] = p1;
    s->last_ms = srv_mono_ms();
    srv_hmap_put(&r->sessions, &s->node);
    list_push(s, 0);
    list_push(s, 1);
    p0->count++;
    r->n_opening++;
}

/* Takes s out of every table and list, updates gauges and counts, and
 * frees it. Sends nothing. */
static void session_destroy(srv_relay *r, srv_relay_session *s)
{
    list_unlink(s, 0);
    list_unlink(s, 1);
    s->side[0]->count--;
    if (s->state == S_OPEN) {
        s->side[1]->count--;
        r->n_open--;
    } else {
        r->n_opening--;
    }
    srv_hmap_del(&r->sessions, &s->node);
    for (int i = 0; i < 2; i++)
        if (!s->side[i]->conn)
            free(s->side[i]); /* remote peers belong to their session */
    free(s);
}

/* Queues {"relayClose":{"sessionID":..., "reason":...}} for c, or for its
 * relay channel (unless c is closing: nothing can reach it then). */
static void send_close(struct srv_server *srv, srv_conn *c, const char *sid, const char *reason)
{
    if (!c || c->close_code)
        return;
    json_t *b = json_pack("{s:s, s:s}", "sessionID", sid, "reason", reason);
    /* down the node's relay channel when its data goes there: after the
     * data it ends (relay_channel.h) */
    if (!b || srv_conn_send_json(srv, srv_channel_out(srv, c), RDV_MSG_RELAY_CLOSE, b) != 0)
        srv_debug(srv->log, "relayClose for %s not queued", sid);
}

/* Ends s: destroys it, then tells its sides (all but `skip`) with
 * relayClose (`reason`, or the end reason's name); a remote side hears it
 * through its instance. s is freed on return. */
static void session_end(srv_relay *r, struct srv_server *srv, srv_relay_session *s,
                        srv_relay_end why, const srv_relay_peer *skip, const char *reason)
{
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_from_bytes(s->id, sid);
    srv_conn *c[2] = {s->side[0]->conn, s->side[1]->conn};
    bool skipped[2] = {s->side[0] == skip, s->side[1] == skip};
    srv_relay_peer remote[2]; /* copies: remote peers are freed with s */
    for (int i = 0; i < 2; i++)
        if (!c[i])
            remote[i] = *s->side[i];
    session_destroy(r, s);
    if ((unsigned)why < SRV_RELAY_END__COUNT)
        r->m.closed[why]++;
    const char *text = reason ? reason : srv_relay_end_name(why);
    srv_debug(srv->log, "relay session %s closed (%s)", sid, srv_relay_end_name(why));
    /* c[0] may be closed by the first send (slow consumer); both pointers
     * stay valid until their LWS_CALLBACK_CLOSED, which cannot run here. */
    for (int i = 0; i < 2; i++) {
        if (skipped[i])
            continue;
        if (c[i]) {
            send_close(srv, c[i], sid, text);
        } else {
            const uint8_t *from = c[1 - i] ? c[1 - i]->node_id : remote[1 - i].node_id;
            bus_send(srv, &remote[i], 'c', sid, from, (const uint8_t *)text, strlen(text));
        }
    }
}

/* ---- token buckets ----------------------------------------------------- */

/* Refills a bucket of `rate` bytes/s (0: unlimited) up to `burst`, then
 * takes n bytes. False (nothing taken) when there are fewer than n. */
static bool bucket_take(int64_t *tokens, int64_t *last_ms, uint64_t rate, int64_t burst,
                        int64_t now, size_t n)
{
    if (rate == 0)
        return true;
    int64_t dt = now - *last_ms;
    if (dt > 0) {
        if (dt > MAX_REFILL_MS)
            dt = MAX_REFILL_MS;
        int64_t t = *tokens + dt * (int64_t)rate / 1000;
        *tokens = t > burst ? burst : t;
        *last_ms = now;
    }
    if (*tokens < (int64_t)n)
        return false;
    *tokens -= (int64_t)n;
    return true;
}

/* ---- errors ------------------------------------------------------------ */

/* Answers a refused relay message with an error, after charging the
 * sender's per-message bucket (so refusals cannot be a free flood). */
static void refuse(struct srv_server *srv, srv_conn *c, rdv_ec code, const char *why,
                   const char *sid, const char *type, const char *field)
{
    if (!srv_limits_admit(srv, c))
        return;
    (void)srv_conn_send_error(srv, c, code, why, sid, type, field);
}

static void count_drop(srv_relay *r, srv_relay_drop d, size_t bytes)
{
    r->m.dropped_msgs[d]++;
    r->m.dropped_bytes[d] += bytes;
}

/* ---- relayOpen / relayReady / relayClose -------------------------------- */

/* sessionID of body as 16 bytes; false when absent or malformed (the codec
 * validated it already, so this is belt and braces). */
static bool body_sid(const json_t *body, uint8_t id[RDV_UUID_BYTES], const char **text)
{
    *text = rdv_msg_get_str(body, "sessionID");
    return *text && rdv_uuid_to_bytes(*text, id) == 0;
}

/* relayOpen for a node not connected here (cluster): the session is
 * created with a remote recipient at once (its relayReady may come back
 * before the engine says where the frame went) and the frame routed to
 * the recipient's instance; when no instance has the node, the session
 * goes and the opener gets peer_offline. */
typedef struct open_ctx {
    struct srv_server *srv;
    uint8_t id[RDV_UUID_BYTES];
    uint8_t opener[RDV_NODE_ID_BYTES];
    uint8_t to[RDV_NODE_ID_BYTES];
} open_ctx;

static void open_routed(void *user, const char *inst)
{
    open_ctx *x = user;
    struct srv_server *srv = x->srv;
    srv_relay *r = &srv->relay;
    srv_relay_session *s = session_get(r, x->id);
    bool ours = s && !s->side[1]->conn && s->side[0]->conn &&
                !memcmp(s->side[0]->conn->node_id, x->opener, RDV_NODE_ID_BYTES);
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_from_bytes(x->id, sid);
    if (ours && inst) {
        if (!s->side[1]->inst[0])
            snprintf(s->side[1]->inst, sizeof s->side[1]->inst, "%.32s", inst);
        srv->m.routed[RDV_MSG_RELAY_OPEN]++;
    } else if (ours) {
        srv_conn *c = s->side[0]->conn;
        session_destroy(r, s);
        char hex[RDV_NODE_ID_HEXLEN + 1];
        sodium_bin2hex(hex, sizeof hex, x->opener, RDV_NODE_ID_BYTES);
        (void)srv_conn_send_error(srv, c, RDV_EC_PEER_OFFLINE,
                                  "the peer is not connected to any instance; a relay needs "
                                  "both sides online (relayOpen is never queued)",
                                  sid, "relayOpen", NULL);
    } else if (inst) {
        /* the session ended before the engine answered: end the mirror
         * session the frame created there */
        srv_relay_peer gone;
        memset(&gone, 0, sizeof gone);
        memcpy(gone.node_id, x->to, RDV_NODE_ID_BYTES);
        snprintf(gone.inst, sizeof gone.inst, "%.32s", inst);
        static const char why[] = "peer_disconnected";
        bus_send(srv, &gone, 'c', sid, x->opener, (const uint8_t *)why, sizeof why - 1);
    }
    free(x);
}

static int open_remote(srv_relay *r, struct srv_server *srv, srv_conn *c,
                       const uint8_t id[RDV_UUID_BYTES], const char *sid,
                       const uint8_t to_id[RDV_NODE_ID_BYTES], const char *to,
                       const uint8_t *raw, size_t len)
{
    const char *type = "relayOpen";
    srv_relay_peer *p = peer_of(r, c, true);
    if (p && p->count >= peer_max(r, p)) {
        char m[200];
        snprintf(m, sizeof m,
                 "you already have %d relay sessions (the limit); close one with relayClose",
                 peer_max(r, p));
        (void)srv_conn_send_error(srv, c, RDV_EC_LIMIT_EXCEEDED, m, sid, type, NULL);
        return 0;
    }
    srv_relay_peer *tp = p ? remote_peer_new(to_id, "") : NULL;
    srv_relay_session *s = tp ? calloc(1, sizeof *s) : NULL;
    open_ctx *x = s ? calloc(1, sizeof *x) : NULL;
    enum { HEAD_MAX = 256 };
    uint8_t *frame = x ? malloc(HEAD_MAX + len) : NULL;
    if (!frame) {
        free(x);
        free(s);
        free(tp);
        srv_error(srv->log, "out of memory opening a relay session");
        (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, "server out of memory", sid, type,
                                  NULL);
        return 0;
    }
    char fromhex[RDV_NODE_ID_HEXLEN + 1];
    srv_conn_node_hex(c, fromhex);
    int n = snprintf((char *)frame, HEAD_MAX, "R o %s %s %s %s\n", sid, fromhex,
                     srv->instance_id, to);
    if (n < 0 || n >= HEAD_MAX) { /* cannot happen: fixed-size fields */
        free(frame);
        free(x);
        free(s);
        free(tp);
        return 0;
    }
    memcpy(frame + n, raw, len);
    session_add(r, s, id, p, tp);
    x->srv = srv;
    memcpy(x->id, id, RDV_UUID_BYTES);
    memcpy(x->opener, c->node_id, RDV_NODE_ID_BYTES);
    memcpy(x->to, to_id, RDV_NODE_ID_BYTES);
    srv_engine_relay_route(srv->engine, to, frame, (size_t)n + len, open_routed, x);
    free(frame);
    return 0;
}

int srv_relay_open(srv_relay *r, struct srv_server *srv, srv_conn *c, const rdv_msg *msg,
                   const uint8_t *raw, size_t len)
{
    const char *type = "relayOpen", *sid = NULL;
    uint8_t id[RDV_UUID_BYTES], to_id[RDV_NODE_ID_BYTES];
    const char *to = rdv_msg_get_str(msg->body, "toNodeID");
    if (!body_sid(msg->body, id, &sid) || !to || rdv_node_id_to_pk(to, to_id) != 0) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD, NULL, sid, type, "sessionID");
        return 0;
    }
    if (session_get(r, id)) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD,
                                  "sessionID is already in use by a relay session; open "
                                  "with a new random UUID",
                                  sid, type, "sessionID");
        return 0;
    }
    srv_conn *target = srv_presence_find(srv, to_id);
    if ((!target || target->close_code) && srv->cfg->redis_url[0] && !target)
        return open_remote(r, srv, c, id, sid, to_id, to, raw, len);
    if (!target || target->close_code) {
        char m[200];
        snprintf(m, sizeof m,
                 "node %.16s... is not connected; a relay needs both sides online "
                 "(relayOpen is never queued)",
                 to);
        (void)srv_conn_send_error(srv, c, RDV_EC_PEER_OFFLINE, m, sid, type, NULL);
        return 0;
    }
    srv_relay_peer *p = peer_of(r, c, true);
    if (p && p->count >= peer_max(r, p)) {
        char m[200];
        snprintf(m, sizeof m,
                 "you already have %d relay sessions (the limit); close one with relayClose",
                 peer_max(r, p));
        (void)srv_conn_send_error(srv, c, RDV_EC_LIMIT_EXCEEDED, m, sid, type, NULL);
        return 0;
    }
    srv_relay_peer *tp = p ? peer_of(r, target, true) : NULL;
    srv_relay_session *s = tp ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        srv_error(srv->log, "out of memory opening a relay session");
        (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, "server out of memory", sid, type,
                                  NULL);
        return 0;
    }
    session_add(r, s, id, p, tp);
    /* s may be gone after this send (target closed as a slow consumer) */
    if (srv_conn_send(srv, target, raw, len, false) == 0)
        srv->m.routed[RDV_MSG_RELAY_OPEN]++;
    return 0;
}

int srv_relay_ready(srv_relay *r, struct srv_server *srv, srv_conn *c, const rdv_msg *msg,
                    const uint8_t *raw, size_t len)
{
    const char *type = "relayReady", *sid = NULL;
    uint8_t id[RDV_UUID_BYTES], to_id[RDV_NODE_ID_BYTES];
    const char *to = rdv_msg_get_str(msg->body, "toNodeID");
    if (!body_sid(msg->body, id, &sid) || !to || rdv_node_id_to_pk(to, to_id) != 0) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD, NULL, sid, type, "sessionID");
        return 0;
    }
    srv_relay_session *s = session_get(r, id);
    if (!s) {
        (void)srv_conn_send_error(srv, c, RDV_EC_UNKNOWN_SESSION,
                                  "no relay session with this sessionID (closed, expired or "
                                  "never opened); ask the peer for a new relayOpen",
                                  sid, type, NULL);
        return 0;
    }
    srv_conn *opener = s->side[0]->conn, *recipient = s->side[1]->conn;
    if (c != opener && c != recipient) { /* a remote side's conn is NULL */
        (void)srv_conn_send_error(srv, c, RDV_EC_NOT_IN_SESSION,
                                  "this relay session belongs to other nodes", sid, type, NULL);
        return 0;
    }
    if (c != recipient) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD,
                                  "only the recipient of relayOpen can consent with relayReady",
                                  sid, type, "fromNodeID");
        return 0;
    }
    if (memcmp(to_id, peer_node(s->side[0]), RDV_NODE_ID_BYTES) != 0) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD,
                                  "relayReady must be addressed to the sender of relayOpen",
                                  sid, type, "toNodeID");
        return 0;
    }
    if (s->state == S_OPEN) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD,
                                  "this relay session is already open", sid, type, "sessionID");
        return 0;
    }
    if (s->side[1]->count >= peer_max(r, s->side[1])) {
        char m[200];
        snprintf(m, sizeof m,
                 "you already have %d relay sessions (the limit); close one, then send "
                 "relayReady again",
                 peer_max(r, s->side[1]));
        (void)srv_conn_send_error(srv, c, RDV_EC_LIMIT_EXCEEDED, m, sid, type, NULL);
        return 0;
    }
    s->state = S_OPEN;
    s->side[1]->count++;
    s->last_ms = srv_mono_ms();
    r->n_opening--;
    r->n_open++;
    r->m.opened++;
    if (!opener) { /* on another instance */
        bus_send(srv, s->side[0], 'r', sid, c->node_id, raw, len);
        srv->m.routed[RDV_MSG_RELAY_READY]++;
    } else if (srv_conn_send(srv, opener, raw, len, false) == 0) {
        srv->m.routed[RDV_MSG_RELAY_READY]++;
    }
    return 0;
}

int srv_relay_close_msg(srv_relay *r, struct srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    const char *type = "relayClose", *sid = NULL;
    uint8_t id[RDV_UUID_BYTES];
    if (!body_sid(msg->body, id, &sid)) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD, NULL, sid, type, "sessionID");
        return 0;
    }
    srv_relay_session *s = session_get(r, id);
    if (!s) {
        (void)srv_conn_send_error(srv, c, RDV_EC_UNKNOWN_SESSION,
                                  "no relay session with this sessionID (already closed?)", sid,
                                  type, NULL);
        return 0;
    }
    if (c != s->side[0]->conn && c != s->side[1]->conn) {
        (void)srv_conn_send_error(srv, c, RDV_EC_NOT_IN_SESSION,
                                  "this relay session belongs to other nodes", sid, type, NULL);
        return 0;
    }
    const char *reason = rdv_msg_get_str(msg->body, "reason");
    session_end(r, srv, s, SRV_RELAY_END_BY_PEER, s->side[c == s->side[0]->conn ? 0 : 1],
                reason && *reason ? reason : NULL);
    return 0;
}

/* ---- relayData --------------------------------------------------------- */

/* The checks and forwarding shared by both forms. id: the session; n: the
 * payload size; raw/len/binary: the frame to forward unchanged. */
/* Where refusals of relay data from c that arrived on `via` go: c when
 * it came on c; else where c's relay data and relayClose go (its channel
 * once delivery switched to it), so they stay in order with relayClose. */
static srv_conn *reply_to(struct srv_server *srv, srv_conn *c, srv_conn *via)
{
    return via == c ? c : srv_channel_current(srv, c);
}

static void relay_data(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_conn *via,
                       const uint8_t id[RDV_UUID_BYTES], size_t n, const uint8_t *raw,
                       size_t len, bool binary)
{
    via = reply_to(srv, c, via);
    const char *type = "relayData";
    srv_relay_session *s = session_get(r, id);
    if (!s || (c != s->side[0]->conn && c != s->side[1]->conn) || s->state != S_OPEN ||
        n > r->lim.max_payload) {
        char sid[RDV_UUID_STRLEN + 1];
        rdv_uuid_from_bytes(id, sid);
        if (!s) {
            count_drop(r, SRV_RELAY_DROP_UNKNOWN_SESSION, n);
            refuse(srv, via, RDV_EC_UNKNOWN_SESSION,
                   "no relay session with this sessionID; open one with relayOpen", sid, type,
                   NULL);
        } else if (c != s->side[0]->conn && c != s->side[1]->conn) {
            count_drop(r, SRV_RELAY_DROP_NOT_IN_SESSION, n);
            refuse(srv, via, RDV_EC_NOT_IN_SESSION,
                   "this relay session belongs to other nodes; nothing was delivered", sid,
                   type, NULL);
        } else if (s->state != S_OPEN) {
            count_drop(r, SRV_RELAY_DROP_NO_CONSENT, n);
            refuse(srv, via, RDV_EC_NO_CONSENT,
                   "the peer has not consented (no relayReady yet); nothing was delivered",
                   sid, type, NULL);
        } else {
            char m[160];
            snprintf(m, sizeof m, "payload of %zu bytes is over the limit of %zu; dropped", n,
                     r->lim.max_payload);
            count_drop(r, SRV_RELAY_DROP_TOO_LARGE, n);
            refuse(srv, via, RDV_EC_LIMIT_EXCEEDED, m, sid, type, "data");
        }
        return;
    }
    int me = c == s->side[0]->conn ? 0 : 1;
    srv_relay_peer *p = s->side[me];
    srv_conn *to = s->side[1 - me]->conn; /* NULL: on another instance */
    int64_t now = srv_mono_ms();
    uint64_t quota = session_quota(r, s);
    if (quota && s->bytes + n > quota) {
        count_drop(r, SRV_RELAY_DROP_QUOTA, n);
        session_end(r, srv, s, SRV_RELAY_END_QUOTA, NULL, NULL);
        return;
    }
    if (to && to->close_code) {
        count_drop(r, SRV_RELAY_DROP_CLOSING, n);
        return;
    }
    srv_conn *out = to ? srv_channel_out(srv, to) : NULL; /* its channel, if any */
    /* datagram semantics: never queue relay data past the threshold (a
     * remote receiver's instance checks its own queue) */
    if (out && (uint64_t)out->out_bytes + len > r->lim.queue_threshold) {
        count_drop(r, SRV_RELAY_DROP_CONGESTED, n);
        return;
    }
    if (!bucket_take(&p->tokens, &p->refill_ms, peer_rate(r, p), burst_of(r, peer_rate(r, p)), now,
                     n)) {
        count_drop(r, SRV_RELAY_DROP_RATE, n);
        return;
    }
    if (!bucket_take(&r->global_tokens, &r->global_ms, r->lim.global_rate,
                     burst_of(r, r->lim.global_rate), now, n)) {
        if (peer_rate(r, p))
            p->tokens += (int64_t)n; /* not sent: give the node its bytes back */
        count_drop(r, SRV_RELAY_DROP_GLOBAL, n);
        return;
    }
    s->bytes += n;
    s->last_ms = now;
    if (!to) {
        char sid[RDV_UUID_STRLEN + 1];
        rdv_uuid_from_bytes(id, sid);
        bus_send(srv, s->side[1 - me], binary ? 'b' : 'd', sid, c->node_id, raw, len);
        r->m.messages++;
        r->m.bytes += n;
        return;
    }
    if (srv_conn_send(srv, out, raw, len, binary) != 0) {
        count_drop(r, SRV_RELAY_DROP_CLOSING, n);
        return;
    }
    if (out != to)
        r->m.channel_out++;
    r->m.messages++;
    r->m.bytes += n;
}

bool srv_relay_is_data_text(const uint8_t *data, size_t len)
{
    static const char prefix[] = "{\"relayData\":";
    return len > sizeof prefix - 1 && !memcmp(data, prefix, sizeof prefix - 1);
}

int srv_relay_data_text(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_conn *via,
                        const rdv_msg *msg, const uint8_t *raw, size_t len)
{
    uint8_t id[RDV_UUID_BYTES];
    const char *sid = NULL;
    const char *data = rdv_msg_get_str(msg->body, "data");
    if (!body_sid(msg->body, id, &sid) || !data) {
        refuse(srv, reply_to(srv, c, via), RDV_EC_INVALID_FIELD, NULL, sid, "relayData",
               "sessionID");
        return 0;
    }
    /* the codec checked standard padded base64: 4 characters per 3 bytes,
     * minus one byte per '=' at the end */
    size_t chars = strlen(data);
    size_t n = chars / 4 * 3;
    if (chars >= 1 && data[chars - 1] == '=')
        n--;
    if (chars >= 2 && data[chars - 2] == '=')
        n--;
    relay_data(r, srv, c, via, id, n, raw, len, false);
    return 0;
}

int srv_relay_data_binary(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_conn *via,
                          const uint8_t *data, size_t len)
{
    if (len < RDV_RELAY_FRAME_HEADER || data[0] != RDV_RELAY_FRAME_KIND_DATA) {
        refuse(srv, reply_to(srv, c, via), RDV_EC_INVALID_FIELD,
               "binary frame is not relay data (kind 0x01, 16-byte sessionID, payload)", NULL,
               "relayData", NULL);
        return 0;
    }
    relay_data(r, srv, c, via, data + 1, len - RDV_RELAY_FRAME_HEADER, data, len, true);
    return 0;
}

/* ---- frames from other instances --------------------------------------- */

/* A relayOpen routed here for local node `to` from node `from` on `inst`:
 * the mirror session, then the original bytes to the recipient. */
static void bus_open(srv_relay *r, struct srv_server *srv, const uint8_t id[RDV_UUID_BYTES],
                     const char *sid, const uint8_t from[RDV_NODE_ID_BYTES], const char *inst,
                     const uint8_t to[RDV_NODE_ID_BYTES], const uint8_t *raw, size_t len)
{
    srv_relay_peer back;
    memset(&back, 0, sizeof back);
    memcpy(back.node_id, from, RDV_NODE_ID_BYTES);
    snprintf(back.inst, sizeof back.inst, "%.32s", inst);
    srv_conn *target = srv_presence_find(srv, to);
    const char *why = NULL;
    if (!target || target->close_code || target->state != SRV_CONN_AUTHED)
        why = "peer_disconnected";
    else if (session_get(r, id))
        why = "session_in_use";
    srv_relay_peer *tp = why ? NULL : peer_of(r, target, true);
    srv_relay_peer *op = tp ? remote_peer_new(from, inst) : NULL;
    srv_relay_session *s = op ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        free(op);
        if (!why)
            why = "internal";
        bus_send(srv, &back, 'c', sid, to, (const uint8_t *)why, strlen(why));
        return;
    }
    session_add(r, s, id, op, tp);
    if (srv_conn_send(srv, target, raw, len, false) == 0)
        srv->m.routed[RDV_MSG_RELAY_OPEN]++;
}

void srv_relay_bus_in(void *user, const uint8_t *payload, size_t len)
{
    struct srv_server *srv = user;
    srv_relay *r = &srv->relay;
    const uint8_t *nl = memchr(payload, '\n', len < 300 ? len : 300);
    if (!nl)
        return;
    char head[300];
    size_t hl = (size_t)(nl - payload);
    memcpy(head, payload, hl);
    head[hl] = '\0';
    char kind, sid[RDV_UUID_STRLEN + 1], fromhex[RDV_NODE_ID_HEXLEN + 1],
        inst[40], tohex[RDV_NODE_ID_HEXLEN + 1];
    uint8_t id[RDV_UUID_BYTES], from[RDV_NODE_ID_BYTES], to[RDV_NODE_ID_BYTES];
    if (sscanf(head, "R %c %36s %64s %39s %64s", &kind, sid, fromhex, inst, tohex) != 5 ||
        rdv_uuid_to_bytes(sid, id) != 0 || rdv_node_id_to_pk(fromhex, from) != 0 ||
        rdv_node_id_to_pk(tohex, to) != 0)
        return;
    const uint8_t *body = nl + 1;
    size_t blen = len - (size_t)(body - payload);
    if (kind == 'o') {
        bus_open(r, srv, id, sid, from, inst, to, body, blen);
        return;
    }
    srv_relay_session *s = session_get(r, id);
    if (!s)
        return; /* ended here already */
    int rs = !s->side[0]->conn ? 0 : !s->side[1]->conn ? 1 : -1; /* the remote side */
    if (rs < 0 || memcmp(s->side[rs]->node_id, from, RDV_NODE_ID_BYTES) != 0)
        return; /* not from this session's other node */
    srv_relay_peer *remote = s->side[rs];
    srv_conn *local = s->side[1 - rs]->conn;
    if (!remote->inst[0])
        snprintf(remote->inst, sizeof remote->inst, "%.32s", inst);
    switch (kind) {
    case 'r':
        if (rs != 1 || s->state != S_OPENING)
            return;
        s->state = S_OPEN;
        s->side[1]->count++;
        s->last_ms = srv_mono_ms();
        r->n_opening--;
        r->n_open++;
        r->m.opened++;
        if (srv_conn_send(srv, local, body, blen, false) == 0)
            srv->m.routed[RDV_MSG_RELAY_READY]++;
        return;
    case 'c': {
        char reason[128];
        size_t n = blen < sizeof reason - 1 ? blen : sizeof reason - 1;
        memcpy(reason, body, n);
        reason[n] = '\0';
        session_end(r, srv, s, SRV_RELAY_END_BY_PEER, remote, n ? reason : NULL);
        return;
    }
    case 'd':
    case 'b': {
        if (s->state != S_OPEN || local->close_code) {
            count_drop(r, SRV_RELAY_DROP_CLOSING, blen);
            return;
        }
        size_t n = kind == 'b' && blen >= RDV_RELAY_FRAME_HEADER ? blen - RDV_RELAY_FRAME_HEADER
                                                                  : blen;
        srv_conn *out = srv_channel_out(srv, local); /* its channel, if any */
        if ((uint64_t)out->out_bytes + blen > r->lim.queue_threshold) {
            count_drop(r, SRV_RELAY_DROP_CONGESTED, n);
            return;
        }
        s->bytes += n;
        s->last_ms = srv_mono_ms();
        if (srv_conn_send(srv, out, body, blen, kind == 'b') != 0) {
            count_drop(r, SRV_RELAY_DROP_CLOSING, n);
            return;
        }
        if (out != local)
            r->m.channel_out++;
        r->m.messages++;
        r->m.bytes += n;
        return;
    }
    default:
        return;
    }
}

/* ---- cleanup ----------------------------------------------------------- */

void srv_relay_conn_gone(srv_relay *r, struct srv_server *srv, srv_conn *c, srv_relay_end why)
{
    if (!r->peers.buckets)
        return;
    srv_relay_peer *p = peer_of(r, c, false);
    if (!p)
        return;
    /* re-read the head each time: a send can end other sessions of p */
    while (p->head)
        session_end(r, srv, p->head, why, p, NULL);
    srv_hmap_del(&r->peers, &p->node);
    free(p);
}

typedef struct sweep_ctx {
    srv_relay *r;
    int64_t now;
    uint8_t (*ids)[RDV_UUID_BYTES];
    size_t n, cap;
    bool oom;
} sweep_ctx;

static void sweep_collect(srv_hnode *n, void *user)
{
    sweep_ctx *x = user;
    const srv_relay_session *s = srv_container_of(n, srv_relay_session, node);
    int64_t limit = s->state == S_OPEN ? x->r->lim.idle_timeout_ms : x->r->lim.open_timeout_ms;
    if (limit <= 0 || x->now - s->last_ms < limit)
        return;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        void *nb = realloc(x->ids, cap * sizeof *x->ids);
        if (!nb) {
            x->oom = true; /* the rest waits for the next sweep */
            return;
        }
        x->ids = nb;
        x->cap = cap;
    }
    memcpy(x->ids[x->n++], s->id, RDV_UUID_BYTES);
}

void srv_relay_sweep(srv_relay *r, struct srv_server *srv, int64_t now)
{
    if (!r->sessions.count)
        return;
    sweep_ctx x = {r, now, NULL, 0, 0, false};
    srv_hmap_each(&r->sessions, sweep_collect, &x);
    for (size_t i = 0; i < x.n; i++) {
        srv_relay_session *s = session_get(r, x.ids[i]);
        if (s)
            session_end(r, srv, s, SRV_RELAY_END_IDLE, NULL, NULL);
    }
    if (x.oom)
        srv_error(srv->log, "out of memory sweeping idle relay sessions");
    free(x.ids);
}

int srv_relay_set_limits(srv_relay *r, srv_conn *c, int max_sessions, uint64_t rate,
                         uint64_t quota)
{
    srv_relay_peer *p = peer_of(r, c, true);
    if (!p)
        return -1;
    if (!p->own_limits || p->rate != rate)
        p->tokens = burst_of(r, rate);
    p->own_limits = true;
    p->max_sessions = max_sessions;
    p->rate = rate;
    p->quota = quota;
    return 0;
}

void srv_relay_conn_usage(srv_relay *r, srv_conn *c, int *sessions, uint64_t *bytes)
{
    *sessions = 0;
    *bytes = 0;
    srv_relay_peer *p = r->peers.buckets ? peer_of(r, c, false) : NULL;
    if (!p)
        return;
    for (srv_relay_session *s = p->head; s;) {
        int me = s->side[0] == p ? 0 : 1;
        (*sessions)++;
        *bytes += s->bytes;
        s = s->next[me];
    }
}
