/* redis.c - run a real redis-server as a child process for tests.
 *
 * See redis.h. The child runs in the foreground (--daemonize no) with its
 * stdout+stderr appended to `<dir>/redis.log`, PR_SET_PDEATHSIG(SIGKILL),
 * and every setting on its command line (no config file is read).
 * Readiness is a PING answered on the Unix socket, polled while checking
 * that the child is still alive; every wait is bounded.
 */
#include "redis.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REDIS 4

struct rdv_ts_redis {
    pid_t pid; /* 0 when not running */
    int port;  /* 0: no TCP */
    bool persist;
    char bin[256];
    char dir[96];
    char sock[128];
    char log[128];
    char unix_url[160];
    char tcp_url[64];
};

static rdv_ts_redis *g_redis[MAX_REDIS];
static bool g_hooked;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void register_redis(rdv_ts_redis *r)
{
    if (!g_hooked) {
        /* rdv_ts_cleanup_all() (teardowns, atexit) frees us after the
         * rendezvousd servers, which may still talk to us. */
        rdv_ts_on_cleanup(rdv_ts_redis_cleanup_all);
        g_hooked = true;
    }
    for (int i = 0; i < MAX_REDIS; i++) {
        if (!g_redis[i]) {
            g_redis[i] = r;
            return;
        }
    }
    fprintf(stderr, "[support] too many redis-servers registered\n");
}

static void unregister_redis(rdv_ts_redis *r)
{
    for (int i = 0; i < MAX_REDIS; i++)
        if (g_redis[i] == r)
            g_redis[i] = NULL;
}

static int status_to_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Finds the redis-server binary; false with the reason in why. */
static bool find_binary(char *out, size_t outlen, char *why, size_t whylen)
{
    const char *env = getenv("RDV_REDIS_SERVER");
    if (env && *env) {
        if (access(env, X_OK) != 0) {
            snprintf(why, whylen, "RDV_REDIS_SERVER=%s is not executable: %s", env,
                     strerror(errno));
            return false;
        }
        snprintf(out, outlen, "%s", env);
        return true;
    }
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:/usr/bin:/usr/sbin", path && *path ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d)
            continue;
        char cand[512];
        int n = snprintf(cand, sizeof cand, "%s/redis-server", d);
        if (n < 0 || (size_t)n >= sizeof cand)
            continue;
        if (access(cand, X_OK) == 0 && (size_t)n < outlen) {
            snprintf(out, outlen, "%s", cand);
            return true;
        }
    }
    snprintf(why, whylen,
             "no redis-server in PATH, /usr/bin or /usr/sbin (Debian package redis-server: "
             "run scripts/bootstrap --test)");
    return false;
}

/* A TCP port of 127.0.0.1 that is free right now (0 on error). */
static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

void rdv_ts_redis_dump_log(const rdv_ts_redis *r, const char *why)
{
    if (!r)
        return;
    char *log = read_file(r->log);
    fprintf(stderr, "----- redis-server log (%s) pid %d: %s -----\n", why ? why : "",
            (int)r->pid, r->log);
    if (log) {
        size_t len = strlen(log);
        const char *start = len > 8192 ? log + len - 8192 : log;
        fputs(start, stderr);
        if (len && log[len - 1] != '\n')
            fputc('\n', stderr);
    }
    fprintf(stderr, "----- end of redis-server log -----\n");
    free(log);
}

/* The last line of the log that looks like the reason of an exit. */
static void log_reason(const rdv_ts_redis *r, off_t from, char *why, size_t whylen)
{
    char *log = read_file(r->log);
    if (!log) {
        snprintf(why, whylen, "exited (no log)");
        return;
    }
    const char *best = NULL;
    char *first = (size_t)from <= strlen(log) ? log + from : log;
    for (char *line = first; line && *line;) {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        if (strstr(line, "# ") || strstr(line, "FATAL") || strstr(line, "rror") ||
            strstr(line, "Bad directive") || strstr(line, "Could not"))
            best = line;
        line = eol ? eol + 1 : NULL;
    }
    snprintf(why, whylen, "exited: %.300s", best ? best : "(see its log)");
    free(log);
}

static int unix_connect(const char *path, int timeout_ms)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) {
        close(fd);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A growable string. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Parses one RESP reply at in[*pos..len) into out. Returns 1 when done
 * (*pos advanced), 0 when more bytes are needed, -1 when malformed. */
static int resp_parse(const char *in, size_t len, size_t *pos, sbuf *out, int depth)
{
    if (depth > 8)
        return -1;
    size_t p = *pos;
    if (p >= len)
        return 0;
    const char *crlf = NULL;
    for (size_t i = p; i + 1 < len; i++)
        if (in[i] == '\r' && in[i + 1] == '\n') {
            crlf = in + i;
            break;
        }
    if (!crlf)
        return 0;
    char kind = in[p];
    size_t line_end = (size_t)(crlf - in);
    switch (kind) {
    case '+':
    case ':':
        sb_add(out, in + p + 1, line_end - p - 1);
        *pos = line_end + 2;
        return 1;
    case '-':
        sb_add(out, in + p, line_end - p);
        *pos = line_end + 2;
        return 1;
    case '$': {
        long n = strtol(in + p + 1, NULL, 10);
        if (n < 0) {
            sb_add(out, "(nil)", 5);
            *pos = line_end + 2;
            return 1;
        }
        size_t start = line_end + 2;
        if (start + (size_t)n + 2 > len)
            return 0;
        sb_add(out, in + start, (size_t)n);
        *pos = start + (size_t)n + 2;
        return 1;
    }
    case '*': {
        long n = strtol(in + p + 1, NULL, 10);
        size_t q = line_end + 2;
        if (n < 0) {
            sb_add(out, "(nil)", 5);
            *pos = q;
            return 1;
        }
        for (long i = 0; i < n; i++) {
            if (i > 0)
                sb_add(out, "\n", 1);
            int rc = resp_parse(in, len, &q, out, depth + 1);
            if (rc <= 0)
                return rc;
        }
        *pos = q;
        return 1;
    }
    default:
        return -1;
    }
}

int rdv_ts_redis_cmd(const rdv_ts_redis *r, const char *const *argv, char **reply,
                     int timeout_ms)
{
    if (reply)
        *reply = NULL;
    if (!r || !argv || !argv[0])
        return -1;
    sbuf req = {0};
    int argc = 0;
    while (argv[argc])
        argc++;
    char hdr[32];
    int hn = snprintf(hdr, sizeof hdr, "*%d\r\n", argc);
    sb_add(&req, hdr, (size_t)hn);
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        hn = snprintf(hdr, sizeof hdr, "$%zu\r\n", l);
        sb_add(&req, hdr, (size_t)hn);
        sb_add(&req, argv[i], l);
        sb_add(&req, "\r\n", 2);
    }
    if (req.oom) {
        free(req.p);
        return -1;
    }
    int fd = unix_connect(r->sock, timeout_ms);
    if (fd < 0) {
        free(req.p);
        return -1;
    }
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            free(req.p);
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    free(req.p);

    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    sbuf in = {0};
    int rc = 0;
    sbuf out = {0};
    while (rc == 0) {
        if (rdv_ts_mono_ms() > deadline)
            break;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sb_add(&in, buf, (size_t)n);
        if (in.oom)
            break;
        size_t pos = 0;
        out.len = 0;
        if (out.p)
            out.p[0] = '\0';
        rc = resp_parse(in.p, in.len, &pos, &out, 0);
    }
    close(fd);
    free(in.p);
    if (rc != 1 || out.oom) {
        free(out.p);
        return -1;
    }
    if (!out.p)
        sb_add(&out, "", 0);
    if (out.oom) {
        free(out.p);
        return -1;
    }
    if (reply)
        *reply = out.p;
    else
        free(out.p);
    return 0;
}

bool rdv_ts_redis_ping(const rdv_ts_redis *r, int timeout_ms)
{
    char *reply = NULL;
    if (rdv_ts_redis_cmd(r, (const char *const[]){"PING", NULL}, &reply, timeout_ms) != 0)
        return false;
    bool ok = strcmp(reply, "PONG") == 0;
    free(reply);
    return ok;
}

static int wait_exit(rdv_ts_redis *r, int timeout_ms)
{
    if (!r || !r->pid)
        return -1;
    long long deadline = rdv_ts_mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t w = waitpid(r->pid, &st, WNOHANG);
        if (w == r->pid) {
            r->pid = 0;
            return status_to_code(st);
        }
        if (w < 0 && errno != EINTR) {
            r->pid = 0;
            return -1;
        }
        if (rdv_ts_mono_ms() >= deadline)
            return -2;
        sleep_ms(5);
    }
}

bool rdv_ts_redis_running(rdv_ts_redis *r)
{
    if (!r || !r->pid)
        return false;
    return wait_exit(r, 0) == -2;
}

int rdv_ts_redis_kill(rdv_ts_redis *r)
{
    if (!r || !r->pid)
        return -1;
    if (kill(r->pid, SIGKILL) != 0 && errno != ESRCH)
        perror("[support] kill redis-server");
    int st;
    pid_t w;
    do {
        w = waitpid(r->pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    r->pid = 0;
    return w > 0 ? status_to_code(st) : -1;
}

int rdv_ts_redis_stop(rdv_ts_redis *r)
{
    if (!r || !r->pid)
        return -1;
    if (kill(r->pid, SIGTERM) != 0 && errno != ESRCH)
        perror("[support] kill redis-server");
    int code = wait_exit(r, RDV_TS_REDIS_STOP_TIMEOUT_MS);
    if (code == -2) {
        fprintf(stderr, "[support] redis-server did not exit %d ms after SIGTERM; killing\n",
                RDV_TS_REDIS_STOP_TIMEOUT_MS);
        rdv_ts_redis_dump_log(r, "no exit after SIGTERM");
        rdv_ts_redis_kill(r);
        return -3;
    }
    return code;
}

/* Starts the child and waits until PING is answered. 0, or -1 with why
 * (the bare reason) and *addr_in_use set when the TCP port was taken. */
static int spawn(rdv_ts_redis *r, char *why, size_t whylen, bool *addr_in_use)
{
    *addr_in_use = false;
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *argv[40];
    int n = 0;
    argv[n++] = r->bin;
    argv[n++] = "--port";
    argv[n++] = port;
    if (r->port) {
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
    }
    argv[n++] = "--unixsocket";
    argv[n++] = r->sock;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
    argv[n++] = "--dir";
    argv[n++] = r->dir;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--logfile";
    argv[n++] = "";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = r->persist ? "yes" : "no";
    if (r->persist) {
        argv[n++] = "--appendfsync";
        argv[n++] = "always";
    }
    argv[n] = NULL;

    int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, whylen, "open %s: %s", r->log, strerror(errno));
        return -1;
    }
    /* Where this run's lines start, to find its exit reason. */
    off_t log_start = lseek(fd, 0, SEEK_END);
    if (log_start < 0)
        log_start = 0;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
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
        execv(r->bin, (char *const *)argv);
        fprintf(stderr, "[support] exec %s: %s\n", r->bin, strerror(errno));
        _exit(127);
    }
    close(fd);
    r->pid = pid;

    long long deadline = rdv_ts_mono_ms() + RDV_TS_REDIS_READY_TIMEOUT_MS;
    while (rdv_ts_mono_ms() < deadline) {
        if (rdv_ts_redis_ping(r, 500))
            return 0;
        int code = wait_exit(r, 0);
        if (code != -2) {
            log_reason(r, log_start, why, whylen);
            char *log = read_file(r->log);
            if (log && (size_t)log_start <= strlen(log) &&
                strstr(log + log_start, "Address already in use"))
                *addr_in_use = true;
            free(log);
            size_t l = strlen(why);
            snprintf(why + l, whylen - l, " (exit status %d)", code);
            return -1;
        }
        sleep_ms(20);
    }
    snprintf(why, whylen, "no answer to PING on %s within %d ms", r->sock,
             RDV_TS_REDIS_READY_TIMEOUT_MS);
    rdv_ts_redis_kill(r);
    return -1;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

rdv_ts_redis *rdv_ts_redis_start(const rdv_ts_redis_opts *opts, char *why, size_t whylen)
{
    char reason[512] = "";
    rdv_ts_redis *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(reason, sizeof reason, "out of memory");
        goto fail;
    }
    r->persist = opts && opts->persist;
    if (!find_binary(r->bin, sizeof r->bin, reason, sizeof reason))
        goto fail;
    /* A Unix socket path has at most 107 bytes: a long TMPDIR falls back
     * to /tmp. */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 48)
        tmp = "/tmp";
    snprintf(r->dir, sizeof r->dir, "%s/rdv-redis-XXXXXX", tmp);
    if (!mkdtemp(r->dir)) {
        snprintf(reason, sizeof reason, "mkdtemp %s: %s", r->dir, strerror(errno));
        r->dir[0] = '\0';
        goto fail;
    }
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    snprintf(r->log, sizeof r->log, "%s/redis.log", r->dir);
    snprintf(r->unix_url, sizeof r->unix_url, "unix://%s", r->sock);
    register_redis(r);
    for (int attempt = 0;; attempt++) {
        if (opts && opts->tcp) {
            r->port = free_tcp_port();
            if (!r->port) {
                snprintf(reason, sizeof reason, "no free TCP port on 127.0.0.1");
                goto fail;
            }
            snprintf(r->tcp_url, sizeof r->tcp_url, "redis://127.0.0.1:%d/0", r->port);
        }
        bool in_use = false;
        if (spawn(r, reason, sizeof reason, &in_use) == 0)
            return r;
        /* Someone took the free port between our probe and redis' bind. */
        if (!(in_use && r->port && attempt < 3))
            break;
    }
    rdv_ts_redis_dump_log(r, "cannot start");
fail:
    fprintf(stderr, "[support] cannot start redis-server: %s\n", reason);
    if (why)
        snprintf(why, whylen, "cannot start redis-server: %s", reason);
    rdv_ts_redis_free(r);
    return NULL;
}

int rdv_ts_redis_restart(rdv_ts_redis *r)
{
    if (!r)
        return -1;
    if (r->pid)
        rdv_ts_redis_stop(r);
    char reason[512] = "";
    bool in_use = false;
    if (spawn(r, reason, sizeof reason, &in_use) != 0) {
        fprintf(stderr, "[support] cannot restart redis-server: %s\n", reason);
        rdv_ts_redis_dump_log(r, "cannot restart");
        return -1;
    }
    return 0;
}

const char *rdv_ts_redis_unix_url(const rdv_ts_redis *r) { return r ? r->unix_url : NULL; }
const char *rdv_ts_redis_tcp_url(const rdv_ts_redis *r)
{
    return r && r->port ? r->tcp_url : NULL;
}
const char *rdv_ts_redis_socket_path(const rdv_ts_redis *r) { return r ? r->sock : NULL; }
int rdv_ts_redis_port(const rdv_ts_redis *r) { return r ? r->port : 0; }
pid_t rdv_ts_redis_pid(const rdv_ts_redis *r) { return r ? r->pid : 0; }
const char *rdv_ts_redis_dir(const rdv_ts_redis *r) { return r ? r->dir : NULL; }
const char *rdv_ts_redis_log_path(const rdv_ts_redis *r) { return r ? r->log : NULL; }

void rdv_ts_redis_free(rdv_ts_redis *r)
{
    if (!r)
        return;
    if (r->pid)
        rdv_ts_redis_kill(r);
    unregister_redis(r);
    const char *keep = getenv("RDV_KEEP_TMP");
    if (r->dir[0] && !(keep && *keep == '1'))
        nftw(r->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(r);
}

void rdv_ts_redis_cleanup_all(void)
{
    for (int i = 0; i < MAX_REDIS; i++)
        if (g_redis[i])
            rdv_ts_redis_free(g_redis[i]);
}
