/* auth.c - challenge / hello / welcome (see auth.h).
 *
 * Pending connections sit in a FIFO ordered by connect time; since they all
 * have the same timeout, one timer for the oldest covers them all.
 * The Ed25519 check of hello (~35-50 us) runs on a --verify-threads
 * worker (vpool.h) when there are any, so handshakes use every core: the
 * cheap checks run first on the loop, the signature on a worker, and
 * hello_complete() back on the loop (the connection's later messages wait
 * behind it, in order). Without workers, or for a hello whose nodeID or
 * signature is malformed, it all runs inline.
 */
#include "rendezvous/auth.h"

#include <libwebsockets.h>
#include <sodium.h>
#include <string.h>

#include "rendezvous/admission.h"
#include "schema/ids.h"
#include "rendezvous/conn_limits.h"
#include "rendezvous/log.h"
#include "rendezvous/presence.h"
#include "rendezvous/relay_channel.h"
#include "rendezvous/server.h"
#include "rendezvous/vpool.h"
#include "schema/sign.h"

/* Appends c to the pending FIFO. */
static void pending_push(srv_server *srv, srv_conn *c)
{
    c->link.pending.next = NULL;
    c->link.pending.prev = srv->pending_tail;
    if (srv->pending_tail)
        srv->pending_tail->link.pending.next = c;
    else
        srv->pending_head = c;
    srv->pending_tail = c;
}

void srv_auth_forget(srv_server *srv, srv_conn *c)
{
    if (c->state != SRV_CONN_PENDING)
        return;
    srv_conn *p = c->link.pending.prev, *n = c->link.pending.next;
    if (p)
        p->link.pending.next = n;
    else if (srv->pending_head == c)
        srv->pending_head = n;
    if (n)
        n->link.pending.prev = p;
    else if (srv->pending_tail == c)
        srv->pending_tail = p;
    c->link.pending.prev = c->link.pending.next = NULL;
}

int srv_auth_on_connect(srv_server *srv, srv_conn *c)
{
    char nonce_hex[RDV_NONCE_HEXLEN + 1];
    c->state = SRV_CONN_PENDING;
    c->connected_ms = srv_mono_ms();
    randombytes_buf(c->nonce, sizeof c->nonce);
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, c->nonce, sizeof c->nonce);
    pending_push(srv, c);
    srv_server_arm_auth_timer(srv);
    json_t *b = json_pack("{s:s, s:s, s:i, s:I}", "nonce", nonce_hex, "server", srv->cfg->name,
                          "version", RDV_PROTOCOL_VERSION, "serverTime",
                          (json_int_t)rdv_now_ms());
    if (!b || srv_conn_send_json(srv, c, RDV_MSG_CHALLENGE, b) != 0) {
        srv_error(srv->log, "cannot build challenge (out of memory)");
        return -1;
    }
    return 0;
}

void srv_auth_fail(srv_server *srv, srv_conn *c, rdv_ec code, const char *message,
                   const char *field)
{
    char ip[64] = "?";
    uint8_t key[16];
    uint16_t port = 0;
    (void)srv_peer_address(c->wsi, key, ip, sizeof ip, &port);
    srv->m.auth_failures++;
    srv_info(srv->log, "auth failed from %s:%u: %s (%s)", ip, port, rdv_ec_name(code), message);
    if (code != RDV_EC_AUTH_FAILED && !c->close_code) {
        /* keep the field detail: send the precise error, then close */
        (void)srv_conn_send_error(srv, c, code, message, NULL, "hello", field);
        srv_conn_close(srv, c, RDV_EC_NONE, NULL, LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return;
    }
    srv_conn_close(srv, c, code, message, LWS_CLOSE_STATUS_POLICY_VIOLATION);
}

/* Queues `welcome` for the freshly authenticated c. */
static int send_welcome(srv_server *srv, srv_conn *c, const char *hex, const char *ip)
{
    const srv_config *cfg = srv->cfg;
    json_t *limits = json_pack(
        "{s:I, s:i, s:i, s:I, s:i, s:i, s:I, s:I, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I}",
        "maxMessageBytes", (json_int_t)cfg->max_message_bytes, "messagesPerSecond", cfg->rate,
        "messageBurst", cfg->burst, "offlineTtlMs", (json_int_t)cfg->offline_ttl_ms,
        "offlineQueueMax", cfg->offline_queue_max, "maxWatches", cfg->max_watches,
        "pingIntervalMs", (json_int_t)cfg->ping_interval_ms, "idleTimeoutMs",
        (json_int_t)cfg->idle_timeout_ms, "freshPastMs", RDV_FRESH_PAST_MS, "freshFutureMs",
        RDV_FRESH_FUTURE_MS, "maxRelaySessions", cfg->relay_max_sessions, "maxRelayPayload",
        (json_int_t)cfg->relay_max_payload, "relayBytesPerSecond", (json_int_t)cfg->relay_rate,
        "relayGlobalBytesPerSecond", (json_int_t)cfg->relay_global_rate, "relaySessionQuota",
        (json_int_t)cfg->relay_quota, "relayIdleTimeoutMs",
        (json_int_t)cfg->relay_idle_timeout_ms);
    if (!limits)
        return -1;
    /* the presence scanning limit (presence.c): 0 = none */
    int pburst = cfg->presence_burst > cfg->max_watches ? cfg->presence_burst : cfg->max_watches;
    if (json_object_set_new(limits, "presenceIDsPerMinute", json_integer(cfg->presence_rate)) ||
        json_object_set_new(limits, "presenceIDBurst", json_integer(pburst)) ||
        (cfg->relay_channel && cfg->relay_max_sessions > 0 &&
         json_object_set_new(limits, "relayChannel", json_integer(1)))) {
        json_decref(limits);
        return -1;
    }
    json_t *b = json_pack("{s:s, s:s, s:i, s:I, s:o}", "nodeID", hex, "observedIP", ip,
                          "observedPort", (int)c->observed_port, "serverTime",
                          (json_int_t)rdv_now_ms(), "limits", limits);
    if (!b)
        return -1;
    return srv_conn_send_json(srv, c, RDV_MSG_WELCOME, b);
}

/* The checks of section 6 step 3. Returns RDV_EC_NONE when hello is good,
 * else the code with *why and *field set. Pure apart from reading c. */
static rdv_ec check_hello(srv_server *srv, const srv_conn *c, const json_t *body,
                          const char **why, const char **field)
{
    char nonce_hex[RDV_NONCE_HEXLEN + 1];
    const char *nonce = rdv_msg_get_str(body, "nonce");
    const char *server = rdv_msg_get_str(body, "server");
    int64_t ts = 0;
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, c->nonce, sizeof c->nonce);
    *field = NULL;
    if (!nonce || strcmp(nonce, nonce_hex) != 0) {
        *why = "hello.nonce is not the nonce of this connection's challenge; sign the "
               "challenge you received on this connection";
        *field = "nonce";
        return RDV_EC_AUTH_FAILED;
    }
    if (!server || strcmp(server, srv->cfg->name) != 0) {
        *why = "hello.server is not this server's name; copy challenge.server";
        *field = "server";
        return RDV_EC_AUTH_FAILED;
    }
    if (!rdv_msg_get_int(body, "timestamp", &ts) ||
        !rdv_ts_fresh(ts, rdv_now_ms(), RDV_INGRESS_SKEW_MS, RDV_INGRESS_SKEW_MS)) {
        *why = "hello.timestamp is more than 30 s from the server clock; sync your clock "
               "with challenge.serverTime";
        *field = "timestamp";
        return RDV_EC_STALE_TIMESTAMP;
    }
    return RDV_EC_NONE;
}

#define BAD_HELLO_SIG                                                                   \
    "hello signature does not verify with nodeID; sign with the key of that node ID"

/* Hands hello's signature check to a verify worker. True when queued
 * (srv_auth_hello_verified() follows); false when it must run inline:
 * no workers, or a nodeID / signature that is not well-formed (the inline
 * path names the fault). */
static bool defer_hello(srv_server *srv, srv_conn *c, json_t *body)
{
    uint8_t pk[RDV_NODE_ID_BYTES], sig[RDV_SIG_BYTES];
    uint8_t *input = NULL;
    size_t len = 0;
    if (srv->vpool.nthreads == 0 || rdv_sig_key_from(body, "nodeID", pk) != 0 ||
        rdv_sig_prepare(RDV_MSG_HELLO, body, sig, &input, &len) != 0)
        return false;
    bool queued = srv_vpool_defer_hello(srv, c, input, len, sig, pk, body);
    free(input);
    return queued;
}

/* Closes c refused by admission: `error` code (not_admitted, revoked or
 * internal) with the reason, close 1008. */
static void admission_refuse(srv_server *srv, srv_conn *c, rdv_ec code, const char *hex,
                             const char *why)
{
    srv->m.auth_failures++;
    srv_info(srv->log, "node %s refused: %s (%s)", hex, rdv_ec_name(code), why);
    srv_conn_close(srv, c, code, why, LWS_CLOSE_STATUS_POLICY_VIOLATION);
}

/* The rest of a relay channel's hello (relay_channel.h): bound to the
 * node's main connection here, or refused with not_authenticated. No
 * presence, no offline delivery, no peerOnline. Returns 0. */
static int channel_complete(srv_server *srv, srv_conn *c, const char *hex)
{
    const char *why = NULL;
    rdv_ec ec = srv_channel_attach(srv, c, &why);
    if (ec != RDV_EC_NONE) {
        srv->m.auth_failures++;
        srv_info(srv->log, "relay channel of node %s refused: %s", hex, rdv_ec_name(ec));
        srv_conn_close(srv, c, ec, why, LWS_CLOSE_STATUS_POLICY_VIOLATION);
        return 0;
    }
    char ip[64] = "0.0.0.0";
    uint8_t key[16];
    uint16_t port = c->observed_port;
    if (srv_peer_address(c->wsi, key, ip, sizeof ip, &port) == 0)
        c->observed_port = port;
    if (send_welcome(srv, c, hex, ip) != 0) {
        srv_conn_close(srv, c, RDV_EC_INTERNAL, "cannot build welcome",
                       LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
        return 0;
    }
    srv_info(srv->log, "node %s opened a relay channel from %s:%u", hex, ip, c->observed_port);
    return 0;
}

/* The rest of a hello whose checks and signature passed: nodeID,
 * admission, then c is AUTHED, welcomed and present. Returns 0. */
static int hello_complete(srv_server *srv, srv_conn *c, const json_t *body)
{
    rdv_ec ec;
    const char *hex = rdv_msg_get_str(body, "nodeID");
    if (!hex || rdv_node_id_to_pk(hex, c->node_id) != 0) {
        srv_auth_fail(srv, c, RDV_EC_INVALID_FIELD, "nodeID is not a node ID", "nodeID");
        return 0;
    }
    /* admission (PROTOCOL.md 6.1): the node has proven its key */
    char adm_why[400];
    ec = srv_admission_check(srv, c, body, hex, adm_why, sizeof adm_why);
    if (ec != RDV_EC_NONE) {
        admission_refuse(srv, c, ec, hex, adm_why);
        return 0;
    }
    if (c->channel)
        return channel_complete(srv, c, hex);
    int nat = rdv_wire_nat_parse(rdv_msg_get_str(body, "natType"));
    c->nat_type = (uint8_t)(nat < 0 ? RDV_WIRE_NAT_UNKNOWN : nat);

    /* complete: from here on the node is authenticated */
    srv_auth_forget(srv, c);
    c->state = SRV_CONN_AUTHED;
    srv_conn *old = srv_presence_attach(srv, c);
    if (old) {
        srv_info(srv->log, "node %s reconnected; closing its older connection", hex);
        srv_conn_close(srv, old,
                       RDV_EC_REPLACED, "this node authenticated on a newer connection; "
                                        "this one is closed",
                       4001);
    }
    char ip[64] = "0.0.0.0";
    uint8_t key[16];
    uint16_t port = c->observed_port;
    if (srv_peer_address(c->wsi, key, ip, sizeof ip, &port) == 0)
        c->observed_port = port;
    if (send_welcome(srv, c, hex, ip) != 0) {
        srv_conn_close(srv, c, RDV_EC_INTERNAL, "cannot build welcome",
                       LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
        return 0;
    }
    if (c->cert) {
        char groups[RDV_FLEET_MAX_GROUPS * (RDV_FLEET_GROUP_MAX + 1) + 1] = "";
        for (unsigned i = 0; i < c->cert->n_groups; i++) {
            if (i)
                strcat(groups, ",");
            strcat(groups, c->cert->groups[i]); /* bounded: 16 x 33 */
        }
        srv_info(srv->log, "node %s authenticated from %s:%u (%s), certificate %s, groups [%s]",
                 hex, ip, c->observed_port, rdv_wire_nat_name(c->nat_type), c->cert->serial,
                 groups);
    } else
        srv_info(srv->log, "node %s authenticated from %s:%u (%s)", hex, ip, c->observed_port,
                 rdv_wire_nat_name(c->nat_type));
    srv_presence_joined(srv, c, hex, ip, !old);
    return 0;
}

int srv_auth_hello(srv_server *srv, srv_conn *c, const rdv_msg *msg)
{
    const char *why = NULL, *field = NULL;
    if (c->state != SRV_CONN_PENDING) {
        (void)srv_conn_send_error(srv, c, RDV_EC_UNSUPPORTED_TYPE,
                                  "already authenticated: hello is accepted once, before "
                                  "welcome",
                                  NULL, "hello", NULL);
        return 0;
    }
    rdv_ec ec = check_hello(srv, c, msg->body, &why, &field);
    if (ec != RDV_EC_NONE) {
        srv_auth_fail(srv, c, ec, why, field);
        return 0;
    }
    if (defer_hello(srv, c, msg->body))
        return 0; /* srv_auth_hello_verified() completes it */
    if (rdv_sig_verify_from(RDV_MSG_HELLO, msg->body, "nodeID") != 0) {
        srv_auth_fail(srv, c, RDV_EC_AUTH_FAILED, BAD_HELLO_SIG, "signature");
        return 0;
    }
    return hello_complete(srv, c, msg->body);
}

int srv_auth_hello_verified(srv_server *srv, srv_conn *c, const json_t *body, bool valid)
{
    if (c->state != SRV_CONN_PENDING || c->close_code)
        return 0; /* timed out or closed meanwhile */
    if (!valid) {
        srv_auth_fail(srv, c, RDV_EC_AUTH_FAILED, BAD_HELLO_SIG, "signature");
        return 0;
    }
    return hello_complete(srv, c, body);
}

void srv_auth_expire(srv_server *srv)
{
    int64_t now = srv_mono_ms();
    while (srv->pending_head &&
           now - srv->pending_head->connected_ms >= srv->cfg->auth_timeout_ms) {
        srv_conn *c = srv->pending_head;
        char msg[160];
        snprintf(msg, sizeof msg,
                 "no valid hello within %lld ms of connecting; answer the challenge sooner",
                 (long long)srv->cfg->auth_timeout_ms);
        srv->m.auth_failures++;
        srv_debug(srv->log, "auth timeout on connection %p", (void *)c);
        srv_auth_forget(srv, c); /* unlink first: the loop must advance */
        srv_conn_close(srv, c, RDV_EC_AUTH_TIMEOUT, msg, LWS_CLOSE_STATUS_POLICY_VIOLATION);
    }
    srv_server_arm_auth_timer(srv);
}
