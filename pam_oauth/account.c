/*
 * account.c - pam_sm_acct_mgmt: optional checks on the token obtained at
 * authentication.
 *
 *   require_scope: every listed scope is in the granted scope: the
 *     response's "scope"; when the server omitted it and the profile
 *     verifies tokens, the verified token's "scope" claim (RFC 9068; or
 *     "scp", as Okta and Entra ID send it), and none is a denial; without
 *     verification, the requested scope (RFC 6749 5.1: an omitted scope
 *     equals the request);
 *   require_roles: every listed role is in roles_claim (default "Roles")
 *     of the token response (roles_source = response) or of the token that
 *     verify proved at authentication (roles_source = token).
 * No check configured: PAM_SUCCESS.  A failed check: PAM_PERM_DENIED with
 * the reason in syslog.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "claims.h"
#include "internal.h"

#define DEFAULT_ROLES_CLAIM "Roles"

const char *po_pam_roles_claim(const po_profile *p)
{
    return p->roles_claim != NULL && p->roles_claim[0] != '\0'
               ? p->roles_claim
               : DEFAULT_ROLES_CLAIM;
}

/* roles_source = response: the members of the token response beside the
 * tokens, which came over the TLS connection to the token endpoint. */
static po_rc response_claims(const po_pam_state *st, const char *path,
                             po_strlist *out, po_err *err)
{
    return po_claim_strings(st->token.extra_json, "token response", path, out,
                            err);
}

/* roles_source = token: the claims that verify proved at authentication
 * (a JWT whose signature, issuer, audience and lifetime were checked, or
 * an introspection answer).  Nothing else: an unverified JWT's claims are
 * whatever its bytes say. */
static po_rc token_claims(const po_pam_state *st, const char *path,
                          po_strlist *out, po_err *err)
{
    if (st->verified_claims == NULL)
        return po_fail(err, PO_NOT_FOUND,
                       "verified token: no token was verified at "
                       "authentication (roles_source is token)");
    return po_claim_strings(st->verified_claims, "verified token", path, out,
                            err);
}

/* The strings of claim path from source: PO_ROLES_RESPONSE, a member of
 * the token response; PO_ROLES_TOKEN, a claim of the token that the
 * profile's verify proved at authentication (st->verified_claims).  Claims
 * of a token that was not verified are never read. */
static po_rc roles_claim(const po_pam_state *st, po_roles_source source,
                         const char *path, po_strlist *out, po_err *err)
{
    if (st->offline) /* what the last online login stored */
        return po_pam_offline_roles(st, source, path, out, err);
    return source == PO_ROLES_TOKEN ? token_claims(st, path, out, err)
                                    : response_claims(st, path, out, err);
}

/* Every word of required must be in have; the first missing one is put in
 * *missing (pointing into the list, valid until it is freed). */
static int all_present(const po_strlist *required, const po_strlist *have,
                       const char **missing)
{
    size_t i;

    for (i = 0; i < required->n; i++) {
        if (!po_strlist_has(have, required->v[i])) {
            *missing = required->v[i];
            return 0;
        }
    }
    return 1;
}

po_rc po_pam_login_scopes(const char *response_scope,
                          const char *verified_claims,
                          const char *requested_scope, po_strlist *have,
                          const char **from, po_err *err)
{
    po_rc rc;

    if (response_scope != NULL) {
        *from = "the token response's scope";
        return po_strlist_split(response_scope, have);
    }
    if (verified_claims != NULL) {
        *from = "the verified token's scope claim";
        rc = po_claim_strings(verified_claims, "verified token", "scope", have,
                              err);
        if (rc == PO_NOT_FOUND) {
            *from = "the verified token's scp claim";
            rc = po_claim_strings(verified_claims, "verified token", "scp",
                                  have, err);
        }
        if (rc == PO_NOT_FOUND)
            rc = po_fail(err, PO_NOT_FOUND,
                         "the token response has no scope member and the "
                         "verified token no scope or scp claim");
        return rc;
    }
    *from = "the requested scope (the response has none)";
    return po_strlist_split(requested_scope, have);
}

/* The granted scopes into have, and what they came from into *from. */
static po_rc granted_scopes(const po_pam_state *st, po_strlist *have,
                            const char **from, po_err *err)
{
    if (st->offline) {
        /* what po_pam_offline_store kept from the last online login */
        *from = "the scope stored at the last online login";
        if (st->offline_grants.scope == NULL)
            return po_fail(err, PO_NOT_FOUND,
                           "offline login: the last online login stored no "
                           "scope; an online login is needed");
        return po_strlist_split(st->offline_grants.scope, have);
    }
    return po_pam_login_scopes(st->token.scope, st->verified_claims,
                               st->requested_scope, have, from, err);
}

static int check_scope(const po_pam_args *args, const po_pam_state *st,
                       const char *require, const char *shown)
{
    po_strlist req = {NULL, 0}, have = {NULL, 0};
    const char *missing = NULL, *from = "";
    int pamret = PAM_SUCCESS;
    char granted[256] = "";
    po_err err;
    po_rc rc;
    size_t i, n = 0;

    po_err_clear(&err);
    if (po_strlist_split(require, &req) != PO_OK) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        pamret = PAM_BUF_ERR;
        goto out;
    }
    rc = granted_scopes(st, &have, &from, &err);
    if (rc == PO_NOMEM) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        pamret = PAM_BUF_ERR;
        goto out;
    }
    if (rc != PO_OK) {
        po_logf(&args->log, LOG_NOTICE,
                "access denied to user %s: require_scope: %s", shown, err.msg);
        pamret = PAM_PERM_DENIED;
        goto out;
    }
    for (i = 0; i < have.n && n + 1 < sizeof(granted); i++)
        n += (size_t)snprintf(granted + n, sizeof(granted) - n, "%s%s",
                              i > 0 ? " " : "", have.v[i]);
    if (!all_present(&req, &have, &missing)) {
        po_logf(&args->log, LOG_NOTICE,
                "access denied to user %s: require_scope: scope \"%s\" "
                "was not granted (granted, from %s: \"%s\")",
                shown, missing, from, granted);
        pamret = PAM_PERM_DENIED;
        goto out;
    }
    po_logf(&args->log, LOG_DEBUG, "require_scope \"%s\": granted (from %s)",
            require, from);
out:
    po_strlist_free(&req);
    po_strlist_free(&have);
    return pamret;
}

static int check_roles(const po_pam_args *args, const po_pam_state *st,
                       const char *require, const char *claim,
                       po_roles_source source, const char *shown)
{
    po_strlist req = {NULL, 0}, have = {NULL, 0};
    const char *missing = NULL;
    int pamret = PAM_SUCCESS;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    if (po_strlist_split(require, &req) != PO_OK) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        pamret = PAM_BUF_ERR;
        goto out;
    }
    rc = roles_claim(st, source, claim, &have, &err);
    if (rc == PO_NOMEM) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        pamret = PAM_BUF_ERR;
        goto out;
    }
    if (rc != PO_OK) {
        po_logf(&args->log, LOG_NOTICE,
                "access denied to user %s: require_roles: %s", shown, err.msg);
        pamret = PAM_PERM_DENIED;
        goto out;
    }
    if (!all_present(&req, &have, &missing)) {
        po_logf(&args->log, LOG_NOTICE,
                "access denied to user %s: require_roles: role \"%s\" is "
                "not in \"%s\"",
                shown, missing, claim);
        pamret = PAM_PERM_DENIED;
        goto out;
    }
    po_logf(&args->log, LOG_DEBUG, "require_roles \"%s\": present in \"%s\"",
            require, claim);
out:
    po_strlist_free(&req);
    po_strlist_free(&have);
    return pamret;
}

int po_pam_acct_mgmt(po_pam_args *args)
{
    const po_pam_state *st = po_pam_state_for_user(args);
    const po_profile *p;
    char shown[80];
    int pamret;

    if (st == NULL) {
        po_logf(&args->log, LOG_DEBUG,
                "the user did not authenticate through pam_oauth: ignored");
        return PAM_IGNORE;
    }
    po_pam_printable(st->user, shown, sizeof(shown));
    if ((pamret = po_pam_load_state_profile(args, st)) != PAM_SUCCESS)
        return pamret;
    p = args->profile;
    if (p->require_scope != NULL && p->require_scope[0] != '\0' &&
        (pamret = check_scope(args, st, p->require_scope, shown)) !=
            PAM_SUCCESS)
        goto out;
    if (p->require_roles != NULL && p->require_roles[0] != '\0' &&
        (pamret = check_roles(args, st, p->require_roles, po_pam_roles_claim(p),
                              p->roles_source, shown)) != PAM_SUCCESS)
        goto out;
    po_logf(&args->log, LOG_DEBUG, "account checks passed for user %s", shown);
out:
    /* A refused login's token is not left for a session that will not
     * open (sshd's keyboard-interactive child hands it over). */
    if (pamret != PAM_SUCCESS)
        po_pam_handoff_drop(args, st);
    return pamret;
}
