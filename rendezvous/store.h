/* store.h - the server's durable state in SQLite: node presence and the
 * offline message queue (tables from db/migrations).
 *
 * Single-threaded: called from the event loop only. Writes of presence are
 * batched into one open transaction that srv_store_flush() commits (the
 * server calls it on a short timer); srv_store_queue_push() commits before
 * it returns, so a message answered with `queued` survives a crash.
 * All statements are prepared once at open. Callbacks must not call back
 * into the store (such calls fail with SRV_STORE_ERR).
 */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_STORE_OK 0
#define SRV_STORE_ERR (-1)      /* SQLite failure; message in srv_store_errmsg */
#define SRV_STORE_EFULL (-2)    /* the recipient's queue is at its cap */
#define SRV_STORE_ENOTFOUND (-3)

typedef struct srv_store srv_store;

/* Presence of one node as stored. nat_type is "unknown" for never-seen. */
typedef struct srv_presence {
    bool known;          /* the node has authenticated at least once */
    bool online;
    int64_t first_seen;  /* ms, 0 when unknown */
    int64_t last_seen;   /* ms, 0 when unknown */
    char nat_type[16];
} srv_presence;

/* One queued message handed to a callback; pointers valid during the call. */
typedef struct srv_queued_msg {
    int64_t id;
    const char *recipient;
    const char *sender;
    const char *type;
    const char *session_id;
    const uint8_t *raw;
    size_t raw_len;
    int64_t created;
    int64_t expires;
} srv_queued_msg;

typedef void (*srv_store_msg_cb)(const srv_queued_msg *msg, void *user);

/* Opens (creating and migrating) the database at `path`. On failure
 * returns SRV_STORE_ERR with a message in err. */
int srv_store_open(const char *path, srv_store **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Commits pending writes, finalises statements and closes. NULL-safe. */
void srv_store_close(srv_store *st);

/* Last SQLite error text (static storage of the store). */
const char *srv_store_errmsg(const srv_store *st);

/* What the last failure means for a user, in words fit for an `error`
 * message ("the disk holding the database is full", "the database is
 * busy: another process holds its write lock", ...), or NULL when it is
 * none of the causes the store knows. Static storage. */
const char *srv_store_cause(const srv_store *st);

/* Commits the open batch transaction, if any. */
int srv_store_flush(srv_store *st) __attribute__((warn_unused_result));

/* Marks every node that is recorded online as offline, with last_seen =
 * now (at server start: they were online until the last run ended). Nodes
 * already offline keep their last_seen. */
int srv_store_mark_all_offline(srv_store *st, int64_t now)
    __attribute__((warn_unused_result));

/* Records that node_id authenticated: online, last_seen = now, NAT type
 * and observed endpoint; inserts it on first sight (first_seen = now). */
int srv_store_node_online(srv_store *st, const char *node_id,
                          const char *nat_type, const char *ip, int port,
                          int64_t now) __attribute__((warn_unused_result));

/* Records that node_id went offline at `now`. SRV_STORE_ENOTFOUND when
 * the node was never recorded. */
int srv_store_node_offline(srv_store *st, const char *node_id, int64_t now)
    __attribute__((warn_unused_result));

/* Reads a node's presence into *out (known=false when never seen). */
int srv_store_lookup(srv_store *st, const char *node_id, srv_presence *out)
    __attribute__((warn_unused_result));

/* Durably appends a message for an offline recipient, unless it already
 * has `cap` messages waiting (SRV_STORE_EFULL). Commits before return. */
int srv_store_queue_push(srv_store *st, const char *recipient,
                         const char *sender, const char *type,
                         const char *session_id, const uint8_t *raw,
                         size_t raw_len, int64_t created, int64_t expires,
                         int cap) __attribute__((warn_unused_result));

/* Calls cb, in acceptance order, for each unexpired message (expires >
 * now) queued for recipient, then deletes them (and any expired ones of
 * that recipient are left for srv_store_queue_expire). Returns the number
 * delivered or SRV_STORE_ERR. */
int srv_store_queue_take(srv_store *st, const char *recipient, int64_t now,
                         srv_store_msg_cb cb, void *user)
    __attribute__((warn_unused_result));

/* Calls cb for each message with expires <= now, then deletes them.
 * Returns the number expired or SRV_STORE_ERR. */
int srv_store_queue_expire(srv_store *st, int64_t now, srv_store_msg_cb cb,
                           void *user) __attribute__((warn_unused_result));

/* Total messages waiting in the queue (for /metrics), or SRV_STORE_ERR. */
int64_t srv_store_queue_depth(srv_store *st);

/* True when the database accepts a write now (for /healthz). */
bool srv_store_writable(srv_store *st);

/* ---- admission lists (store_admission.c; db/migrations/002_admission) ---- */

/* The lists: the allowlist of node IDs, revoked node IDs, revoked fleet
 * certificate serials (PROTOCOL.md 6.1). */
#define SRV_ADM_LIST_ALLOW 0
#define SRV_ADM_LIST_REVOKED_NODE 1
#define SRV_ADM_LIST_REVOKED_SERIAL 2
#define SRV_ADM_LIST__COUNT 3

typedef void (*srv_store_adm_cb)(void *user, int list, const char *key, int64_t added);

/* Adds key (a node ID, or a serial for SRV_ADM_LIST_REVOKED_SERIAL) to
 * list with time `added` (present), or removes it. Commits before it
 * returns (the open presence batch with it). Adding a key already there
 * keeps its first time. Returns SRV_STORE_OK, SRV_STORE_ENOTFOUND when
 * removing a key that is not there, or SRV_STORE_ERR. */
int srv_store_adm_set(srv_store *st, int list, const char *key, bool present, int64_t added)
    __attribute__((warn_unused_result));

/* Calls cb for every entry of every list. Returns the count or
 * SRV_STORE_ERR. */
int srv_store_adm_load(srv_store *st, srv_store_adm_cb cb, void *user)
    __attribute__((warn_unused_result));

/* The SQLite connection, for the store's own files (store_admission.c). */
struct sqlite3 *srv_store_sqlite(srv_store *st);

#endif
