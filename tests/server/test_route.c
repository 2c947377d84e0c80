/* test_route.c - server_route: routing of signed signaling (PROTOCOL.md 7,
 * 7.1) between two online nodes of a real rendezvousd.
 *
 * Offer delivered byte-identical (odd whitespace, escapes, unknown fields
 * in body and nested objects); answer and iceCandidate routed unchanged;
 * fromNodeID impersonation -> sender_mismatch (also with
 * --verify-signatures off); bad signature -> bad_signature, but routed
 * with --verify-signatures off; stale / future timestamps; toNodeID equal
 * to the sender; missing and invalid fields of signed bodies; an offer
 * signature replayed as an answer. After each refusal the recipient
 * provably received nothing (its next message is a lookup answer).
 */
#include "itest.h"

/* When an error carries `ref`, it must be the message's sessionID. */
static void check_ref(const json_t *err, const char *sid)
{
    const char *ref = json_string_value(json_object_get(err, "ref"));
    if (ref && strcmp(ref, sid) != 0)
        fail_msg("error.ref = %s, expected the sessionID %s", ref, sid);
}

/* An offer written by hand: odd whitespace, escapes, unknown fields in the
 * body and in connectionInfo, and members out of order. */
static char *odd_offer(const rdv_tn *from, const char *to, const char *sid, size_t *len)
{
    static const char fmt[] =
        " {\n  \"offer\" :\t{ \"toNodeID\":\"%s\" ,\"zz-future\" : {\"list\": [1, 2.50, "
        "true, null, \"caf\\u00e9 \\\"q\\\" \\/ \xc3\xa9\"], \"deep\": {\"a\": {}}},\n"
        "   \"fromNodeID\": \"%s\", \"sessionID\":\"%s\", \"timestamp\" : %lld,\n"
        "   \"connectionInfo\": {\"natType\":\"fullCone\", \"publicIP\":\"198.51.100.7\","
        "\"publicPort\":3478,\"localIP\":\"10.0.0.2\",\"localPort\":51820, \"newField\":[]},\n"
        "   \"e2eKey\":\"%s\",\r\n"
        "   \"signature\": \"%s\"  }  }\n";
    char zeros[RDV_SIG_HEXLEN + 1];
    memset(zeros, '0', RDV_SIG_HEXLEN);
    zeros[RDV_SIG_HEXLEN] = '\0';
    long long ts = rdv_now_ms();
    const char *e2e = "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f";
    size_t cap = sizeof fmt + 4 * 64 + RDV_SIG_HEXLEN + 64;
    char *text = malloc(cap);
    snprintf(text, cap, fmt, to, from->id, sid, ts, e2e, zeros);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root)
        fail_msg("odd_offer template is not JSON: %s", jerr.text);
    json_t *body = json_object_get(root, "offer");
    assert_int_equal(rdv_sig_sign(RDV_MSG_OFFER, body, from->sk), 0);
    snprintf(text, cap, fmt, to, from->id, sid, ts, e2e,
             json_string_value(json_object_get(body, "signature")));
    json_decref(root);
    *len = strlen(text);
    return text;
}

static void test_route_offer_byte_identical(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;
    char *text = odd_offer(&alice, bob.id, sid, &len);
    if (rdv_ws_send_text(a, text, len) != 0) {
        free(text);
        fail_msg("send failed");
    }
    int rc = rdv_expect_bytes(b, text, len, T_MS);
    free(text);
    assert_int_equal(rc, 0);
    /* The sender got no reply (no error, no queued). */
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
}

static void test_route_answer_and_ice(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;
    char *msgs[4];
    rdv_ws *from[4] = {a, b, a, b};
    rdv_ws *to[4] = {b, a, b, a};
    msgs[0] = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    msgs[1] = rdv_tn_answer(&bob, alice.id, sid, NULL, &len);
    msgs[2] = rdv_tn_ice(&alice, bob.id, sid, NULL, &len);
    msgs[3] = rdv_tn_ice(&bob, alice.id, sid, NULL, &len);
    for (int i = 0; i < 4; i++) {
        assert_non_null(msgs[i]);
        size_t l = strlen(msgs[i]);
        int rc = rdv_ws_send_text(from[i], msgs[i], l);
        if (rc == 0)
            rc = rdv_expect_bytes(to[i], msgs[i], l, T_MS);
        free(msgs[i]);
        msgs[i] = NULL;
        if (rc != 0) {
            for (int j = i + 1; j < 4; j++)
                free(msgs[j]);
            fail_msg("message %d not routed unchanged", i);
        }
    }
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
}

static void impersonation(rdv_ts_server *s)
{
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *c = itest_join(s, &carol, "carol");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    rdv_tn_forge f = {.from = carol.id};
    size_t len;
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &f, &len));
    check_ref(itest_expect_error(a, "sender_mismatch"), sid);
    /* Same with iceCandidate and answer. */
    itest_send_free(a, rdv_tn_ice(&alice, bob.id, sid, &f, &len));
    itest_expect_error(a, "sender_mismatch");
    itest_send_free(a, rdv_tn_answer(&alice, bob.id, sid, &f, &len));
    itest_expect_error(a, "sender_mismatch");
    /* Nobody received anything; alice is still connected. */
    itest_alive(b, alice.id);
    itest_alive(c, alice.id);
    itest_alive(a, bob.id);
}

static void test_route_impersonation(void **state)
{
    (void)state;
    impersonation(START_DEFAULT());
}

static void test_route_bad_signature(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    rdv_tn_forge f = {.bad_signature = true};
    size_t len;
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &f, &len));
    check_ref(itest_expect_error(a, "bad_signature"), sid);
    itest_send_free(a, rdv_tn_ice(&alice, bob.id, sid, &f, &len));
    itest_expect_error(a, "bad_signature");
    itest_alive(b, alice.id);
    /* The connection stays and a good offer goes through. */
    char *good = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    char *copy = strndup(good, len);
    itest_send_free(a, good);
    int rc = rdv_expect_bytes(b, copy, len, T_MS);
    free(copy);
    assert_int_equal(rc, 0);
}

static void test_route_verify_off(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-signatures", "off");
    {
        rdv_tn alice, bob;
        rdv_ws *a = itest_join(s, &alice, "alice");
        rdv_ws *b = itest_join(s, &bob, "bob");
        rdv_tn_forge f = {.bad_signature = true};
        size_t len;
        char *bad = rdv_tn_offer(&alice, bob.id, NULL, &f, &len);
        char *copy = strndup(bad, len);
        itest_send_free(a, bad);
        int rc = rdv_expect_bytes(b, copy, len, T_MS);
        free(copy);
        assert_int_equal(rc, 0);
        rdv_ws_close(a);
        rdv_ws_close(b);
    }
    /* The sender binding is never skipped. */
    impersonation(s);
}

static void test_route_stale_timestamp(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    const int64_t bad_offsets[] = {-45000, +45000, -200000};
    for (size_t i = 0; i < sizeof bad_offsets / sizeof bad_offsets[0]; i++) {
        rdv_tn_forge f = {.ts_offset_ms = bad_offsets[i]};
        char sid[RDV_UUID_STRLEN + 1];
        rdv_uuid_v4(sid);
        itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &f, &len));
        check_ref(itest_expect_error(a, "stale_timestamp"), sid);
    }
    itest_alive(b, alice.id);
    /* Inside the ingress window (|skew| <= 30 s) is routed. */
    rdv_tn_forge ok = {.ts_offset_ms = -15000};
    char *good = rdv_tn_answer(&alice, bob.id, NULL, &ok, &len);
    char *copy = strndup(good, len);
    itest_send_free(a, good);
    int rc = rdv_expect_bytes(b, copy, len, T_MS);
    free(copy);
    assert_int_equal(rc, 0);
}

static void test_route_to_self(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    size_t len;
    itest_send_free(a, rdv_tn_offer(&alice, alice.id, NULL, NULL, &len));
    itest_expect_error(a, "invalid_field");
    itest_alive(a, alice.id);
}

static void test_route_missing_and_invalid_fields(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;

    /* No connectionInfo (signed correctly, so only validation can fail). */
    json_t *body = json_pack("{s:s, s:s}", "toNodeID", bob.id, "sessionID", sid);
    itest_send_free(a, rdv_tn_sign_body(&alice, RDV_MSG_OFFER, body, NULL, &len));
    json_t *e = itest_expect_error(a, "missing_field");
    assert_string_equal(rdv_json_str(e, "field"), "connectionInfo");

    /* publicPort of the wrong type. */
    json_t *ci = rdv_tn_connection_info();
    json_object_set_new(ci, "publicPort", json_string("3478"));
    body = json_pack("{s:s, s:s, s:o}", "toNodeID", bob.id, "sessionID", sid, "connectionInfo",
                     ci);
    itest_send_free(a, rdv_tn_sign_body(&alice, RDV_MSG_OFFER, body, NULL, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "connectionInfo.publicPort");

    /* Port out of range. */
    ci = rdv_tn_connection_info();
    json_object_set_new(ci, "localPort", json_integer(70000));
    body = json_pack("{s:s, s:s, s:o}", "toNodeID", bob.id, "sessionID", sid, "connectionInfo",
                     ci);
    itest_send_free(a, rdv_tn_sign_body(&alice, RDV_MSG_OFFER, body, NULL, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "connectionInfo.localPort");

    /* Session ID not a UUID. */
    body = json_pack("{s:s, s:s, s:o}", "toNodeID", bob.id, "sessionID", "not-a-uuid",
                     "connectionInfo", rdv_tn_connection_info());
    itest_send_free(a, rdv_tn_sign_body(&alice, RDV_MSG_OFFER, body, NULL, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "sessionID");

    /* No signature at all. */
    rdv_tn_forge nosig = {.no_signature = true};
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &nosig, &len));
    e = itest_expect_error(a, "missing_field");
    assert_string_equal(rdv_json_str(e, "field"), "signature");

    itest_alive(b, alice.id);
    itest_alive(a, bob.id);
}

static void test_route_signature_domain_tag(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &len);
    json_t *root = json_loads(offer, 0, NULL);
    free(offer);
    assert_non_null(root);
    /* Same body, signed as an offer, sent as an answer. */
    json_t *env = json_pack("{s:O}", "answer", json_object_get(root, "offer"));
    json_decref(root);
    char *text = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    itest_send_free(a, text);
    itest_expect_error(a, "bad_signature");
    itest_alive(b, alice.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_route_offer_byte_identical),
        ITEST(test_route_answer_and_ice),
        ITEST(test_route_impersonation),
        ITEST(test_route_bad_signature),
        ITEST(test_route_verify_off),
        ITEST(test_route_stale_timestamp),
        ITEST(test_route_to_self),
        ITEST(test_route_missing_and_invalid_fields),
        ITEST(test_route_signature_domain_tag),
    };
    return ITEST_RUN(tests);
}
