/* conn_limits.c - token bucket and connection counting (see conn_limits.h).
 *
 * Token bucket: `rate` tokens per second up to `burst`; each message takes
 * one. A message with no token is dropped with `rate_limited`. Refusals
 * ("strikes") accumulate until the bucket has refilled completely (the node
 * paused); `burst` strikes before that is a sustained flood and closes the
 * connection with 1008.
 */
#include "rendezvous/conn_limits.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rendezvous/conn.h"
#include "rendezvous/hmap.h"
#include "rendezvous/log.h"
#include "rendezvous/server.h"

/* At most one "refusing connections" line this often. */
#define HANDSHAKE_LOG_MS 10000

/* The 16-byte key, text form and port of a socket address; 0 or -1. */
static int address_key(const struct sockaddr_storage *ss, uint8_t key[16], char *text,
                       size_t textlen, uint16_t *port)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        memcpy(key, v4mapped, 12);
        memcpy(key + 12, &s4->sin_addr, 4);
        *port = ntohs(s4->sin_port);
        if (!inet_ntop(AF_INET, &s4->sin_addr, text, (socklen_t)textlen))
            return -1;
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        memcpy(key, &s6->sin6_addr, 16);
        *port = ntohs(s6->sin6_port);
        const void *src = &s6->sin6_addr;
        int af = AF_INET6;
        if (!memcmp(key, v4mapped, 12)) {
            src = key + 12;
            af = AF_INET;
        }
        if (!inet_ntop(af, src, text, (socklen_t)textlen))
            return -1;
        return 0;
    }
    return -1;
}

int srv_peer_address(struct lws *wsi, uint8_t key[16], char *text, size_t textlen,
                     uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = (int)lws_get_socket_fd(wsi);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    return address_key(&ss, key, text, textlen, port);
}

/* The counter entry of address key, created (count 0) when missing;
 * NULL when out of memory. */
static srv_ip_entry *ip_entry(srv_server *srv, const uint8_t key[16])
{
    srv_hnode *n = srv_hmap_get(&srv->ips, key);
    if (n)
        return srv_container_of(n, srv_ip_entry, node);
    srv_ip_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    memcpy(e->addr, key, 16);
    srv_hmap_put(&srv->ips, &e->node);
    return e;
}

/* Frees e once nothing counts on it. */
static void ip_entry_unref(srv_server *srv, srv_ip_entry *e)
{
    if (e->count == 0 && e->handshakes == 0) {
        srv_hmap_del(&srv->ips, &e->node);
        free(e);
    }
}

bool srv_limits_handshake_allowed(srv_server *srv, const struct sockaddr_storage *from)
{
    int cap = srv->cfg->max_handshakes_per_ip;
    if (cap <= 0)
        return true;
    uint8_t key[16];
    char text[64];
    uint16_t port;
    if (address_key(from, key, text, sizeof text, &port) != 0)
        return true; /* not IP (never on this listener): nothing to count */
    srv_hnode *n = srv_hmap_get(&srv->ips, key);
    if (!n || srv_container_of(n, srv_ip_entry, node)->handshakes < (uint32_t)cap)
        return true;
    srv->m.handshakes_refused++;
    srv->m.connections_refused++;
    int64_t now = srv_mono_ms();
    if (!srv->handshake_log_ms || now - srv->handshake_log_ms >= HANDSHAKE_LOG_MS) {
        srv->handshake_log_ms = now;
        srv_warn(srv->log,
                 "refusing connections from %s: %d of its connections have not finished "
                 "the WebSocket upgrade (--max-handshakes-per-ip %d; %llu refused in all)",
                 text, cap, cap, (unsigned long long)srv->m.handshakes_refused);
    }
    return false;
}

int srv_limits_handshake_begin(srv_server *srv, struct lws *wsi)
{
    uint8_t key[16];
    char text[64];
    uint16_t port;
    if (srv_peer_address(wsi, key, text, sizeof text, &port) != 0)
        return 0; /* not a TCP peer: nothing to count */
    srv_ip_entry *e = ip_entry(srv, key);
    if (!e)
        return -1;
    e->handshakes++;
    lws_set_opaque_user_data(wsi, e);
    return 0;
}

void srv_limits_handshake_end(srv_server *srv, struct lws *wsi)
{
    srv_ip_entry *e = lws_get_opaque_user_data(wsi);
    if (!e)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    if (e->handshakes)
        e->handshakes--;
    ip_entry_unref(srv, e);
}

bool srv_limits_accept(srv_server *srv, struct lws *wsi)
{
    if (srv->shutting_down)
        return false;
    const srv_config *cfg = srv->cfg;
    if (cfg->max_connections > 0 && srv->m.connections >= (uint64_t)cfg->max_connections) {
        srv->m.connections_refused++;
        srv_warn(srv->log, "refusing connection: --max-connections %d reached",
                 cfg->max_connections);
        return false;
    }
    if (cfg->max_connections_per_ip > 0) {
        uint8_t key[16];
        char text[64];
        uint16_t port;
        if (srv_peer_address(wsi, key, text, sizeof text, &port) != 0)
            return false;
        srv_hnode *n = srv_hmap_get(&srv->ips, key);
        if (n && srv_container_of(n, srv_ip_entry, node)->count >=
                     (uint32_t)cfg->max_connections_per_ip) {
            srv->m.connections_refused++;
            srv_warn(srv->log, "refusing connection from %s: --max-connections-per-ip %d reached",
                     text, cfg->max_connections_per_ip);
            return false;
        }
    }
    return true;
}

int srv_limits_attach(srv_server *srv, srv_conn *c)
{
    uint8_t key[16];
    char text[64];
    uint16_t port = 0;
    c->tokens = (float)srv->cfg->burst;
    c->bucket_ms = srv_mono_ms();
    if (srv_peer_address(c->wsi, key, text, sizeof text, &port) != 0)
        memset(key, 0, sizeof key);
    c->observed_port = port;
    srv_ip_entry *e = ip_entry(srv, key);
    if (!e)
        return -1;
    e->count++;
    c->ip = e;
    srv->m.connections++;
    srv->m.connections_total++;
    return 0;
}

void srv_limits_detach(srv_server *srv, srv_conn *c)
{
    srv_ip_entry *e = c->ip;
    if (!e)
        return;
    c->ip = NULL;
    if (srv->m.connections)
        srv->m.connections--;
    if (e->count)
        e->count--;
    ip_entry_unref(srv, e);
}

bool srv_limits_admit(srv_server *srv, srv_conn *c)
{
    const srv_config *cfg = srv->cfg;
    int64_t now = srv_mono_ms();
    int64_t dt = now - c->bucket_ms;
    if (dt > 0) {
        float t = c->tokens + (float)dt * (float)cfg->rate / 1000.0f;
        if (t >= (float)cfg->burst) {
            t = (float)cfg->burst;
            c->strikes = 0; /* the node paused long enough: forgive */
        }
        c->tokens = t;
        c->bucket_ms = now;
    }
    if (c->tokens >= 1.0f) {
        c->tokens -= 1.0f;
        return true;
    }
    srv->m.rate_limited++;
    srv->m.dropped[SRV_DROP_RATE_LIMITED]++;
    unsigned limit = cfg->burst < 10 ? 10u : cfg->burst > 60000 ? 60000u : (unsigned)cfg->burst;
    if (++c->strikes >= limit) {
        char hex[RDV_NODE_ID_HEXLEN + 1] = "(unauthenticated)";
        if (c->state == SRV_CONN_AUTHED)
            srv_conn_node_hex(c, hex);
        srv_warn(srv->log, "closing %s: sustained flood over %d messages/s", hex, cfg->rate);
        srv_conn_close(srv, c, RDV_EC_RATE_LIMITED,
                       "sustained message flood over the rate limit; the connection is closed",
                       LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return false;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "over %d messages per second (burst %d); the message was dropped",
             cfg->rate, cfg->burst);
    (void)srv_conn_send_error(srv, c, RDV_EC_RATE_LIMITED, msg, NULL, NULL, NULL);
    return false;
}
