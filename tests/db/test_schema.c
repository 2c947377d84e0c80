/* test_schema.c: tests for the schema the migrations create (nodes,
 * offline_queue): CHECK constraints, defaults, delivery order by id, exact
 * raw bytes, and the indexes the server's queries rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db_test_util.h"
#include "db/migrate.h"

#define NODE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NODE_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NODE_C "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

/* Per-test state: a migrated database in a temporary file. */
struct fixture {
    char path[TMPDB_PATH_MAX];
    sqlite3 *db;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tmpdb_create(f->path, NULL, 0);
    char err[256];
    int rc = rdv_db_open(f->path, &f->db, err, sizeof err);
    if (rc != 0)
        fail_msg("rdv_db_open: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    tmpdb_remove(f->path);
    free(f);
    return 0;
}

/* Insert a node with the given id and nat_type (SQL literal, may be NULL)
 * and return SQLite's result code. */
static int insert_node(sqlite3 *db, const char *id, const char *nat_sql)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO nodes (node_id, first_seen,"
             " last_seen, online, nat_type) VALUES ('%s', 1, 1, 1, %s)",
             id, nat_sql);
    return exec_rc(db, sql);
}

static void test_nat_type_check(void **state)
{
    struct fixture *f = *state;
    static const char *const good[] = {
        "'fullCone'", "'restrictedCone'", "'portRestricted'", "'symmetric'",
        "'unknown'",
    };
    static const char *const bad[] = {
        "'bogus'", "'FullCone'", "'full_cone'", "''", "'symmetric '", "NULL",
        "1",
    };
    static const char *const ids[] = {
        "1111111111111111111111111111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222222222222222222222222222",
        "3333333333333333333333333333333333333333333333333333333333333333",
        "4444444444444444444444444444444444444444444444444444444444444444",
        "5555555555555555555555555555555555555555555555555555555555555555",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(insert_node(f->db, ids[i], good[i]), SQLITE_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = insert_node(f->db, NODE_A, bad[i]);
        if (rc == SQLITE_OK)
            fail_msg("nat_type %s was accepted", bad[i]);
        assert_int_equal(rc & 0xff, SQLITE_CONSTRAINT);
    }
    assert_int_equal(insert_node(f->db, NODE_A, "'bogus'"),
                     SQLITE_CONSTRAINT_CHECK);
    assert_int_equal(query_ll(f->db, "SELECT count(*) FROM nodes"), 5);

    /* Updates are checked too; the default is 'unknown'. */
    assert_int_equal(exec_rc(f->db, "UPDATE nodes SET nat_type = 'cone'"),
                     SQLITE_CONSTRAINT_CHECK);
    exec_ok(f->db, "INSERT INTO nodes (node_id, first_seen, last_seen)"
                   " VALUES ('" NODE_B "', 5, 6)");
    assert_int_equal(query_ll(f->db, "SELECT nat_type = 'unknown' AND"
                                     " online = 0 AND observed_ip IS NULL"
                                     " FROM nodes WHERE node_id = '" NODE_B
                                     "'"), 1);
}

static void test_node_columns_check(void **state)
{
    struct fixture *f = *state;
    static const char *const bad_ids[] = {
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ",
        "",
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
        assert_int_equal(insert_node(f->db, bad_ids[i], "'unknown'"),
                         SQLITE_CONSTRAINT_CHECK);

    assert_int_equal(insert_node(f->db, NODE_A, "'unknown'"), SQLITE_OK);
    assert_int_equal(insert_node(f->db, NODE_A, "'symmetric'"),
                     SQLITE_CONSTRAINT_PRIMARYKEY);

    assert_int_equal(exec_rc(f->db, "UPDATE nodes SET online = 2"),
                     SQLITE_CONSTRAINT_CHECK);
    assert_int_equal(exec_rc(f->db, "UPDATE nodes SET observed_port = 65536"),
                     SQLITE_CONSTRAINT_CHECK);
    assert_int_equal(exec_rc(f->db, "UPDATE nodes SET observed_port = -1"),
                     SQLITE_CONSTRAINT_CHECK);
    exec_ok(f->db, "UPDATE nodes SET online = 0, observed_ip = '203.0.113.7',"
                   " observed_port = 65535");
}

/* Queue a message and return its id. */
static long long enqueue(sqlite3 *db, const char *recipient,
                         const char *type, const void *raw, int rawlen)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
        "INSERT INTO offline_queue (recipient, sender, type, session_id,"
        " raw, created, expires) VALUES (?1, '" NODE_C "', ?2, 's1', ?3,"
        " 1000, 61000)", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC),
                     SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC),
                     SQLITE_OK);
    assert_int_equal(sqlite3_bind_blob(st, 3, raw, rawlen, SQLITE_STATIC),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    return sqlite3_last_insert_rowid(db);
}

/* Messages for one recipient come back in insertion order, byte-exact. */
static void test_offline_queue_order(void **state)
{
    struct fixture *f = *state;
    static const char *const msgs[] = {
        "{\"type\":\"offer\",\"n\":1}", "{\"type\":\"x\",\"n\":2}",
        "{\"type\":\"answer\",\"n\":3}", "{\"type\":\"y\",\"n\":4}",
        "{\"type\":\"iceCandidate\",\"n\":5}",
        "{\"type\":\"relayOpen\",\"n\":6}",
    };
    static const char *const types[] = {
        "offer", "offer", "answer", "answer", "iceCandidate",
        "someFutureType", /* no CHECK on type */
    };
    for (size_t i = 0; i < 6; i++)
        enqueue(f->db, i % 2 == 0 ? NODE_A : NODE_B, types[i], msgs[i],
                (int)strlen(msgs[i]));

    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->db,
        "SELECT raw FROM offline_queue WHERE recipient = ?1 ORDER BY id",
        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, NODE_A, -1, SQLITE_STATIC),
                     SQLITE_OK);
    for (size_t i = 0; i < 6; i += 2) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_bytes(st, 0), (int)strlen(msgs[i]));
        assert_memory_equal(sqlite3_column_blob(st, 0), msgs[i],
                            strlen(msgs[i]));
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);

    /* raw keeps arbitrary bytes (NUL, invalid UTF-8) unchanged. */
    static const unsigned char bin[] = { '{', 0x00, 0xff, 0xc3, 0x28, '}' };
    long long id = enqueue(f->db, NODE_A, "offer", bin, sizeof bin);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT raw = x'7b00ffc3287d' AND"
             " typeof(raw) = 'blob' FROM offline_queue WHERE id = %lld", id);
    assert_int_equal(query_ll(f->db, sql), 1);
}

/* AUTOINCREMENT: ids keep growing even after the queue was emptied, so
 * "ORDER BY id" stays delivery order. */
static void test_offline_queue_ids_not_reused(void **state)
{
    struct fixture *f = *state;
    long long a = enqueue(f->db, NODE_A, "offer", "1", 1);
    long long b = enqueue(f->db, NODE_A, "offer", "2", 1);
    assert_true(b > a);
    exec_ok(f->db, "DELETE FROM offline_queue");
    long long c = enqueue(f->db, NODE_A, "offer", "3", 1);
    assert_true(c > b);
}

static void test_offline_queue_checks(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(exec_rc(f->db,
        "INSERT INTO offline_queue (recipient, sender, type, raw, created,"
        " expires) VALUES ('not-a-key', '" NODE_C "', 'offer', x'00', 1, 2)"),
        SQLITE_CONSTRAINT_CHECK);
    assert_int_equal(exec_rc(f->db,
        "INSERT INTO offline_queue (recipient, sender, type, raw, created,"
        " expires) VALUES ('" NODE_A "', '" NODE_C "', 'offer', NULL, 1, 2)"),
        SQLITE_CONSTRAINT_NOTNULL);
    /* session_id is optional. */
    exec_ok(f->db,
        "INSERT INTO offline_queue (recipient, sender, type, raw, created,"
        " expires) VALUES ('" NODE_A "', '" NODE_C "', 'relayReady', x'00',"
        " 1, 2)");
}

/* Return 1 if EXPLAIN QUERY PLAN for sql mentions index. */
static int plan_uses(sqlite3 *db, const char *sql, const char *index)
{
    char q[512];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    int found = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *detail = sqlite3_column_text(st, 3);
        if (detail && strstr((const char *)detail, index))
            found = 1;
    }
    assert_int_equal(rc, SQLITE_DONE);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    return found;
}

static void test_offline_queue_indexes_used(void **state)
{
    struct fixture *f = *state;
    assert_true(plan_uses(f->db, "SELECT raw FROM offline_queue WHERE"
                          " recipient = '" NODE_A "' ORDER BY id",
                          "offline_queue_recipient"));
    assert_true(plan_uses(f->db, "DELETE FROM offline_queue WHERE"
                          " expires < 5000", "offline_queue_expires"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nat_type_check, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_node_columns_check, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_ids_not_reused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offline_queue_indexes_used,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
