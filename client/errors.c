/* errors.c - rdv_strerror: names for the library's RDV_ERR_* codes. */
#include "rendezvous/rendezvous.h"

const char *rdv_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case RDV_ERR_INVALID: return "invalid argument";
    case RDV_ERR_NOMEM: return "out of memory";
    case RDV_ERR_IO: return "input/output error";
    case RDV_ERR_PERM: return "key file is readable or writable by others (chmod 600 it)";
    case RDV_ERR_FORMAT: return "malformed content";
    case RDV_ERR_CRYPTO: return "cryptography library failed to initialise";
    case RDV_ERR_EXISTS: return "file exists (refusing to overwrite)";
    default: return "unknown error";
    }
}
