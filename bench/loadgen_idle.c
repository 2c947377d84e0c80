/* loadgen_idle.c - workloads 2 (idle nodes) and 3 (churn).
 *
 * Idle (default): opens --conns K connections, at most --inflight at a time
 * in the handshake, each as its own node:
 *   --proto rdv     WebSocket to /v1 (subprotocol rendezvous.v1), challenge,
 *                   hello signed with the node's key (signed when the
 *                   challenge arrives: the nonce is per connection), welcome.
 *                   The hello is written in canonical form directly
 *                   (fast_hello); --slow-hello builds it with jansson and
 *                   the codec's rdv_sig_sign() instead (the same bytes).
 *   --proto peerjs  WebSocket to /peerjs?key=peerjs&id=ID&token=T, OPEN.
 * Prints a RESULT line (handshakes/s from the first connect to the last
 * welcome/OPEN, with wall-clock start/end so a script can combine several
 * processes), touches --ready-file, then holds the connections (answering
 * the server's pings) until SIGTERM/SIGINT/SIGUSR1 or --hold seconds, and
 * exits, which closes them all. A HOLD line reports connections the server
 * closed while held.
 *
 * --failover-ports P,P..: a connection the server closes while held
 * reconnects at once (same identity) to the next of these ports, round
 * robin (the other instances of a cluster: bench/cluster.sh kills one with
 * SIGKILL); the HOLD line then also counts the nodes back (welcome again)
 * and the wall-clock time the last one came back, and prints
 * "BACK back=N real_ns=T" at once whenever every lost node is back.
 *
 * Storm (SIGUSR2 while holding, bench/storm.sh): every connection that is
 * ready then is closed by this side (a WebSocket close) and reconnects at
 * once (rdv: the same identity; PeerJS: a new ID, as in churn), at most
 * --inflight handshakes at a time. When the last of them is back (welcome /
 * OPEN) it prints at once
 *   STORM dropped=N back=N failed=F start_real_ns=T0 end_real_ns=T1
 *         seconds=S handshakes_per_s=R hs_p50_ms=.. hs_p99_ms=..
 * (T0: the signal, T1: the last one back; failed: reconnects that did not
 * complete and were retried). One storm per process; a second SIGUSR2 is
 * ignored.
 *
 * --heartbeat-ms MS (PeerJS): every ready connection sends {"type":
 * "HEARTBEAT"} once per MS, spread over it (PeerJS closes a client silent
 * for 90 s; its own client sends one every 5 s). rendezvousd needs none
 * (its WebSocket pings are answered by lws).
 *
 * Churn (--churn SECONDS): K slots each loop connect -> authenticate (or
 * OPEN) -> close -> reconnect with the same identity (PeerJS: a new ID each
 * time, as PeerJS sends no OPEN to a second socket under an ID it still
 * holds), for SECONDS; prints
 * the completed handshakes per second (each is a presence update on
 * rendezvousd: online, then offline).
 *
 * Identities are deterministic: family --family, numbers --offset ..
 * --offset+K-1, so processes must use distinct offsets or families.
 * Every loop is bounded by --timeout (default 120 s) and --hold.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "common.h"
#include "schema/ids.h"
#include "schema/message.h"
#include "schema/sign.h"

enum { PROTO_RDV, PROTO_PEERJS };

typedef struct node {
    uint8_t sk[64];
    char id[RDV_NODE_ID_HEXLEN + 1];
    char *hello;
    size_t hello_len;
    bool closing;
    unsigned gen;   /* connects so far (PeerJS churn: a fresh ID each time) */
} node;

static struct {
    int proto;
    const char *host;
    int port;
    const char *name;
    int conns;
    int inflight;
    const char *src_ips;
    uint32_t family;
    uint32_t offset;
    double hold_s;
    double timeout_s;
    double churn_s;
    const char *ready_file;
    bool uv;
    bool quiet;
    const char *failover_ports;
    int heartbeat_ms;   /* --heartbeat-ms: PeerJS HEARTBEAT interval (0: none) */
    bool slow_hello;    /* --slow-hello: build each hello with jansson + JCS */
} opt = {PROTO_RDV, "127.0.0.1", 8080, "rendezvous", 1000, 256, NULL, 2, 0,
         60, 120, 0, NULL, true, false, NULL, 0, false};

static bench B;
static node *nodes;
static long ready, failed, lost_in_hold, errors, handshakes;
static bool holding, churning;
static bench_lat hs_lat;
static char first_error[400];
static volatile sig_atomic_t got_signal;
static int fo_ports[16], n_fo_ports, fo_next;
static long back, back_failed;
static int64_t back_last_real_ns, lost_first_real_ns;
/* the storm (SIGUSR2 while holding) */
static volatile sig_atomic_t storm_asked;
static bool storming, storm_done;
static long storm_n, storm_back, storm_failed;
static int64_t storm_real0, storm_mono0;
static bench_lat storm_lat;

static void path_cb(bconn *c, char *buf, size_t size)
{
    node *n = &nodes[c->idx];
    n->gen++;
    if (opt.proto == PROTO_RDV)
        snprintf(buf, size, "%s", RDV_WS_PATH);
    else if (!churning && !storming)
        snprintf(buf, size, "/peerjs?key=peerjs&id=%s&token=tk%u", n->id, opt.offset);
    else /* PeerJS answers a reconnect under a live ID without OPEN: use a new ID */
        snprintf(buf, size, "/peerjs?key=peerjs&id=%.56s-%u&token=tk%u", n->id, n->gen,
                 opt.offset);
}

static void note_error(const char *msg, size_t len)
{
    errors++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%.*s", (int)(len > 300 ? 300 : len), msg);
}

static void storm_report(void);

static void became_ready(bconn *c)
{
    bench_conn_ready(c);
    if (storming) {
        storm_back++;
        bench_lat_add(&storm_lat, c->t_ready_ns - c->t_start_ns);
        if (storm_back == storm_n)
            storm_report();
        return;
    }
    if (holding) { /* a failed-over node back on another instance */
        back++;
        back_last_real_ns = bench_real_ns();
        if (back == lost_in_hold) { /* every lost node is back: say so now */
            printf("BACK back=%ld real_ns=%lld\n", back, (long long)back_last_real_ns);
            fflush(stdout);
        }
        return;
    }
    ready++;
    handshakes++;
    bench_lat_add(&hs_lat, c->t_ready_ns - c->t_start_ns);
    if (churning) {
        nodes[c->idx].closing = true;
        bench_close(c);
    }
}

/* The string value of "key" in a flat JSON text (the challenge): copies
 * it to out when it is 1..cap-1 plain characters ([A-Za-z0-9._-], nothing
 * to escape); false otherwise. */
static bool plain_value(const char *msg, size_t len, const char *key, char *out, size_t cap)
{
    char pat[32];
    int pn = snprintf(pat, sizeof pat, "\"%.20s\":\"", key);
    const char *p = memmem(msg, len, pat, (size_t)pn);
    if (!p)
        return false;
    p += pn;
    size_t i = 0;
    for (; p + i < msg + len && p[i] != '"'; i++) {
        char ch = p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok || i + 1 >= cap)
            return false;
        out[i] = ch;
    }
    if (!i || p + i >= msg + len)
        return false;
    out[i] = '\0';
    return true;
}

/* The signed hello for a challenge, written directly in canonical form
 * (PROTOCOL.md 4: keys sorted, no spaces) and signed over the domain tag,
 * a 0 byte and the body without its signature: the bytes rdv_sig_sign()
 * signs, without the jansson tree, JCS pass and dump of the slow path
 * (~60k instructions a handshake). False when the challenge's nonce or
 * server would need escaping (the caller then takes the slow path). */
static bool fast_hello(node *n, const char *msg, size_t len)
{
    char nonce[2 * RDV_NONCE_BYTES + 1], server[128];
    if (!plain_value(msg, len, "nonce", nonce, sizeof nonce) ||
        !plain_value(msg, len, "server", server, sizeof server))
        return false;
    static const char tag[] = RDV_DOMAIN_PREFIX "hello"; /* + its NUL: the 0 separator */
    char in[512];
    memcpy(in, tag, sizeof tag);
    long long ts = (long long)rdv_now_ms();
    int bn = snprintf(in + sizeof tag, sizeof in - sizeof tag,
                      "{\"nodeID\":\"%s\",\"nonce\":\"%s\",\"server\":\"%s\",\"software\":"
                      "\"rdv-bench/1\",\"timestamp\":%lld}",
                      n->id, nonce, server, ts);
    if (bn < 0 || (size_t)bn >= sizeof in - sizeof tag)
        return false;
    uint8_t sig[RDV_SIG_BYTES];
    char hex[RDV_SIG_HEXLEN + 1];
    crypto_sign_detached(sig, NULL, (const unsigned char *)in, sizeof tag + (size_t)bn, n->sk);
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    char out[640];
    int on = snprintf(out, sizeof out,
                      "{\"hello\":{\"nodeID\":\"%s\",\"nonce\":\"%s\",\"server\":\"%s\","
                      "\"signature\":\"%s\",\"software\":\"rdv-bench/1\",\"timestamp\":%lld}}",
                      n->id, nonce, server, hex, ts);
    if (on < 0 || (size_t)on >= sizeof out)
        return false;
    free(n->hello);
    n->hello = malloc((size_t)on + 1);
    if (!n->hello)
        bench_die("out of memory");
    memcpy(n->hello, out, (size_t)on + 1);
    n->hello_len = (size_t)on;
    return true;
}

static void on_message(bconn *c, const char *msg, size_t len)
{
    node *n = &nodes[c->idx];
    if (opt.proto == PROTO_PEERJS) {
        if (memmem(msg, len, "\"type\":\"OPEN\"", 13))
            became_ready(c);
        else if (!memmem(msg, len, "HEARTBEAT", 9))
            note_error(msg, len);
        return;
    }
    if (len > 14 && !memcmp(msg, "{\"challenge\":", 13) && !opt.slow_hello &&
        fast_hello(n, msg, len)) {
        bench_want_write(c);
    } else if (len > 14 && !memcmp(msg, "{\"challenge\":", 13)) {
        rdv_msg m;
        rdv_msg_error e;
        if (rdv_msg_parse((const uint8_t *)msg, len, RDV_MAX_MESSAGE_BYTES, &m, &e) != 0) {
            note_error(msg, len);
            return;
        }
        const char *nonce = rdv_msg_get_str(m.body, "nonce");
        const char *server = rdv_msg_get_str(m.body, "server");
        json_t *h = json_pack("{s:s, s:s, s:s, s:I, s:s}", "nodeID", n->id, "nonce",
                              nonce ? nonce : "", "server", server ? server : "", "timestamp",
                              (json_int_t)rdv_now_ms(), "software", "rdv-bench/1");
        rdv_msg_free(&m);
        if (!h || rdv_sig_sign(RDV_MSG_HELLO, h, n->sk) != 0)
            bench_die("cannot sign hello");
        json_t *env = rdv_msg_wrap(RDV_MSG_HELLO, h);
        free(n->hello);
        n->hello = rdv_msg_dump(env, &n->hello_len);
        json_decref(env);
        bench_want_write(c);
    } else if (len > 12 && !memcmp(msg, "{\"welcome\":", 11)) {
        became_ready(c);
    } else {
        note_error(msg, len);
    }
}

static void on_writable(bconn *c)
{
    node *n = &nodes[c->idx];
    if (n->hello) {
        if (bench_send(c, n->hello, n->hello_len) != 0)
            bench_die("hello write failed");
        free(n->hello);
        n->hello = NULL;
    }
}

static void on_closed(bconn *c, const char *why, bool established)
{
    node *n = &nodes[c->idx];
    bool was_ready = c->t_ready_ns != 0 && established;
    if (churning) {
        if (!n->closing) {
            failed++;
            if (!first_error[0])
                snprintf(first_error, sizeof first_error, "%s", why);
        }
        n->closing = false;
        if (!B.stop)
            bench_queue_connect(&B, c->idx); /* storm: reconnect at once */
        return;
    }
    if (storming && !B.stop) {
        /* the storm: dropped by us (or a reconnect that failed): again, at once */
        n->closing = false;
        if (!was_ready)
            storm_failed++;
        if (storm_failed < 10L * opt.conns) /* bounded */
            bench_queue_connect(&B, c->idx);
        return;
    }
    if (holding && n_fo_ports > 0 && !B.stop) {
        /* failover: this connection (lost, or a reconnect that failed)
         * tries the next instance, at once */
        if (was_ready) {
            lost_in_hold++;
            if (!lost_first_real_ns)
                lost_first_real_ns = bench_real_ns();
        } else {
            back_failed++;
        }
        if (back_failed < 10L * opt.conns) { /* bounded */
            B.conn_port[c->idx] = fo_ports[fo_next++ % n_fo_ports];
            bench_queue_connect(&B, c->idx);
        }
        return;
    }
    if (holding && was_ready) {
        lost_in_hold++;
        if (!first_error[0])
            snprintf(first_error, sizeof first_error, "lost in hold: %s", why);
        return;
    }
    if (!was_ready) {
        failed++;
        if (!first_error[0])
            snprintf(first_error, sizeof first_error, "%s", why);
    } else {
        ready--; /* closed before the hold */
        lost_in_hold++;
    }
}

static const bench_ops ops = {path_cb, NULL, on_message, on_writable, on_closed};

static bool all_settled(bench *b)
{
    (void)b;
    return ready + failed >= opt.conns;
}

/* Prints the STORM line (once). */
static void storm_report(void)
{
    if (storm_done)
        return;
    storm_done = true;
    int64_t real1 = bench_real_ns();
    double el = (double)(bench_mono_ns() - storm_mono0) / 1e9;
    double p50, p99, p999, mx;
    bench_lat_summary(&storm_lat, &p50, &p99, &p999, &mx);
    printf("STORM dropped=%ld back=%ld failed=%ld start_real_ns=%lld end_real_ns=%lld "
           "seconds=%.3f handshakes_per_s=%.0f hs_p50_ms=%.2f hs_p99_ms=%.2f status=%s\n",
           storm_n, storm_back, storm_failed, (long long)storm_real0, (long long)real1, el,
           el > 0 ? (double)storm_back / el : 0, p50 / 1e3, p99 / 1e3,
           storm_back == storm_n ? "ok" : "incomplete");
    fflush(stdout);
}

/* The storm: closes every ready connection; on_closed() reconnects each. */
static void storm_start(void)
{
    storm_real0 = bench_real_ns();
    storm_mono0 = bench_mono_ns();
    storm_n = 0;
    for (int i = 0; i < opt.conns; i++) {
        if (B.conns[i].state == BC_READY) {
            storm_n++;
            nodes[i].closing = true;
            bench_close(&B.conns[i]);
        }
    }
    storming = true;
    if (!storm_n)
        storm_report();
}

/* bench_run's check while holding: starts the storm when SIGUSR2 came. */
static bool hold_check(bench *b)
{
    (void)b;
    if (storm_asked && !storming && !storm_done)
        storm_start();
    return false;
}

static void on_storm_sig(int s)
{
    (void)s;
    storm_asked = 1;
}

static void on_sig(int s)
{
    (void)s;
    got_signal = 1;
    B.stop = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen_idle [--proto rdv|peerjs] [--host IP] [--port N] [--name NAME]\n"
            "         [--conns K] [--inflight C] [--src-ips IP,IP..] [--family F]\n"
            "         [--offset O] [--hold S] [--timeout S] [--ready-file PATH]\n"
            "         [--churn S] [--poll] [--quiet] [--failover-ports P,P..]\n"
            "         [--heartbeat-ms MS] [--slow-hello]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"proto", 1, 0, 'P'},   {"host", 1, 0, 'h'},       {"port", 1, 0, 'p'},
        {"name", 1, 0, 'n'},    {"conns", 1, 0, 'K'},      {"inflight", 1, 0, 'C'},
        {"src-ips", 1, 0, 's'}, {"family", 1, 0, 'f'},     {"offset", 1, 0, 'o'},
        {"hold", 1, 0, 'H'},    {"timeout", 1, 0, 't'},    {"ready-file", 1, 0, 'R'},
        {"churn", 1, 0, 'c'},   {"poll", 0, 0, 'L'},       {"quiet", 0, 0, 'q'},
        {"failover-ports", 1, 0, 'F'}, {"heartbeat-ms", 1, 0, 'B'},
        {"slow-hello", 0, 0, 'Y'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'P':
            if (!strcmp(optarg, "rdv"))
                opt.proto = PROTO_RDV;
            else if (!strcmp(optarg, "peerjs"))
                opt.proto = PROTO_PEERJS;
            else
                usage();
            break;
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'n': opt.name = optarg; break;
        case 'K': opt.conns = atoi(optarg); break;
        case 'C': opt.inflight = atoi(optarg); break;
        case 's': opt.src_ips = optarg; break;
        case 'f': opt.family = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'o': opt.offset = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'H': opt.hold_s = atof(optarg); break;
        case 't': opt.timeout_s = atof(optarg); break;
        case 'R': opt.ready_file = optarg; break;
        case 'c': opt.churn_s = atof(optarg); break;
        case 'L': opt.uv = false; break;
        case 'q': opt.quiet = true; break;
        case 'F': opt.failover_ports = optarg; break;
        case 'B': opt.heartbeat_ms = atoi(optarg); break;
        case 'Y': opt.slow_hello = true; break;
        default: usage();
        }
    }
    if (opt.conns < 1 || opt.conns > 30000 || opt.inflight < 1 || opt.hold_s < 0 ||
        opt.hold_s > 600 || opt.timeout_s <= 0 || opt.timeout_s > 3600 || opt.churn_s < 0 ||
        opt.churn_s > 600)
        usage();
    if (sodium_init() < 0)
        bench_die("libsodium");
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGUSR1, on_sig);
    signal(SIGUSR2, on_storm_sig);
    signal(SIGPIPE, SIG_IGN);

    long nofile = bench_raise_nofile();
    if (nofile < opt.conns + 64)
        bench_die("open-file limit %ld is too low for %d connections", nofile, opt.conns);
    nodes = calloc((size_t)opt.conns, sizeof *nodes);
    if (!nodes)
        bench_die("out of memory");
    for (int i = 0; i < opt.conns; i++) {
        uint8_t pk[32];
        bench_identity(opt.family, opt.offset + (uint32_t)i, pk, nodes[i].sk);
        rdv_node_id_from_pk(pk, nodes[i].id);
    }
    bench_lat_init(&hs_lat, opt.churn_s > 0 ? 4000000 : (size_t)opt.conns);
    if (bench_init(&B, &ops, opt.host, opt.port,
                   opt.proto == PROTO_RDV ? RDV_WS_SUBPROTOCOL : NULL, opt.src_ips, opt.conns,
                   opt.inflight, opt.uv) != 0)
        bench_die("cannot create the lws context");
    if (opt.proto == PROTO_PEERJS)
        bench_heartbeat(&B, opt.heartbeat_ms, "{\"type\":\"HEARTBEAT\"}");
    if (opt.failover_ports) {
        char *copy = strdup(opt.failover_ports), *parts[16];
        int n = bench_split(copy, parts, 16);
        for (int i = 0; i < n; i++)
            if (atoi(parts[i]) > 0 && atoi(parts[i]) < 65536)
                fo_ports[n_fo_ports++] = atoi(parts[i]);
        free(copy);
        B.conn_port = calloc((size_t)opt.conns, sizeof *B.conn_port);
        if (!n_fo_ports || !B.conn_port)
            usage();
    }
    const char *proto = opt.proto == PROTO_RDV ? "rdv" : "peerjs";
    double p50, p99, p999, mx;

    if (opt.churn_s > 0) {
        churning = true;
        int64_t t0 = bench_mono_ns();
        for (int i = 0; i < opt.conns; i++)
            bench_queue_connect(&B, i);
        (void)bench_run(&B, t0 + (int64_t)(opt.churn_s * 1e9), NULL);
        double el = (double)(bench_mono_ns() - t0) / 1e9;
        B.stop = 1;
        bench_lat_summary(&hs_lat, &p50, &p99, &p999, &mx);
        printf("RESULT mode=churn proto=%s slots=%d seconds=%.2f handshakes=%ld "
               "handshakes_per_s=%.0f failed=%ld errors=%ld hs_p50_ms=%.2f hs_p99_ms=%.2f\n",
               proto, opt.conns, el, handshakes, (double)handshakes / el, failed, errors,
               p50 / 1e3, p99 / 1e3);
        if (first_error[0] && !opt.quiet)
            fprintf(stderr, "loadgen_idle: first failure: %s\n", first_error);
        fflush(stdout);
        bench_destroy(&B);
        return 0;
    }

    int64_t t0 = bench_mono_ns();
    int64_t real0 = bench_real_ns();
    for (int i = 0; i < opt.conns; i++)
        bench_queue_connect(&B, i);
    int rc = bench_run(&B, t0 + (int64_t)(opt.timeout_s * 1e9), all_settled);
    int64_t last_ready = 0;
    for (int i = 0; i < opt.conns; i++)
        if (B.conns[i].t_ready_ns > last_ready)
            last_ready = B.conns[i].t_ready_ns;
    if (!last_ready)
        last_ready = bench_mono_ns();
    double el = (double)(last_ready - t0) / 1e9;
    int64_t real1 = real0 + (last_ready - t0);
    bench_lat_summary(&hs_lat, &p50, &p99, &p999, &mx);
    printf("RESULT mode=idle proto=%s conns=%d ready=%ld failed=%ld errors=%ld seconds=%.3f "
           "handshakes_per_s=%.0f hs_p50_ms=%.2f hs_p99_ms=%.2f start_real_ns=%lld "
           "end_real_ns=%lld status=%s\n",
           proto, opt.conns, ready, failed, errors, el, el > 0 ? (double)ready / el : 0,
           p50 / 1e3, p99 / 1e3, (long long)real0, (long long)real1,
           rc ? "timeout" : B.stop ? "stopped" : "ok");
    fflush(stdout);
    if (first_error[0] && !opt.quiet)
        fprintf(stderr, "loadgen_idle: first failure: %s\n", first_error);
    if (opt.ready_file) {
        int fd = open(opt.ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            close(fd);
    }
    if (!B.stop && opt.hold_s > 0) {
        holding = true;
        first_error[0] = '\0';
        bench_lat_init(&storm_lat, (size_t)opt.conns);
        (void)bench_run(&B, bench_mono_ns() + (int64_t)(opt.hold_s * 1e9), hold_check);
        if (storming && !storm_done)
            storm_report(); /* ended before every node was back */
    }
    printf("HOLD proto=%s held=%ld lost=%ld end=%s back=%ld back_retries=%ld "
           "lost_first_real_ns=%lld back_last_real_ns=%lld\n",
           proto, ready - lost_in_hold + back, lost_in_hold, got_signal ? "signal" : "hold_timeout",
           back, back_failed, (long long)lost_first_real_ns, (long long)back_last_real_ns);
    if (first_error[0] && !opt.quiet)
        fprintf(stderr, "loadgen_idle: %s\n", first_error);
    fflush(stdout);
    B.stop = 1;
    bench_destroy(&B);
    return 0;
}
