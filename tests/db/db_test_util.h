/* db_test_util.h: helpers shared by the rdv_db tests: temporary database
 * files (created with mkstemp under $TMPDIR or /tmp, removed with their
 * -wal/-shm/-journal companions) and small SQL shortcuts. */
#ifndef RDV_TESTS_DB_TEST_UTIL_H
#define RDV_TESTS_DB_TEST_UTIL_H

#include <stddef.h>
#include <sqlite3.h>

#define TMPDB_PATH_MAX 512

/* Create a fresh temporary file holding the n bytes at content (n may be 0)
 * and write its name into path (TMPDB_PATH_MAX bytes). Fails the test on
 * error. */
void tmpdb_create(char path[TMPDB_PATH_MAX], const void *content, size_t n);

/* Remove path and its SQLite companion files; missing files are fine. */
void tmpdb_remove(const char *path);

/* Open path with plain sqlite3 (no migrations), failing the test on error. */
sqlite3 *raw_open(const char *path);

/* Close db, failing the test if that does not succeed. */
void db_close(sqlite3 *db);

/* Run sql, failing the test (with SQLite's message) if it does not work. */
void exec_ok(sqlite3 *db, const char *sql);

/* Run sql and return SQLite's (extended) result code, without failing. */
int exec_rc(sqlite3 *db, const char *sql);

/* The single integer a query returns (fails the test on error / no row). */
long long query_ll(sqlite3 *db, const char *sql);

/* Whether a table or index called name exists. */
int object_exists(sqlite3 *db, const char *name);

#endif
