/* session.c - sessions (see session.h): the table, the path decision and
 * path state of a direct-then-relay session, what is held between two
 * paths, its relay leg's events, its timers, the work done after the lock,
 * and rdv_session_get_info().
 *
 * Decision (client/README.md "Direct connections", after TealeNet's
 * matrix): when neither side is symmetric the initiator tries the direct
 * path for direct_timeout_ms and then opens the relay leg; when a side is
 * symmetric it opens the relay leg at once, and both sides start their
 * checks once the leg carries the session (unless both are symmetric),
 * switching to a direct path as soon as one is confirmed (direct_probe.c,
 * direct_path.c). Between a symmetric and a cone NAT both sides also run
 * many-port probing (direct_probe.c). Two sides with the same public
 * (server-reflexive) IP are most likely behind one NAT, where their host
 * candidates reach each other without the NAT: then even two symmetric
 * sides check (relay first, upgrade) instead of staying on the relay.
 * When both sides have a global IPv6 address the NAT types do not matter:
 * direct first (PROTOCOL.md 14.6).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/client.h"
#include "client/direct.h"
#include "client/nat/discovery.h"
#include "client/nat/portmap.h"
#include "client/proxy.h"
#include "client/relay.h"
#include "client/session.h"
#include "schema/ids.h"

const char *rdv_path_name(rdv_path path)
{
    switch (path) {
    case RDV_PATH_DIRECT: return "Direct";
    case RDV_PATH_RELAYED: return "Relayed";
    default: return "Unknown";
    }
}

/* ---- the session table (L held) ------------------------------------------ */

rdv__session *rdv__session_find_locked(rdv_client *c, const char *sid)
{
    for (rdv__session *r = c->sessions; r; r = r->next)
        if (strcmp(r->sid, sid) == 0)
            return r;
    return NULL;
}

rdv__session *rdv__session_find_bytes_locked(rdv_client *c, const uint8_t sid[16])
{
    for (rdv__session *r = c->sessions; r; r = r->next)
        if (memcmp(r->sid_bytes, sid, 16) == 0)
            return r;
    return NULL;
}

unsigned rdv__session_count_locked(rdv_client *c, int state /* -1: all */)
{
    unsigned n = 0;
    for (rdv__session *r = c->sessions; r; r = r->next)
        n += state < 0 || (int)r->st == state;
    return n;
}

static void unlink_locked(rdv_client *c, rdv__session *r)
{
    for (rdv__session **pp = &c->sessions; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    r->next = NULL;
}

void rdv__session_forget(rdv_client *c, const char *sid)
{
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r)
        rdv__session_end_locked(c, r);
    pthread_mutex_unlock(&c->lock);
    rdv__session_free(r);
}

void rdv__session_free(rdv__session *r)
{
    if (!r)
        return;
    if (r->direct) {
        rdv__session_drop_held(NULL, r);
        sodium_memzero(r->direct, sizeof(*r->direct));
        free(r->direct);
    }
    sodium_memzero(r, sizeof(*r));
    free(r);
}

rdv__session *rdv__session_end_locked(rdv_client *c, rdv__session *r)
{
    unlink_locked(c, r);
    rdv__proxy_detach_locked(c, r);
    if (r->direct)
        rdv__direct_detach_locked(c, r);
    rdv__e2e_keypair_wipe(&r->kp);
    rdv__e2e_wipe(&r->e2e);
    return r;
}

void rdv__session_report_closed(rdv_client *c, rdv__session *r, int err, const char *reason)
{
    if (err != 0) {
        pthread_mutex_lock(&c->lock);
        char text[128];
        snprintf(text, sizeof(text), "session %.8s with %.16s: %s (%s)", r->sid, r->peer,
                 rdv_strerror(err), reason);
        rdv__relay_set_error_locked(c, err, text);
        pthread_mutex_unlock(&c->lock);
    }
    if (c->cfg.cb_session_closed && !atomic_load(&c->destroying))
        c->cfg.cb_session_closed(c, r->sid, err, reason, c->cfg.user_ptr);
    rdv__session_free(r);
}

int rdv__session_new_outgoing(rdv_client *c, const char *peer, char session_id_out[],
                            rdv__session **out)
{
    *out = NULL;
    if (session_id_out)
        session_id_out[0] = '\0';
    if (!c || !peer || !session_id_out || !rdv_node_id_valid(peer, strlen(peer)) ||
        strcmp(peer, c->node_id) == 0)
        return RDV_ERR_INVALID;
    if (rdv_client_state(c) != RDV_STATE_AUTHENTICATED)
        return RDV_ERR_NOT_CONNECTED;
    rdv__session *r = calloc(1, sizeof(*r));
    if (!r)
        return RDV_ERR_NOMEM;
    r->proxy_fd = -1;
    r->st = RDV__SS_OPENING;
    r->initiator = true;
    snprintf(r->peer, sizeof(r->peer), "%s", peer);
    rdv_uuid_v4(r->sid);
    if (rdv_uuid_to_bytes(r->sid, r->sid_bytes) != 0 || rdv__e2e_keypair_new(&r->kp) != 0) {
        rdv__session_free(r);
        return RDV_ERR_CRYPTO;
    }
    r->deadline = rdv__mono_ms() + RDV_SESSION_OPEN_TIMEOUT_MS;
    *out = r;
    return 0;
}

void rdv__session_free_all(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->sessions)
        rdv__session_free(rdv__session_end_locked(c, c->sessions));
    pthread_mutex_unlock(&c->lock);
    rdv__proxy_close_dead(c);
    free(c->dead_fds);
    c->dead_fds = NULL;
    free(c->scratch);
    c->scratch = NULL;
}

/* ---- path state and the decision (L held) ---------------------------------- */

static void flush_held_locked(rdv_client *c, rdv__session *r);

void rdv__session_set_path_locked(rdv_client *c, rdv__session *r, rdv_path path, int64_t now,
                                  rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    if (d->path == path)
        return;
    int64_t ms = rdv__direct_ms_since(d, now);
    if (path != RDV_PATH_UNKNOWN && d->first_path_ms < 0) {
        d->first_path_ms = ms;
        c->last_connect_ms = ms;
    }
    if (path == RDV_PATH_DIRECT) {
        if (d->direct_ms < 0) {
            d->direct_ms = ms;
            c->direct_sessions++;
        }
        c->last_direct_ms = d->direct_ms;
        if (d->path == RDV_PATH_RELAYED)
            d->upgraded = true;
    }
    if (path == RDV_PATH_RELAYED && d->relayed_ms < 0)
        d->relayed_ms = ms;
    d->path = path;
    d->no_path_since = path == RDV_PATH_UNKNOWN ? now : 0;
    if (path != RDV_PATH_UNKNOWN) {
        c->rstats.last_path = path;
        flush_held_locked(c, r);
    }
    if (q->n < RDV__EV_MAX) {
        rdv__session_event *e = &q->ev[q->n++];
        memset(e, 0, sizeof(*e));
        e->kind = 1;
        memcpy(e->sid, r->sid, sizeof(e->sid));
        memcpy(e->peer, r->peer, sizeof(e->peer));
        e->path = path;
        e->ms = ms;
        if (r->initiator && !d->announced && path != RDV_PATH_UNKNOWN) {
            d->announced = true;
            e->ready = true;
        }
    }
}

int rdv__session_hold_locked(rdv__session *r, const void *buf, size_t len)
{
    if (r->direct->first_path_ms < 0)
        return RDV_ERR_STATE; /* no path yet: the application waits for one */
    return rdv__hold_push(&r->direct->held, buf, len);
}

void rdv__session_drop_held(rdv_client *c, rdv__session *r)
{
    size_t n = rdv__hold_clear(&r->direct->held);
    if (c)
        c->rstats.dropped += n;
}

/* The session has a path again: what was held goes out on it, in order,
 * before anything sent later (the caller holds the lock throughout). A
 * datagram the path refuses now (a full queue) is lost; the send path
 * counts it in relay_dropped. (L held) */
static void flush_held_locked(rdv_client *c, rdv__session *r)
{
    rdv__held *d = rdv__hold_take(&r->direct->held);
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

void rdv__session_want_relay_locked(rdv__session *r, rdv__session_events *q)
{
    rdv__direct *d = r->direct;
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

void rdv__session_close_relay_leg_locked(rdv__session *r, rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    if (!d->relay_leg || q->nclose >= RDV__EV_MAX)
        return;
    d->relay_leg = false;
    d->relay_up = false;
    memcpy(q->relay_close[q->nclose++], r->sid, sizeof(r->sid));
}

/* Our server-reflexive IP is the peer's (its connectionInfo publicIP):
 * both are most likely behind one NAT. (L held) */
static bool same_public_ip_locked(rdv_client *c, const rdv__direct *d)
{
    if (!c->nat.have_mapped || c->nat.no_nat)
        return false;
    for (size_t i = 0; i < d->nremote; i++)
        if (d->remote[i].type == RDV__CAND_SRFLX &&
            rdv__addr_ip_equal(&d->remote[i].addr, &c->nat.mapped))
            return true;
    return false;
}

/* RDV__SS_OPEN with keys: the decision (client/README "Direct connections",
 * after TealeNet's matrix). */
void rdv__session_decide_locked(rdv_client *c, rdv__session *r, int64_t now,
                                rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    rdv_nat_type me = rdv__nat_effective_locked(c);
    rdv_nat_type peer = d->peer_nat;
    rdv__path_wire_mac_keys(&r->e2e, d->tx_mac, d->rx_mac);
    d->keys = true;
    if (d->cands_ms < 0)
        d->cands_ms = rdv__direct_ms_since(d, now);
    if (d->path == RDV_PATH_UNKNOWN)
        d->no_path_since = now;
    bool sym_me = rdv__nat_is_symmetric(me), sym_peer = rdv__nat_is_symmetric(peer);
    /* Global IPv6 on both sides: no NAT there, so direct is expected
     * even between symmetric IPv4 NATs. */
    bool v6 = rdv__direct_v6_both_locked(c, d);
    bool direct_expected = !c->cfg.direct_disable && ((!sym_me && !sym_peer) || v6);
    bool one_nat = sym_me && sym_peer && same_public_ip_locked(c, d);
    /* A port mapping on either side gives that side a fixed public
     * address open to anyone: two symmetric NATs can meet there. */
    bool mapped = rdv__portmap_active_locked(c) || d->peer_mapped;
    bool upgrade =
        !c->cfg.direct_disable && (!(sym_me && sym_peer) || one_nat || mapped || v6);
    if (r->initiator) {
        if (direct_expected) {
            d->direct_deadline = now + c->cfg.direct_timeout_ms;
        } else {
            if (c->cfg.direct_disable)
                rdv__direct_set_error(d, RDV_ERR_NOT_SUPPORTED,
                                      "direct paths are disabled (direct_disable)");
            else
                rdv__direct_set_error(
                    d, RDV_ERR_NOT_SUPPORTED,
                    one_nat ? "both sides are behind one symmetric NAT (same public IP): relay "
                              "first, host candidates tried"
                    : sym_me && sym_peer && !mapped
                        ? "both sides are behind symmetric NATs: relay only"
                    : sym_me && sym_peer
                        ? "both sides are behind symmetric NATs: relay first, upgrade "
                          "through the port mapping"
                        : "a side is behind a symmetric NAT: relay first, upgrade tried");
            rdv__session_want_relay_locked(r, q);
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
    rdv__direct_start_probing_locked(c, r, now);
}

void rdv__session_mapping_gained_locked(rdv_client *c, rdv__session *r, int64_t now)
{
    rdv__direct *d = r->direct;
    if (!d || r->st != RDV__SS_OPEN || !d->keys || c->cfg.direct_disable || d->probe_start ||
        d->checks_deferred || d->direct_up)
        return; /* not decided yet (the decision sees it), or already checking */
    if (d->relay_up)
        rdv__direct_start_probing_locked(c, r, now);
    else
        d->checks_deferred = true;
}

/* ---- the relay leg of a direct-then-relay session ------------------------------ */

/* The relay leg carries the session now (the answerer got relayOpen, the
 * opener relayReady): the path, unless a direct one is up (then the
 * opener lets the leg go after RDV__LEG_LINGER_MS), and the checks a
 * relay-first session deferred. (L held) */
static void leg_up_locked(rdv_client *c, rdv__session *r, int64_t now, rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    d->relay_up = true;
    if (!d->direct_up)
        rdv__session_set_path_locked(c, r, RDV_PATH_RELAYED, now, q);
    else if (r->initiator)
        d->leg_close_at = now + RDV__LEG_LINGER_MS; /* direct won meanwhile */
    if (d->checks_deferred)
        rdv__direct_start_probing_locked(c, r, now);
}

/* relayOpen for a connect session we know: the initiator wants the relay
 * leg; answer relayReady with our e2eKey (keys are already agreed). Returns
 * true when the message was about such a session. (S) */
bool rdv__session_on_leg_open(rdv_client *c, const char *sid, const char *from)
{
    rdv__session_events q;
    memset(&q, 0, sizeof(q));
    uint8_t pk[32];
    bool mine = false, answer = false;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && r->direct && strcmp(r->peer, from) == 0) {
        mine = true;
        if (!r->initiator && r->st == RDV__SS_OPEN) {
            int64_t now = rdv__mono_ms();
            answer = true;
            memcpy(pk, r->direct->my_pk, 32);
            r->direct->relay_leg = true;
            leg_up_locked(c, r, now, &q);
            /* The opener asks for the leg only without a direct path: ours
             * is dead or one-way. Send on the relay (what the opener sends
             * there gets its answers there) and check the path again. */
            if (r->direct->direct_up)
                rdv__direct_lost_locked(c, r, now,
                                   "the peer lost the direct path (it reopened the relay leg)",
                                   &q);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (answer)
        (void)rdv__relay_send_signed(c, RDV_MSG_RELAY_READY, from, sid, pk);
    rdv__session_run_events(c, &q);
    return mine;
}

/* relayReady for a connect session's relay leg. Returns true when it was
 * about such a session. (S) */
bool rdv__session_on_leg_ready(rdv_client *c, const char *sid, const char *from)
{
    rdv__session_events q;
    memset(&q, 0, sizeof(q));
    bool mine = false;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && r->direct && strcmp(r->peer, from) == 0) {
        mine = true;
        if (r->initiator && r->direct->relay_leg && r->st == RDV__SS_OPEN)
            leg_up_locked(c, r, rdv__mono_ms(), &q);
    }
    pthread_mutex_unlock(&c->lock);
    rdv__session_run_events(c, &q);
    return mine;
}

/* relayClose for a connect session: the leg ends; the session ends only
 * when no direct path carries it (or the peer closed the session). Returns
 * true when the session lives on. (S) */
bool rdv__session_on_leg_close(rdv_client *c, const char *sid, const char *reason)
{
    rdv__session_events q;
    memset(&q, 0, sizeof(q));
    bool lives = false;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && r->direct && r->st == RDV__SS_OPEN) {
        bool leg_only = reason && (strcmp(reason, RDV__REASON_DIRECT) == 0 ||
                                   strcmp(reason, "idle") == 0);
        if (leg_only || r->direct->direct_up) {
            lives = true;
            r->direct->relay_leg = false;
            r->direct->relay_up = false;
            if (!r->direct->direct_up) {
                rdv__session_set_path_locked(c, r, RDV_PATH_UNKNOWN, rdv__mono_ms(), &q);
                rdv__session_want_relay_locked(r, &q);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    rdv__session_run_events(c, &q);
    return lives;
}

/* ---- timers (S) ----------------------------------------------------------------- */

/* The timers of a direct-then-relay session. (L held) */
static void session_tick_locked(rdv_client *c, rdv__session *r, int64_t now,
                                rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    if (r->st != RDV__SS_OPEN || !d->keys)
        return;
    if (d->direct_up) {
        rdv__direct_keepalive_tick_locked(c, r, now, q);
        return;
    }
    if (!d->relay_up && d->no_path_since && now - d->no_path_since >= RDV__NO_PATH_MS) {
        /* Neither path for too long (the peer vanished, or its relay leg
         * never came): the session ends. */
        if (q->nended < RDV__EV_MAX) {
            rdv__session_close_relay_leg_locked(r, q); /* a leg still opening */
            q->ended_err[q->nended] = RDV_ERR_TIMEOUT;
            q->ended[q->nended++] = rdv__session_end_locked(c, r);
        }
        return;
    }
    if (d->relay_wanted && !d->relay_leg && now >= d->next_relay_try &&
        c->phase == RDV__PH_READY) {
        d->next_relay_try = now + 1000; /* a relayOpen that could not go */
        rdv__session_want_relay_locked(r, q);
    }
    if (d->direct_deadline && now >= d->direct_deadline) {
        d->direct_deadline = 0;
        char text[128];
        snprintf(text, sizeof(text), "no direct path within %d ms (%zu checks)",
                 c->cfg.direct_timeout_ms, d->npairs);
        rdv__direct_set_error(d, RDV_ERR_TIMEOUT, text);
        rdv__session_want_relay_locked(r, q);
    }
    rdv__direct_probe_tick_locked(c, r, now);
}

int64_t rdv__session_next_due(rdv_client *c)
{
    int64_t due = rdv__discovery_next_due(c);
    int64_t now = rdv__mono_ms();
    pthread_mutex_lock(&c->lock);
    for (rdv__session *r = c->sessions; r; r = r->next) {
        rdv__direct *d = r->direct;
        if (d && d->retrickle && c->next_retrickle < due)
            due = c->next_retrickle;
        if (!d || r->st != RDV__SS_OPEN || !d->keys)
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

void rdv__session_service(rdv_client *c, int64_t now)
{
    if (c->udp4 < 0 && c->udp6 < 0)
        return;
    rdv__discovery_tick(c, now);
    rdv__portmap_service(c, now);
    rdv__direct_read_main(c, now);
    rdv__discovery_after_read(c, now);
    rdv__direct_signal_service(c, now);
    rdv__direct_read_spray(c, now);
    /* Session timers. */
    rdv__session_events q;
    memset(&q, 0, sizeof(q));
    pthread_mutex_lock(&c->lock);
    for (rdv__session *r = c->sessions, *next; r; r = next) {
        next = r->next; /* the tick may end (unlink) r */
        if (r->direct)
            session_tick_locked(c, r, now, &q);
    }
    pthread_mutex_unlock(&c->lock);
    rdv__session_run_events(c, &q);
}

/* ---- deferred work ----------------------------------------------------------- */

void rdv__session_run_events(rdv_client *c, rdv__session_events *q)
{
    for (size_t i = 0; i < q->nopen; i++) {
        if (rdv__relay_send_signed(c, RDV_MSG_RELAY_OPEN, q->relay_open_peer[i],
                                   q->relay_open[i], q->relay_open_pk[i]) == 0)
            continue;
        /* Not sent (disconnected, backlog): the tick asks again. */
        pthread_mutex_lock(&c->lock);
        rdv__session *r = rdv__session_find_locked(c, q->relay_open[i]);
        if (r && r->direct)
            r->direct->relay_leg = false;
        pthread_mutex_unlock(&c->lock);
    }
    for (size_t i = 0; i < q->nclose; i++)
        (void)rdv__relay_send_close(c, q->relay_close[i], RDV__REASON_DIRECT);
    for (size_t i = 0; i < q->n; i++) {
        rdv__session_event *e = &q->ev[i];
        if (atomic_load(&c->destroying))
            break;
        if (e->ready && c->cfg.cb_session_ready)
            c->cfg.cb_session_ready(c, e->sid, e->peer, c->cfg.user_ptr);
        if (c->cfg.cb_path)
            c->cfg.cb_path(c, e->sid, e->peer, e->path, e->ms, c->cfg.user_ptr);
    }
    for (size_t i = 0; i < q->nended; i++) {
        int e = q->ended_err[i];
        rdv__session_report_closed(c, q->ended[i], e == RDV__ENDED_REJECTED ? 0 : e,
                                 e == RDV__ENDED_REJECTED ? "rejected"
                                 : e == RDV_ERR_TIMEOUT   ? "no path to the peer"
                                 : e == RDV_ERR_PROTOCOL  ? "the peer's e2eKey is unusable"
                                 : e                      ? "the offer could not be sent"
                                                          : "closed_by_peer");
    }
}

/* ---- status ------------------------------------------------------------------ */

int rdv_session_get_info(rdv_client *c, const char *sid, rdv_session_info *out)
{
    if (!c || !sid || !out || !rdv_uuid_valid(sid, strlen(sid)))
        return RDV_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (!r) {
        rc = RDV_ERR_NO_SESSION;
    } else {
        memcpy(out->peer_node_id, r->peer, sizeof(out->peer_node_id));
        out->open = r->st == RDV__SS_OPEN;
        out->first_path_ms = out->relayed_ms = out->direct_ms = -1;
        out->candidates_ms = out->checks_ms = -1;
        if (!r->direct) {
            out->path = r->st == RDV__SS_OPEN ? RDV_PATH_RELAYED : RDV_PATH_UNKNOWN;
        } else {
            rdv__direct *d = r->direct;
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
            out->candidates_ms = d->cands_ms;
            out->checks_ms = d->checks_ms;
            out->probe_rounds = d->probe_rounds;
            out->last_direct_error = d->last_err;
            memcpy(out->last_direct_error_text, d->last_err_text,
                   sizeof(out->last_direct_error_text));
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

