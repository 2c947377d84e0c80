/* client_peer.h - scaffolding shared by the client_ integration tests
 * (tests/client/test_client.c, test_relay.c, test_connect.c). For cmocka
 * tests: the helpers here fail the running test (fail_msg, assert_*).
 *
 * Each test file keeps its own peer struct (a client, a pthread mutex `mu`
 * guarding what its callbacks record) and its own callbacks. What they
 * share: the registry of live peers (peers.h) with its teardown, a bounded
 * wait for a condition on a peer, a server that must start, and the
 * identity and base configuration of a test client.
 */
#ifndef RDV_TESTS_SUPPORT_CLIENT_PEER_H
#define RDV_TESTS_SUPPORT_CLIENT_PEER_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rendezvous/rendezvous.h>

#include "node.h"
#include "peers.h"
#include "server.h"

/* Waits (bounded) until `cond` holds, evaluating it with the mutex
 * `mu_ptr` held, running the statement `idle` (unlocked) between two
 * evaluations. After `ms` milliseconds without it: prints the logs of the
 * running servers and fails the test with "timed out waiting for <what>
 * (FILE:LINE)"; `what` is a string, normally #cond taken by the caller
 * before any macro in cond is expanded. */
#define RDV_TS_WAIT_UNTIL(mu_ptr, cond, what, ms, idle)                        \
    do {                                                                       \
        long long deadline_ = rdv_ts_mono_ms() + (ms);                         \
        bool ok_ = false;                                                      \
        for (;;) {                                                             \
            pthread_mutex_lock(mu_ptr);                                        \
            ok_ = (cond);                                                      \
            pthread_mutex_unlock(mu_ptr);                                      \
            if (ok_ || rdv_ts_mono_ms() > deadline_)                           \
                break;                                                         \
            idle;                                                              \
        }                                                                      \
        if (!ok_) {                                                            \
            rdv_ts_dump_all_logs("timeout");                                   \
            fail_msg("timed out waiting for %s (%s:%d)", what, __FILE__,       \
                     __LINE__);                                                \
        }                                                                      \
    } while (0)

/* RDV_TS_WAIT_UNTIL for a threaded peer `p` (a pointer to a struct with a
 * pthread_mutex_t `mu`): `expr` evaluated under p->mu, polled every 5 ms,
 * for at most `ms` milliseconds. A file may alias it to its own name with
 * `#define WAIT_FOR RDV_TS_WAIT_FOR` (the message still shows expr as
 * written). */
#define RDV_TS_WAIT_FOR(p, expr, ms)                                           \
    RDV_TS_WAIT_UNTIL(&(p)->mu, (expr), #expr, (ms), usleep(5000))

/* rdv_ts_server_start(args) (server.h), asserting that the server came
 * up. Returns the server (never NULL). */
static inline rdv_ts_server *rdv_ts_server_start_or_fail(const char *const *args)
{
    rdv_ts_server *s = rdv_ts_server_start(args);
    assert_non_null(s);
    return s;
}

/* The identity of test label `label` (node.h: rdv_tn_init(label) gives a
 * raw test node the same key) into *id, its node ID into node_id. The
 * caller wipes *id (rdv_identity_wipe) once the client is created. */
static inline void rdv_ts_identity(const char *label, rdv_identity *id,
                                   char node_id[RDV_NODE_ID_LEN + 1])
{
    rdv_tn tn;
    rdv_tn_init(&tn, label);
    memcpy(id->public_key, tn.pk, sizeof(id->public_key));
    memcpy(id->secret_key, tn.sk, sizeof(id->secret_key));
    rdv_identity_node_id(id, node_id);
}

/* Zeroes *cfg, then sets what every test client shares: server_url = url
 * and identity = id (both kept by pointer: they must outlive
 * rdv_client_create), connect and auth timeouts of 3 s, reconnect backoff
 * from 50 to 400 ms. The caller adds its callbacks, user_ptr and options. */
static inline void rdv_ts_client_config(rdv_client_config *cfg, const char *url,
                                        const rdv_identity *id)
{
    *cfg = (rdv_client_config){0};
    cfg->server_url = url;
    cfg->identity = id;
    cfg->connect_timeout_ms = 3000;
    cfg->auth_timeout_ms = 3000;
    cfg->reconnect.initial_backoff_ms = 50;
    cfg->reconnect.max_backoff_ms = 400;
}

#endif
