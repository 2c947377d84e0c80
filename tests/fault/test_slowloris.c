/* test_slowloris.c - fault_slowloris: 2,000 connections from one address
 * (127.0.0.2) that send half an HTTP upgrade and stop.
 *
 * Before the handshake cap, they took every HTTP header buffer of the
 * server and a new node waited ~17 s to get in. Now one address holds at
 * most --max-handshakes-per-ip unfinished upgrades (the rest are refused
 * at accept), so a new node from another address gets in on its first
 * attempt and a node already connected keeps signaling; the held ones are
 * closed after --handshake-timeout.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "itest.h"
#include "fault.h"

#define ATTACKERS 2000
static const char half_upgrade[] = "GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";

static long long metric_value(int port, const char *name)
{
    char *body = NULL;
    if (rdv_http_get(port, "/metrics", &body, T_MS) != 200) {
        free(body);
        return -1;
    }
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *m = strstr(body, key);
    long long v = m ? atoll(m + strlen(key)) : -1;
    free(body);
    return v;
}

static void test_slowloris_new_node_gets_in(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--handshake-timeout", "2000");
    int port = rdv_ts_server_port(s);
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");

    int *fds = calloc(ATTACKERS, sizeof *fds);
    assert_non_null(fds);
    int opened = 0;
    for (int i = 0; i < ATTACKERS; i++) {
        fds[i] = fault_tcp_connect(port, "127.0.0.2");
        if (fds[i] < 0)
            continue;
        opened++;
        /* a refused connection may already be reset: ignore errors */
        (void)send(fds[i], half_upgrade, sizeof half_upgrade - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    assert_true(opened > ATTACKERS / 2);

    /* a new node from another address gets in at its first attempt */
    long long t0 = rdv_ts_mono_ms();
    rdv_tn_init(&carol, "carol");
    rdv_ws *c = rdv_tn_connect(port, &carol);
    long long took = rdv_ts_mono_ms() - t0;
    fprintf(stderr, "new node authenticated in %lld ms with %d half-open upgrades sent\n", took,
            opened);
    assert_non_null(c);

    /* nodes already in keep signaling */
    size_t len = 0;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *offer = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    assert_int_equal(rdv_ws_send_text(a, offer, len), 0);
    free(offer);
    itest_expect(b, "offer");

    assert_true(metric_value(rdv_ts_server_operator_port(s),
                             "rendezvous_handshakes_refused_total") >= ATTACKERS - 64);

    /* the held upgrades are closed by the handshake timeout (2 s) */
    int closed = 0;
    long long deadline = rdv_ts_mono_ms() + 8000;
    while (rdv_ts_mono_ms() < deadline && closed < opened) {
        for (int i = 0; i < ATTACKERS; i++) {
            if (fds[i] < 0)
                continue; /* never opened, or seen closed */
            char buf[256];
            ssize_t n = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(fds[i]);
                fds[i] = -2;
                closed++;
            }
        }
        if (closed < opened)
            usleep(100 * 1000);
    }
    fprintf(stderr, "%d of %d attacker connections closed by the server\n", closed, opened);
    assert_int_equal(closed, opened);
    for (int i = 0; i < ATTACKERS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

static int teardown(void **state)
{
    (void)state;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_slowloris_new_node_gets_in, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
