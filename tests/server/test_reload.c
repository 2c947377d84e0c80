/* test_reload.c - server_reload: SIGHUP re-reads the --config file
 * (README "Reload", rendezvous/reload.h).
 *
 * A live option changed in the file (--rate, --log-level) applies to the
 * next node without a restart, a restart-only one (--max-message-bytes) is
 * logged and left alone, flags still win over the file; a file that has
 * become invalid changes nothing, the server keeps serving, and a fixed
 * file applies again; /metrics counts the reloads and failures. One log
 * line per reload.
 */
#include "itest.h"

#include <signal.h>
#include <unistd.h>

#define WAIT_MS 10000

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

/* A fresh config file path, the file created with text. */
static void new_conf(char path[40], const char *text)
{
    snprintf(path, 40, "/tmp/rdv-reload-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        fail_msg("mkstemp failed");
    close(fd);
    write_file(path, text);
}

/* Waits (bounded) until the log holds `needle`; fails otherwise. */
static void wait_log(rdv_ts_server *s, const char *needle)
{
    long long until = rdv_ts_mono_ms() + WAIT_MS;
    for (;;) {
        char *log = rdv_ts_server_read_log(s);
        bool found = log && strstr(log, needle);
        free(log);
        if (found)
            return;
        if (rdv_ts_mono_ms() > until) {
            rdv_ts_server_dump_log(s, "reload");
            fail_msg("the log never said \"%s\"", needle);
        }
        usleep(20000);
    }
}

/* True when the log holds needle. */
static bool log_has(rdv_ts_server *s, const char *needle)
{
    char *log = rdv_ts_server_read_log(s);
    bool found = log && strstr(log, needle);
    free(log);
    return found;
}

/* welcome.limits.<key> of a node joining s now. */
static long long limit_now(rdv_ts_server *s, const char *key)
{
    rdv_tn n;
    rdv_tn_init(&n, "reloader");
    rdv_ws *c = itest_connect(s);
    json_t *w = rdv_tn_authenticate(c, &n);
    if (!w)
        fail_msg("no welcome");
    long long v = rdv_json_int(json_object_get(w, "limits"), key, -1);
    json_decref(w);
    rdv_ws_close(c);
    return v;
}

/* The port serving /metrics: the operator listener when the server logged
 * one ("operator on http://ADDR:PORT"), else the public port. */
static int metrics_port(rdv_ts_server *s)
{
    char *log = rdv_ts_server_read_log(s);
    const char *p = log ? strstr(log, "operator on http://") : NULL;
    int port = rdv_ts_server_port(s);
    if (p) {
        const char *colon = strchr(p + strlen("operator on http://"), ']');
        colon = strchr(colon ? colon : p + strlen("operator on http://"), ':');
        if (colon)
            port = atoi(colon + 1);
    }
    free(log);
    return port;
}

/* The value of an unlabelled metric in /metrics, or -1. */
static long long metric(rdv_ts_server *s, const char *name)
{
    char *body = NULL;
    int st = rdv_http_get(metrics_port(s), "/metrics", &body, T_MS);
    long long v = -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = st == 200 && body ? strstr(body, key) : NULL;
    if (p)
        v = atoll(p + strlen(key));
    free(body);
    return v;
}

/* Sends a message the server answers with an error (a debug line). */
static void provoke_error(rdv_ts_server *s)
{
    rdv_ws *c = itest_connect(s);
    json_decref(rdv_tn_read_challenge(c, T_MS));
    itest_send(c, "{\"nonsense\":{}}");
    json_t *e = rdv_expect(c, "error", T_MS);
    if (!e)
        fail_msg("no error for a message before hello");
    json_decref(e);
    rdv_ws_close(c);
}

/* Live options apply; a restart-only one is logged, not applied; flags
 * still win over the file. */
static void test_reload_applies_live_options(void **state)
{
    (void)state;
    char path[40];
    new_conf(path, "rate = 5\nburst = 30\nlog-level = warn\n");
    rdv_ts_server *s = rdv_ts_server_start(
        (const char *const[]){"--config", path, "--burst", "40", NULL});
    if (!s) {
        unlink(path);
        fail_msg("rendezvousd did not start");
    }
    assert_int_equal(limit_now(s, "messagesPerSecond"), 5);
    provoke_error(s);
    assert_false(log_has(s, " DEBUG ")); /* --log-level warn */
    assert_int_equal(metric(s, "rendezvous_reloads_total"), 0);
    assert_int_equal(metric(s, "rendezvous_reload_last_success"), 1);

    write_file(path, "rate = 9\nburst = 31\nlog-level = debug\nmax-message-bytes = 4096\n");
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    wait_log(s, "reload 1: ok (config)");
    unlink(path);
    assert_int_equal(limit_now(s, "messagesPerSecond"), 9);  /* live: applied */
    assert_int_equal(limit_now(s, "messageBurst"), 40);      /* the flag still wins */
    assert_int_equal(limit_now(s, "maxMessageBytes"), 65536); /* needs a restart */
    assert_true(log_has(s, "applied only at restart: max-message-bytes"));
    provoke_error(s);
    wait_log(s, " DEBUG "); /* --log-level debug now */
    assert_int_equal(metric(s, "rendezvous_reloads_total"), 1);
    assert_int_equal(metric(s, "rendezvous_reload_failures_total"), 0);
    assert_true(rdv_ts_server_running(s));
}

/* A file that has become invalid changes nothing and the server keeps
 * serving; fixed, it applies again. A missing file is refused alike. */
static void test_reload_bad_file_keeps_old_values(void **state)
{
    (void)state;
    char path[40];
    new_conf(path, "rate = 5\n");
    rdv_ts_server *s = rdv_ts_server_start((const char *const[]){"--config", path, NULL});
    if (!s) {
        unlink(path);
        fail_msg("rendezvousd did not start");
    }
    write_file(path, "rate = 7\nmax-watches = lots\n");
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    wait_log(s, "reload 1: FAILED: config: ");
    assert_true(log_has(s, ":2: max-watches: 'lots' is not an integer"));
    assert_true(rdv_ts_server_running(s));
    assert_int_equal(limit_now(s, "messagesPerSecond"), 5); /* rate = 7 not applied */
    assert_int_equal(metric(s, "rendezvous_reloads_total"), 1);
    assert_int_equal(metric(s, "rendezvous_reload_failures_total"), 1);
    assert_int_equal(metric(s, "rendezvous_reload_last_success"), 0);

    unlink(path);
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    wait_log(s, "reload 2: FAILED: config: ");
    assert_true(log_has(s, "cannot open"));
    assert_int_equal(limit_now(s, "messagesPerSecond"), 5);

    write_file(path, "rate = 8\n");
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    wait_log(s, "reload 3: ok (config)");
    unlink(path);
    assert_int_equal(limit_now(s, "messagesPerSecond"), 8);
    assert_int_equal(metric(s, "rendezvous_reload_failures_total"), 2);
    assert_int_equal(metric(s, "rendezvous_reload_last_success"), 1);
}

/* Without --config a SIGHUP reloads nothing new and does not stop the
 * server (its default action would). */
static void test_reload_without_config_file(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--rate", "6");
    assert_int_equal(rdv_ts_server_signal(s, SIGHUP), 0);
    wait_log(s, "reload 1: ok (config)");
    assert_true(rdv_ts_server_running(s));
    assert_int_equal(limit_now(s, "messagesPerSecond"), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_reload_applies_live_options),
        ITEST(test_reload_bad_file_keeps_old_values),
        ITEST(test_reload_without_config_file),
    };
    return ITEST_RUN(tests);
}
