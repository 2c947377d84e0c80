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
 *
 * These run with --verify-inline 0 (every check on a worker). With the
 * default share the loop checks by itself at light load: messages spaced
 * out never reach a worker, and order still holds when bursts move checks
 * between the loop and the workers.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#define ORDER_SENDERS 3
#define ORDER_COUNT 10000
#define ORDER_BURST 100
#define SRV_TEST_WINDOW_MS 10 /* rendezvous/vpool.h SRV_VPOOL_INLINE_WINDOW_MS */

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

static unsigned long long metric_of(rdv_ts_server *s, const char *name);

/* Sends count numbered messages from each sender in bursts; checks that
 * each sender's arrive complete and in order. */
static void order_run(rdv_ts_server *s, int count)
{
    rdv_tn senders[ORDER_SENDERS], rx;
    rdv_ws *sc[ORDER_SENDERS];
    static const char *const labels[ORDER_SENDERS] = {"order-a", "order-b", "order-c"};
    for (int i = 0; i < ORDER_SENDERS; i++)
        sc[i] = itest_join(s, &senders[i], labels[i]);
    rdv_ws *r = itest_join(s, &rx, "order-rx");
    int next[ORDER_SENDERS] = {0};
    int got = 0;
    for (int base = 0; base < count; base += ORDER_BURST) {
        for (int i = 0; i < ORDER_SENDERS; i++) {
            for (int k = base; k < base + ORDER_BURST && k < count; k++) {
                char *text = numbered(&senders[i], rx.id, k);
                int rc = rdv_ws_queue_text(sc[i], text, strlen(text));
                free(text);
                assert_int_equal(rc, 0);
            }
        }
        for (int i = 0; i < ORDER_SENDERS; i++)
            assert_int_equal(rdv_ws_flush(sc[i], T_MS), 0);
        int want = ORDER_SENDERS * (base + ORDER_BURST < count ? base + ORDER_BURST : count);
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
        assert_int_equal(next[i], count);
        /* nothing was refused: no error waits for any sender */
        json_decref(itest_alive(sc[i], rx.id));
    }
}

static void test_order_kept_with_workers(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--verify-inline", "0", "--rate", "1000000",
                             "--burst", "1000000");
    order_run(s, ORDER_COUNT);
    assert_int_equal(metric_of(s, "rendezvous_verify_inline_total"), 0);
}

/* The default share: the loop checks a window's first messages itself and
 * hands the rest of a burst to the workers; order holds across the
 * switches. */
static void test_order_kept_mixed(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--rate", "1000000", "--burst", "1000000");
    order_run(s, ORDER_COUNT / 4);
    assert_true(metric_of(s, "rendezvous_verify_inline_total") > 0);
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
    rdv_ts_server *s = START("--verify-threads", "2", "--verify-inline", "0", "--rate", "1000000", "--burst", "1000000");
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

static unsigned long long metric_of(rdv_ts_server *s, const char *name)
{
    char *m = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &m, T_MS), 200);
    unsigned long long v = metric_value(m, name);
    free(m);
    return v;
}

static unsigned long long offloaded(rdv_ts_server *s)
{
    return metric_of(s, "rendezvous_verify_offloaded_total");
}

/* Receives on r the next message, which must be tx's number k. */
static void expect_numbered(rdv_ws *r, const rdv_tn *tx, int k)
{
    size_t len = 0;
    char *got = rdv_ws_recv(r, T_MS, &len);
    int seq = -1;
    if (!got || parse_received(got, tx, 1, &seq) != 0 || seq != k)
        fail_msg("message %d due, got %.200s", k, got ? got : "(nothing)");
    free(got);
}

/* Light load with the default --verify-inline: hellos and messages one
 * at a time, more than a window apart, are all checked by the loop itself
 * (no hand-off, no worker wake-up); a bad signature is still refused. */
#define LIGHT_COUNT 20
static void test_light_load_inline(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--rate", "1000000", "--burst", "1000000");
    rdv_tn rx, tx;
    rdv_ws *r = itest_join(s, &rx, "light-rx");
    rdv_ws *c = itest_join(s, &tx, "light-tx");
    for (int k = 0; k < LIGHT_COUNT; k++) {
        struct timespec gap = {0, (SRV_TEST_WINDOW_MS + 2) * 1000000L};
        nanosleep(&gap, NULL);
        char *text = numbered(&tx, rx.id, k);
        itest_send(c, text);
        free(text);
        expect_numbered(r, &tx, k);
    }
    assert_int_equal(offloaded(s), 0);
    /* the two hellos and every scanned message; numbered() writes each 7th
     * one non-canonical, and the parsing path verifies on the loop anyway */
    int scanned = 0;
    for (int k = 0; k < LIGHT_COUNT; k++)
        scanned += k % 7 != 0;
    assert_int_equal(metric_of(s, "rendezvous_verify_inline_total"), 2 + scanned);
    /* a forged signature checked inline is refused as on a worker */
    char *text = numbered(&tx, rx.id, LIGHT_COUNT);
    char *sig = strstr(text, "\"signature\":\"");
    assert_non_null(sig);
    sig += strlen("\"signature\":\"");
    sig[0] = sig[0] == '0' ? '1' : '0'; /* still lowercase hex, another signature */
    itest_send(c, text);
    free(text);
    json_decref(itest_expect_error(c, "bad_signature"));
    json_decref(itest_alive(r, rx.id));
}

/* The loop behind (vpool.h): messages that arrive while the loop runs late
 * go to the workers whatever the --verify-inline share, in order. Here the
 * server is stopped 300 ms with them waiting in its socket: when it
 * resumes, its 50 ms tick is long overdue. */
#define BEHIND_COUNT 6
static void test_behind_offloads(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--rate", "1000000", "--burst", "1000000");
    rdv_tn rx, tx;
    rdv_ws *r = itest_join(s, &rx, "behind-rx");
    rdv_ws *c = itest_join(s, &tx, "behind-tx");
    unsigned long long before = offloaded(s);
    unsigned long long inl = metric_of(s, "rendezvous_verify_inline_total");
    assert_int_equal(kill(rdv_ts_server_pid(s), SIGSTOP), 0);
    for (int k = 1; k <= BEHIND_COUNT; k++) { /* k % 7 != 0: all scanned */
        char *text = numbered(&tx, rx.id, k);
        assert_int_equal(rdv_ws_queue_text(c, text, strlen(text)), 0);
        free(text);
    }
    assert_int_equal(rdv_ws_flush(c, T_MS), 0);
    usleep(300 * 1000);
    assert_int_equal(kill(rdv_ts_server_pid(s), SIGCONT), 0);
    for (int k = 1; k <= BEHIND_COUNT; k++) {
        expect_numbered(r, &tx, k);
    }
    assert_int_equal(offloaded(s) - before, BEHIND_COUNT);
    assert_int_equal(metric_of(s, "rendezvous_verify_inline_total"), inl);
}

#define EARLY_COUNT 50
static void test_hello_on_workers(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--verify-threads", "2", "--verify-inline", "0", "--rate", "1000000", "--burst", "1000000");
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
        cmocka_unit_test_teardown(test_order_kept_mixed, itest_teardown),
        cmocka_unit_test_teardown(test_light_load_inline, itest_teardown),
        cmocka_unit_test_teardown(test_behind_offloads, itest_teardown),
        cmocka_unit_test_teardown(test_sent_before_hangup, itest_teardown),
        cmocka_unit_test_teardown(test_hello_on_workers, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
