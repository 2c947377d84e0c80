/* preflight.h - checks, before anything is created, that the server can
 * start with its configuration on this host: the TLS files are readable,
 * the listen port is free and the address is this host's, the database
 * path is a file in a writable directory. Each failure logs its cause and
 * the fix, so a mistake never reads as an lws bind error or an SQLite
 * "unable to open database file", and no database file is created for a
 * server that cannot listen.
 */
#ifndef SRV_PREFLIGHT_H
#define SRV_PREFLIGHT_H

#include "rendezvous/config.h"
#include "rendezvous/log.h"

/* Returns 0 when every check passes, -1 after logging the first failure
 * (as an error line naming the option, the cause and what to do). */
int srv_preflight(const srv_config *cfg, const srv_logger *log);

#endif
