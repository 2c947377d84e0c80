/* common.c - what every rdv command that uses a key or a connection
 * shares: loading the key, refusing our own node ID, reporting a client
 * that could not be created or gave up, connection errors printed once,
 * JSON strings, and the monotonic clock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

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

int64_t rdv_cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
