/*
 * main.c - oauth-token's entry point: process hygiene, the command line,
 * the configuration and profile, and the exit code.  The commands
 * themselves are in commands.c, run_curl.c and git.c.
 */
#include "helper.h"
#include "renew.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "version.h"

/* What a command accepts. */
#define CMD_PROFILE 1u /* selects a profile before running       */
#define CMD_FORMAT 2u  /* --format                               */
#define CMD_FORCE 4u   /* --force                                */
#define CMD_LOGIN 8u   /* --username, --password-stdin           */
#define CMD_ACTION 16u /* exactly one positional argument (git)  */
#define CMD_FILE 32u   /* exactly one positional argument: a file */
#define CMD_IF_DUE 64u /* --if-due                               */

typedef struct ot_command {
    const char *name;
    unsigned flags;
    po_rc (*run)(ot_ctx *c, po_err *err);
} ot_command;

static const ot_command commands[] = {
    {"get", CMD_PROFILE | CMD_FORMAT | CMD_FORCE, ot_cmd_get},
    {"header", CMD_PROFILE | CMD_FORCE, ot_cmd_header},
    {"curl-config", CMD_PROFILE | CMD_FORCE, ot_cmd_curl_config},
    {"curl", CMD_PROFILE | CMD_FORCE, ot_cmd_curl},
    {"status", CMD_PROFILE | CMD_FORMAT, ot_cmd_status},
    {"refresh", CMD_PROFILE | CMD_FORMAT | CMD_FORCE | CMD_IF_DUE,
     ot_cmd_refresh},
    {"erase", CMD_PROFILE, ot_cmd_erase},
    {"login", CMD_PROFILE | CMD_LOGIN | CMD_FORCE | CMD_FORMAT, ot_cmd_login},
    {"check-config", 0, ot_cmd_check_config},
    {"fleet-key", CMD_FILE, ot_cmd_fleet_key},
    {"profiles", CMD_FORMAT, ot_cmd_profiles},
    /* the profile is chosen from git's request unless -p is given */
    {"git", CMD_ACTION | CMD_FORCE, ot_cmd_git},
    /* likewise, from the registry's server URL */
    {"docker", CMD_ACTION | CMD_FORCE, ot_cmd_docker},
};

enum {
    O_PROFILE,
    O_CONFIG,
    O_OPTION,
    O_FORMAT,
    O_FORCE,
    O_VERBOSE,
    O_USERNAME,
    O_PASSWORD_STDIN,
    O_DEVICE,
    O_IF_DUE,
    O_HELP,
    O_VERSION
};

typedef struct ot_optdef {
    const char *name; /* long name, without "--"            */
    char letter;      /* short name, or 0                   */
    int has_value;
    int id;
} ot_optdef;

static const ot_optdef optdefs[] = {
    {"profile", 'p', 1, O_PROFILE}, {"config", 'c', 1, O_CONFIG},
    {"option", 'o', 1, O_OPTION},   {"format", 0, 1, O_FORMAT},
    {"force", 0, 0, O_FORCE},       {"verbose", 'v', 0, O_VERBOSE},
    {"username", 0, 1, O_USERNAME}, {"password-stdin", 0, 0, O_PASSWORD_STDIN},
    {"device", 0, 0, O_DEVICE},     {"help", 'h', 0, O_HELP},
    {"version", 0, 0, O_VERSION},   {"if-due", 0, 0, O_IF_DUE},
};

static const char usage_text[] =
    "Usage: oauth-token [OPTION]... [COMMAND]\n"
    "       oauth-token [OPTION]... curl [CURL ARGUMENT]...\n"
    "       git-credential-oauth-token [OPTION]... get|store|erase\n"
    "       docker-credential-oauth-token get|store|erase|list|version\n"
    "\n"
    "Print an OAuth 2.0 access token for a pam-oauth profile.  The token is\n"
    "cached per user and profile; a new one is requested only when needed.\n"
    "\n"
    "Commands:\n"
    "  get            print the access token and nothing else (default)\n"
    "  header         print \"Authorization: Bearer TOKEN\" (curl -H @-)\n"
    "  curl-config    print a curl config line (curl -K -)\n"
    "  curl ARG...    run curl with the token (through a pipe, never argv);\n"
    "                 on HTTP 401 get a new token and run it once more\n"
    "  status         show the cached token's state (never the token)\n"
    "  refresh        request a new token now; with --if-due only when\n"
    "                 the profile's policy says it is due (for a timer)\n"
    "  erase          drop the cached tokens\n"
    "  login          the password grant: --username USER, password from\n"
    "                 the terminal or with --password-stdin\n"
    "  login --device the device grant (RFC 8628): approve the login at a\n"
    "                 URL with a code shown on standard error; the token\n"
    "                 is stored and printed (the default for grant = device)\n"
    "  check-config   report every problem in the configuration files\n"
    "  fleet-key FILE create a fleet's sealing key (shared_cache_key_file):\n"
    "                 32 random bytes, mode 0600; never replaces a file\n"
    "  profiles       list the profile names (one a line; --format json)\n"
    "  git ACTION     the git credential helper (get, store, erase), also\n"
    "                 run as git-credential-oauth-token\n"
    "  docker ACTION  the docker credential helper (get, store, erase, list,\n"
    "                 version), also run as docker-credential-oauth-token\n"
    "\n"
    "Options:\n"
    "  -p, --profile NAME      profile (default $OAUTH_TOKEN_PROFILE, else\n"
    "                          \"default\"; git: chosen by the match key)\n"
    "  -c, --config PATH       read PATH instead of the default files\n"
    "                          (repeatable; default $PAM_OAUTH_CONFIG, else\n"
    "                          the system file, then the user's: see\n"
    "                          \"Configuration files\" below)\n"
    "  -o, --option KEY=VALUE  override a profile key (not a secret)\n"
    "      --format text|json  output of get, status, refresh, profiles and\n"
    "                          login --device (json: the code and URL as one\n"
    "                          JSON line on standard error, the token as "
    "JSON)\n"
    "      --format exec-credential\n"
    "                          get: a Kubernetes ExecCredential (kubectl)\n"
    "      --if-due            refresh: only when the token is due\n"
    "      --force             go past the monthly token budget\n"
    "      --username USER     login: the user name\n"
    "      --password-stdin    login: read the password from standard input\n"
    "      --device            login: the device authorization grant\n"
    "  -v, --verbose           log informational lines on standard error\n"
    "  -h, --help              show this help\n"
    "      --version           show the version\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  other error\n"
    "  2  usage or configuration error\n"
    "  3  credentials rejected (invalid_grant, invalid_client,\n"
    "     unauthorized_client, invalid_scope, invalid_request,\n"
    "     interaction_required; a device login denied or expired)\n"
    "  4  identity provider unreachable or failing (network, timeout, TLS,\n"
    "     server_error, rate limited, malformed response)\n"
    "  5  monthly token budget used up (--force goes past it)\n"
    "  6  cache or fleet lock timeout (another oauth-token is stuck)\n"
    "  Once curl has run, `oauth-token curl` exits with curl's status.\n"
    "\n"
    "Environment: OAUTH_TOKEN_PROFILE, PAM_OAUTH_CONFIG, "
    "OAUTH_TOKEN_CACHE_DIR,\n"
    "  OAUTH_TOKEN_CURL, XDG_RUNTIME_DIR, XDG_CACHE_HOME, XDG_CONFIG_HOME,\n"
    "  TMPDIR.\n";

int ot_exit_code(po_rc rc)
{
    if (po_rc_unavailable(rc))
        return OT_EXIT_UNAVAILABLE;
    switch (rc) {
    case PO_OK:
        return OT_EXIT_OK;
    case PO_USAGE:
    case PO_CONFIG:
        return OT_EXIT_USAGE;
    case PO_INVALID_GRANT:
    case PO_INVALID_CLIENT:
    case PO_UNAUTHORIZED_CLIENT:
    case PO_INVALID_SCOPE:
    case PO_INVALID_REQUEST:
    case PO_INTERACTION_REQUIRED:
    case PO_ACCESS_DENIED:
    case PO_EXPIRED_TOKEN:
    case PO_AUTHORIZATION_PENDING:
        return OT_EXIT_REJECTED;
    case PO_BUDGET:
        return OT_EXIT_BUDGET;
    case PO_LOCKED:
        return OT_EXIT_LOCKED;
    default:
        return OT_EXIT_OTHER;
    }
}

void ot_error(const ot_ctx *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c != NULL && c->log_name != NULL)
        fprintf(stderr, "%s: %s: %s\n", OT_PROG, c->log_name, msg);
    else
        fprintf(stderr, "%s: %s\n", OT_PROG, msg);
}

/* The log sink: warnings and errors always, the rest with -v. */
static void log_stderr(void *ctx, int priority, const char *msg)
{
    const ot_ctx *c = ctx;
    const char *kind = "";

    if (priority > LOG_WARNING && !c->opts.verbose)
        return;
    if (priority == LOG_WARNING)
        kind = "warning: ";
    else if (priority == LOG_DEBUG)
        kind = "debug: ";
    ot_error(c, "%s%s", kind, msg);
}

po_rc ot_write_all(int fd, const void *p, size_t n, po_err *err)
{
    const char *s = p;

    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            return po_fail(err, PO_IO, "writing %s: %s",
                           fd == STDOUT_FILENO ? "standard output" : "a pipe",
                           strerror(errno));
        s += w;
        n -= (size_t)w;
    }
    return PO_OK;
}

/* The token served is stale: say why, how long it stays valid and when it
 * is renewed. */
static void warn_stale(ot_ctx *c, const po_token *t, const po_flow_note *n)
{
    char until[40], next[40];
    int64_t left = t->expires_at - (int64_t)time(NULL);

    po_format_utc(t->expires_at, until, sizeof(until));
    po_format_utc(n->renewal.after, next, sizeof(next));
    if (n->renewal.rc == PO_BUDGET)
        po_logf(&c->log, LOG_WARNING,
                "the token is due for renewal but %s; using the cached token, "
                "valid until %s (%lld min left)",
                n->renewal.msg, until, (long long)(left > 0 ? left / 60 : 0));
    else
        po_logf(&c->log, LOG_WARNING,
                "renewing the token failed (%s: %s); using the cached token, "
                "valid until %s (%lld min left); the next renewal is tried "
                "after %s",
                po_rc_name(n->renewal.rc), n->renewal.msg, until,
                (long long)(left > 0 ? left / 60 : 0), next);
}

po_rc ot_token(ot_ctx *c, unsigned flags, po_token *out, po_err *err)
{
    po_flow_note note;
    po_rc rc;
    int done = 0;

    if (c->opts.force)
        flags |= PO_FLOW_IGNORE_BUDGET;
    if ((rc = po_flow_get(&c->flow, flags, out, &note, err)) != PO_OK)
        return rc;
    if (note.stale)
        warn_stale(c, out, &note);
    if (!po_token_text_ok(out->access_token)) {
        /* Drop it so that the next run asks again; the error is ours. */
        (void)po_flow_invalidate(&c->flow, out->access_token, &done, NULL);
        po_token_free(out);
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "the access token holds characters not allowed in "
                       "an HTTP header (space, control or non-ASCII); "
                       "refused and dropped from the cache");
    }
    return PO_OK;
}

/* ---- configuration ---- */

/* The files to read: -c, else $PAM_OAUTH_CONFIG (not when AT_SECURE), else
 * the system file then the user file.  c->paths is freed with
 * po_config_free_paths, also after a failure here. */
static po_rc find_paths(ot_ctx *c, po_err *err)
{
    const char *env = po_secure_getenv("PAM_OAUTH_CONFIG");
    const char *const *given = c->opts.configs;
    size_t i, n = c->opts.nconfigs;

    if (n == 0 && env != NULL && env[0] != '\0') {
        given = &env;
        n = 1;
    }
    if (n == 0)
        return po_config_default_paths(1, &c->paths, err);
    c->paths_explicit = 1;
    if ((c->paths = calloc(n + 1, sizeof(*c->paths))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    for (i = 0; i < n; i++)
        if ((c->paths[i] = strdup(given[i])) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

po_rc ot_load_config(ot_ctx *c, po_err *err)
{
    unsigned flags = c->paths_explicit ? 0 : PO_CFG_MISSING_OK;
    po_rc rc;
    size_t i;

    for (i = 0; c->paths[i] != NULL; i++) {
        rc = po_config_load_file(&c->cfg, c->paths[i], flags, err);
        if (rc == PO_NOT_FOUND) /* a file named with -c: a usage error */
            rc = PO_CONFIG;
        if (rc != PO_OK)
            return rc;
    }
    return PO_OK;
}

void ot_paths_text(const ot_ctx *c, char *buf, size_t n)
{
    size_t i, used = 0;

    buf[0] = '\0';
    for (i = 0; c->paths[i] != NULL && used < n; i++) {
        int w =
            snprintf(buf + used, n - used, "%s%s", i ? ", " : "", c->paths[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Apply one -o KEY=VALUE to p. */
static po_rc apply_override(po_profile *p, const char *kv, po_err *err)
{
    const char *eq = strchr(kv, '=');
    const po_option *opts;
    char key[128];
    size_t i, n;

    if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key))
        return po_fail(err, PO_USAGE, "-o '%.*s': expected KEY=VALUE",
                       eq != NULL ? (int)(eq - kv) : 64, kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    opts = po_options(&n);
    for (i = 0; i < n; i++)
        if (strcmp(opts[i].name, key) == 0 && opts[i].type == PO_OPT_SECRET)
            return po_fail(err, PO_USAGE,
                           "-o %s: a secret cannot be given on the command "
                           "line (other users can read it with ps); set "
                           "%s_file or %s_command in the profile",
                           key, key, key);
    return po_profile_set(p, key, eq + 1, "option -o", err);
}

po_rc ot_select_profile(ot_ctx *c, const char *name, po_err *err)
{
    po_profile *p = po_config_find(&c->cfg, name);
    char files[1024];
    po_rc rc;
    size_t i;

    if (p == NULL) {
        ot_paths_text(c, files, sizeof(files));
        return po_fail(err, PO_CONFIG, "no profile [%s] in %s", name,
                       files[0] != '\0' ? files : "(no configuration file)");
    }
    c->log_name = p->name;
    for (i = 0; i < c->opts.noverrides; i++)
        if ((rc = apply_override(p, c->opts.overrides[i], err)) != PO_OK)
            return rc;
    if ((rc = po_profile_validate(p, err)) != PO_OK)
        return rc;
    c->profile = p;
    memset(&c->flow, 0, sizeof(c->flow));
    c->flow.profile = p;
    c->flow.log = &c->log;
    /* our own process: libcurl may be bound lazily (the module's is not) */
    c->flow.http_flags = PO_HTTP_LAZY_BIND;
    /* a session token whose secret we cannot read: the setgid helper */
    c->flow.renew_helper = PO_RENEW_HELPER;
    return PO_OK;
}

/* ---- the command line ---- */

static const ot_optdef *find_long(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(optdefs) / sizeof(optdefs[0]); i++)
        if (strlen(optdefs[i].name) == len &&
            strncmp(optdefs[i].name, name, len) == 0)
            return &optdefs[i];
    return NULL;
}

static const ot_optdef *find_short(char letter)
{
    size_t i;

    for (i = 0; i < sizeof(optdefs) / sizeof(optdefs[0]); i++)
        if (optdefs[i].letter != 0 && optdefs[i].letter == letter)
            return &optdefs[i];
    return NULL;
}

/* Parse the option at argv[*i] (which starts with '-'), consuming its
 * value.  *action receives O_HELP or O_VERSION when seen. */
static po_rc parse_option(ot_ctx *c, int argc, char **argv, int *i, int *action,
                          po_err *err)
{
    const char *a = argv[*i], *value = NULL, *eq;
    const ot_optdef *d;
    ot_opts *o = &c->opts;

    if (a[1] == '-') {
        eq = strchr(a + 2, '=');
        d = find_long(a + 2, eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2));
        if (d == NULL)
            return po_fail(err, PO_USAGE, "unknown option '%s'", a);
        if (eq != NULL && !d->has_value)
            return po_fail(err, PO_USAGE, "option '--%s' takes no value",
                           d->name);
        if (eq != NULL)
            value = eq + 1;
    } else {
        d = find_short(a[1]);
        if (d == NULL || (!d->has_value && a[2] != '\0'))
            return po_fail(err, PO_USAGE, "unknown option '%s'", a);
        if (a[2] != '\0')
            value = a + 2;
    }
    if (d->has_value && value == NULL) {
        if (*i + 1 >= argc)
            return po_fail(err, PO_USAGE, "option '%s' needs a value", a);
        value = argv[++*i];
    }
    switch (d->id) {
    case O_PROFILE:
        o->profile = value;
        break;
    case O_CONFIG:
        o->configs[o->nconfigs++] = value;
        break;
    case O_OPTION:
        o->overrides[o->noverrides++] = value;
        break;
    case O_FORMAT:
        if (strcmp(value, "json") == 0)
            o->format = OT_FORMAT_JSON;
        else if (strcmp(value, "text") == 0)
            o->format = OT_FORMAT_TEXT;
        else if (strcmp(value, "exec-credential") == 0)
            o->format = OT_FORMAT_EXEC_CREDENTIAL;
        else
            return po_fail(err, PO_USAGE,
                           "--format '%s': expected text, json or "
                           "exec-credential",
                           value);
        o->format_set = 1;
        break;
    case O_FORCE:
        o->force = 1;
        break;
    case O_VERBOSE:
        o->verbose = 1;
        break;
    case O_USERNAME:
        o->username = value;
        break;
    case O_PASSWORD_STDIN:
        o->password_stdin = 1;
        break;
    case O_DEVICE:
        o->device = 1;
        break;
    case O_IF_DUE:
        o->if_due = 1;
        break;
    default:
        *action = d->id;
        break;
    }
    return PO_OK;
}

/* Parse argv into c->opts.  Options may come before or after the command,
 * except for curl: everything after "curl" is curl's.  Run under the git
 * or docker helper's name, the command is "git" or "docker" and the first
 * argument its action. */
static po_rc parse_args(ot_ctx *c, int argc, char **argv, const char *implied,
                        int *action, po_err *err)
{
    ot_opts *o = &c->opts;
    int i, dashdash = 0;
    po_rc rc;

    o->configs = calloc((size_t)argc, sizeof(*o->configs));
    o->overrides = calloc((size_t)argc, sizeof(*o->overrides));
    o->args = calloc((size_t)argc, sizeof(*o->args));
    o->args_owned = 1; /* main frees it, also when a calloc failed */
    if (o->configs == NULL || o->overrides == NULL || o->args == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    if (implied != NULL)
        o->command = implied;
    for (i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!dashdash && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                dashdash = 1;
                continue;
            }
            if ((rc = parse_option(c, argc, argv, &i, action, err)) != PO_OK)
                return rc;
            continue;
        }
        if (o->command == NULL) {
            o->command = a;
            if (strcmp(a, "curl") == 0) {
                /* curl's arguments are used as they are */
                free(o->args);
                o->args_owned = 0;
                o->args = argv + i + 1;
                o->nargs = argc - i - 1;
                return PO_OK;
            }
            continue;
        }
        o->args[o->nargs++] = a;
    }
    return PO_OK;
}

/* Check what the command accepts. */
static po_rc check_args(const ot_ctx *c, const ot_command *cmd, po_err *err)
{
    const ot_opts *o = &c->opts;

    if (o->format == OT_FORMAT_EXEC_CREDENTIAL && strcmp(cmd->name, "get") != 0)
        return po_fail(err, PO_USAGE,
                       "--format exec-credential is only valid with 'get'");
    if (o->format_set && !(cmd->flags & CMD_FORMAT))
        return po_fail(err, PO_USAGE, "--format is not valid with '%s'",
                       cmd->name);
    if (o->if_due && !(cmd->flags & CMD_IF_DUE))
        return po_fail(err, PO_USAGE, "--if-due is only valid with 'refresh'");
    if (o->force && !(cmd->flags & CMD_FORCE))
        return po_fail(err, PO_USAGE, "--force is not valid with '%s'",
                       cmd->name);
    if ((o->username != NULL || o->password_stdin || o->device) &&
        !(cmd->flags & CMD_LOGIN))
        return po_fail(err, PO_USAGE, "--%s is only valid with 'login'",
                       o->username != NULL ? "username"
                       : o->device         ? "device"
                                           : "password-stdin");
    if (o->device && (o->username != NULL || o->password_stdin))
        return po_fail(err, PO_USAGE,
                       "--device asks for no user name or password; drop "
                       "--%s",
                       o->username != NULL ? "username" : "password-stdin");
    if (cmd->flags & CMD_ACTION) {
        if (o->nargs == 0)
            return po_fail(err, PO_USAGE, "'%s' needs an action: %s", cmd->name,
                           strcmp(cmd->name, "docker") == 0
                               ? "get, store, erase, list or version"
                               : "get, store or erase");
        if (o->nargs > 1)
            return po_fail(err, PO_USAGE, "unexpected argument '%s'",
                           o->args[1]);
    } else if (cmd->flags & CMD_FILE) {
        if (o->nargs != 1)
            return po_fail(err, PO_USAGE, "'%s' needs exactly one file name",
                           cmd->name);
    } else if (strcmp(cmd->name, "curl") != 0 && o->nargs > 0) {
        return po_fail(err, PO_USAGE, "unexpected argument '%s'", o->args[0]);
    }
    return PO_OK;
}

/* The files this invocation would read, as find_paths chooses them (-c,
 * $PAM_OAUTH_CONFIG, else the system file and the user's). */
static void print_paths(ot_ctx *c)
{
    struct stat st;
    po_err err;
    size_t i;

    fputs("\nConfiguration files, in the order read (from ", stdout);
    if (find_paths(c, &err) != PO_OK) {
        printf("?): %s\n", err.msg);
        return;
    }
    fputs(c->opts.nconfigs > 0 ? "-c"
          : c->paths_explicit  ? "$PAM_OAUTH_CONFIG"
                               : "the built-in search list",
          stdout);
    fputs("):\n", stdout);
    for (i = 0; c->paths[i] != NULL; i++)
        printf("  %s%s\n", c->paths[i],
               stat(c->paths[i], &st) == 0 ? ""
               : c->paths_explicit         ? " (missing: an error)"
                                           : " (missing: skipped)");
}

static void print_help(ot_ctx *c)
{
    const po_option *opts;
    size_t i, n;

    fputs(usage_text, stdout);
    print_paths(c);
    fputs("\nProfile keys for -o (see pam-oauth.conf(5)):\n", stdout);
    opts = po_options(&n);
    for (i = 0; i < n; i++)
        if ((opts[i].who & PO_FOR_HELPER) && opts[i].type != PO_OPT_SECRET)
            printf("  %-22s %s\n", opts[i].name,
                   opts[i].doc != NULL ? opts[i].doc : "");
    fputs("\nSee oauth-token(1).\n", stdout);
}

/* Make sure descriptors 0, 1 and 2 are open, so that no file we open
 * becomes someone's standard output. */
static void ensure_std_fds(void)
{
    int fd;

    for (fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
            open("/dev/null", O_RDWR | O_NOCTTY) == -1)
            _exit(OT_EXIT_OTHER);
}

/* The command the program's name implies: "git" as
 * git-credential-oauth-token, "docker" as docker-credential-oauth-token. */
static const char *implied_command(const char *argv0)
{
    const char *base;

    if (argv0 == NULL)
        return NULL;
    base = strrchr(argv0, '/');
    base = base != NULL ? base + 1 : argv0;
    if (strcmp(base, OT_GIT_PROG) == 0)
        return "git";
    if (strcmp(base, OT_DOCKER_PROG) == 0)
        return "docker";
    return NULL;
}

int main(int argc, char **argv)
{
    ot_ctx c;
    po_err err;
    const ot_command *cmd = NULL;
    const char *name;
    const char *implied;
    int action = -1, status;
    size_t i;
    po_rc rc;

    /* No core dumps and no ptrace by other processes of the user while we
     * hold tokens; files we create are ours alone. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    umask(077);
    ensure_std_fds();

    memset(&c, 0, sizeof(c));
    po_err_clear(&err);
    po_config_init(&c.cfg);
    c.log.fn = log_stderr;
    c.log.ctx = &c;
    implied = implied_command(argv[0]);

    if ((rc = parse_args(&c, argc, argv, implied, &action, &err)) != PO_OK) {
        if (rc == PO_NOMEM) /* not the caller's mistake */
            goto fail;
        goto usage;
    }
    if (action == O_HELP) {
        print_help(&c);
        status = fflush(stdout) == 0 ? OT_EXIT_OK : OT_EXIT_OTHER;
        goto done;
    }
    if (action == O_VERSION) {
        printf("%s (pam-oauth) %s\n", OT_PROG, PO_VERSION);
        status = fflush(stdout) == 0 ? OT_EXIT_OK : OT_EXIT_OTHER;
        goto done;
    }
    c.log.debug = c.opts.verbose;
    if (c.opts.command == NULL)
        c.opts.command = "get";
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, c.opts.command) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        rc = po_fail(&err, PO_USAGE, "unknown command '%s'", c.opts.command);
        goto usage;
    }
    if ((rc = check_args(&c, cmd, &err)) != PO_OK)
        goto usage;

    if ((rc = find_paths(&c, &err)) != PO_OK)
        goto fail;
    if (cmd->flags & CMD_PROFILE) {
        name = c.opts.profile;
        if (name == NULL)
            name = po_secure_getenv("OAUTH_TOKEN_PROFILE");
        if (name == NULL || name[0] == '\0')
            name = "default";
        if ((rc = ot_load_config(&c, &err)) != PO_OK ||
            (rc = ot_select_profile(&c, name, &err)) != PO_OK)
            goto fail;
    }
    if ((rc = cmd->run(&c, &err)) != PO_OK)
        goto fail;
    status = c.status;
    goto done;

usage:
    ot_error(NULL, "%s", err.msg);
    fprintf(stderr, "Try '%s --help' for more information.\n", OT_PROG);
    status = OT_EXIT_USAGE;
    goto done;
fail:
    if (err.msg[0] == '\0')
        (void)po_fail(&err, rc, "%s", po_rc_name(rc));
    ot_error(&c, "%s", err.msg);
    status = ot_exit_code(rc);
done:
    po_config_free(&c.cfg);
    po_config_free_paths(c.paths);
    free(c.opts.configs);
    free(c.opts.overrides);
    if (c.opts.args_owned)
        free(c.opts.args);
    return status;
}
