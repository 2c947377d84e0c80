/* server.c - the libwebsockets context, the protocol table, timers,
 * signals and shutdown (see server.h).
 *
 * Memory per connection is what the issue cares about most, so the lws
 * knobs are set small: the rendezvous.v1 protocol's rx_buffer_size (256 B
 * by default, --rx-buffer; conn.c reassembles longer messages), pt_serv_buf_size, and a bounded pool
 * of HTTP header buffers (only in use during the upgrade). WebSocket pings
 * and the idle close come from the connection sweep (keepalive.h,
 * conn_sweep.h), not from lws'
 * per-connection timers (retry_and_idle_policy), whose every re-arm walks
 * a list of all of them.
 *
 * Event loop: lws' libuv loop (epoll) by default, a plugin: poll() when
 * it is missing; --event-loop poll asks for lws' poll() loop, whose every
 * wake-up scans every connection. Once lws' per-connection validity timers
 * were off (keepalive.h), the scan dominated at scale: 10,000 idle nodes
 * plus 2,000 msgs/s cost 0.60 server cores and a p50 of 42 ms with poll(),
 * 0.26 cores and 312 us with libuv; libuv costs ~0.13 KiB more per idle
 * node (1.91 vs 1.78 KiB at 19,500). Earlier, with those timers, poll()
 * had measured cheaper (bench/RESULTS.md).
 *
 * STUN (--stun, stun_responder.h): the responder's UDP sockets are adopted into the
 * same loop as raw file descriptors of the "rdv-stun" protocol; lws only
 * polls them, stun_responder.c reads and answers inline. They live as long as the
 * context: lws closes them when it is destroyed (RAW_CLOSE_FILE releases
 * them from stun_responder.c first), so srv_server_destroy() closes only what lws
 * never adopted. The default port is best effort (another STUN server on
 * the host, parallel test servers): when it cannot be opened the server
 * warns and runs without STUN; an explicitly configured --stun* option
 * makes that failure fatal instead.
 *
 * Signals: the handler (with libuv: lws' signal callback) only sets a
 * sig_atomic_t and calls lws_cancel_service(); the loop then sends every
 * connection `error` shutting_down and a 1001 close (with --drain-window,
 * the authenticated nodes in equal batches over the window, so they
 * reconnect to other instances spread out; new upgrades get 503 and
 * /healthz 503 meanwhile), waits for them to go (at most
 * SHUTDOWN_GRACE_MS after the window) and returns. SIGHUP (either loop:
 * our own handler) sets another flag; the loop then runs the reload hooks
 * from a zero-delay timer (reload.h).
 */
#include "rendezvous/server.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rendezvous/auth.h"
#include "rendezvous/http.h"
#include "rendezvous/conn_limits.h"
#include "rendezvous/frame_guard.h"
#include "rendezvous/keepalive.h"
#include "rendezvous/log.h"
#include "rendezvous/notify.h"
#include "rendezvous/offline.h"
#include "rendezvous/operator.h"
#include "rendezvous/port_owner.h"
#include "rendezvous/presence.h"
#include "rendezvous/relay_channel.h"
#include "rendezvous/route.h"
#include "schema/sign.h"
#include "rendezvous/vpool.h"
#include "rendezvous/tls.h"

/* lws receive chunk (--rx-buffer, default 256), allocated for every
 * connection for its lifetime. Measured RSS per idle authenticated
 * connection (5000 more, release build, poll loop): 256 -> ~1.8 KB,
 * 512 -> ~2.1 KB, 1024 -> ~2.6 KB; the libuv loop adds ~230 B (~2.0 KB at
 * 256). Longer messages are reassembled in conn.c (one malloc per
 * message). lws also reads the socket in pieces of this size (one
 * poll + recv each), which bounds relay throughput: one relay session on
 * loopback (bench/relay.sh, 2 cores) moved ~176 MB/s at 256, ~412 at
 * 1024, ~744 at 4096, ~1117 at 16384. */
#define PT_SERV_BUF_MIN 4096
#define HTTP_HEADER_DATA 2048    /* bytes of request headers kept */
#define HTTP_HEADER_POOL 256     /* upgrades in flight at once */
#define FLUSH_DELAY_US 20000     /* store batch commit delay */
#define SWEEP_INTERVAL_US 500000 /* offline-queue expiry sweep */
#define SHUTDOWN_GRACE_MS 3000
#define TRIM_MIN_CLOSED 1000     /* connections gone before a malloc_trim */
#define NOTIFY_STATUS_MS 10000     /* systemd STATUS= nodes/connections */
#define DRAIN_TICK_MS 100          /* --drain-window: one batch this often */
#define REDIS_START_WAIT_MS 3000   /* --redis: wait this long for it at start */
#define UV_PLUGIN "libwebsockets-evlib_uv.so" /* lws 4.1 evlib plugin */

/* Set by the signal handler only; read by the loop. */
static volatile sig_atomic_t signal_seen;
/* SIGHUP: set by the handler, cleared by the loop when it reloads. */
static volatile sig_atomic_t reload_seen;
/* The context the signal handler wakes; set once before signals arrive. */
static struct lws_context *volatile signal_ctx;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_seen = 1;
    else
        signal_seen = sig;
    if (signal_ctx)
        lws_cancel_service(signal_ctx);
}

/* libuv event loop: lws delivers signals through this hook instead. */
static void on_uv_signal(void *handle, int sig)
{
    (void)handle;
    on_signal(sig);
}

int64_t srv_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static srv_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- timers ---------------------------------------------------------- */

static void flush_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_flush);
    srv->flush_armed = false;
    if (srv_engine_flush(srv->engine) != 0)
        srv_error(srv->log, "store: commit failed: %s",
                  srv->store ? srv_store_errmsg(srv->store) : "engine error");
}

void srv_server_store_dirty(srv_server *srv)
{
    if (srv->flush_armed || !srv->ctx || srv->stop_loop)
        return;
    srv->flush_armed = true;
    lws_sul_schedule(srv->ctx, 0, &srv->sul_flush, flush_cb, FLUSH_DELAY_US);
}

static void auth_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_auth);
    srv->auth_armed = false;
    srv_auth_expire(srv);
}

void srv_server_arm_auth_timer(srv_server *srv)
{
    if (srv->auth_armed || !srv->pending_head || !srv->ctx || srv->stop_loop)
        return;
    int64_t due = srv->pending_head->connected_ms + srv->cfg->auth_timeout_ms - srv_mono_ms();
    if (due < 1)
        due = 1;
    srv->auth_armed = true;
    lws_sul_schedule(srv->ctx, 0, &srv->sul_auth, auth_cb, (lws_usec_t)due * 1000);
}

/* STATUS= for systemctl status, every NOTIFY_STATUS_MS (notify.h). */
static void notify_status(srv_server *srv)
{
    int64_t now = srv_mono_ms();
    if (now - srv->notify_status_ms < NOTIFY_STATUS_MS)
        return;
    srv->notify_status_ms = now;
    char status[128];
    snprintf(status, sizeof status, "%zu nodes online, %llu connections, port %d",
             srv->nodes.count, (unsigned long long)srv->m.connections, srv->port);
    srv_notify_status(srv->log, status);
}

/* After a mass disconnect (TRIM_MIN_CLOSED fewer connections than the
 * most seen since the last trim), gives the freed heap back to the OS:
 * glibc keeps it otherwise, and the RSS of a server that once held many
 * nodes would stay at its peak (bench/idle.sh: 0% returned before). */
static void trim_memory(srv_server *srv)
{
    uint64_t now = srv->m.connections;
    if (now > srv->trim_peak)
        srv->trim_peak = now;
    else if (srv->trim_peak - now >= TRIM_MIN_CLOSED) {
        malloc_trim(0);
        srv->trim_peak = now;
    }
}

static void sweep_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_sweep);
    notify_status(srv);
    srv_offline_expire(srv);
    srv_relay_sweep(&srv->relay, srv, srv_mono_ms());
    srv_accept_gate_probe(srv);
    trim_memory(srv);
    lws_sul_schedule(srv->ctx, 0, &srv->sul_sweep, sweep_cb, SWEEP_INTERVAL_US);
}

/* SIGHUP: the reload hooks, from a timer so they run on the loop thread
 * outside any connection's callback (reload.h). */
static void reload_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_reload);
    reload_seen = 0; /* a SIGHUP from now on is another reload */
    if (srv->shutting_down || srv->stop_loop)
        return;
    srv_notify_reloading(srv->log, "reloading (SIGHUP)");
    int failed = srv_reload_run(&srv->reload, srv->log);
    char status[128];
    snprintf(status, sizeof status, "reload %llu: %s", (unsigned long long)srv->reload.reloads,
             failed ? "FAILED (the log says why); serving with the previous state" : "ok");
    srv_notify_ready(srv->log, status);
}

/* Schedules reload_cb when a SIGHUP has arrived (called by the loop). */
static void check_reload(srv_server *srv)
{
    if (reload_seen && !srv->shutting_down && !srv->stop_loop &&
        lws_dll2_is_detached(&srv->sul_reload.list))
        lws_sul_schedule(srv->ctx, 0, &srv->sul_reload, reload_cb, 1);
}

/* libuv: uv_run() only returns once the context is being destroyed; do
 * that from a timer (loop context, outside any connection's callback). */
static void uv_stop_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_uvstop);
    srv_vpool_stop(&srv->vpool); /* no wake-ups of a context being destroyed */
    lws_context_destroy(srv->ctx);
}

/* Ends srv_server_run(). */
static void stop_loop(srv_server *srv)
{
    if (srv->stop_loop)
        return;
    srv->stop_loop = true;
    if (srv->uv)
        lws_sul_schedule(srv->ctx, 0, &srv->sul_uvstop, uv_stop_cb, 1);
    else
        lws_cancel_service(srv->ctx);
}

static void stop_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_stop);
    srv_warn(srv->log, "shutdown: %llu connection(s) did not close in time; dropping them",
             (unsigned long long)srv->m.connections);
    stop_loop(srv);
}

/* ---- shutdown -------------------------------------------------------- */

static void close_going_away(srv_server *srv, srv_conn *c)
{
    srv_conn_close(srv, c, RDV_EC_SHUTTING_DOWN,
                   "the server is stopping; reconnect with backoff",
                   LWS_CLOSE_STATUS_GOINGAWAY);
}

static void close_node(srv_hnode *n, void *user)
{
    close_going_away(user, srv_container_of(n, srv_conn, link.node));
}

/* Draining: closes up to `left` nodes not yet closing per call. */
typedef struct drain_batch {
    srv_server *srv;
    uint32_t left;
} drain_batch;

static void close_some(srv_hnode *n, void *user)
{
    drain_batch *b = user;
    srv_conn *c = srv_container_of(n, srv_conn, link.node);
    if (!b->left || c->close_code)
        return;
    b->left--;
    close_going_away(b->srv, c);
}

/* --drain-window: one batch of nodes every DRAIN_TICK_MS, so that they
 * reconnect to the other instances spread over the window. */
static void drain_cb(lws_sorted_usec_list_t *sul)
{
    srv_server *srv = lws_container_of(sul, srv_server, sul_drain);
    drain_batch b = {srv, srv->drain_batch};
    srv_hmap_each(&srv->nodes, close_some, &b);
    if (b.left == srv->drain_batch)
        return; /* every node is closing: the last CLOSED ends the loop */
    lws_sul_schedule(srv->ctx, 0, &srv->sul_drain, drain_cb,
                     (lws_usec_t)DRAIN_TICK_MS * 1000);
}

static void begin_shutdown(srv_server *srv)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    int64_t window = srv->cfg->drain_window_ms;
    srv_info(srv->log, "signal %d: shutting down, closing %llu connection(s)%s", (int)signal_seen,
             (unsigned long long)srv->m.connections,
             window > 0 ? " spread over --drain-window" : "");
    char status[96];
    snprintf(status, sizeof status, "stopping: closing %llu connection(s)",
             (unsigned long long)srv->m.connections);
    srv_notify_stopping(srv->log, status);
    while (srv->pending_head) {
        srv_conn *c = srv->pending_head;
        srv_auth_forget(srv, c);
        close_going_away(srv, c);
    }
    if (window > 0 && srv->nodes.count > 0) {
        uint64_t ticks = (uint64_t)(window + DRAIN_TICK_MS - 1) / DRAIN_TICK_MS;
        uint64_t batch = (srv->nodes.count + ticks - 1) / ticks;
        srv->drain_batch = (uint32_t)(batch ? batch : 1);
        drain_cb(&srv->sul_drain);
    } else {
        srv_hmap_each(&srv->nodes, close_node, srv);
    }
    if (srv->m.connections == 0) {
        stop_loop(srv);
        return;
    }
    lws_sul_schedule(srv->ctx, 0, &srv->sul_stop, stop_cb,
                     (lws_usec_t)(SHUTDOWN_GRACE_MS + (window > 0 ? window : 0)) * 1000);
}

/* ---- the rendezvous.v1 protocol ---------------------------------------- */

/* Undoes everything a connection holds in the server. Idempotent. */
static void conn_gone(srv_server *srv, srv_conn *c)
{
    if (!c->close_code)
        srv_channel_main_ends(srv, c); /* closed by its node: its channel too */
    srv_channel_gone(srv, c);
    if (!c->close_code && c->vq_head) {
        /* closed by its node: what it sent before still goes out (and
         * nothing more to c) */
        c->close_code = LWS_CLOSE_STATUS_NORMAL;
        srv_vpool_conn_flush(srv, c);
    }
    srv_auth_forget(srv, c);
    srv_presence_detach(srv, c);
    srv_limits_detach(srv, c);
    srv_vpool_conn_gone(srv, c);
    srv_conn_release(c);
    c->state = SRV_CONN_CLOSING;
    if (!c->close_code)
        c->close_code = LWS_CLOSE_STATUS_NORMAL;
    /* after close_code: nothing more can be queued for c */
    srv_relay_conn_gone(&srv->relay, srv, c, SRV_RELAY_END_DISCONNECTED);
    if (srv->shutting_down && srv->m.connections == 0)
        stop_loop(srv);
}

/* True when the upgrade request targets RDV_WS_PATH. */
static bool path_ok(struct lws *wsi)
{
    char uri[64];
    int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    if (n <= 0)
        return false;
    char *q = strchr(uri, '?');
    if (q)
        *q = '\0';
    return !strcmp(uri, RDV_WS_PATH);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    srv_server *srv = server_of(wsi);
    srv_conn *c = user;
    if (!srv)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!path_ok(wsi)) {
            srv_debug(srv->log, "refusing WebSocket upgrade: path is not %s", RDV_WS_PATH);
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND,
                                   "WebSocket endpoint is " RDV_WS_PATH);
            return 1;
        }
        if (!srv_limits_accept(srv, wsi)) {
            lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
                                   srv->shutting_down ? "server shutting down"
                                                      : "connection limit reached");
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        if (!c)
            return -1;
        c->wsi = wsi;
        srv_limits_handshake_end(srv, wsi);
        srv_frame_guard_begin(c);
        srv_keepalive_start(c, srv_mono_ms());
        if (srv_limits_attach(srv, c) != 0 || srv_auth_on_connect(srv, c) != 0) {
            conn_gone(srv, c);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!c)
            return -1;
        /* fragments and unseen bytes are bounded (frame_guard.h); over
         * the bound the data is dropped, c is closing */
        if (!srv_frame_guard_rx(srv, c, len, !lws_remaining_packet_payload(wsi),
                                lws_is_final_fragment(wsi)) &&
            c->close_code)
            return 0;
        return srv_conn_on_receive(srv, c, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && srv_frame_guard_pong(srv, c))
            srv_keepalive_pong(c, srv_mono_ms());
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? srv_conn_on_writeable(srv, c) : -1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c)
            srv_channel_gone(srv, c); /* relay data goes down main from now on */
        return c ? srv_conn_on_peer_close(c) : 0;
    case LWS_CALLBACK_CLOSED:
        if (c)
            conn_gone(srv, c);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        srv_accept_gate_reassert(srv); /* lws resumed the listener on the close */
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (signal_seen && !srv->shutting_down)
            begin_shutdown(srv);
        check_reload(srv);
        if (srv->engine)
            srv_engine_poll(srv->engine); /* results of its threads */
        srv_vpool_drain(srv);             /* and of the verify workers */
        return 0;
    default:
        break;
    }
    return 0;
}

/* The rendezvous.relay.v1 protocol (relay_channel.h): the same handling
 * as rendezvous.v1 for a connection marked as a channel; refused at the
 * upgrade with --relay-channel off. */
static int ws_channel_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                               void *in, size_t len)
{
    srv_server *srv = server_of(wsi);
    if (!srv)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!srv->cfg->relay_channel) {
            srv_debug(srv->log, "refusing a relay channel: --relay-channel off");
            lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
                                   "relay channels are off on this server (--relay-channel off)");
            return 1;
        }
        break;
    case LWS_CALLBACK_ESTABLISHED:
        if (user)
            ((srv_conn *)user)->channel = 1;
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0; /* rendezvous.v1's callback handles the wake-up */
    default:
        break;
    }
    return ws_callback(wsi, reason, user, in, len);
}

/* ---- STUN ------------------------------------------------------------ */

/* The "rdv-stun" raw-file protocol: readiness of an adopted STUN fd. */
static int stun_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    srv_server *srv = server_of(wsi);
    if (!srv)
        return 0;
    int fd = (int)lws_get_socket_fd(wsi);
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* the protocol is in the vhost's table, so a client could name it
         * as a WebSocket subprotocol: never a WebSocket */
        return 1;
    case LWS_CALLBACK_RAW_RX_FILE:
        for (int i = 0; i < srv->n_stun; i++)
            if (srv_stun_server_on_readable(&srv->stun[i], fd) != -EBADF)
                break;
        return 0; /* nonzero would make lws close the socket */
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* lws closes the fd itself: forget it so it is not closed twice */
        for (int i = 0; i < srv->n_stun; i++)
            if (srv_stun_server_release(&srv->stun[i], fd) == 0)
                break;
        return 0;
    default:
        break;
    }
    return 0;
}

/* srv_stun_packet_cb: one debug line per datagram ("stun rx IP PORT
 * in=N out=N reply=BYTES", the sockets as srv_stun_via; reply=0: not
 * answered). */
static void stun_packet(void *user, const struct sockaddr *from, socklen_t fromlen,
                        srv_stun_via in, srv_stun_via out, size_t reply_len)
{
    srv_server *srv = user;
    if (srv->log->level > SRV_LOG_DEBUG)
        return;
    rdv_stun_addr a;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (rdv_stun_addr_from_sockaddr(from, fromlen, &a) != 0)
        memset(&a, 0, sizeof a);
    else
        inet_ntop(a.family == RDV_STUN_FAMILY_IPV4 ? AF_INET : AF_INET6, a.addr, ip, sizeof ip);
    srv_debug(srv->log, "stun rx %s %u in=%d out=%d reply=%zu", ip, (unsigned)a.port, (int)in,
              (int)out, reply_len);
}

/* Opens the STUN responder(s) on the --listen address (before the lws
 * context exists, so a refused port needs no context teardown). Returns 0
 * (also when STUN is off, or could not be opened with default options
 * only: logged, srv->n_stun stays 0) or -1 (logged). */
static int stun_open(srv_server *srv)
{
    const srv_config *cfg = srv->cfg;
    if (!cfg->stun)
        return 0;
    srv_stun_server_config sc;
    memset(&sc, 0, sizeof sc);
    sc.addr = cfg->listen;
    sc.port = (uint16_t)cfg->stun_port;
    sc.alt_port = (uint16_t)cfg->stun_alt_port;
    sc.alt_addr = cfg->stun_alt_address[0] ? cfg->stun_alt_address : NULL;
    sc.cb_packet = stun_packet;
    sc.user_ptr = srv;
    int rc = srv_stun_server_open(&srv->stun[0], &sc);
    if (rc < 0 && cfg->stun_alt_auto && sc.alt_port) {
        /* The automatic alternate port is a convenience: without it nodes
         * cannot tell filtering behaviours apart, but STUN still works. */
        uint16_t alt = sc.alt_port;
        sc.alt_port = 0;
        int rc2 = srv_stun_server_open(&srv->stun[0], &sc);
        if (rc2 == 0) {
            srv_warn(srv->log, "stun: cannot open the alternate UDP port %u (auto) on %s: %s; "
                               "running without RFC 5780 (set --stun-alt-port, or 0)",
                     (unsigned)alt, cfg->listen, strerror(-rc));
            rc = 0;
        }
    }
    if (rc < 0) {
        const char *why = rc == -EINVAL ? "not a usable IP address" : strerror(-rc);
        char owner[128];
        bool known = rc == -EADDRINUSE &&
                     srv_port_owner(true, (uint16_t)cfg->stun_port, owner, sizeof owner);
        if (cfg->stun_explicit) {
            srv_error(srv->log, "stun: cannot open UDP port %d on %s: %s%s%s%s; choose another "
                                "--stun-port, or --stun off",
                      cfg->stun_port, cfg->listen, why, known ? " (held by " : "",
                      known ? owner : "", known ? ")" : "");
            return -1;
        }
        srv_warn(srv->log, "stun: cannot open UDP port %d on %s: %s%s%s%s; running WITHOUT STUN: "
                           "nodes cannot learn their public address or NAT type from this "
                           "server (stop that process, choose another --stun-port, or --stun "
                           "off)",
                 cfg->stun_port, cfg->listen, why, known ? " (held by " : "",
                 known ? owner : "", known ? ")" : "");
        return 0;
    }
    srv->n_stun = 1;
    const srv_stun_server *s0 = &srv->stun[0];
    if (s0->family == AF_INET6 && s0->wildcard) {
        /* --listen :: serves IPv4 too (dual stack): so does STUN */
        sc.addr = "0.0.0.0";
        sc.port = s0->bound[SRV_STUN_VIA_PRIMARY].port;
        sc.alt_port = s0->rcfg.alt_port;
        rc = srv_stun_server_open(&srv->stun[1], &sc);
        if (rc == 0)
            srv->n_stun = 2;
        else
            srv_warn(srv->log, "stun: cannot open UDP port %u on 0.0.0.0: %s; IPv4 clients get "
                               "no STUN answers",
                     (unsigned)sc.port, strerror(-rc));
    }
    return 0;
}

/* Hands the open STUN fds to the lws loop as raw files of "rdv-stun".
 * Returns 0 or -1 (logged). */
static int stun_adopt(srv_server *srv)
{
    for (int i = 0; i < srv->n_stun; i++) {
        for (int v = 0; v < SRV_STUN_VIA__COUNT; v++) {
            if (srv->stun[i].fd[v] < 0)
                continue;
            lws_sock_file_fd_type d;
            memset(&d, 0, sizeof d);
            d.filefd = srv->stun[i].fd[v];
            /* on failure the fd stays ours: srv_server_destroy closes it */
            if (!srv->vhost || !lws_adopt_descriptor_vhost(srv->vhost, LWS_ADOPT_RAW_FILE_DESC,
                                                           d, "rdv-stun", NULL)) {
                srv_error(srv->log, "stun: cannot add the UDP socket to the event loop");
                return -1;
            }
        }
    }
    return 0;
}

/* Logs "stun on udp://ADDR:PORT[, udp://0.0.0.0:PORT][ (RFC 5780: ...)]"
 * or "stun off", right after the ready line. */
static void stun_log_ready(srv_server *srv)
{
    if (srv->n_stun == 0) {
        srv_notice(srv->log, "stun off");
        return;
    }
    char line[512];
    size_t n = 0;
    n += (size_t)snprintf(line + n, sizeof line - n, "stun on");
    for (int i = 0; i < srv->n_stun && n < sizeof line; i++) {
        const srv_stun_server *st = &srv->stun[i];
        const rdv_stun_addr *b = &st->bound[SRV_STUN_VIA_PRIMARY];
        char ip[INET6_ADDRSTRLEN] = "?";
        inet_ntop(st->family, b->addr, ip, sizeof ip);
        n += (size_t)snprintf(line + n, sizeof line - n, "%s udp://%s%s%s:%u", i ? "," : "",
                              st->family == AF_INET6 ? "[" : "", ip,
                              st->family == AF_INET6 ? "]" : "", (unsigned)b->port);
    }
    const srv_stun_server *s0 = &srv->stun[0];
    if (n < sizeof line && (s0->rcfg.alt_port || s0->rcfg.has_alt_addr)) {
        char alt[INET6_ADDRSTRLEN] = "";
        if (s0->rcfg.has_alt_addr)
            inet_ntop(s0->family, s0->rcfg.alt_addr.addr, alt, sizeof alt);
        n += (size_t)snprintf(line + n, sizeof line - n, " (RFC 5780: alternate port %u%s%s)",
                              (unsigned)s0->rcfg.alt_port,
                              alt[0] ? ", alternate address " : "", alt);
    }
    srv_notice(srv->log, "%s", line);
}

/* ---- the engine (engine.h) ------------------------------------------- */

static void on_remote_message(void *user, const srv_queued_msg *m)
{
    srv_offline_arrived(user, m);
}

/* The shared store answers again: nodes here are recorded again, and the
 * admission lists read again (changes may have been missed meanwhile). */
static void on_engine_back(void *user)
{
    srv_presence_rejoin(user);
    srv_admission_reload(user);
}

/* The engine: Redis with --redis (several instances share it), else the
 * SQLite store alone. Returns 0 or -1 (logged). */
static int engine_open(srv_server *srv)
{
    srv_engine_events ev = {
        .user = srv,
        .deliver = on_remote_message,
        .replaced = srv_presence_replaced,
        .presence = srv_presence_remote,
        .reconnected = on_engine_back,
        .relay_in = srv_relay_bus_in,
        .admission = srv_admission_bus_in,
    };
    if (srv->cfg->redis_url[0]) {
        char err[256] = "";
        srv->engine = srv_engine_redis_new(srv->cfg->redis_url, srv->ctx, &ev, err, sizeof err);
        if (!srv->engine) {
            srv_error(srv->log, "--redis %s: %s", srv->cfg->redis_url, err);
            return -1;
        }
        /* announce ready once Redis answers (a load balancer may send nodes
         * at once); a Redis that is down does not stop the start: the
         * instance serves alone until it answers (README) */
        int64_t until = srv_mono_ms() + REDIS_START_WAIT_MS;
        while (!srv_engine_healthy(srv->engine) && srv_mono_ms() < until) {
            struct timespec d = {0, 10 * 1000000L};
            nanosleep(&d, NULL);
        }
        if (!srv_engine_healthy(srv->engine))
            srv_warn(srv->log, "--redis %s does not answer yet; serving alone (nodes here only, "
                               "/healthz 503) until it does",
                     srv->cfg->redis_url);
    } else {
        srv->engine = srv_engine_sqlite_new(srv->store, &ev);
        if (!srv->engine) {
            srv_error(srv->log, "out of memory");
            return -1;
        }
    }
    srv_engine_status st;
    srv_engine_status_get(srv->engine, &st);
    snprintf(srv->instance_id, sizeof srv->instance_id, "%s", st.instance_id);
    if (st.instance_id[0])
        srv_info(srv->log, "engine %s, instance %s", st.engine, st.instance_id);
    return 0;
}

/* ---- start / run / destroy -------------------------------------------- */

/* True when addr is an IPv4 literal (the listener then binds IPv4 only). */
static bool is_ipv4(const char *addr)
{
    struct in_addr a;
    return inet_pton(AF_INET, addr, &a) == 1;
}

/* Whether to ask lws for its libuv event loop (--event-loop uv). lws 4.1.6
 * loads it as a plugin (Debian: libwebsockets-evlib-uv); without it the
 * server falls back to poll(). */
static bool use_uv(const srv_server *srv)
{
    if (srv->cfg->event_loop_poll)
        return false;
    void *plugin = dlopen(UV_PLUGIN, RTLD_LAZY | RTLD_LOCAL);
    if (!plugin) {
        srv_info(srv->log, "%s not found (Debian package libwebsockets-evlib-uv); using the "
                           "poll() event loop",
                 UV_PLUGIN);
        return false;
    }
    dlclose(plugin);
    return true;
}

static struct lws_context *create_context(srv_server *srv, bool uv)
{
    const srv_config *cfg = srv->cfg;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->listen;
    info.pprotocols = NULL;
    info.protocols = srv->protocols;
    info.user = srv;
    /* lws never reads more than this at once: room for a whole rx chunk */
    size_t serv_buf = cfg->rx_buffer_size + LWS_PRE;
    /* and for a relay channel's (one buffer per service thread, not per
     * connection: lws reads into it, then copies to the connection's) */
    if (serv_buf < SRV_RELAY_CHANNEL_RX_BUFFER + LWS_PRE)
        serv_buf = SRV_RELAY_CHANNEL_RX_BUFFER + LWS_PRE;
    /* no lws validity timers: without a policy lws uses its default
     * (ping at 300 s), and every pong would re-arm a timer at the end of
     * a list of all connections' (keepalive.h) */
    info.retry_and_idle_policy = &srv->no_validity;
    info.pt_serv_buf_size = (unsigned int)(serv_buf > PT_SERV_BUF_MIN ? serv_buf
                                                                      : PT_SERV_BUF_MIN);
    info.max_http_header_data = HTTP_HEADER_DATA;
    info.max_http_header_pool = HTTP_HEADER_POOL;
    /* the HTTP upgrade (and a TLS handshake) must finish within
     * --handshake-timeout: lws counts whole seconds */
    unsigned hs_secs = (unsigned)((cfg->handshake_timeout_ms + 999) / 1000);
    info.timeout_secs = hs_secs;
    info.timeout_secs_ah_idle = hs_secs;
    info.gid = -1;
    info.uid = -1;
    info.vhost_name = "rendezvous";
    info.server_string = "rendezvousd";
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (is_ipv4(cfg->listen))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (srv->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    if (uv) {
        info.options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
        info.signal_cb = on_uv_signal;
        info.pcontext = &srv->ctx;
    }
    return lws_create_context(&info);
}

int srv_server_start(srv_server *srv)
{
    const srv_config *cfg = srv->cfg;
    srv->started_ms = rdv_now_ms();
    srv->started_mono_ms = srv_mono_ms();
    srv->tls = cfg->tls_cert[0] != '\0';
    if (srv_presence_init(srv) != 0 ||
        srv_hmap_init(&srv->ips, 16,
                      (ptrdiff_t)offsetof(srv_ip_entry, addr) -
                          (ptrdiff_t)offsetof(srv_ip_entry, node)) != 0) {
        srv_error(srv->log, "out of memory");
        return -1;
    }
    srv_relay_limits rl = {
        .max_payload = cfg->relay_max_payload,
        .max_sessions = cfg->relay_max_sessions,
        .rate = cfg->relay_rate,
        .global_rate = cfg->relay_global_rate,
        .quota = cfg->relay_quota,
        .idle_timeout_ms = cfg->relay_idle_timeout_ms,
        .open_timeout_ms = cfg->offline_ttl_ms,
        .queue_threshold = cfg->send_queue_max / 2,
    };
    srv->tx_big = malloc(LWS_PRE + SRV_TX_BIG); /* NULL: large messages queue */
    if (srv_relay_init(&srv->relay, &rl) != 0 || srv_channel_init(srv) != 0) {
        srv_error(srv->log, "out of memory");
        return -1;
    }

    memset(srv->protocols, 0, sizeof srv->protocols);
    srv->protocols[0].name = "http";
    srv->protocols[0].callback = srv_http_callback;
    srv->protocols[1].name = RDV_WS_SUBPROTOCOL;
    srv->protocols[1].callback = ws_callback;
    srv->protocols[1].per_session_data_size = sizeof(srv_conn);
    srv->protocols[1].rx_buffer_size = cfg->rx_buffer_size;
    srv->protocols[1].tx_packet_size = cfg->max_message_bytes + 64;
    srv->protocols[2].name = "rdv-stun";
    srv->protocols[2].callback = stun_callback;
    srv->protocols[3].name = SRV_RELAY_CHANNEL_SUBPROTOCOL;
    srv->protocols[3].callback = ws_channel_callback;
    srv->protocols[3].per_session_data_size = sizeof(srv_conn);
    srv->protocols[3].rx_buffer_size = SRV_RELAY_CHANNEL_RX_BUFFER;
    srv->protocols[3].tx_packet_size = cfg->max_message_bytes + 64;

    int lws_levels = LLL_ERR | LLL_WARN;
    lws_set_log_level(lws_levels,
                      cfg->log.json ? srv_log_lws_emit_json : srv_log_lws_emit_text);

    if (stun_open(srv) != 0)
        return -1;
    srv->uv = use_uv(srv);
    srv->ctx = create_context(srv, srv->uv);
    if (!srv->ctx && srv->uv) {
        srv_debug(srv->log, "cannot start with the libuv event loop; retrying with poll()");
        srv->uv = false;
        srv->ctx = create_context(srv, false);
    }
    if (!srv->ctx) {
        srv_error(srv->log, "cannot listen on %s port %d%s (the lines above say why)",
                  cfg->listen, cfg->port, srv->tls ? " with TLS" : "");
        return -1;
    }
    signal_ctx = srv->ctx;
    if (srv_vpool_start(&srv->vpool, cfg->verify_threads, cfg->verify_inline, srv->ctx) != 0)
        srv_warn(srv->log, "cannot start signature verification threads; verifying on the "
                           "event loop");
    else
        srv_info(srv->log, "verifying signatures on %d thread(s)", srv->vpool.nthreads);
    if (engine_open(srv) != 0 || srv_admission_start(srv) != 0)
        return -1;
    if (!srv->uv) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    /* SIGHUP is ours with either loop (no exit on a reload request) */
    struct sigaction hup;
    memset(&hup, 0, sizeof hup);
    hup.sa_handler = on_signal;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    srv->vhost = lws_get_vhost_by_name(srv->ctx, "rendezvous");
    /* SIGHUP reads --tls-cert / --tls-key again (tls.h) */
    if (srv->tls && srv_reload_register(&srv->reload, "tls", srv_tls_reload, srv) != 0) {
        srv_error(srv->log, "tls: cannot register the certificate reload");
        return -1;
    }
    srv->port = srv->vhost ? lws_get_vhost_listen_port(srv->vhost) : cfg->port;
    srv_accept_gate_init(srv);
    lws_sul_schedule(srv->ctx, 0, &srv->sul_sweep, sweep_cb, SWEEP_INTERVAL_US);
    srv_conn_sweep_start(srv);
    if (stun_adopt(srv) != 0 || srv_operator_open(srv) != 0)
        return -1;
    char host[80];
    if (strchr(cfg->listen, ':'))
        snprintf(host, sizeof host, "[%s]", cfg->listen);
    else
        snprintf(host, sizeof host, "%s", cfg->listen);
    srv_notice(srv->log, "listening on %s://%s:%d%s (name %s, %s %s, %s loop)",
             srv->tls ? "wss" : "ws", host, srv->port, RDV_WS_PATH, cfg->name,
             cfg->redis_url[0] ? "redis" : "db", cfg->redis_url[0] ? cfg->redis_url : cfg->db_path,
             srv->uv ? "libuv" : "poll");
    stun_log_ready(srv);
    return 0;
}

int srv_server_run(srv_server *srv)
{
    while (!srv->stop_loop) {
        if (lws_service(srv->ctx, 0) < 0)
            break;
        if (signal_seen && !srv->shutting_down)
            begin_shutdown(srv);
        check_reload(srv);
    }
    return 0;
}

void srv_server_destroy(srv_server *srv)
{
    signal_ctx = NULL;
    if (srv->ctx) {
        srv->stop_loop = true; /* no new timers while lws closes what is left */
        lws_sul_cancel(&srv->sul_flush);
        lws_sul_cancel(&srv->sul_auth);
        lws_sul_cancel(&srv->sul_sweep);
        srv_conn_sweep_stop(srv);
        lws_sul_cancel(&srv->sul_stop);
        lws_sul_cancel(&srv->sul_drain);
        lws_sul_cancel(&srv->sul_uvstop);
        lws_sul_cancel(&srv->sul_reload);
        srv_accept_gate_stop(srv);
        if (srv->engine)
            srv_engine_detach(srv->engine); /* the context is going: no more wake-ups */
        srv_vpool_stop(&srv->vpool);
        lws_context_destroy(srv->ctx);
        srv->ctx = NULL;
    }
    srv_vpool_stop(&srv->vpool);
    srv_vpool_free(&srv->vpool); /* every connection is gone: the jobs left */
    srv_engine_destroy(srv->engine);
    srv->engine = NULL;
    /* lws closed (and released) every fd it adopted; close the rest */
    for (int i = 0; i < srv->n_stun; i++)
        srv_stun_server_close(&srv->stun[i]);
    srv->n_stun = 0;
    srv_relay_free(&srv->relay);
    srv_channel_free(srv);
    free(srv->tx_big);
    srv->tx_big = NULL;
    srv_presence_free(srv);
    srv_operator_free(srv);
    srv_hmap_free(&srv->ips);
    srv_admission_free(&srv->adm);
}
