/* jcs.c - RFC 8785 JSON Canonicalization Scheme (JCS) for jansson values.
 *
 * Produces the canonical byte form of a jansson value, the input to
 * Ed25519 signing and verification (see jcs.h and PROTOCOL.md "Signatures"):
 *
 *   - RFC 8785 3.2.1  "Whitespace": no whitespace between tokens.
 *   - RFC 8785 3.2.2.1 "Serialization of Literals": null, true, false.
 *   - RFC 8785 3.2.2.2 "Serialization of Strings": minimal escaping, raw
 *     UTF-8 for everything that need not be escaped.
 *   - RFC 8785 3.2.2.3 "Serialization of Numbers": ECMAScript
 *     Number.prototype.toString of the IEEE-754 double (integers included).
 *   - RFC 8785 3.2.3  "Sorting of Object Properties": by the UTF-16 code
 *     units of the property names.
 *
 * Only jansson and libc are used. Number formatting avoids locale
 * dependence: the digits of snprintf("%.*e") are parsed out ignoring
 * whatever decimal-point character the locale uses, and round-trip checks
 * feed strtod strings with no decimal point at all.
 */
#include "schema/jcs.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Output buffer                                                             */
/* ------------------------------------------------------------------------ */

/* Growable byte buffer that refuses to hold more than `max` bytes (plus the
 * terminating NUL, which is not counted). */
struct jcs_buf {
    char *data;
    size_t len;
    size_t cap; /* allocated bytes, always > len once data != NULL */
    size_t max;
};

/* Appends n bytes. Returns RDV_JCS_OK, RDV_JCS_ETOOBIG if the result would
 * exceed b->max, or RDV_JCS_ENOMEM. On error the buffer is unchanged. */
static int buf_append(struct jcs_buf *b, const char *s, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return RDV_JCS_ETOOBIG;
    size_t need = b->len + n + 1; /* + NUL; cannot overflow: len+n <= max */
    if (need < b->len + n)
        return RDV_JCS_ETOOBIG; /* max == SIZE_MAX and len+n == SIZE_MAX */
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                cap = need;
                break;
            }
            cap *= 2;
        }
        /* Never allocate much more than the caller allows. */
        if (b->max < SIZE_MAX && cap > b->max + 1)
            cap = b->max + 1;
        if (cap < need)
            cap = need;
        char *p = realloc(b->data, cap);
        if (!p)
            return RDV_JCS_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return RDV_JCS_OK;
}

/* Appends one byte; same results as buf_append. */
static int buf_putc(struct jcs_buf *b, char c)
{
    return buf_append(b, &c, 1);
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */
/* ------------------------------------------------------------------------ */

/* Decodes one code point from s[0..n) (n >= 1). On success stores it in *cp
 * and returns the sequence length (1..4); returns 0 for an invalid
 * sequence: bad lead or continuation byte, truncation, overlong form,
 * UTF-16 surrogate (U+D800..U+DFFF) or a value above U+10FFFF
 * (RFC 3629; RFC 8785 3.2.2.2 requires valid Unicode input). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) { /* 0xC0, 0xC1 are always overlong */
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Returns 1 if s[0..n) is entirely valid UTF-8 (see utf8_decode), else 0.
 * Embedded NULs are valid (U+0000). */
static int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_decode(p + i, n - i, &cp);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* Iterator over the UTF-16 code units of a valid UTF-8 string. */
struct u16_iter {
    const unsigned char *p;
    size_t n;
    size_t i;
    uint32_t pending; /* low surrogate still to deliver, or 0 */
};

/* Stores the next UTF-16 code unit in *unit and returns 1, or returns 0 at
 * the end. Code points >= U+10000 yield a surrogate pair (RFC 8785 3.2.3:
 * "property name strings ... are formatted as arrays of UTF-16 code
 * units"). The input must have been checked with utf8_valid. */
static int u16_next(struct u16_iter *it, uint32_t *unit)
{
    if (it->pending) {
        *unit = it->pending;
        it->pending = 0;
        return 1;
    }
    if (it->i >= it->n)
        return 0;
    uint32_t cp = 0;
    size_t l = utf8_decode(it->p + it->i, it->n - it->i, &cp);
    if (l == 0) { /* unreachable for validated input; stop safely */
        it->i = it->n;
        return 0;
    }
    it->i += l;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *unit = 0xD800 + (cp >> 10);
        it->pending = 0xDC00 + (cp & 0x3FF);
    } else {
        *unit = cp;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Strings: RFC 8785 3.2.2.2                                                 */
/* ------------------------------------------------------------------------ */

/* Appends s[0..n) as a JSON string literal per RFC 8785 3.2.2.2 (ECMAScript
 * JSON.stringify / QuoteJSONString): '"' and '\' are backslash-escaped;
 * U+0008, U+0009, U+000A, U+000C, U+000D use \b \t \n \f \r; the other
 * controls U+0000..U+001F use \u00xx with lowercase hex; everything else,
 * including '/', U+007F and all non-ASCII, is copied as raw UTF-8.
 * Returns RDV_JCS_EUTF8 if s is not valid UTF-8, or a buf_append error. */
static int emit_string(struct jcs_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc;

    if (!utf8_valid(s, n))
        return RDV_JCS_EUTF8;
    if ((rc = buf_putc(b, '"')) != RDV_JCS_OK)
        return rc;
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case 0x08: esc[1] = 'b'; break;
        case 0x09: esc[1] = 't'; break;
        case 0x0A: esc[1] = 'n'; break;
        case 0x0C: esc[1] = 'f'; break;
        case 0x0D: esc[1] = 'r'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            elen = 6;
            break;
        }
        if ((rc = buf_append(b, s + run, i - run)) != RDV_JCS_OK)
            return rc;
        if ((rc = buf_append(b, esc, elen)) != RDV_JCS_OK)
            return rc;
        run = i + 1;
    }
    if ((rc = buf_append(b, s + run, n - run)) != RDV_JCS_OK)
        return rc;
    return buf_putc(b, '"');
}

/* ------------------------------------------------------------------------ */
/* Numbers: RFC 8785 3.2.2.3                                                 */
/* ------------------------------------------------------------------------ */

/* Returns 1 if the decimal s * 10^exp10 reads back (strtod, round to
 * nearest) as exactly `v` (v > 0, finite). The string has no decimal point,
 * so strtod's locale does not matter. */
static int roundtrips(uint64_t s, int exp10, double v)
{
    char tmp[48];
    int r = snprintf(tmp, sizeof tmp, "%llue%d", (unsigned long long)s, exp10);
    if (r < 0 || (size_t)r >= sizeof tmp)
        return 0;
    int saved = errno; /* strtod may set ERANGE for subnormals */
    double back = strtod(tmp, NULL);
    errno = saved;
    return back == v;
}

/* Formats v (finite, > 0) with `prec` significant digits via "%.*e" and
 * parses the result into the integer significand *s (exactly prec digits)
 * and the exponent *exp10 of its last digit, so v ~= *s * 10^*exp10.
 * Non-digit characters before the 'e' (the locale's decimal point, however
 * many bytes) are skipped. Returns 0 on success, -1 on a formatting
 * failure. */
static int sci_digits(double v, int prec, uint64_t *s, int *exp10)
{
    char tmp[64];
    int r = snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    if (r < 0 || (size_t)r >= sizeof tmp)
        return -1;
    uint64_t acc = 0;
    int nd = 0;
    const char *p = tmp;
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p >= '0' && *p <= '9') {
            acc = acc * 10 + (uint64_t)(*p - '0');
            nd++;
        }
    }
    if ((*p != 'e' && *p != 'E') || nd != prec)
        return -1;
    char *end;
    long e = strtol(p + 1, &end, 10);
    if (end == p + 1 || e < -400 || e > 400)
        return -1;
    *s = acc;
    *exp10 = (int)e - (prec - 1);
    return 0;
}

/* Finds the ECMAScript digits of v (finite, > 0): the shortest decimal
 * significand s (k digits, no trailing zeros) such that s * 10^(n-k) reads
 * back as v, preferring the candidate closest to v (ECMA-262 7.1.12.1
 * Number::toString step 5, as required by RFC 8785 3.2.2.3). Stores the
 * digits as ASCII in digits[] (NUL-terminated, at most 17), k in *k and n
 * (the position of the decimal point relative to the first digit) in *n.
 * Returns 0, or -1 if formatting failed. */
static int shortest_digits(double v, char digits[18], int *k, int *n)
{
    uint64_t s = 0;
    int e = 0;
    int found = 0;

    for (int prec = 1; prec <= 17 && !found; prec++) {
        if (sci_digits(v, prec, &s, &e) != 0)
            return -1;
        if (roundtrips(s, e, v)) {
            found = 1;
            break;
        }
        /* The correctly rounded prec-digit value is the closest one to v,
         * but at a power of two the round-trip interval is asymmetric, so
         * the neighbour on the other side of v may still read back as v
         * while the closest does not (e.g. 2^-44 -> 5.684341886080802e-14;
         * the closest 16-digit value ...8015 does not read back). For a
         * double the gap above v is never smaller than the gap below, so
         * in practice it is the upper neighbour; both are tried. */
        uint64_t lo = 1; /* smallest prec-digit significand */
        for (int i = 1; i < prec; i++)
            lo *= 10;
        if (roundtrips(s + 1, e, v)) {
            s = s + 1;
            found = 1;
        } else if (s > lo && roundtrips(s - 1, e, v)) {
            s = s - 1;
            found = 1;
        }
    }
    if (!found) /* 17 digits always round-trip; defensive */
        return -1;

    char tmp[24];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)s);
    if (len <= 0 || len > 18)
        return -1;
    /* s may be 10^prec after s + 1: the extra digit is a trailing zero. */
    int kk = len;
    while (kk > 1 && tmp[kk - 1] == '0')
        kk--;
    e += len - kk; /* value = digits[0..kk) * 10^e */
    if (kk > 17)
        return -1;
    memcpy(digits, tmp, (size_t)kk);
    digits[kk] = '\0';
    *k = kk;
    *n = e + kk;
    return 0;
}

/* RFC 8785 3.2.2.3: writes the ECMAScript Number.prototype.toString form
 * of finite v into buf (buflen >= 32 suffices for every double). Returns
 * the length written (excluding the NUL), RDV_JCS_ENUMBER for NaN or
 * infinity, or RDV_JCS_ETOOBIG if buf is too small. -0 is written as "0"
 * (ECMA-262 Number::toString step 2). */
int rdv_jcs_format_number(double v, char *buf, size_t buflen)
{
    char out[40];
    size_t o = 0;
    char d[18];
    int k, n;

    if (isnan(v) || isinf(v))
        return RDV_JCS_ENUMBER;
    if (v == 0) {
        out[o++] = '0';
    } else if (v == trunc(v) && fabs(v) < 9007199254740992.0) {
        /* Fast path for the common case (timestamps, ports, priorities):
         * an integer below 2^53 is exact and its ECMAScript form is its
         * plain decimal digits (steps 6-7 with k <= n <= 21). */
        int w = snprintf(out, sizeof out, "%lld", (long long)v);
        if (w < 0)
            return RDV_JCS_ENUMBER;
        o = (size_t)w;
    } else {
        if (v < 0) {
            out[o++] = '-';
            v = -v;
        }
        if (shortest_digits(v, d, &k, &n) != 0)
            return RDV_JCS_ENUMBER; /* cannot happen for finite v */
        /* ECMA-262 Number::toString steps 6-10. */
        if (k <= n && n <= 21) {
            /* digits followed by n-k zeros */
            memcpy(out + o, d, (size_t)k);
            o += (size_t)k;
            for (int i = 0; i < n - k; i++)
                out[o++] = '0';
        } else if (0 < n && n <= 21) {
            /* first n digits, '.', remaining k-n digits */
            memcpy(out + o, d, (size_t)n);
            o += (size_t)n;
            out[o++] = '.';
            memcpy(out + o, d + n, (size_t)(k - n));
            o += (size_t)(k - n);
        } else if (-6 < n && n <= 0) {
            /* "0." then -n zeros then the digits */
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -n; i++)
                out[o++] = '0';
            memcpy(out + o, d, (size_t)k);
            o += (size_t)k;
        } else {
            /* d[.ddd]e+X or d[.ddd]e-X with X = |n-1| */
            out[o++] = d[0];
            if (k > 1) {
                out[o++] = '.';
                memcpy(out + o, d + 1, (size_t)(k - 1));
                o += (size_t)(k - 1);
            }
            int x = n - 1;
            out[o++] = 'e';
            out[o++] = x < 0 ? '-' : '+';
            if (x < 0)
                x = -x;
            char ex[8];
            int el = snprintf(ex, sizeof ex, "%d", x);
            if (el <= 0 || (size_t)el >= sizeof ex)
                return RDV_JCS_ENUMBER;
            memcpy(out + o, ex, (size_t)el);
            o += (size_t)el;
        }
    }
    if (!buf || o + 1 > buflen)
        return RDV_JCS_ETOOBIG;
    memcpy(buf, out, o);
    buf[o] = '\0';
    return (int)o;
}

/* Appends the RFC 8785 3.2.2.3 form of v; RDV_JCS_ENUMBER for NaN/Inf. */
static int emit_number(struct jcs_buf *b, double v)
{
    char tmp[40];
    int r = rdv_jcs_format_number(v, tmp, sizeof tmp);
    if (r < 0)
        return r;
    return buf_append(b, tmp, (size_t)r);
}

/* ------------------------------------------------------------------------ */
/* Objects: RFC 8785 3.2.3                                                   */
/* ------------------------------------------------------------------------ */

struct member {
    const char *key;
    size_t key_len;
    const json_t *value;
};

/* qsort comparator: orders members by the UTF-16 code units of their
 * names, unit by unit, a proper prefix first (RFC 8785 3.2.3). Names have
 * been validated as UTF-8 beforehand. jansson objects have unique keys, so
 * no two members compare equal. */
static int member_cmp(const void *pa, const void *pb)
{
    const struct member *a = pa, *b = pb;
    struct u16_iter ia = {(const unsigned char *)a->key, a->key_len, 0, 0};
    struct u16_iter ib = {(const unsigned char *)b->key, b->key_len, 0, 0};
    for (;;) {
        uint32_t ua = 0, ub = 0;
        int ha = u16_next(&ia, &ua);
        int hb = u16_next(&ib, &ub);
        if (!ha || !hb)
            return ha - hb;
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

static int emit_value(struct jcs_buf *b, const json_t *v, int depth);

/* Appends object `obj` with members sorted per RFC 8785 3.2.3, each name
 * serialised as a string (3.2.2.2) and each value recursively. `depth` is
 * the nesting level of this object (1 for the outermost container). */
static int emit_object(struct jcs_buf *b, const json_t *obj, int depth)
{
    json_t *o = (json_t *)obj; /* jansson's iterator API is not const */
    size_t count = json_object_size(o);
    struct member *m = NULL;
    size_t i = 0;
    int rc;

    if (count > 0) {
        if (count > SIZE_MAX / sizeof *m)
            return RDV_JCS_ENOMEM;
        m = malloc(count * sizeof *m);
        if (!m)
            return RDV_JCS_ENOMEM;
    }
    for (void *it = json_object_iter(o); it && i < count;
         it = json_object_iter_next(o, it)) {
        m[i].key = json_object_iter_key(it);
#if JANSSON_VERSION_HEX >= 0x020e00
        m[i].key_len = json_object_iter_key_len(it);
#else
        m[i].key_len = strlen(m[i].key);
#endif
        m[i].value = json_object_iter_value(it);
        if (!utf8_valid(m[i].key, m[i].key_len)) {
            free(m);
            return RDV_JCS_EUTF8;
        }
        i++;
    }
    count = i;
    if (count > 1)
        qsort(m, count, sizeof *m, member_cmp);

    rc = buf_putc(b, '{');
    for (i = 0; rc == RDV_JCS_OK && i < count; i++) {
        if (i > 0 && (rc = buf_putc(b, ',')) != RDV_JCS_OK)
            break;
        if ((rc = emit_string(b, m[i].key, m[i].key_len)) != RDV_JCS_OK)
            break;
        if ((rc = buf_putc(b, ':')) != RDV_JCS_OK)
            break;
        rc = emit_value(b, m[i].value, depth);
    }
    free(m);
    if (rc != RDV_JCS_OK)
        return rc;
    return buf_putc(b, '}');
}

/* Appends array `arr` in its original element order (RFC 8785 3.2.3:
 * "array element order is not changed"). */
static int emit_array(struct jcs_buf *b, const json_t *arr, int depth)
{
    size_t count = json_array_size(arr);
    int rc = buf_putc(b, '[');
    for (size_t i = 0; rc == RDV_JCS_OK && i < count; i++) {
        if (i > 0 && (rc = buf_putc(b, ',')) != RDV_JCS_OK)
            break;
        rc = emit_value(b, json_array_get(arr, i), depth);
    }
    if (rc != RDV_JCS_OK)
        return rc;
    return buf_putc(b, ']');
}

/* Appends any value. `depth` is the number of containers enclosing v; a
 * container at a level beyond RDV_JCS_MAX_DEPTH fails with RDV_JCS_EDEPTH
 * (this also stops reference cycles). A NULL value (how jansson reports a
 * failed constructor) yields RDV_JCS_ENOMEM. */
static int emit_value(struct jcs_buf *b, const json_t *v, int depth)
{
    if (!v)
        return RDV_JCS_ENOMEM;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth + 1 > RDV_JCS_MAX_DEPTH)
            return RDV_JCS_EDEPTH;
        return emit_object(b, v, depth + 1);
    case JSON_ARRAY:
        if (depth + 1 > RDV_JCS_MAX_DEPTH)
            return RDV_JCS_EDEPTH;
        return emit_array(b, v, depth + 1);
    case JSON_STRING:
        return emit_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        /* RFC 8785 3.2.2.3: all numbers are IEEE-754 doubles. */
        return emit_number(b, (double)json_integer_value(v));
    case JSON_REAL:
        return emit_number(b, json_real_value(v));
    case JSON_TRUE: /* RFC 8785 3.2.2.1 */
        return buf_append(b, "true", 4);
    case JSON_FALSE:
        return buf_append(b, "false", 5);
    case JSON_NULL:
        return buf_append(b, "null", 4);
    }
    return RDV_JCS_ENOMEM; /* unknown type: not reachable with jansson */
}

/* ------------------------------------------------------------------------ */
/* Public entry point                                                        */
/* ------------------------------------------------------------------------ */

/* See jcs.h. RFC 8785 3.2 as a whole: the canonical UTF-8 serialisation
 * of `value`, at most max_len bytes. out_len may be NULL. On error *out is
 * NULL (and *out_len 0) and all memory is released. */
int rdv_jcs_serialize(const json_t *value, size_t max_len, char **out,
                      size_t *out_len)
{
    struct jcs_buf b = {NULL, 0, 0, max_len};
    int rc;

    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!out)
        return RDV_JCS_ENOMEM;
    rc = emit_value(&b, value, 0);
    if (rc == RDV_JCS_OK && !b.data) /* every value emits >= 1 byte */
        rc = RDV_JCS_ENOMEM;
    if (rc != RDV_JCS_OK) {
        free(b.data);
        return rc;
    }
    *out = b.data;
    if (out_len)
        *out_len = b.len;
    return RDV_JCS_OK;
}
