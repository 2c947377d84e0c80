/* node.c - test node identity, handshake, signed builders, expectations.
 *
 * See node.h. Everything signed goes through the codec (rdv_sig_sign over
 * RFC 8785 JCS) exactly like a real node; forgeries are applied after
 * signing (bad_signature) or before it (from, ts_offset_ms).
 */
#include "node.h"
#include "schema/ids.h"
#include "server.h"
#include "schema/sign.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rdv_tn_init(rdv_tn *n, const char *label)
{
    uint8_t seed[RDV_SEED_BYTES];
    if (sodium_init() < 0)
        abort();
    memset(n, 0, sizeof *n);
    crypto_generichash(seed, sizeof seed, (const unsigned char *)label, strlen(label), NULL, 0);
    crypto_sign_seed_keypair(n->pk, n->sk, seed);
    rdv_node_id_from_pk(n->pk, n->id);
    snprintf(n->label, sizeof n->label, "%s", label);
}

long long rdv_json_int(const json_t *obj, const char *key, long long dflt)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    return dflt;
}

const char *rdv_json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static void show_unexpected(rdv_ws *c, const char *wanted)
{
    size_t len = 0;
    const char *t = rdv_ws_last_text(c, &len);
    if (t)
        fprintf(stderr, "[node] expected %s, got: %.*s\n", wanted, (int)(len > 600 ? 600 : len),
                t);
    else if (rdv_ws_is_closed(c))
        fprintf(stderr, "[node] expected %s, connection closed (code %d %s)\n", wanted,
                rdv_ws_close_code(c), rdv_ws_close_reason(c));
    else
        fprintf(stderr, "[node] expected %s, got nothing (timeout)\n", wanted);
    rdv_ts_dump_all_logs(wanted);
}

json_t *rdv_expect(rdv_ws *c, const char *type, int timeout_ms)
{
    const char *got = NULL;
    json_t *root = rdv_ws_recv_json(c, timeout_ms, &got);
    if (!root || !got || strcmp(got, type) != 0) {
        show_unexpected(c, type);
        return NULL;
    }
    json_t *body = json_object_get(root, type);
    if (!json_is_object(body)) {
        show_unexpected(c, type);
        return NULL;
    }
    return body;
}

json_t *rdv_expect_error(rdv_ws *c, const char *code, int timeout_ms)
{
    const char *got = NULL;
    json_t *root = rdv_ws_recv_json(c, timeout_ms, &got);
    json_t *body = root ? json_object_get(root, "error") : NULL;
    if (!body || strcmp(rdv_json_str(body, "code"), code) != 0) {
        char want[64];
        snprintf(want, sizeof want, "error %s", code);
        show_unexpected(c, want);
        return NULL;
    }
    return body;
}

int rdv_expect_bytes(rdv_ws *c, const char *bytes, size_t len, int timeout_ms)
{
    size_t got = 0;
    char *t = rdv_ws_recv(c, timeout_ms, &got);
    if (!t) {
        fprintf(stderr, "[node] expected %zu exact bytes, got nothing (closed=%d)\n", len,
                rdv_ws_is_closed(c));
        rdv_ts_dump_all_logs("expected bytes");
        return -1;
    }
    int rc = (got == len && memcmp(t, bytes, len) == 0) ? 0 : -1;
    if (rc)
        fprintf(stderr, "[node] bytes differ:\n  sent (%zu): %.*s\n  got  (%zu): %.*s\n", len,
                (int)len, bytes, got, (int)got, t);
    free(t);
    return rc;
}

json_t *rdv_tn_read_challenge(rdv_ws *c, int timeout_ms)
{
    json_t *b = rdv_expect(c, "challenge", timeout_ms);
    return b ? json_incref(b) : NULL;
}

static char *finish(const rdv_tn *n, rdv_msg_type type, json_t *body, const rdv_tn_forge *f,
                    size_t *len)
{
    rdv_tn_forge none;
    memset(&none, 0, sizeof none);
    if (!f)
        f = &none;
    const char *from_key = type == RDV_MSG_HELLO ? "nodeID" : "fromNodeID";
    if (!json_object_get(body, from_key))
        json_object_set_new(body, from_key, json_string(f->from ? f->from : n->id));
    if (!json_object_get(body, "timestamp"))
        json_object_set_new(body, "timestamp",
                            json_integer((json_int_t)(rdv_now_ms() + f->ts_offset_ms)));
    if (!f->no_signature) {
        if (rdv_sig_sign(type, body, n->sk) != 0) {
            fprintf(stderr, "[node] rdv_sig_sign failed\n");
            json_decref(body);
            return NULL;
        }
        if (f->bad_signature) {
            const char *sig = json_string_value(json_object_get(body, "signature"));
            if (sig) {
                char *s2 = strdup(sig);
                s2[0] = s2[0] == '0' ? '1' : '0';
                json_object_set_new(body, "signature", json_string(s2));
                free(s2);
            }
        }
    }
    json_t *env = rdv_msg_wrap(type, body);
    if (!env)
        return NULL;
    size_t l = 0;
    char *text = rdv_msg_dump(env, &l);
    json_decref(env);
    if (len)
        *len = l;
    return text;
}

char *rdv_tn_sign_body(const rdv_tn *n, rdv_msg_type type, json_t *body,
                       const rdv_tn_forge *f, size_t *len)
{
    return finish(n, type, body, f, len);
}

char *rdv_tn_hello(const rdv_tn *n, const json_t *challenge_body, const char *nonce,
                   const char *server, const json_t *extra, const rdv_tn_forge *f,
                   size_t *len)
{
    json_t *body = json_object();
    json_object_set_new(body, "nonce",
                        json_string(nonce ? nonce : rdv_json_str(challenge_body, "nonce")));
    json_object_set_new(body, "server",
                        json_string(server ? server : rdv_json_str(challenge_body, "server")));
    if (extra)
        json_object_update(body, (json_t *)extra);
    return finish(n, RDV_MSG_HELLO, body, f, len);
}

json_t *rdv_tn_authenticate(rdv_ws *c, const rdv_tn *n)
{
    json_t *ch = rdv_tn_read_challenge(c, RDV_WS_TIMEOUT_MS);
    if (!ch)
        return NULL;
    json_t *extra = json_pack("{s:s, s:s}", "natType", "portRestricted", "software",
                              "rdv-tests/1");
    size_t len = 0;
    char *hello = rdv_tn_hello(n, ch, NULL, NULL, extra, NULL, &len);
    json_decref(extra);
    json_decref(ch);
    if (!hello)
        return NULL;
    int rc = rdv_ws_send_text(c, hello, len);
    free(hello);
    if (rc != 0)
        return NULL;
    json_t *w = rdv_expect(c, "welcome", RDV_WS_TIMEOUT_MS);
    if (w && strcmp(rdv_json_str(w, "nodeID"), n->id) != 0) {
        fprintf(stderr, "[node] welcome for %s, expected %s\n", rdv_json_str(w, "nodeID"), n->id);
        return NULL;
    }
    return w;
}

rdv_ws *rdv_tn_connect(int port, const rdv_tn *n)
{
    rdv_ws *c = rdv_ws_connect(port);
    if (!c)
        return NULL;
    if (!rdv_tn_authenticate(c, n)) {
        rdv_ws_close(c);
        return NULL;
    }
    return c;
}

json_t *rdv_tn_connection_info(void)
{
    return json_pack("{s:s, s:i, s:s, s:i, s:s}", "publicIP", "203.0.113.5", "publicPort", 40001,
                     "localIP", "192.168.1.20", "localPort", 51820, "natType",
                     "portRestricted");
}

static char *signaling(const rdv_tn *n, rdv_msg_type type, const char *to, const char *session,
                       const rdv_tn_forge *f, size_t *len)
{
    char sid[RDV_UUID_STRLEN + 1];
    if (!session) {
        rdv_uuid_v4(sid);
        session = sid;
    }
    json_t *body = json_pack("{s:s, s:s}", "toNodeID", to, "sessionID", session);
    if (type == RDV_MSG_ICE_CANDIDATE)
        json_object_set_new(body, "candidate",
                            json_pack("{s:s, s:i, s:s, s:I, s:s}", "ip", "192.168.1.20", "port",
                                      51820, "type", "host", "priority",
                                      (json_int_t)2130706431, "foundation", "1"));
    else
        json_object_set_new(body, "connectionInfo", rdv_tn_connection_info());
    return finish(n, type, body, f, len);
}

char *rdv_tn_offer(const rdv_tn *n, const char *to, const char *session, const rdv_tn_forge *f,
                   size_t *len)
{
    return signaling(n, RDV_MSG_OFFER, to, session, f, len);
}

char *rdv_tn_answer(const rdv_tn *n, const char *to, const char *session,
                    const rdv_tn_forge *f, size_t *len)
{
    return signaling(n, RDV_MSG_ANSWER, to, session, f, len);
}

char *rdv_tn_ice(const rdv_tn *n, const char *to, const char *session, const rdv_tn_forge *f,
                 size_t *len)
{
    return signaling(n, RDV_MSG_ICE_CANDIDATE, to, session, f, len);
}

char *rdv_tn_id_request(const char *type, const char *const *ids, size_t n,
                        const char *request_id)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(ids[i]));
    json_t *body = json_pack("{s:o}", "nodeIDs", arr);
    if (request_id)
        json_object_set_new(body, "requestID", json_string(request_id));
    json_t *env = json_pack("{s:o}", type, body);
    char *s = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    return s;
}

json_t *rdv_lookup_one(rdv_ws *c, const char *id)
{
    static unsigned counter;
    char rid[32];
    snprintf(rid, sizeof rid, "lk-%u", ++counter);
    char *req = rdv_tn_id_request("lookup", &id, 1, rid);
    int rc = rdv_ws_send_str(c, req);
    free(req);
    if (rc != 0) {
        fprintf(stderr, "[node] lookup: send failed (closed=%d code=%d)\n", rdv_ws_is_closed(c),
                rdv_ws_close_code(c));
        return NULL;
    }
    json_t *p = rdv_expect(c, "presence", RDV_WS_TIMEOUT_MS);
    if (!p)
        return NULL;
    if (strcmp(rdv_json_str(p, "requestID"), rid) != 0) {
        fprintf(stderr, "[node] presence requestID %s, expected %s\n",
                rdv_json_str(p, "requestID"), rid);
        return NULL;
    }
    json_t *peers = json_object_get(p, "peers");
    if (!json_is_array(peers) || json_array_size(peers) != 1) {
        fprintf(stderr, "[node] presence peers is not a 1-element array\n");
        return NULL;
    }
    json_t *e = json_array_get(peers, 0);
    if (strcmp(rdv_json_str(e, "nodeID"), id) != 0) {
        fprintf(stderr, "[node] presence for %s, expected %s\n", rdv_json_str(e, "nodeID"), id);
        return NULL;
    }
    return e;
}
