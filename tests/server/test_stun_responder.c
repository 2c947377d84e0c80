/* test_stun_responder.c - rendezvousd's STUN responder (rendezvous/stun_responder.c):
 * the pure srv_stun_responder_handle() (IPv4/IPv6 mapping, RFC 5780
 * RESPONSE-ORIGIN / OTHER-ADDRESS and CHANGE-REQUEST socket choice, 420,
 * 400, drops, RFC 3489 requests), then the socket layer on loopback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "rendezvous/stun_responder.h"

#define PORT 3478
#define ALT_PORT 3479
#define POLL_MS 2000

static const uint8_t TID[RDV_STUN_TID_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};

static rdv_stun_addr ip(const char *s, uint16_t port)
{
    rdv_stun_addr a;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, s, a.addr) == 1) {
        a.family = RDV_STUN_FAMILY_IPV4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, s, a.addr), 1);
        a.family = RDV_STUN_FAMILY_IPV6;
    }
    a.port = port;
    return a;
}

/* A sockaddr for ip:port. */
static struct sockaddr_storage sa(const char *s, uint16_t port)
{
    struct sockaddr_storage ss;
    rdv_stun_addr a = ip(s, port);
    assert_true(rdv_stun_addr_to_sockaddr(&a, &ss) > 0);
    return ss;
}

/* Full RFC 5780 configuration: 192.0.2.10/.11 x 3478/3479. */
static srv_stun_responder_config full_cfg(void)
{
    srv_stun_responder_config c;
    memset(&c, 0, sizeof(c));
    c.addr = ip("192.0.2.10", 0);
    c.port = PORT;
    c.alt_port = ALT_PORT;
    c.has_alt_addr = true;
    c.alt_addr = ip("192.0.2.11", 0);
    c.answer_classic = true;
    return c;
}

typedef struct reply {
    size_t n;
    srv_stun_via via;
    uint16_t port; /* destination port */
    uint8_t buf[SRV_STUN_REPLY_BUFFER];
    rdv_stun_msg m;
    int parsed;
} reply;

/* Runs the responder on in[0..len) (exact-size heap copy) from `from`
 * arriving at `local`, and parses the reply into *rp (its pointers point
 * into rp->buf). */
static void run(reply *rp, const srv_stun_responder_config *c, const uint8_t *in, size_t len,
                const char *from_ip, uint16_t from_port, const char *local_ip,
                uint16_t local_port)
{
    memset(rp, 0, sizeof(*rp));
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, in, len);
    struct sockaddr_storage f = sa(from_ip, from_port);
    struct sockaddr_storage l;
    if (local_ip)
        l = sa(local_ip, local_port);
    srv_stun_route route = {(srv_stun_via)99, 1};
    rp->n = srv_stun_responder_handle(c, copy, len, (struct sockaddr *)&f, sizeof(f),
                                      local_ip ? (struct sockaddr *)&l : NULL, rp->buf,
                                      sizeof(rp->buf), &route);
    rp->via = route.via;
    rp->port = route.port;
    free(copy);
    if (rp->n)
        rp->parsed = rdv_stun_parse_opt(rp->buf, rp->n, RDV_STUN_PARSE_CLASSIC, &rp->m);
}

static size_t request(uint8_t *buf, size_t cap, const rdv_stun_request_opts *o)
{
    int n = rdv_stun_build_binding_request(buf, cap, TID, o);
    assert_true(n >= RDV_STUN_HEADER_BYTES);
    return (size_t)n;
}

static void test_ipv4_mapping(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    uint8_t req[64];
    size_t n = request(req, sizeof(req), NULL);
    reply r;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_true(r.n > 0);
    assert_int_equal(r.parsed, (int)r.n);
    assert_int_equal(r.via, SRV_STUN_VIA_PRIMARY);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);
    assert_memory_equal(r.m.tid, TID, RDV_STUN_TID_BYTES);
    rdv_stun_addr want = ip("198.51.100.7", 40000);
    assert_true(r.m.has_xor_mapped);
    assert_true(rdv_stun_addr_equal(&r.m.xor_mapped, &want));
    assert_true(r.m.has_fingerprint);
    assert_true(r.m.software_len > strlen(SRV_STUN_SOFTWARE_PREFIX));
    assert_memory_equal(r.m.software, SRV_STUN_SOFTWARE_PREFIX,
                        strlen(SRV_STUN_SOFTWARE_PREFIX));
    /* RFC 5780 6.1 */
    rdv_stun_addr ro = ip("192.0.2.10", PORT), oa = ip("192.0.2.11", ALT_PORT);
    assert_true(r.m.has_response_origin);
    assert_true(rdv_stun_addr_equal(&r.m.response_origin, &ro));
    assert_true(r.m.has_other_address);
    assert_true(rdv_stun_addr_equal(&r.m.other_address, &oa));
    assert_false(r.m.has_mapped);

    /* local NULL: the primary socket. */
    run(&r, &c, req, n, "198.51.100.7", 40000, NULL, 0);
    assert_int_equal(r.via, SRV_STUN_VIA_PRIMARY);
    assert_true(rdv_stun_addr_equal(&r.m.response_origin, &ro));

    /* Custom SOFTWARE. */
    c.software = "custom";
    run(&r, &c, req, n, "198.51.100.7", 40000, NULL, 0);
    assert_int_equal(r.m.software_len, 6);
    assert_memory_equal(r.m.software, "custom", 6);
}

static void test_ipv6_mapping(void **state)
{
    (void)state;
    srv_stun_responder_config c;
    memset(&c, 0, sizeof(c));
    c.addr = ip("::", 0); /* wildcard, no alternates */
    c.port = PORT;
    uint8_t req[64];
    size_t n = request(req, sizeof(req), &(rdv_stun_request_opts){.fingerprint = true});
    reply r;
    run(&r, &c, req, n, "2001:db8::5", 5000, "2001:db8::1", PORT);
    assert_int_equal(r.parsed, (int)r.n);
    assert_int_equal(r.via, SRV_STUN_VIA_PRIMARY);
    rdv_stun_addr want = ip("2001:db8::5", 5000);
    assert_true(rdv_stun_addr_equal(&r.m.xor_mapped, &want));
    assert_false(r.m.has_response_origin); /* nothing to discover */
    assert_false(r.m.has_other_address);

    /* An IPv4 peer seen through a dual-stack socket is mapped as IPv4. */
    run(&r, &c, req, n, "::ffff:203.0.113.5", 6000, "::ffff:192.0.2.10", PORT);
    want = ip("203.0.113.5", 6000);
    assert_true(rdv_stun_addr_equal(&r.m.xor_mapped, &want));

    /* IPv6 with an alternate port: OTHER-ADDRESS keeps the IP. */
    c.addr = ip("2001:db8::1", 0);
    c.alt_port = ALT_PORT;
    run(&r, &c, req, n, "2001:db8::5", 5000, "2001:db8::1", PORT);
    rdv_stun_addr oa = ip("2001:db8::1", ALT_PORT);
    assert_true(r.m.has_other_address);
    assert_true(rdv_stun_addr_equal(&r.m.other_address, &oa));
}

/* RFC 5780 7.2: the reply leaves from the socket with the other IP
 * and/or port than the one the request reached. */
static void test_change_request(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    struct {
        const char *local_ip;
        uint16_t local_port;
        uint32_t flags;
        srv_stun_via via;
        const char *ro_ip;
        uint16_t ro_port;
        const char *oa_ip;
        uint16_t oa_port;
    } t[] = {
        {"192.0.2.10", PORT, 0, SRV_STUN_VIA_PRIMARY, "192.0.2.10", PORT, "192.0.2.11", ALT_PORT},
        {"192.0.2.10", PORT, RDV_STUN_CHANGE_PORT, SRV_STUN_VIA_ALT_PORT, "192.0.2.10", ALT_PORT,
         "192.0.2.11", ALT_PORT},
        {"192.0.2.10", PORT, RDV_STUN_CHANGE_IP, SRV_STUN_VIA_ALT_ADDR, "192.0.2.11", PORT,
         "192.0.2.11", ALT_PORT},
        {"192.0.2.10", PORT, RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT, SRV_STUN_VIA_ALT_BOTH,
         "192.0.2.11", ALT_PORT, "192.0.2.11", ALT_PORT},
        /* Arriving on the alternate sockets: changes flip back. */
        {"192.0.2.10", ALT_PORT, RDV_STUN_CHANGE_PORT, SRV_STUN_VIA_PRIMARY, "192.0.2.10", PORT,
         "192.0.2.11", PORT},
        {"192.0.2.11", PORT, RDV_STUN_CHANGE_IP, SRV_STUN_VIA_PRIMARY, "192.0.2.10", PORT,
         "192.0.2.10", ALT_PORT},
        {"192.0.2.11", ALT_PORT, RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT,
         SRV_STUN_VIA_PRIMARY, "192.0.2.10", PORT, "192.0.2.10", PORT},
        {"192.0.2.11", ALT_PORT, 0, SRV_STUN_VIA_ALT_BOTH, "192.0.2.11", ALT_PORT, "192.0.2.10",
         PORT},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint8_t req[64];
        size_t n = request(req, sizeof(req),
                           &(rdv_stun_request_opts){.change_request = true,
                                                    .change_flags = t[i].flags});
        reply r;
    run(&r, &c, req, n, "198.51.100.7", 40000, t[i].local_ip, t[i].local_port);
        assert_int_equal(r.parsed, (int)r.n);
        assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);
        assert_int_equal(r.via, t[i].via);
        rdv_stun_addr ro = ip(t[i].ro_ip, t[i].ro_port), oa = ip(t[i].oa_ip, t[i].oa_port);
        assert_true(rdv_stun_addr_equal(&r.m.response_origin, &ro));
        assert_true(rdv_stun_addr_equal(&r.m.other_address, &oa));
    }
}

static void expect_420(const reply *r, const uint16_t *types, size_t n)
{
    assert_true(r->n > 0);
    assert_int_equal(r->parsed, (int)r->n);
    assert_int_equal(r->m.type, RDV_STUN_BINDING_ERROR);
    assert_int_equal(r->m.error_code, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE);
    assert_int_equal(r->m.n_unknown_list, n);
    assert_memory_equal(r->m.unknown_list, types, n * sizeof(uint16_t));
    assert_memory_equal(r->m.tid, TID, RDV_STUN_TID_BYTES);
    assert_true(r->m.has_fingerprint);
}

/* CHANGE-REQUEST the configuration cannot honour: 420 (RFC 5780 7.2). */
static void test_change_unsupported(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    c.has_alt_addr = false;
    uint8_t req[64];
    const uint16_t cr[] = {RDV_STUN_ATTR_CHANGE_REQUEST};
    size_t n = request(req, sizeof(req),
                       &(rdv_stun_request_opts){.change_flags = RDV_STUN_CHANGE_IP});
    reply r;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    expect_420(&r, cr, 1);
    assert_int_equal(r.via, SRV_STUN_VIA_PRIMARY);
    /* Change port still works. */
    n = request(req, sizeof(req), &(rdv_stun_request_opts){.change_flags = RDV_STUN_CHANGE_PORT});
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);
    assert_int_equal(r.via, SRV_STUN_VIA_ALT_PORT);
    /* Nothing configured: change port is 420 too. */
    c.alt_port = 0;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    expect_420(&r, cr, 1);
    /* CHANGE-REQUEST with no flags is always fine. */
    n = request(req, sizeof(req), &(rdv_stun_request_opts){.change_request = true});
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);
    assert_false(r.m.has_other_address);
}

/* RFC 5780 7.5: RESPONSE-PORT redirects the answer (success or error) to
 * another port of the source IP; 0 is a bad request. */
static void test_response_port(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    uint8_t req[64];
    size_t n = request(req, sizeof(req), NULL);
    reply r;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.port, 40000);
    n = request(req, sizeof(req),
                &(rdv_stun_request_opts){.response_port = 40001,
                                         .change_flags = RDV_STUN_CHANGE_PORT});
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);
    assert_int_equal(r.port, 40001);
    assert_int_equal(r.via, SRV_STUN_VIA_ALT_PORT);
    rdv_stun_addr want = ip("198.51.100.7", 40000); /* the mapping is the source */
    assert_true(rdv_stun_addr_equal(&r.m.xor_mapped, &want));
    /* An error answer follows RESPONSE-PORT too (coturn's client waits
     * there for it). */
    c.has_alt_addr = false;
    n = request(req, sizeof(req),
                &(rdv_stun_request_opts){.response_port = 40001,
                                         .change_flags = RDV_STUN_CHANGE_IP});
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.error_code, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE);
    assert_int_equal(r.port, 40001);
    /* Port 0: 400 to the source port. */
    static const uint8_t zero[] = {0x00, 0x27, 0x00, 0x04, 0, 0, 0, 0};
    n = request(req, sizeof(req), NULL);
    memcpy(req + n, zero, sizeof(zero));
    n += sizeof(zero);
    req[3] = (uint8_t)(n - 20);
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.error_code, RDV_STUN_CODE_BAD_REQUEST);
    assert_int_equal(r.port, 40000);
}

/* Adds raw attributes to a request (no FINGERPRINT). */
static size_t request_with(uint8_t *buf, size_t cap, const uint8_t *attrs, size_t alen)
{
    size_t n = request(buf, cap, NULL);
    assert_true(n + alen <= cap);
    memcpy(buf + n, attrs, alen);
    n += alen;
    buf[2] = (uint8_t)((n - 20) >> 8);
    buf[3] = (uint8_t)(n - 20);
    return n;
}

static void test_unknown_required(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    uint8_t req[128];
    static const uint8_t attrs[] = {
        0x7f, 0x01, 0x00, 0x00,                   /* unknown, required */
        0x80, 0x99, 0x00, 0x02, 1, 2, 0, 0,       /* unknown, optional: ignored */
        0x00, 0x02, 0x00, 0x08, 0, 1, 0, 1, 1, 2, 3, 4, /* RESPONSE-ADDRESS: reserved */
        0x00, 0x26, 0x00, 0x04, 0, 0, 0, 0,             /* PADDING: not implemented */
    };
    size_t n = request_with(req, sizeof(req), attrs, sizeof(attrs));
    reply r;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    const uint16_t want[] = {0x7f01, RDV_STUN_ATTR_RESPONSE_ADDRESS, RDV_STUN_ATTR_PADDING};
    expect_420(&r, want, 3);

    /* Only unknown optional attributes: answered normally. */
    n = request_with(req, sizeof(req), attrs + 4, 8);
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);

    /* A request carrying ICE / auth attributes we know but do not check
     * (RFC 5769's sample request) still gets its mapping. */
    static const uint8_t rfc5769_attrs[] = {
        0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x00, 0x06, 0x00, 0x04, 'u', 's', 'e', 'r'};
    n = request_with(req, sizeof(req), rfc5769_attrs, sizeof(rfc5769_attrs));
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_SUCCESS);
}

static void test_bad_request(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    uint8_t req[128];
    /* Malformed XOR-MAPPED-ADDRESS in a request: 400. */
    static const uint8_t bad[] = {0x00, 0x20, 0x00, 0x08, 0, 9, 0, 0, 0, 0, 0, 0};
    size_t n = request_with(req, sizeof(req), bad, sizeof(bad));
    reply r;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.parsed, (int)r.n);
    assert_int_equal(r.m.type, RDV_STUN_BINDING_ERROR);
    assert_int_equal(r.m.error_code, RDV_STUN_CODE_BAD_REQUEST);
    /* Attribute running past the message: 400. */
    static const uint8_t over[] = {0x80, 0x22, 0x00, 0x40, 'a', 'b', 'c', 'd'};
    n = request_with(req, sizeof(req), over, sizeof(over));
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.error_code, RDV_STUN_CODE_BAD_REQUEST);
    /* Another method (TURN Allocate request, 0x0003): 400, error class of
     * that method. */
    n = request(req, sizeof(req), NULL);
    req[1] = 0x03;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.m.type, 0x0113);
    assert_int_equal(r.m.error_code, RDV_STUN_CODE_BAD_REQUEST);
}

static void test_dropped(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    uint8_t req[128];
    size_t n = request(req, sizeof(req), &(rdv_stun_request_opts){.fingerprint = true});
    reply r;
    /* Responses and indications (RFC 8489 6.3.2, 6.3.3). */
    const uint16_t types[] = {RDV_STUN_BINDING_SUCCESS, RDV_STUN_BINDING_ERROR,
                              RDV_STUN_BINDING_INDICATION, 0x0016 /* Send indication */};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint8_t m[64];
        int k = rdv_stun_build_binding_request(m, sizeof(m), TID, NULL);
        m[0] = (uint8_t)(types[i] >> 8);
        m[1] = (uint8_t)types[i];
        run(&r, &c, m, (size_t)k, "198.51.100.7", 40000, "192.0.2.10", PORT);
        assert_int_equal(r.n, 0);
    }
    /* Truncated at every length, and one extra byte. */
    for (size_t l = 0; l < n; l++) {
        run(&r, &c, req, l, "198.51.100.7", 40000, "192.0.2.10", PORT);
        assert_int_equal(r.n, 0);
    }
    uint8_t longer[128];
    memcpy(longer, req, n);
    longer[n] = 0;
    run(&r, &c, longer, n + 1, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.n, 0);
    /* Bad FINGERPRINT: not STUN (RFC 8489 7). */
    req[n - 1] ^= 1;
    run(&r, &c, req, n, "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.n, 0);
    /* Garbage, RTP-looking data (top bits 10). */
    uint8_t junk[64];
    memset(junk, 0x80, sizeof(junk));
    run(&r, &c, junk, sizeof(junk), "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.n, 0);
    /* No room for the reply. */
    n = request(req, sizeof(req), NULL);
    uint8_t tiny[16];
    struct sockaddr_storage f = sa("198.51.100.7", 1);
    assert_int_equal(srv_stun_responder_handle(&c, req, n, (struct sockaddr *)&f, sizeof(f), NULL,
                                               tiny, sizeof(tiny), NULL),
                     0);
    /* NULL arguments. */
    assert_int_equal(srv_stun_responder_handle(NULL, req, n, (struct sockaddr *)&f, sizeof(f),
                                               NULL, tiny, sizeof(tiny), NULL),
                     0);
    assert_int_equal(srv_stun_responder_handle(&c, req, n, NULL, 0, NULL, tiny, sizeof(tiny),
                                               NULL),
                     0);
}

/* RFC 3489 requests (stun-client 0.97 style). */
static void test_classic(void **state)
{
    (void)state;
    srv_stun_responder_config c = full_cfg();
    uint8_t req[28] = {0x00, 0x01, 0x00, 0x08, 0x01, 0x83, 0x86, 0x5b, 0x00, 0x0b,
                       0x49, 0x42, 0xe5, 0x78, 0xd6, 0x35, 0x67, 0xf8, 0xe4, 0x1e,
                       0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02};
    reply r;
    run(&r, &c, req, sizeof(req), "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.parsed, (int)r.n);
    assert_true(r.m.classic);
    assert_int_equal(r.via, SRV_STUN_VIA_ALT_PORT);
    assert_memory_equal(r.buf + 4, req + 4, RDV_STUN_CLASSIC_TID_BYTES);
    rdv_stun_addr want = ip("198.51.100.7", 40000);
    assert_true(r.m.has_mapped);
    assert_true(rdv_stun_addr_equal(&r.m.mapped, &want));
    rdv_stun_addr src = ip("192.0.2.10", ALT_PORT), chg = ip("192.0.2.11", ALT_PORT);
    assert_true(rdv_stun_addr_equal(&r.m.source_address, &src));
    assert_true(rdv_stun_addr_equal(&r.m.changed_address, &chg));
    assert_false(r.m.has_xor_mapped);
    assert_null(r.m.software);
    assert_false(r.m.has_fingerprint);
    /* Unhonourable change: dropped, never an error to a classic client. */
    c.has_alt_addr = false;
    req[27] = 0x06;
    run(&r, &c, req, sizeof(req), "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.n, 0);
    /* Unknown required attribute: dropped. */
    uint8_t req2[32];
    memcpy(req2, req, sizeof(req));
    req2[3] = 12;
    req2[27] = 0;
    req2[28] = 0x7f, req2[29] = 0x01, req2[30] = 0, req2[31] = 0;
    run(&r, &c, req2, sizeof(req2), "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.n, 0);
    /* Classic answering switched off. */
    c.answer_classic = false;
    req[27] = 0;
    run(&r, &c, req, sizeof(req), "198.51.100.7", 40000, "192.0.2.10", PORT);
    assert_int_equal(r.n, 0);
}

/* ---- Socket layer on loopback ------------------------------------- */

/* Sends a Binding request from a fresh client socket to srv's socket
 * `to`, runs on_readable, and returns the reply and where it came from. */
static int roundtrip(srv_stun_server *srv, srv_stun_via to, uint32_t flags, rdv_stun_msg *m,
                     uint8_t *buf, size_t cap, rdv_stun_addr *client, rdv_stun_addr *src)
{
    int family = srv->family;
    int cfd = socket(family, SOCK_DGRAM, 0);
    assert_true(cfd >= 0);
    struct sockaddr_storage any;
    rdv_stun_addr loop = srv->bound[to];
    loop.port = 0;
    if (srv->wildcard) /* send to loopback */
        loop = ip(family == AF_INET ? "127.0.0.1" : "::1", 0);
    socklen_t al = rdv_stun_addr_to_sockaddr(&loop, &any);
    assert_int_equal(bind(cfd, (struct sockaddr *)&any, al), 0);
    struct sockaddr_storage me;
    socklen_t ml = sizeof(me);
    assert_int_equal(getsockname(cfd, (struct sockaddr *)&me, &ml), 0);
    assert_int_equal(rdv_stun_addr_from_sockaddr((struct sockaddr *)&me, ml, client), 0);

    uint8_t req[64];
    size_t n = request(req, sizeof(req),
                       &(rdv_stun_request_opts){.change_flags = flags, .fingerprint = true});
    rdv_stun_addr dst = loop;
    dst.port = srv->bound[to].port;
    struct sockaddr_storage ds;
    socklen_t dl = rdv_stun_addr_to_sockaddr(&dst, &ds);
    assert_int_equal(sendto(cfd, req, n, 0, (struct sockaddr *)&ds, dl), (ssize_t)n);

    struct pollfd p = {.fd = srv->fd[to], .events = POLLIN};
    assert_int_equal(poll(&p, 1, POLL_MS), 1);
    assert_int_equal(srv_stun_server_on_readable(srv, srv->fd[to]), 1);
    assert_int_equal(srv_stun_server_on_readable(srv, srv->fd[to]), 0); /* drained */

    p = (struct pollfd){.fd = cfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, POLL_MS), 1);
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t k = recvfrom(cfd, buf, cap, 0, (struct sockaddr *)&from, &fl);
    assert_true(k > 0);
    assert_int_equal(rdv_stun_addr_from_sockaddr((struct sockaddr *)&from, fl, src), 0);
    close(cfd);
    return rdv_stun_parse(buf, (size_t)k, m);
}

static void check_socket_server(const char *addr, const char *loop_ip)
{
    srv_stun_server srv;
    srv_stun_server_config cfg = {.addr = addr, .alt_port_ephemeral = true};
    int rc = srv_stun_server_open(&srv, &cfg);
    if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) {
        print_message("[ SKIP     ] %s: %s\n", addr, strerror(-rc));
        skip();
    }
    assert_int_equal(rc, 0);
    assert_true(srv.fd[SRV_STUN_VIA_PRIMARY] >= 0);
    assert_true(srv.fd[SRV_STUN_VIA_ALT_PORT] >= 0);
    assert_int_equal(srv.fd[SRV_STUN_VIA_ALT_ADDR], -1);
    assert_int_not_equal(srv.bound[0].port, 0);
    assert_int_not_equal(srv.bound[1].port, 0);
    assert_int_equal(srv_stun_server_on_readable(&srv, srv.fd[0]), 0);
    assert_int_equal(srv_stun_server_on_readable(&srv, 12345), -EBADF);

    uint8_t buf[SRV_STUN_REPLY_BUFFER];
    rdv_stun_msg m;
    rdv_stun_addr client, src;
    int n = roundtrip(&srv, SRV_STUN_VIA_PRIMARY, 0, &m, buf, sizeof(buf), &client, &src);
    assert_true(n > 0);
    assert_true(rdv_stun_addr_equal(&m.xor_mapped, &client));
    rdv_stun_addr primary = ip(loop_ip, srv.bound[0].port);
    rdv_stun_addr alt = ip(loop_ip, srv.bound[1].port);
    assert_true(rdv_stun_addr_equal(&src, &primary));
    assert_true(rdv_stun_addr_equal(&m.response_origin, &primary));
    assert_true(rdv_stun_addr_equal(&m.other_address, &alt));

    /* CHANGE-REQUEST change port: the reply leaves from the alt port. */
    n = roundtrip(&srv, SRV_STUN_VIA_PRIMARY, RDV_STUN_CHANGE_PORT, &m, buf, sizeof(buf),
                  &client, &src);
    assert_true(n > 0);
    assert_true(rdv_stun_addr_equal(&src, &alt));
    assert_true(rdv_stun_addr_equal(&m.response_origin, &alt));
    assert_true(rdv_stun_addr_equal(&m.xor_mapped, &client));

    /* Sent to the alt port, asking for a port change: from the primary. */
    n = roundtrip(&srv, SRV_STUN_VIA_ALT_PORT, RDV_STUN_CHANGE_PORT, &m, buf, sizeof(buf),
                  &client, &src);
    assert_true(n > 0);
    assert_true(rdv_stun_addr_equal(&src, &primary));
    assert_true(rdv_stun_addr_equal(&m.other_address, &primary));

    /* Change IP: 420 from the receiving socket. */
    n = roundtrip(&srv, SRV_STUN_VIA_PRIMARY, RDV_STUN_CHANGE_IP, &m, buf, sizeof(buf), &client,
                  &src);
    assert_true(n > 0);
    assert_int_equal(m.error_code, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE);
    assert_true(rdv_stun_addr_equal(&src, &primary));

    assert_int_equal(srv.n_rx, 4);
    assert_int_equal(srv.n_tx, 4);
    /* Released fds (adopted by libwebsockets) are not closed by us. */
    int alt_fd = srv.fd[SRV_STUN_VIA_ALT_PORT];
    assert_int_equal(srv_stun_server_release(&srv, alt_fd), 0);
    assert_int_equal(srv.fd[SRV_STUN_VIA_ALT_PORT], -1);
    assert_int_equal(srv_stun_server_release(&srv, alt_fd), -EBADF);
    srv_stun_server_close(&srv);
    assert_int_equal(close(alt_fd), 0); /* still open: ours to close here */
    srv_stun_server_close(&srv);
    assert_int_equal(srv.fd[0], -1);
}

static void test_socket_ipv4(void **state)
{
    (void)state;
    check_socket_server("127.0.0.1", "127.0.0.1");
}

static void test_socket_ipv4_wildcard(void **state)
{
    (void)state;
    check_socket_server("0.0.0.0", "127.0.0.1");
}

static void test_socket_ipv6(void **state)
{
    (void)state;
    check_socket_server("::1", "::1");
}

static void test_socket_ipv6_wildcard(void **state)
{
    (void)state;
    check_socket_server("::", "::1");
}

static void test_socket_open_errors(void **state)
{
    (void)state;
    srv_stun_server srv;
    srv_stun_server_config cfg = {.addr = "not-an-ip"};
    assert_int_equal(srv_stun_server_open(&srv, &cfg), -EINVAL);
    srv_stun_server_close(&srv);
    cfg = (srv_stun_server_config){.addr = "0.0.0.0", .alt_addr = "127.0.0.2"};
    assert_int_equal(srv_stun_server_open(&srv, &cfg), -EINVAL);
    cfg = (srv_stun_server_config){.addr = "127.0.0.1", .alt_addr = "::1"};
    assert_int_equal(srv_stun_server_open(&srv, &cfg), -EINVAL);
    cfg = (srv_stun_server_config){.addr = "127.0.0.1", .port = 5000, .alt_port = 5000};
    assert_int_equal(srv_stun_server_open(&srv, &cfg), -EINVAL);
    assert_int_equal(srv_stun_server_open(&srv, NULL), -EINVAL);
    assert_int_equal(srv.fd[0], -1);
    /* SOFTWARE is cut to SRV_STUN_SOFTWARE_SERVER_MAX bytes. */
    char longsw[300];
    memset(longsw, 's', sizeof(longsw) - 1);
    longsw[sizeof(longsw) - 1] = '\0';
    cfg = (srv_stun_server_config){.addr = "127.0.0.1", .software = longsw};
    assert_int_equal(srv_stun_server_open(&srv, &cfg), 0);
    assert_int_equal(strlen(srv.software), SRV_STUN_SOFTWARE_SERVER_MAX);
    assert_ptr_equal(srv.rcfg.software, srv.software);
    /* The socket asks for a large receive buffer (bursts of requests);
     * Linux grants min(2 x asked, 2 x net.core.rmem_max). */
    {
        long rmem_max = 0;
        FILE *f = fopen("/proc/sys/net/core/rmem_max", "r");
        if (f) {
            if (fscanf(f, "%ld", &rmem_max) != 1)
                rmem_max = 0;
            fclose(f);
        }
        int got = 0;
        socklen_t gl = sizeof(got);
        assert_int_equal(getsockopt(srv.fd[0], SOL_SOCKET, SO_RCVBUF, &got, &gl), 0);
        long want = SRV_STUN_SOCKET_RCVBUF < rmem_max ? SRV_STUN_SOCKET_RCVBUF : rmem_max;
        if (want > 0)
            assert_true(got >= want);
    }
    srv_stun_server_close(&srv);
    /* Port already taken. */
    srv_stun_server a, b;
    cfg = (srv_stun_server_config){.addr = "127.0.0.1"};
    assert_int_equal(srv_stun_server_open(&a, &cfg), 0);
    cfg.port = a.bound[0].port;
    assert_int_equal(srv_stun_server_open(&b, &cfg), -EADDRINUSE);
    srv_stun_server_close(&a);
}

/* Two loopback addresses (127.0.0.1 and 127.0.0.2 are both local on
 * Linux): the full four-socket RFC 5780 setup, change IP included. */
static void test_socket_alt_addr(void **state)
{
    (void)state;
    srv_stun_server srv;
    srv_stun_server_config cfg = {
        .addr = "127.0.0.1", .alt_addr = "127.0.0.2", .alt_port_ephemeral = true};
    int rc = srv_stun_server_open(&srv, &cfg);
    if (rc == -EADDRNOTAVAIL) {
        print_message("[ SKIP     ] 127.0.0.2 not local\n");
        skip();
    }
    assert_int_equal(rc, 0);
    for (int i = 0; i < SRV_STUN_VIA__COUNT; i++)
        assert_true(srv.fd[i] >= 0);
    uint8_t buf[SRV_STUN_REPLY_BUFFER];
    rdv_stun_msg m;
    rdv_stun_addr client, src;
    int n = roundtrip(&srv, SRV_STUN_VIA_PRIMARY, RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT, &m,
                      buf, sizeof(buf), &client, &src);
    assert_true(n > 0);
    rdv_stun_addr both = ip("127.0.0.2", srv.bound[SRV_STUN_VIA_ALT_PORT].port);
    assert_true(rdv_stun_addr_equal(&src, &both));
    assert_true(rdv_stun_addr_equal(&m.response_origin, &both));
    assert_true(rdv_stun_addr_equal(&m.other_address, &both));
    n = roundtrip(&srv, SRV_STUN_VIA_PRIMARY, RDV_STUN_CHANGE_IP, &m, buf, sizeof(buf), &client,
                  &src);
    rdv_stun_addr alt_ip = ip("127.0.0.2", srv.bound[SRV_STUN_VIA_PRIMARY].port);
    assert_true(rdv_stun_addr_equal(&src, &alt_ip));
    srv_stun_server_close(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_mapping),
        cmocka_unit_test(test_ipv6_mapping),
        cmocka_unit_test(test_change_request),
        cmocka_unit_test(test_change_unsupported),
        cmocka_unit_test(test_unknown_required),
        cmocka_unit_test(test_response_port),
        cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_classic),
        cmocka_unit_test(test_socket_ipv4),
        cmocka_unit_test(test_socket_ipv4_wildcard),
        cmocka_unit_test(test_socket_ipv6),
        cmocka_unit_test(test_socket_ipv6_wildcard),
        cmocka_unit_test(test_socket_open_errors),
        cmocka_unit_test(test_socket_alt_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
