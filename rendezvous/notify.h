/* notify.h - readiness and state for systemd's Type=notify (libsystemd's
 * sd_notify): READY=1 once the server listens, RELOADING=1 ... READY=1
 * around a SIGHUP reload, STOPPING=1 when the graceful shutdown begins,
 * and STATUS= lines that `systemctl status rendezvousd` shows. Every call
 * is a no-op (returns 0) when NOTIFY_SOCKET is not set, i.e. when not run
 * by systemd with Type=notify.
 */
#ifndef SRV_NOTIFY_H
#define SRV_NOTIFY_H

#include "rendezvous/log.h"

/* READY=1 and STATUS=status. A failure to reach the socket is logged
 * (once per call) to log. Returns sd_notify's result: >0 sent, 0 no
 * socket, <0 -errno. */
int srv_notify_ready(const srv_logger *log, const char *status);

/* RELOADING=1 (with MONOTONIC_USEC, as systemd 253+ wants) and
 * STATUS=status. Follow it with srv_notify_ready when the reload is
 * over. Returns as srv_notify_ready. */
int srv_notify_reloading(const srv_logger *log, const char *status);

/* STOPPING=1 and STATUS=status. Returns as srv_notify_ready. */
int srv_notify_stopping(const srv_logger *log, const char *status);

/* STATUS=status alone. Returns as srv_notify_ready. */
int srv_notify_status(const srv_logger *log, const char *status);

#endif
