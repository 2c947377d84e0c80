/* admin_http.h - a blocking HTTP/1.1 request with a method, a bearer token
 * and a body, for the admin API tests (rdv_http_get only does GET). */
#ifndef RDV_TESTS_SERVER_ADMIN_HTTP_H
#define RDV_TESTS_SERVER_ADMIN_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* METHOD path on 127.0.0.1:port with "Authorization: Bearer token" (token
 * NULL: none) and body (NULL: none). Returns the status (-1 on error); the
 * whole response (headers and body) in *resp (malloc'd) when resp is not
 * NULL, and *body pointing into it at the body. */
static inline int admin_http(int port, const char *method, const char *path, const char *token,
                             const char *body, char **resp, const char **bodyp)
{
    if (resp)
        *resp = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (!buf || poll(&p, 1, 10000) <= 0)
            break;
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len + 1 >= cap)
            break;
    }
    close(fd);
    if (!buf)
        return -1;
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    const char *b = strstr(buf, "\r\n\r\n");
    if (bodyp)
        *bodyp = b ? b + 4 : buf + len;
    if (resp)
        *resp = buf;
    else
        free(buf);
    return status;
}

#endif
