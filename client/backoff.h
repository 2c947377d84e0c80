/* backoff.h - the reconnect delay: exponential, capped, jittered
 * (backoff.c; internal). */
#ifndef RDV_CLIENT_BACKOFF_H
#define RDV_CLIENT_BACKOFF_H

#include <stdint.h>

#include "rendezvous/rendezvous.h"

/* Reconnect delay in ms before attempt number `attempt` (0 for the first
 * retry) under `p` (defaults already applied); `rnd` is a uniform random
 * 32-bit value (jitter). */
int64_t rdv__backoff_ms(const rdv_reconnect_policy *p, unsigned attempt,
                        uint32_t rnd);

/* The delay after the n-th refusal (not_admitted, revoked) in a row:
 * 60 s, doubling, at most 15 min, minus up to 20 % jitter. */
int64_t rdv__refused_delay_ms(unsigned n, uint32_t rnd);

#endif
