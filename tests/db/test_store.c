/* test_store.c: tests of rendezvous/store.c (presence and the offline
 * queue in SQLite) through its public API, store.h.
 *
 * Every test works in its own temporary directory under $TMPDIR or /tmp
 * (mkdtemp), removed with the database and its -wal/-shm files afterwards.
 * Crash tests fork() a child that uses the store and dies without closing
 * it (_exit or SIGKILL); the parent has no connection open across fork().
 * A second plain sqlite3 connection is used to see what is committed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rendezvous/store.h"

#define PATH_LEN 512
#define T0 1700000000000LL /* a fixed "now", ms */
#define CAP 100

/* ---- fixture ----------------------------------------------------------- */

struct fx {
    char dir[PATH_LEN];
    char path[PATH_LEN + 16]; /* dir/rdv.db */
    srv_store *st;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    snprintf(f->dir, sizeof f->dir, "%s/rdv-store-test-XXXXXX", tmp);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/rdv.db", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    srv_store_close(f->st);
    (void)chmod(f->dir, 0700);
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[PATH_LEN + 16];
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        (void)unlink(p); /* may not exist */
    }
    int rc = rmdir(f->dir);
    free(f);
    return rc;
}

static srv_store *open_ok(const char *path)
{
    srv_store *st = NULL;
    char err[256] = "";
    int rc = srv_store_open(path, &st, err, sizeof err);
    if (rc != SRV_STORE_OK)
        fail_msg("srv_store_open(%s): %s", path, err);
    assert_non_null(st);
    return st;
}

/* A node ID: 64 times the hex digit c. */
static const char *nid(char buf[65], char c)
{
    memset(buf, c, 64);
    buf[64] = '\0';
    return buf;
}

/* Count rows matching sql (one integer) on a separate plain connection:
 * what is committed, not what sits in the store's open batch. */
static long long committed_ll(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    assert_int_equal(sqlite3_finalize(s), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* ---- collecting callback ------------------------------------------------ */

#define MAXGOT 16

struct got_msg {
    int64_t id;
    char recipient[65], sender[65], type[32], session[40];
    bool session_null;
    uint8_t raw[64];
    size_t raw_len;
    int64_t created, expires;
};

struct got {
    int n;
    struct got_msg m[MAXGOT];
    srv_store *st;      /* for the re-entrancy test */
    int reentry_rc;
};

static void collect(const srv_queued_msg *msg, void *user)
{
    struct got *g = user;
    assert_true(g->n < MAXGOT);
    struct got_msg *m = &g->m[g->n++];
    m->id = msg->id;
    snprintf(m->recipient, sizeof m->recipient, "%s", msg->recipient);
    snprintf(m->sender, sizeof m->sender, "%s", msg->sender);
    snprintf(m->type, sizeof m->type, "%s", msg->type);
    m->session_null = msg->session_id == NULL;
    snprintf(m->session, sizeof m->session, "%s",
             msg->session_id ? msg->session_id : "");
    assert_true(msg->raw_len <= sizeof m->raw);
    assert_non_null(msg->raw);
    memcpy(m->raw, msg->raw, msg->raw_len);
    m->raw_len = msg->raw_len;
    m->created = msg->created;
    m->expires = msg->expires;
    if (g->st != NULL)
        g->reentry_rc = (int)srv_store_queue_depth(g->st);
}

/* Push a message whose raw bytes are the text `body`. */
static int push(srv_store *st, const char *to, const char *from,
                const char *session, const char *body, int64_t expires,
                int cap)
{
    return srv_store_queue_push(st, to, from, "offer", session,
                                (const uint8_t *)body, strlen(body), T0,
                                expires, cap);
}

/* ---- open ----------------------------------------------------------------- */

static void test_open_error(void **state)
{
    struct fx *f = *state;
    char path[PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/missing/dir/rdv.db", f->dir);
    srv_store *st = (srv_store *)&st; /* must be reset to NULL */
    char err[256] = "";
    assert_int_equal(srv_store_open(path, &st, err, sizeof err),
                     SRV_STORE_ERR);
    assert_null(st);
    assert_non_null(strstr(err, "rdv.db"));
    srv_store_close(NULL); /* NULL-safe */
    assert_string_equal(srv_store_errmsg(NULL), "no store");
}

/* ---- presence ------------------------------------------------------------- */

static void test_lookup_unknown(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    srv_presence p;
    memset(&p, 0x5a, sizeof p);
    assert_int_equal(srv_store_lookup(f->st, nid(a, 'a'), &p), SRV_STORE_OK);
    assert_false(p.known);
    assert_false(p.online);
    assert_int_equal(p.first_seen, 0);
    assert_int_equal(p.last_seen, 0);
    assert_string_equal(p.nat_type, "unknown");
}

static void test_node_online_first(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "symmetric",
                                           "203.0.113.7", 40000, T0),
                     SRV_STORE_OK);
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
    assert_true(p.online);
    assert_int_equal(p.first_seen, T0);
    assert_int_equal(p.last_seen, T0);
    assert_string_equal(p.nat_type, "symmetric");
}

static void test_node_online_again(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "symmetric",
                                           "203.0.113.7", 40000, T0),
                     SRV_STORE_OK);
    assert_int_equal(srv_store_node_offline(f->st, a, T0 + 500),
                     SRV_STORE_OK);
    assert_int_equal(srv_store_node_online(f->st, a, "fullCone", NULL, -1,
                                           T0 + 1000), SRV_STORE_OK);
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
    assert_true(p.online);
    assert_int_equal(p.first_seen, T0);
    assert_int_equal(p.last_seen, T0 + 1000);
    assert_string_equal(p.nat_type, "fullCone");

    /* Endpoint columns as stored (NULL ip/port for "not known"). */
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"
                                  " WHERE observed_ip IS NULL"
                                  " AND observed_port IS NULL"), 1);
}

static void test_node_online_invalid(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    /* Not a NatType: the schema's CHECK refuses it, message copied. */
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "weird",
                                           NULL, -1, T0), SRV_STORE_ERR);
    assert_non_null(strstr(srv_store_errmsg(f->st), "CHECK"));
    /* Not a node ID. */
    assert_int_equal(srv_store_node_online(f->st, "xyz", "unknown", NULL,
                                           -1, T0), SRV_STORE_ERR);
    /* The store is still usable, nothing was recorded. */
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_false(p.known);
    assert_int_equal(srv_store_node_online(f->st, a, NULL, NULL, -1, T0),
                     SRV_STORE_OK);
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_string_equal(p.nat_type, "unknown");
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);
}

static void test_node_offline(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'),
                                           "portRestricted", "198.51.100.1",
                                           5000, T0), SRV_STORE_OK);
    assert_int_equal(srv_store_node_offline(f->st, a, T0 + 60000),
                     SRV_STORE_OK);
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
    assert_false(p.online);
    assert_int_equal(p.first_seen, T0);
    assert_int_equal(p.last_seen, T0 + 60000);
    assert_string_equal(p.nat_type, "portRestricted");

    /* A node never seen: ENOTFOUND, and it stays unknown. */
    assert_int_equal(srv_store_node_offline(f->st, nid(b, 'b'), T0),
                     SRV_STORE_ENOTFOUND);
    assert_int_equal(srv_store_lookup(f->st, b, &p), SRV_STORE_OK);
    assert_false(p.known);
}

static void test_mark_all_offline(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65], c[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "fullCone",
                                           NULL, -1, T0), SRV_STORE_OK);
    assert_int_equal(srv_store_node_online(f->st, nid(b, 'b'), "symmetric",
                                           NULL, -1, T0 + 1), SRV_STORE_OK);
    assert_int_equal(srv_store_node_online(f->st, nid(c, 'c'), "symmetric",
                                           NULL, -1, T0), SRV_STORE_OK);
    assert_int_equal(srv_store_node_offline(f->st, c, T0 + 2),
                     SRV_STORE_OK);
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);
    srv_store_close(f->st);

    /* Restart after a crash: a and b are still marked online. */
    f->st = open_ok(f->path);
    assert_int_equal(srv_store_mark_all_offline(f->st, T0 + 9000),
                     SRV_STORE_OK);
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_false(p.online);
    assert_int_equal(p.last_seen, T0 + 9000);
    assert_int_equal(p.first_seen, T0);
    assert_string_equal(p.nat_type, "fullCone");
    assert_int_equal(srv_store_lookup(f->st, b, &p), SRV_STORE_OK);
    assert_false(p.online);
    assert_int_equal(p.last_seen, T0 + 9000);
    /* c was offline already: its last_seen stays when it was last seen. */
    assert_int_equal(srv_store_lookup(f->st, c, &p), SRV_STORE_OK);
    assert_false(p.online);
    assert_int_equal(p.last_seen, T0 + 2);
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"
                                  " WHERE online = 1"), 0);
}

/* ---- batching and flush ------------------------------------------------- */

static void test_presence_batched_until_flush(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "fullCone",
                                           NULL, -1, T0), SRV_STORE_OK);
    /* The store's own reads see the batch ... */
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
    /* ... other connections do not, until flush commits it. */
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 0);
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 1);
    /* Flushing with nothing pending is fine. */
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);

    srv_store_close(f->st);
    f->st = open_ok(f->path);
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
    assert_true(p.online);
    assert_int_equal(p.first_seen, T0);
}

static void test_close_commits_batch(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "symmetric",
                                           NULL, -1, T0), SRV_STORE_OK);
    srv_store_close(f->st); /* no flush */
    f->st = open_ok(f->path);
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
}

static void test_push_commits_batch(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "fullCone",
                                           NULL, -1, T0), SRV_STORE_OK);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 0);
    assert_int_equal(push(f->st, nid(b, 'b'), a, NULL, "{}", T0 + 1000, CAP),
                     SRV_STORE_OK);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 1);
    assert_int_equal(committed_ll(f->path,
                                  "SELECT count(*) FROM offline_queue"), 1);
}

static void test_failed_push_keeps_batch(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "fullCone",
                                           NULL, -1, T0), SRV_STORE_OK);
    /* Recipient is not a node ID: CHECK fails, message copied. */
    assert_int_equal(push(f->st, "not-a-node", a, NULL, "{}", T0 + 1, CAP),
                     SRV_STORE_ERR);
    assert_non_null(strstr(srv_store_errmsg(f->st), "queue_push"));
    assert_int_equal(srv_store_queue_depth(f->st), 0);
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, a, &p), SRV_STORE_OK);
    assert_true(p.known);
    assert_int_equal(srv_store_flush(f->st), SRV_STORE_OK);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 1);
}

/* ---- queue ------------------------------------------------------------------ */

static void test_queue_order(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65], c[65];
    nid(a, 'a');
    nid(b, 'b');
    nid(c, 'c');
    static const uint8_t bin[] = { 0x00, 0xff, 0x10, 0x00, 0x7b };
    assert_int_equal(push(f->st, a, b, "s-1", "{\"offer\":1}", T0 + 5000,
                          CAP), SRV_STORE_OK);
    assert_int_equal(push(f->st, c, b, "other", "{\"offer\":9}", T0 + 5000,
                          CAP), SRV_STORE_OK);
    assert_int_equal(srv_store_queue_push(f->st, a, c, "iceCandidate", NULL,
                                          bin, sizeof bin, T0 + 1,
                                          T0 + 6000, CAP), SRV_STORE_OK);
    assert_int_equal(push(f->st, a, b, "s-3", "{\"answer\":3}", T0 + 4000,
                          CAP), SRV_STORE_OK);
    assert_int_equal(srv_store_queue_depth(f->st), 4);

    struct got g = { 0 };
    assert_int_equal(srv_store_queue_take(f->st, a, T0 + 100, collect, &g),
                     3);
    assert_int_equal(g.n, 3);
    assert_true(g.m[0].id < g.m[1].id && g.m[1].id < g.m[2].id);
    assert_string_equal(g.m[0].recipient, a);
    assert_string_equal(g.m[0].sender, b);
    assert_string_equal(g.m[0].type, "offer");
    assert_string_equal(g.m[0].session, "s-1");
    assert_int_equal(g.m[0].raw_len, strlen("{\"offer\":1}"));
    assert_memory_equal(g.m[0].raw, "{\"offer\":1}", g.m[0].raw_len);
    assert_int_equal(g.m[0].created, T0);
    assert_int_equal(g.m[0].expires, T0 + 5000);

    assert_string_equal(g.m[1].sender, c);
    assert_string_equal(g.m[1].type, "iceCandidate");
    assert_true(g.m[1].session_null);
    assert_int_equal(g.m[1].raw_len, sizeof bin);
    assert_memory_equal(g.m[1].raw, bin, sizeof bin);
    assert_int_equal(g.m[1].created, T0 + 1);

    assert_string_equal(g.m[2].session, "s-3");
    assert_memory_equal(g.m[2].raw, "{\"answer\":3}", g.m[2].raw_len);

    /* The other recipient's message is untouched. */
    assert_int_equal(srv_store_queue_depth(f->st), 1);
    /* Committed: another connection sees the deletes. */
    assert_int_equal(committed_ll(f->path,
                                  "SELECT count(*) FROM offline_queue"), 1);
}

static void test_take_skips_expired_and_deletes(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65];
    nid(a, 'a');
    nid(b, 'b');
    assert_int_equal(push(f->st, a, b, "old", "1", T0 + 10, CAP),
                     SRV_STORE_OK);
    assert_int_equal(push(f->st, a, b, "live", "2", T0 + 5000, CAP),
                     SRV_STORE_OK);
    assert_int_equal(push(f->st, a, b, "edge", "3", T0 + 100, CAP),
                     SRV_STORE_OK); /* expires == now: expired */

    struct got g = { 0 };
    assert_int_equal(srv_store_queue_take(f->st, a, T0 + 100, collect, &g),
                     1);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.m[0].session, "live");

    /* Nothing is delivered twice. */
    memset(&g, 0, sizeof g);
    assert_int_equal(srv_store_queue_take(f->st, a, T0 + 100, collect, &g),
                     0);
    assert_int_equal(g.n, 0);
    /* The expired ones are left for queue_expire. */
    assert_int_equal(srv_store_queue_depth(f->st), 2);
    assert_int_equal(srv_store_queue_expire(f->st, T0 + 100, NULL, NULL), 2);
    assert_int_equal(srv_store_queue_depth(f->st), 0);

    /* Unknown recipient / empty queue: 0, callback never called. */
    assert_int_equal(srv_store_queue_take(f->st, b, T0, collect, &g), 0);
    assert_int_equal(g.n, 0);
}

static void test_cap(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65], c[65];
    nid(a, 'a');
    nid(b, 'b');
    nid(c, 'c');
    assert_int_equal(push(f->st, a, c, "1", "x", T0 + 1000, 2), SRV_STORE_OK);
    assert_int_equal(push(f->st, a, c, "2", "x", T0 + 1000, 2), SRV_STORE_OK);
    assert_int_equal(push(f->st, a, c, "3", "x", T0 + 1000, 2),
                     SRV_STORE_EFULL);
    assert_int_equal(srv_store_queue_depth(f->st), 2);
    /* Other recipients are unaffected. */
    assert_int_equal(push(f->st, b, c, "4", "x", T0 + 1000, 2), SRV_STORE_OK);
    assert_int_equal(push(f->st, b, c, "5", "x", T0 + 1000, 2), SRV_STORE_OK);
    assert_int_equal(push(f->st, b, c, "6", "x", T0 + 1000, 2),
                     SRV_STORE_EFULL);
    /* A bigger cap accepts more; take frees the space. */
    assert_int_equal(push(f->st, a, c, "7", "x", T0 + 1000, 3), SRV_STORE_OK);
    assert_int_equal(srv_store_queue_take(f->st, a, T0, NULL, NULL), 3);
    assert_int_equal(push(f->st, a, c, "8", "x", T0 + 1000, 2), SRV_STORE_OK);
    assert_int_equal(srv_store_queue_depth(f->st), 3);

    /* EFULL leaves a pending presence batch committed, nothing else. */
    assert_int_equal(srv_store_node_online(f->st, c, "unknown", NULL, -1,
                                           T0), SRV_STORE_OK);
    assert_int_equal(push(f->st, b, c, "9", "x", T0 + 1000, 2),
                     SRV_STORE_EFULL);
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 1);
    assert_int_equal(committed_ll(f->path,
                                  "SELECT count(*) FROM offline_queue"), 3);
}

static void test_expire(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65], c[65];
    nid(a, 'a');
    nid(b, 'b');
    nid(c, 'c');
    assert_int_equal(push(f->st, a, b, "sess-late", "1", T0 + 300, CAP),
                     SRV_STORE_OK);
    assert_int_equal(push(f->st, c, b, "sess-live", "2", T0 + 9000, CAP),
                     SRV_STORE_OK);
    assert_int_equal(push(f->st, a, c, "sess-early", "3", T0 + 100, CAP),
                     SRV_STORE_OK);
    assert_int_equal(srv_store_queue_depth(f->st), 3);

    struct got g = { 0 };
    assert_int_equal(srv_store_queue_expire(f->st, T0 + 300, collect, &g), 2);
    assert_int_equal(g.n, 2);
    /* In acceptance (id) order, with sender and session to tell. */
    assert_string_equal(g.m[0].sender, b);
    assert_string_equal(g.m[0].session, "sess-late");
    assert_string_equal(g.m[0].recipient, a);
    assert_int_equal(g.m[0].expires, T0 + 300);
    assert_string_equal(g.m[1].sender, c);
    assert_string_equal(g.m[1].session, "sess-early");
    assert_true(g.m[0].id < g.m[1].id);

    assert_int_equal(srv_store_queue_depth(f->st), 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(srv_store_queue_expire(f->st, T0 + 300, collect, &g), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(committed_ll(f->path,
                                  "SELECT count(*) FROM offline_queue"), 1);
    /* The live one is still delivered. */
    assert_int_equal(srv_store_queue_take(f->st, c, T0 + 300, collect, &g),
                     1);
    assert_string_equal(g.m[0].session, "sess-live");
}

static void test_depth(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65];
    nid(a, 'a');
    nid(b, 'b');
    assert_int_equal(srv_store_queue_depth(f->st), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(push(f->st, i % 2 ? a : b, a, NULL, "", T0 + 10,
                              CAP), SRV_STORE_OK); /* empty raw is fine */
    assert_int_equal(srv_store_queue_depth(f->st), 5);
    struct got g = { 0 };
    assert_int_equal(srv_store_queue_take(f->st, b, T0, collect, &g), 3);
    assert_int_equal(g.m[0].raw_len, 0);
    assert_int_equal(srv_store_queue_depth(f->st), 2);
}

static void test_callback_may_not_reenter(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    char a[65], b[65];
    nid(a, 'a');
    nid(b, 'b');
    assert_int_equal(push(f->st, a, b, "s", "x", T0 + 10, CAP), SRV_STORE_OK);
    struct got g = { 0 };
    g.st = f->st;
    g.reentry_rc = 12345;
    assert_int_equal(srv_store_queue_take(f->st, a, T0, collect, &g), 1);
    assert_int_equal(g.reentry_rc, SRV_STORE_ERR);
    /* ... and the store works normally afterwards. */
    assert_int_equal(srv_store_queue_depth(f->st), 0);
}

/* ---- durability across a crash ------------------------------------------- */

/* In a child: open the store, optionally record presence, push one message
 * and die without closing (SIGKILL or _exit). Returns the wait status. */
static int crash_child(const char *path, bool presence, bool push_msg,
                       bool sigkill)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        srv_store *st = NULL;
        char err[256];
        if (srv_store_open(path, &st, err, sizeof err) != SRV_STORE_OK)
            _exit(10);
        char a[65], b[65];
        if (presence &&
            srv_store_node_online(st, nid(b, 'b'), "symmetric", NULL, -1,
                                  T0) != SRV_STORE_OK)
            _exit(11);
        if (push_msg &&
            push(st, nid(a, 'a'), nid(b, 'b'), "crash", "{\"offer\":{}}",
                 T0 + 60000, CAP) != SRV_STORE_OK)
            _exit(12);
        if (sigkill)
            (void)raise(SIGKILL);
        _exit(0); /* no close, no flush */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return status;
}

static void test_push_survives_crash(void **state)
{
    struct fx *f = *state;
    int status = crash_child(f->path, false, true, true);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    f->st = open_ok(f->path);
    char a[65];
    struct got g = { 0 };
    assert_int_equal(srv_store_queue_take(f->st, nid(a, 'a'), T0, collect,
                                          &g), 1);
    assert_string_equal(g.m[0].session, "crash");
    assert_memory_equal(g.m[0].raw, "{\"offer\":{}}", g.m[0].raw_len);
}

static void test_push_commits_presence_before_crash(void **state)
{
    struct fx *f = *state;
    int status = crash_child(f->path, true, true, false);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    f->st = open_ok(f->path);
    char a[65], b[65];
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, nid(b, 'b'), &p), SRV_STORE_OK);
    assert_true(p.known);
    assert_string_equal(p.nat_type, "symmetric");
    assert_int_equal(srv_store_queue_take(f->st, nid(a, 'a'), T0, NULL,
                                          NULL), 1);
}

static void test_unflushed_presence_lost_on_crash(void **state)
{
    /* Documents the batching: presence is only durable once committed. */
    struct fx *f = *state;
    int status = crash_child(f->path, true, false, true);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    f->st = open_ok(f->path);
    char b[65];
    srv_presence p;
    assert_int_equal(srv_store_lookup(f->st, nid(b, 'b'), &p), SRV_STORE_OK);
    assert_false(p.known);
}

/* ---- writable ------------------------------------------------------------------ */

static void test_writable_normal(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    assert_true(srv_store_writable(f->st));
    /* With a batch open: true, and the batch is committed by the probe. */
    char a[65];
    assert_int_equal(srv_store_node_online(f->st, nid(a, 'a'), "fullCone",
                                           NULL, -1, T0), SRV_STORE_OK);
    assert_true(srv_store_writable(f->st));
    assert_int_equal(committed_ll(f->path, "SELECT count(*) FROM nodes"), 1);
    /* The probe changes nothing visible. */
    assert_int_equal(committed_ll(f->path, "PRAGMA user_version"), 0);
    assert_true(srv_store_writable(f->st));
    assert_false(srv_store_writable(NULL));
}

static void test_writable_readonly_file(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f->path);
    assert_true(srv_store_writable(f->st));
    assert_int_equal(chmod(f->path, 0444), 0);
    int fd = open(f->path, O_WRONLY);
    if (fd >= 0) {
        assert_int_equal(close(fd), 0);
        assert_int_equal(chmod(f->path, 0644), 0);
        print_message("[ SKIP     ] running with CAP_DAC_OVERRIDE (root?): "
                      "chmod 0444 does not stop writes, so writable() "
                      "cannot be expected to report false here; "
                      "test_writable_disk_failure covers the failing "
                      "write\n");
        skip();
    }
    assert_false(srv_store_writable(f->st));
    assert_non_null(strstr(srv_store_errmsg(f->st), "not writable"));
    assert_int_equal(chmod(f->path, 0644), 0);
    assert_true(srv_store_writable(f->st));
}

/* A failing disk, even as root: in a child, RLIMIT_FSIZE = 1 makes every
 * write to a regular file at offset >= 1 fail (EFBIG; SIGXFSZ ignored), so
 * the probe's WAL append fails. Raising the limit again recovers. */
static void test_writable_disk_failure(void **state)
{
    struct fx *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        srv_store *st = NULL;
        char err[256];
        if (srv_store_open(f->path, &st, err, sizeof err) != SRV_STORE_OK)
            _exit(10);
        if (!srv_store_writable(st))
            _exit(11);
        char a[65];
        nid(a, 'a');
        struct rlimit old, lim;
        if (getrlimit(RLIMIT_FSIZE, &old) != 0)
            _exit(13);
        lim = old;
        lim.rlim_cur = 1;
        if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR ||
            setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(14);
        /* No batch open: only the probe's own write can fail. */
        if (srv_store_writable(st))
            _exit(15); /* the failing write went unnoticed */
        if (srv_store_errmsg(st)[0] == '\0')
            _exit(16);
        /* A presence batch: its commit fails, it is rolled back. */
        if (srv_store_node_online(st, a, "fullCone", NULL, -1, T0)
                != SRV_STORE_OK)
            _exit(12);
        if (srv_store_writable(st) || srv_store_flush(st) != SRV_STORE_OK)
            _exit(22);
        if (push(st, a, a, NULL, "x", T0 + 1, CAP) != SRV_STORE_ERR)
            _exit(17); /* push must not claim durability */
        if (setrlimit(RLIMIT_FSIZE, &old) != 0)
            _exit(18);
        if (!srv_store_writable(st))
            _exit(19); /* recovers once writes work again */
        if (push(st, a, a, NULL, "x", T0 + 1, CAP) != SRV_STORE_OK)
            _exit(20);
        if (srv_store_queue_depth(st) != 1)
            _exit(21);
        srv_presence p;
        if (srv_store_lookup(st, a, &p) != SRV_STORE_OK || p.known)
            _exit(23); /* the failed batch was rolled back */
        srv_store_close(st);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    if (!WIFEXITED(status))
        fail_msg("child died with signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child failed at step %d", WEXITSTATUS(status));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_error),
        T(test_lookup_unknown),
        T(test_node_online_first),
        T(test_node_online_again),
        T(test_node_online_invalid),
        T(test_node_offline),
        T(test_mark_all_offline),
        T(test_presence_batched_until_flush),
        T(test_close_commits_batch),
        T(test_push_commits_batch),
        T(test_failed_push_keeps_batch),
        T(test_queue_order),
        T(test_take_skips_expired_and_deletes),
        T(test_cap),
        T(test_expire),
        T(test_depth),
        T(test_callback_may_not_reenter),
        T(test_push_survives_crash),
        T(test_push_commits_presence_before_crash),
        T(test_unflushed_presence_lost_on_crash),
        T(test_writable_normal),
        T(test_writable_readonly_file),
        T(test_writable_disk_failure),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
