/* loadgen_lookup.c - a presence probe for bench/cluster.sh (failover).
 *
 * One node (identity --family F number --self, not one of the watched)
 * connects to ws://HOST:PORT/v1, authenticates, then every --interval-ms
 * looks up a fixed sample of node IDs: --count IDs of family --ids-family,
 * numbers --ids-offset, --ids-offset + --ids-stride, ... (the deterministic
 * identities of loadgen_idle), in `lookup`s of 64. A round is complete when
 * every batch has its `presence`; a new round starts no sooner than
 * --interval-ms after the previous one started.
 *
 * Output on stdout, one line per round whose online count differs from the
 * previous round's (and the first):
 *   P real_ns=.. online=.. of=.. round=..
 * (real_ns: CLOCK_REALTIME when the round's last answer arrived, so a script
 * can compare it with the time it killed an instance), then at exit
 *   RESULT rounds=.. errors=.. status=..
 * --ready-file PATH is created after the first complete round. Bounded:
 * the process exits after --duration seconds (or on SIGTERM/SIGINT), and
 * lookups never overlap (one round in flight at a time).
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "schema/ids.h"
#include "schema/message.h"
#include "schema/sign.h"

#define BATCH 64

static struct {
    const char *host;
    int port;
    uint32_t family, self;
    uint32_t ids_family, ids_offset, ids_stride;
    int count;
    int interval_ms;
    double duration_s;
    const char *ready_file;
} opt = {"127.0.0.1", 8080, 98, 0, 7, 0, 1, 256, 20, 30, NULL};

static bench B;
static uint8_t self_sk[64];
static char self_id[RDV_NODE_ID_HEXLEN + 1];
static char (*ids)[RDV_NODE_ID_HEXLEN + 1];
static char **batch_text;
static size_t *batch_len;
static int n_batches;
static char *hello;
static size_t hello_len;
static bool ready, round_open;
static int answered, online_in_round, last_online = -1, next_batch;
static long rounds, errors;
static int64_t round_start_ns;
static lws_sorted_usec_list_t sul_tick;

static void path_cb(bconn *c, char *buf, size_t size)
{
    (void)c;
    snprintf(buf, size, "%s", RDV_WS_PATH);
}

static void build_batches(void)
{
    n_batches = (opt.count + BATCH - 1) / BATCH;
    if (n_batches < 1 || n_batches > 64)
        bench_die("bad --count");
    batch_text = calloc((size_t)n_batches, sizeof *batch_text);
    batch_len = calloc((size_t)n_batches, sizeof *batch_len);
    if (!batch_text || !batch_len)
        bench_die("out of memory");
    for (int b = 0; b < n_batches; b++) {
        json_t *arr = json_array();
        for (int i = b * BATCH; i < opt.count && i < (b + 1) * BATCH; i++)
            json_array_append_new(arr, json_string(ids[i]));
        char rid[32];
        snprintf(rid, sizeof rid, "b%d", b);
        json_t *m = json_pack("{s:{s:o, s:s}}", "lookup", "nodeIDs", arr, "requestID", rid);
        batch_text[b] = m ? json_dumps(m, JSON_COMPACT) : NULL;
        if (!batch_text[b])
            bench_die("cannot build a lookup");
        batch_len[b] = strlen(batch_text[b]);
        json_decref(m);
    }
}

static void on_presence(const char *msg, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(msg, len, 0, &je);
    json_t *peers = json_object_get(json_object_get(root, "presence"), "peers");
    if (!json_is_array(peers) || !round_open) {
        errors++;
        json_decref(root);
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        if (json_is_true(json_object_get(p, "online")))
            online_in_round++;
    }
    json_decref(root);
    if (++answered < n_batches)
        return;
    round_open = false;
    rounds++;
    if (online_in_round != last_online) {
        printf("P real_ns=%lld online=%d of=%d round=%ld\n", (long long)bench_real_ns(),
               online_in_round, opt.count, rounds);
        fflush(stdout);
        last_online = online_in_round;
    }
    if (rounds == 1 && opt.ready_file) {
        int fd = open(opt.ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            close(fd);
    }
}

static void on_message(bconn *c, const char *msg, size_t len)
{
    if (len > 14 && !memcmp(msg, "{\"challenge\":", 13)) {
        rdv_msg m;
        rdv_msg_error e;
        if (rdv_msg_parse((const uint8_t *)msg, len, RDV_MAX_MESSAGE_BYTES, &m, &e) != 0)
            bench_die("bad challenge: %.*s", (int)len, msg);
        const char *nonce = rdv_msg_get_str(m.body, "nonce");
        const char *server = rdv_msg_get_str(m.body, "server");
        json_t *h = json_pack("{s:s, s:s, s:s, s:I, s:s}", "nodeID", self_id, "nonce",
                              nonce ? nonce : "", "server", server ? server : "", "timestamp",
                              (json_int_t)rdv_now_ms(), "software", "rdv-bench-probe/1");
        rdv_msg_free(&m);
        if (!h || rdv_sig_sign(RDV_MSG_HELLO, h, self_sk) != 0)
            bench_die("cannot sign hello");
        json_t *env = rdv_msg_wrap(RDV_MSG_HELLO, h);
        hello = rdv_msg_dump(env, &hello_len);
        json_decref(env);
        bench_want_write(c);
    } else if (len > 12 && !memcmp(msg, "{\"welcome\":", 11)) {
        bench_conn_ready(c);
        ready = true;
    } else if (len > 13 && !memcmp(msg, "{\"presence\":", 12)) {
        on_presence(msg, len);
    } else {
        errors++;
        fprintf(stderr, "loadgen_lookup: unexpected: %.*s\n", (int)(len > 300 ? 300 : len), msg);
    }
}

static void on_writable(bconn *c)
{
    if (hello) {
        if (bench_send(c, hello, hello_len) != 0)
            bench_die("hello write failed");
        free(hello);
        hello = NULL;
        return;
    }
    while (round_open && next_batch < n_batches) {
        if (bench_send(c, batch_text[next_batch], batch_len[next_batch]) != 0)
            bench_die("lookup write failed");
        next_batch++;
        if (lws_send_pipe_choked(c->wsi)) {
            bench_want_write(c);
            break;
        }
    }
}

static void on_closed(bconn *c, const char *why, bool established)
{
    (void)c;
    (void)established;
    if (B.stop)
        return;
    fprintf(stderr, "loadgen_lookup: connection lost: %s\n", why);
    errors++;
    B.stop = 1;
}

static const bench_ops ops = {path_cb, NULL, on_message, on_writable, on_closed};

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    int64_t now = bench_mono_ns();
    if (ready && !round_open && now - round_start_ns >= (int64_t)opt.interval_ms * 1000000) {
        round_open = true;
        round_start_ns = now;
        answered = 0;
        online_in_round = 0;
        next_batch = 0;
        bench_want_write(&B.conns[0]);
    }
    lws_sul_schedule(B.ctx, 0, &sul_tick, tick_cb, 2000);
}

static void on_sig(int s)
{
    (void)s;
    B.stop = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen_lookup [--host IP] [--port N] [--family F] [--self N]\n"
            "         [--ids-family F] [--ids-offset O] [--ids-stride S] [--count N]\n"
            "         [--interval-ms MS] [--duration S] [--ready-file PATH]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},       {"port", 1, 0, 'p'},       {"family", 1, 0, 'f'},
        {"self", 1, 0, 's'},       {"ids-family", 1, 0, 'F'}, {"ids-offset", 1, 0, 'o'},
        {"ids-stride", 1, 0, 'S'}, {"count", 1, 0, 'n'},      {"interval-ms", 1, 0, 'i'},
        {"duration", 1, 0, 'd'},   {"ready-file", 1, 0, 'R'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'f': opt.family = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': opt.self = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'F': opt.ids_family = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'o': opt.ids_offset = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'S': opt.ids_stride = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': opt.count = atoi(optarg); break;
        case 'i': opt.interval_ms = atoi(optarg); break;
        case 'd': opt.duration_s = atof(optarg); break;
        case 'R': opt.ready_file = optarg; break;
        default: usage();
        }
    }
    if (opt.count < 1 || opt.count > 4096 || opt.interval_ms < 1 || opt.interval_ms > 10000 ||
        opt.duration_s <= 0 || opt.duration_s > 600 || opt.ids_stride < 1)
        usage();
    if (sodium_init() < 0)
        bench_die("libsodium");
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);

    uint8_t pk[32], sk[64];
    bench_identity(opt.family, opt.self, pk, self_sk);
    rdv_node_id_from_pk(pk, self_id);
    ids = calloc((size_t)opt.count, sizeof *ids);
    if (!ids)
        bench_die("out of memory");
    for (int i = 0; i < opt.count; i++) {
        bench_identity(opt.ids_family, opt.ids_offset + (uint32_t)i * opt.ids_stride, pk, sk);
        rdv_node_id_from_pk(pk, ids[i]);
    }
    build_batches();
    if (bench_init(&B, &ops, opt.host, opt.port, RDV_WS_SUBPROTOCOL, NULL, 1, 1, true) != 0)
        bench_die("cannot create the lws context");
    bench_queue_connect(&B, 0);
    lws_sul_schedule(B.ctx, 0, &sul_tick, tick_cb, 2000);
    int rc = bench_run(&B, bench_mono_ns() + (int64_t)(opt.duration_s * 1e9), NULL);
    printf("RESULT rounds=%ld errors=%ld status=%s\n", rounds, errors,
           !ready ? "not_ready" : (rc == -1 ? "ok" : "stopped"));
    fflush(stdout);
    B.stop = 1;
    lws_sul_cancel(&sul_tick);
    bench_destroy(&B);
    for (int b = 0; b < n_batches; b++)
        free(batch_text[b]);
    return ready ? 0 : 1;
}
