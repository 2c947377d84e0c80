/* sign.c - Ed25519 signatures over domain-tagged RFC 8785 canonical JSON.
 *
 * PROTOCOL.md section 4:
 *
 *   input     = "rendezvous.v1/" || type || 0x00 || JCS(body minus "signature")
 *   signature = Ed25519-Sign(sk, input), carried as 128 lowercase hex digits
 *
 * The canonical form comes from rdv_jcs_serialize (jcs.c), which treats
 * every number as an IEEE-754 double, so a body built with integers and the
 * same body parsed from text (reals) sign identically. Every unknown member
 * is covered. libsodium is initialised idempotently before use.
 */
#include "schema/sign.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "schema/ids.h"
#include "schema/jcs.h"

/* Largest canonical body we sign or verify. Well above any message size a
 * server would accept (JCS may lengthen numbers such as 1e20); a bound
 * nonetheless, so a huge body fails instead of exhausting memory. */
#define SIG_MAX_CANONICAL ((size_t)16 * 1024 * 1024)

/* 0 when libsodium is usable; sodium_init() is idempotent and thread-safe. */
static int sodium_ready(void)
{
    return sodium_init() < 0 ? -RDV_EC_INTERNAL : 0;
}

static int jcs_error(int rc)
{
    switch (rc) {
    case RDV_JCS_ETOOBIG: return -RDV_EC_TOO_LARGE;
    case RDV_JCS_ENUMBER: return -RDV_EC_INVALID_FIELD;
    case RDV_JCS_EUTF8:
    case RDV_JCS_EDEPTH: return -RDV_EC_BAD_JSON;
    default: return -RDV_EC_INTERNAL; /* ENOMEM and anything unexpected */
    }
}

int rdv_sig_input(rdv_msg_type type, const json_t *body, uint8_t **out,
                  size_t *len)
{
    if (out == NULL || len == NULL)
        return -RDV_EC_INTERNAL;
    *out = NULL;
    *len = 0;
    const char *name = rdv_msg_type_name(type);
    if (name == NULL)
        return -RDV_EC_UNSUPPORTED_TYPE;
    return rdv_sig_input_tag(name, body, out, len);
}

int rdv_sig_input_tag(const char *name, const json_t *body, uint8_t **out,
                      size_t *len)
{
    if (out == NULL || len == NULL || name == NULL)
        return -RDV_EC_INTERNAL;
    *out = NULL;
    *len = 0;
    size_t n = strlen(name);
    if (n == 0 || n > 32)
        return -RDV_EC_UNSUPPORTED_TYPE;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z')))
            return -RDV_EC_UNSUPPORTED_TYPE;
    if (!json_is_object(body))
        return -RDV_EC_BAD_MESSAGE;

    /* A shallow copy without "signature": members are shared, not copied. */
    json_t *copy = NULL;
    const json_t *src = body;
    if (json_object_get(body, "signature") != NULL) {
        copy = json_copy((json_t *)body);
        if (copy == NULL)
            return -RDV_EC_INTERNAL;
        if (json_object_del(copy, "signature") != 0) {
            json_decref(copy);
            return -RDV_EC_INTERNAL;
        }
        src = copy;
    }
    char *canon = NULL;
    size_t canon_len = 0;
    int rc = rdv_jcs_serialize(src, SIG_MAX_CANONICAL, &canon, &canon_len);
    json_decref(copy);
    if (rc != RDV_JCS_OK)
        return jcs_error(rc);

    size_t prefix_len = strlen(RDV_DOMAIN_PREFIX);
    size_t name_len = strlen(name);
    size_t total = prefix_len + name_len + 1 + canon_len; /* no overflow: canon_len is bounded */
    uint8_t *buf = malloc(total);
    if (buf == NULL) {
        free(canon);
        return -RDV_EC_INTERNAL;
    }
    memcpy(buf, RDV_DOMAIN_PREFIX, prefix_len);
    memcpy(buf + prefix_len, name, name_len);
    buf[prefix_len + name_len] = 0x00;
    memcpy(buf + prefix_len + name_len + 1, canon, canon_len);
    free(canon);
    *out = buf;
    *len = total;
    return 0;
}

int rdv_sig_sign(rdv_msg_type type, json_t *body,
                 const uint8_t sk[RDV_SECRET_KEY_BYTES])
{
    if (sk == NULL)
        return -RDV_EC_INTERNAL;
    if (!rdv_msg_type_is_signed(type))
        return -RDV_EC_UNSUPPORTED_TYPE;
    int rc = sodium_ready();
    if (rc != 0)
        return rc;
    uint8_t *input = NULL;
    size_t input_len = 0;
    rc = rdv_sig_input(type, body, &input, &input_len);
    if (rc != 0)
        return rc;
    uint8_t sig[RDV_SIG_BYTES];
    rc = crypto_sign_detached(sig, NULL, input, input_len, sk);
    free(input);
    if (rc != 0)
        return -RDV_EC_INTERNAL;
    char hex[RDV_SIG_HEXLEN + 1];
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    if (json_object_set_new(body, "signature", json_string(hex)) != 0)
        return -RDV_EC_INTERNAL;
    return 0;
}

int rdv_sig_prepare(rdv_msg_type type, const json_t *body, uint8_t sig[RDV_SIG_BYTES],
                    uint8_t **input, size_t *len)
{
    if (!rdv_msg_type_is_signed(type))
        return -RDV_EC_UNSUPPORTED_TYPE;
    if (!json_is_object(body))
        return -RDV_EC_BAD_MESSAGE;
    const json_t *sv = json_object_get(body, "signature");
    if (!json_is_string(sv) ||
        !rdv_hex_valid(json_string_value(sv), json_string_length(sv),
                       RDV_SIG_HEXLEN))
        return -RDV_EC_BAD_SIGNATURE;
    size_t sig_len = 0;
    if (sodium_hex2bin(sig, RDV_SIG_BYTES, json_string_value(sv),
                       RDV_SIG_HEXLEN, NULL, &sig_len, NULL) != 0 ||
        sig_len != RDV_SIG_BYTES)
        return -RDV_EC_BAD_SIGNATURE;
    int rc = sodium_ready();
    if (rc != 0)
        return rc;
    return rdv_sig_input(type, body, input, len);
}

int rdv_sig_verify(rdv_msg_type type, const json_t *body,
                   const uint8_t pk[RDV_NODE_ID_BYTES])
{
    if (pk == NULL)
        return -RDV_EC_INTERNAL;
    uint8_t sig[RDV_SIG_BYTES];
    uint8_t *input = NULL;
    size_t input_len = 0;
    int rc = rdv_sig_prepare(type, body, sig, &input, &input_len);
    if (rc != 0)
        return rc;
    rc = crypto_sign_verify_detached(sig, input, input_len, pk);
    free(input);
    return rc == 0 ? 0 : -RDV_EC_BAD_SIGNATURE;
}

int rdv_sig_key_from(const json_t *body, const char *key_field,
                     uint8_t pk[RDV_NODE_ID_BYTES])
{
    if (key_field == NULL || !json_is_object(body))
        return -RDV_EC_BAD_SIGNATURE;
    const json_t *kv = json_object_get(body, key_field);
    if (!json_is_string(kv) ||
        !rdv_node_id_valid(json_string_value(kv), json_string_length(kv)) ||
        rdv_node_id_to_pk(json_string_value(kv), pk) != 0)
        return -RDV_EC_BAD_SIGNATURE;
    return 0;
}

int rdv_sig_verify_from(rdv_msg_type type, const json_t *body,
                        const char *key_field)
{
    uint8_t pk[RDV_NODE_ID_BYTES];
    int rc = rdv_sig_key_from(body, key_field, pk);
    return rc != 0 ? rc : rdv_sig_verify(type, body, pk);
}

/* now - past_ms <= ts <= now + future_ms, without overflow for any input
 * (the bounds saturate at the int64_t limits). */
bool rdv_ts_fresh(int64_t ts, int64_t now, int64_t past_ms, int64_t future_ms)
{
    if (past_ms < 0 || future_ms < 0)
        return false;
    int64_t lo, hi;
    if (__builtin_sub_overflow(now, past_ms, &lo))
        lo = INT64_MIN;
    if (__builtin_add_overflow(now, future_ms, &hi))
        hi = INT64_MAX;
    return ts >= lo && ts <= hi;
}

int64_t rdv_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
