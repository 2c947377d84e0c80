/* relay_channel.c - the node's relay channel (see relay_channel.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <libwebsockets.h>

#include "client/client.h"
#include "client/direct.h"
#include "client/log.h"
#include "client/proto.h"
#include "schema/wire_limits.h"

/* Most queued frames written per writeable callback. */
#define CHAN_WRITES_PER_CALLBACK 16

static int on_text(rdv_client *c, const char *text, size_t len);

void rdv__chan_init(rdv_client *c)
{
    memset(&c->chan, 0, sizeof(c->chan));
    c->chan.reg_fd = -1;
}

/* Removes and returns the queue. (L held) */
static rdv__outmsg *take_queue_locked(rdv__chan *ch)
{
    rdv__outmsg *m = ch->q_head;
    ch->q_head = ch->q_tail = NULL;
    ch->q_count = ch->q_bytes = 0;
    return m;
}

static void free_list(rdv__outmsg *m)
{
    while (m) {
        rdv__outmsg *n = m->next;
        free(m);
        m = n;
    }
}

void rdv__chan_free(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    rdv__outmsg *m = take_queue_locked(&c->chan);
    c->chan.ready = false;
    pthread_mutex_unlock(&c->lock);
    free_list(m);
    free_list(c->chan.held_head);
    c->chan.held_head = c->chan.held_tail = NULL;
    free(c->chan.hello);
    free(c->chan.rx);
    c->chan.hello = NULL;
    c->chan.rx = NULL;
    c->chan.wsi = NULL;
}

int rdv__chan_append_locked(rdv_client *c, rdv__outmsg *m)
{
    rdv__chan *ch = &c->chan;
    if (!ch->ready)
        return 1;
    if (ch->q_count >= RDV__OUTQ_MAX_MSGS || ch->q_bytes + m->len > RDV__OUTQ_MAX_BYTES)
        return RDV_ERR_BACKLOG;
    m->next = NULL;
    if (ch->q_tail)
        ch->q_tail->next = m;
    else
        ch->q_head = m;
    ch->q_tail = m;
    ch->q_count++;
    ch->q_bytes += m->len;
    return 0;
}

/* The channel's connection is gone (or never came up): back to the main
 * connection for relay data; what was queued on the channel is dropped
 * (datagrams). `retry_ms`: no new attempt before now + retry_ms. */
static void chan_end(rdv_client *c, int64_t retry_ms)
{
    rdv__chan *ch = &c->chan;
    if (ch->reg_fd >= 0) {
        (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, ch->reg_fd, NULL);
        ch->reg_fd = -1;
    }
    bool was_ready = ch->phase == RDV__CHAN_READY;
    ch->wsi = NULL;
    ch->phase = RDV__CHAN_NONE;
    ch->got_challenge = false;
    ch->barrier = false;
    ch->rx_len = 0;
    ch->rx_skip = false;
    free(ch->hello);
    ch->hello = NULL;
    free_list(ch->held_head);
    ch->held_head = ch->held_tail = NULL;
    ch->held_count = ch->held_bytes = 0;
    ch->next_try = retry_ms ? rdv__mono_ms() + retry_ms : 0;
    pthread_mutex_lock(&c->lock);
    ch->ready = false;
    rdv__outmsg *dropped = take_queue_locked(ch);
    for (rdv__outmsg *m = dropped; m; m = m->next)
        c->rstats.dropped++;
    pthread_mutex_unlock(&c->lock);
    free_list(dropped);
    if (!atomic_load(&c->destroying))
        rdv__log(RDV_LOG_INFO, "%.16s: relay channel %s; relay data goes on the main connection",
                 c->node_id, was_ready ? "closed" : "not available");
}

/* Closes the channel from outside its callbacks. */
static void chan_kill(rdv_client *c, int64_t retry_ms)
{
    struct lws *w = c->chan.wsi;
    if (!w)
        return;
    lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    if (c->chan.wsi == w) /* lws did not call us back for it */
        chan_end(c, retry_ms);
}

void rdv__chan_main_lost(rdv_client *c)
{
    rdv__chan *ch = &c->chan;
    pthread_mutex_lock(&c->lock);
    ch->offered = false;
    ch->ready = false; /* from now on nothing is queued on the channel */
    rdv__outmsg *dropped = take_queue_locked(ch);
    pthread_mutex_unlock(&c->lock);
    free_list(dropped);
    ch->barrier = false;
    /* possibly inside the main connection's callback: lws closes the
     * channel from its loop (chan_end runs then) */
    if (ch->wsi)
        lws_set_timeout(ch->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Starts the channel's connection to the main connection's URL. */
static void chan_connect(rdv_client *c, int64_t now)
{
    const rdv__url *u = &c->urls[c->url_idx];
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->ctx;
    ci.address = u->host;
    ci.port = u->port;
    ci.path = u->path;
    ci.host = u->host;
    ci.origin = u->host;
    ci.protocol = RDV__CHAN_SUBPROTOCOL;
    ci.local_protocol_name = RDV__CHAN_SUBPROTOCOL;
    ci.ssl_connection = u->tls ? LCCSCF_USE_SSL : 0;
    rdv__chan *ch = &c->chan;
    ch->phase = RDV__CHAN_CONNECTING;
    ch->deadline = now + c->cfg.connect_timeout_ms + c->cfg.auth_timeout_ms;
    ch->got_challenge = false;
    ch->wsi = NULL;
    struct lws *w = lws_client_connect_via_info(&ci);
    if (ch->phase != RDV__CHAN_CONNECTING)
        return; /* failed synchronously: the callback ended it */
    if (!w) {
        chan_end(c, RDV__CHAN_RETRY_MS);
        return;
    }
    ch->wsi = w;
}

/* True when a relay session is OPEN with its relay leg in use. (L held) */
static bool relay_open_locked(rdv_client *c)
{
    for (rdv__session *r = c->sessions; r; r = r->next)
        if (r->st == RDV__SS_OPEN && (!r->direct || r->direct->relay_up))
            return true;
    return false;
}

void rdv__chan_service(rdv_client *c, int64_t now)
{
    rdv__chan *ch = &c->chan;
    pthread_mutex_lock(&c->lock);
    bool offered = ch->offered;
    bool open = relay_open_locked(c);
    bool pending = ch->q_head != NULL;
    pthread_mutex_unlock(&c->lock);
    if (open)
        ch->idle_since = 0;
    else if (!ch->idle_since)
        ch->idle_since = now;
    switch (ch->phase) {
    case RDV__CHAN_NONE:
        if (open && offered && c->phase == RDV__PH_READY && now >= ch->next_try &&
            !atomic_load(&c->destroying))
            chan_connect(c, now);
        return;
    case RDV__CHAN_CONNECTING:
    case RDV__CHAN_AUTH:
        if (now >= ch->deadline)
            chan_kill(c, RDV__CHAN_RETRY_MS);
        return;
    case RDV__CHAN_READY:
        if (ch->idle_since && now - ch->idle_since >= RDV__CHAN_IDLE_MS) {
            chan_kill(c, 0);
            return;
        }
        if (pending && !ch->barrier)
            lws_callback_on_writable(ch->wsi);
        return;
    }
}

void rdv__chan_on_pong(rdv_client *c, const char *id)
{
    rdv__chan *ch = &c->chan;
    if (!ch->barrier || !id || strcmp(id, ch->barrier_id) != 0)
        return;
    ch->barrier = false;
    /* what the channel brought before the switch's pong: in order now */
    rdv__outmsg *m = ch->held_head;
    ch->held_head = ch->held_tail = NULL;
    ch->held_count = ch->held_bytes = 0;
    while (m) {
        rdv__outmsg *n = m->next;
        if (m->binary)
            rdv__relay_on_binary(c, m->buf + RDV__LWS_PRE, m->len);
        else
            (void)on_text(c, (const char *)m->buf + RDV__LWS_PRE, m->len);
        free(m);
        m = n;
    }
    if (ch->wsi)
        lws_callback_on_writable(ch->wsi);
}

/* Keeps a message the channel received before the barrier's pong (a copy;
 * over the outbound queue's bounds it is dropped: datagrams). */
static void hold(rdv_client *c, const char *data, size_t len, bool binary)
{
    rdv__chan *ch = &c->chan;
    rdv__outmsg *m = NULL;
    if (ch->held_count < RDV__OUTQ_MAX_MSGS && ch->held_bytes + len <= RDV__OUTQ_MAX_BYTES)
        m = malloc(sizeof(*m) + RDV__LWS_PRE + len + 1);
    if (!m) {
        pthread_mutex_lock(&c->lock);
        c->rstats.dropped++;
        pthread_mutex_unlock(&c->lock);
        return;
    }
    memset(m, 0, sizeof(*m));
    m->len = len;
    m->binary = binary;
    memcpy(m->buf + RDV__LWS_PRE, data, len);
    m->buf[RDV__LWS_PRE + len] = '\0';
    if (ch->held_tail)
        ch->held_tail->next = m;
    else
        ch->held_head = m;
    ch->held_tail = m;
    ch->held_count++;
    ch->held_bytes += len;
}

void rdv__chan_sync_fd(rdv_client *c)
{
    rdv__chan *ch = &c->chan;
    int fd = ch->wsi ? (int)lws_get_socket_fd(ch->wsi) : -1;
    uint32_t events = EPOLLIN;
    if (fd >= 0 && ch->phase >= RDV__CHAN_AUTH) {
        pthread_mutex_lock(&c->lock);
        bool pending = ch->q_head != NULL;
        pthread_mutex_unlock(&c->lock);
        if ((pending && !ch->barrier) || ch->hello || lws_partial_buffered(ch->wsi))
            events |= EPOLLOUT;
    }
    if (fd != ch->reg_fd) {
        if (ch->reg_fd >= 0)
            (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, ch->reg_fd, NULL);
        ch->reg_fd = -1;
        if (fd >= 0) {
            struct epoll_event ev = {.events = events, .data.fd = fd};
            if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ||
                (errno == EEXIST && epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)) {
                ch->reg_fd = fd;
                ch->reg_events = events;
            }
        }
    } else if (fd >= 0 && events != ch->reg_events) {
        struct epoll_event ev = {.events = events, .data.fd = fd};
        if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
            ch->reg_events = events;
    }
}

int64_t rdv__chan_timeout(rdv_client *c, int64_t t)
{
    rdv__chan *ch = &c->chan;
    if (ch->phase == RDV__CHAN_CONNECTING && t > RDV__CONNECT_TICK_MS)
        t = RDV__CONNECT_TICK_MS;
    if (ch->phase == RDV__CHAN_CONNECTING || ch->phase == RDV__CHAN_AUTH) {
        int64_t d = ch->deadline - rdv__mono_ms();
        if (d < t)
            t = d;
    }
    return t;
}

/* ---- the connection ------------------------------------------------------ */

/* A complete text message on the channel: challenge -> hello, welcome ->
 * READY, relayData -> relay.c, error -> logged (the server closes).
 * Returns -1 to close the channel. */
static int on_text(rdv_client *c, const char *text, size_t len)
{
    rdv__chan *ch = &c->chan;
    rdv_msg m;
    rdv_msg_error err;
    if (rdv_msg_parse((const uint8_t *)text, len, len, &m, &err) != 0)
        return -1;
    int rc = 0;
    switch (m.type) {
    case RDV_MSG_CHALLENGE:
        if (ch->phase != RDV__CHAN_AUTH || ch->got_challenge) {
            rc = -1;
            break;
        }
        ch->got_challenge = true;
        ch->hello = rdv__proto_hello_text(c, m.body, &ch->hello_len);
        if (!ch->hello)
            rc = -1;
        else
            lws_callback_on_writable(ch->wsi);
        break;
    case RDV_MSG_WELCOME: {
        const char *id = rdv_msg_get_str(m.body, "nodeID");
        if (ch->phase != RDV__CHAN_AUTH || !ch->got_challenge || !id ||
            strcmp(id, c->node_id) != 0) {
            rc = -1;
            break;
        }
        ch->phase = RDV__CHAN_READY;
        pthread_mutex_lock(&c->lock);
        ch->ready = true;
        ch->opened++;
        unsigned n = ++c->req_counter;
        pthread_mutex_unlock(&c->lock);
        /* the switch barrier: a ping on main behind what is queued there */
        snprintf(ch->barrier_id, sizeof(ch->barrier_id), "ch%u", n);
        ch->barrier = rdv__send_body(c, RDV_MSG_PING, json_pack("{s:s}", "id", ch->barrier_id),
                                     ch->barrier_id, false) == 0;
        rdv__log(RDV_LOG_INFO, "%.16s: relay channel open", c->node_id);
        break;
    }
    case RDV_MSG_RELAY_DATA:
        rdv__relay_on_data_text(c, m.body);
        break;
    case RDV_MSG_RELAY_CLOSE: /* after the session's data (PROTOCOL.md 9.5) */
        rdv__relay_on_close(c, m.body);
        break;
    case RDV_MSG_ERROR:
        if (rdv_msg_get_str(m.body, "ref")) {
            /* about relay data sent here: handled as on the main connection */
            rdv_msg_free(&m);
            if (c->phase == RDV__PH_READY)
                (void)rdv__proto_on_text(c, text, len);
            return 0;
        }
        rdv__log(RDV_LOG_INFO, "%.16s: relay channel: server error %s: %s", c->node_id,
                 rdv_msg_get_str(m.body, "code") ? rdv_msg_get_str(m.body, "code") : "?",
                 rdv_msg_get_str(m.body, "message") ? rdv_msg_get_str(m.body, "message")
                                                    : "");
        break;
    default:
        break; /* pong and the like */
    }
    rdv_msg_free(&m);
    return rc;
}

static int on_receive(rdv_client *c, struct lws *wsi, const void *in, size_t len)
{
    rdv__chan *ch = &c->chan;
    if (lws_is_first_fragment(wsi)) {
        ch->rx_len = 0;
        ch->rx_skip = false;
        ch->rx_binary = lws_frame_is_binary(wsi) != 0;
    }
    size_t max = RDV_MAX_MESSAGE_BYTES;
    pthread_mutex_lock(&c->lock);
    if (c->limits.max_message_bytes > (int64_t)max)
        max = (size_t)c->limits.max_message_bytes;
    pthread_mutex_unlock(&c->lock);
    if (!ch->rx_skip) {
        if (ch->rx_len + len > max) {
            ch->rx_skip = true; /* over any relay frame: dropped */
        } else {
            if (ch->rx_len + len + 1 > ch->rx_cap) {
                size_t cap = ch->rx_cap ? ch->rx_cap : 4096;
                while (cap < ch->rx_len + len + 1)
                    cap *= 2;
                char *p = realloc(ch->rx, cap);
                if (!p)
                    return -1;
                ch->rx = p;
                ch->rx_cap = cap;
            }
            memcpy(ch->rx + ch->rx_len, in, len);
            ch->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    size_t n = ch->rx_len;
    ch->rx_len = 0;
    if (ch->rx_skip) {
        ch->rx_skip = false;
        return 0;
    }
    if (ch->barrier && ch->phase == RDV__CHAN_READY) {
        hold(c, ch->rx, n, ch->rx_binary); /* before the switch's pong */
        return 0;
    }
    if (ch->rx_binary) {
        rdv__relay_on_binary(c, (const uint8_t *)ch->rx, n);
        return 0;
    }
    return on_text(c, ch->rx, n);
}

/* Writes the hello, then queued relay frames while the socket takes them. */
static int on_writeable(rdv_client *c, struct lws *wsi)
{
    rdv__chan *ch = &c->chan;
    if (ch->hello) {
        uint8_t *buf = malloc(LWS_PRE + ch->hello_len);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, ch->hello, ch->hello_len);
        int n = lws_write(wsi, buf + LWS_PRE, ch->hello_len, LWS_WRITE_TEXT);
        free(buf);
        free(ch->hello);
        ch->hello = NULL;
        return n < 0 ? -1 : 0;
    }
    if (ch->barrier)
        return 0; /* rdv__chan_on_pong asks again */
    for (int i = 0; i < CHAN_WRITES_PER_CALLBACK; i++) {
        if (i > 0 && lws_partial_buffered(wsi))
            break;
        pthread_mutex_lock(&c->lock);
        rdv__outmsg *m = ch->q_head;
        if (m) {
            ch->q_head = m->next;
            if (!ch->q_head)
                ch->q_tail = NULL;
            ch->q_count--;
            ch->q_bytes -= m->len;
        }
        pthread_mutex_unlock(&c->lock);
        if (!m)
            return 0;
        int n = lws_write(wsi, m->buf + RDV__LWS_PRE, m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        free(m);
        if (n < 0)
            return -1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

int rdv__chan_lws_cb(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    rdv_client *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return 0;
    rdv__chan *ch = &c->chan;
    bool ours = wsi == ch->wsi || (ch->phase == RDV__CHAN_CONNECTING && !ch->wsi);
    switch ((enum lws_callback_reasons)reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (ours) {
            rdv__log(RDV_LOG_INFO, "%.16s: relay channel refused: %s", c->node_id,
                     in ? (const char *)in : "connection error");
            ch->wsi = wsi;
            chan_end(c, RDV__CHAN_RETRY_MS);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (wsi != ch->wsi)
            return -1;
        ch->phase = RDV__CHAN_AUTH;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi != ch->wsi)
            return -1;
        return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (wsi != ch->wsi)
            return -1;
        return on_writeable(c, wsi);
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (wsi == ch->wsi)
            chan_end(c, ch->phase == RDV__CHAN_READY ? 0 : RDV__CHAN_RETRY_MS);
        return 0;
    default:
        return 0;
    }
}
