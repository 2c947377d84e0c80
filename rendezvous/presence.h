/* presence.h - who is online (PROTOCOL.md section 8): the node-ID ->
 * connection map, lookup / watch / unwatch, peerOnline / peerOffline pushes
 * and the store's presence rows.
 *
 * The map is the truth for "online" here; the engine (engine.h) knows
 * nodes on other instances and the lastSeen and natType of nodes that are
 * not connected, and answers lookups asynchronously. Watches belong to a connection and are
 * indexed by watched ID, so a change notifies exactly its watchers.
 */
#ifndef SRV_PRESENCE_H
#define SRV_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "rendezvous/conn.h"
#include "rendezvous/hmap.h"
#include "schema/message.h"

struct srv_server;

/* One watched node ID and the connections watching it. */
typedef struct srv_watch_entry {
    srv_hnode node;
    uint8_t id[RDV_NODE_ID_BYTES];
    uint32_t n, cap;
    srv_conn **watchers;
} srv_watch_entry;

/* The IDs one connection watches (entries of the index). */
typedef struct srv_watchset {
    uint32_t n, cap;
    srv_watch_entry **e;
} srv_watchset;

/* Initialises the node map and watch index. Returns 0 or -1 (OOM). */
int srv_presence_init(struct srv_server *srv) __attribute__((warn_unused_result));

/* Frees the maps (connections are lws'; watch entries are freed). */
void srv_presence_free(struct srv_server *srv);

/* The authenticated connection of node `id`, or NULL. */
srv_conn *srv_presence_find(struct srv_server *srv, const uint8_t id[RDV_NODE_ID_BYTES]);

/* Enters AUTHED c in the map and gives it its serial. Returns the older
 * connection of the same node here, now out of the map (the caller closes
 * it with `replaced`), or NULL. */
srv_conn *srv_presence_attach(struct srv_server *srv, srv_conn *c);

/* After welcome: records node hex (c) online in the engine (which replaces
 * a connection on another instance), delivers its queued messages, and,
 * when notify, pushes peerOnline to its watchers. ip is the observed one. */
void srv_presence_joined(struct srv_server *srv, srv_conn *c, const char *hex, const char *ip,
                         bool notify);

/* Engine events (user is the server): node hex changed presence on
 * another instance; node hex authenticated elsewhere, so its connection
 * here with `serial` is closed (4001) without going offline. */
void srv_presence_remote(void *user, const char *hex, bool online, const char *nat,
                         int64_t last_seen);
void srv_presence_replaced(void *user, const char *hex, uint32_t serial);

/* Engine event: the shared store is back; records every node connected
 * here in it again. */
void srv_presence_rejoin(void *user);

/* c is closing for good: drops its watches, and if it is the node's
 * current connection, removes it, records the node offline and pushes
 * peerOffline to the node's watchers. */
void srv_presence_detach(struct srv_server *srv, srv_conn *c);

/* Pushes peerOnline (online) or peerOffline for c's node to its watchers. */
void srv_presence_notify(struct srv_server *srv, const srv_conn *c, bool online);

/* Handlers of lookup, watch, unwatch (always return 0: errors are sent). */
int srv_presence_lookup(struct srv_server *srv, srv_conn *c, const rdv_msg *msg);
int srv_presence_watch(struct srv_server *srv, srv_conn *c, const rdv_msg *msg);
int srv_presence_unwatch(struct srv_server *srv, srv_conn *c, const rdv_msg *msg);

#endif
