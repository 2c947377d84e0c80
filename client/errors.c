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
    case RDV_ERR_NOT_CONNECTED: return "not connected to the rendezvous server (message not sent)";
    case RDV_ERR_STATE: return "operation not valid in the client's current state";
    case RDV_ERR_BUSY: return "called re-entrantly (from a callback or two threads)";
    case RDV_ERR_TIMEOUT: return "timed out waiting for the rendezvous server";
    case RDV_ERR_CONNECT: return "could not connect to the rendezvous server (or the connection dropped)";
    case RDV_ERR_AUTH: return "authentication with the rendezvous server failed";
    case RDV_ERR_REPLACED: return "another connection authenticated with this identity (is the key used twice?)";
    case RDV_ERR_BAD_SIGNATURE: return "received message has a bad signature (dropped)";
    case RDV_ERR_STALE: return "received message timestamp outside the freshness window (dropped; check clocks)";
    case RDV_ERR_DUPLICATE: return "received a replayed copy of a message (dropped)";
    case RDV_ERR_MISROUTED: return "received message not addressed to this node (dropped)";
    case RDV_ERR_PROTOCOL: return "the server sent a malformed or unexpected message";
    case RDV_ERR_SERVER: return "the server reported an error";
    case RDV_ERR_PEER_OFFLINE: return "peer offline (message expired or could not be queued)";
    case RDV_ERR_PEER_QUEUE_FULL: return "peer's offline queue on the server is full";
    case RDV_ERR_RATE_LIMITED: return "rate limited by the server (message dropped)";
    case RDV_ERR_LIMIT: return "a server limit was exceeded";
    case RDV_ERR_TOO_LARGE: return "message larger than the server allows";
    case RDV_ERR_BACKLOG: return "send queue full (the connection is not draining)";
    case RDV_ERR_NOT_SUPPORTED: return "not supported by this version";
    case RDV_ERR_DECRYPT: return "relay data failed end-to-end authentication (tampered or wrong key; dropped)";
    case RDV_ERR_NO_SESSION: return "no such open relay session";
    case RDV_ERR_NOT_FOUND: return "not found (no such file, or its directory does not exist)";
    case RDV_ERR_NOT_ADMITTED: return "not admitted: the server admits only its fleet; ask its operator to allowlist this node ID or sign a fleet certificate for it (rdv fleet sign), and connect with --cert";
    case RDV_ERR_REVOKED: return "revoked: the server's operator revoked this node or its certificate";
    case RDV_ERR_FORBIDDEN: return "forbidden by the server's policy for this node's groups";
    case RDV_ERR_BAD_URL: return "bad server URL: it must start with ws:// or wss:// (ws://HOST[:PORT][/PATH], e.g. ws://127.0.0.1:8080/v1)";
    case RDV_ERR_TLS_VERIFY: return "the server's TLS certificate was refused (untrusted CA, wrong host name or expired)";
    default: return "unknown error";
    }
}
