/* test_clock.c - fault_clock: the server's wall clock jumps (Debian's
 * libfaketime, LD_PRELOADed into rendezvousd with a timestamp file read
 * on every call) forward 2 hours, then back 2 hours from the true time,
 * while nodes are connected (pings every second, idle hang-up after 20 s,
 * 3 s to authenticate). CLOCK_MONOTONIC is left alone
 * (DONT_FAKE_MONOTONIC=1), as on a real host whose clock is stepped.
 *
 * Durations are monotonic - connections are not
 * dropped as idle or unauthenticated by a jump, the rate limit neither
 * refills nor stalls, /status uptimeMs stays the real uptime (it went
 * negative or jumped 2 h before: wall-clock arithmetic); timestamps are
 * wall clock - serverTime in `pong` follows the jump, and a node message
 * signed with the true time is refused as stale_timestamp by the jumped
 * server (the freshness window is against the server's clock).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
#define JUMP_MS (2LL * 3600 * 1000)

static char tsfile[128];

static void set_offset(const char *spec)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", tsfile);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", spec);
    fclose(f);
    assert_int_equal(rename(tmp, tsfile), 0);
    usleep(100 * 1000);
}

static long long status_uptime(rdv_ts_server *s)
{
    char *body = NULL;
    int code = rdv_http_get(rdv_ts_server_operator_port(s), "/status", &body, T_MS);
    json_t *j = code == 200 && body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    long long up = j ? rdv_json_int(j, "uptimeMs", -1) : -1;
    json_decref(j);
    return up;
}

/* serverTime of a pong (the server's wall clock), -1 on failure. */
static long long server_time(rdv_ws *c)
{
    if (rdv_ws_send_str(c, "{\"ping\":{}}") != 0)
        return -1;
    json_t *b = rdv_expect(c, "pong", T_MS);
    return b ? rdv_json_int(b, "serverTime", -1) : -1;
}

static void offer_passes(rdv_ws *from, const rdv_tn *sender, rdv_ws *to, const rdv_tn *dest,
                         long long ts_offset_ms)
{
    size_t len = 0;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    rdv_tn_forge f = {.ts_offset_ms = ts_offset_ms};
    char *offer = rdv_tn_offer(sender, dest->id, sid, &f, &len);
    assert_int_equal(rdv_ws_send_text(from, offer, len), 0);
    free(offer);
    if (!rdv_expect(to, "offer", T_MS))
        fail_msg("an offer did not pass after the clock jump");
}

static void test_clock_jumps(void **state)
{
    (void)state;
    struct stat st;
    if (stat(FAKETIME_LIB, &st) != 0) {
        fprintf(stderr, "fault_clock: %s missing (apt-get install faketime)\n", FAKETIME_LIB);
        fail_msg("libfaketime is not installed (scripts/bootstrap --test installs faketime)");
    }
    char dir[] = "/tmp/rdv-fault-clock-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(tsfile, sizeof tsfile, "%s/faketime", dir);
    set_offset("+0");
    char env_ts[200];
    snprintf(env_ts, sizeof env_ts, "FAKETIME_TIMESTAMP_FILE=%s", tsfile);
    const char *env[] = {"LD_PRELOAD=" FAKETIME_LIB, env_ts, "FAKETIME_NO_CACHE=1",
                         "DONT_FAKE_MONOTONIC=1",
                         /* libfaketime is preloaded before the ASan runtime */
                         "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1:abort_on_error=1",
                         NULL};
    rdv_ts_server *s = rdv_ts_server_start_env(
        env, (const char *[]){"--ping-interval", "1000", "--idle-timeout", "20000",
                              "--auth-timeout", "3000", "--rate", "5", "--burst", "5", NULL});
    if (!s)
        fail_msg("rendezvousd under libfaketime did not start");
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *pending = itest_connect(s); /* never says hello */
    long long t0 = server_time(a);
    long long up0 = status_uptime(s);
    assert_true(t0 > 0 && up0 >= 0);

    /* forward 2 h: timers and the bucket do not fire early */
    set_offset("+2h");
    long long t1 = server_time(a);
    fprintf(stderr, "serverTime +%lld ms after the forward jump\n", t1 - t0);
    assert_true(t1 - t0 >= JUMP_MS - 60000 && t1 - t0 <= JUMP_MS + 60000);
    long long up1 = status_uptime(s);
    fprintf(stderr, "uptimeMs %lld -> %lld\n", up0, up1);
    assert_true(up1 >= up0 && up1 - up0 < 60000);
    /* a message signed with the true time is now 2 h old to the server */
    size_t len = 0;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *stale = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    assert_int_equal(rdv_ws_send_text(a, stale, len), 0);
    free(stale);
    assert_non_null(rdv_expect_error(a, "stale_timestamp", T_MS));
    /* signed with the server's (jumped) time it passes */
    offer_passes(a, &alice, b, &bob, JUMP_MS);
    /* the pending connection is still within its 3 s auth time */
    assert_false(rdv_ws_is_closed(pending));

    /* back to 2 h before the true time */
    set_offset("-2h");
    long long t2 = server_time(a);
    fprintf(stderr, "serverTime %lld ms after the backward jump\n", t2 - t0);
    assert_true(t0 - t2 >= JUMP_MS - 60000 && t0 - t2 <= JUMP_MS + 60000);
    long long up2 = status_uptime(s);
    fprintf(stderr, "uptimeMs %lld\n", up2);
    assert_true(up2 >= up1 && up2 - up1 < 60000);
    offer_passes(b, &bob, a, &alice, -JUMP_MS);
    /* the rate limit (5/s, burst 5; drained by the offers above) is
     * neither refilled nor stalled by the jump: the burst is refused,
     * one more passes 400 ms later */
    int refused = 0;
    for (int i = 0; i < 8; i++) {
        rdv_uuid_v4(sid);
        rdv_tn_forge f = {.ts_offset_ms = -JUMP_MS};
        char *o = rdv_tn_offer(&alice, bob.id, sid, &f, &len);
        assert_int_equal(rdv_ws_send_text(a, o, len), 0);
        free(o);
    }
    for (int i = 0; i < 8; i++) {
        const char *type = NULL;
        json_t *m = rdv_ws_recv_json(a, 300, &type);
        if (m && type && !strcmp(type, "error"))
            refused++;
    }
    while (rdv_ws_recv_json(b, 200, NULL)) {
    }
    fprintf(stderr, "%d of 8 offers refused by the rate limit after the backward jump\n",
            refused);
    assert_true(refused >= 2);
    usleep(400 * 1000);
    offer_passes(a, &alice, b, &bob, -JUMP_MS);

    /* monotonic timers still run: the pending connection is closed after
     * its 3 real seconds, the authenticated ones stay (pings answered) */
    assert_true(rdv_ws_wait_closed(pending, 8000));
    assert_false(rdv_ws_is_closed(a));
    assert_false(rdv_ws_is_closed(b));

    /* back to the true time: a new node (signing its hello with its own
     * clock) gets in, and everyone signals */
    set_offset("+0");
    rdv_ws *c = itest_join(s, &carol, "carol");
    offer_passes(b, &bob, a, &alice, 0);
    offer_passes(c, &carol, b, &bob, 0);
    unlink(tsfile);
    rmdir(dir);
}

static int teardown(void **state)
{
    (void)state;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_clock_jumps, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
