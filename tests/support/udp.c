/* udp.c - see udp.h. */
#include "udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int rdv_ts_udp_socket_at(const char *ip, uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    socklen_t l = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    struct timeval tv = {.tv_sec = RDV_TS_UDP_RCV_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

ssize_t rdv_ts_udp_send(int fd, uint16_t port, const void *buf, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a));
}

ssize_t rdv_ts_udp_recv(int fd, void *buf, size_t cap, uint16_t *from_port)
{
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&a, &l);
    if (n >= 0 && from_port)
        *from_port = ntohs(a.sin_port);
    return n;
}

/* Sends msg from `from_fd` to port `to`, receives it on `at_fd`: it must
 * come intact from port `want_src` (0: any). Returns NULL or what failed;
 * *src gets the sender's port. */
static const char *hop(int from_fd, uint16_t to, int at_fd, uint16_t want_src, const void *msg,
                       size_t len, uint16_t *src)
{
    static char buf[2048];
    if (rdv_ts_udp_send(from_fd, to, msg, len) != (ssize_t)len)
        return "sendto to the proxy failed";
    ssize_t n = rdv_ts_udp_recv(at_fd, buf, sizeof(buf), src);
    if (n != (ssize_t)len)
        return "a datagram did not arrive (or arrived with another length)";
    if (memcmp(buf, msg, len) != 0)
        return "a datagram arrived changed";
    if (want_src && *src != want_src)
        return "a datagram came from another port than the proxy's";
    return NULL;
}

const char *rdv_ts_proxy_round_trip(int app_a, uint16_t pa, int app_b, uint16_t pb, int rounds)
{
    uint16_t from = 0;
    const char *why;
    for (int i = 0; i < rounds; i++) {
        char msg[64];
        int ml = snprintf(msg, sizeof(msg), "a->b datagram %d", i);
        /* It comes from proxy B; app B answers that sender, and the answer
         * reaches app A from proxy A (the last local sender). */
        if ((why = hop(app_a, pa, app_b, pb, msg, (size_t)ml, &from)))
            return why;
        ml = snprintf(msg, sizeof(msg), "b->a reply %d", i);
        if ((why = hop(app_b, from, app_a, pa, msg, (size_t)ml, &from)))
            return why;
    }
    char big[1400];
    for (size_t k = 0; k < sizeof(big); k++)
        big[k] = (char)(k * 13);
    if ((why = hop(app_a, pa, app_b, 0, big, sizeof(big), &from)) ||
        (why = hop(app_b, pb, app_a, 0, big, sizeof(big), &from)))
        return why;
    return NULL;
}
