/* test_tls.c - fault_tls: wss:// with certificates made by the test
 * (tls_pki.sh: a root CA, an intermediate, leaf certificates), nodes on
 * the real client library (librendezvous).
 *
 *   chain         nodes trusting only the root verify the server's chain
 *                 (leaf + intermediate) by host name and by IP, and signal;
 *   refused       an untrusted CA and a wrong host name are refused by
 *                 librendezvous with RDV_ERR_TLS_VERIFY and a text naming
 *                 the cause;
 *   old_versions  TLS 1.0 and 1.1 (openssl s_client, security level 0 so
 *                 that the client would agree) get a "protocol version"
 *                 alert from the server; TLS 1.2 and 1.3 connect;
 *   flood         300 connections from 127.0.0.2 that send a piece of a
 *                 ClientHello and stop: --max-handshakes-per-ip refuses
 *                 the ones over the cap, --handshake-timeout closes the
 *                 rest, and a new wss:// node gets in at its first
 *                 attempt meanwhile;
 *   reload        SIGHUP after the certificate files were replaced: new
 *                 handshakes get the new certificate (another CA), nodes
 *                 connected before keep their connection and signal; a
 *                 key that does not match is refused by the reload, the
 *                 previous certificate stays in use.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "itest.h"
#include "client_peer.h"
#include "fault.h"

#define WAIT_MS 15000
/* Attempts for a node that must get in: on a loaded machine a handshake can
 * fail once (see node_new), and the library retries. Nodes that must be
 * refused, and the one that must get in at its first attempt, have 1. */
#define SETTLE_ATTEMPTS 3

static char pki[64];

typedef struct tnode {
    pthread_mutex_t mu;
    rdv_client *c;
    char id[RDV_NODE_ID_LEN + 1];
    int offers;
} tnode;

#define MAX_NODES 8
static tnode nodes[MAX_NODES];
static int n_nodes;

static void on_offer(rdv_client *c, const rdv_session_msg *m, void *u)
{
    (void)c;
    (void)m;
    tnode *t = u;
    pthread_mutex_lock(&t->mu);
    t->offers++;
    pthread_mutex_unlock(&t->mu);
}

static const char *pki_file(const char *name)
{
    static char buf[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", pki, name);
    return buf[i];
}

/* A started threaded client `label` for url, trusting ca_file (a file of
 * the PKI dir); max_attempts as rdv_reconnect_policy. The tests let each
 * node settle before they create the next: lws 4.1.6 allocates a new
 * process-wide SSL ex_data index at every context creation
 * (lws_context_init_ssl_library), so a client created while another one
 * is in its TLS handshake makes that handshake fail ("can't get wsi from
 * ssl privdata"); the library retries, but these nodes have one attempt. */
static tnode *node_new(const char *label, const char *url, const char *ca_file, int max_attempts)
{
    assert_true(n_nodes < MAX_NODES);
    tnode *t = &nodes[n_nodes++];
    pthread_mutex_init(&t->mu, NULL);
    rdv_identity id;
    rdv_ts_identity(label, &id, t->id);
    rdv_client_config cfg;
    rdv_ts_client_config(&cfg, url, &id);
    cfg.tls_ca_file = ca_file ? pki_file(ca_file) : NULL;
    cfg.stun_disable = 1;
    cfg.reconnect.max_attempts = max_attempts;
    cfg.cb_offer = on_offer;
    cfg.user_ptr = t;
    assert_int_equal(rdv_client_create(&cfg, &t->c), 0);
    rdv_identity_wipe(&id);
    assert_int_equal(rdv_client_start(t->c), 0);
    return t;
}

static rdv_client_info node_info(tnode *t)
{
    rdv_client_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(rdv_client_get_info(t->c, &info), 0);
    return info;
}

/* Waits for AUTHENTICATED (true) or FAILED (false). */
static bool node_settles(tnode *t)
{
    long long until = rdv_ts_mono_ms() + WAIT_MS;
    for (;;) {
        rdv_client_info info = node_info(t);
        if (info.state == RDV_STATE_AUTHENTICATED)
            return true;
        if (info.state == RDV_STATE_FAILED || rdv_ts_mono_ms() > until) {
            fprintf(stderr, "node %.8s: state %d, last error %d: %s\n", t->id, (int)info.state,
                    info.last_error, info.last_error_text);
            return false;
        }
        usleep(10 * 1000);
    }
}

/* from sends an offer to `to`; `to` receives it (once) within WAIT_MS. */
static void signal_once(tnode *from, tnode *to)
{
    pthread_mutex_lock(&to->mu);
    int before = to->offers;
    pthread_mutex_unlock(&to->mu);
    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    rdv_connection_info ci;
    memset(&ci, 0, sizeof ci);
    ci.nat_type = RDV_NAT_UNKNOWN;
    assert_int_equal(rdv_client_send_offer(from->c, to->id, sid, &ci), 0);
    RDV_TS_WAIT_UNTIL(&to->mu, to->offers > before, "the offer over wss://", WAIT_MS,
                      usleep(5000));
}

static void url_of(char *url, size_t len, const char *host, rdv_ts_server *s)
{
    snprintf(url, len, "wss://%s:%d/v1", host, rdv_ts_server_port(s));
}

static rdv_ts_server *start_tls(const char *cert, const char *key, const char *const *more)
{
    const char *args[16];
    int n = 0;
    args[n++] = "--tls-cert";
    args[n++] = cert;
    args[n++] = "--tls-key";
    args[n++] = key;
    for (int i = 0; more && more[i] && n < 15; i++)
        args[n++] = more[i];
    args[n] = NULL;
    rdv_ts_server *s = rdv_ts_server_start(args);
    if (!s)
        fail_msg("rendezvousd with TLS did not start");
    return s;
}

static void test_tls_chain(void **state)
{
    (void)state;
    rdv_ts_server *s = start_tls(pki_file("leaf.pem"), pki_file("leaf.key"), NULL);
    char by_name[96], by_ip[96];
    url_of(by_name, sizeof by_name, "localhost", s);
    url_of(by_ip, sizeof by_ip, "127.0.0.1", s);
    tnode *a = node_new("alice", by_name, "root.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(a));
    tnode *b = node_new("bob", by_ip, "root.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(b));
    signal_once(a, b);
    signal_once(b, a);
}

static void test_tls_refused(void **state)
{
    (void)state;
    rdv_ts_server *s = start_tls(pki_file("leaf.pem"), pki_file("leaf.key"), NULL);
    char url[96];
    url_of(url, sizeof url, "localhost", s);
    /* a CA the server's certificate does not chain to */
    tnode *u = node_new("untrusting", url, "root2.pem", 1);
    assert_false(node_settles(u));
    rdv_client_info info = node_info(u);
    assert_int_equal(info.connects, 0);
    assert_int_equal(info.last_error, RDV_ERR_TLS_VERIFY);
    if (!strstr(info.last_error_text, "not signed by a CA this client trusts") ||
        !strstr(info.last_error_text, "issuer /CN=rdv-test-root") ||
        !strstr(info.last_error_text, "root2.pem"))
        fail_msg("untrusted CA, unclear text: %s", info.last_error_text);

    /* a certificate for another host name, from the trusted chain */
    rdv_ts_server *w = start_tls(pki_file("wrong.pem"), pki_file("wrong.key"), NULL);
    url_of(url, sizeof url, "localhost", w);
    tnode *h = node_new("misnamed", url, "root.pem", 1);
    assert_false(node_settles(h));
    info = node_info(h);
    assert_int_equal(info.connects, 0);
    assert_int_equal(info.last_error, RDV_ERR_TLS_VERIFY);
    if (!strstr(info.last_error_text, "not valid for the host name 'localhost'") ||
        !strstr(info.last_error_text, "DNS:wrong.example"))
        fail_msg("wrong host name, unclear text: %s", info.last_error_text);
    assert_non_null(strstr(rdv_strerror(RDV_ERR_TLS_VERIFY), "certificate"));
}

/* Runs `openssl s_client` with `version` (-tls1, -tls1_1, ...) against
 * port; returns its output (malloc'd) or NULL. */
static char *s_client(int port, const char *version)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "echo | timeout 10 openssl s_client -connect 127.0.0.1:%d %s "
             "-cipher 'DEFAULT:@SECLEVEL=0' 2>&1",
             port, version);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 65536, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t r;
    while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, p)) > 0)
        n += r;
    out[n] = '\0';
    pclose(p);
    return out;
}

static void test_tls_old_versions(void **state)
{
    (void)state;
    rdv_ts_server *s = start_tls(pki_file("leaf.pem"), pki_file("leaf.key"), NULL);
    int port = rdv_ts_server_port(s);
    const char *old[] = {"-tls1", "-tls1_1"};
    for (size_t i = 0; i < 2; i++) {
        char *out = s_client(port, old[i]);
        assert_non_null(out);
        if (!strstr(out, "alert protocol version"))
            fail_msg("openssl s_client %s: no protocol version alert from the server:\n%s",
                     old[i], out);
        free(out);
    }
    const char *good[] = {"-tls1_2", "-tls1_3"};
    for (size_t i = 0; i < 2; i++) {
        char *out = s_client(port, good[i]);
        assert_non_null(out);
        if (!strstr(out, "Verify return code") || strstr(out, "alert"))
            fail_msg("openssl s_client %s did not connect:\n%s", good[i], out);
        free(out);
    }
}

#define FLOOD 300
/* The first bytes of a TLS 1.2 ClientHello record of 512 bytes. */
static const unsigned char partial_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                              0x00, 0x01, 0xfc, 0x03, 0x03};

static void test_tls_flood(void **state)
{
    (void)state;
    rdv_ts_server *s = start_tls(pki_file("leaf.pem"), pki_file("leaf.key"),
                                 (const char *[]){"--handshake-timeout", "3000", NULL});
    int port = rdv_ts_server_port(s);
    char url[96];
    url_of(url, sizeof url, "localhost", s);
    tnode *a = node_new("alice", url, "root.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(a));

    int fds[FLOOD];
    int opened = 0;
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = fault_tcp_connect(port, "127.0.0.2");
        if (fds[i] < 0)
            continue;
        opened++;
        (void)send(fds[i], partial_hello, sizeof partial_hello, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    assert_true(opened > FLOOD / 2);

    /* a new node gets in at its first attempt while they are held */
    long long t0 = rdv_ts_mono_ms();
    tnode *b = node_new("bob", url, "root.pem", 1);
    assert_true(node_settles(b));
    fprintf(stderr, "new wss:// node authenticated in %lld ms with %d partial ClientHellos "
                    "held\n",
            rdv_ts_mono_ms() - t0, opened);
    signal_once(a, b);

    /* the cap refused most of them at once (logged), the timeout closes
     * the rest */
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    bool capped = strstr(log, "refusing connections from 127.0.0.2") != NULL;
    free(log);
    if (!capped)
        fail_msg("no --max-handshakes-per-ip refusal logged for the TLS flood");
    int closed = 0;
    long long deadline = rdv_ts_mono_ms() + 10000;
    while (rdv_ts_mono_ms() < deadline && closed < opened) {
        for (int i = 0; i < FLOOD; i++) {
            if (fds[i] < 0)
                continue;
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
    fprintf(stderr, "%d of %d held TLS handshakes closed by the server within %lld ms\n",
            closed, opened, rdv_ts_mono_ms() - t0);
    for (int i = 0; i < FLOOD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    assert_int_equal(closed, opened);
    signal_once(b, a);
}

/* Copies PKI file `from` over path `to` (written whole, then renamed, as
 * a certificate manager does). */
static void install_file(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", pki_file(from), to, to,
             to);
    assert_int_equal(system(cmd), 0);
}

/* Waits for the n-th "reload N:" line in s's log; returns it (malloc'd). */
static char *reload_line(rdv_ts_server *s, int n)
{
    char key[32];
    snprintf(key, sizeof key, "reload %d:", n);
    long long until = rdv_ts_mono_ms() + WAIT_MS;
    for (;;) {
        char *log = rdv_ts_server_read_log(s);
        const char *l = log ? strstr(log, key) : NULL;
        if (l) {
            size_t len = strcspn(l, "\n");
            char *line = strndup(l, len);
            free(log);
            return line;
        }
        free(log);
        if (rdv_ts_mono_ms() > until) {
            rdv_ts_server_dump_log(s, "no reload line");
            fail_msg("no '%s' line in the log", key);
        }
        usleep(20 * 1000);
    }
}

static void test_tls_reload(void **state)
{
    (void)state;
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/server.pem", pki);
    snprintf(key, sizeof key, "%s/server.key", pki);
    install_file("leaf.pem", cert);
    install_file("leaf.key", key);
    rdv_ts_server *s = start_tls(cert, key, NULL);
    char url[96];
    url_of(url, sizeof url, "localhost", s);
    tnode *a = node_new("alice", url, "root.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(a));
    tnode *b = node_new("bob", url, "root.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(b));

    /* a certificate from another CA */
    install_file("leaf2.pem", cert);
    install_file("leaf2.key", key);
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    char *line = reload_line(s, 1);
    if (!strstr(line, "ok") || !strstr(line, "tls"))
        fail_msg("reload 1 did not apply the tls hook: %s", line);
    free(line);
    tnode *c = node_new("carol", url, "root2.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(c));
    tnode *d = node_new("dave", url, "root.pem", 1);
    assert_false(node_settles(d)); /* the old CA's certificate is gone */
    assert_int_equal(node_info(d).last_error, RDV_ERR_TLS_VERIFY);

    /* the nodes connected before were not dropped */
    assert_int_equal(node_info(a).connects, 1);
    assert_int_equal(node_info(b).connects, 1);
    assert_int_equal(node_info(a).state, RDV_STATE_AUTHENTICATED);
    signal_once(a, b);
    signal_once(c, a);

    /* a key that is not the certificate's: refused, nothing changes */
    install_file("wrong.key", key);
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    line = reload_line(s, 2);
    if (!strstr(line, "FAILED") || !strstr(line, "tls") || !strstr(line, "server.key") ||
        !strstr(line, "kept the previous certificate"))
        fail_msg("reload 2 with a mismatched key: %s", line);
    free(line);
    tnode *e = node_new("erin", url, "root2.pem", SETTLE_ATTEMPTS);
    assert_true(node_settles(e));
    signal_once(e, b);
    assert_int_equal(node_info(a).connects, 1);
    assert_int_equal(rdv_ts_server_stop(s), 0);
    assert_true(rdv_ts_server_log_clean(s));
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_nodes; i++) {
        rdv_client_destroy(nodes[i].c);
        pthread_mutex_destroy(&nodes[i].mu);
    }
    memset(nodes, 0, sizeof nodes);
    n_nodes = 0;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "fault_tls: no openssl command (apt-get install openssl)\n");
        return -1;
    }
    snprintf(pki, sizeof pki, "/tmp/rdv-fault-tls-XXXXXX");
    if (!mkdtemp(pki))
        return -1;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", RDV_TLS_PKI_SCRIPT, pki);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    const char *keep = getenv("RDV_KEEP_TMP");
    if (keep && !strcmp(keep, "1"))
        return 0;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pki);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tls_chain, teardown),
        cmocka_unit_test_teardown(test_tls_refused, teardown),
        cmocka_unit_test_teardown(test_tls_old_versions, teardown),
        cmocka_unit_test_teardown(test_tls_flood, teardown),
        cmocka_unit_test_teardown(test_tls_reload, teardown),
    };
    if (argc > 1) {
        static char filter[64];
        snprintf(filter, sizeof filter, "test_tls_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
