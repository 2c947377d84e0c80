/* test_scan.c - the server's fast path for routed signaling (scan.c):
 * canonical offers, answers and iceCandidates are accepted with the same
 * fields and signing input as the codec's, and everything outside the
 * canonical subset, or failing a field rule, is declined (the server then
 * parses it with the codec). Equivalence on arbitrary bytes is checked by
 * the fuzz target (tests/fuzz/fuzz_message.c). */
#include <stdio.h>
#include <stdlib.h>

#include "fixtures.h"

#include "schema/scan.h"

static fx_keys key_a, key_b;

static int setup(void **state)
{
    (void)state;
    fx_key(&key_a, 0x01);
    fx_key(&key_b, 0x02);
    return 0;
}

/* The canonical text of a signed body of type (optional fields or not),
 * as librendezvous sends it. Caller frees. */
static char *canonical(rdv_msg_type type, bool optional, size_t *len)
{
    json_t *body = fx_body(type, &key_a, &key_b, optional);
    assert_non_null(body);
    json_t *env = rdv_msg_wrap(type, body);
    assert_non_null(env);
    char *text = rdv_msg_dump(env, len);
    json_decref(env);
    assert_non_null(text);
    return text;
}

static bool scan_str(const char *text, rdv_scan *s)
{
    return rdv_scan_signal((const uint8_t *)text, strlen(text), s);
}

/* Accepted, with the codec's type, fields and signing input; verifies. */
static void test_accepts_canonical(void **state)
{
    (void)state;
    const rdv_msg_type types[] = {RDV_MSG_OFFER, RDV_MSG_ANSWER, RDV_MSG_ICE_CANDIDATE};
    for (size_t t = 0; t < 3; t++) {
        for (int opt = 0; opt < 2; opt++) {
            size_t len = 0;
            char *text = canonical(types[t], opt, &len);
            rdv_scan s;
            assert_true(rdv_scan_signal((const uint8_t *)text, len, &s));
            assert_int_equal(s.type, types[t]);
            assert_memory_equal(s.from, key_a.id, RDV_NODE_ID_HEXLEN);
            assert_memory_equal(s.to, key_b.id, RDV_NODE_ID_HEXLEN);
            assert_memory_equal(s.from_id, key_a.pk, RDV_NODE_ID_BYTES);
            assert_memory_equal(s.to_id, key_b.pk, RDV_NODE_ID_BYTES);
            assert_memory_equal(s.sid, FX_SESSION, RDV_UUID_STRLEN);

            rdv_msg m;
            rdv_msg_error err;
            assert_int_equal(rdv_msg_parse((const uint8_t *)text, len, 65536, &m, &err), 0);
            int64_t ts = 0;
            assert_true(rdv_msg_get_int(m.body, "timestamp", &ts));
            assert_int_equal(s.timestamp, ts);
            uint8_t *input = NULL, buf[4096];
            size_t input_len = 0;
            assert_int_equal(rdv_sig_input(m.type, m.body, &input, &input_len), 0);
            size_t n = rdv_scan_sig_input((const uint8_t *)text, &s, buf, sizeof buf);
            assert_int_equal(n, input_len);
            assert_memory_equal(buf, input, n);
            assert_int_equal(rdv_scan_sig_input((const uint8_t *)text, &s, buf, n - 1), 0);
            free(input);
            rdv_msg_free(&m);
            assert_int_equal(rdv_scan_verify((const uint8_t *)text, &s), 0);
            free(text);
        }
    }
}

/* A signature over other bytes fails; unknown members are covered. */
static void test_verify_tampered(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = canonical(RDV_MSG_OFFER, true, &len);
    char *p = strstr(text, "\"localPort\":51820");
    assert_non_null(p);
    p[strlen("\"localPort\":5182")] = '1'; /* 51821: still valid, not signed */
    rdv_scan s;
    assert_true(rdv_scan_signal((const uint8_t *)text, len, &s));
    assert_int_equal(rdv_scan_verify((const uint8_t *)text, &s), -RDV_EC_BAD_SIGNATURE);
    free(text);
}

/* Replaces the first `from` in text by `to` (a new string). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *p = strstr(text, from);
    assert_non_null(p);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    return out;
}

/* Outside the canonical subset, or a field breaking its rule: declined,
 * whether the codec accepts the text or not. */
static void test_declines(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = canonical(RDV_MSG_OFFER, true, &len);
    char ts[32];
    const char *p = strstr(text, "\"timestamp\":");
    assert_non_null(p);
    snprintf(ts, sizeof ts, "%.25s", p); /* "timestamp": and 13 digits */
    char ts_real[40], ts_exp[40];
    snprintf(ts_real, sizeof ts_real, "%s.0", ts);
    snprintf(ts_exp, sizeof ts_exp, "%se0", ts);
    const struct {
        const char *from, *to;
    } edits[] = {
        {"{\"offer\":{", "{ \"offer\":{"},                     /* whitespace */
        {"{\"offer\":{", "{\"offer\": {"},
        {"\"natType\":\"fullCone\"", "\"natType\":\"full\\u0043one\""}, /* escape */
        {"\"localPort\":51820", "\"localPort\":51820.0"},          /* fraction */
        {"\"localPort\":51820", "\"localPort\":5.182e4"},          /* exponent */
        {"\"localPort\":51820", "\"localPort\":051820"},           /* leading 0 */
        {"\"localPort\":51820", "\"localPort\":-0"},               /* -0 */
        {"\"localPort\":51820", "\"localPort\":70000"},            /* range */
        {"\"localPort\":51820", "\"localPort\":\"51820\""},        /* type */
        {"\"localIP\":\"192.168.1.10\"", "\"localIP\":\"192.168.1.300\""},
        {"\"natType\":\"fullCone\"", "\"natType\":\"cone\""},
        {"\"e2eKey\":", "\"zz\":1,\"e2eKey\":"},                  /* unsorted */
        {"\"e2eKey\":", "\"e2eKey\":\"x\",\"e2eKey\":"},          /* duplicate */
        {"\"e2eKey\":\"bb", "\"e2eKey\":\"BB"},                    /* uppercase */
        {"\"sessionID\":\"0f8f", "\"sessionID\":\"0F8F"},
        {"\"fromNodeID\":", "\"fromNodeId\":"},                    /* missing */
        {"\"offer\"", "\"relayOpen\""},                            /* not routed here */
        {"\"offer\"", "\"offers\""},
        {"\"publicIP\":\"203.0.113.5\"", "\"publicIP\":\"203.0.113.\xc3\xa9\""},
        {ts, ts_real},
        {ts, ts_exp},
        {"}}", "}} "},                                              /* trailing */
        {"}}", "}"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *t = replace(text, edits[i].from, edits[i].to);
        rdv_scan s;
        if (scan_str(t, &s))
            fail_msg("edit %zu accepted: %s", i, t);
        free(t);
    }
    /* from == to */
    char *t = replace(text, key_b.id, key_a.id);
    rdv_scan s;
    assert_false(scan_str(t, &s));
    free(t);
    /* truncations of a good message: never accepted */
    for (size_t n = 0; n < len; n++)
        assert_false(rdv_scan_signal((const uint8_t *)text, n, &s));
    free(text);
}

/* Unknown members of any canonical form are skipped and kept. */
static void test_unknown_members(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = canonical(RDV_MSG_OFFER, false, &len);
    char *t = replace(text, "\"toNodeID\"",
                      "\"toA\":[1,-2,true,false,null,{\"a\":[]},\"s\"],\"toNodeID\"");
    char *u = replace(t, "}}", ",\"zz\":{\"y\":{}}}}");
    rdv_scan s;
    assert_true(scan_str(u, &s));
    /* nested deeper than the scanner goes: declined */
    char *d = replace(text, "}}", ",\"zz\":[[[[[[[[[1]]]]]]]]]}}");
    assert_false(scan_str(d, &s));
    free(text);
    free(t);
    free(u);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_canonical),
        cmocka_unit_test(test_verify_tampered),
        cmocka_unit_test(test_declines),
        cmocka_unit_test(test_unknown_members),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
