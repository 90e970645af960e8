/*
 * validate.c - po_profile_validate and the per-profile checks that
 * po_config_check reports.  Part of the config module (config.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_impl.h"
#include "http.h"
#include "jwtalg.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

/* Collects problems for po_config_check: with fn set, po_cfg_report() hands
 * each message to fn, remembers the first code and lets the caller go on;
 * without fn it returns rc so that the caller stops. */
po_rc po_cfg_report(po_cfg_reporter *r, po_rc rc, const po_err *err)
{
    if (rc == PO_OK || r == NULL || r->fn == NULL || rc == PO_NOMEM)
        return rc;
    r->fn(r->ctx, err != NULL ? err->msg : po_rc_name(rc));
    if (r->first == PO_OK)
        r->first = rc;
    return PO_OK;
}

/* po_fail(PO_CONFIG) then po_cfg_report(). */
po_rc po_cfg_problem(po_cfg_reporter *r, po_err *err, const char *fmt, ...)
{
    po_err local;
    po_err *e = err != NULL ? err : &local;
    va_list ap;

    e->rc = PO_CONFIG;
    e->http_status = 0;
    va_start(ap, fmt);
    (void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return po_cfg_report(r, PO_CONFIG, e);
}

/* ------------------------------------------------------------------ */
/* Profiles                                                            */

/* "profile 'NAME' (FILE:LINE)" into buf. */
void po_cfg_profile_label(const po_profile *p, char *buf, size_t n)
{
    if (p->source != NULL)
        (void)snprintf(buf, n, "profile '%s' (%s)", p->name ? p->name : "",
                       p->source);
    else
        (void)snprintf(buf, n, "profile '%s'", p->name ? p->name : "");
}

/* Check the % directives of s: each must be %% or one of allowed; *nu
 * counts %u.  Returns 0 and sets *bad to the offending character ('\0' for
 * a lone '%' at the end) when one is not allowed. */
static int check_directives(const char *s, const char *allowed, int *nu,
                            char *bad)
{
    *nu = 0;
    for (; *s != '\0'; s++) {
        if (*s != '%')
            continue;
        s++;
        if (*s == '%')
            continue;
        if (*s == '\0' || strchr(allowed, *s) == NULL) {
            *bad = *s;
            return 0;
        }
        if (*s == 'u')
            (*nu)++;
    }
    return 1;
}

/* match: a space-separated list of http(s) URLs with a host. */
static po_rc check_match(const po_profile *p, const char *label,
                         po_cfg_reporter *r, po_err *err)
{
    po_rc rc = PO_OK;
    const char *s = p->match, *w, *host;
    char entry[512], shown[256];
    size_t n, k = 0;

    while ((w = po_next_word(&s, &n)) != NULL) {
        k++;
        (void)snprintf(entry, sizeof(entry), "%.*s", (int)n, w);
        host = strncasecmp(entry, "https://", 8) == 0  ? entry + 8
               : strncasecmp(entry, "http://", 7) == 0 ? entry + 7
                                                       : NULL;
        if (host != NULL && *host != '\0' && *host != '/' && *host != '?' &&
            *host != '#')
            continue;
        po_http_redact_url(entry, shown, sizeof(shown));
        rc = po_cfg_problem(
            r, err,
            "%s: key 'match': entry %zu ('%s') is not an https:// or "
            "http:// URL with a host",
            label, k, shown);
        if (rc != PO_OK)
            goto out;
    }
out:
    return rc;
}

/* A URL key of the verification settings: https (or loopback http with
 * allow_http). */
static po_rc check_url_key(const po_profile *p, const char *label,
                           const char *key, const char *url, po_cfg_reporter *r,
                           po_err *err)
{
    po_err e;

    po_err_clear(&e);
    if (url == NULL || po_http_check_url(url, p->allow_http, &e) == PO_OK)
        return PO_OK;
    return po_cfg_problem(r, err, "%s: key '%s': %s", label, key, e.msg);
}

/* verify, issuer, jwks_uri, introspection_url, jwt_algorithms,
 * verify_token and roles_source must make sense together. */
static po_rc check_verify(const po_profile *p, const char *label,
                          po_cfg_reporter *r, po_err *err)
{
    static const char *const modes[] = {"none", "jwt", "introspect", "auto"};
    const char *mode = modes[p->verify];
    po_jwt_algset algs;
    po_rc rc = PO_OK;
    po_err e;

    po_err_clear(&e);
    if ((rc = check_url_key(p, label, "issuer", p->issuer, r, err)) != PO_OK ||
        (rc = check_url_key(p, label, "jwks_uri", p->jwks_uri, r, err)) !=
            PO_OK ||
        (rc = check_url_key(p, label, "introspection_url", p->introspection_url,
                            r, err)) != PO_OK)
        goto out;
    if (p->jwt_algorithms != NULL &&
        po_jwt_algset_parse(p->jwt_algorithms, &algs, &e) != PO_OK &&
        (rc = po_cfg_problem(r, err, "%s: key %s", label, e.msg)) != PO_OK)
        goto out;
    if ((p->verify == PO_VERIFY_JWT || p->verify == PO_VERIFY_AUTO) &&
        (p->issuer == NULL || p->issuer[0] == '\0') &&
        (rc = po_cfg_problem(
             r, err,
             "%s: verify is %s but issuer is not set (the issuer "
             "a token's iss must name, and where its keys are "
             "found)",
             label, mode)) != PO_OK)
        goto out;
    if (p->verify == PO_VERIFY_INTROSPECT &&
        (p->introspection_url == NULL || p->introspection_url[0] == '\0') &&
        (rc =
             po_cfg_problem(r, err,
                            "%s: verify is introspect but introspection_url is "
                            "not set",
                            label)) != PO_OK)
        goto out;
    if (p->verify_token == PO_VERIFY_ID_TOKEN &&
        p->verify == PO_VERIFY_INTROSPECT &&
        (rc = po_cfg_problem(r, err,
                             "%s: verify_token is id, which only verify jwt or "
                             "auto can check (an id_token is not introspected)",
                             label)) != PO_OK)
        goto out;
    if (p->roles_source == PO_ROLES_TOKEN && p->verify == PO_VERIFY_NONE &&
        (rc = po_cfg_problem(
             r, err,
             "%s: roles_source is token but verify is none: roles "
             "are only read from a verified token",
             label)) != PO_OK)
        goto out;
    if (p->jwks_cache_dir != NULL && p->jwks_cache_dir[0] != '/' &&
        (rc = po_cfg_problem(
             r, err, "%s: key 'jwks_cache_dir': must be an absolute path",
             label)) != PO_OK)
        goto out;
out:
    return rc;
}

/* Where key was set, for a message: "FILE:LINE: " (or "PAM argument
 * 'key': ", "option -o: "), or "" when it has its default. */
static void origin_prefix(const po_profile *p, const char *key, char *buf,
                          size_t n)
{
    const char *o = po_profile_origin(p, key);

    (void)snprintf(buf, n, "%s%s", o != NULL ? o : "", o != NULL ? ": " : "");
}

/* Whether p logs users in with the device grant, as its primary grant or
 * after the password grant; *key names the key that says so. */
static int uses_device(const po_profile *p, const char **key)
{
    if (p->grant == PO_GRANT_DEVICE_CODE) {
        *key = "grant";
        return 1;
    }
    if (p->password_fallback == PO_FALLBACK_DEVICE) {
        *key = "password_fallback";
        return 1;
    }
    return 0;
}

/* device_authorization_url is a URL like the others; a device login needs
 * an endpoint: that key, or an issuer whose discovery names it. */
static po_rc check_device(const po_profile *p, const char *label,
                          po_cfg_reporter *r, po_err *err)
{
    const char *key;
    char where[320];
    po_rc rc;

    if ((rc = check_url_key(p, label, "device_authorization_url",
                            p->device_authorization_url, r, err)) != PO_OK)
        return rc;
    if (!uses_device(p, &key) ||
        (p->device_authorization_url != NULL &&
         p->device_authorization_url[0] != '\0') ||
        (p->issuer != NULL && p->issuer[0] != '\0'))
        return PO_OK;
    origin_prefix(p, key, where, sizeof(where));
    return po_cfg_problem(
        r, err,
        "%skey '%s': %s: the device grant needs a device authorization "
        "endpoint; set device_authorization_url, or issuer (whose OpenID "
        "discovery document names it)",
        where, key, label);
}

/* The rules of pam_oauth for the device grant. */
static po_rc check_device_pam(const po_profile *p, const char *label,
                              po_cfg_reporter *r, po_err *err)
{
    const char *key, *vo;
    char where[320];
    po_rc rc = PO_OK;

    if (uses_device(p, &key) && p->verify == PO_VERIFY_NONE) {
        /* Whoever approves a device code gets the token: only a verified
         * token whose user_claim names the user may log that user in. */
        origin_prefix(p, key, where, sizeof(where));
        vo = po_profile_origin(p, "verify");
        rc = po_cfg_problem(
            r, err,
            "%skey '%s': %s: a device login needs verified tokens (verify = "
            "jwt, introspect or auto), but verify is none%s%s: whoever "
            "approves a device code gets the token, so pam_oauth accepts it "
            "only when its user_claim names the user who logs in",
            where, key, label, vo != NULL ? ", set at " : " (the default)",
            vo != NULL ? vo : "");
        if (rc != PO_OK)
            return rc;
    }
    if (p->password_fallback == PO_FALLBACK_DEVICE &&
        p->grant != PO_GRANT_PASSWORD) {
        origin_prefix(p, "password_fallback", where, sizeof(where));
        if ((rc = po_cfg_problem(r, err,
                                 "%skey 'password_fallback': %s: only a "
                                 "password login (grant = password) falls "
                                 "back to the device grant",
                                 where, label)) != PO_OK)
            return rc;
    }
    if (p->device_fallback_on != NULL &&
        p->password_fallback != PO_FALLBACK_DEVICE) {
        origin_prefix(p, "device_fallback_on", where, sizeof(where));
        if ((rc = po_cfg_problem(r, err,
                                 "%skey 'device_fallback_on': %s: set "
                                 "password_fallback = device too, or remove "
                                 "it",
                                 where, label)) != PO_OK)
            return rc;
    }
    return rc;
}

/* A path key of the shared store: absolute when set. */
static po_rc check_abs_path(const char *label, const char *key,
                            const char *path, po_cfg_reporter *r, po_err *err)
{
    if (path == NULL || path[0] == '/')
        return PO_OK;
    return po_cfg_problem(r, err, "%s: key '%s': must be an absolute path",
                          label, key);
}

/* shared_cache and its keys (fleet mode, store.h). */
static po_rc check_shared_cache(const po_profile *p, const char *label,
                                po_cfg_reporter *r, po_err *err)
{
    const char *s = p->shared_cache_endpoints, *q = p->shared_cache_prefix;
    const char *w;
    char entry[1024], shown[256];
    po_rc rc = PO_OK;
    size_t n, k = 0;
    po_err e;

    if (p->shared_cache == PO_SHARED_NONE)
        goto out;
    if (s == NULL &&
        (rc = po_cfg_problem(r, err,
                             "%s: shared_cache is etcd but "
                             "shared_cache_endpoints is not set (the store's "
                             "https:// URLs)",
                             label)) != PO_OK)
        goto out;
    while (s != NULL && (w = po_next_word(&s, &n)) != NULL) {
        k++;
        (void)snprintf(entry, sizeof(entry), "%.*s", (int)n, w);
        po_err_clear(&e);
        if (po_http_check_url(entry, p->allow_http, &e) != PO_OK) {
            if ((rc = po_cfg_problem(r, err,
                                     "%s: key 'shared_cache_endpoints': "
                                     "entry %zu: %s",
                                     label, k, e.msg)) != PO_OK)
                goto out;
        } else if (strchr(entry, '?') != NULL || strchr(entry, '#') != NULL) {
            po_http_redact_url(entry, shown, sizeof(shown));
            if ((rc = po_cfg_problem(r, err,
                                     "%s: key 'shared_cache_endpoints': "
                                     "entry %zu ('%s'): no query or "
                                     "fragment allowed",
                                     label, k, shown)) != PO_OK)
                goto out;
        }
    }
    if (p->shared_cache_endpoints != NULL && k == 0 &&
        (rc = po_cfg_problem(r, err,
                             "%s: key 'shared_cache_endpoints' lists no URL",
                             label)) != PO_OK)
        goto out;
    if (p->shared_cache_key_file == NULL &&
        (rc = po_cfg_problem(r, err,
                             "%s: shared_cache is etcd but "
                             "shared_cache_key_file is not set (the fleet's "
                             "sealing key; create one with 'oauth-token "
                             "fleet-key FILE')",
                             label)) != PO_OK)
        goto out;
    if ((rc = check_abs_path(label, "shared_cache_key_file",
                             p->shared_cache_key_file, r, err)) != PO_OK ||
        (rc = check_abs_path(label, "shared_cache_ca_file",
                             p->shared_cache_ca_file, r, err)) != PO_OK ||
        (rc = check_abs_path(label, "shared_cache_client_cert",
                             p->shared_cache_client_cert, r, err)) != PO_OK ||
        (rc = check_abs_path(label, "shared_cache_client_key",
                             p->shared_cache_client_key, r, err)) != PO_OK ||
        (rc = check_abs_path(label, "shared_cache_password_file",
                             p->shared_cache_password_file, r, err)) != PO_OK)
        goto out;
    if ((p->shared_cache_client_cert == NULL) !=
            (p->shared_cache_client_key == NULL) &&
        (rc = po_cfg_problem(r, err,
                             "%s: set both shared_cache_client_cert and "
                             "shared_cache_client_key, or neither",
                             label)) != PO_OK)
        goto out;
    if ((p->shared_cache_user == NULL) !=
            (p->shared_cache_password_file == NULL) &&
        (rc = po_cfg_problem(r, err,
                             "%s: set both shared_cache_user and "
                             "shared_cache_password_file, or neither",
                             label)) != PO_OK)
        goto out;
    if (q == NULL || q[0] != '/' || q[strlen(q) - 1] != '/' ||
        strlen(q) > 256 || strstr(q, "//") != NULL) {
        if ((rc = po_cfg_problem(
                 r, err,
                 "%s: key 'shared_cache_prefix': must start and end with "
                 "'/', without '//', at most 256 bytes (default /pam-oauth/)",
                 label)) != PO_OK)
            goto out;
    }
out:
    return rc;
}

/* The checks of po_profile_validate; with r->fn set every problem is
 * reported, otherwise the first one is returned. */
po_rc po_cfg_validate(const po_profile *p, po_cfg_reporter *r, po_err *err)
{
    po_rc rc = PO_OK;
    char label[400], bad;
    const char *auth;
    const char *sources[3];
    size_t nsources = 0;
    int nu;
    po_err e;

    po_cfg_profile_label(p, label, sizeof(label));
    po_err_clear(&e);
    auth = p->client_auth == PO_CLIENT_AUTH_POST ? "post" : "basic";

    if (p->token_url == NULL) {
        if ((rc = po_cfg_problem(r, err, "%s: token_url is not set", label)) !=
            PO_OK)
            goto out;
    } else if (po_http_check_url(p->token_url, p->allow_http, &e) != PO_OK) {
        if ((rc = po_cfg_problem(r, err, "%s: key 'token_url': %s", label,
                                 e.msg)) != PO_OK)
            goto out;
    }
    if (p->client_id == NULL &&
        (rc = po_cfg_problem(r, err, "%s: client_id is not set", label)) !=
            PO_OK)
        goto out;

    if (p->client_secret != NULL)
        sources[nsources++] = "client_secret";
    if (p->client_secret_file != NULL)
        sources[nsources++] = "client_secret_file";
    if (p->client_secret_command != NULL)
        sources[nsources++] = "client_secret_command";
    if (p->client_auth == PO_CLIENT_AUTH_NONE && nsources > 0) {
        rc = po_cfg_problem(
            r, err,
            "%s: client_auth is none (a public client sends no "
            "secret) but %s is set; remove it or use client_auth "
            "basic or post",
            label, sources[0]);
        if (rc != PO_OK)
            goto out;
    } else if (p->client_auth != PO_CLIENT_AUTH_NONE && nsources == 0) {
        rc = po_cfg_problem(r, err,
                            "%s: client_auth is %s but no client secret is "
                            "configured; set client_secret_file, "
                            "client_secret_command or client_secret (or use "
                            "client_auth none for a public client)",
                            label, auth);
        if (rc != PO_OK)
            goto out;
    } else if (nsources > 1) {
        rc = po_cfg_problem(
            r, err,
            "%s: %s and %s are both set; keep exactly one secret "
            "source (an empty value unsets a key)",
            label, sources[0], sources[1]);
        if (rc != PO_OK)
            goto out;
    }
    if (p->client_secret_file != NULL && p->client_secret_file[0] != '/' &&
        (rc =
             po_cfg_problem(r, err,
                            "%s: key 'client_secret_file': must be an absolute "
                            "path",
                            label)) != PO_OK)
        goto out;

    if (p->username_format != NULL) {
        if (!check_directives(p->username_format, "u", &nu, &bad)) {
            if (bad == '\0')
                rc = po_cfg_problem(
                    r, err,
                    "%s: key 'username_format': ends with a lone "
                    "'%%'",
                    label);
            else
                rc = po_cfg_problem(
                    r, err,
                    "%s: key 'username_format': '%%%c' is not "
                    "allowed (only %%u for the user name and %%%% "
                    "for '%%')",
                    label, bad);
        } else if (nu != 1) {
            rc = po_cfg_problem(
                r, err,
                "%s: key 'username_format': must contain %%u exactly "
                "once (found %d)",
                label, nu);
        }
        if (rc != PO_OK)
            goto out;
    }
    if (p->cache_dir != NULL) {
        if (!check_directives(p->cache_dir, "uUh", &nu, &bad)) {
            if (bad == '\0')
                rc = po_cfg_problem(
                    r, err, "%s: key 'cache_dir': ends with a lone '%%'",
                    label);
            else
                rc =
                    po_cfg_problem(r, err,
                                   "%s: key 'cache_dir': '%%%c' is not allowed "
                                   "(only %%u, %%U, %%h and %%%%)",
                                   label, bad);
        } else if (p->cache_dir[0] != '/' &&
                   strncmp(p->cache_dir, "%h", 2) != 0) {
            rc = po_cfg_problem(
                r, err,
                "%s: key 'cache_dir': must be an absolute path (or "
                "start with %%h)",
                label);
        }
        if (rc != PO_OK)
            goto out;
    }
    if (p->match != NULL && (rc = check_match(p, label, r, err)) != PO_OK)
        goto out;
    if ((rc = check_verify(p, label, r, err)) != PO_OK ||
        (rc = check_device(p, label, r, err)) != PO_OK)
        goto out;
    if ((rc = check_shared_cache(p, label, r, err)) != PO_OK)
        goto out;
    if (p->offline_dir != NULL && p->offline_dir[0] != '/' &&
        (rc = po_cfg_problem(r, err,
                             "%s: key 'offline_dir': must be an absolute path "
                             "(root's own directory of the offline "
                             "verifiers)",
                             label)) != PO_OK)
        goto out;
out:
    return rc;
}

/* pam_oauth's rules for offline login: it keeps a verifier of the
 * password, so it needs a login that has one. */
static po_rc check_offline_pam(const po_profile *p, const char *label,
                               po_cfg_reporter *r, po_err *err)
{
    const po_option *opts;
    const char *go, *gname = "?";
    char where[320];
    size_t i, n;

    if (!p->offline_login || p->grant == PO_GRANT_PASSWORD)
        return PO_OK;
    opts = po_options(&n);
    for (i = 0; i < n; i++)
        if (strcmp(opts[i].name, "grant") == 0 && opts[i].enum_values != NULL)
            gname = opts[i].enum_values[p->grant];
    origin_prefix(p, "offline_login", where, sizeof(where));
    go = po_profile_origin(p, "grant");
    return po_cfg_problem(
        r, err,
        "%skey 'offline_login': %s: offline login checks the password of "
        "the last password login, but grant is %s%s%s (a device login has "
        "no password); set grant = password or offline_login = no",
        where, label, gname, go != NULL ? ", set at " : " (the default)",
        go != NULL ? go : "");
}

po_rc po_cfg_validate_pam(const po_profile *p, po_cfg_reporter *r, po_err *err)
{
    char label[400];
    po_rc rc;

    if ((rc = po_cfg_validate(p, r, err)) != PO_OK)
        return rc;
    po_cfg_profile_label(p, label, sizeof(label));
    if ((rc = check_device_pam(p, label, r, err)) != PO_OK)
        return rc;
    return check_offline_pam(p, label, r, err);
}

po_rc po_profile_validate(const po_profile *p, po_err *err)
{
    if (p == NULL)
        return po_fail(err, PO_USAGE, "no profile to validate");
    return po_cfg_validate(p, NULL, err);
}

po_rc po_profile_validate_pam(const po_profile *p, po_err *err)
{
    if (p == NULL)
        return po_fail(err, PO_USAGE, "no profile to validate");
    return po_cfg_validate_pam(p, NULL, err);
}
