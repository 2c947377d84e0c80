/* cli.h - what the files of the rdv CLI share: the parsed options, the
 * helpers (options.c, common.c, status_file.c) and one entry point per
 * command group (cmd_keys.c, cmd_signal.c, cmd_relay.c, cmd_network.c,
 * cmd_fleet.c),
 * which main.c dispatches to. Commands call helpers, never main.c or each
 * other. Built only on the public API.
 */
#ifndef RDV_CLI_H
#define RDV_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <rendezvous/rendezvous.h>

#define DEFAULT_KEY_PATH "rendezvous.key"
#define DEFAULT_URL "ws://127.0.0.1:8080/v1"
#define MAX_IDS RDV_MAX_IDS_PER_CALL
#define RDV_CLI_SIGNAL_TIMEOUT_MS 15000 /* lookup, offer: overall deadline */

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
    int no_portmap;    /* --no-portmap: portmap_disable */
    int direct;        /* relay / proxy --direct: rdv_session_connect() */
};

/* ---- options.c ---- */

/* Parses the options after the command into *o (defaults from the
 * environment first); returns 0 or 2 on a usage error. */
int rdv_cli_parse_opts(int argc, char **argv, struct cli_opts *o);

/* Parses a decimal in [min, max]. Returns 0 or -1. */
int rdv_cli_parse_long(const char *s, long min, long max, long *out);

/* Copies the NAT traversal options of o into cfg (stun_servers points into
 * o, which must outlive rdv_client_create()). */
void rdv_cli_apply_nat(const struct cli_opts *o, rdv_client_config *cfg);

/* ---- common.c ---- */

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

/* Monotonic clock, ms. */
int64_t rdv_cli_mono_ms(void);

/* ---- status_file.c ---- */

/* The status file's path: --state, else $RENDEZVOUS_STATE, else
 * <key file>.status (built in buf, cap bytes). */
const char *rdv_cli_state_path(const struct cli_opts *o, char *buf, size_t cap);

/* Writes st as key=value lines to path (atomically: temp file + rename),
 * with the writer's pid and command. Failures are ignored. */
void rdv_cli_status_write(const char *path, const char *cmd, const rdv_network_status *st,
                          long pid);

/* Reads a status file into *st; *pid gets its writer, cmd its command.
 * Returns 0 or -1 (no such file). */
int rdv_cli_status_read(const char *path, rdv_network_status *st, long *pid, char *cmd,
                        size_t cmdcap);

/* ---- the commands (each returns the exit status) ---- */

/* `rdv keygen`, `rdv id` (cmd_keys.c). */
int rdv_cli_keygen(const struct cli_opts *o);
int rdv_cli_id(const struct cli_opts *o);

/* `rdv lookup|watch|offer|listen` (cmd_signal.c). */
enum rdv_cli_signal_cmd { RDV_CLI_LOOKUP, RDV_CLI_WATCH, RDV_CLI_OFFER, RDV_CLI_LISTEN };
int rdv_cli_signaling(enum rdv_cli_signal_cmd cmd, struct cli_opts *o);

/* `rdv relay` (proxy = 0) and `rdv proxy` (proxy = 1) (cmd_relay.c), and
 * their --help text; `net` is the common options. */
int rdv_cli_relay(struct cli_opts *o, int proxy);
void rdv_cli_usage_relay(const char *cmd, FILE *out, const char *net);

/* `rdv fleet keygen|sign ...` (cmd_fleet.c): argv after "fleet". Returns
 * the exit status. */
int rdv_cli_fleet(int argc, char **argv);

/* `rdv network status` (cmd_network.c) and its --help text. */
int rdv_cli_network_status(struct cli_opts *o);
void rdv_cli_usage_network(FILE *out, const char *net);

#endif
