/* test_dockercred.c - the docker-credential-helpers messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dockercred.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse(void **state)
{
    static const struct {
        const char *in;
        const char *url, *user, *secret; /* url NULL: refused with msg */
        const char *msg;
    } cases[] = {
        {"{\"ServerURL\":\"r.example\",\"Username\":\"u\",\"Secret\":\"s\"}",
         "r.example", "u", "s", NULL},
        {"{\"ServerURL\":\"https://index.docker.io/v1/\",\"Username\":\"u\","
         "\"Secret\":\"s\\\"\\u00e9\"}\n",
         "https://index.docker.io/v1/", "u", "s\"\xc3\xa9", NULL},
        {"{\"ServerURL\":\"r\",\"Other\":[1,2]}", "r", "", "", NULL},
        /* null is an empty string, as Go's encoding/json decodes it */
        {"{\"ServerURL\":\"r\",\"Username\":null}", "r", "", "", NULL},
        {"{\"ServerURL\":\"r\",\"Username\":[]}", NULL, NULL, NULL,
         "Username is not a JSON string"},
        {"{\"ServerURL\":\"r\",\"Secret\":42}", NULL, NULL, NULL,
         "Secret is not a JSON string"},
        {"{\"ServerURL\":\"r\",\"Secret\":\"a\\u0000b\"}", NULL, NULL, NULL,
         "Secret holds a NUL"},
        {"{\"Username\":\"u\",\"Secret\":\"s\"}", NULL, NULL, NULL,
         PO_DOCKER_NO_SERVER},
        {"{\"ServerURL\":\"\"}", NULL, NULL, NULL, PO_DOCKER_NO_SERVER},
        {"{\"ServerURL\":\"r\"} x", NULL, NULL, NULL, "not a JSON object"},
        {"{\"ServerURL\":\"r\"", NULL, NULL, NULL, "not a JSON object"},
        {"[]", NULL, NULL, NULL, "not a JSON object"},
        {"r.example\n", NULL, NULL, NULL, "not a JSON object"},
        {"", NULL, NULL, NULL, "not a JSON object"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_docker_creds c;
        po_err err;
        po_rc rc;

        po_err_clear(&err);
        rc = po_docker_parse_creds(cases[i].in, strlen(cases[i].in), &c, &err);
        if (cases[i].url != NULL) {
            if (rc != PO_OK)
                fail_msg("case %zu refused: %s", i, err.msg);
            assert_string_equal(c.server_url, cases[i].url);
            assert_string_equal(c.username, cases[i].user);
            assert_string_equal(c.secret, cases[i].secret);
            po_docker_creds_free(&c);
        } else {
            if (rc != PO_USAGE)
                fail_msg("case %zu accepted", i);
            if (strstr(err.msg, cases[i].msg) == NULL)
                fail_msg("case %zu: message '%s'", i, err.msg);
            assert_null(c.server_url);
            assert_null(c.secret);
        }
    }
}

static void test_answer(void **state)
{
    po_buf b;

    (void)state;
    po_buf_init(&b, 4096, 1);
    assert_int_equal(
        po_docker_creds_json(&b, "r.example:5000", "$oauthtoken", "t\"k\\n"),
        PO_OK);
    assert_string_equal(b.data,
                        "{\"ServerURL\":\"r.example:5000\",\"Username\":"
                        "\"$oauthtoken\",\"Secret\":\"t\\\"k\\\\n\"}\n");
    po_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
