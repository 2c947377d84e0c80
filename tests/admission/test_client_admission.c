/* test_client_admission.c - librendezvous against a rendezvousd in fleet
 * mode (PROTOCOL.md 6.1, 10): a client given its certificate file
 * connects; one without it gets RDV_ERR_NOT_ADMITTED (a code of its own,
 * the server's reason in last_error_text) and does NOT reconnect in a
 * tight loop although its reconnect policy says 50 ms; a certificate file
 * that is missing, not a certificate, or another node's is refused at
 * create. One ctest per cmocka test (RDV_TEST_FILTER).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include <rendezvous/rendezvous.h>

#include "client_peer.h"
#include "schema/fleet_cert.h"
#include "schema/sign.h"

#define WAIT_MS 10000

typedef struct tpeer {
    pthread_mutex_t mu;
    rdv_state state;
    int n_not_admitted;
    int n_connected;
} tpeer;

static void on_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    tpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->state = st;
    if (st == RDV_STATE_AUTHENTICATED)
        p->n_connected++;
    pthread_mutex_unlock(&p->mu);
}

static void on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    tpeer *p = u;
    pthread_mutex_lock(&p->mu);
    if (e->code == RDV_ERR_NOT_ADMITTED && e->server_code == NULL)
        p->n_not_admitted++; /* the report of the connection's end */
    pthread_mutex_unlock(&p->mu);
}

/* A fleet key, its hex public key, a temp dir for files. */
static uint8_t g_pk[32], g_sk[64];
static char g_pk_hex[65];
static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    crypto_sign_keypair(g_pk, g_sk);
    sodium_bin2hex(g_pk_hex, sizeof g_pk_hex, g_pk, 32);
    snprintf(g_dir, sizeof g_dir, "/tmp/rdv-adm-client-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    int rc = rdv_ts_peers_teardown(state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

/* Writes the certificate of node_id (signed with the fleet key) to a file;
 * returns its path (static). */
static const char *cert_file(const char *name, const char *node_id)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s.cert", g_dir, name);
    int64_t now = rdv_now_ms();
    json_t *c = rdv_fleet_cert_make(g_sk, node_id, NULL, now - 60000, now + 86400000LL, NULL, 0);
    assert_non_null(c);
    assert_int_equal(json_dump_file(c, path, JSON_INDENT(2)), 0);
    json_decref(c);
    return path;
}

static void free_client(void *c)
{
    rdv_ts_peer_untrack(c);
    rdv_client_destroy(c);
}

static rdv_client *client_for(rdv_ts_server *s, const char *label, const char *cert, tpeer *p,
                              int *create_rc)
{
    char url[64], node_id[RDV_NODE_ID_LEN + 1];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1", rdv_ts_server_port(s));
    rdv_identity id;
    rdv_ts_identity(label, &id, node_id);
    rdv_client_config cfg;
    rdv_ts_client_config(&cfg, url, &id); /* reconnect backoff 50 .. 400 ms */
    cfg.cert_file = cert;
    cfg.stun_disable = 1;
    cfg.cb_state_changed = on_state;
    cfg.cb_error = on_error;
    cfg.user_ptr = p;
    rdv_client *c = NULL;
    *create_rc = rdv_client_create(&cfg, &c);
    rdv_identity_wipe(&id);
    if (*create_rc == 0) {
        assert_int_equal(rdv_client_start(c), 0);
        assert_int_equal(rdv_ts_peer_track(c, free_client), 0);
    }
    return c;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* With its certificate file the node is admitted. */
static void test_client_cert_admitted(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(
        (const char *const[]){"--admission", "fleet", "--fleet-key", g_pk_hex, NULL});
    char node_id[RDV_NODE_ID_LEN + 1];
    rdv_identity id;
    rdv_ts_identity("alice", &id, node_id);
    rdv_identity_wipe(&id);
    tpeer p = {.mu = PTHREAD_MUTEX_INITIALIZER};
    int rc;
    rdv_client *c = client_for(s, "alice", cert_file("alice", node_id), &p, &rc);
    assert_int_equal(rc, 0);
    RDV_TS_WAIT_FOR(&p, p.n_connected == 1, WAIT_MS);
    free_client(c);
}

/* Without one: RDV_ERR_NOT_ADMITTED with the server's reason, and no
 * tight reconnect loop - one attempt in 3 s where the policy alone (50 ms,
 * at most 400 ms) would make more than 7. */
static void test_not_admitted_no_tight_loop(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(
        (const char *const[]){"--admission", "fleet", "--fleet-key", g_pk_hex, NULL});
    tpeer p = {.mu = PTHREAD_MUTEX_INITIALIZER};
    int rc;
    rdv_client *c = client_for(s, "bob", NULL, &p, &rc);
    assert_int_equal(rc, 0);
    RDV_TS_WAIT_FOR(&p, p.n_not_admitted >= 1, WAIT_MS);
    rdv_client_info info;
    assert_int_equal(rdv_client_get_info(c, &info), 0);
    assert_int_equal(info.last_error, RDV_ERR_NOT_ADMITTED);
    if (!strstr(info.last_error_text, "sent no fleet certificate") ||
        !strstr(info.last_error_text, "next attempt in"))
        fail_msg("last_error_text does not give the reason and the delay: %s",
                 info.last_error_text);
    sleep(3);
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    int refusals = count(log, "refused: not_admitted");
    free(log);
    pthread_mutex_lock(&p.mu);
    int reports = p.n_not_admitted, connected = p.n_connected;
    pthread_mutex_unlock(&p.mu);
    print_message("refusals seen by the server in 3 s: %d\n", refusals);
    assert_int_equal(refusals, 1);
    assert_int_equal(reports, 1);
    assert_int_equal(connected, 0);
    free_client(c);
}

/* Certificate files that cannot be used are refused at create. */
static void test_bad_cert_file(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    tpeer p = {.mu = PTHREAD_MUTEX_INITIALIZER};
    int rc;
    char path[160];
    snprintf(path, sizeof path, "%s/missing.cert", g_dir);
    assert_null(client_for(s, "carol", path, &p, &rc));
    assert_int_equal(rc, RDV_ERR_NOT_FOUND);
    snprintf(path, sizeof path, "%s/junk.cert", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"type\": \"fleetCert\"}\n", f);
    fclose(f);
    assert_null(client_for(s, "carol", path, &p, &rc));
    assert_int_equal(rc, RDV_ERR_FORMAT);
    /* dave's certificate for carol */
    char dave[RDV_NODE_ID_LEN + 1];
    rdv_identity id;
    rdv_ts_identity("dave", &id, dave);
    rdv_identity_wipe(&id);
    assert_null(client_for(s, "carol", cert_file("dave", dave), &p, &rc));
    assert_int_equal(rc, RDV_ERR_FORMAT);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_cert_admitted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_admitted_no_tight_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cert_file, setup, teardown),
    };
    if (getenv("RDV_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RDV_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
