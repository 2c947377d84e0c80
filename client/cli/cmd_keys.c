/* cmd_keys.c - `rdv keygen` (a new identity key file, mode 0600) and
 * `rdv id` (the node ID of a key file).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

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

int rdv_cli_keygen(const struct cli_opts *o)
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

int rdv_cli_id(const struct cli_opts *o)
{
    rdv_identity id;
    if (rdv_cli_load_key("id", o, &id) != 0)
        return 1;
    print_id(&id, o->key_path, o->json);
    rdv_identity_wipe(&id);
    return 0;
}

