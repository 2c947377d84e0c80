/* loadgen_stun.c - STUN Binding request load (issue 8, workload 5).
 *
 *   loadgen_stun --port P [--host 127.0.0.1] [--sockets 16] [--window 16]
 *                [--seconds 5] [--warmup-ms 500] [--timeout-ms 200]
 *                [--fingerprint] [--server-pid PID]
 *
 * One thread, plain POSIX UDP: --sockets connected UDP sockets, each with
 * --window Binding requests outstanding (built by the project's codec,
 * schema/stun.c: rdv_stun_build_binding_request, bare 20-byte requests
 * unless --fingerprint). A response is matched by its transaction ID (the
 * TID names the socket's slot and a per-slot sequence number; the whole TID
 * must equal the outstanding one), parsed with rdv_stun_parse, checked to be
 * a Binding success whose XOR-MAPPED-ADDRESS is the socket's own address,
 * and its slot is refilled at once (sendmmsg per socket per wakeup,
 * recvmmsg in batches of 64). A request not answered in --timeout-ms is
 * counted lost and its slot refilled with a new TID; a late answer to it is
 * counted `late`, not as a response.
 *
 * Measured: the --seconds after --warmup-ms. responses/s = matched answers
 * received in that interval / its length. Loss = requests sent in the
 * interval that were never answered / requests sent in it (after the
 * interval no new requests are sent and outstanding ones get --timeout-ms
 * to arrive). Latency = receive - send on CLOCK_MONOTONIC (per batch clock
 * reads), p50/p99/p999/max over the answers in the interval.
 *
 * CPU over the measured interval (read at its two ends): the server's
 * (--server-pid, all threads, /proc), this generator's, and everything
 * else on the machine: win_server_cores, win_gen_cores, win_other_cores,
 * srv_us_per_resp (server CPU per response in the interval).
 *
 * Output: a human summary on stderr and one line on stdout:
 *   RESULT rps=... sent=... answered=... lost=... loss_pct=... p50_us=...
 *   p99_us=... p999_us=... max_us=... bad=... late=... gen_cpu_s=... secs=...
 *
 * Bounded: the run ends at warmup + seconds + timeout (plus one epoll tick);
 * every inner loop is bounded by the batch sizes. Loopback only by default
 * (--host takes any IPv4 literal; the bench scripts pass 127.0.0.1).
 */
#include "schema/stun.h"

#include "common.h" /* bench_proc_cpu_s, bench_self_cpu_s, bench_machine_busy_s */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SOCKETS 256
#define MAX_WINDOW 4096
#define HIST_US 1000000 /* 1 us buckets up to 1 s */

typedef struct slot {
    uint64_t sent_ns;
    uint32_t seq;
    uint8_t busy;     /* a request is outstanding */
    uint8_t measured; /* sent inside the measured interval */
} slot;

typedef struct sock {
    int fd;
    rdv_stun_addr local;
    slot *slots;
    uint32_t *pending; /* slot indices to (re)send */
    int n_pending;
} sock;

static int g_window;
static int g_fingerprint;
static uint32_t g_hist[HIST_US + 1];
static uint64_t g_hist_n, g_max_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void make_tid(uint8_t tid[RDV_STUN_TID_BYTES], int s, int i, uint32_t seq)
{
    /* socket (2) | slot (2) | seq (4) | constant tag (4) */
    tid[0] = (uint8_t)(s >> 8);
    tid[1] = (uint8_t)s;
    tid[2] = (uint8_t)(i >> 8);
    tid[3] = (uint8_t)i;
    tid[4] = (uint8_t)(seq >> 24);
    tid[5] = (uint8_t)(seq >> 16);
    tid[6] = (uint8_t)(seq >> 8);
    tid[7] = (uint8_t)seq;
    memcpy(tid + 8, "RDVB", 4);
}

static void lat_add(uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (us > HIST_US)
        us = HIST_US;
    g_hist[us]++;
    g_hist_n++;
    if (ns > g_max_ns)
        g_max_ns = ns;
}

static double lat_pct(double p)
{
    if (g_hist_n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)g_hist_n);
    if (want >= g_hist_n)
        want = g_hist_n - 1;
    uint64_t acc = 0;
    for (int i = 0; i <= HIST_US; i++) {
        acc += g_hist[i];
        if (acc > want)
            return i;
    }
    return HIST_US;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen_stun --port P [--host 127.0.0.1] [--sockets 16] "
                    "[--window 16] [--seconds 5] [--warmup-ms 500] [--timeout-ms 200] "
                    "[--fingerprint] [--server-pid PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, nsock = 16, secs_ms = 5000, warm_ms = 500, timeout_ms = 200, server_pid = 0;
    g_window = 16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--fingerprint")) {
            g_fingerprint = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--sockets"))
            nsock = atoi(v);
        else if (!strcmp(a, "--window"))
            g_window = atoi(v);
        else if (!strcmp(a, "--seconds"))
            secs_ms = (int)(atof(v) * 1000);
        else if (!strcmp(a, "--warmup-ms"))
            warm_ms = atoi(v);
        else if (!strcmp(a, "--timeout-ms"))
            timeout_ms = atoi(v);
        else if (!strcmp(a, "--server-pid"))
            server_pid = atoi(v);
        else
            usage();
    }
    if (port <= 0 || port > 65535 || nsock < 1 || nsock > MAX_SOCKETS || g_window < 1 ||
        g_window > MAX_WINDOW || secs_ms < 100 || secs_ms > 600000 || warm_ms < 0 ||
        warm_ms > 60000 || timeout_ms < 1 || timeout_ms > 10000)
        usage();

    struct sockaddr_in srv;
    memset(&srv, 0, sizeof(srv));
    srv.sin_family = AF_INET;
    srv.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &srv.sin_addr) != 1)
        usage();

    int ep = epoll_create1(0);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }
    sock *socks = calloc((size_t)nsock, sizeof(sock));
    if (!socks)
        return 1;
    for (int s = 0; s < nsock; s++) {
        sock *k = &socks[s];
        k->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (k->fd < 0) {
            perror("socket");
            return 1;
        }
        int rb = 1 << 20;
        setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
        if (connect(k->fd, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
            perror("connect");
            return 1;
        }
        struct sockaddr_storage la;
        socklen_t ll = sizeof(la);
        if (getsockname(k->fd, (struct sockaddr *)&la, &ll) < 0 ||
            rdv_stun_addr_from_sockaddr((struct sockaddr *)&la, ll, &k->local) != 0) {
            perror("getsockname");
            return 1;
        }
        k->slots = calloc((size_t)g_window, sizeof(slot));
        k->pending = calloc((size_t)g_window, sizeof(uint32_t));
        if (!k->slots || !k->pending)
            return 1;
        for (int i = 0; i < g_window; i++)
            k->pending[k->n_pending++] = (uint32_t)i;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev) < 0) {
            perror("epoll_ctl");
            return 1;
        }
    }

    rdv_stun_request_opts ropts;
    memset(&ropts, 0, sizeof(ropts));
    ropts.fingerprint = g_fingerprint != 0;

    uint64_t t_start = now_ns();
    uint64_t t0 = t_start + (uint64_t)warm_ms * 1000000ull;
    uint64_t t1 = t0 + (uint64_t)secs_ms * 1000000ull;
    uint64_t tmo = (uint64_t)timeout_ms * 1000000ull;
    uint64_t t_end = t1 + tmo;
    uint64_t next_scan = t_start + tmo / 4;

    uint64_t sent_meas = 0, answered_meas = 0, lost_meas = 0, resp_in_window = 0;
    uint64_t sent_total = 0, resp_total = 0, bad = 0, late = 0, send_fail = 0;

    static uint8_t txbuf[BATCH][128];
    static uint8_t rxbuf[BATCH][1500];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct epoll_event evs[MAX_SOCKETS];
    uint32_t tx_slot[BATCH];

    /* Sends everything pending on socket s (new requests), batch by batch. */
#define FLUSH(S, NOW)                                                                      \
    do {                                                                                   \
        sock *k_ = &socks[(S)];                                                            \
        int sending_ = (NOW) < t1;                                                         \
        if (!sending_) {                                                                   \
            k_->n_pending = 0;                                                             \
            break;                                                                         \
        }                                                                                  \
        while (k_->n_pending > 0) {                                                        \
            int n_ = k_->n_pending < BATCH ? k_->n_pending : BATCH;                        \
            for (int j_ = 0; j_ < n_; j_++) {                                              \
                uint32_t si_ = k_->pending[k_->n_pending - 1 - j_];                        \
                slot *sl_ = &k_->slots[si_];                                               \
                uint8_t tid_[RDV_STUN_TID_BYTES];                                          \
                sl_->seq++;                                                                \
                make_tid(tid_, (S), (int)si_, sl_->seq);                                   \
                int len_ = rdv_stun_build_binding_request(txbuf[j_], sizeof(txbuf[j_]),    \
                                                          tid_, &ropts);                   \
                if (len_ < 0) {                                                            \
                    fprintf(stderr, "build: %s\n", rdv_stun_strerror(len_));               \
                    return 1;                                                              \
                }                                                                          \
                iov[j_].iov_base = txbuf[j_];                                              \
                iov[j_].iov_len = (size_t)len_;                                            \
                memset(&msgs[j_], 0, sizeof(msgs[j_]));                                    \
                msgs[j_].msg_hdr.msg_iov = &iov[j_];                                       \
                msgs[j_].msg_hdr.msg_iovlen = 1;                                           \
                tx_slot[j_] = si_;                                                         \
            }                                                                              \
            int r_ = sendmmsg(k_->fd, msgs, (unsigned)n_, MSG_DONTWAIT);                   \
            if (r_ < 0)                                                                    \
                r_ = 0;                                                                    \
            /* unsent ones are treated as sent and lost (the timeout refills them) */     \
            for (int j_ = 0; j_ < n_; j_++) {                                              \
                slot *sl_ = &k_->slots[tx_slot[j_]];                                       \
                sl_->busy = 1;                                                             \
                sl_->sent_ns = (NOW);                                                      \
                sl_->measured = (NOW) >= t0;                                               \
                if (sl_->measured)                                                         \
                    sent_meas++;                                                           \
                sent_total++;                                                              \
                if (j_ >= r_)                                                              \
                    send_fail++;                                                           \
            }                                                                              \
            k_->n_pending -= n_;                                                           \
        }                                                                                  \
    } while (0)

    uint64_t now = now_ns();
    for (int s = 0; s < nsock; s++)
        FLUSH(s, now);

    /* CPU at the two ends of the measured interval: [0] at t0, [1] at t1 */
    double c_srv[2] = {0, 0}, c_gen[2] = {0, 0}, c_busy[2] = {0, 0};
    uint64_t c_t[2] = {0, 0};
    int c_n = 0;

    /* Bounded by time: t_end is at most ~11 min after start (argument caps). */
    while ((now = now_ns()) < t_end) {
        if (c_n < 2 && now >= (c_n ? t1 : t0)) {
            c_srv[c_n] = bench_proc_cpu_s(server_pid);
            c_gen[c_n] = bench_self_cpu_s();
            c_busy[c_n] = bench_machine_busy_s();
            c_t[c_n++] = now;
        }
        if (now >= next_scan) {
            next_scan = now + tmo / 4;
            for (int s = 0; s < nsock; s++) {
                sock *k = &socks[s];
                for (int i = 0; i < g_window; i++) {
                    slot *sl = &k->slots[i];
                    if (sl->busy && now - sl->sent_ns >= tmo) {
                        sl->busy = 0;
                        if (sl->measured)
                            lost_meas++;
                        k->pending[k->n_pending++] = (uint32_t)i;
                    }
                }
                FLUSH(s, now);
            }
        }
        int wait_ms = (int)((next_scan - now) / 1000000ull) + 1;
        int ne = epoll_wait(ep, evs, nsock, wait_ms);
        if (ne < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return 1;
        }
        for (int e = 0; e < ne; e++) {
            int s = (int)evs[e].data.u32;
            sock *k = &socks[s];
            /* at most 4 batches per socket per wakeup, so all sockets get a turn */
            for (int round = 0; round < 4; round++) {
                for (int j = 0; j < BATCH; j++) {
                    iov[j].iov_base = rxbuf[j];
                    iov[j].iov_len = sizeof(rxbuf[j]);
                    memset(&msgs[j], 0, sizeof(msgs[j]));
                    msgs[j].msg_hdr.msg_iov = &iov[j];
                    msgs[j].msg_hdr.msg_iovlen = 1;
                }
                int r = recvmmsg(k->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (r <= 0)
                    break;
                uint64_t t = now_ns();
                for (int j = 0; j < r; j++) {
                    rdv_stun_msg m;
                    int pl = rdv_stun_parse(rxbuf[j], msgs[j].msg_len, &m);
                    if (pl < 0 || m.cls != RDV_STUN_CLASS_SUCCESS ||
                        m.method != RDV_STUN_METHOD_BINDING || !m.has_xor_mapped ||
                        !rdv_stun_addr_equal(&m.xor_mapped, &k->local)) {
                        bad++;
                        continue;
                    }
                    int ts = (m.tid[0] << 8) | m.tid[1];
                    int ti = (m.tid[2] << 8) | m.tid[3];
                    uint32_t seq = ((uint32_t)m.tid[4] << 24) | ((uint32_t)m.tid[5] << 16) |
                                   ((uint32_t)m.tid[6] << 8) | m.tid[7];
                    if (ts != s || ti >= g_window || memcmp(m.tid + 8, "RDVB", 4) != 0) {
                        bad++;
                        continue;
                    }
                    slot *sl = &k->slots[ti];
                    if (!sl->busy || sl->seq != seq) {
                        late++;
                        continue;
                    }
                    sl->busy = 0;
                    resp_total++;
                    if (sl->measured)
                        answered_meas++;
                    if (t >= t0 && t < t1) {
                        resp_in_window++;
                        lat_add(t - sl->sent_ns);
                    }
                    k->pending[k->n_pending++] = (uint32_t)ti;
                }
                FLUSH(s, t);
                if (r < BATCH)
                    break;
            }
        }
    }
    /* Whatever is still outstanding from the measured interval is lost. */
    for (int s = 0; s < nsock; s++)
        for (int i = 0; i < g_window; i++)
            if (socks[s].slots[i].busy && socks[s].slots[i].measured)
                lost_meas++;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double secs = secs_ms / 1000.0;
    double rps = (double)resp_in_window / secs;
    double loss = sent_meas ? 100.0 * (double)lost_meas / (double)sent_meas : 0;
    double cs = c_n == 2 ? (double)(c_t[1] - c_t[0]) / 1e9 : 0;
    double w_srv = cs > 0 && server_pid > 0 ? (c_srv[1] - c_srv[0]) / cs : -1;
    double w_gen = cs > 0 ? (c_gen[1] - c_gen[0]) / cs : -1;
    double w_oth = cs > 0 ? (c_busy[1] - c_busy[0]) / cs - w_gen - (w_srv > 0 ? w_srv : 0) : -1;
    fprintf(stderr,
            "loadgen_stun: %s:%d, %d sockets x window %d, %.1f s: %.0f responses/s, "
            "sent %llu answered %llu lost %llu (%.3f%%), p50 %.0f us p99 %.0f us, "
            "bad %llu late %llu send-fail %llu, cpu %.2f s\n",
            host, port, nsock, g_window, secs, rps, (unsigned long long)sent_meas,
            (unsigned long long)answered_meas, (unsigned long long)lost_meas, loss,
            lat_pct(0.50), lat_pct(0.99), (unsigned long long)bad,
            (unsigned long long)late, (unsigned long long)send_fail, cpu);
    printf("RESULT rps=%.0f sent=%llu answered=%llu lost=%llu loss_pct=%.3f p50_us=%.0f "
           "p99_us=%.0f p999_us=%.0f max_us=%.0f bad=%llu late=%llu send_fail=%llu "
           "gen_cpu_s=%.2f secs=%.1f sockets=%d window=%d total_sent=%llu total_resp=%llu "
           "win_server_cores=%.2f win_gen_cores=%.2f win_other_cores=%.2f srv_us_per_resp=%.2f\n",
           rps, (unsigned long long)sent_meas, (unsigned long long)answered_meas,
           (unsigned long long)lost_meas, loss, lat_pct(0.50), lat_pct(0.99), lat_pct(0.999),
           (double)g_max_ns / 1000.0, (unsigned long long)bad, (unsigned long long)late,
           (unsigned long long)send_fail, cpu, secs, nsock, g_window,
           (unsigned long long)sent_total, (unsigned long long)resp_total, w_srv, w_gen, w_oth,
           w_srv >= 0 && resp_in_window ? w_srv * cs * 1e6 / (double)resp_in_window : -1);
    for (int s = 0; s < nsock; s++)
        close(socks[s].fd);
    close(ep);
    return 0;
}
