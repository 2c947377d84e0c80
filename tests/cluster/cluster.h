/* cluster.h - shared helpers for the cluster_ tests (issue 14): one real
 * redis-server (tests/support/redis.h) and three real rendezvousd
 * instances started with `--redis URL`, each with its own temporary SQLite
 * database as usual, driven with the test WebSocket client and test nodes.
 *
 * A redis-server that truly cannot start makes the test skip() with the
 * reason ("cannot start redis-server: ..."); nothing in
 * tests/expected_skips.txt allows it, since scripts/bootstrap --test
 * installs redis-server: on a machine set up as documented it is a
 * failure. A rendezvousd that does not start fails the test.
 *
 * Cross-instance presence goes through Redis, so a lookup on another
 * instance is given CL_SETTLE_MS to see a connect or a clean disconnect
 * (polled, never slept blindly). The teardown is the one of the server_
 * tests: every instance still running must exit 0 on SIGTERM with a clean
 * log; the redis-server is freed after them (rdv_ts_on_cleanup).
 */
#ifndef RDV_TESTS_CLUSTER_H
#define RDV_TESTS_CLUSTER_H

#include "itest.h"
#include "redis.h"

#include <time.h>

#define CL_N 3
/* Bound for a connect / clean disconnect to be seen on another instance. */
#define CL_SETTLE_MS 2000

typedef struct cl {
    rdv_ts_redis *redis;
    rdv_ts_server *inst[CL_N];
    const char *url; /* what the instances were given */
} cl;

static inline void cl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A redis-server, or skip() with the reason. */
static inline rdv_ts_redis *cl_redis(const rdv_ts_redis_opts *o)
{
    char why[768];
    rdv_ts_redis *r = rdv_ts_redis_start(o, why, sizeof why);
    if (!r) {
        print_message("%s\n", why);
        skip();
    }
    return r;
}

/* One rendezvousd instance on `url`. */
static inline rdv_ts_server *cl_instance(const char *url)
{
    rdv_ts_server *s = rdv_ts_server_start((const char *const[]){"--redis", url, NULL});
    if (!s)
        fail_msg("rendezvousd --redis %s did not start", url);
    return s;
}

static inline int cl_get(rdv_ts_server *s, const char *path, char **body);
static inline long long cl_poll_healthz(rdv_ts_server *s, int want, int timeout_ms);

/* Redis (o may be NULL) and CL_N instances on its Unix socket URL, or on
 * its TCP URL when o->tcp. An instance prints its ready line before its
 * engine has reached Redis (it connects in the background, and a message
 * routed before that gets `internal`), so this waits, bounded, for every
 * /healthz to answer 200, as a load balancer would. */
static inline void cl_up(cl *c, const rdv_ts_redis_opts *o)
{
    memset(c, 0, sizeof *c);
    c->redis = cl_redis(o);
    c->url = o && o->tcp ? rdv_ts_redis_tcp_url(c->redis) : rdv_ts_redis_unix_url(c->redis);
    for (int i = 0; i < CL_N; i++)
        c->inst[i] = cl_instance(c->url);
    for (int i = 0; i < CL_N; i++) {
        if (cl_poll_healthz(c->inst[i], 200, 5000) < 0) {
            rdv_ts_dump_all_logs("healthz at start");
            fail_msg("instance %d /healthz not 200 within 5 s of its start (Redis up)", i + 1);
        }
    }
}

/* Sends a lookup of `id` on ws and returns the `online` of the single
 * entry (the entry itself, borrowed, in *entry when not NULL). Fails when
 * no presence answer is the next message. */
static inline bool cl_online(rdv_ws *ws, const char *id, json_t **entry)
{
    json_t *e = itest_alive(ws, id);
    if (strcmp(rdv_json_str(e, "nodeID"), id) != 0)
        fail_msg("lookup answered for %s, asked %s", rdv_json_str(e, "nodeID"), id);
    if (entry)
        *entry = e;
    return json_is_true(json_object_get(e, "online"));
}

/* Polls lookups of `id` on ws (every 100 ms) until its `online` is `want`,
 * for at most timeout_ms. Returns the milliseconds it took, or -1. The
 * last entry (borrowed) is in *entry when not NULL. */
static inline long long cl_poll_online(rdv_ws *ws, const char *id, bool want, int timeout_ms,
                                       json_t **entry)
{
    long long t0 = rdv_ts_mono_ms();
    for (;;) {
        if (cl_online(ws, id, entry) == want)
            return rdv_ts_mono_ms() - t0;
        if (rdv_ts_mono_ms() - t0 > timeout_ms)
            return -1;
        cl_sleep_ms(100);
    }
}

/* cl_poll_online within CL_SETTLE_MS, failing the test otherwise. */
static inline json_t *cl_expect_online(rdv_ws *ws, const rdv_tn *who, bool want)
{
    json_t *e = NULL;
    if (cl_poll_online(ws, who->id, want, CL_SETTLE_MS, &e) < 0) {
        rdv_ts_dump_all_logs("cross-instance presence");
        fail_msg("node %s not %s in a lookup on another instance within %d ms", who->label,
                 want ? "online" : "offline", CL_SETTLE_MS);
    }
    return e;
}

/* Sends `watch` of id and expects the presence answer; returns its entry
 * (borrowed). */
static inline json_t *cl_watch(rdv_ws *ws, const char *id)
{
    char *w = rdv_tn_id_request("watch", (const char *[]){id}, 1, NULL);
    itest_send(ws, w);
    free(w);
    json_t *p = itest_expect(ws, "presence");
    json_t *peers = json_object_get(p, "peers");
    if (!json_is_array(peers) || json_array_size(peers) != 1)
        fail_msg("watch answer has no single peer entry");
    return json_array_get(peers, 0);
}

/* GET path on instance s's operator listener: the status code (-1 on error), the body in
 * *body (malloc'd) when body is not NULL. */
static inline int cl_get(rdv_ts_server *s, const char *path, char **body)
{
    return rdv_http_get(rdv_ts_server_operator_port(s), path, body, T_MS);
}

/* Polls /healthz of s (every 100 ms) until it answers `want`, for at most
 * timeout_ms. Returns the milliseconds it took, or -1. */
static inline long long cl_poll_healthz(rdv_ts_server *s, int want, int timeout_ms)
{
    long long t0 = rdv_ts_mono_ms();
    for (;;) {
        if (cl_get(s, "/healthz", NULL) == want)
            return rdv_ts_mono_ms() - t0;
        if (rdv_ts_mono_ms() - t0 > timeout_ms)
            return -1;
        cl_sleep_ms(100);
    }
}

/* /status of s parsed (new reference); fails unless a JSON object. */
static inline json_t *cl_status(rdv_ts_server *s)
{
    char *body = NULL;
    int st = cl_get(s, "/status", &body);
    if (st != 200) {
        free(body);
        fail_msg("GET /status: %d", st);
    }
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "/status body: %s\n", body);
        free(body);
        json_decref(j);
        fail_msg("/status is not a JSON object: %s", err.text);
    }
    free(body);
    return j;
}

/* Sends a signed offer from n to `to` and checks `queued` (sessionID,
 * toNodeID, type) comes back. Returns the text sent (malloc'd, *len). */
static inline char *cl_send_queued(rdv_ws *ws, const rdv_tn *n, const char *to, size_t *len)
{
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    char *text = rdv_tn_offer(n, to, sid, NULL, len);
    if (!text)
        fail_msg("offer builder failed");
    if (rdv_ws_send_text(ws, text, *len) != 0) {
        free(text);
        fail_msg("send failed");
    }
    json_t *q = rdv_expect(ws, "queued", T_MS);
    if (!q) {
        free(text);
        fail_msg("expected queued for the offer to an offline node");
    }
    if (strcmp(rdv_json_str(q, "sessionID"), sid) != 0 ||
        strcmp(rdv_json_str(q, "toNodeID"), to) != 0 ||
        strcmp(rdv_json_str(q, "type"), "offer") != 0) {
        free(text);
        fail_msg("queued does not name the offer (sessionID, toNodeID, type)");
    }
    return text;
}

/* The next message on ws must be exactly text; frees text. */
static inline void cl_expect_bytes_free(rdv_ws *ws, char *text, size_t len, int timeout_ms,
                                        const char *what)
{
    int rc = rdv_expect_bytes(ws, text, len, timeout_ms);
    free(text);
    if (rc != 0) /* rdv_expect_bytes printed what came and the logs */
        fail_msg("%s: not received byte-for-byte", what);
}

#endif
