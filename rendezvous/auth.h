/* auth.h - the handshake of PROTOCOL.md section 6: challenge on connect,
 * hello checked (nonce and server name, ingress freshness, signature),
 * welcome with the observed address and the limits, the auth timeout, and
 * replacement of an older connection of the same node (`replaced`, 4001).
 */
#ifndef RDV_SERVER_AUTH_H
#define RDV_SERVER_AUTH_H

#include "conn.h"
#include "schema/message.h"

struct rdv_server;

/* New WebSocket: draws the nonce, queues `challenge`, starts the auth
 * deadline. Returns 0 or -1 (close). */
int rdv_auth_on_connect(struct rdv_server *srv, rdv_conn *c);

/* Takes c off the auth-deadline list (no-op unless it is PENDING). */
void rdv_auth_forget(struct rdv_server *srv, rdv_conn *c);

/* Handles a parsed `hello`. On success c is AUTHED, in the node map, has
 * `welcome` and its queued messages on the way; on failure c is closing.
 * Returns 0 (the connection is closed through rdv_conn_close). */
int rdv_auth_hello(struct rdv_server *srv, rdv_conn *c, const rdv_msg *msg);

/* Closes every pending connection whose deadline passed with
 * `auth_timeout`; re-arms the timer. Called from the auth timer. */
void rdv_auth_expire(struct rdv_server *srv);

/* Closes c as failing the handshake: counts it and sends `code` (auth_failed,
 * stale_timestamp, missing_field or invalid_field) with close 1008. */
void rdv_auth_fail(struct rdv_server *srv, rdv_conn *c, rdv_ec code, const char *message,
                   const char *field);

#endif
