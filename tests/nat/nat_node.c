/* nat_node.c - the NAT lab's node program (tests/nat/lab/matrix.py runs it
 * inside a node namespace). It links the real librendezvous, runs it in
 * threaded mode (rdv_client_start) with a fresh in-memory identity, and
 * speaks one JSON object per line on stdout (diagnostics go to stderr).
 *
 *   nat_node --server URL --stun HOST:PORT [options] --listen
 *   nat_node --server URL --stun HOST:PORT [options] --connect ID
 *            [--count N] [--size S] [--upgrade-wait-ms U]
 *
 * Both modes first wait (--ready-timeout-ms, default 15000) until the
 * client is AUTHENTICATED and NAT discovery finished, then print
 *   {"event":"ready","node":ID,"nat":TYPE,"no_nat":0|1,"public":"ip:port",
 *    "nat_ms":N,"method":"...",...}
 * (on timeout the same line with "timeout":1, and exit 2).
 *
 * --listen accepts every request (rdv_session_accept), echoes every datagram
 * back on its session, prints {"event":"path","session":..,"path":..,"ms":N,
 * "remote":..,"via_spray":0|1,"upgraded":0|1} for every cb_path (both modes;
 * and request / closed events), and runs until stdin
 * reaches EOF or SIGTERM/SIGINT; then it prints {"event":"bye",...},
 * destroys the client and exits 0.
 *
 * --connect rdv_session_connect()s to ID ("-": read ID as a line from stdin after
 * the ready line, --peer-timeout-ms, default 30000), waits for the first path (--path-timeout-ms,
 * default 10000), sends N datagrams of S bytes (8-byte big-endian sequence +
 * random bytes), one per --pace-ms (default 2), and checks every echo byte
 * for byte; missing ones are sent again (up to RETRY_ROUNDS rounds). If the
 * first path was Relayed and U > 0 it then sends one ping every
 * UPGRADE_PING_MS until the path is Direct or U ms passed, and after an
 * upgrade checks another N datagrams on the new path. It prints
 *   {"event":"result","first_path":..,"first_ms":N,"direct_ms":N|-1,
 *    "upgraded":0|1,"via_spray":0|1,"sent":N,"intact":N,"missing":N,
 *    "corrupt":N,"nat":..,"peer_nat":..,...}
 * and exits 0 when every datagram came back intact, 1 otherwise (2: setup
 * failed: no ready, bad arguments, connect refused).
 *
 * --stream-ms D (connect mode, for the fallback test) instead sends one
 * datagram every --interval-ms (20) for at most D ms or until a line / EOF
 * on stdin, without resends, prints {"event":"stream",...} every second,
 * one {"event":"missing","from":..,"to":..,"t_from":..,"t_to":..} per run
 * of seqs with no intact echo, and a result line with "mode":"stream".
 * Path events carry "t", and stream / missing times are CLOCK_MONOTONIC ms
 * (the runner's time.monotonic()). --keepalive-ms sets
 * cfg.direct_keepalive_ms. When the session's path becomes Unknown after a
 * first path, cb_path itself sends the next stream datagram (the library
 * must hold it for the next path) and prints {"event":"gap_send","seq":..,
 * "rc":..}; the result line counts them ("gap_sends", "gap_send_errors",
 * "gap_seqs").
 *
 * --fresh (connect mode): a fresh node, as an application that connects
 * as soon as it can: ready (and rdv_session_connect()) once AUTHENTICATED,
 * without waiting for NAT discovery; the ready line then has the type so
 * far. Before the result line it waits (--ready-timeout-ms) for discovery
 * to end, and the result adds "nat_end", "no_nat_end", "method_end",
 * "discovered_end", "t_start" (mono ms before rdv_client_start),
 * "t_connect", "t_discovered" (t_start + nat_discovery_ms: when discovery
 * ended), "discovered_at_connect" and "discovered_at_first_path" (0/1:
 * nat_discovered when rdv_session_connect() was called / in the first
 * cb_path) - the matrix's time to first path of a fresh node and whether
 * the offer waited for the filtering tests. Request events carry "t".
 *
 * Every wait is bounded; the longest run is ready + path + data + upgrade
 * timeouts (about 60 s with the defaults).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <rendezvous/rendezvous.h>

#define READY_TIMEOUT_MS 15000     /* AUTHENTICATED + NAT discovery */
#define PATH_TIMEOUT_MS 10000      /* rdv_session_connect -> first path */
#define PEER_TIMEOUT_MS 30000      /* --connect -: wait for the ID on stdin */
#define PACE_MS 2                  /* one datagram per PACE_MS */
#define ECHO_WAIT_MS 1500          /* after the last send of a round */
#define RETRY_ROUNDS 3             /* resend rounds for missing echoes */
#define UPGRADE_PING_MS 50         /* ping interval while waiting for Direct */
#define BACKLOG_RETRY_MS 5         /* RDV_ERR_BACKLOG: wait, then retry */
#define BACKLOG_RETRIES 100        /* ... at most this often per datagram */
#define POLL_MS 10                 /* main-thread wait granularity */
#define LISTEN_POLL_MS 200         /* listener: stdin / signal check */
#define CLOSE_FLUSH_MS 2000        /* wait for rdv_client_pending() == 0 */
#define MAX_COUNT 100000
#define STREAM_INTERVAL_MS 20      /* --stream-ms: one datagram per interval */
#define MIN_SIZE 16
#define MAX_SIZE 65536
#define MAX_BYTES (64u * 1024 * 1024) /* count * size (both phases) */
#define MAX_PATHS 16               /* path changes remembered */
#define MAX_GAP_SENDS 16           /* stream mode: gap sends recorded */
#define PING_TAG UINT64_C(0xFFFF000000000000) /* sequence of upgrade pings */

/* ---- output -------------------------------------------------------------- */

static pthread_mutex_t g_out_mu = PTHREAD_MUTEX_INITIALIZER;

/* Prints one line (printf format, a JSON object) to stdout atomically and
 * flushes. Callable from any thread. */
static void emit(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    pthread_mutex_lock(&g_out_mu);
    fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
    pthread_mutex_unlock(&g_out_mu);
}

/* Copies s into out (cap bytes) as JSON string content (no quotes),
 * escaping quotes, backslashes and control characters; truncates. */
static const char *jesc(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; s && *s && o + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return out;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* "ipv6" / "ipv4" for a session info's remote ("[ip]:port" / "ip:port"),
 * "" when there is none. */
static const char *remote_family(const char *remote)
{
    return remote[0] == '[' ? "ipv6" : remote[0] ? "ipv4" : "";
}

static const char *path_name(int path)
{
    return rdv_path_name((rdv_path)path);
}

/* ---- state --------------------------------------------------------------- */

static volatile sig_atomic_t g_sig;
static void on_sig(int s)
{
    g_sig = s;
}

struct opts {
    const char *server;
    const char *stun;
    int listen;
    const char *peer;
    long count, size;
    long upgrade_wait_ms;
    long direct_timeout_ms;        /* 0: library default */
    long spray_ports;              /* 0: library default */
    long ready_timeout_ms, path_timeout_ms, pace_ms, peer_timeout_ms;
    long keepalive_ms;             /* 0: library default */
    long stream_ms;                /* >0: stream mode (connect), upper bound */
    int fresh;                     /* connect as soon as AUTHENTICATED */
    long interval_ms;              /* stream mode: one datagram per interval */
    int no_portmap;                /* cfg.portmap_disable */
    long portmap_lease_s;          /* 0: library default */
    long portmap_wait_ms;          /* ready also waits for the port mapper */
};

struct app {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct opts o;
    /* connect mode: the session */
    char sid[RDV_SESSION_ID_LEN + 1];
    int path;                      /* current rdv_path (0: none) */
    int first_path;
    int64_t first_ms;              /* cb_path elapsed_ms of the first path */
    int discovered_at_first;       /* nat_discovered in the first cb_path, -1 */
    int64_t direct_ms;             /* first Direct, -1 */
    int ready_cb;                  /* cb_session_ready seen */
    int closed;                    /* cb_session_closed seen */
    int close_err;
    char close_reason[128];
    int npaths;
    int paths[MAX_PATHS];
    int64_t path_ms[MAX_PATHS];
    /* echo check: seq i has its S bytes at expect + i*S */
    uint8_t *expect;
    uint8_t *state;                /* per seq: 0 not yet, 1 intact, 2 corrupt */
    int64_t *sent_at;              /* stream mode: mono ms of each seq's send */
    long nseq;                     /* sequences allocated */
    long stream_n;                 /* stream mode: next seq to send */
    long gap_sends, gap_errors;    /* stream mode: sent from cb_path Unknown */
    long gap_seq[MAX_GAP_SENDS];
    long echoes, dups, corrupt_unknown, ping_echoes;
    /* listen mode */
    long requests, echoed, echo_fail;
    char peer_buf[RDV_NODE_ID_LEN + 2];
};

static struct app g_app = {.mu = PTHREAD_MUTEX_INITIALIZER,
                            .cv = PTHREAD_COND_INITIALIZER,
                            .direct_ms = -1,
                            .discovered_at_first = -1};
static int64_t g_t_start;          /* mono ms before rdv_client_start */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Fills buf with len random bytes (getrandom; never fails for our sizes,
 * falls back to rand() if the syscall does). */
static void fill_random(uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = getrandom(buf + off, len - off, 0);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    for (; off < len; off++)
        buf[off] = (uint8_t)rand();
}

/* ---- callbacks (library thread) -------------------------------------------- */

static void cb_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    (void)u;
    fprintf(stderr, "nat_node: error %d (%s)%s%s: %s\n", e->code, rdv_strerror(e->code),
            e->server_code ? " server " : "", e->server_code ? e->server_code : "",
            e->message);
}

static void cb_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    (void)u;
    fprintf(stderr, "nat_node: state %s\n", rdv_state_name(st));
}

static void cb_request(rdv_client *c, const rdv_session_request *req, void *u)
{
    struct app *a = u;
    int rc = rdv_session_accept(c, req->session_id);
    pthread_mutex_lock(&a->mu);
    a->requests++;
    pthread_mutex_unlock(&a->mu);
    emit("{\"event\":\"request\",\"session\":\"%s\",\"direct\":%d,\"peer_nat\":\"%s\","
         "\"accept\":%d,\"t\":%" PRId64 "}",
         req->session_id, req->direct, rdv_nat_type_name(req->peer_nat), rc, mono_ms());
}

static void cb_ready(rdv_client *c, const char *sid, const char *peer, void *u)
{
    (void)c;
    (void)peer;
    struct app *a = u;
    pthread_mutex_lock(&a->mu);
    if (strcmp(sid, a->sid) == 0)
        a->ready_cb = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    emit("{\"event\":\"relay_ready\",\"session\":\"%s\"}", sid);
}

static void cb_path(rdv_client *c, const char *sid, const char *peer, rdv_path path,
                    int64_t elapsed_ms, void *u)
{
    (void)peer;
    struct app *a = u;
    int64_t t_now = mono_ms();
    rdv_network_status nst;
    memset(&nst, 0, sizeof(nst));
    int nst_rc = rdv_client_get_network_status(c, &nst);
    pthread_mutex_lock(&a->mu);
    if (!a->o.listen && strcmp(sid, a->sid) == 0) {
        if (a->first_path == RDV_PATH_UNKNOWN) {
            a->first_path = path;
            a->first_ms = elapsed_ms;
            a->discovered_at_first = nst_rc == 0 ? nst.nat_discovered : -1;
        }
        if (path == RDV_PATH_DIRECT && a->direct_ms < 0)
            a->direct_ms = elapsed_ms;
        a->path = path;
        if (a->npaths < MAX_PATHS) {
            a->paths[a->npaths] = path;
            a->path_ms[a->npaths] = elapsed_ms;
            a->npaths++;
        }
        pthread_cond_broadcast(&a->cv);
    }
    /* Stream mode: a datagram sent while the session is between paths
     * (from this callback, so no path can come up meanwhile) must be
     * taken and arrive once a path is back. */
    long gap = -1;
    if (!a->o.listen && a->o.stream_ms > 0 && path == RDV_PATH_UNKNOWN &&
        strcmp(sid, a->sid) == 0 && a->stream_n < a->nseq && a->expect) {
        gap = a->stream_n++;
        uint8_t *p = a->expect + (uint64_t)gap * (uint64_t)a->o.size;
        put_be64(p, (uint64_t)gap);
        fill_random(p + 8, (size_t)a->o.size - 8);
        a->sent_at[gap] = t_now;
    }
    pthread_mutex_unlock(&a->mu);
    if (gap >= 0) {
        int rc = rdv_session_send(c, sid, a->expect + (uint64_t)gap * (uint64_t)a->o.size,
                                (size_t)a->o.size);
        pthread_mutex_lock(&a->mu);
        if (a->gap_sends < MAX_GAP_SENDS)
            a->gap_seq[a->gap_sends] = gap;
        a->gap_sends++;
        a->gap_errors += rc != 0;
        pthread_mutex_unlock(&a->mu);
        emit("{\"event\":\"gap_send\",\"seq\":%ld,\"rc\":%d,\"t\":%" PRId64 "}", gap, rc,
             t_now);
    }
    rdv_session_info si;
    char remote[64];
    if (rdv_session_get_info(c, sid, &si) != 0) {
        memset(&si, 0, sizeof(si));
        si.direct_ms = si.candidates_ms = si.checks_ms = -1;
    }
    emit("{\"event\":\"path\",\"session\":\"%s\",\"path\":\"%s\",\"ms\":%" PRId64
         ",\"remote\":\"%s\",\"family\":\"%s\",\"via_spray\":%d,\"upgraded\":%d,"
         "\"candidates_ms\":%" PRId64 ",\"checks_ms\":%" PRId64 ",\"probe_rounds\":%" PRIu32
         ",\"t\":%" PRId64 "}",
         sid, path_name(path), elapsed_ms, jesc(si.remote, remote, sizeof(remote)),
         remote_family(si.remote), si.via_spray, si.upgraded, si.candidates_ms, si.checks_ms,
         si.probe_rounds, t_now);
}

static void cb_closed(rdv_client *c, const char *sid, int err, const char *reason, void *u)
{
    (void)c;
    struct app *a = u;
    char r[256];
    pthread_mutex_lock(&a->mu);
    if (!a->o.listen && strcmp(sid, a->sid) == 0) {
        a->closed = 1;
        a->close_err = err;
        snprintf(a->close_reason, sizeof(a->close_reason), "%s", reason);
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    emit("{\"event\":\"closed\",\"session\":\"%s\",\"err\":%d,\"reason\":\"%s\"}", sid, err,
         jesc(reason, r, sizeof(r)));
}

/* Listener: echo. Initiator: check the echo against what was sent. */
static void cb_data(rdv_client *c, const char *sid, const uint8_t *data, size_t len, void *u)
{
    struct app *a = u;
    if (a->o.listen) {
        int rc = rdv_session_send(c, sid, data, len);
        pthread_mutex_lock(&a->mu);
        if (rc == 0)
            a->echoed++;
        else
            a->echo_fail++;
        pthread_mutex_unlock(&a->mu);
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->echoes++;
    if (len >= 8 && (get_be64(data) & PING_TAG) == PING_TAG) {
        a->ping_echoes++;
    } else if (len != (size_t)a->o.size || strcmp(sid, a->sid) != 0) {
        a->corrupt_unknown++;
    } else {
        uint64_t seq = get_be64(data);
        if (seq >= (uint64_t)a->nseq) {
            a->corrupt_unknown++;
        } else if (memcmp(data, a->expect + seq * (uint64_t)a->o.size, len) != 0) {
            a->state[seq] = 2;
        } else if (a->state[seq] == 1) {
            a->dups++;
        } else if (a->state[seq] == 0) {
            a->state[seq] = 1;
        }
    }
    pthread_mutex_unlock(&a->mu);
}

/* ---- common --------------------------------------------------------------- */

/* The port mapper settled: a mapping, off, or its search failed. */
static int portmap_settled(const rdv_network_status *st)
{
    return st->portmap_protocol[0] || strncmp(st->portmap_status, "off", 3) == 0 ||
           strncmp(st->portmap_status, "no mapping", 10) == 0;
}

/* Waits until AUTHENTICATED and nat_discovered (--fresh: AUTHENTICATED
 * only) or the timeout / a signal, and with --portmap-wait-ms until the port mapper settled (at most that
 * long), then prints the ready line with the port mapper's fields.
 * Returns 0 when ready, -1 otherwise. */
static int wait_ready(rdv_client *c, const struct opts *o, rdv_network_status *st)
{
    int64_t deadline = mono_ms() + o->ready_timeout_ms;
    int ok = 0;
    for (;;) {
        memset(st, 0, sizeof(*st));
        if (rdv_client_get_network_status(c, st) == 0 && st->state == RDV_STATE_AUTHENTICATED &&
            (st->nat_discovered || o->fresh)) {
            ok = 1;
            break;
        }
        if (mono_ms() >= deadline || g_sig || rdv_client_state(c) == RDV_STATE_FAILED)
            break;
        sleep_ms(POLL_MS);
    }
    int64_t pm_deadline = mono_ms() + o->portmap_wait_ms;
    while (ok && o->portmap_wait_ms > 0 && !portmap_settled(st) && mono_ms() < pm_deadline &&
           !g_sig) {
        sleep_ms(POLL_MS);
        memset(st, 0, sizeof(*st));
        if (rdv_client_get_network_status(c, st) != 0)
            break;
    }
    char method[400], stun[64], pms[400];
    emit("{\"event\":\"ready\",\"node\":\"%s\",\"nat\":\"%s\",\"no_nat\":%d,"
         "\"public\":\"%s:%u\",\"from_stun\":%d,\"nat_ms\":%" PRId64 ",\"method\":\"%s\","
         "\"stun_server\":\"%s\",\"state\":\"%s\",\"discovered\":%d,\"portmap\":\"%s\","
         "\"portmap_public\":\"%s\",\"portmap_lifetime_s\":%u,\"portmap_status\":\"%s\"%s}",
         rdv_client_node_id(c), rdv_nat_type_name(st->nat_type), st->no_nat, st->public_ip,
         st->public_port, st->public_endpoint_from_stun, st->nat_discovery_ms,
         jesc(st->nat_method, method, sizeof(method)),
         jesc(st->stun_server, stun, sizeof(stun)), rdv_state_name(st->state),
         st->nat_discovered, st->portmap_protocol, st->portmap_public, st->portmap_lifetime_s,
         jesc(st->portmap_status, pms, sizeof(pms)), ok ? "" : ",\"timeout\":1");
    return ok ? 0 : -1;
}

/* Prints {"event":"portmap",...} when the port mapper's fields differ from
 * *last (then *last becomes them). */
static void emit_portmap(rdv_client *c, rdv_network_status *last)
{
    rdv_network_status st;
    memset(&st, 0, sizeof(st));
    if (rdv_client_get_network_status(c, &st) != 0)
        return;
    if (strcmp(st.portmap_protocol, last->portmap_protocol) == 0 &&
        strcmp(st.portmap_public, last->portmap_public) == 0 &&
        strcmp(st.portmap_status, last->portmap_status) == 0 &&
        st.portmap_renewals == last->portmap_renewals)
        return;
    *last = st;
    char pms[400];
    emit("{\"event\":\"portmap\",\"protocol\":\"%s\",\"public\":\"%s\",\"lifetime_s\":%u,"
         "\"renewals\":%u,\"status\":\"%s\",\"t\":%" PRId64 "}",
         st.portmap_protocol, st.portmap_public, st.portmap_lifetime_s, st.portmap_renewals,
         jesc(st.portmap_status, pms, sizeof(pms)), mono_ms());
}

/* ---- listen mode ------------------------------------------------------------ */

static int run_listen(rdv_client *c, struct app *a)
{
    rdv_network_status pm_last;
    memset(&pm_last, 0, sizeof(pm_last));
    while (!g_sig) {
        emit_portmap(c, &pm_last);
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&p, 1, LISTEN_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0) {
            char buf[256];
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r <= 0 && !(r < 0 && errno == EINTR))
                break; /* EOF (or a broken stdin): done */
        }
    }
    pthread_mutex_lock(&a->mu);
    emit("{\"event\":\"bye\",\"requests\":%ld,\"echoed\":%ld,\"echo_fail\":%ld}", a->requests,
         a->echoed, a->echo_fail);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* ---- connect mode ----------------------------------------------------------- */

/* Sends seq's stored datagram, retrying on a full queue. Returns 0 or the
 * RDV_ERR_* of the last attempt. */
static int send_seq(rdv_client *c, struct app *a, uint64_t seq)
{
    const uint8_t *p = a->expect + seq * (uint64_t)a->o.size;
    int rc = RDV_ERR_BACKLOG;
    for (int i = 0; i < BACKLOG_RETRIES && !g_sig; i++) {
        rc = rdv_session_send(c, a->sid, p, (size_t)a->o.size);
        if (rc != RDV_ERR_BACKLOG)
            break;
        sleep_ms(BACKLOG_RETRY_MS);
    }
    return rc;
}

/* Counts (intact, corrupt) among seqs [from, to). Caller holds a->mu. */
static void tally(struct app *a, long from, long to, long *intact, long *corrupt)
{
    *intact = *corrupt = 0;
    for (long i = from; i < to; i++) {
        if (a->state[i] == 1)
            (*intact)++;
        else if (a->state[i] == 2)
            (*corrupt)++;
    }
}

/* Generates seqs [from, to), sends them paced, waits for echoes and resends
 * the missing ones (RETRY_ROUNDS). Returns the number of resent datagrams
 * (send errors are printed to stderr). */
static long run_phase(rdv_client *c, struct app *a, long from, long to, long *send_errs)
{
    long resent = 0;
    pthread_mutex_lock(&a->mu);
    for (long i = from; i < to; i++) {
        uint8_t *p = a->expect + (uint64_t)i * (uint64_t)a->o.size;
        put_be64(p, (uint64_t)i);
        fill_random(p + 8, (size_t)a->o.size - 8);
    }
    pthread_mutex_unlock(&a->mu);
    for (int round = 0; round <= RETRY_ROUNDS && !g_sig; round++) {
        long sent_now = 0;
        for (long i = from; i < to && !g_sig; i++) {
            pthread_mutex_lock(&a->mu);
            int todo = a->state[i] == 0 && !a->closed;
            pthread_mutex_unlock(&a->mu);
            if (!todo)
                continue;
            int rc = send_seq(c, a, (uint64_t)i);
            if (rc != 0) {
                (*send_errs)++;
                fprintf(stderr, "nat_node: send seq %ld: %s\n", i, rdv_strerror(rc));
            }
            sent_now++;
            if (round > 0)
                resent++;
            sleep_ms((int)a->o.pace_ms);
        }
        if (sent_now == 0)
            break;
        /* wait for the echoes of this round */
        int64_t until = mono_ms() + ECHO_WAIT_MS;
        pthread_mutex_lock(&a->mu);
        for (;;) {
            long intact, corrupt;
            tally(a, from, to, &intact, &corrupt);
            if (intact + corrupt == to - from || a->closed || g_sig || mono_ms() >= until)
                break;
            pthread_mutex_unlock(&a->mu);
            sleep_ms(POLL_MS);
            pthread_mutex_lock(&a->mu);
        }
        pthread_mutex_unlock(&a->mu);
    }
    return resent;
}

/* Waits (bounded) until cond(a) or the deadline; caller does not hold mu.
 * Returns the condition's value. */
static int wait_for(struct app *a, int (*cond)(struct app *), int64_t deadline)
{
    pthread_mutex_lock(&a->mu);
    int v;
    while (!(v = cond(a)) && !a->closed && !g_sig && mono_ms() < deadline) {
        pthread_mutex_unlock(&a->mu);
        sleep_ms(POLL_MS);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return v;
}

static int have_path(struct app *a)
{
    return a->path != RDV_PATH_UNKNOWN;
}

static int is_direct(struct app *a)
{
    return a->path == RDV_PATH_DIRECT;
}

/* "--connect -": reads the peer's node ID as one line from stdin (the
 * runner starts both nodes at once and passes the ID when the listener is
 * ready). Returns 0 with a->peer_buf filled, -1 on EOF / timeout / junk. */
static int read_peer(struct app *a)
{
    size_t len = 0;
    int64_t deadline = mono_ms() + a->o.peer_timeout_ms;
    while (!g_sig && mono_ms() < deadline && len < sizeof(a->peer_buf) - 1) {
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&p, 1, LISTEN_POLL_MS);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (ch == '\n')
            break;
        if (ch != '\r' && ch != ' ')
            a->peer_buf[len++] = ch;
    }
    a->peer_buf[len] = '\0';
    if (!rdv_node_id_is_valid(a->peer_buf)) {
        fprintf(stderr, "nat_node: no valid peer ID on stdin\n");
        return -1;
    }
    a->o.peer = a->peer_buf;
    return 0;
}

/* Stream mode: reads stdin without blocking; returns 1 on a line or EOF
 * (the runner's "stop"), 0 otherwise. */
static int stdin_stop(int wait_ms)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int n = poll(&p, 1, wait_ms < 0 ? 0 : wait_ms);
    if (n <= 0)
        return 0;
    char ch;
    ssize_t r = read(STDIN_FILENO, &ch, 1);
    if (r < 0 && errno == EINTR)
        return 0;
    return r <= 0 || ch == '\n';
}

/* Stream mode: one datagram (seq + random bytes, checked like run_phase's)
 * every interval_ms until stream_ms passed, a line / EOF on stdin, or the
 * session closed; no resends. Prints a {"event":"stream",...} line every
 * second, then waits ECHO_WAIT_MS for the last echoes, prints one
 * {"event":"missing",...} line per run of seqs without an intact echo (with
 * their send times) and the result line. Returns 0 when every seq came
 * back intact, 1 otherwise (the runner decides which losses it allows). */
static int run_stream(rdv_client *c, struct app *a, const rdv_network_status *st0,
                      int64_t path_wall_ms)
{
    int64_t t0 = mono_ms(), until = t0 + a->o.stream_ms, next_report = t0 + 1000;
    /* seqs come from a->stream_n: cb_path takes some too */
    long n = 0, sends = 0, send_errs = 0, stop_reason = 0; /* 0 time, 1 stdin, 2 closed, 3 full */
    while (!g_sig) {
        int64_t now = mono_ms();
        if (now >= until)
            break;
        pthread_mutex_lock(&a->mu);
        int closed = a->closed;
        n = a->stream_n;
        pthread_mutex_unlock(&a->mu);
        if (n >= a->nseq) {
            stop_reason = 3;
            break;
        }
        if (closed) {
            stop_reason = 2;
            break;
        }
        int64_t due = t0 + (int64_t)sends * a->o.interval_ms;
        if (now < due) {
            if (stdin_stop((int)(due - now))) {
                stop_reason = 1;
                break;
            }
            continue;
        }
        pthread_mutex_lock(&a->mu);
        if (a->stream_n >= a->nseq) {
            pthread_mutex_unlock(&a->mu);
            stop_reason = 3;
            break;
        }
        n = a->stream_n++;
        uint8_t *p = a->expect + (uint64_t)n * (uint64_t)a->o.size;
        put_be64(p, (uint64_t)n);
        fill_random(p + 8, (size_t)a->o.size - 8);
        a->sent_at[n] = now;
        pthread_mutex_unlock(&a->mu);
        int rc = rdv_session_send(c, a->sid, p, (size_t)a->o.size);
        if (rc != 0) {
            send_errs++;
            fprintf(stderr, "nat_node: stream seq %ld: %s\n", n, rdv_strerror(rc));
        }
        sends++;
        n++;
        if (now >= next_report) {
            long intact, corrupt;
            pthread_mutex_lock(&a->mu);
            tally(a, 0, n, &intact, &corrupt);
            int path = a->path;
            pthread_mutex_unlock(&a->mu);
            emit("{\"event\":\"stream\",\"t\":%" PRId64 ",\"sent\":%ld,\"intact\":%ld,"
                 "\"corrupt\":%ld,\"send_errors\":%ld,\"path\":\"%s\"}",
                 now, n, intact, corrupt, send_errs, path_name(path));
            next_report = now + 1000;
        }
    }
    int64_t t_end = mono_ms();
    /* the last echoes */
    int64_t wait_until = t_end + ECHO_WAIT_MS;
    pthread_mutex_lock(&a->mu);
    n = a->stream_n;
    for (;;) {
        long intact, corrupt;
        tally(a, 0, n, &intact, &corrupt);
        if (intact + corrupt == n || a->closed || mono_ms() >= wait_until)
            break;
        pthread_mutex_unlock(&a->mu);
        sleep_ms(POLL_MS);
        pthread_mutex_lock(&a->mu);
    }
    long intact, corrupt, runs = 0;
    tally(a, 0, n, &intact, &corrupt);
    for (long i = 0; i < n;) {
        if (a->state[i] == 1) {
            i++;
            continue;
        }
        long j = i;
        while (j + 1 < n && a->state[j + 1] != 1)
            j++;
        if (runs++ < 1000)
            emit("{\"event\":\"missing\",\"from\":%ld,\"to\":%ld,\"t_from\":%" PRId64
                 ",\"t_to\":%" PRId64 "}",
                 i, j, a->sent_at[i], a->sent_at[j]);
        i = j + 1;
    }
    char paths[MAX_PATHS * 32] = "", reason[256], gaps[MAX_GAP_SENDS * 24] = "";
    size_t pl = 0, gl = 0;
    for (long i = 0; i < a->gap_sends && i < MAX_GAP_SENDS; i++)
        gl += (size_t)snprintf(gaps + gl, sizeof(gaps) - gl, "%s%ld", i ? "," : "",
                               a->gap_seq[i]);
    for (int i = 0; i < a->npaths && pl < sizeof(paths) - 32; i++)
        pl += (size_t)snprintf(paths + pl, sizeof(paths) - pl, "%s\"%s@%" PRId64 "\"",
                               i ? "," : "", path_name(a->paths[i]), a->path_ms[i]);
    emit("{\"event\":\"result\",\"mode\":\"stream\",\"session\":\"%s\","
         "\"first_path\":\"%s\",\"first_ms\":%" PRId64 ",\"path_wall_ms\":%" PRId64
         ",\"final_path\":\"%s\",\"t_start\":%" PRId64 ",\"t_end\":%" PRId64
         ",\"interval_ms\":%ld,\"sent\":%ld,\"intact\":%ld,\"missing\":%ld,\"corrupt\":%ld,"
         "\"corrupt_unknown\":%ld,\"dups\":%ld,\"send_errors\":%ld,\"missing_runs\":%ld,"
         "\"gap_sends\":%ld,\"gap_send_errors\":%ld,\"gap_seqs\":[%s],"
         "\"stop\":\"%s\",\"nat\":\"%s\",\"closed\":%d,\"close_reason\":\"%s\","
         "\"paths\":[%s]}",
         a->sid, path_name(a->first_path), a->first_ms, path_wall_ms, path_name(a->path), t0,
         t_end, a->o.interval_ms, n, intact, n - intact - corrupt, corrupt, a->corrupt_unknown,
         a->dups, send_errs, runs, a->gap_sends, a->gap_errors, gaps,
         stop_reason == 0 ? "time" : stop_reason == 1 ? "stdin" : stop_reason == 2 ? "closed"
                                                                                   : "full",
         rdv_nat_type_name(st0->nat_type), a->closed,
         jesc(a->close_reason, reason, sizeof(reason)), paths);
    int ok = n > 0 && intact == n && corrupt == 0 && a->corrupt_unknown == 0;
    int closed = a->closed;
    pthread_mutex_unlock(&a->mu);
    if (!closed)
        (void)rdv_session_close(c, a->sid);
    int64_t flush_until = mono_ms() + CLOSE_FLUSH_MS;
    while (rdv_client_pending(c) > 0 && mono_ms() < flush_until)
        sleep_ms(POLL_MS);
    return ok ? 0 : 1;
}

static int run_connect(rdv_client *c, struct app *a, const rdv_network_status *st0)
{
    if (strcmp(a->o.peer, "-") == 0 && read_peer(a) != 0) {
        emit("{\"event\":\"result\",\"error\":\"no peer ID on stdin\",\"first_path\":\"none\"}");
        return 2;
    }
    rdv_network_status cst;
    memset(&cst, 0, sizeof(cst));
    (void)rdv_client_get_network_status(c, &cst);
    int64_t t_connect = mono_ms();
    /* the session ID is written before anything is queued, so callbacks
     * for it find it: hold the lock across the call */
    pthread_mutex_lock(&a->mu);
    int rc = rdv_session_connect(c, a->o.peer, a->sid);
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        emit("{\"event\":\"result\",\"error\":\"rdv_session_connect: %s\",\"first_path\":\"none\"}",
             rdv_strerror(rc));
        return 2;
    }
    emit("{\"event\":\"connect\",\"session\":\"%s\"}", a->sid);

    /* first path: cb_path, or cb_session_ready + session info */
    int64_t deadline = t_connect + a->o.path_timeout_ms;
    for (;;) {
        if (wait_for(a, have_path, mono_ms() + 100))
            break;
        pthread_mutex_lock(&a->mu);
        int stop = a->closed || g_sig || mono_ms() >= deadline, rdy = a->ready_cb;
        pthread_mutex_unlock(&a->mu);
        if (rdy) {
            rdv_session_info si;
            if (rdv_session_get_info(c, a->sid, &si) == 0 &&
                si.path != RDV_PATH_UNKNOWN) {
                pthread_mutex_lock(&a->mu);
                if (a->path == RDV_PATH_UNKNOWN) {
                    fprintf(stderr, "nat_node: cb_session_ready without cb_path (path %s)\n",
                            path_name(si.path));
                    a->path = a->first_path = si.path;
                    a->first_ms = si.first_path_ms;
                }
                pthread_mutex_unlock(&a->mu);
                break;
            }
        }
        if (stop)
            break;
    }
    int64_t path_wall_ms = mono_ms() - t_connect;
    if (a->o.stream_ms > 0) {
        pthread_mutex_lock(&a->mu);
        int have = a->path != RDV_PATH_UNKNOWN;
        pthread_mutex_unlock(&a->mu);
        if (have)
            return run_stream(c, a, st0, path_wall_ms);
        emit("{\"event\":\"result\",\"mode\":\"stream\",\"error\":\"no path within %ld ms\","
             "\"first_path\":\"none\"}",
             a->o.path_timeout_ms);
        return 1;
    }

    long send_errs = 0, resent = 0, phase2 = 0;
    long n = a->o.count;
    pthread_mutex_lock(&a->mu);
    int got_path = a->path != RDV_PATH_UNKNOWN;
    pthread_mutex_unlock(&a->mu);
    if (got_path) {
        resent += run_phase(c, a, 0, n, &send_errs);
        /* upgrade wait */
        pthread_mutex_lock(&a->mu);
        int relayed_first = a->first_path == RDV_PATH_RELAYED;
        pthread_mutex_unlock(&a->mu);
        if (relayed_first && a->o.upgrade_wait_ms > 0) {
            int64_t until = mono_ms() + a->o.upgrade_wait_ms;
            uint64_t ping = 0;
            long ping_errs = 0;
            uint8_t pbuf[MIN_SIZE];
            while (!wait_for(a, is_direct, mono_ms() + UPGRADE_PING_MS)) {
                pthread_mutex_lock(&a->mu);
                int stop = a->closed || g_sig;
                pthread_mutex_unlock(&a->mu);
                if (stop || mono_ms() >= until)
                    break;
                put_be64(pbuf, PING_TAG | ping++);
                fill_random(pbuf + 8, sizeof(pbuf) - 8);
                if (rdv_session_send(c, a->sid, pbuf, sizeof(pbuf)) != 0)
                    ping_errs++; /* best effort: the relay may be busy */
            }
            if (ping_errs)
                fprintf(stderr, "nat_node: %ld of %" PRIu64 " upgrade pings not sent\n",
                        ping_errs, ping);
            pthread_mutex_lock(&a->mu);
            int up = a->path == RDV_PATH_DIRECT;
            pthread_mutex_unlock(&a->mu);
            if (up) {
                phase2 = 1;
                resent += run_phase(c, a, n, 2 * n, &send_errs);
            }
        }
    }

    rdv_session_info si;
    memset(&si, 0, sizeof(si));
    si.first_path_ms = si.relayed_ms = si.direct_ms = si.candidates_ms = si.checks_ms = -1;
    int si_rc = rdv_session_get_info(c, a->sid, &si);

    /* --fresh: the type discovery ends with (bounded wait). */
    rdv_network_status est;
    memset(&est, 0, sizeof(est));
    int64_t until = mono_ms() + a->o.ready_timeout_ms;
    while (rdv_client_get_network_status(c, &est) == 0 && !est.nat_discovered && a->o.fresh &&
           !g_sig && mono_ms() < until)
        sleep_ms(POLL_MS);
    char fresh[1200] = "", mend[400];
    if (a->o.fresh)
        snprintf(fresh, sizeof(fresh),
                 ",\"nat_end\":\"%s\",\"no_nat_end\":%d,\"method_end\":\"%s\",\"discovered_end\":%d,"
                 "\"t_start\":%" PRId64 ",\"t_connect\":%" PRId64 ",\"t_discovered\":%" PRId64
                 ",\"discovered_at_connect\":%d,\"discovered_at_first_path\":%d",
                 rdv_nat_type_name(est.nat_type), est.no_nat,
                 jesc(est.nat_method, mend, sizeof(mend)), est.nat_discovered, g_t_start,
                 t_connect, est.nat_discovered ? g_t_start + est.nat_discovery_ms : (int64_t)-1,
                 cst.nat_discovered, a->discovered_at_first);

    pthread_mutex_lock(&a->mu);
    long total = phase2 ? 2 * n : n, intact = 0, corrupt = 0;
    if (got_path)
        tally(a, 0, total, &intact, &corrupt);
    corrupt += a->corrupt_unknown;
    long missing = total - intact - (corrupt - a->corrupt_unknown);
    char paths[MAX_PATHS * 32] = "";
    size_t pl = 0;
    for (int i = 0; i < a->npaths && pl < sizeof(paths) - 32; i++)
        pl += (size_t)snprintf(paths + pl, sizeof(paths) - pl, "%s\"%s@%" PRId64 "\"",
                               i ? "," : "", path_name(a->paths[i]), a->path_ms[i]);
    char reason[256], err[256], remote[64];
    int64_t direct_ms = a->direct_ms >= 0 ? a->direct_ms : (si_rc == 0 ? si.direct_ms : -1);
    int upgraded = (si_rc == 0 && si.upgraded) ||
                   (a->first_path == RDV_PATH_RELAYED && a->direct_ms >= 0);
    emit("{\"event\":\"result\",\"session\":\"%s\",\"first_path\":\"%s\",\"first_ms\":%" PRId64
         ",\"direct_ms\":%" PRId64 ",\"relayed_ms\":%" PRId64 ",\"path_wall_ms\":%" PRId64
         ",\"upgraded\":%d,\"via_spray\":%d,\"final_path\":\"%s\",\"sent\":%ld,\"intact\":%ld,"
         "\"missing\":%ld,\"corrupt\":%ld,\"resent\":%ld,\"dups\":%ld,\"send_errors\":%ld,"
         "\"ping_echoes\":%ld,\"phase2\":%d,\"nat\":\"%s\",\"peer_nat\":\"%s\","
         "\"remote\":\"%s\",\"family\":\"%s\",\"t_connect\":%" PRId64
         ",\"candidates_ms\":%" PRId64 ",\"checks_ms\":%" PRId64 ",\"probe_rounds\":%" PRIu32
         ",\"direct_tx\":%" PRIu64 ",\"direct_rx\":%" PRIu64
         ",\"info_rc\":%d,\"direct_error\":\"%s\",\"closed\":%d,\"close_reason\":\"%s\","
         "\"paths\":[%s]%s}",
         a->sid, a->first_path ? path_name(a->first_path) : "none",
         a->first_path ? a->first_ms : (int64_t)-1, direct_ms, si.relayed_ms, path_wall_ms,
         upgraded, si.via_spray, path_name(a->path), total, intact, missing, corrupt, resent,
         a->dups, send_errs, a->ping_echoes, phase2, rdv_nat_type_name(st0->nat_type),
         rdv_nat_type_name(si.peer_nat), jesc(si.remote, remote, sizeof(remote)),
         remote_family(si.remote), t_connect, si.candidates_ms, si.checks_ms, si.probe_rounds,
         si.direct_tx_datagrams, si.direct_rx_datagrams, si_rc,
         jesc(si.last_direct_error_text, err, sizeof(err)), a->closed,
         jesc(a->close_reason, reason, sizeof(reason)), paths, fresh);
    int ok = got_path && intact == total && corrupt == 0;
    int closed = a->closed;
    pthread_mutex_unlock(&a->mu);

    if (!closed)
        (void)rdv_session_close(c, a->sid);
    int64_t flush_until = mono_ms() + CLOSE_FLUSH_MS;
    while (rdv_client_pending(c) > 0 && mono_ms() < flush_until)
        sleep_ms(POLL_MS);
    rdv_network_status pm_last;
    memset(&pm_last, 0, sizeof(pm_last));
    emit_portmap(c, &pm_last);
    return ok ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nat_node --server URL --stun HOST:PORT [options] --listen\n"
            "       nat_node --server URL --stun HOST:PORT [options] --connect ID\n"
            "options: --count N (50) --size S (200) --upgrade-wait-ms U (0)\n"
            "         --direct-timeout-ms N --spray-ports N (library defaults)\n"
            "         --ready-timeout-ms N (%d) --path-timeout-ms N (%d) --pace-ms N (%d)\n"
            "         --peer-timeout-ms N (%d; --connect - reads the peer ID from stdin)\n"
            "         --keepalive-ms N (library default; cfg.direct_keepalive_ms)\n"
            "         --no-portmap (cfg.portmap_disable) --portmap-lease-s N (library default)\n"
            "         --portmap-wait-ms N (0; ready also waits for the port mapper)\n"
            "         --stream-ms D [--interval-ms I (%d)]: connect mode streams one\n"
            "           datagram per I ms for at most D ms (a line / EOF on stdin stops)\n"
            "         --fresh: connect mode connects once AUTHENTICATED, not waiting for\n"
            "           NAT discovery (the result adds the final type and the timeline)\n",
            READY_TIMEOUT_MS, PATH_TIMEOUT_MS, PACE_MS, PEER_TIMEOUT_MS, STREAM_INTERVAL_MS);
}

/* Parses a decimal long in [lo, hi]; returns 0 or -1. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->count = 50;
    o->size = 200;
    o->ready_timeout_ms = READY_TIMEOUT_MS;
    o->path_timeout_ms = PATH_TIMEOUT_MS;
    o->pace_ms = PACE_MS;
    o->peer_timeout_ms = PEER_TIMEOUT_MS;
    o->interval_ms = STREAM_INTERVAL_MS;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *num = NULL, lo = 0, hi = 0;
        if (strcmp(k, "--listen") == 0) {
            o->listen = 1;
            continue;
        }
        if (strcmp(k, "--no-portmap") == 0) {
            o->no_portmap = 1;
            continue;
        }
        if (strcmp(k, "--fresh") == 0) {
            o->fresh = 1;
            continue;
        }
        if (!v)
            return -1;
        if (strcmp(k, "--server") == 0)
            o->server = v;
        else if (strcmp(k, "--stun") == 0)
            o->stun = v;
        else if (strcmp(k, "--connect") == 0)
            o->peer = v;
        else if (strcmp(k, "--count") == 0)
            num = &o->count, lo = 1, hi = MAX_COUNT;
        else if (strcmp(k, "--size") == 0)
            num = &o->size, lo = MIN_SIZE, hi = MAX_SIZE;
        else if (strcmp(k, "--upgrade-wait-ms") == 0)
            num = &o->upgrade_wait_ms, lo = 0, hi = 600000;
        else if (strcmp(k, "--direct-timeout-ms") == 0)
            num = &o->direct_timeout_ms, lo = 1, hi = 600000;
        else if (strcmp(k, "--spray-ports") == 0)
            num = &o->spray_ports, lo = -1, hi = 65535;
        else if (strcmp(k, "--ready-timeout-ms") == 0)
            num = &o->ready_timeout_ms, lo = 1, hi = 600000;
        else if (strcmp(k, "--path-timeout-ms") == 0)
            num = &o->path_timeout_ms, lo = 1, hi = 600000;
        else if (strcmp(k, "--peer-timeout-ms") == 0)
            num = &o->peer_timeout_ms, lo = 1, hi = 600000;
        else if (strcmp(k, "--pace-ms") == 0)
            num = &o->pace_ms, lo = 0, hi = 1000;
        else if (strcmp(k, "--keepalive-ms") == 0)
            num = &o->keepalive_ms, lo = 1, hi = 600000;
        else if (strcmp(k, "--stream-ms") == 0)
            num = &o->stream_ms, lo = 1, hi = 600000;
        else if (strcmp(k, "--interval-ms") == 0)
            num = &o->interval_ms, lo = 1, hi = 10000;
        else if (strcmp(k, "--portmap-lease-s") == 0)
            num = &o->portmap_lease_s, lo = 1, hi = RDV_MAX_PORTMAP_LEASE_S;
        else if (strcmp(k, "--portmap-wait-ms") == 0)
            num = &o->portmap_wait_ms, lo = 0, hi = 600000;
        else
            return -1;
        if (num && parse_long(v, lo, hi, num) != 0)
            return -1;
        i++;
    }
    if (!o->server || !o->stun || o->listen == (o->peer != NULL) ||
        (o->fresh && (o->listen || o->stream_ms > 0)))
        return -1;
    if (o->peer && strcmp(o->peer, "-") != 0 && !rdv_node_id_is_valid(o->peer))
        return -1;
    if ((unsigned long)o->count * 2 * (unsigned long)o->size > MAX_BYTES)
        return -1;
    if (o->stream_ms > 0 && (o->listen || (unsigned long)(o->stream_ms / o->interval_ms + 1) *
                                                  (unsigned long)o->size > MAX_BYTES))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct app *a = &g_app;
    if (parse_args(argc, argv, &a->o) != 0) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (!a->o.listen) {
        a->nseq = a->o.stream_ms > 0 ? a->o.stream_ms / a->o.interval_ms + 1 : 2 * a->o.count;
        a->expect = malloc((size_t)a->nseq * (size_t)a->o.size);
        a->state = calloc((size_t)a->nseq, 1);
        a->sent_at = calloc((size_t)a->nseq, sizeof(int64_t));
        if (!a->expect || !a->state || !a->sent_at) {
            fprintf(stderr, "nat_node: out of memory\n");
            free(a->expect);
            free(a->state);
            free(a->sent_at);
            return 2;
        }
    }

    rdv_identity id;
    int rc = rdv_identity_generate(&id);
    if (rc != 0) {
        fprintf(stderr, "nat_node: identity: %s\n", rdv_strerror(rc));
        free(a->expect);
        free(a->state);
        free(a->sent_at);
        return 2;
    }
    const char *stun[1] = {a->o.stun};
    rdv_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = a->o.server;
    cfg.identity = &id;
    cfg.software = "nat_node/" RDV_VERSION_STRING;
    cfg.stun_servers = stun;
    cfg.stun_server_count = 1;
    cfg.udp_port = 0;
    cfg.direct_timeout_ms = (int)a->o.direct_timeout_ms;
    cfg.spray_ports = (int)a->o.spray_ports;
    cfg.direct_keepalive_ms = (int)a->o.keepalive_ms;
    cfg.portmap_disable = a->o.no_portmap;
    cfg.portmap_lease_s = (int)a->o.portmap_lease_s;
    cfg.cb_state_changed = cb_state;
    cfg.cb_error = cb_error;
    cfg.cb_session_request = cb_request;
    cfg.cb_session_ready = cb_ready;
    cfg.cb_session_data = cb_data;
    cfg.cb_session_closed = cb_closed;
    cfg.cb_path = cb_path;
    cfg.user_ptr = a;
    rdv_client *c = NULL;
    rc = rdv_client_create(&cfg, &c);
    rdv_identity_wipe(&id);
    if (rc != 0) {
        fprintf(stderr, "nat_node: rdv_client_create: %s\n", rdv_strerror(rc));
        free(a->expect);
        free(a->state);
        free(a->sent_at);
        return 2;
    }
    int status = 2;
    g_t_start = mono_ms();
    rc = rdv_client_start(c);
    if (rc != 0) {
        fprintf(stderr, "nat_node: rdv_client_start: %s\n", rdv_strerror(rc));
    } else {
        rdv_network_status st;
        if (wait_ready(c, &a->o, &st) == 0)
            status = a->o.listen ? run_listen(c, a) : run_connect(c, a, &st);
    }
    rdv_client_destroy(c);
    free(a->expect);
    free(a->state);
    free(a->sent_at);
    return status;
}
