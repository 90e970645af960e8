/*
 * proc.h - child processes started from inside a host process (sshd, sudo,
 * su, a screen locker), and work done there as another user.
 *
 * The rules a library loaded into someone else's process keeps:
 *  - the host's SIGCHLD disposition and handlers are left alone: a child
 *    is waited for with waitpid on exactly its pid, and a host that ignores
 *    SIGCHLD (the kernel reaps) or reaps every child itself is tolerated,
 *    so a result comes over a pipe, never from the exit status alone;
 *  - nothing waits past its deadline: a child still running then is killed
 *    and reaped;
 *  - a child writes nothing to the host's standard output or error (its
 *    descriptors 0, 1 and 2 are /dev/null, the host's others are closed)
 *    and ends with _exit, so no atexit handler or stdio buffer of the host
 *    runs twice;
 *  - the host's credentials are never changed (setgroups, setresuid and
 *    even setfsuid are process-wide or leak the host's groups): work done
 *    as another user is done in a child that dropped to that user
 *    completely.
 */
#ifndef PO_PROC_H
#define PO_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "secret.h"

/* A local account, from its passwd entry. */
typedef struct po_user {
    const char *name; /* pw_name: its groups come from the group database */
    uid_t uid;
    gid_t gid;
    const char *home; /* pw_dir, or NULL (not used by this module)   */
} po_user;

/* Wait for pid until deadline (po_mono_ms()) without blocking past it.
 * PO_OK with *reaped = 1 and *status set; PO_OK with *reaped = 0 when
 * someone else reaped it (SIGCHLD ignored, or a host handler that calls
 * waitpid(-1): ECHILD); PO_TIMEOUT at the deadline, the child left
 * running (po_proc_kill it); PO_IO on any other waitpid error (errno
 * set). */
po_rc po_proc_wait(pid_t pid, uint64_t deadline, int *status, int *reaped);

/* SIGKILL pid's process group and pid itself, then reap pid. */
void po_proc_kill(pid_t pid);

/* Read fd to its end into b (at most b->max bytes) without waiting past
 * deadline.  PO_OK at end of file; PO_TIMEOUT at the deadline;
 * PO_TOO_LARGE when more would come than b may hold; PO_IO (errno set)
 * when poll or read fails; PO_NOMEM.  No message: the caller says what
 * was being read. */
po_rc po_proc_read_all(int fd, uint64_t deadline, po_buf *b);

/* fd moved to a number above 2 (close-on-exec), so that dup2 onto 0..2 in
 * a child always makes a fresh descriptor; -1 on failure (fd closed). */
int po_proc_fd_above_stdio(int fd);

/* What a child runs once it is the user.  It may put up to out->max bytes
 * in out (a secret buffer: cleansed), and log lines through log (relayed
 * to the caller's log when the child is done).  Its rc and err message
 * are the result of po_proc_run_as. */
typedef po_rc (*po_proc_fn)(void *ctx, po_buf *out, const po_log *log,
                            po_err *err);

/* Run fn(ctx, ...) in a forked child that first becomes user u for good:
 * supplementary groups set to u's (getgrouplist on u->name and u->gid,
 * looked up here before the fork), setresgid, setresuid, then checked: all
 * ids are u's, the groups are exactly those, and (unless u is root)
 * neither uid 0 nor gid 0 nor setgroups can be had back.  The child is not
 * dumpable (the user can neither ptrace it nor read its memory, a copy of
 * the host's), has no core limit, default signal handlers, an empty signal
 * mask, /dev/null as 0..2 and no other descriptor of the host.  A process
 * that is not root can only run as its own uid (nothing is dropped then).
 *
 * out (may be NULL: fn then gets a buffer of 0 bytes) receives what fn put
 * in its buffer: the caller initialises it with po_buf_init (its max is
 * fn's limit) and frees it.  Returns fn's rc with its message in err, or:
 * PO_TIMEOUT when the child had not finished within timeout_ms (it is
 * killed), PO_IO when it could not be started or could not drop (the
 * message names the step and the user), or ended without a result (the
 * message says how it ended), PO_NOMEM.  The calling thread's signal mask
 * is blocked only around fork(); nothing else of the host changes. */
po_rc po_proc_run_as(const po_user *u, long timeout_ms, po_proc_fn fn,
                     void *ctx, po_buf *out, const po_log *log, po_err *err);

#endif
