/* test_drain.c - server_drain: --drain-window spreads the SIGTERM closes.
 *
 * Ten authenticated nodes, --drain-window 1000: after SIGTERM /healthz
 * answers 503 at once, every node gets a 1001 close, the closes come in
 * batches (one node per 100 ms tick here), so the last is at least 600 ms
 * after the first (all at once without the window), and the server exits
 * 0. The bound is a lower one: a slow machine only spreads them more.
 */
#include "itest.h"

#include <signal.h>
#include <unistd.h>

#define NODES 10

static void test_drain_spreads_closes(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--drain-window", "1000");
    int port = rdv_ts_server_port(s);
    rdv_tn n[NODES];
    rdv_ws *ws[NODES];
    long long closed_at[NODES];
    for (int i = 0; i < NODES; i++) {
        char label[16];
        snprintf(label, sizeof label, "node%d", i);
        ws[i] = itest_join(s, &n[i], label);
        closed_at[i] = 0;
    }
    assert_int_equal(rdv_ts_server_signal(s, SIGTERM), 0);
    long long t0 = rdv_ts_mono_ms();

    /* draining: the load balancer's health check fails at once */
    char *body = NULL;
    int hz = 0;
    for (int tries = 0; tries < 20 && hz != 503; tries++) {
        free(body);
        body = NULL;
        hz = rdv_http_get(port, "/healthz", &body, T_MS);
        if (hz != 503)
            usleep(20 * 1000);
    }
    free(body);
    assert_int_equal(hz, 503);

    int left = NODES;
    while (left > 0 && rdv_ts_mono_ms() - t0 < 10000) {
        for (int i = 0; i < NODES; i++) {
            if (closed_at[i])
                continue;
            rdv_ws_service(ws[i], 5);
            if (rdv_ws_is_closed(ws[i])) {
                closed_at[i] = rdv_ts_mono_ms();
                left--;
            }
        }
    }
    assert_int_equal(left, 0);
    long long first = closed_at[0], last = closed_at[0];
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(rdv_ws_close_code(ws[i]), 1001);
        if (closed_at[i] < first)
            first = closed_at[i];
        if (closed_at[i] > last)
            last = closed_at[i];
    }
    fprintf(stderr, "closes spread over %lld ms (first %lld ms after SIGTERM)\n", last - first,
            first - t0);
    assert_true(last - first >= 600);
    assert_int_equal(rdv_ts_server_wait_exit(s, RDV_TS_STOP_TIMEOUT_MS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_drain_spreads_closes),
    };
    return ITEST_RUN(tests);
}
