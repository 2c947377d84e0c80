/* proxy.h - the local UDP proxy bound to a session (proxy.c; internal):
 * rdv_session_proxy(), reading its socket, delivering to it, and closing
 * sockets only on the service thread. */
#ifndef RDV_CLIENT_PROXY_H
#define RDV_CLIENT_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/session.h"


/* Reads the proxy sockets (bounded per call) and relays what arrived. (S) */
void rdv__proxy_service(rdv_client *c);
/* Writes a datagram from the peer to the proxy's local destination; the
 * caller copied fd and destination under the lock. (S) */
void rdv__proxy_deliver(rdv_client *c, int fd, const struct sockaddr_storage *dest,
                        socklen_t dest_len, const uint8_t *buf, size_t len);
/* Closes the proxy fds queued by rdv__proxy_detach_locked. (S) */
void rdv__proxy_close_dead(rdv_client *c);

#endif
