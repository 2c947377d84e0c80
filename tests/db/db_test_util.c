/* db_test_util.c: temporary database files and SQL shortcuts for the
 * rdv_db tests (see db_test_util.h). */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#endif
#include "db_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

void tmpdb_create(char path[TMPDB_PATH_MAX], const void *content, size_t n)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    int len = snprintf(path, TMPDB_PATH_MAX, "%s/rdv-db-test-XXXXXX", dir);
    assert_true(len > 0 && len < TMPDB_PATH_MAX);
    int fd = mkstemp(path);
    if (fd < 0)
        fail_msg("mkstemp %s failed", path);
    const unsigned char *p = content;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
    assert_int_equal(close(fd), 0);
}

void tmpdb_remove(const char *path)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char buf[TMPDB_PATH_MAX + 16];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", path, suffixes[i]);
        (void)unlink(buf); /* may not exist */
    }
}

sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             NULL);
    if (rc != SQLITE_OK)
        fail_msg("sqlite3_open_v2(%s): %s", path, sqlite3_errstr(rc));
    assert_int_equal(sqlite3_extended_result_codes(db, 1), SQLITE_OK);
    return db;
}

void db_close(sqlite3 *db)
{
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        char copy[512];
        snprintf(copy, sizeof copy, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        fail_msg("SQL failed (%s): %s", copy, sql);
    }
}

int exec_rc(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? rc : sqlite3_extended_errcode(db);
}

long long query_ll(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        fail_msg("prepare failed (%s): %s", sqlite3_errmsg(db), sql);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        (void)sqlite3_finalize(st);
        fail_msg("query gave no row (%s): %s", sqlite3_errmsg(db), sql);
    }
    long long v = sqlite3_column_int64(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    return v;
}

int object_exists(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
        "SELECT count(*) FROM sqlite_master WHERE name = ?1", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    return n > 0;
}
