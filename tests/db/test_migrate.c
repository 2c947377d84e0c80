/* test_migrate.c: tests for the migration runner and rdv_db_open()
 * (db/migrate.c): fresh databases, re-runs, too-new schemas, files that are
 * not databases, and all-or-nothing application of a migration list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "db_test_util.h"
#include "db/migrate.h"

#define NODE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* Per-test state: one temporary file (empty unless a test rewrites it). */
struct fixture {
    char path[TMPDB_PATH_MAX];
    char err[512];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tmpdb_create(f->path, NULL, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tmpdb_remove(f->path);
    free(f);
    return 0;
}

/* Fail unless haystack contains needle, showing both. */
static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* Replace the fixture's file with n bytes of content. */
static void rewrite(struct fixture *f, const void *content, size_t n)
{
    tmpdb_remove(f->path);
    tmpdb_create(f->path, content, n);
}

static long long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long long)st.st_size;
}

/* ---- the embedded list ----------------------------------------------- */

/* Read a whole file into a NUL-terminated malloc'd buffer, or NULL. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += r;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    assert_int_equal(ferror(fp), 0);
    assert_int_equal(fclose(fp), 0);
    buf[len] = '\0';
    return buf;
}

/* Versions are 1..n, names NNN_..., latest is the last, and every embedded
 * script is byte-identical to its db/migrations file (escaping round trip). */
static void test_embedded_list(void **state)
{
    (void)state;
    assert_true(rdv_db_migrations_count >= 1);
    assert_int_equal(rdv_db_latest_version(),
                     (int)rdv_db_migrations_count);
    assert_string_equal(rdv_db_migrations[0].name, "001_init");

    const char *src = getenv("RDV_SOURCE_DIR");
    for (size_t i = 0; i < rdv_db_migrations_count; i++) {
        const struct rdv_db_migration *m = &rdv_db_migrations[i];
        assert_int_equal(m->version, (int)i + 1);
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%03d_", m->version);
        assert_memory_equal(m->name, prefix, 4);
        if (src == NULL)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/db/migrations/%s.sql", src, m->name);
        char *text = slurp(path);
        if (text == NULL)
            fail_msg("cannot read %s", path);
        assert_string_equal(m->sql, text);
        free(text);
    }
}

/* ---- fresh and repeated opens ---------------------------------------- */

static void check_fresh_schema(sqlite3 *db)
{
    int v = -1;
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, rdv_db_latest_version());
    assert_true(object_exists(db, "schema_version"));
    assert_true(object_exists(db, "nodes"));
    assert_true(object_exists(db, "offline_queue"));
    assert_true(object_exists(db, "offline_queue_recipient"));
    assert_true(object_exists(db, "offline_queue_expires"));
    assert_int_equal(query_ll(db, "SELECT count(*) FROM schema_version"),
                     rdv_db_latest_version());
    assert_true(query_ll(db, "SELECT min(applied_at) FROM schema_version")
                > 1600000000000LL); /* ms since epoch, after 2020 */
}

/* An empty file becomes a fully migrated WAL database. */
static void test_open_empty_file(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err), 0);
    assert_non_null(db);
    assert_string_equal(f->err, "");
    check_fresh_schema(db);

    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(query_ll(db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(query_ll(db, "PRAGMA synchronous"), 1); /* NORMAL */
    db_close(db);
}

/* A path that does not exist yet is created. */
static void test_open_creates_file(void **state)
{
    struct fixture *f = *state;
    tmpdb_remove(f->path); /* keep the unique name, drop the file */
    assert_int_not_equal(access(f->path, F_OK), 0);
    sqlite3 *db = NULL;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err), 0);
    assert_int_equal(access(f->path, F_OK), 0);
    check_fresh_schema(db);
    db_close(db);
}

/* ":memory:" works too (no WAL there), handy for other tests. */
static void test_open_in_memory(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    char err[256];
    assert_int_equal(rdv_db_open(":memory:", &db, err, sizeof err), 0);
    check_fresh_schema(db);
    db_close(db);
}

/* Migrating again changes nothing and keeps the data. */
static void test_migrate_again_is_noop(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err), 0);
    exec_ok(db, "INSERT INTO nodes (node_id, first_seen, last_seen)"
                " VALUES ('" NODE_A "', 1, 2)");
    long long applied = query_ll(db, "SELECT max(applied_at)"
                                     " FROM schema_version");

    int changes = sqlite3_total_changes(db);
    assert_int_equal(rdv_db_migrate(db, f->err, sizeof f->err), 0);
    assert_int_equal(rdv_db_migrate(db, f->err, sizeof f->err), 0);
    assert_int_equal(sqlite3_total_changes(db), changes);
    db_close(db);

    db = NULL;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err), 0);
    int v = -1;
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, rdv_db_latest_version());
    assert_int_equal(query_ll(db, "SELECT count(*) FROM schema_version"),
                     rdv_db_latest_version());
    assert_int_equal(query_ll(db, "SELECT max(applied_at)"
                                  " FROM schema_version"), applied);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM nodes WHERE node_id"
                                  " = '" NODE_A "' AND last_seen = 2"), 1);
    db_close(db);
}

/* ---- refusals -------------------------------------------------------- */

/* A schema newer than this binary is refused and left alone. */
static void test_refuse_newer_schema(void **state)
{
    struct fixture *f = *state;
    int future = rdv_db_latest_version() + 6;
    sqlite3 *db = NULL;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err), 0);
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version"
             " (version, name, applied_at) VALUES (%d, 'future', 1)", future);
    exec_ok(db, sql);
    exec_ok(db, "INSERT INTO nodes (node_id, first_seen, last_seen)"
                " VALUES ('" NODE_A "', 1, 2)");
    db_close(db);

    db = (sqlite3 *)1; /* must be reset to NULL */
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err),
                     RDV_DB_ETOONEW);
    assert_null(db);
    char want[256];
    snprintf(want, sizeof want, "database schema version %d is newer than "
             "this rendezvousd supports (%d); upgrade rendezvousd",
             future, rdv_db_latest_version());
    assert_contains(f->err, want);
    assert_contains(f->err, f->path);

    /* Direct call on an open connection says the same, changes nothing. */
    db = raw_open(f->path);
    int changes = sqlite3_total_changes(db);
    assert_int_equal(rdv_db_migrate(db, f->err, sizeof f->err),
                     RDV_DB_ETOONEW);
    assert_contains(f->err, want);
    assert_int_equal(sqlite3_total_changes(db), changes);
    assert_true(sqlite3_get_autocommit(db)); /* transaction closed */
    int v = -1;
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, future);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM nodes"), 1);
    db_close(db);
}

/* Expect rdv_db_open to refuse the fixture's file as not a database,
 * leaving it untouched. */
static void expect_not_a_database(struct fixture *f)
{
    long long size = file_size(f->path);
    sqlite3 *db = (sqlite3 *)1;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err),
                     RDV_DB_ENOTDB);
    assert_null(db);
    char want[TMPDB_PATH_MAX + 64];
    snprintf(want, sizeof want, "%s: file is not an SQLite database",
             f->path);
    assert_string_equal(f->err, want);
    assert_int_equal(file_size(f->path), size);
}

static void test_garbage_file_is_not_a_database(void **state)
{
    struct fixture *f = *state;
    unsigned char junk[8192];
    uint32_t x = 0x12345678u; /* xorshift32: deterministic noise */
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    rewrite(f, junk, sizeof junk);
    expect_not_a_database(f);
}

static void test_text_file_is_not_a_database(void **state)
{
    struct fixture *f = *state;
    char text[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(text, "listen = 0.0.0.0:8443  # rendezvousd config\n");
    rewrite(f, text, strlen(text));
    expect_not_a_database(f);

    rewrite(f, "hi\n", 3); /* shorter than an SQLite header */
    expect_not_a_database(f);
}

/* A directory that does not exist gives RDV_DB_EOPEN and a message. */
static void test_open_missing_directory(void **state)
{
    struct fixture *f = *state;
    char path[TMPDB_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s.d/no/such/rendezvous.db", f->path);
    sqlite3 *db = (sqlite3 *)1;
    assert_int_equal(rdv_db_open(path, &db, f->err, sizeof f->err),
                     RDV_DB_EOPEN);
    assert_null(db);
    assert_contains(f->err, path);
    assert_contains(f->err, "cannot open database");
}

/* Some other application's SQLite database is refused, not migrated. */
static void test_refuse_foreign_database(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->path);
    exec_ok(db, "CREATE TABLE photos (id INTEGER PRIMARY KEY, data BLOB);"
                "INSERT INTO photos (data) VALUES (x'00ff');");
    db_close(db);

    db = (sqlite3 *)1;
    assert_int_equal(rdv_db_open(f->path, &db, f->err, sizeof f->err),
                     RDV_DB_EFOREIGN);
    assert_null(db);
    assert_contains(f->err, "no schema_version table");

    db = raw_open(f->path);
    assert_false(object_exists(db, "nodes"));
    assert_int_equal(query_ll(db, "SELECT count(*) FROM photos"), 1);
    db_close(db);
}

/* While another connection holds the write lock, migrating waits for the
 * busy timeout and then reports RDV_DB_EBUSY without touching anything. */
static void test_locked_database_is_busy(void **state)
{
    struct fixture *f = *state;
    sqlite3 *holder = raw_open(f->path);
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(sqlite3_busy_timeout(db, 50), SQLITE_OK);
    exec_ok(holder, "BEGIN IMMEDIATE");
    assert_int_equal(rdv_db_migrate(db, f->err, sizeof f->err),
                     RDV_DB_EBUSY);
    assert_contains(f->err, "locked");
    exec_ok(holder, "ROLLBACK");
    db_close(holder);

    assert_int_equal(rdv_db_migrate(db, f->err, sizeof f->err), 0);
    int v = -1;
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, rdv_db_latest_version());
    db_close(db);
}

/* ---- all-or-nothing with explicit lists ------------------------------ */

#define SV_TABLE "CREATE TABLE schema_version (version INTEGER PRIMARY KEY," \
                 " name TEXT NOT NULL, applied_at INTEGER NOT NULL);"

static const struct rdv_db_migration good_then_bad[] = {
    { 1, "001_first", SV_TABLE "CREATE TABLE t1 (x);"
                      "INSERT INTO t1 VALUES (1);" },
    { 2, "002_broken", "CREATE TABLE t2 (y);"
                       "INSERT INTO t2 VALUES (2);"
                       "THIS IS NOT SQL;" },
};

static const struct rdv_db_migration good_then_fixed[] = {
    { 1, "001_first", SV_TABLE "CREATE TABLE t1 (x);"
                      "INSERT INTO t1 VALUES (1);" },
    { 2, "002_fixed", "CREATE TABLE t2 (y);" },
};

/* A failing second migration leaves no trace of the first one either. */
static void test_failed_migration_rolls_back_all(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->path);
    int rc = rdv_db_migrate_list(db, good_then_bad, 2, f->err,
                                 sizeof f->err);
    assert_int_equal(rc, RDV_DB_ESQL);
    assert_contains(f->err, "migration 002_broken failed");
    assert_contains(f->err, "syntax error");
    assert_true(sqlite3_get_autocommit(db));
    assert_false(object_exists(db, "schema_version"));
    assert_false(object_exists(db, "t1"));
    assert_false(object_exists(db, "t2"));
    int v = -1;
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, 0);

    /* The connection is still usable: the fixed list applies. */
    assert_int_equal(rdv_db_migrate_list(db, good_then_fixed, 2, f->err,
                                         sizeof f->err), 0);
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(query_ll(db, "SELECT x FROM t1"), 1);
    assert_true(object_exists(db, "t2"));
    db_close(db);
}

/* On a database at version 1, a failing version 2 keeps it at exactly 1. */
static void test_failed_migration_keeps_previous_version(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(rdv_db_migrate_list(db, good_then_bad, 1, f->err,
                                         sizeof f->err), 0);
    assert_int_equal(rdv_db_migrate_list(db, good_then_bad, 2, f->err,
                                         sizeof f->err), RDV_DB_ESQL);
    assert_contains(f->err, "002_broken");
    int v = -1;
    assert_int_equal(rdv_db_schema_version(db, &v), 0);
    assert_int_equal(v, 1);
    assert_false(object_exists(db, "t2"));
    assert_int_equal(query_ll(db, "SELECT count(*) FROM t1"), 1);
    assert_int_equal(query_ll(db, "SELECT count(*) FROM schema_version"), 1);
    db_close(db);
}

/* A migration that commits by itself is reported, not silently accepted. */
static void test_migration_must_not_end_transaction(void **state)
{
    struct fixture *f = *state;
    static const struct rdv_db_migration committing[] = {
        { 1, "001_commits", SV_TABLE "COMMIT;" },
    };
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(rdv_db_migrate_list(db, committing, 1, f->err,
                                         sizeof f->err), RDV_DB_EINVAL);
    assert_contains(f->err, "001_commits ended the transaction");
    assert_true(sqlite3_get_autocommit(db));
    db_close(db);
}

/* Malformed lists and misuse are rejected before touching the database. */
static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    static const struct rdv_db_migration unordered[] = {
        { 2, "002_b", "SELECT 1;" },
        { 1, "001_a", SV_TABLE },
    };
    static const struct rdv_db_migration no_sql[] = {
        { 1, "001_a", NULL },
    };
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(rdv_db_migrate_list(db, unordered, 2, f->err,
                                         sizeof f->err), RDV_DB_EINVAL);
    assert_contains(f->err, "001_a");
    assert_int_equal(rdv_db_migrate_list(db, no_sql, 1, f->err,
                                         sizeof f->err), RDV_DB_EINVAL);
    assert_int_equal(rdv_db_migrate_list(db, NULL, 0, f->err,
                                         sizeof f->err), RDV_DB_EINVAL);
    assert_int_equal(rdv_db_migrate_list(NULL, good_then_fixed, 2, NULL, 0),
                     RDV_DB_EINVAL);

    exec_ok(db, "BEGIN");
    assert_int_equal(rdv_db_migrate(db, f->err, sizeof f->err),
                     RDV_DB_EINVAL);
    assert_contains(f->err, "open transaction");
    exec_ok(db, "ROLLBACK");
    assert_false(object_exists(db, "schema_version"));

    /* A tiny error buffer is truncated, never overrun. */
    char tiny[8];
    assert_int_equal(rdv_db_migrate_list(db, unordered, 2, tiny, sizeof tiny),
                     RDV_DB_EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    db_close(db);

    assert_int_equal(rdv_db_open(f->path, NULL, NULL, 0), RDV_DB_EINVAL);
    int v;
    assert_int_equal(rdv_db_schema_version(NULL, &v), RDV_DB_EINVAL);
    assert_string_equal(rdv_db_strerror(RDV_DB_ETOONEW),
                        "database schema is too new");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_list),
        cmocka_unit_test_setup_teardown(test_open_empty_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_file, setup,
                                        teardown),
        cmocka_unit_test(test_open_in_memory),
        cmocka_unit_test_setup_teardown(test_migrate_again_is_noop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refuse_newer_schema, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_is_not_a_database,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_file_is_not_a_database,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refuse_foreign_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_is_busy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back_all,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_migration_keeps_previous_version, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_migration_must_not_end_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
