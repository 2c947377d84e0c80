/* store.c - rendezvousd's durable state in SQLite (see store.h): node
 * presence (table `nodes`) and the offline message queue (`offline_queue`),
 * both created by db/migrations/001_init.sql through rdv_db_open().
 *
 * Statements. Every statement, including BEGIN/COMMIT/ROLLBACK, is prepared
 * once in srv_store_open() with SQLITE_PREPARE_PERSISTENT and finalised in
 * srv_store_close(). Every use ends with reset_stmt() (reset + clear
 * bindings), on error paths too, so no statement is left active.
 *
 * Transactions. All transactions are BEGIN IMMEDIATE (the store always
 * writes in them, so it takes the write lock up front and never hits
 * SQLITE_BUSY_SNAPSHOT on a read->write upgrade). The connection's
 * autocommit flag is the single source of truth for "a transaction is
 * open": the store only ever leaves its presence batch open between calls.
 *  - Presence writes (node_online, node_offline, mark_all_offline) join the
 *    batch, opening it if none is open; srv_store_flush() commits it.
 *  - queue_push inserts inside the batch (or a fresh transaction) and
 *    commits before returning, so the batch becomes durable with it. The
 *    same holds for queue_take and queue_expire: select, callbacks, delete
 *    and commit form one transaction, so a row is never delivered twice
 *    (a crash between a callback and the commit can re-deliver after
 *    restart: at-least-once across crashes).
 *  - When a COMMIT fails the transaction is rolled back (the batch is lost)
 *    and the function reports SRV_STORE_ERR.
 * Reads run on the same connection and so see the batch's writes.
 *
 * srv_store_writable() (for /healthz) does a real write:
 *   1. access(W_OK) on the database file - false when it was made
 *      read-only (the open descriptor would otherwise keep working until
 *      the next restart, which would then fail);
 *   2. commit the open batch, if any;
 *   3. BEGIN IMMEDIATE; read PRAGMA user_version; write the same value
 *      back; COMMIT. Writing a header field dirties page 1 even when the
 *      value is unchanged (SQLite skips identical row overwrites, so an
 *      "UPDATE t SET x = x" would write nothing), so the commit appends one
 *      WAL frame: a read-only file system, a full disk or an I/O error
 *      makes it fail. user_version is not used by the migrations (they
 *      keep schema_version), and the value is written back unchanged.
 *
 * Busy database. Another process holding the write lock (sqlite3 CLI,
 * a backup script) makes BEGIN IMMEDIATE wait up to the busy timeout
 * (RDV_DB_BUSY_TIMEOUT_MS, set by rdv_db_open) on the event loop's thread.
 * One such wait is the bound: after a write fails with SQLITE_BUSY the
 * store waits at most STORE_BUSY_RETRY_MS per write until a write
 * transaction begins again (then the full timeout is back), so a lock held
 * for minutes stalls the loop once, not once per offline message, flush
 * and /healthz probe.
 *
 * Causes. srv_store_cause() names what the last failure means for a user
 * (busy database, full disk, read-only file, I/O error), from SQLite's
 * primary result code and errno (SQLite maps a short write with ENOSPC to
 * SQLITE_FULL; other paths, e.g. growing the -shm file, report an
 * SQLITE_IOERR_* whose errno is ENOSPC).
 *
 * Callbacks of queue_take/queue_expire must not call into the store; such
 * a re-entrant call fails with SRV_STORE_ERR instead of corrupting the
 * iteration. Nothing here aborts; there is no global mutable state.
 */
#include "rendezvous/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/migrate.h"

#define STORE_ERRLEN 512
/* Busy timeout while the database is known to be locked by another
 * process (see "Busy database" above). */
#define STORE_BUSY_RETRY_MS 20

/* Indexes into srv_store.stmt[]; SQL in stmt_sql[] below. */
enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_NODE_ONLINE,
    S_NODE_OFFLINE,
    S_MARK_ALL_OFFLINE,
    S_LOOKUP,
    S_Q_COUNT,
    S_Q_INSERT,
    S_Q_SELECT_LIVE,
    S_Q_DELETE_LIVE,
    S_Q_SELECT_EXPIRED,
    S_Q_DELETE_EXPIRED,
    S_Q_DEPTH,
    S_UV_GET,
    S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_NODE_ONLINE] =
        "INSERT INTO nodes (node_id, first_seen, last_seen, online,"
        " nat_type, observed_ip, observed_port)"
        " VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5)"
        " ON CONFLICT (node_id) DO UPDATE SET"
        " last_seen = excluded.last_seen, online = 1,"
        " nat_type = excluded.nat_type,"
        " observed_ip = excluded.observed_ip,"
        " observed_port = excluded.observed_port",
    [S_NODE_OFFLINE] =
        "UPDATE nodes SET online = 0, last_seen = ?2 WHERE node_id = ?1",
    /* Only nodes still marked online get last_seen = now: for the others
     * last_seen already is the last time they were online (PROTOCOL.md 8,
     * presence.lastSeen). */
    [S_MARK_ALL_OFFLINE] =
        "UPDATE nodes SET online = 0, last_seen = ?1 WHERE online = 1",
    [S_LOOKUP] =
        "SELECT online, first_seen, last_seen, nat_type FROM nodes"
        " WHERE node_id = ?1",
    /* Covered by the offline_queue_recipient (recipient, id) index. */
    [S_Q_COUNT] = "SELECT count(*) FROM offline_queue WHERE recipient = ?1",
    [S_Q_INSERT] =
        "INSERT INTO offline_queue (recipient, sender, type, session_id,"
        " raw, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_Q_SELECT_LIVE] =
        "SELECT id, recipient, sender, type, session_id, raw, created,"
        " expires FROM offline_queue"
        " WHERE recipient = ?1 AND expires > ?2 ORDER BY id",
    /* Same predicate as S_Q_SELECT_LIVE, limited to the delivered id range;
     * run in the same write transaction, so exactly the delivered rows. */
    [S_Q_DELETE_LIVE] =
        "DELETE FROM offline_queue WHERE recipient = ?1 AND expires > ?2"
        " AND id BETWEEN ?3 AND ?4",
    [S_Q_SELECT_EXPIRED] =
        "SELECT id, recipient, sender, type, session_id, raw, created,"
        " expires FROM offline_queue WHERE expires <= ?1 ORDER BY id",
    [S_Q_DELETE_EXPIRED] =
        "DELETE FROM offline_queue WHERE expires <= ?1 AND id <= ?2",
    [S_Q_DEPTH] = "SELECT count(*) FROM offline_queue",
    [S_UV_GET] = "PRAGMA user_version",
};

struct srv_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S__COUNT];
    /* "PRAGMA user_version = N" for writable(): a PRAGMA value cannot be a
     * bound parameter, so N is baked in; prepared at open with the value
     * read then, re-prepared only if the value changed behind our back. */
    sqlite3_stmt *uv_set;
    sqlite3_int64 uv_set_value;
    bool in_callback; /* inside a queue_take/queue_expire callback */
    bool busy_short;  /* short busy timeout in effect (locked elsewhere) */
    int last_rc;      /* primary SQLite code of the last failure, 0: none known */
    int last_errno;   /* errno SQLite saw with it */
    char errmsg[STORE_ERRLEN];
};

/* ---- errors ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
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

/* Record "what: <SQLite's message>" as the store's error; returns
 * SRV_STORE_ERR for convenience. */
static int sql_err(srv_store *st, const char *what)
{
    fmt_err(st->errmsg, sizeof st->errmsg, "%s: %s", what,
            sqlite3_errmsg(st->db));
    st->last_rc = sqlite3_errcode(st->db) & 0xff;
    st->last_errno = sqlite3_system_errno(st->db);
    if ((st->last_rc == SQLITE_BUSY || st->last_rc == SQLITE_LOCKED) && !st->busy_short &&
        sqlite3_busy_timeout(st->db, STORE_BUSY_RETRY_MS) == SQLITE_OK)
        st->busy_short = true;
    return SRV_STORE_ERR;
}

static int arg_err(srv_store *st, const char *msg)
{
    fmt_err(st->errmsg, sizeof st->errmsg, "%s", msg);
    st->last_rc = 0;
    st->last_errno = 0;
    return SRV_STORE_ERR;
}

const char *srv_store_cause(const srv_store *st)
{
    if (st == NULL)
        return NULL;
    if (st->last_rc == SQLITE_FULL || st->last_errno == ENOSPC || st->last_errno == EDQUOT)
        return "the disk holding the database is full";
    switch (st->last_rc) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return "the database is busy: another process holds its write lock";
    case SQLITE_READONLY:
        return "the database is read-only";
    case SQLITE_IOERR:
        return "I/O error on the database's disk";
    case SQLITE_NOMEM:
        return "the server is out of memory";
    default:
        return NULL;
    }
}

const char *srv_store_errmsg(const srv_store *st)
{
    if (st == NULL)
        return "no store";
    return st->errmsg;
}

/* ---- statement helpers ----------------------------------------------- */

/* Reset s and drop its bindings (they may point at the caller's strings).
 * Returns sqlite3_reset()'s code: the error of the last step, if any. */
static int reset_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_reset(s);
    int crc = sqlite3_clear_bindings(s);
    return rc != SQLITE_OK ? rc : crc;
}

/* Step s once, expecting SQLITE_DONE, then reset it. On failure records
 * "what: ..." and returns SRV_STORE_ERR. */
static int run_done(srv_store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        int r = sql_err(st, what); /* message before reset */
        (void)reset_stmt(s);       /* repeats the step error */
        return r;
    }
    if (reset_stmt(s) != SQLITE_OK)
        return sql_err(st, what);
    return SRV_STORE_OK;
}

/* Step a "SELECT count(*)"-like statement (bindings already set) and
 * store its single integer in *out; reset afterwards. */
static int run_int64(srv_store *st, sqlite3_stmt *s, sqlite3_int64 *out,
                     const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int r = rc == SQLITE_DONE
            ? arg_err(st, "query returned no row")
            : sql_err(st, what);
        (void)reset_stmt(s);
        return r;
    }
    *out = sqlite3_column_int64(s, 0);
    if (reset_stmt(s) != SQLITE_OK)
        return sql_err(st, what);
    return SRV_STORE_OK;
}

static int bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* ---- transactions ---------------------------------------------------- */

static bool txn_open(const srv_store *st)
{
    return !sqlite3_get_autocommit(st->db);
}

/* A write transaction began: the lock is free again, so waits get the
 * full busy timeout back. */
static void busy_restore(srv_store *st)
{
    if (st->busy_short &&
        sqlite3_busy_timeout(st->db, RDV_DB_BUSY_TIMEOUT_MS) == SQLITE_OK)
        st->busy_short = false;
}

/* Open a transaction unless one (the batch) is open already. */
static int txn_begin(srv_store *st)
{
    if (txn_open(st))
        return SRV_STORE_OK;
    if (run_done(st, st->stmt[S_BEGIN], "BEGIN") != SRV_STORE_OK)
        return SRV_STORE_ERR;
    busy_restore(st);
    return SRV_STORE_OK;
}

/* Roll back the open transaction, if any (SQLite may already have done so
 * after an I/O error). Keeps the message already recorded. */
static void txn_rollback(srv_store *st)
{
    if (!txn_open(st))
        return;
    sqlite3_stmt *s = st->stmt[S_ROLLBACK];
    int rc = sqlite3_step(s);
    (void)reset_stmt(s);
    if (rc != SQLITE_DONE) {
        size_t used = strnlen(st->errmsg, sizeof st->errmsg - 1);
        fmt_err(st->errmsg + used, sizeof st->errmsg - used,
                " (rollback also failed: %s)", sqlite3_errmsg(st->db));
    }
}

/* Commit the open transaction, if any; on failure roll it back. */
static int txn_commit(srv_store *st)
{
    if (!txn_open(st))
        return SRV_STORE_OK;
    if (run_done(st, st->stmt[S_COMMIT], "COMMIT") != SRV_STORE_OK) {
        txn_rollback(st);
        return SRV_STORE_ERR;
    }
    return SRV_STORE_OK;
}

/* Common entry check: store present, not called from a callback. */
static int enter(srv_store *st)
{
    if (st == NULL)
        return SRV_STORE_ERR;
    if (st->in_callback)
        return arg_err(st, "store called from inside a queue callback");
    return SRV_STORE_OK;
}

/* ---- open / close ---------------------------------------------------- */

static void finalize_all(srv_store *st)
{
    for (int i = 0; i < S__COUNT; i++) {
        /* finalize returns the last step error, already handled */
        (void)sqlite3_finalize(st->stmt[i]);
        st->stmt[i] = NULL;
    }
    (void)sqlite3_finalize(st->uv_set);
    st->uv_set = NULL;
}

/* (Re)prepare st->uv_set as "PRAGMA user_version = v". */
static int prepare_uv_set(srv_store *st, sqlite3_int64 v)
{
    char sql[64];
    fmt_err(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &s, NULL);
    if (rc != SQLITE_OK)
        return sql_err(st, "prepare PRAGMA user_version");
    (void)sqlite3_finalize(st->uv_set); /* NULL-safe; nothing pending */
    st->uv_set = s;
    st->uv_set_value = v;
    return SRV_STORE_OK;
}

static void close_db(sqlite3 *db)
{
    if (sqlite3_close(db) != SQLITE_OK) {
        /* Only with unfinalised statements, which finalize_all() prevents;
         * let SQLite free it when they go rather than leak. */
        (void)sqlite3_close_v2(db);
    }
}

int srv_store_open(const char *path, srv_store **out, char *err,
                   size_t errlen)
{
    fmt_err(err, errlen, "%s", "");
    if (out == NULL || path == NULL) {
        fmt_err(err, errlen, "srv_store_open: NULL argument");
        return SRV_STORE_ERR;
    }
    *out = NULL;

    srv_store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        fmt_err(err, errlen, "srv_store_open: out of memory");
        return SRV_STORE_ERR;
    }
    int e = rdv_db_open(path, &st->db, err, errlen);
    if (e != 0) {
        free(st);
        return SRV_STORE_ERR; /* err set by rdv_db_open */
    }

    for (int i = 0; i < S__COUNT; i++) {
        int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            fmt_err(err, errlen, "%s: cannot prepare \"%s\": %s", path,
                    stmt_sql[i], sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    sqlite3_int64 uv = 0;
    if (run_int64(st, st->stmt[S_UV_GET], &uv, "PRAGMA user_version")
            != SRV_STORE_OK ||
        prepare_uv_set(st, uv) != SRV_STORE_OK) {
        fmt_err(err, errlen, "%s: %s", path, st->errmsg);
        goto fail;
    }
    *out = st;
    return SRV_STORE_OK;

fail:
    finalize_all(st);
    close_db(st->db);
    free(st);
    return SRV_STORE_ERR;
}

void srv_store_close(srv_store *st)
{
    if (st == NULL)
        return;
    /* Nothing to report to: a failed commit rolls back inside. */
    (void)txn_commit(st);
    finalize_all(st);
    close_db(st->db);
    free(st);
}

int srv_store_flush(srv_store *st)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    return txn_commit(st);
}

/* ---- presence -------------------------------------------------------- */

int srv_store_mark_all_offline(srv_store *st, int64_t now)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (txn_begin(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    sqlite3_stmt *s = st->stmt[S_MARK_ALL_OFFLINE];
    if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK) {
        int r = sql_err(st, "mark_all_offline: bind");
        (void)reset_stmt(s);
        return r;
    }
    return run_done(st, s, "mark_all_offline");
}

int srv_store_node_online(srv_store *st, const char *node_id,
                          const char *nat_type, const char *ip, int port,
                          int64_t now)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (node_id == NULL)
        return arg_err(st, "node_online: NULL node_id");
    if (txn_begin(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    sqlite3_stmt *s = st->stmt[S_NODE_ONLINE];
    int rc = sqlite3_bind_text(s, 1, node_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 3, nat_type ? nat_type : "unknown", -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(s, 4, ip);
    if (rc == SQLITE_OK)
        rc = port < 0 ? sqlite3_bind_null(s, 5) : sqlite3_bind_int(s, 5, port);
    if (rc != SQLITE_OK) {
        int r = sql_err(st, "node_online: bind");
        (void)reset_stmt(s);
        return r;
    }
    return run_done(st, s, "node_online");
}

int srv_store_node_offline(srv_store *st, const char *node_id, int64_t now)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (node_id == NULL)
        return arg_err(st, "node_offline: NULL node_id");
    if (txn_begin(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    sqlite3_stmt *s = st->stmt[S_NODE_OFFLINE];
    int rc = sqlite3_bind_text(s, 1, node_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, now);
    if (rc != SQLITE_OK) {
        int r = sql_err(st, "node_offline: bind");
        (void)reset_stmt(s);
        return r;
    }
    if (run_done(st, s, "node_offline") != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (sqlite3_changes(st->db) == 0) {
        fmt_err(st->errmsg, sizeof st->errmsg,
                "node_offline: unknown node %s", node_id);
        return SRV_STORE_ENOTFOUND;
    }
    return SRV_STORE_OK;
}

int srv_store_lookup(srv_store *st, const char *node_id, srv_presence *out)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (node_id == NULL || out == NULL)
        return arg_err(st, "lookup: NULL argument");
    memset(out, 0, sizeof *out);
    snprintf(out->nat_type, sizeof out->nat_type, "%s", "unknown");

    sqlite3_stmt *s = st->stmt[S_LOOKUP];
    if (sqlite3_bind_text(s, 1, node_id, -1, SQLITE_STATIC) != SQLITE_OK) {
        int r = sql_err(st, "lookup: bind");
        (void)reset_stmt(s);
        return r;
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->known = true;
        out->online = sqlite3_column_int(s, 0) != 0;
        out->first_seen = sqlite3_column_int64(s, 1);
        out->last_seen = sqlite3_column_int64(s, 2);
        const unsigned char *nat = sqlite3_column_text(s, 3);
        if (nat != NULL)
            snprintf(out->nat_type, sizeof out->nat_type, "%s",
                     (const char *)nat);
        else if (sqlite3_errcode(st->db) == SQLITE_NOMEM) {
            int r = sql_err(st, "lookup");
            (void)reset_stmt(s);
            return r;
        }
    } else if (rc != SQLITE_DONE) {
        int r = sql_err(st, "lookup");
        (void)reset_stmt(s);
        memset(out, 0, sizeof *out);
        snprintf(out->nat_type, sizeof out->nat_type, "%s", "unknown");
        return r;
    }
    if (reset_stmt(s) != SQLITE_OK)
        return sql_err(st, "lookup");
    return SRV_STORE_OK;
}

/* ---- offline queue --------------------------------------------------- */

/* Bind and run the insert of one message (transaction open). */
static int queue_insert(srv_store *st, const char *recipient,
                        const char *sender, const char *type,
                        const char *session_id, const uint8_t *raw,
                        size_t raw_len, int64_t created, int64_t expires)
{
    static const uint8_t empty[1] = { 0 };
    sqlite3_stmt *s = st->stmt[S_Q_INSERT];
    int rc = sqlite3_bind_text(s, 1, recipient, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, sender, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(s, 4, session_id);
    if (rc == SQLITE_OK) /* a NULL pointer would bind SQL NULL */
        rc = sqlite3_bind_blob64(s, 5, raw_len ? raw : empty,
                                 (sqlite3_uint64)raw_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 6, created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 7, expires);
    if (rc != SQLITE_OK) {
        int r = sql_err(st, "queue_push: bind");
        (void)reset_stmt(s);
        return r;
    }
    return run_done(st, s, "queue_push");
}

int srv_store_queue_push(srv_store *st, const char *recipient,
                         const char *sender, const char *type,
                         const char *session_id, const uint8_t *raw,
                         size_t raw_len, int64_t created, int64_t expires,
                         int cap)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (recipient == NULL || sender == NULL || type == NULL ||
        (raw == NULL && raw_len > 0))
        return arg_err(st, "queue_push: NULL argument");
    /* On failure a transaction opened here is rolled back; a batch that
     * was open before stays open (only the failed statement is undone). */
    bool opened = !txn_open(st);
    if (txn_begin(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;

    sqlite3_stmt *s = st->stmt[S_Q_COUNT];
    if (sqlite3_bind_text(s, 1, recipient, -1, SQLITE_STATIC) != SQLITE_OK) {
        int r = sql_err(st, "queue_push: bind");
        (void)reset_stmt(s);
        if (opened)
            txn_rollback(st);
        return r;
    }
    sqlite3_int64 waiting = 0;
    if (run_int64(st, s, &waiting, "queue_push: count") != SRV_STORE_OK) {
        if (opened)
            txn_rollback(st);
        return SRV_STORE_ERR;
    }
    if (waiting >= cap) {
        /* Nothing inserted; still commit, so the call always leaves the
         * store with nothing pending (as on success). */
        if (txn_commit(st) != SRV_STORE_OK)
            return SRV_STORE_ERR;
        fmt_err(st->errmsg, sizeof st->errmsg,
                "queue_push: %lld messages waiting for %s (cap %d)",
                (long long)waiting, recipient, cap);
        return SRV_STORE_EFULL;
    }
    if (queue_insert(st, recipient, sender, type, session_id, raw, raw_len,
                     created, expires) != SRV_STORE_OK) {
        if (opened)
            txn_rollback(st);
        return SRV_STORE_ERR;
    }
    return txn_commit(st);
}

/* Step a SELECT of whole offline_queue rows (transaction open), calling cb
 * for each. *n gets the count, *first and *last the id range. Resets s. */
static int deliver_rows(srv_store *st, sqlite3_stmt *s, srv_store_msg_cb cb,
                        void *user, int *n, sqlite3_int64 *first,
                        sqlite3_int64 *last, const char *what)
{
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        srv_queued_msg m;
        memset(&m, 0, sizeof m);
        m.id = sqlite3_column_int64(s, 0);
        m.recipient = (const char *)sqlite3_column_text(s, 1);
        m.sender = (const char *)sqlite3_column_text(s, 2);
        m.type = (const char *)sqlite3_column_text(s, 3);
        m.session_id = (const char *)sqlite3_column_text(s, 4);
        m.raw = sqlite3_column_blob(s, 5);
        int len = sqlite3_column_bytes(s, 5);
        m.created = sqlite3_column_int64(s, 6);
        m.expires = sqlite3_column_int64(s, 7);
        if (m.recipient == NULL || m.sender == NULL || m.type == NULL ||
            (m.raw == NULL && len > 0) ||
            (m.session_id == NULL &&
             sqlite3_column_type(s, 4) != SQLITE_NULL)) {
            /* NOT NULL columns read back as NULL: out of memory */
            rc = SQLITE_NOMEM;
            break;
        }
        if (m.raw == NULL) {
            static const uint8_t empty[1] = { 0 };
            m.raw = empty;
        }
        m.raw_len = (size_t)len;
        if (*n == 0)
            *first = m.id;
        *last = m.id;
        (*n)++;
        if (cb != NULL) {
            st->in_callback = true;
            cb(&m, user);
            st->in_callback = false;
        }
    }
    if (rc != SQLITE_DONE) {
        int r = rc == SQLITE_NOMEM && sqlite3_errcode(st->db) == SQLITE_OK
            ? arg_err(st, "out of memory reading a queued message")
            : sql_err(st, what);
        (void)reset_stmt(s);
        return r;
    }
    if (reset_stmt(s) != SQLITE_OK)
        return sql_err(st, what);
    return SRV_STORE_OK;
}

/* After deliver_rows(): delete the n delivered rows with d (bound by the
 * caller to exactly the delivered set) - done even when the iteration failed
 * part-way, so that what was handed out is not handed out again - and
 * commit. `failed` says the iteration failed (message already set).
 * Returns n or SRV_STORE_ERR. */
static int finish_delivery(srv_store *st, sqlite3_stmt *d, int n,
                           bool failed, bool opened, const char *what)
{
    if (n > 0) {
        if (run_done(st, d, what) != SRV_STORE_OK) {
            if (opened)
                txn_rollback(st);
            return SRV_STORE_ERR;
        }
        if (sqlite3_changes(st->db) != n) {
            fmt_err(st->errmsg, sizeof st->errmsg,
                    "%s: handed out %d rows but deleted %d", what, n,
                    sqlite3_changes(st->db));
            txn_rollback(st);
            return SRV_STORE_ERR;
        }
    } else if (reset_stmt(d) != SQLITE_OK) { /* drop its bindings */
        return sql_err(st, what);
    }
    if (failed && n == 0) {
        if (opened)
            txn_rollback(st);
        return SRV_STORE_ERR;
    }
    if (n == 0) {
        /* Nothing written: end only a transaction opened for this read;
         * a presence batch stays open for srv_store_flush(), so an
         * authentication with an empty queue costs no commit. */
        if (opened)
            txn_rollback(st);
        return 0;
    }
    if (txn_commit(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    return failed ? SRV_STORE_ERR : n;
}

int srv_store_queue_take(srv_store *st, const char *recipient, int64_t now,
                         srv_store_msg_cb cb, void *user)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    if (recipient == NULL)
        return arg_err(st, "queue_take: NULL recipient");
    bool opened = !txn_open(st);
    if (txn_begin(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;

    sqlite3_stmt *s = st->stmt[S_Q_SELECT_LIVE];
    int rc = sqlite3_bind_text(s, 1, recipient, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, now);
    if (rc != SQLITE_OK) {
        int r = sql_err(st, "queue_take: bind");
        (void)reset_stmt(s);
        if (opened)
            txn_rollback(st);
        return r;
    }
    int n = 0;
    sqlite3_int64 first = 0, last = 0;
    bool failed = deliver_rows(st, s, cb, user, &n, &first, &last,
                               "queue_take") != SRV_STORE_OK;

    sqlite3_stmt *d = st->stmt[S_Q_DELETE_LIVE];
    rc = sqlite3_bind_text(d, 1, recipient, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(d, 2, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(d, 3, first);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(d, 4, last);
    if (rc != SQLITE_OK) {
        int r = sql_err(st, "queue_take: bind");
        (void)reset_stmt(d);
        if (opened)
            txn_rollback(st);
        return r;
    }
    return finish_delivery(st, d, n, failed, opened, "queue_take: delete");
}

int srv_store_queue_expire(srv_store *st, int64_t now, srv_store_msg_cb cb,
                           void *user)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    bool opened = !txn_open(st);
    if (txn_begin(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;

    sqlite3_stmt *s = st->stmt[S_Q_SELECT_EXPIRED];
    if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK) {
        int r = sql_err(st, "queue_expire: bind");
        (void)reset_stmt(s);
        if (opened)
            txn_rollback(st);
        return r;
    }
    int n = 0;
    sqlite3_int64 first = 0, last = 0;
    bool failed = deliver_rows(st, s, cb, user, &n, &first, &last,
                               "queue_expire") != SRV_STORE_OK;

    sqlite3_stmt *d = st->stmt[S_Q_DELETE_EXPIRED];
    int rc = sqlite3_bind_int64(d, 1, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(d, 2, last);
    if (rc != SQLITE_OK) {
        int r = sql_err(st, "queue_expire: bind");
        (void)reset_stmt(d);
        if (opened)
            txn_rollback(st);
        return r;
    }
    return finish_delivery(st, d, n, failed, opened, "queue_expire: delete");
}

int64_t srv_store_queue_depth(srv_store *st)
{
    if (enter(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    sqlite3_int64 n = 0;
    if (run_int64(st, st->stmt[S_Q_DEPTH], &n, "queue_depth")
            != SRV_STORE_OK)
        return SRV_STORE_ERR;
    return n;
}

/* ---- health ---------------------------------------------------------- */

sqlite3 *srv_store_sqlite(srv_store *st)
{
    return st ? st->db : NULL;
}

bool srv_store_writable(srv_store *st)
{
    if (enter(st) != SRV_STORE_OK)
        return false;

    const char *file = sqlite3_db_filename(st->db, "main");
    if (file != NULL && file[0] != '\0' && access(file, W_OK) != 0) {
        fmt_err(st->errmsg, sizeof st->errmsg,
                "writable: %s is not writable", file);
        st->last_rc = SQLITE_READONLY;
        st->last_errno = 0;
        return false;
    }
    /* A pending batch would hide the probe's write inside it. */
    if (txn_commit(st) != SRV_STORE_OK)
        return false;

    if (run_done(st, st->stmt[S_BEGIN], "writable: BEGIN") != SRV_STORE_OK)
        return false;
    busy_restore(st);
    sqlite3_int64 uv = 0;
    if (run_int64(st, st->stmt[S_UV_GET], &uv, "writable: user_version")
            != SRV_STORE_OK) {
        txn_rollback(st);
        return false;
    }
    if (uv != st->uv_set_value && prepare_uv_set(st, uv) != SRV_STORE_OK) {
        txn_rollback(st);
        return false;
    }
    if (run_done(st, st->uv_set, "writable: write") != SRV_STORE_OK) {
        txn_rollback(st);
        return false;
    }
    return txn_commit(st) == SRV_STORE_OK;
}
