/* fixtures.h - shared test fixtures for the codec tests: deterministic
 * Ed25519 identities and one valid body of every message type, with or
 * without its optional fields, signed when the type is signed.
 * Header-only (static inline) so each test binary stays one source file. */
#ifndef RDV_TESTS_CODEC_FIXTURES_H
#define RDV_TESTS_CODEC_FIXTURES_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>

#include "schema/ids.h"
#include "schema/wire_limits.h"
#include "schema/message.h"
#include "schema/sign.h"

#define FX_SESSION "0f8fad5b-d9cb-469f-a165-70867728950e"
#define FX_NONCE "6a09e667f3bcc908b2fb1366ea957d3e3adec17512775099da2f590b0667322a"
#define FX_KEY32 "bb67ae8584caa73b3c6ef372fe94f82ba54ff53a5f1d36f1510e527fade682d1"

typedef struct fx_keys {
    uint8_t pk[RDV_NODE_ID_BYTES];
    uint8_t sk[RDV_SECRET_KEY_BYTES];
    char id[RDV_NODE_ID_HEXLEN + 1];
} fx_keys;

/* A deterministic identity from a seed of 32 copies of `seed_byte`. */
static inline void fx_key(fx_keys *k, uint8_t seed_byte)
{
    uint8_t seed[RDV_SEED_BYTES];
    assert_true(sodium_init() >= 0);
    memset(seed, seed_byte, sizeof seed);
    assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
    rdv_node_id_from_pk(k->pk, k->id);
}

static inline void fx_set(json_t *obj, const char *key, json_t *v)
{
    assert_non_null(v);
    assert_int_equal(json_object_set_new(obj, key, v), 0);
}

/* A valid body of `type` sent by `a` (to `b` where there is a recipient).
 * `optional` adds every optional field of the type. Signed types are
 * signed with a's key, with timestamp `now`. Caller owns the result. */
static inline json_t *fx_body(rdv_msg_type type, const fx_keys *a,
                              const fx_keys *b, bool optional)
{
    json_int_t now = (json_int_t)rdv_now_ms();
    json_t *body = NULL;
    switch (type) {
    case RDV_MSG_CHALLENGE:
        body = json_pack("{s:s, s:s, s:i, s:I}", "nonce", FX_NONCE, "server",
                         "rdv.example.net", "version", 1, "serverTime", now);
        break;
    case RDV_MSG_HELLO:
        body = json_pack("{s:s, s:s, s:s, s:I}", "nodeID", a->id, "nonce",
                         FX_NONCE, "server", "rdv.example.net", "timestamp", now);
        if (body && optional) {
            fx_set(body, "natType", json_string("portRestricted"));
            fx_set(body, "software", json_string("librendezvous/0.1.0"));
        }
        break;
    case RDV_MSG_WELCOME: {
        json_t *limits = json_pack(
            "{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "maxMessageBytes", 65536,
            "messagesPerSecond", 50, "messageBurst", 100, "offlineTtlMs", 60000,
            "offlineQueueMax", 64, "maxWatches", 1024, "pingIntervalMs", 20000,
            "idleTimeoutMs", 60000);
        assert_non_null(limits);
        if (optional) {
            fx_set(limits, "freshPastMs", json_integer(120000));
            fx_set(limits, "freshFutureMs", json_integer(30000));
            fx_set(limits, "maxRelaySessions", json_integer(8));
            fx_set(limits, "maxRelayPayload", json_integer(16384));
            fx_set(limits, "relayBytesPerSecond", json_integer(1048576));
        }
        body = json_pack("{s:s, s:s, s:i, s:I, s:o}", "nodeID", a->id,
                         "observedIP", "203.0.113.5", "observedPort", 40000,
                         "serverTime", now, "limits", limits);
        break;
    }
    case RDV_MSG_OFFER:
    case RDV_MSG_ANSWER: {
        json_t *ci = json_pack("{s:s, s:i, s:s, s:i, s:s}", "publicIP",
                               "203.0.113.5", "publicPort", 51820, "localIP",
                               "192.168.1.10", "localPort", 51820, "natType",
                               "fullCone");
        assert_non_null(ci);
        if (optional)
            fx_set(ci, "wgPublicKey", json_string(FX_KEY32));
        body = json_pack("{s:s, s:s, s:s, s:I, s:o}", "fromNodeID", a->id,
                         "toNodeID", b->id, "sessionID", FX_SESSION,
                         "timestamp", now, "connectionInfo", ci);
        if (body && optional)
            fx_set(body, "e2eKey", json_string(FX_KEY32));
        break;
    }
    case RDV_MSG_ICE_CANDIDATE: {
        json_t *c = json_pack("{s:s, s:i, s:s, s:I}", "ip", "2001:db8::1",
                              "port", 51820, "type", "serverReflexive",
                              "priority", (json_int_t)1694498815);
        assert_non_null(c);
        if (optional) {
            fx_set(c, "foundation", json_string("1"));
            fx_set(c, "relatedIP", json_string("10.0.0.2"));
            fx_set(c, "relatedPort", json_integer(51820));
        }
        body = json_pack("{s:s, s:s, s:s, s:I, s:o}", "fromNodeID", a->id,
                         "toNodeID", b->id, "sessionID", FX_SESSION,
                         "timestamp", now, "candidate", c);
        break;
    }
    case RDV_MSG_RELAY_OPEN:
    case RDV_MSG_RELAY_READY:
        body = json_pack("{s:s, s:s, s:s, s:I}", "fromNodeID", a->id,
                         "toNodeID", b->id, "sessionID", FX_SESSION,
                         "timestamp", now);
        if (body && optional)
            fx_set(body, "e2eKey", json_string(FX_KEY32));
        break;
    case RDV_MSG_RELAY_DATA:
        body = json_pack("{s:s, s:s}", "sessionID", FX_SESSION, "data",
                         "aGVsbG8gd29ybGQ=");
        break;
    case RDV_MSG_RELAY_CLOSE:
        body = json_pack("{s:s}", "sessionID", FX_SESSION);
        if (body && optional)
            fx_set(body, "reason", json_string("closed_by_peer"));
        break;
    case RDV_MSG_LOOKUP:
    case RDV_MSG_WATCH:
    case RDV_MSG_UNWATCH:
        body = json_pack("{s:[s,s]}", "nodeIDs", b->id, a->id);
        if (body && optional)
            fx_set(body, "requestID", json_string("req-1"));
        break;
    case RDV_MSG_PRESENCE:
        body = json_pack("{s:[{s:s, s:b, s:I, s:s}, {s:s, s:b, s:i, s:s}]}",
                         "peers", "nodeID", b->id, "online", 1, "lastSeen", now,
                         "natType", "symmetric", "nodeID", a->id, "online", 0,
                         "lastSeen", 0, "natType", "unknown");
        if (body && optional)
            fx_set(body, "requestID", json_string("req-1"));
        break;
    case RDV_MSG_PEER_ONLINE:
        body = json_pack("{s:s, s:s, s:I}", "nodeID", b->id, "natType",
                         "restrictedCone", "lastSeen", now);
        break;
    case RDV_MSG_PEER_OFFLINE:
        body = json_pack("{s:s, s:I}", "nodeID", b->id, "lastSeen", now);
        if (body && optional)
            fx_set(body, "natType", json_string("unknown"));
        break;
    case RDV_MSG_QUEUED:
        body = json_pack("{s:s, s:s, s:s, s:I}", "sessionID", FX_SESSION,
                         "toNodeID", b->id, "type", "offer", "expiresAt",
                         now + 60000);
        break;
    case RDV_MSG_ERROR:
        body = json_pack("{s:s, s:s}", "code", "peer_offline", "message",
                         "peer offline: retry when the peer is online");
        if (body && optional) {
            fx_set(body, "ref", json_string(FX_SESSION));
            fx_set(body, "type", json_string("offer"));
            fx_set(body, "field", json_string("toNodeID"));
        }
        break;
    case RDV_MSG_PING:
    case RDV_MSG_PONG:
        body = json_object();
        if (body && optional) {
            fx_set(body, "id", json_string("p1"));
            fx_set(body, "serverTime", json_integer(now));
        }
        break;
    default:
        fail_msg("no fixture for type %d", (int)type);
    }
    assert_non_null(body);
    if (rdv_msg_type_is_signed(type))
        assert_int_equal(rdv_sig_sign(type, body, a->sk), 0);
    return body;
}

/* Wraps a copy of `body` in its envelope and serialises it (malloc'd). */
static inline char *fx_text(rdv_msg_type type, const json_t *body, size_t *len)
{
    json_t *env = rdv_msg_wrap(type, json_deep_copy(body));
    assert_non_null(env);
    char *s = rdv_msg_dump(env, len);
    json_decref(env);
    assert_non_null(s);
    return s;
}

/* Parses exactly buf[0..len) from a heap copy of that size, so ASan catches
 * any read past len. */
static inline int fx_parse(const char *buf, size_t len, size_t max_len,
                           rdv_msg *out, rdv_msg_error *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int rc = rdv_msg_parse(copy, len, max_len, out, err);
    free(copy);
    return rc;
}

static inline int fx_parse_str(const char *s, rdv_msg *out, rdv_msg_error *err)
{
    return fx_parse(s, strlen(s), RDV_MAX_MESSAGE_BYTES, out, err);
}

#endif
