/*
 * config.h - the configuration file and its profiles, shared by the PAM
 * module and the helper.
 *
 * Format (INI style, documented in pam-oauth.conf(5)):
 *
 *     # comment            ; comment
 *     [profile-name]
 *     key = value
 *     key = "value with \"quotes\" and  leading spaces"
 *     param.NAME = value   # an extra request parameter
 *
 * Profile names match [A-Za-z0-9_.-]{1,64} and do not start with '.'.
 * Files are read in order; a section seen again (in the same or a later
 * file) merges into the profile, a key seen again overrides it.  Every
 * error names file:line and the key.
 *
 * Every key is a row of one option table (po_options()), which both
 * frontends, --help and the man page mirror.  Overrides from PAM arguments
 * and command-line flags go through po_profile_set() like file lines.
 */
#ifndef PO_CONFIG_H
#define PO_CONFIG_H

#include <stddef.h>
#include <sys/types.h>
#include "err.h"

#ifndef PO_SYSCONFDIR
#define PO_SYSCONFDIR "/etc"
#endif
/* The system file; the user file is $XDG_CONFIG_HOME/pam-oauth/pam-oauth.conf
 * (default ~/.config/pam-oauth/pam-oauth.conf). */
#define PO_SYSTEM_CONFIG PO_SYSCONFDIR "/pam-oauth/pam-oauth.conf"
#define PO_USER_CONFIG_REL "pam-oauth/pam-oauth.conf"
/* Where pam_oauth keeps the offline verifiers (key offline_dir). */
#define PO_OFFLINE_DIR_DEFAULT "/var/lib/pam-oauth/offline"

#define PO_PROFILE_NAME_MAX 64
#define PO_CONFIG_FILE_MAX (256 * 1024) /* bytes                         */
#define PO_CONFIG_LINE_MAX 4096         /* bytes, including the newline  */
#define PO_SECRET_MAX 4096              /* a client secret, in bytes     */

typedef enum po_grant {
    PO_GRANT_CLIENT_CREDENTIALS = 0,
    PO_GRANT_PASSWORD,
    PO_GRANT_REFRESH_TOKEN,
    PO_GRANT_DEVICE_CODE /* RFC 8628: "device" in the file; device.h */
} po_grant;

/* What pam_oauth does when the password grant is refused because the
 * identity provider wants more than a password (key password_fallback). */
typedef enum po_password_fallback {
    PO_FALLBACK_NONE = 0,
    PO_FALLBACK_DEVICE /* continue with the device grant */
} po_password_fallback;

typedef enum po_client_auth {
    PO_CLIENT_AUTH_BASIC = 0, /* client_secret_basic, RFC 6749 2.3.1 */
    PO_CLIENT_AUTH_POST,      /* client_secret_post: in the parameters */
    PO_CLIENT_AUTH_NONE       /* public client: client_id only        */
} po_client_auth;

typedef enum po_body_style {
    PO_BODY_FORM = 0, /* application/x-www-form-urlencoded body      */
    PO_BODY_JSON,     /* application/json body (Froomle)             */
    PO_BODY_QUERY     /* parameters in the query string of a POST     */
} po_body_style;

/* How tokens are verified (key verify; verify.h). */
typedef enum po_verify_mode {
    PO_VERIFY_NONE = 0,   /* not verified: TLS to token_url is all      */
    PO_VERIFY_JWT,        /* a JWS checked with the issuer's keys       */
    PO_VERIFY_INTROSPECT, /* RFC 7662 introspection                     */
    PO_VERIFY_AUTO        /* jwt when it looks like one, else
                             introspect when configured, else refused   */
} po_verify_mode;

/* Which token of a response is verified (key verify_token). */
typedef enum po_verify_which {
    PO_VERIFY_ACCESS_TOKEN = 0,
    PO_VERIFY_ID_TOKEN
} po_verify_which;

/* Where require_roles reads the roles (key roles_source). */
typedef enum po_roles_source {
    PO_ROLES_RESPONSE = 0, /* a member of the token response            */
    PO_ROLES_TOKEN         /* a claim of the verified token             */
} po_roles_source;

/* Fleet mode: the shared store (key shared_cache; store.h). */
typedef enum po_shared_cache {
    PO_SHARED_NONE = 0, /* each host keeps its own cache               */
    PO_SHARED_ETCD      /* an etcd v3 cluster (its JSON gateway)       */
} po_shared_cache;

/* When the shared store fails (key shared_cache_fallback). */
typedef enum po_shared_fallback {
    PO_FALLBACK_LOCAL = 0, /* warn, carry on with the local cache alone */
    PO_FALLBACK_FAIL       /* fail the call                             */
} po_shared_fallback;

/* An extra request parameter, from "param.NAME = value". */
typedef struct po_param {
    char *name;
    char *value;
} po_param;

/* One profile.  Strings are malloc'd or NULL when unset.  Durations and
 * times are in seconds, timeouts in milliseconds. */
typedef struct po_profile {
    char *name;
    char *source; /* "file:line" of the section header     */

    /* the token endpoint */
    char *token_url; /* https://... (required)                 */
    int allow_http;  /* bool: http:// allowed for loopback     */
    po_grant grant;  /* primary grant                          */
    char *client_id;
    char *client_secret; /* secret; set inline or by po_profile_load_secret */
    char *client_secret_file;
    char *client_secret_command;
    po_client_auth client_auth;
    po_body_style body;
    char *audience;
    char *scope;
    char *resource;
    po_param *params; /* extra parameters, in file order        */
    size_t nparams;
    char *username; /* password grant: default user (helper)  */

    /* lifetimes and policy */
    long default_lifetime; /* s, when expires_in is absent; 3600     */
    long refresh_margin;   /* s before expiry; -1 = auto (10 % of
                              the lifetime, within 5 s .. 300 s)      */
    long refresh_interval; /* s; 0 = off (Froomle: 600)              */
    long budget;           /* token requests per calendar month (UTC);
                              0 = unlimited (Wave: 1000)              */

    /* HTTP */
    char *ca_file;
    long connect_timeout_ms; /* default 5000                           */
    long timeout_ms;         /* whole operation, retries included;
                                default 20000                           */
    int retries;             /* extra attempts; default 2              */

    /* cache and helper */
    char *cache_dir;         /* overrides the default location         */
    long lock_timeout_ms;    /* bound on waiting for the lock; 10000   */
    char *match;             /* git: "https://host/path-prefix" list    */
    char *git_username;      /* old git: username= answer; "oauth2"    */
    char *registry_username; /* docker: the Username answer;
                                "oauth2accesstoken"                    */

    /* PAM */
    long minimum_uid;             /* default 1000                           */
    char *username_format;        /* e.g. "%u@example.com"; default "%u"    */
    int store_token;              /* bool: hand the token to the session    */
    int remove_on_close;          /* bool: remove it at close_session       */
    char *require_scope;          /* space-separated list                   */
    char *require_roles;          /* space-separated list                   */
    char *roles_claim;            /* response field or JWT claim path;
                                     default "Roles"                         */
    po_roles_source roles_source; /* response | token; default response */
    char *user_claim;             /* the claim naming the user; default
                                     "preferred_username"                    */

    /* token verification (verify.h) */
    po_verify_mode verify;        /* default none                           */
    po_verify_which verify_token; /* access | id; default access        */
    char *issuer;                 /* iss; OpenID discovery without jwks_uri */
    char *jwks_uri;
    char *jwks_cache_dir;    /* where key sets are cached on disk      */
    char *jwt_algorithms;    /* allowed algorithms                     */
    char *jwt_audience;      /* aud required; default the audience key
                                (access token) or the client_id         */
    long jwt_leeway;         /* s of clock skew; default 60            */
    char *jwt_typ;           /* header typ required, or NULL           */
    char *introspection_url; /* RFC 7662 endpoint                      */

    /* the device authorization grant (device.h) */
    char *device_authorization_url; /* or the issuer's discovery      */
    long device_timeout;            /* s, the whole device login; 300  */
    int device_qr;                  /* bool: show a QR code            */
    int device_prompt;              /* bool (PAM): wait for Enter      */
    po_password_fallback password_fallback; /* PAM; default none     */
    char *device_fallback_on;               /* PAM: '|'-separated invalid_grant
                                               descriptions that switch to device   */

    /* fleet mode: the shared store (store.h, etcd.h) */
    po_shared_cache shared_cache;     /* default none                    */
    char *shared_cache_endpoints;     /* space-separated https:// URLs   */
    char *shared_cache_ca_file;       /* CA of the store's certificates  */
    char *shared_cache_client_cert;   /* mutual TLS: certificate (PEM)   */
    char *shared_cache_client_key;    /* ... and its key (PEM, 0600)     */
    char *shared_cache_user;          /* the store's user name           */
    char *shared_cache_password_file; /* ... its password (0600 file)    */
    char *shared_cache_prefix;        /* key prefix; "/pam-oauth/"       */
    char *shared_cache_key_file;      /* the fleet's sealing key (0600)  */
    po_shared_fallback shared_cache_fallback; /* default local           */
    long shared_cache_timeout_ms; /* bound on each store call; 5000  */

    /* offline login (offline.h; pam_oauth only) */
    int offline_login;         /* bool: keep a verifier of the password  */
    long offline_lifetime;     /* s after the last online login; 7 days  */
    long offline_max_failures; /* wrong offline passwords before offline
                                  login is refused until an online one  */
    char *offline_dir;         /* root-only directory of the verifiers   */
    /* where each key was set ("file:line", "PAM argument ..."), indexed
     * like po_options(); NULL entries (or a NULL array) for defaults.
     * Read with po_profile_origin(). */
    char **origins;
} po_profile;

/* A set of profiles read from one or more files. */
typedef struct po_config {
    po_profile *profiles;
    size_t nprofiles;
} po_config;

/* Who reads a key: shown in --help and the man page. */
#define PO_FOR_PAM 1u
#define PO_FOR_HELPER 2u
#define PO_FOR_BOTH (PO_FOR_PAM | PO_FOR_HELPER)

typedef enum po_opt_type {
    PO_OPT_STRING,
    PO_OPT_SECRET,   /* like STRING, cleansed, file permission checked */
    PO_OPT_BOOL,     /* yes/no, true/false, on/off, 1/0                */
    PO_OPT_LONG,     /* decimal integer, range-checked                 */
    PO_OPT_DURATION, /* seconds: 90, 90s, 10m, 24h, 1d                 */
    PO_OPT_MILLIS,   /* milliseconds: 500ms, 5s, 1m, or a plain number
                        of milliseconds                                */
    PO_OPT_ENUM      /* one of enum_values, stored as its index        */
} po_opt_type;

typedef struct po_option {
    const char *name;
    po_opt_type type;
    size_t offset;                  /* into po_profile                */
    const char *def;                /* default as text, NULL = unset  */
    unsigned who;                   /* PO_FOR_*                       */
    const char *const *enum_values; /* PO_OPT_ENUM, NULL-terminated   */
    long min, max;                  /* LONG/DURATION/MILLIS bounds    */
    const char *doc;                /* one line                       */
} po_option;

/* The option table, sorted by name; *n receives its length.  Keys of the
 * form "param.NAME" are not rows: they add extra request parameters. */
const po_option *po_options(size_t *n);

/* Diagnostics for po_config_check(): one call per problem. */
typedef void (*po_diag_fn)(void *ctx, const char *msg);

/* Load flags. */
#define PO_CFG_MISSING_OK 1u /* a file that does not exist is skipped  */
#define PO_CFG_STRICT_OWNER                                                    \
    2u /* refuse a file not owned by root or by                                \
          the effective uid, or writable by group                              \
          or others, or in a directory (up to /)                               \
          that is (po_check_dir_chain, sshd's                                  \
          StrictModes); used by the PAM module   */
#define PO_CFG_PAM_RULES                                                       \
    4u /* po_config_check: check each profile as                               \
          pam_oauth does (po_profile_validate_pam) */

/* Initialise an empty configuration. */
void po_config_init(po_config *cfg);

/* Read one file into cfg.  Refuses symlinks, non-regular files and files
 * over PO_CONFIG_FILE_MAX.  A file that sets client_secret and is readable
 * by group or others is refused (PO_CONFIG, message says why and how to
 * fix).  On error cfg keeps what it had before this file. */
po_rc po_config_load_file(po_config *cfg, const char *path, unsigned flags,
                          po_err *err);

/* Parse len bytes of configuration text (need not be NUL-terminated) into
 * cfg, as po_config_load_file does with a file's contents: name stands for
 * the file in messages (name:line) and mode is the file's st_mode, for the
 * client_secret rule.  Text over PO_CONFIG_FILE_MAX is PO_TOO_LARGE.  On
 * error cfg keeps what it had before.  No file system access. */
po_rc po_config_load_buffer(po_config *cfg, const char *name, mode_t mode,
                            const char *text, size_t len, po_err *err);

/* Check a file: like po_config_load_file followed by po_profile_validate on
 * each profile, but reports every problem through diag instead of stopping
 * at the first.  Returns PO_OK only when there is none. */
po_rc po_config_check(const char *path, unsigned flags, po_diag_fn diag,
                      void *ctx);

/* po_config_check on len bytes of text standing for the file name of mode
 * mode (see po_config_load_buffer); of flags only PO_CFG_PAM_RULES counts
 * (the others are about the file).  No file system access. */
po_rc po_config_check_buffer(const char *name, mode_t mode, unsigned flags,
                             const char *text, size_t len, po_diag_fn diag,
                             void *ctx);

/* The default search list, malloc'd, NULL-terminated: the system file,
 * then the user file (omitted when AT_SECURE or include_user is 0).  Free
 * with po_config_free_paths. */
po_rc po_config_default_paths(int include_user, char ***out, po_err *err);
void po_config_free_paths(char **paths);

/* The profile named name, or NULL. */
po_profile *po_config_find(po_config *cfg, const char *name);

/* Free everything in cfg, cleansing secrets; cfg is left empty. */
void po_config_free(po_config *cfg);

/* Fill p with the table's defaults and the given name (validated). */
po_rc po_profile_init(po_profile *p, const char *name, po_err *err);

/* Deep copy src into dst (dst uninitialised). */
po_rc po_profile_copy(po_profile *dst, const po_profile *src, po_err *err);

/* Free a profile's contents, cleansing secrets. */
void po_profile_free(po_profile *p);

/* Set key to value.  where names the origin for messages ("file:line",
 * "PAM argument 'timeout=x'", "option -o").  Unknown keys, bad values and
 * out-of-range numbers are PO_CONFIG with a message naming where and key.
 * A secret value never appears in a message. */
po_rc po_profile_set(po_profile *p, const char *key, const char *value,
                     const char *where, po_err *err);

/* Where key was last set in p ("file:line", "PAM argument 'k=v'", "option
 * -o"), or NULL when it has its default value or is unknown. */
const char *po_profile_origin(const po_profile *p, const char *key);

/* Is key a known option (or param.NAME)? */
int po_option_known(const char *key);

/* Check that p can make requests: token_url present and allowed (https,
 * or http to a loopback host with allow_http), client_id present, a secret
 * source when client_auth is not none, no two secret sources, and so on.
 * Messages name the profile and its source. */
po_rc po_profile_validate(const po_profile *p, po_err *err);

/* po_profile_validate accepts a profile with client_auth basic or post
 * and no secret source: it can serve a session token pam_oauth stored
 * (renewed by the session-refresh helper, renew.h) and makes no request
 * of its own (po_profile_load_secret then says what is missing). */

/* po_profile_validate plus the rules of pam_oauth, which logs users in
 * (a confidential client's secret source is required there):
 * the device grant (grant = device, or password_fallback = device) only
 * with verify = jwt, introspect or auto, because whoever approves a device
 * code gets the token; device_fallback_on only with password_fallback =
 * device.  The messages name the file:line where the key was set. */
po_rc po_profile_validate_pam(const po_profile *p, po_err *err);

/* The identity provider's name for the local user name `user` under
 * username_format fmt (NULL or "" means "%u"): %u is user, %% a '%'.
 * PO_CONFIG when fmt has another conversion or no %u; PO_USAGE when user
 * contains a separator ('@', '\\' or '/') that fmt itself uses, so the
 * name could stand for a different IdP user (err names the character);
 * PO_TOO_LARGE past 4096 bytes; PO_NOMEM.  *out is malloc'd on PO_OK, NULL
 * otherwise.  The one mapping rule of pam_oauth and session-refresh. */
po_rc po_profile_map_user(const char *fmt, const char *user, char **out,
                          po_err *err);

/* Resolve the client secret when it comes from client_secret_file (the
 * file's first line; the file must not be readable by group or others) or
 * client_secret_command (its first stdout line; run with /bin/sh -c,
 * stdin from /dev/null, a minimal environment, bounded in time and size).
 * Does nothing when client_secret is set or client_auth is none.  Call it
 * only when a request is about to be made.  On success client_secret holds
 * the secret and client_secret_file/client_secret_command are cleared, so
 * the profile still passes po_profile_validate and a second call does
 * nothing. */
po_rc po_profile_load_secret(po_profile *p, const po_log *log, po_err *err);

/* The first line of the secret file at path (without CR/LF; not empty, no
 * NUL), malloc'd into *out (free with po_secret_free).  The file must be a
 * regular file (not a symbolic link), owned by the effective uid or root,
 * not open to group or others, except root:pam-oauth 0640 (PO_RENEW_GROUP,
 * renew.h: the group of the session-refresh helper).  key and label name it in
 * messages
 * ("LABEL: KEY PATH is readable by others ..."). */
po_rc po_secret_file_line(const char *path, const char *key, const char *label,
                          char **out, po_err *err);

#endif
