/* test_ws_abuse.c - fault_ws_abuse: WebSocket-level abuse from a
 * hand-made RFC 6455 client (raw_ws.h) while two nodes signal.
 *
 * Each abuse must close only the abusing connection, with the RFC 6455
 * code that fits, and cost nothing else: after every case alice's offer
 * still reaches bob.
 *   rsv           a text frame with RSV1 (no extension agreed): 1002
 *   opcode        a frame with reserved opcode 0x3: 1002
 *   unmasked      an unmasked client frame: RFC 6455 5.1 says the server
 *                 MUST close, but libwebsockets 4.1.6 accepts it (it
 *                 never checks the mask bit and offers no way to see it):
 *                 asserted as it is - handled exactly like the same
 *                 frame masked (a `ping` message gets its `pong`);
 *   deflate       permessage-deflate requested: not agreed (the server is
 *                 configured without it), then a compressed frame: 1002
 *   ctl_frag      a ping without FIN (control frames cannot be
 *                 fragmented): 1002
 *   ctl_long      a ping with 126 bytes (control frames carry <= 125):
 *                 lws drops the connection without a close frame (1006)
 *   too_big       a message over --max-message-bytes in 200 fragments: 1009
 *   ping_flood    20,000 pings: 1008 (frame_guard.h)
 *   pong_flood    20,000 unsolicited pongs: 1008
 *   cont_flood    a text frame without FIN, then 20,000 empty
 *                 continuation frames (the message never grows): 1008
 */
#include <stdlib.h>

#include "itest.h"
#include "raw_ws.h"

#define FLOOD 20000

static rdv_ts_server *srv;
static rdv_tn alice, bob;
static rdv_ws *a, *b;

/* alice -> bob, proving the server still serves everyone else. */
static void still_signaling(void)
{
    size_t len = 0;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *offer = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    assert_int_equal(rdv_ws_send_text(a, offer, len), 0);
    free(offer);
    json_t *body = rdv_expect(b, "offer", T_MS);
    if (!body)
        fail_msg("bob got no offer while the abuse went on");
}

static void setup_nodes(const char *const *args)
{
    srv = rdv_ts_server_start(args);
    if (!srv)
        fail_msg("rendezvousd did not start");
    a = itest_join(srv, &alice, "alice");
    b = itest_join(srv, &bob, "bob");
}

/* Opens a raw connection (extra request headers may be NULL). */
static int open_raw(const char *extra, char *resp, size_t resplen)
{
    int fd = raw_ws_open(rdv_ts_server_port(srv), extra, resp, resplen);
    if (fd < 0)
        fail_msg("raw WebSocket upgrade failed");
    return fd;
}

/* Sends `frames` (built into one buffer, freed here) and expects close
 * code `want`, and when `error_has` is not NULL an `error` message
 * holding it right before the close. */
static void expect_close_error(const char *what, int fd, uint8_t *frames, size_t len, int want,
                               const char *error_has)
{
    (void)raw_ws_send(fd, frames, len); /* the server may close midway */
    free(frames);
    char text[512];
    int code = raw_ws_close_code(fd, 10000, text, sizeof text);
    close(fd);
    fprintf(stderr, "%-10s -> close %d after %s\n", what, code, text[0] ? text : "(no text)");
    if (code != want)
        fail_msg("%s: close code %d (last text %s), want %d", what, code, text, want);
    if (error_has && (!strstr(text, "\"error\"") || !strstr(text, error_has)))
        fail_msg("%s: no error naming \"%s\" before the close: %s", what, error_has, text);
    still_signaling();
}

static void expect_close(const char *what, int fd, uint8_t *frames, size_t len, int want)
{
    expect_close_error(what, fd, frames, len, want, NULL);
}

static void one_frame(const char *what, uint8_t b0, const void *p, size_t len, bool unmasked,
                      int want)
{
    char resp[2048];
    int fd = open_raw(NULL, resp, sizeof resp);
    uint8_t *f = malloc(len + 14);
    assert_non_null(f);
    size_t n = raw_ws_frame(f, b0, p, len, unmasked);
    expect_close(what, fd, f, n, want);
}

static void test_malformed(void **state)
{
    (void)state;
    setup_nodes(NULL);
    static const char hi[] = "{\"ping\":{}}";
    one_frame("rsv", 0x80 | 0x40 | RAW_WS_OP_TEXT, hi, sizeof hi - 1, false, 1002);
    one_frame("opcode", 0x80 | 0x3, hi, sizeof hi - 1, false, 1002);
    /* unmasked: processed like a masked frame (lws does not check) */
    for (int unmasked = 0; unmasked < 2; unmasked++) {
        char resp[2048], text[256];
        int fd = open_raw(NULL, resp, sizeof resp);
        assert_true(raw_ws_next_text(fd, T_MS, text, sizeof text)); /* challenge */
        uint8_t f[64];
        size_t n = raw_ws_frame(f, 0x80 | RAW_WS_OP_TEXT, hi, sizeof hi - 1, unmasked);
        assert_true(raw_ws_send(fd, f, n));
        if (!raw_ws_next_text(fd, T_MS, text, sizeof text) || !strstr(text, "\"pong\""))
            fail_msg("%smasked ping message: no pong", unmasked ? "un" : "");
        fprintf(stderr, "%-10s -> %s\n", unmasked ? "unmasked" : "masked", text);
        close(fd);
    }
    still_signaling();
    one_frame("ctl_frag", RAW_WS_OP_PING, "x", 1, false, 1002);
    uint8_t big[126];
    memset(big, 'p', sizeof big);
    /* lws drops the TCP connection without a close frame here (RFC 6455
     * 7.1.7 allows failing the connection so) */
    one_frame("ctl_long", 0x80 | RAW_WS_OP_PING, big, sizeof big, false, 1006);

    /* permessage-deflate asked for: not agreed, and a compressed frame
     * (RSV1) is then a protocol error */
    char resp[2048];
    int fd = open_raw("Sec-WebSocket-Extensions: permessage-deflate; "
                      "client_max_window_bits\r\n",
                      resp, sizeof resp);
    if (strcasestr(resp, "Sec-WebSocket-Extensions"))
        fail_msg("the server agreed to an extension:\n%s", resp);
    uint8_t *f = malloc(64);
    assert_non_null(f);
    static const uint8_t deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    size_t n = raw_ws_frame(f, 0x80 | 0x40 | RAW_WS_OP_TEXT, deflated, sizeof deflated, false);
    expect_close("deflate", fd, f, n, 1002);
}

static void test_too_big(void **state)
{
    (void)state;
    setup_nodes((const char *[]){"--max-message-bytes", "4096", NULL});
    char resp[2048];
    int fd = open_raw(NULL, resp, sizeof resp);
    /* 200 fragments of 100 bytes: 20,000 > 4096 */
    size_t cap = 200 * 120, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    uint8_t chunk[100];
    memset(chunk, 'a', sizeof chunk);
    chunk[0] = '"';
    for (int i = 0; i < 200; i++)
        n += raw_ws_frame(buf + n, (uint8_t)((i == 199 ? 0x80 : 0) |
                                             (i ? RAW_WS_OP_CONT : RAW_WS_OP_TEXT)),
                          chunk, sizeof chunk, false);
    expect_close("too_big", fd, buf, n, 1009);
}

/* FLOOD frames of one kind (after an optional opening frame). */
static void flood(const char *what, uint8_t first_b0, uint8_t b0, size_t payload, int want)
{
    char resp[2048];
    int fd = open_raw(NULL, resp, sizeof resp);
    size_t cap = (size_t)(FLOOD + 1) * (payload + 14), n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    uint8_t p[16];
    memset(p, 'x', sizeof p);
    if (first_b0)
        n += raw_ws_frame(buf + n, first_b0, "\"", 1, false);
    for (int i = 0; i < FLOOD; i++)
        n += raw_ws_frame(buf + n, b0, p, payload, false);
    expect_close_error(what, fd, buf, n, want, "frame flood");
}

static void test_floods(void **state)
{
    (void)state;
    /* a raw connection never authenticates: no auth timeout in the way */
    setup_nodes((const char *[]){"--auth-timeout", "60000", NULL});
    flood("ping_flood", 0, 0x80 | RAW_WS_OP_PING, 4, 1008);
    flood("pong_flood", 0, 0x80 | RAW_WS_OP_PONG, 4, 1008);
    flood("cont_flood", RAW_WS_OP_TEXT, RAW_WS_OP_CONT, 0, 1008);
}

static int teardown(void **state)
{
    (void)state;
    a = b = NULL;
    srv = NULL;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_malformed, teardown),
        cmocka_unit_test_teardown(test_too_big, teardown),
        cmocka_unit_test_teardown(test_floods, teardown),
    };
    if (argc > 1) {
        static char filter[64];
        snprintf(filter, sizeof filter, "test_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
