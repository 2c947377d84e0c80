/* stun.h - the STUN message codec (RFC 8489, with the RFC 5780 NAT
 * behaviour discovery attributes and the RFC 3489 / RFC 5389 legacy ones),
 * shared by rendezvousd's responder and the node library's STUN client.
 *
 * Everything here is a pure function: rdv_stun_parse() reads
 * (const uint8_t *buf, size_t len), never reads past len, allocates
 * nothing, keeps no state, and returns how many bytes the message took or a
 * negative RDV_STUN_ERR_*; the builders write into a caller buffer of a
 * given capacity and return the message length or a negative error.
 * Parsed strings (SOFTWARE, reason phrases) point into the caller's buffer.
 *
 * Not implemented: MESSAGE-INTEGRITY(-SHA256) computation (short/long-term
 * credentials); the attributes are recognised, not checked.
 *
 * RFC 8489 5: the header is 20 bytes:
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   |0 0|     STUN Message Type     |         Message Length        |
 *   |                         Magic Cookie                          |
 *   |                Transaction ID (96 bits)                       |
 */
#ifndef RDV_SCHEMA_STUN_H
#define RDV_SCHEMA_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#if defined(__GNUC__)
#define RDV_STUN_WUR __attribute__((warn_unused_result))
#else
#define RDV_STUN_WUR
#endif

/* ---- Sizes (RFC 8489 5, 14) ---------------------------------------- */
#define RDV_STUN_HEADER_BYTES 20          /* RFC 8489 5 */
#define RDV_STUN_ATTR_HEADER_BYTES 4      /* RFC 8489 14: type + length */
#define RDV_STUN_ALIGN 4                  /* RFC 8489 14: 32-bit boundary */
#define RDV_STUN_MAGIC_COOKIE 0x2112A442u /* RFC 8489 5 */
#define RDV_STUN_TID_BYTES 12             /* RFC 8489 5: 96-bit transaction ID */
#define RDV_STUN_CLASSIC_TID_BYTES 16     /* RFC 3489 11.1: 128-bit transaction ID */
#define RDV_STUN_MAX_BODY_BYTES 65532     /* largest multiple of 4 in 16 bits */
#define RDV_STUN_FINGERPRINT_XOR 0x5354554Eu /* RFC 8489 14.7: "STUN" */
#define RDV_STUN_FINGERPRINT_BYTES 4      /* RFC 8489 14.7: CRC-32 value */
#define RDV_STUN_CHANGE_REQUEST_BYTES 4   /* RFC 5780 7.2 */
#define RDV_STUN_RESPONSE_PORT_BYTES 4    /* RFC 5780 7.5: port + 2 bytes padding */
#define RDV_STUN_ERROR_CODE_HDR_BYTES 4   /* RFC 8489 14.8: before the reason */
#define RDV_STUN_SOFTWARE_MAX_BYTES 763   /* RFC 8489 14.14: < 128 chars, <= 763 bytes */
#define RDV_STUN_REASON_MAX_BYTES 763     /* RFC 8489 14.8 */
#define RDV_STUN_ADDR_V4_BYTES 8          /* RFC 8489 14.1: family+port+4 */
#define RDV_STUN_ADDR_V6_BYTES 20         /* RFC 8489 14.1: family+port+16 */
#define RDV_STUN_MAX_UNKNOWN 16           /* kept per message (unknown types) */
/* RFC 8489 6.1: a message must fit a 576-byte IPv4 path unless the
 * path MTU is known; our responses are far smaller. */
#define RDV_STUN_MAX_UDP_MESSAGE 576

/* ---- Methods and classes (RFC 8489 5) ---------------------------- */
#define RDV_STUN_METHOD_BINDING 0x001
#define RDV_STUN_CLASS_REQUEST 0x0        /* C1C0 = 0b00 */
#define RDV_STUN_CLASS_INDICATION 0x1     /* 0b01 */
#define RDV_STUN_CLASS_SUCCESS 0x2        /* 0b10 */
#define RDV_STUN_CLASS_ERROR 0x3          /* 0b11 */
#define RDV_STUN_BINDING_REQUEST 0x0001
#define RDV_STUN_BINDING_INDICATION 0x0011
#define RDV_STUN_BINDING_SUCCESS 0x0101
#define RDV_STUN_BINDING_ERROR 0x0111

/* ---- Attributes (RFC 8489 14 and its IANA registry, RFC 5780 7, RFC 3489 11.2,
 *      RFC 8445 16.1). 0x0000-0x7FFF are comprehension-required,
 *      0x8000-0xFFFF comprehension-optional (RFC 8489 14). ----------- */
#define RDV_STUN_ATTR_MAPPED_ADDRESS 0x0001      /* RFC 8489 14.1 (RFC 3489) */
#define RDV_STUN_ATTR_RESPONSE_ADDRESS 0x0002    /* RFC 3489 11.2.2; reserved in 8489 */
#define RDV_STUN_ATTR_CHANGE_REQUEST 0x0003      /* RFC 5780 7.2 (RFC 3489 11.2.4) */
#define RDV_STUN_ATTR_SOURCE_ADDRESS 0x0004      /* RFC 3489 11.2.5; reserved in 8489 */
#define RDV_STUN_ATTR_CHANGED_ADDRESS 0x0005     /* RFC 3489 11.2.3; reserved in 8489 */
#define RDV_STUN_ATTR_USERNAME 0x0006            /* RFC 8489 14.3 */
#define RDV_STUN_ATTR_PASSWORD 0x0007            /* RFC 3489 11.2.7; reserved */
#define RDV_STUN_ATTR_MESSAGE_INTEGRITY 0x0008   /* RFC 8489 14.5 */
#define RDV_STUN_ATTR_ERROR_CODE 0x0009          /* RFC 8489 14.8 */
#define RDV_STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A  /* RFC 8489 14.13 */
#define RDV_STUN_ATTR_REFLECTED_FROM 0x000B      /* RFC 3489 11.2.11; reserved */
#define RDV_STUN_ATTR_REALM 0x0014               /* RFC 8489 14.9 */
#define RDV_STUN_ATTR_NONCE 0x0015               /* RFC 8489 14.10 */
#define RDV_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 0x001C /* RFC 8489 14.6 */
#define RDV_STUN_ATTR_PASSWORD_ALGORITHM 0x001D  /* RFC 8489 14.12 */
#define RDV_STUN_ATTR_USERHASH 0x001E            /* RFC 8489 14.4 */
#define RDV_STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020  /* RFC 8489 14.2 */
#define RDV_STUN_ATTR_PRIORITY 0x0024            /* RFC 8445 16.1 */
#define RDV_STUN_ATTR_USE_CANDIDATE 0x0025       /* RFC 8445 16.1 */
#define RDV_STUN_ATTR_PADDING 0x0026             /* RFC 5780 7.6 (not supported) */
#define RDV_STUN_ATTR_RESPONSE_PORT 0x0027       /* RFC 5780 7.5 */
#define RDV_STUN_ATTR_PASSWORD_ALGORITHMS 0x8002 /* RFC 8489 14.11 */
#define RDV_STUN_ATTR_ALTERNATE_DOMAIN 0x8003    /* RFC 8489 14.16 */
#define RDV_STUN_ATTR_SOFTWARE 0x8022            /* RFC 8489 14.14 */
#define RDV_STUN_ATTR_ALTERNATE_SERVER 0x8023    /* RFC 8489 14.15 */
#define RDV_STUN_ATTR_CACHE_TIMEOUT 0x8027       /* RFC 5780 (IANA) */
#define RDV_STUN_ATTR_FINGERPRINT 0x8028         /* RFC 8489 14.7 */
#define RDV_STUN_ATTR_ICE_CONTROLLED 0x8029      /* RFC 8445 16.1 */
#define RDV_STUN_ATTR_ICE_CONTROLLING 0x802A     /* RFC 8445 16.1 */
#define RDV_STUN_ATTR_RESPONSE_ORIGIN 0x802B     /* RFC 5780 7.3 */
#define RDV_STUN_ATTR_OTHER_ADDRESS 0x802C       /* RFC 5780 7.4 */

/* RFC 8489 14: comprehension-required range. */
#define RDV_STUN_ATTR_IS_REQUIRED(t) ((uint16_t)(t) < 0x8000u)

/* RFC 5780 7.2 CHANGE-REQUEST flags. */
#define RDV_STUN_CHANGE_IP 0x04u   /* "A": send from the other IP */
#define RDV_STUN_CHANGE_PORT 0x02u /* "B": send from the other port */

/* Address families on the wire (RFC 8489 14.1). */
#define RDV_STUN_FAMILY_IPV4 0x01
#define RDV_STUN_FAMILY_IPV6 0x02

/* Error codes (RFC 8489 14.8). */
#define RDV_STUN_CODE_TRY_ALTERNATE 300
#define RDV_STUN_CODE_BAD_REQUEST 400
#define RDV_STUN_CODE_UNAUTHORIZED 401
#define RDV_STUN_CODE_UNKNOWN_ATTRIBUTE 420
#define RDV_STUN_CODE_STALE_NONCE 438
#define RDV_STUN_CODE_SERVER_ERROR 500
#define RDV_STUN_CODE_MIN 300 /* class 3 */
#define RDV_STUN_CODE_MAX 699 /* class 6, number 99 */

/* Return values. 0 / positive lengths are success. */
typedef enum rdv_stun_err {
    RDV_STUN_OK = 0,
    RDV_STUN_ERR_TRUNCATED = -1,      /* shorter than the header or its length */
    RDV_STUN_ERR_NOT_STUN = -2,       /* first two bits not zero (RFC 8489 5) */
    RDV_STUN_ERR_BAD_LENGTH = -3,     /* length not a multiple of 4 */
    RDV_STUN_ERR_BAD_COOKIE = -4,     /* magic cookie missing (RFC 3489 message) */
    RDV_STUN_ERR_ATTR_OVERFLOW = -5,  /* an attribute runs past the message */
    RDV_STUN_ERR_BAD_ATTRIBUTE = -6,  /* a known attribute's value is malformed */
    RDV_STUN_ERR_FINGERPRINT = -7,    /* FINGERPRINT does not match */
    RDV_STUN_ERR_AFTER_FINGERPRINT = -8, /* attribute after FINGERPRINT */
    RDV_STUN_ERR_NO_SPACE = -9,       /* builder: output buffer too small */
    RDV_STUN_ERR_INVALID = -10,       /* builder: invalid argument */
} rdv_stun_err;

/* A transport address as carried in the *-ADDRESS attributes. `addr` is
 * in network byte order (4 bytes used for IPv4, 16 for IPv6), `port` in
 * host order. Never XORed: decoding XOR-MAPPED-ADDRESS undoes the XOR. */
typedef struct rdv_stun_addr {
    uint8_t family; /* RDV_STUN_FAMILY_IPV4 / _IPV6 */
    uint16_t port;
    uint8_t addr[16];
} rdv_stun_addr;

/* One attribute during iteration; `value` points into the message. */
typedef struct rdv_stun_attr {
    uint16_t type;
    uint16_t len; /* value length, without padding */
    const uint8_t *value;
} rdv_stun_attr;

/* A parsed message. Only the first occurrence of each attribute counts
 * (RFC 8489 14). Pointers borrow the parsed buffer. */
typedef struct rdv_stun_msg {
    uint16_t type;   /* the 14-bit message type */
    uint16_t method; /* RDV_STUN_METHOD_* */
    uint8_t cls;     /* RDV_STUN_CLASS_* */
    uint16_t length; /* body length (after the header) */
    bool classic;    /* RFC 3489: no magic cookie (parse flag needed) */
    uint32_t cookie; /* the cookie field (the TID's first 4 bytes if classic) */
    uint8_t tid[RDV_STUN_TID_BYTES];
    const uint8_t *body; /* first attribute, `length` bytes */

    bool has_xor_mapped, has_mapped, has_response_origin, has_other_address;
    bool has_source_address, has_changed_address;
    rdv_stun_addr xor_mapped;      /* XOR-MAPPED-ADDRESS, already un-XORed */
    rdv_stun_addr mapped;          /* MAPPED-ADDRESS (RFC 5389 / 3489) */
    rdv_stun_addr response_origin; /* RESPONSE-ORIGIN (RFC 5780 7.3) */
    rdv_stun_addr other_address;   /* OTHER-ADDRESS (RFC 5780 7.4) */
    rdv_stun_addr source_address;  /* SOURCE-ADDRESS (RFC 3489 11.2.5) */
    rdv_stun_addr changed_address; /* CHANGED-ADDRESS (RFC 3489 11.2.3) */

    bool has_change_request;
    uint32_t change_flags; /* RDV_STUN_CHANGE_IP | RDV_STUN_CHANGE_PORT */

    bool has_response_port; /* RESPONSE-PORT (RFC 5780 7.5) */
    uint16_t response_port;

    const uint8_t *software; /* SOFTWARE (not NUL-terminated), or NULL */
    size_t software_len;

    bool has_error;
    int error_code;        /* 300..699 */
    const uint8_t *reason; /* reason phrase (not NUL-terminated) */
    size_t reason_len;

    /* UNKNOWN-ATTRIBUTES received (in an error response). */
    uint16_t unknown_list[RDV_STUN_MAX_UNKNOWN];
    size_t n_unknown_list;

    /* Comprehension-required attributes this codec does not know
     * (RFC 8489 6.3.1: a server answers 420 listing them). n_unknown
     * counts all; the first RDV_STUN_MAX_UNKNOWN distinct are kept. */
    uint16_t unknown[RDV_STUN_MAX_UNKNOWN];
    size_t n_unknown;

    bool has_fingerprint; /* present and verified */
    bool has_integrity;   /* MESSAGE-INTEGRITY(-SHA256) present, not checked */
} rdv_stun_msg;

/* Parse options. */
#define RDV_STUN_PARSE_STRICT 0u
#define RDV_STUN_PARSE_CLASSIC 1u /* accept RFC 3489 messages (no cookie) */

/* Parses one STUN message from buf[0..len) into *msg (RFC 8489 5, 14, 7.3):
 * the first two bits must be zero, the length a multiple of 4 and within
 * len, the magic cookie present (unless RDV_STUN_PARSE_CLASSIC), every
 * attribute inside the message, the known attributes well formed, nothing
 * after FINGERPRINT, and FINGERPRINT, when present, correct. Attributes
 * after MESSAGE-INTEGRITY (but MESSAGE-INTEGRITY-SHA256 and FINGERPRINT)
 * are bounds-checked and otherwise ignored (RFC 8489 14.5). Returns the
 * message's total length (header + body; bytes after it are not read) or a
 * negative rdv_stun_err. On RDV_STUN_ERR_ATTR_OVERFLOW, _BAD_ATTRIBUTE,
 * _AFTER_FINGERPRINT and _FINGERPRINT the header fields of *msg (type,
 * method, cls, classic, cookie, tid) are valid, so a server can answer
 * 400; on other errors *msg is zeroed. Never reads past len. */
RDV_STUN_WUR int rdv_stun_parse_opt(const uint8_t *buf, size_t len,
                                    unsigned flags, rdv_stun_msg *msg);

/* rdv_stun_parse_opt(buf, len, RDV_STUN_PARSE_STRICT, msg). */
RDV_STUN_WUR int rdv_stun_parse(const uint8_t *buf, size_t len, rdv_stun_msg *msg);

/* Cheap check (RFC 8489 5, RFC 7983): could buf be a STUN message with
 * the magic cookie? Reads at most the header. */
bool rdv_stun_looks_like(const uint8_t *buf, size_t len);

/* Iterates attributes of a message body: body[0..body_len), *off starting
 * at 0. Returns 1 with *attr filled and *off advanced past the padding,
 * 0 at the end, RDV_STUN_ERR_ATTR_OVERFLOW when an attribute (or its
 * header) does not fit (RFC 8489 14: values padded to 4 bytes). */
RDV_STUN_WUR int rdv_stun_attr_next(const uint8_t *body, size_t body_len,
                                    size_t *off, rdv_stun_attr *attr);

/* Decodes an address attribute value (MAPPED-ADDRESS format, RFC 8489
 * 14.1). When `xor_tid` is non-NULL the value is XOR-MAPPED-ADDRESS
 * (RFC 8489 14.2) and is un-XORed with the cookie and the 12-byte TID.
 * Returns 0 or RDV_STUN_ERR_BAD_ATTRIBUTE. */
RDV_STUN_WUR int rdv_stun_decode_addr(const uint8_t *v, size_t len,
                                      const uint8_t *xor_tid, rdv_stun_addr *out);

/* CRC-32 (ISO-HDLC, as in RFC 8489 14.7 / ITU V.42) of buf[0..len). */
uint32_t rdv_stun_crc32(const uint8_t *buf, size_t len);

/* Fills a rdv_stun_addr from a sockaddr (AF_INET / AF_INET6; an
 * IPv4-mapped IPv6 address becomes IPv4). Returns 0 or RDV_STUN_ERR_INVALID. */
RDV_STUN_WUR int rdv_stun_addr_from_sockaddr(const struct sockaddr *sa, socklen_t salen,
                                             rdv_stun_addr *out);

/* Writes a sockaddr_in / sockaddr_in6 for `a` into *ss; returns its length
 * or 0 for an unknown family. */
socklen_t rdv_stun_addr_to_sockaddr(const rdv_stun_addr *a, struct sockaddr_storage *ss);

/* True when both addresses have the same family, IP and port. */
bool rdv_stun_addr_equal(const rdv_stun_addr *a, const rdv_stun_addr *b);

/* True when both have the same family and IP (ports ignored). */
bool rdv_stun_ip_equal(const rdv_stun_addr *a, const rdv_stun_addr *b);

/* True for the unspecified address of its family (0.0.0.0, ::). */
bool rdv_stun_ip_is_any(const rdv_stun_addr *a);

/* Short static description of an rdv_stun_err. */
const char *rdv_stun_strerror(int err);

/* ---- Building ------------------------------------------------------ */

/* An in-progress message in a caller buffer. Every put updates the
 * header's length field, so FINGERPRINT sees the final length. The first
 * failure is sticky in `err`; rdv_stun_finish() reports it. */
typedef struct rdv_stun_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
    bool classic;
    uint32_t cookie;
    uint8_t tid[RDV_STUN_TID_BYTES];
} rdv_stun_writer;

/* Starts a message of `type` with the given cookie field and 12-byte TID
 * (cookie != RDV_STUN_MAGIC_COOKIE makes an RFC 3489 message, whose 16-byte
 * TID is cookie||tid). */
void rdv_stun_begin(rdv_stun_writer *w, uint8_t *buf, size_t cap, uint16_t type,
                    uint32_t cookie, const uint8_t tid[RDV_STUN_TID_BYTES]);
/* Appends an attribute with a raw value and zero padding (RFC 8489 14). */
void rdv_stun_put(rdv_stun_writer *w, uint16_t type, const void *value, size_t len);
/* Appends an address attribute (RFC 8489 14.1 format). */
void rdv_stun_put_addr(rdv_stun_writer *w, uint16_t type, const rdv_stun_addr *a);
/* Appends XOR-MAPPED-ADDRESS (RFC 8489 14.2) with the writer's cookie/TID. */
void rdv_stun_put_xor_addr(rdv_stun_writer *w, uint16_t type, const rdv_stun_addr *a);
/* Appends CHANGE-REQUEST (RFC 5780 7.2). */
void rdv_stun_put_change_request(rdv_stun_writer *w, uint32_t flags);
/* Appends RESPONSE-PORT (RFC 5780 7.5). */
void rdv_stun_put_response_port(rdv_stun_writer *w, uint16_t port);
/* Appends ERROR-CODE (RFC 8489 14.8); reason NULL = the RFC's phrase. */
void rdv_stun_put_error_code(rdv_stun_writer *w, int code, const char *reason);
/* Appends UNKNOWN-ATTRIBUTES (RFC 8489 14.13; for RFC 3489 messages an odd
 * list repeats its last entry, RFC 3489 11.2.10). */
void rdv_stun_put_unknown(rdv_stun_writer *w, const uint16_t *types, size_t n);
/* Appends FINGERPRINT (RFC 8489 14.7); it must be the last attribute. */
void rdv_stun_put_fingerprint(rdv_stun_writer *w);
/* Returns the message length, or the first error. */
RDV_STUN_WUR int rdv_stun_finish(const rdv_stun_writer *w);

/* Binding request options. */
typedef struct rdv_stun_request_opts {
    uint32_t change_flags; /* nonzero: add CHANGE-REQUEST (RFC 5780 7.2) */
    bool change_request;   /* add CHANGE-REQUEST even with flags 0 */
    uint16_t response_port; /* nonzero: add RESPONSE-PORT (RFC 5780 7.5) */
    const char *software;  /* NULL: no SOFTWARE */
    bool fingerprint;      /* add FINGERPRINT */
} rdv_stun_request_opts;

/* Builds a Binding request (RFC 8489 6.1) with `tid` (12 bytes, the
 * caller's CSPRNG output) into out[0..cap). opts may be NULL (bare
 * request). Returns the length or RDV_STUN_ERR_NO_SPACE / _INVALID. */
RDV_STUN_WUR int rdv_stun_build_binding_request(uint8_t *out, size_t cap,
                                                const uint8_t tid[RDV_STUN_TID_BYTES],
                                                const rdv_stun_request_opts *opts);

/* Binding success response contents. */
typedef struct rdv_stun_success_opts {
    rdv_stun_addr mapped;                  /* the request's source address */
    const rdv_stun_addr *response_origin;  /* NULL: omit */
    const rdv_stun_addr *other_address;    /* NULL: omit */
    const char *software;                  /* NULL: omit */
    bool fingerprint;
} rdv_stun_success_opts;

/* Builds the Binding success response to `req` (RFC 8489 6.3.1.1): same
 * TID; XOR-MAPPED-ADDRESS, then RESPONSE-ORIGIN and OTHER-ADDRESS
 * (RFC 5780 6.1), SOFTWARE, FINGERPRINT as set in *o. For an RFC 3489
 * request (req->classic) it answers the RFC 3489 11.2 way instead:
 * MAPPED-ADDRESS, SOURCE-ADDRESS (= response_origin), CHANGED-ADDRESS
 * (= other_address), no SOFTWARE/FINGERPRINT (classic clients reject
 * comprehension-required types they do not know, like 0x0020).
 * Returns the length or a negative error. */
RDV_STUN_WUR int rdv_stun_build_binding_success(uint8_t *out, size_t cap,
                                                const rdv_stun_msg *req,
                                                const rdv_stun_success_opts *o);

/* Builds an error response to `req` (RFC 8489 6.3.1.1) with ERROR-CODE
 * `code` (300..699) and `reason` (NULL: the RFC's phrase), UNKNOWN-
 * ATTRIBUTES when n_unknown > 0 (for 420, RFC 8489 14.13), then SOFTWARE
 * and FINGERPRINT as asked (skipped for RFC 3489 requests). */
RDV_STUN_WUR int rdv_stun_build_error(uint8_t *out, size_t cap, const rdv_stun_msg *req,
                                      int code, const char *reason,
                                      const uint16_t *unknown, size_t n_unknown,
                                      const char *software, bool fingerprint);

#endif
