/* proto.c - the node's side of wire protocol v1 (schema/PROTOCOL.md): what
 * the client does with each received message, and the hello / watch /
 * ping it sends on its own.
 *
 *   challenge  -> offset := serverTime - now; send signed hello (6.2)
 *   welcome    -> check nodeID, keep observedIP/Port, serverTime offset and
 *                 limits; AUTHENTICATED; re-send the watch set (8)
 *   offer, answer, iceCandidate
 *              -> verify.c (recipient, signature, freshness, replay), then
 *                 cb_offer / cb_answer / cb_candidate; rejected ones go to
 *                 cb_error only
 *   presence, peerOnline, peerOffline, queued -> their callbacks
 *   relayOpen, relayReady -> verified like offers, then relay.c
 *   relayClose, relayData (text form) -> relay.c
 *   error      -> cb_error (mapped to RDV_ERR_*); `replaced` is final; an
 *                 error about a relay session may end it (relay.c)
 *   ping       -> pong with the same id (11)
 * Every message is parsed and validated by the codec (schema/message.h)
 * first; nothing here re-implements parsing, canonicalisation or signing.
 * All functions run on the service thread with no lock held while calling
 * the application.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "client/log.h"
#include "client/direct.h"
#include "client/proto.h"
#include "schema/ids.h"
#include "schema/sign.h"

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int64_t get_int(const json_t *o, const char *key, int64_t dflt)
{
    int64_t v;
    return rdv_msg_get_int(o, key, &v) ? v : dflt;
}

void rdv__proto_on_established(rdv_client *c)
{
    c->got_challenge = false;
    c->rx_len = 0;
    c->rx_skip = false;
}

void rdv__proto_send_ping(rdv_client *c)
{
    char id[RDV_REQUEST_ID_LEN + 1];
    pthread_mutex_lock(&c->lock);
    unsigned n = ++c->req_counter;
    pthread_mutex_unlock(&c->lock);
    snprintf(id, sizeof(id), "k%u", n);
    json_t *body = json_pack("{s:s}", "id", id);
    (void)rdv__send_body(c, RDV_MSG_PING, body, id, false);
}

void rdv__proto_send_watches(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->nwatch;
    char(*copy)[RDV_NODE_ID_LEN + 1] = n ? malloc(n * sizeof(*copy)) : NULL;
    if (copy)
        memcpy(copy, c->watches, n * sizeof(*copy));
    pthread_mutex_unlock(&c->lock);
    if (n && !copy) {
        rdv__report(c, RDV_ERR_NOMEM, NULL, "cannot re-send watches", NULL,
                    "watch", NULL, NULL);
        return;
    }
    for (size_t off = 0; off < n; off += RDV_MAX_IDS_PER_CALL) {
        size_t k = n - off < RDV_MAX_IDS_PER_CALL ? n - off : RDV_MAX_IDS_PER_CALL;
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < k; i++)
            json_array_append_new(arr, json_string(copy[off + i]));
        char rid[RDV_REQUEST_ID_LEN + 1];
        pthread_mutex_lock(&c->lock);
        unsigned r = ++c->req_counter;
        pthread_mutex_unlock(&c->lock);
        snprintf(rid, sizeof(rid), "w%u", r);
        json_t *body = arr ? json_pack("{s:o, s:s}", "nodeIDs", arr, "requestID", rid)
                           : NULL;
        int rc = rdv__send_body(c, RDV_MSG_WATCH, body, rid, false);
        if (rc != 0)
            rdv__report(c, rc, NULL, "could not re-send watches after reconnecting",
                        rid, "watch", NULL, NULL);
    }
    free(copy);
}

/* The body of our hello answering a challenge with nonce and server
 * (NULL on OOM): the same on the main connection and the relay channel. */
static json_t *hello_body(rdv_client *c, const char *nonce, const char *server)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "nodeID", c->node_id,
                             "nonce", nonce, "server", server, "natType",
                             rdv_nat_type_name(rdv__nat_effective(c)));
    if (body && c->cfg.software[0])
        json_object_set_new(body, "software", json_string(c->cfg.software));
    if (body && c->cert) /* PROTOCOL.md 6.1: covered by the hello signature */
        json_object_set_new(body, "cert", json_deep_copy(c->cert));
    return body;
}

char *rdv__proto_hello_text(rdv_client *c, const json_t *challenge, size_t *len)
{
    const char *server = rdv_msg_get_str(challenge, "server");
    const char *nonce = rdv_msg_get_str(challenge, "nonce");
    int rc;
    if (!server || !nonce)
        return NULL;
    return rdv__build_text(c, RDV_MSG_HELLO, hello_body(c, nonce, server), len, &rc);
}

/* challenge: remember the server's clock and name, answer with hello. */
static int on_challenge(rdv_client *c, const json_t *b)
{
    if (c->phase != RDV__PH_AUTH || c->got_challenge) {
        c->end_reason = RDV_ERR_PROTOCOL;
        rdv__report(c, RDV_ERR_PROTOCOL, NULL, "unexpected second challenge",
                    NULL, "challenge", NULL, NULL);
        return -1;
    }
    c->got_challenge = true;
    const char *server = rdv_msg_get_str(b, "server");
    const char *nonce = rdv_msg_get_str(b, "nonce");
    int64_t st = get_int(b, "serverTime", 0);
    pthread_mutex_lock(&c->lock);
    c->time_offset_ms = st - rdv_now_ms();
    copy_str(c->server_name, sizeof(c->server_name), server);
    pthread_mutex_unlock(&c->lock);

    json_t *body = hello_body(c, nonce, server);
    int rc = rdv__send_body(c, RDV_MSG_HELLO, body, NULL, true);
    if (rc != 0) {
        c->end_reason = rc;
        rdv__report(c, rc, NULL, "could not send hello", NULL, "hello", NULL, NULL);
        return -1;
    }
    return 0;
}

static void read_limits(const json_t *l, rdv_limits *out)
{
    out->max_message_bytes = get_int(l, "maxMessageBytes", RDV_MAX_MESSAGE_BYTES);
    out->messages_per_second = get_int(l, "messagesPerSecond", 0);
    out->message_burst = get_int(l, "messageBurst", 0);
    out->offline_ttl_ms = get_int(l, "offlineTtlMs", 0);
    out->offline_queue_max = get_int(l, "offlineQueueMax", 0);
    out->max_watches = get_int(l, "maxWatches", 0);
    out->ping_interval_ms = get_int(l, "pingIntervalMs", 0);
    out->idle_timeout_ms = get_int(l, "idleTimeoutMs", 0);
    out->fresh_past_ms = get_int(l, "freshPastMs", RDV_FRESH_PAST_MS);
    out->fresh_future_ms = get_int(l, "freshFutureMs", RDV_FRESH_FUTURE_MS);
    /* Optional members: PROTOCOL.md 6 defaults when absent (0 sessions
     * announced = the server's relay is disabled). */
    out->max_relay_sessions = get_int(l, "maxRelaySessions", 8);
    out->max_relay_payload = get_int(l, "maxRelayPayload", RDV_RELAY_DEFAULT_PAYLOAD);
    out->relay_bytes_per_second = get_int(l, "relayBytesPerSecond", 0);
    out->relay_global_bytes_per_second = get_int(l, "relayGlobalBytesPerSecond", 0);
    out->relay_session_quota = get_int(l, "relaySessionQuota", 0);
    out->relay_idle_timeout_ms = get_int(l, "relayIdleTimeoutMs", 60000);
}

static int on_welcome(rdv_client *c, const json_t *b)
{
    const char *id = rdv_msg_get_str(b, "nodeID");
    if (c->phase != RDV__PH_AUTH || !c->got_challenge || !id ||
        strcmp(id, c->node_id) != 0) {
        c->end_reason = RDV_ERR_AUTH;
        rdv__report(c, RDV_ERR_AUTH, NULL,
                    "welcome does not match our hello (wrong nodeID or no challenge)",
                    NULL, "welcome", "nodeID", NULL);
        return -1;
    }
    rdv_limits lim;
    read_limits(json_object_get(b, "limits"), &lim);
    pthread_mutex_lock(&c->lock);
    copy_str(c->observed_ip, sizeof(c->observed_ip), rdv_msg_get_str(b, "observedIP"));
    c->observed_port = (uint16_t)get_int(b, "observedPort", 0);
    c->time_offset_ms = get_int(b, "serverTime", rdv_now_ms()) - rdv_now_ms();
    c->limits = lim;
    /* PROTOCOL.md 9.5: relay data may go on a relay channel (relay_channel.h) */
    c->chan.offered = get_int(json_object_get(b, "limits"), "relayChannel", 0) == 1;
    c->connects++;
    c->attempt = 0;
    c->refusals = 0;
    c->last_error = 0;
    c->last_error_text[0] = '\0';
    pthread_mutex_unlock(&c->lock);
    c->fresh.past_ms = lim.fresh_past_ms;
    c->fresh.future_ms = lim.fresh_future_ms;
    c->phase = RDV__PH_READY;
    rdv__log(RDV_LOG_INFO, "%.16s: authenticated to %s", c->node_id, c->url_text[c->url_idx]);
    rdv__set_state(c, RDV_STATE_AUTHENTICATED);
    rdv__proto_send_watches(c);
    return 0;
}

static void read_conn_info(const json_t *o, rdv_connection_info *ci)
{
    copy_str(ci->public_ip, sizeof(ci->public_ip), rdv_msg_get_str(o, "publicIP"));
    ci->public_port = (uint16_t)get_int(o, "publicPort", 0);
    copy_str(ci->local_ip, sizeof(ci->local_ip), rdv_msg_get_str(o, "localIP"));
    ci->local_port = (uint16_t)get_int(o, "localPort", 0);
    ci->nat_type = rdv_nat_type_from_name(rdv_msg_get_str(o, "natType"));
    copy_str(ci->wg_public_key, sizeof(ci->wg_public_key),
             rdv_msg_get_str(o, "wgPublicKey"));
}

/* offer / answer / iceCandidate / relayOpen / relayReady: verify, then
 * dispatch. */
static void on_routed(rdv_client *c, const rdv_msg *m)
{
    const char *tname = rdv_msg_type_name(m->type);
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    int rc = rdv__verify_routed(m, c->node_id, rdv__server_now(c), &c->fresh,
                                &c->replay);
    if (rc != 0) {
        char text[200];
        snprintf(text, sizeof(text), "%s from %.16s... rejected: %s", tname,
                 from ? from : "?", rdv_strerror(rc));
        rdv__report(c, rc, NULL, text, sid, tname, NULL, from);
        return;
    }
    /* Signaling of rdv_session_connect() sessions stays inside the library. */
    if ((m->type == RDV_MSG_OFFER || m->type == RDV_MSG_ANSWER ||
         m->type == RDV_MSG_ICE_CANDIDATE) && rdv__direct_on_routed(c, m))
        return;
    char *json = json_dumps(m->body, JSON_COMPACT);
    if (m->type == RDV_MSG_OFFER || m->type == RDV_MSG_ANSWER) {
        rdv_session_msg s;
        memset(&s, 0, sizeof(s));
        copy_str(s.from_node_id, sizeof(s.from_node_id), from);
        copy_str(s.to_node_id, sizeof(s.to_node_id), rdv_msg_get_str(m->body, "toNodeID"));
        copy_str(s.session_id, sizeof(s.session_id), sid);
        s.timestamp = get_int(m->body, "timestamp", 0);
        read_conn_info(json_object_get(m->body, "connectionInfo"), &s.info);
        copy_str(s.e2e_key, sizeof(s.e2e_key), rdv_msg_get_str(m->body, "e2eKey"));
        s.json = json ? json : "{}";
        rdv_cb_session_msg cb = m->type == RDV_MSG_OFFER ? c->cfg.cb_offer
                                                         : c->cfg.cb_answer;
        if (cb)
            cb(c, &s, c->cfg.user_ptr);
    } else if (m->type == RDV_MSG_ICE_CANDIDATE) {
        rdv_candidate_msg s;
        memset(&s, 0, sizeof(s));
        copy_str(s.from_node_id, sizeof(s.from_node_id), from);
        copy_str(s.to_node_id, sizeof(s.to_node_id), rdv_msg_get_str(m->body, "toNodeID"));
        copy_str(s.session_id, sizeof(s.session_id), sid);
        s.timestamp = get_int(m->body, "timestamp", 0);
        const json_t *cj = json_object_get(m->body, "candidate");
        copy_str(s.candidate.ip, sizeof(s.candidate.ip), rdv_msg_get_str(cj, "ip"));
        s.candidate.port = (uint16_t)get_int(cj, "port", 0);
        copy_str(s.candidate.type, sizeof(s.candidate.type), rdv_msg_get_str(cj, "type"));
        s.candidate.priority = (uint32_t)get_int(cj, "priority", 0);
        copy_str(s.candidate.foundation, sizeof(s.candidate.foundation),
                 rdv_msg_get_str(cj, "foundation"));
        copy_str(s.candidate.related_ip, sizeof(s.candidate.related_ip),
                 rdv_msg_get_str(cj, "relatedIP"));
        s.candidate.related_port = (uint16_t)get_int(cj, "relatedPort", 0);
        s.json = json ? json : "{}";
        if (c->cfg.cb_candidate)
            c->cfg.cb_candidate(c, &s, c->cfg.user_ptr);
    } else {
        rdv__relay_on_routed(c, m); /* relayOpen / relayReady */
    }
    free(json);
}

static void read_peer(const json_t *o, rdv_peer *p, int online)
{
    memset(p, 0, sizeof(*p));
    copy_str(p->node_id, sizeof(p->node_id), rdv_msg_get_str(o, "nodeID"));
    const json_t *on = json_object_get(o, "online");
    p->online = online >= 0 ? online : json_is_true(on);
    p->last_seen = get_int(o, "lastSeen", 0);
    p->nat_type = rdv_nat_type_from_name(rdv_msg_get_str(o, "natType"));
}

static void on_presence(rdv_client *c, const json_t *b)
{
    const json_t *peers = json_object_get(b, "peers");
    size_t n = json_array_size(peers);
    rdv_peer *arr = n ? calloc(n, sizeof(*arr)) : NULL;
    if (n && !arr) {
        rdv__report(c, RDV_ERR_NOMEM, NULL, NULL, NULL, "presence", NULL, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++)
        read_peer(json_array_get(peers, i), &arr[i], -1);
    if (c->cfg.cb_presence)
        c->cfg.cb_presence(c, rdv_msg_get_str(b, "requestID"), arr, n, c->cfg.user_ptr);
    free(arr);
}

/* Maps a server error code to an RDV_ERR_* value. */
static int map_server_code(rdv_ec ec)
{
    switch (ec) {
    case RDV_EC_PEER_OFFLINE: return RDV_ERR_PEER_OFFLINE;
    case RDV_EC_QUEUE_FULL: return RDV_ERR_PEER_QUEUE_FULL;
    case RDV_EC_RATE_LIMITED: return RDV_ERR_RATE_LIMITED;
    case RDV_EC_LIMIT_EXCEEDED: return RDV_ERR_LIMIT;
    case RDV_EC_TOO_LARGE: return RDV_ERR_TOO_LARGE;
    case RDV_EC_REPLACED: return RDV_ERR_REPLACED;
    case RDV_EC_AUTH_FAILED:
    case RDV_EC_AUTH_TIMEOUT:
    case RDV_EC_NOT_AUTHENTICATED: return RDV_ERR_AUTH;
    case RDV_EC_NOT_ADMITTED: return RDV_ERR_NOT_ADMITTED;
    case RDV_EC_REVOKED: return RDV_ERR_REVOKED;
    case RDV_EC_FORBIDDEN: return RDV_ERR_FORBIDDEN;
    default: return RDV_ERR_SERVER;
    }
}

static void on_error(rdv_client *c, const json_t *b)
{
    const char *code = rdv_msg_get_str(b, "code");
    rdv_ec ec = code ? rdv_ec_from_name(code, strlen(code)) : RDV_EC_NONE;
    int err = map_server_code(ec);
    if (ec == RDV_EC_REPLACED)
        c->final_failure = true;
    if (err == RDV_ERR_AUTH || err == RDV_ERR_REPLACED || ec == RDV_EC_SHUTTING_DOWN ||
        ec == RDV_EC_SLOW_CONSUMER)
        c->end_reason = err;
    if (err == RDV_ERR_NOT_ADMITTED || err == RDV_ERR_REVOKED) {
        /* the operator has to act: reconnect slowly (loop.c), say why */
        c->end_reason = err;
        c->refusals++;
        snprintf(c->refusal_text, sizeof c->refusal_text, "%.300s",
                 rdv_msg_get_str(b, "message") ? rdv_msg_get_str(b, "message") : "");
        c->end_detail = c->refusal_text;
    }
    /* An error about the relay leg of a session a direct path carries is
     * expected (the leg was closed while a message was in flight). */
    bool absorbed = rdv__relay_on_server_error(c, ec, rdv_msg_get_str(b, "ref"),
                                               rdv_msg_get_str(b, "type"),
                                               rdv_msg_get_str(b, "message"));
    if (!absorbed)
        rdv__report(c, err, code, rdv_msg_get_str(b, "message"), rdv_msg_get_str(b, "ref"),
                    rdv_msg_get_str(b, "type"), rdv_msg_get_str(b, "field"), NULL);
}

int rdv__proto_on_text(rdv_client *c, const char *text, size_t len)
{
    rdv_msg m;
    rdv_msg_error err;
    size_t max = RDV_MAX_MESSAGE_BYTES;
    pthread_mutex_lock(&c->lock);
    if (c->limits.max_message_bytes > (int64_t)max)
        max = (size_t)c->limits.max_message_bytes;
    pthread_mutex_unlock(&c->lock);
    if (rdv_msg_parse((const uint8_t *)text, len, max, &m, &err) != 0) {
        if (err.code == RDV_EC_UNSUPPORTED_TYPE)
            return 0; /* a newer server's type: ignore (forward compatible) */
        char msg[320];
        snprintf(msg, sizeof(msg), "malformed message from server: %.32s%s%.64s (%.160s)",
                 rdv_ec_name(err.code), err.field[0] ? " " : "", err.field,
                 err.detail);
        /* A routed message that fails validation is refused like a bad
         * signature would be: it never reaches the application. */
        rdv__report(c, RDV_ERR_PROTOCOL, NULL, msg, NULL, NULL,
                    err.field[0] ? err.field : NULL, NULL);
        return 0;
    }
    int rc = 0;
    if (c->phase != RDV__PH_READY && m.type != RDV_MSG_CHALLENGE &&
        m.type != RDV_MSG_WELCOME && m.type != RDV_MSG_ERROR &&
        m.type != RDV_MSG_PING && m.type != RDV_MSG_PONG) {
        rdv__report(c, RDV_ERR_PROTOCOL, NULL, "message before welcome ignored",
                    NULL, rdv_msg_type_name(m.type), NULL, NULL);
        rdv_msg_free(&m);
        return 0;
    }
    switch (m.type) {
    case RDV_MSG_CHALLENGE: rc = on_challenge(c, m.body); break;
    case RDV_MSG_WELCOME: rc = on_welcome(c, m.body); break;
    case RDV_MSG_OFFER:
    case RDV_MSG_ANSWER:
    case RDV_MSG_ICE_CANDIDATE:
    case RDV_MSG_RELAY_OPEN:
    case RDV_MSG_RELAY_READY: on_routed(c, &m); break;
    case RDV_MSG_PRESENCE: on_presence(c, m.body); break;
    case RDV_MSG_PEER_ONLINE:
    case RDV_MSG_PEER_OFFLINE: {
        rdv_peer p;
        int online = m.type == RDV_MSG_PEER_ONLINE;
        read_peer(m.body, &p, online);
        rdv_cb_peer cb = online ? c->cfg.cb_peer_online : c->cfg.cb_peer_offline;
        if (cb)
            cb(c, &p, c->cfg.user_ptr);
        break;
    }
    case RDV_MSG_QUEUED: {
        rdv_queued q;
        memset(&q, 0, sizeof(q));
        copy_str(q.session_id, sizeof(q.session_id), rdv_msg_get_str(m.body, "sessionID"));
        copy_str(q.to_node_id, sizeof(q.to_node_id), rdv_msg_get_str(m.body, "toNodeID"));
        copy_str(q.type, sizeof(q.type), rdv_msg_get_str(m.body, "type"));
        q.expires_at = get_int(m.body, "expiresAt", 0);
        if (c->cfg.cb_queued)
            c->cfg.cb_queued(c, &q, c->cfg.user_ptr);
        break;
    }
    case RDV_MSG_ERROR: on_error(c, m.body); break;
    case RDV_MSG_PING: {
        const char *id = rdv_msg_get_str(m.body, "id");
        json_t *body = id ? json_pack("{s:s}", "id", id) : json_object();
        (void)rdv__send_body(c, RDV_MSG_PONG, body, id, true);
        break;
    }
    case RDV_MSG_PONG: rdv__chan_on_pong(c, rdv_msg_get_str(m.body, "id")); break;
    case RDV_MSG_RELAY_DATA: rdv__relay_on_data_text(c, m.body); break;
    case RDV_MSG_RELAY_CLOSE: rdv__relay_on_close(c, m.body); break;
    default:
        rdv__report(c, RDV_ERR_PROTOCOL, NULL, "node-to-server message type received",
                    NULL, rdv_msg_type_name(m.type), NULL, NULL);
        break;
    }
    rdv_msg_free(&m);
    return rc;
}
