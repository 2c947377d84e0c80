/* session_hold.c - datagrams held between two paths (see session_hold.h). */
#include "client/session_hold.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

int rdv__hold_push(rdv__hold *h, const void *buf, size_t len)
{
    if (h->n >= RDV_PATH_GAP_MAX_DATAGRAMS || len > RDV_PATH_GAP_MAX_BYTES ||
        h->bytes > RDV_PATH_GAP_MAX_BYTES - len)
        return RDV_ERR_BACKLOG;
    rdv__held *d = malloc(sizeof(*d) + len);
    if (!d)
        return RDV_ERR_NOMEM;
    d->next = NULL;
    d->len = len;
    if (len)
        memcpy(d->data, buf, len);
    if (h->tail)
        h->tail->next = d;
    else
        h->head = d;
    h->tail = d;
    h->n++;
    h->bytes += len;
    h->total++;
    return 0;
}

rdv__held *rdv__hold_take(rdv__hold *h)
{
    rdv__held *all = h->head;
    h->head = h->tail = NULL;
    h->n = 0;
    h->bytes = 0;
    return all;
}

void rdv__held_free(rdv__held *d)
{
    if (!d)
        return;
    sodium_memzero(d->data, d->len);
    free(d);
}

size_t rdv__hold_clear(rdv__hold *h)
{
    size_t n = 0;
    rdv__held *d = rdv__hold_take(h);
    while (d) {
        rdv__held *next = d->next;
        rdv__held_free(d);
        d = next;
        n++;
    }
    return n;
}
