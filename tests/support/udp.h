/* udp.h - loopback UDP helpers shared by client tests: a socket bound to
 * an address, sends to 127.0.0.1, receives with the sender's port, and the
 * UDP-proxy round trip (rdv_session_proxy) that relay and direct sessions
 * must both pass. IPv4 only; no cmocka here: functions report failure and
 * the caller asserts.
 */
#ifndef RDV_TESTS_SUPPORT_UDP_H
#define RDV_TESTS_SUPPORT_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Receive timeout of the sockets made here (a lost datagram fails a test
 * after this long instead of hanging it). */
#define RDV_TS_UDP_RCV_TIMEOUT_S 5

/* A UDP socket bound to ip:*port (*port 0: any; the bound port is written
 * back), with the receive timeout above. Returns the fd, or -1 (errno)
 * when it cannot be made or bound. */
int rdv_ts_udp_socket_at(const char *ip, uint16_t *port);

/* Sends buf[0..len) to 127.0.0.1:port. Returns what sendto() returns. */
ssize_t rdv_ts_udp_send(int fd, uint16_t port, const void *buf, size_t len);

/* Receives one datagram (blocking up to the timeout); *from_port (may be
 * NULL) gets the sender's port. Returns what recvfrom() returns. */
ssize_t rdv_ts_udp_recv(int fd, void *buf, size_t cap, uint16_t *from_port);

/* The proxy round trip: app A sends `rounds` datagrams to its proxy (port
 * pa); each must reach app B from B's proxy (port pb) intact, and B's
 * answer to that sender must reach A from pa; then one 1400-byte datagram
 * (WireGuard-sized) each way. Returns NULL, or a static text saying what
 * went wrong first. */
const char *rdv_ts_proxy_round_trip(int app_a, uint16_t pa, int app_b, uint16_t pb,
                                    int rounds);

#endif
