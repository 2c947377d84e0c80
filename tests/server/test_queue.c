/* test_queue.c - server_queue: the durable offline queue (PROTOCOL.md 7.2).
 *
 * Messages for an offline node are answered with `queued` (sessionID,
 * toNodeID, type, expiresAt) and delivered byte-identical, in order, right
 * after the recipient's welcome; a message not delivered within
 * --offline-ttl gives the sender peer_offline with ref = sessionID and is
 * never delivered; --offline-queue-max caps a recipient's queue
 * (queue_full); a queued message survives SIGKILL and a restart on the
 * same database, and the restarted server marks every node offline.
 */
#include "itest.h"

#include <signal.h>

typedef struct sent {
    char *text;
    size_t len;
    char sid[RDV_UUID_STRLEN + 1];
} sent;

static void sent_free(sent *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].text);
        m[i].text = NULL;
    }
}

/* Sends an offer (or ice) to `to` and expects `queued` with its fields. */
static void send_queued(rdv_ws *a, const rdv_tn *from, const char *to, rdv_msg_type type,
                        long long ttl_ms, sent *m)
{
    rdv_uuid_v4(m->sid);
    m->text = type == RDV_MSG_OFFER    ? rdv_tn_offer(from, to, m->sid, NULL, &m->len)
              : type == RDV_MSG_ANSWER ? rdv_tn_answer(from, to, m->sid, NULL, &m->len)
                                       : rdv_tn_ice(from, to, m->sid, NULL, &m->len);
    assert_non_null(m->text);
    long long before = rdv_now_ms();
    assert_int_equal(rdv_ws_send_text(a, m->text, m->len), 0);
    json_t *q = itest_expect(a, "queued");
    long long after = rdv_now_ms();
    assert_string_equal(rdv_json_str(q, "sessionID"), m->sid);
    assert_string_equal(rdv_json_str(q, "toNodeID"), to);
    assert_string_equal(rdv_json_str(q, "type"), rdv_msg_type_name(type));
    long long exp = rdv_json_int(q, "expiresAt", 0);
    /* expiresAt = acceptance time + TTL (allow for clock granularity). */
    if (exp < before + ttl_ms - 2000 || exp > after + ttl_ms + 2000)
        fail_msg("queued.expiresAt %lld not within [%lld, %lld] (ttl %lld)", exp,
                 before + ttl_ms, after + ttl_ms, ttl_ms);
}

static void test_queue_delivered_after_connect(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    sent m[3];
    memset(m, 0, sizeof m);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 60000, &m[0]);
    send_queued(a, &alice, bob.id, RDV_MSG_ICE_CANDIDATE, 60000, &m[1]);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 60000, &m[2]);

    rdv_ws *b = itest_node(s, &bob); /* welcome read by itest_node */
    for (int i = 0; i < 3; i++) {
        if (rdv_expect_bytes(b, m[i].text, m[i].len, T_MS) != 0) {
            sent_free(m, 3);
            fail_msg("queued message %d not delivered in order, unchanged", i);
        }
    }
    sent_free(m, 3);
    /* Delivered once: nothing more, and a reconnect gets nothing. */
    itest_alive(b, alice.id);
    rdv_ws_close(b);
    b = itest_node(s, &bob);
    itest_alive(b, alice.id);
    itest_alive(a, bob.id);
}

static void test_queue_ttl_expiry(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--offline-ttl", "1000");
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    sent m;
    memset(&m, 0, sizeof m);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 1000, &m);
    free(m.text);
    long long t0 = rdv_ts_mono_ms();
    json_t *e = itest_expect_error(a, "peer_offline");
    assert_string_equal(rdv_json_str(e, "ref"), m.sid);
    long long dt = rdv_ts_mono_ms() - t0;
    assert_true(dt >= 700); /* not before the TTL */
    /* The expired message is never delivered. */
    rdv_ws *b = itest_node(s, &bob);
    itest_alive(b, alice.id);
}

static void test_queue_full(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--offline-queue-max", "2");
    rdv_tn alice, bob, carol;
    rdv_tn_init(&bob, "bob");
    rdv_tn_init(&carol, "carol");
    rdv_ws *a = itest_join(s, &alice, "alice");
    sent m[2];
    memset(m, 0, sizeof m);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 60000, &m[0]);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 60000, &m[1]);
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, NULL, &len));
    json_t *e = rdv_expect_error(a, "queue_full", T_MS);
    if (!e) {
        sent_free(m, 2);
        fail_msg("third message: expected queue_full");
    }
    const char *ref = json_string_value(json_object_get(e, "ref"));
    if (ref && strcmp(ref, sid) != 0) {
        sent_free(m, 2);
        fail_msg("queue_full ref %s, expected %s", ref, sid);
    }
    /* The cap is per recipient: carol's queue is empty. */
    sent mc;
    memset(&mc, 0, sizeof mc);
    send_queued(a, &alice, carol.id, RDV_MSG_OFFER, 60000, &mc);
    free(mc.text);

    rdv_ws *b = itest_node(s, &bob);
    for (int i = 0; i < 2; i++) {
        if (rdv_expect_bytes(b, m[i].text, m[i].len, T_MS) != 0) {
            sent_free(m, 2);
            fail_msg("queued message %d not delivered", i);
        }
    }
    sent_free(m, 2);
    itest_alive(b, alice.id);
}

static void test_queue_survives_sigkill(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    sent m[2];
    memset(m, 0, sizeof m);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 60000, &m[0]);
    send_queued(a, &alice, bob.id, RDV_MSG_ICE_CANDIDATE, 60000, &m[1]);

    assert_int_equal(rdv_ts_server_kill(s), 128 + SIGKILL);
    rdv_ws_abort(a);
    if (rdv_ts_server_restart(s) != 0) {
        sent_free(m, 2);
        fail_msg("restart on the same database failed");
    }

    rdv_ws *b = itest_node(s, &bob);
    for (int i = 0; i < 2; i++) {
        if (rdv_expect_bytes(b, m[i].text, m[i].len, T_MS) != 0) {
            sent_free(m, 2);
            fail_msg("queued message %d lost across SIGKILL + restart", i);
        }
    }
    sent_free(m, 2);
    /* At start every node is offline; alice was seen before the crash. */
    json_t *e = itest_alive(b, alice.id);
    assert_true(json_is_false(json_object_get(e, "online")));
    assert_true(rdv_json_int(e, "lastSeen", 0) > 0);
    assert_string_equal(rdv_json_str(e, "natType"), "portRestricted");
}

static void test_queue_survives_sigterm(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    sent m;
    memset(&m, 0, sizeof m);
    send_queued(a, &alice, bob.id, RDV_MSG_OFFER, 60000, &m);
    rdv_ws_abort(a);
    int code = rdv_ts_server_stop(s);
    if (code != 0) {
        free(m.text);
        fail_msg("exit status %d after SIGTERM", code);
    }
    if (rdv_ts_server_restart(s) != 0) {
        free(m.text);
        fail_msg("restart failed");
    }
    rdv_ws *b = itest_node(s, &bob);
    int rc = rdv_expect_bytes(b, m.text, m.len, T_MS);
    free(m.text);
    assert_int_equal(rc, 0);
}

static void test_queue_sender_gone(void **state)
{
    (void)state;
    /* The queue does not depend on the sender staying connected. */
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    sent m;
    memset(&m, 0, sizeof m);
    send_queued(a, &alice, bob.id, RDV_MSG_ANSWER, 60000, &m);
    rdv_ws_close(a);
    rdv_ws *b = itest_node(s, &bob);
    int rc = rdv_expect_bytes(b, m.text, m.len, T_MS);
    free(m.text);
    assert_int_equal(rc, 0);
    itest_alive(b, alice.id);
}

/* The backlog delivered at welcome may exceed --send-queue-max (it is
 * bounded by --offline-queue-max x --max-message-bytes): stored messages
 * are never lost to the slow-consumer cap. */
static void test_queue_backlog_over_send_cap(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--send-queue-max", "4096", "--offline-queue-max", "8");
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    char pad[1501];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    sent m[8];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 8; i++) {
        rdv_uuid_v4(m[i].sid);
        json_t *body = json_pack("{s:s, s:s, s:o, s:s}", "toNodeID", bob.id, "sessionID",
                                 m[i].sid, "connectionInfo", rdv_tn_connection_info(),
                                 "pad", pad);
        assert_non_null(body);
        m[i].text = rdv_tn_sign_body(&alice, RDV_MSG_OFFER, body, NULL, &m[i].len);
        assert_non_null(m[i].text);
        assert_int_equal(rdv_ws_send_text(a, m[i].text, m[i].len), 0);
        json_decref(itest_expect(a, "queued"));
    }
    rdv_ws *b = itest_node(s, &bob);
    for (int i = 0; i < 8; i++) {
        if (rdv_expect_bytes(b, m[i].text, m[i].len, T_MS) != 0) {
            sent_free(m, 8);
            fail_msg("queued message %d of 8 (12 KB backlog, 4 KB send cap) lost", i);
        }
    }
    sent_free(m, 8);
    itest_alive(b, alice.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_queue_delivered_after_connect),
        ITEST(test_queue_ttl_expiry),
        ITEST(test_queue_full),
        ITEST(test_queue_survives_sigkill),
        ITEST(test_queue_survives_sigterm),
        ITEST(test_queue_sender_gone),
        ITEST(test_queue_backlog_over_send_cap),
    };
    return ITEST_RUN(tests);
}
