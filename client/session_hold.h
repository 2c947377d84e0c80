/* session_hold.h - datagrams held while a session is between two paths (internal;
 * never installed). A direct-then-relay session that had a path and lost it
 * (the direct path stopped answering, the relay leg is being reopened)
 * keeps what the application sends meanwhile, in order, and sends it on the
 * next path (client/README "Paths"). A bounded FIFO of plaintext copies,
 * wiped when freed. Not thread-safe: the caller holds the client's lock.
 */
#ifndef RDV_CLIENT_HOLD_H
#define RDV_CLIENT_HOLD_H

#include <stddef.h>
#include <stdint.h>

#include "rendezvous/rendezvous.h"

/* One held datagram. */
typedef struct rdv__held {
    struct rdv__held *next;
    size_t len;
    uint8_t data[];
} rdv__held;

/* The FIFO. All zero = empty. */
typedef struct rdv__hold {
    rdv__held *head, *tail;
    size_t n;          /* datagrams held now */
    size_t bytes;      /* their payload bytes */
    uint64_t total;    /* datagrams ever held */
} rdv__hold;

/* Appends a copy of buf[0..len) (buf may be NULL when len is 0). Returns 0,
 * RDV_ERR_BACKLOG when RDV_PATH_GAP_MAX_DATAGRAMS datagrams or
 * RDV_PATH_GAP_MAX_BYTES payload bytes would be exceeded, or
 * RDV_ERR_NOMEM; nothing is held then. */
int rdv__hold_push(rdv__hold *h, const void *buf, size_t len);

/* Detaches and returns every held datagram, oldest first (NULL: none);
 * the FIFO is empty afterwards. The caller frees each one with
 * rdv__held_free. */
rdv__held *rdv__hold_take(rdv__hold *h);

/* Wipes and frees one datagram taken from the FIFO. NULL is ignored. */
void rdv__held_free(rdv__held *d);

/* Wipes and frees every held datagram. Returns how many there were. */
size_t rdv__hold_clear(rdv__hold *h);

#endif
