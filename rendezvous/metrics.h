/* metrics.h - the server's counters and gauges, rendered by http.c as
 * Prometheus text (/metrics) and a JSON summary (/status).
 *
 * Plain integers updated from the event loop only; no atomics needed while
 * the server is single-threaded.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdint.h>

#include "schema/errors.h"
#include "schema/message.h"

/* Why a message was dropped without delivery. */
typedef enum srv_drop_reason {
    SRV_DROP_EXPIRED = 0,    /* offline queue TTL passed */
    SRV_DROP_QUEUE_FULL,     /* recipient's offline queue at its cap */
    SRV_DROP_SLOW_CONSUMER,  /* recipient's send queue overflowed */
    SRV_DROP_RATE_LIMITED,   /* sender over its token bucket */
    SRV_DROP_STORE_ERROR,    /* the database refused the write */
    SRV_DROP__COUNT
} srv_drop_reason;

typedef struct srv_metrics {
    uint64_t connections;              /* gauge: open WebSocket connections */
    uint64_t nodes_authenticated;      /* gauge: connections past welcome */
    uint64_t routed[RDV_MSG__COUNT];   /* messages forwarded or queued, by type */
    uint64_t errors_sent[RDV_EC__COUNT];
    uint64_t auth_failures;
    uint64_t rate_limited;
    uint64_t dropped[SRV_DROP__COUNT];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t connections_total;        /* accepted since start */
    uint64_t connections_refused;      /* over a connection limit */
    uint64_t handshakes_refused;       /* over --max-handshakes-per-ip */
    uint64_t frame_floods;             /* closed by frame_guard.h */
} srv_metrics;

/* Prometheus label value of a drop reason ("expired", ...). */
const char *srv_drop_reason_name(srv_drop_reason r);

#endif
