/* store_admission.c - the admission lists in SQLite (store.h, tables of
 * db/migrations/002_admission.sql). Operator actions are rare, so each
 * call prepares its statement; every write commits before it returns
 * (after committing the store's open presence batch), so an answered admin
 * request survives a crash.
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "rendezvous/store.h"

static const char *const kinds[SRV_ADM_LIST__COUNT] = {
    [SRV_ADM_LIST_ALLOW] = NULL,
    [SRV_ADM_LIST_REVOKED_NODE] = "node",
    [SRV_ADM_LIST_REVOKED_SERIAL] = "serial",
};

int srv_store_adm_set(srv_store *st, int list, const char *key, bool present, int64_t added)
{
    sqlite3 *db = srv_store_sqlite(st);
    if (!db || !key || list < 0 || list >= SRV_ADM_LIST__COUNT)
        return SRV_STORE_ERR;
    if (srv_store_flush(st) != SRV_STORE_OK)
        return SRV_STORE_ERR;
    const char *sql;
    if (list == SRV_ADM_LIST_ALLOW)
        sql = present ? "INSERT INTO allowlist (node_id, added) VALUES (?1, ?3)"
                        " ON CONFLICT (node_id) DO NOTHING"
                      : "DELETE FROM allowlist WHERE node_id = ?1";
    else
        sql = present ? "INSERT INTO revoked (kind, value, added) VALUES (?2, ?1, ?3)"
                        " ON CONFLICT (kind, value) DO NOTHING"
                      : "DELETE FROM revoked WHERE value = ?1 AND kind = ?2";
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return SRV_STORE_ERR;
    }
    int rc = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && list != SRV_ADM_LIST_ALLOW)
        rc = sqlite3_bind_text(s, 2, kinds[list], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && present)
        rc = sqlite3_bind_int64(s, 3, added);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return SRV_STORE_ERR;
    if (!present && sqlite3_changes(db) == 0)
        return SRV_STORE_ENOTFOUND;
    return SRV_STORE_OK;
}

int srv_store_adm_load(srv_store *st, srv_store_adm_cb cb, void *user)
{
    sqlite3 *db = srv_store_sqlite(st);
    if (!db || !cb)
        return SRV_STORE_ERR;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT 0, node_id, added FROM allowlist UNION ALL"
                           " SELECT CASE kind WHEN 'node' THEN 1 ELSE 2 END, value, added"
                           " FROM revoked",
                           -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return SRV_STORE_ERR;
    }
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 1);
        if (key)
            cb(user, sqlite3_column_int(s, 0), key, sqlite3_column_int64(s, 2));
        n++;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? n : SRV_STORE_ERR;
}
