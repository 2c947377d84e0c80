/* route.c - dispatcher and signaling routes (see route.h).
 *
 * The route table maps each message type to {may a node send it, is it
 * accepted before welcome, handler}. Signaling for a node not connected
 * here goes to offline.c (another instance, or the queue). The relay types
 * go to relay.c, after the checks of section 7.1 for relayOpen /
 * relayReady.
 */
#include "rendezvous/route.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/auth.h"
#include "schema/ids.h"
#include "rendezvous/conn_limits.h"
#include "rendezvous/log.h"
#include "rendezvous/offline.h"
#include "rendezvous/policy.h"
#include "rendezvous/presence.h"
#include "rendezvous/relay.h"
#include "rendezvous/relay_channel.h"
#include "rendezvous/replay.h"
#include "schema/scan.h"
#include "rendezvous/vpool.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

/* A handler of a parsed message; a raw one also gets the message's exact
 * bytes (what signaling and the relay forward unchanged). */
typedef int (*route_fn)(srv_server *srv, srv_conn *c, const rdv_msg *msg);
typedef int (*route_raw_fn)(srv_server *srv, srv_conn *c, const rdv_msg *msg,
                            const uint8_t *raw, size_t len);

typedef struct route_entry {
    route_fn fn;          /* one of fn / raw_fn; neither: refused */
    route_raw_fn raw_fn;
    bool from_node;       /* a node may send it (N->S or N->N) */
    bool before_auth;     /* accepted before welcome */
} route_entry;

static int h_signal(srv_server *srv, srv_conn *c, const rdv_msg *msg, const uint8_t *raw,
                    size_t len);
static int h_relay_signed(srv_server *srv, srv_conn *c, const rdv_msg *msg, const uint8_t *raw,
                          size_t len);
static int h_relay_data(srv_server *srv, srv_conn *c, const rdv_msg *msg, const uint8_t *raw,
                        size_t len);
static int h_relay_close(srv_server *srv, srv_conn *c, const rdv_msg *msg);
static int h_ping(srv_server *srv, srv_conn *c, const rdv_msg *msg);
static int h_pong(srv_server *srv, srv_conn *c, const rdv_msg *msg);

static const route_entry routes[RDV_MSG__COUNT] = {
    [RDV_MSG_HELLO] = {.fn = srv_auth_hello, .from_node = true, .before_auth = true},
    [RDV_MSG_OFFER] = {.raw_fn = h_signal, .from_node = true},
    [RDV_MSG_ANSWER] = {.raw_fn = h_signal, .from_node = true},
    [RDV_MSG_ICE_CANDIDATE] = {.raw_fn = h_signal, .from_node = true},
    /* the relay (relay.c) */
    [RDV_MSG_RELAY_OPEN] = {.raw_fn = h_relay_signed, .from_node = true},
    [RDV_MSG_RELAY_READY] = {.raw_fn = h_relay_signed, .from_node = true},
    [RDV_MSG_RELAY_DATA] = {.raw_fn = h_relay_data, .from_node = true},
    [RDV_MSG_RELAY_CLOSE] = {.fn = h_relay_close, .from_node = true},
    [RDV_MSG_LOOKUP] = {.fn = srv_presence_lookup, .from_node = true},
    [RDV_MSG_WATCH] = {.fn = srv_presence_watch, .from_node = true},
    [RDV_MSG_UNWATCH] = {.fn = srv_presence_unwatch, .from_node = true},
    [RDV_MSG_PING] = {.fn = h_ping, .from_node = true, .before_auth = true},
    [RDV_MSG_PONG] = {.fn = h_pong, .from_node = true, .before_auth = true},
};

/* The sessionID or requestID of body, for `ref` (NULL when absent). */
static const char *ref_of(const json_t *body)
{
    const char *r = rdv_msg_get_str(body, "sessionID");
    if (!r)
        r = rdv_msg_get_str(body, "requestID");
    return r && strlen(r) <= RDV_MAX_REQUEST_ID ? r : NULL;
}

/* Answers a message whose type the route table refuses in c's state.
 * Returns true when it did (the message is not handled further). */
static bool refuse_type(srv_server *srv, srv_conn *c, rdv_msg_type type, const char *ref)
{
    const route_entry *e = &routes[type];
    const char *name = rdv_msg_type_name(type);
    char m[160];
    if (!e->from_node) {
        snprintf(m, sizeof m, "%s is sent by the server, never by a node", name);
        (void)srv_conn_send_error(srv, c, RDV_EC_UNSUPPORTED_TYPE, m, ref, name, NULL);
        return true;
    }
    if (c->state != SRV_CONN_AUTHED && !e->before_auth) {
        snprintf(m, sizeof m, "%s before welcome; send hello first and wait for welcome", name);
        (void)srv_conn_send_error(srv, c, RDV_EC_NOT_AUTHENTICATED, m, ref, name, NULL);
        return true;
    }
    if (!e->fn && !e->raw_fn) {
        snprintf(m, sizeof m, "%s is not supported by this server version", name);
        (void)srv_conn_send_error(srv, c, RDV_EC_UNSUPPORTED_TYPE, m, ref, name, NULL);
        return true;
    }
    return false;
}

/* Answers a message the codec refused. */
static int parse_failed(srv_server *srv, srv_conn *c, const rdv_msg_error *err)
{
    rdv_ec code = err->code;
    if (code == RDV_EC_UNSUPPORTED_TYPE) {
        char m[200];
        snprintf(m, sizeof m, "unknown message type '%.64s' (protocol v1)", err->field);
        (void)srv_conn_send_error(srv, c, code, m, NULL, err->field, NULL);
        return 0;
    }
    if (code == RDV_EC_MISSING_FIELD || code == RDV_EC_INVALID_FIELD) {
        rdv_msg_type t = err->type;
        const char *ref = err->ref[0] ? err->ref : NULL;
        if (t != RDV_MSG_UNKNOWN && refuse_type(srv, c, t, ref))
            return 0;
        if (t == RDV_MSG_HELLO && c->state == SRV_CONN_PENDING) {
            srv_auth_fail(srv, c, code, err->detail, err->field);
            return 0;
        }
        (void)srv_conn_send_error(srv, c, code, err->detail, ref,
                                  t != RDV_MSG_UNKNOWN ? rdv_msg_type_name(t) : NULL,
                                  err->field);
        return 0;
    }
    (void)srv_conn_send_error(srv, c, code ? code : RDV_EC_INTERNAL, err->detail, NULL, NULL,
                              err->field);
    return 0;
}

/* The fast path for offer / answer / iceCandidate (schema/scan.h): a
 * canonical, valid message from an authenticated node whose checks of
 * section 7.1 all pass is routed from the received bytes, with no JSON
 * tree, no allocation and the signature verified over those bytes (on a
 * worker of vpool.h when there are any: the message is then routed by
 * srv_route_verified, in order). Returns false, having done nothing, for
 * anything else: the caller then takes the parsing path, which answers
 * errors precisely. */
static bool signal_fast(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len)
{
    rdv_scan s;
    if (c->state != SRV_CONN_AUTHED || !rdv_scan_signal(data, len, &s))
        return false;
    if (memcmp(s.from_id, c->node_id, RDV_NODE_ID_BYTES) != 0 ||
        !rdv_ts_fresh(s.timestamp, rdv_now_ms(), RDV_INGRESS_SKEW_MS, RDV_INGRESS_SKEW_MS))
        return false;
    if (srv->cfg->verify_signatures) {
        if (srv_vpool_defer(srv, c, data, len, &s))
            return true;
        if (rdv_scan_verify(data, &s) != 0)
            return false;
    }
    if (srv_vpool_hold(srv, c, data, len, false))
        return true; /* verified, but behind messages still at a worker */
    return srv_route_verified(srv, c, data, len, &s, true) == 0;
}

/* The parsing path: every text message the fast path declines. */
static int route_parsed(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len)
{
    rdv_msg msg;
    rdv_msg_error err;
    memset(&err, 0, sizeof err);
    /* compact relayData skipped the message rate limit (conn.c); anything
     * but well-formed relay data from a node that may send it pays here */
    bool relay_fast = srv_relay_is_data_text(data, len);
    if (relay_fast && c->state != SRV_CONN_AUTHED && !srv_limits_admit(srv, c))
        return 0;
    if (rdv_msg_parse(data, len, srv->cfg->max_message_bytes, &msg, &err) != 0) {
        if (relay_fast && c->state == SRV_CONN_AUTHED && !srv_limits_admit(srv, c))
            return 0;
        return parse_failed(srv, c, &err);
    }
    int rc = 0;
    if ((unsigned)msg.type < RDV_MSG__COUNT &&
        (!c->channel || srv_channel_accepts(srv, c, msg.type, ref_of(msg.body))) &&
        !refuse_type(srv, c, msg.type, ref_of(msg.body)))
        rc = routes[msg.type].raw_fn ? routes[msg.type].raw_fn(srv, c, &msg, data, len)
                                     : routes[msg.type].fn(srv, c, &msg);
    rdv_msg_free(&msg);
    return rc;
}

int srv_route_verified(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len,
                       const rdv_scan *s, bool valid)
{
    uint64_t key = srv_replay_key(s->sig_bin);
    int64_t now = rdv_now_ms();
    /* a bad signature or a replay: the parsing path answers it (h_signal) */
    if (!valid || srv_replay_seen(c->replay, key, now))
        return route_parsed(srv, c, data, len);
    uint32_t cap = (uint32_t)srv->cfg->replay_cache;
    srv_conn *target = srv_presence_find(srv, s->to_id);
    char pwhy[256];
    if (s->type == RDV_MSG_OFFER && !srv_policy_signal(srv, c, target, pwhy, sizeof pwhy))
        return route_parsed(srv, c, data, len); /* forbidden: answered there */
    if (target && !target->close_code) {
        if (srv_conn_send(srv, target, data, len, false) == 0) {
            srv->m.routed[s->type]++;
            srv_replay_add(&c->replay, key, s->timestamp, now, cap);
        }
        return 0;
    }
    /* not connected here: another instance, or the offline queue */
    srv_replay_add(&c->replay, key, s->timestamp, now, cap);
    char from[RDV_NODE_ID_HEXLEN + 1], to[RDV_NODE_ID_HEXLEN + 1], sid[RDV_UUID_STRLEN + 1];
    memcpy(from, s->from, RDV_NODE_ID_HEXLEN);
    from[RDV_NODE_ID_HEXLEN] = '\0';
    memcpy(to, s->to, RDV_NODE_ID_HEXLEN);
    to[RDV_NODE_ID_HEXLEN] = '\0';
    memcpy(sid, s->sid, RDV_UUID_STRLEN);
    sid[RDV_UUID_STRLEN] = '\0';
    srv_offline_route(srv, c, s->type, from, to, sid, data, len);
    return 0;
}

int srv_route_message(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len)
{
    if (!c->channel && signal_fast(srv, c, data, len))
        return 0;
    if (srv_vpool_hold(srv, c, data, len, false))
        return 0; /* behind messages still at a worker */
    return route_parsed(srv, c, data, len);
}

/* Relay data that arrived on channel ch (binary when msg is NULL, else
 * the parsed text form): handled as sent on its main connection, errors
 * answered on ch. */
static int relay_via_channel(srv_server *srv, srv_conn *ch, const uint8_t *data, size_t len,
                             const rdv_msg *msg)
{
    srv_conn *m = srv_channel_main(srv, ch);
    srv->relay.m.channel_in++;
    if (!m) {
        /* the main connection is closing: so is ch (relay_channel.h) */
        if (srv_limits_admit(srv, ch))
            (void)srv_conn_send_error(srv, ch, RDV_EC_NOT_AUTHENTICATED,
                                      "this relay channel's main connection is gone", NULL,
                                      "relayData", NULL);
        return 0;
    }
    if (msg)
        return srv_relay_data_text(&srv->relay, srv, m, ch, msg, data, len);
    return srv_relay_data_binary(&srv->relay, srv, m, ch, data, len);
}

static int route_binary_now(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len)
{
    if (c->state != SRV_CONN_AUTHED) {
        if (srv_limits_admit(srv, c))
            (void)srv_conn_send_error(srv, c, RDV_EC_NOT_AUTHENTICATED,
                                      "binary frame before welcome; send hello first", NULL,
                                      "relayData", NULL);
        return 0;
    }
    if (c->channel)
        return relay_via_channel(srv, c, data, len, NULL);
    return srv_relay_data_binary(&srv->relay, srv, c, c, data, len);
}

int srv_route_binary(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len)
{
    if (srv_vpool_hold(srv, c, data, len, true))
        return 0;
    return route_binary_now(srv, c, data, len);
}

int srv_route_held(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len, bool binary)
{
    return binary ? route_binary_now(srv, c, data, len) : route_parsed(srv, c, data, len);
}

static int h_ping(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    const char *id = rdv_msg_get_str(msg->body, "id");
    json_t *b = json_pack("{s:I}", "serverTime", (json_int_t)rdv_now_ms());
    if (b && id)
        (void)json_object_set_new(b, "id", json_string(id));
    if (!b || srv_conn_send_json(srv, c, RDV_MSG_PONG, b) != 0)
        srv_debug(srv->log, "pong not queued");
    srv_channel_ping_seen(srv, c); /* after the pong: it marks the switch */
    return 0;
}

/* A node's pong needs nothing: liveness is the WebSocket's own ping. */
static int h_pong(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    (void)srv;
    (void)c;
    (void)msg;
    return 0;
}

/* Checks of section 7.1 steps 2-3. Returns RDV_EC_NONE or the code, with
 * *field and *why set. */
static rdv_ec check_signed(srv_server *srv, const srv_conn *c, const rdv_msg *msg,
                           const char **field, const char **why)
{
    const json_t *body = msg->body;
    const char *from = rdv_msg_get_str(body, "fromNodeID");
    const char *to = rdv_msg_get_str(body, "toNodeID");
    char me[RDV_NODE_ID_HEXLEN + 1];
    int64_t ts = 0;
    srv_conn_node_hex(c, me);
    if (!from || strcmp(from, me) != 0) {
        *field = "fromNodeID";
        *why = "fromNodeID is not the node authenticated on this connection";
        return RDV_EC_SENDER_MISMATCH;
    }
    if (!to || !strcmp(to, from)) {
        *field = "toNodeID";
        *why = "toNodeID must name another node";
        return RDV_EC_INVALID_FIELD;
    }
    if (!rdv_msg_get_int(body, "timestamp", &ts) ||
        !rdv_ts_fresh(ts, rdv_now_ms(), RDV_INGRESS_SKEW_MS, RDV_INGRESS_SKEW_MS)) {
        *field = "timestamp";
        *why = "timestamp is more than 30 s from the server clock; sync with "
               "welcome.serverTime and sign just before sending";
        return RDV_EC_STALE_TIMESTAMP;
    }
    if (srv->cfg->verify_signatures) {
        int rc = rdv_sig_verify_from(msg->type, body, "fromNodeID");
        if (rc != 0) {
            *field = "signature";
            *why = "signature does not verify with fromNodeID's key over this type and body";
            return rc == -(int)RDV_EC_BAD_SIGNATURE ? RDV_EC_BAD_SIGNATURE : (rdv_ec)(-rc);
        }
    }
    return RDV_EC_NONE;
}

/* Section 4, "Replay": true (and c answered) when msg, which passed
 * check_signed(), is an exact copy of a signed message c sent and the
 * server routed, whose timestamp is still in the ingress window. */
static bool refuse_replay(srv_server *srv, srv_conn *c, const rdv_msg *msg, const char *sid)
{
    uint64_t key;
    if (!srv_replay_key_hex(rdv_msg_get_str(msg->body, "signature"), &key) ||
        !srv_replay_seen(c->replay, key, rdv_now_ms()))
        return false;
    (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD,
                              "an exact copy of a message this connection already sent (a "
                              "replay) is not routed; to send again, sign a new message",
                              sid, rdv_msg_type_name(msg->type), "signature");
    return true;
}

/* Remembers routed msg for refuse_replay(). */
static void remember_routed(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    int64_t ts = 0;
    uint64_t key;
    if (!srv_replay_key_hex(rdv_msg_get_str(msg->body, "signature"), &key))
        return;
    (void)rdv_msg_get_int(msg->body, "timestamp", &ts);
    srv_replay_add(&c->replay, key, ts, rdv_now_ms(), (uint32_t)srv->cfg->replay_cache);
}

/* offer, answer, iceCandidate: forward to the recipient's connection here,
 * else to offline.c. */
static int h_signal(srv_server *srv, srv_conn *c, const rdv_msg *msg, const uint8_t *raw,
                    size_t len)
{
    const char *name = rdv_msg_type_name(msg->type);
    const char *sid = rdv_msg_get_str(msg->body, "sessionID");
    const char *field = NULL, *why = NULL;
    rdv_ec ec = check_signed(srv, c, msg, &field, &why);
    if (ec != RDV_EC_NONE) {
        (void)srv_conn_send_error(srv, c, ec, why, sid, name, field);
        return 0;
    }
    if (refuse_replay(srv, c, msg, sid))
        return 0;
    const char *from = rdv_msg_get_str(msg->body, "fromNodeID");
    const char *to = rdv_msg_get_str(msg->body, "toNodeID");
    uint8_t to_id[RDV_NODE_ID_BYTES];
    if (rdv_node_id_to_pk(to, to_id) != 0) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INVALID_FIELD, "toNodeID is not a node ID",
                                  sid, name, "toNodeID");
        return 0;
    }
    srv_conn *target = srv_presence_find(srv, to_id);
    char pwhy[256];
    if (msg->type == RDV_MSG_OFFER && !srv_policy_signal(srv, c, target, pwhy, sizeof pwhy)) {
        (void)srv_conn_send_error(srv, c, RDV_EC_FORBIDDEN, pwhy, sid, name, NULL);
        return 0;
    }
    if (target && !target->close_code) {
        if (srv_conn_send(srv, target, raw, len, false) == 0) {
            srv->m.routed[msg->type]++;
            remember_routed(srv, c, msg);
        }
        return 0;
    }
    /* not connected here: another instance, or the offline queue */
    remember_routed(srv, c, msg);
    srv_offline_route(srv, c, msg->type, from, to, sid, raw, len);
    return 0;
}

/* The operator's policy (policy.h) for relayOpen / relayReady from c:
 * c may use the relay (its limits are set for relay.c), and for
 * relayOpen the recipient, when connected here, may too and the signal
 * rules let c reach it. Otherwise c gets `forbidden` and false. */
static bool relay_allowed(srv_server *srv, srv_conn *c, const rdv_msg *msg, const char *sid)
{
    if (!srv->policy)
        return true;
    const char *name = rdv_msg_type_name(msg->type);
    char why[256];
    srv_policy_limits lim;
    if (!srv_policy_relay(srv, c, &lim, why, sizeof why)) {
        (void)srv_conn_send_error(srv, c, RDV_EC_FORBIDDEN, why, sid, name, NULL);
        return false;
    }
    if (srv_relay_set_limits(&srv->relay, c, lim.max_sessions, lim.rate, lim.quota) != 0) {
        (void)srv_conn_send_error(srv, c, RDV_EC_INTERNAL, NULL, sid, name, NULL);
        return false;
    }
    if (msg->type != RDV_MSG_RELAY_OPEN)
        return true;
    uint8_t to_id[RDV_NODE_ID_BYTES];
    const char *to = rdv_msg_get_str(msg->body, "toNodeID");
    srv_conn *target = to && rdv_node_id_to_pk(to, to_id) == 0 ? srv_presence_find(srv, to_id)
                                                               : NULL;
    if (!srv_policy_signal(srv, c, target, why, sizeof why))
        goto refuse;
    if (target && !srv_policy_relay(srv, target, &lim, why, sizeof why)) {
        snprintf(why, sizeof why, "the operator's policy does not let that peer use the relay");
        goto refuse;
    }
    return true;
refuse:
    (void)srv_conn_send_error(srv, c, RDV_EC_FORBIDDEN, why, sid, name, NULL);
    return false;
}

/* relayOpen, relayReady: the checks of section 7.1, then relay.c. */
static int h_relay_signed(srv_server *srv, srv_conn *c, const rdv_msg *msg, const uint8_t *raw,
                          size_t len)
{
    const char *sid = rdv_msg_get_str(msg->body, "sessionID");
    const char *field = NULL, *why = NULL;
    rdv_ec ec = check_signed(srv, c, msg, &field, &why);
    if (ec != RDV_EC_NONE) {
        (void)srv_conn_send_error(srv, c, ec, why, sid, rdv_msg_type_name(msg->type), field);
        return 0;
    }
    if (!relay_allowed(srv, c, msg, sid))
        return 0;
    if (msg->type == RDV_MSG_RELAY_OPEN)
        return srv_relay_open(&srv->relay, srv, c, msg, raw, len);
    return srv_relay_ready(&srv->relay, srv, c, msg, raw, len);
}

static int h_relay_data(srv_server *srv, srv_conn *c, const rdv_msg *msg, const uint8_t *raw,
                        size_t len)
{
    if (c->channel)
        return relay_via_channel(srv, c, raw, len, msg);
    return srv_relay_data_text(&srv->relay, srv, c, c, msg, raw, len);
}

static int h_relay_close(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    return srv_relay_close_msg(&srv->relay, srv, c, msg);
}
