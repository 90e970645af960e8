/*
 * commands.c - the commands that print or manage the token of one
 * profile: get, header, curl-config, status, refresh, erase, login,
 * check-config and fleet-key.  Each formats what po_flow_* returns; none of
 * them keeps cache or HTTP logic of its own.
 */
#include "helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "http.h"
#include "seal.h"
#include "util.h"

#define OUT_MAX (1024 * 1024) /* any output we build                */
#define USER_MAX 256          /* login: user name, with the NUL     */
#define PASSWORD_MAX 4096     /* login: password, with the NUL      */

/* po_buf_* report only a code: name what failed. */
static po_rc out_rc(po_rc rc, po_err *err)
{
    if (rc == PO_OK)
        return PO_OK;
    return po_fail(err, rc, "building the output: %s", po_rc_name(rc));
}

/* Write b to standard output. */
static po_rc emit(const po_buf *b, po_err *err)
{
    return ot_write_all(STDOUT_FILENO, b->data, b->len, err);
}

/* Append ,"key":"value" (null for a NULL value) to b. */
static po_rc json_str(po_buf *b, const char *key, const char *value)
{
    po_rc rc;

    if ((rc = po_buf_printf(b, "%s\"%s\":", b->len > 1 ? "," : "", key)) !=
        PO_OK)
        return rc;
    return value != NULL ? po_json_quote(b, value) : po_buf_puts(b, "null");
}

/* Append ,"key":N to b. */
static po_rc json_num(po_buf *b, const char *key, long long value)
{
    return po_buf_printf(b, "%s\"%s\":%lld", b->len > 1 ? "," : "", key, value);
}

/* Append ,"key":true|false to b. */
static po_rc json_bool(po_buf *b, const char *key, int value)
{
    return po_buf_printf(b, "%s\"%s\":%s", b->len > 1 ? "," : "", key,
                         value ? "true" : "false");
}

/* The --format json form of a token (get, refresh). */
static po_rc token_json(po_buf *b, const po_token *t)
{
    int64_t left = t->expires_at - (int64_t)time(NULL);
    po_rc rc;

    if ((rc = po_buf_puts(b, "{")) == PO_OK)
        rc = json_str(b, "access_token", t->access_token);
    if (rc == PO_OK)
        rc = json_str(b, "token_type",
                      t->token_type != NULL ? t->token_type : "Bearer");
    if (rc == PO_OK)
        rc = json_num(b, "expires_at", (long long)t->expires_at);
    if (rc == PO_OK)
        rc = json_num(b, "expires_in", (long long)(left > 0 ? left : 0));
    if (rc == PO_OK)
        rc = json_str(b, "scope", t->scope);
    if (rc == PO_OK)
        rc = po_buf_puts(b, "}\n");
    return rc;
}

po_rc ot_curl_config_line(po_buf *out, const char *token, po_err *err)
{
    po_rc rc;
    const char *s;

    /* curl's config syntax: inside double quotes, \" and \\ escape. */
    rc = po_buf_puts(out, "header = \"Authorization: Bearer ");
    for (s = token; rc == PO_OK && *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            rc = po_buf_append(out, "\\", 1);
        if (rc == PO_OK)
            rc = po_buf_append(out, s, 1);
    }
    if (rc == PO_OK)
        rc = po_buf_puts(out, "\"\n");
    return out_rc(rc, err);
}

/* The forms of the token: bare, JSON, header, curl config line. */
typedef enum token_form {
    FORM_BARE,
    FORM_JSON,
    FORM_HEADER,
    FORM_CURL
} token_form;

po_rc ot_print_token(ot_ctx *c, const po_token *t, po_err *err)
{
    po_buf b;
    po_rc rc;

    po_buf_init(&b, OUT_MAX, 1);
    if (c->opts.format == OT_FORMAT_JSON)
        rc = token_json(&b, t);
    else if ((rc = po_buf_puts(&b, t->access_token)) == PO_OK)
        rc = po_buf_puts(&b, "\n");
    if ((rc = out_rc(rc, err)) == PO_OK)
        rc = emit(&b, err);
    po_buf_free(&b);
    return rc;
}

static po_rc print_token(ot_ctx *c, unsigned flags, token_form form,
                         po_err *err)
{
    po_token t;
    po_buf b;
    po_rc rc;

    memset(&t, 0, sizeof(t));
    po_buf_init(&b, OUT_MAX, 1);
    if ((rc = ot_token(c, flags, &t, err)) != PO_OK)
        goto out;
    switch (form) {
    case FORM_BARE:
        rc = po_buf_puts(&b, t.access_token);
        if (rc == PO_OK)
            rc = po_buf_puts(&b, "\n");
        break;
    case FORM_JSON:
        rc = token_json(&b, &t);
        break;
    case FORM_HEADER:
        rc = po_buf_puts(&b, "Authorization: Bearer ");
        if (rc == PO_OK)
            rc = po_buf_puts(&b, t.access_token);
        if (rc == PO_OK)
            rc = po_buf_puts(&b, "\n");
        break;
    case FORM_CURL:
        if ((rc = ot_curl_config_line(&b, t.access_token, err)) != PO_OK)
            goto out;
        break;
    }
    if ((rc = out_rc(rc, err)) != PO_OK)
        goto out;
    rc = emit(&b, err);
out:
    po_buf_free(&b);
    po_token_free(&t);
    return rc;
}

po_rc ot_cmd_get(ot_ctx *c, po_err *err)
{
    if (c->opts.format == OT_FORMAT_EXEC_CREDENTIAL)
        return ot_exec_credential(c, err);
    return print_token(
        c, 0, c->opts.format == OT_FORMAT_JSON ? FORM_JSON : FORM_BARE, err);
}

po_rc ot_cmd_header(ot_ctx *c, po_err *err)
{
    return print_token(c, 0, FORM_HEADER, err);
}

po_rc ot_cmd_curl_config(ot_ctx *c, po_err *err)
{
    return print_token(c, 0, FORM_CURL, err);
}

/* refresh: for a timer, so the token is printed only when asked for with
 * --format json; -v logs the new expiry.  --if-due renews only a token
 * that is no longer fresh (po_flow_get's own rule), so a timer may run it
 * as often as it likes without making more requests than the policy. */
po_rc ot_cmd_refresh(ot_ctx *c, po_err *err)
{
    unsigned flags = c->opts.if_due ? 0 : PO_FLOW_FORCE_NEW;
    po_token t;
    char when[64];
    po_rc rc;

    if (c->opts.format == OT_FORMAT_JSON)
        return print_token(c, flags, FORM_JSON, err);
    memset(&t, 0, sizeof(t));
    if (c->opts.if_due) {
        rc = ot_token(c, PO_FLOW_CACHE_ONLY, &t, err);
        if (rc == PO_OK) {
            po_format_utc(t.expires_at, when, sizeof(when));
            po_logf(&c->log, LOG_INFO,
                    "the cached token is not due yet (valid until %s)", when);
            po_token_free(&t);
            return PO_OK;
        }
        if (rc != PO_NOT_FOUND)
            return rc;
        po_err_clear(err);
    }
    if ((rc = ot_token(c, flags, &t, err)) != PO_OK)
        return rc;
    po_format_utc(t.expires_at, when, sizeof(when));
    po_logf(&c->log, LOG_INFO, "new token, valid until %s", when);
    po_token_free(&t);
    return PO_OK;
}

po_rc ot_cmd_erase(ot_ctx *c, po_err *err)
{
    return po_flow_erase(&c->flow, err);
}

/* ---- status ---- */

typedef struct status_info {
    char url[512]; /* token URL without query or userinfo  */
    char *file;    /* the cache file                       */
    const char *state;
    int64_t now;
    long count; /* token requests this month            */
    char month[8];
    /* fleet mode */
    int fleet;              /* the profile has a shared cache   */
    po_rc fleet_rc;         /* reading it: PO_OK or the error   */
    char fleet_error[512];  /* ... its message                  */
    po_cache_entry fleet_e; /* the fleet's entry                */
    po_store_usage usage;   /* the fleet's budget record        */
    const char *fleet_state;
    long fleet_count; /* this month's fleet requests      */
} status_info;

/* The state of a cached token: none, valid, refresh-due or expired. */
static const char *token_state(const po_profile *p, const po_token *t,
                               int64_t now)
{
    if (t->access_token == NULL)
        return "none";
    if (po_flow_is_fresh(p, t, now))
        return "valid";
    return now < t->expires_at ? "refresh-due" : "expired";
}

/* The fleet's lines of the text status. */
static po_rc status_fleet_text(const ot_ctx *c, const status_info *si,
                               po_buf *b)
{
    const po_profile *p = c->profile;
    const po_token *t = &si->fleet_e.token;
    char when[64];
    po_rc rc;

    if (si->fleet_rc != PO_OK)
        return po_buf_printf(b, "fleet:          unavailable: %s\n",
                             si->fleet_error);
    rc = po_buf_printf(b, "fleet token:    %s\n", si->fleet_state);
    if (rc == PO_OK && t->access_token != NULL) {
        po_format_utc(t->expires_at, when, sizeof(when));
        rc = po_buf_printf(b, "fleet expires:  %s\n", when);
    }
    if (rc == PO_OK && p->budget > 0)
        rc = po_buf_printf(b, "fleet requests: %ld of %ld in %s\n",
                           si->fleet_count, p->budget, si->month);
    else if (rc == PO_OK)
        rc = po_buf_printf(b, "fleet requests: %ld in %s (no budget)\n",
                           si->fleet_count, si->month);
    if (rc == PO_OK && si->usage.host[0] != '\0') {
        po_format_utc(si->usage.at, when, sizeof(when));
        rc = po_buf_printf(b, "last request:   by %s at %s\n", si->usage.host,
                           when);
    }
    return rc;
}

static po_rc status_text(const ot_ctx *c, const po_cache_entry *e,
                         const status_info *si, po_buf *b)
{
    const po_profile *p = c->profile;
    const po_token *t = &e->token;
    char when[64];
    po_rc rc;

    rc = po_buf_printf(b,
                       "profile:        %s\n"
                       "token url:      %s\n"
                       "client id:      %s\n"
                       "cache file:     %s\n"
                       "token:          %s\n",
                       p->name, si->url, p->client_id ? p->client_id : "-",
                       si->file, si->state);
    if (rc == PO_OK && t->access_token != NULL) {
        po_format_utc(t->expires_at, when, sizeof(when));
        if (t->expires_at > si->now)
            rc = po_buf_printf(b, "expires:        %s (in %lld s)\n", when,
                               (long long)(t->expires_at - si->now));
        else
            rc = po_buf_printf(b, "expires:        %s (%lld s ago)\n", when,
                               (long long)(si->now - t->expires_at));
        if (rc == PO_OK)
            rc = po_buf_printf(b, "scope:          %s\n",
                               t->scope != NULL ? t->scope : "-");
    }
    if (rc == PO_OK && e->username != NULL)
        rc = po_buf_printf(b, "user:           %s\n", e->username);
    if (rc == PO_OK)
        rc = po_buf_printf(b, "refresh token:  %s\n",
                           t->refresh_token != NULL ? "cached" : "none");
    if (rc == PO_OK && p->budget > 0)
        rc = po_buf_printf(b, "requests:       %ld of %ld in %s\n", si->count,
                           p->budget, si->month);
    else if (rc == PO_OK)
        rc = po_buf_printf(b, "requests:       %ld in %s (no budget)\n",
                           si->count, si->month);
    if (rc == PO_OK && e->renewal.failed_at != 0) {
        char after[40];
        po_format_utc(e->renewal.failed_at, when, sizeof(when));
        po_format_utc(e->renewal.after, after, sizeof(after));
        rc = po_buf_printf(b,
                           "renewal:        failed %ld time(s), last at %s: "
                           "%s: %s; next attempt after %s\n",
                           e->renewal.failures, when, po_rc_name(e->renewal.rc),
                           e->renewal.msg, after);
    }
    if (rc == PO_OK && si->fleet)
        rc = status_fleet_text(c, si, b);
    return rc;
}

/* ,"fleet":{...} of the JSON status. */
static po_rc status_fleet_json(const status_info *si, po_buf *b)
{
    const po_token *t = &si->fleet_e.token;
    int has = t->access_token != NULL;
    po_buf f;
    po_rc rc;

    po_buf_init(&f, OUT_MAX, 0);
    if ((rc = po_buf_puts(&f, "{")) == PO_OK && si->fleet_rc != PO_OK)
        rc = json_str(&f, "error", si->fleet_error);
    if (rc == PO_OK && si->fleet_rc == PO_OK) {
        rc = json_str(&f, "state", si->fleet_state);
        if (rc == PO_OK)
            rc = has ? json_num(&f, "expires_at", (long long)t->expires_at)
                     : json_str(&f, "expires_at", NULL);
        if (rc == PO_OK)
            rc = json_num(&f, "requests", si->fleet_count);
        if (rc == PO_OK)
            rc = json_str(&f, "last_host",
                          si->usage.host[0] ? si->usage.host : NULL);
        if (rc == PO_OK)
            rc = si->usage.host[0] ? json_num(&f, "last_at", si->usage.at)
                                   : json_str(&f, "last_at", NULL);
    }
    if (rc == PO_OK)
        rc = po_buf_puts(&f, "}");
    if (rc == PO_OK)
        rc = po_buf_printf(b, ",\"fleet\":%s", f.data);
    po_buf_free(&f);
    return rc;
}

static po_rc status_json(const ot_ctx *c, const po_cache_entry *e,
                         const status_info *si, po_buf *b)
{
    const po_profile *p = c->profile;
    const po_token *t = &e->token;
    int has = t->access_token != NULL;
    po_rc rc;

    if ((rc = po_buf_puts(b, "{")) == PO_OK)
        rc = json_str(b, "profile", p->name);
    if (rc == PO_OK)
        rc = json_str(b, "token_url", si->url);
    if (rc == PO_OK)
        rc = json_str(b, "client_id", p->client_id);
    if (rc == PO_OK)
        rc = json_str(b, "cache_file", si->file);
    if (rc == PO_OK)
        rc = json_str(b, "state", si->state);
    if (rc == PO_OK)
        rc = has ? json_num(b, "expires_at", (long long)t->expires_at)
                 : json_str(b, "expires_at", NULL);
    if (rc == PO_OK)
        rc = has ? json_num(b, "expires_in",
                            (long long)(t->expires_at > si->now
                                            ? t->expires_at - si->now
                                            : 0))
                 : json_str(b, "expires_in", NULL);
    if (rc == PO_OK)
        rc = json_str(b, "scope", has ? t->scope : NULL);
    if (rc == PO_OK)
        rc = json_str(b, "username", e->username);
    if (rc == PO_OK)
        rc = json_bool(b, "refresh_token", t->refresh_token != NULL);
    if (rc == PO_OK)
        rc = json_str(b, "month", si->month);
    if (rc == PO_OK)
        rc = json_num(b, "requests", si->count);
    if (rc == PO_OK)
        rc = p->budget > 0 ? json_num(b, "budget", p->budget)
                           : json_str(b, "budget", NULL);
    if (rc == PO_OK && e->renewal.failed_at == 0)
        rc = json_str(b, "renewal", NULL);
    else if (rc == PO_OK &&
             (rc = po_buf_printf(
                  b,
                  ",\"renewal\":{\"failed_at\":%lld,\"after\":%lld,"
                  "\"failures\":%ld,\"outcome\":\"%s\",\"message\":",
                  (long long)e->renewal.failed_at, (long long)e->renewal.after,
                  e->renewal.failures, po_rc_name(e->renewal.rc))) == PO_OK &&
             (rc = po_json_quote(b, e->renewal.msg)) == PO_OK)
        rc = po_buf_puts(b, "}");
    if (rc == PO_OK && si->fleet)
        rc = status_fleet_json(si, b);
    if (rc == PO_OK)
        rc = po_buf_puts(b, "}\n");
    return rc;
}

po_rc ot_cmd_status(ot_ctx *c, po_err *err)
{
    po_cache_entry e;
    status_info si;
    char *dir = NULL;
    po_buf b;
    po_rc rc;

    memset(&e, 0, sizeof(e));
    memset(&si, 0, sizeof(si));
    po_buf_init(&b, OUT_MAX, 0); /* never holds a token */
    if ((rc = po_cache_dir(c->profile, &dir, err)) != PO_OK ||
        (rc = po_cache_file(dir, c->profile, &si.file, err)) != PO_OK ||
        (rc = po_flow_status(&c->flow, &e, err)) != PO_OK)
        goto out;
    si.now = (int64_t)time(NULL);
    po_http_redact_url(c->profile->token_url, si.url, sizeof(si.url));
    po_flow_month(si.now, si.month);
    si.count = strcmp(e.budget_month, si.month) == 0 ? e.budget_count : 0;
    si.state = token_state(c->profile, &e.token, si.now);
    if ((si.fleet = po_store_enabled(c->profile)) != 0) {
        po_err ferr;
        po_err_clear(&ferr);
        si.fleet_rc =
            po_flow_fleet_status(&c->flow, &si.fleet_e, &si.usage, &ferr);
        (void)snprintf(si.fleet_error, sizeof(si.fleet_error), "%s", ferr.msg);
        si.fleet_state = token_state(c->profile, &si.fleet_e.token, si.now);
        si.fleet_count =
            strcmp(si.usage.month, si.month) == 0 ? si.usage.count : 0;
    }
    rc = c->opts.format == OT_FORMAT_JSON ? status_json(c, &e, &si, &b)
                                          : status_text(c, &e, &si, &b);
    if ((rc = out_rc(rc, err)) != PO_OK)
        goto out;
    rc = emit(&b, err);
out:
    po_buf_free(&b);
    po_cache_entry_free(&e);
    po_cache_entry_free(&si.fleet_e);
    free(si.file);
    free(dir);
    return rc;
}

/* ---- login ---- */

po_rc ot_cmd_login(ot_ctx *c, po_err *err)
{
    const po_profile *p = c->profile;
    char user[USER_MAX], password[PASSWORD_MAX], prompt[USER_MAX + 128];
    char when[64];
    const char *username = c->opts.username;
    po_token t;
    po_rc rc;

    memset(&t, 0, sizeof(t));
    password[0] = '\0';
    if (c->opts.device || p->grant == PO_GRANT_DEVICE_CODE) {
        if (c->opts.username != NULL || c->opts.password_stdin) {
            rc = po_fail(err, PO_USAGE,
                         "profile %s uses the device grant, which asks for "
                         "no user name or password",
                         p->name);
            goto out;
        }
        rc = ot_device_login(c, err);
        goto out;
    }
    if (c->opts.format_set) {
        rc = po_fail(err, PO_USAGE,
                     "--format is valid with 'login --device' only");
        goto out;
    }
    if (username == NULL)
        username = p->username;
    if (username == NULL) {
        if (c->opts.password_stdin) {
            rc = po_fail(err, PO_USAGE,
                         "no user name: give --username or set username in "
                         "the profile");
            goto out;
        }
        if ((rc = ot_read_line(0, 1, "Username: ", user, sizeof(user), err)) !=
            PO_OK)
            goto out;
        username = user;
    }
    (void)snprintf(prompt, sizeof(prompt),
                   "Password for %s (profile %s): ", username, p->name);
    if ((rc = ot_read_line(c->opts.password_stdin, 0, prompt, password,
                           sizeof(password), err)) != PO_OK)
        goto out;
    rc = po_flow_login(&c->flow, username, password,
                       c->opts.force ? PO_FLOW_IGNORE_BUDGET : 0, &t, err);
    if (rc != PO_OK)
        goto out;
    po_format_utc(t.expires_at, when, sizeof(when));
    ot_error(c, "logged in as %s; token valid until %s%s", username, when,
             t.refresh_token != NULL ? ", refresh token cached" : "");
out:
    po_cleanse(password, sizeof(password));
    po_token_free(&t);
    return rc;
}

/* ---- check-config ---- */

typedef struct check_state {
    unsigned problems;
} check_state;

static void check_diag(void *ctx, const char *msg)
{
    check_state *st = ctx;

    st->problems++;
    ot_error(NULL, "%s", msg);
}

po_rc ot_cmd_check_config(ot_ctx *c, po_err *err)
{
    unsigned flags = c->paths_explicit ? 0 : PO_CFG_MISSING_OK;
    check_state st = {0};
    unsigned found = 0;
    char files[1024];
    size_t i;

    for (i = 0; c->paths[i] != NULL; i++) {
        unsigned before = st.problems;
        if (flags & PO_CFG_MISSING_OK && access(c->paths[i], F_OK) != 0)
            continue;
        found++;
        /* the system file is read by pam_oauth too: check it as the module
         * does (the device grant's binding rules) */
        (void)po_config_check(c->paths[i],
                              flags |
                                  (strcmp(c->paths[i], PO_SYSTEM_CONFIG) == 0
                                       ? PO_CFG_PAM_RULES
                                       : 0u),
                              check_diag, &st);
        if (st.problems == before)
            printf("%s: ok\n", c->paths[i]);
    }
    if (fflush(stdout) != 0)
        return po_fail(err, PO_IO, "writing standard output failed");
    if (found == 0) {
        ot_paths_text(c, files, sizeof(files));
        return po_fail(err, PO_CONFIG,
                       "no configuration file found (looked for %s)", files);
    }
    if (st.problems > 0)
        return po_fail(err, PO_CONFIG, "%u problem%s found", st.problems,
                       st.problems == 1 ? "" : "s");
    return PO_OK;
}

/* ---- fleet-key ---- */

po_rc ot_cmd_fleet_key(ot_ctx *c, po_err *err)
{
    const char *path = c->opts.args[0];
    po_rc rc;

    if ((rc = po_seal_keygen(path, err)) != PO_OK)
        return rc;
    ot_error(NULL,
             "created %s: %d random bytes, mode 0600; copy it (over a safe "
             "channel) to every host of the fleet and name it in "
             "shared_cache_key_file",
             path, PO_SEAL_KEY_LEN);
    return PO_OK;
}
