/* accept_gate.h - keeps the listener from spinning when the process runs
 * out of file descriptors.
 *
 * libwebsockets 4.1.6 accepts inside its own loop: when accept() fails
 * with EMFILE it logs and returns, the listening socket stays readable,
 * and poll() wakes at once again - a full core burnt for as long as the
 * backlog waits. lws only pauses its listener when its own table is full,
 * which the process never reaches (stdio, SQLite and STUN hold fds too).
 *
 * The gate keeps SRV_ACCEPT_GATE_RESERVE descriptors below the open-file
 * limit free: a connection whose accepted fd lands in that reserve is
 * closed (counted as refused) and the listener stops polling for new
 * connections; the rest wait in the kernel's backlog. Every
 * SRV_ACCEPT_GATE_PROBE_MS the gate asks the kernel for its lowest free
 * descriptor and resumes once it is below the reserve (lws also resumes
 * the listener whenever one of its sockets closes; a connection that then
 * lands in the reserve pauses it again). The offline-queue sweep also
 * probes, so descriptors taken by anything else pause the listener too.
 * A log line says so at most once per SRV_ACCEPT_GATE_LOG_MS.
 *
 * Accept batch (--accept-batch N, issue 15 goal 4): after N connections
 * accepted in one event-loop turn the listener stops until the next turn
 * (a zero-delay timer, run at the start of the next turn, resumes it).
 * lws accepts everything waiting in the backlog in one go, and each
 * accepted connection brings its upgrade, challenge, hello, welcome and
 * presence write into the following turns: in a reconnect storm (19,500
 * nodes at once) a turn then lasts hundreds of ms and established nodes'
 * messages, served once per turn, wait that long (signaling p99 1.5-2 s).
 * With the batch a turn carries about N handshakes, so established
 * connections are served every few ms while the loop still spends all
 * its time on the handshakes when it has nothing else to do (bench/
 * storm.sh, 19,500 nodes, 2 cores: storm signaling p99 0.7-2.3 s with no
 * cap, 0.36-0.68 s with 32, 0.17 s with 8; the storm's handshakes/s
 * ~20 % lower, the loop now also carrying the signaling: bench/RESULTS.md,
 * eighth session; --accept-batch 0 is the old trade). Only the
 * loop's own pace is bounded: a slow client's handshake holds nothing (a
 * cap on handshakes in progress would let idle half-open connections stop
 * the listener). lws resumes its listener by itself whenever a socket
 * closes (before the socket's LWS_CALLBACK_WSI_DESTROY, where
 * srv_accept_gate_reassert() stops it again).
 */
#ifndef SRV_ACCEPT_GATE_H
#define SRV_ACCEPT_GATE_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#define SRV_ACCEPT_GATE_RESERVE 8     /* descriptors kept free for the server */
#define SRV_ACCEPT_GATE_PROBE_MS 100  /* while paused: how often to look */
#define SRV_ACCEPT_GATE_LOG_MS 10000  /* at most one log line this often */

struct srv_server;

typedef struct srv_accept_gate {
    struct lws *listen_wsi;       /* learnt from the first accept */
    int64_t limit;                /* RLIMIT_NOFILE soft limit, last read */
    bool paused;
    bool timer_armed;
    uint64_t pauses_total;        /* times the listener was paused */
    uint64_t refused_total;       /* connections closed for landing in the reserve */
    uint64_t refused_since_log;
    uint32_t turn_accepts;        /* accepted in this loop turn */
    bool turn_paused;             /* stopped by --accept-batch until the next turn */
    uint64_t turn_pauses_total;   /* times --accept-batch stopped it */
    int64_t last_log_ms;          /* monotonic; 0: never logged */
    lws_sorted_usec_list_t sul;   /* resume probe */
    lws_sorted_usec_list_t sul_turn; /* next turn: resumes after a full batch */
} srv_accept_gate;

/* Reads the open-file limit. Call once before the loop runs. */
void srv_accept_gate_init(struct srv_server *srv);

/* For LWS_CALLBACK_FILTER_NETWORK_CONNECTION: listen_wsi is the listener,
 * fd the accepted socket. Returns true to keep the connection, false to
 * refuse it (lws closes fd); the listener is then paused. */
bool srv_accept_gate_on_accept(struct srv_server *srv, struct lws *listen_wsi, int fd);

/* A socket was destroyed (LWS_CALLBACK_WSI_DESTROY): lws has resumed the
 * listener; stops it again when the gate or the window wants it stopped. */
void srv_accept_gate_reassert(struct srv_server *srv);

/* Periodic check from the loop's sweep: pauses the listener when the
 * lowest free descriptor is in the reserve (or none is free). */
void srv_accept_gate_probe(struct srv_server *srv);

/* Cancels the gate's timer (before the context is destroyed). */
void srv_accept_gate_stop(struct srv_server *srv);

#endif
