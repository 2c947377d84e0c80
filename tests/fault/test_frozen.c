/* test_frozen.c - fault_frozen: the server is stopped (SIGSTOP) for longer
 * than the ping interval and the client's keepalive, then continued.
 *
 * A node on the real client library (librendezvous, keepalive 1 s: it
 * drops a connection silent for 2 s) detects the frozen server, reconnects
 * after SIGCONT (a second welcome), and the server sorts out the ghost: a
 * lookup from another node shows it online, and an offer sent after the
 * recovery reaches it exactly once.
 */
#include <signal.h>
#include <stdlib.h>

#include "itest.h"
#include "client_peer.h"

typedef struct peer {
    pthread_mutex_t mu;
    int offers;
    char sid[RDV_SESSION_ID_LEN + 1];
} peer;

static peer P = {.mu = PTHREAD_MUTEX_INITIALIZER};
static rdv_client *client;

static void on_offer(rdv_client *c, const rdv_session_msg *m, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    if (!strcmp(m->session_id, p->sid))
        p->offers++;
    pthread_mutex_unlock(&p->mu);
}

static unsigned connects(void)
{
    rdv_client_info info;
    if (rdv_client_get_info(client, &info) != 0)
        return 0;
    return info.state == RDV_STATE_AUTHENTICATED ? info.connects : 0;
}

static void test_frozen(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--ping-interval", "1000", "--idle-timeout", "3000");
    int port = rdv_ts_server_port(s);
    rdv_identity id;
    char alice_id[RDV_NODE_ID_LEN + 1];
    rdv_ts_identity("alice", &id, alice_id);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1", port);
    rdv_client_config cfg;
    rdv_ts_client_config(&cfg, url, &id);
    cfg.keepalive_ms = 1000;
    cfg.cb_offer = on_offer;
    cfg.user_ptr = &P;
    assert_int_equal(rdv_client_create(&cfg, &client), 0);
    rdv_identity_wipe(&id);
    assert_int_equal(rdv_client_start(client), 0);
    long long until = rdv_ts_mono_ms() + 20000;
    while (connects() < 1 && rdv_ts_mono_ms() < until)
        usleep(20 * 1000);
    assert_int_equal(connects(), 1);

    /* frozen for 4 s: over the ping interval and twice the keepalive */
    assert_int_equal(rdv_ts_server_signal(s, SIGSTOP), 0);
    usleep(4000 * 1000);
    assert_int_equal(rdv_ts_server_signal(s, SIGCONT), 0);

    until = rdv_ts_mono_ms() + 30000;
    while (connects() < 2 && rdv_ts_mono_ms() < until)
        usleep(20 * 1000);
    if (connects() < 2)
        fail_msg("the client did not reconnect after the server was frozen");

    /* the ghost is gone, the new connection is the node's presence */
    rdv_tn bob;
    rdv_ws *b = itest_join(s, &bob, "bob");
    json_t *e = itest_alive(b, alice_id);
    assert_true(json_is_true(json_object_get(e, "online")));

    /* a message after the recovery is delivered once */
    pthread_mutex_lock(&P.mu);
    rdv_uuid_v4(P.sid);
    pthread_mutex_unlock(&P.mu);
    size_t len = 0;
    char *t = rdv_tn_offer(&bob, alice_id, P.sid, NULL, &len);
    assert_non_null(t);
    int rc = rdv_ws_send_text(b, t, len);
    free(t);
    assert_int_equal(rc, 0);
    until = rdv_ts_mono_ms() + 10000;
    for (;;) {
        pthread_mutex_lock(&P.mu);
        int n = P.offers;
        pthread_mutex_unlock(&P.mu);
        if (n >= 1 || rdv_ts_mono_ms() > until)
            break;
        usleep(20 * 1000);
    }
    usleep(1500 * 1000); /* a second copy would come by now */
    pthread_mutex_lock(&P.mu);
    int n = P.offers;
    pthread_mutex_unlock(&P.mu);
    assert_int_equal(n, 1);
    itest_alive(b, alice_id); /* and bob got no error for it */
}

static int teardown(void **state)
{
    (void)state;
    rdv_client_destroy(client);
    client = NULL;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_frozen, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
