/* verify.h - checks of received signed messages (recipient, signature,
 * freshness) and the replay cache; pure functions of their inputs
 * (verify.c; internal). */
#ifndef RDV_CLIENT_VERIFY_H
#define RDV_CLIENT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "schema/message.h"

#define RDV__REPLAY_SLOTS 4096 /* replay cache entries */

/* One replay-cache entry: a hash of (type, sender, signature) and the
 * message's timestamp. */
typedef struct rdv__replay_entry {
    uint8_t key[16];
    int64_t ts;
} rdv__replay_entry;

typedef struct rdv__replay {
    rdv__replay_entry *slots; /* RDV__REPLAY_SLOTS */
    size_t used;
    size_t next;              /* round-robin eviction when full */
} rdv__replay;

/* Freshness window in force (welcome limits or the defaults). */
typedef struct rdv__fresh {
    int64_t past_ms;
    int64_t future_ms;
} rdv__fresh;

/* Verifies a received routed signed message `m` for node `self_id` at
 * server time `now`: recipient (RDV_ERR_MISROUTED), signature
 * (RDV_ERR_BAD_SIGNATURE), freshness (RDV_ERR_STALE), replay
 * (RDV_ERR_DUPLICATE; an accepted message is remembered in `rc`, which may
 * be NULL to skip). Returns 0 when the message may be delivered. */
int rdv__verify_routed(const rdv_msg *m, const char *self_id, int64_t now,
                       const rdv__fresh *fresh, rdv__replay *rc)
    __attribute__((warn_unused_result));

int rdv__replay_init(rdv__replay *rc);
void rdv__replay_free(rdv__replay *rc);

#endif
