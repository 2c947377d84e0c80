/* keepalive.c - pings and the idle close from the sweep (see
 * keepalive.h). */
#include "rendezvous/keepalive.h"

#include <libwebsockets.h>
#include <string.h>

#include "rendezvous/log.h"
#include "rendezvous/server.h"

/* now (monotonic ms) in the deciseconds of srv_conn.alive_ds; never 0 */
static uint32_t to_ds(int64_t now)
{
    uint32_t ds = (uint32_t)(now / 100);
    return ds ? ds : 1;
}

void srv_keepalive_start(srv_conn *c, int64_t now)
{
    c->alive_ds = to_ds(now);
    c->ping_sent = 0;
    c->ping_due = 0;
}

void srv_keepalive_pong(srv_conn *c, int64_t now)
{
    c->alive_ds = to_ds(now);
    c->ping_sent = 0;
}

void srv_keepalive_check(srv_server *srv, srv_conn *c, int64_t now)
{
    if (!c->wsi || c->close_code || !c->alive_ds)
        return;
    /* unsigned: the monotonic deciseconds wrap after 13 years */
    int64_t quiet = (int64_t)(uint32_t)(to_ds(now) - c->alive_ds) * 100;
    if (quiet >= srv->cfg->idle_timeout_ms) {
        char hex[RDV_NODE_ID_HEXLEN + 1] = "(unauthenticated)";
        if (c->state == SRV_CONN_AUTHED)
            srv_conn_node_hex(c, hex);
        srv_info(srv->log, "closing %s%s: no pong for %lld ms (--idle-timeout)", hex,
                 c->channel ? "'s relay channel" : "", (long long)quiet);
        /* lws' way of dropping a connection from outside its callbacks */
        c->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        c->close_sent = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    if (quiet >= srv->cfg->ping_interval_ms && !c->ping_sent) {
        c->ping_sent = 1;
        c->ping_due = 1;
        lws_callback_on_writable(c->wsi);
    }
}

int srv_keepalive_write(srv_conn *c)
{
    if (!c->ping_due)
        return 0;
    c->ping_due = 0;
    /* a payload: lws 4.1.6 hands only non-empty pongs to the protocol
     * (ops-ws.c: an empty one ends at already_done), and the pong echoes it */
    uint8_t buf[LWS_PRE + sizeof SRV_KEEPALIVE_PING - 1];
    memcpy(buf + LWS_PRE, SRV_KEEPALIVE_PING, sizeof SRV_KEEPALIVE_PING - 1);
    return lws_write(c->wsi, buf + LWS_PRE, sizeof SRV_KEEPALIVE_PING - 1, LWS_WRITE_PING) < 0
               ? -1
               : 0;
}
