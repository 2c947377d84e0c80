/* fuzz_stun.c - fuzz target for the STUN codec and responder:
 * rdv_stun_parse_opt() (strict and RFC 3489 modes) on arbitrary bytes,
 * attribute iteration over the body, and, for input that parses, the
 * responder (srv_stun_responder_handle) with a full RFC 5780
 * configuration, IPv4 and IPv6 sources, whose reply must itself parse and
 * fit its buffer. Must never crash, read out of bounds, or trip a
 * sanitizer. Built as a libFuzzer target with -DRDV_FUZZ=ON (clang), and
 * always as the replay driver of replay_main.c for ctest (server_fuzz_stun).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous/stun_responder.h"
#include "schema/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fills *ss with family ip:port. */
static void mk(struct sockaddr_storage *ss, int family, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        inet_pton(AF_INET, ip, &s->sin_addr);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &s->sin6_addr);
    }
}

/* Runs the responder on the input with a four-socket config of `family`
 * and checks the reply. */
static void respond(const uint8_t *data, size_t size, int family)
{
    srv_stun_responder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *ip = family == AF_INET ? "192.0.2.10" : "2001:db8::10";
    const char *alt = family == AF_INET ? "192.0.2.11" : "2001:db8::11";
    const char *peer = family == AF_INET ? "198.51.100.7" : "2001:db8::77";
    cfg.addr.family = family == AF_INET ? RDV_STUN_FAMILY_IPV4 : RDV_STUN_FAMILY_IPV6;
    inet_pton(family, ip, cfg.addr.addr);
    cfg.port = 3478;
    cfg.alt_port = 3479;
    cfg.has_alt_addr = true;
    cfg.alt_addr.family = cfg.addr.family;
    inet_pton(family, alt, cfg.alt_addr.addr);
    cfg.answer_classic = true;

    struct sockaddr_storage from, local;
    mk(&from, family, peer, 40000);
    /* Arrive on each of the four sockets in turn (by input size). */
    mk(&local, family, size % 2 ? alt : ip, size % 3 ? 3478 : 3479);

    uint8_t out[SRV_STUN_REPLY_BUFFER];
    srv_stun_route route;
    size_t n = srv_stun_responder_handle(&cfg, data, size, (struct sockaddr *)&from,
                                         sizeof(from), (struct sockaddr *)&local, out,
                                         sizeof(out), &route);
    if (n == 0)
        return;
    if (n > sizeof(out) || route.via >= SRV_STUN_VIA__COUNT || route.port == 0)
        abort();
    /* What we send must parse, with the request's transaction ID. */
    rdv_stun_msg reply;
    if (rdv_stun_parse_opt(out, n, RDV_STUN_PARSE_CLASSIC, &reply) != (int)n)
        abort();
    if (reply.cls != RDV_STUN_CLASS_SUCCESS && reply.cls != RDV_STUN_CLASS_ERROR)
        abort();
    if (memcmp(out + 4, data + 4, RDV_STUN_CLASSIC_TID_BYTES) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rdv_stun_msg m;
    int strict = rdv_stun_parse(data, size, &m);
    int r = rdv_stun_parse_opt(data, size, RDV_STUN_PARSE_CLASSIC, &m);
    if (strict > 0 && strict != r)
        abort(); /* classic mode accepts a superset */
    if (r < 0)
        return 0;
    if ((size_t)r > size)
        abort();
    /* Walk the attributes with the public iterator too. */
    size_t off = 0;
    rdv_stun_attr a;
    int k;
    while ((k = rdv_stun_attr_next(m.body, m.length, &off, &a)) == 1)
        if (a.value + a.len > data + size)
            abort();
    if (k < 0)
        abort(); /* parse succeeded, so the walk must too */
    respond(data, size, AF_INET);
    respond(data, size, AF_INET6);
    return 0;
}
