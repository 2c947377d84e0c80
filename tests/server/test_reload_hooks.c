/* test_reload_hooks.c - server_reload_hooks: rendezvous/reload.c alone
 * (the contract of reload.h): hooks run in registration order, a failing
 * hook does not stop the ones after it, the counters, one log line per
 * reload naming the failed hook and its reason, and register's refusals
 * (empty, too long or duplicate name, NULL fn, a full list).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rendezvous/reload.h"

typedef struct calls {
    char order[64];
    int fail_b;
} calls;

static int hook(calls *c, char id, bool fail, char *err, size_t errlen)
{
    size_t n = strlen(c->order);
    c->order[n] = id;
    c->order[n + 1] = '\0';
    if (fail) {
        snprintf(err, errlen, "%c.conf:3: bad value", id);
        return -1;
    }
    return 0;
}
static int hook_a(void *u, char *err, size_t len) { return hook(u, 'a', false, err, len); }
static int hook_b(void *u, char *err, size_t len)
{
    return hook(u, 'b', ((calls *)u)->fail_b, err, len);
}
static int hook_c(void *u, char *err, size_t len) { return hook(u, 'c', false, err, len); }

/* Runs srv_reload_run with stderr captured; returns its result, *out the
 * text written (malloc'd). */
static int run_captured(srv_reload *r, char **out)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    srv_logger log = {SRV_LOG_ERROR, false}; /* NOTICE and ERROR only */
    int rc = srv_reload_run(r, &log);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    rewind(tmp);
    *out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    assert_non_null(*out);
    if (n > 0)
        assert_int_equal(fread(*out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return rc;
}

static void test_order_and_failure(void **state)
{
    (void)state;
    srv_reload r;
    srv_reload_init(&r);
    calls c = {"", 0};
    assert_int_equal(r.last_ok, 1);
    assert_int_equal(srv_reload_register(&r, "config", hook_a, &c), 0);
    assert_int_equal(srv_reload_register(&r, "policy", hook_b, &c), 0);
    assert_int_equal(srv_reload_register(&r, "tls", hook_c, &c), 0);

    char *out = NULL;
    assert_int_equal(run_captured(&r, &out), 0);
    assert_string_equal(c.order, "abc");
    assert_non_null(strstr(out, "reload 1: ok (config, policy, tls)"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
    free(out);
    assert_int_equal(r.reloads, 1);
    assert_int_equal(r.failures, 0);

    c.order[0] = '\0';
    c.fail_b = 1;
    assert_int_equal(run_captured(&r, &out), 1);
    assert_string_equal(c.order, "abc"); /* tls still ran after policy failed */
    assert_non_null(strstr(out, "reload 2: FAILED: policy: b.conf:3: bad value"));
    assert_non_null(strstr(out, "applied: config, tls"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
    free(out);
    assert_int_equal(r.reloads, 2);
    assert_int_equal(r.failures, 1);
    assert_int_equal(r.last_ok, 0);

    c.fail_b = 0;
    assert_int_equal(run_captured(&r, &out), 0);
    free(out);
    assert_int_equal(r.last_ok, 1);
    assert_int_equal(r.failures, 1);
}

static void test_register_refusals(void **state)
{
    (void)state;
    srv_reload r;
    srv_reload_init(&r);
    calls c = {"", 0};
    assert_int_equal(srv_reload_register(&r, "", hook_a, &c), -1);
    assert_int_equal(srv_reload_register(&r, NULL, hook_a, &c), -1);
    assert_int_equal(srv_reload_register(&r, "x", NULL, &c), -1);
    char longname[SRV_RELOAD_NAME_MAX + 1];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(srv_reload_register(&r, longname, hook_a, &c), -1);
    longname[SRV_RELOAD_NAME_MAX - 1] = '\0'; /* the longest allowed */
    assert_int_equal(srv_reload_register(&r, longname, hook_a, &c), 0);
    assert_int_equal(srv_reload_register(&r, longname, hook_b, &c), -1); /* twice */
    for (int i = 1; i < SRV_RELOAD_MAX_HOOKS; i++) {
        char name[8];
        snprintf(name, sizeof name, "h%d", i);
        assert_int_equal(srv_reload_register(&r, name, hook_c, &c), 0);
    }
    assert_int_equal(srv_reload_register(&r, "onemore", hook_c, &c), -1); /* full */
    assert_int_equal(r.n_hooks, SRV_RELOAD_MAX_HOOKS);

    /* no hooks: still one line, counted */
    srv_reload empty;
    srv_reload_init(&empty);
    char *out = NULL;
    assert_int_equal(run_captured(&empty, &out), 0);
    assert_non_null(strstr(out, "reload 1: ok (nothing to reload)"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_failure),
        cmocka_unit_test(test_register_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
