/* relay_channel.c - the relay channel (see relay_channel.h). */
#include "rendezvous/relay_channel.h"

#include <libwebsockets.h>
#include <stdio.h>

#include "rendezvous/auth.h"
#include "rendezvous/log.h"
#include "rendezvous/presence.h"
#include "rendezvous/server.h"

int srv_channel_init(srv_server *srv)
{
    return srv_hmap_init(&srv->channels, RDV_NODE_ID_BYTES,
                         (ptrdiff_t)offsetof(srv_conn, node_id) -
                             (ptrdiff_t)offsetof(srv_conn, link.node));
}

void srv_channel_free(srv_server *srv)
{
    srv_hmap_free(&srv->channels);
}

/* The channel registered for node id, or NULL. */
static srv_conn *find(srv_server *srv, const uint8_t id[RDV_NODE_ID_BYTES])
{
    if (!srv->channels.count)
        return NULL;
    srv_hnode *n = srv_hmap_get(&srv->channels, id);
    return n ? srv_container_of(n, srv_conn, link.node) : NULL;
}

rdv_ec srv_channel_attach(srv_server *srv, srv_conn *ch, const char **why)
{
    srv_conn *main_c = srv_presence_find(srv, ch->node_id);
    if (!main_c || main_c->state != SRV_CONN_AUTHED || main_c->close_code) {
        *why = "a relay channel needs this node's main connection (rendezvous.v1) "
               "authenticated on this server first; use the main connection";
        return RDV_EC_NOT_AUTHENTICATED;
    }
    srv_auth_forget(srv, ch);
    ch->state = SRV_CONN_AUTHED;
    ch->serial = main_c->serial;
    srv_conn *old = find(srv, ch->node_id);
    if (old) {
        srv_hmap_del(&srv->channels, &old->link.node);
        srv_conn_close(srv, old, RDV_EC_REPLACED,
                       "this node opened a newer relay channel; this one is closed", 4001);
    }
    ch->link.node.next = NULL;
    srv_hmap_put(&srv->channels, &ch->link.node);
    return RDV_EC_NONE;
}

srv_conn *srv_channel_main(srv_server *srv, const srv_conn *ch)
{
    srv_conn *m = srv_presence_find(srv, ch->node_id);
    if (!m || m->serial != ch->serial || m->state != SRV_CONN_AUTHED || m->close_code)
        return NULL;
    return m;
}

srv_conn *srv_channel_out(srv_server *srv, srv_conn *c)
{
    srv_conn *ch = find(srv, c->node_id);
    if (!ch || ch->serial != c->serial || ch->state != SRV_CONN_AUTHED || ch->close_code)
        return c;
    if (!ch->chan_live)
        return c; /* until srv_channel_ping_seen() */
    return ch;
}

void srv_channel_ping_seen(srv_server *srv, srv_conn *c)
{
    if (c->channel || c->state != SRV_CONN_AUTHED)
        return;
    srv_conn *ch = find(srv, c->node_id);
    if (ch && ch->serial == c->serial && ch->state == SRV_CONN_AUTHED && !ch->close_code)
        ch->chan_live = 1;
}

srv_conn *srv_channel_current(srv_server *srv, srv_conn *c)
{
    srv_conn *ch = find(srv, c->node_id);
    if (!ch || !ch->chan_live || ch->serial != c->serial || ch->state != SRV_CONN_AUTHED ||
        ch->close_code)
        return c;
    return ch;
}

void srv_channel_main_ends(srv_server *srv, srv_conn *c)
{
    if (c->channel || c->state != SRV_CONN_AUTHED)
        return;
    srv_conn *ch = find(srv, c->node_id);
    if (!ch || ch->serial != c->serial)
        return;
    srv_hmap_del(&srv->channels, &ch->link.node);
    srv_conn_close(srv, ch, RDV_EC_NONE, NULL, LWS_CLOSE_STATUS_NORMAL);
}

void srv_channel_gone(srv_server *srv, srv_conn *ch)
{
    if (!ch->channel || ch->state == SRV_CONN_PENDING)
        return;
    if (find(srv, ch->node_id) == ch)
        srv_hmap_del(&srv->channels, &ch->link.node);
}

bool srv_channel_accepts(srv_server *srv, srv_conn *ch, rdv_msg_type type, const char *ref)
{
    if (type == RDV_MSG_HELLO || type == RDV_MSG_PING || type == RDV_MSG_PONG ||
        type == RDV_MSG_RELAY_DATA)
        return true;
    char m[200];
    snprintf(m, sizeof m,
             "%.32s is not accepted on a relay channel (rendezvous.relay.v1: relay data and "
             "ping only); send it on the main connection",
             rdv_msg_type_name(type));
    (void)srv_conn_send_error(srv, ch, RDV_EC_UNSUPPORTED_TYPE, m, ref, rdv_msg_type_name(type),
                              NULL);
    return false;
}
