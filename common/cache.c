/* cache.c - the per-user token cache: where it lives, reading it without
 * trusting it, atomic writes, the lock, and writing as another user. */
#define _GNU_SOURCE /* asprintf */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "jsonsec.h"
#include "proc.h"
#include "secret.h"
#include "util.h"

#define CACHE_VERSION 1
/* A child writing a user's cache gets the lock bound plus this long for
 * the directory, the read, the write and the fsyncs. */
#define CHILD_IO_MS 10000L

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

/* A profile name becomes part of a file name: refuse anything that could
 * leave the directory (config.c validates names; this is the backstop). */
static po_rc check_name(const po_profile *p, po_err *err)
{
    if (p == NULL || p->name == NULL || p->name[0] == '\0' ||
        p->name[0] == '.' || strchr(p->name, '/') != NULL ||
        strlen(p->name) > PO_PROFILE_NAME_MAX)
        return po_fail(err, PO_USAGE,
                       "invalid profile name for the token "
                       "cache");
    return PO_OK;
}

/* dir + "/" + name + suffix, malloc'd. */
static po_rc join(const char *dir, const char *name, const char *suffix,
                  char **out, po_err *err)
{
    size_t dl = strlen(dir);

    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if (asprintf(out, "%.*s/%s%s", (int)dl, dir, name, suffix) < 0) {
        *out = NULL;
        return po_fail(err, PO_NOMEM, "out of memory");
    }
    return PO_OK;
}

/* A copy of dir without trailing slashes (a trailing slash would make
 * O_NOFOLLOW follow a symlink). */
static po_rc dir_copy(const char *dir, char **out, po_err *err)
{
    size_t dl;

    if (dir == NULL || dir[0] == '\0')
        return po_fail(err, PO_USAGE, "empty token cache directory");
    dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if ((*out = po_strndup(dir, dl)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

void po_cache_entry_free(po_cache_entry *e)
{
    if (e == NULL)
        return;
    po_token_free(&e->token);
    free(e->username);
    memset(e, 0, sizeof(*e));
}

po_rc po_cache_file(const char *dir, const po_profile *p, char **out,
                    po_err *err)
{
    po_rc rc;

    *out = NULL;
    if ((rc = check_name(p, err)) != PO_OK)
        return rc;
    return join(dir, p->name, ".json", out, err);
}

/* ------------------------------------------------------------------ */
/* locations                                                           */

/* A user name becomes a directory name: it must be one path component
 * that names no other directory.  Names from NSS can hold anything. */
static po_rc check_user_component(const char *tmpl, const char *user,
                                  po_err *err)
{
    const char *why = NULL;
    char shown[80];
    size_t i;

    if (user[0] == '\0')
        why = "it is empty";
    else if (strcmp(user, ".") == 0 || strcmp(user, "..") == 0)
        why = "it is '.' or '..'";
    else if (strchr(user, '/') != NULL)
        why = "it contains '/'";
    for (i = 0; why == NULL && user[i] != '\0'; i++)
        if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
            why = "it contains a control character";
    if (why == NULL)
        return PO_OK;
    po_safe_text(user, shown, sizeof(shown));
    return po_fail(err, PO_CONFIG,
                   "cache_dir '%s': user name \"%s\" cannot be used as a "
                   "directory name (%s); refused",
                   tmpl, shown, why);
}

/* Expand %u (user), %U (uid), %h (home) and %% in tmpl. */
static po_rc expand_dir(const char *tmpl, const char *user, uid_t uid,
                        const char *home, char **out, po_err *err)
{
    po_rc rc = PO_OK;
    po_buf b;
    const char *s;

    *out = NULL;
    po_buf_init(&b, 4096, 0);
    for (s = tmpl; *s != '\0'; s++) {
        if (*s != '%') {
            rc = po_buf_append(&b, s, 1);
        } else if (s[1] == 'u' && user != NULL) {
            if ((rc = check_user_component(tmpl, user, err)) != PO_OK)
                goto out;
            rc = po_buf_puts(&b, user);
            s++;
        } else if (s[1] == 'U') {
            rc = po_buf_printf(&b, "%lu", (unsigned long)uid);
            s++;
        } else if (s[1] == 'h' && home != NULL) {
            rc = po_buf_puts(&b, home);
            s++;
        } else if (s[1] == '%') {
            rc = po_buf_append(&b, "%", 1);
            s++;
        } else {
            rc = po_fail(err, PO_CONFIG,
                         "cache_dir '%s': '%%%c' cannot be expanded (use %%u, "
                         "%%U, %%h or %%%%)",
                         tmpl, s[1] ? s[1] : ' ');
            goto out;
        }
        if (rc == PO_NOMEM) {
            rc = po_fail(err, rc, "cache_dir '%s': out of memory", tmpl);
            goto out;
        }
        if (rc != PO_OK) {
            rc = po_fail(err, rc, "cache_dir '%s': expansion too long", tmpl);
            goto out;
        }
    }
    if ((rc = po_buf_detach(&b, out)) != PO_OK) {
        rc = po_fail(err, rc, "out of memory");
        goto out;
    }
    if ((*out)[0] != '/') {
        rc = po_fail(err, PO_CONFIG, "cache_dir '%s' is not an absolute path",
                     tmpl);
        free(*out);
        *out = NULL;
        goto out;
    }
out:
    po_buf_free(&b);
    return rc;
}

/* An absolute path from the environment, or NULL (relative paths are
 * ignored, as the XDG base directory specification says). */
static const char *env_dir(const char *name)
{
    const char *v = po_secure_getenv(name);

    return v != NULL && v[0] == '/' ? v : NULL;
}

po_rc po_cache_dir(const po_profile *p, char **out, po_err *err)
{
    po_rc rc = PO_OK;
    struct passwd pw, *res = NULL;
    char pwbuf[4096];
    const char *user = NULL, *v;
    char *home = NULL;

    *out = NULL;
    if (p != NULL && p->cache_dir != NULL && p->cache_dir[0] != '\0') {
        if (strstr(p->cache_dir, "%u") != NULL) {
            if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
                res == NULL) {
                rc = po_fail(err, PO_IO,
                             "cache_dir '%s': no user name for uid %lu",
                             p->cache_dir, (unsigned long)geteuid());
                goto out;
            }
            user = pw.pw_name;
        }
        if (strstr(p->cache_dir, "%h") != NULL &&
            (rc = po_home_dir(&home, err)) != PO_OK)
            goto out;
        rc = expand_dir(p->cache_dir, user, geteuid(), home, out, err);
        goto out;
    }
    if ((v = env_dir("OAUTH_TOKEN_CACHE_DIR")) != NULL) {
        if ((*out = po_strdup(v)) == NULL)
            rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if ((v = env_dir("XDG_RUNTIME_DIR")) != NULL) {
        rc = join(v, "pam-oauth", "", out, err);
        goto out;
    }
    if ((v = env_dir("XDG_CACHE_HOME")) != NULL) {
        rc = join(v, "pam-oauth", "", out, err);
        goto out;
    }
    if ((rc = po_home_dir(&home, err)) != PO_OK)
        goto out;
    rc = join(home, ".cache/pam-oauth", "", out, err);
out:
    free(home);
    return rc;
}

po_rc po_cache_user_dir(const po_profile *p, const po_user *u, char **out,
                        po_err *err)
{
    char run[64];
    struct stat st;

    *out = NULL;
    if (p != NULL && p->cache_dir != NULL && p->cache_dir[0] != '\0')
        return expand_dir(p->cache_dir, u->name, u->uid, u->home, out, err);
    (void)snprintf(run, sizeof(run), "/run/user/%lu", (unsigned long)u->uid);
    if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == u->uid)
        return join(run, "pam-oauth", "", out, err);
    if (u->home == NULL || u->home[0] != '/')
        return po_fail(err, PO_IO,
                       "no token cache directory for user %s: no %s and no "
                       "absolute home directory",
                       u->name != NULL ? u->name : "?", run);
    return join(u->home, ".cache/pam-oauth", "", out, err);
}

/* ------------------------------------------------------------------ */
/* the directory                                                       */

/* Open dir (no symlink as its last component) and check that it is a
 * directory owned by uid and not writable by group or others.  *dfd is
 * set on PO_OK.  PO_NOT_FOUND when it does not exist. */
static po_rc open_dir_checked(const char *dir, uid_t uid, int *dfd, po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    int fd = -1, e;

    *dfd = -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        e = errno;
        if (e == ENOENT)
            rc = po_fail(err, PO_NOT_FOUND, "cache directory %s does not exist",
                         dir);
        else if (e == ELOOP || (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)))
            rc = po_fail(err, PO_IO,
                         "cache directory %s is a symbolic link; refusing to "
                         "use it",
                         dir);
        else if (e == ENOTDIR)
            rc = po_fail(err, PO_IO,
                         "cache directory %s is not a directory; refusing to "
                         "use it",
                         dir);
        else
            rc = po_fail(err, PO_IO, "cannot open cache directory %s: %s", dir,
                         strerror(e));
        goto out;
    }
    if (fstat(fd, &st) == -1) {
        rc = po_fail(err, PO_IO, "cannot stat cache directory %s: %s", dir,
                     strerror(errno));
        goto out;
    }
    if (st.st_uid != uid) {
        rc = po_fail(err, PO_IO,
                     "cache directory %s is owned by uid %lu, not %lu; "
                     "refusing to use it",
                     dir, (unsigned long)st.st_uid, (unsigned long)uid);
        goto out;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        rc = po_fail(err, PO_IO,
                     "cache directory %s is writable by others (mode %04o); "
                     "refusing to use it",
                     dir, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    *dfd = fd;
    fd = -1;
out:
    if (fd != -1)
        close(fd);
    return rc;
}

/* Create the missing components of dir (0700), then check it. */
static po_rc ensure_dir_uid(const char *dir, uid_t uid, po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    char *path = NULL, *s;
    int dfd = -1;

    if ((rc = dir_copy(dir, &path, err)) != PO_OK)
        goto out;
    if (lstat(path, &st) == -1 && errno == ENOENT) {
        /* Walk forward: keep what exists, create what does not. */
        for (s = path + 1;; s++) {
            if (*s != '/' && *s != '\0')
                continue;
            char c = *s;
            *s = '\0';
            if (lstat(path, &st) == -1) {
                if (errno != ENOENT) {
                    rc = po_fail(err, PO_IO,
                                 "cannot create cache directory %s: %s: %s",
                                 dir, path, strerror(errno));
                    goto out;
                }
                if (mkdir(path, 0700) == -1 && errno != EEXIST) {
                    rc = po_fail(err, PO_IO,
                                 "cannot create cache directory %s: mkdir "
                                 "%s: %s",
                                 dir, path, strerror(errno));
                    goto out;
                }
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    rc = open_dir_checked(path, uid, &dfd, err);
out:
    if (dfd != -1)
        close(dfd);
    free(path);
    return rc;
}

po_rc po_cache_ensure_dir(const char *dir, po_err *err)
{
    return ensure_dir_uid(dir, geteuid(), err);
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

/* Optional string member key of o into *dst (NULL when absent or null).
 * PO_IO with the reason when it has another type. */
static po_rc get_str(json_object *o, const char *key, char **dst, po_err *err)
{
    json_object *v;

    *dst = NULL;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return PO_OK;
    if (!json_object_is_type(v, json_type_string))
        return po_fail(err, PO_IO, "\"%s\" is not a string", key);
    if ((*dst = po_strndup(json_object_get_string(v),
                           (size_t)json_object_get_string_len(v))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

static po_rc get_i64(json_object *o, const char *key, int64_t *dst, po_err *err)
{
    json_object *v;

    *dst = 0;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return PO_OK;
    if (!json_object_is_type(v, json_type_int))
        return po_fail(err, PO_IO, "\"%s\" is not an integer", key);
    *dst = json_object_get_int64(v);
    return PO_OK;
}

/* Do a and b (both may be NULL) hold the same string? */
static int same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* "YYYY-MM" with a month 01..12. */
/* Why the token's times in t cannot be believed at wall time now, into
 * why (size n); 0 when they can.  No arithmetic here can overflow:
 * obtained_at is bounded before anything is added to it. */
static int times_insane(const po_token *t, int64_t now, char *why, size_t n)
{
    if (t->obtained_at < PO_CACHE_TIME_MIN) {
        (void)snprintf(why, n, "obtained_at %" PRId64 " is before 2000",
                       t->obtained_at);
        return 1;
    }
    if (now < INT64_MAX - PO_CACHE_CLOCK_SKEW &&
        t->obtained_at > now + PO_CACHE_CLOCK_SKEW) {
        (void)snprintf(why, n,
                       "obtained_at is %" PRId64 " s in the future (more than "
                       "the %d s of clock skew allowed)",
                       t->obtained_at - now, PO_CACHE_CLOCK_SKEW);
        return 1;
    }
    if (t->expires_at <= t->obtained_at ||
        t->expires_at > t->obtained_at + PO_TOKEN_LIFETIME_MAX) {
        (void)snprintf(why, n,
                       "expires_at %" PRId64 " is not between 1 s and 10 "
                       "years after obtained_at %" PRId64,
                       t->expires_at, t->obtained_at);
        return 1;
    }
    return 0;
}

/* The renewal note o (an object) into r, or why it cannot be believed at
 * now into why (size n), returning -1 (r is then cleared). */
static int decode_renewal(json_object *o, int64_t now, po_renewal *r, char *why,
                          size_t n)
{
    json_object *v;
    int64_t failures = 0;
    const char *outcome = NULL, *msg = "";

    memset(r, 0, sizeof(*r));
    if (get_i64(o, "failed_at", &r->failed_at, NULL) != PO_OK ||
        get_i64(o, "after", &r->after, NULL) != PO_OK ||
        get_i64(o, "failures", &failures, NULL) != PO_OK)
        goto bad_type;
    if (json_object_object_get_ex(o, "outcome", &v) &&
        json_object_is_type(v, json_type_string))
        outcome = json_object_get_string(v);
    if (json_object_object_get_ex(o, "message", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string))
            goto bad_type;
        msg = json_object_get_string(v);
    }
    r->rc = po_rc_from_name(outcome);
    if (r->failed_at < PO_CACHE_TIME_MIN ||
        (now < INT64_MAX - PO_CACHE_CLOCK_SKEW &&
         r->failed_at > now + PO_CACHE_CLOCK_SKEW) ||
        r->after < r->failed_at ||
        r->after > r->failed_at + PO_CACHE_RENEWAL_WAIT_MAX) {
        (void)snprintf(why, n, "its times are not sane");
        goto bad;
    }
    if (failures < 1 || failures > 1000000000L) {
        (void)snprintf(why, n, "\"failures\" is out of range");
        goto bad;
    }
    if (!po_rc_unavailable(r->rc)) {
        (void)snprintf(why, n, "\"outcome\" is not a known unavailable one");
        goto bad;
    }
    r->failures = (long)failures;
    po_safe_text(msg, r->msg, sizeof(r->msg));
    return 0;
bad_type:
    (void)snprintf(why, n, "a member has the wrong type");
bad:
    memset(r, 0, sizeof(*r));
    return -1;
}

/* Fill e from the parsed object o.  PO_IO (with the reason) when a member
 * has the wrong type or the version is unknown.  A token with times not to
 * be believed at now is dropped here, with a warning, and so is a renewal
 * note that makes no sense. */
static po_rc decode_entry(json_object *o, const po_profile *p, const char *path,
                          int64_t now, const po_log *log, po_cache_entry *e,
                          po_err *err)
{
    char why[160];
    po_rc rc = PO_OK;
    json_object *v;
    int64_t n;
    char *month = NULL, *url = NULL, *client = NULL;

    if (!json_object_is_type(o, json_type_object)) {
        rc = po_fail(err, PO_IO, "not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(o, "version", &v) ||
        !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != CACHE_VERSION) {
        rc = po_fail(err, PO_IO, "\"version\" is missing or not %d",
                     CACHE_VERSION);
        goto out;
    }
    if ((rc = get_str(o, "access_token", &e->token.access_token, err)) ||
        (rc = get_str(o, "refresh_token", &e->token.refresh_token, err)) ||
        (rc = get_str(o, "token_type", &e->token.token_type, err)) ||
        (rc = get_str(o, "scope", &e->token.scope, err)) ||
        (rc = get_str(o, "id_token", &e->token.id_token, err)) ||
        (rc = get_str(o, "username", &e->username, err)) ||
        (rc = get_str(o, "budget_month", &month, err)) ||
        (rc = get_str(o, "token_url", &url, err)) ||
        (rc = get_str(o, "client_id", &client, err)) ||
        (rc = get_i64(o, "obtained_at", &e->token.obtained_at, err)) ||
        (rc = get_i64(o, "expires_at", &e->token.expires_at, err)) ||
        (rc = get_i64(o, "budget_count", &n, err)))
        goto out;
    if (n < 0 || n > 1000000000L) {
        rc = po_fail(err, PO_IO, "\"budget_count\" is out of range");
        goto out;
    }
    e->budget_count = (long)n;
    if (month != NULL) {
        if (!po_is_month(month, strlen(month))) {
            rc = po_fail(err, PO_IO, "\"budget_month\" is not YYYY-MM");
            goto out;
        }
        memcpy(e->budget_month, month, 8);
    }
    if (json_object_object_get_ex(o, "has_expires_in", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_boolean)) {
            rc = po_fail(err, PO_IO, "\"has_expires_in\" is not a boolean");
            goto out;
        }
        e->token.has_expires_in = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(o, "stored_by", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string)) {
            rc = po_fail(err, PO_IO, "\"stored_by\" is not a string");
            goto out;
        }
        e->from_pam = strcmp(json_object_get_string(v), "pam_oauth") == 0;
    }
    if (json_object_object_get_ex(o, "extra", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_object)) {
            rc = po_fail(err, PO_IO, "\"extra\" is not an object");
            goto out;
        }
        e->token.extra_json = po_strdup(json_object_to_json_string_ext(
            v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (e->token.extra_json == NULL) {
            rc = po_fail(err, PO_NOMEM, "out of memory");
            goto out;
        }
    }
    /* A token is only used by the endpoint and client it was issued by,
     * and only with times that make sense (a forged or damaged entry must
     * not be served as fresh for ever); the budget counter is kept either
     * way. */
    if (json_object_object_get_ex(o, "renewal", &v) && v != NULL &&
        (!json_object_is_type(v, json_type_object) ||
         decode_renewal(v, now, &e->renewal, why, sizeof(why)) != 0))
        po_logf(
            log, LOG_WARNING,
            "token cache %s: the note of a failed renewal is ignored: %s", path,
            json_object_is_type(v, json_type_object) ? why : "not an object");
    if ((e->token.access_token != NULL || e->token.refresh_token != NULL) &&
        times_insane(&e->token, now, why, sizeof(why))) {
        po_logf(log, LOG_WARNING,
                "token cache %s: the cached token is not used: %s; fetching "
                "a new token",
                path, why);
        po_token_free(&e->token);
        free(e->username);
        e->username = NULL;
    }
    if (e->token.access_token != NULL || e->token.refresh_token != NULL) {
        if (!same_str(url, p->token_url) || !same_str(client, p->client_id)) {
            po_logf(log, LOG_INFO,
                    "token cache %s holds a token for another token_url or "
                    "client_id; not using it",
                    path);
            po_token_free(&e->token);
            free(e->username);
            e->username = NULL;
            e->from_pam = 0;
        }
    }
out:
    free(month);
    free(url);
    free(client);
    return rc;
}

/* Read and check p's entry file in dir (po_file_read_at: no link, owned by
 * uid, 0600, capped); on PO_IO, err holds the reason it is unusable (the
 * caller logs it); a missing file or directory is PO_NOT_FOUND. */
static po_rc load_file(const char *dir, const po_profile *p, uid_t uid,
                       char **out, size_t *len, po_err *err)
{
    po_rc rc = PO_OK;
    char *d = NULL, *name = NULL;
    int dfd = -1;

    *out = NULL;
    *len = 0;
    /* without trailing slashes, which would make O_NOFOLLOW follow a link */
    if ((rc = dir_copy(dir, &d, err)) != PO_OK)
        goto out;
    if ((dfd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) ==
        -1) {
        rc = errno == ENOENT
                 ? po_fail(err, PO_NOT_FOUND, "no file")
                 : po_fail(err, PO_IO, "cannot open its directory: %s",
                           strerror(errno));
        goto out;
    }
    if ((name = po_concat3(p->name, ".json", "")) == NULL)
        rc = po_fail(err, PO_NOMEM, "out of memory");
    else
        rc = po_file_read_at(dfd, name, uid, PO_CACHE_FILE_MAX, out, len, err);
out:
    if (dfd != -1)
        close(dfd);
    free(name);
    free(d);
    return rc;
}

/* Parse text into e; PO_IO with the reason when it is not a usable entry. */
static po_rc parse_entry(const char *text, size_t len, const po_profile *p,
                         const char *path, int64_t now, const po_log *log,
                         po_cache_entry *e, po_err *err)
{
    json_object *o = NULL;
    po_err why;
    po_rc rc = PO_OK;

    po_err_clear(&why);
    if (len == 0) {
        rc = po_fail(err, PO_IO, "empty file");
        goto out;
    }
    if (len > (size_t)PO_CACHE_FILE_MAX) {
        rc = po_fail(err, PO_IO, "larger than %d bytes", PO_CACHE_FILE_MAX);
        goto out;
    }
    if ((rc = po_json_parse_secret(text, len, 16, &o, &why)) != PO_OK) {
        rc = po_fail(err, rc == PO_NOMEM ? PO_NOMEM : PO_IO, "%s", why.msg);
        goto out;
    }
    rc = decode_entry(o, p, path, now, log, e, err);
out:
    po_json_put_secret(o);
    if (rc != PO_OK)
        po_cache_entry_free(e);
    return rc;
}

po_rc po_cache_entry_decode(const char *text, size_t len, const po_profile *p,
                            const char *what, int64_t now, const po_log *log,
                            po_cache_entry *out, po_err *err)
{
    memset(out, 0, sizeof(*out));
    return parse_entry(text, len, p, what, now, log, out, err);
}

static po_rc cache_read_uid_at(const char *dir, const po_profile *p, uid_t uid,
                               int64_t now, const po_log *log,
                               po_cache_entry *out, po_err *err)
{
    po_rc rc = PO_OK;
    po_err why;
    char *path = NULL, *text = NULL;
    size_t len = 0;

    memset(out, 0, sizeof(*out));
    po_err_clear(&why);
    if ((rc = po_cache_file(dir, p, &path, err)) != PO_OK)
        goto out;
    rc = load_file(dir, p, uid, &text, &len, &why);
    if (rc == PO_OK)
        rc = parse_entry(text, len, p, path, now, log, out, &why);
    if (rc == PO_NOT_FOUND) {
        rc = PO_OK;
    } else if (rc == PO_IO) {
        po_logf(log, LOG_WARNING,
                "token cache %s ignored: %s; fetching a new token", path,
                why.msg);
        rc = PO_OK;
    } else if (rc != PO_OK) {
        rc = po_fail(err, rc, "cannot read token cache %s: %s", path, why.msg);
    }
out:
    if (text != NULL) {
        po_cleanse(text, len);
        free(text);
    }
    free(path);
    return rc;
}

static po_rc cache_read_uid(const char *dir, const po_profile *p, uid_t uid,
                            const po_log *log, po_cache_entry *out, po_err *err)
{
    return cache_read_uid_at(dir, p, uid, (int64_t)time(NULL), log, out, err);
}

po_rc po_cache_read_at(const char *dir, const po_profile *p, int64_t now,
                       const po_log *log, po_cache_entry *out, po_err *err)
{
    return cache_read_uid_at(dir, p, geteuid(), now, log, out, err);
}

po_rc po_cache_read(const char *dir, const po_profile *p, const po_log *log,
                    po_cache_entry *out, po_err *err)
{
    return cache_read_uid(dir, p, geteuid(), log, out, err);
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

/* The extra members, re-serialised by json-c so that a malformed text can
 * never corrupt the file; "null" when there is none or it is not an
 * object. */
static po_rc put_extra(po_buf *b, const char *extra)
{
    json_object *o = NULL;
    po_rc rc;

    if ((rc = po_buf_puts(b, ",\"extra\":")) != PO_OK)
        return rc;
    if (extra != NULL)
        o = json_tokener_parse(extra);
    if (o == NULL || !json_object_is_type(o, json_type_object))
        rc = po_buf_puts(b, "null");
    else
        rc = po_buf_puts(
            b, json_object_to_json_string_ext(
                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    if (o != NULL)
        json_object_put(o);
    return rc;
}

/* The renewal note, when there is one. */
static po_rc put_renewal(po_buf *b, const po_renewal *r)
{
    po_rc rc;

    if (r->failed_at == 0)
        return PO_OK;
    if ((rc = po_buf_printf(b,
                            ",\"renewal\":{\"failed_at\":%" PRId64
                            ",\"after\":%" PRId64 ",\"failures\":%ld",
                            r->failed_at, r->after, r->failures)) ||
        (rc = po_json_member(b, "outcome", po_rc_name(r->rc))) ||
        (rc = po_json_member(b, "message", r->msg)))
        return rc;
    return po_buf_puts(b, "}");
}

/* The entry as JSON text, into the secret buffer b. */
static po_rc encode_entry(const po_profile *p, const po_cache_entry *e,
                          po_buf *b)
{
    const po_token *t = &e->token;
    po_rc rc;

    if ((rc = po_buf_printf(b, "{\"version\":%d", CACHE_VERSION)) ||
        (rc = po_json_member(b, "profile", p->name)) ||
        (rc = po_json_member(b, "token_url", p->token_url)) ||
        (rc = po_json_member(b, "client_id", p->client_id)) ||
        (rc = po_json_member(b, "username", e->username)) ||
        (rc = po_json_member(b, "access_token", t->access_token)) ||
        (rc = po_json_member(b, "token_type", t->token_type)) ||
        (rc = po_json_member(b, "refresh_token", t->refresh_token)) ||
        (rc = po_json_member(b, "scope", t->scope)) ||
        (rc = po_json_member(b, "id_token", t->id_token)) ||
        (rc = po_buf_printf(b,
                            ",\"obtained_at\":%" PRId64
                            ",\"expires_at\":%" PRId64 ",\"has_expires_in\":%s",
                            t->obtained_at, t->expires_at,
                            t->has_expires_in ? "true" : "false")) ||
        (rc = put_extra(b, t->extra_json)) ||
        (rc = po_json_member(b, "budget_month",
                             e->budget_month[0] ? e->budget_month : NULL)) ||
        (rc = po_buf_printf(b, ",\"budget_count\":%ld",
                            e->budget_count < 0 ? 0 : e->budget_count)) ||
        (rc = put_renewal(b, &e->renewal)) ||
        (e->from_pam &&
         (rc = po_buf_puts(b, ",\"stored_by\":\"pam_oauth\""))) ||
        (rc = po_buf_puts(b, "}\n")))
        return rc;
    return PO_OK;
}

po_rc po_cache_entry_encode(const po_profile *p, const po_cache_entry *e,
                            po_buf *out)
{
    return encode_entry(p, e, out);
}

/* Replace dir/name with data (po_file_replace_at: a temporary file
 * NAME.XXXXXX, fsync, rename, fsync of the directory). */
static po_rc write_atomic(const char *dir, const char *name, const char *data,
                          size_t len, po_err *err)
{
    po_rc rc = PO_OK;
    char *tmp = NULL;
    int dfd;

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd == -1)
        return po_fail(err, PO_IO, "cannot open cache directory %s: %s", dir,
                       strerror(errno));
    if ((tmp = po_concat3(name, ".", "")) == NULL)
        rc = po_fail(err, PO_NOMEM, "out of memory");
    else
        rc = po_file_replace_at(dfd, dir, name, tmp, data, len, err);
    free(tmp);
    close(dfd);
    return rc;
}

po_rc po_cache_write(const char *dir, const po_profile *p,
                     const po_cache_entry *e, po_err *err)
{
    po_rc rc = PO_OK;
    po_buf b;
    char *d = NULL, *name = NULL;

    po_buf_init(&b, PO_CACHE_FILE_MAX, 1);
    if ((rc = check_name(p, err)) != PO_OK ||
        (rc = dir_copy(dir, &d, err)) != PO_OK)
        goto out;
    if (asprintf(&name, "%s.json", p->name) < 0) {
        name = NULL;
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = encode_entry(p, e, &b)) != PO_OK) {
        rc = po_fail(err, rc,
                     "cannot write token cache %s/%s: the entry is larger "
                     "than %d bytes or out of memory",
                     d, name, PO_CACHE_FILE_MAX);
        goto out;
    }
    rc = write_atomic(d, name, b.data, b.len, err);
out:
    po_buf_free(&b);
    free(name);
    free(d);
    return rc;
}

po_rc po_cache_remove(const char *dir, const po_profile *p, po_err *err)
{
    po_rc rc = PO_OK;
    char *path = NULL;

    if ((rc = po_cache_file(dir, p, &path, err)) != PO_OK)
        goto out;
    if (unlink(path) == -1 && errno != ENOENT && errno != ENOTDIR)
        rc = po_fail(err, PO_IO, "cannot remove token cache %s: %s", path,
                     strerror(errno));
out:
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the lock                                                            */

po_rc po_cache_lock(const char *dir, const po_profile *p, long timeout_ms,
                    po_lock *out, po_err *err)
{
    po_rc rc = PO_OK;
    char *d = NULL, *lock = NULL, *tmp = NULL;
    po_flock lk = {-1};
    int dfd = -1;

    out->fd = -1;
    if ((rc = check_name(p, err)) != PO_OK ||
        (rc = dir_copy(dir, &d, err)) != PO_OK)
        goto out;
    if ((lock = po_concat3(p->name, ".lock", "")) == NULL ||
        (tmp = po_concat3(p->name, ".json.", "")) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    dfd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd == -1) {
        rc = po_fail(err, PO_IO, "cannot open token cache lock %s/%s: %s", d,
                     lock, strerror(errno));
        goto out;
    }
    rc = po_file_lock_at(dfd, d, lock, timeout_ms, &lk, err);
    if (rc == PO_LOCKED) {
        rc = po_fail(err, PO_LOCKED,
                     "token cache lock %s/%s is held by another process for "
                     "more than %ld ms (a stopped or hung oauth-token?)",
                     d, lock, timeout_ms < 0 ? 0 : timeout_ms);
        goto out;
    }
    if (rc != PO_OK)
        goto out;
    /* Under the lock no writer is active: temporary files of p's entry
     * still there were left by a writer that was killed. */
    po_file_remove_temps_at(dfd, tmp);
    out->fd = lk.fd;
out:
    if (dfd != -1)
        close(dfd);
    free(d);
    free(lock);
    free(tmp);
    return rc;
}

void po_cache_unlock(po_lock *l)
{
    if (l == NULL || l->fd == -1)
        return;
    (void)flock(l->fd, LOCK_UN);
    close(l->fd);
    l->fd = -1;
}

/* ------------------------------------------------------------------ */
/* acting as the user                                                  */

/* The user's own directory that p's cache_dir names: the expansion of the
 * template up to the end of the component holding its first %u or %U
 * ("/var/cache/pam-oauth/%u/x" -> "/var/cache/pam-oauth/alice"); NULL when
 * there is none (no cache_dir, or %h comes first: the home is the user's
 * already). */
static po_rc user_top_dir(const po_profile *p, const po_user *u, char **out,
                          po_err *err)
{
    const char *t = p->cache_dir, *s, *end;
    char *prefix = NULL;
    po_rc rc;

    *out = NULL;
    if (t == NULL || t[0] == '\0')
        return PO_OK;
    for (s = t; *s != '\0'; s++) {
        if (*s != '%')
            continue;
        if (s[1] == 'u' || s[1] == 'U')
            break;
        if (s[1] == 'h')
            return PO_OK;
        if (s[1] != '\0')
            s++;
    }
    if (*s == '\0')
        return PO_OK;
    end = strchr(s, '/');
    if ((prefix = po_strndup(t, end != NULL ? (size_t)(end - t) : strlen(t))) ==
        NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    rc = expand_dir(prefix, u->name, u->uid, u->home, out, err);
    free(prefix);
    return rc;
}

/* As root, before the child: make the user's own directory that p's
 * cache_dir names (user_top_dir) when it does not exist and the directory
 * it goes in, and every one above, is root's alone (po_check_dir_chain):
 * the user could not make it there.  mkdirat on that directory's
 * descriptor, then fchown and fchmod of the new directory opened without
 * following links, so nothing the user controls is touched as root.
 * When it is not made, why is left in hint (for the child's error). */
static po_rc make_user_top(const po_profile *p, const po_user *u,
                           const po_log *log, char *hint, size_t hintlen,
                           po_err *err)
{
    char *top = NULL, *base = NULL, *real = NULL, *name;
    po_rc rc = PO_OK;
    struct stat st;
    int dfd = -1, fd = -1;
    po_err why;

    hint[0] = '\0';
    po_err_clear(&why);
    if (geteuid() != 0 || (rc = user_top_dir(p, u, &top, err)) != PO_OK ||
        top == NULL || lstat(top, &st) == 0 || errno != ENOENT)
        goto out;
    if ((base = po_strdup(top)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    name = strrchr(base, '/');
    *name++ = '\0';
    if ((real = realpath(base[0] != '\0' ? base : "/", NULL)) == NULL) {
        (void)snprintf(hint, hintlen, "%s: %s", base, strerror(errno));
        goto out;
    }
    if (po_check_dir_chain(real, 0, &why) != PO_OK) {
        (void)snprintf(hint, hintlen,
                       "root makes a user's directory only where root alone "
                       "can write, and %s",
                       why.msg);
        goto out;
    }
    dfd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd == -1 || fstat(dfd, &st) == -1 || st.st_uid != 0 ||
        ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))) {
        (void)snprintf(hint, hintlen, "%s changed while it was checked", real);
        goto out;
    }
    if (mkdirat(dfd, name, 0700) == -1) {
        if (errno != EEXIST) /* EEXIST: another login made it; checked */
            rc = po_fail(err, PO_IO, "cannot create cache directory %s: %s",
                         top, strerror(errno));
        goto out;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1 || fchown(fd, u->uid, u->gid) == -1 ||
        fchmod(fd, 0700) == -1) {
        rc =
            po_fail(err, PO_IO, "cannot give cache directory %s to user %s: %s",
                    top, u->name, strerror(errno));
        goto out;
    }
    po_logf(log, LOG_INFO, "made cache directory %s for user %s (0700)", top,
            u->name);
out:
    if (fd != -1)
        close(fd);
    if (dfd != -1)
        close(dfd);
    free(real);
    free(base);
    free(top);
    return rc;
}

/* One job for the child that is the user. */
typedef struct user_job {
    const char *dir;
    const po_profile *p;
    const po_token *t;    /* store: the token             */
    const char *username; /* store: the IdP user, or NULL */
    uid_t uid;
} user_job;

/* In the child, as the user: the directory, the lock, the budget counter
 * kept, the token replaced, written atomically. */
static po_rc store_job(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    const user_job *j = ctx;
    po_rc rc = PO_OK;
    po_cache_entry e;
    po_lock lk = {-1};

    (void)out;
    memset(&e, 0, sizeof(e));
    if ((rc = ensure_dir_uid(j->dir, j->uid, err)) != PO_OK ||
        (rc = po_cache_lock(j->dir, j->p, j->p->lock_timeout_ms, &lk, err)) !=
            PO_OK ||
        (rc = cache_read_uid(j->dir, j->p, j->uid, log, &e, err)) != PO_OK)
        goto out;
    po_token_free(&e.token);
    free(e.username);
    e.username = NULL;
    if ((rc = po_token_copy(&e.token, j->t, err)) != PO_OK)
        goto out;
    if (j->username != NULL && (e.username = po_strdup(j->username)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    e.from_pam = 1; /* a session token: session-refresh may renew it */
    rc = po_cache_write(j->dir, j->p, &e, err);
out:
    po_cache_unlock(&lk);
    po_cache_entry_free(&e);
    return rc;
}

/* In the child, as the user: remove the entry under the lock. */
static po_rc remove_job(void *ctx, po_buf *out, const po_log *log, po_err *err)
{
    const user_job *j = ctx;
    po_lock lk = {-1};
    po_rc rc;
    int dfd = -1;

    (void)out;
    (void)log;
    rc = open_dir_checked(j->dir, j->uid, &dfd, err);
    if (rc == PO_NOT_FOUND) {
        po_err_clear(err);
        rc = PO_OK; /* nothing cached */
        goto out;
    }
    if (rc != PO_OK || (rc = po_cache_lock(j->dir, j->p, j->p->lock_timeout_ms,
                                           &lk, err)) != PO_OK)
        goto out;
    rc = po_cache_remove(j->dir, j->p, err);
out:
    if (dfd != -1)
        close(dfd);
    po_cache_unlock(&lk);
    return rc;
}

static long child_timeout(const po_profile *p)
{
    return (p->lock_timeout_ms > 0 ? p->lock_timeout_ms : 0) + CHILD_IO_MS;
}

po_rc po_cache_store_as(const po_profile *p, const po_user *u, const char *dir,
                        const po_token *t, const char *username,
                        const po_log *log, po_err *err)
{
    user_job j = {dir, p, t, username, u != NULL ? u->uid : 0};
    char hint[640], msg[sizeof(err->msg)];
    po_rc rc = PO_OK;

    hint[0] = '\0';
    if (t == NULL || t->access_token == NULL || u == NULL || dir == NULL) {
        rc = po_fail(err, PO_USAGE, "no token, user or directory to store");
        goto out;
    }
    if ((rc = check_name(p, err)) != PO_OK ||
        (rc = make_user_top(p, u, log, hint, sizeof(hint), err)) != PO_OK)
        goto out;
    rc = po_proc_run_as(u, child_timeout(p), store_job, &j, NULL, log, err);
    if (rc == PO_IO && hint[0] != '\0' && err != NULL) {
        (void)snprintf(msg, sizeof(msg), "%s", err->msg);
        rc = po_fail(err, rc, "%s (%s)", msg, hint);
    }
out:
    return rc;
}

po_rc po_cache_remove_as(const po_profile *p, const po_user *u, const char *dir,
                         const po_log *log, po_err *err)
{
    user_job j = {dir, p, NULL, NULL, u != NULL ? u->uid : 0};
    po_rc rc;

    if (u == NULL || dir == NULL)
        return po_fail(err, PO_USAGE, "no user or directory");
    if ((rc = check_name(p, err)) != PO_OK)
        return rc;
    return po_proc_run_as(u, child_timeout(p), remove_job, &j, NULL, log, err);
}
