/* server.c - run a real rendezvousd as a child process for tests.
 *
 * See server.h. The child gets stdout+stderr redirected to a log file in
 * its own temporary directory, RENDEZVOUS_* variables removed from its
 * environment (only flags configure it), and PR_SET_PDEATHSIG(SIGKILL).
 * Readiness is detected by polling the log for the README ready line and
 * the STUN line after it while checking that the child is still alive;
 * every wait is bounded. Unless the test configures STUN itself the child
 * gets `--stun-port 0`, so parallel servers never compete for 3478.
 */
#include "server.h"
#include "ws_client.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RDV_SERVERD_PATH
#define RDV_SERVERD_PATH ""
#endif

#define MAX_ARGS 64
#define MAX_SERVERS 16

struct rdv_ts_server {
    pid_t pid;          /* 0 when not running */
    int port;
    int stun_port;      /* from "stun on udp://ADDR:PORT"; 0: stun off */
    int op_port;        /* from "operator on http://ADDR:PORT"; 0: off */
    char dir[256];
    char db[320];
    char log[320];
    bool own_dir;
    char *args[MAX_ARGS]; /* extra args, owned */
    int nargs;
    char *env[MAX_ARGS]; /* extra NAME=VALUE for the child, owned */
    int nenv;
};

static rdv_ts_server *g_servers[MAX_SERVERS];
static bool g_atexit_done;
#define MAX_CLEANUP_HOOKS 8
static void (*g_cleanup_hooks[MAX_CLEANUP_HOOKS])(void);

extern char **environ;

long long rdv_ts_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void atexit_hook(void) { rdv_ts_cleanup_all(); }

static void ensure_atexit(void)
{
    if (!g_atexit_done) {
        if (atexit(atexit_hook) != 0)
            fprintf(stderr, "[support] atexit failed: children may outlive the test\n");
        g_atexit_done = true;
    }
}

void rdv_ts_on_cleanup(void (*fn)(void))
{
    ensure_atexit();
    for (int i = 0; i < MAX_CLEANUP_HOOKS; i++) {
        if (g_cleanup_hooks[i] == fn)
            return;
        if (!g_cleanup_hooks[i]) {
            g_cleanup_hooks[i] = fn;
            return;
        }
    }
    fprintf(stderr, "[support] too many cleanup hooks\n");
}

static void register_server(rdv_ts_server *s)
{
    ensure_atexit();
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (!g_servers[i]) {
            g_servers[i] = s;
            return;
        }
    }
    fprintf(stderr, "[support] too many servers registered\n");
}

static void unregister_server(rdv_ts_server *s)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (g_servers[i] == s)
            g_servers[i] = NULL;
}

static const char *serverd_path(void)
{
    const char *p = getenv("RDV_SERVERD");
    if (p && *p)
        return p;
    return RDV_SERVERD_PATH;
}

static int status_to_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

char *rdv_ts_server_read_log(const rdv_ts_server *s)
{
    FILE *f = fopen(s->log, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (cap - len < 2048) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

void rdv_ts_server_dump_log(const rdv_ts_server *s, const char *why)
{
    if (!s)
        return;
    char *log = rdv_ts_server_read_log(s);
    fprintf(stderr, "----- rendezvousd log (%s) pid %d port %d: %s -----\n",
            why ? why : "", (int)s->pid, s->port, s->log);
    if (log) {
        size_t len = strlen(log);
        /* Keep the dump readable: the last 16 KiB. */
        const char *start = len > 16384 ? log + len - 16384 : log;
        fputs(start, stderr);
        if (len && log[len - 1] != '\n')
            fputc('\n', stderr);
    }
    fprintf(stderr, "----- end of log -----\n");
    free(log);
}

void rdv_ts_dump_all_logs(const char *why)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (g_servers[i])
            rdv_ts_server_dump_log(g_servers[i], why);
}

bool rdv_ts_server_log_clean(const rdv_ts_server *s)
{
    char *log = rdv_ts_server_read_log(s);
    if (!log)
        return true;
    bool clean = !strstr(log, "AddressSanitizer") && !strstr(log, "LeakSanitizer") &&
                 !strstr(log, "ThreadSanitizer") &&
                 !strstr(log, "runtime error:") && !strstr(log, "UndefinedBehaviorSanitizer");
    free(log);
    return clean;
}

/* Parses "listening on ws://ADDR:PORT/v1" out of the log; 0 if absent. */
static int parse_ready_port(const char *log)
{
    const char *p = strstr(log, "listening on ws");
    if (!p)
        return 0;
    const char *scheme = strstr(p, "://");
    if (!scheme)
        return 0;
    const char *v1 = strstr(scheme, "/v1");
    if (!v1)
        return 0;
    const char *colon = NULL;
    for (const char *q = scheme + 3; q < v1; q++)
        if (*q == ':')
            colon = q;
    if (!colon)
        return 0;
    long port = strtol(colon + 1, NULL, 10);
    return port > 0 && port < 65536 ? (int)port : 0;
}

/* Parses the STUN line that follows the ready line: 1 with *port set
 * ("stun on udp://ADDR:PORT", the first address) or 0 ("stun off"), -1
 * while neither is in the log. */
static int parse_stun_line(const char *log, int *port)
{
    const char *p = strstr(log, "stun on udp://");
    if (p) {
        p += strlen("stun on udp://");
        const char *colon = NULL, *q = p;
        for (; *q && *q != ' ' && *q != ',' && *q != '"' && *q != '\n'; q++)
            if (*q == ':')
                colon = q;
        long v = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (v <= 0 || v > 65535)
            return -1;
        *port = (int)v;
        return 1;
    }
    if (strstr(log, "stun off")) {
        *port = 0;
        return 0;
    }
    return -1;
}

/* Parses "operator on http://ADDR:PORT" (logged before the ready line);
 * 0 when absent ("operator off"). */
static int parse_operator_port(const char *log)
{
    const char *p = strstr(log, "operator on http://");
    if (!p)
        return 0;
    p += strlen("operator on http://");
    const char *colon = NULL, *q = p;
    for (; *q && *q != ' ' && *q != '"' && *q != '\n'; q++)
        if (*q == ':')
            colon = q;
    long v = colon ? strtol(colon + 1, NULL, 10) : 0;
    return v > 0 && v < 65536 ? (int)v : 0;
}

/* True when the test configures the operator's listener itself (the
 * --operator-listen flag or RENDEZVOUS_OPERATOR_LISTEN). */
static bool operator_configured(const rdv_ts_server *s)
{
    for (int i = 0; i < s->nargs; i++)
        if (!strncmp(s->args[i], "--operator-listen", 17))
            return true;
    for (int i = 0; i < s->nenv; i++)
        if (!strncmp(s->env[i], "RENDEZVOUS_OPERATOR_LISTEN=", 27))
            return true;
    return false;
}

/* True when the test configures STUN itself (a --stun* flag, or the
 * RENDEZVOUS_STUN / RENDEZVOUS_STUN_PORT variable): then the helper does
 * not add its own --stun-port 0. */
static bool stun_configured(const rdv_ts_server *s)
{
    for (int i = 0; i < s->nargs; i++)
        if (!strcmp(s->args[i], "--stun") || !strncmp(s->args[i], "--stun=", 7) ||
            !strncmp(s->args[i], "--stun-port", 11))
            return true;
    for (int i = 0; i < s->nenv; i++)
        if (!strncmp(s->env[i], "RENDEZVOUS_STUN=", 16) ||
            !strncmp(s->env[i], "RENDEZVOUS_STUN_PORT=", 21))
            return true;
    return false;
}

static int spawn(rdv_ts_server *s)
{
    const char *path = serverd_path();
    if (!path || !*path) {
        fprintf(stderr, "[support] no rendezvousd path (RDV_SERVERD_PATH / RDV_SERVERD)\n");
        return -1;
    }
    char *argv[MAX_ARGS + 16];
    int n = 0;
    argv[n++] = (char *)path;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--db";
    argv[n++] = s->db;
    /* Servers run in parallel: never the fixed default STUN port. */
    if (!stun_configured(s)) {
        argv[n++] = "--stun-port";
        argv[n++] = "0";
    }
    /* ... nor the fixed default operator port */
    if (!operator_configured(s)) {
        argv[n++] = "--operator-listen";
        argv[n++] = "127.0.0.1:0";
    }
    for (int i = 0; i < s->nargs; i++)
        argv[n++] = s->args[i];
    argv[n] = NULL;

    /* Truncate the log so the ready line found is this run's. Keep the
     * previous run's log around for diagnosis. */
    char prev[340];
    snprintf(prev, sizeof prev, "%s.prev", s->log);
    if (access(s->log, F_OK) == 0) {
        char *old = rdv_ts_server_read_log(s);
        FILE *f = fopen(prev, "ab");
        if (f && old)
            fputs(old, f);
        if (f)
            fclose(f);
        free(old);
    }
    int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("[support] open log");
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("[support] fork");
        close(fd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        /* Only flags configure the server under test. */
        for (;;) {
            char **e = environ;
            char name[128] = "";
            for (; e && *e; e++) {
                if (strncmp(*e, "RENDEZVOUS_", 11) == 0) {
                    const char *eq = strchr(*e, '=');
                    size_t l = eq ? (size_t)(eq - *e) : strlen(*e);
                    if (l >= sizeof name)
                        l = sizeof name - 1;
                    memcpy(name, *e, l);
                    name[l] = '\0';
                    break;
                }
            }
            if (!name[0])
                break;
            unsetenv(name);
        }
        for (int i = 0; i < s->nenv; i++)
            putenv(s->env[i]);
        /* RDV_TS_NOFILE=N: the server's open-file limit (soft and hard) */
        const char *nofile = getenv("RDV_TS_NOFILE");
        if (nofile && atoi(nofile) > 0) {
            struct rlimit rl = {(rlim_t)atoi(nofile), (rlim_t)atoi(nofile)};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(126);
        }
        execv(path, argv);
        fprintf(stderr, "[support] exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(fd);
    s->pid = pid;
    s->port = 0;
    s->stun_port = 0;

    long long deadline = rdv_ts_mono_ms() + RDV_TS_READY_TIMEOUT_MS;
    while (rdv_ts_mono_ms() < deadline) {
        char *log = rdv_ts_server_read_log(s);
        int port = log ? parse_ready_port(log) : 0;
        int stun_port = 0;
        /* the STUN line ("stun on ..." / "stun off") follows the ready line */
        bool stun_seen = port && parse_stun_line(log, &stun_port) >= 0;
        int op_port = port && log ? parse_operator_port(log) : 0;
        free(log);
        if (port && stun_seen) {
            s->port = port;
            s->stun_port = stun_port;
            s->op_port = op_port;
            return 0;
        }
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            s->pid = 0;
            fprintf(stderr, "[support] rendezvousd exited before ready (status %d)\n",
                    status_to_code(st));
            rdv_ts_server_dump_log(s, "exited before ready");
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "[support] rendezvousd not ready within %d ms\n", RDV_TS_READY_TIMEOUT_MS);
    rdv_ts_server_dump_log(s, "not ready");
    rdv_ts_server_kill(s);
    return -1;
}

static rdv_ts_server *start_common(const char *db_path, const char *const *extra,
                                   const char *const *env)
{
    rdv_ts_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(s->dir, sizeof s->dir, "%s/rdv-itest-XXXXXX", tmp);
    if (!mkdtemp(s->dir)) {
        perror("[support] mkdtemp");
        free(s);
        return NULL;
    }
    s->own_dir = true;
    if (db_path)
        snprintf(s->db, sizeof s->db, "%s", db_path);
    else
        snprintf(s->db, sizeof s->db, "%s/rendezvous.db", s->dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    for (int i = 0; extra && extra[i] && s->nargs < MAX_ARGS; i++)
        s->args[s->nargs++] = strdup(extra[i]);
    for (int i = 0; env && env[i] && s->nenv < MAX_ARGS; i++)
        s->env[s->nenv++] = strdup(env[i]);
    register_server(s);
    if (spawn(s) != 0) {
        rdv_ts_server_free(s);
        return NULL;
    }
    return s;
}

rdv_ts_server *rdv_ts_server_start(const char *const *extra_args)
{
    return start_common(NULL, extra_args, NULL);
}

rdv_ts_server *rdv_ts_server_start_env(const char *const *env, const char *const *extra_args)
{
    return start_common(NULL, extra_args, env);
}

rdv_ts_server *rdv_ts_server_start_db(const char *db_path, const char *const *extra_args)
{
    return start_common(db_path, extra_args, NULL);
}

int rdv_ts_server_restart(rdv_ts_server *s)
{
    if (!s)
        return -1;
    if (s->pid)
        rdv_ts_server_stop(s);
    return spawn(s);
}

int rdv_ts_server_signal(rdv_ts_server *s, int sig)
{
    if (!s || !s->pid)
        return -1;
    return kill(s->pid, sig);
}

int rdv_ts_server_wait_exit(rdv_ts_server *s, int timeout_ms)
{
    if (!s || !s->pid)
        return -1;
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return status_to_code(st);
        }
        if (r < 0 && errno != EINTR) {
            s->pid = 0;
            return -1;
        }
        if (rdv_ts_mono_ms() >= deadline)
            return -2;
        sleep_ms(5);
    }
}

bool rdv_ts_server_running(rdv_ts_server *s)
{
    if (!s || !s->pid)
        return false;
    return rdv_ts_server_wait_exit(s, 0) == -2;
}

int rdv_ts_server_stop(rdv_ts_server *s)
{
    if (!s || !s->pid)
        return -1;
    kill(s->pid, SIGTERM);
    int code = rdv_ts_server_wait_exit(s, RDV_TS_STOP_TIMEOUT_MS);
    if (code == -2) {
        fprintf(stderr, "[support] rendezvousd did not exit %d ms after SIGTERM; killing\n",
                RDV_TS_STOP_TIMEOUT_MS);
        rdv_ts_server_dump_log(s, "no exit after SIGTERM");
        rdv_ts_server_kill(s);
        return -3; /* did not stop on SIGTERM */
    }
    return code;
}

int rdv_ts_server_kill(rdv_ts_server *s)
{
    if (!s || !s->pid)
        return -1;
    kill(s->pid, SIGKILL);
    int st;
    pid_t r;
    do {
        r = waitpid(s->pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    s->pid = 0;
    return r > 0 ? status_to_code(st) : -1;
}

int rdv_ts_server_port(const rdv_ts_server *s) { return s ? s->port : 0; }
int rdv_ts_server_stun_port(const rdv_ts_server *s) { return s ? s->stun_port : 0; }
int rdv_ts_server_operator_port(const rdv_ts_server *s) { return s ? s->op_port : 0; }
pid_t rdv_ts_server_pid(const rdv_ts_server *s) { return s ? s->pid : 0; }
const char *rdv_ts_server_db_path(const rdv_ts_server *s) { return s->db; }
const char *rdv_ts_server_log_path(const rdv_ts_server *s) { return s->log; }
const char *rdv_ts_server_dir(const rdv_ts_server *s) { return s->dir; }

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void rdv_ts_server_free(rdv_ts_server *s)
{
    if (!s)
        return;
    if (s->pid)
        rdv_ts_server_kill(s);
    unregister_server(s);
    const char *keep = getenv("RDV_KEEP_TMP");
    if (s->own_dir && !(keep && *keep == '1'))
        nftw(s->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < s->nargs; i++)
        free(s->args[i]);
    for (int i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s);
}

void rdv_ts_cleanup_all(void)
{
    rdv_ws_close_all();
    for (int i = 0; i < MAX_SERVERS; i++)
        if (g_servers[i])
            rdv_ts_server_free(g_servers[i]);
    for (int i = 0; i < MAX_CLEANUP_HOOKS; i++)
        if (g_cleanup_hooks[i])
            g_cleanup_hooks[i]();
}

int rdv_ts_teardown_checked(void)
{
    int bad = 0;
    rdv_ws_close_all();
    for (int i = 0; i < MAX_SERVERS; i++) {
        rdv_ts_server *s = g_servers[i];
        if (!s)
            continue;
        if (s->pid) {
            int code = rdv_ts_server_stop(s);
            if (code != 0) {
                fprintf(stderr, "[support] rendezvousd exit status %d after SIGTERM\n", code);
                rdv_ts_server_dump_log(s, "bad exit status");
                bad++;
                continue;
            }
        }
        if (!rdv_ts_server_log_clean(s)) {
            rdv_ts_server_dump_log(s, "sanitizer report");
            bad++;
        }
    }
    rdv_ts_cleanup_all();
    return bad;
}

int rdv_ts_run_serverd(const char *const *args, char **out, int timeout_ms)
{
    if (out)
        *out = NULL;
    const char *path = serverd_path();
    char tmpl[] = "/tmp/rdv-itest-run-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return -1;
    char *argv[MAX_ARGS + 2];
    int n = 0;
    argv[n++] = (char *)path;
    for (int i = 0; args && args[i] && n < MAX_ARGS; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        unlink(tmpl);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execv(path, argv);
        _exit(127);
    }
    close(fd);
    rdv_ts_server tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.pid = pid;
    int code = rdv_ts_server_wait_exit(&tmp, timeout_ms);
    if (code == -2)
    {
        rdv_ts_server_kill(&tmp);
        code = -2; /* timed out */
    }
    snprintf(tmp.log, sizeof tmp.log, "%s", tmpl);
    if (out)
        *out = rdv_ts_server_read_log(&tmp);
    unlink(tmpl);
    return code;
}
