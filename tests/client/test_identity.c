/* test_identity.c - librendezvous identity: generate, save (0600), load,
 * refusal of readable key files and malformed content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <rendezvous/rendezvous.h>

struct tmp {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    strcpy(t->dir, "/tmp/rdv-identity-XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s/node.key", t->dir);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tmp *t = *state;
    unlink(t->path);
    rmdir(t->dir);
    free(t);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_roundtrip(void **state)
{
    struct tmp *t = *state;
    rdv_identity a, b;
    assert_int_equal(rdv_identity_generate(&a), 0);
    assert_int_equal(rdv_identity_save(&a, t->path, 0), 0);

    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(rdv_identity_load(&b, t->path), 0);
    assert_memory_equal(a.public_key, b.public_key, RDV_PUBLIC_KEY_BYTES);
    assert_memory_equal(a.secret_key, b.secret_key, RDV_SECRET_KEY_BYTES);

    char ida[RDV_NODE_ID_LEN + 1], idb[RDV_NODE_ID_LEN + 1];
    rdv_identity_node_id(&a, ida);
    rdv_identity_node_id(&b, idb);
    assert_string_equal(ida, idb);
    assert_int_equal(strlen(ida), RDV_NODE_ID_LEN);
    for (size_t i = 0; i < RDV_NODE_ID_LEN; i++)
        assert_true((ida[i] >= '0' && ida[i] <= '9') || (ida[i] >= 'a' && ida[i] <= 'f'));

    rdv_identity_wipe(&b);
    static const uint8_t zero[RDV_SECRET_KEY_BYTES];
    assert_memory_equal(b.secret_key, zero, sizeof(zero));
}

static void test_no_overwrite(void **state)
{
    struct tmp *t = *state;
    rdv_identity a, b, c;
    assert_int_equal(rdv_identity_generate(&a), 0);
    assert_int_equal(rdv_identity_generate(&b), 0);
    assert_int_equal(rdv_identity_save(&a, t->path, 0), 0);
    assert_int_equal(rdv_identity_save(&b, t->path, 0), RDV_ERR_EXISTS);
    assert_int_equal(rdv_identity_load(&c, t->path), 0);
    assert_memory_equal(a.public_key, c.public_key, RDV_PUBLIC_KEY_BYTES);
    /* overwrite narrows an existing file's mode to 0600 */
    assert_int_equal(chmod(t->path, 0644), 0);
    assert_int_equal(rdv_identity_save(&b, t->path, 1), 0);
    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rdv_identity_load(&c, t->path), 0);
    assert_memory_equal(b.public_key, c.public_key, RDV_PUBLIC_KEY_BYTES);
}

static void test_refuse_readable(void **state)
{
    struct tmp *t = *state;
    rdv_identity a, b;
    assert_int_equal(rdv_identity_generate(&a), 0);
    assert_int_equal(rdv_identity_save(&a, t->path, 0), 0);
    const mode_t bad[] = {0640, 0604, 0660, 0606, 0610};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(t->path, bad[i]), 0);
        assert_int_equal(rdv_identity_load(&b, t->path), RDV_ERR_PERM);
    }
    assert_int_equal(chmod(t->path, 0400), 0);
    assert_int_equal(rdv_identity_load(&b, t->path), 0);
    /* a directory is not a key file */
    assert_int_equal(rdv_identity_load(&b, t->dir), RDV_ERR_PERM);
}

static void test_known_seed(void **state)
{
    /* RFC 8032 7.1 TEST 1: this seed has this public key. */
    struct tmp *t = *state;
    write_file(t->path,
               "rendezvous-ed25519-v1 "
               "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
               0600);
    rdv_identity id;
    assert_int_equal(rdv_identity_load(&id, t->path), 0);
    char node_id[RDV_NODE_ID_LEN + 1];
    rdv_identity_node_id(&id, node_id);
    assert_string_equal(node_id,
                        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
}

static void test_malformed(void **state)
{
    struct tmp *t = *state;
    const char *bad[] = {
        "",
        "rendezvous-ed25519-v1 \n",
        "rendezvous-ed25519-v1 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6\n",
        "rendezvous-ed25519-v1 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f600\n",
        "rendezvous-ed25519-v2 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
        "rendezvous-ed25519-v1 9D61B19DEFFD5A60BA844AF492EC2CC44449C5697B326919703BAC031CAE7F60\n",
        "rendezvous-ed25519-v1 zz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
        "rendezvous-ed25519-v1 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(t->path, bad[i], 0600);
        rdv_identity id;
        assert_int_equal(rdv_identity_load(&id, t->path), RDV_ERR_FORMAT);
    }
    rdv_identity id;
    assert_int_equal(rdv_identity_load(&id, "/nonexistent/dir/key"), RDV_ERR_NOT_FOUND);
    /* A missing directory on save: not found, not a bare I/O error. */
    rdv_identity g;
    assert_int_equal(rdv_identity_generate(&g), 0);
    assert_int_equal(rdv_identity_save(&g, "/nonexistent/dir/key", 0), RDV_ERR_NOT_FOUND);
    rdv_identity_wipe(&g);
    assert_int_equal(rdv_identity_load(&id, NULL), RDV_ERR_INVALID);
    assert_int_equal(rdv_identity_save(&id, "", 0), RDV_ERR_INVALID);
    assert_string_equal(rdv_strerror(RDV_ERR_PERM),
                        "key file is readable or writable by others (chmod 600 it)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_seed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    };
    return cmocka_run_group_tests_name("client_identity", tests, NULL, NULL);
}
