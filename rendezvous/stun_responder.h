/* stun_responder.h - rendezvousd's STUN responder (RFC 8489 Binding, RFC 5780 NAT
 * behaviour discovery), self-contained: it depends only on the codec in
 * schema/stun.h and the C library, not on the rest of the server.
 *
 * Two layers:
 *  - srv_stun_responder_handle(): a pure function from one received
 *    datagram (plus who sent it and where it arrived) to the reply bytes
 *    and the socket that must send them. Unit-testable, fuzzable.
 *  - srv_stun_server_*: non-blocking UDP sockets (IPv4 or IPv6; open one
 *    server per family) read with recvmsg() and answered with sendmsg().
 *
 * Policy (see srv_stun_responder_handle() for the details):
 *  - Binding requests -> success with XOR-MAPPED-ADDRESS, SOFTWARE
 *    ("rendezvous/<version>"), FINGERPRINT; plus RESPONSE-ORIGIN and
 *    OTHER-ADDRESS when an alternate port or address is configured.
 *  - Malformed datagrams, responses and indications -> dropped.
 *  - Unknown comprehension-required attributes -> 420 + UNKNOWN-ATTRIBUTES
 *    (PADDING, RFC 5780 7.6, is one: not implemented).
 *  - CHANGE-REQUEST (RFC 5780 7.2) is honoured when the alternate port /
 *    address exists (the reply leaves from that socket), else 420;
 *    RESPONSE-PORT (RFC 5780 7.5) redirects the reply to that port of the
 *    source IP (coturn's turnutils_stunclient needs it, or it hangs).
 *  - With only an alternate port (one IP), OTHER-ADDRESS carries the same
 *    IP and another port: clients can test port-dependent filtering, and
 *    see from OTHER-ADDRESS == RESPONSE-ORIGIN's IP that they cannot test
 *    address-dependent behaviour (RFC 5780's full tests need two IPs).
 *  - RFC 3489 ("classic", no magic cookie) Binding requests are answered
 *    with MAPPED-ADDRESS / SOURCE-ADDRESS / CHANGED-ADDRESS when
 *    answer_classic is set (the server sets it: Debian's stun-client 0.97
 *    only speaks RFC 3489). Classic error cases are dropped, never answered.
 *
 * Integration with the libwebsockets loop (server engineer): after
 * srv_stun_server_open(), adopt each fd of srv.fd[] that is >= 0 as a raw
 * file descriptor, so lws only polls it and we do the recvmsg/sendmsg:
 *
 *     lws_sock_file_fd_type d = { .filefd = srv.fd[i] };
 *     lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, d,
 *                                "rdv-stun", NULL);
 *
 * with a protocol "rdv-stun" in the vhost's lws_protocols table whose
 * callback does, on LWS_CALLBACK_RAW_RX_FILE,
 *     srv_stun_server_on_readable(srv, lws_get_socket_fd(wsi));
 * and returns 0 (nonzero makes lws close the wsi). An adopted descriptor
 * belongs to lws until the context is destroyed, and lws closes it then
 * (lws maintainer, warmcat/libwebsockets#1189): so on
 * LWS_CALLBACK_RAW_CLOSE_FILE call srv_stun_server_release(srv, fd), and
 * srv_stun_server_close() will not close that (maybe reused) fd number
 * again. Replies are sent inline from the read callback: UDP
 * sendmsg on a non-blocking socket never waits; if the kernel buffer is
 * full the reply is dropped and counted, and the client retransmits
 * (RFC 8489 6.2.1). (LWS_ADOPT_RAW_SOCKET_UDP is not used because lws
 * would then do the recvfrom itself and hide the destination address.)
 */
#ifndef SRV_STUN_H
#define SRV_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "schema/stun.h"

#define SRV_STUN_DEFAULT_PORT 3478      /* the IANA "stun" UDP port (RFC 8489) */
#define SRV_STUN_SOFTWARE_PREFIX "rendezvous/"
#define SRV_STUN_RECV_BUDGET 64         /* datagrams per on_readable call */
#define SRV_STUN_RECV_BUFFER 2048       /* larger datagrams are dropped */
/* Kernel receive buffer asked for each STUN socket (SO_RCVBUF; Linux caps
 * it at net.core.rmem_max, raise that for more). The default (~212 KiB,
 * ~280 queued requests) dropped 1.4% of a 1,024-outstanding load in
 * bench/stun.sh; clients retransmit, but bursts of many NATed nodes are
 * the normal case for a rendezvous. */
#define SRV_STUN_SOCKET_RCVBUF (4 * 1024 * 1024)
#define SRV_STUN_REPLY_BUFFER RDV_STUN_MAX_UDP_MESSAGE
/* RFC 8489 14.14: SOFTWARE "fewer than 128 characters"; keeps every reply
 * inside SRV_STUN_REPLY_BUFFER. */
#define SRV_STUN_SOFTWARE_SERVER_MAX 127

/* Which of the (up to) four server sockets sends a reply: a bit set of
 * "alternate port" and "alternate address". */
typedef enum srv_stun_via {
    SRV_STUN_VIA_PRIMARY = 0,  /* primary address, primary port */
    SRV_STUN_VIA_ALT_PORT = 1, /* primary address, alternate port */
    SRV_STUN_VIA_ALT_ADDR = 2, /* alternate address, primary port */
    SRV_STUN_VIA_ALT_BOTH = 3, /* alternate address, alternate port */
    SRV_STUN_VIA__COUNT = 4
} srv_stun_via;

/* Where a reply goes: which socket sends it, and to which port of the
 * request's source IP. */
typedef struct srv_stun_route {
    srv_stun_via via; /* sending socket */
    uint16_t port;    /* the request's source port, or its RESPONSE-PORT */
} srv_stun_route;

/* The responder's view of the server's addresses. */
typedef struct srv_stun_responder_config {
    const char *software;   /* SOFTWARE value; NULL: "rendezvous/<version>" */
    rdv_stun_addr addr;     /* primary IP (port ignored); may be the wildcard
                             * (the arrival address is then used) unless
                             * has_alt_addr */
    uint16_t port;          /* primary port */
    uint16_t alt_port;      /* 0: no alternate port */
    bool has_alt_addr;
    rdv_stun_addr alt_addr; /* alternate IP (port ignored), same family */
    bool answer_classic;    /* answer RFC 3489 Binding requests */
} srv_stun_responder_config;

/* Handles one datagram in[0..len) received from `from` on the local
 * address `local` (the destination IP and port of the datagram; NULL:
 * the primary socket). Writes the reply into out[0..outcap) and returns
 * its length, or 0 when nothing must be sent. *route (may be NULL)
 * receives the socket that must send the reply (the receiving socket, or,
 * for an RFC 5780 7.2 CHANGE-REQUEST, the one with the other IP and/or
 * port) and the destination port: the source port, or the RESPONSE-PORT
 * of a well-formed request (RFC 5780 7.5; same IP, so it reflects nothing
 * a spoofed source could not already). The destination IP is always the
 * source IP.
 *
 *  - Not STUN, wrong length, bad FINGERPRINT, trailing bytes, a response
 *    or an indication (RFC 8489 6.3.2: indications get no answer): 0.
 *  - A request with a malformed attribute, a RESPONSE-PORT of 0, or of
 *    another method than Binding: 400 (RFC 8489 6.3.1).
 *  - Unknown comprehension-required attributes: 420 listing them
 *    (RFC 8489 6.3.1.1, 14.13). So are PADDING (RFC 5780 7.6: not
 *    implemented) and a CHANGE-REQUEST asking for an IP or port change
 *    the configuration cannot do (RFC 5780 7.2).
 *  - Otherwise the Binding success response (see the file comment).
 * Classic (RFC 3489) requests only ever get a success response or 0.
 * Pure function: no I/O, no state, no allocation. */
size_t srv_stun_responder_handle(const srv_stun_responder_config *cfg, const uint8_t *in,
                                 size_t len, const struct sockaddr *from, socklen_t fromlen,
                                 const struct sockaddr *local, uint8_t *out, size_t outcap,
                                 srv_stun_route *route);

/* Called for every datagram handled by the socket layer (logging, tests). */
typedef void (*srv_stun_packet_cb)(void *user, const struct sockaddr *from, socklen_t fromlen,
                                   srv_stun_via in, srv_stun_via out, size_t reply_len);

/* Socket layer configuration. */
typedef struct srv_stun_server_config {
    const char *addr;        /* numeric IPv4 or IPv6 literal; "0.0.0.0" or
                              * "::" listens on all (not with alt_addr) */
    uint16_t port;           /* 0: an ephemeral port (tests) */
    uint16_t alt_port;       /* 0: none (unless alt_port_ephemeral) */
    bool alt_port_ephemeral; /* tests: an ephemeral alternate port */
    const char *alt_addr;    /* NULL: none; same family as addr */
    const char *software;    /* NULL: "rendezvous/<version>"; copied, cut
                              * to SRV_STUN_SOFTWARE_SERVER_MAX bytes */
    bool no_classic;         /* drop RFC 3489 requests instead of answering */
    srv_stun_packet_cb cb_packet; /* optional */
    void *user_ptr;
} srv_stun_server_config;

/* An open responder. Fields are read-only for callers. */
typedef struct srv_stun_server {
    int fd[SRV_STUN_VIA__COUNT];       /* -1 where no such socket */
    rdv_stun_addr bound[SRV_STUN_VIA__COUNT]; /* their addresses (resolved ports) */
    bool wildcard;                     /* bound to 0.0.0.0 / :: (uses PKTINFO) */
    int family;                        /* AF_INET or AF_INET6 */
    srv_stun_responder_config rcfg;
    char software[RDV_STUN_SOFTWARE_MAX_BYTES + 1];
    srv_stun_packet_cb cb_packet;
    void *user_ptr;
    /* Counters: datagrams read (n_rx), replies sent (n_tx = n_tx_success +
     * n_tx_error, by the reply's STUN class), datagrams not answered
     * (n_dropped: not STUN, responses, indications, truncated; and
     * n_send_errors: the reply could not be sent), failed reads. So
     * n_rx == n_tx + n_dropped + n_send_errors. */
    uint64_t n_rx, n_tx, n_dropped, n_send_errors, n_recv_errors;
    uint64_t n_tx_success, n_tx_error;
} srv_stun_server;

/* Opens the sockets: primary address x {port, alt port} x {addr, alt
 * addr} as configured, non-blocking, close-on-exec, IPV6_V6ONLY for IPv6.
 * Returns 0, or a negative errno (EINVAL for a bad address or a wildcard
 * with alt_addr); on failure everything opened is closed again. */
int srv_stun_server_open(srv_stun_server *srv, const srv_stun_server_config *cfg);

/* Reads up to SRV_STUN_RECV_BUDGET datagrams from fd (one of srv->fd[])
 * and answers them. Returns how many were read (0 when none was ready), or
 * -EBADF when fd is not one of ours. Transient errors are counted. */
int srv_stun_server_on_readable(srv_stun_server *srv, int fd);

/* Forgets fd (one of srv->fd[]) without closing it: whoever adopted it
 * (libwebsockets) closes it. Returns 0, or -EBADF when it is not ours. */
int srv_stun_server_release(srv_stun_server *srv, int fd);

/* Closes every socket and marks them -1; safe to call twice and after a
 * failed srv_stun_server_open() (which sets every fd to -1 first). */
void srv_stun_server_close(srv_stun_server *srv);

#endif
