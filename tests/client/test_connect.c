/* test_connect.c - client_connect_* integration tests: NAT discovery and
 * rdv_session_connect() (direct path with the relay as fallback) of librendezvous
 * against a real rendezvousd on loopback (tests/support/server.h), whose
 * STUN responder the clients use (stun_servers = the server's STUN port).
 * On loopback there is no NAT: discovery finds our own address, and two
 * clients of this host reach each other directly; config nat_type forces
 * the symmetric decision (relay first, then upgrade).
 *
 * One executable, one ctest per test: `test_connect NAME` runs the cmocka
 * test NAME. Tests:
 *   discovery      against an RFC 5780 server (alternate port and
 *                  address 127.0.0.2): nat_discovered within 10 s, no NAT,
 *                  fullCone, the public endpoint from STUN = 127.0.0.1 and
 *                  our UDP port, method and server named; against a plain
 *                  server: no NAT, endpoint from STUN;
 *   dead_stun      the first STUN server is a test socket that never
 *                  answers: it receives retransmissions (>= 2 copies of one
 *                  request), discovery still finishes with the second;
 *   answer_waits   B's only STUN server never answers (discovery ends
 *                  after 19 RTO, the type unknown); B accepts A's request
 *                  before that: its answer (with its type) waits for the end
 *                  of its discovery, so A's first path comes only after it
 *                  (issue 19: the answer, like the offer, waits for the
 *                  mapping behaviour);
 *   direct         A rdv_session_connect()s B (accepted from cb_session_request with
 *                  req->direct = 1): first and only path DIRECT on both,
 *                  one cb_session_ready on A, session info (path, times,
 *                  remote = B's endpoint), 200 datagrams of 0..1200 bytes
 *                  both ways intact (hash), direct counters, network
 *                  status (direct_sessions, last_path Direct);
 *   relay_only     A has direct_disable: RELAYED on both, stays so, data
 *                  intact, A's session names a direct error;
 *   upgrade        A claims a symmetric NAT: RELAYED first (data sent on
 *                  it from the path callback), then DIRECT within 10 s,
 *                  upgraded = 1; a continuous two-way stream across the
 *                  switch: every datagram received is intact, few lost;
 *   both_symmetric both symmetric: RELAYED and still only RELAYED after 3 s;
 *   close          rdv_session_close() of a direct session: B gets
 *                  cb_session_closed(0) within 5 s; sends fail with
 *                  RDV_ERR_NO_SESSION on both sides;
 *   proxy          rdv_session_proxy() on both ends of a direct session: two
 *                  local UDP sockets talk through it both ways (direct
 *                  counters grow);
 *   stranger       fixed UDP ports; a third socket sends A garbage, STUN,
 *                  and PROBE / ACK / DATA with the real session ID but a
 *                  wrong MAC / key: A never answers it, the session stays
 *                  DIRECT with the same remote, data still intact;
 *   reconnect_survives  the server stops: the direct session still carries
 *                  data both ways without the WebSocket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <sodium.h>

#include <rendezvous/rendezvous.h>

#include "client_peer.h"
#include "schema/ids.h"
#include "node.h"
#include "server.h"
#include "udp.h"
#include "schema/stun.h"

#define WAIT_MS 10000          /* generous bound for every wait */
#define CLOSE_WAIT_MS 5000     /* cb_session_closed after the peer's close */
#define MAX_PATHS 16           /* cb_path calls recorded per peer */
#define MAX_SEEN 64            /* cb_error codes recorded per peer */
#define SEQ_MAX 65536          /* verify mode: sequence numbers tracked */
#define DGRAM_MAX 1200         /* largest test datagram (direct test) */
#define N_MIXED 200            /* datagrams per direction (direct test) */
#define VERIFY_HDR 12          /* verify mode: seq LE64 | len LE32 */

typedef struct cpeer {
    rdv_client *c;
    char id[RDV_NODE_ID_LEN + 1];
    char label[16];
    pthread_mutex_t mu;
    /* behaviour */
    int accept_mode;            /* 1: accept from cb_session_request, 2: reject */
    bool verify;                /* data: per-datagram check, not a hash */
    int relay_burst;            /* send this many datagrams from cb_path
                                 * when the first path is RELAYED */
    atomic_uint_fast64_t tx_seq; /* verify mode: next sequence number */
    /* observations */
    rdv_state state;
    int n_request, n_ready, n_closed, n_data, n_error;
    int accept_rc, req_direct;
    rdv_nat_type req_peer_nat;
    char sid[RDV_SESSION_ID_LEN + 1];  /* last request / ready session */
    char ready_peer[RDV_NODE_ID_LEN + 1];
    char closed_sid[RDV_SESSION_ID_LEN + 1];
    int closed_err;
    char closed_reason[128];
    int n_path;
    int paths[MAX_PATHS];
    int64_t path_ms[MAX_PATHS];
    char path_sid[RDV_SESSION_ID_LEN + 1];
    char path_peer[RDV_NODE_ID_LEN + 1];
    int data_at_direct;         /* n_data when cb_path DIRECT came; -1 */
    int burst_rc;
    int err_codes[MAX_SEEN];
    /* data */
    uint64_t rx_bytes;
    crypto_generichash_state hash; /* hash mode: LE32 len | bytes, in order */
    uint64_t good, bad, dup;       /* verify mode */
    uint8_t seen[SEQ_MAX / 8];
    uint8_t last_data[2048];
    size_t last_len;
} cpeer;

/* How peer_new configures a client; zero = defaults. */
typedef struct popts {
    const char *stun[4];        /* "ip:port"; stun[0] NULL: the test server's */
    size_t nstun;
    rdv_nat_type nat;
    int direct_disable;
    uint16_t udp_port;
    int stun_rto_ms;
    int spray_ports;
    int direct_timeout_ms;
} popts;

/* ---- datagrams ---- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint8_t verify_byte(uint64_t seq, size_t k)
{
    return (uint8_t)(seq * 31 + k * 13 + 0x5a);
}

/* Verify mode: datagram `seq` of length len (>= VERIFY_HDR). */
static void verify_fill(uint8_t *buf, uint64_t seq, size_t len)
{
    put_le(buf, seq, 8);
    put_le(buf + 8, len, 4);
    for (size_t k = VERIFY_HDR; k < len; k++)
        buf[k] = verify_byte(seq, k);
}

static bool verify_check(const uint8_t *d, size_t len, uint64_t *seq)
{
    if (len < VERIFY_HDR || get_le(d + 8, 4) != len)
        return false;
    *seq = get_le(d, 8);
    for (size_t k = VERIFY_HDR; k < len; k++)
        if (d[k] != verify_byte(*seq, k))
            return false;
    return true;
}

/* Hash mode: datagram i of direction `dir`, length len. */
static void mixed_fill(uint8_t *buf, int i, int dir, size_t len)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 131 + k * 7 + dir * 17);
}

static void hash_dgram(crypto_generichash_state *h, const uint8_t *d, size_t len)
{
    uint8_t l[4];
    put_le(l, len, 4);
    crypto_generichash_update(h, l, 4);
    crypto_generichash_update(h, d, len);
}

/* Sends one datagram on the session; retries while RDV_ERR_BACKLOG
 * (bounded). Returns the last result. */
static int send_dgram(cpeer *p, const char *sid, const void *buf, size_t len)
{
    long long end = rdv_ts_mono_ms() + WAIT_MS;
    for (;;) {
        int rc = rdv_session_send(p->c, sid, buf, len);
        if (rc != RDV_ERR_BACKLOG || rdv_ts_mono_ms() > end)
            return rc;
        usleep(1000);
    }
}

/* Verify mode: sends the peer's next sequence number with a size from
 * VERIFY_HDR to VERIFY_HDR + 999. */
static int send_verify(cpeer *p, const char *sid)
{
    uint8_t buf[VERIFY_HDR + 1000];
    uint64_t seq = atomic_fetch_add(&p->tx_seq, 1);
    size_t len = VERIFY_HDR + (size_t)(seq * 389 % 1000);
    verify_fill(buf, seq, len);
    return send_dgram(p, sid, buf, len);
}

/* ---- callbacks ---- */

static void on_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    cpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->state = st;
    pthread_mutex_unlock(&p->mu);
}

static void on_request(rdv_client *c, const rdv_session_request *r, void *u)
{
    cpeer *p = u;
    int rc = 0;
    if (p->accept_mode == 1)
        rc = rdv_session_accept(c, r->session_id); /* from inside the callback */
    else if (p->accept_mode == 2)
        rc = rdv_session_reject(c, r->session_id, NULL);
    pthread_mutex_lock(&p->mu);
    p->n_request++;
    p->accept_rc = rc;
    p->req_direct = r->direct;
    p->req_peer_nat = r->peer_nat;
    snprintf(p->sid, sizeof(p->sid), "%s", r->session_id);
    pthread_mutex_unlock(&p->mu);
}

static void on_ready(rdv_client *c, const char *sid, const char *peer, void *u)
{
    (void)c;
    cpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->n_ready++;
    snprintf(p->sid, sizeof(p->sid), "%s", sid);
    snprintf(p->ready_peer, sizeof(p->ready_peer), "%s", peer);
    pthread_mutex_unlock(&p->mu);
}

static void on_data(rdv_client *c, const char *sid, const uint8_t *d, size_t len, void *u)
{
    (void)c;
    (void)sid;
    cpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->n_data++;
    p->rx_bytes += len;
    if (len <= sizeof(p->last_data)) {
        memcpy(p->last_data, d, len);
        p->last_len = len;
    }
    if (p->verify) {
        uint64_t seq;
        if (!verify_check(d, len, &seq) || seq >= SEQ_MAX) {
            p->bad++;
        } else if (p->seen[seq / 8] & (1u << (seq % 8))) {
            p->dup++;
        } else {
            p->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
            p->good++;
        }
    } else {
        hash_dgram(&p->hash, d, len);
    }
    pthread_mutex_unlock(&p->mu);
}

static void on_closed(rdv_client *c, const char *sid, int err, const char *reason, void *u)
{
    (void)c;
    cpeer *p = u;
    pthread_mutex_lock(&p->mu);
    p->n_closed++;
    p->closed_err = err;
    snprintf(p->closed_sid, sizeof(p->closed_sid), "%s", sid);
    snprintf(p->closed_reason, sizeof(p->closed_reason), "%s", reason);
    pthread_mutex_unlock(&p->mu);
}

static void on_path(rdv_client *c, const char *sid, const char *peer, rdv_path path,
                    int64_t elapsed_ms, void *u)
{
    cpeer *p = u;
    pthread_mutex_lock(&p->mu);
    bool first = p->n_path == 0;
    if (p->n_path < MAX_PATHS) {
        p->paths[p->n_path] = path;
        p->path_ms[p->n_path] = elapsed_ms;
    }
    p->n_path++;
    snprintf(p->path_sid, sizeof(p->path_sid), "%s", sid);
    snprintf(p->path_peer, sizeof(p->path_peer), "%s", peer);
    if (path == RDV_PATH_DIRECT && p->data_at_direct < 0)
        p->data_at_direct = p->n_data;
    int burst = first && path == RDV_PATH_RELAYED ? p->relay_burst : 0;
    pthread_mutex_unlock(&p->mu);
    if (getenv("RDV_TEST_VERBOSE"))
        fprintf(stderr, "[%s] path %s after %lld ms\n", p->label, rdv_path_name(path),
                (long long)elapsed_ms);
    /* Data on the relay before any upgrade can happen: sent from here. */
    for (int i = 0; i < burst; i++) {
        int rc = send_verify(p, sid);
        if (rc) {
            pthread_mutex_lock(&p->mu);
            p->burst_rc = rc;
            pthread_mutex_unlock(&p->mu);
        }
    }
    (void)c;
}

static void on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    cpeer *p = u;
    pthread_mutex_lock(&p->mu);
    if (p->n_error < MAX_SEEN)
        p->err_codes[p->n_error] = e->code;
    p->n_error++;
    pthread_mutex_unlock(&p->mu);
    if (getenv("RDV_TEST_VERBOSE"))
        fprintf(stderr, "[%s] error %d (%s): %s\n", p->label, e->code,
                e->server_code ? e->server_code : "local", e->message);
}

/* ---- peers ---- */

/* Frees a peer (a cpeer; void * as the registry's free function). */
static void peer_free(void *v)
{
    cpeer *p = v;
    rdv_ts_peer_untrack(p);
    rdv_client_destroy(p->c);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A threaded client with identity `label`, STUN at the server's STUN port
 * unless o says otherwise. */
static cpeer *peer_new(rdv_ts_server *s, const char *label, const popts *o)
{
    /* crypto_generichash_state is 64-byte aligned. */
    cpeer *p = aligned_alloc(64, (sizeof(*p) + 63) / 64 * 64);
    assert_non_null(p);
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    crypto_generichash_init(&p->hash, NULL, 0, 32);
    atomic_init(&p->tx_seq, 0);
    p->data_at_direct = -1;
    snprintf(p->label, sizeof(p->label), "%s", label);
    rdv_identity id;
    rdv_ts_identity(label, &id, p->id);
    char url[128], stun[64];
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/v1", rdv_ts_server_port(s));
    snprintf(stun, sizeof(stun), "127.0.0.1:%d", rdv_ts_server_stun_port(s));
    const char *def_stun[1] = {stun};
    rdv_client_config cfg;
    rdv_ts_client_config(&cfg, url, &id);
    cfg.cb_state_changed = on_state;
    cfg.cb_session_request = on_request;
    cfg.cb_session_ready = on_ready;
    cfg.cb_session_data = on_data;
    cfg.cb_session_closed = on_closed;
    cfg.cb_path = on_path;
    cfg.cb_error = on_error;
    cfg.user_ptr = p;
    if (o && o->nstun) {
        cfg.stun_servers = o->stun;
        cfg.stun_server_count = o->nstun;
    } else {
        cfg.stun_servers = def_stun;
        cfg.stun_server_count = 1;
    }
    if (o) {
        cfg.nat_type = o->nat;
        cfg.direct_disable = o->direct_disable;
        cfg.udp_port = o->udp_port;
        cfg.stun_rto_ms = o->stun_rto_ms;
        cfg.spray_ports = o->spray_ports;
        cfg.direct_timeout_ms = o->direct_timeout_ms;
    }
    assert_int_equal(rdv_client_create(&cfg, &p->c), 0);
    rdv_identity_wipe(&id);
    assert_int_equal(rdv_ts_peer_track(p, peer_free), 0);
    assert_int_equal(rdv_client_start(p->c), 0);
    return p;
}

/* Waits (bounded) until expr holds, evaluated under p->mu (client_peer.h). */
#define WAIT_FOR RDV_TS_WAIT_FOR

static int peer_get(cpeer *p, const int *field)
{
    pthread_mutex_lock(&p->mu);
    int v = *field;
    pthread_mutex_unlock(&p->mu);
    return v;
}

static rdv_nat_type peer_req_nat(cpeer *p)
{
    pthread_mutex_lock(&p->mu);
    rdv_nat_type v = p->req_peer_nat;
    pthread_mutex_unlock(&p->mu);
    return v;
}

static rdv_ts_server *start_server(const char *const *args)
{
    rdv_ts_server *s = rdv_ts_server_start_or_fail(args);
    assert_true(rdv_ts_server_stun_port(s) > 0);
    return s;
}

static void status_of(cpeer *p, rdv_network_status *st)
{
    memset(st, 0, sizeof(*st));
    assert_int_equal(rdv_client_get_network_status(p->c, st), 0);
}

/* Waits (bounded) for the end of p's NAT discovery. */
static void wait_discovered(cpeer *p, int ms)
{
    long long end = rdv_ts_mono_ms() + ms;
    rdv_network_status st;
    for (;;) {
        status_of(p, &st);
        if (st.nat_discovered || rdv_ts_mono_ms() > end)
            break;
        usleep(10000);
    }
    if (!st.nat_discovered) {
        rdv_ts_dump_all_logs("discovery timeout");
        fail_msg("NAT discovery of %.8s did not finish within %d ms", p->id, ms);
    }
}

/* Waits (bounded) until p is AUTHENTICATED and its discovery ended. */
static void wait_up(cpeer *p)
{
    WAIT_FOR(p, p->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    wait_discovered(p, WAIT_MS);
}

static void info_of(cpeer *p, const char *sid, rdv_session_info *si)
{
    memset(si, 0, sizeof(*si));
    assert_int_equal(rdv_session_get_info(p->c, sid, si), 0);
}

static void print_info(const char *who, const rdv_session_info *si)
{
    fprintf(stderr,
            "%s: path %s first %lld relayed %lld direct %lld upgraded %d spray %d remote "
            "'%s' dtx %llu drx %llu err %d '%s'\n",
            who, rdv_path_name(si->path), (long long)si->first_path_ms,
            (long long)si->relayed_ms, (long long)si->direct_ms, si->upgraded, si->via_spray,
            si->remote, (unsigned long long)si->direct_tx_datagrams,
            (unsigned long long)si->direct_rx_datagrams, si->last_direct_error,
            si->last_direct_error_text);
}

/* Splits "a.b.c.d:port" or "[v6]:port" into the IP text, its family and
 * the port; false if it is neither. */
static bool split_remote(const char *remote, char ip[INET6_ADDRSTRLEN], int *fam,
                         unsigned *port)
{
    const char *colon = strrchr(remote, ':');
    if (!colon || colon == remote)
        return false;
    const char *ip0 = remote, *ip1 = colon;
    *fam = AF_INET;
    if (remote[0] == '[') {
        if (colon[-1] != ']')
            return false;
        ip0 = remote + 1;
        ip1 = colon - 1;
        *fam = AF_INET6;
    }
    if (ip1 <= ip0 || (size_t)(ip1 - ip0) >= INET6_ADDRSTRLEN)
        return false;
    memcpy(ip, ip0, (size_t)(ip1 - ip0));
    ip[ip1 - ip0] = '\0';
    uint8_t a[16];
    if (inet_pton(*fam, ip, a) != 1)
        return false;
    char *end;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (*end || v == 0 || v > 65535)
        return false;
    *port = (unsigned)v;
    return true;
}

/* True when ip (text of family fam) is loopback or an address of this
 * host. */
static bool ip_is_local(const char *ip, int fam)
{
    if (!strcmp(ip, "127.0.0.1") || !strcmp(ip, "::1"))
        return true;
    struct ifaddrs *ifs = NULL, *i;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return false;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != fam)
            continue;
        char t[INET6_ADDRSTRLEN];
        const void *a = fam == AF_INET
                            ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (inet_ntop(fam, a, t, sizeof(t)))
            found = !strcmp(t, ip);
    }
    freeifaddrs(ifs);
    return found;
}

/* Whether this host has a global IPv6 address (2000::/3 minus Teredo
 * 2001::/32 and 6to4 2002::/16): the library's rule (PROTOCOL.md 14.6)
 * then takes two nodes on it direct over IPv6 whatever their NAT types. */
static bool host_has_global_v6(void)
{
    struct ifaddrs *ifs = NULL;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return false;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6)
            continue;
        const uint8_t *b = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr.s6_addr;
        found = (b[0] & 0xe0) == 0x20 && !(b[0] == 0x20 && b[1] == 0x01 && !b[2] && !b[3]) &&
                !(b[0] == 0x20 && b[1] == 0x02);
    }
    freeifaddrs(ifs);
    return found;
}

/* Checks that `remote` is an endpoint of this host (IPv4 or IPv6) at
 * `port` (0: any). */
static void check_remote(const char *remote, unsigned port)
{
    char ip[INET6_ADDRSTRLEN];
    int fam = 0;
    unsigned rp = 0;
    if (!split_remote(remote, ip, &fam, &rp))
        fail_msg("session remote '%s' is not ip:port / [ip]:port", remote);
    if (!ip_is_local(ip, fam))
        fail_msg("session remote '%s' is not an address of this host", remote);
    if (port && rp != port)
        fail_msg("session remote '%s': expected port %u", remote, port);
}

/* a rdv_session_connect()s b (b accepts from its callback) after both finished
 * NAT discovery; returns when both have their first path. */
static void connect_pair(cpeer *a, cpeer *b, char sid[RDV_SESSION_ID_LEN + 1])
{
    wait_up(a);
    wait_up(b);
    b->accept_mode = 1;
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    assert_true(rdv_uuid_valid(sid, strlen(sid)));
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    assert_int_equal(peer_get(b, &b->accept_rc), 0);
    assert_int_equal(peer_get(b, &b->req_direct), 1);
    pthread_mutex_lock(&b->mu);
    assert_string_equal(b->sid, sid);
    pthread_mutex_unlock(&b->mu);
    WAIT_FOR(a, a->n_path >= 1, WAIT_MS);
    WAIT_FOR(b, b->n_path >= 1, WAIT_MS);
    WAIT_FOR(a, a->n_ready == 1, WAIT_MS);
    pthread_mutex_lock(&a->mu);
    assert_string_equal(a->sid, sid);
    assert_string_equal(a->ready_peer, b->id);
    assert_string_equal(a->path_sid, sid);
    assert_string_equal(a->path_peer, b->id);
    assert_true(a->path_ms[0] >= 0 && a->path_ms[0] < 60000);
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&b->mu);
    assert_string_equal(b->path_sid, sid);
    assert_string_equal(b->path_peer, a->id);
    assert_true(b->path_ms[0] >= 0 && b->path_ms[0] < 60000);
    pthread_mutex_unlock(&b->mu);
}

/* n datagrams of sizes 0..maxlen (mixed order) each way, sent paced; both
 * receivers' in-order hashes equal the senders'. Peers in hash mode with
 * fresh hashes (reset here). */
static void exchange_hashed(cpeer *a, cpeer *b, const char *sid, int n, size_t maxlen)
{
    cpeer *ends[2] = {a, b};
    crypto_generichash_state tx[2];
    uint64_t bytes[2] = {0, 0};
    int base[2];
    for (int e = 0; e < 2; e++) {
        crypto_generichash_init(&tx[e], NULL, 0, 32);
        pthread_mutex_lock(&ends[e]->mu);
        crypto_generichash_init(&ends[e]->hash, NULL, 0, 32);
        ends[e]->rx_bytes = 0;
        base[e] = ends[e]->n_data;
        pthread_mutex_unlock(&ends[e]->mu);
    }
    static uint8_t buf[DGRAM_MAX + 1];
    assert_true(maxlen <= DGRAM_MAX);
    for (int i = 0; i < n; i++) {
        for (int e = 0; e < 2; e++) {
            /* a permutation of 0..n-1 (gcd(37, n) = 1 for n = 200, 50). */
            int slot = n > 1 ? (i * 37 + e * 11) % n : 0;
            size_t len = n > 1 ? (size_t)slot * maxlen / (size_t)(n - 1) : maxlen;
            mixed_fill(buf, i, e, len);
            hash_dgram(&tx[e], buf, len);
            bytes[e] += len;
            int rc = send_dgram(ends[e], sid, buf, len);
            if (rc)
                fail_msg("send %d of %.8s: %s", i, ends[e]->id, rdv_strerror(rc));
        }
        if (i % 8 == 7)
            usleep(2000); /* pace: never overrun a loopback socket buffer */
    }
    /* b receives what a sent and vice versa. */
    for (int e = 0; e < 2; e++) {
        cpeer *r = ends[1 - e];
        int want = base[1 - e] + n;
        WAIT_FOR(r, r->n_data >= want, WAIT_MS);
        usleep(50000); /* no extra datagram may follow */
        pthread_mutex_lock(&r->mu);
        int got = r->n_data;
        uint64_t rxb = r->rx_bytes;
        uint8_t want_h[32], got_h[32];
        crypto_generichash_final(&tx[e], want_h, 32);
        crypto_generichash_final(&r->hash, got_h, 32);
        crypto_generichash_init(&r->hash, NULL, 0, 32);
        pthread_mutex_unlock(&r->mu);
        assert_int_equal(got, want);
        assert_int_equal(rxb, bytes[e]);
        assert_memory_equal(want_h, got_h, 32);
    }
}

/* ---- UDP helpers ---- */


static int udp_socket(uint16_t *port)
{
    *port = 0;
    int fd = rdv_ts_udp_socket_at("127.0.0.1", port);
    assert_true(fd >= 0);
    return fd;
}

/* A UDP port free right now on 0.0.0.0 and [::] (the client binds both). */
static uint16_t free_udp_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        uint16_t port = 0;
        int fd = rdv_ts_udp_socket_at("0.0.0.0", &port);
        assert_true(fd >= 0);
        int fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
        bool ok = true;
        if (fd6 >= 0) {
            int on = 1;
            setsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
            struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
            a6.sin6_addr = in6addr_any;
            ok = bind(fd6, (struct sockaddr *)&a6, sizeof(a6)) == 0 || errno == EADDRNOTAVAIL ||
                 errno == EAFNOSUPPORT;
            close(fd6);
        }
        close(fd);
        if (ok)
            return port;
    }
    fail_msg("no free UDP port");
    return 0;
}

static void udp_send(int fd, uint16_t port, const void *buf, size_t len)
{
    assert_int_equal(rdv_ts_udp_send(fd, port, buf, len), (ssize_t)len);
}

/* Waits up to ms for one datagram (poll); returns its length or -1. */
static ssize_t udp_recv_wait(int fd, void *buf, size_t cap, int ms, struct sockaddr_in *from)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, ms) <= 0)
        return -1;
    socklen_t l = sizeof(*from);
    return recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, &l);
}

/* ---- tests ---- */

/* True when 127.0.0.2 can be bound (Linux routes 127/8 to lo). */
static bool alt_loopback_usable(void)
{
    uint16_t port = 0;
    int fd = rdv_ts_udp_socket_at("127.0.0.2", &port);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void test_discovery(void **state)
{
    (void)state;
    if (!alt_loopback_usable()) {
        fprintf(stderr, "127.0.0.2 not usable: skipped\n");
        skip();
    }
    /* An RFC 5780 server: alternate port and alternate address. */
    char alt_port[8];
    snprintf(alt_port, sizeof(alt_port), "%u", free_udp_port());
    const char *args[] = {"--stun-port", "0", "--stun-alt-port", alt_port,
                          "--stun-alt-address", "127.0.0.2", NULL};
    rdv_ts_server *s = start_server(args);
    char stun[64];
    snprintf(stun, sizeof(stun), "127.0.0.1:%d", rdv_ts_server_stun_port(s));
    popts o = {0};
    o.udp_port = free_udp_port();
    cpeer *a = peer_new(s, "alice", &o);
    wait_discovered(a, WAIT_MS);
    rdv_network_status st;
    status_of(a, &st);
    fprintf(stderr, "discovery: nat %s no_nat %d public %s:%u from_stun %d method '%s' "
                    "server '%s' %lld ms\n",
            rdv_nat_type_name(st.nat_type), st.no_nat, st.public_ip, st.public_port,
            st.public_endpoint_from_stun, st.nat_method, st.stun_server,
            (long long)st.nat_discovery_ms);
    assert_int_equal(st.nat_discovered, 1);
    assert_int_equal(st.no_nat, 1);
    assert_int_equal(st.nat_type, RDV_NAT_FULL_CONE);
    assert_int_equal(st.public_endpoint_from_stun, 1);
    assert_string_equal(st.public_ip, "127.0.0.1");
    assert_int_equal(st.public_port, o.udp_port); /* no NAT: our own port */
    assert_true(st.nat_method[0] != '\0');
    /* A server on this host: the port mapper never asks the gateway. */
    assert_string_equal(st.portmap_status, "off (the server is on this host)");
    assert_string_equal(st.portmap_protocol, "");
    assert_string_equal(st.portmap_public, "");
    assert_string_equal(st.stun_server, stun);
    assert_true(st.nat_discovery_ms >= 0 && st.nat_discovery_ms <= WAIT_MS);
    assert_int_equal(st.last_path, RDV_PATH_UNKNOWN);
    assert_int_equal(st.direct_sessions, 0);
    peer_free(a);

    /* A plain server (no OTHER-ADDRESS): no NAT seen all the same. */
    rdv_ts_server *s2 = start_server(NULL);
    snprintf(stun, sizeof(stun), "127.0.0.1:%d", rdv_ts_server_stun_port(s2));
    cpeer *b = peer_new(s2, "bob", NULL);
    wait_discovered(b, WAIT_MS);
    status_of(b, &st);
    fprintf(stderr, "plain server: nat %s no_nat %d public %s:%u method '%s'\n",
            rdv_nat_type_name(st.nat_type), st.no_nat, st.public_ip, st.public_port,
            st.nat_method);
    assert_int_equal(st.no_nat, 1);
    assert_int_equal(st.public_endpoint_from_stun, 1);
    assert_string_equal(st.public_ip, "127.0.0.1");
    assert_true(st.public_port != 0);
    assert_true(st.nat_method[0] != '\0');
    assert_string_equal(st.stun_server, stun);
    assert_true(st.nat_discovery_ms >= 0 && st.nat_discovery_ms <= WAIT_MS);
    assert_true(rdv_ts_server_log_clean(s));
    assert_true(rdv_ts_server_log_clean(s2));
}

static void test_dead_stun(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    uint16_t dead_port = 0;
    int dead = udp_socket(&dead_port);
    char dead_s[64], live_s[64];
    snprintf(dead_s, sizeof(dead_s), "127.0.0.1:%u", dead_port);
    snprintf(live_s, sizeof(live_s), "127.0.0.1:%d", rdv_ts_server_stun_port(s));
    popts o = {0};
    o.stun[0] = dead_s;
    o.stun[1] = live_s;
    o.nstun = 2;
    o.stun_rto_ms = 100; /* a silent server costs 19 RTO = 1.9 s */
    cpeer *a = peer_new(s, "alice", &o);
    wait_discovered(a, WAIT_MS);
    rdv_network_status st;
    status_of(a, &st);
    fprintf(stderr, "dead_stun: server '%s' nat %s no_nat %d %lld ms\n", st.stun_server,
            rdv_nat_type_name(st.nat_type), st.no_nat, (long long)st.nat_discovery_ms);
    assert_string_equal(st.stun_server, live_s);
    assert_int_equal(st.public_endpoint_from_stun, 1);
    assert_int_equal(st.no_nat, 1);
    assert_string_equal(st.public_ip, "127.0.0.1");
    assert_true(st.nat_discovery_ms >= 0 && st.nat_discovery_ms <= WAIT_MS);

    /* What the dead server received: STUN requests, retransmitted (the
     * same transaction ID more than once). */
    uint8_t buf[1500], first_tid[12];
    int n_stun = 0, n_same = 0;
    for (;;) {
        struct sockaddr_in from;
        ssize_t n = udp_recv_wait(dead, buf, sizeof(buf), 100, &from);
        if (n < 0)
            break;
        if (!rdv_stun_looks_like(buf, (size_t)n) || n < 20)
            continue;
        if (n_stun == 0)
            memcpy(first_tid, buf + 8, 12);
        n_same += !memcmp(first_tid, buf + 8, 12);
        n_stun++;
    }
    fprintf(stderr, "dead server got %d STUN requests, %d of the first transaction\n", n_stun,
            n_same);
    assert_true(n_stun >= 2);
    assert_true(n_same >= 2);
    close(dead);
}

static void test_answer_waits(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    uint16_t dead_port = 0;
    int dead = udp_socket(&dead_port);
    char dead_s[64];
    snprintf(dead_s, sizeof(dead_s), "127.0.0.1:%u", dead_port);
    popts ob = {0};
    ob.stun[0] = dead_s;
    ob.nstun = 1;
    ob.stun_rto_ms = 200; /* a silent server costs 19 RTO = 3.8 s */
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", &ob);
    wait_up(a);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    b->accept_mode = 0;
    char sid[RDV_SESSION_ID_LEN + 1], bsid[RDV_SESSION_ID_LEN + 1];
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    pthread_mutex_lock(&b->mu);
    snprintf(bsid, sizeof(bsid), "%s", b->sid);
    pthread_mutex_unlock(&b->mu);
    rdv_network_status sb;
    status_of(b, &sb);
    int before = sb.nat_discovered;
    assert_int_equal(rdv_session_accept(b->c, bsid), 0);
    WAIT_FOR(a, a->n_path >= 1, 2 * WAIT_MS);
    status_of(b, &sb);
    fprintf(stderr, "answer_waits: B discovered at accept %d, at A's first path %d (%s, "
            "'%s')\n", before, sb.nat_discovered, rdv_nat_type_name(sb.nat_type), sb.nat_method);
    if (before)
        fprintf(stderr, "answer_waits: B's discovery ended before the accept (slow machine?): "
                        "nothing to show\n");
    else
        assert_int_equal(sb.nat_discovered, 1);
    assert_int_equal(sb.nat_type, RDV_NAT_UNKNOWN);
    assert_int_not_equal(peer_get(a, &a->paths[0]), RDV_PATH_UNKNOWN);
    close(dead);
}

static void test_direct(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    /* Fixed ports: the remote's port is then known whichever family (the
     * IPv4 and IPv6 sockets share cfg.udp_port) the path uses. */
    popts oa = {0}, ob = {0};
    oa.udp_port = free_udp_port();
    do
        ob.udp_port = free_udp_port();
    while (ob.udp_port == oa.udp_port);
    cpeer *a = peer_new(s, "alice", &oa);
    cpeer *b = peer_new(s, "bob", &ob);
    wait_up(a);
    wait_up(b);
    char sid[RDV_SESSION_ID_LEN + 1];
    uint8_t x = 1;
    assert_int_equal(rdv_session_connect(a->c, a->id, sid), RDV_ERR_INVALID); /* ourselves */
    assert_int_equal(rdv_session_connect(a->c, "xyz", sid), RDV_ERR_INVALID);
    /* B holds the request (accept_mode 0) so that no path can exist
     * while A sends: the peer has not answered. Accepting from inside
     * the callback would race this send on a loaded machine. */
    b->accept_mode = 0;
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    int early = rdv_session_send(a->c, sid, &x, 1);
    fprintf(stderr, "send before any path: %d (%s)\n", early, rdv_strerror(early));
    /* (checked at the end, so the rest of the test runs either way) */
    assert_int_equal(peer_get(b, &b->req_direct), 1);
    char bsid[RDV_SESSION_ID_LEN + 1];
    pthread_mutex_lock(&b->mu);
    snprintf(bsid, sizeof(bsid), "%s", b->sid);
    pthread_mutex_unlock(&b->mu);
    assert_string_equal(bsid, sid);
    assert_int_equal(rdv_session_accept(b->c, bsid), 0);
    assert_int_not_equal(peer_req_nat(b), RDV_NAT_SYMMETRIC);
    WAIT_FOR(a, a->n_path >= 1, WAIT_MS);
    WAIT_FOR(b, b->n_path >= 1, WAIT_MS);
    WAIT_FOR(a, a->n_ready >= 1, WAIT_MS);
    assert_int_equal(peer_get(a, &a->paths[0]), RDV_PATH_DIRECT);
    assert_int_equal(peer_get(b, &b->paths[0]), RDV_PATH_DIRECT);

    rdv_session_info ia, ib;
    info_of(a, sid, &ia);
    info_of(b, sid, &ib);
    print_info("A", &ia);
    print_info("B", &ib);
    rdv_network_status sa, sb;
    status_of(a, &sa);
    status_of(b, &sb);
    assert_int_equal(ia.path, RDV_PATH_DIRECT);
    assert_int_equal(ib.path, RDV_PATH_DIRECT);
    assert_string_equal(ia.peer_node_id, b->id);
    assert_string_equal(ib.peer_node_id, a->id);
    assert_int_equal(ia.direct_capable, 1);
    assert_int_equal(ib.direct_capable, 1);
    assert_int_equal(ia.open, 1);
    assert_int_equal(ib.open, 1);
    assert_true(ia.direct_ms >= 0 && ia.direct_ms <= WAIT_MS);
    assert_true(ib.direct_ms >= 0 && ib.direct_ms <= WAIT_MS);
    assert_true(ia.first_path_ms >= 0 && ia.first_path_ms <= ia.direct_ms);
    /* The timeline: candidates, then checks (at once: direct first), then
     * the path; at least one round of checks went out. Not always on each
     * side: a side whose first round is still due on its next timer pass
     * when the peer's check arrives answers it, and the pair is valid
     * before that round (seen once in CI). */
    assert_true(ia.candidates_ms >= 0 && ia.candidates_ms <= ia.direct_ms);
    assert_int_equal(ia.checks_ms, ia.candidates_ms);
    assert_true(ib.candidates_ms >= 0 && ib.checks_ms == ib.candidates_ms);
    assert_true(ib.checks_ms <= ib.direct_ms);
    assert_true(ia.probe_rounds + ib.probe_rounds >= 1);
    assert_int_equal(ia.upgraded, 0);
    assert_int_equal(ia.via_spray, 0);
    /* The remote is the peer's own endpoint on this host, and STUN saw
     * our own port (no NAT). */
    check_remote(ia.remote, ob.udp_port);
    check_remote(ib.remote, oa.udp_port);
    assert_int_equal(sa.public_port, oa.udp_port);
    assert_int_equal(sb.public_port, ob.udp_port);

    /* 200 datagrams of 0..1200 bytes each way, intact and in order. */
    exchange_hashed(a, b, sid, N_MIXED, DGRAM_MAX);
    rdv_session_info ia2, ib2;
    long long cend = rdv_ts_mono_ms() + 2000; /* counters may trail delivery */
    do {
        info_of(a, sid, &ia2);
        info_of(b, sid, &ib2);
        if (ia2.direct_rx_datagrams >= ia.direct_rx_datagrams + N_MIXED &&
            ib2.direct_rx_datagrams >= ib.direct_rx_datagrams + N_MIXED)
            break;
        usleep(10000);
    } while (rdv_ts_mono_ms() < cend);
    print_info("A after data", &ia2);
    assert_int_equal(ia2.path, RDV_PATH_DIRECT);
    assert_int_equal(ib2.path, RDV_PATH_DIRECT);
    assert_true(ia2.direct_tx_datagrams >= ia.direct_tx_datagrams + N_MIXED);
    assert_true(ia2.direct_rx_datagrams >= ia.direct_rx_datagrams + N_MIXED);
    assert_true(ib2.direct_tx_datagrams >= ib.direct_tx_datagrams + N_MIXED);
    assert_true(ib2.direct_rx_datagrams >= ib.direct_rx_datagrams + N_MIXED);
    assert_string_equal(ia2.remote, ia.remote);

    status_of(a, &sa);
    status_of(b, &sb);
    assert_true(sa.direct_sessions >= 1);
    assert_true(sb.direct_sessions >= 1);
    assert_int_equal(sa.last_path, RDV_PATH_DIRECT);
    assert_int_equal(sb.last_path, RDV_PATH_DIRECT);
    assert_string_equal(rdv_path_name(sa.last_path), "Direct");
    assert_true(sa.last_direct_ms >= 0);
    assert_true(sa.last_connect_ms >= 0);
    /* Still exactly one path change each, one ready. */
    assert_int_equal(peer_get(a, &a->n_path), 1);
    assert_int_equal(peer_get(b, &b->n_path), 1);
    assert_int_equal(peer_get(a, &a->n_ready), 1);
    assert_int_equal(peer_get(a, &a->n_closed), 0);
    assert_int_equal(peer_get(b, &b->n_closed), 0);
    assert_true(rdv_ts_server_log_clean(s));
    /* header: "Until a path exists rdv_session_send() returns RDV_ERR_STATE" */
    assert_int_equal(early, RDV_ERR_STATE);
}

/* Fails unless p's path callbacks so far are exactly one, `path`. */
static void expect_only_path(cpeer *p, int path, const char *when)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_path, first = p->paths[0];
    char list[256] = "";
    size_t off = 0;
    for (int i = 0; i < n && i < MAX_PATHS && off < sizeof(list); i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, " %s@%lldms",
                                rdv_path_name(p->paths[i]), (long long)p->path_ms[i]);
    pthread_mutex_unlock(&p->mu);
    if (n != 1 || first != path)
        fail_msg("%s: %s expected only cb_path %s, got%s", when, p->label,
                 rdv_path_name(path), list);
}

static void test_relay_only(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    popts o = {0};
    o.direct_disable = 1;
    cpeer *a = peer_new(s, "alice", &o);
    cpeer *b = peer_new(s, "bob", NULL);
    char sid[RDV_SESSION_ID_LEN + 1];
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    wait_discovered(b, WAIT_MS);
    b->accept_mode = 1;
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    assert_int_equal(peer_get(b, &b->accept_rc), 0);
    WAIT_FOR(a, a->n_ready == 1, WAIT_MS);
    WAIT_FOR(a, a->n_path >= 1, WAIT_MS);
    WAIT_FOR(b, b->n_path >= 1, WAIT_MS);
    usleep(500000);
    expect_only_path(a, RDV_PATH_RELAYED, "0.5 s after connect");
    expect_only_path(b, RDV_PATH_RELAYED, "0.5 s after connect");
    exchange_hashed(a, b, sid, 50, DGRAM_MAX);
    sleep(2);
    expect_only_path(a, RDV_PATH_RELAYED, "2 s later");
    expect_only_path(b, RDV_PATH_RELAYED, "2 s later");
    rdv_session_info ia, ib;
    info_of(a, sid, &ia);
    info_of(b, sid, &ib);
    print_info("A", &ia);
    print_info("B", &ib);
    assert_int_equal(ia.path, RDV_PATH_RELAYED);
    assert_int_equal(ib.path, RDV_PATH_RELAYED);
    assert_true(ia.relayed_ms >= 0);
    assert_int_equal(ia.direct_ms, -1);
    assert_int_equal(ia.direct_tx_datagrams, 0);
    assert_int_not_equal(ia.last_direct_error, 0);
    assert_true(ia.last_direct_error_text[0] != '\0');
    rdv_network_status st;
    status_of(a, &st);
    assert_int_equal(st.last_path, RDV_PATH_RELAYED);
    assert_int_equal(st.direct_sessions, 0);
    exchange_hashed(a, b, sid, 10, 100); /* still carries data */
}

/* Neither side is symmetric, but the peer never answers probes (it is
 * relay-only): the opener tries the direct path for its direct_timeout_ms,
 * then the relay takes over; the direct error says why. */
static void test_direct_timeout(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    popts oa = {0}, ob = {0};
    oa.direct_timeout_ms = 700;
    ob.direct_disable = 1;
    cpeer *a = peer_new(s, "alice", &oa);
    cpeer *b = peer_new(s, "bob", &ob);
    char sid[RDV_SESSION_ID_LEN + 1];
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    wait_discovered(a, WAIT_MS);
    b->accept_mode = 1;
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    WAIT_FOR(a, a->n_path >= 1, WAIT_MS);
    rdv_session_info ia;
    info_of(a, sid, &ia);
    print_info("A", &ia);
    assert_int_equal(ia.path, RDV_PATH_RELAYED);
    /* The relay leg is asked for only when the direct attempt ended. */
    assert_true(ia.relayed_ms >= oa.direct_timeout_ms);
    assert_int_equal(ia.direct_ms, -1);
    assert_int_equal(ia.last_direct_error, RDV_ERR_TIMEOUT);
    assert_non_null(strstr(ia.last_direct_error_text, "700 ms"));
    exchange_hashed(a, b, sid, 20, 100);
    expect_only_path(a, RDV_PATH_RELAYED, "after the exchange");
}

/* Sends verify-mode datagrams from both ends until `until` (ms), one each
 * every ~2 ms. A send refused with RDV_ERR_STATE (no path at that moment)
 * is counted in *no_path; any other failure fails the test. */
static void stream_until(cpeer *a, cpeer *b, const char *sid, long long until, int *no_path)
{
    while (rdv_ts_mono_ms() < until) {
        int rc[2] = {send_verify(a, sid), send_verify(b, sid)};
        for (int e = 0; e < 2; e++) {
            if (rc[e] == RDV_ERR_STATE)
                (*no_path)++;
            else if (rc[e])
                fail_msg("stream send from %s: %s", e ? "B" : "A", rdv_strerror(rc[e]));
        }
        usleep(2000);
    }
}

static bool has_path(cpeer *p, int path)
{
    bool found = false;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n_path && i < MAX_PATHS; i++)
        found |= p->paths[i] == path;
    pthread_mutex_unlock(&p->mu);
    return found;
}

static void print_paths(const char *who, cpeer *p)
{
    pthread_mutex_lock(&p->mu);
    fprintf(stderr, "%s paths:", who);
    for (int i = 0; i < p->n_path && i < MAX_PATHS; i++)
        fprintf(stderr, " %s@%lldms", rdv_path_name(p->paths[i]), (long long)p->path_ms[i]);
    fprintf(stderr, " (%d errors)\n", p->n_error);
    pthread_mutex_unlock(&p->mu);
}

/* Datagrams of a session that went the relay way, from a relay_* counter
 * that either counts only the relay path or every datagram (then the
 * direct ones, `direct`, are part of it; direct >> relayed here). */
static uint64_t relay_path_share(uint64_t relay_counter, uint64_t direct)
{
    return relay_counter >= direct ? relay_counter - direct : relay_counter;
}

static void test_upgrade(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    /* No many-port probing: on loopback the cone side would probe random
     * ports of 127.0.0.1, i.e. other tests' sockets. */
    popts o = {0}, ob = {0};
    o.nat = RDV_NAT_SYMMETRIC;
    o.spray_ports = -1;
    ob.spray_ports = -1;
    cpeer *a = peer_new(s, "alice", &o);
    cpeer *b = peer_new(s, "bob", &ob);
    a->verify = b->verify = true;
    a->relay_burst = b->relay_burst = 5; /* data on the relay from cb_path */
    char sid[RDV_SESSION_ID_LEN + 1];
    connect_pair(a, b, sid);
    assert_int_equal(peer_req_nat(b), RDV_NAT_SYMMETRIC);
    /* Data continuously, across the upgrade. */
    int no_path = 0;
    long long t0 = rdv_ts_mono_ms();
    bool up = false;
    while (!up && rdv_ts_mono_ms() - t0 < WAIT_MS) {
        stream_until(a, b, sid, rdv_ts_mono_ms() + 20, &no_path);
        up = has_path(a, RDV_PATH_DIRECT) && has_path(b, RDV_PATH_DIRECT);
    }
    print_paths("A", a);
    print_paths("B", b);
    if (!up) {
        rdv_session_info ia;
        info_of(a, sid, &ia);
        print_info("A (no upgrade)", &ia);
        fail_msg("no DIRECT path on both sides within %d ms", WAIT_MS);
    }
    fprintf(stderr, "DIRECT on both sides after %lld ms of streaming\n", rdv_ts_mono_ms() - t0);
    stream_until(a, b, sid, rdv_ts_mono_ms() + 1000, &no_path);
    usleep(300000);
    rdv_session_info ia, ib;
    info_of(a, sid, &ia);
    info_of(b, sid, &ib);
    print_info("A", &ia);
    print_info("B", &ib);
    print_paths("A", a);
    print_paths("B", b);
    uint64_t sent_a = atomic_load(&a->tx_seq), sent_b = atomic_load(&b->tx_seq);
    pthread_mutex_lock(&a->mu);
    uint64_t good_a = a->good, bad_a = a->bad, dup_a = a->dup;
    int np_a = a->n_path, p0_a = a->paths[0], p1_a = a->paths[1];
    int dad_a = a->data_at_direct, brc_a = a->burst_rc, err_a = a->n_error;
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&b->mu);
    uint64_t good_b = b->good, bad_b = b->bad, dup_b = b->dup;
    int np_b = b->n_path, p0_b = b->paths[0], p1_b = b->paths[1];
    int dad_b = b->data_at_direct, brc_b = b->burst_rc, err_b = b->n_error;
    pthread_mutex_unlock(&b->mu);
    fprintf(stderr,
            "a->b sent %llu got %llu bad %llu dup %llu; b->a sent %llu got %llu bad %llu "
            "dup %llu; received before direct: a %d b %d; sends without a path %d; "
            "burst rc %d/%d\n",
            (unsigned long long)sent_a, (unsigned long long)good_b, (unsigned long long)bad_b,
            (unsigned long long)dup_b, (unsigned long long)sent_b, (unsigned long long)good_a,
            (unsigned long long)bad_a, (unsigned long long)dup_a, dad_a, dad_b, no_path,
            brc_a, brc_b);
    /* Every datagram received is intact (checked first: the most basic). */
    assert_int_equal(bad_a, 0);
    assert_int_equal(bad_b, 0);
    assert_int_equal(dup_a, 0);
    assert_int_equal(dup_b, 0);
    /* Relay first on both sides, then exactly one switch to DIRECT. */
    assert_int_equal(p0_a, RDV_PATH_RELAYED);
    assert_int_equal(p0_b, RDV_PATH_RELAYED);
    assert_int_equal(np_a, 2);
    assert_int_equal(np_b, 2);
    assert_int_equal(p1_a, RDV_PATH_DIRECT);
    assert_int_equal(p1_b, RDV_PATH_DIRECT);
    /* The relay carried data (sent from cb_path RELAYED, so before the
     * switch; on loopback it may still be in flight when DIRECT comes). */
    rdv_network_status rsa, rsb;
    status_of(a, &rsa);
    status_of(b, &rsb);
    fprintf(stderr, "relay datagrams: A tx %llu rx %llu, B tx %llu rx %llu\n",
            (unsigned long long)rsa.relay_tx_datagrams,
            (unsigned long long)rsa.relay_rx_datagrams,
            (unsigned long long)rsb.relay_tx_datagrams,
            (unsigned long long)rsb.relay_rx_datagrams);
    /* The relay_* counters may include the direct path's datagrams (one
     * session per client here): the relay path's share is then the rest. */
    uint64_t rtx_a = relay_path_share(rsa.relay_tx_datagrams, ia.direct_tx_datagrams);
    uint64_t rtx_b = relay_path_share(rsb.relay_tx_datagrams, ib.direct_tx_datagrams);
    uint64_t rrx_a = relay_path_share(rsa.relay_rx_datagrams, ia.direct_rx_datagrams);
    uint64_t rrx_b = relay_path_share(rsb.relay_rx_datagrams, ib.direct_rx_datagrams);
    fprintf(stderr, "on the relay path: A tx %llu rx %llu, B tx %llu rx %llu\n",
            (unsigned long long)rtx_a, (unsigned long long)rrx_a, (unsigned long long)rtx_b,
            (unsigned long long)rrx_b);
    assert_true(rtx_a >= 5 && rtx_b >= 5);
    assert_true(rrx_a + rrx_b > 0);
    assert_int_equal(brc_a, 0);
    assert_int_equal(brc_b, 0);
    assert_int_equal(no_path, 0); /* a session never lost its path */
    assert_int_equal(ia.path, RDV_PATH_DIRECT);
    assert_int_equal(ib.path, RDV_PATH_DIRECT);
    assert_int_equal(ia.upgraded, 1);
    assert_true(ia.relayed_ms >= 0 && ia.direct_ms >= ia.relayed_ms);
    /* Relay first: the checks started only once the relay leg was up. */
    assert_true(ia.candidates_ms >= 0 && ia.candidates_ms <= ia.relayed_ms);
    assert_true(ia.checks_ms >= ia.relayed_ms && ia.checks_ms <= ia.direct_ms);
    assert_true(ia.probe_rounds >= 1);
    assert_int_not_equal(ia.peer_nat, RDV_NAT_SYMMETRIC); /* B's type */
    assert_int_equal(ib.peer_nat, RDV_NAT_SYMMETRIC);     /* A's claim */
    check_remote(ia.remote, 0);
    check_remote(ib.remote, 0);
    /* Only a few lost across the switch. */
    assert_true(good_b <= sent_a && good_b + 10 + sent_a / 20 >= sent_a);
    assert_true(good_a <= sent_b && good_a + 10 + sent_b / 20 >= sent_b);
    assert_true(ia.direct_tx_datagrams > 0 && ia.direct_rx_datagrams > 0);
    rdv_network_status st;
    status_of(a, &st);
    assert_int_equal(st.last_path, RDV_PATH_DIRECT);
    assert_true(st.direct_sessions >= 1);
    /* A normal upgrade reports no error to the application. */
    assert_int_equal(err_a, 0);
    assert_int_equal(err_b, 0);
}

static void test_both_symmetric(void **state)
{
    (void)state;
    if (host_has_global_v6()) {
        /* both ends have a global IPv6 address: direct first over it
         * (PROTOCOL.md 14.6), the NAT types notwithstanding */
        print_message("this host has a global IPv6 address: expecting Direct over IPv6\n");
        rdv_ts_server *s = start_server(NULL);
        popts o = {0};
        o.nat = RDV_NAT_SYMMETRIC;
        cpeer *a = peer_new(s, "alice", &o);
        cpeer *b = peer_new(s, "bob", &o);
        char sid[RDV_SESSION_ID_LEN + 1];
        connect_pair(a, b, sid);
        expect_only_path(a, RDV_PATH_DIRECT, "both with global IPv6");
        expect_only_path(b, RDV_PATH_DIRECT, "both with global IPv6");
        rdv_session_info ia;
        info_of(a, sid, &ia);
        print_info("A", &ia);
        assert_int_equal(ia.remote[0], '['); /* an IPv6 peer address */
        exchange_hashed(a, b, sid, 20, 500);
        return;
    }
    rdv_ts_server *s = start_server(NULL);
    popts o = {0};
    o.nat = RDV_NAT_SYMMETRIC;
    cpeer *a = peer_new(s, "alice", &o);
    cpeer *b = peer_new(s, "bob", &o);
    char sid[RDV_SESSION_ID_LEN + 1];
    connect_pair(a, b, sid);
    assert_int_equal(peer_req_nat(b), RDV_NAT_SYMMETRIC);
    usleep(300000);
    expect_only_path(a, RDV_PATH_RELAYED, "0.3 s after connect");
    expect_only_path(b, RDV_PATH_RELAYED, "0.3 s after connect");
    exchange_hashed(a, b, sid, 20, 500);
    sleep(3);
    expect_only_path(a, RDV_PATH_RELAYED, "3 s later");
    expect_only_path(b, RDV_PATH_RELAYED, "3 s later");
    rdv_session_info ia, ib;
    info_of(a, sid, &ia);
    info_of(b, sid, &ib);
    print_info("A", &ia);
    assert_int_equal(ia.path, RDV_PATH_RELAYED);
    assert_int_equal(ib.path, RDV_PATH_RELAYED);
    assert_int_equal(ia.direct_ms, -1);
    assert_int_equal(ia.upgraded, 0);
    /* Relay only: keys and candidates, but no check ever started. */
    assert_true(ia.candidates_ms >= 0);
    assert_int_equal(ia.checks_ms, -1);
    assert_int_equal(ia.probe_rounds, 0);
    exchange_hashed(a, b, sid, 20, 500);
}

/* a and b connected directly (asserted). */
static void connect_direct(cpeer *a, cpeer *b, char sid[RDV_SESSION_ID_LEN + 1])
{
    connect_pair(a, b, sid);
    assert_int_equal(peer_get(a, &a->paths[0]), RDV_PATH_DIRECT);
    assert_int_equal(peer_get(b, &b->paths[0]), RDV_PATH_DIRECT);
}

/* A direct session has no relay leg, so it does not count against the
 * server's maxRelaySessions: with a limit of 1, a plain relay session can
 * still be opened next to it (and a second one cannot). */
static void test_relay_limit(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server((const char *const[]){"--relay-max-sessions", "1", NULL});
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", NULL);
    char sid[RDV_SESSION_ID_LEN + 1], rsid[RDV_SESSION_ID_LEN + 1],
        rsid2[RDV_SESSION_ID_LEN + 1];
    connect_direct(a, b, sid);
    int ready0 = peer_get(a, &a->n_ready);
    assert_int_equal(rdv_session_open(a->c, b->id, rsid), 0);
    WAIT_FOR(a, a->n_ready == ready0 + 1, WAIT_MS);
    assert_int_equal(rdv_session_open(a->c, b->id, rsid2), RDV_ERR_LIMIT);
    exchange_hashed(a, b, rsid, 5, 100);
    exchange_hashed(a, b, sid, 5, 100);
}

static void test_close(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", NULL);
    char sid[RDV_SESSION_ID_LEN + 1];
    connect_direct(a, b, sid);
    exchange_hashed(a, b, sid, 5, 100);
    assert_int_equal(rdv_session_close(a->c, sid), 0);
    WAIT_FOR(b, b->n_closed == 1, CLOSE_WAIT_MS);
    pthread_mutex_lock(&b->mu);
    assert_string_equal(b->closed_sid, sid);
    assert_int_equal(b->closed_err, 0);
    fprintf(stderr, "B closed: reason '%s'\n", b->closed_reason);
    pthread_mutex_unlock(&b->mu);
    assert_int_equal(rdv_session_send(a->c, sid, "x", 1), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_send(b->c, sid, "x", 1), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_close(a->c, sid), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_close(b->c, sid), RDV_ERR_NO_SESSION);
    rdv_session_info si;
    assert_int_equal(rdv_session_get_info(a->c, sid, &si), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_get_info(b->c, sid, &si), RDV_ERR_NO_SESSION);
    usleep(300000);
    assert_int_equal(peer_get(a, &a->n_closed), 0); /* its own close: no callback */
    assert_int_equal(peer_get(b, &b->n_closed), 1);
    assert_int_equal(rdv_client_session_count(a->c), 0);
    assert_int_equal(rdv_client_session_count(b->c), 0);
}

/* The answerer declines a connect request: the offerer hears it at once
 * (an answer without e2eKey), not after its 30 s answer timeout. */
static void test_reject(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", NULL);
    WAIT_FOR(a, a->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state == RDV_STATE_AUTHENTICATED, WAIT_MS);
    b->accept_mode = 2;
    char sid[RDV_SESSION_ID_LEN + 1];
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    WAIT_FOR(b, b->n_request == 1, WAIT_MS);
    assert_int_equal(peer_get(b, &b->accept_rc), 0);
    WAIT_FOR(a, a->n_closed == 1, CLOSE_WAIT_MS);
    pthread_mutex_lock(&a->mu);
    assert_string_equal(a->closed_sid, sid);
    assert_int_equal(a->closed_err, 0);
    assert_string_equal(a->closed_reason, "rejected");
    pthread_mutex_unlock(&a->mu);
    rdv_session_info si;
    assert_int_equal(rdv_session_get_info(a->c, sid, &si), RDV_ERR_NO_SESSION);
    assert_int_equal(rdv_session_get_info(b->c, sid, &si), RDV_ERR_NO_SESSION);
    assert_int_equal(peer_get(a, &a->n_path), 0);
    assert_int_equal(peer_get(b, &b->n_closed), 0); /* its own reject: no callback */
}

/* A client holds at most RDV_MAX_SESSIONS sessions. Its own next
 * rdv_session_connect() is RDV_ERR_LIMIT; a connect request beyond the limit is
 * declined at once with a refusal answer, so that opener hears "rejected"
 * instead of waiting out its answer timeout, and the application never
 * sees it. The held sessions are unharmed: one is accepted and carries
 * data. (A generous message rate: 64 offers plus their candidates.) */
static void test_session_limit(void **state)
{
    (void)state;
    rdv_ts_server *s =
        start_server((const char *const[]){"--rate", "5000", "--burst", "5000", NULL});
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", NULL);
    cpeer *c = peer_new(s, "carol", NULL);
    cpeer *all[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        wait_up(all[i]);
    b->accept_mode = 0; /* B holds every request */
    static char sids[RDV_MAX_SESSIONS][RDV_SESSION_ID_LEN + 1];
    for (int i = 0; i < RDV_MAX_SESSIONS; i++)
        assert_int_equal(rdv_session_connect(a->c, b->id, sids[i]), 0);
    char extra[RDV_SESSION_ID_LEN + 1];
    assert_int_equal(rdv_session_connect(a->c, b->id, extra), RDV_ERR_LIMIT);
    WAIT_FOR(b, b->n_request == RDV_MAX_SESSIONS, WAIT_MS);

    char csid[RDV_SESSION_ID_LEN + 1];
    long long t0 = rdv_ts_mono_ms();
    assert_int_equal(rdv_session_connect(c->c, b->id, csid), 0);
    WAIT_FOR(c, c->n_closed == 1, CLOSE_WAIT_MS);
    fprintf(stderr, "the request over the limit was declined after %lld ms\n",
            rdv_ts_mono_ms() - t0);
    pthread_mutex_lock(&c->mu);
    assert_string_equal(c->closed_sid, csid);
    assert_int_equal(c->closed_err, 0);
    assert_string_equal(c->closed_reason, "rejected");
    pthread_mutex_unlock(&c->mu);
    assert_int_equal(peer_get(c, &c->n_path), 0);
    assert_int_equal(rdv_client_session_count(c->c), 0);
    assert_int_equal(peer_get(b, &b->n_request), RDV_MAX_SESSIONS);

    /* A held request still works. */
    a->verify = false;
    assert_int_equal(rdv_session_accept(b->c, sids[7]), 0);
    WAIT_FOR(a, a->n_path >= 1, WAIT_MS);
    WAIT_FOR(b, b->n_path >= 1, WAIT_MS);
    exchange_hashed(a, b, sids[7], 5, 100);
    assert_int_equal(peer_get(a, &a->n_closed), 0);
    assert_true(rdv_ts_server_log_clean(s));
}

/* The answer's e2eKey is a low-order point (all zero bytes): no keys can
 * be derived, so the opener ends the session with RDV_ERR_PROTOCOL at
 * once instead of probing with keys an attacker knows. The peer is a raw
 * node here (the library never sends such a key). */
static void test_low_order_answer(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    cpeer *a = peer_new(s, "alice", NULL);
    rdv_tn raw;
    rdv_tn_init(&raw, "rawnode");
    rdv_ws *ws = rdv_tn_connect(rdv_ts_server_port(s), &raw);
    assert_non_null(ws);
    wait_up(a);
    char sid[RDV_SESSION_ID_LEN + 1];
    assert_int_equal(rdv_session_connect(a->c, raw.id, sid), 0);
    json_t *offer = rdv_expect(ws, "offer", WAIT_MS);
    assert_non_null(offer);
    assert_string_equal(rdv_json_str(offer, "sessionID"), sid);
    assert_int_equal(strlen(rdv_json_str(offer, "e2eKey")), 64);
    char zero[65];
    memset(zero, '0', 64);
    zero[64] = '\0';
    json_t *body = json_pack("{s:s, s:s, s:o, s:s}", "toNodeID", a->id, "sessionID", sid,
                             "connectionInfo", rdv_tn_connection_info(), "e2eKey", zero);
    assert_non_null(body);
    size_t len;
    char *t = rdv_tn_sign_body(&raw, RDV_MSG_ANSWER, body, NULL, &len);
    assert_non_null(t);
    assert_int_equal(rdv_ws_send_text(ws, t, len), 0);
    free(t);
    WAIT_FOR(a, a->n_closed == 1, CLOSE_WAIT_MS);
    pthread_mutex_lock(&a->mu);
    assert_string_equal(a->closed_sid, sid);
    assert_int_equal(a->closed_err, RDV_ERR_PROTOCOL);
    pthread_mutex_unlock(&a->mu);
    assert_int_equal(peer_get(a, &a->n_path), 0);
    assert_int_equal(peer_get(a, &a->n_ready), 0);
    rdv_session_info si;
    assert_int_equal(rdv_session_get_info(a->c, sid, &si), RDV_ERR_NO_SESSION);
    rdv_ws_close(ws);
}

/* A STUN server (its own thread) that answers every Binding request with
 * the same mapped address: to its client, a NAT whose public endpoint is
 * `mapped`. */
typedef struct map_stun {
    int fd;
    uint16_t port;
    _Atomic uint16_t mapped_port; /* on 127.0.0.1 */
    atomic_bool stop;
    pthread_t th;
} map_stun;

static void *map_stun_main(void *arg)
{
    map_stun *m = arg;
    while (!atomic_load(&m->stop)) {
        struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        uint8_t in[1500], out[512];
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(m->fd, in, sizeof(in), 0, (struct sockaddr *)&from, &flen);
        rdv_stun_msg msg;
        if (n <= 0 || rdv_stun_parse(in, (size_t)n, &msg) < 0)
            continue;
        rdv_stun_success_opts o;
        memset(&o, 0, sizeof(o));
        o.mapped = (rdv_stun_addr){RDV_STUN_FAMILY_IPV4, atomic_load(&m->mapped_port),
                                   {127, 0, 0, 1}};
        o.software = "map-stun";
        o.fingerprint = true;
        int rl = rdv_stun_build_binding_success(out, sizeof(out), &msg, &o);
        if (rl > 0)
            (void)sendto(m->fd, out, (size_t)rl, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static void map_stun_start(map_stun *m, uint16_t mapped_port)
{
    memset(m, 0, sizeof(*m));
    m->fd = rdv_ts_udp_socket_at("127.0.0.1", &m->port);
    assert_true(m->fd >= 0);
    atomic_store(&m->mapped_port, mapped_port);
    assert_int_equal(pthread_create(&m->th, NULL, map_stun_main, m), 0);
}

/* From now on m maps to 127.0.0.1:mapped_port (a NAT's new mapping). */
static void map_stun_set(map_stun *m, uint16_t mapped_port)
{
    atomic_store(&m->mapped_port, mapped_port);
}

static void map_stun_stop(map_stun *m)
{
    atomic_store(&m->stop, true);
    pthread_join(m->th, NULL);
    close(m->fd);
}

/* Options of a relay-only peer (it never answers probes) declared
 * fullCone whose public endpoint comes from mapping STUN server m; addr
 * holds the server's "ip:port" and must live until the peer is made. */
static void mapped_relay_only(popts *o, const map_stun *m, char addr[32])
{
    snprintf(addr, 32, "127.0.0.1:%u", m->port);
    o->nat = RDV_NAT_FULL_CONE; /* declared: the mapping server cannot classify */
    o->stun[0] = addr;
    o->nstun = 1;
    o->direct_disable = 1;
    o->spray_ports = -1;
}

/* Fails unless p's discovered public endpoint is 127.0.0.1:port. */
static void expect_public_port(cpeer *p, uint16_t port)
{
    rdv_network_status st;
    status_of(p, &st);
    assert_string_equal(st.public_ip, "127.0.0.1");
    assert_int_equal(st.public_port, port);
}

/* Open descriptors of this process. */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

/* Many-port probing is bounded per client: a symmetric node connecting
 * to cone peers opens RDV__SPRAY_MAX (256) sockets per session, at most
 * 1024 in all, so five sessions at once open 1024, not 1280. The peer's
 * public endpoint (from a mapping STUN server) is a socket of the test
 * that never answers, and the peer is relay-only, so no direct path ends
 * the probing while the sockets are counted. */
static void test_spray_cap(void **state)
{
    (void)state;
    enum { SESSIONS = 5, PER_SESSION = 256, CAP = 1024, FDS_NEEDED = 4096 };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < FDS_NEEDED && rl.rlim_max >= FDS_NEEDED) {
        rl.rlim_cur = FDS_NEEDED;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < FDS_NEEDED) {
        fprintf(stderr, "SKIP: RLIMIT_NOFILE %llu < %d\n", (unsigned long long)rl.rlim_cur,
                FDS_NEEDED);
        skip();
    }
    uint16_t hole_port = 0;
    int hole = rdv_ts_udp_socket_at("127.0.0.1", &hole_port);
    assert_true(hole >= 0);
    map_stun ms;
    map_stun_start(&ms, hole_port);
    char ms_addr[32];
    /* the relay channel (PROTOCOL.md 9.5) would add its own sockets to the
     * count */
    rdv_ts_server *s = start_server(
        (const char *const[]){"--relay-max-sessions", "16", "--relay-channel", "off", NULL});
    popts oa = {0}, ob = {0};
    oa.nat = RDV_NAT_SYMMETRIC;
    mapped_relay_only(&ob, &ms, ms_addr);
    cpeer *a = peer_new(s, "alice", &oa);
    cpeer *b = peer_new(s, "bob", &ob);
    wait_up(a);
    wait_up(b);
    expect_public_port(b, hole_port);
    b->accept_mode = 1;
    int base = open_fds();
    int expect = 0;
    for (int i = 0; i < SESSIONS; i++) {
        char sid[RDV_SESSION_ID_LEN + 1];
        assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
        /* The relay leg first; then the checks and the spray sockets. */
        WAIT_FOR(a, a->n_path >= i + 1, WAIT_MS);
        expect = expect + PER_SESSION <= CAP ? expect + PER_SESSION : CAP;
        long long end = rdv_ts_mono_ms() + WAIT_MS;
        while (open_fds() - base < expect && rdv_ts_mono_ms() < end)
            usleep(5000);
        usleep(200000); /* and no more come */
        int n = open_fds() - base;
        fprintf(stderr, "session %d: %d spray sockets open (expected %d)\n", i + 1, n, expect);
        assert_int_equal(n, expect);
        assert_int_equal(peer_get(a, &a->paths[i]), RDV_PATH_RELAYED);
    }
    peer_free(a); /* every spray socket is closed with its client */
    assert_true(open_fds() - base <= 0);
    peer_free(b);
    map_stun_stop(&ms);
    close(hole);
}

/* True when a PROBE of session sidb reaches fd within ms. */
static bool probe_arrives(int fd, const uint8_t sidb[16], int ms)
{
    long long end = rdv_ts_mono_ms() + ms;
    for (;;) {
        long long left = end - rdv_ts_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        uint8_t buf[1500];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n >= 17 && buf[0] == 0xD1 && memcmp(buf + 1, sidb, 16) == 0)
            return true;
    }
}

/* rdv_client_network_changed(): discovery runs again at once, and a new public
 * endpoint reaches the peer of an open session as an iceCandidate, which
 * the peer probes right away. B's public endpoint comes from a mapping
 * STUN server: first hole1, then hole2 (sockets of the test that never
 * answer); B is relay-only, so A never gets a direct path and keeps
 * checking. Without the call, hole2 would hear nothing for minutes (the
 * mapping server does not change what a refresh sees before 20 s, and
 * rediscovery runs every 5 min). */
static void test_network_changed(void **state)
{
    (void)state;
    uint16_t p1 = 0, p2 = 0;
    int hole1 = rdv_ts_udp_socket_at("127.0.0.1", &p1);
    int hole2 = rdv_ts_udp_socket_at("127.0.0.1", &p2);
    assert_true(hole1 >= 0 && hole2 >= 0);
    map_stun ms;
    map_stun_start(&ms, p1);
    char ms_addr[32];
    rdv_ts_server *s = start_server(NULL);
    popts oa = {0}, ob = {0};
    oa.spray_ports = -1;
    oa.direct_timeout_ms = 300;
    mapped_relay_only(&ob, &ms, ms_addr);
    cpeer *a = peer_new(s, "alice", &oa);
    cpeer *b = peer_new(s, "bob", &ob);
    wait_up(a);
    wait_up(b);
    expect_public_port(b, p1);
    assert_int_equal(rdv_client_network_changed(NULL), RDV_ERR_INVALID);

    b->accept_mode = 1;
    char sid[RDV_SESSION_ID_LEN + 1];
    uint8_t sidb[16];
    assert_int_equal(rdv_session_connect(a->c, b->id, sid), 0);
    assert_int_equal(rdv_uuid_to_bytes(sid, sidb), 0);
    WAIT_FOR(a, a->n_path >= 1, WAIT_MS); /* the relay, after 300 ms */
    assert_true(probe_arrives(hole1, sidb, WAIT_MS)); /* B's first endpoint */
    assert_false(probe_arrives(hole2, sidb, 300));

    map_stun_set(&ms, p2); /* "B's NAT gave it a new mapping" */
    long long t0 = rdv_ts_mono_ms();
    assert_int_equal(rdv_client_network_changed(b->c), 0);
    rdv_network_status sb;
    do {
        usleep(10000);
        status_of(b, &sb);
    } while (sb.public_port != p2 && rdv_ts_mono_ms() - t0 < WAIT_MS);
    assert_int_equal(sb.public_port, p2);
    assert_true(probe_arrives(hole2, sidb, WAIT_MS));
    fprintf(stderr, "new endpoint discovered and probed by the peer %lld ms after "
                    "rdv_client_network_changed()\n", rdv_ts_mono_ms() - t0);
    assert_int_equal(peer_get(a, &a->n_closed), 0);
    assert_int_equal(peer_get(b, &b->n_closed), 0);
    map_stun_stop(&ms);
    close(hole1);
    close(hole2);
}

static void test_proxy(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", NULL);
    char sid[RDV_SESSION_ID_LEN + 1];
    connect_direct(a, b, sid);
    rdv_session_info ia0;
    info_of(a, sid, &ia0);

    uint16_t pa_app, pb_app, pa, pb;
    int app_a = udp_socket(&pa_app);
    int app_b = udp_socket(&pb_app);
    char fwd[64];
    snprintf(fwd, sizeof(fwd), "127.0.0.1:%u", pb_app);
    assert_int_equal(rdv_session_proxy(a->c, sid, "127.0.0.1:0", NULL, &pa), 0);
    assert_int_equal(rdv_session_proxy(b->c, sid, "127.0.0.1:0", fwd, &pb), 0);
    assert_int_equal(rdv_session_proxy(b->c, sid, "127.0.0.1:0", fwd, NULL), RDV_ERR_STATE);
    assert_true(pa != 0 && pb != 0);

    const char *why = rdv_ts_proxy_round_trip(app_a, pa, app_b, pb, 20);
    if (why)
        fail_msg("proxy round trip: %s", why);
    assert_int_equal(peer_get(a, &a->n_data), 0);
    assert_int_equal(peer_get(b, &b->n_data), 0);
    /* It went the direct way (the counters may trail the delivery a
     * little: polled, bounded). */
    rdv_session_info ia;
    long long cend = rdv_ts_mono_ms() + 2000;
    do {
        info_of(a, sid, &ia);
        if (ia.direct_tx_datagrams >= ia0.direct_tx_datagrams + 21 &&
            ia.direct_rx_datagrams >= ia0.direct_rx_datagrams + 21)
            break;
        usleep(10000);
    } while (rdv_ts_mono_ms() < cend);
    print_info("A", &ia);
    assert_int_equal(ia.path, RDV_PATH_DIRECT);
    assert_true(ia.direct_tx_datagrams >= ia0.direct_tx_datagrams + 21);
    assert_true(ia.direct_rx_datagrams >= ia0.direct_rx_datagrams + 21);
    assert_int_equal(rdv_session_close(a->c, sid), 0);
    WAIT_FOR(b, b->n_closed == 1, CLOSE_WAIT_MS);
    close(app_a);
    close(app_b);
}

/* The stranger's IPv6 socket on ::1, or -1 (no IPv6 here). */
static int g_st6 = -1;

static int udp6_loopback_socket(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    a.sin6_addr = in6addr_loopback;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends buf to 127.0.0.1:port from fd and, when there is IPv6, to
 * [::1]:port from g_st6 (the client's IPv6 socket shares its port). */
static void stranger_send(int fd, uint16_t port, const uint8_t *buf, size_t len)
{
    udp_send(fd, port, buf, len);
    if (g_st6 >= 0) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        a.sin6_addr = in6addr_loopback;
        assert_int_equal(sendto(g_st6, buf, len, 0, (struct sockaddr *)&a, sizeof(a)),
                         (ssize_t)len);
    }
}

/* BLAKE2b-128 keyed with `key` over buf[0..len) into mac. */
static void mac16(uint8_t mac[16], const uint8_t *buf, size_t len, const uint8_t key[32])
{
    crypto_generichash(mac, 16, buf, len, key, 32);
}

static void test_stranger(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    popts oa = {0}, ob = {0};
    oa.udp_port = free_udp_port();
    ob.udp_port = free_udp_port();
    while (ob.udp_port == oa.udp_port)
        ob.udp_port = free_udp_port();
    cpeer *a = peer_new(s, "alice", &oa);
    cpeer *b = peer_new(s, "bob", &ob);
    char sid[RDV_SESSION_ID_LEN + 1];
    connect_direct(a, b, sid);
    rdv_session_info ia0, ib0;
    info_of(a, sid, &ia0);
    info_of(b, sid, &ib0);
    print_info("A", &ia0);
    check_remote(ia0.remote, ob.udp_port);
    check_remote(ib0.remote, oa.udp_port);
    exchange_hashed(a, b, sid, 20, 600);

    uint16_t sp = 0;
    int st = udp_socket(&sp);
    g_st6 = udp6_loopback_socket();
    fprintf(stderr, "stranger sends over IPv4%s\n", g_st6 >= 0 ? " and IPv6" : "");
    uint8_t sidb[16], other_sid[16], key[32], pkt[1300], mac[16];
    assert_int_equal(rdv_uuid_to_bytes(sid, sidb), 0);
    memcpy(other_sid, sidb, 16);
    other_sid[15] ^= 1;
    const uint16_t ap = oa.udp_port;
    for (int round = 0; round < 10; round++) {
        /* Garbage of several sizes and first bytes. */
        randombytes_buf(pkt, sizeof(pkt));
        pkt[0] = 0x42;
        stranger_send(st, ap, pkt, 100);
        stranger_send(st, ap, pkt, 1);
        pkt[0] = 0xD0;
        stranger_send(st, ap, pkt, 46);
        pkt[0] = 0xD4;
        stranger_send(st, ap, pkt, 65);
        /* STUN: a Binding request, and a success "response" nobody asked for. */
        uint8_t tid[12];
        randombytes_buf(tid, sizeof(tid));
        int sl = rdv_stun_build_binding_request(pkt, sizeof(pkt), tid, NULL);
        assert_true(sl > 0);
        stranger_send(st, ap, pkt, (size_t)sl);
        pkt[0] = 0x01;
        pkt[1] = 0x01; /* Binding success response type */
        stranger_send(st, ap, pkt, (size_t)sl);

        /* PROBE with the real sid: random MAC, then a MAC under a wrong key,
         * with every flag combination. */
        for (int variant = 0; variant < 4; variant++) {
            pkt[0] = 0xD1;
            memcpy(pkt + 1, variant == 3 ? other_sid : sidb, 16);
            randombytes_buf(pkt + 17, 12);
            pkt[29] = (uint8_t)(variant & 3);
            if (variant == 0) {
                randombytes_buf(pkt + 30, 16);
            } else {
                randombytes_buf(key, sizeof(key));
                mac16(mac, pkt, 30, key);
                memcpy(pkt + 30, mac, 16);
            }
            stranger_send(st, ap, pkt, 46);
            stranger_send(st, ap, pkt, 45); /* short */
            stranger_send(st, ap, pkt, 47); /* long */
        }
        /* PROBE_ACK claiming the stranger's address as A's reflexive one. */
        for (int variant = 0; variant < 2; variant++) {
            pkt[0] = 0xD2;
            memcpy(pkt + 1, sidb, 16);
            randombytes_buf(pkt + 17, 12);
            pkt[29] = 0x02;
            pkt[30] = 4;
            pkt[31] = (uint8_t)(sp >> 8);
            pkt[32] = (uint8_t)sp;
            memset(pkt + 33, 0, 16);
            pkt[33] = 127;
            pkt[36] = 1;
            if (variant == 0) {
                randombytes_buf(pkt + 49, 16);
            } else {
                randombytes_buf(key, sizeof(key));
                mac16(mac, pkt, 49, key);
                memcpy(pkt + 49, mac, 16);
            }
            stranger_send(st, ap, pkt, 65);
        }
        /* DATA with the real sid: random counter, ciphertext and tag; one
         * sealed with a wrong key by the documented AEAD. */
        pkt[0] = 0xD3;
        memcpy(pkt + 1, sidb, 16);
        randombytes_buf(pkt + 17, 8 + 100 + 16);
        stranger_send(st, ap, pkt, 17 + 8 + 100 + 16);
        memset(pkt + 17, 0, 8); /* counter 0 */
        stranger_send(st, ap, pkt, 17 + 8 + 100 + 16);
        {
            uint8_t nonce[12] = {0};
            uint64_t ctr = (uint64_t)round + 1000;
            put_le(pkt + 17, ctr, 8);
            memcpy(nonce + 4, pkt + 17, 8);
            randombytes_buf(key, sizeof(key));
            unsigned long long clen = 0;
            crypto_aead_chacha20poly1305_ietf_encrypt(pkt + 25, &clen,
                                                      (const uint8_t *)"forged data", 11,
                                                      sidb, 16, NULL, nonce, key);
            stranger_send(st, ap, pkt, 25 + (size_t)clen);
        }
        stranger_send(st, ap, pkt, 40); /* one short of a DATA packet */
        usleep(20000);
    }

    /* A never answers the stranger. */
    int answers = 0, others = 0;
    long long end = rdv_ts_mono_ms() + 1500;
    while (rdv_ts_mono_ms() < end) {
        struct pollfd pf[2] = {{.fd = st, .events = POLLIN}, {.fd = g_st6, .events = POLLIN}};
        if (poll(pf, g_st6 >= 0 ? 2 : 1, 100) <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            if (!(pf[k].revents & POLLIN))
                continue;
            struct sockaddr_storage from;
            socklen_t fl = sizeof(from);
            ssize_t n = recvfrom(pf[k].fd, pkt, sizeof(pkt), MSG_DONTWAIT,
                                 (struct sockaddr *)&from, &fl);
            if (n < 0)
                continue;
            uint16_t fp = ntohs(from.ss_family == AF_INET
                                    ? ((struct sockaddr_in *)&from)->sin_port
                                    : ((struct sockaddr_in6 *)&from)->sin6_port);
            if (fp == ap || fp == ob.udp_port) {
                fprintf(stderr, "stranger got %zd bytes (first 0x%02x) from port %u (IPv%d)\n",
                        n, pkt[0], fp, k ? 6 : 4);
                answers++;
            } else {
                others++; /* another test's traffic on this host: not A */
            }
        }
    }
    if (others)
        fprintf(stderr, "stranger: %d datagrams from elsewhere ignored\n", others);
    assert_int_equal(answers, 0);
    close(st);
    if (g_st6 >= 0)
        close(g_st6);
    g_st6 = -1;

    /* The session is unchanged and still carries data. */
    rdv_session_info ia, ib;
    info_of(a, sid, &ia);
    info_of(b, sid, &ib);
    print_info("A after", &ia);
    assert_int_equal(ia.path, RDV_PATH_DIRECT);
    assert_int_equal(ib.path, RDV_PATH_DIRECT);
    assert_string_equal(ia.remote, ia0.remote);
    assert_string_equal(ib.remote, ib0.remote);
    assert_int_equal(peer_get(a, &a->n_path), 1);
    assert_int_equal(peer_get(b, &b->n_path), 1);
    exchange_hashed(a, b, sid, 50, DGRAM_MAX);
    assert_int_equal(peer_get(a, &a->n_closed), 0);
    assert_int_equal(rdv_client_state(a->c), RDV_STATE_AUTHENTICATED);
    rdv_network_status sa;
    status_of(a, &sa);
    assert_int_equal(sa.last_path, RDV_PATH_DIRECT);
}

static void test_reconnect_survives(void **state)
{
    (void)state;
    rdv_ts_server *s = start_server(NULL);
    cpeer *a = peer_new(s, "alice", NULL);
    cpeer *b = peer_new(s, "bob", NULL);
    char sid[RDV_SESSION_ID_LEN + 1];
    connect_direct(a, b, sid);
    exchange_hashed(a, b, sid, 10, 500);
    assert_int_equal(rdv_ts_server_stop(s), 0);
    WAIT_FOR(a, a->state != RDV_STATE_AUTHENTICATED, WAIT_MS);
    WAIT_FOR(b, b->state != RDV_STATE_AUTHENTICATED, WAIT_MS);
    usleep(200000);
    assert_int_equal(peer_get(a, &a->n_closed), 0);
    assert_int_equal(peer_get(b, &b->n_closed), 0);
    exchange_hashed(a, b, sid, 50, DGRAM_MAX);
    rdv_session_info ia;
    info_of(a, sid, &ia);
    print_info("A without server", &ia);
    assert_int_equal(ia.path, RDV_PATH_DIRECT);
    assert_int_equal(peer_get(a, &a->n_path), 1);
    assert_int_equal(peer_get(b, &b->n_path), 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_discovery, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_dead_stun, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_answer_waits, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_direct, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_relay_only, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_direct_timeout, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_upgrade, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_both_symmetric, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_close, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_relay_limit, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_reject, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_session_limit, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_low_order_answer, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_spray_cap, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_network_changed, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_proxy, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_stranger, rdv_ts_peers_teardown),
        cmocka_unit_test_teardown(test_reconnect_survives, rdv_ts_peers_teardown),
    };
    if (argc > 1) {
        static char filter[64];
        snprintf(filter, sizeof(filter), "test_%s", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("client_connect", tests, NULL, NULL);
}
