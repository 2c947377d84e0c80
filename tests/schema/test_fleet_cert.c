/* test_fleet_cert.c - schema/fleet_cert.c against schema/vectors/fleet.json,
 * which the independent Python implementation wrote (make_vectors.py):
 * every case reaches the outcome the vectors give (ok, malformed,
 * unknown_fleet_key, bad_signature, wrong_node, not_yet_valid, expired);
 * a certificate the C code makes with the vectors' key, node, serial and
 * times is byte for byte the Python one (Ed25519 is deterministic); fleet
 * keys decode from hex and base64; certificate text with duplicate keys
 * or over the size bound is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "schema/fleet_cert.h"
#include "schema/jcs.h"

static json_t *load_vectors(void)
{
    const char *src = getenv("RDV_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/schema/vectors/fleet.json", src ? src : ".");
    json_error_t jerr;
    json_t *v = json_load_file(path, 0, &jerr);
    if (!v)
        fail_msg("cannot load %s: %s", path, jerr.text);
    return v;
}

/* The trusted keys of the vectors (raw), count in *n. */
static void trusted_keys(json_t *v, uint8_t keys[][32], size_t *n)
{
    size_t i;
    json_t *k;
    *n = 0;
    json_array_foreach(json_object_get(v, "keys"), i, k) {
        if (!json_is_true(json_object_get(k, "trusted")))
            continue;
        const char *hex = json_string_value(json_object_get(k, "public_key"));
        assert_int_equal(rdv_fleet_key_decode(hex, strlen(hex), keys[*n]), 0);
        (*n)++;
    }
}

static void test_vector_cases(void **state)
{
    (void)state;
    json_t *v = load_vectors();
    uint8_t keys[4][32];
    size_t nkeys = 0;
    trusted_keys(v, keys, &nkeys);
    assert_int_equal(nkeys, 2);
    json_int_t skew = json_integer_value(json_object_get(v, "skew_ms"));
    assert_int_equal(skew, 30000);
    size_t i, ok = 0;
    json_t *c;
    json_array_foreach(json_object_get(v, "cases"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *want = json_string_value(json_object_get(c, "expect"));
        /* through text, as a certificate arrives in hello or from a file */
        char *text = json_dumps(json_object_get(c, "cert"), JSON_COMPACT);
        assert_non_null(text);
        char why[256];
        json_t *cert = rdv_fleet_cert_load_text(text, strlen(text), why, sizeof why);
        free(text);
        assert_non_null(cert);
        rdv_fleet_cert out;
        rdv_fleet_rc rc = rdv_fleet_cert_verify(
            cert, (const uint8_t(*)[32])keys, nkeys,
            json_string_value(json_object_get(c, "node")),
            (int64_t)json_integer_value(json_object_get(c, "now")), skew, &out, why, sizeof why);
        if (strcmp(rdv_fleet_rc_name(rc), want) != 0)
            fail_msg("%s: got %s (%s), want %s", name, rdv_fleet_rc_name(rc), why, want);
        if (rc == RDV_FLEET_OK) {
            ok++;
            assert_string_equal(out.node_id, json_string_value(json_object_get(c, "node")));
            json_t *g = json_object_get(json_object_get(c, "cert"), "groups");
            assert_int_equal(out.n_groups, json_array_size(g));
            for (size_t k = 0; k < out.n_groups; k++)
                assert_string_equal(out.groups[k], json_string_value(json_array_get(g, k)));
        } else {
            assert_true(why[0] != '\0');
        }
        /* the same certificate with only the first trusted key, or none */
        rc = rdv_fleet_cert_verify(cert, NULL, 0, json_string_value(json_object_get(c, "node")),
                                   0, skew, NULL, NULL, 0);
        assert_int_not_equal(rc, RDV_FLEET_OK);
        json_decref(cert);
    }
    assert_true(ok >= 4);
    json_decref(v);
}

/* C makes the vectors' "minimal" and "groups_rotated_key" certificates
 * byte for byte. */
static void test_make_matches_python(void **state)
{
    (void)state;
    json_t *v = load_vectors();
    const char *names[] = {"minimal", "groups_rotated_key"};
    const char *signers[] = {"F1", "F2"};
    for (int n = 0; n < 2; n++) {
        json_t *want = NULL;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(v, "cases"), i, c) {
            if (strcmp(json_string_value(json_object_get(c, "name")), names[n]) == 0)
                want = json_object_get(c, "cert");
        }
        assert_non_null(want);
        const char *seed_hex = NULL;
        json_array_foreach(json_object_get(v, "keys"), i, c) {
            if (strcmp(json_string_value(json_object_get(c, "name")), signers[n]) == 0)
                seed_hex = json_string_value(json_object_get(c, "seed"));
        }
        assert_non_null(seed_hex);
        uint8_t seed[32], pk[32], sk[64];
        assert_int_equal(sodium_hex2bin(seed, 32, seed_hex, 64, NULL, NULL, NULL), 0);
        assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
        json_t *g = json_object_get(want, "groups");
        const char *groups[16];
        size_t ng = json_array_size(g);
        for (size_t k = 0; k < ng; k++)
            groups[k] = json_string_value(json_array_get(g, k));
        json_t *got = rdv_fleet_cert_make(
            sk, json_string_value(json_object_get(want, "nodeID")),
            json_string_value(json_object_get(want, "serial")),
            (int64_t)json_integer_value(json_object_get(want, "notBefore")),
            (int64_t)json_integer_value(json_object_get(want, "expires")), groups, ng);
        assert_non_null(got);
        char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        assert_int_equal(rdv_jcs_serialize(got, 1 << 20, &a, &al), 0);
        assert_int_equal(rdv_jcs_serialize(want, 1 << 20, &b, &bl), 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_decref(got);
    }
    json_decref(v);
}

static void test_make_refuses_bad_input(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64];
    crypto_sign_keypair(pk, sk);
    const char *node = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    const char *bad_group[] = {"has space"};
    const char *dup[] = {"a", "a"};
    const char *ok[] = {"relay"};
    assert_null(rdv_fleet_cert_make(sk, "zz", NULL, 1, 2, NULL, 0));
    assert_null(rdv_fleet_cert_make(sk, node, "ABC", 1, 2, NULL, 0));
    assert_null(rdv_fleet_cert_make(sk, node, NULL, 5, 2, NULL, 0));
    assert_null(rdv_fleet_cert_make(sk, node, NULL, 1, 2, bad_group, 1));
    assert_null(rdv_fleet_cert_make(sk, node, NULL, 1, 2, dup, 2));
    json_t *c = rdv_fleet_cert_make(sk, node, NULL, 1, 2, ok, 1);
    assert_non_null(c);
    /* a random serial, and it verifies with its own key */
    rdv_fleet_cert out;
    assert_int_equal(rdv_fleet_cert_verify(c, (const uint8_t(*)[32])pk, 1, node, 2, 0, &out,
                                           NULL, 0),
                     RDV_FLEET_OK);
    assert_int_equal(strlen(out.serial), 32);
    json_decref(c);
}

static void test_key_decode(void **state)
{
    (void)state;
    uint8_t k[32], want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (uint8_t)(i * 7 + 1);
    char hex[65], b64[64];
    sodium_bin2hex(hex, sizeof hex, want, 32);
    sodium_bin2base64(b64, sizeof b64, want, 32, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(rdv_fleet_key_decode(hex, 64, k), 0);
    assert_memory_equal(k, want, 32);
    memset(k, 0, 32);
    assert_int_equal(rdv_fleet_key_decode(b64, strlen(b64), k), 0);
    assert_memory_equal(k, want, 32);
    assert_int_equal(rdv_fleet_key_decode(b64, 43, k), 0); /* without the padding */
    assert_int_equal(rdv_fleet_key_decode(hex, 63, k), -1);
    hex[5] = 'x';
    assert_int_equal(rdv_fleet_key_decode(hex, 64, k), -1);
    assert_int_equal(rdv_fleet_key_decode("", 0, k), -1);
    b64[3] = '*';
    assert_int_equal(rdv_fleet_key_decode(b64, strlen(b64), k), -1);
}

static void test_load_text(void **state)
{
    (void)state;
    char why[128];
    const char *dup = "{\"type\":\"fleetCert\",\"type\":\"fleetCert\"}";
    assert_null(rdv_fleet_cert_load_text(dup, strlen(dup), why, sizeof why));
    assert_null(rdv_fleet_cert_load_text("[1]", 3, why, sizeof why));
    assert_null(rdv_fleet_cert_load_text("{", 1, why, sizeof why));
    assert_null(rdv_fleet_cert_load_text("", 0, why, sizeof why));
    char *big = malloc(RDV_FLEET_CERT_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, ' ', RDV_FLEET_CERT_MAX_BYTES + 1);
    big[0] = '{';
    big[RDV_FLEET_CERT_MAX_BYTES] = '}';
    big[RDV_FLEET_CERT_MAX_BYTES + 1] = '\0';
    assert_null(rdv_fleet_cert_load_text(big, RDV_FLEET_CERT_MAX_BYTES + 1, why, sizeof why));
    json_t *ok = rdv_fleet_cert_load_text(big + 1, RDV_FLEET_CERT_MAX_BYTES - 1, why, sizeof why);
    assert_null(ok); /* "   ...}" is not JSON */
    free(big);
    char field[32];
    json_t *o = json_pack("{s:s}", "type", "fleetCert");
    assert_int_equal(rdv_fleet_cert_parse(o, NULL, field, sizeof field), RDV_FLEET_EMALFORMED);
    assert_string_equal(field, "v");
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_cases),
        cmocka_unit_test(test_make_matches_python),
        cmocka_unit_test(test_make_refuses_bad_input),
        cmocka_unit_test(test_key_decode),
        cmocka_unit_test(test_load_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
