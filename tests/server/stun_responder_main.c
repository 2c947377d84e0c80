/* stun_responder_main.c - runs only rendezvousd's STUN responder
 * (rendezvous/stun_responder.c) on given ports, for the interop tests. Not installed.
 *
 *   stun_responder [--addr IP] [--port N] [--alt-port N|--alt-ephemeral]
 *                   [--alt-addr IP] [--no-classic] [--timeout SECONDS]
 *
 * Prints "listening ADDR PORT ALT_PORT" (ALT_PORT 0 when none) once the
 * sockets are bound, then one line per datagram:
 *   "rx IP PORT in=N out=N reply=BYTES"
 * (IPv6 addresses unbracketed), flushed, and exits 0 on SIGINT/SIGTERM or
 * after --timeout seconds (default 60), so a test that dies cannot leave
 * it running for long.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rendezvous/stun_responder.h"

#define DEFAULT_TIMEOUT_S 60
#define POLL_INTERVAL_MS 200

static volatile sig_atomic_t g_stop;

/* SIGINT/SIGTERM: stop the loop. */
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Prints "IP PORT" of a sockaddr. */
static void print_addr(const struct sockaddr *sa, socklen_t len)
{
    rdv_stun_addr a;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (rdv_stun_addr_from_sockaddr(sa, len, &a) == 0)
        inet_ntop(a.family == RDV_STUN_FAMILY_IPV4 ? AF_INET : AF_INET6, a.addr, ip, sizeof(ip));
    printf("%s %u", ip, (unsigned)a.port);
}

/* srv_stun_packet_cb: one "rx" line per datagram. */
static void on_packet(void *user, const struct sockaddr *from, socklen_t fromlen,
                      srv_stun_via in, srv_stun_via out, size_t reply_len)
{
    (void)user;
    printf("rx ");
    print_addr(from, fromlen);
    printf(" in=%d out=%d reply=%zu\n", (int)in, (int)out, reply_len);
    fflush(stdout);
}

/* Prints the usage; returns the exit status 2. */
static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--addr IP] [--port N] [--alt-port N|--alt-ephemeral]\n"
            "          [--alt-addr IP] [--no-classic] [--timeout SECONDS]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    srv_stun_server_config cfg = {.addr = "127.0.0.1", .cb_packet = on_packet};
    long timeout_s = DEFAULT_TIMEOUT_S;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--addr") && v) {
            cfg.addr = v;
            i++;
        } else if (!strcmp(a, "--port") && v) {
            cfg.port = (uint16_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--alt-port") && v) {
            cfg.alt_port = (uint16_t)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--alt-addr") && v) {
            cfg.alt_addr = v;
            i++;
        } else if (!strcmp(a, "--timeout") && v) {
            timeout_s = strtol(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--alt-ephemeral")) {
            cfg.alt_port_ephemeral = true;
        } else if (!strcmp(a, "--no-classic")) {
            cfg.no_classic = true;
        } else {
            return usage(argv[0]);
        }
    }

    srv_stun_server srv;
    int rc = srv_stun_server_open(&srv, &cfg);
    if (rc < 0) {
        fprintf(stderr, "stun_responder: open %s: %s\n", cfg.addr, strerror(-rc));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("listening %s %u %u\n", cfg.addr, (unsigned)srv.bound[SRV_STUN_VIA_PRIMARY].port,
           (unsigned)srv.rcfg.alt_port);
    fflush(stdout);

    struct pollfd pfd[SRV_STUN_VIA__COUNT];
    nfds_t n = 0;
    for (int i = 0; i < SRV_STUN_VIA__COUNT; i++)
        if (srv.fd[i] >= 0)
            pfd[n++] = (struct pollfd){.fd = srv.fd[i], .events = POLLIN};
    time_t deadline = time(NULL) + timeout_s;
    while (!g_stop && time(NULL) < deadline) {
        int r = poll(pfd, n, POLL_INTERVAL_MS);
        if (r < 0 && errno != EINTR)
            break;
        for (nfds_t i = 0; r > 0 && i < n; i++)
            if (pfd[i].revents & POLLIN)
                (void)srv_stun_server_on_readable(&srv, pfd[i].fd);
    }
    fprintf(stderr, "stun_responder: rx=%llu tx=%llu dropped=%llu send_errors=%llu\n",
            (unsigned long long)srv.n_rx, (unsigned long long)srv.n_tx,
            (unsigned long long)srv.n_dropped, (unsigned long long)srv.n_send_errors);
    srv_stun_server_close(&srv);
    return 0;
}
