/* rdvctl - the operator's command line for rendezvousd's admin API (README
 * "Admin API"): talks HTTP to the operator's listener, with the bearer
 * token from a file or the environment (never a flag value).
 *
 * Exit status: 0 done, 1 the server refused or could not be reached (the
 * message says why), 2 usage error.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rendezvous/ctl/http_client.h"

#ifndef SRV_VERSION
#define SRV_VERSION "0.1.0"
#endif

#define DEFAULT_URL "http://127.0.0.1:9080"
#define TIMEOUT_MS 10000

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: rdvctl [OPTION]... COMMAND [ARG]...\n"
            "Operate a running rendezvousd through its admin API, on the operator's listener\n"
            "(rendezvousd --operator-listen). The server must have a token\n"
            "(--admin-token-file or RENDEZVOUS_ADMIN_TOKEN); rdvctl sends the same token.\n"
            "\n"
            "Commands:\n"
            "  nodes                   nodes connected to the server, with NAT type, observed\n"
            "                          address, connected since and relay use\n"
            "  node ID                 one node (exit 1 when it is not connected)\n"
            "  disconnect ID           close the node's connection (it may reconnect; revoke\n"
            "                          keeps it out)\n"
            "  allowlist               the allowlist (--admission allowlist)\n"
            "  allow ID                add a node ID to the allowlist\n"
            "  disallow ID             remove it\n"
            "  revoked                 revoked node IDs and certificate serials\n"
            "  revoke ID               revoke a node ID: refused from now on, its connection\n"
            "                          closed within a second\n"
            "  revoke --serial SERIAL  revoke a fleet certificate by its serial\n"
            "  unrevoke ID             undo a revocation (unrevoke --serial SERIAL too)\n"
            "  audit                   the audit log, newest first (--limit N, default 20)\n"
            "  policy                  the relay and signaling policy in force\n"
            "\n"
            "Options:\n"
            "  --url URL               the operator's listener, default %s\n"
            "                          (env RDVCTL_URL)\n"
            "  --token-file FILE       read the token from FILE: its first line 'TOKEN' or\n"
            "                          'NAME TOKEN' (the server's --admin-token-file works);\n"
            "                          without it the token comes from RENDEZVOUS_ADMIN_TOKEN\n"
            "  --json                  print the server's JSON answer as it is\n"
            "  --reason TEXT           disconnect: why, for the audit log\n"
            "  --limit N               audit: how many entries (1..1000)\n"
            "  -h, --help              print this help and exit\n"
            "  --version               print the version and exit\n"
            "\n"
            "Exit status:\n"
            "  0  done\n"
            "  1  the server refused (the message says why) or could not be reached\n"
            "  2  usage error\n",
            DEFAULT_URL);
}

/* The token: the first "TOKEN" or "NAME TOKEN" line of path, into out. */
static int read_token(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "rdvctl: --token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        s[strcspn(s, "\r\n")] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        char *sp = strpbrk(s, " \t");
        if (sp) {
            s = sp;
            while (*s == ' ' || *s == '\t')
                s++;
        }
        if (*s && strlen(s) < n) {
            memcpy(out, s, strlen(s) + 1);
            rc = 0;
        }
        break;
    }
    fclose(f);
    if (rc)
        fprintf(stderr, "rdvctl: --token-file %s holds no token\n", path);
    return rc;
}

static void print_time(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32] = "?";
    if (gmtime_r(&t, &tm))
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fputs(buf, stdout);
}

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void print_node(json_t *n)
{
    json_t *relay = json_object_get(n, "relay");
    printf("%s  %-14s %-22s ", str(n, "nodeID"), str(n, "natType"), str(n, "observedAddress"));
    print_time(json_integer_value(json_object_get(n, "connectedSince")));
    printf("  relay %lld session(s) %lld B",
           (long long)json_integer_value(json_object_get(relay, "sessions")),
           (long long)json_integer_value(json_object_get(relay, "bytes")));
    json_t *g = json_object_get(n, "groups");
    if (json_array_size(g)) {
        printf("  groups");
        size_t i;
        json_t *v;
        json_array_foreach(g, i, v) printf("%s%s", i ? "," : " ", json_string_value(v));
    }
    putchar('\n');
}

static void print_list(json_t *arr, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        printf("%s  added ", str(e, key));
        print_time(json_integer_value(json_object_get(e, "added")));
        putchar('\n');
    }
}

/* Human output of a successful answer to command cmd. */
static void print_human(const char *cmd, json_t *o)
{
    if (!strcmp(cmd, "nodes")) {
        size_t i;
        json_t *n;
        printf("%zu node(s) connected\n", json_array_size(json_object_get(o, "nodes")));
        json_array_foreach(json_object_get(o, "nodes"), i, n) print_node(n);
    } else if (!strcmp(cmd, "node")) {
        print_node(json_object_get(o, "node"));
    } else if (!strcmp(cmd, "allowlist")) {
        print_list(json_object_get(o, "allowlist"), "nodeID");
    } else if (!strcmp(cmd, "revoked")) {
        print_list(json_object_get(o, "nodes"), "nodeID");
        print_list(json_object_get(o, "serials"), "serial");
    } else if (!strcmp(cmd, "audit")) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(o, "entries"), i, e)
        {
            printf("%lld  ", (long long)json_integer_value(json_object_get(e, "id")));
            print_time(json_integer_value(json_object_get(e, "time")));
            printf("  %s from %s: %s %s -> %s%s%s%s\n", str(e, "who"), str(e, "peer"),
                   str(e, "action"), str(e, "target"), str(e, "result"),
                   *str(e, "detail") ? " (" : "", str(e, "detail"), *str(e, "detail") ? ")" : "");
        }
    } else if (!strcmp(cmd, "policy")) {
        char *s = json_dumps(o, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    } else {
        json_t *closed = json_object_get(o, "closed");
        printf("%s %s: %s", str(o, "action"), str(o, "target"), str(o, "result"));
        if (json_is_integer(closed))
            printf(" (%lld connection(s) closed)", (long long)json_integer_value(closed));
        putchar('\n');
    }
}

int main(int argc, char **argv)
{
    const char *url = getenv("RDVCTL_URL"), *token_file = NULL, *reason = NULL;
    const char *serial = NULL;
    bool json = false;
    int limit = 20;
    const char *args[4];
    int nargs = 0;
    if (!url || !*url)
        url = DEFAULT_URL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("rdvctl %s\n", SRV_VERSION);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--url") && more) {
            url = argv[++i];
        } else if (!strcmp(a, "--token-file") && more) {
            token_file = argv[++i];
        } else if (!strcmp(a, "--reason") && more) {
            reason = argv[++i];
        } else if (!strcmp(a, "--serial") && more) {
            serial = argv[++i];
        } else if (!strcmp(a, "--limit") && more) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000) {
                fprintf(stderr, "rdvctl: --limit must be 1..1000\n");
                return 2;
            }
            limit = (int)v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "rdvctl: unknown option or missing value: %s (see --help)\n", a);
            return 2;
        } else if (nargs < 4) {
            args[nargs++] = a;
        } else {
            fprintf(stderr, "rdvctl: too many arguments (see --help)\n");
            return 2;
        }
    }
    if (nargs == 0) {
        usage(stderr);
        return 2;
    }
    const char *cmd = args[0];
    const char *id = nargs > 1 ? args[1] : NULL;
    char path[512], body[1024];
    const char *method = "GET", *send = NULL;
    json_t *b = NULL;
    bool want_id = false, no_id = false;
    if (!strcmp(cmd, "nodes") || !strcmp(cmd, "allowlist") || !strcmp(cmd, "revoked") ||
        !strcmp(cmd, "policy")) {
        no_id = true;
        snprintf(path, sizeof path, "/admin/v1/%s", cmd);
    } else if (!strcmp(cmd, "audit")) {
        no_id = true;
        snprintf(path, sizeof path, "/admin/v1/audit?limit=%d", limit);
    } else if (!strcmp(cmd, "node") || !strcmp(cmd, "disconnect")) {
        want_id = true;
        snprintf(path, sizeof path, "/admin/v1/nodes/%.128s%s", id ? id : "",
                 !strcmp(cmd, "disconnect") ? "/disconnect" : "");
        if (!strcmp(cmd, "disconnect")) {
            method = "POST";
            b = reason ? json_pack("{s:s}", "reason", reason) : json_object();
        }
    } else if (!strcmp(cmd, "allow")) {
        want_id = true;
        method = "POST";
        snprintf(path, sizeof path, "/admin/v1/allowlist");
        b = json_pack("{s:s}", "nodeID", id ? id : "");
    } else if (!strcmp(cmd, "disallow")) {
        want_id = true;
        method = "DELETE";
        snprintf(path, sizeof path, "/admin/v1/allowlist/%.128s", id ? id : "");
    } else if (!strcmp(cmd, "revoke") || !strcmp(cmd, "unrevoke")) {
        method = "POST";
        snprintf(path, sizeof path, "/admin/v1/%s", cmd);
        if (serial && nargs == 1)
            b = json_pack("{s:s}", "serial", serial);
        else if (!serial && nargs == 2)
            b = json_pack("{s:s}", "nodeID", id);
        else {
            fprintf(stderr, "rdvctl: %s takes a node ID or --serial SERIAL\n", cmd);
            return 2;
        }
    } else {
        fprintf(stderr, "rdvctl: unknown command '%s' (see --help)\n", cmd);
        return 2;
    }
    if ((want_id && nargs != 2) || (no_id && nargs != 1)) {
        fprintf(stderr, "rdvctl: %s %s\n", cmd, want_id ? "takes one node ID" : "takes no argument");
        json_decref(b);
        return 2;
    }
    if (b) {
        char *s = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        if (!s || strlen(s) >= sizeof body) {
            free(s);
            fprintf(stderr, "rdvctl: argument too long\n");
            return 2;
        }
        memcpy(body, s, strlen(s) + 1);
        free(s);
        send = body;
    }
    char token[600];
    const char *tok = NULL;
    if (token_file) {
        if (read_token(token_file, token, sizeof token) != 0)
            return 2;
        tok = token;
    } else {
        tok = getenv("RENDEZVOUS_ADMIN_TOKEN");
        if (!tok || !*tok) {
            fprintf(stderr, "rdvctl: no token: pass --token-file FILE or set "
                            "RENDEZVOUS_ADMIN_TOKEN\n");
            return 2;
        }
    }
    rdvctl_response res;
    if (rdvctl_request(method, url, path, tok, send, TIMEOUT_MS, &res) != 0) {
        fprintf(stderr, "rdvctl: %s: %s (is rendezvousd running with its operator's listener "
                        "there? --url / RDVCTL_URL)\n",
                url, res.err);
        return 1;
    }
    json_error_t jerr;
    json_t *o = json_loadb(res.body, res.len, 0, &jerr);
    int rc = res.status == 200 ? 0 : 1;
    if (json) {
        fputs(res.body, stdout);
        if (res.len && res.body[res.len - 1] != '\n')
            putchar('\n');
    } else if (!o) {
        fprintf(stderr, "rdvctl: HTTP %d, not JSON: %.300s\n", res.status, res.body);
        rc = 1;
    } else if (rc != 0) {
        json_t *e = json_object_get(o, "error");
        fprintf(stderr, "rdvctl: %s (%s, HTTP %d)\n", str(e, "message"), str(e, "code"),
                res.status);
    } else {
        print_human(cmd, o);
    }
    if (json && rc != 0) {
        json_t *e = json_object_get(o, "error");
        fprintf(stderr, "rdvctl: %s (%s, HTTP %d)\n", str(e, "message"), str(e, "code"),
                res.status);
    }
    json_decref(o);
    free(res.body);
    return rc;
}
