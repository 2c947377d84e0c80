/* test_sign.c - signatures (sign.c): signing input layout, a known-answer
 * vector made with an independent implementation (Python `cryptography`),
 * tampering with every field, unknown fields, cross-type replay, malformed
 * signatures, number forms, freshness and the clock. */
#include <stdio.h>
#include <stdlib.h>

#include "fixtures.h"

#include "schema/jcs.h"

static fx_keys key_a, key_b;

static int setup(void **state)
{
    (void)state;
    fx_key(&key_a, 0x01);
    fx_key(&key_b, 0x02);
    return 0;
}

static const char *sender_field(rdv_msg_type t)
{
    return t == RDV_MSG_HELLO ? "nodeID" : "fromNodeID";
}

/* ------------------------------------------------------------------------ */
/* Known answer                                                             */
/* ------------------------------------------------------------------------ */

/* RFC 8032 section 7.1 TEST 1 key. */
#define KAT_SEED "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define KAT_PK "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define KAT_TO "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
#define KAT_CANON                                                          \
    "{\"e2eKey\":\"" FX_KEY32 "\",\"fromNodeID\":\"" KAT_PK "\","          \
    "\"sessionID\":\"" FX_SESSION "\",\"timestamp\":1700000000000,"        \
    "\"toNodeID\":\"" KAT_TO "\",\"zUnknown\":{\"a\":null,\"b\":[1,\"\xc3\xa9\"]}}"
#define KAT_SIG                                                            \
    "f0665a797eaf1f72fb2060417dfec7fb9a7596e8e1518c40a41da7624f443904"     \
    "541e7ffa264a809464db4c0f7a30a4a038ca7d0ef15c6550f347c63ffe8f730c"

static void test_known_answer(void **state)
{
    (void)state;
    /* The message as another implementation would send it: members in
     * another order, whitespace, the timestamp written as 1.7e12, a
     * non-ASCII character escaped. */
    const char *text =
        "{\"relayOpen\": {\"zUnknown\": {\"b\": [1.0, \"\\u00e9\"], \"a\": null},"
        " \"toNodeID\": \"" KAT_TO "\", \"timestamp\": 1.7e12,"
        " \"signature\": \"" KAT_SIG "\", \"sessionID\": \"" FX_SESSION "\","
        " \"fromNodeID\": \"" KAT_PK "\", \"e2eKey\": \"" FX_KEY32 "\"}}";
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(fx_parse_str(text, &m, &err), 0);
    assert_int_equal(m.type, RDV_MSG_RELAY_OPEN);
    assert_int_equal(rdv_sig_verify_from(m.type, m.body, "fromNodeID"), 0);

    uint8_t *input = NULL;
    size_t len = 0;
    assert_int_equal(rdv_sig_input(m.type, m.body, &input, &len), 0);
    const char prefix[] = "rendezvous.v1/relayOpen"; /* + 0x00 */
    assert_int_equal(len, sizeof prefix + strlen(KAT_CANON));
    assert_memory_equal(input, prefix, sizeof prefix); /* includes the NUL */
    assert_memory_equal(input + sizeof prefix, KAT_CANON, strlen(KAT_CANON));
    free(input);

    /* Signing the same body with the same key gives the same signature
     * (Ed25519 is deterministic). */
    uint8_t seed[32], pk[32], sk[64];
    size_t bl;
    assert_int_equal(sodium_hex2bin(seed, 32, KAT_SEED, 64, NULL, &bl, NULL), 0);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    char id[65];
    rdv_node_id_from_pk(pk, id);
    assert_string_equal(id, KAT_PK);
    json_t *copy = json_deep_copy(m.body);
    assert_int_equal(json_object_del(copy, "signature"), 0);
    assert_int_equal(rdv_sig_sign(RDV_MSG_RELAY_OPEN, copy, sk), 0);
    assert_string_equal(rdv_msg_get_str(copy, "signature"), KAT_SIG);
    json_decref(copy);

    /* The same body built in C with integers signs identically. */
    json_t *built = json_pack(
        "{s:s, s:s, s:s, s:I, s:s, s:{s:n, s:[i, s]}}", "fromNodeID", KAT_PK,
        "toNodeID", KAT_TO, "sessionID", FX_SESSION, "timestamp",
        (json_int_t)1700000000000LL, "e2eKey", FX_KEY32, "zUnknown", "a", "b",
        1, "\xc3\xa9");
    assert_non_null(built);
    assert_int_equal(rdv_sig_sign(RDV_MSG_RELAY_OPEN, built, sk), 0);
    assert_string_equal(rdv_msg_get_str(built, "signature"), KAT_SIG);
    json_decref(built);
    rdv_msg_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Input layout and arguments                                               */
/* ------------------------------------------------------------------------ */

static void test_sig_input_layout(void **state)
{
    (void)state;
    json_t *body = json_pack("{s:i, s:s, s:s}", "b", 1, "a", "x", "signature",
                             "whatever");
    uint8_t *in = NULL;
    size_t len = 0;
    assert_int_equal(rdv_sig_input(RDV_MSG_ICE_CANDIDATE, body, &in, &len), 0);
    const char want[] = "rendezvous.v1/iceCandidate\0{\"a\":\"x\",\"b\":1}";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(in, want, len);
    free(in);
    /* The body itself is untouched. */
    assert_string_equal(rdv_msg_get_str(body, "signature"), "whatever");
    assert_int_equal(json_object_size(body), 3);

    /* Without a signature member: the same bytes. */
    assert_int_equal(json_object_del(body, "signature"), 0);
    assert_int_equal(rdv_sig_input(RDV_MSG_ICE_CANDIDATE, body, &in, &len), 0);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(in, want, len);
    free(in);

    /* Empty body. */
    json_t *empty = json_object();
    assert_int_equal(rdv_sig_input(RDV_MSG_HELLO, empty, &in, &len), 0);
    assert_int_equal(len, strlen("rendezvous.v1/hello") + 1 + 2);
    assert_memory_equal(in, "rendezvous.v1/hello\0{}", len);
    free(in);

    /* Errors leave *out NULL. */
    in = (uint8_t *)"x";
    assert_int_equal(rdv_sig_input(RDV_MSG_UNKNOWN, body, &in, &len),
                     -RDV_EC_UNSUPPORTED_TYPE);
    assert_null(in);
    json_t *arr = json_array();
    assert_int_equal(rdv_sig_input(RDV_MSG_OFFER, arr, &in, &len),
                     -RDV_EC_BAD_MESSAGE);
    assert_int_equal(rdv_sig_input(RDV_MSG_OFFER, NULL, &in, &len),
                     -RDV_EC_BAD_MESSAGE);
    assert_int_equal(rdv_sig_input(RDV_MSG_OFFER, body, NULL, &len),
                     -RDV_EC_INTERNAL);
    assert_int_equal(rdv_sig_input(RDV_MSG_OFFER, body, &in, NULL),
                     -RDV_EC_INTERNAL);
    json_decref(arr);
    json_decref(empty);
    json_decref(body);
}

static void test_sign_args(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_PING, &key_a, &key_b, true);
    assert_int_equal(rdv_sig_sign(RDV_MSG_PING, body, key_a.sk),
                     -RDV_EC_UNSUPPORTED_TYPE);
    assert_null(json_object_get(body, "signature"));
    assert_int_equal(rdv_sig_verify(RDV_MSG_PING, body, key_a.pk),
                     -RDV_EC_UNSUPPORTED_TYPE);
    assert_int_equal(rdv_sig_sign(RDV_MSG_UNKNOWN, body, key_a.sk),
                     -RDV_EC_UNSUPPORTED_TYPE);
    json_decref(body);

    body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    assert_int_equal(rdv_sig_sign(RDV_MSG_OFFER, body, NULL), -RDV_EC_INTERNAL);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, NULL), -RDV_EC_INTERNAL);
    json_t *arr = json_array();
    assert_int_equal(rdv_sig_sign(RDV_MSG_OFFER, arr, key_a.sk),
                     -RDV_EC_BAD_MESSAGE);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, arr, key_a.pk),
                     -RDV_EC_BAD_MESSAGE);
    json_decref(arr);

    /* Re-signing replaces the signature (and it still verifies). */
    char old[RDV_SIG_HEXLEN + 1];
    strcpy(old, rdv_msg_get_str(body, "signature"));
    assert_int_equal(json_object_set_new(body, "timestamp",
                                         json_integer(rdv_now_ms() + 1)), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                     -RDV_EC_BAD_SIGNATURE);
    assert_int_equal(rdv_sig_sign(RDV_MSG_OFFER, body, key_a.sk), 0);
    assert_string_not_equal(old, rdv_msg_get_str(body, "signature"));
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk), 0);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Every signed type                                                        */
/* ------------------------------------------------------------------------ */

static void test_all_signed_types(void **state)
{
    (void)state;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        if (!rdv_msg_type_is_signed((rdv_msg_type)t))
            continue;
        for (int opt = 0; opt <= 1; opt++) {
            json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_b, opt);
            const char *sig = rdv_msg_get_str(body, "signature");
            assert_non_null(sig);
            assert_true(rdv_hex_valid(sig, strlen(sig), RDV_SIG_HEXLEN));
            assert_int_equal(rdv_sig_verify((rdv_msg_type)t, body, key_a.pk), 0);
            assert_int_equal(rdv_sig_verify_from((rdv_msg_type)t, body,
                                                 sender_field((rdv_msg_type)t)),
                             0);
            /* Wrong key. */
            assert_int_equal(rdv_sig_verify((rdv_msg_type)t, body, key_b.pk),
                             -RDV_EC_BAD_SIGNATURE);
            /* Another type's tag: cross-type replay fails. */
            for (int u = 1; u < RDV_MSG__COUNT; u++) {
                if (u == t || !rdv_msg_type_is_signed((rdv_msg_type)u))
                    continue;
                assert_int_equal(rdv_sig_verify((rdv_msg_type)u, body, key_a.pk),
                                 -RDV_EC_BAD_SIGNATURE);
            }
            json_decref(body);
        }
    }
}

/* An offer's signature replayed as an answer (same body, other type). */
static void test_offer_replayed_as_answer(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, "fromNodeID"), 0);
    /* The answer is a perfectly valid message... */
    rdv_msg_error err;
    assert_int_equal(rdv_msg_validate(RDV_MSG_ANSWER, body, &err), 0);
    /* ...whose signature does not verify. */
    size_t len;
    char *text = fx_text(RDV_MSG_ANSWER, body, &len);
    rdv_msg m;
    assert_int_equal(fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, &err), 0);
    assert_int_equal(m.type, RDV_MSG_ANSWER);
    assert_int_equal(rdv_sig_verify_from(m.type, m.body, "fromNodeID"),
                     -RDV_EC_BAD_SIGNATURE);
    rdv_msg_free(&m);
    free(text);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Tampering                                                                */
/* ------------------------------------------------------------------------ */

/* Changes a scalar in place into a different value of the same type. */
static json_t *mutated(const json_t *v)
{
    if (json_is_string(v)) {
        char buf[1024];
        size_t n = json_string_length(v);
        assert_true(n + 2 < sizeof buf);
        memcpy(buf, json_string_value(v), n);
        if (n == 0) {
            buf[n++] = 'x';
        } else {
            char c = buf[n - 1];
            buf[n - 1] = c == '0' ? '1' : c == '5' ? '6' : '0';
        }
        return json_stringn(buf, n);
    }
    if (json_is_integer(v))
        return json_integer(json_integer_value(v) + 1);
    if (json_is_real(v))
        return json_real(json_real_value(v) + 1);
    if (json_is_boolean(v))
        return json_boolean(!json_is_true(v));
    if (json_is_null(v))
        return json_false();
    fail_msg("unexpected value type");
    return NULL;
}

/* Recursively changes each leaf of `cur` (a part of `root`) and each member
 * presence, checking that the signature of root no longer verifies. */
static int tamper_walk(rdv_msg_type t, json_t *root, json_t *cur,
                       const char *path)
{
    int n = 0;
    if (json_is_object(cur)) {
        /* Copy the keys first: the object is modified while walking. */
        char keys[32][64];
        size_t nk = 0;
        const char *key;
        json_t *v;
        json_object_foreach(cur, key, v) {
            assert_true(nk < 32 && strlen(key) < 64);
            strcpy(keys[nk++], key);
        }
        for (size_t i = 0; i < nk; i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s/%s", path, keys[i]);
            v = json_incref(json_object_get(cur, keys[i]));
            assert_non_null(v);
            if (json_is_object(v) || json_is_array(v)) {
                n += tamper_walk(t, root, v, sub);
            } else {
                /* Changed value (for fromNodeID: verified with the changed
                 * key, which is still refused). */
                assert_int_equal(json_object_set_new(cur, keys[i], mutated(v)), 0);
                int rc = rdv_sig_verify_from(t, root, sender_field(t));
                if (rc != -RDV_EC_BAD_SIGNATURE)
                    fail_msg("changing %s: rc %d", sub, rc);
                assert_int_equal(json_object_set(cur, keys[i], v), 0);
                n++;
            }
            /* Member removed. */
            assert_int_equal(json_object_del(cur, keys[i]), 0);
            if (rdv_sig_verify(t, root, key_a.pk) != -RDV_EC_BAD_SIGNATURE)
                fail_msg("removing %s still verifies", sub);
            assert_int_equal(json_object_set(cur, keys[i], v), 0);
            json_decref(v);
            assert_int_equal(rdv_sig_verify(t, root, key_a.pk), 0);
            n++;
        }
    } else if (json_is_array(cur)) {
        for (size_t i = 0; i < json_array_size(cur); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s/%zu", path, i);
            json_t *v = json_array_get(cur, i);
            if (json_is_object(v) || json_is_array(v)) {
                n += tamper_walk(t, root, v, sub);
                continue;
            }
            json_incref(v);
            assert_int_equal(json_array_set_new(cur, i, mutated(v)), 0);
            assert_int_equal(rdv_sig_verify(t, root, key_a.pk),
                             -RDV_EC_BAD_SIGNATURE);
            assert_int_equal(json_array_set_new(cur, i, v), 0);
            n++;
        }
    }
    return n;
}

static void test_tamper_every_field(void **state)
{
    (void)state;
    for (int t = 1; t < RDV_MSG__COUNT; t++) {
        if (!rdv_msg_type_is_signed((rdv_msg_type)t))
            continue;
        json_t *body = fx_body((rdv_msg_type)t, &key_a, &key_b, true);
        /* Include a nested unknown field so arrays are walked too. */
        json_t *extra = json_pack("{s:[i, s, b, n, {s:s}]}", "list", 1, "two", 1,
                                  "k", "v");
        assert_int_equal(json_object_set_new(body, "zExtra", extra), 0);
        assert_int_equal(rdv_sig_sign((rdv_msg_type)t, body, key_a.sk), 0);
        assert_int_equal(rdv_sig_verify((rdv_msg_type)t, body, key_a.pk), 0);
        int n = tamper_walk((rdv_msg_type)t, body, body, "");
        assert_true(n >= 10);
        assert_int_equal(rdv_sig_verify((rdv_msg_type)t, body, key_a.pk), 0);
        json_decref(body);
    }
}

/* Changing one hex digit of the signature, or any bit of it. */
static void test_tamper_signature(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    char sig[RDV_SIG_HEXLEN + 1];
    strcpy(sig, rdv_msg_get_str(body, "signature"));
    for (size_t i = 0; i < RDV_SIG_HEXLEN; i++) {
        char bad[RDV_SIG_HEXLEN + 1];
        strcpy(bad, sig);
        bad[i] = bad[i] == '0' ? '8' : '0';
        assert_int_equal(json_object_set_new(body, "signature", json_string(bad)), 0);
        assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                         -RDV_EC_BAD_SIGNATURE);
    }
    assert_int_equal(json_object_set_new(body, "signature", json_string(sig)), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk), 0);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Malformed signatures                                                     */
/* ------------------------------------------------------------------------ */

static void test_malformed_signature(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    char sig[RDV_SIG_HEXLEN + 1];
    strcpy(sig, rdv_msg_get_str(body, "signature"));
    char upper[RDV_SIG_HEXLEN + 1];
    for (size_t i = 0; i <= RDV_SIG_HEXLEN; i++)
        upper[i] = (sig[i] >= 'a' && sig[i] <= 'f') ? (char)(sig[i] - 32) : sig[i];
    char shortsig[RDV_SIG_HEXLEN];
    memcpy(shortsig, sig, RDV_SIG_HEXLEN - 1);
    shortsig[RDV_SIG_HEXLEN - 1] = '\0';
    char longsig[RDV_SIG_HEXLEN + 3];
    snprintf(longsig, sizeof longsig, "%s00", sig);

    json_t *bad[] = {json_string(upper), json_string(shortsig),
                     json_string(longsig), json_string(""), json_integer(1),
                     json_null(), json_true(), json_array(), json_object(),
                     json_stringn(sig, RDV_SIG_HEXLEN - 2)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_non_null(bad[i]);
        assert_int_equal(json_object_set_new(body, "signature", bad[i]), 0);
        assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                         -RDV_EC_BAD_SIGNATURE);
    }
    /* Missing. */
    assert_int_equal(json_object_del(body, "signature"), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                     -RDV_EC_BAD_SIGNATURE);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, "fromNodeID"),
                     -RDV_EC_BAD_SIGNATURE);
    /* All-zero signature of the right form. */
    char zeros[RDV_SIG_HEXLEN + 1];
    memset(zeros, '0', RDV_SIG_HEXLEN);
    zeros[RDV_SIG_HEXLEN] = '\0';
    assert_int_equal(json_object_set_new(body, "signature", json_string(zeros)), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                     -RDV_EC_BAD_SIGNATURE);
    json_decref(body);
}

static void test_verify_from_key_field(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    /* The recipient's key is not the signer's. */
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, "toNodeID"),
                     -RDV_EC_BAD_SIGNATURE);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, "nope"),
                     -RDV_EC_BAD_SIGNATURE);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, "timestamp"),
                     -RDV_EC_BAD_SIGNATURE);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, NULL),
                     -RDV_EC_BAD_SIGNATURE);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, NULL, "fromNodeID"),
                     -RDV_EC_BAD_SIGNATURE);
    /* An uppercase sender ID is not a node ID. */
    char up[RDV_NODE_ID_HEXLEN + 1];
    for (size_t i = 0; i <= RDV_NODE_ID_HEXLEN; i++)
        up[i] = (key_a.id[i] >= 'a' && key_a.id[i] <= 'f') ? (char)(key_a.id[i] - 32)
                                                           : key_a.id[i];
    assert_int_equal(json_object_set_new(body, "fromNodeID", json_string(up)), 0);
    assert_int_equal(rdv_sig_verify_from(RDV_MSG_OFFER, body, "fromNodeID"),
                     -RDV_EC_BAD_SIGNATURE);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Unknown fields and number forms                                          */
/* ------------------------------------------------------------------------ */

static void test_unknown_fields(void **state)
{
    (void)state;
    /* Added after signing: the signature no longer verifies. */
    json_t *body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    assert_int_equal(json_object_set_new(body, "added", json_string("later")), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                     -RDV_EC_BAD_SIGNATURE);
    json_decref(body);

    /* Inside a known object too. */
    body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    assert_int_equal(json_object_set_new(json_object_get(body, "connectionInfo"),
                                         "added", json_true()), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk),
                     -RDV_EC_BAD_SIGNATURE);
    json_decref(body);

    /* Present at signing: verifies, survives a text round trip, and still
     * verifies after it. */
    body = fx_body(RDV_MSG_OFFER, &key_a, &key_b, true);
    /* Reals, so json_equal holds after parsing (which yields reals). */
    json_t *future = json_pack("{s:s, s:[f, f, s]}", "\xe2\x82\xac", "euro",
                               "list", 3.0, 0.5, "\xf0\x9f\x98\x80");
    assert_non_null(future);
    assert_int_equal(json_object_set_new(body, "future", future), 0);
    assert_int_equal(rdv_sig_sign(RDV_MSG_OFFER, body, key_a.sk), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_OFFER, body, key_a.pk), 0);
    size_t len;
    char *text = fx_text(RDV_MSG_OFFER, body, &len);
    rdv_msg m;
    rdv_msg_error err;
    assert_int_equal(fx_parse(text, len, RDV_MAX_MESSAGE_BYTES, &m, &err), 0);
    assert_non_null(json_object_get(m.body, "future"));
    assert_true(json_equal(json_object_get(m.body, "future"), future));
    assert_int_equal(rdv_sig_verify_from(m.type, m.body, "fromNodeID"), 0);
    rdv_msg_free(&m);
    free(text);
    json_decref(body);
}

/* 1, 1.0 and 1e0 are one value: the signature covers the value, not the
 * spelling. */
static void test_number_forms(void **state)
{
    (void)state;
    json_t *body = fx_body(RDV_MSG_RELAY_OPEN, &key_a, &key_b, false);
    assert_int_equal(json_object_set_new(body, "timestamp",
                                         json_integer(1700000000000LL)), 0);
    assert_int_equal(rdv_sig_sign(RDV_MSG_RELAY_OPEN, body, key_a.sk), 0);
    const char *forms[] = {"1700000000000", "1700000000000.0", "1.7e12",
                           "17e11", "1.700000000000E+12", "170000000000000e-2"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text,
                 "{\"relayOpen\":{\"fromNodeID\":\"%s\",\"toNodeID\":\"%s\","
                 "\"sessionID\":\"%s\",\"timestamp\":%s,\"signature\":\"%s\"}}",
                 key_a.id, key_b.id, FX_SESSION, forms[i],
                 rdv_msg_get_str(body, "signature"));
        rdv_msg m;
        rdv_msg_error err;
        assert_int_equal(fx_parse_str(text, &m, &err), 0);
        assert_int_equal(rdv_sig_verify_from(m.type, m.body, "fromNodeID"), 0);
        rdv_msg_free(&m);
    }
    /* A different value fails. */
    assert_int_equal(json_object_set_new(body, "timestamp",
                                         json_real(1700000000001.0)), 0);
    assert_int_equal(rdv_sig_verify(RDV_MSG_RELAY_OPEN, body, key_a.pk),
                     -RDV_EC_BAD_SIGNATURE);
    json_decref(body);
}

/* ------------------------------------------------------------------------ */
/* Freshness and clock                                                      */
/* ------------------------------------------------------------------------ */

static void test_ts_fresh(void **state)
{
    (void)state;
    const int64_t now = 1700000000000LL;
    const int64_t P = RDV_FRESH_PAST_MS, F = RDV_FRESH_FUTURE_MS;
    assert_true(rdv_ts_fresh(now, now, P, F));
    assert_true(rdv_ts_fresh(now - P, now, P, F));
    assert_false(rdv_ts_fresh(now - P - 1, now, P, F)); /* stale */
    assert_true(rdv_ts_fresh(now + F, now, P, F));
    assert_false(rdv_ts_fresh(now + F + 1, now, P, F)); /* future */
    assert_false(rdv_ts_fresh(0, now, P, F));
    /* Server ingress window. */
    const int64_t S = RDV_INGRESS_SKEW_MS;
    assert_true(rdv_ts_fresh(now - S, now, S, S));
    assert_false(rdv_ts_fresh(now - S - 1, now, S, S));
    assert_false(rdv_ts_fresh(now + S + 1, now, S, S));
    /* Zero windows: only now itself. */
    assert_true(rdv_ts_fresh(now, now, 0, 0));
    assert_false(rdv_ts_fresh(now + 1, now, 0, 0));
    assert_false(rdv_ts_fresh(now - 1, now, 0, 0));
    /* Negative windows are refused. */
    assert_false(rdv_ts_fresh(now, now, -1, F));
    assert_false(rdv_ts_fresh(now, now, P, -1));
    /* Extremes do not overflow (UBSan checks). */
    assert_true(rdv_ts_fresh(INT64_MIN, INT64_MIN, P, F));
    assert_true(rdv_ts_fresh(INT64_MAX, INT64_MAX, P, F));
    assert_false(rdv_ts_fresh(INT64_MIN, INT64_MAX, P, F));
    assert_false(rdv_ts_fresh(INT64_MAX, INT64_MIN, P, F));
    assert_false(rdv_ts_fresh(INT64_MIN, 0, INT64_MAX, INT64_MAX));
    assert_true(rdv_ts_fresh(INT64_MIN + 1, 0, INT64_MAX, INT64_MAX));
    assert_true(rdv_ts_fresh(INT64_MAX, 0, INT64_MAX, INT64_MAX));
    assert_true(rdv_ts_fresh(-1, INT64_MIN, INT64_MAX, INT64_MAX));
    assert_false(rdv_ts_fresh(0, INT64_MIN, INT64_MAX, INT64_MAX));
}

/* A signed message that is stale or from the future: the signature holds,
 * freshness fails. */
static void test_stale_signed(void **state)
{
    (void)state;
    int64_t now = rdv_now_ms();
    int64_t offsets[] = {-RDV_FRESH_PAST_MS - 1000, RDV_FRESH_FUTURE_MS + 1000,
                         -1000, 1000};
    bool fresh[] = {false, false, true, true};
    for (size_t i = 0; i < 4; i++) {
        json_t *body = fx_body(RDV_MSG_ICE_CANDIDATE, &key_a, &key_b, true);
        assert_int_equal(json_object_set_new(body, "timestamp",
                                             json_integer(now + offsets[i])), 0);
        assert_int_equal(rdv_sig_sign(RDV_MSG_ICE_CANDIDATE, body, key_a.sk), 0);
        assert_int_equal(rdv_sig_verify(RDV_MSG_ICE_CANDIDATE, body, key_a.pk), 0);
        int64_t ts = 0;
        assert_true(rdv_msg_get_int(body, "timestamp", &ts));
        assert_int_equal(rdv_ts_fresh(ts, rdv_now_ms(), RDV_FRESH_PAST_MS,
                                      RDV_FRESH_FUTURE_MS),
                         fresh[i]);
        json_decref(body);
    }
}

static void test_now_ms(void **state)
{
    (void)state;
    int64_t a = rdv_now_ms();
    int64_t b = rdv_now_ms();
    assert_true(a > 1600000000000LL);   /* after 2020 */
    assert_true(a < 9007199254740991LL); /* a valid Timestamp */
    assert_true(b - a >= -1000 && b - a < 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_sig_input_layout),
        cmocka_unit_test(test_sign_args),
        cmocka_unit_test(test_all_signed_types),
        cmocka_unit_test(test_offer_replayed_as_answer),
        cmocka_unit_test(test_tamper_every_field),
        cmocka_unit_test(test_tamper_signature),
        cmocka_unit_test(test_malformed_signature),
        cmocka_unit_test(test_verify_from_key_field),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_number_forms),
        cmocka_unit_test(test_ts_fresh),
        cmocka_unit_test(test_stale_signed),
        cmocka_unit_test(test_now_ms),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
