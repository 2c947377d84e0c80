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

void srv_frame_guard_check(srv_server *srv, srv_conn *c, int64_t decay)
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
