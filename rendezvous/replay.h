/* replay.h - the server's replay filter for signed routed messages
 * (PROTOCOL.md section 4, "Replay").
 *
 * Each connection remembers the signatures of the signed messages it sent
 * that the server routed (route.c: offer, answer, iceCandidate forwarded
 * or handed to the offline queue), until their timestamp leaves the
 * server's ingress window (timestamp + 30 s). An exact copy of one of them
 * is a replay: the caller refuses it instead of routing it. The memory is a ring of at most
 * --replay-cache entries of 16 bytes, allocated at the first signed
 * message and freed when every entry has expired; past the cap the oldest
 * entry is forgotten. A signature is not malleable (RFC 8032 5.1.7), so
 * every copy of one message has the same one; the key kept is 8 bytes of
 * it (a collision affects only the sender's own messages, which it could
 * only produce on purpose).
 */
#ifndef SRV_REPLAY_H
#define SRV_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct srv_replay srv_replay;

/* The filter's key of a signature given as its RDV_SIG_BYTES bytes (the
 * first 8, big-endian). */
uint64_t srv_replay_key(const uint8_t *sig);

/* The same key from the signature's RDV_SIG_HEXLEN hex digits (either
 * case). False when sig_hex (NULL allowed) is anything else: such a
 * message is never a replay and never remembered. */
bool srv_replay_key_hex(const char *sig_hex, uint64_t *key);

/* True when key is remembered in r (NULL: empty) and its entry has not
 * expired at wall-clock now (ms). */
bool srv_replay_seen(const srv_replay *r, uint64_t key, int64_t now);

/* Remembers key of a message with timestamp ts until ts + 30 s. max is
 * the cap on entries (0: the filter is off, nothing is kept). *r may be
 * replaced or freed (when everything in it expired). Out of memory: the
 * key is not kept (a copy would pass; nothing worse). */
void srv_replay_add(srv_replay **r, uint64_t key, int64_t ts, int64_t now, uint32_t max);

/* Frees *r and sets it to NULL (safe on NULL). */
void srv_replay_free(srv_replay **r);

#endif
