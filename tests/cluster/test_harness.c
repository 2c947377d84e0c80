/* test_harness.c - cluster_harness: the redis-server helper of
 * tests/support/redis.h that the cluster_ tests stand on, and the
 * default engine.
 *
 * - redis-server starts on a Unix socket in a fresh directory (and a TCP
 *   port of 127.0.0.1 when asked), answers PING on both, and the helper
 *   exposes the URLs rendezvousd takes; stop (SIGTERM) exits 0 and ends
 *   the socket; without persistence a restart comes back empty; with
 *   persistence the data survives a stop and a SIGKILL; the teardown
 *   (rdv_ts_cleanup_all) kills it and removes its directory; an unusable
 *   binary gives "cannot start redis-server: <why>".
 * - a rendezvousd WITHOUT --redis works as before (the SQLite engine):
 *   two nodes see each other in a lookup and signal; its /status has no
 *   cluster object or one with "engine":"sqlite".
 */
#include "cluster.h"

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static char *cmd(rdv_ts_redis *r, const char *const *argv)
{
    char *reply = NULL;
    if (rdv_ts_redis_cmd(r, argv, &reply, T_MS) != 0)
        fail_msg("redis command %s failed", argv[0]);
    return reply;
}

static void expect_reply(rdv_ts_redis *r, const char *const *argv, const char *want)
{
    char *got = cmd(r, argv);
    bool ok = strcmp(got, want) == 0;
    if (!ok) {
        print_message("redis %s: got '%s', expected '%s'\n", argv[0], got, want);
        free(got);
        fail_msg("unexpected redis reply");
    }
    free(got);
}

/* PING over TCP to 127.0.0.1:port: true on +PONG. */
static bool tcp_ping(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct timeval tv = {2, 0};
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = false;
    char buf[16] = "";
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        send(fd, "*1\r\n$4\r\nPING\r\n", 14, MSG_NOSIGNAL) == 14) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        ok = n >= 7 && memcmp(buf, "+PONG\r\n", 7) == 0;
    }
    close(fd);
    return ok;
}

static void test_harness_redis_volatile(void **state)
{
    (void)state;
    rdv_ts_redis_opts o = {.tcp = true};
    rdv_ts_redis *r = cl_redis(&o);
    char url[256];
    snprintf(url, sizeof url, "unix://%s", rdv_ts_redis_socket_path(r));
    assert_string_equal(rdv_ts_redis_unix_url(r), url);
    assert_true(strncmp(rdv_ts_redis_unix_url(r), "unix:///", 8) == 0);
    int port = rdv_ts_redis_port(r);
    assert_true(port > 0 && port < 65536);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    assert_string_equal(rdv_ts_redis_tcp_url(r), url);
    assert_true(rdv_ts_redis_ping(r, T_MS));
    assert_true(tcp_ping(port));

    expect_reply(r, (const char *const[]){"SET", "k", "v 1\r\n", NULL}, "OK");
    expect_reply(r, (const char *const[]){"GET", "k", NULL}, "v 1\r\n");
    expect_reply(r, (const char *const[]){"RPUSH", "l", "a", "b", NULL}, "2");
    expect_reply(r, (const char *const[]){"LRANGE", "l", "0", "-1", NULL}, "a\nb");
    expect_reply(r, (const char *const[]){"GET", "nope", NULL}, "(nil)");
    char *err = cmd(r, (const char *const[]){"NOSUCHCOMMAND", NULL});
    bool is_err = err[0] == '-';
    free(err);
    assert_true(is_err);
    /* Nothing on disk by default. */
    expect_reply(r, (const char *const[]){"CONFIG", "GET", "appendonly", NULL},
                 "appendonly\nno");
    expect_reply(r, (const char *const[]){"CONFIG", "GET", "save", NULL}, "save\n");

    assert_int_equal(rdv_ts_redis_stop(r), 0);
    assert_false(rdv_ts_redis_running(r));
    assert_false(rdv_ts_redis_ping(r, 200));
    assert_false(tcp_ping(port));
    assert_int_equal(rdv_ts_redis_stop(r), -1);

    assert_int_equal(rdv_ts_redis_restart(r), 0);
    assert_int_equal(rdv_ts_redis_port(r), port); /* same URLs */
    assert_true(tcp_ping(port));
    expect_reply(r, (const char *const[]){"GET", "k", NULL}, "(nil)");

    /* Freed by the teardown: process and directory gone. */
    char dir[256];
    snprintf(dir, sizeof dir, "%s", rdv_ts_redis_dir(r));
    pid_t pid = rdv_ts_redis_pid(r);
    assert_true(pid > 0);
    rdv_ts_cleanup_all();
    assert_int_not_equal(access(dir, F_OK), 0);
    assert_false(tcp_ping(port));
}

static void test_harness_redis_persistent(void **state)
{
    (void)state;
    rdv_ts_redis_opts o = {.persist = true};
    rdv_ts_redis *r = cl_redis(&o);
    assert_null(rdv_ts_redis_tcp_url(r));
    assert_int_equal(rdv_ts_redis_port(r), 0);
    expect_reply(r, (const char *const[]){"CONFIG", "GET", "appendfsync", NULL},
                 "appendfsync\nalways");
    expect_reply(r, (const char *const[]){"SET", "k", "1", NULL}, "OK");
    assert_int_equal(rdv_ts_redis_stop(r), 0);
    assert_int_equal(rdv_ts_redis_restart(r), 0);
    expect_reply(r, (const char *const[]){"GET", "k", NULL}, "1");
    /* appendfsync always: a write acknowledged survives SIGKILL. */
    expect_reply(r, (const char *const[]){"SET", "k2", "2", NULL}, "OK");
    assert_int_equal(rdv_ts_redis_kill(r), 128 + SIGKILL);
    assert_false(rdv_ts_redis_running(r));
    assert_int_equal(rdv_ts_redis_restart(r), 0);
    expect_reply(r, (const char *const[]){"GET", "k", NULL}, "1");
    expect_reply(r, (const char *const[]){"GET", "k2", NULL}, "2");
    /* restart of a running server stops it first */
    pid_t before = rdv_ts_redis_pid(r);
    assert_int_equal(rdv_ts_redis_restart(r), 0);
    assert_int_not_equal(rdv_ts_redis_pid(r), before);
    expect_reply(r, (const char *const[]){"GET", "k2", NULL}, "2");
}

static void test_harness_redis_cannot_start(void **state)
{
    (void)state;
    char why[768] = "";
    const char *old = getenv("RDV_REDIS_SERVER");
    char *saved = old ? strdup(old) : NULL;
    assert_int_equal(setenv("RDV_REDIS_SERVER", "/nonexistent/redis-server", 1), 0);
    rdv_ts_redis *r = rdv_ts_redis_start(NULL, why, sizeof why);
    if (saved) {
        assert_int_equal(setenv("RDV_REDIS_SERVER", saved, 1), 0);
        free(saved);
    } else {
        assert_int_equal(unsetenv("RDV_REDIS_SERVER"), 0);
    }
    assert_null(r);
    assert_true(strncmp(why, "cannot start redis-server: ", 27) == 0);
    assert_non_null(strstr(why, "/nonexistent/redis-server"));

    /* A binary that starts but exits at once: its reason is reported. */
    assert_int_equal(setenv("RDV_REDIS_SERVER", "/bin/false", 1), 0);
    r = rdv_ts_redis_start(NULL, why, sizeof why);
    assert_int_equal(unsetenv("RDV_REDIS_SERVER"), 0);
    assert_null(r);
    assert_true(strncmp(why, "cannot start redis-server: ", 27) == 0);
    assert_non_null(strstr(why, "exit status 1"));
}

static void test_harness_sqlite_default(void **state)
{
    (void)state;
    /* No --redis: the SQLite engine, exactly as before. */
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    assert_true(cl_online(a, bob.id, NULL));
    size_t len;
    char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &len);
    assert_non_null(offer);
    if (rdv_ws_send_text(a, offer, len) != 0) {
        free(offer);
        fail_msg("send failed");
    }
    cl_expect_bytes_free(b, offer, len, T_MS, "offer on the SQLite engine");
    assert_int_equal(cl_get(s, "/healthz", NULL), 200);
    json_t *st = cl_status(s);
    json_t *cluster = json_object_get(st, "cluster");
    const char *engine = json_string_value(json_object_get(cluster, "engine"));
    bool ok = !cluster || (engine && strcmp(engine, "sqlite") == 0);
    json_decref(st);
    if (!ok)
        fail_msg("/status of a server without --redis: cluster.engine %s, expected sqlite",
                 engine ? engine : "(none)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_harness_redis_volatile),
        ITEST(test_harness_redis_persistent),
        ITEST(test_harness_redis_cannot_start),
        ITEST(test_harness_sqlite_default),
    };
    return ITEST_RUN(tests);
}
