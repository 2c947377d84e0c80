/* e2e.c - end-to-end encryption of session data: ephemeral X25519 key
 * agreement (crypto_kx), ChaCha20-Poly1305 IETF with 64-bit counter
 * nonces per direction, the session ID as associated data, and a sliding
 * replay window on receive. The packet format and the rules are in e2e.h
 * and PROTOCOL.md 9.4.
 */
#include <string.h>

#include "client/e2e.h"
#include "rendezvous/rendezvous.h"

_Static_assert(RDV__E2E_WINDOW % 64 == 0, "window is whole 64-bit words");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "IETF nonce");
_Static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == RDV__E2E_KEY_BYTES,
               "kx session keys are AEAD keys");

int rdv__e2e_keypair_new(rdv__e2e_keypair *kp)
{
    if (sodium_init() < 0)
        return RDV_ERR_CRYPTO;
    if (crypto_kx_keypair(kp->pk, kp->sk) != 0)
        return RDV_ERR_CRYPTO;
    return 0;
}

void rdv__e2e_keypair_wipe(rdv__e2e_keypair *kp)
{
    sodium_memzero(kp, sizeof(*kp));
}

int rdv__e2e_init(rdv__e2e *s, bool initiator, const rdv__e2e_keypair *mine,
                  const uint8_t peer_pk[RDV__E2E_PK_BYTES],
                  const uint8_t session_id[RDV__E2E_AD_BYTES])
{
    rdv__e2e_wipe(s);
    /* crypto_kx_*_session_keys fail (-1) when the X25519 result is all
     * zeros, i.e. the peer sent a low-order point. */
    int rc = initiator
                 ? crypto_kx_client_session_keys(s->rx, s->tx, mine->pk, mine->sk, peer_pk)
                 : crypto_kx_server_session_keys(s->rx, s->tx, mine->pk, mine->sk, peer_pk);
    if (rc != 0) {
        rdv__e2e_wipe(s);
        return RDV_ERR_CRYPTO;
    }
    memcpy(s->ad, session_id, RDV__E2E_AD_BYTES);
    s->ready = true;
    return 0;
}

void rdv__e2e_wipe(rdv__e2e *s)
{
    sodium_memzero(s, sizeof(*s));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t rdv__e2e_packet_counter(const uint8_t *pkt, size_t len)
{
    return len >= RDV__E2E_COUNTER_BYTES ? get_le64(pkt) : 0;
}

/* nonce = 0x00000000 || LE64(counter) (RFC 8439 2.8 leaves the layout to
 * the protocol; this is WireGuard's). */
static void make_nonce(uint8_t nonce[12], uint64_t counter)
{
    memset(nonce, 0, 4);
    put_le64(nonce + 4, counter);
}

int64_t rdv__e2e_seal(rdv__e2e *s, const uint8_t *pt, size_t len, uint8_t *out)
{
    if (!s->ready)
        return RDV_ERR_STATE;
    if (s->tx_next == UINT64_MAX)
        return RDV_ERR_LIMIT; /* never reuse a nonce: the session must end */
    uint64_t n = s->tx_next++;
    uint8_t nonce[12];
    make_nonce(nonce, n);
    put_le64(out, n);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out + RDV__E2E_COUNTER_BYTES, &clen, pt, len,
                                              s->ad, sizeof(s->ad), NULL, nonce, s->tx);
    return (int64_t)(RDV__E2E_COUNTER_BYTES + clen);
}

static bool window_has(const rdv__e2e *s, uint64_t n)
{
    uint64_t bit = n % RDV__E2E_WINDOW;
    return (s->rx_bitmap[bit / 64] >> (bit % 64)) & 1u;
}

static void window_set(rdv__e2e *s, uint64_t n)
{
    uint64_t bit = n % RDV__E2E_WINDOW;
    s->rx_bitmap[bit / 64] |= (uint64_t)1 << (bit % 64);
}

static void window_clear(rdv__e2e *s, uint64_t n)
{
    uint64_t bit = n % RDV__E2E_WINDOW;
    s->rx_bitmap[bit / 64] &= ~((uint64_t)1 << (bit % 64));
}

/* True when counter n may still be accepted: newer than everything, or
 * inside the window and not seen. */
static bool window_fresh(const rdv__e2e *s, uint64_t n)
{
    if (n == UINT64_MAX)
        return false; /* never sent (see seal) */
    if (n >= s->rx_top)
        return true;
    if (s->rx_top - n > RDV__E2E_WINDOW)
        return false; /* older than the window */
    return !window_has(s, n);
}

/* Records n as received (after its tag verified). */
static void window_accept(rdv__e2e *s, uint64_t n)
{
    if (n >= s->rx_top) {
        uint64_t advance = n + 1 - s->rx_top;
        if (advance >= RDV__E2E_WINDOW) {
            memset(s->rx_bitmap, 0, sizeof(s->rx_bitmap));
        } else {
            /* The slots of counters rx_top..n held counters that now fall
             * out of the window. */
            for (uint64_t k = s->rx_top; k <= n; k++)
                window_clear(s, k);
        }
        s->rx_top = n + 1;
    }
    window_set(s, n);
}

int64_t rdv__e2e_open(rdv__e2e *s, const uint8_t *pkt, size_t len, uint8_t *out)
{
    if (!s->ready)
        return RDV_ERR_STATE;
    if (len < RDV__E2E_OVERHEAD)
        return RDV_ERR_FORMAT;
    uint64_t n = get_le64(pkt);
    if (!window_fresh(s, n))
        return RDV_ERR_DUPLICATE;
    uint8_t nonce[12];
    make_nonce(nonce, n);
    unsigned long long plen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, pkt + RDV__E2E_COUNTER_BYTES,
                                                  len - RDV__E2E_COUNTER_BYTES, s->ad,
                                                  sizeof(s->ad), nonce, s->rx) != 0)
        return RDV_ERR_DECRYPT;
    window_accept(s, n);
    return (int64_t)plen;
}
