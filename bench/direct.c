/* direct.c - one librendezvous session between two clients of this process,
 * direct (rdv_session_connect, first path Direct) or relayed (A with
 * direct_disable = 1, so rdv_session_connect goes straight to the relay), loaded
 * through the library's public API only (bench/direct.sh runs it).
 *
 *   loadgen_direct --url ws://127.0.0.1:P/v1 --stun 127.0.0.1:S
 *                  --mode direct|relayed [--seconds 5] [--lat-count 2000]
 *                  [--server-pid PID]
 *
 * Both clients run in threaded mode (rdv_client_start). A opens the session
 * with rdv_session_connect(); B accepts from cb_session_request. Then, on that one
 * session:
 *   latency     A sends --lat-count 64-byte datagrams, one per ms (absolute
 *               schedule), each carrying its CLOCK_MONOTONIC send time; B
 *               echoes every one from cb_session_data; A's cb_session_data
 *               records the round trip. p50 / p99 / max over those
 *               answered.
 *   throughput  A's main thread sends datagrams of 1200 bytes, then of
 *               rdv_client_max_payload(), for --seconds each, as fast as
 *               rdv_session_send() takes them: RDV_ERR_BACKLOG is the only
 *               pacing (the same datagram is retried after a 50 us sleep).
 *               B's cb_session_data counts bytes and checks sequence numbers
 *               (duplicates, reordering, payload pattern). MB/s (10^6) =
 *               payload bytes B received between 0.5 s after the start and
 *               the end of sending; loss = datagrams rdv_session_send()
 *               accepted that B never received, after a drain (A's queue
 *               empty and B silent for 300 ms, at most 10 s).
 * CPU: getrusage of this process (both clients and the sender) and of the
 * sending thread, and the server's from /proc/PID/stat, over the send
 * window. UDP counters: /proc/net/snmp (whole machine) over the window.
 * Prints one JSON line on stdout; progress on stderr. Every wait is
 * bounded; all traffic is on loopback (the server and STUN at 127.0.0.1).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <rendezvous/rendezvous.h>

#define WAIT_MS 15000          /* bound for connecting, path, drain */
#define WARM_NS 500000000LL    /* throughput: not counted in MB/s */
#define SEQ_BITS (1u << 25)    /* sequence numbers tracked (32M) */
#define HDR 24                 /* phase (1) pad (7) seq (8) ts_ns (8) */
#define MAX_DGRAM 65536

enum { PH_NONE = 0, PH_LAT = 'L', PH_ECHO = 'E', PH_THR = 'T' };

typedef struct peer {
    rdv_client *c;
    char id[RDV_NODE_ID_LEN + 1];
    const char *label;
    pthread_mutex_t mu;
    char sid[RDV_SESSION_ID_LEN + 1];
    int accept_rc;
    int n_request, n_closed, closed_err;
    int path, n_path, first_path;
    int64_t first_path_ms;
    atomic_int n_error;
    /* throughput receive (B's service thread writes, main reads) */
    atomic_uint_fast64_t rx_bytes, rx_dgrams, uniq, dup, reorder, bad, stale, echo_fail;
    uint64_t next_seq;          /* callback thread only */
    uint8_t *seen;              /* bitmap, callback thread only */
    /* latency (A's service thread writes) */
    int64_t *rtt_ns;            /* per seq, -1 = not answered */
    atomic_uint_fast64_t lat_recv;
} peer;

static peer A, B;
static atomic_int g_phase;
static int g_lat_count = 2000;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    nanosleep(&ts, NULL);
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double proc_cpu_s(long pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* /proc/net/snmp "Udp:" counters by name. */
typedef struct udp_ctr {
    long long in, out, rcvbuf_err, sndbuf_err, in_err;
} udp_ctr;

static void udp_read(udp_ctr *u)
{
    memset(u, 0, sizeof(*u));
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f)
        return;
    char names[1024] = "", line[1024];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Udp: ", 5) != 0)
            continue;
        if (!names[0]) {
            snprintf(names, sizeof(names), "%s", line);
            continue;
        }
        char *sn = NULL, *sv = NULL;
        char *tn = strtok_r(names + 5, " \n", &sn);
        char *tv = strtok_r(line + 5, " \n", &sv);
        while (tn && tv) {
            long long v = atoll(tv);
            if (!strcmp(tn, "InDatagrams"))
                u->in = v;
            else if (!strcmp(tn, "OutDatagrams"))
                u->out = v;
            else if (!strcmp(tn, "RcvbufErrors"))
                u->rcvbuf_err = v;
            else if (!strcmp(tn, "SndbufErrors"))
                u->sndbuf_err = v;
            else if (!strcmp(tn, "InErrors"))
                u->in_err = v;
            tn = strtok_r(NULL, " \n", &sn);
            tv = strtok_r(NULL, " \n", &sv);
        }
        break;
    }
    fclose(f);
}

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint8_t pat(uint64_t seq, size_t k) { return (uint8_t)(seq * 31 + k * 7); }

/* ---- callbacks ---- */

static void on_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    peer *p = u;
    if (getenv("DIRECT_VERBOSE"))
        fprintf(stderr, "[%s] state %s\n", p->label, rdv_state_name(st));
}

static void on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    peer *p = u;
    int n = atomic_fetch_add(&p->n_error, 1);
    if (n < 5 || getenv("DIRECT_VERBOSE"))
        fprintf(stderr, "[%s] error %d (%s): %s\n", p->label, e->code,
                e->server_code ? e->server_code : "local", e->message);
}

static void on_request(rdv_client *c, const rdv_session_request *r, void *u)
{
    peer *p = u;
    int rc = rdv_session_accept(c, r->session_id);
    pthread_mutex_lock(&p->mu);
    p->n_request++;
    p->accept_rc = rc;
    snprintf(p->sid, sizeof(p->sid), "%s", r->session_id);
    pthread_mutex_unlock(&p->mu);
}

static void on_ready(rdv_client *c, const char *sid, const char *peer_id, void *u)
{
    (void)c;
    (void)sid;
    (void)peer_id;
    (void)u;
}

static void on_path(rdv_client *c, const char *sid, const char *peer_id, rdv_path path,
                    int64_t elapsed_ms, void *u)
{
    (void)c;
    (void)sid;
    (void)peer_id;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    if (p->n_path == 0) {
        p->first_path = path;
        p->first_path_ms = elapsed_ms;
    }
    p->n_path++;
    p->path = path;
    pthread_mutex_unlock(&p->mu);
    fprintf(stderr, "[%s] path %s after %lld ms\n", p->label, rdv_path_name(path),
            (long long)elapsed_ms);
}

static void on_closed(rdv_client *c, const char *sid, int err, const char *reason, void *u)
{
    (void)c;
    (void)sid;
    peer *p = u;
    pthread_mutex_lock(&p->mu);
    p->n_closed++;
    p->closed_err = err;
    pthread_mutex_unlock(&p->mu);
    fprintf(stderr, "[%s] session closed: %d %s\n", p->label, err, reason);
}

static void on_data(rdv_client *c, const char *sid, const uint8_t *d, size_t len, void *u)
{
    peer *p = u;
    if (len < HDR) {
        atomic_fetch_add_explicit(&p->bad, 1, memory_order_relaxed);
        return;
    }
    int ph = d[0];
    if (p == &B && ph == PH_LAT) {
        uint8_t echo[256];
        if (len > sizeof(echo))
            return;
        memcpy(echo, d, len);
        echo[0] = PH_ECHO;
        if (rdv_session_send(c, sid, echo, len) != 0)
            atomic_fetch_add_explicit(&p->echo_fail, 1, memory_order_relaxed);
        return;
    }
    if (p == &A && ph == PH_ECHO) {
        uint64_t seq = get64(d + 8);
        int64_t rtt = mono_ns() - (int64_t)get64(d + 16);
        if (seq < (uint64_t)g_lat_count && p->rtt_ns[seq] < 0) {
            p->rtt_ns[seq] = rtt;
            atomic_fetch_add_explicit(&p->lat_recv, 1, memory_order_release);
        }
        return;
    }
    if (p != &B || ph != PH_THR || atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_THR) {
        atomic_fetch_add_explicit(&p->stale, 1, memory_order_relaxed);
        return;
    }
    uint64_t seq = get64(d + 8);
    /* the payload pattern: checked at a few offsets (cheap, catches
     * corruption and mixing) */
    if (d[len - 1] != pat(seq, len - 1) || d[HDR] != pat(seq, HDR) ||
        d[len / 2] != pat(seq, len / 2)) {
        atomic_fetch_add_explicit(&p->bad, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&p->rx_bytes, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->rx_dgrams, 1, memory_order_relaxed);
    if (seq < p->next_seq)
        atomic_fetch_add_explicit(&p->reorder, 1, memory_order_relaxed);
    else
        p->next_seq = seq + 1;
    if (seq < SEQ_BITS) {
        uint8_t bit = (uint8_t)(1u << (seq % 8));
        if (p->seen[seq / 8] & bit) {
            atomic_fetch_add_explicit(&p->dup, 1, memory_order_relaxed);
            return;
        }
        p->seen[seq / 8] |= bit;
    }
    atomic_fetch_add_explicit(&p->uniq, 1, memory_order_release);
}

/* ---- set-up ---- */

static void die(const char *msg)
{
    fprintf(stderr, "loadgen_direct: %s\n", msg);
    exit(1);
}

static void peer_new(peer *p, const char *label, const char *url, const char *stun,
                     int direct_disable)
{
    memset(p, 0, sizeof(*p));
    p->label = label;
    pthread_mutex_init(&p->mu, NULL);
    rdv_identity id;
    if (rdv_identity_generate(&id) != 0)
        die("rdv_identity_generate failed");
    rdv_identity_node_id(&id, p->id);
    const char *stuns[1] = {stun};
    rdv_client_config cfg = {0};
    cfg.server_url = url;
    cfg.identity = &id;
    cfg.cb_state_changed = on_state;
    cfg.cb_error = on_error;
    cfg.cb_session_request = on_request;
    cfg.cb_session_ready = on_ready;
    cfg.cb_session_data = on_data;
    cfg.cb_session_closed = on_closed;
    cfg.cb_path = on_path;
    cfg.stun_servers = stuns;
    cfg.stun_server_count = 1;
    cfg.direct_disable = direct_disable;
    cfg.user_ptr = p;
    int rc = rdv_client_create(&cfg, &p->c);
    rdv_identity_wipe(&id);
    if (rc != 0) {
        fprintf(stderr, "rdv_client_create: %s\n", rdv_strerror(rc));
        exit(1);
    }
    if (rdv_client_start(p->c) != 0)
        die("rdv_client_start failed");
}

static bool wait_auth(peer *p, int ms)
{
    int64_t end = mono_ns() + (int64_t)ms * 1000000;
    while (mono_ns() < end) {
        rdv_network_status st;
        if (rdv_client_get_network_status(p->c, &st) == 0 && st.state == RDV_STATE_AUTHENTICATED &&
            st.nat_discovered)
            return true;
        sleep_ns(5000000);
    }
    return false;
}

static int peer_path(peer *p, int *n_path)
{
    pthread_mutex_lock(&p->mu);
    int v = p->path;
    if (n_path)
        *n_path = p->n_path;
    pthread_mutex_unlock(&p->mu);
    return v;
}

static void sinfo(rdv_client *c, const char *sid, rdv_session_info *si)
{
    memset(si, 0, sizeof(*si));
    if (rdv_session_get_info(c, sid, si) != 0)
        memset(si, 0, sizeof(*si));
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- phases ---- */

typedef struct lat_res {
    int sent, recv, send_fail;
    double p50_us, p99_us, max_us;
} lat_res;

static void run_latency(const char *sid, lat_res *res)
{
    memset(res, 0, sizeof(*res));
    for (int i = 0; i < g_lat_count; i++)
        A.rtt_ns[i] = -1;
    atomic_store(&A.lat_recv, 0);
    atomic_store(&g_phase, PH_LAT);
    uint8_t buf[64];
    memset(buf, 0, sizeof(buf));
    buf[0] = PH_LAT;
    int64_t t0 = mono_ns() + 1000000;
    for (int i = 0; i < g_lat_count; i++) {
        int64_t due = t0 + (int64_t)i * 1000000;
        struct timespec ts = {due / 1000000000LL, due % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        put64(buf + 8, (uint64_t)i);
        put64(buf + 16, (uint64_t)mono_ns());
        if (rdv_session_send(A.c, sid, buf, sizeof(buf)) == 0)
            res->sent++;
        else
            res->send_fail++;
    }
    int64_t end = mono_ns() + 2000000000LL;
    while (mono_ns() < end && (int)atomic_load_explicit(&A.lat_recv, memory_order_acquire) < res->sent)
        sleep_ns(2000000);
    sleep_ns(50000000);
    int64_t *v = malloc(sizeof(int64_t) * (size_t)g_lat_count);
    if (!v)
        die("out of memory");
    int n = 0;
    for (int i = 0; i < g_lat_count; i++)
        if (A.rtt_ns[i] >= 0)
            v[n++] = A.rtt_ns[i];
    res->recv = n;
    if (n > 0) {
        qsort(v, (size_t)n, sizeof(*v), cmp64);
        res->p50_us = v[(n - 1) / 2] / 1e3;
        res->p99_us = v[(size_t)((n - 1) * 0.99)] / 1e3;
        res->max_us = v[n - 1] / 1e3;
    }
    free(v);
    atomic_store(&g_phase, PH_NONE);
}

typedef struct thr_res {
    size_t size;
    uint64_t sent, backlog, errors, rx, uniq, dup, reorder, bad, stale;
    int last_err;
    double secs, mbps, sent_mbps, loss_pct, proc_cores, sender_cores, srv_cores, drain_s;
    long long udp_in, udp_out, udp_rcvbuf_err, udp_sndbuf_err;
    uint64_t relay_dropped_a, relay_dropped_b, dtx_a, drx_b;
    int path_changes;
} thr_res;

static void run_throughput(const char *sid, size_t size, double seconds, long srv_pid,
                           thr_res *res)
{
    memset(res, 0, sizeof(*res));
    res->size = size;
    static uint8_t buf[MAX_DGRAM];
    for (size_t k = 0; k < size; k++)
        buf[k] = 0;
    buf[0] = PH_THR;
    memset(B.seen, 0, SEQ_BITS / 8);
    B.next_seq = 0;
    atomic_store(&B.rx_bytes, 0);
    atomic_store(&B.rx_dgrams, 0);
    atomic_store(&B.uniq, 0);
    atomic_store(&B.dup, 0);
    atomic_store(&B.reorder, 0);
    atomic_store(&B.bad, 0);
    atomic_store(&B.stale, 0);
    rdv_network_status sa0, sb0, sa1, sb1;
    rdv_session_info ia0, ib0, ia1, ib1;
    rdv_client_get_network_status(A.c, &sa0);
    rdv_client_get_network_status(B.c, &sb0);
    sinfo(A.c, sid, &ia0);
    sinfo(B.c, B.sid, &ib0);
    int np_a0, np_b0, np_a1, np_b1;
    peer_path(&A, &np_a0);
    peer_path(&B, &np_b0);
    atomic_store(&g_phase, PH_THR);
    sleep_ns(10000000);

    udp_ctr u0, u1;
    udp_read(&u0);
    double p0 = cpu_s(RUSAGE_SELF), th0 = cpu_s(RUSAGE_THREAD), s0 = proc_cpu_s(srv_pid);
    int64_t t_start = mono_ns();
    int64_t t_warm = t_start + WARM_NS, t_end = t_start + (int64_t)(seconds * 1e9);
    uint64_t warm_bytes = 0, end_bytes = 0, warm_sent = 0;
    int64_t t_warm_real = 0;
    bool warm = false;
    uint64_t seq = 0;
    for (;;) {
        int64_t now = mono_ns();
        if (!warm && now >= t_warm) {
            warm_bytes = atomic_load_explicit(&B.rx_bytes, memory_order_relaxed);
            warm_sent = seq;
            t_warm_real = now;
            warm = true;
        }
        if (now >= t_end)
            break;
        put64(buf + 8, seq);
        buf[HDR] = pat(seq, HDR);
        buf[size / 2] = pat(seq, size / 2);
        buf[size - 1] = pat(seq, size - 1);
        int rc = rdv_session_send(A.c, sid, buf, size);
        if (rc == 0) {
            seq++;
        } else if (rc == RDV_ERR_BACKLOG) {
            res->backlog++;
            sleep_ns(50000);
        } else {
            res->errors++;
            res->last_err = rc;
            if (res->errors > 1000)
                break;
            sleep_ns(1000000);
        }
    }
    int64_t t_stop = mono_ns();
    end_bytes = atomic_load_explicit(&B.rx_bytes, memory_order_relaxed);
    double p1 = cpu_s(RUSAGE_SELF), th1 = cpu_s(RUSAGE_THREAD), s1 = proc_cpu_s(srv_pid);
    udp_read(&u1);
    res->sent = seq;
    res->secs = (t_stop - t_start) / 1e9;
    double wsecs = (t_stop - t_warm_real) / 1e9;
    res->mbps = warm && wsecs > 0 ? (double)(end_bytes - warm_bytes) / wsecs / 1e6 : 0;
    res->sent_mbps = warm && wsecs > 0 ? (double)(seq - warm_sent) * size / wsecs / 1e6 : 0;
    res->proc_cores = (p1 - p0) / res->secs;
    res->sender_cores = (th1 - th0) / res->secs;
    res->srv_cores = srv_pid > 0 ? (s1 - s0) / res->secs : -1;
    res->udp_in = u1.in - u0.in;
    res->udp_out = u1.out - u0.out;
    res->udp_rcvbuf_err = u1.rcvbuf_err - u0.rcvbuf_err;
    res->udp_sndbuf_err = u1.sndbuf_err - u0.sndbuf_err;

    /* drain: A's queue empty and B silent for 300 ms (bounded) */
    int64_t d0 = mono_ns(), dend = d0 + (int64_t)WAIT_MS * 1000000, last_change = d0;
    uint64_t last = atomic_load(&B.rx_dgrams);
    while (mono_ns() < dend) {
        sleep_ns(20000000);
        uint64_t now_rx = atomic_load(&B.rx_dgrams);
        if (now_rx != last) {
            last = now_rx;
            last_change = mono_ns();
        } else if (rdv_client_pending(A.c) == 0 && mono_ns() - last_change > 300000000LL) {
            break;
        }
    }
    res->drain_s = (mono_ns() - d0) / 1e9;
    atomic_store(&g_phase, PH_NONE);
    res->rx = atomic_load(&B.rx_dgrams);
    res->uniq = atomic_load_explicit(&B.uniq, memory_order_acquire);
    res->dup = atomic_load(&B.dup);
    res->reorder = atomic_load(&B.reorder);
    res->bad = atomic_load(&B.bad);
    res->stale = atomic_load(&B.stale);
    res->loss_pct = seq ? 100.0 * (double)(seq - (res->uniq < seq ? res->uniq : seq)) / (double)seq
                        : 0;
    rdv_client_get_network_status(A.c, &sa1);
    rdv_client_get_network_status(B.c, &sb1);
    sinfo(A.c, sid, &ia1);
    sinfo(B.c, B.sid, &ib1);
    res->relay_dropped_a = sa1.relay_dropped - sa0.relay_dropped;
    res->relay_dropped_b = sb1.relay_dropped - sb0.relay_dropped;
    res->dtx_a = ia1.direct_tx_datagrams - ia0.direct_tx_datagrams;
    res->drx_b = ib1.direct_rx_datagrams - ib0.direct_rx_datagrams;
    peer_path(&A, &np_a1);
    peer_path(&B, &np_b1);
    res->path_changes = (np_a1 - np_a0) + (np_b1 - np_b0);
    fprintf(stderr,
            "  %zu B: sent %" PRIu64 " (%.1f MB/s), received %" PRIu64 " (%.1f MB/s), loss %.3f%%, "
            "backlog retries %" PRIu64 ", errors %" PRIu64 ", cores proc %.2f sender %.2f srv %.2f, "
            "udp in %lld out %lld rcvbuf_err %lld, drain %.2f s\n",
            size, res->sent, res->sent_mbps, res->uniq, res->mbps, res->loss_pct, res->backlog,
            res->errors, res->proc_cores, res->sender_cores, res->srv_cores, res->udp_in,
            res->udp_out, res->udp_rcvbuf_err, res->drain_s);
}

static void print_thr(const char *k, const thr_res *r)
{
    printf(",\"%s_size\":%zu,\"%s_mbps\":%.2f,\"%s_sent_mbps\":%.2f,\"%s_loss_pct\":%.3f,"
           "\"%s_sent\":%" PRIu64 ",\"%s_recv\":%" PRIu64 ",\"%s_dup\":%" PRIu64
           ",\"%s_reorder\":%" PRIu64 ",\"%s_bad\":%" PRIu64 ",\"%s_stale\":%" PRIu64
           ",\"%s_backlog\":%" PRIu64 ",\"%s_errors\":%" PRIu64 ",\"%s_last_err\":%d,"
           "\"%s_secs\":%.3f,\"%s_proc_cores\":%.2f,\"%s_sender_cores\":%.2f,\"%s_srv_cores\":%.2f,"
           "\"%s_udp_in\":%lld,\"%s_udp_out\":%lld,\"%s_udp_rcvbuf_err\":%lld,"
           "\"%s_udp_sndbuf_err\":%lld,\"%s_dropped_a\":%" PRIu64 ",\"%s_dropped_b\":%" PRIu64
           ",\"%s_direct_tx_a\":%" PRIu64 ",\"%s_direct_rx_b\":%" PRIu64
           ",\"%s_path_changes\":%d,\"%s_drain_s\":%.2f",
           k, r->size, k, r->mbps, k, r->sent_mbps, k, r->loss_pct, k, r->sent, k, r->uniq, k,
           r->dup, k, r->reorder, k, r->bad, k, r->stale, k, r->backlog, k, r->errors, k,
           r->last_err, k, r->secs, k, r->proc_cores, k, r->sender_cores, k, r->srv_cores, k,
           r->udp_in, k, r->udp_out, k, r->udp_rcvbuf_err, k, r->udp_sndbuf_err, k,
           r->relay_dropped_a, k, r->relay_dropped_b, k, r->dtx_a, k, r->drx_b, k,
           r->path_changes, k, r->drain_s);
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen_direct --url ws://127.0.0.1:P/v1 --stun 127.0.0.1:S "
                    "--mode direct|relayed [--seconds 5] [--lat-count 2000] [--server-pid PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *stun = NULL, *mode = "direct";
    double seconds = 5;
    long srv_pid = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--stun"))
            stun = v;
        else if (!strcmp(a, "--mode"))
            mode = v;
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--lat-count"))
            g_lat_count = atoi(v);
        else if (!strcmp(a, "--server-pid"))
            srv_pid = atol(v);
        else
            usage();
        i++;
    }
    bool direct = !strcmp(mode, "direct");
    int64_t wall0 = mono_ns();
    if (!url || !stun || (!direct && strcmp(mode, "relayed")) || seconds < 1 || seconds > 60 ||
        g_lat_count < 1 || g_lat_count > 100000)
        usage();

    peer_new(&B, "B", url, stun, 0);
    peer_new(&A, "A", url, stun, direct ? 0 : 1);
    B.seen = calloc(SEQ_BITS / 8, 1);
    A.rtt_ns = calloc((size_t)g_lat_count, sizeof(int64_t));
    if (!B.seen || !A.rtt_ns)
        die("out of memory");
    if (!wait_auth(&A, WAIT_MS) || !wait_auth(&B, WAIT_MS))
        die("clients not authenticated (with NAT discovery done) within 15 s");

    char sid[RDV_SESSION_ID_LEN + 1];
    int64_t c0 = mono_ns();
    int rc = rdv_session_connect(A.c, B.id, sid);
    if (rc != 0) {
        fprintf(stderr, "rdv_session_connect: %s\n", rdv_strerror(rc));
        return 1;
    }
    int want = direct ? RDV_PATH_DIRECT : RDV_PATH_RELAYED;
    int64_t end = mono_ns() + (int64_t)WAIT_MS * 1000000;
    while (mono_ns() < end && (peer_path(&A, NULL) != want || peer_path(&B, NULL) != want))
        sleep_ns(2000000);
    if (peer_path(&A, NULL) != want || peer_path(&B, NULL) != want) {
        fprintf(stderr, "no %s path on both sides within %d ms (A %s, B %s)\n",
                rdv_path_name(want), WAIT_MS, rdv_path_name(peer_path(&A, NULL)),
                rdv_path_name(peer_path(&B, NULL)));
        return 1;
    }
    double connect_ms = (mono_ns() - c0) / 1e6;
    rdv_session_info si;
    sinfo(A.c, sid, &si);
    size_t maxp = rdv_client_max_payload(A.c);
    fprintf(stderr, "%s: session %s, path %s (A first %s after %lld ms), remote '%s', "
                    "max payload %zu\n",
            mode, sid, rdv_path_name(si.path), rdv_path_name(A.first_path),
            (long long)A.first_path_ms, si.remote, maxp);
    sleep_ns(200000000);

    lat_res lr;
    run_latency(sid, &lr);
    fprintf(stderr, "  latency: %d sent, %d answered, p50 %.1f us, p99 %.1f us, max %.1f us\n",
            lr.sent, lr.recv, lr.p50_us, lr.p99_us, lr.max_us);
    sleep_ns(200000000);
    thr_res t1, tm;
    run_throughput(sid, 1200, seconds, srv_pid, &t1);
    sleep_ns(300000000);
    run_throughput(sid, maxp, seconds, srv_pid, &tm);

    sinfo(A.c, sid, &si);
    printf("{\"mode\":\"%s\",\"path\":\"%s\",\"first_path\":\"%s\",\"first_path_ms\":%lld,"
           "\"connect_ms\":%.1f,\"remote\":\"%s\",\"max_payload\":%zu,\"seconds\":%.1f,"
           "\"lat_sent\":%d,\"lat_recv\":%d,\"lat_send_fail\":%d,\"echo_fail\":%" PRIu64 ","
           "\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"rtt_max_us\":%.1f,"
           "\"errors_a\":%d,\"errors_b\":%d,\"closed\":%d",
           mode, rdv_path_name(si.path), rdv_path_name(A.first_path),
           (long long)A.first_path_ms, connect_ms, si.remote, maxp, seconds, lr.sent, lr.recv,
           lr.send_fail, (uint64_t)atomic_load(&B.echo_fail), lr.p50_us, lr.p99_us, lr.max_us,
           atomic_load(&A.n_error), atomic_load(&B.n_error), A.n_closed + B.n_closed);
    print_thr("t1200", &t1);
    print_thr("tmax", &tm);
    printf(",\"gen_cpu_s\":%.2f,\"gen_wall_s\":%.2f}\n", cpu_s(RUSAGE_SELF),
           (mono_ns() - wall0) / 1e9);
    fflush(stdout);

    (void)rdv_session_close(A.c, sid);
    end = mono_ns() + 2000000000LL;
    while (mono_ns() < end && rdv_client_pending(A.c) > 0)
        sleep_ns(5000000);
    rdv_client_destroy(A.c);
    rdv_client_destroy(B.c);
    free(B.seen);
    free(A.rtt_ns);
    return 0;
}
