/* scan.c - validating scan of canonical offer / answer / iceCandidate text
 * (see scan.h). A strict subset of JSON is recognised; everything outside
 * it is declined, never guessed at:
 *
 *   value   = string | integer | object | array | true | false | null
 *   string  = '"' *(%x20-21 / %x23-5B / %x5D-7E) '"'    (no escapes)
 *   integer = ["-"] ("0" | [1-9] *14DIGIT), never "-0", not followed by
 *             a fraction or an exponent
 *   object  = '{' [member *(',' member)] '}', member names strictly
 *             ascending byte strings (ASCII: the same order as RFC 8785's
 *             UTF-16 order; strictly: so no duplicates)
 *   array   = '[' [value *(',' value)] ']'
 *   no whitespace anywhere, nesting at most SCAN_MAX_DEPTH.
 *
 * Every text of this grammar is its own RFC 8785 form: sorted members,
 * nothing to escape, integers below 2^53 printed as ECMAScript does. So
 * the body minus the signature member is JCS(body minus signature), and
 * jansson parses the text into the same values. The field rules are those
 * of message.c's tables for the three types (the fuzz target compares the
 * two on every input).
 */
#include "schema/scan.h"

#include <arpa/inet.h>
#include <string.h>

#include <sodium.h>

#include "schema/ids.h"
#include "schema/nat_type.h"

#define SCAN_MAX_DEPTH 8
#define SCAN_MAX_DIGITS 15           /* < 2^53: exact as a double */
#define SCAN_SIG_INPUT_MAX 4096      /* stack buffer for the signing input */
#define MAX_SAFE_INT 9007199254740991LL
#define MAX_PRIORITY 4294967295LL
#define MAX_FOUNDATION 32

enum vkind { V_NONE = 0, V_STR, V_NUM, V_OBJ, V_ARR, V_LIT };

/* A value: for strings the bytes between the quotes, else the token. */
typedef struct val {
    enum vkind kind;
    size_t off, len;
    size_t moff, mend; /* its member: from the name's quote to the value's end */
    int64_t num;
} val;

typedef struct cur {
    const uint8_t *p;
    size_t n, i;
} cur;

/* Members of one object to capture by name (names in any order). */
typedef struct capture {
    const char *const *names;
    val *vals;
    size_t count;
} capture;

static bool value(cur *c, int depth, val *v);

/* Byte classes: 1 for the bytes a string may hold as they are (printable
 * ASCII but '"' and '\\'); hex digit values + 1 in HEX_OF (0: not one). */
static const uint8_t PLAIN[256] = {
    [0x20 ... 0x21] = 1, /* not 0x22 '"' */
    [0x23 ... 0x5b] = 1, /* not 0x5c '\\' */
    [0x5d ... 0x7e] = 1, /* not 0x7f DEL, nothing above */
};

static bool string(cur *c, size_t *off, size_t *len)
{
    if (c->i >= c->n || c->p[c->i] != '"')
        return false;
    size_t start = ++c->i, i = start, n = c->n;
    const uint8_t *p = c->p;
    while (i + 4 <= n && (PLAIN[p[i]] & PLAIN[p[i + 1]] & PLAIN[p[i + 2]] & PLAIN[p[i + 3]]))
        i += 4;
    while (i < n && PLAIN[p[i]])
        i++;
    if (i >= n || p[i] != '"')
        return false;
    *off = start;
    *len = i - start;
    c->i = i + 1;
    return true;
}

static bool integer(cur *c, int64_t *out)
{
    size_t i = c->i;
    bool neg = false;
    int64_t v = 0;
    if (i < c->n && c->p[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= c->n || c->p[i] < '0' || c->p[i] > '9')
        return false;
    if (c->p[i] == '0') {
        if (neg)
            return false; /* -0: JCS writes 0 */
        i++;
    } else {
        size_t d0 = i;
        while (i < c->n && c->p[i] >= '0' && c->p[i] <= '9') {
            if (i - d0 >= SCAN_MAX_DIGITS)
                return false;
            v = v * 10 + (c->p[i] - '0');
            i++;
        }
    }
    /* only a separator may follow: no fraction, exponent or leading zero */
    if (i >= c->n || (c->p[i] != ',' && c->p[i] != '}' && c->p[i] != ']'))
        return false;
    *out = neg ? -v : v;
    c->i = i;
    return true;
}

static bool literal(cur *c, const char *word)
{
    size_t n = strlen(word);
    if (c->n - c->i < n || memcmp(c->p + c->i, word, n) != 0)
        return false;
    c->i += n;
    return true;
}

/* True when name a (na bytes) sorts strictly before b (nb bytes). */
static bool name_before(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    int r = memcmp(a, b, na < nb ? na : nb);
    return r < 0 || (r == 0 && na < nb);
}

static bool object(cur *c, int depth, const capture *cap)
{
    if (depth > SCAN_MAX_DEPTH || c->i >= c->n || c->p[c->i] != '{')
        return false;
    c->i++;
    if (c->i < c->n && c->p[c->i] == '}') {
        c->i++;
        return true;
    }
    size_t prev_off = 0, prev_len = 0;
    bool first = true;
    for (;;) {
        size_t moff = c->i, koff, klen;
        if (!string(c, &koff, &klen))
            return false;
        if (!first && !name_before(c->p + prev_off, prev_len, c->p + koff, klen))
            return false;
        first = false;
        prev_off = koff;
        prev_len = klen;
        if (c->i >= c->n || c->p[c->i] != ':')
            return false;
        c->i++;
        val v;
        if (!value(c, depth, &v))
            return false;
        v.moff = moff;
        v.mend = c->i;
        for (size_t k = 0; cap && k < cap->count; k++) {
            if (strlen(cap->names[k]) == klen && !memcmp(cap->names[k], c->p + koff, klen)) {
                cap->vals[k] = v;
                break;
            }
        }
        if (c->i >= c->n)
            return false;
        if (c->p[c->i] == '}') {
            c->i++;
            return true;
        }
        if (c->p[c->i] != ',')
            return false;
        c->i++;
    }
}

static bool array(cur *c, int depth)
{
    if (depth > SCAN_MAX_DEPTH || c->i >= c->n || c->p[c->i] != '[')
        return false;
    c->i++;
    if (c->i < c->n && c->p[c->i] == ']') {
        c->i++;
        return true;
    }
    for (;;) {
        val v;
        if (!value(c, depth, &v) || c->i >= c->n)
            return false;
        if (c->p[c->i] == ']') {
            c->i++;
            return true;
        }
        if (c->p[c->i] != ',')
            return false;
        c->i++;
    }
}

/* One value at c; nested containers are depth + 1. */
static bool value(cur *c, int depth, val *v)
{
    memset(v, 0, sizeof *v);
    if (c->i >= c->n)
        return false;
    size_t start = c->i;
    bool ok;
    switch (c->p[c->i]) {
    case '"':
        v->kind = V_STR;
        return string(c, &v->off, &v->len);
    case '{':
        v->kind = V_OBJ;
        ok = object(c, depth + 1, NULL);
        break;
    case '[':
        v->kind = V_ARR;
        ok = array(c, depth + 1);
        break;
    case 't':
        v->kind = V_LIT;
        ok = literal(c, "true");
        break;
    case 'f':
        v->kind = V_LIT;
        ok = literal(c, "false");
        break;
    case 'n':
        v->kind = V_LIT;
        ok = literal(c, "null");
        break;
    default:
        v->kind = V_NUM;
        ok = integer(c, &v->num);
        break;
    }
    v->off = start;
    v->len = c->i - start;
    return ok;
}

/* ---- field rules (message.c's tables for these types) ---------------- */

/* Value + 1 of each lowercase hex digit; 0 for every other byte. */
static const uint8_t HEX_OF[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16,
};

/* A string of exactly n lowercase hex digits (rdv_hex_valid's rule); its
 * bytes into out[n / 2] unless out is NULL. */
static bool is_hex_into(const uint8_t *p, const val *v, size_t n, uint8_t *out)
{
    if (v->kind != V_STR || v->len != n)
        return false;
    const uint8_t *h = p + v->off;
    for (size_t i = 0; i < n; i += 2) {
        unsigned hi = HEX_OF[h[i]], lo = HEX_OF[h[i + 1]];
        if (!hi || !lo)
            return false;
        if (out)
            out[i / 2] = (uint8_t)((hi - 1) << 4 | (lo - 1));
    }
    return true;
}

static bool is_hex(const uint8_t *p, const val *v, size_t n)
{
    return is_hex_into(p, v, n, NULL);
}

static bool in_range(const val *v, int64_t lo, int64_t hi)
{
    return v->kind == V_NUM && v->num >= lo && v->num <= hi;
}

/* Copies a string value into buf (size cap) NUL-terminated; false when it
 * does not fit. */
static bool copy_str(const uint8_t *p, const val *v, char *buf, size_t cap)
{
    if (v->kind != V_STR || v->len >= cap)
        return false;
    memcpy(buf, p + v->off, v->len);
    buf[v->len] = '\0';
    return true;
}

static bool is_ip(const uint8_t *p, const val *v)
{
    char buf[RDV_MAX_IP_TEXT + 1];
    unsigned char addr[16];
    if (v->len == 0 || !copy_str(p, v, buf, sizeof buf) || strchr(buf, '%'))
        return false;
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

static bool is_nat(const uint8_t *p, const val *v)
{
    char buf[32];
    return copy_str(p, v, buf, sizeof buf) && rdv_wire_nat_parse(buf) >= 0;
}

static bool is_cand_type(const uint8_t *p, const val *v)
{
    static const char *const types[] = {"host", "serverReflexive", "peerReflexive", "relayed"};
    if (v->kind != V_STR)
        return false;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i]) == v->len && !memcmp(types[i], p + v->off, v->len))
            return true;
    return false;
}

/* Scans the object value v again, capturing the named members. */
static bool members(const uint8_t *p, const val *v, const char *const *names, val *vals,
                    size_t count)
{
    cur c = {p, v->off + v->len, v->off};
    capture cap = {names, vals, count};
    memset(vals, 0, count * sizeof *vals);
    return v->kind == V_OBJ && object(&c, 2, &cap) && c.i == v->off + v->len;
}

static bool conn_info_ok(const uint8_t *p, const val *v)
{
    static const char *const names[] = {"publicIP", "publicPort", "localIP",
                                        "localPort", "natType", "wgPublicKey"};
    val f[6];
    if (!members(p, v, names, f, 6))
        return false;
    return is_ip(p, &f[0]) && in_range(&f[1], 0, 65535) && is_ip(p, &f[2]) &&
           in_range(&f[3], 0, 65535) && is_nat(p, &f[4]) &&
           (f[5].kind == V_NONE || is_hex(p, &f[5], RDV_KEY32_HEXLEN));
}

static bool candidate_ok(const uint8_t *p, const val *v)
{
    static const char *const names[] = {"ip", "port", "type", "priority",
                                        "foundation", "relatedIP", "relatedPort"};
    val f[7];
    if (!members(p, v, names, f, 7))
        return false;
    return is_ip(p, &f[0]) && in_range(&f[1], 1, 65535) && is_cand_type(p, &f[2]) &&
           in_range(&f[3], 0, MAX_PRIORITY) &&
           (f[4].kind == V_NONE ||
            (f[4].kind == V_STR && f[4].len >= 1 && f[4].len <= MAX_FOUNDATION)) &&
           (f[5].kind == V_NONE || is_ip(p, &f[5])) &&
           (f[6].kind == V_NONE || in_range(&f[6], 0, 65535));
}

/* ---- the message ------------------------------------------------------ */

enum { F_FROM, F_TO, F_SID, F_TS, F_SIG, F_INFO, F_E2E, F_CAND, F__COUNT };

static const char *const body_names[F__COUNT] = {
    "fromNodeID", "toNodeID", "sessionID", "timestamp",
    "signature", "connectionInfo", "e2eKey", "candidate",
};

/* The envelope's type name at buf[2..): offer, answer or iceCandidate. */
static rdv_msg_type envelope_type(const uint8_t *buf, size_t len, size_t *body_off)
{
    static const rdv_msg_type types[] = {RDV_MSG_OFFER, RDV_MSG_ANSWER, RDV_MSG_ICE_CANDIDATE};
    if (len < 2 || buf[0] != '{' || buf[1] != '"')
        return RDV_MSG_UNKNOWN;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const char *name = rdv_msg_type_name(types[i]);
        size_t n = strlen(name);
        if (len - 2 > n + 2 && !memcmp(buf + 2, name, n) && buf[2 + n] == '"' &&
            buf[3 + n] == ':') {
            *body_off = 4 + n;
            return types[i];
        }
    }
    return RDV_MSG_UNKNOWN;
}

bool rdv_scan_signal(const uint8_t *buf, size_t len, rdv_scan *out)
{
    size_t body_off = 0;
    if (!buf || !out)
        return false;
    rdv_msg_type type = envelope_type(buf, len, &body_off);
    if (type == RDV_MSG_UNKNOWN)
        return false;
    val f[F__COUNT];
    memset(f, 0, sizeof f);
    capture cap = {body_names, f, F__COUNT};
    cur c = {buf, len, body_off};
    if (!object(&c, 2, &cap) || c.i + 1 != len || buf[c.i] != '}')
        return false;
    bool ice = type == RDV_MSG_ICE_CANDIDATE;
    uint8_t from_id[RDV_NODE_ID_BYTES], to_id[RDV_NODE_ID_BYTES], sig[RDV_SIG_BYTES];
    if (!is_hex_into(buf, &f[F_FROM], RDV_NODE_ID_HEXLEN, from_id) ||
        !is_hex_into(buf, &f[F_TO], RDV_NODE_ID_HEXLEN, to_id) ||
        !memcmp(from_id, to_id, RDV_NODE_ID_BYTES) ||
        f[F_SID].kind != V_STR ||
        !rdv_uuid_valid((const char *)buf + f[F_SID].off, f[F_SID].len) ||
        !in_range(&f[F_TS], 1, MAX_SAFE_INT) ||
        !is_hex_into(buf, &f[F_SIG], RDV_SIG_HEXLEN, sig))
        return false;
    if (ice ? !candidate_ok(buf, &f[F_CAND])
            : !conn_info_ok(buf, &f[F_INFO]) ||
                  (f[F_E2E].kind != V_NONE && !is_hex(buf, &f[F_E2E], RDV_KEY32_HEXLEN)))
        return false;
    memset(out, 0, sizeof *out);
    out->type = type;
    out->from = (const char *)buf + f[F_FROM].off;
    out->to = (const char *)buf + f[F_TO].off;
    out->sid = (const char *)buf + f[F_SID].off;
    out->sig = (const char *)buf + f[F_SIG].off;
    memcpy(out->from_id, from_id, sizeof from_id);
    memcpy(out->to_id, to_id, sizeof to_id);
    memcpy(out->sig_bin, sig, sizeof sig);
    out->timestamp = f[F_TS].num;
    out->body_off = body_off;
    out->body_len = len - 1 - body_off;
    /* the signature member and the comma that separates it from the rest:
     * the one before it, or, when it is the first member, the one after */
    const val *s = &f[F_SIG];
    if (buf[s->moff - 1] == ',') {
        out->cut_off = s->moff - 1;
        out->cut_len = s->mend - s->moff + 1;
    } else {
        out->cut_off = s->moff;
        out->cut_len = s->mend - s->moff + (buf[s->mend] == ',' ? 1 : 0);
    }
    return true;
}

size_t rdv_scan_sig_input(const uint8_t *buf, const rdv_scan *s, uint8_t *out, size_t cap)
{
    const char *name = rdv_msg_type_name(s->type);
    size_t pl = strlen(RDV_DOMAIN_PREFIX), nl = strlen(name);
    size_t head = s->cut_off - s->body_off;
    size_t tail = s->body_off + s->body_len - (s->cut_off + s->cut_len);
    size_t total = pl + nl + 1 + head + tail;
    if (total > cap)
        return 0;
    uint8_t *w = out;
    memcpy(w, RDV_DOMAIN_PREFIX, pl);
    w += pl;
    memcpy(w, name, nl);
    w += nl;
    *w++ = 0x00;
    memcpy(w, buf + s->body_off, head);
    w += head;
    memcpy(w, buf + s->cut_off + s->cut_len, tail);
    return total;
}

int rdv_scan_verify(const uint8_t *buf, const rdv_scan *s)
{
    uint8_t input[SCAN_SIG_INPUT_MAX];
    size_t n = rdv_scan_sig_input(buf, s, input, sizeof input);
    if (n == 0)
        return -RDV_EC_TOO_LARGE;
    if (sodium_init() < 0)
        return -RDV_EC_INTERNAL;
    return crypto_sign_verify_detached(s->sig_bin, input, n, s->from_id) == 0
               ? 0
               : -RDV_EC_BAD_SIGNATURE;
}
