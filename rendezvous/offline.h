/* offline.h - messages for nodes that are not connected to this instance
 * (PROTOCOL.md section 5): forwarded to the instance that has the node
 * (cluster engine), else queued durably with a TTL; delivered in order when
 * the node authenticates (here or anywhere); expired with `peer_offline`
 * to the sender. The engine (engine.h) stores them.
 */
#ifndef SRV_OFFLINE_H
#define SRV_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "rendezvous/conn.h"
#include "schema/message.h"
#include "rendezvous/store.h"

struct srv_server;

/* Routes a checked signaling message from c to node `to`, not connected
 * here: forwarded, or queued (c gets `queued` once the engine has it), or
 * refused (c gets queue_full / internal). raw is the message's bytes. */
void srv_offline_route(struct srv_server *srv, srv_conn *c, rdv_msg_type type, const char *from,
                       const char *to, const char *sid, const uint8_t *raw, size_t len);

/* Sends c (just welcomed as node `hex`) its queued messages, in order. */
void srv_offline_deliver(struct srv_server *srv, srv_conn *c, const char *hex);

/* Drops expired queued messages and tells their senders `peer_offline`
 * (ref = sessionID) wherever they are connected. From the sweep timer. */
void srv_offline_expire(struct srv_server *srv);

/* Another instance routed m here: sends it to its recipient if connected
 * here, else puts it back in the queue. */
void srv_offline_arrived(struct srv_server *srv, const srv_queued_msg *m);

#endif
