/*
 * git.c - git-credential-oauth-token: git's credential helper protocol
 * (git-credential(1), gitcredentials(7)).
 *
 * Input is read strictly, after the lessons of CVE-2020-5260 and
 * CVE-2024-50338 (a newline or carriage return smuggled into a value
 * became a second attribute): key=value lines up to a blank line or end of
 * file; a line with a NUL or CR byte, a line without '=', an empty key, a
 * repeated single-valued key and an empty host are refused.  Unknown keys
 * are ignored; capability[], wwwauth[] and state[] may repeat.  Output is
 * safe because the token is visible ASCII (ot_token) and the user name
 * comes from the configuration and is checked here.
 *
 * The profile is the one whose match key (URL prefixes, compared after
 * normalising both sides: urlmatch.h) covers the request best, or -p's,
 * which must cover it as well: a profile without a match key never
 * answers git.  Only https is answered (http for a loopback host when the
 * profile has allow_http).
 */
#define _GNU_SOURCE
#include "helper.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "urlmatch.h"

#define GIT_INPUT_MAX (1024 * 1024) /* the whole request               */
#define GIT_LINE_MAX 65535          /* git's own limit, newline included */

/* The attributes we use; pointers into the (secret) input buffer. */
typedef struct git_req {
    const char *protocol;
    const char *host;
    const char *path; /* without a leading '/', or NULL       */
    const char *username;
    const char *password; /* a token git got from us, or NULL     */
    const char *authtype;
    const char *credential; /* likewise, with capability authtype   */
    int cap_authtype;       /* git announced capability[]=authtype */
} git_req;

/* Read standard input up to a blank line or end of file into b. */
static po_rc read_request(po_buf *b, po_err *err)
{
    char chunk[4096];
    po_rc rc = PO_OK;

    for (;;) {
        ssize_t r = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = po_fail(err, PO_IO, "reading git's request: %s",
                         strerror(errno));
            break;
        }
        if (r == 0)
            break;
        if ((rc = po_buf_append(b, chunk, (size_t)r)) != PO_OK) {
            rc = rc == PO_TOO_LARGE
                     ? po_fail(err, PO_USAGE,
                               "git's request is larger than %d bytes",
                               GIT_INPUT_MAX)
                     : po_fail(err, rc, "out of memory");
            break;
        }
        /* The blank line ends the request; git need not close the pipe. */
        if (b->data[0] == '\n' || memmem(b->data, b->len, "\n\n", 2) != NULL)
            break;
    }
    po_cleanse(chunk, sizeof(chunk));
    return rc;
}

/* Visible ASCII only (for what git sent, shown in a message). */
static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* The single-valued attributes we use, and where they go. */
static const struct git_attr {
    const char *key;
    size_t offset;
} git_attrs[] = {
    {"protocol", offsetof(git_req, protocol)},
    {"host", offsetof(git_req, host)},
    {"path", offsetof(git_req, path)},
    {"username", offsetof(git_req, username)},
    {"password", offsetof(git_req, password)},
    {"authtype", offsetof(git_req, authtype)},
    {"credential", offsetof(git_req, credential)},
};

/* Record one attribute.  A single-valued one may come once; an empty
 * capability[] resets the list; wwwauth[], state[] and unknown keys are
 * ignored. */
static po_rc set_attr(git_req *g, const char *key, const char *value,
                      unsigned lineno, po_err *err)
{
    const char **slot;
    size_t i;

    if (strcmp(key, "capability[]") == 0) {
        if (value[0] == '\0')
            g->cap_authtype = 0;
        else if (strcmp(value, "authtype") == 0)
            g->cap_authtype = 1;
        return PO_OK;
    }
    for (i = 0; i < sizeof(git_attrs) / sizeof(git_attrs[0]); i++) {
        if (strcmp(key, git_attrs[i].key) != 0)
            continue;
        slot = (const char **)(void *)((char *)g + git_attrs[i].offset);
        if (*slot != NULL)
            return po_fail(err, PO_USAGE,
                           "git's request, line %u: '%s' given twice", lineno,
                           key);
        *slot = value;
        break;
    }
    return PO_OK;
}

/* Parse the request in b (modified in place: lines are NUL-terminated). */
static po_rc parse_request(po_buf *b, git_req *g, po_err *err)
{
    char *line = b->data, *end = b->data + b->len, *nl, *eq;
    unsigned lineno = 0;
    size_t len;
    po_rc rc;

    memset(g, 0, sizeof(*g));
    while (line != NULL && line < end) {
        lineno++;
        nl = memchr(line, '\n', (size_t)(end - line));
        len = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
        if (len == 0)
            break; /* the blank line */
        if (len + 1 > GIT_LINE_MAX)
            return po_fail(err, PO_USAGE,
                           "git's request, line %u: longer than %d bytes",
                           lineno, GIT_LINE_MAX);
        if (memchr(line, '\0', len) != NULL)
            return po_fail(err, PO_USAGE,
                           "git's request, line %u: NUL byte refused", lineno);
        if ((eq = memchr(line, '=', len)) == NULL)
            return po_fail(err, PO_USAGE,
                           "git's request, line %u: no '=' (expected "
                           "key=value)",
                           lineno);
        if (eq == line)
            return po_fail(err, PO_USAGE, "git's request, line %u: empty key",
                           lineno);
        *eq = '\0';
        line[len] = '\0';
        if (memchr(line, '\r', len) != NULL)
            return po_fail(err, PO_USAGE,
                           "git's request, line %u: carriage return in "
                           "'%s' refused",
                           lineno, printable(line) ? line : "the key");
        if ((rc = set_attr(g, line, eq + 1, lineno, err)) != PO_OK)
            return rc;
        line = nl != NULL ? nl + 1 : NULL;
    }
    return PO_OK;
}

/* Check what a get or erase needs: protocol and host; the URL they and
 * the path name, normalised, into *u. */
static po_rc check_request(const git_req *g, po_url *u, po_err *err)
{
    po_err e;

    if (g->protocol == NULL || g->protocol[0] == '\0')
        return po_fail(err, PO_USAGE, "git's request has no protocol");
    if (g->host == NULL)
        return po_fail(err, PO_USAGE, "git's request has no host");
    if (g->host[0] == '\0')
        return po_fail(err, PO_USAGE, "git's request has an empty host");
    if (strcasecmp(g->protocol, "https") != 0 &&
        strcasecmp(g->protocol, "http") != 0)
        return po_fail(err, PO_USAGE,
                       "git's request: protocol '%s' is not supported "
                       "(https only)",
                       printable(g->protocol) ? g->protocol : "?");
    po_err_clear(&e);
    if (po_url_from_parts(g->protocol, g->host, g->path, u, &e) != PO_OK)
        return po_fail(err, PO_USAGE,
                       "git's request: the host is not a host name (%s)",
                       e.msg);
    return PO_OK;
}

/* The request as a URL, for messages. */
static void request_url(const git_req *g, char *buf, size_t n)
{
    const char *path = g->path != NULL && printable(g->path) ? g->path : "";

    (void)snprintf(buf, n, "%s://%s/%s", g->protocol, g->host, path);
}

/* Choose and select the profile for g (whose URL is u) by the rule of
 * po_url_choose_profile.  PO_NOT_FOUND when none matches; a profile named
 * with -p must name the URL in its match key too (CVE-2020-11008: a
 * helper that answers every host gives the token to any remote, submodule
 * or redirect that asks), except for erase, which gives nothing and drops
 * only the token git hands back. */
static po_rc choose_profile(ot_ctx *c, const git_req *g, const po_url *u,
                            int erase, po_err *err)
{
    const po_profile *chosen = NULL;
    char url[512];
    po_rc rc;

    request_url(g, url, sizeof(url));
    if (c->opts.profile != NULL) {
        if ((rc = ot_select_profile(c, c->opts.profile, err)) != PO_OK)
            return rc;
        if (c->profile->match == NULL || c->profile->match[0] == '\0') {
            if (erase)
                return PO_OK;
            return po_fail(err, PO_CONFIG,
                           "profile %s has no match key, so it would give "
                           "its token to any host git asks for; name the "
                           "URLs it is for with 'match = "
                           "https://git.example.com/' in the profile, or in "
                           "git's URL-scoped helper: git config --global "
                           "credential.https://git.example.com.helper "
                           "'oauth-token -p %s -o "
                           "match=https://git.example.com/' (this request: "
                           "%.120s)",
                           c->profile->name, c->profile->name, url);
        }
        return po_url_choose_profile(&c->cfg, c->profile, u, url, &chosen, err);
    }
    if ((rc = po_url_choose_profile(&c->cfg, NULL, u, url, &chosen, err)) !=
        PO_OK)
        return rc;
    return ot_select_profile(c, chosen->name, err);
}

/* A value we print into the protocol must hold no line break. */
static int line_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static po_rc git_get(ot_ctx *c, const git_req *g, po_err *err)
{
    const char *user = c->profile->git_username;
    po_token t;
    po_buf b;
    po_rc rc;

    memset(&t, 0, sizeof(t));
    po_buf_init(&b, GIT_INPUT_MAX, 1);
    if (user == NULL || user[0] == '\0')
        user = "oauth2";
    if (!g->cap_authtype && !line_safe(user)) {
        rc = po_fail(err, PO_CONFIG,
                     "git_username holds a control "
                     "character");
        goto out;
    }
    if ((rc = ot_token(c, 0, &t, err)) != PO_OK)
        goto out;
    if (g->cap_authtype)
        rc = po_buf_printf(&b,
                           "capability[]=authtype\n"
                           "authtype=Bearer\n"
                           "credential=%s\n"
                           "ephemeral=1\n"
                           "password_expiry_utc=%lld\n",
                           t.access_token, (long long)t.expires_at);
    else
        rc = po_buf_printf(&b,
                           "username=%s\n"
                           "password=%s\n"
                           "password_expiry_utc=%lld\n",
                           user, t.access_token, (long long)t.expires_at);
    if (rc != PO_OK) {
        rc = po_fail(err, rc, "building the answer to git");
        goto out;
    }
    rc = ot_write_all(STDOUT_FILENO, b.data, b.len, err);
out:
    po_buf_free(&b);
    po_token_free(&t);
    return rc;
}

/* git reports a credential as rejected: drop the cached token only when it
 * is the one git used, so a newer token another process fetched stays. */
static po_rc git_erase(ot_ctx *c, const git_req *g, po_err *err)
{
    const char *token = g->password;
    int done = 0;
    po_rc rc;

    if (g->credential != NULL) {
        if (g->authtype == NULL || strcasecmp(g->authtype, "Bearer") != 0)
            return PO_OK; /* not ours */
        token = g->credential;
    }
    if (token == NULL || token[0] == '\0')
        return PO_OK;
    if ((rc = po_flow_invalidate(&c->flow, token, &done, err)) != PO_OK)
        return rc;
    po_logf(&c->log, LOG_INFO,
            done ? "git reported the token as rejected; dropped it from the "
                   "cache"
                 : "git reported an older token as rejected; the cached "
                   "token is newer and stays");
    return PO_OK;
}

po_rc ot_cmd_git(ot_ctx *c, po_err *err)
{
    const char *action = c->opts.args[0];
    int is_get = strcmp(action, "get") == 0;
    int is_erase = strcmp(action, "erase") == 0;
    git_req g;
    po_url u;
    po_buf in;
    po_rc rc;

    if (strcmp(action, "capability") == 0) {
        static const char caps[] = "version 0\ncapability authtype\n";
        return ot_write_all(STDOUT_FILENO, caps, sizeof(caps) - 1, err);
    }
    /* Helpers ignore actions they do not know (gitcredentials(7)). */
    if (!is_get && !is_erase && strcmp(action, "store") != 0)
        return PO_OK;

    po_buf_init(&in, GIT_INPUT_MAX, 1);
    if ((rc = read_request(&in, err)) != PO_OK)
        goto out;
    if (in.data == NULL && (rc = po_buf_puts(&in, "")) != PO_OK) {
        rc = po_fail(err, rc, "out of memory");
        goto out;
    }
    if ((rc = parse_request(&in, &g, err)) != PO_OK)
        goto out;
    if (!is_get && !is_erase)
        goto out; /* store: the helper owns the token, nothing to keep */
    if ((rc = check_request(&g, &u, err)) != PO_OK ||
        (rc = ot_load_config(c, err)) != PO_OK)
        goto out;
    rc = choose_profile(c, &g, &u, is_erase, err);
    if (rc == PO_NOT_FOUND && is_erase) {
        rc = PO_OK; /* not one of ours: nothing to erase */
        goto out;
    }
    if (rc != PO_OK)
        goto out;
    rc = is_get ? git_get(c, &g, err) : git_erase(c, &g, err);
out:
    po_buf_free(&in);
    return rc;
}
