/* reload.c - the SIGHUP hook list (see reload.h). */
#include "rendezvous/reload.h"

#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES 1024 /* the reload's log line */
#define HOOK_ERR_MAX 384    /* one hook's reason */

void srv_reload_init(srv_reload *r)
{
    memset(r, 0, sizeof *r);
    r->last_ok = 1;
}

int srv_reload_register(srv_reload *r, const char *name, srv_reload_fn fn, void *user)
{
    if (!r || !fn || !name)
        return -1;
    size_t len = strlen(name);
    if (len == 0 || len >= SRV_RELOAD_NAME_MAX || r->n_hooks >= SRV_RELOAD_MAX_HOOKS)
        return -1;
    for (int i = 0; i < r->n_hooks; i++)
        if (!strcmp(r->hooks[i].name, name))
            return -1;
    srv_reload_hook *h = &r->hooks[r->n_hooks++];
    memcpy(h->name, name, len + 1);
    h->fn = fn;
    h->user = user;
    return 0;
}

/* Appends "%s" to line at *n, never past its end. */
static void append(char *line, size_t size, size_t *n, const char *text)
{
    if (*n >= size - 1)
        return;
    int w = snprintf(line + *n, size - *n, "%s", text);
    if (w < 0)
        return;
    *n += (size_t)w < size - *n ? (size_t)w : size - *n - 1;
}

int srv_reload_run(srv_reload *r, const srv_logger *log)
{
    char ok_names[LINE_MAX_BYTES] = "", failed[LINE_MAX_BYTES] = "";
    size_t n_ok = 0, n_failed = 0;
    int failures = 0;
    for (int i = 0; i < r->n_hooks; i++) {
        srv_reload_hook *h = &r->hooks[i];
        char err[HOOK_ERR_MAX] = "";
        if (h->fn(h->user, err, sizeof err) == 0) {
            append(ok_names, sizeof ok_names, &n_ok, n_ok ? ", " : "");
            append(ok_names, sizeof ok_names, &n_ok, h->name);
            continue;
        }
        failures++;
        err[sizeof err - 1] = '\0';
        append(failed, sizeof failed, &n_failed, n_failed ? "; " : "");
        append(failed, sizeof failed, &n_failed, h->name);
        append(failed, sizeof failed, &n_failed, ": ");
        append(failed, sizeof failed, &n_failed, err[0] ? err : "failed (no reason given)");
    }
    r->reloads++;
    r->last_ok = failures == 0;
    if (failures == 0) {
        srv_notice(log, "reload %llu: ok (%s)", (unsigned long long)r->reloads,
                   r->n_hooks ? ok_names : "nothing to reload");
        return 0;
    }
    r->failures++;
    srv_error(log, "reload %llu: FAILED: %s (kept the previous state of %s; applied: %s)",
              (unsigned long long)r->reloads, failed, failures == 1 ? "that" : "those",
              n_ok ? ok_names : "nothing");
    return failures;
}
