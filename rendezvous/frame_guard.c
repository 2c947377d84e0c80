/* frame_guard.c - frames and unseen bytes per connection (see
 * frame_guard.h). */
#include "rendezvous/frame_guard.h"

#include <libwebsockets.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "rendezvous/conn.h"
#include "rendezvous/log.h"
#include "rendezvous/server.h"

static void close_flood(srv_server *srv, srv_conn *c, const char *what)
{
    srv->m.frame_floods++;
    char hex[RDV_NODE_ID_HEXLEN + 1] = "(unauthenticated)";
    if (c->state == SRV_CONN_AUTHED)
        srv_conn_node_hex(c, hex);
    srv_warn(srv->log, "closing %s: WebSocket frame flood (%s)", hex, what);
    srv_conn_close(srv, c, RDV_EC_RATE_LIMITED,
                   "WebSocket frame flood (pings, pongs or fragments); the connection is "
                   "closed",
                   LWS_CLOSE_STATUS_POLICY_VIOLATION);
}

/* One frame more in c's window. */
static bool count_frame(srv_server *srv, srv_conn *c)
{
    int64_t now = srv_mono_ms();
    if (now - c->frames_ms >= SRV_FRAME_GUARD_WINDOW_MS) {
        c->frames_ms = now;
        c->frames = 0;
    }
    if (++c->frames <= SRV_FRAME_GUARD_MAX)
        return true;
    close_flood(srv, c, "over 2000 fragments or pongs in a second");
    return false;
}

bool srv_frame_guard_rx(srv_server *srv, srv_conn *c, size_t len, bool frame_end, bool final)
{
    if (c->close_code)
        return false; /* already closing: drop whatever still comes */
    uint64_t seen = (uint64_t)len + len / 256 + (frame_end ? SRV_FRAME_GUARD_FRAME_BYTES : 0);
    c->rx_seen = c->rx_seen + seen > UINT32_MAX ? UINT32_MAX : (uint32_t)(c->rx_seen + seen);
    if (!frame_end)
        return true;
    /* a whole message in one frame is bounded elsewhere (--rate, relay) */
    bool fragment = !final || c->rx_fragmented;
    c->rx_fragmented = !final;
    return !fragment || count_frame(srv, c);
}

bool srv_frame_guard_pong(srv_server *srv, srv_conn *c)
{
    if (c->close_code)
        return false;
    c->rx_seen = c->rx_seen + 2 * SRV_FRAME_GUARD_FRAME_BYTES > UINT32_MAX
                     ? UINT32_MAX
                     : c->rx_seen + 2 * SRV_FRAME_GUARD_FRAME_BYTES; /* <= 125 B payload */
    return count_frame(srv, c);
}

/* Bytes lws (or OpenSSL) took off c's socket so far: what TCP received
 * (TCP_INFO) less what still waits in the receive queue; 0 when unknown. */
static uint64_t wire_bytes(srv_conn *c)
{
    int fd = c->wsi ? (int)lws_get_socket_fd(c->wsi) : -1;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    int queued = 0;
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0 ||
        tl < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received ||
        ioctl(fd, FIONREAD, &queued) != 0 || queued < 0 ||
        (uint64_t)queued > ti.tcpi_bytes_received)
        return 0;
    return ti.tcpi_bytes_received - (uint64_t)queued;
}

void srv_frame_guard_begin(srv_conn *c)
{
    c->rx_wire = wire_bytes(c); /* > 0: the upgrade request came first */
    c->rx_seen = 0;
    c->rx_debt = 0;
}

/* Bytes taken off c's socket since its last check, against what the
 * callbacks saw: the difference accumulates (less `decay`, the allowance
 * for the time since that check) and is checked against the slack of what
 * lws and OpenSSL may hold read but not yet parsed. */
static void check_conn(srv_server *srv, srv_conn *c, int64_t decay)
{
    if (!c->wsi || c->close_code)
        return;
    uint64_t wire = wire_bytes(c);
    uint32_t seen = c->rx_seen;
    c->rx_seen = 0;
    if (!wire)
        return;
    if (!c->rx_wire || wire < c->rx_wire) { /* unknown until now */
        c->rx_wire = wire;
        return;
    }
    int64_t debt = (int64_t)c->rx_debt + (int64_t)(wire - c->rx_wire) - (int64_t)seen - decay;
    c->rx_wire = wire;
    int64_t slack = SRV_FRAME_GUARD_HIDDEN_BYTES + SRV_FRAME_GUARD_TLS_RECORD +
                    (int64_t)srv->cfg->rx_buffer_size + 4096;
    c->rx_debt = debt < 0 ? 0 : debt > UINT32_MAX ? UINT32_MAX : (uint32_t)debt;
    if (debt > slack)
        close_flood(srv, c, "control frames the protocol never sees");
}

typedef struct tick_ctx {
    srv_server *srv;
    int64_t decay;
} tick_ctx;

static void check_node(srv_hnode *n, void *user)
{
    tick_ctx *t = user;
    check_conn(t->srv, srv_container_of(n, srv_conn, link.node), t->decay);
}

enum { TICKS_PER_ROUND = SRV_FRAME_GUARD_ROUND_MS / SRV_FRAME_GUARD_TICK_MS };

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    srv_frame_guard *g = lws_container_of(sul, srv_frame_guard, sul);
    srv_server *srv = lws_container_of(g, srv_server, guard);
    int64_t now = srv_mono_ms();
    /* the allowance: the previous pass's length, in rounds (a connection
     * was last checked about that long ago) */
    int64_t rounds = (g->last_pass_ms + SRV_FRAME_GUARD_ROUND_MS / 2) / SRV_FRAME_GUARD_ROUND_MS;
    tick_ctx t = {srv, SRV_FRAME_GUARD_DECAY_BYTES * (rounds < 1 ? 1 : rounds)};
    if (g->ticks == 0) { /* a pass begins */
        g->pass_ms = now;
        g->walked = false;
        int n = 0;
        for (srv_conn *c = srv->pending_head; c && n < SRV_FRAME_GUARD_PER_TICK; n++) {
            srv_conn *next = c->link.pending.next; /* c may close, not leave the list */
            check_conn(srv, c, t.decay);
            c = next;
        }
    }
    if (!g->walked) { /* this tick's slice of the node map, within the cap */
        size_t share = (srv->nodes.count + TICKS_PER_ROUND - 1) / TICKS_PER_ROUND;
        share = share < 1 ? 1 : share > SRV_FRAME_GUARD_PER_TICK ? SRV_FRAME_GUARD_PER_TICK : share;
        srv_hmap_each_from(&srv->nodes, &g->bucket, share, check_node, &t);
        g->walked = g->bucket == 0;
    }
    if (++g->ticks >= TICKS_PER_ROUND && g->walked) { /* the pass is over */
        g->last_pass_ms = now - g->pass_ms + SRV_FRAME_GUARD_TICK_MS;
        g->ticks = 0;
    }
    lws_sul_schedule(srv->ctx, 0, &g->sul, tick_cb,
                     (lws_usec_t)SRV_FRAME_GUARD_TICK_MS * LWS_US_PER_MS);
}

void srv_frame_guard_start(srv_server *srv)
{
    srv_frame_guard *g = &srv->guard;
    g->bucket = 0;
    g->ticks = 0;
    g->walked = false;
    g->last_pass_ms = SRV_FRAME_GUARD_ROUND_MS;
    lws_sul_schedule(srv->ctx, 0, &g->sul, tick_cb,
                     (lws_usec_t)SRV_FRAME_GUARD_TICK_MS * LWS_US_PER_MS);
}

void srv_frame_guard_stop(srv_server *srv)
{
    lws_sul_cancel(&srv->guard.sul);
}
