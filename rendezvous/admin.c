/* admin.c - the admin API (see admin.h).
 *
 * Requests arrive on the operator's listener only (http.c routes /admin/
 * there and nowhere else). A request is handled whole once its body is in
 * (POST: LWS_CALLBACK_HTTP_BODY_COMPLETION; GET / DELETE at once), on the
 * loop thread, and answered with one JSON document. The token check comes
 * first, before the path is looked at, so an unauthenticated client learns
 * nothing about the API but that it exists.
 */
#include "rendezvous/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rendezvous/admission.h"
#include "rendezvous/audit.h"
#include "rendezvous/conn_limits.h"
#include "rendezvous/http.h"
#include "rendezvous/log.h"
#include "schema/nat_type.h"
#include "rendezvous/policy.h"
#include "rendezvous/relay.h"
#include "rendezvous/reload.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

#define TOKEN_MIN 16
#define TOKEN_MAX 512
#define NAME_MAX_LEN 32
#define PREFIX "/admin/v1/"

typedef struct admin_token {
    char name[NAME_MAX_LEN + 1];
    uint8_t digest[crypto_generichash_BYTES];
} admin_token;

struct srv_admin {
    admin_token t[SRV_ADMIN_TOKENS_MAX];
    int n;
};

/* ---- tokens ------------------------------------------------------------ */

/* Adds token tok (named name, or "token-" + the first 8 hex digits of its
 * digest). Returns 0 or -1 (message in err). */
static int add_token(struct srv_admin *a, const char *name, const char *tok, char *err,
                     size_t errlen)
{
    size_t n = strlen(tok);
    if (n < TOKEN_MIN || n > TOKEN_MAX) {
        snprintf(err, errlen, "a token must be %d to %d characters (e.g. `openssl rand -hex 32`)",
                 TOKEN_MIN, TOKEN_MAX);
        return -1;
    }
    if (a->n >= SRV_ADMIN_TOKENS_MAX) {
        snprintf(err, errlen, "at most %d tokens", SRV_ADMIN_TOKENS_MAX);
        return -1;
    }
    admin_token *t = &a->t[a->n];
    crypto_generichash(t->digest, sizeof t->digest, (const unsigned char *)tok, n, NULL, 0);
    if (name && *name) {
        if (strlen(name) > NAME_MAX_LEN) {
            snprintf(err, errlen, "a token's name is at most %d characters", NAME_MAX_LEN);
            return -1;
        }
        snprintf(t->name, sizeof t->name, "%s", name);
    } else {
        char hex[2 * crypto_generichash_BYTES + 1];
        sodium_bin2hex(hex, sizeof hex, t->digest, sizeof t->digest);
        snprintf(t->name, sizeof t->name, "token-%.8s", hex);
    }
    a->n++;
    return 0;
}

/* The token file: one token per line, "TOKEN" or "NAME TOKEN"; blank
 * lines and '#' comments ignored. */
static int read_token_file(struct srv_admin *a, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        close(fd);
        snprintf(err, errlen, "readable or writable by every user: chmod 600 (or 640 with the "
                              "server's group) the file");
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return -1;
    }
    char line[TOKEN_MAX + NAME_MAX_LEN + 8];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        s[strcspn(s, "\r\n")] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        char *sp = strpbrk(s, " \t");
        const char *name = NULL, *tok = s;
        if (sp) {
            *sp = '\0';
            name = s;
            tok = sp + 1;
            while (*tok == ' ' || *tok == '\t')
                tok++;
        }
        char why[160];
        if (strpbrk(tok, " \t") || add_token(a, name, tok, why, sizeof why) != 0) {
            if (strpbrk(tok, " \t"))
                snprintf(why, sizeof why, "expected 'TOKEN' or 'NAME TOKEN'");
            snprintf(err, errlen, "line %u: %s", lineno, why);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* Reads every configured token into a new set (*out; NULL when there is
 * none). Returns 0, or -1 with the reason in err. */
static int load_tokens(const srv_server *srv, struct srv_admin **out, char *err, size_t errlen)
{
    const char *path = srv->cfg->admin_token_file;
    const char *env = getenv("RENDEZVOUS_ADMIN_TOKEN");
    *out = NULL;
    if (!path[0] && !(env && *env))
        return 0;
    struct srv_admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char why[200] = "";
    if (path[0] && read_token_file(a, path, why, sizeof why) != 0) {
        snprintf(err, errlen, "--admin-token-file %.200s: %s", path, why);
        free(a);
        return -1;
    }
    if (env && *env && add_token(a, "env", env, why, sizeof why) != 0) {
        snprintf(err, errlen, "RENDEZVOUS_ADMIN_TOKEN: %s", why);
        free(a);
        return -1;
    }
    if (a->n == 0) {
        free(a);
        return 0;
    }
    *out = a;
    return 0;
}

/* The "admin-tokens" reload hook (reload.h): the token file again; a file
 * that cannot be used keeps the tokens in force. */
static int reload_tokens(void *user, char *err, size_t errlen)
{
    srv_server *srv = user;
    struct srv_admin *a = NULL;
    if (load_tokens(srv, &a, err, errlen) != 0)
        return -1;
    srv_admin_free(srv);
    srv->admin = a;
    srv_info(srv->log, "admin API: %d token(s)%s", a ? a->n : 0, a ? "" : ": the API is off");
    return 0;
}

int srv_admin_start(srv_server *srv)
{
    char err[320] = "";
    if (load_tokens(srv, &srv->admin, err, sizeof err) != 0) {
        srv_error(srv->log, "%s", err);
        return -1;
    }
    if (srv->cfg->admin_token_file[0] && !srv->admin)
        srv_warn(srv->log, "--admin-token-file %.200s holds no token: the admin API stays off",
                 srv->cfg->admin_token_file);
    if (srv->cfg->admin_token_file[0] &&
        srv_reload_register(&srv->reload, "admin-tokens", reload_tokens, srv) != 0) {
        srv_error(srv->log, "--admin-token-file: cannot register the SIGHUP reload hook");
        return -1;
    }
    return 0;
}

bool srv_admin_enabled(const srv_server *srv)
{
    return srv->admin && srv->admin->n > 0;
}

void srv_admin_free(srv_server *srv)
{
    if (srv->admin)
        sodium_memzero(srv->admin, sizeof *srv->admin);
    free(srv->admin);
    srv->admin = NULL;
}

/* The name of the token in the request's Authorization header, or NULL.
 * Every configured token is compared (constant time, digests). */
static const char *check_token(const srv_server *srv, struct lws *wsi)
{
    char hdr[TOKEN_MAX + 16];
    int n = lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 7 || strncasecmp(hdr, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = hdr + 7;
    while (*tok == ' ')
        tok++;
    uint8_t d[crypto_generichash_BYTES];
    crypto_generichash(d, sizeof d, (const unsigned char *)tok, strlen(tok), NULL, 0);
    sodium_memzero(hdr, sizeof hdr);
    const char *who = NULL;
    for (int i = 0; i < srv->admin->n; i++)
        if (sodium_memcmp(d, srv->admin->t[i].digest, sizeof d) == 0 && !who)
            who = srv->admin->t[i].name;
    return who;
}

/* ---- answers ----------------------------------------------------------- */

static int reply_json(struct lws *wsi, unsigned status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return srv_http_reply(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "application/json",
                              "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n",
                              55, false);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t) {
        s = t;
        s[n++] = '\n';
        s[n] = '\0';
    }
    int rc = srv_http_reply(wsi, status, "application/json", s, n, false);
    free(s);
    return rc;
}

static int reply_error(struct lws *wsi, unsigned status, const char *code, const char *msg)
{
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    if (status == HTTP_STATUS_UNAUTHORIZED) {
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        int rc = srv_http_reply(wsi, status, "application/json", s ? s : "", s ? strlen(s) : 0,
                                true);
        free(s);
        return rc;
    }
    return reply_json(wsi, status, o);
}

/* ---- nodes --------------------------------------------------------------- */

/* "ADDR:PORT" ("[v6]:PORT") the server observed for c. */
static void observed(const srv_conn *c, char *out, size_t n)
{
    char ip[64] = "?";
    if (c->ip) {
        static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        const uint8_t *a = c->ip->addr;
        if (!memcmp(a, v4map, 12))
            snprintf(ip, sizeof ip, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        else if (inet_ntop(AF_INET6, a, ip + 1, sizeof ip - 2)) {
            ip[0] = '[';
            strcat(ip, "]");
        }
    }
    snprintf(out, n, "%s:%u", ip, (unsigned)c->observed_port);
}

static json_t *node_json(srv_server *srv, srv_conn *c)
{
    char id[RDV_NODE_ID_HEXLEN + 1], addr[80];
    srv_conn_node_hex(c, id);
    observed(c, addr, sizeof addr);
    int64_t now_mono = srv_mono_ms(), now = rdv_now_ms();
    int sessions = 0;
    uint64_t bytes = 0;
    srv_relay_conn_usage(&srv->relay, c, &sessions, &bytes);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:{s:i, s:I}}", "nodeID", id, "natType",
                          rdv_wire_nat_name(c->nat_type), "observedAddress", addr,
                          "connectedSince", (json_int_t)(now - (now_mono - c->connected_ms)),
                          "connectedMs", (json_int_t)(now_mono - c->connected_ms), "relay",
                          "sessions", sessions, "bytes", (json_int_t)bytes);
    if (o && c->cert) {
        json_t *g = json_array();
        for (int i = 0; g && i < c->cert->n_groups; i++)
            json_array_append_new(g, json_string(c->cert->groups[i]));
        json_object_set_new(o, "groups", g ? g : json_null());
        json_object_set_new(o, "certSerial", json_string(c->cert->serial));
        json_object_set_new(o, "certExpires", json_integer(c->cert->expires));
    }
    return o;
}

static void add_node(srv_hnode *n, void *user)
{
    void **u = user;
    srv_conn *c = srv_container_of(n, srv_conn, link.node);
    json_t *j = node_json(u[0], c);
    if (!j || json_array_append_new(u[1], j) != 0)
        u[2] = (void *)1; /* out of memory */
}

static srv_conn *find_node(srv_server *srv, const char *id)
{
    uint8_t pk[RDV_NODE_ID_BYTES];
    if (!rdv_node_id_valid(id, strlen(id)) || rdv_node_id_to_pk(id, pk) != 0)
        return NULL;
    srv_hnode *n = srv_hmap_get(&srv->nodes, pk);
    return n ? srv_container_of(n, srv_conn, link.node) : NULL;
}

/* ---- requests ------------------------------------------------------------ */

typedef struct ctx {
    srv_server *srv;
    struct lws *wsi;
    const char *who;
    char peer[80];
    const char *method;
    const char *path;   /* after PREFIX */
    json_t *body;       /* parsed POST body or NULL */
} ctx;

static bool is(const ctx *x, const char *method, const char *path)
{
    return !strcmp(x->method, method) && !strcmp(x->path, path);
}

/* `field` of the body as a string, or NULL. */
static const char *body_str(const ctx *x, const char *field)
{
    json_t *v = x->body ? json_object_get(x->body, field) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Answers an admission result; records the change in the audit log. */
static int adm_result(ctx *x, const char *action, const char *target, int rc, int closed)
{
    const char *res = srv_admission_rc_name(rc);
    char detail[64] = "";
    if (closed > 0)
        snprintf(detail, sizeof detail, "closed %d connection(s)", closed);
    if (rc != SRV_ADM_EINVAL && srv_audit_record(x->srv, x->who, x->peer, action, target, res,
                                                 detail) != 0 &&
        rc >= 0)
        res = "ok, audit not stored";
    if (rc == SRV_ADM_EINVAL)
        return reply_error(x->wsi, HTTP_STATUS_BAD_REQUEST, "invalid",
                           "not a node ID (64 lowercase hex digits) or serial (32)");
    if (rc < 0)
        return reply_error(x->wsi, rc == SRV_ADM_ENOTREADY ? HTTP_STATUS_SERVICE_UNAVAILABLE
                                                           : HTTP_STATUS_INTERNAL_SERVER_ERROR,
                           res, "the change was not made (the server log says why)");
    json_t *o = json_pack("{s:s, s:s, s:s}", "action", action, "target", target, "result", res);
    if (o && closed >= 0)
        json_object_set_new(o, "closed", json_integer(closed));
    return reply_json(x->wsi, HTTP_STATUS_OK, o);
}

/* POST revoke / unrevoke: {"nodeID": ID} or {"serial": S}. */
static int do_revoke(ctx *x, bool undo)
{
    const char *id = body_str(x, "nodeID"), *serial = body_str(x, "serial");
    if (!id == !serial)
        return reply_error(x->wsi, HTTP_STATUS_BAD_REQUEST, "missing_field",
                           "give exactly one of \"nodeID\" and \"serial\"");
    int closed = 0;
    int rc = undo ? srv_admission_unrevoke(x->srv, serial != NULL, serial ? serial : id)
                  : srv_admission_revoke(x->srv, serial != NULL, serial ? serial : id, &closed);
    return adm_result(x, undo ? (serial ? "unrevoke-serial" : "unrevoke")
                              : (serial ? "revoke-serial" : "revoke"),
                      serial ? serial : id, rc, undo ? -1 : closed);
}

static int route(ctx *x)
{
    srv_server *srv = x->srv;
    if (is(x, "GET", "nodes")) {
        json_t *arr = json_array();
        void *u[3] = {srv, arr, NULL};
        if (arr)
            srv_hmap_each(&srv->nodes, add_node, u);
        if (!arr || u[2]) {
            json_decref(arr);
            return reply_error(x->wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
                               "out of memory");
        }
        return reply_json(x->wsi, HTTP_STATUS_OK,
                          json_pack("{s:o, s:I, s:s}", "nodes", arr, "count",
                                    (json_int_t)json_array_size(arr), "instance",
                                    srv->instance_id));
    }
    if (!strncmp(x->path, "nodes/", 6)) {
        char id[RDV_NODE_ID_HEXLEN + 2] = "";
        const char *rest = x->path + 6;
        size_t idlen = strcspn(rest, "/");
        if (idlen < sizeof id) {
            memcpy(id, rest, idlen);
            id[idlen] = '\0';
        }
        const char *tail = rest + idlen;
        if (!rdv_node_id_valid(id, strlen(id)))
            return reply_error(x->wsi, HTTP_STATUS_BAD_REQUEST, "invalid",
                               "not a node ID (64 lowercase hex digits)");
        bool get = !strcmp(x->method, "GET") && !*tail;
        bool disc = !strcmp(x->method, "POST") && !strcmp(tail, "/disconnect");
        if (!get && !disc)
            return reply_error(x->wsi, HTTP_STATUS_NOT_FOUND, "not_found",
                               "use GET nodes/ID or POST nodes/ID/disconnect");
        srv_conn *c = find_node(srv, id);
        if (!c && get)
            return reply_error(x->wsi, HTTP_STATUS_NOT_FOUND, "not_found",
                               "that node is not connected to this instance");
        if (get)
            return reply_json(x->wsi, HTTP_STATUS_OK, json_pack("{s:o}", "node",
                                                                node_json(srv, c)));
        if (c)
            srv_conn_close(srv, c, RDV_EC_NONE, NULL, LWS_CLOSE_STATUS_POLICY_VIOLATION);
        const char *why = body_str(x, "reason");
        srv_audit_record(srv, x->who, x->peer, "disconnect", id, c ? "ok" : "not_connected",
                         why ? why : "");
        if (!c)
            return reply_error(x->wsi, HTTP_STATUS_NOT_FOUND, "not_found",
                               "that node is not connected to this instance");
        return reply_json(x->wsi, HTTP_STATUS_OK,
                          json_pack("{s:s, s:s, s:s}", "action", "disconnect", "target", id,
                                    "result", "ok"));
    }
    if (is(x, "GET", "allowlist")) {
        json_t *l = srv_admission_list_json(srv, SRV_ADM_LIST_ALLOW);
        return l ? reply_json(x->wsi, HTTP_STATUS_OK, json_pack("{s:o}", "allowlist", l))
                 : reply_error(x->wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
                               "out of memory");
    }
    if (is(x, "POST", "allowlist")) {
        const char *id = body_str(x, "nodeID");
        if (!id)
            return reply_error(x->wsi, HTTP_STATUS_BAD_REQUEST, "missing_field",
                               "the body must be {\"nodeID\": \"<64 hex>\"}");
        return adm_result(x, "allow", id, srv_admission_allow_add(srv, id), -1);
    }
    if (!strcmp(x->method, "DELETE") && !strncmp(x->path, "allowlist/", 10))
        return adm_result(x, "disallow", x->path + 10,
                          srv_admission_allow_remove(srv, x->path + 10), -1);
    if (is(x, "GET", "revoked")) {
        json_t *n = srv_admission_list_json(srv, SRV_ADM_LIST_REVOKED_NODE);
        json_t *s = srv_admission_list_json(srv, SRV_ADM_LIST_REVOKED_SERIAL);
        if (!n || !s) {
            json_decref(n);
            json_decref(s);
            return reply_error(x->wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
                               "out of memory");
        }
        return reply_json(x->wsi, HTTP_STATUS_OK, json_pack("{s:o, s:o}", "nodes", n,
                                                            "serials", s));
    }
    if (is(x, "POST", "revoke") || is(x, "POST", "unrevoke"))
        return do_revoke(x, !strcmp(x->path, "unrevoke"));
    if (!strcmp(x->method, "GET") && !strncmp(x->path, "audit", 5) &&
        (!x->path[5] || x->path[5] == '?')) {
        int limit = 100;
        const char *q = strstr(x->path, "limit=");
        if (q)
            limit = atoi(q + 6);
        json_t *l = srv_audit_list(srv, limit);
        return l ? reply_json(x->wsi, HTTP_STATUS_OK, json_pack("{s:o}", "entries", l))
                 : reply_error(x->wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
                               "cannot read the audit log");
    }
    if (is(x, "GET", "policy")) {
        json_t *p = srv_policy_json(srv);
        return p ? reply_json(x->wsi, HTTP_STATUS_OK, p)
                 : reply_error(x->wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
                               "out of memory");
    }
    return reply_error(x->wsi, HTTP_STATUS_NOT_FOUND, "not_found",
                       "no such endpoint; see README \"Admin API\"");
}

/* Handles the complete request in req. */
static int handle(srv_server *srv, struct lws *wsi, srv_admin_req *req)
{
    ctx x = {.srv = srv, .wsi = wsi, .method = req->method, .path = req->path};
    int rc;
    if (!srv_admin_enabled(srv)) {
        rc = reply_error(wsi, HTTP_STATUS_NOT_FOUND, "admin_off",
                         "the admin API is off: configure a token with --admin-token-file "
                         "FILE or RENDEZVOUS_ADMIN_TOKEN");
        goto out;
    }
    uint8_t key[16];
    uint16_t port = 0;
    char ip[64] = "?";
    (void)srv_peer_address(wsi, key, ip, sizeof ip, &port);
    snprintf(x.peer, sizeof x.peer, "%.64s:%u", ip, (unsigned)port);
    x.who = check_token(srv, wsi);
    if (!x.who) {
        srv_warn(srv->log, "admin API: request from %s without a valid token refused",
                 x.peer);
        rc = reply_error(wsi, HTTP_STATUS_UNAUTHORIZED, "unauthorized",
                         "send \"Authorization: Bearer TOKEN\" with a configured token");
        goto out;
    }
    if (req->too_big) {
        rc = reply_error(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "too_large",
                         "the body is over 64 KiB");
        goto out;
    }
    if (strncmp(req->path, PREFIX, strlen(PREFIX)) != 0) {
        rc = reply_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
                         "the admin API is under " PREFIX);
        goto out;
    }
    x.path = req->path + strlen(PREFIX);
    if (req->len) {
        json_error_t err;
        x.body = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &err);
        if (!json_is_object(x.body)) {
            json_decref(x.body);
            rc = reply_error(wsi, HTTP_STATUS_BAD_REQUEST, "bad_json",
                             "the body must be one JSON object");
            goto out;
        }
    }
    rc = route(&x);
    json_decref(x.body);
out:
    free(req->body);
    req->body = NULL;
    req->len = req->cap = 0;
    req->active = false;
    req->too_big = false;
    return rc;
}

int srv_admin_http(srv_server *srv, struct lws *wsi, srv_admin_req *req,
                   enum lws_callback_reasons reason, const void *in, size_t len)
{
    if (!req)
        return -1;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        free(req->body);
        memset(req, 0, sizeof *req);
        snprintf(req->path, sizeof req->path, "%s", (const char *)in);
        /* the query string, if any (lws keeps it apart) */
        char q[64];
        if (lws_hdr_copy(wsi, q, sizeof q, WSI_TOKEN_HTTP_URI_ARGS) > 0) {
            size_t n = strlen(req->path);
            snprintf(req->path + n, sizeof req->path - n, "?%s", q);
        }
        const char *m = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)      ? "GET"
                        : lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI)   ? "POST"
                        : lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) ? "DELETE"
                                                                          : "";
        snprintf(req->method, sizeof req->method, "%s", m);
        if (!*m)
            return reply_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method",
                               "the admin API takes GET, POST and DELETE");
        char cl[24] = "";
        bool body = !strcmp(m, "POST") &&
                    lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
                    atoll(cl) > 0;
        if (body) {
            req->active = true; /* answered at HTTP_BODY_COMPLETION */
            if (atoll(cl) > SRV_ADMIN_BODY_MAX)
                req->too_big = true;
            return 0;
        }
        return handle(srv, wsi, req);
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (!req->active || req->too_big)
            return 0;
        if (req->len + len > SRV_ADMIN_BODY_MAX) {
            req->too_big = true;
            return 0;
        }
        if (req->len + len > req->cap) {
            size_t cap = req->cap ? req->cap * 2 : 1024;
            while (cap < req->len + len)
                cap *= 2;
            char *nb = realloc(req->body, cap);
            if (!nb) {
                req->too_big = true;
                return 0;
            }
            req->body = nb;
            req->cap = cap;
        }
        memcpy(req->body + req->len, in, len);
        req->len += len;
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return req->active ? handle(srv, wsi, req) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        free(req->body);
        req->body = NULL;
        req->len = req->cap = 0;
        req->active = false;
        return 0;
    default:
        return 0;
    }
}
