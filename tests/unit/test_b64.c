/* test_b64.c - strict base64 and base64url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_b64url(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"", ""},        {"Zg", "f"},        {"Zm8", "fo"},
        {"Zm9v", "foo"}, {"Zm9vYg", "foob"}, {"_-8", "\xff\xef"},
        {"Zg==", NULL},  /* padding */
        {"Zm9vY", NULL}, /* 4n+1 */
        {"Zh", NULL},    /* non-canonical last character */
        {"Zm+v", NULL},  /* base64, not base64url */
        {"Zm/v", NULL},  {"Zm 9v", NULL},    {"Zm9v\n", NULL},
    };
    size_t i, n;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        unsigned char *out = NULL;
        po_err err;
        po_rc rc = po_b64url_decode(cases[i].in, strlen(cases[i].in), "t", &out,
                                    &n, &err);
        if (cases[i].out == NULL) {
            if (rc != PO_JWT_MALFORMED)
                fail_msg("'%s' accepted", cases[i].in);
            assert_null(out);
        } else {
            assert_int_equal(rc, PO_OK);
            assert_int_equal(n, strlen(cases[i].out));
            assert_memory_equal(out, cases[i].out, n);
            free(out);
        }
    }
}

static void test_b64_std(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"", ""},        {"Zg==", "f"},        {"Zm8=", "fo"},
        {"Zm9v", "foo"}, {"Zm9vYg==", "foob"}, {"/+8=", "\xff\xef"},
        {"Zg", NULL},   /* padding missing */
        {"Zg=", NULL},  /* length not 4n */
        {"Z===", NULL}, /* too much padding */
        {"Zh==", NULL}, /* non-canonical last character */
        {"Zm-v", NULL}, /* base64url, not base64 */
        {"Zm=v", NULL}, /* padding inside */
        {"Zm 9v", NULL}, {"Zm9v\n", NULL},
    };
    size_t i, n;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        unsigned char *out = NULL;
        po_err err;
        po_rc rc = po_b64_decode(cases[i].in, strlen(cases[i].in), "t", &out,
                                 &n, &err);
        if (cases[i].out == NULL) {
            if (rc != PO_MALFORMED_RESPONSE)
                fail_msg("'%s' accepted", cases[i].in);
            assert_null(out);
        } else {
            assert_int_equal(rc, PO_OK);
            assert_int_equal(n, strlen(cases[i].out));
            assert_memory_equal(out, cases[i].out, n);
            free(out);
        }
    }
}

/* encode then decode gives back every byte string of lengths 0..40. */
static void test_round_trip(void **state)
{
    unsigned char in[40], *out;
    size_t n, len;
    char *s;
    po_buf b;

    (void)state;
    for (n = 0; n < sizeof(in); n++)
        in[n] = (unsigned char)(n * 37 + 11);
    for (n = 0; n <= sizeof(in); n++) {
        assert_int_equal(po_b64url_encode(in, n, &s, NULL), PO_OK);
        assert_int_equal(po_b64url_decode(s, strlen(s), "t", &out, &len, NULL),
                         PO_OK);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
        free(out);
        free(s);
        po_buf_init(&b, 1024, 0);
        assert_int_equal(po_b64_append(&b, in, n), PO_OK);
        assert_int_equal(b.len % 4, 0);
        assert_int_equal(po_b64_decode(b.data != NULL ? b.data : "", b.len, "t",
                                       &out, &len, NULL),
                         PO_OK);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
        free(out);
        po_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_b64_std),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
