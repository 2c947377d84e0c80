/* test_oom.c - fault_oom: the server's address space runs out on the
 * network path (run_oom.sh starts a non-sanitizer rendezvousd under
 * `prlimit --as`: ASan needs terabytes of address space, so the real
 * limit needs a plain build).
 *
 * 32 connections each open a text frame announcing 16 MiB (the
 * --max-message-bytes maximum) and send its first 4 KiB: the server
 * sizes the reassembly buffer for the whole frame at once, so a few fit
 * under the limit and the rest cannot be allocated. Each of those is
 * refused alone (`error` internal "server out of memory", close 1011);
 * the server does not crash, alice keeps signaling bob, and a new node
 * gets in. Once the attackers are gone a new node gets in again, and
 * SIGTERM stops the server cleanly.
 */
#include <signal.h>
#include <stdlib.h>

#include "itest.h"
#include "raw_ws.h"

#define ATTACKERS 32
#define FRAME_BYTES (16u << 20)
#define SENT_BYTES 4096

static void offer_passes(rdv_ws *from, const rdv_tn *sender, rdv_ws *to, const rdv_tn *dest)
{
    size_t len = 0;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *offer = rdv_tn_offer(sender, dest->id, sid, NULL, &len);
    assert_int_equal(rdv_ws_send_text(from, offer, len), 0);
    free(offer);
    if (!rdv_expect(to, "offer", T_MS))
        fail_msg("an offer did not pass while the server was out of memory");
}

static void test_oom(void **state)
{
    (void)state;
    if (!getenv("RDV_OOM_WRAPPED"))
        skip(); /* only meaningful through run_oom.sh */
    rdv_ts_server *s = START("--max-message-bytes", "16777216", "--max-handshakes-per-ip", "0",
                             "--auth-timeout", "60000");
    int port = rdv_ts_server_port(s);
    rdv_tn alice, bob, carol, dave;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");

    /* a 16 MiB text frame: header, mask, the first SENT_BYTES */
    uint8_t *frame = malloc(SENT_BYTES + 14);
    assert_non_null(frame);
    static uint8_t body[SENT_BYTES];
    memset(body, 'a', sizeof body);
    body[0] = '"';
    size_t hl = raw_ws_frame(frame, 0x80 | RAW_WS_OP_TEXT, body, SENT_BYTES, false);
    /* raw_ws_frame wrote a 16-bit length: rewrite the header for 16 MiB */
    uint8_t hdr[14];
    size_t n = 0;
    hdr[n++] = 0x80 | RAW_WS_OP_TEXT;
    hdr[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
        hdr[n++] = (uint8_t)((uint64_t)FRAME_BYTES >> (8 * i));
    memcpy(hdr + n, frame + 4, 4); /* the same mask key */
    n += 4;
    const uint8_t *masked = frame + (hl - SENT_BYTES);

    int fds[ATTACKERS];
    for (int i = 0; i < ATTACKERS; i++) {
        char resp[2048];
        fds[i] = raw_ws_open(port, NULL, resp, sizeof resp);
        assert_true(fds[i] >= 0);
        assert_true(raw_ws_send(fds[i], hdr, n));
        assert_true(raw_ws_send(fds[i], masked, SENT_BYTES));
    }
    free(frame);

    /* the ones that could not be given memory are closed with 1011 */
    int oom_closed = 0, held = 0;
    for (int i = 0; i < ATTACKERS; i++) {
        struct timeval tv = {0, 300 * 1000};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char text[512];
        int code = raw_ws_close_code(fds[i], 600, text, sizeof text);
        if (code == 1011 && strstr(text, "\"internal\"") && strstr(text, "out of memory"))
            oom_closed++;
        else if (code == -1)
            held++;
        else
            fprintf(stderr, "attacker %d: close %d after %s\n", i, code, text);
    }
    fprintf(stderr, "%d of %d 16 MiB frames refused for lack of memory, %d held\n", oom_closed,
            ATTACKERS, held);
    assert_true(oom_closed > 0);
    assert_true(rdv_ts_server_running(s));

    /* everyone else is served meanwhile */
    offer_passes(a, &alice, b, &bob);
    rdv_ws *c = itest_join(s, &carol, "carol");
    offer_passes(c, &carol, a, &alice);

    for (int i = 0; i < ATTACKERS; i++)
        close(fds[i]);
    rdv_ws *d = itest_join(s, &dave, "dave");
    offer_passes(d, &dave, b, &bob);
    char *log = rdv_ts_server_read_log(s);
    assert_non_null(log);
    bool logged = strstr(log, "out of memory reassembling") != NULL;
    free(log);
    assert_true(logged);
    rdv_ws_close(a);
    rdv_ws_close(b);
    rdv_ws_close(c);
    rdv_ws_close(d);
    assert_int_equal(rdv_ts_server_stop(s), 0);
}

static int teardown(void **state)
{
    (void)state;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_oom, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
