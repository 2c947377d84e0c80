/* metrics.c - names for the metric labels (see metrics.h). */
#include "metrics.h"

static const char *const drop_names[RDV_DROP__COUNT] = {
    [RDV_DROP_EXPIRED] = "expired",
    [RDV_DROP_QUEUE_FULL] = "queue_full",
    [RDV_DROP_SLOW_CONSUMER] = "slow_consumer",
    [RDV_DROP_RATE_LIMITED] = "rate_limited",
    [RDV_DROP_STORE_ERROR] = "store_error",
};

const char *rdv_drop_reason_name(rdv_drop_reason r)
{
    return (unsigned)r < RDV_DROP__COUNT ? drop_names[r] : "unknown";
}
