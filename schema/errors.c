/* errors.c - names and operator hints of the protocol error codes.
 *
 * The wire names are the `code` strings of PROTOCOL.md section 10, in the
 * order of enum rdv_ec (errors.h). Hints are one line each and say what to
 * do about the error, not only what it is. Everything here is a const table:
 * no state, no allocation.
 */
#include "schema/errors.h"

#include <string.h>

struct ec_entry {
    const char *name;
    const char *hint;
};

/* Indexed by rdv_ec; RDV_EC_NONE is not a wire code. */
static const struct ec_entry ec_table[RDV_EC__COUNT] = {
    [RDV_EC_NONE] = {"none", "no error"},
    [RDV_EC_BAD_JSON] = {"bad_json",
        "bad JSON: send one UTF-8 JSON object per text frame, without duplicate "
        "keys, U+0000 or nesting deeper than 16"},
    [RDV_EC_BAD_MESSAGE] = {"bad_message",
        "bad message: the envelope must be an object with exactly one member, "
        "the type, whose value is an object"},
    [RDV_EC_UNSUPPORTED_TYPE] = {"unsupported_type",
        "unsupported type: this server does not accept that message type from "
        "a node; check the protocol version and the direction of the type"},
    [RDV_EC_MISSING_FIELD] = {"missing_field",
        "missing field: add the required field named in `field` and resend"},
    [RDV_EC_INVALID_FIELD] = {"invalid_field",
        "invalid field: fix the type, format or range of the field named in "
        "`field` and resend"},
    [RDV_EC_TOO_LARGE] = {"too_large",
        "message too large: keep messages under limits.maxMessageBytes; "
        "the connection is closed, reconnect"},
    [RDV_EC_BAD_SIGNATURE] = {"bad_signature",
        "bad signature: sign the body (without `signature`) with the key of "
        "the sender node ID, after setting every other field"},
    [RDV_EC_STALE_TIMESTAMP] = {"stale_timestamp",
        "stale timestamp: sync the node clock (NTP or welcome.serverTime) and "
        "sign with a fresh timestamp"},
    [RDV_EC_NOT_AUTHENTICATED] = {"not_authenticated",
        "not authenticated: answer the challenge with a signed hello and wait "
        "for welcome before sending this"},
    [RDV_EC_AUTH_FAILED] = {"auth_failed",
        "authentication failed: sign hello with the node's key and copy nonce "
        "and server from this connection's challenge; reconnect"},
    [RDV_EC_AUTH_TIMEOUT] = {"auth_timeout",
        "authentication timeout: send hello promptly after the challenge; "
        "reconnect"},
    [RDV_EC_SENDER_MISMATCH] = {"sender_mismatch",
        "sender mismatch: fromNodeID must be the node ID this connection "
        "authenticated as"},
    [RDV_EC_PEER_OFFLINE] = {"peer_offline",
        "peer offline: the message waited for the offline TTL and was dropped "
        "(or cannot wait); retry when the peer is online"},
    [RDV_EC_QUEUE_FULL] = {"queue_full",
        "queue full: the offline peer has too many messages waiting; retry "
        "when the peer is online"},
    [RDV_EC_RATE_LIMITED] = {"rate_limited",
        "rate limited: the message was dropped; slow down to "
        "limits.messagesPerSecond and resend"},
    [RDV_EC_SLOW_CONSUMER] = {"slow_consumer",
        "slow consumer: the node did not read its socket fast enough; read "
        "promptly and reconnect"},
    [RDV_EC_REPLACED] = {"replaced",
        "replaced: the same node ID connected again elsewhere; run one "
        "instance per node key"},
    [RDV_EC_LIMIT_EXCEEDED] = {"limit_exceeded",
        "limit exceeded: stay within the per-node limits announced in "
        "welcome.limits (watches, relay sessions, quota)"},
    [RDV_EC_NO_CONSENT] = {"no_consent",
        "no consent: wait for the peer's relayReady before sending relay data"},
    [RDV_EC_UNKNOWN_SESSION] = {"unknown_session",
        "unknown session: open the relay session with relayOpen first (it may "
        "have been closed)"},
    [RDV_EC_NOT_IN_SESSION] = {"not_in_session",
        "not in session: this relay session belongs to other nodes; use your "
        "own session ID"},
    [RDV_EC_SHUTTING_DOWN] = {"shutting_down",
        "server shutting down: reconnect after a short delay"},
    [RDV_EC_NOT_ADMITTED] = {"not_admitted",
        "not admitted: this server admits only its fleet; ask its operator to "
        "add the node ID to the allowlist or to sign a fleet certificate for "
        "it (rdv fleet sign NODE_ID), and connect with --cert"},
    [RDV_EC_REVOKED] = {"revoked",
        "revoked: the operator revoked this node ID or its certificate; ask the "
        "operator, do not reconnect with the same credentials"},
    [RDV_EC_FORBIDDEN] = {"forbidden",
        "forbidden: the operator's policy does not let this node's groups do "
        "this (relay or signal that peer); ask the operator"},
    [RDV_EC_INTERNAL] = {"internal",
        "internal server error: retry later; report it if it persists"},
};

/* Wire name of `code`; "internal" when out of range. */
const char *rdv_ec_name(rdv_ec code)
{
    if ((int)code < 0 || code >= RDV_EC__COUNT)
        return ec_table[RDV_EC_INTERNAL].name;
    return ec_table[code].name;
}

/* Code of the wire name name[0..len); RDV_EC_NONE when unknown. */
rdv_ec rdv_ec_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return RDV_EC_NONE;
    for (int i = RDV_EC_NONE + 1; i < RDV_EC__COUNT; i++) {
        const char *n = ec_table[i].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return (rdv_ec)i;
    }
    return RDV_EC_NONE;
}

/* One-line actionable hint for `code`; the internal hint when out of range. */
const char *rdv_ec_hint(rdv_ec code)
{
    if ((int)code < 0 || code >= RDV_EC__COUNT)
        return ec_table[RDV_EC_INTERNAL].hint;
    return ec_table[code].hint;
}
