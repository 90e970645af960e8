/*
 * config.c - the configuration file, its profiles, the option table and
 * the loading of client secrets.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "http.h"
#include "jwtalg.h"
#include "secret.h"
#include "util.h"

/* Enumerations are stored through an int (see store_number). */
_Static_assert(sizeof(po_grant) == sizeof(int), "po_grant is an int");
_Static_assert(sizeof(po_client_auth) == sizeof(int), "po_client_auth");
_Static_assert(sizeof(po_body_style) == sizeof(int), "po_body_style");
_Static_assert(sizeof(po_verify_mode) == sizeof(int), "po_verify_mode");
_Static_assert(sizeof(po_verify_which) == sizeof(int), "po_verify_which");
_Static_assert(sizeof(po_roles_source) == sizeof(int), "po_roles_source");

#define PARAM_PREFIX "param."
#define PARAM_NAME_MAX 128
#define SECRET_COMMAND_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

/* ------------------------------------------------------------------ */
/* The option table                                                    */

static const char *const grant_values[] = {"client_credentials", "password",
                                           "refresh_token", NULL};
static const char *const client_auth_values[] = {"basic", "post", "none", NULL};
static const char *const body_values[] = {"form", "json", "query", NULL};
static const char *const verify_values[] = {"none", "jwt", "introspect", "auto",
                                            NULL};
static const char *const verify_token_values[] = {"access", "id", NULL};
static const char *const roles_source_values[] = {"response", "token", NULL};

/* One row per key, sorted by name: name, type, field, default, who,
 * enumeration, min, max, doc.  The table and the storage size of each field
 * are generated from this one list. */
#define PO_OPTION_ROWS(X)                                                      \
    X("allow_http", PO_OPT_BOOL, allow_http, "no", PO_FOR_BOTH, NULL, 0, 1,    \
      "allow an http:// token_url to a loopback host (tests only)")            \
    X("audience", PO_OPT_STRING, audience, NULL, PO_FOR_BOTH, NULL, 0, 0,      \
      "the audience parameter of token requests (Wave, Bloom)")                \
    X("body", PO_OPT_ENUM, body, "form", PO_FOR_BOTH, body_values, 0, 0,       \
      "where the request parameters go: form, json or query")                  \
    X("budget", PO_OPT_LONG, budget, "0", PO_FOR_HELPER, NULL, 0, 1000000000L, \
      "token requests allowed per calendar month (UTC); 0 = unlimited")        \
    X("ca_file", PO_OPT_STRING, ca_file, NULL, PO_FOR_BOTH, NULL, 0, 0,        \
      "PEM file of CA certificates to trust instead of the system store")      \
    X("cache_dir", PO_OPT_STRING, cache_dir, NULL, PO_FOR_BOTH, NULL, 0, 0,    \
      "token cache directory (%u user name, %U uid, %h home directory)")       \
    X("client_auth", PO_OPT_ENUM, client_auth, "basic", PO_FOR_BOTH,           \
      client_auth_values, 0, 0,                                                \
      "client authentication: basic, post or none (public client)")            \
    X("client_id", PO_OPT_STRING, client_id, NULL, PO_FOR_BOTH, NULL, 0, 0,    \
      "the OAuth client identifier (required)")                                \
    X("client_secret", PO_OPT_SECRET, client_secret, NULL, PO_FOR_BOTH, NULL,  \
      0, 0, "the client secret itself (the file must then be mode 0600)")      \
    X("client_secret_command", PO_OPT_STRING, client_secret_command, NULL,     \
      PO_FOR_BOTH, NULL, 0, 0,                                                 \
      "a /bin/sh command whose first output line is the client secret")        \
    X("client_secret_file", PO_OPT_STRING, client_secret_file, NULL,           \
      PO_FOR_BOTH, NULL, 0, 0,                                                 \
      "a file (mode 0600) whose first line is the client secret")              \
    X("connect_timeout", PO_OPT_MILLIS, connect_timeout_ms, "5s", PO_FOR_BOTH, \
      NULL, 1, 300000L, "bound on each connection attempt")                    \
    X("default_lifetime", PO_OPT_DURATION, default_lifetime, "3600",           \
      PO_FOR_BOTH, NULL, 1, 315360000L,                                        \
      "token lifetime assumed when the server sends no expires_in")            \
    X("git_username", PO_OPT_STRING, git_username, "oauth2", PO_FOR_HELPER,    \
      NULL, 0, 0, "the username= answer given to git with the token")          \
    X("grant", PO_OPT_ENUM, grant, "client_credentials", PO_FOR_BOTH,          \
      grant_values, 0, 0,                                                      \
      "primary grant: client_credentials, password or refresh_token")          \
    X("introspection_url", PO_OPT_STRING, introspection_url, NULL, PO_FOR_PAM, \
      NULL, 0, 0, "RFC 7662 endpoint that vouches for opaque tokens (verify)") \
    X("issuer", PO_OPT_STRING, issuer, NULL, PO_FOR_PAM, NULL, 0, 0,           \
      "the token issuer (iss); its OpenID discovery finds the keys")           \
    X("jwks_cache_dir", PO_OPT_STRING, jwks_cache_dir, NULL, PO_FOR_PAM, NULL, \
      0, 0, "where the issuer's key sets are cached on disk")                  \
    X("jwks_uri", PO_OPT_STRING, jwks_uri, NULL, PO_FOR_PAM, NULL, 0, 0,       \
      "the issuer's JWK Set URL (instead of OpenID discovery)")                \
    X("jwt_algorithms", PO_OPT_STRING, jwt_algorithms,                         \
      "RS256 RS384 RS512 PS256 ES256 ES384 EdDSA", PO_FOR_PAM, NULL, 0, 0,     \
      "JWS algorithms accepted (none and HS* never are)")                      \
    X("jwt_audience", PO_OPT_STRING, jwt_audience, NULL, PO_FOR_PAM, NULL, 0,  \
      0, "the audience a verified token must name (aud)")                      \
    X("jwt_leeway", PO_OPT_DURATION, jwt_leeway, "60", PO_FOR_PAM, NULL, 0,    \
      3600L, "clock skew allowed for exp, nbf and iat")                        \
    X("jwt_typ", PO_OPT_STRING, jwt_typ, NULL, PO_FOR_PAM, NULL, 0, 0,         \
      "the JWS header typ a verified token must have (at+jwt)")                \
    X("lock_timeout", PO_OPT_MILLIS, lock_timeout_ms, "10s", PO_FOR_BOTH,      \
      NULL, 0, 600000L, "bound on waiting for the token cache lock")           \
    X("match", PO_OPT_STRING, match, NULL, PO_FOR_HELPER, NULL, 0, 0,          \
      "git: space-separated URL prefixes this profile answers for")            \
    X("minimum_uid", PO_OPT_LONG, minimum_uid, "1000", PO_FOR_PAM, NULL, 0,    \
      2147483647L, "users with a lower uid are ignored by the PAM module")     \
    X("refresh_interval", PO_OPT_DURATION, refresh_interval, "0",              \
      PO_FOR_HELPER, NULL, 0, 31536000L,                                       \
      "renew a token this long after it was obtained; 0 = off")                \
    X("refresh_margin", PO_OPT_DURATION, refresh_margin, "auto",               \
      PO_FOR_HELPER, NULL, -1, 86400L,                                         \
      "renew this long before expiry; auto = 10 % of the lifetime, 5s..300s")  \
    X("remove_on_close", PO_OPT_BOOL, remove_on_close, "no", PO_FOR_PAM, NULL, \
      0, 1, "remove the stored token when the session closes")                 \
    X("require_roles", PO_OPT_STRING, require_roles, NULL, PO_FOR_PAM, NULL,   \
      0, 0, "roles (space-separated) the token response must all list")        \
    X("require_scope", PO_OPT_STRING, require_scope, NULL, PO_FOR_PAM, NULL,   \
      0, 0, "scopes (space-separated) the granted scope must all include")     \
    X("resource", PO_OPT_STRING, resource, NULL, PO_FOR_BOTH, NULL, 0, 0,      \
      "the resource parameter of token requests (RFC 8707)")                   \
    X("retries", PO_OPT_LONG, retries, "2", PO_FOR_BOTH, NULL, 0, 10,          \
      "extra attempts after a network error, HTTP 5xx or 429")                 \
    X("roles_claim", PO_OPT_STRING, roles_claim, "Roles", PO_FOR_PAM, NULL, 0, \
      0, "the response member or JWT claim path that holds the roles")         \
    X("roles_source", PO_OPT_ENUM, roles_source, "response", PO_FOR_PAM,       \
      roles_source_values, 0, 0,                                               \
      "where roles_claim is read: response or token (verified)")               \
    X("scope", PO_OPT_STRING, scope, NULL, PO_FOR_BOTH, NULL, 0, 0,            \
      "the scope parameter of token requests")                                 \
    X("store_token", PO_OPT_BOOL, store_token, "no", PO_FOR_PAM, NULL, 0, 1,   \
      "store the token in the user's token cache at login")                    \
    X("timeout", PO_OPT_MILLIS, timeout_ms, "20s", PO_FOR_BOTH, NULL, 1,       \
      3600000L, "bound on a whole token request, retries included")            \
    X("token_url", PO_OPT_STRING, token_url, NULL, PO_FOR_BOTH, NULL, 0, 0,    \
      "the token endpoint, https:// (required)")                               \
    X("user_claim", PO_OPT_STRING, user_claim, "preferred_username",           \
      PO_FOR_PAM, NULL, 0, 0,                                                  \
      "the verified claim that must equal the IdP user name")                  \
    X("username", PO_OPT_STRING, username, NULL, PO_FOR_HELPER, NULL, 0, 0,    \
      "password grant: the user name when none is given")                      \
    X("username_format", PO_OPT_STRING, username_format, "%u", PO_FOR_PAM,     \
      NULL, 0, 0, "the OAuth user name made from the PAM user (%u)")           \
    X("verify", PO_OPT_ENUM, verify, "none", PO_FOR_PAM, verify_values, 0, 0,  \
      "token verification: none, jwt, introspect or auto")                     \
    X("verify_token", PO_OPT_ENUM, verify_token, "access", PO_FOR_PAM,         \
      verify_token_values, 0, 0,                                               \
      "which token is verified: access or id (the id_token)")

#define AS_OPTION(n, t, f, d, w, e, lo, hi, doc)                               \
    {n, t, offsetof(po_profile, f), d, w, e, lo, hi, doc},
#define AS_SIZE(n, t, f, d, w, e, lo, hi, doc) sizeof(((po_profile *)0)->f),

static const po_option options[] = {PO_OPTION_ROWS(AS_OPTION)};
static const size_t option_sizes[] = {PO_OPTION_ROWS(AS_SIZE)};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* Parameters the core sets itself, and the key to use instead. */
static const struct {
    const char *name;
    const char *instead;
} reserved_params[] = {
    {"audience", "use the audience key"},
    {"client_id", "use the client_id key"},
    {"client_secret",
     "use client_secret_file, client_secret_command or client_secret"},
    {"grant_type", "use the grant key"},
    {"password", "the password is never configured"},
    {"refresh_token", "refresh tokens come from the token cache"},
    {"resource", "use the resource key"},
    {"scope", "use the scope key"},
    {"username", "use the username key or username_format"},
};

const po_option *po_options(size_t *n)
{
    if (n != NULL)
        *n = NOPTIONS;
    return options;
}

static int cmp_option(const void *key, const void *row)
{
    return strcmp(key, ((const po_option *)row)->name);
}

/* The index of key in the table, or -1. */
static long option_index(const char *key)
{
    const po_option *o;

    o = bsearch(key, options, NOPTIONS, sizeof(options[0]), cmp_option);
    return o == NULL ? -1 : (long)(o - options);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [A-Za-z0-9_.-] */
static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           c == '_' || c == '.' || c == '-';
}

static int name_chars_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!is_name_char(s[n]))
            return 0;
    return n > 0 && n <= max;
}

static int profile_name_ok(const char *s)
{
    return s != NULL && s[0] != '.' && name_chars_ok(s, PO_PROFILE_NAME_MAX);
}

static int has_control_char(const char *s)
{
    for (; *s != '\0'; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 1;
    return 0;
}

/* Trim s in place: the returned pointer skips leading white space, and a
 * NUL replaces the trailing white space. */
static char *trim(char *s)
{
    size_t n;

    while (is_space(*s))
        s++;
    n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* "readable by others" for the usual case, a truer word otherwise. */
static const char *exposure(mode_t mode)
{
    return (mode & 044) ? "readable by others" : "open to group or others";
}

/* Collects problems for po_config_check: with fn set, report() hands each
 * message to fn, remembers the first code and lets the caller go on;
 * without fn it returns rc so that the caller stops. */
typedef struct reporter {
    po_diag_fn fn;
    void *ctx;
    po_rc first;
} reporter;

static po_rc report(reporter *r, po_rc rc, const po_err *err)
{
    if (rc == PO_OK || r == NULL || r->fn == NULL || rc == PO_NOMEM)
        return rc;
    r->fn(r->ctx, err != NULL ? err->msg : po_rc_name(rc));
    if (r->first == PO_OK)
        r->first = rc;
    return PO_OK;
}

/* po_fail(PO_CONFIG) then report(). */
static po_rc problem(reporter *r, po_err *err, const char *fmt, ...)
    PO_PRINTF(3, 4);
static po_rc problem(reporter *r, po_err *err, const char *fmt, ...)
{
    po_err local;
    po_err *e = err != NULL ? err : &local;
    va_list ap;

    e->rc = PO_CONFIG;
    e->http_status = 0;
    va_start(ap, fmt);
    (void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return report(r, PO_CONFIG, e);
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

typedef struct unit {
    const char *name;
    long mult;
} unit;

static const unit duration_units[] = {
    {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {NULL, 0}};
static const unit millis_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0}};

enum { NUM_OK, NUM_SYNTAX, NUM_OVERFLOW };

/* An optionally negative decimal number with an optional unit (units NULL:
 * none allowed).  No white space, no '+', no trailing junk. */
static int parse_number(const char *s, const unit *units, long *out)
{
    const char *q = s;
    long v = 0, mult = 1;
    int neg = 0;

    if (*q == '-') {
        neg = 1;
        q++;
    }
    if (!is_digit(*q))
        return NUM_SYNTAX;
    for (; is_digit(*q); q++) {
        int d = *q - '0';
        if (v > (LONG_MAX - d) / 10)
            return NUM_OVERFLOW;
        v = v * 10 + d;
    }
    if (*q != '\0') {
        const unit *u = units;
        for (; u != NULL && u->name != NULL; u++)
            if (strcasecmp(q, u->name) == 0)
                break;
        if (u == NULL || u->name == NULL)
            return NUM_SYNTAX;
        mult = u->mult;
    }
    if (v > LONG_MAX / mult)
        return NUM_OVERFLOW;
    *out = neg ? -(v * mult) : v * mult;
    return NUM_OK;
}

static int parse_bool(const char *s, long *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

/* "a, b, c" into buf. */
static void join_values(const char *const *v, char *buf, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (; *v != NULL && used < n; v++) {
        int k = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", *v);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* A value as shown in a message: never with control characters, which
 * could forge log lines or drive a terminal. */
static const char *shown(const char *value)
{
    return has_control_char(value) ? "(a value with control characters)"
                                   : value;
}

static const char *unit_word(po_opt_type t)
{
    return t == PO_OPT_DURATION ? " seconds" : t == PO_OPT_MILLIS ? " ms" : "";
}

/* Parse value for numeric option o (BOOL, LONG, DURATION, MILLIS, ENUM). */
static po_rc parse_numeric(const po_option *o, const char *value,
                           const char *where, long *out, po_err *err)
{
    char list[256];
    long v = 0;
    size_t i;
    int r;

    switch (o->type) {
    case PO_OPT_BOOL:
        if (!parse_bool(value, out))
            return po_fail(err, PO_CONFIG,
                           "%s: key '%s': '%.64s' is not a boolean "
                           "(use yes/no, true/false, on/off or 1/0)",
                           where, o->name, shown(value));
        return PO_OK;
    case PO_OPT_ENUM:
        for (i = 0; o->enum_values[i] != NULL; i++) {
            if (strcasecmp(value, o->enum_values[i]) == 0) {
                *out = (long)i;
                return PO_OK;
            }
        }
        join_values(o->enum_values, list, sizeof(list));
        return po_fail(err, PO_CONFIG, "%s: key '%s': '%.64s' is not one of %s",
                       where, o->name, shown(value), list);
    case PO_OPT_LONG:
    case PO_OPT_DURATION:
    case PO_OPT_MILLIS:
        break;
    case PO_OPT_STRING:
    case PO_OPT_SECRET:
    default:
        return po_fail(err, PO_USAGE, "%s: key '%s': not a numeric option",
                       where, o->name);
    }
    if (o->min == -1 && strcasecmp(value, "auto") == 0) {
        *out = -1;
        return PO_OK;
    }
    r = parse_number(value,
                     o->type == PO_OPT_DURATION ? duration_units
                     : o->type == PO_OPT_MILLIS ? millis_units
                                                : NULL,
                     &v);
    if (r == NUM_OVERFLOW)
        return po_fail(err, PO_CONFIG, "%s: key '%s': '%.64s' is too large",
                       where, o->name, shown(value));
    if (r != NUM_OK) {
        const char *what =
            o->type == PO_OPT_DURATION
                ? "is not a duration (seconds, or a number with s, m, h or "
                  "d: 90, 90s, 10m, 24h, 1d)"
            : o->type == PO_OPT_MILLIS
                ? "is not a time (milliseconds, or a number with ms, s, m "
                  "or h: 500, 500ms, 5s, 1m)"
                : "is not a decimal integer";
        return po_fail(err, PO_CONFIG, "%s: key '%s': '%.64s' %s%s", where,
                       o->name, shown(value), what,
                       o->min == -1 ? ", nor 'auto'" : "");
    }
    if (v < o->min || v > o->max) {
        if (o->min == -1)
            return po_fail(err, PO_CONFIG,
                           "%s: key '%s': '%.64s' is out of range "
                           "(auto, or 0 to %ld%s)",
                           where, o->name, shown(value), o->max,
                           unit_word(o->type));
        return po_fail(err, PO_CONFIG,
                       "%s: key '%s': '%.64s' is out of range (%ld to %ld%s)",
                       where, o->name, shown(value), o->min, o->max,
                       unit_word(o->type));
    }
    *out = v;
    return PO_OK;
}

static void store_number(po_profile *p, size_t i, long v)
{
    char *f = (char *)p + options[i].offset;

    if (option_sizes[i] == sizeof(int)) {
        int x = (int)v;
        memcpy(f, &x, sizeof(x));
    } else {
        memcpy(f, &v, sizeof(v));
    }
}

static char **string_field(po_profile *p, const po_option *o)
{
    return (char **)(void *)((char *)p + o->offset);
}

static const char *string_value(const po_profile *p, const po_option *o)
{
    const char *const *f =
        (const char *const *)(const void *)((const char *)p + o->offset);
    return *f;
}

static int is_string_type(po_opt_type t)
{
    return t == PO_OPT_STRING || t == PO_OPT_SECRET;
}

/* A string value: "" unsets; never echoed (it may be a secret, or a
 * command line holding one). */
static po_rc set_string(po_profile *p, const po_option *o, const char *value,
                        const char *where, po_err *err)
{
    size_t max =
        o->type == PO_OPT_SECRET ? PO_SECRET_MAX : PO_CONFIG_LINE_MAX - 1;

    if (strlen(value) > max)
        return po_fail(err, PO_CONFIG,
                       "%s: key '%s': the value is longer than %zu bytes",
                       where, o->name, max);
    if (has_control_char(value))
        return po_fail(err, PO_CONFIG,
                       "%s: key '%s': the value contains a control character",
                       where, o->name);
    if (po_str_replace(string_field(p, o), value[0] ? value : NULL) != PO_OK)
        return po_fail(err, PO_NOMEM, "%s: key '%s': out of memory", where,
                       o->name);
    return PO_OK;
}

static const char *reserved_param(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(reserved_params) / sizeof(reserved_params[0]); i++)
        if (strcasecmp(name, reserved_params[i].name) == 0)
            return reserved_params[i].instead;
    return NULL;
}

/* param.NAME = value: add, replace or ("" value) remove an extra request
 * parameter.  The value is not echoed: it may be an API key. */
static po_rc set_param(po_profile *p, const char *key, const char *value,
                       const char *where, po_err *err)
{
    po_rc rc = PO_OK;
    const char *name = key + strlen(PARAM_PREFIX);
    const char *instead;
    char *n = NULL, *v = NULL;
    po_param *grown;
    size_t i;

    if (!name_chars_ok(name, PARAM_NAME_MAX)) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: key '%.80s': bad parameter name (use 1 to %d of "
                     "A-Z a-z 0-9 _ . -)",
                     where, shown(key), PARAM_NAME_MAX);
        goto out;
    }
    if ((instead = reserved_param(name)) != NULL) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: key '%s': %s is a parameter pam-oauth sets itself; "
                     "%s",
                     where, key, name, instead);
        goto out;
    }
    if (strlen(value) > PO_CONFIG_LINE_MAX - 1 || has_control_char(value)) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: key '%s': the value is too long or contains a "
                     "control character",
                     where, key);
        goto out;
    }
    for (i = 0; i < p->nparams; i++)
        if (strcmp(p->params[i].name, name) == 0)
            break;
    if (value[0] == '\0') { /* remove */
        if (i == p->nparams)
            goto out;
        free(p->params[i].name);
        po_secret_free(p->params[i].value);
        memmove(&p->params[i], &p->params[i + 1],
                (p->nparams - i - 1) * sizeof(p->params[0]));
        p->nparams--;
        goto out;
    }
    if ((v = po_strdup(value)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "%s: key '%s': out of memory", where, key);
        goto out;
    }
    if (i < p->nparams) { /* replace, keeping the position */
        po_secret_free(p->params[i].value);
        p->params[i].value = v;
        v = NULL;
        goto out;
    }
    if ((n = po_strdup(name)) == NULL ||
        (grown = realloc(p->params, (p->nparams + 1) * sizeof(*grown))) ==
            NULL) {
        rc = po_fail(err, PO_NOMEM, "%s: key '%s': out of memory", where, key);
        goto out;
    }
    grown[p->nparams].name = n;
    grown[p->nparams].value = v;
    p->params = grown;
    p->nparams++;
    n = NULL;
    v = NULL;
out:
    free(n);
    po_secret_free(v);
    return rc;
}

int po_option_known(const char *key)
{
    if (key == NULL)
        return 0;
    if (strncmp(key, PARAM_PREFIX, strlen(PARAM_PREFIX)) == 0)
        return name_chars_ok(key + strlen(PARAM_PREFIX), PARAM_NAME_MAX);
    return option_index(key) >= 0;
}

po_rc po_profile_set(po_profile *p, const char *key, const char *value,
                     const char *where, po_err *err)
{
    po_rc rc = PO_OK;
    const po_option *o;
    long idx, v = 0;

    if (where == NULL)
        where = "(unknown origin)";
    if (p == NULL || key == NULL) {
        rc = po_fail(err, PO_USAGE, "%s: no profile or no key", where);
        goto out;
    }
    if (value == NULL)
        value = "";
    if (strncmp(key, PARAM_PREFIX, strlen(PARAM_PREFIX)) == 0) {
        rc = set_param(p, key, value, where, err);
        goto out;
    }
    if ((idx = option_index(key)) < 0) {
        rc = po_fail(err, PO_CONFIG, "%s: key '%.64s': unknown key", where,
                     shown(key));
        goto out;
    }
    o = &options[idx];
    if (value[0] == '\0' && o->def != NULL) /* "" restores the default */
        value = o->def;
    if (is_string_type(o->type)) {
        rc = set_string(p, o, value, where, err);
        goto out;
    }
    if ((rc = parse_numeric(o, value, where, &v, err)) != PO_OK)
        goto out;
    store_number(p, (size_t)idx, v);
out:
    return rc;
}

/* ------------------------------------------------------------------ */
/* Profiles                                                            */

po_rc po_profile_init(po_profile *p, const char *name, po_err *err)
{
    po_rc rc = PO_OK;
    size_t i;

    memset(p, 0, sizeof(*p));
    if (!profile_name_ok(name)) {
        rc = po_fail(err, PO_CONFIG,
                     "bad profile name '%.64s': use 1 to %d of A-Z a-z 0-9 _ "
                     ". - not starting with '.'",
                     name != NULL ? name : "", PO_PROFILE_NAME_MAX);
        goto out;
    }
    if ((p->name = po_strdup(name)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < NOPTIONS; i++) {
        if (options[i].def == NULL)
            continue;
        rc = po_profile_set(p, options[i].name, options[i].def, "default", err);
        if (rc != PO_OK)
            goto out;
    }
out:
    if (rc != PO_OK)
        po_profile_free(p);
    return rc;
}

void po_profile_free(po_profile *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < NOPTIONS; i++)
        if (is_string_type(options[i].type))
            po_secret_clear(string_field(p, &options[i]));
    for (i = 0; i < p->nparams; i++) {
        free(p->params[i].name);
        po_secret_free(p->params[i].value);
    }
    free(p->params);
    free(p->name);
    free(p->source);
    memset(p, 0, sizeof(*p));
}

po_rc po_profile_copy(po_profile *dst, const po_profile *src, po_err *err)
{
    po_rc rc = PO_OK;
    size_t i;

    *dst = *src;
    /* Own nothing yet, so that po_profile_free is safe at any point. */
    dst->name = NULL;
    dst->source = NULL;
    dst->params = NULL;
    dst->nparams = 0;
    for (i = 0; i < NOPTIONS; i++)
        if (is_string_type(options[i].type))
            *string_field(dst, &options[i]) = NULL;

    if ((src->name != NULL && (dst->name = strdup(src->name)) == NULL) ||
        (src->source != NULL && (dst->source = strdup(src->source)) == NULL))
        goto nomem;
    for (i = 0; i < NOPTIONS; i++) {
        const char *s;
        if (!is_string_type(options[i].type) ||
            (s = string_value(src, &options[i])) == NULL)
            continue;
        if ((*string_field(dst, &options[i]) = strdup(s)) == NULL)
            goto nomem;
    }
    if (src->nparams > 0) {
        dst->params = calloc(src->nparams, sizeof(*dst->params));
        if (dst->params == NULL)
            goto nomem;
        for (; dst->nparams < src->nparams; dst->nparams++) {
            po_param *d = &dst->params[dst->nparams];
            const po_param *s = &src->params[dst->nparams];
            d->name = strdup(s->name);
            d->value = strdup(s->value);
            if (d->name == NULL || d->value == NULL) {
                dst->nparams++; /* free this one too */
                goto nomem;
            }
        }
    }
    goto out;
nomem:
    rc = po_fail(err, PO_NOMEM, "out of memory copying profile '%s'",
                 src->name != NULL ? src->name : "");
    po_profile_free(dst);
out:
    return rc;
}

/* "profile 'NAME' (FILE:LINE)" into buf. */
static void profile_label(const po_profile *p, char *buf, size_t n)
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
static po_rc check_match(const po_profile *p, const char *label, reporter *r,
                         po_err *err)
{
    po_rc rc = PO_OK;
    const char *s = p->match;
    char entry[512], shown[256];
    size_t n, k = 0;

    while (*s != '\0') {
        const char *host;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        n = strcspn(s, " \t");
        k++;
        (void)snprintf(entry, sizeof(entry), "%.*s", (int)n, s);
        s += n;
        host = strncasecmp(entry, "https://", 8) == 0  ? entry + 8
               : strncasecmp(entry, "http://", 7) == 0 ? entry + 7
                                                       : NULL;
        if (host != NULL && *host != '\0' && *host != '/' && *host != '?' &&
            *host != '#')
            continue;
        po_http_redact_url(entry, shown, sizeof(shown));
        rc = problem(r, err,
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
                           const char *key, const char *url, reporter *r,
                           po_err *err)
{
    po_err e;

    po_err_clear(&e);
    if (url == NULL || po_http_check_url(url, p->allow_http, &e) == PO_OK)
        return PO_OK;
    return problem(r, err, "%s: key '%s': %s", label, key, e.msg);
}

/* verify, issuer, jwks_uri, introspection_url, jwt_algorithms,
 * verify_token and roles_source must make sense together. */
static po_rc check_verify(const po_profile *p, const char *label, reporter *r,
                          po_err *err)
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
        (rc = problem(r, err, "%s: key %s", label, e.msg)) != PO_OK)
        goto out;
    if ((p->verify == PO_VERIFY_JWT || p->verify == PO_VERIFY_AUTO) &&
        (p->issuer == NULL || p->issuer[0] == '\0') &&
        (rc = problem(r, err,
                      "%s: verify is %s but issuer is not set (the issuer "
                      "a token's iss must name, and where its keys are "
                      "found)",
                      label, mode)) != PO_OK)
        goto out;
    if (p->verify == PO_VERIFY_INTROSPECT &&
        (p->introspection_url == NULL || p->introspection_url[0] == '\0') &&
        (rc = problem(r, err,
                      "%s: verify is introspect but introspection_url is "
                      "not set",
                      label)) != PO_OK)
        goto out;
    if (p->verify_token == PO_VERIFY_ID_TOKEN &&
        p->verify == PO_VERIFY_INTROSPECT &&
        (rc = problem(r, err,
                      "%s: verify_token is id, which only verify jwt or "
                      "auto can check (an id_token is not introspected)",
                      label)) != PO_OK)
        goto out;
    if (p->roles_source == PO_ROLES_TOKEN && p->verify == PO_VERIFY_NONE &&
        (rc = problem(r, err,
                      "%s: roles_source is token but verify is none: roles "
                      "are only read from a verified token",
                      label)) != PO_OK)
        goto out;
    if (p->jwks_cache_dir != NULL && p->jwks_cache_dir[0] != '/' &&
        (rc = problem(r, err,
                      "%s: key 'jwks_cache_dir': must be an absolute path",
                      label)) != PO_OK)
        goto out;
out:
    return rc;
}

/* The checks of po_profile_validate; with r->fn set every problem is
 * reported, otherwise the first one is returned. */
static po_rc validate_profile(const po_profile *p, reporter *r, po_err *err)
{
    po_rc rc = PO_OK;
    char label[400], bad;
    const char *auth;
    const char *sources[3];
    size_t nsources = 0;
    int nu;
    po_err e;

    profile_label(p, label, sizeof(label));
    po_err_clear(&e);
    auth = p->client_auth == PO_CLIENT_AUTH_POST ? "post" : "basic";

    if (p->token_url == NULL) {
        if ((rc = problem(r, err, "%s: token_url is not set", label)) != PO_OK)
            goto out;
    } else if (po_http_check_url(p->token_url, p->allow_http, &e) != PO_OK) {
        if ((rc = problem(r, err, "%s: key 'token_url': %s", label, e.msg)) !=
            PO_OK)
            goto out;
    }
    if (p->client_id == NULL &&
        (rc = problem(r, err, "%s: client_id is not set", label)) != PO_OK)
        goto out;

    if (p->client_secret != NULL)
        sources[nsources++] = "client_secret";
    if (p->client_secret_file != NULL)
        sources[nsources++] = "client_secret_file";
    if (p->client_secret_command != NULL)
        sources[nsources++] = "client_secret_command";
    if (p->client_auth == PO_CLIENT_AUTH_NONE && nsources > 0) {
        rc = problem(r, err,
                     "%s: client_auth is none (a public client sends no "
                     "secret) but %s is set; remove it or use client_auth "
                     "basic or post",
                     label, sources[0]);
        if (rc != PO_OK)
            goto out;
    } else if (p->client_auth != PO_CLIENT_AUTH_NONE && nsources == 0) {
        rc = problem(r, err,
                     "%s: client_auth is %s but no client secret is "
                     "configured; set client_secret_file, "
                     "client_secret_command or client_secret (or use "
                     "client_auth none for a public client)",
                     label, auth);
        if (rc != PO_OK)
            goto out;
    } else if (nsources > 1) {
        rc = problem(r, err,
                     "%s: %s and %s are both set; keep exactly one secret "
                     "source (an empty value unsets a key)",
                     label, sources[0], sources[1]);
        if (rc != PO_OK)
            goto out;
    }
    if (p->client_secret_file != NULL && p->client_secret_file[0] != '/' &&
        (rc = problem(r, err,
                      "%s: key 'client_secret_file': must be an absolute "
                      "path",
                      label)) != PO_OK)
        goto out;

    if (p->username_format != NULL) {
        if (!check_directives(p->username_format, "u", &nu, &bad)) {
            if (bad == '\0')
                rc = problem(r, err,
                             "%s: key 'username_format': ends with a lone "
                             "'%%'",
                             label);
            else
                rc = problem(r, err,
                             "%s: key 'username_format': '%%%c' is not "
                             "allowed (only %%u for the user name and %%%% "
                             "for '%%')",
                             label, bad);
        } else if (nu != 1) {
            rc = problem(r, err,
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
                rc = problem(r, err,
                             "%s: key 'cache_dir': ends with a lone '%%'",
                             label);
            else
                rc = problem(r, err,
                             "%s: key 'cache_dir': '%%%c' is not allowed "
                             "(only %%u, %%U, %%h and %%%%)",
                             label, bad);
        } else if (p->cache_dir[0] != '/' &&
                   strncmp(p->cache_dir, "%h", 2) != 0) {
            rc = problem(r, err,
                         "%s: key 'cache_dir': must be an absolute path (or "
                         "start with %%h)",
                         label);
        }
        if (rc != PO_OK)
            goto out;
    }
    if (p->match != NULL && (rc = check_match(p, label, r, err)) != PO_OK)
        goto out;
    if ((rc = check_verify(p, label, r, err)) != PO_OK)
        goto out;
out:
    return rc;
}

po_rc po_profile_validate(const po_profile *p, po_err *err)
{
    if (p == NULL)
        return po_fail(err, PO_USAGE, "no profile to validate");
    return validate_profile(p, NULL, err);
}

/* ------------------------------------------------------------------ */
/* Configurations and files                                            */

void po_config_init(po_config *cfg)
{
    cfg->profiles = NULL;
    cfg->nprofiles = 0;
}

void po_config_free(po_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nprofiles; i++)
        po_profile_free(&cfg->profiles[i]);
    free(cfg->profiles);
    po_config_init(cfg);
}

po_profile *po_config_find(po_config *cfg, const char *name)
{
    size_t i;

    if (cfg == NULL || name == NULL)
        return NULL;
    for (i = 0; i < cfg->nprofiles; i++)
        if (strcmp(cfg->profiles[i].name, name) == 0)
            return &cfg->profiles[i];
    return NULL;
}

/* Deep copy of src into the empty dst. */
static po_rc config_copy(po_config *dst, const po_config *src, po_err *err)
{
    po_rc rc = PO_OK;

    if (src->nprofiles == 0)
        goto out;
    dst->profiles = calloc(src->nprofiles, sizeof(*dst->profiles));
    if (dst->profiles == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (; dst->nprofiles < src->nprofiles; dst->nprofiles++) {
        rc = po_profile_copy(&dst->profiles[dst->nprofiles],
                             &src->profiles[dst->nprofiles], err);
        if (rc != PO_OK)
            goto out;
    }
out:
    if (rc != PO_OK)
        po_config_free(dst);
    return rc;
}

/* Append a new profile named name, from source; *idx receives its index. */
static po_rc config_add(po_config *cfg, const char *name, const char *source,
                        size_t *idx, po_err *err)
{
    po_rc rc = PO_OK;
    po_profile p, *grown;

    if ((rc = po_profile_init(&p, name, err)) != PO_OK)
        goto out;
    if ((p.source = po_strdup(source)) == NULL ||
        (grown = realloc(cfg->profiles,
                         (cfg->nprofiles + 1) * sizeof(*grown))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory", source);
        po_profile_free(&p);
        goto out;
    }
    grown[cfg->nprofiles] = p;
    cfg->profiles = grown;
    *idx = cfg->nprofiles++;
out:
    return rc;
}

/* What a file's owner and mode must be under PO_CFG_STRICT_OWNER. */
static po_rc check_owner(const char *path, const struct stat *st,
                         unsigned flags, po_err *err)
{
    if (!(flags & PO_CFG_STRICT_OWNER))
        return PO_OK;
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return po_fail(err, PO_CONFIG,
                       "%s: owned by uid %lu, not by root or uid %lu; refused",
                       path, (unsigned long)st->st_uid,
                       (unsigned long)geteuid());
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return po_fail(err, PO_CONFIG,
                       "%s: writable by group or others (mode %04o); refused; "
                       "run chmod go-w %s",
                       path, (unsigned)(st->st_mode & 07777), path);
    return PO_OK;
}

typedef struct parser {
    const char *path;
    mode_t mode; /* of the file, for the client_secret rule      */
    po_config *cfg;
    reporter *rep; /* NULL: stop at the first problem             */
    long cur;      /* index of the current profile, -1 before any */
    int skip;      /* after a bad section header: ignore its keys */
} parser;

/* A double-quoted value, unescaped in place.  Messages never show it. */
static po_rc unquote(char *v, const char *where, const char *key, po_err *err)
{
    char *r = v + 1, *w = v;

    for (;;) {
        if (*r == '\0')
            return po_fail(err, PO_CONFIG,
                           "%s: key '%s': unterminated quoted value (no "
                           "closing '\"')",
                           where, key);
        if (*r == '"')
            break;
        if (*r == '\\') {
            r++;
            if (*r == '\0')
                continue; /* reported as unterminated */
            if (*r != '"' && *r != '\\')
                return po_fail(err, PO_CONFIG,
                               "%s: key '%s': in a quoted value a backslash "
                               "must be followed by '\"' or '\\'",
                               where, key);
        }
        *w++ = *r++;
    }
    for (r++; is_space(*r); r++)
        ;
    if (*r != '\0')
        return po_fail(err, PO_CONFIG,
                       "%s: key '%s': text after the closing quote", where,
                       key);
    *w = '\0';
    return PO_OK;
}

static po_rc parse_header(parser *ps, char *s, const char *where, po_err *err)
{
    char *close = strchr(s, ']'), *name;
    po_profile *found;
    size_t idx;

    ps->skip = 1;
    ps->cur = -1;
    if (close == NULL)
        return po_fail(err, PO_CONFIG,
                       "%s: section header without a closing ']'", where);
    if (*trim(close + 1) != '\0')
        return po_fail(err, PO_CONFIG, "%s: text after ']' in a section header",
                       where);
    *close = '\0';
    name = trim(s + 1);
    if (!profile_name_ok(name))
        return po_fail(err, PO_CONFIG,
                       "%s: bad profile name '%.64s': use 1 to %d of A-Z a-z "
                       "0-9 _ . - not starting with '.'",
                       where, name, PO_PROFILE_NAME_MAX);
    if ((found = po_config_find(ps->cfg, name)) != NULL) {
        idx = (size_t)(found - ps->cfg->profiles);
    } else {
        po_rc rc = config_add(ps->cfg, name, where, &idx, err);
        if (rc != PO_OK)
            return rc;
    }
    ps->cur = (long)idx;
    ps->skip = 0;
    return PO_OK;
}

/* One line, NUL-terminated, without its newline. */
static po_rc parse_line(parser *ps, char *line, const char *where, po_err *err)
{
    char *s = trim(line), *eq, *key, *value;
    po_rc rc;

    if (*s == '\0' || *s == '#' || *s == ';')
        return PO_OK;
    if (*s == '[')
        return parse_header(ps, s, where, err);
    if ((eq = strchr(s, '=')) == NULL)
        return po_fail(err, PO_CONFIG,
                       "%s: expected 'key = value', '[profile]' or a comment",
                       where);
    *eq = '\0';
    key = trim(s);
    value = trim(eq + 1);
    if (*key == '\0')
        return po_fail(err, PO_CONFIG, "%s: no key before '='", where);
    if (ps->skip)
        return PO_OK;
    if (ps->cur < 0)
        return po_fail(err, PO_CONFIG,
                       "%s: key '%.64s': set before any [profile] section",
                       where, shown(key));
    if (*value == '"' && (rc = unquote(value, where, key, err)) != PO_OK)
        return rc;
    if (strcmp(key, "client_secret") == 0 && *value != '\0' && (ps->mode & 077))
        return po_fail(err, PO_CONFIG,
                       "%s: client_secret is set but %s is %s (mode %04o); "
                       "run chmod 600 %s or use "
                       "client_secret_file/client_secret_command",
                       where, ps->path, exposure(ps->mode),
                       (unsigned)(ps->mode & 07777), ps->path);
    return po_profile_set(&ps->cfg->profiles[ps->cur], key, value, where, err);
}

/* Parse buf (len bytes, NUL-terminated, modified in place) into ps->cfg. */
static po_rc parse_text(parser *ps, char *buf, size_t len, po_err *err)
{
    po_rc rc = PO_OK;
    size_t pos = 0, lineno = 0, wlen = strlen(ps->path) + 32;
    char *where = NULL;

    if ((where = malloc(wlen)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory", ps->path);
        goto out;
    }
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) /* UTF-8 BOM */
        pos = 3;
    while (pos < len) {
        char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;

        pos += n + (nl != NULL);
        (void)snprintf(where, wlen, "%s:%zu", ps->path, ++lineno);
        if (n + 1 > PO_CONFIG_LINE_MAX)
            rc = po_fail(err, PO_CONFIG, "%s: line longer than %d bytes", where,
                         PO_CONFIG_LINE_MAX - 1);
        else if (memchr(line, '\0', n) != NULL)
            rc = po_fail(err, PO_CONFIG, "%s: contains a NUL byte", where);
        else {
            line[n] = '\0';
            rc = parse_line(ps, line, where, err);
        }
        if ((rc = report(ps->rep, rc, err)) != PO_OK)
            goto out;
    }
out:
    free(where);
    return rc;
}

po_rc po_config_load_file(po_config *cfg, const char *path, unsigned flags,
                          po_err *err)
{
    po_rc rc = PO_OK;
    po_config tmp;
    struct stat st;
    parser ps;
    char *buf = NULL;
    size_t len = 0;

    po_config_init(&tmp);
    if (cfg == NULL || path == NULL) {
        rc = po_fail(err, PO_USAGE, "no configuration or no path");
        goto out;
    }
    rc = po_read_file(path, PO_CONFIG_FILE_MAX, 1, &buf, &len, &st, err);
    if (rc == PO_NOT_FOUND && (flags & PO_CFG_MISSING_OK)) {
        po_err_clear(err);
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK || (rc = check_owner(path, &st, flags, err)) != PO_OK ||
        (rc = config_copy(&tmp, cfg, err)) != PO_OK)
        goto out;
    ps = (parser){path, st.st_mode, &tmp, NULL, -1, 0};
    if ((rc = parse_text(&ps, buf, len, err)) != PO_OK)
        goto out;
    po_config_free(cfg);
    *cfg = tmp;
    po_config_init(&tmp);
out:
    po_config_free(&tmp);
    if (buf != NULL) {
        po_cleanse(buf, len);
        free(buf);
    }
    return rc;
}

po_rc po_config_check(const char *path, unsigned flags, po_diag_fn diag,
                      void *ctx)
{
    po_rc rc = PO_OK;
    reporter rep = {diag, ctx, PO_OK};
    po_config cfg;
    struct stat st;
    parser ps;
    po_err err;
    char *buf = NULL;
    size_t len = 0, i;

    po_config_init(&cfg);
    po_err_clear(&err);
    if (path == NULL) {
        rc = report(&rep, po_fail(&err, PO_USAGE, "no path"), &err);
        goto out;
    }
    rc = po_read_file(path, PO_CONFIG_FILE_MAX, 1, &buf, &len, &st, &err);
    if (rc == PO_NOT_FOUND && (flags & PO_CFG_MISSING_OK)) {
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK) {
        rc = report(&rep, rc, &err);
        goto out;
    }
    if ((rc = report(&rep, check_owner(path, &st, flags, &err), &err)) != PO_OK)
        goto out;
    ps = (parser){path, st.st_mode, &cfg, &rep, -1, 0};
    if ((rc = parse_text(&ps, buf, len, &err)) != PO_OK)
        goto out;
    for (i = 0; i < cfg.nprofiles; i++)
        if ((rc = validate_profile(&cfg.profiles[i], &rep, &err)) != PO_OK)
            goto out;
out:
    if (rc == PO_NOMEM && diag != NULL)
        diag(ctx, err.msg);
    po_config_free(&cfg);
    if (buf != NULL) {
        po_cleanse(buf, len);
        free(buf);
    }
    return rc != PO_OK ? rc : rep.first;
}

/* a + b + c, malloc'd. */
static char *concat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);

    if (s != NULL)
        (void)snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

po_rc po_config_default_paths(int include_user, char ***out, po_err *err)
{
    po_rc rc = PO_OK;
    char **v = NULL, *home = NULL;
    const char *xdg;

    if (out == NULL) {
        rc = po_fail(err, PO_USAGE, "no output for the configuration paths");
        goto out;
    }
    *out = NULL;
    if ((v = calloc(3, sizeof(*v))) == NULL ||
        (v[0] = strdup(PO_SYSTEM_CONFIG)) == NULL)
        goto nomem;
    if (include_user && getauxval(AT_SECURE) == 0) {
        xdg = po_secure_getenv("XDG_CONFIG_HOME");
        if (xdg != NULL && xdg[0] == '/') { /* relative: ignored (XDG) */
            if ((v[1] = concat3(xdg, "/", PO_USER_CONFIG_REL)) == NULL)
                goto nomem;
        } else if (po_home_dir(&home, NULL) == PO_OK) {
            /* no home directory: no user file */
            if ((v[1] = concat3(home, "/.config/", PO_USER_CONFIG_REL)) == NULL)
                goto nomem;
        }
    }
    *out = v;
    v = NULL;
    goto out;
nomem:
    rc = po_fail(err, PO_NOMEM, "out of memory");
out:
    po_config_free_paths(v);
    free(home);
    return rc;
}

void po_config_free_paths(char **paths)
{
    size_t i;

    if (paths == NULL)
        return;
    for (i = 0; paths[i] != NULL; i++)
        free(paths[i]);
    free(paths);
}

/* ------------------------------------------------------------------ */
/* Client secrets                                                      */

/* The first line of s (len bytes) without CR/LF, malloc'd; what names the
 * source for messages. */
static po_rc first_line(const char *s, size_t len, const char *label,
                        const char *what, char **out, po_err *err)
{
    const char *nl = memchr(s, '\n', len);
    size_t n = nl != NULL ? (size_t)(nl - s) : len;

    *out = NULL;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (memchr(s, '\0', n) != NULL)
        return po_fail(err, PO_CONFIG, "%s: %s: the first line holds a NUL",
                       label, what);
    if (n == 0)
        return po_fail(err, PO_CONFIG, "%s: %s: the first line is empty", label,
                       what);
    if ((*out = po_strndup(s, n)) == NULL)
        return po_fail(err, PO_NOMEM, "%s: out of memory", label);
    return PO_OK;
}

static po_rc secret_from_file(const po_profile *p, const char *label,
                              char **out, po_err *err)
{
    po_rc rc = PO_OK;
    const char *path = p->client_secret_file;
    struct stat st;
    char *buf = NULL, what[PATH_MAX + 32];
    size_t len = 0;
    po_err e;

    (void)snprintf(what, sizeof(what), "client_secret_file %s", path);
    if ((rc = po_read_file(path, PO_SECRET_MAX, 1, &buf, &len, &st, &e)) !=
        PO_OK) {
        rc = po_fail(err, rc, "%s: client_secret_file: %s", label, e.msg);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: %s is owned by uid %lu, not by uid %lu or root; "
                     "refused",
                     label, what, (unsigned long)st.st_uid,
                     (unsigned long)geteuid());
        goto out;
    }
    if (st.st_mode & 077) {
        rc = po_fail(
            err, PO_CONFIG, "%s: %s is %s (mode %04o); run chmod 600 %s", label,
            what, exposure(st.st_mode), (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    rc = first_line(buf, len, label, what, out, err);
out:
    if (buf != NULL) {
        po_cleanse(buf, len);
        free(buf);
    }
    return rc;
}

/* fd moved to a number above 2 (close-on-exec), so that dup2 onto 0..2 in
 * the child always makes a fresh descriptor; -1 on failure. */
static int fd_above_stdio(int fd)
{
    int moved;

    if (fd < 0 || fd > 2)
        return fd;
    moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

/* In the child: only async-signal-safe calls from here to execve. */
__attribute__((noreturn)) static void
exec_child(int in_fd, int out_fd, char *const argv[], char *const envp[],
           const sigset_t *mask, int maxfd)
{
    static const int sigs[] = {SIGPIPE, SIGCHLD, SIGINT,  SIGQUIT,
                               SIGHUP,  SIGTERM, SIGALRM, SIGUSR1};
    struct sigaction sa;
    size_t i;
    int fd;

    (void)setpgid(0, 0); /* a group of its own: killed as a whole */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        (void)sigaction(sigs[i], &sa, NULL);
    (void)sigprocmask(SIG_SETMASK, mask, NULL);
    if (dup2(in_fd, 0) == -1 || dup2(out_fd, 1) == -1 || dup2(in_fd, 2) == -1)
        _exit(127);
#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0u, 0) == -1)
#endif
        for (fd = 3; fd < maxfd; fd++)
            (void)close(fd);
    execve("/bin/sh", argv, envp);
    _exit(127);
}

/* Wait for pid until deadline without blocking past it.  *reaped is 0 when
 * the process was reaped by someone else (SIGCHLD ignored: ECHILD). */
static po_rc wait_child(pid_t pid, uint64_t deadline, int *status, int *reaped)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        uint64_t now;

        if (r == pid) {
            *reaped = 1;
            return PO_OK;
        }
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1 && errno == ECHILD) {
            *reaped = 0;
            return PO_OK;
        }
        if (r == -1)
            return PO_IO;
        if ((now = po_mono_ms()) >= deadline)
            return PO_TIMEOUT;
        po_sleep_ms(deadline - now < 5 ? deadline - now : 5);
    }
}

/* The environment of the secret command: PATH, and HOME, USER, LANG when
 * set.  Entries are malloc'd; env has room for 4 and a NULL. */
static po_rc build_env(char *env[5], po_err *err)
{
    static const char *const pass[] = {"HOME", "USER", "LANG"};
    size_t i, n = 0;
    const char *v;

    memset(env, 0, 5 * sizeof(env[0]));
    if ((env[n++] = strdup(SECRET_COMMAND_PATH)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    for (i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        if ((v = po_secure_getenv(pass[i])) == NULL || has_control_char(v))
            continue;
        if ((env[n++] = concat3(pass[i], "=", v)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
    }
    return PO_OK;
}

static po_rc secret_from_command(const po_profile *p, const char *label,
                                 char **out, po_err *err)
{
    po_rc rc = PO_OK;
    char sh[] = "sh", dash_c[] = "-c", chunk[512];
    char *argv[] = {sh, dash_c, p->client_secret_command, NULL};
    char *env[5] = {NULL};
    int pfd[2] = {-1, -1}, devnull = -1, status = 0, reaped = 0, eof = 0;
    long limit = p->timeout_ms > 0 ? p->timeout_ms : 20000;
    uint64_t deadline = po_mono_ms() + (uint64_t)limit;
    struct rlimit rl;
    sigset_t empty;
    int maxfd = 1024;
    pid_t pid = -1;
    po_buf b;
    size_t i;

    po_buf_init(&b, PO_SECRET_MAX, 1);
    if ((rc = build_env(env, err)) != PO_OK)
        goto out;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        maxfd = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    sigemptyset(&empty);
    if (pipe2(pfd, O_CLOEXEC) == -1 ||
        (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
        (pfd[0] = fd_above_stdio(pfd[0])) == -1 ||
        (pfd[1] = fd_above_stdio(pfd[1])) == -1 ||
        (devnull = fd_above_stdio(devnull)) == -1) {
        rc = po_fail(err, PO_IO, "%s: client_secret_command: %s", label,
                     strerror(errno));
        goto out;
    }
    if ((pid = fork()) == -1) {
        rc = po_fail(err, PO_IO, "%s: client_secret_command: fork: %s", label,
                     strerror(errno));
        goto out;
    }
    if (pid == 0)
        exec_child(devnull, pfd[1], argv, env, &empty, maxfd);
    (void)setpgid(pid, pid); /* also in the parent: no race with kill */
    close(pfd[1]);
    pfd[1] = -1;

    while (!eof) {
        struct pollfd pf = {pfd[0], POLLIN, 0};
        uint64_t now = po_mono_ms();
        ssize_t n;
        int r;

        if (now >= deadline) {
            rc = PO_TIMEOUT;
            break;
        }
        r = poll(&pf, 1,
                 deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
        if (r == -1 && errno != EINTR) {
            rc = po_fail(err, PO_IO, "%s: client_secret_command: poll: %s",
                         label, strerror(errno));
            goto out;
        }
        if (r <= 0)
            continue;
        n = read(pfd[0], chunk, sizeof(chunk));
        if (n == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n == -1) {
            rc = po_fail(err, PO_IO, "%s: client_secret_command: read: %s",
                         label, strerror(errno));
            goto out;
        }
        if (n == 0) {
            eof = 1;
        } else if ((rc = po_buf_append(&b, chunk, (size_t)n)) != PO_OK) {
            rc = rc == PO_TOO_LARGE
                     ? po_fail(err, rc,
                               "%s: client_secret_command printed more than "
                               "%d bytes",
                               label, PO_SECRET_MAX)
                     : po_fail(err, rc, "%s: out of memory", label);
            goto out;
        }
    }
    if (rc == PO_OK)
        rc = wait_child(pid, deadline, &status, &reaped);
    if (rc == PO_TIMEOUT) {
        rc = po_fail(err, PO_TIMEOUT,
                     "%s: client_secret_command did not finish within %ld ms; "
                     "killed",
                     label, limit);
        goto out;
    }
    if (rc != PO_OK) {
        rc = po_fail(err, rc, "%s: client_secret_command: waitpid: %s", label,
                     strerror(errno));
        goto out;
    }
    pid = -1; /* gone: reaped here or, with SIGCHLD ignored, by the kernel */
    if (reaped && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_secret_command exited with status %d", label,
                     WEXITSTATUS(status));
        goto out;
    }
    if (reaped && WIFSIGNALED(status)) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_secret_command was killed by signal %d", label,
                     WTERMSIG(status));
        goto out;
    }
    /* Not reaped (ECHILD): the output was read to EOF, so it is whole. */
    rc = first_line(b.data != NULL ? b.data : "", b.len, label,
                    "client_secret_command output", out, err);
out:
    if (pid > 0) { /* still ours: stop the whole group, then reap */
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
            ;
    }
    po_cleanse(chunk, sizeof(chunk));
    po_buf_free(&b);
    if (pfd[0] != -1)
        close(pfd[0]);
    if (pfd[1] != -1)
        close(pfd[1]);
    if (devnull != -1)
        close(devnull);
    for (i = 0; i < 5; i++)
        free(env[i]);
    return rc;
}

po_rc po_profile_load_secret(po_profile *p, const po_log *log, po_err *err)
{
    po_rc rc = PO_OK;
    char label[400], *secret = NULL;

    if (p == NULL) {
        rc = po_fail(err, PO_USAGE, "no profile");
        goto out;
    }
    if (p->client_auth == PO_CLIENT_AUTH_NONE || p->client_secret != NULL)
        goto out;
    profile_label(p, label, sizeof(label));
    if (p->client_secret_file != NULL && p->client_secret_command != NULL) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_secret_file and client_secret_command are "
                     "both set; keep exactly one",
                     label);
        goto out;
    }
    if (p->client_secret_file != NULL) {
        po_logf(log, LOG_DEBUG, "%s: reading client_secret_file %s", label,
                p->client_secret_file);
        rc = secret_from_file(p, label, &secret, err);
    } else if (p->client_secret_command != NULL) {
        po_logf(log, LOG_DEBUG, "%s: running client_secret_command", label);
        rc = secret_from_command(p, label, &secret, err);
    } else {
        rc = po_fail(err, PO_CONFIG,
                     "%s: client_auth is %s but no client secret is "
                     "configured",
                     label,
                     p->client_auth == PO_CLIENT_AUTH_POST ? "post" : "basic");
    }
    if (rc != PO_OK)
        goto out;
    /* The secret now has one source: client_secret. */
    p->client_secret = secret;
    secret = NULL;
    po_secret_clear(&p->client_secret_file);
    po_secret_clear(&p->client_secret_command);
out:
    po_secret_free(secret);
    return rc;
}
