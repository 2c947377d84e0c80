/* fuzz_client.c - fuzz target for the pure modules of librendezvous that
 * parse bytes from the network or from a peer. The first input byte
 * selects what the rest is fed to (so one corpus covers all three):
 *
 *   0  a UDP datagram for the direct-path codec (client/path_wire.h):
 *      rdv__path_wire_kind / _sid / _parse_probe / _parse_ack with the fixed
 *      rx MAC key, rdv__path_wire_data_open with a fixed rdv__e2e session.
 *      Also a "forged" copy: the same bytes with the MAC recomputed with
 *      the key (a peer holding the session keys), so the checks after the
 *      MAC are reached by mutated input too, and the rest of a DATA packet
 *      sealed as plaintext with the peer's state and opened again.
 *      Invariants: a parsed PROBE re-built with rdv__path_wire_probe gives the
 *      same bytes, a parsed ACK re-built with rdv__path_wire_ack the same bytes
 *      when the input was canonical (only known flag bits; family 6 not
 *      carrying an IPv4-mapped address: the builder sends those as family
 *      4), otherwise the re-built packet parses to the same fields; an
 *      opened DATA packet yields len - 41 bytes and is refused as a replay
 *      the second time; sealed-then-opened plaintext is unchanged.
 *   1  a STUN datagram for a rdv__stun_client engine started against 127.0.0.1:3478
 *      and 127.0.0.2:3478 (send callback records nothing), once in RFC
 *      5780's order and once with the filtering tests on a second socket
 *      (cfg.send_aux; the same callback). Over a dozen
 *      rounds of increasing fake time, the datagram is fed from each
 *      server, from 127.0.0.3:3479 (the seeds' OTHER-ADDRESS) and from
 *      127.0.0.1:3479 (P's IP, other port: Test III), once as is and once
 *      per outstanding transaction with its TID patched in (FINGERPRINT
 *      recomputed), then rdv__stun_client_tick. libsodium's RNG is replaced by a
 *      deterministic generator reset per input, so a run reproduces and the
 *      seeds can carry Test I's TID. Invariants: result fields in range
 *      (nat in the enum, behaviours in theirs, method and error_text
 *      NUL-terminated, server_index -1..1), a type before the end only
 *      once the mapping is decided, and once nothing answers any
 *      more, discovery finishes (done, not running) within bounded ticks.
 *   2  JSON text (at most 64 KiB, nesting at most 32) loaded with jansson;
 *      the value, each member of an object and each element of an array go
 *      to rdv__cand_from_json. A success must have a usable address and
 *      round-trip through rdv__cand_to_json -> rdv__cand_from_json to the
 *      same address, port, type, priority, foundation and related address.
 *   other first bytes: ignored.
 *
 * Built as the replay driver of replay_main.c for ctest (client_fuzz_udp),
 * and with -DRDV_FUZZ=ON (clang) as the libFuzzer binary fuzz_client.
 *
 * Seeds (tests/fuzz/corpus/client/) are written by this file compiled with
 * -DRDV_FUZZ_CLIENT_GENERATOR (CMake target client_fuzz_gen, not built by
 * default):
 *   cmake --build BUILD --target client_fuzz_gen
 *   BUILD/tests/fuzz/client_fuzz_gen tests/fuzz/corpus/client
 * Everything is deterministic (fixed keys, fixed RNG), so regenerating
 * gives the same files.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "client/nat/candidates.h"
#include "client/nat/path_wire.h"
#include "client/e2e.h"
#include "rendezvous/rendezvous.h"
#include "schema/stun.h"
#include "client/nat/stun_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODE_DWIRE 0
#define MODE_STUNC 1
#define MODE_CAND 2

#define JSON_MAX_BYTES 65536
#define JSON_MAX_DEPTH 32
#define STUNC_ROUNDS 12
#define STUNC_SETTLE_TICKS 1000
#define STUNC_LOCAL_IP "192.0.2.1"
#define STUNC_LOCAL_PORT 40000
#define STUN_PORT 3478
#define STUN_ALT_PORT 3479

/* ---- Deterministic libsodium RNG ---------------------------------------- */

static uint64_t rng_state;

static void rng_reset(void)
{
    rng_state = 0x243f6a8885a308d3ULL;
}

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *rng_name(void)
{
    return "rdv-fuzz-deterministic";
}

static uint32_t rng_random(void)
{
    return (uint32_t)rng_next();
}

static void rng_buf(void *const buf, const size_t size)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < size; i++)
        p[i] = (uint8_t)rng_next();
}

static randombytes_implementation rng_impl = {
    .implementation_name = rng_name,
    .random = rng_random,
    .stir = NULL,
    .uniform = NULL,
    .buf = rng_buf,
    .close = NULL,
};

/* ---- Fixed session ------------------------------------------------------ */

/* Us: the crypto_kx "server" (answered the offer); the peer: the
 * initiator. Both keypairs from fixed seeds. */
static const uint8_t SID[RDV__PATH_WIRE_SID_BYTES] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                                  0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

static struct {
    bool ready;
    rdv__e2e me;   /* our side: opens what the peer sends */
    rdv__e2e peer; /* the peer's side: seals what we open */
    uint8_t rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES]; /* verifies the peer's probes/acks */
    uint8_t peer_tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES];
} G;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_client: invariant violated: %s\n", what);
    abort();
}

static void setup(void)
{
    if (G.ready)
        return;
    if (randombytes_set_implementation(&rng_impl) != 0 || sodium_init() < 0)
        fail("libsodium init");
    uint8_t seed[crypto_kx_SEEDBYTES];
    rdv__e2e_keypair a, b; /* a: peer (initiator), b: us */
    memset(seed, 0xA1, sizeof(seed));
    crypto_kx_seed_keypair(a.pk, a.sk, seed);
    memset(seed, 0xB2, sizeof(seed));
    crypto_kx_seed_keypair(b.pk, b.sk, seed);
    if (rdv__e2e_init(&G.me, false, &b, a.pk, SID) != 0 ||
        rdv__e2e_init(&G.peer, true, &a, b.pk, SID) != 0)
        fail("e2e init");
    uint8_t my_tx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES], peer_rx_mac[RDV__PATH_WIRE_MAC_KEY_BYTES];
    rdv__path_wire_mac_keys(&G.me, my_tx_mac, G.rx_mac);
    rdv__path_wire_mac_keys(&G.peer, G.peer_tx_mac, peer_rx_mac);
    if (memcmp(G.rx_mac, G.peer_tx_mac, sizeof(G.rx_mac)) != 0 ||
        memcmp(my_tx_mac, peer_rx_mac, sizeof(my_tx_mac)) != 0)
        fail("MAC keys of the two sides");
    rdv__e2e_keypair_wipe(&a);
    rdv__e2e_keypair_wipe(&b);
    G.ready = true;
}

/* ---- Mode 0: direct-path datagrams -------------------------------------- */

static bool same_fields(const rdv__path_wire_probe_t *a, const rdv__path_wire_probe_t *b)
{
    return a->kind == b->kind && memcmp(a->sid, b->sid, sizeof(a->sid)) == 0 &&
           memcmp(a->txid, b->txid, sizeof(a->txid)) == 0 && a->flags == b->flags;
}

/* Family 6 carrying ::ffff:a.b.c.d (the builder would send family 4). */
static bool ack_v6_mapped(const uint8_t *buf)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return buf[30] == RDV__PATH_WIRE_FAMILY_V6 && memcmp(buf + 33, mapped, sizeof(mapped)) == 0;
}

/* Checks a PROBE or ACK that parsed (p) from buf. */
static void check_parsed(const uint8_t *buf, size_t len, const rdv__path_wire_probe_t *p)
{
    uint8_t re[RDV__PATH_WIRE_ACK_BYTES];
    bool canonical = (buf[29] & ~RDV__PATH_WIRE_F_KNOWN) == 0;
    if ((p->flags & ~RDV__PATH_WIRE_F_KNOWN) != 0 || p->kind != buf[0] ||
        memcmp(p->sid, buf + 1, RDV__PATH_WIRE_SID_BYTES) != 0)
        fail("parsed head");
    rdv__path_wire_probe_t again;
    if (p->kind == RDV__PATH_WIRE_PROBE) {
        if (len != RDV__PATH_WIRE_PROBE_BYTES || p->observed_len != 0)
            fail("probe length / observed");
        if (rdv__path_wire_probe(re, p->sid, p->txid, p->flags, G.rx_mac) != RDV__PATH_WIRE_PROBE_BYTES)
            fail("probe rebuild size");
        if (canonical && memcmp(re, buf, len) != 0)
            fail("probe round trip");
        if (rdv__path_wire_parse_probe(re, RDV__PATH_WIRE_PROBE_BYTES, G.rx_mac, &again) != 0 ||
            !same_fields(p, &again))
            fail("rebuilt probe parses to the same fields");
        return;
    }
    if (len != RDV__PATH_WIRE_ACK_BYTES || p->observed_len == 0)
        fail("ack length / observed");
    canonical = canonical && !ack_v6_mapped(buf);
    if (rdv__path_wire_ack(re, p->sid, p->txid, p->flags, (const struct sockaddr *)&p->observed,
                       p->observed_len, G.rx_mac) != RDV__PATH_WIRE_ACK_BYTES)
        fail("ack rebuild size");
    if (canonical && memcmp(re, buf, len) != 0)
        fail("ack round trip");
    if (rdv__path_wire_parse_ack(re, RDV__PATH_WIRE_ACK_BYTES, G.rx_mac, &again) != 0 ||
        !same_fields(p, &again))
        fail("rebuilt ack parses to the same fields");
    uint8_t re2[RDV__PATH_WIRE_ACK_BYTES];
    if (rdv__path_wire_ack(re2, again.sid, again.txid, again.flags,
                       (const struct sockaddr *)&again.observed, again.observed_len,
                       G.rx_mac) != RDV__PATH_WIRE_ACK_BYTES ||
        memcmp(re, re2, sizeof(re)) != 0)
        fail("ack rebuild is canonical");
}

/* The parsers on buf (len bytes, exactly allocated). */
static void dwire_parse(const uint8_t *buf, size_t len)
{
    int kind = rdv__path_wire_kind(buf, len);
    uint8_t sid[RDV__PATH_WIRE_SID_BYTES];
    int rs = rdv__path_wire_sid(buf, len, sid);
    if (kind != 0 && kind != RDV__PATH_WIRE_PROBE && kind != RDV__PATH_WIRE_ACK &&
        kind != RDV__PATH_WIRE_DATA)
        fail("kind value");
    if ((kind == 0) != (rs != 0) || (rs == 0 && memcmp(sid, buf + 1, sizeof(sid)) != 0))
        fail("sid vs kind");

    rdv__path_wire_probe_t p;
    int rc = rdv__path_wire_parse_probe(buf, len, G.rx_mac, &p);
    if (rc == 0)
        check_parsed(buf, len, &p);
    else if (rc != RDV_ERR_FORMAT && rc != RDV_ERR_DECRYPT)
        fail("parse_probe error code");
    rc = rdv__path_wire_parse_ack(buf, len, G.rx_mac, &p);
    if (rc == 0)
        check_parsed(buf, len, &p);
    else if (rc != RDV_ERR_FORMAT && rc != RDV_ERR_DECRYPT)
        fail("parse_ack error code");
}

static void dwire_data(const uint8_t *buf, size_t len)
{
    rdv__e2e me = G.me;
    size_t cap = len > RDV__PATH_WIRE_DATA_OVERHEAD ? len - RDV__PATH_WIRE_DATA_OVERHEAD : 1;
    uint8_t *out = malloc(cap);
    if (!out)
        return;
    int64_t n = rdv__path_wire_data_open(&me, buf, len, out);
    if (n >= 0) {
        if (len < RDV__PATH_WIRE_DATA_MIN_BYTES || (size_t)n != len - RDV__PATH_WIRE_DATA_OVERHEAD ||
            rdv__path_wire_kind(buf, len) != RDV__PATH_WIRE_DATA)
            fail("data_open length");
        if (rdv__path_wire_data_open(&me, buf, len, out) != RDV_ERR_DUPLICATE)
            fail("data replay accepted");
    } else if (n != RDV_ERR_FORMAT && n != RDV_ERR_DECRYPT && n != RDV_ERR_DUPLICATE) {
        fail("data_open error code");
    }
    free(out);
}

/* Seals buf[17..len) (the part after a DATA header) with the peer's state
 * at the counter of the input's e2e header, and opens it. */
static void dwire_seal_open(const uint8_t *buf, size_t len)
{
    if (len < RDV__PATH_WIRE_DATA_HDR_BYTES)
        return;
    const uint8_t *pt = buf + RDV__PATH_WIRE_DATA_HDR_BYTES;
    size_t ptlen = len - RDV__PATH_WIRE_DATA_HDR_BYTES;
    rdv__e2e peer = G.peer, me = G.me;
    peer.tx_next = rdv__e2e_packet_counter(pt, ptlen);
    uint8_t *pkt = malloc(ptlen + RDV__PATH_WIRE_DATA_OVERHEAD);
    uint8_t *back = malloc(ptlen ? ptlen : 1);
    if (!pkt || !back) {
        free(pkt);
        free(back);
        return;
    }
    int64_t n = rdv__path_wire_data_seal(&peer, SID, pt, ptlen, pkt);
    if (peer.tx_next == UINT64_MAX && n == RDV_ERR_LIMIT) {
        /* the last counter is never used */
    } else if (n != (int64_t)(ptlen + RDV__PATH_WIRE_DATA_OVERHEAD)) {
        fail("data_seal length");
    } else {
        if (rdv__path_wire_data_open(&me, pkt, (size_t)n, back) != (int64_t)ptlen ||
            (ptlen && memcmp(back, pt, ptlen) != 0))
            fail("seal/open round trip");
        if (rdv__path_wire_data_open(&me, pkt, (size_t)n, back) != RDV_ERR_DUPLICATE)
            fail("sealed packet replay accepted");
    }
    free(pkt);
    free(back);
}

static void fuzz_dwire(const uint8_t *buf, size_t len)
{
    dwire_parse(buf, len);
    dwire_data(buf, len);
    /* The forged copy: the MAC recomputed over the bytes before it. */
    size_t mac_off = len == RDV__PATH_WIRE_PROBE_BYTES ? RDV__PATH_WIRE_PROBE_BYTES - RDV__PATH_WIRE_MAC_BYTES
                     : len == RDV__PATH_WIRE_ACK_BYTES ? RDV__PATH_WIRE_ACK_BYTES - RDV__PATH_WIRE_MAC_BYTES
                                                   : 0;
    if (mac_off) {
        uint8_t *f = malloc(len);
        if (f) {
            memcpy(f, buf, len);
            crypto_generichash(f + mac_off, RDV__PATH_WIRE_MAC_BYTES, f, mac_off, G.rx_mac,
                               sizeof(G.rx_mac));
            dwire_parse(f, len);
            free(f);
        }
    }
    if (len > 0 && buf[0] == RDV__PATH_WIRE_DATA)
        dwire_seal_open(buf, len);
}

/* ---- Mode 1: STUN client engine ----------------------------------------- */

static int stunc_send(void *ctx, const uint8_t *buf, size_t len, const struct sockaddr *to,
                      socklen_t tolen)
{
    (void)ctx;
    (void)buf;
    (void)to;
    (void)tolen;
    return (int)len;
}

static socklen_t mk4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(port);
    inet_pton(AF_INET, ip, &s4.sin_addr);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &s4, sizeof(s4));
    return (socklen_t)sizeof(s4);
}

/* Writes FINGERPRINT again when buf ends with one (after a TID patch). */
static void fix_fingerprint(uint8_t *buf, size_t len)
{
    if (len < RDV_STUN_HEADER_BYTES + 8)
        return;
    uint8_t *a = buf + len - 8;
    if (a[0] != 0x80 || a[1] != 0x28 || a[2] != 0 || a[3] != 4)
        return;
    uint32_t v = rdv_stun_crc32(buf, len - 8) ^ RDV_STUN_FINGERPRINT_XOR;
    a[4] = (uint8_t)(v >> 24);
    a[5] = (uint8_t)(v >> 16);
    a[6] = (uint8_t)(v >> 8);
    a[7] = (uint8_t)v;
}

static void check_result(const rdv__stun_client *s)
{
    const rdv__stun_client_result *r = rdv__stun_client_get_result(s);
    if ((int)r->nat < RDV_NAT_UNKNOWN || (int)r->nat > RDV_NAT_SYMMETRIC)
        fail("nat out of range");
    if ((int)r->mapping < RDV__STUN_CLIENT_UNTESTED || (int)r->mapping > RDV__STUN_CLIENT_ADDRESS_PORT ||
        (int)r->filtering < RDV__STUN_CLIENT_UNTESTED || (int)r->filtering > RDV__STUN_CLIENT_ADDRESS_PORT)
        fail("behaviour out of range");
    if (memchr(r->method, '\0', sizeof(r->method)) == NULL ||
        memchr(r->error_text, '\0', sizeof(r->error_text)) == NULL)
        fail("text not NUL-terminated");
    if (r->server_index < -1 || r->server_index > 1)
        fail("server_index out of range");
    if (r->running && r->done)
        fail("running and done");
    if (r->error != 0 && r->error != RDV_ERR_TIMEOUT && r->error != RDV_ERR_SERVER)
        fail("error code");
    if (r->error != 0 && (r->mapped_known || r->nat != RDV_NAT_UNKNOWN))
        fail("error with a result");
    if (r->mapped_known) {
        if (r->server_index < 0)
            fail("mapped without a server");
        if (!(r->mapped.ss_family == AF_INET &&
              r->mapped_len == (socklen_t)sizeof(struct sockaddr_in)) &&
            !(r->mapped.ss_family == AF_INET6 &&
              r->mapped_len == (socklen_t)sizeof(struct sockaddr_in6)))
            fail("mapped address family / length");
    }
    /* A type before the end only once the mapping is decided (the type
     * so far, stun_client.h), and that needs Test I's answer. */
    if (r->nat != RDV_NAT_UNKNOWN && !r->done && !r->mapping_decided)
        fail("nat decided before done or the mapping");
    if (r->mapping_decided && !r->mapped_known)
        fail("mapping decided without a mapped address");
}

/* One run: RFC 5780's order on one socket, or (par) the filtering tests
 * on a second one beside the mapping test (cfg.send_aux). */
static void fuzz_stunc_mode(const uint8_t *buf, size_t len, bool par)
{
    rng_reset();
    struct sockaddr_storage servers[2], local, from[4];
    socklen_t lens[2], local_len, from_len[4];
    lens[0] = mk4(&servers[0], "127.0.0.1", STUN_PORT);
    lens[1] = mk4(&servers[1], "127.0.0.2", STUN_PORT);
    local_len = mk4(&local, STUNC_LOCAL_IP, STUNC_LOCAL_PORT);
    from_len[0] = mk4(&from[0], "127.0.0.1", STUN_PORT);
    from_len[1] = mk4(&from[1], "127.0.0.2", STUN_PORT);
    from_len[2] = mk4(&from[2], "127.0.0.3", STUN_ALT_PORT);
    from_len[3] = mk4(&from[3], "127.0.0.1", STUN_ALT_PORT);

    rdv__stun_client_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.servers = servers;
    cfg.server_lens = lens;
    cfg.nservers = 2;
    cfg.send = stunc_send;
    cfg.send_aux = par ? stunc_send : NULL;
    cfg.software = "rdv-fuzz";
    cfg.local = (const struct sockaddr *)&local;
    cfg.local_len = local_len;
    rdv__stun_client *s = malloc(sizeof(*s));
    uint8_t *patched = malloc(len ? len : 1);
    if (!s || !patched) {
        free(s);
        free(patched);
        return;
    }
    if (rdv__stun_client_init(s, &cfg) != 0)
        fail("stunc init");
    int64_t now = 1000;
    rdv__stun_client_start(s, now);
    check_result(s);
    bool refreshed = false;
    for (int round = 0; round < STUNC_ROUNDS; round++) {
        for (size_t f = 0; f < 4; f++) {
            (void)rdv__stun_client_on_packet(s, buf, len, (const struct sockaddr *)&from[f],
                                       from_len[f], now);
            check_result(s);
            /* TIDs first: feeding changes the transactions. */
            uint8_t tids[RDV__STUN_CLIENT_MAX_TX][RDV_STUN_TID_BYTES];
            size_t nt = 0;
            for (size_t i = 0; i < RDV__STUN_CLIENT_MAX_TX; i++)
                if (s->tx[i].active)
                    memcpy(tids[nt++], s->tx[i].tid, RDV_STUN_TID_BYTES);
            for (size_t i = 0; i < nt && len >= RDV_STUN_HEADER_BYTES; i++) {
                memcpy(patched, buf, len);
                memcpy(patched + 8, tids[i], RDV_STUN_TID_BYTES);
                fix_fingerprint(patched, len);
                (void)rdv__stun_client_on_packet(s, patched, len, (const struct sockaddr *)&from[f],
                                           from_len[f], now);
                check_result(s);
            }
        }
        if (rdv__stun_client_get_result(s)->done && !refreshed) {
            int rc = rdv__stun_client_refresh(s, now);
            if (rc != 0 && rc != RDV_ERR_STATE)
                fail("refresh return");
            refreshed = true;
        }
        int64_t next = rdv__stun_client_tick(s, now);
        check_result(s);
        if (next <= now && next != INT64_MAX)
            fail("tick asks to be called in the past");
        /* Alternate between small steps and jumping to the next due time. */
        now = next == INT64_MAX || (round & 1) ? now + 100 : next;
    }
    /* Nothing answers any more: discovery must end. */
    int k = 0;
    for (; k < STUNC_SETTLE_TICKS; k++) {
        int64_t next = rdv__stun_client_tick(s, now);
        check_result(s);
        if (next == INT64_MAX)
            break;
        if (next <= now)
            fail("tick asks to be called in the past");
        now = next;
    }
    const rdv__stun_client_result *r = rdv__stun_client_get_result(s);
    if (k == STUNC_SETTLE_TICKS || !r->done || r->running)
        fail("discovery does not finish");
    if (r->elapsed_ms < 0)
        fail("elapsed_ms");
    free(patched);
    free(s);
}

static void fuzz_stunc(const uint8_t *buf, size_t len)
{
    fuzz_stunc_mode(buf, len, false);
    fuzz_stunc_mode(buf, len, true);
}

/* ---- Mode 2: candidate JSON --------------------------------------------- */

/* Nesting depth of JSON text (brackets outside strings). */
static int json_depth(const uint8_t *buf, size_t len)
{
    int d = 0, max = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '[' || c == '{') {
            if (++d > max)
                max = d;
        } else if ((c == ']' || c == '}') && d > 0) {
            d--;
        }
    }
    return max;
}

/* Family, port and IP bytes of a candidate address. */
static bool addr_key(const struct sockaddr_storage *ss, socklen_t len, uint8_t key[19])
{
    memset(key, 0, 19);
    if (ss->ss_family == AF_INET && len == (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in s4;
        memcpy(&s4, ss, sizeof(s4));
        key[0] = 4;
        memcpy(key + 1, &s4.sin_port, 2);
        memcpy(key + 3, &s4.sin_addr, 4);
        return true;
    }
    if (ss->ss_family == AF_INET6 && len == (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 s6;
        memcpy(&s6, ss, sizeof(s6));
        key[0] = 6;
        memcpy(key + 1, &s6.sin6_port, 2);
        memcpy(key + 3, &s6.sin6_addr, 16);
        return true;
    }
    return false;
}

static void cand_one(const json_t *v)
{
    rdv__cand c;
    if (rdv__cand_from_json(v, &c) != 0)
        return;
    if (!rdv__cand_addr_usable((const struct sockaddr *)&c.addr, c.addr_len))
        fail("accepted candidate address not usable");
    if (c.foundation[0] == '\0' || memchr(c.foundation, '\0', sizeof(c.foundation)) == NULL)
        fail("foundation");
    json_t *j = rdv__cand_to_json(&c);
    if (j == NULL)
        fail("to_json of an accepted candidate");
    rdv__cand d;
    if (rdv__cand_from_json(j, &d) != 0)
        fail("to_json output not accepted");
    json_decref(j);
    uint8_t ka[19], kb[19];
    if (!addr_key(&c.addr, c.addr_len, ka) || !addr_key(&d.addr, d.addr_len, kb) ||
        memcmp(ka, kb, sizeof(ka)) != 0)
        fail("address round trip");
    if (c.type != d.type || c.priority != d.priority)
        fail("type / priority round trip");
    if (strcmp(c.foundation, d.foundation) != 0)
        fail("foundation round trip");
    if (c.base_len != d.base_len ||
        (c.base_len && (!addr_key(&c.base, c.base_len, ka) ||
                        !addr_key(&d.base, d.base_len, kb) || memcmp(ka, kb, sizeof(ka)) != 0)))
        fail("related address round trip");
}

static void fuzz_cand(const uint8_t *buf, size_t len)
{
    if (len > JSON_MAX_BYTES || json_depth(buf, len) > JSON_MAX_DEPTH)
        return;
    json_error_t err;
    json_t *root = json_loadb((const char *)buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (root == NULL)
        return;
    cand_one(root);
    if (json_is_object(root)) {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
            cand_one(v);
    } else if (json_is_array(root)) {
        size_t i;
        json_t *v;
        json_array_foreach(root, i, v)
            cand_one(v);
    }
    json_decref(root);
}

/* ---- Entry point -------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    setup();
    /* An exact-size copy, so ASan sees any over-read in replay mode too. */
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, n);
    switch (data[0]) {
    case MODE_DWIRE: fuzz_dwire(buf, n); break;
    case MODE_STUNC: fuzz_stunc(buf, n); break;
    case MODE_CAND: fuzz_cand(buf, n); break;
    default: break;
    }
    free(buf);
    return 0;
}

/* ---- Seed generator ----------------------------------------------------- */

#ifdef RDV_FUZZ_CLIENT_GENERATOR

static const char *out_dir;

static void put_seed(const char *name, uint8_t mode, const void *body, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputc(mode, f) == EOF || (len && fwrite(body, 1, len, f) != len) ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void gen_dwire(void)
{
    static const uint8_t txid[RDV__PATH_WIRE_TXID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t pkt[256];
    rdv__path_wire_probe_t p;

    size_t n = rdv__path_wire_probe(pkt, SID, txid, RDV__PATH_WIRE_F_INITIATOR | RDV__PATH_WIRE_F_NOMINATE,
                                G.peer_tx_mac);
    if (rdv__path_wire_parse_probe(pkt, n, G.rx_mac, &p) != 0)
        fail("gen probe");
    put_seed("00_dwire_probe", MODE_DWIRE, pkt, n);

    /* A probe from a newer peer: an unknown flag bit under a valid MAC. */
    pkt[29] |= 0x80;
    crypto_generichash(pkt + 30, RDV__PATH_WIRE_MAC_BYTES, pkt, 30, G.peer_tx_mac,
                       sizeof(G.peer_tx_mac));
    put_seed("01_dwire_probe_unknown_flag", MODE_DWIRE, pkt, n);

    struct sockaddr_storage ss;
    socklen_t sl = mk4(&ss, "198.51.100.23", 61000);
    n = rdv__path_wire_ack(pkt, SID, txid, RDV__PATH_WIRE_F_NOMINATE, (const struct sockaddr *)&ss, sl,
                       G.peer_tx_mac);
    if (n == 0 || rdv__path_wire_parse_ack(pkt, n, G.rx_mac, &p) != 0)
        fail("gen ack v4");
    put_seed("02_dwire_ack_v4", MODE_DWIRE, pkt, n);

    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(51820);
    inet_pton(AF_INET6, "2001:db8:85a3::8a2e:370:7334", &s6.sin6_addr);
    n = rdv__path_wire_ack(pkt, SID, txid, RDV__PATH_WIRE_F_INITIATOR, (const struct sockaddr *)&s6,
                       sizeof(s6), G.peer_tx_mac);
    if (n == 0 || rdv__path_wire_parse_ack(pkt, n, G.rx_mac, &p) != 0)
        fail("gen ack v6");
    put_seed("03_dwire_ack_v6", MODE_DWIRE, pkt, n);

    /* Family 6 carrying an IPv4-mapped address (not what we send). */
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 9};
    memcpy(pkt + 33, mapped, sizeof(mapped));
    crypto_generichash(pkt + 49, RDV__PATH_WIRE_MAC_BYTES, pkt, 49, G.peer_tx_mac,
                       sizeof(G.peer_tx_mac));
    if (rdv__path_wire_parse_ack(pkt, n, G.rx_mac, &p) != 0)
        fail("gen ack v6 mapped");
    put_seed("04_dwire_ack_v6_mapped", MODE_DWIRE, pkt, n);

    static const char msg[] = "hello over the direct path";
    rdv__e2e peer = G.peer;
    int64_t m = rdv__path_wire_data_seal(&peer, SID, (const uint8_t *)msg, sizeof(msg) - 1, pkt);
    rdv__e2e me = G.me;
    uint8_t back[sizeof(msg)];
    if (m <= 0 || rdv__path_wire_data_open(&me, pkt, (size_t)m, back) != (int64_t)sizeof(msg) - 1)
        fail("gen data");
    put_seed("05_dwire_data", MODE_DWIRE, pkt, (size_t)m);
}

/* A Binding response carrying Test I's transaction ID (the engine's first
 * draw from the reset RNG): a 500 error, or a success with the mapped
 * address (IPv6 when `v6`) as XOR-MAPPED-ADDRESS or MAPPED-ADDRESS
 * (`plain_mapped`), OTHER-ADDRESS 127.0.0.3:3479 and RESPONSE-ORIGIN when
 * `other`, FINGERPRINT when `fingerprint`. */
static void gen_stun_response(const char *name, bool error, const char *mapped_ip,
                              uint16_t mapped_port, bool v6, bool plain_mapped,
                              bool other, bool fingerprint)
{
    uint8_t tid[RDV_STUN_TID_BYTES];
    rng_reset();
    randombytes_buf(tid, sizeof(tid)); /* the engine's first draw: Test I */
    uint8_t out[512];
    rdv_stun_writer w;
    rdv_stun_begin(&w, out, sizeof(out), error ? RDV_STUN_BINDING_ERROR : RDV_STUN_BINDING_SUCCESS,
                   RDV_STUN_MAGIC_COOKIE, tid);
    if (error) {
        rdv_stun_put_error_code(&w, 500, NULL);
    } else {
        rdv_stun_addr a;
        memset(&a, 0, sizeof(a));
        a.family = v6 ? RDV_STUN_FAMILY_IPV6 : RDV_STUN_FAMILY_IPV4;
        a.port = mapped_port;
        inet_pton(v6 ? AF_INET6 : AF_INET, mapped_ip, a.addr);
        if (plain_mapped)
            rdv_stun_put_addr(&w, RDV_STUN_ATTR_MAPPED_ADDRESS, &a);
        else
            rdv_stun_put_xor_addr(&w, RDV_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
        if (other) {
            rdv_stun_addr o;
            memset(&o, 0, sizeof(o));
            o.family = RDV_STUN_FAMILY_IPV4;
            o.port = STUN_ALT_PORT;
            inet_pton(AF_INET, "127.0.0.3", o.addr);
            rdv_stun_put_addr(&w, RDV_STUN_ATTR_OTHER_ADDRESS, &o);
            rdv_stun_addr ro;
            memset(&ro, 0, sizeof(ro));
            ro.family = RDV_STUN_FAMILY_IPV4;
            ro.port = STUN_PORT;
            inet_pton(AF_INET, "127.0.0.1", ro.addr);
            rdv_stun_put_addr(&w, RDV_STUN_ATTR_RESPONSE_ORIGIN, &ro);
        }
        rdv_stun_put(&w, RDV_STUN_ATTR_SOFTWARE, "rdv-fuzz-seed", 13);
    }
    if (fingerprint)
        rdv_stun_put_fingerprint(&w);
    int n = rdv_stun_finish(&w);
    rdv_stun_msg m;
    if (n <= 0 || rdv_stun_parse(out, (size_t)n, &m) != n)
        fail("gen stun");
    put_seed(name, MODE_STUNC, out, (size_t)n);
}

static void gen_stun(void)
{
    gen_stun_response("10_stun_success_xor_other", false, "203.0.113.5", 50000, false, false,
                      true, true);
    gen_stun_response("11_stun_success_no_nat", false, STUNC_LOCAL_IP, STUNC_LOCAL_PORT, false,
                      false, true, true);
    gen_stun_response("12_stun_success_mapped_only", false, "203.0.113.5", 50000, false, true,
                      false, false);
    gen_stun_response("13_stun_success_xor_v6", false, "2001:db8::5", 50000, true, false, true,
                      true);
    gen_stun_response("14_stun_error_500", true, NULL, 0, false, false, false, true);
}

static void gen_cand(void)
{
    static const struct {
        const char *name, *json;
    } seeds[] = {
        {"20_cand_host_v4",
         "{\"ip\":\"192.168.1.20\",\"port\":40000,\"type\":\"host\",\"priority\":2130706431,"
         "\"foundation\":\"1a2b3c4d\"}"},
        {"21_cand_srflx_v4",
         "{\"ip\":\"203.0.113.5\",\"port\":50000,\"type\":\"serverReflexive\","
         "\"priority\":1694498815,\"relatedIP\":\"192.168.1.20\",\"relatedPort\":40000}"},
        {"22_cand_host_v6",
         "{\"ip\":\"2001:db8::20\",\"port\":40001,\"type\":\"host\",\"priority\":2130714623,"
         "\"foundation\":\"abc+/XYZ\"}"},
        {"23_cand_prflx_mapped",
         "{\"ip\":\"::ffff:198.51.100.7\",\"port\":1,\"type\":\"peerReflexive\","
         "\"priority\":1862270975,\"relatedIP\":\"0.0.0.0\",\"relatedPort\":0}"},
        {"24_cand_relayed",
         "{\"ip\":\"198.51.100.99\",\"port\":65535,\"type\":\"relayed\",\"priority\":0,"
         "\"relatedIP\":\"2001:db8::1\",\"relatedPort\":3478,\"extra\":[1,2,{\"x\":null}]}"},
        {"25_cand_object_of_candidates",
         "{\"a\":{\"ip\":\"127.0.0.1\",\"port\":9,\"type\":\"host\",\"priority\":4294967295},"
         "\"b\":{\"ip\":\"0.0.0.0\",\"port\":9,\"type\":\"host\",\"priority\":1},"
         "\"c\":{\"ip\":\"fe80::1\",\"port\":9,\"type\":\"host\",\"priority\":1}}"},
        {"26_cand_array",
         "[{\"ip\":\"10.0.0.1\",\"port\":1234,\"type\":\"host\",\"priority\":1e3},"
         "{\"ip\":\"10.0.0.1\\u0000\",\"port\":1234,\"type\":\"host\",\"priority\":1},"
         "{\"ip\":\"10.0.0.2\",\"port\":70000,\"type\":\"host\",\"priority\":-1},"
         "\"host\",null,true,3.5]"},
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        put_seed(seeds[i].name, MODE_CAND, seeds[i].json, strlen(seeds[i].json));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    setup();
    gen_dwire();
    gen_stun();
    gen_cand();
    return 0;
}

#endif /* RDV_FUZZ_CLIENT_GENERATOR */
