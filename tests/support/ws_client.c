/* ws_client.c - synchronous libwebsockets test client and HTTP GET helper.
 *
 * See ws_client.h. One lws context per handle, no listener, small rx
 * buffers (messages are reassembled here). Waiting = lws_service() with a
 * sorted-usec-list timer armed at the deadline, since lws 4.x ignores the
 * service timeout and would otherwise sleep until the next network event.
 */
#include "ws_client.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64

typedef struct in_msg {
    struct in_msg *next;
    char *data;
    size_t len;
    bool binary;
} in_msg;

typedef struct out_msg {
    struct out_msg *next;
    unsigned char *buf; /* LWS_PRE + len */
    size_t len;
    int wp; /* enum lws_write_protocol, with LWS_WRITE_NO_FIN etc. */
} out_msg;

struct rdv_ws {
    struct lws_context *ctx;
    struct lws *wsi;
    bool established;
    bool failed;
    bool closed;
    bool want_close;
    bool timer_fired;
    int close_code;
    char close_reason[128];
    char fail_reason[256];
    int local_port;
    /* receive */
    in_msg *in_head, *in_tail;
    size_t nin;
    char *rx;
    size_t rxlen, rxcap;
    bool rx_binary;
    /* send */
    out_msg *out_head, *out_tail;
    lws_sorted_usec_list_t sul;
    /* last parsed message (rdv_ws_recv_json) */
    json_t *last_json;
    char *last_text;
    size_t last_len;
};

static rdv_ws *g_clients[MAX_CLIENTS];
static bool g_log_set;

static void reg(rdv_ws *c)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!g_clients[i]) {
            g_clients[i] = c;
            return;
        }
    fprintf(stderr, "[ws] too many clients registered\n");
}

static void unreg(rdv_ws *c)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (g_clients[i] == c)
            g_clients[i] = NULL;
}

static void push_in(rdv_ws *c)
{
    in_msg *m = calloc(1, sizeof *m);
    if (!m)
        return;
    m->data = c->rx ? c->rx : calloc(1, 1);
    m->len = c->rxlen;
    m->binary = c->rx_binary;
    c->rx = NULL;
    c->rxlen = c->rxcap = 0;
    if (c->in_tail)
        c->in_tail->next = m;
    else
        c->in_head = m;
    c->in_tail = m;
    c->nin++;
}

static int append_rx(rdv_ws *c, const void *in, size_t len)
{
    if (c->rxlen + len + 1 > c->rxcap) {
        size_t cap = c->rxcap ? c->rxcap : 1024;
        while (cap < c->rxlen + len + 1)
            cap *= 2;
        char *nb = realloc(c->rx, cap);
        if (!nb)
            return -1;
        c->rx = nb;
        c->rxcap = cap;
    }
    if (len)
        memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    c->rx[c->rxlen] = '\0';
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    if (!wsi)
        return 0;
    struct lws_context *ctx = lws_get_context(wsi);
    rdv_ws *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return 0;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c->failed = true;
        c->closed = true;
        c->wsi = NULL;
        snprintf(c->fail_reason, sizeof c->fail_reason, "%.*s", in ? (int)len : 0,
                 in ? (const char *)in : "");
        if (in && !len)
            snprintf(c->fail_reason, sizeof c->fail_reason, "%s", (const char *)in);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        c->established = true;
        c->wsi = wsi;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = (int)lws_get_socket_fd(wsi);
        if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                c->local_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                c->local_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        if (c->out_head)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            c->rxlen = 0;
            c->rx_binary = lws_frame_is_binary(wsi) != 0;
        }
        if (append_rx(c, in, len) != 0)
            return -1;
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
            push_in(c);
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2 && in) {
            const unsigned char *p = in;
            c->close_code = (p[0] << 8) | p[1];
            snprintf(c->close_reason, sizeof c->close_reason, "%.*s", (int)(len - 2),
                     (const char *)p + 2);
        } else {
            c->close_code = 1005; /* close frame without a status */
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->want_close) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        if (c->out_head) {
            out_msg *m = c->out_head;
            c->out_head = m->next;
            if (!c->out_head)
                c->out_tail = NULL;
            int n = lws_write(wsi, m->buf + LWS_PRE, m->len, (enum lws_write_protocol)m->wp);
            free(m->buf);
            free(m);
            if (n < 0)
                return -1;
            if (c->out_head)
                lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->closed = true;
        c->wsi = NULL;
        if (!c->close_code)
            c->close_code = RDV_WS_CLOSE_ABNORMAL;
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c->wsi == wsi || !c->wsi) {
            c->wsi = NULL;
            c->closed = true;
            if (!c->close_code && c->established)
                c->close_code = RDV_WS_CLOSE_ABNORMAL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"rendezvous.v1", callback, 0, 1024, 0, NULL, 4096},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void sul_cb(lws_sorted_usec_list_t *sul)
{
    rdv_ws *c = lws_container_of(sul, rdv_ws, sul);
    c->timer_fired = true;
}

/* One service round, returning at the latest after ms. */
static void service_once(rdv_ws *c, int ms)
{
    if (!c->ctx)
        return;
    if (ms < 1)
        ms = 1;
    c->timer_fired = false;
    lws_sul_schedule(c->ctx, 0, &c->sul, sul_cb, (lws_usec_t)ms * LWS_US_PER_MS);
    lws_service(c->ctx, 0);
    lws_sul_cancel(&c->sul);
}

void rdv_ws_service(rdv_ws *c, int timeout_ms)
{
    if (c)
        service_once(c, timeout_ms);
}

static void free_handle(rdv_ws *c)
{
    if (c->ctx) {
        lws_sul_cancel(&c->sul);
        lws_context_destroy(c->ctx);
        c->ctx = NULL;
    }
    while (c->in_head) {
        in_msg *m = c->in_head;
        c->in_head = m->next;
        free(m->data);
        free(m);
    }
    while (c->out_head) {
        out_msg *m = c->out_head;
        c->out_head = m->next;
        free(m->buf);
        free(m);
    }
    free(c->rx);
    json_decref(c->last_json);
    free(c->last_text);
    unreg(c);
    free(c);
}

static rdv_ws *connect_common(int port, const char *path, const char *subprotocol,
                              int timeout_ms, bool tls)
{
    if (!g_log_set) {
        /* RDV_WS_LWS_LOG=<lws log bitmask> shows the library's own log. */
        const char *lvl = getenv("RDV_WS_LWS_LOG");
        lws_set_log_level(lvl && *lvl ? atoi(lvl) : LLL_ERR, NULL);
        g_log_set = true;
    }
    rdv_ws *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    reg(c);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = c;
    info.fd_limit_per_thread = 8;
    info.pt_serv_buf_size = 4096;
    if (tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        fprintf(stderr, "[ws] lws_create_context failed\n");
        free_handle(c);
        return NULL;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = path;
    ci.host = "127.0.0.1";
    ci.origin = "127.0.0.1";
    ci.protocol = subprotocol;
    ci.local_protocol_name = "rendezvous.v1";
    ci.ietf_version_or_minus_one = -1;
    if (tls)
        ci.ssl_connection =
            LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
    struct lws *wsi = NULL;
    ci.pwsi = &wsi;
    if (!lws_client_connect_via_info(&ci) && !c->failed) {
        fprintf(stderr, "[ws] connect to port %d failed to start\n", port);
        free_handle(c);
        return NULL;
    }
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    while (!c->established && !c->failed && !c->closed) {
        long long left = deadline - rdv_ts_mono_ms();
        if (left <= 0)
            break;
        service_once(c, (int)left);
    }
    if (!c->established || c->failed) {
        fprintf(stderr, "[ws] connect to %s://127.0.0.1:%d%s (%s) failed: %s\n",
                tls ? "wss" : "ws", port, path,
                subprotocol ? subprotocol : "-",
                c->failed ? c->fail_reason : "timeout");
        free_handle(c);
        return NULL;
    }
    return c;
}

rdv_ws *rdv_ws_connect_ex(int port, const char *path, const char *subprotocol, int timeout_ms)
{
    return connect_common(port, path, subprotocol, timeout_ms, false);
}

rdv_ws *rdv_ws_connect_tls(int port, int timeout_ms)
{
    return connect_common(port, "/v1", "rendezvous.v1", timeout_ms, true);
}

rdv_ws *rdv_ws_connect(int port)
{
    return rdv_ws_connect_ex(port, "/v1", "rendezvous.v1", RDV_WS_TIMEOUT_MS);
}

static int enqueue_wp(rdv_ws *c, const void *buf, size_t len, int wp)
{
    if (!c || c->closed || !c->wsi)
        return -1;
    out_msg *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->buf = malloc(LWS_PRE + len + 1);
    if (!m->buf) {
        free(m);
        return -1;
    }
    if (len)
        memcpy(m->buf + LWS_PRE, buf, len);
    m->len = len;
    m->wp = wp;
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static int enqueue(rdv_ws *c, const void *buf, size_t len, bool binary)
{
    return enqueue_wp(c, buf, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
}

int rdv_ws_send_fragments(rdv_ws *c, const void *buf, size_t len, size_t nfrag)
{
    if (nfrag < 1 || nfrag > len)
        return -1;
    const unsigned char *p = buf;
    size_t step = len / nfrag, off = 0;
    for (size_t i = 0; i < nfrag; i++) {
        size_t n = i + 1 == nfrag ? len - off : step;
        int wp = i == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
        if (i + 1 < nfrag)
            wp |= LWS_WRITE_NO_FIN;
        if (enqueue_wp(c, p + off, n, wp) != 0)
            return -1;
        off += n;
    }
    return rdv_ws_flush(c, RDV_WS_TIMEOUT_MS);
}

int rdv_ws_flush(rdv_ws *c, int timeout_ms)
{
    if (!c)
        return -1;
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        if (c->closed)
            return c->out_head ? -1 : 0;
        if (!c->out_head && c->wsi && !lws_partial_buffered(c->wsi))
            return 0;
        long long left = deadline - rdv_ts_mono_ms();
        if (left <= 0) {
            fprintf(stderr, "[ws] send not flushed within %d ms\n", timeout_ms);
            return -1;
        }
        service_once(c, (int)(left < 50 ? left : 50));
    }
}

int rdv_ws_queue_text(rdv_ws *c, const void *buf, size_t len)
{
    return enqueue(c, buf, len, false);
}

int rdv_ws_send_text(rdv_ws *c, const void *buf, size_t len)
{
    if (enqueue(c, buf, len, false) != 0)
        return -1;
    return rdv_ws_flush(c, RDV_WS_TIMEOUT_MS);
}

int rdv_ws_send_str(rdv_ws *c, const char *s)
{
    return rdv_ws_send_text(c, s, strlen(s));
}

int rdv_ws_send_binary(rdv_ws *c, const void *buf, size_t len)
{
    if (enqueue(c, buf, len, true) != 0)
        return -1;
    return rdv_ws_flush(c, RDV_WS_TIMEOUT_MS);
}

static in_msg *take(rdv_ws *c, int timeout_ms)
{
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        if (c->in_head) {
            in_msg *m = c->in_head;
            c->in_head = m->next;
            if (!c->in_head)
                c->in_tail = NULL;
            c->nin--;
            return m;
        }
        if (c->closed)
            return NULL;
        long long left = deadline - rdv_ts_mono_ms();
        if (left <= 0)
            return NULL;
        service_once(c, (int)left);
    }
}

char *rdv_ws_recv_any(rdv_ws *c, int timeout_ms, size_t *len, bool *is_binary)
{
    if (!c)
        return NULL;
    in_msg *m = take(c, timeout_ms);
    if (!m)
        return NULL;
    char *d = m->data;
    if (len)
        *len = m->len;
    if (is_binary)
        *is_binary = m->binary;
    free(m);
    return d;
}

char *rdv_ws_recv(rdv_ws *c, int timeout_ms, size_t *len)
{
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - rdv_ts_mono_ms();
        bool bin = false;
        char *d = rdv_ws_recv_any(c, left > 0 ? (int)left : 0, len, &bin);
        if (!d || !bin)
            return d;
        free(d);
    }
}

json_t *rdv_ws_recv_json(rdv_ws *c, int timeout_ms, const char **type)
{
    if (type)
        *type = NULL;
    if (!c)
        return NULL;
    json_decref(c->last_json);
    c->last_json = NULL;
    free(c->last_text);
    c->last_text = NULL;
    c->last_len = 0;
    size_t len = 0;
    char *text = rdv_ws_recv(c, timeout_ms, &len);
    if (!text)
        return NULL;
    c->last_text = text;
    c->last_len = len;
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    if (!root) {
        fprintf(stderr, "[ws] received text is not JSON (%s): %.*s\n", err.text,
                (int)(len > 400 ? 400 : len), text);
        return NULL;
    }
    c->last_json = root;
    if (type && json_is_object(root) && json_object_size(root) == 1) {
        void *it = json_object_iter(root);
        *type = json_object_iter_key(it);
    }
    return root;
}

const char *rdv_ws_last_text(rdv_ws *c, size_t *len)
{
    if (len)
        *len = c ? c->last_len : 0;
    return c ? c->last_text : NULL;
}

size_t rdv_ws_pending(rdv_ws *c) { return c ? c->nin : 0; }

bool rdv_ws_wait_closed(rdv_ws *c, int timeout_ms)
{
    if (!c)
        return true;
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    while (!c->closed) {
        long long left = deadline - rdv_ts_mono_ms();
        if (left <= 0)
            break;
        service_once(c, (int)left);
    }
    return c->closed;
}

bool rdv_ws_is_closed(const rdv_ws *c) { return !c || c->closed; }
int rdv_ws_close_code(const rdv_ws *c) { return c ? c->close_code : 0; }
const char *rdv_ws_close_reason(const rdv_ws *c) { return c ? c->close_reason : ""; }
int rdv_ws_local_port(const rdv_ws *c) { return c ? c->local_port : 0; }

int rdv_ws_set_rcvbuf(rdv_ws *c, int bytes)
{
    if (!c || !c->wsi)
        return -1;
    int fd = (int)lws_get_socket_fd(c->wsi);
    return fd >= 0 ? setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) : -1;
}

bool rdv_ws_wait_peer_hangup(rdv_ws *c, int timeout_ms)
{
    if (!c || c->closed || !c->wsi)
        return true;
    int fd = (int)lws_get_socket_fd(c->wsi);
    if (fd < 0)
        return true;
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - rdv_ts_mono_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = {fd, POLLRDHUP, 0};
        int n = poll(&pfd, 1, (int)(left > 100 ? 100 : left));
        if (n > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return true;
        if (left == 0)
            return false;
    }
}

void rdv_ws_close(rdv_ws *c)
{
    if (!c)
        return;
    if (!c->closed && c->wsi) {
        c->want_close = true;
        lws_callback_on_writable(c->wsi);
        rdv_ws_wait_closed(c, 2000);
    }
    free_handle(c);
}

void rdv_ws_abort(rdv_ws *c)
{
    if (c)
        free_handle(c);
}

void rdv_ws_close_all(void)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (g_clients[i])
            free_handle(g_clients[i]);
}

/* ---- HTTP GET ---------------------------------------------------------- */

static int dechunk(const char *in, size_t inlen, char **out, bool *complete)
{
    size_t cap = inlen + 1, olen = 0, pos = 0;
    char *o = malloc(cap);
    if (!o)
        return -1;
    *complete = false;
    while (pos < inlen) {
        const char *eol = memmem(in + pos, inlen - pos, "\r\n", 2);
        if (!eol)
            break;
        unsigned long n = strtoul(in + pos, NULL, 16);
        pos = (size_t)(eol - in) + 2;
        if (n == 0) {
            *complete = true;
            break;
        }
        if (pos + n > inlen)
            break;
        memcpy(o + olen, in + pos, n);
        olen += n;
        pos += n + 2;
    }
    o[olen] = '\0';
    *out = o;
    return 0;
}

int rdv_http_get(int port, const char *path, char **body, int timeout_ms)
{
    if (body)
        *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    char req[512];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: rdv-test\r\n"
                      "Accept: */*\r\nConnection: close\r\n\r\n",
                      path, port);
    size_t sent = 0;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    int status = -1;
    if (!buf) {
        close(fd);
        return -1;
    }
    bool done = false;
    while (!done) {
        long long left = deadline - rdv_ts_mono_ms();
        if (left <= 0) {
            fprintf(stderr, "[http] GET %s: timeout\n", path);
            break;
        }
        struct pollfd pfd = {fd, (short)(sent < (size_t)rl ? POLLOUT : POLLIN), 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (sent < (size_t)rl) {
            ssize_t n = send(fd, req + sent, (size_t)rl - sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                break;
            }
            sent += (size_t)n;
            continue;
        }
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            break;
        }
        if (n == 0)
            done = true; /* EOF */
        len += (size_t)n;
        buf[len] = '\0';
        /* Complete before EOF? */
        const char *hend = strstr(buf, "\r\n\r\n");
        if (hend && !done) {
            size_t hlen = (size_t)(hend - buf) + 4;
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            bool chunked = false;
            const char *te = strcasestr(buf, "\r\ntransfer-encoding:");
            if (te && te < hend) {
                const char *eol = strstr(te + 2, "\r\n");
                chunked = eol && memmem(te, (size_t)(eol - te), "chunked", 7);
            }
            if (cl && cl < hend && !chunked) {
                size_t want = strtoul(cl + 17, NULL, 10);
                if (len - hlen >= want)
                    done = true;
            } else if (chunked) {
                char *tmp = NULL;
                bool complete = false;
                if (dechunk(buf + hlen, len - hlen, &tmp, &complete) == 0 && complete)
                    done = true;
                free(tmp);
            }
        }
    }
    close(fd);
    if (len == 0 || !done) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
        free(buf);
        return -1;
    }
    const char *hend = strstr(buf, "\r\n\r\n");
    if (body) {
        if (!hend) {
            *body = strdup("");
        } else {
            size_t hlen = (size_t)(hend - buf) + 4;
            const char *te = strcasestr(buf, "\r\ntransfer-encoding:");
            bool chunked = false;
            if (te && te < hend) {
                const char *eol = strstr(te + 2, "\r\n");
                chunked = eol && memmem(te, (size_t)(eol - te), "chunked", 7);
            }
            if (chunked) {
                bool complete;
                if (dechunk(buf + hlen, len - hlen, body, &complete) != 0)
                    *body = NULL;
            } else {
                const char *cl = strcasestr(buf, "\r\ncontent-length:");
                size_t blen = len - hlen;
                if (cl && cl < hend) {
                    size_t want = strtoul(cl + 17, NULL, 10);
                    if (want < blen)
                        blen = want;
                }
                *body = malloc(blen + 1);
                if (*body) {
                    memcpy(*body, buf + hlen, blen);
                    (*body)[blen] = '\0';
                }
            }
        }
    }
    free(buf);
    return status;
}
