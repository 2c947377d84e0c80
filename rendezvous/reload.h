/* reload.h - SIGHUP reload: an ordered list of hooks run on the loop
 * thread (README "Reload").
 *
 * How a reload happens: SIGHUP's handler (server.c) only sets a flag and
 * wakes the loop with lws_cancel_service(); the loop then schedules a
 * zero-delay lws timer, and srv_reload_run() runs from that timer: on the
 * loop thread, outside any connection's callback, so a hook may touch
 * the server context, lws vhosts and connections like any other loop code.
 * Several SIGHUPs that arrive before the loop gets to it are one reload.
 *
 * The contract for a hook (the config file is the first one, registered
 * by main.c before the server starts; helpers add theirs, e.g. a policy
 * file or the TLS certificate, from their start-up code):
 * - fn(user, err, errlen) re-reads its source and either applies it whole
 *   and returns 0, or returns -1 with one line in err (no newline, NUL
 *   terminated, cut to errlen) saying what is wrong, e.g. "policy.conf:3:
 *   unknown action 'x'", and KEEPS ITS PREVIOUS STATE entirely: validate
 *   first, then swap. Never half-apply.
 * - It runs on the loop thread and should be quick (reading a small file,
 *   loading a certificate); it must not block on the network.
 * - It must not call exit/abort, raise signals, or register hooks.
 * - A failing hook does not stop the others: every hook runs, in the order
 *   they were registered. The reload then logs ONE line: "reload N: ok
 *   (config, policy, tls)" at NOTICE, or "reload N: FAILED: tls: <err>;
 *   ... (kept the previous state of those; the others applied)" at ERROR.
 * - Hooks have no unregister: they live as long as the server context, so
 *   `user` must too.
 *
 * /metrics: rendezvous_reloads_total, rendezvous_reload_failures_total
 * (reloads in which at least one hook failed) and
 * rendezvous_reload_last_success (1 when every hook of the last reload
 * succeeded, or no reload yet).
 */
#ifndef SRV_RELOAD_H
#define SRV_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "rendezvous/log.h"

#define SRV_RELOAD_MAX_HOOKS 8
#define SRV_RELOAD_NAME_MAX 24 /* bytes of a hook's name, NUL included */

/* A hook: 0 when applied, -1 with a reason in err when its previous state
 * was kept (see the contract above). */
typedef int (*srv_reload_fn)(void *user, char *err, size_t errlen);

typedef struct srv_reload_hook {
    char name[SRV_RELOAD_NAME_MAX];
    srv_reload_fn fn;
    void *user;
} srv_reload_hook;

typedef struct srv_reload {
    srv_reload_hook hooks[SRV_RELOAD_MAX_HOOKS];
    int n_hooks;
    uint64_t reloads;     /* reloads run */
    uint64_t failures;    /* reloads in which a hook failed */
    int last_ok;          /* 1: the last reload's hooks all succeeded (or none yet) */
} srv_reload;

/* Empties r (no hooks, counters at 0, last_ok 1). */
void srv_reload_init(srv_reload *r);

/* Appends a hook named `name` (1..SRV_RELOAD_NAME_MAX-1 bytes, e.g.
 * "config", "policy", "tls"): it runs after the hooks registered before
 * it. Returns 0, or -1 when r is full, the name is empty, too long or
 * already registered, or fn is NULL. */
int srv_reload_register(srv_reload *r, const char *name, srv_reload_fn fn, void *user);

/* Runs every hook in order, counts the reload, and logs its one line to
 * log (see above). Returns the number of hooks that failed (0: all
 * applied). */
int srv_reload_run(srv_reload *r, const srv_logger *log);

#endif
