/* test_session.c - relay_session: the relay session state machine of a
 * real rendezvousd (PROTOCOL.md section 9).
 *
 * Consent: relayData (text and binary) before relayReady -> no_consent and
 * nothing delivered; after it, both forms arrive byte-identical both ways.
 * A third node's relayData / relayReady / relayClose -> not_in_session and
 * never delivered; the opener's own relayReady -> invalid_field. Unknown
 * sessions and malformed binary frames are refused. Sessions end on
 * relayClose (the sender's reason, or closed_by_peer), on disconnect
 * (peer_disconnected), when idle (short --relay-idle-timeout) and when a
 * side's connection is replaced (replaced). relayOpen to an offline node
 * -> peer_offline, never queued. --relay-max-sessions is enforced, and the
 * session gauge of /metrics follows. A stopping server closes sessions
 * with reason shutting_down.
 */
#include "relay_util.h"

#include <signal.h>

static const uint8_t hello_payload[] = "hello B, this is A";

static void test_relay_consent_required(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *open = relay_signed(&alice, RDV_MSG_RELAY_OPEN, bob.id, sid);
    itest_send(a, open);
    assert_int_equal(rdv_expect_bytes(b, open, strlen(open), T_MS), 0);
    free(open);
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"opening\"}"), 1);

    /* OPENING: data from either side is refused and not delivered */
    relay_send_text(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "no_consent", sid);
    relay_send_binary(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "no_consent", sid);
    relay_send_binary(b, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(b, "no_consent", sid);
    relay_expect_nothing(b, alice.id);
    relay_expect_nothing(a, bob.id);

    /* consent */
    char *ready = relay_signed(&bob, RDV_MSG_RELAY_READY, alice.id, sid);
    itest_send(b, ready);
    assert_int_equal(rdv_expect_bytes(a, ready, strlen(ready), T_MS), 0);
    free(ready);
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"open\"}"), 1);
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"opening\"}"), 0);

    /* OPEN: both forms, both ways, forwarded unchanged */
    size_t len;
    char *t = relay_text(sid, hello_payload, sizeof hello_payload, &len);
    assert_int_equal(rdv_ws_send_text(a, t, len), 0);
    relay_expect_any(b, t, len, false);
    free(t);
    uint8_t *f = relay_frame(sid, hello_payload, sizeof hello_payload, &len);
    assert_int_equal(rdv_ws_send_binary(b, f, len), 0);
    relay_expect_any(a, f, len, true);
    free(f);
    /* an empty payload is a valid datagram */
    f = relay_frame(sid, NULL, 0, &len);
    assert_int_equal(rdv_ws_send_binary(a, f, len), 0);
    relay_expect_any(b, f, len, true);
    free(f);
    assert_int_equal(relay_metric(s, "rendezvous_relay_messages_total"), 3);
    assert_int_equal(relay_metric(s, "rendezvous_relay_bytes_total"),
                     2 * (long long)sizeof hello_payload);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"no_consent\"}"), 3);
}

static void test_relay_third_node_refused(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob, eve;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *e = itest_join(s, &eve, "eve");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);

    relay_send_text(e, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(e, "not_in_session", sid);
    relay_send_binary(e, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(e, "not_in_session", sid);
    /* eve cannot consent, close or re-open it either */
    char *ready = relay_signed(&eve, RDV_MSG_RELAY_READY, alice.id, sid);
    itest_send(e, ready);
    free(ready);
    relay_expect_error(e, "not_in_session", sid);
    char close[128];
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\"}}", sid);
    itest_send(e, close);
    relay_expect_error(e, "not_in_session", sid);
    char *open = relay_signed(&eve, RDV_MSG_RELAY_OPEN, bob.id, sid);
    itest_send(e, open);
    free(open);
    relay_expect_error(e, "invalid_field", sid);
    /* the opener cannot consent for the recipient */
    ready = relay_signed(&alice, RDV_MSG_RELAY_READY, bob.id, sid);
    itest_send(a, ready);
    free(ready);
    relay_expect_error(a, "invalid_field", sid);
    /* an impersonated relayReady is a sender_mismatch before anything */
    json_t *body = json_pack("{s:s, s:s}", "toNodeID", alice.id, "sessionID", sid);
    size_t len;
    char *forged = rdv_tn_sign_body(&eve, RDV_MSG_RELAY_READY, body,
                                    &(rdv_tn_forge){.from = bob.id}, &len);
    itest_send(e, forged);
    free(forged);
    relay_expect_error(e, "sender_mismatch", sid);

    relay_expect_nothing(a, bob.id);
    relay_expect_nothing(b, alice.id);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_dropped_messages_total{reason=\"not_in_session\"}"), 2);
    /* the session still works for its owners */
    relay_send_binary(a, sid, hello_payload, sizeof hello_payload);
    uint8_t *f = relay_frame(sid, hello_payload, sizeof hello_payload, &len);
    relay_expect_any(b, f, len, true);
    free(f);
}

static void test_relay_unknown_session(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    relay_send_text(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "unknown_session", sid);
    relay_send_binary(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "unknown_session", sid);
    char *ready = relay_signed(&alice, RDV_MSG_RELAY_READY, bob.id, sid);
    itest_send(a, ready);
    free(ready);
    relay_expect_error(a, "unknown_session", sid);
    char close[128];
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\"}}", sid);
    itest_send(a, close);
    relay_expect_error(a, "unknown_session", sid);
    /* malformed binary frames: unknown kind, short header */
    uint8_t bad[RDV_RELAY_FRAME_HEADER + 4] = {0x02};
    assert_int_equal(rdv_ws_send_binary(a, bad, sizeof bad), 0);
    itest_expect_error(a, "invalid_field");
    bad[0] = RDV_RELAY_FRAME_KIND_DATA;
    assert_int_equal(rdv_ws_send_binary(a, bad, RDV_RELAY_FRAME_HEADER - 1), 0);
    itest_expect_error(a, "invalid_field");
    /* text relayData with bad base64 is invalid_field (codec) */
    char badtext[160];
    snprintf(badtext, sizeof badtext,
             "{\"relayData\":{\"data\":\"not base64!\",\"sessionID\":\"%s\"}}", sid);
    itest_send(a, badtext);
    itest_expect_error(a, "invalid_field");
    relay_expect_nothing(b, alice.id);
    itest_alive(a, bob.id);
}

static void test_relay_close_message(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    char close[160];
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\",\"reason\":\"done\"}}",
             sid);
    itest_send(a, close);
    relay_expect_close(b, sid, "done");
    relay_expect_nothing(a, bob.id); /* the closer gets no echo */
    relay_send_binary(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "unknown_session", sid);
    relay_send_text(b, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(b, "unknown_session", sid);

    /* the recipient may refuse an OPENING session; no reason given */
    char sid2[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid2);
    char *open = relay_signed(&alice, RDV_MSG_RELAY_OPEN, bob.id, sid2);
    itest_send(a, open);
    assert_int_equal(rdv_expect_bytes(b, open, strlen(open), T_MS), 0);
    free(open);
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\"}}", sid2);
    itest_send(b, close);
    relay_expect_close(a, sid2, "closed_by_peer");
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"open\"}"), 0);
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"opening\"}"), 0);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_sessions_closed_total{reason=\"closed_by_peer\"}"), 2);
}

static void test_relay_close_on_disconnect(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *c = itest_join(s, &carol, "carol");
    char sid[RDV_UUID_STRLEN + 1], sid2[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    relay_establish(c, &carol, a, &alice, sid2);
    /* alice vanishes without a close frame: both her sessions end */
    rdv_ws_abort(a);
    relay_expect_close(b, sid, "peer_disconnected");
    relay_expect_close(c, sid2, "peer_disconnected");
    relay_send_binary(b, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(b, "unknown_session", sid);
    /* a normal close does the same */
    char sid3[RDV_UUID_STRLEN + 1];
    relay_establish(b, &bob, c, &carol, sid3);
    rdv_ws_close(b);
    relay_expect_close(c, sid3, "peer_disconnected");
    assert_int_equal(relay_metric(s, "rendezvous_relay_sessions{state=\"open\"}"), 0);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_sessions_closed_total{reason=\"peer_disconnected\"}"),
        3);
}

static void test_relay_close_on_idle(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--relay-idle-timeout", "1500");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    /* traffic keeps it open past the timeout */
    size_t len;
    uint8_t *f = relay_frame(sid, hello_payload, sizeof hello_payload, &len);
    long long t0 = rdv_ts_mono_ms();
    while (rdv_ts_mono_ms() - t0 < 2500) {
        assert_int_equal(rdv_ws_send_binary(a, f, len), 0);
        relay_expect_any(b, f, len, true);
        rdv_ws_service(a, 400);
    }
    free(f);
    /* then silence: both sides are told, within timeout + sweep period */
    long long quiet = rdv_ts_mono_ms();
    relay_expect_close(a, sid, "idle");
    relay_expect_close(b, sid, "idle");
    long long took = rdv_ts_mono_ms() - quiet;
    if (took < 1000 || took > 4000)
        fail_msg("idle close after %lld ms of silence (timeout 1500)", took);
    relay_send_binary(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "unknown_session", sid);
}

static void test_relay_replaced_closes(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_ws *a = itest_node(s, &alice);
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    /* alice reconnects: the old connection and its sessions go */
    rdv_ws *a2 = itest_node(s, &alice);
    itest_expect_error(a, "replaced");
    itest_expect_close(a, 4001);
    relay_expect_close(b, sid, "replaced");
    /* the new connection does not inherit the session */
    relay_send_binary(a2, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a2, "unknown_session", sid);
    relay_expect_nothing(b, alice.id);
    /* and may open a new one */
    char sid2[RDV_UUID_STRLEN + 1];
    relay_establish(a2, &alice, b, &bob, sid2);
    assert_int_equal(
        relay_metric(s, "rendezvous_relay_sessions_closed_total{reason=\"replaced\"}"), 1);
}

static void test_relay_open_offline_peer(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *open = relay_signed(&alice, RDV_MSG_RELAY_OPEN, bob.id, sid);
    itest_send(a, open);
    free(open);
    relay_expect_error(a, "peer_offline", sid);
    assert_int_equal(relay_metric(s, "rendezvous_offline_queue_depth"), 0);
    /* bob connects later: nothing was queued for him */
    rdv_ws *b = itest_node(s, &bob);
    relay_expect_nothing(b, alice.id);
    /* the session was never created */
    relay_send_binary(a, sid, hello_payload, sizeof hello_payload);
    relay_expect_error(a, "unknown_session", sid);
}

static void test_relay_session_limit(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--relay-max-sessions", "2");
    rdv_tn alice, bob, carol;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *c = itest_join(s, &carol, "carol");
    char s1[RDV_UUID_STRLEN + 1], s2[RDV_UUID_STRLEN + 1], s3[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, s1);
    relay_establish(a, &alice, c, &carol, s2);
    rdv_uuid_v4(s3);
    char *open = relay_signed(&alice, RDV_MSG_RELAY_OPEN, bob.id, s3);
    itest_send(a, open);
    free(open);
    relay_expect_error(a, "limit_exceeded", s3);
    relay_expect_nothing(b, alice.id);
    /* bob (1 session) may open to alice, but alice (2) cannot consent */
    open = relay_signed(&bob, RDV_MSG_RELAY_OPEN, alice.id, s3);
    itest_send(b, open);
    assert_int_equal(rdv_expect_bytes(a, open, strlen(open), T_MS), 0);
    free(open);
    char *ready = relay_signed(&alice, RDV_MSG_RELAY_READY, bob.id, s3);
    itest_send(a, ready);
    relay_expect_error(a, "limit_exceeded", s3);
    /* after closing one, the same relayReady goes through */
    char close[128];
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\"}}", s2);
    itest_send(a, close);
    relay_expect_close(c, s2, "closed_by_peer");
    itest_send(a, ready);
    assert_int_equal(rdv_expect_bytes(b, ready, strlen(ready), T_MS), 0);
    free(ready);
    /* the limit is announced in welcome */
    rdv_tn dave;
    rdv_tn_init(&dave, "dave");
    rdv_ws *d = rdv_ws_connect(rdv_ts_server_port(s));
    assert_non_null(d);
    json_t *w = rdv_tn_authenticate(d, &dave);
    assert_non_null(w);
    json_t *lim = json_object_get(w, "limits");
    assert_int_equal(rdv_json_int(lim, "maxRelaySessions", -1), 2);
    assert_int_equal(rdv_json_int(lim, "maxRelayPayload", -1), 16384);
    /* and in /status, with the sessions */
    char *body = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/status", &body, T_MS), 200);
    json_t *st = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    json_t *relay = json_object_get(st, "relay");
    assert_int_equal(rdv_json_int(relay, "sessionsOpen", -1), 2);
    assert_int_equal(rdv_json_int(json_object_get(relay, "limits"), "maxSessions", -1), 2);
    json_decref(st);
}

static void test_relay_close_on_shutdown(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char sid[RDV_UUID_STRLEN + 1];
    relay_establish(a, &alice, b, &bob, sid);
    assert_int_equal(rdv_ts_server_signal(s, SIGTERM), 0);
    /* whichever side is closed first, the other is told why its session
     * ended; then both get shutting_down and a 1001 close */
    const char *type = NULL;
    json_t *m = rdv_ws_recv_json(a, T_MS, &type);
    assert_non_null(m);
    if (!strcmp(type, "relayClose")) {
        assert_string_equal(rdv_json_str(json_object_get(m, type), "reason"), "shutting_down");
        itest_expect_error(a, "shutting_down");
    } else {
        assert_string_equal(type, "error");
        assert_string_equal(rdv_json_str(json_object_get(m, type), "code"), "shutting_down");
    }
    itest_expect_close(a, 1001);
    m = rdv_ws_recv_json(b, T_MS, &type);
    assert_non_null(m);
    if (!strcmp(type, "relayClose"))
        assert_string_equal(rdv_json_str(json_object_get(m, type), "reason"), "shutting_down");
    itest_expect_close(b, 1001);
    assert_int_equal(rdv_ts_server_wait_exit(s, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_relay_consent_required),  ITEST(test_relay_third_node_refused),
        ITEST(test_relay_unknown_session),   ITEST(test_relay_close_message),
        ITEST(test_relay_close_on_disconnect), ITEST(test_relay_close_on_idle),
        ITEST(test_relay_replaced_closes),   ITEST(test_relay_open_offline_peer),
        ITEST(test_relay_session_limit),    ITEST(test_relay_close_on_shutdown),
    };
    return ITEST_RUN(tests);
}
