/* test_admission.c - admission against a real rendezvousd (PROTOCOL.md 6.1):
 * allowlist, fleet certificates (every refusal), key rotation, both modes
 * at once, revocation at hello and of a live node (its connection closed
 * with `revoked`, its relay sessions ended with reason `revoked`).
 *
 * The lists are written to the server's SQLite file as an operator's tool
 * would (db/migrations/002_admission.sql) and, for a running server, taken
 * in with SIGHUP (the "admission" reload hook).
 */
#include "itest.h"

#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema/fleet_cert.h"
#include "db/migrate.h"
#include "redis.h"
#include "relay_util.h"

#define DAY_MS (86400LL * 1000)

typedef struct fleet_key {
    uint8_t pk[32], sk[64];
    char hex[65];
} fleet_key;

static void fleet_key_init(fleet_key *k, const char *label)
{
    uint8_t seed[32];
    crypto_generichash(seed, sizeof seed, (const uint8_t *)label, strlen(label), NULL, 0);
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    sodium_bin2hex(k->hex, sizeof k->hex, k->pk, 32);
}

/* A certificate for node n signed with k (serial fixed when given). */
static json_t *cert_for(const fleet_key *k, const rdv_tn *n, const char *serial, int64_t nb,
                        int64_t exp, const char *const *groups, size_t ng)
{
    json_t *c = rdv_fleet_cert_make(k->sk, n->id, serial, nb, exp, groups, ng);
    if (!c)
        fail_msg("cannot make a certificate");
    return c;
}

static json_t *valid_cert(const fleet_key *k, const rdv_tn *n)
{
    int64_t now = rdv_now_ms();
    return cert_for(k, n, NULL, now - DAY_MS, now + 90 * DAY_MS, NULL, 0);
}

/* Connects n, sends hello with `cert` (stolen, may be NULL). Returns the
 * connection after hello; the caller reads welcome or error. */
static rdv_ws *hello_with(rdv_ts_server *s, const rdv_tn *n, json_t *cert)
{
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    json_t *extra = json_object();
    if (cert)
        json_object_set_new(extra, "cert", cert);
    size_t len = 0;
    char *h = rdv_tn_hello(n, ch, NULL, NULL, extra, NULL, &len);
    json_decref(extra);
    json_decref(ch);
    itest_send_free(c, h);
    return c;
}

/* n with cert is admitted (welcome). */
static rdv_ws *admitted(rdv_ts_server *s, const rdv_tn *n, json_t *cert)
{
    rdv_ws *c = hello_with(s, n, cert);
    itest_expect(c, "welcome");
    return c;
}

/* n with cert is refused with `code` (closed 1008) and the message holds
 * `says`. */
static void refused(rdv_ts_server *s, const rdv_tn *n, json_t *cert, const char *code,
                    const char *says)
{
    rdv_ws *c = hello_with(s, n, cert);
    json_t *e = itest_expect_error(c, code);
    const char *msg = rdv_json_str(e, "message");
    if (!strstr(msg, says))
        fail_msg("%s: message '%s' does not say '%s'", n->label, msg, says);
    itest_expect_close(c, 1008);
    rdv_ws_close(c);
}

/* ---- the database, as an operator's tool writes it ---------------------- */

static void db_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char err[256];
    if (rdv_db_open(path, &db, err, sizeof err) != 0)
        fail_msg("open %s: %s", path, err);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

static void db_allow(const char *path, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO allowlist (node_id, added) VALUES ('%s', 1)", id);
    db_exec(path, sql);
}

static void db_revoke(const char *path, const char *kind, const char *value)
{
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO revoked (kind, value, added) VALUES ('%s', '%s', 1)",
             kind, value);
    db_exec(path, sql);
}

/* A fresh database path in a new temporary directory (removed by the
 * server helper's cleanup? no: by the test). */
static char g_dir[64];

static const char *fresh_db(void)
{
    static char path[128];
    snprintf(g_dir, sizeof g_dir, "/tmp/rdv-adm-XXXXXX");
    if (!mkdtemp(g_dir))
        fail_msg("mkdtemp");
    snprintf(path, sizeof path, "%s/rendezvous.db", g_dir);
    return path;
}

static void rm_db(const char *path)
{
    char p[160];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    rmdir(g_dir);
}

/* ---- tests -------------------------------------------------------------- */

/* --admission allowlist: a node not on the list is refused with
 * not_admitted and a message saying what to do; a listed one is served. */
static void test_allowlist_unknown_refused(void **state)
{
    (void)state;
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    const char *db = fresh_db();
    db_exec(db, "SELECT 1"); /* create and migrate */
    db_allow(db, alice.id);
    rdv_ts_server *s = rdv_ts_server_start_db(db, (const char *const[]){"--admission",
                                                                        "allowlist", NULL});
    assert_non_null(s);
    refused(s, &bob, NULL, "not_admitted", "not on this server's allowlist");
    rdv_ws *a = admitted(s, &alice, NULL);
    itest_alive(a, alice.id);
    rdv_ws_close(a);
    rdv_ts_teardown_checked();
    rm_db(db);
}

/* --admission fleet: a valid certificate is admitted and the server puts
 * its serial and groups on the connection (its log says so). */
static void test_fleet_valid_cert_admitted(void **state)
{
    (void)state;
    fleet_key f;
    fleet_key_init(&f, "fleet-1");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ts_server *s = START("--admission", "fleet", "--fleet-key", f.hex);
    int64_t now = rdv_now_ms();
    const char *groups[] = {"relay", "ops"};
    json_t *cert = cert_for(&f, &alice, "00112233445566778899aabbccddeeff", now - 1000,
                            now + DAY_MS, groups, 2);
    rdv_ws *a = admitted(s, &alice, cert);
    itest_alive(a, alice.id);
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    assert_non_null(strstr(log, "certificate 00112233445566778899aabbccddeeff, groups "
                                "[relay,ops]"));
    free(log);
    rdv_ws_close(a);
}

/* Every way a certificate can be wrong is refused with not_admitted and a
 * message naming the cause. */
static void test_fleet_bad_certs_refused(void **state)
{
    (void)state;
    fleet_key f, other;
    fleet_key_init(&f, "fleet-1");
    fleet_key_init(&other, "not-our-fleet");
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_ts_server *s = START("--admission", "fleet", "--fleet-key", f.hex);
    int64_t now = rdv_now_ms();

    refused(s, &alice, NULL, "not_admitted", "sent no fleet certificate");
    /* expired: past expires + 30 s */
    refused(s, &alice, cert_for(&f, &alice, NULL, now - 10 * DAY_MS, now - 60000, NULL, 0),
            "not_admitted", "expired");
    /* not yet valid: notBefore beyond now + 30 s */
    refused(s, &alice, cert_for(&f, &alice, NULL, now + 3600000, now + DAY_MS, NULL, 0),
            "not_admitted", "not valid before");
    /* signed by a key the server does not trust */
    refused(s, &alice, valid_cert(&other, &alice), "not_admitted", "does not trust");
    /* groups changed after signing */
    const char *g[] = {"sensors"};
    json_t *c = cert_for(&f, &alice, NULL, now - 1000, now + DAY_MS, g, 1);
    json_array_append_new(json_object_get(c, "groups"), json_string("relay"));
    refused(s, &alice, c, "not_admitted", "does not verify");
    /* another node's certificate */
    refused(s, &bob, valid_cert(&f, &alice), "not_admitted", "not this node");
    /* the certificate body signed as another object type (hello) */
    c = valid_cert(&f, &alice);
    json_object_del(c, "signature");
    uint8_t *in = NULL;
    size_t in_len = 0;
    assert_int_equal(rdv_sig_input(RDV_MSG_HELLO, c, &in, &in_len), 0);
    uint8_t sig[64];
    char sig_hex[129];
    crypto_sign_detached(sig, NULL, in, in_len, f.sk);
    free(in);
    sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
    json_object_set_new(c, "signature", json_string(sig_hex));
    refused(s, &alice, c, "not_admitted", "does not verify");
    /* malformed */
    c = valid_cert(&f, &alice);
    json_object_set_new(c, "serial", json_string("xyz"));
    refused(s, &alice, c, "not_admitted", "serial");
    /* and the same node with its good certificate is served */
    rdv_ws *a = admitted(s, &alice, valid_cert(&f, &alice));
    itest_alive(a, alice.id);
    rdv_ws_close(a);
}

/* Rotation: two trusted keys (hex and base64) both admit; a third does
 * not. The same with the second key in --fleet-key-file. */
static void test_rotation_two_keys(void **state)
{
    (void)state;
    fleet_key old, cur, stranger;
    fleet_key_init(&old, "fleet-2025");
    fleet_key_init(&cur, "fleet-2026");
    fleet_key_init(&stranger, "fleet-x");
    char b64[64], keys[160];
    sodium_bin2base64(b64, sizeof b64, cur.pk, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(keys, sizeof keys, "%s,%s", old.hex, b64);
    rdv_tn alice, bob, carol;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_tn_init(&carol, "carol");
    rdv_ts_server *s = START("--admission", "fleet", "--fleet-key", keys);
    rdv_ws *a = admitted(s, &alice, valid_cert(&old, &alice));
    rdv_ws *b = admitted(s, &bob, valid_cert(&cur, &bob));
    refused(s, &carol, valid_cert(&stranger, &carol), "not_admitted", "does not trust");
    itest_alive(a, bob.id);
    rdv_ws_close(a);
    rdv_ws_close(b);
    rdv_ts_teardown_checked();

    char path[64] = "/tmp/rdv-adm-keys-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "# the 2026 fleet key\n%s\n", cur.hex);
    fclose(fp);
    s = START("--admission", "fleet", "--fleet-key", old.hex, "--fleet-key-file", path);
    a = admitted(s, &alice, valid_cert(&old, &alice));
    b = admitted(s, &bob, valid_cert(&cur, &bob));
    refused(s, &carol, valid_cert(&stranger, &carol), "not_admitted", "does not trust");
    rdv_ws_close(a);
    rdv_ws_close(b);
    unlink(path);
}

/* allowlist,fleet: either suffices. */
static void test_allowlist_or_fleet(void **state)
{
    (void)state;
    fleet_key f;
    fleet_key_init(&f, "fleet-1");
    rdv_tn listed, certified, neither;
    rdv_tn_init(&listed, "listed");
    rdv_tn_init(&certified, "certified");
    rdv_tn_init(&neither, "neither");
    const char *db = fresh_db();
    db_exec(db, "SELECT 1");
    db_allow(db, listed.id);
    rdv_ts_server *s = rdv_ts_server_start_db(
        db, (const char *const[]){"--admission", "allowlist,fleet", "--fleet-key", f.hex, NULL});
    assert_non_null(s);
    rdv_ws *a = admitted(s, &listed, NULL);
    rdv_ws *b = admitted(s, &certified, valid_cert(&f, &certified));
    refused(s, &neither, NULL, "not_admitted", "not on the allowlist");
    rdv_ws_close(a);
    rdv_ws_close(b);
    rdv_ts_teardown_checked();
    rm_db(db);
}

/* Revoked at hello: a node ID (in open mode too, and over the
 * allowlist), a certificate serial. */
static void test_revoked_at_hello(void **state)
{
    (void)state;
    fleet_key f;
    fleet_key_init(&f, "fleet-1");
    rdv_tn alice, bob, carol;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_tn_init(&carol, "carol");
    const char *serial = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
    const char *db = fresh_db();
    db_exec(db, "SELECT 1");
    db_allow(db, alice.id);
    db_revoke(db, "node", alice.id);
    db_revoke(db, "serial", serial);
    rdv_ts_server *s = rdv_ts_server_start_db(db, NULL); /* open */
    assert_non_null(s);
    refused(s, &alice, NULL, "revoked", "revoked");
    rdv_ws *b = admitted(s, &bob, NULL);
    rdv_ws_close(b);
    rdv_ts_teardown_checked();

    s = rdv_ts_server_start_db(
        db, (const char *const[]){"--admission", "allowlist,fleet", "--fleet-key", f.hex, NULL});
    assert_non_null(s);
    refused(s, &alice, NULL, "revoked", "revoked"); /* revocation wins over the allowlist */
    int64_t now = rdv_now_ms();
    refused(s, &carol, cert_for(&f, &carol, serial, now - 1000, now + DAY_MS, NULL, 0),
            "revoked", serial);
    b = admitted(s, &carol, valid_cert(&f, &carol)); /* a new certificate */
    rdv_ws_close(b);
    rdv_ts_teardown_checked();
    rm_db(db);
}

/* Waits (bounded) for c to get error `revoked` and close 1008; returns the
 * milliseconds it took from `since`. */
static long long expect_revoked(rdv_ws *c, long long since)
{
    json_t *e = rdv_expect_error(c, "revoked", 10000);
    if (!e)
        fail_msg("no error revoked within 10 s");
    long long took = rdv_ts_mono_ms() - since;
    itest_expect_close(c, 1008);
    return took;
}

/* A live node revoked by node ID: its connection gets `revoked` and is
 * closed, the peer of its relay session gets relayClose reason `revoked`,
 * and it cannot come back. Then by certificate serial. */
static void test_revoke_live_node(void **state)
{
    (void)state;
    fleet_key f;
    fleet_key_init(&f, "fleet-1");
    rdv_tn alice, bob, carol;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_tn_init(&carol, "carol");
    const char *db = fresh_db();
    db_exec(db, "SELECT 1");
    rdv_ts_server *s = rdv_ts_server_start_db(
        db, (const char *const[]){"--admission", "fleet", "--fleet-key", f.hex, NULL});
    assert_non_null(s);
    rdv_ws *a = admitted(s, &alice, valid_cert(&f, &alice));
    rdv_ws *b = admitted(s, &bob, valid_cert(&f, &bob));
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);

    db_revoke(db, "node", alice.id);
    long long t0 = rdv_ts_mono_ms();
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    long long took = expect_revoked(a, t0);
    print_message("revoked node closed %lld ms after SIGHUP\n", took);
    json_t *rc = itest_expect(b, "relayClose");
    assert_string_equal(rdv_json_str(rc, "sessionID"), sid);
    assert_string_equal(rdv_json_str(rc, "reason"), "revoked");
    itest_alive(b, alice.id);
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(strstr(log, "revoked (node ID): closing its connection"));
    free(log);
    refused(s, &alice, valid_cert(&f, &alice), "revoked", "revoked");
    rdv_ws_close(a);

    /* by serial: carol's certificate */
    int64_t now = rdv_now_ms();
    const char *serial = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    rdv_ws *c = admitted(s, &carol, cert_for(&f, &carol, serial, now - 1000, now + DAY_MS,
                                             NULL, 0));
    db_revoke(db, "serial", serial);
    t0 = rdv_ts_mono_ms();
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    took = expect_revoked(c, t0);
    print_message("revoked certificate closed %lld ms after SIGHUP\n", took);
    itest_alive(b, carol.id); /* bob, on another certificate, stays */
    rdv_ws_close(c);
    rdv_ws_close(b);
    rdv_ts_teardown_checked();
    rm_db(db);
}

/* --redis: two instances share the lists. The allowlist written to Redis
 * before they start is loaded; a revocation published on the bus (as
 * another instance's admin API does: HSET + PUBLISH rdv:admission) closes
 * the node on the instance that holds it, ends its relay session with the
 * node on the other instance (reason revoked), and both refuse it. */
/* Waits (up to 15 s) until server s has loaded its allowlist and
 * revocations from the shared store: with --redis they load after the
 * server is ready, and restricted modes refuse hellos until then. */
static void lists_loaded(rdv_ts_server *s)
{
    long long until = rdv_ts_mono_ms() + 15000;
    for (;;) {
        char *log = rdv_ts_server_read_log(s);
        bool done = log && strstr(log, "allowlisted node(s)");
        free(log);
        if (done)
            return;
        if (rdv_ts_mono_ms() > until) {
            rdv_ts_server_dump_log(s, "lists not loaded");
            fail_msg("the server did not load its admission lists within 15 s");
        }
        usleep(20 * 1000);
    }
}

static void test_revoke_live_redis(void **state)
{
    (void)state;
    fleet_key f;
    fleet_key_init(&f, "fleet-1");
    rdv_tn alice, bob, carol;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_tn_init(&carol, "carol");
    char why[256];
    rdv_ts_redis *r = rdv_ts_redis_start(NULL, why, sizeof why);
    if (!r)
        fail_msg("%s", why);
    char *reply = NULL;
    assert_int_equal(rdv_ts_redis_cmd(r, (const char *const[]){"HSET", "rdv:adm:allow",
                                                               carol.id, "1", NULL},
                                      &reply, 5000),
                     0);
    free(reply);
    const char *url = rdv_ts_redis_unix_url(r);
    const char *const args[] = {"--redis", url, "--admission", "allowlist,fleet", "--fleet-key",
                                f.hex, NULL};
    rdv_ts_server *s1 = rdv_ts_server_start(args);
    rdv_ts_server *s2 = rdv_ts_server_start(args);
    assert_non_null(s1);
    assert_non_null(s2);
    lists_loaded(s1);
    lists_loaded(s2);
    rdv_ws *c = admitted(s2, &carol, NULL); /* on the allowlist in Redis */
    rdv_ws *a = admitted(s1, &alice, valid_cert(&f, &alice));
    rdv_ws *b = admitted(s2, &bob, valid_cert(&f, &bob));
    /* bob's presence reaches Redis from s2's engine thread: until s1 sees
     * it, alice's relayOpen would get peer_offline (a loaded machine) */
    bool seen = false;
    for (long long until = rdv_ts_mono_ms() + 10000; !seen && rdv_ts_mono_ms() < until;) {
        json_t *e = itest_alive(a, bob.id);
        seen = json_is_true(json_object_get(e, "online"));
        json_decref(e);
        if (!seen)
            usleep(20 * 1000);
    }
    if (!seen)
        fail_msg("bob (on instance 2) not online in a lookup on instance 1 within 10 s");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);

    char now[32], line[256];
    snprintf(now, sizeof now, "%lld", (long long)rdv_now_ms());
    snprintf(line, sizeof line, "A test-operator revoked_node %s 1 %s", alice.id, now);
    assert_int_equal(rdv_ts_redis_cmd(r, (const char *const[]){"HSET", "rdv:adm:revoked_node",
                                                               alice.id, now, NULL},
                                      &reply, 5000),
                     0);
    free(reply);
    long long t0 = rdv_ts_mono_ms();
    assert_int_equal(rdv_ts_redis_cmd(r, (const char *const[]){"PUBLISH", "rdv:admission", line,
                                                               NULL},
                                      &reply, 5000),
                     0);
    free(reply);
    long long took = expect_revoked(a, t0);
    print_message("revoked on the other instance: closed %lld ms after the publish\n", took);
    json_t *rc = itest_expect(b, "relayClose");
    assert_string_equal(rdv_json_str(rc, "sessionID"), sid);
    assert_string_equal(rdv_json_str(rc, "reason"), "revoked");
    rdv_ws_close(a);
    refused(s1, &alice, valid_cert(&f, &alice), "revoked", "revoked");
    refused(s2, &alice, valid_cert(&f, &alice), "revoked", "revoked");
    itest_alive(c, bob.id);
    rdv_ws_close(b);
    rdv_ws_close(c);
    rdv_ts_teardown_checked(); /* the redis-server too */
}

/* Options that cannot work refuse to start, naming the fix. */
static void test_bad_options(void **state)
{
    (void)state;
    char *out = NULL;
    int rc = rdv_ts_run_serverd((const char *const[]){"--port", "0", "--stun", "off",
                                                      "--admission", "fleet", NULL},
                                &out, 10000);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "--fleet-key"));
    free(out);
    rc = rdv_ts_run_serverd((const char *const[]){"--port", "0", "--stun", "off",
                                                  "--admission", "closed", NULL},
                            &out, 10000);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "open, allowlist, fleet or allowlist,fleet"));
    free(out);
    rc = rdv_ts_run_serverd((const char *const[]){"--port", "0", "--stun", "off",
                                                  "--admission", "fleet", "--fleet-key",
                                                  "abc", NULL},
                            &out, 10000);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "is not a fleet public key"));
    free(out);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        ITEST(test_allowlist_unknown_refused),
        ITEST(test_fleet_valid_cert_admitted),
        ITEST(test_fleet_bad_certs_refused),
        ITEST(test_rotation_two_keys),
        ITEST(test_allowlist_or_fleet),
        ITEST(test_revoked_at_hello),
        ITEST(test_revoke_live_node),
        ITEST(test_revoke_live_redis),
        ITEST(test_bad_options),
    };
    return ITEST_RUN(tests);
}
