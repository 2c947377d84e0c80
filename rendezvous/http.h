/* http.h - plain HTTP on both listeners: GET / (the status page,
 * status_page.h), /healthz (200 "ok" when the store accepts writes, else
 * 503), /metrics (Prometheus text format 0.0.4) and /status (JSON
 * summary). The public (WebSocket) listener answers only /healthz (and
 * /v1's upgrade) unless --public-status; the operator's listener
 * (operator.h) answers all four. Everything else is 404.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>

/* The lws callback of the "http" protocol (protocols[0]). It also refuses
 * WebSocket upgrades that do not ask for the rendezvous.v1 subprotocol. */
int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

/* Writes one whole response (status, content type, body of len bytes;
 * with bearer_challenge a "WWW-Authenticate: Bearer" header) and ends the
 * transaction. Returns the callback result. */
int srv_http_reply(struct lws *wsi, unsigned status, const char *ctype, const char *body,
                   size_t len, bool bearer_challenge);

#endif
