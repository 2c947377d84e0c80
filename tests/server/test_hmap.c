/* test_hmap.c - server_hmap: the node map's pass in slices
 * (srv_hmap_each_from, hmap.h), which the frame guard uses to check a
 * slice of the connections per tick (frame_guard.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "rendezvous/hmap.h"

typedef struct entry {
    srv_hnode node;
    uint32_t key;
    int visits;
    int removed;
} entry;

enum { N = 1000 };

typedef struct walk {
    srv_hmap *m;
    bool remove_odd; /* remove the odd keys as they are visited */
} walk;

static void visit(srv_hnode *n, void *user)
{
    walk *w = user;
    entry *e = srv_container_of(n, entry, node);
    e->visits++;
    if (w->remove_odd && e->key % 2) {
        srv_hmap_del(w->m, n);
        e->removed = 1;
    }
}

static void fill(srv_hmap *m, entry *es)
{
    assert_int_equal(srv_hmap_init(m, sizeof es[0].key, offsetof(entry, key)), 0);
    for (uint32_t i = 0; i < N; i++) {
        memset(&es[i], 0, sizeof es[i]);
        es[i].key = i;
        srv_hmap_put(m, &es[i].node);
    }
    assert_int_equal(m->count, N);
}

/* Slices of at most `max` (whole buckets) visit every entry exactly once
 * per pass, and the cursor comes back to 0 at the end of each pass. */
static void test_slices_cover_once(void **state)
{
    (void)state;
    static entry es[N];
    srv_hmap m;
    fill(&m, es);
    walk w = {&m, false};
    for (int pass = 1; pass <= 2; pass++) {
        size_t bucket = 0, total = 0;
        int calls = 0;
        do {
            size_t got = srv_hmap_each_from(&m, &bucket, 64, visit, &w);
            total += got;
            calls++;
            assert_true(calls <= N); /* bounded */
        } while (bucket != 0);
        assert_int_equal(total, N);
        assert_true(calls >= N / 64 / 2); /* it did stop early: several slices */
        for (int i = 0; i < N; i++)
            assert_int_equal(es[i].visits, pass);
    }
    srv_hmap_free(&m);
}

/* An entry removed (and its memory reusable) during the pass does not
 * break the slice; the others are still visited once. */
static void test_slices_remove(void **state)
{
    (void)state;
    static entry es[N];
    srv_hmap m;
    fill(&m, es);
    walk w = {&m, true};
    size_t bucket = 0, total = 0;
    do
        total += srv_hmap_each_from(&m, &bucket, 10, visit, &w);
    while (bucket != 0);
    assert_int_equal(total, N);
    assert_int_equal(m.count, N / 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(es[i].visits, 1);
        assert_int_equal(es[i].removed, i % 2);
    }
    /* an empty table: one call, nothing, the pass is over */
    srv_hmap e;
    assert_int_equal(srv_hmap_init(&e, 4, 0), 0);
    bucket = 0;
    assert_int_equal(srv_hmap_each_from(&e, &bucket, 10, visit, &w), 0);
    assert_int_equal(bucket, 0);
    srv_hmap_free(&e);
    srv_hmap_free(&m);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slices_cover_once),
        cmocka_unit_test(test_slices_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
