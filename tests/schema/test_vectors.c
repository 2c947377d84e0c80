/* test_vectors.c - the C codec against schema/vectors/signing.json, which an
 * independent Python implementation wrote (schema/vectors/make_vectors.py):
 * same canonical form, same signing input, same signature (Ed25519 is
 * deterministic), valid cases verify, invalid cases do not, and the RFC 8785
 * number table formats identically. The other direction (Python verifying
 * what C signs) is tests/schema/test_c_interop.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "schema/jcs.h"
#include "schema/message.h"
#include "schema/sign.h"

static json_t *load_vectors(void)
{
    const char *src = getenv("RDV_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/schema/vectors/signing.json", src ? src : ".");
    json_error_t jerr;
    json_t *v = json_load_file(path, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!v)
        fail_msg("cannot load %s: %s", path, jerr.text);
    return v;
}

/* Parses a vector's message through the real wire path (text -> codec). */
static void parse_case(json_t *c, rdv_msg *msg)
{
    char *text = json_dumps(json_object_get(c, "message"), JSON_COMPACT);
    assert_non_null(text);
    rdv_msg_error err;
    int rc = rdv_msg_parse((const uint8_t *)text, strlen(text),
                           RDV_MAX_MESSAGE_BYTES, msg, &err);
    if (rc != 0)
        fail_msg("%s: parse failed: %s %s %s",
                 json_string_value(json_object_get(c, "name")),
                 rdv_ec_name(err.code), err.field, err.detail);
    free(text);
}

static void test_valid_cases(void **state)
{
    (void)state;
    json_t *v = load_vectors();
    json_t *valid = json_object_get(v, "valid");
    assert_true(json_array_size(valid) >= 6);
    size_t i;
    json_t *c;
    json_array_foreach(valid, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        rdv_msg msg;
        parse_case(c, &msg);
        assert_string_equal(rdv_msg_type_name(msg.type),
                            json_string_value(json_object_get(c, "type")));

        /* canonical form of the body without the signature */
        uint8_t *input = NULL;
        size_t input_len = 0;
        assert_int_equal(rdv_sig_input(msg.type, msg.body, &input, &input_len), 0);
        const char *want_hex = json_string_value(json_object_get(c, "signing_input_hex"));
        char *got_hex = malloc(input_len * 2 + 1);
        assert_non_null(got_hex);
        sodium_bin2hex(got_hex, input_len * 2 + 1, input, input_len);
        if (strcmp(got_hex, want_hex) != 0)
            fail_msg("%s: signing input differs\n got  %s\n want %s", name, got_hex, want_hex);
        const char *canon = json_string_value(json_object_get(c, "canonical"));
        size_t tag_len = strlen(RDV_DOMAIN_PREFIX) + strlen(rdv_msg_type_name(msg.type)) + 1;
        assert_int_equal(input_len - tag_len, strlen(canon));
        assert_memory_equal(input + tag_len, canon, strlen(canon));
        free(got_hex);
        free(input);

        /* verifies as is */
        assert_int_equal(rdv_sig_verify_from(msg.type, msg.body,
                                             msg.type == RDV_MSG_HELLO ? "nodeID" : "fromNodeID"), 0);

        /* C signs to the very same signature from the same seed */
        uint8_t seed[32], pk[32], sk[64];
        assert_int_equal(sodium_hex2bin(seed, sizeof(seed),
                                        json_string_value(json_object_get(c, "seed")),
                                        64, NULL, NULL, NULL), 0);
        crypto_sign_seed_keypair(pk, sk, seed);
        const char *want_sig = json_string_value(json_object_get(c, "signature"));
        assert_int_equal(rdv_sig_sign(msg.type, msg.body, sk), 0);
        assert_string_equal(rdv_msg_get_str(msg.body, "signature"), want_sig);
        rdv_msg_free(&msg);
    }
    json_decref(v);
}

static void test_invalid_cases(void **state)
{
    (void)state;
    json_t *v = load_vectors();
    json_t *invalid = json_object_get(v, "invalid");
    assert_true(json_array_size(invalid) >= 5);
    size_t i;
    json_t *c;
    json_array_foreach(invalid, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        char *text = json_dumps(json_object_get(c, "message"), JSON_COMPACT);
        assert_non_null(text);
        rdv_msg msg;
        rdv_msg_error err;
        int rc = rdv_msg_parse((const uint8_t *)text, strlen(text),
                               RDV_MAX_MESSAGE_BYTES, &msg, &err);
        free(text);
        if (rc != 0) {
            /* refused already by validation (e.g. uppercase signature) */
            assert_false(json_is_true(json_object_get(c, "schema_valid")));
            continue;
        }
        int vr = rdv_sig_verify_from(msg.type, msg.body,
                                     msg.type == RDV_MSG_HELLO ? "nodeID" : "fromNodeID");
        if (vr == 0)
            fail_msg("%s: verified but must not", name);
        rdv_msg_free(&msg);
    }
    json_decref(v);
}

static void test_number_table(void **state)
{
    (void)state;
    json_t *v = load_vectors();
    json_t *nums = json_object_get(v, "jcs_numbers");
    assert_true(json_array_size(nums) >= 20);
    size_t i;
    json_t *c;
    json_array_foreach(nums, i, c) {
        const char *bits = json_string_value(json_object_get(c, "bits"));
        json_t *want = json_object_get(c, "canonical");
        uint64_t u = strtoull(bits, NULL, 16);
        double d;
        memcpy(&d, &u, sizeof(d));
        char buf[64];
        int n = rdv_jcs_format_number(d, buf, sizeof(buf));
        if (json_is_null(want) || !json_is_string(want)) {
            assert_int_equal(n, RDV_JCS_ENUMBER);
            continue;
        }
        assert_true(n > 0);
        assert_string_equal(buf, json_string_value(want));
    }
    json_decref(v);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_cases),
        cmocka_unit_test(test_invalid_cases),
        cmocka_unit_test(test_number_table),
    };
    return cmocka_run_group_tests_name("codec_vectors", tests, NULL, NULL);
}
