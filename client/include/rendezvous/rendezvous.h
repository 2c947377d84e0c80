/* rendezvous.h - librendezvous, the node-side library of rendezvous.
 *
 * A node holds an Ed25519 identity; its node ID is the lowercase hex of the
 * public key. This header is the library's whole public API. Functions
 * return 0 (or a count) on success and a negative RDV_ERR_* code on
 * failure; rdv_strerror() names the code.
 *
 * Thread safety: functions on different objects may be called from
 * different threads; one object is used by one thread at a time.
 */
#ifndef RENDEZVOUS_RENDEZVOUS_H
#define RENDEZVOUS_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RDV_API __attribute__((visibility("default")))
#define RDV_MUST_CHECK __attribute__((warn_unused_result))
#else
#define RDV_API
#define RDV_MUST_CHECK
#endif

#define RDV_VERSION_STRING "0.1.0"

/* Error codes: 0 is success, failures are negative. */
#define RDV_ERR_INVALID (-1)     /* invalid argument */
#define RDV_ERR_NOMEM (-2)       /* allocation failed */
#define RDV_ERR_IO (-3)          /* file or socket error (errno kept) */
#define RDV_ERR_PERM (-4)        /* key file readable by others: refused */
#define RDV_ERR_FORMAT (-5)      /* file or message content malformed */
#define RDV_ERR_CRYPTO (-6)      /* libsodium failed to initialise */
#define RDV_ERR_EXISTS (-7)      /* refusing to overwrite an existing file */

/* Returns a static, human-readable description of an RDV_ERR_* code. */
RDV_API const char *rdv_strerror(int err);

/* Sizes of an identity. */
#define RDV_PUBLIC_KEY_BYTES 32
#define RDV_SECRET_KEY_BYTES 64
#define RDV_NODE_ID_LEN 64       /* hex characters, without the NUL */

/* An Ed25519 identity. Wipe it with rdv_identity_wipe() when done. */
typedef struct rdv_identity {
    uint8_t public_key[RDV_PUBLIC_KEY_BYTES];
    uint8_t secret_key[RDV_SECRET_KEY_BYTES]; /* libsodium form: seed||pk */
} rdv_identity;

/* Generates a new random identity. */
RDV_API int rdv_identity_generate(rdv_identity *id) RDV_MUST_CHECK;

/* Writes the node ID (64 lowercase hex chars and a NUL) of id into out. */
RDV_API void rdv_identity_node_id(const rdv_identity *id,
                                  char out[RDV_NODE_ID_LEN + 1]);

/* Saves id to `path`, created with mode 0600 (never wider). Refuses to
 * overwrite an existing file (RDV_ERR_EXISTS) unless `overwrite` is
 * non-zero. The file holds one line: "rendezvous-ed25519-v1 <seed hex>". */
RDV_API int rdv_identity_save(const rdv_identity *id, const char *path,
                              int overwrite) RDV_MUST_CHECK;

/* Loads an identity from `path`. Refuses (RDV_ERR_PERM) a file that its
 * group or others can read or write, or that is not a regular file. */
RDV_API int rdv_identity_load(rdv_identity *id, const char *path) RDV_MUST_CHECK;

/* Overwrites the secret key material with zeros. */
RDV_API void rdv_identity_wipe(rdv_identity *id);

#ifdef __cplusplus
}
#endif

#endif
