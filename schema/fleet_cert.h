/* fleet_cert.h - the fleet certificate (PROTOCOL.md section 6.1): an
 * operator's offline fleet key signs a node ID, a validity period and
 * optional groups; a node shows it in `hello` (field `cert`) and a server
 * in `fleet` admission mode checks it.
 *
 *   {"type": "fleetCert", "v": 1, "nodeID": <NodeID>, "serial": <32 hex>,
 *    "notBefore": <Timestamp>, "expires": <Timestamp>,
 *    "groups": [<group>, ...]   (optional),
 *    "fleetKey": <Key32: the signer's Ed25519 public key>,
 *    "signature": <Signature>}
 *
 * signature = Ed25519(fleet secret key, "rendezvous.v1/fleetCert" || 0x00 ||
 * JCS(cert without "signature")), the same domain-separated scheme as the
 * messages (sign.h), so no message signature is ever a valid certificate
 * and no certificate signature a valid message.
 *
 * Everything here is pure (no I/O, no clock: callers pass `now`) and safe
 * on any input: bounded, no aborts. Fuzzed by tests/fuzz/fuzz_fleet_cert.c.
 */
#ifndef RDV_SCHEMA_FLEET_CERT_H
#define RDV_SCHEMA_FLEET_CERT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "schema/wire_limits.h"

#define RDV_FLEET_CERT_TAG "fleetCert"   /* domain tag and "type" value */
#define RDV_FLEET_CERT_VERSION 1
#define RDV_FLEET_SERIAL_HEXLEN 32       /* 16 random bytes, lowercase hex */
#define RDV_FLEET_MAX_GROUPS 16          /* groups per certificate */
#define RDV_FLEET_GROUP_MAX 32           /* characters per group name */
#define RDV_FLEET_CERT_MAX_BYTES 4096    /* a certificate file / JSON text */
#define RDV_FLEET_MAX_KEYS 8             /* trusted fleet keys (rotation) */

/* Outcome of parse / verify (0 is success). */
typedef enum rdv_fleet_rc {
    RDV_FLEET_OK = 0,
    RDV_FLEET_EMALFORMED,     /* a field is missing or invalid (`field` says which) */
    RDV_FLEET_EUNKNOWN_KEY,   /* fleetKey is not one of the trusted keys */
    RDV_FLEET_EBAD_SIGNATURE, /* the signature does not verify with fleetKey */
    RDV_FLEET_EWRONG_NODE,    /* nodeID is another node's */
    RDV_FLEET_ENOT_YET_VALID, /* now < notBefore - skew */
    RDV_FLEET_EEXPIRED,       /* now > expires + skew */
    RDV_FLEET_ENOMEM
} rdv_fleet_rc;

/* A certificate's content, as parsed. Strings are NUL-terminated. */
typedef struct rdv_fleet_cert {
    char node_id[RDV_NODE_ID_HEXLEN + 1];
    char serial[RDV_FLEET_SERIAL_HEXLEN + 1];
    int64_t not_before, expires;
    char fleet_key[RDV_KEY32_HEXLEN + 1];
    size_t n_groups;
    char groups[RDV_FLEET_MAX_GROUPS][RDV_FLEET_GROUP_MAX + 1];
} rdv_fleet_cert;

/* Short name of rc ("expired", "unknown_fleet_key", ...), static. */
const char *rdv_fleet_rc_name(rdv_fleet_rc rc);

/* True when s is a valid group name: 1..32 characters of [A-Za-z0-9_.-]. */
int rdv_fleet_group_valid(const char *s);

/* Checks the shape of certificate object `obj` (every field present, of its
 * type and range; at most 16 distinct groups; "type" "fleetCert", "v" 1,
 * notBefore <= expires) and fills *out (may be NULL). Unknown members are
 * allowed (the signature covers them). On failure returns
 * RDV_FLEET_EMALFORMED and writes the offending field's name into field
 * (size fieldlen, may be NULL). Does not check the signature. */
rdv_fleet_rc rdv_fleet_cert_parse(const json_t *obj, rdv_fleet_cert *out, char *field,
                                  size_t fieldlen) __attribute__((warn_unused_result));

/* Parses a certificate from JSON text (a file's content) of at most
 * RDV_FLEET_CERT_MAX_BYTES: duplicate keys refused. Returns the object (new
 * reference) or NULL with a reason in why (size whylen). Shape not checked. */
json_t *rdv_fleet_cert_load_text(const char *text, size_t len, char *why, size_t whylen);

/* Full check of `obj` for node `node_id` (64 hex) at time `now` (ms since
 * the epoch): shape, fleetKey among keys[0..nkeys) (raw 32-byte Ed25519
 * public keys), signature, nodeID equal to node_id, and
 * notBefore - skew_ms <= now <= expires + skew_ms. The first failure is
 * returned, with a one-line explanation for a human in why (may be NULL).
 * *out (may be NULL) is filled on success. */
rdv_fleet_rc rdv_fleet_cert_verify(const json_t *obj, const uint8_t (*keys)[RDV_NODE_ID_BYTES],
                                   size_t nkeys, const char *node_id, int64_t now,
                                   int64_t skew_ms, rdv_fleet_cert *out, char *why,
                                   size_t whylen) __attribute__((warn_unused_result));

/* Builds and signs a certificate with the fleet secret key sk (libsodium's
 * 64-byte form): type, v, nodeID, serial (32 hex; NULL draws a random one),
 * notBefore, expires, groups[0..n_groups) and fleetKey (sk's public half).
 * Returns the new object, or NULL when an argument is invalid (bad node ID,
 * serial or group, notBefore > expires) or memory ran out. */
json_t *rdv_fleet_cert_make(const uint8_t sk[RDV_SECRET_KEY_BYTES], const char *node_id,
                            const char *serial, int64_t not_before, int64_t expires,
                            const char *const *groups, size_t n_groups);

/* Decodes a fleet public key written as 64 hex digits or as standard
 * base64 (44 characters with padding, or 43 without) into out. Returns 0
 * or -1. */
int rdv_fleet_key_decode(const char *s, size_t len, uint8_t out[RDV_NODE_ID_BYTES]);

#endif
