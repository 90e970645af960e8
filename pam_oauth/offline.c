/*
 * offline.c - offline login in pam_oauth: the verifier stored after an
 * online login, checked when the identity provider is unavailable, and
 * what acct_mgmt reads after an offline login (common/offline.h).
 *
 * Only with offline_login = yes:
 *   - an online login that succeeded (token verified when the profile
 *     verifies) stores a new verifier of the password, with the scope and
 *     roles it was granted; failing to store it is logged, and the login
 *     still succeeds;
 *   - an online invalid_grant, or an identity provider that wants more
 *     than the password (interaction_required, mfa_required), removes the
 *     verifier at once: the password alone no longer logs in;
 *   - an "unavailable" outcome (po_rc_unavailable: network, timeout, TLS,
 *     HTTP 5xx, 429, a malformed answer) checks the password against the
 *     verifier: match -> PAM_SUCCESS (LOG_NOTICE "... offline ..."); wrong
 *     -> PAM_AUTH_ERR, counted; offline_max_failures reached ->
 *     PAM_AUTH_ERR without a check; expired (deleted), no verifier, a
 *     clock before the last online login, or an unusable file ->
 *     PAM_AUTHINFO_UNAVAIL, so the stack can fall through.  Each of them
 *     costs one Argon2id computation (the verifier's, or a decoy with the
 *     same parameters), as does a nonexistent user's login while the
 *     identity provider is unavailable: the time of a failure does not
 *     tell whether an account or a verifier exists.
 * Every other outcome is left as it was.  A device login never stores or
 * checks a verifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "claims.h"
#include "internal.h"
#include "offline.h"

/* "3d 4h", "5m 2s", "40s": an age for a log line. */
static void age_text(int64_t s, char *buf, size_t n)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        (void)snprintf(buf, n, "%lldd %lldh", (long long)(s / 86400),
                       (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        (void)snprintf(buf, n, "%lldh %lldm", (long long)(s / 3600),
                       (long long)(s % 3600 / 60));
    else if (s >= 60)
        (void)snprintf(buf, n, "%lldm %llds", (long long)(s / 60),
                       (long long)(s % 60));
    else
        (void)snprintf(buf, n, "%llds", (long long)s);
}

/* The scopes of have as one space-separated string in *out (NULL for
 * none). */
static po_rc join_scopes(const po_strlist *have, char **out)
{
    size_t i, n = 0, at = 0;

    *out = NULL;
    if (have->n == 0)
        return PO_OK;
    for (i = 0; i < have->n; i++)
        n += strlen(have->v[i]) + 1;
    if ((*out = malloc(n)) == NULL)
        return PO_NOMEM;
    for (i = 0; i < have->n; i++) {
        size_t len = strlen(have->v[i]);

        if (i > 0)
            (*out)[at++] = ' ';
        memcpy(*out + at, have->v[i], len);
        at += len;
    }
    (*out)[at] = '\0';
    return PO_OK;
}

/* What the online login was granted, as acct_mgmt would read it: the
 * scopes require_scope reads (po_pam_login_scopes: the response's, the
 * verified token's, or the requested ones), and the roles of roles_claim
 * from roles_source. */
static po_rc grants_from_login(const po_profile *p, const po_token *tok,
                               const char *verified_claims,
                               po_offline_grants *g, po_err *err)
{
    const char *claims =
        p->roles_source == PO_ROLES_TOKEN ? verified_claims : tok->extra_json;
    po_strlist have = {NULL, 0};
    const char *from = "";
    po_rc rc;

    memset(g, 0, sizeof(*g));
    g->roles_source = p->roles_source;
    rc = po_pam_login_scopes(tok->scope, verified_claims, p->scope, &have,
                             &from, NULL);
    if (rc == PO_OK)
        rc = join_scopes(&have, &g->scope);
    po_strlist_free(&have);
    if (rc == PO_NOMEM ||
        (g->roles_claim = strdup(po_pam_roles_claim(p))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    rc = claims == NULL ? PO_NOT_FOUND
                        : po_claim_strings(claims, "login", g->roles_claim,
                                           &g->roles, NULL);
    if (rc == PO_NOMEM)
        return po_fail(err, PO_NOMEM, "out of memory");
    g->has_roles = rc == PO_OK;
    return PO_OK;
}

void po_pam_offline_store(const po_pam_args *args, const char *idp_user,
                          const char *password, const po_token *tok,
                          const char *verified_claims, const char *what)
{
    const po_profile *p = args->profile;
    po_offline_grants g;
    po_err err;
    po_rc rc;

    if (!p->offline_login)
        return;
    po_err_clear(&err);
    rc = grants_from_login(p, tok, verified_claims, &g, &err);
    if (rc == PO_OK)
        rc = po_offline_store(p, idp_user, password, &g, (int64_t)time(NULL),
                              &err);
    po_offline_grants_free(&g);
    if (rc != PO_OK) {
        po_logf(&args->log, rc == PO_NOMEM ? LOG_CRIT : LOG_ERR,
                "%s: cannot store the offline verifier (offline login will "
                "not work until one is stored): %s",
                what, err.msg);
        return;
    }
    po_logf(&args->log, LOG_DEBUG, "%s: offline verifier stored", what);
}

void po_pam_offline_forget(const po_pam_args *args, const char *idp_user,
                           po_rc rc, const char *what)
{
    int removed = 0;
    po_err err;

    if (!args->profile->offline_login)
        return;
    po_err_clear(&err);
    if (po_offline_remove(args->profile, idp_user, &removed, &err) != PO_OK)
        po_logf(&args->log, LOG_ERR,
                "%s: cannot remove the offline verifier: %s", what, err.msg);
    else if (removed)
        po_logf(&args->log, LOG_NOTICE, "%s: offline verifier removed: %s",
                what,
                rc == PO_INVALID_GRANT
                    ? "the identity provider rejected the password"
                    : "the identity provider wants more than the password");
}

void po_pam_offline_decoy(const po_pam_args *args)
{
    po_err err;

    if (!args->profile->offline_login)
        return;
    po_err_clear(&err);
    if (po_offline_decoy(&err) != PO_OK)
        po_logf(&args->log, LOG_ERR, "offline login: %s", err.msg);
    else
        po_logf(&args->log, LOG_DEBUG,
                "offline login: no verifier checked; one Argon2id computation "
                "spent all the same");
}

int po_pam_offline_fallback(const po_pam_args *args, po_rc rc, int pamret,
                            const char *idp_user, const char *password,
                            const char *what, po_offline_grants *grants)
{
    const po_profile *p = args->profile;
    int64_t now = (int64_t)time(NULL);
    po_offline_result res;
    char age[64], life[64];
    po_err err;

    memset(grants, 0, sizeof(*grants));
    if (!p->offline_login || !po_rc_unavailable(rc))
        return pamret;
    po_err_clear(&err);
    rc = po_offline_check(p, idp_user, password, now, &args->log, &res, &err);
    /* Whatever the verdict, one Argon2id computation: without a verifier
     * (or with one not checked) a failure takes as long as a wrong
     * password, and as long as a nonexistent user's (auth.c). */
    if (rc != PO_OK || !res.checked)
        po_pam_offline_decoy(args);
    if (rc != PO_OK) {
        po_logf(&args->log, rc == PO_NOMEM ? LOG_CRIT : LOG_ERR,
                "%s: offline login unavailable: %s", what, err.msg);
        return rc == PO_NOMEM ? PAM_BUF_ERR : pamret;
    }
    age_text(now - res.online_at, age, sizeof(age));
    switch (res.verdict) {
    case PO_OFFLINE_MATCH:
        po_logf(&args->log, LOG_NOTICE,
                "%s: authenticated offline: the identity provider is "
                "unavailable; the password matches the verifier of the last "
                "online login, %s ago",
                what, age);
        *grants = res.grants;
        memset(&res.grants, 0, sizeof(res.grants));
        pamret = PAM_SUCCESS;
        break;
    case PO_OFFLINE_WRONG:
        po_logf(&args->log, LOG_NOTICE,
                "%s: authentication failure offline: wrong password (%ld of "
                "%ld failed offline attempts allowed since the last online "
                "login%s)",
                what, res.failures, p->offline_max_failures,
                res.failures >= p->offline_max_failures
                    ? "; offline login is now refused until an online login"
                    : "");
        pamret = PAM_AUTH_ERR;
        break;
    case PO_OFFLINE_LOCKED:
        po_logf(&args->log, LOG_WARNING,
                "%s: offline login refused: %ld failed offline attempts "
                "since the last online login (offline_max_failures %ld); the "
                "password was not checked; an online login is needed",
                what, res.failures, p->offline_max_failures);
        pamret = PAM_AUTH_ERR;
        break;
    case PO_OFFLINE_EXPIRED:
        age_text(p->offline_lifetime, life, sizeof(life));
        po_logf(&args->log, LOG_NOTICE,
                "%s: offline verifier expired and removed: the last online "
                "login was %s ago (offline_lifetime %s)",
                what, age, life);
        break;
    case PO_OFFLINE_CLOCK:
        age_text(res.online_at - now, age, sizeof(age));
        po_logf(&args->log, LOG_WARNING,
                "%s: offline login refused: the clock is %s before the last "
                "online login; check the system time",
                what, age);
        break;
    case PO_OFFLINE_NONE:
        po_logf(&args->log, LOG_INFO,
                "%s: no offline verifier: no online login through this "
                "profile stored one",
                what);
        break;
    }
    po_offline_result_free(&res);
    return pamret;
}

po_rc po_pam_offline_roles(const po_pam_state *st, po_roles_source source,
                           const char *claim, po_strlist *out, po_err *err)
{
    const po_offline_grants *g = &st->offline_grants;
    size_t i;

    if (g->roles_source != source || g->roles_claim == NULL ||
        strcmp(g->roles_claim, claim) != 0)
        return po_fail(err, PO_NOT_FOUND,
                       "offline login: the roles stored at the last online "
                       "login are those of \"%s\" in the %s, but the "
                       "profile reads \"%s\" in the %s; an online login is "
                       "needed",
                       g->roles_claim != NULL ? g->roles_claim : "",
                       g->roles_source == PO_ROLES_TOKEN ? "verified token"
                                                         : "token response",
                       claim,
                       source == PO_ROLES_TOKEN ? "verified token"
                                                : "token response");
    if (!g->has_roles)
        return po_fail(err, PO_NOT_FOUND,
                       "offline login: \"%s\" could not be read at the last "
                       "online login",
                       claim);
    for (i = 0; i < g->roles.n; i++) {
        char **grown;

        /* Each role as one string, spaces and all. */
        if ((grown = realloc(out->v, (out->n + 1) * sizeof(*grown))) == NULL)
            goto nomem;
        out->v = grown;
        if ((out->v[out->n] = strdup(g->roles.v[i])) == NULL)
            goto nomem;
        out->n++;
    }
    return PO_OK;
nomem:
    po_strlist_free(out);
    return po_fail(err, PO_NOMEM, "out of memory");
}
