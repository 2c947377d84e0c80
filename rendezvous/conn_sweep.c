/* conn_sweep.c - the per-connection checks in slices (see conn_sweep.h). */
#include "rendezvous/conn_sweep.h"

#include "rendezvous/conn.h"
#include "rendezvous/frame_guard.h"
#include "rendezvous/keepalive.h"
#include "rendezvous/server.h"

enum { TICKS_PER_PASS = SRV_CONN_SWEEP_PASS_MS / SRV_CONN_SWEEP_TICK_MS };

typedef struct visit_ctx {
    srv_server *srv;
    int64_t now;
    int64_t decay;  /* the frame guard's allowance since a connection's last check */
    bool guard;     /* main connections: the frame guard's check too */
} visit_ctx;

static void visit(srv_conn *c, const visit_ctx *v)
{
    if (v->guard)
        srv_frame_guard_check(v->srv, c, v->decay);
    srv_keepalive_check(v->srv, c, v->now);
}

static void visit_node(srv_hnode *n, void *user)
{
    visit(srv_container_of(n, srv_conn, link.node), user);
}

static void tick_cb(lws_sorted_usec_list_t *sul);

static void schedule(srv_server *srv, srv_conn_sweep *w)
{
    w->due_ms = srv_mono_ms() + SRV_CONN_SWEEP_TICK_MS;
    lws_sul_schedule(srv->ctx, 0, &w->sul, tick_cb,
                     (lws_usec_t)SRV_CONN_SWEEP_TICK_MS * LWS_US_PER_MS);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    srv_conn_sweep *w = lws_container_of(sul, srv_conn_sweep, sul);
    srv_server *srv = lws_container_of(w, srv_server, conn_sweep);
    int64_t now = srv_mono_ms();
    w->late_ms = now > w->due_ms ? now - w->due_ms : 0;
    srv_loop_lag_note(&w->lag, w->due_ms, now);
    /* a connection was last visited about one pass ago */
    int64_t passes = (w->last_pass_ms + SRV_CONN_SWEEP_PASS_MS / 2) / SRV_CONN_SWEEP_PASS_MS;
    visit_ctx v = {srv, now, SRV_FRAME_GUARD_DECAY_BYTES * (passes < 1 ? 1 : passes), true};
    if (w->ticks == 0) { /* a pass begins */
        w->pass_ms = now;
        w->map = 0;
        w->bucket = 0;
        int n = 0;
        for (srv_conn *c = srv->pending_head; c && n < SRV_CONN_SWEEP_PER_TICK; n++) {
            srv_conn *next = c->link.pending.next; /* c may close, not leave the list */
            visit(c, &v);
            c = next;
        }
    }
    /* this tick's slice: an even share of the pass, within the cap */
    size_t total = srv->nodes.count + srv->channels.count;
    size_t left = (total + TICKS_PER_PASS - 1) / TICKS_PER_PASS;
    left = left < 1 ? 1 : left > SRV_CONN_SWEEP_PER_TICK ? SRV_CONN_SWEEP_PER_TICK : left;
    while (w->map < 2 && left > 0) {
        srv_hmap *m = w->map == 0 ? &srv->nodes : &srv->channels;
        v.guard = w->map == 0;
        size_t got = srv_hmap_each_from(m, &w->bucket, left, visit_node, &v);
        left = got >= left ? 0 : left - got;
        if (w->bucket == 0) /* this map is done */
            w->map++;
    }
    if (++w->ticks >= TICKS_PER_PASS && w->map == 2) { /* the pass is over */
        w->last_pass_ms = now - w->pass_ms + SRV_CONN_SWEEP_TICK_MS;
        w->ticks = 0;
    }
    schedule(srv, w);
}

int64_t srv_conn_sweep_behind_ms(const srv_conn_sweep *w, int64_t now)
{
    int64_t overdue = w->due_ms && now > w->due_ms ? now - w->due_ms : 0;
    return overdue > w->late_ms ? overdue : w->late_ms;
}

void srv_conn_sweep_start(srv_server *srv)
{
    srv_conn_sweep *w = &srv->conn_sweep;
    w->bucket = 0;
    w->map = 0;
    w->ticks = 0;
    w->late_ms = 0;
    w->last_pass_ms = SRV_CONN_SWEEP_PASS_MS;
    w->lag = (srv_loop_lag){.window_ms = srv_mono_ms()};
    schedule(srv, w);
}

void srv_conn_sweep_stop(srv_server *srv)
{
    lws_sul_cancel(&srv->conn_sweep.sul);
}
