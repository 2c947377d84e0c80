/* test_http.c - server_http: the plain-HTTP endpoints (/healthz on the
 * WebSocket listener, the others on the operator's) and orderly shutdown (issue 4 "What it does", "Operations").
 *
 * /healthz answers 200; /status answers a JSON object; /metrics is
 * Prometheus text whose counters move: messages routed, errors sent by
 * code, authentication failures. Metric names are matched loosely (by
 * substring) since PROTOCOL.md does not fix them; the text is printed when
 * a check fails. SIGTERM: every client gets a close frame 1001 and the
 * server exits 0 with a clean sanitizer log.
 */
#include "itest.h"

#include <ctype.h>
#include <signal.h>

/* Sum of the samples whose metric name contains `name_sub` (and, when
 * not NULL, whose label set contains `label_sub`). -1 when none match. */
static double metric_sum(const char *text, const char *name_sub, const char *label_sub)
{
    double sum = 0;
    bool found = false;
    const char *line = text;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len && line[0] != '#') {
            char buf[512];
            if (len >= sizeof buf)
                len = sizeof buf - 1;
            memcpy(buf, line, len);
            buf[len] = '\0';
            char *brace = strchr(buf, '{');
            char *space = strrchr(buf, ' ');
            if (space) {
                char *name_end = brace && brace < space ? brace : strchr(buf, ' ');
                char name[256];
                size_t nl = (size_t)(name_end - buf);
                if (nl >= sizeof name)
                    nl = sizeof name - 1;
                memcpy(name, buf, nl);
                name[nl] = '\0';
                char labels[256] = "";
                if (brace && brace < space) {
                    char *close = strchr(brace, '}');
                    if (close) {
                        size_t ll = (size_t)(close - brace);
                        if (ll >= sizeof labels)
                            ll = sizeof labels - 1;
                        memcpy(labels, brace, ll);
                        labels[ll] = '\0';
                        space = strchr(close, ' ');
                    }
                }
                if (space && strstr(name, name_sub) &&
                    (!label_sub || strstr(labels, label_sub))) {
                    sum += strtod(space + 1, NULL);
                    found = true;
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return found ? sum : -1;
}

/* GET path: /healthz on the public port, the others on the operator's
 * listener (admission_operator checks which port serves what). */
static char *get_ok(rdv_ts_server *s, const char *path)
{
    char *body = NULL;
    int port = strcmp(path, "/healthz") ? rdv_ts_server_operator_port(s) : rdv_ts_server_port(s);
    int st = rdv_http_get(port, path, &body, T_MS);
    if (st != 200) {
        free(body);
        rdv_ts_server_dump_log(s, path);
        fail_msg("GET %s: status %d, expected 200", path, st);
    }
    return body;
}

static void test_http_healthz(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    char *body = get_ok(s, "/healthz");
    free(body);
    /* WebSocket still served beside HTTP. */
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    itest_alive(a, alice.id);
    body = get_ok(s, "/healthz");
    free(body);
}

static void test_http_status_json(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    (void)a;
    char *body = get_ok(s, "/status");
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "/status body: %s\n", body);
        free(body);
        json_decref(j);
        fail_msg("/status is not a JSON object: %s", err.text);
        return; /* fail_msg longjmps; tell the compiler too */
    }
    free(body);
    json_decref(j);
}

static void test_http_metrics_move(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob, mallory;
    rdv_tn_init(&mallory, "mallory");
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");

    char *before = get_ok(s, "/metrics");
    double routed0 = metric_sum(before, "routed", NULL);
    double bad_json0 = metric_sum(before, "error", "bad_json");
    double auth0 = metric_sum(before, "auth_fail", NULL);

    /* Two routed messages. */
    size_t len;
    for (int i = 0; i < 2; i++) {
        char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &len);
        char *copy = strndup(offer, len);
        itest_send_free(a, offer);
        int rc = rdv_expect_bytes(b, copy, len, T_MS);
        free(copy);
        assert_int_equal(rc, 0);
    }
    /* An error sent by code. */
    itest_send(a, "definitely not json");
    itest_expect_error(a, "bad_json");
    /* An authentication failure. */
    rdv_ws *m = itest_connect(s);
    json_t *ch = rdv_tn_read_challenge(m, T_MS);
    assert_non_null(ch);
    rdv_tn_forge f = {.bad_signature = true};
    char *hello = rdv_tn_hello(&mallory, ch, NULL, NULL, NULL, &f, &len);
    json_decref(ch);
    itest_send_free(m, hello);
    itest_expect_error(m, "auth_failed");
    itest_expect_close(m, 1008);

    char *after = get_ok(s, "/metrics");
    double routed1 = metric_sum(after, "routed", NULL);
    double bad_json1 = metric_sum(after, "error", "bad_json");
    double auth1 = metric_sum(after, "auth_fail", NULL);
    bool ok = routed1 >= 0 && routed1 >= routed0 + 2 && bad_json1 >= 0 &&
              bad_json1 >= (bad_json0 < 0 ? 0 : bad_json0) + 1 && auth1 >= 0 &&
              auth1 >= (auth0 < 0 ? 0 : auth0) + 1;
    if (!ok) {
        fprintf(stderr, "----- /metrics before -----\n%s\n----- /metrics after -----\n%s\n",
                before, after);
        free(before);
        free(after);
        fail_msg("metrics did not move: routed %g -> %g (want +2), errors{bad_json} %g -> %g "
                 "(want +1), auth failures %g -> %g (want +1); -1 = no such metric",
                 routed0, routed1, bad_json0, bad_json1, auth0, auth1);
    }
    /* Prometheus text: every sample line is "name[{labels}] value". */
    for (const char *l = after; *l;) {
        const char *eol = strchr(l, '\n');
        size_t n = eol ? (size_t)(eol - l) : strlen(l);
        if (n && l[0] != '#' && !(isalpha((unsigned char)l[0]) || l[0] == '_')) {
            fprintf(stderr, "bad metrics line: %.*s\n", (int)n, l);
            free(before);
            free(after);
            fail_msg("/metrics is not Prometheus text");
        }
        if (!eol)
            break;
        l = eol + 1;
    }
    free(before);
    free(after);
}

static void test_http_metrics_gauges(void **state)
{
    (void)state;
    /* Gauges follow the state: authenticated nodes, offline queue depth;
     * and the rate-limited counter moves. */
    rdv_ts_server *s = START("--rate", "2", "--burst", "2");
    rdv_tn alice, bob, carol;
    rdv_tn_init(&bob, "bob");
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *c = itest_join(s, &carol, "carol");
    char *m0 = get_ok(s, "/metrics");
    double auth0 = metric_sum(m0, "authenticated", NULL);
    double depth0 = metric_sum(m0, "queue_depth", NULL);
    double rl0 = metric_sum(m0, "rate_limited", NULL);
    free(m0);

    /* One queued message for bob; a third node online. */
    size_t len;
    itest_send_free(a, rdv_tn_offer(&alice, bob.id, NULL, NULL, &len));
    itest_expect(a, "queued");
    rdv_ws *b = NULL;
    char *m1 = get_ok(s, "/metrics");
    double auth1 = metric_sum(m1, "authenticated", NULL);
    double depth1 = metric_sum(m1, "queue_depth", NULL);
    free(m1);

    /* bob comes online and takes his message. */
    b = itest_node(s, &bob);
    itest_expect(b, "offer");
    /* carol floods past her bucket of 2. */
    for (int i = 0; i < 4; i++)
        itest_send(c, "{\"ping\":{}}");
    while (rdv_ws_recv_json(c, 500, NULL) != NULL) {
    }
    char *m2 = get_ok(s, "/metrics");
    double auth2 = metric_sum(m2, "authenticated", NULL);
    double depth2 = metric_sum(m2, "queue_depth", NULL);
    double rl2 = metric_sum(m2, "rate_limited", NULL);
    bool ok = auth0 >= 2 && auth1 == auth0 && auth2 >= auth1 + 1 && depth1 >= depth0 + 1 &&
              depth2 <= depth1 - 1 && rl2 >= rl0 + 1;
    if (!ok) {
        fprintf(stderr, "----- /metrics at the end -----\n%s\n", m2);
        free(m2);
        fail_msg("gauges: authenticated %g/%g/%g (2 nodes, 2, 3), queue depth %g/%g/%g "
                 "(+1 then -1), rate_limited %g -> %g (+1); -1 = no such metric",
                 auth0, auth1, auth2, depth0, depth1, depth2, rl0, rl2);
    }
    free(m2);
}

static void test_http_sigterm_closes_clients(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    rdv_ws *b = itest_join(s, &bob, "bob");
    rdv_ws *pending = itest_connect(s); /* not authenticated */
    json_t *ch = rdv_tn_read_challenge(pending, T_MS);
    assert_non_null(ch);
    json_decref(ch);

    assert_int_equal(rdv_ts_server_signal(s, SIGTERM), 0);
    rdv_ws *clients[3] = {a, b, pending};
    for (int i = 0; i < 3; i++) {
        /* An optional shutting_down error may precede the close. */
        const char *type;
        json_t *m;
        while ((m = rdv_ws_recv_json(clients[i], T_MS, &type)) != NULL) {
            json_t *body = type ? json_object_get(m, type) : NULL;
            if (!type || strcmp(type, "error") != 0 ||
                strcmp(rdv_json_str(body, "code"), "shutting_down") != 0) {
                size_t l;
                const char *t = rdv_ws_last_text(clients[i], &l);
                fail_msg("client %d: unexpected message during shutdown: %.*s", i, (int)l, t);
            }
        }
        if (!rdv_ws_is_closed(clients[i]))
            fail_msg("client %d not closed after SIGTERM", i);
        if (rdv_ws_close_code(clients[i]) != 1001) {
            rdv_ts_server_dump_log(s, "sigterm");
            fail_msg("client %d: close code %d, expected 1001 (going away)", i,
                     rdv_ws_close_code(clients[i]));
        }
    }
    int code = rdv_ts_server_wait_exit(s, RDV_TS_STOP_TIMEOUT_MS);
    if (code != 0) {
        rdv_ts_server_dump_log(s, "sigterm exit");
        fail_msg("exit status %d after SIGTERM, expected 0", code);
    }
    if (!rdv_ts_server_log_clean(s)) {
        rdv_ts_server_dump_log(s, "sanitizer");
        fail_msg("sanitizer report in the server log");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_http_healthz),
        ITEST(test_http_status_json),
        ITEST(test_http_metrics_move),
        ITEST(test_http_metrics_gauges),
        ITEST(test_http_sigterm_closes_clients),
    };
    return ITEST_RUN(tests);
}
