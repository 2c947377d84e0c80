/* policy.c - the relay and signaling policy (see policy.h). */
#include "rendezvous/policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/admission.h"
#include "schema/fleet_cert.h"
#include "rendezvous/log.h"
#include "rendezvous/reload.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

#define LINE_MAX_LEN 1024

typedef struct relay_rule {
    char group[RDV_FLEET_GROUP_MAX + 1]; /* "*": every node */
    uint64_t rate, quota;
    int sessions;
    bool has_rate, has_quota, has_sessions;
    unsigned line;
} relay_rule;

typedef struct signal_rule {
    char from[RDV_FLEET_GROUP_MAX + 1], to[RDV_FLEET_GROUP_MAX + 1];
    unsigned line;
} signal_rule;

struct srv_policy {
    relay_rule relay[SRV_POLICY_MAX_RULES];
    signal_rule signal[SRV_POLICY_MAX_RULES];
    int n_relay, n_signal;
    char path[1024];
    int64_t loaded_ms;
};

/* A group name: "*", or 1..RDV_FLEET_GROUP_MAX of [A-Za-z0-9._-]. */
static bool group_ok(const char *g)
{
    size_t n = strlen(g);
    if (!strcmp(g, "*"))
        return true;
    if (n == 0 || n > RDV_FLEET_GROUP_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)g[i]) && !strchr("._-", g[i]))
            return false;
    return true;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (!*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* One line (already without its comment) into p. false with the reason
 * in why. */
static bool parse_line(struct srv_policy *p, char *line, unsigned lineno, char *why, size_t n)
{
    char *tok[16];
    int nt = 0;
    for (char *s = strtok(line, " \t\r\n"); s; s = strtok(NULL, " \t\r\n")) {
        if (nt == 16) {
            snprintf(why, n, "too many words");
            return false;
        }
        tok[nt++] = s;
    }
    if (nt == 0)
        return true;
    if (!strcmp(tok[0], "relay")) {
        if (nt < 2 || nt % 2 != 0) {
            snprintf(why, n, "expected 'relay GROUP [rate BYTES] [sessions N] [quota BYTES]'");
            return false;
        }
        if (!group_ok(tok[1])) {
            snprintf(why, n, "'%.40s' is not a group name ([A-Za-z0-9._-], 1..%d) or *", tok[1],
                     RDV_FLEET_GROUP_MAX);
            return false;
        }
        if (p->n_relay == SRV_POLICY_MAX_RULES) {
            snprintf(why, n, "more than %d relay rules", SRV_POLICY_MAX_RULES);
            return false;
        }
        relay_rule *r = &p->relay[p->n_relay];
        memset(r, 0, sizeof *r);
        snprintf(r->group, sizeof r->group, "%s", tok[1]);
        r->line = lineno;
        for (int i = 2; i + 1 < nt; i += 2) {
            uint64_t v;
            if (!strcmp(tok[i], "rate") && !r->has_rate && parse_u64(tok[i + 1], 1ULL << 40, &v)) {
                r->rate = v;
                r->has_rate = true;
            } else if (!strcmp(tok[i], "quota") && !r->has_quota &&
                       parse_u64(tok[i + 1], 1ULL << 53, &v)) {
                r->quota = v;
                r->has_quota = true;
            } else if (!strcmp(tok[i], "sessions") && !r->has_sessions &&
                       parse_u64(tok[i + 1], 1000000, &v)) {
                r->sessions = (int)v;
                r->has_sessions = true;
            } else {
                snprintf(why, n, "'%.20s %.24s': expected rate BYTES, sessions N or quota BYTES "
                                 "(each once, a whole number; 0 rate/quota = unlimited)",
                         tok[i], tok[i + 1]);
                return false;
            }
        }
        p->n_relay++;
        return true;
    }
    if (!strcmp(tok[0], "signal")) {
        if (nt != 3) {
            snprintf(why, n, "expected 'signal FROM TO' (groups or *)");
            return false;
        }
        for (int i = 1; i < 3; i++)
            if (!group_ok(tok[i])) {
                snprintf(why, n, "'%.40s' is not a group name ([A-Za-z0-9._-], 1..%d) or *",
                         tok[i], RDV_FLEET_GROUP_MAX);
                return false;
            }
        if (p->n_signal == SRV_POLICY_MAX_RULES) {
            snprintf(why, n, "more than %d signal rules", SRV_POLICY_MAX_RULES);
            return false;
        }
        signal_rule *s = &p->signal[p->n_signal++];
        snprintf(s->from, sizeof s->from, "%s", tok[1]);
        snprintf(s->to, sizeof s->to, "%s", tok[2]);
        s->line = lineno;
        return true;
    }
    snprintf(why, n, "unknown rule '%.32s' (expected relay or signal)", tok[0]);
    return false;
}

int srv_policy_parse(const char *path, struct srv_policy **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%.200s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct srv_policy *p = calloc(1, sizeof *p);
    if (!p) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(p->path, sizeof p->path, "%s", path);
    char line[LINE_MAX_LEN + 2];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        char why[200] = "";
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(why, sizeof why, "line longer than %d bytes", LINE_MAX_LEN);
            rc = -1;
        } else {
            char *hash = strchr(line, '#');
            if (hash)
                *hash = '\0';
            if (!parse_line(p, line, lineno, why, sizeof why))
                rc = -1;
        }
        if (rc)
            snprintf(err, errlen, "%.200s:%u: %s", path, lineno, why);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%.200s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc) {
        free(p);
        return -1;
    }
    p->loaded_ms = rdv_now_ms();
    *out = p;
    return 0;
}

void srv_policy_destroy(struct srv_policy *p)
{
    free(p);
}

/* The "policy" reload hook: parse the file again; swap only when whole. */
static int reload_hook(void *user, char *err, size_t errlen)
{
    srv_server *srv = user;
    struct srv_policy *p = NULL;
    if (srv_policy_parse(srv->cfg->policy_path, &p, err, errlen) != 0)
        return -1;
    srv_policy_destroy(srv->policy);
    srv->policy = p;
    srv_info(srv->log, "policy %s: %d relay rule(s), %d signal rule(s)", p->path, p->n_relay,
             p->n_signal);
    return 0;
}

int srv_policy_start(srv_server *srv)
{
    const char *path = srv->cfg->policy_path;
    if (!path[0])
        return 0;
    char err[320];
    if (srv_policy_parse(path, &srv->policy, err, sizeof err) != 0) {
        srv_error(srv->log, "--policy %s", err);
        return -1;
    }
    srv_info(srv->log, "policy %s: %d relay rule(s), %d signal rule(s)", path,
             srv->policy->n_relay, srv->policy->n_signal);
    if (srv_reload_register(&srv->reload, "policy", reload_hook, srv) != 0) {
        srv_error(srv->log, "--policy: cannot register the SIGHUP reload hook");
        return -1;
    }
    return 0;
}

void srv_policy_free(srv_server *srv)
{
    srv_policy_destroy(srv->policy);
    srv->policy = NULL;
}

/* True when group g (or "*") names node c. */
static bool matches(const srv_conn *c, const char *g)
{
    return !strcmp(g, "*") || (c && srv_conn_in_group(c, g));
}

bool srv_policy_relay(const srv_server *srv, const srv_conn *c, srv_policy_limits *lim,
                      char *why, size_t whylen)
{
    const srv_config *cfg = srv->cfg;
    lim->rate = cfg->relay_rate;
    lim->max_sessions = cfg->relay_max_sessions;
    lim->quota = cfg->relay_quota;
    const struct srv_policy *p = srv->policy;
    if (!p || p->n_relay == 0)
        return true;
    for (int i = 0; i < p->n_relay; i++) {
        const relay_rule *r = &p->relay[i];
        if (!matches(c, r->group))
            continue;
        if (r->has_rate)
            lim->rate = r->rate;
        if (r->has_sessions)
            lim->max_sessions = r->sessions;
        if (r->has_quota)
            lim->quota = r->quota;
        return true;
    }
    snprintf(why, whylen, "the operator's policy does not let this node use the relay (no "
                          "'relay' rule names one of its fleet groups); connect directly or ask "
                          "the operator");
    return false;
}

bool srv_policy_signal(const srv_server *srv, const srv_conn *from, const srv_conn *to,
                       char *why, size_t whylen)
{
    const struct srv_policy *p = srv->policy;
    if (!p || p->n_signal == 0)
        return true;
    for (int i = 0; i < p->n_signal; i++)
        if (matches(from, p->signal[i].from) && matches(to, p->signal[i].to))
            return true;
    snprintf(why, whylen, "the operator's policy does not let this node signal that peer (no "
                          "'signal' rule matches their fleet groups)");
    return false;
}

bool srv_policy_signals(const srv_server *srv)
{
    return srv->policy && srv->policy->n_signal > 0;
}

json_t *srv_policy_json(srv_server *srv)
{
    const struct srv_policy *p = srv->policy;
    if (!p)
        return json_pack("{s:n, s:[], s:[]}", "file", "relay", "signal");
    json_t *relay = json_array(), *signal = json_array();
    for (int i = 0; relay && i < p->n_relay; i++) {
        const relay_rule *r = &p->relay[i];
        json_t *o = json_pack("{s:s, s:i}", "group", r->group, "line", (int)r->line);
        if (o && r->has_rate)
            json_object_set_new(o, "rate", json_integer((json_int_t)r->rate));
        if (o && r->has_sessions)
            json_object_set_new(o, "sessions", json_integer(r->sessions));
        if (o && r->has_quota)
            json_object_set_new(o, "quota", json_integer((json_int_t)r->quota));
        json_array_append_new(relay, o);
    }
    for (int i = 0; signal && i < p->n_signal; i++)
        json_array_append_new(signal, json_pack("{s:s, s:s, s:i}", "from", p->signal[i].from,
                                                "to", p->signal[i].to, "line",
                                                (int)p->signal[i].line));
    if (!relay || !signal) {
        json_decref(relay);
        json_decref(signal);
        return NULL;
    }
    return json_pack("{s:s, s:I, s:o, s:o}", "file", p->path, "loadedAt",
                     (json_int_t)p->loaded_ms, "relay", relay, "signal", signal);
}
