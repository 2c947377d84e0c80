/* route.h - the message dispatcher and signaling routes (PROTOCOL.md
 * sections 2, 5, 7 and 11).
 *
 * Every complete text message goes through srv_route_message(): parse and
 * validate with the codec, check direction and authentication, then call
 * the handler of its type from a table. offer / answer / iceCandidate are
 * checked (sender binding, ingress freshness, signature unless
 * --verify-signatures=off) and forwarded as their original bytes, or handed
 * to offline.c when the recipient is not connected here. relayOpen / relayReady get the
 * same checks and then go to relay.c, as do relayData and relayClose.
 */
#ifndef SRV_ROUTE_H
#define SRV_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "rendezvous/conn.h"
#include "schema/scan.h"

struct srv_server;

/* Handles one complete text message of c. Returns -1 when lws must close
 * the connection immediately (never for bad input: errors are queued). */
int srv_route_message(struct srv_server *srv, srv_conn *c, const uint8_t *data, size_t len);

/* Handles one complete binary message (relay fast path: relay.c). Not
 * rate limited per message unless refused. */
int srv_route_binary(struct srv_server *srv, srv_conn *c, const uint8_t *data, size_t len);

/* Routes a scanned offer / answer / iceCandidate of c (scan.h) whose
 * section 7.1 checks passed, valid: its signature verified (or verify
 * off); not valid: it did not, and the parsing path answers it. Called
 * inline or by vpool.c once a worker verified it. Returns as
 * srv_route_message. */
int srv_route_verified(struct srv_server *srv, srv_conn *c, const uint8_t *data, size_t len,
                       const rdv_scan *s, bool valid);

/* Handles a message that waited behind others of c (vpool.h), as
 * srv_route_message / srv_route_binary would have, minus the wait. */
int srv_route_held(struct srv_server *srv, srv_conn *c, const uint8_t *data, size_t len,
                   bool binary);

#endif
