/* test_etcd.c - parsing etcd v3 JSON gateway answers and watch messages
 * (the shapes etcd 3.4 sends), and the store's budget record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "etcd.h"
#include "store.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HDR                                                                    \
    "\"header\":{\"cluster_id\":\"11949845376885811694\",\"member_id\":"       \
    "\"14648641201771557230\",\"revision\":\"7\",\"raft_term\":\"2\"}"

static po_rc parse(const char *body, po_etcd_answer *a, po_err *err)
{
    return po_etcd_parse_answer(body, strlen(body), a, err);
}

static void test_answers(void **state)
{
    po_etcd_answer a;
    po_err err;

    (void)state;
    /* range, absent key */
    assert_int_equal(parse("{" HDR "}", &a, &err), PO_OK);
    assert_int_equal(a.revision, 7);
    assert_false(a.has_kv);
    po_etcd_answer_free(&a);
    /* range, one kv ("/pam-oauth/x" = "hi") */
    assert_int_equal(
        parse("{" HDR ",\"kvs\":[{\"key\":\"L3BhbS1vYXV0aC94\",\"create_"
              "revision\":\"2\",\"mod_revision\":\"5\",\"version\":\"3\","
              "\"value\":\"aGk=\",\"lease\":\"2324035744088714248\"}],"
              "\"count\":\"1\"}\n",
              &a, &err),
        PO_OK);
    assert_true(a.has_kv);
    assert_string_equal(a.kv.key, "/pam-oauth/x");
    assert_int_equal(a.kv.value_len, 2);
    assert_memory_equal(a.kv.value, "hi", 2);
    assert_int_equal(a.kv.create_revision, 2);
    assert_int_equal(a.kv.mod_revision, 5);
    assert_int_equal(a.kv.version, 3);
    assert_true(a.kv.lease == INT64_C(2324035744088714248));
    po_etcd_answer_free(&a);
    /* a key with an empty value: no "value" member */
    assert_int_equal(parse("{" HDR ",\"kvs\":[{\"key\":\"eA==\",\"mod_"
                           "revision\":\"3\"}]}",
                           &a, &err),
                     PO_OK);
    assert_true(a.has_kv);
    assert_null(a.kv.value);
    po_etcd_answer_free(&a);
    /* txn that succeeded */
    assert_int_equal(parse("{" HDR ",\"succeeded\":true,\"responses\":[{"
                           "\"response_put\":{\"header\":{\"revision\":"
                           "\"3\"}}}]}",
                           &a, &err),
                     PO_OK);
    assert_true(a.succeeded);
    assert_false(a.has_kv);
    po_etcd_answer_free(&a);
    /* txn that failed: "succeeded" absent, the failure branch's range */
    assert_int_equal(parse("{" HDR ",\"responses\":[{\"response_range\":{"
                           "\"header\":{\"revision\":\"2\"},\"kvs\":[{"
                           "\"key\":\"eA==\",\"mod_revision\":\"2\",\"value\":"
                           "\"aGk=\",\"lease\":\"9\"}],\"count\":\"1\"}}]}",
                           &a, &err),
                     PO_OK);
    assert_false(a.succeeded);
    assert_true(a.has_kv);
    assert_int_equal(a.kv.lease, 9);
    po_etcd_answer_free(&a);
    /* lease grant */
    assert_int_equal(parse("{" HDR
                           ",\"ID\":\"2324035744088714248\",\"TTL\":\"5\"}",
                           &a, &err),
                     PO_OK);
    assert_true(a.lease_id == INT64_C(2324035744088714248));
    assert_int_equal(a.ttl, 5);
    po_etcd_answer_free(&a);
    /* authenticate */
    assert_int_equal(
        parse("{" HDR ",\"token\":\"rtXMsMIGlXRhRWjx.24\"}", &a, &err), PO_OK);
    assert_string_equal(a.token, "rtXMsMIGlXRhRWjx.24");
    po_etcd_answer_free(&a);
    /* numbers as numbers are accepted too */
    assert_int_equal(parse("{\"header\":{\"revision\":12}}", &a, &err), PO_OK);
    assert_int_equal(a.revision, 12);
    po_etcd_answer_free(&a);
}

static void test_bad_answers(void **state)
{
    static const struct {
        const char *body;
        const char *msg;
    } cases[] = {
        {"", "empty"},
        {"[]", "not a JSON object"},
        {"{\"header\":", "truncated"},
        {"{} x", "not JSON"},
        /* json-c's lenient mode would take comments (fuzz_etcd) */
        {"{} // x", "not JSON"},
        {"{\"header\":/* x */{}}", "not JSON"},
        {"{\"header\":{\"revision\":\"7x\"}}", "\"revision\" is not a decimal"},
        {"{\"header\":{\"revision\":\"\"}}", "not a decimal"},
        {"{\"header\":{\"revision\":\"99999999999999999999\"}}",
         "not a decimal"},
        {"{\"header\":{\"revision\":true}}", "not a decimal"},
        {"{\"kvs\":{}}", "\"kvs\" is not an array"},
        {"{\"kvs\":[1]}", "not an object"},
        {"{\"kvs\":[{\"key\":\"eA\"}]}", "bad base64"},
        {"{\"kvs\":[{\"key\":\"eA==\",\"value\":7}]}",
         "\"value\" is not a string"},
        {"{\"succeeded\":\"yes\"}", "\"succeeded\" is not a boolean"},
        {"{\"responses\":{}}", "\"responses\" is not an array"},
        {"{\"token\":5}", "\"token\" is not a string"},
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}", "not JSON"},
    };
    po_etcd_answer a;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_err_clear(&err);
        if (parse(cases[i].body, &a, &err) != PO_MALFORMED_RESPONSE ||
            strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("'%s': %s", cases[i].body, err.msg);
        assert_false(a.has_kv);
        assert_null(a.token);
    }
    /* white space may follow the object, a NUL may not (fuzz_etcd) */
    assert_int_equal(po_etcd_parse_answer("{} \r\n", 5, &a, &err), PO_OK);
    po_etcd_answer_free(&a);
    assert_int_equal(po_etcd_parse_answer("{}\0", 3, &a, &err),
                     PO_MALFORMED_RESPONSE);
    assert_non_null(strstr(err.msg, "data after the JSON object"));
}

static void test_errors(void **state)
{
    static const struct {
        const char *body;
        int code;
        const char *msg;
    } cases[] = {
        {"{\"error\":\"etcdserver: permission denied\",\"message\":"
         "\"etcdserver: permission denied\",\"code\":7}",
         7, "etcdserver: permission denied"},
        {"{\"error\":\"etcdserver: user name is empty\",\"code\":3}", 3,
         "etcdserver: user name is empty"},
        {"{\"error\":{\"grpc_code\":16,\"http_code\":401,\"message\":"
         "\"etcdserver: invalid auth token\",\"http_status\":"
         "\"Unauthorized\"}}",
         16, "etcdserver: invalid auth token"},
        {"CommonName of client sending a request against gateway will be "
         "ignored and not used as expected\n",
         -1, "CommonName of client sending a request against gateway"},
        {"Not Found\x01\n", -1, "Not Found?"},
        {"", -1, ""},
    };
    char msg[256];
    size_t i;
    int code;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_etcd_parse_error(cases[i].body, strlen(cases[i].body), &code, msg,
                            sizeof(msg));
        assert_int_equal(code, cases[i].code);
        if (strncmp(msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("'%s': '%s'", cases[i].body, msg);
    }
}

static void test_watch(void **state)
{
    po_etcd_watch_msg m;
    const char *s;
    po_err err;

    (void)state;
    s = "{\"result\":{" HDR ",\"created\":true}}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err), PO_OK);
    assert_true(m.created);
    assert_int_equal(m.revision, 7);
    assert_int_equal(m.nevents, 0);
    assert_int_equal(m.error_code, -1);
    po_etcd_watch_msg_free(&m);
    /* a PUT (no "type": the default) and a DELETE */
    s = "{\"result\":{" HDR ",\"events\":[{\"kv\":{\"key\":"
        "\"L3BhbS1vYXV0aC95\",\"create_revision\":\"4\",\"mod_revision\":"
        "\"4\",\"version\":\"1\",\"value\":\"eA==\"}},{\"type\":\"DELETE\","
        "\"kv\":{\"key\":\"L3BhbS1vYXV0aC95\",\"mod_revision\":\"5\"}}]}}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err), PO_OK);
    assert_int_equal(m.nevents, 2);
    assert_false(m.events[0].is_delete);
    assert_true(m.events[1].is_delete);
    assert_int_equal(m.events[1].mod_revision, 5);
    assert_int_equal(m.events[0].key_len, strlen("/pam-oauth/y"));
    assert_memory_equal(m.events[0].key, "/pam-oauth/y", m.events[0].key_len);
    po_etcd_watch_msg_free(&m);
    /* compacted */
    s = "{\"result\":{" HDR ",\"canceled\":true,\"compact_revision\":\"3\","
        "\"cancel_reason\":\"mvcc: required revision has been compacted\"}}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err), PO_OK);
    assert_true(m.canceled);
    assert_int_equal(m.compact_revision, 3);
    assert_non_null(strstr(m.error, "compacted"));
    po_etcd_watch_msg_free(&m);
    /* an error in the stream */
    s = "{\"error\":{\"grpc_code\":16,\"message\":\"etcdserver: invalid auth "
        "token\"}}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err), PO_OK);
    assert_int_equal(m.error_code, 16);
    po_etcd_watch_msg_free(&m);
    /* malformed */
    s = "{\"result\":{\"events\":[{\"type\":\"RENAME\",\"kv\":{}}]}}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err),
                     PO_MALFORMED_RESPONSE);
    assert_int_equal(m.nevents, 0);
    s = "{\"result\":{\"events\":[{\"kv\":{\"key\":\"!\"}}]}}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err),
                     PO_MALFORMED_RESPONSE);
    s = "{\"nothing\":1}";
    assert_int_equal(po_etcd_parse_watch(s, strlen(s), &m, &err),
                     PO_MALFORMED_RESPONSE);
    assert_non_null(strstr(err.msg, "no \"result\""));
}

static void test_usage_record(void **state)
{
    po_store_usage u = {"2026-11", 17, "web-3", 1764000000}, back;
    static const char *const bad[] = {
        "",
        "{}",
        "{\"version\":2,\"month\":\"2026-11\",\"count\":1}",
        "{\"version\":1,\"month\":\"2026/11\",\"count\":1}",
        /* (fuzz_seal) a month of digits, 01 to 12: it is shown by status */
        "{\"version\":1,\"month\":\"202.-12\",\"count\":1}",
        "{\"version\":1,\"month\":\"\\u001b[2J-12\",\"count\":1}",
        "{\"version\":1,\"month\":\"2026-13\",\"count\":1}",
        "{\"version\":1,\"month\":\"2026-00\",\"count\":1}",
        "{\"version\":1,\"month\":\"2026-11\",\"count\":-1}",
        "{\"version\":1,\"month\":\"2026-11\",\"count\":\"1\"}",
        "{\"version\":1,\"month\":\"2026-11\",\"count\":1} x",
    };
    po_buf b;
    po_err err;
    size_t i;

    (void)state;
    po_buf_init(&b, 4096, 0);
    assert_int_equal(po_store_usage_encode(&u, &b), PO_OK);
    assert_int_equal(po_store_usage_decode(b.data, b.len, &back, &err), PO_OK);
    assert_string_equal(back.month, "2026-11");
    assert_int_equal(back.count, 17);
    assert_string_equal(back.host, "web-3");
    assert_true(back.at == 1764000000);
    po_buf_free(&b);
    for (i = 0; i < ARRAY_LEN(bad); i++)
        if (po_store_usage_decode(bad[i], strlen(bad[i]), &back, &err) !=
            PO_MALFORMED_RESPONSE)
            fail_msg("'%s' accepted", bad[i]);
    /* a host name with control characters is shown safely */
    {
        const char *s = "{\"version\":1,\"month\":\"2026-11\",\"count\":1,"
                        "\"host\":\"a\\nb\",\"at\":1}";
        assert_int_equal(po_store_usage_decode(s, strlen(s), &back, &err),
                         PO_OK);
        assert_string_equal(back.host, "a?b");
    }
}

static void test_keys(void **state)
{
    po_profile p;
    po_err err;
    char *k = NULL;

    (void)state;
    assert_int_equal(po_profile_init(&p, "wave", &err), PO_OK);
    assert_int_equal(po_store_key(&p, "token", &k, &err), PO_OK);
    assert_string_equal(k, "/pam-oauth/wave/token");
    free(k);
    assert_int_equal(
        po_profile_set(&p, "shared_cache_prefix", "/fleet/a/", "test", &err),
        PO_OK);
    assert_int_equal(po_store_key(&p, "lock", &k, &err), PO_OK);
    assert_string_equal(k, "/fleet/a/wave/lock");
    free(k);
    assert_false(po_store_enabled(&p));
    assert_int_equal(po_profile_set(&p, "shared_cache", "etcd", "test", &err),
                     PO_OK);
    assert_true(po_store_enabled(&p));
    po_profile_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),      cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_watch),
        cmocka_unit_test(test_usage_record), cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
