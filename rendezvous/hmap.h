/* hmap.h - an intrusive chained hash table keyed by fixed-size byte
 * strings (node IDs, IP addresses), hashed with keyed SipHash
 * (crypto_shorthash) so a client cannot choose colliding keys.
 *
 * Entries embed an rdv_hnode; the key bytes live in the same struct at a
 * fixed offset from the node. The table never owns entries.
 */
#ifndef RDV_SERVER_HMAP_H
#define RDV_SERVER_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rdv_hnode {
    struct rdv_hnode *next;
} rdv_hnode;

typedef struct rdv_hmap {
    rdv_hnode **buckets;
    size_t nbuckets;       /* power of two */
    size_t count;
    size_t keylen;
    ptrdiff_t key_offset;  /* key address minus node address */
    uint8_t sipkey[16];
} rdv_hmap;

/* Initialises an empty table with a fresh random hash key. Returns 0 or -1
 * on allocation failure. */
int rdv_hmap_init(rdv_hmap *m, size_t keylen, ptrdiff_t key_offset)
    __attribute__((warn_unused_result));

/* Frees the bucket array (not the entries). Safe on a zeroed table. */
void rdv_hmap_free(rdv_hmap *m);

/* The entry with `key`, or NULL. */
rdv_hnode *rdv_hmap_get(const rdv_hmap *m, const uint8_t *key);

/* Inserts n (its key must not be present). Grows the table when it can;
 * never fails. */
void rdv_hmap_put(rdv_hmap *m, rdv_hnode *n);

/* Removes n if present. */
void rdv_hmap_del(rdv_hmap *m, rdv_hnode *n);

/* Calls fn for every entry; fn may remove (and free) the entry it gets. */
void rdv_hmap_each(rdv_hmap *m, void (*fn)(rdv_hnode *n, void *user), void *user);

#define rdv_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
