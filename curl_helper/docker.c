/*
 * docker.c - docker-credential-oauth-token: the docker-credential-helpers
 * protocol (dockercred.h), for docker, podman, skopeo and the other OCI
 * clients.  In ~/.docker/config.json (or containers-auth.json):
 *
 *     { "credHelpers": { "registry.example.com": "oauth-token" } }
 *
 * get     the server URL (a registry host, "host:port", or a URL such as
 *         https://index.docker.io/v1/) picks the profile by the match key,
 *         with git's rule (po_url_choose_profile), after the same
 *         normalisation of both sides (urlmatch.h), so a token goes only
 *         to a registry its profile names; the answer is the profile's
 *         registry_username and the access token.  A server no profile
 *         names gets PO_DOCKER_NOT_FOUND: the client goes on without
 *         credentials.
 * store   the helper keeps no credentials: for a registry a profile names,
 *         credentials with the profile's registry_username are the
 *         helper's own (docker login stores back what get gave it) and are
 *         accepted without being kept; anything else is refused, so that
 *         a password is never silently dropped.
 * erase   drops the cached tokens of the profile (docker logout).
 * list    every match entry of every profile with its registry_username.
 * version the helper's version.
 */
#define _GNU_SOURCE
#include "helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dockercred.h"
#include "urlmatch.h"
#include "util.h"
#include "version.h"

#define DOCKER_OUT_MAX (1024 * 1024)
#define DOCKER_DEFAULT_USERNAME "oauth2accesstoken"

/* Read all of standard input (at most PO_DOCKER_INPUT_MAX bytes). */
static po_rc read_input(int secret, char **out, size_t *len, po_err *err)
{
    po_rc rc = po_read_fd(STDIN_FILENO, PO_DOCKER_INPUT_MAX + 1, secret, out,
                          len, err);

    if (rc == PO_OK && *len > PO_DOCKER_INPUT_MAX) {
        if (secret)
            po_cleanse(*out, *len);
        free(*out);
        *out = NULL;
        rc = po_fail(err, PO_USAGE, "the request is longer than %d bytes",
                     PO_DOCKER_INPUT_MAX);
    }
    return rc;
}

/* Strip white space at both ends of s, in place (the protocol's
 * strings.TrimSpace); returns the start. */
static char *trim(char *s)
{
    size_t n;

    s += strspn(s, " \t\r\n");
    n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
        s[--n] = '\0';
    return s;
}

/* The server URL as a po_url: a registry host ("host", "host:port") or
 * a URL ("https://index.docker.io/v1/"), https unless "http://" is
 * given.  Refused before it is normalised: control characters, spaces,
 * non-ASCII, userinfo, a query, a fragment, a backslash and schemes other
 * than http(s). */
static po_rc server_url(const char *url, po_url *u, po_err *err)
{
    const unsigned char *s;
    char *full = NULL;
    po_err e;
    po_rc rc;

    for (s = (const unsigned char *)url; *s != '\0'; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return po_fail(err, PO_USAGE,
                           "the server URL holds a space, control or "
                           "non-ASCII character");
    if (strpbrk(url, "?#@\\") != NULL)
        return po_fail(err, PO_USAGE,
                       "server URL '%.200s': a user name, query or fragment "
                       "is not allowed",
                       url);
    if (strncasecmp(url, "https://", 8) != 0 &&
        strncasecmp(url, "http://", 7) != 0 && strstr(url, "://") != NULL)
        return po_fail(err, PO_USAGE,
                       "server URL '%.200s': only https (and http to a "
                       "loopback host) is supported",
                       url);
    if (strstr(url, "://") == NULL && asprintf(&full, "https://%s", url) < 0)
        return po_fail(err, PO_NOMEM, "out of memory");
    po_err_clear(&e);
    rc = po_url_parse(full != NULL ? full : url, u, &e);
    free(full);
    if (rc != PO_OK)
        return po_fail(err, PO_USAGE, "server URL '%.200s': %s", url, e.msg);
    return PO_OK;
}

static const char *registry_user(const po_profile *p)
{
    return p->registry_username != NULL && p->registry_username[0] != '\0'
               ? p->registry_username
               : DOCKER_DEFAULT_USERNAME;
}

/* Select the profile for the server URL text by git's rule
 * (po_url_choose_profile): -p's profile must name the registry too. */
static po_rc select_for(ot_ctx *c, const char *url, po_err *err)
{
    const po_profile *chosen = NULL, *named = NULL;
    po_url *u;
    po_rc rc;

    if (url[0] == '\0')
        return po_fail(err, PO_USAGE, "%s", PO_DOCKER_NO_SERVER);
    if ((u = malloc(sizeof(*u))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    if ((rc = server_url(url, u, err)) != PO_OK ||
        (rc = ot_load_config(c, err)) != PO_OK)
        goto out;
    if (c->opts.profile != NULL) {
        if ((rc = ot_select_profile(c, c->opts.profile, err)) != PO_OK)
            goto out;
        named = c->profile;
    }
    if ((rc = po_url_choose_profile(&c->cfg, named, u, url, &chosen, err)) ==
            PO_OK &&
        named == NULL)
        rc = ot_select_profile(c, chosen->name, err);
out:
    free(u);
    return rc;
}

static po_rc docker_get(ot_ctx *c, po_err *err)
{
    char *in = NULL, *url;
    size_t len = 0;
    po_token t;
    po_buf b;
    po_rc rc;

    memset(&t, 0, sizeof(t));
    po_buf_init(&b, DOCKER_OUT_MAX, 1);
    if ((rc = read_input(0, &in, &len, err)) != PO_OK)
        goto out;
    url = trim(in);
    if ((rc = select_for(c, url, err)) != PO_OK ||
        (rc = ot_token(c, 0, &t, err)) != PO_OK)
        goto out;
    if ((rc = po_docker_creds_json(&b, url, registry_user(c->profile),
                                   t.access_token)) != PO_OK) {
        rc = po_fail(err, rc, "building the answer: %s", po_rc_name(rc));
        goto out;
    }
    rc = ot_write_all(STDOUT_FILENO, b.data, b.len, err);
out:
    po_buf_free(&b);
    po_token_free(&t);
    free(in);
    return rc;
}

static po_rc docker_store(ot_ctx *c, po_err *err)
{
    po_docker_creds cr;
    char *in = NULL;
    size_t len = 0;
    po_rc rc;

    memset(&cr, 0, sizeof(cr));
    if ((rc = read_input(1, &in, &len, err)) != PO_OK ||
        (rc = po_docker_parse_creds(in, len, &cr, err)) != PO_OK)
        goto out;
    rc = select_for(c, cr.server_url, err);
    if (rc == PO_NOT_FOUND) {
        rc = po_fail(err, PO_USAGE,
                     "oauth-token keeps no credentials, and no profile's "
                     "match key names %.200s: name only the registries of "
                     "your profiles in credHelpers, and keep another store "
                     "for the others",
                     cr.server_url);
        goto out;
    }
    if (rc != PO_OK)
        goto out;
    if (strcmp(cr.username, registry_user(c->profile)) != 0)
        rc = po_fail(err, PO_USAGE,
                     "%.200s gets its tokens from profile %s; oauth-token "
                     "does not keep other credentials (user '%.64s') for it",
                     cr.server_url, c->profile->name, cr.username);
    /* else: what get handed out, given back; nothing to keep */
out:
    po_docker_creds_free(&cr);
    if (in != NULL) {
        po_cleanse(in, len);
        free(in);
    }
    return rc;
}

static po_rc docker_erase(ot_ctx *c, po_err *err)
{
    char *in = NULL;
    size_t len = 0;
    po_rc rc;

    if ((rc = read_input(0, &in, &len, err)) == PO_OK &&
        (rc = select_for(c, trim(in), err)) == PO_OK)
        rc = po_flow_erase(&c->flow, err);
    free(in);
    return rc;
}

static po_rc docker_list(ot_ctx *c, po_err *err)
{
    po_buf b;
    po_rc rc;
    size_t i, n = 0;

    po_buf_init(&b, DOCKER_OUT_MAX, 0);
    if ((rc = ot_load_config(c, err)) != PO_OK)
        goto out;
    rc = po_buf_puts(&b, "{");
    for (i = 0; rc == PO_OK && i < c->cfg.nprofiles; i++) {
        const po_profile *p = &c->cfg.profiles[i];
        const char *s = p->match, *w;
        size_t len;
        while (rc == PO_OK && s != NULL &&
               (w = po_next_word(&s, &len)) != NULL) {
            char *entry = strndup(w, len);
            if (entry == NULL) {
                rc = PO_NOMEM;
                break;
            }
            rc = po_buf_puts(&b, n++ > 0 ? "," : "");
            if (rc == PO_OK)
                rc = po_json_quote(&b, entry);
            if (rc == PO_OK)
                rc = po_buf_puts(&b, ":");
            if (rc == PO_OK)
                rc = po_json_quote(&b, registry_user(p));
            free(entry);
        }
    }
    if (rc == PO_OK)
        rc = po_buf_puts(&b, "}\n");
    if (rc != PO_OK) {
        rc = po_fail(err, rc, "building the list: %s", po_rc_name(rc));
        goto out;
    }
    rc = ot_write_all(STDOUT_FILENO, b.data, b.len, err);
out:
    po_buf_free(&b);
    return rc;
}

po_rc ot_cmd_docker(ot_ctx *c, po_err *err)
{
    const char *action = c->opts.args[0];
    char line[sizeof(err->msg) + 2];
    po_rc rc;

    if (strcmp(action, "get") == 0) {
        rc = docker_get(c, err);
    } else if (strcmp(action, "store") == 0) {
        rc = docker_store(c, err);
    } else if (strcmp(action, "erase") == 0) {
        rc = docker_erase(c, err);
    } else if (strcmp(action, "list") == 0) {
        rc = docker_list(c, err);
    } else if (strcmp(action, "version") == 0) {
        (void)snprintf(line, sizeof(line), "%s (pam-oauth) %s\n",
                       OT_DOCKER_PROG, PO_VERSION);
        rc = ot_write_all(STDOUT_FILENO, line, strlen(line), err);
    } else {
        rc = po_fail(err, PO_USAGE, "unknown action: %.64s", action);
    }
    if (rc == PO_OK)
        return PO_OK;
    /* The protocol: the message on standard output, exit status 1.  A
     * server no profile is for is "not found", which clients take as
     * anonymous access. */
    if (rc == PO_NOT_FOUND)
        (void)snprintf(line, sizeof(line), "%s\n", PO_DOCKER_NOT_FOUND);
    else
        (void)snprintf(line, sizeof(line), "%s\n",
                       err->msg[0] != '\0' ? err->msg : po_rc_name(rc));
    po_err_clear(err);
    c->status = OT_EXIT_OTHER;
    return ot_write_all(STDOUT_FILENO, line, strlen(line), err);
}
