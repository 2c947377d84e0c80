/* rdv.c - the rdv command-line tool, built only on librendezvous's public
 * API (rendezvous/rendezvous.h).
 *
 *   rdv keygen [--key PATH] [--force]   create an identity key file (0600)
 *   rdv id [--key PATH] [--json]        print the node ID of a key file
 *   rdv lookup ID...                    is each node online? (one answer)
 *   rdv watch ID...                     print presence changes until ^C
 *   rdv offer ID                        send an offer, print the answer
 *   rdv listen                          answer offers, print what arrives
 *   rdv relay ID | rdv relay --accept   pipe stdin/stdout through a relay
 *   rdv proxy ID --listen ADDR          UDP proxy over a relay (and --accept)
 *                                       (--direct: rdv_connect(), a direct
 *                                       UDP path first, the relay as fallback)
 *   rdv network status                  icnctl-style status (relay_cmds.c)
 *
 * `offer` and `listen` are a two-terminal demo of the signaling exchange.
 * The key path comes from --key, else $RENDEZVOUS_KEY, else
 * ./rendezvous.key; the server from --url, else $RENDEZVOUS_URL, else
 * ws://127.0.0.1:8080/v1. Every command that connects also takes the NAT
 * traversal options (--stun, --no-stun, --udp-port, --direct-timeout,
 * --relay-only, --no-spray: rdv_cli_apply_nat()). The network commands run
 * the client in embedded mode: one poll() loop in main(). --json prints one
 * JSON object per line.
 * Exit status: 0 success, 1 failure (including a timeout), 2 usage error.
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

#include "cli.h"

#define DEFAULT_TIMEOUT_MS 15000   /* lookup, offer: overall deadline */

static const char *const usage_main =
    "usage: rdv [--version] [--help] <command> [options]\n"
    "\n"
    "commands:\n"
    "  keygen [--key PATH] [--force]  create a new Ed25519 identity key file\n"
    "                                 (mode 0600; --force overwrites)\n"
    "  id [--key PATH] [--json]       print the node ID of the key file\n"
    "  lookup ID...                   ask the server whether nodes are online\n"
    "  watch ID...                    print presence changes of nodes until ^C\n"
    "  offer ID                       send a signed offer, print the answer\n"
    "  listen                         answer offers and print what arrives\n"
    "  relay ID | relay --accept [ID] pipe stdin/stdout through an encrypted relay\n"
    "  proxy ID --listen ADDR         local UDP proxy over an encrypted relay\n"
    "  proxy --accept [ID] --forward ADDR   the accepting side of a proxy\n"
    "                                 (relay/proxy --direct: a direct UDP path\n"
    "                                 first, the relay as fallback)\n"
    "  fleet keygen | fleet sign ID   the operator's fleet key and a node's\n"
    "                                 fleet certificate (`rdv fleet --help`)\n"
    "  network status                 public endpoint, NAT type and discovery,\n"
    "                                 relay server, active relays, direct\n"
    "                                 sessions, last traversal and errors\n"
    "\n"
    "options:\n"
    "  --key PATH   identity key file (env RENDEZVOUS_KEY,\n"
    "               default ./" DEFAULT_KEY_PATH ")\n"
    "  --url URL    rendezvous server, ws:// or wss:// (env RENDEZVOUS_URL,\n"
    "               default " DEFAULT_URL "); repeat it, or separate URLs\n"
    "               with commas, for the instances of a cluster: rdv starts at a\n"
    "               random one and moves to the next when one fails or drains\n"
    "  --json       machine-readable output (one JSON object per line)\n"
    "  --help       this text; `rdv <command> --help` for one command\n"
    "  NAT traversal (every command that connects): --stun HOST:PORT,\n"
    "  --no-stun, --udp-port N, --direct-timeout MS, --relay-only, --no-spray\n";

static const char *const usage_net =
    "  --url URL        rendezvous server (env RENDEZVOUS_URL, default " DEFAULT_URL ");\n"
    "                   repeatable / comma-separated: the instances of a cluster\n"
    "  --key PATH       identity key file (env RENDEZVOUS_KEY, default ./" DEFAULT_KEY_PATH ")\n"
    "  --ca FILE        PEM CA bundle for a wss:// server\n"
    "  --cert FILE      fleet certificate for a server that admits its fleet\n"
    "                   (env RENDEZVOUS_CERT; `rdv fleet sign` makes one)\n"
    "  --json           one JSON object per line\n";

static const char *const usage_nat =
    "NAT traversal:\n"
    "  --stun HOST:PORT STUN server for NAT discovery ([IPv6]:PORT too); repeat\n"
    "                   for fallbacks, tried in order, at most 8 (default: the\n"
    "                   --url host, port 3478)\n"
    "  --no-stun        no NAT discovery (NAT type unknown unless --nat)\n"
    "  --udp-port N     local UDP port for STUN and direct paths (default: any)\n"
    "  --direct-timeout MS\n"
    "                   how long a direct attempt runs before the relay takes\n"
    "                   over (default 2500; relay/proxy --direct)\n"
    "  --relay-only     never use a direct path: the opening side goes straight\n"
    "                   to the relay, the accepting side answers no probes\n"
    "  --no-spray       no many-port probing between symmetric and cone NATs\n";

static const char *const usage_info =
    "  --local-ip IP    connectionInfo.localIP (default 0.0.0.0)\n"
    "  --local-port N   connectionInfo.localPort (default 0)\n"
    "  --public-ip IP   connectionInfo.publicIP (default: the address the\n"
    "                   server observed)\n"
    "  --public-port N  connectionInfo.publicPort (default 0)\n"
    "  --nat TYPE       fullCone|restrictedCone|portRestricted|symmetric|unknown\n"
    "  --wg-key HEX     connectionInfo.wgPublicKey (64 hex digits)\n";

static void usage_cmd(const char *cmd, FILE *out)
{
    if (strcmp(cmd, "keygen") == 0) {
        fprintf(out, "usage: rdv keygen [--key PATH] [--force] [--json]\n"
                     "Creates a new Ed25519 identity key file (mode 0600) and prints its node ID.\n"
                     "  --force  overwrite an existing key file\n");
    } else if (strcmp(cmd, "id") == 0) {
        fprintf(out, "usage: rdv id [--key PATH] [--json]\nPrints the node ID of the key file.\n");
    } else if (strcmp(cmd, "lookup") == 0) {
        fprintf(out, "usage: rdv lookup [options] ID...\n"
                     "Asks the server whether each node is online; prints one line per node.\n%s"
                     "  --nat TYPE       NAT type to announce in hello (default: the\n"
                     "                   discovered one)\n"
                     "  --timeout MS     give up after MS (default %d)\n",
                usage_net, DEFAULT_TIMEOUT_MS);
    } else if (strcmp(cmd, "watch") == 0) {
        fprintf(out, "usage: rdv watch [options] ID...\n"
                     "Prints the nodes' presence, then every online/offline change, until\n"
                     "interrupted. Reconnects and re-watches after the server drops.\n%s"
                     "  --nat TYPE       NAT type to announce in hello (default: the\n"
                     "                   discovered one)\n"
                     "  --count N        exit after N changes\n"
                     "  --timeout MS     exit (status 0) after MS\n",
                usage_net);
    } else if (strcmp(cmd, "offer") == 0) {
        fprintf(out, "usage: rdv offer [options] ID\n"
                     "Sends a signed offer to node ID and prints its (verified) answer.\n%s%s"
                     "  --session UUID   session ID (default: a new one)\n"
                     "  --timeout MS     give up after MS (default %d)\n",
                usage_net, usage_info, DEFAULT_TIMEOUT_MS);
    } else if (strcmp(cmd, "listen") == 0) {
        fprintf(out, "usage: rdv listen [options]\n"
                     "Waits for offers, prints each (verified) one and answers it; prints\n"
                     "candidates too. Runs until interrupted.\n%s%s"
                     "  --count N        exit after answering N offers\n"
                     "  --timeout MS     exit (status 1) when nothing was answered in MS\n",
                usage_net, usage_info);
    } else if (strcmp(cmd, "relay") == 0 || strcmp(cmd, "proxy") == 0 ||
               strcmp(cmd, "network") == 0) {
        rdv_cli_usage_relay(cmd, out, usage_net);
    } else {
        fputs(usage_main, out);
        return;
    }
    if (strcmp(cmd, "keygen") != 0 && strcmp(cmd, "id") != 0)
        fputs(usage_nat, out); /* every command that connects */
}

int rdv_cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A --stun value: "HOST:PORT" or "[IPv6]:PORT" with PORT 1..65535. Returns
 * 0 or -1. */
static int stun_addr_ok(const char *s)
{
    const char *port;
    size_t hl;
    if (strlen(s) > 300)
        return -1;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':')
            return -1;
        hl = (size_t)(e - s - 1);
        port = e + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -1; /* no port, or an IPv6 literal without brackets */
        hl = (size_t)(colon - s);
        port = colon + 1;
    }
    long v;
    if (hl == 0 || hl > 253 || port[0] < '0' || port[0] > '9')
        return -1;
    return rdv_cli_parse_long(port, 1, 65535, &v);
}

void rdv_cli_apply_nat(const struct cli_opts *o, rdv_client_config *cfg)
{
    if (o->nstun) {
        cfg->stun_servers = o->stun;
        cfg->stun_server_count = (size_t)o->nstun;
    }
    cfg->stun_disable = o->no_stun;
    cfg->udp_port = (uint16_t)o->udp_port;
    cfg->direct_disable = o->relay_only;
    cfg->direct_timeout_ms = (int)o->direct_timeout_ms;
    if (o->no_spray)
        cfg->spray_ports = -1;
}

int rdv_cli_load_key(const char *cmd, const struct cli_opts *o, rdv_identity *id)
{
    int rc = rdv_identity_load(id, o->key_path);
    if (rc == RDV_ERR_NOT_FOUND)
        fprintf(stderr,
                "rdv %s: key file %s not found: run `rdv keygen%s%s` to create one "
                "(or give --key PATH / RENDEZVOUS_KEY)\n",
                cmd, o->key_path, strcmp(o->key_path, DEFAULT_KEY_PATH) ? " --key " : "",
                strcmp(o->key_path, DEFAULT_KEY_PATH) ? o->key_path : "");
    else if (rc == RDV_ERR_FORMAT)
        fprintf(stderr, "rdv %s: %s is not a rendezvous key file (`rdv keygen` writes one)\n",
                cmd, o->key_path);
    else if (rc == RDV_ERR_IO)
        fprintf(stderr, "rdv %s: cannot read key file %s: %s\n", cmd, o->key_path,
                strerror(errno));
    else if (rc != 0)
        fprintf(stderr, "rdv %s: %s: %s\n", cmd, o->key_path, rdv_strerror(rc));
    return rc;
}

int rdv_cli_not_self(const char *cmd, const char *what, const rdv_identity *id,
                     const struct cli_opts *o, const char *peer)
{
    char me[RDV_NODE_ID_LEN + 1];
    rdv_identity_node_id(id, me);
    if (!peer || strcmp(me, peer) != 0)
        return 0;
    fprintf(stderr,
            "rdv %s: cannot %s your own node ID (%.16s... is the ID of key file %s): give "
            "the other node's ID (`rdv id --key THEIR.key` prints it)\n",
            cmd, what, me, o->key_path);
    return 2;
}

int rdv_cli_conn_error(const char *cmd, rdv_client *c, const rdv_error_info *e, int quiet,
                       char *last, size_t cap)
{
    rdv_client_info info;
    if (e->ref || e->server_code || rdv_client_get_info(c, &info) != 0 ||
        !info.last_error_text[0] || strcmp(info.last_error_text, e->message) != 0)
        return 0;
    if (!quiet && strcmp(last, e->message) != 0)
        fprintf(stderr, "rdv %s: %s%s\n", cmd, e->message,
                rdv_client_state(c) == RDV_STATE_FAILED ? "" : " (retrying)");
    snprintf(last, cap, "%s", e->message);
    return 1;
}

void rdv_cli_print_failed(const char *cmd, rdv_client *c)
{
    rdv_client_info info;
    if (rdv_client_get_info(c, &info) != 0)
        memset(&info, 0, sizeof(info));
    if (info.last_error_text[0])
        fprintf(stderr, "rdv %s: cannot reach the server (gave up after %u attempt%s): %s\n",
                cmd, info.reconnect_attempt, info.reconnect_attempt == 1 ? "" : "s",
                info.last_error_text);
    else
        fprintf(stderr, "rdv %s: cannot reach the server: %s\n", cmd,
                rdv_strerror(info.last_error ? info.last_error : RDV_ERR_CONNECT));
}

int rdv_cli_create_failed(const char *cmd, const struct cli_opts *o, int rc)
{
    if (rc == RDV_ERR_BAD_URL)
        fprintf(stderr,
                "rdv %s: bad server URL '%s' (--url / RENDEZVOUS_URL): the URL must start "
                "with ws:// or wss:// (ws://HOST[:PORT][/PATH], e.g. %s)\n",
                cmd, o->url, DEFAULT_URL);
    else if (rc == RDV_ERR_IO && o->udp_port)
        fprintf(stderr, "rdv %s: cannot create the client: %s (UDP port %ld in use%s?)\n",
                cmd, rdv_strerror(rc), o->udp_port, o->ca ? ", or the --ca file" : "");
    else
        fprintf(stderr, "rdv %s: %s: %s\n", cmd, o->url, rdv_strerror(rc));
    return rc == RDV_ERR_INVALID || rc == RDV_ERR_BAD_URL ? 2 : 1;
}

static int copy_opt(char *dst, size_t cap, const char *src)
{
    if (strlen(src) >= cap)
        return -1;
    strcpy(dst, src);
    return 0;
}

/* Parses the options after the command; returns 0 or 2 on a usage error. */
static int parse_opts(int argc, char **argv, struct cli_opts *o)
{
    const char *env = getenv("RENDEZVOUS_KEY");
    o->key_path = env && *env ? env : DEFAULT_KEY_PATH;
    env = getenv("RENDEZVOUS_URL");
    o->url = env && *env ? env : DEFAULT_URL;
    env = getenv("RENDEZVOUS_CERT");
    o->cert = env && *env ? env : NULL;
    o->timeout_ms = -1;
    o->wait_ms = -2; /* not given */
    strcpy(o->info.public_ip, "0.0.0.0");
    strcpy(o->info.local_ip, "0.0.0.0");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        int bad = 0, takes = 1;
        if (strcmp(a, "--key") == 0 && v)
            o->key_path = v;
        else if (strcmp(a, "--url") == 0 && v) {
            /* repeatable: the instances of one cluster, tried in turn */
            size_t have = o->url == o->url_list ? strlen(o->url_list) : 0;
            int n = snprintf(o->url_list + have, sizeof o->url_list - have, "%s%s",
                             have ? "," : "", v);
            if (n < 0 || (size_t)n >= sizeof o->url_list - have) {
                fprintf(stderr, "rdv: too many or too long --url values\n");
                return 2;
            }
            o->url = o->url_list;
        }
        else if (strcmp(a, "--ca") == 0 && v)
            o->ca = v;
        else if (strcmp(a, "--cert") == 0 && v)
            o->cert = v;
        else if (strcmp(a, "--timeout") == 0 && v)
            bad = rdv_cli_parse_long(v, 1, 86400000L, &o->timeout_ms);
        else if (strcmp(a, "--count") == 0 && v)
            bad = rdv_cli_parse_long(v, 1, 1000000L, &o->count);
        else if (strcmp(a, "--wait") == 0 && v)
            bad = rdv_cli_parse_long(v, -1, 86400000L, &o->wait_ms);
        else if (strcmp(a, "--listen") == 0 && v)
            o->listen = v;
        else if (strcmp(a, "--forward") == 0 && v)
            o->forward = v;
        else if (strcmp(a, "--state") == 0 && v)
            o->state_path = v;
        else if (strcmp(a, "--session") == 0 && v)
            o->session = v;
        else if (strcmp(a, "--stun") == 0 && v) {
            bad = stun_addr_ok(v);
            if (!bad && o->nstun >= RDV_MAX_STUN_SERVERS) {
                fprintf(stderr, "rdv: at most %d --stun servers\n", RDV_MAX_STUN_SERVERS);
                bad = 1;
            }
            if (!bad)
                o->stun[o->nstun++] = v;
        } else if (strcmp(a, "--udp-port") == 0 && v)
            bad = rdv_cli_parse_long(v, 0, 65535, &o->udp_port);
        else if (strcmp(a, "--direct-timeout") == 0 && v)
            bad = rdv_cli_parse_long(v, 1, 600000L, &o->direct_timeout_ms);
        else if (strcmp(a, "--local-ip") == 0 && v)
            bad = copy_opt(o->info.local_ip, sizeof(o->info.local_ip), v);
        else if (strcmp(a, "--public-ip") == 0 && v) {
            bad = copy_opt(o->info.public_ip, sizeof(o->info.public_ip), v);
            o->public_ip_set = 1;
        } else if (strcmp(a, "--local-port") == 0 && v) {
            bad = rdv_cli_parse_long(v, 0, 65535, &n);
            o->info.local_port = (uint16_t)n;
        } else if (strcmp(a, "--public-port") == 0 && v) {
            bad = rdv_cli_parse_long(v, 0, 65535, &n);
            o->info.public_port = (uint16_t)n;
        } else if (strcmp(a, "--nat") == 0 && v) {
            o->info.nat_type = rdv_nat_type_from_name(v);
            bad = o->info.nat_type == RDV_NAT_UNKNOWN && strcmp(v, "unknown") != 0;
        } else if (strcmp(a, "--wg-key") == 0 && v)
            bad = copy_opt(o->info.wg_public_key, sizeof(o->info.wg_public_key), v);
        else {
            takes = 0;
            if (strcmp(a, "--force") == 0)
                o->force = 1;
            else if (strcmp(a, "--json") == 0)
                o->json = 1;
            else if (strcmp(a, "--accept") == 0)
                o->accept = 1;
            else if (strcmp(a, "--no-connect") == 0)
                o->no_connect = 1;
            else if (strcmp(a, "--once") == 0)
                o->once = 1;
            else if (strcmp(a, "--no-stun") == 0)
                o->no_stun = 1;
            else if (strcmp(a, "--relay-only") == 0)
                o->relay_only = 1;
            else if (strcmp(a, "--no-spray") == 0)
                o->no_spray = 1;
            else if (strcmp(a, "--direct") == 0)
                o->direct = 1;
            else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
                o->help = 1;
            else if (a[0] != '-' && o->nids < MAX_IDS)
                o->ids[o->nids++] = a;
            else {
                fprintf(stderr, "rdv: unknown or incomplete option '%s'\n", a);
                return 2;
            }
        }
        if (bad) {
            fprintf(stderr, "rdv: bad value for %s: '%s'\n", a, v);
            return 2;
        }
        i += takes;
    }
    if (o->no_stun && o->nstun) {
        fprintf(stderr, "rdv: --stun and --no-stun contradict each other\n");
        return 2;
    }
    return 0;
}

/* ---- output helpers ------------------------------------------------------ */

void rdv_cli_json_fstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void rdv_cli_json_str(const char *s)
{
    rdv_cli_json_fstr(stdout, s);
}

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

static void print_id(const rdv_identity *id, const char *path, int json)
{
    char node_id[RDV_NODE_ID_LEN + 1];
    rdv_identity_node_id(id, node_id);
    if (json) {
        printf("{\"nodeID\":\"%s\",\"keyFile\":", node_id);
        rdv_cli_json_str(path);
        printf("}\n");
    } else {
        printf("%s\n", node_id);
    }
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

/* ---- the network commands -------------------------------------------------- */

enum cmd { CMD_LOOKUP, CMD_WATCH, CMD_OFFER, CMD_LISTEN };

struct app {
    enum cmd cmd;
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

static const char *cmd_name(enum cmd c)
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
    if ((a->cmd == CMD_WATCH || a->cmd == CMD_LISTEN) && !a->o->json) {
        rdv_client_info info;
        if (rdv_client_get_info(c, &info) == 0)
            fprintf(stderr, "rdv %s: connected as %s (seen as %s:%u)\n", cmd_name(a->cmd),
                    info.node_id, info.observed_ip, info.observed_port);
    }
    if (a->sent)
        return;
    if (a->cmd == CMD_LOOKUP) {
        int rc = rdv_client_lookup(c, a->o->ids, (size_t)a->o->nids, a->request_id);
        if (rc != 0)
            fail(a, "lookup", rc);
        a->sent = 1;
    } else if (a->cmd == CMD_OFFER) {
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
    if (a->cmd == CMD_LOOKUP && (!rid || strcmp(rid, a->request_id) != 0))
        return;
    for (size_t i = 0; i < n; i++)
        print_peer("presence", &peers[i], a->o->json);
    if (a->cmd == CMD_LOOKUP)
        a->done = 1;
}

static void on_peer(struct app *a, const rdv_peer *p, const char *event)
{
    if (a->cmd != CMD_WATCH)
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
    if (a->cmd != CMD_LISTEN)
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
    if (a->cmd != CMD_OFFER || strcmp(m->session_id, a->session) != 0 ||
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
                           a->cmd == CMD_LOOKUP || a->cmd == CMD_OFFER, a->last_conn_err,
                           sizeof(a->last_conn_err)))
        return;
    fprintf(stderr, "rdv %s: %s%s%s%s\n", cmd_name(a->cmd), e->message,
            e->server_code ? " [" : "", e->server_code ? e->server_code : "",
            e->server_code ? "]" : "");
    /* An offer that cannot be delivered ends `rdv offer`. */
    if (a->cmd == CMD_OFFER && e->ref && strcmp(e->ref, a->session) == 0 &&
        (e->code == RDV_ERR_PEER_OFFLINE || e->code == RDV_ERR_PEER_QUEUE_FULL ||
         e->server_code)) {
        a->status = 1;
        a->done = 1;
    }
    if (a->cmd == CMD_LOOKUP && e->ref && strcmp(e->ref, a->request_id) == 0) {
        a->status = 1;
        a->done = 1;
    }
}

static int run_net(enum cmd cmd, struct cli_opts *o)
{
    if ((cmd == CMD_LOOKUP || cmd == CMD_WATCH) && o->nids < 1) {
        fprintf(stderr, "rdv %s: give at least one node ID\n", cmd_name(cmd));
        return 2;
    }
    if (cmd == CMD_OFFER && o->nids != 1) {
        fprintf(stderr, "rdv offer: give exactly one node ID\n");
        return 2;
    }
    if (cmd == CMD_LISTEN && o->nids != 0) {
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
    if (cmd == CMD_OFFER && rdv_cli_not_self("offer", "send an offer to", &id, o, o->ids[0])) {
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
    if (cmd == CMD_LOOKUP || cmd == CMD_OFFER)
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
    if (cmd == CMD_WATCH) {
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
    if (timeout < 0 && (cmd == CMD_LOOKUP || cmd == CMD_OFFER))
        timeout = DEFAULT_TIMEOUT_MS;
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
            if (cmd == CMD_WATCH) {
                a.status = 0;
            } else if (cmd == CMD_LISTEN) {
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

/* ---- keygen / id ----------------------------------------------------------- */

static int cmd_keygen(const struct cli_opts *o)
{
    rdv_identity id;
    int rc = rdv_identity_generate(&id);
    if (rc == 0)
        rc = rdv_identity_save(&id, o->key_path, o->force);
    if (rc == RDV_ERR_NOT_FOUND) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", o->key_path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
        fprintf(stderr,
                "rdv keygen: cannot create %s: the directory %s does not exist (create it "
                "first: mkdir -p %s)\n",
                o->key_path, dir, dir);
    } else if (rc != 0) {
        fprintf(stderr, "rdv keygen: %s: %s%s\n", o->key_path,
                rc == RDV_ERR_IO ? strerror(errno) : rdv_strerror(rc),
                rc == RDV_ERR_EXISTS ? " (use --force to replace it)" : "");
    }
    if (rc != 0) {
        rdv_identity_wipe(&id);
        return 1;
    }
    if (!o->json)
        fprintf(stderr, "rdv keygen: wrote %s\n", o->key_path);
    print_id(&id, o->key_path, o->json);
    rdv_identity_wipe(&id);
    return 0;
}

static int cmd_id(const struct cli_opts *o)
{
    rdv_identity id;
    if (rdv_cli_load_key("id", o, &id) != 0)
        return 1;
    print_id(&id, o->key_path, o->json);
    rdv_identity_wipe(&id);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        if (argc > 2)
            usage_cmd(argv[2], stdout);
        else
            fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("rdv %s\n", RDV_VERSION_STRING);
        return 0;
    }
    if (strcmp(cmd, "fleet") == 0)
        return rdv_cli_fleet(argc - 2, argv + 2);
    static const char *const known[] = {"keygen", "id", "lookup", "watch", "offer", "listen",
                                        "relay", "proxy", "network"};
    int k = -1;
    for (int i = 0; i < (int)(sizeof(known) / sizeof(known[0])); i++)
        if (strcmp(cmd, known[i]) == 0)
            k = i;
    if (k < 0) {
        fprintf(stderr, "rdv: unknown command '%s'\n", cmd);
        fputs(usage_main, stderr);
        return 2;
    }
    struct cli_opts o;
    memset(&o, 0, sizeof(o));
    int skip = 2;
    if (k == 8) { /* network status */
        if (argc > 2 && strcmp(argv[2], "status") == 0) {
            skip = 3;
        } else if (!(argc > 2 && (strcmp(argv[2], "--help") == 0 ||
                                  strcmp(argv[2], "-h") == 0))) {
            fprintf(stderr, "rdv network: the only subcommand is 'status'\n");
            usage_cmd(cmd, stderr);
            return 2;
        }
    }
    if (parse_opts(argc - skip, argv + skip, &o) != 0) {
        usage_cmd(cmd, stderr);
        return 2;
    }
    if (o.help) {
        usage_cmd(cmd, stdout);
        return 0;
    }
    switch (k) {
    case 0: return o.nids ? (usage_cmd(cmd, stderr), 2) : cmd_keygen(&o);
    case 1: return o.nids ? (usage_cmd(cmd, stderr), 2) : cmd_id(&o);
    case 2: return run_net(CMD_LOOKUP, &o);
    case 3: return run_net(CMD_WATCH, &o);
    case 4: return run_net(CMD_OFFER, &o);
    case 5: return run_net(CMD_LISTEN, &o);
    case 6: return rdv_cli_relay(&o, 0);
    case 7: return rdv_cli_relay(&o, 1);
    default: return rdv_cli_network_status(&o);
    }
}
