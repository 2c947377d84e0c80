/* proto.h - the protocol state machine of a client (proto.c; internal):
 * what to do with each received message (challenge -> hello, welcome,
 * routed messages, presence, errors) and the messages it sends itself. */
#ifndef RDV_CLIENT_PROTO_H
#define RDV_CLIENT_PROTO_H

#include <stddef.h>

#include <jansson.h>

#include "rendezvous/rendezvous.h"

/* Handles one complete received text message. Returns 0, or -1 to close
 * the connection (end_reason set). (S) */
int rdv__proto_on_text(rdv_client *c, const char *text, size_t len);

/* Called when the WebSocket upgrade completed. (S) */
void rdv__proto_on_established(rdv_client *c);

/* Queues the watch set in `watch` requests of at most
 * RDV_MAX_IDS_PER_CALL IDs (after welcome). (S) */
void rdv__proto_send_watches(rdv_client *c);

/* Queues a `ping` keep-alive. (S) */
void rdv__proto_send_ping(rdv_client *c);

/* The text of a signed hello answering `challenge` (its body), as the
 * main connection sends it: for the relay channel (relay_channel.h).
 * malloc'd (length *len), or NULL. */
char *rdv__proto_hello_text(rdv_client *c, const json_t *challenge, size_t *len);

#endif
