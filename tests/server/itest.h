/* itest.h - shared helpers for the server_ integration tests.
 *
 * Every test starts its own rendezvousd (ephemeral port, temp database)
 * and the teardown stops it with SIGTERM, failing the test when the server
 * does not exit 0 or its log holds a sanitizer report. Include after the
 * cmocka prerequisites.
 */
#ifndef RDV_TESTS_SERVER_ITEST_H
#define RDV_TESTS_SERVER_ITEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/ids.h"
#include "node.h"
#include "server.h"
#include "schema/sign.h"
#include "ws_client.h"

#define T_MS RDV_WS_TIMEOUT_MS

/* Starts a server with the given extra args (NULL-terminated list
 * literal) and fails the test if it does not come up. */
#define START(...) itest_start((const char *const[]){__VA_ARGS__, NULL})
#define START_DEFAULT() itest_start(NULL)

static inline rdv_ts_server *itest_start(const char *const *args)
{
    rdv_ts_server *s = rdv_ts_server_start(args);
    if (!s)
        fail_msg("rendezvousd did not start");
    return s;
}

static inline rdv_ws *itest_node(rdv_ts_server *s, const rdv_tn *n)
{
    rdv_ws *c = rdv_tn_connect(rdv_ts_server_port(s), n);
    if (!c)
        fail_msg("node %s could not connect and authenticate", n->label);
    return c;
}

/* Node `label` (rdv_tn_init into *n) connected and authenticated. */
static inline rdv_ws *itest_join(rdv_ts_server *s, rdv_tn *n, const char *label)
{
    rdv_tn_init(n, label);
    return itest_node(s, n);
}

static inline rdv_ws *itest_connect(rdv_ts_server *s)
{
    rdv_ws *c = rdv_ws_connect(rdv_ts_server_port(s));
    if (!c)
        fail_msg("WebSocket connect failed");
    return c;
}

/* Sends text (strlen) and fails on error. */
static inline void itest_send(rdv_ws *c, const char *text)
{
    if (rdv_ws_send_str(c, text) != 0)
        fail_msg("send failed: %.200s", text);
}

/* Sends a malloc'd text (a builder's result, never holding NUL) and frees
 * it. Takes no length so that `itest_send_free(c, build(..., &len))` does
 * not depend on the evaluation order of arguments. */
static inline void itest_send_free(rdv_ws *c, char *text)
{
    if (!text)
        fail_msg("message builder returned NULL");
    int rc = rdv_ws_send_text(c, text, strlen(text));
    free(text);
    if (rc != 0)
        fail_msg("send failed");
}

/* The connection is alive and has nothing queued before a lookup answer. */
static inline json_t *itest_alive(rdv_ws *c, const char *id)
{
    json_t *e = rdv_lookup_one(c, id);
    if (!e)
        fail_msg("connection not alive or unexpected message before presence");
    return e;
}

static inline json_t *itest_expect(rdv_ws *c, const char *type)
{
    json_t *b = rdv_expect(c, type, T_MS);
    if (!b)
        fail_msg("expected %s", type);
    return b;
}

static inline json_t *itest_expect_error(rdv_ws *c, const char *code)
{
    json_t *b = rdv_expect_error(c, code, T_MS);
    if (!b)
        fail_msg("expected error %s", code);
    return b;
}

/* Waits for the peer to close and checks the close code. */
static inline void itest_expect_close(rdv_ws *c, int code)
{
    /* Anything still queued before the close is skipped. */
    while (rdv_ws_pending(c) > 0)
        free(rdv_ws_recv(c, 0, NULL));
    if (!rdv_ws_wait_closed(c, T_MS)) {
        rdv_ts_dump_all_logs("expected close");
        fail_msg("connection not closed within %d ms (expected close %d)", T_MS, code);
    }
    if (rdv_ws_close_code(c) != code) {
        rdv_ts_dump_all_logs("close code");
        fail_msg("close code %d (%s), expected %d", rdv_ws_close_code(c),
                 rdv_ws_close_reason(c), code);
    }
}

static inline int itest_teardown(void **state)
{
    (void)state;
    return rdv_ts_teardown_checked() == 0 ? 0 : -1;
}

#define ITEST(fn) cmocka_unit_test_teardown(fn, itest_teardown)

/* Runs the group; RDV_TEST_FILTER=pattern (cmocka wildcards) runs a subset. */
#define ITEST_RUN(tests)                                                   \
    (getenv("RDV_TEST_FILTER") ? cmocka_set_test_filter(getenv("RDV_TEST_FILTER")) \
                               : (void)0,                                  \
     cmocka_run_group_tests(tests, NULL, NULL))

#endif
