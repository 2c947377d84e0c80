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

/* True when the signature sig_hex (128 hex digits; anything else is never
 * a replay) is remembered in r (NULL: empty) and its entry has not expired
 * at wall-clock now (ms). */
bool srv_replay_seen(const srv_replay *r, const char *sig_hex, int64_t now);

/* Remembers sig_hex of a message with timestamp ts until ts + 30 s. max is
 * the cap on entries (0: the filter is off, nothing is kept). *r may be
 * replaced or freed (when everything in it expired). Out of memory: the
 * signature is not kept (a copy would pass; nothing worse). */
void srv_replay_add(srv_replay **r, const char *sig_hex, int64_t ts, int64_t now, uint32_t max);

/* srv_replay_seen(), and srv_replay_add() when not seen. Returns 1 when it
 * was seen (a replay), else 0. */
int srv_replay_check(srv_replay **r, const char *sig_hex, int64_t ts, int64_t now,
                     uint32_t max);

/* Frees *r and sets it to NULL (safe on NULL). */
void srv_replay_free(srv_replay **r);

#endif
