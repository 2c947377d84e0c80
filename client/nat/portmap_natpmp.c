/* portmap_natpmp.c - NAT-PMP (RFC 6886) through libnatpmp: the gateway's
 * public address and a UDP mapping, each request bounded in time (see
 * portmap_proto.h). Called from the port mapper's worker thread only.
 */
#define ENABLE_STRNATPMPERR 1
#include <errno.h>
#include <natpmp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "client/nat/portmap_proto.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define NATPMP_HDR_BYTES 8       /* version, opcode, result code, epoch */
#define NATPMP_ADDR_BYTES 12     /* the public address answer */
#define NATPMP_MAP_BYTES 16      /* a mapping answer */
#define TRUNCATED (-1000)        /* our code: an answer too short */

/* libnatpmp parses an answer without checking its length (a truncated one
 * would be read past its end), so the next datagram is looked at first:
 * shorter than the header, or a success shorter than `full` bytes, it is
 * taken off the socket and TRUNCATED returned; else 0 (also when nothing
 * is there). An error answer may be just the header (RFC 6886 3.5). */
static int check_length(natpmp_t *n, size_t full)
{
    uint8_t b[NATPMP_MAP_BYTES];
    ssize_t len = recv(n->s, b, sizeof(b), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (len < 0)
        return 0; /* nothing, or an error libnatpmp reports itself */
    bool ok = (size_t)len >= NATPMP_HDR_BYTES &&
              ((size_t)len >= full || (b[2] | b[3]) != 0); /* result code */
    if (ok)
        return 0;
    (void)recv(n->s, b, sizeof(b), MSG_DONTWAIT); /* drop it */
    return TRUNCATED;
}

/* Waits for the answer (at least `full` bytes when it is a success) to
 * the pending request, letting libnatpmp retransmit, until `deadline`
 * (monotonic ms). Returns what readnatpmpresponseorretry returned last
 * (0: *resp is the answer), TRUNCATED, or NATPMP_TRYAGAIN when the
 * deadline passed. */
static int wait_answer(natpmp_t *n, size_t full, int64_t deadline, natpmpresp_t *resp)
{
    for (;;) {
        if (check_length(n, full) != 0)
            return TRUNCATED;
        int r = readnatpmpresponseorretry(n, resp);
        if (r != NATPMP_TRYAGAIN)
            return r;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return NATPMP_TRYAGAIN;
        struct timeval tv;
        int64_t wait = 50;
        if (getnatpmprequesttimeout(n, &tv) == 0)
            wait = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 + 1;
        if (wait > left)
            wait = left;
        if (wait < 1)
            wait = 1;
        struct pollfd pfd = {.fd = n->s, .events = POLLIN};
        (void)poll(&pfd, 1, (int)wait);
    }
}

static void say(char *why, size_t cap, const char *what, int r)
{
    if (!why || cap == 0)
        return;
    if (r == NATPMP_TRYAGAIN)
        snprintf(why, cap, "NAT-PMP: %s: no answer", what);
    else if (r == TRUNCATED)
        snprintf(why, cap, "NAT-PMP: %s: truncated answer", what);
    else
        snprintf(why, cap, "NAT-PMP: %s: %.60s", what, strnatpmperr(r));
}

int rdv__pm_natpmp_map(uint16_t iport, uint16_t eport, uint32_t lifetime_s, int budget_ms,
                       rdv__pm_lease *out, char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (iport == 0 || lifetime_s == 0) {
        snprintf(why, cap, "NAT-PMP: bad request");
        return -1;
    }
    int64_t deadline = now_ms() + budget_ms;
    natpmp_t n;
    int r = initnatpmp(&n, 0, 0);
    if (r < 0) {
        say(why, cap, "no gateway", r);
        return -1;
    }
    natpmpresp_t resp;
    memset(&resp, 0, sizeof(resp));
    r = sendpublicaddressrequest(&n);
    if (r >= 0)
        r = wait_answer(&n, NATPMP_ADDR_BYTES, deadline, &resp);
    if (r < 0) {
        say(why, cap, "public address", r);
        goto fail;
    }
    if (resp.type != NATPMP_RESPTYPE_PUBLICADDRESS || resp.pnu.publicaddress.addr.s_addr == 0) {
        snprintf(why, cap, "NAT-PMP: public address: unusable answer (type %u)",
                 (unsigned)resp.type);
        goto fail;
    }
    struct in_addr pub = resp.pnu.publicaddress.addr;
    memset(&resp, 0, sizeof(resp));
    r = sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, iport, eport, lifetime_s);
    if (r >= 0)
        r = wait_answer(&n, NATPMP_MAP_BYTES, deadline, &resp);
    if (r < 0) {
        say(why, cap, "mapping", r);
        goto fail;
    }
    /* The answer must be about our request: a UDP mapping of iport with a
     * public port and a lifetime. */
    if (resp.type != NATPMP_RESPTYPE_UDPPORTMAPPING ||
        resp.pnu.newportmapping.privateport != iport ||
        resp.pnu.newportmapping.mappedpublicport == 0 || resp.pnu.newportmapping.lifetime == 0) {
        snprintf(why, cap,
                 "NAT-PMP: mapping: unusable answer (type %u, private port %u, public port %u, "
                 "lifetime %u)",
                 (unsigned)resp.type, (unsigned)resp.pnu.newportmapping.privateport,
                 (unsigned)resp.pnu.newportmapping.mappedpublicport,
                 (unsigned)resp.pnu.newportmapping.lifetime);
        goto fail;
    }
    out->pub.sin_family = AF_INET;
    out->pub.sin_addr = pub;
    out->pub.sin_port = htons(resp.pnu.newportmapping.mappedpublicport);
    out->lifetime_s = resp.pnu.newportmapping.lifetime;
    closenatpmp(&n);
    return 0;
fail:
    closenatpmp(&n);
    return -1;
}

int rdv__pm_natpmp_unmap(uint16_t iport, int budget_ms)
{
    natpmp_t n;
    if (iport == 0 || initnatpmp(&n, 0, 0) < 0)
        return -1;
    natpmpresp_t resp;
    memset(&resp, 0, sizeof(resp));
    int r = sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, iport, 0, 0);
    if (r >= 0)
        r = wait_answer(&n, NATPMP_MAP_BYTES, now_ms() + budget_ms, &resp);
    closenatpmp(&n);
    return r == 0 && resp.type == NATPMP_RESPTYPE_UDPPORTMAPPING ? 0 : -1;
}
