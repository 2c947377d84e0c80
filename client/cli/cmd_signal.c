/* cmd_signal.c - the signaling and presence commands of rdv: `lookup`
 * (is each node online? one answer), `watch` (presence changes until ^C),
 * `offer` (a signed offer, then the verified answer) and `listen` (answer
 * offers, print what arrives): a two-terminal demo of the exchange. The
 * client runs in embedded mode: one poll() loop here.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

static void iso_time(int64_t ms, char out[32])
{
    if (ms <= 0) {
        strcpy(out, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_peer(const char *event, const rdv_peer *p, int json)
{
    if (json) {
        printf("{\"event\":\"%s\",\"nodeID\":\"%s\",\"online\":%s,\"lastSeen\":%lld,"
               "\"natType\":\"%s\"}\n",
               event, p->node_id, p->online ? "true" : "false", (long long)p->last_seen,
               rdv_nat_type_name(p->nat_type));
    } else {
        char ts[32];
        iso_time(p->last_seen, ts);
        printf("%s %s nat=%s lastSeen=%s\n", p->node_id, p->online ? "online" : "offline",
               rdv_nat_type_name(p->nat_type), ts);
    }
    fflush(stdout);
}

static void print_info_json(const rdv_connection_info *i)
{
    printf("{\"publicIP\":\"%s\",\"publicPort\":%u,\"localIP\":\"%s\",\"localPort\":%u,"
           "\"natType\":\"%s\"",
           i->public_ip, i->public_port, i->local_ip, i->local_port,
           rdv_nat_type_name(i->nat_type));
    if (i->wg_public_key[0])
        printf(",\"wgPublicKey\":\"%s\"", i->wg_public_key);
    printf("}");
}

static void print_session(const char *event, const rdv_session_msg *m, int json)
{
    if (json) {
        printf("{\"event\":\"%s\",\"fromNodeID\":\"%s\",\"sessionID\":\"%s\","
               "\"timestamp\":%lld,\"connectionInfo\":",
               event, m->from_node_id, m->session_id, (long long)m->timestamp);
        print_info_json(&m->info);
        printf("}\n");
    } else {
        printf("%s from %s session %s: public %s:%u local %s:%u nat %s%s%s\n", event,
               m->from_node_id, m->session_id, m->info.public_ip, m->info.public_port,
               m->info.local_ip, m->info.local_port, rdv_nat_type_name(m->info.nat_type),
               m->info.wg_public_key[0] ? " wg " : "", m->info.wg_public_key);
    }
    fflush(stdout);
}

struct app {
    enum rdv_cli_signal_cmd cmd;
    struct cli_opts *o;
    rdv_client *c;
    int done;          /* leave the loop */
    int status;        /* exit status when done */
    int sent;          /* lookup/offer sent */
    char request_id[RDV_REQUEST_ID_LEN + 1];
    char session[RDV_SESSION_ID_LEN + 1];
    long events;       /* watch: changes; listen: answers */
    char last_conn_err[400]; /* the connection error printed last */
};

static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    g_signal = sig;
}

static const char *cmd_name(enum rdv_cli_signal_cmd c)
{
    static const char *const n[] = {"lookup", "watch", "offer", "listen"};
    return n[c];
}

/* Our connectionInfo: flags, with the observed address as the default
 * public IP. */
static void my_info(struct app *a, rdv_connection_info *ci)
{
    *ci = a->o->info;
    if (!a->o->public_ip_set) {
        rdv_client_info info;
        if (rdv_client_get_info(a->c, &info) == 0 && info.observed_ip[0])
            snprintf(ci->public_ip, sizeof(ci->public_ip), "%s", info.observed_ip);
    }
}

static void fail(struct app *a, const char *what, int err)
{
    fprintf(stderr, "rdv %s: %s: %s\n", cmd_name(a->cmd), what, rdv_strerror(err));
    a->status = 1;
    a->done = 1;
}

static void on_state(rdv_client *c, rdv_state st, void *u)
{
    struct app *a = u;
    if (st == RDV_STATE_FAILED) {
        rdv_cli_print_failed(cmd_name(a->cmd), c);
        a->status = 1;
        a->done = 1;
        return;
    }
    if (st != RDV_STATE_AUTHENTICATED)
        return;
    if ((a->cmd == RDV_CLI_WATCH || a->cmd == RDV_CLI_LISTEN) && !a->o->json) {
        rdv_client_info info;
        if (rdv_client_get_info(c, &info) == 0)
            fprintf(stderr, "rdv %s: connected as %s (seen as %s:%u)\n", cmd_name(a->cmd),
                    info.node_id, info.observed_ip, info.observed_port);
    }
    if (a->sent)
        return;
    if (a->cmd == RDV_CLI_LOOKUP) {
        int rc = rdv_client_lookup(c, a->o->ids, (size_t)a->o->nids, a->request_id);
        if (rc != 0)
            fail(a, "lookup", rc);
        a->sent = 1;
    } else if (a->cmd == RDV_CLI_OFFER) {
        rdv_connection_info ci;
        my_info(a, &ci);
        int rc = rdv_client_send_offer(c, a->o->ids[0], a->session, &ci);
        if (rc != 0)
            fail(a, "offer", rc);
        else if (!a->o->json)
            fprintf(stderr, "rdv offer: sent offer %s to %s\n", a->session, a->o->ids[0]);
        a->sent = 1;
    }
}

static void on_presence(rdv_client *c, const char *rid, const rdv_peer *peers,
                        size_t n, void *u)
{
    (void)c;
    struct app *a = u;
    if (a->cmd == RDV_CLI_LOOKUP && (!rid || strcmp(rid, a->request_id) != 0))
        return;
    for (size_t i = 0; i < n; i++)
        print_peer("presence", &peers[i], a->o->json);
    if (a->cmd == RDV_CLI_LOOKUP)
        a->done = 1;
}

static void on_peer(struct app *a, const rdv_peer *p, const char *event)
{
    if (a->cmd != RDV_CLI_WATCH)
        return;
    print_peer(event, p, a->o->json);
    if (++a->events >= a->o->count && a->o->count)
        a->done = 1;
}

static void on_online(rdv_client *c, const rdv_peer *p, void *u)
{
    (void)c;
    on_peer(u, p, "online");
}

static void on_offline(rdv_client *c, const rdv_peer *p, void *u)
{
    (void)c;
    on_peer(u, p, "offline");
}

static void on_offer(rdv_client *c, const rdv_session_msg *m, void *u)
{
    struct app *a = u;
    if (a->cmd != RDV_CLI_LISTEN)
        return;
    print_session("offer", m, a->o->json);
    rdv_connection_info ci;
    my_info(a, &ci);
    int rc = rdv_client_send_answer(c, m->from_node_id, m->session_id, &ci);
    if (rc != 0) {
        fprintf(stderr, "rdv listen: answer to %s: %s\n", m->from_node_id, rdv_strerror(rc));
        return;
    }
    if (!a->o->json)
        fprintf(stderr, "rdv listen: answered session %s\n", m->session_id);
    if (++a->events >= a->o->count && a->o->count)
        a->done = 1;
}

static void on_answer(rdv_client *c, const rdv_session_msg *m, void *u)
{
    (void)c;
    struct app *a = u;
    if (a->cmd != RDV_CLI_OFFER || strcmp(m->session_id, a->session) != 0 ||
        strcmp(m->from_node_id, a->o->ids[0]) != 0)
        return;
    print_session("answer", m, a->o->json);
    a->done = 1;
}

static void on_candidate(rdv_client *c, const rdv_candidate_msg *m, void *u)
{
    (void)c;
    struct app *a = u;
    if (a->o->json)
        printf("{\"event\":\"candidate\",\"fromNodeID\":\"%s\",\"sessionID\":\"%s\","
               "\"ip\":\"%s\",\"port\":%u,\"type\":\"%s\",\"priority\":%u}\n",
               m->from_node_id, m->session_id, m->candidate.ip, m->candidate.port,
               m->candidate.type, m->candidate.priority);
    else
        printf("candidate from %s session %s: %s %s:%u priority %u\n", m->from_node_id,
               m->session_id, m->candidate.type, m->candidate.ip, m->candidate.port,
               m->candidate.priority);
    fflush(stdout);
}

static void on_queued(rdv_client *c, const rdv_queued *q, void *u)
{
    (void)c;
    struct app *a = u;
    char ts[32];
    iso_time(q->expires_at, ts);
    if (!a->o->json)
        fprintf(stderr, "rdv %s: %.16s... is offline; the %s waits on the server until %s\n",
                cmd_name(a->cmd), q->to_node_id, q->type, ts);
}

static void on_error(rdv_client *c, const rdv_error_info *e, void *u)
{
    struct app *a = u;
    /* A failed connection attempt: the one-shot commands (lookup, offer)
     * say it once when they give up; the others once per new cause. */
    if (rdv_cli_conn_error(cmd_name(a->cmd), c, e,
                           a->cmd == RDV_CLI_LOOKUP || a->cmd == RDV_CLI_OFFER, a->last_conn_err,
                           sizeof(a->last_conn_err)))
        return;
    fprintf(stderr, "rdv %s: %s%s%s%s\n", cmd_name(a->cmd), e->message,
            e->server_code ? " [" : "", e->server_code ? e->server_code : "",
            e->server_code ? "]" : "");
    /* An offer that cannot be delivered ends `rdv offer`. */
    if (a->cmd == RDV_CLI_OFFER && e->ref && strcmp(e->ref, a->session) == 0 &&
        (e->code == RDV_ERR_PEER_OFFLINE || e->code == RDV_ERR_PEER_QUEUE_FULL ||
         e->server_code)) {
        a->status = 1;
        a->done = 1;
    }
    if (a->cmd == RDV_CLI_LOOKUP && e->ref && strcmp(e->ref, a->request_id) == 0) {
        a->status = 1;
        a->done = 1;
    }
}

int rdv_cli_signaling(enum rdv_cli_signal_cmd cmd, struct cli_opts *o)
{
    if ((cmd == RDV_CLI_LOOKUP || cmd == RDV_CLI_WATCH) && o->nids < 1) {
        fprintf(stderr, "rdv %s: give at least one node ID\n", cmd_name(cmd));
        return 2;
    }
    if (cmd == RDV_CLI_OFFER && o->nids != 1) {
        fprintf(stderr, "rdv offer: give exactly one node ID\n");
        return 2;
    }
    if (cmd == RDV_CLI_LISTEN && o->nids != 0) {
        fprintf(stderr, "rdv listen: takes no node ID\n");
        return 2;
    }
    if (o->direct) {
        fprintf(stderr, "rdv %s: --direct belongs to `rdv relay` and `rdv proxy`\n",
                cmd_name(cmd));
        return 2;
    }
    for (int i = 0; i < o->nids; i++)
        if (!rdv_node_id_is_valid(o->ids[i])) {
            fprintf(stderr, "rdv %s: not a node ID (64 lowercase hex digits): '%s'\n",
                    cmd_name(cmd), o->ids[i]);
            return 2;
        }
    struct app a;
    memset(&a, 0, sizeof(a));
    a.cmd = cmd;
    a.o = o;
    if (o->session) {
        if (strlen(o->session) != RDV_SESSION_ID_LEN) {
            fprintf(stderr, "rdv offer: --session must be a UUID\n");
            return 2;
        }
        strcpy(a.session, o->session);
    } else {
        rdv_session_id_generate(a.session);
    }

    rdv_identity id;
    int rc = rdv_cli_load_key(cmd_name(cmd), o, &id);
    if (rc != 0)
        return 1;
    if (cmd == RDV_CLI_OFFER && rdv_cli_not_self("offer", "send an offer to", &id, o, o->ids[0])) {
        rdv_identity_wipe(&id);
        return 2;
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
    /* One-shot commands give up when the server cannot be reached; the
     * long-running ones keep retrying. */
    if (cmd == RDV_CLI_LOOKUP || cmd == RDV_CLI_OFFER)
        cfg.reconnect.max_attempts = 3;
    cfg.cb_state_changed = on_state;
    cfg.cb_presence = on_presence;
    cfg.cb_peer_online = on_online;
    cfg.cb_peer_offline = on_offline;
    cfg.cb_offer = on_offer;
    cfg.cb_answer = on_answer;
    cfg.cb_candidate = on_candidate;
    cfg.cb_queued = on_queued;
    cfg.cb_error = on_error;
    cfg.user_ptr = &a;
    rc = rdv_client_create(&cfg, &a.c);
    rdv_identity_wipe(&id);
    if (rc != 0)
        return rdv_cli_create_failed(cmd_name(cmd), o, rc);
    if (cmd == RDV_CLI_WATCH) {
        rc = rdv_client_watch(a.c, o->ids, (size_t)o->nids);
        if (rc != 0) {
            fprintf(stderr, "rdv watch: %s\n", rdv_strerror(rc));
            rdv_client_destroy(a.c);
            return 1;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    long timeout = o->timeout_ms;
    if (timeout < 0 && (cmd == RDV_CLI_LOOKUP || cmd == RDV_CLI_OFFER))
        timeout = RDV_CLI_SIGNAL_TIMEOUT_MS;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Embedded mode: poll the client's fd with its timeout. */
    while (!a.done && !g_signal) {
        struct pollfd pfd = {.fd = rdv_client_fd(a.c), .events = POLLIN};
        int wait = rdv_client_timeout_ms(a.c);
        (void)poll(&pfd, 1, wait);
        rc = rdv_client_process(a.c);
        if (rc != 0) {
            fail(&a, "process", rc);
            break;
        }
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long elapsed = (long)(t1.tv_sec - t0.tv_sec) * 1000 +
                       (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (timeout > 0 && elapsed >= timeout && !a.done) {
            if (cmd == RDV_CLI_WATCH) {
                a.status = 0;
            } else if (cmd == RDV_CLI_LISTEN) {
                a.status = a.events > 0 ? 0 : 1;
            } else {
                fprintf(stderr, "rdv %s: no answer within %ld ms\n", cmd_name(cmd), timeout);
                a.status = 1;
            }
            break;
        }
    }
    rdv_client_destroy(a.c);
    return a.status;
}

