/* auth.h - the handshake of PROTOCOL.md section 6: challenge on connect,
 * hello checked (nonce and server name, ingress freshness, signature),
 * welcome with the observed address and the limits, the auth timeout, and
 * replacement of an older connection of the same node (`replaced`, 4001).
 */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include "rendezvous/conn.h"
#include "schema/message.h"

struct srv_server;

/* New WebSocket: draws the nonce, queues `challenge`, starts the auth
 * deadline. Returns 0 or -1 (close). */
int srv_auth_on_connect(struct srv_server *srv, srv_conn *c);

/* Takes c off the auth-deadline list (no-op unless it is PENDING). */
void srv_auth_forget(struct srv_server *srv, srv_conn *c);

/* Handles a parsed `hello`. On success c is AUTHED, in the node map, has
 * `welcome` and its queued messages on the way; on failure c is closing.
 * With verify workers, the signature check is handed to one and
 * srv_auth_hello_verified() finishes the hello later (c stays PENDING
 * until then). Returns 0 (the connection is closed through srv_conn_close). */
int srv_auth_hello(struct srv_server *srv, srv_conn *c, const rdv_msg *msg);

/* Completes a hello whose signature a verify worker checked (vpool.h):
 * valid, as srv_auth_hello's success; not, auth_failed. Nothing when c is
 * no longer pending (timed out meanwhile). Returns 0. */
int srv_auth_hello_verified(struct srv_server *srv, srv_conn *c, const json_t *body, bool valid);

/* Closes every pending connection whose deadline passed with
 * `auth_timeout`; re-arms the timer. Called from the auth timer. */
void srv_auth_expire(struct srv_server *srv);

/* Closes c as failing the handshake: counts it and sends `code` (auth_failed,
 * stale_timestamp, missing_field or invalid_field) with close 1008. */
void srv_auth_fail(struct srv_server *srv, srv_conn *c, rdv_ec code, const char *message,
                   const char *field);

#endif
