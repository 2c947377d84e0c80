/* test_order.c - server_order: signatures are verified on several worker
 * threads (--verify-threads, rendezvous/vpool.h), yet every node's
 * messages reach their recipient in the order the node sent them
 * (issue 15).
 *
 * Three senders each send ORDER_COUNT signed messages with a sequence
 * number (an unknown field, covered by the signature) to one receiver, in
 * bursts of ORDER_BURST back to back, all three bursts at once: offers,
 * answers and iceCandidates (the fast path, verified by a worker), and
 * every 7th one written with odd whitespace (the parsing path, which must
 * wait behind the ones still at a worker). The receiver checks that each
 * sender's numbers arrive complete and in order. With 2 workers a later
 * message of a sender is often verified before an earlier one. Also run
 * under ThreadSanitizer (scripts/test-tsan).
 *
 * The hello's signature is checked on the workers too: a node that sends
 * its hello and, without waiting for welcome, its first messages, gets
 * welcome first and then has every message routed in order; hellos with a
 * bad signature still fail; /metrics counts the signatures checked there.
 */
#include "itest.h"

#define ORDER_SENDERS 3
#define ORDER_COUNT 10000
#define ORDER_BURST 100

/* The signed text of sender n's message number seq to `to`. */
static char *numbered(const rdv_tn *n, const char *to, int seq)
{
    static const rdv_msg_type types[] = {RDV_MSG_OFFER, RDV_MSG_ANSWER, RDV_MSG_ICE_CANDIDATE};
    rdv_msg_type type = types[seq % 3];
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    json_t *body = json_pack("{s:s, s:s, s:i}", "toNodeID", to, "sessionID", sid, "seq", seq);
    assert_non_null(body);
    if (type == RDV_MSG_ICE_CANDIDATE)
        json_object_set_new(body, "candidate",
                            json_pack("{s:s, s:i, s:s, s:I}", "ip", "192.168.1.20", "port",
                                      51820, "type", "host", "priority",
                                      (json_int_t)2130706431));
    else
        json_object_set_new(body, "connectionInfo", rdv_tn_connection_info());
    size_t len = 0;
    char *text = rdv_tn_sign_body(n, type, body, NULL, &len);
    assert_non_null(text);
    if (seq % 7 == 0) {
        /* same JSON with a space after the envelope's colon: not canonical,
         * so the server parses it instead of scanning it */
        char *colon = strchr(text, ':');
        assert_non_null(colon);
        char *odd = malloc(len + 2);
        assert_non_null(odd);
        size_t head = (size_t)(colon - text) + 1;
        memcpy(odd, text, head);
        odd[head] = ' ';
        memcpy(odd + head + 1, text + head, len - head + 1);
        free(text);
        text = odd;
    }
    return text;
}

/* Index among senders[0..n) and sequence number of a received message,
 * from its fromNodeID and "seq"; -1 when not found. */
static int parse_received(const char *text, const rdv_tn *senders, int n, int *seq)
{
    const char *p = strstr(text, "\"seq\":");
    const char *f = strstr(text, "\"fromNodeID\":\"");
    if (!p || !f)
        return -1;
    *seq = atoi(p + 6);
    f += strlen("\"fromNodeID\":\"");
    for (int i = 0; i < n; i++)
        if (!strncmp(f, senders[i].id, RDV_NODE_ID_HEXLEN))
            return i;
    return -1;
}

static void test_order_kept_with_workers(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--rate", "1000000", "--burst", "1000000");
    rdv_tn senders[ORDER_SENDERS], rx;
    rdv_ws *sc[ORDER_SENDERS];
    static const char *const labels[ORDER_SENDERS] = {"order-a", "order-b", "order-c"};
    for (int i = 0; i < ORDER_SENDERS; i++)
        sc[i] = itest_join(s, &senders[i], labels[i]);
    rdv_ws *r = itest_join(s, &rx, "order-rx");
    int next[ORDER_SENDERS] = {0};
    int got = 0;
    for (int base = 0; base < ORDER_COUNT; base += ORDER_BURST) {
        for (int i = 0; i < ORDER_SENDERS; i++) {
            for (int k = base; k < base + ORDER_BURST && k < ORDER_COUNT; k++) {
                char *text = numbered(&senders[i], rx.id, k);
                int rc = rdv_ws_queue_text(sc[i], text, strlen(text));
                free(text);
                assert_int_equal(rc, 0);
            }
        }
        for (int i = 0; i < ORDER_SENDERS; i++)
            assert_int_equal(rdv_ws_flush(sc[i], T_MS), 0);
        int want = ORDER_SENDERS * (base + ORDER_BURST < ORDER_COUNT ? base + ORDER_BURST
                                                                     : ORDER_COUNT);
        while (got < want) {
            size_t len = 0;
            char *text = rdv_ws_recv(r, T_MS, &len);
            if (!text)
                fail_msg("received %d of %d messages", got, want);
            int seq = -1, who = parse_received(text, senders, ORDER_SENDERS, &seq);
            if (who < 0)
                fail_msg("unexpected message: %.200s", text);
            if (seq != next[who])
                fail_msg("sender %d: message %d arrived where %d was due", who, seq, next[who]);
            free(text);
            next[who]++;
            got++;
        }
    }
    for (int i = 0; i < ORDER_SENDERS; i++) {
        assert_int_equal(next[i], ORDER_COUNT);
        /* nothing was refused: no error waits for any sender */
        json_decref(itest_alive(sc[i], rx.id));
    }
}

/* A node that sends a burst and hangs up at once (rdv listen --count 1
 * answers and exits): every message it sent before its close reaches the
 * recipient, in order, though most were still at a worker when the
 * connection closed (srv_vpool_conn_flush). Both ways of hanging up: a
 * close frame, and the TCP connection dropped without one. */
#define HANGUP_COUNT 300
static void test_sent_before_hangup(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--rate", "1000000", "--burst", "1000000");
    rdv_tn rx;
    rdv_ws *r = itest_join(s, &rx, "hangup-rx");
    static const char *const labels[2] = {"hangup-close", "hangup-abort"};
    for (int way = 0; way < 2; way++) {
        rdv_tn tx;
        rdv_ws *c = itest_join(s, &tx, labels[way]);
        for (int k = 0; k < HANGUP_COUNT; k++) {
            char *text = numbered(&tx, rx.id, k);
            assert_int_equal(rdv_ws_queue_text(c, text, strlen(text)), 0);
            free(text);
        }
        assert_int_equal(rdv_ws_flush(c, T_MS), 0);
        if (way == 0)
            rdv_ws_close(c);
        else
            rdv_ws_abort(c);
        for (int k = 0; k < HANGUP_COUNT; k++) {
            size_t len = 0;
            char *text = rdv_ws_recv(r, T_MS, &len);
            if (!text)
                fail_msg("%s: received %d of the %d messages sent before the hang-up",
                         labels[way], k, HANGUP_COUNT);
            int seq = -1;
            int who = parse_received(text, &tx, 1, &seq);
            if (who != 0 || seq != k)
                fail_msg("%s: message %d due, got %.200s", labels[way], k, text);
            free(text);
        }
    }
    json_decref(itest_alive(r, rx.id));
}

/* The value of the un-labelled metric `name` in the /metrics text m. */
static unsigned long long metric_value(const char *m, const char *name)
{
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(m, key);
    if (!p)
        fail_msg("%s missing from /metrics", name);
    return strtoull(p + strlen(key), NULL, 10);
}

static unsigned long long offloaded(rdv_ts_server *s)
{
    char *m = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &m, T_MS), 200);
    unsigned long long v = metric_value(m, "rendezvous_verify_offloaded_total");
    free(m);
    return v;
}

#define EARLY_COUNT 50
static void test_hello_on_workers(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--rate", "1000000", "--burst", "1000000");
    rdv_tn rx, tx;
    rdv_ws *r = itest_join(s, &rx, "early-rx");
    /* rx's hello, the one signature so far, was checked on a worker */
    assert_int_equal(offloaded(s), 1);

    /* hello, then EARLY_COUNT messages, all written before welcome */
    rdv_tn_init(&tx, "early-tx");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    size_t len = 0;
    char *hello = rdv_tn_hello(&tx, ch, NULL, NULL, NULL, NULL, &len);
    json_decref(ch);
    assert_non_null(hello);
    assert_int_equal(rdv_ws_queue_text(c, hello, len), 0);
    free(hello);
    for (int k = 0; k < EARLY_COUNT; k++) {
        char *text = numbered(&tx, rx.id, k);
        assert_int_equal(rdv_ws_queue_text(c, text, strlen(text)), 0);
        free(text);
    }
    assert_int_equal(rdv_ws_flush(c, T_MS), 0);
    json_decref(itest_expect(c, "welcome"));
    for (int k = 0; k < EARLY_COUNT; k++) {
        char *text = rdv_ws_recv(r, T_MS, &len);
        if (!text)
            fail_msg("received %d of the %d messages sent before welcome", k, EARLY_COUNT);
        int seq = -1;
        if (parse_received(text, &tx, 1, &seq) != 0 || seq != k)
            fail_msg("message %d due, got %.200s", k, text);
        free(text);
    }

    /* a hello whose signature does not verify: auth_failed, closed 1008 */
    rdv_tn_forge f = {.bad_signature = true};
    rdv_ws *m = itest_connect(s);
    ch = rdv_tn_read_challenge(m, T_MS);
    assert_non_null(ch);
    hello = rdv_tn_hello(&tx, ch, NULL, NULL, NULL, &f, &len);
    json_decref(ch);
    assert_non_null(hello);
    itest_send(m, hello);
    free(hello);
    json_decref(itest_expect_error(m, "auth_failed"));
    itest_expect_close(m, 1008);
    rdv_ws_close(m);
    json_decref(itest_alive(r, rx.id));
    rdv_ws_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_order_kept_with_workers, itest_teardown),
        cmocka_unit_test_teardown(test_sent_before_hangup, itest_teardown),
        cmocka_unit_test_teardown(test_hello_on_workers, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
