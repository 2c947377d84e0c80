/* policy.h - the operator's relay and signaling policy by fleet group
 * (--policy FILE, README "Policy"), read at start and on SIGHUP (a reload
 * hook, reload.h: a file that does not parse is refused with its line
 * number and the policy in force stays).
 *
 * The file, one rule per line ('#' comments, blank lines ignored):
 *
 *   relay GROUP [rate BYTES] [sessions N] [quota BYTES]
 *   signal FROM TO
 *
 * GROUP, FROM, TO: a group of the node's fleet certificate (admission.h),
 * or `*` for every node (with or without a certificate).
 *
 * relay: with at least one `relay` line, a node may open a relay session
 * (relayOpen) or consent to one (relayReady) only when a line names one of
 * its groups or `*`; the first such line in the file wins, and its rate
 * (bytes/s), sessions and quota (bytes per session) replace --relay-rate,
 * --relay-max-sessions and --relay-quota for that node (left out: the
 * server's). Without `relay` lines every node may relay, as before.
 *
 * signal: with at least one `signal` line, an `offer` or `relayOpen` from
 * A to B passes only when a line's FROM matches A and TO matches B. B's
 * groups are known when B is connected to this instance; otherwise only
 * `*` matches it. Without `signal` lines every node may signal every node.
 *
 * Refusals are `error` `forbidden` with a message naming the rule.
 * Without --policy (or with an empty file) nothing changes: open mode.
 */
#ifndef SRV_POLICY_H
#define SRV_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rendezvous/conn.h"

struct srv_server;
struct srv_policy;

#define SRV_POLICY_MAX_RULES 256

/* A node's relay limits after the policy (0 rate / quota: unlimited). */
typedef struct srv_policy_limits {
    uint64_t rate;
    int max_sessions;
    uint64_t quota;
} srv_policy_limits;

/* Parses the policy file at path into a new policy (*out, free with
 * srv_policy_destroy). Returns 0, or -1 with "PATH:LINE: reason" in err. */
int srv_policy_parse(const char *path, struct srv_policy **out, char *err, size_t errlen);

void srv_policy_destroy(struct srv_policy *p);

/* Loads --policy (if set) into srv->policy and registers the "policy"
 * reload hook. Returns 0 or -1 (logged: the server does not start). */
int srv_policy_start(struct srv_server *srv);

/* Frees srv->policy. */
void srv_policy_free(struct srv_server *srv);

/* May c use the relay? true with its limits in *lim (the server's when
 * no rule sets them); false with the reason in why. */
bool srv_policy_relay(const struct srv_server *srv, const srv_conn *c, srv_policy_limits *lim,
                      char *why, size_t whylen);

/* May `from` send an offer / relayOpen to `to` (NULL: not connected here,
 * so it has no known groups)? false with the reason in why. */
bool srv_policy_signal(const struct srv_server *srv, const srv_conn *from, const srv_conn *to,
                       char *why, size_t whylen);

/* True when the policy in force has signal rules (offers then take the
 * parsing path, where they are checked). */
bool srv_policy_signals(const struct srv_server *srv);

/* The policy in force as a new JSON object {"file", "loadedAt", "relay":
 * [...], "signal": [...]}, or {"file": null} without one. NULL: OOM. */
json_t *srv_policy_json(struct srv_server *srv);

#endif
