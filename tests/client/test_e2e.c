/* test_e2e.c - client_e2e: unit tests of the end-to-end encryption of
 * session data (client/e2e.c) without a server: key agreement between an
 * initiator and a responder, the documented packet layout (decrypted here
 * with libsodium directly), counters, replay-window edges, wrong key, AAD
 * (session ID) mismatch, tampering, counter exhaustion, wiping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/e2e.h"
#include "rendezvous/rendezvous.h"

static const uint8_t SID[16] = {0x6f, 0x96, 0x19, 0xff, 0x8b, 0x86, 0x4d, 0x01,
                                0xb4, 0x2d, 0x00, 0xcf, 0x4f, 0xc9, 0x64, 0xff};

/* A connected pair: a = initiator (relayOpen sender), b = responder. */
static void pair(rdv__e2e *a, rdv__e2e *b)
{
    rdv__e2e_keypair ka, kb;
    assert_int_equal(rdv__e2e_keypair_new(&ka), 0);
    assert_int_equal(rdv__e2e_keypair_new(&kb), 0);
    assert_int_equal(rdv__e2e_init(a, true, &ka, kb.pk, SID), 0);
    assert_int_equal(rdv__e2e_init(b, false, &kb, ka.pk, SID), 0);
    rdv__e2e_keypair_wipe(&ka);
    rdv__e2e_keypair_wipe(&kb);
}

/* Seals a packet whose counter is forced to n. */
static size_t seal_at(rdv__e2e *s, uint64_t n, const char *msg, uint8_t *out)
{
    s->tx_next = n;
    int64_t len = rdv__e2e_seal(s, (const uint8_t *)msg, strlen(msg), out);
    assert_true(len > 0);
    return (size_t)len;
}

static int64_t open_pkt(rdv__e2e *s, const uint8_t *pkt, size_t len)
{
    uint8_t out[256];
    return rdv__e2e_open(s, pkt, len, out);
}

static void test_roundtrip_and_format(void **state)
{
    (void)state;
    rdv__e2e a, b;
    pair(&a, &b);
    const char *msg = "secret marker 1234";
    uint8_t pkt[128], out[128];
    int64_t len = rdv__e2e_seal(&a, (const uint8_t *)msg, strlen(msg), pkt);
    assert_int_equal(len, (int64_t)strlen(msg) + RDV__E2E_OVERHEAD);
    assert_int_equal(RDV__E2E_OVERHEAD, RDV_RELAY_OVERHEAD);
    assert_int_equal(rdv__e2e_packet_counter(pkt, (size_t)len), 0);
    assert_null(memmem(pkt, (size_t)len, msg, strlen(msg)));
    /* The documented layout, decrypted with libsodium directly:
     * nonce = 0^4 || LE64(counter), AAD = session bytes, key = b's rx. */
    uint8_t nonce[12] = {0};
    memcpy(nonce + 4, pkt, 8);
    unsigned long long plen;
    assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(
                         out, &plen, NULL, pkt + 8, (unsigned long long)len - 8, SID,
                         sizeof(SID), nonce, b.rx),
                     0);
    assert_int_equal(plen, strlen(msg));
    assert_memory_equal(out, msg, plen);
    /* And through the library, both directions. */
    assert_int_equal(rdv__e2e_open(&b, pkt, (size_t)len, out), (int64_t)strlen(msg));
    assert_memory_equal(out, msg, strlen(msg));
    len = rdv__e2e_seal(&b, (const uint8_t *)"back", 4, pkt);
    assert_int_equal(rdv__e2e_open(&a, pkt, (size_t)len, out), 4);
    assert_memory_equal(out, "back", 4);
    /* Keys differ per direction. */
    assert_memory_equal(a.tx, b.rx, 32);
    assert_memory_equal(a.rx, b.tx, 32);
    assert_memory_not_equal(a.tx, a.rx, 32);
    /* Empty datagrams are fine. */
    len = rdv__e2e_seal(&a, NULL, 0, pkt);
    assert_int_equal(len, RDV__E2E_OVERHEAD);
    assert_int_equal(rdv__e2e_open(&b, pkt, (size_t)len, out), 0);
    rdv__e2e_wipe(&a);
    rdv__e2e_wipe(&b);
}

static void test_counters(void **state)
{
    (void)state;
    rdv__e2e a, b;
    pair(&a, &b);
    uint8_t pkt[64];
    for (uint64_t i = 0; i < 5; i++) {
        int64_t len = rdv__e2e_seal(&a, (const uint8_t *)"x", 1, pkt);
        assert_int_equal(rdv__e2e_packet_counter(pkt, (size_t)len), i);
        assert_int_equal(open_pkt(&b, pkt, (size_t)len), 1);
    }
    assert_int_equal(a.tx_next, 5);
    assert_int_equal(b.rx_top, 5);
    /* Two packets with the same plaintext differ (distinct nonces). */
    uint8_t p1[64], p2[64];
    rdv__e2e_seal(&a, (const uint8_t *)"same", 4, p1);
    rdv__e2e_seal(&a, (const uint8_t *)"same", 4, p2);
    assert_memory_not_equal(p1 + 8, p2 + 8, 4 + 16);
    /* Exhaustion: the last counter is never used. */
    a.tx_next = UINT64_MAX - 1;
    assert_true(rdv__e2e_seal(&a, (const uint8_t *)"z", 1, pkt) > 0);
    assert_int_equal(rdv__e2e_seal(&a, (const uint8_t *)"z", 1, pkt), RDV_ERR_LIMIT);
    /* ...and a receiver never accepts it, even correctly sealed. */
    uint8_t nonce[12];
    memset(nonce, 0, 4);
    memset(nonce + 4, 0xff, 8);
    memset(pkt, 0xff, 8);
    unsigned long long clen;
    crypto_aead_chacha20poly1305_ietf_encrypt(pkt + 8, &clen, (const uint8_t *)"z", 1, SID,
                                              sizeof(SID), NULL, nonce, a.tx);
    assert_int_equal(open_pkt(&b, pkt, 8 + (size_t)clen), RDV_ERR_DUPLICATE);
    rdv__e2e_wipe(&a);
    rdv__e2e_wipe(&b);
}

static void test_replay_window(void **state)
{
    (void)state;
    rdv__e2e a, b;
    pair(&a, &b);
    uint8_t p0[64], p5[64], pw[64], pold[64], pedge[64], pbig[64];
    size_t l0 = seal_at(&a, 0, "m", p0);
    assert_int_equal(open_pkt(&b, p0, l0), 1);
    /* Exact replay. */
    assert_int_equal(open_pkt(&b, p0, l0), RDV_ERR_DUPLICATE);
    /* Out of order inside the window: 5 then 3 then 3 again. */
    size_t l5 = seal_at(&a, 5, "m", p5);
    uint8_t p3[64];
    size_t l3 = seal_at(&a, 3, "m", p3);
    assert_int_equal(open_pkt(&b, p5, l5), 1);
    assert_int_equal(open_pkt(&b, p3, l3), 1);
    assert_int_equal(open_pkt(&b, p3, l3), RDV_ERR_DUPLICATE);
    assert_int_equal(open_pkt(&b, p5, l5), RDV_ERR_DUPLICATE);
    /* Window edges: accepted are counters >= top - W (top = highest
     * accepted + 1). Move the highest to 5 + W, so top - W = 6. */
    uint64_t W = RDV__E2E_WINDOW;
    size_t lw = seal_at(&a, 5 + W, "m", pw); /* rx_top becomes W + 6 */
    assert_int_equal(open_pkt(&b, pw, lw), 1);
    assert_int_equal(b.rx_top, W + 6);
    /* Counter 6 = top - W: the oldest still inside; never seen -> ok. */
    size_t ledge = seal_at(&a, 6, "m", pedge);
    assert_int_equal(open_pkt(&b, pedge, ledge), 1);
    assert_int_equal(open_pkt(&b, pedge, ledge), RDV_ERR_DUPLICATE);
    /* Counter 5 = top - W - 1: too old even though its slot was reused. */
    assert_int_equal(open_pkt(&b, p5, l5), RDV_ERR_DUPLICATE);
    /* Counter 4: never seen, but older than the window. */
    size_t lold = seal_at(&a, 4, "m", pold);
    assert_int_equal(open_pkt(&b, pold, lold), RDV_ERR_DUPLICATE);
    /* A jump far ahead clears the whole window. */
    size_t lbig = seal_at(&a, 10 * W, "m", pbig);
    assert_int_equal(open_pkt(&b, pbig, lbig), 1);
    uint8_t pnear[64];
    size_t lnear = seal_at(&a, 10 * W - 1, "m", pnear); /* top = 10W + 1 */
    assert_int_equal(open_pkt(&b, pnear, lnear), 1);
    size_t lfar = seal_at(&a, 9 * W, "m", pold); /* top - W - 1: outside */
    assert_int_equal(open_pkt(&b, pold, lfar), RDV_ERR_DUPLICATE);
    size_t lin = seal_at(&a, 9 * W + 1, "m", pold); /* = top - W: inside */
    assert_int_equal(open_pkt(&b, pold, lin), 1);
    rdv__e2e_wipe(&a);
    rdv__e2e_wipe(&b);
}

static void test_forgeries(void **state)
{
    (void)state;
    rdv__e2e a, b;
    pair(&a, &b);
    uint8_t pkt[64];
    int64_t len = rdv__e2e_seal(&a, (const uint8_t *)"payload", 7, pkt);
    /* Tampered ciphertext, tag, counter: refused, and the window did not
     * move (the honest packet still passes afterwards). */
    for (size_t i = 0; i < (size_t)len; i++) {
        uint8_t bad[64];
        memcpy(bad, pkt, (size_t)len);
        bad[i] ^= 0x01;
        int64_t rc = open_pkt(&b, bad, (size_t)len);
        assert_int_equal(rc, RDV_ERR_DECRYPT);
    }
    assert_int_equal(b.rx_top, 0);
    /* Truncated. */
    assert_int_equal(open_pkt(&b, pkt, RDV__E2E_OVERHEAD - 1), RDV_ERR_FORMAT);
    assert_int_equal(open_pkt(&b, pkt, (size_t)len - 1), RDV_ERR_DECRYPT);
    /* A sender's own packet cannot be opened with its own rx key (the
     * reflection of a packet back to its sender is refused). */
    assert_int_equal(open_pkt(&a, pkt, (size_t)len), RDV_ERR_DECRYPT);
    /* AAD mismatch: the same keys under another session ID. */
    rdv__e2e b2 = b;
    b2.ad[0] ^= 0xff;
    assert_int_equal(open_pkt(&b2, pkt, (size_t)len), RDV_ERR_DECRYPT);
    /* Wrong key: a third party's session. */
    rdv__e2e x, y;
    pair(&x, &y);
    assert_int_equal(open_pkt(&y, pkt, (size_t)len), RDV_ERR_DECRYPT);
    /* The honest packet still opens once. */
    assert_int_equal(open_pkt(&b, pkt, (size_t)len), 7);
    assert_int_equal(open_pkt(&b, pkt, (size_t)len), RDV_ERR_DUPLICATE);
    rdv__e2e_wipe(&x);
    rdv__e2e_wipe(&y);
    rdv__e2e_wipe(&a);
    rdv__e2e_wipe(&b);
}

static void test_init_and_wipe(void **state)
{
    (void)state;
    rdv__e2e s;
    memset(&s, 0, sizeof(s));
    uint8_t pkt[64];
    assert_int_equal(rdv__e2e_seal(&s, (const uint8_t *)"x", 1, pkt), RDV_ERR_STATE);
    assert_int_equal(open_pkt(&s, pkt, 30), RDV_ERR_STATE);
    /* A low-order peer key (all zeros) is refused. */
    rdv__e2e_keypair k;
    assert_int_equal(rdv__e2e_keypair_new(&k), 0);
    uint8_t zero[32] = {0};
    assert_int_equal(rdv__e2e_init(&s, true, &k, zero, SID), RDV_ERR_CRYPTO);
    assert_false(s.ready);
    rdv__e2e_keypair_wipe(&k);
    uint8_t zk[sizeof(k)];
    memset(zk, 0, sizeof(zk));
    assert_memory_equal(&k, zk, sizeof(k));
    rdv__e2e a, b;
    pair(&a, &b);
    rdv__e2e_wipe(&a);
    uint8_t za[sizeof(a)];
    memset(za, 0, sizeof(za));
    assert_memory_equal(&a, za, sizeof(a));
    assert_int_equal(rdv__e2e_seal(&a, (const uint8_t *)"x", 1, pkt), RDV_ERR_STATE);
    rdv__e2e_wipe(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_format),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_replay_window),
        cmocka_unit_test(test_forgeries),
        cmocka_unit_test(test_init_and_wipe),
    };
    return cmocka_run_group_tests_name("client_e2e", tests, NULL, NULL);
}
