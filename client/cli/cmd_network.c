/* cmd_network.c - `rdv network status`: public endpoint, NAT type and
 * discovery, relay server, active relays, direct sessions, last traversal
 * and errors, like icnctl's. While an `rdv relay` / `rdv proxy` with the
 * same key runs it shows that process's status file (status_file.c) and
 * never connects (a second connection with the key would replace theirs);
 * otherwise it connects briefly and shows the live view, plus the last
 * traversal and errors the file recorded.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

#define STATUS_CONNECT_MS 10000      /* network status: connect deadline */
#define STATUS_NAT_WAIT_MS 10000     /* network status: NAT discovery wait */

void rdv_cli_usage_network(FILE *out, const char *net)
{
    fprintf(out,
            "usage: rdv network status [options]\n"
            "Prints public endpoint (from STUN, else the address the server observed\n"
            "for the WebSocket), NAT type, NAT discovery (done, no NAT, method, STUN\n"
            "server, time), relay server, active relays, direct sessions, the last\n"
            "session's time to its first and to its direct path, last traversal\n"
            "(Direct/Relayed/Unknown), last direct error and last relay error.\n"
            "While an `rdv relay`/`rdv proxy` with the same key runs, shows its status\n"
            "file; otherwise connects briefly and waits for NAT discovery to finish\n"
            "(at most --wait MS; not with --no-stun). Exit status 1 when the server\n"
            "cannot be reached (the status is printed anyway).\n%s"
            "  --nat TYPE       NAT type to announce/show (default: the discovered one)\n"
            "  --no-connect     only read the status file\n"
            "  --state FILE     status file (env RENDEZVOUS_STATE, default <key>.status)\n"
            "  --timeout MS     connect deadline (default %d)\n"
            "  --wait MS        wait at most MS for NAT discovery (default %d; 0: do\n"
            "                   not wait)\n",
            net, STATUS_CONNECT_MS, STATUS_NAT_WAIT_MS);
}

static void print_err_json(int code, const char *text)
{
    if (!code) {
        printf("null");
        return;
    }
    printf("{\"code\":%d,\"message\":", code);
    rdv_cli_json_str(text && *text ? text : rdv_strerror(code));
    printf("}");
}

static void print_err_text(int code, const char *text)
{
    if (!code)
        printf("none\n");
    else
        printf("%s (error %d)\n", text && *text ? text : rdv_strerror(code), code);
}

/* "12 ms" or `none` (-1). */
static const char *ms_text(int64_t ms, const char *none, char buf[32])
{
    if (ms < 0)
        return none;
    snprintf(buf, 32, "%lld ms", (long long)ms);
    return buf;
}

static void print_status(const rdv_network_status *st, const char *source, int json)
{
    char ep[80];
    if (st->public_ip[0] && strcmp(st->public_ip, "0.0.0.0") != 0)
        snprintf(ep, sizeof(ep), strchr(st->public_ip, ':') ? "[%s]:%u" : "%s:%u",
                 st->public_ip, st->public_port);
    else
        snprintf(ep, sizeof(ep), "unknown");
    if (json) {
        printf("{\"source\":");
        rdv_cli_json_str(source);
        printf(",\"state\":\"%s\",\"publicEndpoint\":", rdv_state_name(st->state));
        rdv_cli_json_str(ep);
        printf(",\"publicEndpointSource\":\"%s\",\"publicEndpointFromStun\":%s,"
               "\"natType\":\"%s\",\"natDiscovered\":%s,\"noNat\":%s,\"natMethod\":",
               st->public_endpoint_from_stun ? "stun" : "server-observed-tcp",
               st->public_endpoint_from_stun ? "true" : "false",
               rdv_nat_type_name(st->nat_type), st->nat_discovered ? "true" : "false",
               st->no_nat ? "true" : "false");
        rdv_cli_json_str(st->nat_method);
        printf(",\"stunServer\":");
        rdv_cli_json_str(st->stun_server);
        printf(",\"portmapProtocol\":");
        rdv_cli_json_str(st->portmap_protocol);
        printf(",\"portmapPublic\":");
        rdv_cli_json_str(st->portmap_public);
        printf(",\"portmapLifetimeS\":%u,\"portmapRenewals\":%u,\"portmapStatus\":",
               st->portmap_lifetime_s, st->portmap_renewals);
        rdv_cli_json_str(st->portmap_status);
        printf(",\"natDiscoveryMs\":%lld,\"relayServer\":", (long long)st->nat_discovery_ms);
        rdv_cli_json_str(st->relay_server);
        printf(",\"relayAvailable\":%s,\"maxRelaySessions\":%lld,\"activeRelays\":%u,"
               "\"pendingRelays\":%u,\"relaysOpened\":%llu,\"relayTxBytes\":%llu,"
               "\"relayRxBytes\":%llu,\"relayDropped\":%llu,\"directSessions\":%llu,"
               "\"lastConnectMs\":%lld,\"lastDirectMs\":%lld,\"lastTraversal\":\"%s\","
               "\"lastDirectError\":",
               st->relay_available ? "true" : "false", (long long)st->max_relay_sessions,
               st->active_relays, st->pending_relays, (unsigned long long)st->relays_opened,
               (unsigned long long)st->relay_tx_bytes, (unsigned long long)st->relay_rx_bytes,
               (unsigned long long)st->relay_dropped, (unsigned long long)st->direct_sessions,
               (long long)st->last_connect_ms, (long long)st->last_direct_ms,
               rdv_path_name(st->last_path));
        print_err_json(st->last_direct_error, st->last_direct_error_text);
        printf(",\"lastRelayError\":");
        print_err_json(st->last_relay_error, st->last_relay_error_text);
        printf("}\n");
        return;
    }
    char b1[32];
    printf("Network status (%s)\n", source);
    printf("  Connection:         %s\n", rdv_state_name(st->state));
    printf("  Public endpoint:    %s%s\n", ep,
           st->public_endpoint_from_stun ? " (from STUN)"
                                         : " (as the server sees our TCP connection; "
                                           "no STUN answer)");
    if (st->no_nat)
        /* No NAT: the type announced to peers is what the filtering tests
         * found (a host firewall can filter), not a NAT's. */
        printf("  NAT type:           none (announced as %s: the filtering STUN found)\n",
               rdv_nat_type_name(st->nat_type));
    else
        printf("  NAT type:           %s\n", rdv_nat_type_name(st->nat_type));
    printf("  No NAT:             %s\n", st->no_nat ? "yes (STUN saw our own address)" : "no");
    if (!st->nat_discovered)
        printf("  NAT discovery:      not finished\n");
    else if (st->nat_discovery_ms >= 0)
        printf("  NAT discovery:      done in %lld ms\n", (long long)st->nat_discovery_ms);
    else
        printf("  NAT discovery:      done\n");
    printf("  NAT method:         %s\n", st->nat_method[0] ? st->nat_method : "none");
    printf("  STUN server:        %s\n", st->stun_server[0] ? st->stun_server : "none");
    printf("  Port mapping:       %s\n", st->portmap_status[0] ? st->portmap_status : "none yet");
    printf("  Relay server:       %s (%s)\n", st->relay_server,
           st->state == RDV_STATE_AUTHENTICATED || st->max_relay_sessions
               ? (st->relay_available ? "relay available" : "no relay announced")
               : "not connected");
    printf("  Active relays:      %u%s\n", st->active_relays,
           st->pending_relays ? " (+ pending)" : "");
    printf("  Direct sessions:    %llu\n", (unsigned long long)st->direct_sessions);
    printf("  Last connect:       %s\n", ms_text(st->last_connect_ms, "none", b1));
    printf("  Last direct:        %s\n", ms_text(st->last_direct_ms, "none", b1));
    printf("  Last traversal:     %s\n", rdv_path_name(st->last_path));
    printf("  Last direct error:  ");
    print_err_text(st->last_direct_error, st->last_direct_error_text);
    printf("  Last relay error:   ");
    print_err_text(st->last_relay_error, st->last_relay_error_text);
}

static void s_on_state(rdv_client *c, rdv_state st, void *u)
{
    (void)c;
    int *done = u;
    if (st == RDV_STATE_AUTHENTICATED || st == RDV_STATE_FAILED)
        *done = 1;
}

int rdv_cli_network_status(struct cli_opts *o)
{
    if (o->direct) {
        fprintf(stderr, "rdv network status: --direct belongs to `rdv relay` and `rdv proxy`\n");
        return 2;
    }
    if (o->wait_ms == -1) {
        fprintf(stderr, "rdv network status: --wait must be 0 or more (a bound on NAT "
                        "discovery)\n");
        return 2;
    }
    char pbuf[4096], cmd[32] = "";
    const char *spath = rdv_cli_state_path(o, pbuf, sizeof(pbuf));
    rdv_network_status saved;
    long pid = 0;
    int have_file = rdv_cli_status_read(spath, &saved, &pid, cmd, sizeof(cmd)) == 0;
    if (have_file && pid > 0 && kill((pid_t)pid, 0) == 0) {
        char src[64];
        snprintf(src, sizeof(src), "rdv %s, pid %ld", cmd[0] ? cmd : "?", pid);
        print_status(&saved, src, o->json);
        return 0;
    }
    if (o->no_connect) {
        if (!have_file) {
            fprintf(stderr, "rdv network status: no status file %s\n", spath);
            return 1;
        }
        print_status(&saved, "status file", o->json);
        return 0;
    }
    rdv_identity id;
    int rc = rdv_cli_load_key("network status", o, &id);
    if (rc != 0)
        return 1;
    int done = 0;
    rdv_client_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = o->url;
    cfg.identity = &id;
    cfg.tls_ca_file = o->ca;
    cfg.cert_file = o->cert;
    cfg.software = "rdv/" RDV_VERSION_STRING;
    cfg.nat_type = o->info.nat_type;
    rdv_cli_apply_nat(o, &cfg);
    cfg.reconnect.max_attempts = 2;
    cfg.cb_state_changed = s_on_state;
    cfg.user_ptr = &done;
    rdv_client *c;
    rc = rdv_client_create(&cfg, &c);
    rdv_identity_wipe(&id);
    if (rc != 0)
        return rdv_cli_create_failed("network status", o, rc);
    /* Connect (bounded by --timeout) and, at the same time, let NAT
     * discovery finish (bounded by --wait) unless it is off. */
    int64_t t0 = rdv_cli_mono_ms();
    int64_t conn_end = t0 + (o->timeout_ms > 0 ? o->timeout_ms : STATUS_CONNECT_MS);
    long nat_wait = o->no_stun ? 0 : o->wait_ms >= 0 ? o->wait_ms : STATUS_NAT_WAIT_MS;
    int64_t nat_end = t0 + nat_wait;
    rdv_network_status st;
    for (;;) {
        int64_t now = rdv_cli_mono_ms();
        (void)rdv_client_get_network_status(c, &st);
        int conn_pending = !done && now < conn_end;
        int nat_pending = !st.nat_discovered && now < nat_end;
        if (!conn_pending && !nat_pending)
            break;
        int64_t left = (conn_pending && (!nat_pending || conn_end > nat_end) ? conn_end
                                                                              : nat_end) -
                       now;
        int t = rdv_client_timeout_ms(c);
        if (t > left)
            t = (int)left;
        struct pollfd pfd = {.fd = rdv_client_fd(c), .events = POLLIN};
        (void)poll(&pfd, 1, t);
        (void)rdv_client_process(c);
    }
    if (nat_wait > 0 && !st.nat_discovered && !o->json)
        fprintf(stderr, "rdv network status: NAT discovery did not finish within %ld ms\n",
                nat_wait);
    rdv_client_info info;
    if (st.state != RDV_STATE_AUTHENTICATED && rdv_client_get_info(c, &info) == 0 &&
        info.last_error) {
        st.last_relay_error = info.last_error;
        snprintf(st.last_relay_error_text, sizeof(st.last_relay_error_text),
                 "relay server unreachable: %s", rdv_strerror(info.last_error));
    }
    rdv_client_destroy(c);
    if (have_file) { /* what the last relay/proxy run saw */
        if (st.last_path == RDV_PATH_UNKNOWN)
            st.last_path = saved.last_path;
        if (!st.last_relay_error && saved.last_relay_error) {
            st.last_relay_error = saved.last_relay_error;
            memcpy(st.last_relay_error_text, saved.last_relay_error_text,
                   sizeof(st.last_relay_error_text));
        }
        if (!st.last_direct_error && saved.last_direct_error) {
            st.last_direct_error = saved.last_direct_error;
            memcpy(st.last_direct_error_text, saved.last_direct_error_text,
                   sizeof(st.last_direct_error_text));
        }
        if (!st.direct_sessions) { /* this brief client opened no session */
            st.direct_sessions = saved.direct_sessions;
            st.last_connect_ms = saved.last_connect_ms;
            st.last_direct_ms = saved.last_direct_ms;
        }
    }
    print_status(&st, "live", o->json);
    return st.state == RDV_STATE_AUTHENTICATED ? 0 : 1;
}
