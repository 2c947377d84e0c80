/* test_disk_full.c - fault_disk_full: the database on a 2 MiB tmpfs that
 * the test fills up with a file (root only: it mounts; skipped otherwise,
 * see tests/expected_skips.txt).
 *
 * Checked while the disk is full: online routing keeps working; offers for
 * an offline node are answered `queued` (only if stored) or `error`
 * `internal` whose message names the disk, and at least one is refused;
 * /healthz answers 503; an ERROR line names the disk. When the filler goes
 * the server recovers by itself (/healthz 200, `queued` again), and the
 * offline node then gets every message that was answered `queued`, before
 * and during the fault, exactly once and in order, and none that was
 * refused. The tmpfs is unmounted (lazily, so never left behind by a busy
 * file) in the teardown and at exit, whatever failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "itest.h"
#include "fault.h"

#define PRE 5        /* queued before the disk fills */
#define MAX_TRIES 400 /* offers sent while full until one is refused */
#define AFTER_REFUSAL 5

static char mnt[64];
static bool mounted;

static void unmount_all(void)
{
    if (mounted) {
        if (umount2(mnt, MNT_DETACH) != 0)
            fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
        mounted = false;
    }
    if (mnt[0]) {
        (void)rmdir(mnt);
        mnt[0] = '\0';
    }
}

/* Writes `path` until the file system is full. Returns bytes written or -1. */
static long long fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    long long total = 0;
    for (size_t sz = sizeof chunk; sz >= 1; sz /= 2) {
        for (;;) {
            ssize_t n = write(fd, chunk, sz);
            if (n > 0) {
                total += n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            break; /* ENOSPC (or 0): try a smaller size */
        }
    }
    if (close(fd) != 0)
        return -1;
    return total;
}

typedef struct msg {
    char *text;
    size_t len;
    char sid[RDV_UUID_STRLEN + 1];
} msg;

static msg *mk_offer(const rdv_tn *from, const char *to)
{
    msg *m = calloc(1, sizeof *m);
    assert_non_null(m);
    rdv_uuid_v4(m->sid);
    m->text = rdv_tn_offer(from, to, m->sid, NULL, &m->len);
    assert_non_null(m->text);
    return m;
}

static void msg_free(msg *m)
{
    if (m) {
        free(m->text);
        free(m);
    }
}

static int healthz(int port)
{
    char *body = NULL;
    int st = rdv_http_get(port, "/healthz", &body, 20000);
    free(body);
    return st;
}

/* Polls /healthz until it answers `want` (bounded). */
static bool healthz_becomes(int port, int want, int timeout_ms)
{
    long long until = rdv_ts_mono_ms() + timeout_ms;
    do {
        if (healthz(port) == want)
            return true;
        usleep(200 * 1000);
    } while (rdv_ts_mono_ms() < until);
    return false;
}

static void test_disk_full(void **state)
{
    (void)state;
    if (getuid() != 0) {
        fprintf(stderr, "fault_disk_full: needs root to mount a tmpfs\n");
        skip();
    }
    snprintf(mnt, sizeof mnt, "%s", "/tmp/rdv-diskfull-XXXXXX");
    if (!mkdtemp(mnt)) {
        mnt[0] = '\0';
        fail_msg("mkdtemp: %s", strerror(errno));
    }
    if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0700") != 0)
        fail_msg("mount tmpfs on %s: %s", mnt, strerror(errno));
    mounted = true;

    char db[128], filler[128];
    snprintf(db, sizeof db, "%.64s/rendezvous.db", mnt);
    snprintf(filler, sizeof filler, "%.64s/filler", mnt);
    rdv_ts_server *s = rdv_ts_server_start_db(db, NULL);
    assert_non_null(s);
    int port = rdv_ts_server_port(s);
    rdv_tn alice, bob, dave;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_tn_init(&dave, "dave"); /* offline */

    msg *kept[PRE + MAX_TRIES + AFTER_REFUSAL + 1];
    size_t nkept = 0;
    for (int i = 0; i < PRE; i++) {
        msg *m = mk_offer(&alice, dave.id);
        assert_int_equal(rdv_ws_send_text(a, m->text, m->len), 0);
        itest_expect(a, "queued");
        kept[nkept++] = m;
    }

    long long filled = fill(filler);
    assert_true(filled >= 0);
    fprintf(stderr, "filler: %lld bytes\n", filled);

    /* offers until one is refused, then a few more: each is queued (and
     * must be delivered later) or refused naming the disk */
    int refused = 0, tries = 0, after = 0;
    while (tries < MAX_TRIES && after < AFTER_REFUSAL) {
        tries++;
        if (refused)
            after++;
        msg *m = mk_offer(&alice, dave.id);
        assert_int_equal(rdv_ws_send_text(a, m->text, m->len), 0);
        const char *type = NULL;
        json_t *root = rdv_ws_recv_json(a, 20000, &type);
        if (!root)
            fail_msg("no answer to offer %d while the disk is full", tries);
        if (type && !strcmp(type, "queued")) {
            kept[nkept++] = m;
            continue;
        }
        json_t *e = json_object_get(root, "error");
        if (!e)
            fail_msg("offer %d: got %s, not queued or error", tries, type ? type : "?");
        assert_string_equal(rdv_json_str(e, "code"), "internal");
        assert_string_equal(rdv_json_str(e, "ref"), m->sid);
        const char *text = rdv_json_str(e, "message");
        if (!strstr(text, "disk"))
            fail_msg("the refusal does not name the disk: \"%s\"", text);
        refused++;
        msg_free(m);
    }
    fprintf(stderr, "while full: %d offers, %d refused, %zu queued in all\n", tries, refused,
            nkept);
    if (!refused)
        fail_msg("%d offers accepted on a full disk: none refused", tries);

    /* online traffic keeps flowing */
    msg *o = mk_offer(&alice, bob.id);
    assert_int_equal(rdv_ws_send_text(a, o->text, o->len), 0);
    int rc = rdv_expect_bytes(b, o->text, o->len, T_MS);
    msg_free(o);
    assert_int_equal(rc, 0);

    if (!healthz_becomes(port, 503, 15000))
        fail_msg("/healthz does not answer 503 while the disk is full");

    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    bool said = strstr(log, "disk holding the database is full") != NULL;
    free(log);
    assert_true(said);

    /* space returns: the server recovers by itself */
    assert_int_equal(unlink(filler), 0);
    if (!healthz_becomes(port, 200, 20000))
        fail_msg("/healthz does not recover after space returned");
    msg *m = mk_offer(&alice, dave.id);
    assert_int_equal(rdv_ws_send_text(a, m->text, m->len), 0);
    itest_expect(a, "queued");
    kept[nkept++] = m;

    /* every `queued` message, once, in order; nothing refused */
    rdv_ws *d = itest_node(s, &dave);
    for (size_t i = 0; i < nkept; i++) {
        if (rdv_expect_bytes(d, kept[i]->text, kept[i]->len, T_MS) != 0)
            fail_msg("queued message %zu of %zu lost or out of order", i, nkept);
    }
    itest_alive(d, alice.id);
    for (size_t i = 0; i < nkept; i++)
        msg_free(kept[i]);
}

static int teardown(void **state)
{
    (void)state;
    int rc = rdv_ts_teardown_checked();
    unmount_all();
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    if (atexit(unmount_all) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_disk_full, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
