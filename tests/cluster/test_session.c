/* test_session.c - cluster_session: the duplicate-session rule across
 * instances (issue 14).
 *
 * Node alice connects to instance 1, then the same identity to instance
 * 2: the first connection is closed with 4001 (replaced), the second
 * works, alice stays online for a lookup on instance 3 (the end of the
 * old connection does not mark her offline), and an offer to her from
 * instance 3 reaches the new connection, not the queue.
 */
#include "cluster.h"

static void test_cluster_duplicate_session(void **state)
{
    (void)state;
    cl c;
    cl_up(&c, NULL);
    rdv_tn alice, carol;
    rdv_tn_init(&alice, "alice");
    rdv_ws *c3 = itest_join(c.inst[2], &carol, "carol");
    rdv_ws *a1 = itest_node(c.inst[0], &alice);
    cl_expect_online(c3, &alice, true);

    rdv_ws *a2 = itest_node(c.inst[1], &alice);
    itest_expect_close(a1, 4001);
    itest_alive(a2, alice.id);

    /* Still online once the old connection's end went through. */
    cl_sleep_ms(500);
    assert_true(cl_online(c3, alice.id, NULL));

    size_t len;
    char *offer = rdv_tn_offer(&carol, alice.id, NULL, NULL, &len);
    assert_non_null(offer);
    if (rdv_ws_send_text(c3, offer, len) != 0) {
        free(offer);
        fail_msg("send failed");
    }
    cl_expect_bytes_free(a2, offer, len, T_MS, "offer to the new connection");
    itest_alive(c3, alice.id); /* no `queued` for carol */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_cluster_duplicate_session),
    };
    return ITEST_RUN(tests);
}
