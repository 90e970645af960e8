/*
 * helper.h - oauth-token and git-credential-oauth-token: the command
 * dispatcher over the core (common/).  Nothing here owns HTTP, JSON-parsing
 * or cache logic: the commands call po_flow_* and format the result.
 *
 * Every command returns a po_rc and fills a po_err; main() prints
 * "oauth-token: PROFILE: message" and maps the rc to an exit code with
 * ot_exit_code().  Output that holds a token is built in a secret po_buf
 * and written with one write(2) loop, so no stdio buffer keeps a copy.
 */
#ifndef OT_HELPER_H
#define OT_HELPER_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "flow.h"
#include "oauth.h"
#include "secret.h"

#define OT_PROG "oauth-token"
#define OT_GIT_PROG "git-credential-oauth-token"
#define OT_DOCKER_PROG "docker-credential-oauth-token"

/* Exit codes: oauth-token(1), EXIT STATUS, and --help mirror this list. */
enum {
    OT_EXIT_OK = 0,
    OT_EXIT_OTHER = 1,       /* anything not below                      */
    OT_EXIT_USAGE = 2,       /* usage or configuration error            */
    OT_EXIT_REJECTED = 3,    /* the identity provider refused us        */
    OT_EXIT_UNAVAILABLE = 4, /* the identity provider unreachable/failing */
    OT_EXIT_BUDGET = 5,      /* monthly token budget used up            */
    OT_EXIT_LOCKED = 6       /* cache lock not obtained in time         */
};

typedef enum ot_format {
    OT_FORMAT_TEXT = 0,
    OT_FORMAT_JSON,
    OT_FORMAT_EXEC_CREDENTIAL /* get: a Kubernetes ExecCredential (kube.c) */
} ot_format;

/* The parsed command line. */
typedef struct ot_opts {
    const char *profile;  /* -p, NULL when not given                 */
    const char **configs; /* -c PATH..., in order                     */
    size_t nconfigs;
    const char **overrides; /* -o KEY=VALUE..., in order                */
    size_t noverrides;
    ot_format format;
    int format_set;
    int force;            /* --force: past the monthly budget        */
    int verbose;          /* -v: info and debug log lines            */
    const char *username; /* login --username                        */
    int password_stdin;   /* login --password-stdin                  */
    int device;           /* login --device                          */
    int if_due;           /* refresh --if-due                        */
    const char *command;  /* "get", "curl", "git", ...                */
    char **args;          /* what follows the command (curl's own
                             arguments, the git action)               */
    int nargs;
    int args_owned; /* args is malloc'd (not a slice of argv)  */
} ot_opts;

/* Everything a command needs. */
typedef struct ot_ctx {
    ot_opts opts;
    po_log log;           /* to stderr, see ot_log_stderr           */
    const char *log_name; /* profile name prefixed to messages       */
    char **paths;         /* configuration files, NULL-terminated    */
    int paths_explicit;   /* from -c or $PAM_OAUTH_CONFIG            */
    po_config cfg;
    po_profile *profile; /* the selected profile, in cfg            */
    po_flow flow;        /* for profile                             */
    int status;          /* exit code when a command returns PO_OK
                            (curl's own for `oauth-token curl`)       */
} ot_ctx;

/* main.c */

/* The exit code for rc (see the enum above). */
int ot_exit_code(po_rc rc);

/* Print "oauth-token: [PROFILE: ]message" on stderr. */
void ot_error(const ot_ctx *c, const char *fmt, ...) PO_PRINTF(2, 3);

/* The configuration files, for a message: "a, b" ("" when none). */
void ot_paths_text(const ot_ctx *c, char *buf, size_t n);

/* Read the configuration files (c->paths) into c->cfg. */
po_rc ot_load_config(ot_ctx *c, po_err *err);

/* Make the profile named name current: apply the -o overrides, validate
 * it and set up c->flow. */
po_rc ot_select_profile(ot_ctx *c, const char *name, po_err *err);

/* A fresh token from po_flow_get, checked to be usable in an HTTP header
 * (visible ASCII only) so that no server can inject a header line or a git
 * protocol line.  flags are PO_FLOW_*; --force adds IGNORE_BUDGET.  A
 * stale but still valid token (the identity provider unavailable) comes
 * with a warning on standard error saying why and until when. */
po_rc ot_token(ot_ctx *c, unsigned flags, po_token *out, po_err *err);

/* write(2) all of p to fd, restarting after EINTR and short writes. */
po_rc ot_write_all(int fd, const void *p, size_t n, po_err *err);

/* commands.c: one function per command. */
po_rc ot_cmd_get(ot_ctx *c, po_err *err);
po_rc ot_cmd_header(ot_ctx *c, po_err *err);
po_rc ot_cmd_curl_config(ot_ctx *c, po_err *err);
po_rc ot_cmd_status(ot_ctx *c, po_err *err);
po_rc ot_cmd_refresh(ot_ctx *c, po_err *err);
po_rc ot_cmd_erase(ot_ctx *c, po_err *err);
po_rc ot_cmd_login(ot_ctx *c, po_err *err);
po_rc ot_cmd_check_config(ot_ctx *c, po_err *err);
po_rc ot_cmd_fleet_key(ot_ctx *c, po_err *err);

/* Print t on standard output as `get` does: the bare token and a newline,
 * or with --format json its JSON form. */
po_rc ot_print_token(ot_ctx *c, const po_token *t, po_err *err);

/* device.c: `oauth-token login --device` (and login for a grant = device
 * profile). */
po_rc ot_device_login(ot_ctx *c, po_err *err);

/* profiles.c: `oauth-token profiles`, the profile names of the
 * configuration files (for shell completion and scripts). */
po_rc ot_cmd_profiles(ot_ctx *c, po_err *err);

/* kube.c: `oauth-token --format exec-credential`: the token as the
 * client.authentication.k8s.io ExecCredential kubectl's exec plugins
 * print, in the apiVersion KUBERNETES_EXEC_INFO asks for (v1 when unset). */
po_rc ot_exec_credential(ot_ctx *c, po_err *err);

/* Append the curl config line `header = "Authorization: Bearer TOKEN"`
 * (with its newline) to out, quoted per curl's config file syntax. */
po_rc ot_curl_config_line(po_buf *out, const char *token, po_err *err);

/* run_curl.c: `oauth-token curl ARGS...`.  Once curl has run, c->status
 * holds curl's exit code (128 + N when killed by signal N). */
po_rc ot_cmd_curl(ot_ctx *c, po_err *err);

/* git.c: the git credential helper; c->opts.args[0] is the action. */
po_rc ot_cmd_git(ot_ctx *c, po_err *err);

/* docker.c: docker-credential-oauth-token, the docker-credential-helpers
 * protocol; c->opts.args[0] is the action.  Failures are reported on
 * standard output with exit status 1, as the protocol wants, so this
 * returns PO_OK with c->status set. */
po_rc ot_cmd_docker(ot_ctx *c, po_err *err);

/* password.c: read one line into buf (size bytes, NUL-terminated), from
 * standard input when from_stdin, else from /dev/tty with echo off (the
 * terminal is restored on every path, signals included).  echo turns
 * echo on (for a user name).  A line too long or empty is PO_USAGE. */
po_rc ot_read_line(int from_stdin, int echo, const char *prompt, char *buf,
                   size_t size, po_err *err);

#endif
