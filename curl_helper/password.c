/*
 * password.c - reading a line (user name, password) for `oauth-token
 * login`, from standard input or from the terminal with echo off.
 *
 * The terminal's settings are restored on every path: while echo is off,
 * SIGINT, SIGHUP, SIGTERM and SIGQUIT are caught (the wait is interrupted,
 * the terminal restored, then the signal re-raised with its original
 * disposition), and the job-control signals SIGTSTP, SIGTTIN and SIGTTOU
 * are blocked, so a ^Z takes effect only after the terminal is restored.
 */
#define _GNU_SOURCE /* ppoll */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
    caught = sig;
}

static const int stop_signals[] = {SIGINT, SIGHUP, SIGTERM, SIGQUIT};
#define NSTOP (sizeof(stop_signals) / sizeof(stop_signals[0]))

/* Read bytes from fd up to a newline or end of file into buf, one at a
 * time so that nothing after the line is consumed.  A trailing CR is
 * dropped.  With waitmask (the terminal), the stop signals are blocked but
 * while waiting in ppoll, so a caught one always ends the wait. */
static po_rc read_fd_line(int fd, const char *what, char *buf, size_t size,
                          const sigset_t *waitmask, po_err *err)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    size_t n = 0;
    int too_long = 0, got = 0;
    char ch = 0;
    po_rc rc = PO_OK;

    while (!caught) { /* a signal may come before the first read */
        ssize_t r;
        if (waitmask != NULL && ppoll(&pfd, 1, NULL, waitmask) == -1) {
            if (errno == EINTR)
                continue;
            rc = po_fail(err, PO_IO, "waiting for the %s: %s", what,
                         strerror(errno));
            goto out;
        }
        r = read(fd, &ch, 1);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = po_fail(err, PO_IO, "reading the %s: %s", what,
                         strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got = 1;
        if (ch == '\n')
            break;
        if (n + 1 >= size)
            too_long = 1; /* read on to the end of the line */
        else
            buf[n++] = ch;
    }
    if (caught) {
        rc = po_fail(err, PO_USAGE, "interrupted");
        goto out;
    }
    if (too_long) {
        rc = po_fail(err, PO_USAGE, "the %s is longer than %zu bytes", what,
                     size - 1);
        goto out;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0) {
        rc = po_fail(err, PO_USAGE, got ? "empty %s" : "no %s given", what);
        goto out;
    }
out:
    if (rc != PO_OK)
        n = 0;
    buf[n] = '\0';
    po_cleanse(&ch, sizeof(ch));
    return rc;
}

po_rc ot_read_line(int from_stdin, int echo, const char *prompt, char *buf,
                   size_t size, po_err *err)
{
    const char *what = echo ? "user name" : "password";
    struct sigaction sa, old[NSTOP];
    struct termios saved, quiet;
    sigset_t block, oldmask, waitmask;
    int fd = -1, tty_changed = 0, sig;
    size_t i;
    po_rc rc;

    buf[0] = '\0';
    if (from_stdin)
        return read_fd_line(STDIN_FILENO, what, buf, size, NULL, err);

    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd == -1)
        return po_fail(err, PO_USAGE,
                       "no terminal to read the %s from (%s); use "
                       "--password-stdin",
                       what, strerror(errno));
    if (!echo && tcgetattr(fd, &saved) == -1) {
        close(fd);
        return po_fail(err, PO_USAGE, "/dev/tty: %s", strerror(errno));
    }

    caught = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a signal ends the wait */
    for (i = 0; i < NSTOP; i++)
        (void)sigaction(stop_signals[i], &sa, &old[i]);
    sigemptyset(&block);
    sigaddset(&block, SIGTSTP);
    sigaddset(&block, SIGTTIN);
    sigaddset(&block, SIGTTOU);
    for (i = 0; i < NSTOP; i++)
        sigaddset(&block, stop_signals[i]);
    (void)sigprocmask(SIG_BLOCK, &block, &oldmask);
    /* what ppoll waits with: job control still blocked, the rest open */
    waitmask = oldmask;
    sigaddset(&waitmask, SIGTSTP);
    sigaddset(&waitmask, SIGTTIN);
    sigaddset(&waitmask, SIGTTOU);
    for (i = 0; i < NSTOP; i++)
        sigdelset(&waitmask, stop_signals[i]);

    if (!echo) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        if (tcsetattr(fd, TCSAFLUSH, &quiet) == 0)
            tty_changed = 1;
    }
    rc = ot_write_all(fd, prompt, strlen(prompt), err);
    if (rc == PO_OK)
        rc = read_fd_line(fd, what, buf, size, &waitmask, err);
    if (tty_changed) {
        (void)tcsetattr(fd, TCSAFLUSH, &saved);
        (void)ot_write_all(fd, "\n", 1, NULL);
    }

    (void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
    for (i = 0; i < NSTOP; i++)
        (void)sigaction(stop_signals[i], &old[i], NULL);
    close(fd);
    if ((sig = caught) != 0) {
        po_cleanse(buf, size);
        caught = 0;
        (void)raise(sig); /* with its original disposition */
    }
    return rc;
}
