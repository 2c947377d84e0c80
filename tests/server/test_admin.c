/* test_admin.c - admission_admin: the admin API on the operator's
 * listener (issue 16, README "Admin API").
 *
 * Off without a token (404 admin_off); a missing or wrong token gets 401
 * with a Bearer challenge; the API is not served on the public port even
 * with the right token; a token file readable by everyone, or a short
 * token, stops the server at start. With a token: the nodes online (NAT
 * type, observed address, connected since, relay use), one looked up,
 * one disconnected; allowlist add/remove, revoke (the live node is closed
 * with `revoked`) and unrevoke; each change in the audit log, served by
 * the API, written to the SQLite table audit_log and to a log line.
 * SIGHUP reads the token file again (a bad one keeps the tokens).
 */
#include "itest.h"

#include <ctype.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "admin_http.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

static rdv_ts_server *start_with_token(const char *const *args)
{
    rdv_ts_server *s =
        rdv_ts_server_start_env((const char *const[]){"RENDEZVOUS_ADMIN_TOKEN=" TOKEN, NULL},
                                args);
    if (!s)
        fail_msg("rendezvousd did not start");
    return s;
}

/* METHOD path with the token; expects status want; returns the parsed
 * JSON body (new reference). */
static json_t *call(rdv_ts_server *s, const char *method, const char *path, const char *body,
                    int want)
{
    char *resp = NULL;
    const char *b = NULL;
    int st = admin_http(rdv_ts_server_operator_port(s), method, path, TOKEN, body, &resp, &b);
    json_error_t err;
    json_t *j = b ? json_loads(b, 0, &err) : NULL;
    if (st != want || !j) {
        fprintf(stderr, "%s %s -> %d\n%s\n", method, path, st, resp ? resp : "(none)");
        free(resp);
        rdv_ts_server_dump_log(s, path);
        fail_msg("%s %s: HTTP %d (want %d) or not JSON", method, path, st, want);
    }
    free(resp);
    return j;
}

static void test_admin_off_without_token(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    char *resp = NULL;
    int st = admin_http(rdv_ts_server_operator_port(s), "GET", "/admin/v1/nodes", TOKEN, NULL,
                        &resp, NULL);
    bool said = resp && strstr(resp, "admin_off");
    free(resp);
    if (st != 404 || !said)
        fail_msg("admin API without a configured token: HTTP %d, want 404 admin_off", st);
    char *log = rdv_ts_server_read_log(s);
    bool logged = log && strstr(log, "admin API off");
    free(log);
    assert_true(logged);
}

static void test_admin_refuses_bad_tokens(void **state)
{
    (void)state;
    rdv_ts_server *s = start_with_token(NULL);
    int op = rdv_ts_server_operator_port(s), pub = rdv_ts_server_port(s);
    char *resp = NULL;
    /* no token */
    int st = admin_http(op, "GET", "/admin/v1/nodes", NULL, NULL, &resp, NULL);
    for (char *q = resp; q && *q; q++) /* header names are case-insensitive */
        *q = (char)tolower((unsigned char)*q);
    bool challenge = resp && strstr(resp, "www-authenticate: bearer");
    bool leaked = resp && strstr(resp, "\"nodes\"");
    free(resp);
    if (st != 401 || !challenge || leaked)
        fail_msg("no token: HTTP %d (want 401 with a Bearer challenge, no data)", st);
    /* a wrong one, a prefix of the right one, another scheme */
    const char *bad[] = {"0123456789abcdef0123456789abcdeX", "0123456789abcdef", TOKEN "0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = admin_http(op, "GET", "/admin/v1/nodes", bad[i], NULL, &resp, NULL);
        leaked = resp && strstr(resp, "\"nodes\"");
        free(resp);
        if (st != 401 || leaked)
            fail_msg("wrong token %zu: HTTP %d, want 401", i, st);
    }
    /* a change with a wrong token changes nothing */
    st = admin_http(op, "POST", "/admin/v1/allowlist", "nope-nope-nope-nope-nope",
                    "{\"nodeID\":\"" TOKEN TOKEN "\"}", NULL, NULL);
    assert_int_equal(st, 401);
    json_t *l = call(s, "GET", "/admin/v1/allowlist", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(l, "allowlist")), 0);
    json_decref(l);
    /* the right token works on the operator's listener only */
    json_decref(call(s, "GET", "/admin/v1/nodes", NULL, 200));
    st = admin_http(pub, "GET", "/admin/v1/nodes", TOKEN, NULL, &resp, NULL);
    leaked = resp && strstr(resp, "\"nodes\"");
    free(resp);
    if (st != 404 || leaked)
        fail_msg("admin API on the public port: HTTP %d, want 404", st);
    st = admin_http(pub, "POST", "/admin/v1/revoke", TOKEN, "{\"nodeID\":\"" TOKEN TOKEN "\"}",
                    NULL, NULL);
    assert_true(st == 404 || st == 405);
    json_t *r = call(s, "GET", "/admin/v1/revoked", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r, "nodes")), 0);
    json_decref(r);
}

/* Runs rendezvousd with a token file of `mode` and `content`; returns the
 * exit status (the server is stopped if it started) and its output. */
static int run_with_token_file(mode_t mode, const char *content, char **out)
{
    char path[64], db[64];
    snprintf(path, sizeof path, "/tmp/rdv-admin-token-%d", (int)getpid());
    snprintf(db, sizeof db, "/tmp/rdv-admin-db-%d.db", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    const char *args[] = {"--port", "0", "--stun-port", "0", "--operator-listen", "127.0.0.1:0",
                          "--db", db, "--admin-token-file", path, NULL};
    int code = rdv_ts_run_serverd(args, out, 3000);
    unlink(path);
    unlink(db);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db);
    unlink(wal);
    return code;
}

static void test_admin_token_file_checked(void **state)
{
    (void)state;
    char *out = NULL;
    int code = run_with_token_file(0644, "ops " TOKEN "\n", &out);
    bool said = out && strstr(out, "--admin-token-file") && strstr(out, "chmod");
    if (code != 1 || !said) {
        fprintf(stderr, "%s\n", out ? out : "");
        free(out);
        fail_msg("a world-readable token file: exit %d, want 1 naming chmod", code);
    }
    free(out);
    code = run_with_token_file(0600, "# tokens\nops short\n", &out);
    said = out && strstr(out, "line 2") && strstr(out, "16");
    if (code != 1 || !said) {
        fprintf(stderr, "%s\n", out ? out : "");
        free(out);
        fail_msg("a short token: exit %d, want 1 naming line 2", code);
    }
    free(out);
}

static void test_admin_token_file_names_who(void **state)
{
    (void)state;
    char path[300];
    rdv_ts_server *probe = START_DEFAULT(); /* for a temporary directory */
    snprintf(path, sizeof path, "%s/admin.token", rdv_ts_server_dir(probe));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# the operators\nalice-ops %s\n", TOKEN);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    rdv_ts_server *s = START("--admin-token-file", path);
    rdv_tn bob;
    rdv_tn_init(&bob, "bob");
    char body[128];
    snprintf(body, sizeof body, "{\"nodeID\":\"%s\"}", bob.id);
    json_decref(call(s, "POST", "/admin/v1/allowlist", body, 200));
    json_t *a = call(s, "GET", "/admin/v1/audit?limit=5", NULL, 200);
    json_t *e = json_array_get(json_object_get(a, "entries"), 0);
    assert_string_equal(rdv_json_str(e, "who"), "alice-ops");
    assert_string_equal(rdv_json_str(e, "action"), "allow");
    assert_string_equal(rdv_json_str(e, "target"), bob.id);
    assert_non_null(strstr(rdv_json_str(e, "peer"), "127.0.0.1:"));
    json_decref(a);
}

/* SIGHUP reads the token file again: a new token replaces the old one; a
 * file that cannot be used is refused and the tokens in force stay. */
static void test_admin_token_reload(void **state)
{
    (void)state;
    char path[300];
    rdv_ts_server *probe = START_DEFAULT(); /* for a temporary directory */
    snprintf(path, sizeof path, "%s/reload.token", rdv_ts_server_dir(probe));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "old %s\n", TOKEN);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    rdv_ts_server *s = START("--admin-token-file", path);
    int op = rdv_ts_server_operator_port(s);
    static const char fresh[] = "fedcba9876543210fedcba9876543210";
    assert_int_equal(admin_http(op, "GET", "/admin/v1/nodes", TOKEN, NULL, NULL, NULL), 200);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "new %s\n", fresh);
    fclose(f);
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    int st = 0;
    for (int i = 0; i < 250; i++) {
        st = admin_http(op, "GET", "/admin/v1/nodes", fresh, NULL, NULL, NULL);
        if (st == 200)
            break;
        usleep(20000);
    }
    assert_int_equal(st, 200);
    assert_int_equal(admin_http(op, "GET", "/admin/v1/nodes", TOKEN, NULL, NULL, NULL), 401);
    /* a broken file: refused, the new token still works */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "new short\n");
    fclose(f);
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    bool failed = false;
    for (int i = 0; i < 250 && !failed; i++) {
        char *log = rdv_ts_server_read_log(s);
        failed = log && strstr(log, "FAILED: admin-tokens:");
        free(log);
        if (!failed)
            usleep(20000);
    }
    assert_true(failed);
    assert_int_equal(admin_http(op, "GET", "/admin/v1/nodes", fresh, NULL, NULL, NULL), 200);
}

/* The node entry for id in a nodes list, or NULL. */
static json_t *entry(json_t *nodes, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) if (!strcmp(rdv_json_str(n, "nodeID"), id)) return n;
    return NULL;
}

static void test_admin_nodes_lookup_disconnect(void **state)
{
    (void)state;
    rdv_ts_server *s = start_with_token(NULL);
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    long long t0 = (long long)rdv_now_ms();
    json_t *l = call(s, "GET", "/admin/v1/nodes", NULL, 200);
    json_t *nodes = json_object_get(l, "nodes");
    assert_int_equal(json_integer_value(json_object_get(l, "count")), 2);
    json_t *na = entry(nodes, alice.id);
    assert_non_null(na);
    assert_non_null(entry(nodes, bob.id));
    assert_string_equal(rdv_json_str(na, "natType"), "portRestricted"); /* node.c's hello */
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", rdv_ws_local_port(a));
    assert_string_equal(rdv_json_str(na, "observedAddress"), want);
    long long since = (long long)json_integer_value(json_object_get(na, "connectedSince"));
    assert_true(since <= t0 && since > t0 - 60000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(na, "relay"),
                                                        "sessions")),
                     0);
    json_decref(l);
    /* one node */
    char path[160];
    snprintf(path, sizeof path, "/admin/v1/nodes/%s", bob.id);
    json_t *one = call(s, "GET", path, NULL, 200);
    assert_string_equal(rdv_json_str(json_object_get(one, "node"), "nodeID"), bob.id);
    json_decref(one);
    rdv_tn carol;
    rdv_tn_init(&carol, "carol");
    snprintf(path, sizeof path, "/admin/v1/nodes/%s", carol.id);
    json_decref(call(s, "GET", path, NULL, 404));
    json_decref(call(s, "GET", "/admin/v1/nodes/not-a-node", NULL, 400));
    /* disconnect bob: closed 1008; alice stays */
    snprintf(path, sizeof path, "/admin/v1/nodes/%s/disconnect", bob.id);
    json_t *d = call(s, "POST", path, "{\"reason\":\"maintenance\"}", 200);
    assert_string_equal(rdv_json_str(d, "result"), "ok");
    json_decref(d);
    itest_expect_close(b, 1008);
    itest_alive(a, alice.id);
    json_t *a2 = call(s, "GET", "/admin/v1/audit", NULL, 200);
    json_t *e = json_array_get(json_object_get(a2, "entries"), 0);
    assert_string_equal(rdv_json_str(e, "action"), "disconnect");
    assert_string_equal(rdv_json_str(e, "target"), bob.id);
    assert_string_equal(rdv_json_str(e, "detail"), "maintenance");
    assert_string_equal(rdv_json_str(e, "who"), "env");
    json_decref(a2);
    /* bad requests */
    json_decref(call(s, "POST", "/admin/v1/allowlist", "not json", 400));
    json_decref(call(s, "POST", "/admin/v1/allowlist", "{\"nodeID\":\"xyz\"}", 400));
    json_decref(call(s, "POST", "/admin/v1/revoke", "{}", 400));
    json_decref(call(s, "GET", "/admin/v1/nothing", NULL, 404));
}

static void test_admin_lists_and_audit(void **state)
{
    (void)state;
    rdv_ts_server *s = start_with_token(NULL);
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_tn_init(&bob, "bob");
    char body[160], path[160];
    snprintf(body, sizeof body, "{\"nodeID\":\"%s\"}", bob.id);
    json_t *r = call(s, "POST", "/admin/v1/allowlist", body, 200);
    assert_string_equal(rdv_json_str(r, "result"), "ok");
    json_decref(r);
    r = call(s, "POST", "/admin/v1/allowlist", body, 200);
    assert_string_equal(rdv_json_str(r, "result"), "unchanged");
    json_decref(r);
    json_t *l = call(s, "GET", "/admin/v1/allowlist", NULL, 200);
    assert_string_equal(rdv_json_str(json_array_get(json_object_get(l, "allowlist"), 0),
                                     "nodeID"),
                        bob.id);
    json_decref(l);
    snprintf(path, sizeof path, "/admin/v1/allowlist/%s", bob.id);
    r = call(s, "DELETE", path, NULL, 200);
    assert_string_equal(rdv_json_str(r, "result"), "ok");
    json_decref(r);
    /* revoke alice, who is connected: closed with `revoked` */
    snprintf(body, sizeof body, "{\"nodeID\":\"%s\"}", alice.id);
    r = call(s, "POST", "/admin/v1/revoke", body, 200);
    assert_int_equal(json_integer_value(json_object_get(r, "closed")), 1);
    json_decref(r);
    itest_expect_error(a, "revoked");
    json_t *rv = call(s, "GET", "/admin/v1/revoked", NULL, 200);
    assert_string_equal(rdv_json_str(json_array_get(json_object_get(rv, "nodes"), 0), "nodeID"),
                        alice.id);
    json_decref(rv);
    r = call(s, "POST", "/admin/v1/unrevoke", body, 200);
    assert_string_equal(rdv_json_str(r, "result"), "ok");
    json_decref(r);
    /* the audit log: newest first, API and database agree */
    static const char *const want[] = {"unrevoke", "revoke", "disallow", "allow", "allow"};
    json_t *au = call(s, "GET", "/admin/v1/audit?limit=10", NULL, 200);
    json_t *entries = json_object_get(au, "entries");
    assert_int_equal(json_array_size(entries), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(rdv_json_str(json_array_get(entries, i), "action"), want[i]);
    assert_string_equal(rdv_json_str(json_array_get(entries, 1), "detail"),
                        "closed 1 connection(s)");
    json_decref(au);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(rdv_ts_server_db_path(s), &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), sum(action = 'revoke' AND target = ?1) "
                                        "FROM audit_log",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, alice.id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 5);
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    char *log = rdv_ts_server_read_log(s);
    char line[160];
    snprintf(line, sizeof line, "action=revoke target=%s result=ok", alice.id);
    bool logged = log && strstr(log, "audit: ") && strstr(log, line);
    free(log);
    assert_true(logged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_admin_off_without_token),
        ITEST(test_admin_refuses_bad_tokens),
        ITEST(test_admin_token_file_checked),
        ITEST(test_admin_token_file_names_who),
        ITEST(test_admin_token_reload),
        ITEST(test_admin_nodes_lookup_disconnect),
        ITEST(test_admin_lists_and_audit),
    };
    return ITEST_RUN(tests);
}
