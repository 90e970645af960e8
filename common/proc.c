/*
 * proc.c - child processes inside a host process: the bounded wait, the
 * kill, and a function run in a child that dropped to a user for good.
 *
 * The child of po_proc_run_as reports over a pipe, in records of a type
 * byte, a 32-bit length and the payload:
 *     'L' a log line: 32-bit priority, then the text
 *     'O' what fn left in its output buffer
 *     'R' the result: 32-bit po_rc, 64-bit HTTP status, then the message
 * The parent reads the pipe to its end (bounded in size and time), then
 * reaps the child; the result is the 'R' record, so a host that reaps the
 * child first (SIGCHLD ignored, a waitpid(-1) handler) changes nothing.
 */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define REC_LOG 'L'
#define REC_OUT 'O'
#define REC_RESULT 'R'
#define REC_HEAD 5                 /* type byte + 32-bit length       */
#define LOG_BYTES_MAX (64 * 1024)  /* log text one child may relay    */
#define RESULT_BYTES (4 + 8 + 512) /* rc, HTTP status, message        */
#define GROUPS_MAX 65536           /* NGROUPS_MAX on Linux            */

po_rc po_proc_wait(pid_t pid, uint64_t deadline, int *status, int *reaped)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        uint64_t now;

        if (r == pid) {
            *reaped = 1;
            return PO_OK;
        }
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1 && errno == ECHILD) {
            *reaped = 0;
            return PO_OK;
        }
        if (r == -1)
            return PO_IO;
        if ((now = po_mono_ms()) >= deadline)
            return PO_TIMEOUT;
        po_sleep_ms(deadline - now < 5 ? deadline - now : 5);
    }
}

void po_proc_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    (void)kill(-pid, SIGKILL); /* its group, when it leads one */
    (void)kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
        ;
}

po_rc po_proc_read_all(int fd, uint64_t deadline, po_buf *b)
{
    char chunk[4096];
    po_rc rc = PO_OK;

    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        uint64_t now = po_mono_ms();
        ssize_t n;
        int r;

        if (now >= deadline) {
            rc = PO_TIMEOUT;
            break;
        }
        r = poll(&pf, 1,
                 deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
        if (r == -1 && errno != EINTR) {
            rc = PO_IO;
            break;
        }
        if (r <= 0)
            continue;
        n = read(fd, chunk, sizeof(chunk));
        if (n == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n == -1) {
            rc = PO_IO;
            break;
        }
        if (n == 0 || (rc = po_buf_append(b, chunk, (size_t)n)) != PO_OK)
            break;
    }
    po_cleanse(chunk, sizeof(chunk));
    return rc;
}

int po_proc_fd_above_stdio(int fd)
{
    int moved;

    if (fd < 0 || fd > 2)
        return fd;
    moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

/* ------------------------------------------------------------------ */
/* the child                                                           */

typedef struct child_args {
    const po_user *u;
    po_proc_fn fn;
    void *ctx;
    size_t out_max;
    int debug;
    gid_t *groups; /* the user's groups (as root only), malloc'd */
    size_t ngroups;
    int as_root;  /* the parent runs as root: drop everything  */
    int fd;       /* the pipe's write end                      */
    int devnull;  /* for 0, 1 and 2                            */
    int maxfd;    /* close_range fallback bound                */
    pid_t parent; /* to notice a parent gone before PDEATHSIG  */
} child_args;

typedef struct child_log_ctx {
    int fd;
    size_t sent; /* log bytes relayed so far                  */
} child_log_ctx;

static void send_rec(int fd, char type, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    unsigned char head[REC_HEAD];
    uint32_t len = (uint32_t)(alen + blen);

    head[0] = (unsigned char)type;
    memcpy(head + 1, &len, sizeof(len));
    if (po_write_all(fd, head, sizeof(head)) == 0 &&
        (alen == 0 || po_write_all(fd, a, alen) == 0) && blen > 0)
        (void)po_write_all(fd, b, blen);
}

static void child_log(void *ctx, int priority, const char *msg)
{
    child_log_ctx *c = ctx;
    int32_t prio = priority;
    size_t n = strlen(msg);

    if (c->sent + n > LOG_BYTES_MAX)
        return; /* the parent's bound: drop the rest */
    c->sent += n;
    send_rec(c->fd, REC_LOG, &prio, sizeof(prio), msg, n);
}

static void close_fds_except(int keep, int maxfd)
{
    int fd;

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if ((keep <= 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
        close_range((unsigned)keep + 1, ~0u, 0) == 0)
        return;
#endif
    for (fd = 3; fd < maxfd; fd++)
        if (fd != keep)
            (void)close(fd);
}

/* Default handlers for every caught signal (ignored ones stay ignored, as
 * across execve), and an empty mask. */
static void reset_signals(void)
{
    struct sigaction sa, old;
    sigset_t empty;
    int s;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &old) == -1)
            continue;
        if (!(old.sa_flags & SA_SIGINFO) &&
            (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN))
            continue;
        (void)sigaction(s, &sa, NULL);
    }
    sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
}

static int in_list(gid_t g, const gid_t *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i] == g)
            return 1;
    return 0;
}

/* The process's supplementary groups are exactly a's list. */
static po_rc check_groups(const child_args *a, po_err *err)
{
    gid_t have[256], *v = have;
    int n = getgroups(0, NULL), i;
    po_rc rc = PO_OK;

    if (n < 0 || (size_t)n > GROUPS_MAX)
        return po_fail(err, PO_IO, "getgroups: %s", strerror(errno));
    if ((size_t)n > sizeof(have) / sizeof(have[0]) &&
        (v = malloc((size_t)n * sizeof(*v))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    if ((n = getgroups(n, v)) < 0) {
        rc = po_fail(err, PO_IO, "getgroups: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < n; i++)
        if (!in_list(v[i], a->groups, a->ngroups)) {
            rc = po_fail(err, PO_IO, "group %lu is still a supplementary group",
                         (unsigned long)v[i]);
            goto out;
        }
    for (i = 0; (size_t)i < a->ngroups; i++)
        if (!in_list(a->groups[i], v, (size_t)n)) {
            rc = po_fail(err, PO_IO, "group %lu was not set",
                         (unsigned long)a->groups[i]);
            goto out;
        }
out:
    if (v != have)
        free(v);
    return rc;
}

/* Become a->u for good, and prove it (OpenSSH's permanently_set_uid). */
static po_rc drop(child_args *a, po_err *err)
{
    const uid_t uid = a->u->uid;
    const gid_t gid = a->u->gid;
    struct rlimit no_core = {0, 0};
    uid_t r, e, s;
    gid_t rg, eg, sg;
    po_rc rc;

    if (a->as_root && setgroups(a->ngroups, a->groups) == -1)
        return po_fail(err, PO_IO, "setgroups: %s", strerror(errno));
    if (setresgid(gid, gid, gid) == -1)
        return po_fail(err, PO_IO, "setresgid %lu: %s", (unsigned long)gid,
                       strerror(errno));
    if (setresuid(uid, uid, uid) == -1)
        return po_fail(err, PO_IO, "setresuid %lu: %s", (unsigned long)uid,
                       strerror(errno));
    if (getresuid(&r, &e, &s) == -1 || r != uid || e != uid || s != uid)
        return po_fail(err, PO_IO, "the uids are not all %lu after setresuid",
                       (unsigned long)uid);
    if (getresgid(&rg, &eg, &sg) == -1 || rg != gid || eg != gid || sg != gid)
        return po_fail(err, PO_IO, "the gids are not all %lu after setresgid",
                       (unsigned long)gid);
    if (a->as_root && (rc = check_groups(a, err)) != PO_OK)
        return rc;
    free(a->groups); /* the parent's copy: no longer needed here */
    if (uid != 0) {
        if (setresuid((uid_t)-1, 0, (uid_t)-1) == 0 || setuid(0) == 0)
            return po_fail(err, PO_IO, "uid 0 could be regained");
        if (gid != 0 &&
            (setresgid((gid_t)-1, 0, (gid_t)-1) == 0 || setgid(0) == 0))
            return po_fail(err, PO_IO, "gid 0 could be regained");
        if (setgroups(0, NULL) == 0)
            return po_fail(err, PO_IO, "setgroups still works");
    }
    /* The user must not ptrace this copy of the host or read its memory;
     * and no core of it. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
        setrlimit(RLIMIT_CORE, &no_core) == -1)
        return po_fail(err, PO_IO, "cannot make the process undumpable: %s",
                       strerror(errno));
    /* Changing ids cleared any parent-death signal: set it now. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 ||
        getppid() != a->parent)
        return po_fail(err, PO_IO, "the calling process went away");
    return PO_OK;
}

__attribute__((noreturn)) static void child(child_args *a)
{
    child_log_ctx lc = {a->fd, 0};
    po_log log = {child_log, &lc, a->debug};
    char head[64], why[512];
    po_buf out;
    po_err err;
    po_rc rc;
    int32_t rc32;
    int64_t status;

    reset_signals();
    if (dup2(a->devnull, 0) == -1 || dup2(a->devnull, 1) == -1 ||
        dup2(a->devnull, 2) == -1)
        _exit(126);
    close_fds_except(a->fd, a->maxfd);
    po_err_clear(&err);
    po_buf_init(&out, a->out_max, 1);
    if ((rc = drop(a, &err)) != PO_OK) {
        (void)snprintf(why, sizeof(why), "%s", err.msg);
        rc = po_fail(&err, PO_IO, "cannot act as user %s (uid %lu): %s",
                     a->u->name, (unsigned long)a->u->uid, why);
    } else {
        rc = a->fn(a->ctx, &out, &log, &err);
    }
    if (rc == PO_OK && out.len > 0)
        send_rec(a->fd, REC_OUT, out.data, out.len, NULL, 0);
    po_buf_free(&out);
    rc32 = (int32_t)rc;
    status = err.http_status;
    memcpy(head, &rc32, 4);
    memcpy(head + 4, &status, 8);
    send_rec(a->fd, REC_RESULT, head, 12, err.msg,
             rc == PO_OK ? 0 : strnlen(err.msg, sizeof(err.msg)));
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* the parent                                                          */

/* The user's groups (primary included), malloc'd. */
static po_rc user_groups(const po_user *u, gid_t **out, size_t *n, po_err *err)
{
    int want = 64, got;
    gid_t *v = NULL, *nv;

    *out = NULL;
    *n = 0;
    for (;;) {
        if ((nv = realloc(v, (size_t)want * sizeof(*v))) == NULL) {
            free(v);
            return po_fail(err, PO_NOMEM, "out of memory");
        }
        v = nv;
        got = want;
        if (getgrouplist(u->name, u->gid, v, &got) != -1)
            break;
        if (got <= want)
            want *= 2; /* some NSS modules do not say how many */
        else
            want = got;
        if (want > GROUPS_MAX) {
            free(v);
            return po_fail(err, PO_IO,
                           "user %s is in more than %d groups; refusing to "
                           "act as that user",
                           u->name, GROUPS_MAX);
        }
    }
    *out = v;
    *n = (size_t)got;
    return PO_OK;
}

/* Relay the log records, copy the output, and find the result. */
static po_rc parse_stream(const po_buf *in, const po_user *u, po_buf *out,
                          const po_log *log, int *have_result, po_err *err)
{
    const unsigned char *p = (const unsigned char *)in->data;
    size_t left = in->len;
    po_rc rc = PO_OK;

    *have_result = 0;
    while (left >= REC_HEAD) {
        uint32_t len;
        const unsigned char *body = p + REC_HEAD;
        int32_t i32;
        int64_t i64;

        memcpy(&len, p + 1, sizeof(len));
        if (len > left - REC_HEAD)
            break; /* cut short: the child died mid-record */
        if (p[0] == REC_LOG && len >= 4) {
            memcpy(&i32, body, 4);
            po_logf(log, i32, "%.*s", (int)(len - 4), (const char *)body + 4);
        } else if (p[0] == REC_OUT && out != NULL) {
            if (po_buf_append(out, body, len) != PO_OK)
                return po_fail(err, PO_NOMEM, "out of memory");
        } else if (p[0] == REC_RESULT && len >= 12) {
            memcpy(&i32, body, 4);
            memcpy(&i64, body + 4, 8);
            rc = i32 >= 0 && i32 < PO_RC_COUNT ? (po_rc)i32 : PO_IO;
            if (rc != PO_OK) {
                po_fail(err, rc, "%.*s", (int)(len - 12),
                        (const char *)body + 12);
                if (err != NULL)
                    err->http_status = (long)i64;
            }
            *have_result = 1;
        }
        p += REC_HEAD + len;
        left -= REC_HEAD + len;
    }
    if (!*have_result)
        return po_fail(err, PO_IO,
                       "the process acting as user %s ended without a "
                       "result",
                       u->name);
    return rc;
}

po_rc po_proc_run_as(const po_user *u, long timeout_ms, po_proc_fn fn,
                     void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    po_rc rc = PO_OK;
    child_args a;
    gid_t *groups = NULL;
    size_t ngroups = 0;
    int pfd[2] = {-1, -1}, devnull = -1, status = 0, reaped = 0, have = 0;
    int blocked = 0, e;
    uint64_t deadline;
    sigset_t all, old;
    struct rlimit rl;
    pid_t pid = -1;
    po_buf in;
    uid_t euid = geteuid();
    char why[512];

    po_buf_init(&in, RESULT_BYTES + LOG_BYTES_MAX + 4096, 1);
    if (u == NULL || u->name == NULL || fn == NULL) {
        rc = po_fail(err, PO_USAGE, "no user or no function to run");
        goto out;
    }
    if (out != NULL)
        in.max += out->max;
    deadline = po_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    if (euid != 0 && euid != u->uid) {
        rc = po_fail(err, PO_IO,
                     "cannot act as user %s (uid %lu): this process runs as "
                     "uid %lu, not root",
                     u->name, (unsigned long)u->uid, (unsigned long)euid);
        goto out;
    }
    if (euid == 0 && (rc = user_groups(u, &groups, &ngroups, err)) != PO_OK)
        goto out;
    if (pipe2(pfd, O_CLOEXEC) == -1 ||
        (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
        (pfd[0] = po_proc_fd_above_stdio(pfd[0])) == -1 ||
        (pfd[1] = po_proc_fd_above_stdio(pfd[1])) == -1 ||
        (devnull = po_proc_fd_above_stdio(devnull)) == -1) {
        rc = po_fail(err, PO_IO, "cannot act as user %s: %s", u->name,
                     strerror(errno));
        goto out;
    }
    a = (child_args){u,
                     fn,
                     ctx,
                     out ? out->max : 0,
                     log != NULL && log->debug,
                     groups,
                     ngroups,
                     euid == 0,
                     pfd[1],
                     devnull,
                     1024,
                     getpid()};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        a.maxfd = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    /* No host handler may run in the child before it resets them. */
    sigfillset(&all);
    blocked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
    pid = fork();
    if (pid == 0)
        child(&a);
    e = errno;
    if (blocked)
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid == -1) {
        rc = po_fail(err, PO_IO, "cannot act as user %s: fork: %s", u->name,
                     strerror(e));
        goto out;
    }
    close(pfd[1]);
    pfd[1] = -1;
    rc = po_proc_read_all(pfd[0], deadline, &in);
    if (rc == PO_IO || rc == PO_TOO_LARGE)
        rc = po_fail(err, PO_IO,
                     "reading from the process acting as user %s: %s", u->name,
                     rc == PO_IO ? strerror(errno) : "too much data");
    else if (rc == PO_NOMEM)
        rc = po_fail(err, rc, "out of memory");
    if (rc == PO_OK &&
        (rc = po_proc_wait(pid, deadline, &status, &reaped)) == PO_IO)
        rc = po_fail(err, PO_IO, "waitpid: %s", strerror(errno));
    if (rc == PO_TIMEOUT) {
        rc = po_fail(err, PO_TIMEOUT,
                     "acting as user %s took longer than %ld ms; stopped",
                     u->name, timeout_ms);
        goto out;
    }
    if (rc != PO_OK) {
        (void)snprintf(why, sizeof(why), "%s", err != NULL ? err->msg : "");
        rc = po_fail(err, rc, "acting as user %s: %s", u->name, why);
        goto out;
    }
    pid = -1; /* gone: reaped here or, by the host's rules, elsewhere */
    rc = parse_stream(&in, u, out, log, &have, err);
    if (!have && reaped && WIFSIGNALED(status))
        rc = po_fail(err, PO_IO,
                     "the process acting as user %s was killed by signal %d "
                     "before it reported",
                     u->name, WTERMSIG(status));
    else if (have && reaped && !(WIFEXITED(status) && !WEXITSTATUS(status)))
        rc =
            po_fail(err, PO_IO,
                    "the process acting as user %s reported, then ended "
                    "with %s %d",
                    u->name, WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
out:
    if (pid > 0)
        po_proc_kill(pid);
    po_buf_free(&in);
    free(groups);
    if (pfd[0] != -1)
        close(pfd[0]);
    if (pfd[1] != -1)
        close(pfd[1]);
    if (devnull != -1)
        close(devnull);
    return rc;
}
