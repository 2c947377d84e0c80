/* relay_util.h - helpers shared by the relay_ integration tests: signed
 * relayOpen / relayReady, relayData in both forms, a consented session in
 * one call, "nothing was delivered" proofs that also see binary frames,
 * and reading one series of /metrics.
 *
 * Builds on tests/support (server, ws_client, node) and tests/server's
 * itest.h (START, itest_node, expectations). Header-only: each test file
 * includes it once after the cmocka prerequisites (itest.h brings them).
 */
#ifndef RDV_TESTS_RELAY_UTIL_H
#define RDV_TESTS_RELAY_UTIL_H

#include "itest.h"

#include <sodium.h>

/* Signed relayOpen / relayReady text from n to `to` for session sid
 * (malloc'd; never NULL: fails the test). */
static inline char *relay_signed(const rdv_tn *n, rdv_msg_type type, const char *to,
                                 const char *sid)
{
    json_t *b = json_pack("{s:s, s:s}", "toNodeID", to, "sessionID", sid);
    size_t len = 0;
    char *t = b ? rdv_tn_sign_body(n, type, b, NULL, &len) : NULL;
    if (!t)
        fail_msg("cannot build %s", rdv_msg_type_name(type));
    return t;
}

/* Opens a consented session a -> b with a new sessionID (into sid): a
 * sends relayOpen, b receives its exact bytes and answers relayReady, a
 * receives that exactly. */
static inline void relay_establish(rdv_ws *a, const rdv_tn *na, rdv_ws *b, const rdv_tn *nb,
                                   char sid[RDV_UUID_STRLEN + 1])
{
    rdv_uuid_v4(sid);
    char *open = relay_signed(na, RDV_MSG_RELAY_OPEN, nb->id, sid);
    itest_send(a, open);
    int rc = rdv_expect_bytes(b, open, strlen(open), T_MS);
    free(open);
    if (rc != 0)
        fail_msg("relayOpen not delivered byte-identical");
    char *ready = relay_signed(nb, RDV_MSG_RELAY_READY, na->id, sid);
    itest_send(b, ready);
    rc = rdv_expect_bytes(a, ready, strlen(ready), T_MS);
    free(ready);
    if (rc != 0)
        fail_msg("relayReady not delivered byte-identical");
}

/* {"relayData":{"data":"<base64>","sessionID":"<sid>"}} (malloc'd, *len). */
static inline char *relay_text(const char *sid, const uint8_t *p, size_t n, size_t *len)
{
    size_t b64 = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    size_t cap = b64 + 128;
    char *t = malloc(cap);
    if (!t)
        fail_msg("out of memory");
    int h = snprintf(t, cap, "{\"relayData\":{\"data\":\"");
    sodium_bin2base64(t + h, b64, p, n, sodium_base64_VARIANT_ORIGINAL);
    size_t off = (size_t)h + strlen(t + h);
    off += (size_t)snprintf(t + off, cap - off, "\",\"sessionID\":\"%s\"}}", sid);
    *len = off;
    return t;
}

/* Binary relay frame: 0x01, the 16 bytes of sid, payload (malloc'd). */
static inline uint8_t *relay_frame(const char *sid, const uint8_t *p, size_t n, size_t *len)
{
    uint8_t *f = malloc(RDV_RELAY_FRAME_HEADER + n + 1);
    if (!f)
        fail_msg("out of memory");
    f[0] = RDV_RELAY_FRAME_KIND_DATA;
    if (rdv_uuid_to_bytes(sid, f + 1) != 0)
        fail_msg("bad session ID %s", sid);
    if (n)
        memcpy(f + RDV_RELAY_FRAME_HEADER, p, n);
    *len = RDV_RELAY_FRAME_HEADER + n;
    return f;
}

/* Sends a binary frame of payload p on sid. */
static inline void relay_send_binary(rdv_ws *c, const char *sid, const uint8_t *p, size_t n)
{
    size_t len;
    uint8_t *f = relay_frame(sid, p, n, &len);
    int rc = rdv_ws_send_binary(c, f, len);
    free(f);
    if (rc != 0)
        fail_msg("binary send failed");
}

/* Sends a text relayData of payload p on sid. */
static inline void relay_send_text(rdv_ws *c, const char *sid, const uint8_t *p, size_t n)
{
    size_t len;
    char *t = relay_text(sid, p, n, &len);
    int rc = rdv_ws_send_text(c, t, len);
    free(t);
    if (rc != 0)
        fail_msg("text send failed");
}

/* The next message of c, text or binary, must be exactly these bytes. */
static inline void relay_expect_any(rdv_ws *c, const void *bytes, size_t len, bool binary)
{
    size_t got = 0;
    bool bin = false;
    char *m = rdv_ws_recv_any(c, T_MS, &got, &bin);
    if (!m)
        fail_msg("expected a %s message of %zu bytes, got nothing", binary ? "binary" : "text",
                 len);
    bool same = bin == binary && got == len && memcmp(m, bytes, len) == 0;
    if (!same)
        fail_msg("expected %s %zu bytes, got %s %zu bytes: %.120s", binary ? "binary" : "text",
                 len, bin ? "binary" : "text", got, bin ? "(binary)" : m);
    free(m);
}

/* Proves nothing (text or binary) reached c: a lookup of `id` must be
 * answered by the very next message. */
static inline void relay_expect_nothing(rdv_ws *c, const char *id)
{
    char *req = rdv_tn_id_request("lookup", (const char *[]){id}, 1, "nothing?");
    int rc = rdv_ws_send_str(c, req);
    free(req);
    if (rc != 0)
        fail_msg("lookup send failed");
    size_t got = 0;
    bool bin = false;
    char *m = rdv_ws_recv_any(c, T_MS, &got, &bin);
    if (!m)
        fail_msg("no answer to lookup (connection closed?)");
    bool ok = !bin && strstr(m, "\"presence\"") && strstr(m, "nothing?");
    if (!ok)
        fail_msg("expected only the lookup answer, got %s: %.200s", bin ? "binary" : "text",
                 bin ? "(binary frame)" : m);
    free(m);
}

/* Next message must be relayClose for sid with `reason`. */
static inline void relay_expect_close(rdv_ws *c, const char *sid, const char *reason)
{
    json_t *b = itest_expect(c, "relayClose");
    if (strcmp(rdv_json_str(b, "sessionID"), sid) != 0)
        fail_msg("relayClose for %s, expected %s", rdv_json_str(b, "sessionID"), sid);
    if (strcmp(rdv_json_str(b, "reason"), reason) != 0)
        fail_msg("relayClose reason '%s', expected '%s'", rdv_json_str(b, "reason"), reason);
}

/* Next message must be error `code` whose ref is sid. */
static inline void relay_expect_error(rdv_ws *c, const char *code, const char *sid)
{
    json_t *e = itest_expect_error(c, code);
    if (sid && strcmp(rdv_json_str(e, "ref"), sid) != 0)
        fail_msg("error %s ref '%s', expected '%s'", code, rdv_json_str(e, "ref"), sid);
}

/* Value of the /metrics series whose line starts with `series` and a
 * space (e.g. "rendezvous_relay_dropped_messages_total{reason=\"quota\"}"),
 * or -1 when absent. */
static inline long long relay_metric(rdv_ts_server *s, const char *series)
{
    char *body = NULL;
    int st = rdv_http_get(rdv_ts_server_operator_port(s), "/metrics", &body, T_MS);
    if (st != 200 || !body) {
        free(body);
        fail_msg("GET /metrics: %d", st);
    }
    long long v = -1;
    size_t n = strlen(series);
    for (char *line = body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!strncmp(line, series, n) && line[n] == ' ') {
            v = atoll(line + n + 1);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(body);
    return v;
}

#endif
