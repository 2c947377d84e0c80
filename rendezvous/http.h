/* http.h - plain HTTP on the WebSocket listener: GET / (the status page,
 * status_page.h), /healthz (200 "ok" when the store accepts writes, else
 * 503), /metrics (Prometheus text format 0.0.4) and /status (JSON
 * summary). Everything else is 404.
 */
#ifndef RDV_SERVER_HTTP_H
#define RDV_SERVER_HTTP_H

#include <libwebsockets.h>

/* The lws callback of the "http" protocol (protocols[0]). It also refuses
 * WebSocket upgrades that do not ask for the rendezvous.v1 subprotocol. */
int rdv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);

#endif
