/* test_client.c - client_* integration tests: librendezvous against a real
 * rendezvousd on loopback (tests/support/server.h), plus raw test nodes
 * (tests/support/node.h) that bypass the library to inject messages.
 *
 * One executable, one ctest per test: `test_client NAME` runs the cmocka
 * test NAME (cmocka_set_test_filter). Tests:
 *   signaling     two threaded clients: lookup, offer -> answer (sent from
 *                 inside cb_offer) -> candidates both ways, all verified;
 *   forged        a raw node injects an offer with a forged signature (the
 *                 server runs --verify-signatures off so it is routed): the
 *                 library reports RDV_ERR_BAD_SIGNATURE, never cb_offer; an
 *                 altered one is refused too; an honest one passes, and its
 *                 replayed copy is dropped (RDV_ERR_DUPLICATE); a 48 KiB one
 *                 is reassembled and verified;
 *   reconnect     watches, server killed: DISCONNECTED, sends fail fast
 *                 with RDV_ERR_NOT_CONNECTED, server restarted on the same
 *                 port: both clients re-authenticate, the watch is
 *                 re-established (peerOffline arrives after the restart);
 *   not_connected no server: sends fail fast, connect errors reported,
 *                 max_attempts leads to FAILED;
 *   embedded      two clients driven by one poll() loop in the test thread;
 *   callback_api  API calls from inside callbacks (threaded and embedded),
 *                 process() from a callback refused with BUSY/STATE;
 *   keepalive     an idle connection stays up; a frozen server (SIGSTOP)
 *                 is detected by the keep-alive and left, then rejoined;
 *   threads       four threads send concurrently through one client;
 *   queued        offline recipient: cb_queued, delivery on connect,
 *                 expiry reported as RDV_ERR_PEER_OFFLINE;
 *   tls           wss:// with a self-signed certificate trusted through
 *                 tls_ca_file (and refused without it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <rendezvous/rendezvous.h>

#include "client_peer.h"
#include "node.h"
#include "server.h"

#define WAIT_MS 8000

typedef struct peer {
    rdv_client *c;
    bool embedded;
    char id[RDV_NODE_ID_LEN + 1];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* behaviour */
    bool answer_in_cb;       /* answer every offer from inside cb_offer */
    bool api_in_cb;          /* call the API from state / presence callbacks */
    char offer_to[RDV_NODE_ID_LEN + 1]; /* api_in_cb: offer this node */
    /* observations */
    rdv_state state;
    int n_auth, n_disc;
    int n_offer, n_answer, n_cand, n_presence, n_online, n_offline, n_error, n_queued;
    rdv_queued queued;
    char err_ref[RDV_REQUEST_ID_LEN + 1];
    rdv_session_msg offer, answer;
    rdv_candidate_msg cand;
    rdv_peer presence[4];
    size_t n_presence_peers;
    rdv_peer online, offline;
    int err_codes[64];
    char err_from[RDV_NODE_ID_LEN + 1];
    int cb_answer_rc, cb_lookup_rc, cb_offer_rc, cb_process_rc;
    bool cb_api_done, cb_offer_done;
} peer;

static int count_err(peer *p, int code)
{
    int n = 0;
    for (int i = 0; i < p->n_error && i < 64; i++)
        n += p->err_codes[i] == code;
    return n;
}

static void on_state(rdv_client *c, rdv_state st, void *u)
{
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->state = st;
    if (st == RDV_STATE_AUTHENTICATED)
        p->n_auth++;
    if (st == RDV_STATE_DISCONNECTED)
        p->n_disc++;
    bool api = p->api_in_cb && st == RDV_STATE_AUTHENTICATED && !p->cb_api_done;
    pthread_mutex_unlock(&p->mu);
    if (api) {
        /* Calls from inside a callback: lookup, info, process; destroy is
         * refused (the client stays usable: ASan would see a use after
         * free otherwise). */
        rdv_client_destroy(c);
        const char *ids[] = {p->offer_to};
        char rid[RDV_REQUEST_ID_LEN + 1];
        int rc = rdv_client_lookup(c, ids, 1, rid);
        rdv_client_info info;
        int irc = rdv_client_get_info(c, &info);
        int prc = rdv_client_process(c);
        pthread_mutex_lock(&p->mu);
        p->cb_lookup_rc = rc;
        p->cb_process_rc = prc;
        p->cb_api_done = irc == 0 && info.state == RDV_STATE_AUTHENTICATED;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_cond_broadcast(&p->cv);
}

static void on_offer(rdv_client *c, const rdv_session_msg *m, void *u)
{
    peer *p = u;
    int rc = 0;
    if (p->answer_in_cb) {
        rdv_connection_info ci = {0};
        strcpy(ci.public_ip, "198.51.100.20");
        ci.public_port = 51820;
        strcpy(ci.local_ip, "192.168.1.20");
        ci.local_port = 51821;
        ci.nat_type = RDV_NAT_PORT_RESTRICTED;
        rc = rdv_client_send_answer(c, m->from_node_id, m->session_id, &ci);
    }
    pthread_mutex_lock(&p->mu);
    p->offer = *m;
    p->offer.json = NULL;
    p->n_offer++;
    p->cb_answer_rc = rc;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_answer(rdv_client *c, const rdv_session_msg *m, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->answer = *m;
    p->answer.json = NULL;
    p->n_answer++;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_cand(rdv_client *c, const rdv_candidate_msg *m, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->cand = *m;
    p->cand.json = NULL;
    p->n_cand++;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_presence(rdv_client *c, const char *rid, const rdv_peer *peers,
                        size_t n, void *u)
{
    (void)rid;
    peer *p = u;
    bool do_offer = false;
    pthread_mutex_lock(&p->mu);
    p->n_presence++;
    p->n_presence_peers = n < 4 ? n : 4;
    memcpy(p->presence, peers, p->n_presence_peers * sizeof(*peers));
    do_offer = p->api_in_cb && !p->cb_offer_done && n == 1 && peers[0].online;
    pthread_mutex_unlock(&p->mu);
    if (do_offer) {
        char sid[RDV_SESSION_ID_LEN + 1];
        rdv_session_id_generate(sid);
        rdv_connection_info ci = {0};
        int rc = rdv_client_send_offer(c, peers[0].node_id, sid, &ci);
        pthread_mutex_lock(&p->mu);
        p->cb_offer_rc = rc;
        p->cb_offer_done = true;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_cond_broadcast(&p->cv);
}

static void on_online(rdv_client *c, const rdv_peer *x, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->online = *x;
    p->n_online++;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_offline(rdv_client *c, const rdv_peer *x, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->offline = *x;
    p->n_offline++;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    if (p->n_error < 64)
        p->err_codes[p->n_error] = e->code;
    p->n_error++;
    if (e->from_node_id)
        snprintf(p->err_from, sizeof(p->err_from), "%s", e->from_node_id);
    snprintf(p->err_ref, sizeof(p->err_ref), "%s", e->ref ? e->ref : "");
    pthread_mutex_unlock(&p->mu);
    if (getenv("RDV_TEST_VERBOSE"))
        fprintf(stderr, "[%.8s] error %d (%s): %s\n", p->id, e->code,
                e->server_code ? e->server_code : "local", e->message);
    pthread_cond_broadcast(&p->cv);
}

static void on_queued(rdv_client *c, const rdv_queued *q, void *u)
{
    (void)c;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->queued = *q;
    p->n_queued++;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

typedef struct peer_opts {
    const char *url;      /* default ws://127.0.0.1:port/v1 */
    const char *ca;
    int keepalive_ms;
} peer_opts;

/* Frees a peer (NULL is fine; void * as the registry's free function). */
static void peer_free(void *v)
{
    peer *p = v;
    if (!p)
        return;
    rdv_ts_peer_untrack(p);
    rdv_client_destroy(p->c);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* Creates a client for ws://127.0.0.1:port with identity `label` (see
 * node.h: the same label gives the raw test node the same key). */
static peer *peer_new_ex(int port, const char *label, bool embedded, rdv_nat_type nat,
                         int max_attempts, const peer_opts *po)
{
    peer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->embedded = embedded;
    rdv_identity id;
    rdv_ts_identity(label, &id, p->id);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/v1", port);
    rdv_client_config cfg;
    rdv_ts_client_config(&cfg, po && po->url ? po->url : url, &id);
    cfg.tls_ca_file = po ? po->ca : NULL;
    cfg.keepalive_ms = po ? po->keepalive_ms : 0;
    cfg.nat_type = nat;
    cfg.reconnect.max_attempts = max_attempts;
    cfg.cb_state_changed = on_state;
    cfg.cb_offer = on_offer;
    cfg.cb_answer = on_answer;
    cfg.cb_candidate = on_cand;
    cfg.cb_presence = on_presence;
    cfg.cb_peer_online = on_online;
    cfg.cb_peer_offline = on_offline;
    cfg.cb_error = on_error;
    cfg.cb_queued = on_queued;
    cfg.user_ptr = p;
    assert_int_equal(rdv_client_create(&cfg, &p->c), 0);
    rdv_identity_wipe(&id);
    assert_string_equal(rdv_client_node_id(p->c), p->id);
    assert_int_equal(rdv_ts_peer_track(p, peer_free), 0);
    return p;
}

static peer *peer_new(int port, const char *label, bool embedded, rdv_nat_type nat,
                      int max_attempts)
{
    return peer_new_ex(port, label, embedded, nat, max_attempts, NULL);
}

static void peer_start(peer *p)
{
    if (!p->embedded)
        assert_int_equal(rdv_client_start(p->c), 0);
}

/* Drives every embedded peer once with poll() (at most `ms`). */
static void pump_embedded(int ms)
{
    struct pollfd fds[RDV_TS_MAX_PEERS];
    peer *ps[RDV_TS_MAX_PEERS];
    int n = 0;
    int t = ms;
    for (int i = 0; i < RDV_TS_MAX_PEERS; i++) {
        peer *q = rdv_ts_peer_at(i);
        if (!q || !q->embedded)
            continue;
        ps[n] = q;
        fds[n].fd = rdv_client_fd(ps[n]->c);
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        int pt = rdv_client_timeout_ms(ps[n]->c);
        if (pt < t)
            t = pt;
        n++;
    }
    if (n == 0) {
        usleep((useconds_t)ms * 1000);
        return;
    }
    (void)poll(fds, (nfds_t)n, t);
    for (int i = 0; i < n; i++)
        assert_int_equal(rdv_client_process(ps[i]->c), 0);
}

/* Waits (bounded) until `expr` (evaluated under p->mu) holds; embedded
 * peers are driven meanwhile (client_peer.h). */
#define WAIT_FOR(p, expr, ms)                                                  \
    RDV_TS_WAIT_UNTIL(&(p)->mu, (expr), #expr, (ms), pump_embedded(20))

/* Lets embedded peers run for `ms` (threaded ones run anyway). */
static void settle(int ms)
{
    long long end = rdv_ts_mono_ms() + ms;
    while (rdv_ts_mono_ms() < end)
        pump_embedded(20);
}

static void fill_info(rdv_connection_info *ci)
{
    memset(ci, 0, sizeof(*ci));
    strcpy(ci->public_ip, "203.0.113.5");
    ci->public_port = 41641;
    strcpy(ci->local_ip, "10.0.0.5");
    ci->local_port = 51820;
    ci->nat_type = RDV_NAT_SYMMETRIC;
    strcpy(ci->wg_public_key, "3b5abc3d89e7c042985df3dde249b6c8013d39ae9b021bd1f03cacbbcee43f76");
}

/* Offer/answer/candidates between a and b (b answers from its callback). */
static void exchange(peer *a, peer *b)
{
    const char *ids[] = {b->id};
    char rid[RDV_REQUEST_ID_LEN + 1];
    assert_int_equal(rdv_client_lookup(a->c, ids, 1, rid), 0);
    WAIT_FOR(a, a->n_presence >= 1, WAIT_MS);
    assert_int_equal(a->n_presence_peers, 1);
    assert_string_equal(a->presence[0].node_id, b->id);
    assert_true(a->presence[0].online);
    assert_int_equal(a->presence[0].nat_type, RDV_NAT_PORT_RESTRICTED);

    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    rdv_connection_info ci;
    fill_info(&ci);
    b->answer_in_cb = true;
    assert_int_equal(rdv_client_send_offer(a->c, b->id, sid, &ci), 0);
    WAIT_FOR(b, b->n_offer == 1, WAIT_MS);
    assert_string_equal(b->offer.from_node_id, a->id);
    assert_string_equal(b->offer.to_node_id, b->id);
    assert_string_equal(b->offer.session_id, sid);
    assert_string_equal(b->offer.info.public_ip, "203.0.113.5");
    assert_int_equal(b->offer.info.public_port, 41641);
    assert_string_equal(b->offer.info.local_ip, "10.0.0.5");
    assert_int_equal(b->offer.info.local_port, 51820);
    assert_int_equal(b->offer.info.nat_type, RDV_NAT_SYMMETRIC);
    assert_string_equal(b->offer.info.wg_public_key, ci.wg_public_key);
    assert_int_equal(b->cb_answer_rc, 0); /* answered from inside cb_offer */

    WAIT_FOR(a, a->n_answer == 1, WAIT_MS);
    assert_string_equal(a->answer.from_node_id, b->id);
    assert_string_equal(a->answer.session_id, sid);
    assert_string_equal(a->answer.info.public_ip, "198.51.100.20");
    assert_int_equal(a->answer.info.nat_type, RDV_NAT_PORT_RESTRICTED);

    rdv_candidate cand = {0};
    strcpy(cand.ip, "10.0.0.5");
    cand.port = 51820;
    strcpy(cand.type, "host");
    cand.priority = 2130706431u;
    strcpy(cand.foundation, "1");
    assert_int_equal(rdv_client_send_candidate(a->c, b->id, sid, &cand), 0);
    rdv_candidate c2 = {0};
    strcpy(c2.ip, "2001:db8::7");
    c2.port = 3478;
    strcpy(c2.type, "serverReflexive");
    c2.priority = 1694498815u;
    strcpy(c2.related_ip, "fd00::20");
    c2.related_port = 51820;
    assert_int_equal(rdv_client_send_candidate(b->c, a->id, sid, &c2), 0);
    WAIT_FOR(b, b->n_cand == 1, WAIT_MS);
    assert_string_equal(b->cand.from_node_id, a->id);
    assert_string_equal(b->cand.candidate.ip, "10.0.0.5");
    assert_int_equal(b->cand.candidate.priority, 2130706431u);
    assert_string_equal(b->cand.candidate.type, "host");
    assert_string_equal(b->cand.candidate.foundation, "1");
    WAIT_FOR(a, a->n_cand == 1, WAIT_MS);
    assert_string_equal(a->cand.candidate.ip, "2001:db8::7");
    assert_string_equal(a->cand.candidate.related_ip, "fd00::20");
    assert_int_equal(a->cand.candidate.related_port, 51820);
    assert_string_equal(a->cand.candidate.type, "serverReflexive");
    settle(100);
    assert_int_equal(a->n_error, 0);
    assert_int_equal(b->n_error, 0);
}

static void test_signaling(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    peer *a = peer_new(port, "alice", false, RDV_NAT_SYMMETRIC, 0);
    peer *b = peer_new(port, "bob", false, RDV_NAT_PORT_RESTRICTED, 0);
    peer_start(a);
    peer_start(b);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);

    rdv_client_info info;
    assert_int_equal(rdv_client_get_info(a->c, &info), 0);
    assert_int_equal(info.state, RDV_STATE_AUTHENTICATED);
    assert_string_equal(info.node_id, a->id);
    assert_string_equal(info.observed_ip, "127.0.0.1");
    assert_true(info.observed_port > 0);
    assert_true(info.limits.max_message_bytes > 0);
    assert_true(info.limits.offline_ttl_ms > 0);
    assert_true(info.server_name[0] != '\0');
    assert_true(info.server_time_offset_ms > -5000 && info.server_time_offset_ms < 5000);
    assert_int_equal(info.connects, 1);
    int64_t st = rdv_client_server_time_ms(a->c);
    assert_true(st > 1700000000000LL);

    exchange(a, b);

    /* Invalid arguments are refused locally. */
    rdv_connection_info ci = {0};
    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    assert_int_equal(rdv_client_send_offer(a->c, a->id, sid, &ci), RDV_ERR_INVALID);
    assert_int_equal(rdv_client_send_offer(a->c, "nothex", sid, &ci), RDV_ERR_INVALID);
    assert_int_equal(rdv_client_send_offer(a->c, b->id, "not-a-uuid", &ci), RDV_ERR_INVALID);
    strcpy(ci.public_ip, "999.1.1.1");
    assert_int_equal(rdv_client_send_offer(a->c, b->id, sid, &ci), RDV_ERR_INVALID);
    assert_true(rdv_ts_server_log_clean(s));
}

static void test_forged(void **state)
{
    (void)state;
    /* signature checks and the replay filter off: a server that routes
     * what a node must refuse itself */
    const char *args[] = {"--verify-signatures", "off", "--replay-cache", "0", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    peer *b = peer_new(port, "bob", false, RDV_NAT_PORT_RESTRICTED, 0);
    peer_start(b);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);

    rdv_tn x;
    rdv_tn_init(&x, "mallory");
    rdv_ws *ws = rdv_tn_connect(port, &x);
    assert_non_null(ws);

    /* 1. Forged signature: routed by the server (checks off), refused by
     * the library. */
    size_t len;
    rdv_tn_forge bad = {.bad_signature = true};
    char *t = rdv_tn_offer(&x, b->id, NULL, &bad, &len);
    assert_non_null(t);
    assert_int_equal(rdv_ws_send_text(ws, t, len), 0);
    free(t);
    WAIT_FOR(b, count_err(b, RDV_ERR_BAD_SIGNATURE) == 1, WAIT_MS);
    assert_string_equal(b->err_from, x.id);

    /* 2. A body altered after signing (sessionID replaced): the
     * signature belongs to another message. */
    char *t1 = rdv_tn_answer(&x, b->id, NULL, NULL, &len);
    assert_non_null(t1);
    json_t *j = json_loads(t1, 0, NULL);
    free(t1);
    assert_non_null(j);
    json_t *body = json_object_get(j, "answer");
    json_object_set_new(body, "sessionID", json_string("6f9619ff-8b86-4d01-b42d-00cf4fc964ff"));
    char *t2 = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_int_equal(rdv_ws_send_str(ws, t2), 0);
    free(t2);
    WAIT_FOR(b, count_err(b, RDV_ERR_BAD_SIGNATURE) == 2, WAIT_MS);

    /* 3. An honest offer passes; its replayed copy is dropped. */
    t = rdv_tn_offer(&x, b->id, NULL, NULL, &len);
    assert_non_null(t);
    assert_int_equal(rdv_ws_send_text(ws, t, len), 0);
    WAIT_FOR(b, b->n_offer == 1, WAIT_MS);
    assert_string_equal(b->offer.from_node_id, x.id);
    assert_int_equal(rdv_ws_send_text(ws, t, len), 0);
    free(t);
    WAIT_FOR(b, count_err(b, RDV_ERR_DUPLICATE) == 1, WAIT_MS);

    /* 4. A large offer (an unknown 48 KiB field, covered by the
     * signature) is reassembled from its fragments and verified. */
    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    char *big = malloc(48 * 1024 + 1);
    assert_non_null(big);
    memset(big, 'x', 48 * 1024);
    big[48 * 1024] = '\0';
    json_t *ob = json_pack("{s:s, s:s, s:o, s:s}", "toNodeID", b->id, "sessionID", sid,
                           "connectionInfo", rdv_tn_connection_info(), "zzFuture", big);
    free(big);
    t = rdv_tn_sign_body(&x, RDV_MSG_OFFER, ob, NULL, &len);
    assert_non_null(t);
    assert_true(len > 48 * 1024);
    assert_int_equal(rdv_ws_send_text(ws, t, len), 0);
    free(t);
    WAIT_FOR(b, b->n_offer == 2, WAIT_MS);
    assert_string_equal(b->offer.session_id, sid);

    settle(200);
    assert_int_equal(b->n_offer, 2);
    assert_int_equal(b->n_answer, 0);
    assert_int_equal(b->n_error, 3);
    rdv_ws_close(ws);
}

/* Offline recipients: an offer to an offline node is queued (cb_queued)
 * and delivered, verified, when it connects; one to a node that never
 * comes expires into RDV_ERR_PEER_OFFLINE with the sessionID as ref. */
static void test_queued(void **state)
{
    (void)state;
    const char *args[] = {"--offline-ttl", "1000", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    peer *a = peer_new(port, "alice", false, RDV_NAT_SYMMETRIC, 0);
    peer *b = peer_new(port, "bob", false, RDV_NAT_PORT_RESTRICTED, 0);
    peer_start(a);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);

    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    rdv_connection_info ci;
    fill_info(&ci);
    assert_int_equal(rdv_client_send_offer(a->c, b->id, sid, &ci), 0);
    WAIT_FOR(a, a->n_queued == 1, WAIT_MS);
    assert_string_equal(a->queued.session_id, sid);
    assert_string_equal(a->queued.to_node_id, b->id);
    assert_string_equal(a->queued.type, "offer");
    assert_true(a->queued.expires_at > rdv_client_server_time_ms(a->c));
    peer_start(b);
    WAIT_FOR(b, b->n_offer == 1, WAIT_MS);
    assert_string_equal(b->offer.session_id, sid);
    assert_string_equal(b->offer.from_node_id, a->id);

    rdv_tn carol;
    rdv_tn_init(&carol, "carol");
    rdv_session_id_generate(sid);
    assert_int_equal(rdv_client_send_offer(a->c, carol.id, sid, &ci), 0);
    WAIT_FOR(a, a->n_queued == 2, WAIT_MS);
    WAIT_FOR(a, count_err(a, RDV_ERR_PEER_OFFLINE) == 1, WAIT_MS);
    assert_string_equal(a->err_ref, sid);
    assert_int_equal(b->n_error, 0);
}

/* A free loopback TCP port (bound then released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_reconnect(void **state)
{
    (void)state;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", free_port());
    const char *args[] = {"--port", portstr, NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    assert_int_equal(port, atoi(portstr));

    peer *a = peer_new(port, "alice", false, RDV_NAT_SYMMETRIC, 0);
    peer *b = peer_new(port, "bob", false, RDV_NAT_PORT_RESTRICTED, 0);
    char bob_id[RDV_NODE_ID_LEN + 1];
    strcpy(bob_id, b->id);
    const char *ids[] = {bob_id};
    /* Watching before the first connection is allowed: it is state. */
    assert_int_equal(rdv_client_watch(a->c, ids, 1), 0);
    assert_int_equal(rdv_client_watch(a->c, ids, 1), 0); /* no duplicate */
    assert_int_equal(rdv_client_watch_count(a->c), 1);
    peer_start(a);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED && a->n_presence >= 1, WAIT_MS);
    assert_false(a->presence[0].online);
    peer_start(b);
    WAIT_FOR(a, a->n_online == 1, WAIT_MS);
    assert_string_equal(a->online.node_id, b->id);
    assert_int_equal(a->online.nat_type, RDV_NAT_PORT_RESTRICTED);

    /* Kill the server: both notice and fail fast while it is down. */
    rdv_ts_server_kill(s);
    WAIT_FOR(a, a->n_disc >= 1 && a->state != RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->n_disc >= 1 && b->state != RDV_STATE_AUTHENTICATED, WAIT_MS);
    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    rdv_connection_info ci;
    fill_info(&ci);
    long long t0 = rdv_ts_mono_ms();
    assert_int_equal(rdv_client_send_offer(a->c, b->id, sid, &ci), RDV_ERR_NOT_CONNECTED);
    assert_int_equal(rdv_client_lookup(a->c, ids, 1, NULL), RDV_ERR_NOT_CONNECTED);
    long long dt = rdv_ts_mono_ms() - t0;
    assert_true(dt < 500); /* no waiting for the 3 s connect timeout */
    WAIT_FOR(a, count_err(a, RDV_ERR_CONNECT) >= 2, WAIT_MS); /* retrying */

    /* Restart on the same port: both come back, the watch is restored. */
    int presences = a->n_presence;
    assert_int_equal(rdv_ts_server_restart(s), 0);
    assert_int_equal(rdv_ts_server_port(s), port);
    WAIT_FOR(a, a->n_auth == 2 && a->n_presence > presences, WAIT_MS);
    WAIT_FOR(b, b->n_auth == 2, WAIT_MS);
    rdv_client_info info;
    assert_int_equal(rdv_client_get_info(a->c, &info), 0);
    assert_int_equal(info.connects, 2);
    assert_int_equal(info.reconnect_attempt, 0);

    /* The server knows a's watch again: b leaving is pushed to a. */
    peer_free(b);
    WAIT_FOR(a, a->n_offline >= 1, WAIT_MS);
    assert_string_equal(a->offline.node_id, ids[0]);

    /* Unwatch while connected, then nothing more is pushed. */
    /* (b may have come back after a re-sent its watch: peerOnline then.) */
    int onlines = a->n_online;
    assert_int_equal(rdv_client_unwatch(a->c, ids, 1), 0);
    assert_int_equal(rdv_client_watch_count(a->c), 0);
    peer *b2 = peer_new(port, "bob", false, RDV_NAT_PORT_RESTRICTED, 0);
    peer_start(b2);
    WAIT_FOR(b2, b2->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    settle(300);
    assert_int_equal(a->n_online, onlines);
    assert_true(rdv_ts_server_log_clean(s));
}

static void test_not_connected(void **state)
{
    (void)state;
    int port = free_port(); /* nothing listens there */
    peer *a = peer_new(port, "alice", false, RDV_NAT_UNKNOWN, 3);
    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    rdv_connection_info ci;
    fill_info(&ci);
    rdv_tn bob;
    rdv_tn_init(&bob, "bob");
    /* Before start, and while connecting. */
    assert_int_equal(rdv_client_send_offer(a->c, bob.id, sid, &ci), RDV_ERR_NOT_CONNECTED);
    assert_int_equal(rdv_client_state(a->c), RDV_STATE_DISCONNECTED);
    peer_start(a);
    assert_int_equal(rdv_client_start(a->c), RDV_ERR_STATE);
    assert_int_equal(rdv_client_process(a->c), RDV_ERR_STATE);
    rdv_candidate cand = {0};
    strcpy(cand.ip, "10.0.0.1");
    cand.port = 1;
    strcpy(cand.type, "host");
    assert_int_equal(rdv_client_send_candidate(a->c, bob.id, sid, &cand),
                     RDV_ERR_NOT_CONNECTED);
    /* Three refused connections, then FAILED. */
    WAIT_FOR(a, a->state == RDV_STATE_FAILED, WAIT_MS);
    assert_int_equal(count_err(a, RDV_ERR_CONNECT), 3);
    rdv_client_info info;
    assert_int_equal(rdv_client_get_info(a->c, &info), 0);
    assert_int_equal(info.last_error, RDV_ERR_CONNECT);
    assert_int_equal(info.connects, 0);
    const char *ids[] = {bob.id};
    assert_int_equal(rdv_client_lookup(a->c, ids, 1, NULL), RDV_ERR_NOT_CONNECTED);

    /* Bad configurations are refused at create. */
    rdv_identity id;
    assert_int_equal(rdv_identity_generate(&id), 0);
    rdv_client_config cfg = {0};
    rdv_client *c = NULL;
    cfg.identity = &id;
    cfg.server_url = "http://127.0.0.1:1/v1";
    assert_int_equal(rdv_client_create(&cfg, &c), RDV_ERR_BAD_URL);
    assert_non_null(strstr(rdv_strerror(RDV_ERR_BAD_URL), "ws:// or wss://"));
    cfg.server_url = "ws://";
    assert_int_equal(rdv_client_create(&cfg, &c), RDV_ERR_BAD_URL);
    cfg.server_url = "ws://[::1]:99999/";
    assert_int_equal(rdv_client_create(&cfg, &c), RDV_ERR_BAD_URL);
    cfg.server_url = NULL;
    assert_int_equal(rdv_client_create(&cfg, &c), RDV_ERR_INVALID);
    cfg.server_url = "wss://[::1]:4443";
    assert_int_equal(rdv_client_create(&cfg, &c), 0);
    rdv_client_destroy(c);
    cfg.server_url = "ws://127.0.0.1:1/v1";
    cfg.reconnect.jitter_percent = 101;
    assert_int_equal(rdv_client_create(&cfg, &c), RDV_ERR_INVALID);
    cfg.reconnect.jitter_percent = 0;
    id.public_key[0] ^= 1; /* halves that do not belong together */
    assert_int_equal(rdv_client_create(&cfg, &c), RDV_ERR_INVALID);
    rdv_identity_wipe(&id);
}

static void test_embedded(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    peer *a = peer_new(port, "alice", true, RDV_NAT_SYMMETRIC, 0);
    peer *b = peer_new(port, "bob", true, RDV_NAT_PORT_RESTRICTED, 0);
    int fa = rdv_client_fd(a->c);
    assert_true(fa >= 0);
    assert_int_equal(rdv_client_timeout_ms(a->c), 0); /* connect now */
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    assert_int_equal(rdv_client_fd(a->c), fa); /* stable */
    assert_int_equal(rdv_client_start(a->c), RDV_ERR_STATE);

    /* Idle: the fd is quiet and the timeout is a real wait. */
    settle(100);
    struct pollfd pfd = {.fd = fa, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    int t = rdv_client_timeout_ms(a->c);
    assert_true(t > 20 && t <= 1000);

    /* An API call from "another part of the app" makes the fd readable. */
    const char *ids[] = {b->id};
    assert_int_equal(rdv_client_lookup(a->c, ids, 1, NULL), 0);
    assert_int_equal(poll(&pfd, 1, 100), 1);

    exchange(a, b);
}

static void test_callback_api(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    for (int embedded = 0; embedded <= 1; embedded++) {
        peer *b = peer_new(port, "bob", embedded, RDV_NAT_PORT_RESTRICTED, 0);
        b->answer_in_cb = true; /* answer from cb_offer */
        peer_start(b);
        WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
        peer *a = peer_new(port, "alice", embedded, RDV_NAT_SYMMETRIC, 0);
        /* a: on AUTHENTICATED, lookup b from the state callback; on the
         * presence answer, offer from the presence callback. */
        a->api_in_cb = true;
        strcpy(a->offer_to, b->id);
        peer_start(a);
        WAIT_FOR(a, a->cb_api_done && a->cb_offer_done, WAIT_MS);
        assert_int_equal(a->cb_lookup_rc, 0);
        assert_int_equal(a->cb_offer_rc, 0);
        assert_int_equal(a->cb_process_rc, embedded ? RDV_ERR_BUSY : RDV_ERR_STATE);
        WAIT_FOR(b, b->n_offer == 1, WAIT_MS);
        assert_int_equal(b->cb_answer_rc, 0);
        WAIT_FOR(a, a->n_answer == 1, WAIT_MS);
        assert_string_equal(a->answer.session_id, b->offer.session_id);
        assert_int_equal(a->n_error, 0);
        assert_int_equal(b->n_error, 0);
        peer_free(a);
        peer_free(b);
    }
}

/* Keep-alive: an idle connection stays up (pings answered), a server
 * that stops answering (SIGSTOP) is detected within 2 x keepalive_ms and
 * the client comes back once it answers again. */
static void test_keepalive(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    peer_opts po = {.keepalive_ms = 200};
    peer *a = peer_new_ex(port, "alice", false, RDV_NAT_UNKNOWN, 0, &po);
    peer_start(a);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    settle(1200); /* 6 x keepalive_ms of silence from the application */
    assert_int_equal(a->n_disc, 0);
    assert_int_equal(a->n_error, 0);

    assert_int_equal(rdv_ts_server_signal(s, SIGSTOP), 0);
    long long t0 = rdv_ts_mono_ms();
    WAIT_FOR(a, a->n_disc >= 1, WAIT_MS);
    long long dt = rdv_ts_mono_ms() - t0;
    assert_true(dt <= 2000); /* 2 x 200 ms, with room for a loaded CI */
    assert_true(count_err(a, RDV_ERR_TIMEOUT) >= 1);
    assert_int_equal(rdv_ts_server_signal(s, SIGCONT), 0);
    WAIT_FOR(a, a->n_auth == 2, WAIT_MS);
}

/* Many threads send at once; every message arrives, verified. */
#define SEND_THREADS 4
#define SENDS_PER_THREAD 40
struct sender {
    peer *from;
    const char *to;
    const char *sid;
    int sent;
};

static void *sender_main(void *arg)
{
    struct sender *sd = arg;
    for (int i = 0; i < SENDS_PER_THREAD; i++) {
        rdv_candidate cand = {0};
        snprintf(cand.ip, sizeof(cand.ip), "10.0.%d.%d", i / 250, i % 250 + 1);
        cand.port = (uint16_t)(1000 + i);
        strcpy(cand.type, "host");
        cand.priority = (uint32_t)i;
        int rc;
        while ((rc = rdv_client_send_candidate(sd->from->c, sd->to, sd->sid, &cand)) ==
               RDV_ERR_BACKLOG)
            usleep(1000);
        if (rc == 0)
            sd->sent++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    const char *args[] = {"--rate", "10000", "--burst", "10000", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    peer *a = peer_new(port, "alice", false, RDV_NAT_UNKNOWN, 0);
    peer *b = peer_new(port, "bob", false, RDV_NAT_UNKNOWN, 0);
    peer_start(a);
    peer_start(b);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    char sid[RDV_SESSION_ID_LEN + 1];
    rdv_session_id_generate(sid);
    pthread_t th[SEND_THREADS];
    struct sender sd[SEND_THREADS];
    for (int i = 0; i < SEND_THREADS; i++) {
        sd[i] = (struct sender){.from = a, .to = b->id, .sid = sid};
        assert_int_equal(pthread_create(&th[i], NULL, sender_main, &sd[i]), 0);
    }
    for (int i = 0; i < SEND_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(sd[i].sent, SENDS_PER_THREAD);
    }
    WAIT_FOR(b, b->n_cand == SEND_THREADS * SENDS_PER_THREAD, WAIT_MS);
    settle(100);
    assert_int_equal(b->n_error, 0);
    assert_int_equal(a->n_error, 0);
}

/* wss://: a server with a self-signed certificate; the client trusts it
 * through tls_ca_file, and refuses it without. */
static void test_tls(void **state)
{
    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        fprintf(stderr, "client_tls: no openssl command to make a certificate "
                        "(apt-get install openssl)\n");
        skip();
    }
    char dir[] = "/tmp/rdv-client-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[1024], cert[128], key[128];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    const char *args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    char url[128];
    snprintf(url, sizeof(url), "wss://localhost:%d/v1", port);
    peer_opts po = {.url = url, .ca = cert};
    peer *a = peer_new_ex(port, "alice", false, RDV_NAT_UNKNOWN, 0, &po);
    peer *b = peer_new_ex(port, "bob", true, RDV_NAT_PORT_RESTRICTED, 0, &po);
    peer_start(a);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    exchange(a, b);

    peer_opts untrusted = {.url = url};
    peer *c = peer_new_ex(port, "carol", false, RDV_NAT_UNKNOWN, 1, &untrusted);
    peer_start(c);
    WAIT_FOR(c, c->state == RDV_STATE_FAILED, WAIT_MS);
    assert_int_equal(c->n_auth, 0);
    assert_int_equal(count_err(c, RDV_ERR_TLS_VERIFY), 1);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_signaling, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_forged, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_reconnect, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_not_connected, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_embedded, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_callback_api, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_keepalive, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_threads, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_tls, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_queued, rdv_ts_peers_teardown),
    };
    if (argc > 1) {
        static char filter[64];
        snprintf(filter, sizeof(filter), "test_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
