/* relay.c - the relay leg of a session (PROTOCOL.md 9), node side: the
 * public relay API (open, accept, reject, send, close), handling of
 * verified relayOpen / relayReady, relayClose and relayData (both forms),
 * timeouts, and the network-status snapshot. The session that owns the
 * leg is session.h.
 *
 * Every session lives in c->sessions under c->lock. API calls (any thread)
 * and the service thread change sessions under the lock; user callbacks
 * are called by the service thread only after the lock was released, with
 * copies of what they need. Encryption happens under the lock so the send
 * counter order equals the queue order (the receiver's replay window then
 * sees counters in order unless the server reorders).
 *
 * Data is sent in the binary form (0x01 || session UUID bytes || packet);
 * both forms are accepted. Packet = e2e.h: LE64 counter || ciphertext ||
 * tag, ChaCha20-Poly1305 IETF, AAD = session UUID bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <sodium.h>

#include "client/client.h"
#include "client/proxy.h"
#include "client/direct.h"
#include "schema/ids.h"
#include "schema/wire_limits.h"

/* The protocol's name for a deliberate close (PROTOCOL.md 9.3): the server
 * sends it when a node gives no reason, and we send it too, so that the
 * peer's application reads one name whichever path the session was on. */
#define RDV__REASON_CLOSED "closed_by_peer"
#define RDV__REASON_REJECTED "rejected"
#define RDV__REASON_TIMEOUT "timeout"
#define RDV__REASON_E2E "e2e_required"

void rdv__relay_set_error_locked(rdv_client *c, int err, const char *text)
{
    c->rstats.last_error = err;
    snprintf(c->rstats.last_error_text, sizeof(c->rstats.last_error_text), "%s",
             text ? text : rdv_strerror(err));
}

/* ---- sending helpers ------------------------------------------------------- */

int rdv__relay_send_close(rdv_client *c, const char *sid, const char *reason)
{
    json_t *body = json_pack("{s:s, s:s}", "sessionID", sid, "reason", reason);
    return rdv__send_body(c, RDV_MSG_RELAY_CLOSE, body, sid, false);
}

static void hex32(const uint8_t in[32], char out[RDV_KEY_HEX_LEN + 1])
{
    sodium_bin2hex(out, RDV_KEY_HEX_LEN + 1, in, 32);
}

int rdv__relay_send_signed(rdv_client *c, rdv_msg_type type, const char *to,
                       const char *sid, const uint8_t pk[32])
{
    char key[RDV_KEY_HEX_LEN + 1];
    hex32(pk, key);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "fromNodeID", c->node_id,
                             "toNodeID", to, "sessionID", sid, "e2eKey", key);
    return rdv__send_body(c, type, body, sid, false);
}

/* ---- public API ---------------------------------------------------------- */

static bool valid_sid(const char *sid)
{
    return sid && rdv_uuid_valid(sid, strlen(sid));
}

int rdv_session_open(rdv_client *c, const char *peer, char session_id_out[RDV_SESSION_ID_LEN + 1])
{
    rdv__session *r;
    int rc0 = rdv__session_new_outgoing(c, peer, session_id_out, &r);
    if (rc0 != 0)
        return rc0;
    uint8_t pk[32];
    memcpy(pk, r->kp.pk, sizeof(pk));
    char sid[RDV_SESSION_ID_LEN + 1];
    memcpy(sid, r->sid, sizeof(sid));

    pthread_mutex_lock(&c->lock);
    unsigned n = rdv__session_count_locked(c, -1);
    /* The server counts our open and opening relay sessions: connect
     * sessions only while they have a relay leg. */
    unsigned busy = 0;
    for (rdv__session *o = c->sessions; o; o = o->next)
        busy += (o->st == RDV__SS_OPEN || o->st == RDV__SS_OPENING) &&
                (!o->direct || o->direct->relay_leg);
    int rc = 0;
    if (c->limits.max_relay_sessions <= 0)
        rc = RDV_ERR_NOT_SUPPORTED; /* the server announced no relay */
    else if (n >= RDV_MAX_SESSIONS || busy >= c->limits.max_relay_sessions)
        rc = RDV_ERR_LIMIT;
    else {
        r->next = c->sessions;
        c->sessions = r;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        rdv__session_free(r);
        return rc;
    }
    /* Registered, and the ID given to the caller, before relayOpen is
     * queued: a fast answer (on the service thread) may arrive before this
     * function returns. */
    memcpy(session_id_out, sid, sizeof(sid));
    rc = rdv__relay_send_signed(c, RDV_MSG_RELAY_OPEN, peer, sid, pk);
    if (rc != 0) {
        session_id_out[0] = '\0';
        rdv__session_forget(c, sid);
        return rc;
    }
    return 0;
}

int rdv_session_accept(rdv_client *c, const char *sid)
{
    if (!c || !valid_sid(sid))
        return RDV_ERR_INVALID;
    if (rdv_client_state(c) != RDV_STATE_AUTHENTICATED)
        return RDV_ERR_NOT_CONNECTED;
    pthread_mutex_lock(&c->lock);
    rdv__session *dr = rdv__session_find_locked(c, sid);
    bool direct = dr && dr->direct;
    pthread_mutex_unlock(&c->lock);
    if (direct)
        return rdv__direct_accept(c, sid); /* a connect request (direct_signal.c) */
    rdv__e2e_keypair kp;
    if (rdv__e2e_keypair_new(&kp) != 0)
        return RDV_ERR_CRYPTO;
    char peer[RDV_NODE_ID_LEN + 1];
    int rc = 0;
    rdv__session *dead = NULL;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (!r || r->st != RDV__SS_REQUESTED) {
        rc = RDV_ERR_NO_SESSION;
    } else if (rdv__e2e_init(&r->e2e, false, &kp, r->peer_pk, r->sid_bytes) != 0) {
        rc = RDV_ERR_CRYPTO;
        dead = rdv__session_end_locked(c, r);
    } else {
        r->st = RDV__SS_OPEN;
        c->rstats.opened++;
        c->rstats.last_path = RDV_PATH_RELAYED;
        /* The latest session: open at once, never direct. */
        c->last_connect_ms = 0;
        c->last_direct_ms = -1;
    }
    if (r)
        memcpy(peer, r->peer, sizeof(peer));
    pthread_mutex_unlock(&c->lock);
    if (dead) {
        (void)rdv__relay_send_close(c, sid, RDV__REASON_E2E);
        rdv__session_free(dead);
    }
    if (rc == 0) {
        rc = rdv__relay_send_signed(c, RDV_MSG_RELAY_READY, peer, sid, kp.pk);
        if (rc != 0)
            rdv__session_forget(c, sid);
    }
    rdv__e2e_keypair_wipe(&kp);
    return rc;
}

/* Removes session sid in one of the states in `mask` (bit per state) and
 * sends relayClose with reason. */
static int end_local(rdv_client *c, const char *sid, unsigned mask, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && !(mask & (1u << r->st)))
        r = NULL;
    /* A connect session is known to the server only through its relay
     * leg; without one there is nothing to close there (the peer hears of
     * it over the direct path, or by the refusal answer below). */
    bool server_knows = r && (!r->direct || r->direct->relay_leg);
    /* A connect request we decline: tell the offerer with an answer
     * without e2eKey (PROTOCOL.md 14.1) instead of letting it time out. */
    bool refuse = r && r->direct && r->st == RDV__SS_REQUESTED;
    char peer[RDV_NODE_ID_LEN + 1] = "";
    if (r) {
        memcpy(peer, r->peer, sizeof(peer));
        rdv__session_end_locked(c, r);
    }
    pthread_mutex_unlock(&c->lock);
    if (!r)
        return RDV_ERR_NO_SESSION;
    rdv__session_free(r);
    /* Not connected: the server already ended the session. */
    if (server_knows)
        (void)rdv__relay_send_close(c, sid, reason);
    if (refuse)
        (void)rdv__direct_send_refusal(c, peer, sid);
    return 0;
}

int rdv_session_reject(rdv_client *c, const char *sid, const char *reason)
{
    if (!c || !valid_sid(sid) || (reason && strlen(reason) > RDV_MAX_TEXT))
        return RDV_ERR_INVALID;
    return end_local(c, sid, 1u << RDV__SS_REQUESTED,
                     reason && *reason ? reason : RDV__REASON_REJECTED);
}

int rdv_session_close(rdv_client *c, const char *sid)
{
    if (!c || !valid_sid(sid))
        return RDV_ERR_INVALID;
    return end_local(c, sid, 7u, RDV__REASON_CLOSED);
}

/* rdv_client_max_payload() under the lock. (L held) */
static size_t max_payload_locked(rdv_client *c)
{
    int64_t p = c->limits.max_relay_payload;
    if (p <= 0)
        p = RDV_RELAY_DEFAULT_PAYLOAD;
    if (p > RDV_MAX_MESSAGE_BYTES - RDV_RELAY_FRAME_HEADER)
        p = RDV_MAX_MESSAGE_BYTES - RDV_RELAY_FRAME_HEADER;
    return p > RDV__E2E_OVERHEAD ? (size_t)p - RDV__E2E_OVERHEAD : 0;
}

size_t rdv_client_max_payload(rdv_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = max_payload_locked(c);
    pthread_mutex_unlock(&c->lock);
    return n;
}

unsigned rdv_client_session_count(rdv_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    unsigned n = rdv__session_count_locked(c, RDV__SS_OPEN);
    pthread_mutex_unlock(&c->lock);
    return n;
}

int rdv__relay_send_locked(rdv_client *c, rdv__session *r, const void *buf, size_t len)
{
    if (r->st != RDV__SS_OPEN)
        return r->direct ? RDV_ERR_STATE : RDV_ERR_NO_SESSION; /* connect: no path yet */
    if (r->direct) {
        int drc = rdv__direct_send_locked(c, r, buf, len);
        if (drc != 1)
            return drc;
        if (!r->direct->relay_up)
            return rdv__session_hold_locked(r, buf, len); /* no path now */
    }
    size_t plen = RDV_RELAY_FRAME_HEADER + len + RDV__E2E_OVERHEAD;
    rdv__outmsg *m = malloc(sizeof(*m) + RDV__LWS_PRE + plen + 1);
    if (!m)
        return RDV_ERR_NOMEM;
    memset(m, 0, sizeof(*m));
    m->len = plen;
    m->binary = true;
    snprintf(m->type, sizeof(m->type), "relayData");
    uint8_t *f = m->buf + RDV__LWS_PRE;
    f[0] = RDV_RELAY_FRAME_KIND_DATA;
    memcpy(f + 1, r->sid_bytes, RDV__E2E_AD_BYTES);
    /* A counter spent on a datagram the full queue refuses is harmless:
     * the receiver's window only needs counters never to repeat. */
    int64_t n = rdv__e2e_seal(&r->e2e, buf, len, f + RDV_RELAY_FRAME_HEADER);
    if (n < 0) {
        free(m);
        return (int)n;
    }
    /* the relay channel when it is ready (relay_channel.h), else main */
    int rc = rdv__chan_append_locked(c, m);
    if (rc == 1)
        rc = rdv__outq_append_locked(c, m, false);
    if (rc != 0) {
        free(m);
        c->rstats.dropped++;
        return rc;
    }
    c->rstats.tx_dgrams++;
    c->rstats.tx_bytes += len;
    return 0;
}

int rdv_session_send(rdv_client *c, const char *sid, const void *buf, size_t len)
{
    if (!c || !valid_sid(sid) || (!buf && len))
        return RDV_ERR_INVALID;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    int rc = len > max_payload_locked(c) ? RDV_ERR_TOO_LARGE
             : r                         ? rdv__relay_send_locked(c, r, buf, len)
                                         : RDV_ERR_NO_SESSION;
    /* A datagram that left on the direct path needs no service thread. */
    bool queued = rc == 0 && !(r->direct && r->direct->direct_up);
    pthread_mutex_unlock(&c->lock);
    if (queued)
        rdv__wake(c);
    return rc;
}

int rdv_client_get_network_status(rdv_client *c, rdv_network_status *st)
{
    if (!c || !st)
        return RDV_ERR_INVALID;
    memset(st, 0, sizeof(*st));
    snprintf(st->relay_server, sizeof(st->relay_server), "%s", c->cfg.server_url);
    pthread_mutex_lock(&c->lock);
    st->state = c->state;
    memcpy(st->server_name, c->server_name, sizeof(st->server_name));
    memcpy(st->public_ip, c->observed_ip, sizeof(st->public_ip));
    st->public_port = c->observed_port;
    st->max_relay_sessions = c->limits.max_relay_sessions;
    st->relay_available = c->limits.max_relay_sessions > 0;
    st->active_relays = rdv__session_count_locked(c, RDV__SS_OPEN);
    st->pending_relays = rdv__session_count_locked(c, -1) - st->active_relays;
    st->relays_opened = c->rstats.opened;
    st->relay_tx_datagrams = c->rstats.tx_dgrams;
    st->relay_rx_datagrams = c->rstats.rx_dgrams;
    st->relay_tx_bytes = c->rstats.tx_bytes;
    st->relay_rx_bytes = c->rstats.rx_bytes;
    st->relay_dropped = c->rstats.dropped;
    st->last_path = (rdv_path)c->rstats.last_path;
    st->last_relay_error = c->rstats.last_error;
    memcpy(st->last_relay_error_text, c->rstats.last_error_text,
           sizeof(st->last_relay_error_text));
    rdv__direct_status_locked(c, st);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* ---- received messages (service thread) ----------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* relayOpen: a new request (needs the opener's e2eKey). */
static void on_open(rdv_client *c, const rdv_msg *m)
{
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    const char *key = rdv_msg_get_str(m->body, "e2eKey");
    if (from && sid && rdv__session_on_leg_open(c, sid, from))
        return; /* the relay leg of a connect session */
    int64_t ts = 0;
    (void)rdv_msg_get_int(m->body, "timestamp", &ts);
    uint8_t pk[32];
    size_t pklen = 0;
    if (!key || sodium_hex2bin(pk, sizeof(pk), key, strlen(key), NULL, &pklen, NULL) != 0 ||
        pklen != sizeof(pk)) {
        rdv__report(c, RDV_ERR_PROTOCOL, NULL,
                    "relayOpen without e2eKey refused (end-to-end encryption is required)",
                    sid, "relayOpen", "e2eKey", from);
        (void)rdv__relay_send_close(c, sid, RDV__REASON_E2E);
        return;
    }
    rdv__session *r = calloc(1, sizeof(*r));
    if (!r) {
        (void)rdv__relay_send_close(c, sid, "no memory");
        return;
    }
    r->proxy_fd = -1;
    r->st = RDV__SS_REQUESTED;
    copy_str(r->sid, sizeof(r->sid), sid);
    copy_str(r->peer, sizeof(r->peer), from);
    memcpy(r->peer_pk, pk, sizeof(pk));
    r->req_ts = ts;
    r->deadline = rdv__mono_ms() + RDV_SESSION_ANSWER_MS;
    if (rdv_uuid_to_bytes(r->sid, r->sid_bytes) != 0) {
        rdv__session_free(r);
        return;
    }
    const char *refuse = NULL;
    pthread_mutex_lock(&c->lock);
    if (rdv__session_find_locked(c, sid) || rdv__session_find_bytes_locked(c, r->sid_bytes))
        refuse = ""; /* a session we know: ignore (a copy) */
    else if (rdv__session_count_locked(c, -1) >= RDV_MAX_SESSIONS)
        refuse = "limit";
    else if (!c->cfg.cb_session_request)
        refuse = "no relay handler";
    else {
        r->next = c->sessions;
        c->sessions = r;
    }
    pthread_mutex_unlock(&c->lock);
    if (refuse) {
        rdv__session_free(r);
        if (*refuse)
            (void)rdv__relay_send_close(c, sid, refuse);
        return;
    }
    rdv_session_request req;
    memset(&req, 0, sizeof(req));
    copy_str(req.session_id, sizeof(req.session_id), sid);
    copy_str(req.from_node_id, sizeof(req.from_node_id), from);
    req.timestamp = ts;
    c->cfg.cb_session_request(c, &req, c->cfg.user_ptr);
}

/* relayReady: our opening session becomes open. */
static void on_ready(rdv_client *c, const rdv_msg *m)
{
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    const char *sid = rdv_msg_get_str(m->body, "sessionID");
    const char *key = rdv_msg_get_str(m->body, "e2eKey");
    if (from && sid && rdv__session_on_leg_ready(c, sid, from))
        return;
    uint8_t pk[32];
    size_t pklen = 0;
    bool key_ok = key && sodium_hex2bin(pk, sizeof(pk), key, strlen(key), NULL, &pklen,
                                        NULL) == 0 && pklen == sizeof(pk);
    rdv__session *dead = NULL;
    bool known = false, ready = false;
    char peer[RDV_NODE_ID_LEN + 1] = "";
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r && r->st == RDV__SS_OPENING && strcmp(r->peer, from) == 0) {
        known = true;
        if (key_ok && rdv__e2e_init(&r->e2e, true, &r->kp, pk, r->sid_bytes) == 0) {
            rdv__e2e_keypair_wipe(&r->kp);
            r->st = RDV__SS_OPEN;
            c->rstats.opened++;
            c->rstats.last_path = RDV_PATH_RELAYED;
            /* The latest session: relayOpen to relayReady, never direct. */
            c->last_connect_ms = rdv__mono_ms() - (r->deadline - RDV_SESSION_OPEN_TIMEOUT_MS);
            if (c->last_connect_ms < 0)
                c->last_connect_ms = 0;
            c->last_direct_ms = -1;
            memcpy(peer, r->peer, sizeof(peer));
            ready = true;
        } else {
            dead = rdv__session_end_locked(c, r);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!known) {
        rdv__report(c, RDV_ERR_NO_SESSION, NULL,
                    "relayReady for a session we are not opening (ignored)", sid,
                    "relayReady", NULL, from);
        return;
    }
    if (dead) {
        (void)rdv__relay_send_close(c, sid, RDV__REASON_E2E);
        rdv__session_report_closed(c, dead, RDV_ERR_PROTOCOL,
                      "the peer's relayReady has no usable e2eKey");
        return;
    }
    if (ready && c->cfg.cb_session_ready)
        c->cfg.cb_session_ready(c, sid, peer, c->cfg.user_ptr);
}

void rdv__relay_on_routed(rdv_client *c, const rdv_msg *m)
{
    if (m->type == RDV_MSG_RELAY_OPEN)
        on_open(c, m);
    else if (m->type == RDV_MSG_RELAY_READY)
        on_ready(c, m);
}

/* Maps a relayClose reason from the server or the peer to an RDV_ERR_*. */
static int close_reason_code(const char *reason)
{
    if (!reason)
        return 0;
    if (strcmp(reason, "peer_disconnected") == 0)
        return RDV_ERR_PEER_OFFLINE;
    if (strcmp(reason, "replaced") == 0)
        return RDV_ERR_REPLACED;
    if (strcmp(reason, "idle") == 0 || strcmp(reason, RDV__REASON_TIMEOUT) == 0)
        return RDV_ERR_TIMEOUT;
    if (strcmp(reason, "quota") == 0 || strcmp(reason, "limit") == 0)
        return RDV_ERR_LIMIT;
    if (strcmp(reason, RDV__REASON_E2E) == 0)
        return RDV_ERR_PROTOCOL;
    if (strcmp(reason, "shutting_down") == 0)
        return RDV_ERR_CONNECT; /* the server is stopping */
    return 0; /* closed_by_peer, rejected, or the peer's own text */
}

void rdv__relay_on_close(rdv_client *c, const json_t *body)
{
    const char *sid = rdv_msg_get_str(body, "sessionID");
    const char *reason = rdv_msg_get_str(body, "reason");
    if (!sid || rdv__session_on_leg_close(c, sid, reason))
        return;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (r)
        rdv__session_end_locked(c, r);
    pthread_mutex_unlock(&c->lock);
    if (r)
        rdv__session_report_closed(c, r, close_reason_code(reason),
                                 reason ? reason : RDV__REASON_CLOSED);
}

int64_t rdv__relay_on_packet(rdv_client *c, const uint8_t sid_bytes[16], const uint8_t *pkt,
                             size_t len, int direct_fd, const struct sockaddr_storage *direct_from)
{
    if (!c->scratch && !(c->scratch = malloc(RDV__SCRATCH_BYTES)))
        return RDV_ERR_NOMEM;
    char sid[RDV_SESSION_ID_LEN + 1], peer[RDV_NODE_ID_LEN + 1];
    int fd = -1;
    struct sockaddr_storage dest;
    socklen_t dest_len = 0;
    int64_t n = RDV_ERR_NO_SESSION;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_bytes_locked(c, sid_bytes);
    if (r && r->st == RDV__SS_OPEN && len <= RDV__SCRATCH_BYTES) {
        n = rdv__e2e_open(&r->e2e, pkt, len, c->scratch);
        memcpy(sid, r->sid, sizeof(sid));
        memcpy(peer, r->peer, sizeof(peer));
        fd = r->proxy_fd;
        dest = r->dest;
        dest_len = r->dest_len;
    }
    if (n >= 0 && direct_from) {
        rdv__direct_on_rx_locked(r, direct_fd, direct_from, rdv__mono_ms());
    } else if (n >= 0) {
        c->rstats.rx_dgrams++;
        c->rstats.rx_bytes += (uint64_t)n;
    } else {
        c->rstats.dropped++;
    }
    pthread_mutex_unlock(&c->lock);
    if (n == RDV_ERR_NO_SESSION)
        return n; /* late data of a session we ended: datagram semantics */
    if (n < 0 && direct_from)
        return n; /* unauthenticated UDP: counted, never reported (no spam) */
    if (n < 0) {
        const char *what = n == RDV_ERR_DUPLICATE
                               ? "relay datagram replayed or too old (dropped)"
                               : n == RDV_ERR_DECRYPT
                                     ? "relay datagram failed authentication (dropped)"
                                     : "malformed relay datagram (dropped)";
        rdv__report(c, (int)n, NULL, what, sid, "relayData", NULL, peer);
        return n;
    }
    if (fd >= 0)
        rdv__proxy_deliver(c, fd, &dest, dest_len, c->scratch, (size_t)n);
    else if (c->cfg.cb_session_data)
        c->cfg.cb_session_data(c, sid, c->scratch, (size_t)n, c->cfg.user_ptr);
    return n;
}

void rdv__relay_on_binary(rdv_client *c, const uint8_t *buf, size_t len)
{
    if (len < RDV_RELAY_FRAME_HEADER || buf[0] != RDV_RELAY_FRAME_KIND_DATA) {
        rdv__report(c, RDV_ERR_PROTOCOL, NULL, "binary frame that is not relay data (ignored)",
                    NULL, "relayData", NULL, NULL);
        return;
    }
    (void)rdv__relay_on_packet(c, buf + 1, buf + RDV_RELAY_FRAME_HEADER,
                               len - RDV_RELAY_FRAME_HEADER, -1, NULL);
}

void rdv__relay_on_data_text(rdv_client *c, const json_t *body)
{
    const char *sid = rdv_msg_get_str(body, "sessionID");
    const char *data = rdv_msg_get_str(body, "data");
    uint8_t sb[16];
    if (!sid || !data || rdv_uuid_to_bytes(sid, sb) != 0)
        return;
    size_t dl = strlen(data);
    uint8_t *bin = malloc(dl / 4 * 3 + 3);
    size_t bl = 0;
    if (!bin)
        return;
    if (sodium_base642bin(bin, dl / 4 * 3 + 3, data, dl, NULL, &bl, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0)
        (void)rdv__relay_on_packet(c, sb, bin, bl, -1, NULL);
    else
        rdv__report(c, RDV_ERR_PROTOCOL, NULL, "relayData with bad base64 (dropped)", sid,
                    "relayData", "data", NULL);
    free(bin);
}

bool rdv__relay_on_server_error(rdv_client *c, rdv_ec ec, const char *ref, const char *type,
                                const char *message)
{
    if (!ref || !rdv_uuid_valid(ref, strlen(ref)))
        return false;
    bool about_open = type && (strcmp(type, "relayOpen") == 0 ||
                               strcmp(type, "relayReady") == 0);
    int err;
    switch (ec) {
    case RDV_EC_PEER_OFFLINE: err = RDV_ERR_PEER_OFFLINE; break;
    case RDV_EC_LIMIT_EXCEEDED: err = RDV_ERR_LIMIT; break;
    case RDV_EC_UNKNOWN_SESSION:
    case RDV_EC_NOT_IN_SESSION: err = RDV_ERR_NO_SESSION; break;
    case RDV_EC_RATE_LIMITED:
    case RDV_EC_NO_CONSENT: return false; /* a dropped datagram, the session lives */
    default:
        if (!about_open)
            return false;
        err = RDV_ERR_SERVER;
        break;
    }
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, ref);
    /* A quota on an open session is a dropped datagram, not its end. */
    if (r && ec == RDV_EC_LIMIT_EXCEEDED && r->st == RDV__SS_OPEN && !about_open)
        r = NULL;
    /* A connect session ends on errors about its set-up only while no
     * direct path carries it (its relay leg is then simply gone). */
    bool absorbed = false;
    if (r && r->direct &&
        (r->direct->direct_up || !(about_open || ec == RDV_EC_PEER_OFFLINE))) {
        absorbed = r->direct->direct_up;
        if (about_open) {
            r->direct->relay_leg = false;
            r->direct->relay_up = false;
        }
        if (!absorbed)
            rdv__relay_set_error_locked(c, err, message && *message ? message : rdv_ec_name(ec));
        r = NULL;
    }
    if (r)
        rdv__session_end_locked(c, r);
    pthread_mutex_unlock(&c->lock);
    if (!r)
        return absorbed;
    /* Our relayReady was refused (e.g. our session limit): the session is
     * still OPENING on the server, so tell the opener. */
    if (type && strcmp(type, "relayReady") == 0)
        (void)rdv__relay_send_close(c, r->sid, err == RDV_ERR_LIMIT ? "limit" : "error");
    rdv__session_report_closed(c, r, err, message && *message ? message : rdv_ec_name(ec));
    return false;
}

void rdv__relay_on_conn_lost(rdv_client *c)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        rdv__session *r = c->sessions;
        /* Sessions on a direct path outlive the server connection (their
         * relay leg is gone with it). */
        while (r && r->direct && r->direct->direct_up) {
            r->direct->relay_leg = false;
            r->direct->relay_up = false;
            r = r->next;
        }
        if (r)
            rdv__session_end_locked(c, r);
        pthread_mutex_unlock(&c->lock);
        if (!r)
            break;
        rdv__session_report_closed(c, r, RDV_ERR_CONNECT, "connection_lost");
    }
}

void rdv__relay_tick(rdv_client *c, int64_t now)
{
    rdv__proxy_close_dead(c);
    for (;;) {
        pthread_mutex_lock(&c->lock);
        rdv__session *r = c->sessions;
        while (r && (r->st == RDV__SS_OPEN || now < r->deadline))
            r = r->next;
        bool server_knows = r && (!r->direct || r->direct->relay_leg);
        bool refuse = r && r->direct && r->st == RDV__SS_REQUESTED;
        if (r)
            rdv__session_end_locked(c, r);
        pthread_mutex_unlock(&c->lock);
        if (!r)
            break;
        if (server_knows)
            (void)rdv__relay_send_close(c, r->sid, RDV__REASON_TIMEOUT);
        if (refuse)
            (void)rdv__direct_send_refusal(c, r->peer, r->sid);
        rdv__session_report_closed(c, r, RDV_ERR_TIMEOUT,
                      r->st == RDV__SS_OPENING ? "no relayReady from the peer in time"
                                               : "request not answered in time");
    }
}
