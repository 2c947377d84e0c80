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
 * all pairs (--tick-us ticks, default 1 ms, round robin; 1e6 / R sends
 * one message per tick), the second reads whole B-byte
 * messages and takes the latency. The first W messages are not measured.
 * Prints, like loadgen_signal, one line on stdout:
 *   RESULT status=ok|failed proto=tcp pairs=.. messages=.. msg_bytes=.. elapsed_s=..
 *          msgs_per_s=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=..
 * Bounded: --timeout (default 120 s) ends the run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
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

static int load(int port, int pairs, long rate, long tick_us, long messages, long warmup, size_t size,
                int timeout_s)
{
    static int tx[MAX_CONNS / 2], rx[MAX_CONNS / 2];
    static size_t have[MAX_CONNS / 2];
    static uint8_t inbuf[MAX_CONNS / 2][8];
    static uint8_t msg[MAX_SIZE], sink[MAX_SIZE];
    static struct pollfd pf[MAX_CONNS / 2];
    for (int i = 0; i < pairs; i++) {
        tx[i] = dial(port); /* the server pairs them in accept order */
        usleep(2000);
        rx[i] = dial(port);
        usleep(2000);
        pf[i] = (struct pollfd){.fd = rx[i], .events = POLLIN};
    }
    memset(msg, 'x', size);
    bench_lat lat;
    bench_lat_init(&lat, (size_t)messages);
    long sent = 0, received = 0, errors = 0;
    int next = 0;
    double tokens = 0;
    int64_t t0 = bench_mono_ns(), last = t0, deadline = t0 + (int64_t)timeout_s * 1000000000;
    int64_t m0 = 0;
    long measured = 0;
    while (received < messages && bench_mono_ns() < deadline) {
        int64_t now = bench_mono_ns();
        tokens += (double)(now - last) * (double)rate / 1e9;
        if (tokens > 10)
            tokens = 10; /* no bursts after a stall */
        last = now;
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
        struct timespec tick = {tick_us / 1000000, (tick_us % 1000000) * 1000};
        int pr = ppoll(pf, (nfds_t)pairs, &tick, NULL);
        if (pr <= 0)
            continue;
        for (int i = 0; i < pairs; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            /* the rest of one message (its first 8 bytes: the send time) */
            ssize_t r = read(rx[i], sink, size - have[i]);
            if (r <= 0) {
                errors++;
                pf[i].fd = -1;
                continue;
            }
            for (size_t k = 0; have[i] + k < 8 && k < (size_t)r; k++)
                inbuf[i][have[i] + k] = sink[k];
            have[i] += (size_t)r;
            if (have[i] < size)
                continue;
            have[i] = 0;
            int64_t ts;
            memcpy(&ts, inbuf[i], sizeof ts);
            received++;
            if (received == warmup)
                m0 = bench_mono_ns();
            if (received > warmup) {
                bench_lat_add(&lat, bench_mono_ns() - ts);
                measured++;
            }
        }
    }
    double secs = (double)(bench_mono_ns() - (m0 ? m0 : t0)) / 1e9;
    double p50, p99, p999, max;
    bench_lat_summary(&lat, &p50, &p99, &p999, &max);
    long bad = errors + (messages - received);
    printf("RESULT status=%s proto=tcp pairs=%d messages=%ld msg_bytes=%zu elapsed_s=%.3f "
           "msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%ld\n",
           bad ? "failed" : "ok", pairs, measured, size, secs,
           secs > 0 ? (double)measured / secs : 0, p50, p99, p999, max, bad);
    bench_lat_free(&lat);
    return errors || received < messages ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcp_pair serve [--port N]\n"
                    "       tcp_pair load [--port N] [--pairs P] [--rate R] [--messages M]\n"
                    "                     [--warmup W] [--size B] [--timeout S] [--tick-us T]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    int port = 18790, pairs = 100, timeout_s = 120;
    long rate = 5000, messages = 100000, warmup = -1, tick_us = 1000;
    size_t size = 535;
    static const struct option o[] = {{"port", 1, 0, 'p'},    {"pairs", 1, 0, 'n'},
                                      {"rate", 1, 0, 'r'},    {"messages", 1, 0, 'm'},
                                      {"warmup", 1, 0, 'w'},  {"size", 1, 0, 's'},
                                      {"timeout", 1, 0, 't'}, {"tick-us", 1, 0, 'k'},
                                      {0, 0, 0, 0}};
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
    return load(port, pairs, rate, tick_us, messages, warmup, size, timeout_s);
}
