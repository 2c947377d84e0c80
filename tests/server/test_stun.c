/* test_stun.c - server_stun: rendezvousd's own STUN responder (--stun,
 * rendezvous/stun_responder.h) wired into the daemon (issue 7, "Server: STUN
 * responder"). The responder alone and its interop with Debian's clients:
 * tests/server/stun.cmake (server_stun_responder, server_stun_interop_*).
 *
 * A Binding request to the port of the "stun on udp://ADDR:PORT" line is
 * answered with XOR-MAPPED-ADDRESS equal to the client's own address, over
 * IPv4 and (with --listen ::1) IPv6, with both event loops; /metrics and
 * /status report it; --stun off opens no UDP socket; malformed datagrams
 * are dropped (counted) while nodes still authenticate and route; an
 * explicitly configured STUN port that is taken refuses to start; the
 * teardown checks a clean exit 0 without sanitizer reports.
 */
#include "itest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "schema/stun.h" /* schema/stun.h: the codec */

#define STUN_TRIES 4
#define STUN_WAIT_MS 1000

/* A UDP socket bound to the loopback address of `family` (port 0); its
 * address in *self. -1 when the family is unavailable. */
static int udp_socket(int family, struct sockaddr_storage *self, socklen_t *selflen)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(self, 0, sizeof *self);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)self;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *selflen = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)self;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *selflen = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)self, *selflen) != 0 ||
        getsockname(fd, (struct sockaddr *)self, selflen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The server's STUN address for a client of `family` on loopback. */
static socklen_t server_addr(int family, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)port);
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons((uint16_t)port);
    return sizeof *a;
}

/* Sends req[0..len) from fd to the server (retransmitting, bounded) until
 * a datagram with the same transaction ID comes back; parses it into *m
 * (borrowing buf). Returns 0 or fails the test. */
static void transact(int fd, int family, int port, const uint8_t *req, size_t len, uint8_t *buf,
                     size_t cap, rdv_stun_msg *m)
{
    struct sockaddr_storage to;
    socklen_t tolen = server_addr(family, port, &to);
    for (int t = 0; t < STUN_TRIES; t++) {
        if (sendto(fd, req, len, 0, (struct sockaddr *)&to, tolen) != (ssize_t)len)
            fail_msg("sendto: %s", strerror(errno));
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (poll(&p, 1, STUN_WAIT_MS) == 1) {
            ssize_t n = recv(fd, buf, cap, 0);
            if (n <= 0)
                break;
            if (rdv_stun_parse(buf, (size_t)n, m) == (int)n &&
                !memcmp(m->tid, req + 8, RDV_STUN_TID_BYTES))
                return;
        }
    }
    fail_msg("no STUN answer from port %d after %d tries", port, STUN_TRIES);
}

/* One Binding request from loopback of `family`: the answer is a success
 * whose XOR-MAPPED-ADDRESS is the client's own address, with SOFTWARE and
 * a verified FINGERPRINT. */
static void binding_ok(int family, int port)
{
    struct sockaddr_storage self;
    socklen_t selflen;
    int fd = udp_socket(family, &self, &selflen);
    if (fd < 0)
        fail_msg("cannot open a UDP socket");
    uint8_t tid[RDV_STUN_TID_BYTES];
    randombytes_buf(tid, sizeof tid);
    uint8_t req[RDV_STUN_MAX_UDP_MESSAGE], buf[RDV_STUN_MAX_UDP_MESSAGE];
    rdv_stun_request_opts o = {.fingerprint = true};
    int len = rdv_stun_build_binding_request(req, sizeof req, tid, &o);
    assert_true(len > 0);
    rdv_stun_msg m;
    transact(fd, family, port, req, (size_t)len, buf, sizeof buf, &m);
    close(fd);
    assert_int_equal(m.cls, RDV_STUN_CLASS_SUCCESS);
    assert_int_equal(m.method, RDV_STUN_METHOD_BINDING);
    assert_true(m.has_xor_mapped);
    assert_true(m.has_fingerprint);
    assert_non_null(m.software);
    assert_true(m.software_len > 11 && !memcmp(m.software, "rendezvous/", 11));
    rdv_stun_addr want;
    assert_int_equal(rdv_stun_addr_from_sockaddr((struct sockaddr *)&self, selflen, &want), 0);
    if (!rdv_stun_addr_equal(&m.xor_mapped, &want))
        fail_msg("XOR-MAPPED-ADDRESS (port %u) is not the client's address (port %u)",
                 (unsigned)m.xor_mapped.port, (unsigned)want.port);
}

/* Sum of the /metrics samples whose line starts with `prefix`; -1 when
 * there is none. */
static double metric(rdv_ts_server *s, const char *prefix)
{
    char *body = NULL;
    int st = rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &body, T_MS);
    if (st != 200 || !body) {
        free(body);
        fail_msg("/metrics: HTTP %d", st);
    }
    double sum = -1;
    size_t pl = strlen(prefix);
    for (char *line = body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(line, prefix, pl) && line[0] != '#') {
            char *sp = strrchr(line, ' ');
            if (sp)
                sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(body);
    return sum;
}

/* The server's UDP sockets: how many of its fds are in /proc/PID/net/udp
 * or udp6 (by inode). */
static int udp_sockets_of(pid_t pid)
{
    char path[64], line[512];
    unsigned long inodes[256];
    size_t n_inodes = 0;
    const char *tables[] = {"udp", "udp6"};
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, tables[t]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f) && n_inodes < 256) {
            unsigned long inode;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &inode) == 1)
                inodes[n_inodes++] = inode;
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        fail_msg("cannot read %s", path);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[320], target[64];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t l = readlink(link, target, sizeof target - 1);
        if (l <= 0)
            continue;
        target[l] = '\0';
        unsigned long inode;
        if (sscanf(target, "socket:[%lu]", &inode) != 1)
            continue;
        for (size_t i = 0; i < n_inodes; i++)
            if (inodes[i] == inode)
                count++;
    }
    closedir(d);
    return count;
}

static bool have_ipv6_loopback(void)
{
    struct sockaddr_storage ss;
    socklen_t l;
    int fd = udp_socket(AF_INET6, &ss, &l);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Binding over IPv4 with the given event loop; /metrics and /status. */
static void binding_ipv4(const char *loop)
{
    rdv_ts_server *s = START("--event-loop", loop);
    int port = rdv_ts_server_stun_port(s);
    if (port <= 0)
        fail_msg("no \"stun on udp://\" line with a port");
    assert_true(udp_sockets_of(rdv_ts_server_pid(s)) >= 1);
    double req0 = metric(s, "rendezvous_stun_requests_total");
    double ok0 = metric(s, "rendezvous_stun_responses_total{class=\"success\"}");
    assert_true(req0 >= 0 && ok0 >= 0);
    binding_ok(AF_INET, port);
    binding_ok(AF_INET, port);
    assert_true(metric(s, "rendezvous_stun_requests_total") >= req0 + 2);
    assert_true(metric(s, "rendezvous_stun_responses_total{class=\"success\"}") >= ok0 + 2);

    char *body = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/status", &body, T_MS), 200);
    json_t *st = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    json_t *stun = json_object_get(st, "stun");
    assert_non_null(stun);
    assert_true(json_is_true(json_object_get(stun, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(stun, "port")), port);
    json_decref(st);
}

static void test_stun_binding_ipv4_uv(void **state)
{
    (void)state;
    binding_ipv4("uv");
}

static void test_stun_binding_ipv4_poll(void **state)
{
    (void)state;
    binding_ipv4("poll");
}

/* --listen ::1: the STUN socket is IPv6 and maps the client's IPv6
 * address. */
static void test_stun_binding_ipv6(void **state)
{
    (void)state;
    if (!have_ipv6_loopback()) {
        fprintf(stderr, "[ SKIP     ] no IPv6 loopback\n");
        skip();
    }
    rdv_ts_server *s = START("--listen", "::1");
    int port = rdv_ts_server_stun_port(s);
    if (port <= 0)
        fail_msg("no \"stun on udp://[::1]:PORT\" line");
    char *log = rdv_ts_server_read_log(s);
    bool v6 = log && strstr(log, "stun on udp://[::1]:");
    free(log);
    assert_true(v6);
    binding_ok(AF_INET6, port);
}

/* --stun off: no STUN line with a port, no UDP socket at all. */
static void test_stun_off(void **state)
{
    (void)state;
    rdv_ts_server *s = START("--stun", "off");
    assert_int_equal(rdv_ts_server_stun_port(s), 0);
    assert_int_equal(udp_sockets_of(rdv_ts_server_pid(s)), 0);
    char *body = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/status", &body, T_MS), 200);
    json_t *st = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    assert_true(json_is_false(json_object_get(json_object_get(st, "stun"), "enabled")));
    json_decref(st);
    /* the WebSocket side is unaffected */
    rdv_tn alice;
    rdv_ws *a = itest_join(s, &alice, "alice");
    itest_alive(a, alice.id);
}

/* Sends one datagram to the STUN port without waiting for anything. */
static void send_raw(int fd, int port, const void *data, size_t len)
{
    struct sockaddr_storage to;
    socklen_t tolen = server_addr(AF_INET, port, &to);
    if (sendto(fd, data, len, 0, (struct sockaddr *)&to, tolen) != (ssize_t)len)
        fail_msg("sendto (%zu bytes): %s", len, strerror(errno));
}

/* Garbage, truncated and oversized datagrams, a response and an
 * indication to the STUN port: dropped and counted; an unknown
 * comprehension-required attribute gets 420; meanwhile two nodes still
 * authenticate and route, and Binding still works. */
static void test_stun_malformed_ws_unaffected(void **state)
{
    (void)state;
    rdv_ts_server *s = START_DEFAULT();
    int port = rdv_ts_server_stun_port(s);
    assert_true(port > 0);
    rdv_tn alice, bob;
    rdv_ws *a = itest_join(s, &alice, "alice");
    double drop0 = metric(s, "rendezvous_stun_dropped_total");
    double err0 = metric(s, "rendezvous_stun_responses_total{class=\"error\"}");
    assert_true(drop0 >= 0 && err0 >= 0);

    struct sockaddr_storage self;
    socklen_t selflen;
    int fd = udp_socket(AF_INET, &self, &selflen);
    if (fd < 0)
        fail_msg("cannot open a UDP socket");
    uint8_t junk[4000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    uint8_t req[RDV_STUN_MAX_UDP_MESSAGE];
    uint8_t tid[RDV_STUN_TID_BYTES];
    randombytes_buf(tid, sizeof tid);
    int rl = rdv_stun_build_binding_request(req, sizeof req, tid, NULL);
    assert_true(rl > 0);
    int sent = 0;
    send_raw(fd, port, "", 0), sent++;                           /* empty */
    send_raw(fd, port, junk, 7), sent++;                         /* garbage */
    send_raw(fd, port, junk, sizeof junk), sent++;               /* > receive buffer */
    send_raw(fd, port, req, RDV_STUN_HEADER_BYTES - 1), sent++;  /* truncated header */
    uint8_t bad[RDV_STUN_MAX_UDP_MESSAGE];
    memcpy(bad, req, (size_t)rl);
    bad[3] = 0x40; /* length beyond the datagram */
    send_raw(fd, port, bad, (size_t)rl), sent++;
    memcpy(bad, req, (size_t)rl);
    bad[0] = 0x01; /* a Binding success response nobody asked for */
    bad[1] = 0x01;
    send_raw(fd, port, bad, (size_t)rl), sent++;
    memcpy(bad, req, (size_t)rl);
    bad[1] = 0x11; /* a Binding indication: no answer */
    send_raw(fd, port, bad, (size_t)rl), sent++;
    memcpy(bad, req, (size_t)rl);
    memcpy(bad + rl, "JUNK", 4); /* bytes after the message */
    send_raw(fd, port, bad, (size_t)rl + 4), sent++;

    /* the WebSocket side still authenticates and routes */
    rdv_ws *b = itest_join(s, &bob, "bob");
    size_t len;
    char *offer = rdv_tn_offer(&alice, bob.id, NULL, NULL, &len);
    assert_non_null(offer);
    char *copy = strndup(offer, len);
    itest_send_free(a, offer);
    int rc = rdv_expect_bytes(b, copy, len, T_MS);
    free(copy);
    assert_int_equal(rc, 0);
    itest_alive(a, bob.id);

    /* 420 for an unknown comprehension-required attribute (PADDING) */
    rdv_stun_writer w;
    randombytes_buf(tid, sizeof tid);
    rdv_stun_begin(&w, req, sizeof req, RDV_STUN_METHOD_BINDING, RDV_STUN_MAGIC_COOKIE, tid);
    rdv_stun_put(&w, RDV_STUN_ATTR_PADDING, "\0\0\0\0", 4);
    rl = rdv_stun_finish(&w);
    assert_true(rl > 0);
    uint8_t buf[RDV_STUN_MAX_UDP_MESSAGE];
    rdv_stun_msg m;
    transact(fd, AF_INET, port, req, (size_t)rl, buf, sizeof buf, &m);
    close(fd);
    assert_int_equal(m.cls, RDV_STUN_CLASS_ERROR);
    assert_int_equal(m.error_code, 420);

    binding_ok(AF_INET, port);
    double drop1 = metric(s, "rendezvous_stun_dropped_total");
    double err1 = metric(s, "rendezvous_stun_responses_total{class=\"error\"}");
    if (drop1 < drop0 + sent || err1 < err0 + 1)
        fail_msg("dropped %g -> %g (sent %d bad), error responses %g -> %g", drop0, drop1, sent,
                 err0, err1);
}

/* An explicitly configured STUN port that is taken: exit 1, not a server
 * without STUN. */
static void test_stun_port_taken(void **state)
{
    (void)state;
    struct sockaddr_storage self;
    socklen_t selflen;
    int fd = udp_socket(AF_INET, &self, &selflen);
    if (fd < 0)
        fail_msg("cannot open a UDP socket");
    char port[16], db[64];
    snprintf(port, sizeof port, "%u", (unsigned)ntohs(((struct sockaddr_in *)&self)->sin_port));
    snprintf(db, sizeof db, "/tmp/rdv-stun-taken-%d.db", (int)getpid());
    char *out = NULL;
    int code = rdv_ts_run_serverd((const char *const[]){"--listen", "127.0.0.1", "--port", "0",
                                                        "--stun-port", port, "--db", db, NULL},
                                  &out, T_MS);
    close(fd);
    unlink(db);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db);
    unlink(wal);
    bool said = out && strstr(out, "stun: cannot open UDP port");
    if (code != 1 || !said) {
        fprintf(stderr, "%s\n", out ? out : "");
        free(out);
        fail_msg("--stun-port %s (taken): exit status %d, expected 1 with a message", port, code);
    }
    free(out);
}

/* Two adjacent free UDP ports on 127.0.0.1: *p and *p + 1 (bounded tries).
 * Returns false when none were found. */
static bool adjacent_ports(unsigned *p)
{
    for (int tries = 0; tries < 50; tries++) {
        struct sockaddr_storage a;
        socklen_t al;
        int fd = udp_socket(AF_INET, &a, &al);
        if (fd < 0)
            return false;
        unsigned port = ntohs(((struct sockaddr_in *)&a)->sin_port);
        close(fd);
        if (port >= 65535)
            continue;
        int fd2 = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(port + 1)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool free2 = fd2 >= 0 && bind(fd2, (struct sockaddr *)&b, sizeof b) == 0;
        if (fd2 >= 0)
            close(fd2);
        if (free2) {
            *p = port;
            return true;
        }
    }
    return false;
}

/* The alternate port defaults to --stun-port + 1 ("auto", /status altPort),
 * and an automatic one that is taken is left out with a warning instead
 * of costing the server its STUN service. */
static void test_stun_alt_port_auto(void **state)
{
    (void)state;
    unsigned port;
    if (!adjacent_ports(&port))
        fail_msg("no two adjacent free UDP ports");
    char ps[16], want[64];
    snprintf(ps, sizeof ps, "%u", port);
    rdv_ts_server *s = rdv_ts_server_start((const char *const[]){"--stun-port", ps, NULL});
    assert_non_null(s);
    char *body = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/status", &body, T_MS), 200);
    snprintf(want, sizeof want, "\"altPort\":%u", port + 1);
    if (!body || !strstr(body, want))
        fail_msg("/status lacks %s: %s", want, body ? body : "(none)");
    free(body);
    binding_ok(AF_INET, (int)port);
    rdv_ts_server_stop(s);

    /* The same with port + 1 taken by someone else. */
    if (!adjacent_ports(&port))
        fail_msg("no two adjacent free UDP ports");
    int blocker = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(port + 1)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(blocker >= 0 && bind(blocker, (struct sockaddr *)&b, sizeof b) == 0);
    snprintf(ps, sizeof ps, "%u", port);
    s = rdv_ts_server_start((const char *const[]){"--stun-port", ps, NULL});
    close(blocker);
    assert_non_null(s);
    body = NULL;
    assert_int_equal(rdv_http_get(rdv_ts_server_operator_port(s), "/status", &body, T_MS), 200);
    if (!body || !strstr(body, "\"altPort\":0"))
        fail_msg("/status should show altPort 0: %s", body ? body : "(none)");
    free(body);
    binding_ok(AF_INET, (int)port); /* STUN still answers */
    rdv_ts_server_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ITEST(test_stun_binding_ipv4_uv),
        ITEST(test_stun_binding_ipv4_poll),
        ITEST(test_stun_binding_ipv6),
        ITEST(test_stun_off),
        ITEST(test_stun_malformed_ws_unaffected),
        ITEST(test_stun_port_taken),
        ITEST(test_stun_alt_port_auto),
    };
    return ITEST_RUN(tests);
}
