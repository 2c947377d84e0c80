/* sign.h - Ed25519 signatures over domain-tagged RFC 8785 canonical JSON.
 *
 * signing input = "rendezvous.v1/" type-name || 0x00 || JCS(body minus
 * "signature")   (PROTOCOL.md "Signatures"). The tag makes a signature of
 * one type useless as another; `timestamp` and the freshness window make it
 * useless much later.
 */
#ifndef RDV_SCHEMA_SIGN_H
#define RDV_SCHEMA_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "schema/wire_limits.h"
#include "schema/message.h"

/* Builds the exact bytes that are signed for `body` of `type` (the
 * "signature" member, if present, is left out). Returns 0 and a malloc'd
 * buffer in *out (length *len; caller frees), or -RDV_EC_* on failure. */
int rdv_sig_input(rdv_msg_type type, const json_t *body, uint8_t **out,
                  size_t *len) __attribute__((warn_unused_result));

/* As rdv_sig_input, for a signed object named `tag` that is not a message
 * type (e.g. "fleetCert"): "rendezvous.v1/" tag 0x00 JCS(body minus
 * "signature"). tag: 1..32 bytes of [A-Za-z]. Returns 0 or -RDV_EC_*. */
int rdv_sig_input_tag(const char *tag, const json_t *body, uint8_t **out,
                      size_t *len) __attribute__((warn_unused_result));

/* Signs `body` of a signed `type` with the libsodium secret key `sk` and
 * sets body.signature to the lowercase hex signature (replacing any old
 * one). Returns 0 or -RDV_EC_*. */
int rdv_sig_sign(rdv_msg_type type, json_t *body,
                 const uint8_t sk[RDV_SECRET_KEY_BYTES])
    __attribute__((warn_unused_result));

/* The parts of a verification, for a caller that runs the Ed25519 check
 * itself (e.g. on another thread): body.signature's bytes into sig and
 * the signing input into *input (malloc'd, length *len; caller frees).
 * Returns 0, or the -RDV_EC_* rdv_sig_verify would return before checking
 * (-RDV_EC_BAD_SIGNATURE for a missing or malformed signature). */
int rdv_sig_prepare(rdv_msg_type type, const json_t *body, uint8_t sig[RDV_SIG_BYTES],
                    uint8_t **input, size_t *len) __attribute__((warn_unused_result));

/* The public key named by body[key_field] (a node ID, e.g. "fromNodeID"
 * or "nodeID") into pk. Returns 0, or -RDV_EC_BAD_SIGNATURE when it is
 * missing or not a node ID. */
int rdv_sig_key_from(const json_t *body, const char *key_field,
                     uint8_t pk[RDV_NODE_ID_BYTES]) __attribute__((warn_unused_result));

/* Verifies body.signature against public key `pk`. Returns 0 when valid,
 * -RDV_EC_BAD_SIGNATURE when not (or missing/malformed), another -RDV_EC_*
 * when the body cannot be canonicalised. Does not check freshness. */
int rdv_sig_verify(rdv_msg_type type, const json_t *body,
                   const uint8_t pk[RDV_NODE_ID_BYTES])
    __attribute__((warn_unused_result));

/* Verifies against the key named by body[key_field] (a node ID, e.g.
 * "fromNodeID" or "nodeID"). Returns as rdv_sig_verify. */
int rdv_sig_verify_from(rdv_msg_type type, const json_t *body,
                        const char *key_field)
    __attribute__((warn_unused_result));

/* Freshness: returns true when now - past_ms <= ts <= now + future_ms. */
bool rdv_ts_fresh(int64_t ts, int64_t now, int64_t past_ms, int64_t future_ms);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t rdv_now_ms(void);

#endif
