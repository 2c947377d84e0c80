/* candidates.c - ICE candidates: RFC 8445 priorities and foundations, host
 * gathering with getifaddrs(), and the PROTOCOL.md 3.2 JSON object. The
 * rules are in candidates.h.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "client/nat/candidates.h"
#include "schema/message.h"
#include "rendezvous/rendezvous.h"

/* Address classes of the host local preference (candidates.h). */
enum {
    CLASS_LOOPBACK = 1,
    CLASS_LOW = 2,      /* Teredo, IPv4 link-local */
    CLASS_ULA = 3,
    CLASS_6TO4 = 4,
    CLASS_IPV4 = 5,
    CLASS_V6_GLOBAL = 6
};

/* /proc/net/if_inet6 flags (linux/if_addr.h IFA_F_*). */
#define IFA_FLAG_DADFAILED 0x08u
#define IFA_FLAG_DEPRECATED 0x20u
#define IFA_FLAG_TENTATIVE 0x40u
#define IF_INET6_PATH "/proc/net/if_inet6"
#define IF_INET6_MAX_LINES 4096 /* bound on the scan of that file */

#define FNV32_OFFSET 2166136261u
#define FNV32_PRIME 16777619u

_Static_assert(RDV__CAND_LOCALPREF_MAX >> RDV__CAND_CLASS_SHIFT >= CLASS_V6_GLOBAL,
               "classes fit the top bits of the local preference");
_Static_assert(RDV__ADDR_TEXT_MAX >= INET6_ADDRSTRLEN + 2 + 6, "room for [ip]:port");

uint32_t rdv__cand_priority(rdv__cand_type t, uint16_t local_pref, unsigned component)
{
    uint32_t type_pref;
    switch (t) {
    case RDV__CAND_HOST: type_pref = RDV__CAND_TYPEPREF_HOST; break;
    case RDV__CAND_PRFLX: type_pref = RDV__CAND_TYPEPREF_PRFLX; break;
    case RDV__CAND_SRFLX: type_pref = RDV__CAND_TYPEPREF_SRFLX; break;
    case RDV__CAND_RELAYED: type_pref = RDV__CAND_TYPEPREF_RELAYED; break;
    default: type_pref = 0; break;
    }
    if (component < 1)
        component = 1;
    if (component > 256)
        component = 256;
    return (type_pref << 24) + ((uint32_t)local_pref << 8) + (256u - component);
}

const char *rdv__cand_type_name(rdv__cand_type t)
{
    switch (t) {
    case RDV__CAND_HOST: return "host";
    case RDV__CAND_SRFLX: return "serverReflexive";
    case RDV__CAND_PRFLX: return "peerReflexive";
    case RDV__CAND_RELAYED: return "relayed";
    }
    return "unknown";
}

static bool type_valid(rdv__cand_type t)
{
    return t == RDV__CAND_HOST || t == RDV__CAND_SRFLX || t == RDV__CAND_PRFLX ||
           t == RDV__CAND_RELAYED;
}

int rdv__cand_type_from_name(const char *name, rdv__cand_type *out)
{
    static const rdv__cand_type all[] = {RDV__CAND_HOST, RDV__CAND_SRFLX, RDV__CAND_PRFLX,
                                         RDV__CAND_RELAYED};
    if (name == NULL || out == NULL)
        return RDV_ERR_FORMAT;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, rdv__cand_type_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return RDV_ERR_FORMAT;
}

/* ---- addresses ---------------------------------------------------------- */

static bool v6_is_v4mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* Copies sa (len bytes) into *ss as AF_INET or AF_INET6, an IPv4-mapped
 * IPv6 address becoming AF_INET (port kept). Returns the stored length, 0
 * for NULL, an unknown family or a short length. */
static socklen_t normalize(const struct sockaddr *sa, socklen_t len,
                           struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return 0;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(ss, sa, sizeof(struct sockaddr_in));
        return (socklen_t)sizeof(struct sockaddr_in);
    }
    if (sa->sa_family != AF_INET6 || len < (socklen_t)sizeof(struct sockaddr_in6))
        return 0;
    struct sockaddr_in6 s6;
    memcpy(&s6, sa, sizeof(s6));
    if (v6_is_v4mapped(s6.sin6_addr.s6_addr)) {
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        s4.sin_port = s6.sin6_port;
        memcpy(&s4.sin_addr, s6.sin6_addr.s6_addr + 12, 4);
        memcpy(ss, &s4, sizeof(s4));
        return (socklen_t)sizeof(s4);
    }
    memcpy(ss, &s6, sizeof(s6));
    return (socklen_t)sizeof(s6);
}

/* IP bytes (4 or 16) and port of a normalized address; returns the byte
 * count, 0 for another family. */
static size_t addr_parts(const struct sockaddr_storage *ss, uint8_t ip[16], uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, ss, sizeof(s4));
        memcpy(ip, &s4.sin_addr, 4);
        *port = ntohs(s4.sin_port);
        return 4;
    }
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, ss, sizeof(s6));
        memcpy(ip, s6.sin6_addr.s6_addr, 16);
        *port = ntohs(s6.sin6_port);
        return 16;
    }
    return 0;
}

static bool v4_unspecified(const uint8_t a[4]) { return a[0] == 0; }          /* 0/8 */
static bool v4_multicast_or_reserved(const uint8_t a[4]) { return a[0] >= 224; } /* 224/4, 240/4 */
static bool v4_loopback(const uint8_t a[4]) { return a[0] == 127; }
static bool v4_link_local(const uint8_t a[4]) { return a[0] == 169 && a[1] == 254; }

static bool v6_unspecified(const uint8_t a[16])
{
    static const uint8_t zero[16];
    return memcmp(a, zero, 16) == 0;
}

static bool v6_loopback(const uint8_t a[16])
{
    static const uint8_t one[16] = {[15] = 1};
    return memcmp(a, one, 16) == 0;
}

static bool v6_multicast(const uint8_t a[16]) { return a[0] == 0xff; }
static bool v6_link_local(const uint8_t a[16]) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }
static bool v6_site_local(const uint8_t a[16]) { return a[0] == 0xfe && (a[1] & 0xc0) == 0xc0; }
static bool v6_ula(const uint8_t a[16]) { return (a[0] & 0xfe) == 0xfc; }
static bool v6_6to4(const uint8_t a[16]) { return a[0] == 0x20 && a[1] == 0x02; }
static bool v6_teredo(const uint8_t a[16])
{
    return a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0;
}

bool rdv__cand_addr_usable(const struct sockaddr *sa, socklen_t len)
{
    struct sockaddr_storage ss;
    if (normalize(sa, len, &ss) == 0)
        return false;
    uint8_t ip[16];
    uint16_t port = 0;
    size_t n = addr_parts(&ss, ip, &port);
    if (port == 0)
        return false;
    if (n == 4)
        return !v4_unspecified(ip) && !v4_multicast_or_reserved(ip);
    return !v6_unspecified(ip) && !v6_multicast(ip) && !v6_link_local(ip);
}

bool rdv__cand_addr_global_v6(const struct sockaddr_storage *ss)
{
    uint8_t ip[16];
    uint16_t port;
    if (ss == NULL || ss->ss_family != AF_INET6 || addr_parts(ss, ip, &port) != 16)
        return false;
    return (ip[0] & 0xe0) == 0x20 && !v6_teredo(ip) && !v6_6to4(ip);
}

uint16_t rdv__cand_host_local_pref(const struct sockaddr *sa, unsigned rank)
{
    struct sockaddr_storage ss;
    socklen_t len = sa == NULL ? 0
                    : sa->sa_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                               : (socklen_t)sizeof(struct sockaddr_in6);
    if (normalize(sa, len, &ss) == 0)
        return 0;
    uint8_t ip[16];
    uint16_t port;
    unsigned cls;
    if (addr_parts(&ss, ip, &port) == 4) {
        cls = v4_loopback(ip) ? CLASS_LOOPBACK : v4_link_local(ip) ? CLASS_LOW : CLASS_IPV4;
    } else if (v6_loopback(ip)) {
        cls = CLASS_LOOPBACK;
    } else if (v6_teredo(ip)) {
        cls = CLASS_LOW;
    } else if (v6_ula(ip)) {
        cls = CLASS_ULA;
    } else if (v6_6to4(ip)) {
        cls = CLASS_6TO4;
    } else {
        cls = CLASS_V6_GLOBAL;
    }
    unsigned r = rank > RDV__CAND_RANK_MAX ? RDV__CAND_RANK_MAX : rank;
    return (uint16_t)(cls << RDV__CAND_CLASS_SHIFT | (RDV__CAND_RANK_MAX - r));
}

/* ---- candidates ----------------------------------------------------------- */

/* RFC 8445 5.1.1.3: same type and base IP -> same foundation. */
static void make_foundation(rdv__cand_type t, const struct sockaddr_storage *base,
                            char out[RDV__CAND_FOUNDATION_MAX + 1])
{
    uint8_t ip[16];
    uint16_t port;
    size_t n = addr_parts(base, ip, &port);
    uint32_t h = FNV32_OFFSET;
    uint8_t head[2] = {(uint8_t)t, (uint8_t)n};
    for (size_t i = 0; i < sizeof(head); i++)
        h = (h ^ head[i]) * FNV32_PRIME;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ip[i]) * FNV32_PRIME;
    snprintf(out, RDV__CAND_FOUNDATION_MAX + 1, "%08x", (unsigned)h);
}

int rdv__cand_make(rdv__cand_type t, const struct sockaddr *addr, socklen_t len,
                   const struct sockaddr *base, socklen_t base_len, uint16_t local_pref,
                   rdv__cand *out)
{
    if (out == NULL)
        return RDV_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (!type_valid(t))
        return RDV_ERR_INVALID;
    out->addr_len = normalize(addr, len, &out->addr);
    if (out->addr_len == 0)
        goto invalid;
    if (base != NULL || base_len != 0) {
        out->base_len = normalize(base, base_len, &out->base);
        if (out->base_len == 0)
            goto invalid;
    }
    out->type = t;
    out->priority = rdv__cand_priority(t, local_pref, RDV__CAND_COMPONENT);
    make_foundation(t, out->base_len ? &out->base : &out->addr, out->foundation);
    return 0;
invalid:
    memset(out, 0, sizeof(*out));
    return RDV_ERR_INVALID;
}

void rdv__cand_sort(rdv__cand *c, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        rdv__cand x = c[i];
        size_t j = i;
        while (j > 0 && c[j - 1].priority < x.priority) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

/* ---- host gathering ------------------------------------------------------- */

/* True when /proc/net/if_inet6 lists `a` as deprecated, tentative or
 * DAD-failed. False when the file cannot be read (other systems). */
static bool v6_kernel_unusable(const uint8_t a[16])
{
    FILE *f = fopen(IF_INET6_PATH, "re");
    if (f == NULL)
        return false;
    char hex[33];
    for (size_t i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", a[i]);
    bool bad = false;
    char line[256];
    for (int n = 0; n < IF_INET6_MAX_LINES && fgets(line, sizeof(line), f) != NULL; n++) {
        char addr[33];
        unsigned ifindex, plen, scope, flags;
        if (sscanf(line, "%32s %x %x %x %x", addr, &ifindex, &plen, &scope, &flags) != 5)
            continue;
        if (strcmp(addr, hex) == 0 &&
            (flags & (IFA_FLAG_DEPRECATED | IFA_FLAG_TENTATIVE | IFA_FLAG_DADFAILED)) != 0) {
            bad = true;
            break;
        }
    }
    fclose(f);
    return bad;
}

/* Whether a local interface address (normalized) becomes a host
 * candidate (rules in candidates.h). */
static bool host_wanted(const struct sockaddr_storage *ss, uint16_t port4, uint16_t port6,
                        bool include_loopback)
{
    uint8_t ip[16];
    uint16_t port;
    if (addr_parts(ss, ip, &port) == 4) {
        static const uint8_t lo4[4] = {127, 0, 0, 1};
        if (port4 == 0 || v4_unspecified(ip) || v4_multicast_or_reserved(ip))
            return false;
        if (v4_loopback(ip))
            return include_loopback && memcmp(ip, lo4, 4) == 0;
        return true;
    }
    if (port6 == 0 || ss->ss_family != AF_INET6)
        return false;
    if (v6_unspecified(ip) || v6_multicast(ip) || v6_link_local(ip) || v6_site_local(ip))
        return false;
    if (v6_loopback(ip))
        return include_loopback;
    return !v6_kernel_unusable(ip);
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    uint8_t ia[16], ib[16];
    uint16_t pa, pb;
    size_t na = addr_parts(a, ia, &pa), nb = addr_parts(b, ib, &pb);
    return na == nb && na != 0 && memcmp(ia, ib, na) == 0;
}

int rdv__cand_gather_host(uint16_t port4, uint16_t port6, bool include_loopback,
                          rdv__cand *out, size_t cap)
{
    if (out == NULL && cap > 0)
        return RDV_ERR_INVALID;
    if (cap == 0)
        return 0;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return RDV_ERR_IO;
    size_t n = 0;
    for (struct ifaddrs *i = ifs; i != NULL && n < cap; i = i->ifa_next) {
        if (i->ifa_addr == NULL || (i->ifa_flags & IFF_UP) == 0)
            continue;
        socklen_t len = i->ifa_addr->sa_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                        : i->ifa_addr->sa_family == AF_INET6
                            ? (socklen_t)sizeof(struct sockaddr_in6)
                            : 0;
        struct sockaddr_storage ss;
        socklen_t sl = normalize(i->ifa_addr, len, &ss);
        if (sl == 0 || !host_wanted(&ss, port4, port6, include_loopback))
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = same_ip(&out[k].addr, &ss);
        if (dup)
            continue;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in s4;
            memcpy(&s4, &ss, sizeof(s4));
            s4.sin_port = htons(port4);
            memcpy(&ss, &s4, sizeof(s4));
        } else {
            struct sockaddr_in6 s6;
            memcpy(&s6, &ss, sizeof(s6));
            s6.sin6_port = htons(port6);
            s6.sin6_scope_id = 0; /* global / ULA / loopback: no zone */
            s6.sin6_flowinfo = 0;
            memcpy(&ss, &s6, sizeof(s6));
        }
        uint16_t lp = rdv__cand_host_local_pref((const struct sockaddr *)&ss, (unsigned)n);
        if (rdv__cand_make(RDV__CAND_HOST, (const struct sockaddr *)&ss, sl, NULL, 0, lp,
                           &out[n]) != 0)
            continue;
        n++;
    }
    freeifaddrs(ifs);
    rdv__cand_sort(out, n);
    return (int)n;
}

/* ---- text and JSON -------------------------------------------------------- */

bool rdv__addr_ip_text(const struct sockaddr_storage *ss, char buf[INET6_ADDRSTRLEN],
                       uint16_t *port)
{
    uint8_t ip[16];
    size_t n = addr_parts(ss, ip, port);
    if (n == 0)
        return false;
    return inet_ntop(n == 4 ? AF_INET : AF_INET6, ip, buf, INET6_ADDRSTRLEN) != NULL;
}

int rdv__addr_to_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return RDV_ERR_INVALID;
    buf[0] = '\0';
    if (sa == NULL)
        return RDV_ERR_INVALID;
    socklen_t len = sa->sa_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                             : (socklen_t)sizeof(struct sockaddr_in6);
    struct sockaddr_storage ss;
    char ip[INET6_ADDRSTRLEN];
    uint16_t port = 0;
    if (normalize(sa, len, &ss) == 0 || !rdv__addr_ip_text(&ss, ip, &port))
        return RDV_ERR_INVALID;
    int w = ss.ss_family == AF_INET6 ? snprintf(buf, cap, "[%s]:%u", ip, (unsigned)port)
                                     : snprintf(buf, cap, "%s:%u", ip, (unsigned)port);
    if (w < 0 || (size_t)w >= cap) {
        buf[0] = '\0';
        return RDV_ERR_INVALID;
    }
    return 0;
}

/* Sets o[key] = v (reference stolen); false when v is NULL or the set
 * fails. */
static bool put(json_t *o, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(o, key, v) == 0;
}

json_t *rdv__cand_to_json(const rdv__cand *c)
{
    if (c == NULL || !type_valid(c->type))
        return NULL;
    char ip[INET6_ADDRSTRLEN], rip[INET6_ADDRSTRLEN];
    uint16_t port = 0, rport = 0;
    if (!rdv__addr_ip_text(&c->addr, ip, &port))
        return NULL;
    if (c->base_len != 0 && !rdv__addr_ip_text(&c->base, rip, &rport))
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = put(o, "ip", json_string(ip)) && put(o, "port", json_integer(port)) &&
              put(o, "type", json_string(rdv__cand_type_name(c->type))) &&
              put(o, "priority", json_integer((json_int_t)c->priority));
    if (ok && c->foundation[0] != '\0')
        ok = put(o, "foundation", json_string(c->foundation));
    if (ok && c->base_len != 0)
        ok = put(o, "relatedIP", json_string(rip)) && put(o, "relatedPort", json_integer(rport));
    if (ok && c->port_mapped)
        ok = put(o, "portMapped", json_true());
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Parses IP text + port into a normalized sockaddr; returns its length or
 * 0 when the text is not an IPv4 / IPv6 address. */
static socklen_t parse_ip(const char *text, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (text == NULL || strlen(text) > RDV__CAND_IP_TEXT_MAX)
        return 0;
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof(s4));
    if (inet_pton(AF_INET, text, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons(port);
        memcpy(ss, &s4, sizeof(s4));
        return (socklen_t)sizeof(s4);
    }
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    if (inet_pton(AF_INET6, text, &s6.sin6_addr) != 1)
        return 0;
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(port);
    return normalize((const struct sockaddr *)&s6, (socklen_t)sizeof(s6), ss);
}

/* The string value of o[key] when it has no embedded NUL, else NULL. */
static const char *get_text(const json_t *o, const char *key)
{
    const char *s = rdv_msg_get_str(o, key);
    if (s == NULL || strlen(s) != json_string_length(json_object_get(o, key)))
        return NULL;
    return s;
}

/* An integer member in lo..hi. */
static bool get_range(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *v)
{
    return rdv_msg_get_int(o, key, v) && *v >= lo && *v <= hi;
}

/* RFC 8445 15.1: foundation = 1*32 ice-char; ice-char = ALPHA / DIGIT /
 * "+" / "/". */
static bool foundation_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RDV__CAND_FOUNDATION_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
        if (!ok)
            return false;
    }
    return true;
}

int rdv__cand_from_json(const json_t *o, rdv__cand *out)
{
    if (out == NULL)
        return RDV_ERR_FORMAT;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(o))
        return RDV_ERR_FORMAT;
    int64_t port, prio, rport = 0;
    rdv__cand_type t;
    if (!get_range(o, "port", 1, 65535, &port) ||
        !get_range(o, "priority", 0, (int64_t)UINT32_MAX, &prio) ||
        rdv__cand_type_from_name(get_text(o, "type"), &t) != 0)
        return RDV_ERR_FORMAT;
    struct sockaddr_storage addr, base;
    socklen_t alen = parse_ip(get_text(o, "ip"), (uint16_t)port, &addr);
    if (alen == 0 || !rdv__cand_addr_usable((const struct sockaddr *)&addr, alen))
        return RDV_ERR_FORMAT;

    const json_t *f = json_object_get(o, "foundation");
    if (f != NULL && (get_text(o, "foundation") == NULL || !foundation_ok(json_string_value(f))))
        return RDV_ERR_FORMAT;
    if (json_object_get(o, "relatedPort") != NULL &&
        !get_range(o, "relatedPort", 0, 65535, &rport))
        return RDV_ERR_FORMAT;
    const json_t *pm = json_object_get(o, "portMapped");
    if (pm != NULL && !json_is_boolean(pm))
        return RDV_ERR_FORMAT;
    socklen_t blen = 0;
    if (json_object_get(o, "relatedIP") != NULL) {
        blen = parse_ip(get_text(o, "relatedIP"), (uint16_t)rport, &base);
        if (blen == 0)
            return RDV_ERR_FORMAT;
        uint8_t ip[16];
        uint16_t p;
        size_t n = addr_parts(&base, ip, &p);
        if (n == 4 ? (ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == 0) : v6_unspecified(ip))
            blen = 0; /* "unknown" (PROTOCOL.md 3, IP) */
    }
    if (rdv__cand_make(t, (const struct sockaddr *)&addr, alen,
                       blen ? (const struct sockaddr *)&base : NULL, blen, 0, out) != 0)
        return RDV_ERR_FORMAT;
    out->priority = (uint32_t)prio;
    out->port_mapped = pm != NULL && json_is_true(pm);
    if (f != NULL)
        snprintf(out->foundation, sizeof(out->foundation), "%s", json_string_value(f));
    return 0;
}

bool rdv__addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

bool rdv__addr_ip_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    struct sockaddr_storage x, y;
    socklen_t lx = a->ss_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                           : (socklen_t)sizeof(struct sockaddr_in6);
    socklen_t ly = b->ss_family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                           : (socklen_t)sizeof(struct sockaddr_in6);
    if (normalize((const struct sockaddr *)a, lx, &x) == 0 ||
        normalize((const struct sockaddr *)b, ly, &y) == 0)
        return false;
    return same_ip(&x, &y);
}

uint16_t rdv__addr_port(const struct sockaddr_storage *a)
{
    return ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                         : ((const struct sockaddr_in6 *)a)->sin6_port);
}

void rdv__addr_set_port(struct sockaddr_storage *a, uint16_t port)
{
    if (a->ss_family == AF_INET)
        ((struct sockaddr_in *)a)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}
