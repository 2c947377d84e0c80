/* direct.c - direct-then-relay sessions (see direct.h, PROTOCOL.md 14):
 * rdv_connect() and the offer / answer / candidates, the connect
 * decision, probing, keepalive, fallback to the relay and upgrade from it,
 * many-port probing, and rdv_session_info_get(). The UDP sockets and NAT
 * discovery are discovery.c.
 *
 * Decision (client/README.md "Direct connections", after TealeNet's
 * matrix): when neither side is symmetric the initiator tries the direct
 * path for direct_timeout_ms and then opens the relay leg; when a side is
 * symmetric it opens the relay leg at once, and both sides start their
 * checks once the leg carries the session (unless both are symmetric),
 * switching to a direct path as soon as one is confirmed: a probe we sent
 * was acknowledged by the peer, MAC'd with the session's keys. Between a symmetric and a cone NAT both
 * sides also run many-port probing: the symmetric side probes the peer
 * from RDV__SPRAY_MAX extra sockets (new NAT mappings), the cone side
 * probes random ports of the symmetric side's public IP; a probe that
 * lands on one of those mappings opens the path.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <sodium.h>

#include "client_internal.h"
#include "direct.h"
#include "ids.h"
#include "wire_limits.h"

/* ---- small helpers -------------------------------------------------------- */

static int64_t ms_since(const rdv__direct *d, int64_t now)
{
    return now - d->t0;
}

static bool is_sym(rdv_nat_type n)
{
    return n == RDV_NAT_SYMMETRIC;
}

static bool is_cone(rdv_nat_type n)
{
    return n == RDV_NAT_FULL_CONE || n == RDV_NAT_RESTRICTED_CONE ||
           n == RDV_NAT_PORT_RESTRICTED;
}

static void set_derr(rdv__direct *d, int err, const char *text)
{
    d->last_err = err;
    snprintf(d->last_err_text, sizeof(d->last_err_text), "%s", text);
}

static void send_to(int fd, const void *buf, size_t len, const struct sockaddr_storage *to,
                    socklen_t tolen)
{
    if (fd >= 0)
        (void)sendto(fd, buf, len, MSG_NOSIGNAL, (const struct sockaddr *)to, tolen);
}

/* ---- sessions: sending probes (L held) ------------------------------------ */

static uint8_t my_flags(const rdv__relay *r)
{
    return r->initiator ? RDV__DWIRE_F_INITIATOR : 0;
}

static void send_probe_locked(rdv__relay *r, int fd, const struct sockaddr_storage *to,
                              socklen_t tolen, const uint8_t txid[RDV__DWIRE_TXID_BYTES],
                              uint8_t extra)
{
    uint8_t pkt[RDV__DWIRE_PROBE_BYTES];
    size_t n = rdv__dwire_probe(pkt, r->sid_bytes, txid, my_flags(r) | extra, r->d->tx_mac);
    if (n)
        send_to(fd, pkt, n, to, tolen);
}

/* Adds a check (fd, addr) unless present; returns it or NULL when full. */
static rdv__pair *add_pair_locked(rdv__direct *d, int fd, const struct sockaddr_storage *a,
                                  socklen_t len, uint32_t prio)
{
    for (size_t i = 0; i < d->npairs; i++)
        if (d->pairs[i].fd == fd && rdv__addr_equal(&d->pairs[i].addr, a))
            return &d->pairs[i];
    if (d->npairs >= RDV__MAX_PAIRS)
        return NULL;
    rdv__pair *p = &d->pairs[d->npairs++];
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    p->addr = *a;
    p->len = len;
    p->prio = prio;
    randombytes_buf(p->txid, sizeof(p->txid));
    return p;
}

/* Adds a remote candidate (deduplicated) and its check. (L held) */
static void add_remote_locked(rdv_client *c, rdv__direct *d, const rdv__cand *k)
{
    if (k->type == RDV__CAND_RELAYED ||
        !rdv__cand_addr_usable((const struct sockaddr *)&k->addr, k->addr_len))
        return;
    for (size_t i = 0; i < d->nremote; i++)
        if (rdv__addr_equal(&d->remote[i].addr, &k->addr))
            return;
    if (d->nremote >= RDV__MAX_REMOTE_CANDS)
        return;
    d->remote[d->nremote++] = *k;
    int fd = rdv__udp_for(c, k->addr.ss_family);
    if (fd >= 0)
        (void)add_pair_locked(d, fd, &k->addr, k->addr_len, k->priority);
}

/* The probe interval: fast at first, then slower (background upgrade). */
static int64_t probe_interval(int64_t since_start)
{
    if (since_start < 1000)
        return 50;
    if (since_start < 5000)
        return 200;
    if (since_start < 30000)
        return 1000;
    return 10000;
}

/* One round of checks on every pair not yet valid. (L held) */
static void probe_round_locked(rdv__relay *r)
{
    rdv__direct *d = r->d;
    for (size_t i = 0; i < d->npairs; i++)
        if (!d->pairs[i].valid)
            send_probe_locked(r, d->pairs[i].fd, &d->pairs[i].addr, d->pairs[i].len,
                              d->pairs[i].txid, 0);
}

/* ---- events delivered after the lock is released ------------------------- */

/* Work collected under the lock for after it: one tick may touch every
 * session (a network change loses all direct paths at once). An event
 * beyond the bound is not delivered (rdv_session_info_get() still tells
 * the state); a relay leg or an end beyond it is retried by the next tick. */
#define RDV__EV_MAX RDV_RELAY_MAX_SESSIONS
#define RDV__ENDED_REJECTED 1 /* ended_err: the peer declined (err 0) */
typedef struct rdv__dev {
    int kind;                         /* 1 path, 2 ended by the peer */
    char sid[RDV_SESSION_ID_LEN + 1];
    char peer[RDV_NODE_ID_LEN + 1];
    int path;
    int64_t ms;
    bool ready;                       /* also cb_relay_ready (initiator) */
} rdv__dev;

typedef struct rdv__evq {
    rdv__dev ev[RDV__EV_MAX];
    size_t n;
    rdv__relay *ended[RDV__EV_MAX];   /* sessions to report closed, unlinked */
    int ended_err[RDV__EV_MAX];       /* with this error (0: by the peer) */
    size_t nended;
    char relay_open[RDV__EV_MAX][RDV_SESSION_ID_LEN + 1]; /* relay legs to open */
    char relay_open_peer[RDV__EV_MAX][RDV_NODE_ID_LEN + 1];
    uint8_t relay_open_pk[RDV__EV_MAX][32];
    size_t nopen;
    char relay_close[RDV__EV_MAX][RDV_SESSION_ID_LEN + 1]; /* legs to close */
    size_t nclose;
} rdv__evq;

static void flush_held_locked(rdv_client *c, rdv__relay *r);

/* Sets the session's path and queues cb_path (and cb_relay_ready for the
 * initiator's first path); a path again sends what was held. (L held) */
static void set_path_locked(rdv_client *c, rdv__relay *r, int path, int64_t now, rdv__evq *q)
{
    rdv__direct *d = r->d;
    if (d->path == path)
        return;
    int64_t ms = ms_since(d, now);
    if (path != RDV_TRAVERSAL_UNKNOWN && d->first_path_ms < 0) {
        d->first_path_ms = ms;
        c->last_connect_ms = ms;
    }
    if (path == RDV_TRAVERSAL_DIRECT) {
        if (d->direct_ms < 0) {
            d->direct_ms = ms;
            c->direct_sessions++;
        }
        c->last_direct_ms = d->direct_ms;
        if (d->path == RDV_TRAVERSAL_RELAYED)
            d->upgraded = true;
    }
    if (path == RDV_TRAVERSAL_RELAYED && d->relayed_ms < 0)
        d->relayed_ms = ms;
    d->path = path;
    d->no_path_since = path == RDV_TRAVERSAL_UNKNOWN ? now : 0;
    if (path != RDV_TRAVERSAL_UNKNOWN) {
        c->rstats.last_traversal = path;
        flush_held_locked(c, r);
    }
    if (q->n < RDV__EV_MAX) {
        rdv__dev *e = &q->ev[q->n++];
        memset(e, 0, sizeof(*e));
        e->kind = 1;
        memcpy(e->sid, r->sid, sizeof(e->sid));
        memcpy(e->peer, r->peer, sizeof(e->peer));
        e->path = path;
        e->ms = ms;
        if (r->initiator && !d->announced && path != RDV_TRAVERSAL_UNKNOWN) {
            d->announced = true;
            e->ready = true;
        }
    }
}

int rdv__direct_hold_locked(rdv__relay *r, const void *buf, size_t len)
{
    if (r->d->first_path_ms < 0)
        return RDV_ERR_STATE; /* no path yet: the application waits for one */
    return rdv__hold_push(&r->d->held, buf, len);
}

void rdv__direct_drop_held(rdv_client *c, rdv__relay *r)
{
    size_t n = rdv__hold_clear(&r->d->held);
    if (c)
        c->rstats.dropped += n;
}

/* The session has a path again: what was held goes out on it, in order,
 * before anything sent later (the caller holds the lock throughout). A
 * datagram the path refuses now (a full queue) is lost; the send path
 * counts it in relay_dropped. (L held) */
static void flush_held_locked(rdv_client *c, rdv__relay *r)
{
    rdv__held *d = rdv__hold_take(&r->d->held);
    if (!d)
        return;
    while (d) {
        rdv__held *next = d->next;
        (void)rdv__relay_send_locked(c, r, d->data, d->len);
        rdv__held_free(d);
        d = next;
    }
    rdv__wake(c); /* relayed ones wait in the send queue */
}

/* Asks for the relay leg (initiator; sent after unlock). (L held) */
static void want_relay_locked(rdv__relay *r, rdv__evq *q)
{
    rdv__direct *d = r->d;
    if (!r->initiator || d->relay_leg)
        return;
    d->relay_wanted = true; /* the tick asks again if it cannot go now */
    if (q->nopen >= RDV__EV_MAX)
        return;
    d->relay_leg = true;
    memcpy(q->relay_open[q->nopen], r->sid, sizeof(r->sid));
    memcpy(q->relay_open_peer[q->nopen], r->peer, sizeof(r->peer));
    memcpy(q->relay_open_pk[q->nopen], d->my_pk, 32);
    q->nopen++;
}

static void close_relay_leg_locked(rdv__relay *r, rdv__evq *q)
{
    rdv__direct *d = r->d;
    if (!d->relay_leg || q->nclose >= RDV__EV_MAX)
        return;
    d->relay_leg = false;
    d->relay_up = false;
    memcpy(q->relay_close[q->nclose++], r->sid, sizeof(r->sid));
}

/* Ends many-port probing: closes every spray socket (all), or those that
 * never carried authenticated traffic from the peer and do not carry our
 * path: the peer may have chosen its path to one of ours. (L held) */
static void close_spray_locked(rdv_client *c, rdv__direct *d, bool all)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->nspray; i++) {
        int fd = d->spray_fd[i];
        if (all || !(d->spray_used[i] || (d->direct_up && fd == d->dfd))) {
            rdv__defer_close_locked(c, fd);
            continue;
        }
        d->spray_fd[kept] = fd;
        d->spray_used[kept++] = true;
    }
    for (size_t i = kept; i < d->nspray; i++) {
        d->spray_fd[i] = -1;
        d->spray_used[i] = false;
    }
    d->nspray = kept;
    d->spraying = false;
    d->spray_left = 0;
}

/* Notes that spray socket fd (if it is one) carried authenticated traffic
 * from the peer. (L held) */
static void spray_used_locked(rdv__direct *d, int fd)
{
    for (size_t i = 0; i < d->nspray; i++)
        if (d->spray_fd[i] == fd)
            d->spray_used[i] = true;
}

/* A check succeeded: (fd, addr) reaches the peer. (L held) */
static void direct_confirmed_locked(rdv_client *c, rdv__relay *r, int fd,
                                    const struct sockaddr_storage *a, socklen_t len,
                                    bool spray, int64_t now, rdv__evq *q)
{
    rdv__direct *d = r->d;
    if (d->direct_up)
        return; /* another pair too: the first one stays */
    d->last_rx = now;
    d->direct_up = true;
    d->last_err = 0; /* the attempt succeeded */
    d->last_err_text[0] = '\0';
    d->dfd = fd;
    d->daddr = *a;
    d->dlen = len;
    d->via_spray = spray;
    d->next_keepalive = now + c->cfg.direct_keepalive_ms;
    d->next_consent = now + RDV__CONSENT_QUIET_MS;
    d->direct_deadline = 0;
    close_spray_locked(c, d, false);
    set_path_locked(c, r, RDV_TRAVERSAL_DIRECT, now, q);
    /* The relay leg is closed a little later: the peer may not have
     * confirmed its own direct path yet and still sends on the relay. */
    if (r->initiator && d->relay_leg)
        d->leg_close_at = now + RDV__LEG_LINGER_MS;
}

/* The direct path stopped answering (`why`): back to the relay. (L held) */
static void direct_lost_locked(rdv_client *c, rdv__relay *r, int64_t now, const char *why,
                               rdv__evq *q)
{
    rdv__direct *d = r->d;
    d->direct_up = false;
    d->leg_close_at = 0;
    d->dfd = -1; /* kept spray sockets stay for the new checks */
    for (size_t i = 0; i < d->npairs; i++) {
        d->pairs[i].valid = false;
        randombytes_buf(d->pairs[i].txid, sizeof(d->pairs[i].txid)); /* old acks void */
    }
    set_derr(d, RDV_ERR_TIMEOUT, why);
    d->probe_start = now;
    d->next_probe = now;
    set_path_locked(c, r, d->relay_up ? RDV_TRAVERSAL_RELAYED : RDV_TRAVERSAL_UNKNOWN, now, q);
    want_relay_locked(r, q);
}

static void start_probing_locked(rdv_client *c, rdv__relay *r, int64_t now);

/* The decision, once the keys are known: checks now (direct expected),
 * or the relay leg first and checks once it is up. (L held) */
static void start_checks_locked(rdv_client *c, rdv__relay *r, int64_t now, rdv__evq *q)
{
    rdv__direct *d = r->d;
    rdv_nat_type me = rdv__nat_effective_locked(c);
    rdv_nat_type peer = d->peer_nat;
    rdv__dwire_mac_keys(&r->e2e, d->tx_mac, d->rx_mac);
    d->keys = true;
    if (d->path == RDV_TRAVERSAL_UNKNOWN)
        d->no_path_since = now;
    bool direct_expected = !c->cfg.direct_disable && !is_sym(me) && !is_sym(peer);
    bool upgrade = !c->cfg.direct_disable && !(is_sym(me) && is_sym(peer));
    if (r->initiator) {
        if (direct_expected) {
            d->direct_deadline = now + c->cfg.direct_timeout_ms;
        } else {
            if (c->cfg.direct_disable)
                set_derr(d, RDV_ERR_NOT_SUPPORTED, "direct paths are disabled (direct_disable)");
            else
                set_derr(d, RDV_ERR_NOT_SUPPORTED,
                         is_sym(me) && is_sym(peer)
                             ? "both sides are behind symmetric NATs: relay only"
                             : "a side is behind a symmetric NAT: relay first, upgrade tried");
            want_relay_locked(r, q);
        }
    }
    if (!upgrade)
        return;
    if (!direct_expected) {
        /* Relay first: the checks start once the relay leg carries the
         * session, so they never race it (they upgrade it). */
        d->checks_deferred = true;
        return;
    }
    start_probing_locked(c, r, now);
}

/* Starts the checks and, between a symmetric and a cone NAT, many-port
 * probing. (L held) */
static void start_probing_locked(rdv_client *c, rdv__relay *r, int64_t now)
{
    rdv__direct *d = r->d;
    rdv_nat_type me = rdv__nat_effective_locked(c);
    rdv_nat_type peer = d->peer_nat;
    d->checks_deferred = false;
    d->probe_start = now;
    d->next_probe = now;
    int spray = c->cfg.spray_ports;
    if (spray <= 0)
        return;
    if (spray > RDV__SPRAY_MAX)
        spray = RDV__SPRAY_MAX;
    /* The peer's server-reflexive address (from its connectionInfo). */
    const rdv__cand *srflx = NULL;
    for (size_t i = 0; i < d->nremote && !srflx; i++)
        if (d->remote[i].type == RDV__CAND_SRFLX)
            srflx = &d->remote[i];
    if (!srflx)
        return;
    randombytes_buf(d->spray_txid, sizeof(d->spray_txid));
    d->spray_started = true;
    d->spray_target = srflx->addr;
    d->spray_target_len = srflx->addr_len;
    d->next_spray = now;
    d->spray_until = now + RDV__SPRAY_HARD_MS;
    if (is_sym(me) && (is_cone(peer))) {
        /* Bounded per client too: many sessions at once share the fds. */
        size_t open_now = 0;
        for (rdv__relay *o = c->relays; o; o = o->next)
            if (o->d)
                open_now += o->d->nspray;
        if (open_now >= RDV__SPRAY_TOTAL_MAX)
            spray = 0;
        else if ((size_t)spray > RDV__SPRAY_TOTAL_MAX - open_now)
            spray = (int)(RDV__SPRAY_TOTAL_MAX - open_now);
        for (int i = 0; i < spray; i++) {
            int fd = rdv__udp_socket(srflx->addr.ss_family, 0);
            if (fd < 0)
                break;
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
            if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
                close(fd);
                break;
            }
            d->spray_fd[d->nspray++] = fd;
            d->spraying = true;
        }
    } else if (is_cone(me) && is_sym(peer)) {
        d->spray_left = (uint32_t)spray * RDV__SPRAY_PROBES_PER_PORT;
    }
}

/* ---- building and sending our signaling ----------------------------------- */

static void hex32(const uint8_t in[32], char out[65])
{
    sodium_bin2hex(out, 65, in, 32);
}

/* connectionInfo from our candidates and NAT type. (L held) */
static json_t *conn_info_locked(rdv_client *c)
{
    char pub[RDV__ADDR_TEXT_MAX] = "0.0.0.0", loc[RDV__ADDR_TEXT_MAX] = "0.0.0.0";
    int pport = 0, lport = c->udp4_port ? c->udp4_port : c->udp6_port;
    for (size_t i = 0; i < c->nlcand; i++) {
        const rdv__cand *k = &c->lcand[i];
        char ip[INET6_ADDRSTRLEN];
        uint16_t port;
        if (!rdv__addr_ip_text(&k->addr, ip, &port))
            continue;
        if (k->type == RDV__CAND_SRFLX && pport == 0) {
            snprintf(pub, sizeof(pub), "%s", ip);
            pport = port;
        } else if (k->type == RDV__CAND_HOST && strcmp(loc, "0.0.0.0") == 0 &&
                   strncmp(ip, "127.", 4) != 0 && strcmp(ip, "::1") != 0) {
            snprintf(loc, sizeof(loc), "%s", ip);
            lport = port;
        }
    }
    if (c->nat.no_nat && pport == 0 && strcmp(loc, "0.0.0.0") != 0) {
        snprintf(pub, sizeof(pub), "%s", loc); /* no NAT: public = local */
        pport = lport;
    }
    rdv_nat_type me = rdv__nat_effective_locked(c);
    return json_pack("{s:s, s:i, s:s, s:i, s:s}", "publicIP", pub, "publicPort", pport,
                     "localIP", loc, "localPort", lport, "natType", rdv_nat_type_name(me));
}

/* Sends our candidates to `peer` for session `sid` as iceCandidate, and
 * the relay as a relayed candidate (informational: reached through the
 * WebSocket, at the server's address). Returns 0 or the first error of
 * rdv__send_body. */
static int send_candidates(rdv_client *c, const char *peer, const char *sid)
{
    rdv__cand cands[RDV__MAX_LOCAL_CANDS];
    pthread_mutex_lock(&c->lock);
    size_t n = c->nlcand;
    memcpy(cands, c->lcand, n * sizeof(cands[0]));
    if (c->server_addr_len > 0 && n < RDV__MAX_LOCAL_CANDS &&
        rdv__cand_make(RDV__CAND_RELAYED, (struct sockaddr *)&c->server_addr,
                       c->server_addr_len, NULL, 0, RDV__CAND_LOCALPREF_MAX, &cands[n]) == 0)
        n++;
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        json_t *cj = rdv__cand_to_json(&cands[i]);
        json_t *b = cj ? json_pack("{s:s, s:s, s:s, s:o}", "fromNodeID", c->node_id,
                                   "toNodeID", peer, "sessionID", sid, "candidate", cj)
                       : NULL;
        int rc = rdv__send_body(c, RDV_MSG_ICE_CANDIDATE, b, sid, false);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sends offer / answer with our connectionInfo and e2eKey, then trickles
 * our candidates. */
static int send_signaling(rdv_client *c, rdv_msg_type type, const char *peer, const char *sid,
                          const uint8_t pk[32])
{
    char key[65];
    hex32(pk, key);
    pthread_mutex_lock(&c->lock);
    json_t *ci = conn_info_locked(c);
    pthread_mutex_unlock(&c->lock);
    json_t *body = ci ? json_pack("{s:s, s:s, s:s, s:o, s:s}", "fromNodeID", c->node_id,
                                  "toNodeID", peer, "sessionID", sid, "connectionInfo", ci,
                                  "e2eKey", key)
                      : NULL;
    int rc = rdv__send_body(c, type, body, sid, false);
    return rc != 0 ? rc : send_candidates(c, peer, sid);
}

void rdv__direct_candidates_gained_locked(rdv_client *c, int64_t now)
{
    for (rdv__relay *r = c->relays; r; r = r->next) {
        rdv__direct *d = r->d;
        if (!d || d->offer_pending || r->st == RDV__RS_REQUESTED)
            continue; /* the offer / answer will carry them */
        d->retrickle = true;
        if (d->keys && !d->direct_up && d->probe_start) {
            d->probe_start = now; /* the fast schedule again */
            d->next_probe = now;
        }
    }
}

void rdv__direct_network_changed_locked(rdv_client *c, int64_t now)
{
    for (rdv__relay *r = c->relays; r; r = r->next) {
        rdv__direct *d = r->d;
        if (!d || r->st != RDV__RS_OPEN || !d->keys)
            continue;
        if (d->direct_up) {
            d->next_keepalive = now; /* is the path still there? */
        } else if (d->probe_start) {
            d->probe_start = now;
            d->next_probe = now;
        }
    }
}

/* Sends our candidates again to one session that wants them (after a
 * change), at most one session per RDV__RETRICKLE_GAP_MS so that a node
 * with many sessions stays inside the server's message rate. (S) */
static void send_pending_candidates(rdv_client *c, int64_t now)
{
    if (now < c->next_retrickle)
        return;
    char sid[RDV_SESSION_ID_LEN + 1], peer[RDV_NODE_ID_LEN + 1];
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (rdv__relay *r = c->relays; r && !found; r = r->next) {
        if (!r->d || !r->d->retrickle)
            continue;
        r->d->retrickle = false;
        memcpy(sid, r->sid, sizeof(sid));
        memcpy(peer, r->peer, sizeof(peer));
        found = true;
    }
    pthread_mutex_unlock(&c->lock);
    if (!found)
        return;
    c->next_retrickle = now + RDV__RETRICKLE_GAP_MS;
    if (send_candidates(c, peer, sid) == 0)
        return;
    pthread_mutex_lock(&c->lock); /* not sent (disconnected, backlog): later */
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (r && r->d)
        r->d->retrickle = true;
    pthread_mutex_unlock(&c->lock);
}

static void run_evq(rdv_client *c, rdv__evq *q);
static void session_init(rdv__direct *d, int64_t now);

int rdv__direct_send_refusal(rdv_client *c, const char *peer, const char *sid)
{
    json_t *ci = json_pack("{s:s, s:i, s:s, s:i, s:s}", "publicIP", "0.0.0.0", "publicPort", 0,
                           "localIP", "0.0.0.0", "localPort", 0, "natType", "unknown");
    json_t *body = ci ? json_pack("{s:s, s:s, s:s, s:o}", "fromNodeID", c->node_id, "toNodeID",
                                  peer, "sessionID", sid, "connectionInfo", ci)
                      : NULL;
    return rdv__send_body(c, RDV_MSG_ANSWER, body, sid, false);
}

/* Sends the offers rdv_connect() left for the end of discovery. (S) */
static void send_pending_offers(rdv_client *c, int64_t now)
{
    for (;;) {
        char sid[RDV_SESSION_ID_LEN + 1], peer[RDV_NODE_ID_LEN + 1];
        uint8_t pk[32];
        bool found = false;
        pthread_mutex_lock(&c->lock);
        for (rdv__relay *r = c->relays; r && !found; r = r->next) {
            if (!r->d || !r->d->offer_pending ||
                (!c->nat.done && now - r->d->t0 < RDV__OFFER_WAIT_MS))
                continue;
            r->d->offer_pending = false;
            memcpy(sid, r->sid, sizeof(sid));
            memcpy(peer, r->peer, sizeof(peer));
            memcpy(pk, r->d->my_pk, sizeof(pk));
            found = true;
        }
        pthread_mutex_unlock(&c->lock);
        if (!found)
            return;
        int rc = send_signaling(c, RDV_MSG_OFFER, peer, sid, pk);
        if (rc == 0)
            continue;
        rdv__evq q;
        memset(&q, 0, sizeof(q));
        pthread_mutex_lock(&c->lock);
        rdv__relay *r = rdv__relay_find_locked(c, sid);
        if (r) {
            q.ended_err[0] = rc;
            q.ended[q.nended++] = rdv__relay_end_locked(c, r);
        }
        pthread_mutex_unlock(&c->lock);
        run_evq(c, &q);
    }
}

int rdv_connect(rdv_client *c, const char *peer, char session_id_out[RDV_SESSION_ID_LEN + 1])
{
    rdv__relay *r;
    int rc0 = rdv__relay_new_outgoing(c, peer, session_id_out, &r);
    if (rc0 != 0)
        return rc0;
    rdv__direct *d = calloc(1, sizeof(*d));
    if (!d) {
        rdv__relay_free(r);
        return RDV_ERR_NOMEM;
    }
    r->d = d;
    session_init(d, rdv__mono_ms());
    memcpy(d->my_pk, r->kp.pk, 32);
    r->deadline = d->t0 + RDV_RELAY_OPEN_TIMEOUT_MS;
    char sid[RDV_SESSION_ID_LEN + 1];
    memcpy(sid, r->sid, sizeof(sid));
    uint8_t pk[32];
    memcpy(pk, r->kp.pk, 32);
    pthread_mutex_lock(&c->lock);
    int rc = rdv__relay_count_locked(c, -1) >= RDV_RELAY_MAX_SESSIONS ? RDV_ERR_LIMIT : 0;
    /* Our NAT type and server-reflexive candidate go into the offer: while
     * discovery still runs, the service thread sends it when discovery
     * ends (at most RDV__OFFER_WAIT_MS later). */
    bool wait = !c->nat.done;
    if (rc == 0) {
        d->offer_pending = wait;
        r->next = c->relays;
        c->relays = r;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        rdv__relay_free(r);
        return rc;
    }
    memcpy(session_id_out, sid, sizeof(sid));
    if (wait) {
        rdv__wake(c);
        return 0;
    }
    rc = send_signaling(c, RDV_MSG_OFFER, peer, sid, pk);
    if (rc != 0) {
        session_id_out[0] = '\0';
        rdv__relay_forget(c, sid);
        return rc;
    }
    rdv__wake(c);
    return 0;
}

static void session_init(rdv__direct *d, int64_t now)
{
    d->t0 = now;
    d->dfd = -1;
    d->first_path_ms = d->relayed_ms = d->direct_ms = -1;
    for (size_t i = 0; i < RDV__SPRAY_MAX; i++)
        d->spray_fd[i] = -1;
}

/* Reads the peer's connectionInfo into remote candidates. (L held) */
static void conn_info_to_remote_locked(rdv_client *c, rdv__direct *d, const json_t *ci)
{
    d->peer_nat = rdv_nat_type_from_name(rdv_msg_get_str(ci, "natType"));
    static const struct {
        const char *ip, *port;
        rdv__cand_type t;
    } f[2] = {{"localIP", "localPort", RDV__CAND_HOST},
              {"publicIP", "publicPort", RDV__CAND_SRFLX}};
    for (int i = 0; i < 2; i++) {
        const char *ip = rdv_msg_get_str(ci, f[i].ip);
        int64_t port = 0;
        if (!ip || rdv_msg_get_int(ci, f[i].port, &port) != 0 || port < 1 || port > 65535)
            continue;
        json_t *o = json_pack("{s:s, s:I, s:s, s:I}", "ip", ip, "port", (json_int_t)port,
                              "type", rdv__cand_type_name(f[i].t), "priority",
                              (json_int_t)rdv__cand_priority(f[i].t, RDV__CAND_LOCALPREF_MAX,
                                                             RDV__CAND_COMPONENT));
        rdv__cand k;
        if (o && rdv__cand_from_json(o, &k) == 0)
            add_remote_locked(c, d, &k);
        json_decref(o);
    }
}

/* ---- received signaling (service thread) ----------------------------------- */

static bool parse_key(const char *hex, uint8_t out[32])
{
    size_t l = 0;
    return hex && sodium_hex2bin(out, 32, hex, strlen(hex), NULL, &l, NULL) == 0 && l == 32;
}

/* An offer carrying e2eKey: a connect request (cb_relay_request). */
static void on_offer(rdv_client *c, const rdv_msg *m, const uint8_t pk[32])
{
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    int64_t ts = 0;
    (void)rdv_msg_get_int(m->body, "timestamp", &ts);
    rdv__relay *r = calloc(1, sizeof(*r));
    rdv__direct *d = calloc(1, sizeof(*d));
    if (!r || !d) {
        free(r);
        free(d);
        return;
    }
    r->d = d;
    r->proxy_fd = -1;
    r->st = RDV__RS_REQUESTED;
    snprintf(r->sid, sizeof(r->sid), "%s", sid);
    snprintf(r->peer, sizeof(r->peer), "%s", from);
    memcpy(r->peer_pk, pk, 32);
    r->req_ts = ts;
    session_init(d, rdv__mono_ms());
    r->deadline = d->t0 + RDV_RELAY_ANSWER_MS;
    if (rdv_uuid_to_bytes(r->sid, r->sid_bytes) != 0) {
        rdv__relay_free(r);
        return;
    }
    bool ok = false, known = false;
    pthread_mutex_lock(&c->lock);
    known = rdv__relay_find_locked(c, sid) || rdv__relay_find_bytes_locked(c, r->sid_bytes);
    if (!known && rdv__relay_count_locked(c, -1) < RDV_RELAY_MAX_SESSIONS) {
        conn_info_to_remote_locked(c, d, json_object_get(m->body, "connectionInfo"));
        r->next = c->relays;
        c->relays = r;
        ok = true;
    }
    rdv_nat_type pn = d->peer_nat;
    pthread_mutex_unlock(&c->lock);
    if (!ok) {
        rdv__relay_free(r);
        if (!known) /* too many sessions: decline; a copy is ignored */
            (void)rdv__direct_send_refusal(c, from, sid);
        return;
    }
    rdv_relay_request req;
    memset(&req, 0, sizeof(req));
    snprintf(req.session_id, sizeof(req.session_id), "%s", sid);
    snprintf(req.from_node_id, sizeof(req.from_node_id), "%s", from);
    req.timestamp = ts;
    req.direct = 1;
    req.peer_nat = pn;
    c->cfg.cb_relay_request(c, &req, c->cfg.user_ptr);
}

/* The answer to our rdv_connect(): keys, then the decision. */
static void on_answer(rdv_client *c, rdv__relay *r, const rdv_msg *m, const uint8_t pk[32],
                      rdv__evq *q)
{
    int64_t now = rdv__mono_ms();
    rdv__direct *d = r->d;
    conn_info_to_remote_locked(c, d, json_object_get(m->body, "connectionInfo"));
    if (rdv__e2e_init(&r->e2e, true, &r->kp, pk, r->sid_bytes) != 0) {
        if (q->nended < RDV__EV_MAX) {
            q->ended_err[q->nended] = RDV_ERR_PROTOCOL; /* a low-order key */
            q->ended[q->nended++] = rdv__relay_end_locked(c, r);
        }
        return;
    }
    rdv__e2e_keypair_wipe(&r->kp);
    r->st = RDV__RS_OPEN;
    c->rstats.opened++;
    start_checks_locked(c, r, now, q);
}

bool rdv__direct_on_routed(rdv_client *c, const rdv_msg *m)
{
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    if (!sid || !from)
        return false;
    uint8_t pk[32];
    if (m->type == RDV_MSG_OFFER) {
        if (!c->cfg.cb_relay_request || !parse_key(rdv_msg_get_str(m->body, "e2eKey"), pk))
            return false; /* a plain offer: the application's cb_offer */
        on_offer(c, m, pk);
        return true;
    }
    rdv__evq q;
    memset(&q, 0, sizeof(q));
    bool handled = false;
    pthread_mutex_lock(&c->lock);
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (r && r->d && strcmp(r->peer, from) == 0) {
        handled = true;
        if (m->type == RDV_MSG_ANSWER) {
            if (r->initiator && r->st == RDV__RS_OPENING) {
                if (parse_key(rdv_msg_get_str(m->body, "e2eKey"), pk)) {
                    on_answer(c, r, m, pk, &q);
                } else if (q.nended < RDV__EV_MAX) {
                    /* An answer without e2eKey declines the session. */
                    q.ended_err[q.nended] = RDV__ENDED_REJECTED;
                    q.ended[q.nended++] = rdv__relay_end_locked(c, r);
                }
            }
        } else if (m->type == RDV_MSG_ICE_CANDIDATE) {
            rdv__cand k;
            if (rdv__cand_from_json(json_object_get(m->body, "candidate"), &k) == 0) {
                add_remote_locked(c, r->d, &k);
                if (r->d->keys && !r->d->direct_up && r->d->probe_start)
                    r->d->next_probe = rdv__mono_ms(); /* check it now */
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    run_evq(c, &q);
    if (handled)
        rdv__wake(c);
    return handled;
}

/* rdv_relay_accept() of a connect request: keys, answer, checks. */
int rdv__direct_accept(rdv_client *c, const char *sid)
{
    rdv__e2e_keypair kp;
    if (rdv__e2e_keypair_new(&kp) != 0)
        return RDV_ERR_CRYPTO;
    char peer[RDV_NODE_ID_LEN + 1];
    rdv__evq q;
    memset(&q, 0, sizeof(q));
    int rc = 0;
    rdv__relay *dead = NULL; /* the peer's key is unusable: declined */
    pthread_mutex_lock(&c->lock);
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (r)
        memcpy(peer, r->peer, sizeof(peer));
    if (!r || !r->d || r->st != RDV__RS_REQUESTED) {
        rc = RDV_ERR_NO_SESSION;
    } else if (rdv__e2e_init(&r->e2e, false, &kp, r->peer_pk, r->sid_bytes) != 0) {
        rc = RDV_ERR_CRYPTO;
        dead = rdv__relay_end_locked(c, r);
    } else {
        r->st = RDV__RS_OPEN;
        c->rstats.opened++;
        memcpy(r->d->my_pk, kp.pk, 32);
        r->d->t0 = rdv__mono_ms();
    }
    pthread_mutex_unlock(&c->lock);
    if (dead) {
        rdv__relay_free(dead); /* no callback: the caller gets rc */
        (void)rdv__direct_send_refusal(c, peer, sid);
    }
    if (rc == 0)
        rc = send_signaling(c, RDV_MSG_ANSWER, peer, sid, kp.pk);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        r = rdv__relay_find_locked(c, sid);
        if (r && r->d)
            start_checks_locked(c, r, rdv__mono_ms(), &q);
        pthread_mutex_unlock(&c->lock);
    } else if (rc != RDV_ERR_NO_SESSION && rc != RDV_ERR_CRYPTO) {
        rdv__relay_forget(c, sid); /* no callback: the caller gets rc */
    }
    rdv__e2e_keypair_wipe(&kp);
    run_evq(c, &q);
    rdv__wake(c);
    return rc;
}

/* The relay leg carries the session now (the answerer got relayOpen, the
 * opener relayReady): the path, unless a direct one is up (then the
 * opener lets the leg go after RDV__LEG_LINGER_MS), and the checks a
 * relay-first session deferred. (L held) */
static void leg_up_locked(rdv_client *c, rdv__relay *r, int64_t now, rdv__evq *q)
{
    rdv__direct *d = r->d;
    d->relay_up = true;
    if (!d->direct_up)
        set_path_locked(c, r, RDV_TRAVERSAL_RELAYED, now, q);
    else if (r->initiator)
        d->leg_close_at = now + RDV__LEG_LINGER_MS; /* direct won meanwhile */
    if (d->checks_deferred)
        start_probing_locked(c, r, now);
}

/* relayOpen for a connect session we know: the initiator wants the relay
 * leg; answer relayReady with our e2eKey (keys are already agreed). Returns
 * true when the message was about such a session. (S) */
bool rdv__direct_on_relay_open(rdv_client *c, const char *sid, const char *from)
{
    rdv__evq q;
    memset(&q, 0, sizeof(q));
    uint8_t pk[32];
    bool mine = false, answer = false;
    pthread_mutex_lock(&c->lock);
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (r && r->d && strcmp(r->peer, from) == 0) {
        mine = true;
        if (!r->initiator && r->st == RDV__RS_OPEN) {
            int64_t now = rdv__mono_ms();
            answer = true;
            memcpy(pk, r->d->my_pk, 32);
            r->d->relay_leg = true;
            leg_up_locked(c, r, now, &q);
            /* The opener asks for the leg only without a direct path: ours
             * is dead or one-way. Send on the relay (what the opener sends
             * there gets its answers there) and check the path again. */
            if (r->d->direct_up)
                direct_lost_locked(c, r, now,
                                   "the peer lost the direct path (it reopened the relay leg)",
                                   &q);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (answer)
        (void)rdv__relay_send_signed(c, RDV_MSG_RELAY_READY, from, sid, pk);
    run_evq(c, &q);
    return mine;
}

/* relayReady for a connect session's relay leg. Returns true when it was
 * about such a session. (S) */
bool rdv__direct_on_relay_ready(rdv_client *c, const char *sid, const char *from)
{
    rdv__evq q;
    memset(&q, 0, sizeof(q));
    bool mine = false;
    pthread_mutex_lock(&c->lock);
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (r && r->d && strcmp(r->peer, from) == 0) {
        mine = true;
        if (r->initiator && r->d->relay_leg && r->st == RDV__RS_OPEN)
            leg_up_locked(c, r, rdv__mono_ms(), &q);
    }
    pthread_mutex_unlock(&c->lock);
    run_evq(c, &q);
    return mine;
}

/* relayClose for a connect session: the leg ends; the session ends only
 * when no direct path carries it (or the peer closed the session). Returns
 * true when the session lives on. (S) */
bool rdv__direct_on_relay_close(rdv_client *c, const char *sid, const char *reason)
{
    rdv__evq q;
    memset(&q, 0, sizeof(q));
    bool lives = false;
    pthread_mutex_lock(&c->lock);
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (r && r->d && r->st == RDV__RS_OPEN) {
        bool leg_only = reason && (strcmp(reason, RDV__REASON_DIRECT) == 0 ||
                                   strcmp(reason, "idle") == 0);
        if (leg_only || r->d->direct_up) {
            lives = true;
            r->d->relay_leg = false;
            r->d->relay_up = false;
            if (!r->d->direct_up) {
                set_path_locked(c, r, RDV_TRAVERSAL_UNKNOWN, rdv__mono_ms(), &q);
                want_relay_locked(r, &q);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    run_evq(c, &q);
    return lives;
}

/* ---- data (L held) ----------------------------------------------------------- */

int rdv__direct_send_locked(rdv_client *c, rdv__relay *r, const void *buf, size_t len)
{
    rdv__direct *d = r->d;
    if (!d->direct_up)
        return 1; /* not on the direct path: the caller uses the relay */
    /* One buffer for every send: sends hold the lock. */
    if (!c->dtx_buf && !(c->dtx_buf = malloc(RDV__SCRATCH_BYTES + RDV_DIRECT_OVERHEAD)))
        return RDV_ERR_NOMEM;
    if (len > RDV__SCRATCH_BYTES)
        return RDV_ERR_TOO_LARGE;
    uint8_t *pkt = c->dtx_buf;
    int64_t n = rdv__dwire_data_seal(&r->e2e, r->sid_bytes, buf, len, pkt);
    if (n > 0) {
        ssize_t w = sendto(d->dfd, pkt, (size_t)n, MSG_NOSIGNAL,
                           (const struct sockaddr *)&d->daddr, d->dlen);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
            n = RDV_ERR_BACKLOG;
        else if (w < 0)
            n = RDV_ERR_IO;
    }
    if (n < 0) {
        c->rstats.dropped++;
        return (int)n;
    }
    d->dtx++;
    d->last_tx_data = rdv__mono_ms();
    return 0;
}

/* A session ends (any thread, L held): tell the peer over the direct path
 * and give the sockets back. */
void rdv__direct_detach_locked(rdv_client *c, rdv__relay *r)
{
    rdv__direct *d = r->d;
    if (d->last_err) {
        c->last_derr = d->last_err;
        memcpy(c->last_derr_text, d->last_err_text, sizeof(c->last_derr_text));
    }
    if (d->direct_up && d->keys) {
        uint8_t txid[RDV__DWIRE_TXID_BYTES];
        randombytes_buf(txid, sizeof(txid));
        for (int i = 0; i < RDV__CLOSE_REPEAT; i++)
            send_probe_locked(r, d->dfd, &d->daddr, d->dlen, txid, RDV__DWIRE_F_CLOSE);
    }
    close_spray_locked(c, d, true);
    d->direct_up = false;
    rdv__direct_drop_held(c, r);
}

/* ---- received datagrams (S) ------------------------------------------------ */

static void on_probe(rdv_client *c, int fd, const uint8_t *buf, size_t len,
                     const struct sockaddr_storage *from, socklen_t flen, rdv__evq *q)
{
    uint8_t sid[16];
    if (rdv__dwire_sid(buf, len, sid) != 0)
        return;
    rdv__relay *r = rdv__relay_find_bytes_locked(c, sid);
    if (!r || !r->d || !r->d->keys || r->d->checks_deferred)
        return; /* unknown, or relay first: silent until the relay is up */
    rdv__direct *d = r->d;
    rdv__dwire_probe_t p;
    if (rdv__dwire_parse_probe(buf, len, d->rx_mac, &p) != 0)
        return; /* forged, reflected or damaged: silently dropped */
    if ((p.flags & RDV__DWIRE_F_INITIATOR) == (r->initiator ? RDV__DWIRE_F_INITIATOR : 0))
        return; /* our own role: not from the peer */
    spray_used_locked(d, fd);
    if (p.flags & RDV__DWIRE_F_CLOSE) {
        if (q->nended < RDV__EV_MAX) {
            rdv__relay_end_locked(c, r);
            q->ended[q->nended++] = r;
        }
        return;
    }
    uint8_t ack[RDV__DWIRE_ACK_BYTES];
    size_t n = rdv__dwire_ack(ack, r->sid_bytes, p.txid, my_flags(r),
                              (const struct sockaddr *)from, flen, d->tx_mac);
    if (n)
        send_to(fd, ack, n, from, flen);
    /* A probe proves nothing about liveness (it could be a replay): only
     * acks of our fresh txids and authenticated data do. */
    if (d->direct_up)
        return;
    /* A peer-reflexive address (or one we know): check it now from here. */
    rdv__pair *pr = add_pair_locked(d, fd, from, flen,
                                    rdv__cand_priority(RDV__CAND_PRFLX, RDV__CAND_LOCALPREF_MAX,
                                                       RDV__CAND_COMPONENT));
    if (pr && !pr->valid)
        send_probe_locked(r, fd, from, flen, pr->txid, 0);
    else if (!pr) {
        /* No room: probe with the spray txid (many-port probing). */
        if (d->spray_started)
            send_probe_locked(r, fd, from, flen, d->spray_txid, 0);
    }
}

static void on_ack(rdv_client *c, int fd, const uint8_t *buf, size_t len,
                   const struct sockaddr_storage *from, socklen_t flen, int64_t now,
                   rdv__evq *q)
{
    uint8_t sid[16];
    if (rdv__dwire_sid(buf, len, sid) != 0)
        return;
    rdv__relay *r = rdv__relay_find_bytes_locked(c, sid);
    if (!r || !r->d || !r->d->keys || r->d->checks_deferred)
        return; /* unknown, or relay first: silent until the relay is up */
    rdv__direct *d = r->d;
    rdv__dwire_probe_t a;
    if (rdv__dwire_parse_ack(buf, len, d->rx_mac, &a) != 0)
        return;
    if ((a.flags & RDV__DWIRE_F_INITIATOR) == (r->initiator ? RDV__DWIRE_F_INITIATOR : 0))
        return;
    spray_used_locked(d, fd);
    if (d->direct_up) {
        /* Liveness: the ack of our latest keepalive, on the path. */
        if (d->dfd == fd && rdv__addr_equal(&d->daddr, from) &&
            sodium_memcmp(a.txid, d->ka_txid, sizeof(a.txid)) == 0)
            d->last_rx = now;
        return;
    }
    bool spray = d->spray_started &&
                 sodium_memcmp(a.txid, d->spray_txid, sizeof(a.txid)) == 0;
    for (size_t i = 0; i < d->npairs && !spray; i++) {
        rdv__pair *p = &d->pairs[i];
        if (p->fd == fd && rdv__addr_equal(&p->addr, from) &&
            sodium_memcmp(p->txid, a.txid, sizeof(a.txid)) == 0) {
            p->valid = true;
            direct_confirmed_locked(c, r, fd, from, flen, false, now, q);
            return;
        }
    }
    if (spray)
        direct_confirmed_locked(c, r, fd, from, flen, true, now, q);
}

void rdv__direct_on_rx_locked(rdv__relay *r, int fd, const struct sockaddr_storage *from,
                              int64_t now)
{
    if (!r || !r->d)
        return;
    r->d->drx++;
    spray_used_locked(r->d, fd);
    if (r->d->direct_up && r->d->dfd == fd && rdv__addr_equal(&r->d->daddr, from))
        r->d->last_rx = now;
}

static void on_data(rdv_client *c, int fd, const uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from)
{
    uint8_t sid[16];
    if (rdv__dwire_sid(buf, len, sid) != 0)
        return;
    (void)rdv__relay_on_packet(c, sid, buf + RDV__DWIRE_DATA_HDR_BYTES,
                               len - RDV__DWIRE_DATA_HDR_BYTES, fd, from);
}

#define RDV__RX_BUDGET 256 /* datagrams read per socket per service call */

static void read_socket(rdv_client *c, int fd, int64_t now)
{
    uint8_t buf[RDV__SCRATCH_BYTES > 65536 ? 65536 : RDV__SCRATCH_BYTES];
    for (int i = 0; i < RDV__RX_BUDGET; i++) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error reported on the socket */
        /* IPv4-mapped sources never occur: the IPv6 socket is v6-only. */
        if (rdv__discovery_on_packet(c, buf, (size_t)n, &from, flen, now))
            continue;
        int kind = rdv__dwire_kind(buf, (size_t)n);
        if (c->cfg.direct_disable)
            continue; /* relay only: never answer probes */
        if (kind == RDV__DWIRE_DATA) {
            on_data(c, fd, buf, (size_t)n, &from);
            continue;
        }
        if (kind != RDV__DWIRE_PROBE && kind != RDV__DWIRE_ACK)
            continue;
        rdv__evq q;
        memset(&q, 0, sizeof(q));
        pthread_mutex_lock(&c->lock);
        if (kind == RDV__DWIRE_PROBE)
            on_probe(c, fd, buf, (size_t)n, &from, flen, &q);
        else
            on_ack(c, fd, buf, (size_t)n, &from, flen, now, &q);
        pthread_mutex_unlock(&c->lock);
        run_evq(c, &q);
    }
}

/* ---- timers (S) ------------------------------------------------------------ */

static void spray_tick_locked(rdv_client *c, rdv__relay *r, int64_t now)
{
    rdv__direct *d = r->d;
    if (d->direct_up || now < d->next_spray)
        return;
    if (d->spraying) {
        /* Symmetric side: every spray socket probes the peer's srflx. */
        if (now >= d->spray_until) {
            close_spray_locked(c, d, false);
            return;
        }
        for (size_t i = 0; i < d->nspray; i++)
            send_probe_locked(r, d->spray_fd[i], &d->spray_target, d->spray_target_len,
                              d->spray_txid, 0);
        d->next_spray = now + 2000;
    } else if (d->spray_left > 0) {
        /* Cone side: probes to random ports of the peer's public IP. */
        int fd = rdv__udp_for(c, d->spray_target.ss_family);
        for (int i = 0; i < RDV__SPRAY_BATCH && d->spray_left > 0; i++, d->spray_left--) {
            struct sockaddr_storage to = d->spray_target;
            uint16_t port = (uint16_t)(RDV__SPRAY_PORT_MIN +
                                       randombytes_uniform(65536 - RDV__SPRAY_PORT_MIN));
            rdv__addr_set_port(&to, port);
            send_probe_locked(r, fd, &to, d->spray_target_len, d->spray_txid, 0);
        }
        d->next_spray = now + 50;
    }
}

static void session_tick_locked(rdv_client *c, rdv__relay *r, int64_t now, rdv__evq *q)
{
    rdv__direct *d = r->d;
    if (r->st != RDV__RS_OPEN || !d->keys)
        return;
    if (d->direct_up) {
        if (d->leg_close_at && now >= d->leg_close_at) {
            d->leg_close_at = 0;
            close_relay_leg_locked(r, q);
        }
        int64_t ka = c->cfg.direct_keepalive_ms;
        bool active = now - d->last_tx_data < 2000;
        if (now - d->last_rx > 2 * (ka * 5 / 3) ||
            (active && now - d->last_rx > RDV__CONSENT_DEAD_MS)) {
            direct_lost_locked(c, r, now, "the direct path stopped answering", q);
            return;
        }
        bool consent = active && now - d->last_rx > RDV__CONSENT_QUIET_MS &&
                       now >= d->next_consent;
        if (now >= d->next_keepalive || consent) {
            /* A fresh txid each time: a replayed ack keeps nothing alive. */
            randombytes_buf(d->ka_txid, sizeof(d->ka_txid));
            send_probe_locked(r, d->dfd, &d->daddr, d->dlen, d->ka_txid, 0);
            d->next_keepalive = now + ka + (int64_t)randombytes_uniform((uint32_t)(ka * 2 / 3) + 1);
            d->next_consent = now + 1000;
        }
        return;
    }
    if (!d->relay_up && d->no_path_since && now - d->no_path_since >= RDV__NO_PATH_MS) {
        /* Neither path for too long (the peer vanished, or its relay leg
         * never came): the session ends. */
        if (q->nended < RDV__EV_MAX) {
            close_relay_leg_locked(r, q); /* a leg still opening */
            q->ended_err[q->nended] = RDV_ERR_TIMEOUT;
            q->ended[q->nended++] = rdv__relay_end_locked(c, r);
        }
        return;
    }
    if (d->relay_wanted && !d->relay_leg && now >= d->next_relay_try &&
        c->phase == RDV__PH_READY) {
        d->next_relay_try = now + 1000; /* a relayOpen that could not go */
        want_relay_locked(r, q);
    }
    if (d->direct_deadline && now >= d->direct_deadline) {
        d->direct_deadline = 0;
        char text[128];
        snprintf(text, sizeof(text), "no direct path within %d ms (%zu checks)",
                 c->cfg.direct_timeout_ms, d->npairs);
        set_derr(d, RDV_ERR_TIMEOUT, text);
        want_relay_locked(r, q);
    }
    if (d->probe_start && now >= d->next_probe) {
        probe_round_locked(r);
        d->next_probe = now + probe_interval(now - d->probe_start);
    }
    spray_tick_locked(c, r, now);
}

int64_t rdv__direct_next_due(rdv_client *c)
{
    int64_t due = rdv__discovery_next_due(c);
    int64_t now = rdv__mono_ms();
    pthread_mutex_lock(&c->lock);
    for (rdv__relay *r = c->relays; r; r = r->next) {
        rdv__direct *d = r->d;
        if (d && d->retrickle && c->next_retrickle < due)
            due = c->next_retrickle;
        if (!d || r->st != RDV__RS_OPEN || !d->keys)
            continue;
        int64_t t = d->direct_up ? d->next_keepalive : INT64_MAX;
        if (d->direct_up && d->leg_close_at && d->leg_close_at < t)
            t = d->leg_close_at;
        if (!d->direct_up) {
            if (d->probe_start && d->next_probe < t)
                t = d->next_probe;
            if (d->direct_deadline && d->direct_deadline < t)
                t = d->direct_deadline;
            if ((d->spraying || d->spray_left) && d->next_spray < t)
                t = d->next_spray;
        } else if (now - d->last_tx_data < 2000 && now - d->last_rx > RDV__CONSENT_QUIET_MS &&
                   d->next_consent < t) {
            t = d->next_consent;
        }
        if (t < due)
            due = t;
    }
    pthread_mutex_unlock(&c->lock);
    return due;
}

void rdv__direct_service(rdv_client *c, int64_t now)
{
    if (c->udp4 < 0 && c->udp6 < 0)
        return;
    rdv__discovery_tick(c, now);
    if (c->udp4 >= 0)
        read_socket(c, c->udp4, now);
    if (c->udp6 >= 0)
        read_socket(c, c->udp6, now);
    rdv__discovery_after_read(c, now);
    send_pending_offers(c, now);
    send_pending_candidates(c, now);
    /* Spray sockets, copied (reading may end sessions; their fds are
     * closed only later on this thread, so the copies stay valid). */
    size_t nf = 0;
    pthread_mutex_lock(&c->lock);
    for (rdv__relay *r = c->relays; r; r = r->next)
        if (r->d)
            nf += r->d->nspray;
    int *fds = nf ? malloc(nf * sizeof(*fds)) : NULL;
    size_t k = 0;
    for (rdv__relay *r = fds ? c->relays : NULL; r; r = r->next)
        if (r->d)
            for (size_t i = 0; i < r->d->nspray && k < nf; i++)
                fds[k++] = r->d->spray_fd[i];
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < k; i++)
        read_socket(c, fds[i], now);
    free(fds);
    /* Session timers. */
    rdv__evq q;
    memset(&q, 0, sizeof(q));
    pthread_mutex_lock(&c->lock);
    for (rdv__relay *r = c->relays, *next; r; r = next) {
        next = r->next; /* the tick may end (unlink) r */
        if (r->d)
            session_tick_locked(c, r, now, &q);
    }
    pthread_mutex_unlock(&c->lock);
    run_evq(c, &q);
}

/* ---- deferred work ----------------------------------------------------------- */

static void run_evq(rdv_client *c, rdv__evq *q)
{
    for (size_t i = 0; i < q->nopen; i++) {
        if (rdv__relay_send_signed(c, RDV_MSG_RELAY_OPEN, q->relay_open_peer[i],
                                   q->relay_open[i], q->relay_open_pk[i]) == 0)
            continue;
        /* Not sent (disconnected, backlog): the tick asks again. */
        pthread_mutex_lock(&c->lock);
        rdv__relay *r = rdv__relay_find_locked(c, q->relay_open[i]);
        if (r && r->d)
            r->d->relay_leg = false;
        pthread_mutex_unlock(&c->lock);
    }
    for (size_t i = 0; i < q->nclose; i++)
        (void)rdv__relay_send_close(c, q->relay_close[i], RDV__REASON_DIRECT);
    for (size_t i = 0; i < q->n; i++) {
        rdv__dev *e = &q->ev[i];
        if (atomic_load(&c->destroying))
            break;
        if (e->ready && c->cfg.cb_relay_ready)
            c->cfg.cb_relay_ready(c, e->sid, e->peer, c->cfg.user_ptr);
        if (c->cfg.cb_path)
            c->cfg.cb_path(c, e->sid, e->peer, e->path, e->ms, c->cfg.user_ptr);
    }
    for (size_t i = 0; i < q->nended; i++) {
        int e = q->ended_err[i];
        rdv__relay_report_closed(c, q->ended[i], e == RDV__ENDED_REJECTED ? 0 : e,
                                 e == RDV__ENDED_REJECTED ? "rejected"
                                 : e == RDV_ERR_TIMEOUT   ? "no path to the peer"
                                 : e == RDV_ERR_PROTOCOL  ? "the peer's e2eKey is unusable"
                                 : e                      ? "the offer could not be sent"
                                                          : "closed_by_peer");
    }
}

/* ---- status ------------------------------------------------------------------ */

int rdv_session_info_get(rdv_client *c, const char *sid, rdv_session_info *out)
{
    if (!c || !sid || !out || !rdv_uuid_valid(sid, strlen(sid)))
        return RDV_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    rdv__relay *r = rdv__relay_find_locked(c, sid);
    if (!r) {
        rc = RDV_ERR_NO_SESSION;
    } else {
        memcpy(out->peer_node_id, r->peer, sizeof(out->peer_node_id));
        out->open = r->st == RDV__RS_OPEN;
        out->first_path_ms = out->relayed_ms = out->direct_ms = -1;
        if (!r->d) {
            out->path = r->st == RDV__RS_OPEN ? RDV_TRAVERSAL_RELAYED : RDV_TRAVERSAL_UNKNOWN;
        } else {
            rdv__direct *d = r->d;
            out->direct_capable = 1;
            out->path = d->path;
            out->first_path_ms = d->first_path_ms;
            out->relayed_ms = d->relayed_ms;
            out->direct_ms = d->direct_ms;
            out->upgraded = d->upgraded;
            out->via_spray = d->via_spray;
            out->peer_nat = d->peer_nat;
            if (d->direct_up)
                (void)rdv__addr_to_text((struct sockaddr *)&d->daddr, out->remote,
                                        sizeof(out->remote));
            out->direct_tx_datagrams = d->dtx;
            out->direct_rx_datagrams = d->drx;
            out->last_direct_error = d->last_err;
            memcpy(out->last_direct_error_text, d->last_err_text,
                   sizeof(out->last_direct_error_text));
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* The NAT part of rdv_client_network_status(). (L held) */
void rdv__direct_status_locked(rdv_client *c, rdv_network_status *st)
{
    rdv__discovery_status_locked(c, st);
    st->direct_sessions = c->direct_sessions;
    st->last_connect_ms = c->last_connect_ms;
    st->last_direct_ms = c->last_direct_ms;
    /* The last direct error: of the most recent session that has one. */
    for (rdv__relay *r = c->relays; r; r = r->next)
        if (r->d && r->d->last_err) {
            st->last_direct_error = r->d->last_err;
            memcpy(st->last_direct_error_text, r->d->last_err_text,
                   sizeof(st->last_direct_error_text));
            break;
        }
    if (!st->last_direct_error && c->last_derr) {
        st->last_direct_error = c->last_derr;
        memcpy(st->last_direct_error_text, c->last_derr_text, sizeof(st->last_direct_error_text));
    }
}
