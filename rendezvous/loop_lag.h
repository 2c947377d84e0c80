/* loop_lag.h - how long the event loop was busy without coming back to its
 * timers: the lateness of a periodic timer (the connection sweep's
 * 50 ms tick, conn_sweep.h), kept as its largest value over the last
 * SRV_LOOP_LAG_WINDOW_MS to twice that (metric rendezvous_loop_lag_seconds).
 *
 * Every message that arrives while the loop is busy waits that long: a
 * loop lag near the latency an operator sees at p99 means the server's own
 * work (a burst of handshakes, a large pass over the connections) is the
 * cause, not the network. Loop thread only.
 */
#ifndef SRV_LOOP_LAG_H
#define SRV_LOOP_LAG_H

#include <stdint.h>

#define SRV_LOOP_LAG_WINDOW_MS 10000

typedef struct srv_loop_lag {
    int64_t window_ms;  /* monotonic ms the current window began */
    int64_t cur_ms;     /* largest lag in the current window */
    int64_t prev_ms;    /* ... in the previous one */
} srv_loop_lag;

/* A timer due at due_ms ran at now_ms (monotonic ms). */
void srv_loop_lag_note(srv_loop_lag *l, int64_t due_ms, int64_t now_ms);

/* The largest lag in ms over the last one to two windows at now_ms. */
int64_t srv_loop_lag_ms(const srv_loop_lag *l, int64_t now_ms);

#endif
