/* message.h - parse, validate and build wire protocol v1 messages.
 *
 * A message is a JSON object with exactly one member: its name is the
 * message type, its value (the "body") is an object (PROTOCOL.md
 * "Envelope"). rdv_msg_parse() is a pure function of (buf, len): bounded
 * size and nesting depth, duplicate keys refused, UTF-8 checked, then the
 * body validated against its type's rules. Unknown fields are kept.
 */
#ifndef RDV_SCHEMA_MESSAGE_H
#define RDV_SCHEMA_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "schema/errors.h"
#include "schema/wire_limits.h"

typedef enum rdv_msg_type {
    RDV_MSG_UNKNOWN = 0,
    RDV_MSG_CHALLENGE,     /* server -> node */
    RDV_MSG_HELLO,         /* node -> server, signed */
    RDV_MSG_WELCOME,       /* server -> node */
    RDV_MSG_OFFER,         /* node -> node, signed */
    RDV_MSG_ANSWER,        /* node -> node, signed */
    RDV_MSG_ICE_CANDIDATE, /* node -> node, signed */
    RDV_MSG_RELAY_OPEN,    /* node -> node, signed */
    RDV_MSG_RELAY_READY,   /* node -> node, signed */
    RDV_MSG_RELAY_DATA,    /* node <-> node through the server */
    RDV_MSG_RELAY_CLOSE,   /* node -> server, server -> node */
    RDV_MSG_LOOKUP,        /* node -> server */
    RDV_MSG_PRESENCE,      /* server -> node */
    RDV_MSG_WATCH,         /* node -> server */
    RDV_MSG_UNWATCH,       /* node -> server */
    RDV_MSG_PEER_ONLINE,   /* server -> node */
    RDV_MSG_PEER_OFFLINE,  /* server -> node */
    RDV_MSG_QUEUED,        /* server -> node */
    RDV_MSG_ERROR,         /* server -> node */
    RDV_MSG_PING,          /* either way */
    RDV_MSG_PONG,          /* either way */
    RDV_MSG__COUNT
} rdv_msg_type;

/* Validation failure detail: the code, the dotted path of the offending
 * field ("connectionInfo.publicPort", empty for the whole message) and a
 * human-readable reason. When the envelope named a v1 type but the body
 * failed validation, `type` is that type and `ref` the body's sessionID or
 * requestID (if a string of at most RDV_MAX_REQUEST_ID bytes), so an error
 * answer can name them; otherwise RDV_MSG_UNKNOWN and "". */
typedef struct rdv_msg_error {
    rdv_ec code;
    char field[64];
    char detail[160];
    rdv_msg_type type;
    char ref[RDV_MAX_REQUEST_ID + 1];
} rdv_msg_error;

/* A parsed message. `root` owns everything; `body` is borrowed from it. */
typedef struct rdv_msg {
    rdv_msg_type type;
    json_t *root;
    json_t *body;
} rdv_msg;

/* Wire name of a type ("offer", "iceCandidate", ...); NULL for UNKNOWN. */
const char *rdv_msg_type_name(rdv_msg_type type);

/* Type for a wire name of `len` bytes; RDV_MSG_UNKNOWN when not in v1. */
rdv_msg_type rdv_msg_type_from_name(const char *name, size_t len);

/* True for the types that carry `timestamp` and `signature` (hello, offer,
 * answer, iceCandidate, relayOpen, relayReady). */
bool rdv_msg_type_is_signed(rdv_msg_type type);

/* True for node-to-node types the server routes by toNodeID (offer,
 * answer, iceCandidate, relayOpen, relayReady). */
bool rdv_msg_type_is_routed(rdv_msg_type type);

/* Parses and validates one message from buf[0..len). Never reads past len,
 * refuses len > max_len (RDV_EC_TOO_LARGE), nesting deeper than
 * RDV_MAX_DEPTH, duplicate keys, invalid UTF-8, U+0000 in strings and a
 * top level that is not an object (RDV_EC_BAD_JSON). On success returns 0
 * and fills *out (free with rdv_msg_free). On failure returns the negative
 * rdv_ec code (-code), fills *err and leaves *out zeroed; for an unknown
 * type err->field holds the type name (truncated). */
int rdv_msg_parse(const uint8_t *buf, size_t len, size_t max_len, rdv_msg *out,
                  rdv_msg_error *err) __attribute__((warn_unused_result));

/* Validates an already-built body of `type` by the same rules as parse.
 * Returns 0 or -code with *err filled. */
int rdv_msg_validate(rdv_msg_type type, const json_t *body, rdv_msg_error *err)
    __attribute__((warn_unused_result));

/* Releases a parsed message; safe on a zeroed or already-freed message. */
void rdv_msg_free(rdv_msg *msg);

/* Body field accessors: the string value of `key`, or NULL when absent or
 * not a string. */
const char *rdv_msg_get_str(const json_t *body, const char *key);

/* The integer value of `key` (a JSON number with an integral value) in
 * *out; returns false when absent, not a number or not integral. */
bool rdv_msg_get_int(const json_t *body, const char *key, int64_t *out);

/* Wraps `body` (reference stolen, even on failure) in an envelope of
 * `type`. Returns a new object or NULL on allocation failure. */
json_t *rdv_msg_wrap(rdv_msg_type type, json_t *body);

/* Serialises an envelope into a malloc'd NUL-terminated string in its
 * RFC 8785 canonical form (compact, members sorted, integral numbers
 * without ".0"); length in *len. Returns NULL on failure. Caller frees.
 * Routed messages are forwarded as their original bytes, never re-dumped. */
char *rdv_msg_dump(const json_t *envelope, size_t *len);

/* Builds the text of an `error` message: code, message (the code's hint
 * when NULL) and optional ref (session or request ID, may be NULL).
 * Returns a malloc'd string (length in *len) or NULL. Caller frees. */
char *rdv_msg_build_error(rdv_ec code, const char *message, const char *ref,
                          size_t *len);

#endif
