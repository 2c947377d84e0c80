/* conn.c - receive reassembly, the bounded outbound queue and closing of
 * one connection (see conn.h).
 *
 * Receive: libwebsockets hands a message to LWS_CALLBACK_RECEIVE in pieces
 * of at most the protocol's rx_buffer_size. A message that arrives whole is
 * processed straight from lws' buffer; otherwise the pieces are appended to
 * c->rx_buf (grown up to --max-message-bytes, freed after the message).
 *
 * Send: a message for an authenticated node whose queue is empty, while
 * lws holds none of its earlier output, is written at once (copied into a
 * stack buffer with LWS_PRE bytes of headroom, or for a relay frame over
 * 4 KiB the server's one SRV_TX_BIG buffer): no heap copy, and no
 * service round for a writeable callback. When the kernel takes only part
 * of it, lws keeps the rest (lws_partial_buffered) and asks for writeable
 * itself; until that has drained, messages are queued. Otherwise every
 * message is copied once into a heap block with LWS_PRE bytes of headroom
 * and written from LWS_CALLBACK_SERVER_WRITEABLE, up to WRITES_PER_CALLBACK
 * per callback while lws buffers nothing.
 */
#include "rendezvous/conn.h"
#include "rendezvous/keepalive.h"

#include <libwebsockets.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/auth.h"
#include "rendezvous/conn_limits.h"
#include "rendezvous/log.h"
#include "rendezvous/relay.h"
#include "rendezvous/relay_channel.h"
#include "rendezvous/replay.h"
#include "rendezvous/route.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

/* lws_write() type of a WebSocket close frame: private to lws 4.1.6
 * (roles/ws/private-lib-roles-ws.h), same value in every 4.x. */
#define SRV_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* Most queued messages written in one WRITEABLE callback. */
#define WRITES_PER_CALLBACK 32

/* Largest message written directly from a stack copy; up to SRV_TX_BIG
 * (a relay frame) from the server's big buffer; longer ones queue. */
#define DIRECT_WRITE_MAX 4096

/* Bound on how long a closing connection may take to drain (seconds). */
#define CLOSE_DRAIN_SECS 5

void srv_conn_node_hex(const srv_conn *c, char out[RDV_NODE_ID_HEXLEN + 1])
{
    sodium_bin2hex(out, RDV_NODE_ID_HEXLEN + 1, c->node_id, RDV_NODE_ID_BYTES);
}

/* Appends a copy of data to c's queue regardless of the cap. */
static int enqueue(srv_conn *c, const void *data, size_t len, bool binary)
{
    if (len > UINT32_MAX - c->out_bytes)
        return -1;
    srv_outmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return -1;
    m->next = NULL;
    m->len = (uint32_t)len;
    m->binary = binary;
    memcpy(m->buf + LWS_PRE, data, len);
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    c->out_bytes += (uint32_t)len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

/* Frees every queued message; returns how many there were. */
static uint64_t drop_queue(srv_conn *c)
{
    uint64_t n = 0;
    while (c->out_head) {
        srv_outmsg *m = c->out_head;
        c->out_head = m->next;
        free(m);
        n++;
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    return n;
}

int srv_conn_send_backlog(srv_server *srv, srv_conn *c, const void *data, size_t len)
{
    if (c->close_code)
        return -1;
    if (enqueue(c, data, len, false) != 0) {
        srv_error(srv->log, "out of memory queueing %zu bytes of backlog", len);
        return -1;
    }
    return 0;
}

/* Writes data to c now when nothing is waiting before it (see the header
 * comment). Returns 1 when written, 0 when it must be queued, -1 when the
 * socket failed (c is then being closed). */
static int write_now(srv_server *srv, srv_conn *c, const void *data, size_t len, bool binary)
{
    if (c->out_head || c->state != SRV_CONN_AUTHED || lws_partial_buffered(c->wsi))
        return 0;
    uint8_t stack[LWS_PRE + DIRECT_WRITE_MAX];
    uint8_t *buf = stack;
    if (len > DIRECT_WRITE_MAX) {
        /* relay frames: the loop's one big buffer (server.h) */
        if (len > SRV_TX_BIG || !srv->tx_big)
            return 0;
        buf = srv->tx_big;
    }
    memcpy(buf + LWS_PRE, data, len);
    if (lws_write(c->wsi, buf + LWS_PRE, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
        (int)len) {
        /* possibly inside another connection's callback: close c from the
         * loop (lws' way of closing a connection asynchronously) */
        c->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        c->close_sent = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return -1;
    }
    srv->m.bytes_out += len;
    return 1;
}

int srv_conn_send(srv_server *srv, srv_conn *c, const void *data, size_t len, bool binary)
{
    if (c->close_code)
        return -1;
    int direct = write_now(srv, c, data, len, binary);
    if (direct != 0)
        return direct > 0 ? 0 : -1;
    if ((uint64_t)c->out_bytes + len > srv->cfg->send_queue_max) {
        srv->m.dropped[SRV_DROP_SLOW_CONSUMER] += drop_queue(c) + 1;
        char hex[RDV_NODE_ID_HEXLEN + 1] = "(unauthenticated)";
        if (c->state == SRV_CONN_AUTHED)
            srv_conn_node_hex(c, hex);
        srv_warn(srv->log, "closing slow consumer %s: over %zu bytes waiting", hex,
                 srv->cfg->send_queue_max);
        srv_conn_close(srv, c, RDV_EC_SLOW_CONSUMER,
                       "you did not read fast enough and your send queue overflowed; "
                       "read continuously and reconnect",
                       LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return -1;
    }
    if (enqueue(c, data, len, binary) != 0) {
        srv_error(srv->log, "out of memory queueing %zu bytes", len);
        return -1;
    }
    return 0;
}

int srv_conn_send_json(srv_server *srv, srv_conn *c, rdv_msg_type type, json_t *body)
{
    json_t *env = rdv_msg_wrap(type, body);
    if (!env)
        return -1;
    size_t len = 0;
    char *text = rdv_msg_dump(env, &len);
    json_decref(env);
    if (!text)
        return -1;
    int rc = srv_conn_send(srv, c, text, len, false);
    free(text);
    return rc;
}

/* A JSON string of at most max bytes of s, non-printable-ASCII replaced by
 * '?' (echoed input may be truncated mid-character). NULL on OOM. */
static json_t *safe_string(const char *s, size_t max)
{
    char buf[RDV_MAX_TEXT + 1];
    size_t n = strnlen(s, max < RDV_MAX_TEXT ? max : RDV_MAX_TEXT);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
    }
    buf[n] = '\0';
    return json_stringn(buf, n);
}

/* Builds the body of an error message; NULL on OOM. */
static json_t *error_body(rdv_ec code, const char *message, const char *ref, const char *type,
                          const char *field)
{
    json_t *b = json_object();
    if (!b)
        return NULL;
    if (!message || !*message)
        message = rdv_ec_hint(code);
    int bad = json_object_set_new(b, "code", json_string(rdv_ec_name(code)));
    bad |= json_object_set_new(b, "message", safe_string(message, RDV_MAX_TEXT));
    if (ref && *ref)
        bad |= json_object_set_new(b, "ref", safe_string(ref, RDV_MAX_REQUEST_ID));
    if (type && *type)
        bad |= json_object_set_new(b, "type", safe_string(type, 64));
    if (field && *field)
        bad |= json_object_set_new(b, "field", safe_string(field, 128));
    if (bad) {
        json_decref(b);
        return NULL;
    }
    return b;
}

int srv_conn_send_error(srv_server *srv, srv_conn *c, rdv_ec code, const char *message,
                        const char *ref, const char *type, const char *field)
{
    json_t *b = error_body(code, message, ref, type, field);
    if (!b)
        return -1;
    if ((unsigned)code < RDV_EC__COUNT)
        srv->m.errors_sent[code]++;
    srv_debug(srv->log, "error %s to connection %p: %s", rdv_ec_name(code), (void *)c,
              message ? message : rdv_ec_hint(code));
    return srv_conn_send_json(srv, c, RDV_MSG_ERROR, b);
}

void srv_conn_close(srv_server *srv, srv_conn *c, rdv_ec code, const char *message,
                    uint16_t close_code)
{
    if (c->close_code)
        return;
    srv_channel_main_ends(srv, c); /* a main connection's channel goes with it */
    if (code != RDV_EC_NONE) {
        json_t *b = error_body(code, message, NULL, NULL, NULL);
        json_t *env = b ? rdv_msg_wrap(RDV_MSG_ERROR, b) : NULL;
        size_t len = 0;
        char *text = env ? rdv_msg_dump(env, &len) : NULL;
        json_decref(env);
        if (text && enqueue(c, text, len, false) == 0 && (unsigned)code < RDV_EC__COUNT)
            srv->m.errors_sent[code]++;
        free(text);
    }
    srv_auth_forget(srv, c);
    c->state = SRV_CONN_CLOSING;
    c->close_code = close_code ? close_code : LWS_CLOSE_STATUS_NORMAL;
    free(c->rx_buf);
    c->rx_buf = NULL;
    c->rx_len = c->rx_cap = 0;
    /* its relay sessions end now (the peers are told), not at the TCP close */
    srv_relay_conn_gone(&srv->relay, srv, c,
                        code == RDV_EC_REPLACED        ? SRV_RELAY_END_REPLACED
                        : code == RDV_EC_REVOKED       ? SRV_RELAY_END_REVOKED
                        : code == RDV_EC_SHUTTING_DOWN ? SRV_RELAY_END_SHUTDOWN
                                                       : SRV_RELAY_END_DISCONNECTED);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_DRAIN_SECS);
    lws_callback_on_writable(c->wsi);
}

/* True when s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). lws 4.1.6 checks text frames only
 * with LWS_SERVER_OPTION_VALIDATE_UTF8, and then fails the connection
 * without a word; checked here so that the node learns why (PROTOCOL.md 2). */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t w;
        if (n - i >= sizeof w) { /* ASCII runs 8 bytes at a time */
            memcpy(&w, s + i, sizeof w);
            if (!(w & 0x8080808080808080ull)) {
                i += sizeof w;
                continue;
            }
        }
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (b >= 0xC2 && b <= 0xDF)
            len = 2;
        else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            if (b == 0xE0)
                lo = 0xA0; /* overlong */
            else if (b == 0xED)
                hi = 0x9F; /* U+D800..U+DFFF */
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            if (b == 0xF0)
                lo = 0x90; /* overlong */
            else if (b == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else
            return false;
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/* Hands one complete message to the router after the rate limiter.
 * Relay data (binary frames, compact text relayData) is exempt from the
 * per-message limit: relay.c charges its bytes to the relay buckets, and
 * charges refused relay data to the message bucket itself.
 * A text message that is not UTF-8 fails the connection with 1007 (RFC
 * 6455 8.1 and 7.4.1), after error bad_json. */
static int deliver(srv_server *srv, srv_conn *c, const uint8_t *data, size_t len, bool binary)
{
    if (binary)
        return srv_route_binary(srv, c, data, len);
    if (!utf8_valid(data, len)) {
        srv_conn_close(srv, c, RDV_EC_BAD_JSON,
                       "text frame is not valid UTF-8 (RFC 6455 8.1); the connection is "
                       "closed with 1007",
                       LWS_CLOSE_STATUS_INVALID_PAYLOAD);
        return 0;
    }
    if (!srv_relay_is_data_text(data, len) && !srv_limits_admit(srv, c))
        return 0;
    return srv_route_message(srv, c, data, len);
}

/* Oversize: error too_large and close 1009. */
static void too_large(srv_server *srv, srv_conn *c)
{
    char msg[128];
    snprintf(msg, sizeof msg, "message over the limit of %zu bytes; the connection is closed",
             srv->cfg->max_message_bytes);
    srv_conn_close(srv, c, RDV_EC_TOO_LARGE, msg, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
}

int srv_conn_on_receive(srv_server *srv, srv_conn *c, const uint8_t *in, size_t len)
{
    struct lws *wsi = c->wsi;
    bool final = lws_is_final_fragment(wsi);
    size_t max = srv->cfg->max_message_bytes;
    srv->m.bytes_in += len;
    if (c->close_code)
        return 0;
    if (!c->rx_buf && final) {
        if (len > max) {
            too_large(srv, c);
            return 0;
        }
        return deliver(srv, c, in, len, lws_frame_is_binary(wsi));
    }
    size_t need = (size_t)c->rx_len + len;
    if (need > max) {
        too_large(srv, c);
        return 0;
    }
    if (!c->rx_buf)
        c->rx_binary = (uint8_t)lws_frame_is_binary(wsi);
    if (need > c->rx_cap) {
        /* size for the rest of this frame at once; at least double */
        size_t want = need + lws_remaining_packet_payload(wsi);
        if (want < (size_t)c->rx_cap * 2)
            want = (size_t)c->rx_cap * 2;
        if (want > max)
            want = max;
        if (want < need)
            want = need;
        uint8_t *nb = realloc(c->rx_buf, want);
        if (!nb) {
            srv_error(srv->log, "out of memory reassembling a %zu-byte message", need);
            srv_conn_close(srv, c, RDV_EC_INTERNAL, "server out of memory",
                           LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
            return 0;
        }
        c->rx_buf = nb;
        c->rx_cap = (uint32_t)want;
    }
    memcpy(c->rx_buf + c->rx_len, in, len);
    c->rx_len = (uint32_t)need;
    if (!final)
        return 0;
    uint8_t *buf = c->rx_buf;
    size_t blen = c->rx_len;
    bool binary = c->rx_binary;
    c->rx_buf = NULL;
    c->rx_len = c->rx_cap = 0;
    int rc = deliver(srv, c, buf, blen, binary);
    free(buf);
    return rc;
}

/* The closing handshake, done here rather than by lws: lws 4.1.6 hangs up
 * right after its close frame, and a peer still sending then gets a TCP
 * reset that destroys the error and close frame it has not read yet. So
 * we send the close frame ourselves and keep reading (and dropping) until
 * the peer answers with its close (srv_conn_on_peer_close) or the drain
 * timeout set by srv_conn_close() expires. */
static int send_close(srv_server *srv, srv_conn *c)
{
    uint8_t frame[LWS_PRE + 2];
    frame[LWS_PRE] = (uint8_t)(c->close_code >> 8);
    frame[LWS_PRE + 1] = (uint8_t)(c->close_code & 0xff);
    c->close_sent = 1;
    if (lws_write(c->wsi, frame + LWS_PRE, 2, SRV_LWS_WRITE_CLOSE) < 0)
        return -1;
    srv->m.bytes_out += 2;
    return 0;
}

int srv_conn_on_peer_close(srv_conn *c)
{
    /* our close frame went out first: this is the answer, hang up;
     * otherwise let lws echo the peer's close */
    return c->close_sent ? -1 : 0;
}

int srv_conn_on_writeable(srv_server *srv, srv_conn *c)
{
    if (c->ping_due && !c->close_code) {
        if (srv_keepalive_write(c) != 0)
            return -1;
        if (lws_partial_buffered(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    if (!c->out_head) {
        if (c->close_code && !c->close_sent)
            return send_close(srv, c);
        return 0;
    }
    /* Several messages per callback while the socket takes them: a service
     * round per message would cost a poll() over every connection. */
    for (int n = 0; c->out_head && n < WRITES_PER_CALLBACK; n++) {
        if (n > 0 && lws_partial_buffered(c->wsi))
            break; /* the kernel took only part: wait for writeable */
        srv_outmsg *m = c->out_head;
        c->out_head = m->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_bytes -= m->len;
        size_t len = m->len;
        int w = lws_write(c->wsi, m->buf + LWS_PRE, len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        free(m);
        if (w < (int)len)
            return -1;
        srv->m.bytes_out += len;
    }
    /* more to send, or a close to perform once lws has flushed the last */
    if (c->out_head || c->close_code)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void srv_conn_release(srv_conn *c)
{
    drop_queue(c);
    free(c->cert);
    c->cert = NULL;
    free(c->rx_buf);
    c->rx_buf = NULL;
    c->rx_len = c->rx_cap = 0;
    srv_replay_free(&c->replay);
}
