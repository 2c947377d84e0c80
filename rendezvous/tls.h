/* tls.h - the wss:// listener's TLS policy and its certificate reload.
 *
 * Policy: TLS 1.2 or newer only. OpenSSL's default security level alone
 * already fails TLS 1.0/1.1 handshakes with an ECDSA key (no SHA-1
 * signatures), but not with an RSA key where a system openssl.cnf lowers
 * the level, and then with "internal error"; the explicit minimum refuses
 * them everywhere with a "protocol version" alert.
 *
 * Reload (a SIGHUP hook, reload.h): --tls-cert and --tls-key are read
 * again into a scratch SSL_CTX, checked (the chain parses, the key
 * matches), and only then put into the listener's SSL_CTX in one call
 * (SSL_CTX_use_cert_and_key). Connections already up keep the certificate
 * their handshake used (OpenSSL copies it into each SSL at accept), so
 * nobody is dropped; new handshakes get the new one. lws 4.1.6 offers
 * lws_tls_cert_updated() for this, but it reports no failure and loads the
 * certificate before the key: a bad key file leaves the listener with the
 * new certificate and no key, and every later handshake fails.
 */
#ifndef SRV_TLS_H
#define SRV_TLS_H

#include <stddef.h>

struct srv_server;

/* LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS of the wss://
 * vhost: applies the policy to its SSL_CTX (`ssl_ctx`) and remembers it
 * for reloads. Returns 0, or -1 (logged) when the policy cannot be set. */
int srv_tls_on_vhost_ctx(struct srv_server *srv, void *ssl_ctx);

/* The "tls" reload hook (srv_reload_fn; user is the srv_server): loads
 * --tls-cert / --tls-key again as described above. Returns 0 (logged at
 * NOTICE with the new certificate's subject and expiry), or -1 with the
 * reason in err, the previous certificate kept. Without TLS: 0, nothing
 * done. */
int srv_tls_reload(void *user, char *err, size_t errlen);

#endif
