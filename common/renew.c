/* renew.c - running the session-refresh helper from oauth-token, and the
 * meaning of its exit statuses (renew.h). */
#define _GNU_SOURCE
#include "renew.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

int po_renew_exit_status(po_rc rc)
{
    switch (rc) {
    case PO_OK:
        return PO_RENEW_EXIT_OK;
    case PO_USAGE:
        return PO_RENEW_EXIT_USAGE;
    case PO_CONFIG:
    case PO_INVALID_CLIENT:
    case PO_UNAUTHORIZED_CLIENT:
        return PO_RENEW_EXIT_CONFIG;
    case PO_ACCESS_DENIED:
    case PO_NOT_FOUND:
        return PO_RENEW_EXIT_REFUSED;
    case PO_INVALID_GRANT:
    case PO_INTERACTION_REQUIRED:
        return PO_RENEW_EXIT_LOGIN;
    case PO_RATE_LIMITED:
        return PO_RENEW_EXIT_LIMITED;
    case PO_NOMEM:
        return PO_RENEW_EXIT_INTERNAL;
    default:
        return PO_RENEW_EXIT_TEMPFAIL;
    }
}

/* In the child: only async-signal-safe calls until execve. */
__attribute__((noreturn)) static void
exec_helper(const char *helper, const char *profile, const sigset_t *mask)
{
    char *argv[3], *envp[1] = {NULL};
    struct sigaction sa;
    int fd, sig;

    argv[0] = (char *)(uintptr_t)helper;
    argv[1] = (char *)(uintptr_t)profile;
    argv[2] = NULL;
    (void)setpgid(0, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL);
    (void)sigprocmask(SIG_SETMASK, mask, NULL);
    if ((fd = open("/dev/null", O_RDWR)) == -1 || dup2(fd, 0) == -1 ||
        dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
        _exit(127);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0u, 0) == -1)
#endif
        for (fd = 3; fd < 1024; fd++)
            (void)close(fd);
    execve(helper, argv, envp);
    _exit(127);
}

po_rc po_renew_run(const char *helper, const char *profile, uint64_t deadline,
                   po_err *err)
{
    sigset_t all, old;
    pid_t pid;
    int status = 0, reaped = 0, code;
    po_rc rc;

    if (access(helper, X_OK) != 0)
        return po_fail(err, PO_CONFIG,
                       "profile %s: the client secret is not readable and "
                       "the session token cannot be refreshed: %s: %s "
                       "(install pam-oauth's session-refresh helper, or "
                       "use a public client: client_auth = none)",
                       profile, helper, strerror(errno));
    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        exec_helper(helper, profile, &old);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid == -1)
        return po_fail(err, PO_IO, "cannot start %s: fork: %s", helper,
                       strerror(errno));
    rc = po_proc_wait(pid, deadline, &status, &reaped);
    if (rc == PO_TIMEOUT) {
        po_proc_kill(pid);
        return po_fail(err, PO_TIMEOUT, "%s %s did not finish in time; killed",
                       helper, profile);
    }
    if (rc != PO_OK || !reaped)
        return po_fail(err, PO_IO, "cannot wait for %s: %s", helper,
                       rc != PO_OK ? strerror(errno) : "reaped by another");
    if (WIFSIGNALED(status))
        return po_fail(err, PO_IO, "%s %s was killed by signal %d", helper,
                       profile, WTERMSIG(status));
    code = WEXITSTATUS(status);
    switch (code) {
    case PO_RENEW_EXIT_OK:
        return PO_OK;
    case PO_RENEW_EXIT_LOGIN:
        return po_fail(err, PO_INVALID_GRANT,
                       "the session token of profile %s can no longer be "
                       "refreshed (no refresh token, or the identity "
                       "provider rejected it): log in again",
                       profile);
    case PO_RENEW_EXIT_REFUSED:
        return po_fail(err, PO_ACCESS_DENIED,
                       "%s refused to refresh profile %s: the cached entry "
                       "is not your login's session token (see the system "
                       "log, LOG_AUTHPRIV); log in again",
                       helper, profile);
    case PO_RENEW_EXIT_LIMITED:
        return po_fail(err, PO_RATE_LIMITED,
                       "%s: profile %s was refreshed less than %d s ago; "
                       "try again later",
                       helper, profile, PO_RENEW_MIN_INTERVAL);
    case PO_RENEW_EXIT_CONFIG:
        return po_fail(err, PO_CONFIG,
                       "%s cannot refresh profile %s: the system "
                       "configuration does not allow it (see the system "
                       "log, LOG_AUTHPRIV)",
                       helper, profile);
    case PO_RENEW_EXIT_TEMPFAIL:
        return po_fail(err, PO_SERVER_ERROR,
                       "%s could not refresh profile %s now (network, "
                       "server or cache; see the system log); try again",
                       helper, profile);
    default:
        return po_fail(err, PO_IO,
                       "%s %s failed with exit status %d (see the system "
                       "log, LOG_AUTHPRIV)",
                       helper, profile, code);
    }
}
