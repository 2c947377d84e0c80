/* portmap.c - the port mapper (see portmap.h): a worker thread that finds
 * the gateway (NAT-PMP first: one round trip; then UPnP-IGD: SSDP), holds
 * one UDP mapping of the client's IPv4 port, renews it at half its
 * lifetime and deletes it on close; and the service-thread side that
 * turns what the worker published into a candidate.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"
#include "client/nat/portmap.h"
#include "client/nat/portmap_proto.h"
#include "client/session.h"

typedef struct rdv__portmap {
    rdv_client *c;                   /* to wake its service thread */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;               /* CLOCK_MONOTONIC */
    uint16_t iport;                  /* immutable: our IPv4 UDP port */
    uint32_t lease_s;                /* immutable: lease asked */
    /* (mu) */
    bool stop, redo;
    uint64_t gen;                    /* bumped by every published change */
    int proto;                       /* RDV__PM_* of the mapping, NONE */
    rdv__pm_lease lease;
    uint32_t renewals;
    char status[RDV_NAT_METHOD_LEN + 1];
    /* worker only */
    rdv__pm_upnp *igd;
} rdv__portmap;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on the condition until `until` (monotonic ms), a stop or a redo.
 * (mu held) */
static void wait_until(rdv__portmap *pm, int64_t until)
{
    while (!pm->stop && !pm->redo) {
        int64_t left = until - now_ms();
        if (left <= 0)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&pm->cv, &pm->mu, &ts) == ETIMEDOUT)
            return;
    }
}

/* Publishes a change and wakes the service thread. (mu held) */
static void publish(rdv__portmap *pm, int proto, const rdv__pm_lease *l, const char *status)
{
    pm->proto = proto;
    if (l)
        pm->lease = *l;
    else
        memset(&pm->lease, 0, sizeof(pm->lease));
    snprintf(pm->status, sizeof(pm->status), "%s", status);
    pm->gen++;
    rdv__wake(pm->c);
}

/* When to renew a lease of lifetime_s (0: permanent), from now. */
static int64_t renew_delay_ms(uint32_t lifetime_s)
{
    int64_t ms = lifetime_s ? (int64_t)lifetime_s * 500 : (int64_t)RDV__PM_PERMANENT_CHECK_S * 1000;
    return ms < RDV__PM_MIN_RENEW_MS ? RDV__PM_MIN_RENEW_MS : ms;
}

/* Asks for a new mapping: NAT-PMP, then UPnP. Returns the protocol that
 * granted one (*l filled), or NONE with the reasons in why. (worker, no
 * lock) */
static int acquire(rdv__portmap *pm, rdv__pm_lease *l, char *why, size_t cap)
{
    char w1[RDV__PM_WHY_MAX] = "", w2[RDV__PM_WHY_MAX] = "";
    if (rdv__pm_natpmp_map(pm->iport, pm->iport, pm->lease_s, RDV__PM_NATPMP_BUDGET_MS, l, w1,
                           sizeof(w1)) == 0)
        return RDV__PM_NATPMP;
    if (!pm->igd)
        pm->igd = rdv__pm_upnp_find(RDV__PM_UPNP_DELAY_MS, w2, sizeof(w2));
    if (pm->igd && rdv__pm_upnp_map(pm->igd, pm->iport, 0, pm->lease_s, l, w2, sizeof(w2)) == 0)
        return RDV__PM_UPNP;
    snprintf(why, cap, "no mapping: %.70s; %.70s", w1, w2);
    return RDV__PM_NONE;
}

/* Renews mapping `proto` (same public port). 0 or -1 with why. (worker) */
static int renew(rdv__portmap *pm, int proto, uint16_t eport, rdv__pm_lease *l, char *why,
                 size_t cap)
{
    if (proto == RDV__PM_NATPMP)
        return rdv__pm_natpmp_map(pm->iport, eport, pm->lease_s, RDV__PM_NATPMP_BUDGET_MS, l,
                                  why, cap);
    return rdv__pm_upnp_map(pm->igd, pm->iport, eport, pm->lease_s, l, why, cap);
}

static void unmap(rdv__portmap *pm, int proto, uint16_t eport)
{
    if (proto == RDV__PM_NATPMP)
        (void)rdv__pm_natpmp_unmap(pm->iport, RDV__PM_DELETE_BUDGET_MS);
    else if (proto == RDV__PM_UPNP)
        (void)rdv__pm_upnp_unmap(pm->igd, eport);
}

static const char *proto_name(int proto)
{
    return proto == RDV__PM_NATPMP ? "natpmp" : proto == RDV__PM_UPNP ? "upnp" : "";
}

static void describe(char *out, size_t cap, int proto, const rdv__pm_lease *l, const char *verb)
{
    char addr[RDV__ADDR_TEXT_MAX];
    (void)rdv__addr_to_text((const struct sockaddr *)&l->pub, addr, sizeof(addr));
    snprintf(out, cap, "%s %s by %s, lifetime %u s", verb, addr,
             proto == RDV__PM_NATPMP ? "NAT-PMP" : "UPnP-IGD", (unsigned)l->lifetime_s);
}

static void *worker(void *arg)
{
    rdv__portmap *pm = arg;
    int64_t next_search = 0, renew_at = 0;
    char why[RDV_NAT_METHOD_LEN + 1];
    pthread_mutex_lock(&pm->mu);
    while (!pm->stop) {
        if (pm->redo) {
            /* another network: let the old mapping go, search again */
            pm->redo = false;
            int proto = pm->proto;
            uint16_t eport = ntohs(pm->lease.pub.sin_port);
            if (proto != RDV__PM_NONE) {
                pthread_mutex_unlock(&pm->mu);
                unmap(pm, proto, eport);
                pthread_mutex_lock(&pm->mu);
                publish(pm, RDV__PM_NONE, NULL, "the network changed: searching again");
            }
            rdv__pm_upnp_free(pm->igd);
            pm->igd = NULL;
            next_search = 0;
            continue;
        }
        int64_t now = now_ms();
        if (pm->proto == RDV__PM_NONE) {
            if (now < next_search) {
                wait_until(pm, next_search);
                continue;
            }
            pthread_mutex_unlock(&pm->mu);
            rdv__pm_lease l;
            int proto = acquire(pm, &l, why, sizeof(why));
            pthread_mutex_lock(&pm->mu);
            if (proto != RDV__PM_NONE) {
                describe(why, sizeof(why), proto, &l, "mapped to");
                publish(pm, proto, &l, why);
                renew_at = now_ms() + renew_delay_ms(l.lifetime_s);
            } else {
                publish(pm, RDV__PM_NONE, NULL, why);
                next_search = now_ms() + RDV__PM_RETRY_MS;
            }
            continue;
        }
        if (now < renew_at) {
            wait_until(pm, renew_at);
            continue;
        }
        int proto = pm->proto;
        uint16_t eport = ntohs(pm->lease.pub.sin_port);
        pthread_mutex_unlock(&pm->mu);
        rdv__pm_lease l;
        int r = renew(pm, proto, eport, &l, why, sizeof(why));
        pthread_mutex_lock(&pm->mu);
        if (r == 0) {
            pm->renewals++;
            describe(why, sizeof(why), proto, &l, "mapped to");
            publish(pm, proto, &l, why);
            renew_at = now_ms() + renew_delay_ms(l.lifetime_s);
        } else {
            char lost[RDV_NAT_METHOD_LEN + 1];
            snprintf(lost, sizeof(lost), "renewal failed: %.100s", why);
            publish(pm, RDV__PM_NONE, NULL, lost);
            next_search = now_ms() + RDV__PM_RENEW_RETRY_MS;
        }
    }
    int proto = pm->proto;
    uint16_t eport = ntohs(pm->lease.pub.sin_port);
    pm->proto = RDV__PM_NONE;
    pthread_mutex_unlock(&pm->mu);
    unmap(pm, proto, eport); /* close: the gateway forgets us */
    rdv__pm_upnp_free(pm->igd);
    pm->igd = NULL;
    return NULL;
}

/* ---- the service thread's side ---------------------------------------------- */

static void set_off_status(rdv_client *c, const char *text)
{
    pthread_mutex_lock(&c->lock);
    snprintf(c->portmap_status, sizeof(c->portmap_status), "%s", text);
    pthread_mutex_unlock(&c->lock);
}

static void start(rdv_client *c)
{
    c->portmap_tried = true;
    if (c->cfg.portmap_disable) {
        set_off_status(c, "off (portmap_disable)");
        return;
    }
    /* A server on this host: the peers are here too, and a gateway
     * mapping (or any packet to the gateway) is of no use. */
    const char *h = c->url.host;
    if (strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0) {
        set_off_status(c, "off (the server is on this host)");
        return;
    }
    if (c->udp4 < 0 || c->udp4_port == 0) {
        set_off_status(c, "off (no IPv4 UDP socket)");
        return;
    }
    rdv__portmap *pm = calloc(1, sizeof(*pm));
    if (!pm) {
        set_off_status(c, "off (out of memory)");
        return;
    }
    pm->c = c;
    pm->iport = c->udp4_port;
    pm->lease_s = c->cfg.portmap_lease_s > 0 ? (uint32_t)c->cfg.portmap_lease_s : RDV__PM_LEASE_S;
    snprintf(pm->status, sizeof(pm->status), "searching for a gateway (NAT-PMP, UPnP-IGD)");
    pthread_condattr_t ca;
    bool ok = pthread_mutex_init(&pm->mu, NULL) == 0;
    if (ok && pthread_condattr_init(&ca) == 0) {
        ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&pm->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    } else {
        ok = false;
    }
    if (!ok || pthread_create(&pm->thread, NULL, worker, pm) != 0) {
        free(pm);
        set_off_status(c, "off (no worker thread)");
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->portmap = pm;
    pthread_mutex_unlock(&c->lock);
}

void rdv__portmap_service(rdv_client *c, int64_t now)
{
    if (!c->portmap_tried)
        start(c);
    rdv__portmap *pm = c->portmap;
    if (!pm)
        return;
    pthread_mutex_lock(&pm->mu);
    uint64_t gen = pm->gen;
    pthread_mutex_unlock(&pm->mu);
    if (gen == c->portmap_seen)
        return;
    c->portmap_seen = gen;
    rdv__discovery_regather(c);
    pthread_mutex_lock(&c->lock);
    if (rdv__portmap_active_locked(c))
        for (rdv__session *r = c->sessions; r; r = r->next)
            rdv__session_mapping_gained_locked(c, r, now);
    pthread_mutex_unlock(&c->lock);
}

void rdv__portmap_stop(rdv_client *c)
{
    /* Unpublished first: a status reader (under c->lock) never meets a
     * mapper being freed. */
    pthread_mutex_lock(&c->lock);
    rdv__portmap *pm = c->portmap;
    c->portmap = NULL;
    pthread_mutex_unlock(&c->lock);
    if (!pm)
        return;
    pthread_mutex_lock(&pm->mu);
    pm->stop = true;
    pthread_cond_broadcast(&pm->cv);
    pthread_mutex_unlock(&pm->mu);
    pthread_join(pm->thread, NULL);
    pthread_cond_destroy(&pm->cv);
    pthread_mutex_destroy(&pm->mu);
    free(pm);
}

void rdv__portmap_network_changed(rdv_client *c)
{
    rdv__portmap *pm = c->portmap;
    if (!pm)
        return;
    pthread_mutex_lock(&pm->mu);
    pm->redo = true;
    pthread_cond_broadcast(&pm->cv);
    pthread_mutex_unlock(&pm->mu);
}

bool rdv__portmap_active_locked(rdv_client *c)
{
    rdv__portmap *pm = c->portmap;
    if (!pm)
        return false;
    pthread_mutex_lock(&pm->mu);
    bool on = pm->proto != RDV__PM_NONE;
    pthread_mutex_unlock(&pm->mu);
    return on;
}

bool rdv__portmap_candidate_locked(rdv_client *c, const struct sockaddr *base,
                                   socklen_t base_len, rdv__cand *out)
{
    rdv__portmap *pm = c->portmap;
    if (!pm)
        return false;
    pthread_mutex_lock(&pm->mu);
    struct sockaddr_in pub = pm->lease.pub;
    bool on = pm->proto != RDV__PM_NONE;
    pthread_mutex_unlock(&pm->mu);
    if (!on || rdv__cand_make(RDV__CAND_SRFLX, (const struct sockaddr *)&pub, sizeof(pub), base,
                              base_len, RDV__CAND_LOCALPREF_MAX, out) != 0)
        return false;
    out->port_mapped = true;
    return true;
}

void rdv__portmap_status_locked(rdv_client *c, rdv_network_status *st)
{
    rdv__portmap *pm = c->portmap;
    if (!pm) {
        snprintf(st->portmap_status, sizeof(st->portmap_status), "%s", c->portmap_status);
        return;
    }
    pthread_mutex_lock(&pm->mu);
    snprintf(st->portmap_status, sizeof(st->portmap_status), "%s", pm->status);
    snprintf(st->portmap_protocol, sizeof(st->portmap_protocol), "%s", proto_name(pm->proto));
    if (pm->proto != RDV__PM_NONE)
        (void)rdv__addr_to_text((const struct sockaddr *)&pm->lease.pub, st->portmap_public,
                                sizeof(st->portmap_public));
    st->portmap_lifetime_s = pm->lease.lifetime_s;
    st->portmap_renewals = pm->renewals;
    pthread_mutex_unlock(&pm->mu);
}
