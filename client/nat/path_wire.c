/* path_wire.c - the direct-path packet codec: PROBE, PROBE_ACK (BLAKE2b-128
 * MACs with per-direction keys) and DATA (the session's e2e packet behind
 * a 17-byte header). Formats and rules in path_wire.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <sodium.h>

#include "client/nat/path_wire.h"
#include "rendezvous/rendezvous.h"

/* Offsets shared by PROBE and PROBE_ACK. */
#define OFF_SID 1
#define OFF_TXID (OFF_SID + RDV__PATH_WIRE_SID_BYTES)   /* 17 */
#define OFF_FLAGS (OFF_TXID + RDV__PATH_WIRE_TXID_BYTES) /* 29 */
#define OFF_PROBE_MAC (OFF_FLAGS + 1)                /* 30 */
/* PROBE_ACK only. */
#define OFF_FAMILY (OFF_FLAGS + 1)                   /* 30 */
#define OFF_PORT (OFF_FAMILY + 1)                    /* 31 */
#define OFF_IP (OFF_PORT + 2)                        /* 33 */
#define OFF_ACK_MAC (OFF_IP + RDV__PATH_WIRE_IP_BYTES)   /* 49 */

_Static_assert(OFF_PROBE_MAC + RDV__PATH_WIRE_MAC_BYTES == RDV__PATH_WIRE_PROBE_BYTES, "probe size");
_Static_assert(OFF_ACK_MAC + RDV__PATH_WIRE_MAC_BYTES == RDV__PATH_WIRE_ACK_BYTES, "ack size");
_Static_assert(RDV__PATH_WIRE_DATA_HDR_BYTES == OFF_TXID, "data header = kind + sid");
_Static_assert(RDV__PATH_WIRE_DATA_OVERHEAD == 41, "data overhead");
_Static_assert(RDV__PATH_WIRE_SID_BYTES == RDV__E2E_AD_BYTES, "sid is the e2e AAD");
_Static_assert(RDV__PATH_WIRE_MAC_KEY_BYTES == RDV__E2E_KEY_BYTES, "MAC key from a direction key");
_Static_assert(RDV__PATH_WIRE_MAC_BYTES == 16, "crypto_verify_16");
_Static_assert(RDV__PATH_WIRE_MAC_BYTES >= crypto_generichash_BYTES_MIN &&
                   RDV__PATH_WIRE_MAC_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "BLAKE2b parameters");

void rdv__path_wire_mac_keys(const rdv__e2e *s, uint8_t tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES],
                         uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES])
{
    static const char ctx[] = RDV__PATH_WIRE_MAC_CONTEXT;
    crypto_generichash(tx_mac, RDV__PATH_WIRE_MAC_KEY_BYTES, (const unsigned char *)ctx,
                       sizeof(ctx) - 1, s->tx, sizeof(s->tx));
    crypto_generichash(rx_mac, RDV__PATH_WIRE_MAC_KEY_BYTES, (const unsigned char *)ctx,
                       sizeof(ctx) - 1, s->rx, sizeof(s->rx));
}

/* mac = BLAKE2b-128(key, buf[0..n)). */
static void mac(uint8_t out[RDV__PATH_WIRE_MAC_BYTES], const uint8_t *buf, size_t n,
                const uint8_t key[RDV__PATH_WIRE_MAC_KEY_BYTES])
{
    crypto_generichash(out, RDV__PATH_WIRE_MAC_BYTES, buf, n, key, RDV__PATH_WIRE_MAC_KEY_BYTES);
}

/* Constant-time check of the MAC at buf[n..n+16) over buf[0..n). */
static bool mac_ok(const uint8_t *buf, size_t n, const uint8_t key[RDV__PATH_WIRE_MAC_KEY_BYTES])
{
    uint8_t want[RDV__PATH_WIRE_MAC_BYTES];
    mac(want, buf, n, key);
    bool ok = crypto_verify_16(want, buf + n) == 0;
    sodium_memzero(want, sizeof(want));
    return ok;
}

/* kind | sid | txid | flags: the common head of PROBE and PROBE_ACK. */
static void put_head(uint8_t *out, uint8_t kind, const uint8_t *sid, const uint8_t *txid,
                     uint8_t flags)
{
    out[0] = kind;
    memcpy(out + OFF_SID, sid, RDV__PATH_WIRE_SID_BYTES);
    memcpy(out + OFF_TXID, txid, RDV__PATH_WIRE_TXID_BYTES);
    out[OFF_FLAGS] = flags & RDV__PATH_WIRE_F_KNOWN;
}

size_t rdv__path_wire_probe(uint8_t out[RDV__PATH_WIRE_PROBE_BYTES],
                        const uint8_t sid[RDV__PATH_WIRE_SID_BYTES],
                        const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES], uint8_t flags,
                        const uint8_t tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES])
{
    put_head(out, RDV__PATH_WIRE_PROBE, sid, txid, flags);
    mac(out + OFF_PROBE_MAC, out, OFF_PROBE_MAC, tx_mac);
    return RDV__PATH_WIRE_PROBE_BYTES;
}

/* Family byte, port and ip[16] of `sa` (IPv4-mapped IPv6 as family 4).
 * Returns false for anything but a usable AF_INET / AF_INET6 address. */
static bool encode_addr(const struct sockaddr *sa, socklen_t len, uint8_t *family,
                        uint16_t *port, uint8_t ip[RDV__PATH_WIRE_IP_BYTES])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(ip, 0, RDV__PATH_WIRE_IP_BYTES);
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return false;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof(s4));
        *family = RDV__PATH_WIRE_FAMILY_V4;
        *port = ntohs(s4.sin_port);
        memcpy(ip, &s4.sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof(s6));
        *port = ntohs(s6.sin6_port);
        if (memcmp(s6.sin6_addr.s6_addr, mapped, sizeof(mapped)) == 0) {
            *family = RDV__PATH_WIRE_FAMILY_V4;
            memcpy(ip, s6.sin6_addr.s6_addr + 12, 4);
        } else {
            *family = RDV__PATH_WIRE_FAMILY_V6;
            memcpy(ip, s6.sin6_addr.s6_addr, 16);
        }
    } else {
        return false;
    }
    return *port != 0;
}

size_t rdv__path_wire_ack(uint8_t out[RDV__PATH_WIRE_ACK_BYTES], const uint8_t sid[RDV__PATH_WIRE_SID_BYTES],
                      const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES], uint8_t flags,
                      const struct sockaddr *observed, socklen_t len,
                      const uint8_t tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES])
{
    uint8_t family = 0;
    uint16_t port = 0;
    uint8_t ip[RDV__PATH_WIRE_IP_BYTES];
    if (!encode_addr(observed, len, &family, &port, ip))
        return 0;
    put_head(out, RDV__PATH_WIRE_ACK, sid, txid, flags);
    out[OFF_FAMILY] = family;
    out[OFF_PORT] = (uint8_t)(port >> 8);
    out[OFF_PORT + 1] = (uint8_t)port;
    memcpy(out + OFF_IP, ip, RDV__PATH_WIRE_IP_BYTES);
    mac(out + OFF_ACK_MAC, out, OFF_ACK_MAC, tx_mac);
    return RDV__PATH_WIRE_ACK_BYTES;
}

int rdv__path_wire_kind(const uint8_t *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return 0;
    switch (buf[0]) {
    case RDV__PATH_WIRE_PROBE: return len >= RDV__PATH_WIRE_PROBE_BYTES ? RDV__PATH_WIRE_PROBE : 0;
    case RDV__PATH_WIRE_ACK: return len >= RDV__PATH_WIRE_ACK_BYTES ? RDV__PATH_WIRE_ACK : 0;
    case RDV__PATH_WIRE_DATA: return len >= RDV__PATH_WIRE_DATA_MIN_BYTES ? RDV__PATH_WIRE_DATA : 0;
    default: return 0;
    }
}

int rdv__path_wire_sid(const uint8_t *buf, size_t len, uint8_t sid[RDV__PATH_WIRE_SID_BYTES])
{
    if (rdv__path_wire_kind(buf, len) == 0)
        return RDV_ERR_FORMAT;
    memcpy(sid, buf + OFF_SID, RDV__PATH_WIRE_SID_BYTES);
    return 0;
}

static void read_head(const uint8_t *buf, rdv__path_wire_probe_t *out)
{
    out->kind = buf[0];
    memcpy(out->sid, buf + OFF_SID, RDV__PATH_WIRE_SID_BYTES);
    memcpy(out->txid, buf + OFF_TXID, RDV__PATH_WIRE_TXID_BYTES);
    out->flags = buf[OFF_FLAGS] & RDV__PATH_WIRE_F_KNOWN;
}

int rdv__path_wire_parse_probe(const uint8_t *buf, size_t len,
                           const uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES],
                           rdv__path_wire_probe_t *out)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len != RDV__PATH_WIRE_PROBE_BYTES || buf[0] != RDV__PATH_WIRE_PROBE)
        return RDV_ERR_FORMAT;
    if (!mac_ok(buf, OFF_PROBE_MAC, rx_mac))
        return RDV_ERR_DECRYPT;
    read_head(buf, out);
    return 0;
}

/* The observed address of a verified ack into *out. */
static int decode_observed(const uint8_t *buf, rdv__path_wire_probe_t *out)
{
    uint16_t port = (uint16_t)(buf[OFF_PORT] << 8 | buf[OFF_PORT + 1]);
    if (port == 0)
        return RDV_ERR_FORMAT;
    if (buf[OFF_FAMILY] == RDV__PATH_WIRE_FAMILY_V4) {
        static const uint8_t zero[RDV__PATH_WIRE_IP_BYTES - 4];
        if (memcmp(buf + OFF_IP + 4, zero, sizeof(zero)) != 0)
            return RDV_ERR_FORMAT;
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        s4.sin_port = htons(port);
        memcpy(&s4.sin_addr, buf + OFF_IP, 4);
        memcpy(&out->observed, &s4, sizeof(s4));
        out->observed_len = (socklen_t)sizeof(s4);
        return 0;
    }
    if (buf[OFF_FAMILY] == RDV__PATH_WIRE_FAMILY_V6) {
        struct sockaddr_in6 s6;
        memset(&s6, 0, sizeof(s6));
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons(port);
        memcpy(s6.sin6_addr.s6_addr, buf + OFF_IP, 16);
        memcpy(&out->observed, &s6, sizeof(s6));
        out->observed_len = (socklen_t)sizeof(s6);
        return 0;
    }
    return RDV_ERR_FORMAT;
}

int rdv__path_wire_parse_ack(const uint8_t *buf, size_t len,
                         const uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES],
                         rdv__path_wire_probe_t *out)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len != RDV__PATH_WIRE_ACK_BYTES || buf[0] != RDV__PATH_WIRE_ACK)
        return RDV_ERR_FORMAT;
    if (!mac_ok(buf, OFF_ACK_MAC, rx_mac))
        return RDV_ERR_DECRYPT;
    int rc = decode_observed(buf, out);
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    read_head(buf, out);
    return 0;
}

int64_t rdv__path_wire_data_seal(rdv__e2e *s, const uint8_t sid[RDV__PATH_WIRE_SID_BYTES],
                             const uint8_t *pt, size_t len, uint8_t *out)
{
    if (memcmp(sid, s->ad, RDV__PATH_WIRE_SID_BYTES) != 0)
        return RDV_ERR_INVALID;
    int64_t n = rdv__e2e_seal(s, pt, len, out + RDV__PATH_WIRE_DATA_HDR_BYTES);
    if (n < 0)
        return n;
    out[0] = RDV__PATH_WIRE_DATA;
    memcpy(out + OFF_SID, sid, RDV__PATH_WIRE_SID_BYTES);
    return n + RDV__PATH_WIRE_DATA_HDR_BYTES;
}

int64_t rdv__path_wire_data_open(rdv__e2e *s, const uint8_t *pkt, size_t len, uint8_t *out)
{
    if (pkt == NULL || len < RDV__PATH_WIRE_DATA_MIN_BYTES || pkt[0] != RDV__PATH_WIRE_DATA)
        return RDV_ERR_FORMAT;
    if (!s->ready)
        return RDV_ERR_STATE;
    if (memcmp(pkt + OFF_SID, s->ad, RDV__PATH_WIRE_SID_BYTES) != 0)
        return RDV_ERR_DECRYPT;
    return rdv__e2e_open(s, pkt + RDV__PATH_WIRE_DATA_HDR_BYTES, len - RDV__PATH_WIRE_DATA_HDR_BYTES,
                         out);
}
