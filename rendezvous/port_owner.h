/* port_owner.h - which process holds a local TCP or UDP port, for error
 * messages ("port 8080 is in use by nginx (pid 812)").
 *
 * Reads /proc/net/{tcp,tcp6,udp,udp6} for the socket's inode and then
 * /proc/PID/fd of every process this user may read. Best effort: a socket
 * of another user's process is found only when running as root.
 */
#ifndef SRV_PORT_OWNER_H
#define SRV_PORT_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes "NAME (pid N)" of the process holding local port `port` (TCP in
 * LISTEN state when udp is false, any bound UDP socket when true) into
 * out[outlen]. Returns true when found; false leaves out as "". */
bool srv_port_owner(bool udp, uint16_t port, char *out, size_t outlen);

#endif
