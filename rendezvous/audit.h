/* audit.h - the operator's audit log: one entry per change made through
 * the admin API (admin.h), with who (the token's name), from where (the
 * client's address:port), what, on what, when and the result.
 *
 * Where it lives: the SQLite store's table audit_log
 * (db/migrations/003_audit.sql) when the server runs on SQLite, and a
 * NOTICE log line "audit: ..." in every case (written whatever
 * --log-level says, so journald / log shippers keep it). With --redis
 * there is no database file: the log line is the record, and the API
 * answers from the last SRV_AUDIT_RING entries this process kept in
 * memory.
 */
#ifndef SRV_AUDIT_H
#define SRV_AUDIT_H

#include <jansson.h>
#include <stdint.h>

struct srv_server;

#define SRV_AUDIT_RING 256

/* Records one entry (strings may be NULL for ""), logs it and, on SQLite,
 * writes it (committed before this returns). Returns 0, or -1 when the
 * store refused the row (the log line and the memory copy are still
 * written; logged). */
int srv_audit_record(struct srv_server *srv, const char *who, const char *peer,
                     const char *action, const char *target, const char *result,
                     const char *detail);

/* The newest `limit` entries (1..1000), newest first, as a new JSON array
 * of {"id","time","who","peer","action","target","result","detail"};
 * NULL when out of memory or the store cannot be read. */
json_t *srv_audit_list(struct srv_server *srv, int limit);

/* Frees the memory copy. */
void srv_audit_free(struct srv_server *srv);

#endif
