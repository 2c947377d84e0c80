/* rdv.c - the rdv command-line tool, built only on librendezvous's public
 * API (rendezvous/rendezvous.h).
 *
 *   rdv keygen [--key PATH] [--force]   create an identity key file (0600)
 *   rdv id [--key PATH] [--json]        print the node ID of a key file
 *
 * The key path comes from --key, else $RENDEZVOUS_KEY, else ./rendezvous.key.
 * Exit status: 0 success, 1 failure, 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rendezvous/rendezvous.h>

#define DEFAULT_KEY_PATH "rendezvous.key"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rdv [--version] [--help] <command> [options]\n"
            "\n"
            "commands:\n"
            "  keygen [--key PATH] [--force]  create a new Ed25519 identity key file\n"
            "                                 (mode 0600; --force overwrites)\n"
            "  id [--key PATH] [--json]       print the node ID of the key file\n"
            "\n"
            "options:\n"
            "  --key PATH   identity key file (env RENDEZVOUS_KEY,\n"
            "               default ./" DEFAULT_KEY_PATH ")\n"
            "  --json       machine-readable output\n"
            "  --help       this text; `rdv <command> --help` for one command\n");
}

struct cli_opts {
    const char *key_path;
    int force;
    int json;
    int help;
};

/* Parses the options after the command; returns 0 or 2 on a usage error. */
static int parse_opts(int argc, char **argv, struct cli_opts *o)
{
    const char *env = getenv("RENDEZVOUS_KEY");
    o->key_path = env && *env ? env : DEFAULT_KEY_PATH;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            o->key_path = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            o->force = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            o->help = 1;
        } else {
            fprintf(stderr, "rdv: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    return 0;
}

static int print_id(const rdv_identity *id, const char *path, int json)
{
    char node_id[RDV_NODE_ID_LEN + 1];
    rdv_identity_node_id(id, node_id);
    if (json)
        /* node IDs are hex and the path is escaped minimally for JSON. */
        printf("{\"nodeID\":\"%s\",\"keyFile\":\"", node_id);
    else
        printf("%s\n", node_id);
    if (json) {
        for (const char *p = path; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\')
                printf("\\%c", c);
            else if (c < 0x20)
                printf("\\u%04x", c);
            else
                putchar(c);
        }
        printf("\"}\n");
    }
    return 0;
}

static int cmd_keygen(const struct cli_opts *o)
{
    rdv_identity id;
    int rc = rdv_identity_generate(&id);
    if (rc == 0)
        rc = rdv_identity_save(&id, o->key_path, o->force);
    if (rc != 0) {
        fprintf(stderr, "rdv keygen: %s: %s%s\n", o->key_path, rdv_strerror(rc),
                rc == RDV_ERR_EXISTS ? " (use --force to replace it)" : "");
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
    int rc = rdv_identity_load(&id, o->key_path);
    if (rc != 0) {
        fprintf(stderr, "rdv id: %s: %s\n", o->key_path, rdv_strerror(rc));
        return 1;
    }
    print_id(&id, o->key_path, o->json);
    rdv_identity_wipe(&id);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("rdv %s\n", RDV_VERSION_STRING);
        return 0;
    }
    struct cli_opts o = {0};
    if (parse_opts(argc - 2, argv + 2, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(&o);
    if (strcmp(cmd, "id") == 0)
        return cmd_id(&o);
    fprintf(stderr, "rdv: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
