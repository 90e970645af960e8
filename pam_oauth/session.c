/*
 * session.c - pam_sm_setcred, pam_sm_open_session, pam_sm_close_session:
 * handing the token obtained at login to the user's session.
 *
 * With store_token = yes the token goes into the user's token cache, the
 * very file oauth-token reads (both go through common/cache.c), written by
 * po_cache_store_as in a child that dropped to the user for good (0600,
 * atomic, no links followed), once per handle; OAUTH_TOKEN_CACHE_DIR is
 * exported into the PAM environment the way pam_krb5 exports KRB5CCNAME.  With
 * remove_on_close = yes, PAM_DELETE_CRED and close_session remove the
 * entry this handle stored, and only that one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "cache.h"
#include "internal.h"

static int export_dir(const po_pam_args *args, const char *dir)
{
    char *env = NULL;
    size_t n = strlen(PO_PAM_ENV_CACHE_DIR) + strlen(dir) + 2;
    int pamret;

    if ((env = malloc(n)) == NULL) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        return PAM_BUF_ERR;
    }
    (void)snprintf(env, n, "%s=%s", PO_PAM_ENV_CACHE_DIR, dir);
    pamret = pam_putenv(args->pamh, env);
    free(env);
    if (pamret != PAM_SUCCESS)
        po_logf(&args->log, LOG_ERR, "cannot set %s: %s", PO_PAM_ENV_CACHE_DIR,
                pam_strerror(args->pamh, pamret));
    return pamret;
}

/* No login state of this module for the session (logged at LOG_DEBUG). */
static int no_state(const po_pam_args *args)
{
    po_logf(&args->log, LOG_DEBUG,
            "no token from a pam_oauth login for this session (another "
            "module authenticated the user, or an offline login, which has "
            "none to hand over)");
    return PAM_IGNORE;
}

/* Store the token once per handle; PAM_IGNORE when there is nothing to
 * do.  err_code is what a failure returns. */
static int store_token(po_pam_args *args, po_pam_state *st, int err_code)
{
    char *dir = NULL;
    char shown[80];
    po_profile *p;
    po_user u;
    po_err err;
    po_rc rc;
    int pamret;

    po_err_clear(&err);
    if ((pamret = po_pam_load_state_profile(args, st)) != PAM_SUCCESS)
        return pamret;
    p = args->profile;
    if (!p->store_token) {
        po_logf(&args->log, LOG_DEBUG,
                "store_token is off: the token is not stored");
        return PAM_IGNORE;
    }
    if (st->offline) {
        po_logf(&args->log, LOG_DEBUG,
                "offline login: there is no token to store");
        return PAM_IGNORE;
    }
    if (st->stored) {
        po_logf(&args->log, LOG_DEBUG, "token already stored in %s",
                st->cache_dir);
        return export_dir(args, st->cache_dir);
    }
    po_pam_printable(st->user, shown, sizeof(shown));
    u = po_pam_state_user(st);
    rc = po_cache_user_dir(p, &u, &dir, &err);
    if (rc == PO_OK)
        rc = po_cache_store_as(p, &u, dir, &st->token, st->idp_user, &args->log,
                               &err);
    if (rc != PO_OK) {
        po_logf(&args->log, rc == PO_NOMEM ? LOG_CRIT : LOG_ERR,
                "cannot store the token of user %s: %s", shown, err.msg);
        free(dir);
        return rc == PO_NOMEM ? PAM_BUF_ERR : err_code;
    }
    free(st->cache_dir);
    st->cache_dir = dir;
    st->stored = 1;
    po_logf(&args->log, LOG_INFO,
            "token of user %s stored in %s (profile "
            "[%s])",
            shown, dir, p->name);
    return export_dir(args, dir);
}

/* Remove what this handle stored when remove_on_close is set. */
static int remove_token(po_pam_args *args, po_pam_state *st, int err_code)
{
    char shown[80];
    po_user u;
    po_err err;
    po_rc rc;
    int pamret;

    po_err_clear(&err);
    if (!st->stored || st->cache_dir == NULL) {
        po_logf(&args->log, LOG_DEBUG, "no token stored by this login");
        return PAM_IGNORE;
    }
    if ((pamret = po_pam_load_state_profile(args, st)) != PAM_SUCCESS)
        return pamret;
    if (!args->profile->remove_on_close) {
        po_logf(&args->log, LOG_DEBUG,
                "remove_on_close is off: the token stays in %s", st->cache_dir);
        return PAM_IGNORE;
    }
    po_pam_printable(st->user, shown, sizeof(shown));
    u = po_pam_state_user(st);
    rc = po_cache_remove_as(args->profile, &u, st->cache_dir, &args->log, &err);
    if (rc != PO_OK) {
        po_logf(&args->log, LOG_ERR, "cannot remove the token of user %s: %s",
                shown, err.msg);
        return err_code;
    }
    st->stored = 0;
    po_logf(&args->log, LOG_INFO, "token of user %s removed from %s", shown,
            st->cache_dir);
    return PAM_SUCCESS;
}

int po_pam_setcred(po_pam_args *args)
{
    int flags = args->flags & ~PAM_SILENT;
    po_pam_state *st = po_pam_session_state(args);
    int pamret;

    if (st == NULL) {
        pamret = no_state(args);
    } else if (flags & PAM_DELETE_CRED) {
        pamret = remove_token(args, st, PAM_CRED_ERR);
    } else if (flags == 0 ||
               (flags & (PAM_ESTABLISH_CRED | PAM_REINITIALIZE_CRED |
                         PAM_REFRESH_CRED))) {
        pamret = store_token(args, st, PAM_CRED_ERR);
    } else {
        po_logf(&args->log, LOG_ERR, "pam_setcred: unknown flags 0x%x",
                (unsigned)args->flags);
        pamret = PAM_SERVICE_ERR;
    }
    /* Like pam_krb5: never PAM_IGNORE from setcred.  Linux-PAM freezes
     * the auth stack's outcome and replays it for setcred, where an
     * ignore can turn a jump into a failure. */
    return pamret == PAM_IGNORE ? PAM_SUCCESS : pamret;
}

int po_pam_open_session(po_pam_args *args)
{
    po_pam_state *st = po_pam_session_state(args);

    if (st == NULL)
        return no_state(args);
    return store_token(args, st, PAM_SESSION_ERR);
}

int po_pam_close_session(po_pam_args *args)
{
    po_pam_state *st = po_pam_session_state(args);

    if (st == NULL)
        return no_state(args);
    return remove_token(args, st, PAM_SESSION_ERR);
}
