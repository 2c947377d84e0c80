/* test_start.c - server_start: a server that cannot start says why and
 * what to do (issue 13, "Messages that say what to do"), exits 1, and
 * leaves nothing behind.
 *
 * Each row runs rendezvousd to completion and checks the exit status and
 * the key words: the TCP port in use (the holder named; no database file
 * created), a missing TLS certificate, --db in a missing directory or
 * naming a directory, a --listen address not on this host, an explicit
 * --stun-port in use (holder named), --redis URLs that cannot be used. An
 * unwritable directory is only checked when not running as root (root
 * writes everywhere).
 */
#include "itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A socket of `type` bound to 127.0.0.1 on a free port (TCP: listening);
 * its port in *port. */
static int hold_port(int type, int *port)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(fd, 4), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Runs rendezvousd args; expects exit 1 and every word of `want` (NULL
 * terminated) in its output. */
static void expect_refusal(const char *const *args, const char *const *want)
{
    char *out = NULL;
    int code = rdv_ts_run_serverd(args, &out, T_MS);
    bool ok = code == 1 && out;
    for (size_t i = 0; ok && want[i]; i++)
        if (!strstr(out, want[i])) {
            fprintf(stderr, "missing \"%s\"\n", want[i]);
            ok = false;
        }
    if (ok && strstr(out, "lws: ERROR")) {
        fprintf(stderr, "raw libwebsockets error lines in the output\n");
        ok = false;
    }
    if (!ok)
        fprintf(stderr, "rendezvousd %s ...: exit %d\n%s\n", args[0], code, out ? out : "");
    free(out);
    assert_true(ok);
}

static void test_start_port_in_use(void **state)
{
    (void)state;
    int port;
    int fd = hold_port(SOCK_STREAM, &port);
    char p[16], db[96];
    snprintf(p, sizeof p, "%d", port);
    snprintf(db, sizeof db, "/tmp/rdv-start-%d.db", (int)getpid());
    unlink(db);
    char self[64];
    snprintf(self, sizeof self, "(pid %d)", (int)getpid());
    expect_refusal((const char *const[]){"--port", p, "--stun-port", "0", "--db", db, NULL},
                   (const char *const[]){"TCP port", p, "already in use", self, "--port", NULL});
    close(fd);
    assert_int_equal(access(db, F_OK), -1); /* no database for a server that never ran */
}

static void test_start_tls_file_missing(void **state)
{
    (void)state;
    expect_refusal(
        (const char *const[]){"--port", "0", "--stun-port", "0", "--db", "/tmp/never.db",
                              "--tls-cert", "/nonexistent/cert.pem", "--tls-key",
                              "/nonexistent/key.pem", NULL},
        (const char *const[]){"cannot read the TLS certificate", "/nonexistent/cert.pem",
                              "--tls-cert", "No such file", NULL});
}

static void test_start_db_paths(void **state)
{
    (void)state;
    expect_refusal((const char *const[]){"--port", "0", "--stun-port", "0", "--db",
                                         "/nonexistent-dir/x.db", NULL},
                   (const char *const[]){"directory /nonexistent-dir does not exist",
                                         "mkdir -p", "--db", NULL});
    char dir[] = "/tmp/rdv-start-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    expect_refusal((const char *const[]){"--port", "0", "--stun-port", "0", "--db", dir, NULL},
                   (const char *const[]){"is a directory", "rendezvous.db", NULL});
    if (geteuid() != 0) {
        char db[96];
        chmod(dir, 0500);
        snprintf(db, sizeof db, "%s/x.db", dir);
        expect_refusal(
            (const char *const[]){"--port", "0", "--stun-port", "0", "--db", db, NULL},
            (const char *const[]){"no permission to write in", dir, NULL});
        chmod(dir, 0700);
    }
    rmdir(dir);
}

static void test_start_listen_not_here(void **state)
{
    (void)state;
    /* TEST-NET-3 (RFC 5737): never an address of this host */
    expect_refusal((const char *const[]){"--listen", "203.0.113.7", "--port", "18999",
                                         "--stun", "off", "--db", "/tmp/never.db", NULL},
                   (const char *const[]){"not an address of this host", "--listen", NULL});
}

static void test_start_stun_port_in_use(void **state)
{
    (void)state;
    int port;
    int fd = hold_port(SOCK_DGRAM, &port);
    char p[16], db[96], self[64];
    snprintf(p, sizeof p, "%d", port);
    snprintf(db, sizeof db, "/tmp/rdv-start-stun-%d.db", (int)getpid());
    snprintf(self, sizeof self, "(pid %d)", (int)getpid());
    expect_refusal((const char *const[]){"--port", "0", "--stun-port", p, "--stun-alt-port",
                                         "0", "--db", db, NULL},
                   (const char *const[]){"UDP port", p, "held by", self, "--stun-port", NULL});
    close(fd);
    char f[128];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s%s", db, sfx[i]);
        unlink(f);
    }
}

/* --redis URLs that cannot be used: a password in the URL (ps shows it), a
 * scheme that is not redis:// or unix://, a bad port. */
static void test_start_bad_redis_url(void **state)
{
    (void)state;
    expect_refusal((const char *const[]){"--port", "0", "--stun-port", "0", "--redis",
                                         "redis://:secret@127.0.0.1:6379", NULL},
                   (const char *const[]){"--redis", "RENDEZVOUS_REDIS_PASSWORD", NULL});
    expect_refusal((const char *const[]){"--port", "0", "--stun-port", "0", "--redis",
                                         "http://127.0.0.1:6379", NULL},
                   (const char *const[]){"--redis", "redis://HOST:PORT", "unix:///PATH", NULL});
    expect_refusal((const char *const[]){"--port", "0", "--stun-port", "0", "--redis",
                                         "redis://127.0.0.1:99999", NULL},
                   (const char *const[]){"--redis", "port", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_port_in_use),
        cmocka_unit_test(test_start_tls_file_missing),
        cmocka_unit_test(test_start_db_paths),
        cmocka_unit_test(test_start_listen_not_here),
        cmocka_unit_test(test_start_stun_port_in_use),
        cmocka_unit_test(test_start_bad_redis_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
