/* http.c - /healthz, /metrics, /status (see http.h), on the public and the
 * operator's listener (operator.h).
 *
 * A response is built whole in a heap buffer with LWS_PRE headroom and
 * written from the LWS_CALLBACK_HTTP callback (headers, then the body as
 * the final write); bodies are a few KiB at most.
 */
#include "rendezvous/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/accept_gate.h"
#include "rendezvous/admin.h"
#include "rendezvous/conn_limits.h"
#include "rendezvous/log.h"
#include "rendezvous/metrics.h"
#include "rendezvous/operator.h"
#include "rendezvous/server.h"
#include "schema/sign.h"
#include "rendezvous/status_page.h"
#include "rendezvous/tls.h"

#ifndef SRV_VERSION
#define SRV_VERSION "0.1.0"
#endif

/* Growable text buffer that keeps LWS_PRE bytes free at its start. */
typedef struct tbuf {
    char *p;
    size_t len, cap;
    bool oom;
} tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(tbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - LWS_PRE - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = b->p ? vsnprintf(b->p + LWS_PRE + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        if (n >= 0 && cap < LWS_PRE + b->len + (size_t)n + 1)
            cap = LWS_PRE + b->len + (size_t)n + 1;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static srv_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static void metric(tbuf *b, const char *name, const char *type, const char *help)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The relay's series (relay.h): sessions by state, payload bytes and
 * messages forwarded, drops and session ends by reason. */
static void build_relay_metrics(srv_server *srv, tbuf *b)
{
    const srv_relay *r = &srv->relay;
    metric(b, "rendezvous_relay_sessions", "gauge", "Relay sessions, by state.");
    tb_printf(b, "rendezvous_relay_sessions{state=\"opening\"} %llu\n",
              (unsigned long long)r->n_opening);
    tb_printf(b, "rendezvous_relay_sessions{state=\"open\"} %llu\n",
              (unsigned long long)r->n_open);
    metric(b, "rendezvous_relay_bytes_total", "counter", "Relay payload bytes forwarded.");
    tb_printf(b, "rendezvous_relay_bytes_total %llu\n", (unsigned long long)r->m.bytes);
    metric(b, "rendezvous_relay_messages_total", "counter", "relayData messages forwarded.");
    tb_printf(b, "rendezvous_relay_messages_total %llu\n", (unsigned long long)r->m.messages);
    metric(b, "rendezvous_relay_dropped_messages_total", "counter",
           "relayData not delivered, by reason.");
    for (int d = 0; d < SRV_RELAY_DROP__COUNT; d++)
        tb_printf(b, "rendezvous_relay_dropped_messages_total{reason=\"%s\"} %llu\n",
                  srv_relay_drop_name((srv_relay_drop)d),
                  (unsigned long long)r->m.dropped_msgs[d]);
    metric(b, "rendezvous_relay_dropped_bytes_total", "counter",
           "Payload bytes of relayData not delivered, by reason.");
    for (int d = 0; d < SRV_RELAY_DROP__COUNT; d++)
        tb_printf(b, "rendezvous_relay_dropped_bytes_total{reason=\"%s\"} %llu\n",
                  srv_relay_drop_name((srv_relay_drop)d),
                  (unsigned long long)r->m.dropped_bytes[d]);
    metric(b, "rendezvous_relay_channel_frames_total", "counter",
           "Relay data frames received on relay channels (in) and sent down them (out).");
    tb_printf(b, "rendezvous_relay_channel_frames_total{direction=\"in\"} %llu\n",
              (unsigned long long)r->m.channel_in);
    tb_printf(b, "rendezvous_relay_channel_frames_total{direction=\"out\"} %llu\n",
              (unsigned long long)r->m.channel_out);
    metric(b, "rendezvous_relay_channels", "gauge", "Relay channels open (PROTOCOL.md 9.5).");
    tb_printf(b, "rendezvous_relay_channels %llu\n", (unsigned long long)srv->channels.count);
    metric(b, "rendezvous_relay_sessions_opened_total", "counter",
           "Relay sessions that reached OPEN (consented).");
    tb_printf(b, "rendezvous_relay_sessions_opened_total %llu\n",
              (unsigned long long)r->m.opened);
    metric(b, "rendezvous_relay_sessions_closed_total", "counter",
           "Relay sessions ended, by reason.");
    for (int e = 0; e < SRV_RELAY_END__COUNT; e++)
        tb_printf(b, "rendezvous_relay_sessions_closed_total{reason=\"%s\"} %llu\n",
                  srv_relay_end_name((srv_relay_end)e), (unsigned long long)r->m.closed[e]);
}

/* The STUN responders' series (stun_responder.h counters, summed over sockets):
 * datagrams received = responses (by class) + dropped. */
static void build_stun_metrics(srv_server *srv, tbuf *b)
{
    uint64_t rx = 0, ok = 0, err = 0, dropped = 0;
    for (int i = 0; i < srv->n_stun; i++) {
        const srv_stun_server *st = &srv->stun[i];
        rx += st->n_rx;
        ok += st->n_tx_success;
        err += st->n_tx_error;
        dropped += st->n_dropped + st->n_send_errors;
    }
    metric(b, "rendezvous_stun_requests_total", "counter",
           "UDP datagrams received on the STUN port(s).");
    tb_printf(b, "rendezvous_stun_requests_total %llu\n", (unsigned long long)rx);
    metric(b, "rendezvous_stun_responses_total", "counter", "STUN responses sent, by class.");
    tb_printf(b, "rendezvous_stun_responses_total{class=\"success\"} %llu\n",
              (unsigned long long)ok);
    tb_printf(b, "rendezvous_stun_responses_total{class=\"error\"} %llu\n",
              (unsigned long long)err);
    metric(b, "rendezvous_stun_dropped_total", "counter",
           "STUN datagrams not answered (not STUN, not a request, or unsendable).");
    tb_printf(b, "rendezvous_stun_dropped_total %llu\n", (unsigned long long)dropped);
}

/* SIGHUP reloads (reload.h). */
static void build_reload_metrics(const srv_reload *r, tbuf *b)
{
    metric(b, "rendezvous_reloads_total", "counter", "Reloads run (SIGHUP).");
    tb_printf(b, "rendezvous_reloads_total %llu\n", (unsigned long long)r->reloads);
    metric(b, "rendezvous_reload_failures_total", "counter",
           "Reloads in which a hook failed and kept its previous state.");
    tb_printf(b, "rendezvous_reload_failures_total %llu\n", (unsigned long long)r->failures);
    metric(b, "rendezvous_reload_last_success", "gauge",
           "1 when every hook of the last reload applied (or there was none yet).");
    tb_printf(b, "rendezvous_reload_last_success %d\n", r->last_ok ? 1 : 0);
}

static void build_metrics(srv_server *srv, tbuf *b)
{
    const srv_metrics *m = &srv->m;
    metric(b, "rendezvous_connections", "gauge", "Open WebSocket connections.");
    tb_printf(b, "rendezvous_connections %llu\n", (unsigned long long)m->connections);
    metric(b, "rendezvous_nodes_authenticated", "gauge",
           "Connections that completed the hello/welcome handshake.");
    tb_printf(b, "rendezvous_nodes_authenticated %zu\n", srv->nodes.count);
    metric(b, "rendezvous_messages_routed_total", "counter",
           "Signed messages forwarded to or queued for their recipient, by type.");
    for (int t = 1; t < RDV_MSG__COUNT; t++)
        if (rdv_msg_type_is_routed((rdv_msg_type)t))
            tb_printf(b, "rendezvous_messages_routed_total{type=\"%s\"} %llu\n",
                      rdv_msg_type_name((rdv_msg_type)t), (unsigned long long)m->routed[t]);
    metric(b, "rendezvous_errors_sent_total", "counter", "error messages sent, by code.");
    for (int e = 1; e < RDV_EC__COUNT; e++)
        tb_printf(b, "rendezvous_errors_sent_total{code=\"%s\"} %llu\n",
                  rdv_ec_name((rdv_ec)e), (unsigned long long)m->errors_sent[e]);
    metric(b, "rendezvous_auth_failures_total", "counter",
           "Handshakes refused or timed out.");
    tb_printf(b, "rendezvous_auth_failures_total %llu\n", (unsigned long long)m->auth_failures);
    metric(b, "rendezvous_verify_offloaded_total", "counter",
           "Signatures (hellos and routed messages) checked on the --verify-threads workers.");
    tb_printf(b, "rendezvous_verify_offloaded_total %llu\n",
              (unsigned long long)srv->vpool.jobs);
    metric(b, "rendezvous_verify_inline_total", "counter",
           "Signatures the event loop checked itself at light load although workers exist "
           "(--verify-inline).");
    tb_printf(b, "rendezvous_verify_inline_total %llu\n",
              (unsigned long long)srv->vpool.inline_jobs);
    metric(b, "rendezvous_loop_lag_seconds", "gauge",
           "Longest the event loop was busy without coming back to its timers over the "
           "last 10 to 20 s (a 50 ms timer's lateness): every message arriving meanwhile "
           "waited that long.");
    tb_printf(b, "rendezvous_loop_lag_seconds %.3f\n",
              (double)srv_loop_lag_ms(&srv->conn_sweep.lag, srv_mono_ms()) / 1000.0);
    metric(b, "rendezvous_rate_limited_total", "counter",
           "Messages dropped by the per-connection rate limit.");
    tb_printf(b, "rendezvous_rate_limited_total %llu\n", (unsigned long long)m->rate_limited);
    metric(b, "rendezvous_dropped_messages_total", "counter",
           "Messages dropped without delivery, by reason.");
    for (int r = 0; r < SRV_DROP__COUNT; r++)
        tb_printf(b, "rendezvous_dropped_messages_total{reason=\"%s\"} %llu\n",
                  srv_drop_reason_name((srv_drop_reason)r), (unsigned long long)m->dropped[r]);
    build_relay_metrics(srv, b);
    build_stun_metrics(srv, b);
    int64_t depth = srv->engine ? srv_engine_queue_depth(srv->engine) : -1;
    metric(b, "rendezvous_offline_queue_depth", "gauge",
           "Messages waiting in the durable offline queue.");
    tb_printf(b, "rendezvous_offline_queue_depth %lld\n", (long long)(depth < 0 ? 0 : depth));
    metric(b, "rendezvous_bytes_in_total", "counter", "WebSocket payload bytes received.");
    tb_printf(b, "rendezvous_bytes_in_total %llu\n", (unsigned long long)m->bytes_in);
    metric(b, "rendezvous_bytes_out_total", "counter", "WebSocket payload bytes sent.");
    tb_printf(b, "rendezvous_bytes_out_total %llu\n", (unsigned long long)m->bytes_out);
    metric(b, "rendezvous_connections_total", "counter", "WebSocket connections accepted.");
    tb_printf(b, "rendezvous_connections_total %llu\n",
              (unsigned long long)m->connections_total);
    metric(b, "rendezvous_connections_refused_total", "counter",
           "WebSocket connections refused by a connection limit.");
    tb_printf(b, "rendezvous_connections_refused_total %llu\n",
              (unsigned long long)m->connections_refused);
    metric(b, "rendezvous_handshakes_refused_total", "counter",
           "Connections refused at accept: their address had --max-handshakes-per-ip "
           "upgrades unfinished.");
    tb_printf(b, "rendezvous_handshakes_refused_total %llu\n",
              (unsigned long long)m->handshakes_refused);
    metric(b, "rendezvous_frame_floods_total", "counter",
           "Connections closed for a WebSocket frame flood (pings, pongs, fragments; "
           "frame_guard.h).");
    tb_printf(b, "rendezvous_frame_floods_total %llu\n", (unsigned long long)m->frame_floods);
    srv_engine_status es;
    memset(&es, 0, sizeof es);
    if (srv->engine)
        srv_engine_status_get(srv->engine, &es);
    metric(b, "rendezvous_cluster_instances", "gauge",
           "Instances alive in the cluster (1 without --redis).");
    tb_printf(b, "rendezvous_cluster_instances %d\n", es.instances);
    metric(b, "rendezvous_cluster_nodes", "gauge",
           "Authenticated nodes on every live instance (this one's alone without --redis).");
    tb_printf(b, "rendezvous_cluster_nodes %lld\n",
              (long long)(es.cluster_nodes < 0 ? (int64_t)srv->nodes.count : es.cluster_nodes));
    metric(b, "rendezvous_engine_up", "gauge",
           "1 while the engine (SQLite, or Redis with --redis) answers.");
    tb_printf(b, "rendezvous_engine_up %d\n", es.connected ? 1 : 0);
    metric(b, "rendezvous_bus_messages_total", "counter",
           "Messages exchanged with other instances, by direction.");
    tb_printf(b, "rendezvous_bus_messages_total{direction=\"in\"} %llu\n",
              (unsigned long long)es.bus_in);
    tb_printf(b, "rendezvous_bus_messages_total{direction=\"out\"} %llu\n",
              (unsigned long long)es.bus_out);
    metric(b, "rendezvous_engine_errors_total", "counter", "Engine (store or Redis) errors.");
    tb_printf(b, "rendezvous_engine_errors_total %llu\n", (unsigned long long)es.errors);
    const srv_accept_gate *g = &srv->gate;
    metric(b, "rendezvous_open_files_limit", "gauge", "The process's open-file limit.");
    tb_printf(b, "rendezvous_open_files_limit %lld\n", (long long)g->limit);
    metric(b, "rendezvous_accept_paused", "gauge",
           "1 while new connections wait because file descriptors ran out.");
    tb_printf(b, "rendezvous_accept_paused %d\n", g->paused ? 1 : 0);
    metric(b, "rendezvous_accept_pauses_total", "counter",
           "Times accepting paused at the open-file limit.");
    tb_printf(b, "rendezvous_accept_pauses_total %llu\n", (unsigned long long)g->pauses_total);
    metric(b, "rendezvous_accept_fd_refused_total", "counter",
           "Connections closed at accept because they took the last free descriptors.");
    tb_printf(b, "rendezvous_accept_fd_refused_total %llu\n",
              (unsigned long long)g->refused_total);
    metric(b, "rendezvous_accept_batch_pauses_total", "counter",
           "Times accepting waited for the next event-loop turn after --accept-batch "
           "connections in one.");
    tb_printf(b, "rendezvous_accept_batch_pauses_total %llu\n",
              (unsigned long long)g->turn_pauses_total);
    build_reload_metrics(&srv->reload, b);
}

static void build_status(srv_server *srv, tbuf *b)
{
    const srv_config *cfg = srv->cfg;
    int64_t depth = srv->engine ? srv_engine_queue_depth(srv->engine) : -1;
    json_t *o = json_pack(
        "{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:{s:I, s:i, s:i, s:I, s:i, "
        "s:i, s:I, s:I, s:i, s:i, s:I}}",
        "version", SRV_VERSION, "name", cfg->name, "protocol", RDV_PROTOCOL_VERSION, "uptimeMs",
        (json_int_t)(srv_mono_ms() - srv->started_mono_ms), "connections",
        (json_int_t)srv->m.connections, "nodesAuthenticated", (json_int_t)srv->nodes.count,
        "offlineQueueDepth", (json_int_t)(depth < 0 ? 0 : depth), "connectionsTotal",
        (json_int_t)srv->m.connections_total, "storeWritable", srv->engine && srv_engine_healthy(srv->engine),
        "verifySignatures", cfg->verify_signatures, "shuttingDown", srv->shutting_down,
        "limits", "maxMessageBytes", (json_int_t)cfg->max_message_bytes, "messagesPerSecond",
        cfg->rate, "messageBurst", cfg->burst, "offlineTtlMs", (json_int_t)cfg->offline_ttl_ms,
        "offlineQueueMax", cfg->offline_queue_max, "maxWatches", cfg->max_watches,
        "pingIntervalMs", (json_int_t)cfg->ping_interval_ms, "idleTimeoutMs",
        (json_int_t)cfg->idle_timeout_ms, "maxConnections", cfg->max_connections,
        "maxConnectionsPerIp", cfg->max_connections_per_ip, "sendQueueMax",
        (json_int_t)cfg->send_queue_max);
    const srv_relay *r = &srv->relay;
    json_t *relay = json_pack(
        "{s:I, s:I, s:I, s:I, s:{s:I, s:i, s:I, s:I, s:I, s:I}}", "sessionsOpen",
        (json_int_t)r->n_open, "sessionsOpening", (json_int_t)r->n_opening, "bytes",
        (json_int_t)r->m.bytes, "messages", (json_int_t)r->m.messages, "limits", "maxPayload",
        (json_int_t)cfg->relay_max_payload, "maxSessions", cfg->relay_max_sessions,
        "bytesPerSecond", (json_int_t)cfg->relay_rate, "globalBytesPerSecond",
        (json_int_t)cfg->relay_global_rate, "sessionQuota", (json_int_t)cfg->relay_quota,
        "idleTimeoutMs", (json_int_t)cfg->relay_idle_timeout_ms);
    /* STUN: the ports actually bound (0: none) */
    const srv_stun_server *st = srv->n_stun ? &srv->stun[0] : NULL;
    json_t *stun = json_pack("{s:b, s:i, s:i}", "enabled", st != NULL, "port",
                             st ? (int)st->bound[SRV_STUN_VIA_PRIMARY].port : 0, "altPort",
                             st ? (int)st->rcfg.alt_port : 0);
    if (stun && st && st->rcfg.has_alt_addr)
        json_object_set_new(stun, "altAddress", json_string(cfg->stun_alt_address));
    if (!o || !relay || !stun) {
        json_decref(stun);
        json_decref(relay);
        json_decref(o);
        o = NULL;
    } else if (json_object_set_new(o, "relay", relay) != 0) { /* steals relay */
        json_decref(stun);
        json_decref(o);
        o = NULL;
    } else if (json_object_set_new(o, "stun", stun) != 0) { /* steals stun */
        json_decref(o);
        o = NULL;
    }
    /* the cluster view (engine.h): one instance alone on sqlite */
    srv_engine_status es;
    memset(&es, 0, sizeof es);
    if (srv->engine)
        srv_engine_status_get(srv->engine, &es);
    json_int_t here = (json_int_t)srv->nodes.count;
    json_t *cl = json_pack("{s:s, s:s, s:i, s:b, s:I, s:I, s:I, s:I, s:I}", "engine",
                           es.engine ? es.engine : "none", "instanceID", es.instance_id,
                           "instances", es.instances, "connected", es.connected, "nodesHere",
                           here, "nodesCluster",
                           es.cluster_nodes < 0 ? here : (json_int_t)es.cluster_nodes, "busIn",
                           (json_int_t)es.bus_in, "busOut", (json_int_t)es.bus_out, "errors",
                           (json_int_t)es.errors);
    if (o && (!cl || json_object_set_new(o, "cluster", cl) != 0)) { /* steals cl */
        json_decref(o);
        o = NULL;
    } else if (!o) {
        json_decref(cl);
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        b->oom = true;
        return;
    }
    tb_printf(b, "%s\n", s);
    free(s);
}

/* Writes status, content type and body; returns the callback result. */
static int respond(struct lws *wsi, unsigned status, const char *ctype, tbuf *b)
{
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)b->len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (b->len && lws_write(wsi, (unsigned char *)b->p + LWS_PRE, b->len,
                            LWS_WRITE_HTTP_FINAL) < (int)b->len)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int srv_http_reply(struct lws *wsi, unsigned status, const char *ctype, const char *body,
                   size_t len, bool bearer_challenge)
{
    tbuf b = {0};
    tb_printf(&b, "%.*s", (int)len, body ? body : "");
    if (b.oom) {
        free(b.p);
        return -1;
    }
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    static const char challenge[] = "Bearer realm=\"rendezvousd admin\"";
    int rc = -1;
    if (!lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)b.len, &p, end) &&
        !lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                      (const unsigned char *)"no-store", 8, &p, end) &&
        (!bearer_challenge ||
         !lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
                                       (const unsigned char *)challenge,
                                       (int)sizeof challenge - 1, &p, end)) &&
        !lws_finalize_write_http_header(wsi, start, &p, end) &&
        (!b.len ||
         lws_write(wsi, (unsigned char *)b.p + LWS_PRE, b.len, LWS_WRITE_HTTP_FINAL) >= (int)b.len))
        rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    free(b.p);
    return rc;
}

/* Serves GET path; returns the callback result. */
static int serve(struct lws *wsi, const char *path)
{
    srv_server *srv = server_of(wsi);
    tbuf b = {0};
    unsigned status = HTTP_STATUS_OK;
    const char *ctype = "text/plain; charset=utf-8";
    bool op = srv_operator_is(srv, wsi);
    /* the operator's pages: on its listener, on the public one only with
     * --public-status */
    bool op_page = !strcmp(path, "/") || !strcmp(path, "/metrics") || !strcmp(path, "/status");
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) {
        status = HTTP_STATUS_METHOD_NOT_ALLOWED;
        tb_printf(&b, "only GET is served here\n");
    } else if (op_page && !op && !srv->cfg->public_status) {
        status = HTTP_STATUS_NOT_FOUND;
        tb_printf(&b, "not found here: %s is served on the operator's listener "
                      "(--operator-listen, 127.0.0.1:9080 by default); --public-status serves "
                      "it on this port too\n",
                  path);
    } else if (!strcmp(path, "/")) {
        ctype = "text/html; charset=utf-8";
        size_t n = 0;
        const char *page = srv_status_page(&n);
        tb_printf(&b, "%.*s", (int)n, page);
    } else if (!strcmp(path, "/healthz")) {
        bool ok = srv->engine && srv_engine_healthy(srv->engine) && !srv->shutting_down;
        status = ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE;
        tb_printf(&b, ok ? "ok\n" : "unavailable\n");
    } else if (!strcmp(path, "/metrics")) {
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        build_metrics(srv, &b);
    } else if (!strcmp(path, "/status")) {
        ctype = "application/json";
        build_status(srv, &b);
    } else if (!strcmp(path, RDV_WS_PATH) && !op) {
        status = HTTP_STATUS_BAD_REQUEST;
        tb_printf(&b, "open a WebSocket here with subprotocol %s\n", RDV_WS_SUBPROTOCOL);
    } else if (op) {
        status = HTTP_STATUS_NOT_FOUND;
        tb_printf(&b, "not found; the operator's listener serves / (status page), /healthz, "
                      "/metrics and /status\n");
    } else {
        status = HTTP_STATUS_NOT_FOUND;
        tb_printf(&b, "not found; try %s (WebSocket) or /healthz%s\n", RDV_WS_PATH,
                  srv->cfg->public_status ? ", / (status page), /metrics or /status" : "");
    }
    int rc;
    if (b.oom) {
        free(b.p);
        b = (tbuf){0};
        tb_printf(&b, "out of memory\n");
        status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
    }
    rc = b.oom ? -1 : respond(wsi, status, ctype, &b);
    free(b.p);
    return rc;
}

int srv_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        srv_server *srv = server_of(wsi);
        const char *path = in ? (const char *)in : "/";
        /* the admin API: on the operator's listener only (admin.h) */
        if (srv && srv_operator_is(srv, wsi) && !strncmp(path, "/admin/", 7))
            return srv_admin_http(srv, wsi, user, reason, path, len);
        return serve(wsi, path);
    }
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_CLOSED_HTTP: {
        srv_server *srv = server_of(wsi);
        if (srv && srv_operator_is(srv, wsi))
            return srv_admin_http(srv, wsi, user, reason, in, len);
        break;
    }
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
        /* wsi is the listener; in carries the accepted socket */
        srv_server *srv = server_of(wsi);
        const struct lws_filter_network_conn_args *filt = user;
        /* the operator's listener (loopback by default) is not subject to
         * the public listener's accept gate and per-address caps: its
         * metrics stay reachable while nodes exhaust them */
        if (srv && srv_operator_is(srv, wsi))
            return 0;
        if (srv && !srv_accept_gate_on_accept(srv, wsi, (int)(intptr_t)in))
            return 1;
        if (srv && filt && !srv_limits_handshake_allowed(srv, &filt->cli_addr))
            return 1;
        return 0;
    }
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: {
        srv_server *srv = server_of(wsi);
        if (srv && srv_operator_is(srv, wsi))
            return 0;
        return srv && srv_limits_handshake_begin(srv, wsi) != 0 ? -1 : 0;
    }
    case LWS_CALLBACK_WSI_DESTROY: {
        srv_server *srv = server_of(wsi);
        if (srv) {
            srv_limits_handshake_end(srv, wsi);
            srv_accept_gate_reassert(srv); /* lws resumed the listener on the close */
        }
        break;
    }
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* the wss:// vhost's SSL_CTX: TLS 1.2+, kept for reloads (tls.h) */
        return srv_tls_on_vhost_ctx(server_of(wsi), user) != 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* an upgrade that landed here asked for no (or no known) subprotocol */
        srv_server *srv = server_of(wsi);
        srv_debug(srv ? srv->log : NULL,
                  "refusing WebSocket upgrade without subprotocol %s", RDV_WS_SUBPROTOCOL);
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "request subprotocol " RDV_WS_SUBPROTOCOL);
        return 1;
    }
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
