/* jcs.h - RFC 8785 JSON Canonicalization Scheme (JCS) for jansson values.
 *
 * The canonical form is what Ed25519 signatures are computed over
 * (see PROTOCOL.md "Signatures"): object members sorted by the UTF-16 code
 * units of their names, no insignificant whitespace, strings with the minimal
 * escapes of RFC 8785 3.2.2.2, numbers serialised as ECMAScript's
 * Number.prototype.toString does for IEEE-754 doubles (RFC 8785 3.2.2.3).
 */
#ifndef RDV_SCHEMA_JCS_H
#define RDV_SCHEMA_JCS_H

#include <stddef.h>
#include <jansson.h>

/* Result codes (0 is success). */
#define RDV_JCS_OK 0
#define RDV_JCS_ENOMEM (-1)    /* allocation failed */
#define RDV_JCS_ENUMBER (-2)   /* NaN or infinity: not representable in JSON */
#define RDV_JCS_EUTF8 (-3)     /* a string or key is not valid UTF-8 */
#define RDV_JCS_ETOOBIG (-4)   /* output would exceed the caller's limit */
#define RDV_JCS_EDEPTH (-5)    /* nesting deeper than RDV_JCS_MAX_DEPTH */

#define RDV_JCS_MAX_DEPTH 64

/* Canonicalises `value` into a newly allocated, NUL-terminated buffer stored
 * in *out (length in *out_len, not counting the NUL). The caller frees *out
 * with free(). At most `max_len` bytes are produced, else RDV_JCS_ETOOBIG.
 * Integers and reals are both treated as IEEE-754 doubles, as RFC 8785 does.
 * On error *out is NULL and nothing is leaked. */
int rdv_jcs_serialize(const json_t *value, size_t max_len, char **out,
                      size_t *out_len) __attribute__((warn_unused_result));

/* Writes the ECMAScript shortest round-trip form of the finite double `v`
 * into buf (at least 32 bytes). Returns the length, or RDV_JCS_ENUMBER for
 * NaN/infinity. -0 is written as "0". */
int rdv_jcs_format_number(double v, char *buf, size_t buflen)
    __attribute__((warn_unused_result));

#endif
