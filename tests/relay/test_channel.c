/* test_channel.c - relay_channel: the relay channel (PROTOCOL.md 9.5), a
 * node's second WebSocket (rendezvous.relay.v1) for relay data only,
 * against a real rendezvousd.
 *
 * It authenticates like the main connection and carries relay data both
 * ways (the channel metrics count it); it needs the node's main
 * connection; it creates no presence and replaces nothing but an older
 * channel; anything but relay data and ping gets unsupported_type; it
 * closes with the main connection (not the other way round); bad input on
 * it is answered with an error code; --relay-channel off removes it.
 */
#include "relay_util.h"

#include <unistd.h>

#define CHAN_PROTO "rendezvous.relay.v1"
#define CHAN_IN "rendezvous_relay_channel_frames_total{direction=\"in\"}"
#define CHAN_OUT "rendezvous_relay_channel_frames_total{direction=\"out\"}"

/* A raw channel connection (upgraded, not authenticated). */
static rdv_ws *chan_connect(rdv_ts_server *s)
{
    rdv_ws *c = rdv_ws_connect_ex(rdv_ts_server_port(s), "/v1", CHAN_PROTO, T_MS);
    if (!c)
        fail_msg("relay channel upgrade failed");
    return c;
}

/* A channel of node n, authenticated. With its main connection `main`
 * (else NULL): a ping there, answered, switches the node's delivery to
 * the channel (PROTOCOL.md 9.5). */
static rdv_ws *chan_open(rdv_ts_server *s, const rdv_tn *n, rdv_ws *main_ws)
{
    rdv_ws *c = chan_connect(s);
    json_t *w = rdv_tn_authenticate(c, n);
    if (!w)
        fail_msg("relay channel of %s did not authenticate", n->label);
    assert_string_equal(rdv_json_str(w, "nodeID"), n->id);
    if (main_ws) {
        itest_send(main_ws, "{\"ping\":{\"id\":\"switch\"}}");
        itest_expect(main_ws, "pong");
    }
    return c;
}

/* Waits (bounded) until the server counts n open channels. */
static void wait_channels(rdv_ts_server *s, long long n)
{
    long long t0 = rdv_ts_mono_ms();
    while (relay_metric(s, "rendezvous_relay_channels") != n) {
        if (rdv_ts_mono_ms() - t0 > T_MS)
            fail_msg("the server still counts %lld relay channels, expected %lld",
                     relay_metric(s, "rendezvous_relay_channels"), n);
        usleep(10000);
    }
}

static const uint8_t PAYLOAD[] = "channel payload 0123456789";

/* Data both ways over the channels (and from a main connection to a
 * channel); the metrics count frames in and out of channels. */
static void test_channel_carries_data(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    rdv_ws *ac = chan_open(s, &alice, a);
    rdv_ws *bc = chan_open(s, &bob, b);
    assert_int_equal(relay_metric(s, "rendezvous_relay_channels"), 2);
    size_t flen;
    uint8_t *frame = relay_frame(sid, PAYLOAD, sizeof PAYLOAD, &flen);
    /* channel -> channel, both directions, binary and text */
    relay_send_binary(ac, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(bc, frame, flen, true);
    relay_send_binary(bc, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(ac, frame, flen, true);
    size_t tlen;
    char *text = relay_text(sid, PAYLOAD, sizeof PAYLOAD, &tlen);
    relay_send_text(ac, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(bc, text, tlen, false);
    /* main -> the receiver's channel */
    relay_send_binary(a, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(bc, frame, flen, true);
    free(text);
    free(frame);
    assert_int_equal(relay_metric(s, CHAN_IN), 3);
    assert_int_equal(relay_metric(s, CHAN_OUT), 4);
    assert_int_equal(relay_metric(s, "rendezvous_relay_messages_total"), 4);
    /* nothing went down the main connections; both are fine */
    relay_expect_nothing(a, bob.id);
    relay_expect_nothing(b, alice.id);
    /* ping is answered on the channel */
    itest_send(ac, "{\"ping\":{\"id\":\"p1\"}}");
    itest_expect(ac, "pong");
}

/* Without an authenticated main connection here: not_authenticated,
 * 1008; before hello, relay data gets not_authenticated too. */
static void test_channel_needs_main(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn carol;
    rdv_tn_init(&carol, "carol");
    rdv_ws *cc = chan_connect(s);
    json_t *ch = rdv_tn_read_challenge(cc, T_MS);
    assert_non_null(ch);
    static const uint8_t junk[RDV_RELAY_FRAME_HEADER + 4] = {RDV_RELAY_FRAME_KIND_DATA};
    assert_int_equal(rdv_ws_send_binary(cc, junk, sizeof junk), 0);
    itest_expect_error(cc, "not_authenticated");
    size_t len;
    char *hello = rdv_tn_hello(&carol, ch, NULL, NULL, NULL, NULL, &len);
    json_decref(ch);
    assert_int_equal(rdv_ws_send_text(cc, hello, len), 0);
    free(hello);
    itest_expect_error(cc, "not_authenticated");
    itest_expect_close(cc, 1008);
    /* the server is fine, and carol can connect normally afterwards */
    rdv_ws *c = itest_node(s, &carol);
    rdv_ws *cc2 = chan_open(s, &carol, NULL);
    itest_alive(c, carol.id);
    (void)cc2;
}

/* A channel's hello neither replaces the main connection nor announces
 * the node (no peerOnline to a watcher); signaling still reaches main. */
static void test_channel_no_presence(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    char *w = rdv_tn_id_request("watch", (const char *[]){alice.id}, 1, "w1");
    itest_send(b, w);
    free(w);
    itest_expect(b, "presence");
    rdv_ws *ac = chan_open(s, &alice, NULL);
    /* no peerOnline (or anything else) for bob before his lookup answer */
    json_t *p = itest_alive(b, alice.id);
    (void)p;
    /* alice's main connection is still hers: an offer reaches it */
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    size_t len;
    char *offer = rdv_tn_offer(&bob, alice.id, sid, NULL, &len);
    itest_send(b, offer);
    assert_int_equal(rdv_expect_bytes(a, offer, len, T_MS), 0);
    free(offer);
    assert_false(rdv_ws_is_closed(a));
    assert_false(rdv_ws_is_closed(ac));
    assert_int_equal(relay_metric(s, "rendezvous_nodes_authenticated"), 2);
}

/* On the channel, anything but relay data / ping: unsupported_type, and
 * not acted on (the offer never reaches bob). */
static void test_channel_unsupported_type(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *ac = chan_open(s, &alice, NULL);
    char *req = rdv_tn_id_request("lookup", (const char *[]){bob.id}, 1, "l1");
    itest_send(ac, req);
    free(req);
    itest_expect_error(ac, "unsupported_type");
    size_t len;
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *offer = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    itest_send(ac, offer);
    free(offer);
    itest_expect_error(ac, "unsupported_type");
    relay_expect_nothing(b, alice.id);
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
}

/* The main connection's end closes the channel; the channel's end leaves
 * the main connection and its session (data comes on main again). */
static void test_channel_lifetime(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    rdv_ws *bc = chan_open(s, &bob, b);
    rdv_ws_close(bc);
    /* the client's close returns before the server has seen it */
    wait_channels(s, 0);
    size_t flen;
    uint8_t *frame = relay_frame(sid, PAYLOAD, sizeof PAYLOAD, &flen);
    relay_send_binary(a, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(b, frame, flen, true);
    free(frame);
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"open\"}"), 1);
    /* alice's main goes: her channel is closed by the server */
    rdv_ws *ac = chan_open(s, &alice, NULL);
    rdv_ws_close(a);
    itest_expect_close(ac, 1000);
    relay_expect_close(b, sid, "peer_disconnected");
}

/* A second channel replaces the first (replaced, 4001); main untouched. */
static void test_channel_replaced(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    rdv_ws *ac1 = chan_open(s, &alice, a);
    rdv_ws *ac2 = chan_open(s, &alice, a);
    itest_expect_error(ac1, "replaced");
    itest_expect_close(ac1, 4001);
    size_t flen;
    uint8_t *frame = relay_frame(sid, PAYLOAD, sizeof PAYLOAD, &flen);
    relay_send_binary(b, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(ac2, frame, flen, true);
    free(frame);
    itest_alive(a, bob.id);
    assert_int_equal(relay_metric(s, "rendezvous_relay_channels"), 1);
}

/* --relay-channel off: no relayChannel in welcome, the upgrade is
 * refused, relaying over the main connection works. With it on (the
 * default) welcome says relayChannel 1. */
static void test_channel_off(void **state)
{
    (void)state;
    rdv_ts_server *on = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = rdv_ws_connect(rdv_ts_server_port(on));
    assert_non_null(c);
    json_t *w = rdv_tn_authenticate(c, &alice);
    assert_non_null(w);
    assert_int_equal(rdv_json_int(json_object_get(w, "limits"), "relayChannel", -1), 1);
    rdv_ws_close(c);

    rdv_ts_server *s = START("--relay-channel", "off");
    c = rdv_ws_connect(rdv_ts_server_port(s));
    assert_non_null(c);
    w = rdv_tn_authenticate(c, &alice);
    assert_non_null(w);
    assert_null(json_object_get(json_object_get(w, "limits"), "relayChannel"));
    assert_null(rdv_ws_connect_ex(rdv_ts_server_port(s), "/v1", CHAN_PROTO, T_MS));
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(c, &alice, b, &bob, sid);
    size_t flen;
    uint8_t *frame = relay_frame(sid, PAYLOAD, sizeof PAYLOAD, &flen);
    relay_send_binary(c, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_any(b, frame, flen, true);
    free(frame);
}

/* Bad input on a channel: a binary frame that is not relay data
 * (invalid_field), data for an unknown session (unknown_session) -
 * answered on main, where the node's relay data goes until some was
 * delivered to its channel -; text relayData the codec refuses
 * (invalid_field) and text that is not JSON (bad_json), answered on the
 * channel; a frame over maxMessageBytes (too_large, 1009); the server and
 * the main connection go on. */
static void test_channel_bad_input(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--max-message-bytes", "65536");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *ac = chan_open(s, &alice, NULL);
    /* refused relay data: answered where alice's relay data and relayClose
     * go, her main connection while nothing has been delivered to her */
    static const uint8_t garbage[] = {0x7f, 1, 2, 3};
    assert_int_equal(rdv_ws_send_binary(ac, garbage, sizeof garbage), 0);
    itest_expect_error(a, "invalid_field");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    relay_send_binary(ac, sid, PAYLOAD, sizeof PAYLOAD);
    relay_expect_error(a, "unknown_session", sid);
    /* what the codec refuses: on the channel */
    itest_send(ac, "{\"relayData\":{\"sessionID\":\"nope\",\"data\":\"AA==\"}}");
    itest_expect_error(ac, "invalid_field");
    itest_send(ac, "not json at all");
    itest_expect_error(ac, "bad_json");
    size_t big = 70000;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    huge[0] = RDV_RELAY_FRAME_KIND_DATA;
    (void)rdv_ws_send_binary(ac, huge, big);
    free(huge);
    itest_expect_error(ac, "too_large");
    itest_expect_close(ac, 1009);
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
    rdv_ws *ac2 = chan_open(s, &alice, NULL);
    itest_send(ac2, "{\"ping\":{}}");
    itest_expect(ac2, "pong");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_channel_carries_data),     ITEST(test_channel_needs_main),
        ITEST(test_channel_no_presence),      ITEST(test_channel_unsupported_type),
        ITEST(test_channel_lifetime),         ITEST(test_channel_replaced),
        ITEST(test_channel_off),              ITEST(test_channel_bad_input),
    };
    return ITEST_RUN(tests);
}
