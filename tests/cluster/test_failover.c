/* test_failover.c - cluster_failover: an instance killed with SIGKILL
 * (issue 14, "Failure handling").
 *
 * alice is on instance 1, bob on instance 2, watcher wendy on instance 3.
 * Instance 1 is killed with SIGKILL (no goodbye to Redis): a lookup on
 * instance 2 reports alice offline within 10 s (polled, bounded 15 s),
 * wendy gets peerOffline, an offer to alice is `queued` again instead of
 * vanishing, and alice reconnecting to instance 2 receives it.
 */
#include "cluster.h"

#define CL_DEAD_GOAL_MS 10000
#define CL_DEAD_BOUND_MS 15000

static void test_cluster_instance_killed(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    rdv_tn alice, bob, wendy;
    rdv_tn_init(&alice, "alice");
    rdv_ws *a = itest_node(c.inst[0], &alice);
    rdv_ws *b = itest_join(c.inst[1], &bob, "bob");
    rdv_ws *w = itest_join(c.inst[2], &wendy, "wendy");
    cl_expect_online(b, &alice, true);
    json_t *e = cl_watch(w, alice.id);
    assert_true(json_is_true(json_object_get(e, "online")));

    int code = rdv_ts_server_kill(c.inst[0]);
    assert_int_equal(code, 128 + 9);
    long long t0 = rdv_ts_mono_ms();
    long long took = cl_poll_online(b, alice.id, false, CL_DEAD_BOUND_MS, NULL);
    if (took < 0) {
        rdv_ts_dump_all_logs("killed instance");
        fail_msg("alice (on the killed instance) still online for instance 2 after %d ms",
                 CL_DEAD_BOUND_MS);
    }
    print_message("alice offline for instance 2 %lld ms after SIGKILL of instance 1\n", took);
    if (took > CL_DEAD_GOAL_MS)
        fail_msg("alice offline only after %lld ms, goal <= %d ms", took, CL_DEAD_GOAL_MS);

    long long left = CL_DEAD_BOUND_MS - (rdv_ts_mono_ms() - t0);
    json_t *off = rdv_expect(w, "peerOffline", left > 1000 ? (int)left : 1000);
    if (!off)
        fail_msg("watcher on instance 3 got no peerOffline for alice");
    assert_string_equal(rdv_json_str(off, "nodeID"), alice.id);

    /* Messages for alice queue again. */
    size_t len;
    char *sent = cl_send_queued(b, &bob, alice.id, &len);
    rdv_ws_abort(a); /* its server is gone */
    a = itest_node(c.inst[1], &alice);
    cl_expect_bytes_free(a, sent, len, T_MS, "offer queued after the instance died");
    itest_alive(a, bob.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_cluster_instance_killed),
    };
    return ITEST_RUN(tests);
}
