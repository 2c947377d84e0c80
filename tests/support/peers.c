/* peers.c - the registry of live test peers (peers.h). */
#include "peers.h"

#include <stddef.h>

#include "server.h"

static struct {
    void *peer;
    void (*free_fn)(void *);
} g_slots[RDV_TS_MAX_PEERS];

int rdv_ts_peer_track(void *peer, void (*free_fn)(void *))
{
    if (!peer || !free_fn)
        return -1;
    for (int i = 0; i < RDV_TS_MAX_PEERS; i++)
        if (!g_slots[i].peer) {
            g_slots[i].peer = peer;
            g_slots[i].free_fn = free_fn;
            return 0;
        }
    return -1;
}

void rdv_ts_peer_untrack(const void *peer)
{
    if (!peer)
        return;
    for (int i = 0; i < RDV_TS_MAX_PEERS; i++)
        if (g_slots[i].peer == peer) {
            g_slots[i].peer = NULL;
            g_slots[i].free_fn = NULL;
        }
}

void *rdv_ts_peer_at(int i)
{
    if (i < 0 || i >= RDV_TS_MAX_PEERS)
        return NULL;
    return g_slots[i].peer;
}

int rdv_ts_peers_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < RDV_TS_MAX_PEERS; i++) {
        void *peer = g_slots[i].peer;
        void (*free_fn)(void *) = g_slots[i].free_fn;
        if (!peer)
            continue;
        /* Emptied first: free_fn's own untrack then finds nothing. */
        g_slots[i].peer = NULL;
        g_slots[i].free_fn = NULL;
        free_fn(peer);
    }
    rdv_ts_cleanup_all();
    return 0;
}
