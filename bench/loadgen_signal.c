/* loadgen_signal.c - workload 1 (signaling): N node pairs exchange offers
 * through the server; messages/s and one-way latency.
 *
 * Each pair (A, B) has W messages in flight ("balls"): all W start at A;
 * a node that receives one sends the next message of the pair to its
 * partner, so every message received triggers one in the other direction
 * until the pair has exchanged its share of the total. Window 1 is pure
 * ping-pong.
 *
 * --proto rdv     rendezvous.v1 at ws://HOST:PORT/v1: every node
 *                 authenticates (challenge -> signed hello -> welcome) and
 *                 sends signed `offer`s. All offers are built and signed
 *                 with the repository's codec BEFORE the run (two threads),
 *                 so signing never limits the rate. Each carries an unknown
 *                 field "benchSeq" (covered by the signature): the message's
 *                 index. The sender records the send time of that index
 *                 just before writing it; the receiver, in the same
 *                 process, subtracts: one-way latency on one clock. The
 *                 timestamps are the signing time plus --ts-ahead-ms
 *                 (default 20000, inside the server's +-30 s ingress
 *                 window), so the batch stays fresh for ~50 s after signing.
 * --proto peerjs  the PeerJS server at ws://HOST:PORT/peerjs?key=peerjs&
 *                 id=ID&token=T: waits for {"type":"OPEN"}, then sends
 *                 {"type":"OFFER","dst":ID,"payload":BODY} where BODY is
 *                 the same offer body (same size, signature field filled
 *                 with random hex, not signed: PeerJS does not check).
 *
 * --port2 P       the B node of every pair connects to port P instead
 *                 (a second instance of a cluster: every message, both
 *                 ways, then crosses from one instance to the other;
 *                 bench/cluster.sh). --server2-pid and --redis-pid add
 *                 server2_cores and redis_cores to the RESULT line.
 *
 * --seconds S     fixed-duration run (issue 15): measure S seconds after the
 *                 warm-up, then stop; --messages must cover the whole run
 *                 (status=exhausted otherwise). The win_* figures of the
 *                 RESULT line are the CPU of the server, this process and
 *                 everything else during those S seconds, srv_us_per_msg
 *                 the server's CPU per message in them.
 * --unsigned      rdv offers carry a random signature instead of a real
 *                 one (for --verify-signatures off: nothing to sign, every
 *                 message still unique, so none is a replay).
 * --pad-to B      PeerJS frames are made B bytes long, the same bytes on the
 *                 wire as the rdv offer: their payload loses connectionInfo
 *                 when the envelope makes it longer, then gets a "pad".
 *
 * --phases N     splits the measured part into N windows (bench/storm.sh):
 *                 the first starts after the warm-up; each SIGUSR2 ends
 *                 the current one and starts the next; the N-th SIGUSR2
 *                 ends the run. Each window gets a line on stdout before
 *                 RESULT (latency of the messages received in it, msgs/s,
 *                 the CPU of the server, this process and everything else
 *                 in it):
 *   PHASE i=.. seconds=.. received=.. msgs_per_s=.. p50_us=.. p99_us=..
 *         p999_us=.. max_us=.. server_cores=.. loadgen_cores=.. other_cores=..
 *                 A run that ends before its N-th SIGUSR2 (messages used
 *                 up, --timeout) has status=exhausted.
 * --heartbeat-ms MS (PeerJS) every node sends {"type":"HEARTBEAT"} once per
 *                 MS (PeerJS closes a client silent for 90 s; its client
 *                 sends one every 5 s). Not counted as messages.
 * --measure-file PATH  created when the warm-up is over (and a line
 *                 "MEASURING real_ns=T" printed), so a script can time its
 *                 windows from there.
 *
 * The first --warmup messages (default M/20) are not measured.
 * --rate R paces the sends to R messages/s in total (token bucket, 1 ms
 * ticks) instead of as fast as the window allows (the churn workload uses
 * it). --tick-us T sets the tick: with 1e6 / R, one message leaves per
 * tick instead of R / 1000 back to back each millisecond (the paced
 * latency figure). The tick is a timerfd on an absolute CLOCK_MONOTONIC
 * schedule watched by the libuv loop (bench_tick): the generator sleeps in
 * epoll_wait between ticks, wakes on each, adds R x T tokens per elapsed
 * period and wakes that many waiting nodes, oldest first (tcp_pair's paced
 * load has the same loop). With --poll the tick is an lws timer instead,
 * in whole ms: under 1 ms that loop spins between ticks (a core at 100 %,
 * whose softirq work then stalls: p99 is the generator's), so do not
 * combine --poll with a sub-ms tick for figures. Every loop is bounded:
 * --timeout (default 120 s) ends the run.
 *
 * Output: a human summary on stderr and one line on stdout:
 *   RESULT proto=.. pairs=.. window=.. messages=.. msg_bytes=.. elapsed_s=..
 *          msgs_per_s=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=..
 *          loadgen_cores=.. server_cores=.. other_cores=.. port2=..
 *          server2_cores=.. redis_cores=.. run_s=.. received=..
 * (received: messages delivered in the run, warm-up included, over run_s
 * seconds, the window of the cores figures; -1 cores: no such PID given.
 * cores = CPU seconds per second of the run: this process, --server-pid,
 * and everything else on the machine, from /proc/stat; other_cores shows
 * interference from unrelated work.)
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "schema/ids.h"
#include "schema/message.h"
#include "schema/sign.h"

enum { PROTO_RDV, PROTO_PEERJS };

/* benchSeq = SEQ_BASE + the message's index: always 10 digits, so every
 * offer of a direction has the same length and layout (templates below). */
#define SEQ_BASE 1000000000L
#define SID_HOLDER "00000000-0000-4000-8000-000000000000"

typedef struct node {
    int pair, side;              /* side 0 = A, 1 = B */
    uint8_t pk[32], sk[64];
    char id[RDV_NODE_ID_HEXLEN + 1];
    char token[24];
    int balls;                   /* messages this node owes its partner */
    int next_k;                  /* next pre-built message index of its direction */
    char *hello;                 /* pending hello text (rdv) */
    size_t hello_len;
    bool blocked;                /* waiting for rate tokens */
} node;

static struct {
    int proto;
    const char *host;
    int port;
    const char *name;
    int pairs;
    long messages;
    long warmup;
    int window;
    double rate;
    double timeout_s;
    const char *src_ips;
    uint32_t family;
    long ts_ahead_ms;
    int sign_threads;
    bool quiet;
    bool uv;
    int server_pid;
    int port2;
    int server2_pid;
    int redis_pid;
    double seconds;      /* --seconds: measure this long after the warm-up */
    bool unsigned_sig;   /* --unsigned: random signatures (verify off) */
    int pad_to;          /* --pad-to: PeerJS frames padded to this many bytes */
    long tick_us;        /* --tick-us: the pacing tick */
    int phases;          /* --phases: measured windows, advanced by SIGUSR2 */
    const char *measure_file; /* --measure-file: touched when measuring starts */
    int heartbeat_ms;    /* --heartbeat-ms: PeerJS HEARTBEAT interval (0: none) */
} opt = {PROTO_RDV, "127.0.0.1", 8080, "rendezvous", 100, 200000, -1, 10, 0, 120, NULL, 1,
         20000, 2, false, true, 0, 0, 0, 0, 0, false, 0, 1000, 0, NULL, 0};

static bench B;
static node *nodes;          /* 2 * pairs; conn idx = node idx */
static long quota;           /* messages per pair (received) */
static long per_dir;         /* pre-built messages per (pair, direction) */
static char **msg_text;      /* [pairs * 2 * per_dir] */
static uint16_t *msg_len;
static int64_t *send_ns;     /* send time of each message index */
static long *pair_sent;
static long received, measured, errors, ready_nodes;
static long long ts_signed_ms;
static int64_t t_first_send, t_measure_start, t_last_recv, t_stop;
static double win_srv0, win_lg0, win_busy0; /* CPU seconds at t_measure_start */
static bench_lat lat;
static double tokens, token_cap;
static int *blocked_list;
static int n_blocked;
static lws_sorted_usec_list_t sul_tick;
static int64_t last_tick_ns;
static bool started;
static long err_counts[8];
static char first_error[512];

/* --phases: measured windows (PHASE lines) */
#define MAX_PHASES 8
typedef struct phase {
    bench_lat lat;
    long received;
    int64_t t0, t1;                 /* mono ns */
    double srv0, lg0, busy0;        /* CPU seconds at t0 */
    double srv, lg, busy;           /* CPU seconds in the window */
} phase;
static phase phases[MAX_PHASES];
static int cur_phase = -1;          /* -1: warm-up */
static volatile sig_atomic_t phase_asked;

/* ---- building the messages --------------------------------------------- */

static json_t *offer_body(const node *from, const node *to, long seq, int64_t ts_ms)
{
    char sid[RDV_UUID_STRLEN + 1];
    rdv_uuid_v4(sid);
    return json_pack("{s:s, s:s, s:s, s:I, s:{s:s, s:i, s:s, s:i, s:s}, s:I}", "fromNodeID",
                     from->id, "toNodeID", to->id, "sessionID", sid, "timestamp",
                     (json_int_t)ts_ms, "connectionInfo", "publicIP", "203.0.113.5",
                     "publicPort", 41641, "localIP", "10.0.0.5", "localPort", 51820, "natType",
                     "symmetric", "benchSeq", (json_int_t)(SEQ_BASE + seq));
}

/* One offer text per (pair, direction), built and canonicalised once, with
 * placeholders at fixed offsets: every message is a copy with its
 * sessionID, benchSeq and signature written in (and signed over the same
 * bytes the server checks), ~20x faster than building each with jansson. */
typedef struct tmpl {
    char *text;
    size_t len, sid_off, seq_off, sig_off; /* of the values */
} tmpl;
static tmpl *tmpls; /* [pairs * 2] */

static void build_templates(int64_t ts_ms)
{
    tmpls = calloc((size_t)opt.pairs * 2, sizeof *tmpls);
    if (!tmpls)
        bench_die("out of memory");
    for (long pd = 0; pd < (long)opt.pairs * 2; pd++) {
        int pair = (int)(pd / 2), dir = (int)(pd % 2);
        const node *from = &nodes[2 * pair + dir], *to = &nodes[2 * pair + 1 - dir];
        json_t *body = offer_body(from, to, 0, ts_ms);
        char zeros[RDV_SIG_HEXLEN + 1];
        memset(zeros, '0', RDV_SIG_HEXLEN);
        zeros[RDV_SIG_HEXLEN] = '\0';
        json_object_set_new(body, "signature", json_string(zeros));
        json_object_set_new(body, "sessionID", json_string(SID_HOLDER));
        tmpl *t = &tmpls[pd];
        if (opt.proto == PROTO_RDV) {
            json_t *env = rdv_msg_wrap(RDV_MSG_OFFER, body);
            t->text = rdv_msg_dump(env, &t->len);
            json_decref(env);
        } else {
            /* the same body in PeerJS' envelope, padded to --pad-to bytes */
            json_t *m = json_pack("{s:s, s:s, s:o}", "type", "OFFER", "dst", to->id,
                                  "payload", body);
            t->text = m ? json_dumps(m, JSON_COMPACT) : NULL;
            t->len = t->text ? strlen(t->text) : 0;
            if (t->text && opt.pad_to > 0 && t->len > (size_t)opt.pad_to) {
                /* PeerJS' envelope makes the same body longer than our
                 * frame: leave out connectionInfo (PeerJS reads nothing
                 * of the payload), then pad to the size */
                json_object_del(body, "connectionInfo");
                free(t->text);
                t->text = json_dumps(m, JSON_COMPACT);
                t->len = t->text ? strlen(t->text) : 0;
            }
            const size_t pad_overhead = strlen(",\"pad\":\"\"");
            if (t->text && opt.pad_to > 0 && t->len + pad_overhead <= (size_t)opt.pad_to) {
                size_t n = (size_t)opt.pad_to - t->len - pad_overhead;
                char *pad = malloc(n + 1);
                if (!pad)
                    bench_die("out of memory");
                memset(pad, 'p', n);
                pad[n] = '\0';
                json_object_set_new(body, "pad", json_string(pad));
                free(pad);
                free(t->text);
                t->text = json_dumps(m, JSON_COMPACT);
                t->len = t->text ? strlen(t->text) : 0;
            }
            json_decref(m);
        }
        char *sid = t->text ? strstr(t->text, SID_HOLDER) : NULL;
        char *seq = t->text ? strstr(t->text, "\"benchSeq\":") : NULL;
        char *sig = t->text ? strstr(t->text, "\"signature\":\"") : NULL;
        if (!sid || !seq || !sig)
            bench_die("cannot build the offer template");
        t->sid_off = (size_t)(sid - t->text);
        t->seq_off = (size_t)(seq - t->text) + strlen("\"benchSeq\":");
        t->sig_off = (size_t)(sig - t->text) + strlen("\"signature\":\"");
    }
}

/* Offer number g from the template of (pair, dir); NULL on failure. */
static char *offer_from_template(const tmpl *t, const node *from, long g, size_t *len)
{
    char *text = malloc(t->len + 1);
    if (!text)
        return NULL;
    memcpy(text, t->text, t->len + 1);
    char sid[RDV_UUID_STRLEN + 1], seq[24];
    rdv_uuid_v4(sid);
    memcpy(text + t->sid_off, sid, RDV_UUID_STRLEN);
    snprintf(seq, sizeof seq, "%010ld", SEQ_BASE + g);
    memcpy(text + t->seq_off, seq, 10);
    uint8_t sig[RDV_SIG_BYTES];
    char hex[RDV_SIG_HEXLEN + 1];
    if (opt.unsigned_sig || opt.proto != PROTO_RDV) {
        randombytes_buf(sig, sizeof sig);
    } else {
        /* signing input: domain tag, type, 0, the body minus its signature
         * member (canonical: PROTOCOL.md 4) */
        static const char tag[] = RDV_DOMAIN_PREFIX "offer";
        size_t body_off = strlen("{\"offer\":");
        size_t cut = t->sig_off - strlen(",\"signature\":\"");
        size_t cut_end = t->sig_off + RDV_SIG_HEXLEN + 1;
        uint8_t in[4096];
        size_t n = 0;
        if (t->len > sizeof in - sizeof tag) {
            free(text);
            return NULL;
        }
        memcpy(in, tag, sizeof tag); /* with its NUL: the 0x00 separator */
        n = sizeof tag;
        memcpy(in + n, text + body_off, cut - body_off);
        n += cut - body_off;
        memcpy(in + n, text + cut_end, t->len - 1 - cut_end);
        n += t->len - 1 - cut_end;
        crypto_sign_detached(sig, NULL, in, n, from->sk);
    }
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    memcpy(text + t->sig_off, hex, RDV_SIG_HEXLEN);
    *len = t->len;
    return text;
}

typedef struct build_job {
    long from, to;  /* message index range */
    int64_t ts_ms;
    int rc;
} build_job;

static void *build_range(void *arg)
{
    build_job *j = arg;
    for (long g = j->from; g < j->to; g++) {
        long pd = g / per_dir;
        int pair = (int)(pd / 2), dir = (int)(pd % 2);
        const node *from = &nodes[2 * pair + dir], *to = &nodes[2 * pair + 1 - dir];
        {
            size_t tl = 0;
            char *tt = offer_from_template(&tmpls[pd], from, g, &tl);
            if (!tt || tl > 65535) {
                free(tt);
                j->rc = -1;
                return NULL;
            }
            msg_text[g] = tt;
            msg_len[g] = (uint16_t)tl;
            continue;
        }
        json_t *body = offer_body(from, to, g, j->ts_ms);
        if (!body) {
            j->rc = -1;
            return NULL;
        }
        size_t len = 0;
        char *text = NULL;
        if (opt.proto == PROTO_RDV && opt.unsigned_sig) {
            /* the server does not check it (--verify-signatures off): a
             * random one, different for every message (no replays) */
            uint8_t fake[64];
            char hex[129];
            randombytes_buf(fake, sizeof fake);
            sodium_bin2hex(hex, sizeof hex, fake, sizeof fake);
            json_object_set_new(body, "signature", json_string(hex));
            json_t *env = rdv_msg_wrap(RDV_MSG_OFFER, body);
            text = rdv_msg_dump(env, &len);
            json_decref(env);
        } else if (opt.proto == PROTO_RDV) {
            if (rdv_sig_sign(RDV_MSG_OFFER, body, from->sk) != 0) {
                json_decref(body);
                j->rc = -1;
                return NULL;
            }
            json_t *env = rdv_msg_wrap(RDV_MSG_OFFER, body);
            text = rdv_msg_dump(env, &len);
            json_decref(env);
        } else {
            uint8_t fake[64];
            char hex[129];
            randombytes_buf(fake, sizeof fake);
            sodium_bin2hex(hex, sizeof hex, fake, sizeof fake);
            json_object_set_new(body, "signature", json_string(hex));
            json_t *m = json_pack("{s:s, s:s, s:o}", "type", "OFFER", "dst", to->id, "payload",
                                  body);
            text = m ? json_dumps(m, JSON_COMPACT) : NULL;
            len = text ? strlen(text) : 0;
            /* --pad-to: a "pad" member makes the frame exactly that long
             * (equal bytes on the wire for both servers) */
            const size_t pad_overhead = strlen(",\"pad\":\"\"");
            if (text && opt.pad_to > 0 && len + pad_overhead <= (size_t)opt.pad_to) {
                size_t n = (size_t)opt.pad_to - len - pad_overhead;
                char *pad = malloc(n + 1);
                if (pad) {
                    memset(pad, 'p', n);
                    pad[n] = '\0';
                    json_object_set_new(body, "pad", json_string(pad));
                    free(pad);
                    free(text);
                    text = json_dumps(m, JSON_COMPACT);
                    len = text ? strlen(text) : 0;
                }
            }
            json_decref(m);
        }
        if (!text || len > 65535) {
            j->rc = -1;
            return NULL;
        }
        msg_text[g] = text;
        msg_len[g] = (uint16_t)len;
    }
    j->rc = 0;
    return NULL;
}

static void build_all(void)
{
    long total = (long)opt.pairs * 2 * per_dir;
    msg_text = calloc((size_t)total, sizeof *msg_text);
    msg_len = calloc((size_t)total, sizeof *msg_len);
    send_ns = calloc((size_t)total, sizeof *send_ns);
    if (!msg_text || !msg_len || !send_ns)
        bench_die("out of memory");
    int nt = opt.sign_threads < 1 ? 1 : opt.sign_threads > 16 ? 16 : opt.sign_threads;
    pthread_t th[16];
    build_job jobs[16];
    int64_t t0 = bench_mono_ns();
    ts_signed_ms = rdv_now_ms();
    build_templates(ts_signed_ms + opt.ts_ahead_ms);
    for (int t = 0; t < nt; t++) {
        jobs[t].from = total * t / nt;
        jobs[t].to = total * (t + 1) / nt;
        jobs[t].ts_ms = ts_signed_ms + opt.ts_ahead_ms;
        jobs[t].rc = -1;
        if (pthread_create(&th[t], NULL, build_range, &jobs[t]) != 0)
            bench_die("pthread_create failed");
    }
    for (int t = 0; t < nt; t++) {
        pthread_join(th[t], NULL);
        if (jobs[t].rc != 0)
            bench_die("building messages failed");
    }
    if (!opt.quiet)
        fprintf(stderr, "built %ld %s messages (%u bytes each) in %.2f s with %d threads\n",
                total, opt.proto == PROTO_RDV ? "signed" : "PeerJS", msg_len[0],
                (double)(bench_mono_ns() - t0) / 1e9, nt);
}

/* ---- connection callbacks ---------------------------------------------- */

static void path_cb(bconn *c, char *buf, size_t size)
{
    node *n = &nodes[c->idx];
    if (opt.proto == PROTO_RDV)
        snprintf(buf, size, "%s", RDV_WS_PATH);
    else
        snprintf(buf, size, "/peerjs?key=peerjs&id=%s&token=%s", n->id, n->token);
}

static void note_error(const char *msg, size_t len, int kind)
{
    errors++;
    if (kind >= 0 && kind < 8)
        err_counts[kind]++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%.*s", (int)(len > 400 ? 400 : len), msg);
}

static void give_ball(node *n)
{
    n->balls++;
    bench_want_write(&B.conns[n - nodes]);
}

static long parse_seq(const char *msg, size_t len)
{
    const char *key = "\"benchSeq\":";
    const char *p = memmem(msg, len, key, strlen(key));
    if (!p)
        return -1;
    p += strlen(key);
    long v = 0;
    const char *end = msg + len;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    return v - SEQ_BASE;
}

/* Starts window i (--phases) now. */
static void phase_begin(int i, int64_t now)
{
    phase *p = &phases[i];
    p->t0 = now;
    p->srv0 = bench_proc_cpu_s(opt.server_pid);
    p->lg0 = bench_self_cpu_s();
    p->busy0 = bench_machine_busy_s();
    cur_phase = i;
}

/* Ends the current window now. */
static void phase_end(int64_t now)
{
    if (cur_phase < 0 || cur_phase >= opt.phases)
        return;
    phase *p = &phases[cur_phase];
    p->t1 = now;
    p->srv = bench_proc_cpu_s(opt.server_pid) - p->srv0;
    p->lg = bench_self_cpu_s() - p->lg0;
    p->busy = bench_machine_busy_s() - p->busy0;
}

/* The warm-up is over: the first window starts; tells the script. */
static void measuring_started(int64_t now)
{
    if (opt.phases > 0)
        phase_begin(0, now);
    printf("MEASURING real_ns=%lld\n", (long long)bench_real_ns());
    fflush(stdout);
    if (opt.measure_file) {
        FILE *f = fopen(opt.measure_file, "w");
        if (f)
            fclose(f);
    }
}

/* Called from the loop: a SIGUSR2 ends the window, the last one the run. */
static void phase_check(void)
{
    if (!opt.phases || cur_phase < 0 || t_stop)
        return;
    while (phase_asked > cur_phase) {
        int64_t now = bench_mono_ns();
        phase_end(now);
        if (cur_phase + 1 >= opt.phases) {
            t_stop = now;
            cur_phase = opt.phases;
            return;
        }
        phase_begin(cur_phase + 1, now);
    }
}

/* Prints the PHASE lines. */
static void phase_print(void)
{
    for (int i = 0; i < opt.phases && i < MAX_PHASES; i++) {
        phase *p = &phases[i];
        double p50, p99, p999, mx;
        bench_lat_summary(&p->lat, &p50, &p99, &p999, &mx);
        double el = p->t1 > p->t0 ? (double)(p->t1 - p->t0) / 1e9 : 0;
        double srv = el > 0 && opt.server_pid > 0 ? p->srv / el : -1;
        double lg = el > 0 ? p->lg / el : 0;
        double oth = el > 0 ? (p->busy - p->lg - (p->srv > 0 ? p->srv : 0)) / el : 0;
        printf("PHASE i=%d seconds=%.3f received=%ld msgs_per_s=%.0f p50_us=%.0f p99_us=%.0f "
               "p999_us=%.0f max_us=%.0f server_cores=%.2f loadgen_cores=%.2f "
               "other_cores=%.2f\n",
               i, el, p->received, el > 0 ? (double)p->received / el : 0, p50, p99, p999, mx,
               srv, lg, oth < 0 ? 0 : oth);
        bench_lat_free(&p->lat);
    }
}

static void on_offer(bconn *c, const char *msg, size_t len)
{
    int64_t now = bench_mono_ns();
    long g = parse_seq(msg, len);
    long total = (long)opt.pairs * 2 * per_dir;
    if (g < 0 || g >= total || !send_ns[g]) {
        note_error(msg, len, 7);
        return;
    }
    received++;
    t_last_recv = now;
    if (received == opt.warmup) {
        t_measure_start = now;
        win_srv0 = bench_proc_cpu_s(opt.server_pid);
        win_lg0 = bench_self_cpu_s();
        win_busy0 = bench_machine_busy_s();
        measuring_started(now);
    }
    if (t_stop)
        return; /* --seconds is over: nothing more is sent or counted */
    if (received > opt.warmup) {
        measured++;
        bench_lat_add(&lat, now - send_ns[g]);
        if (cur_phase >= 0 && cur_phase < opt.phases) {
            phases[cur_phase].received++;
            bench_lat_add(&phases[cur_phase].lat, now - send_ns[g]);
        }
    }
    node *n = &nodes[c->idx];
    if (pair_sent[n->pair] < quota)
        give_ball(n);
}

static void rdv_challenge(bconn *c, const char *msg, size_t len)
{
    node *n = &nodes[c->idx];
    rdv_msg m;
    rdv_msg_error e;
    if (rdv_msg_parse((const uint8_t *)msg, len, RDV_MAX_MESSAGE_BYTES, &m, &e) != 0)
        bench_die("bad challenge: %.*s", (int)len, msg);
    const char *nonce = rdv_msg_get_str(m.body, "nonce");
    const char *server = rdv_msg_get_str(m.body, "server");
    json_t *h = json_pack("{s:s, s:s, s:s, s:I, s:s}", "nodeID", n->id, "nonce", nonce ? nonce : "",
                          "server", server ? server : "", "timestamp",
                          (json_int_t)rdv_now_ms(), "software", "rdv-bench/1");
    rdv_msg_free(&m);
    if (!h || rdv_sig_sign(RDV_MSG_HELLO, h, n->sk) != 0)
        bench_die("cannot sign hello");
    json_t *env = rdv_msg_wrap(RDV_MSG_HELLO, h);
    free(n->hello);
    n->hello = rdv_msg_dump(env, &n->hello_len);
    json_decref(env);
    bench_want_write(c);
}

static void on_message(bconn *c, const char *msg, size_t len)
{
    if (opt.proto == PROTO_RDV) {
        if (len > 10 && !memcmp(msg, "{\"offer\":", 9)) {
            on_offer(c, msg, len);
        } else if (len > 14 && !memcmp(msg, "{\"challenge\":", 13)) {
            rdv_challenge(c, msg, len);
        } else if (len > 12 && !memcmp(msg, "{\"welcome\":", 11)) {
            bench_conn_ready(c);
            ready_nodes++;
        } else if (len > 10 && !memcmp(msg, "{\"error\":", 9)) {
            int kind = memmem(msg, len, "stale_timestamp", 15) ? 1
                       : memmem(msg, len, "rate_limited", 12) ? 2
                       : memmem(msg, len, "slow_consumer", 13) ? 3 : 0;
            note_error(msg, len, kind);
        } else if (len > 11 && !memcmp(msg, "{\"queued\":", 10)) {
            note_error(msg, len, 4);
        } else if (memmem(msg, len, "\"benchSeq\":", 11)) {
            on_offer(c, msg, len); /* not canonical order? still an offer */
        }
    } else {
        if (memmem(msg, len, "\"type\":\"OFFER\"", 14)) {
            on_offer(c, msg, len);
        } else if (memmem(msg, len, "\"type\":\"OPEN\"", 13)) {
            bench_conn_ready(c);
            ready_nodes++;
        } else {
            note_error(msg, len, 5);
        }
    }
}

static bool take_token(void)
{
    if (opt.rate <= 0)
        return true;
    if (tokens >= 1.0) {
        tokens -= 1.0;
        return true;
    }
    return false;
}

static void on_writable(bconn *c)
{
    node *n = &nodes[c->idx];
    if (n->hello) {
        if (bench_send(c, n->hello, n->hello_len) != 0)
            bench_die("hello write failed");
        free(n->hello);
        n->hello = NULL;
        return;
    }
    if (!started)
        return;
    int dir = n->side;
    int sent_here = 0;
    while (n->balls > 0 && pair_sent[n->pair] < quota && sent_here < 16) {
        if (!take_token()) {
            if (!n->blocked) {
                n->blocked = true;
                blocked_list[n_blocked++] = c->idx;
            }
            return;
        }
        if (n->next_k >= per_dir)
            bench_die("pair %d side %d ran out of pre-built messages", n->pair, n->side);
        long g = ((long)n->pair * 2 + dir) * per_dir + n->next_k++;
        send_ns[g] = bench_mono_ns();
        if (!t_first_send)
            t_first_send = send_ns[g];
        if (bench_send(c, msg_text[g], msg_len[g]) != 0)
            bench_die("write failed");
        free(msg_text[g]);
        msg_text[g] = NULL;
        n->balls--;
        pair_sent[n->pair]++;
        sent_here++;
        if (lws_send_pipe_choked(c->wsi))
            break;
    }
    if (n->balls > 0 && pair_sent[n->pair] < quota)
        bench_want_write(c);
}

static void on_closed(bconn *c, const char *why, bool established)
{
    (void)established;
    if (!B.stop) {
        fprintf(stderr, "loadgen_signal: connection %d lost: %s\n", c->idx, why);
        errors++;
        B.stop = 1;
    }
}

static const bench_ops ops = {path_cb, NULL, on_message, on_writable, on_closed};

/* Adds `add` tokens (capped at token_cap) and wakes as many waiting nodes,
 * oldest first. */
static void tick_tokens(double add)
{
    tokens += add;
    if (tokens > token_cap)
        tokens = token_cap;
    int wake = (int)tokens;
    if (wake > n_blocked)
        wake = n_blocked;
    for (int i = 0; i < wake; i++) {
        nodes[blocked_list[i]].blocked = false;
        bench_want_write(&B.conns[blocked_list[i]]);
    }
    memmove(blocked_list, blocked_list + wake, (size_t)(n_blocked - wake) * sizeof *blocked_list);
    n_blocked -= wake;
}

/* The timerfd tick (libuv loop): exactly R x T tokens per period. */
static void tick_fd_cb(bench *b, uint64_t periods)
{
    (void)b;
    tick_tokens(opt.rate * (double)opt.tick_us * (double)periods / 1e6);
}

/* The lws timer tick (--poll): tokens for the time since the last one. */
static void tick_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    int64_t now = bench_mono_ns();
    tick_tokens(opt.rate * (double)(now - last_tick_ns) / 1e9);
    last_tick_ns = now;
    lws_sul_schedule(B.ctx, 0, &sul_tick, tick_cb, opt.tick_us);
}

static bool all_ready(bench *b)
{
    (void)b;
    return ready_nodes >= 2L * opt.pairs;
}

static bool all_done(bench *b)
{
    (void)b;
    phase_check();
    if (opt.seconds > 0 && t_measure_start && !t_stop &&
        bench_mono_ns() - t_measure_start >= (int64_t)(opt.seconds * 1e9))
        t_stop = bench_mono_ns();
    return t_stop || received >= quota * opt.pairs;
}

static void on_sig(int s)
{
    (void)s;
    B.stop = 1;
}

static void on_phase_sig(int s)
{
    (void)s;
    phase_asked++;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen_signal [--proto rdv|peerjs] [--host IP] [--port N] [--name NAME]\n"
            "         [--pairs N] [--messages M] [--warmup N] [--window W] [--rate R]\n"
            "         [--timeout S] [--src-ips IP,IP..] [--family F] [--ts-ahead-ms MS]\n"
            "         [--sign-threads T] [--quiet] [--poll] [--server-pid PID]\n"
            "         [--port2 N] [--server2-pid PID] [--redis-pid PID]\n"
            "         [--seconds S] [--unsigned] [--pad-to BYTES] [--tick-us T]\n"
            "         [--phases N] [--measure-file PATH] [--heartbeat-ms MS]\n"
            "  --poll        use lws's poll() loop instead of libuv (epoll); its --rate\n"
            "                tick is an lws timer in whole ms (spins under 1 ms)\n"
            "  --rate R      R messages/s in total, paced by a timerfd tick (epoll)\n"
            "  --tick-us T   the pacing tick (default 1000; 1e6 / R: one message a tick)\n"
            "  --server-pid  report the server's CPU use during the run (server_cores)\n"
            "  --port2       B nodes connect to this port (another cluster instance)\n"
            "  --server2-pid, --redis-pid  also report their CPU use (server2_cores,\n"
            "                redis_cores)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"proto", 1, 0, 'P'},    {"host", 1, 0, 'h'},         {"port", 1, 0, 'p'},
        {"name", 1, 0, 'n'},     {"pairs", 1, 0, 'N'},        {"messages", 1, 0, 'M'},
        {"warmup", 1, 0, 'u'},   {"window", 1, 0, 'W'},       {"rate", 1, 0, 'r'},
        {"timeout", 1, 0, 't'},  {"src-ips", 1, 0, 's'},      {"family", 1, 0, 'f'},
        {"ts-ahead-ms", 1, 0, 'a'}, {"sign-threads", 1, 0, 'T'}, {"quiet", 0, 0, 'q'},
        {"poll", 0, 0, 'L'},     {"server-pid", 1, 0, 'S'}, {"port2", 1, 0, '2'},
        {"server2-pid", 1, 0, 'X'}, {"redis-pid", 1, 0, 'Y'}, {"seconds", 1, 0, 'D'},
        {"unsigned", 0, 0, 'U'}, {"pad-to", 1, 0, 'Z'}, {"tick-us", 1, 0, 'K'},
        {"phases", 1, 0, 'G'},   {"measure-file", 1, 0, 'F'}, {"heartbeat-ms", 1, 0, 'J'},
        {0, 0, 0, 0}};
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
        case 'N': opt.pairs = atoi(optarg); break;
        case 'M': opt.messages = atol(optarg); break;
        case 'u': opt.warmup = atol(optarg); break;
        case 'W': opt.window = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 't': opt.timeout_s = atof(optarg); break;
        case 's': opt.src_ips = optarg; break;
        case 'f': opt.family = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'a': opt.ts_ahead_ms = atol(optarg); break;
        case 'T': opt.sign_threads = atoi(optarg); break;
        case 'q': opt.quiet = true; break;
        case 'L': opt.uv = false; break;
        case 'S': opt.server_pid = atoi(optarg); break;
        case '2': opt.port2 = atoi(optarg); break;
        case 'X': opt.server2_pid = atoi(optarg); break;
        case 'Y': opt.redis_pid = atoi(optarg); break;
        case 'D': opt.seconds = atof(optarg); break;
        case 'U': opt.unsigned_sig = true; break;
        case 'Z': opt.pad_to = atoi(optarg); break;
        case 'K': opt.tick_us = atol(optarg); break;
        case 'G': opt.phases = atoi(optarg); break;
        case 'F': opt.measure_file = optarg; break;
        case 'J': opt.heartbeat_ms = atoi(optarg); break;
        default: usage();
        }
    }
    if (opt.pairs < 1 || opt.pairs > 5000 || opt.messages < 1 || opt.messages > 20000000 ||
        opt.window < 1 || opt.window > 1000 || opt.timeout_s <= 0 || opt.timeout_s > 3600 ||
        opt.ts_ahead_ms < 0 || opt.ts_ahead_ms > 29000 || opt.port2 < 0 || opt.port2 > 65535 ||
        opt.tick_us < 10 || opt.tick_us > 1000000 || opt.phases < 0 || opt.phases > MAX_PHASES)
        usage();
    if (opt.warmup < 0)
        opt.warmup = opt.messages / 20;
    if (sodium_init() < 0)
        bench_die("libsodium");
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, on_phase_sig);

    long total_msgs = opt.messages + opt.warmup;
    quota = (total_msgs + opt.pairs - 1) / opt.pairs;
    per_dir = quota / 2 + opt.window + 2;
    int n_nodes = 2 * opt.pairs;
    nodes = calloc((size_t)n_nodes, sizeof *nodes);
    pair_sent = calloc((size_t)opt.pairs, sizeof *pair_sent);
    blocked_list = calloc((size_t)n_nodes, sizeof *blocked_list);
    if (!nodes || !pair_sent || !blocked_list)
        bench_die("out of memory");
    for (int i = 0; i < n_nodes; i++) {
        nodes[i].pair = i / 2;
        nodes[i].side = i % 2;
        bench_identity(opt.family, (uint32_t)i, nodes[i].pk, nodes[i].sk);
        rdv_node_id_from_pk(nodes[i].pk, nodes[i].id);
        snprintf(nodes[i].token, sizeof nodes[i].token, "t%08x", randombytes_random());
    }
    bench_lat_init(&lat, (size_t)opt.messages + 16);
    for (int i = 0; i < opt.phases; i++)
        bench_lat_init(&phases[i].lat, (size_t)opt.messages + 16);
    build_all();

    int64_t deadline = bench_mono_ns() + (int64_t)(opt.timeout_s * 1e9);
    if (bench_init(&B, &ops, opt.host, opt.port,
                   opt.proto == PROTO_RDV ? RDV_WS_SUBPROTOCOL : NULL, opt.src_ips, n_nodes,
                   64, opt.uv) != 0)
        bench_die("cannot create the lws context");
    if (opt.proto == PROTO_PEERJS)
        bench_heartbeat(&B, opt.heartbeat_ms, "{\"type\":\"HEARTBEAT\"}");
    if (opt.port2 > 0) {
        B.conn_port = calloc((size_t)n_nodes, sizeof *B.conn_port);
        if (!B.conn_port)
            bench_die("out of memory");
        for (int i = 0; i < n_nodes; i++)
            B.conn_port[i] = nodes[i].side ? opt.port2 : opt.port;
    }
    for (int i = 0; i < n_nodes; i++)
        bench_queue_connect(&B, i);
    last_tick_ns = bench_mono_ns();
    token_cap = opt.rate > 0 ? opt.rate / 100.0 + 1.0 : 0;
    /* the tick: a timerfd in the libuv loop (libuv's own timers are in
     * whole ms, and a sub-ms one re-armed from its callback never lets the
     * loop poll); lws' timer in whole ms on the poll() loop (--poll) */
    if (opt.rate > 0 && opt.uv && bench_tick(&B, opt.tick_us, tick_fd_cb) != 0)
        bench_die("cannot start the %ld us tick: %s", opt.tick_us, strerror(errno));
    if (opt.rate > 0 && !opt.uv)
        lws_sul_schedule(B.ctx, 0, &sul_tick, tick_cb, opt.tick_us);
    int rc = bench_run(&B, deadline, all_ready);
    if (rc != 0 || B.stop) {
        fprintf(stderr, "loadgen_signal: only %ld of %d nodes ready (%s)\n", ready_nodes, n_nodes,
                rc ? "timeout" : "stopped");
        if (first_error[0])
            fprintf(stderr, "first error: %s\n", first_error);
        printf("RESULT proto=%s status=not_ready ready=%ld errors=%ld\n",
               opt.proto == PROTO_RDV ? "rdv" : "peerjs", ready_nodes, errors);
        bench_destroy(&B);
        return 1;
    }
    if (!opt.quiet)
        fprintf(stderr, "%d nodes ready; %.1f s since signing\n", n_nodes,
                (double)(rdv_now_ms() - ts_signed_ms) / 1e3);
    started = true;
    double cpu0 = bench_self_cpu_s();
    double srv0 = bench_proc_cpu_s(opt.server_pid);
    double srv2_0 = bench_proc_cpu_s(opt.server2_pid);
    double redis0 = bench_proc_cpu_s(opt.redis_pid);
    double busy0 = bench_machine_busy_s();
    int64_t run0 = bench_mono_ns();
    for (int p = 0; p < opt.pairs; p++) {
        nodes[2 * p].balls = opt.window;
        bench_want_write(&B.conns[2 * p]);
    }
    rc = bench_run(&B, deadline, all_done);
    double run_s = (double)(bench_mono_ns() - run0) / 1e9;
    double lg_cores = (bench_self_cpu_s() - cpu0) / run_s;
    double srv_cores = opt.server_pid > 0 ? (bench_proc_cpu_s(opt.server_pid) - srv0) / run_s : -1;
    double srv2_cores =
        opt.server2_pid > 0 ? (bench_proc_cpu_s(opt.server2_pid) - srv2_0) / run_s : -1;
    double redis_cores = opt.redis_pid > 0 ? (bench_proc_cpu_s(opt.redis_pid) - redis0) / run_s : -1;
    double busy_cores = (bench_machine_busy_s() - busy0) / run_s;
    double other_cores = busy_cores - lg_cores - (srv_cores > 0 ? srv_cores : 0) -
                         (srv2_cores > 0 ? srv2_cores : 0) - (redis_cores > 0 ? redis_cores : 0);
    /* the measured window: --seconds after the warm-up, or up to the last
     * message; CPU of the server, the generator and everything else in it */
    int64_t end = t_stop ? t_stop : t_last_recv ? t_last_recv : bench_mono_ns();
    double win_srv = bench_proc_cpu_s(opt.server_pid) - win_srv0;
    double win_lg = bench_self_cpu_s() - win_lg0;
    double win_busy = bench_machine_busy_s() - win_busy0;
    if (!t_measure_start)
        t_measure_start = t_first_send;
    double elapsed = (double)(end - t_measure_start) / 1e9;
    double w_srv = elapsed > 0 && opt.server_pid > 0 ? win_srv / elapsed : -1;
    double w_lg = elapsed > 0 ? win_lg / elapsed : 0;
    double w_other = elapsed > 0 ? (win_busy - win_lg - (win_srv > 0 ? win_srv : 0)) / elapsed : 0;
    double us_msg = measured > 0 && win_srv > 0 ? win_srv * 1e6 / (double)measured : -1;
    bool short_run = (opt.seconds > 0 || opt.phases > 0) && !t_stop; /* ran out first */
    double rate = elapsed > 0 ? (double)measured / elapsed : 0;
    double p50, p99, p999, mx;
    bench_lat_summary(&lat, &p50, &p99, &p999, &mx);
    const char *status = rc ? "timeout" : B.stop ? "stopped" : short_run ? "exhausted" : "ok";
    if (!opt.quiet) {
        fprintf(stderr,
                "%s: %ld messages measured (+%ld warm-up) in %.3f s = %.0f msgs/s; one-way "
                "latency p50 %.0f us p99 %.0f us p999 %.0f us max %.0f us; errors %ld; %s\n",
                opt.proto == PROTO_RDV ? "rdv" : "peerjs", measured, opt.warmup, elapsed, rate,
                p50, p99, p999, mx, errors, status);
        if (errors)
            fprintf(stderr,
                    "errors: other %ld stale %ld rate_limited %ld slow_consumer %ld queued %ld "
                    "unexpected %ld bad_seq %ld; first: %s\n",
                    err_counts[0], err_counts[1], err_counts[2], err_counts[3], err_counts[4],
                    err_counts[5], err_counts[7], first_error);
    }
    if (opt.phases > 0) {
        if (cur_phase >= 0 && cur_phase < opt.phases)
            phase_end(end); /* cut short: close the open window */
        phase_print();
    }
    printf("RESULT proto=%s status=%s pairs=%d window=%d rate=%.0f messages=%ld msg_bytes=%u "
           "elapsed_s=%.3f msgs_per_s=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f "
           "errors=%ld loadgen_cores=%.2f server_cores=%.2f other_cores=%.2f port2=%d "
           "server2_cores=%.3f redis_cores=%.3f run_s=%.3f received=%ld win_server_cores=%.2f "
           "win_loadgen_cores=%.2f win_other_cores=%.2f srv_us_per_msg=%.2f\n",
           opt.proto == PROTO_RDV ? "rdv" : "peerjs", status, opt.pairs, opt.window, opt.rate,
           measured, msg_len[0] ? msg_len[0] : 0, elapsed, rate, p50, p99, p999, mx, errors, lg_cores, srv_cores,
           other_cores < 0 ? 0 : other_cores, opt.port2, srv2_cores, redis_cores, run_s,
           received, w_srv, w_lg, w_other < 0 ? 0 : w_other, us_msg);
    fflush(stdout);
    B.stop = 1;
    lws_sul_cancel(&sul_tick);
    bench_destroy(&B);
    long total = (long)opt.pairs * 2 * per_dir;
    for (long g = 0; g < total; g++)
        free(msg_text[g]);
    bench_lat_free(&lat);
    return strcmp(status, "ok") ? 1 : 0;
}
