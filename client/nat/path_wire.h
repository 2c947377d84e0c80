/* path_wire.h - the direct-path packet codec (internal; never installed):
 * connectivity probes, their acknowledgements and encrypted data sent
 * straight between two nodes over UDP (PROTOCOL.md 14). Pure functions:
 * no I/O, no allocation, never read past the given length. libsodium must
 * be initialised (rdv__e2e_keypair_new does it).
 *
 * All multi-byte integers are big endian unless said.
 *
 *   PROBE      0xD1 | sid[16] | txid[12] | flags[1] | mac[16]          46 bytes
 *   PROBE_ACK  0xD2 | sid[16] | txid[12] | flags[1] | family[1] | port[2]
 *                   | ip[16] | mac[16]                                 65 bytes
 *   DATA       0xD3 | sid[16] | e2e packet (LE64 counter | ciphertext | tag16)
 *                                                                  >= 41 bytes
 *
 * - sid: the 16 bytes of the session UUID.
 * - flags: bit0 the sender is the session's initiator (offerer), bit1
 *   "nominate" (the sender uses this pair for data); other bits are sent
 *   as 0 and ignored (masked off) on receive.
 * - PROBE_ACK echoes the probe's txid and carries the probe's source
 *   address as the acker saw it (family 4 or 6; IPv4 in the first 4 bytes
 *   of ip, the other 12 zero): a peer-reflexive address for the prober.
 * - mac: BLAKE2b-128 (crypto_generichash, 16-byte output) keyed with the
 *   sender's 32-byte MAC key over every byte before the mac.
 * - MAC keys, one per direction: crypto_generichash(32, "rendezvous.v1/probe",
 *   key = the e2e direction key). The sender MACs with its tx MAC key, the
 *   receiver verifies with its rx MAC key, so a node never accepts its own
 *   probe reflected back and nobody without the session keys can forge a
 *   probe or an ack.
 * - DATA: the session's rdv__e2e packet (e2e.h; the same counters and
 *   replay window as the relay path), AAD = sid.
 *
 * The first byte separates these from STUN (whose first two bits are 0,
 * RFC 8489 5) on the one UDP socket.
 */
#ifndef RDV_CLIENT_DWIRE_H
#define RDV_CLIENT_DWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/e2e.h"

#define RDV__PATH_WIRE_PROBE 0xD1
#define RDV__PATH_WIRE_ACK 0xD2
#define RDV__PATH_WIRE_DATA 0xD3

#define RDV__PATH_WIRE_SID_BYTES 16
#define RDV__PATH_WIRE_TXID_BYTES 12
#define RDV__PATH_WIRE_MAC_BYTES 16
#define RDV__PATH_WIRE_MAC_KEY_BYTES 32
#define RDV__PATH_WIRE_IP_BYTES 16
#define RDV__PATH_WIRE_PROBE_BYTES 46      /* 1 + 16 + 12 + 1 + 16 */
#define RDV__PATH_WIRE_ACK_BYTES 65        /* 1 + 16 + 12 + 1 + 1 + 2 + 16 + 16 */
#define RDV__PATH_WIRE_DATA_HDR_BYTES 17   /* 1 + 16 */
#define RDV__PATH_WIRE_DATA_OVERHEAD (RDV__PATH_WIRE_DATA_HDR_BYTES + RDV__E2E_OVERHEAD) /* 41 */
#define RDV__PATH_WIRE_DATA_MIN_BYTES RDV__PATH_WIRE_DATA_OVERHEAD

#define RDV__PATH_WIRE_FAMILY_V4 4
#define RDV__PATH_WIRE_FAMILY_V6 6

#define RDV__PATH_WIRE_F_INITIATOR 0x01
#define RDV__PATH_WIRE_F_NOMINATE 0x02
#define RDV__PATH_WIRE_F_CLOSE 0x04     /* the sender ended the session (PROBE) */
#define RDV__PATH_WIRE_F_KNOWN (RDV__PATH_WIRE_F_INITIATOR | RDV__PATH_WIRE_F_NOMINATE | RDV__PATH_WIRE_F_CLOSE)

/* The MAC key's derivation message (without NUL). */
#define RDV__PATH_WIRE_MAC_CONTEXT "rendezvous.v1/probe"

/* A parsed PROBE or PROBE_ACK. */
typedef struct rdv__path_wire_probe_t {
    int kind;                           /* RDV__PATH_WIRE_PROBE / _ACK */
    uint8_t sid[RDV__PATH_WIRE_SID_BYTES];
    uint8_t txid[RDV__PATH_WIRE_TXID_BYTES];
    uint8_t flags;                      /* RDV__PATH_WIRE_F_* (unknown bits off) */
    struct sockaddr_storage observed;   /* ACK: the prober's address as seen */
    socklen_t observed_len;             /* 0 for a PROBE */
} rdv__path_wire_probe_t;

/* Derives the per-direction MAC keys of session `s` (its tx and rx e2e
 * keys): tx_mac authenticates what we send, rx_mac what the peer sends
 * (equal to the peer's tx_mac). */
void rdv__path_wire_mac_keys(const rdv__e2e *s, uint8_t tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES],
                         uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES]);

/* Writes a PROBE into out. flags bits other than RDV__PATH_WIRE_F_KNOWN are
 * sent as 0. Returns RDV__PATH_WIRE_PROBE_BYTES. */
size_t rdv__path_wire_probe(uint8_t out[RDV__PATH_WIRE_PROBE_BYTES],
                        const uint8_t sid[RDV__PATH_WIRE_SID_BYTES],
                        const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES], uint8_t flags,
                        const uint8_t tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES]);

/* Writes a PROBE_ACK into out answering the probe `txid` that came from
 * `observed` (AF_INET / AF_INET6, len bytes; IPv4-mapped IPv6 is sent as
 * family 4). Returns RDV__PATH_WIRE_ACK_BYTES, or 0 (nothing valid written)
 * for a NULL, short or non-IP observed address or port 0. */
size_t rdv__path_wire_ack(uint8_t out[RDV__PATH_WIRE_ACK_BYTES], const uint8_t sid[RDV__PATH_WIRE_SID_BYTES],
                      const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES], uint8_t flags,
                      const struct sockaddr *observed, socklen_t len,
                      const uint8_t tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES]);

/* The kind of a received datagram: RDV__PATH_WIRE_PROBE / _ACK / _DATA when
 * its first byte says so and len is at least that kind's size (46, 65,
 * 41), else 0 (STUN, garbage, too short). Reads at most buf[0]. */
int rdv__path_wire_kind(const uint8_t *buf, size_t len);

/* Copies the sid of a direct-path packet (any kind rdv__path_wire_kind
 * accepts) into sid, to find the session before verifying. Returns 0 or
 * RDV_ERR_FORMAT. */
int rdv__path_wire_sid(const uint8_t *buf, size_t len, uint8_t sid[RDV__PATH_WIRE_SID_BYTES]);

/* Parses and authenticates a PROBE of exactly RDV__PATH_WIRE_PROBE_BYTES with
 * the peer's MAC key `rx_mac`. Returns 0 with *out filled,
 * RDV_ERR_FORMAT (wrong length or kind), RDV_ERR_DECRYPT (the MAC does
 * not verify; constant-time compare). *out is zeroed on error. */
int rdv__path_wire_parse_probe(const uint8_t *buf, size_t len,
                           const uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES],
                           rdv__path_wire_probe_t *out) __attribute__((warn_unused_result));

/* Parses and authenticates a PROBE_ACK of exactly RDV__PATH_WIRE_ACK_BYTES.
 * Returns 0 with *out filled (observed = the address in the ack),
 * RDV_ERR_FORMAT (wrong length or kind; after the MAC verified: a family
 * other than 4 / 6, non-zero padding after an IPv4 address, port 0),
 * RDV_ERR_DECRYPT (MAC mismatch). *out is zeroed on error. */
int rdv__path_wire_parse_ack(const uint8_t *buf, size_t len,
                         const uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES],
                         rdv__path_wire_probe_t *out) __attribute__((warn_unused_result));

/* Encrypts pt[0..len) as a DATA packet of session s into out, which holds
 * len + RDV__PATH_WIRE_DATA_OVERHEAD bytes (no overlap with pt). `sid` must
 * equal s->ad (the session's AAD). Uses and advances the e2e send counter.
 * Returns the packet length, RDV_ERR_INVALID (sid differs), or an error
 * of rdv__e2e_seal (RDV_ERR_STATE, RDV_ERR_LIMIT). */
int64_t rdv__path_wire_data_seal(rdv__e2e *s, const uint8_t sid[RDV__PATH_WIRE_SID_BYTES],
                             const uint8_t *pt, size_t len, uint8_t *out);

/* Decrypts the DATA packet pkt[0..len) of session s into out (len -
 * RDV__PATH_WIRE_DATA_OVERHEAD bytes; no overlap). Returns the plaintext
 * length, RDV_ERR_FORMAT (shorter than 41 bytes or not DATA),
 * RDV_ERR_DECRYPT (the packet's sid is not s->ad: another session; or
 * the tag does not verify), RDV_ERR_DUPLICATE (replay), RDV_ERR_STATE
 * (s not initialised). Only a verified packet moves the replay window. */
int64_t rdv__path_wire_data_open(rdv__e2e *s, const uint8_t *pkt, size_t len, uint8_t *out);

#endif
