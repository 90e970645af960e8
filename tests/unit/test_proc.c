/* test_proc.c - work done as another user in a child that dropped for
 * good: the ids and groups it has, what it cannot get back, what it sends
 * back, and the host rules (SIGCHLD ignored or reaped by the host, the
 * deadline, a crash, the host's credentials untouched).  Most cases need
 * root and are skipped without. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "proc.h"
#include "secret.h"
#include "util.h"

#define NOBODY 65534

static const po_user nobody = {"nobody", NOBODY, NOBODY, NULL};

/* The child's view of itself, as text in out. */
static po_rc report_ids(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    uid_t r, e, s;
    gid_t rg, eg, sg, groups[64];
    struct stat st;
    int n, i;

    (void)ctx;
    po_logf(log, LOG_NOTICE, "hello from uid %lu", (unsigned long)getuid());
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
        (n = getgroups(64, groups)) < 0)
        return po_fail(err, PO_IO, "ids: %s", strerror(errno));
    if (po_buf_printf(out, "uid %lu %lu %lu gid %lu %lu %lu dumpable %d",
                      (unsigned long)r, (unsigned long)e, (unsigned long)s,
                      (unsigned long)rg, (unsigned long)eg, (unsigned long)sg,
                      prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) != PO_OK)
        return po_fail(err, PO_NOMEM, "out");
    for (i = 0; i < n; i++)
        if (po_buf_printf(out, " g%lu", (unsigned long)groups[i]) != PO_OK)
            return po_fail(err, PO_NOMEM, "out");
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return po_fail(err, PO_IO, "root came back");
    if (fstat(1, &st) != 0 || !S_ISCHR(st.st_mode) ||
        st.st_rdev != makedev(1, 3) || fcntl(3, F_GETFD) != -1)
        return po_fail(err, PO_IO, "stdout is not /dev/null or fd 3 is open");
    return PO_OK;
}

typedef struct logged {
    int n;
    char last[256];
} logged;

static void log_fn(void *ctx, int priority, const char *msg)
{
    logged *l = ctx;

    (void)priority;
    l->n++;
    (void)snprintf(l->last, sizeof(l->last), "%s", msg);
}

static void test_drops_for_good(void **state)
{
    logged l = {0, ""};
    po_log log = {log_fn, &l, 0};
    gid_t before[64], after[64];
    int nb, na;
    po_buf out;
    po_err err;

    (void)state;
    if (geteuid() != 0)
        skip();
    nb = getgroups(64, before);
    po_buf_init(&out, 4096, 1);
    assert_int_equal(
        po_proc_run_as(&nobody, 5000, report_ids, NULL, &out, &log, &err),
        PO_OK);
    assert_non_null(out.data);
    assert_non_null(strstr(out.data, "uid 65534 65534 65534 gid 65534 65534 "
                                     "65534 dumpable 0"));
    /* Only nobody's groups (nogroup), none of root's. */
    assert_null(strstr(out.data, " g0"));
    assert_int_equal(l.n, 1);
    assert_string_equal(l.last, "hello from uid 65534");
    /* The host is as it was. */
    na = getgroups(64, after);
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, (size_t)na * sizeof(gid_t));
    assert_int_equal(geteuid(), 0);
    po_buf_free(&out);
}

static po_rc fail_job(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    (void)ctx;
    (void)out;
    (void)log;
    err->http_status = 0;
    return po_fail(err, PO_LOCKED, "the lock %s is held", "x.lock");
}

static void test_result_comes_back(void **state)
{
    po_err err;

    (void)state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(
        po_proc_run_as(&nobody, 5000, fail_job, NULL, NULL, NULL, &err),
        PO_LOCKED);
    assert_string_equal(err.msg, "the lock x.lock is held");
}

static po_rc sleep_job(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    (void)ctx;
    (void)out;
    (void)log;
    (void)err;
    po_sleep_ms(30000);
    return PO_OK;
}

static void test_deadline(void **state)
{
    uint64_t t0 = po_mono_ms();
    po_err err;

    (void)state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(
        po_proc_run_as(&nobody, 300, sleep_job, NULL, NULL, NULL, &err),
        PO_TIMEOUT);
    assert_true(po_mono_ms() - t0 < 3000);
    assert_non_null(strstr(err.msg, "longer than 300 ms"));
    /* The child was reaped: no zombie left. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static po_rc crash_job(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    (void)ctx;
    (void)out;
    (void)log;
    (void)err;
    raise(SIGKILL);
    return PO_OK;
}

static void test_crash(void **state)
{
    po_err err;

    (void)state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(
        po_proc_run_as(&nobody, 5000, crash_job, NULL, NULL, NULL, &err),
        PO_IO);
    assert_non_null(strstr(err.msg, "killed by signal 9"));
}

static void reap_all(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* A host that ignores SIGCHLD (the kernel reaps), or reaps every child in
 * its handler: the result still comes back, and its disposition is
 * untouched. */
static void test_host_sigchld(void **state)
{
    struct sigaction sa, old, now;
    int i;
    po_buf out;
    po_err err;

    (void)state;
    if (geteuid() != 0)
        skip();
    for (i = 0; i < 2; i++) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = i == 0 ? SIG_IGN : reap_all;
        assert_int_equal(sigaction(SIGCHLD, &sa, &old), 0);
        po_buf_init(&out, 4096, 1);
        assert_int_equal(
            po_proc_run_as(&nobody, 5000, report_ids, NULL, &out, NULL, &err),
            PO_OK);
        assert_non_null(strstr(out.data, "uid 65534"));
        po_buf_free(&out);
        assert_int_equal(
            po_proc_run_as(&nobody, 5000, fail_job, NULL, NULL, NULL, &err),
            PO_LOCKED);
        assert_int_equal(sigaction(SIGCHLD, &old, &now), 0);
        assert_true(now.sa_handler == sa.sa_handler);
    }
}

/* Not root: only the process's own uid, and another one is refused. */
static void test_unprivileged(void **state)
{
    pid_t pid;
    int st;

    (void)state;
    if (geteuid() != 0)
        skip();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        po_user self = {"nobody", NOBODY, NOBODY, NULL};
        po_user root = {"root", 0, 0, NULL};
        po_buf out;
        po_err err;

        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
            setuid(NOBODY) != 0)
            _exit(10);
        po_buf_init(&out, 4096, 1);
        if (po_proc_run_as(&self, 5000, report_ids, NULL, &out, NULL, &err) !=
                PO_OK ||
            strstr(out.data, "uid 65534 65534 65534") == NULL)
            _exit(11);
        po_buf_free(&out);
        if (po_proc_run_as(&root, 5000, report_ids, NULL, NULL, NULL, &err) !=
                PO_IO ||
            strstr(err.msg, "not root") == NULL)
            _exit(12);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static po_rc big_job(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    size_t i;

    (void)ctx;
    for (i = 0; i < 5000; i++)
        po_logf(log, LOG_INFO, "line %zu of a chatty child", i);
    for (i = 0; i < 100000; i++)
        if (po_buf_append(out, "x", 1) != PO_OK)
            return po_fail(err, PO_TOO_LARGE, "out full at %zu", i);
    return PO_OK;
}

/* The output is bounded by the caller's buffer, log lines by the module. */
static void test_bounds(void **state)
{
    logged l = {0, ""};
    po_log log = {log_fn, &l, 0};
    po_buf out;
    po_err err;

    (void)state;
    if (geteuid() != 0)
        skip();
    po_buf_init(&out, 65536, 1);
    assert_int_equal(
        po_proc_run_as(&nobody, 5000, big_job, NULL, &out, &log, &err),
        PO_TOO_LARGE);
    assert_string_equal(err.msg, "out full at 65536");
    assert_true(l.n > 1000 && l.n < 5000);
    po_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drops_for_good),
        cmocka_unit_test(test_result_comes_back),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_crash),
        cmocka_unit_test(test_host_sigchld),
        cmocka_unit_test(test_unprivileged),
        cmocka_unit_test(test_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
