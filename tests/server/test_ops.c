/* test_ops.c - server_ops: operating rendezvousd (README "Configuration",
 * issue 4 "Limits" and "Operations").
 *
 * --help lists every option of README's table with its environment
 * variable and default; bad flags are refused; options come from
 * RENDEZVOUS_* variables and flags win; the --config file (README
 * "Configuration file"): comments, flags > environment > file > defaults,
 * a bad line refused with FILE:LINE and its reason; --offline-ttl is
 * capped at 90000;
 * --max-connections-per-ip and --max-connections refuse extra connections
 * and admit again once one closes; ping/pong after welcome; WebSocket
 * keep-alive keeps an answering node connected past --idle-timeout while a
 * silent one is closed; a node that does not read is closed with
 * slow_consumer (1008) and the sender is unaffected; wss:// with
 * --tls-cert/--tls-key (certificate made with the openssl CLI; skipped
 * without it); SIGINT behaves like SIGTERM; --log-json writes one JSON
 * object per line.
 */
#include "itest.h"

#include <ctype.h>
#include <ftw.h>
#include <signal.h>
#include <unistd.h>

/* README's Configuration table, row by row: flag, env, default; and no
 * option of --help is missing from the table. */
static void test_ops_help_matches_readme(void **state)
{
    (void)state;
    const char *src = getenv("RDV_SOURCE_DIR");
    if (!src)
        src = RDV_SOURCE_DIR_FALLBACK;
    char path[512];
    snprintf(path, sizeof path, "%s/README.md", src);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    char *help = NULL;
    int code = rdv_ts_run_serverd((const char *const[]){"--help", NULL}, &help, T_MS);
    if (code != 0 || !help) {
        fclose(f);
        free(help);
        fail_msg("rendezvousd --help: exit status %d", code);
    }
    char line[1024];
    int rows = 0, missing = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "| `--", 5) != 0)
            continue;
        /* | `--flag ARG` | `ENV` | `default` or none | meaning | */
        char *cells[4] = {0};
        char *p = line + 1;
        for (int i = 0; i < 4 && p; i++) {
            char *bar = strchr(p, '|');
            /* "on\|off" is an escaped bar inside a cell */
            while (bar && bar > p && bar[-1] == '\\')
                bar = strchr(bar + 1, '|');
            if (bar)
                *bar = '\0';
            cells[i] = p;
            p = bar ? bar + 1 : NULL;
        }
        if (!cells[2])
            continue;
        char flag[64] = "", env[64] = "", dflt[64] = "";
        sscanf(cells[0], " `%63[^ `]", flag);
        sscanf(cells[1], " `%63[A-Z_]", env);
        if (sscanf(cells[2], " `%63[^`]`", dflt) != 1)
            sscanf(cells[2], " %63s", dflt);
        rows++;
        char want[128];
        snprintf(want, sizeof want, "default %s", dflt);
        if (!strstr(help, flag) || !strstr(help, env) || !strstr(help, want)) {
            fprintf(stderr, "--help lacks %s / %s / \"%s\"\n", flag, env, want);
            missing++;
        }
    }
    fclose(f);
    int in_help = 0;
    for (const char *p = help; (p = strstr(p, "env RENDEZVOUS_")) != NULL; p++)
        in_help++;
    if (in_help != rows) {
        fprintf(stderr, "--help has %d options, README's table %d rows\n", in_help, rows);
        missing++;
    }
    if (rows < 20 || missing) {
        fprintf(stderr, "%s\n", help);
        free(help);
        fail_msg("%d README options, %d not in --help as documented", rows, missing);
    }
    free(help);
}

static void test_ops_bad_flags_refused(void **state)
{
    (void)state;
    /* The database path is in a directory that does not exist, so a
     * server that wrongly accepted the flag still cannot start serving. */
#define NODB "--db", "/nonexistent-dir/x.db"
    static const char *const bad[][6] = {
        {"--no-such-option", NODB, NULL},
        {"--rate", "many", NODB, NULL},
        {"--port", "70000", NODB, NULL},
        {"--verify-signatures", "maybe", NODB, NULL},
        {"--log-level", "loud", NODB, NULL},
        {"--max-message-bytes", "-5", NODB, NULL},
        {"--event-loop", "select", NODB, NULL},
        {"--stun", "maybe", NODB, NULL},
        {"--stun-alt-port", "3478", NODB, NULL}, /* == --stun-port */
        {"--stun-alt-address", "not-an-ip", NODB, NULL},
        {"--stun-alt-address=127.0.0.2", "--listen=0.0.0.0", NODB, NULL},
    };
#undef NODB
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        int code = rdv_ts_run_serverd(bad[i], &out, T_MS);
        if (code == 0 || code == -2 || code >= 128) {
            fprintf(stderr, "%s\n", out ? out : "");
            free(out);
            fail_msg("rendezvousd %s %s: exit status %d, expected a refusal", bad[i][0],
                     bad[i][1], code);
        }
        free(out);
    }
}

static void test_ops_env_and_flags_win(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_env(
        (const char *const[]){"RENDEZVOUS_MAX_WATCHES=7", "RENDEZVOUS_RATE=9",
                              "RENDEZVOUS_NAME=env-name", NULL},
        (const char *const[]){"--rate", "11", NULL});
    if (!s)
        fail_msg("rendezvousd did not start");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    assert_string_equal(rdv_json_str(ch, "server"), "env-name");
    size_t len;
    char *hello = rdv_tn_hello(&alice, ch, NULL, NULL, NULL, NULL, &len);
    json_decref(ch);
    itest_send_free(c, hello);
    json_t *w = itest_expect(c, "welcome");
    json_t *limits = json_object_get(w, "limits");
    assert_int_equal(rdv_json_int(limits, "maxWatches", -1), 7);
    assert_int_equal(rdv_json_int(limits, "messagesPerSecond", -1), 11);
}

/* Writes text to a new temporary file; its path into path[32]. */
static void write_conf(char path[32], const char *text)
{
    snprintf(path, 32, "/tmp/rdv-conf-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        fail_msg("mkstemp failed");
    FILE *f = fdopen(fd, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

/* The welcome of a node joining s. */
static json_t *welcome_of(rdv_ts_server *s)
{
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *w = rdv_tn_authenticate(c, &alice);
    if (!w)
        fail_msg("no welcome");
    return w;
}

/* A file option applies unless the environment or a flag sets it;
 * comments (whole line, after a space, indented) and blank lines are
 * ignored; --config and RENDEZVOUS_CONFIG both name the file. */
static void test_ops_config_file(void **state)
{
    (void)state;
    char path[32];
    write_conf(path, "# rendezvousd.conf for server_ops\n"
                     "\n"
                     "   # rate = not-a-number (a comment)\n"
                     "name = file-name\n"
                     "rate=5\n"
                     "max-watches = 3   # the environment wins\n"
                     "\tburst = 20\t\n"
                     "offline-queue-max = 9\n"
                     "log-json = off\n"
                     "port = 1\n" /* the test helper's --port 0 wins */);
    char arg[64];
    snprintf(arg, sizeof arg, "--config=%s", path);
    rdv_ts_server *s = rdv_ts_server_start_env(
        (const char *const[]){"RENDEZVOUS_MAX_WATCHES=7", "RENDEZVOUS_NAME=env-name", NULL},
        (const char *const[]){"--rate", "11", arg, NULL});
    if (!s) {
        unlink(path);
        fail_msg("rendezvousd --config did not start");
    }
    assert_int_not_equal(rdv_ts_server_port(s), 1);
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    assert_string_equal(rdv_json_str(ch, "server"), "env-name"); /* env > file */
    size_t len;
    char *hello = rdv_tn_hello(&alice, ch, NULL, NULL, NULL, NULL, &len);
    json_decref(ch);
    itest_send_free(c, hello);
    json_t *limits = json_object_get(itest_expect(c, "welcome"), "limits");
    assert_int_equal(rdv_json_int(limits, "maxWatches", -1), 7);         /* env > file */
    assert_int_equal(rdv_json_int(limits, "messagesPerSecond", -1), 11); /* flag > file */
    assert_int_equal(rdv_json_int(limits, "messageBurst", -1), 20);      /* file > default */
    assert_int_equal(rdv_json_int(limits, "offlineQueueMax", -1), 9);
    assert_int_equal(rdv_ts_server_stop(s), 0);

    /* RENDEZVOUS_CONFIG names the file too */
    char env[64];
    snprintf(env, sizeof env, "RENDEZVOUS_CONFIG=%s", path);
    s = rdv_ts_server_start_env((const char *const[]){env, NULL}, NULL);
    unlink(path);
    if (!s)
        fail_msg("rendezvousd with RENDEZVOUS_CONFIG did not start");
    limits = json_object_get(welcome_of(s), "limits");
    assert_int_equal(rdv_json_int(limits, "messagesPerSecond", -1), 5);
    assert_int_equal(rdv_json_int(limits, "maxWatches", -1), 3);
}

/* A bad line stops the server at start: exit status 2, and the message
 * names FILE:LINE and the reason. --help still works. */
static void test_ops_config_file_bad_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;
        const char *reason;
    } bad[] = {
        {"# comment\nrate = many\n", 2, "rate: 'many' is not an integer in 1..1000000"},
        {"port 8080\n", 1, "expected 'name = value'"},
        {"\n\nprot = 1\n", 3, "unknown option 'prot'"},
        {"--port = 1\n", 1, "unknown option '--port'"},
        {"rate = 5\n# again:\nrate = 6\n", 3, "'rate' is already set on line 1"},
        {"config = /etc/other.conf\n", 1, "'config' cannot be set"},
        {"stun = maybe # not on|off\n", 1, "stun: 'maybe' must be 'on' or 'off'"},
        {"name = \n", 1, "name: '' is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[32], want[128];
        write_conf(path, bad[i].text);
        snprintf(want, sizeof want, "rendezvousd: %s:%d: %s", path, bad[i].line, bad[i].reason);
        char *out = NULL;
        int code = rdv_ts_run_serverd(
            (const char *const[]){"--config", path, "--db", "/nonexistent-dir/x.db", NULL}, &out,
            T_MS);
        bool said = out && strstr(out, want);
        if (code != 2 || !said) {
            fprintf(stderr, "file:\n%s--\noutput:\n%s\n", bad[i].text, out ? out : "");
            free(out);
            unlink(path);
            fail_msg("bad config line %zu: exit status %d (want 2), %s \"%s\"", i, code,
                     said ? "said" : "did not say", want);
        }
        free(out);
        if (i == 0) { /* --help whatever the file holds */
            code = rdv_ts_run_serverd((const char *const[]){"--config", path, "--help", NULL},
                                      &out, T_MS);
            bool help = out && strstr(out, "Usage: rendezvousd");
            free(out);
            if (code != 0 || !help)
                fail_msg("--config BAD --help: exit status %d", code);
        }
        unlink(path);
    }
    char *out = NULL;
    int code = rdv_ts_run_serverd(
        (const char *const[]){"--config", "/nonexistent-dir/r.conf", NULL}, &out, T_MS);
    bool said = out && strstr(out, "--config /nonexistent-dir/r.conf: cannot open");
    free(out);
    if (code != 2 || !said)
        fail_msg("a missing --config file: exit status %d, %s", code,
                 said ? "said so" : "did not say 'cannot open'");
}

static void test_ops_offline_ttl_capped(void **state)
{
    (void)state;
    /* README: at most 90000. Refusing the value or capping it are both
     * fine; announcing more is not. */
    rdv_ts_server *s = rdv_ts_server_start((const char *const[]){"--offline-ttl", "100000", NULL});
    if (!s)
        return; /* refused */
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *w = rdv_tn_authenticate(c, &alice);
    assert_non_null(w);
    long long ttl = rdv_json_int(json_object_get(w, "limits"), "offlineTtlMs", -1);
    if (ttl < 0 || ttl > 90000)
        fail_msg("--offline-ttl 100000 accepted and welcome announces offlineTtlMs %lld", ttl);
}

/* A connection is refused: no upgrade, or closed before any challenge. */
static bool refused(int port)
{
    rdv_ws *c = rdv_ws_connect_ex(port, "/v1", "rendezvous.v1", 3000);
    if (!c)
        return true;
    char *m = rdv_ws_recv(c, 3000, NULL);
    bool closed = m == NULL && rdv_ws_is_closed(c);
    free(m);
    rdv_ws_close(c);
    return closed;
}

/* Retries (bounded) until a connection gets its challenge. */
static rdv_ws *admitted_eventually(int port)
{
    long long deadline = rdv_ts_mono_ms() + T_MS;
    while (rdv_ts_mono_ms() < deadline) {
        rdv_ws *c = rdv_ws_connect_ex(port, "/v1", "rendezvous.v1", 2000);
        if (c) {
            json_t *ch = rdv_tn_read_challenge(c, 2000);
            if (ch) {
                json_decref(ch);
                return c;
            }
            rdv_ws_close(c);
        }
    }
    return NULL;
}

static void connection_cap(const char *flag)
{
    rdv_ts_server *s = START(flag, "2");
    int port = rdv_ts_server_port(s);
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    if (!refused(port))
        fail_msg("%s 2: a third connection was served", flag);
    /* The two admitted ones are unaffected. */
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
    /* Once one leaves, a new one is admitted. */
    rdv_ws_close(b);
    rdv_ws *c = admitted_eventually(port);
    if (!c)
        fail_msg("%s 2: no connection admitted after one closed", flag);
    /* HTTP health checks are not WebSocket connections of nodes. */
    char *body = NULL;
    int st = rdv_http_get(port, "/healthz", &body, T_MS);
    free(body);
    (void)st; /* not specified either way; must not crash the server */
}

static void test_ops_max_connections_per_ip(void **state)
{
    (void)state;
    connection_cap("--max-connections-per-ip");
}

static void test_ops_max_connections(void **state)
{
    (void)state;
    connection_cap("--max-connections");
}

static void test_ops_ping_pong(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    itest_send(a, "{\"ping\":{\"id\":\"hb-7\"}}");
    json_t *p = itest_expect(a, "pong");
    assert_string_equal(rdv_json_str(p, "id"), "hb-7");
    json_t *st = json_object_get(p, "serverTime");
    if (st) {
        long long t = rdv_json_int(p, "serverTime", 0);
        long long now = rdv_now_ms();
        assert_true(t > now - 60000 && t < now + 60000);
    }
    itest_send(a, "{\"ping\":{}}");
    p = itest_expect(a, "pong");
    assert_null(json_object_get(p, "id"));
    /* A pong from the node is accepted silently. */
    itest_send(a, "{\"pong\":{\"id\":\"x\"}}");
    itest_alive(a, alice.id);
}

static void test_ops_keepalive_and_idle(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--ping-interval", "1000", "--idle-timeout", "3000");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");

    /* bob never reads nor answers pings: closed after the idle timeout. */
    long long t0 = rdv_ts_mono_ms();
    /* alice is serviced (answers pings) while we wait for bob's hangup. */
    bool hung_up = false;
    while (!hung_up && rdv_ts_mono_ms() - t0 < 15000) {
        rdv_ws_service(a, 50);
        hung_up = rdv_ws_wait_peer_hangup(b, 50);
    }
    long long dt = rdv_ts_mono_ms() - t0;
    if (!hung_up)
        fail_msg("a silent node was not closed within 15 s (--idle-timeout 3000)");
    assert_true(dt >= 2000); /* not long before the idle timeout */
    /* alice answers the pings (lws does, while serviced) for more than
     * twice the idle timeout and stays connected. */
    while (rdv_ts_mono_ms() - t0 < 7000 && !rdv_ws_is_closed(a))
        rdv_ws_service(a, 100);
    if (rdv_ws_is_closed(a))
        fail_msg("a node answering pings was closed (code %d) after %lld ms",
                 rdv_ws_close_code(a), rdv_ts_mono_ms() - t0);
    while (rdv_ws_pending(a) > 0) /* e.g. peerOffline if she watched: none */
        free(rdv_ws_recv(a, 0, NULL));
    json_t *e = itest_alive(a, bob.id);
    assert_true(json_is_false(json_object_get(e, "online")));
}

static void test_ops_slow_consumer(void **state)
{
    (void)state;
    /* one offer sent over and over: the replay filter off */
    rdv_ts_server *s = START("--send-queue-max", "65536", "--rate", "1000000", "--burst",
                             "1000000", "--verify-signatures", "off", "--replay-cache", "0");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *offer = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    assert_non_null(offer);
    /* bob does not read: his kernel buffers fill, then the server's queue
     * for him (--send-queue-max 65536). 8 MiB is far beyond both. */
    int sent = 0;
    long long deadline = rdv_ts_mono_ms() + 30000;
    while ((size_t)sent * len < 8u * 1024 * 1024 && rdv_ts_mono_ms() < deadline) {
        for (int i = 0; i < 100; i++)
            if (rdv_ws_queue_text(a, offer, len) == 0)
                sent++;
        if (rdv_ws_flush(a, T_MS) != 0)
            break;
    }
    free(offer);
    /* The sender was not closed: only bob is slow. */
    assert_false(rdv_ws_is_closed(a));
    /* bob now reads what reached him: offers, then slow_consumer, then
     * the close 1008 (PROTOCOL.md 10). */
    const char *type;
    json_t *m;
    char last_code[40] = "";
    int offers = 0;
    while ((m = rdv_ws_recv_json(b, 10000, &type)) != NULL) {
        if (type && strcmp(type, "offer") == 0)
            offers++;
        else if (type && strcmp(type, "error") == 0)
            snprintf(last_code, sizeof last_code, "%s",
                     rdv_json_str(json_object_get(m, "error"), "code"));
    }
    if (strcmp(last_code, "slow_consumer") != 0 || rdv_ws_close_code(b) != 1008) {
        rdv_ts_server_dump_log(s, "slow consumer");
        fail_msg("slow reader: %d of %d offers read, last error '%s', close %d; expected "
                 "slow_consumer and 1008", offers, sent, last_code, rdv_ws_close_code(b));
    }
    /* The sender is unaffected: after the replies to its flood (the
     * offers sent after bob left were queued or refused with queue_full),
     * a lookup is answered. */
    char *lk = rdv_tn_id_request("lookup", (const char *[]){bob.id}, 1, "after-flood");
    itest_send(a, lk);
    free(lk);
    for (;;) {
        m = rdv_ws_recv_json(a, T_MS, &type);
        if (!m || !type)
            fail_msg("sender: no answer to a lookup after the flood (closed %d, code %d)",
                     rdv_ws_is_closed(a), rdv_ws_close_code(a));
        json_t *body = json_object_get(m, type);
        if (strcmp(type, "presence") == 0) {
            assert_string_equal(rdv_json_str(body, "requestID"), "after-flood");
            break;
        }
        if (strcmp(type, "queued") != 0 &&
            !(strcmp(type, "error") == 0 &&
              (strcmp(rdv_json_str(body, "code"), "queue_full") == 0 ||
               strcmp(rdv_json_str(body, "code"), "peer_offline") == 0)))
            fail_msg("sender got %s %s", type, rdv_json_str(body, "code"));
    }
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_ops_tls(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        skip(); /* no openssl CLI to make a certificate */
    char dir[] = "/tmp/rdv-itest-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024], cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1",
             key, cert);
    int rc = system(cmd);
    rdv_ts_server *s = rc == 0 ? rdv_ts_server_start((const char *const[]){
                                     "--tls-cert", cert, "--tls-key", key, NULL})
                               : NULL;
    if (!s) {
        nftw(dir, rm_cb, 4, FTW_DEPTH | FTW_PHYS);
        fail_msg("%s", rc ? "openssl could not make a certificate"
                          : "rendezvousd with TLS did not start");
    }
    /* The ready line names wss://. */
    char *log = rdv_ts_server_read_log(s);
    bool wss = log && strstr(log, "listening on wss://");
    free(log);
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = rdv_ws_connect_tls(rdv_ts_server_port(s), T_MS);
    json_t *w = c ? rdv_tn_authenticate(c, &alice) : NULL;
    json_t *e = w ? rdv_lookup_one(c, alice.id) : NULL;
    /* Plain ws:// on the TLS port is not served. */
    rdv_ws *plain = rdv_ws_connect_ex(rdv_ts_server_port(s), "/v1", "rendezvous.v1", 2000);
    json_t *ch = plain ? rdv_tn_read_challenge(plain, 2000) : NULL;
    json_decref(ch);
    nftw(dir, rm_cb, 4, FTW_DEPTH | FTW_PHYS);
    if (!c || !w || !e)
        fail_msg("wss:// connection, authentication or lookup failed");
    if (ch)
        fail_msg("a plain ws:// connection was served on the TLS listener");
    if (!wss)
        fail_msg("ready line does not say listening on wss://");
}

static void test_ops_sigint_like_sigterm(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    assert_int_equal(rdv_ts_server_signal(s, SIGINT), 0);
    const char *type;
    while (rdv_ws_recv_json(a, T_MS, &type) != NULL) {
    }
    if (!rdv_ws_is_closed(a) || rdv_ws_close_code(a) != 1001)
        fail_msg("after SIGINT: closed %d, close code %d, expected 1001", rdv_ws_is_closed(a),
                 rdv_ws_close_code(a));
    int code = rdv_ts_server_wait_exit(s, RDV_TS_STOP_TIMEOUT_MS);
    if (code != 0) {
        rdv_ts_server_dump_log(s, "sigint");
        fail_msg("exit status %d after SIGINT", code);
    }
}

static void test_ops_log_json(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--log-json", "--log-level", "debug");
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    itest_send(a, "not json");
    itest_expect_error(a, "bad_json");
    rdv_ws_close(a);
    int code = rdv_ts_server_stop(s);
    assert_int_equal(code, 0);
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    int lines = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (!json_is_object(j)) {
            json_decref(j);
            fprintf(stderr, "not a JSON object: %s\n", line);
            free(log);
            fail_msg("--log-json: a log line is not one JSON object");
        }
        json_decref(j);
        lines++;
    }
    free(log);
    assert_true(lines >= 2);
}

/* Both event loops serve: the default (libuv when its plugin is
 * installed) and --event-loop poll; the ready line names the loop in use. */
static void test_ops_event_loops(void **state)
{
    (void)state;
    static const char *const want[] = {"libuv loop)", "poll loop)"};
    for (int i = 0; i < 2; i++) {
        rdv_ts_server *s = i == 0 ? START_DEFAULT() : START("--event-loop", "poll");
        rdv_tn alice, bob;
        rdv_ws *a = itest_join(s, &alice, "alice");
        rdv_ws *b = itest_join(s, &bob, "bob");
        itest_alive(a, bob.id);
        rdv_ws_close(a);
        rdv_ws_close(b);
        char *log = rdv_ts_server_read_log(s);
        assert_non_null(log);
        bool found = strstr(log, want[i]) != NULL;
        if (!found && i == 0 && strstr(log, "using the poll() event loop"))
            found = true; /* plugin not installed: the documented fallback */
        free(log);
        if (!found)
            fail_msg("log does not name the %s", want[i]);
        assert_int_equal(rdv_ts_server_stop(s), 0);
    }
}

/* rendezvous_loop_lag_seconds in /metrics (-1 when missing). */
static double loop_lag(rdv_ts_server *s)
{
    char *m = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &m, 5000), 200);
    const char *p = strstr(m, "\nrendezvous_loop_lag_seconds ");
    double v = p ? strtod(p + strlen("\nrendezvous_loop_lag_seconds "), NULL) : -1;
    free(m);
    return v;
}

/* The loop's lag (loop_lag.h): small while the server idles; a loop held
 * for 600 ms (the process stopped: no timer can run) shows as a lag of
 * about that, for the next 10 s at least. */
static void test_ops_loop_lag(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    usleep(200 * 1000); /* a few ticks */
    double idle = loop_lag(s);
    assert_true(idle >= 0);
    /* an idle server's loop comes back to its timers in time; sanitizer
     * builds on a loaded machine can be a little late */
    if (idle > 0.3)
        fail_msg("loop lag %.3f s on an idle server", idle);
    assert_int_equal(kill(rdv_ts_server_pid(s), SIGSTOP), 0);
    usleep(600 * 1000);
    assert_int_equal(kill(rdv_ts_server_pid(s), SIGCONT), 0);
    usleep(200 * 1000);
    double held = loop_lag(s);
    if (held < 0.5)
        fail_msg("loop held 600 ms, lag reported %.3f s", held);
    itest_alive(a, alice.id); /* and it serves on */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_ops_help_matches_readme),
        ITEST(test_ops_bad_flags_refused),
        ITEST(test_ops_env_and_flags_win),
        ITEST(test_ops_config_file),
        ITEST(test_ops_config_file_bad_line),
        ITEST(test_ops_offline_ttl_capped),
        ITEST(test_ops_max_connections_per_ip),
        ITEST(test_ops_max_connections),
        ITEST(test_ops_ping_pong),
        ITEST(test_ops_keepalive_and_idle),
        ITEST(test_ops_slow_consumer),
        ITEST(test_ops_tls),
        ITEST(test_ops_sigint_like_sigterm),
        ITEST(test_ops_log_json),
        ITEST(test_ops_event_loops),
        ITEST(test_ops_loop_lag),
    };
    return ITEST_RUN(tests);
}
