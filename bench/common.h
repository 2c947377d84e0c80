/* common.h - shared parts of the bench load generators: clocks, identities,
 * percentiles, and a thin layer over the libwebsockets client API that keeps
 * many WebSocket connections in one lws context (one thread, poll loop).
 *
 * Not a library anyone else links: bench/ only.
 */
#ifndef RDV_BENCH_COMMON_H
#define RDV_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h> /* before libwebsockets.h, for foreign_loops */
#include <libwebsockets.h>
#include <sodium.h>

/* ---- clocks ------------------------------------------------------------ */

int64_t bench_mono_ns(void);   /* CLOCK_MONOTONIC */
int64_t bench_real_ns(void);   /* CLOCK_REALTIME (to line up several processes) */

/* ---- CPU accounting ----------------------------------------------------- */

/* CPU seconds used so far by process pid (all threads), -1 if unknown. */
double bench_proc_cpu_s(int pid);
/* Machine-wide busy CPU seconds so far (all cores, /proc/stat). */
double bench_machine_busy_s(void);
/* CPU seconds used so far by this process. */
double bench_self_cpu_s(void);

/* ---- paced ticks --------------------------------------------------------- */

/* Opens a non-blocking timerfd on CLOCK_MONOTONIC that expires every
 * period_us (> 0), the first expiry one period from now, on an absolute
 * schedule (TFD_TIMER_ABSTIME): the k-th expiry is at start + k periods
 * whatever the wake-ups, and an hrtimer wake carries no timer slack (a
 * relative poll() timeout gets the thread's 50 us slack). Returns the fd, or
 * -1 with errno set. The caller closes it. */
int bench_timerfd_open(long period_us);
/* Reads and returns the expirations since the last read: 0 when none (the
 * fd is non-blocking) or on error. */
uint64_t bench_timerfd_read(int fd);

/* ---- misc -------------------------------------------------------------- */

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
long bench_raise_nofile(void);
/* Splits a comma-separated list in place; returns the count (<= max). */
int bench_split(char *s, char **out, int max);

/* Deterministic Ed25519 identity number `idx` of family `family`
 * (seed = BLAKE2b-256("rdv-bench" || family || idx)). */
void bench_identity(uint32_t family, uint32_t idx, uint8_t pk[32], uint8_t sk[64]);

/* ---- latency samples ---------------------------------------------------- */

typedef struct bench_lat {
    int64_t *v;   /* nanoseconds */
    size_t n, cap;
} bench_lat;

void bench_lat_init(bench_lat *l, size_t cap);
void bench_lat_add(bench_lat *l, int64_t ns);   /* drops samples over cap */
/* Sorts, then fills p50/p99/p999/max in microseconds (0 when empty). */
void bench_lat_summary(bench_lat *l, double *p50, double *p99, double *p999, double *max);
void bench_lat_free(bench_lat *l);

/* ---- WebSocket client connections -------------------------------------- */

typedef enum bconn_state {
    BC_IDLE = 0,     /* not connected (never, or closed and reusable) */
    BC_CONNECTING,   /* TCP + WebSocket upgrade in progress */
    BC_OPEN,         /* WebSocket open, application handshake in progress */
    BC_READY,        /* application says ready (welcome / OPEN received) */
} bconn_state;

typedef struct bench bench;

typedef struct bconn {
    bench *b;
    struct lws *wsi;
    int idx;
    bconn_state state;
    bool want_close;        /* close at the next WRITEABLE */
    bool counted_inflight;  /* counts against bench.max_inflight */
    bool hb_due;            /* send the heartbeat at the next WRITEABLE */
    int64_t t_start_ns;     /* connect started (mono) */
    int64_t t_ready_ns;     /* bench_conn_ready() (mono) */
    char *rx;               /* reassembly of fragmented messages */
    size_t rx_len, rx_cap;
    unsigned char *tx;      /* LWS_PRE + payload */
    size_t tx_cap;
    void *user;             /* the load generator's per-connection state */
} bconn;

typedef struct bench_ops {
    /* Builds the request path (with query) for c into buf. */
    void (*path)(bconn *c, char *buf, size_t size);
    void (*on_open)(bconn *c);                               /* may be NULL */
    void (*on_message)(bconn *c, const char *msg, size_t len);
    void (*on_writable)(bconn *c);                           /* may be NULL */
    /* Connection gone (error, refused, closed by either side). `why` is a
     * short reason; `established` tells whether the WebSocket had opened. */
    void (*on_closed)(bconn *c, const char *why, bool established);
} bench_ops;

struct bench {
    struct lws_context *ctx;
    const bench_ops *ops;
    const char *host;          /* server address, numeric */
    int port;
    int *conn_port;            /* per-connection port (NULL: all use port); the
                                  generator may change an entry before a reconnect */
    const char *subprotocol;   /* Sec-WebSocket-Protocol or NULL */
    char *src_ips[64];         /* local addresses to bind (round robin), may be empty */
    int n_src;
    bconn *conns;
    int n_conns;
    /* connect scheduling */
    int *queue;                /* ring of connection indices waiting to connect */
    int q_head, q_len;
    int inflight, max_inflight;
    lws_sorted_usec_list_t sul_connect;
    /* counters */
    uint64_t connects_started, connects_failed, closed_established;
    int open_now;              /* WebSockets currently open */
    /* bench_heartbeat(): every ready connection sends hb_msg each hb_ms */
    int hb_ms;
    const char *hb_msg;
    size_t hb_len;
    int hb_cursor;
    double hb_carry;
    lws_sorted_usec_list_t sul_hb;
    bool uv;                   /* libuv event loop (epoll) instead of poll() */
    uv_loop_t loop;            /* our (foreign) libuv loop when uv */
    /* bench_tick(): a timerfd watched by the libuv loop */
    int tick_fd;               /* -1: none */
    uv_poll_t tick_poll;
    void (*tick_cb)(bench *b, uint64_t expirations);
    volatile int stop;
};

/* Creates the lws context (raises RLIMIT_NOFILE first). n_conns slots.
 * use_uv: serve with libuv (epoll) rather than lws's poll() loop, whose
 * cost grows with the number of sockets. */
int bench_init(bench *b, const bench_ops *ops, const char *host, int port,
               const char *subprotocol, const char *src_ips_csv, int n_conns,
               int max_inflight, bool use_uv);
/* Queues slot idx to be connected (connects are paced by max_inflight). */
void bench_queue_connect(bench *b, int idx);
/* The application handshake of c completed (frees its in-flight slot). */
void bench_conn_ready(bconn *c);
/* Writes one text message now (call from on_writable, or when the socket is
 * known writable). Returns 0 or -1. */
int bench_send(bconn *c, const void *data, size_t len);
/* Asks for on_writable. */
void bench_want_write(bconn *c);
/* From now on every ready connection sends the text msg (kept, not
 * copied) once per interval_ms, spread evenly over the interval (PeerJS
 * closes a client silent for its alive_timeout, 90 s; its own client sends
 * a HEARTBEAT every 5 s). interval_ms <= 0: none. */
void bench_heartbeat(bench *b, int interval_ms, const char *msg);
/* Closes c (at its next WRITEABLE) with a normal close. */
void bench_close(bconn *c);
/* Calls cb(b, expirations) from the loop once per period_us, on an absolute
 * schedule (bench_timerfd_open): a timerfd watched by the libuv loop, so the
 * loop sleeps in epoll_wait between ticks and wakes on the tick (libuv's own
 * timers are in whole ms, and a sub-ms one re-armed from its callback never
 * lets the loop poll; lws' sul timers on the poll() loop are in whole ms
 * too, so that loop spins between sub-ms ticks). expirations: the periods
 * elapsed since the last call (> 1 after a late wake-up). Needs use_uv;
 * one tick per bench. Returns 0, or -1 (errno) when the timerfd cannot be
 * made or watched, or without use_uv. */
int bench_tick(bench *b, long period_us, void (*cb)(bench *b, uint64_t expirations));
/* Services the loop until b->stop, done(b) or the deadline (mono ns);
 * returns 0, or -1 when the deadline passed. done() is checked after every
 * loop iteration (at least every 20 ms). */
int bench_run(bench *b, int64_t deadline_ns, bool (*done)(bench *b));
void bench_destroy(bench *b);

#endif
