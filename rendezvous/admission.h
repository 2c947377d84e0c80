/* admission.h - who may authenticate (PROTOCOL.md 6.1): the admission mode
 * (--admission open|allowlist|fleet|allowlist,fleet), the trusted fleet
 * keys (--fleet-key, --fleet-key-file), the allowlist and the revocation
 * lists, and revocation of live nodes.
 *
 * The lists live in the engine's store (SQLite tables of
 * db/migrations/002_admission.sql, or Redis hashes with --redis) and in
 * memory here: a hello is checked against memory, on the loop, without
 * waiting. Changes made through the functions below are applied here at
 * once and written through the engine, which tells the other instances
 * (events.admission -> srv_admission_bus_in). With --redis the lists are
 * loaded when Redis first answers and again after every reconnection;
 * until the first load a restricted server refuses hellos with `internal`
 * ("try again") rather than guess.
 *
 * With `allowlist,fleet` either suffices: a node on the allowlist, or one
 * with a valid certificate. A revoked node ID, or a presented certificate
 * whose serial is revoked, is refused in every mode (revocation wins).
 *
 * Functions for the operator's admin API (operator.c) return 0 or a
 * negative SRV_ADM_E* code, and are called on the loop thread.
 */
#ifndef SRV_ADMISSION_H
#define SRV_ADMISSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/conn.h"
#include "schema/fleet_cert.h"
#include "rendezvous/hmap.h"
#include "schema/message.h"
#include "rendezvous/store.h" /* SRV_ADM_LIST_* */

struct srv_server;
struct srv_config;

/* Mode bits; 0 is `open`. */
#define SRV_ADM_MODE_ALLOWLIST 1u
#define SRV_ADM_MODE_FLEET 2u

/* Results of the admin functions. */
#define SRV_ADM_OK 0
#define SRV_ADM_UNCHANGED 1      /* already so: added twice, removed when absent */
#define SRV_ADM_EINVAL (-1)      /* not a node ID (64 lowercase hex) / serial (32) */
#define SRV_ADM_ESTORE (-2)      /* the store refused the write: nothing changed */
#define SRV_ADM_ENOMEM (-3)
#define SRV_ADM_ENOTREADY (-4)   /* --redis: the lists are not loaded yet */

/* What a node's fleet certificate gave it, on its connection
 * (srv_conn.cert): the certificate's serial, expiry and groups. NULL on a
 * connection admitted without a certificate. The operator's relay and
 * signaling policy reads the groups (srv_conn_in_group). */
typedef struct srv_conn_cert {
    char serial[RDV_FLEET_SERIAL_HEXLEN + 1];
    int64_t expires;
    uint8_t n_groups;
    char groups[RDV_FLEET_MAX_GROUPS][RDV_FLEET_GROUP_MAX + 1];
} srv_conn_cert;

/* One list in memory: key bytes (32 for node IDs, 16 for serials). */
typedef struct srv_adm_entry {
    srv_hnode node;
    int64_t added;
    uint8_t key[RDV_NODE_ID_BYTES];
} srv_adm_entry;

typedef struct srv_admission {
    unsigned mode;                                    /* SRV_ADM_MODE_* bits */
    uint8_t keys[RDV_FLEET_MAX_KEYS][RDV_NODE_ID_BYTES]; /* trusted fleet keys */
    size_t n_keys;
    srv_hmap lists[SRV_ADM_LIST__COUNT];              /* of srv_adm_entry */
    bool loaded;                                      /* lists read from the store */
    bool loading;                                     /* a load is under way */
    struct adm_load *pending_load;                    /* that load (freed at exit) */
    int last_rc;                                      /* a synchronous write's result */
} srv_admission;

/* Parses --admission ("open", "allowlist", "fleet", "allowlist,fleet" or
 * "fleet,allowlist") into *mode. Returns 0 or -1. */
int srv_admission_parse_mode(const char *s, unsigned *mode);

/* Parses the trusted keys: `list` (comma or space separated, hex or
 * base64) and the lines of `file` (may be empty; '#' comments) into adm.
 * Returns 0, or -1 with a message for the operator in err. At most
 * RDV_FLEET_MAX_KEYS. */
int srv_admission_parse_keys(srv_admission *adm, const char *list, const char *file, char *err,
                             size_t errlen);

/* Sets up srv->adm from the configuration (mode, keys; fleet mode without
 * a key is an error) and loads the lists from the engine. Call after the
 * engine is open. Returns 0 or -1 (logged). */
int srv_admission_start(struct srv_server *srv);

/* Frees the lists. Safe on a zeroed adm. */
void srv_admission_free(srv_admission *adm);

/* The admission check of hello (after its signature verified): returns
 * RDV_EC_NONE and sets c->cert (when a certificate admitted the node), or
 * RDV_EC_NOT_ADMITTED / RDV_EC_REVOKED / RDV_EC_INTERNAL with a message
 * for the node in why (size whylen) that says what to do. */
rdv_ec srv_admission_check(struct srv_server *srv, srv_conn *c, const json_t *hello,
                           const char *node_hex, char *why, size_t whylen);

/* True when c's fleet certificate names group g. */
bool srv_conn_in_group(const srv_conn *c, const char *g);

/* ---- the admin API (called by operator.c) ------------------------------ */

/* Adds node_hex to / removes it from the allowlist. Removing does not
 * disconnect the node (it is refused at its next hello). */
int srv_admission_allow_add(struct srv_server *srv, const char *node_hex);
int srv_admission_allow_remove(struct srv_server *srv, const char *node_hex);

/* Revokes a node ID (serial false) or a certificate serial (serial true):
 * recorded, and every connection it names, here and on the other
 * instances, gets `error` revoked and is closed (1008); its relay
 * sessions end with reason revoked. *closed (may be NULL) counts the
 * connections closed here. unrevoke removes the entry. */
int srv_admission_revoke(struct srv_server *srv, bool serial, const char *key, int *closed);
int srv_admission_unrevoke(struct srv_server *srv, bool serial, const char *key);

/* One list as a new JSON array of {"nodeID"|"serial": key, "added": ms},
 * sorted by key; NULL when out of memory. */
json_t *srv_admission_list_json(struct srv_server *srv, int list);

/* True when key is on list (a node ID, or a serial for the serial list). */
bool srv_admission_listed(struct srv_server *srv, int list, const char *key);

/* Short text of an SRV_ADM_* result ("ok", "unchanged", "invalid", ...). */
const char *srv_admission_rc_name(int rc);

/* Engine event (user: the server): another instance changed a list. */
void srv_admission_bus_in(void *user, int list, const char *key, bool present, int64_t added);

/* Engine event helper: the shared store answers again; reload the lists
 * (called from the server's reconnected handler). */
void srv_admission_reload(struct srv_server *srv);

#endif
