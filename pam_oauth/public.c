/*
 * public.c - the PAM entry points of pam_oauth.so, and nothing else.
 *
 * Each one goes through run(): parse the arguments into a po_pam_args,
 * log entry (debug), call one internal function, log exit, free, return.  Only
 * these symbols are exported (pam_oauth.map).
 */
#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#define PAM_SM_PASSWORD

#include <security/pam_modules.h>

#include "internal.h"

#define PO_EXPORT __attribute__((visibility("default")))

/* The one shape of every entry point. */
static int run(pam_handle_t *pamh, int flags, int argc, const char **argv,
               const char *name, int (*fn)(po_pam_args *args))
{
    po_pam_args *args = po_pam_args_new(pamh, flags, argc, argv);
    int pamret;

    if (args == NULL)
        return PAM_BUF_ERR;
    po_pam_entry(args, name);
    pamret = fn(args);
    po_pam_exit(args, name, pamret);
    po_pam_args_free(args);
    return pamret;
}

/* Passwords are changed at the identity provider, not through PAM: the
 * module stays out of the password stack. */
static int ignore(po_pam_args *args)
{
    (void)args;
    return PAM_IGNORE;
}

PO_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
                                  const char **argv)
{
    return run(pamh, flags, argc, argv, __func__, po_pam_authenticate);
}

PO_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc,
                             const char **argv)
{
    return run(pamh, flags, argc, argv, __func__, po_pam_setcred);
}

PO_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc,
                               const char **argv)
{
    return run(pamh, flags, argc, argv, __func__, po_pam_acct_mgmt);
}

PO_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
                                  const char **argv)
{
    return run(pamh, flags, argc, argv, __func__, po_pam_open_session);
}

PO_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
                                   const char **argv)
{
    return run(pamh, flags, argc, argv, __func__, po_pam_close_session);
}

PO_EXPORT int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc,
                               const char **argv)
{
    return run(pamh, flags, argc, argv, __func__, ignore);
}
