/* engine_redis.c - the cluster engine: instances share presence, the
 * offline queue and a message bus through one Redis (see engine.h, and
 * engine_redis_scripts.h for the keys and the scripts).
 *
 * The event loop never waits on Redis. Two threads of this engine do:
 *   - the command thread owns one blocking hiredis connection: it runs the
 *     jobs the loop queues (one script each), beats the instance's
 *     heartbeat every BEAT_MS, and reconnects with backoff when Redis goes;
 *   - the subscriber thread owns a second connection, SUBSCRIBEd to this
 *     instance's inbox (rdv:i:ID) and to rdv:presence.
 * Both hand their results to the loop through one mutex-guarded list and
 * wake it with lws_cancel_service(); srv_engine_poll() runs the callbacks
 * on the loop thread. hiredis (Debian's libhiredis 0.14) has no thread
 * safety of its own: each connection is used by its one thread only.
 *
 * While Redis is unreachable the instance serves alone: nodes connected
 * here signal each other directly (route.c never asks the engine for
 * them), lookups answer from local knowledge, and a message for a node
 * elsewhere fails with `internal` at once (healthy() is false, /healthz
 * says 503). When Redis answers again, the loop re-registers its nodes
 * (events.reconnected).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <libwebsockets.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "rendezvous/engine.h"
#include "rendezvous/engine_redis_scripts.h"

#define BEAT_MS 1000          /* heartbeat period */
#define INSTANCE_TTL_MS 5000  /* an instance silent this long is dead */
#define CMD_TIMEOUT_MS 2000   /* one Redis command */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define EXPIRE_BATCH 100      /* node queues looked at per expiry sweep */
#define PIPELINE_MAX 64       /* jobs sent in one round trip */
#define RETIRE_MS 1000        /* stopping: how long queued writes may take */

typedef enum job_kind {
    J_JOINED,
    J_LEFT,
    J_LOOKUP,
    J_ROUTE,
    J_REQUEUE,
    J_TAKE,
    J_EXPIRE,
    J_NOTIFY,
    J_RELAYTO,
    J_PUBLISH,    /* args: channel, payload */
    J_ADM_LOAD,   /* every admission list */
    J_ADM_SET,    /* one admission change */
    /* produced by the threads, not the loop */
    E_INBOX,      /* a message on this instance's channel */
    E_PRESENCE,   /* a line on rdv:presence */
    E_ADMISSION,  /* a line on rdv:admission */
    E_RECONNECTED /* Redis answers again: re-register the nodes here */
} job_kind;

typedef struct job {
    struct job *next;
    job_kind kind;
    /* inputs */
    char id[RDV_NODE_ID_HEXLEN + 1];
    uint32_t serial;
    int64_t now, expires;
    int cap;
    char *args[8];      /* script arguments (owned), count in nargs */
    size_t arglen[8];
    int nargs;
    /* outputs */
    long long ires;     /* integer reply */
    redisReply *reply;  /* array reply (lookup, take, expire), owned */
    char *payload;      /* E_INBOX / E_PRESENCE bytes (owned) */
    size_t payload_len;
    bool failed;
    /* completion */
    srv_lookup_cb lookup_cb;
    srv_route_cb route_cb;
    srv_msg_cb each;
    srv_done_cb done;
    srv_relay_route_cb relay_cb;
    srv_adm_each_cb adm_each;
    char inst[33];      /* J_RELAYTO: where it went */
    void *user;
} job;

typedef struct redis_engine {
    srv_engine base;
    char host[256];
    int port;
    char unix_path[256];
    int db;
    char id[33];                 /* this instance */
    struct lws_context *ctx;     /* woken when results wait; NULL after detach */
    pthread_mutex_t lock;        /* guards everything below it and ctx */
    pthread_cond_t cond;
    job *todo_head, *todo_tail;  /* loop -> command thread */
    job *done_head, *done_tail;  /* threads -> loop */
    bool stop;
    int64_t stop_deadline;       /* stopping: queued writes until then */
    pthread_t cmd_thread, sub_thread;
    bool threads;
    atomic_bool connected;       /* the command connection answers */
    atomic_int instances;
    atomic_ullong bus_in, bus_out, errors, depth_cache;
    atomic_ullong cluster_nodes; /* nodes on live instances, at the last beat */
    /* loop thread only */
    srv_msg_cb expire_each;      /* the last expiry callback: also for entries
                                  * found expired by take */
    void *expire_user;
} redis_engine;

static redis_engine *of(srv_engine *e)
{
    return (redis_engine *)e;
}

/* ---- jobs ---------------------------------------------------------- */

static void job_free(job *j)
{
    if (!j)
        return;
    for (int i = 0; i < j->nargs; i++)
        free(j->args[i]);
    if (j->reply)
        freeReplyObject(j->reply);
    free(j->payload);
    free(j);
}

/* Appends a copy of len bytes of p as the next script argument. */
static bool job_arg(job *j, const void *p, size_t len)
{
    if (j->nargs >= 8)
        return false;
    char *c = malloc(len + 1);
    if (!c)
        return false;
    memcpy(c, p, len);
    c[len] = '\0';
    j->args[j->nargs] = c;
    j->arglen[j->nargs] = len;
    j->nargs++;
    return true;
}

static bool job_str(job *j, const char *s)
{
    return job_arg(j, s, strlen(s));
}

static bool job_num(job *j, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    return job_arg(j, b, (size_t)n);
}

static void wake(redis_engine *r)
{
    /* under r->lock */
    if (r->ctx)
        lws_cancel_service(r->ctx);
}

/* Hands j to the command thread. */
static void submit(redis_engine *r, job *j)
{
    pthread_mutex_lock(&r->lock);
    if (r->todo_tail)
        r->todo_tail->next = j;
    else
        r->todo_head = j;
    r->todo_tail = j;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* A thread's result (or event) for the loop. */
static void finish(redis_engine *r, job *j)
{
    pthread_mutex_lock(&r->lock);
    j->next = NULL;
    if (r->done_tail)
        r->done_tail->next = j;
    else
        r->done_head = j;
    r->done_tail = j;
    wake(r);
    pthread_mutex_unlock(&r->lock);
}

static job *job_new(job_kind kind)
{
    job *j = calloc(1, sizeof(job));
    if (j)
        j->kind = kind;
    return j;
}

/* ---- entries ------------------------------------------------------- */

/* "M TO FROM TYPE SID CREATED EXPIRES\n" + raw, malloc'd, length in *len. */
static char *entry_encode(const srv_queued_msg *m, size_t *len)
{
    char head[400];
    int n = snprintf(head, sizeof head, "M %s %s %s %s %lld %lld\n", m->recipient,
                     m->sender && *m->sender ? m->sender : "-",
                     m->type && *m->type ? m->type : "-",
                     m->session_id && *m->session_id ? m->session_id : "-",
                     (long long)m->created, (long long)m->expires);
    if (n < 0 || (size_t)n >= sizeof head)
        return NULL;
    char *e = malloc((size_t)n + m->raw_len);
    if (!e)
        return NULL;
    memcpy(e, head, (size_t)n);
    memcpy(e + n, m->raw, m->raw_len);
    *len = (size_t)n + m->raw_len;
    return e;
}

/* Fields of an entry, pointing into buf (which gets NULs); false when it
 * is not one. */
typedef struct entry {
    char *to, *from, *type, *sid;
    long long created, expires;
    const uint8_t *raw;
    size_t raw_len;
} entry;

static bool entry_decode(char *buf, size_t len, entry *e)
{
    char *nl = memchr(buf, '\n', len);
    if (!nl || len < 2 || buf[0] != 'M' || buf[1] != ' ')
        return false;
    *nl = '\0';
    char *save = NULL;
    char *tok[7];
    char *p = buf;
    for (int i = 0; i < 7; i++) {
        tok[i] = strtok_r(p, " ", &save);
        p = NULL;
        if (!tok[i])
            return false;
    }
    e->to = tok[1];
    e->from = strcmp(tok[2], "-") ? tok[2] : NULL;
    e->type = strcmp(tok[3], "-") ? tok[3] : NULL;
    e->sid = strcmp(tok[4], "-") ? tok[4] : NULL;
    e->created = atoll(tok[5]);
    e->expires = atoll(tok[6]);
    e->raw = (const uint8_t *)(nl + 1);
    e->raw_len = len - (size_t)(nl + 1 - buf);
    return true;
}

/* Calls each() with the entry text of reply element el (copied, as the
 * decode writes into it). expired: entries whose expiry passed go to the
 * engine's expiry callback instead (take), or all do (expire). */
static int each_entry(redis_engine *r, const redisReply *el, int64_t now, srv_msg_cb each,
                      void *user, bool all_expired)
{
    if (el->type != REDIS_REPLY_STRING)
        return 0;
    char *copy = malloc(el->len + 1);
    if (!copy)
        return 0;
    memcpy(copy, el->str, el->len);
    copy[el->len] = '\0';
    entry e;
    int n = 0;
    if (entry_decode(copy, el->len, &e)) {
        srv_queued_msg m = {
            .recipient = e.to,
            .sender = e.from,
            .type = e.type,
            .session_id = e.sid,
            .raw = e.raw,
            .raw_len = e.raw_len,
            .created = e.created,
            .expires = e.expires,
        };
        if (!all_expired && e.expires > now) {
            each(user, &m);
            n = 1;
        } else if (r->expire_each) {
            r->expire_each(r->expire_user, &m);
        }
    }
    free(copy);
    return n;
}

/* ---- the command thread -------------------------------------------- */

/* Wall-clock ms: the heartbeat times other instances read. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic ms: every delay of this thread (heartbeat period, reconnect
 * backoff, the retire deadline), so a wall-clock jump back does not stop
 * the heartbeat and get this instance declared dead. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new connection: connected, authenticated, database selected, command
 * timeout set. NULL when Redis does not answer (the reason in why). */
static redisContext *open_conn(redis_engine *r, char *why, size_t whylen)
{
    struct timeval tv = {CMD_TIMEOUT_MS / 1000, (CMD_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = r->unix_path[0] ? redisConnectUnixWithTimeout(r->unix_path, tv)
                                      : redisConnectWithTimeout(r->host, r->port, tv);
    if (!c || c->err) {
        snprintf(why, whylen, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "cannot set the command timeout");
        redisFree(c);
        return NULL;
    }
    const char *pw = getenv("RENDEZVOUS_REDIS_PASSWORD");
    if (pw && *pw) {
        redisReply *a = redisCommand(c, "AUTH %s", pw);
        bool ok = a && a->type != REDIS_REPLY_ERROR;
        snprintf(why, whylen, "AUTH: %s", a && a->type == REDIS_REPLY_ERROR ? a->str : "failed");
        if (a)
            freeReplyObject(a);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    if (r->db) {
        redisReply *s = redisCommand(c, "SELECT %d", r->db);
        bool ok = s && s->type != REDIS_REPLY_ERROR;
        if (s)
            freeReplyObject(s);
        if (!ok) {
            snprintf(why, whylen, "SELECT %d failed", r->db);
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static const char *script_of(job_kind k)
{
    switch (k) {
    case J_JOINED: return SRV_LUA_JOIN;
    case J_LEFT: return SRV_LUA_LEAVE;
    case J_LOOKUP: return SRV_LUA_LOOKUP;
    case J_ROUTE: return SRV_LUA_ROUTE;
    case J_REQUEUE: return SRV_LUA_REQUEUE;
    case J_TAKE: return SRV_LUA_TAKE;
    case J_EXPIRE: return SRV_LUA_EXPIRE;
    case J_NOTIFY: return SRV_LUA_NOTIFY;
    case J_RELAYTO: return SRV_LUA_RELAYTO;
    case J_ADM_LOAD: return SRV_LUA_ADM_LOAD;
    case J_ADM_SET: return SRV_LUA_ADM_SET;
    default: return NULL;
    }
}

/* The command of j as hiredis arguments: EVAL script 0 ARGS... (script
 * NULL: j's own), or PUBLISH ARGS... for J_PUBLISH. Returns the count, or
 * 0 when j has no command. argv/lens hold at least 3 + 8 entries. */
static int job_argv(const job *j, const char *script, const char **argv, size_t *lens)
{
    int n = 0;
    if (!script && j->kind == J_PUBLISH) {
        argv[n] = "PUBLISH";
        lens[n++] = 7;
    } else {
        if (!script)
            script = script_of(j->kind);
        if (!script)
            return 0;
        argv[n] = "EVAL";
        lens[n++] = 4;
        argv[n] = script;
        lens[n++] = strlen(script);
        argv[n] = "0";
        lens[n++] = 1;
    }
    for (int i = 0; i < j->nargs; i++) {
        argv[n] = j->args[i];
        lens[n++] = j->arglen[i];
    }
    return n;
}

/* Appends j's command to c's output. */
static bool append_job(redisContext *c, const job *j)
{
    const char *argv[12];
    size_t lens[12];
    int n = job_argv(j, NULL, argv, lens);
    return n > 0 && redisAppendCommandArgv(c, n, argv, lens) == REDIS_OK;
}

/* Stores the reply of j (taking it). */
static void take_reply(redis_engine *r, job *j, redisReply *rep)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        j->failed = true;
        atomic_fetch_add(&r->errors, 1);
        freeReplyObject(rep);
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER)
        j->ires = rep->integer;
    if (rep->type == REDIS_REPLY_STRING && j->kind == J_RELAYTO)
        snprintf(j->inst, sizeof j->inst, "%.*s", (int)rep->len, rep->str);
    if (rep->type == REDIS_REPLY_ARRAY) {
        j->reply = rep;
        rep = NULL;
    }
    if (rep)
        freeReplyObject(rep);
    if ((j->kind == J_ROUTE && j->ires == 0) || (j->kind == J_NOTIFY && j->ires > 0) ||
        (j->kind == J_RELAYTO && j->inst[0]) || j->kind == J_PUBLISH)
        atomic_fetch_add(&r->bus_out, 1);
}

/* Runs n jobs on c pipelined (one round trip for all). False when the
 * connection broke: the jobs without a reply are failed. */
static bool run_jobs(redis_engine *r, redisContext *c, job **jobs, int n)
{
    int appended = 0;
    while (appended < n && append_job(c, jobs[appended]))
        appended++;
    bool ok = appended == n;
    for (int i = 0; i < appended; i++) {
        void *rep = NULL;
        if (redisGetReply(c, &rep) == REDIS_OK && rep) {
            take_reply(r, jobs[i], rep);
            continue;
        }
        ok = false;
        for (int k = i; k < appended; k++)
            jobs[k]->failed = true;
        break;
    }
    for (int i = appended; i < n; i++)
        jobs[i]->failed = true;
    if (!ok)
        atomic_fetch_add(&r->errors, 1);
    return ok;
}

/* EVAL of script with j's arguments, synchronously (the heartbeat).
 * Returns the reply or NULL (*broken: the connection failed). */
static redisReply *eval(redisContext *c, const char *script, const job *j, bool *broken)
{
    const char *argv[12];
    size_t lens[12];
    int n = job_argv(j, script, argv, lens);
    redisReply *rep = redisCommandArgv(c, n, argv, lens);
    if (!rep) {
        *broken = true;
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Heartbeat and dead-instance sweep; also refreshes the queue depth. */
static bool beat(redis_engine *r, redisContext *c)
{
    job j;
    memset(&j, 0, sizeof j);
    bool ok = job_str(&j, r->id) && job_num(&j, now_ms()) && job_num(&j, INSTANCE_TTL_MS);
    bool broken = false;
    redisReply *rep = ok ? eval(c, SRV_LUA_BEAT, &j, &broken) : NULL;
    for (int i = 0; i < j.nargs; i++)
        free(j.args[i]);
    if (!rep)
        return !broken;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        atomic_store(&r->instances, (int)rep->element[0]->integer);
        atomic_store(&r->cluster_nodes, (unsigned long long)rep->element[1]->integer);
    }
    freeReplyObject(rep);
    redisReply *d = redisCommand(c, "GET rdv:qdepth");
    if (!d)
        return false;
    if (d->type == REDIS_REPLY_STRING)
        atomic_store(&r->depth_cache, (unsigned long long)(atoll(d->str) > 0 ? atoll(d->str) : 0));
    else if (d->type == REDIS_REPLY_NIL)
        atomic_store(&r->depth_cache, 0);
    freeReplyObject(d);
    return true;
}

/* A clean stop: this instance's nodes offline and its heartbeat gone at
 * once, rather than when the heartbeat expires. */
static void retire(redis_engine *r, redisContext *c)
{
    job j;
    memset(&j, 0, sizeof j);
    bool broken = false;
    redisReply *rep = job_str(&j, r->id) && job_num(&j, now_ms())
                          ? eval(c, SRV_LUA_RETIRE, &j, &broken)
                          : NULL;
    for (int i = 0; i < j.nargs; i++)
        free(j.args[i]);
    if (rep)
        freeReplyObject(rep);
}

/* The command thread's connection state. */
typedef struct conn_state {
    redisContext *c;
    int backoff;
    int64_t next_beat, next_try;
} conn_state;

/* Connects when due (with backoff) and beats when due; a first success
 * after an outage or a late start tells the loop (E_RECONNECTED: Redis
 * may have lost what it held, the nodes here are recorded again). */
static void keep_conn(redis_engine *r, conn_state *cs, int64_t now)
{
    if (!cs->c && now >= cs->next_try) {
        char why[256] = "";
        cs->c = open_conn(r, why, sizeof why);
        if (!cs->c) {
            cs->next_try = now + cs->backoff;
            cs->backoff = cs->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cs->backoff * 2;
            atomic_fetch_add(&r->errors, 1);
        } else {
            cs->backoff = BACKOFF_MIN_MS;
            cs->next_beat = 0;
        }
    }
    if (cs->c && now >= cs->next_beat) {
        if (!beat(r, cs->c)) {
            redisFree(cs->c);
            cs->c = NULL;
        } else {
            cs->next_beat = now + BEAT_MS;
            if (!atomic_load(&r->connected)) {
                atomic_store(&r->connected, true);
                if (cs->next_try) {
                    job *ev = job_new(E_RECONNECTED);
                    if (ev)
                        finish(r, ev);
                }
            }
        }
    }
    if (!cs->c)
        atomic_store(&r->connected, false);
}

/* Runs a batch; when the connection turns out broken (Redis restarted, a
 * proxy cut it), connects again at once and runs the failed jobs once
 * more before failing them: a job whose reply was lost may then run twice
 * (a queued message twice: receivers drop copies by signature, PROTOCOL.md
 * section 4), never silently not at all while Redis answers. */
static void run_batch(redis_engine *r, conn_state *cs, job **batch, int nb)
{
    if (!cs->c) {
        for (int i = 0; i < nb; i++)
            batch[i]->failed = true;
        return;
    }
    if (run_jobs(r, cs->c, batch, nb))
        return;
    redisFree(cs->c);
    cs->c = NULL;
    atomic_store(&r->connected, false);
    job *again[PIPELINE_MAX];
    int na = 0;
    for (int i = 0; i < nb; i++) {
        if (!batch[i]->failed)
            continue;
        batch[i]->failed = false;
        if (batch[i]->reply) {
            freeReplyObject(batch[i]->reply);
            batch[i]->reply = NULL;
        }
        again[na++] = batch[i];
    }
    cs->next_try = 1; /* due now; nonzero: this is an outage */
    keep_conn(r, cs, mono_ms());
    if (!cs->c || !run_jobs(r, cs->c, again, na)) {
        for (int i = 0; i < na; i++)
            again[i]->failed = true;
        if (cs->c) {
            redisFree(cs->c);
            cs->c = NULL;
            atomic_store(&r->connected, false);
        }
    }
}

static void *cmd_main(void *arg)
{
    redis_engine *r = arg;
    conn_state cs = {NULL, BACKOFF_MIN_MS, 0, 0};
    for (;;) {
        pthread_mutex_lock(&r->lock);
        /* stopping: the writes already queued (nodes leaving) go out first,
         * while Redis answers and for at most RETIRE_MS */
        if (r->stop && (!r->todo_head || !cs.c || mono_ms() >= r->stop_deadline)) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        job *batch[PIPELINE_MAX];
        int nb = 0;
        while (r->todo_head && nb < PIPELINE_MAX) {
            batch[nb++] = r->todo_head;
            r->todo_head = r->todo_head->next;
        }
        if (!r->todo_head)
            r->todo_tail = NULL;
        if (!nb) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until); /* the cond's clock */
            until.tv_nsec += 200 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cond, &r->lock, &until);
        }
        pthread_mutex_unlock(&r->lock);
        keep_conn(r, &cs, mono_ms());
        if (!nb)
            continue;
        run_batch(r, &cs, batch, nb);
        for (int i = 0; i < nb; i++)
            finish(r, batch[i]);
    }
    if (cs.c) {
        retire(r, cs.c);
        redisFree(cs.c);
    }
    return NULL;
}

/* ---- the subscriber thread ------------------------------------------ */

/* Subscribes c to this instance's inbox and rdv:presence. */
static bool subscribe(redis_engine *r, redisContext *c)
{
    char inbox[64];
    snprintf(inbox, sizeof inbox, "rdv:i:%s", r->id);
    if (redisAppendCommand(c, "SUBSCRIBE %s rdv:presence rdv:admission", inbox) != REDIS_OK)
        return false;
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return false;
    return true;
}

/* A pub/sub reply: ["message", channel, payload] becomes an event. */
static void on_pubsub(redis_engine *r, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    job *ev = job_new(E_INBOX);
    if (!ev)
        return;
    ev->kind = !strcmp(rep->element[1]->str, "rdv:presence")    ? E_PRESENCE
               : !strcmp(rep->element[1]->str, "rdv:admission") ? E_ADMISSION
                                                                : E_INBOX;
    ev->payload = malloc(rep->element[2]->len + 1);
    if (!ev->payload) {
        free(ev);
        return;
    }
    memcpy(ev->payload, rep->element[2]->str, rep->element[2]->len);
    ev->payload[rep->element[2]->len] = '\0';
    ev->payload_len = rep->element[2]->len;
    if (ev->kind == E_INBOX)
        atomic_fetch_add(&r->bus_in, 1);
    finish(r, ev);
}

static bool stopping(redis_engine *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stop;
    pthread_mutex_unlock(&r->lock);
    return s;
}

static void *sub_main(void *arg)
{
    redis_engine *r = arg;
    redisContext *c = NULL;
    int backoff = BACKOFF_MIN_MS;
    while (!stopping(r)) {
        if (!c) {
            char why[256];
            c = open_conn(r, why, sizeof why);
            if (c && !subscribe(r, c)) {
                redisFree(c);
                c = NULL;
            }
            if (!c) {
                struct timespec d = {0, (long)backoff * 1000000L};
                nanosleep(&d, NULL);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = BACKOFF_MIN_MS;
        }
        void *rep = NULL;
        if (redisReaderGetReply(c->reader, &rep) != REDIS_OK) {
            redisFree(c);
            c = NULL;
            continue;
        }
        if (rep) {
            on_pubsub(r, rep);
            freeReplyObject(rep);
            continue;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, 250);
        if (pr > 0 && redisBufferRead(c) != REDIS_OK) {
            redisFree(c);
            c = NULL;
        }
    }
    if (c)
        redisFree(c);
    return NULL;
}

/* ---- the loop side: operations --------------------------------------- */

static void rd_joined(srv_engine *e, const char *id, uint32_t serial, const char *nat,
                      const char *ip, int port, int64_t now)
{
    redis_engine *r = of(e);
    job *j = job_new(J_JOINED);
    if (!j)
        return;
    if (!job_str(j, id) || !job_str(j, r->id) || !job_num(j, serial) || !job_str(j, nat) ||
        !job_str(j, ip) || !job_num(j, port) || !job_num(j, now)) {
        job_free(j);
        return;
    }
    submit(r, j);
}

static void rd_left(srv_engine *e, const char *id, uint32_t serial, int64_t now)
{
    redis_engine *r = of(e);
    job *j = job_new(J_LEFT);
    if (!j)
        return;
    if (!job_str(j, id) || !job_str(j, r->id) || !job_num(j, serial) || !job_num(j, now)) {
        job_free(j);
        return;
    }
    submit(r, j);
}

static void rd_lookup(srv_engine *e, const char *const *ids, size_t n, srv_lookup_cb cb,
                      void *user)
{
    redis_engine *r = of(e);
    job *j = job_new(J_LOOKUP);
    if (!j || !atomic_load(&r->connected)) {
        job_free(j);
        cb(user, NULL, 0); /* alone: what this instance knows */
        return;
    }
    /* up to 64 IDs do not fit job.args: one space-separated argument,
     * split by the script (string.gmatch) */
    size_t total = n * (RDV_NODE_ID_HEXLEN + 1);
    char *all = malloc(total + 1);
    if (!all) {
        job_free(j);
        cb(user, NULL, 0);
        return;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(all + off, ids[i], RDV_NODE_ID_HEXLEN);
        off += RDV_NODE_ID_HEXLEN;
        all[off++] = ' ';
    }
    j->args[0] = all;
    j->arglen[0] = off;
    j->nargs = 1;
    j->cap = (int)n;
    j->lookup_cb = cb;
    j->user = user;
    submit(r, j);
}

static void rd_route(srv_engine *e, const srv_route_msg *m, srv_route_cb cb, void *user)
{
    redis_engine *r = of(e);
    if (!atomic_load(&r->connected)) {
        cb(user, SRV_ROUTE_ERROR);
        return;
    }
    job *j = job_new(J_ROUTE);
    srv_queued_msg q = {
        .recipient = m->to,
        .sender = m->from,
        .type = m->type,
        .session_id = m->session_id,
        .raw = m->raw,
        .raw_len = m->raw_len,
        .created = m->created,
        .expires = m->expires,
    };
    size_t len = 0;
    char *ent = j ? entry_encode(&q, &len) : NULL;
    if (!ent) {
        job_free(j);
        cb(user, SRV_ROUTE_ERROR);
        return;
    }
    bool ok = job_str(j, m->to) && job_arg(j, ent, len) && job_num(j, m->cap) &&
              job_num(j, m->expires) && job_str(j, r->id);
    free(ent);
    if (!ok) {
        job_free(j);
        cb(user, SRV_ROUTE_ERROR);
        return;
    }
    j->route_cb = cb;
    j->user = user;
    submit(r, j);
}

static void rd_requeue(srv_engine *e, const srv_queued_msg *m)
{
    redis_engine *r = of(e);
    job *j = job_new(J_REQUEUE);
    size_t len = 0;
    char *ent = j ? entry_encode(m, &len) : NULL;
    if (!ent) {
        job_free(j);
        return;
    }
    bool ok = job_str(j, m->recipient) && job_arg(j, ent, len) && job_num(j, m->expires);
    free(ent);
    if (!ok) {
        job_free(j);
        return;
    }
    submit(r, j);
}

static void rd_take(srv_engine *e, const char *id, int64_t now, srv_msg_cb each,
                    srv_done_cb done, void *user)
{
    redis_engine *r = of(e);
    job *j = job_new(J_TAKE);
    if (!j || !job_str(j, id)) {
        job_free(j);
        if (done)
            done(user, -1);
        return;
    }
    j->now = now;
    j->each = each;
    j->done = done;
    j->user = user;
    submit(r, j);
}

static void rd_expire(srv_engine *e, int64_t now, srv_msg_cb each, void *user)
{
    redis_engine *r = of(e);
    r->expire_each = each;
    r->expire_user = user;
    if (!atomic_load(&r->connected))
        return;
    job *j = job_new(J_EXPIRE);
    if (!j || !job_num(j, now) || !job_num(j, EXPIRE_BATCH)) {
        job_free(j);
        return;
    }
    j->now = now;
    j->each = each;
    j->user = user;
    submit(r, j);
}

static void rd_notify(srv_engine *e, const char *to, const uint8_t *raw, size_t len)
{
    redis_engine *r = of(e);
    job *j = job_new(J_NOTIFY);
    char *p = malloc(3 + RDV_NODE_ID_HEXLEN + len);
    if (!j || !p) {
        free(p);
        job_free(j);
        return;
    }
    int n = snprintf(p, 3 + RDV_NODE_ID_HEXLEN + 1, "N %s\n", to);
    memcpy(p + n, raw, len);
    bool ok = job_str(j, to) && job_arg(j, p, (size_t)n + len) && job_str(j, r->id);
    free(p);
    if (!ok) {
        job_free(j);
        return;
    }
    submit(r, j);
}

static void rd_relay_route(srv_engine *e, const char *to, const uint8_t *payload, size_t len,
                           srv_relay_route_cb cb, void *user)
{
    redis_engine *r = of(e);
    job *j = atomic_load(&r->connected) ? job_new(J_RELAYTO) : NULL;
    if (!j || !job_str(j, to) || !job_arg(j, payload, len) || !job_str(j, r->id)) {
        job_free(j);
        cb(user, NULL);
        return;
    }
    j->relay_cb = cb;
    j->user = user;
    submit(r, j);
}

static void rd_relay_send(srv_engine *e, const char *inst, const uint8_t *payload, size_t len)
{
    redis_engine *r = of(e);
    char ch[64];
    snprintf(ch, sizeof ch, "rdv:i:%s", inst);
    job *j = job_new(J_PUBLISH);
    if (!j || !job_str(j, ch) || !job_arg(j, payload, len)) {
        job_free(j);
        return;
    }
    submit(r, j);
}

static int64_t rd_queue_depth(srv_engine *e)
{
    return (int64_t)atomic_load(&of(e)->depth_cache);
}

static bool rd_healthy(srv_engine *e)
{
    return atomic_load(&of(e)->connected);
}

static int rd_flush(srv_engine *e)
{
    (void)e;
    return 0;
}

/* ---- the loop side: results and events ------------------------------- */

static void lookup_done(redis_engine *r, job *j)
{
    (void)r;
    srv_presence res[RDV_MAX_IDS_PER_REQUEST];
    size_t n = (size_t)j->cap;
    memset(res, 0, sizeof res);
    const redisReply *a = j->reply;
    if (j->failed || !a || a->elements != n * 4) {
        j->lookup_cb(j->user, NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *const *el = a->element + i * 4;
        bool ok = el[0]->type == REDIS_REPLY_STRING && el[1]->type == REDIS_REPLY_STRING &&
                  el[2]->type == REDIS_REPLY_STRING && el[3]->type == REDIS_REPLY_STRING;
        if (!ok || !strcmp(el[0]->str, ""))
            continue;
        res[i].known = true;
        res[i].online = !strcmp(el[1]->str, "1");
        res[i].last_seen = atoll(el[2]->str);
        snprintf(res[i].nat_type, sizeof res[i].nat_type, "%s", el[3]->str);
    }
    j->lookup_cb(j->user, res, n);
}

static void route_done(job *j)
{
    if (j->failed)
        j->route_cb(j->user, SRV_ROUTE_ERROR);
    else if (j->ires == 0)
        j->route_cb(j->user, SRV_ROUTE_FORWARDED);
    else if (j->ires == 1)
        j->route_cb(j->user, SRV_ROUTE_QUEUED);
    else
        j->route_cb(j->user, SRV_ROUTE_QUEUE_FULL);
}

static void take_done(redis_engine *r, job *j)
{
    int n = 0;
    if (!j->failed && j->reply)
        for (size_t i = 0; i < j->reply->elements; i++)
            n += each_entry(r, j->reply->element[i], j->now, j->each, j->user, false);
    if (j->done)
        j->done(j->user, j->failed ? -1 : n);
}

static void expire_done(redis_engine *r, job *j)
{
    if (j->failed || !j->reply)
        return;
    for (size_t i = 0; i < j->reply->elements; i++)
        (void)each_entry(r, j->reply->element[i], j->now, j->each, j->user, true);
}

/* "M ..." (a routed message), "K ID SERIAL", "N TO\n" + bytes. */
static void inbox(redis_engine *r, job *j)
{
    const srv_engine_events *ev = &r->base.ev;
    char *p = j->payload;
    if (p[0] == 'M') {
        entry e;
        if (entry_decode(p, j->payload_len, &e) && ev->deliver) {
            srv_queued_msg m = {
                .recipient = e.to,
                .sender = e.from,
                .type = e.type,
                .session_id = e.sid,
                .raw = e.raw,
                .raw_len = e.raw_len,
                .created = e.created,
                .expires = e.expires,
            };
            ev->deliver(ev->user, &m);
        }
    } else if (p[0] == 'K') {
        char id[RDV_NODE_ID_HEXLEN + 1];
        unsigned serial = 0;
        if (sscanf(p, "K %64s %u", id, &serial) == 2 && ev->replaced)
            ev->replaced(ev->user, id, serial);
    } else if (p[0] == 'R') {
        if (ev->relay_in)
            ev->relay_in(ev->user, (const uint8_t *)p, j->payload_len);
    } else if (p[0] == 'N') {
        char *nl = memchr(p, '\n', j->payload_len);
        char id[RDV_NODE_ID_HEXLEN + 1];
        if (nl && sscanf(p, "N %64s", id) == 1 && ev->deliver) {
            srv_queued_msg m = {
                .recipient = id,
                .raw = (const uint8_t *)(nl + 1),
                .raw_len = j->payload_len - (size_t)(nl + 1 - p),
                .expires = 0, /* a notice: dropped when the node is not here */
            };
            ev->deliver(ev->user, &m);
        }
    }
}

/* "P INST ID 1 NAT LAST" or "P INST ID 0 - LAST", from another instance. */
static void presence_line(redis_engine *r, job *j)
{
    const srv_engine_events *ev = &r->base.ev;
    char inst[40], id[RDV_NODE_ID_HEXLEN + 1], nat[32];
    int on = 0;
    long long last = 0;
    if (sscanf(j->payload, "P %39s %64s %d %31s %lld", inst, id, &on, nat, &last) != 5)
        return;
    if (!strcmp(inst, r->id) || !ev->presence)
        return; /* this instance's own change: already pushed here */
    ev->presence(ev->user, id, on == 1, on == 1 ? nat : NULL, last);
}

/* The Redis hash of an admission list, and back. */
static const char *const adm_names[SRV_ADM_LIST__COUNT] = {"allow", "revoked_node",
                                                           "revoked_serial"};

static int adm_list_of(const char *name)
{
    for (int i = 0; i < SRV_ADM_LIST__COUNT; i++)
        if (!strcmp(name, adm_names[i]))
            return i;
    return -1;
}

static void rd_adm_load(srv_engine *e, srv_adm_each_cb each, srv_done_cb done, void *user)
{
    job *j = job_new(J_ADM_LOAD);
    if (!j) {
        if (done)
            done(user, -1);
        return;
    }
    j->adm_each = each;
    j->done = done;
    j->user = user;
    submit(of(e), j);
}

static void rd_adm_set(srv_engine *e, int list, const char *key, bool present, int64_t added,
                       srv_done_cb done, void *user)
{
    redis_engine *r = of(e);
    job *j = list >= 0 && list < SRV_ADM_LIST__COUNT ? job_new(J_ADM_SET) : NULL;
    if (!j || !job_str(j, adm_names[list]) || !job_str(j, key) || !job_num(j, present) ||
        !job_num(j, added) || !job_str(j, r->id)) {
        job_free(j);
        if (done)
            done(user, -1);
        return;
    }
    j->done = done;
    j->user = user;
    submit(r, j);
}

static void adm_load_done(job *j)
{
    int n = 0;
    const redisReply *a = j->reply;
    if (j->failed || !a || a->elements != SRV_ADM_LIST__COUNT) {
        if (j->done)
            j->done(j->user, -1);
        return;
    }
    for (size_t l = 0; l < SRV_ADM_LIST__COUNT; l++) {
        const redisReply *h = a->element[l];
        if (h->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t i = 0; i + 1 < h->elements; i += 2) {
            if (h->element[i]->type != REDIS_REPLY_STRING ||
                h->element[i + 1]->type != REDIS_REPLY_STRING)
                continue;
            j->adm_each(j->user, (int)l, h->element[i]->str, atoll(h->element[i + 1]->str));
            n++;
        }
    }
    if (j->done)
        j->done(j->user, n);
}

/* "A INST LIST KEY 1|0 ADDED" from another instance. */
static void admission_line(redis_engine *r, job *j)
{
    const srv_engine_events *ev = &r->base.ev;
    char inst[40], list[24], key[RDV_NODE_ID_HEXLEN + 1];
    int on = 0;
    long long added = 0;
    if (sscanf(j->payload, "A %39s %23s %64s %d %lld", inst, list, key, &on, &added) != 5)
        return;
    int l = adm_list_of(list);
    if (l < 0 || !strcmp(inst, r->id) || !ev->admission)
        return; /* this instance's own change: already applied here */
    ev->admission(ev->user, l, key, on == 1, added);
}

static void rd_poll(srv_engine *e)
{
    redis_engine *r = of(e);
    pthread_mutex_lock(&r->lock);
    job *j = r->done_head;
    r->done_head = r->done_tail = NULL;
    pthread_mutex_unlock(&r->lock);
    while (j) {
        job *next = j->next;
        switch (j->kind) {
        case J_LOOKUP: lookup_done(r, j); break;
        case J_ROUTE: route_done(j); break;
        case J_TAKE: take_done(r, j); break;
        case J_EXPIRE: expire_done(r, j); break;
        case J_RELAYTO: j->relay_cb(j->user, !j->failed && j->inst[0] ? j->inst : NULL); break;
        case E_INBOX: inbox(r, j); break;
        case E_PRESENCE: presence_line(r, j); break;
        case E_ADMISSION: admission_line(r, j); break;
        case J_ADM_LOAD: adm_load_done(j); break;
        case J_ADM_SET:
            if (j->done)
                j->done(j->user, j->failed ? -1 : j->ires == 0 ? 1 : 0);
            break;
        case E_RECONNECTED:
            if (r->base.ev.reconnected)
                r->base.ev.reconnected(r->base.ev.user);
            break;
        default: break; /* joined, left, requeue, notify: nothing to answer */
        }
        job_free(j);
        j = next;
    }
}

static void rd_status(srv_engine *e, srv_engine_status *out)
{
    redis_engine *r = of(e);
    memset(out, 0, sizeof *out);
    out->engine = "redis";
    snprintf(out->instance_id, sizeof out->instance_id, "%s", r->id);
    out->instances = atomic_load(&r->instances);
    out->connected = atomic_load(&r->connected);
    out->bus_in = atomic_load(&r->bus_in);
    out->bus_out = atomic_load(&r->bus_out);
    out->errors = atomic_load(&r->errors);
    out->cluster_nodes = (int64_t)atomic_load(&r->cluster_nodes);
}

static void rd_detach(srv_engine *e)
{
    redis_engine *r = of(e);
    pthread_mutex_lock(&r->lock);
    r->ctx = NULL;
    pthread_mutex_unlock(&r->lock);
}

static void drop_list(job *j)
{
    while (j) {
        job *next = j->next;
        job_free(j);
        j = next;
    }
}

static void rd_destroy(srv_engine *e)
{
    redis_engine *r = of(e);
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    r->stop_deadline = mono_ms() + RETIRE_MS;
    r->ctx = NULL;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (r->threads) {
        pthread_join(r->cmd_thread, NULL);
        pthread_join(r->sub_thread, NULL);
    }
    /* callbacks of work never finished are dropped: their users are
     * gone with the loop */
    drop_list(r->todo_head);
    drop_list(r->done_head);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static const srv_engine_ops redis_ops = {
    .name = "redis",
    .joined = rd_joined,
    .left = rd_left,
    .lookup = rd_lookup,
    .route = rd_route,
    .requeue = rd_requeue,
    .take = rd_take,
    .expire = rd_expire,
    .notify = rd_notify,
    .relay_route = rd_relay_route,
    .relay_send = rd_relay_send,
    .queue_depth = rd_queue_depth,
    .healthy = rd_healthy,
    .flush = rd_flush,
    .poll = rd_poll,
    .status = rd_status,
    .detach = rd_detach,
    .destroy = rd_destroy,
    .adm_load = rd_adm_load,
    .adm_set = rd_adm_set,
};

/* Parses redis://HOST[:PORT][/DB] or unix:///PATH into r. */
static bool parse_url(redis_engine *r, const char *url, char *err, size_t errlen)
{
    if (!strncmp(url, "unix://", 7)) {
        const char *path = url + 7;
        if (path[0] != '/' || strlen(path) >= sizeof r->unix_path) {
            snprintf(err, errlen, "expected unix:///absolute/path/to/redis.sock");
            return false;
        }
        snprintf(r->unix_path, sizeof r->unix_path, "%s", path);
        return true;
    }
    if (strncmp(url, "redis://", 8)) {
        snprintf(err, errlen, "expected redis://HOST:PORT[/DB] or unix:///PATH");
        return false;
    }
    const char *h = url + 8;
    if (strchr(h, '@')) {
        snprintf(err, errlen, "put no password in the URL (ps shows it): set "
                              "RENDEZVOUS_REDIS_PASSWORD");
        return false;
    }
    r->port = 6379;
    const char *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') { /* [IPv6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) {
            snprintf(err, errlen, "unterminated [IPv6 address]");
            return false;
        }
        snprintf(r->host, sizeof r->host, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        size_t hl = (size_t)((colon ? colon : end) - h);
        if (hl == 0 || hl >= sizeof r->host) {
            snprintf(err, errlen, "no host in the URL");
            return false;
        }
        snprintf(r->host, sizeof r->host, "%.*s", (int)hl, h);
    }
    if (colon) {
        char *e = NULL;
        long p = strtol(colon + 1, &e, 10);
        if (e != end || p < 1 || p > 65535) {
            snprintf(err, errlen, "the port must be 1..65535");
            return false;
        }
        r->port = (int)p;
    }
    if (*end == '/' && end[1]) {
        char *e = NULL;
        long db = strtol(end + 1, &e, 10);
        if (*e || db < 0 || db > 1000000) {
            snprintf(err, errlen, "the database must be a number");
            return false;
        }
        r->db = (int)db;
    }
    return true;
}

srv_engine *srv_engine_redis_new(const char *url, struct lws_context *ctx,
                                 const srv_engine_events *ev, char *err, size_t errlen)
{
    redis_engine *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->base.ops = &redis_ops;
    if (ev)
        r->base.ev = *ev;
    r->ctx = ctx;
    if (!parse_url(r, url, err, errlen)) {
        free(r);
        return NULL;
    }
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(r->id, sizeof r->id, rnd, sizeof rnd);
    atomic_init(&r->connected, false);
    atomic_init(&r->instances, 0);
    atomic_init(&r->bus_in, 0);
    atomic_init(&r->bus_out, 0);
    atomic_init(&r->errors, 0);
    atomic_init(&r->depth_cache, 0);
    atomic_init(&r->cluster_nodes, 0);
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot create a mutex");
        free(r);
        return NULL;
    }
    pthread_condattr_t ca;
    bool cond_ok = pthread_condattr_init(&ca) == 0 &&
                   pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                   pthread_cond_init(&r->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cond_ok) {
        pthread_mutex_destroy(&r->lock);
        snprintf(err, errlen, "cannot create a condition variable");
        free(r);
        return NULL;
    }
    if (pthread_create(&r->cmd_thread, NULL, cmd_main, r) != 0) {
        snprintf(err, errlen, "cannot start a thread: %s", strerror(errno));
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    if (pthread_create(&r->sub_thread, NULL, sub_main, r) != 0) {
        snprintf(err, errlen, "cannot start a thread: %s", strerror(errno));
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->cmd_thread, NULL);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    r->threads = true;
    return &r->base;
}
