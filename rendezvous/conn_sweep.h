/* conn_sweep.h - the periodic per-connection checks, spread out in time
 * (issue 15): pings and the idle close (keepalive.h) and the unseen-bytes
 * check (frame_guard.h).
 *
 * Done for every connection at once, every half second, they held the
 * loop at 19,500 nodes: the frame guard's two system calls per
 * connection for ~60 ms, and every ping that came due in that half
 * second went out (and its pong came back) in one burst, which for nodes
 * that connected together is hundreds at a time. Either was the p99 of
 * every message routed meanwhile (bench/storm.sh's quiet window).
 *
 * So every SRV_CONN_SWEEP_TICK_MS the sweep visits the next slice of the
 * connections: the node map, then the relay channels (keepalive only,
 * as before: the unseen-bytes check's slack assumes --rx-buffer, and a
 * channel's reads go up to 64 KiB), at most
 * SRV_CONN_SWEEP_PER_TICK a tick, a pass over all of them every
 * SRV_CONN_SWEEP_PASS_MS at least. Past 2,560 connections a pass takes
 * longer (~3.8 s at 19,500): a ping goes out up to one pass late and the
 * idle close comes up to one pass late, and a connection hiding frames is
 * caught within a pass. Connections awaiting their hello (the oldest
 * SRV_CONN_SWEEP_PER_TICK of them) are visited once a pass, at its start;
 * --auth-timeout closes them anyway.
 *
 * The tick's lateness is the loop's lag (loop_lag.h).
 */
#ifndef SRV_CONN_SWEEP_H
#define SRV_CONN_SWEEP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/loop_lag.h"

struct srv_server;

#define SRV_CONN_SWEEP_TICK_MS 50    /* a slice of the connections visited */
#define SRV_CONN_SWEEP_PASS_MS 500   /* a pass over all of them, at least */
#define SRV_CONN_SWEEP_PER_TICK 256  /* connections visited per tick, at most */

/* Where the sweep is in its pass (srv_server.conn_sweep). */
typedef struct srv_conn_sweep {
    lws_sorted_usec_list_t sul;  /* the tick */
    size_t bucket;               /* the next bucket of the map being walked */
    uint8_t map;                 /* 0: the node map, 1: the channels, 2: done */
    int ticks;                   /* ticks into the current pass */
    int64_t pass_ms;             /* monotonic ms the current pass began */
    int64_t last_pass_ms;        /* how long the previous pass took */
    int64_t due_ms;              /* monotonic ms the next tick is due */
    int64_t late_ms;             /* how late the last tick ran */
    srv_loop_lag lag;            /* its lateness: the loop's lag (loop_lag.h) */
} srv_conn_sweep;

/* How far behind the loop is at now (monotonic ms): how late its last
 * tick ran or, when later, how overdue the next one is; 0 when on time. */
int64_t srv_conn_sweep_behind_ms(const srv_conn_sweep *w, int64_t now);

/* Starts the sweep on srv's loop (srv->ctx exists). */
void srv_conn_sweep_start(struct srv_server *srv);

/* Stops it (before the context goes). */
void srv_conn_sweep_stop(struct srv_server *srv);

#endif
