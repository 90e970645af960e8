/* test_jsonsec.c - parsing JSON that may hold secrets: what is accepted,
 * what is refused and why. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

#include "jsonsec.h"

static void test_accepts(void **state)
{
    static const char *const ok[] = {
        "{}",
        "{\"a\":\"secret\",\"b\":[1,2,{\"c\":null}]}\n",
        "  [\"x\"]\t\r\n ",
        "\"just a string\"",
    };
    json_object *o;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        o = NULL;
        assert_int_equal(
            po_json_parse_secret(ok[i], strlen(ok[i]), 8, &o, &err), PO_OK);
        assert_non_null(o);
        po_json_put_secret(o);
    }
    o = NULL;
    assert_int_equal(po_json_parse_secret("{\"k\":\"v\"}", 9, 8, &o, &err),
                     PO_OK);
    assert_true(json_object_is_type(o, json_type_object));
    assert_string_equal(json_object_get_string(json_object_object_get(o, "k")),
                        "v");
    po_json_put_secret(o);
    po_json_put_secret(NULL);
}

static void test_refuses(void **state)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *why;
    } bad[] = {
        {"", 0, "empty"},
        {"{\"a\":", 0, "truncated JSON"},
        {"{\"a\":\"b\"", 0, "truncated JSON"},
        {"{\"a\" 1}", 0, "invalid JSON"},
        {"{} x", 0, "data after the JSON value"},
        {"{}{}", 0, "data after the JSON value"},
        {"{\"a\":1}//", 0, "data after the JSON value"},
        {"{\"a\":1} /* c */", 0, "data after the JSON value"},
        {"{/* c */\"a\":1}", 0, "invalid JSON"},
        {"{}\0{}", 5, "data after the JSON value"},
        {"[[[[[[[[[[1]]]]]]]]]]", 0, "invalid JSON"},
    };
    json_object *o;
    po_err err;
    size_t i, len;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = (json_object *)&err; /* must be reset */
        len = bad[i].len ? bad[i].len : strlen(bad[i].text);
        assert_int_equal(po_json_parse_secret(bad[i].text, len, 8, &o, &err),
                         PO_MALFORMED_RESPONSE);
        assert_null(o);
        assert_non_null(strstr(err.msg, bad[i].why));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
