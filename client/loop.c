/* loop.c - the client's I/O: one libwebsockets context per client, the
 * connection's life cycle (connect, upgrade, authenticate, keep alive,
 * drop, back off, reconnect), the embedded-mode fd and the background
 * thread.
 *
 * Embedding design. This libwebsockets build (4.1.6, Debian) has no
 * external-poll callbacks, so the library offers ONE epoll descriptor
 * (rdv_client_fd()) that holds:
 *   - an eventfd, written by every API call that queued work (any thread);
 *   - the WebSocket's TCP socket, registered for EPOLLIN, plus EPOLLOUT
 *     while there is output waiting (our queue or lws's partial send).
 * rdv_client_process() then lets lws poll its own sockets without waiting
 * (lws_service(ctx, -1)), so lws keeps its usual state machine. While a
 * connection is being set up (non-blocking connect, TLS handshake) the
 * socket's interest is not visible to us, so rdv_client_timeout_ms()
 * ticks every RDV__CONNECT_TICK_MS ms in that phase only. The background
 * thread of rdv_client_start() is exactly this loop with epoll_wait().
 *
 * Only the service thread (inside process()) calls lws. A connection ends
 * in on_conn_end() exactly once (guarded by c->wsi), which drops what was
 * not written, reports why, and schedules the next attempt.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "client/client.h"
#include "client/log.h"
#include "client/proxy.h"
#include "client/proto.h"
#include "client/backoff.h"
#include "schema/wire_limits.h"

_Static_assert(LWS_PRE <= RDV__LWS_PRE, "RDV__LWS_PRE must cover LWS_PRE");

static void sync_fd(rdv_client *c)
{
    int fd = c->wsi ? (int)lws_get_socket_fd(c->wsi) : -1;
    uint32_t events = EPOLLIN;
    if (fd >= 0 && c->phase >= RDV__PH_AUTH) {
        pthread_mutex_lock(&c->lock);
        bool pending = c->outq_head != NULL;
        pthread_mutex_unlock(&c->lock);
        if (pending || lws_partial_buffered(c->wsi))
            events |= EPOLLOUT;
    }
    if (fd != c->reg_fd) {
        if (c->reg_fd >= 0)
            (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->reg_fd, NULL);
        c->reg_fd = -1;
        if (fd >= 0) {
            struct epoll_event ev = {.events = events, .data.fd = fd};
            if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ||
                (errno == EEXIST && epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)) {
                c->reg_fd = fd;
                c->reg_events = events;
            }
        }
    } else if (fd >= 0 && events != c->reg_events) {
        struct epoll_event ev = {.events = events, .data.fd = fd};
        if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
            c->reg_events = events;
    }
}

/* ---- connection life cycle --------------------------------------------- */

static bool has(const char *s, const char *needle)
{
    return s && strstr(s, needle) != NULL;
}

/* wss://: OpenSSL refused the server's certificate (x509_ctx, from lws'
 * verify callback): keeps the first cause of this attempt and what the
 * certificate says about it (its names for a host-name mismatch, else its
 * issuer), for explain_tls(). */
static void note_cert_refused(rdv_client *c, X509_STORE_CTX *x509_ctx)
{
    int err = X509_STORE_CTX_get_error(x509_ctx);
    if (c->tls_verify_err || err == X509_V_OK)
        return;
    c->tls_verify_err = err;
    c->tls_verify_what[0] = '\0';
    X509 *x = X509_STORE_CTX_get_current_cert(x509_ctx);
    if (!x)
        return;
    size_t cap = sizeof(c->tls_verify_what), n = 0;
    if (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && n + 1 < cap; i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
            char ip[INET6_ADDRSTRLEN] = "";
            const char *kind = NULL, *val = ip;
            if (g->type == GEN_DNS) {
                kind = "DNS";
                val = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            } else if (g->type == GEN_IPADD && (g->d.iPAddress->length == 4 ||
                                                g->d.iPAddress->length == 16)) {
                kind = "IP";
                inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6,
                          ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
            }
            if (!kind)
                continue;
            int w = snprintf(c->tls_verify_what + n, cap - n, "%s%s:%.64s", n ? ", " : "",
                             kind, val);
            n = w < 0 ? cap : n + (size_t)w;
        }
        GENERAL_NAMES_free(names);
        if (n == 0)
            X509_NAME_oneline(X509_get_subject_name(x), c->tls_verify_what, (int)cap);
    } else {
        X509_NAME_oneline(X509_get_issuer_name(x), c->tls_verify_what, (int)cap);
    }
}

/* The explanation of a refused server certificate (RDV_ERR_TLS_VERIFY). */
static int explain_tls(const rdv_client *c, const char *url, const char *hp, char *out,
                       size_t cap)
{
    const rdv__url *u = &c->urls[c->url_idx];
    const char *what = c->tls_verify_what[0] ? c->tls_verify_what : "?";
    switch (c->tls_verify_err) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return snprintf(out, cap,
                        "connection to %s refused: the TLS certificate of %s is not valid "
                        "for the host name '%s' (it is for %s): use a host name the "
                        "certificate holds, or give the server a certificate for this one",
                        url, hp, u->host, what);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return snprintf(out, cap,
                        "connection to %s refused: the TLS certificate of %s is not signed "
                        "by a CA this client trusts (issuer %s; trusted: %s%s): give that "
                        "CA's certificate as tls_ca_file (rdv --ca FILE)",
                        url, hp, what, c->cfg.tls_ca_file ? "tls_ca_file " : "the system CA "
                                                                             "store",
                        c->cfg.tls_ca_file ? c->cfg.tls_ca_file : "");
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return snprintf(out, cap,
                        "connection to %s refused: the TLS certificate of %s has expired "
                        "(issuer %s): renew it on the server (or check this machine's clock)",
                        url, hp, what);
    default:
        return snprintf(out, cap, "connection to %s refused: the TLS certificate of %s was "
                                  "refused: %s",
                        url, hp, X509_verify_cert_error_string(c->tls_verify_err));
    }
}

/* The text cb_error gets (and rdv_client_info.last_error_text) when a
 * connection ends: the URL tried, then the cause in words a user can act
 * on where libwebsockets' own text (kept at the end) names none. */
static void explain_end(const rdv_client *c, rdv__phase was, int reason, const char *detail,
                        char *out, size_t cap)
{
    const rdv__url *u = &c->urls[c->url_idx];
    char hp[300];
    snprintf(hp, sizeof(hp), strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, u->port);
    const char *url = c->url_text[c->url_idx];
    int n;
    if (was == RDV__PH_READY) {
        n = snprintf(out, cap, "connection to %s lost: %s", url, rdv_strerror(reason));
    } else if (reason == RDV_ERR_TLS_VERIFY) {
        n = explain_tls(c, url, hp, out, cap);
        detail = NULL; /* lws' text for it is a bare "SSL err 1" */
    } else if (reason == RDV_ERR_CONNECT && has(detail, "not 101")) {
        char st[32] = "";
        if (c->http_status > 0)
            snprintf(st, sizeof(st), " (HTTP %d)", c->http_status);
        n = snprintf(out, cap,
                     "connection to %s failed: the server at %s refused the WebSocket "
                     "upgrade at path %s%s: is that a rendezvous server? its endpoint is "
                     "/v1 (%s://%s/v1)",
                     url, hp, u->path, st, u->tls ? "wss" : "ws", hp);
        detail = NULL;
    } else if (reason == RDV_ERR_CONNECT && u->tls &&
               (has(detail, "SSL") || has(detail, "ssl") || has(detail, "TLS") ||
                has(detail, "tls"))) {
        if (has(detail, "certificate") || has(detail, "cert "))
            n = snprintf(out, cap,
                         "connection to %s failed: the TLS certificate of %s is not trusted "
                         "or does not match the host name (a private CA: give it as "
                         "tls_ca_file, rdv --ca)",
                         url, hp);
        else
            n = snprintf(out, cap,
                         "connection to %s failed: the TLS handshake with %s failed: is the "
                         "server serving plain ws:// (then use ws://%s%s)?",
                         url, hp, hp, u->path);
    } else if (reason == RDV_ERR_CONNECT && has(detail, "Unable to connect")) {
        n = snprintf(out, cap,
                     "connection to %s failed: nothing accepted a connection at %s "
                     "(refused or unreachable): is rendezvousd running there?",
                     url, hp);
        detail = NULL;
    } else if (reason == RDV_ERR_CONNECT && has(detail, "could not start")) {
        n = snprintf(out, cap,
                     "connection to %s failed: cannot resolve or reach host '%s' (a typo "
                     "in the host name, or no network?)",
                     url, u->host);
        detail = NULL;
    } else {
        n = snprintf(out, cap, "connection to %s failed: %s", url, rdv_strerror(reason));
    }
    if (n >= 0 && (size_t)n < cap && detail && *detail)
        snprintf(out + n, cap - (size_t)n, " - %s", detail);
}

/* The delay before connection attempt `attempt` (1: after the first
 * failure or drop). One URL: the backoff policy. Several (the instances of
 * a cluster): each of them is tried once, after a short random delay of
 * up to initial_backoff_ms (an instance that died or drains does not turn
 * its whole fleet into one storm on the next), and the backoff grows per
 * full round of failures. */
static int64_t reconnect_delay(const rdv_client *c, unsigned attempt)
{
    unsigned a = attempt ? attempt - 1 : 0;
    const rdv_reconnect_policy *p = &c->cfg.reconnect;
    if (c->n_urls <= 1)
        return rdv__backoff_ms(p, a, randombytes_random());
    unsigned n = (unsigned)c->n_urls;
    unsigned round = a / n, pos = a % n;
    if (pos != 0 || round == 0)
        return (int64_t)randombytes_uniform((uint32_t)p->initial_backoff_ms + 1);
    return rdv__backoff_ms(p, round - 1, randombytes_random());
}

/* The connection of c->wsi is gone (or never came up): report, drop the
 * unsent queue, decide between FAILED and a backoff. */
static void on_conn_end(rdv_client *c, int reason, const char *detail)
{
    if (c->reg_fd >= 0) {
        (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->reg_fd, NULL);
        c->reg_fd = -1;
    }
    c->wsi = NULL;
    rdv__phase was = c->phase;
    c->phase = RDV__PH_IDLE;
    c->ping_sent = 0;
    c->rx_len = 0;
    if (c->end_reason)
        reason = c->end_reason;
    if (c->end_detail)
        detail = c->end_detail;
    c->end_reason = 0;
    c->end_detail = NULL;
    if (atomic_load(&c->destroying))
        return;

    bool failed = c->final_failure;
    pthread_mutex_lock(&c->lock);
    rdv__outmsg *dropped = rdv__outq_take_all(c);
    c->last_error = reason;
    if (!failed) {
        c->attempt++; /* 0 since the last welcome: a drop is retry 1 */
        if (c->cfg.reconnect.max_attempts > 0 &&
            c->attempt >= (unsigned)c->cfg.reconnect.max_attempts)
            failed = true;
    }
    unsigned attempt = c->attempt;
    pthread_mutex_unlock(&c->lock);

    if (!failed)
        c->next_connect_at = rdv__mono_ms() + reconnect_delay(c, attempt);
    int64_t refused_ms = 0; /* refused by admission: the operator has to act */
    if (!failed && (reason == RDV_ERR_NOT_ADMITTED || reason == RDV_ERR_REVOKED)) {
        refused_ms = rdv__refused_delay_ms(c->refusals, randombytes_random());
        c->next_connect_at = rdv__mono_ms() + refused_ms;
    }
    /* room for the longest explanation (URL, host, path), so no format
     * is ever cut; what is kept is cut below, on a byte count */
    char text[2048];
    if (refused_ms) /* short: the server's reason must fit last_error_text */
        snprintf(text, sizeof(text), "%s by %s (next attempt in %lld s): %s",
                 reason == RDV_ERR_REVOKED ? "revoked" : "not admitted",
                 c->url_text[c->url_idx], (long long)(refused_ms / 1000),
                 detail ? detail : rdv_strerror(reason));
    else
        explain_end(c, was, reason, detail, text, sizeof(text));
    /* several instances: the next connection goes to the next one */
    if (c->n_urls > 1)
        c->url_idx = (c->url_idx + 1) % c->n_urls;
    size_t tl = strlen(text);
    if (tl >= sizeof(c->last_error_text))
        tl = sizeof(c->last_error_text) - 1;
    pthread_mutex_lock(&c->lock);
    memcpy(c->last_error_text, text, tl);
    c->last_error_text[tl] = '\0';
    pthread_mutex_unlock(&c->lock);
    c->http_status = 0;
    if (failed)
        rdv__log(RDV_LOG_ERROR, "%.16s: %s; giving up", c->node_id, text);
    else
        rdv__log(RDV_LOG_WARN, "%.16s: %s; retrying in %lld ms", c->node_id, text,
                 (long long)(c->next_connect_at - rdv__mono_ms()));
    rdv__set_state(c, failed ? RDV_STATE_FAILED : RDV_STATE_DISCONNECTED);
    rdv__report(c, reason, NULL, text, NULL, NULL, NULL, NULL);
    rdv__chan_main_lost(c); /* the server closes the relay channel with it */
    /* The server ends every relay session of a connection. */
    rdv__relay_on_conn_lost(c);
    while (dropped) {
        rdv__outmsg *n = dropped->next;
        /* Relay data is datagrams: dropped without a report. */
        if (!dropped->binary && strcmp(dropped->type, "pong") != 0 &&
            strcmp(dropped->type, "ping") != 0 && strcmp(dropped->type, "hello") != 0)
            rdv__report(c, RDV_ERR_NOT_CONNECTED, NULL,
                        "message dropped: the connection went down before it was sent",
                        dropped->ref[0] ? dropped->ref : NULL, dropped->type, NULL, NULL);
        free(dropped);
        dropped = n;
    }
}

static void start_connect(rdv_client *c)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->ctx;
    const rdv__url *u = &c->urls[c->url_idx];
    ci.address = u->host;
    ci.port = u->port;
    ci.path = u->path;
    ci.host = u->host;
    ci.origin = u->host;
    ci.protocol = RDV_WS_SUBPROTOCOL;
    ci.local_protocol_name = RDV_WS_SUBPROTOCOL;
    ci.ssl_connection = u->tls ? LCCSCF_USE_SSL : 0;
    c->end_reason = 0;
    c->tls_verify_err = 0;
    c->phase = RDV__PH_CONNECTING;
    c->deadline = rdv__mono_ms() + c->cfg.connect_timeout_ms;
    rdv__set_state(c, RDV_STATE_CONNECTING);
    c->wsi = NULL;
    struct lws *w = lws_client_connect_via_info(&ci);
    if (!w && c->phase == RDV__PH_CONNECTING) {
        /* Failed synchronously (and lws may or may not have told us). */
        c->wsi = NULL;
        on_conn_end(c, RDV_ERR_CONNECT, "could not start the connection");
        return;
    }
    if (w && c->phase == RDV__PH_CONNECTING)
        c->wsi = w;
}

/* Closes the current connection from outside lws callbacks. */
static void kill_conn(rdv_client *c, int reason, const char *detail)
{
    struct lws *w = c->wsi;
    if (!w)
        return;
    if (!c->end_reason)
        c->end_reason = reason;
    c->end_detail = detail;
    lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    if (c->wsi == w) /* lws did not call us back for it */
        on_conn_end(c, reason, NULL);
}

/* ---- lws callback -------------------------------------------------------- */

static int write_one(rdv_client *c, struct lws *wsi)
{
    pthread_mutex_lock(&c->lock);
    rdv__outmsg *m = c->outq_head;
    if (m) {
        c->outq_head = m->next;
        if (!c->outq_head)
            c->outq_tail = NULL;
        c->outq_count--;
        c->outq_bytes -= m->len;
    }
    bool more = c->outq_head != NULL;
    pthread_mutex_unlock(&c->lock);
    if (!m)
        return 0;
    int n = lws_write(wsi, m->buf + RDV__LWS_PRE, m->len,
                      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    free(m);
    if (n < 0) {
        c->end_reason = RDV_ERR_CONNECT;
        return -1;
    }
    if (more)
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_receive(rdv_client *c, struct lws *wsi, const void *in, size_t len)
{
    c->last_rx = rdv__mono_ms();
    c->ping_sent = 0;
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_skip = false;
        c->rx_binary = lws_frame_is_binary(wsi) != 0; /* relay data */
    }
    size_t max = RDV_MAX_MESSAGE_BYTES;
    pthread_mutex_lock(&c->lock);
    if (c->limits.max_message_bytes > (int64_t)max)
        max = (size_t)c->limits.max_message_bytes;
    pthread_mutex_unlock(&c->lock);
    if (!c->rx_skip) {
        if (c->rx_len + len > max) {
            c->rx_skip = true;
            rdv__report(c, RDV_ERR_TOO_LARGE, NULL,
                        "server sent a message over maxMessageBytes (dropped)",
                        NULL, NULL, NULL, NULL);
        } else {
            if (c->rx_len + len + 1 > c->rx_cap) {
                size_t cap = c->rx_cap ? c->rx_cap : 4096;
                while (cap < c->rx_len + len + 1)
                    cap *= 2;
                char *p = realloc(c->rx, cap);
                if (!p) {
                    c->end_reason = RDV_ERR_NOMEM;
                    return -1;
                }
                c->rx = p;
                c->rx_cap = cap;
            }
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    if (c->rx_skip) {
        c->rx_skip = false;
        c->rx_len = 0;
        return 0;
    }
    size_t n = c->rx_len;
    c->rx_len = 0;
    if (c->rx_binary) {
        rdv__relay_on_binary(c, (const uint8_t *)c->rx, n);
        return 0;
    }
    return rdv__proto_on_text(c, c->rx, n);
}

static int lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                  void *in, size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    rdv_client *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == c->wsi || (c->phase == RDV__PH_CONNECTING && !c->wsi)) {
            c->http_status = (int)lws_http_client_http_response(wsi);
            c->wsi = wsi; /* so on_conn_end runs once */
            on_conn_end(c, c->tls_verify_err ? RDV_ERR_TLS_VERIFY : RDV_ERR_CONNECT,
                        in ? (const char *)in : NULL);
        }
        return 0;
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* user: X509_STORE_CTX, len: OpenSSL's verdict; 0 keeps it */
        if (!len && user && (wsi == c->wsi || c->phase == RDV__PH_CONNECTING))
            note_cert_refused(c, user);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (wsi != c->wsi)
            return -1;
        c->phase = RDV__PH_AUTH;
        c->deadline = rdv__mono_ms() + c->cfg.auth_timeout_ms;
        c->last_rx = rdv__mono_ms();
        {
            /* The server's address: our relayed candidate (direct_signal.c). */
            struct sockaddr_storage sa;
            memset(&sa, 0, sizeof(sa));
            socklen_t l = sizeof(sa);
            int fd = lws_get_socket_fd(wsi);
            if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &l) != 0)
                l = 0;
            pthread_mutex_lock(&c->lock);
            c->server_addr = sa;
            c->server_addr_len = l;
            pthread_mutex_unlock(&c->lock);
        }
        rdv__proto_on_established(c);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi != c->wsi)
            return -1;
        return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        c->last_rx = rdv__mono_ms();
        c->ping_sent = 0;
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (wsi != c->wsi)
            return -1;
        if (c->end_reason) /* asked to close */
            return -1;
        return write_one(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (wsi == c->wsi && !c->end_reason && len >= 2) {
            const uint8_t *b = in;
            unsigned code = (unsigned)b[0] << 8 | b[1];
            if (code == 4001)
                c->final_failure = true;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (wsi == c->wsi)
            on_conn_end(c, c->phase == RDV__PH_READY ? RDV_ERR_CONNECT
                                                     : (c->phase == RDV__PH_AUTH ? RDV_ERR_AUTH
                                                                                 : RDV_ERR_CONNECT),
                        "closed by the server or the network");
        return 0;
    default:
        return 0;
    }
}

/* The relay channel's callback (relay_channel.h) with lws' signature. */
static int chan_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    return rdv__chan_lws_cb(wsi, (int)reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {RDV_WS_SUBPROTOCOL, lws_cb, 0, 0, 0, NULL, 0},
    {RDV__CHAN_SUBPROTOCOL, chan_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int rdv__loop_init(rdv_client *c)
{
    rdv__log_hook_lws();
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.user = c;
    info.fd_limit_per_thread = 16;
    bool any_tls = false;
    for (int i = 0; i < c->n_urls; i++)
        any_tls = any_tls || c->urls[i].tls;
    if (any_tls) {
        /* Our own client SSL_CTX (lws 4.1.6 leaks the one it builds, with
         * the whole system CA store, at every context destroy): TLS >= 1.2,
         * peer verification against tls_ca_file or the system store; lws
         * still checks the host name on each connection. */
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        SSL_CTX *ssl = SSL_CTX_new(TLS_client_method());
        if (!ssl)
            return RDV_ERR_NOMEM;
        SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        int ok = c->cfg.tls_ca_file
                     ? SSL_CTX_load_verify_locations(ssl, c->cfg.tls_ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ssl);
        if (ok != 1) {
            SSL_CTX_free(ssl);
            return RDV_ERR_IO;
        }
        info.provided_client_ssl_ctx = ssl;
        c->ssl_ctx = ssl;
    }
    rdv__chan_init(c);
    c->ctx = lws_create_context(&info);
    if (!c->ctx)
        return RDV_ERR_NOMEM;
    c->next_connect_at = 0; /* first process() connects at once */
    return 0;
}

void rdv__loop_free(rdv_client *c)
{
    if (c->ctx) {
        lws_context_destroy(c->ctx);
        c->ctx = NULL;
    }
    if (c->ssl_ctx) {
        SSL_CTX_free(c->ssl_ctx);
        c->ssl_ctx = NULL;
    }
    c->wsi = NULL;
    rdv__chan_free(c);
}

/* ---- the service step ------------------------------------------------------ */

static void drain_eventfd(rdv_client *c)
{
    uint64_t v;
    while (read(c->evfd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
    }
}

static void run_timers(rdv_client *c, int64_t now)
{
    rdv_state st = rdv_client_state(c);
    if (st == RDV_STATE_FAILED)
        return;
    switch (c->phase) {
    case RDV__PH_IDLE:
        if (!c->wsi && now >= c->next_connect_at)
            start_connect(c);
        break;
    case RDV__PH_CONNECTING:
    case RDV__PH_AUTH:
        if (now >= c->deadline) {
            kill_conn(c, RDV_ERR_TIMEOUT,
                      c->phase == RDV__PH_CONNECTING
                          ? "no WebSocket connection within connect_timeout_ms"
                          : "no challenge/welcome within auth_timeout_ms");
        }
        break;
    case RDV__PH_READY: {
        int64_t ka = c->cfg.keepalive_ms;
        if (now - c->last_rx >= 2 * ka) {
            kill_conn(c, RDV_ERR_TIMEOUT, "the server stopped answering (keepalive)");
        } else if (now - c->last_rx >= ka && !c->ping_sent) {
            c->ping_sent = now;
            rdv__proto_send_ping(c);
        }
        break;
    }
    }
}

static void service(rdv_client *c)
{
    drain_eventfd(c);
    run_timers(c, rdv__mono_ms());
    rdv__relay_tick(c, rdv__mono_ms());
    rdv__session_service(c, rdv__mono_ms());
    rdv__proxy_service(c);
    rdv__chan_service(c, rdv__mono_ms());
    for (int round = 0; round < 2; round++) {
        if (c->wsi && c->phase >= RDV__PH_AUTH) {
            pthread_mutex_lock(&c->lock);
            bool pending = c->outq_head != NULL;
            pthread_mutex_unlock(&c->lock);
            if (pending)
                lws_callback_on_writable(c->wsi);
        }
        lws_service(c->ctx, -1); /* never waits */
        /* a session that opened just now wants the channel */
        rdv__chan_service(c, rdv__mono_ms());
    }
    if (c->phase == RDV__PH_IDLE && !c->wsi && rdv_client_state(c) != RDV_STATE_FAILED &&
        rdv__mono_ms() >= c->next_connect_at)
        rdv__wake(c);
    sync_fd(c);
    rdv__chan_sync_fd(c);
}

/* The service thread's wait: see rdv_client_timeout_ms(). (S) */
static int service_timeout(rdv_client *c)
{
    int64_t now = rdv__mono_ms();
    int64_t t = RDV__HOUSEKEEPING_MS;
    if (rdv_client_state(c) != RDV_STATE_FAILED) {
        switch (c->phase) {
        case RDV__PH_IDLE:
            if (!c->wsi && c->next_connect_at - now < t)
                t = c->next_connect_at - now;
            break;
        case RDV__PH_CONNECTING:
        case RDV__PH_AUTH:
            if (c->deadline - now < t)
                t = c->deadline - now;
            if (c->phase == RDV__PH_CONNECTING && t > RDV__CONNECT_TICK_MS)
                t = RDV__CONNECT_TICK_MS;
            break;
        case RDV__PH_READY: {
            int64_t ka = c->cfg.keepalive_ms;
            int64_t due = c->ping_sent ? c->last_rx + 2 * ka : c->last_rx + ka;
            if (due - now < t)
                t = due - now;
            break;
        }
        }
    }
    t = rdv__chan_timeout(c, t);
    int64_t dd = rdv__session_next_due(c);
    if (dd != INT64_MAX && dd - now < t)
        t = dd - now;
    if (c->ctx && t > 0) {
        int n = lws_service_adjust_timeout(c->ctx, (int)t, 0);
        if (n < t)
            t = n;
    }
    return t < 0 ? 0 : (int)t;
}

int rdv_client_timeout_ms(rdv_client *c)
{
    if (!c)
        return 0;
    /* The loop state belongs to the background thread when started. */
    if (atomic_load(&c->mode) == RDV__MODE_THREAD)
        return RDV__HOUSEKEEPING_MS;
    return service_timeout(c);
}

int rdv_client_fd(const rdv_client *c)
{
    return c ? c->epfd : -1;
}

int rdv_client_process(rdv_client *c)
{
    if (!c)
        return RDV_ERR_INVALID;
    int expect = RDV__MODE_NONE;
    if (!atomic_compare_exchange_strong(&c->mode, &expect, RDV__MODE_EMBED) &&
        expect != RDV__MODE_EMBED)
        return RDV_ERR_STATE;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&c->busy, &zero, 1))
        return RDV_ERR_BUSY;
    c->service_tid = pthread_self();
    service(c);
    atomic_store(&c->busy, 0);
    return 0;
}

static void *thread_main(void *arg)
{
    rdv_client *c = arg;
    c->service_tid = pthread_self();
    /* Signals belong to the application's threads. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!atomic_load(&c->stop)) {
        struct epoll_event ev[8];
        int t = service_timeout(c);
        (void)epoll_wait(c->epfd, ev, 8, t);
        if (atomic_load(&c->stop))
            break;
        atomic_store(&c->busy, 1);
        service(c);
        atomic_store(&c->busy, 0);
    }
    return NULL;
}

int rdv_client_start(rdv_client *c)
{
    if (!c)
        return RDV_ERR_INVALID;
    int expect = RDV__MODE_NONE;
    if (!atomic_compare_exchange_strong(&c->mode, &expect, RDV__MODE_THREAD))
        return RDV_ERR_STATE;
    if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
        atomic_store(&c->mode, RDV__MODE_NONE);
        return RDV_ERR_IO;
    }
    c->thread_started = true;
    return 0;
}

bool rdv__in_callback(rdv_client *c)
{
    if (c->thread_started)
        return pthread_equal(pthread_self(), c->thread) != 0;
    return atomic_load(&c->busy) && pthread_equal(pthread_self(), c->service_tid);
}

void rdv__loop_stop_thread(rdv_client *c)
{
    if (!c->thread_started)
        return;
    atomic_store(&c->stop, 1);
    rdv__wake(c);
    pthread_join(c->thread, NULL);
    c->thread_started = false;
}
