/* http_client.c - one HTTP request over libwebsockets' client (see
 * http_client.h). */
#include "rendezvous/ctl/http_client.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct req_state {
    const char *auth;      /* "Bearer TOKEN" or NULL */
    const char *body;
    size_t body_len;
    rdvctl_response *res;
    size_t cap;
    int done;              /* 1 completed, -1 failed */
} req_state;

static int append(req_state *st, const void *in, size_t len)
{
    rdvctl_response *r = st->res;
    if (r->len + len + 1 > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 4096;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return -1;
        r->body = nb;
        st->cap = cap;
    }
    memcpy(r->body + r->len, in, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    req_state *st = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (st) {
            snprintf(st->res->err, sizeof st->res->err, "%s",
                     in ? (const char *)in : "connection failed");
            st->done = -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!st)
            return 0;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        if (st->auth && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                                     (const unsigned char *)st->auth,
                                                     (int)strlen(st->auth), p, end))
            return -1;
        if (st->body) {
            static const char ct[] = "application/json";
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                             (const unsigned char *)ct, (int)sizeof ct - 1, p,
                                             end) ||
                lws_add_http_header_content_length(wsi, st->body_len, p, end))
                return -1;
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!st || !st->body)
            return 0;
        unsigned char *buf = malloc(LWS_PRE + st->body_len + 1);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, st->body, st->body_len);
        lws_client_http_body_pending(wsi, 0);
        int n = lws_write(wsi, buf + LWS_PRE, st->body_len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        st->body = NULL; /* written */
        return n < (int)st->body_len ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (st)
            st->res->status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return st && append(st, in, len) != 0 ? -1 : 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[4096 + LWS_PRE];
        char *p = buf + LWS_PRE;
        int n = (int)sizeof buf - LWS_PRE;
        return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (st)
            st->done = 1;
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (st && !st->done) {
            if (st->res->status)
                st->done = 1;
            else {
                snprintf(st->res->err, sizeof st->res->err, "the connection closed early");
                st->done = -1;
            }
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rdvctl_request(const char *method, const char *base_url, const char *path,
                   const char *token, const char *body, int timeout_ms, rdvctl_response *res)
{
    memset(res, 0, sizeof *res);
    char url[512], auth[600];
    if (snprintf(url, sizeof url, "%s", base_url) >= (int)sizeof url) {
        snprintf(res->err, sizeof res->err, "URL too long");
        return -1;
    }
    const char *prot = NULL, *host = NULL, *upath = NULL;
    int port = 0;
    if (lws_parse_uri(url, &prot, &host, &port, &upath) || strcmp(prot, "http") || !*host) {
        snprintf(res->err, sizeof res->err,
                 "'%.100s' is not an http://HOST:PORT URL (the operator's listener is plain "
                 "HTTP)",
                 base_url);
        return -1;
    }
    if (token)
        snprintf(auth, sizeof auth, "Bearer %.580s", token);
    static const struct lws_protocols protocols[] = {
        {"http", callback, 0, 0, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};
    lws_set_log_level(0, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        snprintf(res->err, sizeof res->err, "cannot create the HTTP client");
        return -1;
    }
    req_state st = {.auth = token ? auth : NULL, .body = body,
                    .body_len = body ? strlen(body) : 0, .res = res};
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = host;
    ci.port = port ? port : 80;
    ci.path = path;
    ci.host = host;
    ci.origin = host;
    ci.method = method;
    ci.protocol = protocols[0].name;
    ci.userdata = &st;
    if (!lws_client_connect_via_info(&ci) && !st.done) {
        snprintf(res->err, sizeof res->err, "cannot connect to %s:%d", host, ci.port);
        st.done = -1;
    }
    long long deadline = mono_ms() + timeout_ms;
    while (!st.done && mono_ms() < deadline)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    if (st.done != 1) {
        if (!st.done)
            snprintf(res->err, sizeof res->err, "no answer within %d ms", timeout_ms);
        free(res->body);
        res->body = NULL;
        res->len = 0;
        return -1;
    }
    if (!res->body && append(&st, "", 0) != 0) {
        snprintf(res->err, sizeof res->err, "out of memory");
        return -1;
    }
    return 0;
}
