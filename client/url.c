/* url.c - parse the server URL of a client: ws://host[:port][/path] or
 * wss://host[:port][/path], host a name, an IPv4 address or [IPv6]. The
 * path defaults to "/v1" (PROTOCOL.md 1). No user info, no fragment.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"
#include "schema/wire_limits.h"

int rdv__url_parse(const char *url, rdv__url *out)
{
    if (!url || !out)
        return RDV_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncasecmp(url, "ws://", 5) == 0) {
        p = url + 5;
        out->port = 80;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        p = url + 6;
        out->tls = true;
        out->port = 443;
    } else {
        return RDV_ERR_INVALID;
    }
    const char *host_end;
    const char *after;
    if (*p == '[') { /* [IPv6] */
        host_end = strchr(p, ']');
        if (!host_end || host_end == p + 1)
            return RDV_ERR_INVALID;
        p++;
        after = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        after = host_end;
    }
    size_t hlen = (size_t)(host_end - p);
    if (hlen == 0 || hlen >= sizeof(out->host) || memchr(p, '@', hlen))
        return RDV_ERR_INVALID;
    memcpy(out->host, p, hlen);
    out->host[hlen] = '\0';
    p = after;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return RDV_ERR_INVALID;
        out->port = (int)port;
        p = end;
    }
    if (*p == '\0') {
        strcpy(out->path, RDV_WS_PATH);
        return 0;
    }
    if (*p != '/' || strchr(p, '#'))
        return RDV_ERR_INVALID;
    if (strlen(p) >= sizeof(out->path))
        return RDV_ERR_INVALID;
    strcpy(out->path, p);
    if (strcmp(out->path, "/") == 0)
        strcpy(out->path, RDV_WS_PATH);
    return 0;
}

int rdv__url_list_parse(const char *list, rdv__url out[RDV__MAX_URLS],
                        char text[RDV__MAX_URLS][RDV__URL_TEXT], int *n)
{
    *n = 0;
    if (!list)
        return RDV_ERR_INVALID;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (*n >= RDV__MAX_URLS || trimmed == 0 || trimmed >= RDV__URL_TEXT)
            return RDV_ERR_INVALID;
        memcpy(text[*n], p, trimmed);
        text[*n][trimmed] = '\0';
        if (rdv__url_parse(text[*n], &out[*n]) != 0)
            return RDV_ERR_INVALID;
        (*n)++;
        if (p[len] != ',')
            return 0;
        p += len + 1;
    }
}
