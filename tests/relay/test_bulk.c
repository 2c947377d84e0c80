/* test_bulk.c - relay_bulk: bulk data through the relay arrives intact
 * when there is no congestion (PROTOCOL.md 9.3).
 *
 * RDV_RELAY_BULK_MB megabytes (default 100) of random bytes go from alice
 * to bob in payloads of the maximum size (16 KiB), once as base64 text
 * relayData and once as binary frames. The sender keeps at most WINDOW
 * payloads in flight (a flow-controlled application), well under the
 * server's relay threshold, so nothing may be dropped: the SHA-256 of
 * what was sent (libsodium crypto_hash_sha256) must equal that of what
 * arrived, byte counts must match, and /metrics must count the bytes and
 * no drop. Prints the duration and rate of each run.
 */
#include "relay_util.h"

#define PAYLOAD 16384
#define WINDOW 16

/* Bytes to move per test: RDV_RELAY_BULK_MB megabytes (10^6), default 100. */
static size_t bulk_bytes(void)
{
    const char *e = getenv("RDV_RELAY_BULK_MB");
    long mb = e && *e ? atol(e) : 100;
    if (mb < 1)
        mb = 1;
    return (size_t)mb * 1000000u;
}

/* Decodes the payload of a text relayData we built (relay_text's layout)
 * into out; returns its length, or (size_t)-1 when malformed. */
static size_t text_payload(const char *m, size_t len, uint8_t *out, size_t cap)
{
    static const char key[] = "\"data\":\"";
    const char *p = strstr(m, key);
    if (!p)
        return (size_t)-1;
    p += sizeof key - 1;
    const char *q = memchr(p, '"', len - (size_t)(p - m));
    size_t n = 0;
    if (!q || sodium_base642bin(out, cap, p, (size_t)(q - p), NULL, &n, NULL,
                                sodium_base64_VARIANT_ORIGINAL) != 0)
        return (size_t)-1;
    return n;
}

static void bulk(bool binary)
{
    /* no per-node rate cap: this is about integrity, not policy */
    rdv_ts_server *s = START("--relay-rate", "0");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);

    const size_t total = bulk_bytes();
    crypto_hash_sha256_state hs_sent, hs_got;
    crypto_hash_sha256_init(&hs_sent);
    crypto_hash_sha256_init(&hs_got);
    uint8_t *chunk = malloc(PAYLOAD), *got = malloc(PAYLOAD);
    assert_non_null(chunk);
    assert_non_null(got);
    size_t sent = 0, recvd = 0;
    long long t0 = rdv_ts_mono_ms();
    while (recvd < total) {
        bool queued = false;
        while (sent < total && sent - recvd < (size_t)WINDOW * PAYLOAD) {
            size_t n = total - sent < PAYLOAD ? total - sent : PAYLOAD;
            randombytes_buf(chunk, n);
            crypto_hash_sha256_update(&hs_sent, chunk, n);
            if (binary) {
                relay_send_binary(a, sid, chunk, n);
            } else {
                size_t len;
                char *t = relay_text(sid, chunk, n, &len);
                int rc = rdv_ws_queue_text(a, t, len);
                free(t);
                assert_int_equal(rc, 0);
                queued = true;
            }
            sent += n;
        }
        if (queued && rdv_ws_flush(a, T_MS) != 0)
            fail_msg("flush failed after %zu bytes", sent);
        size_t len = 0;
        bool is_bin = false;
        char *m = rdv_ws_recv_any(b, T_MS, &len, &is_bin);
        if (!m)
            fail_msg("nothing arrived after %zu of %zu bytes (%zu sent)", recvd, total, sent);
        size_t n;
        if (is_bin != binary) {
            n = (size_t)-1;
        } else if (binary) {
            n = len >= RDV_RELAY_FRAME_HEADER ? len - RDV_RELAY_FRAME_HEADER : (size_t)-1;
            if (n != (size_t)-1)
                memcpy(got, m + RDV_RELAY_FRAME_HEADER, n);
        } else {
            n = text_payload(m, len, got, PAYLOAD);
        }
        if (n == (size_t)-1 || n > PAYLOAD)
            fail_msg("unexpected message after %zu bytes: %.100s", recvd, is_bin ? "(bin)" : m);
        free(m);
        crypto_hash_sha256_update(&hs_got, got, n);
        recvd += n;
    }
    long long ms = rdv_ts_mono_ms() - t0;
    uint8_t d1[crypto_hash_sha256_BYTES], d2[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&hs_sent, d1);
    crypto_hash_sha256_final(&hs_got, d2);
    free(chunk);
    free(got);
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, d2, sizeof d2);
    fprintf(stderr, "[relay_bulk] %s: %zu bytes in %lld ms (%.1f MB/s), sha256 %s\n",
            binary ? "binary" : "text", total, ms, ms ? (double)total / 1000.0 / (double)ms : 0,
            hex);
    assert_int_equal(recvd, total);
    assert_memory_equal(d1, d2, sizeof d1);
    assert_int_equal(relay_metric(s, "rendezvous_relay_bytes_total"), (long long)total);
    static const char *const reasons[] = {"congested", "rate_limited", "global_rate", "closing"};
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        char series[128];
        snprintf(series, sizeof series,
                 "rendezvous_relay_dropped_messages_total{reason=\"%s\"}", reasons[i]);
        assert_int_equal(relay_metric(s, series), 0);
    }
    relay_expect_nothing(b, alice.id);
}

static void test_relay_bulk_text(void **state)
{
    (void)state;
    bulk(false);
}

static void test_relay_bulk_binary(void **state)
{
    (void)state;
    bulk(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_relay_bulk_text),
        ITEST(test_relay_bulk_binary),
    };
    return ITEST_RUN(tests);
}
