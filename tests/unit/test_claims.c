/* test_claims.c - string lists read from JSON claims sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "claims.h"

static void test_claim_strings_table(void **state)
{
    static const struct {
        const char *json, *path;
        po_rc rc;
        const char *want; /* the strings joined with '|', or a message part */
    } cases[] = {
        {"{\"Roles\":[\"ADMIN\",\"RETAILER\"]}", "Roles", PO_OK,
         "ADMIN|RETAILER"},
        {"{\"Roles\":[]}", "Roles", PO_OK, ""},
        {"{\"scope\":\"read:a  write:b\"}", "scope", PO_OK, "read:a|write:b"},
        {"{\"realm_access\":{\"roles\":[\"dev\"]}}", "realm_access.roles",
         PO_OK, "dev"},
        /* a member whose name has a dot wins over the dotted path */
        {"{\"a.b\":[\"x\"],\"a\":{\"b\":[\"y\"]}}", "a.b", PO_OK, "x"},
        {"{\"Roles\":[\"a\"]}", "roles", PO_NOT_FOUND, "no member \"roles\""},
        {"{\"a\":{\"b\":1}}", "a.b.c", PO_NOT_FOUND, "no member"},
        {"{\"a\":{}}", "a..b", PO_NOT_FOUND, "no member"},
        {"", "Roles", PO_NOT_FOUND, "no member"},
        {"{\"Roles\":[\"a\",2]}", "Roles", PO_MALFORMED_RESPONSE,
         "\"Roles\"[1] is not a string"},
        {"{\"Roles\":5}", "Roles", PO_MALFORMED_RESPONSE,
         "neither a string nor an array"},
        {"[1,2]", "Roles", PO_MALFORMED_RESPONSE, "not a JSON object"},
        {"{not json", "Roles", PO_MALFORMED_RESPONSE, "not a JSON object"},
        {"{\"Roles\":[\"a\"]}", "", PO_CONFIG, "empty or too long"},
    };
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        po_strlist l = {NULL, 0};
        po_err err;
        char joined[256] = "";
        po_rc rc;

        po_err_clear(&err);
        rc = po_claim_strings(cases[i].json, "token response", cases[i].path,
                              &l, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %s, want %s (%s)", i, po_rc_name(rc),
                     po_rc_name(cases[i].rc), err.msg);
        if (rc == PO_OK) {
            for (j = 0; j < l.n; j++) {
                if (j > 0)
                    strcat(joined, "|");
                strcat(joined, l.v[j]);
            }
            assert_string_equal(joined, cases[i].want);
        } else {
            assert_int_equal(l.n, 0);
            assert_null(l.v);
            if (strstr(err.msg, cases[i].want) == NULL)
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg,
                         cases[i].want);
        }
        po_strlist_free(&l);
    }
}

static void test_long_path_refused(void **state)
{
    char path[PO_CLAIM_PATH_MAX + 1];
    po_strlist l = {NULL, 0};

    (void)state;
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(po_claim_strings("{}", "x", path, &l, NULL), PO_CONFIG);
}

static void test_split_and_has(void **state)
{
    po_strlist l = {NULL, 0};

    (void)state;
    assert_int_equal(po_strlist_split(" a\tb\n  c ", &l), PO_OK);
    assert_int_equal(l.n, 3);
    assert_true(po_strlist_has(&l, "b"));
    assert_false(po_strlist_has(&l, "B"));
    assert_false(po_strlist_has(&l, "d"));
    assert_int_equal(po_strlist_split(NULL, &l), PO_OK);
    assert_int_equal(l.n, 3);
    po_strlist_free(&l);
    assert_int_equal(l.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_strings_table),
        cmocka_unit_test(test_long_path_refused),
        cmocka_unit_test(test_split_and_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
