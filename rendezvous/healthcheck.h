/* healthcheck.h - `rendezvousd --healthcheck[=PID]`: asks a running
 * server's /healthz where that server listens, and exits 0 (200) or 1
 * (anything else, or no answer within 2 s). For a container HEALTHCHECK or
 * a monitoring probe (README "Operations").
 *
 * Where it listens comes from the same configuration the server reads:
 * - `--healthcheck` with the server's flags, environment and --config file
 *   (e.g. `rendezvousd --healthcheck --config /etc/rendezvous/rendezvousd.conf`);
 * - `--healthcheck=PID`: the command line, environment and working
 *   directory of that running rendezvousd (/proc/PID), so a container's
 *   `HEALTHCHECK CMD rendezvousd --healthcheck=1` follows `docker run IMAGE
 *   --port 9090` without repeating it.
 * The scheme is https with --tls-cert (the certificate is not verified:
 * the probe talks to its own server, often by address), the address is
 * --listen (a wildcard becomes its loopback, 127.0.0.1 or ::1), the port
 * --port; --port 0 cannot be probed (exit 1, said why).
 */
#ifndef SRV_HEALTHCHECK_H
#define SRV_HEALTHCHECK_H

/* When argv holds --healthcheck or --healthcheck=PID, runs the probe
 * (one line on stdout: "healthy: URL" / on stderr "unhealthy: URL: why")
 * and returns the exit status, 0 or 1 (2 for an invalid configuration, as
 * the server). Returns -1 when argv has no --healthcheck: serve. */
int srv_healthcheck_main(int argc, char **argv);

#endif
