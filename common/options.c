/*
 * options.c - the option table and the values of keys: po_profile_set,
 * profile defaults, copies and freeing.  Part of the config module
 * (config.h); helpers shared with its other files are in config_impl.h.
 */
#define _GNU_SOURCE
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config_impl.h"
#include "secret.h"
#include "util.h"

/* Enumerations are stored through an int (see store_number). */
_Static_assert(sizeof(po_grant) == sizeof(int), "po_grant is an int");
_Static_assert(sizeof(po_client_auth) == sizeof(int), "po_client_auth");
_Static_assert(sizeof(po_body_style) == sizeof(int), "po_body_style");
_Static_assert(sizeof(po_verify_mode) == sizeof(int), "po_verify_mode");
_Static_assert(sizeof(po_verify_which) == sizeof(int), "po_verify_which");
_Static_assert(sizeof(po_roles_source) == sizeof(int), "po_roles_source");
_Static_assert(sizeof(po_password_fallback) == sizeof(int),
               "po_password_fallback");
_Static_assert(sizeof(po_shared_cache) == sizeof(int), "po_shared_cache");
_Static_assert(sizeof(po_shared_fallback) == sizeof(int), "po_shared_fallback");

#define PARAM_PREFIX "param."
#define DEFAULT_ORIGIN "default" /* the origin po_profile_init sets    */
#define PARAM_NAME_MAX 128
#define SECRET_COMMAND_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

/* ------------------------------------------------------------------ */
/* The option table                                                    */

static const char *const grant_values[] = {"client_credentials", "password",
                                           "refresh_token", "device", NULL};
static const char *const password_fallback_values[] = {"none", "device", NULL};
static const char *const client_auth_values[] = {"basic", "post", "none", NULL};
static const char *const body_values[] = {"form", "json", "query", NULL};
static const char *const verify_values[] = {"none", "jwt", "introspect", "auto",
                                            NULL};
static const char *const verify_token_values[] = {"access", "id", NULL};
static const char *const roles_source_values[] = {"response", "token", NULL};
static const char *const shared_cache_values[] = {"none", "etcd", NULL};
static const char *const fallback_values[] = {"local", "fail", NULL};

/* One row per key, sorted by name: name, type, field, default, who,
 * enumeration, min, max, doc.  The table and the storage size of each field
 * are generated from this one list. */
#define PO_OPTION_ROWS(X)                                                      \
    X("allow_http", PO_OPT_BOOL, allow_http, "no", PO_FOR_BOTH, NULL, 0, 1,    \
      "allow http:// to a loopback host (tests only): the token_url, issuer, " \
      "jwks_uri and introspection_url, and git")                               \
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
    X("device_authorization_url", PO_OPT_STRING, device_authorization_url,     \
      NULL, PO_FOR_BOTH, NULL, 0, 0,                                           \
      "RFC 8628 device authorization endpoint (default: issuer's discovery)")  \
    X("device_fallback_on", PO_OPT_STRING, device_fallback_on, NULL,           \
      PO_FOR_PAM, NULL, 0, 0,                                                  \
      "'|'-separated invalid_grant descriptions that switch to device login")  \
    X("device_prompt", PO_OPT_BOOL, device_prompt, "yes", PO_FOR_PAM, NULL, 0, \
      1, "device login: wait for Enter after approval (sshd needs it)")        \
    X("device_qr", PO_OPT_BOOL, device_qr, "no", PO_FOR_BOTH, NULL, 0, 1,      \
      "device login: also show the URL as a QR code (UTF-8 terminals)")        \
    X("device_timeout", PO_OPT_DURATION, device_timeout, "5m", PO_FOR_BOTH,    \
      NULL, 10, 3600L,                                                         \
      "bound on a whole device login (never past the code's expiry)")          \
    X("git_username", PO_OPT_STRING, git_username, "oauth2", PO_FOR_HELPER,    \
      NULL, 0, 0, "the username= answer given to git with the token")          \
    X("grant", PO_OPT_ENUM, grant, "client_credentials", PO_FOR_BOTH,          \
      grant_values, 0, 0,                                                      \
      "primary grant: client_credentials, password, refresh_token or device")  \
    X("introspection_url", PO_OPT_STRING, introspection_url, NULL, PO_FOR_PAM, \
      NULL, 0, 0, "RFC 7662 endpoint that vouches for opaque tokens (verify)") \
    X("issuer", PO_OPT_STRING, issuer, NULL, PO_FOR_BOTH, NULL, 0, 0,          \
      "the token issuer (iss); its OpenID discovery finds keys and endpoints") \
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
      "git, docker: space-separated URL prefixes this profile answers for "    \
      "(none: it answers neither)")                                            \
    X("minimum_uid", PO_OPT_LONG, minimum_uid, "1000", PO_FOR_PAM, NULL, 0,    \
      2147483647L, "users with a lower uid are ignored by the PAM module")     \
    X("offline_dir", PO_OPT_STRING, offline_dir, PO_OFFLINE_DIR_DEFAULT,       \
      PO_FOR_PAM, NULL, 0, 0,                                                  \
      "root-only directory of the offline verifiers (offline_login)")          \
    X("offline_lifetime", PO_OPT_DURATION, offline_lifetime, "7d", PO_FOR_PAM, \
      NULL, 60, 31536000L,                                                     \
      "how long after the last online login offline login works")              \
    X("offline_login", PO_OPT_BOOL, offline_login, "no", PO_FOR_PAM, NULL, 0,  \
      1, "log in with the last good password while the IdP is unavailable")    \
    X("offline_max_failures", PO_OPT_LONG, offline_max_failures, "5",          \
      PO_FOR_PAM, NULL, 1, 1000,                                               \
      "wrong offline passwords before offline login waits for an online one")  \
    X("password_fallback", PO_OPT_ENUM, password_fallback, "none", PO_FOR_PAM, \
      password_fallback_values, 0, 0,                                          \
      "when the IdP wants more than a password: none or device (login)")       \
    X("refresh_interval", PO_OPT_DURATION, refresh_interval, "0",              \
      PO_FOR_HELPER, NULL, 0, 31536000L,                                       \
      "renew a token this long after it was obtained; 0 = off")                \
    X("refresh_margin", PO_OPT_DURATION, refresh_margin, "auto",               \
      PO_FOR_HELPER, NULL, -1, 86400L,                                         \
      "renew this long before expiry; auto = 10 % of the lifetime, 5s..300s")  \
    X("registry_username", PO_OPT_STRING, registry_username,                   \
      "oauth2accesstoken", PO_FOR_HELPER, NULL, 0, 0,                          \
      "the Username given to docker and podman with the token")                \
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
    X("shared_cache", PO_OPT_ENUM, shared_cache, "none", PO_FOR_HELPER,        \
      shared_cache_values, 0, 0,                                               \
      "fleet mode: share tokens through a store: none or etcd")                \
    X("shared_cache_ca_file", PO_OPT_STRING, shared_cache_ca_file, NULL,       \
      PO_FOR_HELPER, NULL, 0, 0,                                               \
      "fleet: PEM file of the CA certificates the store's certificates have")  \
    X("shared_cache_client_cert", PO_OPT_STRING, shared_cache_client_cert,     \
      NULL, PO_FOR_HELPER, NULL, 0, 0,                                         \
      "fleet: client certificate (PEM) for mutual TLS with the store")         \
    X("shared_cache_client_key", PO_OPT_STRING, shared_cache_client_key, NULL, \
      PO_FOR_HELPER, NULL, 0, 0,                                               \
      "fleet: the client certificate's private key (PEM, mode 0600)")          \
    X("shared_cache_endpoints", PO_OPT_STRING, shared_cache_endpoints, NULL,   \
      PO_FOR_HELPER, NULL, 0, 0,                                               \
      "fleet: the store's https:// URLs, space-separated, tried in turn")      \
    X("shared_cache_fallback", PO_OPT_ENUM, shared_cache_fallback, "local",    \
      PO_FOR_HELPER, fallback_values, 0, 0,                                    \
      "fleet: when the store fails: local (warn, go on alone) or fail")        \
    X("shared_cache_key_file", PO_OPT_STRING, shared_cache_key_file, NULL,     \
      PO_FOR_HELPER, NULL, 0, 0,                                               \
      "fleet: the 32-byte key (mode 0600) that seals values in the store")     \
    X("shared_cache_password_file", PO_OPT_STRING, shared_cache_password_file, \
      NULL, PO_FOR_HELPER, NULL, 0, 0,                                         \
      "fleet: a file (mode 0600) whose first line is the store password")      \
    X("shared_cache_prefix", PO_OPT_STRING, shared_cache_prefix,               \
      "/pam-oauth/", PO_FOR_HELPER, NULL, 0, 0,                                \
      "fleet: the prefix of every key pam-oauth writes in the store")          \
    X("shared_cache_timeout", PO_OPT_MILLIS, shared_cache_timeout_ms, "5s",    \
      PO_FOR_HELPER, NULL, 1, 600000L,                                         \
      "fleet: give up on a store that does not answer after this long")        \
    X("shared_cache_user", PO_OPT_STRING, shared_cache_user, NULL,             \
      PO_FOR_HELPER, NULL, 0, 0,                                               \
      "fleet: the store's user name (with shared_cache_password_file)")        \
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
    {"device_code", "device codes come from the device authorization"},
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

int po_cfg_is_space(char c)
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

int po_cfg_profile_name_ok(const char *s)
{
    return s != NULL && s[0] != '.' && name_chars_ok(s, PO_PROFILE_NAME_MAX);
}

int po_cfg_has_control_char(const char *s)
{
    for (; *s != '\0'; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 1;
    return 0;
}

/* Trim s in place: the returned pointer skips leading white space, and a
 * NUL replaces the trailing white space. */
char *po_cfg_trim(char *s)
{
    size_t n;

    while (po_cfg_is_space(*s))
        s++;
    n = strlen(s);
    while (n > 0 && po_cfg_is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* "readable by others" for the usual case, a truer word otherwise. */
const char *po_cfg_exposure(mode_t mode)
{
    return (mode & 044) ? "readable by others" : "open to group or others";
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
const char *po_cfg_shown(const char *value)
{
    return po_cfg_has_control_char(value) ? "(a value with control characters)"
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
                           where, o->name, po_cfg_shown(value));
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
                       where, o->name, po_cfg_shown(value), list);
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
                       where, o->name, po_cfg_shown(value));
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
                       o->name, po_cfg_shown(value), what,
                       o->min == -1 ? ", nor 'auto'" : "");
    }
    if (v < o->min || v > o->max) {
        if (o->min == -1)
            return po_fail(err, PO_CONFIG,
                           "%s: key '%s': '%.64s' is out of range "
                           "(auto, or 0 to %ld%s)",
                           where, o->name, po_cfg_shown(value), o->max,
                           unit_word(o->type));
        return po_fail(err, PO_CONFIG,
                       "%s: key '%s': '%.64s' is out of range (%ld to %ld%s)",
                       where, o->name, po_cfg_shown(value), o->min, o->max,
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
    if (po_cfg_has_control_char(value))
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
                     where, po_cfg_shown(key), PARAM_NAME_MAX);
        goto out;
    }
    if ((instead = reserved_param(name)) != NULL) {
        rc = po_fail(err, PO_CONFIG,
                     "%s: key '%s': %s is a parameter pam-oauth sets itself; "
                     "%s",
                     where, key, name, instead);
        goto out;
    }
    if (strlen(value) > PO_CONFIG_LINE_MAX - 1 ||
        po_cfg_has_control_char(value)) {
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

/* Remember where key idx was set; "default" (po_profile_init) forgets. */
static po_rc set_origin(po_profile *p, size_t idx, const char *where)
{
    char *copy;

    if (strcmp(where, DEFAULT_ORIGIN) == 0) {
        if (p->origins != NULL) {
            free(p->origins[idx]);
            p->origins[idx] = NULL;
        }
        return PO_OK;
    }
    if (p->origins == NULL &&
        (p->origins = calloc(NOPTIONS, sizeof(*p->origins))) == NULL)
        return PO_NOMEM;
    if ((copy = strdup(where)) == NULL)
        return PO_NOMEM;
    free(p->origins[idx]);
    p->origins[idx] = copy;
    return PO_OK;
}

static void free_origins(po_profile *p)
{
    size_t i;

    if (p->origins == NULL)
        return;
    for (i = 0; i < NOPTIONS; i++)
        free(p->origins[i]);
    free(p->origins);
    p->origins = NULL;
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
                     po_cfg_shown(key));
        goto out;
    }
    o = &options[idx];
    if (value[0] == '\0' && o->def != NULL) /* "" restores the default */
        value = o->def;
    if (is_string_type(o->type)) {
        if ((rc = set_string(p, o, value, where, err)) != PO_OK)
            goto out;
    } else {
        if ((rc = parse_numeric(o, value, where, &v, err)) != PO_OK)
            goto out;
        store_number(p, (size_t)idx, v);
    }
    if ((rc = set_origin(p, (size_t)idx, where)) != PO_OK)
        rc = po_fail(err, rc, "%s: key '%s': out of memory", where, o->name);
out:
    return rc;
}

const char *po_profile_origin(const po_profile *p, const char *key)
{
    long idx;

    if (p == NULL || key == NULL || p->origins == NULL ||
        (idx = option_index(key)) < 0)
        return NULL;
    return p->origins[idx];
}

/* ------------------------------------------------------------------ */
/* Profiles                                                            */

po_rc po_profile_init(po_profile *p, const char *name, po_err *err)
{
    po_rc rc = PO_OK;
    size_t i;

    memset(p, 0, sizeof(*p));
    if (!po_cfg_profile_name_ok(name)) {
        rc = po_fail(err, PO_CONFIG,
                     "bad profile name '%.64s': use 1 to %d of A-Z a-z 0-9 _ "
                     ". - not starting with '.'",
                     name != NULL ? po_cfg_shown(name) : "",
                     PO_PROFILE_NAME_MAX);
        goto out;
    }
    if ((p->name = po_strdup(name)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < NOPTIONS; i++) {
        if (options[i].def == NULL)
            continue;
        rc = po_profile_set(p, options[i].name, options[i].def, DEFAULT_ORIGIN,
                            err);
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
    free_origins(p);
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
    dst->origins = NULL;
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
    if (src->origins != NULL) {
        if ((dst->origins = calloc(NOPTIONS, sizeof(*dst->origins))) == NULL)
            goto nomem;
        for (i = 0; i < NOPTIONS; i++)
            if (src->origins[i] != NULL &&
                (dst->origins[i] = strdup(src->origins[i])) == NULL)
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
