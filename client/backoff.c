/* backoff.c - the reconnect delay: exponential from initial_backoff_ms,
 * capped at max_backoff_ms, minus a random share of up to jitter_percent so
 * that a fleet cut off at once does not come back at once.
 *
 *   d = min(max, initial * 2^attempt);   delay = d - d * jitter% * rnd/2^32
 */
#include "client/client.h"
#include "client/backoff.h"

/* After not_admitted / revoked the operator has to act: retrying fast
 * would only hammer the server (PROTOCOL.md 10). */
#define RDV__REFUSED_MIN_MS 60000
#define RDV__REFUSED_MAX_MS (15 * 60000)

int64_t rdv__backoff_ms(const rdv_reconnect_policy *p, unsigned attempt,
                        uint32_t rnd)
{
    int64_t d = p->initial_backoff_ms;
    int64_t max = p->max_backoff_ms;
    if (d < 1)
        d = 1;
    if (max < d)
        max = d;
    for (unsigned i = 0; i < attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    int j = p->jitter_percent;
    if (j > 0) {
        if (j > 100)
            j = 100;
        /* d * j/100 * rnd/2^32, computed without overflow (d <= 2^31). */
        int64_t cut = (int64_t)(((uint64_t)d * (uint64_t)j / 100u * rnd) >> 32);
        d -= cut;
    }
    return d;
}

int64_t rdv__refused_delay_ms(unsigned n, uint32_t rnd)
{
    int64_t d = RDV__REFUSED_MIN_MS;
    for (unsigned i = 1; i < n && d < RDV__REFUSED_MAX_MS; i++)
        d *= 2;
    if (d > RDV__REFUSED_MAX_MS)
        d = RDV__REFUSED_MAX_MS;
    return d - (int64_t)(((uint64_t)d / 5u * rnd) >> 32); /* up to 20 % less */
}
