/* wanem.c - the NAT lab's WAN emulator: a two-port Ethernet bridge in user
 * space that delays, jitters and drops frames, for kernels without
 * sch_netem (tests/nat/lab/natlab.py puts one on every site's link).
 *
 *   wanem --a IF --b IF [--delay-ms D] [--jitter-ms J] [--loss PCT]
 *         [--ab-delay-ms D] [--ba-delay-ms D] [--ab-jitter-ms J] [--ba-jitter-ms J]
 *         [--ab-loss PCT] [--ba-loss PCT] [--reorder] [--seed N] [--no-rt]
 *
 * Every frame that arrives on interface A is sent out of B (direction
 * "ab") and every frame on B out of A ("ba"), each through its direction's
 * model: dropped with probability PCT/100 (independent per frame), else
 * held for D ms plus a uniform offset in [-J, +J] ms (at least 0). Frames
 * keep their order unless --reorder (then a frame whose offset is shorter
 * overtakes an earlier one, as on a path with real jitter). The --ab-* /
 * --ba-* options override --delay-ms / --jitter-ms / --loss for one
 * direction. Rate limits are not ours: a tbf qdisc on A or B (tc) shapes
 * what this program sends out of that interface. Link-local control
 * frames - ARP and IPv6 neighbour discovery - pass at once, never lost:
 * on a real access link they stay on the local segment, and a lost ARP
 * request would cost a whole second (the kernel's retransmit time), a
 * delay no WAN adds.
 *
 * Frames are read and written with AF_PACKET sockets bound to A and B
 * (promiscuous, outgoing frames ignored) with PACKET_VNET_HDR, so
 * checksum-offloaded and GSO frames pass through unchanged (a GSO frame is
 * one frame for the loss model). Timing: a timerfd armed at the earliest
 * release (ns resolution, CLOCK_MONOTONIC); the process asks for
 * SCHED_FIFO (unless --no-rt; ignored when refused) so the release is not
 * late by a busy machine's scheduling.
 *
 * Output (stdout, JSON lines): {"event":"ready",...} once both sockets are
 * bound; {"event":"stats",...} with per-direction counters on SIGUSR1 and
 * at exit (SIGTERM / SIGINT, or an interface gone). Exit 0 after a signal,
 * 1 on an I/O error, 2 on bad arguments. Bounded: at most MAX_QUEUED
 * frames and MAX_QUEUED_BYTES per direction are held (more: tail drop,
 * counted as "overflow").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX (65536 + (int)sizeof(struct virtio_net_hdr) + 64) /* GSO frames */
#define MAX_QUEUED 8192                  /* frames held per direction */
#define MAX_QUEUED_BYTES (32u << 20)     /* bytes held per direction */
#define RX_BUDGET 256                    /* frames read per socket per wakeup */
#define SOCK_BUF_BYTES (4 << 20)         /* SO_RCVBUF / SO_SNDBUF asked */
#define RT_PRIORITY 10                   /* SCHED_FIFO priority (low) */
#define MAX_DELAY_MS 10000
#define NS_PER_MS 1000000LL
#define LOSS_SCALE 1000000u              /* loss in millionths */
#define EPOLL_EVENTS 8
#define VNET_HDR_LEN sizeof(struct virtio_net_hdr)
#define ETH_HDR_LEN 14
#define ETHERTYPE_ARP_ 0x0806
#define ETHERTYPE_IPV6_ 0x86dd
#define IPV6_HDR_LEN 40
#define IPPROTO_ICMPV6_ 58
#define ND_TYPE_FIRST 133                /* router solicitation ... */
#define ND_TYPE_LAST 137                 /* ... redirect (RFC 4861) */

/* One held frame. */
struct held {
    int64_t release_ns;
    uint64_t seq;                        /* ties: arrival order */
    size_t len;
    uint8_t *buf;                        /* vnet header + frame, malloc'd */
};

/* The model and state of one direction. */
struct dir {
    const char *name;                    /* "ab" / "ba" */
    int in_fd, out_fd;
    int64_t delay_ns, jitter_ns;
    uint32_t loss_ppm;                   /* drop probability, millionths */
    bool reorder;
    struct held *heap;                   /* min-heap on (release_ns, seq) */
    size_t n;
    size_t bytes;
    int64_t last_release_ns;             /* in-order: never earlier */
    uint64_t seq;
    uint64_t rng;                        /* xorshift64* state */
    /* counters */
    uint64_t rx, tx, lost, overflow, tx_err, control;
    int64_t late_max_ns;                 /* worst release later than asked */
    int64_t late_sum_ns;
};

struct wanem {
    const char *if_a, *if_b;
    int fd_a, fd_b, tfd, sfd, ep;
    struct dir d[2];                     /* [0] ab, [1] ba */
    bool rt;
    uint64_t seed;
    bool have_seed;
};

/* ---- small helpers ---------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* xorshift64*: a fast PRNG; the state must not be 0. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/* Uniform in [0, n) (n > 0), by rejection: no modulo bias. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = rng_next(s);
    while (v >= lim);
    return v % n;
}

static bool held_before(const struct held *x, const struct held *y)
{
    return x->release_ns < y->release_ns || (x->release_ns == y->release_ns && x->seq < y->seq);
}

/* Pushes h onto d's heap (room checked by the caller). */
static void heap_push(struct dir *d, struct held h)
{
    size_t i = d->n++;
    d->heap[i] = h;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!held_before(&d->heap[i], &d->heap[p]))
            break;
        struct held t = d->heap[p];
        d->heap[p] = d->heap[i];
        d->heap[i] = t;
        i = p;
    }
}

/* Removes and returns the earliest frame (d->n > 0). */
static struct held heap_pop(struct dir *d)
{
    struct held top = d->heap[0];
    d->heap[0] = d->heap[--d->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->n && held_before(&d->heap[l], &d->heap[m]))
            m = l;
        if (r < d->n && held_before(&d->heap[r], &d->heap[m]))
            m = r;
        if (m == i)
            break;
        struct held t = d->heap[m];
        d->heap[m] = d->heap[i];
        d->heap[i] = t;
        i = m;
    }
    return top;
}

/* ---- sockets ------------------------------------------------------------------ */

/* An AF_PACKET socket bound to interface `ifname`: every frame, promiscuous,
 * our own transmissions not looped back, virtio-net headers on. Returns the
 * fd or -1 (message on stderr). */
static int open_port(const char *ifname)
{
    unsigned idx = if_nametoindex(ifname);
    if (idx == 0) {
        fprintf(stderr, "wanem: no interface %s: %s\n", ifname, strerror(errno));
        return -1;
    }
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) {
        fprintf(stderr, "wanem: socket(AF_PACKET): %s\n", strerror(errno));
        return -1;
    }
    int one = 1, buf = SOCK_BUF_BYTES;
    /* virtio-net headers: checksum-offloaded and GSO frames keep their
     * metadata from one port to the other. */
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) != 0) {
        fprintf(stderr, "wanem: PACKET_VNET_HDR on %s: %s\n", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)idx;
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
        fprintf(stderr, "wanem: bind %s: %s\n", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    struct packet_mreq mr;
    memset(&mr, 0, sizeof(mr));
    mr.mr_ifindex = (int)idx;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0) {
        fprintf(stderr, "wanem: promiscuous %s: %s\n", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the model ------------------------------------------------------------------ */

/* Sends one held frame out of its direction's port and frees it. */
static void release(struct dir *d, struct held *h, int64_t now)
{
    if (send(d->out_fd, h->buf, h->len, MSG_DONTWAIT) < 0)
        d->tx_err++;
    else
        d->tx++;
    int64_t late = now - h->release_ns;
    if (late > 0) {
        d->late_sum_ns += late;
        if (late > d->late_max_ns)
            d->late_max_ns = late;
    }
    d->bytes -= h->len;
    free(h->buf);
    h->buf = NULL;
}

/* True for ARP and IPv6 neighbour discovery (buf: vnet header + frame). */
static bool is_link_control(const uint8_t *buf, size_t len)
{
    const uint8_t *f = buf + VNET_HDR_LEN;
    size_t fl = len - VNET_HDR_LEN;
    if (fl < ETH_HDR_LEN)
        return false;
    unsigned type = (unsigned)f[12] << 8 | f[13];
    if (type == ETHERTYPE_ARP_)
        return true;
    if (type != ETHERTYPE_IPV6_ || fl < ETH_HDR_LEN + IPV6_HDR_LEN + 1)
        return false;
    const uint8_t *ip6 = f + ETH_HDR_LEN;
    return ip6[6] == IPPROTO_ICMPV6_ && ip6[IPV6_HDR_LEN] >= ND_TYPE_FIRST &&
           ip6[IPV6_HDR_LEN] <= ND_TYPE_LAST;
}

/* One frame read from d's input: lost, or held until its release time
 * (link-local control frames: sent at once). */
static void admit(struct dir *d, const uint8_t *frame, size_t len, int64_t now)
{
    d->rx++;
    if (is_link_control(frame, len)) {
        d->control++;
        if (send(d->out_fd, frame, len, MSG_DONTWAIT) < 0)
            d->tx_err++;
        return;
    }
    if (d->loss_ppm && rng_below(&d->rng, LOSS_SCALE) < d->loss_ppm) {
        d->lost++;
        return;
    }
    int64_t delay = d->delay_ns;
    if (d->jitter_ns > 0)
        delay += (int64_t)rng_below(&d->rng, (uint64_t)(2 * d->jitter_ns + 1)) - d->jitter_ns;
    if (delay < 0)
        delay = 0;
    int64_t at = now + delay;
    if (!d->reorder && at < d->last_release_ns)
        at = d->last_release_ns;
    if (d->n >= MAX_QUEUED || d->bytes + len > MAX_QUEUED_BYTES) {
        d->overflow++;
        return;
    }
    struct held h = {.release_ns = at, .seq = d->seq++, .len = len, .buf = malloc(len)};
    if (!h.buf) {
        d->overflow++;
        return;
    }
    memcpy(h.buf, frame, len);
    d->last_release_ns = at;
    d->bytes += len;
    if (at <= now && d->n == 0) {
        release(d, &h, now); /* no delay and nothing ahead: at once */
        return;
    }
    heap_push(d, h);
}

/* Reads what waits on d's input (bounded). Returns -1 when the interface
 * is gone (or another hard error), else 0. */
static int read_port(struct dir *d, uint8_t *buf)
{
    for (int i = 0; i < RX_BUDGET; i++) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(d->in_fd, buf, FRAME_MAX, MSG_DONTWAIT, (struct sockaddr *)&from,
                             &fl);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            if (errno == ENETDOWN)
                return 0; /* link down for a moment: keep going */
            fprintf(stderr, "wanem: recv (%s): %s\n", d->name, strerror(errno));
            return -1;
        }
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue; /* kernels without PACKET_IGNORE_OUTGOING */
        if ((size_t)n <= VNET_HDR_LEN)
            continue;
        admit(d, buf, (size_t)n, now_ns());
    }
    return 0;
}

/* Sends every held frame whose time has come (both directions) and arms
 * the timer for the next one. */
static void service(struct wanem *w)
{
    int64_t now = now_ns();
    int64_t next = INT64_MAX;
    for (int k = 0; k < 2; k++) {
        struct dir *d = &w->d[k];
        while (d->n > 0 && d->heap[0].release_ns <= now) {
            struct held h = heap_pop(d);
            release(d, &h, now);
        }
        if (d->n > 0 && d->heap[0].release_ns < next)
            next = d->heap[0].release_ns;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (next != INT64_MAX) {
        its.it_value.tv_sec = next / 1000000000LL;
        its.it_value.tv_nsec = next % 1000000000LL;
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1;
    }
    (void)timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void print_stats(const struct wanem *w, const char *why)
{
    char part[2][512];
    for (int k = 0; k < 2; k++) {
        const struct dir *d = &w->d[k];
        snprintf(part[k], sizeof(part[k]),
                 "\"%s\":{\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"lost\":%" PRIu64
                 ",\"overflow\":%" PRIu64 ",\"tx_err\":%" PRIu64 ",\"control\":%" PRIu64
                 ",\"held\":%zu"
                 ",\"late_max_us\":%" PRId64 ",\"late_avg_us\":%" PRId64 "}",
                 d->name, d->rx, d->tx, d->lost, d->overflow, d->tx_err, d->control, d->n,
                 d->late_max_ns / 1000,
                 d->tx ? d->late_sum_ns / (int64_t)d->tx / 1000 : (int64_t)0);
    }
    printf("{\"event\":\"stats\",\"why\":\"%s\",%s,%s}\n", why, part[0], part[1]);
    fflush(stdout);
}

/* ---- arguments -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wanem --a IF --b IF [--delay-ms D] [--jitter-ms J] [--loss PCT]\n"
            "             [--ab-delay-ms D] [--ba-delay-ms D] [--ab-jitter-ms J]\n"
            "             [--ba-jitter-ms J] [--ab-loss PCT] [--ba-loss PCT]\n"
            "             [--reorder] [--seed N] [--no-rt]\n"
            "Bridges interfaces A and B; frames A->B (ab) and B->A (ba) are dropped\n"
            "with probability PCT %% and held D +- J ms (milliseconds may have\n"
            "decimals; D, J <= %d, PCT in 0..100).\n",
            MAX_DELAY_MS);
}

/* Parses a decimal number in [lo, hi] into *out. Returns 0 or -1. */
static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct wanem *w)
{
    double delay = 0, jitter = 0, loss = 0;
    double dd[2] = {-1, -1}, jj[2] = {-1, -1}, ll[2] = {-1, -1};
    bool reorder = false;
    w->rt = true;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, "--reorder") == 0) {
            reorder = true;
            continue;
        }
        if (strcmp(k, "--no-rt") == 0) {
            w->rt = false;
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        double *num = NULL, hi = MAX_DELAY_MS;
        if (strcmp(k, "--a") == 0)
            w->if_a = v;
        else if (strcmp(k, "--b") == 0)
            w->if_b = v;
        else if (strcmp(k, "--delay-ms") == 0)
            num = &delay;
        else if (strcmp(k, "--jitter-ms") == 0)
            num = &jitter;
        else if (strcmp(k, "--loss") == 0)
            num = &loss, hi = 100;
        else if (strcmp(k, "--ab-delay-ms") == 0)
            num = &dd[0];
        else if (strcmp(k, "--ba-delay-ms") == 0)
            num = &dd[1];
        else if (strcmp(k, "--ab-jitter-ms") == 0)
            num = &jj[0];
        else if (strcmp(k, "--ba-jitter-ms") == 0)
            num = &jj[1];
        else if (strcmp(k, "--ab-loss") == 0)
            num = &ll[0], hi = 100;
        else if (strcmp(k, "--ba-loss") == 0)
            num = &ll[1], hi = 100;
        else if (strcmp(k, "--seed") == 0) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end)
                return -1;
            w->seed = (uint64_t)s;
            w->have_seed = true;
        } else
            return -1;
        if (num && parse_num(v, 0, hi, num) != 0)
            return -1;
    }
    if (!w->if_a || !w->if_b || strcmp(w->if_a, w->if_b) == 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        struct dir *d = &w->d[k];
        d->name = k ? "ba" : "ab";
        d->delay_ns = (int64_t)((dd[k] >= 0 ? dd[k] : delay) * NS_PER_MS);
        d->jitter_ns = (int64_t)((jj[k] >= 0 ? jj[k] : jitter) * NS_PER_MS);
        d->loss_ppm = (uint32_t)((ll[k] >= 0 ? ll[k] : loss) / 100.0 * LOSS_SCALE + 0.5);
        d->reorder = reorder;
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static void close_all(struct wanem *w)
{
    for (int k = 0; k < 2; k++) {
        struct dir *d = &w->d[k];
        while (d->n > 0) {
            struct held h = heap_pop(d);
            free(h.buf);
        }
        free(d->heap);
        d->heap = NULL;
    }
    int fds[] = {w->fd_a, w->fd_b, w->tfd, w->sfd, w->ep};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* The event loop: until a signal ends it (0) or a port fails (1). */
static int run(struct wanem *w, uint8_t *buf)
{
    for (;;) {
        struct epoll_event ev[EPOLL_EVENTS];
        int n = epoll_wait(w->ep, ev, EPOLL_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "wanem: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == w->sfd) {
                struct signalfd_siginfo si;
                if (read(w->sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
                    continue;
                if (si.ssi_signo == SIGUSR1) {
                    print_stats(w, "SIGUSR1");
                    continue;
                }
                print_stats(w, "signal");
                return 0;
            }
            if (fd == w->tfd) {
                uint64_t exp;
                (void)!read(w->tfd, &exp, sizeof(exp));
                continue; /* service() below */
            }
            struct dir *d = fd == w->fd_a ? &w->d[0] : &w->d[1];
            if (read_port(d, buf) != 0) {
                print_stats(w, "port error");
                return 1;
            }
        }
        service(w);
    }
}

int main(int argc, char **argv)
{
    struct wanem w;
    memset(&w, 0, sizeof(w));
    w.fd_a = w.fd_b = w.tfd = w.sfd = w.ep = -1;
    if (parse_args(argc, argv, &w) != 0) {
        usage(stderr);
        return 2;
    }
    uint64_t seed = w.seed;
    if (!w.have_seed && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)now_ns() ^ (uint64_t)getpid();
    for (int k = 0; k < 2; k++) {
        w.d[k].rng = (seed + (uint64_t)k * UINT64_C(0x9E3779B97F4A7C15)) | 1u;
        w.d[k].heap = calloc(MAX_QUEUED, sizeof(struct held));
        if (!w.d[k].heap) {
            fprintf(stderr, "wanem: out of memory\n");
            close_all(&w);
            return 1;
        }
    }
    uint8_t *buf = malloc(FRAME_MAX);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    if (!buf || sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        fprintf(stderr, "wanem: setup failed\n");
        free(buf);
        close_all(&w);
        return 1;
    }
    w.fd_a = open_port(w.if_a);
    w.fd_b = w.fd_a >= 0 ? open_port(w.if_b) : -1;
    w.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    w.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    int fds[] = {w.fd_a, w.fd_b, w.tfd, w.sfd};
    bool ok = w.fd_a >= 0 && w.fd_b >= 0 && w.tfd >= 0 && w.sfd >= 0 && w.ep >= 0;
    for (size_t i = 0; ok && i < sizeof(fds) / sizeof(fds[0]); i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        ok = epoll_ctl(w.ep, EPOLL_CTL_ADD, fds[i], &ev) == 0;
    }
    if (!ok) {
        fprintf(stderr, "wanem: setup failed (%s)\n", strerror(errno));
        free(buf);
        close_all(&w);
        return 1;
    }
    w.d[0].in_fd = w.fd_a;
    w.d[0].out_fd = w.fd_b;
    w.d[1].in_fd = w.fd_b;
    w.d[1].out_fd = w.fd_a;
    int rt = 0;
    if (w.rt) {
        struct sched_param sp = {.sched_priority = RT_PRIORITY};
        rt = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
    }
    printf("{\"event\":\"ready\",\"a\":\"%.32s\",\"b\":\"%.32s\",\"rt\":%d,"
           "\"ab\":{\"delay_us\":%" PRId64 ",\"jitter_us\":%" PRId64 ",\"loss_ppm\":%u},"
           "\"ba\":{\"delay_us\":%" PRId64 ",\"jitter_us\":%" PRId64 ",\"loss_ppm\":%u},"
           "\"reorder\":%d}\n",
           w.if_a, w.if_b, rt, w.d[0].delay_ns / 1000, w.d[0].jitter_ns / 1000,
           w.d[0].loss_ppm, w.d[1].delay_ns / 1000, w.d[1].jitter_ns / 1000, w.d[1].loss_ppm,
           w.d[0].reorder);
    fflush(stdout);
    int rc = run(&w, buf);
    free(buf);
    close_all(&w);
    return rc;
}
