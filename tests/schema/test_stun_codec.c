/* test_stun_codec.c - the STUN codec (schema/stun.c): RFC 5769 test
 * vectors (FINGERPRINT and XOR-MAPPED-ADDRESS; MESSAGE-INTEGRITY is not
 * checked by the codec), truncation at every length, garbage, attribute
 * bounds, cookie and fingerprint errors, builders round-tripping through
 * the parser, and output-buffer limits. Inputs that may be read out of
 * bounds are copied to exact-size heap buffers so ASan sees overreads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "schema/stun.h"

/* RFC 5769 2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED,
 * USERNAME padded with spaces, MESSAGE-INTEGRITY, FINGERPRINT). */
static const uint8_t RFC5769_REQUEST[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 2.2: sample IPv4 response, mapped 192.0.2.1:32853. */
static const uint8_t RFC5769_RESPONSE_V4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 2.3: sample IPv6 response, mapped
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t RFC5769_RESPONSE_V6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

#define RFC5769_MAPPED_PORT 32853
static const uint8_t RFC5769_TID[RDV_STUN_TID_BYTES] = {
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
static const uint8_t TID[RDV_STUN_TID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* Parses an exact-size heap copy (pointer fields of *m must not be used
 * afterwards: the copy is freed). */
static int parse_heap(const uint8_t *b, size_t n, unsigned flags, rdv_stun_msg *m)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n)
        memcpy(c, b, n);
    int r = rdv_stun_parse_opt(c, n, flags, m);
    free(c);
    return r;
}

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

static void test_crc32(void **state)
{
    (void)state;
    /* The CRC-32 check value (ITU V.42 / ISO-HDLC). */
    assert_int_equal(rdv_stun_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
    assert_int_equal(rdv_stun_crc32(NULL, 0), 0);
}

static void test_rfc5769_request(void **state)
{
    (void)state;
    rdv_stun_msg m;
    assert_int_equal(rdv_stun_parse(RFC5769_REQUEST, sizeof(RFC5769_REQUEST), &m),
                     (int)sizeof(RFC5769_REQUEST));
    assert_int_equal(m.type, RDV_STUN_BINDING_REQUEST);
    assert_int_equal(m.method, RDV_STUN_METHOD_BINDING);
    assert_int_equal(m.cls, RDV_STUN_CLASS_REQUEST);
    assert_false(m.classic);
    assert_memory_equal(m.tid, RFC5769_TID, RDV_STUN_TID_BYTES);
    assert_true(m.has_fingerprint);
    assert_true(m.has_integrity);
    assert_int_equal(m.software_len, 16);
    assert_memory_equal(m.software, "STUN test client", 16);
    assert_int_equal(m.n_unknown, 0); /* PRIORITY, USERNAME are known */
    assert_false(m.has_xor_mapped);
    assert_true(rdv_stun_looks_like(RFC5769_REQUEST, sizeof(RFC5769_REQUEST)));
}

static void test_rfc5769_response_v4(void **state)
{
    (void)state;
    rdv_stun_msg m;
    assert_int_equal(rdv_stun_parse(RFC5769_RESPONSE_V4, sizeof(RFC5769_RESPONSE_V4), &m),
                     (int)sizeof(RFC5769_RESPONSE_V4));
    assert_int_equal(m.type, RDV_STUN_BINDING_SUCCESS);
    assert_int_equal(m.cls, RDV_STUN_CLASS_SUCCESS);
    assert_true(m.has_fingerprint);
    assert_true(m.has_xor_mapped);
    rdv_stun_addr want = ip("192.0.2.1", RFC5769_MAPPED_PORT);
    assert_true(rdv_stun_addr_equal(&m.xor_mapped, &want));
    assert_int_equal(m.software_len, 11);
    assert_memory_equal(m.software, "test vector", 11);
}

static void test_rfc5769_response_v6(void **state)
{
    (void)state;
    rdv_stun_msg m;
    assert_int_equal(rdv_stun_parse(RFC5769_RESPONSE_V6, sizeof(RFC5769_RESPONSE_V6), &m),
                     (int)sizeof(RFC5769_RESPONSE_V6));
    assert_true(m.has_fingerprint);
    assert_true(m.has_xor_mapped);
    rdv_stun_addr want = ip("2001:db8:1234:5678:11:2233:4455:6677", RFC5769_MAPPED_PORT);
    assert_true(rdv_stun_addr_equal(&m.xor_mapped, &want));
}

/* Re-encoding the vectors' mapped addresses gives the vectors' bytes. */
static void test_rfc5769_xor_encode(void **state)
{
    (void)state;
    uint8_t buf[64];
    rdv_stun_writer w;
    rdv_stun_begin(&w, buf, sizeof(buf), RDV_STUN_BINDING_SUCCESS, RDV_STUN_MAGIC_COOKIE,
                   RFC5769_TID);
    rdv_stun_addr v4 = ip("192.0.2.1", RFC5769_MAPPED_PORT);
    rdv_stun_put_xor_addr(&w, RDV_STUN_ATTR_XOR_MAPPED_ADDRESS, &v4);
    assert_int_equal(rdv_stun_finish(&w), 32);
    assert_memory_equal(buf + 20, RFC5769_RESPONSE_V4 + 36, 12);

    rdv_stun_begin(&w, buf, sizeof(buf), RDV_STUN_BINDING_SUCCESS, RDV_STUN_MAGIC_COOKIE,
                   RFC5769_TID);
    rdv_stun_addr v6 = ip("2001:db8:1234:5678:11:2233:4455:6677", RFC5769_MAPPED_PORT);
    rdv_stun_put_xor_addr(&w, RDV_STUN_ATTR_XOR_MAPPED_ADDRESS, &v6);
    assert_int_equal(rdv_stun_finish(&w), 44);
    assert_memory_equal(buf + 20, RFC5769_RESPONSE_V6 + 36, 24);
}

static void test_truncated_every_length(void **state)
{
    (void)state;
    const uint8_t *vec[] = {RFC5769_REQUEST, RFC5769_RESPONSE_V4, RFC5769_RESPONSE_V6};
    size_t lens[] = {sizeof(RFC5769_REQUEST), sizeof(RFC5769_RESPONSE_V4),
                     sizeof(RFC5769_RESPONSE_V6)};
    for (size_t v = 0; v < 3; v++) {
        rdv_stun_msg m;
        for (size_t l = 0; l < lens[v]; l++)
            assert_int_equal(parse_heap(vec[v], l, RDV_STUN_PARSE_CLASSIC, &m),
                             RDV_STUN_ERR_TRUNCATED);
        assert_int_equal(parse_heap(vec[v], lens[v], 0, &m), (int)lens[v]);
    }
}

/* The message ends where its length says; trailing bytes are not read. */
static void test_trailing_bytes(void **state)
{
    (void)state;
    uint8_t buf[sizeof(RFC5769_RESPONSE_V4) + 7];
    memcpy(buf, RFC5769_RESPONSE_V4, sizeof(RFC5769_RESPONSE_V4));
    memset(buf + sizeof(RFC5769_RESPONSE_V4), 0xAA, 7);
    rdv_stun_msg m;
    assert_int_equal(parse_heap(buf, sizeof(buf), 0, &m), (int)sizeof(RFC5769_RESPONSE_V4));
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random bytes at every length up to 600, then random bodies behind a
 * valid header (so the attribute walker sees them). Never crashes; a
 * success never claims more than it was given. */
static void test_garbage(void **state)
{
    (void)state;
    uint64_t s = 0x5eed5eed5eedULL;
    uint8_t buf[600];
    for (size_t len = 0; len <= sizeof(buf); len++) {
        for (int rep = 0; rep < 8; rep++) {
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)xorshift(&s);
            rdv_stun_msg m;
            int r = parse_heap(buf, len, RDV_STUN_PARSE_CLASSIC, &m);
            assert_true(r < 0 || (size_t)r <= len);
            if (len >= RDV_STUN_HEADER_BYTES && len % 4 == 0) {
                buf[0] &= 0x3F;
                buf[2] = (uint8_t)((len - 20) >> 8);
                buf[3] = (uint8_t)(len - 20);
                buf[4] = 0x21, buf[5] = 0x12, buf[6] = 0xa4, buf[7] = 0x42;
                /* Small attribute lengths, so some parse. */
                for (size_t o = 20; o + 4 <= len; o += 8) {
                    buf[o + 2] = 0;
                    buf[o + 3] &= 0x0F;
                }
                r = parse_heap(buf, len, 0, &m);
                assert_true(r < 0 || (size_t)r == len);
            }
        }
    }
}

/* A header + body of given attributes for the error tests. */
static size_t make_msg(uint8_t *buf, uint16_t type, const uint8_t *body, size_t blen)
{
    buf[0] = (uint8_t)(type >> 8);
    buf[1] = (uint8_t)type;
    buf[2] = (uint8_t)(blen >> 8);
    buf[3] = (uint8_t)blen;
    buf[4] = 0x21, buf[5] = 0x12, buf[6] = 0xa4, buf[7] = 0x42;
    memcpy(buf + 8, TID, RDV_STUN_TID_BYTES);
    if (blen)
        memcpy(buf + 20, body, blen);
    return 20 + blen;
}

static void test_attr_overflow(void **state)
{
    (void)state;
    uint8_t buf[64];
    rdv_stun_msg m;
    /* Attribute claims 0xFFFF bytes. */
    static const uint8_t huge[] = {0x80, 0x22, 0xFF, 0xFF, 'a', 'b', 'c', 'd'};
    size_t n = make_msg(buf, RDV_STUN_BINDING_REQUEST, huge, sizeof(huge));
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_ATTR_OVERFLOW);
    /* Header fields are valid for a 400. */
    assert_int_equal(m.type, RDV_STUN_BINDING_REQUEST);
    assert_memory_equal(m.tid, TID, RDV_STUN_TID_BYTES);
    /* Value fits, padding does not: 5 bytes need 8. */
    static const uint8_t pad[] = {0x80, 0x22, 0x00, 0x05, 'a', 'b', 'c', 'd'};
    n = make_msg(buf, RDV_STUN_BINDING_REQUEST, pad, sizeof(pad));
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_ATTR_OVERFLOW);
    /* Exactly fitting value with padding: fine. */
    static const uint8_t ok[] = {0x80, 0x22, 0x00, 0x03, 'a', 'b', 'c', 0};
    n = make_msg(buf, RDV_STUN_BINDING_REQUEST, ok, sizeof(ok));
    assert_int_equal(parse_heap(buf, n, 0, &m), (int)n);
    /* Attribute length beyond the message but inside the datagram: the
     * message length rules, so it still overflows. */
    uint8_t big[64];
    n = make_msg(big, RDV_STUN_BINDING_REQUEST, pad, sizeof(pad));
    memset(big + n, 0, 16);
    assert_int_equal(parse_heap(big, n + 16, 0, &m), RDV_STUN_ERR_ATTR_OVERFLOW);
    /* The iterator alone. */
    size_t off = 0;
    rdv_stun_attr a;
    assert_int_equal(rdv_stun_attr_next(huge, 2, &off, &a), RDV_STUN_ERR_ATTR_OVERFLOW);
    off = 0;
    assert_int_equal(rdv_stun_attr_next(ok, sizeof(ok), &off, &a), 1);
    assert_int_equal(a.type, RDV_STUN_ATTR_SOFTWARE);
    assert_int_equal(a.len, 3);
    assert_int_equal(off, 8);
    assert_int_equal(rdv_stun_attr_next(ok, sizeof(ok), &off, &a), 0);
}

static void test_header_errors(void **state)
{
    (void)state;
    uint8_t buf[128];
    rdv_stun_msg m;
    memcpy(buf, RFC5769_RESPONSE_V4, sizeof(RFC5769_RESPONSE_V4));
    size_t n = sizeof(RFC5769_RESPONSE_V4);
    /* RFC 8489 5: top two bits. */
    buf[0] |= 0x40;
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_NOT_STUN);
    buf[0] = 0x01;
    /* Length not a multiple of 4. */
    buf[3] = 0x3d;
    assert_int_equal(parse_heap(buf, n + 1, 0, &m), RDV_STUN_ERR_BAD_LENGTH);
    buf[3] = 0x3c;
    /* Bad cookie. */
    buf[4] ^= 0x01;
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_BAD_COOKIE);
    assert_false(rdv_stun_looks_like(buf, n));
    /* As a classic message it parses as far as the FINGERPRINT, which
     * covered the original cookie. */
    assert_int_equal(parse_heap(buf, n, RDV_STUN_PARSE_CLASSIC, &m), RDV_STUN_ERR_FINGERPRINT);
    assert_true(m.classic);
}

static void test_bad_fingerprint(void **state)
{
    (void)state;
    uint8_t buf[128];
    rdv_stun_msg m;
    size_t n = sizeof(RFC5769_REQUEST);
    /* A changed body byte. */
    memcpy(buf, RFC5769_REQUEST, n);
    buf[30] ^= 0x20;
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_FINGERPRINT);
    /* A changed CRC. */
    memcpy(buf, RFC5769_REQUEST, n);
    buf[n - 1] ^= 0x01;
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_FINGERPRINT);
    /* A changed TID. */
    memcpy(buf, RFC5769_REQUEST, n);
    buf[12] ^= 0x80;
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_FINGERPRINT);
    /* Wrong FINGERPRINT length. */
    static const uint8_t fp8[] = {0x80, 0x28, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
    n = make_msg(buf, RDV_STUN_BINDING_REQUEST, fp8, sizeof(fp8));
    assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_BAD_ATTRIBUTE);
}

static void test_after_fingerprint(void **state)
{
    (void)state;
    uint8_t buf[128];
    uint8_t out[128];
    int n = rdv_stun_build_binding_request(out, sizeof(out), TID,
                                           &(rdv_stun_request_opts){.fingerprint = true});
    assert_int_equal(n, 28);
    /* Append a SOFTWARE after the FINGERPRINT and fix the length. */
    memcpy(buf, out, (size_t)n);
    static const uint8_t sw[] = {0x80, 0x22, 0x00, 0x04, 't', 'e', 's', 't'};
    memcpy(buf + n, sw, sizeof(sw));
    buf[3] = (uint8_t)(n - 20 + sizeof(sw));
    rdv_stun_msg m;
    /* The CRC no longer matches the new length either; fix it so the
     * "nothing after FINGERPRINT" rule is what fails. */
    uint32_t crc = rdv_stun_crc32(buf, 20) ^ RDV_STUN_FINGERPRINT_XOR;
    buf[24] = (uint8_t)(crc >> 24), buf[25] = (uint8_t)(crc >> 16);
    buf[26] = (uint8_t)(crc >> 8), buf[27] = (uint8_t)crc;
    assert_int_equal(parse_heap(buf, (size_t)n + sizeof(sw), 0, &m),
                     RDV_STUN_ERR_AFTER_FINGERPRINT);
}

static void test_bad_attributes(void **state)
{
    (void)state;
    uint8_t buf[128];
    rdv_stun_msg m;
    static const uint8_t bad_family[] = {0x00, 0x20, 0x00, 0x08, 0, 3, 0, 1, 1, 2, 3, 4};
    static const uint8_t bad_v6_len[] = {0x00, 0x01, 0x00, 0x08, 0, 2, 0, 1, 1, 2, 3, 4};
    static const uint8_t short_addr[] = {0x00, 0x01, 0x00, 0x02, 0, 1, 0, 0};
    static const uint8_t bad_class[] = {0x00, 0x09, 0x00, 0x04, 0, 0, 7, 0};
    static const uint8_t bad_number[] = {0x00, 0x09, 0x00, 0x04, 0, 0, 4, 100};
    static const uint8_t short_err[] = {0x00, 0x09, 0x00, 0x03, 0, 0, 4, 0};
    static const uint8_t cr_len[] = {0x00, 0x03, 0x00, 0x08, 0, 0, 0, 6, 0, 0, 0, 0};
    static const uint8_t unk_odd[] = {0x00, 0x0A, 0x00, 0x03, 0, 1, 0, 0};
    const uint8_t *cases[] = {bad_family, bad_v6_len, short_addr, bad_class,
                              bad_number, short_err,  cr_len,     unk_odd};
    size_t lens[] = {sizeof(bad_family), sizeof(bad_v6_len), sizeof(short_addr),
                     sizeof(bad_class),  sizeof(bad_number), sizeof(short_err),
                     sizeof(cr_len),     sizeof(unk_odd)};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = make_msg(buf, RDV_STUN_BINDING_REQUEST, cases[i], lens[i]);
        assert_int_equal(parse_heap(buf, n, 0, &m), RDV_STUN_ERR_BAD_ATTRIBUTE);
        assert_int_equal(m.type, RDV_STUN_BINDING_REQUEST);
    }
    /* Over-long SOFTWARE (764 bytes). */
    uint8_t big[20 + 4 + 764];
    uint8_t body[4 + 764];
    memset(body, 'x', sizeof(body));
    body[0] = 0x80, body[1] = 0x22, body[2] = 0x02, body[3] = 0xFC;
    size_t n = make_msg(big, RDV_STUN_BINDING_REQUEST, body, sizeof(body));
    assert_int_equal(parse_heap(big, n, 0, &m), RDV_STUN_ERR_BAD_ATTRIBUTE);
}

static void test_unknown_attributes(void **state)
{
    (void)state;
    uint8_t buf[128];
    rdv_stun_msg m;
    /* 0x7777 required+unknown (twice: listed once), 0x8777 optional,
     * PADDING (not implemented: unknown on purpose). */
    static const uint8_t body[] = {0x77, 0x77, 0x00, 0x00, 0x87, 0x77, 0x00, 0x01, 1, 0, 0, 0,
                                   0x77, 0x77, 0x00, 0x00, 0x00, 0x26, 0x00, 0x04, 0, 1, 0, 0};
    size_t n = make_msg(buf, RDV_STUN_BINDING_REQUEST, body, sizeof(body));
    assert_int_equal(parse_heap(buf, n, 0, &m), (int)n);
    assert_int_equal(m.n_unknown, 2);
    assert_int_equal(m.unknown[0], 0x7777);
    assert_int_equal(m.unknown[1], RDV_STUN_ATTR_PADDING);
    /* After MESSAGE-INTEGRITY, unknown attributes are ignored (RFC 8489
     * 14.5). */
    static const uint8_t mi_body[] = {
        0x00, 0x08, 0x00, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x77, 0x77, 0x00, 0x00};
    n = make_msg(buf, RDV_STUN_BINDING_REQUEST, mi_body, sizeof(mi_body));
    assert_int_equal(parse_heap(buf, n, 0, &m), (int)n);
    assert_true(m.has_integrity);
    assert_int_equal(m.n_unknown, 0);

    /* More distinct unknowns than kept: counted, first ones kept. */
    uint8_t many[20 + 4 * 40];
    uint8_t mb[4 * 40];
    for (int i = 0; i < 40; i++) {
        mb[4 * i] = 0x70;
        mb[4 * i + 1] = (uint8_t)i;
        mb[4 * i + 2] = mb[4 * i + 3] = 0;
    }
    n = make_msg(many, RDV_STUN_BINDING_REQUEST, mb, sizeof(mb));
    assert_int_equal(parse_heap(many, n, 0, &m), (int)n);
    assert_int_equal(m.n_unknown, 40);
    assert_int_equal(m.unknown[RDV_STUN_MAX_UNKNOWN - 1], 0x7000 + RDV_STUN_MAX_UNKNOWN - 1);
}

static void test_type_bits(void **state)
{
    (void)state;
    /* RFC 8489 5: method bits interleaved with the class bits. */
    struct { uint16_t type, method; uint8_t cls; } t[] = {
        {0x0001, 0x001, RDV_STUN_CLASS_REQUEST},
        {0x0011, 0x001, RDV_STUN_CLASS_INDICATION},
        {0x0101, 0x001, RDV_STUN_CLASS_SUCCESS},
        {0x0111, 0x001, RDV_STUN_CLASS_ERROR},
        {0x0003, 0x003, RDV_STUN_CLASS_REQUEST}, /* TURN Allocate */
        {0x0016, 0x006, RDV_STUN_CLASS_INDICATION},
        {0x3EEF, 0xFFF, RDV_STUN_CLASS_REQUEST},
        {0x3FFF, 0xFFF, RDV_STUN_CLASS_ERROR},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint8_t buf[20];
        make_msg(buf, t[i].type, NULL, 0);
        rdv_stun_msg m;
        assert_int_equal(rdv_stun_parse(buf, sizeof(buf), &m), 20);
        assert_int_equal(m.method, t[i].method);
        assert_int_equal(m.cls, t[i].cls);
    }
}

static void test_build_request(void **state)
{
    (void)state;
    uint8_t buf[128];
    rdv_stun_msg m;
    int n = rdv_stun_build_binding_request(buf, sizeof(buf), TID, NULL);
    assert_int_equal(n, 20);
    assert_int_equal(rdv_stun_parse(buf, (size_t)n, &m), 20);
    assert_int_equal(m.type, RDV_STUN_BINDING_REQUEST);
    assert_memory_equal(m.tid, TID, RDV_STUN_TID_BYTES);

    rdv_stun_request_opts o = {.change_flags = RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT,
                               .software = "rendezvous/test",
                               .fingerprint = true};
    n = rdv_stun_build_binding_request(buf, sizeof(buf), TID, &o);
    /* 20 + CHANGE-REQUEST 8 + SOFTWARE 4+16 + FINGERPRINT 8 */
    assert_int_equal(n, 56);
    assert_int_equal(rdv_stun_parse(buf, (size_t)n, &m), n);
    assert_true(m.has_change_request);
    assert_int_equal(m.change_flags, RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT);
    assert_true(m.has_fingerprint);
    assert_int_equal(m.software_len, 15);
    assert_memory_equal(m.software, "rendezvous/test", 15);

    /* RESPONSE-PORT (RFC 5780 7.5). */
    o = (rdv_stun_request_opts){.response_port = 4242};
    n = rdv_stun_build_binding_request(buf, sizeof(buf), TID, &o);
    assert_int_equal(n, 28);
    assert_int_equal(rdv_stun_parse(buf, (size_t)n, &m), n);
    assert_true(m.has_response_port);
    assert_int_equal(m.response_port, 4242);
    buf[23] = 8; /* wrong length */
    assert_int_equal(rdv_stun_parse(buf, (size_t)n, &m), RDV_STUN_ERR_ATTR_OVERFLOW);

    /* CHANGE-REQUEST with no flags (RFC 5780 test I). */
    o = (rdv_stun_request_opts){.change_request = true};
    n = rdv_stun_build_binding_request(buf, sizeof(buf), TID, &o);
    assert_int_equal(n, 28);
    assert_int_equal(rdv_stun_parse(buf, (size_t)n, &m), n);
    assert_true(m.has_change_request);
    assert_int_equal(m.change_flags, 0);

    /* Invalid arguments. */
    assert_int_equal(rdv_stun_build_binding_request(NULL, 10, TID, NULL), RDV_STUN_ERR_INVALID);
    assert_int_equal(rdv_stun_build_binding_request(buf, sizeof(buf), NULL, NULL),
                     RDV_STUN_ERR_INVALID);
}

static void test_build_success_roundtrip(void **state)
{
    (void)state;
    const char *ips[] = {"203.0.113.9", "2001:db8::42"};
    for (size_t k = 0; k < 2; k++) {
        uint8_t req[64], out[256];
        rdv_stun_msg rq, m;
        int n = rdv_stun_build_binding_request(req, sizeof(req), TID, NULL);
        assert_int_equal(rdv_stun_parse(req, (size_t)n, &rq), 20);
        rdv_stun_addr origin = ip(k ? "2001:db8::1" : "192.0.2.10", 3478);
        rdv_stun_addr other = ip(k ? "2001:db8::2" : "192.0.2.11", 3479);
        rdv_stun_success_opts o = {.mapped = ip(ips[k], 54321),
                                   .response_origin = &origin,
                                   .other_address = &other,
                                   .software = "rendezvous/0.1.0",
                                   .fingerprint = true};
        n = rdv_stun_build_binding_success(out, sizeof(out), &rq, &o);
        assert_true(n > 0);
        assert_int_equal(rdv_stun_parse(out, (size_t)n, &m), n);
        assert_int_equal(m.type, RDV_STUN_BINDING_SUCCESS);
        assert_memory_equal(m.tid, TID, RDV_STUN_TID_BYTES);
        assert_true(m.has_xor_mapped);
        assert_true(rdv_stun_addr_equal(&m.xor_mapped, &o.mapped));
        assert_true(m.has_response_origin);
        assert_true(rdv_stun_addr_equal(&m.response_origin, &origin));
        assert_true(m.has_other_address);
        assert_true(rdv_stun_addr_equal(&m.other_address, &other));
        assert_true(m.has_fingerprint);
        assert_false(m.has_mapped);

        /* Every smaller capacity fails cleanly without writing past it. */
        for (int cap = 0; cap < n; cap++) {
            uint8_t *small = malloc(cap ? (size_t)cap : 1);
            assert_non_null(small);
            assert_int_equal(rdv_stun_build_binding_success(small, (size_t)cap, &rq, &o),
                             RDV_STUN_ERR_NO_SPACE);
            free(small);
        }
        uint8_t *exact = malloc((size_t)n);
        assert_non_null(exact);
        assert_int_equal(rdv_stun_build_binding_success(exact, (size_t)n, &rq, &o), n);
        assert_memory_equal(exact, out, (size_t)n);
        free(exact);
    }
}

static void test_build_error(void **state)
{
    (void)state;
    uint8_t req[64], out[256];
    rdv_stun_msg rq, m;
    int n = rdv_stun_build_binding_request(req, sizeof(req), TID, NULL);
    assert_int_equal(rdv_stun_parse(req, (size_t)n, &rq), 20);
    const uint16_t unk[] = {0x7777, RDV_STUN_ATTR_RESPONSE_PORT, 0x0042};
    n = rdv_stun_build_error(out, sizeof(out), &rq, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE, NULL, unk,
                             3, "sw", true);
    assert_true(n > 0);
    assert_int_equal(rdv_stun_parse(out, (size_t)n, &m), n);
    assert_int_equal(m.type, RDV_STUN_BINDING_ERROR);
    assert_true(m.has_error);
    assert_int_equal(m.error_code, 420);
    assert_int_equal(m.reason_len, strlen("Unknown Attribute"));
    assert_memory_equal(m.reason, "Unknown Attribute", m.reason_len);
    assert_int_equal(m.n_unknown_list, 3);
    assert_memory_equal(m.unknown_list, unk, sizeof(unk));
    assert_true(m.has_fingerprint);

    n = rdv_stun_build_error(out, sizeof(out), &rq, RDV_STUN_CODE_BAD_REQUEST, "nope", NULL, 0,
                             NULL, false);
    assert_int_equal(rdv_stun_parse(out, (size_t)n, &m), n);
    assert_int_equal(m.error_code, 400);
    assert_memory_equal(m.reason, "nope", 4);
    assert_false(m.has_fingerprint);

    /* Out of range codes. */
    assert_int_equal(rdv_stun_build_error(out, sizeof(out), &rq, 299, NULL, NULL, 0, NULL,
                                          false),
                     RDV_STUN_ERR_INVALID);
    assert_int_equal(rdv_stun_build_error(out, sizeof(out), &rq, 700, NULL, NULL, 0, NULL,
                                          false),
                     RDV_STUN_ERR_INVALID);
}

/* RFC 3489: a classic request (no cookie, 128-bit TID) round-trips with
 * MAPPED-ADDRESS / SOURCE-ADDRESS / CHANGED-ADDRESS and echoes the TID. */
static void test_classic(void **state)
{
    (void)state;
    /* A stun-client 0.97 request: CHANGE-REQUEST 0, random 16-byte TID. */
    static const uint8_t req[] = {0x00, 0x01, 0x00, 0x08, 0x01, 0x83, 0x86, 0x5b, 0x00, 0x0b,
                                  0x49, 0x42, 0xe5, 0x78, 0xd6, 0x35, 0x67, 0xf8, 0xe4, 0x1e,
                                  0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00};
    rdv_stun_msg rq, m;
    assert_int_equal(rdv_stun_parse(req, sizeof(req), &rq), RDV_STUN_ERR_BAD_COOKIE);
    assert_int_equal(rdv_stun_parse_opt(req, sizeof(req), RDV_STUN_PARSE_CLASSIC, &rq),
                     (int)sizeof(req));
    assert_true(rq.classic);
    assert_true(rq.has_change_request);
    uint8_t out[128];
    rdv_stun_addr origin = ip("127.0.0.1", 3478), other = ip("127.0.0.1", 3479);
    rdv_stun_success_opts o = {.mapped = ip("127.0.0.1", 40000),
                               .response_origin = &origin,
                               .other_address = &other,
                               .software = "ignored",
                               .fingerprint = true};
    int n = rdv_stun_build_binding_success(out, sizeof(out), &rq, &o);
    assert_int_equal(n, 20 + 3 * 12);
    assert_memory_equal(out + 4, req + 4, RDV_STUN_CLASSIC_TID_BYTES);
    assert_int_equal(rdv_stun_parse_opt(out, (size_t)n, RDV_STUN_PARSE_CLASSIC, &m), n);
    assert_true(m.has_mapped);
    assert_true(rdv_stun_addr_equal(&m.mapped, &o.mapped));
    assert_true(m.has_source_address);
    assert_true(rdv_stun_addr_equal(&m.source_address, &origin));
    assert_true(m.has_changed_address);
    assert_true(rdv_stun_addr_equal(&m.changed_address, &other));
    assert_false(m.has_xor_mapped);
    assert_null(m.software);
    /* RFC 3489 11.2.10: an odd UNKNOWN-ATTRIBUTES list repeats an entry. */
    const uint16_t unk[] = {0x7777};
    n = rdv_stun_build_error(out, sizeof(out), &rq, 420, NULL, unk, 1, "sw", true);
    assert_int_equal(rdv_stun_parse_opt(out, (size_t)n, RDV_STUN_PARSE_CLASSIC, &m), n);
    assert_int_equal(m.n_unknown_list, 2);
    assert_int_equal(m.unknown_list[1], 0x7777);
    assert_false(m.has_fingerprint);
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(1234);
    assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6.sin6_addr), 1);
    rdv_stun_addr a;
    assert_int_equal(rdv_stun_addr_from_sockaddr((struct sockaddr *)&s6, sizeof(s6), &a), 0);
    rdv_stun_addr want = ip("198.51.100.7", 1234);
    assert_true(rdv_stun_addr_equal(&a, &want));
    struct sockaddr_storage ss;
    assert_int_equal(rdv_stun_addr_to_sockaddr(&a, &ss), sizeof(struct sockaddr_in));
    assert_int_equal(rdv_stun_addr_from_sockaddr((struct sockaddr *)&s6, 4, &a),
                     RDV_STUN_ERR_INVALID);
    assert_int_equal(rdv_stun_addr_from_sockaddr(NULL, 0, &a), RDV_STUN_ERR_INVALID);
    for (int e = 0; e >= -11; e--)
        assert_non_null(rdv_stun_strerror(e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_rfc5769_request),
        cmocka_unit_test(test_rfc5769_response_v4),
        cmocka_unit_test(test_rfc5769_response_v6),
        cmocka_unit_test(test_rfc5769_xor_encode),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_attr_overflow),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_bad_fingerprint),
        cmocka_unit_test(test_after_fingerprint),
        cmocka_unit_test(test_bad_attributes),
        cmocka_unit_test(test_unknown_attributes),
        cmocka_unit_test(test_type_bits),
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_build_success_roundtrip),
        cmocka_unit_test(test_build_error),
        cmocka_unit_test(test_classic),
        cmocka_unit_test(test_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
