/* test_discovery.c - po_discovery_parse: an issuer's discovery document
 * read without the network (po_discovery_url's GET is covered by the
 * device login's and test_jwt's integration tests). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "discovery.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse(void **state)
{
    static const char ok[] = "{\"issuer\":\"https://issuer.test\","
                             "\"jwks_uri\":\"https://issuer.test/keys\"}";
    static const struct {
        const char *text;
        po_rc rc;
        const char *msg;
    } bad[] = {
        {"", PO_MALFORMED_RESPONSE,
         "D: the discovery document is not a JSON "
         "object"},
        {"[1]", PO_MALFORMED_RESPONSE, "not a JSON object"},
        {"{\"issuer\":\"https://evil.test\",\"jwks_uri\":\"https://a/k\"}",
         PO_JWT_WRONG_ISSUER,
         "D: the discovery document is for issuer \"https://evil.test\", not "
         "the configured \"https://issuer.test\""},
        {"{\"jwks_uri\":\"https://a/k\"}", PO_JWT_WRONG_ISSUER, "\"(none)\""},
        {"{\"issuer\":\"https://issuer.test\"}", PO_NOT_FOUND,
         "D: the discovery document has no jwks_uri"},
        {"{\"issuer\":\"https://issuer.test\",\"jwks_uri\":7}", PO_NOT_FOUND,
         "has no jwks_uri"},
        /* the reason the jwks_uri is refused, once and whole */
        {"{\"issuer\":\"https://issuer.test\",\"jwks_uri\":\"http://a.test/"
         "k\"}",
         PO_MALFORMED_RESPONSE,
         "D: the discovery document's jwks_uri is refused: http://a.test/k: "
         "http:// refused, use https:// (allow_http permits http:// to a "
         "loopback host only)"},
    };
    char *uri = NULL;
    po_err err;
    size_t i;

    (void)state;
    /* only len bytes are read */
    assert_int_equal(po_discovery_parse(ok, sizeof(ok) - 1,
                                        "https://issuer.test", "jwks_uri", 0,
                                        "D", &uri, &err),
                     PO_OK);
    assert_string_equal(uri, "https://issuer.test/keys");
    free(uri);
    assert_int_equal(po_discovery_parse(ok, sizeof(ok) - 2,
                                        "https://issuer.test", "jwks_uri", 0,
                                        "D", &uri, &err),
                     PO_MALFORMED_RESPONSE);
    assert_null(uri);
    for (i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(po_discovery_parse(bad[i].text, strlen(bad[i].text),
                                            "https://issuer.test", "jwks_uri",
                                            0, "D", &uri, &err),
                         bad[i].rc);
        assert_null(uri);
        if (strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].msg);
    }
}

/* Any member is read the same way; the device login asks for its
 * endpoint, and a document larger than 256 KiB is refused unread. */
static void test_member(void **state)
{
    static const char doc[] =
        "{\"issuer\":\"https://issuer.test\",\"jwks_uri\":\"https://"
        "issuer.test/keys\",\"device_authorization_endpoint\":\"https://"
        "issuer.test/device\"}";
    char *url = NULL, *big;
    po_err err;

    (void)state;
    assert_int_equal(po_discovery_parse(doc, strlen(doc), "https://issuer.test",
                                        "device_authorization_endpoint", 0, "D",
                                        &url, &err),
                     PO_OK);
    assert_string_equal(url, "https://issuer.test/device");
    free(url);
    assert_int_equal(po_discovery_parse(doc, strlen(doc), "https://issuer.test",
                                        "token_endpoint", 0, "D", &url, &err),
                     PO_NOT_FOUND);
    assert_non_null(strstr(err.msg, "has no token_endpoint"));
    assert_non_null(big = calloc(1, 256 * 1024 + 2));
    memset(big, ' ', 256 * 1024 + 1);
    memcpy(big, doc, strlen(doc));
    assert_int_equal(po_discovery_parse(big, 256 * 1024 + 1,
                                        "https://issuer.test", "jwks_uri", 0,
                                        "D", &url, &err),
                     PO_MALFORMED_RESPONSE);
    assert_null(url);
    assert_non_null(strstr(err.msg, "larger than 262144 bytes"));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_member),
    };
    return cmocka_run_group_tests_name("discovery", tests, NULL, NULL);
}
