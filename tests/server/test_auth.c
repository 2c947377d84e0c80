/* test_auth.c - server_auth: the handshake of PROTOCOL.md section 6 against
 * a real rendezvousd.
 *
 * challenge fields; welcome fields (nodeID, observedIP 127.0.0.1,
 * observedPort, limits with defaults and with flags); bad signature, wrong
 * nonce, wrong server name, foreign nodeID, stale timestamp -> error + close
 * 1008; auth timeout; messages before welcome -> not_authenticated with
 * the connection kept; ping before welcome; replacement of a duplicate
 * node connection (4001); refusal of a foreign subprotocol; unknown hello
 * fields accepted (natType defaults to unknown); hello with a missing or
 * malformed field -> missing_field / invalid_field (or auth_failed) + 1008.
 */
#include "itest.h"

static bool is_hex(const char *s, size_t n)
{
    return strlen(s) == n && rdv_hex_valid(s, n, n);
}

static void check_limit(const json_t *limits, const char *key, long long want)
{
    json_t *v = json_object_get(limits, key);
    if (!json_is_integer(v))
        fail_msg("welcome.limits.%s missing or not an integer", key);
    if (json_integer_value(v) != want)
        fail_msg("welcome.limits.%s = %lld, expected %lld", key,
                 (long long)json_integer_value(v), want);
}

static void test_auth_success(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--name", "itest.example");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);

    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    assert_true(is_hex(rdv_json_str(ch, "nonce"), RDV_NONCE_HEXLEN));
    assert_string_equal(rdv_json_str(ch, "server"), "itest.example");
    assert_int_equal(rdv_json_int(ch, "version", -1), 1);
    long long now = rdv_now_ms();
    long long st = rdv_json_int(ch, "serverTime", 0);
    assert_true(st > now - 60000 && st < now + 60000);

    json_t *extra = json_pack("{s:s}", "natType", "symmetric");
    size_t len;
    char *hello = rdv_tn_hello(&alice, ch, NULL, NULL, extra, NULL, &len);
    json_decref(extra);
    json_decref(ch);
    itest_send_free(c, hello);

    json_t *w = itest_expect(c, "welcome");
    assert_string_equal(rdv_json_str(w, "nodeID"), alice.id);
    assert_string_equal(rdv_json_str(w, "observedIP"), "127.0.0.1");
    assert_int_equal(rdv_json_int(w, "observedPort", -1), rdv_ws_local_port(c));
    st = rdv_json_int(w, "serverTime", 0);
    assert_true(st > now - 60000 && st < now + 60000);
    json_t *limits = json_object_get(w, "limits");
    assert_true(json_is_object(limits));
    check_limit(limits, "maxMessageBytes", 65536);
    check_limit(limits, "messagesPerSecond", 50);
    check_limit(limits, "messageBurst", 100);
    check_limit(limits, "offlineTtlMs", 60000);
    check_limit(limits, "offlineQueueMax", 64);
    check_limit(limits, "maxWatches", 1024);
    check_limit(limits, "pingIntervalMs", 20000);
    check_limit(limits, "idleTimeoutMs", 60000);

    /* Presence shows the node online with the NAT type from hello. */
    json_t *e = itest_alive(c, alice.id);
    assert_true(json_is_true(json_object_get(e, "online")));
    assert_string_equal(rdv_json_str(e, "natType"), "symmetric");
    assert_true(rdv_json_int(e, "lastSeen", 0) > 0);
}

static void test_auth_limits_from_flags(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--max-message-bytes", "2048", "--rate", "7", "--burst", "9",
                             "--offline-ttl", "5000", "--offline-queue-max", "3",
                             "--max-watches", "11", "--ping-interval", "15000",
                             "--idle-timeout", "45000");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *w = rdv_tn_authenticate(c, &alice);
    assert_non_null(w);
    json_t *limits = json_object_get(w, "limits");
    check_limit(limits, "maxMessageBytes", 2048);
    check_limit(limits, "messagesPerSecond", 7);
    check_limit(limits, "messageBurst", 9);
    check_limit(limits, "offlineTtlMs", 5000);
    check_limit(limits, "offlineQueueMax", 3);
    check_limit(limits, "maxWatches", 11);
    check_limit(limits, "pingIntervalMs", 15000);
    check_limit(limits, "idleTimeoutMs", 45000);
}

static void test_auth_fresh_nonce(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_ws *a = itest_connect(s);
    rdv_ws *b = itest_connect(s);
    json_t *ca = rdv_tn_read_challenge(a, T_MS);
    json_t *cb = rdv_tn_read_challenge(b, T_MS);
    assert_non_null(ca);
    assert_non_null(cb);
    assert_string_not_equal(rdv_json_str(ca, "nonce"), rdv_json_str(cb, "nonce"));
    json_decref(ca);
    json_decref(cb);
}

/* Sends a hello built by the caller's variation; expects `code` then a
 * close with 1008. */
static void bad_hello(const char *nonce, const char *server, const rdv_tn_forge *f,
                      const char *code, const char *alt_code)
{
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn mallory;
    rdv_tn_init(&mallory, "mallory");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    size_t len;
    char *hello = rdv_tn_hello(&mallory, ch, nonce, server, NULL, f, &len);
    json_decref(ch);
    itest_send_free(c, hello);
    const char *got = NULL;
    json_t *root = rdv_ws_recv_json(c, T_MS, &got);
    json_t *body = root ? json_object_get(root, "error") : NULL;
    const char *gc = rdv_json_str(body, "code");
    if (!body || (strcmp(gc, code) != 0 && (!alt_code || strcmp(gc, alt_code) != 0))) {
        size_t l;
        const char *t = rdv_ws_last_text(c, &l);
        rdv_ts_dump_all_logs("bad hello");
        fail_msg("expected error %s%s%s, got %.*s", code, alt_code ? " or " : "",
                 alt_code ? alt_code : "", t ? (int)l : 7, t ? t : "nothing");
    }
    itest_expect_close(c, 1008);
    /* The server still serves others. */
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    itest_alive(a, alice.id);
}

static void test_auth_bad_signature(void **state)
{
    (void)state;
    rdv_tn_forge f = {.bad_signature = true};
    bad_hello(NULL, NULL, &f, "auth_failed", NULL);
}

static void test_auth_wrong_nonce(void **state)
{
    (void)state;
    bad_hello("0000000000000000000000000000000000000000000000000000000000000001", NULL, NULL,
              "auth_failed", NULL);
}

static void test_auth_wrong_server(void **state)
{
    (void)state;
    bad_hello(NULL, "some-other-server", NULL, "auth_failed", NULL);
}

static void test_auth_foreign_node_id(void **state)
{
    (void)state;
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_tn_forge f = {.from = alice.id}; /* claims alice, signed by mallory */
    bad_hello(NULL, NULL, &f, "auth_failed", NULL);
}

static void test_auth_stale_timestamp(void **state)
{
    (void)state;
    /* PROTOCOL.md 6.3: auth_failed or stale_timestamp, then closed. */
    rdv_tn_forge f = {.ts_offset_ms = -60000};
    bad_hello(NULL, NULL, &f, "stale_timestamp", "auth_failed");
}

static void test_auth_timeout(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--auth-timeout", "500");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    json_decref(ch);
    long long t0 = rdv_ts_mono_ms();
    itest_expect_error(c, "auth_timeout");
    long long dt = rdv_ts_mono_ms() - t0;
    assert_true(dt >= 300); /* not before the configured timeout */
    itest_expect_close(c, 1008);
}

static void test_auth_not_authenticated(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_tn_init(&bob, "bob");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);

    char *lk = rdv_tn_id_request("lookup", (const char *[]){bob.id}, 1, "r1");
    itest_send(c, lk);
    free(lk);
    itest_expect_error(c, "not_authenticated");

    size_t len;
    char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &len);
    itest_send_free(c, offer);
    itest_expect_error(c, "not_authenticated");

    char *w = rdv_tn_id_request("watch", (const char *[]){bob.id}, 1, NULL);
    itest_send(c, w);
    free(w);
    itest_expect_error(c, "not_authenticated");

    /* ping is allowed before welcome. */
    itest_send(c, "{\"ping\":{\"id\":\"p-1\"}}");
    json_t *pong = itest_expect(c, "pong");
    assert_string_equal(rdv_json_str(pong, "id"), "p-1");

    /* The connection stayed: the handshake still completes. */
    char *hello = rdv_tn_hello(&alice, ch, NULL, NULL, NULL, NULL, &len);
    json_decref(ch);
    itest_send_free(c, hello);
    json_t *wel = itest_expect(c, "welcome");
    assert_string_equal(rdv_json_str(wel, "nodeID"), alice.id);
    itest_alive(c, bob.id);
}

static void test_auth_replacement(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_tn_init(&alice, "alice");
    rdv_ws *first = itest_node(s, &alice);
    rdv_ws *second = itest_node(s, &alice);

    itest_expect_error(first, "replaced");
    itest_expect_close(first, 4001);

    /* The new connection is served and receives alice's traffic. */
    json_t *e = itest_alive(second, alice.id);
    assert_true(json_is_true(json_object_get(e, "online")));
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    char *offer = rdv_tn_offer(&bob, alice.id, NULL, NULL, &len);
    char *copy = strndup(offer, len);
    itest_send_free(b, offer);
    assert_int_equal(rdv_expect_bytes(second, copy, len, T_MS), 0);
    free(copy);
}

static void test_auth_wrong_subprotocol(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_ws *c = rdv_ws_connect_ex(rdv_ts_server_port(s), "/v1", "chat.v0", 3000);
    if (c) {
        rdv_ws_close(c);
        fail_msg("upgrade with subprotocol chat.v0 was accepted (PROTOCOL.md 1)");
    }
    /* The right one still works. */
    rdv_ws *ok = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(ok, T_MS);
    assert_non_null(ch);
    json_decref(ch);
}

static void test_auth_hello_forward_compat(void **state)
{
    (void)state;
    /* Unknown fields in hello are accepted (and signed); natType defaults
     * to unknown. */
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    json_t *extra = json_pack("{s:{s:[i,s,b]}, s:s}", "x-future", "caps", 3, "relay-v2", 1,
                              "zz", "\u00e9t\u00e9");
    size_t len;
    char *hello = rdv_tn_hello(&alice, ch, NULL, NULL, extra, NULL, &len);
    json_decref(extra);
    json_decref(ch);
    itest_send_free(c, hello);
    itest_expect(c, "welcome");
    json_t *e = itest_alive(c, alice.id);
    assert_string_equal(rdv_json_str(e, "natType"), "unknown");
}

/* A hello with a field removed or broken: an error of the allowed codes,
 * then close 1008. */
static void malformed_hello(const char *drop, const char *key, json_t *value,
                            const char *code1, const char *code2)
{
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn mallory;
    rdv_tn_init(&mallory, "mallory");
    rdv_ws *c = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(c, T_MS);
    assert_non_null(ch);
    json_t *body = json_pack("{s:s, s:s}", "nonce", rdv_json_str(ch, "nonce"), "server",
                             rdv_json_str(ch, "server"));
    json_decref(ch);
    if (key)
        json_object_set_new(body, key, value);
    size_t len;
    char *text = rdv_tn_sign_body(&mallory, RDV_MSG_HELLO, body, NULL, &len);
    assert_non_null(text);
    if (drop) {
        json_t *root = json_loads(text, 0, NULL);
        free(text);
        json_object_del(json_object_get(root, "hello"), drop);
        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
    }
    itest_send_free(c, text);
    const char *type;
    json_t *m = rdv_ws_recv_json(c, T_MS, &type);
    const char *got = m && type && !strcmp(type, "error")
                          ? rdv_json_str(json_object_get(m, "error"), "code")
                          : "(no error)";
    if (strcmp(got, code1) != 0 && strcmp(got, code2) != 0)
        fail_msg("malformed hello (%s%s): got %s, expected %s or %s", drop ? "without " : "",
                 drop ? drop : key, got, code1, code2);
    itest_expect_close(c, 1008);
}

static void test_auth_hello_missing_server(void **state)
{
    (void)state;
    malformed_hello("server", NULL, NULL, "missing_field", "auth_failed");
}

static void test_auth_hello_missing_signature(void **state)
{
    (void)state;
    malformed_hello("signature", NULL, NULL, "missing_field", "auth_failed");
}

static void test_auth_hello_bad_node_id(void **state)
{
    (void)state;
    malformed_hello(NULL, "nodeID", json_string("NOT-A-NODE-ID"), "invalid_field",
                    "auth_failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_auth_success),
        ITEST(test_auth_limits_from_flags),
        ITEST(test_auth_fresh_nonce),
        ITEST(test_auth_bad_signature),
        ITEST(test_auth_wrong_nonce),
        ITEST(test_auth_wrong_server),
        ITEST(test_auth_foreign_node_id),
        ITEST(test_auth_stale_timestamp),
        ITEST(test_auth_timeout),
        ITEST(test_auth_not_authenticated),
        ITEST(test_auth_replacement),
        ITEST(test_auth_wrong_subprotocol),
        ITEST(test_auth_hello_forward_compat),
        ITEST(test_auth_hello_missing_server),
        ITEST(test_auth_hello_missing_signature),
        ITEST(test_auth_hello_bad_node_id),
    };
    return ITEST_RUN(tests);
}
