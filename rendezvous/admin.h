/* admin.h - the admin API on the operator's listener (operator.h),
 * README "Admin API": JSON in and out under /admin/v1/, off until a bearer
 * token is configured (--admin-token-file, or RENDEZVOUS_ADMIN_TOKEN;
 * never a flag value). Every request must carry "Authorization: Bearer
 * TOKEN"; tokens are compared in constant time (libsodium, over BLAKE2b
 * digests so their lengths do not show). Every change is recorded in the
 * audit log (audit.h) before the answer.
 *
 *   GET    /admin/v1/nodes                 nodes connected to this instance
 *   GET    /admin/v1/nodes/ID              one of them (404 when not here)
 *   POST   /admin/v1/nodes/ID/disconnect   close its connection
 *   GET    /admin/v1/allowlist             the allowlist
 *   POST   /admin/v1/allowlist             {"nodeID": ID} add
 *   DELETE /admin/v1/allowlist/ID          remove
 *   GET    /admin/v1/revoked               revoked node IDs and serials
 *   POST   /admin/v1/revoke                {"nodeID": ID} or {"serial": S}
 *   POST   /admin/v1/unrevoke              same
 *   GET    /admin/v1/audit?limit=N         newest entries first
 *   GET    /admin/v1/policy                the relay/signaling policy in force
 *
 * Errors: {"error": {"code": "...", "message": "..."}} with 400 (bad
 * request), 401 (no or wrong token), 404 (off, unknown path or node),
 * 405, 413 (body over 64 KiB), 500 / 503.
 */
#ifndef SRV_ADMIN_H
#define SRV_ADMIN_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct srv_server;

#define SRV_ADMIN_BODY_MAX 65536
#define SRV_ADMIN_TOKENS_MAX 16

/* Per-connection state of an admin request (the operator's http
 * protocol's per-session data): the request's body while it arrives. */
typedef struct srv_admin_req {
    char *body;
    size_t len, cap;
    char path[256];
    char method[8];
    bool active;   /* an /admin/ request waits for its body */
    bool too_big;
} srv_admin_req;

/* Reads the tokens (--admin-token-file, then RENDEZVOUS_ADMIN_TOKEN) into
 * srv->admin. No token: the API stays off. A file that cannot be read,
 * is readable by others, or holds a token shorter than 16 characters is
 * an error. With a file, registers the "admin-tokens" SIGHUP reload hook
 * (the file again; a bad one keeps the tokens in force). Returns 0 or -1
 * (logged). */
int srv_admin_start(struct srv_server *srv);

/* True when at least one token is configured. */
bool srv_admin_enabled(const struct srv_server *srv);

/* Frees srv->admin. */
void srv_admin_free(struct srv_server *srv);

/* The operator's http callback hands every request whose path starts
 * with /admin/ here (LWS_CALLBACK_HTTP), and the body callbacks of such
 * requests (HTTP_BODY, HTTP_BODY_COMPLETION, CLOSED_HTTP). Returns the
 * callback's result. */
int srv_admin_http(struct srv_server *srv, struct lws *wsi, srv_admin_req *req,
                   enum lws_callback_reasons reason, const void *in, size_t len);

#endif
