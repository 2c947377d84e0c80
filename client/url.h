/* url.h - the server URLs of a client: ws:// / wss:// parsing and the
 * comma-separated list of a cluster's instances (url.c; internal). */
#ifndef RDV_CLIENT_URL_H
#define RDV_CLIENT_URL_H

#include <stdbool.h>

/* A parsed server URL. */
typedef struct rdv__url {
    bool tls;
    char host[256];
    int port;
    char path[256];
} rdv__url;

/* Parses ws://host[:port][/path] or wss://...; host may be [IPv6]. Path
 * defaults to "/v1". Returns 0 or RDV_ERR_INVALID. */
int rdv__url_parse(const char *url, rdv__url *out);

/* Server URLs of one client: the instances of one cluster. */
#define RDV__MAX_URLS 8
#define RDV__URL_TEXT 512

/* Parses a comma-separated list of URLs (spaces around commas ignored)
 * into out[] and their texts; *n of them. Returns 0, or RDV_ERR_INVALID
 * when one is not a URL, one is empty, or there are more than
 * RDV__MAX_URLS. */
int rdv__url_list_parse(const char *list, rdv__url out[RDV__MAX_URLS],
                        char text[RDV__MAX_URLS][RDV__URL_TEXT], int *n);

#endif
