/* peers.h - a registry of the live test peers of one test (whatever struct
 * a test wraps a client in), so that its teardown frees what a failed
 * assertion left behind. Slots fill first-free and keep their index until
 * the peer is untracked. Not thread-safe: call from the test's thread. No
 * cmocka here: functions report failure and the caller asserts.
 */
#ifndef RDV_TESTS_SUPPORT_PEERS_H
#define RDV_TESTS_SUPPORT_PEERS_H

/* Registry slots (peers alive at once in one test). */
#define RDV_TS_MAX_PEERS 8

/* Registers `peer` in the first free slot; free_fn(peer) frees it at
 * rdv_ts_peers_teardown. Returns 0, or -1 when peer or free_fn is NULL or
 * every slot is taken (nothing registered). */
int rdv_ts_peer_track(void *peer, void (*free_fn)(void *));

/* Forgets `peer` (nothing when it is not registered, NULL included). A
 * peer's free function calls it, so that a peer freed by the test itself
 * is not freed again at teardown. */
void rdv_ts_peer_untrack(const void *peer);

/* The peer in slot i (0 <= i < RDV_TS_MAX_PEERS), or NULL for an empty
 * slot or an i out of range. */
void *rdv_ts_peer_at(int i);

/* A cmocka teardown (the signature of one; state unused): frees every
 * registered peer with its free_fn, in slot order, then every client and
 * server of server.h (rdv_ts_cleanup_all). Returns 0. */
int rdv_ts_peers_teardown(void **state);

#endif
