/* codec_sign_tool.c - exposes the C codec's signing to the Python interop
 * test (tests/schema/test_c_interop.py). Reads lines "TYPE SEEDHEX BODY"
 * (BODY: one JSON object, the message body) from stdin; for each writes
 * "SIGNATURE_HEX SIGNING_INPUT_HEX" or "ERROR <code>" on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "schema/message.h"
#include "schema/sign.h"

#define MAX_LINE (1 << 20)

static void handle(char *line)
{
    char *type_s = strtok(line, " ");
    char *seed_s = strtok(NULL, " ");
    char *body_s = strtok(NULL, "\n");
    if (!type_s || !seed_s || !body_s) {
        printf("ERROR usage\n");
        return;
    }
    rdv_msg_type type = rdv_msg_type_from_name(type_s, strlen(type_s));
    uint8_t seed[32], pk[32], sk[64];
    if (type == RDV_MSG_UNKNOWN ||
        sodium_hex2bin(seed, sizeof(seed), seed_s, strlen(seed_s), NULL, NULL, NULL) != 0) {
        printf("ERROR args\n");
        return;
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    json_error_t jerr;
    json_t *body = json_loads(body_s, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        printf("ERROR json\n");
        return;
    }
    uint8_t *input = NULL;
    size_t input_len = 0;
    int rc = rdv_sig_sign(type, body, sk);
    if (rc == 0)
        rc = rdv_sig_input(type, body, &input, &input_len);
    if (rc != 0) {
        printf("ERROR %s\n", rdv_ec_name((rdv_ec)-rc));
    } else {
        char *hex = malloc(input_len * 2 + 1);
        if (!hex) {
            printf("ERROR nomem\n");
        } else {
            sodium_bin2hex(hex, input_len * 2 + 1, input, input_len);
            printf("%s %s\n", rdv_msg_get_str(body, "signature"), hex);
            free(hex);
        }
    }
    free(input);
    json_decref(body);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    char *line = malloc(MAX_LINE);
    if (!line)
        return 1;
    while (fgets(line, MAX_LINE, stdin)) {
        handle(line);
        fflush(stdout);
    }
    free(line);
    return 0;
}
