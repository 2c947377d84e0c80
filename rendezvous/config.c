/* config.c - flags and RENDEZVOUS_* variables (see config.h).
 *
 * One table describes every option: its flag, variable, default, range and
 * help text, so --help, the environment and argv can never disagree. Flags
 * take their value as the next argument or after '=' (--port=0).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h" /* and schema/wire_limits.h */

#ifndef RDV_VERSION
#define RDV_VERSION "0.1.0"
#endif

/* Bytes of a text relayData besides the base64 payload:
 * {"relayData":{"sessionID":"<36>","data":""}} is 57; room for whitespace
 * and unknown fields. */
#define RELAY_TEXT_OVERHEAD 128

typedef enum opt_kind { K_STR, K_INT, K_ONOFF, K_FLAG, K_LEVEL } opt_kind;

typedef struct opt {
    const char *flag;     /* "--port" */
    const char *env;      /* "RENDEZVOUS_PORT" */
    const char *metavar;  /* "N" (NULL for K_FLAG) */
    opt_kind kind;
    const char *def;      /* default as text, for --help and the first pass */
    long long min, max;   /* K_INT range */
    const char *help;
} opt;

static const opt options[] = {
    {"--listen", "RENDEZVOUS_LISTEN", "ADDR", K_STR, "127.0.0.1", 0, 0,
     "address to listen on (0.0.0.0 or :: for all)"},
    {"--port", "RENDEZVOUS_PORT", "N", K_INT, "8080", 0, 65535,
     "TCP port; 0 picks a free one (logged)"},
    {"--db", "RENDEZVOUS_DB", "PATH", K_STR, "./rendezvous.db", 0, 0,
     "SQLite database (created and migrated at start)"},
    {"--name", "RENDEZVOUS_NAME", "NAME", K_STR, "rendezvous", 0, 0,
     "server name nodes sign in hello"},
    {"--verify-signatures", "RENDEZVOUS_VERIFY_SIGNATURES", "on|off", K_ONOFF, "on", 0, 0,
     "check Ed25519 signatures of routed messages (sender binding always checked)"},
    {"--auth-timeout", "RENDEZVOUS_AUTH_TIMEOUT", "MS", K_INT, "10000", 1, 3600000,
     "time allowed between connect and a valid hello"},
    {"--offline-ttl", "RENDEZVOUS_OFFLINE_TTL", "MS", K_INT, "60000", 1, 90000,
     "how long a message waits for an offline node (max 90000)"},
    {"--offline-queue-max", "RENDEZVOUS_OFFLINE_QUEUE_MAX", "N", K_INT, "64", 0, 1000000,
     "messages waiting per offline node"},
    {"--max-message-bytes", "RENDEZVOUS_MAX_MESSAGE_BYTES", "N", K_INT, "65536", 512,
     16777216, "largest message; larger closes the connection"},
    {"--rate", "RENDEZVOUS_RATE", "N", K_INT, "50", 1, 1000000,
     "messages per second per node (token bucket)"},
    {"--burst", "RENDEZVOUS_BURST", "N", K_INT, "100", 1, 1000000, "token bucket size"},
    {"--max-connections", "RENDEZVOUS_MAX_CONNECTIONS", "N", K_INT, "0", 0, 100000000,
     "total connections; 0 = as many as the fd limit allows"},
    {"--max-connections-per-ip", "RENDEZVOUS_MAX_CONNECTIONS_PER_IP", "N", K_INT, "1024", 0,
     100000000, "connections from one source address (0 = no cap)"},
    {"--max-handshakes-per-ip", "RENDEZVOUS_MAX_HANDSHAKES_PER_IP", "N", K_INT, "32", 0,
     100000000, "connections from one source address still in the HTTP upgrade (0 = no cap)"},
    {"--handshake-timeout", "RENDEZVOUS_HANDSHAKE_TIMEOUT", "MS", K_INT, "5000", 1000, 60000,
     "time allowed for the HTTP upgrade request (whole seconds, rounded up)"},
    {"--max-watches", "RENDEZVOUS_MAX_WATCHES", "N", K_INT, "1024", 0, 1000000,
     "node IDs one node may watch"},
    {"--ping-interval", "RENDEZVOUS_PING_INTERVAL", "MS", K_INT, "20000", 1000, 65535000,
     "WebSocket ping interval"},
    {"--idle-timeout", "RENDEZVOUS_IDLE_TIMEOUT", "MS", K_INT, "60000", 1000, 65535000,
     "close a connection silent this long"},
    {"--send-queue-max", "RENDEZVOUS_SEND_QUEUE_MAX", "BYTES", K_INT, "1048576", 4096,
     1073741824, "bytes waiting to be sent to one node; over it: slow_consumer"},
    {"--rx-buffer", "RENDEZVOUS_RX_BUFFER", "BYTES", K_INT, "256", 128, 65536,
     "receive chunk per connection: memory of every idle node vs. relay throughput"},
    {"--tls-cert", "RENDEZVOUS_TLS_CERT", "PATH", K_STR, "", 0, 0,
     "PEM certificate; with --tls-key, serve wss://"},
    {"--tls-key", "RENDEZVOUS_TLS_KEY", "PATH", K_STR, "", 0, 0, "PEM private key"},
    {"--relay-max-payload", "RENDEZVOUS_RELAY_MAX_PAYLOAD", "BYTES", K_INT, "16384", 1,
     16777216, "payload bytes per relayData (lowered to fit --max-message-bytes as base64)"},
    {"--relay-max-sessions", "RENDEZVOUS_RELAY_MAX_SESSIONS", "N", K_INT, "8", 0, 1000000,
     "relay sessions per node (0 disables the relay)"},
    {"--relay-rate", "RENDEZVOUS_RELAY_RATE", "BYTES", K_INT, "134217728", 0,
     1099511627776LL, "relayed payload bytes per second per node, 1 s burst (0 = unlimited)"},
    {"--relay-quota", "RENDEZVOUS_RELAY_QUOTA", "BYTES", K_INT, "0", 0, 1LL << 53,
     "payload bytes per relay session, then it is closed (0 = unlimited)"},
    {"--relay-global-rate", "RENDEZVOUS_RELAY_GLOBAL_RATE", "BYTES", K_INT, "0", 0,
     1099511627776LL, "relayed payload bytes per second, whole server (0 = unlimited)"},
    {"--relay-idle-timeout", "RENDEZVOUS_RELAY_IDLE_TIMEOUT", "MS", K_INT, "60000", 100,
     86400000, "close a relay session without data this long"},
    {"--stun", "RENDEZVOUS_STUN", "on|off", K_ONOFF, "on", 0, 0,
     "answer STUN Binding requests (RFC 8489) on UDP at the --listen address"},
    {"--stun-port", "RENDEZVOUS_STUN_PORT", "N", K_INT, "3478", 0, 65535,
     "STUN UDP port; 0 picks a free one (logged)"},
    {"--stun-alt-port", "RENDEZVOUS_STUN_ALT_PORT", "N|auto", K_INT, "auto", 0, 65535,
     "second STUN UDP port for RFC 5780 NAT behaviour tests; auto = --stun-port + 1 "
     "(none when --stun-port is 0; left out with a warning when taken), 0 = none"},
    {"--stun-alt-address", "RENDEZVOUS_STUN_ALT_ADDRESS", "ADDR", K_STR, "", 0, 0,
     "second IP of this host for RFC 5780 address tests (needs a specific --listen)"},
    {"--event-loop", "RENDEZVOUS_EVENT_LOOP", "poll|uv", K_STR, "poll", 0, 0,
     "lws' poll() loop, or its libuv loop (plugin; poll when missing)"},
    {"--log-level", "RENDEZVOUS_LOG_LEVEL", "LEVEL", K_LEVEL, "info", 0, 0,
     "debug, info, warn or error"},
    {"--log-json", "RENDEZVOUS_LOG_JSON", NULL, K_FLAG, "off", 0, 0,
     "one JSON object per log line (RENDEZVOUS_LOG_JSON=1)"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

/* Copies s into dst[cap]; false when it does not fit. */
static bool copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

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

/* Where option i stores its value; sets the string buffer or number. */
static bool store_value(rdv_config *cfg, size_t i, const char *val, const char *src)
{
    const opt *o = &options[i];
    long long v = 0;
    if (!strcmp(o->flag, "--stun-alt-port")) {
        cfg->stun_alt_auto = !strcmp(val, "auto");
        if (cfg->stun_alt_auto) {
            cfg->stun_alt_port = 0; /* resolved after every source was read */
            if (strcmp(src, "default"))
                cfg->stun_explicit = true;
            return true;
        }
    }
    if (o->kind == K_INT) {
        char *end = NULL;
        errno = 0;
        v = strtoll(val, &end, 10);
        if (errno || !*val || *end || v < o->min || v > o->max) {
            fprintf(stderr, "rendezvousd: %s: '%s' is not an integer in %lld..%lld\n", src, val,
                    o->min, o->max);
            return false;
        }
    }
    const char *f = o->flag;
    bool ok = true;
    if (!strcmp(f, "--listen")) {
        ok = copy_str(cfg->listen, sizeof cfg->listen, val) && *val;
    } else if (!strcmp(f, "--port")) {
        cfg->port = (int)v;
    } else if (!strcmp(f, "--db")) {
        ok = copy_str(cfg->db_path, sizeof cfg->db_path, val) && *val;
    } else if (!strcmp(f, "--name")) {
        ok = copy_str(cfg->name, sizeof cfg->name, val) && *val &&
             strlen(val) <= RDV_MAX_SERVER_NAME;
    } else if (!strcmp(f, "--verify-signatures")) {
        if (!parse_onoff(val, src, &cfg->verify_signatures))
            return false;
    } else if (!strcmp(f, "--stun")) {
        if (!parse_onoff(val, src, &cfg->stun))
            return false;
    } else if (!strcmp(f, "--stun-port")) {
        cfg->stun_port = (int)v;
    } else if (!strcmp(f, "--stun-alt-port")) {
        cfg->stun_alt_port = (int)v;
    } else if (!strcmp(f, "--stun-alt-address")) {
        ok = copy_str(cfg->stun_alt_address, sizeof cfg->stun_alt_address, val);
    } else if (!strcmp(f, "--auth-timeout")) {
        cfg->auth_timeout_ms = v;
    } else if (!strcmp(f, "--offline-ttl")) {
        cfg->offline_ttl_ms = v;
    } else if (!strcmp(f, "--offline-queue-max")) {
        cfg->offline_queue_max = (int)v;
    } else if (!strcmp(f, "--max-message-bytes")) {
        cfg->max_message_bytes = (size_t)v;
    } else if (!strcmp(f, "--rate")) {
        cfg->rate = (int)v;
    } else if (!strcmp(f, "--burst")) {
        cfg->burst = (int)v;
    } else if (!strcmp(f, "--max-connections")) {
        cfg->max_connections = (int)v;
    } else if (!strcmp(f, "--max-connections-per-ip")) {
        cfg->max_connections_per_ip = (int)v;
    } else if (!strcmp(f, "--max-handshakes-per-ip")) {
        cfg->max_handshakes_per_ip = (int)v;
    } else if (!strcmp(f, "--handshake-timeout")) {
        cfg->handshake_timeout_ms = v;
    } else if (!strcmp(f, "--max-watches")) {
        cfg->max_watches = (int)v;
    } else if (!strcmp(f, "--ping-interval")) {
        cfg->ping_interval_ms = v;
    } else if (!strcmp(f, "--idle-timeout")) {
        cfg->idle_timeout_ms = v;
    } else if (!strcmp(f, "--send-queue-max")) {
        cfg->send_queue_max = (size_t)v;
    } else if (!strcmp(f, "--rx-buffer")) {
        cfg->rx_buffer_size = (size_t)v;
    } else if (!strcmp(f, "--tls-cert")) {
        ok = copy_str(cfg->tls_cert, sizeof cfg->tls_cert, val);
    } else if (!strcmp(f, "--tls-key")) {
        ok = copy_str(cfg->tls_key, sizeof cfg->tls_key, val);
    } else if (!strcmp(f, "--relay-max-payload")) {
        cfg->relay_max_payload = (size_t)v;
    } else if (!strcmp(f, "--relay-max-sessions")) {
        cfg->relay_max_sessions = (int)v;
    } else if (!strcmp(f, "--relay-rate")) {
        cfg->relay_rate = (uint64_t)v;
    } else if (!strcmp(f, "--relay-quota")) {
        cfg->relay_quota = (uint64_t)v;
    } else if (!strcmp(f, "--relay-global-rate")) {
        cfg->relay_global_rate = (uint64_t)v;
    } else if (!strcmp(f, "--relay-idle-timeout")) {
        cfg->relay_idle_timeout_ms = v;
    } else if (!strcmp(f, "--event-loop")) {
        if (strcmp(val, "uv") && strcmp(val, "poll")) {
            fprintf(stderr, "rendezvousd: %s: '%s' must be uv or poll\n", src, val);
            return false;
        }
        cfg->event_loop_poll = !strcmp(val, "poll");
    } else if (!strcmp(f, "--log-level")) {
        if (!rdv_log_level_parse(val, &cfg->log.level)) {
            fprintf(stderr, "rendezvousd: %s: '%s' must be debug, info, warn or error\n", src,
                    val);
            return false;
        }
    } else if (!strcmp(f, "--log-json")) {
        if (!strcmp(val, "1") || !strcmp(val, "on") || !strcmp(val, "true"))
            cfg->log.json = true;
        else if (!strcmp(val, "0") || !strcmp(val, "off") || !strcmp(val, "false") || !*val)
            cfg->log.json = false;
        else {
            fprintf(stderr, "rendezvousd: %s: '%s' must be 1 or 0\n", src, val);
            return false;
        }
    }
    if (!ok) {
        fprintf(stderr, "rendezvousd: %s: '%s' is empty or too long\n", src, val);
        return false;
    }
    if (!strncmp(f, "--stun", 6) && strcmp(src, "default"))
        cfg->stun_explicit = true;
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
static bool check_stun(const rdv_config *cfg)
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

static void print_help(void)
{
    printf("Usage: rendezvousd [OPTION]...\n"
           "WebSocket rendezvous server for NATed nodes (protocol %s, path %s).\n\n"
           "Every option is also an environment variable; flags win. Times are in\n"
           "milliseconds.\n\n",
           RDV_WS_SUBPROTOCOL, RDV_WS_PATH);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        char lhs[64];
        snprintf(lhs, sizeof lhs, "%s%s%s", o->flag, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        printf("  %-32s %s\n  %-32s   env %s, default %s\n", lhs, o->help, "", o->env,
               *o->def ? o->def : "none");
    }
    printf("  %-32s %s\n  %-32s %s\n", "-h, --help", "print this help and exit", "--version",
           "print the version and exit");
}

/* Index of the option named by arg (up to '=' if any), or -1. */
static int find_flag(const char *arg, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].flag) == len && !strncmp(options[i].flag, arg, len))
            return (int)i;
    return -1;
}

rdv_config_result rdv_config_load(rdv_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].kind == K_FLAG)
            continue;
        if (!store_value(cfg, i, options[i].def, "default"))
            return RDV_CONFIG_ERROR;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && !store_value(cfg, i, v, options[i].env))
            return RDV_CONFIG_ERROR;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            print_help();
            return RDV_CONFIG_EXIT_OK;
        }
        if (!strcmp(arg, "--version")) {
            printf("rendezvousd %s (protocol %d)\n", RDV_VERSION, RDV_PROTOCOL_VERSION);
            return RDV_CONFIG_EXIT_OK;
        }
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        int i = find_flag(arg, flen);
        if (i < 0) {
            fprintf(stderr, "rendezvousd: unknown option '%.*s' (see --help)\n", (int)flen, arg);
            return RDV_CONFIG_ERROR;
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
            return RDV_CONFIG_ERROR;
        }
        if (!store_value(cfg, (size_t)i, val, options[i].flag))
            return RDV_CONFIG_ERROR;
    }
    if (!*cfg->tls_cert != !*cfg->tls_key) {
        fprintf(stderr, "rendezvousd: --tls-cert and --tls-key must be given together\n");
        return RDV_CONFIG_ERROR;
    }
    if (cfg->ping_interval_ms >= cfg->idle_timeout_ms) {
        fprintf(stderr,
                "rendezvousd: --ping-interval (%lld) must be below --idle-timeout (%lld)\n",
                (long long)cfg->ping_interval_ms, (long long)cfg->idle_timeout_ms);
        return RDV_CONFIG_ERROR;
    }
    if (cfg->burst < 1 || cfg->rate < 1)
        return RDV_CONFIG_ERROR;
    if (cfg->stun_alt_auto)
        cfg->stun_alt_port = cfg->stun_port > 0 && cfg->stun_port < 65535 ? cfg->stun_port + 1 : 0;
    if (!check_stun(cfg))
        return RDV_CONFIG_ERROR;
    /* a relayData of the largest payload must fit one message in both
     * forms, binary (17-byte header) and text (base64 plus the envelope):
     * a smaller --max-message-bytes lowers the relay payload with it
     * (welcome.limits announces the value in force) */
    size_t fit = (cfg->max_message_bytes - RELAY_TEXT_OVERHEAD) / 4 * 3;
    if (cfg->relay_max_payload > fit)
        cfg->relay_max_payload = fit;
    return RDV_CONFIG_RUN;
}
