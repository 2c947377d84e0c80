/* accept_gate.c - pause the listener near the open-file limit (see
 * accept_gate.h). */
#include "rendezvous/accept_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rendezvous/log.h"
#include "rendezvous/server.h"

static int64_t read_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > (rlim_t)INT32_MAX)
        return INT32_MAX;
    return (int64_t)rl.rlim_cur;
}

/* The first descriptor number of the reserve. */
static int64_t reserve_start(const srv_accept_gate *g)
{
    return g->limit > SRV_ACCEPT_GATE_RESERVE ? g->limit - SRV_ACCEPT_GATE_RESERVE : 0;
}

/* True when a new descriptor would land in the reserve (or none is free):
 * asks the kernel for its lowest free number with F_DUPFD. */
static bool near_limit(srv_accept_gate *g)
{
    g->limit = read_limit();
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return errno == EMFILE || errno == ENFILE;
    bool near = fd >= reserve_start(g);
    close(fd);
    return near;
}

static void log_pause(srv_server *srv, int fd)
{
    srv_accept_gate *g = &srv->gate;
    int64_t now = srv_mono_ms();
    if (g->last_log_ms && now - g->last_log_ms < SRV_ACCEPT_GATE_LOG_MS)
        return;
    g->last_log_ms = now;
    srv_warn(srv->log,
             "out of file descriptors (open-file limit %lld, the last %d kept free%s): new "
             "connections wait in the listen backlog until descriptors free up; %llu refused "
             "since the last report, %llu in all. Raise the limit: systemd LimitNOFILE, "
             "ulimit -Hn, or docker --ulimit nofile (README: Operations, Open files)",
             (long long)g->limit, SRV_ACCEPT_GATE_RESERVE,
             fd >= 0 ? "; a new connection reached them" : "",
             (unsigned long long)g->refused_since_log, (unsigned long long)g->refused_total);
    g->refused_since_log = 0;
}

/* Applies the listener's wanted state: polling unless the fd reserve or
 * a full --accept-batch in this loop turn stopped it. */
static void apply(srv_accept_gate *g)
{
    bool on = !g->paused && !g->turn_paused;
    if (!g->listen_wsi)
        return;
    /* lws resumes the listener by itself when a socket closes, without
     * updating the flow-control state this call keeps: set both ways so
     * the wanted state is always applied */
    lws_rx_flow_control(g->listen_wsi, !on);
    lws_rx_flow_control(g->listen_wsi, on);
}

static void probe_cb(lws_sorted_usec_list_t *sul)
{
    srv_accept_gate *g = lws_container_of(sul, srv_accept_gate, sul);
    srv_server *srv = lws_container_of(g, srv_server, gate);
    g->timer_armed = false;
    if (!g->paused || srv->stop_loop)
        return;
    if (near_limit(g)) {
        g->timer_armed = true;
        lws_sul_schedule(srv->ctx, 0, &g->sul, probe_cb,
                         (lws_usec_t)SRV_ACCEPT_GATE_PROBE_MS * 1000);
        return;
    }
    g->paused = false;
    apply(g);
    srv_info(srv->log, "file descriptors available again; accepting new connections");
}

static void pause_listener(srv_server *srv, int fd)
{
    srv_accept_gate *g = &srv->gate;
    if (!g->paused) {
        g->paused = true;
        g->pauses_total++;
    }
    apply(g); /* again: lws may have resumed it meanwhile */
    log_pause(srv, fd);
    if (!g->timer_armed && srv->ctx && !srv->stop_loop) {
        g->timer_armed = true;
        lws_sul_schedule(srv->ctx, 0, &g->sul, probe_cb,
                         (lws_usec_t)SRV_ACCEPT_GATE_PROBE_MS * 1000);
    }
}

void srv_accept_gate_init(srv_server *srv)
{
    srv->gate.limit = read_limit();
}

/* The next loop turn: a new batch of accepts. */
static void turn_cb(lws_sorted_usec_list_t *sul)
{
    srv_accept_gate *g = lws_container_of(sul, srv_accept_gate, sul_turn);
    srv_server *srv = lws_container_of(g, srv_server, gate);
    g->turn_accepts = 0;
    if (!g->turn_paused)
        return;
    g->turn_paused = false;
    if (!srv->stop_loop)
        apply(g);
}

/* Counts an accept in this turn; at --accept-batch stops the listener
 * until the next turn. The first accept of a turn arms the timer that
 * starts the next one. */
static void batch_count(srv_server *srv)
{
    srv_accept_gate *g = &srv->gate;
    int batch = srv->cfg->accept_batch;
    if (batch <= 0 || !srv->ctx || srv->stop_loop)
        return;
    if (g->turn_accepts++ == 0)
        lws_sul_schedule(srv->ctx, 0, &g->sul_turn, turn_cb, 0);
    if (g->turn_accepts < (uint32_t)batch)
        return;
    if (!g->turn_paused) {
        g->turn_paused = true;
        g->turn_pauses_total++;
    }
    apply(g);
}

bool srv_accept_gate_on_accept(srv_server *srv, struct lws *listen_wsi, int fd)
{
    srv_accept_gate *g = &srv->gate;
    g->listen_wsi = listen_wsi;
    if (fd < reserve_start(g)) {
        g->paused = false; /* lws resumed the listener when a socket closed */
        batch_count(srv);
        return true;
    }
    /* the limit may have been raised (prlimit) since it was read */
    g->limit = read_limit();
    if (fd < reserve_start(g)) {
        batch_count(srv);
        return true;
    }
    g->refused_total++;
    g->refused_since_log++;
    srv->m.connections_refused++;
    pause_listener(srv, fd);
    return false;
}

void srv_accept_gate_reassert(srv_server *srv)
{
    srv_accept_gate *g = &srv->gate;
    if ((g->paused || g->turn_paused) && !srv->stop_loop)
        apply(g);
}

void srv_accept_gate_probe(srv_server *srv)
{
    srv_accept_gate *g = &srv->gate;
    if (g->paused || !g->listen_wsi || !near_limit(g))
        return;
    pause_listener(srv, -1);
}

void srv_accept_gate_stop(srv_server *srv)
{
    lws_sul_cancel(&srv->gate.sul);
    lws_sul_cancel(&srv->gate.sul_turn);
    srv->gate.timer_armed = false;
}
