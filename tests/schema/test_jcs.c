/* test_jcs.c - tests for schema/jcs.c, the RFC 8785 JSON Canonicalization
 * Scheme: the RFC's own examples (3.2.2 sample object, 3.2.3 sorting,
 * Appendix B number table) plus string escaping, UTF-8 validation, embedded
 * NULs, integers, nesting and the depth and size limits.
 */
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "schema/jcs.h"

/* Canonicalises v (no size limit), checks success and compares the bytes
 * with expect[0..expect_len). Consumes the reference to v. */
static void check_canon_n(json_t *v, const char *expect, size_t expect_len)
{
    char *out = (char *)0x1;
    size_t len = 12345;
    assert_non_null(v);
    int rc = rdv_jcs_serialize(v, SIZE_MAX, &out, &len);
    json_decref(v);
    assert_int_equal(rc, RDV_JCS_OK);
    assert_non_null(out);
    if (len != expect_len || memcmp(out, expect, expect_len) != 0)
        print_error("got      %s\nexpected %s\n", out, expect);
    assert_int_equal(len, expect_len);
    assert_memory_equal(out, expect, expect_len);
    assert_int_equal(out[len], '\0');
    free(out);
}

static void check_canon(json_t *v, const char *expect)
{
    check_canon_n(v, expect, strlen(expect));
}

/* Canonicalises v, expects error `want`, *out NULL. Consumes v. */
static void check_error(json_t *v, size_t max_len, int want)
{
    char *out = (char *)0x1;
    size_t len = 12345;
    assert_non_null(v);
    int rc = rdv_jcs_serialize(v, max_len, &out, &len);
    json_decref(v);
    assert_int_equal(rc, want);
    assert_null(out);
    assert_int_equal(len, 0);
}

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v)
        print_error("json_loads: %s (line %d col %d)\n", err.text, err.line,
                    err.column);
    assert_non_null(v);
    return v;
}

static double from_bits(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ---- RFC 8785 Appendix B: number serialisation ---- */

static const struct {
    uint64_t bits;
    const char *expect;
} number_table[] = {
    {0x0000000000000000ULL, "0"},
    {0x8000000000000000ULL, "0"},
    {0x0000000000000001ULL, "5e-324"},
    {0x8000000000000001ULL, "-5e-324"},
    {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
    {0xffefffffffffffffULL, "-1.7976931348623157e+308"},
    {0x4340000000000000ULL, "9007199254740992"},
    {0xc340000000000000ULL, "-9007199254740992"},
    {0x4430000000000000ULL, "295147905179352830000"},
    {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
    {0x44b52d02c7e14af6ULL, "1e+23"},
    {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
    {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
    {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
    {0x444b1ae4d6e2ef50ULL, "1e+21"},
    {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
    {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
    {0x41b3de4355555553ULL, "333333333.3333332"},
    {0x41b3de4355555554ULL, "333333333.33333325"},
    {0x41b3de4355555555ULL, "333333333.3333333"},
    {0x41b3de4355555556ULL, "333333333.3333334"},
    {0x41b3de4355555557ULL, "333333333.33333343"},
    {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
    {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
    /* Extra boundaries of the ECMAScript format rules. */
    {0x3ff0000000000000ULL, "1"},            /* 1 */
    {0xbff0000000000000ULL, "-1"},           /* -1 */
    {0x3fb999999999999aULL, "0.1"},          /* 0.1 */
    {0x3fd5555555555555ULL, "0.3333333333333333"},
    {0x3eb0c6f7a0b5ed8eULL, "0.0000010000000000000002"},
    {0x3ea0c6f7a0b5ed8dULL, "5e-7"},         /* n = -6: exponent form */
    {0x3e7ad7f29abcaf48ULL, "1e-7"},
    {0x0010000000000000ULL, "2.2250738585072014e-308"}, /* min normal */
    {0x000fffffffffffffULL, "2.225073858507201e-308"},  /* max subnormal */
    {0x4415af1d78b58c40ULL, "100000000000000000000"},   /* 1e20 */
    {0x7fe0000000000000ULL, "8.98846567431158e+307"},   /* 2^1023 */
    {0x4b80000000000000ULL, "4.9039857307708443e+55"},  /* 2^185 */
    /* Powers of two, where the round-trip interval is asymmetric: the
     * correctly rounded 16-digit value does not read back but its upper
     * neighbour does, so the shortest form is not the nearest 16-digit
     * rounding (a plain "%.*e" precision loop would give 17 digits). */
    {0x3d30000000000000ULL, "5.684341886080802e-14"},   /* 2^-44 */
    {0x3e70000000000000ULL, "5.960464477539063e-8"},    /* 2^-24 */
    {0x4580000000000000ULL, "6.189700196426902e+26"},   /* 2^89 */
    {0x0060000000000000ULL, "7.120236347223045e-307"},  /* 2^-1017 */
    {0x7cf0000000000000ULL, "6.386688990511104e+293"},  /* 2^976 */
};

/* Integral values on both sides of 2^53 (the fast path's bound) format as
 * ECMAScript does, and every integer printed round-trips exactly. */
static void test_number_integers_around_2p53(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {1, "1"},
        {-5, "-5"},
        {1767225600000.0, "1767225600000"},
        {4294967295.0, "4294967295"},
        {1000000000000001.0, "1000000000000001"},
        {9007199254740991.0, "9007199254740991"},
        {-9007199254740991.0, "-9007199254740991"},
        {9007199254740992.0, "9007199254740992"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = rdv_jcs_format_number(cases[i].v, buf, sizeof buf);
        assert_true(n > 0);
        assert_string_equal(buf, cases[i].want);
    }
    /* A spread of integers below 2^53: digits only, and exact. */
    double v = 1;
    for (int i = 0; i < 2000; i++) {
        v = fmod(v * 6364136223846793005.0 + 1442695040888963407.0, 9007199254740991.0);
        double x = trunc(v);
        int n = rdv_jcs_format_number(x, buf, sizeof buf);
        assert_true(n > 0);
        assert_true(strtod(buf, NULL) == x);
        assert_null(strpbrk(buf, ".e"));
    }
}

static void test_number_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof number_table / sizeof number_table[0];
         i++) {
        char buf[32];
        double d = from_bits(number_table[i].bits);
        int r = rdv_jcs_format_number(d, buf, sizeof buf);
        if (r < 0 || strcmp(buf, number_table[i].expect) != 0)
            print_error("0x%016llx: got %s (%d), expected %s\n",
                        (unsigned long long)number_table[i].bits,
                        r < 0 ? "(error)" : buf, r, number_table[i].expect);
        assert_int_equal(r, (int)strlen(number_table[i].expect));
        assert_string_equal(buf, number_table[i].expect);

        /* The same through the serializer, as a json_real. */
        check_canon(json_real(d), number_table[i].expect);
    }
}

static void test_number_nan_inf(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(rdv_jcs_format_number(from_bits(0x7fffffffffffffffULL),
                                           buf, sizeof buf),
                     RDV_JCS_ENUMBER); /* NaN */
    assert_int_equal(rdv_jcs_format_number(NAN, buf, sizeof buf),
                     RDV_JCS_ENUMBER);
    assert_int_equal(rdv_jcs_format_number(from_bits(0x7ff0000000000000ULL),
                                           buf, sizeof buf),
                     RDV_JCS_ENUMBER); /* +Infinity */
    assert_int_equal(rdv_jcs_format_number(-INFINITY, buf, sizeof buf),
                     RDV_JCS_ENUMBER);
    /* jansson refuses to build non-finite reals at all. */
    assert_null(json_real(NAN));
    assert_null(json_real(INFINITY));
}

static void test_number_small_buffer(void **state)
{
    (void)state;
    char buf[32];
    /* The longest forms fit in 32 bytes. */
    assert_int_equal(rdv_jcs_format_number(from_bits(0xbecbf647612f3696ULL),
                                           buf, 32),
                     25);
    assert_int_equal(rdv_jcs_format_number(from_bits(0xffefffffffffffffULL),
                                           buf, 32),
                     24);
    /* Too small a buffer is refused rather than overrun. */
    assert_int_equal(rdv_jcs_format_number(1.5, buf, 3), RDV_JCS_ETOOBIG);
    assert_int_equal(rdv_jcs_format_number(1.5, buf, 4), 3);
    assert_string_equal(buf, "1.5");
}

/* The decimal point from snprintf("%e") is the locale's; the output must
 * not depend on it. Skipped when no comma-decimal locale is installed. */
static void test_number_locale(void **state)
{
    (void)state;
    static const char *const locales[] = {"de_DE.UTF-8", "de_DE.utf8",
                                          "fr_FR.UTF-8", "fr_FR.utf8",
                                          "de_DE", "fr_FR"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof locales / sizeof locales[0] && !set; i++)
        set = setlocale(LC_NUMERIC, locales[i]);
    if (!set)
        skip();
    char buf[32];
    int r1 = rdv_jcs_format_number(333333333.33333329, buf, sizeof buf);
    int ok1 = r1 > 0 && strcmp(buf, "333333333.3333333") == 0;
    int r2 = rdv_jcs_format_number(1e-27, buf, sizeof buf);
    int ok2 = r2 > 0 && strcmp(buf, "1e-27") == 0;
    setlocale(LC_NUMERIC, "C");
    assert_true(ok1);
    assert_true(ok2);
}

/* ---- integers: converted to doubles (RFC 8785 3.2.2.3) ---- */

static void test_integers(void **state)
{
    (void)state;
    check_canon(json_integer(1), "1");
    check_canon(json_integer(0), "0");
    check_canon(json_integer(-42), "-42");
    check_canon(json_integer(9007199254740992LL), "9007199254740992");
    check_canon(json_integer(9007199254740993LL), "9007199254740992");
    check_canon(json_integer(-9007199254740993LL), "-9007199254740992");
    check_canon(json_integer(INT64_MAX), "9223372036854776000");
    check_canon(json_integer(INT64_MIN), "-9223372036854776000");
    check_canon(json_integer(1000000), "1000000");
    check_canon(load("[1.0, 100, 1e2, -0.0, 0]"), "[1,100,100,0,0]");
}

/* ---- literals and structure ---- */

static void test_literals(void **state)
{
    (void)state;
    check_canon(json_null(), "null");
    check_canon(json_true(), "true");
    check_canon(json_false(), "false");
    check_canon(json_string(""), "\"\"");
}

static void test_empty_containers(void **state)
{
    (void)state;
    check_canon(json_object(), "{}");
    check_canon(json_array(), "[]");
    check_canon(load("[ { } , [ ] , { \"a\" : [ ] } ]"), "[{},[],{\"a\":[]}]");
}

static void test_nested(void **state)
{
    (void)state;
    check_canon(load("{\n  \"b\": [1, {\"z\": null, \"a\": [true, false]}],\n"
                     "  \"a\": {\"y\": \"x\", \"x\": {\"c\": 3, \"b\": 2}},\n"
                     "  \"aa\": [], \"A\": 0.5\n}"),
                "{\"A\":0.5,\"a\":{\"x\":{\"b\":2,\"c\":3},\"y\":\"x\"},"
                "\"aa\":[],\"b\":[1,{\"a\":[true,false],\"z\":null}]}");
    /* Array order is preserved. */
    check_canon(load("[3, 1, 2, \"b\", \"a\"]"), "[3,1,2,\"b\",\"a\"]");
}

/* ---- RFC 8785 3.2.2: the sample object ---- */

static void test_rfc_sample(void **state)
{
    (void)state;
    json_t *v = load(
        "{\n"
        "  \"numbers\": [333333333.33333329, 1E30, 4.50,\n"
        "              2e-3, 0.000000000000000000000000001],\n"
        "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
        "  \"literals\": [null, true, false]\n"
        "}");
    check_canon(v, "{\"literals\":[null,true,false],"
                   "\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
                   "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

/* ---- RFC 8785 3.2.3: sorting by UTF-16 code units ---- */

static void test_rfc_sorting(void **state)
{
    (void)state;
    json_t *v = load("{\n"
                     "  \"\\u20ac\": \"Euro Sign\",\n"
                     "  \"\\r\": \"Carriage Return\",\n"
                     "  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n"
                     "  \"1\": \"One\",\n"
                     "  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n"
                     "  \"\\u0080\": \"Control\",\n"
                     "  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n"
                     "}");
    check_canon(v, "{\"\\r\":\"Carriage Return\","
                   "\"1\":\"One\","
                   "\"\xc2\x80\":\"Control\","
                   "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
                   "\"\xe2\x82\xac\":\"Euro Sign\","
                   "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
                   "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

static void test_sorting_more(void **state)
{
    (void)state;
    /* Prefix sorts first; U+FFFF sorts above U+10000 (surrogates D800..);
     * U+E000 too; and U+10FFFF (DBFF DFFF) sorts between. */
    json_t *o = json_object();
    assert_non_null(o);
    assert_int_equal(json_object_set_new(o, "ab", json_integer(2)), 0);
    assert_int_equal(json_object_set_new(o, "a", json_integer(1)), 0);
    assert_int_equal(json_object_set_new(o, "\xef\xbf\xbf", json_integer(6)),
                     0); /* U+FFFF */
    assert_int_equal(json_object_set_new(o, "\xee\x80\x80", json_integer(5)),
                     0); /* U+E000 */
    assert_int_equal(json_object_set_new(o, "\xf4\x8f\xbf\xbf",
                                         json_integer(4)),
                     0); /* U+10FFFF */
    assert_int_equal(json_object_set_new(o, "\xf0\x90\x80\x80",
                                         json_integer(3)),
                     0); /* U+10000 */
    assert_int_equal(json_object_set_new(o, "B", json_integer(0)), 0);
    check_canon(o, "{\"B\":0,\"a\":1,\"ab\":2,"
                   "\"\xf0\x90\x80\x80\":3,\"\xf4\x8f\xbf\xbf\":4,"
                   "\"\xee\x80\x80\":5,\"\xef\xbf\xbf\":6}");
}

/* ---- strings: RFC 8785 3.2.2.2 ---- */

static void test_string_escapes(void **state)
{
    (void)state;
    char in[32];
    for (int i = 0; i < 32; i++)
        in[i] = (char)i;
    check_canon_n(json_stringn(in, 32),
                  "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007"
                  "\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
                  "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
                  "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"",
                  2 + 8 * 6 + 5 * 2 + 3 * 6 + 16 * 6);
    /* '/' , U+007F, U+2028, U+2029, non-ASCII: raw. '"' and '\' escaped. */
    check_canon(json_string("a/b\x7f\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\"\\z"),
                "\"a/b\x7f\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\\\"\\\\z\"");
    check_canon(json_string("\xf4\x8f\xbf\xbf\xef\xbf\xbf"),
                "\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\"");
}

static void test_embedded_nul(void **state)
{
    (void)state;
    check_canon_n(json_stringn("a\0b", 3), "\"a\\u0000b\"", 10);
    check_canon_n(json_stringn("\0", 1), "\"\\u0000\"", 8);
    /* Keys with embedded NULs (jansson >= 2.14) sort by full length. */
    json_t *o = json_object();
    assert_non_null(o);
    assert_int_equal(json_object_setn_new(o, "a\0b", 3, json_integer(2)), 0);
    assert_int_equal(json_object_setn_new(o, "a", 1, json_integer(1)), 0);
    assert_int_equal(json_object_setn_new(o, "a\0a", 3, json_stringn("\0", 1)),
                     0);
    check_canon(o, "{\"a\":1,\"a\\u0000a\":\"\\u0000\",\"a\\u0000b\":2}");
    /* From parsed JSON text as well. */
    check_canon(load("[\"x\\u0000y\"]"), "[\"x\\u0000y\"]");
}

static const struct {
    const char *s;
    size_t len;
} bad_utf8[] = {
    {"\x80", 1},                 /* lone continuation byte */
    {"\xc0\xaf", 2},             /* overlong '/' */
    {"\xc1\xbf", 2},             /* overlong */
    {"\xe0\x80\xaf", 3},         /* overlong 3-byte */
    {"\xe0\x9f\xbf", 3},         /* overlong U+07FF */
    {"\xf0\x80\x80\xaf", 4},     /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", 4},     /* overlong U+FFFF */
    {"\xed\xa0\x80", 3},         /* U+D800 high surrogate */
    {"\xed\xbf\xbf", 3},         /* U+DFFF low surrogate */
    {"\xed\xa0\xbd\xed\xb8\x80", 6}, /* CESU-8 surrogate pair */
    {"\xf4\x90\x80\x80", 4},     /* U+110000 */
    {"\xf5\x80\x80\x80", 4},     /* lead byte 0xF5 */
    {"\xff", 1},
    {"\xfe", 1},
    {"\xe2\x82", 2},             /* truncated */
    {"a\xe2\x82", 3},            /* truncated at end */
    {"\xe2\x82" "a", 3},         /* bad continuation */
    {"\xc3\0", 2},               /* NUL as continuation */
    {"ok\0\xc3", 4},             /* invalid after an embedded NUL */
};

static void test_invalid_utf8(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        const char *s = bad_utf8[i].s;
        size_t n = bad_utf8[i].len;

        /* As a string value, top level and nested. */
        check_error(json_stringn_nocheck(s, n), SIZE_MAX, RDV_JCS_EUTF8);
        json_t *a = json_pack("[i, {s: [o]}]", 1, "k",
                              json_stringn_nocheck(s, n));
        check_error(a, SIZE_MAX, RDV_JCS_EUTF8);

        /* As an object key. */
        json_t *o = json_object();
        assert_non_null(o);
        assert_int_equal(json_object_set_new(o, "fine", json_true()), 0);
        assert_int_equal(json_object_setn_new_nocheck(o, s, n, json_null()),
                         0);
        check_error(o, SIZE_MAX, RDV_JCS_EUTF8);
    }
}

/* ---- limits ---- */

/* Builds `levels` nested arrays ([[...[]...]]) or objects ({"k":{...}}). */
static json_t *nest(int levels, int objects)
{
    json_t *v = objects ? json_object() : json_array();
    assert_non_null(v);
    for (int i = 1; i < levels; i++) {
        json_t *outer = objects ? json_object() : json_array();
        assert_non_null(outer);
        if (objects)
            assert_int_equal(json_object_set_new(outer, "k", v), 0);
        else
            assert_int_equal(json_array_append_new(outer, v), 0);
        v = outer;
    }
    return v;
}

static void test_depth_limit(void **state)
{
    (void)state;
    for (int objects = 0; objects <= 1; objects++) {
        char *out = NULL;
        size_t len = 0;
        json_t *v = nest(RDV_JCS_MAX_DEPTH, objects);
        assert_int_equal(rdv_jcs_serialize(v, SIZE_MAX, &out, &len),
                         RDV_JCS_OK);
        assert_non_null(out);
        assert_int_equal(len, objects ? (size_t)RDV_JCS_MAX_DEPTH * 2 +
                                            (RDV_JCS_MAX_DEPTH - 1) * 4
                                      : (size_t)RDV_JCS_MAX_DEPTH * 2);
        free(out);
        json_decref(v);

        check_error(nest(RDV_JCS_MAX_DEPTH + 1, objects), SIZE_MAX,
                    RDV_JCS_EDEPTH);
        check_error(nest(RDV_JCS_MAX_DEPTH * 3, objects), SIZE_MAX,
                    RDV_JCS_EDEPTH);
    }
    /* Scalars at the deepest level are fine: they are not containers. */
    json_t *v = nest(RDV_JCS_MAX_DEPTH, 0);
    json_t *inner = v;
    while (json_array_size(inner))
        inner = json_array_get(inner, 0);
    assert_int_equal(json_array_append_new(inner, json_string("x")), 0);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(rdv_jcs_serialize(v, SIZE_MAX, &out, &len), RDV_JCS_OK);
    free(out);
    json_decref(v);

    /* A reference cycle is stopped by the depth limit. */
    json_t *a = json_array(), *b = json_array();
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(json_array_append(a, b), 0);
    assert_int_equal(json_array_append(b, a), 0);
    out = (char *)0x1;
    assert_int_equal(rdv_jcs_serialize(a, SIZE_MAX, &out, &len),
                     RDV_JCS_EDEPTH);
    assert_null(out);
    assert_int_equal(json_array_clear(b), 0);
    json_decref(a);
    json_decref(b);
}

static void test_max_len(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "null",
        "[1,2]",
        "{\"b\":[1.5,\"x\\u0000y\",{\"c\":null}],\"a\":\"\\n\\u0001\xc3\xa9\"}",
        "[333333333.33333329,1e30,-0.0000033333333333333333]",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        json_t *v = load(docs[d]);
        char *full = NULL;
        size_t full_len = 0;
        assert_int_equal(rdv_jcs_serialize(v, SIZE_MAX, &full, &full_len),
                         RDV_JCS_OK);
        /* Every limit below the size fails cleanly; the exact size works. */
        for (size_t max = 0; max < full_len; max++) {
            char *out = (char *)0x1;
            size_t len = 99;
            assert_int_equal(rdv_jcs_serialize(v, max, &out, &len),
                             RDV_JCS_ETOOBIG);
            assert_null(out);
            assert_int_equal(len, 0);
        }
        for (size_t max = full_len; max <= full_len + 2; max++) {
            char *out = NULL;
            size_t len = 0;
            assert_int_equal(rdv_jcs_serialize(v, max, &out, &len),
                             RDV_JCS_OK);
            assert_int_equal(len, full_len);
            assert_memory_equal(out, full, full_len + 1);
            free(out);
        }
        free(full);
        json_decref(v);
    }
    /* A large document grows the buffer many times. */
    json_t *arr = json_array();
    assert_non_null(arr);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(json_array_append_new(arr, json_integer(i)), 0);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(rdv_jcs_serialize(arr, SIZE_MAX, &out, &len),
                     RDV_JCS_OK);
    assert_int_equal(len, strlen(out));
    assert_memory_equal(out, "[0,1,2,", 7);
    assert_memory_equal(out + len - 6, ",4999]", 6);
    free(out);
    out = (char *)0x1;
    assert_int_equal(rdv_jcs_serialize(arr, len - 1, &out, &len),
                     RDV_JCS_ETOOBIG);
    assert_null(out);
    json_decref(arr);
}

static void test_optional_args(void **state)
{
    (void)state;
    char *out = NULL;
    json_t *v = json_integer(7);
    assert_int_equal(rdv_jcs_serialize(v, 16, &out, NULL), RDV_JCS_OK);
    assert_string_equal(out, "7");
    free(out);
    json_decref(v);
    /* A NULL value (a failed jansson constructor) is reported, not
     * dereferenced. */
    size_t len = 5;
    out = (char *)0x1;
    assert_int_equal(rdv_jcs_serialize(NULL, 16, &out, &len), RDV_JCS_ENOMEM);
    assert_null(out);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_table),
        cmocka_unit_test(test_number_integers_around_2p53),
        cmocka_unit_test(test_number_nan_inf),
        cmocka_unit_test(test_number_small_buffer),
        cmocka_unit_test(test_number_locale),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_empty_containers),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_rfc_sample),
        cmocka_unit_test(test_rfc_sorting),
        cmocka_unit_test(test_sorting_more),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_max_len),
        cmocka_unit_test(test_optional_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
