/* test_ops.c - cluster_ops: what an operator sees of the cluster, and
 * Redis going away (issue 14).
 *
 * /status of an instance has a "cluster" object: "engine":"redis", its own
 * "instanceID" (a string, different on each instance) and "instances" (an
 * integer, >= 3 with three running); /healthz is 200 with Redis up. These
 * instances use the TCP URL redis://127.0.0.1:PORT/0 (the other cluster_
 * tests use unix:///...).
 *
 * Redis unreachable: once redis-server is stopped, /healthz of an instance
 * answers 503 within 10 s; a new node can still authenticate on it
 * (serving alone is the documented fallback); when redis-server is back,
 * /healthz is 200 again (bounded) and the instance re-registers the node
 * that connected during the outage, so a lookup on another instance sees
 * it online.
 */
#include "cluster.h"

static void test_cluster_status(void **state)
{
    (void)state;
    cl c;
    rdv_ts_redis_opts o = {.tcp = true};
    cl_up(&c, &o);
    assert_non_null(c.url);
    assert_true(strncmp(c.url, "redis://127.0.0.1:", 18) == 0);

    char ids[CL_N][128];
    for (int i = 0; i < CL_N; i++) {
        int st = cl_get(c.inst[i], "/healthz", NULL);
        if (st != 200)
            fail_msg("instance %d /healthz %d with Redis up", i + 1, st);
        /* Instances announce themselves through Redis: allow a few
         * seconds for all three to be counted. */
        long long t0 = rdv_ts_mono_ms();
        json_t *status = NULL;
        json_t *cluster = NULL;
        long long n = 0;
        for (;;) {
            json_decref(status);
            status = cl_status(c.inst[i]);
            cluster = json_object_get(status, "cluster");
            if (!json_is_object(cluster)) {
                char *dump = json_dumps(status, 0);
                fprintf(stderr, "/status: %s\n", dump ? dump : "?");
                free(dump);
                json_decref(status);
                fail_msg("instance %d /status has no \"cluster\" object", i + 1);
            }
            json_t *inst = json_object_get(cluster, "instances");
            if (!json_is_integer(inst)) {
                json_decref(status);
                fail_msg("cluster.instances is not an integer");
            }
            n = json_integer_value(inst);
            if (n >= CL_N || rdv_ts_mono_ms() - t0 > 5000)
                break;
            cl_sleep_ms(100);
        }
        const char *engine = json_string_value(json_object_get(cluster, "engine"));
        const char *id = json_string_value(json_object_get(cluster, "instanceID"));
        snprintf(ids[i], sizeof ids[i], "%s", id ? id : "");
        bool engine_ok = engine && strcmp(engine, "redis") == 0;
        json_decref(status);
        if (!engine_ok)
            fail_msg("cluster.engine is %s, expected \"redis\"", engine ? engine : "(none)");
        if (!ids[i][0])
            fail_msg("cluster.instanceID is missing or not a non-empty string");
        if (n < CL_N)
            fail_msg("instance %d: cluster.instances %lld, expected >= %d", i + 1, n, CL_N);
    }
    for (int i = 0; i < CL_N; i++)
        for (int j = i + 1; j < CL_N; j++)
            if (strcmp(ids[i], ids[j]) == 0)
                fail_msg("instances %d and %d share the instanceID %s", i + 1, j + 1, ids[i]);
}

static void test_cluster_redis_unreachable(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    for (int i = 0; i < CL_N; i++)
        assert_int_equal(cl_get(c.inst[i], "/healthz", NULL), 200);

    int code = rdv_ts_redis_stop(c.redis);
    assert_int_equal(code, 0);
    assert_false(rdv_ts_redis_ping(c.redis, 200));
    long long took = cl_poll_healthz(c.inst[0], 503, 10000);
    if (took < 0) {
        rdv_ts_dump_all_logs("healthz with redis down");
        fail_msg("instance 1 /healthz not 503 within 10 s of Redis stopping");
    }
    print_message("instance 1 /healthz 503 %lld ms after Redis stopped\n", took);

    /* Serving alone: a new node authenticates on that instance. */
    rdv_tn carol;
    rdv_ws *cw = itest_join(c.inst[0], &carol, "carol");
    rdv_ws_service(cw, 200);
    assert_false(rdv_ws_is_closed(cw));

    if (rdv_ts_redis_restart(c.redis) != 0)
        fail_msg("redis-server did not restart");
    took = cl_poll_healthz(c.inst[0], 200, 15000);
    if (took < 0) {
        rdv_ts_dump_all_logs("healthz after redis restart");
        fail_msg("instance 1 /healthz not 200 within 15 s of Redis being back");
    }
    print_message("instance 1 /healthz 200 %lld ms after Redis restarted\n", took);
    if (cl_poll_healthz(c.inst[1], 200, 15000) < 0)
        fail_msg("instance 2 /healthz not 200 within 15 s of Redis being back");

    /* Re-registered: carol (connected during the outage, and a Redis
     * without persistence lost everything) is online for instance 2. */
    rdv_tn dave;
    rdv_ws *d = itest_join(c.inst[1], &dave, "dave");
    json_t *e = NULL;
    if (cl_poll_online(d, carol.id, true, 10000, &e) < 0) {
        rdv_ts_dump_all_logs("re-registration");
        fail_msg("carol (on instance 1 during the outage) not online for instance 2 "
                 "within 10 s of Redis being back");
    }
    assert_false(rdv_ws_is_closed(cw));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_cluster_status),
        ITEST(test_cluster_redis_unreachable),
    };
    return ITEST_RUN(tests);
}
