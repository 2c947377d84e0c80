/* proxy.c - the local UDP proxy of a relay session (rdv_session_proxy):
 * a UDP socket, normally on loopback, whose datagrams go to the peer
 * through the relay (encrypted by relay.c) and to which the peer's
 * datagrams are written, addressed to the last local sender (or to the
 * forward address until one was seen). WireGuard, or any UDP program,
 * then uses the relay without knowing it.
 *
 * The socket belongs to the client's loop: it is registered in the epoll
 * set of rdv_client_fd() and read by the service thread in
 * rdv__proxy_service() (at most RDV__PROXY_BATCH datagrams per socket per
 * call; the level-triggered fd stays readable if more wait). A socket is
 * only ever closed on the service thread (rdv__proxy_close_dead) or in
 * destroy, so the service thread never reads a closed or reused fd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "client/client.h"
#include "client/proxy.h"
#include "schema/ids.h"

#define RDV__PROXY_BATCH 64        /* datagrams read per socket per service */
#define RDV__PROXY_DGRAM_MAX 65536 /* largest UDP datagram */

/* Parses "IPv4:PORT" or "[IPv6]:PORT" into *ss. Returns 0 or -1. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    if (!s)
        return -1;
    char host[64];
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    char *e;
    errno = 0;
    long port = strtol(colon + 1, &e, 10);
    if (errno || e == colon + 1 || *e || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
    } else {
        return -1;
    }
    return 0;
}

int rdv_session_proxy(rdv_client *c, const char *sid, const char *listen_addr,
                    const char *forward_addr, uint16_t *port_out)
{
    struct sockaddr_storage la, fa;
    socklen_t llen = 0, flen = 0;
    if (!c || !sid || !rdv_uuid_valid(sid, strlen(sid)) ||
        parse_addr(listen_addr, &la, &llen) != 0 ||
        (forward_addr && parse_addr(forward_addr, &fa, &flen) != 0))
        return RDV_ERR_INVALID;
    if (forward_addr &&
        ((struct sockaddr *)&fa)->sa_family != ((struct sockaddr *)&la)->sa_family)
        return RDV_ERR_INVALID;
    int fd = socket(((struct sockaddr *)&la)->sa_family,
                    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return RDV_ERR_IO;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (bind(fd, (struct sockaddr *)&la, llen) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return RDV_ERR_IO;
    }
    uint16_t port = ntohs(((struct sockaddr *)&bound)->sa_family == AF_INET
                              ? ((struct sockaddr_in *)&bound)->sin_port
                              : ((struct sockaddr_in6 *)&bound)->sin6_port);
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    rdv__session *r = rdv__session_find_locked(c, sid);
    if (!r || r->st != RDV__SS_OPEN)
        rc = RDV_ERR_NO_SESSION;
    else if (r->proxy_fd >= 0)
        rc = RDV_ERR_STATE;
    else {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            rc = RDV_ERR_IO;
        } else {
            r->proxy_fd = fd;
            if (forward_addr) {
                r->dest = fa;
                r->dest_len = flen;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return rc;
    }
    if (port_out)
        *port_out = port;
    rdv__wake(c);
    return 0;
}

void rdv__defer_close_locked(rdv_client *c, int fd)
{
    if (fd < 0)
        return;
    (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (c->ndead == c->capdead) {
        size_t cap = c->capdead ? c->capdead * 2 : 8;
        int *p = realloc(c->dead_fds, cap * sizeof(*p));
        if (!p) {
            /* Cannot defer: closing now is safe unless the service thread
             * is reading it this instant; losing the fd would be worse. */
            close(fd);
            return;
        }
        c->dead_fds = p;
        c->capdead = cap;
    }
    c->dead_fds[c->ndead++] = fd;
}

void rdv__proxy_detach_locked(rdv_client *c, rdv__session *r)
{
    rdv__defer_close_locked(c, r->proxy_fd);
    r->proxy_fd = -1;
}

void rdv__proxy_close_dead(rdv_client *c)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->ndead; i++)
        close(c->dead_fds[i]);
    c->ndead = 0;
    pthread_mutex_unlock(&c->lock);
}

void rdv__proxy_deliver(rdv_client *c, int fd, const struct sockaddr_storage *dest,
                        socklen_t dest_len, const uint8_t *buf, size_t len)
{
    if (dest_len == 0 ||
        sendto(fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)dest, dest_len) < 0) {
        /* Nobody to deliver to yet, or the local socket is full /
         * unreachable (ECONNREFUSED from an earlier datagram): UDP drops. */
        pthread_mutex_lock(&c->lock);
        c->rstats.dropped++;
        pthread_mutex_unlock(&c->lock);
    }
}

void rdv__proxy_service(rdv_client *c)
{
    int fds[RDV_MAX_SESSIONS];
    char sids[RDV_MAX_SESSIONS][RDV_SESSION_ID_LEN + 1];
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (rdv__session *r = c->sessions; r && n < RDV_MAX_SESSIONS; r = r->next)
        if (r->proxy_fd >= 0) {
            fds[n] = r->proxy_fd;
            memcpy(sids[n], r->sid, sizeof(sids[n]));
            n++;
        }
    pthread_mutex_unlock(&c->lock);
    if (n == 0)
        return;
    uint8_t *buf = malloc(RDV__PROXY_DGRAM_MAX);
    if (!buf)
        return;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < RDV__PROXY_BATCH; k++) {
            struct sockaddr_storage from;
            socklen_t flen = sizeof(from);
            ssize_t got = recvfrom(fds[i], buf, RDV__PROXY_DGRAM_MAX, MSG_DONTWAIT,
                                   (struct sockaddr *)&from, &flen);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                break; /* EAGAIN, or an ICMP error from an earlier sendto */
            }
            size_t max = rdv_client_max_payload(c);
            pthread_mutex_lock(&c->lock);
            rdv__session *r = rdv__session_find_locked(c, sids[i]);
            int rc = RDV_ERR_NO_SESSION;
            if (r && r->proxy_fd == fds[i]) {
                r->dest = from;
                r->dest_len = flen;
                if ((size_t)got > max) {
                    rc = RDV_ERR_TOO_LARGE;
                    c->rstats.dropped++;
                } else {
                    rc = rdv__relay_send_locked(c, r, buf, (size_t)got);
                }
            }
            pthread_mutex_unlock(&c->lock);
            if (rc == RDV_ERR_NO_SESSION)
                break; /* the session ended meanwhile */
            /* Other failures (backlog, too large): the datagram is dropped
             * and counted, as UDP would. */
        }
    }
    free(buf);
    /* service() asks lws for writability right after this. */
}
