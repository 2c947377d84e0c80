/* common.c - see common.h. */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int64_t bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double bench_proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* after the command name */
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -1;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

double bench_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int bench_timerfd_open(long period_us)
{
    if (period_us <= 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -1;
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    long long first_ns = (long long)now.tv_sec * 1000000000 + now.tv_nsec + period_us * 1000LL;
    struct itimerspec its = {
        .it_interval = {period_us / 1000000, (period_us % 1000000) * 1000},
        .it_value = {(time_t)(first_ns / 1000000000), (long)(first_ns % 1000000000)},
    };
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

uint64_t bench_timerfd_read(int fd)
{
    uint64_t n = 0;
    ssize_t r;
    do
        r = read(fd, &n, sizeof n);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof n ? n : 0;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

int bench_split(char *s, char **out, int max)
{
    int n = 0;
    if (!s || !*s)
        return 0;
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

void bench_identity(uint32_t family, uint32_t idx, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t in[9 + 8], seed[32];
    memcpy(in, "rdv-bench", 9);
    for (int i = 0; i < 4; i++) {
        in[9 + i] = (uint8_t)(family >> (8 * i));
        in[13 + i] = (uint8_t)(idx >> (8 * i));
    }
    crypto_generichash(seed, sizeof seed, in, sizeof in, NULL, 0);
    crypto_sign_seed_keypair(pk, sk, seed);
}

/* ---- latency ------------------------------------------------------------ */

void bench_lat_init(bench_lat *l, size_t cap)
{
    l->v = calloc(cap ? cap : 1, sizeof *l->v);
    if (!l->v)
        bench_die("out of memory");
    l->n = 0;
    l->cap = cap;
}

void bench_lat_add(bench_lat *l, int64_t ns)
{
    if (l->n < l->cap)
        l->v[l->n++] = ns;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const bench_lat *l, double q)
{
    if (!l->n)
        return 0;
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    if (i >= l->n)
        i = l->n - 1;
    return (double)l->v[i] / 1000.0;
}

void bench_lat_summary(bench_lat *l, double *p50, double *p99, double *p999, double *max)
{
    qsort(l->v, l->n, sizeof *l->v, cmp_i64);
    *p50 = pct(l, 0.50);
    *p99 = pct(l, 0.99);
    *p999 = pct(l, 0.999);
    *max = l->n ? (double)l->v[l->n - 1] / 1000.0 : 0;
}

void bench_lat_free(bench_lat *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- WebSocket client layer -------------------------------------------- */

#define TX_MAX 65536

static unsigned char txbuf[LWS_PRE + TX_MAX];

static void conn_gone(bconn *c, const char *why)
{
    bench *b = c->b;
    if (c->state == BC_IDLE)
        return; /* already reported */
    bool established = c->state == BC_OPEN || c->state == BC_READY;
    if (established) {
        b->open_now--;
        b->closed_established++;
    } else {
        b->connects_failed++;
    }
    if (c->counted_inflight) {
        c->counted_inflight = false;
        b->inflight--;
    }
    c->state = BC_IDLE;
    c->wsi = NULL;
    c->want_close = false;
    c->rx_len = 0;
    if (b->ops->on_closed)
        b->ops->on_closed(c, why, established);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    bconn *c = (bconn *)lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        /* c->wsi may not be set yet (or already cleared through pwsi) */
        if (c && (c->wsi == wsi || (!c->wsi && c->state == BC_CONNECTING))) {
            char why[160];
            snprintf(why, sizeof why, "connect error: %s", in ? (const char *)in : "?");
            conn_gone(c, why);
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c) {
            c->state = BC_OPEN;
            c->b->open_now++;
            if (c->b->ops->on_open)
                c->b->ops->on_open(c);
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c || c->wsi != wsi)
            break;
        if (lws_is_final_fragment(wsi) && c->rx_len == 0) {
            c->b->ops->on_message(c, (const char *)in, len);
        } else {
            if (c->rx_len + len + 1 > c->rx_cap) {
                size_t cap = (c->rx_len + len + 1) * 2;
                char *p = realloc(c->rx, cap);
                if (!p)
                    bench_die("out of memory");
                c->rx = p;
                c->rx_cap = cap;
            }
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
            if (lws_is_final_fragment(wsi)) {
                size_t n = c->rx_len;
                c->rx_len = 0;
                c->b->ops->on_message(c, c->rx, n);
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c || c->wsi != wsi)
            break;
        if (c->want_close) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        if (c->hb_due) {
            c->hb_due = false;
            if (c->state == BC_READY && bench_send(c, c->b->hb_msg, c->b->hb_len) != 0)
                return -1;
        }
        if (c->b->ops->on_writable)
            c->b->ops->on_writable(c);
        if (c->want_close) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c && c->wsi == wsi)
            conn_gone(c, "closed");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c && c->wsi == wsi)
            conn_gone(c, "destroyed");
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"bench", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void start_connect(bench *b, bconn *c)
{
    char path[512];
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    b->ops->path(c, path, sizeof path);
    i.context = b->ctx;
    i.address = b->host;
    i.port = b->conn_port && b->conn_port[c->idx] > 0 ? b->conn_port[c->idx] : b->port;
    i.path = path;
    i.host = b->host;
    i.origin = b->host;
    i.protocol = b->subprotocol;
    i.local_protocol_name = "bench";
    if (b->n_src)
        i.iface = b->src_ips[c->idx % b->n_src];
    i.opaque_user_data = c;
    i.pwsi = &c->wsi;
    c->state = BC_CONNECTING;
    c->want_close = false;
    c->rx_len = 0;
    c->t_start_ns = bench_mono_ns();
    c->t_ready_ns = 0;
    c->counted_inflight = true;
    b->inflight++;
    b->connects_started++;
    struct lws *w = lws_client_connect_via_info(&i);
    if (!w && c->state == BC_CONNECTING) {
        c->wsi = (struct lws *)1; /* so conn_gone reports once */
        conn_gone(c, "connect failed at once");
    }
}

static void connect_cb(lws_sorted_usec_list_t *sul)
{
    bench *b = lws_container_of(sul, bench, sul_connect);
    int started = 0;
    while (b->q_len > 0 && b->inflight < b->max_inflight && started < 256) {
        int idx = b->queue[b->q_head];
        b->q_head = (b->q_head + 1) % b->n_conns;
        b->q_len--;
        bconn *c = &b->conns[idx];
        if (c->state != BC_IDLE)
            continue;
        start_connect(b, c);
        started++;
    }
    lws_sul_schedule(b->ctx, 0, &b->sul_connect, connect_cb, b->q_len ? 1000 : 20000);
}

/* Sets the soft open-file limit to what n_conns connections need (the
 * hard limit at most). lws sizes its fd table by that limit when the
 * context is created, and Debian's lws 4.1.6 is built with _DEBUG: on
 * every close sanity_assert_no_sockfd_traces() walks the whole table
 * (~6 instructions a slot, 120k per close at 20,000 slots: 15 % of a
 * handshake in loadgen_idle, issue 15). A table sized to the connections
 * keeps that walk short. */
static void fit_nofile(int n_conns)
{
    long hard = bench_raise_nofile();
    long want = (long)n_conns + 256; /* listeners, libuv, stdio, files */
    struct rlimit rl;
    if (hard > 0 && want < hard && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = (rlim_t)want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int bench_init(bench *b, const bench_ops *ops, const char *host, int port,
               const char *subprotocol, const char *src_ips_csv, int n_conns, int max_inflight,
               bool use_uv)
{
    memset(b, 0, sizeof *b);
    b->tick_fd = -1;
    b->uv = use_uv;
    fit_nofile(n_conns);
    b->ops = ops;
    b->host = host;
    b->port = port;
    b->subprotocol = subprotocol;
    if (src_ips_csv && *src_ips_csv) {
        char *copy = strdup(src_ips_csv);
        b->n_src = bench_split(copy, b->src_ips, 64);
    }
    b->n_conns = n_conns;
    b->max_inflight = max_inflight > 0 ? max_inflight : 1;
    b->conns = calloc((size_t)n_conns, sizeof *b->conns);
    b->queue = calloc((size_t)n_conns, sizeof *b->queue);
    if (!b->conns || !b->queue)
        bench_die("out of memory");
    for (int i = 0; i < n_conns; i++) {
        b->conns[i].b = b;
        b->conns[i].idx = i;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 20;
    info.pt_serv_buf_size = 65536;
    void *foreign[1];
    if (use_uv) {
        if (uv_loop_init(&b->loop) != 0)
            return -1;
        foreign[0] = &b->loop;
        info.foreign_loops = foreign;
        info.options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    }
    b->ctx = lws_create_context(&info);
    if (!b->ctx)
        return -1;
    lws_sul_schedule(b->ctx, 0, &b->sul_connect, connect_cb, 1000);
    return 0;
}

void bench_queue_connect(bench *b, int idx)
{
    if (b->q_len >= b->n_conns)
        return;
    b->queue[(b->q_head + b->q_len) % b->n_conns] = idx;
    b->q_len++;
}

void bench_conn_ready(bconn *c)
{
    c->state = BC_READY;
    c->t_ready_ns = bench_mono_ns();
    if (c->counted_inflight) {
        c->counted_inflight = false;
        c->b->inflight--;
    }
}

int bench_send(bconn *c, const void *data, size_t len)
{
    if (!c->wsi || len > TX_MAX)
        return -1;
    memcpy(txbuf + LWS_PRE, data, len);
    int n = lws_write(c->wsi, txbuf + LWS_PRE, len, LWS_WRITE_TEXT);
    return n < (int)len ? -1 : 0;
}

void bench_want_write(bconn *c)
{
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

#define HB_TICK_MS 100

static void hb_cb(lws_sorted_usec_list_t *sul)
{
    bench *b = lws_container_of(sul, bench, sul_hb);
    /* this tick's share of the connections, round robin */
    b->hb_carry += (double)b->n_conns * HB_TICK_MS / b->hb_ms;
    int n = (int)b->hb_carry;
    b->hb_carry -= n;
    for (int i = 0; i < n && i < b->n_conns; i++) {
        bconn *c = &b->conns[b->hb_cursor];
        b->hb_cursor = (b->hb_cursor + 1) % b->n_conns;
        if (c->state == BC_READY && c->wsi) {
            c->hb_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
    lws_sul_schedule(b->ctx, 0, &b->sul_hb, hb_cb, HB_TICK_MS * 1000);
}

void bench_heartbeat(bench *b, int interval_ms, const char *msg)
{
    if (interval_ms <= 0 || !msg)
        return;
    b->hb_ms = interval_ms;
    b->hb_msg = msg;
    b->hb_len = strlen(msg);
    lws_sul_schedule(b->ctx, 0, &b->sul_hb, hb_cb, HB_TICK_MS * 1000);
}

void bench_close(bconn *c)
{
    if (!c->wsi || c->state == BC_IDLE)
        return;
    c->want_close = true;
    lws_callback_on_writable(c->wsi);
}

static void tick_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    bench *b = h->data;
    if (status < 0)
        bench_die("bench tick: %s", uv_strerror(status));
    uint64_t n = bench_timerfd_read(b->tick_fd);
    if (n)
        b->tick_cb(b, n);
}

int bench_tick(bench *b, long period_us, void (*cb)(bench *b, uint64_t expirations))
{
    if (!b->uv || b->tick_fd >= 0 || !cb) {
        errno = EINVAL;
        return -1;
    }
    int fd = bench_timerfd_open(period_us);
    if (fd < 0)
        return -1;
    int rc = uv_poll_init(&b->loop, &b->tick_poll, fd);
    if (rc == 0) {
        b->tick_poll.data = b;
        rc = uv_poll_start(&b->tick_poll, UV_READABLE, tick_poll_cb);
        if (rc != 0)
            uv_close((uv_handle_t *)&b->tick_poll, NULL);
    }
    if (rc != 0) {
        close(fd); /* after uv_close: libuv has forgotten it (not closed it) */
        errno = -rc;
        return -1;
    }
    b->tick_fd = fd;
    b->tick_cb = cb;
    return 0;
}

int bench_run(bench *b, int64_t deadline_ns, bool (*done)(bench *b))
{
    if (b->uv) {
        while (!b->stop && !(done && done(b))) {
            if (bench_mono_ns() > deadline_ns)
                return -1;
            uv_run(&b->loop, UV_RUN_ONCE);
        }
        return 0;
    }
    while (!b->stop && !(done && done(b))) {
        if (bench_mono_ns() > deadline_ns)
            return -1;
        if (lws_service(b->ctx, 0) < 0)
            return -1;
    }
    return 0;
}

void bench_destroy(bench *b)
{
    if (b->ctx) {
        lws_sul_cancel(&b->sul_connect);
        lws_sul_cancel(&b->sul_hb);
        if (b->tick_fd >= 0)
            uv_close((uv_handle_t *)&b->tick_poll, NULL); /* freed by the drain below */
        lws_context_destroy(b->ctx);
        if (b->uv) {
            /* let lws's handles finish closing, boundedly */
            for (int i = 0; i < 1000 && uv_run(&b->loop, UV_RUN_NOWAIT); i++)
                ;
            (void)uv_loop_close(&b->loop);
        }
        if (b->tick_fd >= 0) /* only bench_init()ed benches have one */
            close(b->tick_fd);
        b->tick_fd = -1;
    }
    b->ctx = NULL;
    for (int i = 0; i < b->n_conns; i++)
        free(b->conns[i].rx);
    free(b->conns);
    free(b->queue);
    free(b->conn_port);
    b->conns = NULL;
    b->queue = NULL;
    b->conn_port = NULL;
}
