/* options.c - the rdv CLI's options: parsing the command line into a
 * cli_opts, numbers in bounds, and the NAT traversal options given to the
 * client's configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rendezvous/rendezvous.h>

#include "client/cli/cli.h"

int rdv_cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A --stun value: "HOST:PORT" or "[IPv6]:PORT" with PORT 1..65535. Returns
 * 0 or -1. */
static int stun_addr_ok(const char *s)
{
    const char *port;
    size_t hl;
    if (strlen(s) > 300)
        return -1;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':')
            return -1;
        hl = (size_t)(e - s - 1);
        port = e + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -1; /* no port, or an IPv6 literal without brackets */
        hl = (size_t)(colon - s);
        port = colon + 1;
    }
    long v;
    if (hl == 0 || hl > 253 || port[0] < '0' || port[0] > '9')
        return -1;
    return rdv_cli_parse_long(port, 1, 65535, &v);
}

void rdv_cli_apply_nat(const struct cli_opts *o, rdv_client_config *cfg)
{
    if (o->nstun) {
        cfg->stun_servers = o->stun;
        cfg->stun_server_count = (size_t)o->nstun;
    }
    cfg->stun_disable = o->no_stun;
    cfg->udp_port = (uint16_t)o->udp_port;
    cfg->direct_disable = o->relay_only;
    cfg->direct_timeout_ms = (int)o->direct_timeout_ms;
    if (o->no_spray)
        cfg->spray_ports = -1;
    cfg->portmap_disable = o->no_portmap;
}

static int copy_opt(char *dst, size_t cap, const char *src)
{
    if (strlen(src) >= cap)
        return -1;
    strcpy(dst, src);
    return 0;
}

int rdv_cli_parse_opts(int argc, char **argv, struct cli_opts *o)
{
    const char *env = getenv("RENDEZVOUS_KEY");
    o->key_path = env && *env ? env : DEFAULT_KEY_PATH;
    env = getenv("RENDEZVOUS_URL");
    o->url = env && *env ? env : DEFAULT_URL;
    env = getenv("RENDEZVOUS_CERT");
    o->cert = env && *env ? env : NULL;
    o->timeout_ms = -1;
    o->wait_ms = -2; /* not given */
    strcpy(o->info.public_ip, "0.0.0.0");
    strcpy(o->info.local_ip, "0.0.0.0");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        int bad = 0, takes = 1;
        if (strcmp(a, "--key") == 0 && v)
            o->key_path = v;
        else if (strcmp(a, "--url") == 0 && v) {
            /* repeatable: the instances of one cluster, tried in turn */
            size_t have = o->url == o->url_list ? strlen(o->url_list) : 0;
            int n = snprintf(o->url_list + have, sizeof o->url_list - have, "%s%s",
                             have ? "," : "", v);
            if (n < 0 || (size_t)n >= sizeof o->url_list - have) {
                fprintf(stderr, "rdv: too many or too long --url values\n");
                return 2;
            }
            o->url = o->url_list;
        }
        else if (strcmp(a, "--ca") == 0 && v)
            o->ca = v;
        else if (strcmp(a, "--cert") == 0 && v)
            o->cert = v;
        else if (strcmp(a, "--timeout") == 0 && v)
            bad = rdv_cli_parse_long(v, 1, 86400000L, &o->timeout_ms);
        else if (strcmp(a, "--count") == 0 && v)
            bad = rdv_cli_parse_long(v, 1, 1000000L, &o->count);
        else if (strcmp(a, "--wait") == 0 && v)
            bad = rdv_cli_parse_long(v, -1, 86400000L, &o->wait_ms);
        else if (strcmp(a, "--listen") == 0 && v)
            o->listen = v;
        else if (strcmp(a, "--forward") == 0 && v)
            o->forward = v;
        else if (strcmp(a, "--state") == 0 && v)
            o->state_path = v;
        else if (strcmp(a, "--session") == 0 && v)
            o->session = v;
        else if (strcmp(a, "--stun") == 0 && v) {
            bad = stun_addr_ok(v);
            if (!bad && o->nstun >= RDV_MAX_STUN_SERVERS) {
                fprintf(stderr, "rdv: at most %d --stun servers\n", RDV_MAX_STUN_SERVERS);
                bad = 1;
            }
            if (!bad)
                o->stun[o->nstun++] = v;
        } else if (strcmp(a, "--udp-port") == 0 && v)
            bad = rdv_cli_parse_long(v, 0, 65535, &o->udp_port);
        else if (strcmp(a, "--direct-timeout") == 0 && v)
            bad = rdv_cli_parse_long(v, 1, 600000L, &o->direct_timeout_ms);
        else if (strcmp(a, "--local-ip") == 0 && v)
            bad = copy_opt(o->info.local_ip, sizeof(o->info.local_ip), v);
        else if (strcmp(a, "--public-ip") == 0 && v) {
            bad = copy_opt(o->info.public_ip, sizeof(o->info.public_ip), v);
            o->public_ip_set = 1;
        } else if (strcmp(a, "--local-port") == 0 && v) {
            bad = rdv_cli_parse_long(v, 0, 65535, &n);
            o->info.local_port = (uint16_t)n;
        } else if (strcmp(a, "--public-port") == 0 && v) {
            bad = rdv_cli_parse_long(v, 0, 65535, &n);
            o->info.public_port = (uint16_t)n;
        } else if (strcmp(a, "--nat") == 0 && v) {
            o->info.nat_type = rdv_nat_type_from_name(v);
            bad = o->info.nat_type == RDV_NAT_UNKNOWN && strcmp(v, "unknown") != 0;
        } else if (strcmp(a, "--wg-key") == 0 && v)
            bad = copy_opt(o->info.wg_public_key, sizeof(o->info.wg_public_key), v);
        else {
            takes = 0;
            if (strcmp(a, "--force") == 0)
                o->force = 1;
            else if (strcmp(a, "--json") == 0)
                o->json = 1;
            else if (strcmp(a, "--accept") == 0)
                o->accept = 1;
            else if (strcmp(a, "--no-connect") == 0)
                o->no_connect = 1;
            else if (strcmp(a, "--once") == 0)
                o->once = 1;
            else if (strcmp(a, "--no-stun") == 0)
                o->no_stun = 1;
            else if (strcmp(a, "--relay-only") == 0)
                o->relay_only = 1;
            else if (strcmp(a, "--no-spray") == 0)
                o->no_spray = 1;
            else if (strcmp(a, "--no-portmap") == 0)
                o->no_portmap = 1;
            else if (strcmp(a, "--direct") == 0)
                o->direct = 1;
            else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
                o->help = 1;
            else if (a[0] != '-' && o->nids < MAX_IDS)
                o->ids[o->nids++] = a;
            else {
                fprintf(stderr, "rdv: unknown or incomplete option '%s'\n", a);
                return 2;
            }
        }
        if (bad) {
            fprintf(stderr, "rdv: bad value for %s: '%s'\n", a, v);
            return 2;
        }
        i += takes;
    }
    if (o->no_stun && o->nstun) {
        fprintf(stderr, "rdv: --stun and --no-stun contradict each other\n");
        return 2;
    }
    return 0;
}

