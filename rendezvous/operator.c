/* operator.c - the operator's listener (see operator.h).
 *
 * One lws context, two vhosts: the public one (server.c) and this one,
 * plain HTTP only (its protocol table has no WebSocket protocol, so an
 * upgrade is refused by http.c). Both share srv_http_callback; http.c asks
 * srv_operator_is() which listener a request came in on.
 *
 * Before lws binds, a throw-away socket tries the port, so a port in use
 * names the process holding it (port_owner.h) instead of lws' bind error,
 * and the default port, when taken (a second instance on the same host),
 * costs only the operator's endpoints, with a warning, as the default STUN
 * port does.
 */
#include "rendezvous/operator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rendezvous/admin.h"
#include "rendezvous/audit.h"
#include "rendezvous/http.h"
#include "rendezvous/log.h"
#include "rendezvous/policy.h"
#include "rendezvous/port_owner.h"
#include "rendezvous/server.h"

/* Tries to bind addr:port. Returns 0 (free, or cannot tell) or the errno. */
static int try_bind(const char *addr, int port)
{
    if (port == 0)
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
    } else {
        return 0;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&ss, sl);
    int err = errno;
    close(fd);
    return rc == 0 ? 0 : err;
}

int srv_operator_open(srv_server *srv)
{
    const srv_config *cfg = srv->cfg;
    if (srv_admin_start(srv) != 0 || srv_policy_start(srv) != 0)
        return -1;
    if (cfg->operator_off) {
        srv_notice(srv->log, "operator off");
        return 0;
    }

    int err = try_bind(cfg->operator_addr, cfg->operator_port);
    if (err) {
        char owner[128] = "";
        bool known = err == EADDRINUSE &&
                     srv_port_owner(false, (uint16_t)cfg->operator_port, owner, sizeof owner);
        const char *why = err == EADDRINUSE      ? "is already in use"
                          : err == EADDRNOTAVAIL ? "is not an address of this host"
                          : err == EACCES        ? "needs privileges (below 1024)"
                                                 : strerror(err);
        if (!cfg->operator_explicit) {
            srv_warn(srv->log, "operator listener %s:%d %s%s%s: running without it (no "
                               "/metrics, /status or admin API); set --operator-listen "
                               "ADDR:PORT (another port) or off",
                     cfg->operator_addr, cfg->operator_port, why, known ? " by " : "",
                     owner);
            srv_notice(srv->log, "operator off");
            return 0;
        }
        srv_error(srv->log, "--operator-listen %.80s: %s%s%s: stop that process or choose "
                            "another ADDR:PORT (or off)",
                  cfg->operator_listen, why, known ? " by " : "", owner);
        return -1;
    }
    memset(srv->op_protocols, 0, sizeof srv->op_protocols);
    srv->op_protocols[0].name = "http";
    srv->op_protocols[0].callback = srv_http_callback;
    srv->op_protocols[0].per_session_data_size = sizeof(srv_admin_req);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->operator_port;
    info.iface = cfg->operator_addr;
    info.protocols = srv->op_protocols;
    info.vhost_name = "operator";
    info.server_string = "rendezvousd";
    unsigned hs_secs = (unsigned)((cfg->handshake_timeout_ms + 999) / 1000);
    info.timeout_secs = hs_secs;
    info.timeout_secs_ah_idle = hs_secs;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    struct in_addr a4;
    if (inet_pton(AF_INET, cfg->operator_addr, &a4) == 1)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    srv->op_vhost = lws_create_vhost(srv->ctx, &info);
    if (!srv->op_vhost) {
        srv_error(srv->log, "--operator-listen %.80s: cannot listen (the lines above say why)",
                  cfg->operator_listen);
        return -1;
    }
    srv->op_port = lws_get_vhost_listen_port(srv->op_vhost);
    bool v6 = strchr(cfg->operator_addr, ':') != NULL;
    srv_notice(srv->log, "operator on http://%s%s%s:%d (/metrics, /status, /, /healthz; admin "
                         "API %s)",
               v6 ? "[" : "", cfg->operator_addr, v6 ? "]" : "", srv->op_port,
               srv_admin_enabled(srv) ? "on" : "off: no token");
    return 0;
}

bool srv_operator_is(const srv_server *srv, struct lws *wsi)
{
    return srv->op_vhost && lws_get_vhost(wsi) == srv->op_vhost;
}

void srv_operator_free(srv_server *srv)
{
    srv_admin_free(srv);
    srv_audit_free(srv);
    srv_policy_free(srv);
}
