/* config.c - flags, RENDEZVOUS_* variables and the --config file (see
 * config.h).
 *
 * One table describes every option: its flag, variable, kind, the field it
 * fills (offsetof), default, range and help text, so adding an option is
 * one row, and --help, the environment, the file and argv can never
 * disagree (a test compares --help with README's table; the man page and
 * the packaged configuration file are generated from --help). Flags
 * take their value as the next argument or after '=' (--port=0); a file
 * line is the flag's name without "--", '=' and the value (port = 0).
 */
#include "rendezvous/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/ids.h" /* and schema/wire_limits.h */

#ifndef SRV_VERSION
#define SRV_VERSION "0.1.0"
#endif

/* Bytes of a text relayData besides the base64 payload:
 * {"relayData":{"sessionID":"<36>","data":""}} is 57; room for whitespace
 * and unknown fields. */
#define RELAY_TEXT_OVERHEAD 128

/* How an option's text becomes its field. K_INT stores into an int or a
 * 64-bit field (int64_t, size_t, uint64_t: the row's min keeps unsigned
 * ones non-negative), chosen by the field's size. K_STR copies into a char
 * array (min 1: must not be empty; max > 0: at most max bytes). */
typedef enum opt_kind {
    K_STR,
    K_INT,
    K_ONOFF,   /* bool: on|off, 1|0, true|false */
    K_FLAG,    /* bool, no value on the command line: 1|0 in the environment */
    K_LEVEL,   /* srv_log_level */
    K_LOOP,    /* bool event_loop_poll: poll|uv */
    K_ALTPORT, /* int, or "auto" (stun_alt_auto) */
} opt_kind;

typedef struct opt {
    const char *flag;     /* "--port" */
    const char *env;      /* "RENDEZVOUS_PORT" */
    const char *metavar;  /* "N" (NULL for K_FLAG) */
    opt_kind kind;
    size_t off, size;     /* the field in srv_config: offsetof, sizeof */
    const char *def;      /* default as text, for --help and the first pass */
    long long min, max;   /* K_INT range; K_STR: non-empty, longest */
    const char *help;
    bool live;            /* LIVE: a SIGHUP applies a new value (reload.h) */
} opt;

/* The option's new value applies on SIGHUP (srv_config_reload); the others
 * need a restart. */
#define LIVE true

/* The field of srv_config an option fills. */
#define F(field) offsetof(srv_config, field), sizeof(((srv_config *)0)->field)

/* A row leaves `live` out when the option needs a restart. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const opt options[] = {
    {"--config", "RENDEZVOUS_CONFIG", "FILE", K_STR, F(config_path), "", 0, 0,
     "read options from FILE, one 'name = value' per line (see above)"},
    {"--listen", "RENDEZVOUS_LISTEN", "ADDR", K_STR, F(listen), "127.0.0.1", 1, 0,
     "address to listen on (0.0.0.0 or :: for all)"},
    {"--port", "RENDEZVOUS_PORT", "N", K_INT, F(port), "8080", 0, 65535,
     "TCP port; 0 picks a free one (logged)"},
    {"--db", "RENDEZVOUS_DB", "PATH", K_STR, F(db_path), "./rendezvous.db", 1, 0,
     "SQLite database (created and migrated at start)"},
    {"--name", "RENDEZVOUS_NAME", "NAME", K_STR, F(name), "rendezvous", 1, RDV_MAX_SERVER_NAME,
     "server name nodes sign in hello"},
    {"--verify-signatures", "RENDEZVOUS_VERIFY_SIGNATURES", "on|off", K_ONOFF,
     F(verify_signatures), "on", 0, 0,
     "check Ed25519 signatures of routed messages (sender binding always checked)", LIVE},
    {"--verify-threads", "RENDEZVOUS_VERIFY_THREADS", "N", K_INT, F(verify_threads), "0", 0, 64,
     "threads that verify signatures of hellos and routed messages, each node's messages "
     "kept in order (0 = one per CPU core)"},
    {"--verify-inline", "RENDEZVOUS_VERIFY_INLINE", "PERCENT", K_INT, F(verify_inline), "50", 0,
     100, "share of the event loop's time it may spend verifying signatures itself before "
     "handing them to the workers: no hand-off at light load, none inline while the loop "
     "runs 5 ms behind (0 = always the workers)"},
    {"--auth-timeout", "RENDEZVOUS_AUTH_TIMEOUT", "MS", K_INT, F(auth_timeout_ms), "10000", 1,
     3600000, "time allowed between connect and a valid hello", LIVE},
    {"--offline-ttl", "RENDEZVOUS_OFFLINE_TTL", "MS", K_INT, F(offline_ttl_ms), "60000", 1, 90000,
     "how long a message waits for an offline node (max 90000)"},
    {"--offline-queue-max", "RENDEZVOUS_OFFLINE_QUEUE_MAX", "N", K_INT, F(offline_queue_max),
     "64", 0, 1000000, "messages waiting per offline node", LIVE},
    {"--max-message-bytes", "RENDEZVOUS_MAX_MESSAGE_BYTES", "N", K_INT, F(max_message_bytes),
     "65536", 512, 16777216, "largest message; larger closes the connection"},
    {"--rate", "RENDEZVOUS_RATE", "N", K_INT, F(rate), "50", 1, 1000000,
     "messages per second per node (token bucket)", LIVE},
    {"--burst", "RENDEZVOUS_BURST", "N", K_INT, F(burst), "100", 1, 1000000, "token bucket size",
     LIVE},
    {"--max-connections", "RENDEZVOUS_MAX_CONNECTIONS", "N", K_INT, F(max_connections), "0", 0,
     100000000, "total connections; 0 = as many as the fd limit allows", LIVE},
    {"--max-connections-per-ip", "RENDEZVOUS_MAX_CONNECTIONS_PER_IP", "N", K_INT,
     F(max_connections_per_ip), "1024", 0, 100000000,
     "connections from one source address (0 = no cap)", LIVE},
    {"--max-handshakes-per-ip", "RENDEZVOUS_MAX_HANDSHAKES_PER_IP", "N", K_INT,
     F(max_handshakes_per_ip), "32", 0, 100000000,
     "connections from one source address still in the HTTP upgrade (0 = no cap)", LIVE},
    {"--accept-batch", "RENDEZVOUS_ACCEPT_BATCH", "N", K_INT, F(accept_batch), "8", 0,
     100000000,
     "new connections accepted per event-loop turn; at N the listener waits for the next "
     "turn, so a reconnect storm cannot stall established nodes' messages (0 = no cap)",
     LIVE},
    {"--handshake-timeout", "RENDEZVOUS_HANDSHAKE_TIMEOUT", "MS", K_INT, F(handshake_timeout_ms),
     "5000", 1000, 60000, "time allowed for the HTTP upgrade request (whole seconds, rounded up)"},
    {"--max-watches", "RENDEZVOUS_MAX_WATCHES", "N", K_INT, F(max_watches), "1024", 0, 1000000,
     "node IDs one node may watch", LIVE},
    {"--ping-interval", "RENDEZVOUS_PING_INTERVAL", "MS", K_INT, F(ping_interval_ms), "20000",
     1000, 65535000, "WebSocket ping interval"},
    {"--idle-timeout", "RENDEZVOUS_IDLE_TIMEOUT", "MS", K_INT, F(idle_timeout_ms), "60000", 1000,
     65535000, "close a connection silent this long"},
    {"--send-queue-max", "RENDEZVOUS_SEND_QUEUE_MAX", "BYTES", K_INT, F(send_queue_max),
     "1048576", 4096, 1073741824, "bytes waiting to be sent to one node; over it: slow_consumer"},
    {"--rx-buffer", "RENDEZVOUS_RX_BUFFER", "BYTES", K_INT, F(rx_buffer_size), "256", 128, 65536,
     "receive chunk per connection: memory of every idle node vs. relay throughput"},
    {"--tls-cert", "RENDEZVOUS_TLS_CERT", "PATH", K_STR, F(tls_cert), "", 0, 0,
     "PEM certificate chain (the certificate, then its intermediates); with --tls-key, serve "
     "wss://; SIGHUP reads both files again (connected nodes stay)"},
    {"--tls-key", "RENDEZVOUS_TLS_KEY", "PATH", K_STR, F(tls_key), "", 0, 0, "PEM private key"},
    {"--operator-listen", "RENDEZVOUS_OPERATOR_LISTEN", "ADDR:PORT|off", K_STR,
     F(operator_listen), "127.0.0.1:9080", 1, 0,
     "the operator's HTTP listener: /metrics, /status, the status page /, /healthz and the "
     "admin API; 0 as PORT picks a free one (logged), off = none"},
    {"--public-status", "RENDEZVOUS_PUBLIC_STATUS", NULL, K_FLAG, F(public_status), "off", 0, 0,
     "also serve /metrics, /status and / on the public port (RENDEZVOUS_PUBLIC_STATUS=1)"},
    {"--admin-token-file", "RENDEZVOUS_ADMIN_TOKEN_FILE", "FILE", K_STR, F(admin_token_file), "",
     0, 0,
     "bearer tokens of the admin API on the operator's listener, 'TOKEN' or 'NAME TOKEN' a "
     "line (or one in RENDEZVOUS_ADMIN_TOKEN); none: the API is off"},
    {"--policy", "RENDEZVOUS_POLICY", "FILE", K_STR, F(policy_path), "", 0, 0,
     "relay and signaling policy by fleet group (README: Policy), read at start and on SIGHUP; "
     "none: every node may relay and signal"},
    {"--relay-max-payload", "RENDEZVOUS_RELAY_MAX_PAYLOAD", "BYTES", K_INT, F(relay_max_payload),
     "16384", 1, 16777216,
     "payload bytes per relayData (lowered to fit --max-message-bytes as base64)"},
    {"--relay-max-sessions", "RENDEZVOUS_RELAY_MAX_SESSIONS", "N", K_INT, F(relay_max_sessions),
     "8", 0, 1000000, "relay sessions per node (0 disables the relay)"},
    {"--relay-rate", "RENDEZVOUS_RELAY_RATE", "BYTES", K_INT, F(relay_rate), "0", 0,
     1099511627776LL, "relayed payload bytes per second per node, 1 s burst (0 = unlimited)"},
    {"--relay-channel", "RENDEZVOUS_RELAY_CHANNEL", "on|off", K_ONOFF, F(relay_channel), "on", 0,
     0, "accept relay channels: a node's second WebSocket (rendezvous.relay.v1) for relay data "
        "only, with a 64 KiB receive buffer"},
    {"--relay-quota", "RENDEZVOUS_RELAY_QUOTA", "BYTES", K_INT, F(relay_quota), "0", 0, 1LL << 53,
     "payload bytes per relay session, then it is closed (0 = unlimited)"},
    {"--relay-global-rate", "RENDEZVOUS_RELAY_GLOBAL_RATE", "BYTES", K_INT, F(relay_global_rate),
     "0", 0, 1099511627776LL, "relayed payload bytes per second, whole server (0 = unlimited)"},
    {"--relay-idle-timeout", "RENDEZVOUS_RELAY_IDLE_TIMEOUT", "MS", K_INT,
     F(relay_idle_timeout_ms), "60000", 100, 86400000,
     "close a relay session without data this long"},
    {"--replay-cache", "RENDEZVOUS_REPLAY_CACHE", "N", K_INT, F(replay_cache), "4096", 0, 65536,
     "signatures of routed offers, answers and candidates one connection's replay filter "
     "keeps, each until 30 s past its timestamp; an exact copy is refused (0 = off)"},
    {"--presence-rate", "RENDEZVOUS_PRESENCE_RATE", "N", K_INT, F(presence_rate), "600", 0,
     1000000000,
     "node IDs one connection may look up or newly watch per minute (token bucket; 0 = no "
     "limit)"},
    {"--presence-burst", "RENDEZVOUS_PRESENCE_BURST", "N", K_INT, F(presence_burst), "1024", 1,
     1000000000, "size of that bucket; never less than --max-watches"},
    {"--stun", "RENDEZVOUS_STUN", "on|off", K_ONOFF, F(stun), "on", 0, 0,
     "answer STUN Binding requests (RFC 8489) on UDP at the --listen address"},
    {"--stun-port", "RENDEZVOUS_STUN_PORT", "N", K_INT, F(stun_port), "3478", 0, 65535,
     "STUN UDP port; 0 picks a free one (logged)"},
    {"--stun-alt-port", "RENDEZVOUS_STUN_ALT_PORT", "N|auto", K_ALTPORT, F(stun_alt_port), "auto",
     0, 65535,
     "second STUN UDP port for RFC 5780 NAT behaviour tests; auto = --stun-port + 1 "
     "(none when --stun-port is 0; left out with a warning when taken), 0 = none"},
    {"--stun-alt-address", "RENDEZVOUS_STUN_ALT_ADDRESS", "ADDR", K_STR, F(stun_alt_address), "",
     0, 0, "second IP of this host for RFC 5780 address tests (needs a specific --listen)"},
    {"--drain-window", "RENDEZVOUS_DRAIN_WINDOW", "MS", K_INT, F(drain_window_ms), "0", 0,
     3600000,
     "on SIGTERM, close the nodes in batches over this long so they reconnect to other "
     "instances spread out (0 = all at once)", LIVE},
    {"--redis", "RENDEZVOUS_REDIS", "URL", K_STR, F(redis_url), "", 0, 0,
     "join the cluster sharing this Redis (redis://HOST:PORT[/DB] or unix:///PATH; password "
     "from RENDEZVOUS_REDIS_PASSWORD)"},
    {"--admission", "RENDEZVOUS_ADMISSION", "MODE", K_STR, F(admission), "open", 1, 0,
     "who may authenticate: open, allowlist (node IDs the operator added), fleet (nodes "
     "with a fleet certificate) or allowlist,fleet (either suffices); revoked nodes never"},
    {"--fleet-key", "RENDEZVOUS_FLEET_KEY", "KEYS", K_STR, F(fleet_keys), "", 0, 0,
     "trusted fleet public keys (hex or base64), comma separated: two while rotating"},
    {"--fleet-key-file", "RENDEZVOUS_FLEET_KEY_FILE", "FILE", K_STR, F(fleet_key_file), "", 0,
     0, "file of more trusted fleet public keys, one a line ('#' comments)"},
    {"--event-loop", "RENDEZVOUS_EVENT_LOOP", "uv|poll", K_LOOP, F(event_loop_poll), "uv", 0, 0,
     "lws' libuv loop (epoll; a plugin, poll when missing), or its poll() loop, whose every "
     "wake-up scans all connections"},
    {"--log-level", "RENDEZVOUS_LOG_LEVEL", "LEVEL", K_LEVEL, F(log.level), "info", 0, 0,
     "debug, info, warn or error (NOTICE lines are always written)", LIVE},
    {"--log-json", "RENDEZVOUS_LOG_JSON", NULL, K_FLAG, F(log.json), "off", 0, 0,
     "one JSON object per log line (RENDEZVOUS_LOG_JSON=1)"},
};
#pragma GCC diagnostic pop
#define N_OPTIONS (sizeof options / sizeof options[0])

/* Parses an on|off value (also 1/0, true/false) into *out; false (with a
 * message naming src) otherwise. */
static bool parse_onoff(const char *val, const char *src, bool *out)
{
    if (!strcmp(val, "on") || !strcmp(val, "1") || !strcmp(val, "true"))
        *out = true;
    else if (!strcmp(val, "off") || !strcmp(val, "0") || !strcmp(val, "false"))
        *out = false;
    else {
        fprintf(stderr, "rendezvousd: %s: '%s' must be 'on' or 'off'\n", src, val);
        return false;
    }
    return true;
}

/* Parses an integer in o's range; false (with a message naming src)
 * otherwise. */
static bool parse_int(const opt *o, const char *val, const char *src, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || !*val || *end || v < o->min || v > o->max) {
        fprintf(stderr, "rendezvousd: %s: '%s' is not an integer in %lld..%lld\n", src, val,
                o->min, o->max);
        return false;
    }
    *out = v;
    return true;
}

/* Parses val for option i into its field of cfg (the row says how and
 * where). src names the flag, variable or "default" in messages. */
static bool store_value(srv_config *cfg, size_t i, const char *val, const char *src)
{
    const opt *o = &options[i];
    char *field = (char *)cfg + o->off;
    switch (o->kind) {
    case K_STR: {
        size_t n = strlen(val);
        if (n >= o->size || (o->min > 0 && n == 0) || (o->max > 0 && n > (size_t)o->max)) {
            fprintf(stderr, "rendezvousd: %s: '%s' is empty or too long\n", src, val);
            return false;
        }
        memcpy(field, val, n + 1);
        break;
    }
    case K_ALTPORT:
        cfg->stun_alt_auto = !strcmp(val, "auto");
        if (cfg->stun_alt_auto) {
            cfg->stun_alt_port = 0; /* resolved after every source was read */
            break;
        }
        __attribute__((fallthrough)); /* a port number */
    case K_INT: {
        long long v;
        if (!parse_int(o, val, src, &v))
            return false;
        if (o->size == sizeof(int)) {
            int iv = (int)v;
            memcpy(field, &iv, sizeof iv);
        } else {
            int64_t lv = (int64_t)v; /* int64_t, size_t, uint64_t: min >= 0 for the unsigned */
            memcpy(field, &lv, sizeof lv);
        }
        break;
    }
    case K_ONOFF:
        if (!parse_onoff(val, src, (bool *)field))
            return false;
        break;
    case K_FLAG:
        if (!strcmp(val, "1") || !strcmp(val, "on") || !strcmp(val, "true"))
            *(bool *)field = true;
        else if (!strcmp(val, "0") || !strcmp(val, "off") || !strcmp(val, "false") || !*val)
            *(bool *)field = false;
        else {
            fprintf(stderr, "rendezvousd: %s: '%s' must be 1 or 0\n", src, val);
            return false;
        }
        break;
    case K_LEVEL:
        if (!srv_log_level_parse(val, (srv_log_level *)field)) {
            fprintf(stderr, "rendezvousd: %s: '%s' must be debug, info, warn or error\n", src,
                    val);
            return false;
        }
        break;
    case K_LOOP:
        if (strcmp(val, "uv") && strcmp(val, "poll")) {
            fprintf(stderr, "rendezvousd: %s: '%s' must be uv or poll\n", src, val);
            return false;
        }
        *(bool *)field = !strcmp(val, "poll");
        break;
    }
    if (!strncmp(o->flag, "--stun", 6) && strcmp(src, "default"))
        cfg->stun_explicit = true;
    if (!strcmp(o->flag, "--operator-listen") && strcmp(src, "default"))
        cfg->operator_explicit = true;
    return true;
}

/* Address family of a numeric IP literal, or 0. */
static int ip_family(const char *s)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, s, buf) == 1)
        return AF_INET6;
    return 0;
}

/* The STUN options against each other and --listen (the STUN socket binds
 * the --listen address, which must then be a numeric IP). */
static bool check_stun(const srv_config *cfg)
{
    if (!cfg->stun)
        return true;
    if (cfg->stun_alt_port && cfg->stun_alt_port == cfg->stun_port) {
        fprintf(stderr, "rendezvousd: --stun-alt-port must differ from --stun-port\n");
        return false;
    }
    if (!cfg->stun_alt_address[0])
        return true;
    int fam = ip_family(cfg->listen);
    int alt = ip_family(cfg->stun_alt_address);
    if (!alt) {
        fprintf(stderr, "rendezvousd: --stun-alt-address: '%s' is not an IP address\n",
                cfg->stun_alt_address);
        return false;
    }
    if (!fam || !strcmp(cfg->listen, "0.0.0.0") || !strcmp(cfg->listen, "::") ||
        fam != alt || !strcmp(cfg->listen, cfg->stun_alt_address)) {
        fprintf(stderr,
                "rendezvousd: --stun-alt-address needs --listen to be one other IP address "
                "of the same family (not a wildcard or a name)\n");
        return false;
    }
    return true;
}

/* --operator-listen: "off", or ADDR:PORT with ADDR a numeric IP ("[v6]" for
 * IPv6) into operator_addr / operator_port. */
static bool check_operator(srv_config *cfg)
{
    const char *v = cfg->operator_listen;
    cfg->operator_off = !strcmp(v, "off");
    if (cfg->operator_off)
        return true;
    const char *colon = strrchr(v, ':');
    size_t alen = colon ? (size_t)(colon - v) : 0;
    if (alen >= 2 && v[0] == '[' && v[alen - 1] == ']') {
        v++;
        alen -= 2;
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || alen == 0 || alen >= sizeof cfg->operator_addr || !colon[1] || *end ||
        port < 0 || port > 65535) {
        fprintf(stderr, "rendezvousd: --operator-listen: '%s' must be ADDR:PORT (e.g. "
                        "127.0.0.1:9080, [::1]:9080) or off\n",
                cfg->operator_listen);
        return false;
    }
    memcpy(cfg->operator_addr, v, alen);
    cfg->operator_addr[alen] = '\0';
    if (!ip_family(cfg->operator_addr)) {
        fprintf(stderr, "rendezvousd: --operator-listen: '%s' is not an IP address\n",
                cfg->operator_addr);
        return false;
    }
    cfg->operator_port = (int)port;
    return true;
}

static void print_help(void)
{
    printf("Usage: rendezvousd [OPTION]...\n"
           "WebSocket rendezvous server for NATed nodes (protocol %s, path %s).\n\n"
           "Every option is also an environment variable and a line of the --config\n"
           "file: flags win over the environment, the environment over the file, the\n"
           "file over the defaults. Times are in milliseconds.\n\n"
           "Configuration file:\n"
           "A line of the --config file is an option's flag without the leading\n"
           "dashes, '=' and the value, e.g. 'port = 8080' or 'log-json = on'; spaces\n"
           "around '=' are optional and the value is taken literally (no quotes).\n"
           "Blank lines are ignored, and '#' starts a comment at the start of a line\n"
           "or after a space. An unknown name, a bad value or a name given twice\n"
           "stops the server at start (exit status 2) with FILE:LINE and the reason.\n\n"
           "Reload:\n"
           "SIGHUP re-reads the --config file (flags and the environment still win)\n"
           "and applies the options marked 'reloaded on SIGHUP' below; the others\n"
           "need a restart (a changed one is logged). A file that has become\n"
           "invalid changes nothing: the server logs why and keeps running.\n\n"
           "Options:\n",
           RDV_WS_SUBPROTOCOL, RDV_WS_PATH);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        char lhs[64];
        snprintf(lhs, sizeof lhs, "%s%s%s", o->flag, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        printf("  %-32s %s%s\n  %-32s   env %s, default %s\n", lhs, o->help,
               o->live ? " (reloaded on SIGHUP)" : "", "", o->env, *o->def ? o->def : "none");
    }
    printf("  %-32s %s\n  %-32s %s\n", "-h, --help", "print this help and exit", "--version",
           "print the version and exit");
    printf("  %-32s %s\n  %-32s %s\n  %-32s %s\n", "--healthcheck[=PID]",
           "GET /healthz where the server configured by the other options listens",
           "", "(with =PID: by that running rendezvousd's command line, environment",
           "", "and directory); exit 0 when it answers 200, else 1");
}

/* Index of the option named by arg (up to '=' if any), or -1. */
static int find_flag(const char *arg, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].flag) == len && !strncmp(options[i].flag, arg, len))
            return (int)i;
    return -1;
}

/* True when option i is --config. */
static bool is_config(size_t i)
{
    return options[i].off == offsetof(srv_config, config_path);
}

/* The --config file to read: the last --config on the command line, else
 * RENDEZVOUS_CONFIG; NULL for none. NULL too when argv asks for --help or
 * --version, which work whatever the file holds. Errors in argv are left
 * to the pass that applies it. */
static const char *config_file(int argc, char **argv)
{
    const char *path = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (is_config(i))
            path = getenv(options[i].env);
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "--version"))
            return NULL;
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        int i = find_flag(arg, flen);
        if (i < 0 || options[i].kind == K_FLAG)
            continue;
        const char *val = eq ? eq + 1 : a + 1 < argc ? argv[++a] : NULL;
        if (val && is_config((size_t)i))
            path = val;
    }
    return path && *path ? path : NULL;
}

/* Trims spaces at both ends of s in place; returns its first non-space. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

#define CONFIG_LINE_MAX 4096

/* Applies one line of the --config file (README "Configuration file"):
 * blank, a comment, or name = value. seen[] holds the line that set each
 * option (0 = none yet). Prints the reason, naming path:lineno, and
 * returns false for a bad line. */
static bool config_line(srv_config *cfg, const char *path, unsigned lineno, char *line,
                        unsigned seen[])
{
    for (char *p = line; *p; p++)
        if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            break;
        }
    char *s = trim(line);
    if (!*s)
        return true;
    char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        fprintf(stderr, "rendezvousd: %s:%u: expected 'name = value' (e.g. 'port = 8080'), "
                        "got '%s'\n", path, lineno, s);
        return false;
    }
    *eq = '\0';
    char *name = trim(s), *val = trim(eq + 1);
    char flag[64];
    int i = -1;
    if ((size_t)snprintf(flag, sizeof flag, "--%s", name) < sizeof flag && name[0] != '-')
        i = find_flag(flag, strlen(flag));
    if (i < 0) {
        fprintf(stderr, "rendezvousd: %s:%u: unknown option '%s' (names are the flags of "
                        "--help without '--')\n", path, lineno, name);
        return false;
    }
    if (is_config((size_t)i)) {
        fprintf(stderr, "rendezvousd: %s:%u: 'config' cannot be set in a configuration file\n",
                path, lineno);
        return false;
    }
    if (seen[i]) {
        fprintf(stderr, "rendezvousd: %s:%u: '%s' is already set on line %u\n", path, lineno,
                name, seen[i]);
        return false;
    }
    seen[i] = lineno;
    char src[1200];
    snprintf(src, sizeof src, "%s:%u: %s", path, lineno, name);
    return store_value(cfg, (size_t)i, val, src);
}

/* Reads the --config file into cfg. false (reason printed) when it cannot
 * be read or a line is bad. */
static bool read_config(srv_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "rendezvousd: --config %s: cannot open: %s\n", path, strerror(errno));
        return false;
    }
    unsigned seen[N_OPTIONS] = {0};
    char line[CONFIG_LINE_MAX + 2];
    unsigned lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            fprintf(stderr, "rendezvousd: %s:%u: line longer than %d bytes\n", path, lineno,
                    CONFIG_LINE_MAX);
            ok = false;
            break;
        }
        ok = config_line(cfg, path, lineno, line, seen);
    }
    if (ok && ferror(f)) {
        fprintf(stderr, "rendezvousd: --config %s: read error: %s\n", path, strerror(errno));
        ok = false;
    }
    if (fclose(f) != 0 && ok) {
        fprintf(stderr, "rendezvousd: --config %s: %s\n", path, strerror(errno));
        ok = false;
    }
    return ok;
}

srv_config_result srv_config_load(srv_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].kind == K_FLAG)
            continue;
        if (!store_value(cfg, i, options[i].def, "default"))
            return SRV_CONFIG_ERROR;
    }
    const char *file = config_file(argc, argv);
    if (file && !read_config(cfg, file))
        return SRV_CONFIG_ERROR;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && !store_value(cfg, i, v, options[i].env))
            return SRV_CONFIG_ERROR;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            print_help();
            return SRV_CONFIG_EXIT_OK;
        }
        if (!strcmp(arg, "--version")) {
            printf("rendezvousd %s (protocol %d)\n", SRV_VERSION, RDV_PROTOCOL_VERSION);
            return SRV_CONFIG_EXIT_OK;
        }
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        int i = find_flag(arg, flen);
        if (i < 0) {
            fprintf(stderr, "rendezvousd: unknown option '%.*s' (see --help)\n", (int)flen, arg);
            return SRV_CONFIG_ERROR;
        }
        const char *val;
        if (options[i].kind == K_FLAG) {
            val = eq ? eq + 1 : "1";
        } else if (eq) {
            val = eq + 1;
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            fprintf(stderr, "rendezvousd: %s needs a value (%s)\n", options[i].flag,
                    options[i].metavar);
            return SRV_CONFIG_ERROR;
        }
        if (!store_value(cfg, (size_t)i, val, options[i].flag))
            return SRV_CONFIG_ERROR;
    }
    if (!*cfg->tls_cert != !*cfg->tls_key) {
        fprintf(stderr, "rendezvousd: --tls-cert and --tls-key must be given together\n");
        return SRV_CONFIG_ERROR;
    }
    if (cfg->ping_interval_ms >= cfg->idle_timeout_ms) {
        fprintf(stderr,
                "rendezvousd: --ping-interval (%lld) must be below --idle-timeout (%lld)\n",
                (long long)cfg->ping_interval_ms, (long long)cfg->idle_timeout_ms);
        return SRV_CONFIG_ERROR;
    }
    if (cfg->burst < 1 || cfg->rate < 1)
        return SRV_CONFIG_ERROR;
    if (cfg->stun_alt_auto)
        cfg->stun_alt_port = cfg->stun_port > 0 && cfg->stun_port < 65535 ? cfg->stun_port + 1 : 0;
    if (!check_stun(cfg))
        return SRV_CONFIG_ERROR;
    if (!check_operator(cfg))
        return SRV_CONFIG_ERROR;
    /* a relayData of the largest payload must fit one message in both
     * forms, binary (17-byte header) and text (base64 plus the envelope):
     * a smaller --max-message-bytes lowers the relay payload with it
     * (welcome.limits announces the value in force) */
    size_t fit = (cfg->max_message_bytes - RELAY_TEXT_OVERHEAD) / 4 * 3;
    if (cfg->relay_max_payload > fit)
        cfg->relay_max_payload = fit;
    return SRV_CONFIG_RUN;
}

int srv_config_reload(srv_config *live, int argc, char **argv, char *restart, size_t restartlen,
                      char *err, size_t errlen)
{
    if (restartlen)
        restart[0] = '\0';
    srv_config *fresh = malloc(sizeof *fresh);
    if (!fresh) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (srv_config_load(fresh, argc, argv) != SRV_CONFIG_RUN) {
        free(fresh);
        snprintf(err, errlen, "%.900s is invalid (the line above says why)",
                 live->config_path[0] ? live->config_path : "the configuration");
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        char *dst = (char *)live + o->off;
        const char *src = (const char *)fresh + o->off;
        if (!memcmp(dst, src, o->size))
            continue;
        if (o->live) {
            memcpy(dst, src, o->size);
        } else if (n + 1 < restartlen) {
            int w = snprintf(restart + n, restartlen - n, "%s%s", n ? ", " : "", o->flag + 2);
            n += w > 0 ? (size_t)w : 0;
            if (n >= restartlen)
                n = restartlen - 1;
        }
    }
    free(fresh);
    return 0;
}
