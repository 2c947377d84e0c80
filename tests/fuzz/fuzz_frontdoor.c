/* fuzz_frontdoor.c - server_fuzz_frontdoor: fuzzes a running rendezvousd
 * through its front door, the WebSocket endpoint, over real connections.
 *
 *   fuzz_frontdoor --inputs N [--seed S] [--seconds T] [--batch B]
 *                  --corpus DIR [--vectors FILE] [--server PATH-less: the
 *                  test build's rendezvousd (tests/support)]
 *
 * Starts rendezvousd (the sanitizer build of the test tree; rate limits
 * raised so the fuzzer is never cut off as a flood) and keeps 4 fuzzing
 * nodes authenticated. Each input is one message, built from a seed and
 * mutated, sent on one of them (1 in 40 on a fresh connection before
 * `hello` instead):
 *   - seeds: tests/fuzz/corpus/message/ and the messages of
 *     schema/vectors/example.json (static), and live messages built now,
 *     signed by the fuzzing node and addressed to another one (offer,
 *     answer, iceCandidate, relayOpen, relayReady, relayData, relayClose,
 *     lookup, watch, unwatch, ping, hello on a fresh connection);
 *   - mutations: bytes (bit flips, inserted / deleted / repeated bytes,
 *     JSON and UTF-8 tokens, truncation, splices of two seeds), or JSON
 *     values (a member replaced by another type, an edge number, a long or
 *     odd string, deep nesting, a member removed or added, arrays grown,
 *     the type renamed); live signed messages are mutated and signed
 *     again, so the mutation reaches past the signature check, or mutated
 *     after signing;
 *   - frames: text, text split into continuation frames, or binary (raw,
 *     or a relay frame of a known session).
 * Whatever arrives on the fuzzing connections is read and dropped, except
 * that a relayOpen to a fuzzing node is answered with relayReady half of
 * the time (so relay data reaches open sessions). A closed fuzzing
 * connection (too_large, invalid UTF-8, a failed hello...) is opened
 * again. Every --batch inputs (default 500) the server must still be
 * running and answer two healthy nodes it never fuzzed: a ping, a lookup
 * that shows the other online, an offer delivered byte for byte. At the
 * end SIGTERM must stop it with exit 0 and its log must hold no sanitizer
 * report. The input stream is deterministic for a seed (the server's
 * answers are not part of it). Prints the count of inputs by kind; exits 0
 * (PASS) or 1.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schema/ids.h"
#include "schema/message.h"
#include "node.h"
#include "server.h"
#include "ws_client.h"

#define NFUZZ 4
#define MAX_SEEDS 512
#define MAX_SIDS 16
#define HEALTH_MS 10000

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t rn(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static bool chance(unsigned one_in)
{
    return rn(one_in) == 0;
}

/* A growable byte buffer. */
typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t n)
{
    if (b->cap >= n)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "fuzz_frontdoor: out of memory\n");
        exit(2);
    }
    b->p = p;
    b->cap = cap;
}

static void buf_set(buf *b, const void *d, size_t n)
{
    buf_reserve(b, n + 1);
    memcpy(b->p, d, n);
    b->len = n;
}

static void buf_insert(buf *b, size_t at, const void *d, size_t n)
{
    if (at > b->len)
        at = b->len;
    buf_reserve(b, b->len + n + 1);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, d, n);
    b->len += n;
}

static void buf_erase(buf *b, size_t at, size_t n)
{
    if (at >= b->len)
        return;
    if (n > b->len - at)
        n = b->len - at;
    memmove(b->p + at, b->p + at + n, b->len - at - n);
    b->len -= n;
}

/* ---- seeds ---------------------------------------------------------------- */

static char *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static int nseeds;

static void add_seed(const char *text, size_t len)
{
    if (nseeds >= MAX_SEEDS || !len)
        return;
    char *c = malloc(len + 1);
    if (!c)
        exit(2);
    memcpy(c, text, len);
    c[len] = '\0';
    seeds[nseeds] = c;
    seed_len[nseeds++] = len;
}

static void load_corpus(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_frontdoor: cannot open %s: %s\n", dir, strerror(errno));
        exit(2);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%.700s/%.200s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char tmp[65536];
        size_t n = fread(tmp, 1, sizeof tmp, f);
        fclose(f);
        add_seed(tmp, n);
    }
    closedir(d);
}

/* The messages of schema/vectors/example.json ({"messages":[{"message":...}]}). */
static void load_vectors(const char *path)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    json_t *msgs = json_object_get(root, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *msg = json_object_get(m, "message");
        char *t = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        if (t)
            add_seed(t, strlen(t));
        free(t);
    }
    json_decref(root);
}

/* ---- mutations ------------------------------------------------------------ */

static const char *const tokens[] = {
    "\"", "{", "}", "[", "]", ":", ",", "\\", "\\u0000", "\\ud800", "\\udc00\\ud800", "1e999",
    "-0", "true", "null", "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
    "9007199254740993", "-9223372036854775809", "0.0000000000000000000001", "{}", "[]",
    "\"\":", "\"signature\":", "\"offer\":", "\"relayData\":", "\x00", "\t\n\r ",
    "\"nodeIDs\":[", "00000000-0000-0000-0000-000000000000",
};
#define NTOKENS (sizeof tokens / sizeof tokens[0])

static void mutate_bytes(buf *b)
{
    int ops = 1 + (int)rn(6);
    for (int k = 0; k < ops; k++) {
        size_t at = rn(b->len + 1);
        switch (rn(8)) {
        case 0: /* flip a bit */
            if (b->len)
                b->p[rn(b->len)] ^= (uint8_t)(1u << rn(8));
            break;
        case 1: { /* a random byte */
            uint8_t c = (uint8_t)rnd();
            buf_insert(b, at, &c, 1);
            break;
        }
        case 2: /* delete a run */
            buf_erase(b, at, 1 + rn(8));
            break;
        case 3: /* repeat a run */
            if (b->len > 2) {
                size_t from = rn(b->len - 1), n = 1 + rn(b->len - from < 64 ? b->len - from : 64);
                uint8_t tmp[64];
                memcpy(tmp, b->p + from, n);
                int times = 1 + (int)rn(chance(20) ? 200 : 4);
                for (int t = 0; t < times; t++)
                    buf_insert(b, at, tmp, n);
            }
            break;
        case 4: { /* a token */
            const char *t = tokens[rn(NTOKENS)];
            size_t n = t[0] ? strlen(t) : 1;
            buf_insert(b, at, t, n);
            break;
        }
        case 5: /* truncate */
            if (chance(3))
                b->len = at;
            break;
        case 6: { /* splice another seed */
            int s = (int)rn((size_t)nseeds);
            size_t from = rn(seed_len[s]);
            buf_insert(b, at, seeds[s] + from, rn(seed_len[s] - from + 1));
            break;
        }
        default: /* overwrite a byte with a digit or a quote */
            if (b->len)
                b->p[rn(b->len)] = "0123456789\"e.-"[rn(14)];
            break;
        }
    }
    if (b->len > 200000)
        b->len = 200000;
}

/* A random JSON value (new reference). */
static json_t *random_value(int depth)
{
    switch (rn(depth > 3 ? 9 : 12)) {
    case 0:
        return json_integer((json_int_t)(int64_t)rnd());
    case 1: {
        static const json_int_t edge[] = {0, -1, 1, 65535, 65536, 4294967296LL,
                                          9007199254740991LL, 9007199254740992LL,
                                          INT64_MAX, INT64_MIN};
        return json_integer(edge[rn(sizeof edge / sizeof edge[0])]);
    }
    case 2: {
        static const double r[] = {0.5, -0.0, 1e308, -1e308, 1e-320, 3.0};
        return json_real(r[rn(6)]);
    }
    case 3:
        return json_true();
    case 4:
        return json_null();
    case 5: { /* a string of odd characters */
        static const char *const pal[] = {"a", "0", "f", "-", " ", "\\", "\"", "\xc3\xa9",
                                          "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x01", "\x7f"};
        size_t n = chance(10) ? 300 + rn(70000) : rn(80);
        buf s = {0};
        buf_reserve(&s, 1);
        for (size_t i = 0; i < n; i++) {
            const char *p = pal[rn(12)];
            buf_insert(&s, s.len, p, strlen(p));
        }
        json_t *v = json_stringn(s.len ? (const char *)s.p : "", s.len);
        free(s.p);
        return v ? v : json_null();
    }
    case 6: { /* hex of a plausible length */
        static const size_t lens[] = {0, 63, 64, 65, 127, 128, 129, 36};
        size_t n = lens[rn(8)];
        char s[130];
        for (size_t i = 0; i < n; i++)
            s[i] = "0123456789abcdefABCDEF-g"[rn(chance(4) ? 24 : 16)];
        s[n] = '\0';
        return json_string(s);
    }
    case 7:
        return json_string(chance(2) ? "symmetric" : "0.0.0.0");
    case 8:
        return json_string("");
    case 9: { /* deep nesting */
        json_t *v = json_integer(1);
        int d = 10 + (int)rn(15);
        for (int i = 0; i < d && v; i++)
            v = chance(2) ? json_pack("[o]", v) : json_pack("{s:o}", "x", v);
        return v ? v : json_null();
    }
    case 10:
        return json_object();
    default: {
        json_t *a = json_array();
        int n = (int)rn(chance(4) ? 70 : 4);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    }
}

/* Collects containers of root (objects and arrays), at most max. */
static int containers(json_t *v, json_t **out, int n, int max)
{
    if (n >= max || !(json_is_object(v) || json_is_array(v)))
        return n;
    out[n++] = v;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) n = containers(c, out, n, max);
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) n = containers(c, out, n, max);
    }
    return n;
}

static const char *const type_names[] = {
    "challenge", "hello", "welcome", "offer", "answer", "iceCandidate", "relayOpen",
    "relayReady", "relayData", "relayClose", "lookup", "presence", "watch", "unwatch",
    "peerOnline", "peerOffline", "queued", "error", "ping", "pong", "zzUnknown", ""};
#define NTYPES (sizeof type_names / sizeof type_names[0])

/* Mutates a JSON tree in place (1 to 3 operations). */
static void mutate_json(json_t *root)
{
    int ops = 1 + (int)rn(3);
    for (int k = 0; k < ops; k++) {
        json_t *cs[256];
        int n = containers(root, cs, 0, 256);
        if (!n)
            return;
        json_t *c = cs[rn((size_t)n)];
        if (c == root && json_is_object(root) && chance(4)) {
            /* rename the type */
            const char *key = json_object_iter_key(json_object_iter(root));
            json_t *body = key ? json_object_get(root, key) : NULL;
            if (body) {
                json_incref(body);
                json_object_del(root, key);
                json_object_set_new(root, type_names[rn(NTYPES)], body);
            }
            continue;
        }
        if (json_is_object(c)) {
            size_t sz = json_object_size(c);
            void *it = json_object_iter(c);
            for (size_t i = sz ? rn(sz) : 0; it && i > 0; i--)
                it = json_object_iter_next(c, it);
            const char *key = it ? json_object_iter_key(it) : NULL;
            switch (rn(4)) {
            case 0:
                if (key)
                    json_object_del(c, key);
                break;
            case 1: {
                static const char *const keys[] = {"signature", "timestamp", "fromNodeID",
                                                   "toNodeID", "sessionID", "nodeIDs", "data",
                                                   "zz", "", "requestID", "candidate"};
                json_object_set_new(c, keys[rn(11)], random_value(1));
                break;
            }
            default:
                if (key)
                    json_object_set_new(c, key, random_value(1));
                break;
            }
        } else {
            size_t sz = json_array_size(c);
            switch (rn(3)) {
            case 0:
                if (sz)
                    json_array_remove(c, rn(sz));
                break;
            case 1:
                if (sz) { /* grow past the 64-ID limit, or duplicate */
                    json_t *v = json_array_get(c, rn(sz));
                    int times = chance(2) ? 70 : 1;
                    for (int t = 0; t < times; t++)
                        json_array_append(c, v);
                }
                break;
            default:
                if (sz)
                    json_array_set_new(c, rn(sz), random_value(1));
                else
                    json_array_append_new(c, random_value(1));
                break;
            }
        }
    }
}

/* ---- the fuzzing nodes --------------------------------------------------------- */

typedef struct fnode {
    rdv_tn tn;
    rdv_ws *ws;
} fnode;

static fnode fz[NFUZZ];
static int g_port;
static char sids[MAX_SIDS][RDV_UUID_STRLEN + 1];
static int nsids;
static uint64_t reconnects, relay_ready_sent, received;

static void remember_sid(const char *sid)
{
    snprintf(sids[nsids % MAX_SIDS], sizeof sids[0], "%s", sid);
    nsids++;
}

static const char *some_sid(void)
{
    static char fresh[RDV_UUID_STRLEN + 1];
    if (!nsids || chance(4)) {
        rdv_uuid_v4(fresh);
        return fresh;
    }
    return sids[rn((size_t)(nsids < MAX_SIDS ? nsids : MAX_SIDS))];
}

static bool fnode_up(fnode *f)
{
    if (f->ws && !rdv_ws_is_closed(f->ws))
        return true;
    if (f->ws) {
        rdv_ws_close(f->ws);
        reconnects++;
    }
    f->ws = rdv_tn_connect(g_port, &f->tn);
    return f->ws != NULL;
}

/* Reads what arrived on every fuzzing connection; answers relayOpen. */
static void drain(void)
{
    for (int i = 0; i < NFUZZ; i++) {
        fnode *f = &fz[i];
        if (!f->ws)
            continue;
        for (;;) {
            size_t len = 0;
            bool bin = false;
            char *m = rdv_ws_recv_any(f->ws, 0, &len, &bin);
            if (!m)
                break;
            received++;
            if (!bin && strncmp(m, "{\"relayOpen\":", 13) == 0 && chance(2)) {
                json_t *j = json_loads(m, 0, NULL);
                json_t *b = json_object_get(j, "relayOpen");
                const char *from = json_string_value(json_object_get(b, "fromNodeID"));
                const char *sid = json_string_value(json_object_get(b, "sessionID"));
                if (from && sid) {
                    json_t *rb = json_pack("{s:s, s:s}", "toNodeID", from, "sessionID", sid);
                    size_t n = 0;
                    char *t = rb ? rdv_tn_sign_body(&f->tn, RDV_MSG_RELAY_READY, rb, NULL, &n)
                                 : NULL;
                    if (t && rdv_ws_send_text(f->ws, t, n) == 0)
                        relay_ready_sent++;
                    free(t);
                }
                json_decref(j);
            }
            free(m);
        }
    }
}

/* A live message of node f to node `to` (body before signing; *type). */
static json_t *live_body(const fnode *to, rdv_msg_type *type)
{
    json_t *ids;
    switch (rn(12)) {
    case 0:
    case 1:
        *type = RDV_MSG_OFFER;
        return json_pack("{s:s, s:s, s:o}", "toNodeID", to->tn.id, "sessionID", some_sid(),
                         "connectionInfo", rdv_tn_connection_info());
    case 2:
        *type = RDV_MSG_ANSWER;
        return json_pack("{s:s, s:s, s:o}", "toNodeID", to->tn.id, "sessionID", some_sid(),
                         "connectionInfo", rdv_tn_connection_info());
    case 3:
        *type = RDV_MSG_ICE_CANDIDATE;
        return json_pack("{s:s, s:s, s:{s:s, s:i, s:s, s:I}}", "toNodeID", to->tn.id,
                         "sessionID", some_sid(), "candidate", "ip", "192.0.2.7", "port", 4242,
                         "type", "host", "priority", (json_int_t)2130706431);
    case 4:
    case 5: {
        *type = RDV_MSG_RELAY_OPEN;
        char sid[RDV_UUID_STRLEN + 1];
        rdv_uuid_v4(sid);
        remember_sid(sid);
        return json_pack("{s:s, s:s}", "toNodeID", to->tn.id, "sessionID", sid);
    }
    case 6:
        *type = RDV_MSG_RELAY_READY;
        return json_pack("{s:s, s:s}", "toNodeID", to->tn.id, "sessionID", some_sid());
    case 7:
        *type = RDV_MSG_RELAY_DATA;
        return json_pack("{s:s, s:s}", "sessionID", some_sid(), "data", "aGVsbG8gcmVsYXk=");
    case 8:
        *type = RDV_MSG_RELAY_CLOSE;
        return json_pack("{s:s, s:s}", "sessionID", some_sid(), "reason", "fuzz");
    case 9:
    case 10:
        *type = chance(3) ? RDV_MSG_WATCH : chance(2) ? RDV_MSG_UNWATCH : RDV_MSG_LOOKUP;
        ids = json_array();
        for (int i = 0; i < 1 + (int)rn(4); i++)
            json_array_append_new(ids, json_string(fz[rn(NFUZZ)].tn.id));
        return json_pack("{s:o, s:s}", "nodeIDs", ids, "requestID", "fz");
    default:
        *type = RDV_MSG_PING;
        return json_pack("{s:s}", "id", "fz");
    }
}

static bool is_signed(rdv_msg_type t)
{
    return t == RDV_MSG_OFFER || t == RDV_MSG_ANSWER || t == RDV_MSG_ICE_CANDIDATE ||
           t == RDV_MSG_RELAY_OPEN || t == RDV_MSG_RELAY_READY;
}

/* Builds one live input from f into b. Returns its kind (stats). */
static int build_live(fnode *f, buf *b)
{
    rdv_msg_type type;
    const fnode *to = &fz[rn(NFUZZ)];
    if (to == f && !chance(8))
        to = &fz[(f - fz + 1) % NFUZZ];
    json_t *body = live_body(to, &type);
    if (!body)
        return -1;
    int how = (int)rn(10); /* 0-5 mutate then sign, 6-7 sign then mutate bytes, 8-9 as is */
    if (how <= 5)
        mutate_json(body);
    char *text = NULL;
    size_t len = 0;
    if (is_signed(type)) {
        rdv_tn_forge fg = {0};
        if (chance(10))
            fg.ts_offset_ms = (int64_t)rn(200000) - 100000;
        text = rdv_tn_sign_body(&f->tn, type, body, &fg, &len); /* steals body */
    } else {
        json_t *env = json_pack("{s:o}", rdv_msg_type_name(type), body);
        text = env ? json_dumps(env, JSON_COMPACT) : NULL;
        len = text ? strlen(text) : 0;
        json_decref(env);
    }
    if (!text)
        return -1;
    buf_set(b, text, len);
    free(text);
    if (how == 6 || how == 7)
        mutate_bytes(b);
    return how <= 5 ? 2 : how <= 7 ? 3 : 4;
}

/* Builds one static input (a mutated seed). Returns its kind. */
static int build_static(buf *b)
{
    int s = (int)rn((size_t)nseeds);
    buf_set(b, seeds[s], seed_len[s]);
    if (chance(3)) {
        json_t *j = json_loadb(seeds[s], seed_len[s], 0, NULL);
        if (j) {
            mutate_json(j);
            char *t = json_dumps(j, chance(4) ? JSON_INDENT(1) : JSON_COMPACT);
            if (t)
                buf_set(b, t, strlen(t));
            free(t);
            json_decref(j);
            return 1;
        }
    }
    mutate_bytes(b);
    return 0;
}

/* Sends b on c as text, fragments or binary. Returns the frame kind. */
static int send_input(rdv_ws *c, buf *b)
{
    size_t r = rn(20);
    if (r < 2 && b->len > 1) {
        (void)rdv_ws_send_fragments(c, b->p, b->len, 2 + rn(4));
        return 1;
    }
    if (r == 2) {
        (void)rdv_ws_send_binary(c, b->p, b->len);
        return 2;
    }
    if (r == 3) { /* a relay frame of a known session */
        uint8_t fr[64];
        fr[0] = chance(8) ? (uint8_t)rnd() : 0x01;
        const char *sid = some_sid();
        size_t k = 0;
        for (const char *p = sid; *p && k < 16; p += 2) {
            if (*p == '-')
                p++;
            unsigned v = 0;
            if (sscanf(p, "%2x", &v) != 1)
                break;
            fr[1 + k++] = (uint8_t)v;
        }
        size_t n = 1 + k + rn(40);
        for (size_t i = 1 + k; i < n; i++)
            fr[i] = (uint8_t)rnd();
        (void)rdv_ws_send_binary(c, fr, n);
        return 3;
    }
    (void)rdv_ws_send_text(c, b->p, b->len);
    return 0;
}

/* A fresh connection: a (mutated) hello, or any input, before welcome. */
static void pre_auth_input(buf *b, int *kind)
{
    rdv_ws *c = rdv_ws_connect(g_port);
    if (!c)
        return;
    json_t *ch = rdv_tn_read_challenge(c, 5000);
    if (ch && chance(2)) {
        rdv_tn n;
        rdv_tn_init(&n, chance(2) ? "fz-hello" : "fz-hello-2");
        json_t *extra = chance(3) ? json_pack("{s:s}", "software", "fz") : NULL;
        size_t len = 0;
        char *t = rdv_tn_hello(&n, ch, NULL, NULL, extra, NULL, &len);
        json_decref(extra);
        if (t) {
            json_t *j = json_loadb(t, len, 0, NULL);
            free(t);
            if (j && chance(2)) {
                mutate_json(j);
                char *d = json_dumps(j, JSON_COMPACT);
                if (d)
                    buf_set(b, d, strlen(d));
                free(d);
            } else if (j) {
                char *d = json_dumps(j, JSON_COMPACT);
                if (d)
                    buf_set(b, d, strlen(d));
                free(d);
                mutate_bytes(b);
            }
            json_decref(j);
        }
        *kind = 5;
    } else {
        (void)build_static(b);
        *kind = 6;
    }
    json_decref(ch);
    (void)send_input(c, b);
    /* read a little of the answer, then go */
    for (int i = 0; i < 3; i++) {
        char *m = rdv_ws_recv(c, 20, NULL);
        if (!m)
            break;
        free(m);
    }
    rdv_ws_close(c);
}

/* ---- health --------------------------------------------------------------------- */

static rdv_tn h0, h1;
static rdv_ws *hw0, *hw1;

/* The healthy pair still gets answers and messages. */
static bool healthy(rdv_ts_server *s, char *why, size_t whylen)
{
    if (!rdv_ts_server_running(s)) {
        snprintf(why, whylen, "the server is not running");
        return false;
    }
    if (!rdv_ts_server_log_clean(s)) {
        snprintf(why, whylen, "a sanitizer report in the server log");
        return false;
    }
    if (rdv_ws_is_closed(hw0) || rdv_ws_is_closed(hw1)) {
        snprintf(why, whylen, "a healthy node's connection was closed (code %d / %d)",
                 rdv_ws_close_code(hw0), rdv_ws_close_code(hw1));
        return false;
    }
    if (rdv_ws_send_str(hw0, "{\"ping\":{\"id\":\"health\"}}") != 0 ||
        !rdv_expect(hw0, "pong", HEALTH_MS)) {
        snprintf(why, whylen, "no pong");
        return false;
    }
    json_t *peer = rdv_lookup_one(hw0, h1.id); /* the entry of h1 */
    if (!peer || !json_is_true(json_object_get(peer, "online"))) {
        snprintf(why, whylen, "no presence, or the other healthy node is not online");
        return false;
    }
    size_t len = 0;
    char *offer = rdv_tn_offer(&h0, h1.id, NULL, NULL, &len);
    if (!offer || rdv_ws_send_text(hw0, offer, len) != 0 ||
        rdv_expect_bytes(hw1, offer, len, HEALTH_MS) != 0) {
        free(offer);
        snprintf(why, whylen, "an offer between the healthy nodes was not delivered");
        return false;
    }
    free(offer);
    return true;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    long long inputs = 2000, seconds = 0;
    unsigned long long seed = 1;
    int batch = 500;
    const char *corpus = NULL, *vectors = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--inputs"))
            inputs = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--corpus"))
            corpus = argv[i + 1];
        else if (!strcmp(argv[i], "--vectors"))
            vectors = argv[i + 1];
        else {
            fprintf(stderr, "fuzz_frontdoor: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!corpus || inputs < 1 || batch < 1) {
        fprintf(stderr, "usage: fuzz_frontdoor --corpus DIR [--vectors FILE] --inputs N "
                        "[--seconds T] [--seed S] [--batch B]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 2;
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    load_corpus(corpus);
    if (vectors)
        load_vectors(vectors);
    if (!nseeds) {
        fprintf(stderr, "fuzz_frontdoor: no seeds\n");
        return 2;
    }
    rdv_ts_server *s = rdv_ts_server_start((const char *const[]){
        "--rate", "1000000", "--burst", "1000000", "--presence-rate", "0", "--log-level",
        "warn", NULL});
    if (!s) {
        fprintf(stderr, "fuzz_frontdoor: rendezvousd did not start\n");
        return 1;
    }
    g_port = rdv_ts_server_port(s);
    rdv_tn_init(&h0, "health-0");
    rdv_tn_init(&h1, "health-1");
    hw0 = rdv_tn_connect(g_port, &h0);
    hw1 = rdv_tn_connect(g_port, &h1);
    for (int i = 0; i < NFUZZ; i++) {
        char label[16];
        snprintf(label, sizeof label, "fuzz-%d", i);
        rdv_tn_init(&fz[i].tn, label);
        if (!fnode_up(&fz[i]))
            hw0 = NULL;
    }
    int rc = 1;
    char why[200] = "";
    if (!hw0 || !hw1) {
        fprintf(stderr, "fuzz_frontdoor: FAIL: the nodes did not authenticate\n");
        goto out;
    }
    uint64_t by_kind[8] = {0}, by_frame[4] = {0}, checks = 0;
    long long done = 0;
    int64_t t0 = mono_ms();
    buf b = {0};
    for (; done < inputs; done++) {
        if (seconds && mono_ms() - t0 > seconds * 1000)
            break;
        int kind;
        if (chance(40)) {
            pre_auth_input(&b, &kind);
        } else {
            fnode *f = &fz[rn(NFUZZ)];
            if (!fnode_up(f)) {
                snprintf(why, sizeof why, "a fuzzing node could not connect again");
                break;
            }
            kind = chance(2) ? build_live(f, &b) : build_static(&b);
            if (kind < 0)
                continue;
            by_frame[send_input(f->ws, &b)]++;
        }
        by_kind[kind]++;
        drain();
        if ((done + 1) % batch == 0) {
            checks++;
            if (!healthy(s, why, sizeof why))
                break;
        }
    }
    free(b.p);
    if (!why[0]) {
        checks++;
        if (healthy(s, why, sizeof why))
            rc = 0;
    }
    double secs = (double)(mono_ms() - t0) / 1000.0;
    printf("fuzz_frontdoor: %lld inputs in %.0f s (seed %llu): static bytes %" PRIu64
           ", static JSON %" PRIu64 ", live re-signed %" PRIu64 ", live signed+bytes %" PRIu64
           ", live as is %" PRIu64 ", hello %" PRIu64 ", pre-auth other %" PRIu64
           "; frames text %" PRIu64 " fragmented %" PRIu64 " binary %" PRIu64
           " relay-binary %" PRIu64 "; %" PRIu64 " messages received, %" PRIu64
           " relayReady, %" PRIu64 " reconnects, %" PRIu64 " health checks\n",
           done, secs, seed, by_kind[0], by_kind[1], by_kind[2], by_kind[3], by_kind[4],
           by_kind[5], by_kind[6], by_frame[0], by_frame[1], by_frame[2], by_frame[3], received,
           relay_ready_sent, reconnects, checks);
out:
    for (int i = 0; i < NFUZZ; i++)
        if (fz[i].ws)
            rdv_ws_close(fz[i].ws);
    if (hw0)
        rdv_ws_close(hw0);
    if (hw1)
        rdv_ws_close(hw1);
    int st = rdv_ts_server_stop(s);
    if (st != 0) {
        if (!why[0])
            snprintf(why, sizeof why, "rendezvousd exited %d on SIGTERM", st);
        rc = 1;
    }
    if (!rdv_ts_server_log_clean(s)) {
        snprintf(why, sizeof why, "a sanitizer report in the server log");
        rc = 1;
    }
    if (rc != 0) {
        rdv_ts_server_dump_log(s, "fuzz_frontdoor");
        fprintf(stderr, "fuzz_frontdoor: FAIL: %s (after %s)\n", why[0] ? why : "?",
                "the inputs above");
    } else {
        printf("fuzz_frontdoor: PASS\n");
    }
    rdv_ts_server_free(s);
    for (int i = 0; i < nseeds; i++)
        free(seeds[i]);
    return rc;
}
