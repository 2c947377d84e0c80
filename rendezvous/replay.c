/* replay.c - the per-connection replay filter (see replay.h). */
#include "rendezvous/replay.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "schema/ids.h" /* and schema/wire_limits.h */

#define FIRST_CAP 8u

typedef struct replay_entry {
    uint64_t key;     /* 8 bytes of the signature */
    int64_t until_ms; /* wall clock: timestamp + the ingress window */
} replay_entry;

struct srv_replay {
    uint32_t head, n, cap; /* ring: n entries from head, oldest first */
    replay_entry e[];
};

uint64_t srv_replay_key(const uint8_t *sig)
{
    uint64_t k = 0;
    for (size_t i = 0; i < 8; i++)
        k = (k << 8) | sig[i];
    return k;
}

bool srv_replay_key_hex(const char *sig_hex, uint64_t *key)
{
    uint64_t k = 0;
    size_t i = 0;
    for (; sig_hex && sig_hex[i]; i++) {
        char ch = sig_hex[i];
        unsigned v;
        if (ch >= '0' && ch <= '9')
            v = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v = (unsigned)(ch - 'A' + 10);
        else
            return false;
        if (i < 16)
            k = (k << 4) | v;
    }
    if (i != RDV_SIG_HEXLEN)
        return false;
    *key = k;
    return true;
}

/* A ring of cap entries holding r's entries (if any) from index 0. */
static srv_replay *ring_resize(srv_replay *r, uint32_t cap)
{
    srv_replay *nr = malloc(sizeof *nr + (size_t)cap * sizeof nr->e[0]);
    if (!nr)
        return NULL;
    nr->head = 0;
    nr->n = 0;
    nr->cap = cap;
    for (uint32_t i = 0; r && i < r->n && i < cap; i++)
        nr->e[nr->n++] = r->e[(r->head + i) % r->cap];
    return nr;
}

bool srv_replay_seen(const srv_replay *r, uint64_t key, int64_t now)
{
    if (!r)
        return false;
    for (uint32_t i = 0; i < r->n; i++) {
        const replay_entry *e = &r->e[(r->head + i) % r->cap];
        if (e->key == key && e->until_ms >= now)
            return true;
    }
    return false;
}

void srv_replay_add(srv_replay **rp, uint64_t key, int64_t ts, int64_t now, uint32_t max)
{
    if (max == 0)
        return;
    srv_replay *r = *rp;
    /* forget the expired ones at the old end */
    while (r && r->n && r->e[r->head].until_ms < now) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    if (r && r->n == 0 && r->cap > FIRST_CAP) {
        free(r);
        *rp = r = NULL;
    }
    if (!r || (r->n == r->cap && r->cap < max)) {
        uint32_t cap = !r ? FIRST_CAP : r->cap * 2;
        if (cap > max)
            cap = max;
        srv_replay *nr = ring_resize(r, cap);
        if (!nr)
            return; /* not kept: the copy would pass, nothing worse */
        free(r);
        *rp = r = nr;
    }
    replay_entry ne = {.key = key, .until_ms = ts + RDV_INGRESS_SKEW_MS};
    if (r->n == r->cap) { /* at the cap: forget the oldest */
        r->e[r->head] = ne;
        r->head = (r->head + 1) % r->cap;
    } else {
        r->e[(r->head + r->n) % r->cap] = ne;
        r->n++;
    }
}

void srv_replay_free(srv_replay **r)
{
    free(*r);
    *r = NULL;
}
