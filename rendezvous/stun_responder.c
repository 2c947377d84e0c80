/* stun_responder.c - rendezvousd's STUN responder (see stun_responder.h): the pure request ->
 * reply function, and a small non-blocking UDP socket layer around it.
 *
 * RFC 8489 6.3 (server processing of a request), RFC 5780 6.1 (server
 * behaviour for NAT behaviour discovery: RESPONSE-ORIGIN, OTHER-ADDRESS,
 * CHANGE-REQUEST), RFC 3489 8.1 (classic Binding responses).
 * Self-contained: uses only the codec in schema/stun.h and libc; no other
 * server module, no global state.
 */
#include "rendezvous/stun_responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef SRV_VERSION
#define SRV_STUN_SOFTWARE_DEFAULT SRV_STUN_SOFTWARE_PREFIX SRV_VERSION
#else
#define SRV_STUN_SOFTWARE_DEFAULT SRV_STUN_SOFTWARE_PREFIX "unknown"
#endif

/* Reason phrases of our error responses (RFC 8489 14.8 lets us choose). */
#define REASON_MALFORMED "Bad Request: malformed attribute"
#define REASON_METHOD "Bad Request: unsupported method"
#define REASON_CHANGE "Unknown Attribute: cannot change as requested"

#define IPV4_LEN 4
#define IPV6_LEN 16

/* A complete sockaddr's length from its family (the caller passes a
 * sockaddr_in or sockaddr_in6, or a sockaddr_storage holding one). */
static socklen_t sa_len(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (socklen_t)sizeof(struct sockaddr_in);
    if (sa->sa_family == AF_INET6)
        return (socklen_t)sizeof(struct sockaddr_in6);
    return 0;
}

/* Address of the server socket `v`, as seen from a request that arrived on
 * `here` through socket `in`. */
static rdv_stun_addr sock_addr(const srv_stun_responder_config *cfg, const rdv_stun_addr *here,
                               srv_stun_via in, srv_stun_via v)
{
    rdv_stun_addr a;
    /* The arrival IP is authoritative for its side (it resolves a
     * wildcard primary); the configuration gives the other side. */
    if ((v & SRV_STUN_VIA_ALT_ADDR) == (in & SRV_STUN_VIA_ALT_ADDR))
        a = *here;
    else if (v & SRV_STUN_VIA_ALT_ADDR)
        a = cfg->alt_addr;
    else
        a = cfg->addr;
    a.port = (v & SRV_STUN_VIA_ALT_PORT) ? cfg->alt_port : cfg->port;
    return a;
}

/* Builds an error response to m (FINGERPRINTed); 0 for RFC 3489
 * requests or when it does not fit. */
static size_t answer_error(const rdv_stun_msg *m, int code, const char *reason,
                           const uint16_t *unknown, size_t n_unknown, const char *sw,
                           uint8_t *out, size_t outcap)
{
    /* RFC 3489 clients only ever get success responses from us. */
    if (m->classic)
        return 0;
    int n = rdv_stun_build_error(out, outcap, m, code, reason, unknown, n_unknown, sw, true);
    return n > 0 ? (size_t)n : 0;
}

size_t srv_stun_responder_handle(const srv_stun_responder_config *cfg, const uint8_t *in,
                                 size_t len, const struct sockaddr *from, socklen_t fromlen,
                                 const struct sockaddr *local, uint8_t *out, size_t outcap,
                                 srv_stun_route *route)
{
    srv_stun_route dummy;
    if (!route)
        route = &dummy;
    route->via = SRV_STUN_VIA_PRIMARY;
    route->port = 0;
    if (!cfg || !in || !from || !out)
        return 0;

    rdv_stun_msg m;
    int r = rdv_stun_parse_opt(in, len,
                               cfg->answer_classic ? RDV_STUN_PARSE_CLASSIC
                                                   : RDV_STUN_PARSE_STRICT,
                               &m);
    switch (r) {
    case RDV_STUN_ERR_TRUNCATED:
    case RDV_STUN_ERR_NOT_STUN:
    case RDV_STUN_ERR_BAD_LENGTH:
    case RDV_STUN_ERR_BAD_COOKIE:
    /* RFC 8489 7: a FINGERPRINT that fails means "not STUN": discard. */
    case RDV_STUN_ERR_FINGERPRINT:
        return 0;
    default:
        break;
    }
    /* One message per datagram: bytes after it mean this is not STUN. */
    if ((size_t)RDV_STUN_HEADER_BYTES + m.length != len)
        return 0;
    /* RFC 8489 6.3: responses we never asked for are dropped (6.3.3), and
     * indications get no response (6.3.2), Binding indications being
     * keepalives. */
    if (m.cls != RDV_STUN_CLASS_REQUEST)
        return 0;

    rdv_stun_addr mapped;
    if (rdv_stun_addr_from_sockaddr(from, fromlen, &mapped) != 0)
        return 0;
    route->port = mapped.port;

    /* Where the request arrived, and on which of our sockets. */
    rdv_stun_addr here = cfg->addr;
    here.port = cfg->port;
    if (local && rdv_stun_addr_from_sockaddr(local, sa_len(local), &here) != 0)
        return 0;
    unsigned in_bits = SRV_STUN_VIA_PRIMARY;
    bool alt_ip_ok = cfg->has_alt_addr && cfg->alt_addr.family == here.family;
    bool alt_port_ok = cfg->alt_port != 0 && cfg->alt_port != cfg->port;
    if (alt_ip_ok && rdv_stun_ip_equal(&here, &cfg->alt_addr))
        in_bits |= SRV_STUN_VIA_ALT_ADDR;
    if (alt_port_ok && here.port == cfg->alt_port)
        in_bits |= SRV_STUN_VIA_ALT_PORT;
    srv_stun_via in_via = (srv_stun_via)in_bits;
    route->via = in_via;

    const char *sw = cfg->software ? cfg->software : SRV_STUN_SOFTWARE_DEFAULT;

    /* RFC 8489 6.3.1: a malformed request gets 400 Bad Request. */
    if (r < 0)
        return answer_error(&m, RDV_STUN_CODE_BAD_REQUEST, REASON_MALFORMED, NULL, 0, sw, out,
                            outcap);
    /* RFC 8489 6.3.1: we only implement the Binding method. */
    if (m.method != RDV_STUN_METHOD_BINDING)
        return answer_error(&m, RDV_STUN_CODE_BAD_REQUEST, REASON_METHOD, NULL, 0, sw, out,
                            outcap);
    if (m.has_response_port && m.response_port == 0)
        return answer_error(&m, RDV_STUN_CODE_BAD_REQUEST, REASON_MALFORMED, NULL, 0, sw, out,
                            outcap);
    /* RFC 8489 6.3.1.1: unknown comprehension-required attributes -> 420
     * with UNKNOWN-ATTRIBUTES listing them. */
    if (m.n_unknown > 0) {
        size_t n = m.n_unknown < RDV_STUN_MAX_UNKNOWN ? m.n_unknown : RDV_STUN_MAX_UNKNOWN;
        return answer_error(&m, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE, NULL, m.unknown, n, sw, out,
                            outcap);
    }

    /* RFC 5780 7.5: the client listens for the answer (success or error
     * from here on) on RESPONSE-PORT at the same IP. */
    if (m.has_response_port)
        route->port = m.response_port;

    /* RFC 5780 7.2 / RFC 3489 11.2.4: CHANGE-REQUEST asks us to answer
     * from the other IP ("A") and/or the other port ("B"); a server that
     * cannot do that answers 420 naming CHANGE-REQUEST. */
    unsigned out_bits = in_bits;
    if (m.has_change_request) {
        bool want_ip = m.change_flags & RDV_STUN_CHANGE_IP;
        bool want_port = m.change_flags & RDV_STUN_CHANGE_PORT;
        if ((want_ip && !alt_ip_ok) || (want_port && !alt_port_ok)) {
            static const uint16_t cr[] = {RDV_STUN_ATTR_CHANGE_REQUEST};
            return answer_error(&m, RDV_STUN_CODE_UNKNOWN_ATTRIBUTE, REASON_CHANGE, cr, 1, sw,
                                out, outcap);
        }
        if (want_ip)
            out_bits ^= SRV_STUN_VIA_ALT_ADDR;
        if (want_port)
            out_bits ^= SRV_STUN_VIA_ALT_PORT;
    }
    route->via = (srv_stun_via)out_bits;

    /* RFC 5780 6.1: RESPONSE-ORIGIN is the address the response is sent
     * from; OTHER-ADDRESS the one a change IP + change port reply would
     * come from. Only with an alternate port or address configured, and
     * only when our own IP is known (not a wildcard). With a port but no
     * second IP, OTHER-ADDRESS carries the same IP: a client sees it can
     * test port-dependent behaviour only (RFC 5780's full tests assume a
     * second IP; documented deviation, useful on single-address hosts). */
    rdv_stun_success_opts o;
    memset(&o, 0, sizeof(o));
    o.mapped = mapped;
    o.software = sw;
    o.fingerprint = true;
    rdv_stun_addr origin, other;
    if ((alt_ip_ok || alt_port_ok) && !rdv_stun_ip_is_any(&here)) {
        unsigned other_bits = in_bits;
        if (alt_ip_ok)
            other_bits ^= SRV_STUN_VIA_ALT_ADDR;
        if (alt_port_ok)
            other_bits ^= SRV_STUN_VIA_ALT_PORT;
        origin = sock_addr(cfg, &here, in_via, (srv_stun_via)out_bits);
        other = sock_addr(cfg, &here, in_via, (srv_stun_via)other_bits);
        o.response_origin = &origin;
        o.other_address = &other;
    }
    int n = rdv_stun_build_binding_success(out, outcap, &m, &o);
    return n > 0 ? (size_t)n : 0;
}

/* ---- Socket layer ------------------------------------------------- */

/* Parses a numeric IPv4/IPv6 literal. Returns the family or -1. */
static int parse_ip(const char *s, rdv_stun_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (!s)
        return -1;
    if (inet_pton(AF_INET, s, a->addr) == 1) {
        a->family = RDV_STUN_FAMILY_IPV4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, s, a->addr) == 1) {
        a->family = RDV_STUN_FAMILY_IPV6;
        return AF_INET6;
    }
    return -1;
}

/* Opens one non-blocking UDP socket bound to *a (port 0: ephemeral) and
 * stores the bound address back into *a. Returns the fd or -errno. */
static int open_one(rdv_stun_addr *a, bool wildcard)
{
    struct sockaddr_storage ss;
    socklen_t sl = rdv_stun_addr_to_sockaddr(a, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    errno = 0;
    int one = 1;
    int rc = 0;
    if (ss.ss_family == AF_INET6) {
        /* One server per family: no IPv4-mapped addresses on this one. */
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (rc == 0 && wildcard)
            rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    } else if (wildcard) {
        rc = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    }
    if (rc == 0) {
        /* Best effort: a smaller buffer than asked for is not an error. */
        int rcvbuf = SRV_STUN_SOCKET_RCVBUF;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    if (rc == 0)
        rc = bind(fd, (const struct sockaddr *)&ss, sl);
    sl = sizeof(ss);
    if (rc == 0)
        rc = getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (rc == 0)
        rc = rdv_stun_addr_from_sockaddr((const struct sockaddr *)&ss, sl, a) == 0 ? 0 : -1;
    if (rc != 0) {
        int e = errno ? errno : EINVAL;
        close(fd);
        return -e;
    }
    return fd;
}

int srv_stun_server_release(srv_stun_server *srv, int fd)
{
    if (!srv || fd < 0)
        return -EBADF;
    for (int i = 0; i < SRV_STUN_VIA__COUNT; i++) {
        if (srv->fd[i] == fd) {
            srv->fd[i] = -1;
            return 0;
        }
    }
    return -EBADF;
}

void srv_stun_server_close(srv_stun_server *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < SRV_STUN_VIA__COUNT; i++) {
        if (srv->fd[i] >= 0)
            close(srv->fd[i]);
        srv->fd[i] = -1;
    }
}

int srv_stun_server_open(srv_stun_server *srv, const srv_stun_server_config *cfg)
{
    if (!srv)
        return -EINVAL;
    memset(srv, 0, sizeof(*srv));
    for (int i = 0; i < SRV_STUN_VIA__COUNT; i++)
        srv->fd[i] = -1;
    if (!cfg)
        return -EINVAL;

    rdv_stun_addr primary, alt;
    int fam = parse_ip(cfg->addr, &primary);
    if (fam < 0)
        return -EINVAL;
    bool has_alt = cfg->alt_addr != NULL;
    if (has_alt && (parse_ip(cfg->alt_addr, &alt) != fam || rdv_stun_ip_is_any(&alt) ||
                    rdv_stun_ip_is_any(&primary) || rdv_stun_ip_equal(&alt, &primary)))
        return -EINVAL;
    bool has_alt_port = cfg->alt_port != 0 || cfg->alt_port_ephemeral;
    if (has_alt_port && cfg->alt_port == cfg->port && cfg->port != 0)
        return -EINVAL;

    srv->family = fam;
    srv->wildcard = rdv_stun_ip_is_any(&primary);
    const char *sw = cfg->software ? cfg->software : SRV_STUN_SOFTWARE_DEFAULT;
    size_t swlen = strnlen(sw, SRV_STUN_SOFTWARE_SERVER_MAX);
    memcpy(srv->software, sw, swlen);
    srv->software[swlen] = '\0';
    srv->cb_packet = cfg->cb_packet;
    srv->user_ptr = cfg->user_ptr;

    /* Primary address: primary port, then the alternate port. */
    int fd;
    srv->bound[SRV_STUN_VIA_PRIMARY] = primary;
    srv->bound[SRV_STUN_VIA_PRIMARY].port = cfg->port;
    if ((fd = open_one(&srv->bound[SRV_STUN_VIA_PRIMARY], srv->wildcard)) < 0)
        goto fail;
    srv->fd[SRV_STUN_VIA_PRIMARY] = fd;
    uint16_t port = srv->bound[SRV_STUN_VIA_PRIMARY].port;
    uint16_t alt_port = 0;
    if (has_alt_port) {
        srv->bound[SRV_STUN_VIA_ALT_PORT] = primary;
        srv->bound[SRV_STUN_VIA_ALT_PORT].port = cfg->alt_port;
        if ((fd = open_one(&srv->bound[SRV_STUN_VIA_ALT_PORT], srv->wildcard)) < 0)
            goto fail;
        srv->fd[SRV_STUN_VIA_ALT_PORT] = fd;
        alt_port = srv->bound[SRV_STUN_VIA_ALT_PORT].port;
    }
    /* Alternate address: the same two ports. */
    if (has_alt) {
        srv->bound[SRV_STUN_VIA_ALT_ADDR] = alt;
        srv->bound[SRV_STUN_VIA_ALT_ADDR].port = port;
        if ((fd = open_one(&srv->bound[SRV_STUN_VIA_ALT_ADDR], false)) < 0)
            goto fail;
        srv->fd[SRV_STUN_VIA_ALT_ADDR] = fd;
        if (has_alt_port) {
            srv->bound[SRV_STUN_VIA_ALT_BOTH] = alt;
            srv->bound[SRV_STUN_VIA_ALT_BOTH].port = alt_port;
            if ((fd = open_one(&srv->bound[SRV_STUN_VIA_ALT_BOTH], false)) < 0)
                goto fail;
            srv->fd[SRV_STUN_VIA_ALT_BOTH] = fd;
        }
    }

    srv_stun_responder_config *rc = &srv->rcfg;
    rc->software = srv->software;
    rc->addr = primary;
    rc->port = port;
    rc->alt_port = alt_port;
    rc->has_alt_addr = has_alt;
    if (has_alt)
        rc->alt_addr = alt;
    rc->answer_classic = !cfg->no_classic;
    return 0;

fail:
    srv_stun_server_close(srv);
    return fd;
}

/* Control buffer big enough for either PKTINFO, suitably aligned. */
typedef union pktinfo_ctl {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) > CMSG_SPACE(sizeof(struct in_pktinfo))
                 ? CMSG_SPACE(sizeof(struct in6_pktinfo))
                 : CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct cmsghdr align;
} pktinfo_ctl;

/* From a received wildcard datagram's PKTINFO: the destination IP into
 * *local (port kept) and the interface index. */
static void read_pktinfo(struct msghdr *mh, rdv_stun_addr *local, unsigned *ifindex)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            local->family == RDV_STUN_FAMILY_IPV4) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memcpy(local->addr, &pi.ipi_addr, IPV4_LEN);
            *ifindex = (unsigned)pi.ipi_ifindex;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   local->family == RDV_STUN_FAMILY_IPV6) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memcpy(local->addr, &pi.ipi6_addr, IPV6_LEN);
            *ifindex = pi.ipi6_ifindex;
        }
    }
}

/* Sends reply[0..n) to `to` from socket `fd`; on a wildcard socket the
 * source IP is pinned to `src` so it matches RESPONSE-ORIGIN and the
 * address the client sent to. Returns 0 or -1. */
static int send_reply(int fd, bool wildcard, const rdv_stun_addr *src, unsigned ifindex,
                      const uint8_t *reply, size_t n, const struct sockaddr_storage *to,
                      socklen_t tolen)
{
    struct iovec iov = {.iov_base = (void *)reply, .iov_len = n};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_name = (void *)to;
    mh.msg_namelen = tolen;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    pktinfo_ctl ctl;
    memset(&ctl, 0, sizeof(ctl));
    if (wildcard) {
        mh.msg_control = ctl.buf;
        struct cmsghdr *c = (struct cmsghdr *)ctl.buf;
        if (src->family == RDV_STUN_FAMILY_IPV4) {
            struct in_pktinfo pi;
            memset(&pi, 0, sizeof(pi));
            memcpy(&pi.ipi_spec_dst, src->addr, IPV4_LEN);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
            mh.msg_controllen = CMSG_SPACE(sizeof(pi));
        } else {
            struct in6_pktinfo pi;
            memset(&pi, 0, sizeof(pi));
            memcpy(&pi.ipi6_addr, src->addr, IPV6_LEN);
            pi.ipi6_ifindex = ifindex;
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
            mh.msg_controllen = CMSG_SPACE(sizeof(pi));
        }
    }
    ssize_t r;
    do {
        r = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r == (ssize_t)n ? 0 : -1;
}

int srv_stun_server_on_readable(srv_stun_server *srv, int fd)
{
    if (!srv || fd < 0)
        return -EBADF;
    int in_idx = -1;
    for (int i = 0; i < SRV_STUN_VIA__COUNT; i++)
        if (srv->fd[i] == fd)
            in_idx = i;
    if (in_idx < 0)
        return -EBADF;

    uint8_t buf[SRV_STUN_RECV_BUFFER];
    uint8_t reply[SRV_STUN_REPLY_BUFFER];
    int count = 0;
    while (count < SRV_STUN_RECV_BUDGET) {
        struct sockaddr_storage from;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        pktinfo_ctl ctl;
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_name = &from;
        mh.msg_namelen = sizeof(from);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                srv->n_recv_errors++; /* e.g. a queued ICMP error; retry next time */
            break;
        }
        count++;
        srv->n_rx++;
        if (mh.msg_flags & MSG_TRUNC) {
            srv->n_dropped++;
            continue;
        }
        rdv_stun_addr here = srv->bound[in_idx];
        unsigned ifindex = 0;
        if (srv->wildcard)
            read_pktinfo(&mh, &here, &ifindex);
        struct sockaddr_storage local;
        rdv_stun_addr_to_sockaddr(&here, &local);

        srv_stun_route route = {SRV_STUN_VIA_PRIMARY, 0};
        size_t n = srv_stun_responder_handle(&srv->rcfg, buf, (size_t)r,
                                             (const struct sockaddr *)&from, mh.msg_namelen,
                                             (const struct sockaddr *)&local, reply,
                                             sizeof(reply), &route);
        if (srv->cb_packet)
            srv->cb_packet(srv->user_ptr, (const struct sockaddr *)&from, mh.msg_namelen,
                           (srv_stun_via)in_idx, route.via, n);
        if (n == 0 || srv->fd[route.via] < 0) {
            srv->n_dropped++;
            continue;
        }
        /* To the source IP, at the source port or RESPONSE-PORT. */
        rdv_stun_addr dst;
        struct sockaddr_storage to;
        socklen_t tolen = 0;
        if (rdv_stun_addr_from_sockaddr((const struct sockaddr *)&from, mh.msg_namelen, &dst) ==
            0) {
            dst.port = route.port;
            tolen = rdv_stun_addr_to_sockaddr(&dst, &to);
        }
        if (tolen == 0) {
            srv->n_dropped++;
            continue;
        }
        /* Without an alternate address the source IP is always the one
         * the request was sent to (a wildcard bind is only allowed then). */
        if (send_reply(srv->fd[route.via], srv->wildcard, &here, ifindex, reply, n, &to,
                       tolen) == 0) {
            srv->n_tx++;
            /* RFC 8489 5: class bits C1 (0x0100) and C0 (0x0010) of the
             * type; both set is an error response. */
            if ((reply[0] & 0x01) && (reply[1] & 0x10))
                srv->n_tx_error++;
            else
                srv->n_tx_success++;
        } else
            srv->n_send_errors++;
    }
    return count;
}
