/* test_crash_burst.c - fault_crash_burst: SIGKILL while offline messages
 * are being queued and delivered under load.
 *
 * Eight senders send offers, each with a unique sessionID, to four
 * recipients that keep connecting (taking their queue), reading and
 * dropping off, so the server queues and delivers at the same time; the
 * server is killed in the middle of the burst, restarted on the same
 * database, and the recipients collect what is left (the kill lands right
 * after the server answered an offer of the current round, while the
 * others are still arriving). Sequence check by
 * sessionID: every offer answered `queued` is delivered exactly once
 * (before or after the crash; the TTL, 90 s, is longer than the test); no
 * offer is delivered twice; no offer refused is ever delivered. Offers
 * without an answer before the crash (or routed to a recipient that was
 * online) may be delivered once or not at all.
 */
#include <signal.h>
#include <stdlib.h>

#include "itest.h"
#include "fault.h"

#define SENDERS 8
#define RECIPIENTS 4
#define ROUNDS 120      /* offers per sender */
#define QUIET_ROUND 60
#define KILL_ROUND 77   /* the kill comes while the burst goes on */
#define MAX_OFFERS (SENDERS * ROUNDS)

typedef struct offer_rec {
    char sid[RDV_UUID_STRLEN + 1];
    int queued;    /* `queued` answers */
    int refused;   /* `error` answers */
    int delivered; /* times a recipient got it */
} offer_rec;

static offer_rec offers[MAX_OFFERS];
static int noffers;

static offer_rec *find(const char *sid)
{
    for (int i = 0; i < noffers; i++)
        if (!strcmp(offers[i].sid, sid))
            return &offers[i];
    return NULL;
}

/* Takes every message waiting on a sender's connection. */
static void drain_sender(rdv_ws *c, int timeout_ms)
{
    const char *type = NULL;
    json_t *root;
    while (c && (root = rdv_ws_recv_json(c, timeout_ms, &type)) != NULL) {
        json_t *body = json_object_get(root, type);
        if (!strcmp(type, "queued")) {
            offer_rec *o = find(rdv_json_str(body, "sessionID"));
            assert_non_null(o);
            o->queued++;
        } else if (!strcmp(type, "error")) {
            offer_rec *o = find(rdv_json_str(body, "ref"));
            if (!o)
                fail_msg("error without a known ref: %s", rdv_ws_last_text(c, NULL));
            o->refused++;
            fprintf(stderr, "refused: %s\n", rdv_ws_last_text(c, NULL));
        }
        timeout_ms = 0;
    }
}

/* Counts an offer a recipient got; returns false for anything else. */
static bool count_delivery(const char *type, json_t *root)
{
    if (strcmp(type, "offer") != 0)
        return false;
    offer_rec *o = find(rdv_json_str(json_object_get(root, type), "sessionID"));
    assert_non_null(o);
    o->delivered++;
    return true;
}

/* Recipient connects, gets its backlog (sent before the answer to a
 * lookup) and anything routed meanwhile. Returns the connection or NULL
 * when the server is gone. */
static rdv_ws *collect(int port, const rdv_tn *r, const char *look_id)
{
    rdv_ws *c = rdv_tn_connect(port, r);
    if (!c)
        return NULL;
    char *q = rdv_tn_id_request("lookup", (const char *const[]){look_id}, 1, NULL);
    assert_non_null(q);
    int rc = rdv_ws_send_str(c, q);
    free(q);
    if (rc != 0)
        return c;
    const char *type = NULL;
    json_t *root;
    while ((root = rdv_ws_recv_json(c, T_MS, &type)) != NULL) {
        if (count_delivery(type, root))
            continue;
        if (!strcmp(type, "presence"))
            break;
    }
    return c;
}

/* Everything a recipient's connection still holds (after a crash). */
static void drain_recipient(rdv_ws *c)
{
    const char *type = NULL;
    json_t *root;
    while (c && (root = rdv_ws_recv_json(c, 200, &type)) != NULL)
        (void)count_delivery(type, root);
}

static void test_crash_burst(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--rate", "100000", "--burst", "100000", "--offline-queue-max",
                             "100000", "--offline-ttl", "90000");
    int port = rdv_ts_server_port(s);
    rdv_tn snd[SENDERS], rcp[RECIPIENTS];
    rdv_ws *sc[SENDERS];
    rdv_ws *rc[RECIPIENTS] = {NULL};
    for (int i = 0; i < SENDERS; i++) {
        char label[32];
        snprintf(label, sizeof label, "sender%d", i);
        sc[i] = itest_join(s, &snd[i], label);
    }
    for (int i = 0; i < RECIPIENTS; i++) {
        char label[32];
        snprintf(label, sizeof label, "recipient%d", i);
        rdv_tn_init(&rcp[i], label);
    }

    bool killed = false;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < SENDERS; i++) {
            offer_rec *o = &offers[noffers++];
            rdv_uuid_v4(o->sid);
            size_t len = 0;
            char *t = rdv_tn_offer(&snd[i], rcp[(round + i) % RECIPIENTS].id, o->sid, NULL,
                                   &len);
            assert_non_null(t);
            (void)rdv_ws_queue_text(sc[i], t, len); /* fails once the server is gone */
            free(t);
        }
        for (int i = 0; i < SENDERS; i++) {
            (void)rdv_ws_flush(sc[i], killed ? 0 : T_MS);
            drain_sender(sc[i], 0);
        }
        /* one recipient comes or goes every few rounds; from QUIET_ROUND
         * on only recipient 0 does (the others stay offline: everything
         * for them is queued right up to the kill) */
        if (round == QUIET_ROUND)
            for (int r = 1; r < RECIPIENTS; r++) {
                drain_recipient(rc[r]);
                rdv_ws_abort(rc[r]);
                rc[r] = NULL;
            }
        if (!killed && round % 3 == 0) {
            int r = round < QUIET_ROUND ? (round / 3) % RECIPIENTS : 0;
            if (rc[r]) {
                drain_recipient(rc[r]);
                rdv_ws_abort(rc[r]);
                rc[r] = NULL;
            } else {
                rc[r] = collect(port, &rcp[r], snd[0].id);
            }
        }
        if (round == KILL_ROUND) {
            /* right after the server answered one of this round's offers
             * (the others still on their way): `queued` must mean stored */
            drain_sender(sc[SENDERS - 1], 2000);
            assert_int_equal(rdv_ts_server_signal(s, SIGKILL), 0);
            killed = true;
        }
    }
    assert_int_equal(rdv_ts_server_wait_exit(s, 10000), 128 + SIGKILL);
    /* what reached the test before the crash */
    for (int i = 0; i < SENDERS; i++) {
        drain_sender(sc[i], 200);
        rdv_ws_abort(sc[i]);
    }
    for (int i = 0; i < RECIPIENTS; i++) {
        drain_recipient(rc[i]);
        rdv_ws_abort(rc[i]);
        rc[i] = NULL;
    }

    int queued = 0, before = 0;
    for (int i = 0; i < noffers; i++) {
        queued += offers[i].queued > 0;
        before += offers[i].delivered;
    }
    if (rdv_ts_server_restart(s) != 0)
        fail_msg("restart on the same database failed");
    port = rdv_ts_server_port(s);
    for (int i = 0; i < RECIPIENTS; i++) {
        rdv_ws *c = collect(port, &rcp[i], snd[0].id);
        assert_non_null(c);
        rdv_ws_close(c);
    }

    int lost = 0, dup = 0, refused_delivered = 0, unknown = 0, after = 0;
    for (int i = 0; i < noffers; i++) {
        offer_rec *o = &offers[i];
        after += o->delivered;
        if (o->delivered > 1) {
            dup++;
            fprintf(stderr, "duplicate: %s delivered %d times\n", o->sid, o->delivered);
        }
        if (o->queued && !o->delivered) {
            lost++;
            fprintf(stderr, "lost: %s was queued, never delivered\n", o->sid);
        }
        if (o->refused && o->delivered)
            refused_delivered++;
        if (!o->queued && !o->refused)
            unknown++;
    }
    after -= before;
    fprintf(stderr,
            "%d offers: %d queued, %d delivered before the crash, %d after the restart, "
            "%d without an answer; lost %d, duplicated %d\n",
            noffers, queued, before, after, unknown, lost, dup);
    assert_true(queued > 0);
    assert_true(after > 0); /* the crash left work in the queue */
    assert_int_equal(lost, 0);
    assert_int_equal(dup, 0);
    assert_int_equal(refused_delivered, 0);
}

static int teardown(void **state)
{
    (void)state;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_crash_burst, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
