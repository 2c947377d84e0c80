/* status_file.c - the status file of the long-running rdv commands
 * (--state, $RENDEZVOUS_STATE, default <key file>.status): `key=value`
 * lines with the writer's pid, written by `rdv relay` / `rdv proxy` and
 * read by `rdv network status` while they run (a second connection with
 * the same key would replace theirs, PROTOCOL.md 6, rule 6).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

const char *rdv_cli_state_path(const struct cli_opts *o, char *buf, size_t cap)
{
    if (o->state_path)
        return o->state_path;
    const char *env = getenv("RENDEZVOUS_STATE");
    if (env && *env)
        return env;
    snprintf(buf, cap, "%s.status", o->key_path);
    return buf;
}

/* Writes "key=value\n" with control characters of value as spaces. */
static void put_kv(FILE *f, const char *key, const char *value)
{
    fprintf(f, "%s=", key);
    for (const char *p = value; *p; p++)
        fputc((unsigned char)*p < 0x20 ? ' ' : *p, f);
    fputc('\n', f);
}

/* Writes st as key=value lines to path (atomically: temp file + rename). */
void rdv_cli_status_write(const char *path, const char *cmd, const rdv_network_status *st,
                         long pid)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f,
            "pid=%ld\ncommand=%s\nstate=%s\nrelay_server=%s\nserver_name=%s\npublic_ip=%s\n"
            "public_port=%u\nnat_type=%s\nrelay_available=%d\nmax_relay_sessions=%lld\n"
            "active_relays=%u\npending_relays=%u\nrelays_opened=%llu\ntx_datagrams=%llu\n"
            "rx_datagrams=%llu\ntx_bytes=%llu\nrx_bytes=%llu\ndropped=%llu\n"
            "last_traversal=%s\nlast_direct_error=%d\nlast_direct_error_text=%s\n"
            "last_relay_error=%d\nlast_relay_error_text=%s\n",
            pid, cmd, rdv_state_name(st->state), st->relay_server, st->server_name,
            st->public_ip, st->public_port, rdv_nat_type_name(st->nat_type),
            st->relay_available, (long long)st->max_relay_sessions, st->active_relays,
            st->pending_relays, (unsigned long long)st->relays_opened,
            (unsigned long long)st->relay_tx_datagrams,
            (unsigned long long)st->relay_rx_datagrams, (unsigned long long)st->relay_tx_bytes,
            (unsigned long long)st->relay_rx_bytes, (unsigned long long)st->relay_dropped,
            rdv_path_name(st->last_path), st->last_direct_error,
            st->last_direct_error_text, st->last_relay_error, st->last_relay_error_text);
    fprintf(f,
            "public_endpoint_from_stun=%d\nnat_discovered=%d\nno_nat=%d\n"
            "nat_discovery_ms=%lld\ndirect_sessions=%llu\nlast_connect_ms=%lld\n"
            "last_direct_ms=%lld\n",
            st->public_endpoint_from_stun, st->nat_discovered, st->no_nat,
            (long long)st->nat_discovery_ms, (unsigned long long)st->direct_sessions,
            (long long)st->last_connect_ms, (long long)st->last_direct_ms);
    put_kv(f, "nat_method", st->nat_method);
    put_kv(f, "stun_server", st->stun_server);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        unlink(tmp);
}

/* Reads a status file into *st; *pid gets its writer. Returns 0 or -1. */
int rdv_cli_status_read(const char *path, rdv_network_status *st, long *pid, char *cmd,
                       size_t cmdcap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    memset(st, 0, sizeof(*st));
    st->nat_discovery_ms = st->last_connect_ms = st->last_direct_ms = -1;
    *pid = 0;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (strcmp(k, "pid") == 0)
            *pid = strtol(v, NULL, 10);
        else if (strcmp(k, "command") == 0)
            snprintf(cmd, cmdcap, "%s", v);
        else if (strcmp(k, "state") == 0)
            st->state = strcmp(v, "authenticated") == 0   ? RDV_STATE_AUTHENTICATED
                        : strcmp(v, "connecting") == 0    ? RDV_STATE_CONNECTING
                        : strcmp(v, "failed") == 0        ? RDV_STATE_FAILED
                                                          : RDV_STATE_DISCONNECTED;
        else if (strcmp(k, "relay_server") == 0)
            snprintf(st->relay_server, sizeof(st->relay_server), "%s", v);
        else if (strcmp(k, "server_name") == 0)
            snprintf(st->server_name, sizeof(st->server_name), "%s", v);
        else if (strcmp(k, "public_ip") == 0)
            snprintf(st->public_ip, sizeof(st->public_ip), "%s", v);
        else if (strcmp(k, "public_port") == 0)
            st->public_port = (uint16_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "nat_type") == 0)
            st->nat_type = rdv_nat_type_from_name(v);
        else if (strcmp(k, "relay_available") == 0)
            st->relay_available = atoi(v);
        else if (strcmp(k, "max_relay_sessions") == 0)
            st->max_relay_sessions = strtoll(v, NULL, 10);
        else if (strcmp(k, "active_relays") == 0)
            st->active_relays = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(k, "pending_relays") == 0)
            st->pending_relays = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(k, "relays_opened") == 0)
            st->relays_opened = strtoull(v, NULL, 10);
        else if (strcmp(k, "tx_bytes") == 0)
            st->relay_tx_bytes = strtoull(v, NULL, 10);
        else if (strcmp(k, "rx_bytes") == 0)
            st->relay_rx_bytes = strtoull(v, NULL, 10);
        else if (strcmp(k, "tx_datagrams") == 0)
            st->relay_tx_datagrams = strtoull(v, NULL, 10);
        else if (strcmp(k, "rx_datagrams") == 0)
            st->relay_rx_datagrams = strtoull(v, NULL, 10);
        else if (strcmp(k, "dropped") == 0)
            st->relay_dropped = strtoull(v, NULL, 10);
        else if (strcmp(k, "last_traversal") == 0)
            st->last_path = strcmp(v, "Relayed") == 0  ? RDV_PATH_RELAYED
                                 : strcmp(v, "Direct") == 0 ? RDV_PATH_DIRECT
                                                            : RDV_PATH_UNKNOWN;
        else if (strcmp(k, "last_direct_error") == 0)
            st->last_direct_error = atoi(v);
        else if (strcmp(k, "last_direct_error_text") == 0)
            snprintf(st->last_direct_error_text, sizeof(st->last_direct_error_text), "%s", v);
        else if (strcmp(k, "last_relay_error") == 0)
            st->last_relay_error = atoi(v);
        else if (strcmp(k, "last_relay_error_text") == 0)
            snprintf(st->last_relay_error_text, sizeof(st->last_relay_error_text), "%s", v);
        else if (strcmp(k, "public_endpoint_from_stun") == 0)
            st->public_endpoint_from_stun = atoi(v);
        else if (strcmp(k, "nat_discovered") == 0)
            st->nat_discovered = atoi(v);
        else if (strcmp(k, "no_nat") == 0)
            st->no_nat = atoi(v);
        else if (strcmp(k, "nat_method") == 0)
            snprintf(st->nat_method, sizeof(st->nat_method), "%s", v);
        else if (strcmp(k, "stun_server") == 0)
            snprintf(st->stun_server, sizeof(st->stun_server), "%s", v);
        else if (strcmp(k, "nat_discovery_ms") == 0)
            st->nat_discovery_ms = strtoll(v, NULL, 10);
        else if (strcmp(k, "direct_sessions") == 0)
            st->direct_sessions = strtoull(v, NULL, 10);
        else if (strcmp(k, "last_connect_ms") == 0)
            st->last_connect_ms = strtoll(v, NULL, 10);
        else if (strcmp(k, "last_direct_ms") == 0)
            st->last_direct_ms = strtoll(v, NULL, 10);
    }
    fclose(f);
    return 0;
}

