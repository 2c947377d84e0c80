/* audit.c - the operator's audit log (see audit.h). */
#include "rendezvous/audit.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/log.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

typedef struct audit_entry {
    int64_t id, time;
    char who[48], peer[64], action[32], target[80], result[32], detail[200];
} audit_entry;

/* The memory copy: a ring of the newest SRV_AUDIT_RING entries. */
typedef struct srv_audit {
    audit_entry ring[SRV_AUDIT_RING];
    int64_t next_id;
    unsigned n, head; /* head: index of the next write */
} srv_audit;

static void copy(char *dst, size_t n, const char *src)
{
    size_t l = src ? strlen(src) : 0;
    if (l >= n)
        l = n - 1;
    if (l)
        memcpy(dst, src, l);
    dst[l] = '\0';
    for (size_t i = 0; i < l; i++) /* one log line per entry */
        if ((unsigned char)dst[i] < 0x20)
            dst[i] = ' ';
}

static int write_row(srv_server *srv, const audit_entry *e, int64_t *id)
{
    sqlite3 *db = srv->store ? srv_store_sqlite(srv->store) : NULL;
    if (!db)
        return 0;
    if (srv_store_flush(srv->store) != SRV_STORE_OK)
        return -1;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO audit_log (time, who, peer, action, target, result, "
                                "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, e->time);
        const char *v[] = {e->who, e->peer, e->action, e->target, e->result, e->detail};
        for (int i = 0; i < 6; i++)
            sqlite3_bind_text(s, i + 2, v[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return -1;
    *id = sqlite3_last_insert_rowid(db);
    return 0;
}

int srv_audit_record(srv_server *srv, const char *who, const char *peer, const char *action,
                     const char *target, const char *result, const char *detail)
{
    if (!srv->audit) {
        srv->audit = calloc(1, sizeof *srv->audit);
        if (!srv->audit) {
            srv_error(srv->log, "audit: out of memory");
            return -1;
        }
        srv->audit->next_id = 1;
    }
    srv_audit *a = srv->audit;
    audit_entry e;
    memset(&e, 0, sizeof e);
    e.time = rdv_now_ms();
    copy(e.who, sizeof e.who, who);
    copy(e.peer, sizeof e.peer, peer);
    copy(e.action, sizeof e.action, action);
    copy(e.target, sizeof e.target, target);
    copy(e.result, sizeof e.result, result);
    copy(e.detail, sizeof e.detail, detail);
    int64_t id = a->next_id;
    int rc = write_row(srv, &e, &id);
    if (rc != 0)
        srv_error(srv->log, "audit: cannot write to the database (%s); the entry is in this log "
                            "line only",
                  srv->store ? srv_store_errmsg(srv->store) : "no store");
    e.id = id;
    a->next_id = id + 1;
    a->ring[a->head] = e;
    a->head = (a->head + 1) % SRV_AUDIT_RING;
    if (a->n < SRV_AUDIT_RING)
        a->n++;
    srv_notice(srv->log, "audit: id=%lld who=%s peer=%s action=%s target=%s result=%s%s%s",
               (long long)e.id, e.who, e.peer, e.action, e.target[0] ? e.target : "-", e.result,
               e.detail[0] ? " detail=" : "", e.detail);
    return rc;
}

static json_t *entry_json(const audit_entry *e)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)e->id, "time",
                     (json_int_t)e->time, "who", e->who, "peer", e->peer, "action", e->action,
                     "target", e->target, "result", e->result, "detail", e->detail);
}

static const char *col(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

json_t *srv_audit_list(srv_server *srv, int limit)
{
    if (limit < 1)
        limit = 1;
    if (limit > 1000)
        limit = 1000;
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    sqlite3 *db = srv->store ? srv_store_sqlite(srv->store) : NULL;
    if (db) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(db,
                                    "SELECT id, time, who, peer, action, target, result, detail "
                                    "FROM audit_log ORDER BY id DESC LIMIT ?1",
                                    -1, &s, NULL);
        if (rc == SQLITE_OK)
            sqlite3_bind_int(s, 1, limit);
        while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            audit_entry e;
            memset(&e, 0, sizeof e);
            e.id = sqlite3_column_int64(s, 0);
            e.time = sqlite3_column_int64(s, 1);
            copy(e.who, sizeof e.who, col(s, 2));
            copy(e.peer, sizeof e.peer, col(s, 3));
            copy(e.action, sizeof e.action, col(s, 4));
            copy(e.target, sizeof e.target, col(s, 5));
            copy(e.result, sizeof e.result, col(s, 6));
            copy(e.detail, sizeof e.detail, col(s, 7));
            if (json_array_append_new(arr, entry_json(&e)) != 0)
                rc = SQLITE_NOMEM;
            else
                rc = SQLITE_OK;
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            json_decref(arr);
            return NULL;
        }
        return arr;
    }
    const srv_audit *a = srv->audit;
    for (unsigned k = 0; a && k < a->n && (int)k < limit; k++) {
        unsigned i = (a->head + SRV_AUDIT_RING - 1 - k) % SRV_AUDIT_RING;
        if (json_array_append_new(arr, entry_json(&a->ring[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void srv_audit_free(srv_server *srv)
{
    free(srv->audit);
    srv->audit = NULL;
}
