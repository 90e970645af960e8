/*
 * renew.h - keeping a session token alive: the session-refresh helper's
 * contract, shared by the helper (session_refresh/) and oauth-token, which
 * runs it.
 *
 * pam_oauth stores the login's token in the user's cache (store_token),
 * marked "stored_by":"pam_oauth" (cache.h).  With a confidential client
 * whose secret the user cannot read, the user's oauth-token cannot refresh
 * it; the helper, installed setgid to the group PO_RENEW_GROUP that may read
 * the secret, does that one thing for the calling user only, the way
 * unix_chkpwd checks a password for pam_unix.  Its interface is its argv
 * (one profile name) and its exit status, below; it prints nothing and
 * logs to syslog (LOG_AUTHPRIV).
 */
#ifndef PO_RENEW_H
#define PO_RENEW_H

#include <stdint.h>
#include "err.h"

#ifndef PO_LIBEXECDIR
#define PO_LIBEXECDIR "/usr/libexec"
#endif
#ifndef PO_RUNSTATEDIR
#define PO_RUNSTATEDIR "/run"
#endif

/* Where the helper is installed; oauth-token runs exactly this file. */
#define PO_RENEW_HELPER PO_LIBEXECDIR "/pam-oauth/session-refresh"
/* The group the helper is setgid to and that may read the secret. */
#define PO_RENEW_GROUP "pam-oauth"
/* The rate limit's state: root:PO_RENEW_GROUP 0770, one file per uid and
 * profile; made by the packages (systemd-tmpfiles) or by an administrator. */
#define PO_RENEW_STATE_DIR PO_RUNSTATEDIR "/pam-oauth-refresh"
/* At most one refresh request per uid and profile in this many seconds. */
#define PO_RENEW_MIN_INTERVAL 30

/* The helper's exit statuses (session-refresh(8) documents them). */
enum {
    PO_RENEW_EXIT_OK = 0,       /* the entry holds a fresh token          */
    PO_RENEW_EXIT_USAGE = 1,    /* not exactly one valid profile name     */
    PO_RENEW_EXIT_CONFIG = 2,   /* the system configuration, the profile
                                   (no store_token) or the secret unusable  */
    PO_RENEW_EXIT_REFUSED = 3,  /* no cache entry of the caller's that
                                   pam_oauth stored for this profile       */
    PO_RENEW_EXIT_LOGIN = 4,    /* no refresh token, or it was rejected:
                                   the user must log in again             */
    PO_RENEW_EXIT_LIMITED = 5,  /* refreshed less than the interval ago   */
    PO_RENEW_EXIT_TEMPFAIL = 6, /* network, server, lock or I/O failure   */
    PO_RENEW_EXIT_INTERNAL = 7  /* privileges not dropped, out of memory  */
};

/* The exit status for a helper outcome rc of po_flow_renew_session and
 * the steps before it. */
int po_renew_exit_status(po_rc rc);

/* Run helper (PO_RENEW_HELPER) for profile: fork and execve with argv
 * {helper, profile} only, an empty environment, /dev/null as 0..2 and no
 * other descriptor, no shell; wait until deadline (po_mono_ms()), killing
 * it then.  PO_OK when it exited 0; otherwise the rc its status stands
 * for (PO_INVALID_GRANT for "log in again", PO_ACCESS_DENIED for a
 * refusal, PO_RATE_LIMITED, PO_CONFIG, PO_IO, PO_TIMEOUT) with a message
 * naming the helper, the profile and what to do. */
po_rc po_renew_run(const char *helper, const char *profile, uint64_t deadline,
                   po_err *err);

#endif
