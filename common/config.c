/*
 * config.c - configuration files: reading, parsing into profiles, checking
 * a file for check-config, and the default search list.  The option table
 * is in options.c, validation in validate.c, secret loading in
 * secretsrc.c.
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_impl.h"
#include "secret.h"
#include "util.h"

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

/* Under PO_CFG_STRICT_OWNER the directories that hold the file follow
 * sshd's StrictModes: whoever may write one of them may replace the file. */
static po_rc check_dirs(const char *path, po_err *err)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL   ? po_strdup(".")
                : slash == path ? po_strdup("/")
                                : po_strndup(path, (size_t)(slash - path));
    po_err why;
    po_rc rc = PO_OK;

    po_err_clear(&why);
    if (dir == NULL)
        return po_fail(err, PO_NOMEM, "%s: out of memory", path);
    if (po_check_dir_chain(dir, geteuid(), &why) != PO_OK)
        rc = po_fail(err, PO_CONFIG,
                     "%s: refused: %s; the directories holding the "
                     "configuration must belong to root (or uid %lu) and be "
                     "writable by no one else, as sshd's StrictModes wants "
                     "(chmod go-w, or move the file)",
                     path, why.msg, (unsigned long)geteuid());
    free(dir);
    return rc;
}

/* What a file's owner and mode, and its directories, must be under
 * PO_CFG_STRICT_OWNER. */
static po_rc check_owner(const char *path, const struct stat *st,
                         unsigned flags, po_err *err)
{
    po_rc rc;

    if (!(flags & PO_CFG_STRICT_OWNER))
        return PO_OK;
    if ((rc = check_dirs(path, err)) != PO_OK)
        return rc;
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
    po_cfg_reporter *rep; /* NULL: stop at the first problem             */
    long cur;             /* index of the current profile, -1 before any */
    int skip;             /* after a bad section header: ignore its keys */
} parser;

/* A double-quoted value, unescaped in place.  Messages never show it. */
static po_rc unquote(char *v, const char *where, const char *key, po_err *err)
{
    char *r = v + 1, *w = v;

    for (;;) {
        if (*r == '\0')
            return po_fail(err, PO_CONFIG,
                           "%s: key '%.64s': unterminated quoted value (no "
                           "closing '\"')",
                           where, po_cfg_shown(key));
        if (*r == '"')
            break;
        if (*r == '\\') {
            r++;
            if (*r == '\0')
                continue; /* reported as unterminated */
            if (*r != '"' && *r != '\\')
                return po_fail(err, PO_CONFIG,
                               "%s: key '%.64s': in a quoted value a "
                               "backslash must be followed by '\"' or '\\'",
                               where, po_cfg_shown(key));
        }
        *w++ = *r++;
    }
    for (r++; po_cfg_is_space(*r); r++)
        ;
    if (*r != '\0')
        return po_fail(err, PO_CONFIG,
                       "%s: key '%.64s': text after the closing quote", where,
                       po_cfg_shown(key));
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
    if (*po_cfg_trim(close + 1) != '\0')
        return po_fail(err, PO_CONFIG, "%s: text after ']' in a section header",
                       where);
    *close = '\0';
    name = po_cfg_trim(s + 1);
    if (!po_cfg_profile_name_ok(name))
        return po_fail(err, PO_CONFIG,
                       "%s: bad profile name '%.64s': use 1 to %d of A-Z a-z "
                       "0-9 _ . - not starting with '.'",
                       where, po_cfg_shown(name), PO_PROFILE_NAME_MAX);
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
    char *s = po_cfg_trim(line), *eq, *key, *value;
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
    key = po_cfg_trim(s);
    value = po_cfg_trim(eq + 1);
    if (*key == '\0')
        return po_fail(err, PO_CONFIG, "%s: no key before '='", where);
    if (ps->skip)
        return PO_OK;
    if (ps->cur < 0)
        return po_fail(err, PO_CONFIG,
                       "%s: key '%.64s': set before any [profile] section",
                       where, po_cfg_shown(key));
    if (*value == '"' && (rc = unquote(value, where, key, err)) != PO_OK)
        return rc;
    if (strcmp(key, "client_secret") == 0 && *value != '\0' && (ps->mode & 077))
        return po_fail(err, PO_CONFIG,
                       "%s: client_secret is set but %s is %s (mode %04o); "
                       "run chmod 600 %s or use "
                       "client_secret_file/client_secret_command",
                       where, ps->path, po_cfg_exposure(ps->mode),
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
        if ((rc = po_cfg_report(ps->rep, rc, err)) != PO_OK)
            goto out;
    }
out:
    free(where);
    return rc;
}

/* Parse buf (len bytes, NUL-terminated, modified in place), the contents
 * of the file name of mode mode, into cfg: through a copy of cfg that
 * replaces it on success, so that on error cfg keeps what it had. */
static po_rc load_text(po_config *cfg, const char *name, mode_t mode, char *buf,
                       size_t len, po_err *err)
{
    po_rc rc = PO_OK;
    po_config tmp;
    parser ps;

    po_config_init(&tmp);
    if ((rc = config_copy(&tmp, cfg, err)) != PO_OK)
        goto out;
    ps = (parser){name, mode, &tmp, NULL, -1, 0};
    if ((rc = parse_text(&ps, buf, len, err)) != PO_OK)
        goto out;
    po_config_free(cfg);
    *cfg = tmp;
    po_config_init(&tmp);
out:
    po_config_free(&tmp);
    return rc;
}

/* A NUL-terminated private copy of text for the parser, which writes into
 * it; the caller cleanses and frees it (len + 1 bytes). */
static po_rc text_copy(const char *name, const char *text, size_t len,
                       char **out, po_err *err)
{
    if ((*out = malloc(len + 1)) == NULL)
        return po_fail(err, PO_NOMEM, "%s: out of memory", name);
    if (len > 0)
        memcpy(*out, text, len);
    (*out)[len] = '\0';
    return PO_OK;
}

static void text_free(char *buf, size_t len)
{
    if (buf != NULL) {
        po_cleanse(buf, len);
        free(buf);
    }
}

po_rc po_config_load_buffer(po_config *cfg, const char *name, mode_t mode,
                            const char *text, size_t len, po_err *err)
{
    po_rc rc = PO_OK;
    char *buf = NULL;

    if (cfg == NULL || name == NULL || (text == NULL && len > 0)) {
        rc = po_fail(err, PO_USAGE, "no configuration, name or text");
        goto out;
    }
    if (len > PO_CONFIG_FILE_MAX) {
        rc = po_fail(err, PO_TOO_LARGE, "%s: larger than %d bytes", name,
                     PO_CONFIG_FILE_MAX);
        goto out;
    }
    if ((rc = text_copy(name, text, len, &buf, err)) != PO_OK)
        goto out;
    rc = load_text(cfg, name, mode, buf, len, err);
out:
    text_free(buf, len + 1);
    return rc;
}

po_rc po_config_load_file(po_config *cfg, const char *path, unsigned flags,
                          po_err *err)
{
    po_rc rc = PO_OK;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;

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
    if (rc != PO_OK || (rc = check_owner(path, &st, flags, err)) != PO_OK)
        goto out;
    rc = load_text(cfg, path, st.st_mode, buf, len, err);
out:
    text_free(buf, len);
    return rc;
}

/* The reporting part of po_config_check and po_config_check_buffer:
 * parse buf (as load_text) into a scratch configuration, then validate
 * every profile (as pam_oauth does with PO_CFG_PAM_RULES in flags), each
 * problem through rep. */
static po_rc check_text(const char *name, mode_t mode, unsigned flags,
                        char *buf, size_t len, po_cfg_reporter *rep,
                        po_err *err)
{
    po_rc rc = PO_OK;
    po_config cfg;
    parser ps;
    size_t i;

    po_config_init(&cfg);
    ps = (parser){name, mode, &cfg, rep, -1, 0};
    if ((rc = parse_text(&ps, buf, len, err)) != PO_OK)
        goto out;
    for (i = 0; i < cfg.nprofiles; i++)
        if ((rc = (flags & PO_CFG_PAM_RULES)
                      ? po_cfg_validate_pam(&cfg.profiles[i], rep, err)
                      : po_cfg_validate(&cfg.profiles[i], rep, err)) != PO_OK)
            goto out;
out:
    po_config_free(&cfg);
    return rc;
}

po_rc po_config_check_buffer(const char *name, mode_t mode, unsigned flags,
                             const char *text, size_t len, po_diag_fn diag,
                             void *ctx)
{
    po_rc rc = PO_OK;
    po_cfg_reporter rep = {diag, ctx, PO_OK};
    po_err err;
    char *buf = NULL;

    po_err_clear(&err);
    if (name == NULL || (text == NULL && len > 0)) {
        rc = po_cfg_report(&rep, po_fail(&err, PO_USAGE, "no name or text"),
                           &err);
        goto out;
    }
    if (len > PO_CONFIG_FILE_MAX) {
        rc = po_cfg_report(&rep,
                           po_fail(&err, PO_TOO_LARGE,
                                   "%s: larger than %d bytes", name,
                                   PO_CONFIG_FILE_MAX),
                           &err);
        goto out;
    }
    if ((rc = text_copy(name, text, len, &buf, &err)) != PO_OK)
        goto out;
    rc = check_text(name, mode, flags, buf, len, &rep, &err);
out:
    if (rc == PO_NOMEM && diag != NULL)
        diag(ctx, err.msg);
    text_free(buf, len + 1);
    return rc != PO_OK ? rc : rep.first;
}

po_rc po_config_check(const char *path, unsigned flags, po_diag_fn diag,
                      void *ctx)
{
    po_rc rc = PO_OK;
    po_cfg_reporter rep = {diag, ctx, PO_OK};
    struct stat st;
    po_err err;
    char *buf = NULL;
    size_t len = 0;

    po_err_clear(&err);
    if (path == NULL) {
        rc = po_cfg_report(&rep, po_fail(&err, PO_USAGE, "no path"), &err);
        goto out;
    }
    rc = po_read_file(path, PO_CONFIG_FILE_MAX, 1, &buf, &len, &st, &err);
    if (rc == PO_NOT_FOUND && (flags & PO_CFG_MISSING_OK)) {
        rc = PO_OK;
        goto out;
    }
    if (rc != PO_OK) {
        rc = po_cfg_report(&rep, rc, &err);
        goto out;
    }
    if ((rc = po_cfg_report(&rep, check_owner(path, &st, flags, &err), &err)) !=
        PO_OK)
        goto out;
    rc = check_text(path, st.st_mode, flags, buf, len, &rep, &err);
out:
    if (rc == PO_NOMEM && diag != NULL)
        diag(ctx, err.msg);
    text_free(buf, len);
    return rc != PO_OK ? rc : rep.first;
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
            if ((v[1] = po_concat3(xdg, "/", PO_USER_CONFIG_REL)) == NULL)
                goto nomem;
        } else if (po_home_dir(&home, NULL) == PO_OK) {
            /* no home directory: no user file */
            if ((v[1] = po_concat3(home, "/.config/", PO_USER_CONFIG_REL)) ==
                NULL)
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
