/* test_unit.c - client_unit: the pure parts of librendezvous without a
 * server: URL parsing, the reconnect backoff, verification of received
 * signed messages (recipient, signature, freshness, replay), the public
 * helpers (session IDs, NAT and path names, error strings), the version
 * and the log handler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/backoff.h"
#include "client/client.h"
#include "client/log.h"
#include "schema/ids.h"
#include "schema/sign.h"

static void test_url(void **state)
{
    (void)state;
    rdv__url u;
    assert_int_equal(rdv__url_parse("ws://127.0.0.1:8080/v1", &u), 0);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.path, "/v1");
    assert_int_equal(rdv__url_parse("wss://rdv.example.net", &u), 0);
    assert_true(u.tls);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/v1");
    assert_int_equal(rdv__url_parse("WS://[2001:db8::1]:9/x/v1?a=b", &u), 0);
    assert_string_equal(u.host, "2001:db8::1");
    assert_int_equal(u.port, 9);
    assert_string_equal(u.path, "/x/v1?a=b");
    assert_int_equal(rdv__url_parse("ws://h/", &u), 0);
    assert_string_equal(u.path, "/v1");
    assert_int_equal(u.port, 80);
    const char *bad[] = {"", "http://h/", "ws://", "ws://:80/", "ws://h:0/",
                         "ws://h:70000", "ws://h:x", "ws://[::1/", "ws://[]/",
                         "ws://u@h/", "ws://h#frag", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(rdv__url_parse(bad[i], &u), RDV_ERR_INVALID);
}

/* server_url with several instances: commas, spaces around them; bad
 * lists (an empty or bad member, more than RDV__MAX_URLS) refused. */
static void test_url_list(void **state)
{
    (void)state;
    rdv__url u[RDV__MAX_URLS];
    static char text[RDV__MAX_URLS][RDV__URL_TEXT];
    int n = -1;
    assert_int_equal(rdv__url_list_parse("ws://a:1/v1", u, text, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rdv__url_list_parse(" ws://a:1/v1 , wss://b ,ws://[::1]:3", u, text, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(text[0], "ws://a:1/v1");
    assert_string_equal(u[1].host, "b");
    assert_true(u[1].tls);
    assert_string_equal(text[2], "ws://[::1]:3");
    assert_int_equal(u[2].port, 3);
    const char *bad[] = {"", ",", "ws://a,", ",ws://a", "ws://a,,ws://b", "ws://a,http://b",
                         "ws://1,ws://2,ws://3,ws://4,ws://5,ws://6,ws://7,ws://8,ws://9", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(rdv__url_list_parse(bad[i], u, text, &n), RDV_ERR_INVALID);
}

static void test_backoff(void **state)
{
    (void)state;
    rdv_reconnect_policy p = {.initial_backoff_ms = 500, .max_backoff_ms = 30000,
                              .jitter_percent = 0};
    assert_int_equal(rdv__backoff_ms(&p, 0, 0), 500);
    assert_int_equal(rdv__backoff_ms(&p, 1, 0), 1000);
    assert_int_equal(rdv__backoff_ms(&p, 5, 0), 16000);
    assert_int_equal(rdv__backoff_ms(&p, 6, 0), 30000);
    assert_int_equal(rdv__backoff_ms(&p, 1000, 0), 30000); /* no overflow */
    p.jitter_percent = 50;
    assert_int_equal(rdv__backoff_ms(&p, 0, 0), 500);
    int64_t lo = rdv__backoff_ms(&p, 0, UINT32_MAX);
    assert_true(lo >= 250 && lo <= 251);
    for (uint32_t r = 0; r < 1000; r++) {
        int64_t d = rdv__backoff_ms(&p, 3, randombytes_random());
        assert_true(d >= 2000 && d <= 4000);
    }
    p.jitter_percent = 100;
    assert_true(rdv__backoff_ms(&p, 0, UINT32_MAX) >= 0);
}

/* A signed offer from `from` to `to`, timestamp ts. */
static void make_offer(rdv_msg *m, const uint8_t sk[64], const char *from,
                       const char *to, int64_t ts)
{
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    json_t *ci = json_pack("{s:s, s:i, s:s, s:i, s:s}", "publicIP", "0.0.0.0",
                           "publicPort", 0, "localIP", "10.0.0.1", "localPort", 1,
                           "natType", "unknown");
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:o}", "fromNodeID", from,
                             "toNodeID", to, "sessionID", sid, "timestamp",
                             (json_int_t)ts, "connectionInfo", ci);
    assert_int_equal(rdv_sig_sign(RDV_MSG_OFFER, body, sk), 0);
    m->type = RDV_MSG_OFFER;
    m->body = body;
    m->root = rdv_msg_wrap(RDV_MSG_OFFER, body);
}

static void test_verify(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    uint8_t pa[32], sa[64], pb[32], sb[64];
    crypto_sign_keypair(pa, sa);
    crypto_sign_keypair(pb, sb);
    char a[65], b[65];
    rdv_node_id_from_pk(pa, a);
    rdv_node_id_from_pk(pb, b);
    rdv__fresh fresh = {RDV_FRESH_PAST_MS, RDV_FRESH_FUTURE_MS};
    rdv__replay rc;
    assert_int_equal(rdv__replay_init(&rc), 0);
    int64_t now = rdv_now_ms();

    rdv_msg m;
    make_offer(&m, sa, a, b, now);
    assert_int_equal(rdv__verify_routed(&m, b, now, &fresh, &rc), 0);
    assert_int_equal(rdv__verify_routed(&m, b, now, &fresh, &rc), RDV_ERR_DUPLICATE);
    assert_int_equal(rdv__verify_routed(&m, a, now, &fresh, &rc), RDV_ERR_MISROUTED);
    /* freshness: 120 s past, 30 s future, in the given (server) time */
    assert_int_equal(rdv__verify_routed(&m, b, now + RDV_FRESH_PAST_MS + 1, &fresh, NULL),
                     RDV_ERR_STALE);
    assert_int_equal(rdv__verify_routed(&m, b, now - RDV_FRESH_FUTURE_MS - 1, &fresh, NULL),
                     RDV_ERR_STALE);
    assert_int_equal(rdv__verify_routed(&m, b, now + RDV_FRESH_PAST_MS, &fresh, NULL), 0);
    /* altered after signing */
    json_object_set_new(m.body, "sessionID", json_string("6f9619ff-8b86-4d01-b42d-00cf4fc964ff"));
    assert_int_equal(rdv__verify_routed(&m, b, now, &fresh, NULL), RDV_ERR_BAD_SIGNATURE);
    rdv_msg_free(&m);
    /* signed by a key other than fromNodeID's */
    make_offer(&m, sb, a, b, now);
    assert_int_equal(rdv__verify_routed(&m, b, now, &fresh, &rc), RDV_ERR_BAD_SIGNATURE);
    rdv_msg_free(&m);
    /* from self */
    make_offer(&m, sb, b, b, now);
    assert_int_equal(rdv__verify_routed(&m, b, now, &fresh, &rc), RDV_ERR_MISROUTED);
    rdv_msg_free(&m);

    /* Two distinct messages with the same timestamp are both accepted. */
    rdv_msg m1, m2;
    make_offer(&m1, sa, a, b, now + 5);
    make_offer(&m2, sa, a, b, now + 5);
    assert_int_equal(rdv__verify_routed(&m1, b, now, &fresh, &rc), 0);
    assert_int_equal(rdv__verify_routed(&m2, b, now, &fresh, &rc), 0);
    rdv_msg_free(&m1);
    rdv_msg_free(&m2);

    /* The cache is bounded: many more messages than slots. */
    for (int i = 0; i < RDV__REPLAY_SLOTS + 10; i++) {
        make_offer(&m, sa, a, b, now);
        assert_int_equal(rdv__verify_routed(&m, b, now, &fresh, &rc), 0);
        rdv_msg_free(&m);
    }
    assert_int_equal(rc.used, RDV__REPLAY_SLOTS);
    rdv__replay_free(&rc);
}

static void test_helpers(void **state)
{
    (void)state;
    char s1[RDV_SESSION_ID_LEN + 1], s2[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(s1);
    rdv_session_id_generate(s2);
    assert_true(rdv_uuid_valid(s1, strlen(s1)));
    assert_string_not_equal(s1, s2);
    assert_int_equal(s1[14], '4');
    assert_string_equal(rdv_nat_type_name(RDV_NAT_PORT_RESTRICTED), "portRestricted");
    assert_int_equal(rdv_nat_type_from_name("symmetric"), RDV_NAT_SYMMETRIC);
    assert_int_equal(rdv_nat_type_from_name("bogus"), RDV_NAT_UNKNOWN);
    assert_string_equal(rdv_nat_type_name((rdv_nat_type)99), "unknown");
    assert_string_equal(rdv_state_name(RDV_STATE_AUTHENTICATED), "authenticated");
    assert_true(rdv_node_id_is_valid("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
    assert_false(rdv_node_id_is_valid("D75A"));
    assert_false(rdv_node_id_is_valid(NULL));
    for (int e = RDV_ERR_INVALID; e >= RDV_ERR_BAD_URL; e--)
        assert_string_not_equal(rdv_strerror(e), "unknown error");
    assert_string_equal(rdv_strerror(-1000), "unknown error");
    assert_string_equal(rdv_path_name(RDV_PATH_DIRECT), "Direct");
    assert_string_equal(rdv_path_name(RDV_PATH_RELAYED), "Relayed");
    assert_string_equal(rdv_path_name(RDV_PATH_UNKNOWN), "Unknown");
    assert_string_equal(rdv_log_level_name(RDV_LOG_WARN), "warn");
}

/* The version macros come from CMake's project version, and the library
 * reports the version it was built as. */
static void test_version(void **state)
{
    (void)state;
    assert_string_equal(RDV_VERSION_STRING, RDV_TEST_PROJECT_VERSION);
    assert_string_equal(rdv_version(), RDV_TEST_PROJECT_VERSION);
    char v[32];
    snprintf(v, sizeof(v), "%d.%d.%d", RDV_VERSION_MAJOR, RDV_VERSION_MINOR, RDV_VERSION_PATCH);
    assert_string_equal(v, RDV_TEST_PROJECT_VERSION);
    assert_int_equal(RDV_VERSION_NUMBER,
                     RDV_VERSION_MAJOR * 10000 + RDV_VERSION_MINOR * 100 + RDV_VERSION_PATCH);
}

/* ---- the log handler ---- */

#define LOG_MAX 64
struct log_seen {
    int n;
    rdv_log_level level[LOG_MAX];
    char text[LOG_MAX][RDV__LOG_LINE_MAX];
};

static void on_log(rdv_log_level level, const char *message, void *user_ptr)
{
    struct log_seen *s = user_ptr;
    if (s->n < LOG_MAX) {
        s->level[s->n] = level;
        snprintf(s->text[s->n], sizeof(s->text[0]), "%s", message);
        s->n++;
    }
}

/* A TCP port on loopback where nothing listens. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Runs a client to a closed port until it gives up (one attempt). */
static void run_refused_client(void)
{
    rdv_identity id;
    assert_int_equal(rdv_identity_generate(&id), 0);
    char url[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/v1", closed_port());
    rdv_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = url;
    cfg.identity = &id;
    cfg.stun_disable = 1;
    cfg.reconnect.max_attempts = 1;
    rdv_client *c = NULL;
    assert_int_equal(rdv_client_create(&cfg, &c), 0);
    rdv_identity_wipe(&id);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = rdv_client_fd(c), .events = POLLIN};
        (void)poll(&p, 1, rdv_client_timeout_ms(c));
        assert_int_equal(rdv_client_process(c), 0);
        if (rdv_client_state(c) == RDV_STATE_FAILED)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 30); /* bounded */
    }
    rdv_client_destroy(c);
}

/* The library's messages reach the handler with a level; a level above
 * max_level is filtered; after rdv_log_set_handler(.., NULL, ..) the
 * handler is no longer called. */
static void test_log_handler(void **state)
{
    (void)state;
    struct log_seen all;
    memset(&all, 0, sizeof(all));
    rdv_log_set_handler(RDV_LOG_DEBUG, on_log, &all);
    run_refused_client();
    int found = -1;
    for (int i = 0; i < all.n; i++)
        if (all.level[i] == RDV_LOG_ERROR && strstr(all.text[i], "127.0.0.1") &&
            strstr(all.text[i], "giving up"))
            found = i;
    assert_true(found >= 0);
    assert_null(strchr(all.text[found], '\n'));

    struct log_seen errors_only;
    memset(&errors_only, 0, sizeof(errors_only));
    rdv_log_set_handler(RDV_LOG_ERROR, on_log, &errors_only);
    run_refused_client();
    assert_true(errors_only.n >= 1);
    for (int i = 0; i < errors_only.n; i++)
        assert_int_equal(errors_only.level[i], RDV_LOG_ERROR);

    rdv_log_set_handler(RDV_LOG_DEBUG, NULL, NULL);
    int before = all.n + errors_only.n;
    run_refused_client();
    assert_int_equal(all.n + errors_only.n, before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_url_list),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_log_handler),
    };
    return cmocka_run_group_tests_name("client_unit", tests, NULL, NULL);
}
