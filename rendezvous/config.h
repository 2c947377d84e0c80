/* config.h - rendezvousd configuration: command-line flags, RENDEZVOUS_*
 * environment variables and the --config file (README.md "Configuration";
 * flags win over the environment, which wins over the file, which wins
 * over the defaults).
 */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/log.h"

typedef struct srv_config {
    char config_path[1024];      /* --config: options file read first; empty = none */
    char listen[64];             /* --listen: bind address */
    int port;                    /* --port: 0 = any free port */
    char db_path[1024];          /* --db */
    char name[254];              /* --name: signed by nodes in hello */
    bool verify_signatures;      /* --verify-signatures on|off */
    int verify_threads;          /* --verify-threads: workers (0: one per core) */
    int verify_inline;           /* --verify-inline: % of the loop's time verifying itself */
    int64_t auth_timeout_ms;     /* --auth-timeout */
    int64_t offline_ttl_ms;      /* --offline-ttl (<= 90000) */
    int offline_queue_max;       /* --offline-queue-max */
    size_t max_message_bytes;    /* --max-message-bytes */
    int rate;                    /* --rate: messages/s per connection */
    int burst;                   /* --burst: token bucket size */
    int max_connections;         /* --max-connections: 0 = fd limit */
    int max_connections_per_ip;  /* --max-connections-per-ip: 0 = no cap */
    int max_handshakes_per_ip;   /* --max-handshakes-per-ip: 0 = no cap */
    int accept_batch;            /* --accept-batch: accepts per loop turn, 0 = no cap */
    int64_t handshake_timeout_ms; /* --handshake-timeout */
    int max_watches;             /* --max-watches */
    int replay_cache;            /* --replay-cache: signatures kept per connection */
    int presence_rate;           /* --presence-rate: IDs per minute, 0 = no limit */
    int presence_burst;          /* --presence-burst: IDs at once */
    int64_t ping_interval_ms;    /* --ping-interval */
    int64_t idle_timeout_ms;     /* --idle-timeout */
    size_t send_queue_max;       /* --send-queue-max: bytes per connection */
    size_t rx_buffer_size;       /* --rx-buffer: lws receive chunk per connection */
    char tls_cert[1024];         /* --tls-cert: empty = plain ws:// */
    char tls_key[1024];          /* --tls-key */
    bool event_loop_poll;        /* --event-loop poll (default uv) */
    size_t relay_max_payload;    /* --relay-max-payload: bytes per relayData */
    int relay_max_sessions;      /* --relay-max-sessions: per node */
    uint64_t relay_rate;         /* --relay-rate: bytes/s per node, 0 = unlimited */
    uint64_t relay_quota;        /* --relay-quota: bytes per session, 0 = unlimited */
    uint64_t relay_global_rate;  /* --relay-global-rate: bytes/s, 0 = unlimited */
    int64_t relay_idle_timeout_ms; /* --relay-idle-timeout */
    bool stun;                   /* --stun on|off: the UDP STUN responder */
    bool relay_channel;          /* --relay-channel on|off: accept relay
                                  * channels (PROTOCOL.md 9.5) */
    int stun_port;               /* --stun-port: 0 = any free port */
    int stun_alt_port;           /* --stun-alt-port: 0 = none (RFC 5780) */
    bool stun_alt_auto;          /* "auto": --stun-port + 1, and a port
                                  * that cannot open is left out (warned) */
    char stun_alt_address[64];   /* --stun-alt-address: empty = none */
    bool stun_explicit;          /* a --stun* option came from argv or the
                                  * environment: failing to open the STUN
                                  * socket is then fatal, not a warning */
    char redis_url[512];         /* --redis: empty = the SQLite engine alone */
    int64_t drain_window_ms;     /* --drain-window: SIGTERM closes spread over it */
    char operator_listen[80];    /* --operator-listen ADDR:PORT or "off" */
    char operator_addr[64];      /* its address, parsed ("" when off) */
    int operator_port;           /* its port: 0 = any free port */
    bool operator_off;           /* --operator-listen off: no operator listener */
    bool operator_explicit;      /* set by a flag, variable or file: a port that
                                  * cannot open is fatal, not a warning */
    bool public_status;          /* --public-status: /metrics, /status, / public too */
    char admin_token_file[1024]; /* --admin-token-file: admin API tokens; "" = none */
    char policy_path[1024];      /* --policy: relay/signaling policy file; "" = none */
    char admission[32];          /* --admission open|allowlist|fleet|allowlist,fleet */
    char fleet_keys[2048];       /* --fleet-key: trusted fleet public keys, comma list */
    char fleet_key_file[1024];   /* --fleet-key-file: more of them, one a line */
    srv_logger log;              /* --log-level, --log-json */
} srv_config;

/* What srv_config_load() asks the caller to do. */
typedef enum srv_config_result {
    SRV_CONFIG_RUN = 0,   /* configuration valid: serve */
    SRV_CONFIG_EXIT_OK,   /* --help or --version printed: exit 0 */
    SRV_CONFIG_ERROR      /* invalid: message printed on stderr, exit 2 */
} srv_config_result;

/* Fills *cfg with the defaults, then the --config file (named by argv or
 * RENDEZVOUS_CONFIG), then the environment, then argv.
 * Prints --help / --version to stdout and errors (naming the flag or
 * variable and the accepted values) to stderr. */
srv_config_result srv_config_load(srv_config *cfg, int argc, char **argv);

/* SIGHUP (reload.h): loads the configuration again from the same argv
 * (the environment and the --config file as they are now) and copies the
 * options --help marks "reloaded on SIGHUP" into *live. The names of other
 * options whose value changed (they need a restart) go to restart, comma
 * separated ("" for none). Returns 0, or -1 with *live untouched and a
 * reason in err when the configuration is now invalid (the details went
 * to stderr, as at start). */
int srv_config_reload(srv_config *live, int argc, char **argv, char *restart, size_t restartlen,
                      char *err, size_t errlen);

#endif
