/* discovery.c - the client's UDP sockets and NAT discovery: opening the
 * IPv4 / IPv6 sockets that STUN and every direct path share, resolving the
 * STUN servers, driving the STUN engine (stun_client.c) from the service loop
 * (first run, a refresh every RDV__STUN_REFRESH_MS, a new discovery every
 * RDV__STUN_REDISCOVER_MS or when a refresh saw the mapping change),
 * gathering our candidates as soon as the mapping behaviour is known (the
 * filtering tests run beside the mapping test on a second socket and only
 * refine a cone type later: offers and answers need not wait for them),
 * and the NAT fields of the network status. Sessions are session.c; the direct leg direct_*.c.
 *
 * Threads: sockets are immutable after create; c->nat and c->lcand are
 * (L); the engine and its timers are (S).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>


#include "client/client.h"
#include "client/direct.h"
#include "client/nat/portmap.h"
#include "client/nat/stun_client.h"

static socklen_t fam_len(int fam)
{
    return fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

int rdv__udp_socket(int fam, uint16_t port)
{
    int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)fam;
    if (fam == AF_INET6) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    rdv__addr_set_port(&ss, port);
    if (bind(fd, (struct sockaddr *)&ss, fam_len(fam)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof(ss);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &l) != 0)
        return 0;
    return rdv__addr_port(&ss);
}

int rdv__udp_for(rdv_client *c, int fam)
{
    return fam == AF_INET ? c->udp4 : fam == AF_INET6 ? c->udp6 : -1;
}

/* ---- the client's UDP sockets ---------------------------------------------- */

int rdv__discovery_init(rdv_client *c)
{
    c->udp4 = c->udp6 = -1;
    c->stun_aux4 = c->stun_aux6 = -1;
    c->nat.nat = c->cfg.nat_type;
    c->nat.ms = -1;
    c->last_direct_ms = -1;
    c->last_connect_ms = -1;
    if (c->cfg.stun_disable) {
        c->nat.done = c->nat.decided = true;
        snprintf(c->nat.method, sizeof(c->nat.method), "NAT discovery disabled (stun_disable)");
    }
    if (c->cfg.stun_disable && c->cfg.direct_disable)
        return 0; /* relay only: no UDP at all */
    c->udp4 = rdv__udp_socket(AF_INET, c->cfg.udp_port);
    int e4 = errno;
    c->udp6 = rdv__udp_socket(AF_INET6, c->cfg.udp_port);
    int e6 = errno;
    /* A port the application chose must be ours in every family this
     * host has; without IPv6 (or without an IPv6 address) IPv4 suffices. */
    if ((c->udp4 < 0 && c->udp6 < 0) ||
        (c->cfg.udp_port && c->udp4 < 0 && e4 == EADDRINUSE) ||
        (c->cfg.udp_port && c->udp6 < 0 && e6 == EADDRINUSE)) {
        int e = c->udp4 < 0 ? e4 : e6;
        if (c->udp4 >= 0)
            close(c->udp4);
        if (c->udp6 >= 0)
            close(c->udp6);
        c->udp4 = c->udp6 = -1;
        errno = e;
        return RDV_ERR_IO;
    }
    /* Room for bursts of direct-path data (the kernel caps the request at
     * net.core.rmem_max / wmem_max); best effort. */
    int bufsz = RDV__UDP_BUFFER_BYTES;
    for (int i = 0; i < 2; i++) {
        int fd = i ? c->udp6 : c->udp4;
        if (fd < 0)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    }
    c->udp4_port = bound_port(c->udp4);
    c->udp6_port = bound_port(c->udp6);
    int fds[2] = {c->udp4, c->udp6};
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fds[i], &ev) != 0)
            return RDV_ERR_IO;
    }
    return 0;
}

void rdv__discovery_free(rdv_client *c)
{
    if (c->udp4 >= 0)
        close(c->udp4);
    if (c->udp6 >= 0)
        close(c->udp6);
    c->udp4 = c->udp6 = -1;
    if (c->stun_aux4 >= 0)
        close(c->stun_aux4);
    if (c->stun_aux6 >= 0)
        close(c->stun_aux6);
    c->stun_aux4 = c->stun_aux6 = -1;
    free(c->stun_client);
    c->stun_client = NULL;
    free(c->dtx_buf);
    c->dtx_buf = NULL;
    free(c->stun_addrs);
    free(c->stun_lens);
    c->stun_addrs = NULL;
    c->stun_lens = NULL;
}

rdv_nat_type rdv__nat_effective_locked(rdv_client *c)
{
    return c->cfg.nat_type != RDV_NAT_UNKNOWN ? c->cfg.nat_type : c->nat.nat;
}

rdv_nat_type rdv__nat_effective(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    rdv_nat_type n = rdv__nat_effective_locked(c);
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* ---- NAT discovery (S) ----------------------------------------------------- */

static int stun_send(void *ctx, const uint8_t *buf, size_t len, const struct sockaddr *to,
                     socklen_t tolen)
{
    rdv_client *c = ctx;
    int fd = rdv__udp_for(c, to->sa_family);
    if (fd < 0)
        return -1;
    return sendto(fd, buf, len, MSG_NOSIGNAL, to, tolen) < 0 ? -1 : 0;
}

/* The filtering tests' socket (stun_client.h, send_aux). */
static int stun_send_aux(void *ctx, const uint8_t *buf, size_t len, const struct sockaddr *to,
                         socklen_t tolen)
{
    rdv_client *c = ctx;
    int fd = to->sa_family == AF_INET ? c->stun_aux4 : to->sa_family == AF_INET6 ? c->stun_aux6 : -1;
    if (fd < 0)
        return -1;
    return sendto(fd, buf, len, MSG_NOSIGNAL, to, tolen) < 0 ? -1 : 0;
}

/* Opens the second sockets, one per family the client has, read by the
 * service loop (rdv__discovery_after_read). Returns true when every
 * family has one (else none is kept: RFC 5780's order on one socket). */
static bool open_aux(rdv_client *c)
{
    int fds[2] = {-1, -1};
    int fams[2] = {AF_INET, AF_INET6};
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
        if (rdv__udp_for(c, fams[i]) < 0)
            continue;
        fds[i] = rdv__udp_socket(fams[i], 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        ok = fds[i] >= 0 && epoll_ctl(c->epfd, EPOLL_CTL_ADD, fds[i], &ev) == 0;
    }
    if (!ok) {
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return false;
    }
    c->stun_aux4 = fds[0];
    c->stun_aux6 = fds[1];
    return true;
}

/* Splits "host:port" / "[v6]:port" / "host" into host and port. */
static int split_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *p;
    size_t hl;
    *port = RDV_DEFAULT_STUN_PORT;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e)
            return -1;
        hl = (size_t)(e - s - 1);
        s++;
        p = e[1] == ':' ? e + 2 : (e[1] ? NULL : e + 1);
        if (!p)
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            colon = NULL; /* a bare IPv6 literal */
        hl = colon ? (size_t)(colon - s) : strlen(s);
        p = colon ? colon + 1 : s + hl;
    }
    if (hl == 0 || hl >= cap)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (*end || v < 1 || v > 65535)
            return -1;
        *port = (uint16_t)v;
    }
    return 0;
}

/* Resolves the configured STUN servers (or the server URL's host) into
 * c->stun_addrs: at most two addresses (one per family) per name. */
static void resolve_stun(rdv_client *c)
{
    c->stun_resolved = true;
    size_t n = c->cfg.stun_server_count;
    char def[300];
    const char *one[1];
    const char *const *names = c->cfg.stun_servers;
    if (!names || n == 0) {
        bool v6 = strchr(c->url.host, ':') != NULL;
        snprintf(def, sizeof(def), v6 ? "[%s]:%d" : "%s:%d", c->url.host, RDV_DEFAULT_STUN_PORT);
        one[0] = def;
        names = one;
        n = 1;
    }
    size_t cap = RDV__STUN_CLIENT_MAX_SERVERS;
    c->stun_addrs = calloc(cap, sizeof(*c->stun_addrs));
    c->stun_lens = calloc(cap, sizeof(*c->stun_lens));
    if (!c->stun_addrs || !c->stun_lens)
        return;
    for (size_t i = 0; i < n && i < RDV_MAX_STUN_SERVERS; i++) {
        char host[256];
        uint16_t port;
        if (!names[i] || split_hostport(names[i], host, sizeof(host), &port) != 0)
            continue;
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_DGRAM;
        char ps[8];
        snprintf(ps, sizeof(ps), "%u", port);
        if (getaddrinfo(host, ps, &hints, &res) != 0)
            continue;
        bool got4 = false, got6 = false;
        for (struct addrinfo *ai = res; ai && c->nstun < cap; ai = ai->ai_next) {
            bool v4 = ai->ai_family == AF_INET;
            if ((v4 && (got4 || c->udp4 < 0)) || (!v4 && (got6 || c->udp6 < 0)) ||
                ai->ai_addrlen > sizeof(struct sockaddr_storage))
                continue;
            memcpy(&c->stun_addrs[c->nstun], ai->ai_addr, ai->ai_addrlen);
            c->stun_lens[c->nstun++] = ai->ai_addrlen;
            if (v4)
                got4 = true;
            else
                got6 = true;
        }
        freeaddrinfo(res);
    }
}

/* True when the server URL's host is a loopback name or address: then
 * loopback host candidates are offered (nodes on one machine). */
static bool server_is_loopback(rdv_client *c)
{
    const char *h = c->url.host;
    return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

/* Gathers our candidates: host, then the server-reflexive address. (S) */
static void gather_local(rdv_client *c)
{
    rdv__cand tmp[RDV__MAX_LOCAL_CANDS];
    int n = rdv__cand_gather_host(c->udp4_port, c->udp6_port, server_is_loopback(c), tmp,
                                  RDV__MAX_LOCAL_CANDS - 2);
    if (n < 0)
        n = 0;
    pthread_mutex_lock(&c->lock);
    if (c->nat.have_mapped && !c->nat.no_nat) {
        /* Base: the host address of the same family, if any. */
        const rdv__cand *base = NULL;
        for (int i = 0; i < n && !base; i++)
            if (tmp[i].addr.ss_family == c->nat.mapped.ss_family)
                base = &tmp[i];
        if (rdv__cand_make(RDV__CAND_SRFLX, (struct sockaddr *)&c->nat.mapped,
                           c->nat.mapped_len, base ? (struct sockaddr *)&base->addr : NULL,
                           base ? base->addr_len : 0, RDV__CAND_LOCALPREF_MAX,
                           &tmp[n]) == 0)
            n++;
    }
    /* A gateway mapping of our IPv4 port (portmap.h), based like the
     * server-reflexive one. */
    if (n < RDV__MAX_LOCAL_CANDS) {
        const rdv__cand *base = NULL;
        for (int i = 0; i < n && !base; i++)
            if (tmp[i].type == RDV__CAND_HOST && tmp[i].addr.ss_family == AF_INET)
                base = &tmp[i];
        if (rdv__portmap_candidate_locked(c, base ? (const struct sockaddr *)&base->addr : NULL,
                                          base ? base->addr_len : 0, &tmp[n]))
            n++;
    }
    /* An address we did not have: the peers of open sessions learn it. */
    bool gained = false;
    for (int i = 0; i < n && !gained; i++) {
        bool known = false;
        for (size_t j = 0; j < c->nlcand && !known; j++)
            known = rdv__addr_equal(&tmp[i].addr, &c->lcand[j].addr);
        gained = !known;
    }
    memcpy(c->lcand, tmp, (size_t)n * sizeof(tmp[0]));
    c->nlcand = (size_t)n;
    if (gained)
        rdv__direct_candidates_gained_locked(c, rdv__mono_ms());
    pthread_mutex_unlock(&c->lock);
}

void rdv__discovery_regather(rdv_client *c)
{
    gather_local(c);
}

static void stun_start(rdv_client *c, int64_t now)
{
    if (!c->stun_resolved)
        resolve_stun(c);
    if (!c->stun_client) {
        if (c->nstun == 0)
            return;
        c->stun_client = calloc(1, sizeof(*c->stun_client));
        if (!c->stun_client)
            return;
        rdv__stun_client_cfg sc;
        memset(&sc, 0, sizeof(sc));
        sc.servers = c->stun_addrs;
        sc.server_lens = c->stun_lens;
        sc.nservers = c->nstun;
        sc.rto_ms = c->cfg.stun_rto_ms;
        sc.send = stun_send;
        if (open_aux(c))
            sc.send_aux = stun_send_aux;
        sc.ctx = c;
        sc.software = c->cfg.software;
        /* Our socket's address (wildcard IP: the engine finds the one
         * used toward the server) for the no-NAT test. */
        struct sockaddr_storage local;
        socklen_t ll = sizeof(local);
        int lfd = c->udp4 >= 0 ? c->udp4 : c->udp6;
        if (getsockname(lfd, (struct sockaddr *)&local, &ll) == 0) {
            sc.local = (struct sockaddr *)&local;
            sc.local_len = ll;
        }
        if (rdv__stun_client_init(c->stun_client, &sc) != 0) {
            free(c->stun_client);
            c->stun_client = NULL;
            return;
        }
    }
    c->stun_started_at = now;
    c->stun_reported = false;
    c->stun_early_reported = false;
    rdv__stun_client_start(c->stun_client, now);
    c->stun_due = now;
}

/* Copies a finished discovery into c->nat and regathers. (S) */
static void stun_collect(rdv_client *c, int64_t now)
{
    const rdv__stun_client_result *r = rdv__stun_client_get_result(c->stun_client);
    if (!r->done || c->stun_reported)
        return;
    c->stun_reported = true;
    pthread_mutex_lock(&c->lock);
    c->nat.done = c->nat.decided = true;
    c->nat.nat = r->nat;
    c->nat.no_nat = r->no_nat;
    c->nat.have_mapped = r->mapped_known;
    if (r->mapped_known) {
        c->nat.mapped = r->mapped;
        c->nat.mapped_len = r->mapped_len;
    }
    snprintf(c->nat.method, sizeof(c->nat.method), "%s",
             r->mapped_known ? r->method : r->error_text);
    c->nat.server[0] = '\0';
    if (r->mapped_known && r->server_len)
        (void)rdv__addr_to_text((const struct sockaddr *)&r->server, c->nat.server,
                                sizeof(c->nat.server));
    c->stun_changes = r->mapping_changes;
    c->nat.ms = now - c->stun_started_at;
    pthread_mutex_unlock(&c->lock);
    gather_local(c);
}

/* The mapping behaviour is known while the filtering tests still run
 * (first discovery only: a rediscovery keeps the last full result until
 * it ends): the type so far, and our candidates gathered once. (S) */
static void stun_collect_early(rdv_client *c)
{
    const rdv__stun_client_result *r = rdv__stun_client_get_result(c->stun_client);
    if (r->done || !r->mapping_decided || !r->mapped_known)
        return;
    bool first = !c->stun_early_reported;
    pthread_mutex_lock(&c->lock);
    if (c->nat.done) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    c->nat.decided = true;
    c->nat.nat = r->nat;
    c->nat.no_nat = r->no_nat;
    c->nat.have_mapped = true;
    c->nat.mapped = r->mapped;
    c->nat.mapped_len = r->mapped_len;
    snprintf(c->nat.method, sizeof(c->nat.method), "%s", r->method);
    c->nat.server[0] = '\0';
    if (r->server_len)
        (void)rdv__addr_to_text((const struct sockaddr *)&r->server, c->nat.server,
                                sizeof(c->nat.server));
    pthread_mutex_unlock(&c->lock);
    c->stun_early_reported = true;
    if (first)
        gather_local(c);
}

/* Feeds what arrived on the second sockets to the engine. (S) */
static void read_aux(rdv_client *c, int64_t now)
{
    int fds[2] = {c->stun_aux4, c->stun_aux6};
    for (int i = 0; i < 2; i++) {
        for (int k = 0; fds[i] >= 0 && k < RDV__STUN_AUX_RX_BUDGET; k++) {
            uint8_t buf[RDV__STUN_CLIENT_REQ_MAX * 4];
            struct sockaddr_storage from;
            socklen_t flen = sizeof(from);
            ssize_t n = recvfrom(fds[i], buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
            if (n < 0)
                break;
            (void)rdv__discovery_on_packet(c, buf, (size_t)n, &from, flen, now);
        }
    }
}

/* ---- the service loop (S) ------------------------------------------------- */

/* Discovery ends without asking anyone: `why` is the method shown;
 * only host candidates are gathered. (S) */
static void finish_without_stun(rdv_client *c, int64_t now, const char *why)
{
    c->stun_started_at = now;
    pthread_mutex_lock(&c->lock);
    c->nat.done = c->nat.decided = true;
    snprintf(c->nat.method, sizeof(c->nat.method), "%s", why);
    pthread_mutex_unlock(&c->lock);
    gather_local(c);
}

void rdv__discovery_tick(rdv_client *c, int64_t now)
{
    /* rdv_client_network_changed(): discover and gather again now. */
    pthread_mutex_lock(&c->lock);
    bool changed = c->net_changed;
    c->net_changed = false;
    if (changed)
        rdv__direct_network_changed_locked(c, now);
    pthread_mutex_unlock(&c->lock);
    if (changed)
        rdv__portmap_network_changed(c); /* another gateway, perhaps */
    if (changed && c->stun_started_at) {
        if (c->stun_client)
            c->stun_next_rediscover = now; /* below */
        else
            gather_local(c); /* no STUN: host candidates only */
    }
    /* Discovery: first run, refresh, periodic rediscovery. */
    if (!c->cfg.stun_disable) {
        if (!c->stun_started_at || now >= c->stun_next_rediscover) {
            stun_start(c, now);
            c->stun_next_rediscover = now + RDV__STUN_REDISCOVER_MS;
            c->stun_next_refresh = now + RDV__STUN_REFRESH_MS;
            if (!c->stun_client) { /* nothing to ask: discovery is over, type unknown */
                c->stun_next_rediscover = INT64_MAX;
                finish_without_stun(c, now, "no STUN server could be resolved");
            }
        } else if (c->stun_client && now >= c->stun_next_refresh) {
            rdv__stun_client_refresh(c->stun_client, now);
            c->stun_next_refresh = now + RDV__STUN_REFRESH_MS;
        }
    } else if (!c->stun_started_at) {
        finish_without_stun(c, now, "NAT discovery disabled (stun_disable)");
    }
}

bool rdv__discovery_on_packet(rdv_client *c, const uint8_t *buf, size_t len,
                              const struct sockaddr_storage *from, socklen_t flen, int64_t now)
{
    if (!c->stun_client || !rdv_stun_looks_like(buf, len))
        return false;
    (void)rdv__stun_client_on_packet(c->stun_client, buf, len, (const struct sockaddr *)from, flen, now);
    return true;
}

void rdv__discovery_after_read(rdv_client *c, int64_t now)
{
    if (!c->stun_client)
        return;
    read_aux(c, now);
    c->stun_due = rdv__stun_client_tick(c->stun_client, now);
    stun_collect_early(c);
    stun_collect(c, now);
    /* The refresh saw our mapping change: discover again. */
    if (c->stun_reported && rdv__stun_client_get_result(c->stun_client)->mapping_changes != c->stun_changes)
        c->stun_next_rediscover = now;
}

int64_t rdv__discovery_next_due(rdv_client *c)
{
    int64_t due = INT64_MAX;
    if (c->stun_client && c->stun_due < due)
        due = c->stun_due;
    if (c->stun_next_refresh && c->stun_next_refresh < due)
        due = c->stun_next_refresh;
    return due;
}

int rdv_client_network_changed(rdv_client *c)
{
    if (!c)
        return RDV_ERR_INVALID;
    pthread_mutex_lock(&c->lock);
    c->net_changed = true;
    pthread_mutex_unlock(&c->lock);
    rdv__wake(c);
    return 0;
}

/* ---- status (L held) ------------------------------------------------------ */

void rdv__discovery_status_locked(rdv_client *c, rdv_network_status *st)
{
    st->nat_type = rdv__nat_effective_locked(c);
    st->nat_discovered = c->nat.done;
    st->no_nat = c->nat.no_nat;
    snprintf(st->nat_method, sizeof(st->nat_method), "%s", c->nat.method);
    snprintf(st->stun_server, sizeof(st->stun_server), "%s", c->nat.server);
    st->nat_discovery_ms = c->nat.ms;
    rdv__portmap_status_locked(c, st);
    char ip[INET6_ADDRSTRLEN];
    if (c->nat.have_mapped && rdv__addr_ip_text(&c->nat.mapped, ip, &st->public_port)) {
        snprintf(st->public_ip, sizeof(st->public_ip), "%s", ip);
        st->public_endpoint_from_stun = 1;
    }
}
