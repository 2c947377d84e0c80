/* message.c - parse, validate and build wire protocol v1 messages.
 *
 * Implements PROTOCOL.md sections 2 (envelope), 3 (common formats) and the
 * field tables of sections 5-11. Parsing is layered, cheapest check first:
 *
 *   1. size:   len > max_len                              -> too_large
 *   2. depth:  a scan of the raw bytes counting [ and { outside strings
 *              refuses nesting deeper than RDV_MAX_DEPTH before jansson
 *              allocates anything                         -> bad_json
 *   3. JSON:   jansson with JSON_REJECT_DUPLICATES and JSON_DECODE_INT_AS_REAL
 *              (every number is a double, as in RFC 8785 / I-JSON; jansson
 *              refuses invalid UTF-8, \u0000 and numbers that overflow a
 *              double); the top level must be an object  -> bad_json
 *   4. envelope: exactly one member whose value is an object -> bad_message
 *   5. type:   one of the v1 names                        -> unsupported_type
 *   6. body:   rdv_msg_validate, driven by the per-type field tables below
 *              (missing_field / invalid_field with a dotted path such as
 *              "connectionInfo.publicPort", array elements as "nodeIDs[3]").
 *
 * Unknown fields are ignored and kept. Integers are JSON numbers with an
 * integral value (1 and 1.0 are the same), whether jansson holds them as
 * integers (bodies built with json_pack) or reals (parsed text).
 * "Characters" in length limits are Unicode code points.
 *
 * No global mutable state; every allocation is checked and released on
 * every path.
 */
#include "schema/message.h"
#include "schema/nat_type.h"
#include "schema/jcs.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "schema/ids.h"

/* Largest integer a double holds exactly: Timestamps and limits stop here. */
#define MAX_SAFE_INT 9007199254740991LL /* 2^53 - 1 */
#define MAX_PRIORITY 4294967295LL      /* 2^32 - 1 */
#define MAX_ERROR_CODE 32
#define MAX_SHORT_STR 64                /* software, ref, ping id */
#define MAX_FOUNDATION 32

/* ------------------------------------------------------------------------ */
/* Type names                                                               */
/* ------------------------------------------------------------------------ */

static const char *const type_names[RDV_MSG__COUNT] = {
    [RDV_MSG_UNKNOWN] = NULL,
    [RDV_MSG_CHALLENGE] = "challenge",
    [RDV_MSG_HELLO] = "hello",
    [RDV_MSG_WELCOME] = "welcome",
    [RDV_MSG_OFFER] = "offer",
    [RDV_MSG_ANSWER] = "answer",
    [RDV_MSG_ICE_CANDIDATE] = "iceCandidate",
    [RDV_MSG_RELAY_OPEN] = "relayOpen",
    [RDV_MSG_RELAY_READY] = "relayReady",
    [RDV_MSG_RELAY_DATA] = "relayData",
    [RDV_MSG_RELAY_CLOSE] = "relayClose",
    [RDV_MSG_LOOKUP] = "lookup",
    [RDV_MSG_PRESENCE] = "presence",
    [RDV_MSG_WATCH] = "watch",
    [RDV_MSG_UNWATCH] = "unwatch",
    [RDV_MSG_PEER_ONLINE] = "peerOnline",
    [RDV_MSG_PEER_OFFLINE] = "peerOffline",
    [RDV_MSG_QUEUED] = "queued",
    [RDV_MSG_ERROR] = "error",
    [RDV_MSG_PING] = "ping",
    [RDV_MSG_PONG] = "pong",
};

const char *rdv_msg_type_name(rdv_msg_type type)
{
    if ((int)type <= RDV_MSG_UNKNOWN || type >= RDV_MSG__COUNT)
        return NULL;
    return type_names[type];
}

rdv_msg_type rdv_msg_type_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return RDV_MSG_UNKNOWN;
    for (int t = RDV_MSG_UNKNOWN + 1; t < RDV_MSG__COUNT; t++) {
        const char *n = type_names[t];
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return (rdv_msg_type)t;
    }
    return RDV_MSG_UNKNOWN;
}

bool rdv_msg_type_is_signed(rdv_msg_type type)
{
    switch (type) {
    case RDV_MSG_HELLO:
    case RDV_MSG_OFFER:
    case RDV_MSG_ANSWER:
    case RDV_MSG_ICE_CANDIDATE:
    case RDV_MSG_RELAY_OPEN:
    case RDV_MSG_RELAY_READY:
        return true;
    default:
        return false;
    }
}

bool rdv_msg_type_is_routed(rdv_msg_type type)
{
    switch (type) {
    case RDV_MSG_OFFER:
    case RDV_MSG_ANSWER:
    case RDV_MSG_ICE_CANDIDATE:
    case RDV_MSG_RELAY_OPEN:
    case RDV_MSG_RELAY_READY:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Error reporting                                                          */
/* ------------------------------------------------------------------------ */

static void err_clear(rdv_msg_error *err)
{
    err->code = RDV_EC_NONE;
    err->field[0] = '\0';
    err->detail[0] = '\0';
    err->type = RDV_MSG_UNKNOWN;
    err->ref[0] = '\0';
}

/* Copies s[0..n) into dst (size dstsz), truncated at a UTF-8 character
 * boundary so the result stays valid UTF-8 when the input is. */
static void copy_utf8_trunc(char *dst, size_t dstsz, const char *s, size_t n)
{
    if (n >= dstsz) {
        n = dstsz - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] continues a character: cut before its lead byte */
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Fills err and returns -code. `field` may be NULL (whole message). */
static int fail(rdv_msg_error *err, rdv_ec code, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(rdv_msg_error *err, rdv_ec code, const char *field,
                const char *fmt, ...)
{
    err->code = code;
    if (field != NULL)
        copy_utf8_trunc(err->field, sizeof err->field, field, strlen(field));
    else
        err->field[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
    return -(int)code;
}

/* Appends the NUL-terminated s to dst (size dstsz, NUL-terminated),
 * silently truncating. Paths are built from ASCII names and indices. */
static void path_append(char *dst, size_t dstsz, const char *s)
{
    size_t have = strlen(dst);
    size_t n = strlen(s);
    if (have + 1 >= dstsz)
        return;
    if (n > dstsz - 1 - have)
        n = dstsz - 1 - have;
    memcpy(dst + have, s, n);
    dst[have + n] = '\0';
}

/* Dotted path of member `name` under `prefix` ("" at the body). */
static void path_join(char *dst, size_t dstsz, const char *prefix,
                      const char *name)
{
    dst[0] = '\0';
    path_append(dst, dstsz, prefix);
    if (prefix[0] != '\0')
        path_append(dst, dstsz, ".");
    path_append(dst, dstsz, name);
}

/* Path of element `i` of the array at `prefix`: "nodeIDs[3]". */
static void path_index(char *dst, size_t dstsz, const char *prefix, size_t i)
{
    char idx[32]; /* "[" + at most 20 digits + "]" */
    snprintf(idx, sizeof idx, "[%zu]", i);
    dst[0] = '\0';
    path_append(dst, dstsz, prefix);
    path_append(dst, dstsz, idx);
}

/* ------------------------------------------------------------------------ */
/* Value helpers                                                            */
/* ------------------------------------------------------------------------ */

/* The integral value of a JSON number in *out. Works for jansson integers
 * and reals; false for non-numbers, NaN/inf, fractions and reals outside
 * int64_t. */
static bool json_integral(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    /* -2^63 <= d < 2^63 is exactly the range that converts without UB. */
    if (!isfinite(d) || d != trunc(d) || d < -9223372036854775808.0 ||
        d >= 9223372036854775808.0)
        return false;
    *out = (int64_t)d;
    return true;
}

static bool int_in_range(const json_t *v, int64_t lo, int64_t hi)
{
    int64_t i;
    return json_integral(v, &i) && i >= lo && i <= hi;
}

/* Number of Unicode code points in the (valid UTF-8) s[0..n). */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

/* A JSON string of lo..hi characters. */
static bool str_chars(const json_t *v, size_t lo, size_t hi)
{
    if (!json_is_string(v))
        return false;
    size_t n = utf8_chars(json_string_value(v), json_string_length(v));
    return n >= lo && n <= hi;
}

static bool str_hex(const json_t *v, size_t hexlen)
{
    return json_is_string(v) &&
           rdv_hex_valid(json_string_value(v), json_string_length(v), hexlen);
}

static bool str_in_set(const json_t *v, const char *const *set)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (; *set != NULL; set++)
        if (strlen(*set) == n && memcmp(*set, s, n) == 0)
            return true;
    return false;
}

/* IPv4 dotted quad or IPv6 text form: at most 45 characters, no zone, no
 * brackets (inet_pton accepts neither). */
static bool str_ip(const json_t *v)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    char buf[RDV_MAX_IP_TEXT + 1];
    if (n == 0 || n > RDV_MAX_IP_TEXT || memchr(s, '\0', n) != NULL ||
        memchr(s, '%', n) != NULL)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET, buf, addr) == 1 ||
           inet_pton(AF_INET6, buf, addr) == 1;
}

/* [a-z_]{1,32} */
static bool str_error_code(const json_t *v)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < 1 || n > MAX_ERROR_CODE)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

/* Standard base64 (RFC 4648 section 4) with padding and zero trailing bits.
 * Decoded in fixed-size chunks of whole quanta so no allocation is needed;
 * every chunk must be consumed entirely, so padding can only end the
 * string. */
static bool str_base64(const json_t *v)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n % 4 != 0)
        return false;
    enum { CHUNK = 1024 }; /* characters; a multiple of 4 */
    unsigned char bin[CHUNK / 4 * 3];
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t m = n - off < CHUNK ? n - off : CHUNK;
        size_t bin_len = 0;
        const char *end = NULL;
        if (sodium_base642bin(bin, sizeof bin, s + off, m, NULL, &bin_len,
                              &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != s + off + m)
            return false;
        if (off + m < n && m > 0 && s[off + m - 1] == '=')
            return false; /* padding before the end of the string */
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Field tables                                                             */
/* ------------------------------------------------------------------------ */

typedef enum fkind {
    K_NODE_ID,     /* NodeID */
    K_SESSION_ID,  /* SessionID */
    K_TIMESTAMP,   /* Timestamp: 1 .. 2^53-1 */
    K_SIGNATURE,   /* 128 lowercase hex */
    K_HEX64,       /* Nonce, Key32 */
    K_IP,
    K_PORT,        /* 0 .. 65535 */
    K_PORT_NZ,     /* 1 .. 65535 (candidate.port) */
    K_NAT_TYPE,
    K_REQUEST_ID,  /* 1 .. 64 characters */
    K_TEXT,        /* 0 .. 512 characters */
    K_SERVER_NAME, /* 1 .. 253 characters */
    K_SHORT_STR,   /* 1 .. 64 characters (software, ref, ping id) */
    K_FOUNDATION,  /* 1 .. 32 characters */
    K_STRING,      /* any string */
    K_VERSION,     /* integer >= 1 */
    K_UINT,        /* integer 0 .. 2^53-1 (limits, presence lastSeen) */
    K_PRIORITY,    /* integer 0 .. 2^32-1 */
    K_BOOL,
    K_CAND_TYPE,
    K_ERROR_CODE,  /* [a-z_]{1,32} */
    K_BASE64,
    K_CONN_INFO,   /* object, section 3.1 */
    K_CANDIDATE,   /* object, section 3.2 */
    K_LIMITS,      /* object, welcome.limits */
    K_NODE_IDS,    /* array of 1 .. 64 NodeIDs */
    K_PEERS,       /* array of 1 .. 64 presence entries */
    K_OBJECT,      /* any object (hello.cert: checked by admission, fleet_cert.h) */
} fkind;

typedef struct field_spec {
    const char *name;
    fkind kind;
    bool required;
} field_spec;

typedef struct spec_list {
    const field_spec *fields;
    size_t count;
} spec_list;

#define SPECS(a) {(a), sizeof(a) / sizeof((a)[0])}

static const char *const cand_types[] = {"host", "serverReflexive",
                                         "peerReflexive", "relayed", NULL};

static const field_spec conn_info_fields[] = {
    {"publicIP", K_IP, true},
    {"publicPort", K_PORT, true},
    {"localIP", K_IP, true},
    {"localPort", K_PORT, true},
    {"natType", K_NAT_TYPE, true},
    {"wgPublicKey", K_HEX64, false},
};

static const field_spec candidate_fields[] = {
    {"ip", K_IP, true},
    {"port", K_PORT_NZ, true},
    {"type", K_CAND_TYPE, true},
    {"priority", K_PRIORITY, true},
    {"foundation", K_FOUNDATION, false},
    {"relatedIP", K_IP, false},
    {"relatedPort", K_PORT, false},
};

static const field_spec limits_fields[] = {
    {"maxMessageBytes", K_UINT, true},
    {"messagesPerSecond", K_UINT, true},
    {"messageBurst", K_UINT, true},
    {"offlineTtlMs", K_UINT, true},
    {"offlineQueueMax", K_UINT, true},
    {"maxWatches", K_UINT, true},
    {"pingIntervalMs", K_UINT, true},
    {"idleTimeoutMs", K_UINT, true},
    {"freshPastMs", K_UINT, false},
    {"freshFutureMs", K_UINT, false},
    {"maxRelaySessions", K_UINT, false},
    {"maxRelayPayload", K_UINT, false},
    {"relayBytesPerSecond", K_UINT, false},
};

static const field_spec peer_fields[] = {
    {"nodeID", K_NODE_ID, true},
    {"online", K_BOOL, true},
    {"lastSeen", K_UINT, true},
    {"natType", K_NAT_TYPE, true},
};

static const field_spec challenge_fields[] = {
    {"nonce", K_HEX64, true},
    {"server", K_SERVER_NAME, true},
    {"version", K_VERSION, true},
    {"serverTime", K_TIMESTAMP, true},
};

static const field_spec hello_fields[] = {
    {"nodeID", K_NODE_ID, true},
    {"nonce", K_HEX64, true},
    {"server", K_SERVER_NAME, true},
    {"timestamp", K_TIMESTAMP, true},
    {"natType", K_NAT_TYPE, false},
    {"software", K_SHORT_STR, false},
    {"cert", K_OBJECT, false},
    {"signature", K_SIGNATURE, true},
};

static const field_spec welcome_fields[] = {
    {"nodeID", K_NODE_ID, true},
    {"observedIP", K_IP, true},
    {"observedPort", K_PORT, true},
    {"serverTime", K_TIMESTAMP, true},
    {"limits", K_LIMITS, true},
};

static const field_spec offer_fields[] = { /* offer, answer */
    {"fromNodeID", K_NODE_ID, true},
    {"toNodeID", K_NODE_ID, true},
    {"sessionID", K_SESSION_ID, true},
    {"timestamp", K_TIMESTAMP, true},
    {"connectionInfo", K_CONN_INFO, true},
    {"e2eKey", K_HEX64, false},
    {"signature", K_SIGNATURE, true},
};

static const field_spec ice_fields[] = {
    {"fromNodeID", K_NODE_ID, true},
    {"toNodeID", K_NODE_ID, true},
    {"sessionID", K_SESSION_ID, true},
    {"timestamp", K_TIMESTAMP, true},
    {"candidate", K_CANDIDATE, true},
    {"signature", K_SIGNATURE, true},
};

static const field_spec relay_open_fields[] = { /* relayOpen, relayReady */
    {"fromNodeID", K_NODE_ID, true},
    {"toNodeID", K_NODE_ID, true},
    {"sessionID", K_SESSION_ID, true},
    {"timestamp", K_TIMESTAMP, true},
    {"e2eKey", K_HEX64, false},
    {"signature", K_SIGNATURE, true},
};

static const field_spec relay_data_fields[] = {
    {"sessionID", K_SESSION_ID, true},
    {"data", K_BASE64, true},
};

static const field_spec relay_close_fields[] = {
    {"sessionID", K_SESSION_ID, true},
    {"reason", K_TEXT, false},
};

static const field_spec ids_request_fields[] = { /* lookup, watch, unwatch */
    {"nodeIDs", K_NODE_IDS, true},
    {"requestID", K_REQUEST_ID, false},
};

static const field_spec presence_fields[] = {
    {"requestID", K_REQUEST_ID, false},
    {"peers", K_PEERS, true},
};

static const field_spec peer_online_fields[] = {
    {"nodeID", K_NODE_ID, true},
    {"natType", K_NAT_TYPE, true},
    {"lastSeen", K_TIMESTAMP, true},
};

static const field_spec peer_offline_fields[] = {
    {"nodeID", K_NODE_ID, true},
    {"natType", K_NAT_TYPE, false},
    {"lastSeen", K_TIMESTAMP, true},
};

static const field_spec queued_fields[] = {
    {"sessionID", K_SESSION_ID, true},
    {"toNodeID", K_NODE_ID, true},
    {"type", K_STRING, true},
    {"expiresAt", K_TIMESTAMP, true},
};

static const field_spec error_fields[] = {
    {"code", K_ERROR_CODE, true},
    {"message", K_TEXT, true},
    {"ref", K_SHORT_STR, false},
    {"type", K_STRING, false},
    {"field", K_STRING, false},
};

static const field_spec ping_fields[] = { /* ping, pong */
    {"id", K_SHORT_STR, false},
    {"serverTime", K_TIMESTAMP, false},
};

static const spec_list type_specs[RDV_MSG__COUNT] = {
    [RDV_MSG_UNKNOWN] = {NULL, 0},
    [RDV_MSG_CHALLENGE] = SPECS(challenge_fields),
    [RDV_MSG_HELLO] = SPECS(hello_fields),
    [RDV_MSG_WELCOME] = SPECS(welcome_fields),
    [RDV_MSG_OFFER] = SPECS(offer_fields),
    [RDV_MSG_ANSWER] = SPECS(offer_fields),
    [RDV_MSG_ICE_CANDIDATE] = SPECS(ice_fields),
    [RDV_MSG_RELAY_OPEN] = SPECS(relay_open_fields),
    [RDV_MSG_RELAY_READY] = SPECS(relay_open_fields),
    [RDV_MSG_RELAY_DATA] = SPECS(relay_data_fields),
    [RDV_MSG_RELAY_CLOSE] = SPECS(relay_close_fields),
    [RDV_MSG_LOOKUP] = SPECS(ids_request_fields),
    [RDV_MSG_PRESENCE] = SPECS(presence_fields),
    [RDV_MSG_WATCH] = SPECS(ids_request_fields),
    [RDV_MSG_UNWATCH] = SPECS(ids_request_fields),
    [RDV_MSG_PEER_ONLINE] = SPECS(peer_online_fields),
    [RDV_MSG_PEER_OFFLINE] = SPECS(peer_offline_fields),
    [RDV_MSG_QUEUED] = SPECS(queued_fields),
    [RDV_MSG_ERROR] = SPECS(error_fields),
    [RDV_MSG_PING] = SPECS(ping_fields),
    [RDV_MSG_PONG] = SPECS(ping_fields),
};

/* ------------------------------------------------------------------------ */
/* Validation                                                               */
/* ------------------------------------------------------------------------ */

static int validate_object(const json_t *obj, const field_spec *fields,
                           size_t count, const char *prefix,
                           rdv_msg_error *err);

/* What a value of `kind` must be, for err->detail. */
static const char *kind_expect(fkind kind)
{
    switch (kind) {
    case K_NODE_ID: return "must be a node ID: 64 lowercase hex digits";
    case K_SESSION_ID: return "must be a UUID in lowercase 8-4-4-4-12 form";
    case K_TIMESTAMP:
        return "must be an integer 1..9007199254740991 (ms since the epoch)";
    case K_SIGNATURE: return "must be a signature: 128 lowercase hex digits";
    case K_HEX64: return "must be 64 lowercase hex digits";
    case K_IP:
        return "must be an IPv4 or IPv6 address, at most 45 characters, "
               "no zone, no brackets";
    case K_PORT: return "must be an integer 0..65535";
    case K_PORT_NZ: return "must be an integer 1..65535";
    case K_NAT_TYPE:
        return "must be one of fullCone, restrictedCone, portRestricted, "
               "symmetric, unknown";
    case K_REQUEST_ID: return "must be a string of 1..64 characters";
    case K_TEXT: return "must be a string of at most 512 characters";
    case K_SERVER_NAME: return "must be a string of 1..253 characters";
    case K_SHORT_STR: return "must be a string of 1..64 characters";
    case K_FOUNDATION: return "must be a string of 1..32 characters";
    case K_STRING: return "must be a string";
    case K_VERSION: return "must be an integer >= 1";
    case K_UINT: return "must be an integer 0..9007199254740991";
    case K_PRIORITY: return "must be an integer 0..4294967295";
    case K_BOOL: return "must be true or false";
    case K_CAND_TYPE:
        return "must be one of host, serverReflexive, peerReflexive, relayed";
    case K_ERROR_CODE: return "must match [a-z_]{1,32}";
    case K_BASE64: return "must be standard base64 with padding (RFC 4648 4)";
    case K_CONN_INFO: return "must be a connectionInfo object";
    case K_CANDIDATE: return "must be a candidate object";
    case K_LIMITS: return "must be an object of integer limits";
    case K_NODE_IDS: return "must be an array of 1..64 node IDs";
    case K_PEERS: return "must be an array of 1..64 presence objects";
    case K_OBJECT: return "must be an object";
    }
    return "is invalid";
}

/* Checks an array of 1..RDV_MAX_IDS_PER_REQUEST elements; each element is a
 * node ID (peers == false) or a presence entry (peers == true). */
static int validate_array(const json_t *v, bool peers, const char *path,
                          rdv_msg_error *err)
{
    fkind kind = peers ? K_PEERS : K_NODE_IDS;
    if (!json_is_array(v) || json_array_size(v) < 1 ||
        json_array_size(v) > RDV_MAX_IDS_PER_REQUEST)
        return fail(err, RDV_EC_INVALID_FIELD, path, "%s", kind_expect(kind));
    char elem[sizeof err->field];
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        path_index(elem, sizeof elem, path, i);
        if (peers) {
            if (!json_is_object(e))
                return fail(err, RDV_EC_INVALID_FIELD, elem,
                            "must be a presence object");
            int rc = validate_object(e, peer_fields,
                                     sizeof peer_fields / sizeof peer_fields[0],
                                     elem, err);
            if (rc != 0)
                return rc;
        } else if (!str_hex(e, RDV_NODE_ID_HEXLEN)) {
            return fail(err, RDV_EC_INVALID_FIELD, elem, "%s",
                        kind_expect(K_NODE_ID));
        }
    }
    return 0;
}

/* Validates the value `v` of field `path` against `kind`. */
static int validate_value(const json_t *v, fkind kind, const char *path,
                          rdv_msg_error *err)
{
    bool ok = false;
    switch (kind) {
    case K_NODE_ID: ok = str_hex(v, RDV_NODE_ID_HEXLEN); break;
    case K_SESSION_ID:
        ok = json_is_string(v) &&
             rdv_uuid_valid(json_string_value(v), json_string_length(v));
        break;
    case K_TIMESTAMP: ok = int_in_range(v, 1, MAX_SAFE_INT); break;
    case K_SIGNATURE: ok = str_hex(v, RDV_SIG_HEXLEN); break;
    case K_HEX64: ok = str_hex(v, RDV_NONCE_HEXLEN); break;
    case K_IP: ok = str_ip(v); break;
    case K_PORT: ok = int_in_range(v, 0, 65535); break;
    case K_PORT_NZ: ok = int_in_range(v, 1, 65535); break;
    case K_NAT_TYPE:
        ok = json_is_string(v) && rdv_wire_nat_parse(json_string_value(v)) >= 0;
        break;
    case K_REQUEST_ID: ok = str_chars(v, 1, RDV_MAX_REQUEST_ID); break;
    case K_TEXT: ok = str_chars(v, 0, RDV_MAX_TEXT); break;
    case K_SERVER_NAME: ok = str_chars(v, 1, RDV_MAX_SERVER_NAME); break;
    case K_SHORT_STR: ok = str_chars(v, 1, MAX_SHORT_STR); break;
    case K_FOUNDATION: ok = str_chars(v, 1, MAX_FOUNDATION); break;
    case K_STRING: ok = json_is_string(v); break;
    case K_VERSION: ok = int_in_range(v, 1, MAX_SAFE_INT); break;
    case K_UINT: ok = int_in_range(v, 0, MAX_SAFE_INT); break;
    case K_PRIORITY: ok = int_in_range(v, 0, MAX_PRIORITY); break;
    case K_BOOL: ok = json_is_boolean(v); break;
    case K_CAND_TYPE: ok = str_in_set(v, cand_types); break;
    case K_ERROR_CODE: ok = str_error_code(v); break;
    case K_BASE64: ok = str_base64(v); break;
    case K_CONN_INFO:
        if (!json_is_object(v))
            break;
        return validate_object(v, conn_info_fields,
                               sizeof conn_info_fields / sizeof conn_info_fields[0],
                               path, err);
    case K_CANDIDATE:
        if (!json_is_object(v))
            break;
        return validate_object(v, candidate_fields,
                               sizeof candidate_fields / sizeof candidate_fields[0],
                               path, err);
    case K_LIMITS:
        if (!json_is_object(v))
            break;
        return validate_object(v, limits_fields,
                               sizeof limits_fields / sizeof limits_fields[0],
                               path, err);
    case K_NODE_IDS: return validate_array(v, false, path, err);
    case K_PEERS: return validate_array(v, true, path, err);
    case K_OBJECT: ok = json_is_object(v); break;
    }
    if (ok)
        return 0;
    return fail(err, RDV_EC_INVALID_FIELD, path, "%s", kind_expect(kind));
}

/* Checks the listed fields of `obj`, in table order; others are ignored. */
static int validate_object(const json_t *obj, const field_spec *fields,
                           size_t count, const char *prefix, rdv_msg_error *err)
{
    char path[sizeof err->field];
    for (size_t i = 0; i < count; i++) {
        const json_t *v = json_object_get(obj, fields[i].name);
        path_join(path, sizeof path, prefix, fields[i].name);
        if (v == NULL) {
            if (fields[i].required)
                return fail(err, RDV_EC_MISSING_FIELD, path,
                            "required field is missing");
            continue;
        }
        int rc = validate_value(v, fields[i].kind, path, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int rdv_msg_validate(rdv_msg_type type, const json_t *body, rdv_msg_error *err)
{
    rdv_msg_error scratch;
    if (err == NULL)
        err = &scratch;
    err_clear(err);
    if (rdv_msg_type_name(type) == NULL)
        return fail(err, RDV_EC_UNSUPPORTED_TYPE, NULL,
                    "not a protocol v1 message type");
    if (!json_is_object(body))
        return fail(err, RDV_EC_BAD_MESSAGE, NULL,
                    "the message body must be an object");
    const spec_list *sl = &type_specs[type];
    int rc = validate_object(body, sl->fields, sl->count, "", err);
    if (rc != 0)
        return rc;
    if (rdv_msg_type_is_routed(type)) {
        /* Both are valid node IDs by now: lowercase, so strcmp is exact. */
        const char *from = json_string_value(json_object_get(body, "fromNodeID"));
        const char *to = json_string_value(json_object_get(body, "toNodeID"));
        if (strcmp(from, to) == 0)
            return fail(err, RDV_EC_INVALID_FIELD, "toNodeID",
                        "must differ from fromNodeID");
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

/* True when arrays/objects in p[0..n) nest at most RDV_MAX_DEPTH deep.
 * Brackets inside strings (escapes honoured) do not count. Unbalanced or
 * otherwise malformed input is left for the JSON parser to refuse. */
static bool depth_ok(const uint8_t *p, size_t n)
{
    size_t depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > RDV_MAX_DEPTH)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

int rdv_msg_parse(const uint8_t *buf, size_t len, size_t max_len, rdv_msg *out,
                  rdv_msg_error *err)
{
    rdv_msg_error scratch;
    if (err == NULL)
        err = &scratch;
    err_clear(err);
    if (out == NULL)
        return fail(err, RDV_EC_INTERNAL, NULL, "no output message");
    memset(out, 0, sizeof *out);

    if (len > max_len)
        return fail(err, RDV_EC_TOO_LARGE, NULL,
                    "message of %zu bytes is over the limit of %zu", len,
                    max_len);
    if (buf == NULL || len == 0)
        return fail(err, RDV_EC_BAD_JSON, NULL, "empty message");
    if (!depth_ok(buf, len))
        return fail(err, RDV_EC_BAD_JSON, NULL,
                    "arrays and objects nest deeper than %d", RDV_MAX_DEPTH);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, len,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
                              &jerr);
    if (root == NULL)
        return fail(err, RDV_EC_BAD_JSON, NULL, "%.100s (at byte %d)",
                    jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(err, RDV_EC_BAD_JSON, NULL, "the top level is not an object");
    }

    if (json_object_size(root) != 1) {
        size_t n = json_object_size(root);
        json_decref(root);
        return fail(err, RDV_EC_BAD_MESSAGE, NULL,
                    "the envelope has %zu members, must have exactly 1", n);
    }
    void *it = json_object_iter(root);
    const char *name = json_object_iter_key(it);
    json_t *body = json_object_iter_value(it);
    if (!json_is_object(body)) {
        json_decref(root);
        return fail(err, RDV_EC_BAD_MESSAGE, NULL,
                    "the value of the envelope member must be an object");
    }

    size_t name_len = strlen(name);
    rdv_msg_type type = rdv_msg_type_from_name(name, name_len);
    if (type == RDV_MSG_UNKNOWN) {
        err->code = RDV_EC_UNSUPPORTED_TYPE;
        copy_utf8_trunc(err->field, sizeof err->field, name, name_len);
        snprintf(err->detail, sizeof err->detail,
                 "unknown message type (protocol v1)");
        json_decref(root);
        return -(int)RDV_EC_UNSUPPORTED_TYPE;
    }

    int rc = rdv_msg_validate(type, body, err);
    if (rc != 0) {
        err->type = type;
        const char *ref = rdv_msg_get_str(body, "sessionID");
        if (ref == NULL)
            ref = rdv_msg_get_str(body, "requestID");
        if (ref != NULL && strlen(ref) < sizeof err->ref)
            memcpy(err->ref, ref, strlen(ref) + 1);
        json_decref(root);
        return rc;
    }
    out->type = type;
    out->root = root;
    out->body = body;
    return 0;
}

void rdv_msg_free(rdv_msg *msg)
{
    if (msg == NULL)
        return;
    json_decref(msg->root);
    msg->root = NULL;
    msg->body = NULL;
    msg->type = RDV_MSG_UNKNOWN;
}

/* ------------------------------------------------------------------------ */
/* Accessors and builders                                                   */
/* ------------------------------------------------------------------------ */

const char *rdv_msg_get_str(const json_t *body, const char *key)
{
    if (!json_is_object(body) || key == NULL)
        return NULL;
    const json_t *v = json_object_get(body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool rdv_msg_get_int(const json_t *body, const char *key, int64_t *out)
{
    if (!json_is_object(body) || key == NULL || out == NULL)
        return false;
    return json_integral(json_object_get(body, key), out);
}

json_t *rdv_msg_wrap(rdv_msg_type type, json_t *body)
{
    const char *name = rdv_msg_type_name(type);
    if (name == NULL || !json_is_object(body)) {
        json_decref(body);
        return NULL;
    }
    json_t *env = json_object();
    if (env == NULL) {
        json_decref(body);
        return NULL;
    }
    /* json_object_set_new releases body itself when it fails. */
    if (json_object_set_new(env, name, body) != 0) {
        json_decref(env);
        return NULL;
    }
    return env;
}

char *rdv_msg_dump(const json_t *envelope, size_t *len)
{
    if (envelope == NULL)
        return NULL;
    /* The canonical form (RFC 8785) is compact JSON whose integral numbers
     * print as integers (parsed numbers are doubles: json_dumps would write
     * 1700000000000.0, which integer-typed readers refuse). */
    char *s = NULL;
    size_t n = 0;
    if (rdv_jcs_serialize(envelope, SIZE_MAX / 2, &s, &n) != RDV_JCS_OK)
        return NULL;
    if (len != NULL)
        *len = n;
    return s;
}

/* Byte length of the first `max_chars` characters of the NUL-terminated
 * s, or of all of it. */
static size_t utf8_prefix_len(const char *s, size_t max_chars)
{
    size_t chars = 0, i = 0;
    for (; s[i] != '\0'; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars)
                break;
            chars++;
        }
    }
    return i;
}

/* The text of an `error` message. `message` is cut to RDV_MAX_TEXT
 * characters, and replaced by the code's hint when it is not valid UTF-8;
 * a `ref` that is not 1..64 characters of valid UTF-8 is left out. The
 * result always validates as an `error` body. */
char *rdv_msg_build_error(rdv_ec code, const char *message, const char *ref,
                          size_t *len)
{
    if ((int)code <= RDV_EC_NONE || code >= RDV_EC__COUNT)
        code = RDV_EC_INTERNAL;
    json_t *body = json_object();
    if (body == NULL)
        return NULL;
    if (json_object_set_new(body, "code", json_string(rdv_ec_name(code))) != 0)
        goto fail;

    json_t *msg = NULL;
    if (message != NULL)
        msg = json_stringn(message, utf8_prefix_len(message, RDV_MAX_TEXT));
    if (msg == NULL) /* no message, or not UTF-8 (or out of memory) */
        msg = json_string(rdv_ec_hint(code));
    if (json_object_set_new(body, "message", msg) != 0)
        goto fail;

    if (ref != NULL) {
        size_t chars = utf8_chars(ref, strlen(ref));
        if (chars >= 1 && chars <= MAX_SHORT_STR) {
            json_t *r = json_string(ref);
            if (r != NULL && json_object_set_new(body, "ref", r) != 0)
                goto fail;
        }
    }

    if (rdv_msg_validate(RDV_MSG_ERROR, body, NULL) != 0)
        goto fail;
    json_t *env = rdv_msg_wrap(RDV_MSG_ERROR, body); /* steals body */
    if (env == NULL)
        return NULL;
    char *s = rdv_msg_dump(env, len);
    json_decref(env);
    return s;
fail:
    json_decref(body);
    return NULL;
}
