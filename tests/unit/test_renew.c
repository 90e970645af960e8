/* test_renew.c - running the session-refresh helper from oauth-token
 * (po_renew_run): exactly argv {helper, profile}, an empty environment,
 * no descriptor of ours, each exit status mapped to its outcome and
 * message, the deadline; and the helper's own mapping of outcomes to exit
 * statuses (po_renew_exit_status). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "renew.h"
#include "util.h"

static char dir[] = "/tmp/po-test-renew-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    (void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A stand-in helper: records its arguments, environment and open
 * descriptors, then runs body. */
static void fake_helper(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "{ echo \"argc=$#\"; echo \"arg1=$1\"; echo \"arg0=$0\";"
            " /usr/bin/env; ls /proc/$$/fd; } > %s/record 2>&1\n"
            "%s\n",
            dir, body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
}

static char *record(void)
{
    char path[128], *buf = calloc(1, 8192);
    FILE *f;

    assert_non_null(buf);
    (void)snprintf(path, sizeof(path), "%s/record", dir);
    assert_non_null(f = fopen(path, "r"));
    assert_true(fread(buf, 1, 8191, f) > 0);
    fclose(f);
    return buf;
}

static void test_argv_env_fds(void **state)
{
    char helper[128], *rec;
    po_err err;
    int fd;

    (void)state;
    (void)snprintf(helper, sizeof(helper), "%s/ok", dir);
    fake_helper(helper, "exit 0");
    setenv("PAM_OAUTH_CONFIG", "/evil.conf", 1);
    setenv("https_proxy", "http://127.0.0.1:1", 1);
    fd = open("/dev/null", O_RDONLY); /* not close-on-exec */
    assert_true(fd > 2);
    assert_int_equal(po_renew_run(helper, "corp", po_mono_ms() + 10000, &err),
                     PO_OK);
    rec = record();
    assert_non_null(strstr(rec, "argc=1\n"));
    assert_non_null(strstr(rec, "arg1=corp\n"));
    assert_null(strstr(rec, "PAM_OAUTH_CONFIG"));
    assert_null(strstr(rec, "https_proxy"));
    assert_null(strstr(rec, "HOME="));
    /* only 0, 1, 2 and the shell's own script descriptor */
    assert_non_null(strstr(rec, "\n0\n1\n"));
    {
        char want[16];
        (void)snprintf(want, sizeof(want), "\n%d\n", fd);
        assert_null(strstr(rec, want));
    }
    free(rec);
    close(fd);
    unsetenv("PAM_OAUTH_CONFIG");
    unsetenv("https_proxy");
}

static void test_exit_statuses(void **state)
{
    static const struct {
        int code;
        po_rc rc;
        const char *msg;
    } cases[] = {
        {PO_RENEW_EXIT_LOGIN, PO_INVALID_GRANT, "log in again"},
        {PO_RENEW_EXIT_REFUSED, PO_ACCESS_DENIED, "not your login's session"},
        {PO_RENEW_EXIT_LIMITED, PO_RATE_LIMITED, "less than 30 s ago"},
        {PO_RENEW_EXIT_CONFIG, PO_CONFIG, "system configuration"},
        {PO_RENEW_EXIT_TEMPFAIL, PO_SERVER_ERROR, "try again"},
        {PO_RENEW_EXIT_USAGE, PO_IO, "exit status 1"},
        {PO_RENEW_EXIT_INTERNAL, PO_IO, "exit status 7"},
        {99, PO_IO, "exit status 99"},
    };
    char helper[128], body[32];
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        (void)snprintf(helper, sizeof(helper), "%s/code%d", dir, cases[i].code);
        (void)snprintf(body, sizeof(body), "exit %d", cases[i].code);
        fake_helper(helper, body);
        po_err_clear(&err);
        assert_int_equal(
            po_renew_run(helper, "corp", po_mono_ms() + 10000, &err),
            cases[i].rc);
        if (strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("exit %d: \"%s\" lacks \"%s\"", cases[i].code, err.msg,
                     cases[i].msg);
        assert_non_null(strstr(err.msg, "corp"));
    }
}

static void test_deadline_and_missing(void **state)
{
    char helper[128];
    uint64_t start;
    po_err err;

    (void)state;
    (void)snprintf(helper, sizeof(helper), "%s/slow", dir);
    fake_helper(helper, "sleep 30");
    start = po_mono_ms();
    assert_int_equal(po_renew_run(helper, "corp", start + 300, &err),
                     PO_TIMEOUT);
    assert_true(po_mono_ms() - start < 5000);
    (void)snprintf(helper, sizeof(helper), "%s/absent", dir);
    assert_int_equal(po_renew_run(helper, "corp", po_mono_ms() + 1000, &err),
                     PO_CONFIG);
    assert_non_null(strstr(err.msg, "client_auth = none"));
    /* killed by a signal */
    (void)snprintf(helper, sizeof(helper), "%s/killed", dir);
    fake_helper(helper, "kill -9 $$");
    assert_int_equal(po_renew_run(helper, "corp", po_mono_ms() + 10000, &err),
                     PO_IO);
    assert_non_null(strstr(err.msg, "signal 9"));
}

static void test_exit_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(po_renew_exit_status(PO_OK), PO_RENEW_EXIT_OK);
    assert_int_equal(po_renew_exit_status(PO_USAGE), PO_RENEW_EXIT_USAGE);
    assert_int_equal(po_renew_exit_status(PO_CONFIG), PO_RENEW_EXIT_CONFIG);
    assert_int_equal(po_renew_exit_status(PO_INVALID_CLIENT),
                     PO_RENEW_EXIT_CONFIG);
    assert_int_equal(po_renew_exit_status(PO_ACCESS_DENIED),
                     PO_RENEW_EXIT_REFUSED);
    assert_int_equal(po_renew_exit_status(PO_NOT_FOUND), PO_RENEW_EXIT_REFUSED);
    assert_int_equal(po_renew_exit_status(PO_INVALID_GRANT),
                     PO_RENEW_EXIT_LOGIN);
    assert_int_equal(po_renew_exit_status(PO_RATE_LIMITED),
                     PO_RENEW_EXIT_LIMITED);
    assert_int_equal(po_renew_exit_status(PO_NETWORK), PO_RENEW_EXIT_TEMPFAIL);
    assert_int_equal(po_renew_exit_status(PO_LOCKED), PO_RENEW_EXIT_TEMPFAIL);
    assert_int_equal(po_renew_exit_status(PO_NOMEM), PO_RENEW_EXIT_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_env_fds),
        cmocka_unit_test(test_exit_statuses),
        cmocka_unit_test(test_deadline_and_missing),
        cmocka_unit_test(test_exit_status_mapping),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
