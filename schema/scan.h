/* scan.h - the fast path for routed signaling: a validating scan of an
 * offer, answer or iceCandidate in its RFC 8785 canonical text, without a
 * JSON tree and without allocating.
 *
 * It accepts only the common shape of these messages as librendezvous
 * sends them (rdv_msg_dump: canonical JSON): no whitespace, members in
 * sorted order, printable-ASCII strings without escapes, integers of at
 * most 15 digits, nesting at most SCAN_MAX_DEPTH deep, every field of the
 * type's table (message.c) valid. Anything else is declined (false), and
 * the caller parses with rdv_msg_parse(), which accepts or refuses it with
 * the precise error. So for every input:
 *   - rdv_scan_signal() accepts  =>  rdv_msg_parse() accepts, same type;
 *   - the body minus its signature member is, byte for byte, the JCS of
 *     the parsed body minus signature, so rdv_scan_sig_input() builds the
 *     same signing input as rdv_sig_input() from the received bytes.
 * tests/fuzz/fuzz_message.c checks both on every input it tries.
 */
#ifndef RDV_SCHEMA_SCAN_H
#define RDV_SCHEMA_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/message.h"
#include "schema/wire_limits.h"

/* What the scan found; pointers into the scanned buffer (not
 * NUL-terminated: the lengths are the fixed ones of wire_limits.h). */
typedef struct rdv_scan {
    rdv_msg_type type;   /* RDV_MSG_OFFER, _ANSWER or _ICE_CANDIDATE */
    const char *from;    /* RDV_NODE_ID_HEXLEN */
    const char *to;      /* RDV_NODE_ID_HEXLEN */
    const char *sid;     /* RDV_UUID_STRLEN */
    const char *sig;     /* RDV_SIG_HEXLEN */
    uint8_t from_id[RDV_NODE_ID_BYTES]; /* from, to and sig as bytes */
    uint8_t to_id[RDV_NODE_ID_BYTES];
    uint8_t sig_bin[RDV_SIG_BYTES];
    int64_t timestamp;
    size_t body_off, body_len; /* the body object */
    size_t cut_off, cut_len;   /* the signature member and one comma */
} rdv_scan;

/* Scans buf[0..len). Returns true and fills *out when the message is a
 * canonical, valid offer / answer / iceCandidate; false otherwise (nothing
 * about the message is implied then). Never reads past len. */
bool rdv_scan_signal(const uint8_t *buf, size_t len, rdv_scan *out);

/* Writes the signing input of a scanned message ("rendezvous.v1/" type
 * 0x00 body-minus-signature) into out[0..cap). Returns its length, or 0
 * when cap is too small. */
size_t rdv_scan_sig_input(const uint8_t *buf, const rdv_scan *s, uint8_t *out, size_t cap);

/* Verifies the signature of a scanned message against its fromNodeID.
 * Returns 0 when valid, -RDV_EC_BAD_SIGNATURE when not, -RDV_EC_TOO_LARGE
 * when the signing input does not fit the stack buffer (the caller then
 * verifies through rdv_sig_verify_from). Thread-safe. */
int rdv_scan_verify(const uint8_t *buf, const rdv_scan *s);

#endif
