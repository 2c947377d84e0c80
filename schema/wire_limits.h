/* wire_limits.h - named sizes and limits of wire protocol v1 (schema/PROTOCOL.md).
 *
 * Shared by the server and the client library. Every size that appears on
 * the wire has a name here; code never uses the bare number.
 */
#ifndef RDV_SCHEMA_WIRE_LIMITS_H
#define RDV_SCHEMA_WIRE_LIMITS_H

#define RDV_PROTOCOL_VERSION 1
#define RDV_WS_PATH "/v1"
#define RDV_WS_SUBPROTOCOL "rendezvous.v1"
#define RDV_DOMAIN_PREFIX "rendezvous.v1/"

/* Identities and signatures (libsodium's crypto_sign_* sizes). */
#define RDV_NODE_ID_BYTES 32            /* Ed25519 public key */
#define RDV_NODE_ID_HEXLEN 64           /* lowercase hex of the key */
#define RDV_SECRET_KEY_BYTES 64         /* libsodium Ed25519 secret key */
#define RDV_SEED_BYTES 32               /* Ed25519 seed */
#define RDV_SIG_BYTES 64
#define RDV_SIG_HEXLEN 128
#define RDV_NONCE_BYTES 32              /* challenge nonce */
#define RDV_NONCE_HEXLEN 64
#define RDV_KEY32_HEXLEN 64             /* wgPublicKey, e2eKey: 32 bytes hex */
#define RDV_UUID_BYTES 16
#define RDV_UUID_STRLEN 36              /* 8-4-4-4-12 lowercase hex */

/* Message limits. */
#define RDV_MAX_MESSAGE_BYTES 65536     /* default max frame / JSON text */
#define RDV_MAX_DEPTH 16                /* max nesting of arrays/objects */
#define RDV_MAX_IDS_PER_REQUEST 64      /* lookup / watch / unwatch nodeIDs */
#define RDV_MAX_SERVER_NAME 253         /* challenge.server, hello.server */
#define RDV_MAX_TEXT 512                /* error.message, relayClose.reason */
#define RDV_MAX_REQUEST_ID 64           /* requestID strings */
#define RDV_MAX_IP_TEXT 45              /* longest textual IPv6 address */

/* Freshness of signed messages (PROTOCOL.md "Freshness"). */
#define RDV_FRESH_PAST_MS 120000        /* receivers accept age <= 120 s */
#define RDV_FRESH_FUTURE_MS 30000       /* and at most 30 s in the future */
#define RDV_INGRESS_SKEW_MS 30000       /* the server accepts |now-ts| <= 30 s */

/* Binary relay frames: 1 byte kind, 16 bytes session UUID, payload. */
#define RDV_RELAY_FRAME_KIND_DATA 0x01
#define RDV_RELAY_FRAME_HEADER 17

#endif
