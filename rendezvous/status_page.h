/* status_page.h - the HTML status page for operators (GET /): the
 * figures of /status (nodes, connections, relay, STUN, the cluster, the
 * limits in force), refreshed every few seconds, with a banner that turns
 * red when /healthz does not answer 200. Self-contained (no external
 * scripts, fonts or CDNs) and readable on a phone.
 */
#ifndef SRV_STATUS_PAGE_H
#define SRV_STATUS_PAGE_H

#include <stddef.h>

/* How often the page fetches /status again (milliseconds, as JS text). */
#define STATUS_PAGE_REFRESH_MS "3000"

/* The page (static storage, length in *len). */
const char *srv_status_page(size_t *len);

#endif
