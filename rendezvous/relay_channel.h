/* relay_channel.h - the relay channel (PROTOCOL.md 9.5): a node's second
 * WebSocket, subprotocol rendezvous.relay.v1, that carries only relay
 * data, with a large receive buffer that only nodes using it pay for.
 *
 * A channel authenticates like the main connection (challenge, hello,
 * welcome) but is bound to the node's main connection here: it gets no
 * presence entry and replaces nothing but an older channel. Relay data
 * it carries counts as sent on the main connection; relay data for the
 * node goes down the channel while it has one. The main connection's end
 * closes the channel; the channel's end leaves the main one alone.
 *
 * Channels live in srv->channels (node ID -> srv_conn, through the
 * connection's link.node, unused by a channel once authenticated). A
 * channel's `serial` is its main connection's, so a newer main connection
 * of the same node never adopts it.
 */
#ifndef SRV_RELAY_CHANNEL_H
#define SRV_RELAY_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/conn.h"

struct srv_server;

/* The channel's WebSocket subprotocol. */
#define SRV_RELAY_CHANNEL_SUBPROTOCOL "rendezvous.relay.v1"

/* lws rx_buffer_size of the channel's protocol: one read (and one receive
 * callback) takes up to this many bytes, several 16 KiB relay frames. */
#define SRV_RELAY_CHANNEL_RX_BUFFER 65536

/* Creates the (empty) channel table. Returns 0 or -1 (out of memory). */
int srv_channel_init(struct srv_server *srv);

/* Frees the table (the connections are lws'). */
void srv_channel_free(struct srv_server *srv);

/* The hello of channel ch has verified (its node_id is set, still
 * PENDING): binds it to the node's main connection here and makes it
 * AUTHED, closing an older channel of the node (`replaced`). Returns
 * RDV_EC_NONE, or RDV_EC_NOT_AUTHENTICATED (with *why) when the node has
 * no authenticated main connection on this server: nothing changed. */
rdv_ec srv_channel_attach(struct srv_server *srv, srv_conn *ch, const char **why);

/* The main connection of channel ch, or NULL when it is gone or closing. */
srv_conn *srv_channel_main(struct srv_server *srv, const srv_conn *ch);

/* The connection relay data for main connection c goes down: its channel
 * once delivery switched to it (srv_channel_ping_seen), else c. */
srv_conn *srv_channel_out(struct srv_server *srv, srv_conn *c);

/* Main connection c sent `ping` (its pong is queued on c): when c has a
 * channel, relay data for the node goes down it from now on. Everything
 * sent on c before stays ahead of the pong, which marks the switch for the
 * node (PROTOCOL.md 9.5). */
void srv_channel_ping_seen(struct srv_server *srv, srv_conn *c);

/* Where c's relay data goes now: the same as srv_channel_out. */
srv_conn *srv_channel_current(struct srv_server *srv, srv_conn *c);

/* Main connection c is ending (closed by us or by its node): closes its
 * channel. No-op for channels and connections that never authenticated. */
void srv_channel_main_ends(struct srv_server *srv, srv_conn *c);

/* Channel ch is gone (LWS_CALLBACK_CLOSED): leaves the table. */
void srv_channel_gone(struct srv_server *srv, srv_conn *ch);

/* A parsed message of `type` arrived on channel ch: true when it may be
 * acted on (hello, ping, pong, relayData); otherwise ch got
 * unsupported_type and false. */
bool srv_channel_accepts(struct srv_server *srv, srv_conn *ch, rdv_msg_type type,
                         const char *ref);

#endif
