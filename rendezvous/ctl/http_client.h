/* http_client.h - one HTTP/1.1 request with libwebsockets' client (the
 * library the server already links), for rdvctl: method, URL, bearer
 * token, optional JSON body; the status and the whole response body.
 */
#ifndef SRV_CTL_HTTP_CLIENT_H
#define SRV_CTL_HTTP_CLIENT_H

#include <stddef.h>

typedef struct rdvctl_response {
    int status;      /* HTTP status; 0 when no answer */
    char *body;      /* malloc'd, NUL-terminated ("" when none) */
    size_t len;
    char err[256];   /* why there is no answer */
} rdvctl_response;

/* Sends METHOD base_url + path (base_url: http://HOST:PORT, HOST may be
 * [v6]) with "Authorization: Bearer token" (token may be NULL) and, when
 * body is not NULL, that JSON body; waits at most timeout_ms. Returns 0
 * with res filled (free res->body), or -1 with res->err set. */
int rdvctl_request(const char *method, const char *base_url, const char *path,
                   const char *token, const char *body, int timeout_ms, rdvctl_response *res);

#endif
