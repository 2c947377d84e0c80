/* stun.c - the STUN message codec (see stun.h): parse with bounds checks,
 * attribute iteration, address (XOR-)encoding, FINGERPRINT, builders.
 *
 * Pure functions of their arguments: no allocation, no global mutable
 * state (the CRC-32 table is const). Every read is checked against the
 * length the caller passed.
 */
#include "schema/stun.h"

#include <netinet/in.h>
#include <string.h>

/* RFC 8489 14.7: CRC-32 as in ITU V.42 (reflected polynomial 0xEDB88320,
 * initial value and final XOR 0xFFFFFFFF). Nibble table: 16 const
 * entries, two lookups per byte. */
static const uint32_t CRC32_NIBBLE[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
    0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
    0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
    0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

/* Byte offsets in the header (RFC 8489 5). */
#define HDR_TYPE 0
#define HDR_LENGTH 2
#define HDR_COOKIE 4
#define HDR_TID 8
/* RFC 8489 5: the two most significant bits of every STUN message are 0. */
#define HDR_TOP_BITS_MASK 0xC0u
/* RFC 8489 14.1: family byte, port, address follow a reserved zero byte. */
#define ADDR_OFF_FAMILY 1
#define ADDR_OFF_PORT 2
#define ADDR_OFF_IP 4
#define ADDR_V4_LEN 4
#define ADDR_V6_LEN 16

uint32_t rdv_stun_crc32(const uint8_t *buf, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= buf[i];
        crc = (crc >> 4) ^ CRC32_NIBBLE[crc & 0x0Fu];
        crc = (crc >> 4) ^ CRC32_NIBBLE[crc & 0x0Fu];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* Big-endian (network order) loads and stores; callers check bounds. */
static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* RFC 8489 14: attribute values are padded to a multiple of 4 bytes. */
static size_t pad4(size_t n)
{
    return (n + (RDV_STUN_ALIGN - 1)) & ~(size_t)(RDV_STUN_ALIGN - 1);
}

const char *rdv_stun_strerror(int err)
{
    switch (err) {
    case RDV_STUN_OK: return "ok";
    case RDV_STUN_ERR_TRUNCATED: return "truncated";
    case RDV_STUN_ERR_NOT_STUN: return "not a STUN message";
    case RDV_STUN_ERR_BAD_LENGTH: return "length not a multiple of 4";
    case RDV_STUN_ERR_BAD_COOKIE: return "no magic cookie";
    case RDV_STUN_ERR_ATTR_OVERFLOW: return "attribute past the end of the message";
    case RDV_STUN_ERR_BAD_ATTRIBUTE: return "malformed attribute";
    case RDV_STUN_ERR_FINGERPRINT: return "FINGERPRINT mismatch";
    case RDV_STUN_ERR_AFTER_FINGERPRINT: return "attribute after FINGERPRINT";
    case RDV_STUN_ERR_NO_SPACE: return "output buffer too small";
    case RDV_STUN_ERR_INVALID: return "invalid argument";
    default: return "unknown error";
    }
}

bool rdv_stun_looks_like(const uint8_t *buf, size_t len)
{
    return len >= RDV_STUN_HEADER_BYTES && (buf[HDR_TYPE] & HDR_TOP_BITS_MASK) == 0 &&
           rd16(buf + HDR_LENGTH) % RDV_STUN_ALIGN == 0 &&
           rd32(buf + HDR_COOKIE) == RDV_STUN_MAGIC_COOKIE;
}

int rdv_stun_attr_next(const uint8_t *body, size_t body_len, size_t *off,
                       rdv_stun_attr *attr)
{
    size_t o = *off;
    if (o >= body_len)
        return 0;
    if (body_len - o < RDV_STUN_ATTR_HEADER_BYTES)
        return RDV_STUN_ERR_ATTR_OVERFLOW;
    uint16_t type = rd16(body + o);
    uint16_t alen = rd16(body + o + 2);
    size_t room = body_len - o - RDV_STUN_ATTR_HEADER_BYTES;
    /* RFC 8489 14: the value is followed by padding to 4 bytes, which
     * must also be inside the message. */
    if (pad4(alen) > room)
        return RDV_STUN_ERR_ATTR_OVERFLOW;
    attr->type = type;
    attr->len = alen;
    attr->value = body + o + RDV_STUN_ATTR_HEADER_BYTES;
    *off = o + RDV_STUN_ATTR_HEADER_BYTES + pad4(alen);
    return 1;
}

int rdv_stun_decode_addr(const uint8_t *v, size_t len, const uint8_t *xor_tid,
                         rdv_stun_addr *out)
{
    /* RFC 8489 14.1: 0x00 | family | port | address (4 or 16 bytes). */
    if (len < ADDR_OFF_IP)
        return RDV_STUN_ERR_BAD_ATTRIBUTE;
    uint8_t fam = v[ADDR_OFF_FAMILY];
    size_t iplen;
    if (fam == RDV_STUN_FAMILY_IPV4 && len == RDV_STUN_ADDR_V4_BYTES)
        iplen = ADDR_V4_LEN;
    else if (fam == RDV_STUN_FAMILY_IPV6 && len == RDV_STUN_ADDR_V6_BYTES)
        iplen = ADDR_V6_LEN;
    else
        return RDV_STUN_ERR_BAD_ATTRIBUTE;
    memset(out, 0, sizeof(*out));
    out->family = fam;
    out->port = rd16(v + ADDR_OFF_PORT);
    memcpy(out->addr, v + ADDR_OFF_IP, iplen);
    if (xor_tid) {
        /* RFC 8489 14.2: X-Port = port ^ (cookie >> 16); X-Address =
         * address ^ cookie (IPv4) or ^ (cookie || transaction ID) (IPv6). */
        uint8_t key[ADDR_V6_LEN];
        wr32(key, RDV_STUN_MAGIC_COOKIE);
        memcpy(key + 4, xor_tid, RDV_STUN_TID_BYTES);
        out->port ^= (uint16_t)(RDV_STUN_MAGIC_COOKIE >> 16);
        for (size_t i = 0; i < iplen; i++)
            out->addr[i] ^= key[i];
    }
    return 0;
}

/* Records an unknown comprehension-required type once; counts all. */
static void note_unknown(rdv_stun_msg *m, uint16_t type)
{
    for (size_t i = 0; i < m->n_unknown && i < RDV_STUN_MAX_UNKNOWN; i++)
        if (m->unknown[i] == type)
            return;
    if (m->n_unknown < RDV_STUN_MAX_UNKNOWN)
        m->unknown[m->n_unknown] = type;
    m->n_unknown++;
}

/* Reads an address attribute into *dst once (first occurrence wins). */
static int take_addr(const rdv_stun_attr *a, const uint8_t *xor_tid, bool *has,
                     rdv_stun_addr *dst)
{
    if (*has)
        return 0;
    if (rdv_stun_decode_addr(a->value, a->len, xor_tid, dst) != 0)
        return RDV_STUN_ERR_BAD_ATTRIBUTE;
    *has = true;
    return 0;
}

/* Decodes one attribute into *m. `seen_*` are for first-occurrence rules
 * of attributes without a has_ flag. */
static int decode_attr(rdv_stun_msg *m, const rdv_stun_attr *a, bool *seen_software,
                       bool *seen_unknown)
{
    switch (a->type) {
    case RDV_STUN_ATTR_XOR_MAPPED_ADDRESS:
        if (m->classic) /* RFC 8489 14.2 needs the cookie; ignore it */
            return 0;
        return take_addr(a, m->tid, &m->has_xor_mapped, &m->xor_mapped);
    case RDV_STUN_ATTR_MAPPED_ADDRESS:
        return take_addr(a, NULL, &m->has_mapped, &m->mapped);
    case RDV_STUN_ATTR_RESPONSE_ORIGIN:
        return take_addr(a, NULL, &m->has_response_origin, &m->response_origin);
    case RDV_STUN_ATTR_OTHER_ADDRESS:
        return take_addr(a, NULL, &m->has_other_address, &m->other_address);
    case RDV_STUN_ATTR_SOURCE_ADDRESS:
        return take_addr(a, NULL, &m->has_source_address, &m->source_address);
    case RDV_STUN_ATTR_CHANGED_ADDRESS:
        return take_addr(a, NULL, &m->has_changed_address, &m->changed_address);
    case RDV_STUN_ATTR_CHANGE_REQUEST:
        /* RFC 5780 7.2: a 32-bit field; only bits A and B are defined. */
        if (a->len != RDV_STUN_CHANGE_REQUEST_BYTES)
            return RDV_STUN_ERR_BAD_ATTRIBUTE;
        if (!m->has_change_request) {
            m->has_change_request = true;
            m->change_flags = rd32(a->value) & (RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT);
        }
        return 0;
    case RDV_STUN_ATTR_RESPONSE_PORT:
        /* RFC 5780 7.5: a 16-bit port, then 2 bytes of padding. */
        if (a->len != RDV_STUN_RESPONSE_PORT_BYTES)
            return RDV_STUN_ERR_BAD_ATTRIBUTE;
        if (!m->has_response_port) {
            m->has_response_port = true;
            m->response_port = rd16(a->value);
        }
        return 0;
    case RDV_STUN_ATTR_SOFTWARE:
        /* RFC 8489 14.14: at most 763 bytes. */
        if (a->len > RDV_STUN_SOFTWARE_MAX_BYTES)
            return RDV_STUN_ERR_BAD_ATTRIBUTE;
        if (!*seen_software) {
            *seen_software = true;
            m->software = a->value;
            m->software_len = a->len;
        }
        return 0;
    case RDV_STUN_ATTR_ERROR_CODE: {
        /* RFC 8489 14.8: 21 reserved bits, Class (3 bits, 3..6), Number
         * (8 bits, 0..99), then a reason phrase of at most 763 bytes. */
        if (a->len < RDV_STUN_ERROR_CODE_HDR_BYTES ||
            a->len - RDV_STUN_ERROR_CODE_HDR_BYTES > RDV_STUN_REASON_MAX_BYTES)
            return RDV_STUN_ERR_BAD_ATTRIBUTE;
        int cls = a->value[2] & 0x07;
        int num = a->value[3];
        if (cls < RDV_STUN_CODE_MIN / 100 || cls > RDV_STUN_CODE_MAX / 100 || num > 99)
            return RDV_STUN_ERR_BAD_ATTRIBUTE;
        if (!m->has_error) {
            m->has_error = true;
            m->error_code = cls * 100 + num;
            m->reason = a->value + RDV_STUN_ERROR_CODE_HDR_BYTES;
            m->reason_len = a->len - RDV_STUN_ERROR_CODE_HDR_BYTES;
        }
        return 0;
    }
    case RDV_STUN_ATTR_UNKNOWN_ATTRIBUTES:
        /* RFC 8489 14.13: a list of 16-bit attribute types. */
        if (a->len % 2 != 0)
            return RDV_STUN_ERR_BAD_ATTRIBUTE;
        if (!*seen_unknown) {
            *seen_unknown = true;
            for (size_t i = 0; i + 1 < a->len && m->n_unknown_list < RDV_STUN_MAX_UNKNOWN;
                 i += 2)
                m->unknown_list[m->n_unknown_list++] = rd16(a->value + i);
        }
        return 0;
    case RDV_STUN_ATTR_MESSAGE_INTEGRITY:
    case RDV_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
        m->has_integrity = true;
        return 0;
    /* Known, carried but not interpreted here. */
    case RDV_STUN_ATTR_USERNAME:
    case RDV_STUN_ATTR_REALM:
    case RDV_STUN_ATTR_NONCE:
    case RDV_STUN_ATTR_PASSWORD_ALGORITHM:
    case RDV_STUN_ATTR_USERHASH:
    case RDV_STUN_ATTR_PRIORITY:
    case RDV_STUN_ATTR_USE_CANDIDATE:
        return 0;
    default:
        /* RFC 8489 14: unknown comprehension-optional attributes are
         * ignored; unknown comprehension-required ones are reported.
         * RESPONSE-ADDRESS and PADDING land here on purpose: we do not
         * implement them (a server without PADDING answers 420, RFC 5780
         * 7.6; RESPONSE-ADDRESS is reserved since RFC 5389). */
        if (RDV_STUN_ATTR_IS_REQUIRED(a->type))
            note_unknown(m, a->type);
        return 0;
    }
}

int rdv_stun_parse_opt(const uint8_t *buf, size_t len, unsigned flags, rdv_stun_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    if (!buf || len < RDV_STUN_HEADER_BYTES)
        return RDV_STUN_ERR_TRUNCATED;
    /* RFC 8489 5: the most significant 2 bits are zero. */
    if (buf[HDR_TYPE] & HDR_TOP_BITS_MASK)
        return RDV_STUN_ERR_NOT_STUN;
    uint16_t mlen = rd16(buf + HDR_LENGTH);
    /* RFC 8489 5: the length is a multiple of 4 (attributes are padded). */
    if (mlen % RDV_STUN_ALIGN != 0)
        return RDV_STUN_ERR_BAD_LENGTH;
    if (len - RDV_STUN_HEADER_BYTES < mlen)
        return RDV_STUN_ERR_TRUNCATED;
    uint32_t cookie = rd32(buf + HDR_COOKIE);
    bool classic = cookie != RDV_STUN_MAGIC_COOKIE;
    if (classic && !(flags & RDV_STUN_PARSE_CLASSIC))
        return RDV_STUN_ERR_BAD_COOKIE;

    /* RFC 8489 5: type bits M11..M0 and C1 C0 are interleaved:
     *   0b00MMMMMCMMMCMMMM (C1 at bit 8, C0 at bit 4). */
    uint16_t type = rd16(buf + HDR_TYPE);
    msg->type = type;
    msg->method = (uint16_t)((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
    msg->cls = (uint8_t)(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
    msg->length = mlen;
    msg->classic = classic;
    msg->cookie = cookie;
    memcpy(msg->tid, buf + HDR_TID, RDV_STUN_TID_BYTES);
    msg->body = buf + RDV_STUN_HEADER_BYTES;

    const uint8_t *body = msg->body;
    size_t off = 0;
    rdv_stun_attr a;
    int r;
    bool seen_software = false, seen_unknown = false, after_fp = false, after_mi = false;
    while ((r = rdv_stun_attr_next(body, mlen, &off, &a)) == 1) {
        if (after_fp)
            return RDV_STUN_ERR_AFTER_FINGERPRINT;
        if (a.type == RDV_STUN_ATTR_FINGERPRINT) {
            /* RFC 8489 14.7: CRC-32 of the message up to (excluding) this
             * attribute, XORed with 0x5354554e; the header length already
             * counts the FINGERPRINT attribute. It must be the last. */
            if (a.len != RDV_STUN_FINGERPRINT_BYTES)
                return RDV_STUN_ERR_BAD_ATTRIBUTE;
            size_t upto = (size_t)(a.value - buf) - RDV_STUN_ATTR_HEADER_BYTES;
            uint32_t want = rdv_stun_crc32(buf, upto) ^ RDV_STUN_FINGERPRINT_XOR;
            if (rd32(a.value) != want)
                return RDV_STUN_ERR_FINGERPRINT;
            msg->has_fingerprint = true;
            after_fp = true;
            continue;
        }
        /* RFC 8489 14.5: attributes after MESSAGE-INTEGRITY are ignored,
         * except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT. */
        if (after_mi && a.type != RDV_STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
            continue;
        if (a.type == RDV_STUN_ATTR_MESSAGE_INTEGRITY ||
            a.type == RDV_STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
            after_mi = true;
        int e = decode_attr(msg, &a, &seen_software, &seen_unknown);
        if (e != 0)
            return e;
    }
    if (r < 0)
        return r;
    return (int)(RDV_STUN_HEADER_BYTES + mlen);
}

int rdv_stun_parse(const uint8_t *buf, size_t len, rdv_stun_msg *msg)
{
    return rdv_stun_parse_opt(buf, len, RDV_STUN_PARSE_STRICT, msg);
}

int rdv_stun_addr_from_sockaddr(const struct sockaddr *sa, socklen_t salen, rdv_stun_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (!sa)
        return RDV_STUN_ERR_INVALID;
    if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        out->family = RDV_STUN_FAMILY_IPV4;
        out->port = ntohs(sin.sin_port);
        memcpy(out->addr, &sin.sin_addr, ADDR_V4_LEN);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        out->port = ntohs(sin6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
            /* A dual-stack socket's view of an IPv4 peer: report IPv4. */
            out->family = RDV_STUN_FAMILY_IPV4;
            memcpy(out->addr, sin6.sin6_addr.s6_addr + 12, ADDR_V4_LEN);
        } else {
            out->family = RDV_STUN_FAMILY_IPV6;
            memcpy(out->addr, &sin6.sin6_addr, ADDR_V6_LEN);
        }
        return 0;
    }
    return RDV_STUN_ERR_INVALID;
}

socklen_t rdv_stun_addr_to_sockaddr(const rdv_stun_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == RDV_STUN_FAMILY_IPV4) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(a->port);
        memcpy(&sin.sin_addr, a->addr, ADDR_V4_LEN);
        memcpy(ss, &sin, sizeof(sin));
        return (socklen_t)sizeof(sin);
    }
    if (a->family == RDV_STUN_FAMILY_IPV6) {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(a->port);
        memcpy(&sin6.sin6_addr, a->addr, ADDR_V6_LEN);
        memcpy(ss, &sin6, sizeof(sin6));
        return (socklen_t)sizeof(sin6);
    }
    return 0;
}

bool rdv_stun_ip_equal(const rdv_stun_addr *a, const rdv_stun_addr *b)
{
    size_t n = a->family == RDV_STUN_FAMILY_IPV4 ? ADDR_V4_LEN : ADDR_V6_LEN;
    return a->family == b->family && memcmp(a->addr, b->addr, n) == 0;
}

bool rdv_stun_addr_equal(const rdv_stun_addr *a, const rdv_stun_addr *b)
{
    return a->port == b->port && rdv_stun_ip_equal(a, b);
}

bool rdv_stun_ip_is_any(const rdv_stun_addr *a)
{
    static const uint8_t zero[ADDR_V6_LEN];
    return memcmp(a->addr, zero, a->family == RDV_STUN_FAMILY_IPV4 ? ADDR_V4_LEN : ADDR_V6_LEN) == 0;
}

/* ---- Building ------------------------------------------------------ */

/* Rewrites the header's length field from w->len. */
static void set_length(rdv_stun_writer *w)
{
    wr16(w->buf + HDR_LENGTH, (uint16_t)(w->len - RDV_STUN_HEADER_BYTES));
}

void rdv_stun_begin(rdv_stun_writer *w, uint8_t *buf, size_t cap, uint16_t type,
                    uint32_t cookie, const uint8_t tid[RDV_STUN_TID_BYTES])
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
    w->cookie = cookie;
    w->classic = cookie != RDV_STUN_MAGIC_COOKIE;
    if (!buf || !tid || (type & 0xC000u)) {
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    memcpy(w->tid, tid, RDV_STUN_TID_BYTES);
    if (cap < RDV_STUN_HEADER_BYTES) {
        w->err = RDV_STUN_ERR_NO_SPACE;
        return;
    }
    wr16(buf + HDR_TYPE, type);
    wr32(buf + HDR_COOKIE, cookie);
    memcpy(buf + HDR_TID, tid, RDV_STUN_TID_BYTES);
    w->len = RDV_STUN_HEADER_BYTES;
    set_length(w);
}

/* Reserves an attribute of value length `len`; returns where the value
 * goes (padding already zeroed), or NULL (error recorded). */
static uint8_t *reserve(rdv_stun_writer *w, uint16_t type, size_t len)
{
    if (w->err)
        return NULL;
    if (len > UINT16_MAX) {
        w->err = RDV_STUN_ERR_INVALID;
        return NULL;
    }
    size_t total = RDV_STUN_ATTR_HEADER_BYTES + pad4(len);
    if (total > w->cap - w->len ||
        w->len - RDV_STUN_HEADER_BYTES + total > RDV_STUN_MAX_BODY_BYTES) {
        w->err = RDV_STUN_ERR_NO_SPACE;
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    wr16(p, type);
    wr16(p + 2, (uint16_t)len);
    memset(p + RDV_STUN_ATTR_HEADER_BYTES, 0, pad4(len));
    w->len += total;
    set_length(w);
    return p + RDV_STUN_ATTR_HEADER_BYTES;
}

void rdv_stun_put(rdv_stun_writer *w, uint16_t type, const void *value, size_t len)
{
    uint8_t *p = reserve(w, type, len);
    if (p && len)
        memcpy(p, value, len);
}

/* Writes an address value (RFC 8489 14.1); XORed when xor is set. */
static void put_addr(rdv_stun_writer *w, uint16_t type, const rdv_stun_addr *a, bool xor)
{
    if (w->err)
        return;
    size_t iplen, vlen;
    if (a && a->family == RDV_STUN_FAMILY_IPV4) {
        iplen = ADDR_V4_LEN;
        vlen = RDV_STUN_ADDR_V4_BYTES;
    } else if (a && a->family == RDV_STUN_FAMILY_IPV6) {
        iplen = ADDR_V6_LEN;
        vlen = RDV_STUN_ADDR_V6_BYTES;
    } else {
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    if (xor && w->classic) { /* RFC 8489 14.2 is defined with the cookie */
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    uint8_t *p = reserve(w, type, vlen);
    if (!p)
        return;
    p[0] = 0;
    p[ADDR_OFF_FAMILY] = a->family;
    uint16_t port = a->port;
    memcpy(p + ADDR_OFF_IP, a->addr, iplen);
    if (xor) {
        /* RFC 8489 14.2: see rdv_stun_decode_addr(). */
        uint8_t key[ADDR_V6_LEN];
        wr32(key, RDV_STUN_MAGIC_COOKIE);
        memcpy(key + 4, w->tid, RDV_STUN_TID_BYTES);
        port ^= (uint16_t)(RDV_STUN_MAGIC_COOKIE >> 16);
        for (size_t i = 0; i < iplen; i++)
            p[ADDR_OFF_IP + i] ^= key[i];
    }
    wr16(p + ADDR_OFF_PORT, port);
}

void rdv_stun_put_addr(rdv_stun_writer *w, uint16_t type, const rdv_stun_addr *a)
{
    put_addr(w, type, a, false);
}

void rdv_stun_put_xor_addr(rdv_stun_writer *w, uint16_t type, const rdv_stun_addr *a)
{
    put_addr(w, type, a, true);
}

void rdv_stun_put_change_request(rdv_stun_writer *w, uint32_t flags)
{
    uint8_t *p = reserve(w, RDV_STUN_ATTR_CHANGE_REQUEST, RDV_STUN_CHANGE_REQUEST_BYTES);
    if (p)
        wr32(p, flags & (RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT));
}

void rdv_stun_put_response_port(rdv_stun_writer *w, uint16_t port)
{
    uint8_t *p = reserve(w, RDV_STUN_ATTR_RESPONSE_PORT, RDV_STUN_RESPONSE_PORT_BYTES);
    if (p)
        wr16(p, port); /* the 2 padding bytes are already zero */
}

/* RFC 8489 14.8 / RFC 5780: the suggested reason phrases. */
static const char *default_reason(int code)
{
    switch (code) {
    case RDV_STUN_CODE_TRY_ALTERNATE: return "Try Alternate";
    case RDV_STUN_CODE_BAD_REQUEST: return "Bad Request";
    case RDV_STUN_CODE_UNAUTHORIZED: return "Unauthorized";
    case RDV_STUN_CODE_UNKNOWN_ATTRIBUTE: return "Unknown Attribute";
    case RDV_STUN_CODE_STALE_NONCE: return "Stale Nonce";
    case RDV_STUN_CODE_SERVER_ERROR: return "Server Error";
    default: return "";
    }
}

void rdv_stun_put_error_code(rdv_stun_writer *w, int code, const char *reason)
{
    if (w->err)
        return;
    if (code < RDV_STUN_CODE_MIN || code > RDV_STUN_CODE_MAX) {
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    if (!reason)
        reason = default_reason(code);
    size_t rlen = strnlen(reason, RDV_STUN_REASON_MAX_BYTES + 1);
    if (rlen > RDV_STUN_REASON_MAX_BYTES) {
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    uint8_t *p = reserve(w, RDV_STUN_ATTR_ERROR_CODE, RDV_STUN_ERROR_CODE_HDR_BYTES + rlen);
    if (!p)
        return;
    /* RFC 8489 14.8: Class = hundreds digit, Number = code % 100. */
    p[0] = p[1] = 0;
    p[2] = (uint8_t)(code / 100);
    p[3] = (uint8_t)(code % 100);
    memcpy(p + RDV_STUN_ERROR_CODE_HDR_BYTES, reason, rlen);
}

void rdv_stun_put_unknown(rdv_stun_writer *w, const uint16_t *types, size_t n)
{
    if (w->err)
        return;
    if (!types || n == 0 || n > RDV_STUN_MAX_UNKNOWN) {
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    /* RFC 3489 11.2.10: an odd count repeats one entry (no padding there);
     * RFC 8489 14.13 pads instead. */
    size_t count = (w->classic && n % 2) ? n + 1 : n;
    uint8_t *p = reserve(w, RDV_STUN_ATTR_UNKNOWN_ATTRIBUTES, count * 2);
    if (!p)
        return;
    for (size_t i = 0; i < count; i++)
        wr16(p + 2 * i, types[i < n ? i : n - 1]);
}

void rdv_stun_put_fingerprint(rdv_stun_writer *w)
{
    uint8_t *p = reserve(w, RDV_STUN_ATTR_FINGERPRINT, RDV_STUN_FINGERPRINT_BYTES);
    if (!p)
        return;
    /* RFC 8489 14.7: over everything before this attribute, with the
     * header length already including it (reserve() updated it). */
    size_t upto = (size_t)(p - w->buf) - RDV_STUN_ATTR_HEADER_BYTES;
    wr32(p, rdv_stun_crc32(w->buf, upto) ^ RDV_STUN_FINGERPRINT_XOR);
}

int rdv_stun_finish(const rdv_stun_writer *w)
{
    return w->err ? w->err : (int)w->len;
}

/* Appends SOFTWARE (RFC 8489 14.14) unless software is NULL. */
static void put_software(rdv_stun_writer *w, const char *software)
{
    if (!software || w->err)
        return;
    size_t n = strnlen(software, RDV_STUN_SOFTWARE_MAX_BYTES + 1);
    if (n > RDV_STUN_SOFTWARE_MAX_BYTES) {
        w->err = RDV_STUN_ERR_INVALID;
        return;
    }
    rdv_stun_put(w, RDV_STUN_ATTR_SOFTWARE, software, n);
}

int rdv_stun_build_binding_request(uint8_t *out, size_t cap,
                                   const uint8_t tid[RDV_STUN_TID_BYTES],
                                   const rdv_stun_request_opts *opts)
{
    rdv_stun_writer w;
    rdv_stun_begin(&w, out, cap, RDV_STUN_BINDING_REQUEST, RDV_STUN_MAGIC_COOKIE, tid);
    if (opts) {
        if (opts->response_port)
            rdv_stun_put_response_port(&w, opts->response_port);
        if (opts->change_request || opts->change_flags)
            rdv_stun_put_change_request(&w, opts->change_flags);
        put_software(&w, opts->software);
        if (opts->fingerprint)
            rdv_stun_put_fingerprint(&w);
    }
    return rdv_stun_finish(&w);
}

/* RFC 8489 6: a response carries the request's method; the class differs. */
static uint16_t response_type(uint16_t req_type, uint8_t cls)
{
    uint16_t t = (uint16_t)(req_type & ~0x0110u);
    if (cls & 0x1)
        t |= 0x0010;
    if (cls & 0x2)
        t |= 0x0100;
    return t;
}

int rdv_stun_build_binding_success(uint8_t *out, size_t cap, const rdv_stun_msg *req,
                                   const rdv_stun_success_opts *o)
{
    if (!req || !o)
        return RDV_STUN_ERR_INVALID;
    rdv_stun_writer w;
    rdv_stun_begin(&w, out, cap, response_type(req->type, RDV_STUN_CLASS_SUCCESS),
                   req->cookie, req->tid);
    if (req->classic) {
        /* RFC 3489 11.2: MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS. */
        rdv_stun_put_addr(&w, RDV_STUN_ATTR_MAPPED_ADDRESS, &o->mapped);
        if (o->response_origin)
            rdv_stun_put_addr(&w, RDV_STUN_ATTR_SOURCE_ADDRESS, o->response_origin);
        if (o->other_address)
            rdv_stun_put_addr(&w, RDV_STUN_ATTR_CHANGED_ADDRESS, o->other_address);
        return rdv_stun_finish(&w);
    }
    rdv_stun_put_xor_addr(&w, RDV_STUN_ATTR_XOR_MAPPED_ADDRESS, &o->mapped);
    if (o->response_origin)
        rdv_stun_put_addr(&w, RDV_STUN_ATTR_RESPONSE_ORIGIN, o->response_origin);
    if (o->other_address)
        rdv_stun_put_addr(&w, RDV_STUN_ATTR_OTHER_ADDRESS, o->other_address);
    put_software(&w, o->software);
    if (o->fingerprint)
        rdv_stun_put_fingerprint(&w);
    return rdv_stun_finish(&w);
}

int rdv_stun_build_error(uint8_t *out, size_t cap, const rdv_stun_msg *req, int code,
                         const char *reason, const uint16_t *unknown, size_t n_unknown,
                         const char *software, bool fingerprint)
{
    if (!req)
        return RDV_STUN_ERR_INVALID;
    rdv_stun_writer w;
    rdv_stun_begin(&w, out, cap, response_type(req->type, RDV_STUN_CLASS_ERROR), req->cookie,
                   req->tid);
    rdv_stun_put_error_code(&w, code, reason);
    if (n_unknown > 0)
        rdv_stun_put_unknown(&w, unknown, n_unknown);
    if (!req->classic) {
        put_software(&w, software);
        if (fingerprint)
            rdv_stun_put_fingerprint(&w);
    }
    return rdv_stun_finish(&w);
}
