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
#include "proc.h"

#define PO_PAM_DATA "pam_oauth:state" /* pam_set_data key                */
#define PO_PAM_USER_MAX 256           /* bytes in a PAM user name         */
#define PO_PAM_FAIL_DELAY_MS 2000L    /* pam_fail_delay on failure        */
#define PO_PAM_FAIL_DELAY_MAX 60000L
#define PO_PAM_ENV_CACHE_DIR "OAUTH_TOKEN_CACHE_DIR"
#define PO_PAM_ENV_HANDOFF "PAM_OAUTH_HANDOFF" /* handoff.c             */
#define PO_PAM_HANDOFF_DIR "/run/pam-oauth"    /* root only, 0700       */
#define PO_PAM_HANDOFF_MAX_AGE 600L            /* s a hand-off is kept  */

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
    char *local_name;      /* its passwd entry's pw_name (for %u)       */
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

/* The local account of user: its pw_name, uid, gid and home (name and
 * home malloc'd).  Returns PAM_SUCCESS, PAM_USER_UNKNOWN (logged only
 * with debug: the caller decides what an unknown user costs) or
 * PAM_BUF_ERR/PAM_SYSTEM_ERR (logged). */
int po_pam_lookup_user(const po_pam_args *args, const char *user, char **name,
                       uid_t *uid, gid_t *gid, char **home);

/* The po_user of st's account, for the cache (pointers into st). */
po_user po_pam_state_user(const po_pam_state *st);

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

/* With offline_login, after the password grant failed with rc (pamret,
 * its PAM code from po_pam_map_rc): an "unavailable" rc checks password
 * against the verifier.  Returns the login's PAM code: PAM_SUCCESS (then
 * *grants holds what acct_mgmt checks), PAM_AUTH_ERR (wrong, or too many
 * failures), or pamret (no usable verifier).  Every check costs one
 * Argon2id computation, a decoy one when no verifier was checked.
 * Without offline_login, or for any other rc, pamret. */
int po_pam_offline_fallback(const po_pam_args *args, po_rc rc, int pamret,
                            const char *idp_user, const char *password,
                            const char *what, po_offline_grants *grants);

/* With offline_login, after the identity provider refused idp_user's
 * password (rc PO_INVALID_GRANT) or wanted more than it
 * (PO_INTERACTION_REQUIRED): remove the verifier (logged). */
void po_pam_offline_forget(const po_pam_args *args, const char *idp_user,
                           po_rc rc, const char *what);

/* With offline_login: spend what one offline check costs (an Argon2id
 * computation with the verifier's parameters, the result discarded), for
 * a login that has no verifier to check. */
void po_pam_offline_decoy(const po_pam_args *args);

/* After an offline login: the roles of claim from source that the last
 * online login stored (PO_NOT_FOUND with the reason when they were read
 * from another claim or source, or could not be read), appended to out. */
po_rc po_pam_offline_roles(const po_pam_state *st, po_roles_source source,
                           const char *claim, po_strlist *out, po_err *err);
/* device.c ----------------------------------------------------------- */

/* The device grant for args->profile (whose client secret is loaded):
 * the device authorization request, the code shown with PAM_TEXT_INFO,
 * the Enter prompt (device_prompt) and polling, within device_timeout.
 * fallback says the password grant came first (the user is told why).
 * On PAM_SUCCESS *out holds a token that the caller must still verify
 * and bind to the user.  Failures are logged and mapped like token
 * requests (access_denied and expired_token: PAM_AUTH_ERR). */
int po_pam_device_login(po_pam_args *args, const char *what, int fallback,
                        po_token *out);

/* Whether a password grant that ended in rc (oe: the server's error code
 * and description) goes on with the device grant: password_fallback =
 * device, and interaction_required (mfa_required, consent_required,
 * login_required) or an invalid_grant whose description contains a text
 * device_fallback_on lists.  Logged when it does. */
int po_pam_device_fallback(const po_pam_args *args, po_rc rc,
                           const po_oauth_error *oe, const char *what);

/* handoff.c ---------------------------------------------------------- */

/* After a successful authentication with store_token, as root: leave a
 * copy of st's token in a fresh root-only directory under
 * PO_PAM_HANDOFF_DIR and name it in the PAM environment, for a session
 * opened by another process (sshd's keyboard-interactive).  A failure is
 * logged and does not fail the login. */
void po_pam_handoff_put(const po_pam_args *args, const po_pam_state *st);

/* After acct_mgmt refused st's user: remove the hand-off the PAM
 * environment names for st's uid, and the variable, so that no copy of a
 * refused login's token waits in PO_PAM_HANDOFF_DIR. */
void po_pam_handoff_drop(const po_pam_args *args, const po_pam_state *st);

/* The state for setcred/open/close_session: po_pam_state_for_user, or,
 * when authentication ran in another process, the state rebuilt from the
 * hand-off the PAM environment names (checked, then removed with the
 * variable).  A hand-off that is not needed is removed unread. */
po_pam_state *po_pam_session_state(po_pam_args *args);

/* account.c ---------------------------------------------------------- */

/* pam_sm_acct_mgmt: PAM_IGNORE for a user who did not authenticate
 * through this module, else the checks on the token. */
int po_pam_acct_mgmt(po_pam_args *args);

/* The profile's roles_claim, or its default "Roles". */
const char *po_pam_roles_claim(const po_profile *p);

/* The scopes a login was granted, as acct_mgmt's require_scope reads
 * them: response_scope (the token response's scope) when not NULL, else
 * the scope (or scp) claim of verified_claims when not NULL, else
 * requested_scope; appended to have, *from says which. */
po_rc po_pam_login_scopes(const char *response_scope,
                          const char *verified_claims,
                          const char *requested_scope, po_strlist *have,
                          const char **from, po_err *err);

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
