/*
 * po-verify - a test driver for token verification (common/verify.c,
 * jwt.c, jwks.c).
 *
 *   po-verify [-o KEY=VALUE]... [-u USER] [-w access|id] [-n COUNT]
 *             CONFIG PROFILE
 *
 * Loads CONFIG, applies each -o like a file line, validates the profile,
 * loads the client secret when introspection may be needed, reads tokens
 * from stdin (one per line; at most 1 MiB in all) and verifies each with
 * po_verify_token in ONE verifier (one call context: one memory key cache),
 * binding USER through user_claim when -u is given.  The key set disk
 * cache is the profile's jwks_cache_dir, else the user's token cache
 * directory (as the helper does).  -n COUNT verifies the (first) token
 * COUNT times (memory cache test).
 *
 * Log lines (debug on) go to stderr, each prefixed "log: LEVEL: ".  One
 * JSON line per token goes to stdout, never with the token in it:
 *   {"outcome":"ok"|po_rc_name, "verdict":B, "message":..., "method":
 *    "none"|"jwt"|"introspect", "alg":..., "kid":..., "user":...,
 *    "claims":{...}|null, "jwks_fetches":N}
 * Exit status: 0 when every token verified, 1 otherwise, 2 on a usage
 * error.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "secret.h"
#include "util.h"
#include "verify.h"

#define MAX_OVERRIDES 64
#define INPUT_MAX (1024 * 1024)

static void log_stderr(void *ctx, int priority, const char *msg)
{
    const char *lvl = priority <= LOG_ERR       ? "error"
                      : priority == LOG_WARNING ? "warning"
                      : priority == LOG_NOTICE  ? "notice"
                      : priority == LOG_DEBUG   ? "debug"
                                                : "info";
    (void)ctx;
    fprintf(stderr, "log: %s: %s\n", lvl, msg);
}

static void usage(void)
{
    fprintf(stderr, "usage: po-verify [-o KEY=VALUE]... [-u USER] "
                    "[-w access|id] [-n COUNT] CONFIG PROFILE\n");
    exit(2);
}

static const char *method_name(po_verify_mode m)
{
    return m == PO_VERIFY_JWT          ? "jwt"
           : m == PO_VERIFY_INTROSPECT ? "introspect"
                                       : "none";
}

static void print_result(po_rc rc, const po_err *err, const po_verified *v,
                         unsigned fetches)
{
    struct json_object *o = json_object_new_object(), *claims = NULL;

    json_object_object_add(o, "outcome",
                           json_object_new_string(po_rc_name(rc)));
    json_object_object_add(o, "verdict",
                           json_object_new_boolean(po_verify_is_verdict(rc)));
    json_object_object_add(o, "message", json_object_new_string(err->msg));
    json_object_object_add(o, "method",
                           json_object_new_string(method_name(v->method)));
    json_object_object_add(o, "alg", json_object_new_string(v->alg));
    json_object_object_add(o, "kid", json_object_new_string(v->kid));
    json_object_object_add(o, "user", json_object_new_string(v->user));
    if (v->claims_json != NULL)
        claims = json_tokener_parse(v->claims_json);
    json_object_object_add(o, "claims", claims);
    json_object_object_add(o, "jwks_fetches",
                           json_object_new_int64((int64_t)fetches));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(stdout);
    json_object_put(o);
}

/* All of stdin, NUL-terminated, at most INPUT_MAX bytes. */
static char *read_stdin(size_t *len)
{
    po_buf b;
    char chunk[8192];
    size_t n;
    char *out = NULL;

    po_buf_init(&b, INPUT_MAX, 1);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (po_buf_append(&b, chunk, n) != PO_OK) {
            po_buf_free(&b);
            po_cleanse(chunk, sizeof(chunk));
            return NULL;
        }
    }
    po_cleanse(chunk, sizeof(chunk));
    *len = b.len;
    if (po_buf_detach(&b, &out) != PO_OK)
        out = NULL;
    po_buf_free(&b);
    return out;
}

int main(int argc, char **argv)
{
    const char *overrides[MAX_OVERRIDES], *user = NULL, *which_s = NULL;
    po_log log = {log_stderr, NULL, 1};
    po_config cfg;
    po_profile *p;
    po_verifier v;
    po_verified res;
    po_err err;
    char *input = NULL, *line, *next, *dir = NULL, where[64];
    size_t noverrides = 0, i, len = 0;
    long count = 1, k;
    int opt, status = 0, verifier_ready = 0;
    po_rc rc;

    while ((opt = getopt(argc, argv, "o:u:w:n:")) != -1) {
        switch (opt) {
        case 'o':
            if (noverrides == MAX_OVERRIDES)
                usage();
            overrides[noverrides++] = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'w':
            which_s = optarg;
            break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            if (count < 1 || count > 1000)
                usage();
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 2)
        usage();
    po_config_init(&cfg);
    po_err_clear(&err);
    memset(&res, 0, sizeof(res));
    if ((rc = po_config_load_file(&cfg, argv[optind], 0, &err)) != PO_OK)
        goto fail;
    if ((p = po_config_find(&cfg, argv[optind + 1])) == NULL) {
        rc = po_fail(&err, PO_NOT_FOUND, "no profile %s", argv[optind + 1]);
        goto fail;
    }
    for (i = 0; i < noverrides; i++) {
        char key[128];
        const char *eq = strchr(overrides[i], '=');
        if (eq == NULL || (size_t)(eq - overrides[i]) >= sizeof(key))
            usage();
        memcpy(key, overrides[i], (size_t)(eq - overrides[i]));
        key[eq - overrides[i]] = '\0';
        (void)snprintf(where, sizeof(where), "option -o %zu", i + 1);
        if ((rc = po_profile_set(p, key, eq + 1, where, &err)) != PO_OK)
            goto fail;
    }
    if (which_s != NULL && (rc = po_profile_set(p, "verify_token", which_s,
                                                "option -w", &err)) != PO_OK)
        goto fail;
    if ((rc = po_profile_validate(p, &err)) != PO_OK)
        goto fail;
    if ((p->verify == PO_VERIFY_INTROSPECT || p->verify == PO_VERIFY_AUTO) &&
        p->introspection_url != NULL &&
        (rc = po_profile_load_secret(p, &log, &err)) != PO_OK)
        goto fail;
    if ((rc = po_verify_cache_dir(p, 0, &dir, &err)) != PO_OK ||
        (rc = po_verifier_init(&v, dir, &log, &err)) != PO_OK)
        goto fail;
    verifier_ready = 1;
    if ((input = read_stdin(&len)) == NULL) {
        rc = po_fail(&err, PO_TOO_LARGE, "stdin: over %d bytes", INPUT_MAX);
        goto fail;
    }
    for (line = input; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] != '\0' && line[strlen(line) - 1] == '\r')
            line[strlen(line) - 1] = '\0';
        for (k = 0; k < count; k++) {
            po_err_clear(&err);
            rc = po_verify_token(&v, p, p->verify_token, line, user, 0,
                                 (int64_t)time(NULL), &res, &err);
            print_result(rc, &err, &res, v.jwks.fetches);
            po_verified_free(&res);
            if (rc != PO_OK)
                status = 1;
        }
        count = 1;
    }
    goto out;
fail:
    print_result(rc, &err, &res, 0);
    status = rc == PO_OK ? 0 : 1;
out:
    if (input != NULL) {
        po_cleanse(input, len);
        free(input);
    }
    if (verifier_ready)
        po_verifier_free(&v);
    free(dir);
    po_config_free(&cfg);
    return status;
}
