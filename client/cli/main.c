/* main.c - the rdv command-line tool, built only on librendezvous's public
 * API (rendezvous/rendezvous.h): usage texts and the dispatch to one file
 * per command group:
 *
 *   rdv keygen [--key PATH] [--force]   create an identity key file (0600)
 *   rdv id [--key PATH] [--json]        print the node ID of a key file
 *                                       (cmd_keys.c)
 *   rdv lookup ID...                    is each node online? (one answer)
 *   rdv watch ID...                     print presence changes until ^C
 *   rdv offer ID                        send an offer, print the answer
 *   rdv listen                          answer offers, print what arrives
 *                                       (cmd_signal.c)
 *   rdv relay ID | rdv relay --accept   pipe stdin/stdout through a relay
 *   rdv proxy ID --listen ADDR          UDP proxy over a relay (and --accept)
 *                                       (--direct: rdv_session_connect(), a direct
 *                                       UDP path first, the relay as fallback)
 *                                       (cmd_relay.c)
 *   rdv network status                  icnctl-style status (cmd_network.c)
 *   rdv fleet keygen | sign ID          fleet key and certificates (cmd_fleet.c)
 *
 * `offer` and `listen` are a two-terminal demo of the signaling exchange.
 * The key path comes from --key, else $RENDEZVOUS_KEY, else
 * ./rendezvous.key; the server from --url, else $RENDEZVOUS_URL, else
 * ws://127.0.0.1:8080/v1. Every command that connects also takes the NAT
 * traversal options (--stun, --no-stun, --udp-port, --direct-timeout,
 * --relay-only, --no-spray, --no-portmap: rdv_cli_apply_nat(), options.c). The network
 * commands run
 * the client in embedded mode (one poll() loop); --json prints one JSON
 * object per line.
 * Exit status: 0 success, 1 failure (including a timeout), 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

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
    "  --no-stun, --udp-port N, --direct-timeout MS, --relay-only, --no-spray,\n"
    "  --no-portmap\n";

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
    "  --no-spray       no many-port probing between symmetric and cone NATs\n"
    "  --no-portmap     never ask the gateway for a port mapping (UPnP-IGD,\n"
    "                   NAT-PMP; asked by default)\n";

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
                usage_net, RDV_CLI_SIGNAL_TIMEOUT_MS);
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
                usage_net, usage_info, RDV_CLI_SIGNAL_TIMEOUT_MS);
    } else if (strcmp(cmd, "listen") == 0) {
        fprintf(out, "usage: rdv listen [options]\n"
                     "Waits for offers, prints each (verified) one and answers it; prints\n"
                     "candidates too. Runs until interrupted.\n%s%s"
                     "  --count N        exit after answering N offers\n"
                     "  --timeout MS     exit (status 1) when nothing was answered in MS\n",
                usage_net, usage_info);
    } else if (strcmp(cmd, "relay") == 0 || strcmp(cmd, "proxy") == 0) {
        rdv_cli_usage_relay(cmd, out, usage_net);
    } else if (strcmp(cmd, "network") == 0) {
        rdv_cli_usage_network(out, usage_net);
    } else {
        fputs(usage_main, out);
        return;
    }
    if (strcmp(cmd, "keygen") != 0 && strcmp(cmd, "id") != 0)
        fputs(usage_nat, out); /* every command that connects */
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
    if (rdv_cli_parse_opts(argc - skip, argv + skip, &o) != 0) {
        usage_cmd(cmd, stderr);
        return 2;
    }
    if (o.help) {
        usage_cmd(cmd, stdout);
        return 0;
    }
    switch (k) {
    case 0: return o.nids ? (usage_cmd(cmd, stderr), 2) : rdv_cli_keygen(&o);
    case 1: return o.nids ? (usage_cmd(cmd, stderr), 2) : rdv_cli_id(&o);
    case 2: return rdv_cli_signaling(RDV_CLI_LOOKUP, &o);
    case 3: return rdv_cli_signaling(RDV_CLI_WATCH, &o);
    case 4: return rdv_cli_signaling(RDV_CLI_OFFER, &o);
    case 5: return rdv_cli_signaling(RDV_CLI_LISTEN, &o);
    case 6: return rdv_cli_relay(&o, 0);
    case 7: return rdv_cli_relay(&o, 1);
    default: return rdv_cli_network_status(&o);
    }
}
