/* test_policy.c - admission_policy: the operator's relay and signaling
 * policy by fleet group (--policy FILE, README "Policy").
 *
 * A fleet-mode server; nodes ops1, ops2 (group ops) and guest (group
 * guests). `relay ops sessions 1`: ops1 may open a relay session to ops2
 * (and only one: the group's session cap), guest gets `forbidden` for its
 * own relayOpen and ops1 for one to guest. `signal ops ops`: guest's offer
 * to ops1 is `forbidden`, ops1's to ops2 passes. SIGHUP with a broken file
 * logs the line and keeps the policy in force; SIGHUP with a good one
 * applies it (now guests may relay, ops may not). A broken file at start
 * stops the server with its line number. Without --policy, everyone may
 * relay (open mode unchanged).
 */
#include "itest.h"

#include <signal.h>
#include <sodium.h>

#include "admin_http.h"
#include "schema/fleet_cert.h"
#include "relay_util.h"

#define DAY_MS (86400LL * 1000)
#define TOKEN "0123456789abcdef0123456789abcdef"

typedef struct fleet_key {
    uint8_t pk[32], sk[64];
    char hex[65];
} fleet_key;

static void fleet_key_init(fleet_key *k)
{
    crypto_sign_keypair(k->pk, k->sk);
    sodium_bin2hex(k->hex, sizeof k->hex, k->pk, 32);
}

/* n joins with a certificate of k naming `group`. */
static rdv_ws *join_in(rdv_ts_server *s, const fleet_key *k, rdv_tn *n, const char *label,
                       const char *group)
{
    rdv_tn_init(n, label);
    int64_t now = rdv_now_ms();
    const char *groups[] = {group};
    json_t *cert = rdv_fleet_cert_make(k->sk, n->id, NULL, now - DAY_MS, now + DAY_MS, groups, 1);
    assert_non_null(cert);
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    json_t *extra = json_object();
    json_object_set_new(extra, "cert", cert);
    size_t len = 0;
    char *h = rdv_tn_hello(n, ch, NULL, NULL, extra, NULL, &len);
    json_decref(extra);
    json_decref(ch);
    itest_send_free(c, h);
    itest_expect(c, "welcome");
    return c;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* relayOpen a -> b: delivered to b (ok) or refused to a with forbidden. */
static void relay_open_expect(rdv_ws *a, const rdv_tn *na, rdv_ws *b, const rdv_tn *nb,
                              bool ok)
{
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *open = relay_signed(na, RDV_MSG_RELAY_OPEN, nb->id, sid);
    itest_send(a, open);
    if (ok) {
        int rc = rdv_expect_bytes(b, open, strlen(open), T_MS);
        free(open);
        if (rc != 0)
            fail_msg("relayOpen %s -> %s not delivered", na->label, nb->label);
        return;
    }
    free(open);
    json_t *e = itest_expect_error(a, "forbidden");
    if (!strstr(rdv_json_str(e, "message"), "policy"))
        fail_msg("forbidden without saying why: %s", rdv_json_str(e, "message"));
}

static int wait_log(rdv_ts_server *s, const char *what, int count, int timeout_ms)
{
    long long end = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        char *log = rdv_ts_server_read_log(s);
        int n = 0;
        for (const char *p = log; p && (p = strstr(p, what)); p++)
            n++;
        free(log);
        if (n >= count)
            return 0;
        if (rdv_ts_mono_ms() > end)
            return -1;
        usleep(20000);
    }
}

static void test_policy_relay_and_signal(void **state)
{
    (void)state;
    fleet_key k;
    fleet_key_init(&k);
    char path[64];
    snprintf(path, sizeof path, "/tmp/rdv-policy-%d.conf", (int)getpid());
    write_file(path, "# who may use the relay\nrelay ops sessions 1   # one each\n"
                     "signal ops ops\n");
    rdv_ts_server *s = START("--admission", "fleet", "--fleet-key", k.hex, "--policy", path);
    rdv_tn ops1, ops2, guest;
    rdv_ws *a = join_in(s, &k, &ops1, "ops1", "ops");
    rdv_ws *b = join_in(s, &k, &ops2, "ops2", "ops");
    rdv_ws *g = join_in(s, &k, &guest, "guest", "guests");
    /* relay: ops may, guests may not, nor may ops reach a guest */
    relay_open_expect(a, &ops1, b, &ops2, true);
    relay_open_expect(g, &guest, a, &ops1, false);
    relay_open_expect(a, &ops1, g, &guest, false);
    /* the group's session cap (1): ops1's second relayOpen */
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    itest_send_free(a, relay_signed(&ops1, RDV_MSG_RELAY_OPEN, ops2.id, sid));
    relay_expect_error(a, "limit_exceeded", sid);
    /* signal: guest -> ops refused, ops -> ops passes */
    size_t len;
    itest_send_free(g, rdv_tn_offer(&guest, ops1.id, NULL, NULL, &len));
    itest_expect_error(g, "forbidden");
    itest_send_free(a, rdv_tn_offer(&ops1, ops2.id, NULL, NULL, &len));
    itest_expect(b, "offer");

    /* SIGHUP with a broken file: refused with its line, old policy kept */
    write_file(path, "relay guests\nrelay ops bogus 3\n");
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    if (wait_log(s, "FAILED", 1, 5000) != 0) {
        rdv_ts_server_dump_log(s, "reload");
        fail_msg("no FAILED reload line");
    }
    char *log = rdv_ts_server_read_log(s);
    char want[96];
    snprintf(want, sizeof want, "%s:2:", path);
    bool named = log && strstr(log, want);
    free(log);
    assert_true(named);
    relay_open_expect(g, &guest, a, &ops1, false);
    /* a good file applies: guests may relay now, ops may not */
    write_file(path, "relay guests\n");
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    if (wait_log(s, "1 relay rule(s), 0 signal rule(s)", 1, 5000) != 0) {
        rdv_ts_server_dump_log(s, "reload");
        fail_msg("the good policy was not loaded");
    }
    rdv_tn guest2;
    rdv_ws *g3 = join_in(s, &k, &guest2, "guest2", "guests");
    relay_open_expect(g, &guest, g3, &guest2, true);
    relay_open_expect(b, &ops2, g3, &guest2, false);
    unlink(path);
}

static void test_policy_admin_view(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/rdv-policy-view-%d.conf", (int)getpid());
    write_file(path, "relay ops rate 1000 quota 5000\nrelay *\nsignal * *\n");
    rdv_ts_server *s = rdv_ts_server_start_env(
        (const char *const[]){"RENDEZVOUS_ADMIN_TOKEN=" TOKEN, NULL},
        (const char *const[]){"--policy", path, NULL});
    assert_non_null(s);
    char *resp = NULL;
    const char *body = NULL;
    int st = admin_http(rdv_ts_server_operator_port(s), "GET", "/admin/v1/policy", TOKEN, NULL,
                        &resp, &body);
    assert_int_equal(st, 200);
    json_t *p = json_loads(body, 0, NULL);
    free(resp);
    assert_non_null(p);
    json_t *r0 = json_array_get(json_object_get(p, "relay"), 0);
    assert_string_equal(rdv_json_str(r0, "group"), "ops");
    assert_int_equal(json_integer_value(json_object_get(r0, "rate")), 1000);
    assert_int_equal(json_integer_value(json_object_get(r0, "quota")), 5000);
    assert_int_equal(json_array_size(json_object_get(p, "signal")), 1);
    json_decref(p);
    /* open mode (no certificates): `relay *` lets everyone relay */
    rdv_tn a, b;
    rdv_ws *ca = itest_join(s, &a, "a");
    rdv_ws *cb = itest_join(s, &b, "b");
    relay_open_expect(ca, &a, cb, &b, true);
    unlink(path);
}

static void test_policy_bad_file_at_start(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"relay ops\nrelay\n", ":2:"},
        {"relay ops rate -5\n", ":1:"},
        {"# ok\n\nsignal ops\n", ":3:"},
        {"allow everyone\n", ":1:"},
        {"relay bad/group\n", ":1:"},
    };
    char path[64];
    snprintf(path, sizeof path, "/tmp/rdv-policy-bad-%d.conf", (int)getpid());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i][0]);
        char db[64];
        snprintf(db, sizeof db, "/tmp/rdv-policy-bad-%d.db", (int)getpid());
        const char *args[] = {"--port", "0", "--stun-port", "0", "--operator-listen", "off",
                              "--db", db, "--policy", path, NULL};
        char *out = NULL;
        int code = rdv_ts_run_serverd(args, &out, T_MS);
        for (const char *ext = ""; ext; ext = !*ext ? "-wal" : !strcmp(ext, "-wal") ? "-shm" : NULL) {
            char f[80];
            snprintf(f, sizeof f, "%s%s", db, ext);
            unlink(f);
        }
        char want[96];
        snprintf(want, sizeof want, "%s%s", path, bad[i][1]);
        bool said = out && strstr(out, want);
        if (code == 0 || !said) {
            fprintf(stderr, "%s\n", out ? out : "");
            free(out);
            fail_msg("policy %zu: exit %d, want a refusal naming %s", i, code, want);
        }
        free(out);
    }
    unlink(path);
}

static void test_policy_none_is_open(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn a, b;
    rdv_ws *ca = itest_join(s, &a, "a");
    rdv_ws *cb = itest_join(s, &b, "b");
    relay_open_expect(ca, &a, cb, &b, true);
    size_t len;
    itest_send_free(cb, rdv_tn_offer(&b, a.id, NULL, NULL, &len));
    itest_expect(ca, "offer");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        ITEST(test_policy_relay_and_signal),
        ITEST(test_policy_admin_view),
        ITEST(test_policy_bad_file_at_start),
        ITEST(test_policy_none_is_open),
    };
    return ITEST_RUN(tests);
}
