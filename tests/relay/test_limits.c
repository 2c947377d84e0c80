/* test_limits.c - relay_limits: relay limits are enforced with counted
 * drops, and relay data never grows the server's memory without bound.
 *
 * --relay-rate (per node) and --relay-global-rate (whole server): a burst
 * far over the bucket is mostly dropped; what arrived plus the counted
 * drops (reason rate_limited / global_rate, in messages and bytes) is
 * exactly what was sent. --relay-quota: the message that would pass the
 * quota is dropped (reason quota) and the session is closed on both sides
 * with reason quota. Payloads over --relay-max-payload: limit_exceeded.
 * Relay data is exempt from the per-message rate (--rate), refused relay
 * data is not.
 * A receiver that stops reading (never serviced): 100 MB
 * sent at it are dropped as `congested` past the relay threshold, the
 * server's VmRSS stays bounded, the receiver is not disconnected, and a
 * signaling message sent meanwhile is still delivered once it reads.
 */
#include "relay_util.h"

#include <unistd.h>

#define PAYLOAD 16384

/* Sends `count` binary payloads of PAYLOAD bytes a -> sid, back to back;
 * then reads what reaches b until a lookup answer proves nothing else is
 * coming. Returns the number of relay frames b received. */
static long long burst_and_count(rdv_ws *a, rdv_ws *b, const char *sid, int count,
                                 const char *lookup_id)
{
    static uint8_t payload[PAYLOAD];
    for (int i = 0; i < count; i++)
        relay_send_binary(a, sid, payload, sizeof payload);
    /* the server has handled all of them once a's lookup is answered */
    char *req = rdv_tn_id_request("lookup", (const char *[]){lookup_id}, 1, "sent");
    itest_send(a, req);
    free(req);
    itest_expect(a, "presence");
    req = rdv_tn_id_request("lookup", (const char *[]){lookup_id}, 1, "end");
    itest_send(b, req);
    free(req);
    long long frames = 0;
    for (;;) {
        size_t len = 0;
        bool bin = false;
        char *m = rdv_ws_recv_any(b, T_MS, &len, &bin);
        if (!m)
            fail_msg("no lookup answer after %lld frames", frames);
        bool done = !bin && strstr(m, "\"presence\"");
        if (bin && len == RDV_RELAY_FRAME_HEADER + PAYLOAD)
            frames++;
        else if (!done)
            fail_msg("unexpected message: %.200s", bin ? "(binary)" : m);
        free(m);
        if (done)
            return frames;
    }
}

static void test_relay_rate_limit(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--relay-rate", "65536");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    const int sent = 64; /* 1 MiB against a 64 KiB bucket */
    long long t0 = rdv_ts_mono_ms();
    long long got = burst_and_count(a, b, sid, sent, alice.id);
    long long secs = (rdv_ts_mono_ms() - t0) / 1000 + 1;
    long long dropped =
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"rate_limited\"}");
    fprintf(stderr, "[relay_limits] rate: %lld of %d delivered, %lld dropped\n", got, sent,
            dropped);
    /* bucket: 4 payloads, plus 4 per second of refill */
    assert_true(got >= 3 && got <= 4 + 4 * secs);
    assert_int_equal(got + dropped, sent);
    assert_int_equal(relay_metric(s, "rendezvous_relay_messages_total"), got);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_dropped_bytes_total{reason=\"rate_limited\"}"),
        dropped * PAYLOAD);
    /* the session and both connections survive */
    itest_alive(a, bob.id);
}

static void test_relay_global_rate_limit(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--relay-rate", "0", "--relay-global-rate", "65536");
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *c = itest_join(s, &carol, "carol");
    char s1[RDV_UUID_STRLEN + 1], s2[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, s1);
    relay_establish(c, &carol, b, &bob, s2);
    long long t0 = rdv_ts_mono_ms();
    long long got = burst_and_count(a, b, s1, 32, alice.id);
    got += burst_and_count(c, b, s2, 32, carol.id);
    long long secs = (rdv_ts_mono_ms() - t0) / 1000 + 1;
    long long dropped =
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"global_rate\"}");
    fprintf(stderr, "[relay_limits] global: %lld of 64 delivered, %lld dropped\n", got, dropped);
    assert_true(got >= 3 && got <= 4 + 4 * secs);
    assert_int_equal(got + dropped, 64);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"rate_limited\"}"), 0);
}

static void test_relay_quota(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--relay-quota", "100000");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    static uint8_t payload[PAYLOAD];
    size_t len;
    uint8_t *f = relay_frame(sid, payload, sizeof payload, &len);
    /* 6 x 16384 = 98304 fits; the 7th would pass 100000 */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rdv_ws_send_binary(b, f, len), 0);
        relay_expect_any(a, f, len, true);
    }
    assert_int_equal(rdv_ws_send_binary(b, f, len), 0);
    free(f);
    relay_expect_close(b, sid, "quota");
    relay_expect_close(a, sid, "quota");
    assert_int_equal(relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"quota\"}"),
                     1);
    assert_int_equal(relay_metric(s, "rendezvous_relay_dropped_bytes_total{reason=\"quota\"}"),
                     PAYLOAD);
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions_closed_total{reason=\"quota\"}"),
                     1);
    relay_send_binary(a, sid, payload, 1);
    relay_expect_error(a, "unknown_session", sid);
}

static void test_relay_max_payload(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--relay-max-payload", "1000");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    static uint8_t payload[1001];
    size_t len;
    uint8_t *f = relay_frame(sid, payload, 1000, &len);
    assert_int_equal(rdv_ws_send_binary(a, f, len), 0);
    relay_expect_any(b, f, len, true);
    free(f);
    relay_send_binary(a, sid, payload, 1001);
    relay_expect_error(a, "limit_exceeded", sid);
    relay_send_text(a, sid, payload, 1001);
    relay_expect_error(a, "limit_exceeded", sid);
    char *t = relay_text(sid, payload, 1000, &len);
    assert_int_equal(rdv_ws_send_text(a, t, len), 0);
    relay_expect_any(b, t, len, false);
    free(t);
    relay_expect_nothing(b, alice.id);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"too_large\"}"), 2);
}

static void test_relay_exempt_from_message_rate(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--rate", "5", "--burst", "5");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    rdv_ws_service(a, 1100); /* refill after the handshake */
    rdv_ws_service(b, 1100);
    /* 40 data messages at 5 messages/s: all delivered, none rate_limited */
    static uint8_t payload[1000];
    size_t len;
    uint8_t *f = relay_frame(sid, payload, sizeof payload, &len);
    for (int i = 0; i < 40; i++) {
        payload[0] = (uint8_t)i;
        f[RDV_RELAY_FRAME_HEADER] = (uint8_t)i;
        assert_int_equal(rdv_ws_send_binary(a, f, len), 0);
    }
    for (int i = 0; i < 40; i++) {
        f[RDV_RELAY_FRAME_HEADER] = (uint8_t)i;
        relay_expect_any(b, f, len, true);
    }
    free(f);
    for (int i = 0; i < 10; i++)
        relay_send_text(a, sid, payload, 100);
    for (int i = 0; i < 10; i++)
        itest_expect(b, "relayData");
    assert_int_equal(relay_metric(s, "rendezvous_rate_limited_total"), 0);
    /* refused relay data pays: 12 frames on an unknown session get a few
     * unknown_session errors, then rate_limited (10 in a row would close
     * the connection as a sustained flood) */
    char other[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(other);
    f = relay_frame(other, payload, 10, &len);
    for (int i = 0; i < 12; i++)
        assert_int_equal(rdv_ws_send_binary(a, f, len), 0);
    free(f);
    int unknown = 0, limited = 0;
    for (int i = 0; i < 12; i++) {
        const char *type = NULL;
        json_t *m = rdv_ws_recv_json(a, T_MS, &type);
        if (!m || strcmp(type, "error") != 0)
            fail_msg("expected 12 errors, got %d + %d then %s", unknown, limited,
                     type ? type : "nothing");
        const char *code = rdv_json_str(json_object_get(m, type), "code");
        if (!strcmp(code, "unknown_session"))
            unknown++;
        else if (!strcmp(code, "rate_limited"))
            limited++;
        else
            fail_msg("unexpected error %s", code);
    }
    if (unknown < 1 || unknown > 6 || limited < 6)
        fail_msg("%d unknown_session and %d rate_limited for 12 refused frames at burst 5",
                 unknown, limited);
    assert_false(rdv_ws_is_closed(a));
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = atol(line + 6);
            break;
        }
    fclose(f);
    return kb;
}

static void test_relay_slow_reader_bounded(void **state)
{
    (void)state;
    /* ASan keeps freed blocks in a quarantine (256 MB by default) that
     * would look like growth; keep it small for this measurement. */
    rdv_ts_server *s = rdv_ts_server_start_env(
        (const char *const[]){"ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:"
                              "quarantine_size_mb=4",
                              NULL},
        (const char *const[]){"--relay-rate", "0", NULL});
    if (!s)
        fail_msg("rendezvousd did not start");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    /* bob stops reading from here on: once the kernel's socket buffers are
     * full, the server's queue for him fills up to the relay threshold */
    static uint8_t payload[PAYLOAD];
    size_t len;
    uint8_t *f = relay_frame(sid, payload, sizeof payload, &len);
    const long total = 100L * 1000 * 1000 / PAYLOAD; /* 100 MB */
    long rss0 = -1, rss_max = 0;
    pid_t pid = rdv_ts_server_pid(s);
    for (long i = 0; i < total; i++) {
        if (rdv_ws_send_binary(a, f, len) != 0)
            fail_msg("send %ld failed", i);
        if (i == total / 10)
            rss0 = rss_kb(pid); /* after the queue and buffers filled */
        if (i > total / 10 && i % 256 == 0) {
            long r = rss_kb(pid);
            if (r > rss_max)
                rss_max = r;
        }
    }
    free(f);
    /* a signaling message while bob is congested: queued, never dropped */
    size_t olen;
    char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &olen);
    assert_non_null(offer);
    assert_int_equal(rdv_ws_send_text(a, offer, olen), 0);
    itest_alive(a, bob.id); /* the server has handled everything alice sent */
    long long delivered = relay_metric(s, "rendezvous_relay_messages_total");
    long long congested =
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"congested\"}");
    fprintf(stderr,
            "[relay_limits] slow reader: %ld sent, %lld forwarded, %lld dropped (congested); "
            "VmRSS %ld KiB after 10%%, max %ld KiB after\n",
            total, delivered, congested, rss0, rss_max);
    assert_true(congested > total / 2);
    assert_int_equal(delivered + congested, total);
    assert_true(rss0 > 0);
    if (rss_max - rss0 > 16 * 1024)
        fail_msg("server VmRSS grew by %ld KiB while the reader did not read", rss_max - rss0);
    /* bob was not disconnected, and reading now yields the offer */
    bool found = false;
    for (;;) {
        bool bin = false;
        char *m = rdv_ws_recv_any(b, T_MS, &len, &bin);
        if (!m)
            break;
        found = !bin && len == olen && !memcmp(m, offer, olen);
        free(m);
        if (found)
            break;
    }
    free(offer);
    if (!found)
        fail_msg("the offer sent during congestion was not delivered (bob closed: %d)",
                 rdv_ws_is_closed(b));
    assert_false(rdv_ws_is_closed(b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_relay_rate_limit),  ITEST(test_relay_global_rate_limit),
        ITEST(test_relay_quota),       ITEST(test_relay_max_payload),
        ITEST(test_relay_exempt_from_message_rate),
        ITEST(test_relay_slow_reader_bounded),
    };
    return ITEST_RUN(tests);
}
