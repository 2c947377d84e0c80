/* loop_lag.c - the event loop's lag (see loop_lag.h). */
#include "rendezvous/loop_lag.h"

/* Moves l's windows on to the one holding now_ms. */
static void roll(srv_loop_lag *l, int64_t now_ms)
{
    if (now_ms - l->window_ms < SRV_LOOP_LAG_WINDOW_MS)
        return;
    /* the previous window is the one just over, or empty when more passed */
    l->prev_ms = now_ms - l->window_ms < 2 * SRV_LOOP_LAG_WINDOW_MS ? l->cur_ms : 0;
    l->cur_ms = 0;
    l->window_ms = now_ms;
}

void srv_loop_lag_note(srv_loop_lag *l, int64_t due_ms, int64_t now_ms)
{
    roll(l, now_ms);
    int64_t lag = now_ms - due_ms;
    if (lag > l->cur_ms)
        l->cur_ms = lag;
}

int64_t srv_loop_lag_ms(const srv_loop_lag *l, int64_t now_ms)
{
    int64_t age = now_ms - l->window_ms;
    if (age >= 2 * SRV_LOOP_LAG_WINDOW_MS)
        return 0; /* nothing noted for two windows */
    if (age >= SRV_LOOP_LAG_WINDOW_MS)
        return l->cur_ms; /* the current window is now the previous one */
    return l->cur_ms > l->prev_ms ? l->cur_ms : l->prev_ms;
}
