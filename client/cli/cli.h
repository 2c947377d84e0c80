/* cli.h - what the files of the rdv CLI share: the parsed options and a few
 * helpers (rdv.c parses and dispatches; relay_cmds.c implements `relay`,
 * `proxy` and `network status`). Built only on the public API.
 */
#ifndef RDV_CLI_H
#define RDV_CLI_H

#include <stdio.h>

#include <rendezvous/rendezvous.h>

#define DEFAULT_KEY_PATH "rendezvous.key"
#define DEFAULT_URL "ws://127.0.0.1:8080/v1"
#define MAX_IDS RDV_MAX_IDS_PER_CALL

struct cli_opts {
    const char *key_path;
    const char *url;        /* one URL, or several separated by commas */
    char url_list[2048];    /* repeated --url joined with commas */
    const char *ca;
    const char *cert;       /* --cert FILE / RENDEZVOUS_CERT: fleet certificate */
    int force;
    int json;
    int help;
    long timeout_ms;   /* -1: not given */
    long count;        /* 0: unlimited */
    const char *session;
    rdv_connection_info info;
    int public_ip_set;
    const char *ids[MAX_IDS];
    int nids;
    /* relay / proxy / network status */
    int accept;        /* --accept: the accepting side */
    long wait_ms;      /* --wait: linger after stdin EOF; -1 forever; -2 unset */
    const char *listen;   /* --listen ADDR */
    const char *forward;  /* --forward ADDR */
    const char *state_path; /* --state FILE */
    int no_connect;    /* network status: only read the state file */
    int once;          /* proxy: do not reopen a lost session */
    /* NAT traversal (every command that connects; README "rdv") */
    const char *stun[RDV_MAX_STUN_SERVERS]; /* --stun HOST:PORT, in order */
    int nstun;
    int no_stun;       /* --no-stun: stun_disable */
    long udp_port;     /* --udp-port; 0: any */
    long direct_timeout_ms; /* --direct-timeout; 0: the library's default */
    int relay_only;    /* --relay-only: direct_disable */
    int no_spray;      /* --no-spray: spray_ports -1 */
    int direct;        /* relay / proxy --direct: rdv_connect() */
};

/* `rdv fleet keygen|sign ...` (fleet_cmds.c): argv after "fleet". Returns
 * the exit status. */
int rdv_cli_fleet(int argc, char **argv);

/* Parses a decimal in [min, max]. Returns 0 or -1. */
int rdv_cli_parse_long(const char *s, long min, long max, long *out);

/* Copies the NAT traversal options of o into cfg (stun_servers points into
 * o, which must outlive rdv_client_create()). */
void rdv_cli_apply_nat(const struct cli_opts *o, rdv_client_config *cfg);

/* Reports a failed rdv_client_create() for command cmd; returns the exit
 * status (2 for RDV_ERR_INVALID, else 1). */
int rdv_cli_create_failed(const char *cmd, const struct cli_opts *o, int rc);

/* Loads the key file of o into *id for command cmd; on failure prints what
 * to do (a missing file: run `rdv keygen`) and returns non-zero. */
int rdv_cli_load_key(const char *cmd, const struct cli_opts *o, rdv_identity *id);

/* Refuses (status 2, with a message) a session or offer to our own node
 * ID: returns 0 when peer is not id's node ID, else 2. */
int rdv_cli_not_self(const char *cmd, const char *what, const rdv_identity *id,
                     const struct cli_opts *o, const char *peer);

/* Connection failures as cb_error reports them, printed once: returns 1
 * when e is the report of a connection that ended (its text is
 * rdv_client_info.last_error_text) - printed unless `quiet` or the same
 * text was printed last time (`last`, cap bytes, remembers it) - else 0. */
int rdv_cli_conn_error(const char *cmd, rdv_client *c, const rdv_error_info *e, int quiet,
                       char *last, size_t cap);

/* The line for a client that gave up (RDV_STATE_FAILED): the last
 * connection error, naming the URL and the cause. */
void rdv_cli_print_failed(const char *cmd, rdv_client *c);

/* Prints s as a JSON string (quoted, escaped) on stdout. */
void rdv_cli_json_str(const char *s);

/* The same on f. */
void rdv_cli_json_fstr(FILE *f, const char *s);

/* `rdv relay` (proxy = 0) and `rdv proxy` (proxy = 1). Exit status. */
int rdv_cli_relay(struct cli_opts *o, int proxy);

/* `rdv network status`. Exit status. */
int rdv_cli_network_status(struct cli_opts *o);

/* --help text of relay / proxy / network; `net` is the common options. */
void rdv_cli_usage_relay(const char *cmd, FILE *out, const char *net);

#endif
