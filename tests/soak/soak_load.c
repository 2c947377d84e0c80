/* soak_load.c - the soak's mixed load (bench/soak.sh), driven through the
 * real client library (librendezvous) against a running rendezvousd.
 *
 * For --duration seconds, at once:
 *   signaling  --pairs node pairs: A sends `offer`s at --rate a second to
 *              B, B answers each; the sessionID carries (pair, sequence),
 *              so both directions are sequence-checked end to end (every
 *              message arrives once, in order);
 *   lookups    every A looks up 8 node IDs every 2 s (under the presence
 *              scanning limit);
 *   relay      --relays node pairs keep a relay session open and send
 *              --relay-rate datagrams a second (8-byte sequence number,
 *              padded to --relay-bytes), sequence-checked; every 15 s the
 *              opener closes the session (once all its datagrams arrived)
 *              and opens a new one;
 *   churn      every --churn-every seconds a storm: a mailer node sends one
 *              offer to each of --churn identities (offline: the server
 *              queues them), then --churn clients with those identities
 *              connect at once (STUN discovery included), each must get its
 *              queued offer exactly once, looks up 4 IDs and is destroyed;
 *              a watcher node watches them all (peerOnline / peerOffline);
 *   STUN       --stun-rate Binding requests a second over UDP to the
 *              server's STUN port, each answered with our own address.
 * Then it stops sending, waits up to --drain seconds for what is in flight,
 * and checks: nothing lost or duplicated or out of order, every lookup
 * answered, every queued offer delivered once, no `error` of any kind
 * (client-side or from the server), no long-lived node reconnected, STUN
 * answers >= 99.9 % (UDP). Prints one summary line and exits 0 (PASS) or
 * 1 (FAIL); --status FILE gets the counters every second (key=value lines,
 * replaced atomically) for the sampler.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <rendezvous/rendezvous.h>

#include "schema/stun.h"

#define MAX_PAIRS 64
#define MAX_RELAYS 16
#define MAX_CHURN 256
#define RELAY_CYCLE_MS 15000
#define LOOKUP_EVERY_MS 2000
#define STUN_RING 4096

typedef struct opts {
    const char *url;
    int stun_port;
    int duration_s, drain_s;
    int pairs, rate;
    int relays, relay_rate, relay_bytes;
    int churn, churn_every_s;
    int stun_rate;
    const char *status;
} opts;

/* One long-lived node. */
typedef struct node {
    rdv_client *c;
    char id[RDV_NODE_ID_LEN + 1];
    int role;     /* ROLE_* */
    int index;    /* pair / relay index */
    unsigned welcomes;
} node;

enum { ROLE_A, ROLE_B, ROLE_R1, ROLE_R2, ROLE_WATCHER, ROLE_MAILER, ROLE_CHURN };

/* A relay stream: the opener's current session. */
typedef struct relay_stream {
    char sid[RDV_SESSION_ID_LEN + 1];
    char ready_sid[RDV_SESSION_ID_LEN + 1]; /* the last relayReady seen: it may
                                              * come before rdv_session_open()
                                              * returned and sid was set */
    bool open, opening, closing;
    uint64_t sent, recv, expect; /* this session's datagrams */
    int64_t opened_ms, close_ms;
    uint64_t sessions;
} relay_stream;

typedef struct churn_slot {
    rdv_identity id;
    char node_id[RDV_NODE_ID_LEN + 1];
    rdv_client *c;
    bool authed, dying;
    int got_offer; /* offers of the current storm received */
} churn_slot;

/* Everything shared, under mu. */
static struct {
    pthread_mutex_t mu;
    opts o;
    node a[MAX_PAIRS], b[MAX_PAIRS], r1[MAX_RELAYS], r2[MAX_RELAYS], watcher, mailer;
    uint64_t offers_sent[MAX_PAIRS], offers_recv[MAX_PAIRS], answers_sent[MAX_PAIRS],
        answers_recv[MAX_PAIRS];
    uint64_t order_errors;
    uint64_t lookups_sent, lookups_answered;
    relay_stream rs[MAX_RELAYS];
    uint64_t relay_sent, relay_recv, relay_sessions;
    churn_slot churn[MAX_CHURN];
    uint64_t storms, churn_connected, queued_sent, queued_acked, queued_delivered,
        queued_dup;
    uint64_t peer_online, peer_offline;
    uint64_t stun_sent, stun_recv, stun_bad;
    uint64_t errors;
    uint64_t backlog; /* sends refused by the client's bounded queue */
    char first_errors[8][300];
    int n_first;
    int storm; /* current storm number */
    volatile int stop_sending;
    volatile int finished; /* verdict given: later errors are the teardown's */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records an unexpected error (mu held or not: takes it). */
static void fail_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_event(const char *fmt, ...)
{
    if (S.finished)
        return;
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&S.mu);
    S.errors++;
    if (S.n_first < 8)
        snprintf(S.first_errors[S.n_first++], sizeof S.first_errors[0], "%s", line);
    pthread_mutex_unlock(&S.mu);
    fprintf(stderr, "soak_load: ERROR %s\n", line);
}

/* sessionIDs: 8 hex of kind+index, then the sequence in the last group.
 * kind 1 = pair signaling, 2 = storm mail. */
static void make_sid(char out[RDV_SESSION_ID_LEN + 1], unsigned kind, unsigned idx,
                     uint64_t seq)
{
    snprintf(out, RDV_SESSION_ID_LEN + 1, "%02x%06x-0000-4000-8000-%012" PRIx64, kind & 0xff,
             idx & 0xffffff, (uint64_t)(seq & 0xffffffffffffu));
}

static bool parse_sid(const char *sid, unsigned *kind, unsigned *idx, uint64_t *seq)
{
    unsigned k, i;
    uint64_t q;
    if (strlen(sid) != RDV_SESSION_ID_LEN ||
        sscanf(sid, "%2x%6x-0000-4000-8000-%12" SCNx64, &k, &i, &q) != 3)
        return false;
    *kind = k;
    *idx = i;
    *seq = q;
    return true;
}

static rdv_connection_info soak_info(void)
{
    rdv_connection_info ci;
    memset(&ci, 0, sizeof ci);
    snprintf(ci.public_ip, sizeof ci.public_ip, "0.0.0.0");
    snprintf(ci.local_ip, sizeof ci.local_ip, "127.0.0.1");
    ci.local_port = 40000;
    ci.nat_type = RDV_NAT_PORT_RESTRICTED;
    return ci;
}

/* ---- callbacks ----------------------------------------------------------- */

static void cb_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    node *n = u;
    if (st == RDV_STATE_AUTHENTICATED) {
        pthread_mutex_lock(&S.mu);
        unsigned w = ++n->welcomes;
        pthread_mutex_unlock(&S.mu);
        if (w > 1)
            fail_event("node %.12s (role %d #%d) reconnected (welcome %u)", n->id, n->role,
                       n->index, w);
    }
}

static void cb_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    node *n = u;
    fail_event("node %.12s (role %d #%d): %s [%s] %s ref=%s type=%s field=%s", n->id, n->role,
               n->index, rdv_strerror(e->code), e->server_code ? e->server_code : "local",
               e->message, e->ref ? e->ref : "", e->msg_type ? e->msg_type : "",
               e->field ? e->field : "");
}

/* B: an offer of pair idx; checks the order. The driver thread answers it
 * (a callback must not wait for the library's queue: its own thread
 * drains it). */
static void cb_offer_b(rdv_client *c, const rdv_session_msg *m, void *u)
{
    node *n = u;
    unsigned kind, idx;
    uint64_t seq;
    if (!parse_sid(m->session_id, &kind, &idx, &seq) || kind != 1 || (int)idx != n->index) {
        fail_event("B%d: unexpected offer %s", n->index, m->session_id);
        return;
    }
    pthread_mutex_lock(&S.mu);
    uint64_t want = S.offers_recv[idx] + 1;
    S.offers_recv[idx]++;
    if (seq != want)
        S.order_errors++;
    pthread_mutex_unlock(&S.mu);
    if (seq != want)
        fail_event("B%d: offer %" PRIu64 " arrived, expected %" PRIu64 " (lost, duplicated or "
                   "reordered)",
                   n->index, seq, want);
    (void)c; /* the driver answers, in order (answers_due) */
}

static void cb_answer_a(rdv_client *c, const rdv_session_msg *m, void *u)
{
    (void)c;
    node *n = u;
    unsigned kind, idx;
    uint64_t seq;
    if (!parse_sid(m->session_id, &kind, &idx, &seq) || kind != 1 || (int)idx != n->index) {
        fail_event("A%d: unexpected answer %s", n->index, m->session_id);
        return;
    }
    pthread_mutex_lock(&S.mu);
    uint64_t want = S.answers_recv[idx] + 1;
    S.answers_recv[idx]++;
    if (seq != want)
        S.order_errors++;
    pthread_mutex_unlock(&S.mu);
    if (seq != want)
        fail_event("A%d: answer %" PRIu64 " arrived, expected %" PRIu64, n->index, seq, want);
}

static void cb_presence(rdv_client *c, const char *rid, const rdv_peer *p, size_t n, void *u)
{
    (void)c;
    (void)rid;
    (void)p;
    (void)n;
    node *nd = u;
    if (nd->role == ROLE_WATCHER || nd->role == ROLE_CHURN)
        return; /* answers to watch / the churn's lookups: counted elsewhere */
    pthread_mutex_lock(&S.mu);
    S.lookups_answered++;
    pthread_mutex_unlock(&S.mu);
}

static void cb_peer_on(rdv_client *c, const rdv_peer *p, void *u)
{
    (void)c;
    (void)p;
    (void)u;
    pthread_mutex_lock(&S.mu);
    S.peer_online++;
    pthread_mutex_unlock(&S.mu);
}

static void cb_peer_off(rdv_client *c, const rdv_peer *p, void *u)
{
    (void)c;
    (void)p;
    (void)u;
    pthread_mutex_lock(&S.mu);
    S.peer_offline++;
    pthread_mutex_unlock(&S.mu);
}

static void cb_queued(rdv_client *c, const rdv_queued *q, void *u)
{
    (void)c;
    (void)q;
    (void)u;
    pthread_mutex_lock(&S.mu);
    S.queued_acked++;
    pthread_mutex_unlock(&S.mu);
}

/* R2: accept every relay request of its R1. */
static void cb_session_request(rdv_client *c, const rdv_session_request *r, void *u)
{
    node *n = u;
    if (strcmp(r->from_node_id, S.r1[n->index].id) != 0) {
        fail_event("R2-%d: relay request from a stranger", n->index);
        return;
    }
    int rc = rdv_session_accept(c, r->session_id);
    if (rc != 0)
        fail_event("R2-%d: relay accept: %s", n->index, rdv_strerror(rc));
}

static void cb_session_ready(rdv_client *c, const char *sid, const char *peer, void *u)
{
    (void)c;
    (void)peer;
    node *n = u;
    pthread_mutex_lock(&S.mu);
    relay_stream *s = &S.rs[n->index];
    snprintf(s->ready_sid, sizeof s->ready_sid, "%s", sid);
    if (strcmp(s->sid, sid) == 0) {
        s->open = true;
        s->opening = false;
        s->opened_ms = mono_ms();
    }
    pthread_mutex_unlock(&S.mu);
}

static void cb_session_data(rdv_client *c, const char *sid, const uint8_t *d, size_t len,
                          void *u)
{
    (void)c;
    node *n = u;
    uint64_t seq = 0;
    if (len < 8) {
        fail_event("R2-%d: short datagram", n->index);
        return;
    }
    memcpy(&seq, d, 8);
    pthread_mutex_lock(&S.mu);
    relay_stream *s = &S.rs[n->index];
    bool ours = strcmp(s->sid, sid) == 0;
    uint64_t want = s->recv + 1;
    if (ours) {
        s->recv++;
        S.relay_recv++;
    }
    pthread_mutex_unlock(&S.mu);
    if (!ours)
        fail_event("R2-%d: datagram of an old session %s", n->index, sid);
    else if (seq != want)
        fail_event("R2-%d: datagram %" PRIu64 " arrived, expected %" PRIu64, n->index, seq,
                   want);
}

static void cb_session_closed(rdv_client *c, const char *sid, int err, const char *reason,
                            void *u)
{
    (void)c;
    node *n = u;
    /* R2 sees the opener's deliberate close (err 0); anything else is not
     * part of the load */
    if (n->role == ROLE_R2 && err == 0)
        return;
    fail_event("relay %s closed on %s%d: %s (%s)", sid, n->role == ROLE_R1 ? "R1-" : "R2-",
               n->index, rdv_strerror(err), reason);
}

/* A churn client got its queued offer. */
static void cb_offer_churn(rdv_client *c, const rdv_session_msg *m, void *u)
{
    (void)c;
    churn_slot *sl = u;
    unsigned kind, idx;
    uint64_t seq;
    if (!parse_sid(m->session_id, &kind, &idx, &seq) || kind != 2) {
        fail_event("churn: unexpected offer %s", m->session_id);
        return;
    }
    pthread_mutex_lock(&S.mu);
    int storm = S.storm;
    bool right = (int)seq == storm && &S.churn[idx] == sl;
    if (right) {
        sl->got_offer++;
        if (sl->got_offer == 1)
            S.queued_delivered++;
        else
            S.queued_dup++;
    }
    pthread_mutex_unlock(&S.mu);
    if (!right)
        fail_event("churn %u: offer of storm %" PRIu64 " in storm %d", idx, seq, storm);
    else if (sl->got_offer > 1)
        fail_event("churn %u: queued offer delivered twice", idx);
}

static void cb_state_churn(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    churn_slot *sl = u;
    if (st != RDV_STATE_AUTHENTICATED)
        return;
    pthread_mutex_lock(&S.mu);
    sl->authed = true;
    pthread_mutex_unlock(&S.mu);
}

static void cb_error_churn(rdv_client *c, const rdv_error_info *e, void *u)
{
    (void)c;
    churn_slot *sl = u;
    pthread_mutex_lock(&S.mu);
    bool dying = sl->dying;
    pthread_mutex_unlock(&S.mu);
    if (!dying)
        fail_event("churn %.12s: %s [%s] %s", sl->node_id, rdv_strerror(e->code),
                   e->server_code ? e->server_code : "local", e->message);
}

/* ---- set-up ------------------------------------------------------------- */

static const char *stun_list[1];
static char stun_addr[64];

static void base_config(rdv_client_config *cfg, const rdv_identity *id)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->server_url = S.o.url;
    cfg->identity = id;
    cfg->software = "rdv-soak/1";
    cfg->nat_type = RDV_NAT_PORT_RESTRICTED;
    cfg->connect_timeout_ms = 10000;
    cfg->auth_timeout_ms = 10000;
    cfg->keepalive_ms = 15000;
    cfg->reconnect.initial_backoff_ms = 100;
    cfg->reconnect.max_backoff_ms = 1000;
    if (S.o.stun_port > 0) {
        cfg->stun_servers = stun_list;
        cfg->stun_server_count = 1;
    } else {
        cfg->stun_disable = 1;
    }
    cfg->direct_disable = 1;
}

static void node_start(node *n, int role, int index)
{
    rdv_identity id;
    if (rdv_identity_generate(&id) != 0) {
        fprintf(stderr, "soak_load: cannot make an identity\n");
        exit(2);
    }
    rdv_identity_node_id(&id, n->id);
    n->role = role;
    n->index = index;
    rdv_client_config cfg;
    base_config(&cfg, &id);
    cfg.user_ptr = n;
    cfg.cb_state_changed = cb_state;
    cfg.cb_error = cb_error;
    cfg.cb_presence = cb_presence;
    cfg.cb_queued = cb_queued;
    if (role == ROLE_A)
        cfg.cb_answer = cb_answer_a;
    if (role == ROLE_B)
        cfg.cb_offer = cb_offer_b;
    if (role == ROLE_WATCHER) {
        cfg.cb_peer_online = cb_peer_on;
        cfg.cb_peer_offline = cb_peer_off;
    }
    if (role == ROLE_R1 || role == ROLE_R2) {
        cfg.cb_session_request = cb_session_request;
        cfg.cb_session_ready = cb_session_ready;
        cfg.cb_session_data = cb_session_data;
        cfg.cb_session_closed = cb_session_closed;
    }
    int rc = rdv_client_create(&cfg, &n->c);
    rdv_identity_wipe(&id);
    if (rc != 0 || rdv_client_start(n->c) != 0) {
        fprintf(stderr, "soak_load: client create/start failed: %s\n", rdv_strerror(rc));
        exit(2);
    }
}

static bool all_authed(void)
{
    bool ok = true;
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.o.pairs; i++)
        ok = ok && S.a[i].welcomes && S.b[i].welcomes;
    for (int i = 0; i < S.o.relays; i++)
        ok = ok && S.r1[i].welcomes && S.r2[i].welcomes;
    ok = ok && S.watcher.welcomes && S.mailer.welcomes;
    pthread_mutex_unlock(&S.mu);
    return ok;
}

/* ---- the churn thread ------------------------------------------------------ */

static void *churn_main(void *arg)
{
    (void)arg;
    int64_t next = mono_ms() + 2000;
    while (!S.stop_sending) {
        if (mono_ms() < next) {
            usleep(20000);
            continue;
        }
        next = mono_ms() + (int64_t)S.o.churn_every_s * 1000;
        pthread_mutex_lock(&S.mu);
        int storm = ++S.storm;
        S.storms++;
        for (int k = 0; k < S.o.churn; k++) {
            S.churn[k].authed = S.churn[k].dying = false;
            S.churn[k].got_offer = 0;
        }
        pthread_mutex_unlock(&S.mu);
        /* mail: one offer to each (offline) churn identity */
        for (int k = 0; k < S.o.churn; k++) {
            char sid[RDV_SESSION_ID_LEN + 1];
            make_sid(sid, 2, (unsigned)k, (uint64_t)storm);
            rdv_connection_info ci = soak_info();
            int rc;
            for (int tries = 0;
                 (rc = rdv_client_send_offer(S.mailer.c, S.churn[k].node_id, sid, &ci)) ==
                     RDV_ERR_BACKLOG &&
                 tries < 500;
                 tries++) {
                pthread_mutex_lock(&S.mu);
                S.backlog++;
                pthread_mutex_unlock(&S.mu);
                usleep(10000);
            }
            if (rc != 0)
                fail_event("mailer: offer to churn %d: %s", k, rdv_strerror(rc));
            else {
                pthread_mutex_lock(&S.mu);
                S.queued_sent++;
                pthread_mutex_unlock(&S.mu);
            }
        }
        /* wait until the server has queued them all (bounded) */
        int64_t until = mono_ms() + 10000;
        for (;;) {
            pthread_mutex_lock(&S.mu);
            bool done = S.queued_acked >= S.queued_sent;
            pthread_mutex_unlock(&S.mu);
            if (done || mono_ms() > until)
                break;
            usleep(10000);
        }
        /* the storm: all connect at once */
        for (int k = 0; k < S.o.churn; k++) {
            churn_slot *sl = &S.churn[k];
            rdv_client_config cfg;
            base_config(&cfg, &sl->id);
            cfg.user_ptr = sl;
            cfg.cb_state_changed = cb_state_churn;
            cfg.cb_error = cb_error_churn;
            cfg.cb_offer = cb_offer_churn;
            if (rdv_client_create(&cfg, &sl->c) != 0 || rdv_client_start(sl->c) != 0) {
                fail_event("churn %d: create/start failed", k);
                if (sl->c)
                    rdv_client_destroy(sl->c);
                sl->c = NULL;
            }
        }
        /* each: authenticated and its queued offer received, then a lookup */
        until = mono_ms() + 60000;
        for (;;) {
            int ready = 0;
            pthread_mutex_lock(&S.mu);
            for (int k = 0; k < S.o.churn; k++)
                ready += S.churn[k].authed && S.churn[k].got_offer >= 1;
            pthread_mutex_unlock(&S.mu);
            if (ready == S.o.churn || mono_ms() > until) {
                if (ready != S.o.churn)
                    fail_event("storm %d: %d of %d churn nodes connected and got their queued "
                               "offer within 60 s",
                               storm, ready, S.o.churn);
                pthread_mutex_lock(&S.mu);
                S.churn_connected += (uint64_t)ready;
                pthread_mutex_unlock(&S.mu);
                break;
            }
            usleep(10000);
        }
        for (int k = 0; k < S.o.churn; k++) {
            if (!S.churn[k].c)
                continue;
            const char *ids[4] = {S.a[0].id, S.b[0].id, S.churn[(k + 1) % S.o.churn].node_id,
                                  S.watcher.id};
            char rid[RDV_REQUEST_ID_LEN + 1];
            int rc = rdv_client_lookup(S.churn[k].c, ids, 4, rid);
            if (rc != 0)
                fail_event("churn %d: lookup: %s", k, rdv_strerror(rc));
        }
        usleep(300 * 1000);
        for (int k = 0; k < S.o.churn; k++) {
            pthread_mutex_lock(&S.mu);
            S.churn[k].dying = true;
            pthread_mutex_unlock(&S.mu);
            if (S.churn[k].c)
                rdv_client_destroy(S.churn[k].c);
            S.churn[k].c = NULL;
        }
    }
    return NULL;
}

/* ---- the STUN thread --------------------------------------------------------- */

static void *stun_main(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fail_event("stun: socket: %s", strerror(errno));
        return NULL;
    }
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ml = sizeof me;
    if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0 ||
        getsockname(fd, (struct sockaddr *)&me, &ml) != 0) {
        fail_event("stun: bind: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    struct sockaddr_in srv = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)S.o.stun_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int64_t t0 = mono_ms(), stop_at = 0;
    uint64_t sent = 0;
    for (;;) {
        int64_t now = mono_ms();
        if (!S.stop_sending) {
            uint64_t due = (uint64_t)((now - t0) * S.o.stun_rate / 1000);
            uint64_t cap = (uint64_t)S.o.stun_rate / 2 + 1;
            if (due > sent + cap) /* no catching up after a stall */
                sent = due - cap;
            while (sent < due) {
                uint8_t tid[RDV_STUN_TID_BYTES], buf[128];
                randombytes_buf(tid, sizeof tid);
                rdv_stun_request_opts ro = {.fingerprint = true, .software = "rdv-soak"};
                int n = rdv_stun_build_binding_request(buf, sizeof buf, tid, &ro);
                if (n <= 0 ||
                    sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&srv, sizeof srv) != n)
                    fail_event("stun: request not sent: %s", strerror(errno));
                sent++; /* an unsent one counts as unanswered */
                pthread_mutex_lock(&S.mu);
                S.stun_sent++;
                pthread_mutex_unlock(&S.mu);
            }
        } else if (!stop_at) {
            stop_at = now + 1000; /* answers still on their way */
        } else if (now > stop_at) {
            break;
        }
        uint8_t rb[512];
        for (;;) {
            ssize_t r = recv(fd, rb, sizeof rb, 0);
            if (r <= 0)
                break;
            rdv_stun_msg m;
            bool ok = rdv_stun_parse(rb, (size_t)r, &m) > 0 &&
                      m.method == RDV_STUN_METHOD_BINDING && m.cls == RDV_STUN_CLASS_SUCCESS &&
                      m.has_xor_mapped && m.xor_mapped.port == ntohs(me.sin_port);
            pthread_mutex_lock(&S.mu);
            if (ok)
                S.stun_recv++;
            else
                S.stun_bad++;
            pthread_mutex_unlock(&S.mu);
        }
        usleep(2000);
    }
    close(fd);
    return NULL;
}

/* ---- status and the driver ------------------------------------------------------ */

static void write_status(int64_t t0)
{
    if (!S.o.status)
        return;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.400s.tmp", S.o.status);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    uint64_t os = 0, orc = 0, as = 0, ar = 0;
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.o.pairs; i++) {
        os += S.offers_sent[i];
        orc += S.offers_recv[i];
        as += S.answers_sent[i];
        ar += S.answers_recv[i];
    }
    fprintf(f,
            "t_s=%.1f\noffers_sent=%" PRIu64 "\noffers_recv=%" PRIu64 "\nanswers_sent=%" PRIu64
            "\nanswers_recv=%" PRIu64 "\nlookups_sent=%" PRIu64 "\nlookups_answered=%" PRIu64
            "\nrelay_sent=%" PRIu64 "\nrelay_recv=%" PRIu64 "\nrelay_sessions=%" PRIu64
            "\nstorms=%" PRIu64 "\nchurn_connected=%" PRIu64 "\nqueued_sent=%" PRIu64
            "\nqueued_delivered=%" PRIu64 "\npeer_online=%" PRIu64 "\npeer_offline=%" PRIu64
            "\nstun_sent=%" PRIu64 "\nstun_recv=%" PRIu64 "\nerrors=%" PRIu64 "\nbacklog=%" PRIu64
            "\n",
            (double)(mono_ms() - t0) / 1000.0, os, orc, as, ar, S.lookups_sent,
            S.lookups_answered, S.relay_sent, S.relay_recv, S.relay_sessions, S.storms,
            S.churn_connected, S.queued_sent, S.queued_delivered, S.peer_online,
            S.peer_offline, S.stun_sent, S.stun_recv, S.errors, S.backlog);
    pthread_mutex_unlock(&S.mu);
    if (fclose(f) == 0)
        (void)rename(tmp, S.o.status);
}

/* One relay stream's step: open, send what is due, cycle. */
static void relay_step(int k, int64_t now, int64_t *last_ms, double *credit)
{
    relay_stream *s = &S.rs[k];
    pthread_mutex_lock(&S.mu);
    bool open = s->open, opening = s->opening, closing = s->closing;
    uint64_t sent = s->sent, recv = s->recv;
    int64_t opened = s->opened_ms, close_ms = s->close_ms;
    pthread_mutex_unlock(&S.mu);
    if (!open && !opening) {
        if (S.stop_sending)
            return;
        char sid[RDV_SESSION_ID_LEN + 1];
        int rc = rdv_session_open(S.r1[k].c, S.r2[k].id, sid);
        if (rc != 0) {
            fail_event("R1-%d: relay open: %s", k, rdv_strerror(rc));
            return;
        }
        pthread_mutex_lock(&S.mu);
        snprintf(s->sid, sizeof s->sid, "%s", sid);
        s->opening = true;
        s->closing = false;
        if (strcmp(s->ready_sid, sid) == 0) { /* it was quicker than us */
            s->open = true;
            s->opening = false;
            s->opened_ms = now;
        }
        s->sent = s->recv = 0;
        s->sessions++;
        S.relay_sessions++;
        pthread_mutex_unlock(&S.mu);
        *last_ms = now;
        *credit = 0;
        return;
    }
    if (!open)
        return;
    /* cycle, and at the end of the run (an open session left without
     * data would meet the server's relay idle timeout during the drain) */
    if (closing || S.stop_sending || now - opened > RELAY_CYCLE_MS) {
        /* cycle: stop sending, close once everything arrived (or 30 s) */
        if (!closing) {
            pthread_mutex_lock(&S.mu);
            s->closing = true;
            s->close_ms = close_ms = now;
            pthread_mutex_unlock(&S.mu);
        }
        if (recv >= sent || now - close_ms > 30000) {
            if (recv < sent)
                fail_event("R1-%d: %" PRIu64 " of %" PRIu64 " datagrams arrived on %s", k,
                           recv, sent, s->sid);
            (void)rdv_session_close(S.r1[k].c, s->sid);
            pthread_mutex_lock(&S.mu);
            s->open = false;
            s->closing = false;
            pthread_mutex_unlock(&S.mu);
        }
        return;
    }
    if (S.stop_sending)
        return;
    *credit += (double)(now - *last_ms) * S.o.relay_rate / 1000.0;
    if (*credit > S.o.relay_rate / 2.0 + 1.0) /* no catching up after a stall */
        *credit = S.o.relay_rate / 2.0 + 1.0;
    *last_ms = now;
    uint8_t buf[16384];
    size_t len = (size_t)S.o.relay_bytes;
    if (len < 8)
        len = 8;
    if (len > sizeof buf)
        len = sizeof buf;
    memset(buf, 0x5a, len);
    while (*credit >= 1.0) {
        *credit -= 1.0;
        uint64_t seq = sent + 1;
        memcpy(buf, &seq, 8);
        int rc = rdv_session_send(S.r1[k].c, s->sid, buf, len);
        if (rc == RDV_ERR_BACKLOG) {
            /* the library's bounded queue is full: back pressure, not a
             * loss (nothing was sent); what is due now is skipped */
            *credit = 0;
            pthread_mutex_lock(&S.mu);
            S.backlog++;
            pthread_mutex_unlock(&S.mu);
            return;
        }
        if (rc != 0) {
            fail_event("R1-%d: relay send: %s", k, rdv_strerror(rc));
            return;
        }
        sent++;
        pthread_mutex_lock(&S.mu);
        s->sent = sent;
        S.relay_sent++;
        pthread_mutex_unlock(&S.mu);
    }
}

/* B's answers to the offers it got, in order; stops at back pressure.
 * Paced at twice the offer rate (a burst of half a second's worth), so
 * answers that piled up while this thread stalled go out without
 * exceeding the server's rate limit. */
static void send_answers(void)
{
    static double credit[MAX_PAIRS];
    static int64_t last;
    int64_t now = mono_ms();
    rdv_connection_info ci = soak_info();
    for (int i = 0; i < S.o.pairs; i++) {
        credit[i] += (double)(now - (last ? last : now)) * 2.0 * S.o.rate / 1000.0;
        if (credit[i] > S.o.rate + 1.0)
            credit[i] = S.o.rate + 1.0;
        for (; credit[i] >= 1.0; credit[i] -= 1.0) {
            pthread_mutex_lock(&S.mu);
            uint64_t seq = S.answers_sent[i] + 1;
            bool due = seq <= S.offers_recv[i];
            pthread_mutex_unlock(&S.mu);
            if (!due)
                break;
            char sid[RDV_SESSION_ID_LEN + 1];
            make_sid(sid, 1, (unsigned)i, seq);
            int rc = rdv_client_send_answer(S.b[i].c, S.a[i].id, sid, &ci);
            pthread_mutex_lock(&S.mu);
            if (rc == RDV_ERR_BACKLOG)
                S.backlog++;
            else
                S.answers_sent[i] = seq; /* sent, or failed (reported) */
            pthread_mutex_unlock(&S.mu);
            if (rc == RDV_ERR_BACKLOG)
                break;
            if (rc != 0)
                fail_event("B%d: answer %" PRIu64 " not sent: %s", i, seq, rdv_strerror(rc));
        }
    }
    last = now;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: soak_load --url ws://HOST:PORT/v1 [--stun-port N] [--duration S] "
            "[--drain S]\n"
            "  [--pairs N] [--rate N] [--relays N] [--relay-rate N] [--relay-bytes N]\n"
            "  [--churn N] [--churn-every S] [--stun-rate N] [--status FILE]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    opts *o = &S.o;
    *o = (opts){.duration_s = 60, .drain_s = 60, .pairs = 6, .rate = 10, .relays = 2,
                .relay_rate = 100, .relay_bytes = 600, .churn = 20, .churn_every_s = 10,
                .stun_rate = 100};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT_INT(name, field, lo, hi)                                                       \
    if (!strcmp(a, name)) {                                                                \
        if (!v)                                                                            \
            usage();                                                                       \
        o->field = atoi(v);                                                                \
        if (o->field < (lo) || o->field > (hi))                                            \
            usage();                                                                       \
        i++;                                                                               \
        continue;                                                                          \
    }
        if (!strcmp(a, "--url") && v) {
            o->url = v;
            i++;
            continue;
        }
        if (!strcmp(a, "--status") && v) {
            o->status = v;
            i++;
            continue;
        }
        OPT_INT("--stun-port", stun_port, 0, 65535)
        OPT_INT("--duration", duration_s, 1, 86400)
        OPT_INT("--drain", drain_s, 1, 600)
        OPT_INT("--pairs", pairs, 1, MAX_PAIRS)
        OPT_INT("--rate", rate, 1, 40)
        OPT_INT("--relays", relays, 0, MAX_RELAYS)
        OPT_INT("--relay-rate", relay_rate, 1, 10000)
        OPT_INT("--relay-bytes", relay_bytes, 8, 16000)
        OPT_INT("--churn", churn, 1, MAX_CHURN)
        OPT_INT("--churn-every", churn_every_s, 2, 3600)
        OPT_INT("--stun-rate", stun_rate, 0, 100000)
        usage();
    }
    if (!o->url)
        usage();
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0)
        return 2;
    snprintf(stun_addr, sizeof stun_addr, "127.0.0.1:%d", S.o.stun_port);
    stun_list[0] = stun_addr;
    for (int k = 0; k < S.o.churn; k++) {
        if (rdv_identity_generate(&S.churn[k].id) != 0)
            return 2;
        rdv_identity_node_id(&S.churn[k].id, S.churn[k].node_id);
    }
    for (int i = 0; i < S.o.pairs; i++) {
        node_start(&S.a[i], ROLE_A, i);
        node_start(&S.b[i], ROLE_B, i);
    }
    for (int i = 0; i < S.o.relays; i++) {
        node_start(&S.r1[i], ROLE_R1, i);
        node_start(&S.r2[i], ROLE_R2, i);
    }
    node_start(&S.watcher, ROLE_WATCHER, 0);
    node_start(&S.mailer, ROLE_MAILER, 0);
    int64_t until = mono_ms() + 20000;
    while (!all_authed()) {
        if (mono_ms() > until) {
            fprintf(stderr, "soak_load: FAIL: the long-lived nodes did not all authenticate "
                            "within 20 s\n");
            return 1;
        }
        usleep(20000);
    }
    /* the watcher watches every churn identity */
    {
        const char *ids[MAX_CHURN];
        for (int k = 0; k < S.o.churn; k++)
            ids[k] = S.churn[k].node_id;
        for (int k = 0; k < S.o.churn; k += 64) {
            size_t n = (size_t)(S.o.churn - k < 64 ? S.o.churn - k : 64);
            int rc = rdv_client_watch(S.watcher.c, ids + k, n);
            if (rc != 0)
                fail_event("watcher: watch: %s", rdv_strerror(rc));
        }
    }
    pthread_t th_churn, th_stun;
    pthread_create(&th_churn, NULL, churn_main, NULL);
    bool stun_on = S.o.stun_port > 0 && S.o.stun_rate > 0;
    if (stun_on)
        pthread_create(&th_stun, NULL, stun_main, NULL);

    int64_t t0 = mono_ms(), end = t0 + (int64_t)S.o.duration_s * 1000;
    int64_t last_status = 0, last_lookup = t0;
    double credit[MAX_PAIRS] = {0}, rcredit[MAX_RELAYS] = {0};
    int64_t rlast[MAX_RELAYS];
    for (int k = 0; k < S.o.relays; k++)
        rlast[k] = t0;
    int64_t last = t0;
    rdv_connection_info ci = soak_info();
    while (mono_ms() < end) {
        int64_t now = mono_ms();
        for (int i = 0; i < S.o.pairs; i++) {
            /* no catching up after a stall of this thread (a loaded
             * machine): at most half a second's worth at once, so the load
             * never bursts past the server's rate limit */
            credit[i] += (double)(now - last) * S.o.rate / 1000.0;
            if (credit[i] > S.o.rate / 2.0 + 1.0)
                credit[i] = S.o.rate / 2.0 + 1.0;
            while (credit[i] >= 1.0) {
                credit[i] -= 1.0;
                char sid[RDV_SESSION_ID_LEN + 1];
                pthread_mutex_lock(&S.mu);
                uint64_t seq = S.offers_sent[i] + 1;
                pthread_mutex_unlock(&S.mu);
                make_sid(sid, 1, (unsigned)i, seq);
                int rc = rdv_client_send_offer(S.a[i].c, S.b[i].id, sid, &ci);
                if (rc == RDV_ERR_BACKLOG) { /* back pressure: again later */
                    credit[i] += 1.0;
                    pthread_mutex_lock(&S.mu);
                    S.backlog++;
                    pthread_mutex_unlock(&S.mu);
                    break;
                }
                if (rc != 0) {
                    fail_event("A%d: offer %" PRIu64 ": %s", i, seq, rdv_strerror(rc));
                    continue;
                }
                pthread_mutex_lock(&S.mu);
                S.offers_sent[i] = seq;
                pthread_mutex_unlock(&S.mu);
            }
        }
        last = now;
        send_answers();
        if (now - last_lookup >= LOOKUP_EVERY_MS) {
            last_lookup = now;
            for (int i = 0; i < S.o.pairs; i++) {
                const char *ids[8];
                for (int j = 0; j < 8; j++) {
                    int r = (i + j) % 4;
                    ids[j] = r == 0   ? S.b[(i + j) % S.o.pairs].id
                             : r == 1 ? S.a[(i + j) % S.o.pairs].id
                             : r == 2 ? S.churn[(i * 8 + j) % S.o.churn].node_id
                                      : S.watcher.id;
                }
                char rid[RDV_REQUEST_ID_LEN + 1];
                int rc = rdv_client_lookup(S.a[i].c, ids, 8, rid);
                if (rc == RDV_ERR_BACKLOG) {
                    pthread_mutex_lock(&S.mu);
                    S.backlog++;
                    pthread_mutex_unlock(&S.mu);
                } else if (rc != 0)
                    fail_event("A%d: lookup: %s", i, rdv_strerror(rc));
                else {
                    pthread_mutex_lock(&S.mu);
                    S.lookups_sent++;
                    pthread_mutex_unlock(&S.mu);
                }
            }
        }
        for (int k = 0; k < S.o.relays; k++)
            relay_step(k, now, &rlast[k], &rcredit[k]);
        if (now - last_status >= 1000) {
            last_status = now;
            write_status(t0);
        }
        usleep(5000);
    }
    S.stop_sending = 1;
    pthread_join(th_churn, NULL);
    /* drain: what is in flight arrives; relay sessions are closed */
    int64_t drain_end = mono_ms() + (int64_t)S.o.drain_s * 1000;
    for (;;) {
        int64_t now = mono_ms();
        bool done = true;
        send_answers();
        for (int k = 0; k < S.o.relays; k++) {
            relay_step(k, now, &rlast[k], &rcredit[k]);
            pthread_mutex_lock(&S.mu);
            done = done && !S.rs[k].open && !S.rs[k].opening;
            pthread_mutex_unlock(&S.mu);
        }
        pthread_mutex_lock(&S.mu);
        for (int i = 0; i < S.o.pairs; i++)
            done = done && S.offers_recv[i] == S.offers_sent[i] &&
                   S.answers_recv[i] == S.answers_sent[i] &&
                   S.answers_sent[i] == S.offers_sent[i];
        done = done && S.lookups_answered >= S.lookups_sent;
        pthread_mutex_unlock(&S.mu);
        if (done || now > drain_end)
            break;
        if (now - last_status >= 1000) {
            last_status = now;
            write_status(t0);
        }
        usleep(10000);
    }
    if (stun_on)
        pthread_join(th_stun, NULL);
    write_status(t0);

    /* verdict */
    int fails = 0;
    uint64_t os = 0, orc = 0, ar = 0;
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.o.pairs; i++) {
        os += S.offers_sent[i];
        orc += S.offers_recv[i];
        ar += S.answers_recv[i];
        if (S.offers_recv[i] != S.offers_sent[i] || S.answers_recv[i] != S.offers_sent[i]) {
            fprintf(stderr,
                    "soak_load: pair %d: %" PRIu64 " offers sent, %" PRIu64 " received, %" PRIu64
                    " answers received\n",
                    i, S.offers_sent[i], S.offers_recv[i], S.answers_recv[i]);
            fails++;
        }
    }
    if (S.lookups_answered != S.lookups_sent) {
        fprintf(stderr, "soak_load: %" PRIu64 " lookups, %" PRIu64 " answered\n", S.lookups_sent,
                S.lookups_answered);
        fails++;
    }
    if (S.queued_delivered != S.queued_sent || S.queued_dup) {
        fprintf(stderr,
                "soak_load: %" PRIu64 " offers queued for churn nodes, %" PRIu64
                " delivered, %" PRIu64 " twice\n",
                S.queued_sent, S.queued_delivered, S.queued_dup);
        fails++;
    }
    if (S.relay_recv != S.relay_sent) {
        fprintf(stderr, "soak_load: relay: %" PRIu64 " datagrams sent, %" PRIu64 " received\n",
                S.relay_sent, S.relay_recv);
        fails++;
    }
    if (stun_on && (S.stun_bad || (double)S.stun_recv < 0.999 * (double)S.stun_sent)) {
        fprintf(stderr, "soak_load: STUN: %" PRIu64 " sent, %" PRIu64 " answered, %" PRIu64
                        " bad\n",
                S.stun_sent, S.stun_recv, S.stun_bad);
        fails++;
    }
    if (S.errors) {
        fprintf(stderr, "soak_load: %" PRIu64 " unexpected errors; the first:\n", S.errors);
        for (int i = 0; i < S.n_first; i++)
            fprintf(stderr, "  %s\n", S.first_errors[i]);
        fails++;
    }
    printf("soak_load: %s: %.0f s, offers %" PRIu64 "/%" PRIu64 " answers %" PRIu64
           ", lookups %" PRIu64 "/%" PRIu64 ", relay %" PRIu64 "/%" PRIu64 " in %" PRIu64
           " sessions, storms %" PRIu64 " (%" PRIu64 " churn connects, queued %" PRIu64 "/%" PRIu64
           ", presence pushes %" PRIu64 "+%" PRIu64 "), STUN %" PRIu64 "/%" PRIu64
           ", errors %" PRIu64 ", back-pressure waits %" PRIu64 "\n",
           fails ? "FAIL" : "PASS", (double)(mono_ms() - t0) / 1000.0, orc, os, ar,
           S.lookups_answered, S.lookups_sent, S.relay_recv, S.relay_sent, S.relay_sessions,
           S.storms, S.churn_connected, S.queued_delivered, S.queued_sent, S.peer_online,
           S.peer_offline, S.stun_recv, S.stun_sent, S.errors, S.backlog);
    S.finished = 1;
    pthread_mutex_unlock(&S.mu);
    fflush(stdout);
    /* the long-lived nodes go: their errors from now on are not the load's */
    for (int i = 0; i < S.o.pairs; i++) {
        rdv_client_destroy(S.a[i].c);
        rdv_client_destroy(S.b[i].c);
    }
    for (int i = 0; i < S.o.relays; i++) {
        rdv_client_destroy(S.r1[i].c);
        rdv_client_destroy(S.r2[i].c);
    }
    rdv_client_destroy(S.watcher.c);
    rdv_client_destroy(S.mailer.c);
    for (int k = 0; k < S.o.churn; k++)
        rdv_identity_wipe(&S.churn[k].id);
    return fails ? 1 : 0;
}
