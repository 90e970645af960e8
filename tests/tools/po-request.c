/*
 * po-request - a test driver for one token request (common/oauth.c and
 * common/http.c).
 *
 *   po-request [-o KEY=VALUE]... CONFIG PROFILE
 *
 * Loads CONFIG (po_config_load_file), applies each -o like a file line
 * (po_profile_set), validates the profile, loads the client secret and
 * makes one po_oauth_token_request with the profile's grant and a deadline
 * of the profile's timeout.
 *
 * Grant input: the user name from $PO_USERNAME (else the profile's
 * username); the password from the first line of stdin (password grant
 * only); the refresh token from the file named by $PO_REFRESH_TOKEN_FILE
 * (refresh_token grant).  For tests that must know the issued tokens (to
 * look for them in logs, or to rotate), $PO_ACCESS_TOKEN_OUT and
 * $PO_REFRESH_TOKEN_OUT name files (created 0600) that receive them.
 *
 * Log lines (debug on) go to stderr, each prefixed "log: LEVEL: ".  One
 * JSON line goes to stdout, never with a token in it:
 *   {"outcome":"ok"|po_rc_name, "http_status":N, "message":...,
 *    "token_type":..., "expires_in_known":B, "lifetime":N, "scope":...,
 *    "has_refresh":B, "extra":{...}|null, "access_token_sha256":...,
 *    "refresh_token_sha256":...}
 * Exit status: 0 on success, 1 on a failure, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "oauth.h"
#include "secret.h"
#include "util.h"

#define MAX_OVERRIDES 64
#define TOKEN_FILE_MAX (64 * 1024)

static void log_stderr(void *ctx, int priority, const char *msg)
{
    const char *lvl = priority <= LOG_ERR       ? "error"
                      : priority == LOG_WARNING ? "warning"
                      : priority == LOG_DEBUG   ? "debug"
                                                : "info";
    (void)ctx;
    fprintf(stderr, "log: %s: %s\n", lvl, msg);
}

static void usage(void)
{
    fprintf(stderr, "usage: po-request [-o KEY=VALUE]... CONFIG PROFILE\n");
    exit(2);
}

/* sha256 of s as hex into out[65]. */
static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    int i;

    out[0] = '\0';
    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return;
    for (i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* Drop one trailing "\n" or "\r\n". */
static void chomp(char *s)
{
    size_t n = strlen(s);

    if (n > 0 && s[n - 1] == '\n')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '\r')
        s[--n] = '\0';
}

/* The first line of stdin, as a secret. */
static po_rc read_password(char **out, po_err *err)
{
    po_buf b;
    po_rc rc = PO_OK;
    int c;

    po_buf_init(&b, PO_SECRET_MAX, 1);
    while ((c = getchar()) != EOF && c != '\n') {
        char ch = (char)c;
        if ((rc = po_buf_append(&b, &ch, 1)) != PO_OK) {
            po_buf_free(&b);
            return po_fail(err, rc, "stdin: password too long");
        }
    }
    if ((rc = po_buf_detach(&b, out)) != PO_OK)
        return po_fail(err, rc, "out of memory");
    chomp(*out);
    return PO_OK;
}

/* Write s to path, mode 0600, not through a symlink. */
static int write_secret_file(const char *path, const char *s)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t n = strlen(s);
    ssize_t w;

    if (fd == -1)
        return -1;
    w = write(fd, s, n);
    if (close(fd) != 0 || w != (ssize_t)n)
        return -1;
    return 0;
}

static void print_result(po_rc rc, const po_err *err, const po_token *t)
{
    json_object *o = json_object_new_object(), *extra = NULL;
    char hex[65];

    json_object_object_add(o, "outcome",
                           json_object_new_string(po_rc_name(rc)));
    json_object_object_add(o, "http_status",
                           json_object_new_int64(err->http_status));
    json_object_object_add(o, "message", json_object_new_string(err->msg));
    json_object_object_add(o, "token_type",
                           t->token_type ? json_object_new_string(t->token_type)
                                         : NULL);
    json_object_object_add(o, "expires_in_known",
                           json_object_new_boolean(t->has_expires_in));
    json_object_object_add(
        o, "lifetime",
        json_object_new_int64(t->access_token ? t->expires_at - t->obtained_at
                                              : 0));
    json_object_object_add(o, "scope",
                           t->scope ? json_object_new_string(t->scope) : NULL);
    json_object_object_add(o, "has_refresh",
                           json_object_new_boolean(t->refresh_token != NULL));
    if (t->extra_json != NULL)
        extra = json_tokener_parse(t->extra_json);
    json_object_object_add(o, "extra", extra);
    if (t->access_token != NULL) {
        sha256_hex(t->access_token, hex);
        json_object_object_add(o, "access_token_sha256",
                               json_object_new_string(hex));
    }
    if (t->refresh_token != NULL) {
        sha256_hex(t->refresh_token, hex);
        json_object_object_add(o, "refresh_token_sha256",
                               json_object_new_string(hex));
    }
    printf("%s\n",
           json_object_to_json_string_ext(
               o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

int main(int argc, char **argv)
{
    const char *overrides[MAX_OVERRIDES];
    int noverrides = 0, opt, i;
    po_config cfg;
    po_profile *p;
    po_err err;
    po_log log = {log_stderr, NULL, 1};
    po_grant_input g;
    po_token tok;
    char *password = NULL, *refresh = NULL, *key = NULL;
    const char *path, *s;
    po_rc rc = PO_OK;

    while ((opt = getopt(argc, argv, "o:")) != -1) {
        if (opt != 'o' || noverrides == MAX_OVERRIDES)
            usage();
        overrides[noverrides++] = optarg;
    }
    if (argc - optind != 2)
        usage();

    po_config_init(&cfg);
    po_err_clear(&err);
    memset(&tok, 0, sizeof(tok));
    memset(&g, 0, sizeof(g));

    if ((rc = po_config_load_file(&cfg, argv[optind], 0, &err)) != PO_OK)
        goto out;
    if ((p = po_config_find(&cfg, argv[optind + 1])) == NULL) {
        rc = po_fail(&err, PO_NOT_FOUND, "%s: no profile [%s]", argv[optind],
                     argv[optind + 1]);
        goto out;
    }
    for (i = 0; i < noverrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (eq == NULL)
            usage();
        free(key);
        if ((key = strndup(overrides[i], (size_t)(eq - overrides[i]))) ==
            NULL) {
            rc = po_fail(&err, PO_NOMEM, "out of memory");
            goto out;
        }
        if ((rc = po_profile_set(p, key, eq + 1, "option -o", &err)) != PO_OK)
            goto out;
    }
    if ((rc = po_profile_validate(p, &err)) != PO_OK)
        goto out;

    g.grant = p->grant;
    g.username = (s = getenv("PO_USERNAME")) != NULL ? s : p->username;
    if (g.grant == PO_GRANT_PASSWORD) {
        if ((rc = read_password(&password, &err)) != PO_OK)
            goto out;
        g.password = password;
    }
    if (g.grant == PO_GRANT_REFRESH_TOKEN &&
        (path = getenv("PO_REFRESH_TOKEN_FILE")) != NULL) {
        if ((rc = po_read_file(path, TOKEN_FILE_MAX, 1, &refresh, NULL, NULL,
                               &err)) != PO_OK)
            goto out;
        chomp(refresh);
        g.refresh_token = refresh;
    }
    if ((rc = po_profile_load_secret(p, &log, &err)) != PO_OK)
        goto out;
    rc = po_oauth_token_request(p, &g, po_mono_ms() + (uint64_t)p->timeout_ms,
                                0, (int64_t)time(NULL), &log, &tok, &err);
    if (rc == PO_OK) {
        if ((path = getenv("PO_ACCESS_TOKEN_OUT")) != NULL &&
            write_secret_file(path, tok.access_token) != 0)
            rc = po_fail(&err, PO_IO, "%s: %s", path, strerror(errno));
        if (rc == PO_OK && tok.refresh_token != NULL &&
            (path = getenv("PO_REFRESH_TOKEN_OUT")) != NULL &&
            write_secret_file(path, tok.refresh_token) != 0)
            rc = po_fail(&err, PO_IO, "%s: %s", path, strerror(errno));
    }
out:
    print_result(rc, &err, &tok);
    po_token_free(&tok);
    po_secret_free(password);
    po_secret_free(refresh);
    free(key);
    po_config_free(&cfg);
    return rc == PO_OK ? 0 : 1;
}
