/* test_message.c - parser and validator of wire protocol v1 (message.c) and
 * the error-code tables (errors.c).
 *
 * Every message type valid (with and without optional fields, also after a
 * text round trip); every required field missing; every field with every
 * wrong JSON type; format and range violations; the envelope and JSON rules
 * of PROTOCOL.md section 2 (size, depth, UTF-8, U+0000, duplicates, top
 * level, truncation); accessors, wrap/dump and the error builder.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fixtures.h"

#include "schema/errors.h"

/* Fails with a description of the case when `cond` is false. */
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            print_error(__VA_ARGS__);                                      \
            print_error("\n");                                             \
            fail_msg("check failed: %s", #cond);                           \
        }                                                                  \
    } while (0)

static fx_keys key_a, key_b;

static int setup(void **state)
{
    (void)state;
    fx_key(&key_a, 0x01);
    fx_key(&key_b, 0x02);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Field descriptions of every type (test-side copy of PROTOCOL.md)          */
/* ------------------------------------------------------------------------ */

/* JSON class of a field: String, Integer, Boolean, Object, Array. */
typedef struct fdesc {
    const char *path;
    char cls;
    bool required;
} fdesc;

static const fdesc f_challenge[] = {
    {"nonce", 'S', true}, {"server", 'S', true}, {"version", 'I', true},
    {"serverTime", 'I', true}, {NULL, 0, false}};
static const fdesc f_hello[] = {
    {"nodeID", 'S', true}, {"nonce", 'S', true}, {"server", 'S', true},
    {"timestamp", 'I', true}, {"natType", 'S', false},
    {"software", 'S', false}, {"signature", 'S', true}, {NULL, 0, false}};
static const fdesc f_welcome[] = {
    {"nodeID", 'S', true}, {"observedIP", 'S', true},
    {"observedPort", 'I', true}, {"serverTime", 'I', true},
    {"limits", 'O', true},
    {"limits.maxMessageBytes", 'I', true},
    {"limits.messagesPerSecond", 'I', true},
    {"limits.messageBurst", 'I', true},
    {"limits.offlineTtlMs", 'I', true},
    {"limits.offlineQueueMax", 'I', true},
    {"limits.maxWatches", 'I', true},
    {"limits.pingIntervalMs", 'I', true},
    {"limits.idleTimeoutMs", 'I', true},
    {"limits.freshPastMs", 'I', false},
    {"limits.freshFutureMs", 'I', false},
    {"limits.maxRelaySessions", 'I', false},
    {"limits.maxRelayPayload", 'I', false},
    {"limits.relayBytesPerSecond", 'I', false},
    {NULL, 0, false}};
static const fdesc f_offer[] = {
    {"fromNodeID", 'S', true}, {"toNodeID", 'S', true},
    {"sessionID", 'S', true}, {"timestamp", 'I', true},
    {"connectionInfo", 'O', true},
    {"connectionInfo.publicIP", 'S', true},
    {"connectionInfo.publicPort", 'I', true},
    {"connectionInfo.localIP", 'S', true},
    {"connectionInfo.localPort", 'I', true},
    {"connectionInfo.natType", 'S', true},
    {"connectionInfo.wgPublicKey", 'S', false},
    {"e2eKey", 'S', false}, {"signature", 'S', true}, {NULL, 0, false}};
static const fdesc f_ice[] = {
    {"fromNodeID", 'S', true}, {"toNodeID", 'S', true},
    {"sessionID", 'S', true}, {"timestamp", 'I', true},
    {"candidate", 'O', true},
    {"candidate.ip", 'S', true}, {"candidate.port", 'I', true},
    {"candidate.type", 'S', true}, {"candidate.priority", 'I', true},
    {"candidate.foundation", 'S', false},
    {"candidate.relatedIP", 'S', false},
    {"candidate.relatedPort", 'I', false},
    {"signature", 'S', true}, {NULL, 0, false}};
static const fdesc f_relay_open[] = {
    {"fromNodeID", 'S', true}, {"toNodeID", 'S', true},
    {"sessionID", 'S', true}, {"timestamp", 'I', true},
    {"e2eKey", 'S', false}, {"signature", 'S', true}, {NULL, 0, false}};
static const fdesc f_relay_data[] = {
    {"sessionID", 'S', true}, {"data", 'S', true}, {NULL, 0, false}};
static const fdesc f_relay_close[] = {
    {"sessionID", 'S', true}, {"reason", 'S', false}, {NULL, 0, false}};
static const fdesc f_ids_request[] = {
    {"nodeIDs", 'A', true}, {"nodeIDs[0]", 'S', false},
    {"nodeIDs[1]", 'S', false}, {"requestID", 'S', false}, {NULL, 0, false}};
static const fdesc f_presence[] = {
    {"requestID", 'S', false}, {"peers", 'A', true},
    {"peers[0]", 'O', false},
    {"peers[0].nodeID", 'S', true}, {"peers[0].online", 'B', true},
    {"peers[0].lastSeen", 'I', true}, {"peers[0].natType", 'S', true},
    {"peers[1].nodeID", 'S', true}, {"peers[1].online", 'B', true},
    {"peers[1].lastSeen", 'I', true}, {"peers[1].natType", 'S', true},
    {NULL, 0, false}};
static const fdesc f_peer_online[] = {
    {"nodeID", 'S', true}, {"natType", 'S', true}, {"lastSeen", 'I', true},
    {NULL, 0, false}};
static const fdesc f_peer_offline[] = {
    {"nodeID", 'S', true}, {"natType", 'S', false}, {"lastSeen", 'I', true},
    {NULL, 0, false}};
static const fdesc f_queued[] = {
    {"sessionID", 'S', true}, {"toNodeID", 'S', true}, {"type", 'S', true},
    {"expiresAt", 'I', true}, {NULL, 0, false}};
static const fdesc f_error[] = {
    {"code", 'S', true}, {"message", 'S', true}, {"ref", 'S', false},
    {"type", 'S', false}, {"field", 'S', false}, {NULL, 0, false}};
static const fdesc f_ping[] = {
    {"id", 'S', false}, {"serverTime", 'I', false}, {NULL, 0, false}};

static const fdesc *fields_of(rdv_msg_type t)
{
    switch (t) {
    case RDV_MSG_CHALLENGE: return f_challenge;
    case RDV_MSG_HELLO: return f_hello;
    case RDV_MSG_WELCOME: return f_welcome;
    case RDV_MSG_OFFER:
    case RDV_MSG_ANSWER: return f_offer;
    case RDV_MSG_ICE_CANDIDATE: return f_ice;
    case RDV_MSG_RELAY_OPEN:
    case RDV_MSG_RELAY_READY: return f_relay_open;
    case RDV_MSG_RELAY_DATA: return f_relay_data;
    case RDV_MSG_RELAY_CLOSE: return f_relay_close;
    case RDV_MSG_LOOKUP:
    case RDV_MSG_WATCH:
    case RDV_MSG_UNWATCH: return f_ids_request;
    case RDV_MSG_PRESENCE: return f_presence;
    case RDV_MSG_PEER_ONLINE: return f_peer_online;
    case RDV_MSG_PEER_OFFLINE: return f_peer_offline;
    case RDV_MSG_QUEUED: return f_queued;
    case RDV_MSG_ERROR: return f_error;
    case RDV_MSG_PING:
    case RDV_MSG_PONG: return f_ping;
    default: return NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* Path helpers: "a", "a.b", "a[1]", "a[1].b"                               */
/* ------------------------------------------------------------------------ */

/* Finds the container of the last segment of `path` under `root`; sets
 * *key (object member) or *idx (array element, else -1). */
static json_t *resolve(json_t *root, const char *path, char *key, size_t keysz,
                       long *idx)
{
    json_t *cur = root;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t seglen = dot ? (size_t)(dot - p) : strlen(p);
        char seg[64];
        assert_true(seglen < sizeof seg);
        memcpy(seg, p, seglen);
        seg[seglen] = '\0';
        long i = -1;
        char *br = strchr(seg, '[');
        if (br) {
            i = strtol(br + 1, NULL, 10);
            *br = '\0';
        }
        if (dot == NULL) {
            if (i >= 0) {
                json_t *arr = json_object_get(cur, seg);
                assert_true(json_is_array(arr));
                *idx = i;
                return arr;
            }
            assert_true(strlen(seg) < keysz);
            strcpy(key, seg);
            *idx = -1;
            return cur;
        }
        cur = json_object_get(cur, seg);
        if (i >= 0)
            cur = json_array_get(cur, (size_t)i);
        assert_non_null(cur);
        p = dot + 1;
    }
}

/* Replaces the value at `path` (reference to v stolen). */
static void set_at(json_t *root, const char *path, json_t *v)
{
    char key[64];
    long idx;
    json_t *c = resolve(root, path, key, sizeof key, &idx);
    assert_non_null(v);
    if (idx >= 0)
        assert_int_equal(json_array_set_new(c, (size_t)idx, v), 0);
    else
        assert_int_equal(json_object_set_new(c, key, v), 0);
}

static void del_at(json_t *root, const char *path)
{
    char key[64];
    long idx;
    json_t *c = resolve(root, path, key, sizeof key, &idx);
    if (idx >= 0)
        assert_int_equal(json_array_remove(c, (size_t)idx), 0);
    else
        assert_int_equal(json_object_del(c, key), 0);
}

/* A JSON value from text (numbers as reals, like the parser). */
static json_t *jv(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

/* Validates body directly and after a text round trip; both must agree on
 * code and field. Returns the code (0 or negative). */
static int check_both(rdv_msg_type t, const json_t *body, rdv_msg_error *err)
{
    int rc = rdv_msg_validate(t, body, err);
    size_t len;
    char *text = fx_text(t, body, &len);
    rdv_msg m;
    rdv_msg_error err2;
    int rc2 = fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, &err2);
    CHECK(rc == rc2, "validate %d vs parse %d for %s (%s | %s)", rc, rc2, text,
          err->detail, err2.detail);
    if (rc2 == 0) {
        assert_int_equal(m.type, t);
        rdv_msg_free(&m);
    } else {
        assert_null(m.root);
        assert_null(m.body);
        assert_string_equal(err->field, err2.field);
    }
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

static void test_type_names(void **state)
{
    (void)state;
    assert_null(rdv_msg_type_name(RDV_MSG_UNKNOWN));
    assert_null(rdv_msg_type_name(RDV_MSG__COUNT));
    assert_null(rdv_msg_type_name((rdv_msg_type)-1));
    int nsigned = 0, nrouted = 0;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        const char *n = rdv_msg_type_name((rdv_msg_type)t);
        assert_non_null(n);
        assert_int_equal(rdv_msg_type_from_name(n, strlen(n)), t);
        nsigned += rdv_msg_type_is_signed((rdv_msg_type)t);
        nrouted += rdv_msg_type_is_routed((rdv_msg_type)t);
    }
    assert_int_equal(nsigned, 6);
    assert_int_equal(nrouted, 5);
    assert_true(rdv_msg_type_is_signed(RDV_MSG_HELLO));
    assert_false(rdv_msg_type_is_routed(RDV_MSG_HELLO));
    assert_string_equal(rdv_msg_type_name(RDV_MSG_ICE_CANDIDATE), "iceCandidate");
    assert_int_equal(rdv_msg_type_from_name("offe", 4), RDV_MSG_UNKNOWN);
    assert_int_equal(rdv_msg_type_from_name("offerx", 6), RDV_MSG_UNKNOWN);
    assert_int_equal(rdv_msg_type_from_name("offerx", 5), RDV_MSG_OFFER);
    assert_int_equal(rdv_msg_type_from_name("Offer", 5), RDV_MSG_UNKNOWN);
    assert_int_equal(rdv_msg_type_from_name(NULL, 0), RDV_MSG_UNKNOWN);
}

/* Every type valid, with and without its optional fields, directly and
 * parsed from text; signed types verify after the round trip. */
static void test_all_types_valid(void **state)
{
    (void)state;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        for (int opt = 0; opt <= 1; opt++) {
            json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_b, opt);
            rdv_msg_error err;
            int rc = rdv_msg_validate((rdv_msg_type)t, body, &err);
            CHECK(rc == 0, "type %s opt %d: %s %s", rdv_msg_type_name(t), opt,
                  err.field, err.detail);
            assert_int_equal(err.code, RDV_EC_NONE);

            size_t len;
            char *text = fx_text((rdv_msg_type)t, body, &len);
            rdv_msg m;
            rc = fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, &err);
            CHECK(rc == 0, "parse %s: %s %s", text, err.field, err.detail);
            assert_int_equal(m.type, t);
            assert_non_null(m.root);
            assert_ptr_equal(m.body, json_object_get(m.root, rdv_msg_type_name(t)));
            if (rdv_msg_type_is_signed((rdv_msg_type)t)) {
                const char *kf = t == RDV_MSG_HELLO ? "nodeID" : "fromNodeID";
                assert_int_equal(rdv_sig_verify_from((rdv_msg_type)t, m.body, kf), 0);
            }
            rdv_msg_free(&m);
            assert_null(m.root);
            rdv_msg_free(&m); /* twice is safe */
            free(text);
            json_decref(body);
        }
    }
}

/* Each required field removed -> missing_field naming it. */
static void test_missing_fields(void **state)
{
    (void)state;
    int cases = 0;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        const fdesc *fd = fields_of((rdv_msg_type)t);
        assert_non_null(fd);
        json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_b, true);
        for (; fd->path; fd++) {
            if (!fd->required)
                continue;
            /* A missing peers[1].x is found after peers[0] passes. */
            json_t *copy = json_deep_copy(body);
            del_at(copy, fd->path);
            rdv_msg_error err;
            int rc = check_both((rdv_msg_type)t, copy, &err);
            CHECK(rc == -RDV_EC_MISSING_FIELD, "%s without %s: rc %d (%s)",
                  rdv_msg_type_name(t), fd->path, rc, err.detail);
            assert_int_equal(err.code, RDV_EC_MISSING_FIELD);
            assert_string_equal(err.field, fd->path);
            json_decref(copy);
            cases++;
        }
        /* Optional fields may be left out one by one. */
        for (fd = fields_of((rdv_msg_type)t); fd->path; fd++) {
            if (fd->required || strchr(fd->path, '[') != NULL)
                continue;
            json_t *copy = json_deep_copy(body);
            del_at(copy, fd->path);
            rdv_msg_error err;
            int rc = check_both((rdv_msg_type)t, copy, &err);
            CHECK(rc == 0, "%s without optional %s: %s", rdv_msg_type_name(t),
                  fd->path, err.detail);
            json_decref(copy);
        }
        json_decref(body);
    }
    assert_true(cases > 60);
}

/* Every field given each JSON type it must not have -> invalid_field. */
static void test_wrong_json_types(void **state)
{
    (void)state;
    static const char *const not_string[] = {"1", "true", "false", "null",
                                             "[]", "{}", "[\"a\"]", NULL};
    static const char *const not_integer[] = {"\"1\"", "true", "null", "[]",
                                              "{}", "[1]", "1.5", NULL};
    static const char *const not_bool[] = {"\"true\"", "1", "0", "null", "[]",
                                            "{}", NULL};
    static const char *const not_object[] = {"\"x\"", "1", "true", "null",
                                             "[]", "[{}]", NULL};
    static const char *const not_array[] = {"\"x\"", "1", "true", "null",
                                            "{}", NULL};
    int cases = 0;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_b, true);
        for (const fdesc *fd = fields_of((rdv_msg_type)t); fd->path; fd++) {
            const char *const *bad = fd->cls == 'S'   ? not_string
                                     : fd->cls == 'I' ? not_integer
                                     : fd->cls == 'B' ? not_bool
                                     : fd->cls == 'O' ? not_object
                                                      : not_array;
            for (; *bad; bad++) {
                json_t *copy = json_deep_copy(body);
                set_at(copy, fd->path, jv(*bad));
                rdv_msg_error err;
                int rc = check_both((rdv_msg_type)t, copy, &err);
                CHECK(rc == -RDV_EC_INVALID_FIELD, "%s.%s = %s: rc %d %s",
                      rdv_msg_type_name(t), fd->path, *bad, rc, err.detail);
                assert_string_equal(err.field, fd->path);
                assert_true(strlen(err.detail) > 0);
                json_decref(copy);
                cases++;
            }
        }
        json_decref(body);
    }
    assert_true(cases > 500);
}

/* ------------------------------------------------------------------------ */
/* Formats and ranges                                                       */
/* ------------------------------------------------------------------------ */

typedef struct fcase {
    rdv_msg_type type;
    const char *path;  /* field to set */
    const char *value; /* JSON text */
    int want;          /* 0 or RDV_EC_* */
    const char *field; /* expected err->field (path when NULL) */
} fcase;

#define UP_HEX "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define H63 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
#define H64 H63 "f"
#define C32 "abcdefghijklmnopqrstuvwxyz012345"

static const fcase format_cases[] = {
    /* NodeID */
    {RDV_MSG_OFFER, "fromNodeID", "\"" UP_HEX "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "fromNodeID", "\"" H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "toNodeID", "\"" H64 "0\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "toNodeID", "\"" H63 "g\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "toNodeID", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "nodeID", "\"0x" H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PEER_ONLINE, "nodeID", "\" " H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_QUEUED, "toNodeID", "\"" UP_HEX "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_WELCOME, "nodeID", "\"" H64 "\"", 0, NULL},
    /* SessionID */
    {RDV_MSG_OFFER, "sessionID", "\"0F8FAD5B-D9CB-469F-A165-70867728950E\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "sessionID", "\"0f8fad5bd9cb469fa16570867728950e\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "sessionID", "\"0f8fad5b-d9cb-469f-a165-70867728950\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "sessionID", "\"0f8fad5-bd9cb-469f-a165-70867728950e\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "sessionID", "\"{0f8fad5b-d9cb-469f-a165-70867728950e}\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "sessionID", "\"0f8fad5b-d9cb-469f-a165-70867728950g\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "sessionID", "\"not-a-uuid\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_CLOSE, "sessionID", "\"00000000-0000-0000-0000-000000000000\"", 0, NULL},
    /* Timestamp */
    {RDV_MSG_OFFER, "timestamp", "0", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "timestamp", "-1", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "timestamp", "1.5", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "timestamp", "9007199254740992", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "timestamp", "1e300", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_CHALLENGE, "serverTime", "1", 0, NULL},
    {RDV_MSG_CHALLENGE, "serverTime", "9007199254740991", 0, NULL},
    {RDV_MSG_CHALLENGE, "serverTime", "1.7e12", 0, NULL},
    {RDV_MSG_CHALLENGE, "serverTime", "1700000000000.0", 0, NULL},
    {RDV_MSG_PING, "serverTime", "0", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PEER_ONLINE, "lastSeen", "0", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_QUEUED, "expiresAt", "-5", RDV_EC_INVALID_FIELD, NULL},
    /* Signature, Nonce, Key32 */
    {RDV_MSG_HELLO, "signature", "\"" UP_HEX UP_HEX "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "signature", "\"" H64 H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "signature", "\"" H64 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "nonce", "\"" H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_CHALLENGE, "nonce", "\"" UP_HEX "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "e2eKey", "\"" H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.wgPublicKey", "\"" UP_HEX "\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_OPEN, "e2eKey", "\"" H64 "00\"", RDV_EC_INVALID_FIELD, NULL},
    /* IP */
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"256.1.1.1\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"1.2.3\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"1.2.3.4.5\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\" 1.2.3.4\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"1.2.3.4 \"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"example.com\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"[2001:db8::1]\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localIP", "\"fe80::1%eth0\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localIP", "\"2001:db8:::1\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localIP", "\"1.2.3.4/24\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localIP",
     "\"0000:0000:0000:0000:0000:ffff:255.255.255.2555\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localIP",
     "\"0000:0000:0000:0000:0000:ffff:255.255.255.255\"", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"0.0.0.0\"", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"::\"", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicIP", "\"::ffff:192.0.2.1\"", 0, NULL},
    {RDV_MSG_WELCOME, "observedIP", "\"1.2.3.4\\u0000\"", RDV_EC_BAD_JSON, ""},
    {RDV_MSG_WELCOME, "observedIP", "\"2001:DB8::1\"", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.ip", "\"10.0.0.256\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.relatedIP", "\"x\"", RDV_EC_INVALID_FIELD, NULL},
    /* Port */
    {RDV_MSG_OFFER, "connectionInfo.publicPort", "70000", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicPort", "65536", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicPort", "-1", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicPort", "1.5", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicPort", "0", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.publicPort", "65535", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localPort", "1e2", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.localPort", "-0", 0, NULL},
    {RDV_MSG_WELCOME, "observedPort", "65536", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.port", "0", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.port", "1", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.relatedPort", "0", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.relatedPort", "99999", RDV_EC_INVALID_FIELD, NULL},
    /* NatType and candidate type */
    {RDV_MSG_OFFER, "connectionInfo.natType", "\"FullCone\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.natType", "\"open\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.natType", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_OFFER, "connectionInfo.natType", "\"symmetric\"", 0, NULL},
    {RDV_MSG_HELLO, "natType", "\"unknownx\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PEER_OFFLINE, "natType", "\"cone\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.type", "\"srflx\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.type", "\"Host\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.type", "\"relayed\"", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.type", "\"peerReflexive\"", 0, NULL},
    /* priority, foundation */
    {RDV_MSG_ICE_CANDIDATE, "candidate.priority", "4294967296", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.priority", "4294967295", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.priority", "0", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.priority", "-1", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.foundation", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.foundation", "\"" C32 "\"", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.foundation", "\"" C32 "x\"", RDV_EC_INVALID_FIELD, NULL},
    /* challenge / hello strings and version */
    {RDV_MSG_CHALLENGE, "version", "0", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_CHALLENGE, "version", "1.0", 0, NULL},
    {RDV_MSG_CHALLENGE, "server", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "server", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "software", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_HELLO, "software", "\"" C32 C32 "\"", 0, NULL},
    {RDV_MSG_HELLO, "software", "\"" C32 C32 "x\"", RDV_EC_INVALID_FIELD, NULL},
    /* limits */
    {RDV_MSG_WELCOME, "limits.maxWatches", "-1", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_WELCOME, "limits.maxWatches", "0", 0, NULL},
    {RDV_MSG_WELCOME, "limits.offlineTtlMs", "0.5", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_WELCOME, "limits.relayBytesPerSecond", "-3", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_WELCOME, "limits.someFutureLimit", "\"anything\"", 0, NULL},
    {RDV_MSG_WELCOME, "limits.someFutureLimit", "{\"a\":[]}", 0, NULL},
    /* nodeIDs arrays */
    {RDV_MSG_LOOKUP, "nodeIDs", "[]", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_WATCH, "nodeIDs", "[\"" H64 "\"]", 0, NULL},
    {RDV_MSG_WATCH, "nodeIDs", "[\"" H64 "\", \"" UP_HEX "\"]", RDV_EC_INVALID_FIELD, "nodeIDs[1]"},
    {RDV_MSG_UNWATCH, "nodeIDs", "[[\"" H64 "\"]]", RDV_EC_INVALID_FIELD, "nodeIDs[0]"},
    {RDV_MSG_LOOKUP, "nodeIDs[0]", "\"" H63 "\"", RDV_EC_INVALID_FIELD, NULL},
    /* requestID, reason, id, ref, code, message */
    {RDV_MSG_LOOKUP, "requestID", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_LOOKUP, "requestID", "\"" C32 C32 "\"", 0, NULL},
    {RDV_MSG_LOOKUP, "requestID", "\"" C32 C32 "x\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PRESENCE, "requestID", "\"" C32 C32 "x\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_CLOSE, "reason", "\"\"", 0, NULL},
    {RDV_MSG_PING, "id", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PONG, "id", "\"" C32 C32 "x\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "ref", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "ref", "\"" C32 C32 "x\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "code", "\"\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "code", "\"Bad_json\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "code", "\"bad-json\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "code", "\"bad_json2\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "code", "\"abcdefghijklmnopqrstuvwxyz______\"", 0, NULL},
    {RDV_MSG_ERROR, "code", "\"abcdefghijklmnopqrstuvwxyz_______\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_ERROR, "code", "\"some_future_code\"", 0, NULL},
    {RDV_MSG_ERROR, "message", "\"\"", 0, NULL},
    {RDV_MSG_ERROR, "type", "\"\"", 0, NULL},
    {RDV_MSG_QUEUED, "type", "\"answer\"", 0, NULL},
    /* relayData.data: standard base64 with padding */
    {RDV_MSG_RELAY_DATA, "data", "\"\"", 0, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YQ==\"", 0, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YWI=\"", 0, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YWJj\"", 0, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"+/+/\"", 0, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YQ\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YWI\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YW==\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YQ=a\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YQ==YQ==\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"-_-_\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YW Jj\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"YWJj\\n\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"====\"", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_RELAY_DATA, "data", "\"Y===\"", RDV_EC_INVALID_FIELD, NULL},
    /* presence entries */
    {RDV_MSG_PRESENCE, "peers", "[]", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PRESENCE, "peers", "[1]", RDV_EC_INVALID_FIELD, "peers[0]"},
    {RDV_MSG_PRESENCE, "peers[1]", "{}", RDV_EC_MISSING_FIELD, "peers[1].nodeID"},
    {RDV_MSG_PRESENCE, "peers[0].lastSeen", "0", 0, NULL},
    {RDV_MSG_PRESENCE, "peers[0].lastSeen", "-1", RDV_EC_INVALID_FIELD, NULL},
    {RDV_MSG_PRESENCE, "peers[1].natType", "\"x\"", RDV_EC_INVALID_FIELD, NULL},
    /* unknown fields are ignored */
    {RDV_MSG_OFFER, "futureField", "{\"x\":[1,2,{\"y\":null}]}", 0, NULL},
    {RDV_MSG_OFFER, "connectionInfo.futureField", "\"v\"", 0, NULL},
    {RDV_MSG_ICE_CANDIDATE, "candidate.futureField", "1.25", 0, NULL},
    {RDV_MSG_PING, "futureField", "null", 0, NULL},
};

/* A value whose text contains \u0000 cannot even be built by jansson
 * (json_loads refuses it): such cases are checked through the parser. */
static void test_formats(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
        const fcase *c = &format_cases[i];
        json_t *body = fx_body(c->type, &key_a, &key_b, true);
        const char *want_field = c->field ? c->field : c->path;
        if (c->want == RDV_EC_BAD_JSON) {
            /* Splice the raw value text into the message text. */
            char text[4096];
            snprintf(text, sizeof text, "{\"%s\":{\"x\":%s}}",
                     rdv_msg_type_name(c->type), c->value);
            rdv_msg m;
            rdv_msg_error err;
            int rc = fx_parse_str(text, &m, &err);
            CHECK(rc == -RDV_EC_BAD_JSON, "case %zu: rc %d", i, rc);
            assert_string_equal(err.field, want_field);
            json_decref(body);
            continue;
        }
        set_at(body, c->path, jv(c->value));
        rdv_msg_error err;
        int rc = check_both(c->type, body, &err);
        CHECK(rc == -c->want, "case %zu: %s %s = %s: rc %d want %d (%s: %s)", i,
              rdv_msg_type_name(c->type), c->path, c->value, rc, -c->want,
              err.field, err.detail);
        if (c->want != 0)
            assert_string_equal(err.field, want_field);
        json_decref(body);
    }
}

/* Lengths counted in characters (code points), not bytes. */
static void test_text_lengths(void **state)
{
    (void)state;
    struct {
        rdv_msg_type type;
        const char *path;
        size_t max;
        bool allow_empty;
    } cases[] = {
        {RDV_MSG_ERROR, "message", RDV_MAX_TEXT, true},
        {RDV_MSG_RELAY_CLOSE, "reason", RDV_MAX_TEXT, true},
        {RDV_MSG_CHALLENGE, "server", RDV_MAX_SERVER_NAME, false},
        {RDV_MSG_HELLO, "server", RDV_MAX_SERVER_NAME, false},
        {RDV_MSG_LOOKUP, "requestID", RDV_MAX_REQUEST_ID, false},
        {RDV_MSG_ERROR, "ref", 64, false},
        {RDV_MSG_PING, "id", 64, false},
        {RDV_MSG_ICE_CANDIDATE, "candidate.foundation", 32, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int multibyte = 0; multibyte <= 1; multibyte++) {
            const char *unit = multibyte ? "\xc3\xa9" : "x"; /* é is 2 bytes */
            for (size_t n = 0; n <= cases[i].max + 1; n++) {
                if (n > 2 && n < cases[i].max - 1)
                    continue;
                char *s = calloc(n * 2 + 1, 1);
                assert_non_null(s);
                for (size_t k = 0; k < n; k++)
                    strcat(s, unit);
                json_t *body = fx_body(cases[i].type, &key_a, &key_b, true);
                set_at(body, cases[i].path, json_string(s));
                rdv_msg_error err;
                int rc = check_both(cases[i].type, body, &err);
                bool ok = n <= cases[i].max && (n > 0 || cases[i].allow_empty);
                CHECK(rc == (ok ? 0 : -RDV_EC_INVALID_FIELD),
                      "%s.%s of %zu chars (multibyte %d): rc %d",
                      rdv_msg_type_name(cases[i].type), cases[i].path, n,
                      multibyte, rc);
                json_decref(body);
                free(s);
            }
        }
    }
}

/* A long base64 payload crosses the validator's internal chunking. */
static void test_base64_long(void **state)
{
    (void)state;
    for (size_t n = 0; n < 3100; n += 97) {
        uint8_t *bin = malloc(n + 1);
        assert_non_null(bin);
        for (size_t i = 0; i < n; i++)
            bin[i] = (uint8_t)(i * 31 + 7);
        size_t b64len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(b64len);
        assert_non_null(b64);
        sodium_bin2base64(b64, b64len, bin, n, sodium_base64_VARIANT_ORIGINAL);
        json_t *body = fx_body(RDV_MSG_RELAY_DATA, &key_a, &key_b, true);
        set_at(body, "data", json_string(b64));
        rdv_msg_error err;
        CHECK(check_both(RDV_MSG_RELAY_DATA, body, &err) == 0, "n=%zu: %s", n,
              err.detail);
        json_decref(body);
        free(bin);
        free(b64);
    }
    /* Padding that ends a 1024-character chunk but not the string. */
    char s[1024 + 4 + 1];
    memset(s, 'A', sizeof s - 1);
    s[1022] = '=';
    s[1023] = '=';
    s[sizeof s - 1] = '\0';
    json_t *body = fx_body(RDV_MSG_RELAY_DATA, &key_a, &key_b, true);
    set_at(body, "data", json_string(s));
    rdv_msg_error err;
    assert_int_equal(check_both(RDV_MSG_RELAY_DATA, body, &err),
                     -RDV_EC_INVALID_FIELD);
    assert_string_equal(err.field, "data");
    json_decref(body);
}

static void test_nodeids_count(void **state)
{
    (void)state;
    rdv_msg_type types[] = {RDV_MSG_LOOKUP, RDV_MSG_WATCH, RDV_MSG_UNWATCH};
    for (size_t t = 0; t < 3; t++) {
        for (size_t n = 0; n <= RDV_MAX_IDS_PER_REQUEST + 2; n++) {
            json_t *arr = json_array();
            assert_non_null(arr);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(json_array_append_new(arr, json_string(key_b.id)), 0);
            json_t *body = fx_body(types[t], &key_a, &key_b, false);
            set_at(body, "nodeIDs", arr);
            rdv_msg_error err;
            int rc = check_both(types[t], body, &err);
            bool ok = n >= 1 && n <= RDV_MAX_IDS_PER_REQUEST;
            CHECK(rc == (ok ? 0 : -RDV_EC_INVALID_FIELD), "%zu ids: %d", n, rc);
            if (!ok)
                assert_string_equal(err.field, "nodeIDs");
            json_decref(body);
        }
    }
}

static void test_to_equals_from(void **state)
{
    (void)state;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        if (!rdv_msg_type_is_routed((rdv_msg_type)t))
            continue;
        json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_a, true);
        rdv_msg_error err;
        assert_int_equal(check_both((rdv_msg_type)t, body, &err),
                         -RDV_EC_INVALID_FIELD);
        assert_string_equal(err.field, "toNodeID");
        assert_true(strstr(err.detail, "fromNodeID") != NULL);
        json_decref(body);
    }
}

/* Direct validate of a non-object body or unknown type. */
static void test_validate_args(void **state)
{
    (void)state;
    rdv_msg_error err;
    json_t *arr = json_array();
    assert_int_equal(rdv_msg_validate(RDV_MSG_PING, arr, &err), -RDV_EC_BAD_MESSAGE);
    assert_int_equal(rdv_msg_validate(RDV_MSG_PING, NULL, &err), -RDV_EC_BAD_MESSAGE);
    json_t *obj = json_object();
    assert_int_equal(rdv_msg_validate(RDV_MSG_UNKNOWN, obj, &err),
                     -RDV_EC_UNSUPPORTED_TYPE);
    assert_int_equal(rdv_msg_validate(RDV_MSG__COUNT, obj, &err),
                     -RDV_EC_UNSUPPORTED_TYPE);
    assert_int_equal(rdv_msg_validate(RDV_MSG_PING, obj, NULL), 0);
    assert_int_equal(rdv_msg_validate(RDV_MSG_RELAY_CLOSE, obj, NULL),
                     -RDV_EC_MISSING_FIELD);
    json_decref(arr);
    json_decref(obj);
}

/* ------------------------------------------------------------------------ */
/* Envelope and JSON rules                                                  */
/* ------------------------------------------------------------------------ */

typedef struct tcase {
    const char *text;
    int want; /* RDV_EC_* or 0 */
} tcase;

static const tcase text_cases[] = {
    /* valid minimal */
    {"{\"ping\":{}}", 0},
    {" \t\r\n{\"ping\" : { } }\n", 0},
    {"{\"pong\":{\"id\":\"\\u00e9\\ud83d\\ude00\"}}", 0},
    /* top level not an object */
    {"", RDV_EC_BAD_JSON},
    {"   ", RDV_EC_BAD_JSON},
    {"[]", RDV_EC_BAD_JSON},
    {"[{\"ping\":{}}]", RDV_EC_BAD_JSON},
    {"\"ping\"", RDV_EC_BAD_JSON},
    {"42", RDV_EC_BAD_JSON},
    {"true", RDV_EC_BAD_JSON},
    {"null", RDV_EC_BAD_JSON},
    /* not JSON */
    {"{", RDV_EC_BAD_JSON},
    {"{\"ping\":{}", RDV_EC_BAD_JSON},
    {"{\"ping\":{}}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{}} x", RDV_EC_BAD_JSON},
    {"{\"ping\":{}}{\"ping\":{}}", RDV_EC_BAD_JSON},
    {"{'ping':{}}", RDV_EC_BAD_JSON},
    {"{ping:{}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{},}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"a\",}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"a\nb\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"\\x41\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":NaN}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":Infinity}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":1e400}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":-1e400}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":01}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":+1}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":.5}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"serverTime\":0x10}}", RDV_EC_BAD_JSON},
    {"\xef\xbb\xbf{\"ping\":{}}", RDV_EC_BAD_JSON}, /* BOM */
    /* invalid UTF-8 */
    {"{\"ping\":{\"id\":\"\xff\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"\xc3\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"\xc0\xaf\"}}", RDV_EC_BAD_JSON},  /* overlong */
    {"{\"ping\":{\"id\":\"\xed\xa0\x80\"}}", RDV_EC_BAD_JSON}, /* surrogate */
    {"{\"ping\":{\"id\":\"\xf4\x90\x80\x80\"}}", RDV_EC_BAD_JSON}, /* > U+10FFFF */
    {"{\"ping\":{\"\xfe\":1}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"\\ud800\"}}", RDV_EC_BAD_JSON}, /* lone surrogate */
    {"{\"ping\":{\"id\":\"\\udc00\\ud800\"}}", RDV_EC_BAD_JSON},
    /* U+0000 */
    {"{\"ping\":{\"id\":\"\\u0000\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"a\\u0000b\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"\\u0000\":1}}", RDV_EC_BAD_JSON},
    {"{\"ping\\u0000\":{}}", RDV_EC_BAD_JSON},
    /* duplicate keys */
    {"{\"ping\":{},\"ping\":{}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"a\",\"id\":\"a\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"id\":\"a\",\"\\u0069d\":\"b\"}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"x\":{\"y\":1,\"y\":2}}}", RDV_EC_BAD_JSON},
    {"{\"ping\":{\"x\":[{\"y\":1},{\"y\":2}]}}", 0},
    /* envelope */
    {"{}", RDV_EC_BAD_MESSAGE},
    {"{\"ping\":{},\"pong\":{}}", RDV_EC_BAD_MESSAGE},
    {"{\"ping\":1}", RDV_EC_BAD_MESSAGE},
    {"{\"ping\":[]}", RDV_EC_BAD_MESSAGE},
    {"{\"ping\":\"{}\"}", RDV_EC_BAD_MESSAGE},
    {"{\"ping\":null}", RDV_EC_BAD_MESSAGE},
    {"{\"nope\":1}", RDV_EC_BAD_MESSAGE},
    {"{\"nope\":{},\"ping\":{}}", RDV_EC_BAD_MESSAGE},
    /* type */
    {"{\"nope\":{}}", RDV_EC_UNSUPPORTED_TYPE},
    {"{\"\":{}}", RDV_EC_UNSUPPORTED_TYPE},
    {"{\"Ping\":{}}", RDV_EC_UNSUPPORTED_TYPE},
    {"{\"ping \":{}}", RDV_EC_UNSUPPORTED_TYPE},
    {"{\"type\":{}}", RDV_EC_UNSUPPORTED_TYPE},
    /* brackets inside strings do not count toward depth */
    {"{\"ping\":{\"id\":\"[[[[[[[[[[[[[[[[[[[[\"}}", 0},
    {"{\"ping\":{\"id\":\"\\\"[[[[[[[[[[[[[[[[[[[[\\\\\"}}", 0},
    {"{\"ping\":{\"[[[[[[[[[[[[[[[[[{{{{\":1}}", 0},
};

static void test_text_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
        rdv_msg m;
        memset(&m, 0xA5, sizeof m); /* must be zeroed on failure */
        rdv_msg_error err;
        int rc = fx_parse_str(text_cases[i].text, &m, &err);
        CHECK(rc == -text_cases[i].want, "case %zu %s: rc %d want %d (%s)", i,
              text_cases[i].text, rc, -text_cases[i].want, err.detail);
        if (rc == 0) {
            rdv_msg_free(&m);
        } else {
            assert_int_equal(err.code, text_cases[i].want);
            assert_int_equal(m.type, RDV_MSG_UNKNOWN);
            assert_null(m.root);
            assert_null(m.body);
        }
    }
}

/* {"ping":{"x": ...}} nesting to exactly `depth` (>= 3; the envelope is
 * 1, the body 2), with arrays or with objects. */
static char *nested(int depth, bool objects)
{
    char *s = malloc(64 + 8 * (size_t)depth);
    assert_non_null(s);
    strcpy(s, "{\"ping\":{\"x\":");
    for (int i = 2; i < depth; i++)
        strcat(s, !objects ? "[" : i == 2 ? "{" : "\"k\":{");
    for (int i = 2; i < depth; i++)
        strcat(s, objects ? "}" : "]");
    strcat(s, "}}");
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    for (int d = 3; d <= RDV_MAX_DEPTH + 3; d++) {
        for (int kind = 0; kind < 2; kind++) {
            char *s = nested(d, kind == 1);
            rdv_msg m;
            rdv_msg_error err;
            int rc = fx_parse_str(s, &m, &err);
            int want = d <= RDV_MAX_DEPTH ? 0 : -RDV_EC_BAD_JSON;
            CHECK(rc == want, "depth %d: %s -> %d (%s)", d, s, rc, err.detail);
            if (rc == 0)
                rdv_msg_free(&m);
            free(s);
        }
    }
    /* 17 deep refused also when the data is otherwise not JSON at all,
     * and a deep unbalanced prefix does not confuse the scanner. */
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(fx_parse_str("[[[[[[[[[[[[[[[[[", &m, &err), -RDV_EC_BAD_JSON);
    assert_int_equal(fx_parse_str("]]]]]]]]]]]]]]]]]]]]", &m, &err), -RDV_EC_BAD_JSON);
    /* Very deep input (far beyond jansson's own limit) is refused fast. */
    size_t n = 100000;
    char *deep = malloc(n);
    assert_non_null(deep);
    memset(deep, '[', n);
    assert_int_equal(fx_parse(deep, n, n, &m, &err), -RDV_EC_BAD_JSON);
    free(deep);
}

static void test_size_limit(void **state)
{
    (void)state;
    const char *s = "{\"ping\":{\"id\":\"abc\"}}";
    size_t len = strlen(s);
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(fx_parse(s, len, len - 1, &m, &err), -RDV_EC_TOO_LARGE);
    assert_int_equal(err.code, RDV_EC_TOO_LARGE);
    assert_null(m.root);
    assert_int_equal(fx_parse(s, len, len, &m, &err), 0);
    rdv_msg_free(&m);
    assert_int_equal(fx_parse(s, len, 0, &m, &err), -RDV_EC_TOO_LARGE);

    /* A message just over the default limit, built from a valid one. */
    size_t big = RDV_MAX_MESSAGE_BYTES + 1;
    char *b = malloc(big + 1);
    assert_non_null(b);
    memcpy(b, "{\"ping\":{\"pad\":\"", 16);
    memset(b + 16, 'x', big - 16 - 3);
    memcpy(b + big - 3, "\"}}", 3);
    b[big] = '\0';
    assert_int_equal(fx_parse(b, big, RDV_MAX_MESSAGE_BYTES, &m, &err),
                     -RDV_EC_TOO_LARGE);
    assert_int_equal(fx_parse(b, big, big, &m, &err), 0);
    rdv_msg_free(&m);
    free(b);

    /* NULL buffer / NULL out / NULL err. */
    assert_int_equal(rdv_msg_parse(NULL, 0, 10, &m, &err), -RDV_EC_BAD_JSON);
    assert_int_equal(rdv_msg_parse(NULL, 5, 10, &m, &err), -RDV_EC_BAD_JSON);
    assert_int_equal(rdv_msg_parse((const uint8_t *)s, len, 100, NULL, &err),
                     -RDV_EC_INTERNAL);
    assert_int_equal(rdv_msg_parse((const uint8_t *)s, len, 100, &m, NULL), 0);
    rdv_msg_free(&m);
    assert_int_equal(rdv_msg_parse((const uint8_t *)"[", 1, 100, &m, NULL),
                     -RDV_EC_BAD_JSON);
}

/* Every proper prefix of a valid message fails cleanly (ASan checks that
 * nothing is read past the prefix), and so do prefixes with junk. */
static void test_truncation(void **state)
{
    (void)state;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_b, true);
        size_t len;
        char *text = fx_text((rdv_msg_type)t, body, &len);
        for (size_t i = 0; i < len; i++) {
            rdv_msg m;
            rdv_msg_error err;
            int rc = fx_parse(text, i, RDV_MAX_MESSAGE_BYTES, &m, &err);
            CHECK(rc < 0, "prefix %zu of %s parsed", i, text);
            assert_null(m.root);
            assert_true(err.code != RDV_EC_NONE);
        }
        rdv_msg m;
        assert_int_equal(fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, NULL), 0);
        rdv_msg_free(&m);
        free(text);
        json_decref(body);
    }
}

/* Every single-byte corruption of a message is handled without crash or
 * leak (most fail; the result is only required to be clean). */
static void test_corruption(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_ICE_CANDIDATE, &key_a, &key_b, true);
    size_t len;
    char *text = fx_text(RDV_MSG_ICE_CANDIDATE, body, &len);
    static const char subst[] = {'\0', '"', '\\', '{', '[', '}', ']', ',', ':',
                                 '\xff', '\x80', 'A', '0', ' '};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof subst; k++) {
            char saved = text[i];
            text[i] = subst[k];
            rdv_msg m;
            rdv_msg_error err;
            int rc = fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, &err);
            if (rc == 0)
                rdv_msg_free(&m);
            else
                assert_null(m.root);
            text[i] = saved;
        }
    }
    free(text);
    json_decref(body);
}

static void test_unknown_type_field(void **state)
{
    (void)state;
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(fx_parse_str("{\"fooBar\":{\"a\":1}}", &m, &err),
                     -RDV_EC_UNSUPPORTED_TYPE);
    assert_int_equal(err.code, RDV_EC_UNSUPPORTED_TYPE);
    assert_string_equal(err.field, "fooBar");

    /* A long name is truncated to fit, at a character boundary. */
    char text[512];
    strcpy(text, "{\"");
    for (int i = 0; i < 50; i++)
        strcat(text, "\xc3\xa9"); /* é */
    strcat(text, "\":{}}");
    assert_int_equal(fx_parse_str(text, &m, &err), -RDV_EC_UNSUPPORTED_TYPE);
    size_t fl = strlen(err.field);
    assert_true(fl <= sizeof err.field - 1);
    assert_int_equal(fl % 2, 0); /* whole 2-byte characters only */
    assert_int_equal(fl, 62);
    json_t *check = json_string(err.field); /* valid UTF-8 */
    assert_non_null(check);
    json_decref(check);

    /* A server-to-node type is still a known type for the codec. */
    assert_int_equal(fx_parse_str("{\"queued\":{}}", &m, &err),
                     -RDV_EC_MISSING_FIELD);
    assert_string_equal(err.field, "sessionID");
}

/* Unknown fields survive parsing and can be read back. */
static void test_unknown_fields_kept(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_RELAY_CLOSE, &key_a, &key_b, true);
    set_at(body, "future", jv("{\"a\":[1,\"two\",{\"b\":true}]}"));
    size_t len;
    char *text = fx_text(RDV_MSG_RELAY_CLOSE, body, &len);
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, &err), 0);
    json_t *f = json_object_get(m.body, "future");
    assert_non_null(f);
    assert_true(json_equal(f, json_object_get(body, "future")));
    rdv_msg_free(&m);
    free(text);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Accessors, wrap, dump                                                    */
/* ------------------------------------------------------------------------ */

static void test_accessors(void **state)
{
    (void)state;
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(
        fx_parse_str("{\"ping\":{\"id\":\"p\",\"a\":1,\"b\":1.0,\"c\":1.5,"
                     "\"d\":\"1\",\"e\":-9007199254740991,\"f\":1e19,"
                     "\"g\":-0,\"h\":null,\"i\":9223372036854775807}}",
                     &m, &err),
        0);
    assert_string_equal(rdv_msg_get_str(m.body, "id"), "p");
    assert_null(rdv_msg_get_str(m.body, "a"));
    assert_null(rdv_msg_get_str(m.body, "zz"));
    assert_null(rdv_msg_get_str(NULL, "id"));
    assert_null(rdv_msg_get_str(m.body, NULL));
    int64_t v = 77;
    assert_true(rdv_msg_get_int(m.body, "a", &v));
    assert_int_equal(v, 1);
    assert_true(rdv_msg_get_int(m.body, "b", &v));
    assert_int_equal(v, 1);
    assert_false(rdv_msg_get_int(m.body, "c", &v));
    assert_false(rdv_msg_get_int(m.body, "d", &v));
    assert_true(rdv_msg_get_int(m.body, "e", &v));
    assert_true(v == -9007199254740991LL);
    assert_false(rdv_msg_get_int(m.body, "f", &v)); /* beyond int64 */
    assert_true(rdv_msg_get_int(m.body, "g", &v));
    assert_int_equal(v, 0);
    assert_false(rdv_msg_get_int(m.body, "h", &v));
    assert_false(rdv_msg_get_int(m.body, "i", &v)); /* rounds to 2^63 */
    assert_false(rdv_msg_get_int(m.body, "zz", &v));
    assert_false(rdv_msg_get_int(NULL, "a", &v));
    assert_false(rdv_msg_get_int(m.body, "a", NULL));
    rdv_msg_free(&m);

    json_t *b = json_pack("{s:I}", "n", (json_int_t)INT64_MAX);
    assert_true(rdv_msg_get_int(b, "n", &v));
    assert_true(v == INT64_MAX);
    json_decref(b);
}

static void test_wrap_dump(void **state)
{
    (void)state;
    /* Bodies are stolen even on failure (LSan checks). */
    assert_null(rdv_msg_wrap(RDV_MSG_UNKNOWN, json_object()));
    assert_null(rdv_msg_wrap(RDV_MSG__COUNT, json_object()));
    assert_null(rdv_msg_wrap(RDV_MSG_PING, json_array()));
    assert_null(rdv_msg_wrap(RDV_MSG_PING, NULL));
    json_t *env = rdv_msg_wrap(RDV_MSG_PING, json_pack("{s:s}", "id", "x"));
    assert_non_null(env);
    size_t len = 0;
    char *s = rdv_msg_dump(env, &len);
    assert_non_null(s);
    assert_string_equal(s, "{\"ping\":{\"id\":\"x\"}}");
    assert_int_equal(len, strlen(s));
    free(s);
    s = rdv_msg_dump(env, NULL);
    assert_non_null(s);
    free(s);
    json_decref(env);
    assert_null(rdv_msg_dump(NULL, &len));
}

/* ------------------------------------------------------------------------ */
/* Error codes and the error builder                                        */
/* ------------------------------------------------------------------------ */

static void test_error_codes(void **state)
{
    (void)state;
    for (int c = 1; c < RDV_EC__COUNT; c++) {
        const char *n = rdv_ec_name((rdv_ec)c);
        assert_non_null(n);
        assert_int_equal(rdv_ec_from_name(n, strlen(n)), c);
        const char *h = rdv_ec_hint((rdv_ec)c);
        assert_non_null(h);
        assert_true(strlen(h) > 10 && strlen(h) <= RDV_MAX_TEXT);
        for (int d = 1; d < c; d++) {
            assert_string_not_equal(n, rdv_ec_name((rdv_ec)d));
            assert_string_not_equal(h, rdv_ec_hint((rdv_ec)d));
        }
        /* [a-z_]{1,32} */
        assert_true(strlen(n) >= 1 && strlen(n) <= 32);
        assert_int_equal(strspn(n, "abcdefghijklmnopqrstuvwxyz_"), strlen(n));
    }
    assert_string_equal(rdv_ec_name(RDV_EC_PEER_OFFLINE), "peer_offline");
    assert_true(strstr(rdv_ec_hint(RDV_EC_PEER_OFFLINE), "retry") != NULL);
    assert_string_equal(rdv_ec_name(RDV_EC__COUNT), "internal");
    assert_string_equal(rdv_ec_name((rdv_ec)-3), "internal");
    assert_non_null(rdv_ec_hint(RDV_EC__COUNT));
    assert_int_equal(rdv_ec_from_name("nope", 4), RDV_EC_NONE);
    assert_int_equal(rdv_ec_from_name("none", 4), RDV_EC_NONE);
    assert_int_equal(rdv_ec_from_name("bad_jsonx", 8), RDV_EC_BAD_JSON);
    assert_int_equal(rdv_ec_from_name("bad_json", 7), RDV_EC_NONE);
    assert_int_equal(rdv_ec_from_name(NULL, 0), RDV_EC_NONE);
    assert_int_equal(rdv_ec_from_name("", 0), RDV_EC_NONE);
}

/* Parses an error text and checks code / message / ref. */
static void check_error_text(char *s, size_t len, const char *code,
                             const char *message, const char *ref)
{
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    rdv_msg m;
    rdv_msg_error err;
    int rc = fx_parse(s, len, RDV_MAX_MESSAGE_BYTES, &m, &err);
    CHECK(rc == 0, "%s: %s %s", s, err.field, err.detail);
    assert_int_equal(m.type, RDV_MSG_ERROR);
    assert_string_equal(rdv_msg_get_str(m.body, "code"), code);
    if (message)
        assert_string_equal(rdv_msg_get_str(m.body, "message"), message);
    if (ref)
        assert_string_equal(rdv_msg_get_str(m.body, "ref"), ref);
    else
        assert_null(rdv_msg_get_str(m.body, "ref"));
    rdv_msg_free(&m);
    free(s);
}

static void test_build_error(void **state)
{
    (void)state;
    size_t len = 0;
    for (int c = 1; c < RDV_EC__COUNT; c++) {
        char *s = rdv_msg_build_error((rdv_ec)c, NULL, NULL, &len);
        check_error_text(s, len, rdv_ec_name((rdv_ec)c), rdv_ec_hint((rdv_ec)c),
                         NULL);
        s = rdv_msg_build_error((rdv_ec)c, "custom \"quoted\" \xc3\xa9", FX_SESSION,
                                &len);
        check_error_text(s, len, rdv_ec_name((rdv_ec)c),
                         "custom \"quoted\" \xc3\xa9", FX_SESSION);
    }
    char *s = rdv_msg_build_error(RDV_EC_NONE, "m", NULL, &len);
    check_error_text(s, len, "internal", "m", NULL);
    s = rdv_msg_build_error(RDV_EC__COUNT, NULL, NULL, &len);
    check_error_text(s, len, "internal", NULL, NULL);

    /* Too long: cut to 512 characters (é is 2 bytes each). */
    char longmsg[700 * 2 + 1] = "";
    for (int i = 0; i < 700; i++)
        strcat(longmsg, "\xc3\xa9");
    s = rdv_msg_build_error(RDV_EC_INTERNAL, longmsg, NULL, &len);
    assert_non_null(s);
    longmsg[RDV_MAX_TEXT * 2] = '\0';
    check_error_text(s, len, "internal", longmsg, NULL);

    /* Invalid UTF-8 message: the hint instead. */
    s = rdv_msg_build_error(RDV_EC_QUEUE_FULL, "bad \xff text", NULL, &len);
    check_error_text(s, len, "queue_full", rdv_ec_hint(RDV_EC_QUEUE_FULL), NULL);

    /* Unusable refs are left out. */
    s = rdv_msg_build_error(RDV_EC_PEER_OFFLINE, NULL, "", &len);
    check_error_text(s, len, "peer_offline", NULL, NULL);
    char longref[66];
    memset(longref, 'r', 65);
    longref[65] = '\0';
    s = rdv_msg_build_error(RDV_EC_PEER_OFFLINE, NULL, longref, &len);
    check_error_text(s, len, "peer_offline", NULL, NULL);
    longref[64] = '\0';
    s = rdv_msg_build_error(RDV_EC_PEER_OFFLINE, NULL, longref, &len);
    check_error_text(s, len, "peer_offline", NULL, longref);
    s = rdv_msg_build_error(RDV_EC_PEER_OFFLINE, NULL, "\xff", &len);
    check_error_text(s, len, "peer_offline", NULL, NULL);

    /* len may be NULL. */
    s = rdv_msg_build_error(RDV_EC_INTERNAL, NULL, NULL, NULL);
    assert_non_null(s);
    free(s);
}

/* A body that fails validation still reports its type and ref, so the
 * receiver can name them in its error answer; other failures do not. */
static void test_error_type_and_ref(void **state)
{
    (void)state;
    rdv_msg m;
    rdv_msg_error err;
    assert_int_not_equal(
        fx_parse_str("{\"lookup\":{\"requestID\":\"r-7\",\"nodeIDs\":[\"XYZ\"]}}", &m, &err), 0);
    assert_int_equal(err.code, RDV_EC_INVALID_FIELD);
    assert_int_equal(err.type, RDV_MSG_LOOKUP);
    assert_string_equal(err.ref, "r-7");
    assert_int_not_equal(
        fx_parse_str("{\"relayData\":{\"sessionID\":\"6f9619ff-8b86-4d01-b42d-00cf4fc964ff\"}}",
                     &m, &err), 0);
    assert_int_equal(err.code, RDV_EC_MISSING_FIELD);
    assert_int_equal(err.type, RDV_MSG_RELAY_DATA);
    assert_string_equal(err.ref, "6f9619ff-8b86-4d01-b42d-00cf4fc964ff");
    /* a ref too long to echo is left out */
    char big[200];
    snprintf(big, sizeof big, "{\"watch\":{\"requestID\":\"%0100d\"}}", 0);
    assert_int_not_equal(fx_parse_str(big, &m, &err), 0);
    assert_int_equal(err.type, RDV_MSG_WATCH);
    assert_string_equal(err.ref, "");
    assert_int_not_equal(fx_parse_str("{\"nosuch\":{}}", &m, &err), 0);
    assert_int_equal(err.type, RDV_MSG_UNKNOWN);
    assert_int_not_equal(fx_parse_str("[1]", &m, &err), 0);
    assert_int_equal(err.type, RDV_MSG_UNKNOWN);
    assert_string_equal(err.ref, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_all_types_valid),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_wrong_json_types),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_text_lengths),
        cmocka_unit_test(test_base64_long),
        cmocka_unit_test(test_nodeids_count),
        cmocka_unit_test(test_to_equals_from),
        cmocka_unit_test(test_validate_args),
        cmocka_unit_test(test_text_cases),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_unknown_type_field),
        cmocka_unit_test(test_unknown_fields_kept),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_wrap_dump),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_build_error),
        cmocka_unit_test(test_error_type_and_ref),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
