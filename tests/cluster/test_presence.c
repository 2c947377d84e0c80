/* test_presence.c - cluster_presence: lookup and watch see nodes on every
 * instance (issue 14, "presence").
 *
 * One redis-server, three rendezvousd --redis instances. A node on
 * instance 1 is online in a lookup on instance 2 (lastSeen recent, its
 * natType), offline after it disconnects, with a recent lastSeen; a
 * watcher on instance 2 gets peerOnline / peerOffline for a node coming
 * and going on instance 3, also when it drops without a close frame.
 */
#include "cluster.h"

static void test_cluster_lookup_across(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    rdv_tn alice, bob, carol;
    rdv_tn_init(&carol, "carol"); /* never seen */
    long long t0 = rdv_now_ms();
    rdv_ws *a = itest_join(c.inst[0], &alice, "alice");
    rdv_ws *b = itest_join(c.inst[1], &bob, "bob");

    json_t *e = cl_expect_online(b, &alice, true);
    assert_string_equal(rdv_json_str(e, "natType"), "portRestricted");
    assert_true(rdv_json_int(e, "lastSeen", 0) >= t0 - 2000);
    assert_true(rdv_json_int(e, "lastSeen", 0) <= rdv_now_ms() + 2000);
    /* and the other way round */
    cl_expect_online(a, &bob, true);

    e = NULL;
    assert_false(cl_online(b, carol.id, &e));
    assert_int_equal(rdv_json_int(e, "lastSeen", -1), 0);

    rdv_ws_close(a);
    long long closed = rdv_now_ms();
    e = cl_expect_online(b, &alice, false);
    long long seen = rdv_json_int(e, "lastSeen", 0);
    if (seen < t0 - 2000 || seen > rdv_now_ms() + 2000)
        fail_msg("alice's lastSeen %lld is not recent (connected at %lld, closed at %lld)",
                 seen, t0, closed);
    /* A third instance agrees. */
    rdv_tn dave;
    rdv_ws *d = itest_join(c.inst[2], &dave, "dave");
    cl_expect_online(d, &alice, false);
    cl_expect_online(d, &bob, true);
}

static void test_cluster_watch_across(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_ws *b = itest_join(c.inst[1], &bob, "bob");
    json_t *e = cl_watch(b, alice.id);
    assert_string_equal(rdv_json_str(e, "nodeID"), alice.id);
    assert_true(json_is_false(json_object_get(e, "online")));

    long long t0 = rdv_now_ms();
    rdv_ws *a = itest_node(c.inst[2], &alice);
    json_t *on = itest_expect(b, "peerOnline");
    assert_string_equal(rdv_json_str(on, "nodeID"), alice.id);
    assert_string_equal(rdv_json_str(on, "natType"), "portRestricted");
    assert_true(rdv_json_int(on, "lastSeen", 0) >= t0 - 2000);

    rdv_ws_close(a);
    json_t *off = itest_expect(b, "peerOffline");
    assert_string_equal(rdv_json_str(off, "nodeID"), alice.id);
    assert_true(rdv_json_int(off, "lastSeen", 0) >= t0 - 2000);

    /* An abrupt drop (no close frame) on yet another instance too. */
    a = itest_node(c.inst[0], &alice);
    on = itest_expect(b, "peerOnline");
    assert_string_equal(rdv_json_str(on, "nodeID"), alice.id);
    rdv_ws_abort(a);
    off = itest_expect(b, "peerOffline");
    assert_string_equal(rdv_json_str(off, "nodeID"), alice.id);

    /* Nothing else was pushed: the next message answers a lookup. */
    assert_false(cl_online(b, alice.id, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_cluster_lookup_across),
        ITEST(test_cluster_watch_across),
    };
    return ITEST_RUN(tests);
}
