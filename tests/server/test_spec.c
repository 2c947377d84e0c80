/* test_spec.c - server_spec: the answers PROTOCOL.md gives to the questions
 * an independent implementation asked (issue 18, "PROTOCOL.md with no gaps
 * an outsider trips on"), each checked against a real rendezvousd.
 *
 * - 2: a text frame that is not UTF-8 gets error bad_json and close 1007,
 *   before and after welcome, whatever the kind of bad sequence; a valid
 *   character split over continuation frames is fine.
 * - 6 step 3: a failed hello gets exactly one error (missing_field /
 *   invalid_field / auth_failed / stale_timestamp, with type and field as
 *   documented) and close 1008; bad_json before welcome keeps it open.
 * - 10 rate_limited: the n-th refusal since the bucket was last full closes
 *   with 1008, n = messageBurst clamped to 10..60000; a pause until the
 *   bucket is full starts the count again.
 * - 10 field: array items are `name[i]` (from 0), nested members dotted; a
 *   self-addressed offer blames toNodeID (during validation: before the
 *   sender, timestamp and signature checks).
 * - 4 / 7.1 replay: an exact copy of an offer / answer / iceCandidate the
 *   connection sent and the server routed (forwarded or queued) is refused
 *   (invalid_field, field signature) and neither forwarded nor queued; the
 *   same content signed again passes; a copy of a message refused before
 *   is not a replay; copies of relayOpen / relayReady are refused by the
 *   relay state; --replay-cache 0 turns the filter off.
 * - 9 relayClose: unknown session, node outside the session; the reason
 *   the peer gets (the sender's non-empty reason, closed_by_peer,
 *   peer_disconnected when the server closed the other side).
 */
#include "relay_util.h"

#include <unistd.h>

/* ---- section 2: UTF-8 ---------------------------------------------------- */

/* Sends text of n bytes on c and expects bad_json, then close 1007. */
static void expect_utf8_close(rdv_ws *c, const char *text, size_t n, const char *what)
{
    if (rdv_ws_send_text(c, text, n) != 0)
        fail_msg("%s: send failed", what);
    json_t *e = rdv_expect_error(c, "bad_json", T_MS);
    if (!e)
        fail_msg("%s: expected bad_json before the close", what);
    itest_expect_close(c, 1007);
}

static void test_spec_invalid_utf8_closes_1007(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    static const struct {
        const char *name, *bytes;
    } bad[] = {
        {"invalid bytes", "\xff\xfe"},
        {"truncated sequence", "\xc3"},
        {"overlong '/'", "\xc0\xaf"},
        {"overlong 3-byte", "\xe0\x80\xaf"},
        {"UTF-16 surrogate", "\xed\xa0\x80"},
        {"above U+10FFFF", "\xf4\x90\x80\x80"},
        {"lone continuation", "\x80"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rdv_ws *a = itest_node(s, &alice);
        char text[256];
        int n = snprintf(text, sizeof text, "{\"lookup\":{\"nodeIDs\":[\"%s\"],\"x\":\"a%sb\"}}",
                         bob.id, bad[i].bytes);
        expect_utf8_close(a, text, (size_t)n, bad[i].name);
    }
    /* Outside any JSON string, and before welcome: the same. */
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    json_decref(ch);
    expect_utf8_close(c, "\xff", 1, "before welcome");
    /* Others are unaffected. */
    itest_alive(b, bob.id);
}

static void test_spec_utf8_split_over_fragments(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_tn_init(&bob, "bob");
    char text[512];
    int n = snprintf(text, sizeof text,
                     "{\"lookup\":{\"nodeIDs\":[\"%s\"],\"requestID\":\"frag\",\"x\":\""
                     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x82\xac\xe2\x82\xac\xf0\x9f\x98\x80"
                     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}}",
                     bob.id);
    /* Find a fragment count whose boundaries cut a character in two. */
    size_t nfrag = 0;
    for (size_t k = 2; k < 40 && !nfrag; k++) {
        size_t step = (size_t)n / k;
        for (size_t f = 1; f < k; f++)
            if (((unsigned char)text[f * step] & 0xC0) == 0x80)
                nfrag = k;
    }
    assert_true(nfrag > 0);
    assert_int_equal(rdv_ws_send_fragments(a, text, (size_t)n, nfrag), 0);
    json_t *p = itest_expect(a, "presence");
    assert_string_equal(rdv_json_str(p, "requestID"), "frag");
}

/* ---- section 6 step 3: failed hello ------------------------------------ */

/* Connects, reads the challenge, sends the hello made by `make` and
 * expects exactly error `code` (type hello, `field` when not NULL) and
 * close 1008. */
static void expect_hello_refused(rdv_ts_server *s, const char *text_or_null,
                                 const char *nonce, const rdv_tn_forge *f, const char *drop,
                                 const char *code, const char *field)
{
    rdv_tn mallory;
    rdv_tn_init(&mallory, "mallory");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    size_t len;
    char *hello = text_or_null ? strdup(text_or_null)
                               : rdv_tn_hello(&mallory, ch, nonce, NULL, NULL, f, &len);
    json_decref(ch);
    if (drop) {
        json_t *root = json_loads(hello, 0, NULL);
        free(hello);
        json_object_del(json_object_get(root, "hello"), drop);
        hello = json_dumps(root, JSON_COMPACT);
        json_decref(root);
    }
    itest_send_free(c, hello);
    json_t *e = itest_expect_error(c, code);
    if (field) {
        assert_string_equal(rdv_json_str(e, "type"), "hello");
        assert_string_equal(rdv_json_str(e, "field"), field);
    }
    itest_expect_close(c, 1008);
}

static void test_spec_hello_failures(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn_forge stale = {.ts_offset_ms = -60000};
    expect_hello_refused(s, NULL, NULL, &stale, NULL, "stale_timestamp", "timestamp");
    rdv_tn_forge future = {.ts_offset_ms = 60000};
    expect_hello_refused(s, NULL, NULL, &future, NULL, "stale_timestamp", "timestamp");
    expect_hello_refused(s, NULL, NULL, NULL, "server", "missing_field", "server");
    expect_hello_refused(s, NULL, NULL, NULL, "signature", "missing_field", "signature");
    rdv_tn_forge badsig = {.bad_signature = true};
    expect_hello_refused(s, NULL, NULL, &badsig, NULL, "auth_failed", NULL);
    /* the nonce is checked before the timestamp: a stale hello for another
     * connection is auth_failed */
    expect_hello_refused(s, NULL,
                         "0000000000000000000000000000000000000000000000000000000000000001",
                         &stale, NULL, "auth_failed", NULL);

    /* Malformed text before welcome is answered and the connection stays:
     * a valid hello afterwards is welcomed. */
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    itest_send(c, "{\"hello\":");
    itest_expect_error(c, "bad_json");
    itest_send(c, "{\"hello\":1}");
    itest_expect_error(c, "bad_message");
    size_t len;
    char *hello = rdv_tn_hello(&alice, ch, NULL, NULL, NULL, NULL, &len);
    json_decref(ch);
    itest_send_free(c, hello);
    itest_expect(c, "welcome");
}

/* ---- section 10: rate_limited, "sustained" ------------------------------ */

/* Sends lookups one at a time and reads each answer until `stop_after`
 * rate_limited errors were seen or the connection closed. Returns the
 * number of rate_limited errors; *closed tells whether it closed. */
static int flood_until(rdv_ws *a, const char *id, int stop_after, bool *closed)
{
    char *req = rdv_tn_id_request("lookup", (const char *[]){id}, 1, NULL);
    int limited = 0;
    *closed = false;
    for (int i = 0; i < 10000 && limited < stop_after; i++) {
        if (rdv_ws_send_str(a, req) != 0)
            break;
        const char *type = NULL;
        json_t *m = rdv_ws_recv_json(a, T_MS, &type);
        if (!m || !type)
            break;
        if (!strcmp(type, "error")) {
            const char *code = rdv_json_str(json_object_get(m, "error"), "code");
            if (strcmp(code, "rate_limited") != 0)
                fail_msg("unexpected error %s during the flood", code);
            limited++;
        } else if (strcmp(type, "presence") != 0) {
            fail_msg("unexpected %s during the flood", type);
        }
    }
    free(req);
    if (rdv_ws_wait_closed(a, limited >= stop_after ? 300 : T_MS))
        *closed = true;
    return limited;
}

static void test_spec_rate_limited_sustained(void **state)
{
    (void)state;
    /* burst 5 is clamped up to 10 refusals */
    rdv_ts_server *s = START("--rate", "5", "--burst", "5");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    bool closed;
    /* nine refusals: still open */
    int n = flood_until(a, bob.id, 9, &closed);
    assert_int_equal(n, 9);
    assert_false(closed);
    /* a pause until the bucket is full again (5 tokens at 5/s: 1 s)
     * forgives them: ten more refusals are needed, the tenth closes */
    usleep(1300 * 1000);
    n = flood_until(a, bob.id, 1000, &closed);
    if (n != 10 || !closed)
        fail_msg("after a pause: %d rate_limited, closed %d (want 10, closed)", n, closed);
    assert_int_equal(rdv_ws_close_code(a), 1008);
    itest_alive(b, alice.id);

    /* Without a full bucket the count goes on: 9 refusals, the 300 ms
     * flood_until waits for a close (1.5 tokens, not 5), then the first
     * refusal after a message or two got through is the 10th. */
    a = itest_node(s, &alice);
    n = flood_until(a, bob.id, 9, &closed);
    assert_int_equal(n, 9);
    assert_false(closed);
    n = flood_until(a, bob.id, 1000, &closed);
    if (n != 1 || !closed)
        fail_msg("without a full bucket: %d rate_limited, closed %d (want 1, closed)", n,
                 closed);
    assert_int_equal(rdv_ws_close_code(a), 1008);
}

static void test_spec_rate_limited_burst_strikes(void **state)
{
    (void)state;
    /* burst 12 (over the clamp of 10): twelve refusals */
    rdv_ts_server *s = START("--rate", "1", "--burst", "12");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_tn_init(&bob, "bob");
    bool closed;
    int n = flood_until(a, bob.id, 1000, &closed);
    if (n != 12 || !closed)
        fail_msg("%d rate_limited, closed %d (want 12, closed)", n, closed);
    assert_int_equal(rdv_ws_close_code(a), 1008);
}

/* ---- section 10: field paths; self-addressed offer --------------------- */

static void test_spec_field_paths(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char text[512];

    /* the second item of nodeIDs (items count from 0) */
    snprintf(text, sizeof text, "{\"lookup\":{\"nodeIDs\":[\"%s\",\"XYZ\"]}}", bob.id);
    itest_send(a, text);
    json_t *e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "nodeIDs[1]");
    assert_string_equal(rdv_json_str(e, "type"), "lookup");
    snprintf(text, sizeof text, "{\"watch\":{\"nodeIDs\":[\"%s\",\"%s\",7],\"requestID\":\"w\"}}",
             bob.id, bob.id);
    itest_send(a, text);
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "nodeIDs[2]");
    assert_string_equal(rdv_json_str(e, "ref"), "w");

    /* a member of a nested object: dotted */
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    json_t *cand = json_pack("{s:s, s:i, s:s, s:i}", "ip", "10.0.0.5", "port", 0, "type", "host",
                             "priority", 1);
    json_t *body = json_pack("{s:s, s:s, s:o}", "toNodeID", bob.id, "sessionID", sid,
                             "candidate", cand);
    size_t len;
    itest_send_free(a, rdv_tn_sign_body(&alice, RDV_MSG_ICE_CANDIDATE, body, NULL, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "candidate.port");
    assert_string_equal(rdv_json_str(e, "ref"), sid);

    /* self-addressed offer: invalid_field on toNodeID, ref and type set */
    itest_send_free(a, rdv_tn_offer(&alice, alice.id, sid, NULL, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "toNodeID");
    assert_string_equal(rdv_json_str(e, "type"), "offer");
    assert_string_equal(rdv_json_str(e, "ref"), sid);
    /* ... blamed before the timestamp and the signature are looked at */
    rdv_tn_forge worse = {.ts_offset_ms = -600000, .bad_signature = true};
    itest_send_free(a, rdv_tn_offer(&alice, alice.id, sid, &worse, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "toNodeID");
    /* ... and before the sender check: it is part of validation (2) */
    rdv_tn_forge as_bob = {.from = bob.id};
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, sid, &as_bob, &len));
    e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "toNodeID");
    itest_send_free(a, rdv_tn_offer(&alice, alice.id, sid, &as_bob, &len));
    e = itest_expect_error(a, "sender_mismatch");
    assert_string_equal(rdv_json_str(e, "field"), "fromNodeID");
    itest_alive(a, bob.id);
    itest_alive(b, alice.id);
}

/* ---- sections 4 and 7.1: exact replays ----------------------------------- */

/* Sends text on a and expects the replay refusal (invalid_field on
 * signature, ref sid, type). */
static void expect_replay_refused(rdv_ws *a, const char *text, const char *sid,
                                  const char *type)
{
    itest_send(a, text);
    json_t *e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "signature");
    assert_string_equal(rdv_json_str(e, "type"), type);
    assert_string_equal(rdv_json_str(e, "ref"), sid);
}

static void test_spec_replay_dropped(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    char sid[RDV_UUID_STRLEN + 1];

    /* online: the first copy reaches bob, the second is refused */
    rdv_uuid_v4(sid);
    char *offer = rdv_tn_offer(&alice, bob.id, sid, NULL, &len);
    itest_send(a, offer);
    assert_int_equal(rdv_expect_bytes(b, offer, len, T_MS), 0);
    expect_replay_refused(a, offer, sid, "offer");
    /* the same content signed again (another timestamp) is a new message */
    rdv_tn_forge later = {.ts_offset_ms = 7};
    char *again = rdv_tn_offer(&alice, bob.id, sid, &later, &len);
    itest_send(a, again);
    assert_int_equal(rdv_expect_bytes(b, again, len, T_MS), 0);
    free(again);
    /* a copy re-serialised (whitespace added) has the same signature */
    size_t olen = strlen(offer);
    char *spaced = malloc(olen + 2);
    assert_non_null(spaced);
    spaced[0] = ' ';
    memcpy(spaced + 1, offer, olen + 1);
    expect_replay_refused(a, spaced, sid, "offer");
    free(spaced);
    free(offer);

    /* offline (carol never connected): queued once, the copy refused */
    rdv_tn carol;
    rdv_tn_init(&carol, "carol");
    rdv_uuid_v4(sid);
    char *ice = rdv_tn_ice(&alice, carol.id, sid, NULL, &len);
    itest_send(a, ice);
    itest_expect(a, "queued");
    expect_replay_refused(a, ice, sid, "iceCandidate");
    rdv_ws *c = itest_node(s, &carol);
    assert_int_equal(rdv_expect_bytes(c, ice, len, T_MS), 0);
    free(ice);
    itest_alive(c, alice.id); /* nothing else came first */

    /* a message the server refused (here: stale) is not remembered: its
     * exact copy gets the same error again, not the replay refusal */
    rdv_tn_forge old = {.ts_offset_ms = -40000};
    char *stale = rdv_tn_offer(&alice, bob.id, NULL, &old, &len);
    itest_send(a, stale);
    itest_expect_error(a, "stale_timestamp");
    itest_send(a, stale);
    itest_expect_error(a, "stale_timestamp");
    free(stale);

    /* relayOpen / relayReady: copies are refused by the relay state
     * (section 9.1: sessionID in use), not forwarded */
    rdv_uuid_v4(sid);
    char *open = relay_signed(&alice, RDV_MSG_RELAY_OPEN, bob.id, sid);
    itest_send(a, open);
    assert_int_equal(rdv_expect_bytes(b, open, strlen(open), T_MS), 0);
    itest_send(a, open);
    json_t *e = itest_expect_error(a, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "sessionID");
    free(open);
    char *ready = relay_signed(&bob, RDV_MSG_RELAY_READY, alice.id, sid);
    itest_send(b, ready);
    assert_int_equal(rdv_expect_bytes(a, ready, strlen(ready), T_MS), 0);
    itest_send(b, ready);
    e = itest_expect_error(b, "invalid_field");
    assert_string_equal(rdv_json_str(e, "field"), "sessionID");
    free(ready);
    relay_expect_nothing(a, bob.id);
    relay_expect_nothing(b, alice.id);
}

/* --replay-cache 2: the memory is bounded, the oldest signature is
 * forgotten first (its copy is routed again), the newer ones are kept. */
static void test_spec_replay_cache_bounded(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--replay-cache", "2");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    char *o[3];
    size_t len[3];
    char sid[3][RDV_UUID_STRLEN + 1];
    for (int i = 0; i < 3; i++) {
        rdv_uuid_v4(sid[i]);
        o[i] = rdv_tn_offer(&alice, bob.id, sid[i], NULL, &len[i]);
        itest_send(a, o[i]);
        assert_int_equal(rdv_expect_bytes(b, o[i], len[i], T_MS), 0);
    }
    /* the third and second are remembered */
    expect_replay_refused(a, o[2], sid[2], "offer");
    expect_replay_refused(a, o[1], sid[1], "offer");
    /* the first was forgotten when the third came: routed again */
    itest_send(a, o[0]);
    assert_int_equal(rdv_expect_bytes(b, o[0], len[0], T_MS), 0);
    for (int i = 0; i < 3; i++)
        free(o[i]);
    itest_alive(a, bob.id);
}

/* --replay-cache 0: the filter is off, an exact copy is routed again
 * (receivers drop it themselves, section 4). */
static void test_spec_replay_filter_off(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--replay-cache", "0");
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &len);
    itest_send(a, offer);
    itest_send(a, offer);
    assert_int_equal(rdv_expect_bytes(b, offer, len, T_MS), 0);
    assert_int_equal(rdv_expect_bytes(b, offer, len, T_MS), 0);
    free(offer);
    itest_alive(a, bob.id);
}

/* ---- section 9: relayClose ------------------------------------------------ */

static void test_spec_relay_close(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--max-message-bytes", "2048");
    rdv_tn alice, bob, eve;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *e = itest_join(s, &eve, "eve");
    char sid[RDV_UUID_STRLEN + 1], close[256];
    relay_establish(a, &alice, b, &bob, sid);

    /* a node outside the session: not_in_session, the session goes on */
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\"}}", sid);
    itest_send(e, close);
    json_t *err = itest_expect_error(e, "not_in_session");
    assert_string_equal(rdv_json_str(err, "ref"), sid);
    assert_string_equal(rdv_json_str(err, "type"), "relayClose");
    relay_expect_nothing(a, bob.id);
    relay_expect_nothing(b, alice.id);

    /* an empty reason is replaced by closed_by_peer */
    snprintf(close, sizeof close, "{\"relayClose\":{\"sessionID\":\"%s\",\"reason\":\"\"}}",
             sid);
    itest_send(b, close);
    relay_expect_close(a, sid, "closed_by_peer");
    relay_expect_nothing(b, alice.id);

    /* an unknown (here: already closed) session */
    itest_send(b, close);
    err = itest_expect_error(b, "unknown_session");
    assert_string_equal(rdv_json_str(err, "ref"), sid);
    assert_string_equal(rdv_json_str(err, "type"), "relayClose");

    /* the server closes one side (too_large): the other gets
     * peer_disconnected */
    relay_establish(a, &alice, b, &bob, sid);
    char big[4096];
    int n = snprintf(big, sizeof big, "{\"lookup\":{\"nodeIDs\":[\"%s\"],\"pad\":\"", bob.id);
    memset(big + n, 'x', 3000);
    strcpy(big + n + 3000, "\"}}");
    assert_int_equal(rdv_ws_send_text(a, big, strlen(big)), 0);
    itest_expect_error(a, "too_large");
    /* the closed side gets no relayClose: the close comes next */
    char *after = rdv_ws_recv(a, T_MS, NULL);
    if (after)
        fail_msg("after too_large, expected the close, got %.200s", after);
    itest_expect_close(a, 1009);
    relay_expect_close(b, sid, "peer_disconnected");
    itest_alive(b, bob.id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_spec_invalid_utf8_closes_1007),
        ITEST(test_spec_utf8_split_over_fragments),
        ITEST(test_spec_hello_failures),
        ITEST(test_spec_rate_limited_sustained),
        ITEST(test_spec_rate_limited_burst_strikes),
        ITEST(test_spec_field_paths),
        ITEST(test_spec_replay_dropped),
        ITEST(test_spec_replay_cache_bounded),
        ITEST(test_spec_replay_filter_off),
        ITEST(test_spec_relay_close),
    };
    return ITEST_RUN(tests);
}
