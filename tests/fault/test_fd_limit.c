/* test_fd_limit.c - fault_fd_limit: rendezvousd with a low open-file limit
 * (64, set on the child before exec) and more connections waiting than it
 * has descriptors for.
 *
 * Without the accept gate (rendezvous/accept_gate.h) libwebsockets' accept
 * fails with EMFILE, the listener stays readable and the loop spins at a
 * full core for as long as the backlog waits. Checked here: the server's
 * CPU time while 150 connections wait is a small fraction of the wall time
 * (a spin is all of it), a node already connected keeps working, a log
 * line names the cause and the fix, and a new node gets in as soon as the
 * waiting connections go.
 */
#include <stdint.h>
#include <stdlib.h>

#include "itest.h"
#include "fault.h"

#define HELD 150
#define WATCH_MS 1500

static void test_fd_limit_no_spin_and_recovery(void **state)
{
    (void)state;
    /* no handshake cap: the held connections come from one address */
    rdv_ts_server *s = rdv_ts_server_start_env(
        (const char *const[]){"RDV_TS_NOFILE=64", NULL},
        (const char *const[]){"--max-handshakes-per-ip", "0", NULL});
    assert_non_null(s);
    int port = rdv_ts_server_port(s);
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");

    int held[HELD];
    int n = 0;
    for (int i = 0; i < HELD; i++) {
        held[i] = fault_tcp_connect(port, NULL);
        if (held[i] >= 0)
            n++;
    }
    assert_int_equal(n, HELD); /* the backlog takes what the server does not accept */
    usleep(300 * 1000);

    long long c0 = fault_cpu_ms(rdv_ts_server_pid(s));
    long long t0 = rdv_ts_mono_ms();
    usleep(WATCH_MS * 1000);
    long long c1 = fault_cpu_ms(rdv_ts_server_pid(s));
    long long wall = rdv_ts_mono_ms() - t0;
    assert_true(c0 >= 0 && c1 >= 0);
    fprintf(stderr, "server CPU %lld ms over %lld ms with %d connections waiting\n", c1 - c0,
            wall, HELD);
    /* a spinning loop takes ~all of wall; an idle one ~0 */
    assert_true((c1 - c0) * 3 < wall);

    /* the node already in keeps working */
    json_t *p = rdv_lookup_one(a, alice.id);
    assert_non_null(p);
    json_decref(p);

    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    bool said = strstr(log, "out of file descriptors") && strstr(log, "LimitNOFILE");
    free(log);
    assert_true(said);

    for (int i = 0; i < HELD; i++)
        if (held[i] >= 0)
            close(held[i]);

    /* a new node gets in once the descriptors are free again */
    rdv_tn_init(&bob, "bob");
    rdv_ws *b = NULL;
    long long deadline = rdv_ts_mono_ms() + 10000;
    while (!b && rdv_ts_mono_ms() < deadline) {
        b = rdv_tn_connect(port, &bob);
        if (!b)
            usleep(100 * 1000);
    }
    assert_non_null(b);

    char *body = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &body, T_MS),
                     200);
    const char *m = strstr(body, "\nrendezvous_accept_pauses_total ");
    assert_non_null(m);
    assert_true(atoll(m + strlen("\nrendezvous_accept_pauses_total ")) >= 1);
    assert_non_null(strstr(body, "\nrendezvous_open_files_limit 64\n"));
    free(body);
}

static int teardown(void **state)
{
    (void)state;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fd_limit_no_spin_and_recovery, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
