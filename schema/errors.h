/* errors.h - the fixed list of protocol error codes (PROTOCOL.md "Errors").
 *
 * These are the `code` strings of the `error` message. The codec reports
 * validation failures with the same codes, plus the offending field.
 */
#ifndef RDV_SCHEMA_ERRORS_H
#define RDV_SCHEMA_ERRORS_H

#include <stddef.h>

typedef enum rdv_ec {
    RDV_EC_NONE = 0,
    RDV_EC_BAD_JSON,          /* "bad_json": not JSON, not an object, dup key, too deep, bad UTF-8 */
    RDV_EC_BAD_MESSAGE,       /* "bad_message": envelope is not one key whose value is an object */
    RDV_EC_UNSUPPORTED_TYPE,  /* "unsupported_type": unknown or not-acceptable message type */
    RDV_EC_MISSING_FIELD,     /* "missing_field": a required field is absent */
    RDV_EC_INVALID_FIELD,     /* "invalid_field": wrong JSON type, format or range */
    RDV_EC_TOO_LARGE,         /* "too_large": frame over the size limit (connection closed) */
    RDV_EC_BAD_SIGNATURE,     /* "bad_signature": Ed25519 signature does not verify */
    RDV_EC_STALE_TIMESTAMP,   /* "stale_timestamp": timestamp outside the freshness window */
    RDV_EC_NOT_AUTHENTICATED, /* "not_authenticated": message before welcome */
    RDV_EC_AUTH_FAILED,       /* "auth_failed": hello rejected (connection closed) */
    RDV_EC_AUTH_TIMEOUT,      /* "auth_timeout": no valid hello in time (connection closed) */
    RDV_EC_SENDER_MISMATCH,   /* "sender_mismatch": fromNodeID is not the authenticated node */
    RDV_EC_PEER_OFFLINE,      /* "peer_offline": target offline and message expired / not queueable */
    RDV_EC_QUEUE_FULL,        /* "queue_full": the recipient's offline queue is full */
    RDV_EC_RATE_LIMITED,      /* "rate_limited": over the message rate (sustained: closed) */
    RDV_EC_SLOW_CONSUMER,     /* "slow_consumer": send queue overflowed (connection closed) */
    RDV_EC_REPLACED,          /* "replaced": same node authenticated on a newer connection */
    RDV_EC_LIMIT_EXCEEDED,    /* "limit_exceeded": watch cap, relay session cap, quota */
    RDV_EC_NO_CONSENT,        /* "no_consent": relay data before the peer's relayReady */
    RDV_EC_UNKNOWN_SESSION,   /* "unknown_session": no such relay session */
    RDV_EC_NOT_IN_SESSION,    /* "not_in_session": relay session belongs to other nodes */
    RDV_EC_SHUTTING_DOWN,     /* "shutting_down": server is stopping (connection closed) */
    RDV_EC_NOT_ADMITTED,      /* "not_admitted": admission refused the node (connection closed) */
    RDV_EC_REVOKED,           /* "revoked": node ID or certificate revoked (connection closed) */
    RDV_EC_FORBIDDEN,         /* "forbidden": the operator's policy refuses this message */
    RDV_EC_INTERNAL,          /* "internal": server-side failure; retry later */
    RDV_EC__COUNT
} rdv_ec;

/* Returns the wire name of `code` ("bad_json", ...), or "internal" for an
 * out-of-range value. The string is static. */
const char *rdv_ec_name(rdv_ec code);

/* Maps a wire name back to its code; RDV_EC_NONE when unknown. */
rdv_ec rdv_ec_from_name(const char *name, size_t len);

/* Returns a one-line hint an operator can act on for `code` (static). */
const char *rdv_ec_hint(rdv_ec code);

#endif
