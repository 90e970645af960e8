/*
 * internal.h - the internal interfaces of pam_oauth.so.
 *
 * public.c holds only the pam_sm_* entry points.  Each one turns its
 * arguments into a po_pam_args (args.c), calls one function from auth.c,
 * account.c or session.c, and frees the po_pam_args.  What must survive
 * from one PAM call to the next on the same handle (the token obtained at
 * authentication) lives in a po_pam_state kept with pam_set_data
 * (context.c), whose cleanup cleanses the token at pam_end.
 *
 * Nothing here is global or static mutable state: the module may be loaded
 * into a multi-threaded process that runs several PAM handles at once.
 * Nothing here writes to stdout or stderr: every line goes through the
 * po_log sink, which calls pam_syslog on the handle.
 */
#ifndef PO_PAM_INTERNAL_H
#define PO_PAM_INTERNAL_H

#include <security/pam_appl.h>
#include <security/pam_modules.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "err.h"
#include "oauth.h"
#include "offline.h"

#define PO_PAM_DATA "pam_oauth:state" /* pam_set_data key                */
#define PO_PAM_USER_MAX 256           /* bytes in a PAM user name         */
#define PO_PAM_FAIL_DELAY_MS 2000L    /* pam_fail_delay on failure        */
#define PO_PAM_FAIL_DELAY_MAX 60000L
#define PO_PAM_ENV_CACHE_DIR "OAUTH_TOKEN_CACHE_DIR"

/* One PAM call: its flags, its arguments and, once loaded, the profile. */
typedef struct po_pam_args {
    pam_handle_t *pamh;
    int flags;  /* the PAM flags of this call             */
    po_log log; /* pam_syslog on pamh                     */
    int debug;  /* the debug argument                     */
    int use_first_pass;
    int try_first_pass;
    long fail_delay_ms;
    const char *config_path;  /* config=PATH or PO_SYSTEM_CONFIG        */
    const char *profile_name; /* profile=NAME or "default"              */
    int argc;                 /* the arguments, for the KEY=VALUE       */
    const char **argv;        /* overrides applied at load time         */
    int bad_override;         /* a KEY=VALUE argument was refused       */
    po_config cfg;
    po_profile *profile; /* in cfg, after po_pam_load_profile      */
} po_pam_args;

/* What authentication leaves on the handle for the later calls. */
typedef struct po_pam_state {
    char *user;            /* the PAM user that authenticated           */
    char *idp_user;        /* the user name sent to the IdP             */
    char *profile_name;    /* the profile used                          */
    char *requested_scope; /* the profile's scope at the request        */
    uid_t uid;
    gid_t gid;
    char *home;
    po_token token;        /* secrets, cleansed by the cleanup          */
    char *cache_dir;       /* where the token was stored, or NULL       */
    int stored;            /* the token is in cache_dir                 */
    char *verified_claims; /* JSON object of the claims verify proved
                              (the token's or introspection's), or NULL
                              when the profile does not verify: the only
                              claims the account checks may read */
    int offline;           /* authenticated offline (offline.c): no token;
                              the account checks read offline_grants   */
    po_offline_grants offline_grants;
} po_pam_state;

#pragma GCC visibility push(hidden)

/* args.c ------------------------------------------------------------- */

/* Parse argv into a freshly allocated po_pam_args.  Unknown arguments are
 * logged (LOG_ERR, naming the argument) and ignored.  Returns NULL only
 * when out of memory (logged). */
po_pam_args *po_pam_args_new(pam_handle_t *pamh, int flags, int argc,
                             const char **argv);

/* Free args, its configuration (cleansing the client secret) and all. */
void po_pam_args_free(po_pam_args *args);

/* Load the configuration (the system file or config=, with
 * PO_CFG_STRICT_OWNER), find the profile, apply the KEY=VALUE arguments
 * and validate it.  Returns a PAM code: PAM_SUCCESS with args->profile
 * set; PAM_AUTHINFO_UNAVAIL when this process may not read the file
 * (EACCES: an unprivileged screen locker and a root-only file);
 * PAM_SERVICE_ERR for any other problem.  Every failure is logged. */
int po_pam_load_profile(po_pam_args *args);

/* Log entry into and exit from an entry point (debug only). */
void po_pam_entry(const po_pam_args *args, const char *func);
void po_pam_exit(const po_pam_args *args, const char *func, int pamret);

/* "PAM_SUCCESS", "PAM_AUTH_ERR", ... for logs. */
const char *po_pam_code_name(int pamret);

/* Copy s into out (size n) with control characters and non-ASCII bytes
 * replaced by '?', truncated with "..." to fit: for user names in logs. */
void po_pam_printable(const char *s, char *out, size_t n);

/* context.c ---------------------------------------------------------- */

/* The state left by authentication on this handle, or NULL. */
po_pam_state *po_pam_state_get(pam_handle_t *pamh);

/* Attach st to the handle (taking ownership: on failure it is freed).
 * Any previous state is freed first.  Returns a PAM code. */
int po_pam_state_set(pam_handle_t *pamh, po_pam_state *st);

/* Drop the state from the handle (freeing it). */
void po_pam_state_clear(pam_handle_t *pamh);

/* Free a state, cleansing the token. */
void po_pam_state_free(po_pam_state *st);

/* The local account of user: uid, gid and home (malloc'd).  Returns
 * PAM_SUCCESS, PAM_USER_UNKNOWN or PAM_BUF_ERR/PAM_SYSTEM_ERR (logged). */
int po_pam_lookup_user(const po_pam_args *args, const char *user, uid_t *uid,
                       gid_t *gid, char **home);

/* The PAM user, checked like at authentication (no control characters, at
 * most PO_PAM_USER_MAX bytes); NULL when there is none or it is invalid. */
const char *po_pam_current_user(const po_pam_args *args);

/* The state of this handle when it belongs to the current PAM user, else
 * NULL (a mismatch, another module having changed PAM_USER since, is
 * logged). */
po_pam_state *po_pam_state_for_user(const po_pam_args *args);

/* po_pam_load_profile, then check that the profile is the one st was
 * obtained with (lines of one stack must name the same profile).
 * Returns a PAM code, failures logged; mismatch is PAM_SERVICE_ERR. */
int po_pam_load_state_profile(po_pam_args *args, const po_pam_state *st);

/* auth.c ------------------------------------------------------------- */

/* pam_sm_authenticate. */
int po_pam_authenticate(po_pam_args *args);

/* The PAM code for a po_rc from the core, logging the outcome at the
 * priority it deserves (LOG_CRIT for a rejected client, LOG_ERR for a
 * configuration or service problem). */
int po_pam_map_rc(const po_pam_args *args, po_rc rc, const po_err *err,
                  const char *what);

/* Map user through the username_format fmt ("%u" user, "%%" '%').  *out
 * is malloc'd.  PAM_SUCCESS, PAM_USER_UNKNOWN when user cannot be mapped
 * without ambiguity (it contains a separator the format puts around it),
 * PAM_SERVICE_ERR for a bad format, PAM_BUF_ERR.  Logged. */
int po_pam_map_user(const po_pam_args *args, const char *fmt, const char *user,
                    char **out);

/* offline.c ---------------------------------------------------------- */

/* With offline_login, after the online login of idp_user succeeded (and
 * its token was verified when the profile verifies): store a verifier of
 * password with what tok (and verified_claims) granted.  A failure is
 * logged; the login is not failed for it. */
void po_pam_offline_store(const po_pam_args *args, const char *idp_user,
                          const char *password, const po_token *tok,
                          const char *verified_claims, const char *what);

/* With offline_login, after the token request failed with rc (pamret, its
 * PAM code from po_pam_map_rc): an invalid_grant removes the verifier; an
 * "unavailable" rc checks password against it.  Returns the login's PAM
 * code: PAM_SUCCESS (then *grants holds what acct_mgmt checks),
 * PAM_AUTH_ERR (wrong, or too many failures), or pamret (no usable
 * verifier).  Without offline_login, or for any other rc, pamret. */
int po_pam_offline_fallback(const po_pam_args *args, po_rc rc, int pamret,
                            const char *idp_user, const char *password,
                            const char *what, po_offline_grants *grants);

/* After an offline login: the roles of claim from source that the last
 * online login stored (PO_NOT_FOUND with the reason when they were read
 * from another claim or source, or could not be read), appended to out. */
po_rc po_pam_offline_roles(const po_pam_state *st, po_roles_source source,
                           const char *claim, po_strlist *out, po_err *err);

/* account.c ---------------------------------------------------------- */

/* pam_sm_acct_mgmt: PAM_IGNORE for a user who did not authenticate
 * through this module, else the checks on the token. */
int po_pam_acct_mgmt(po_pam_args *args);

/* The profile's roles_claim, or its default "Roles". */
const char *po_pam_roles_claim(const po_profile *p);

/* session.c ---------------------------------------------------------- */

/* pam_sm_setcred: establish/reinitialize/refresh store the token (once
 * per handle) and export OAUTH_TOKEN_CACHE_DIR; delete removes it when
 * remove_on_close is set.  Never PAM_IGNORE (see session.c). */
int po_pam_setcred(po_pam_args *args);

/* pam_sm_open_session: like establishing credentials. */
int po_pam_open_session(po_pam_args *args);

/* pam_sm_close_session: remove the stored token when remove_on_close. */
int po_pam_close_session(po_pam_args *args);

#pragma GCC visibility pop

#endif
