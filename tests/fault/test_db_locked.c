/* test_db_locked.c - fault_db_locked: another process (Debian's sqlite3
 * CLI) holds a write transaction (BEGIN IMMEDIATE) on the server's database
 * while nodes signal.
 *
 * Checked: online routing keeps working; an offer for an offline node gets
 * `error` `internal` (PROTOCOL.md 10 has no closer code) whose message says
 * the database is busy, never `queued`; the event loop is stalled at most
 * about one busy timeout (5 s, db/migrate.h) however many writes fail: ten
 * offers for the offline node and a ping from another node sent with them
 * are all answered within 20 s (about 5 s here), where one full wait per
 * offer (and per 500 ms expiry sweep) took over 50 s (the offers then go
 * stale); a lookup is answered and /healthz answers 503 while the lock is
 * held; once the lock goes, queuing works again, and the offline node gets
 * exactly what was queued (nothing of what was refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "itest.h"
#include "fault.h"

#define REFUSED 10
#define STALL_BOUND_MS 20000

/* The sqlite3 CLI holding BEGIN IMMEDIATE on a database. */
typedef struct locker {
    pid_t pid;
    int in;  /* its stdin */
    int out; /* its stdout */
} locker;

static locker lk = {-1, -1, -1};

static void locker_end(void)
{
    if (lk.in >= 0)
        close(lk.in);
    if (lk.out >= 0)
        close(lk.out);
    lk.in = lk.out = -1;
    if (lk.pid > 0) {
        /* stdin closed: the CLI rolls back and exits; bounded, then killed */
        long long until = rdv_ts_mono_ms() + 5000;
        int st = 0;
        while (waitpid(lk.pid, &st, WNOHANG) == 0) {
            if (rdv_ts_mono_ms() > until) {
                (void)kill(lk.pid, SIGKILL);
                (void)waitpid(lk.pid, &st, 0);
                break;
            }
            usleep(20 * 1000);
        }
        lk.pid = -1;
    }
}

/* Starts `sqlite3 db`, takes the write lock, waits (bounded) until it
 * holds it. Returns 0 or -1. */
static int locker_start(const char *db)
{
    int pin[2], pout[2];
    if (pipe2(pin, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pout, O_CLOEXEC) != 0) {
        close(pin[0]);
        close(pin[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(pin[0]);
        close(pin[1]);
        close(pout[0]);
        close(pout[1]);
        return -1;
    }
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0)
            _exit(127);
        execlp("sqlite3", "sqlite3", "-batch", db, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    lk.pid = pid;
    lk.in = pin[1];
    lk.out = pout[0];
    /* the server's own batch may hold the lock for a few ms: wait for it */
    static const char take[] = ".timeout 10000\nBEGIN IMMEDIATE;\n"
                               "SELECT 'locked';\n";
    if (write(lk.in, take, sizeof take - 1) != (ssize_t)(sizeof take - 1))
        return -1;
    char buf[256];
    size_t got = 0;
    long long until = rdv_ts_mono_ms() + 15000;
    while (rdv_ts_mono_ms() < until) {
        struct pollfd p = {.fd = lk.out, .events = POLLIN};
        int r = poll(&p, 1, 200);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        ssize_t n = read(lk.out, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "locked\n"))
            return 0;
        if (got == sizeof buf - 1)
            return -1;
    }
    return -1;
}

/* Ends the transaction and the CLI. */
static void locker_release(void)
{
    static const char rel[] = "ROLLBACK;\n.quit\n";
    if (lk.in >= 0 && write(lk.in, rel, sizeof rel - 1) != (ssize_t)(sizeof rel - 1))
        fprintf(stderr, "locker: write failed: %s\n", strerror(errno));
    locker_end();
}

static char *offer(const rdv_tn *from, const char *to, char sid[RDV_UUID_STRLEN + 1],
                   size_t *len)
{
    rdv_uuid_v4(sid);
    char *t = rdv_tn_offer(from, to, sid, NULL, len);
    assert_non_null(t);
    return t;
}

static void test_db_locked(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob, carol, dave;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *c = itest_join(s, &carol, "carol");
    rdv_tn_init(&dave, "dave"); /* offline */

    /* queued before the lock */
    char sid0[RDV_UUID_STRLEN + 1];
    size_t len0 = 0;
    char *m0 = offer(&alice, dave.id, sid0, &len0);
    assert_int_equal(rdv_ws_send_text(a, m0, len0), 0);
    itest_expect(a, "queued");

    if (locker_start(rdv_ts_server_db_path(s)) != 0) {
        locker_end();
        free(m0);
        fail_msg("sqlite3 could not take the write lock on %s", rdv_ts_server_db_path(s));
    }

    /* online routing does not touch the database */
    char sid[RDV_UUID_STRLEN + 1];
    size_t len = 0;
    char *t = offer(&alice, bob.id, sid, &len);
    assert_int_equal(rdv_ws_send_text(a, t, len), 0);
    int rc = rdv_expect_bytes(b, t, len, 20000);
    free(t);
    assert_int_equal(rc, 0);

    /* offers for the offline node, back to back, then a ping from carol */
    char refused[REFUSED][RDV_UUID_STRLEN + 1];
    for (int i = 0; i < REFUSED; i++) {
        t = offer(&alice, dave.id, refused[i], &len);
        rc = rdv_ws_queue_text(a, t, len);
        free(t);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(rdv_ws_flush(a, T_MS), 0);
    long long t0 = rdv_ts_mono_ms();
    itest_send(c, "{\"ping\":{\"id\":\"while-locked\"}}");
    json_t *pong = rdv_expect(c, "pong", 120000);
    assert_non_null(pong);
    assert_string_equal(rdv_json_str(pong, "id"), "while-locked");
    for (int i = 0; i < REFUSED; i++) {
        json_t *err = rdv_expect_error(a, "internal", 120000);
        assert_non_null(err);
        assert_string_equal(rdv_json_str(err, "ref"), refused[i]);
        assert_string_equal(rdv_json_str(err, "type"), "offer");
        const char *msg = rdv_json_str(err, "message");
        if (!strstr(msg, "database is busy"))
            fail_msg("the refusal does not name the cause: \"%s\"", msg);
    }
    long long waited = rdv_ts_mono_ms() - t0;
    fprintf(stderr, "%d refusals and a pong after %lld ms\n", REFUSED, waited);
    if (waited > STALL_BOUND_MS)
        fail_msg("the event loop stalled %lld ms (bound %d): one busy timeout per write",
                 waited, STALL_BOUND_MS);
    /* a lookup from another node is answered while the lock is held */
    json_t *e = rdv_lookup_one(c, alice.id);
    assert_non_null(e);
    assert_true(json_is_true(json_object_get(e, "online")));
    /* and /healthz says the store does not take writes */
    char *body = NULL;
    int hs = rdv_http_get(rdv_ts_server_port(s), "/healthz", &body, 20000);
    free(body);
    assert_int_equal(hs, 503);

    locker_release();

    /* queuing works again (bounded: the first write after the lock) */
    char sid1[RDV_UUID_STRLEN + 1];
    size_t len1 = 0;
    char *m1 = offer(&alice, dave.id, sid1, &len1);
    assert_int_equal(rdv_ws_send_text(a, m1, len1), 0);
    json_t *q = rdv_expect(a, "queued", 20000);
    if (!q) {
        free(m0);
        free(m1);
        fail_msg("queuing did not work again after the lock went");
    }
    assert_string_equal(rdv_json_str(q, "sessionID"), sid1);

    /* dave gets what was queued, in order, and nothing that was refused */
    rdv_ws *d = itest_node(s, &dave);
    int r0 = rdv_expect_bytes(d, m0, len0, T_MS);
    int r1 = rdv_expect_bytes(d, m1, len1, T_MS);
    free(m0);
    free(m1);
    assert_int_equal(r0, 0);
    assert_int_equal(r1, 0);
    itest_alive(d, alice.id);

    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    bool said = strstr(log, "database is busy") != NULL;
    free(log);
    assert_true(said);
}

static int teardown(void **state)
{
    (void)state;
    locker_end();
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_db_locked, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
