/* test_presence_limit.c - server_presence_limit: the presence scanning
 * limit (PROTOCOL.md section 8, "Scanning limit"): every node ID named in
 * a lookup, and every ID a watch adds, takes a token of the connection's
 * bucket (--presence-rate per minute, --presence-burst but never less than
 * --max-watches); a request that needs more tokens than are left is
 * refused whole with rate_limited (ref = requestID, type, field nodeIDs)
 * and the connection stays. IDs already watched and unwatch cost nothing.
 * welcome announces the limit; --presence-rate 0 turns it off.
 */
#include "itest.h"

#include <sodium.h>
#include <unistd.h>

#define NIDS 200

static char ids[NIDS][RDV_NODE_ID_HEXLEN + 1];

/* ids[] filled with distinct random node IDs (nobody's). */
static void make_ids(void)
{
    for (int i = 0; i < NIDS; i++) {
        uint8_t pk[RDV_NODE_ID_BYTES];
        randombytes_buf(pk, sizeof pk);
        rdv_node_id_from_pk(pk, ids[i]);
    }
}

/* Sends `type` of ids[from .. from+n-1] with requestID rid. */
static void request(rdv_ws *c, const char *type, int from, int n, const char *rid)
{
    const char *list[RDV_MAX_IDS_PER_REQUEST];
    for (int i = 0; i < n; i++)
        list[i] = ids[from + i];
    itest_send_free(c, rdv_tn_id_request(type, list, (size_t)n, rid));
}

/* Expects the presence answer to rid with n peers. */
static void expect_presence(rdv_ws *c, const char *rid, int n)
{
    json_t *p = itest_expect(c, "presence");
    assert_string_equal(rdv_json_str(p, "requestID"), rid);
    assert_int_equal(json_array_size(json_object_get(p, "peers")), n);
}

/* Expects the scanning refusal of the request rid of type. */
static void expect_refused(rdv_ws *c, const char *type, const char *rid)
{
    json_t *e = itest_expect_error(c, "rate_limited");
    assert_string_equal(rdv_json_str(e, "ref"), rid);
    assert_string_equal(rdv_json_str(e, "type"), type);
    assert_string_equal(rdv_json_str(e, "field"), "nodeIDs");
}

/* The connection still answers (ping: a lookup would take a token). */
static void expect_ping(rdv_ws *c)
{
    itest_send(c, "{\"ping\":{\"id\":\"still-here\"}}");
    json_t *p = itest_expect(c, "pong");
    assert_string_equal(rdv_json_str(p, "id"), "still-here");
}

static void test_lookup_and_watch_limited(void **state)
{
    (void)state;
    make_ids();
    /* one token a minute: nothing comes back during the test */
    rdv_ts_server *s = START("--presence-rate", "1", "--presence-burst", "100", "--max-watches",
                             "60");
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");

    /* 64 + 36 IDs: the whole bucket */
    request(a, "lookup", 0, 64, "l1");
    expect_presence(a, "l1", 64);
    request(a, "lookup", 64, 36, "l2");
    expect_presence(a, "l2", 36);
    /* one more is refused, whole, and the connection stays */
    request(a, "lookup", 100, 1, "l3");
    expect_refused(a, "lookup", "l3");
    request(a, "watch", 100, 2, "w1");
    expect_refused(a, "watch", "w1");
    expect_ping(a);
    /* the refused watch added nothing: unwatch of them is harmless, and
     * no push comes for them */
    request(a, "unwatch", 100, 2, NULL);
    expect_ping(a);
    assert_true(rdv_ts_server_log_clean(s));
}

static void test_watched_ids_are_free(void **state)
{
    (void)state;
    make_ids();
    rdv_ts_server *s = START("--presence-rate", "1", "--presence-burst", "100", "--max-watches",
                             "60");
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    /* watch 50 (50 tokens), look up 50 others (the other 50) */
    request(a, "watch", 0, 50, "w1");
    expect_presence(a, "w1", 50);
    request(a, "lookup", 50, 50, "l1");
    expect_presence(a, "l1", 50);
    /* watching the same 50 again costs nothing */
    request(a, "watch", 0, 50, "w2");
    expect_presence(a, "w2", 50);
    /* a watch that adds one new ID is refused */
    request(a, "watch", 49, 2, "w3");
    expect_refused(a, "watch", "w3");
    /* unwatch is free; watching again after it costs again */
    request(a, "unwatch", 0, 10, NULL);
    request(a, "watch", 0, 1, "w4");
    expect_refused(a, "watch", "w4");
    expect_ping(a);
    /* the bucket belongs to the connection: a new one of the same node
     * starts full (and the old one is replaced) */
    rdv_ws *a2 = itest_node(s, &alice);
    request(a2, "lookup", 100, 64, "l2");
    expect_presence(a2, "l2", 64);
    (void)a;
}

static void test_burst_at_least_max_watches(void **state)
{
    (void)state;
    make_ids();
    /* burst 10 but --max-watches 150: the bucket holds 150, so a node can
     * watch its whole set right after connecting */
    rdv_ts_server *s = START("--presence-rate", "1", "--presence-burst", "10", "--max-watches",
                             "150");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *a = itest_connect(s);
    json_t *welcome = rdv_tn_authenticate(a, &alice);
    assert_non_null(welcome);
    json_t *lim = json_object_get(welcome, "limits");
    assert_int_equal(json_integer_value(json_object_get(lim, "presenceIDBurst")), 150);
    for (int i = 0; i < 2; i++) {
        char rid[8];
        snprintf(rid, sizeof rid, "w%d", i);
        request(a, "watch", i * 64, 64, rid);
        expect_presence(a, rid, 64);
    }
    request(a, "watch", 128, 22, "w2");
    expect_presence(a, "w2", 22);
    request(a, "lookup", 150, 1, "l1");
    expect_refused(a, "lookup", "l1");
}

static void test_refill_and_welcome(void **state)
{
    (void)state;
    make_ids();
    /* 6000 a minute: 100 a second */
    rdv_ts_server *s = START("--presence-rate", "6000", "--presence-burst", "64",
                             "--max-watches", "10");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *a = itest_connect(s);
    json_t *welcome = rdv_tn_authenticate(a, &alice);
    assert_non_null(welcome);
    json_t *lim = json_object_get(welcome, "limits");
    assert_int_equal(json_integer_value(json_object_get(lim, "presenceIDsPerMinute")), 6000);
    assert_int_equal(json_integer_value(json_object_get(lim, "presenceIDBurst")), 64);
    request(a, "lookup", 0, 64, "l1");
    expect_presence(a, "l1", 64);
    /* after a second at least 100 tokens came back (64 kept) */
    usleep(1000 * 1000);
    request(a, "lookup", 64, 64, "l2");
    expect_presence(a, "l2", 64);
}

static void test_off(void **state)
{
    (void)state;
    make_ids();
    rdv_ts_server *s = START("--presence-rate", "0", "--presence-burst", "1", "--max-watches",
                             "1");
    rdv_tn alice;
    rdv_tn_init(&alice, "alice");
    rdv_ws *a = itest_connect(s);
    json_t *welcome = rdv_tn_authenticate(a, &alice);
    assert_non_null(welcome);
    json_t *lim = json_object_get(welcome, "limits");
    assert_int_equal(json_integer_value(json_object_get(lim, "presenceIDsPerMinute")), 0);
    for (int i = 0; i < 10; i++) {
        char rid[8];
        snprintf(rid, sizeof rid, "l%d", i);
        request(a, "lookup", (i % 3) * 64, 64, rid);
        expect_presence(a, rid, 64);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_lookup_and_watch_limited),
        ITEST(test_watched_ids_are_free),
        ITEST(test_burst_at_least_max_watches),
        ITEST(test_refill_and_welcome),
        ITEST(test_off),
    };
    return ITEST_RUN(tests);
}
