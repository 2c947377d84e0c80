/* cert.h - the node's fleet certificate file (cert.c; internal). */
#ifndef RDV_CLIENT_CERT_H
#define RDV_CLIENT_CERT_H

#include <jansson.h>

/* Reads the fleet certificate file at path for node_id: 0 and a new
 * object in *out, or RDV_ERR_NOT_FOUND / RDV_ERR_IO / RDV_ERR_FORMAT. */
int rdv__cert_load(const char *path, const char *node_id, json_t **out);

#endif
