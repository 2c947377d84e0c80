/* preflight.c - start-up checks with messages that say what to do (see
 * preflight.h). */
#include "rendezvous/preflight.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rendezvous/port_owner.h"

/* A readable PEM file for option `flag`. */
static int check_tls_file(const srv_logger *log, const char *flag, const char *what,
                          const char *path)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return 0;
    }
    srv_error(log, "cannot read the TLS %s %s (%s): %s; give the path of a PEM file this user "
                   "can read",
              what, path, flag, strerror(errno));
    return -1;
}

/* Binds a throw-away socket to the listen address and port. */
static int check_listen(const srv_config *cfg, const srv_logger *log)
{
    if (cfg->port == 0)
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->listen, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cfg->port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, cfg->listen, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cfg->port);
        sl = sizeof *s6;
    } else {
        return 0; /* not a literal: lws resolves it and says so */
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* cannot tell: let lws try */
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&ss, sl);
    int err = errno;
    close(fd);
    if (rc == 0)
        return 0;
    if (err == EADDRINUSE) {
        char owner[128];
        bool known = srv_port_owner(false, (uint16_t)cfg->port, owner, sizeof owner);
        srv_error(log, "TCP port %d on %s is already in use%s%s: stop that process, or choose "
                       "another port with --port (or RENDEZVOUS_PORT)",
                  cfg->port, cfg->listen, known ? " by " : "", known ? owner : "");
    } else if (err == EADDRNOTAVAIL) {
        srv_error(log, "cannot listen on %s: not an address of this host (--listen); use "
                       "127.0.0.1, 0.0.0.0 (all IPv4), :: (all) or an address that `ip -brief "
                       "address` shows",
                  cfg->listen);
    } else if (err == EACCES) {
        srv_error(log, "cannot listen on TCP port %d: ports below 1024 need root or "
                       "CAP_NET_BIND_SERVICE; choose a port above 1023 with --port",
                  cfg->port);
    } else {
        srv_error(log, "cannot listen on %s port %d: %s", cfg->listen, cfg->port,
                  strerror(err));
    }
    return -1;
}

/* The database path: a writable file, or a new one in a writable dir. */
static int check_db(const srv_config *cfg, const srv_logger *log)
{
    const char *path = cfg->db_path;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            srv_error(log, "--db %s is a directory; give the path of a database file, e.g. "
                           "%s%srendezvous.db",
                      path, path, path[strlen(path) - 1] == '/' ? "" : "/");
            return -1;
        }
        if (access(path, R_OK | W_OK) != 0) {
            srv_error(log, "cannot open the database %s (--db) for writing: %s; fix its "
                           "owner or mode, or choose another --db",
                      path, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        srv_error(log, "cannot use the database path %s (--db): %s", path, strerror(errno));
        return -1;
    }
    char copy[sizeof cfg->db_path];
    snprintf(copy, sizeof copy, "%s", path);
    const char *dir = dirname(copy);
    if (stat(dir, &st) != 0) {
        srv_error(log, "cannot create the database %s (--db): the directory %s does not "
                       "exist; create it (mkdir -p %s) or choose another --db",
                  path, dir, dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        srv_error(log, "cannot create the database %s (--db): %s is not a directory", path,
                  dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        srv_error(log, "cannot create the database %s (--db): no permission to write in %s "
                       "(%s); choose a directory this user can write, or fix its mode",
                  path, dir, strerror(errno));
        return -1;
    }
    return 0;
}

int srv_preflight(const srv_config *cfg, const srv_logger *log)
{
    if (cfg->tls_cert[0] &&
        (check_tls_file(log, "--tls-cert", "certificate", cfg->tls_cert) != 0 ||
         check_tls_file(log, "--tls-key", "private key", cfg->tls_key) != 0))
        return -1;
    if (check_listen(cfg, log) != 0)
        return -1;
    return cfg->redis_url[0] ? 0 : check_db(cfg, log); /* --redis: no database file */
}
