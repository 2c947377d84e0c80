/* test_route.c - cluster_route: signaling between nodes on different
 * instances (issue 14, "signaling").
 *
 * An offer written by hand (odd whitespace, escapes, unknown fields) from
 * a node on instance 1 reaches a node on instance 3 byte-for-byte as sent;
 * answer and iceCandidate go back and forth unchanged. A bad signature and
 * a fromNodeID of someone else are still refused on the sender's instance
 * with the codes of the single-server tests (bad_signature,
 * sender_mismatch), and nothing of them reaches the recipient: the next
 * message it gets is the good offer sent after them.
 */
#include "cluster.h"

/* The odd offer of tests/server/test_route.c. */
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
    if (!text)
        fail_msg("out of memory");
    snprintf(text, cap, fmt, to, from->id, sid, ts, e2e, zeros);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) {
        free(text);
        fail_msg("odd_offer template is not JSON: %s", jerr.text);
    }
    json_t *body = json_object_get(root, "offer");
    if (rdv_sig_sign(RDV_MSG_OFFER, body, from->sk) != 0) {
        json_decref(root);
        free(text);
        fail_msg("signing failed");
    }
    snprintf(text, cap, fmt, to, from->id, sid, ts, e2e,
             json_string_value(json_object_get(body, "signature")));
    json_decref(root);
    *len = strlen(text);
    return text;
}

static void send_or_fail(rdv_ws *ws, char *text, size_t len)
{
    if (rdv_ws_send_text(ws, text, len) != 0) {
        free(text);
        fail_msg("send failed");
    }
}

static void check_ref(const json_t *err, const char *sid)
{
    const char *ref = json_string_value(json_object_get(err, "ref"));
    if (ref && strcmp(ref, sid) != 0)
        fail_msg("error.ref = %s, expected the sessionID %s", ref, sid);
}

static void test_cluster_signaling_byte_identical(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(c.inst[0], &alice, "alice");
    rdv_ws *b = itest_join(c.inst[2], &bob, "bob");
    cl_expect_online(a, &bob, true);

    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;
    char *text = odd_offer(&alice, bob.id, sid, &len);
    send_or_fail(a, text, len);
    cl_expect_bytes_free(b, text, len, T_MS, "offer from instance 1 to instance 3");
    /* The sender got no reply (no queued, no error). */
    itest_alive(a, bob.id);

    /* answer and iceCandidate, both ways. */
    char *msgs[3];
    rdv_ws *from[3] = {b, a, b};
    rdv_ws *to[3] = {a, b, a};
    msgs[0] = rdv_tn_answer(&bob, alice.id, sid, NULL, &len);
    msgs[1] = rdv_tn_ice(&alice, bob.id, sid, NULL, &len);
    msgs[2] = rdv_tn_ice(&bob, alice.id, sid, NULL, &len);
    for (int i = 0; i < 3; i++) {
        if (!msgs[i])
            fail_msg("builder failed");
    }
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(msgs[i]);
        char *m = msgs[i];
        msgs[i] = NULL;
        if (rdv_ws_send_text(from[i], m, l) != 0) {
            free(m);
            for (int j = i + 1; j < 3; j++)
                free(msgs[j]);
            fail_msg("send %d failed", i);
        }
        int rc = rdv_expect_bytes(to[i], m, l, T_MS);
        free(m);
        if (rc != 0) {
            for (int j = i + 1; j < 3; j++)
                free(msgs[j]);
            fail_msg("message %d (answer / iceCandidate) not routed unchanged across "
                     "instances",
                     i);
        }
    }
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
}

static void test_cluster_signaling_checks(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(c.inst[0], &alice, "alice");
    rdv_ws *b = itest_join(c.inst[2], &bob, "bob");
    rdv_ws *cw = itest_join(c.inst[1], &carol, "carol");
    cl_expect_online(a, &bob, true);
    cl_expect_online(a, &carol, true);

    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;
    /* A bad signature: refused on instance 1. */
    rdv_tn_forge bad = {.bad_signature = true};
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &bad, &len));
    check_ref(itest_expect_error(a, "bad_signature"), sid);
    itest_send_free(a, rdv_tn_ice(&alice, bob.id, sid, &bad, &len));
    itest_expect_error(a, "bad_signature");
    /* Claiming to be carol (on instance 2): sender_mismatch. */
    rdv_tn_forge imp = {.from = carol.id};
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &imp, &len));
    check_ref(itest_expect_error(a, "sender_mismatch"), sid);
    itest_send_free(a, rdv_tn_answer(&alice, bob.id, sid, &imp, &len));
    itest_expect_error(a, "sender_mismatch");
    itest_send_free(a, rdv_tn_ice(&alice, bob.id, sid, &imp, &len));
    itest_expect_error(a, "sender_mismatch");

    /* The connection stays; a good offer goes through, and it is the first
     * thing bob receives: none of the refused ones crossed over. */
    char *good = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    assert_non_null(good);
    send_or_fail(a, good, len);
    cl_expect_bytes_free(b, good, len, T_MS, "good offer after the refused ones");
    itest_alive(b, alice.id);
    itest_alive(cw, alice.id); /* carol got nothing either */
    itest_alive(a, bob.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_cluster_signaling_byte_identical),
        ITEST(test_cluster_signaling_checks),
    };
    return ITEST_RUN(tests);
}
