/* verify_rate.c - the Ed25519 ceiling of one core, and what the codec adds.
 *
 * Builds one real signed `offer` (the same shape the signaling load
 * generator sends) with the repository's codec, then runs, each for about
 * --seconds (default 2) and at most --max-iter iterations:
 *
 *   sodium_verify   crypto_sign_verify_detached over the offer's signing
 *                   input (the bare Ed25519 limit)
 *   sodium_sign     crypto_sign_detached over the same input
 *   codec_parse     rdv_msg_parse of the offer's bytes (validation)
 *   codec_verify    rdv_sig_verify_from on the parsed body (JCS + verify:
 *                   what the server does per routed message when
 *                   --verify-signatures is on)
 *   codec_sign      rdv_sig_sign on a body (JCS + sign: what a node does)
 *
 * One thread, so the figures are per core. Prints one line per test:
 *   name ops/s ns/op
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "schema/ids.h"
#include "schema/message.h"
#include "schema/sign.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct ctx {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t *input;
    size_t input_len;
    uint8_t sig[crypto_sign_BYTES];
    char *text;
    size_t text_len;
    rdv_msg parsed;
    json_t *body;
} ctx;

static volatile int sink;

static int op_sodium_verify(ctx *c)
{
    return crypto_sign_verify_detached(c->sig, c->input, c->input_len, c->pk);
}

static int op_sodium_sign(ctx *c)
{
    return crypto_sign_detached(c->sig, NULL, c->input, c->input_len, c->sk);
}

static int op_codec_parse(ctx *c)
{
    rdv_msg m;
    rdv_msg_error e;
    int rc = rdv_msg_parse((const uint8_t *)c->text, c->text_len, RDV_MAX_MESSAGE_BYTES, &m, &e);
    rdv_msg_free(&m);
    return rc;
}

static int op_codec_verify(ctx *c)
{
    return rdv_sig_verify_from(RDV_MSG_OFFER, c->parsed.body, "fromNodeID");
}

static int op_codec_sign(ctx *c)
{
    return rdv_sig_sign(RDV_MSG_OFFER, c->body, c->sk);
}

static void run(const char *name, int (*op)(ctx *), ctx *c, double seconds, long max_iter)
{
    /* warm up */
    for (int i = 0; i < 200; i++)
        if (op(c) != 0) {
            fprintf(stderr, "verify_rate: %s failed\n", name);
            exit(1);
        }
    long n = 0;
    double t0 = now_s(), t = t0;
    while (n < max_iter) {
        for (int i = 0; i < 64; i++)
            sink += op(c);
        n += 64;
        t = now_s();
        if (t - t0 >= seconds)
            break;
    }
    double rate = (double)n / (t - t0);
    printf("%-14s %10.0f ops/s %8.0f ns/op\n", name, rate, 1e9 / rate);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    long max_iter = 10000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-iter") && i + 1 < argc)
            max_iter = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: verify_rate [--seconds S] [--max-iter N]\n");
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 60)
        seconds = 2.0;
    if (sodium_init() < 0)
        return 1;
    ctx c;
    memset(&c, 0, sizeof c);
    uint8_t pk2[32], sk2[64];
    crypto_sign_keypair(c.pk, c.sk);
    crypto_sign_keypair(pk2, sk2);
    char from[RDV_NODE_ID_HEXLEN + 1], to[RDV_NODE_ID_HEXLEN + 1], sid[RDV_UUID_STRLEN + 1];
    rdv_node_id_from_pk(c.pk, from);
    rdv_node_id_from_pk(pk2, to);
    rdv_uuid_v4(sid);
    c.body = json_pack("{s:s, s:s, s:s, s:I, s:{s:s, s:i, s:s, s:i, s:s}, s:I}", "fromNodeID",
                       from, "toNodeID", to, "sessionID", sid, "timestamp",
                       (json_int_t)rdv_now_ms(), "connectionInfo", "publicIP", "203.0.113.5",
                       "publicPort", 41641, "localIP", "10.0.0.5", "localPort", 51820,
                       "natType", "symmetric", "benchSeq", (json_int_t)123456);
    if (!c.body || rdv_sig_sign(RDV_MSG_OFFER, c.body, c.sk) != 0)
        return 1;
    json_t *env = rdv_msg_wrap(RDV_MSG_OFFER, json_incref(c.body));
    c.text = rdv_msg_dump(env, &c.text_len);
    json_decref(env);
    rdv_msg_error e;
    if (!c.text ||
        rdv_msg_parse((const uint8_t *)c.text, c.text_len, RDV_MAX_MESSAGE_BYTES, &c.parsed,
                      &e) != 0 ||
        rdv_sig_input(RDV_MSG_OFFER, c.body, &c.input, &c.input_len) != 0)
        return 1;
    crypto_sign_detached(c.sig, NULL, c.input, c.input_len, c.sk);
    printf("# offer %zu bytes on the wire, signing input %zu bytes, %.1f s per test, 1 thread\n",
           c.text_len, c.input_len, seconds);
    run("sodium_verify", op_sodium_verify, &c, seconds, max_iter);
    run("sodium_sign", op_sodium_sign, &c, seconds, max_iter);
    run("codec_parse", op_codec_parse, &c, seconds, max_iter);
    run("codec_verify", op_codec_verify, &c, seconds, max_iter);
    run("codec_sign", op_codec_sign, &c, seconds, max_iter);
    rdv_msg_free(&c.parsed);
    json_decref(c.body);
    free(c.text);
    free(c.input);
    return 0;
}
