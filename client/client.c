/* client.c - the rdv_client handle: create/destroy, configuration, the
 * public send / lookup / watch API, the bounded outbound queue and the
 * small helpers (state names, NAT type names, session IDs).
 *
 * API calls may come from any thread: they build and sign the message on
 * the caller's thread, take `lock` only to append it to the outbound queue,
 * and wake the service thread through the eventfd; only the service thread
 * touches libwebsockets (loop.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/cert.h"
#include "client/client.h"
#include "client/proxy.h"
#include "client/direct.h"
#include "client/nat/portmap.h"
#include "schema/ids.h"
#include "schema/nat_type.h"
#include "schema/sign.h"

/* loop.c */

int64_t rdv__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rdv__server_now(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    int64_t off = c->time_offset_ms;
    pthread_mutex_unlock(&c->lock);
    return rdv_now_ms() + off;
}

void rdv__wake(rdv_client *c)
{
    uint64_t one = 1;
    ssize_t n = write(c->evfd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, which is enough */
}

void rdv_session_id_generate(char out[RDV_SESSION_ID_LEN + 1])
{
    if (sodium_init() < 0)
        abort(); /* libsodium cannot fail here on a working system */
    rdv_uuid_v4(out);
}

int rdv_node_id_is_valid(const char *s)
{
    return s && rdv_node_id_valid(s, strlen(s)) ? 1 : 0;
}

const char *rdv_state_name(rdv_state state)
{
    switch (state) {
    case RDV_STATE_DISCONNECTED: return "disconnected";
    case RDV_STATE_CONNECTING: return "connecting";
    case RDV_STATE_AUTHENTICATED: return "authenticated";
    case RDV_STATE_FAILED: return "failed";
    }
    return "unknown";
}

/* the public enum has the wire numbering (schema/nat_type.h) */
_Static_assert(RDV_NAT_SYMMETRIC == (int)RDV_WIRE_NAT_SYMMETRIC &&
                   RDV_NAT_PORT_RESTRICTED == (int)RDV_WIRE_NAT_PORT_RESTRICTED &&
                   RDV_NAT_FULL_CONE == (int)RDV_WIRE_NAT_FULL_CONE,
               "rdv_nat_type follows rdv_wire_nat");

const char *rdv_nat_type_name(rdv_nat_type nat)
{
    return rdv_wire_nat_name((int)nat);
}

rdv_nat_type rdv_nat_type_from_name(const char *name)
{
    int t = rdv_wire_nat_parse(name);
    return t < 0 ? RDV_NAT_UNKNOWN : (rdv_nat_type)t;
}

void rdv__set_state(rdv_client *c, rdv_state st)
{
    pthread_mutex_lock(&c->lock);
    rdv_state old = c->state;
    c->state = st;
    pthread_mutex_unlock(&c->lock);
    if (old != st && c->cfg.cb_state_changed && !atomic_load(&c->destroying))
        c->cfg.cb_state_changed(c, st, c->cfg.user_ptr);
}

void rdv__report(rdv_client *c, int code, const char *server_code,
                 const char *message, const char *ref, const char *msg_type,
                 const char *field, const char *from)
{
    if (!c->cfg.cb_error || atomic_load(&c->destroying))
        return;
    rdv_error_info e = {
        .code = code,
        .server_code = server_code,
        .message = message ? message : rdv_strerror(code),
        .ref = ref,
        .msg_type = msg_type,
        .field = field,
        .from_node_id = from,
    };
    c->cfg.cb_error(c, &e, c->cfg.user_ptr);
}

rdv__outmsg *rdv__outq_take_all(rdv_client *c)
{
    rdv__outmsg *all = c->outq_head;
    c->outq_head = c->outq_tail = NULL;
    c->outq_count = 0;
    c->outq_bytes = 0;
    return all;
}

int rdv__outq_append_locked(rdv_client *c, rdv__outmsg *m, bool force)
{
    int64_t max = c->limits.max_message_bytes > 0 ? c->limits.max_message_bytes
                                                   : RDV_MAX_MESSAGE_BYTES;
    if (!force && c->state != RDV_STATE_AUTHENTICATED)
        return RDV_ERR_NOT_CONNECTED;
    if ((int64_t)m->len > max)
        return RDV_ERR_TOO_LARGE;
    if (c->outq_count >= RDV__OUTQ_MAX_MSGS || c->outq_bytes + m->len > RDV__OUTQ_MAX_BYTES)
        return RDV_ERR_BACKLOG;
    m->next = NULL;
    if (c->outq_tail)
        c->outq_tail->next = m;
    else
        c->outq_head = m;
    c->outq_tail = m;
    c->outq_count++;
    c->outq_bytes += m->len;
    return 0;
}

int rdv__enqueue(rdv_client *c, const char *text, size_t len,
                 const char *type, const char *ref, bool force)
{
    rdv__outmsg *m = malloc(sizeof(*m) + RDV__LWS_PRE + len + 1);
    if (!m)
        return RDV_ERR_NOMEM;
    m->next = NULL;
    m->len = len;
    m->binary = false;
    snprintf(m->ref, sizeof(m->ref), "%s", ref ? ref : "");
    snprintf(m->type, sizeof(m->type), "%s", type ? type : "");
    memcpy(m->buf + RDV__LWS_PRE, text, len);
    m->buf[RDV__LWS_PRE + len] = '\0';

    pthread_mutex_lock(&c->lock);
    int rc = rdv__outq_append_locked(c, m, force);
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        free(m);
        return rc;
    }
    rdv__wake(c);
    return 0;
}

size_t rdv_client_pending(rdv_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->outq_count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Signing time: the server-clock estimate, strictly increasing per client
 * so two messages of one session never share a timestamp. */
static int64_t next_sign_ts(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    int64_t ts = rdv_now_ms() + c->time_offset_ms;
    if (ts <= c->last_sign_ts)
        ts = c->last_sign_ts + 1;
    c->last_sign_ts = ts;
    pthread_mutex_unlock(&c->lock);
    return ts;
}

char *rdv__build_text(rdv_client *c, rdv_msg_type type, json_t *body, size_t *len, int *rc)
{
    *rc = RDV_ERR_NOMEM;
    if (!body)
        return NULL;
    if (rdv_msg_type_is_signed(type)) {
        if (json_object_set_new(body, "timestamp", json_integer(next_sign_ts(c))) != 0 ||
            rdv_sig_sign(type, body, c->id.secret_key) != 0) {
            json_decref(body);
            return NULL;
        }
    }
    rdv_msg_error err;
    if (rdv_msg_validate(type, body, &err) != 0) {
        json_decref(body);
        *rc = RDV_ERR_INVALID;
        return NULL;
    }
    json_t *env = rdv_msg_wrap(type, body);
    if (!env)
        return NULL;
    char *text = rdv_msg_dump(env, len);
    json_decref(env);
    if (text)
        *rc = 0;
    return text;
}

int rdv__send_body(rdv_client *c, rdv_msg_type type, json_t *body,
                   const char *ref, bool force)
{
    size_t len = 0;
    int rc;
    char *text = rdv__build_text(c, type, body, &len, &rc);
    if (!text)
        return rc;
    rc = rdv__enqueue(c, text, len, rdv_msg_type_name(type), ref, force);
    free(text);
    return rc;
}

/* ---- create / destroy ------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int rdv_client_create(const rdv_client_config *config, rdv_client **out)
{
    if (!out)
        return RDV_ERR_INVALID;
    *out = NULL;
    if (!config || !config->server_url || !config->identity)
        return RDV_ERR_INVALID;
    rdv__url urls[RDV__MAX_URLS];
    int n_urls = 0;
    char(*texts)[RDV__URL_TEXT] = malloc(sizeof(char[RDV__MAX_URLS][RDV__URL_TEXT]));
    if (!texts)
        return RDV_ERR_NOMEM;
    int url_rc = rdv__url_list_parse(config->server_url, urls, texts, &n_urls);
    free(texts);
    if (url_rc != 0)
        return RDV_ERR_BAD_URL;
    if (config->connect_timeout_ms < 0 || config->auth_timeout_ms < 0 ||
        config->keepalive_ms < 0 || config->reconnect.initial_backoff_ms < 0 ||
        config->reconnect.max_backoff_ms < 0 || config->reconnect.max_attempts < 0 ||
        config->reconnect.jitter_percent < -1 || config->reconnect.jitter_percent > 100 ||
        (unsigned)config->nat_type > RDV_NAT_SYMMETRIC || config->stun_rto_ms < 0 ||
        config->direct_timeout_ms < 0 || config->direct_keepalive_ms < 0 ||
        config->spray_ports < -1 || config->stun_server_count > RDV_MAX_STUN_SERVERS ||
        config->portmap_lease_s < 0 || config->portmap_lease_s > RDV_MAX_PORTMAP_LEASE_S ||
        (config->stun_server_count && !config->stun_servers))
        return RDV_ERR_INVALID;
    for (size_t i = 0; i < config->stun_server_count; i++)
        if (!config->stun_servers[i] || !config->stun_servers[i][0] ||
            strlen(config->stun_servers[i]) > 300)
            return RDV_ERR_INVALID;
    if (config->software && strlen(config->software) > 64)
        return RDV_ERR_INVALID;
    if (sodium_init() < 0)
        return RDV_ERR_CRYPTO;
    uint8_t pk[RDV_PUBLIC_KEY_BYTES];
    if (crypto_sign_ed25519_sk_to_pk(pk, config->identity->secret_key) != 0 ||
        sodium_memcmp(pk, config->identity->public_key, sizeof(pk)) != 0)
        return RDV_ERR_INVALID; /* the halves of the identity do not match */

    json_t *cert = NULL;
    if (config->cert_file) {
        char id_hex[RDV_NODE_ID_LEN + 1];
        rdv_identity_node_id(config->identity, id_hex);
        int rc = rdv__cert_load(config->cert_file, id_hex, &cert);
        if (rc != 0)
            return rc;
    }
    rdv_client *c = calloc(1, sizeof(*c));
    if (!c) {
        json_decref(cert);
        return RDV_ERR_NOMEM;
    }
    c->cert = cert;
    c->epfd = c->evfd = c->reg_fd = -1;
    c->udp4 = c->udp6 = -1;
    c->stun_aux4 = c->stun_aux6 = -1;
    c->cfg = *config;
    if (rdv__url_list_parse(config->server_url, c->urls, c->url_text, &c->n_urls) != 0)
        goto nomem; /* parsed above: cannot fail */
    /* a fleet spreads over the instances: start at a random one */
    c->url_idx = c->n_urls > 1 ? (int)randombytes_uniform((uint32_t)c->n_urls) : 0;
    c->url = c->urls[c->url_idx];
    c->url_copy = strdup(config->server_url);
    c->ca_copy = dup_or_null(config->tls_ca_file);
    c->software_copy = strdup(config->software ? config->software
                                               : "librendezvous/" RDV_VERSION_STRING);
    if (!c->url_copy || !c->software_copy || (config->tls_ca_file && !c->ca_copy))
        goto nomem;
    c->cfg.server_url = c->url_copy;
    c->cfg.tls_ca_file = c->ca_copy;
    c->cfg.cert_file = NULL; /* read into c->cert: the path is not kept */
    c->cfg.software = c->software_copy;
    c->cfg.identity = &c->id;
    memcpy(&c->id, config->identity, sizeof(c->id));
    rdv_identity_node_id(&c->id, c->node_id);

    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = RDV_DEFAULT_CONNECT_TIMEOUT_MS;
    if (!c->cfg.auth_timeout_ms)
        c->cfg.auth_timeout_ms = RDV_DEFAULT_AUTH_TIMEOUT_MS;
    if (!c->cfg.keepalive_ms)
        c->cfg.keepalive_ms = RDV_DEFAULT_KEEPALIVE_MS;
    rdv_reconnect_policy *rp = &c->cfg.reconnect;
    if (!rp->initial_backoff_ms)
        rp->initial_backoff_ms = RDV_DEFAULT_INITIAL_BACKOFF_MS;
    if (!rp->max_backoff_ms)
        rp->max_backoff_ms = RDV_DEFAULT_MAX_BACKOFF_MS;
    if (rp->max_backoff_ms < rp->initial_backoff_ms)
        rp->max_backoff_ms = rp->initial_backoff_ms;
    if (!rp->jitter_percent)
        rp->jitter_percent = RDV_DEFAULT_JITTER_PERCENT;
    else if (rp->jitter_percent < 0)
        rp->jitter_percent = 0;

    if (!c->cfg.direct_timeout_ms)
        c->cfg.direct_timeout_ms = RDV_DEFAULT_DIRECT_TIMEOUT_MS;
    if (!c->cfg.direct_keepalive_ms)
        c->cfg.direct_keepalive_ms = RDV_DEFAULT_DIRECT_KEEPALIVE_MS;
    if (!c->cfg.spray_ports)
        c->cfg.spray_ports = RDV_DEFAULT_SPRAY_PORTS;
    else if (c->cfg.spray_ports < 0)
        c->cfg.spray_ports = 0; /* disabled */
    c->cfg.stun_servers = NULL; /* the copies, below */

    c->state = RDV_STATE_DISCONNECTED;
    c->fresh.past_ms = RDV_FRESH_PAST_MS;
    c->fresh.future_ms = RDV_FRESH_FUTURE_MS;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->url_copy);
        free(c->ca_copy);
        free(c->software_copy);
        json_decref(c->cert);
        sodium_memzero(&c->id, sizeof(c->id));
        free(c);
        return RDV_ERR_NOMEM;
    }
    if (rdv__replay_init(&c->replay) != 0)
        goto nomem_locked;
    c->lcand = calloc(RDV__MAX_LOCAL_CANDS, sizeof(*c->lcand));
    if (!c->lcand)
        goto nomem_locked;
    if (config->stun_server_count) {
        c->stun_names = calloc(config->stun_server_count, sizeof(char *));
        if (!c->stun_names)
            goto nomem_locked;
        for (size_t i = 0; i < config->stun_server_count; i++)
            if (!(c->stun_names[i] = strdup(config->stun_servers[i])))
                goto nomem_locked;
        c->cfg.stun_servers = (const char *const *)c->stun_names;
    }
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->epfd < 0 || c->evfd < 0)
        goto io;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->evfd};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) != 0)
        goto io;
    if (rdv__discovery_init(c) != 0)
        goto io;
    int rc = rdv__loop_init(c);
    if (rc != 0) {
        rdv_client_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
io:
    rdv_client_destroy(c);
    return RDV_ERR_IO;
nomem_locked:
    rdv_client_destroy(c);
    return RDV_ERR_NOMEM;
nomem:
    json_decref(c->cert);
    free(c->url_copy);
    free(c->ca_copy);
    free(c->software_copy);
    sodium_memzero(&c->id, sizeof(c->id));
    free(c);
    return RDV_ERR_NOMEM;
}

void rdv_client_destroy(rdv_client *c)
{
    if (!c)
        return;
    if (c->ctx && rdv__in_callback(c)) {
        /* Freeing the client under its own service loop would crash the
         * caller on return; refuse loudly instead. */
        fprintf(stderr, "librendezvous: rdv_client_destroy() called from a callback "
                        "of the same client: ignored (call it after the callback)\n");
        return;
    }
    atomic_store(&c->destroying, true);
    rdv__loop_stop_thread(c);
    rdv__portmap_stop(c); /* deletes the gateway mapping */
    rdv__loop_free(c);
    rdv__session_free_all(c);
    rdv__discovery_free(c);
    for (size_t i = 0; c->stun_names && i < c->cfg.stun_server_count; i++)
        free(c->stun_names[i]);
    free(c->stun_names);
    free(c->lcand);
    rdv__outmsg *m = rdv__outq_take_all(c);
    while (m) {
        rdv__outmsg *n = m->next;
        free(m);
        m = n;
    }
    free(c->watches);
    free(c->rx);
    rdv__replay_free(&c->replay);
    if (c->evfd >= 0)
        close(c->evfd);
    if (c->epfd >= 0)
        close(c->epfd);
    sodium_memzero(&c->id, sizeof(c->id));
    json_decref(c->cert);
    free(c->url_copy);
    free(c->ca_copy);
    free(c->software_copy);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- queries ----------------------------------------------------------- */

int rdv_client_get_info(rdv_client *c, rdv_client_info *info)
{
    if (!c || !info)
        return RDV_ERR_INVALID;
    memset(info, 0, sizeof(*info));
    memcpy(info->node_id, c->node_id, sizeof(info->node_id));
    pthread_mutex_lock(&c->lock);
    info->state = c->state;
    memcpy(info->server_name, c->server_name, sizeof(info->server_name));
    memcpy(info->observed_ip, c->observed_ip, sizeof(info->observed_ip));
    info->observed_port = c->observed_port;
    info->server_time_offset_ms = c->time_offset_ms;
    info->limits = c->limits;
    info->connects = c->connects;
    info->reconnect_attempt = c->attempt;
    info->last_error = c->last_error;
    memcpy(info->last_error_text, c->last_error_text, sizeof(info->last_error_text));
    pthread_mutex_unlock(&c->lock);
    return 0;
}

rdv_state rdv_client_state(rdv_client *c)
{
    if (!c)
        return RDV_STATE_FAILED;
    pthread_mutex_lock(&c->lock);
    rdv_state s = c->state;
    pthread_mutex_unlock(&c->lock);
    return s;
}

const char *rdv_client_node_id(const rdv_client *c)
{
    return c ? c->node_id : "";
}

int64_t rdv_client_server_time_ms(rdv_client *c)
{
    return c ? rdv__server_now(c) : rdv_now_ms();
}

/* ---- sending ----------------------------------------------------------- */

static bool authenticated(rdv_client *c)
{
    return rdv_client_state(c) == RDV_STATE_AUTHENTICATED;
}

/* Checks the common arguments of a routed message. */
static int check_routed(rdv_client *c, const char *to, const char *session_id)
{
    if (!c || !to || !session_id || !rdv_node_id_valid(to, strlen(to)) ||
        strcmp(to, c->node_id) == 0 ||
        !rdv_uuid_valid(session_id, strlen(session_id)))
        return RDV_ERR_INVALID;
    return authenticated(c) ? 0 : RDV_ERR_NOT_CONNECTED;
}

static const char *ip_or_unknown(const char *ip)
{
    return ip && *ip ? ip : "0.0.0.0";
}

static json_t *conn_info_json(const rdv_connection_info *info)
{
    json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:s}",
                          "publicIP", ip_or_unknown(info->public_ip),
                          "publicPort", (int)info->public_port,
                          "localIP", ip_or_unknown(info->local_ip),
                          "localPort", (int)info->local_port,
                          "natType", rdv_nat_type_name(info->nat_type));
    if (o && info->wg_public_key[0] &&
        json_object_set_new(o, "wgPublicKey", json_string(info->wg_public_key)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int send_session(rdv_client *c, rdv_msg_type type, const char *to,
                        const char *session_id, const rdv_connection_info *info)
{
    int rc = check_routed(c, to, session_id);
    if (rc != 0)
        return rc;
    if (!info || (unsigned)info->nat_type > RDV_NAT_SYMMETRIC)
        return RDV_ERR_INVALID;
    json_t *ci = conn_info_json(info);
    if (!ci)
        return RDV_ERR_NOMEM;
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "fromNodeID", c->node_id,
                             "toNodeID", to, "sessionID", session_id,
                             "connectionInfo", ci);
    return rdv__send_body(c, type, body, session_id, false);
}

int rdv_client_send_offer(rdv_client *c, const char *to_node_id,
                          const char *session_id, const rdv_connection_info *info)
{
    return send_session(c, RDV_MSG_OFFER, to_node_id, session_id, info);
}

int rdv_client_send_answer(rdv_client *c, const char *to_node_id,
                           const char *session_id, const rdv_connection_info *info)
{
    return send_session(c, RDV_MSG_ANSWER, to_node_id, session_id, info);
}

int rdv_client_send_candidate(rdv_client *c, const char *to_node_id,
                              const char *session_id, const rdv_candidate *cand)
{
    int rc = check_routed(c, to_node_id, session_id);
    if (rc != 0)
        return rc;
    if (!cand || !cand->ip[0] || !cand->type[0])
        return RDV_ERR_INVALID;
    json_t *cj = json_pack("{s:s, s:i, s:s, s:I}", "ip", cand->ip,
                           "port", (int)cand->port, "type", cand->type,
                           "priority", (json_int_t)cand->priority);
    if (!cj)
        return RDV_ERR_INVALID;
    if ((cand->foundation[0] &&
         json_object_set_new(cj, "foundation", json_string(cand->foundation)) != 0) ||
        (cand->related_ip[0] &&
         (json_object_set_new(cj, "relatedIP", json_string(cand->related_ip)) != 0 ||
          json_object_set_new(cj, "relatedPort", json_integer(cand->related_port)) != 0))) {
        json_decref(cj);
        return RDV_ERR_INVALID;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "fromNodeID", c->node_id,
                             "toNodeID", to_node_id, "sessionID", session_id,
                             "candidate", cj);
    return rdv__send_body(c, RDV_MSG_ICE_CANDIDATE, body, session_id, false);
}

/* Builds {"nodeIDs": [...], "requestID": id} from ids[0..n). */
static json_t *ids_body(const char *const *ids, size_t n, const char *req_id)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, json_string(ids[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    if (!arr)
        return NULL;
    return req_id ? json_pack("{s:o, s:s}", "nodeIDs", arr, "requestID", req_id)
                  : json_pack("{s:o}", "nodeIDs", arr);
}

static void next_request_id(rdv_client *c, char prefix,
                            char out[RDV_REQUEST_ID_LEN + 1])
{
    pthread_mutex_lock(&c->lock);
    unsigned n = ++c->req_counter;
    pthread_mutex_unlock(&c->lock);
    snprintf(out, RDV_REQUEST_ID_LEN + 1, "%c%u", prefix, n);
}

static int check_ids(const char *const *ids, size_t n)
{
    if (!ids || n == 0 || n > RDV_MAX_IDS_PER_CALL)
        return RDV_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!ids[i] || !rdv_node_id_valid(ids[i], strlen(ids[i])))
            return RDV_ERR_INVALID;
    return 0;
}

int rdv_client_lookup(rdv_client *c, const char *const *node_ids, size_t count,
                      char request_id_out[RDV_REQUEST_ID_LEN + 1])
{
    if (!c || check_ids(node_ids, count) != 0)
        return RDV_ERR_INVALID;
    if (!authenticated(c))
        return RDV_ERR_NOT_CONNECTED;
    char rid[RDV_REQUEST_ID_LEN + 1];
    next_request_id(c, 'l', rid);
    int rc = rdv__send_body(c, RDV_MSG_LOOKUP, ids_body(node_ids, count, rid),
                            rid, false);
    if (rc == 0 && request_id_out)
        memcpy(request_id_out, rid, sizeof(rid));
    return rc;
}

/* Sends `watch` or `unwatch` for ids[0..n) (n <= RDV_MAX_IDS_PER_CALL). */
static int send_ids(rdv_client *c, rdv_msg_type type, const char *const *ids,
                    size_t n)
{
    char rid[RDV_REQUEST_ID_LEN + 1];
    next_request_id(c, type == RDV_MSG_WATCH ? 'w' : 'u', rid);
    return rdv__send_body(c, type, ids_body(ids, n, rid), rid, false);
}

static ssize_t watch_index(rdv_client *c, const char *id)
{
    for (size_t i = 0; i < c->nwatch; i++)
        if (strcmp(c->watches[i], id) == 0)
            return (ssize_t)i;
    return -1;
}

int rdv_client_watch(rdv_client *c, const char *const *node_ids, size_t count)
{
    if (!c || check_ids(node_ids, count) != 0)
        return RDV_ERR_INVALID;
    const char *added[RDV_MAX_IDS_PER_CALL];
    size_t nadded = 0;
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    size_t limit = c->limits.max_watches > 0 ? (size_t)c->limits.max_watches
                                             : RDV__WATCH_MAX_LOCAL;
    for (size_t i = 0; i < count; i++) {
        bool dup = watch_index(c, node_ids[i]) >= 0;
        for (size_t j = 0; j < nadded && !dup; j++)
            dup = strcmp(added[j], node_ids[i]) == 0;
        if (!dup)
            added[nadded++] = node_ids[i];
    }
    if (c->nwatch + nadded > limit) {
        rc = RDV_ERR_LIMIT;
    } else if (c->nwatch + nadded > c->capwatch) {
        size_t cap = c->capwatch ? c->capwatch * 2 : 16;
        while (cap < c->nwatch + nadded)
            cap *= 2;
        void *p = realloc(c->watches, cap * sizeof(*c->watches));
        if (!p)
            rc = RDV_ERR_NOMEM;
        else {
            c->watches = p;
            c->capwatch = cap;
        }
    }
    if (rc == 0)
        for (size_t i = 0; i < nadded; i++)
            memcpy(c->watches[c->nwatch++], added[i], RDV_NODE_ID_LEN + 1);
    bool send = rc == 0 && nadded > 0 && c->state == RDV_STATE_AUTHENTICATED;
    pthread_mutex_unlock(&c->lock);
    if (send) {
        int src = send_ids(c, RDV_MSG_WATCH, added, nadded);
        /* NOT_CONNECTED: the set is re-sent after the next welcome. */
        if (src != 0 && src != RDV_ERR_NOT_CONNECTED)
            return src;
    }
    return rc;
}

int rdv_client_unwatch(rdv_client *c, const char *const *node_ids, size_t count)
{
    if (!c || check_ids(node_ids, count) != 0)
        return RDV_ERR_INVALID;
    const char *removed[RDV_MAX_IDS_PER_CALL];
    size_t nremoved = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < count; i++) {
        ssize_t k = watch_index(c, node_ids[i]);
        if (k < 0)
            continue;
        removed[nremoved++] = node_ids[i];
        memmove(c->watches[k], c->watches[k + 1],
                (c->nwatch - (size_t)k - 1) * sizeof(*c->watches));
        c->nwatch--;
    }
    bool send = nremoved > 0 && c->state == RDV_STATE_AUTHENTICATED;
    pthread_mutex_unlock(&c->lock);
    if (send) {
        int rc = send_ids(c, RDV_MSG_UNWATCH, removed, nremoved);
        if (rc != 0 && rc != RDV_ERR_NOT_CONNECTED)
            return rc;
    }
    return 0;
}

size_t rdv_client_watch_count(rdv_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->nwatch;
    pthread_mutex_unlock(&c->lock);
    return n;
}
