/* admission.c - admission modes, fleet keys, allowlist and revocation
 * (see admission.h).
 */
#include "rendezvous/admission.h"

#include <ctype.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/ids.h"
#include "rendezvous/log.h"
#include "rendezvous/presence.h"
#include "rendezvous/server.h"
#include "schema/sign.h"

#define KEY_FILE_MAX 16384 /* bytes of a --fleet-key-file */
#define RC_PENDING 99      /* an engine write whose result is not known yet */

static const size_t key_len[SRV_ADM_LIST__COUNT] = {
    [SRV_ADM_LIST_ALLOW] = RDV_NODE_ID_BYTES,
    [SRV_ADM_LIST_REVOKED_NODE] = RDV_NODE_ID_BYTES,
    [SRV_ADM_LIST_REVOKED_SERIAL] = RDV_FLEET_SERIAL_HEXLEN / 2,
};

/* A load of the lists under way: filled into maps of its own, swapped in
 * when complete (a reload never leaves the server with empty lists). */
typedef struct adm_load {
    srv_server *srv;
    srv_hmap lists[SRV_ADM_LIST__COUNT];
} adm_load;

const char *srv_admission_rc_name(int rc)
{
    switch (rc) {
    case SRV_ADM_OK: return "ok";
    case SRV_ADM_UNCHANGED: return "unchanged";
    case SRV_ADM_EINVAL: return "invalid";
    case SRV_ADM_ESTORE: return "store_failed";
    case SRV_ADM_ENOMEM: return "out_of_memory";
    case SRV_ADM_ENOTREADY: return "not_ready";
    default: return "unknown";
    }
}

int srv_admission_parse_mode(const char *s, unsigned *mode)
{
    if (!s || !mode)
        return -1;
    if (!strcmp(s, "open"))
        *mode = 0;
    else if (!strcmp(s, "allowlist"))
        *mode = SRV_ADM_MODE_ALLOWLIST;
    else if (!strcmp(s, "fleet"))
        *mode = SRV_ADM_MODE_FLEET;
    else if (!strcmp(s, "allowlist,fleet") || !strcmp(s, "fleet,allowlist"))
        *mode = SRV_ADM_MODE_ALLOWLIST | SRV_ADM_MODE_FLEET;
    else
        return -1;
    return 0;
}

/* Adds the key written in tok[0..n) to adm (a duplicate is ignored). */
static int add_key(srv_admission *adm, const char *tok, size_t n, const char *src, char *err,
                   size_t errlen)
{
    uint8_t k[RDV_NODE_ID_BYTES];
    if (rdv_fleet_key_decode(tok, n, k) != 0) {
        snprintf(err, errlen,
                 "%s: '%.*s' is not a fleet public key (64 hex digits or 44 base64 "
                 "characters; rdv fleet keygen writes one)",
                 src, (int)(n > 80 ? 80 : n), tok);
        return -1;
    }
    for (size_t i = 0; i < adm->n_keys; i++)
        if (!memcmp(adm->keys[i], k, sizeof k))
            return 0;
    if (adm->n_keys >= RDV_FLEET_MAX_KEYS) {
        snprintf(err, errlen, "%s: more than %d fleet keys", src, RDV_FLEET_MAX_KEYS);
        return -1;
    }
    memcpy(adm->keys[adm->n_keys++], k, sizeof k);
    return 0;
}

/* Adds every key of text (separated by commas or white space; '#' starts
 * a comment to the end of the line). */
static int add_keys(srv_admission *adm, const char *text, const char *src, char *err,
                    size_t errlen)
{
    const char *p = text;
    while (*p) {
        if (*p == '#') {
            while (*p && *p != '\n')
                p++;
            continue;
        }
        if (*p == ',' || isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *t = p;
        while (*p && *p != ',' && *p != '#' && !isspace((unsigned char)*p))
            p++;
        if (add_key(adm, t, (size_t)(p - t), src, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int srv_admission_parse_keys(srv_admission *adm, const char *list, const char *file, char *err,
                             size_t errlen)
{
    adm->n_keys = 0;
    if (list && add_keys(adm, list, "--fleet-key", err, errlen) != 0)
        return -1;
    if (!file || !*file)
        return 0;
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errlen, "--fleet-key-file %.200s: cannot open it", file);
        return -1;
    }
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, KEY_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > KEY_FILE_MAX) {
        free(buf);
        snprintf(err, errlen, "--fleet-key-file %.200s: %s", file,
                 buf ? "larger than 16 KiB" : "out of memory");
        return -1;
    }
    buf[n] = '\0';
    int rc = add_keys(adm, buf, "--fleet-key-file", err, errlen);
    free(buf);
    return rc;
}

/* ---- the lists in memory ------------------------------------------------ */

static int maps_init(srv_hmap *maps)
{
    memset(maps, 0, sizeof(srv_hmap) * SRV_ADM_LIST__COUNT);
    ptrdiff_t off = (ptrdiff_t)offsetof(srv_adm_entry, key) - (ptrdiff_t)offsetof(srv_adm_entry, node);
    for (int l = 0; l < SRV_ADM_LIST__COUNT; l++)
        if (srv_hmap_init(&maps[l], key_len[l], off) != 0)
            return -1;
    return 0;
}

static void free_entry(srv_hnode *n, void *user)
{
    srv_hmap *m = user;
    srv_hmap_del(m, n);
    free(srv_container_of(n, srv_adm_entry, node));
}

static void maps_free(srv_hmap *maps)
{
    for (int l = 0; l < SRV_ADM_LIST__COUNT; l++) {
        if (maps[l].buckets)
            srv_hmap_each(&maps[l], free_entry, &maps[l]);
        srv_hmap_free(&maps[l]);
    }
}

/* The key bytes of a list's text key; -1 when malformed. */
static int key_bytes(int list, const char *text, uint8_t out[RDV_NODE_ID_BYTES])
{
    if (!text || list < 0 || list >= SRV_ADM_LIST__COUNT)
        return -1;
    size_t hexlen = key_len[list] * 2;
    if (!rdv_hex_valid(text, strlen(text), hexlen))
        return -1;
    memset(out, 0, RDV_NODE_ID_BYTES);
    return sodium_hex2bin(out, RDV_NODE_ID_BYTES, text, hexlen, NULL, NULL, NULL) == 0 ? 0 : -1;
}

static srv_adm_entry *map_get(const srv_hmap *m, const uint8_t *key)
{
    srv_hnode *n = m->buckets ? srv_hmap_get(m, key) : NULL;
    return n ? srv_container_of(n, srv_adm_entry, node) : NULL;
}

/* Puts key in m unless there. Returns 0 (added), 1 (was there), -1 (OOM). */
static int map_put(srv_hmap *m, const uint8_t *key, int64_t added)
{
    if (map_get(m, key))
        return 1;
    srv_adm_entry *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    memcpy(e->key, key, m->keylen);
    e->added = added;
    srv_hmap_put(m, &e->node);
    return 0;
}

/* Removes key from m. Returns 0 (removed) or 1 (was not there). */
static int map_del(srv_hmap *m, const uint8_t *key)
{
    srv_adm_entry *e = map_get(m, key);
    if (!e)
        return 1;
    srv_hmap_del(m, &e->node);
    free(e);
    return 0;
}

bool srv_admission_listed(srv_server *srv, int list, const char *key)
{
    uint8_t k[RDV_NODE_ID_BYTES];
    return key_bytes(list, key, k) == 0 && map_get(&srv->adm.lists[list], k) != NULL;
}

/* ---- revocation of live connections ------------------------------------ */

typedef struct sweep {
    srv_server *srv;
    int closed;
    const char *serial; /* NULL: every node now revoked by node ID or serial */
} sweep;

static void close_revoked(srv_server *srv, srv_conn *c, const char *what)
{
    char hex[RDV_NODE_ID_HEXLEN + 1];
    srv_conn_node_hex(c, hex);
    srv_info(srv->log, "node %s revoked (%s): closing its connection", hex, what);
    char msg[160];
    snprintf(msg, sizeof msg, "the operator revoked this %s; ask them before connecting again",
             what);
    srv_conn_close(srv, c, RDV_EC_REVOKED, msg, LWS_CLOSE_STATUS_POLICY_VIOLATION);
}

static void sweep_one(srv_hnode *n, void *user)
{
    sweep *s = user;
    srv_conn *c = srv_container_of(n, srv_conn, link.node);
    if (c->state != SRV_CONN_AUTHED)
        return;
    uint8_t sk[RDV_NODE_ID_BYTES];
    bool by_serial = c->cert && (s->serial ? !strcmp(c->cert->serial, s->serial)
                                           : key_bytes(SRV_ADM_LIST_REVOKED_SERIAL,
                                                       c->cert->serial, sk) == 0 &&
                                                 map_get(&s->srv->adm.lists
                                                              [SRV_ADM_LIST_REVOKED_SERIAL],
                                                         sk));
    bool by_node = !s->serial &&
                   map_get(&s->srv->adm.lists[SRV_ADM_LIST_REVOKED_NODE], c->node_id) != NULL;
    if (!by_serial && !by_node)
        return;
    close_revoked(s->srv, c, by_node ? "node ID" : "node's certificate");
    s->closed++;
}

/* Closes the connections here that a revocation names: node `id`
 * (32 bytes), or every one with certificate `serial`, or (both NULL)
 * every one any list revokes. Returns how many. */
static int close_live(srv_server *srv, const uint8_t *id, const char *serial)
{
    if (id) {
        srv_conn *c = srv_presence_find(srv, id);
        if (!c || c->state != SRV_CONN_AUTHED)
            return 0;
        close_revoked(srv, c, "node ID");
        return 1;
    }
    sweep s = {srv, 0, serial};
    srv_hmap_each(&srv->nodes, sweep_one, &s);
    return s.closed;
}

/* ---- loading ------------------------------------------------------------ */

static void load_each(void *user, int list, const char *key, int64_t added)
{
    adm_load *ld = user;
    uint8_t k[RDV_NODE_ID_BYTES];
    if (key_bytes(list, key, k) != 0)
        return; /* not ours to judge: skip a malformed entry */
    if (map_put(&ld->lists[list], k, added) < 0)
        srv_warn(ld->srv->log, "admission: out of memory loading the lists");
}

static void load_done(void *user, int n)
{
    adm_load *ld = user;
    srv_server *srv = ld->srv;
    if (srv->adm.pending_load == ld)
        srv->adm.pending_load = NULL;
    srv->adm.loading = false;
    if (n < 0) {
        srv_warn(srv->log, "admission: cannot read the allowlist and revocations from the "
                           "store; retrying when it answers");
        maps_free(ld->lists);
        free(ld);
        return;
    }
    maps_free(srv->adm.lists);
    memcpy(srv->adm.lists, ld->lists, sizeof srv->adm.lists);
    free(ld);
    bool first = !srv->adm.loaded;
    srv->adm.loaded = true;
    srv_info(srv->log,
             "admission: %zu allowlisted node(s), %zu revoked node ID(s), %zu revoked "
             "certificate(s)%s",
             srv->adm.lists[SRV_ADM_LIST_ALLOW].count,
             srv->adm.lists[SRV_ADM_LIST_REVOKED_NODE].count,
             srv->adm.lists[SRV_ADM_LIST_REVOKED_SERIAL].count, first ? "" : " (reloaded)");
    /* revocations made while this instance could not hear them, or
     * written to the store offline (SIGHUP) */
    if (!first)
        (void)close_live(srv, NULL, NULL);
}

static void load_lists(srv_server *srv)
{
    if (srv->adm.loading)
        return;
    adm_load *ld = calloc(1, sizeof *ld);
    if (!ld || maps_init(ld->lists) != 0) {
        if (ld)
            maps_free(ld->lists);
        free(ld);
        srv_warn(srv->log, "admission: out of memory loading the lists");
        return;
    }
    ld->srv = srv;
    srv->adm.loading = true;
    srv->adm.pending_load = ld;
    srv_engine_adm_load(srv->engine, load_each, load_done, ld);
}

void srv_admission_reload(srv_server *srv)
{
    load_lists(srv);
}

static const char *mode_name(unsigned mode)
{
    switch (mode) {
    case 0: return "open";
    case SRV_ADM_MODE_ALLOWLIST: return "allowlist";
    case SRV_ADM_MODE_FLEET: return "fleet";
    default: return "allowlist,fleet";
    }
}

/* The "admission" reload hook (reload.h): the fleet keys again (the
 * --fleet-key-file may have changed: rotation without a restart), then the
 * lists from the store (an operator may have edited them offline), closing
 * every live node they now revoke. Keys that do not parse keep the old
 * ones (and the lists are not reloaded). */
static int reload_hook(void *user, char *err, size_t errlen)
{
    srv_server *srv = user;
    srv_admission tmp;
    memset(&tmp, 0, sizeof tmp);
    if (srv_admission_parse_keys(&tmp, srv->cfg->fleet_keys, srv->cfg->fleet_key_file, err,
                                 errlen) != 0)
        return -1;
    if ((srv->adm.mode & SRV_ADM_MODE_FLEET) && tmp.n_keys == 0) {
        snprintf(err, errlen, "no fleet key left (--fleet-key, --fleet-key-file)");
        return -1;
    }
    memcpy(srv->adm.keys, tmp.keys, sizeof tmp.keys);
    srv->adm.n_keys = tmp.n_keys;
    load_lists(srv);
    return 0;
}

int srv_admission_start(srv_server *srv)
{
    const srv_config *cfg = srv->cfg;
    srv_admission *adm = &srv->adm;
    char err[320] = "";
    if (srv_admission_parse_mode(cfg->admission, &adm->mode) != 0) {
        srv_error(srv->log, "--admission '%s': use open, allowlist, fleet or allowlist,fleet",
                  cfg->admission);
        return -1;
    }
    if (srv_admission_parse_keys(adm, cfg->fleet_keys, cfg->fleet_key_file, err, sizeof err) !=
        0) {
        srv_error(srv->log, "%s", err);
        return -1;
    }
    if ((adm->mode & SRV_ADM_MODE_FLEET) && adm->n_keys == 0) {
        srv_error(srv->log, "--admission %s needs the fleet's public key: --fleet-key KEY or "
                            "--fleet-key-file FILE (rdv fleet keygen makes one)",
                  mode_name(adm->mode));
        return -1;
    }
    if (maps_init(adm->lists) != 0) {
        srv_error(srv->log, "out of memory");
        return -1;
    }
    load_lists(srv);
    /* SIGHUP re-reads the lists and keys where admission is restricted (in
     * open mode revocations come through the admin API) */
    if (adm->mode && srv_reload_register(&srv->reload, "admission", reload_hook, srv) != 0)
        srv_warn(srv->log, "admission: cannot register the SIGHUP reload hook");
    srv_info(srv->log, "admission %s, %zu fleet key(s)", mode_name(adm->mode), adm->n_keys);
    return 0;
}

void srv_admission_free(srv_admission *adm)
{
    if (adm->pending_load) {
        maps_free(adm->pending_load->lists);
        free(adm->pending_load);
        adm->pending_load = NULL;
    }
    maps_free(adm->lists);
}

/* ---- the hello check ---------------------------------------------------- */

bool srv_conn_in_group(const srv_conn *c, const char *g)
{
    if (!c || !c->cert || !g)
        return false;
    for (unsigned i = 0; i < c->cert->n_groups; i++)
        if (!strcmp(c->cert->groups[i], g))
            return true;
    return false;
}

rdv_ec srv_admission_check(srv_server *srv, srv_conn *c, const json_t *hello,
                           const char *node_hex, char *why, size_t whylen)
{
    srv_admission *adm = &srv->adm;
    uint8_t id[RDV_NODE_ID_BYTES];
    why[0] = '\0';
    if (key_bytes(SRV_ADM_LIST_REVOKED_NODE, node_hex, id) != 0) {
        snprintf(why, whylen, "nodeID is not a node ID");
        return RDV_EC_NOT_ADMITTED;
    }
    if (!adm->loaded) {
        if (!adm->mode)
            return RDV_EC_NONE; /* open: revocations apply once they are loaded */
        snprintf(why, whylen, "this server has not loaded its allowlist and revocations yet "
                              "(its store does not answer); try again in a few seconds");
        return RDV_EC_INTERNAL;
    }
    if (map_get(&adm->lists[SRV_ADM_LIST_REVOKED_NODE], id)) {
        snprintf(why, whylen, "node %.16s... is revoked on this server; ask its operator, and "
                              "do not reconnect until they restore it",
                 node_hex);
        return RDV_EC_REVOKED;
    }
    if (!adm->mode)
        return RDV_EC_NONE;
    const json_t *cert = json_object_get(hello, "cert");
    char cert_why[200] = "";
    rdv_fleet_cert fc;
    bool cert_ok = false;
    if ((adm->mode & SRV_ADM_MODE_FLEET) && cert) {
        rdv_fleet_rc rc = rdv_fleet_cert_verify(cert, (const uint8_t(*)[RDV_NODE_ID_BYTES])adm->keys,
                                                adm->n_keys, node_hex, rdv_now_ms(),
                                                RDV_INGRESS_SKEW_MS, &fc, cert_why,
                                                sizeof cert_why);
        if (rc == RDV_FLEET_OK) {
            uint8_t sk[RDV_NODE_ID_BYTES];
            if (key_bytes(SRV_ADM_LIST_REVOKED_SERIAL, fc.serial, sk) == 0 &&
                map_get(&adm->lists[SRV_ADM_LIST_REVOKED_SERIAL], sk)) {
                snprintf(why, whylen, "this node's fleet certificate (serial %s) is revoked; ask "
                                      "the operator for a new one",
                         fc.serial);
                return RDV_EC_REVOKED;
            }
            cert_ok = true;
        }
    }
    if (cert_ok) {
        srv_conn_cert *cc = calloc(1, sizeof *cc);
        if (!cc) {
            snprintf(why, whylen, "out of memory; try again later");
            return RDV_EC_INTERNAL;
        }
        memcpy(cc->serial, fc.serial, sizeof cc->serial);
        cc->expires = fc.expires;
        cc->n_groups = (uint8_t)fc.n_groups;
        memcpy(cc->groups, fc.groups, sizeof cc->groups);
        free(c->cert);
        c->cert = cc;
        return RDV_EC_NONE;
    }
    if ((adm->mode & SRV_ADM_MODE_ALLOWLIST) && map_get(&adm->lists[SRV_ADM_LIST_ALLOW], id))
        return RDV_EC_NONE;
    const char *fix_cert = "ask the operator to sign a fleet certificate for it (rdv fleet sign "
                           "NODE_ID) and connect with --cert FILE";
    if (adm->mode == SRV_ADM_MODE_ALLOWLIST)
        snprintf(why, whylen, "node %s is not on this server's allowlist; ask its operator to "
                              "add it",
                 node_hex);
    else if (!cert)
        snprintf(why, whylen, "node %s sent no fleet certificate%s; %s", node_hex,
                 adm->mode & SRV_ADM_MODE_ALLOWLIST ? " and is not on the allowlist" : "",
                 fix_cert);
    else
        snprintf(why, whylen, "fleet certificate refused: %s%s", cert_why,
                 adm->mode & SRV_ADM_MODE_ALLOWLIST ? " (and the node is not on the allowlist)"
                                                    : "");
    return RDV_EC_NOT_ADMITTED;
}

/* ---- changes ------------------------------------------------------------ */

static void written(void *user, int n)
{
    srv_server *srv = user;
    if (srv->adm.last_rc == RC_PENDING) {
        srv->adm.last_rc = n; /* synchronous engine: the caller reads it */
        return;
    }
    if (n < 0)
        srv_error(srv->log, "admission: an allowlist/revocation change could not be written "
                            "to the shared store; it holds on this instance only until it is "
                            "made again");
}

/* Writes through the engine; returns the result when the engine answered
 * at once (sqlite: 0, 1 unchanged, -1), or 0 when it will answer later. */
static int write_through(srv_server *srv, int list, const char *key, bool present, int64_t now)
{
    srv->adm.last_rc = RC_PENDING;
    srv_engine_adm_set(srv->engine, list, key, present, now, written, srv);
    int rc = srv->adm.last_rc;
    srv->adm.last_rc = 0;
    return rc == RC_PENDING ? 0 : rc;
}

/* Adds (present) or removes key on list, store first. */
static int change(srv_server *srv, int list, const char *key, bool present, uint8_t *k)
{
    if (key_bytes(list, key, k) != 0)
        return SRV_ADM_EINVAL;
    if (!srv->adm.loaded && srv->engine && strcmp(srv->engine->ops->name, "sqlite") != 0)
        return SRV_ADM_ENOTREADY;
    srv_hmap *m = &srv->adm.lists[list];
    bool there = map_get(m, k) != NULL;
    if (there == present)
        return SRV_ADM_UNCHANGED;
    int64_t now = rdv_now_ms();
    int rc = write_through(srv, list, key, present, now);
    if (rc < 0)
        return SRV_ADM_ESTORE;
    if (present ? map_put(m, k, now) < 0 : map_del(m, k) != 0)
        return present ? SRV_ADM_ENOMEM : SRV_ADM_OK;
    return SRV_ADM_OK;
}

int srv_admission_allow_add(srv_server *srv, const char *node_hex)
{
    uint8_t k[RDV_NODE_ID_BYTES];
    return change(srv, SRV_ADM_LIST_ALLOW, node_hex, true, k);
}

int srv_admission_allow_remove(srv_server *srv, const char *node_hex)
{
    uint8_t k[RDV_NODE_ID_BYTES];
    return change(srv, SRV_ADM_LIST_ALLOW, node_hex, false, k);
}

int srv_admission_revoke(srv_server *srv, bool serial, const char *key, int *closed)
{
    uint8_t k[RDV_NODE_ID_BYTES];
    int list = serial ? SRV_ADM_LIST_REVOKED_SERIAL : SRV_ADM_LIST_REVOKED_NODE;
    int rc = change(srv, list, key, true, k);
    if (closed)
        *closed = 0;
    if (rc < 0)
        return rc;
    /* also when it was revoked already: nothing it names stays connected */
    int n = serial ? close_live(srv, NULL, key) : close_live(srv, k, NULL);
    if (closed)
        *closed = n;
    return rc;
}

int srv_admission_unrevoke(srv_server *srv, bool serial, const char *key)
{
    uint8_t k[RDV_NODE_ID_BYTES];
    return change(srv, serial ? SRV_ADM_LIST_REVOKED_SERIAL : SRV_ADM_LIST_REVOKED_NODE, key,
                  false, k);
}

void srv_admission_bus_in(void *user, int list, const char *key, bool present, int64_t added)
{
    srv_server *srv = user;
    uint8_t k[RDV_NODE_ID_BYTES];
    if (key_bytes(list, key, k) != 0 || !srv->adm.lists[list].buckets)
        return;
    if (!present) {
        (void)map_del(&srv->adm.lists[list], k);
        return;
    }
    if (map_put(&srv->adm.lists[list], k, added) < 0)
        srv_warn(srv->log, "admission: out of memory");
    if (list == SRV_ADM_LIST_REVOKED_NODE)
        (void)close_live(srv, k, NULL);
    else if (list == SRV_ADM_LIST_REVOKED_SERIAL)
        (void)close_live(srv, NULL, key);
}

/* ---- listing ------------------------------------------------------------ */

typedef struct collect {
    srv_adm_entry **v;
    size_t n, cap;
} collect;

static void collect_one(srv_hnode *n, void *user)
{
    collect *c = user;
    if (c->n < c->cap)
        c->v[c->n++] = srv_container_of(n, srv_adm_entry, node);
}

static int cmp_entry(const void *a, const void *b)
{
    const srv_adm_entry *x = *(srv_adm_entry *const *)a, *y = *(srv_adm_entry *const *)b;
    return memcmp(x->key, y->key, RDV_NODE_ID_BYTES);
}

json_t *srv_admission_list_json(srv_server *srv, int list)
{
    if (list < 0 || list >= SRV_ADM_LIST__COUNT)
        return NULL;
    srv_hmap *m = &srv->adm.lists[list];
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    collect c = {NULL, 0, m->count};
    if (m->count) {
        c.v = calloc(m->count, sizeof *c.v);
        if (!c.v) {
            json_decref(arr);
            return NULL;
        }
        srv_hmap_each(m, collect_one, &c);
        qsort(c.v, c.n, sizeof *c.v, cmp_entry); /* unused key bytes are zero */
    }
    const char *name = list == SRV_ADM_LIST_REVOKED_SERIAL ? "serial" : "nodeID";
    for (size_t i = 0; i < c.n; i++) {
        char hex[RDV_NODE_ID_HEXLEN + 1];
        sodium_bin2hex(hex, sizeof hex, c.v[i]->key, key_len[list]);
        json_t *o = json_pack("{s:s, s:I}", name, hex, "added", (json_int_t)c.v[i]->added);
        if (!o || json_array_append_new(arr, o) != 0) {
            free(c.v);
            json_decref(arr);
            return NULL;
        }
    }
    free(c.v);
    return arr;
}
