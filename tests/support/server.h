/* server.h - start, stop, kill and restart a real `rendezvousd` for tests.
 *
 * Each server runs as a child process on 127.0.0.1 with `--port 0` (and
 * `--stun-port 0` unless the test passes a --stun* flag or RENDEZVOUS_STUN*
 * variable) and its own temporary directory (database + log file). The
 * helper waits, bounded, for the README's ready line
 * `listening on ws://ADDR:PORT/v1` and the line after it, `stun on
 * udp://ADDR:PORT` or `stun off`, and parses both ports. stdout and stderr of the server go to `<dir>/server.log`.
 *
 * Servers are registered globally: rdv_ts_cleanup_all() (call it from a
 * cmocka teardown) frees every client and server still alive, and an atexit
 * hook does the same, so no test leaves a server running. Children also get
 * PR_SET_PDEATHSIG(SIGKILL), so a test that aborts kills its servers.
 *
 * The daemon path is the compile definition RDV_SERVERD_PATH, overridable
 * with the environment variable RDV_SERVERD.
 */
#ifndef RDV_TESTS_SUPPORT_SERVER_H
#define RDV_TESTS_SUPPORT_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct rdv_ts_server rdv_ts_server;

/* Bounded wait for the ready line. */
#define RDV_TS_READY_TIMEOUT_MS 10000
/* Bounded wait for an exit after SIGTERM. */
#define RDV_TS_STOP_TIMEOUT_MS 10000

/* Runs `rendezvousd ARGS...` to completion (bounded by timeout_ms, then
 * killed) with its stdout+stderr captured. Returns the exit status as
 * rdv_ts_server_stop and a malloc'd NUL-terminated output in *out. */
int rdv_ts_run_serverd(const char *const *args, char **out, int timeout_ms);

/* Starts a server with a fresh temporary database. `extra_args` is a
 * NULL-terminated list of additional arguments (NULL for none), e.g.
 * (const char *[]){"--rate", "5", NULL}. Returns NULL (after printing the
 * log) when the server does not become ready. */
rdv_ts_server *rdv_ts_server_start(const char *const *extra_args);

/* Same, with extra environment variables for the server (NULL-terminated
 * "NAME=VALUE" list; RENDEZVOUS_* of the test's own environment are always
 * removed, these are added after). RDV_TS_NOFILE=N is not for the server:
 * it sets the child's open-file limit (soft and hard) to N before exec. */
rdv_ts_server *rdv_ts_server_start_env(const char *const *env,
                                       const char *const *extra_args);

/* Same, with the database at `db_path` (created by the server if missing).
 * The log and the temporary directory are still fresh. */
rdv_ts_server *rdv_ts_server_start_db(const char *db_path,
                                      const char *const *extra_args);

/* Starts the (stopped or killed) server again with the same database,
 * directory and arguments. The port usually changes. Returns 0 or -1. */
int rdv_ts_server_restart(rdv_ts_server *s);

/* Sends SIGTERM, waits up to RDV_TS_STOP_TIMEOUT_MS, reaps. Returns the
 * exit status: 0..255 for an exit, 128+N for signal N, -1 if not running,
 * -3 if it had to be killed because it did not exit. */
int rdv_ts_server_stop(rdv_ts_server *s);

/* SIGKILL and reap. Returns as rdv_ts_server_stop. */
int rdv_ts_server_kill(rdv_ts_server *s);

/* Sends `sig` without waiting. Returns 0 or -1. */
int rdv_ts_server_signal(rdv_ts_server *s, int sig);

/* Waits up to timeout_ms for the child to exit (after a signal sent with
 * rdv_ts_server_signal). Returns the status as rdv_ts_server_stop, or -2
 * on timeout (the child is still running). */
int rdv_ts_server_wait_exit(rdv_ts_server *s, int timeout_ms);

/* True while the child has not exited (reaps it if it has). */
bool rdv_ts_server_running(rdv_ts_server *s);

int rdv_ts_server_port(const rdv_ts_server *s);
/* The STUN UDP port from the "stun on udp://ADDR:PORT" line; 0 when the
 * server logged "stun off". */
int rdv_ts_server_stun_port(const rdv_ts_server *s);
/* The operator's listener port (/metrics, /status, /, admin API) from
 * the "operator on http://ADDR:PORT" line; 0 when it is off. Unless the
 * test passes --operator-listen (or RENDEZVOUS_OPERATOR_LISTEN) the
 * helper adds --operator-listen 127.0.0.1:0. */
int rdv_ts_server_operator_port(const rdv_ts_server *s);
pid_t rdv_ts_server_pid(const rdv_ts_server *s);
const char *rdv_ts_server_db_path(const rdv_ts_server *s);
const char *rdv_ts_server_log_path(const rdv_ts_server *s);
const char *rdv_ts_server_dir(const rdv_ts_server *s);

/* Prints the server's log to stderr with a header naming `why`. */
void rdv_ts_server_dump_log(const rdv_ts_server *s, const char *why);

/* Prints the logs of every running server (used by failing expectations). */
void rdv_ts_dump_all_logs(const char *why);

/* True when the log holds no AddressSanitizer / LeakSanitizer / UBSan
 * report. */
bool rdv_ts_server_log_clean(const rdv_ts_server *s);

/* Returns a malloc'd copy of the whole log (NUL-terminated) or NULL. */
char *rdv_ts_server_read_log(const rdv_ts_server *s);

/* Kills the server if running, removes its temporary directory (kept when
 * the environment has RDV_KEEP_TMP=1) and frees it. NULL is fine. */
void rdv_ts_server_free(rdv_ts_server *s);

/* Frees every registered client (ws_client.h) and server, then runs the
 * hooks of rdv_ts_on_cleanup (e.g. redis.h frees its redis-servers). */
void rdv_ts_cleanup_all(void);

/* Registers fn (once; up to 8) to run at the end of rdv_ts_cleanup_all,
 * after every client and server is gone; the atexit hook runs it too.
 * Lets other helpers (redis.h) hang their children on the same
 * teardowns. */
void rdv_ts_on_cleanup(void (*fn)(void));

/* For test teardowns: closes every client, stops every running server with
 * SIGTERM, and returns the number of servers that did not exit 0 or whose
 * log holds a sanitizer report (their logs are printed); then frees all. */
int rdv_ts_teardown_checked(void);

/* Monotonic milliseconds. */
long long rdv_ts_mono_ms(void);

#endif
