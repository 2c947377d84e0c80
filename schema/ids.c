/* ids.c - node IDs, session IDs (UUIDs) and lowercase hex helpers.
 *
 * Node IDs are the 64 lowercase hex digits of an Ed25519 public key;
 * session IDs are canonical lowercase 8-4-4-4-12 UUIDs (PROTOCOL.md section
 * 3). Validators take an explicit length and never read past it; functions
 * taking a NUL-terminated string read at most one byte past the expected
 * length. Randomness comes from libsodium (randombytes_buf), after an
 * idempotent sodium_init(). No global mutable state.
 */
#include "schema/ids.h"

#include <string.h>

#include <sodium.h>

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static uint8_t hex_nibble(char c)
{
    return (uint8_t)(c <= '9' ? c - '0' : c - 'a' + 10);
}

/* True when s[0..len) is exactly `hexlen` lowercase hex digits. */
bool rdv_hex_valid(const char *s, size_t len, size_t hexlen)
{
    if (s == NULL || len != hexlen)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_hex(s[i]))
            return false;
    return true;
}

bool rdv_node_id_valid(const char *s, size_t len)
{
    return rdv_hex_valid(s, len, RDV_NODE_ID_HEXLEN);
}

void rdv_node_id_from_pk(const uint8_t pk[RDV_NODE_ID_BYTES],
                         char out[RDV_NODE_ID_HEXLEN + 1])
{
    /* sodium_bin2hex writes lowercase digits and the NUL. */
    sodium_bin2hex(out, RDV_NODE_ID_HEXLEN + 1, pk, RDV_NODE_ID_BYTES);
}

/* `id` is NUL-terminated; it must be exactly 64 lowercase hex digits. */
int rdv_node_id_to_pk(const char *id, uint8_t pk[RDV_NODE_ID_BYTES])
{
    if (id == NULL || pk == NULL)
        return -1;
    size_t n = strnlen(id, RDV_NODE_ID_HEXLEN + 1);
    if (!rdv_node_id_valid(id, n))
        return -1;
    size_t bin_len = 0;
    if (sodium_hex2bin(pk, RDV_NODE_ID_BYTES, id, n, NULL, &bin_len, NULL) != 0 ||
        bin_len != RDV_NODE_ID_BYTES)
        return -1;
    return 0;
}

/* Positions of the dashes in the 8-4-4-4-12 form. */
static bool uuid_dash_at(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

bool rdv_uuid_valid(const char *s, size_t len)
{
    if (s == NULL || len != RDV_UUID_STRLEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (uuid_dash_at(i)) {
            if (s[i] != '-')
                return false;
        } else if (!is_lower_hex(s[i])) {
            return false;
        }
    }
    return true;
}

void rdv_uuid_from_bytes(const uint8_t in[RDV_UUID_BYTES],
                         char out[RDV_UUID_STRLEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < RDV_UUID_BYTES; i++) {
        if (uuid_dash_at(o))
            out[o++] = '-';
        out[o++] = digits[in[i] >> 4];
        out[o++] = digits[in[i] & 0x0f];
    }
    out[o] = '\0';
}

/* `s` is NUL-terminated and must be a canonical lowercase UUID. */
int rdv_uuid_to_bytes(const char *s, uint8_t out[RDV_UUID_BYTES])
{
    if (s == NULL || out == NULL)
        return -1;
    size_t n = strnlen(s, RDV_UUID_STRLEN + 1);
    if (!rdv_uuid_valid(s, n))
        return -1;
    size_t b = 0;
    for (size_t i = 0; i < RDV_UUID_STRLEN; i++) {
        if (uuid_dash_at(i))
            continue;
        out[b] = (uint8_t)((hex_nibble(s[i]) << 4) | hex_nibble(s[i + 1]));
        b++;
        i++;
    }
    return 0;
}

/* A version-4 (random) UUID. The program is expected to have called
 * sodium_init(); it is called again here (idempotent, thread-safe). Should
 * it fail, libsodium's default random source is still used: randombytes_buf
 * needs no initialisation of its own. */
void rdv_uuid_v4(char out[RDV_UUID_STRLEN + 1])
{
    uint8_t b[RDV_UUID_BYTES];
    if (sodium_init() < 0) {
        /* Not reachable once the program initialised libsodium; the
         * default random source initialises itself on first use. */
    }
    randombytes_buf(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 9562) */
    rdv_uuid_from_bytes(b, out);
}
