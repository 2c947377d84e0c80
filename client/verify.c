/* verify.c - checks a node applies to every received signed message before
 * it reaches the application (PROTOCOL.md 4 and 7.1: "Receivers MUST
 * verify sender, signature and freshness themselves: the server is not
 * trusted with content"), and the replay cache.
 *
 * Order: recipient (toNodeID is us, fromNodeID is not), Ed25519 signature
 * with the key named by fromNodeID over the domain-tagged JCS body (the
 * codec's rdv_sig_verify_from), freshness (now - past <= ts <= now +
 * future, in server time), replay. Replay key: a hash of (type, sender,
 * signature). Ed25519 as libsodium verifies it is not malleable, so a
 * second copy of one message - re-serialised or not - has the same key,
 * while two different messages never share one (PROTOCOL.md 4 "Replay"
 * names type, sender, sessionID and timestamp; two candidates signed in
 * the same millisecond would collide under that key, so this one is
 * stricter about copies and never drops a distinct message). Entries live
 * as long as the freshness window; older messages are refused as stale.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/client.h"
#include "schema/sign.h"

int rdv__replay_init(rdv__replay *rc)
{
    memset(rc, 0, sizeof(*rc));
    rc->slots = calloc(RDV__REPLAY_SLOTS, sizeof(*rc->slots));
    return rc->slots ? 0 : RDV_ERR_NOMEM;
}

void rdv__replay_free(rdv__replay *rc)
{
    free(rc->slots);
    memset(rc, 0, sizeof(*rc));
}

/* Returns true when key is present and not expired; otherwise stores it
 * (reusing an expired slot, else the round-robin victim). */
static bool replay_seen_or_add(rdv__replay *rc, const uint8_t key[16],
                               int64_t ts, int64_t oldest_valid)
{
    size_t free_slot = RDV__REPLAY_SLOTS;
    for (size_t i = 0; i < rc->used; i++) {
        rdv__replay_entry *e = &rc->slots[i];
        if (e->ts < oldest_valid) {
            if (free_slot == RDV__REPLAY_SLOTS)
                free_slot = i;
            continue;
        }
        if (memcmp(e->key, key, 16) == 0)
            return true;
    }
    if (free_slot == RDV__REPLAY_SLOTS) {
        if (rc->used < RDV__REPLAY_SLOTS) {
            free_slot = rc->used++;
        } else {
            free_slot = rc->next;
            rc->next = (rc->next + 1) % RDV__REPLAY_SLOTS;
        }
    }
    memcpy(rc->slots[free_slot].key, key, 16);
    rc->slots[free_slot].ts = ts;
    return false;
}

int rdv__verify_routed(const rdv_msg *m, const char *self_id, int64_t now,
                       const rdv__fresh *fresh, rdv__replay *rc)
{
    if (!m || !m->body || !rdv_msg_type_is_signed(m->type) ||
        !rdv_msg_type_is_routed(m->type))
        return RDV_ERR_INVALID;
    const char *from = rdv_msg_get_str(m->body, "fromNodeID");
    const char *to = rdv_msg_get_str(m->body, "toNodeID");
    const char *sig = rdv_msg_get_str(m->body, "signature");
    int64_t ts;
    if (!from || !to || !sig || !rdv_msg_get_int(m->body, "timestamp", &ts))
        return RDV_ERR_PROTOCOL;
    if (strcmp(to, self_id) != 0 || strcmp(from, self_id) == 0)
        return RDV_ERR_MISROUTED;
    if (rdv_sig_verify_from(m->type, m->body, "fromNodeID") != 0)
        return RDV_ERR_BAD_SIGNATURE;
    if (!rdv_ts_fresh(ts, now, fresh->past_ms, fresh->future_ms))
        return RDV_ERR_STALE;
    if (rc && rc->slots) {
        uint8_t key[16];
        crypto_generichash_state st;
        const char *tname = rdv_msg_type_name(m->type);
        crypto_generichash_init(&st, NULL, 0, sizeof(key));
        crypto_generichash_update(&st, (const uint8_t *)tname, strlen(tname) + 1);
        crypto_generichash_update(&st, (const uint8_t *)from, strlen(from) + 1);
        crypto_generichash_update(&st, (const uint8_t *)sig, strlen(sig));
        crypto_generichash_final(&st, key, sizeof(key));
        if (replay_seen_or_add(rc, key, ts, now - fresh->past_ms))
            return RDV_ERR_DUPLICATE;
    }
    return 0;
}
