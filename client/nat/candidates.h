/* candidates.h - ICE candidates (internal; never installed): host gathering,
 * RFC 8445 priorities and foundations, and the PROTOCOL.md 3.2 candidate
 * JSON object.
 *
 * A candidate is one UDP transport address a peer may try: its type, the
 * address, its base (the related address of a reflexive or relayed
 * candidate), its priority and its foundation. The client has one UDP
 * socket per family, so there is one component (1) and the base of a
 * reflexive candidate is the host address of that socket.
 *
 * Priority (RFC 8445 5.1.2.1):
 *     (2^24) * type_pref + (2^8) * local_pref + (256 - component)
 * with the RFC 8445 5.1.2.2 type preferences host 126, peer-reflexive 110,
 * server-reflexive 100, relayed 0.
 *
 * Local preference of host candidates (RFC 8421-ish, see
 * rdv__cand_host_local_pref): the top 3 bits rank the address class, the
 * low 13 bits distinguish interfaces (earlier in the gathering order is
 * higher), so every host candidate of one gathering gets a distinct value
 * and a global IPv6 address always beats IPv4. Classes, best first
 * (RFC 6724 2.1 policy table order, loopback last since it only reaches
 * this host):
 *     6  IPv6 global unicast (not ULA, 6to4 or Teredo)
 *     5  IPv4 (not link-local, not loopback)
 *     4  IPv6 6to4 (2002::/16)
 *     3  IPv6 unique local (fc00::/7)
 *     2  IPv6 Teredo (2001::/32), IPv4 link-local (169.254/16)
 *     1  loopback (127/8, ::1)
 *
 * Foundation (RFC 8445 5.1.1.3): equal for candidates of the same type and
 * the same base IP (one STUN server set, one transport): 8 lowercase hex
 * digits of a 32-bit FNV-1a hash of (type, base IP bytes). Stable across
 * runs and hosts.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are stored as IPv4
 * everywhere here, so one address has one representation.
 */
#ifndef RDV_CLIENT_CAND_H
#define RDV_CLIENT_CAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>

#define RDV__CAND_FOUNDATION_MAX 32     /* PROTOCOL.md 3.2 / RFC 8445 15.1 */
#define RDV__CAND_COMPONENT 1           /* one component: the UDP socket */
#define RDV__CAND_TYPEPREF_HOST 126     /* RFC 8445 5.1.2.2 */
#define RDV__CAND_TYPEPREF_PRFLX 110
#define RDV__CAND_TYPEPREF_SRFLX 100
#define RDV__CAND_TYPEPREF_RELAYED 0
#define RDV__CAND_LOCALPREF_MAX 65535u
#define RDV__CAND_CLASS_SHIFT 13        /* local_pref = class << 13 | rank */
#define RDV__CAND_RANK_MAX 8191u        /* (1 << 13) - 1 */
/* "ip:port" / "[ip]:port" text of rdv__addr_to_text, with the NUL:
 * 45 (INET6_ADDRSTRLEN - 1) + 2 brackets + ":" + 5 digits + NUL. */
#define RDV__ADDR_TEXT_MAX 54
/* Longest IP text in the JSON object (PROTOCOL.md 3, IP). */
#define RDV__CAND_IP_TEXT_MAX 45

typedef enum {
    RDV__CAND_HOST,
    RDV__CAND_SRFLX,
    RDV__CAND_PRFLX,
    RDV__CAND_RELAYED
} rdv__cand_type;

typedef struct rdv__cand {
    rdv__cand_type type;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct sockaddr_storage base; /* related address (srflx/prflx/relayed) */
    socklen_t base_len;           /* 0: none */
    uint32_t priority;
    char foundation[RDV__CAND_FOUNDATION_MAX + 1];
    bool port_mapped;             /* a gateway mapping (portmap.h): the
                                   * JSON member "portMapped": true */
} rdv__cand;

/* RFC 8445 5.1.2.1 priority of a candidate of type `t` with local
 * preference `local_pref` for component `component` (1..256; a larger
 * value counts as 256, 0 as 1). An unknown type has type preference 0. */
uint32_t rdv__cand_priority(rdv__cand_type t, uint16_t local_pref, unsigned component);

/* The local preference of a host candidate on address `sa` (AF_INET /
 * AF_INET6) that is the `rank`-th (0 = first) of its gathering: address
 * class << 13 | (8191 - min(rank, 8191)); classes in the header comment.
 * An unknown family gets 0. */
uint16_t rdv__cand_host_local_pref(const struct sockaddr *sa, unsigned rank);

/* The wire name of a type: "host", "serverReflexive", "peerReflexive",
 * "relayed"; "unknown" for a value outside the enum. */
const char *rdv__cand_type_name(rdv__cand_type t);

/* Parses a wire type name into *out. Returns 0 or RDV_ERR_FORMAT. */
int rdv__cand_type_from_name(const char *name, rdv__cand_type *out);

/* True when `sa` may be used as a remote candidate address, i.e. one we
 * would send probes to: AF_INET / AF_INET6 (IPv4-mapped IPv6 judged as
 * IPv4), port non-zero, and not unspecified (0.0.0.0/8, ::), multicast
 * (224.0.0.0/4, ff00::/8), broadcast or reserved (240.0.0.0/4, which
 * holds 255.255.255.255) or IPv6 link-local (fe80::/10: unusable without
 * a zone). Loopback is allowed (same-host peers and tests). */
bool rdv__cand_addr_usable(const struct sockaddr *sa, socklen_t len);

/* True when `ss` is a global unicast IPv6 address a peer elsewhere can
 * reach without NAT (2000::/3, not Teredo 2001::/32 nor 6to4 2002::/16):
 * two such hosts behind stateful firewalls punch a hole like two
 * port-restricted cones, whatever their IPv4 NATs are. */
bool rdv__cand_addr_global_v6(const struct sockaddr_storage *ss);

/* Fills *out with a candidate of type `t` on address addr (len bytes,
 * AF_INET / AF_INET6) whose base is `base` (NULL / 0: none), priority
 * rdv__cand_priority(t, local_pref, RDV__CAND_COMPONENT) and the
 * foundation of (t, base IP, or addr's IP when there is no base).
 * IPv4-mapped IPv6 addresses are stored as IPv4. The port is not checked
 * (a base may have port 0). Returns 0, or RDV_ERR_INVALID (NULL pointer,
 * unknown type or family, length too short); *out is zeroed then. */
int rdv__cand_make(rdv__cand_type t, const struct sockaddr *addr, socklen_t len,
                   const struct sockaddr *base, socklen_t base_len, uint16_t local_pref,
                   rdv__cand *out) __attribute__((warn_unused_result));

/* Gathers the host candidates of this machine (getifaddrs) into
 * out[0..cap): the IPv4 address of every UP interface with port `port4`
 * and, when port6 != 0, the global and unique-local IPv6 addresses with
 * port `port6`. Skipped: 0.0.0.0, IPv6 link-local (fe80::/10),
 * multicast, IPv4-mapped, IPv6 addresses the kernel marks deprecated,
 * tentative or DAD-failed (/proc/net/if_inet6, when readable), and
 * loopback, except that with `include_loopback` 127.0.0.1 (if port4 != 0)
 * and ::1 (if port6 != 0) are gathered. port4 == 0 skips IPv4 likewise.
 * Duplicate addresses are gathered once. Local preferences per
 * rdv__cand_host_local_pref (rank = getifaddrs order); the result is
 * sorted by priority, highest first. Stops silently when `cap` candidates
 * are gathered (out may be NULL when cap is 0). Returns the count, or
 * RDV_ERR_IO when getifaddrs fails, RDV_ERR_INVALID for out NULL with
 * cap > 0. */
int rdv__cand_gather_host(uint16_t port4, uint16_t port6, bool include_loopback,
                          rdv__cand *out, size_t cap);

/* The PROTOCOL.md 3.2 object of `c`: ip (no brackets, no zone), port,
 * type, priority, foundation (when not empty), relatedIP / relatedPort
 * (when the base is set), portMapped true (when port_mapped). Returns a new reference, or NULL on allocation
 * failure or an invalid candidate (unknown type or family). */
json_t *rdv__cand_to_json(const rdv__cand *c);

/* Reads a PROTOCOL.md 3.2 object `o` into *out. Checks: o is an object;
 * "ip" a string that inet_pton parses as IPv4 or IPv6 (at most 45
 * characters) and that rdv__cand_addr_usable accepts with the port;
 * "port" an integer 1..65535; "type" one of the four names; "priority" an
 * integer 0..2^32-1; "foundation", if present, 1..32 RFC 8445 ice-chars
 * (ALPHA / DIGIT / "+" / "/"); "relatedIP" / "relatedPort", if present, a
 * parseable IP and an integer 0..65535 (relatedIP 0.0.0.0 / :: or absent
 * means no base); "portMapped", if present, a boolean (port_mapped). Without a
 * foundation one is computed as for rdv__cand_make. Unknown members are
 * ignored. Returns 0, or
 * RDV_ERR_FORMAT (*out zeroed). */
int rdv__cand_from_json(const json_t *o, rdv__cand *out)
    __attribute__((warn_unused_result));

/* Writes "ip:port" (IPv4) or "[ip]:port" (IPv6, without zone) of `sa`
 * into buf[0..cap) (RDV__ADDR_TEXT_MAX is always enough). Returns 0, or
 * RDV_ERR_INVALID (NULL, unknown family, cap too small; buf gets "" when
 * cap > 0). */
int rdv__addr_to_text(const struct sockaddr *sa, char *buf, size_t cap);

/* The IP text (no brackets, no zone; IPv4-mapped as IPv4) of an AF_INET /
 * AF_INET6 address into buf, and its port into *port (may be NULL).
 * Returns false for another family. */
bool rdv__addr_ip_text(const struct sockaddr_storage *ss, char buf[INET6_ADDRSTRLEN],
                       uint16_t *port);

/* True when a and b are the same AF_INET / AF_INET6 address and port
 * (false for any other family). */
bool rdv__addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* True when a and b are AF_INET / AF_INET6 addresses with the same IP
 * (ports ignored; IPv4-mapped IPv6 equals its IPv4). */
bool rdv__addr_ip_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* The port of an AF_INET / AF_INET6 address (host order). */
uint16_t rdv__addr_port(const struct sockaddr_storage *a);

/* Sets the port of an AF_INET / AF_INET6 address. */
void rdv__addr_set_port(struct sockaddr_storage *a, uint16_t port);

/* Sorts c[0..n) by priority, highest first; equal priorities keep their
 * order (stable insertion sort: n is small, a gathering or a peer's
 * candidate list). */
void rdv__cand_sort(rdv__cand *c, size_t n);

#endif
