/* healthcheck.c - `rendezvousd --healthcheck[=PID]` (see healthcheck.h):
 * the configuration as the server reads it, then one GET /healthz with
 * libwebsockets' HTTP client (TLS included), bounded by a timer.
 */
#include "rendezvous/healthcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rendezvous/config.h"

#define PROBE_TIMEOUT_US (2 * LWS_US_PER_SEC)
#define PROC_FILE_MAX (256 * 1024) /* a command line or an environment */

typedef struct probe {
    int status;          /* HTTP status, 0 before an answer */
    bool done;
    char err[160];       /* why there is no status */
    lws_sorted_usec_list_t sul_timeout;
} probe;

static int probe_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    probe *p = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(p->err, sizeof p->err, "%.150s", in ? (const char *)in : "cannot connect");
        p->done = true;
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        p->status = (int)lws_http_client_http_response(wsi);
        p->done = true;
        return -1; /* the status is all we want: close */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (!p->done)
            snprintf(p->err, sizeof p->err, "closed without an answer");
        p->done = true;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void timeout_cb(lws_sorted_usec_list_t *sul)
{
    probe *p = lws_container_of(sul, probe, sul_timeout);
    if (!p->done)
        snprintf(p->err, sizeof p->err, "no answer within %d s",
                 (int)(PROBE_TIMEOUT_US / LWS_US_PER_SEC));
    p->done = true;
}

/* GET scheme://addr:port/healthz; fills p. */
static void get_healthz(const char *addr, int port, bool tls, probe *p)
{
    static const struct lws_protocols protocols[] = {
        {"rdv-healthcheck", probe_cb, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    lws_set_log_level(0, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = p;
    info.gid = -1;
    info.uid = -1;
    if (tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        snprintf(p->err, sizeof p->err, "cannot create the HTTP client");
        return;
    }
    struct lws_client_connect_info cc;
    memset(&cc, 0, sizeof cc);
    cc.context = ctx;
    cc.address = addr;
    cc.port = port;
    cc.path = "/healthz";
    cc.host = addr;
    cc.origin = addr;
    cc.method = "GET";
    cc.protocol = protocols[0].name;
    if (tls)
        cc.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
                            LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED |
                            LCCSCF_ALLOW_INSECURE;
    lws_sul_schedule(ctx, 0, &p->sul_timeout, timeout_cb, PROBE_TIMEOUT_US);
    if (!lws_client_connect_via_info(&cc) && !p->done) {
        snprintf(p->err, sizeof p->err, "cannot connect");
        p->done = true;
    }
    while (!p->done)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_sul_cancel(&p->sul_timeout);
    lws_context_destroy(ctx);
}

/* Reads /proc/PID/NAME whole into a malloc'd buffer (NUL-terminated after
 * *len bytes). NULL (errno set) on failure. */
static char *read_proc(long pid, const char *name, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(PROC_FILE_MAX + 1);
    size_t n = 0;
    while (buf && n < PROC_FILE_MAX) {
        ssize_t r = read(fd, buf + n, PROC_FILE_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Splits a NUL-separated /proc list into a malloc'd NULL-terminated
 * vector pointing into buf; *count gets its length. */
static char **split_nul(char *buf, size_t len, int *count)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            n++;
    if (len && buf[len - 1] != '\0')
        n++;
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return NULL;
    int k = 0;
    for (size_t i = 0; i < len && k < n; i += strlen(buf + i) + 1)
        v[k++] = buf + i;
    *count = k;
    return v;
}

/* --healthcheck=PID: the environment and working directory of PID become
 * ours (the environment's buffer stays allocated: environ points into
 * it), and *argv_out its command line. Returns 0, or -1 (printed). */
static int adopt_process(long pid, char **cmd_buf, char ***argv_out, int *argc_out)
{
    size_t len = 0;
    char *cmd = read_proc(pid, "cmdline", &len);
    if (!cmd || len == 0) {
        fprintf(stderr, "rendezvousd --healthcheck=%ld: cannot read /proc/%ld/cmdline: %s\n",
                pid, pid, cmd ? "empty (not a process?)" : strerror(errno));
        free(cmd);
        return -1;
    }
    const char *base = strrchr(cmd, '/');
    base = base ? base + 1 : cmd;
    if (strncmp(base, "rendezvousd", strlen("rendezvousd")) != 0) {
        fprintf(stderr, "rendezvousd --healthcheck=%ld: process %ld is '%.100s', not rendezvousd\n",
                pid, pid, cmd);
        free(cmd);
        return -1;
    }
    size_t elen = 0;
    char *env = read_proc(pid, "environ", &elen);
    if (!env) {
        fprintf(stderr, "rendezvousd --healthcheck=%ld: cannot read /proc/%ld/environ: %s "
                        "(run the check as the server's user)\n",
                pid, pid, strerror(errno));
        free(cmd);
        return -1;
    }
    char **argv = split_nul(cmd, len, argc_out);
    int envc = 0;
    char **envv = split_nul(env, elen, &envc);
    if (!argv || !envv) {
        fprintf(stderr, "rendezvousd --healthcheck: out of memory\n");
        free(argv);
        free(envv);
        free(env);
        free(cmd);
        return -1;
    }
    clearenv();
    for (int i = 0; i < envc; i++)
        if (strchr(envv[i], '='))
            putenv(envv[i]); /* env stays allocated: environ points into it */
    free(envv);
    char cwd[64];
    snprintf(cwd, sizeof cwd, "/proc/%ld/cwd", pid);
    if (chdir(cwd) != 0) /* a relative --config as the server saw it */
        fprintf(stderr, "rendezvousd --healthcheck=%ld: cannot enter %s: %s (relative paths "
                        "are read from here)\n",
                pid, cwd, strerror(errno));
    *cmd_buf = cmd;
    *argv_out = argv;
    return 0;
}

/* The position of --healthcheck[=PID] in argv (0: none); *pid gets PID or
 * 0. -2 for a malformed PID. */
static int find_flag(int argc, char **argv, long *pid)
{
    *pid = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--healthcheck"))
            return a;
        if (!strncmp(argv[a], "--healthcheck=", 14)) {
            char *end = NULL;
            errno = 0;
            *pid = strtol(argv[a] + 14, &end, 10);
            if (errno || !argv[a][14] || *end || *pid < 1)
                return -2;
            return a;
        }
    }
    return 0;
}

int srv_healthcheck_main(int argc, char **argv)
{
    long pid = 0;
    int at = find_flag(argc, argv, &pid);
    if (at == 0)
        return -1;
    if (at < 0) {
        fprintf(stderr, "rendezvousd: --healthcheck=PID: PID must be a process ID\n");
        return 2;
    }
    /* the configuration: ours without the flag, or the server process's */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    char *cmd = NULL;
    int n = 0;
    if (!args) {
        fprintf(stderr, "rendezvousd --healthcheck: out of memory\n");
        return 1;
    }
    if (pid) {
        free(args);
        args = NULL;
        if (adopt_process(pid, &cmd, &args, &n) != 0)
            return 1;
    } else {
        for (int a = 0; a < argc; a++)
            if (a != at)
                args[n++] = argv[a];
    }
    srv_config *cfg = malloc(sizeof *cfg);
    int rc = 1;
    srv_config_result r = cfg ? srv_config_load(cfg, n, args) : SRV_CONFIG_ERROR;
    if (r != SRV_CONFIG_RUN) {
        rc = r == SRV_CONFIG_EXIT_OK ? 0 : 2;
        goto out;
    }
    const char *addr = cfg->listen;
    if (!strcmp(addr, "0.0.0.0"))
        addr = "127.0.0.1";
    else if (!strcmp(addr, "::"))
        addr = "::1";
    bool tls = cfg->tls_cert[0] != '\0';
    char url[160];
    snprintf(url, sizeof url, "%s://%s%.64s%s:%d/healthz", tls ? "https" : "http",
             strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "", cfg->port);
    if (cfg->port == 0) {
        fprintf(stderr, "unhealthy: the server was given --port 0 (a free port, logged at "
                        "start): --healthcheck cannot know it; give it a fixed --port\n");
        goto out;
    }
    probe p;
    memset(&p, 0, sizeof p);
    get_healthz(addr, cfg->port, tls, &p);
    if (p.status == 200) {
        printf("healthy: %s\n", url);
        rc = 0;
    } else if (p.status) {
        fprintf(stderr, "unhealthy: %s: HTTP %d\n", url, p.status);
    } else {
        fprintf(stderr, "unhealthy: %s: %s\n", url, p.err[0] ? p.err : "no answer");
    }
out:
    free(cfg);
    free(args);
    free(cmd);
    return rc;
}
