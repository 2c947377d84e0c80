/* metrics.c - names for the metric labels (see metrics.h). */
#include "rendezvous/metrics.h"

static const char *const drop_names[SRV_DROP__COUNT] = {
    [SRV_DROP_EXPIRED] = "expired",
    [SRV_DROP_QUEUE_FULL] = "queue_full",
    [SRV_DROP_SLOW_CONSUMER] = "slow_consumer",
    [SRV_DROP_RATE_LIMITED] = "rate_limited",
    [SRV_DROP_STORE_ERROR] = "store_error",
};

const char *srv_drop_reason_name(srv_drop_reason r)
{
    return (unsigned)r < SRV_DROP__COUNT ? drop_names[r] : "unknown";
}
