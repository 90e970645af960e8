/*
 * offline.h - offline login: a verifier of the last password the identity
 * provider accepted, so that the user can log in while the provider
 * cannot be reached (pam_oauth only: this is the one module that links
 * libargon2, and oauth-token never calls it).
 *
 * The verifier is Argon2id (RFC 9106) of the password with a random
 * 16-byte salt (getrandom) per store, in the standard encoding
 *
 *     $argon2id$v=19$m=47104,t=2,p=1$SALT$HASH
 *
 * (m in KiB, t passes, p lanes; SALT and HASH unpadded base64).  The
 * parameters are PO_OFFLINE_M_COST, PO_OFFLINE_T_COST and
 * PO_OFFLINE_LANES, chosen so that one check costs 50 to 100 ms on a
 * current server core (measured: 73 to 78 ms of CPU time on the project's
 * AMD EPYC benchmark machine, `make bench` row 13a); a check uses one
 * thread, whatever p says.  Never
 * the password, never anything reversible.
 *
 * Layout: OFFLINE_DIR (the profile's offline_dir, default
 * PO_OFFLINE_DIR_DEFAULT) and OFFLINE_DIR/PROFILE are directories of the
 * effective uid (root) with mode 0700 (group and others get nothing: a
 * directory that gives them access is refused).  In OFFLINE_DIR/PROFILE,
 * per identity provider user name U (the name sent to the IdP, after
 * username_format):
 *     NAME         the verifier file (0600, JSON, below)
 *     .NAME.lock   its lock (flock), held across read, check and write
 *     .NAME.XXXXXX temporary files of an atomic replacement
 * NAME is U with every byte outside [A-Za-z0-9._@+-] written as %XX
 * (upper-case hex), and a leading '.' as %2E, so that it is one path
 * component that never starts with '.' and never names another user's
 * file (po_offline_file_name).
 *
 * The file is a JSON object:
 *     {"version":1, "profile":P, "user":U, "token_url":..., "client_id":...,
 *      "verifier":"$argon2id$...", "online_at":N, "failures":N,
 *      "scope":S|null, "roles_source":"response"|"token",
 *      "roles_claim":C, "roles":[...]|null}
 * online_at is the wall clock of the last online login, failures the
 * wrong offline passwords since then (or since the last offline success),
 * scope and roles what that online login was granted (the scopes that
 * require_scope reads: the response's, else the verified token's scope or
 * scp claim, else the requested ones; the roles of
 * roles_claim read from roles_source, null when they could not be read).
 * A verifier is only used for the profile, user, token_url and client_id
 * it names.
 */
#ifndef PO_OFFLINE_H
#define PO_OFFLINE_H

#include <stdint.h>
#include "claims.h"
#include "config.h"
#include "err.h"

#define PO_OFFLINE_M_COST 47104u /* KiB of memory (46 MiB)            */
#define PO_OFFLINE_T_COST 2u     /* passes over it                     */
#define PO_OFFLINE_LANES 1u      /* lanes (p); checked on one thread   */
#define PO_OFFLINE_SALT_LEN 16u  /* bytes                              */
#define PO_OFFLINE_HASH_LEN 32u  /* bytes                              */
#define PO_OFFLINE_FILE_MAX (64 * 1024)
#define PO_OFFLINE_NAME_MAX 240    /* bytes of an escaped user name       */
#define PO_OFFLINE_CLOCK_SLACK 300 /* s the clock may be behind online_at */

/* What the last online login was granted: what acct_mgmt checks after an
 * offline login. */
typedef struct po_offline_grants {
    char *scope;                  /* granted scope, or NULL              */
    char *roles_claim;            /* the claim path roles came from      */
    po_roles_source roles_source; /* where that claim was read           */
    int has_roles;                /* roles were read (0: the claim was
                                     absent or unreadable)               */
    po_strlist roles;
} po_offline_grants;

/* Free g's contents; g is left empty. */
void po_offline_grants_free(po_offline_grants *g);

typedef enum po_offline_verdict {
    PO_OFFLINE_NONE = 0, /* no usable verifier for this user and profile */
    PO_OFFLINE_MATCH,    /* the password matches: failures reset to 0,
                            grants filled                                */
    PO_OFFLINE_WRONG,    /* it does not: failures counted                */
    PO_OFFLINE_LOCKED,   /* failures had reached offline_max_failures:
                            the password was not checked                 */
    PO_OFFLINE_EXPIRED,  /* the last online login is older than
                            offline_lifetime: the verifier was removed   */
    PO_OFFLINE_CLOCK     /* the clock is more than
                            PO_OFFLINE_CLOCK_SLACK before online_at: not
                            checked, kept (the clock may be fixed)       */
} po_offline_verdict;

typedef struct po_offline_result {
    po_offline_verdict verdict;
    int64_t online_at;        /* the last online login (0: no verifier) */
    long failures;            /* wrong offline passwords, after this one */
    int checked;              /* the password was checked against the
                                 verifier (MATCH, WRONG): one Argon2id
                                 computation was spent                  */
    po_offline_grants grants; /* PO_OFFLINE_MATCH only                   */
} po_offline_result;

/* Free r's contents; r is left empty. */
void po_offline_result_free(po_offline_result *r);

/* The stable name of verdict v ("match", "wrong", ...). */
const char *po_offline_verdict_name(po_offline_verdict v);

/* The file name of user's verifier (escaped as above), malloc'd.
 * PO_TOO_LARGE when it would be longer than PO_OFFLINE_NAME_MAX bytes,
 * PO_USAGE for an empty name. */
po_rc po_offline_file_name(const char *user, char **out, po_err *err);

/* After an online login of user with password through profile p: replace
 * the verifier with a new one (new salt, online_at = now, failures 0,
 * grants g; g may be NULL: nothing granted).  The directories are made
 * when missing (0700).  Costs one Argon2id computation, done before the
 * lock is taken.  PO_IO naming the file or directory and the reason,
 * PO_LOCKED, PO_TOO_LARGE, PO_NOMEM. */
po_rc po_offline_store(const po_profile *p, const char *user,
                       const char *password, const po_offline_grants *g,
                       int64_t now, po_err *err);

/* While the identity provider is unavailable: check password against
 * user's verifier for profile p, at wall clock now, under the verifier's
 * lock, and count the outcome (see po_offline_verdict).  A file that is
 * not JSON, not version 1 or made for another profile, user, token_url or
 * client_id is removed with a LOG_WARNING on log and is
 * PO_OFFLINE_NONE.  Returns PO_OK with res->verdict set, or an error
 * (res->verdict PO_OFFLINE_NONE): PO_IO for an unusable directory or file
 * (a link, wrong owner or mode; left in place), PO_LOCKED, PO_NOMEM,
 * PO_TOO_LARGE (the name).  A failure of the Argon2id computation itself
 * is an error, never counted as a wrong password. */
po_rc po_offline_check(const po_profile *p, const char *user,
                       const char *password, int64_t now, const po_log *log,
                       po_offline_result *res, po_err *err);

/* Spend what checking a password costs: one Argon2id computation with
 * the parameters above over a random salt and password, the result
 * discarded.  For a login that has no verifier to check (none, expired,
 * locked, a nonexistent user), so that its failure takes as long as a
 * wrong password's.  PO_NOMEM, PO_IO (no random bytes, Argon2id failed). */
po_rc po_offline_decoy(po_err *err);

/* Remove user's verifier for profile p (under its lock), as after an
 * online invalid_grant.  No verifier is not an error; *removed (when not
 * NULL) says whether there was one. */
po_rc po_offline_remove(const po_profile *p, const char *user, int *removed,
                        po_err *err);

#endif
