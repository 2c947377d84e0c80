/* migrate.c: opening the rendezvousd database and the migration runner.
 *
 * rdv_db_open() sets up a connection (pragmas, "is this a database?" probe)
 * and calls rdv_db_migrate(), which applies the embedded migrations
 * (migrations_embedded.c, generated from db/migrations/NNN_name.sql) that
 * the database does not have yet, all in one BEGIN IMMEDIATE transaction.
 * The applied migrations are recorded in the schema_version table that
 * 001_init creates; the schema version is max(schema_version.version).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strnlen */
#endif
#include "db/migrate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- error reporting ------------------------------------------------- */

/* Write a formatted message into err (if any), replacing its contents. */
__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
}

/* Append a formatted message to err (if any), truncating as needed. */
__attribute__((format(printf, 3, 4)))
static void append_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    size_t used = strnlen(err, errlen - 1);
    err[used] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[used] = '\0';
}

/* Map an SQLite (extended) result code to an RDV_DB_E* code. */
static int code_from_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
        return RDV_DB_ENOTDB;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return RDV_DB_EBUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return RDV_DB_EOPEN;
    default:
        return RDV_DB_ESQL;
    }
}

const char *rdv_db_strerror(int code)
{
    switch (code) {
    case 0:               return "ok";
    case RDV_DB_EINVAL:   return "invalid argument";
    case RDV_DB_EOPEN:    return "cannot open database";
    case RDV_DB_ENOTDB:   return "file is not an SQLite database";
    case RDV_DB_EFOREIGN: return "not a rendezvous database";
    case RDV_DB_ETOONEW:  return "database schema is too new";
    case RDV_DB_EBUSY:    return "database is locked";
    case RDV_DB_ESQL:     return "SQLite error";
    default:              return "unknown error";
    }
}

/* ---- small SQLite helpers -------------------------------------------- */

/* Run a query returning one integer in the first column of the first row.
 * *isnull is set if that value is NULL (or there is no row). Returns an
 * SQLite result code (SQLITE_OK on success). */
static int query_int64(sqlite3 *db, const char *sql, sqlite3_int64 *out,
                       int *isnull)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    *isnull = 1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
            *out = sqlite3_column_int64(st, 0);
            *isnull = 0;
        }
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    /* finalize repeats the step error, if any; keep the first one. */
    int frc = sqlite3_finalize(st);
    return rc != SQLITE_OK ? rc : frc;
}

/* Roll back the open transaction, if any. If that fails too, say so after
 * the message already in err. */
static void rollback(sqlite3 *db, char *err, size_t errlen)
{
    if (sqlite3_get_autocommit(db))
        return; /* SQLite already rolled back (or nothing was begun) */
    int rc = sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        append_err(err, errlen, " (rollback also failed: %s)",
                   sqlite3_errmsg(db));
}

/* Close a connection that has no statements left open. */
static void close_db(sqlite3 *db)
{
    if (sqlite3_close(db) != SQLITE_OK) {
        /* Only possible with unfinalized statements, which this file never
         * leaves behind; nothing more can be done here. */
    }
}

/* Milliseconds since the Unix epoch. */
static sqlite3_int64 now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (sqlite3_int64)time(NULL) * 1000;
    return (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- schema version -------------------------------------------------- */

/* Read the schema version (0 if no schema_version table; *has_table says
 * which). Returns an SQLite result code. */
static int read_version(sqlite3 *db, sqlite3_int64 *version, int *has_table)
{
    sqlite3_int64 n = 0;
    int isnull = 1;
    int rc = query_int64(db,
        "SELECT count(*) FROM sqlite_master"
        " WHERE type = 'table' AND name = 'schema_version'", &n, &isnull);
    if (rc != SQLITE_OK)
        return rc;
    *has_table = !isnull && n > 0;
    *version = 0;
    if (!*has_table)
        return SQLITE_OK;
    sqlite3_int64 v = 0;
    rc = query_int64(db, "SELECT max(version) FROM schema_version", &v,
                     &isnull);
    if (rc != SQLITE_OK)
        return rc;
    *version = isnull ? 0 : v;
    return SQLITE_OK;
}

int rdv_db_schema_version(sqlite3 *db, int *out)
{
    if (db == NULL || out == NULL)
        return RDV_DB_EINVAL;
    sqlite3_int64 v = 0;
    int has_table = 0;
    int rc = read_version(db, &v, &has_table);
    if (rc != SQLITE_OK)
        return code_from_sqlite(rc);
    *out = v > INT_MAX ? INT_MAX : v < 0 ? 0 : (int)v;
    return 0;
}

int rdv_db_latest_version(void)
{
    return rdv_db_migrations[rdv_db_migrations_count - 1].version;
}

/* ---- the runner ------------------------------------------------------ */

/* Check that list is usable: non-empty, versions > 0 and strictly
 * ascending, name and sql present. */
static int check_list(const struct rdv_db_migration *list, size_t n,
                      char *err, size_t errlen)
{
    if (list == NULL || n == 0) {
        set_err(err, errlen, "empty migration list");
        return RDV_DB_EINVAL;
    }
    int prev = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rdv_db_migration *m = &list[i];
        if (m->name == NULL || m->sql == NULL) {
            set_err(err, errlen, "migration #%zu has no name or SQL", i);
            return RDV_DB_EINVAL;
        }
        if (m->version <= prev) {
            set_err(err, errlen,
                    "migration %s: version %d does not follow %d",
                    m->name, m->version, prev);
            return RDV_DB_EINVAL;
        }
        prev = m->version;
    }
    return 0;
}

/* Record migration m as applied at time now in schema_version. */
static int record_applied(sqlite3 *db, const struct rdv_db_migration *m,
                          sqlite3_int64 now)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
        "INSERT INTO schema_version (version, name, applied_at)"
        " VALUES (?1, ?2, ?3)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_bind_int(st, 1, m->version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, now);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    int frc = sqlite3_finalize(st);
    return rc != SQLITE_OK ? rc : frc;
}

/* With the transaction open: refuse a database that has objects but no
 * schema_version table (someone else's database). */
static int check_not_foreign(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_int64 n = 0;
    int isnull = 1;
    int rc = query_int64(db,
        "SELECT count(*) FROM sqlite_master"
        " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", &n, &isnull);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot read schema: %s", sqlite3_errmsg(db));
        return code_from_sqlite(rc);
    }
    if (!isnull && n > 0) {
        set_err(err, errlen, "database has %lld schema objects but no "
                "schema_version table; not a rendezvous database?",
                (long long)n);
        return RDV_DB_EFOREIGN;
    }
    return 0;
}

/* Apply the migrations of list newer than the database, transaction open.
 * On failure err is set and the caller rolls back. */
static int apply_pending(sqlite3 *db, const struct rdv_db_migration *list,
                         size_t n, char *err, size_t errlen)
{
    sqlite3_int64 cur = 0;
    int has_table = 0;
    int rc = read_version(db, &cur, &has_table);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot read schema version: %s",
                sqlite3_errmsg(db));
        return code_from_sqlite(rc);
    }
    if (!has_table) {
        int e = check_not_foreign(db, err, errlen);
        if (e != 0)
            return e;
    }
    int latest = list[n - 1].version;
    if (cur > latest) {
        set_err(err, errlen, "database schema version %lld is newer than "
                "this rendezvousd supports (%d); upgrade rendezvousd",
                (long long)cur, latest);
        return RDV_DB_ETOONEW;
    }

    sqlite3_int64 now = now_ms();
    for (size_t i = 0; i < n; i++) {
        const struct rdv_db_migration *m = &list[i];
        if (m->version <= cur)
            continue;
        char *msg = NULL;
        rc = sqlite3_exec(db, m->sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "migration %s failed: %s", m->name,
                    msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return code_from_sqlite(rc);
        }
        if (sqlite3_get_autocommit(db)) {
            set_err(err, errlen, "migration %s ended the transaction "
                    "(BEGIN/COMMIT/ROLLBACK are not allowed in migrations)",
                    m->name);
            return RDV_DB_EINVAL;
        }
        rc = record_applied(db, m, now);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "migration %s: cannot record it in "
                    "schema_version: %s", m->name, sqlite3_errmsg(db));
            return code_from_sqlite(rc);
        }
    }
    return 0;
}

int rdv_db_migrate_list(sqlite3 *db, const struct rdv_db_migration *list,
                        size_t n, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (db == NULL) {
        set_err(err, errlen, "no database connection");
        return RDV_DB_EINVAL;
    }
    int e = check_list(list, n, err, errlen);
    if (e != 0)
        return e;
    if (!sqlite3_get_autocommit(db)) {
        set_err(err, errlen, "cannot migrate inside an open transaction");
        return RDV_DB_EINVAL;
    }

    /* IMMEDIATE: take the write lock before reading the version, so two
     * servers starting at once cannot both apply the same migration. */
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot start migration transaction: %s",
                sqlite3_errmsg(db));
        return code_from_sqlite(rc);
    }
    e = apply_pending(db, list, n, err, errlen);
    if (e != 0) {
        rollback(db, err, errlen);
        return e;
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot commit migrations: %s",
                sqlite3_errmsg(db));
        rollback(db, err, errlen);
        return code_from_sqlite(rc);
    }
    return 0;
}

int rdv_db_migrate(sqlite3 *db, char *err, size_t errlen)
{
    return rdv_db_migrate_list(db, rdv_db_migrations,
                               rdv_db_migrations_count, err, errlen);
}

/* ---- opening --------------------------------------------------------- */

/* Set the connection pragmas. Returns an RDV_DB_E* code; err set. */
static int configure(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int rc = sqlite3_extended_result_codes(db, 1);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, RDV_DB_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
        return code_from_sqlite(rc);
    }

    /* sqlite3_open does not read the file: this first read is where a file
     * that is not a database shows up (SQLITE_NOTADB). */
    sqlite3_int64 n = 0;
    int isnull = 1;
    rc = query_int64(db, "SELECT count(*) FROM sqlite_master", &n, &isnull);
    if ((rc & 0xff) == SQLITE_NOTADB) {
        set_err(err, errlen, "%s: file is not an SQLite database", path);
        return RDV_DB_ENOTDB;
    }
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot read database: %s", path,
                sqlite3_errmsg(db));
        return code_from_sqlite(rc);
    }

    /* journal_mode answers with the mode now in effect; in-memory and
     * temporary databases (empty filename) keep "memory"/"delete". */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(st, 0);
            const char *fname = sqlite3_db_filename(db, "main");
            rc = SQLITE_OK;
            if (fname != NULL && fname[0] != '\0' &&
                (mode == NULL || strcmp((const char *)mode, "wal") != 0)) {
                set_err(err, errlen, "%s: cannot enable WAL journal mode "
                        "(journal_mode is %s)", path,
                        mode ? (const char *)mode : "unknown");
                (void)sqlite3_finalize(st); /* no step error to report */
                return RDV_DB_ESQL;
            }
        }
        int frc = sqlite3_finalize(st);
        if (rc == SQLITE_OK)
            rc = frc;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA synchronous = NORMAL;"
                              "PRAGMA foreign_keys = ON;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot set pragmas: %s", path,
                sqlite3_errmsg(db));
        return code_from_sqlite(rc);
    }
    return 0;
}

int rdv_db_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (out == NULL || path == NULL) {
        set_err(err, errlen, "rdv_db_open: NULL argument");
        if (out != NULL)
            *out = NULL;
        return RDV_DB_EINVAL;
    }
    *out = NULL;

    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot open database: %s", path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        int e = code_from_sqlite(rc);
        if (db != NULL)
            close_db(db);
        return e == RDV_DB_ESQL ? RDV_DB_EOPEN : e;
    }

    int e = configure(db, path, err, errlen);
    if (e == 0) {
        char msg[512];
        e = rdv_db_migrate(db, msg, sizeof msg);
        if (e != 0)
            set_err(err, errlen, "%s: %s", path, msg);
    }
    if (e != 0) {
        close_db(db);
        return e;
    }
    *out = db;
    return 0;
}
