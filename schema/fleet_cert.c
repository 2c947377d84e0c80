/* fleet_cert.c - parse, verify and make fleet certificates (fleet_cert.h).
 *
 * The signature check reuses sign.c's domain-separated input with the tag
 * "fleetCert" (rdv_sig_input_tag); the canonical form is jcs.c's.
 */
#include "schema/fleet_cert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "schema/ids.h"
#include "schema/message.h"
#include "schema/sign.h"

#define MAX_SAFE_INT 9007199254740991LL

static const char *const rc_names[] = {
    [RDV_FLEET_OK] = "ok",
    [RDV_FLEET_EMALFORMED] = "malformed",
    [RDV_FLEET_EUNKNOWN_KEY] = "unknown_fleet_key",
    [RDV_FLEET_EBAD_SIGNATURE] = "bad_signature",
    [RDV_FLEET_EWRONG_NODE] = "wrong_node",
    [RDV_FLEET_ENOT_YET_VALID] = "not_yet_valid",
    [RDV_FLEET_EEXPIRED] = "expired",
    [RDV_FLEET_ENOMEM] = "out_of_memory",
};

const char *rdv_fleet_rc_name(rdv_fleet_rc rc)
{
    if ((int)rc < 0 || (size_t)rc >= sizeof rc_names / sizeof rc_names[0])
        return "unknown";
    return rc_names[rc];
}

int rdv_fleet_group_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > RDV_FLEET_GROUP_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
    }
    return 1;
}

static void set_field(char *field, size_t fieldlen, const char *name)
{
    if (field && fieldlen)
        snprintf(field, fieldlen, "%s", name);
}

/* A string member that is exactly hexlen lowercase hex digits. */
static const char *hex_member(const json_t *obj, const char *key, size_t hexlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || !rdv_hex_valid(json_string_value(v), json_string_length(v), hexlen))
        return NULL;
    return json_string_value(v);
}

/* An integral number member in lo..hi. */
static int int_member(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    if (!rdv_msg_get_int(obj, key, &v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

rdv_fleet_rc rdv_fleet_cert_parse(const json_t *obj, rdv_fleet_cert *out, char *field,
                                  size_t fieldlen)
{
    rdv_fleet_cert tmp;
    rdv_fleet_cert *c = out ? out : &tmp;
    memset(c, 0, sizeof *c);
    set_field(field, fieldlen, "");
#define BAD(name)                                                                             \
    do {                                                                                      \
        set_field(field, fieldlen, name);                                                     \
        return RDV_FLEET_EMALFORMED;                                                          \
    } while (0)
    if (!json_is_object(obj))
        BAD("cert");
    const json_t *t = json_object_get(obj, "type");
    if (!json_is_string(t) || strcmp(json_string_value(t), RDV_FLEET_CERT_TAG) != 0 ||
        json_string_length(t) != strlen(RDV_FLEET_CERT_TAG))
        BAD("type");
    int64_t v = 0;
    if (int_member(obj, "v", RDV_FLEET_CERT_VERSION, RDV_FLEET_CERT_VERSION, &v) != 0)
        BAD("v");
    const char *s = hex_member(obj, "nodeID", RDV_NODE_ID_HEXLEN);
    if (!s)
        BAD("nodeID");
    memcpy(c->node_id, s, RDV_NODE_ID_HEXLEN + 1);
    if (!(s = hex_member(obj, "serial", RDV_FLEET_SERIAL_HEXLEN)))
        BAD("serial");
    memcpy(c->serial, s, RDV_FLEET_SERIAL_HEXLEN + 1);
    if (int_member(obj, "notBefore", 1, MAX_SAFE_INT, &c->not_before) != 0)
        BAD("notBefore");
    if (int_member(obj, "expires", 1, MAX_SAFE_INT, &c->expires) != 0 ||
        c->expires < c->not_before)
        BAD("expires");
    const json_t *g = json_object_get(obj, "groups");
    if (g) {
        if (!json_is_array(g) || json_array_size(g) > RDV_FLEET_MAX_GROUPS)
            BAD("groups");
        size_t i;
        const json_t *e;
        json_array_foreach(g, i, e) {
            if (!json_is_string(e) || json_string_length(e) != strlen(json_string_value(e)) ||
                !rdv_fleet_group_valid(json_string_value(e)))
                BAD("groups");
            for (size_t k = 0; k < c->n_groups; k++)
                if (strcmp(c->groups[k], json_string_value(e)) == 0)
                    BAD("groups"); /* duplicate */
            snprintf(c->groups[c->n_groups], sizeof c->groups[0], "%s", json_string_value(e));
            c->n_groups++;
        }
    }
    if (!(s = hex_member(obj, "fleetKey", RDV_KEY32_HEXLEN)))
        BAD("fleetKey");
    memcpy(c->fleet_key, s, RDV_KEY32_HEXLEN + 1);
    if (!hex_member(obj, "signature", RDV_SIG_HEXLEN))
        BAD("signature");
#undef BAD
    return RDV_FLEET_OK;
}

json_t *rdv_fleet_cert_load_text(const char *text, size_t len, char *why, size_t whylen)
{
    if (!text || len == 0 || len > RDV_FLEET_CERT_MAX_BYTES) {
        if (why && whylen)
            snprintf(why, whylen, "a certificate is 1 to %d bytes of JSON",
                     RDV_FLEET_CERT_MAX_BYTES);
        return NULL;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        if (why && whylen)
            snprintf(why, whylen, "not JSON: %.80s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        if (why && whylen)
            snprintf(why, whylen, "not a JSON object");
        return NULL;
    }
    return obj;
}

static rdv_fleet_rc say(rdv_fleet_rc rc, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static rdv_fleet_rc say(rdv_fleet_rc rc, char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

rdv_fleet_rc rdv_fleet_cert_verify(const json_t *obj, const uint8_t (*keys)[RDV_NODE_ID_BYTES],
                                   size_t nkeys, const char *node_id, int64_t now,
                                   int64_t skew_ms, rdv_fleet_cert *out, char *why,
                                   size_t whylen)
{
    rdv_fleet_cert tmp;
    rdv_fleet_cert *c = out ? out : &tmp;
    char field[32];
    if (why && whylen)
        why[0] = '\0';
    if (rdv_fleet_cert_parse(obj, c, field, sizeof field) != RDV_FLEET_OK)
        return say(RDV_FLEET_EMALFORMED, why, whylen,
                   "the certificate's field %s is missing or invalid", field);
    uint8_t pk[RDV_NODE_ID_BYTES];
    if (rdv_node_id_to_pk(c->fleet_key, pk) != 0)
        return say(RDV_FLEET_EMALFORMED, why, whylen, "the certificate's fleetKey is invalid");
    size_t k = 0;
    while (k < nkeys && sodium_memcmp(keys[k], pk, sizeof pk) != 0)
        k++;
    if (k == nkeys)
        return say(RDV_FLEET_EUNKNOWN_KEY, why, whylen,
                   "the certificate is signed by fleet key %.16s..., which this server does "
                   "not trust",
                   c->fleet_key);
    uint8_t *input = NULL;
    size_t input_len = 0;
    int rc = rdv_sig_input_tag(RDV_FLEET_CERT_TAG, obj, &input, &input_len);
    if (rc != 0)
        return rc == -RDV_EC_INTERNAL
                   ? say(RDV_FLEET_ENOMEM, why, whylen, "out of memory")
                   : say(RDV_FLEET_EMALFORMED, why, whylen, "the certificate cannot be "
                                                            "canonicalised");
    uint8_t sig[RDV_SIG_BYTES];
    size_t sig_len = 0;
    const char *sh = json_string_value(json_object_get(obj, "signature"));
    int bad = sodium_init() < 0 ||
              sodium_hex2bin(sig, sizeof sig, sh, RDV_SIG_HEXLEN, NULL, &sig_len, NULL) != 0 ||
              sig_len != sizeof sig ||
              crypto_sign_verify_detached(sig, input, input_len, pk) != 0;
    free(input);
    if (bad)
        return say(RDV_FLEET_EBAD_SIGNATURE, why, whylen,
                   "the certificate's signature does not verify with its fleetKey (altered "
                   "after signing?)");
    if (!node_id || strcmp(node_id, c->node_id) != 0)
        return say(RDV_FLEET_EWRONG_NODE, why, whylen,
                   "the certificate is for node %.16s..., not this node", c->node_id);
    int64_t lo, hi;
    if (__builtin_sub_overflow(c->not_before, skew_ms, &lo))
        lo = INT64_MIN;
    if (__builtin_add_overflow(c->expires, skew_ms, &hi))
        hi = INT64_MAX;
    if (now < lo)
        return say(RDV_FLEET_ENOT_YET_VALID, why, whylen,
                   "the certificate is not valid before %lld ms (now %lld); check the clocks",
                   (long long)c->not_before, (long long)now);
    if (now > hi)
        return say(RDV_FLEET_EEXPIRED, why, whylen,
                   "the certificate expired at %lld ms (now %lld); ask the operator for a new "
                   "one",
                   (long long)c->expires, (long long)now);
    return RDV_FLEET_OK;
}

json_t *rdv_fleet_cert_make(const uint8_t sk[RDV_SECRET_KEY_BYTES], const char *node_id,
                            const char *serial, int64_t not_before, int64_t expires,
                            const char *const *groups, size_t n_groups)
{
    if (!sk || !node_id || !rdv_node_id_valid(node_id, strlen(node_id)) || not_before < 1 ||
        expires < not_before || expires > MAX_SAFE_INT || n_groups > RDV_FLEET_MAX_GROUPS ||
        sodium_init() < 0)
        return NULL;
    char ser[RDV_FLEET_SERIAL_HEXLEN + 1];
    if (serial) {
        if (!rdv_hex_valid(serial, strlen(serial), RDV_FLEET_SERIAL_HEXLEN))
            return NULL;
        memcpy(ser, serial, sizeof ser);
    } else {
        uint8_t rnd[RDV_FLEET_SERIAL_HEXLEN / 2];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(ser, sizeof ser, rnd, sizeof rnd);
    }
    char key_hex[RDV_KEY32_HEXLEN + 1];
    sodium_bin2hex(key_hex, sizeof key_hex, sk + RDV_SEED_BYTES, RDV_NODE_ID_BYTES);
    json_t *cert = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:s}", "type", RDV_FLEET_CERT_TAG,
                             "v", RDV_FLEET_CERT_VERSION, "nodeID", node_id, "serial", ser,
                             "notBefore", (json_int_t)not_before, "expires",
                             (json_int_t)expires, "fleetKey", key_hex);
    if (!cert)
        return NULL;
    if (n_groups > 0) {
        json_t *g = json_array();
        if (!g || json_object_set_new(cert, "groups", g) != 0) {
            json_decref(cert);
            return NULL;
        }
        for (size_t i = 0; i < n_groups; i++) {
            if (!rdv_fleet_group_valid(groups[i]) ||
                json_array_append_new(g, json_string(groups[i])) != 0) {
                json_decref(cert);
                return NULL;
            }
        }
    }
    uint8_t *input = NULL;
    size_t input_len = 0;
    uint8_t sig[RDV_SIG_BYTES];
    char sig_hex[RDV_SIG_HEXLEN + 1];
    if (rdv_sig_input_tag(RDV_FLEET_CERT_TAG, cert, &input, &input_len) != 0 ||
        crypto_sign_detached(sig, NULL, input, input_len, sk) != 0) {
        free(input);
        json_decref(cert);
        return NULL;
    }
    free(input);
    sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
    if (json_object_set_new(cert, "signature", json_string(sig_hex)) != 0 ||
        rdv_fleet_cert_parse(cert, NULL, NULL, 0) != RDV_FLEET_OK) {
        json_decref(cert); /* e.g. duplicate groups */
        return NULL;
    }
    return cert;
}

int rdv_fleet_key_decode(const char *s, size_t len, uint8_t out[RDV_NODE_ID_BYTES])
{
    if (!s || !out)
        return -1;
    size_t bin_len = 0;
    if (len == RDV_KEY32_HEXLEN) { /* hex, either case */
        const char *end = NULL;
        if (sodium_hex2bin(out, RDV_NODE_ID_BYTES, s, len, NULL, &bin_len, &end) != 0 ||
            bin_len != RDV_NODE_ID_BYTES || end != s + len)
            return -1;
        return 0;
    }
    if (len != 44 && len != 43)
        return -1;
    if (sodium_init() < 0)
        return -1;
    const char *end = NULL;
    int variant = len == 44 ? sodium_base64_VARIANT_ORIGINAL
                            : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    if (sodium_base642bin(out, RDV_NODE_ID_BYTES, s, len, NULL, &bin_len, &end, variant) != 0 ||
        bin_len != RDV_NODE_ID_BYTES || end != s + len)
        return -1;
    return 0;
}
