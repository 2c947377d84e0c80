/* cert.c - the node's fleet certificate file (rdv_client_config.cert_file,
 * PROTOCOL.md 6.1): read once by rdv_client_create() and sent in every
 * hello. Only its shape and node ID are checked here; the server checks
 * the signature against its fleet keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cert.h"
#include "client/client.h"
#include "schema/fleet_cert.h"

int rdv__cert_load(const char *path, const char *node_id, json_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? RDV_ERR_NOT_FOUND : RDV_ERR_IO;
    char buf[RDV_FLEET_CERT_MAX_BYTES + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return RDV_ERR_IO;
    json_t *cert = rdv_fleet_cert_load_text(buf, n, NULL, 0);
    rdv_fleet_cert fc;
    if (!cert || rdv_fleet_cert_parse(cert, &fc, NULL, 0) != RDV_FLEET_OK ||
        strcmp(fc.node_id, node_id) != 0) {
        json_decref(cert);
        return RDV_ERR_FORMAT; /* no certificate, or another node's */
    }
    *out = cert;
    return 0;
}
