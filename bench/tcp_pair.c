/* tcp_pair.c - the raw TCP baseline of the paced signaling figure (issue
 * 15, goal 3: "the server adds <= 50 us at p50 over a raw TCP echo through
 * the same loopback").
 *
 *   tcp_pair serve [--port N]
 *   tcp_pair load  [--port N] [--pairs P] [--rate R] [--messages M]
 *                  [--warmup W] [--size B] [--timeout S] [--tick-us T]
 *
 * serve: a single-threaded poll() forwarder, the least a rendezvous can
 * do: connections are paired in accept order (1st with 2nd, 3rd with 4th,
 * ...) and every byte read on one is written to the other. No framing, no
 * parsing, no allocation per message.
 *
 * load: P pairs; the first connection of each pair sends B-byte messages
 * (the send time in the first 8 bytes) paced to R messages/s in total over
 * all pairs, round robin, the second reads whole B-byte messages and takes
 * the latency. The first W messages are not measured. The pacing is
 * loadgen_signal's (bench_tick): one thread sleeps in epoll_wait on the
 * receiving sockets and a timerfd on an absolute CLOCK_MONOTONIC schedule
 * of --tick-us periods (default 1 ms; 1e6 / R sends one message per tick);
 * each expiry adds R x T tokens per elapsed period and sends one message
 * per whole token, at most 10 after a stall. --server-pid adds the
 * forwarder's CPU. Prints, like loadgen_signal, one line on stdout:
 *   RESULT status=ok|failed proto=tcp pairs=.. messages=.. msg_bytes=.. elapsed_s=..
 *          msgs_per_s=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=..
 *          win_loadgen_cores=.. win_server_cores=.. win_other_cores=..
 *          srv_us_per_msg=..
 * (win_*: CPU seconds per second in the measured window, this process, the
 * --server-pid (-1 without) and everything else, from /proc/stat.)
 * Bounded: --timeout (default 120 s) ends the run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define MAX_CONNS 4096
#define MAX_SIZE 65536

/* Writes all of buf to fd (blocking socket); -1 on error. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int serve(int port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0) {
        perror("tcp_pair serve: listen");
        return 1;
    }
    fprintf(stderr, "tcp_pair: forwarding on 127.0.0.1:%d\n", port);
    static struct pollfd pf[MAX_CONNS + 1];
    static int peer[MAX_CONNS + 1];
    static uint8_t buf[MAX_SIZE];
    int n = 1, unpaired = -1;
    pf[0] = (struct pollfd){.fd = ls, .events = POLLIN};
    for (;;) {
        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("poll");
            return 1;
        }
        for (int i = 1; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)) || pf[i].fd < 0)
                continue;
            ssize_t r = read(pf[i].fd, buf, sizeof buf);
            int p = peer[i];
            if (r <= 0 || p <= 0 || pf[p].fd < 0 || write_all(pf[p].fd, buf, (size_t)r) != 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                if (p > 0 && pf[p].fd >= 0) {
                    close(pf[p].fd);
                    pf[p].fd = -1;
                }
            }
        }
        if ((pf[0].revents & POLLIN) && n <= MAX_CONNS) {
            int fd = accept(ls, NULL, NULL);
            if (fd >= 0) {
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                pf[n] = (struct pollfd){.fd = fd, .events = POLLIN};
                peer[n] = 0;
                if (unpaired > 0) {
                    peer[n] = unpaired;
                    peer[unpaired] = n;
                    unpaired = -1;
                } else
                    unpaired = n;
                n++;
            }
        }
    }
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("tcp_pair load: connect");
        exit(1);
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The rest of one B-byte message on rx connection i (its first 8 bytes:
 * the send time); 1 when a whole message arrived (its send time in *ts),
 * 0 when not yet, -1 on error or end of stream. */
static int read_msg(int fd, size_t size, size_t *have, uint8_t head[8], int64_t *ts)
{
    static uint8_t sink[MAX_SIZE];
    ssize_t r = read(fd, sink, size - *have);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (r <= 0)
        return -1;
    for (size_t k = 0; *have + k < 8 && k < (size_t)r; k++)
        head[*have + k] = sink[k];
    *have += (size_t)r;
    if (*have < size)
        return 0;
    *have = 0;
    memcpy(ts, head, sizeof *ts);
    return 1;
}

#define TICK_KEY UINT64_MAX /* epoll data of the timerfd (the others: pair index) */

static int load(int port, int pairs, long rate, long tick_us, long messages, long warmup, size_t size,
                int timeout_s, int server_pid)
{
    static int tx[MAX_CONNS / 2], rx[MAX_CONNS / 2];
    static size_t have[MAX_CONNS / 2];
    static uint8_t inbuf[MAX_CONNS / 2][8];
    static uint8_t msg[MAX_SIZE];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("tcp_pair load: epoll_create1");
        return 1;
    }
    for (int i = 0; i < pairs; i++) {
        tx[i] = dial(port); /* the server pairs them in accept order */
        usleep(2000);
        rx[i] = dial(port);
        usleep(2000);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, rx[i], &ev) != 0) {
            perror("tcp_pair load: epoll_ctl");
            return 1;
        }
    }
    /* the tick: the same absolute timerfd as loadgen_signal's (bench_tick) */
    int tfd = bench_timerfd_open(tick_us);
    struct epoll_event tev = {.events = EPOLLIN, .data.u64 = TICK_KEY};
    if (tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) != 0) {
        perror("tcp_pair load: timerfd");
        return 1;
    }
    memset(msg, 'x', size);
    bench_lat lat;
    bench_lat_init(&lat, (size_t)messages);
    long sent = 0, received = 0, errors = 0;
    int next = 0, open_rx = pairs;
    double tokens = 0, per_tick = (double)rate * (double)tick_us / 1e6;
    int64_t t0 = bench_mono_ns(), deadline = t0 + (int64_t)timeout_s * 1000000000;
    int64_t m0 = 0;
    double cpu_t0 = bench_self_cpu_s(), cpu_m0 = 0, srv_m0 = 0, busy_m0 = 0;
    long measured = 0;
    while (received < messages && open_rx > 0 && bench_mono_ns() < deadline) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 100); /* the tick wakes it; 100 ms: the deadline */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("tcp_pair load: epoll_wait");
            errors++;
            break;
        }
        for (int e = 0; e < n; e++) {
            if (evs[e].data.u64 == TICK_KEY) {
                /* R x T tokens per elapsed period, one message per token */
                tokens += per_tick * (double)bench_timerfd_read(tfd);
                if (tokens > 10)
                    tokens = 10; /* no bursts after a stall */
                while (tokens >= 1 && sent < messages) {
                    int64_t ts = bench_mono_ns();
                    memcpy(msg, &ts, sizeof ts);
                    if (write_all(tx[next], msg, size) != 0) {
                        errors++;
                        break;
                    }
                    next = (next + 1) % pairs;
                    sent++;
                    tokens -= 1;
                }
                continue;
            }
            int i = (int)evs[e].data.u64;
            int64_t ts;
            int r = read_msg(rx[i], size, &have[i], inbuf[i], &ts);
            if (r < 0) {
                errors++;
                (void)epoll_ctl(ep, EPOLL_CTL_DEL, rx[i], NULL);
                open_rx--;
                continue;
            }
            if (r == 0)
                continue;
            received++;
            if (received == warmup) {
                m0 = bench_mono_ns();
                cpu_m0 = bench_self_cpu_s();
                srv_m0 = bench_proc_cpu_s(server_pid);
                busy_m0 = bench_machine_busy_s();
            }
            if (received > warmup) {
                bench_lat_add(&lat, bench_mono_ns() - ts);
                measured++;
            }
        }
    }
    int64_t t1 = bench_mono_ns();
    double secs = (double)(t1 - (m0 ? m0 : t0)) / 1e9;
    /* CPU in the measured window (from the end of the warm-up), as
     * loadgen_signal's win_* figures */
    double lg = bench_self_cpu_s() - (m0 ? cpu_m0 : cpu_t0);
    double srv = server_pid > 0 && m0 ? bench_proc_cpu_s(server_pid) - srv_m0 : -1;
    double busy = m0 ? bench_machine_busy_s() - busy_m0 : -1;
    double w_lg = secs > 0 ? lg / secs : 0;
    double w_srv = secs > 0 && srv >= 0 ? srv / secs : -1;
    double w_other = secs > 0 && busy >= 0 ? (busy - lg - (srv > 0 ? srv : 0)) / secs : -1;
    double us_msg = measured > 0 && srv >= 0 ? srv * 1e6 / (double)measured : -1;
    double p50, p99, p999, max;
    bench_lat_summary(&lat, &p50, &p99, &p999, &max);
    long bad = errors + (messages - received);
    printf("RESULT status=%s proto=tcp pairs=%d messages=%ld msg_bytes=%zu elapsed_s=%.3f "
           "msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%ld "
           "win_loadgen_cores=%.2f win_server_cores=%.2f win_other_cores=%.2f "
           "srv_us_per_msg=%.2f\n",
           bad ? "failed" : "ok", pairs, measured, size, secs,
           secs > 0 ? (double)measured / secs : 0, p50, p99, p999, max, bad, w_lg, w_srv,
           w_other < 0 && busy >= 0 ? 0 : w_other, us_msg);
    bench_lat_free(&lat);
    close(tfd);
    close(ep);
    for (int i = 0; i < pairs; i++) {
        close(tx[i]);
        close(rx[i]);
    }
    return errors || received < messages ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcp_pair serve [--port N]\n"
                    "       tcp_pair load [--port N] [--pairs P] [--rate R] [--messages M]\n"
                    "                     [--warmup W] [--size B] [--timeout S] [--tick-us T]\n"
                    "                     [--server-pid PID]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    int port = 18790, pairs = 100, timeout_s = 120, server_pid = 0;
    long rate = 5000, messages = 100000, warmup = -1, tick_us = 1000;
    size_t size = 535;
    static const struct option o[] = {{"port", 1, 0, 'p'},    {"pairs", 1, 0, 'n'},
                                      {"rate", 1, 0, 'r'},    {"messages", 1, 0, 'm'},
                                      {"warmup", 1, 0, 'w'},  {"size", 1, 0, 's'},
                                      {"timeout", 1, 0, 't'}, {"tick-us", 1, 0, 'k'},
                                      {"server-pid", 1, 0, 'S'}, {0, 0, 0, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", o, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'n': pairs = atoi(optarg); break;
        case 'r': rate = atol(optarg); break;
        case 'm': messages = atol(optarg); break;
        case 'w': warmup = atol(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 't': timeout_s = atoi(optarg); break;
        case 'k': tick_us = atol(optarg); break;
        case 'S': server_pid = atoi(optarg); break;
        default: usage(); return 2;
        }
    }
    if (!strcmp(mode, "serve"))
        return serve(port);
    if (strcmp(mode, "load") != 0 || pairs < 1 || pairs > MAX_CONNS / 2 || rate < 1 ||
        tick_us < 10 || tick_us > 1000000 ||
        messages < 1 || size < 8 || size > MAX_SIZE) {
        usage();
        return 2;
    }
    if (warmup < 0)
        warmup = messages / 20;
    return load(port, pairs, rate, tick_us, messages, warmup, size, timeout_s, server_pid);
}
