/* direct_signal.c - the signaling of the direct leg (see direct.h,
 * PROTOCOL.md 14.1-14.2): rdv_session_connect() and its offer (sent once
 * discovery knows the mapping behaviour, nat.decided, at most
 * RDV__OFFER_WAIT_MS later; the answer waits likewise), a peer's offer carrying e2eKey
 * (a connect request, cb_session_request), accepting or declining it, the
 * answer, our connectionInfo and candidates (trickled, and again when they
 * change), and the peer's candidates into checks.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/client.h"
#include "client/direct.h"
#include "client/nat/discovery.h"
#include "client/relay.h"
#include "client/session.h"
#include "schema/ids.h"

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
    for (rdv__session *r = c->sessions; r; r = r->next) {
        rdv__direct *d = r->direct;
        if (!d || d->offer_pending || d->answer_pending || r->st == RDV__SS_REQUESTED)
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
    for (rdv__session *r = c->sessions; r; r = r->next) {
        rdv__direct *d = r->direct;
        if (!d || r->st != RDV__SS_OPEN || !d->keys)
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
    for (rdv__session *r = c->sessions; r && !found; r = r->next) {
        if (!r->direct || !r->direct->retrickle)
            continue;
        r->direct->retrickle = false;
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
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && r->direct)
        r->direct->retrickle = true;
    pthread_mutex_unlock(&c->lock);
}

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

/* Sends the offers rdv_session_connect() and the answers
 * rdv__direct_accept() left for nat.decided (the answerer then decides). (S) */
static void send_pending_offers(rdv_client *c, int64_t now)
{
    for (;;) {
        char sid[RDV_SESSION_ID_LEN + 1], peer[RDV_NODE_ID_LEN + 1];
        uint8_t pk[32];
        bool found = false, answer = false;
        pthread_mutex_lock(&c->lock);
        for (rdv__session *r = c->sessions; r && !found; r = r->next) {
            if (!r->direct || !(r->direct->offer_pending || r->direct->answer_pending) ||
                (!c->nat.decided && now - r->direct->t0 < RDV__OFFER_WAIT_MS))
                continue;
            answer = r->direct->answer_pending;
            r->direct->offer_pending = r->direct->answer_pending = false;
            memcpy(sid, r->sid, sizeof(sid));
            memcpy(peer, r->peer, sizeof(peer));
            memcpy(pk, r->direct->my_pk, sizeof(pk));
            found = true;
        }
        pthread_mutex_unlock(&c->lock);
        if (!found)
            return;
        int rc = send_signaling(c, answer ? RDV_MSG_ANSWER : RDV_MSG_OFFER, peer, sid, pk);
        rdv__session_events q;
        memset(&q, 0, sizeof(q));
        pthread_mutex_lock(&c->lock);
        rdv__session *r = rdv__session_find_locked(c, sid);
        if (r && rc != 0) {
            q.ended_err[0] = rc;
            q.ended[q.nended++] = rdv__session_end_locked(c, r);
        } else if (r && r->direct && answer) {
            rdv__session_decide_locked(c, r, rdv__mono_ms(), &q);
        }
        pthread_mutex_unlock(&c->lock);
        rdv__session_run_events(c, &q);
    }
}

int rdv_session_connect(rdv_client *c, const char *peer, char session_id_out[RDV_SESSION_ID_LEN + 1])
{
    rdv__session *r;
    int rc0 = rdv__session_new_outgoing(c, peer, session_id_out, &r);
    if (rc0 != 0)
        return rc0;
    rdv__direct *d = calloc(1, sizeof(*d));
    if (!d) {
        rdv__session_free(r);
        return RDV_ERR_NOMEM;
    }
    r->direct = d;
    session_init(d, rdv__mono_ms());
    memcpy(d->my_pk, r->kp.pk, 32);
    r->deadline = d->t0 + RDV_SESSION_OPEN_TIMEOUT_MS;
    char sid[RDV_SESSION_ID_LEN + 1];
    memcpy(sid, r->sid, sizeof(sid));
    uint8_t pk[32];
    memcpy(pk, r->kp.pk, 32);
    pthread_mutex_lock(&c->lock);
    int rc = rdv__session_count_locked(c, -1) >= RDV_MAX_SESSIONS ? RDV_ERR_LIMIT : 0;
    /* Our NAT type and server-reflexive candidate go into the offer: until
     * discovery knows the mapping behaviour (symmetric or not: what the
     * decision needs), the service thread holds it (at most
     * RDV__OFFER_WAIT_MS); the filtering tests are not waited for. */
    bool wait = !c->nat.decided;
    if (rc == 0) {
        d->offer_pending = wait;
        r->next = c->sessions;
        c->sessions = r;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        rdv__session_free(r);
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
        rdv__session_forget(c, sid);
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
    d->cands_ms = d->checks_ms = -1;
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
        if (!ip || !rdv_msg_get_int(ci, f[i].port, &port) || port < 1 || port > 65535)
            continue;
        json_t *o = json_pack("{s:s, s:I, s:s, s:I}", "ip", ip, "port", (json_int_t)port,
                              "type", rdv__cand_type_name(f[i].t), "priority",
                              (json_int_t)rdv__cand_priority(f[i].t, RDV__CAND_LOCALPREF_MAX,
                                                             RDV__CAND_COMPONENT));
        rdv__cand k;
        if (o && rdv__cand_from_json(o, &k) == 0)
            rdv__direct_add_remote_locked(c, d, &k);
        json_decref(o);
    }
}

/* ---- received signaling (service thread) ----------------------------------- */

static bool parse_key(const char *hex, uint8_t out[32])
{
    size_t l = 0;
    return hex && sodium_hex2bin(out, 32, hex, strlen(hex), NULL, &l, NULL) == 0 && l == 32;
}

/* An offer carrying e2eKey: a connect request (cb_session_request). */
static void on_offer(rdv_client *c, const rdv_msg *m, const uint8_t pk[32])
{
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    int64_t ts = 0;
    (void)rdv_msg_get_int(m->body, "timestamp", &ts);
    rdv__session *r = calloc(1, sizeof(*r));
    rdv__direct *d = calloc(1, sizeof(*d));
    if (!r || !d) {
        free(r);
        free(d);
        return;
    }
    r->direct = d;
    r->proxy_fd = -1;
    r->st = RDV__SS_REQUESTED;
    snprintf(r->sid, sizeof(r->sid), "%s", sid);
    snprintf(r->peer, sizeof(r->peer), "%s", from);
    memcpy(r->peer_pk, pk, 32);
    r->req_ts = ts;
    session_init(d, rdv__mono_ms());
    r->deadline = d->t0 + RDV_SESSION_ANSWER_MS;
    if (rdv_uuid_to_bytes(r->sid, r->sid_bytes) != 0) {
        rdv__session_free(r);
        return;
    }
    bool ok = false, known = false;
    pthread_mutex_lock(&c->lock);
    known = rdv__session_find_locked(c, sid) || rdv__session_find_bytes_locked(c, r->sid_bytes);
    if (!known && rdv__session_count_locked(c, -1) < RDV_MAX_SESSIONS) {
        conn_info_to_remote_locked(c, d, json_object_get(m->body, "connectionInfo"));
        r->next = c->sessions;
        c->sessions = r;
        ok = true;
    }
    rdv_nat_type pn = d->peer_nat;
    pthread_mutex_unlock(&c->lock);
    if (!ok) {
        rdv__session_free(r);
        if (!known) /* too many sessions: decline; a copy is ignored */
            (void)rdv__direct_send_refusal(c, from, sid);
        return;
    }
    rdv_session_request req;
    memset(&req, 0, sizeof(req));
    snprintf(req.session_id, sizeof(req.session_id), "%s", sid);
    snprintf(req.from_node_id, sizeof(req.from_node_id), "%s", from);
    req.timestamp = ts;
    req.direct = 1;
    req.peer_nat = pn;
    c->cfg.cb_session_request(c, &req, c->cfg.user_ptr);
}

/* The answer to our rdv_session_connect(): keys, then the decision. */
static void on_answer(rdv_client *c, rdv__session *r, const rdv_msg *m, const uint8_t pk[32],
                      rdv__session_events *q)
{
    int64_t now = rdv__mono_ms();
    rdv__direct *d = r->direct;
    conn_info_to_remote_locked(c, d, json_object_get(m->body, "connectionInfo"));
    if (rdv__e2e_init(&r->e2e, true, &r->kp, pk, r->sid_bytes) != 0) {
        if (q->nended < RDV__EV_MAX) {
            q->ended_err[q->nended] = RDV_ERR_PROTOCOL; /* a low-order key */
            q->ended[q->nended++] = rdv__session_end_locked(c, r);
        }
        return;
    }
    rdv__e2e_keypair_wipe(&r->kp);
    r->st = RDV__SS_OPEN;
    c->rstats.opened++;
    rdv__session_decide_locked(c, r, now, q);
}

bool rdv__direct_on_routed(rdv_client *c, const rdv_msg *m)
{
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    if (!sid || !from)
        return false;
    uint8_t pk[32];
    if (m->type == RDV_MSG_OFFER) {
        if (!c->cfg.cb_session_request || !parse_key(rdv_msg_get_str(m->body, "e2eKey"), pk))
            return false; /* a plain offer: the application's cb_offer */
        on_offer(c, m, pk);
        return true;
    }
    rdv__session_events q;
    memset(&q, 0, sizeof(q));
    bool handled = false;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && r->direct && strcmp(r->peer, from) == 0) {
        handled = true;
        if (m->type == RDV_MSG_ANSWER) {
            if (r->initiator && r->st == RDV__SS_OPENING) {
                if (parse_key(rdv_msg_get_str(m->body, "e2eKey"), pk)) {
                    on_answer(c, r, m, pk, &q);
                } else if (q.nended < RDV__EV_MAX) {
                    /* An answer without e2eKey declines the session. */
                    q.ended_err[q.nended] = RDV__ENDED_REJECTED;
                    q.ended[q.nended++] = rdv__session_end_locked(c, r);
                }
            }
        } else if (m->type == RDV_MSG_ICE_CANDIDATE) {
            rdv__cand k;
            if (rdv__cand_from_json(json_object_get(m->body, "candidate"), &k) == 0) {
                rdv__direct_add_remote_locked(c, r->direct, &k);
                if (k.port_mapped) /* relay only no more (PROTOCOL.md 14.6) */
                    rdv__session_mapping_gained_locked(c, r, rdv__mono_ms());
                if (r->direct->keys && !r->direct->direct_up && r->direct->probe_start)
                    r->direct->next_probe = rdv__mono_ms(); /* check it now */
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    rdv__session_run_events(c, &q);
    if (handled)
        rdv__wake(c);
    return handled;
}

/* rdv_session_accept() of a connect request: keys, answer, checks. */
int rdv__direct_accept(rdv_client *c, const char *sid)
{
    rdv__e2e_keypair kp;
    if (rdv__e2e_keypair_new(&kp) != 0)
        return RDV_ERR_CRYPTO;
    char peer[RDV_NODE_ID_LEN + 1];
    rdv__session_events q;
    memset(&q, 0, sizeof(q));
    int rc = 0;
    rdv__session *dead = NULL; /* the peer's key is unusable: declined */
    bool wait = false;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r)
        memcpy(peer, r->peer, sizeof(peer));
    if (!r || !r->direct || r->st != RDV__SS_REQUESTED) {
        rc = RDV_ERR_NO_SESSION;
    } else if (rdv__e2e_init(&r->e2e, false, &kp, r->peer_pk, r->sid_bytes) != 0) {
        rc = RDV_ERR_CRYPTO;
        dead = rdv__session_end_locked(c, r);
    } else {
        r->st = RDV__SS_OPEN;
        c->rstats.opened++;
        memcpy(r->direct->my_pk, kp.pk, 32);
        r->direct->t0 = rdv__mono_ms();
        /* Like the offer, the answer carries our type: held until the
         * mapping behaviour is known (the service thread sends it). */
        r->direct->answer_pending = !c->nat.decided;
        wait = r->direct->answer_pending;
    }
    pthread_mutex_unlock(&c->lock);
    if (wait) {
        rdv__e2e_keypair_wipe(&kp);
        rdv__wake(c);
        return 0;
    }
    if (dead) {
        rdv__session_free(dead); /* no callback: the caller gets rc */
        (void)rdv__direct_send_refusal(c, peer, sid);
    }
    if (rc == 0)
        rc = send_signaling(c, RDV_MSG_ANSWER, peer, sid, kp.pk);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        r = rdv__session_find_locked(c, sid);
        if (r && r->direct)
            rdv__session_decide_locked(c, r, rdv__mono_ms(), &q);
        pthread_mutex_unlock(&c->lock);
    } else if (rc != RDV_ERR_NO_SESSION && rc != RDV_ERR_CRYPTO) {
        rdv__session_forget(c, sid); /* no callback: the caller gets rc */
    }
    rdv__e2e_keypair_wipe(&kp);
    rdv__session_run_events(c, &q);
    rdv__wake(c);
    return rc;
}


void rdv__direct_signal_service(rdv_client *c, int64_t now)
{
    send_pending_offers(c, now);
    send_pending_candidates(c, now);
}
