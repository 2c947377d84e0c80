/* main.c - rendezvousd: reads the configuration, opens the store, serves
 * until SIGTERM/SIGINT, and leaves the database consistent.
 *
 * Exit codes: 0 after a clean shutdown (or --help / --version), 1 when the
 * server cannot start (database, listener), 2 for an invalid configuration.
 * SIGHUP reloads (reload.h): the config file is its first hook.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "rendezvous/config.h"
#include "rendezvous/healthcheck.h"
#include "rendezvous/log.h"
#include "rendezvous/notify.h"
#include "rendezvous/preflight.h"
#include "rendezvous/server.h"
#include "schema/sign.h"
#include "rendezvous/store.h"

/* LeakSanitizer hook (a weak symbol; unused without sanitizers):
 * libwebsockets 4.1.6 leaks a 72-byte allocation when lws_create_context()
 * fails (e.g. the port is in use), which would turn exit code 1 into
 * LSan's. Only leaks whose stack is inside libwebsockets are ignored. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libwebsockets.so\n";
}

/* Raises the soft open-file limit to the hard limit: every node is a
 * socket. Logs the limit in force. */
static void raise_nofile(const srv_logger *log)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            srv_warn(log, "cannot raise the open-file limit to %llu", (unsigned long long)want);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        srv_info(log, "open-file limit %llu (raise the hard limit, e.g. systemd LimitNOFILE, "
                      "to hold more nodes)",
                 (unsigned long long)rl.rlim_cur);
}

/* The "config" reload hook (reload.h): the --config file again, the
 * options marked live applied; a restart-only option that changed is
 * logged. */
typedef struct config_reload {
    srv_config *cfg;
    int argc;
    char **argv;
} config_reload;

static int reload_config(void *user, char *err, size_t errlen)
{
    config_reload *cr = user;
    char restart[512];
    if (srv_config_reload(cr->cfg, cr->argc, cr->argv, restart, sizeof restart, err, errlen) != 0)
        return -1;
    if (restart[0])
        srv_warn(&cr->cfg->log, "reload: changed but applied only at restart: %s", restart);
    return 0;
}

int main(int argc, char **argv)
{
    int hc = srv_healthcheck_main(argc, argv); /* --healthcheck[=PID] */
    if (hc >= 0)
        return hc;
    srv_config cfg;
    switch (srv_config_load(&cfg, argc, argv)) {
    case SRV_CONFIG_EXIT_OK:
        return 0;
    case SRV_CONFIG_ERROR:
        return 2;
    case SRV_CONFIG_RUN:
        break;
    }
    const srv_logger *log = &cfg.log;
    if (sodium_init() < 0) {
        srv_error(log, "libsodium cannot initialise");
        return 1;
    }
    raise_nofile(log);
    if (srv_preflight(&cfg, log) != 0)
        return 1;

    /* the SQLite store is the engine of a server alone; with --redis the
     * cluster's state lives in Redis and no database file is opened */
    srv_store *store = NULL;
    char err[256] = "";
    if (!cfg.redis_url[0]) {
        if (srv_store_open(cfg.db_path, &store, err, sizeof err) != SRV_STORE_OK) {
            srv_error(log, "cannot open database %s: %s", cfg.db_path, err);
            return 1;
        }
        if (srv_store_mark_all_offline(store, rdv_now_ms()) != SRV_STORE_OK ||
            srv_store_flush(store) != SRV_STORE_OK) {
            srv_error(log, "database %s: cannot mark nodes offline: %s", cfg.db_path,
                      srv_store_errmsg(store));
            srv_store_close(store);
            return 1;
        }
    }

    srv_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cfg = &cfg;
    srv.log = log;
    srv.store = store;
    srv_reload_init(&srv.reload);
    config_reload cr = {&cfg, argc, argv};
    srv_reload_register(&srv.reload, "config", reload_config, &cr);
    int rc = 0;
    if (srv_server_start(&srv) != 0) {
        rc = 1;
    } else {
        char status[160];
        snprintf(status, sizeof status, "listening on %s://%.64s:%d/v1", srv.tls ? "wss" : "ws",
                 cfg.listen, srv.port);
        srv_notify_ready(log, status); /* systemd Type=notify */
        srv_server_run(&srv);
    }
    srv_server_destroy(&srv);
    if (store && srv_store_flush(store) != SRV_STORE_OK) {
        srv_error(log, "database %s: final commit failed: %s", cfg.db_path,
                  srv_store_errmsg(store));
        rc = 1;
    }
    srv_store_close(store);
    if (rc == 0)
        srv_notice(log, "stopped");
    return rc;
}
