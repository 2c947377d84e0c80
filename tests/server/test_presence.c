/* test_presence.c - server_presence: lookup, watch, unwatch and the watch
 * cap (PROTOCOL.md 8).
 *
 * lookup answers one entry per ID in request order (online, lastSeen,
 * natType; 0 / unknown for never-seen IDs) and echoes requestID; watch
 * answers presence and then pushes peerOnline / peerOffline; unwatch stops
 * the pushes (no answer); watch sets above --max-watches are refused with
 * limit_exceeded and nothing of that request is added; requests carry
 * 1 ... 64 IDs (65 -> invalid_field). The absence of a
 * push is proven without sleeping: the next message after an event is the
 * answer to a lookup sent after it.
 */
#include "itest.h"

static json_t *peer_at(json_t *presence, size_t i)
{
    json_t *peers = json_object_get(presence, "peers");
    if (!json_is_array(peers) || json_array_size(peers) <= i)
        fail_msg("presence.peers has no entry %zu", i);
    return json_array_get(peers, i);
}

static void test_presence_lookup(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob, carol;
    rdv_tn_init(&bob, "bob");
    rdv_tn_init(&carol, "carol");
    long long t0 = rdv_now_ms();
    rdv_ws *a = itest_join(s, &alice, "alice");

    /* Bob comes and goes; alice watches him to know when he is gone. */
    char *w = rdv_tn_id_request("watch", (const char *[]){bob.id}, 1, "w1");
    itest_send(a, w);
    free(w);
    itest_expect(a, "presence");
    rdv_ws *b = itest_node(s, &bob);
    itest_expect(a, "peerOnline");
    rdv_ws_close(b);
    itest_expect(a, "peerOffline");

    const char *ids[] = {carol.id, alice.id, bob.id};
    char *lk = rdv_tn_id_request("lookup", ids, 3, "req-42");
    itest_send(a, lk);
    free(lk);
    json_t *p = itest_expect(a, "presence");
    assert_string_equal(rdv_json_str(p, "requestID"), "req-42");
    assert_int_equal(json_array_size(json_object_get(p, "peers")), 3);

    json_t *e = peer_at(p, 0); /* carol: never seen */
    assert_string_equal(rdv_json_str(e, "nodeID"), carol.id);
    assert_true(json_is_false(json_object_get(e, "online")));
    assert_int_equal(rdv_json_int(e, "lastSeen", -1), 0);
    assert_string_equal(rdv_json_str(e, "natType"), "unknown");

    e = peer_at(p, 1); /* alice: online */
    assert_string_equal(rdv_json_str(e, "nodeID"), alice.id);
    assert_true(json_is_true(json_object_get(e, "online")));
    assert_string_equal(rdv_json_str(e, "natType"), "portRestricted");
    assert_true(rdv_json_int(e, "lastSeen", 0) >= t0 - 2000);

    e = peer_at(p, 2); /* bob: seen, now offline */
    assert_string_equal(rdv_json_str(e, "nodeID"), bob.id);
    assert_true(json_is_false(json_object_get(e, "online")));
    assert_true(rdv_json_int(e, "lastSeen", 0) >= t0 - 2000);
    assert_true(rdv_json_int(e, "lastSeen", 0) <= rdv_now_ms() + 2000);
    assert_string_equal(rdv_json_str(e, "natType"), "portRestricted");

    /* Without requestID the answer has none. */
    lk = rdv_tn_id_request("lookup", ids, 1, NULL);
    itest_send(a, lk);
    free(lk);
    p = itest_expect(a, "presence");
    assert_null(json_object_get(p, "requestID"));
}

static void test_presence_watch_pushes(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");

    char *w = rdv_tn_id_request("watch", (const char *[]){bob.id}, 1, "w-1");
    itest_send(a, w);
    free(w);
    json_t *p = itest_expect(a, "presence");
    assert_string_equal(rdv_json_str(p, "requestID"), "w-1");
    json_t *e = peer_at(p, 0);
    assert_string_equal(rdv_json_str(e, "nodeID"), bob.id);
    assert_true(json_is_false(json_object_get(e, "online")));

    long long t0 = rdv_now_ms();
    rdv_ws *b = itest_node(s, &bob);
    json_t *on = itest_expect(a, "peerOnline");
    assert_string_equal(rdv_json_str(on, "nodeID"), bob.id);
    assert_string_equal(rdv_json_str(on, "natType"), "portRestricted");
    assert_true(rdv_json_int(on, "lastSeen", 0) >= t0 - 2000);

    rdv_ws_close(b);
    json_t *off = itest_expect(a, "peerOffline");
    assert_string_equal(rdv_json_str(off, "nodeID"), bob.id);
    assert_true(rdv_json_int(off, "lastSeen", 0) >= t0 - 2000);

    /* An abrupt drop (no close frame) is noticed too. */
    b = itest_node(s, &bob);
    itest_expect(a, "peerOnline");
    rdv_ws_abort(b);
    itest_expect(a, "peerOffline");

    /* Watching an online node answers online: true. */
    b = itest_node(s, &bob);
    itest_expect(a, "peerOnline");
    w = rdv_tn_id_request("watch", (const char *[]){bob.id}, 1, NULL);
    itest_send(a, w);
    free(w);
    p = itest_expect(a, "presence");
    assert_true(json_is_true(json_object_get(peer_at(p, 0), "online")));

    /* unwatch: no answer, no more pushes. */
    char *u = rdv_tn_id_request("unwatch", (const char *[]){bob.id}, 1, NULL);
    itest_send(a, u);
    free(u);
    itest_alive(a, bob.id); /* the unwatch had no answer and is processed */
    rdv_ws_close(b);
    b = itest_node(s, &bob);
    e = itest_alive(a, bob.id); /* no peerOffline / peerOnline before it */
    assert_true(json_is_true(json_object_get(e, "online")));
}

static void test_presence_watch_replaced_no_offline(void **state)
{
    (void)state;
    /* A node replacing its own connection stays online for its watchers:
     * whatever is pushed, the last word is "online". */
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b1 = itest_node(s, &bob);
    char *w = rdv_tn_id_request("watch", (const char *[]){bob.id}, 1, NULL);
    itest_send(a, w);
    free(w);
    itest_expect(a, "presence");
    rdv_ws *b2 = itest_node(s, &bob);
    itest_expect_error(b1, "replaced");
    itest_expect_close(b1, 4001);
    json_t *e = NULL;
    const char *type = NULL;
    /* Drain pushes until the lookup answer; the last push must not be
     * peerOffline. */
    char *lk = rdv_tn_id_request("lookup", (const char *[]){bob.id}, 1, "after");
    itest_send(a, lk);
    free(lk);
    char last_push[32] = "";
    for (;;) {
        json_t *m = rdv_ws_recv_json(a, T_MS, &type);
        if (!m || !type)
            fail_msg("no presence answer");
        if (strcmp(type, "presence") == 0) {
            e = peer_at(json_object_get(m, "presence"), 0);
            break;
        }
        snprintf(last_push, sizeof last_push, "%s", type);
    }
    assert_true(json_is_true(json_object_get(e, "online")));
    if (strcmp(last_push, "peerOffline") == 0)
        fail_msg("watcher's last push is peerOffline while bob is online");
    itest_alive(b2, alice.id);
}

static void test_presence_watch_cap(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--max-watches", "3");
    rdv_tn alice, n[4];
    const char *ids[4];
    for (int i = 0; i < 4; i++) {
        char label[8];
        snprintf(label, sizeof label, "n%d", i);
        rdv_tn_init(&n[i], label);
        ids[i] = n[i].id;
    }
    rdv_ws *a = itest_join(s, &alice, "alice");
    char *w = rdv_tn_id_request("watch", ids, 2, "w1");
    itest_send(a, w);
    free(w);
    itest_expect(a, "presence");

    /* 2 + 2 > 3: refused, nothing added. */
    w = rdv_tn_id_request("watch", ids + 2, 2, "w2");
    itest_send(a, w);
    free(w);
    json_t *e = itest_expect_error(a, "limit_exceeded");
    const char *ref = json_string_value(json_object_get(e, "ref"));
    if (ref)
        assert_string_equal(ref, "w2");

    /* 2 + 1 = 3: accepted (so nothing of w2 was added). */
    w = rdv_tn_id_request("watch", ids + 2, 1, "w3");
    itest_send(a, w);
    free(w);
    json_t *p = itest_expect(a, "presence");
    assert_string_equal(rdv_json_str(p, "requestID"), "w3");

    /* n3 (refused in w2) coming online pushes nothing... */
    rdv_ws *c3 = itest_node(s, &n[3]);
    json_t *st = itest_alive(a, n[3].id);
    assert_true(json_is_true(json_object_get(st, "online")));
    /* ...while n2 (accepted in w3) does. */
    rdv_ws *c2 = itest_node(s, &n[2]);
    json_t *on = itest_expect(a, "peerOnline");
    assert_string_equal(rdv_json_str(on, "nodeID"), n[2].id);
    (void)c2;
    (void)c3;

    /* Full: one more is refused; the connection stays. */
    w = rdv_tn_id_request("watch", ids + 3, 1, "w4");
    itest_send(a, w);
    free(w);
    itest_expect_error(a, "limit_exceeded");
    /* unwatch frees room. */
    char *u = rdv_tn_id_request("unwatch", ids, 1, NULL);
    itest_send(a, u);
    free(u);
    w = rdv_tn_id_request("watch", ids + 3, 1, "w5");
    itest_send(a, w);
    free(w);
    p = itest_expect(a, "presence");
    assert_string_equal(rdv_json_str(p, "requestID"), "w5");
}

static void test_presence_watches_belong_to_connection(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_node(s, &alice);
    char *w = rdv_tn_id_request("watch", (const char *[]){bob.id}, 1, NULL);
    itest_send(a, w);
    free(w);
    itest_expect(a, "presence");
    rdv_ws_close(a);
    /* A new connection of alice has no watches. */
    a = itest_node(s, &alice);
    rdv_ws *b = itest_node(s, &bob);
    (void)b;
    json_t *e = itest_alive(a, bob.id);
    assert_true(json_is_true(json_object_get(e, "online")));
}

static void test_presence_request_size(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    static rdv_tn many[RDV_MAX_IDS_PER_REQUEST + 1];
    const char *ids[RDV_MAX_IDS_PER_REQUEST + 1];
    for (int i = 0; i <= RDV_MAX_IDS_PER_REQUEST; i++) {
        char label[16];
        snprintf(label, sizeof label, "m%d", i);
        rdv_tn_init(&many[i], label);
        ids[i] = many[i].id;
    }
    /* 64 IDs: one entry each, in request order. */
    char *lk = rdv_tn_id_request("lookup", ids, RDV_MAX_IDS_PER_REQUEST, "big");
    itest_send(a, lk);
    free(lk);
    json_t *p = itest_expect(a, "presence");
    json_t *peers = json_object_get(p, "peers");
    assert_int_equal(json_array_size(peers), RDV_MAX_IDS_PER_REQUEST);
    for (size_t i = 0; i < RDV_MAX_IDS_PER_REQUEST; i++)
        assert_string_equal(rdv_json_str(json_array_get(peers, i), "nodeID"), ids[i]);
    /* 65: invalid_field, for lookup, watch and unwatch alike. */
    const char *types[] = {"lookup", "watch", "unwatch"};
    for (int t = 0; t < 3; t++) {
        char *req = rdv_tn_id_request(types[t], ids, RDV_MAX_IDS_PER_REQUEST + 1, NULL);
        itest_send(a, req);
        free(req);
        json_t *e = rdv_expect_error(a, "invalid_field", T_MS);
        if (!e)
            fail_msg("%s of 65 IDs: expected invalid_field", types[t]);
        assert_string_equal(rdv_json_str(e, "field"), "nodeIDs");
    }
    itest_alive(a, alice.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_presence_lookup),
        ITEST(test_presence_watch_pushes),
        ITEST(test_presence_watch_replaced_no_offline),
        ITEST(test_presence_watch_cap),
        ITEST(test_presence_watches_belong_to_connection),
        ITEST(test_presence_request_size),
    };
    return ITEST_RUN(tests);
}
