/* redis.h - start, stop, kill and restart a real `redis-server` for tests.
 *
 * Each redis-server runs as a child process in its own temporary directory
 * (`<dir>/redis.sock`, `<dir>/redis.log`, and the data files when
 * persistence is on), listening on that Unix socket and, when asked, on a
 * free TCP port of 127.0.0.1. By default it keeps nothing on disk
 * (`--save '' --appendonly no`); with `persist` it writes an append-only
 * file fsync'd on every write (`--appendonly yes --appendfsync always`),
 * so a test can stop or kill it, restart it on the same directory, and
 * find its data again. The helper waits, bounded, until the server answers
 * PING (spoken in RESP on the Unix socket).
 *
 * Instances are registered: rdv_ts_cleanup_all() (server.h, called by the
 * cmocka teardowns of the integration tests) frees every redis-server
 * still registered, after the rendezvousd servers, and an atexit hook does
 * the same. Children get PR_SET_PDEATHSIG(SIGKILL), so a test that aborts
 * kills them.
 *
 * The binary is $RDV_REDIS_SERVER if set, else `redis-server` from PATH,
 * /usr/bin or /usr/sbin (Debian package redis-server, installed by
 * scripts/bootstrap --test).
 */
#ifndef RDV_TESTS_SUPPORT_REDIS_H
#define RDV_TESTS_SUPPORT_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct rdv_ts_redis rdv_ts_redis;

/* Bounded wait for PING to be answered after a start. */
#define RDV_TS_REDIS_READY_TIMEOUT_MS 10000
/* Bounded wait for an exit after SIGTERM (then SIGKILL). */
#define RDV_TS_REDIS_STOP_TIMEOUT_MS 10000

typedef struct rdv_ts_redis_opts {
    bool tcp;     /* also listen on a free TCP port of 127.0.0.1 */
    bool persist; /* --appendonly yes --appendfsync always in the temp dir */
} rdv_ts_redis_opts;

/* Starts a redis-server (opts NULL: Unix socket only, no persistence).
 * Returns NULL when it cannot start, with "cannot start redis-server:
 * <why>" in why (why may be NULL; the message is printed too). */
rdv_ts_redis *rdv_ts_redis_start(const rdv_ts_redis_opts *opts, char *why, size_t whylen);

/* Starts the stopped or killed server again on the same directory, socket
 * and TCP port (its data is back when persistence is on). Stops it first
 * if it runs. Returns 0, or -1 (the reason is printed). */
int rdv_ts_redis_restart(rdv_ts_redis *r);

/* SIGTERM, waits up to RDV_TS_REDIS_STOP_TIMEOUT_MS, then SIGKILL; reaps.
 * Returns the exit status: 0..255 for an exit, 128+N for signal N, -1 if
 * not running, -3 if it had to be killed. */
int rdv_ts_redis_stop(rdv_ts_redis *r);

/* SIGKILL and reap. Returns as rdv_ts_redis_stop. */
int rdv_ts_redis_kill(rdv_ts_redis *r);

/* True while the child has not exited (reaps it if it has). */
bool rdv_ts_redis_running(rdv_ts_redis *r);

/* True when the server answers PING on its Unix socket within timeout_ms. */
bool rdv_ts_redis_ping(const rdv_ts_redis *r, int timeout_ms);

/* Sends one command (argv NULL-terminated) on the Unix socket and reads
 * one reply. Returns 0 with a malloc'd rendering of the reply in *reply
 * (may be NULL): simple strings, errors ("-ERR ...") and integers as
 * written by Redis without CRLF, bulk strings as their bytes ("(nil)" for
 * a null bulk), arrays as their elements joined by '\n'. -1 on an I/O
 * error or timeout. */
int rdv_ts_redis_cmd(const rdv_ts_redis *r, const char *const *argv, char **reply,
                     int timeout_ms);

/* URLs for `rendezvousd --redis`: "unix:///DIR/redis.sock" and
 * "redis://127.0.0.1:PORT/0" (NULL unless opts.tcp). */
const char *rdv_ts_redis_unix_url(const rdv_ts_redis *r);
const char *rdv_ts_redis_tcp_url(const rdv_ts_redis *r);

const char *rdv_ts_redis_socket_path(const rdv_ts_redis *r);
int rdv_ts_redis_port(const rdv_ts_redis *r); /* 0 unless opts.tcp */
pid_t rdv_ts_redis_pid(const rdv_ts_redis *r);
const char *rdv_ts_redis_dir(const rdv_ts_redis *r);
const char *rdv_ts_redis_log_path(const rdv_ts_redis *r);

/* Prints the redis-server log (the last 8 KiB) to stderr. */
void rdv_ts_redis_dump_log(const rdv_ts_redis *r, const char *why);

/* Kills the server if running, removes its directory (kept with
 * RDV_KEEP_TMP=1), frees it. NULL is fine. */
void rdv_ts_redis_free(rdv_ts_redis *r);

/* Frees every registered redis-server. */
void rdv_ts_redis_cleanup_all(void);

#endif
