/* test_ids.c - node IDs, UUIDs and hex helpers (ids.c). */
#include <stdio.h>
#include <stdlib.h>

#include "fixtures.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Calls f on an exact-size heap copy of s, so ASan sees reads past len. */
static bool on_heap(bool (*f)(const char *, size_t), const char *s, size_t len)
{
    char *c = malloc(len ? len : 1);
    assert_non_null(c);
    memcpy(c, s, len);
    bool r = f(c, len);
    free(c);
    return r;
}

static void test_hex_valid(void **state)
{
    (void)state;
    assert_true(rdv_hex_valid("", 0, 0));
    assert_true(rdv_hex_valid("00ff", 4, 4));
    assert_false(rdv_hex_valid("00ff", 4, 3));
    assert_false(rdv_hex_valid("00ff", 3, 4));
    assert_false(rdv_hex_valid("00FF", 4, 4));
    assert_false(rdv_hex_valid("00fg", 4, 4));
    assert_false(rdv_hex_valid("00f ", 4, 4));
    assert_false(rdv_hex_valid("0\0ff", 4, 4));
    assert_false(rdv_hex_valid(NULL, 0, 0));
    /* Only len bytes are looked at. */
    assert_true(rdv_hex_valid("abcXYZ", 3, 3));
}

static void test_node_id_valid(void **state)
{
    (void)state;
    assert_true(on_heap(rdv_node_id_valid, H64, 64));
    assert_false(on_heap(rdv_node_id_valid, H64, 63));
    assert_false(on_heap(rdv_node_id_valid, H64 "0", 65));
    assert_false(on_heap(rdv_node_id_valid, "", 0));
    char s[65];
    for (int i = 0; i < 64; i++) {
        for (const char *bad = "AFgz -\xc3"; *bad; bad++) {
            memcpy(s, H64, 65);
            s[i] = *bad;
            assert_false(on_heap(rdv_node_id_valid, s, 64));
        }
    }
    assert_false(rdv_node_id_valid(NULL, 64));
}

static void test_node_id_pk(void **state)
{
    (void)state;
    fx_keys k;
    fx_key(&k, 0x07);
    char id[RDV_NODE_ID_HEXLEN + 1];
    memset(id, 'Z', sizeof id);
    rdv_node_id_from_pk(k.pk, id);
    assert_int_equal(strlen(id), 64);
    assert_true(rdv_node_id_valid(id, strlen(id)));
    uint8_t pk[RDV_NODE_ID_BYTES];
    assert_int_equal(rdv_node_id_to_pk(id, pk), 0);
    assert_memory_equal(pk, k.pk, sizeof pk);

    /* Known value. */
    uint8_t bytes[32];
    for (int i = 0; i < 32; i++)
        bytes[i] = (uint8_t)(i * 8 + 7);
    rdv_node_id_from_pk(bytes, id);
    assert_string_equal(
        id, "070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff");

    /* Invalid IDs are refused and pk is not required to change. */
    assert_int_equal(rdv_node_id_to_pk(NULL, pk), -1);
    assert_int_equal(rdv_node_id_to_pk(H64, NULL), -1);
    assert_int_equal(rdv_node_id_to_pk("", pk), -1);
    assert_int_equal(rdv_node_id_to_pk(H64 "0", pk), -1);
    char up[65];
    memcpy(up, H64, 65);
    up[10] = 'A';
    assert_int_equal(rdv_node_id_to_pk(up, pk), -1);
    /* A 63-character string on the heap: no read past its NUL. */
    char *shorter = strdup(H64);
    assert_non_null(shorter);
    shorter[63] = '\0';
    assert_int_equal(rdv_node_id_to_pk(shorter, pk), -1);
    free(shorter);
}

static void test_uuid_valid(void **state)
{
    (void)state;
    const char *good[] = {FX_SESSION, "00000000-0000-0000-0000-000000000000",
                          "ffffffff-ffff-ffff-ffff-ffffffffffff",
                          "01234567-89ab-7def-8123-456789abcdef"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(on_heap(rdv_uuid_valid, good[i], strlen(good[i])));
    const char *bad[] = {
        "",
        "0f8fad5b-d9cb-469f-a165-70867728950",
        "0f8fad5b-d9cb-469f-a165-70867728950e0",
        "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "0f8fad5bd9cb469fa16570867728950e",
        "0f8fad5b-d9cb-469f-a16570867728950e-",
        "0f8fad5b_d9cb_469f_a165_70867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950g",
        "{f8fad5b-d9cb-469f-a165-70867728950e",
        "0f8fad5-bd9cb-469f-a165-70867728950e",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(on_heap(rdv_uuid_valid, bad[i], strlen(bad[i])));
    assert_false(rdv_uuid_valid(NULL, 36));
}

static void test_uuid_v4(void **state)
{
    (void)state;
    char seen[64][RDV_UUID_STRLEN + 1];
    for (int i = 0; i < 64; i++) {
        char u[RDV_UUID_STRLEN + 1];
        memset(u, 'Z', sizeof u);
        rdv_uuid_v4(u);
        assert_int_equal(strlen(u), RDV_UUID_STRLEN);
        assert_true(rdv_uuid_valid(u, strlen(u)));
        assert_int_equal(u[14], '4');                 /* version */
        assert_non_null(strchr("89ab", u[19]));       /* variant 10xx */
        for (int j = 0; j < i; j++)
            assert_string_not_equal(u, seen[j]);
        strcpy(seen[i], u);
    }
}

static void test_uuid_bytes(void **state)
{
    (void)state;
    uint8_t b[RDV_UUID_BYTES];
    assert_int_equal(rdv_uuid_to_bytes(FX_SESSION, b), 0);
    const uint8_t want[16] = {0x0f, 0x8f, 0xad, 0x5b, 0xd9, 0xcb, 0x46, 0x9f,
                              0xa1, 0x65, 0x70, 0x86, 0x77, 0x28, 0x95, 0x0e};
    assert_memory_equal(b, want, 16);
    char s[RDV_UUID_STRLEN + 1];
    rdv_uuid_from_bytes(b, s);
    assert_string_equal(s, FX_SESSION);

    for (int i = 0; i < 32; i++) {
        uint8_t r[16], back[16];
        randombytes_buf(r, sizeof r);
        rdv_uuid_from_bytes(r, s);
        assert_true(rdv_uuid_valid(s, strlen(s)));
        assert_int_equal(rdv_uuid_to_bytes(s, back), 0);
        assert_memory_equal(r, back, 16);
    }

    assert_int_equal(rdv_uuid_to_bytes("0F8FAD5B-D9CB-469F-A165-70867728950E", b), -1);
    assert_int_equal(rdv_uuid_to_bytes("0f8fad5b-d9cb-469f-a165-70867728950", b), -1);
    assert_int_equal(rdv_uuid_to_bytes(FX_SESSION "0", b), -1);
    assert_int_equal(rdv_uuid_to_bytes("", b), -1);
    assert_int_equal(rdv_uuid_to_bytes(NULL, b), -1);
    assert_int_equal(rdv_uuid_to_bytes(FX_SESSION, NULL), -1);
    char *shorter = strdup(FX_SESSION);
    assert_non_null(shorter);
    shorter[35] = '\0';
    assert_int_equal(rdv_uuid_to_bytes(shorter, b), -1);
    free(shorter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_valid),
        cmocka_unit_test(test_node_id_valid),
        cmocka_unit_test(test_node_id_pk),
        cmocka_unit_test(test_uuid_valid),
        cmocka_unit_test(test_uuid_v4),
        cmocka_unit_test(test_uuid_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
