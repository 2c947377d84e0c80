/* test_operator.c - admission_operator: the operator's listener (issue
 * 16, README "Operator's listener").
 *
 * /metrics, /status and the status page / are served on the operator's
 * listener (--operator-listen) and not on the public WebSocket port, which
 * answers /v1 and /healthz only; --public-status serves them there too.
 * The operator's listener refuses a WebSocket (it is not a way in for
 * nodes), `--operator-listen off` opens none, a port set on purpose that
 * is taken stops the server with the holder named, and bad values are
 * refused at start.
 */
#include "itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* GET path on port: the HTTP status (-1 on error); the body is freed. */
static int status_of(int port, const char *path)
{
    char *body = NULL;
    int st = rdv_http_get(port, path, &body, T_MS);
    free(body);
    return st;
}

static void expect_status(rdv_ts_server *s, int port, const char *path, int want,
                          const char *where)
{
    int st = status_of(port, path);
    if (st != want) {
        rdv_ts_server_dump_log(s, path);
        fail_msg("GET %s on the %s listener: %d, expected %d", path, where, st, want);
    }
}

static void test_operator_split(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    int pub = rdv_ts_server_port(s), op = rdv_ts_server_operator_port(s);
    assert_true(op > 0 && op != pub);
    /* public: only /healthz (and /v1's upgrade) */
    expect_status(s, pub, "/healthz", 200, "public");
    expect_status(s, pub, "/metrics", 404, "public");
    expect_status(s, pub, "/status", 404, "public");
    expect_status(s, pub, "/", 404, "public");
    /* the 404 says where they went */
    char *body = NULL;
    assert_int_equal(rdv_http_get(pub, "/metrics", &body, T_MS), 404);
    assert_non_null(strstr(body, "--operator-listen"));
    free(body);
    /* operator: all of them */
    expect_status(s, op, "/healthz", 200, "operator");
    expect_status(s, op, "/status", 200, "operator");
    expect_status(s, op, "/", 200, "operator");
    assert_int_equal(rdv_http_get(op, "/metrics", &body, T_MS), 200);
    assert_non_null(strstr(body, "\nrendezvous_connections "));
    free(body);
    expect_status(s, op, "/nothing", 404, "operator");
    /* nodes still get in on the public port, and not on the operator's */
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    itest_alive(a, alice.id);
    rdv_tn_init(&bob, "bob");
    rdv_ws *b = rdv_tn_connect(op, &bob);
    if (b) {
        rdv_ws_abort(b);
        fail_msg("a node authenticated on the operator's listener");
    }
}

static void test_operator_public_status_switch(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--public-status");
    int pub = rdv_ts_server_port(s);
    expect_status(s, pub, "/metrics", 200, "public (--public-status)");
    expect_status(s, pub, "/status", 200, "public (--public-status)");
    expect_status(s, pub, "/", 200, "public (--public-status)");
    expect_status(s, rdv_ts_server_operator_port(s), "/metrics", 200, "operator");
}

static void test_operator_off(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--operator-listen", "off");
    assert_int_equal(rdv_ts_server_operator_port(s), 0);
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    bool off = strstr(log, "operator off") != NULL;
    free(log);
    assert_true(off);
    expect_status(s, rdv_ts_server_port(s), "/metrics", 404, "public");
    expect_status(s, rdv_ts_server_port(s), "/healthz", 200, "public");
}

/* A listening TCP socket on 127.0.0.1 (its port in *port). */
static int hold_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_operator_port_taken(void **state)
{
    (void)state;
    int port;
    int fd = hold_port(&port);
    char val[32], db[64];
    snprintf(val, sizeof val, "127.0.0.1:%d", port);
    snprintf(db, sizeof db, "/tmp/rdv-op-taken-%d.db", (int)getpid());
    const char *args[] = {"--port", "0", "--stun-port", "0", "--db", db, "--operator-listen",
                          val, NULL};
    char *out = NULL;
    int code = rdv_ts_run_serverd(args, &out, T_MS);
    close(fd);
    unlink(db);
    bool said = out && strstr(out, "--operator-listen") && strstr(out, "already in use");
    if (code != 1 || !said) {
        fprintf(stderr, "%s\n", out ? out : "");
        free(out);
        fail_msg("operator port taken: exit %d (want 1) and a message naming it", code);
    }
    free(out);
}

static void test_operator_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {"9080", "localhost:9080", "127.0.0.1:", "127.0.0.1:70000",
                                      "[::1]", ":9080", "127.0.0.1:90x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {"--operator-listen", bad[i], "--db", "/nonexistent-dir/x.db",
                              NULL};
        char *out = NULL;
        int code = rdv_ts_run_serverd(args, &out, T_MS);
        bool said = out && strstr(out, "--operator-listen");
        if (code != 2 || !said) {
            fprintf(stderr, "%s\n", out ? out : "");
            free(out);
            fail_msg("--operator-listen %s: exit %d, expected 2 with a message", bad[i], code);
        }
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_operator_split),
        ITEST(test_operator_public_status_switch),
        ITEST(test_operator_off),
        ITEST(test_operator_port_taken),
        ITEST(test_operator_bad_values),
    };
    return ITEST_RUN(tests);
}
