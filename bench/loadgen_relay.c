/* loadgen_relay.c - load generator for the relay of last resort
 * (PROTOCOL.md section 9), and the raw-TCP ceiling it is compared with.
 *
 *   loadgen_relay --mode ws  --port P [options]   rendezvousd relay sessions
 *   loadgen_relay --mode tcp --port P [options]   through `--mode forwarder`
 *   loadgen_relay --mode forwarder --port P       a plain TCP splice (ceiling)
 *
 * ws: 2N WebSocket connections (a minimal RFC 6455 client, one thread,
 * poll loop): node A_i authenticates (challenge / signed hello / welcome),
 * opens a relay session to B_i (signed relayOpen, relayReady) and sends
 * binary relay frames (kind 0x01, 16-byte session ID, payload) to B_i.
 * tcp: the same traffic as length-prefixed frames over plain TCP through
 * the forwarder, which pairs A_i and B_i by session ID and copies bytes
 * A -> B and B -> A with a blocking read/write loop per direction (a
 * thread each).
 *
 * With --warmup the run is instead one fixed-duration window (issue 15's
 * method, see "windowed runs" below: optional B -> A traffic, uclient-like
 * pacing, CPU of the server and of this generator, a RESULT line).
 *
 * --channel (ws): after the sessions are open, every node also opens its
 * relay channel (PROTOCOL.md 9.5: subprotocol rendezvous.relay.v1, same
 * identity, same handshake); A sends its relay frames on it and B receives
 * them on its own (the server sends relay data down a node's channel).
 * The main connections stay open and only answer pings.
 *
 * Phase 1, throughput (--seconds): each A keeps at most --window payload
 * bytes in flight (sent, not yet received by its B: the loss-free rate of
 * a flow-controlled application; relay data would be dropped past the
 * server's threshold otherwise). MB/s = payload bytes received / time.
 * Phase 2, latency (--lat-seconds): each A sends one --lat-payload message
 * every --lat-interval ms; the one-way delay (send -> receive, the same
 * monotonic clock: one process) is sampled, p50 / p99 reported.
 *
 * Output: one JSON line on stdout. Bench only: not built by CI.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "schema/ids.h"
#include "schema/wire_limits.h"
#include "schema/message.h"
#include "schema/sign.h"

#include "common.h" /* bench_proc_cpu_s, bench_self_cpu_s, bench_machine_busy_s */

/* ---- options, clock, stats ---------------------------------------------- */

typedef struct opts {
    const char *mode;
    const char *host;
    int port;
    int sessions;
    double seconds;
    size_t payload;
    size_t window;
    double lat_seconds;
    int lat_interval_ms;
    size_t lat_payload;
    const char *name;
    bool channel; /* ws: relay data over each node's relay channel */
} opts;

static opts O = {"ws", "127.0.0.1", 0, 1, 5.0, 16384, 262144, 3.0, 10, 1200, "bench", false};

/* The relay channel's subprotocol (PROTOCOL.md 9.5). */
#define CHANNEL_SUBPROTOCOL "rendezvous.relay.v1"


static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen_relay: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct samples {
    int64_t *v;
    size_t n, cap;
} samples;

static void sample_add(samples *s, int64_t ns)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        if (cap > (size_t)1 << 24)
            return; /* enough samples */
        int64_t *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            return;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = ns;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q (0..1) in microseconds; 0 when empty. Sorts s. */
static double pct_us(samples *s, double q)
{
    if (!s->n)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp64);
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return (double)s->v[i] / 1000.0;
}

/* ---- the run ------------------------------------------------------------- */

enum phase { P_SETUP, P_THROUGHPUT, P_LATENCY, P_DONE };

typedef struct session {
    uint8_t sid[RDV_UUID_BYTES];
    char sid_text[RDV_UUID_STRLEN + 1];
    uint64_t sent, recvd;      /* payload bytes, this phase */
    int64_t next_send;         /* latency phase: due time (ns) */
    bool lat_outstanding;      /* latency phase: one message in flight */
    bool open;
    int64_t progress;          /* last receive or window reset (ns) */
    uint64_t lost;             /* bytes given up for lost (datagram drops) */
    void *a, *b;               /* the two ends (mode specific) */
} session;

/* No byte of a full window arrived for this long: count it lost. */
#define STALL_NS (50 * (int64_t)1000000)

static session *S;
static enum phase phase = P_SETUP;
static int64_t t_phase;        /* start of the current phase */
static uint64_t tp_bytes;      /* payload bytes received in phase 1 */
static samples lat_load, lat_idle;

/* Records one received payload of n bytes whose first 8 bytes are the
 * send time. */
static void on_payload(session *s, const uint8_t *first8, size_t n)
{
    int64_t ts;
    memcpy(&ts, first8, sizeof ts);
    int64_t now = now_ns(), d = now - ts;
    s->recvd += n;
    s->progress = now;
    if (phase == P_THROUGHPUT) {
        tp_bytes += n;
        sample_add(&lat_load, d);
    } else if (phase == P_LATENCY && ts >= t_phase) { /* not phase-1 stragglers */
        sample_add(&lat_idle, d);
        s->lat_outstanding = false;
    }
}

/* True when A of s may send one more message now. */
static bool may_send(session *s, int64_t now)
{
    if (!s->open)
        return false;
    if (phase == P_THROUGHPUT) {
        int64_t inflight = (int64_t)(s->sent - s->recvd);
        if (inflight >= (int64_t)O.window && now - s->progress > STALL_NS) {
            /* relay data is datagrams: what did not arrive by now was
             * dropped (rate limit, congestion); stop waiting for it */
            s->lost += (uint64_t)inflight;
            s->sent = s->recvd;
            s->progress = now;
            inflight = 0;
        }
        return inflight < (int64_t)O.window;
    }
    if (phase == P_LATENCY)
        return !s->lat_outstanding && now >= s->next_send;
    return false;
}

static size_t msg_payload(void)
{
    return phase == P_LATENCY ? O.lat_payload : O.payload;
}

static void mark_sent(session *s, size_t n, int64_t now)
{
    s->sent += n;
    if (phase == P_LATENCY) {
        s->lat_outstanding = true;
        s->next_send = now + (int64_t)O.lat_interval_ms * 1000000;
    }
}

/* Moves to the next phase when its time is up. Returns true when done. */
static bool advance(void)
{
    int64_t now = now_ns();
    if (phase == P_THROUGHPUT && now - t_phase >= (int64_t)(O.seconds * 1e9)) {
        double secs = (double)(now - t_phase) / 1e9;
        t_phase = now;
        fprintf(stderr, "loadgen_relay: throughput phase: %.1f MB in %.2f s\n",
                (double)tp_bytes / 1e6, secs);
        tp_bytes = (uint64_t)((double)tp_bytes / secs); /* now bytes per second */
        phase = P_LATENCY;
        for (int i = 0; i < O.sessions; i++) {
            /* wait for phase-1 data still in flight: its latency is not idle */
            S[i].lat_outstanding = false;
            S[i].next_send = now + 200000000 + (int64_t)i * 1000000 * O.lat_interval_ms /
                                                     (O.sessions ? O.sessions : 1);
        }
    } else if (phase == P_LATENCY && now - t_phase >= (int64_t)((O.lat_seconds + 0.2) * 1e9)) {
        phase = P_DONE;
    }
    return phase == P_DONE;
}

static void start_throughput(void)
{
    phase = P_THROUGHPUT;
    t_phase = now_ns();
    for (int i = 0; i < O.sessions; i++)
        S[i].progress = t_phase;
    fprintf(stderr, "loadgen_relay: %d session(s) open; measuring\n", O.sessions);
}

static void report(void)
{
    uint64_t lost = 0;
    for (int i = 0; i < O.sessions; i++)
        lost += S[i].lost;
    printf("{\"mode\":\"%s\",\"sessions\":%d,\"payload\":%zu,\"window\":%zu,"
           "\"lost_bytes\":%llu,\"mbps\":%.1f,\"load_p50_us\":%.0f,\"load_p99_us\":%.0f,"
           "\"lat_payload\":%zu,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_samples\":%zu}\n",
           O.mode, O.sessions, O.payload, O.window, (unsigned long long)lost,
           (double)tp_bytes / 1e6,
           pct_us(&lat_load, 0.5), pct_us(&lat_load, 0.99), O.lat_payload,
           pct_us(&lat_idle, 0.5), pct_us(&lat_idle, 0.99), lat_idle.n);
    fflush(stdout);
}

/* Deterministic identity number idx (seed = BLAKE2b("rdv-relay-bench" || idx)). */
static void identity(int idx, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t buf[19], seed[32];
    uint32_t x = (uint32_t)idx;
    memcpy(buf, "rdv-relay-bench", 15);
    memcpy(buf + 15, &x, 4);
    crypto_generichash(seed, sizeof seed, buf, sizeof buf, NULL, 0);
    crypto_sign_seed_keypair(pk, sk, seed);
}

/* ---- tcp mode: raw TCP through the forwarder ------------------------------ */

typedef struct tconn {
    int fd;
    session *s;
    int role;
    uint8_t *buf;      /* B: receive buffer; A: current frame */
    size_t len, off;   /* B: bytes held; A: frame length and bytes written */
} tconn;

#define TCP_RXBUF (1 << 20)

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    if (inet_pton(AF_INET, O.host, &sa.sin_addr) != 1)
        die("bad host %s", O.host);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            die("write: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
}


/* tcp framing: 4-byte length (host order), payload starting with the
 * send time. Returns the frame length. */
static size_t tcp_frame(uint8_t *buf, size_t p)
{
    uint32_t l = (uint32_t)p;
    memcpy(buf, &l, 4);
    int64_t ts = now_ns();
    memcpy(buf + 4, &ts, sizeof ts);
    return 4 + p;
}

/* Consumes complete tcp frames from c->buf; returns the bytes used. */
static size_t tcp_parse(tconn *c)
{
    size_t p = 0;
    while (c->len - p >= 4) {
        uint32_t fl;
        memcpy(&fl, c->buf + p, 4);
        if (c->len - p < 4 + (size_t)fl)
            break;
        on_payload(c->s, c->buf + p + 4, fl);
        p += 4 + fl;
    }
    return p;
}

/* ---- ws mode: a minimal RFC 6455 client ------------------------------------
 * libwebsockets' client parses and masks byte by byte, which made the load
 * generator, not the server, the bottleneck. This client writes frames
 * masked with the all-zero key (legal; the XOR is a no-op) and parses the
 * server's unmasked frames in bulk. */

/* Writes a client frame header for `len` payload bytes into h; returns
 * its size (2..14). */
static size_t ws_header(uint8_t *h, int opcode, size_t len)
{
    size_t n = 0;
    h[n++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[n++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memset(h + n, 0, 4); /* mask key 0 */
    return n + 4;
}

/* One relay data frame for s with a p-byte payload into buf; returns its
 * length. The payload is left as it is after the timestamp. */
static size_t ws_data_frame(uint8_t *buf, session *s, size_t p)
{
    size_t h = ws_header(buf, 2, RDV_RELAY_FRAME_HEADER + p);
    buf[h] = RDV_RELAY_FRAME_KIND_DATA;
    memcpy(buf + h + 1, s->sid, RDV_UUID_BYTES);
    int64_t ts = now_ns();
    memcpy(buf + h + RDV_RELAY_FRAME_HEADER, &ts, sizeof ts);
    return h + RDV_RELAY_FRAME_HEADER + p;
}

/* Parses one server frame at b[0..n): sets *op, *pl (payload start) and
 * *plen; returns the frame size, or 0 when incomplete. */
static size_t ws_frame_at(const uint8_t *b, size_t n, int *op, size_t *pl, size_t *plen)
{
    if (n < 2)
        return 0;
    *op = b[0] & 0x0f;
    size_t len = b[1] & 0x7f, h = 2;
    if (b[1] & 0x80)
        die("masked frame from the server");
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (size_t)b[2] << 8 | b[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
        h = 10;
    }
    if (n - h < len)
        return 0;
    *pl = h;
    *plen = len;
    return h + len;
}

static void ws_send(int fd, int opcode, const void *p, size_t len)
{
    uint8_t h[14];
    size_t hl = ws_header(h, opcode, len);
    write_all(fd, h, hl);
    write_all(fd, p, len);
}

static void read_exact(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            die("read during setup: %s", r ? strerror(errno) : "closed");
        p += r;
        n -= (size_t)r;
    }
}

/* Blocking: the next text frame of fd (pings answered); malloc'd. Reads
 * exactly one frame at a time, so nothing of a later frame is consumed. */
static char *ws_read_text(int fd)
{
    for (;;) {
        uint8_t h[10];
        read_exact(fd, h, 2);
        int op = h[0] & 0x0f;
        size_t len = h[1] & 0x7f;
        if (len == 126) {
            read_exact(fd, h + 2, 2);
            len = (size_t)h[2] << 8 | h[3];
        } else if (len == 127) {
            read_exact(fd, h + 2, 8);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
        }
        char *t = malloc(len + 1);
        if (!t)
            die("out of memory");
        read_exact(fd, (uint8_t *)t, len);
        t[len] = '\0';
        if (op == 1)
            return t;
        if (op == 9)
            ws_send(fd, 10, t, len);
        else if (op == 8)
            die("server closed the connection during setup");
        free(t);
    }
}

/* The body of `type` in text (new reference), or dies naming what came. */
static json_t *ws_expect(int fd, const char *type)
{
    char *t = ws_read_text(fd);
    json_t *root = json_loads(t, 0, NULL);
    json_t *b = root ? json_object_get(root, type) : NULL;
    if (!b)
        die("expected %s, got %.300s", type, t);
    json_incref(b);
    json_decref(root);
    free(t);
    return b;
}

typedef struct ident {
    uint8_t pk[RDV_NODE_ID_BYTES], sk[RDV_SECRET_KEY_BYTES];
    char id[RDV_NODE_ID_HEXLEN + 1];
} ident;

static ident *IDS;

static void ws_send_signed(int fd, const ident *me, rdv_msg_type type, json_t *body)
{
    if (!body)
        die("out of memory");
    json_object_set_new(body, type == RDV_MSG_HELLO ? "nodeID" : "fromNodeID",
                        json_string(me->id));
    json_object_set_new(body, "timestamp", json_integer(rdv_now_ms()));
    if (rdv_sig_sign(type, body, me->sk) != 0)
        die("cannot sign");
    json_t *env = rdv_msg_wrap(type, body);
    size_t len = 0;
    char *t = env ? rdv_msg_dump(env, &len) : NULL;
    json_decref(env);
    if (!t)
        die("cannot build %s", rdv_msg_type_name(type));
    ws_send(fd, 1, t, len);
    free(t);
}

/* Upgrade (blocking) to `proto` and authenticate connection i as
 * identity i. */
static void ws_handshake(tconn *c, int i, const char *proto)
{
    if (!IDS && !(IDS = calloc((size_t)O.sessions * 2, sizeof *IDS)))
        die("out of memory");
    ident *me = &IDS[i];
    identity(i, me->pk, me->sk);
    rdv_node_id_from_pk(me->pk, me->id);
    char req[512];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                      RDV_WS_PATH, O.host, O.port, proto);
    write_all(c->fd, req, (size_t)rl);
    char resp[2048];
    size_t have = 0;
    while (have < 4 || memcmp(resp + have - 4, "\r\n\r\n", 4) != 0) {
        if (have == sizeof resp || read(c->fd, resp + have, 1) != 1)
            die("no upgrade response");
        have++;
    }
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
        die("upgrade refused: %.80s", resp);
    json_t *ch = ws_expect(c->fd, "challenge");
    json_t *b = json_pack("{s:s, s:s}", "nonce", json_string_value(json_object_get(ch, "nonce")),
                          "server", json_string_value(json_object_get(ch, "server")));
    json_decref(ch);
    ws_send_signed(c->fd, me, RDV_MSG_HELLO, b);
    json_decref(ws_expect(c->fd, "welcome"));
}

/* relayOpen A_i -> B_i, relayReady back, for every session (blocking). */
static void ws_open_sessions(tconn *T)
{
    for (int i = 0; i < O.sessions; i++) {
        tconn *a = &T[2 * i], *b = &T[2 * i + 1];
        ws_send_signed(a->fd, &IDS[2 * i], RDV_MSG_RELAY_OPEN,
                       json_pack("{s:s, s:s}", "toNodeID", IDS[2 * i + 1].id, "sessionID",
                                 S[i].sid_text));
        json_decref(ws_expect(b->fd, "relayOpen"));
        ws_send_signed(b->fd, &IDS[2 * i + 1], RDV_MSG_RELAY_READY,
                       json_pack("{s:s, s:s}", "toNodeID", IDS[2 * i].id, "sessionID",
                                 S[i].sid_text));
        json_decref(ws_expect(a->fd, "relayReady"));
    }
}

/* Consumes complete server frames from c->buf: relay data is measured,
 * pings answered (on the blocking path: rare), anything else is fatal.
 * Returns the bytes used. */
static size_t ws_parse(tconn *c, tconn *T)
{
    (void)T;
    size_t p = 0;
    for (;;) {
        int op;
        size_t pl, plen, fl = ws_frame_at(c->buf + p, c->len - p, &op, &pl, &plen);
        if (!fl)
            break;
        const uint8_t *d = c->buf + p + pl;
        if (op == 2 && plen >= RDV_RELAY_FRAME_HEADER + 8)
            on_payload(c->s, d + RDV_RELAY_FRAME_HEADER, plen - RDV_RELAY_FRAME_HEADER);
        else if (op == 9)
            ws_send(c->fd, 10, d, plen);
        else if (op != 10)
            die("unexpected frame (opcode %d): %.200s", op, op == 1 ? (const char *)d : "");
        p += fl;
    }
    return p;
}

/* --channel: a node's main connection while its channel carries the
 * data: pings answered, anything else read and dropped. */
static void main_service(tconn *m)
{
    ssize_t r = read(m->fd, m->buf + m->len, TCP_RXBUF - m->len);
    if (r == 0)
        die("the server closed a main connection");
    if (r < 0)
        return;
    m->len += (size_t)r;
    size_t p = 0;
    for (;;) {
        int op;
        size_t pl, plen, fl = ws_frame_at(m->buf + p, m->len - p, &op, &pl, &plen);
        if (!fl)
            break;
        if (op == 9)
            ws_send(m->fd, 10, m->buf + p + pl, plen);
        p += fl;
    }
    if (p == 0 && m->len == TCP_RXBUF)
        die("a frame over %d bytes on a main connection", TCP_RXBUF);
    memmove(m->buf, m->buf + p, m->len - p);
    m->len -= p;
}

/* --channel: moves every node's data connection to a new relay channel
 * (authenticated as the same node); its main connection goes to M[i]. */
static void open_channels(tconn *T, tconn *M, int n)
{
    for (int i = 0; i < n; i++) {
        M[i] = T[i];
        M[i].len = 0;
        M[i].buf = malloc(TCP_RXBUF);
        if (!M[i].buf)
            die("out of memory");
        T[i].fd = tcp_connect();
        ws_handshake(&T[i], i, CHANNEL_SUBPROTOCOL);
        /* the server switches this node's delivery to the channel when it
         * answers a ping on main (PROTOCOL.md 9.5) */
        static const char ping[] = "{\"ping\":{\"id\":\"switch\"}}";
        ws_send(M[i].fd, 1, ping, sizeof ping - 1);
    }
}

static void run_stream(bool ws)
{
    int n = 2 * O.sessions;
    tconn *T = calloc((size_t)n, sizeof *T);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    if (!T || !pf)
        die("out of memory");
    for (int i = 0; i < n; i++) {
        tconn *c = &T[i];
        c->s = &S[i / 2];
        c->role = i % 2;
        c->fd = tcp_connect();
        if (ws) {
            ws_handshake(c, i, RDV_WS_SUBPROTOCOL);
        } else {
            uint8_t hello[1 + RDV_UUID_BYTES];
            hello[0] = c->role ? 'B' : 'A';
            memcpy(hello + 1, c->s->sid, RDV_UUID_BYTES);
            write_all(c->fd, hello, sizeof hello);
        }
        c->buf = malloc(c->role ? TCP_RXBUF : 14 + RDV_RELAY_FRAME_HEADER + O.payload);
        if (!c->buf)
            die("out of memory");
        if (c->role == 0)
            c->s->a = c;
        else
            c->s->b = c;
        c->s->open = true;
        pf[i].fd = c->fd;
    }
    if (ws)
        ws_open_sessions(T);
    tconn *M = NULL; /* --channel: the main connections */
    int nm = 0;
    if (ws && O.channel) {
        nm = n;
        M = calloc((size_t)n, sizeof *M);
        struct pollfd *npf = realloc(pf, (size_t)(2 * n) * sizeof *pf);
        if (!M || !npf)
            die("out of memory");
        pf = npf;
        open_channels(T, M, n);
        for (int i = 0; i < n; i++) {
            pf[i].fd = T[i].fd;
            pf[n + i].fd = M[i].fd;
            pf[n + i].events = POLLIN;
            if (fcntl(M[i].fd, F_SETFL, O_NONBLOCK) != 0)
                die("fcntl: %s", strerror(errno));
        }
    }
    for (int i = 0; i < n; i++)
        if (fcntl(T[i].fd, F_SETFL, O_NONBLOCK) != 0)
            die("fcntl: %s", strerror(errno));
    start_throughput();
    while (!advance()) {
        int64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            tconn *c = &T[i];
            pf[i].events = POLLIN;
            if (c->role == 0 && (c->off < c->len || may_send(c->s, now)))
                pf[i].events |= POLLOUT;
        }
        if (poll(pf, (nfds_t)(n + nm), 1) < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        now = now_ns();
        for (int i = 0; i < nm; i++)
            if (pf[n + i].revents & (POLLIN | POLLHUP | POLLERR))
                main_service(&M[i]);
        for (int i = 0; i < n; i++) {
            tconn *c = &T[i];
            if (c->role == 1 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t r = read(c->fd, c->buf + c->len, TCP_RXBUF - c->len);
                if (r == 0)
                    die("forwarder closed a connection");
                if (r < 0 && errno != EAGAIN)
                    die("read: %s", strerror(errno));
                if (r > 0)
                    c->len += (size_t)r;
                size_t p = ws ? ws_parse(c, T) : tcp_parse(c);
                memmove(c->buf, c->buf + p, c->len - p);
                c->len -= p;
            }
            if (c->role == 0 && (pf[i].revents & POLLOUT)) {
                for (;;) {
                    if (c->off == c->len) {
                        if (!may_send(c->s, now))
                            break;
                        size_t p = msg_payload();
                        c->len = ws ? ws_data_frame(c->buf, c->s, p) : tcp_frame(c->buf, p);
                        c->off = 0;
                        mark_sent(c->s, p, now);
                    }
                    ssize_t w = write(c->fd, c->buf + c->off, c->len - c->off);
                    if (w < 0 && errno == EAGAIN)
                        break;
                    if (w <= 0)
                        die("write: %s", strerror(errno));
                    c->off += (size_t)w;
                }
            }
        }
    }
    report();
    for (int i = 0; i < n; i++) {
        close(T[i].fd);
        free(T[i].buf);
    }
    for (int i = 0; i < nm; i++) {
        close(M[i].fd);
        free(M[i].buf);
    }
    free(M);
    free(T);
    free(pf);
}

/* ---- forwarder ------------------------------------------------------------ */

typedef struct pair {
    uint8_t sid[RDV_UUID_BYTES];
    int fd[2];
    int refs; /* copy threads still running (one per direction) */
} pair;

typedef struct copy_dir {
    pair *p;
    int from, to;
} copy_dir;

/* Copies one direction of a pair until EOF or an error; the last of the
 * two threads closes both sockets and frees the pair. */
static void *copy_thread(void *arg)
{
    copy_dir *cd = arg;
    pair *p = cd->p;
    int from = cd->from, to = cd->to;
    free(cd);
    size_t cap = 256 * 1024;
    uint8_t *buf = malloc(cap);
    while (buf) {
        ssize_t r = read(from, buf, cap);
        if (r <= 0)
            break;
        const uint8_t *q = buf;
        size_t n = (size_t)r;
        while (n) {
            ssize_t w = write(to, q, n);
            if (w <= 0)
                goto out;
            q += w;
            n -= (size_t)w;
        }
    }
out:
    free(buf);
    shutdown(to, SHUT_WR);
    shutdown(from, SHUT_RD);
    if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(p->fd[0]);
        close(p->fd[1]);
        free(p);
    }
    return NULL;
}

static void run_forwarder(void)
{
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    (void)setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    if (inet_pton(AF_INET, O.host, &sa.sin_addr) != 1)
        die("bad host %s", O.host);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 256) != 0)
        die("listen on %s:%d: %s", O.host, O.port, strerror(errno));
    fprintf(stderr, "loadgen_relay: forwarder listening on %s:%d\n", O.host, O.port);
    pair **waiting = NULL;
    size_t nw = 0;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        uint8_t hello[1 + RDV_UUID_BYTES];
        size_t got = 0;
        while (got < sizeof hello) {
            ssize_t r = read(fd, hello + got, sizeof hello - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < sizeof hello) {
            close(fd);
            continue;
        }
        int role = hello[0] == 'B';
        pair *p = NULL;
        for (size_t i = 0; i < nw; i++)
            if (!memcmp(waiting[i]->sid, hello + 1, RDV_UUID_BYTES)) {
                p = waiting[i];
                waiting[i] = waiting[--nw];
                break;
            }
        if (!p) {
            p = calloc(1, sizeof *p);
            pair **nwp = realloc(waiting, (nw + 1) * sizeof *waiting);
            if (!p || !nwp)
                die("out of memory");
            waiting = nwp;
            memcpy(p->sid, hello + 1, RDV_UUID_BYTES);
            p->fd[0] = p->fd[1] = -1;
            waiting[nw++] = p;
            p->fd[role] = fd;
            continue;
        }
        p->fd[role] = fd;
        p->refs = 2;
        for (int d = 0; d < 2; d++) { /* A -> B, and B -> A for two-way runs */
            copy_dir *cd = malloc(sizeof *cd);
            pthread_t t;
            if (!cd)
                die("out of memory");
            *cd = (copy_dir){p, p->fd[d], p->fd[1 - d]};
            if (pthread_create(&t, NULL, copy_thread, cd) != 0)
                die("pthread_create failed");
            pthread_detach(t);
        }
    }
}

/* ---- windowed runs (issue 15's method) -------------------------------------
 * With --warmup S the run is one fixed-duration measurement instead of the
 * two phases above: traffic starts on every session, the first S seconds
 * are not measured, then --seconds are, then --drain seconds let what is in
 * flight arrive (nothing new is sent). Every figure is taken from counters
 * read at the two ends of the measured window, the same way for every path
 * (relay.sh's coturn runner, turn_uclient.py, reads uclient's counters the
 * same way): payload messages and bytes sent and received, the server's
 * (--server-pid), this generator's and everything else's CPU, and the
 * one-way delay of messages received inside the window.
 *
 * --directions 2 makes B send to A as well, the same way (TURN clients of
 * turnutils_uclient -y are always two-way). --interval-ms Z paces every
 * sender the way turnutils_uclient does: a 1 ms tick, one message due every
 * Z ms, at most --tick-max (50) sent per tick, so Z = 0 is 50 messages per
 * tick per sender (uclient -z 0). Without --interval-ms each sender keeps at
 * most --window payload bytes in flight (flow-controlled bulk, goal 6).
 *
 * Output: one line "RESULT key=value ..." on stdout. */

typedef struct wflow {          /* one direction of one session */
    uint64_t sent_msgs, sent_bytes, recv_msgs, recv_bytes;
    uint64_t gave_up;           /* window mode: bytes written off after a stall */
    int64_t due;                /* paced: next message due (ns) */
    int64_t progress;           /* window mode: last receive or write-off (ns) */
    int credit;                 /* paced: messages this sender may write now */
} wflow;

typedef struct wconn {
    int fd;
    session *s;
    wflow *out, *in;            /* the flow it sends (NULL: none) and receives */
    uint8_t *rx;
    size_t rx_len;
    uint8_t *tx;
    size_t tx_len, tx_off;
} wconn;

static struct {
    double warmup;              /* < 0: the two-phase run above */
    int directions;
    int interval_ms;            /* < 0: window flow control */
    int tick_max;
    int server_pid;
    double drain;
} W = {-1, 1, -1, 50, 0, 1.0};

/* Parses one option of the windowed run; false when a is not one. */
static bool window_opt(const char *a, const char *v)
{
    if (!strcmp(a, "--warmup"))
        W.warmup = atof(v);
    else if (!strcmp(a, "--directions"))
        W.directions = atoi(v);
    else if (!strcmp(a, "--interval-ms"))
        W.interval_ms = atoi(v);
    else if (!strcmp(a, "--tick-max"))
        W.tick_max = atoi(v);
    else if (!strcmp(a, "--server-pid"))
        W.server_pid = atoi(v);
    else if (!strcmp(a, "--drain"))
        W.drain = atof(v);
    else
        return false;
    return true;
}

#define W_TICK_NS 1000000

/* True when the sender of f may start one more message now. */
static bool w_may_send(wflow *f, int64_t now)
{
    if (W.interval_ms >= 0)
        return f->credit > 0;
    int64_t inflight = (int64_t)(f->sent_bytes - f->recv_bytes - f->gave_up);
    if (inflight >= (int64_t)O.window && now - f->progress > STALL_NS) {
        /* relay data is datagrams: what has not come by now was dropped */
        f->gave_up += (uint64_t)inflight;
        f->progress = now;
        inflight = 0;
    }
    return inflight < (int64_t)O.window;
}

/* One 1 ms tick of the uclient pacing for f. */
static void w_tick(wflow *f, int64_t now)
{
    int64_t step = (int64_t)W.interval_ms * 1000000;
    while (f->credit < W.tick_max && now >= f->due) {
        f->credit++;
        f->due += step;
    }
}

typedef struct wsnap {
    uint64_t sent_msgs, sent_bytes, recv_msgs, recv_bytes;
    double srv_cpu, gen_cpu, busy;
    int64_t t;
} wsnap;

static void w_snap(wsnap *x, const wflow *F, int nf)
{
    memset(x, 0, sizeof *x);
    for (int i = 0; i < nf; i++) {
        x->sent_msgs += F[i].sent_msgs;
        x->sent_bytes += F[i].sent_bytes;
        x->recv_msgs += F[i].recv_msgs;
        x->recv_bytes += F[i].recv_bytes;
    }
    x->srv_cpu = bench_proc_cpu_s(W.server_pid);
    x->gen_cpu = bench_self_cpu_s();
    x->busy = bench_machine_busy_s();
    x->t = now_ns();
}

/* Consumes complete frames from c->rx (ws: server frames; tcp: length-
 * prefixed); payloads count for c->in, and for the delay samples when
 * `measure`. Returns the bytes used. */
static size_t w_parse(wconn *c, bool ws, bool measure)
{
    size_t p = 0;
    for (;;) {
        const uint8_t *d;
        size_t n;
        if (ws) {
            int op;
            size_t pl, plen, fl = ws_frame_at(c->rx + p, c->rx_len - p, &op, &pl, &plen);
            if (!fl)
                break;
            d = c->rx + p + pl;
            p += fl;
            if (op == 9) {
                ws_send(c->fd, 10, d, plen);
                continue;
            }
            if (op == 10)
                continue;
            if (op != 2 || plen < RDV_RELAY_FRAME_HEADER + 8)
                die("unexpected frame (opcode %d): %.200s", op, op == 1 ? (const char *)d : "");
            d += RDV_RELAY_FRAME_HEADER;
            n = plen - RDV_RELAY_FRAME_HEADER;
        } else {
            uint32_t fl;
            if (c->rx_len - p < 4)
                break;
            memcpy(&fl, c->rx + p, 4);
            if (c->rx_len - p < 4 + (size_t)fl)
                break;
            d = c->rx + p + 4;
            n = fl;
            p += 4 + fl;
        }
        if (!c->in)
            die("data on a connection that receives none");
        int64_t ts, now = now_ns();
        memcpy(&ts, d, sizeof ts);
        c->in->recv_msgs++;
        c->in->recv_bytes += n;
        c->in->progress = now;
        if (measure)
            sample_add(&lat_load, now - ts);
    }
    return p;
}

/* Writes what c may send now; stops at EAGAIN. `may_start`: new messages
 * may begin (false while draining: only a frame already begun finishes). */
static void w_send(wconn *c, bool ws, bool may_start, int64_t now)
{
    wflow *f = c->out;
    for (;;) {
        if (c->tx_off == c->tx_len) {
            if (!may_start || !w_may_send(f, now))
                return;
            c->tx_len = ws ? ws_data_frame(c->tx, c->s, O.payload) : tcp_frame(c->tx, O.payload);
            c->tx_off = 0;
            f->sent_msgs++;
            f->sent_bytes += O.payload;
            if (W.interval_ms >= 0)
                f->credit--;
        }
        ssize_t w = write(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0)
            die("write: %s", strerror(errno));
        c->tx_off += (size_t)w;
    }
}

/* --channel: the main connections while the channels carry the data
 * (main_service answers their pings). */
static tconn *WM;
static int WMn;

/* Connects and opens every session (ws: authenticated nodes and relay
 * sessions; tcp: through the forwarder); fills C (2 per session). */
static void w_connect(wconn *C, wflow *F, bool ws)
{
    int n = 2 * O.sessions;
    tconn *T = calloc((size_t)n, sizeof *T);
    if (!T)
        die("out of memory");
    for (int i = 0; i < n; i++) {
        tconn *c = &T[i];
        c->s = &S[i / 2];
        c->role = i % 2;
        c->fd = tcp_connect();
        if (ws) {
            ws_handshake(c, i, RDV_WS_SUBPROTOCOL);
        } else {
            uint8_t hello[1 + RDV_UUID_BYTES];
            hello[0] = c->role ? 'B' : 'A';
            memcpy(hello + 1, c->s->sid, RDV_UUID_BYTES);
            write_all(c->fd, hello, sizeof hello);
        }
    }
    if (ws)
        ws_open_sessions(T);
    if (ws && O.channel) { /* the data moves to the relay channels */
        WM = calloc((size_t)n, sizeof *WM);
        if (!WM)
            die("out of memory");
        WMn = n;
        open_channels(T, WM, n);
        for (int i = 0; i < n; i++)
            if (fcntl(WM[i].fd, F_SETFL, O_NONBLOCK) != 0)
                die("fcntl: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        wconn *c = &C[i];
        wflow *ab = &F[2 * (i / 2)], *ba = &F[2 * (i / 2) + 1];
        c->fd = T[i].fd;
        c->s = T[i].s;
        if (i % 2 == 0) {
            c->out = ab;
            c->in = W.directions == 2 ? ba : NULL;
        } else {
            c->out = W.directions == 2 ? ba : NULL;
            c->in = ab;
        }
        c->rx = malloc(TCP_RXBUF);
        c->tx = malloc(14 + RDV_RELAY_FRAME_HEADER + O.payload);
        if (!c->rx || !c->tx)
            die("out of memory");
        if (fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0)
            die("fcntl: %s", strerror(errno));
    }
    free(T);
}

static void w_report(const wsnap *a, const wsnap *b, const wflow *F, int nf)
{
    double secs = (double)(b->t - a->t) / 1e9;
    uint64_t sm = b->sent_msgs - a->sent_msgs, rm = b->recv_msgs - a->recv_msgs;
    uint64_t rb = b->recv_bytes - a->recv_bytes;
    uint64_t run_sent = 0, run_recv = 0;
    for (int i = 0; i < nf; i++) {
        run_sent += F[i].sent_msgs;
        run_recv += F[i].recv_msgs;
    }
    double srv = W.server_pid > 0 ? (b->srv_cpu - a->srv_cpu) / secs : -1;
    double gen = (b->gen_cpu - a->gen_cpu) / secs;
    double other = (b->busy - a->busy) / secs - gen - (srv > 0 ? srv : 0);
    double p50 = pct_us(&lat_load, 0.5), p99 = pct_us(&lat_load, 0.99);
    printf("RESULT status=ok mode=%s sessions=%d directions=%d payload=%zu interval_ms=%d "
           "window=%zu secs=%.2f sent_msgs=%llu recv_msgs=%llu msgs_per_s=%.0f mbps=%.1f "
           "loss_pct=%.3f run_sent=%llu run_recv=%llu run_lost=%lld p50_us=%.0f p99_us=%.0f "
           "win_server_cores=%.2f win_gen_cores=%.2f win_other_cores=%.2f "
           "srv_us_per_msg=%.2f srv_us_per_mb=%.1f gen_us_per_msg=%.2f\n",
           O.mode, O.sessions, W.directions, O.payload, W.interval_ms,
           W.interval_ms < 0 ? O.window : 0, secs, (unsigned long long)sm,
           (unsigned long long)rm, (double)rm / secs, (double)rb / 1e6 / secs,
           sm ? 100.0 * (1.0 - (double)rm / (double)sm) : 0.0, (unsigned long long)run_sent,
           (unsigned long long)run_recv, (long long)run_sent - (long long)run_recv, p50, p99,
           srv, gen, other, rm && srv >= 0 ? srv * secs * 1e6 / (double)rm : -1,
           rb && srv >= 0 ? srv * secs * 1e6 / ((double)rb / 1e6) : -1,
           rm ? gen * secs * 1e6 / (double)rm : -1);
    fflush(stdout);
}

static void run_window(bool ws)
{
    if (W.directions != 1 && W.directions != 2)
        die("--directions is 1 or 2");
    if (W.tick_max < 1 || W.drain < 0)
        die("--tick-max must be >= 1 and --drain >= 0");
    int n = 2 * O.sessions, nf = 2 * O.sessions;
    wconn *C = calloc((size_t)n, sizeof *C);
    wflow *F = calloc((size_t)nf, sizeof *F);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    if (!C || !F || !pf)
        die("out of memory");
    w_connect(C, F, ws);
    if (WMn) {
        struct pollfd *npf = realloc(pf, (size_t)(n + WMn) * sizeof *pf);
        if (!npf)
            die("out of memory");
        pf = npf;
        for (int i = 0; i < WMn; i++) {
            pf[n + i].fd = WM[i].fd;
            pf[n + i].events = POLLIN;
        }
    }
    int64_t t0 = now_ns(), next_tick = t0;
    int64_t t_ws = t0 + (int64_t)(W.warmup * 1e9), t_we = t_ws + (int64_t)(O.seconds * 1e9);
    int64_t t_end = t_we + (int64_t)(W.drain * 1e9);
    for (int i = 0; i < nf; i++)
        F[i].due = F[i].progress = t0;
    fprintf(stderr, "loadgen_relay: %d session(s) open, %d direction(s); warm-up %.1f s\n",
            O.sessions, W.directions, W.warmup);
    wsnap a, b;
    int stage = 0; /* 0 warm-up, 1 measured, 2 drain */
    for (;;) {
        int64_t now = now_ns();
        if (stage == 0 && now >= t_ws) {
            lat_load.n = 0;
            w_snap(&a, F, nf);
            stage = 1;
        }
        if (stage == 1 && now >= t_we) {
            w_snap(&b, F, nf);
            stage = 2;
        }
        if (stage == 2) {
            bool all = true;
            for (int i = 0; i < nf; i++)
                all = all && F[i].recv_msgs >= F[i].sent_msgs;
            if (all || now >= t_end)
                break;
        }
        if (W.interval_ms >= 0 && now >= next_tick) {
            for (int i = 0; i < nf; i++)
                w_tick(&F[i], now);
            next_tick += W_TICK_NS;
            if (next_tick < now)
                next_tick = now + W_TICK_NS;
        }
        for (int i = 0; i < n; i++) {
            wconn *c = &C[i];
            pf[i].fd = c->fd;
            pf[i].events = POLLIN;
            if (c->out && (c->tx_off < c->tx_len || (stage < 2 && w_may_send(c->out, now))))
                pf[i].events |= POLLOUT;
        }
        int64_t wait = W.interval_ms >= 0 ? next_tick - now : W_TICK_NS;
        struct timespec ts = {0, wait > 0 ? (long)wait : 0};
        if (ppoll(pf, (nfds_t)(n + WMn), &ts, NULL) < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        now = now_ns();
        for (int i = 0; i < WMn; i++)
            if (pf[n + i].revents & (POLLIN | POLLHUP | POLLERR))
                main_service(&WM[i]);
        for (int i = 0; i < n; i++) {
            wconn *c = &C[i];
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(c->fd, c->rx + c->rx_len, TCP_RXBUF - c->rx_len);
                if (r == 0)
                    die("the %s closed a connection", ws ? "server" : "forwarder");
                if (r < 0 && errno != EAGAIN)
                    die("read: %s", strerror(errno));
                if (r > 0)
                    c->rx_len += (size_t)r;
                size_t p = w_parse(c, ws, stage == 1);
                memmove(c->rx, c->rx + p, c->rx_len - p);
                c->rx_len -= p;
            }
            if (c->out && (pf[i].revents & POLLOUT))
                w_send(c, ws, stage < 2, now);
        }
    }
    w_report(&a, &b, F, nf);
    for (int i = 0; i < n; i++) {
        close(C[i].fd);
        free(C[i].rx);
        free(C[i].tx);
    }
    for (int i = 0; i < WMn; i++) {
        close(WM[i].fd);
        free(WM[i].buf);
    }
    free(WM);
    free(C);
    free(F);
    free(pf);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen_relay --mode ws|tcp|forwarder --port N [--host 127.0.0.1]\n"
            "  [--sessions N] [--seconds S] [--payload BYTES] [--window BYTES]\n"
            "  [--lat-seconds S] [--lat-interval MS] [--lat-payload BYTES] [--channel]\n"
            "  windowed run (issue 15): --warmup S [--directions 1|2] [--interval-ms Z]\n"
            "  [--tick-max 50] [--server-pid PID] [--drain S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--channel")) {
            O.channel = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--mode"))
            O.mode = v;
        else if (!strcmp(a, "--host"))
            O.host = v;
        else if (!strcmp(a, "--port"))
            O.port = atoi(v);
        else if (!strcmp(a, "--sessions"))
            O.sessions = atoi(v);
        else if (!strcmp(a, "--seconds"))
            O.seconds = atof(v);
        else if (!strcmp(a, "--payload"))
            O.payload = (size_t)atol(v);
        else if (!strcmp(a, "--window"))
            O.window = (size_t)atol(v);
        else if (!strcmp(a, "--lat-seconds"))
            O.lat_seconds = atof(v);
        else if (!strcmp(a, "--lat-interval"))
            O.lat_interval_ms = atoi(v);
        else if (!strcmp(a, "--lat-payload"))
            O.lat_payload = (size_t)atol(v);
        else if (!window_opt(a, v))
            usage();
    }
    if (O.port <= 0 || O.sessions < 1 || O.payload < 8 || O.lat_payload < 8 ||
        O.lat_payload > O.payload || O.lat_interval_ms < 1)
        usage();
    if (sodium_init() < 0)
        die("libsodium cannot initialise");
    if (!strcmp(O.mode, "forwarder")) {
        run_forwarder();
        return 0;
    }
    S = calloc((size_t)O.sessions, sizeof *S);
    if (!S)
        die("out of memory");
    for (int i = 0; i < O.sessions; i++) {
        rdv_uuid_v4(S[i].sid_text);
        if (rdv_uuid_to_bytes(S[i].sid_text, S[i].sid) != 0)
            die("uuid");
    }
    if (strcmp(O.mode, "ws") && strcmp(O.mode, "tcp"))
        usage();
    if (W.warmup >= 0)
        run_window(!strcmp(O.mode, "ws"));
    else
        run_stream(!strcmp(O.mode, "ws"));
    return 0;
}
