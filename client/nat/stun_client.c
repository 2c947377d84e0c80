/* stun_client.c - the STUN client engine (see stun_client.h): transactions with the
 * RFC 8489 6.2.1 retransmission schedule over several servers, and the
 * RFC 5780 NAT behaviour tests that classify the NAT. No socket I/O but
 * the throw-away route lookup for a wildcard local address; messages go
 * through the schema/stun.h codec only.
 */
#include "client/nat/stun_client.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

/* Discovery phases (PH_TESTS: filtering and mapping in parallel). */
enum { PH_IDLE = 0, PH_DISCOVER, PH_FILTER, PH_MAPPING, PH_TESTS, PH_DONE };

/* Transaction kinds (K_MAPPING3: RFC 5780 4.3 test III, to A's IP and
 * port). */
enum { K_TEST1 = 1, K_II, K_III, K_MAPPING, K_REFRESH, K_MAPPING3 };

/* State of the mapping test III. */
enum { M3_NONE = 0, M3_PENDING, M3_SAME, M3_DIFF, M3_SILENT };

/* State of one filtering test. */
enum { FT_NONE = 0, FT_PENDING, FT_ANSWERED, FT_SILENT, FT_CANNOT };

/* What decided the mapping. */
enum { MV_NONE = 0, MV_NO_NAT, MV_ALT_IP, MV_ALT_PORT, MV_SERVER, MV_UNANSWERED };

_Static_assert(RDV__STUN_CLIENT_MAX_SERVERS == RDV_MAX_STUN_SERVERS, "one bound for both");
_Static_assert(RDV__STUN_CLIENT_MAX_SERVERS <= UINT8_MAX, "rdv__stun_client_tx.server is a uint8_t");

#define IPV4_LEN 4
#define IPV6_LEN 16

/* A sockaddr for `a` in the style of the configured server sockaddr
 * `like` (same family: an IPv4 `a` becomes IPv4-mapped when `like` is
 * AF_INET6, e.g. on a dual-stack socket; the IPv6 scope is kept).
 * Returns the length, 0 when `a` cannot be expressed that way. */
static socklen_t sockaddr_like(const struct sockaddr_storage *like, const rdv_stun_addr *a,
                               struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (like->ss_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, like, sizeof(s6));
        if (a->family == RDV_STUN_FAMILY_IPV4) {
            memset(&s6.sin6_addr, 0, sizeof(s6.sin6_addr));
            s6.sin6_addr.s6_addr[10] = 0xff;
            s6.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&s6.sin6_addr.s6_addr[12], a->addr, IPV4_LEN);
        } else {
            memcpy(&s6.sin6_addr, a->addr, IPV6_LEN);
        }
        s6.sin6_port = htons(a->port);
        memcpy(out, &s6, sizeof(s6));
        return (socklen_t)sizeof(s6);
    }
    if (a->family != RDV_STUN_FAMILY_IPV4)
        return 0;
    return rdv_stun_addr_to_sockaddr(a, out);
}

/* The address in `ss` as an rdv_stun_addr; false when not IPv4/IPv6. */
static bool to_stun_addr(const struct sockaddr *sa, socklen_t len, rdv_stun_addr *out)
{
    return sa && rdv_stun_addr_from_sockaddr(sa, len, out) == 0;
}

/* ---- Transactions ------------------------------------------------ */

static void tx_cancel_all(rdv__stun_client *s)
{
    for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX; i++)
        s->tx[i].active = false;
}

static bool tx_any_of(const rdv__stun_client *s, int kind)
{
    for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX; i++)
        if (s->tx[i].active && s->tx[i].kind == kind)
            return true;
    return false;
}

static void tx_cancel_kind(rdv__stun_client *s, int kind)
{
    for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX; i++)
        if (s->tx[i].active && s->tx[i].kind == kind)
            s->tx[i].active = false;
}

/* One transmission of t at `now`, and the next due time (RFC 8489
 * 6.2.1: the wait doubles; rm*RTO after the last transmission). */
static void tx_transmit(rdv__stun_client *s, rdv__stun_client_tx *t, int64_t now)
{
    rdv__stun_client_send_fn fn = t->aux && s->send_aux ? s->send_aux : s->send;
    (void)fn(s->ctx, t->req, t->req_len, (const struct sockaddr *)&t->to, t->tolen);
    s->res.requests_sent++;
    t->sent++;
    if (t->sent < t->rc) {
        t->due = now + t->wait;
        t->wait *= 2;
    } else {
        t->due = now + (int64_t)t->rm * s->rto;
    }
}

/* Starts a Binding transaction of `kind` for server `server` to `dest`
 * with CHANGE-REQUEST flags `change` (0: none), on the normal (short ==
 * false) or short schedule, and sends it (on the second socket when aux).
 * Returns 0 or -1 (no free slot, address not expressible, build failure:
 * the caller treats it like a transaction that failed). */
static int tx_start_on(rdv__stun_client *s, int kind, size_t server, const rdv_stun_addr *dest,
                       uint32_t change, bool short_schedule, bool aux, int64_t now)
{
    rdv__stun_client_tx *t = NULL;
    for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX && !t; i++)
        if (!s->tx[i].active)
            t = &s->tx[i];
    if (!t)
        return -1;
    memset(t, 0, sizeof(*t));
    t->tolen = sockaddr_like(&s->servers[server], dest, &t->to);
    if (t->tolen == 0)
        return -1;
    randombytes_buf(t->tid, sizeof(t->tid));
    rdv_stun_request_opts o;
    memset(&o, 0, sizeof(o));
    o.change_flags = change;
    o.software = s->software[0] ? s->software : NULL;
    o.fingerprint = true;
    int n = rdv_stun_build_binding_request(t->req, sizeof(t->req), t->tid, &o);
    if (n <= 0)
        return -1;
    t->req_len = (size_t)n;
    t->kind = (uint8_t)kind;
    t->server = (uint8_t)server;
    t->change = change;
    t->dest = *dest;
    t->rc = short_schedule && s->rc > RDV__STUN_CLIENT_SHORT_RC ? RDV__STUN_CLIENT_SHORT_RC : s->rc;
    t->rm = short_schedule && s->rm > RDV__STUN_CLIENT_SHORT_RM ? RDV__STUN_CLIENT_SHORT_RM : s->rm;
    t->wait = s->rto;
    t->aux = aux;
    t->active = true;
    tx_transmit(s, t, now);
    return 0;
}

static int tx_start(rdv__stun_client *s, int kind, size_t server, const rdv_stun_addr *dest,
                    uint32_t change, bool short_schedule, int64_t now)
{
    return tx_start_on(s, kind, server, dest, change, short_schedule, false, now);
}

/* Is a response from `src` plausible for t? A plain request is answered
 * from where it went; a success to CHANGE-REQUEST from the changed IP
 * and/or port exactly as asked (a server that ignores the attribute must
 * not look like an open NAT); an error from where it went. */
static bool plausible(const rdv__stun_client_tx *t, const rdv_stun_msg *m, const rdv_stun_addr *src)
{
    if (t->change == 0 || m->cls == RDV_STUN_CLASS_ERROR)
        return rdv_stun_addr_equal(src, &t->dest);
    if (src->family != t->dest.family)
        return false;
    bool ip_changed = !rdv_stun_ip_equal(src, &t->dest);
    bool port_changed = src->port != t->dest.port;
    return ip_changed == ((t->change & RDV_STUN_CHANGE_IP) != 0) &&
           port_changed == ((t->change & RDV_STUN_CHANGE_PORT) != 0);
}

/* ---- Result ------------------------------------------------------ */

static const char *filter_text(const rdv__stun_client *s)
{
    int ii = s->ii, iii = s->iii;
    if (!s->has_other)
        return "filtering not tested (server gave no OTHER-ADDRESS)";
    if (ii == FT_ANSWERED)
        return "filtering endpoint-independent (change IP+port answered)";
    if (ii == FT_SILENT && iii == FT_ANSWERED)
        return "filtering address-dependent (change port answered, change IP+port not)";
    if (ii == FT_SILENT && iii == FT_SILENT)
        return "filtering address-and-port-dependent (no change request answered)";
    if (iii == FT_ANSWERED)
        return "filtering address-dependent or looser (change port answered; server cannot "
               "change IP)";
    if (ii == FT_SILENT)
        return "filtering address-dependent or stricter (change IP+port unanswered; cannot "
               "change port)";
    if (iii == FT_SILENT)
        return "filtering address-and-port-dependent (change port unanswered; server cannot "
               "change IP)";
    return "filtering not tested (server cannot change address or port)";
}

static rdv__stun_client_behaviour filter_result(const rdv__stun_client *s)
{
    int ii = s->ii, iii = s->iii;
    if (!s->has_other)
        return RDV__STUN_CLIENT_UNTESTED;
    if (ii == FT_ANSWERED)
        return RDV__STUN_CLIENT_INDEPENDENT;
    if (iii == FT_ANSWERED)
        return RDV__STUN_CLIENT_ADDRESS; /* also when II could not run: the stricter */
    if (ii == FT_SILENT || iii == FT_SILENT)
        return RDV__STUN_CLIENT_ADDRESS_PORT;
    return RDV__STUN_CLIENT_UNTESTED;
}

/* The mapping part of result.method: exactly what the tests showed
 * (RFC 4787 terms; the list is in PROTOCOL.md 13.1). */
static const char *mapping_text(const rdv__stun_client *s)
{
    rdv__stun_client_behaviour m = s->res.mapping;
    bool dep = m == RDV__STUN_CLIENT_ADDRESS || m == RDV__STUN_CLIENT_ADDRESS_PORT;
    switch (s->map_via) {
    case MV_NO_NAT:
        return "no NAT (mapped address is the local address)";
    case MV_ALT_IP:
        if (!dep)
            return "mapping endpoint-independent (alternate IP)";
        if (s->map3 == M3_DIFF)
            return "mapping address-and-port-dependent (alternate IP, then port)";
        if (s->map3 == M3_SAME)
            return "mapping address-dependent (alternate IP, then port)";
        return "mapping address-dependent or stricter (alternate IP)";
    case MV_ALT_PORT:
        return dep ? "mapping address-and-port-dependent (alternate port)"
                   : "mapping port-independent (alternate port only)";
    case MV_SERVER:
        return dep ? "mapping address-dependent or stricter (second server)"
                   : "mapping endpoint-independent (second server)";
    case MV_UNANSWERED:
        return "mapping not tested (mapping test unanswered)";
    default:
        return "mapping not tested (no alternate address or second server)";
    }
}

/* The type of a mapping and a filtering behaviour (stun_client.h). */
static rdv_nat_type type_of(rdv__stun_client_behaviour mapping,
                            rdv__stun_client_behaviour filtering)
{
    if (mapping == RDV__STUN_CLIENT_ADDRESS || mapping == RDV__STUN_CLIENT_ADDRESS_PORT)
        return RDV_NAT_SYMMETRIC;
    if (mapping == RDV__STUN_CLIENT_UNTESTED)
        return RDV_NAT_UNKNOWN;
    if (filtering == RDV__STUN_CLIENT_INDEPENDENT)
        return RDV_NAT_FULL_CONE;
    if (filtering == RDV__STUN_CLIENT_ADDRESS)
        return RDV_NAT_RESTRICTED_CONE;
    if (filtering == RDV__STUN_CLIENT_ADDRESS_PORT)
        return RDV_NAT_PORT_RESTRICTED;
    return RDV_NAT_UNKNOWN;
}

/* The mapping is decided while the filtering tests still run (parallel
 * mode): the type so far, with the strictest filtering the answers so
 * far allow (stun_client.h). */
static void publish_early(rdv__stun_client *s)
{
    rdv__stun_client_result *r = &s->res;
    if (s->map_via == MV_NO_NAT)
        r->mapping = RDV__STUN_CLIENT_INDEPENDENT;
    rdv__stun_client_behaviour f = !s->has_other        ? RDV__STUN_CLIENT_UNTESTED
                                   : s->ii == FT_ANSWERED  ? RDV__STUN_CLIENT_INDEPENDENT
                                   : s->iii == FT_ANSWERED ? RDV__STUN_CLIENT_ADDRESS
                                                           : RDV__STUN_CLIENT_ADDRESS_PORT;
    r->nat = type_of(r->mapping, f);
    r->mapping_decided = true;
    snprintf(r->method, sizeof(r->method), "RFC 5780: %s, %s", mapping_text(s),
             s->filter_done ? filter_text(s) : "filtering being tested");
}

/* Ends discovery successfully (a server answered Test I). */
static void finish(rdv__stun_client *s, int64_t now)
{
    rdv__stun_client_result *r = &s->res;
    tx_cancel_all(s);
    r->filtering = filter_result(s);
    if (s->map_via == MV_NO_NAT)
        r->mapping = RDV__STUN_CLIENT_INDEPENDENT;
    r->nat = type_of(r->mapping, r->filtering);
    r->mapping_decided = true;
    snprintf(r->method, sizeof(r->method), "RFC 5780: %s, %s", mapping_text(s), filter_text(s));
    r->elapsed_ms = now - s->started;
    r->running = false;
    r->done = true;
    s->phase = PH_DONE;
}

/* Ends discovery with no usable Test I answer. */
static void finish_error(rdv__stun_client *s, int64_t now)
{
    rdv__stun_client_result *r = &s->res;
    tx_cancel_all(s);
    r->nat = RDV_NAT_UNKNOWN;
    r->error = s->refused ? RDV_ERR_SERVER : RDV_ERR_TIMEOUT;
    if (s->refused)
        snprintf(r->error_text, sizeof(r->error_text),
                 "no STUN server answered (%zu tried, %u with an error)", s->nservers,
                 s->refused);
    else
        snprintf(r->error_text, sizeof(r->error_text), "no STUN server answered (%zu tried)",
                 s->nservers);
    snprintf(r->method, sizeof(r->method), "no STUN answer");
    r->elapsed_ms = now - s->started;
    r->running = false;
    r->done = true;
    s->phase = PH_DONE;
}

/* ---- Phases ------------------------------------------------------ */

/* Sends Test I to server s->cur or a later one; finishes with an error
 * when none is left. */
static void discover_from(rdv__stun_client *s, int64_t now)
{
    for (; s->cur < s->nservers; s->cur++) {
        rdv_stun_addr p;
        if (!to_stun_addr((const struct sockaddr *)&s->servers[s->cur],
                          s->server_lens[s->cur], &p))
            continue;
        if (tx_start(s, K_TEST1, s->cur, &p, 0, false, now) == 0)
            return;
    }
    finish_error(s, now);
}

/* The mapping tests are over: discovery ends when the filtering tests
 * are over too; until then (parallel mode) the type so far is out. */
static void mapping_end(rdv__stun_client *s, int64_t now)
{
    s->map_done = true;
    if (s->filter_done)
        finish(s, now);
    else
        publish_early(s);
}

static void mapping_next(rdv__stun_client *s, int64_t now);

/* The filtering tests are over: RFC 5780's order starts the mapping
 * test now; in parallel mode discovery ends if that is over too. */
static void filter_end(rdv__stun_client *s, int64_t now)
{
    s->filter_done = true;
    if (s->phase != PH_TESTS)
        mapping_next(s, now);
    else if (s->map_done)
        finish(s, now);
}

/* Next mapping candidate: the alternate address once, then the other
 * servers; ends the mapping tests when none is left. */
static void mapping_next(rdv__stun_client *s, int64_t now)
{
    if (s->phase != PH_TESTS)
        s->phase = PH_MAPPING;
    if (s->map_via == MV_NO_NAT) {
        mapping_end(s, now);
        return;
    }
    if (s->map_step == 0) {
        s->map_step = 1;
        if (s->has_other && (s->alt_ip || s->alt_port)) {
            rdv_stun_addr d = s->primary;
            if (s->alt_ip)
                memcpy(d.addr, s->other.addr, IPV6_LEN); /* A's IP, P's port */
            else
                d.port = s->other.port;                  /* P's IP, A's port */
            if (tx_start(s, K_MAPPING, (size_t)s->res.server_index, &d, 0, true, now) == 0) {
                s->map_via = s->alt_ip ? MV_ALT_IP : MV_ALT_PORT;
                return;
            }
        }
    }
    for (; s->map_next < s->nservers; s->map_next++) {
        size_t j = s->map_next;
        rdv_stun_addr q;
        if (!to_stun_addr((const struct sockaddr *)&s->servers[j], s->server_lens[j], &q) ||
            rdv_stun_addr_equal(&q, &s->primary) || q.family != s->primary.family)
            continue;
        if (tx_start(s, K_MAPPING, j, &q, 0, true, now) == 0) {
            s->map_via = MV_SERVER;
            s->map_next++;
            return;
        }
    }
    if (s->map_via != MV_NONE)
        s->map_via = MV_UNANSWERED;
    s->res.mapping = RDV__STUN_CLIENT_UNTESTED;
    mapping_end(s, now);
}

/* The mapping test answered M2 (not M1 when `dep`). After A's IP, a
 * dependent mapping is told apart by a Binding to A's IP and port (test
 * III, M3); meanwhile the type (symmetric) is out. */
static void on_mapping(rdv__stun_client *s, const rdv_stun_addr *m, int64_t now)
{
    rdv__stun_client_result *r = &s->res;
    if (rdv_stun_addr_equal(m, &s->m1)) {
        r->mapping = RDV__STUN_CLIENT_INDEPENDENT;
    } else if (s->map_via == MV_ALT_PORT) {
        r->mapping = RDV__STUN_CLIENT_ADDRESS_PORT;
    } else {
        r->mapping = RDV__STUN_CLIENT_ADDRESS; /* or stricter: test III tells */
        s->m2 = *m;
        if (s->map_via == MV_ALT_IP && s->alt_port &&
            tx_start(s, K_MAPPING3, (size_t)r->server_index, &s->other, 0, true, now) == 0) {
            s->map3 = M3_PENDING;
            publish_early(s);
            return;
        }
    }
    mapping_end(s, now);
}

/* The IP the socket uses toward server i, for a wildcard local address:
 * connect() a throw-away UDP socket there (nothing is sent) and read its
 * address. Returns true with out->addr filled. */
static bool route_source(const rdv__stun_client *s, size_t i, rdv_stun_addr *out)
{
    const struct sockaddr_storage *srv = &s->servers[i];
    int fd = socket(srv->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    bool ok = connect(fd, (const struct sockaddr *)srv, s->server_lens[i]) == 0 &&
              getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
              to_stun_addr((const struct sockaddr *)&ss, sl, out);
    close(fd);
    return ok;
}

/* no_nat: is `m` the local address toward server i? */
static bool is_local(const rdv__stun_client *s, size_t i, const rdv_stun_addr *m)
{
    rdv_stun_addr l;
    if (s->local_len == 0 ||
        !to_stun_addr((const struct sockaddr *)&s->local, s->local_len, &l) || l.port == 0)
        return false;
    if (rdv_stun_ip_is_any(&l)) {
        rdv_stun_addr r;
        if (!route_source(s, i, &r))
            return false;
        r.port = l.port; /* a dual-stack "::" socket reaches IPv4 too */
        l = r;
    }
    return rdv_stun_addr_equal(&l, m);
}

/* Test I answered by server t->server with mapped address m. */
static void on_test1(rdv__stun_client *s, const rdv__stun_client_tx *t, const rdv_stun_msg *msg,
                     const rdv_stun_addr *m, int64_t now)
{
    rdv__stun_client_result *r = &s->res;
    size_t i = t->server;
    s->primary = t->dest;
    s->m1 = *m;
    r->mapped_known = true;
    r->mapped_len = rdv_stun_addr_to_sockaddr(m, &r->mapped);
    r->server_index = (int)i;
    memcpy(&r->server, &s->servers[i], sizeof(r->server));
    r->server_len = s->server_lens[i];
    r->no_nat = is_local(s, i, m);
    if (r->no_nat)
        s->map_via = MV_NO_NAT;

    /* RFC 5780 4.2: OTHER-ADDRESS, usable when of P's family and not P. */
    s->has_other = msg->has_other_address && msg->other_address.family == s->primary.family &&
                   !rdv_stun_addr_equal(&msg->other_address, &s->primary);
    if (s->has_other) {
        s->other = msg->other_address;
        s->alt_ip = !rdv_stun_ip_equal(&s->other, &s->primary);
        s->alt_port = s->other.port != s->primary.port;
    }
    s->map_next = i + 1;
    /* Parallel mode: filtering on the second socket, mapping beside it. */
    bool par = s->send_aux != NULL;
    s->phase = par ? PH_TESTS : PH_FILTER;
    s->ii = s->iii = FT_CANNOT;
    if (s->has_other && s->alt_ip) {
        uint32_t f = RDV_STUN_CHANGE_IP | (s->alt_port ? RDV_STUN_CHANGE_PORT : 0u);
        if (tx_start_on(s, K_II, i, &s->primary, f, true, par, now) == 0)
            s->ii = FT_PENDING;
    }
    if (s->has_other && s->alt_port) {
        if (tx_start_on(s, K_III, i, &s->primary, RDV_STUN_CHANGE_PORT, true, par, now) == 0)
            s->iii = FT_PENDING;
    }
    if (s->ii != FT_PENDING && s->iii != FT_PENDING)
        filter_end(s, now);
    if (par && s->phase == PH_TESTS)
        mapping_next(s, now);
}

/* A filtering test ended: `state` is FT_ANSWERED, FT_SILENT or FT_CANNOT. */
static void on_filter(rdv__stun_client *s, int kind, int state, int64_t now)
{
    if (kind == K_II) {
        s->ii = state;
        if (state == FT_ANSWERED && s->iii == FT_PENDING) {
            tx_cancel_kind(s, K_III); /* decided: III cannot change it */
            s->iii = FT_NONE;
        }
    } else {
        s->iii = state;
    }
    if (!tx_any_of(s, K_II) && !tx_any_of(s, K_III))
        filter_end(s, now);
    else if (s->res.mapping_decided)
        publish_early(s); /* a better type so far */
}

/* A transaction ended: `m` is the mapped address of a success, NULL for a
 * timeout or an error response (`error` true). */
static void tx_done(rdv__stun_client *s, rdv__stun_client_tx *t, const rdv_stun_msg *msg,
                    const rdv_stun_addr *m, bool error, int64_t now)
{
    rdv__stun_client_tx copy = *t;
    t->active = false;
    rdv__stun_client_result *r = &s->res;
    switch (copy.kind) {
    case K_TEST1:
        if (s->phase != PH_DISCOVER)
            return;
        if (m) {
            on_test1(s, &copy, msg, m, now);
        } else {
            if (error)
                s->refused++;
            s->cur = (size_t)copy.server + 1;
            discover_from(s, now);
        }
        return;
    case K_II:
    case K_III:
        if (s->phase == PH_FILTER || (s->phase == PH_TESTS && !s->filter_done))
            on_filter(s, copy.kind, m ? FT_ANSWERED : error ? FT_CANNOT : FT_SILENT, now);
        return;
    case K_MAPPING:
        if (s->phase != PH_MAPPING && (s->phase != PH_TESTS || s->map_done))
            return;
        if (m)
            on_mapping(s, m, now);
        else
            mapping_next(s, now);
        return;
    case K_MAPPING3:
        if (s->phase != PH_MAPPING && (s->phase != PH_TESTS || s->map_done))
            return;
        s->map3 = !m ? M3_SILENT : rdv_stun_addr_equal(m, &s->m2) ? M3_SAME : M3_DIFF;
        if (s->map3 == M3_DIFF)
            r->mapping = RDV__STUN_CLIENT_ADDRESS_PORT;
        mapping_end(s, now);
        return;
    case K_REFRESH:
        if (!m) {
            r->refresh_failures++;
            return;
        }
        r->refreshes_ok++;
        rdv_stun_addr cur;
        if (!r->mapped_known ||
            !to_stun_addr((const struct sockaddr *)&r->mapped, r->mapped_len, &cur) ||
            !rdv_stun_addr_equal(&cur, m)) {
            r->mapping_changes++;
            r->mapped_len = rdv_stun_addr_to_sockaddr(m, &r->mapped);
            r->mapped_known = true;
        }
        return;
    default:
        return;
    }
}

/* ---- API --------------------------------------------------------- */

int rdv__stun_client_init(rdv__stun_client *s, const rdv__stun_client_cfg *cfg)
{
    if (!s)
        return RDV_ERR_INVALID;
    memset(s, 0, sizeof(*s));
    s->res.server_index = -1;
    if (!cfg || !cfg->send || !cfg->servers || !cfg->server_lens || cfg->nservers == 0 ||
        cfg->nservers > RDV__STUN_CLIENT_MAX_SERVERS)
        return RDV_ERR_INVALID;
    if (cfg->rto_ms < 0 || cfg->rto_ms > RDV__STUN_CLIENT_RTO_MAX_MS || cfg->rc < 0 ||
        cfg->rc > RDV__STUN_CLIENT_RC_MAX || cfg->rm < 0 || cfg->rm > RDV__STUN_CLIENT_RM_MAX)
        return RDV_ERR_INVALID;
    for (size_t i = 0; i < cfg->nservers; i++) {
        rdv_stun_addr a;
        socklen_t l = cfg->server_lens[i];
        if (l == 0 || l > (socklen_t)sizeof(struct sockaddr_storage) ||
            !to_stun_addr((const struct sockaddr *)&cfg->servers[i], l, &a))
            return RDV_ERR_INVALID;
        memcpy(&s->servers[i], &cfg->servers[i], l);
        s->server_lens[i] = l;
    }
    if (cfg->local && cfg->local_len > 0) {
        rdv_stun_addr a;
        if (cfg->local_len > (socklen_t)sizeof(struct sockaddr_storage) ||
            !to_stun_addr(cfg->local, cfg->local_len, &a))
            return RDV_ERR_INVALID;
        memcpy(&s->local, cfg->local, cfg->local_len);
        s->local_len = cfg->local_len;
    }
    if (sodium_init() < 0)
        return RDV_ERR_CRYPTO;
    s->nservers = cfg->nservers;
    s->rto = cfg->rto_ms ? cfg->rto_ms : RDV__STUN_CLIENT_RTO_MS;
    s->rc = cfg->rc ? cfg->rc : RDV__STUN_CLIENT_RC;
    s->rm = cfg->rm ? cfg->rm : RDV__STUN_CLIENT_RM;
    s->send = cfg->send;
    s->send_aux = cfg->send_aux;
    s->ctx = cfg->ctx;
    if (cfg->software) {
        size_t n = strnlen(cfg->software, RDV__STUN_CLIENT_SOFTWARE_MAX);
        memcpy(s->software, cfg->software, n);
        s->software[n] = '\0';
    }
    s->phase = PH_IDLE;
    return 0;
}

void rdv__stun_client_start(rdv__stun_client *s, int64_t now)
{
    if (!s || !s->send)
        return;
    tx_cancel_all(s);
    rdv__stun_client_result *r = &s->res;
    uint64_t c[6] = {r->requests_sent, r->responses, r->ignored, r->refreshes_ok,
                     r->refresh_failures, r->mapping_changes};
    memset(r, 0, sizeof(*r));
    r->requests_sent = c[0];
    r->responses = c[1];
    r->ignored = c[2];
    r->refreshes_ok = c[3];
    r->refresh_failures = c[4];
    r->mapping_changes = c[5];
    r->server_index = -1;
    r->running = true;
    s->started = now;
    s->cur = 0;
    s->refused = 0;
    s->has_other = s->alt_ip = s->alt_port = false;
    s->ii = s->iii = FT_NONE;
    s->map_step = 0;
    s->map_via = MV_NONE;
    s->map_next = 0;
    s->map3 = M3_NONE;
    memset(&s->m2, 0, sizeof(s->m2));
    s->filter_done = s->map_done = false;
    s->phase = PH_DISCOVER;
    discover_from(s, now);
}

bool rdv__stun_client_on_packet(rdv__stun_client *s, const uint8_t *buf, size_t len,
                          const struct sockaddr *from, socklen_t fromlen, int64_t now)
{
    if (!s)
        return false;
    rdv_stun_msg m;
    rdv_stun_addr src;
    rdv__stun_client_tx *t = NULL;
    int n = buf ? rdv_stun_parse(buf, len, &m) : RDV_STUN_ERR_TRUNCATED;
    /* One message per datagram, a Binding response, nothing we must
     * understand and do not (RFC 8489 6.3.3 / 6.3.4). */
    if (n < 0 || (size_t)n != len || m.method != RDV_STUN_METHOD_BINDING ||
        (m.cls != RDV_STUN_CLASS_SUCCESS && m.cls != RDV_STUN_CLASS_ERROR) || m.n_unknown > 0 ||
        !to_stun_addr(from, fromlen, &src))
        goto ignore;
    for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX && !t; i++)
        if (s->tx[i].active && memcmp(s->tx[i].tid, m.tid, RDV_STUN_TID_BYTES) == 0)
            t = &s->tx[i];
    if (!t || !plausible(t, &m, &src))
        goto ignore;
    if (m.cls == RDV_STUN_CLASS_ERROR) {
        s->res.responses++;
        tx_done(s, t, &m, NULL, true, now);
        return true;
    }
    const rdv_stun_addr *mapped = m.has_xor_mapped ? &m.xor_mapped
                                  : m.has_mapped   ? &m.mapped
                                                   : NULL;
    if (!mapped || (mapped->family != RDV_STUN_FAMILY_IPV4 &&
                    mapped->family != RDV_STUN_FAMILY_IPV6))
        goto ignore;
    rdv_stun_addr mcopy = *mapped;
    s->res.responses++;
    tx_done(s, t, &m, &mcopy, false, now);
    return true;
ignore:
    s->res.ignored++;
    return false;
}

int64_t rdv__stun_client_tick(rdv__stun_client *s, int64_t now)
{
    if (!s)
        return INT64_MAX;
    /* Each pass handles at least one due transaction; a timeout may start
     * new ones (sent now, due later), so a bounded number of passes. */
    for (int pass = 0; pass < 4 * RDV__STUN_CLIENT_MAX_TX * (RDV__STUN_CLIENT_MAX_SERVERS + 4); pass++) {
        rdv__stun_client_tx *t = NULL;
        for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX && !t; i++)
            if (s->tx[i].active && s->tx[i].due <= now)
                t = &s->tx[i];
        if (!t)
            break;
        if (t->sent < t->rc)
            tx_transmit(s, t, now);
        else
            tx_done(s, t, NULL, NULL, false, now);
    }
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX; i++)
        if (s->tx[i].active && s->tx[i].due < next)
            next = s->tx[i].due;
    return next;
}

int rdv__stun_client_refresh(rdv__stun_client *s, int64_t now)
{
    if (!s || s->phase != PH_DONE || !s->res.mapped_known || s->res.server_index < 0)
        return RDV_ERR_STATE;
    if (tx_any_of(s, K_REFRESH))
        return 0;
    return tx_start(s, K_REFRESH, (size_t)s->res.server_index, &s->primary, 0, false, now) == 0
               ? 0
               : RDV_ERR_STATE;
}

const rdv__stun_client_result *rdv__stun_client_get_result(const rdv__stun_client *s)
{
    return &s->res;
}
