/* hmap.c - chained hash table with SipHash-2-4 (see hmap.h). Load factor
 * is kept at or below 1 by doubling. */
#include "rendezvous/hmap.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 64

static const uint8_t *key_of(const srv_hmap *m, const srv_hnode *n)
{
    return (const uint8_t *)n + m->key_offset;
}

static size_t bucket_of(const srv_hmap *m, const uint8_t *key, size_t nbuckets)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, key, m->keylen, m->sipkey);
    return (size_t)(h & (nbuckets - 1));
}

int srv_hmap_init(srv_hmap *m, size_t keylen, ptrdiff_t key_offset)
{
    memset(m, 0, sizeof *m);
    m->buckets = calloc(INITIAL_BUCKETS, sizeof *m->buckets);
    if (!m->buckets)
        return -1;
    m->nbuckets = INITIAL_BUCKETS;
    m->keylen = keylen;
    m->key_offset = key_offset;
    randombytes_buf(m->sipkey, sizeof m->sipkey);
    return 0;
}

void srv_hmap_free(srv_hmap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

srv_hnode *srv_hmap_get(const srv_hmap *m, const uint8_t *key)
{
    if (!m->buckets)
        return NULL;
    for (srv_hnode *n = m->buckets[bucket_of(m, key, m->nbuckets)]; n; n = n->next)
        if (!memcmp(key_of(m, n), key, m->keylen))
            return n;
    return NULL;
}

/* Doubles the bucket array; on allocation failure keeps the old one. */
static void grow(srv_hmap *m)
{
    size_t nb = m->nbuckets * 2;
    srv_hnode **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        srv_hnode *n = m->buckets[i];
        while (n) {
            srv_hnode *next = n->next;
            size_t j = bucket_of(m, key_of(m, n), nb);
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

void srv_hmap_put(srv_hmap *m, srv_hnode *n)
{
    if (m->count >= m->nbuckets)
        grow(m);
    size_t j = bucket_of(m, key_of(m, n), m->nbuckets);
    n->next = m->buckets[j];
    m->buckets[j] = n;
    m->count++;
}

void srv_hmap_del(srv_hmap *m, srv_hnode *n)
{
    if (!m->buckets)
        return;
    srv_hnode **pp = &m->buckets[bucket_of(m, key_of(m, n), m->nbuckets)];
    for (; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            m->count--;
            return;
        }
    }
}

void srv_hmap_each(srv_hmap *m, void (*fn)(srv_hnode *n, void *user), void *user)
{
    for (size_t i = 0; m->buckets && i < m->nbuckets; i++) {
        srv_hnode *n = m->buckets[i];
        while (n) {
            srv_hnode *next = n->next;
            fn(n, user);
            n = next;
        }
    }
}

size_t srv_hmap_each_from(srv_hmap *m, size_t *bucket, size_t max,
                          void (*fn)(srv_hnode *n, void *user), void *user)
{
    size_t i = *bucket, seen = 0;
    for (; m->buckets && i < m->nbuckets && seen < max; i++) {
        srv_hnode *n = m->buckets[i];
        while (n) {
            srv_hnode *next = n->next;
            fn(n, user);
            seen++;
            n = next;
        }
    }
    *bucket = m->buckets && i < m->nbuckets ? i : 0;
    return seen;
}
