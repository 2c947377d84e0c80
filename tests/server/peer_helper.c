/* peer_helper.c - server_peer_helper: the C-side node of the
 * server_protocol_python test (test_protocol_node.py).
 *
 * Usage: server_peer_helper PORT LABEL [TIMEOUT_MS]
 * Authenticates to rendezvousd on 127.0.0.1:PORT as the test node LABEL
 * (tests/support), prints "READY <nodeID>", waits for an offer and checks
 * it with the C codec (rdv_msg_parse, rdv_sig_verify_from, freshness),
 * answers it with a signed answer, then waits for an iceCandidate of the
 * same session and checks it likewise. Every event is printed as one line
 * "WORD <JSON string>" (the exact text, JSON-escaped), flushed at once:
 *   READY <id> / OFFER "<text>" / VERIFIED offer / ANSWER "<text>" /
 *   ICE "<text>" / VERIFIED iceCandidate / DONE
 * or "FAIL <reason>" and exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/ids.h"
#include "schema/message.h"
#include "node.h"
#include "server.h"
#include "schema/sign.h"
#include "ws_client.h"

static int fail(const char *why, const char *detail)
{
    printf("FAIL %s%s%s\n", why, detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
    rdv_ts_cleanup_all();
    return 1;
}

static void print_text(const char *word, const char *text, size_t len)
{
    json_t *s = json_stringn(text, len);
    char *esc = json_dumps(s, JSON_ENCODE_ANY);
    printf("%s %s\n", word, esc ? esc : "null");
    fflush(stdout);
    free(esc);
    json_decref(s);
}

/* Receives the next text, checks it is a valid signed `want` addressed to
 * `me`; returns the parsed message (caller frees) or fails. */
static int receive_checked(rdv_ws *c, const rdv_tn *me, rdv_msg_type want, const char *word,
                           int timeout_ms, rdv_msg *out)
{
    size_t len = 0;
    char *text = rdv_ws_recv(c, timeout_ms, &len);
    if (!text)
        return fail("no message", word);
    print_text(word, text, len);
    rdv_msg_error err;
    memset(&err, 0, sizeof err);
    int rc = rdv_msg_parse((const uint8_t *)text, len, RDV_MAX_MESSAGE_BYTES, out, &err);
    free(text);
    if (rc != 0) {
        char d[256];
        snprintf(d, sizeof d, "%s field=%s %s", rdv_ec_name(err.code), err.field, err.detail);
        return fail("codec refused the message", d);
    }
    if (out->type != want)
        return fail("unexpected type", rdv_msg_type_name(out->type));
    if (strcmp(rdv_msg_get_str(out->body, "toNodeID"), me->id) != 0)
        return fail("not addressed to me", rdv_msg_get_str(out->body, "toNodeID"));
    if (rdv_sig_verify_from(want, out->body, "fromNodeID") != 0)
        return fail("signature does not verify", rdv_msg_type_name(want));
    int64_t ts = 0;
    if (!rdv_msg_get_int(out->body, "timestamp", &ts) ||
        !rdv_ts_fresh(ts, rdv_now_ms(), RDV_FRESH_PAST_MS, RDV_FRESH_FUTURE_MS))
        return fail("stale timestamp", rdv_msg_type_name(want));
    printf("VERIFIED %s\n", rdv_msg_type_name(want));
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT LABEL [TIMEOUT_MS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int timeout_ms = argc > 3 ? atoi(argv[3]) : 20000;
    rdv_tn me;
    rdv_tn_init(&me, argv[2]);
    rdv_ws *c = rdv_tn_connect(port, &me);
    if (!c)
        return fail("could not authenticate", NULL);
    printf("READY %s\n", me.id);
    fflush(stdout);

    rdv_msg offer;
    memset(&offer, 0, sizeof offer);
    if (receive_checked(c, &me, RDV_MSG_OFFER, "OFFER", timeout_ms, &offer) != 0)
        return 1;
    char from[RDV_NODE_ID_HEXLEN + 1];
    char sid[RDV_UUID_STRLEN + 1];
    snprintf(from, sizeof from, "%s", rdv_msg_get_str(offer.body, "fromNodeID"));
    snprintf(sid, sizeof sid, "%s", rdv_msg_get_str(offer.body, "sessionID"));
    rdv_msg_free(&offer);

    size_t len = 0;
    char *answer = rdv_tn_answer(&me, from, sid, NULL, &len);
    if (!answer)
        return fail("could not build the answer", NULL);
    int rc = rdv_ws_send_text(c, answer, len);
    print_text("ANSWER", answer, len);
    free(answer);
    if (rc != 0)
        return fail("could not send the answer", NULL);

    rdv_msg ice;
    memset(&ice, 0, sizeof ice);
    if (receive_checked(c, &me, RDV_MSG_ICE_CANDIDATE, "ICE", timeout_ms, &ice) != 0)
        return 1;
    bool same = strcmp(rdv_msg_get_str(ice.body, "sessionID"), sid) == 0;
    rdv_msg_free(&ice);
    if (!same)
        return fail("iceCandidate of another session", NULL);
    rdv_ws_close(c);
    printf("DONE\n");
    fflush(stdout);
    rdv_ts_cleanup_all();
    return 0;
}
