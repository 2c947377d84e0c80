/* direct_probe.c - connectivity checks of the direct leg (see direct.h,
 * PROTOCOL.md 14.3): candidate pairs, probes and their acks (MAC'd with the
 * session's keys, nat/path_wire.h), the probe schedule, and many-port
 * probing between a symmetric and a cone NAT: the symmetric side probes
 * the peer from RDV__SPRAY_MAX extra sockets (new NAT mappings), the cone
 * side probes random ports of the symmetric side's public IP; a probe that
 * lands on one of those mappings opens the path. Also reads the UDP
 * sockets (datagrams that are STUN go to nat/discovery.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <sodium.h>

#include "client/client.h"
#include "client/direct.h"
#include "client/nat/discovery.h"
#include "client/relay.h"
#include "client/session.h"

#define RDV__RX_BUDGET 256 /* datagrams read per socket per service call */

static void send_to(int fd, const void *buf, size_t len, const struct sockaddr_storage *to,
                    socklen_t tolen)
{
    if (fd >= 0)
        (void)sendto(fd, buf, len, MSG_NOSIGNAL, (const struct sockaddr *)to, tolen);
}

/* ---- sessions: sending probes (L held) ------------------------------------ */

static uint8_t my_flags(const rdv__session *r)
{
    return r->initiator ? RDV__PATH_WIRE_F_INITIATOR : 0;
}

void rdv__direct_send_probe_locked(rdv__session *r, int fd, const struct sockaddr_storage *to,
                                   socklen_t tolen,
                                   const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES], uint8_t extra)
{
    uint8_t pkt[RDV__PATH_WIRE_PROBE_BYTES];
    size_t n = rdv__path_wire_probe(pkt, r->sid_bytes, txid, my_flags(r) | extra, r->direct->tx_mac);
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

void rdv__direct_add_remote_locked(rdv_client *c, rdv__direct *d, const rdv__cand *k)
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
    if (k->port_mapped)
        d->peer_mapped = true;
    int fd = rdv__udp_for(c, k->addr.ss_family);
    if (fd >= 0)
        (void)add_pair_locked(d, fd, &k->addr, k->addr_len, k->priority);
}

bool rdv__direct_v6_both_locked(const rdv_client *c, const rdv__direct *d)
{
    bool mine = false, theirs = false;
    for (size_t i = 0; i < c->nlcand && !mine; i++)
        mine = c->lcand[i].type == RDV__CAND_HOST && rdv__cand_addr_global_v6(&c->lcand[i].addr);
    for (size_t i = 0; i < d->nremote && !theirs; i++)
        theirs = d->remote[i].type != RDV__CAND_RELAYED &&
                 rdv__cand_addr_global_v6(&d->remote[i].addr);
    return mine && theirs && c->udp6 >= 0;
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
static void probe_round_locked(rdv__session *r)
{
    rdv__direct *d = r->direct;
    d->probe_rounds++;
    for (size_t i = 0; i < d->npairs; i++)
        if (!d->pairs[i].valid)
            rdv__direct_send_probe_locked(r, d->pairs[i].fd, &d->pairs[i].addr, d->pairs[i].len,
                              d->pairs[i].txid, 0);
}

void rdv__direct_close_spray_locked(rdv_client *c, rdv__direct *d, bool all)
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

void rdv__direct_spray_used_locked(rdv__direct *d, int fd)
{
    for (size_t i = 0; i < d->nspray; i++)
        if (d->spray_fd[i] == fd)
            d->spray_used[i] = true;
}
void rdv__direct_start_probing_locked(rdv_client *c, rdv__session *r, int64_t now)
{
    rdv__direct *d = r->direct;
    rdv_nat_type me = rdv__nat_effective_locked(c);
    rdv_nat_type peer = d->peer_nat;
    d->checks_deferred = false;
    if (d->checks_ms < 0)
        d->checks_ms = rdv__direct_ms_since(d, now);
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
    if (rdv__nat_is_symmetric(me) && (rdv__nat_is_cone(peer))) {
        /* Bounded per client too: many sessions at once share the fds. */
        size_t open_now = 0;
        for (rdv__session *o = c->sessions; o; o = o->next)
            if (o->direct)
                open_now += o->direct->nspray;
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
    } else if (rdv__nat_is_cone(me) && rdv__nat_is_symmetric(peer)) {
        d->spray_left = (uint32_t)spray * RDV__SPRAY_PROBES_PER_PORT;
    }
}

/* ---- received datagrams (S) ------------------------------------------------ */

static void on_probe(rdv_client *c, int fd, const uint8_t *buf, size_t len,
                     const struct sockaddr_storage *from, socklen_t flen, rdv__session_events *q)
{
    uint8_t sid[16];
    if (rdv__path_wire_sid(buf, len, sid) != 0)
        return;
    rdv__session *r = rdv__session_find_bytes_locked(c, sid);
    if (!r || !r->direct || !r->direct->keys || r->direct->checks_deferred)
        return; /* unknown, or relay first: silent until the relay is up */
    rdv__direct *d = r->direct;
    rdv__path_wire_probe_t p;
    if (rdv__path_wire_parse_probe(buf, len, d->rx_mac, &p) != 0)
        return; /* forged, reflected or damaged: silently dropped */
    if ((p.flags & RDV__PATH_WIRE_F_INITIATOR) == (r->initiator ? RDV__PATH_WIRE_F_INITIATOR : 0))
        return; /* our own role: not from the peer */
    rdv__direct_spray_used_locked(d, fd);
    if (p.flags & RDV__PATH_WIRE_F_CLOSE) {
        if (q->nended < RDV__EV_MAX) {
            rdv__session_end_locked(c, r);
            q->ended[q->nended++] = r;
        }
        return;
    }
    uint8_t ack[RDV__PATH_WIRE_ACK_BYTES];
    size_t n = rdv__path_wire_ack(ack, r->sid_bytes, p.txid, my_flags(r),
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
        rdv__direct_send_probe_locked(r, fd, from, flen, pr->txid, 0);
    else if (!pr) {
        /* No room: probe with the spray txid (many-port probing). */
        if (d->spray_started)
            rdv__direct_send_probe_locked(r, fd, from, flen, d->spray_txid, 0);
    }
}

static void on_ack(rdv_client *c, int fd, const uint8_t *buf, size_t len,
                   const struct sockaddr_storage *from, socklen_t flen, int64_t now,
                   rdv__session_events *q)
{
    uint8_t sid[16];
    if (rdv__path_wire_sid(buf, len, sid) != 0)
        return;
    rdv__session *r = rdv__session_find_bytes_locked(c, sid);
    if (!r || !r->direct || !r->direct->keys || r->direct->checks_deferred)
        return; /* unknown, or relay first: silent until the relay is up */
    rdv__direct *d = r->direct;
    rdv__path_wire_probe_t a;
    if (rdv__path_wire_parse_ack(buf, len, d->rx_mac, &a) != 0)
        return;
    if ((a.flags & RDV__PATH_WIRE_F_INITIATOR) == (r->initiator ? RDV__PATH_WIRE_F_INITIATOR : 0))
        return;
    rdv__direct_spray_used_locked(d, fd);
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
            rdv__direct_confirmed_locked(c, r, fd, from, flen, false, now, q);
            return;
        }
    }
    if (spray)
        rdv__direct_confirmed_locked(c, r, fd, from, flen, true, now, q);
}

static void on_data(rdv_client *c, int fd, const uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from)
{
    uint8_t sid[16];
    if (rdv__path_wire_sid(buf, len, sid) != 0)
        return;
    (void)rdv__relay_on_packet(c, sid, buf + RDV__PATH_WIRE_DATA_HDR_BYTES,
                               len - RDV__PATH_WIRE_DATA_HDR_BYTES, fd, from);
}

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
        int kind = rdv__path_wire_kind(buf, (size_t)n);
        if (c->cfg.direct_disable)
            continue; /* relay only: never answer probes */
        if (kind == RDV__PATH_WIRE_DATA) {
            on_data(c, fd, buf, (size_t)n, &from);
            continue;
        }
        if (kind != RDV__PATH_WIRE_PROBE && kind != RDV__PATH_WIRE_ACK)
            continue;
        rdv__session_events q;
        memset(&q, 0, sizeof(q));
        pthread_mutex_lock(&c->lock);
        if (kind == RDV__PATH_WIRE_PROBE)
            on_probe(c, fd, buf, (size_t)n, &from, flen, &q);
        else
            on_ack(c, fd, buf, (size_t)n, &from, flen, now, &q);
        pthread_mutex_unlock(&c->lock);
        rdv__session_run_events(c, &q);
    }
}

/* ---- timers (S) ------------------------------------------------------------ */

static void spray_tick_locked(rdv_client *c, rdv__session *r, int64_t now)
{
    rdv__direct *d = r->direct;
    if (d->direct_up || now < d->next_spray)
        return;
    if (d->spraying) {
        /* Symmetric side: every spray socket probes the peer's srflx. */
        if (now >= d->spray_until) {
            rdv__direct_close_spray_locked(c, d, false);
            return;
        }
        for (size_t i = 0; i < d->nspray; i++)
            rdv__direct_send_probe_locked(r, d->spray_fd[i], &d->spray_target, d->spray_target_len,
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
            rdv__direct_send_probe_locked(r, fd, &to, d->spray_target_len, d->spray_txid, 0);
        }
        d->next_spray = now + 50;
    }
}


/* Checks and many-port probes of a leg without a path, when due. */
void rdv__direct_probe_tick_locked(rdv_client *c, rdv__session *r, int64_t now)
{
    rdv__direct *d = r->direct;
    if (d->probe_start && now >= d->next_probe) {
        probe_round_locked(r);
        d->next_probe = now + probe_interval(now - d->probe_start);
    }
    spray_tick_locked(c, r, now);
}

/* ---- reading the sockets (S) --------------------------------------------------- */

void rdv__direct_read_main(rdv_client *c, int64_t now)
{
    if (c->udp4 >= 0)
        read_socket(c, c->udp4, now);
    if (c->udp6 >= 0)
        read_socket(c, c->udp6, now);
}

void rdv__direct_read_spray(rdv_client *c, int64_t now)
{
    /* Copied (reading may end sessions; their fds are
     * closed only later on this thread, so the copies stay valid). */
    size_t nf = 0;
    pthread_mutex_lock(&c->lock);
    for (rdv__session *r = c->sessions; r; r = r->next)
        if (r->direct)
            nf += r->direct->nspray;
    int *fds = nf ? malloc(nf * sizeof(*fds)) : NULL;
    size_t k = 0;
    for (rdv__session *r = fds ? c->sessions : NULL; r; r = r->next)
        if (r->direct)
            for (size_t i = 0; i < r->direct->nspray && k < nf; i++)
                fds[k++] = r->direct->spray_fd[i];
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < k; i++)
        read_socket(c, fds[i], now);
    free(fds);
}
