/* hmap.h - an intrusive chained hash table keyed by fixed-size byte
 * strings (node IDs, IP addresses), hashed with keyed SipHash
 * (crypto_shorthash) so a client cannot choose colliding keys.
 *
 * Entries embed an srv_hnode; the key bytes live in the same struct at a
 * fixed offset from the node. The table never owns entries.
 */
#ifndef SRV_HMAP_H
#define SRV_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_hnode {
    struct srv_hnode *next;
} srv_hnode;

typedef struct srv_hmap {
    srv_hnode **buckets;
    size_t nbuckets;       /* power of two */
    size_t count;
    size_t keylen;
    ptrdiff_t key_offset;  /* key address minus node address */
    uint8_t sipkey[16];
} srv_hmap;

/* Initialises an empty table with a fresh random hash key. Returns 0 or -1
 * on allocation failure. */
int srv_hmap_init(srv_hmap *m, size_t keylen, ptrdiff_t key_offset)
    __attribute__((warn_unused_result));

/* Frees the bucket array (not the entries). Safe on a zeroed table. */
void srv_hmap_free(srv_hmap *m);

/* The entry with `key`, or NULL. */
srv_hnode *srv_hmap_get(const srv_hmap *m, const uint8_t *key);

/* Inserts n (its key must not be present). Grows the table when it can;
 * never fails. */
void srv_hmap_put(srv_hmap *m, srv_hnode *n);

/* Removes n if present. */
void srv_hmap_del(srv_hmap *m, srv_hnode *n);

/* Calls fn for every entry; fn may remove (and free) the entry it gets. */
void srv_hmap_each(srv_hmap *m, void (*fn)(srv_hnode *n, void *user), void *user);

/* Calls fn for the entries of the buckets from `*bucket` on, whole buckets
 * at a time, until at least `max` entries were visited or the table ends;
 * fn may remove (and free) the entry it gets. Leaves in *bucket where the
 * next call goes on (0 once the end was reached: a pass is over). Entries
 * added or moved by a growth between calls may be visited twice or not at
 * all in that pass. Returns how many entries fn got. */
size_t srv_hmap_each_from(srv_hmap *m, size_t *bucket, size_t max,
                          void (*fn)(srv_hnode *n, void *user), void *user);

#define srv_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
