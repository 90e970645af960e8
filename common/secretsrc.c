/*
 * secretsrc.c - po_profile_load_secret: the client secret from
 * client_secret_file or client_secret_command.  Part of the config module
 * (config.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config_impl.h"
#include "proc.h"
#include "secret.h"
#include "util.h"

#define SECRET_COMMAND_PATH "PATH=/usr/local/bin:/usr/bin:/bin"
#define SECRET_ENV_MAX 6 /* PATH, 4 passed through, the NULL */

/* ------------------------------------------------------------------ */
/* Client secrets                                                      */

/* The first line of s (len bytes) without CR/LF, malloc'd; what names the
 * source for messages. */
static po_rc first_line(const char *s, size_t len, const char *label,
                        const char *what, char **out, po_err *err)
{
    const char *nl = memchr(s, '\n', len);
    size_t n = nl != NULL ? (size_t)(nl - s) : len;

    *out = NULL;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (memchr(s, '\0', n) != NULL)
        return po_fail(err, PO_CONFIG, "%s: %s: the first line holds a NUL",
                       label, what);
    if (n == 0)
        return po_fail(err, PO_CONFIG, "%s: %s: the first line is empty", label,
                       what);
    if ((*out = po_strndup(s, n)) == NULL)
        return po_fail(err, PO_NOMEM, "%s: out of memory", label);
    return PO_OK;
}

po_rc po_secret_file_line(const char *path, const char *key, const char *label,
                          char **out, po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    char *buf = NULL, what[PATH_MAX + 32];
    size_t len = 0;
    po_err e;

    *out = NULL;
    (void)snprintf(what, sizeof(what), "%s %s", key, path);
    if ((rc = po_read_file(path, PO_SECRET_MAX, 1, &buf, &len, &st, &e)) !=
        PO_OK) {
        rc = po_fail(err, rc, "%s: %s: %s", label, key, e.msg);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: %s is owned by uid %lu, not by uid %lu or root; "
                     "refused",
                     label, what, (unsigned long)st.st_uid,
                     (unsigned long)geteuid());
        goto out;
    }
    if (st.st_mode & 077) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: %s is %s (mode %04o); run chmod 600 %s", label, what,
                     po_cfg_exposure(st.st_mode),
                     (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    rc = first_line(buf, len, label, what, out, err);
out:
    if (buf != NULL) {
        po_cleanse(buf, len);
        free(buf);
    }
    return rc;
}

static po_rc secret_from_file(const po_profile *p, const char *label,
                              char **out, po_err *err)
{
    return po_secret_file_line(p->client_secret_file, "client_secret_file",
                               label, out, err);
}

/* In the child: only async-signal-safe calls from here to execve. */
__attribute__((noreturn)) static void
exec_child(int in_fd, int out_fd, char *const argv[], char *const envp[],
           const sigset_t *mask, int maxfd)
{
    static const int sigs[] = {SIGPIPE, SIGCHLD, SIGINT,  SIGQUIT,
                               SIGHUP,  SIGTERM, SIGALRM, SIGUSR1};
    struct sigaction sa;
    size_t i;
    int fd;

    (void)setpgid(0, 0); /* a group of its own: killed as a whole */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        (void)sigaction(sigs[i], &sa, NULL);
    (void)sigprocmask(SIG_SETMASK, mask, NULL);
    if (dup2(in_fd, 0) == -1 || dup2(out_fd, 1) == -1 || dup2(in_fd, 2) == -1)
        _exit(127);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0u, 0) == -1)
#endif
        for (fd = 3; fd < maxfd; fd++)
            (void)close(fd);
    execve("/bin/sh", argv, envp);
    _exit(127);
}

/* The environment of the secret command: PATH, and HOME, USER, LANG and
 * CREDENTIALS_DIRECTORY (a systemd service's LoadCredential=, which
 * `systemd-creds cat` reads) when set.  Entries are malloc'd; env has room
 * for 5 and a NULL. */
static po_rc build_env(char *env[SECRET_ENV_MAX], po_err *err)
{
    static const char *const pass[] = {"HOME", "USER", "LANG",
                                       "CREDENTIALS_DIRECTORY"};
    size_t i, n = 0;
    const char *v;

    memset(env, 0, SECRET_ENV_MAX * sizeof(env[0]));
    if ((env[n++] = strdup(SECRET_COMMAND_PATH)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    for (i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        if ((v = po_secure_getenv(pass[i])) == NULL ||
            po_cfg_has_control_char(v))
            continue;
        if ((env[n++] = po_concat3(pass[i], "=", v)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
    }
    return PO_OK;
}

static po_rc secret_from_command(const po_profile *p, const char *label,
                                 char **out, po_err *err)
{
    po_rc rc = PO_OK;
    char sh[] = "sh", dash_c[] = "-c";
    char *argv[] = {sh, dash_c, p->client_secret_command, NULL};
    char *env[SECRET_ENV_MAX] = {NULL};
    int pfd[2] = {-1, -1}, devnull = -1, status = 0, reaped = 0;
    long limit = p->timeout_ms > 0 ? p->timeout_ms : 20000;
    uint64_t deadline = po_mono_ms() + (uint64_t)limit;
    struct rlimit rl;
    sigset_t empty;
    int maxfd = 1024;
    pid_t pid = -1;
    po_buf b;
    size_t i;

    po_buf_init(&b, PO_SECRET_MAX, 1);
    if ((rc = build_env(env, err)) != PO_OK)
        goto out;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        maxfd = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    sigemptyset(&empty);
    if (pipe2(pfd, O_CLOEXEC) == -1 ||
        (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
        (pfd[0] = po_proc_fd_above_stdio(pfd[0])) == -1 ||
        (pfd[1] = po_proc_fd_above_stdio(pfd[1])) == -1 ||
        (devnull = po_proc_fd_above_stdio(devnull)) == -1) {
        rc = po_fail(err, PO_IO, "%s: client_secret_command: %s", label,
                     strerror(errno));
        goto out;
    }
    if ((pid = fork()) == -1) {
        rc = po_fail(err, PO_IO, "%s: client_secret_command: fork: %s", label,
                     strerror(errno));
        goto out;
    }
    if (pid == 0)
        exec_child(devnull, pfd[1], argv, env, &empty, maxfd);
    (void)setpgid(pid, pid); /* also in the parent: no race with kill */
    close(pfd[1]);
    pfd[1] = -1;

    rc = po_proc_read_all(pfd[0], deadline, &b);
    if (rc == PO_TOO_LARGE) {
        rc = po_fail(err, rc,
                     "%s: client_secret_command printed more than %d bytes",
                     label, PO_SECRET_MAX);
        goto out;
    }
    if (rc == PO_IO || rc == PO_NOMEM) {
        rc = po_fail(err, rc, "%s: client_secret_command: %s", label,
                     rc == PO_IO ? strerror(errno) : "out of memory");
        goto out;
    }
    if (rc == PO_OK)
        rc = po_proc_wait(pid, deadline, &status, &reaped);
    if (rc == PO_TIMEOUT) {
        rc = po_fail(err, PO_TIMEOUT,
                     "%s: client_secret_command did not finish within %ld ms; "
                     "killed",
                     label, limit);
        goto out;
    }
    if (rc != PO_OK) {
        rc = po_fail(err, rc, "%s: client_secret_command: waitpid: %s", label,
                     strerror(errno));
        goto out;
    }
    pid = -1; /* gone: reaped here or, with SIGCHLD ignored, by the kernel */
    if (reaped && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_secret_command exited with status %d", label,
                     WEXITSTATUS(status));
        goto out;
    }
    if (reaped && WIFSIGNALED(status)) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_secret_command was killed by signal %d", label,
                     WTERMSIG(status));
        goto out;
    }
    /* Not reaped (ECHILD): the output was read to EOF, so it is whole. */
    rc = first_line(b.data != NULL ? b.data : "", b.len, label,
                    "client_secret_command output", out, err);
out:
    if (pid > 0) /* still ours: stop the whole group, then reap */
        po_proc_kill(pid);
    po_buf_free(&b);
    if (pfd[0] != -1)
        close(pfd[0]);
    if (pfd[1] != -1)
        close(pfd[1]);
    if (devnull != -1)
        close(devnull);
    for (i = 0; i < SECRET_ENV_MAX; i++)
        free(env[i]);
    return rc;
}

po_rc po_profile_load_secret(po_profile *p, const po_log *log, po_err *err)
{
    po_rc rc = PO_OK;
    char label[400], *secret = NULL;

    if (p == NULL) {
        rc = po_fail(err, PO_USAGE, "no profile");
        goto out;
    }
    if (p->client_auth == PO_CLIENT_AUTH_NONE || p->client_secret != NULL)
        goto out;
    po_cfg_profile_label(p, label, sizeof(label));
    if (p->client_secret_file != NULL && p->client_secret_command != NULL) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_secret_file and client_secret_command are "
                     "both set; keep exactly one",
                     label);
        goto out;
    }
    if (p->client_secret_file != NULL) {
        po_logf(log, LOG_DEBUG, "%s: reading client_secret_file %s", label,
                p->client_secret_file);
        rc = secret_from_file(p, label, &secret, err);
    } else if (p->client_secret_command != NULL) {
        po_logf(log, LOG_DEBUG, "%s: running client_secret_command", label);
        rc = secret_from_command(p, label, &secret, err);
    } else {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_auth is %s but no client secret is "
                     "configured",
                     label,
                     p->client_auth == PO_CLIENT_AUTH_POST ? "post" : "basic");
    }
    if (rc != PO_OK)
        goto out;
    /* The secret now has one source: client_secret. */
    p->client_secret = secret;
    secret = NULL;
    po_secret_clear(&p->client_secret_file);
    po_secret_clear(&p->client_secret_command);
out:
    po_secret_free(secret);
    return rc;
}
