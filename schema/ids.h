/* ids.h - node IDs (lowercase hex Ed25519 public keys), session IDs
 * (UUIDs) and hex helpers. Pure functions; never read past the given len. */
#ifndef RDV_SCHEMA_IDS_H
#define RDV_SCHEMA_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/wire_limits.h"

/* True when s[0..len) is exactly RDV_NODE_ID_HEXLEN lowercase hex digits. */
bool rdv_node_id_valid(const char *s, size_t len);

/* Writes the node ID of public key pk into out (NUL-terminated). */
void rdv_node_id_from_pk(const uint8_t pk[RDV_NODE_ID_BYTES],
                         char out[RDV_NODE_ID_HEXLEN + 1]);

/* Decodes a valid node ID into its public key. Returns 0, or -1 when
 * `id` is not a valid node ID. */
int rdv_node_id_to_pk(const char *id, uint8_t pk[RDV_NODE_ID_BYTES])
    __attribute__((warn_unused_result));

/* True when s[0..len) is a UUID in canonical lowercase 8-4-4-4-12 form
 * (any version). */
bool rdv_uuid_valid(const char *s, size_t len);

/* Writes a new random (version 4) UUID into out (NUL-terminated). */
void rdv_uuid_v4(char out[RDV_UUID_STRLEN + 1]);

/* Converts between the text form and the 16 bytes used in binary relay
 * frames. Return 0, or -1 on invalid input. */
int rdv_uuid_to_bytes(const char *s, uint8_t out[RDV_UUID_BYTES])
    __attribute__((warn_unused_result));
void rdv_uuid_from_bytes(const uint8_t in[RDV_UUID_BYTES],
                         char out[RDV_UUID_STRLEN + 1]);

/* True when s[0..len) is exactly `hexlen` lowercase hex digits. */
bool rdv_hex_valid(const char *s, size_t len, size_t hexlen);

#endif
