/* stun_client.h - the STUN client engine of librendezvous (internal; never
 * installed): server-reflexive address discovery and NAT classification
 * over the client's own UDP socket.
 *
 * No socket and no clock of its own. The engine sends through a callback
 * (rdv__stun_client_cfg.send) and is fed the datagrams the caller receives: the
 * client's loop owns the UDP socket, and every datagram for which
 * rdv_stun_looks_like() is true goes to rdv__stun_client_on_packet(). Time is an
 * explicit `now` in monotonic milliseconds (rdv__mono_ms() in the library;
 * any clock that never goes back in tests). The caller calls
 * rdv__stun_client_tick() no later than the time it returned. Single-threaded:
 * the caller serialises all calls on one rdv__stun_client. Nothing is allocated:
 * an rdv__stun_client needs no cleanup. Messages are built and parsed with the
 * codec of schema/stun.h only.
 *
 * Transactions (RFC 8489 6.2.1): a Binding request with a fresh 96-bit
 * random transaction ID (libsodium randombytes_buf), the magic cookie,
 * SOFTWARE when configured and FINGERPRINT; the same bytes are sent at 0,
 * RTO, 3*RTO, 7*RTO, ... (the wait doubles after each transmission) for
 * `rc` transmissions, then the transaction times out rm*RTO after the
 * last one. Defaults RTO 250 ms, rc 5, rm 4: a silent server costs
 * (2^(rc-1) - 1 + rm) * RTO = 19 * 250 = 4750 ms. The NAT behaviour tests
 * after the first answer use a shorter schedule, rc 3 and rm 2
 * (RDV__STUN_CLIENT_SHORT_RC/_RM): an unanswered test costs (3 + 2) * RTO =
 * 1250 ms. A response counts only when it is a Binding success or error
 * response whose TID matches an outstanding transaction and whose source
 * is plausible (below); everything else is ignored (counted in
 * result.ignored).
 *
 * Discovery and classification (RFC 5780 4.3 / 4.4 with the RFC 3489
 * names); every test uses the same local socket:
 *
 *   Test I   Binding to server i's primary address P. The servers are
 *            tried in order: a transaction that times out (or gets an
 *            error response) moves on to server i+1. The first answer
 *            gives the mapped address M1 (XOR-MAPPED-ADDRESS, else
 *            MAPPED-ADDRESS), and OTHER-ADDRESS A when the server sends
 *            it. no_nat = (M1 == the local address the socket uses toward
 *            P, see rdv__stun_client_cfg.local).
 *   Filtering (only with A; before anything is sent to A, or an address-
 *            restricted NAT would already let A in and look like a full
 *            cone). In parallel, on the short schedule:
 *            Test II  Binding to P with CHANGE-REQUEST(change IP + change
 *                     port) - only when A has another IP;
 *            Test III Binding to P with CHANGE-REQUEST(change port) -
 *                     only when A has another port.
 *            A success to II or III must come from exactly the changes
 *            asked (II: another IP and, when asked, another port than P;
 *            III: P's IP, another port), so a server that ignores
 *            CHANGE-REQUEST cannot fake an open NAT; an error response
 *            must come from P.
 *            II answered                -> endpoint-independent filtering;
 *            else III answered          -> address-dependent;
 *            both ran, neither answered -> address-and-port-dependent.
 *            A test that could not run (no alternate IP / port in A, or an
 *            error response such as 420 "cannot change as requested") is
 *            inconclusive; the result is then the stricter of the
 *            behaviours still possible: III answered but II impossible ->
 *            address-dependent; II unanswered and III impossible ->
 *            address-and-port-dependent; III unanswered and II
 *            impossible -> address-and-port-dependent; both impossible ->
 *            unknown. (A server with an alternate port only, such as
 *            rendezvousd without --stun-alt-address, so reports a host
 *            with no NAT and no firewall as a restricted cone.) Once II
 *            is answered, III is abandoned (it cannot change the result).
 *   Mapping  (after filtering, or beside it: see send_aux; skipped when
 *            no_nat) on the short schedule:
 *            Binding to A's IP at P's port when A has another IP, else to
 *            P's IP at A's port -> M2. When the server gave no A, or A did
 *            not answer, Binding to the next configured server (in order,
 *            skipping those that already failed and any equal to P) ->
 *            M2. M2 == M1 -> endpoint-independent mapping. M2 != M1 after
 *            A's IP, when A has another port too: Binding to A (A's IP
 *            and port) -> M3 (RFC 5780 4.3 test III); M3 == M2 ->
 *            address-dependent, M3 != M2 -> address-and-port-dependent;
 *            without M3 "address-dependent or stricter". M2 != M1 after
 *            A's port only -> address-and-port-dependent.
 *   In parallel (cfg.send_aux set): Test II and III go out on the
 *            caller's second socket (a fresh mapping on the NAT that has
 *            contacted only P), so nothing the mapping test sends to A
 *            opens the filter they test; they start together with the
 *            mapping test when Test I answers. result.mapping_decided is
 *            set as soon as the mapping test ends, with result.nat the
 *            type so far: symmetric (final) or, for an independent
 *            mapping, the strictest cone type the filtering answers so
 *            far allow (no answer yet: RDV_NAT_PORT_RESTRICTED); the
 *            filtering result refines it when discovery ends.
 *   Type     mapping dependent (either kind)      -> RDV_NAT_SYMMETRIC;
 *            mapping independent (or no NAT):
 *              filtering endpoint-independent      -> RDV_NAT_FULL_CONE,
 *              address-dependent                   -> RDV_NAT_RESTRICTED_CONE,
 *              address-and-port-dependent          -> RDV_NAT_PORT_RESTRICTED,
 *              unknown (server gave no A)          -> RDV_NAT_UNKNOWN;
 *            mapping untested (no A and no second server answered, or
 *            the mapping test went unanswered)     -> RDV_NAT_UNKNOWN.
 *   A host with no NAT and no firewall is a full cone. With an alternate
 *   port only (same IP), an address-dependent mapping is not detected
 *   (result.method says so).
 *
 * result.method says exactly which behaviour the tests showed, in RFC
 * 4787 / RFC 5780 terms, "RFC 5780: <mapping>, <filtering>" (the texts
 * are listed in PROTOCOL.md 13.1 and stay stable), e.g.
 *   "RFC 5780: mapping endpoint-independent (alternate IP), filtering
 *    address-dependent (change port answered, change IP+port not)".
 * In a lab where every test answers within a few ms or never, discovery
 * ends within about 1.3 s at the default RTO (one short-schedule timeout
 * for the filtering tests); in parallel mode the mapping is decided one
 * round trip after Test I.
 */
#ifndef RDV_CLIENT_STUNC_H
#define RDV_CLIENT_STUNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rendezvous/rendezvous.h"
#include "schema/stun.h"

/* Bounds and defaults (named, as STYLE.md asks). */
#define RDV__STUN_CLIENT_MAX_SERVERS 8     /* = RDV_MAX_STUN_SERVERS */
#define RDV__STUN_CLIENT_MAX_TX 4          /* outstanding transactions */
#define RDV__STUN_CLIENT_RTO_MS 250        /* default initial RTO */
#define RDV__STUN_CLIENT_RTO_MAX_MS 60000  /* largest accepted rto_ms */
#define RDV__STUN_CLIENT_RC 5              /* default transmissions */
#define RDV__STUN_CLIENT_RC_MAX 16
#define RDV__STUN_CLIENT_RM 4              /* default last wait, in RTOs */
#define RDV__STUN_CLIENT_RM_MAX 64
#define RDV__STUN_CLIENT_SHORT_RC 3        /* behaviour tests: transmissions */
#define RDV__STUN_CLIENT_SHORT_RM 2        /* behaviour tests: last wait */
#define RDV__STUN_CLIENT_SOFTWARE_MAX 127  /* SOFTWARE bytes kept */
#define RDV__STUN_CLIENT_REQ_MAX 256       /* largest request we build */
#define RDV__STUN_CLIENT_METHOD_MAX 160    /* = rdv_network_status.nat_method */
#define RDV__STUN_CLIENT_ERROR_MAX 128

/* Sends buf[0..len) to `to` on the caller's socket. Returns >= 0 when the
 * datagram was handed to the kernel, < 0 otherwise (the engine still
 * counts it as a transmission; the schedule goes on). */
typedef int (*rdv__stun_client_send_fn)(void *ctx, const uint8_t *buf, size_t len,
                                  const struct sockaddr *to, socklen_t tolen);

/* Configuration, copied by rdv__stun_client_init(). 0 / NULL means the default. */
typedef struct rdv__stun_client_cfg {
    /* Resolved server addresses, tried in order, in the family the
     * caller's socket sends to (IPv4-mapped IPv6 for a dual-stack socket:
     * the engine then writes every destination, alternate addresses
     * included, in that form). */
    const struct sockaddr_storage *servers;
    const socklen_t *server_lens;
    size_t nservers;          /* 1..RDV__STUN_CLIENT_MAX_SERVERS */
    int rto_ms;               /* initial RTO (default 250) */
    int rc;                   /* transmissions per transaction (default 5) */
    int rm;                   /* last wait = rm * rto_ms (default 4) */
    rdv__stun_client_send_fn send;  /* required */
    /* Optional: sends on a second socket of the caller (same family,
     * another local port) whose datagrams the caller feeds to
     * rdv__stun_client_on_packet too. Set: the filtering tests run there,
     * in parallel with the mapping test (see above). NULL: RFC 5780's
     * order on one socket, filtering first. */
    rdv__stun_client_send_fn send_aux;
    void *ctx;                /* passed to send */
    const char *software;     /* SOFTWARE attribute or NULL (truncated to
                               * RDV__STUN_CLIENT_SOFTWARE_MAX bytes) */
    /* The caller's socket address (getsockname after bind), for no_nat.
     * A wildcard IP (0.0.0.0 / ::) is resolved when Test I answers: the
     * engine connects a throw-away UDP socket to the answering server and
     * takes its getsockname() IP (it never sends on it), with this port.
     * NULL / 0: no_nat is never set. */
    const struct sockaddr *local;
    socklen_t local_len;
} rdv__stun_client_cfg;

/* Filtering / mapping behaviour found (RFC 4787 terms). */
typedef enum rdv__stun_client_behaviour {
    RDV__STUN_CLIENT_UNTESTED = 0,     /* not known */
    RDV__STUN_CLIENT_INDEPENDENT,      /* endpoint-independent */
    RDV__STUN_CLIENT_ADDRESS,          /* address-dependent (mapping: or
                                        * stricter, when not told apart) */
    RDV__STUN_CLIENT_ADDRESS_PORT,     /* address-and-port-dependent */
} rdv__stun_client_behaviour;

/* What discovery found. Valid fields depend on the flags. */
typedef struct rdv__stun_client_result {
    bool running;             /* discovery in progress */
    bool done;                /* discovery finished (success or error) */
    bool mapped_known;        /* a server answered Test I */
    struct sockaddr_storage mapped; /* server-reflexive address (M1; updated
                                     * by refresh) */
    socklen_t mapped_len;
    bool mapping_decided;     /* the mapping behaviour is known: `nat`
                               * holds the type so far (final once done) */
    rdv_nat_type nat;         /* RDV_NAT_UNKNOWN unless decided */
    bool no_nat;              /* M1 == our local address */
    rdv__stun_client_behaviour mapping, filtering;
    int server_index;         /* configured server that answered, -1 */
    struct sockaddr_storage server; /* its address */
    socklen_t server_len;
    char method[RDV__STUN_CLIENT_METHOD_MAX]; /* how the type was decided */
    int64_t elapsed_ms;       /* start to done */
    int error;                /* 0, RDV_ERR_TIMEOUT (nobody answered) or
                               * RDV_ERR_SERVER (only error responses) */
    char error_text[RDV__STUN_CLIENT_ERROR_MAX]; /* "" when error == 0 */
    /* Counters (never reset by start). */
    uint64_t requests_sent;   /* transmissions, retransmissions included */
    uint64_t responses;       /* datagrams accepted as responses */
    uint64_t ignored;         /* datagrams fed but not accepted */
    uint64_t refreshes_ok, refresh_failures;
    uint64_t mapping_changes; /* a refresh saw another mapped address */
} rdv__stun_client_result;

/* One transaction (private to stun_client.c). */
typedef struct rdv__stun_client_tx {
    bool active;
    uint8_t kind;             /* what it tests (stun_client.c) */
    uint8_t server;           /* index of the server it belongs to */
    uint8_t tid[RDV_STUN_TID_BYTES];
    uint32_t change;          /* CHANGE-REQUEST flags sent */
    bool aux;                 /* sent with send_aux */
    rdv_stun_addr dest;       /* where it goes */
    struct sockaddr_storage to;
    socklen_t tolen;
    uint8_t req[RDV__STUN_CLIENT_REQ_MAX];
    size_t req_len;
    int sent, rc, rm;         /* transmissions done / allowed, last wait */
    int64_t wait;             /* next interval */
    int64_t due;              /* next transmission or the timeout */
} rdv__stun_client_tx;

/* The engine. Fields are private to stun_client.c; read results through
 * rdv__stun_client_get_result(). */
typedef struct rdv__stun_client {
    /* configuration (copied) */
    struct sockaddr_storage servers[RDV__STUN_CLIENT_MAX_SERVERS];
    socklen_t server_lens[RDV__STUN_CLIENT_MAX_SERVERS];
    size_t nservers;
    int rto, rc, rm;
    rdv__stun_client_send_fn send, send_aux;
    void *ctx;
    char software[RDV__STUN_CLIENT_SOFTWARE_MAX + 1];
    struct sockaddr_storage local;
    socklen_t local_len;
    /* discovery state */
    int phase;
    int64_t started;
    size_t cur;               /* server Test I is on */
    unsigned refused;         /* servers that answered Test I with an error */
    rdv_stun_addr primary, m1, other;
    bool has_other, alt_ip, alt_port;
    int ii, iii;              /* filtering test states (stun_client.c) */
    int map_step;             /* mapping candidates tried (stun_client.c) */
    int map3;                 /* mapping test III (A's IP and port) state */
    rdv_stun_addr m2;         /* mapped address of the mapping test */
    bool filter_done, map_done; /* both tests over: discovery ends */
    int map_via;              /* what decided the mapping */
    size_t map_next;          /* next server for the mapping test */
    rdv__stun_client_tx tx[RDV__STUN_CLIENT_MAX_TX];
    rdv__stun_client_result res;
} rdv__stun_client;

/* Checks and copies *cfg into a zeroed *s (idle: nothing sent until
 * rdv__stun_client_start). Returns 0, RDV_ERR_INVALID (no servers, more than
 * RDV__STUN_CLIENT_MAX_SERVERS, a server or local address that is not IPv4/IPv6,
 * no send callback, rto/rc/rm out of range) or RDV_ERR_CRYPTO (libsodium
 * failed to initialise). */
int rdv__stun_client_init(rdv__stun_client *s, const rdv__stun_client_cfg *cfg)
    __attribute__((warn_unused_result));

/* (Re)starts discovery and classification at `now`: forgets the previous
 * result (counters kept) and any outstanding transaction, and sends Test I
 * to the first server. */
void rdv__stun_client_start(rdv__stun_client *s, int64_t now);

/* Feeds one received datagram buf[0..len) from `from`. Returns true when
 * it was accepted as the response to an outstanding transaction (which
 * may send the next tests or finish discovery), false when it was ignored:
 * not a well-formed STUN Binding response (rdv_stun_parse), no matching
 * TID, an implausible source, a success without a mapped address, or
 * unknown comprehension-required attributes. Never reads past len. */
bool rdv__stun_client_on_packet(rdv__stun_client *s, const uint8_t *buf, size_t len,
                          const struct sockaddr *from, socklen_t fromlen, int64_t now);

/* Sends due retransmissions and times transactions out (which moves to
 * the next server or test, or finishes). Returns the absolute time (ms)
 * at which it must be called again, or INT64_MAX when nothing is
 * outstanding. */
int64_t rdv__stun_client_tick(rdv__stun_client *s, int64_t now);

/* Sends one Binding request to the server that answered (normal
 * schedule): keeps the NAT mapping alive; an answer with another mapped
 * address updates result.mapped and counts mapping_changes (the caller
 * may then restart discovery); no answer counts refresh_failures.
 * Returns 0 (sent, or one already outstanding) or RDV_ERR_STATE (discovery
 * running, or no server answered). */
int rdv__stun_client_refresh(rdv__stun_client *s, int64_t now);

/* The result so far (valid until the next call on s). */
const rdv__stun_client_result *rdv__stun_client_get_result(const rdv__stun_client *s);

#endif
