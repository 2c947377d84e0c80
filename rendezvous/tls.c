/* tls.c - TLS 1.2+ on the wss:// listener and the certificate reload
 * (see tls.h). */
#include "rendezvous/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rendezvous/log.h"
#include "rendezvous/server.h"

int srv_tls_on_vhost_ctx(srv_server *srv, void *ssl_ctx)
{
    SSL_CTX *ctx = ssl_ctx;
    if (!srv || !ctx)
        return 0;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        srv_error(srv->log, "tls: cannot refuse TLS versions older than 1.2");
        return -1;
    }
    srv->tls_ctx = ctx;
    return 0;
}

/* The reason of the last OpenSSL error (empties its queue), or `dflt`. */
static const char *ssl_reason(char *buf, size_t len, const char *dflt)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%.120s", r ? r : dflt);
    ERR_clear_error();
    return buf;
}

/* "Jan  2 03:04:05 2027 UTC"-like text of t into buf (fixed size). */
static void asn1_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "?");
}

/* Loads and checks cert + key into a new SSL_CTX; NULL with err set. */
static SSL_CTX *load_checked(const srv_config *cfg, char *err, size_t errlen)
{
    char why[160];
    SSL_CTX *tmp = SSL_CTX_new(TLS_server_method());
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(tmp, cfg->tls_cert) != 1) {
        snprintf(err, errlen, "--tls-cert %.200s: %s (kept the previous certificate)",
                 cfg->tls_cert, ssl_reason(why, sizeof why, "not a PEM certificate"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(tmp, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "--tls-key %.200s: %s (kept the previous certificate)",
                 cfg->tls_key,
                 ssl_reason(why, sizeof why, "not a PEM private key, or not the key of the "
                                             "certificate"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(tmp) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "--tls-key %.200s is not the key of --tls-cert %.200s (kept the "
                              "previous certificate)",
                 cfg->tls_key, cfg->tls_cert);
        goto fail;
    }
    X509 *x = SSL_CTX_get0_certificate(tmp);
    if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        char when[40];
        asn1_time_text(X509_get0_notAfter(x), when, sizeof when);
        snprintf(err, errlen, "--tls-cert %.200s expired at %s (kept the previous certificate)",
                 cfg->tls_cert, when);
        goto fail;
    }
    return tmp;
fail:
    SSL_CTX_free(tmp);
    return NULL;
}

int srv_tls_reload(void *user, char *err, size_t errlen)
{
    srv_server *srv = user;
    if (!srv || !srv->tls)
        return 0;
    if (!srv->tls_ctx) {
        snprintf(err, errlen, "the TLS listener's context is unknown; restart to change the "
                              "certificate");
        return -1;
    }
    SSL_CTX *tmp = load_checked(srv->cfg, err, errlen);
    if (!tmp)
        return -1;
    X509 *x = SSL_CTX_get0_certificate(tmp);
    EVP_PKEY *key = SSL_CTX_get0_privatekey(tmp);
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(tmp, &chain);
    /* one call: the certificate, its chain and key replace the old ones
     * together, or nothing changes */
    if (SSL_CTX_use_cert_and_key(srv->tls_ctx, x, key, chain, 1) != 1) {
        char why[160];
        snprintf(err, errlen, "cannot install the new certificate: %s (kept the previous one)",
                 ssl_reason(why, sizeof why, "OpenSSL refused it"));
        SSL_CTX_free(tmp);
        return -1;
    }
    char subject[256] = "?", when[40];
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    asn1_time_text(X509_get0_notAfter(x), when, sizeof when);
    srv_notice(srv->log, "tls: new handshakes use %.200s (subject %.200s, expires %s); "
                         "connected nodes keep theirs",
               srv->cfg->tls_cert, subject, when);
    SSL_CTX_free(tmp);
    return 0;
}
