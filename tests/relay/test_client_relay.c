/* test_client_relay.c - client_relay_* integration tests: the session API of
 * librendezvous against a real rendezvousd on loopback (tests/support),
 * with raw test nodes (tests/support/node.h) that bypass the library to
 * see exactly what the server forwards.
 *
 * One executable, one ctest per test (`test_relay NAME`). Tests:
 *   data       two threaded clients: open (accepted from inside
 *              cb_session_request), datagrams of every size 0..max both
 *              ways, intact (per-direction BLAKE2b over sequence-numbered
 *              datagrams); too-big refused; sends from inside callbacks;
 *   bulk       10 MB one way, paced and honouring RDV_ERR_BACKLOG, hash
 *              equal at the receiver;
 *   reject     the peer rejects with a reason (err 0 + that reason); a
 *              client without cb_session_request rejects; an offline peer
 *              ends the opening session with RDV_ERR_PEER_OFFLINE;
 *   close      rdv_session_close: the peer gets cb_session_closed(0), sends
 *              on the closed session fail with RDV_ERR_NO_SESSION; the
 *              connection dropping ends sessions with RDV_ERR_CONNECT;
 *   plaintext  a raw node opens a relay to a library client with its own
 *              X25519 key: the bytes the server forwards to it carry no
 *              plaintext marker, yet decrypt (libsodium directly, by the
 *              documented packet format) to exactly the marker; the raw
 *              node's own encrypted marker reaches the library in clear;
 *   replay     the raw node re-sends a captured ciphertext (binary and as
 *              text relayData): delivered once, the copies dropped with
 *              RDV_ERR_DUPLICATE;
 *   tamper     a ciphertext with one flipped bit, or sealed under the
 *              wrong session ID: dropped with RDV_ERR_DECRYPT, no data;
 *   limits     server limits: maxRelaySessions counted locally
 *              (RDV_ERR_LIMIT), the recipient's limit refusing its
 *              relayReady (both sides end with RDV_ERR_LIMIT), the session
 *              quota (closed "quota" on both sides), a server with the
 *              relay off (RDV_ERR_NOT_SUPPORTED);
 *   proxy      two local UDP sockets talk through two rdv_session_proxy
 *              sockets and the relay, both ways, with the proxy following
 *              the last local sender;
 *   channel    the relay channel (PROTOCOL.md 9.5): both clients open it
 *              once a session is open and their data goes over it (the
 *              server's channel metrics), a stream both ways arrives whole;
 *   channel_refused  the server offers it but refuses the upgrade (its
 *              connection limit): the client relays over main instead
 *              (with a raw node as the peer);
 *   channel_off  --relay-channel off: none opened, data over main.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include <rendezvous/rendezvous.h>

#include "client_peer.h"
#include "schema/ids.h"
#include "node.h"
#include "server.h"
#include "udp.h"

#define WAIT_MS 8000
#define MAX_SEEN 64

typedef struct rpeer {
    rdv_client *c;
    char id[RDV_NODE_ID_LEN + 1];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* behaviour */
    int accept_mode;           /* 1 accept, 2 reject with reject_reason */
    const char *reject_reason;
    bool echo;                 /* send every datagram back (from the cb) */
    /* observations */
    rdv_state state;
    int n_request, n_ready, n_closed, n_data, n_error;
    int accept_rc, echo_rc;
    char sid[RDV_SESSION_ID_LEN + 1];   /* last request / ready session */
    char closed_sid[RDV_SESSION_ID_LEN + 1];
    int closed_err;
    char closed_reason[128];
    int err_codes[MAX_SEEN];
    uint8_t last_data[70000];
    size_t last_len;
    uint64_t rx_bytes;
    uint64_t next_seq;          /* data: expected sequence number */
    int seq_errors;
    crypto_generichash_state hash;
} rpeer;

static int count_err(rpeer *p, int code)
{
    int n = 0;
    for (int i = 0; i < p->n_error && i < MAX_SEEN; i++)
        n += p->err_codes[i] == code;
    return n;
}

static void on_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    rpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->state = st;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_request(rdv_client *c, const rdv_session_request *r, void *u)
{
    rpeer *p = u;
    int rc = 0;
    if (p->accept_mode == 1)
        rc = rdv_session_accept(c, r->session_id); /* from inside the callback */
    else if (p->accept_mode == 2)
        rc = rdv_session_reject(c, r->session_id, p->reject_reason);
    pthread_mutex_lock(&p->mu);
    p->n_request++;
    p->accept_rc = rc;
    snprintf(p->sid, sizeof(p->sid), "%s", r->session_id);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_ready(rdv_client *c, const char *sid, const char *peer, void *u)
{
    (void)c;
    (void)peer;
    rpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->n_ready++;
    snprintf(p->sid, sizeof(p->sid), "%s", sid);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_data(rdv_client *c, const char *sid, const uint8_t *d, size_t len, void *u)
{
    rpeer *p = u;
    int rc = 0;
    if (p->echo)
        rc = rdv_session_send(c, sid, d, len); /* API from inside a callback */
    pthread_mutex_lock(&p->mu);
    p->n_data++;
    p->rx_bytes += len;
    if (len <= sizeof(p->last_data)) {
        memcpy(p->last_data, d, len);
        p->last_len = len;
    }
    if (len >= 8) {
        uint64_t seq;
        memcpy(&seq, d, 8);
        if (seq != p->next_seq)
            p->seq_errors++;
        p->next_seq = seq + 1;
    }
    crypto_generichash_update(&p->hash, d, len);
    if (rc)
        p->echo_rc = rc;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_closed(rdv_client *c, const char *sid, int err, const char *reason, void *u)
{
    (void)c;
    rpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->n_closed++;
    p->closed_err = err;
    snprintf(p->closed_sid, sizeof(p->closed_sid), "%s", sid);
    snprintf(p->closed_reason, sizeof(p->closed_reason), "%s", reason);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

static void on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    rpeer *p = u;
    pthread_mutex_lock(&p->mu);
    if (p->n_error < MAX_SEEN)
        p->err_codes[p->n_error] = e->code;
    p->n_error++;
    pthread_mutex_unlock(&p->mu);
    if (getenv("RDV_TEST_VERBOSE"))
        fprintf(stderr, "[%.8s] error %d (%s): %s\n", p->id, e->code,
                e->server_code ? e->server_code : "local", e->message);
    pthread_cond_broadcast(&p->cv);
}

/* Frees a peer (an rpeer; void * as the registry's free function). */
static void peer_free(void *v)
{
    rpeer *p = v;
    rdv_ts_peer_untrack(p);
    rdv_client_destroy(p->c);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* A threaded client with identity `label`; handler=false leaves
 * cb_session_request unset. */
static rpeer *peer_new(int port, const char *label, bool handler)
{
    /* crypto_generichash_state is 64-byte aligned. */
    rpeer *p = aligned_alloc(64, (sizeof(*p) + 63) / 64 * 64);
    assert_non_null(p);
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    crypto_generichash_init(&p->hash, NULL, 0, 32);
    rdv_identity id;
    rdv_ts_identity(label, &id, p->id);
    char url[128];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/v1", port);
    rdv_client_config cfg;
    rdv_ts_client_config(&cfg, url, &id);
    cfg.cb_state_changed = on_state;
    cfg.cb_session_request = handler ? on_request : NULL;
    cfg.cb_session_ready = on_ready;
    cfg.cb_session_data = on_data;
    cfg.cb_session_closed = on_closed;
    cfg.cb_error = on_error;
    cfg.user_ptr = p;
    assert_int_equal(rdv_client_create(&cfg, &p->c), 0);
    rdv_identity_wipe(&id);
    assert_int_equal(rdv_ts_peer_track(p, peer_free), 0);
    assert_int_equal(rdv_client_start(p->c), 0);
    return p;
}

/* WAIT_FOR(p, expr, ms): expr under p->mu, bounded (client_peer.h). */
#define WAIT_FOR RDV_TS_WAIT_FOR

/* a opens to b (b accepts from its callback); returns with both open. */
static void open_pair(rpeer *a, rpeer *b, char sid[RDV_SESSION_ID_LEN + 1])
{
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    b->accept_mode = 1;
    assert_int_equal(rdv_session_open(a->c, b->id, sid), 0);
    assert_true(rdv_uuid_valid(sid, strlen(sid)));
    WAIT_FOR(a, a->n_ready == 1, WAIT_MS);
    assert_string_equal(a->sid, sid);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    assert_int_equal(b->accept_rc, 0);
    assert_string_equal(b->sid, sid);
    assert_int_equal(rdv_client_session_count(a->c), 1);
    assert_int_equal(rdv_client_session_count(b->c), 1);
}

/* Sends datagram i of a test stream: 8-byte sequence number, then
 * pseudo-random bytes; size cycles through 8..max. Retries on BACKLOG. */
static void send_seq(rpeer *from, const char *sid, uint64_t seq, size_t len,
                     crypto_generichash_state *h)
{
    uint8_t buf[70000];
    memcpy(buf, &seq, 8);
    for (size_t k = 8; k < len; k++)
        buf[k] = (uint8_t)(seq * 131 + k * 7);
    crypto_generichash_update(h, buf, len);
    long long end = rdv_ts_mono_ms() + WAIT_MS;
    for (;;) {
        int rc = rdv_session_send(from->c, sid, buf, len);
        if (rc == 0)
            return;
        assert_int_equal(rc, RDV_ERR_BACKLOG);
        assert_true(rdv_ts_mono_ms() < end);
        usleep(1000);
    }
}

static void hash_final(crypto_generichash_state *h, uint8_t out[32])
{
    crypto_generichash_final(h, out, 32);
}

static void test_data(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    char sid[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);

    size_t max = rdv_client_max_payload(a->c);
    assert_int_equal(max, 16384 - RDV_RELAY_OVERHEAD);
    uint8_t big[16384];
    memset(big, 0, sizeof(big));
    assert_int_equal(rdv_session_send(a->c, sid, big, max + 1), RDV_ERR_TOO_LARGE);
    assert_int_equal(rdv_session_send(a->c, "6f9619ff-8b86-4d01-b42d-00cf4fc964ff", big, 10),
                     RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_send(a->c, "nope", big, 10), RDV_ERR_INVALID);

    /* Both directions at once, sizes 8 .. max. */
    const int N = 150;
    crypto_generichash_state ha, hb;
    crypto_generichash_init(&ha, NULL, 0, 32);
    crypto_generichash_init(&hb, NULL, 0, 32);
    uint64_t bytes_ab = 0, bytes_ba = 0;
    for (int i = 0; i < N; i++) {
        size_t la = 8 + (size_t)i * (max - 8) / (N - 1);
        size_t lb = max - (size_t)i * (max - 8) / (N - 1);
        send_seq(a, sid, (uint64_t)i, la, &ha);
        send_seq(b, sid, (uint64_t)i, lb, &hb);
        bytes_ab += la;
        bytes_ba += lb;
    }
    WAIT_FOR(b, b->n_data == N, WAIT_MS);
    WAIT_FOR(a, a->n_data == N, WAIT_MS);
    assert_int_equal(b->seq_errors, 0);
    assert_int_equal(a->seq_errors, 0);
    assert_int_equal(b->rx_bytes, bytes_ab);
    assert_int_equal(a->rx_bytes, bytes_ba);
    uint8_t sa[32], sb[32], ra[32], rb[32];
    hash_final(&ha, sa);
    hash_final(&hb, sb);
    hash_final(&b->hash, rb);
    hash_final(&a->hash, ra);
    assert_memory_equal(sa, rb, 32); /* what a sent is what b got */
    assert_memory_equal(sb, ra, 32);

    /* An empty datagram, and an echo sent from inside cb_session_data. */
    b->echo = true;
    assert_int_equal(rdv_session_send(a->c, sid, "", 0), 0);
    WAIT_FOR(a, a->n_data == N + 1, WAIT_MS);
    assert_int_equal(a->last_len, 0);
    assert_int_equal(b->echo_rc, 0);

    rdv_network_status st;
    assert_int_equal(rdv_client_get_network_status(a->c, &st), 0);
    assert_int_equal(st.active_relays, 1);
    assert_int_equal(st.last_path, RDV_PATH_RELAYED);
    assert_int_equal(st.relays_opened, 1);
    assert_true(st.relay_tx_bytes >= bytes_ab);
    assert_int_equal(st.last_relay_error, 0);
    assert_true(st.relay_available);
    assert_string_equal(rdv_path_name(st.last_path), "Relayed");
    assert_int_equal(a->n_error, 0);
    assert_int_equal(b->n_error, 0);
    assert_true(rdv_ts_server_log_clean(s));
}

static void test_bulk(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    char sid[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);
    size_t max = rdv_client_max_payload(a->c);
    const uint64_t total = 10u * 1000 * 1000;
    rdv_client_info info;
    assert_int_equal(rdv_client_get_info(a->c, &info), 0);
    double rate = info.limits.relay_bytes_per_second > 0
                      ? 0.8 * (double)info.limits.relay_bytes_per_second
                      : 1e12;
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    uint64_t sent = 0, seq = 0;
    long long t0 = rdv_ts_mono_ms();
    while (sent < total) {
        /* Pace below the server's relayBytesPerSecond (it drops above);
         * and keep the receiver's queue short (the server drops data for
         * a congested receiver: datagram semantics). */
        double budget = rate * (double)(rdv_ts_mono_ms() - t0) / 1000.0 + rate / 8;
        pthread_mutex_lock(&b->mu);
        uint64_t got = b->rx_bytes;
        pthread_mutex_unlock(&b->mu);
        if ((double)sent > budget || sent - got > 512 * 1024) {
            usleep(1000);
            continue;
        }
        size_t len = total - sent < max ? (size_t)(total - sent) : max;
        if (len < 8)
            len = 8;
        send_seq(a, sid, seq++, len, &h);
        sent += len;
    }
    WAIT_FOR(b, b->rx_bytes >= sent, 60000);
    assert_int_equal(b->seq_errors, 0);
    assert_int_equal(b->rx_bytes, sent);
    uint8_t x[32], y[32];
    hash_final(&h, x);
    hash_final(&b->hash, y);
    assert_memory_equal(x, y, 32);
    assert_int_equal(b->n_error, 0);
    fprintf(stderr, "relayed %llu bytes in %lld ms\n", (unsigned long long)sent,
            rdv_ts_mono_ms() - t0);
}

static void test_reject(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    rpeer *n = peer_new(port, "nohandler", false);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(n, n->state == RDV_STATE_AUTHENTICATED, WAIT_MS);

    /* 1. Rejected with a reason. */
    b->accept_mode = 2;
    b->reject_reason = "not today";
    char sid[RDV_SESSION_ID_LEN + 1];
    assert_int_equal(rdv_session_open(a->c, b->id, sid), 0);
    WAIT_FOR(a, a->n_closed == 1, WAIT_MS);
    assert_string_equal(a->closed_sid, sid);
    assert_int_equal(a->closed_err, 0);
    assert_string_equal(a->closed_reason, "not today");
    assert_int_equal(a->n_ready, 0);
    assert_int_equal(b->accept_rc, 0);
    assert_int_equal(rdv_session_send(a->c, sid, "x", 1), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_reject(b->c, sid, NULL), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_accept(b->c, sid), RDV_ERR_NO_SESSION);

    /* 2. No handler: rejected by the library. */
    assert_int_equal(rdv_session_open(a->c, n->id, sid), 0);
    WAIT_FOR(a, a->n_closed == 2, WAIT_MS);
    assert_int_equal(a->closed_err, 0);
    assert_string_equal(a->closed_reason, "no relay handler");

    /* 3. Offline peer. */
    rdv_tn ghost;
    rdv_tn_init(&ghost, "ghost");
    assert_int_equal(rdv_session_open(a->c, ghost.id, sid), 0);
    WAIT_FOR(a, a->n_closed == 3, WAIT_MS);
    assert_string_equal(a->closed_sid, sid);
    assert_int_equal(a->closed_err, RDV_ERR_PEER_OFFLINE);
    rdv_network_status st;
    assert_int_equal(rdv_client_get_network_status(a->c, &st), 0);
    assert_int_equal(st.last_relay_error, RDV_ERR_PEER_OFFLINE);
    assert_int_equal(st.active_relays, 0);
    assert_int_equal(st.last_path, RDV_PATH_UNKNOWN);

    /* The ended session is gone; bad arguments (the ID is cleared). */
    assert_int_equal(rdv_session_close(a->c, sid), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_open(a->c, a->id, sid), RDV_ERR_INVALID);
    assert_string_equal(sid, "");
    assert_int_equal(rdv_session_open(a->c, "xyz", sid), RDV_ERR_INVALID);
    assert_int_equal(rdv_session_close(a->c, sid), RDV_ERR_INVALID);
}

static void test_close(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    char sid[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);
    assert_int_equal(rdv_session_send(a->c, sid, "hello", 5), 0);
    WAIT_FOR(b, b->n_data == 1, WAIT_MS);
    /* Closed by a: b is told (err 0), a is not (its own close). */
    assert_int_equal(rdv_session_close(a->c, sid), 0);
    WAIT_FOR(b, b->n_closed == 1, WAIT_MS);
    assert_string_equal(b->closed_sid, sid);
    assert_int_equal(b->closed_err, 0);
    assert_int_equal(rdv_session_send(a->c, sid, "x", 1), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_send(b->c, sid, "x", 1), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_close(a->c, sid), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_client_session_count(a->c), 0);
    assert_int_equal(rdv_client_session_count(b->c), 0);
    assert_int_equal(a->n_closed, 0);

    /* A second session; the server goes away: both sides see
     * RDV_ERR_CONNECT. */
    a->n_ready = 0;
    b->n_request = 0;
    open_pair(a, b, sid);
    assert_int_equal(rdv_ts_server_kill(s), 128 + 9);
    WAIT_FOR(a, a->n_closed == 1, WAIT_MS);
    assert_int_equal(a->closed_err, RDV_ERR_CONNECT);
    WAIT_FOR(b, b->n_closed == 2, WAIT_MS);
    assert_int_equal(b->closed_err, RDV_ERR_CONNECT);
    assert_int_equal(rdv_client_session_count(a->c), 0);
    assert_int_equal(rdv_session_send(a->c, sid, "x", 1), RDV_ERR_NO_SESSION);
}

static void test_limits(void **state)
{
    (void)state;
    const char *args[] = {"--relay-max-sessions", "1", "--relay-quota", "3000", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    rpeer *c = peer_new(port, "carol", true);
    char sid[RDV_SESSION_ID_LEN + 1], sid2[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);
    rdv_client_info info;
    assert_int_equal(rdv_client_get_info(a->c, &info), 0);
    assert_int_equal(info.limits.max_relay_sessions, 1);
    assert_int_equal(info.limits.relay_session_quota, 3000);
    /* 1. a's own limit, counted locally. */
    assert_int_equal(rdv_session_open(a->c, c->id, sid2), RDV_ERR_LIMIT);
    assert_string_equal(sid2, "");
    /* 2. b is at its limit: its relayReady to c is refused by the server;
     * b ends the session and tells c. */
    WAIT_FOR(c, c->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    assert_int_equal(rdv_session_open(c->c, b->id, sid2), 0);
    WAIT_FOR(b, b->n_closed == 1, WAIT_MS);
    assert_string_equal(b->closed_sid, sid2);
    assert_int_equal(b->closed_err, RDV_ERR_LIMIT);
    WAIT_FOR(c, c->n_closed == 1, WAIT_MS);
    assert_int_equal(c->closed_err, RDV_ERR_LIMIT);
    assert_int_equal(c->n_ready, 0);
    assert_int_equal(rdv_client_session_count(b->c), 1); /* the first session lives */
    /* 3. Quota: 3000 payload bytes per session, then closed on both
     * sides. */
    uint8_t buf[1000];
    memset(buf, 7, sizeof(buf));
    for (int i = 0; i < 3; i++)
        assert_int_equal(rdv_session_send(a->c, sid, buf, sizeof(buf)), 0);
    /* The third passed the quota: the server's relayClose may already have
     * ended the session locally when the fourth is sent. */
    int rc4 = rdv_session_send(a->c, sid, buf, sizeof(buf));
    assert_true(rc4 == 0 || rc4 == RDV_ERR_NO_SESSION);
    WAIT_FOR(a, a->n_closed == 1, WAIT_MS);
    assert_int_equal(a->closed_err, RDV_ERR_LIMIT);
    assert_string_equal(a->closed_reason, "quota");
    WAIT_FOR(b, b->n_closed == 2, WAIT_MS);
    assert_int_equal(b->closed_err, RDV_ERR_LIMIT);
    /* The server counts packet bytes (1000 + RDV_RELAY_OVERHEAD): the
     * third datagram would pass 3000, so two arrived. */
    assert_int_equal(b->n_data, 2);
    rdv_network_status st;
    assert_int_equal(rdv_client_get_network_status(a->c, &st), 0);
    assert_int_equal(st.last_relay_error, RDV_ERR_LIMIT);
    assert_int_equal(st.active_relays, 0);
    assert_true(rdv_ts_server_log_clean(s));
}

static void test_relay_off(void **state)
{
    (void)state;
    const char *args[] = {"--relay-max-sessions", "0", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    char sid[RDV_SESSION_ID_LEN + 1];
    assert_int_equal(rdv_session_open(a->c, b->id, sid), RDV_ERR_NOT_SUPPORTED);
    rdv_network_status st;
    assert_int_equal(rdv_client_get_network_status(a->c, &st), 0);
    assert_false(st.relay_available);
    assert_int_equal(b->n_request, 0);
}

/* ---- the relay channel (PROTOCOL.md 9.5) -------------------------------- */

/* Value of /metrics series `series` (line "series value"), -1 if absent. */
static long long metric(rdv_ts_server *s, const char *series)
{
    char *body = NULL;
    int st = rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &body, 5000);
    long long v = -1;
    size_t n = strlen(series);
    for (char *line = st == 200 ? body : NULL; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!strncmp(line, series, n) && line[n] == ' ') {
            v = atoll(line + n + 1);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(body);
    return v;
}

#define CHAN_IN "rendezvous_relay_channel_frames_total{direction=\"in\"}"
#define CHAN_OUT "rendezvous_relay_channel_frames_total{direction=\"out\"}"

/* Sends 4-byte probes both ways (no sequence number: on_data checks none)
 * until cond holds, bounded; returns whether it did. */
#define PROBE_UNTIL(s, a, b, sid, cond)                                         \
    ({                                                                          \
        bool ok_ = false;                                                       \
        long long end_ = rdv_ts_mono_ms() + WAIT_MS;                            \
        while (!ok_ && rdv_ts_mono_ms() < end_) {                               \
            int rca_ = rdv_session_send((a)->c, sid, "prb", 4);                 \
            int rcb_ = rdv_session_send((b)->c, sid, "prb", 4);                 \
            (void)rca_;                                                         \
            (void)rcb_;                                                         \
            usleep(20000);                                                      \
            ok_ = (cond);                                                       \
        }                                                                       \
        ok_;                                                                    \
    })

/* Both directions of a sequence stream of n datagrams arrive in full. */
static void stream_both(rpeer *a, rpeer *b, const char *sid, int n)
{
    crypto_generichash_state ha, hb;
    crypto_generichash_init(&ha, NULL, 0, 32);
    crypto_generichash_init(&hb, NULL, 0, 32);
    pthread_mutex_lock(&a->mu);
    int a0 = a->n_data;
    a->next_seq = 0;
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&b->mu);
    int b0 = b->n_data;
    b->next_seq = 0;
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < n; i++) {
        send_seq(a, sid, (uint64_t)i, 64 + (size_t)i * 97 % 9000, &ha);
        send_seq(b, sid, (uint64_t)i, 64 + (size_t)i * 89 % 9000, &hb);
        if (i % 16 == 15)
            usleep(2000); /* datagrams: keep far from the server's drop threshold */
    }
    WAIT_FOR(b, b->n_data == b0 + n, WAIT_MS);
    WAIT_FOR(a, a->n_data == a0 + n, WAIT_MS);
    assert_int_equal(a->seq_errors + b->seq_errors, 0);
}

/* The welcome offers a channel: once a session is open both clients open
 * theirs, their relay data goes on it (frames in and out of channels),
 * and a stream both ways arrives whole. */
static void test_channel(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    char sid[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);
    assert_true(PROBE_UNTIL(s, a, b, sid,
                            metric(s, "rendezvous_relay_channels") == 2 &&
                                metric(s, CHAN_IN) > 0 && metric(s, CHAN_OUT) > 0));
    long long in0 = metric(s, CHAN_IN), out0 = metric(s, CHAN_OUT);
    stream_both(a, b, sid, 100);
    /* every frame of the stream came in on a channel and left on one */
    assert_true(metric(s, CHAN_IN) >= in0 + 200);
    assert_true(metric(s, CHAN_OUT) >= out0 + 200);
    assert_int_equal(metric(s, "rendezvous_nodes_authenticated"), 2);
}

/* --relay-channel off: no channel offered, none opened, relay data on the
 * main connections. */
static void test_channel_off(void **state)
{
    (void)state;
    const char *args[] = {"--relay-channel", "off", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    char sid[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);
    stream_both(a, b, sid, 60);
    assert_int_equal(metric(s, CHAN_IN), 0);
    assert_int_equal(metric(s, CHAN_OUT), 0);
    assert_int_equal(metric(s, "rendezvous_connections_total"), 2);
}

/* ---- raw relay end (the test plays the peer with libsodium only) ---- */

typedef struct raw_end {
    rdv_tn tn;
    rdv_ws *ws;
    uint8_t pk[32], sk[32], rx[32], tx[32];
    uint8_t sidb[16];
    char sid[RDV_SESSION_ID_LEN + 1];
    uint64_t tx_ctr;
} raw_end;

/* The raw node opens a relay to library peer b (which accepts) and
 * derives the keys from b's relayReady. */
static void raw_open(raw_end *r, int port, rpeer *b)
{
    rdv_tn_init(&r->tn, "rawnode");
    r->ws = rdv_tn_connect(port, &r->tn);
    assert_non_null(r->ws);
    crypto_kx_keypair(r->pk, r->sk);
    rdv_uuid_v4(r->sid);
    assert_int_equal(rdv_uuid_to_bytes(r->sid, r->sidb), 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), r->pk, 32);
    json_t *body = json_pack("{s:s, s:s, s:s}", "toNodeID", b->id, "sessionID", r->sid,
                             "e2eKey", hex);
    size_t len;
    char *t = rdv_tn_sign_body(&r->tn, RDV_MSG_RELAY_OPEN, body, NULL, &len);
    assert_non_null(t);
    b->accept_mode = 1;
    assert_int_equal(rdv_ws_send_text(r->ws, t, len), 0);
    free(t);
    json_t *ready = rdv_expect(r->ws, "relayReady", WAIT_MS);
    assert_non_null(ready);
    assert_string_equal(rdv_json_str(ready, "sessionID"), r->sid);
    assert_string_equal(rdv_json_str(ready, "fromNodeID"), b->id);
    const char *key = rdv_json_str(ready, "e2eKey");
    assert_int_equal(strlen(key), 64);
    uint8_t bpk[32];
    assert_int_equal(sodium_hex2bin(bpk, 32, key, 64, NULL, NULL, NULL), 0);
    /* The opener is the crypto_kx client (PROTOCOL.md 9.4). */
    assert_int_equal(crypto_kx_client_session_keys(r->rx, r->tx, r->pk, r->sk, bpk), 0);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    assert_int_equal(b->accept_rc, 0);
}

/* Builds a binary relay frame carrying `msg` sealed with the raw end's tx
 * key at its next counter (ad = the AAD to use). Returns its length. */
static size_t raw_seal(raw_end *r, const void *msg, size_t len, const uint8_t ad[16],
                       uint8_t *frame)
{
    frame[0] = 0x01;
    memcpy(frame + 1, r->sidb, 16);
    uint8_t *pkt = frame + 17;
    uint64_t n = r->tx_ctr++;
    for (int i = 0; i < 8; i++)
        pkt[i] = (uint8_t)(n >> (8 * i));
    uint8_t nonce[12] = {0};
    memcpy(nonce + 4, pkt, 8);
    unsigned long long clen;
    crypto_aead_chacha20poly1305_ietf_encrypt(pkt + 8, &clen, msg, len, ad, 16, NULL, nonce,
                                              r->tx);
    return 17 + 8 + (size_t)clen;
}

/* Next binary frame from the server (text frames are skipped). */
static uint8_t *raw_recv_binary(raw_end *r, size_t *len)
{
    long long end = rdv_ts_mono_ms() + WAIT_MS;
    while (rdv_ts_mono_ms() < end) {
        bool bin = false;
        char *m = rdv_ws_recv_any(r->ws, 200, len, &bin);
        if (m && bin)
            return (uint8_t *)m;
        free(m);
    }
    return NULL;
}

/* A server, library peer "bob" (which accepts) and a raw end r that has
 * opened a relay session to it. Returns bob. */
static rpeer *raw_session(raw_end *r)
{
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *b = peer_new(port, "bob", true);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    memset(r, 0, sizeof(*r));
    raw_open(r, port, b);
    return b;
}

static const char MARKER[] = "PLAINTEXT-MARKER-7f3a9c: the server must never see this";

static void test_plaintext(void **state)
{
    (void)state;
    raw_end r;
    rpeer *b = raw_session(&r);

    /* Library -> raw: the forwarded bytes hold no plaintext... */
    for (int i = 0; i < 3; i++)
        assert_int_equal(rdv_session_send(b->c, r.sid, MARKER, sizeof(MARKER)), 0);
    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        uint8_t *f = raw_recv_binary(&r, &len);
        assert_non_null(f);
        assert_int_equal(len, 17 + 8 + sizeof(MARKER) + 16);
        assert_int_equal(f[0], 0x01);
        assert_memory_equal(f + 1, r.sidb, 16);
        assert_null(memmem(f, len, MARKER, 8));          /* no prefix of it */
        assert_null(memmem(f, len, "server must", 11));  /* nor a middle */
        /* ...and decrypt, by the documented format, to the marker. */
        uint64_t n = 0;
        for (int k = 7; k >= 0; k--)
            n = n << 8 | f[17 + k];
        assert_int_equal(n, (uint64_t)i);
        uint8_t nonce[12] = {0};
        memcpy(nonce + 4, f + 17, 8);
        uint8_t pt[256];
        unsigned long long plen;
        assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(
                             pt, &plen, NULL, f + 25, len - 25, r.sidb, 16, nonce, r.rx),
                         0);
        assert_int_equal(plen, sizeof(MARKER));
        assert_memory_equal(pt, MARKER, sizeof(MARKER));
        free(f);
    }
    /* Raw -> library: sealed by the test, opened by the library. */
    uint8_t frame[512];
    size_t fl = raw_seal(&r, MARKER, sizeof(MARKER), r.sidb, frame);
    assert_null(memmem(frame, fl, MARKER, 8));
    assert_int_equal(rdv_ws_send_binary(r.ws, frame, fl), 0);
    WAIT_FOR(b, b->n_data == 1, WAIT_MS);
    assert_int_equal(b->last_len, sizeof(MARKER));
    assert_memory_equal(b->last_data, MARKER, sizeof(MARKER));
    assert_int_equal(b->n_error, 0);
    rdv_ws_close(r.ws);
}

/* The server offers relay channels but refuses the upgrade (its
 * connection limit is full with the two main connections): library peer
 * bob tries, falls back, and relays over its main connection both ways
 * with a raw node (one library client: lws' logging is not thread-safe
 * across contexts, and two refused upgrades at once would race in it). */
static void test_channel_refused(void **state)
{
    (void)state;
    const char *args[] = {"--max-connections", "2", NULL};
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    int port = rdv_ts_server_port(s);
    rpeer *b = peer_new(port, "bob", true);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    raw_end r;
    memset(&r, 0, sizeof(r));
    raw_open(&r, port, b);
    long long end = rdv_ts_mono_ms() + WAIT_MS;
    while (metric(s, "rendezvous_connections_refused_total") < 1) {
        assert_true(rdv_ts_mono_ms() < end);
        int rc = rdv_session_send(b->c, r.sid, "prb", 4);
        (void)rc;
        usleep(20000);
    }
    /* bob -> raw, over bob's main connection */
    assert_int_equal(rdv_session_send(b->c, r.sid, MARKER, sizeof(MARKER)), 0);
    bool got = false;
    for (int i = 0; i < 1000 && !got; i++) {
        size_t len = 0;
        uint8_t *f = raw_recv_binary(&r, &len);
        assert_non_null(f);
        got = len == 17 + 8 + sizeof(MARKER) + 16;
        free(f);
    }
    assert_true(got);
    /* raw -> bob */
    uint8_t frame[512];
    size_t fl = raw_seal(&r, MARKER, sizeof(MARKER), r.sidb, frame);
    assert_int_equal(rdv_ws_send_binary(r.ws, frame, fl), 0);
    WAIT_FOR(b, b->n_data >= 1 && b->last_len == sizeof(MARKER), WAIT_MS);
    assert_memory_equal(b->last_data, MARKER, sizeof(MARKER));
    assert_int_equal(metric(s, CHAN_IN), 0);
    assert_int_equal(metric(s, CHAN_OUT), 0);
    assert_int_equal(metric(s, "rendezvous_relay_channels"), 0);
    rdv_ws_close(r.ws);
}

static void test_replay(void **state)
{
    (void)state;
    raw_end r;
    rpeer *b = raw_session(&r);
    uint8_t f1[256], f2[256];
    size_t l1 = raw_seal(&r, "first", 5, r.sidb, f1);
    size_t l2 = raw_seal(&r, "second", 6, r.sidb, f2);
    assert_int_equal(rdv_ws_send_binary(r.ws, f1, l1), 0);
    WAIT_FOR(b, b->n_data == 1, WAIT_MS);
    /* The captured ciphertext again: dropped. */
    assert_int_equal(rdv_ws_send_binary(r.ws, f1, l1), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DUPLICATE) == 1, WAIT_MS);
    /* The same ciphertext in the text form (base64): dropped too. */
    char b64[512];
    sodium_bin2base64(b64, sizeof(b64), f1 + 17, l1 - 17, sodium_base64_VARIANT_ORIGINAL);
    char text[700];
    snprintf(text, sizeof(text), "{\"relayData\":{\"sessionID\":\"%s\",\"data\":\"%s\"}}", r.sid,
             b64);
    assert_int_equal(rdv_ws_send_str(r.ws, text), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DUPLICATE) == 2, WAIT_MS);
    /* A later packet still passes; then it too cannot be replayed. */
    assert_int_equal(rdv_ws_send_binary(r.ws, f2, l2), 0);
    WAIT_FOR(b, b->n_data == 2, WAIT_MS);
    assert_int_equal(b->last_len, 6);
    assert_memory_equal(b->last_data, "second", 6);
    assert_int_equal(rdv_ws_send_binary(r.ws, f2, l2), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DUPLICATE) == 3, WAIT_MS);
    /* A fresh packet in the text form is delivered. */
    uint8_t f3[256];
    size_t l3 = raw_seal(&r, "third", 5, r.sidb, f3);
    sodium_bin2base64(b64, sizeof(b64), f3 + 17, l3 - 17, sodium_base64_VARIANT_ORIGINAL);
    snprintf(text, sizeof(text), "{\"relayData\":{\"sessionID\":\"%s\",\"data\":\"%s\"}}", r.sid,
             b64);
    assert_int_equal(rdv_ws_send_str(r.ws, text), 0);
    WAIT_FOR(b, b->n_data == 3, WAIT_MS);
    assert_memory_equal(b->last_data, "third", 5);
    rdv_network_status st;
    assert_int_equal(rdv_client_get_network_status(b->c, &st), 0);
    assert_int_equal(st.relay_dropped, 3);
    assert_int_equal(st.relay_rx_datagrams, 3);
    rdv_ws_close(r.ws);
}

static void test_tamper(void **state)
{
    (void)state;
    raw_end r;
    rpeer *b = raw_session(&r);
    uint8_t f[256];
    /* One flipped ciphertext bit. */
    size_t l = raw_seal(&r, "tampered", 8, r.sidb, f);
    f[17 + 8 + 2] ^= 0x04;
    assert_int_equal(rdv_ws_send_binary(r.ws, f, l), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DECRYPT) == 1, WAIT_MS);
    /* A flipped tag bit. */
    l = raw_seal(&r, "tampered", 8, r.sidb, f);
    f[l - 1] ^= 0x80;
    assert_int_equal(rdv_ws_send_binary(r.ws, f, l), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DECRYPT) == 2, WAIT_MS);
    /* Sealed for another session ID (AAD mismatch). */
    uint8_t other[16];
    memcpy(other, r.sidb, 16);
    other[15] ^= 1;
    l = raw_seal(&r, "tampered", 8, other, f);
    assert_int_equal(rdv_ws_send_binary(r.ws, f, l), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DECRYPT) == 3, WAIT_MS);
    /* Sealed with the wrong key (our rx key instead of tx). */
    memcpy(r.tx, r.rx, 32);
    l = raw_seal(&r, "tampered", 8, r.sidb, f);
    assert_int_equal(rdv_ws_send_binary(r.ws, f, l), 0);
    WAIT_FOR(b, count_err(b, RDV_ERR_DECRYPT) == 4, WAIT_MS);
    usleep(100000);
    assert_int_equal(b->n_data, 0);
    assert_int_equal(rdv_client_session_count(b->c), 1); /* the session survives */
    rdv_ws_close(r.ws);
}

/* ---- proxy ---- */

static int udp_socket(uint16_t *port)
{
    *port = 0;
    int fd = rdv_ts_udp_socket_at("127.0.0.1", port);
    assert_true(fd >= 0);
    return fd;
}

static void test_proxy(void **state)
{
    (void)state;
    rdv_ts_server *s = rdv_ts_server_start_or_fail(NULL);
    int port = rdv_ts_server_port(s);
    rpeer *a = peer_new(port, "alice", true);
    rpeer *b = peer_new(port, "bob", true);
    char sid[RDV_SESSION_ID_LEN + 1];
    open_pair(a, b, sid);

    /* App A talks to proxy A; app B listens on its own port, which proxy
     * B forwards to (WireGuard's two ends). */
    uint16_t pa_app, pb_app, pa, pb;
    int app_a = udp_socket(&pa_app);
    int app_b = udp_socket(&pb_app);
    char fwd[64];
    snprintf(fwd, sizeof(fwd), "127.0.0.1:%u", pb_app);
    assert_int_equal(rdv_session_proxy(a->c, sid, "127.0.0.1:0", NULL, &pa), 0);
    assert_int_equal(rdv_session_proxy(b->c, sid, "127.0.0.1:0", fwd, &pb), 0);
    assert_int_equal(rdv_session_proxy(b->c, sid, "127.0.0.1:0", fwd, NULL), RDV_ERR_STATE);
    assert_int_equal(rdv_session_proxy(a->c, sid, "nonsense", NULL, NULL), RDV_ERR_INVALID);
    assert_true(pa != 0 && pb != 0);

    /* 20 datagrams each way, then a WireGuard-sized one. */
    const char *why = rdv_ts_proxy_round_trip(app_a, pa, app_b, pb, 20);
    if (why)
        fail_msg("proxy round trip: %s", why);
    /* The data went through the proxies, not cb_session_data. */
    assert_int_equal(a->n_data, 0);
    assert_int_equal(b->n_data, 0);
    /* Closing the session closes the proxy socket. */
    assert_int_equal(rdv_session_close(a->c, sid), 0);
    WAIT_FOR(b, b->n_closed == 1, WAIT_MS);
    close(app_a);
    close(app_b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_data, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_bulk, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_reject, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_close, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_plaintext, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_replay, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_tamper, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_proxy, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_limits, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_relay_off, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_channel, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_channel_refused, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_channel_off, rdv_ts_peers_teardown),
    };
    if (argc > 1) {
        static char filter[64];
        snprintf(filter, sizeof(filter), "test_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("client_relay", tests, NULL, NULL);
}
