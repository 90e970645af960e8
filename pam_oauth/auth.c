/*
 * auth.c - pam_sm_authenticate: the user's password checked with the
 * password grant at the profile's token endpoint.
 *
 * Order.  First the password prompt, for every user name, so that the
 * conversation never tells which accounts exist (the CVE-2018-15473 class:
 * over keyboard-interactive a missing prompt is an answer).  Then, so that
 * nothing reaches the network that can be refused locally: the PAM user
 * name (length, control characters), the configuration, the IdP user name
 * (username_format, ambiguity), the local account (uid < minimum_uid ->
 * PAM_IGNORE, the password left in PAM_AUTHTOK for the next module), the
 * password (empty or too long -> PAM_AUTH_ERR), the client secret, then
 * one token request bounded by the profile's timeout, retries included.
 *
 * A user with no local account gets what a wrong password gets, in the
 * same time: the request is made, but for a random user name that exists
 * nowhere, with a random password (OpenSSH's fake password entry for
 * invalid users does the same), and the answer is discarded:
 * PAM_USER_UNKNOWN, or PAM_AUTHINFO_UNAVAIL when the identity provider is
 * unavailable, as it would be for a real user.  The typed password is not
 * sent: it belongs to no account here, is often another account's password
 * typed after a mistyped name, and sent under the typed name it would feed
 * the lockout counter of a same-named IdP account for anyone who can reach
 * a login prompt.
 *
 * With grant = device there is no password: device.c shows a code, the
 * user approves it at the identity provider, and the token comes from
 * polling (device_timeout bounds it).  The code is shown to every user,
 * with or without a local account (the device authorization request names
 * no user, so the identity provider learns nothing); a nonexistent user is
 * refused only after the flow, whoever approved.  A user below minimum_uid
 * is ignored before any conversation: a code it could not use would keep it
 * from the next module.  With password_fallback = device a password grant
 * refused for wanting more than a password goes on there.  Either way the
 * token is verified and bound to the user before the login is accepted.
 *
 * With offline_login (offline.c), a password login that the identity
 * provider accepted (token verified and bound) stores a verifier of the
 * password; when the identity provider is unavailable, a local user's
 * password is checked against it instead.  Never for a nonexistent user
 * (the decoy above, then the cost of one offline check, so an outage does
 * not tell accounts apart either), never for a device login (there is no
 * password), never after a rejection: invalid_grant, or the identity
 * provider wanting more than the password, removes the verifier.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_ext.h>

#include "internal.h"
#include "secret.h"
#include "util.h"
#include "verify.h"

#define DEFAULT_TIMEOUT_MS 20000L
#define IDP_USER_MAX 4096

/* Characters that separate a user from a domain or realm in an IdP user
 * name.  When username_format puts one around %u, a PAM user name that
 * contains it could name a different IdP user, so it is refused. */
static const char separators[] = "@\\/";

int po_pam_map_rc(const po_pam_args *args, po_rc rc, const po_err *err,
                  const char *what)
{
    const char *msg = err != NULL && err->msg[0] != '\0' ? err->msg : "";
    const char *name = po_rc_name(rc);

    if (po_rc_unavailable(rc)) {
        po_logf(&args->log, LOG_ERR,
                "%s: the identity provider is unavailable (%s): %s", what, name,
                msg);
        return PAM_AUTHINFO_UNAVAIL;
    }
    switch (rc) {
    case PO_OK:
        return PAM_SUCCESS;
    case PO_INVALID_GRANT:
        po_logf(&args->log, LOG_NOTICE,
                "%s: the identity provider rejected the credentials "
                "(invalid_grant): %s",
                what, msg);
        return PAM_AUTH_ERR;
    case PO_INTERACTION_REQUIRED:
        po_logf(&args->log, LOG_NOTICE,
                "%s: the identity provider wants more than a password (%s): "
                "%s; a device login (grant = device, or password_fallback = "
                "device) can satisfy it",
                what, name, msg);
        return PAM_AUTH_ERR;
    case PO_ACCESS_DENIED:
        po_logf(&args->log, LOG_NOTICE,
                "%s: the device login was denied at the identity provider: "
                "%s",
                what, msg);
        return PAM_AUTH_ERR;
    case PO_EXPIRED_TOKEN:
        po_logf(&args->log, LOG_NOTICE,
                "%s: the device login was not approved in time: %s", what, msg);
        return PAM_AUTH_ERR;
    case PO_INVALID_CLIENT:
    case PO_UNAUTHORIZED_CLIENT:
        po_logf(&args->log, LOG_CRIT,
                "%s: the identity provider rejected the OAuth client "
                "(%s): %s; nobody can log in through this profile until "
                "its client_id, secret or grants are fixed",
                what, name, msg);
        return PAM_SERVICE_ERR;
    case PO_INVALID_SCOPE:
    case PO_INVALID_REQUEST:
    case PO_CONFIG:
        po_logf(&args->log, LOG_ERR, "%s: configuration error (%s): %s", what,
                name, msg);
        return PAM_SERVICE_ERR;
    case PO_NOMEM:
        po_logf(&args->log, LOG_CRIT, "%s: out of memory", what);
        return PAM_BUF_ERR;
    default:
        po_logf(&args->log, LOG_ERR, "%s: %s: %s", what, name, msg);
        return PAM_SERVICE_ERR;
    }
}

/* The PAM user name must be usable as a local name, in a log line and in
 * a request: not empty, no control characters, at most PO_PAM_USER_MAX
 * bytes. */
static int check_user_name(const po_pam_args *args, const char *user)
{
    size_t i;

    for (i = 0; user[i] != '\0'; i++) {
        if (i >= PO_PAM_USER_MAX) {
            po_logf(&args->log, LOG_NOTICE,
                    "user name refused: longer than %d bytes", PO_PAM_USER_MAX);
            return PAM_USER_UNKNOWN;
        }
        if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f) {
            po_logf(&args->log, LOG_NOTICE,
                    "user name refused: it contains control characters");
            return PAM_USER_UNKNOWN;
        }
    }
    if (i == 0) {
        po_logf(&args->log, LOG_NOTICE, "user name refused: empty");
        return PAM_USER_UNKNOWN;
    }
    return PAM_SUCCESS;
}

int po_pam_map_user(const po_pam_args *args, const char *fmt, const char *user,
                    char **out)
{
    char used[sizeof(separators)] = "", shown[80];
    const char *f;
    size_t nused = 0;
    int has_u = 0, pamret = PAM_SUCCESS;
    po_buf b;

    *out = NULL;
    po_buf_init(&b, IDP_USER_MAX, 0);
    if (fmt == NULL || fmt[0] == '\0')
        fmt = "%u";
    /* Check the format; note which separators it puts around %u. */
    for (f = fmt; *f != '\0'; f++) {
        if (*f == '%') {
            if (f[1] == 'u')
                has_u = 1;
            else if (f[1] != '%') {
                po_logf(&args->log, LOG_ERR,
                        "username_format \"%s\": unknown conversion '%%%c' "
                        "(only %%u and %%%% are allowed)",
                        fmt, f[1] != '\0' ? f[1] : ' ');
                pamret = PAM_SERVICE_ERR;
                goto out;
            }
            f++;
            continue;
        }
        if (strchr(separators, *f) != NULL && strchr(used, *f) == NULL) {
            used[nused++] = *f;
            used[nused] = '\0';
        }
    }
    if (!has_u) {
        po_logf(&args->log, LOG_ERR,
                "username_format \"%s\" has no %%u: every user would map "
                "to the same IdP user, refused",
                fmt);
        pamret = PAM_SERVICE_ERR;
        goto out;
    }
    for (f = used; *f != '\0'; f++) {
        if (strchr(user, *f) != NULL) {
            po_pam_printable(user, shown, sizeof(shown));
            po_logf(&args->log, LOG_NOTICE,
                    "user name %s refused: it contains '%c', which "
                    "username_format \"%s\" puts around it (ambiguous)",
                    shown, *f, fmt);
            pamret = PAM_USER_UNKNOWN;
            goto out;
        }
    }
    for (f = fmt; *f != '\0'; f++) {
        po_rc rc;

        if (*f == '%') {
            f++;
            rc = *f == 'u' ? po_buf_puts(&b, user) : po_buf_puts(&b, "%");
        } else {
            rc = po_buf_append(&b, f, 1);
        }
        if (rc != PO_OK) {
            po_logf(&args->log, rc == PO_NOMEM ? LOG_CRIT : LOG_NOTICE,
                    "cannot map the user name: %s", po_rc_name(rc));
            pamret = rc == PO_NOMEM ? PAM_BUF_ERR : PAM_USER_UNKNOWN;
            goto out;
        }
    }
    if (po_buf_detach(&b, out) != PO_OK) {
        po_logf(&args->log, LOG_CRIT, "out of memory");
        pamret = PAM_BUF_ERR;
    }
out:
    po_buf_free(&b);
    return pamret;
}

/* The password: PAM_AUTHTOK from an earlier module (use_first_pass: only
 * that; try_first_pass: that when set) or a prompt, whose answer becomes
 * PAM_AUTHTOK for the modules after this one.  *out is a copy that the
 * caller frees with po_secret_free. */
static int get_password(const po_pam_args *args, char **out)
{
    const void *item = NULL;
    char *resp = NULL;
    int pamret;

    *out = NULL;
    if (args->use_first_pass || args->try_first_pass) {
        pamret = pam_get_item(args->pamh, PAM_AUTHTOK, &item);
        if (pamret != PAM_SUCCESS) {
            po_logf(&args->log, LOG_ERR, "cannot read PAM_AUTHTOK: %s",
                    pam_strerror(args->pamh, pamret));
            return pamret;
        }
        if (item != NULL) {
            po_logf(&args->log, LOG_DEBUG,
                    "using the password of a previous module");
            if ((*out = po_strdup(item)) == NULL) {
                po_logf(&args->log, LOG_CRIT, "out of memory");
                return PAM_BUF_ERR;
            }
            return PAM_SUCCESS;
        }
        if (args->use_first_pass) {
            po_logf(&args->log, LOG_NOTICE,
                    "use_first_pass: no password from a previous module");
            return PAM_AUTH_ERR;
        }
    }
    pamret = pam_prompt(args->pamh, PAM_PROMPT_ECHO_OFF, &resp, "Password: ");
    if (pamret == PAM_CONV_AGAIN)
        return PAM_INCOMPLETE;
    if (pamret != PAM_SUCCESS || resp == NULL) {
        po_logf(&args->log, LOG_ERR, "cannot prompt for the password: %s",
                pam_strerror(args->pamh,
                             pamret != PAM_SUCCESS ? pamret : PAM_CONV_ERR));
        po_secret_free(resp);
        return pamret != PAM_SUCCESS ? pamret : PAM_CONV_ERR;
    }
    pamret = pam_set_item(args->pamh, PAM_AUTHTOK, resp);
    if (pamret != PAM_SUCCESS) {
        po_logf(&args->log, LOG_ERR, "cannot set PAM_AUTHTOK: %s",
                pam_strerror(args->pamh, pamret));
        po_secret_free(resp);
        return pamret;
    }
    *out = resp;
    return PAM_SUCCESS;
}

/* Load the client secret, telling an unprivileged caller that cannot read
 * the secret file apart from a broken configuration. */
static int load_secret(const po_pam_args *args, po_profile *p)
{
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    if (p->client_secret == NULL && p->client_secret_file != NULL &&
        p->client_auth != PO_CLIENT_AUTH_NONE &&
        faccessat(AT_FDCWD, p->client_secret_file, R_OK, AT_EACCESS) == -1 &&
        errno == EACCES) {
        po_logf(&args->log, LOG_ERR,
                "%s: permission denied for uid %lu: this program cannot read "
                "the client secret of profile [%s], so OAuth authentication "
                "is unavailable to it",
                p->client_secret_file, (unsigned long)geteuid(), p->name);
        return PAM_AUTHINFO_UNAVAIL;
    }
    rc = po_profile_load_secret(p, &args->log, &err);
    if (rc == PO_OK)
        return PAM_SUCCESS;
    po_logf(&args->log, rc == PO_NOMEM ? LOG_CRIT : LOG_ERR,
            "profile [%s]: cannot load the client secret: %s", p->name,
            err.msg);
    if (rc == PO_NOMEM)
        return PAM_BUF_ERR;
    return rc == PO_TIMEOUT ? PAM_AUTHINFO_UNAVAIL : PAM_SERVICE_ERR;
}

/* verify (common/verify.h): prove that the token came from the
 * profile's issuer, for us, is current, and names idp_user in user_claim.
 * Key sets are cached in PO_JWKS_SYSTEM_DIR (root's) or jwks_cache_dir.
 * On PAM_SUCCESS *claims is the verified claims (JSON, malloc'd) or NULL
 * when the profile does not verify.  A verdict against the token is
 * PAM_AUTH_ERR; failing to reach one (keys unavailable, ...) is mapped
 * like a token request failure. */
static int verify_token(const po_pam_args *args, const po_token *tok,
                        const char *idp_user, uint64_t deadline,
                        const char *what, char **claims)
{
    const po_profile *p = args->profile;
    po_verifier v;
    po_verified res;
    char *dir = NULL;
    int pamret = PAM_SUCCESS, ready = 0;
    po_err err;
    po_rc rc;

    *claims = NULL;
    memset(&res, 0, sizeof(res));
    po_err_clear(&err);
    if (p->verify == PO_VERIFY_NONE)
        return PAM_SUCCESS;
    if ((rc = po_verify_cache_dir(p, 1, &dir, &err)) != PO_OK ||
        (rc = po_verifier_init(&v, dir, &args->log, &err)) != PO_OK) {
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    }
    ready = 1;
    rc = po_verify_response(&v, p, tok, idp_user, deadline, (int64_t)time(NULL),
                            &res, &err);
    if (rc != PO_OK && po_verify_is_verdict(rc)) {
        po_logf(&args->log, LOG_WARNING,
                "%s: authentication failure: the %s token was refused "
                "(%s): %s",
                what, p->verify_token == PO_VERIFY_ID_TOKEN ? "id" : "access",
                po_rc_name(rc), err.msg);
        pamret = PAM_AUTH_ERR;
        goto out;
    }
    if (rc != PO_OK) {
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    }
    po_logf(&args->log, LOG_DEBUG, "%s: token verified (%s%s%s)", what,
            res.method == PO_VERIFY_JWT ? "jwt " : "introspection", res.alg,
            res.user[0] != '\0' ? ", user claim matches" : "");
    *claims = res.claims_json;
    res.claims_json = NULL;
out:
    po_verified_free(&res);
    if (ready)
        po_verifier_free(&v);
    free(dir);
    return pamret;
}

/* Keep what the later calls need on the handle; takes *tok, *claims and
 * (an offline login's, or NULL) *grants. */
static int keep_state(const po_pam_args *args, const char *user,
                      const char *local, const char *idp_user, uid_t uid,
                      gid_t gid, const char *home, po_token *tok, char **claims,
                      po_offline_grants *grants)
{
    po_pam_state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        goto nomem;
    st->uid = uid;
    st->gid = gid;
    st->token = *tok;
    memset(tok, 0, sizeof(*tok));
    st->verified_claims = *claims;
    *claims = NULL;
    if (grants != NULL) {
        st->offline = 1;
        st->offline_grants = *grants;
        memset(grants, 0, sizeof(*grants));
    }
    if ((st->user = strdup(user)) == NULL ||
        (st->local_name = strdup(local)) == NULL ||
        (st->idp_user = strdup(idp_user)) == NULL ||
        (st->profile_name = strdup(args->profile->name)) == NULL ||
        (st->home = strdup(home)) == NULL ||
        (args->profile->scope != NULL &&
         (st->requested_scope = strdup(args->profile->scope)) == NULL))
        goto nomem;
    return po_pam_state_set(args->pamh, st);
nomem:
    po_pam_state_free(st);
    po_logf(&args->log, LOG_CRIT, "out of memory");
    return PAM_BUF_ERR;
}

/* In place of a nonexistent local user: the same request for a random
 * IdP user name (through username_format) with a random password, whose
 * answer only tells whether the identity provider was available. */
static int decoy_request(const po_pam_args *args, const char *shown,
                         uint64_t deadline)
{
    const po_profile *p = args->profile;
    unsigned char rnd[24];
    char name[64], pass[2 * sizeof(rnd) + 1], *idp = NULL;
    po_grant_input g;
    po_token tok;
    po_err err;
    size_t i;
    po_rc rc;
    int pamret;

    memset(&tok, 0, sizeof(tok));
    po_err_clear(&err);
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        po_logf(&args->log, LOG_ERR, "getrandom: %s", strerror(errno));
        return PAM_USER_UNKNOWN;
    }
    (void)snprintf(name, sizeof(name), "nonexistent-");
    for (i = 0; i < 8; i++)
        (void)snprintf(name + 12 + 2 * i, 3, "%02x", rnd[i]);
    for (i = 0; i < sizeof(rnd); i++)
        (void)snprintf(pass + 2 * i, 3, "%02x", rnd[i] ^ rnd[(i + 8) % 24]);
    po_cleanse(rnd, sizeof(rnd));
    if ((pamret = po_pam_map_user(args, p->username_format, name, &idp)) !=
        PAM_SUCCESS)
        goto out;
    g.grant = PO_GRANT_PASSWORD;
    g.username = idp;
    g.password = pass;
    g.refresh_token = NULL;
    rc = po_oauth_token_request(p, &g, deadline, 0, (int64_t)time(NULL), NULL,
                                &tok, &err);
    if (po_rc_unavailable(rc)) {
        po_logf(&args->log, LOG_ERR,
                "user %s is not a local user, and the identity provider is "
                "unavailable (%s): %s",
                shown, po_rc_name(rc), err.msg);
        pamret = PAM_AUTHINFO_UNAVAIL;
        goto out;
    }
    po_logf(&args->log, LOG_NOTICE,
            "authentication failure for user %s: not a local user (a "
            "request for a nonexistent identity provider user was made in "
            "its place, %s; the password was not sent)",
            shown, po_rc_name(rc));
    pamret = PAM_USER_UNKNOWN;
out:
    po_token_free(&tok);
    po_cleanse(pass, sizeof(pass));
    free(idp);
    return pamret;
}

int po_pam_authenticate(po_pam_args *args)
{
    const char *user = NULL;
    char *idp_user = NULL, *password = NULL, *home = NULL, *claims = NULL;
    char *local = NULL;
    char shown[80], what[256];
    po_profile *p;
    po_token tok;
    po_grant_input g;
    po_offline_grants grants;
    po_oauth_error oe;
    po_err err;
    uid_t uid = 0;
    gid_t gid = 0;
    uint64_t deadline;
    long timeout_ms;
    size_t len;
    int pamret, known, device;
    po_rc rc;

    memset(&tok, 0, sizeof(tok));
    memset(&grants, 0, sizeof(grants));
    po_err_clear(&err);
    /* A new authentication on this handle forgets the previous one. */
    po_pam_state_clear(args->pamh);
    /* Asked for now, applied by libpam only if the stack fails: every
     * failure below waits the same. */
    if (args->fail_delay_ms > 0)
        (void)pam_fail_delay(args->pamh,
                             (unsigned int)args->fail_delay_ms * 1000u);

    pamret = pam_get_user(args->pamh, &user, NULL);
    if (pamret == PAM_CONV_AGAIN) {
        pamret = PAM_INCOMPLETE;
        goto out;
    }
    if (pamret != PAM_SUCCESS || user == NULL) {
        po_logf(&args->log, LOG_ERR, "cannot get the user name: %s",
                pam_strerror(args->pamh, pamret != PAM_SUCCESS
                                             ? pamret
                                             : PAM_USER_UNKNOWN));
        if (pamret == PAM_SUCCESS)
            pamret = PAM_USER_UNKNOWN;
        goto out;
    }
    /* The configuration is the same for every user name: reading it first
     * tells nothing about the user, and says whether there is a password
     * to ask for (the device grant has none). */
    if ((pamret = po_pam_load_profile(args)) != PAM_SUCCESS)
        goto out;
    p = args->profile;
    device = p->grant == PO_GRANT_DEVICE_CODE;
    /* The prompt before anything is decided about the user. */
    if (!device && (pamret = get_password(args, &password)) != PAM_SUCCESS)
        goto out;
    if ((pamret = check_user_name(args, user)) != PAM_SUCCESS)
        goto out;
    po_pam_printable(user, shown, sizeof(shown));

    if ((pamret = po_pam_map_user(args, p->username_format, user, &idp_user)) !=
        PAM_SUCCESS)
        goto out;
    pamret = po_pam_lookup_user(args, user, &local, &uid, &gid, &home);
    if (pamret != PAM_SUCCESS && pamret != PAM_USER_UNKNOWN)
        goto out;
    known = pamret == PAM_SUCCESS;
    if (known && p->minimum_uid > 0 &&
        (long long)uid < (long long)p->minimum_uid) {
        po_logf(&args->log, LOG_DEBUG,
                "ignoring user %s: uid %lu is below minimum_uid %ld%s", shown,
                (unsigned long)uid, p->minimum_uid,
                device ? "" : " (the password is left to the next module)");
        pamret = PAM_IGNORE;
        goto out;
    }

    (void)snprintf(what, sizeof(what), "user %s (as %s), profile [%s]", shown,
                   idp_user, p->name);
    timeout_ms = p->timeout_ms > 0 ? p->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (device) {
        /* no password: the device grant (device.c), for every user name */
        if ((pamret = load_secret(args, p)) != PAM_SUCCESS ||
            (pamret = po_pam_device_login(args, what, 0, &tok)) != PAM_SUCCESS)
            goto out;
        deadline = po_mono_ms() + (uint64_t)timeout_ms;
        goto verify;
    }

    len = strlen(password);
    if (len == 0) {
        po_logf(&args->log, LOG_NOTICE,
                "authentication failure for user %s: empty password, no "
                "request sent",
                shown);
        pamret = PAM_AUTH_ERR;
        goto out;
    }
    if (len > PAM_MAX_RESP_SIZE - 1) {
        po_logf(&args->log, LOG_NOTICE,
                "authentication failure for user %s: password longer than "
                "%d bytes, no request sent",
                shown, PAM_MAX_RESP_SIZE - 1);
        pamret = PAM_AUTH_ERR;
        goto out;
    }

    /* One deadline for the rest of the login: the secret, every attempt,
     * every backoff.  The prompt above is not counted. */
    deadline = po_mono_ms() + (uint64_t)timeout_ms;
    if ((pamret = load_secret(args, p)) != PAM_SUCCESS)
        goto out;
    if (!known) {
        po_secret_clear(&password);
        pamret = decoy_request(args, shown, deadline);
        /* a local user's offline check costs as much (offline.c) */
        if (pamret == PAM_AUTHINFO_UNAVAIL)
            po_pam_offline_decoy(args);
        goto out;
    }

    memset(&g, 0, sizeof(g));
    g.grant = PO_GRANT_PASSWORD;
    g.username = idp_user;
    g.password = password;
    po_logf(&args->log, LOG_DEBUG, "%s: password grant", what);
    /* http flags 0: inside the host process libcurl is bound at once */
    rc = po_oauth_request(p, &g, deadline, 0, (int64_t)time(NULL), &args->log,
                          &tok, &oe, &err);
    /* kept only for offline login: a new verifier after a success, the
     * check when the identity provider is unavailable */
    if (!p->offline_login || (rc != PO_OK && !po_rc_unavailable(rc)))
        po_secret_clear(&password);
    if (rc == PO_INVALID_GRANT || rc == PO_INTERACTION_REQUIRED)
        po_pam_offline_forget(args, idp_user, rc, what);
    if (rc != PO_OK && po_pam_device_fallback(args, rc, &oe, what)) {
        /* more than a password is needed: the device grant, same login */
        if ((pamret = po_pam_device_login(args, what, 1, &tok)) != PAM_SUCCESS)
            goto out;
        device = 1;
        deadline = po_mono_ms() + (uint64_t)timeout_ms;
    } else if (rc != PO_OK) {
        pamret = po_pam_map_rc(args, rc, &err, what);
        pamret = po_pam_offline_fallback(args, rc, pamret, idp_user, password,
                                         what, &grants);
        if (pamret == PAM_SUCCESS)
            pamret = keep_state(args, user, local, idp_user, uid, gid, home,
                                &tok, &claims, &grants);
        goto out;
    }
verify:
    if (!po_token_text_ok(tok.access_token) ||
        (tok.refresh_token != NULL && !po_token_text_ok(tok.refresh_token))) {
        rc = po_fail(&err, PO_MALFORMED_RESPONSE,
                     "the %s token holds characters not allowed in an HTTP "
                     "header (space, control or non-ASCII); refused",
                     po_token_text_ok(tok.access_token) ? "refresh" : "access");
        pamret = po_pam_map_rc(args, rc, &err, what);
        goto out;
    }
    if (device) /* whoever approved the code: the binding decides */
        (void)snprintf(what + strlen(what), sizeof(what) - strlen(what),
                       ", device login");
    if ((pamret = verify_token(args, &tok, idp_user, deadline, what,
                               &claims)) != PAM_SUCCESS) {
        /* the user saw a code: say why the approval did not count */
        if (device && pamret == PAM_AUTH_ERR && !(args->flags & PAM_SILENT))
            (void)pam_error(args->pamh, "The login was not approved as %s.",
                            idp_user);
        goto out;
    }
    if (!known) {
        /* only the device grant gets here without an account */
        po_logf(&args->log, LOG_NOTICE,
                "%s: no local account; refused after the device login", what);
        pamret = PAM_USER_UNKNOWN;
        goto out;
    }
    if (!device && p->offline_login) /* the password alone was accepted */
        po_pam_offline_store(args, idp_user, password, &tok, claims, what);
    po_secret_clear(&password);
    if ((pamret = keep_state(args, user, local, idp_user, uid, gid, home, &tok,
                             &claims, NULL)) != PAM_SUCCESS)
        goto out;
    po_pam_handoff_put(args, po_pam_state_get(args->pamh));
    po_logf(&args->log, LOG_INFO,
            "user %s authenticated as %s (profile [%s]%s)", shown, idp_user,
            p->name, device ? ", device login" : "");

out:
    po_secret_clear(&password);
    po_token_free(&tok);
    po_offline_grants_free(&grants);
    free(claims);
    free(idp_user);
    free(local);
    free(home);
    return pamret;
}
