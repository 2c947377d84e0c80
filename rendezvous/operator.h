/* operator.h - the operator's listener: a second lws vhost of the same
 * context (--operator-listen, loopback by default) that serves /metrics,
 * /status, the status page /, /healthz and the admin API (admin.h). The
 * public vhost then answers only /v1 and /healthz, unless
 * --public-status keeps /metrics, /status and / there too (http.c).
 */
#ifndef SRV_OPERATOR_H
#define SRV_OPERATOR_H

#include <libwebsockets.h>
#include <stdbool.h>

struct srv_server;

/* Opens the operator's vhost on srv->ctx and logs "operator on
 * http://ADDR:PORT" (the real port with PORT 0) or "operator off".
 * A default address whose port is taken is left out with a warning; one
 * set on purpose (flag, variable, file) must open. Returns 0 (also when
 * off or left out) or -1 (logged). */
int srv_operator_open(struct srv_server *srv);

/* True when wsi is a connection of the operator's listener. */
bool srv_operator_is(const struct srv_server *srv, struct lws *wsi);

/* Frees what the operator's side holds (admin tokens, the audit log's
 * memory copy, the policy). Safe when never opened. */
void srv_operator_free(struct srv_server *srv);

#endif
