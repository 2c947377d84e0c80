/* direct_path.c - the direct path of a session once a check confirmed it
 * (see direct.h): the switch to it, keepalive and consent, losing it (back
 * to the relay leg), sending data on it, the end of the leg, and the
 * direct fields of the network status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/client.h"
#include "client/direct.h"
#include "client/nat/discovery.h"
#include "client/relay.h"
#include "client/session.h"

void rdv__direct_set_error(rdv__direct *d, int err, const char *text)
{
    d->last_err = err;
    snprintf(d->last_err_text, sizeof(d->last_err_text), "%s", text);
}

/* ---- the path (L held) -------------------------------------------------------- */

/* A check succeeded: (fd, addr) reaches the peer. (L held) */
void rdv__direct_confirmed_locked(rdv_client *c, rdv__session *r, int fd,
                                    const struct sockaddr_storage *a, socklen_t len,
                                    bool spray, int64_t now, rdv__session_events *q)
{
    rdv__direct *d = r->direct;
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
    rdv__direct_close_spray_locked(c, d, false);
    rdv__session_set_path_locked(c, r, RDV_PATH_DIRECT, now, q);
    /* The relay leg is closed a little later: the peer may not have
     * confirmed its own direct path yet and still sends on the relay. */
    if (r->initiator && d->relay_leg)
        d->leg_close_at = now + RDV__LEG_LINGER_MS;
}

/* The direct path stopped answering (`why`): back to the relay. (L held) */
void rdv__direct_lost_locked(rdv_client *c, rdv__session *r, int64_t now, const char *why,
                               rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    d->direct_up = false;
    d->leg_close_at = 0;
    d->dfd = -1; /* kept spray sockets stay for the new checks */
    for (size_t i = 0; i < d->npairs; i++) {
        d->pairs[i].valid = false;
        randombytes_buf(d->pairs[i].txid, sizeof(d->pairs[i].txid)); /* old acks void */
    }
    rdv__direct_set_error(d, RDV_ERR_TIMEOUT, why);
    d->probe_start = now;
    d->next_probe = now;
    rdv__session_set_path_locked(c, r, d->relay_up ? RDV_PATH_RELAYED : RDV_PATH_UNKNOWN, now, q);
    rdv__session_want_relay_locked(r, q);
}

/* Keepalive and consent (RFC 7675's idea, on our probes): a probe every
 * direct_keepalive_ms (jittered), sooner while we send and hear nothing;
 * the path is lost after two keepalive periods of silence, or
 * RDV__CONSENT_DEAD_MS of silence while sending. */
void rdv__direct_keepalive_tick_locked(rdv_client *c, rdv__session *r, int64_t now,
                                       rdv__session_events *q)
{
    rdv__direct *d = r->direct;
    if (d->leg_close_at && now >= d->leg_close_at) {
        d->leg_close_at = 0;
        rdv__session_close_relay_leg_locked(r, q);
    }
    int64_t ka = c->cfg.direct_keepalive_ms;
    bool active = now - d->last_tx_data < 2000;
    if (now - d->last_rx > 2 * (ka * 5 / 3) ||
        (active && now - d->last_rx > RDV__CONSENT_DEAD_MS)) {
        rdv__direct_lost_locked(c, r, now, "the direct path stopped answering", q);
        return;
    }
    bool consent = active && now - d->last_rx > RDV__CONSENT_QUIET_MS && now >= d->next_consent;
    if (now >= d->next_keepalive || consent) {
        /* A fresh txid each time: a replayed ack keeps nothing alive. */
        randombytes_buf(d->ka_txid, sizeof(d->ka_txid));
        rdv__direct_send_probe_locked(r, d->dfd, &d->daddr, d->dlen, d->ka_txid, 0);
        d->next_keepalive = now + ka + (int64_t)randombytes_uniform((uint32_t)(ka * 2 / 3) + 1);
        d->next_consent = now + 1000;
    }
}

/* ---- data (L held) ----------------------------------------------------------- */

int rdv__direct_send_locked(rdv_client *c, rdv__session *r, const void *buf, size_t len)
{
    rdv__direct *d = r->direct;
    if (!d->direct_up)
        return 1; /* not on the direct path: the caller uses the relay */
    /* One buffer for every send: sends hold the lock. */
    if (!c->dtx_buf && !(c->dtx_buf = malloc(RDV__SCRATCH_BYTES + RDV_DIRECT_OVERHEAD)))
        return RDV_ERR_NOMEM;
    if (len > RDV__SCRATCH_BYTES)
        return RDV_ERR_TOO_LARGE;
    uint8_t *pkt = c->dtx_buf;
    int64_t n = rdv__path_wire_data_seal(&r->e2e, r->sid_bytes, buf, len, pkt);
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
void rdv__direct_detach_locked(rdv_client *c, rdv__session *r)
{
    rdv__direct *d = r->direct;
    if (d->last_err) {
        c->last_derr = d->last_err;
        memcpy(c->last_derr_text, d->last_err_text, sizeof(c->last_derr_text));
    }
    if (d->direct_up && d->keys) {
        uint8_t txid[RDV__PATH_WIRE_TXID_BYTES];
        randombytes_buf(txid, sizeof(txid));
        for (int i = 0; i < RDV__CLOSE_REPEAT; i++)
            rdv__direct_send_probe_locked(r, d->dfd, &d->daddr, d->dlen, txid, RDV__PATH_WIRE_F_CLOSE);
    }
    rdv__direct_close_spray_locked(c, d, true);
    d->direct_up = false;
    rdv__session_drop_held(c, r);
}

void rdv__direct_on_rx_locked(rdv__session *r, int fd, const struct sockaddr_storage *from,
                              int64_t now)
{
    if (!r || !r->direct)
        return;
    r->direct->drx++;
    rdv__direct_spray_used_locked(r->direct, fd);
    if (r->direct->direct_up && r->direct->dfd == fd && rdv__addr_equal(&r->direct->daddr, from))
        r->direct->last_rx = now;
}


/* The NAT part of rdv_client_get_network_status(). (L held) */
void rdv__direct_status_locked(rdv_client *c, rdv_network_status *st)
{
    rdv__discovery_status_locked(c, st);
    st->direct_sessions = c->direct_sessions;
    st->last_connect_ms = c->last_connect_ms;
    st->last_direct_ms = c->last_direct_ms;
    /* The last direct error: of the most recent session that has one. */
    for (rdv__session *r = c->sessions; r; r = r->next)
        if (r->direct && r->direct->last_err) {
            st->last_direct_error = r->direct->last_err;
            memcpy(st->last_direct_error_text, r->direct->last_err_text,
                   sizeof(st->last_direct_error_text));
            break;
        }
    if (!st->last_direct_error && c->last_derr) {
        st->last_direct_error = c->last_derr;
        memcpy(st->last_direct_error_text, c->last_derr_text, sizeof(st->last_direct_error_text));
    }
}
