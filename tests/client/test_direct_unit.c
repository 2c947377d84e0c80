/* test_direct_unit.c - client_direct_unit: unit tests of the ICE
 * candidates (client/candidates.c: RFC 8445 priorities, host gathering, the
 * PROTOCOL.md 3.2 JSON object) and the direct-path packet codec
 * (client/path_wire.c: PROBE / PROBE_ACK MACs and layout, reflection,
 * tampering, truncation, DATA over the session's e2e state, STUN
 * demultiplexing). No server, no sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "client/nat/candidates.h"
#include "client/nat/path_wire.h"
#include "client/e2e.h"
#include "client/session_hold.h"
#include "rendezvous/rendezvous.h"
#include "schema/stun.h"

#define GATHER_CAP 64

static const uint8_t SID[16] = {0x6f, 0x96, 0x19, 0xff, 0x8b, 0x86, 0x4d, 0x01,
                                0xb4, 0x2d, 0x00, 0xcf, 0x4f, 0xc9, 0x64, 0xff};
static const uint8_t TXID[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* ---- helpers ------------------------------------------------------------- */

static socklen_t mk4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &s4.sin_addr), 1);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &s4, sizeof(s4));
    return (socklen_t)sizeof(s4);
}

static socklen_t mk6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &s6.sin6_addr), 1);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &s6, sizeof(s6));
    return (socklen_t)sizeof(s6);
}

#define SA(ss) ((const struct sockaddr *)(ss))

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* "ip:port" of a candidate's address. */
static const char *text(const struct sockaddr_storage *ss, char buf[RDV__ADDR_TEXT_MAX])
{
    assert_int_equal(rdv__addr_to_text(SA(ss), buf, RDV__ADDR_TEXT_MAX), 0);
    return buf;
}

static uint16_t lp(const char *ip, unsigned rank)
{
    struct sockaddr_storage ss;
    if (strchr(ip, ':'))
        mk6(&ss, ip, 1);
    else
        mk4(&ss, ip, 1);
    return rdv__cand_host_local_pref(SA(&ss), rank);
}

/* A connected e2e pair: a = initiator, b = responder, session SID. */
static void pair_sid(rdv__e2e *a, rdv__e2e *b, const uint8_t sid[16])
{
    rdv__e2e_keypair ka, kb;
    assert_int_equal(rdv__e2e_keypair_new(&ka), 0);
    assert_int_equal(rdv__e2e_keypair_new(&kb), 0);
    assert_int_equal(rdv__e2e_init(a, true, &ka, kb.pk, sid), 0);
    assert_int_equal(rdv__e2e_init(b, false, &kb, ka.pk, sid), 0);
    rdv__e2e_keypair_wipe(&ka);
    rdv__e2e_keypair_wipe(&kb);
}

static void pair(rdv__e2e *a, rdv__e2e *b) { pair_sid(a, b, SID); }

/* MAC keys of both sides. */
typedef struct keys {
    rdv__e2e a, b;
    uint8_t a_tx[32], a_rx[32], b_tx[32], b_rx[32];
} keys;

static void make_keys(keys *k)
{
    pair(&k->a, &k->b);
    rdv__path_wire_mac_keys(&k->a, k->a_tx, k->a_rx);
    rdv__path_wire_mac_keys(&k->b, k->b_tx, k->b_rx);
}

/* ---- priorities ------------------------------------------------------------ */

static void test_priority_values(void **state)
{
    (void)state;
    assert_int_equal(rdv__cand_priority(RDV__CAND_HOST, 65535, 1), 2130706431u);
    assert_int_equal(rdv__cand_priority(RDV__CAND_SRFLX, 65535, 1), 1694498815u);
    assert_int_equal(rdv__cand_priority(RDV__CAND_RELAYED, 65535, 1), 16777215u);
    assert_int_equal(rdv__cand_priority(RDV__CAND_PRFLX, 65535, 1), 1862270975u);
    assert_int_equal(rdv__cand_priority(RDV__CAND_HOST, 0, 256), 126u << 24);
    assert_int_equal(rdv__cand_priority(RDV__CAND_RELAYED, 0, 1), 255u);
    assert_int_equal(rdv__cand_priority(RDV__CAND_HOST, 1, 2), (126u << 24) + 256u + 254u);
    /* Out-of-range components are clamped, never wrap. */
    assert_int_equal(rdv__cand_priority(RDV__CAND_HOST, 0, 1000), 126u << 24);
    assert_int_equal(rdv__cand_priority(RDV__CAND_HOST, 0, 0), (126u << 24) + 255u);
}

static void test_priority_order(void **state)
{
    (void)state;
    static const uint16_t prefs[] = {0, 1, 32768, 65535};
    for (size_t i = 0; i < sizeof(prefs) / sizeof(prefs[0]); i++) {
        for (size_t j = 0; j < sizeof(prefs) / sizeof(prefs[0]); j++) {
            /* The type dominates any local preference. */
            assert_true(rdv__cand_priority(RDV__CAND_HOST, prefs[i], 1) >
                        rdv__cand_priority(RDV__CAND_PRFLX, prefs[j], 1));
            assert_true(rdv__cand_priority(RDV__CAND_PRFLX, prefs[i], 1) >
                        rdv__cand_priority(RDV__CAND_SRFLX, prefs[j], 1));
            assert_true(rdv__cand_priority(RDV__CAND_SRFLX, prefs[i], 1) >
                        rdv__cand_priority(RDV__CAND_RELAYED, prefs[j], 1));
        }
    }
    assert_true(rdv__cand_priority(RDV__CAND_HOST, 2, 1) >
                rdv__cand_priority(RDV__CAND_HOST, 1, 1));
    assert_true(rdv__cand_priority(RDV__CAND_HOST, 1, 1) >
                rdv__cand_priority(RDV__CAND_HOST, 1, 2));
}

static void test_host_local_pref(void **state)
{
    (void)state;
    /* Global IPv6 > IPv4 > 6to4 > ULA > Teredo / IPv4 link-local > loopback. */
    assert_true(lp("2001:db8::1", 0) > lp("192.0.2.1", 0));
    assert_true(lp("2a00:1450::1", 100) > lp("192.0.2.1", 0));
    assert_true(lp("2001:db8::1", 9000) > lp("10.0.0.1", 0));
    assert_true(lp("10.0.0.1", 0) > lp("2002:c000:201::1", 0));
    assert_true(lp("2002:c000:201::1", 0) > lp("fd00::2", 0));
    assert_true(lp("fd00::2", 0) > lp("2001:0:4136:e378::1", 0));
    assert_true(lp("169.254.1.1", 0) < lp("10.0.0.1", 50));
    assert_true(lp("2001:0:4136:e378::1", 0) > lp("127.0.0.1", 0));
    assert_true(lp("2001:0:4136:e378::1", 0) > lp("::1", 0));
    /* Interfaces of one class get distinct values, earlier ones higher. */
    assert_true(lp("192.0.2.1", 0) > lp("192.0.2.2", 1));
    assert_true(lp("192.0.2.2", 1) > lp("198.51.100.1", 2));
    assert_int_equal(lp("192.0.2.1", 8191), lp("192.0.2.1", 9000));
    assert_int_equal(lp("2001:db8::1", 0), 6 << 13 | 8191);
    /* An IPv4-mapped address is IPv4. */
    assert_int_equal(lp("::ffff:192.0.2.1", 3), lp("192.0.2.1", 3));
}

/* ---- gathering ---------------------------------------------------------------- */

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr)[0] == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* Checks what every gathering must satisfy. */
static void check_gathered(const rdv__cand *c, int n, uint16_t port4, uint16_t port6,
                           bool loopback_ok)
{
    char t[RDV__ADDR_TEXT_MAX], u[RDV__ADDR_TEXT_MAX];
    for (int i = 0; i < n; i++) {
        assert_int_equal(c[i].type, RDV__CAND_HOST);
        assert_int_equal(c[i].base_len, 0);
        assert_int_equal(strlen(c[i].foundation), 8);
        assert_int_equal(c[i].priority >> 24, RDV__CAND_TYPEPREF_HOST);
        assert_true(rdv__cand_addr_usable(SA(&c[i].addr), c[i].addr_len));
        if (c[i].addr.ss_family == AF_INET) {
            assert_int_equal(c[i].addr_len, sizeof(struct sockaddr_in));
            assert_int_equal(port_of(&c[i].addr), port4);
            assert_int_not_equal(port4, 0);
        } else {
            assert_int_equal(c[i].addr.ss_family, AF_INET6);
            assert_int_equal(c[i].addr_len, sizeof(struct sockaddr_in6));
            const struct in6_addr *a = &((const struct sockaddr_in6 *)&c[i].addr)->sin6_addr;
            assert_false(IN6_IS_ADDR_LINKLOCAL(a));
            assert_false(IN6_IS_ADDR_V4MAPPED(a));
            assert_false(IN6_IS_ADDR_MULTICAST(a));
            assert_int_equal(port_of(&c[i].addr), port6);
            assert_int_not_equal(port6, 0);
        }
        if (!loopback_ok)
            assert_false(is_loopback(&c[i].addr));
        if (i > 0)
            assert_true(c[i - 1].priority > c[i].priority); /* sorted, distinct */
        for (int j = 0; j < i; j++)
            assert_string_not_equal(text(&c[i].addr, t), text(&c[j].addr, u));
    }
}

/* Is the IPv4 address `a` (network order) among the candidates? */
static bool has_v4(const rdv__cand *c, int n, const struct in_addr *a)
{
    for (int i = 0; i < n; i++)
        if (c[i].addr.ss_family == AF_INET &&
            memcmp(&((const struct sockaddr_in *)&c[i].addr)->sin_addr, a, 4) == 0)
            return true;
    return false;
}

static bool has_text(const rdv__cand *c, int n, const char *want)
{
    char t[RDV__ADDR_TEXT_MAX];
    for (int i = 0; i < n; i++)
        if (strcmp(text(&c[i].addr, t), want) == 0)
            return true;
    return false;
}

static bool system_has_v6_loopback(void)
{
    struct ifaddrs *ifs = NULL;
    assert_int_equal(getifaddrs(&ifs), 0);
    bool found = false;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 && (i->ifa_flags & IFF_UP) &&
            IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
            found = true;
    freeifaddrs(ifs);
    return found;
}

static void test_gather(void **state)
{
    (void)state;
    rdv__cand c[GATHER_CAP];
    int n = rdv__cand_gather_host(40000, 40001, false, c, GATHER_CAP);
    assert_true(n >= 0);
    print_message("gathered %d host candidates\n", n);
    for (int i = 0; i < n; i++) {
        char t[RDV__ADDR_TEXT_MAX];
        print_message("  %s priority %u foundation %s\n", text(&c[i].addr, t),
                      (unsigned)c[i].priority, c[i].foundation);
    }
    check_gathered(c, n, 40000, 40001, false);
    /* Every non-loopback IPv4 address of an UP interface is there. */
    struct ifaddrs *ifs = NULL;
    assert_int_equal(getifaddrs(&ifs), 0);
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP))
            continue;
        const struct in_addr *a = &((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if (((const uint8_t *)a)[0] == 127 || ((const uint8_t *)a)[0] == 0)
            continue;
        assert_true(has_v4(c, n, a));
    }
    freeifaddrs(ifs);

    /* port6 == 0: no IPv6 socket, no IPv6 candidates. */
    n = rdv__cand_gather_host(40000, 0, false, c, GATHER_CAP);
    assert_true(n >= 0);
    check_gathered(c, n, 40000, 0, false);
    for (int i = 0; i < n; i++)
        assert_int_equal(c[i].addr.ss_family, AF_INET);
    /* port4 == 0 likewise for IPv4. */
    n = rdv__cand_gather_host(0, 40001, true, c, GATHER_CAP);
    assert_true(n >= 0);
    check_gathered(c, n, 0, 40001, true);
    for (int i = 0; i < n; i++)
        assert_int_equal(c[i].addr.ss_family, AF_INET6);
}

static void test_gather_loopback(void **state)
{
    (void)state;
    rdv__cand c[GATHER_CAP];
    int n = rdv__cand_gather_host(40000, 40001, false, c, GATHER_CAP);
    assert_true(n >= 0);
    assert_false(has_text(c, n, "127.0.0.1:40000"));
    assert_false(has_text(c, n, "[::1]:40001"));

    n = rdv__cand_gather_host(40000, 40001, true, c, GATHER_CAP);
    assert_true(n >= 1);
    check_gathered(c, n, 40000, 40001, true);
    assert_true(has_text(c, n, "127.0.0.1:40000"));
    assert_int_equal(has_text(c, n, "[::1]:40001"), system_has_v6_loopback());
    for (int i = 0; i < n; i++) {
        if (!is_loopback(&c[i].addr))
            continue;
        char t[RDV__ADDR_TEXT_MAX];
        text(&c[i].addr, t);
        assert_true(strcmp(t, "127.0.0.1:40000") == 0 || strcmp(t, "[::1]:40001") == 0);
        assert_true(i == n - 1 || is_loopback(&c[i + 1].addr)); /* loopback ranks last */
    }
    /* ::1 only with an IPv6 port. */
    n = rdv__cand_gather_host(40000, 0, true, c, GATHER_CAP);
    assert_true(has_text(c, n, "127.0.0.1:40000"));
    assert_false(has_text(c, n, "[::1]:0"));
    for (int i = 0; i < n; i++)
        assert_int_equal(c[i].addr.ss_family, AF_INET);
}

static void test_gather_bounds(void **state)
{
    (void)state;
    rdv__cand c[2];
    int n = rdv__cand_gather_host(40000, 40001, true, c, 1);
    assert_int_equal(n, 1); /* at least 127.0.0.1 exists; bounded by cap */
    assert_int_equal(rdv__cand_gather_host(40000, 40001, true, NULL, 0), 0);
    assert_int_equal(rdv__cand_gather_host(40000, 40001, true, NULL, 3), RDV_ERR_INVALID);
    assert_int_equal(rdv__cand_gather_host(0, 0, true, c, 2), 0);
}

/* ---- make, text, sort ----------------------------------------------------------- */

static void test_make(void **state)
{
    (void)state;
    struct sockaddr_storage a, b, m;
    socklen_t al = mk4(&a, "198.51.100.7", 5000), bl = mk4(&b, "192.0.2.2", 4000);
    rdv__cand s1, s2, h, h2, p;
    assert_int_equal(rdv__cand_make(RDV__CAND_SRFLX, SA(&a), al, SA(&b), bl, 65535, &s1), 0);
    assert_int_equal(s1.priority, 1694498815u);
    assert_int_equal(s1.base_len, sizeof(struct sockaddr_in));
    assert_int_equal(port_of(&s1.base), 4000);
    /* Same type and base IP: same foundation, whatever the address. */
    struct sockaddr_storage a2;
    socklen_t a2l = mk4(&a2, "203.0.113.9", 6000);
    assert_int_equal(rdv__cand_make(RDV__CAND_SRFLX, SA(&a2), a2l, SA(&b), bl, 1, &s2), 0);
    assert_string_equal(s1.foundation, s2.foundation);
    /* Another type or another base: another foundation. */
    assert_int_equal(rdv__cand_make(RDV__CAND_PRFLX, SA(&a), al, SA(&b), bl, 1, &p), 0);
    assert_string_not_equal(s1.foundation, p.foundation);
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, SA(&b), bl, NULL, 0, 1, &h), 0);
    assert_string_not_equal(h.foundation, s1.foundation);
    assert_int_equal(h.base_len, 0);
    /* Host foundation depends on the IP only (not the port). */
    struct sockaddr_storage b2;
    socklen_t b2l = mk4(&b2, "192.0.2.2", 9999);
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, SA(&b2), b2l, NULL, 0, 7, &h2), 0);
    assert_string_equal(h.foundation, h2.foundation);
    /* IPv4-mapped IPv6 becomes IPv4. */
    socklen_t ml = mk6(&m, "::ffff:198.51.100.7", 5000);
    assert_int_equal(rdv__cand_make(RDV__CAND_PRFLX, SA(&m), ml, NULL, 0, 1, &p), 0);
    assert_int_equal(p.addr.ss_family, AF_INET);
    assert_int_equal(p.addr_len, sizeof(struct sockaddr_in));
    char t[RDV__ADDR_TEXT_MAX];
    assert_string_equal(text(&p.addr, t), "198.51.100.7:5000");
    /* Invalid input. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, (struct sockaddr *)&un, sizeof(un), NULL, 0,
                                    1, &p),
                     RDV_ERR_INVALID);
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, SA(&a), al - 1, NULL, 0, 1, &p),
                     RDV_ERR_INVALID);
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, SA(&a), al, SA(&b), 3, 1, &p),
                     RDV_ERR_INVALID);
    assert_int_equal(rdv__cand_make((rdv__cand_type)9, SA(&a), al, NULL, 0, 1, &p),
                     RDV_ERR_INVALID);
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, NULL, 0, NULL, 0, 1, &p), RDV_ERR_INVALID);
    assert_int_equal(p.addr_len, 0);
}

static void test_addr_text_and_names(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char buf[RDV__ADDR_TEXT_MAX];
    mk4(&ss, "192.0.2.1", 80);
    assert_int_equal(rdv__addr_to_text(SA(&ss), buf, sizeof(buf)), 0);
    assert_string_equal(buf, "192.0.2.1:80");
    mk6(&ss, "2001:db8::1", 443);
    ((struct sockaddr_in6 *)&ss)->sin6_scope_id = 2; /* never printed */
    assert_int_equal(rdv__addr_to_text(SA(&ss), buf, sizeof(buf)), 0);
    assert_string_equal(buf, "[2001:db8::1]:443");
    mk6(&ss, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535);
    assert_int_equal(rdv__addr_to_text(SA(&ss), buf, sizeof(buf)), 0);
    assert_true(strlen(buf) < RDV__ADDR_TEXT_MAX);
    char small[8];
    assert_int_equal(rdv__addr_to_text(SA(&ss), small, sizeof(small)), RDV_ERR_INVALID);
    assert_string_equal(small, "");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(rdv__addr_to_text((struct sockaddr *)&un, buf, sizeof(buf)),
                     RDV_ERR_INVALID);

    assert_string_equal(rdv__cand_type_name(RDV__CAND_HOST), "host");
    assert_string_equal(rdv__cand_type_name(RDV__CAND_SRFLX), "serverReflexive");
    assert_string_equal(rdv__cand_type_name(RDV__CAND_PRFLX), "peerReflexive");
    assert_string_equal(rdv__cand_type_name(RDV__CAND_RELAYED), "relayed");
    rdv__cand_type t;
    assert_int_equal(rdv__cand_type_from_name("peerReflexive", &t), 0);
    assert_int_equal(t, RDV__CAND_PRFLX);
    assert_int_equal(rdv__cand_type_from_name("prflx", &t), RDV_ERR_FORMAT);
    assert_int_equal(rdv__cand_type_from_name(NULL, &t), RDV_ERR_FORMAT);
}

static void test_sort(void **state)
{
    (void)state;
    static const uint32_t prio[] = {5, 100, 7, 100, 4000000000u, 0};
    enum { N = sizeof(prio) / sizeof(prio[0]) };
    rdv__cand c[N];
    memset(c, 0, sizeof(c));
    for (size_t i = 0; i < N; i++) {
        c[i].priority = prio[i];
        snprintf(c[i].foundation, sizeof(c[i].foundation), "%zu", i);
    }
    rdv__cand_sort(c, N);
    static const uint32_t want[] = {4000000000u, 100, 100, 7, 5, 0};
    for (size_t i = 0; i < N; i++)
        assert_int_equal(c[i].priority, want[i]);
    assert_string_equal(c[1].foundation, "1"); /* stable */
    assert_string_equal(c[2].foundation, "3");
    rdv__cand_sort(c, 0);
}

/* ---- JSON ---------------------------------------------------------------------- */

static void assert_same_cand(const rdv__cand *x, const rdv__cand *y)
{
    char t1[RDV__ADDR_TEXT_MAX], t2[RDV__ADDR_TEXT_MAX];
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->priority, y->priority);
    assert_string_equal(x->foundation, y->foundation);
    assert_int_equal(x->addr_len, y->addr_len);
    assert_string_equal(text(&x->addr, t1), text(&y->addr, t2));
    assert_int_equal(x->base_len, y->base_len);
    if (x->base_len)
        assert_string_equal(text(&x->base, t1), text(&y->base, t2));
    assert_int_equal(x->port_mapped, y->port_mapped);
}

/* A port-mapped candidate (client/nat/portmap.h) carries "portMapped":
 * true; "false" reads as not mapped; absent is not mapped. */
static void test_json_port_mapped(void **state)
{
    (void)state;
    struct sockaddr_storage a, b;
    socklen_t al = mk4(&a, "203.0.113.9", 40001), bl = mk4(&b, "10.0.0.2", 40001);
    rdv__cand c, back;
    assert_int_equal(rdv__cand_make(RDV__CAND_SRFLX, SA(&a), al, SA(&b), bl, 65535, &c), 0);
    json_t *o = rdv__cand_to_json(&c);
    assert_non_null(o);
    assert_null(json_object_get(o, "portMapped")); /* not mapped: not sent */
    assert_int_equal(rdv__cand_from_json(o, &back), 0);
    assert_false(back.port_mapped);
    json_decref(o);
    c.port_mapped = true;
    o = rdv__cand_to_json(&c);
    assert_non_null(o);
    assert_true(json_is_true(json_object_get(o, "portMapped")));
    assert_string_equal(json_string_value(json_object_get(o, "type")), "serverReflexive");
    assert_int_equal(rdv__cand_from_json(o, &back), 0);
    assert_true(back.port_mapped);
    assert_same_cand(&c, &back);
    json_object_set_new(o, "portMapped", json_false());
    assert_int_equal(rdv__cand_from_json(o, &back), 0);
    assert_false(back.port_mapped);
    json_decref(o);
}

static void test_json_roundtrip_v4(void **state)
{
    (void)state;
    struct sockaddr_storage a;
    socklen_t al = mk4(&a, "192.0.2.7", 40000);
    rdv__cand c, back;
    assert_int_equal(rdv__cand_make(RDV__CAND_HOST, SA(&a), al, NULL, 0, 65535, &c), 0);
    json_t *o = rdv__cand_to_json(&c);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "ip")), "192.0.2.7");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 40000);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "host");
    assert_int_equal(json_integer_value(json_object_get(o, "priority")), 2130706431);
    assert_string_equal(json_string_value(json_object_get(o, "foundation")), c.foundation);
    assert_null(json_object_get(o, "relatedIP"));
    assert_null(json_object_get(o, "relatedPort"));
    assert_int_equal(json_object_size(o), 5);
    assert_int_equal(rdv__cand_from_json(o, &back), 0);
    assert_same_cand(&c, &back);
    json_decref(o);

    /* srflx with an IPv4 base, through text. */
    struct sockaddr_storage b;
    socklen_t bl = mk4(&b, "10.1.2.3", 4000);
    mk4(&a, "203.0.113.5", 62000);
    assert_int_equal(rdv__cand_make(RDV__CAND_SRFLX, SA(&a), al, SA(&b), bl, 65535, &c), 0);
    o = rdv__cand_to_json(&c);
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(s);
    char want[256];
    snprintf(want, sizeof(want),
             "{\"foundation\":\"%s\",\"ip\":\"203.0.113.5\",\"port\":62000,\"priority\":"
             "1694498815,\"relatedIP\":\"10.1.2.3\",\"relatedPort\":4000,\"type\":"
             "\"serverReflexive\"}",
             c.foundation);
    assert_string_equal(s, want);
    json_t *parsed = json_loads(s, 0, NULL);
    free(s);
    json_decref(o);
    assert_non_null(parsed);
    assert_int_equal(rdv__cand_from_json(parsed, &back), 0);
    assert_same_cand(&c, &back);
    json_decref(parsed);
}

static void test_json_roundtrip_v6(void **state)
{
    (void)state;
    struct sockaddr_storage a, b;
    socklen_t al = mk6(&a, "2001:db8::5", 5000), bl = mk6(&b, "fd00::2", 4000);
    ((struct sockaddr_in6 *)&a)->sin6_scope_id = 7; /* no zone in the text */
    rdv__cand c, back;
    assert_int_equal(rdv__cand_make(RDV__CAND_PRFLX, SA(&a), al, SA(&b), bl, 1234, &c), 0);
    json_t *o = rdv__cand_to_json(&c);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "ip")), "2001:db8::5");
    assert_string_equal(json_string_value(json_object_get(o, "type")), "peerReflexive");
    assert_string_equal(json_string_value(json_object_get(o, "relatedIP")), "fd00::2");
    assert_int_equal(json_integer_value(json_object_get(o, "relatedPort")), 4000);
    assert_int_equal(rdv__cand_from_json(o, &back), 0);
    assert_same_cand(&c, &back);
    assert_int_equal(back.addr.ss_family, AF_INET6);
    json_decref(o);

    /* relayed v6 without base; received without foundation: one is made. */
    json_t *r = json_pack("{s:s, s:i, s:s, s:I}", "ip", "2001:DB8:0:0::9", "port", 3478,
                          "type", "relayed", "priority", (json_int_t)16777215);
    assert_non_null(r);
    assert_int_equal(rdv__cand_from_json(r, &back), 0);
    assert_int_equal(back.type, RDV__CAND_RELAYED);
    assert_int_equal(back.priority, 16777215u);
    assert_int_equal(strlen(back.foundation), 8);
    char t[RDV__ADDR_TEXT_MAX];
    assert_string_equal(text(&back.addr, t), "[2001:db8::9]:3478");
    json_decref(r);

    /* Boundaries accepted; IPv4-mapped IPv6 read as IPv4; relatedIP 0.0.0.0
     * means no base; unknown members ignored; a real (1.0) integer ok. */
    json_t *e = json_loads("{\"ip\":\"::ffff:192.0.2.9\",\"port\":65535,\"type\":\"host\","
                           "\"priority\":4294967295,\"relatedIP\":\"0.0.0.0\",\"relatedPort\":0,"
                           "\"foundation\":\"a+/Z9\",\"extra\":[1]}",
                           0, NULL);
    assert_non_null(e);
    assert_int_equal(rdv__cand_from_json(e, &back), 0);
    assert_int_equal(back.priority, 4294967295u);
    assert_int_equal(back.base_len, 0);
    assert_string_equal(back.foundation, "a+/Z9");
    assert_string_equal(text(&back.addr, t), "192.0.2.9:65535");
    json_decref(e);
    e = json_loads("{\"ip\":\"127.0.0.1\",\"port\":1.0,\"type\":\"host\",\"priority\":0}", 0,
                   NULL);
    assert_non_null(e);
    assert_int_equal(rdv__cand_from_json(e, &back), 0);
    assert_int_equal(back.priority, 0);
    json_decref(e);

    /* to_json refuses an invalid candidate. */
    rdv__cand bad = c;
    bad.type = (rdv__cand_type)42;
    assert_null(rdv__cand_to_json(&bad));
    bad = c;
    bad.addr.ss_family = AF_UNIX;
    assert_null(rdv__cand_to_json(&bad));
}

static void test_from_json_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* bad ip */
        "{\"ip\":\"1.2.3\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"example.com\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"1.2.3.4:5\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"[::1]\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"fe80::1%eth0\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"1.2.3.256\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"01.2.3.4\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"1.2.3.4\\u0000x\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"0000:0000:0000:0000:0000:0000:0000:0000:0001\",\"port\":1,\"type\":\"host\","
        "\"priority\":1}",
        /* addresses a peer must not make us probe */
        "{\"ip\":\"0.0.0.0\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"0.1.2.3\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"::\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"::ffff:0.0.0.0\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"224.0.0.1\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"239.255.255.250\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"255.255.255.255\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"::ffff:224.0.0.1\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"ff02::1\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"fe80::1\",\"port\":1,\"type\":\"host\",\"priority\":1}",
        /* port */
        "{\"ip\":\"192.0.2.1\",\"port\":0,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":70000,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":65536,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":-1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1.5,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":\"80\",\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":true,\"type\":\"host\",\"priority\":1}",
        /* type */
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"srflx\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"Host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":0,\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":null,\"priority\":1}",
        /* priority */
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":-1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":4294967296}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":\"1\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":1.5}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":1e300}",
        /* missing fields */
        "{\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"type\":\"host\",\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"priority\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\"}",
        "{}",
        /* wrong JSON types */
        "{\"ip\":3221225985,\"port\":1,\"type\":\"host\",\"priority\":1}",
        "{\"ip\":[\"192.0.2.1\"],\"port\":1,\"type\":\"host\",\"priority\":1}",
        "[\"192.0.2.1\",1,\"host\",1]",
        "\"192.0.2.1\"",
        /* optional members, when present, must be right */
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":1,\"foundation\":\"\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":1,\"foundation\":\"a b\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":1,\"foundation\":5}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"host\",\"priority\":1,"
        "\"foundation\":\"123456789012345678901234567890123\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"srflx\",\"priority\":1,\"relatedIP\":\"x\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"relatedIP\":\"x\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"relatedIP\":7}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"relatedIP\":\"10.0.0.1\",\"relatedPort\":70000}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"relatedIP\":\"10.0.0.1\",\"relatedPort\":\"1\"}",
        /* portMapped is a boolean */
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"portMapped\":1}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"portMapped\":\"true\"}",
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\",\"priority\":1,"
        "\"portMapped\":null}",
    };
    rdv__cand c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t jerr;
        json_t *o = json_loads(bad[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (o == NULL)
            fail_msg("test JSON %zu does not parse: %s", i, jerr.text);
        memset(&c, 0xAA, sizeof(c));
        int rc = rdv__cand_from_json(o, &c);
        if (rc != RDV_ERR_FORMAT)
            fail_msg("accepted (rc %d): %s", rc, bad[i]);
        assert_int_equal(c.addr_len, 0); /* zeroed */
        json_decref(o);
    }
    assert_int_equal(rdv__cand_from_json(NULL, &c), RDV_ERR_FORMAT);
    /* The baseline of those cases is accepted (so each case tests one thing). */
    json_t *ok = json_loads("{\"ip\":\"192.0.2.1\",\"port\":1,\"type\":\"serverReflexive\","
                            "\"priority\":1,\"relatedIP\":\"10.0.0.1\",\"relatedPort\":1,"
                            "\"foundation\":\"12345678901234567890123456789012\","
                            "\"portMapped\":true}",
                            0, NULL);
    assert_non_null(ok);
    assert_int_equal(rdv__cand_from_json(ok, &c), 0);
    json_decref(ok);
}

/* rdv__addr_ip_equal: the IP only (the same-NAT test of the decision). */
static void test_addr_ip_equal(void **state)
{
    (void)state;
    struct sockaddr_storage a, b, c, m, x;
    mk4(&a, "203.0.113.11", 4000);
    mk4(&b, "203.0.113.11", 5000);
    mk4(&c, "203.0.113.12", 4000);
    mk6(&m, "::ffff:203.0.113.11", 6000);
    mk6(&x, "2001:db8::11", 4000);
    assert_true(rdv__addr_ip_equal(&a, &b));
    assert_true(rdv__addr_ip_equal(&a, &m));
    assert_true(rdv__addr_ip_equal(&m, &b));
    assert_false(rdv__addr_ip_equal(&a, &c));
    assert_false(rdv__addr_ip_equal(&a, &x));
    assert_true(rdv__addr_ip_equal(&x, &x));
    struct sockaddr_storage u;
    memset(&u, 0, sizeof(u));
    u.ss_family = AF_UNIX;
    assert_false(rdv__addr_ip_equal(&u, &u));
}

static void test_addr_usable(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t l;
    static const char *const good[] = {"192.0.2.1", "127.0.0.1", "169.254.1.1",
                                       "223.255.255.255", "::1", "2001:db8::1", "fd00::2",
                                       "::ffff:192.0.2.1"};
    static const char *const badv[] = {"0.0.0.0",   "0.255.0.1",       "224.0.0.1",
                                       "240.0.0.1", "255.255.255.255", "::",
                                       "ff02::1",   "fe80::1",         "febf::1",
                                       "::ffff:0.0.0.0"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        l = strchr(good[i], ':') ? mk6(&ss, good[i], 9) : mk4(&ss, good[i], 9);
        if (!rdv__cand_addr_usable(SA(&ss), l))
            fail_msg("refused %s", good[i]);
        l = strchr(good[i], ':') ? mk6(&ss, good[i], 0) : mk4(&ss, good[i], 0);
        assert_false(rdv__cand_addr_usable(SA(&ss), l)); /* port 0 */
    }
    for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
        l = strchr(badv[i], ':') ? mk6(&ss, badv[i], 9) : mk4(&ss, badv[i], 9);
        if (rdv__cand_addr_usable(SA(&ss), l))
            fail_msg("accepted %s", badv[i]);
    }
    assert_false(rdv__cand_addr_usable(NULL, 0));
}

/* Global IPv6 (the decision's "both sides have one"): 2000::/3 but not
 * Teredo nor 6to4; never IPv4, ULA, link-local, loopback, multicast. */
static void test_addr_global_v6(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    static const char *const global[] = {"2001:db8::1", "2a00:1450::1", "3fff:ffff::1",
                                         "2001:1::1"};
    static const char *const other[] = {"::1",      "fd00::2",    "fc00::1", "fe80::1",
                                        "ff02::1",  "2001::1",    "2001:0:1::1",
                                        "2002:c000:201::1", "4000::1", "::",
                                        "::ffff:192.0.2.1", "1fff::1"};
    for (size_t i = 0; i < sizeof(global) / sizeof(global[0]); i++) {
        mk6(&ss, global[i], 9);
        if (!rdv__cand_addr_global_v6(&ss))
            fail_msg("not global: %s", global[i]);
    }
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        mk6(&ss, other[i], 9);
        if (rdv__cand_addr_global_v6(&ss))
            fail_msg("global: %s", other[i]);
    }
    mk4(&ss, "192.0.2.1", 9);
    assert_false(rdv__cand_addr_global_v6(&ss));
    assert_false(rdv__cand_addr_global_v6(NULL));
}

/* ---- dwire: probes and acks ------------------------------------------------------ */

static void test_mac_keys(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    assert_memory_equal(k.a_tx, k.b_rx, 32);
    assert_memory_equal(k.a_rx, k.b_tx, 32);
    assert_memory_not_equal(k.a_tx, k.a_rx, 32);
    /* The documented derivation, and never the e2e key itself. */
    uint8_t want[32];
    const char *ctx = "rendezvous.v1/probe";
    assert_int_equal(crypto_generichash(want, 32, (const uint8_t *)ctx, strlen(ctx), k.a.tx, 32),
                     0);
    assert_memory_equal(k.a_tx, want, 32);
    assert_memory_not_equal(k.a_tx, k.a.tx, 32);
}

static void test_probe_roundtrip(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    uint8_t pkt[RDV__PATH_WIRE_PROBE_BYTES];
    assert_int_equal(rdv__path_wire_probe(pkt, SID, TXID, 0xFF, k.a_tx), 46);
    /* Layout. */
    assert_int_equal(pkt[0], 0xD1);
    assert_memory_equal(pkt + 1, SID, 16);
    assert_memory_equal(pkt + 17, TXID, 12);
    assert_int_equal(pkt[29], RDV__PATH_WIRE_F_KNOWN); /* unknown flag bits sent as 0 */
    uint8_t mac[16];
    assert_int_equal(crypto_generichash(mac, 16, pkt, 30, k.a_tx, 32), 0);
    assert_memory_equal(pkt + 30, mac, 16);

    assert_int_equal(rdv__path_wire_kind(pkt, sizeof(pkt)), RDV__PATH_WIRE_PROBE);
    uint8_t sid[16];
    assert_int_equal(rdv__path_wire_sid(pkt, sizeof(pkt), sid), 0);
    assert_memory_equal(sid, SID, 16);
    rdv__path_wire_probe_t p;
    assert_int_equal(rdv__path_wire_parse_probe(pkt, sizeof(pkt), k.b_rx, &p), 0);
    assert_int_equal(p.kind, RDV__PATH_WIRE_PROBE);
    assert_memory_equal(p.sid, SID, 16);
    assert_memory_equal(p.txid, TXID, 12);
    assert_int_equal(p.flags, RDV__PATH_WIRE_F_KNOWN);
    assert_int_equal(p.observed_len, 0);
    /* Flags as given; the other direction. */
    assert_int_equal(rdv__path_wire_probe(pkt, SID, TXID, RDV__PATH_WIRE_F_NOMINATE, k.b_tx), 46);
    assert_int_equal(rdv__path_wire_parse_probe(pkt, sizeof(pkt), k.a_rx, &p), 0);
    assert_int_equal(p.flags, RDV__PATH_WIRE_F_NOMINATE);
    /* Unknown flag bits on receive are ignored (masked off), MAC still
     * over the raw byte. */
    pkt[29] = 0x80 | RDV__PATH_WIRE_F_INITIATOR;
    assert_int_equal(crypto_generichash(pkt + 30, 16, pkt, 30, k.b_tx, 32), 0);
    assert_int_equal(rdv__path_wire_parse_probe(pkt, sizeof(pkt), k.a_rx, &p), 0);
    assert_int_equal(p.flags, RDV__PATH_WIRE_F_INITIATOR);
    /* A probe is not an ack. */
    assert_int_equal(rdv__path_wire_parse_ack(pkt, sizeof(pkt), k.a_rx, &p), RDV_ERR_FORMAT);
}

static void ack_roundtrip(const keys *k, const struct sockaddr_storage *obs, socklen_t ol,
                          const char *want_text, int want_family)
{
    uint8_t pkt[RDV__PATH_WIRE_ACK_BYTES];
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, RDV__PATH_WIRE_F_INITIATOR, SA(obs), ol, k->b_tx),
                     65);
    assert_int_equal(pkt[0], 0xD2);
    assert_memory_equal(pkt + 1, SID, 16);
    assert_memory_equal(pkt + 17, TXID, 12);
    assert_int_equal(pkt[29], RDV__PATH_WIRE_F_INITIATOR);
    assert_int_equal(pkt[30], want_family);
    uint8_t mac[16];
    assert_int_equal(crypto_generichash(mac, 16, pkt, 49, k->b_tx, 32), 0);
    assert_memory_equal(pkt + 49, mac, 16);
    assert_int_equal(rdv__path_wire_kind(pkt, sizeof(pkt)), RDV__PATH_WIRE_ACK);

    rdv__path_wire_probe_t p;
    assert_int_equal(rdv__path_wire_parse_ack(pkt, sizeof(pkt), k->a_rx, &p), 0);
    assert_int_equal(p.kind, RDV__PATH_WIRE_ACK);
    assert_memory_equal(p.sid, SID, 16);
    assert_memory_equal(p.txid, TXID, 12);
    assert_int_equal(p.flags, RDV__PATH_WIRE_F_INITIATOR);
    char t[RDV__ADDR_TEXT_MAX];
    assert_string_equal(text(&p.observed, t), want_text);
    assert_int_equal(p.observed_len, want_family == 4 ? sizeof(struct sockaddr_in)
                                                      : sizeof(struct sockaddr_in6));
    /* An ack is not a probe. */
    assert_int_equal(rdv__path_wire_parse_probe(pkt, 46, k->a_rx, &p), RDV_ERR_FORMAT);
}

static void test_ack_roundtrip(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    struct sockaddr_storage ss;
    socklen_t l = mk4(&ss, "203.0.113.5", 0x1234);
    ack_roundtrip(&k, &ss, l, "203.0.113.5:4660", 4);
    /* The exact bytes: port big endian, IPv4 then 12 zero bytes. */
    uint8_t pkt[RDV__PATH_WIRE_ACK_BYTES];
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, 0, SA(&ss), l, k.b_tx), 65);
    static const uint8_t addr4[19] = {4, 0x12, 0x34, 203, 0, 113, 5};
    assert_memory_equal(pkt + 30, addr4, sizeof(addr4));

    l = mk6(&ss, "2001:db8::abcd", 65535);
    ack_roundtrip(&k, &ss, l, "[2001:db8::abcd]:65535", 6);
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, 0, SA(&ss), l, k.b_tx), 65);
    assert_int_equal(pkt[31], 0xFF);
    assert_int_equal(pkt[32], 0xFF);
    assert_int_equal(pkt[33], 0x20);
    assert_int_equal(pkt[48], 0xcd);

    l = mk6(&ss, "::ffff:198.51.100.1", 1);
    ack_roundtrip(&k, &ss, l, "198.51.100.1:1", 4);

    /* Not an IP address, short, or port 0: nothing to ack with. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, 0, (struct sockaddr *)&un, sizeof(un), k.b_tx),
                     0);
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, 0, NULL, 0, k.b_tx), 0);
    l = mk4(&ss, "203.0.113.5", 1);
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, 0, SA(&ss), l - 1, k.b_tx), 0);
    l = mk4(&ss, "203.0.113.5", 0);
    assert_int_equal(rdv__path_wire_ack(pkt, SID, TXID, 0, SA(&ss), l, k.b_tx), 0);
}

/* Rewrites the MAC of an ack after editing its body (a valid sender). */
static void remac_ack(uint8_t pkt[RDV__PATH_WIRE_ACK_BYTES], const uint8_t key[32])
{
    assert_int_equal(crypto_generichash(pkt + 49, 16, pkt, 49, key, 32), 0);
}

static void test_ack_bad_body(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    struct sockaddr_storage ss;
    socklen_t l = mk4(&ss, "203.0.113.5", 9);
    uint8_t pkt[RDV__PATH_WIRE_ACK_BYTES], orig[RDV__PATH_WIRE_ACK_BYTES];
    assert_int_equal(rdv__path_wire_ack(orig, SID, TXID, 0, SA(&ss), l, k.a_tx), 65);
    rdv__path_wire_probe_t p;
    /* Authenticated but malformed: FORMAT. */
    memcpy(pkt, orig, sizeof(pkt));
    pkt[30] = 5; /* family */
    remac_ack(pkt, k.a_tx);
    assert_int_equal(rdv__path_wire_parse_ack(pkt, sizeof(pkt), k.b_rx, &p), RDV_ERR_FORMAT);
    memcpy(pkt, orig, sizeof(pkt));
    pkt[40] = 1; /* padding after the IPv4 address */
    remac_ack(pkt, k.a_tx);
    assert_int_equal(rdv__path_wire_parse_ack(pkt, sizeof(pkt), k.b_rx, &p), RDV_ERR_FORMAT);
    memcpy(pkt, orig, sizeof(pkt));
    pkt[31] = pkt[32] = 0; /* port 0 */
    remac_ack(pkt, k.a_tx);
    assert_int_equal(rdv__path_wire_parse_ack(pkt, sizeof(pkt), k.b_rx, &p), RDV_ERR_FORMAT);
    assert_int_equal(p.kind, 0); /* zeroed on error */
    memcpy(pkt, orig, sizeof(pkt));
    remac_ack(pkt, k.a_tx);
    assert_int_equal(rdv__path_wire_parse_ack(pkt, sizeof(pkt), k.b_rx, &p), 0);
}

/* Every single-bit flip of pkt[0..len) is refused by `parse`. */
static void flip_all(const uint8_t *orig, size_t len, const uint8_t key[32],
                     int (*parse)(const uint8_t *, size_t, const uint8_t *, rdv__path_wire_probe_t *))
{
    uint8_t *pkt = malloc(len);
    assert_non_null(pkt);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(pkt, orig, len);
        pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rdv__path_wire_probe_t p;
        int rc = parse(pkt, len, key, &p);
        if (rc != RDV_ERR_DECRYPT && rc != RDV_ERR_FORMAT)
            fail_msg("bit %zu flipped: rc %d", bit, rc);
        if (bit < 8)
            assert_int_equal(rc, RDV_ERR_FORMAT); /* the kind byte */
    }
    memcpy(pkt, orig, len);
    rdv__path_wire_probe_t p;
    assert_int_equal(parse(pkt, len, key, &p), 0);
    free(pkt);
}

static void test_bit_flips(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    uint8_t probe[RDV__PATH_WIRE_PROBE_BYTES], ack[RDV__PATH_WIRE_ACK_BYTES];
    assert_int_equal(rdv__path_wire_probe(probe, SID, TXID, 1, k.a_tx), 46);
    flip_all(probe, sizeof(probe), k.b_rx, rdv__path_wire_parse_probe);
    struct sockaddr_storage ss;
    socklen_t l = mk6(&ss, "2001:db8::1", 3478);
    assert_int_equal(rdv__path_wire_ack(ack, SID, TXID, 2, SA(&ss), l, k.a_tx), 65);
    flip_all(ack, sizeof(ack), k.b_rx, rdv__path_wire_parse_ack);
    l = mk4(&ss, "192.0.2.1", 3478);
    assert_int_equal(rdv__path_wire_ack(ack, SID, TXID, 2, SA(&ss), l, k.a_tx), 65);
    flip_all(ack, sizeof(ack), k.b_rx, rdv__path_wire_parse_ack);
}

static void test_reflection(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    rdv__path_wire_probe_t p;
    uint8_t probe[RDV__PATH_WIRE_PROBE_BYTES], ack[RDV__PATH_WIRE_ACK_BYTES];
    /* A's probe: B accepts it, A itself (reflected back) does not. */
    assert_int_equal(rdv__path_wire_probe(probe, SID, TXID, 1, k.a_tx), 46);
    assert_int_equal(rdv__path_wire_parse_probe(probe, sizeof(probe), k.b_rx, &p), 0);
    assert_int_equal(rdv__path_wire_parse_probe(probe, sizeof(probe), k.a_rx, &p), RDV_ERR_DECRYPT);
    assert_int_equal(rdv__path_wire_parse_probe(probe, sizeof(probe), k.a_tx, &p), 0); /* sanity */
    /* Same for acks. */
    struct sockaddr_storage ss;
    socklen_t l = mk4(&ss, "192.0.2.1", 1);
    assert_int_equal(rdv__path_wire_ack(ack, SID, TXID, 0, SA(&ss), l, k.b_tx), 65);
    assert_int_equal(rdv__path_wire_parse_ack(ack, sizeof(ack), k.a_rx, &p), 0);
    assert_int_equal(rdv__path_wire_parse_ack(ack, sizeof(ack), k.b_rx, &p), RDV_ERR_DECRYPT);
    /* Another session's keys refuse it too. */
    keys other;
    make_keys(&other);
    assert_int_equal(rdv__path_wire_parse_ack(ack, sizeof(ack), other.a_rx, &p), RDV_ERR_DECRYPT);
    assert_int_equal(rdv__path_wire_parse_probe(probe, sizeof(probe), other.b_rx, &p),
                     RDV_ERR_DECRYPT);
}

/* Copies buf[0..n) into an exactly sized heap block so that ASan catches
 * any read past n. */
static uint8_t *exact(const uint8_t *buf, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, buf, n);
    return p;
}

static void test_truncation(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    uint8_t probe[RDV__PATH_WIRE_PROBE_BYTES + 1], ack[RDV__PATH_WIRE_ACK_BYTES + 1];
    uint8_t data[RDV__PATH_WIRE_DATA_OVERHEAD + 8], out[64], sid[16];
    struct sockaddr_storage ss;
    socklen_t l = mk4(&ss, "192.0.2.1", 1);
    assert_int_equal(rdv__path_wire_probe(probe, SID, TXID, 0, k.a_tx), 46);
    assert_int_equal(rdv__path_wire_ack(ack, SID, TXID, 0, SA(&ss), l, k.a_tx), 65);
    int64_t dl = rdv__path_wire_data_seal(&k.a, SID, (const uint8_t *)"12345678", 8, data);
    assert_int_equal(dl, (int64_t)sizeof(data));
    probe[46] = ack[65] = 0;
    rdv__path_wire_probe_t p;

    for (size_t n = 0; n < RDV__PATH_WIRE_PROBE_BYTES; n++) {
        uint8_t *b = exact(probe, n);
        assert_int_equal(rdv__path_wire_kind(b, n), 0);
        assert_int_equal(rdv__path_wire_sid(b, n, sid), RDV_ERR_FORMAT);
        assert_int_equal(rdv__path_wire_parse_probe(b, n, k.b_rx, &p), RDV_ERR_FORMAT);
        free(b);
    }
    for (size_t n = 0; n < RDV__PATH_WIRE_ACK_BYTES; n++) {
        uint8_t *b = exact(ack, n);
        assert_int_equal(rdv__path_wire_kind(b, n), 0);
        assert_int_equal(rdv__path_wire_sid(b, n, sid), RDV_ERR_FORMAT);
        assert_int_equal(rdv__path_wire_parse_ack(b, n, k.b_rx, &p), RDV_ERR_FORMAT);
        free(b);
    }
    for (size_t n = 0; n < (size_t)dl; n++) {
        uint8_t *b = exact(data, n);
        int64_t rc = rdv__path_wire_data_open(&k.b, b, n, out);
        if (n < RDV__PATH_WIRE_DATA_MIN_BYTES) {
            assert_int_equal(rdv__path_wire_kind(b, n), 0);
            assert_int_equal(rc, RDV_ERR_FORMAT);
        } else {
            assert_int_equal(rdv__path_wire_kind(b, n), RDV__PATH_WIRE_DATA);
            assert_int_equal(rc, RDV_ERR_DECRYPT); /* cut into the tag */
        }
        free(b);
    }
    /* One byte too many is refused as well (the MAC would not cover it). */
    assert_int_equal(rdv__path_wire_parse_probe(probe, 47, k.b_rx, &p), RDV_ERR_FORMAT);
    assert_int_equal(rdv__path_wire_parse_ack(ack, 66, k.b_rx, &p), RDV_ERR_FORMAT);
    assert_int_equal(rdv__path_wire_kind(probe, 47), RDV__PATH_WIRE_PROBE);
    /* The whole packets, exactly sized, pass. */
    uint8_t *b = exact(probe, 46);
    assert_int_equal(rdv__path_wire_parse_probe(b, 46, k.b_rx, &p), 0);
    free(b);
    b = exact(ack, 65);
    assert_int_equal(rdv__path_wire_parse_ack(b, 65, k.b_rx, &p), 0);
    free(b);
    b = exact(data, (size_t)dl);
    assert_int_equal(rdv__path_wire_data_open(&k.b, b, (size_t)dl, out), 8);
    free(b);
    assert_int_equal(rdv__path_wire_kind(NULL, 100), 0);
}

/* ---- dwire: DATA ----------------------------------------------------------------- */

static void test_data_roundtrip(void **state)
{
    (void)state;
    rdv__e2e a, b;
    pair(&a, &b);
    const char *msg = "direct hello";
    size_t ml = strlen(msg);
    uint8_t pkt[128], out[128];
    int64_t n = rdv__path_wire_data_seal(&a, SID, (const uint8_t *)msg, ml, pkt);
    assert_int_equal(n, (int64_t)(ml + 41));
    assert_int_equal(pkt[0], 0xD3);
    assert_memory_equal(pkt + 1, SID, 16);
    assert_int_equal(rdv__e2e_packet_counter(pkt + 17, (size_t)n - 17), 0);
    assert_null(memmem(pkt, (size_t)n, msg, ml));
    assert_int_equal(rdv__path_wire_kind(pkt, (size_t)n), RDV__PATH_WIRE_DATA);
    uint8_t sid[16];
    assert_int_equal(rdv__path_wire_sid(pkt, (size_t)n, sid), 0);
    assert_memory_equal(sid, SID, 16);
    /* After the header it is exactly an e2e packet. */
    rdv__e2e b2 = b;
    assert_int_equal(rdv__e2e_open(&b2, pkt + 17, (size_t)n - 17, out), (int64_t)ml);
    assert_int_equal(rdv__path_wire_data_open(&b, pkt, (size_t)n, out), (int64_t)ml);
    assert_memory_equal(out, msg, ml);
    /* The other direction; an empty datagram. */
    n = rdv__path_wire_data_seal(&b, SID, (const uint8_t *)"", 0, pkt);
    assert_int_equal(n, 41);
    assert_int_equal(rdv__path_wire_data_open(&a, pkt, (size_t)n, out), 0);
    /* One counter space with the relay path: a relay packet took counter 1. */
    uint8_t rel[64];
    assert_true(rdv__e2e_seal(&a, (const uint8_t *)"r", 1, rel) > 0);
    n = rdv__path_wire_data_seal(&a, SID, (const uint8_t *)"d", 1, pkt);
    assert_int_equal(rdv__e2e_packet_counter(pkt + 17, (size_t)n - 17), 2);
    assert_int_equal(rdv__path_wire_data_open(&b, pkt, (size_t)n, out), 1);
    assert_int_equal(rdv__e2e_open(&b, rel, 25, out), 1);
}

static void test_data_rejects(void **state)
{
    (void)state;
    rdv__e2e a, b;
    pair(&a, &b);
    uint8_t pkt[128], bad[128], out[128];
    int64_t n = rdv__path_wire_data_seal(&a, SID, (const uint8_t *)"payload", 7, pkt);
    assert_true(n > 0);
    /* Replay. */
    assert_int_equal(rdv__path_wire_data_open(&b, pkt, (size_t)n, out), 7);
    assert_int_equal(rdv__path_wire_data_open(&b, pkt, (size_t)n, out), RDV_ERR_DUPLICATE);

    n = rdv__path_wire_data_seal(&a, SID, (const uint8_t *)"payload", 7, pkt);
    /* Wrong sid in the header. */
    memcpy(bad, pkt, (size_t)n);
    bad[5] ^= 1;
    assert_int_equal(rdv__path_wire_data_open(&b, bad, (size_t)n, out), RDV_ERR_DECRYPT);
    /* Wrong kind. */
    memcpy(bad, pkt, (size_t)n);
    bad[0] = RDV__PATH_WIRE_PROBE;
    assert_int_equal(rdv__path_wire_data_open(&b, bad, (size_t)n, out), RDV_ERR_FORMAT);
    /* Tampered ciphertext or tag. */
    memcpy(bad, pkt, (size_t)n);
    bad[30] ^= 0x40;
    assert_int_equal(rdv__path_wire_data_open(&b, bad, (size_t)n, out), RDV_ERR_DECRYPT);
    memcpy(bad, pkt, (size_t)n);
    bad[n - 1] ^= 0x01;
    assert_int_equal(rdv__path_wire_data_open(&b, bad, (size_t)n, out), RDV_ERR_DECRYPT);
    /* Reflected to the sender: its rx key differs. */
    assert_int_equal(rdv__path_wire_data_open(&a, pkt, (size_t)n, out), RDV_ERR_DECRYPT);
    /* A session with another ID refuses it even with its sid rewritten. */
    uint8_t sid2[16];
    memcpy(sid2, SID, 16);
    sid2[15] ^= 0xff;
    rdv__e2e c, d;
    pair_sid(&c, &d, sid2);
    assert_int_equal(rdv__path_wire_data_open(&d, pkt, (size_t)n, out), RDV_ERR_DECRYPT);
    /* Sealing with a sid that is not the session's. */
    assert_int_equal(rdv__path_wire_data_seal(&a, sid2, (const uint8_t *)"x", 1, bad),
                     RDV_ERR_INVALID);
    /* Nothing of that moved b's window: the genuine packet still opens. */
    assert_int_equal(rdv__path_wire_data_open(&b, pkt, (size_t)n, out), 7);
    /* Uninitialised states. */
    rdv__e2e z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(rdv__path_wire_data_seal(&z, z.ad, (const uint8_t *)"x", 1, bad), RDV_ERR_STATE);
    memcpy(z.ad, SID, 16);
    assert_int_equal(rdv__path_wire_data_open(&z, pkt, (size_t)n, out), RDV_ERR_STATE);
    rdv__e2e_wipe(&a);
    rdv__e2e_wipe(&b);
}

/* ---- demultiplexing against STUN -------------------------------------------------- */

static void test_kind_stun(void **state)
{
    (void)state;
    uint8_t buf[RDV_STUN_MAX_UDP_MESSAGE];
    /* A bare Binding request built by hand with the writer. */
    rdv_stun_writer w;
    rdv_stun_begin(&w, buf, sizeof(buf), RDV_STUN_BINDING_REQUEST, RDV_STUN_MAGIC_COOKIE, TXID);
    int n = rdv_stun_finish(&w);
    assert_int_equal(n, RDV_STUN_HEADER_BYTES);
    assert_int_equal(rdv__path_wire_kind(buf, (size_t)n), 0);
    /* One big enough for any of our sizes (SOFTWARE + FINGERPRINT). */
    rdv_stun_request_opts o = {.software = "rendezvous test client with a long name",
                               .fingerprint = true, .change_request = true};
    n = rdv_stun_build_binding_request(buf, sizeof(buf), TXID, &o);
    assert_true(n >= RDV__PATH_WIRE_ACK_BYTES);
    assert_int_equal(rdv__path_wire_kind(buf, (size_t)n), 0);
    assert_int_equal(rdv__path_wire_sid(buf, (size_t)n, (uint8_t[16]){0}), RDV_ERR_FORMAT);
    /* And the other way: STUN never takes our packets. */
    keys k;
    make_keys(&k);
    uint8_t probe[RDV__PATH_WIRE_PROBE_BYTES];
    rdv__path_wire_probe(probe, SID, TXID, 0, k.a_tx);
    assert_false(rdv_stun_looks_like(probe, sizeof(probe)));
    rdv_stun_msg m;
    assert_true(rdv_stun_parse(probe, sizeof(probe), &m) < 0);
    /* Only 0xD1..0xD3 are ours. */
    uint8_t any[128];
    memset(any, 0, sizeof(any));
    for (int b = 0; b < 256; b++) {
        any[0] = (uint8_t)b;
        int want = (b >= 0xD1 && b <= 0xD3) ? b : 0;
        assert_int_equal(rdv__path_wire_kind(any, sizeof(any)), want);
    }
}

/* ---- datagrams held between two paths (session_hold.c) ---- */

/* Up to RDV_PATH_GAP_MAX_DATAGRAMS are held, then RDV_ERR_BACKLOG (nothing
 * held for it); they come out oldest first, byte for byte. */
static void test_hold_count_bound(void **state)
{
    (void)state;
    rdv__hold h;
    memset(&h, 0, sizeof(h));
    assert_null(rdv__hold_take(&h));
    uint8_t buf[64];
    for (int i = 0; i < RDV_PATH_GAP_MAX_DATAGRAMS; i++) {
        memset(buf, i & 0xff, sizeof(buf));
        assert_int_equal(rdv__hold_push(&h, buf, (size_t)(i % 64)), 0);
    }
    assert_int_equal(h.n, RDV_PATH_GAP_MAX_DATAGRAMS);
    assert_int_equal(rdv__hold_push(&h, buf, 1), RDV_ERR_BACKLOG);
    assert_int_equal(rdv__hold_push(&h, NULL, 0), RDV_ERR_BACKLOG);
    assert_int_equal(h.n, RDV_PATH_GAP_MAX_DATAGRAMS);
    assert_int_equal(h.total, RDV_PATH_GAP_MAX_DATAGRAMS);
    rdv__held *d = rdv__hold_take(&h);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.bytes, 0);
    assert_null(h.head);
    assert_null(h.tail);
    int i = 0;
    while (d) {
        rdv__held *next = d->next;
        assert_int_equal(d->len, (size_t)(i % 64));
        for (size_t k = 0; k < d->len; k++)
            assert_int_equal(d->data[k], i & 0xff);
        rdv__held_free(d);
        d = next;
        i++;
    }
    assert_int_equal(i, RDV_PATH_GAP_MAX_DATAGRAMS);
    /* usable again after a take */
    assert_int_equal(rdv__hold_push(&h, "x", 1), 0);
    assert_int_equal(rdv__hold_clear(&h), 1);
    rdv__held_free(NULL);
}

/* RDV_PATH_GAP_MAX_BYTES bounds the payload bytes held: exactly the bound
 * fits, one byte more does not, and a datagram larger than the bound never
 * does (no size_t overflow in the check). clear frees and counts. */
static void test_hold_byte_bound(void **state)
{
    (void)state;
    rdv__hold h;
    memset(&h, 0, sizeof(h));
    size_t quarter = RDV_PATH_GAP_MAX_BYTES / 4;
    uint8_t *big = calloc(1, RDV_PATH_GAP_MAX_BYTES + 1);
    assert_non_null(big);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rdv__hold_push(&h, big, quarter), 0);
    assert_int_equal(h.bytes, RDV_PATH_GAP_MAX_BYTES);
    assert_int_equal(rdv__hold_push(&h, big, 1), RDV_ERR_BACKLOG);
    assert_int_equal(rdv__hold_push(&h, NULL, 0), 0); /* empty datagrams count only */
    assert_int_equal(h.n, 5);
    assert_int_equal(rdv__hold_clear(&h), 5);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.bytes, 0);
    assert_int_equal(rdv__hold_push(&h, big, RDV_PATH_GAP_MAX_BYTES + 1), RDV_ERR_BACKLOG);
    assert_int_equal(rdv__hold_push(&h, big, SIZE_MAX), RDV_ERR_BACKLOG);
    assert_int_equal(h.n, 0);
    assert_int_equal(rdv__hold_push(&h, big, RDV_PATH_GAP_MAX_BYTES), 0);
    assert_int_equal(rdv__hold_clear(&h), 1);
    assert_int_equal(h.total, 6); /* 4 + the empty one + the full-size one */
    free(big);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_values),
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_host_local_pref),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_loopback),
        cmocka_unit_test(test_gather_bounds),
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_addr_text_and_names),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_json_roundtrip_v4),
        cmocka_unit_test(test_json_roundtrip_v6),
        cmocka_unit_test(test_from_json_rejects),
        cmocka_unit_test(test_json_port_mapped),
        cmocka_unit_test(test_addr_usable),
        cmocka_unit_test(test_addr_global_v6),
        cmocka_unit_test(test_addr_ip_equal),
        cmocka_unit_test(test_mac_keys),
        cmocka_unit_test(test_probe_roundtrip),
        cmocka_unit_test(test_ack_roundtrip),
        cmocka_unit_test(test_ack_bad_body),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_reflection),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_data_roundtrip),
        cmocka_unit_test(test_data_rejects),
        cmocka_unit_test(test_kind_stun),
        cmocka_unit_test(test_hold_count_bound),
        cmocka_unit_test(test_hold_byte_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
