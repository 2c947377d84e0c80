/* cmd_relay.c - the relay commands of the rdv CLI, on the public API only:
 *
 *   rdv relay ID              open a relay to ID; stdin -> relay, relay -> stdout
 *   rdv relay --accept [ID]   accept one relay (from ID, or anyone); same pipe
 *   rdv proxy ID --listen ADDR [--forward ADDR]
 *                             open a relay to ID and put a local UDP proxy on it
 *   rdv proxy --accept [ID] [--listen ADDR] --forward ADDR
 *                             accept relays (from ID) and proxy them
 *
 * With --direct the opening side uses rdv_session_connect() instead of
 * rdv_session_open(): a direct UDP path is tried first and the relay is the
 * fallback; both sides print every path change (cb_path). The accepting
 * side needs no flag: rdv_session_accept() takes both kinds of request.
 *
 * Both write the status file (status_file.c) that `rdv network status`
 * (cmd_network.c) shows while they run.
 *
 * `rdv relay` moves datagrams: each read() of stdin (at most the relay's
 * max payload) is one datagram, written to the peer's stdout as it
 * arrives. The sender honours the send queue (RDV_ERR_BACKLOG: wait) and
 * paces itself below the server's relayBytesPerSecond, but the relay has
 * no retransmission: use it for text and small files; for a reliable
 * stream run a transport over `rdv proxy`. After EOF on stdin it keeps
 * receiving for --wait MS (default 1000; -1: until the peer closes), then
 * closes the session.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

#define RELAY_DEFAULT_WAIT_MS 1000   /* linger after stdin EOF */
#define STATUS_WRITE_MS 2000         /* status file refresh */
#define REOPEN_DELAY_MS 1000         /* proxy: reopen a lost session after */
#define CLOSE_FLUSH_MS 2000          /* bound on flushing the final close */
#define SIGNAL_FLUSH_MS 200          /* the same after SIGINT / SIGTERM */


void rdv_cli_usage_relay(const char *cmd, FILE *out, const char *net)
{
    if (strcmp(cmd, "relay") == 0) {
        fprintf(out,
                "usage: rdv relay [options] ID\n"
                "       rdv relay --accept [options] [ID]\n"
                "Pipes stdin to node ID and the peer's data to stdout through an end-to-end\n"
                "encrypted relay session of the server. The other side runs\n"
                "`rdv relay --accept` (accepting only ID when given). Each read of stdin\n"
                "is one datagram (no retransmission: best effort).\n%s"
                "  --direct         open with a direct UDP path first (hole punching), the\n"
                "                   relay as fallback; each path change is printed on\n"
                "                   stderr (`rdv relay: path Direct 12 ms ...`; --json: an\n"
                "                   {\"event\":\"path\",...} object, also on stderr). The\n"
                "                   accepting side takes either kind of request\n"
                "  --nat TYPE       NAT type to announce (default: the discovered one)\n"
                "  --accept         wait for a relay request instead of opening one\n"
                "  --wait MS        after EOF on stdin keep receiving MS before closing\n"
                "                   (default %d; -1: until the peer closes)\n"
                "  --timeout MS     give up when no session is open after MS\n"
                "  --state FILE     status file for `rdv network status`\n"
                "                   (env RENDEZVOUS_STATE, default <key>.status)\n"
                "SIGHUP: the host's network changed (run NAT discovery and send new\n"
                "candidates to the peer now); SIGINT / SIGTERM: close and exit.\n",
                net, RELAY_DEFAULT_WAIT_MS);
    } else if (strcmp(cmd, "proxy") == 0) {
        fprintf(out,
                "usage: rdv proxy [options] ID --listen ADDR [--forward ADDR]\n"
                "       rdv proxy --accept [options] [ID] [--listen ADDR] --forward ADDR\n"
                "A local UDP proxy over an end-to-end encrypted relay session: datagrams\n"
                "sent to the --listen address go to the peer; the peer's datagrams are\n"
                "sent to the last local sender, or to --forward until one was seen.\n"
                "For WireGuard: on the opening side set the peer's Endpoint to the\n"
                "--listen address; on the accepting side give WireGuard's ListenPort as\n"
                "--forward 127.0.0.1:PORT. Runs until interrupted; the opening side\n"
                "reopens a session lost with the connection (unless --once).\n%s"
                "  --direct         open with a direct UDP path first (hole punching), the\n"
                "                   relay as fallback; each path change is printed on\n"
                "                   stderr (`rdv proxy: path Direct 12 ms ...`; --json: an\n"
                "                   {\"event\":\"path\",...} object on stdout). The accepting\n"
                "                   side takes either kind of request\n"
                "  --nat TYPE       NAT type to announce (default: the discovered one)\n"
                "  --listen ADDR    IP:PORT or [IPv6]:PORT to bind, checked at start\n"
                "                   (accepting side default 127.0.0.1:0, [::1]:0 for an\n"
                "                   IPv6 --forward; keep it on loopback)\n"
                "  --forward ADDR   local destination before a local sender was seen\n"
                "                   (resolved and checked at start)\n"
                "  --accept         accept relay requests (from ID only, when given)\n"
                "  --once           exit when the session ends instead of reopening\n"
                "  --timeout MS     give up when no session is open after MS\n"
                "  --state FILE     status file for `rdv network status`\n"
                "                   (env RENDEZVOUS_STATE, default <key>.status)\n"
                "ADDR is IP:PORT, [IPv6]:PORT or HOST:PORT (resolved at start). A --listen\n"
                "address that is not loopback is reachable from the network: anyone who\n"
                "can send to it sends into the tunnel (a warning is printed).\n"
                "SIGHUP: the host's network changed (run NAT discovery and send new\n"
                "candidates to the peer now); SIGINT / SIGTERM: close and exit.\n",
                net);
    }
}

static volatile sig_atomic_t g_sig;
static void on_sig(int s)
{
    g_sig = s;
}

static volatile sig_atomic_t g_hup; /* SIGHUP: the network changed */

static void on_hup(int s)
{
    (void)s;
    g_hup = 1;
}

struct rapp {
    struct cli_opts *o;
    rdv_client *c;
    int proxy;
    const char *name;          /* "relay" / "proxy" */
    char sid[RDV_SESSION_ID_LEN + 1]; /* current session, "" when none */
    char peer[RDV_NODE_ID_LEN + 1];
    int open;                  /* sid is open */
    int direct_session;        /* sid is direct-capable (rdv_session_connect) */
    int opened_ever;
    int opening;               /* relay_open sent, waiting */
    int done, status;
    int eof;                   /* stdin ended */
    int64_t linger_until;      /* after EOF (0: not yet) */
    int64_t reopen_at;         /* proxy opener: reopen after a loss */
    int64_t open_since;        /* pacing */
    uint64_t sent_bytes;
    uint8_t *chunk;            /* a datagram waiting for queue space */
    size_t chunk_len, chunk_cap;
    int status_dirty;
    char listen[64];           /* proxy: numeric --listen (or the default) */
    char forward[64];          /* proxy: numeric --forward, "" none */
    char last_conn_err[400];   /* the connection error printed last */
};

/* Where events go: stdout for `proxy --json` (its event stream), else
 * stderr (`relay` writes the peer's data to stdout). */
static FILE *event_out(const struct rapp *a)
{
    return a->proxy && a->o->json ? stdout : stderr;
}

static void rfail(struct rapp *a, const char *what, int err)
{
    fprintf(stderr, "rdv %s: %s: %s\n", a->name, what, rdv_strerror(err));
    a->status = 1;
    a->done = 1;
}

static void start_proxy(struct rapp *a)
{
    const char *listen = a->listen;
    uint16_t port = 0;
    int rc = rdv_session_proxy(a->c, a->sid, listen, a->forward[0] ? a->forward : NULL, &port);
    if (rc != 0) {
        /* The address was bound once at start; failing now means another
         * program took it meanwhile. Reopening would fail the same way
         * every second: the opening side gives up. */
        fprintf(stderr, "rdv proxy: cannot bind the proxy socket on %s: %s\n", listen,
                rc == RDV_ERR_IO ? strerror(errno) : rdv_strerror(rc));
        (void)rdv_session_close(a->c, a->sid);
        a->sid[0] = '\0';
        a->open = 0;
        if (!a->o->accept) {
            a->status = 1;
            a->done = 1;
        }
        return;
    }
    if (a->o->json) {
        printf("{\"event\":\"proxy\",\"sessionID\":\"%s\",\"peer\":\"%s\",\"listen\":", a->sid,
               a->peer);
        rdv_cli_json_str(listen);
        printf(",\"port\":%u,\"direct\":%s}\n", port, a->direct_session ? "true" : "false");
        fflush(stdout);
    } else {
        fprintf(stderr, "rdv proxy: UDP port %u (%s) <-> %s via %s session %s\n", port, listen,
                a->peer, a->direct_session ? "direct-capable" : "relay", a->sid);
    }
}

static void session_open(struct rapp *a)
{
    a->open = 1;
    a->opening = 0;
    a->opened_ever = 1;
    a->open_since = rdv_cli_mono_ms();
    a->sent_bytes = 0;
    a->status_dirty = 1;
    if (a->proxy)
        start_proxy(a);
    else if (!a->o->json)
        fprintf(stderr, "rdv relay: session %s with %s open%s\n", a->sid, a->peer,
                a->direct_session ? " (direct-capable)" : "");
}

static void try_open(struct rapp *a)
{
    if (a->o->accept || a->sid[0] || a->done)
        return;
    int rc = a->o->direct ? rdv_session_connect(a->c, a->o->ids[0], a->sid)
                          : rdv_session_open(a->c, a->o->ids[0], a->sid);
    if (rc != 0) {
        a->sid[0] = '\0';
        if (rc == RDV_ERR_NOT_CONNECTED)
            return; /* after the next welcome */
        rfail(a, "open", rc);
        return;
    }
    snprintf(a->peer, sizeof(a->peer), "%s", a->o->ids[0]);
    a->direct_session = a->o->direct;
    a->opening = 1;
}

static void r_on_state(rdv_client *c, rdv_state st, void *u)
{
    struct rapp *a = u;
    a->status_dirty = 1;
    if (st == RDV_STATE_FAILED) {
        rdv_cli_print_failed(a->name, c);
        a->status = 1;
        a->done = 1;
        return;
    }
    if (st == RDV_STATE_AUTHENTICATED && !a->reopen_at)
        try_open(a);
}

/* One line about a request: direct-capable or not, the peer's NAT type,
 * what we did with it. */
static void print_request(struct rapp *a, const rdv_session_request *req, const char *what)
{
    FILE *f = event_out(a);
    if (a->o->json) {
        fprintf(f,
                "{\"event\":\"request\",\"sessionID\":\"%s\",\"peer\":\"%s\",\"direct\":%s,"
                "\"peerNat\":\"%s\",\"result\":\"%s\"}\n",
                req->session_id, req->from_node_id, req->direct ? "true" : "false",
                req->direct ? rdv_nat_type_name(req->peer_nat) : "unknown", what);
    } else if (req->direct) {
        fprintf(f, "rdv %s: %s a direct-capable request from %s (peer NAT %s), session %s\n",
                a->name, what, req->from_node_id, rdv_nat_type_name(req->peer_nat),
                req->session_id);
    } else {
        fprintf(f, "rdv %s: %s a relay request from %s, session %s\n", a->name, what,
                req->from_node_id, req->session_id);
    }
    fflush(f);
}

static void r_on_request(rdv_client *c, const rdv_session_request *req, void *u)
{
    struct rapp *a = u;
    a->status_dirty = 1;
    if (!a->o->accept || a->sid[0] || a->done ||
        (a->o->nids && strcmp(req->from_node_id, a->o->ids[0]) != 0)) {
        (void)rdv_session_reject(c, req->session_id, a->sid[0] ? "busy" : "not expected");
        print_request(a, req, "rejected");
        return;
    }
    int rc = rdv_session_accept(c, req->session_id);
    if (rc != 0) {
        fprintf(stderr, "rdv %s: accept: %s\n", a->name, rdv_strerror(rc));
        return;
    }
    print_request(a, req, "accepted");
    snprintf(a->sid, sizeof(a->sid), "%s", req->session_id);
    snprintf(a->peer, sizeof(a->peer), "%s", req->from_node_id);
    a->direct_session = req->direct;
    session_open(a);
}

/* A path change of our (direct-capable) session: one line, so that
 * scripts can wait for "path Direct". */
static void r_on_path(rdv_client *c, const char *sid, const char *peer, rdv_path path,
                      int64_t elapsed_ms, void *u)
{
    struct rapp *a = u;
    a->status_dirty = 1;
    if (strcmp(sid, a->sid) != 0)
        return;
    rdv_session_info si;
    if (rdv_session_get_info(c, sid, &si) != 0)
        memset(&si, 0, sizeof(si));
    const char *name = rdv_path_name((rdv_path)path);
    const char *remote = path == RDV_PATH_DIRECT ? si.remote : "";
    FILE *f = event_out(a);
    if (a->o->json) {
        fprintf(f,
                "{\"event\":\"path\",\"sessionID\":\"%s\",\"peer\":\"%s\",\"path\":\"%s\","
                "\"elapsedMs\":%lld,\"remote\":",
                sid, peer, name, (long long)elapsed_ms);
        if (remote[0])
            rdv_cli_json_fstr(f, remote);
        else
            fputs("null", f);
        fprintf(f, ",\"peerNat\":\"%s\",\"upgraded\":%s,\"viaSpray\":%s,\"directError\":",
                rdv_nat_type_name(si.peer_nat), si.upgraded ? "true" : "false",
                si.via_spray ? "true" : "false");
        if (si.last_direct_error) {
            fprintf(f, "{\"code\":%d,\"message\":", si.last_direct_error);
            rdv_cli_json_fstr(f, si.last_direct_error_text[0]
                                     ? si.last_direct_error_text
                                     : rdv_strerror(si.last_direct_error));
            fputs("}", f);
        } else {
            fputs("null", f);
        }
        fputs("}\n", f);
    } else {
        fprintf(f, "rdv %s: path %s %lld ms (session %s", a->name, name, (long long)elapsed_ms,
                sid);
        if (remote[0])
            fprintf(f, ", remote %s%s", remote, si.via_spray ? " by many-port probing" : "");
        if (path == RDV_PATH_DIRECT && si.upgraded)
            fputs(", upgraded from the relay", f);
        if (path != RDV_PATH_DIRECT && si.last_direct_error)
            fprintf(f, "; direct: %s", si.last_direct_error_text[0]
                                           ? si.last_direct_error_text
                                           : rdv_strerror(si.last_direct_error));
        fputs(")\n", f);
    }
    fflush(f);
}

static void r_on_queued(rdv_client *c, const rdv_queued *q, void *u)
{
    (void)c;
    struct rapp *a = u;
    if (!a->o->json && strcmp(q->session_id, a->sid) == 0)
        fprintf(stderr, "rdv %s: %.16s... is offline; the %s waits on the server\n", a->name,
                q->to_node_id, q->type);
}

static void r_on_ready(rdv_client *c, const char *sid, const char *peer, void *u)
{
    (void)c;
    (void)peer;
    struct rapp *a = u;
    if (strcmp(sid, a->sid) == 0)
        session_open(a);
}

static void r_on_data(rdv_client *c, const char *sid, const uint8_t *data, size_t len,
                      void *u)
{
    (void)c;
    struct rapp *a = u;
    if (a->proxy || strcmp(sid, a->sid) != 0)
        return;
    if (len && (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)) {
        fprintf(stderr, "rdv relay: stdout: %s\n", strerror(errno));
        (void)rdv_session_close(c, a->sid);
        a->sid[0] = '\0';
        a->status = 1;
        a->done = 1;
    }
}

static void r_on_closed(rdv_client *c, const char *sid, int err, const char *reason, void *u)
{
    (void)c;
    struct rapp *a = u;
    a->status_dirty = 1;
    if (strcmp(sid, a->sid) != 0)
        return;
    int was_open = a->open;
    a->sid[0] = '\0';
    a->open = a->opening = 0;
    /* err 0: the peer ended it; "closed_by_peer" is the protocol's name
     * for a plain close (any other reason is the peer's own text). */
    int plain = !err && strcmp(reason, "closed_by_peer") == 0;
    if (!a->o->json || err)
        fprintf(stderr, "rdv %s: session %s: %s%s%s\n", a->name, sid,
                was_open ? "closed" : "not opened",
                err ? ": " : plain ? " by the peer (closed_by_peer)" : " by the peer: ",
                err ? rdv_strerror(err) : plain ? "" : reason);
    if (err && *reason && !a->o->json)
        fprintf(stderr, "rdv %s: (reason: %s)\n", a->name, reason);
    if (a->proxy && !a->o->once) {
        if (!a->o->accept)
            a->reopen_at = rdv_cli_mono_ms() + REOPEN_DELAY_MS;
        return; /* the accepting side waits for the next request */
    }
    a->status = err == 0 && was_open ? 0 : 1;
    a->done = 1;
}

static void r_on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    struct rapp *a = u;
    /* A failed connection attempt: once per new cause (the one-shot relay
     * opener says it when it gives up). */
    if (rdv_cli_conn_error(a->name, c, e, !a->proxy && !a->o->accept, a->last_conn_err,
                           sizeof(a->last_conn_err)))
        return;
    fprintf(stderr, "rdv %s: %s%s%s%s\n", a->name, e->message, e->server_code ? " [" : "",
            e->server_code ? e->server_code : "", e->server_code ? "]" : "");
}

/* Reads one datagram of stdin (when allowed) and sends it. */
static void pump_stdin(struct rapp *a)
{
    if (a->chunk_len == 0) {
        size_t max = rdv_client_max_payload(a->c);
        if (a->chunk_cap < max) {
            free(a->chunk);
            a->chunk = malloc(max);
            a->chunk_cap = a->chunk ? max : 0;
            if (!a->chunk) {
                rfail(a, "stdin", RDV_ERR_NOMEM);
                return;
            }
        }
        ssize_t n = read(STDIN_FILENO, a->chunk, max);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                return;
            fprintf(stderr, "rdv relay: stdin: %s\n", strerror(errno));
            n = 0;
        }
        if (n == 0) {
            a->eof = 1;
            return;
        }
        a->chunk_len = (size_t)n;
    }
    int rc = rdv_session_send(a->c, a->sid, a->chunk, a->chunk_len);
    if (rc == 0) {
        a->sent_bytes += a->chunk_len;
        a->chunk_len = 0;
    } else if (rc == RDV_ERR_STATE && a->direct_session) {
        /* Between paths (the direct one stopped answering, the relay leg
         * is not up yet): keep the datagram and retry. */
    } else if (rc != RDV_ERR_BACKLOG) {
        rfail(a, "send", rc);
    }
}

/* True when the pacing budget allows another datagram now. */
static int pace_ok(struct rapp *a, int64_t now)
{
    rdv_client_info info;
    if (rdv_client_get_info(a->c, &info) != 0 || info.limits.relay_bytes_per_second <= 0)
        return 1;
    double rate = 0.9 * (double)info.limits.relay_bytes_per_second; /* bytes/s */
    double budget = rate * (double)(now - a->open_since) / 1000.0 + rate / 4;
    return (double)a->sent_bytes <= budget;
}

static void refresh_status(struct rapp *a, const char *path, int64_t now, int64_t *next)
{
    if (!a->status_dirty && now < *next)
        return;
    rdv_network_status st;
    if (rdv_client_get_network_status(a->c, &st) == 0)
        rdv_cli_status_write(path, a->name, &st, (long)getpid());
    a->status_dirty = 0;
    *next = now + STATUS_WRITE_MS;
}

/* Resolves a proxy address "HOST:PORT" or "[IPv6]:PORT" (HOST a name or an
 * IP) for UDP into numeric text in out ("IP:PORT" / "[IP]:PORT") and *ss;
 * family AF_UNSPEC (IPv4 preferred) or the one wanted. min_port: 0 or 1.
 * Returns 0, else prints why (naming opt) and returns the exit status: 2
 * for a malformed value, 1 when the host does not resolve. */
static int resolve_addr(const char *opt, const char *s, int family, long min_port, char *out,
                        size_t cap, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[256];
    const char *port;
    size_t hl;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':') {
            fprintf(stderr, "rdv proxy: bad %s '%s': use [IPv6]:PORT\n", opt, s);
            return 2;
        }
        hl = (size_t)(e - s - 1);
        memcpy(host, s + 1, hl < sizeof(host) ? hl : 0);
        port = e + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon) {
            fprintf(stderr, "rdv proxy: bad %s '%s': use IP:PORT, HOST:PORT or [IPv6]:PORT\n",
                    opt, s);
            return 2;
        }
        hl = (size_t)(colon - s);
        memcpy(host, s, hl < sizeof(host) ? hl : 0);
        port = colon + 1;
    }
    long pv;
    if (hl == 0 || hl >= sizeof(host) || port[0] < '0' || port[0] > '9' ||
        rdv_cli_parse_long(port, min_port, 65535, &pv) != 0) {
        fprintf(stderr, "rdv proxy: bad %s '%s': use IP:PORT, HOST:PORT or [IPv6]:PORT "
                        "(port %ld...65535)\n",
                opt, s, min_port);
        return 2;
    }
    host[hl] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0 || !res) {
        fprintf(stderr, "rdv proxy: %s %s: cannot resolve '%s': %s%s\n", opt, s, host,
                g ? gai_strerror(g) : "no address",
                family != AF_UNSPEC ? " (in the address family of the other address)" : "");
        if (res)
            freeaddrinfo(res);
        return 1;
    }
    const struct addrinfo *pick = res;
    for (const struct addrinfo *r = res; r; r = r->ai_next)
        if (r->ai_family == AF_INET) {
            pick = r;
            break;
        }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sl = pick->ai_addrlen;
    freeaddrinfo(res);
    char ip[INET6_ADDRSTRLEN];
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)ss)->sin6_addr;
    if (!inet_ntop(ss->ss_family, a, ip, sizeof(ip))) {
        fprintf(stderr, "rdv proxy: %s %s: %s\n", opt, s, strerror(errno));
        return 1;
    }
    snprintf(out, cap, ss->ss_family == AF_INET6 ? "[%s]:%ld" : "%s:%ld", ip, pv);
    return 0;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) ||
           (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* rdv proxy: resolves --listen / --forward into a->listen / a->forward,
 * binds the listen address once (so that a port in use, or an address
 * not on this host, fails now, before the peer is contacted) and warns
 * about a listen address reachable from the network. Returns 0 or the
 * exit status. */
static int proxy_addrs(struct rapp *a)
{
    const struct cli_opts *o = a->o;
    struct sockaddr_storage la, fa;
    socklen_t ll = 0, fl = 0;
    int rc;
    if (o->listen) {
        rc = resolve_addr("--listen", o->listen, AF_UNSPEC, 0, a->listen, sizeof(a->listen),
                          &la, &ll);
        if (rc)
            return rc;
    }
    if (o->forward) {
        rc = resolve_addr("--forward", o->forward, o->listen ? la.ss_family : AF_UNSPEC, 1,
                          a->forward, sizeof(a->forward), &fa, &fl);
        if (rc)
            return rc;
    }
    if (!o->listen) { /* the accepting side's default: loopback, any port */
        int v6 = o->forward && fa.ss_family == AF_INET6;
        rc = resolve_addr("--listen", v6 ? "[::1]:0" : "127.0.0.1:0", AF_UNSPEC, 0, a->listen,
                          sizeof(a->listen), &la, &ll);
        if (rc)
            return rc;
    }
    int fd = socket(la.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&la, ll) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "rdv proxy: cannot bind --listen %s: %s%s\n", a->listen, strerror(e),
                e == EADDRINUSE      ? " (another program, or another rdv proxy, has that "
                                       "port: choose another)"
                : e == EADDRNOTAVAIL ? " (not an address of this host: use 127.0.0.1:PORT)"
                : e == EACCES        ? " (a privileged port: use one above 1023)"
                                     : "");
        return 1;
    }
    close(fd);
    if (!is_loopback(&la))
        fprintf(stderr,
                "rdv proxy: warning: --listen %s is not a loopback address: it is reachable "
                "from the network, and anyone who can send to it sends into the tunnel%s%s; "
                "use 127.0.0.1:PORT unless that is what you want\n",
                a->listen, o->nids ? " to " : "", o->nids ? o->ids[0] : "");
    return 0;
}

int rdv_cli_relay(struct cli_opts *o, int proxy)
{
    struct rapp a;
    memset(&a, 0, sizeof(a));
    a.o = o;
    a.proxy = proxy;
    a.name = proxy ? "proxy" : "relay";
    if ((!o->accept && o->nids != 1) || (o->accept && o->nids > 1)) {
        fprintf(stderr, "rdv %s: give %s node ID\n", a.name,
                o->accept ? "at most one" : "exactly one");
        return 2;
    }
    if (o->nids && !rdv_node_id_is_valid(o->ids[0])) {
        fprintf(stderr, "rdv %s: not a node ID (64 lowercase hex digits): '%s'\n", a.name,
                o->ids[0]);
        return 2;
    }
    if (proxy && !o->accept && !o->listen) {
        fprintf(stderr, "rdv proxy: --listen 127.0.0.1:PORT is required\n");
        return 2;
    }
    if (proxy && o->accept && !o->forward && !o->json)
        fprintf(stderr, "rdv proxy: no --forward: peer datagrams are dropped until a local "
                        "program sends to the proxy port\n");
    if (!proxy && (o->listen || o->forward)) {
        fprintf(stderr, "rdv relay: --listen/--forward belong to `rdv proxy`\n");
        return 2;
    }
    long wait_ms = o->wait_ms == -2 ? RELAY_DEFAULT_WAIT_MS : o->wait_ms;

    rdv_identity id;
    int rc = rdv_cli_load_key(a.name, o, &id);
    if (rc != 0)
        return 1;
    if (!o->accept && rdv_cli_not_self(a.name, "open a session to", &id, o, o->ids[0])) {
        rdv_identity_wipe(&id);
        return 2;
    }
    if (proxy && (rc = proxy_addrs(&a)) != 0) {
        rdv_identity_wipe(&id);
        return rc;
    }
    rdv_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = o->url;
    cfg.identity = &id;
    cfg.tls_ca_file = o->ca;
    cfg.cert_file = o->cert;
    cfg.software = "rdv/" RDV_VERSION_STRING;
    cfg.nat_type = o->info.nat_type;
    rdv_cli_apply_nat(o, &cfg);
    if (!proxy)
        cfg.reconnect.max_attempts = 3;
    cfg.cb_state_changed = r_on_state;
    cfg.cb_session_request = r_on_request;
    cfg.cb_session_ready = r_on_ready;
    cfg.cb_session_data = r_on_data;
    cfg.cb_session_closed = r_on_closed;
    cfg.cb_path = r_on_path;
    cfg.cb_queued = r_on_queued;
    cfg.cb_error = r_on_error;
    cfg.user_ptr = &a;
    rc = rdv_client_create(&cfg, &a.c);
    rdv_identity_wipe(&id);
    if (rc != 0)
        return rdv_cli_create_failed(a.name, o, rc);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    /* The signals stay blocked except inside ppoll(): one that arrives
     * while the loop is busy interrupts the next wait at once instead of
     * waiting out its timeout. */
    sigset_t block, orig, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    int masked = sigprocmask(SIG_BLOCK, &block, &orig) == 0;
    if (masked)
        waitmask = orig;
    else
        sigemptyset(&waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGHUP);
    if (!proxy)
        (void)fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);

    char pbuf[4096];
    const char *spath = rdv_cli_state_path(o, pbuf, sizeof(pbuf));
    int64_t next_status = 0;
    int64_t t0 = rdv_cli_mono_ms();
    int64_t close_deadline = 0;
    while (!a.done && !g_sig) {
        int64_t now = rdv_cli_mono_ms();
        if (g_hup) {
            g_hup = 0;
            if (rdv_client_network_changed(a.c) == 0) {
                if (a.o->json)
                    fprintf(event_out(&a),
                            "{\"event\":\"networkChanged\",\"by\":\"SIGHUP\"}\n");
                else
                    fprintf(stderr, "rdv %s: SIGHUP: network changed, NAT discovery again\n",
                            a.name);
                fflush(event_out(&a));
            }
        }
        if (a.reopen_at && now >= a.reopen_at &&
            rdv_client_state(a.c) == RDV_STATE_AUTHENTICATED) {
            a.reopen_at = 0;
            try_open(&a);
        }
        int want_stdin = !proxy && a.open && !a.eof;
        int pacing_wait = 0;
        if (want_stdin && a.chunk_len == 0 && !pace_ok(&a, now)) {
            want_stdin = 0;
            pacing_wait = 1;
        }
        if (want_stdin && a.chunk_len)
            pump_stdin(&a); /* retry a datagram the full queue refused */
        /* EOF: flush, linger, close, flush the close, exit. */
        if (!proxy && a.eof && a.chunk_len == 0 && rdv_client_pending(a.c) == 0) {
            if (a.open && wait_ms >= 0 && !a.linger_until)
                a.linger_until = now + wait_ms;
            if (a.open && a.linger_until && now >= a.linger_until) {
                (void)rdv_session_close(a.c, a.sid);
                a.sid[0] = '\0';
                a.open = 0;
                close_deadline = now + CLOSE_FLUSH_MS;
            }
        }
        if (close_deadline && (rdv_client_pending(a.c) == 0 || now >= close_deadline)) {
            a.status = 0;
            break;
        }
        if (o->timeout_ms > 0 && !a.opened_ever && now - t0 >= o->timeout_ms) {
            fprintf(stderr, "rdv %s: no relay session within %ld ms\n", a.name, o->timeout_ms);
            a.status = 1;
            break;
        }
        refresh_status(&a, spath, now, &next_status);

        struct pollfd pfd[2] = {{.fd = rdv_client_fd(a.c), .events = POLLIN},
                                {.fd = STDIN_FILENO, .events = POLLIN}};
        int nfd = want_stdin && a.chunk_len == 0 ? 2 : 1;
        int t = rdv_client_timeout_ms(a.c);
        if ((pacing_wait || a.chunk_len || a.linger_until || close_deadline ||
             (a.eof && a.open)) && t > 10)
            t = 10;
        struct timespec ts = {.tv_sec = t / 1000, .tv_nsec = (long)(t % 1000) * 1000000L};
        (void)ppoll(pfd, (nfds_t)nfd, t < 0 ? NULL : &ts, &waitmask);
        if (nfd == 2 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
            pump_stdin(&a);
        rc = rdv_client_process(a.c);
        if (rc != 0) {
            rfail(&a, "process", rc);
            break;
        }
    }
    if (a.sid[0] && rdv_client_state(a.c) == RDV_STATE_AUTHENTICATED) {
        /* Interrupted: tell the peer (bounded flush; briefly after a
         * signal: the server tells the peer anyway when we disconnect). */
        (void)rdv_session_close(a.c, a.sid);
        int64_t end = rdv_cli_mono_ms() + (g_sig ? SIGNAL_FLUSH_MS : CLOSE_FLUSH_MS);
        while (rdv_client_pending(a.c) > 0 && rdv_cli_mono_ms() < end) {
            struct pollfd pfd = {.fd = rdv_client_fd(a.c), .events = POLLIN};
            (void)poll(&pfd, 1, 10);
            (void)rdv_client_process(a.c);
        }
    }
    if (masked)
        (void)sigprocmask(SIG_SETMASK, &orig, NULL);
    /* Leave the last traversal and errors for `rdv network status`. */
    rdv_network_status st;
    if (rdv_client_get_network_status(a.c, &st) == 0) {
        st.active_relays = 0;
        st.pending_relays = 0;
        st.state = RDV_STATE_DISCONNECTED;
        rdv_cli_status_write(spath, a.name, &st, 0); /* pid 0: finished */
    }
    rdv_client_destroy(a.c);
    free(a.chunk);
    if (g_sig && !a.done)
        return proxy ? 0 : 1;
    return a.status;
}

