/* test_stun_client.c - client_stunc_*: the STUN client engine (client/stun_client.c)
 * over real nonblocking UDP sockets on loopback, against a real rendezvousd
 * (tests/support/server.h) and against scripted fake servers.
 *
 * The test owns the client socket: the engine's send callback writes to
 * it, and the test polls it and feeds every STUN-looking datagram to
 * rdv__stun_client_on_packet(). Fake servers are four sockets each (127.0.0.1
 * and 127.0.0.2, primary and alternate port) built with the schema codec;
 * they answer as rendezvousd would (CHANGE-REQUEST, OTHER-ADDRESS, 420),
 * and a simulated NAT in front of the client decides the mapped address
 * they report and which of their answers reach the client (full cone,
 * address-restricted, port-restricted, symmetric, or no NAT).
 *
 * Time: the rendezvousd cases run on the real monotonic clock; the fake
 * cases drive a virtual clock (`now` jumps to the engine's next due time
 * once the sockets are quiet), so schedules are checked exactly and the
 * timeouts cost no wall time.
 *
 * One executable, one ctest per case: `client_stunc NAME` runs test_NAME.
 *   init                    bad configurations refused, idle engine;
 *   rendezvousd             rendezvousd with --stun-alt-port and
 *                           --stun-alt-address 127.0.0.2: own address, no_nat,
 *                           full cone (also from a 0.0.0.0 socket, and with
 *                           the mapping test when no local address is given);
 *   rendezvousd_alt_port    alternate port only: no change-IP request,
 *                           restricted cone ("server cannot change IP");
 *   dead_first_rendezvousd  dead server 1 (real clock, RTO 40): rc requests at
 *                           doubling intervals (never sooner; later is the
 *                           load's), then rendezvousd answers;
 *   dead_first              the same on the virtual clock, exact schedule;
 *   retransmit              two requests dropped, the third answered;
 *   all_dead                error, UNKNOWN, full schedule on each server;
 *   garbage                 junk, truncations, bit flips, wrong TID / source
 *                           ignored; discovery unaffected;
 *   full_cone, restricted, port_restricted, symmetric, open
 *                           classification behind the simulated NAT;
 *   cannot_change           420 to change IP: the stricter type;
 *   ignore_change           answers from the wrong source are ignored;
 *   second_server           no OTHER-ADDRESS: two servers compared;
 *   refresh                 keepalive, changed mapping, dead server;
 *   address_mapping         address-dependent mapping told apart from
 *                           address-and-port-dependent (mapping test III);
 *   parallel_*              a second socket (send_aux) for the filtering
 *                           tests: the mapping decided at once, the final
 *                           type unchanged (issue 19).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "server.h"
#include "schema/stun.h"
#include "client/nat/stun_client.h"

#define MAX_LOG 256        /* requests logged per test */
#define MAX_FAKES 3
#define MAX_CONTACTED 32
#define QUIET_MS 20        /* virtual clock: sockets quiet this long */
#define REAL_POLL_MAX_MS 50
#define PUB_PORT 40000     /* simulated NAT's public port */
#define AUX_PUB_PORT 41000 /* ... of the second client socket */
#define T0 100000          /* virtual start time */

/* The simulated NAT in front of the client socket. */
typedef enum sim_nat {
    SIM_OPEN = 0,          /* no NAT, no firewall */
    SIM_FULL,              /* EIM, EIF */
    SIM_RESTRICTED,        /* EIM, address-dependent filtering */
    SIM_PORT_RESTRICTED,   /* EIM, address-and-port-dependent filtering */
    SIM_SYMMETRIC,         /* APDM, APDF */
    SIM_ADDR_MAP,          /* address-dependent mapping, APDF */
} sim_nat;

/* Via index of a fake's sockets. */
enum { V_P = 0, V_ALT_PORT = 1, V_ALT_IP = 2, V_ALT_BOTH = 3, V_N = 4 };

typedef struct rxrec {
    int64_t at;             /* engine time */
    int via;
    uint8_t tid[RDV_STUN_TID_BYTES];
    uint32_t change;
} rxrec;

typedef struct fake {
    bool used;
    int fd[V_N];            /* -1 when absent */
    rdv_stun_addr addr[V_N];
    bool other;             /* sends OTHER-ADDRESS + RESPONSE-ORIGIN */
    bool other_alt_ip;      /* OTHER-ADDRESS names 127.0.0.2 (else alt port only) */
    bool can_change_ip;     /* else 420 to change IP */
    bool ignore_change;     /* broken: answers change requests from the arrival socket */
    bool dead;              /* never answers */
    int drop_first;         /* drops this many requests */
    rxrec rx[MAX_LOG];
    size_t nrx;
} fake;

typedef struct sentrec {
    int64_t at;
    rdv_stun_addr to;
    uint8_t tid[RDV_STUN_TID_BYTES];
    uint32_t change;
    bool aux;               /* sent with send_aux (the second socket) */
    uint8_t buf[RDV__STUN_CLIENT_REQ_MAX];
    size_t len;
} sentrec;

typedef struct harness {
    int cfd;
    struct sockaddr_storage caddr;
    socklen_t caddr_len;
    rdv_stun_addr cstun;    /* client socket address */
    rdv__stun_client st;
    int64_t now;
    bool real;              /* real clock (else virtual) */
    sentrec log[MAX_LOG];
    size_t nlog;
    size_t accepted, rejected; /* on_packet results of received datagrams */
    fake fakes[MAX_FAKES];
    sim_nat sim;
    uint16_t pub_port;
    rdv_stun_addr dests[MAX_CONTACTED]; /* distinct destinations (symmetric map) */
    size_t ndests;
    rdv_stun_addr contacted[MAX_CONTACTED];
    size_t ncontacted;
    /* The second client socket (parallel mode, send_aux): its own NAT
     * mapping and filter state, public ports from AUX_PUB_PORT. */
    int afd;
    rdv_stun_addr astun;
    rdv_stun_addr adests[MAX_CONTACTED];
    size_t nadests;
    rdv_stun_addr acontacted[MAX_CONTACTED];
    size_t nacontacted;
    bool cur_aux;           /* fake_handle: the request came from afd */
} harness;

static harness H;

static int64_t mono_ms(void) { return (int64_t)rdv_ts_mono_ms(); }

/* ---- Sockets ------------------------------------------------------ */

static int udp_bind(const char *ip, uint16_t port, rdv_stun_addr *out)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        (out && rdv_stun_addr_from_sockaddr((struct sockaddr *)&ss, sl, out) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool alt_ip_usable(void)
{
    int fd = udp_bind("127.0.0.2", 0, NULL);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static uint16_t free_udp_port(void)
{
    rdv_stun_addr a;
    int fd = udp_bind("127.0.0.1", 0, &a);
    assert_true(fd >= 0);
    close(fd);
    return a.port;
}

static socklen_t to_ss(const rdv_stun_addr *a, struct sockaddr_storage *ss)
{
    return rdv_stun_addr_to_sockaddr(a, ss);
}

static rdv_stun_addr v4(const char *ip, uint16_t port)
{
    rdv_stun_addr a;
    memset(&a, 0, sizeof a);
    a.family = RDV_STUN_FAMILY_IPV4;
    a.port = port;
    assert_int_equal(inet_pton(AF_INET, ip, a.addr), 1);
    return a;
}

/* The client socket on `ip` (127.0.0.1 or 0.0.0.0). */
static void client_open(const char *ip)
{
    H.cfd = udp_bind(ip, 0, &H.cstun);
    assert_true(H.cfd >= 0);
    H.caddr_len = to_ss(&H.cstun, &H.caddr);
}

/* ---- The send callback ------------------------------------------- */

static int send_on(harness *h, int fd, bool aux, const uint8_t *buf, size_t len,
                   const struct sockaddr *to, socklen_t tolen)
{
    rdv_stun_msg m;
    /* Every request is a well-formed, FINGERPRINTed Binding request. */
    assert_int_equal(rdv_stun_parse(buf, len, &m), (int)len);
    assert_int_equal(m.type, RDV_STUN_BINDING_REQUEST);
    assert_true(m.has_fingerprint);
    assert_true(len <= RDV__STUN_CLIENT_REQ_MAX);
    if (h->nlog < MAX_LOG) {
        sentrec *r = &h->log[h->nlog++];
        r->at = h->now;
        assert_int_equal(rdv_stun_addr_from_sockaddr(to, tolen, &r->to), 0);
        memcpy(r->tid, m.tid, sizeof r->tid);
        r->change = m.has_change_request ? m.change_flags : 0;
        r->aux = aux;
        memcpy(r->buf, buf, len);
        r->len = len;
    }
    ssize_t n = sendto(fd, buf, len, 0, to, tolen);
    return n == (ssize_t)len ? 0 : -1;
}

static int send_cb(void *ctx, const uint8_t *buf, size_t len, const struct sockaddr *to,
                   socklen_t tolen)
{
    harness *h = ctx;
    return send_on(h, h->cfd, false, buf, len, to, tolen);
}

static int send_aux_cb(void *ctx, const uint8_t *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen)
{
    harness *h = ctx;
    assert_true(h->afd >= 0);
    return send_on(h, h->afd, true, buf, len, to, tolen);
}

/* ---- The simulated NAT and the fake servers ---------------------- */

static void remember(rdv_stun_addr *set, size_t *n, const rdv_stun_addr *a)
{
    for (size_t i = 0; i < *n; i++)
        if (rdv_stun_addr_equal(&set[i], a))
            return;
    if (*n < MAX_CONTACTED)
        set[(*n)++] = *a;
}

/* The mapped address the NAT gives a packet to `dest`. */
static rdv_stun_addr sim_mapped(const rdv_stun_addr *dest)
{
    if (H.sim == SIM_OPEN)
        return H.cur_aux ? H.astun : H.cstun;
    rdv_stun_addr m = v4("203.0.113.7", H.cur_aux ? AUX_PUB_PORT : H.pub_port);
    const rdv_stun_addr *dests = H.cur_aux ? H.adests : H.dests;
    size_t nd = H.cur_aux ? H.nadests : H.ndests;
    uint16_t base = m.port;
    if (H.sim == SIM_SYMMETRIC) {
        for (size_t i = 0; i < nd; i++)
            if (rdv_stun_addr_equal(&dests[i], dest))
                m.port = (uint16_t)(base + i);
    } else if (H.sim == SIM_ADDR_MAP) {
        /* One port per destination IP (the first such destination's). */
        for (size_t i = nd; i-- > 0;)
            if (memcmp(dests[i].addr, dest->addr, 4) == 0)
                m.port = (uint16_t)(base + i);
    }
    return m;
}

/* Does the NAT let a packet from `src` in? */
static bool sim_allows(const rdv_stun_addr *src)
{
    const rdv_stun_addr *set = H.cur_aux ? H.acontacted : H.contacted;
    size_t n = H.cur_aux ? H.nacontacted : H.ncontacted;
    for (size_t i = 0; i < n; i++) {
        const rdv_stun_addr *c = &set[i];
        if (H.sim == SIM_RESTRICTED && c->family == src->family &&
            memcmp(c->addr, src->addr, 4) == 0)
            return true;
        if (rdv_stun_addr_equal(c, src))
            return true;
    }
    return H.sim == SIM_OPEN || H.sim == SIM_FULL;
}

/* Binds a fake: P on 127.0.0.1, the rest only when `full` (alt port, and
 * 127.0.0.2 on both ports). */
static fake *fake_new(bool full)
{
    fake *f = NULL;
    for (int i = 0; i < MAX_FAKES && !f; i++)
        if (!H.fakes[i].used)
            f = &H.fakes[i];
    assert_non_null(f);
    memset(f, 0, sizeof *f);
    f->used = true;
    for (int v = 0; v < V_N; v++)
        f->fd[v] = -1;
    f->other = f->other_alt_ip = f->can_change_ip = true;
    for (int attempt = 0; attempt < 20; attempt++) {
        f->fd[V_P] = udp_bind("127.0.0.1", 0, &f->addr[V_P]);
        assert_true(f->fd[V_P] >= 0);
        if (!full)
            return f;
        f->fd[V_ALT_PORT] = udp_bind("127.0.0.1", 0, &f->addr[V_ALT_PORT]);
        assert_true(f->fd[V_ALT_PORT] >= 0);
        f->fd[V_ALT_IP] = udp_bind("127.0.0.2", f->addr[V_P].port, &f->addr[V_ALT_IP]);
        f->fd[V_ALT_BOTH] = udp_bind("127.0.0.2", f->addr[V_ALT_PORT].port, &f->addr[V_ALT_BOTH]);
        if (f->fd[V_ALT_IP] >= 0 && f->fd[V_ALT_BOTH] >= 0)
            return f;
        for (int v = 0; v < V_N; v++) {
            if (f->fd[v] >= 0)
                close(f->fd[v]);
            f->fd[v] = -1;
        }
    }
    fail_msg("cannot bind a fake server");
    return NULL;
}

static void fake_close(fake *f)
{
    for (int v = 0; v < V_N; v++) {
        if (f->fd[v] >= 0)
            close(f->fd[v]);
        f->fd[v] = -1;
    }
    f->used = false;
}

/* Handles one request that arrived at f's socket `via` from the client. */
static void fake_handle(fake *f, int via, const uint8_t *buf, size_t len, bool aux)
{
    rdv_stun_msg m;
    int n = rdv_stun_parse(buf, len, &m);
    if (n < 0)
        return;
    H.cur_aux = aux;
    const rdv_stun_addr *here = &f->addr[via];
    if (aux) {
        remember(H.acontacted, &H.nacontacted, here);
        remember(H.adests, &H.nadests, here);
    } else {
        remember(H.contacted, &H.ncontacted, here); /* the NAT saw us send there */
        remember(H.dests, &H.ndests, here);
    }
    if (f->nrx < MAX_LOG) {
        rxrec *r = &f->rx[f->nrx++];
        r->at = H.now;
        r->via = via;
        memcpy(r->tid, m.tid, sizeof r->tid);
        r->change = m.has_change_request ? m.change_flags : 0;
    }
    if (f->dead)
        return;
    if (f->drop_first > 0) {
        f->drop_first--;
        return;
    }
    uint8_t out[512];
    int out_via = via;
    int rlen;
    bool want_ip = m.has_change_request && (m.change_flags & RDV_STUN_CHANGE_IP);
    bool want_port = m.has_change_request && (m.change_flags & RDV_STUN_CHANGE_PORT);
    if ((want_ip && !f->can_change_ip) || ((want_ip || want_port) && !f->other) ||
        (want_ip && f->fd[V_ALT_IP] < 0) || (want_port && f->fd[V_ALT_PORT] < 0)) {
        static const uint16_t cr[] = {RDV_STUN_ATTR_CHANGE_REQUEST};
        rlen = rdv_stun_build_error(out, sizeof out, &m, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE, NULL,
                                    cr, 1, "fake", true);
    } else {
        if (!f->ignore_change) {
            if (want_ip)
                out_via ^= V_ALT_IP;
            if (want_port)
                out_via ^= V_ALT_PORT;
        }
        rdv_stun_success_opts o;
        memset(&o, 0, sizeof o);
        o.mapped = sim_mapped(here);
        o.software = "fake";
        o.fingerprint = true;
        rdv_stun_addr other = f->addr[via ^ (f->other_alt_ip ? V_ALT_BOTH : V_ALT_PORT)];
        if (f->other) {
            o.response_origin = &f->addr[out_via];
            o.other_address = &other;
        }
        rlen = rdv_stun_build_binding_success(out, sizeof out, &m, &o);
    }
    assert_true(rlen > 0);
    if (!sim_allows(&f->addr[out_via]))
        return; /* filtered by the NAT */
    struct sockaddr_storage to;
    const rdv_stun_addr *dst = aux ? &H.astun : &H.cstun;
    socklen_t tl = to_ss(dst, &to);
    if (dst->addr[0] == 0) /* client on 0.0.0.0: reach it on 127.0.0.1 */
        tl = to_ss(&(rdv_stun_addr){RDV_STUN_FAMILY_IPV4, dst->port, {127, 0, 0, 1}}, &to);
    ssize_t s = sendto(f->fd[out_via], out, (size_t)rlen, 0, (struct sockaddr *)&to, tl);
    assert_int_equal(s, rlen);
}

/* ---- Driving ------------------------------------------------------ */

/* Polls the client and fake sockets once (up to timeout_ms) and handles
 * everything readable. Returns the number of datagrams handled. */
static int poll_once(int timeout_ms)
{
    struct pollfd p[2 + MAX_FAKES * V_N];
    fake *pf[2 + MAX_FAKES * V_N];
    int pv[2 + MAX_FAKES * V_N];
    int n = 0;
    p[n] = (struct pollfd){.fd = H.cfd, .events = POLLIN};
    pf[n] = NULL;
    pv[n++] = 0;
    if (H.afd >= 0) {
        p[n] = (struct pollfd){.fd = H.afd, .events = POLLIN};
        pf[n] = NULL;
        pv[n++] = 0;
    }
    for (int i = 0; i < MAX_FAKES; i++) {
        if (!H.fakes[i].used)
            continue;
        for (int v = 0; v < V_N; v++) {
            if (H.fakes[i].fd[v] < 0)
                continue;
            p[n] = (struct pollfd){.fd = H.fakes[i].fd[v], .events = POLLIN};
            pf[n] = &H.fakes[i];
            pv[n++] = v;
        }
    }
    int r = poll(p, (nfds_t)n, timeout_ms);
    if (r <= 0)
        return 0;
    int handled = 0;
    for (int i = 0; i < n; i++) {
        if (!(p[i].revents & POLLIN))
            continue;
        for (;;) {
            uint8_t buf[2048];
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t len = recvfrom(p[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (len < 0)
                break;
            handled++;
            if (H.real)
                H.now = mono_ms();
            if (pf[i]) {
                rdv_stun_addr src;
                bool aux = H.afd >= 0 &&
                           rdv_stun_addr_from_sockaddr((struct sockaddr *)&from, fl, &src) == 0 &&
                           src.port == H.astun.port;
                fake_handle(pf[i], pv[i], buf, (size_t)len, aux);
            } else if (rdv_stun_looks_like(buf, (size_t)len)) {
                if (rdv__stun_client_on_packet(&H.st, buf, (size_t)len, (struct sockaddr *)&from, fl,
                                         H.now))
                    H.accepted++;
                else
                    H.rejected++;
            }
        }
    }
    return handled;
}

/* Virtual clock: handles datagrams until the sockets are quiet. */
static void pump(void)
{
    for (int i = 0; i < 1000; i++)
        if (poll_once(QUIET_MS) == 0)
            return;
    fail_msg("sockets never quiet");
}

/* Runs discovery to its end on the virtual clock from T0. */
static const rdv__stun_client_result *run_virtual(void)
{
    const rdv__stun_client_result *r = rdv__stun_client_get_result(&H.st);
    H.real = false;
    H.now = T0;
    rdv__stun_client_start(&H.st, H.now);
    for (int i = 0; i < 10000; i++) {
        pump();
        if (r->done)
            return r;
        size_t before = H.nlog;
        int64_t next = rdv__stun_client_tick(&H.st, H.now);
        if (r->done)
            return r;
        if (H.nlog != before)
            continue; /* deliver what tick sent before time moves */
        assert_true(next != INT64_MAX);
        assert_true(next > H.now);
        H.now = next;
    }
    fail_msg("discovery did not end");
    return r;
}

/* Runs discovery on the real clock, at most timeout_ms. */
static const rdv__stun_client_result *run_real(int64_t timeout_ms)
{
    const rdv__stun_client_result *r = rdv__stun_client_get_result(&H.st);
    H.real = true;
    H.now = mono_ms();
    int64_t deadline = H.now + timeout_ms;
    rdv__stun_client_start(&H.st, H.now);
    while (!r->done && mono_ms() < deadline) {
        H.now = mono_ms();
        int64_t next = rdv__stun_client_tick(&H.st, H.now);
        if (r->done)
            break;
        int64_t w = next == INT64_MAX ? REAL_POLL_MAX_MS : next - mono_ms();
        if (w < 0)
            w = 0;
        if (w > REAL_POLL_MAX_MS)
            w = REAL_POLL_MAX_MS;
        poll_once((int)w);
    }
    assert_true(r->done);
    return r;
}

/* Initialises the engine for the given servers. */
static void engine_init(const rdv_stun_addr *servers, size_t n, int rto, bool pass_local)
{
    struct sockaddr_storage ss[RDV__STUN_CLIENT_MAX_SERVERS];
    socklen_t sl[RDV__STUN_CLIENT_MAX_SERVERS];
    for (size_t i = 0; i < n; i++)
        sl[i] = to_ss(&servers[i], &ss[i]);
    rdv__stun_client_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.servers = ss;
    cfg.server_lens = sl;
    cfg.nservers = n;
    cfg.rto_ms = rto;
    cfg.send = send_cb;
    if (H.afd >= 0)
        cfg.send_aux = send_aux_cb;
    cfg.ctx = &H;
    cfg.software = "rendezvous-test";
    if (pass_local) {
        cfg.local = (const struct sockaddr *)&H.caddr;
        cfg.local_len = H.caddr_len;
    }
    assert_int_equal(rdv__stun_client_init(&H.st, &cfg), 0);
}

/* Requests in the log to `to` (any TID) / with a given TID. */
static size_t sent_to(const rdv_stun_addr *to)
{
    size_t n = 0;
    for (size_t i = 0; i < H.nlog; i++)
        n += rdv_stun_addr_equal(&H.log[i].to, to);
    return n;
}

/* Indices in the log of the transmissions with the TID of log[first]. */
static size_t same_tid(size_t first, size_t *idx, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < H.nlog && n < cap; i++)
        if (memcmp(H.log[i].tid, H.log[first].tid, RDV_STUN_TID_BYTES) == 0)
            idx[n++] = i;
    return n;
}

static int setup(void **state)
{
    (void)state;
    memset(&H, 0, sizeof H);
    H.cfd = H.afd = -1;
    H.pub_port = PUB_PORT;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (H.cfd >= 0)
        close(H.cfd);
    if (H.afd >= 0)
        close(H.afd);
    H.cfd = H.afd = -1;
    for (int i = 0; i < MAX_FAKES; i++)
        if (H.fakes[i].used)
            fake_close(&H.fakes[i]);
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

static void expect_mapped(const rdv__stun_client_result *r, const rdv_stun_addr *want)
{
    rdv_stun_addr got;
    assert_true(r->mapped_known);
    assert_int_equal(rdv_stun_addr_from_sockaddr((const struct sockaddr *)&r->mapped,
                                                 r->mapped_len, &got),
                     0);
    assert_true(rdv_stun_addr_equal(&got, want));
}

static void print_result(const char *what, const rdv__stun_client_result *r)
{
    print_message("%s: done=%d nat=%d no_nat=%d server=%d elapsed=%lld sent=%llu ignored=%llu "
                  "error=%d '%s'\n  method: %s\n",
                  what, r->done, (int)r->nat, r->no_nat, r->server_index,
                  (long long)r->elapsed_ms, (unsigned long long)r->requests_sent,
                  (unsigned long long)r->ignored, r->error, r->error_text, r->method);
}

/* ---- rendezvousd ------------------------------------------------- */

/* Starts rendezvousd with an alternate port (and 127.0.0.2 when alt_ip)
 * and returns its primary STUN address. */
static rdv_stun_addr start_rendezvousd(bool alt_ip)
{
    char altp[16];
    snprintf(altp, sizeof altp, "%u", (unsigned)free_udp_port());
    const char *with_ip[] = {"--stun-port", "0", "--stun-alt-port", altp,
                             "--stun-alt-address", "127.0.0.2", NULL};
    const char *port_only[] = {"--stun-port", "0", "--stun-alt-port", altp, NULL};
    rdv_ts_server *srv = rdv_ts_server_start(alt_ip ? with_ip : port_only);
    assert_non_null(srv);
    assert_true(rdv_ts_server_stun_port(srv) > 0);
    return v4("127.0.0.1", (uint16_t)rdv_ts_server_stun_port(srv));
}

/* Full RFC 5780 server on loopback: the socket's own address, no NAT,
 * full cone (loopback filters nothing); then with a wildcard-bound socket
 * (no_nat through the route lookup), then without the local address (the
 * mapping test to 127.0.0.2 runs). */
static void test_rendezvousd(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    rdv_stun_addr srv = start_rendezvousd(true);

    client_open("127.0.0.1");
    engine_init(&srv, 1, 0, true);
    const rdv__stun_client_result *r = run_real(10000);
    print_result("rendezvousd", r);
    assert_int_equal(r->error, 0);
    expect_mapped(r, &H.cstun);
    assert_true(r->no_nat);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    assert_int_equal(r->filtering, RDV__STUN_CLIENT_INDEPENDENT);
    assert_int_equal(r->server_index, 0);
    assert_true(r->method[0] != '\0');
    assert_non_null(strstr(r->method, "filtering endpoint-independent"));
    assert_true(r->elapsed_ms < 2000);
    assert_true(r->ignored <= 1); /* Test III's answer after II decided */
    close(H.cfd);

    /* Wildcard socket: the local IP comes from the route lookup. */
    H.nlog = 0;
    client_open("0.0.0.0");
    engine_init(&srv, 1, 0, true);
    r = run_real(10000);
    print_result("rendezvousd, 0.0.0.0 socket", r);
    rdv_stun_addr own = v4("127.0.0.1", H.cstun.port);
    expect_mapped(r, &own);
    assert_true(r->no_nat);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    close(H.cfd);

    /* No local address: no_nat unknown, so the mapping test runs. */
    H.nlog = 0;
    client_open("127.0.0.1");
    engine_init(&srv, 1, 0, false);
    r = run_real(10000);
    print_result("rendezvousd, no local address", r);
    expect_mapped(r, &H.cstun);
    assert_false(r->no_nat);
    assert_int_equal(r->mapping, RDV__STUN_CLIENT_INDEPENDENT);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    assert_non_null(strstr(r->method, "mapping endpoint-independent (alternate IP)"));
    rdv_stun_addr alt = v4("127.0.0.2", srv.port);
    assert_int_equal(sent_to(&alt), 1);
    assert_true(r->elapsed_ms < 2000);
}

/* rendezvousd with an alternate port only: change IP is impossible, the
 * engine does not ask for it and reports the stricter possible type. */
static void test_rendezvousd_alt_port(void **state)
{
    (void)state;
    rdv_stun_addr srv = start_rendezvousd(false);
    client_open("127.0.0.1");
    engine_init(&srv, 1, 0, true);
    const rdv__stun_client_result *r = run_real(10000);
    print_result("rendezvousd alt port only", r);
    expect_mapped(r, &H.cstun);
    assert_true(r->no_nat);
    assert_int_equal(r->nat, RDV_NAT_RESTRICTED_CONE);
    assert_non_null(strstr(r->method, "server cannot change IP"));
    for (size_t i = 0; i < H.nlog; i++)
        assert_int_equal(H.log[i].change & RDV_STUN_CHANGE_IP, 0);
    assert_true(r->elapsed_ms < 2000);
}

/* A dead first server (never answers), then rendezvousd, real clock with
 * RTO 40 ms: rc = 5 transmissions to the dead one at 0, 40, 120, 280,
 * 600 ms, the move to server 2 at 760 ms, the result from server 2. */
static void test_dead_first_rendezvousd(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const int rto = 40;
    rdv_stun_addr servers[2];
    servers[1] = start_rendezvousd(true);
    fake *dead = fake_new(false);
    dead->dead = true;
    servers[0] = dead->addr[V_P];
    client_open("127.0.0.1");
    engine_init(servers, 2, rto, true);
    const rdv__stun_client_result *r = run_real(10000);
    print_result("dead + rendezvousd", r);
    assert_int_equal(r->error, 0);
    assert_int_equal(r->server_index, 1);
    expect_mapped(r, &H.cstun);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    /* What the dead socket got, and when the engine sent it. */
    assert_int_equal(dead->nrx, RDV__STUN_CLIENT_RC);
    assert_int_equal(sent_to(&servers[0]), RDV__STUN_CLIENT_RC);
    int64_t expect = rto;
    for (size_t i = 1; i < RDV__STUN_CLIENT_RC; i++, expect *= 2) {
        int64_t d = H.log[i].at - H.log[i - 1].at;
        print_message("interval %zu: %lld ms (schedule %lld)\n", i, (long long)d,
                      (long long)expect);
        /* never sooner than the schedule; how much later is the machine's
         * load, not the engine (dead_first checks the exact schedule on the
         * virtual clock) */
        assert_true(d >= expect);
    }
    size_t first2 = H.nlog;
    for (size_t i = 0; i < H.nlog && first2 == H.nlog; i++)
        if (rdv_stun_addr_equal(&H.log[i].to, &servers[1]))
            first2 = i;
    assert_true(first2 < H.nlog);
    int64_t on_dead = H.log[first2].at - H.log[0].at;
    print_message("time on the dead server: %lld ms (schedule %d)\n", (long long)on_dead,
                  19 * rto);
    assert_true(on_dead >= 19 * rto);
}

/* ---- Fake servers, virtual clock --------------------------------- */

/* Exact schedule on a dead first server, then a fake full-cone answer. */
static void test_dead_first(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    fake *dead = fake_new(false);
    dead->dead = true;
    fake *ok = fake_new(true);
    H.sim = SIM_FULL;
    rdv_stun_addr servers[2] = {dead->addr[V_P], ok->addr[V_P]};
    client_open("127.0.0.1");
    engine_init(servers, 2, 0, true);
    const rdv__stun_client_result *r = run_virtual();
    print_result("dead + fake", r);
    assert_int_equal(r->server_index, 1);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    static const int64_t at[] = {0, 250, 750, 1750, 3750};
    assert_int_equal(dead->nrx, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(dead->rx[i].at - T0, at[i]);
    assert_int_equal(H.log[5].at - T0, 3750 + 4 * 250); /* rm * RTO later */
    assert_true(rdv_stun_addr_equal(&H.log[5].to, &ok->addr[V_P]));
    assert_int_equal(r->elapsed_ms, 4750);
}

/* Test I dropped twice, answered the third time: intervals double. */
static void test_retransmit(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    fake *f = fake_new(true);
    f->drop_first = 2;
    H.sim = SIM_FULL;
    client_open("127.0.0.1");
    engine_init(&f->addr[V_P], 1, 100, true);
    const rdv__stun_client_result *r = run_virtual();
    print_result("retransmit", r);
    size_t idx[8];
    assert_int_equal(same_tid(0, idx, 8), 3);
    assert_int_equal(H.log[idx[0]].at - T0, 0);
    assert_int_equal(H.log[idx[1]].at - T0, 100);
    assert_int_equal(H.log[idx[2]].at - T0, 300);
    /* Retransmissions are the same bytes. */
    assert_int_equal(H.log[idx[1]].len, H.log[idx[0]].len);
    assert_memory_equal(H.log[idx[1]].buf, H.log[idx[0]].buf, H.log[idx[0]].len);
    rdv_stun_addr pub = v4("203.0.113.7", PUB_PORT);
    expect_mapped(r, &pub);
    assert_false(r->no_nat);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    assert_int_equal(r->elapsed_ms, 300);
}

/* Nobody answers: an error, UNKNOWN, the full schedule on each server. */
static void test_all_dead(void **state)
{
    (void)state;
    fake *a = fake_new(false), *b = fake_new(false);
    a->dead = b->dead = true;
    rdv_stun_addr servers[2] = {a->addr[V_P], b->addr[V_P]};
    client_open("127.0.0.1");
    engine_init(servers, 2, 0, true);
    const rdv__stun_client_result *r = run_virtual();
    print_result("all dead", r);
    assert_true(r->done);
    assert_false(r->running);
    assert_int_equal(r->error, RDV_ERR_TIMEOUT);
    assert_string_equal(r->error_text, "no STUN server answered (2 tried)");
    assert_int_equal(r->nat, RDV_NAT_UNKNOWN);
    assert_false(r->mapped_known);
    assert_int_equal(r->server_index, -1);
    assert_int_equal(a->nrx, 5);
    assert_int_equal(b->nrx, 5);
    assert_int_equal(r->elapsed_ms, 2 * 4750);
    assert_int_equal(rdv__stun_client_tick(&H.st, H.now + 100000), INT64_MAX);
    assert_int_equal(rdv__stun_client_refresh(&H.st, H.now), RDV_ERR_STATE);
    /* Restart works and counts on. */
    uint64_t sent = r->requests_sent;
    rdv__stun_client_start(&H.st, H.now);
    assert_true(r->running);
    assert_int_equal(r->requests_sent, sent + 1);
}

/* Feeds `buf` from `from` and expects it to be ignored. */
static void feed_ignored(const uint8_t *buf, size_t len, const rdv_stun_addr *from)
{
    struct sockaddr_storage ss;
    socklen_t sl = to_ss(from, &ss);
    uint64_t ign = rdv__stun_client_get_result(&H.st)->ignored;
    if (rdv__stun_client_on_packet(&H.st, buf, len, (struct sockaddr *)&ss, sl, H.now)) {
        char hex[2 * 64 + 1] = "";
        for (size_t i = 0; i < len && i < 64; i++)
            snprintf(hex + 2 * i, 3, "%02x", buf[i]);
        fail_msg("accepted %zu bytes from %u.%u.%u.%u:%u: %s", len, from->addr[0], from->addr[1],
                 from->addr[2], from->addr[3], (unsigned)from->port, hex);
    }
    assert_int_equal(rdv__stun_client_get_result(&H.st)->ignored, ign + 1);
}

/* Garbage, wrong TIDs, truncated, mutated, misdirected responses are
 * ignored and change nothing. */
static void test_garbage(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    fake *f = fake_new(true);
    H.sim = SIM_FULL;
    client_open("127.0.0.1");
    engine_init(&f->addr[V_P], 1, 0, true);
    H.now = T0;
    rdv__stun_client_start(&H.st, H.now);
    assert_int_equal(H.nlog, 1);
    rdv_stun_msg req;
    assert_int_equal(rdv_stun_parse(H.log[0].buf, H.log[0].len, &req), (int)H.log[0].len);
    const rdv_stun_addr *p = &f->addr[V_P];

    /* A genuine answer, built but kept back. */
    rdv_stun_success_opts o;
    memset(&o, 0, sizeof o);
    o.mapped = v4("198.51.100.1", 1234);
    o.fingerprint = true;
    uint8_t good[256];
    int glen = rdv_stun_build_binding_success(good, sizeof good, &req, &o);
    assert_true(glen > 0);

    uint8_t junk[600];
    randombytes_buf(junk, sizeof junk);
    feed_ignored(junk, sizeof junk, p);
    feed_ignored(junk, 0, p);
    feed_ignored((const uint8_t *)"hello", 5, p);
    for (int cut = 0; cut < glen; cut++)
        feed_ignored(good, (size_t)cut, p); /* truncated */
    /* One trailing byte: not one message per datagram. */
    uint8_t longer[300];
    memcpy(longer, good, (size_t)glen);
    longer[glen] = 0;
    feed_ignored(longer, (size_t)glen + 1, p);
    /* Wrong TID. */
    rdv_stun_msg other = req;
    other.tid[0] ^= 0x55;
    uint8_t wrong[256];
    int wlen = rdv_stun_build_binding_success(wrong, sizeof wrong, &other, &o);
    assert_true(wlen > 0);
    feed_ignored(wrong, (size_t)wlen, p);
    /* Right TID, wrong source (other port, other IP). */
    feed_ignored(good, (size_t)glen, &f->addr[V_ALT_PORT]);
    feed_ignored(good, (size_t)glen, &f->addr[V_ALT_IP]);
    /* A request with our TID (our own packet reflected). */
    feed_ignored(H.log[0].buf, H.log[0].len, p);
    /* Every single-bit mutation (FINGERPRINT catches them). */
    for (int i = 0; i < glen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t m[256];
            memcpy(m, good, (size_t)glen);
            m[i] ^= (uint8_t)(1u << bit);
            /* A flip in FINGERPRINT's type leaves a valid message with an
             * unknown optional attribute and no FINGERPRINT (optional in
             * responses): not garbage, not fed. */
            rdv_stun_msg pm;
            if (rdv_stun_parse(m, (size_t)glen, &pm) == glen && pm.n_unknown == 0) {
                assert_false(pm.has_fingerprint);
                continue;
            }
            feed_ignored(m, (size_t)glen, p);
        }
    }
    /* Random garbage with a STUN header and our TID. */
    for (int k = 0; k < 2000; k++) {
        uint8_t m[128];
        randombytes_buf(m, sizeof m);
        memcpy(m, good, RDV_STUN_HEADER_BYTES);
        size_t l = RDV_STUN_HEADER_BYTES + (randombytes_uniform(27) * 4);
        m[2] = (uint8_t)((l - RDV_STUN_HEADER_BYTES) >> 8);
        m[3] = (uint8_t)(l - RDV_STUN_HEADER_BYTES);
        struct sockaddr_storage ss;
        socklen_t sl = to_ss(p, &ss);
        if (rdv__stun_client_on_packet(&H.st, m, l, (struct sockaddr *)&ss, sl, H.now))
            fail_msg("random bytes accepted as a response");
    }
    const rdv__stun_client_result *r = rdv__stun_client_get_result(&H.st);
    assert_false(r->mapped_known);
    assert_true(r->running);
    assert_int_equal(r->responses, 0);

    /* Nothing above disturbed discovery: it still classifies. */
    H.nlog = 0;
    memset(&H.st, 0, sizeof H.st);
    engine_init(&f->addr[V_P], 1, 0, true);
    r = run_virtual();
    print_result("after garbage", r);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    /* Late copies after the end are ignored too. */
    feed_ignored(good, (size_t)glen, p);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
}

/* Runs a classification against one full fake behind simulated NAT `sim`. */
static const rdv__stun_client_result *classify(sim_nat sim, fake **fout)
{
    fake *f = fake_new(true);
    H.sim = sim;
    client_open("127.0.0.1");
    engine_init(&f->addr[V_P], 1, 0, true);
    if (fout)
        *fout = f;
    return run_virtual();
}

static void test_full_cone(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const rdv__stun_client_result *r = classify(SIM_FULL, NULL);
    print_result("full cone", r);
    rdv_stun_addr pub = v4("203.0.113.7", PUB_PORT);
    expect_mapped(r, &pub);
    assert_false(r->no_nat);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    assert_int_equal(r->mapping, RDV__STUN_CLIENT_INDEPENDENT);
    assert_int_equal(r->filtering, RDV__STUN_CLIENT_INDEPENDENT);
    assert_string_equal(r->method, "RFC 5780: mapping endpoint-independent (alternate IP), "
                                   "filtering endpoint-independent (change IP+port answered)");
    assert_true(r->elapsed_ms <= 1300);
}

static void test_restricted(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const rdv__stun_client_result *r = classify(SIM_RESTRICTED, NULL);
    print_result("restricted cone", r);
    assert_int_equal(r->nat, RDV_NAT_RESTRICTED_CONE);
    assert_int_equal(r->filtering, RDV__STUN_CLIENT_ADDRESS);
    assert_non_null(strstr(r->method, "filtering address-dependent (change port answered"));
    /* Filtering came first: nothing went to 127.0.0.2 before Test II
     * timed out (1250 ms on the short schedule). */
    for (size_t i = 0; i < H.nlog; i++)
        if (H.log[i].to.addr[3] == 2)
            assert_true(H.log[i].at - T0 >= 1250);
    assert_int_equal(r->elapsed_ms, 1250);
}

static void test_port_restricted(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const rdv__stun_client_result *r = classify(SIM_PORT_RESTRICTED, NULL);
    print_result("port restricted", r);
    assert_int_equal(r->nat, RDV_NAT_PORT_RESTRICTED);
    assert_int_equal(r->filtering, RDV__STUN_CLIENT_ADDRESS_PORT);
    assert_int_equal(r->mapping, RDV__STUN_CLIENT_INDEPENDENT);
    /* Short schedule of the two filtering tests: 3 sends at 0, 250, 750. */
    static const int64_t at[] = {0, 250, 750};
    size_t n_ii = 0, n_iii = 0;
    for (size_t i = 0; i < H.nlog; i++) {
        int64_t t = H.log[i].at - T0;
        if (H.log[i].change == (RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT)) {
            assert_true(n_ii < 3);
            assert_int_equal(t, at[n_ii++]);
        } else if (H.log[i].change == RDV_STUN_CHANGE_PORT) {
            assert_true(n_iii < 3);
            assert_int_equal(t, at[n_iii++]);
        }
    }
    assert_int_equal(n_ii, 3);
    assert_int_equal(n_iii, 3);
    assert_int_equal(r->elapsed_ms, 1250);
    assert_true(r->elapsed_ms < 2000);
}

static void test_symmetric(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const rdv__stun_client_result *r = classify(SIM_SYMMETRIC, NULL);
    print_result("symmetric", r);
    assert_int_equal(r->nat, RDV_NAT_SYMMETRIC);
    assert_int_equal(r->mapping, RDV__STUN_CLIENT_ADDRESS_PORT);
    assert_non_null(
        strstr(r->method, "mapping address-and-port-dependent (alternate IP, then port)"));
    rdv_stun_addr pub = v4("203.0.113.7", PUB_PORT); /* M1 stays the result */
    expect_mapped(r, &pub);
    assert_true(r->elapsed_ms < 2000);
}

/* An address-dependent mapping: the alternate IP changes the mapped
 * address, A's port then does not (RFC 5780 4.3 test III). */
static void test_address_mapping(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const rdv__stun_client_result *r = classify(SIM_ADDR_MAP, NULL);
    print_result("address-dependent mapping", r);
    assert_int_equal(r->nat, RDV_NAT_SYMMETRIC);
    assert_int_equal(r->mapping, RDV__STUN_CLIENT_ADDRESS);
    assert_string_equal(r->method, "RFC 5780: mapping address-dependent (alternate IP, then port), "
                                   "filtering address-and-port-dependent (no change request "
                                   "answered)");
}

/* Parallel mode (send_aux): the filtering tests go out on the second
 * socket at the moment the mapping test goes out on the first; the
 * mapping is decided (with the final type here, where every test answers
 * at once or never) at T0, long before the filtering tests end; the
 * final type is the one of the sequential order, restricted cone
 * included (the mapping test to A's IP must not open the filter the
 * second socket tests). */
static void parallel_case(sim_nat sim, rdv_nat_type want, int64_t want_elapsed)
{
    if (!alt_ip_usable())
        skip();
    fake *f = fake_new(true);
    H.sim = sim;
    client_open("127.0.0.1");
    H.afd = udp_bind("127.0.0.1", 0, &H.astun);
    assert_true(H.afd >= 0);
    engine_init(&f->addr[V_P], 1, 0, true);
    const rdv__stun_client_result *r = rdv__stun_client_get_result(&H.st);
    H.real = false;
    H.now = T0;
    rdv__stun_client_start(&H.st, H.now);
    int64_t decided_at = -1;
    rdv_nat_type early = RDV_NAT_UNKNOWN;
    for (int i = 0; i < 10000 && !r->done; i++) {
        pump();
        if (decided_at < 0 && r->mapping_decided) {
            decided_at = H.now;
            early = r->nat;
            if (!r->done)
                assert_non_null(strstr(r->method, "filtering being tested"));
        }
        if (r->done)
            break;
        size_t before = H.nlog;
        int64_t next = rdv__stun_client_tick(&H.st, H.now);
        if (r->done || H.nlog != before)
            continue;
        assert_true(next != INT64_MAX && next > H.now);
        H.now = next;
    }
    print_result("parallel", r);
    assert_true(r->done);
    assert_int_equal(r->nat, want);
    assert_int_equal(decided_at, T0);
    assert_int_equal(early, want);
    assert_int_equal(r->elapsed_ms, want_elapsed);
    /* Change requests only on the second socket, the rest on the first. */
    size_t changes = 0;
    for (size_t i = 0; i < H.nlog; i++) {
        assert_int_equal(H.log[i].aux, H.log[i].change != 0);
        changes += H.log[i].change != 0;
    }
    assert_true(changes >= 1);
}

static void test_parallel_full_cone(void **state)
{
    (void)state;
    parallel_case(SIM_FULL, RDV_NAT_FULL_CONE, 0);
}

static void test_parallel_restricted(void **state)
{
    (void)state;
    parallel_case(SIM_RESTRICTED, RDV_NAT_RESTRICTED_CONE, 1250);
}

static void test_parallel_port_restricted(void **state)
{
    (void)state;
    parallel_case(SIM_PORT_RESTRICTED, RDV_NAT_PORT_RESTRICTED, 1250);
}

static void test_parallel_symmetric(void **state)
{
    (void)state;
    parallel_case(SIM_SYMMETRIC, RDV_NAT_SYMMETRIC, 1250);
    assert_non_null(strstr(rdv__stun_client_get_result(&H.st)->method,
                           "mapping address-and-port-dependent (alternate IP, then port)"));
}

/* No NAT (the fake reports the socket's own address): no_nat, full cone,
 * no mapping test. */
static void test_open(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    const rdv__stun_client_result *r = classify(SIM_OPEN, NULL);
    print_result("open", r);
    expect_mapped(r, &H.cstun);
    assert_true(r->no_nat);
    assert_int_equal(r->nat, RDV_NAT_FULL_CONE);
    assert_non_null(strstr(r->method, "no NAT"));
    for (size_t i = 0; i < H.nlog; i++)
        assert_true(H.log[i].to.addr[3] == 1); /* nothing to 127.0.0.2 */
}

/* The server claims a second IP but answers change IP with 420: Test II
 * inconclusive, the stricter of the possible types. */
static void test_cannot_change(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    fake *f = fake_new(true);
    f->can_change_ip = false;
    H.sim = SIM_FULL;
    client_open("127.0.0.1");
    engine_init(&f->addr[V_P], 1, 0, true);
    const rdv__stun_client_result *r = run_virtual();
    print_result("420 to change IP", r);
    assert_int_equal(r->nat, RDV_NAT_RESTRICTED_CONE);
    assert_non_null(strstr(r->method, "server cannot change IP"));
    assert_int_equal(r->elapsed_ms, 0); /* 420 and the rest answered at once */
    assert_int_equal(r->ignored, 0);
}

/* A broken server answering change requests from where they went: the
 * answers are implausible, ignored, and the filtering tests time out. */
static void test_ignore_change(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    fake *f = fake_new(true);
    f->ignore_change = true;
    H.sim = SIM_OPEN;
    client_open("127.0.0.1");
    engine_init(&f->addr[V_P], 1, 0, true);
    const rdv__stun_client_result *r = run_virtual();
    print_result("server ignores CHANGE-REQUEST", r);
    assert_int_equal(r->nat, RDV_NAT_PORT_RESTRICTED);
    assert_int_equal(r->ignored, 6); /* 3 transmissions each of II and III */
    assert_int_equal(H.rejected, 6);
}

/* Servers without OTHER-ADDRESS: the mapping is compared across two
 * servers; symmetric is found, a cone mapping gives UNKNOWN. */
static void test_second_server(void **state)
{
    (void)state;
    fake *a = fake_new(false), *b = fake_new(false);
    a->other = b->other = false;
    H.sim = SIM_SYMMETRIC;
    rdv_stun_addr servers[2] = {a->addr[V_P], b->addr[V_P]};
    client_open("127.0.0.1");
    engine_init(servers, 2, 0, true);
    const rdv__stun_client_result *r = run_virtual();
    print_result("two servers, symmetric", r);
    assert_int_equal(r->nat, RDV_NAT_SYMMETRIC);
    assert_non_null(strstr(r->method, "second server"));
    assert_int_equal(r->server_index, 0);
    assert_int_equal(a->nrx, 1);
    assert_int_equal(b->nrx, 1);

    /* The same with a cone mapping: filtering untestable -> UNKNOWN. */
    fake_close(a);
    fake_close(b);
    close(H.cfd);
    memset(H.contacted, 0, sizeof H.contacted);
    H.ncontacted = H.ndests = 0;
    a = fake_new(false);
    b = fake_new(false);
    a->other = b->other = false;
    H.sim = SIM_FULL;
    servers[0] = a->addr[V_P];
    servers[1] = b->addr[V_P];
    client_open("127.0.0.1");
    engine_init(servers, 2, 0, true);
    r = run_virtual();
    print_result("two servers, cone", r);
    assert_int_equal(r->nat, RDV_NAT_UNKNOWN);
    assert_int_equal(r->mapping, RDV__STUN_CLIENT_INDEPENDENT);
    assert_int_equal(r->filtering, RDV__STUN_CLIENT_UNTESTED);
    assert_int_equal(r->error, 0);
    assert_true(r->mapped_known);

    /* One server without OTHER-ADDRESS: nothing to compare. */
    fake_close(b);
    close(H.cfd);
    client_open("127.0.0.1");
    engine_init(&a->addr[V_P], 1, 0, true);
    r = run_virtual();
    print_result("one plain server", r);
    assert_int_equal(r->nat, RDV_NAT_UNKNOWN);
    assert_true(r->mapped_known);
    assert_non_null(strstr(r->method, "mapping not tested"));
    assert_int_equal(r->elapsed_ms, 0);
}

/* Refresh: keeps the mapping, notices a change, counts failures. */
static void test_refresh(void **state)
{
    (void)state;
    if (!alt_ip_usable())
        skip();
    fake *f = NULL;
    assert_int_equal(rdv__stun_client_refresh(&H.st, 0), RDV_ERR_STATE); /* zeroed engine */
    const rdv__stun_client_result *r = classify(SIM_PORT_RESTRICTED, &f);
    assert_int_equal(r->nat, RDV_NAT_PORT_RESTRICTED);
    size_t before = f->nrx;
    H.now += 20000;
    assert_int_equal(rdv__stun_client_refresh(&H.st, H.now), 0);
    assert_int_equal(rdv__stun_client_refresh(&H.st, H.now), 0); /* one outstanding */
    assert_true(rdv__stun_client_tick(&H.st, H.now) > H.now);
    pump();
    assert_int_equal(f->nrx, before + 1);
    assert_int_equal(f->rx[before].via, V_P);
    assert_int_equal(r->refreshes_ok, 1);
    assert_int_equal(r->mapping_changes, 0);
    assert_int_equal(rdv__stun_client_tick(&H.st, H.now), INT64_MAX);

    /* The NAT re-mapped us. */
    H.pub_port = 41000;
    H.now += 20000;
    assert_int_equal(rdv__stun_client_refresh(&H.st, H.now), 0);
    pump();
    assert_int_equal(r->refreshes_ok, 2);
    assert_int_equal(r->mapping_changes, 1);
    rdv_stun_addr pub = v4("203.0.113.7", 41000);
    expect_mapped(r, &pub);
    assert_int_equal(r->nat, RDV_NAT_PORT_RESTRICTED);

    /* The server died: the full schedule, then a failure. */
    f->dead = true;
    H.now += 20000;
    assert_int_equal(rdv__stun_client_refresh(&H.st, H.now), 0);
    for (int i = 0; i < 10; i++) {
        pump();
        int64_t next = rdv__stun_client_tick(&H.st, H.now);
        if (next == INT64_MAX)
            break;
        H.now = next;
    }
    assert_int_equal(r->refresh_failures, 1);
    assert_int_equal(r->refreshes_ok, 2);
    expect_mapped(r, &pub);
}

/* Bad configurations are refused. */
static void test_init(void **state)
{
    (void)state;
    rdv__stun_client st;
    struct sockaddr_storage ss[RDV__STUN_CLIENT_MAX_SERVERS + 1];
    socklen_t sl[RDV__STUN_CLIENT_MAX_SERVERS + 1];
    rdv_stun_addr a = v4("127.0.0.1", 3478);
    for (int i = 0; i <= RDV__STUN_CLIENT_MAX_SERVERS; i++)
        sl[i] = to_ss(&a, &ss[i]);
    rdv__stun_client_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.servers = ss;
    cfg.server_lens = sl;
    cfg.send = send_cb;
    cfg.ctx = &H;
    assert_int_equal(rdv__stun_client_init(&st, &cfg), RDV_ERR_INVALID); /* 0 servers */
    cfg.nservers = RDV__STUN_CLIENT_MAX_SERVERS + 1;
    assert_int_equal(rdv__stun_client_init(&st, &cfg), RDV_ERR_INVALID);
    cfg.nservers = 1;
    cfg.send = NULL;
    assert_int_equal(rdv__stun_client_init(&st, &cfg), RDV_ERR_INVALID);
    cfg.send = send_cb;
    cfg.rto_ms = -1;
    assert_int_equal(rdv__stun_client_init(&st, &cfg), RDV_ERR_INVALID);
    cfg.rto_ms = 0;
    cfg.rc = RDV__STUN_CLIENT_RC_MAX + 1;
    assert_int_equal(rdv__stun_client_init(&st, &cfg), RDV_ERR_INVALID);
    cfg.rc = 0;
    ss[0].ss_family = AF_UNIX;
    assert_int_equal(rdv__stun_client_init(&st, &cfg), RDV_ERR_INVALID);
    sl[0] = to_ss(&a, &ss[0]);
    assert_int_equal(rdv__stun_client_init(&st, &cfg), 0);
    const rdv__stun_client_result *r = rdv__stun_client_get_result(&st);
    assert_false(r->running);
    assert_false(r->done);
    assert_int_equal(r->server_index, -1);
    assert_int_equal(rdv__stun_client_tick(&st, 0), INT64_MAX); /* idle */
    assert_false(rdv__stun_client_on_packet(&st, NULL, 0, NULL, 0, 0));
    assert_int_equal(rdv__stun_client_init(NULL, &cfg), RDV_ERR_INVALID);
    assert_int_equal(rdv__stun_client_init(&st, NULL), RDV_ERR_INVALID);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rendezvousd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rendezvousd_alt_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_first_rendezvousd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retransmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_cone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restricted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_restricted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symmetric, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_full_cone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_restricted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_port_restricted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_symmetric, setup, teardown),
    };
    if (argc > 1) {
        static char filter[64];
        snprintf(filter, sizeof(filter), "test_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("client_stunc", tests, NULL, NULL);
}
