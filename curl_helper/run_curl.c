/*
 * run_curl.c - `oauth-token curl ARGS...`: run the real curl with the
 * token, and on HTTP 401 get a new token and run it once more (the
 * vendors' "refresh on 401").
 *
 * The token never appears in curl's argv or environment: curl reads a
 * config line `header = "Authorization: Bearer ..."` from a pipe named on
 * its command line as -K /dev/fd/N.  To see the HTTP status without
 * touching the user's output or -w, the first attempt dumps the response
 * headers (-D /dev/fd/M) into an anonymous file and writes its standard
 * output into another one; that output is copied to our standard output
 * only when no retry follows.  The retry writes straight to our standard
 * output.  We exit with curl's status.
 */
#define _GNU_SOURCE
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "util.h"

#define HEADERS_MAX (1024 * 1024) /* bytes of dumped headers we look at */

/* Non-const copies of the arguments we add (execvp takes char *const[]). */
static char arg_config[] = "-K";
static char arg_dump[] = "-D";
static char arg_quiet[] = "--no-progress-meter";

typedef struct attempt {
    int status;  /* curl's exit code, or 128 + signal               */
    int saw_401; /* a response with HTTP status 401 was seen         */
    int body_fd; /* curl's captured standard output, or -1           */
} attempt;

/* The signal dispositions we change while curl runs, as system(3) does:
 * ^C and ^\ reach curl and we wait for it; a closed pipe is an error, not
 * our death; SIGCHLD is not ignored, or waitpid could not see curl's
 * status. */
typedef struct saved_signals {
    struct sigaction intr, quit, pipe, chld;
} saved_signals;

static void ignore_signals(saved_signals *s)
{
    struct sigaction ign, dfl;

    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    dfl = ign;
    dfl.sa_handler = SIG_DFL;
    (void)sigaction(SIGINT, &ign, &s->intr);
    (void)sigaction(SIGQUIT, &ign, &s->quit);
    (void)sigaction(SIGPIPE, &ign, &s->pipe);
    (void)sigaction(SIGCHLD, &dfl, &s->chld);
}

static void restore_signals(const saved_signals *s)
{
    (void)sigaction(SIGINT, &s->intr, NULL);
    (void)sigaction(SIGQUIT, &s->quit, NULL);
    (void)sigaction(SIGPIPE, &s->pipe, NULL);
    (void)sigaction(SIGCHLD, &s->chld, NULL);
}

/* An anonymous, unlinked file: in $TMPDIR (or /tmp) when the file system
 * allows O_TMPFILE, else in memory. */
static int anon_file(const char *name, int in_memory, po_err *err)
{
    const char *dir = po_secure_getenv("TMPDIR");
    int fd = -1;

    if (!in_memory) {
        if (dir == NULL || dir[0] != '/')
            dir = "/tmp";
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd == -1)
        fd = memfd_create(name, MFD_CLOEXEC);
    if (fd == -1)
        (void)po_fail(err, PO_IO, "cannot create a temporary file: %s",
                      strerror(errno));
    return fd;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Did the dumped headers in fd hold a status line with 401?  Lines look
 * like "HTTP/1.1 401 Unauthorized" or "HTTP/2 401". */
static int headers_say_401(int fd)
{
    char *buf;
    size_t len = 0;
    const char *line, *end, *sp;
    int found = 0;

    if (lseek(fd, 0, SEEK_SET) == -1 || (buf = malloc(HEADERS_MAX + 1)) == NULL)
        return 0;
    while (len < HEADERS_MAX) {
        ssize_t r = read(fd, buf + len, HEADERS_MAX - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    for (line = buf; line < buf + len && !found; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        if (end == NULL)
            end = buf + len;
        if (strncmp(line, "HTTP/", 5) != 0)
            continue;
        sp = memchr(line, ' ', (size_t)(end - line));
        found = sp != NULL && end - sp >= 4 && strncmp(sp + 1, "401", 3) == 0 &&
                (end - sp == 4 || sp[4] == ' ' || sp[4] == '\r');
    }
    free(buf);
    return found;
}

/* Copy the captured output in fd to our standard output. */
static po_rc copy_out(int fd, po_err *err)
{
    char buf[65536];
    po_rc rc = PO_OK;

    if (lseek(fd, 0, SEEK_SET) == -1)
        return po_fail(err, PO_IO, "rewinding curl's output: %s",
                       strerror(errno));
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = po_fail(err, PO_IO, "reading curl's output: %s",
                         strerror(errno));
            break;
        }
        if (r == 0 ||
            (rc = ot_write_all(STDOUT_FILENO, buf, (size_t)r, err)) != PO_OK)
            break;
    }
    return rc;
}

/* Run curl once with token.  With capture, curl's standard output and
 * headers go to anonymous files (a->body_fd, a->saw_401); otherwise curl
 * writes to our standard output. */
static po_rc run_once(ot_ctx *c, const char *prog, const char *token,
                      int capture, attempt *a, po_err *err)
{
    saved_signals sigs;
    char **args = c->opts.args;
    int nargs = c->opts.nargs, first = 0, k = 0, i;
    int cfg[2] = {-1, -1}, ep[2] = {-1, -1}, hdr = -1, body = -1;
    char cfg_path[32], hdr_path[32];
    char **argv = NULL;
    int child_errno = 0, wstatus = 0;
    po_buf line;
    pid_t pid, w;
    ssize_t r;
    po_rc rc = PO_OK;

    memset(a, 0, sizeof(*a));
    a->body_fd = -1;
    po_buf_init(&line, 1024 * 1024, 1);
    if ((rc = ot_curl_config_line(&line, token, err)) != PO_OK)
        goto out;
    if (pipe2(cfg, O_CLOEXEC) == -1 || pipe2(ep, O_CLOEXEC) == -1) {
        rc = po_fail(err, PO_IO, "cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    if (capture && ((body = anon_file("oauth-token-body", 0, err)) == -1 ||
                    (hdr = anon_file("oauth-token-headers", 1, err)) == -1)) {
        rc = PO_IO;
        goto out;
    }
    (void)snprintf(cfg_path, sizeof(cfg_path), "/dev/fd/%d", cfg[0]);
    (void)snprintf(hdr_path, sizeof(hdr_path), "/dev/fd/%d", hdr);

    if ((argv = calloc((size_t)nargs + 8, sizeof(*argv))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if ((argv[k++] = strdup(prog)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    /* -q (do not read .curlrc) only works as curl's first argument. */
    if (nargs > 0 &&
        (strcmp(args[0], "-q") == 0 || strcmp(args[0], "--disable") == 0))
        argv[k++] = args[first++];
    argv[k++] = arg_config;
    argv[k++] = cfg_path;
    if (capture) {
        argv[k++] = arg_dump;
        argv[k++] = hdr_path;
        /* Writing to a file, curl would show its progress meter where it
         * would not have for a terminal. */
        if (isatty(STDOUT_FILENO))
            argv[k++] = arg_quiet;
    }
    for (i = first; i < nargs; i++)
        argv[k++] = args[i];
    argv[k] = NULL;

    ignore_signals(&sigs);
    if ((pid = fork()) == -1) {
        restore_signals(&sigs);
        rc = po_fail(err, PO_IO, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* The child: our dispositions back, the config pipe and the header
         * file kept open across exec, the output captured. */
        restore_signals(&sigs);
        if (fcntl(cfg[0], F_SETFD, 0) == -1 ||
            (hdr >= 0 && fcntl(hdr, F_SETFD, 0) == -1) ||
            (body >= 0 && dup2(body, STDOUT_FILENO) == -1))
            goto child_fail;
        execvp(argv[0], argv);
    child_fail:
        child_errno = errno;
        (void)!write(ep[1], &child_errno, sizeof(child_errno));
        _exit(127);
    }

    close_fd(&cfg[0]);
    close_fd(&ep[1]);
    /* curl reads its config while parsing its arguments; if it died
     * first, the write fails with EPIPE and curl's status tells why. */
    (void)ot_write_all(cfg[1], line.data, line.len, NULL);
    close_fd(&cfg[1]);
    po_buf_free(&line);
    while ((r = read(ep[0], &child_errno, sizeof(child_errno))) == -1 &&
           errno == EINTR)
        ;
    while ((w = waitpid(pid, &wstatus, 0)) == -1 && errno == EINTR)
        ;
    restore_signals(&sigs);
    if (w == -1) {
        rc = po_fail(err, PO_IO, "waiting for %s: %s", prog, strerror(errno));
        goto out;
    }
    if (r == (ssize_t)sizeof(child_errno)) {
        rc = po_fail(err, PO_IO, "cannot run %s: %s", prog,
                     strerror(child_errno));
        goto out;
    }
    if (WIFEXITED(wstatus))
        a->status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        a->status = 128 + WTERMSIG(wstatus);
    else
        a->status = OT_EXIT_OTHER;
    if (capture) {
        a->saw_401 = headers_say_401(hdr);
        a->body_fd = body;
        body = -1;
    }
out:
    po_buf_free(&line);
    if (argv != NULL)
        free(argv[0]);
    free(argv);
    close_fd(&cfg[0]);
    close_fd(&cfg[1]);
    close_fd(&ep[0]);
    close_fd(&ep[1]);
    close_fd(&hdr);
    close_fd(&body);
    return rc;
}

po_rc ot_cmd_curl(ot_ctx *c, po_err *err)
{
    const char *prog = po_secure_getenv("OAUTH_TOKEN_CURL");
    attempt a = {0, 0, -1};
    po_token t;
    int done = 0;
    po_rc rc;

    if (prog == NULL || prog[0] == '\0')
        prog = "curl";
    memset(&t, 0, sizeof(t));
    if ((rc = ot_token(c, 0, &t, err)) != PO_OK ||
        (rc = run_once(c, prog, t.access_token, 1, &a, err)) != PO_OK)
        goto out;
    if (!a.saw_401) {
        if ((rc = copy_out(a.body_fd, err)) != PO_OK)
            goto out;
        c->status = a.status;
        goto out;
    }
    po_logf(&c->log, LOG_INFO,
            "HTTP 401: the token was refused; getting a new one and "
            "running curl once more");
    close_fd(&a.body_fd);
    if ((rc = po_flow_invalidate(&c->flow, t.access_token, &done, err)) !=
        PO_OK)
        goto out;
    po_token_free(&t);
    if ((rc = ot_token(c, 0, &t, err)) != PO_OK ||
        (rc = run_once(c, prog, t.access_token, 0, &a, err)) != PO_OK)
        goto out;
    c->status = a.status;
out:
    close_fd(&a.body_fd);
    po_token_free(&t);
    return rc;
}
