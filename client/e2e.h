/* e2e.h - end-to-end encryption of relayed (and later direct) data between
 * two nodes (internal; never installed). Pure functions of their inputs
 * plus libsodium; no I/O, no locks (the caller serialises use of one
 * rdv__e2e).
 *
 * Key agreement: each side makes an ephemeral X25519 keypair per session
 * (crypto_kx_keypair); the public key travels as `e2eKey` in the signed
 * relayOpen / relayReady (or offer / answer), so it is bound to the node
 * identities by their Ed25519 signatures. The sender of relayOpen (offer)
 * is the crypto_kx "client", the other side the "server"; each side gets
 * one key per direction (crypto_kx_*_session_keys: BLAKE2b of the X25519
 * shared secret and both public keys).
 *
 * Packet (PROTOCOL.md 9.4), the relayData payload:
 *
 *     offset 0   8 bytes  counter, unsigned 64-bit little endian
 *     offset 8   n bytes  ciphertext (n = plaintext length)
 *     offset 8+n 16 bytes Poly1305 tag
 *
 * AEAD: ChaCha20-Poly1305 IETF (RFC 8439) with the direction's key,
 * nonce = 4 zero bytes || counter (LE64), associated data = the 16 bytes
 * of the session ID. Counters start at 0 and never repeat for a key; a
 * sender stops at 2^64-1 (RDV_ERR_LIMIT). The receiver keeps a sliding
 * window of RDV__E2E_WINDOW counters (RFC 6479 style bitmap): a counter
 * older than the window or already seen is dropped (RDV_ERR_DUPLICATE);
 * the window moves only after the tag verified (so forged packets cannot
 * shift it).
 */
#ifndef RDV_CLIENT_E2E_H
#define RDV_CLIENT_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define RDV__E2E_PK_BYTES crypto_kx_PUBLICKEYBYTES        /* 32 */
#define RDV__E2E_SK_BYTES crypto_kx_SECRETKEYBYTES        /* 32 */
#define RDV__E2E_KEY_BYTES crypto_kx_SESSIONKEYBYTES      /* 32 */
#define RDV__E2E_COUNTER_BYTES 8
#define RDV__E2E_TAG_BYTES crypto_aead_chacha20poly1305_ietf_ABYTES /* 16 */
#define RDV__E2E_OVERHEAD (RDV__E2E_COUNTER_BYTES + RDV__E2E_TAG_BYTES) /* 24 */
#define RDV__E2E_AD_BYTES 16                              /* session UUID */
#define RDV__E2E_WINDOW 1024                              /* replay window */
#define RDV__E2E_WINDOW_WORDS (RDV__E2E_WINDOW / 64)

/* An ephemeral X25519 keypair. Wipe with rdv__e2e_keypair_wipe(). */
typedef struct rdv__e2e_keypair {
    uint8_t pk[RDV__E2E_PK_BYTES];
    uint8_t sk[RDV__E2E_SK_BYTES];
} rdv__e2e_keypair;

/* The state of one session: keys, send counter, receive window. */
typedef struct rdv__e2e {
    uint8_t tx[RDV__E2E_KEY_BYTES];
    uint8_t rx[RDV__E2E_KEY_BYTES];
    uint8_t ad[RDV__E2E_AD_BYTES];
    uint64_t tx_next;                       /* next counter to send */
    uint64_t rx_top;                        /* highest accepted counter + 1;
                                             * 0 = nothing accepted yet */
    uint64_t rx_bitmap[RDV__E2E_WINDOW_WORDS]; /* bit (n % WINDOW): seen */
    bool ready;
} rdv__e2e;

/* Makes a fresh random keypair. Returns 0 or RDV_ERR_CRYPTO. */
int rdv__e2e_keypair_new(rdv__e2e_keypair *kp)
    __attribute__((warn_unused_result));

/* Overwrites the keypair with zeros. */
void rdv__e2e_keypair_wipe(rdv__e2e_keypair *kp);

/* Derives the session keys: `initiator` is true for the sender of
 * relayOpen / offer. `mine` is our keypair, `peer_pk` the peer's e2eKey,
 * `session_id` the 16 bytes of the session UUID (the AAD). Resets the
 * counters and the window. Returns 0, or RDV_ERR_CRYPTO when the peer's
 * key is unusable (a low-order point: the shared secret would be known). */
int rdv__e2e_init(rdv__e2e *s, bool initiator, const rdv__e2e_keypair *mine,
                  const uint8_t peer_pk[RDV__E2E_PK_BYTES],
                  const uint8_t session_id[RDV__E2E_AD_BYTES])
    __attribute__((warn_unused_result));

/* Encrypts pt[0..len) into out, which must hold len + RDV__E2E_OVERHEAD
 * bytes (out may not overlap pt). Uses and advances the send counter.
 * Returns the packet length (> 0), RDV_ERR_STATE before init, or
 * RDV_ERR_LIMIT when the counter is exhausted. */
int64_t rdv__e2e_seal(rdv__e2e *s, const uint8_t *pt, size_t len, uint8_t *out);

/* Decrypts and authenticates pkt[0..len) into out (len -
 * RDV__E2E_OVERHEAD bytes; may not overlap). Returns the plaintext
 * length (>= 0), RDV_ERR_FORMAT (shorter than the overhead),
 * RDV_ERR_DUPLICATE (counter seen or older than the window),
 * RDV_ERR_DECRYPT (tag does not verify: tampered, wrong key or AAD), or
 * RDV_ERR_STATE before init. Only a packet that verified moves the window. */
int64_t rdv__e2e_open(rdv__e2e *s, const uint8_t *pkt, size_t len, uint8_t *out);

/* The counter of a packet (its first 8 bytes, little endian); 0 for a
 * packet shorter than that. For tests and diagnostics. */
uint64_t rdv__e2e_packet_counter(const uint8_t *pkt, size_t len);

/* Overwrites keys and state with zeros. */
void rdv__e2e_wipe(rdv__e2e *s);

#endif
