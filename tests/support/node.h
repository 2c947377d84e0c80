/* node.h - a test node: Ed25519 identity, authentication, signed message
 * builders (with forgeries), and expectations on received messages.
 *
 * Identities are derived from a label (seed = BLAKE2b-256(label)), so a
 * test names its nodes "alice", "bob"... Builders produce the exact text a
 * node sends (rdv_msg_dump of a body signed with rdv_sig_sign); forge
 * options make impersonations, bad signatures and stale timestamps.
 *
 * Expectation helpers print what arrived instead (and the logs of running
 * servers) when the expectation fails, and return NULL / -1; tests assert.
 */
#ifndef RDV_TESTS_SUPPORT_NODE_H
#define RDV_TESTS_SUPPORT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "schema/wire_limits.h"
#include "schema/message.h"
#include "ws_client.h"

typedef struct rdv_tn {
    uint8_t pk[RDV_NODE_ID_BYTES];
    uint8_t sk[RDV_SECRET_KEY_BYTES];
    char id[RDV_NODE_ID_HEXLEN + 1];
    char label[32];
} rdv_tn;

/* Forgeries and variations for signed builders. Zero = an honest message. */
typedef struct rdv_tn_forge {
    const char *from;       /* fromNodeID / nodeID to claim (signed with our key) */
    int64_t ts_offset_ms;   /* added to now for `timestamp` */
    bool bad_signature;     /* flip one bit of the signature after signing */
    bool no_signature;      /* leave `signature` out */
} rdv_tn_forge;

/* Deterministic identity from `label`. */
void rdv_tn_init(rdv_tn *n, const char *label);

/* Reads `challenge` from c and returns its body (new reference) or NULL. */
json_t *rdv_tn_read_challenge(rdv_ws *c, int timeout_ms);

/* Builds the text of a signed hello answering `challenge_body`. `nonce` /
 * `server` override the challenge's when not NULL; `extra` (borrowed, may
 * be NULL) members are merged into the body before signing. malloc'd. */
char *rdv_tn_hello(const rdv_tn *n, const json_t *challenge_body, const char *nonce,
                   const char *server, const json_t *extra, const rdv_tn_forge *f,
                   size_t *len);

/* Full handshake on c: challenge, hello (natType "portRestricted",
 * software "rdv-tests/1"), welcome. Returns the welcome body (borrowed,
 * valid until the next recv on c) or NULL. */
json_t *rdv_tn_authenticate(rdv_ws *c, const rdv_tn *n);

/* rdv_ws_connect(port) + rdv_tn_authenticate; NULL on failure. */
rdv_ws *rdv_tn_connect(int port, const rdv_tn *n);

/* Signs `body` (stolen) of `type` as node n: sets fromNodeID (f->from or
 * n->id) unless present, timestamp (now + offset) unless present, then the
 * signature; wraps and dumps. Returns malloc'd text (length *len). */
char *rdv_tn_sign_body(const rdv_tn *n, rdv_msg_type type, json_t *body,
                       const rdv_tn_forge *f, size_t *len);

/* Signed offer / answer / iceCandidate from n to `to` in `session` (NULL:
 * a new v4 UUID, written to session_out when not NULL). */
char *rdv_tn_offer(const rdv_tn *n, const char *to, const char *session,
                   const rdv_tn_forge *f, size_t *len);
char *rdv_tn_answer(const rdv_tn *n, const char *to, const char *session,
                    const rdv_tn_forge *f, size_t *len);
char *rdv_tn_ice(const rdv_tn *n, const char *to, const char *session,
                 const rdv_tn_forge *f, size_t *len);

/* A default connectionInfo object (new reference). */
json_t *rdv_tn_connection_info(void);

/* Text of a lookup / watch / unwatch of `n` IDs (requestID may be NULL).
 * malloc'd. */
char *rdv_tn_id_request(const char *type, const char *const *ids, size_t n,
                        const char *request_id);

/* Next message must be of `type`: returns its body (borrowed, valid until
 * the next recv on c) or NULL (prints what came instead). */
json_t *rdv_expect(rdv_ws *c, const char *type, int timeout_ms);

/* Next message must be `error` with `code`: returns its body (borrowed) or
 * NULL. */
json_t *rdv_expect_error(rdv_ws *c, const char *code, int timeout_ms);

/* Next message must be exactly these bytes. Returns 0 or -1. */
int rdv_expect_bytes(rdv_ws *c, const char *bytes, size_t len, int timeout_ms);

/* Sends a lookup of `id` and expects the presence answer; returns the
 * single peer entry (borrowed) or NULL. Proves the connection is alive and
 * that nothing else was queued before the answer. */
json_t *rdv_lookup_one(rdv_ws *c, const char *id);

/* Integer member helper: value of body[key] or `dflt`. */
long long rdv_json_int(const json_t *obj, const char *key, long long dflt);
/* String member helper: body[key] or "" (never NULL). */
const char *rdv_json_str(const json_t *obj, const char *key);

#endif
