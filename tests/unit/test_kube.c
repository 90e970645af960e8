/* test_kube.c - KUBERNETES_EXEC_INFO and the ExecCredential. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_api_version(void **state)
{
    static const struct {
        const char *info;
        const char *version; /* NULL: refused, err naming: */
        const char *msg;
    } cases[] = {
        {NULL, PO_KUBE_V1, NULL},
        {"", PO_KUBE_V1, NULL},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":"
         "\"client.authentication.k8s.io/v1\",\"spec\":{\"interactive\":true}}",
         PO_KUBE_V1, NULL},
        {"{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\"}",
         PO_KUBE_V1BETA1, NULL},
        {" {\"apiVersion\":\"client.authentication.k8s.io/v1beta1\"} \n",
         PO_KUBE_V1BETA1, NULL},
        {"{\"apiVersion\":\"client.authentication.k8s.io/v1alpha1\"}", NULL,
         "apiVersion 'client.authentication.k8s.io/v1alpha1' is not supported"},
        {"{\"apiVersion\":\"client.authentication.k8s.io/V1\"}", NULL,
         "is not supported"},
        /* (fuzz_clients) the kubeconfig's text is shown safely */
        {"{\"apiVersion\":\"client.\\u001b[2Jk8s.io/v1\"}", NULL,
         "apiVersion 'client.?[2Jk8s.io/v1' is not supported"},
        {"{\"apiVersion\":1}", NULL, "no apiVersion string"},
        {"{\"kind\":\"ExecCredential\"}", NULL, "no apiVersion string"},
        {"{\"kind\":\"Secret\",\"apiVersion\":\"client.authentication.k8s.io/"
         "v1\"}",
         NULL, "kind is not ExecCredential"},
        {"{\"kind\":7,\"apiVersion\":\"client.authentication.k8s.io/v1\"}",
         NULL, "kind is not ExecCredential"},
        {"[\"client.authentication.k8s.io/v1\"]", NULL, "not a JSON object"},
        {"\"client.authentication.k8s.io/v1\"", NULL, "not a JSON object"},
        {"{\"apiVersion\":\"client.authentication.k8s.io/v1\"", NULL,
         "not a JSON object"},
        {"{\"apiVersion\":\"client.authentication.k8s.io/v1\"}{}", NULL,
         "not a JSON object"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        const char *v = NULL;
        po_err err;
        po_rc rc;

        po_err_clear(&err);
        rc = po_kube_api_version(cases[i].info, &v, &err);
        if (cases[i].version != NULL) {
            if (rc != PO_OK)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_string_equal(v, cases[i].version);
        } else {
            if (rc != PO_USAGE)
                fail_msg("case %zu accepted", i);
            if (strstr(err.msg, "KUBERNETES_EXEC_INFO: ") != err.msg ||
                strstr(err.msg, cases[i].msg) == NULL)
                fail_msg("case %zu: message '%s'", i, err.msg);
        }
    }
}

static void test_credential(void **state)
{
    static const struct {
        const char *version;
        const char *token;
        int64_t expires;
        const char *out; /* NULL: refused */
    } cases[] = {
        {PO_KUBE_V1, "abc", 1767323045,
         "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
         "\"ExecCredential\",\"status\":{\"expirationTimestamp\":"
         "\"2026-01-02T03:04:05Z\",\"token\":\"abc\"}}\n"},
        {PO_KUBE_V1BETA1, "a\"b\\c", 0,
         "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
         "\"ExecCredential\",\"status\":{\"expirationTimestamp\":"
         "\"1970-01-01T00:00:00Z\",\"token\":\"a\\\"b\\\\c\"}}\n"},
        {PO_KUBE_V1, "t", 253402300799, /* 9999-12-31T23:59:59Z */
         "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
         "\"ExecCredential\",\"status\":{\"expirationTimestamp\":"
         "\"9999-12-31T23:59:59Z\",\"token\":\"t\"}}\n"},
        {PO_KUBE_V1, "t", 253402300800, NULL}, /* year 10000 */
        {PO_KUBE_V1, "t", -1, NULL},
        {PO_KUBE_V1, "t", INT64_MAX, NULL},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_buf b;
        po_err err;
        po_rc rc;

        po_buf_init(&b, 4096, 1);
        rc = po_kube_credential(&b, cases[i].version, cases[i].token,
                                cases[i].expires, &err);
        if (cases[i].out == NULL) {
            if (rc != PO_USAGE)
                fail_msg("case %zu accepted", i);
            assert_int_equal(b.len, 0);
        } else {
            if (rc != PO_OK)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_string_equal(b.data, cases[i].out);
        }
        po_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_version),
        cmocka_unit_test(test_credential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
