/* server.h - the server context: the one place holding mutable state
 * (configuration, store, lws context, node map, watch index, per-IP
 * counters, timers, metrics), and the event loop around libwebsockets.
 */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "rendezvous/accept_gate.h"
#include "rendezvous/admission.h"
#include "rendezvous/config.h"
#include "rendezvous/conn.h"
#include "rendezvous/engine.h"
#include "rendezvous/conn_sweep.h"
#include "rendezvous/vpool.h"
#include "rendezvous/hmap.h"
#include "rendezvous/metrics.h"
#include "rendezvous/relay.h"
#include "rendezvous/reload.h"
#include "rendezvous/store.h"
#include "rendezvous/stun_responder.h"

/* STUN responders: one for the --listen address's family, and with
 * --listen :: a second one on 0.0.0.0 (same ports) so IPv4 clients of a
 * dual-stack server get answers too. */
#define SRV_SERVER_STUN_MAX 2

/* Largest message conn.c writes directly (a relay frame of the largest
 * payload with its headers fits); one buffer per server, not per node. */
#define SRV_TX_BIG 65600

typedef struct srv_server {
    const srv_config *cfg;
    const srv_logger *log;
    srv_store *store;                /* the SQLite file (sqlite engine) */
    srv_engine *engine;              /* presence, offline queue, other instances */
    uint32_t next_serial;            /* srv_conn.serial of the next hello */
    char instance_id[33];            /* this instance in the cluster ("" alone) */
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[5]; /* http, rendezvous.v1, rdv-stun,
                                        * rendezvous.relay.v1, terminator */
    struct lws_vhost *op_vhost;      /* the operator's listener (operator.h), or NULL */
    struct lws_protocols op_protocols[2]; /* its table: http, terminator */
    int op_port;                     /* its actual port (0: none) */
    struct srv_admin *admin;         /* admin API tokens (admin.c); NULL: off */
    struct srv_audit *audit;         /* the audit log's memory copy (audit.c) */
    struct srv_policy *policy;       /* relay/signaling policy (policy.h); NULL: none */
    int port;                        /* actual listening port */
    bool tls;
    void *tls_ctx;                   /* the wss:// listener's SSL_CTX (tls.h) */
    bool uv;                         /* libuv event loop in use */
    int64_t started_ms;              /* wall clock at start */
    int64_t started_mono_ms;         /* monotonic ms at start (uptime) */
    srv_metrics m;
    srv_hmap nodes;                  /* node ID -> srv_conn (AUTHED) */
    srv_hmap watches;                /* node ID -> srv_watch_entry */
    srv_hmap ips;                    /* address -> srv_ip_entry */
    srv_relay relay;                 /* relay sessions (relay.c) */
    lws_retry_bo_t no_validity;      /* all zero: lws' own per-connection
                                      * ping / idle timers off (keepalive.h) */
    srv_hmap channels;               /* node ID -> its relay channel
                                      * (relay_channel.h) */
    srv_vpool vpool;                 /* signature verification threads (vpool.h) */
    uint64_t trim_peak;              /* most connections since the last
                                      * malloc_trim (server.c) */
    srv_admission adm;               /* admission mode, fleet keys, lists (admission.h) */
    srv_accept_gate gate;            /* pauses accepting near the fd limit */
    srv_conn_sweep conn_sweep;       /* pings, idle close, frame guard, in
                                      * slices (conn_sweep.h) */
    srv_stun_server stun[SRV_SERVER_STUN_MAX]; /* UDP STUN responders; their
                                      * fds are adopted into the lws loop */
    int n_stun;                      /* how many of stun[] are open (0: off) */
    srv_conn *pending_head, *pending_tail; /* awaiting hello, oldest first */
    lws_sorted_usec_list_t sul_flush;    /* store batch commit */
    lws_sorted_usec_list_t sul_auth;     /* auth deadline of pending_head */
    lws_sorted_usec_list_t sul_sweep;    /* offline-queue expiry */
    lws_sorted_usec_list_t sul_stop;     /* shutdown deadline */
    lws_sorted_usec_list_t sul_uvstop;   /* libuv: leave the loop */
    lws_sorted_usec_list_t sul_drain;    /* --drain-window: next batch */
    lws_sorted_usec_list_t sul_reload;   /* SIGHUP: run the reload hooks */
    int64_t notify_status_ms;        /* last systemd STATUS= (notify.h) */
    srv_reload reload;               /* SIGHUP hooks (reload.h); the caller
                                      * initialises it before start */
    uint32_t drain_batch;                /* nodes closed per drain tick */
    int64_t handshake_log_ms;        /* last "refusing connections" line */
    uint8_t *tx_big;                 /* LWS_PRE + SRV_TX_BIG bytes: direct writes
                                      * of large messages (conn.c); NULL: queue */
    bool flush_armed;
    bool auth_armed;
    bool shutting_down;
    bool stop_loop;
} srv_server;

/* Creates the lws context and listener for srv (cfg, log, store set by
 * the caller), opens the STUN socket(s) (--stun) and logs the ready line
 * "listening on ws://ADDR:PORT/v1", then "stun on udp://ADDR:PORT" or
 * "stun off". Returns 0 or -1 (logged). */
int srv_server_start(srv_server *srv);

/* Runs the loop until SIGTERM/SIGINT has closed every connection (or the
 * shutdown deadline passed). Returns 0. */
int srv_server_run(srv_server *srv);

/* Destroys the lws context (closing what is left, the adopted STUN fds
 * included), closes STUN fds lws never took, and frees the maps. */
void srv_server_destroy(srv_server *srv);

/* Marks the store dirty: commits its batch within a few milliseconds. */
void srv_server_store_dirty(srv_server *srv);

/* (Re)arms the auth-deadline timer for the oldest pending connection. */
void srv_server_arm_auth_timer(srv_server *srv);

/* Monotonic milliseconds (for deadlines and token buckets). */
int64_t srv_mono_ms(void);

#endif
