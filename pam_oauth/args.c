/*
 * args.c - module arguments, the configuration of one PAM call and the log
 * sink.
 *
 * The arguments of the PAM line are a small sorted table of the module's
 * own switches (config, debug, fail_delay, profile, try_first_pass,
 * use_first_pass) plus KEY=VALUE for any key of the configuration file's
 * option table, which overrides the profile through po_profile_set exactly
 * like a line of the file.  An unknown argument is logged and ignored; a
 * known argument with a bad value makes the call fail closed
 * (PAM_SERVICE_ERR) once the configuration is needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>

#include "internal.h"
#include "secret.h"

typedef enum arg_type { ARG_FLAG, ARG_STRING, ARG_MILLIS } arg_type;

/* The module's own arguments, sorted by name. */
static const struct pam_arg {
    const char *name;
    arg_type type;
    size_t offset; /* into po_pam_args */
} pam_args_table[] = {
    {"config", ARG_STRING, offsetof(po_pam_args, config_path)},
    {"debug", ARG_FLAG, offsetof(po_pam_args, debug)},
    {"fail_delay", ARG_MILLIS, offsetof(po_pam_args, fail_delay_ms)},
    {"profile", ARG_STRING, offsetof(po_pam_args, profile_name)},
    {"try_first_pass", ARG_FLAG, offsetof(po_pam_args, try_first_pass)},
    {"use_first_pass", ARG_FLAG, offsetof(po_pam_args, use_first_pass)},
};

/* The sink of every log line: syslog through PAM, so the line carries the
 * service name and goes wherever the host's PAM sends it. */
static void pam_log_sink(void *ctx, int priority, const char *msg)
{
    const pam_handle_t *pamh = ctx;

    pam_syslog(pamh, priority, "%s", msg);
}

static const struct pam_arg *find_pam_arg(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(pam_args_table) / sizeof(pam_args_table[0]); i++)
        if (strlen(pam_args_table[i].name) == len &&
            strncmp(pam_args_table[i].name, name, len) == 0)
            return &pam_args_table[i];
    return NULL;
}

/* The row of the configuration option table for key, or NULL. */
static const po_option *find_option(const char *key)
{
    size_t i, n = 0;
    const po_option *opts = po_options(&n);

    for (i = 0; opts != NULL && i < n; i++)
        if (strcmp(opts[i].name, key) == 0)
            return &opts[i];
    return NULL;
}

/* Parse one module argument of the module's own table. */
static void parse_pam_arg(po_pam_args *args, const struct pam_arg *a,
                          const char *arg, const char *value)
{
    char *base = (char *)args;
    char *end = NULL;
    long ms;

    switch (a->type) {
    case ARG_FLAG:
        if (value != NULL) {
            po_logf(&args->log, LOG_ERR,
                    "PAM argument '%s' takes no value, ignored", a->name);
            return;
        }
        *(int *)(base + a->offset) = 1;
        return;
    case ARG_STRING:
        if (value == NULL || value[0] == '\0') {
            po_logf(&args->log, LOG_ERR, "PAM argument '%s' needs a value",
                    a->name);
            args->bad_override = 1;
            return;
        }
        if (strcmp(a->name, "config") == 0 && value[0] != '/') {
            po_logf(&args->log, LOG_ERR,
                    "PAM argument 'config=%s': not an absolute path", value);
            args->bad_override = 1;
            return;
        }
        *(const char **)(base + a->offset) = value;
        return;
    case ARG_MILLIS:
        errno = 0;
        ms = value != NULL ? strtol(value, &end, 10) : -1;
        if (value == NULL || value[0] == '\0' || errno != 0 || *end != '\0' ||
            ms < 0 || ms > PO_PAM_FAIL_DELAY_MAX) {
            po_logf(&args->log, LOG_ERR,
                    "PAM argument '%s': want milliseconds from 0 to %ld, "
                    "ignored",
                    arg, PO_PAM_FAIL_DELAY_MAX);
            return;
        }
        *(long *)(base + a->offset) = ms;
        return;
    }
}

/* Parse one argument: the module's own, KEY=VALUE for a configuration key,
 * or unknown.  Values of configuration keys are applied later, by
 * po_pam_load_profile; they are never logged (one may be a secret). */
static void parse_arg(po_pam_args *args, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    const struct pam_arg *a = find_pam_arg(arg, len);
    const po_option *opt;
    char key[128];

    if (a != NULL) {
        parse_pam_arg(args, a, arg, eq != NULL ? eq + 1 : NULL);
        return;
    }
    if (eq == NULL || len == 0 || len >= sizeof(key)) {
        po_logf(&args->log, LOG_ERR, "unknown PAM argument '%.*s' ignored",
                (int)(len < 64 ? len : 64), arg);
        return;
    }
    memcpy(key, arg, len);
    key[len] = '\0';
    if (!po_option_known(key)) {
        po_logf(&args->log, LOG_ERR,
                "unknown PAM argument '%s=...' ignored (not a "
                "pam-oauth.conf key)",
                key);
        return;
    }
    opt = find_option(key);
    if (opt != NULL && opt->type == PO_OPT_SECRET) {
        po_logf(&args->log, LOG_ERR,
                "PAM argument '%s': secrets may not be PAM arguments (PAM "
                "configuration files are world-readable); set it in the "
                "configuration file or use client_secret_file",
                key);
        args->bad_override = 1;
    }
    /* Applied by po_pam_load_profile, in order. */
}

po_pam_args *po_pam_args_new(pam_handle_t *pamh, int flags, int argc,
                             const char **argv)
{
    po_pam_args *args;
    int i;

    if ((args = calloc(1, sizeof(*args))) == NULL) {
        pam_syslog(pamh, LOG_CRIT, "out of memory");
        return NULL;
    }
    args->pamh = pamh;
    args->flags = flags;
    args->log.fn = pam_log_sink;
    args->log.ctx = pamh;
    args->fail_delay_ms = PO_PAM_FAIL_DELAY_MS;
    args->config_path = PO_SYSTEM_CONFIG;
    args->profile_name = "default";
    args->argc = argc;
    args->argv = argv;
    po_config_init(&args->cfg);
    /* debug first, so that it applies to the messages about the others. */
    for (i = 0; i < argc; i++)
        if (argv[i] != NULL && strcmp(argv[i], "debug") == 0)
            args->debug = 1;
    args->log.debug = args->debug;
    for (i = 0; i < argc; i++)
        if (argv[i] != NULL)
            parse_arg(args, argv[i]);
    if (args->use_first_pass && args->try_first_pass) {
        po_logf(&args->log, LOG_ERR,
                "both use_first_pass and try_first_pass given: "
                "use_first_pass wins");
        args->try_first_pass = 0;
    }
    return args;
}

void po_pam_args_free(po_pam_args *args)
{
    if (args == NULL)
        return;
    po_config_free(&args->cfg);
    free(args);
}

/* Apply the KEY=VALUE arguments that name configuration keys to p. */
static int apply_overrides(po_pam_args *args, po_profile *p)
{
    char key[128], where[192];
    po_err err;
    int i;

    for (i = 0; i < args->argc; i++) {
        const char *arg = args->argv[i], *eq;
        size_t len;

        if (arg == NULL || (eq = strchr(arg, '=')) == NULL)
            continue;
        len = (size_t)(eq - arg);
        if (len == 0 || len >= sizeof(key) || find_pam_arg(arg, len) != NULL)
            continue;
        memcpy(key, arg, len);
        key[len] = '\0';
        if (!po_option_known(key))
            continue;
        (void)snprintf(where, sizeof(where), "PAM argument '%s'", key);
        po_err_clear(&err);
        if (po_profile_set(p, key, eq + 1, where, &err) != PO_OK) {
            po_logf(&args->log, LOG_ERR, "%s", err.msg);
            return err.rc == PO_NOMEM ? PAM_BUF_ERR : PAM_SERVICE_ERR;
        }
        po_logf(&args->log, LOG_DEBUG, "profile %s: %s set by %s", p->name, key,
                where);
    }
    return PAM_SUCCESS;
}

int po_pam_load_profile(po_pam_args *args)
{
    const char *path = args->config_path;
    po_profile *p;
    po_err err;
    po_rc rc;
    int pamret;

    if (args->profile != NULL)
        return PAM_SUCCESS;
    po_err_clear(&err);
    if (args->bad_override) {
        po_logf(&args->log, LOG_ERR,
                "refusing to run with the PAM argument errors "
                "logged above");
        return PAM_SERVICE_ERR;
    }
    /* A process that may not read the file (a screen locker running as the
     * user, the file 0600 root) cannot use the module: say so, and let the
     * stack fall back to another module.  Never fail open. */
    if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) == -1 && errno == EACCES) {
        po_logf(&args->log, LOG_ERR,
                "%s: permission denied for uid %lu: this program cannot "
                "read the pam-oauth configuration, so OAuth authentication "
                "is unavailable to it",
                path, (unsigned long)geteuid());
        return PAM_AUTHINFO_UNAVAIL;
    }
    rc = po_config_load_file(&args->cfg, path, PO_CFG_STRICT_OWNER, &err);
    if (rc != PO_OK) {
        po_logf(&args->log, LOG_ERR, "configuration: %s", err.msg);
        return rc == PO_NOMEM ? PAM_BUF_ERR : PAM_SERVICE_ERR;
    }
    if ((p = po_config_find(&args->cfg, args->profile_name)) == NULL) {
        po_logf(&args->log, LOG_ERR, "%s: no profile [%s]", path,
                args->profile_name);
        return PAM_SERVICE_ERR;
    }
    if ((pamret = apply_overrides(args, p)) != PAM_SUCCESS)
        return pamret;
    if ((rc = po_profile_validate_pam(p, &err)) != PO_OK) {
        po_logf(&args->log, LOG_ERR, "configuration: %s", err.msg);
        return rc == PO_NOMEM ? PAM_BUF_ERR : PAM_SERVICE_ERR;
    }
    args->profile = p;
    po_logf(&args->log, LOG_DEBUG, "using profile [%s] from %s", p->name, path);
    return PAM_SUCCESS;
}

void po_pam_entry(const po_pam_args *args, const char *func)
{
    po_logf(&args->log, LOG_DEBUG, "%s: entry (flags 0x%x)", func,
            (unsigned)args->flags);
}

void po_pam_exit(const po_pam_args *args, const char *func, int pamret)
{
    po_logf(&args->log, LOG_DEBUG, "%s: exit (%s)", func,
            po_pam_code_name(pamret));
}

#define CODE(c)                                                                \
    {                                                                          \
        c, #c                                                                  \
    }
static const struct {
    int code;
    const char *name;
} code_names[] = {
    CODE(PAM_SUCCESS),          CODE(PAM_IGNORE),       CODE(PAM_AUTH_ERR),
    CODE(PAM_AUTHINFO_UNAVAIL), CODE(PAM_USER_UNKNOWN), CODE(PAM_SERVICE_ERR),
    CODE(PAM_SYSTEM_ERR),       CODE(PAM_BUF_ERR),      CODE(PAM_CONV_ERR),
    CODE(PAM_PERM_DENIED),      CODE(PAM_CRED_ERR),     CODE(PAM_SESSION_ERR),
    CODE(PAM_INCOMPLETE),       CODE(PAM_ABORT),
};
#undef CODE

const char *po_pam_code_name(int pamret)
{
    size_t i;

    for (i = 0; i < sizeof(code_names) / sizeof(code_names[0]); i++)
        if (code_names[i].code == pamret)
            return code_names[i].name;
    return "other";
}

void po_pam_printable(const char *s, char *out, size_t n)
{
    size_t i;

    if (n == 0)
        return;
    for (i = 0; s != NULL && s[i] != '\0' && i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
    if (s != NULL && s[i] != '\0' && n > 4)
        memcpy(out + n - 4, "...", 4);
}
