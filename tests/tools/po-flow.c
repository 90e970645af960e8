/*
 * po-flow - a test driver for common/flow.c.
 *
 *   po-flow -c CONFIG -p PROFILE [-d CACHE_DIR] [--force-new]
 *           [--ignore-budget] [--cache-only] [--clock-file F]
 *           [--login USER | --invalidate TOKEN_SHA256|any | --erase |
 *            --status | --simulate N_CALLS STEP_SECONDS
 *            [--barrier FILE NPROCS [--slot S NSLOTS]]]
 *
 * Without an action it calls po_flow_get once.  It prints one JSON line on
 * stdout: {"outcome":..., "message":..., "access_token_sha256":...,
 * "expires_at":N, ..., "stale":B, "renewal":{...} when stale}; never a
 * token.  --login reads the password from
 * the first line of stdin.  --clock-file names a file holding the fake
 * wall time in seconds, read again on every clock call.  --simulate calls
 * po_flow_get N times in this process, advancing a fake clock by STEP
 * seconds after each call, and prints {"calls":N,"errors":E,"stale":S,...}.
 * With --barrier, NPROCS such processes advance their clocks in lock step:
 * after each call each waits until all NPROCS have made theirs (FILE, at
 * least 8 bytes of zeros when they start, is shared memory; a wait over
 * 60 s is an error), so their clocks never drift apart.  With --slot S N
 * every call is a step of N rounds of the barrier and this process calls
 * in round S: processes whose clocks are ahead call in a later round, so
 * that no process reads a token obtained in its future.  Log lines go to
 * stderr.  Exit status: 0 on success, 1 on a failure, 2 on a
 * usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/futex.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "err.h"
#include "flow.h"
#include "oauth.h"
#include "secret.h"

typedef struct clock_state {
    const char *file; /* --clock-file, or NULL                  */
    int64_t fake;     /* --simulate: the current fake time      */
    int simulated;
} clock_state;

/* A barrier for processes sharing a mapping of two zeroed words: the
 * number arrived and the generation. */
typedef struct barrier {
    uint32_t *words;
    uint32_t n;
} barrier;

static int barrier_open(barrier *b, const char *path, long n)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    void *m;

    if (fd == -1 || n < 1)
        return -1;
    m = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    b->words = m;
    b->n = (uint32_t)n;
    return 0;
}

/* Wait until all n processes have arrived; -1 after 60 s. */
static int barrier_wait(barrier *b)
{
    uint32_t *count = &b->words[0], *gen = &b->words[1];
    uint32_t g = __atomic_load_n(gen, __ATOMIC_SEQ_CST);
    struct timespec ts = {1, 0};
    int waited = 0;

    if (__atomic_add_fetch(count, 1, __ATOMIC_SEQ_CST) == b->n) {
        __atomic_store_n(count, 0, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(gen, 1, __ATOMIC_SEQ_CST);
        (void)syscall(SYS_futex, gen, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        return 0;
    }
    while (__atomic_load_n(gen, __ATOMIC_SEQ_CST) == g) {
        if (waited++ >= 60)
            return -1;
        (void)syscall(SYS_futex, gen, FUTEX_WAIT, g, &ts, NULL, 0);
    }
    return 0;
}

static void log_stderr(void *ctx, int priority, const char *msg)
{
    const char *lvl = priority <= LOG_ERR       ? "error"
                      : priority == LOG_WARNING ? "warning"
                      : priority == LOG_DEBUG   ? "debug"
                                                : "info";
    (void)ctx;
    fprintf(stderr, "po-flow: %s: %s\n", lvl, msg);
}

static int64_t file_clock(const char *path)
{
    char buf[64];
    FILE *f = fopen(path, "r");
    char *end;
    long long v;

    if (f == NULL)
        return (int64_t)time(NULL);
    if (fgets(buf, sizeof(buf), f) == NULL) {
        fclose(f);
        return (int64_t)time(NULL);
    }
    fclose(f);
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf)
        return (int64_t)time(NULL);
    return (int64_t)v;
}

static int64_t tool_clock(void *ctx)
{
    clock_state *c = ctx;

    if (c->simulated)
        return c->fake;
    if (c->file != NULL)
        return file_clock(c->file);
    return (int64_t)time(NULL);
}

/* Lower-case hex SHA-256 of s into out[65]; "" for NULL. */
static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0, i;

    out[0] = '\0';
    if (s == NULL)
        return;
    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return;
    for (i = 0; i < 32; i++)
        (void)snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* The token's public facts (hashes instead of the secrets). */
static void add_token(json_object *o, const po_token *t)
{
    char h[65];

    sha256_hex(t->access_token, h);
    add_str(o, "access_token_sha256", t->access_token ? h : NULL);
    sha256_hex(t->refresh_token, h);
    add_str(o, "refresh_token_sha256", t->refresh_token ? h : NULL);
    json_object_object_add(o, "expires_at",
                           json_object_new_int64(t->expires_at));
    json_object_object_add(o, "obtained_at",
                           json_object_new_int64(t->obtained_at));
    json_object_object_add(o, "has_expires_in",
                           json_object_new_boolean(t->has_expires_in));
    add_str(o, "token_type", t->token_type);
    add_str(o, "scope", t->scope);
    add_str(o, "extra", t->extra_json);
}

/* Whether the token was served stale, and why. */
static void add_note(json_object *o, const po_flow_note *n)
{
    json_object *r;

    json_object_object_add(o, "stale", json_object_new_boolean(n->stale));
    if (!n->stale)
        return;
    r = json_object_new_object();
    add_str(r, "outcome", po_rc_name(n->renewal.rc));
    add_str(r, "message", n->renewal.msg);
    json_object_object_add(r, "failed_at",
                           json_object_new_int64(n->renewal.failed_at));
    json_object_object_add(r, "after", json_object_new_int64(n->renewal.after));
    json_object_object_add(r, "failures",
                           json_object_new_int64(n->renewal.failures));
    json_object_object_add(o, "renewal", r);
}

static void print_json(json_object *o)
{
    printf("%s\n",
           json_object_to_json_string_ext(
               o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stdout);
}

static json_object *outcome(po_rc rc, const po_err *err)
{
    json_object *o = json_object_new_object();

    add_str(o, "outcome", po_rc_name(rc));
    add_str(o, "message", rc == PO_OK ? "" : err->msg);
    return o;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: po-flow -c CONFIG -p PROFILE [-d CACHE_DIR] [--force-new]\n"
            "         [--ignore-budget] [--cache-only] [--clock-file F]\n"
            "         [--login USER | --invalidate SHA256|any | --erase |\n"
            "          --status | --simulate N_CALLS STEP_SECONDS\n"
            "          [--barrier FILE NPROCS [--slot S NSLOTS]]]\n");
    return 2;
}

/* Read the first line of stdin into a secret string. */
static char *read_password(void)
{
    char buf[4096];
    size_t n;
    char *p;

    if (fgets(buf, sizeof(buf), stdin) == NULL)
        return NULL;
    n = strcspn(buf, "\r\n");
    p = po_strndup(buf, n);
    po_cleanse(buf, sizeof(buf));
    return p;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *profile = NULL, *dir = NULL, *login = NULL;
    const char *inval = NULL;
    int erase = 0, status = 0, i, ret = 1;
    long sim_calls = -1, sim_step = 0, barrier_n = 0, slot = 0, slots = 1;
    const char *barrier_file = NULL;
    barrier bar = {NULL, 0};
    unsigned flags = 0;
    clock_state clk = {NULL, 0, 0};
    po_log log = {log_stderr, NULL, 0};
    po_config cfg;
    po_profile *p;
    po_flow f;
    po_err err;
    po_rc rc = PO_OK;
    po_token tok;
    json_object *o = NULL;
    char *password = NULL;

    memset(&tok, 0, sizeof(tok));
    po_err_clear(&err);
    po_config_init(&cfg);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "-c") == 0 && more)
            config = argv[++i];
        else if (strcmp(a, "-p") == 0 && more)
            profile = argv[++i];
        else if (strcmp(a, "-d") == 0 && more)
            dir = argv[++i];
        else if (strcmp(a, "--force-new") == 0)
            flags |= PO_FLOW_FORCE_NEW;
        else if (strcmp(a, "--ignore-budget") == 0)
            flags |= PO_FLOW_IGNORE_BUDGET;
        else if (strcmp(a, "--cache-only") == 0)
            flags |= PO_FLOW_CACHE_ONLY;
        else if (strcmp(a, "--debug") == 0)
            log.debug = 1;
        else if (strcmp(a, "--login") == 0 && more)
            login = argv[++i];
        else if (strcmp(a, "--invalidate") == 0 && more)
            inval = argv[++i];
        else if (strcmp(a, "--erase") == 0)
            erase = 1;
        else if (strcmp(a, "--status") == 0)
            status = 1;
        else if (strcmp(a, "--barrier") == 0 && i + 2 < argc) {
            barrier_file = argv[++i];
            barrier_n = strtol(argv[++i], NULL, 10);
        } else if (strcmp(a, "--slot") == 0 && i + 2 < argc) {
            slot = strtol(argv[++i], NULL, 10);
            slots = strtol(argv[++i], NULL, 10);
            if (slots < 1 || slot < 0 || slot >= slots)
                return usage();
        } else if (strcmp(a, "--clock-file") == 0 && more)
            clk.file = argv[++i];
        else if (strcmp(a, "--simulate") == 0 && i + 2 < argc) {
            sim_calls = strtol(argv[++i], NULL, 10);
            sim_step = strtol(argv[++i], NULL, 10);
        } else
            return usage();
    }
    if (config == NULL || profile == NULL ||
        (login != NULL) + (inval != NULL) + erase + status + (sim_calls >= 0) >
            1)
        return usage();

    if ((rc = po_config_load_file(&cfg, config, 0, &err)) != PO_OK)
        goto out;
    if ((p = po_config_find(&cfg, profile)) == NULL) {
        rc =
            po_fail(&err, PO_NOT_FOUND, "%s: no profile [%s]", config, profile);
        goto out;
    }
    if ((rc = po_profile_validate(p, &err)) != PO_OK)
        goto out;
    memset(&f, 0, sizeof(f));
    f.profile = p;
    f.cache_dir = dir;
    f.log = &log;
    f.clock = tool_clock;
    f.clock_ctx = &clk;

    if (login != NULL) {
        if ((password = read_password()) == NULL) {
            rc = po_fail(&err, PO_USAGE, "--login: no password on stdin");
            goto out;
        }
        rc = po_flow_login(&f, login, password, flags, &tok, &err);
        o = outcome(rc, &err);
        if (rc == PO_OK)
            add_token(o, &tok);
    } else if (inval != NULL) {
        /* The tool never takes a token on its command line: it matches
         * the cached token by its hash, and po_flow_invalidate compares
         * again under the lock. */
        po_cache_entry e;
        char h[65];
        int done = 0;

        memset(&e, 0, sizeof(e));
        if (strcmp(inval, "any") == 0) {
            rc = po_flow_invalidate(&f, NULL, &done, &err);
        } else if ((rc = po_flow_status(&f, &e, &err)) == PO_OK) {
            sha256_hex(e.token.access_token, h);
            if (e.token.access_token != NULL && strcmp(h, inval) == 0)
                rc = po_flow_invalidate(&f, e.token.access_token, &done, &err);
        }
        po_cache_entry_free(&e);
        o = outcome(rc, &err);
        json_object_object_add(o, "done", json_object_new_boolean(done));
    } else if (erase) {
        rc = po_flow_erase(&f, &err);
        o = outcome(rc, &err);
    } else if (status) {
        po_cache_entry e;

        memset(&e, 0, sizeof(e));
        rc = po_flow_status(&f, &e, &err);
        o = outcome(rc, &err);
        if (rc == PO_OK) {
            add_token(o, &e.token);
            add_str(o, "username", e.username);
            add_str(o, "budget_month",
                    e.budget_month[0] ? e.budget_month : NULL);
            json_object_object_add(o, "budget_count",
                                   json_object_new_int64(e.budget_count));
            json_object_object_add(o, "fresh",
                                   json_object_new_boolean(po_flow_is_fresh(
                                       p, &e.token, tool_clock(&clk))));
        }
        po_cache_entry_free(&e);
    } else if (sim_calls >= 0) {
        long n, errors = 0, stale = 0;
        char last[65] = "", h[65];
        long changes = 0;
        po_flow_note note;

        if (barrier_file != NULL &&
            barrier_open(&bar, barrier_file, barrier_n) != 0) {
            rc = po_fail(&err, PO_USAGE, "--barrier %s: %s", barrier_file,
                         strerror(errno));
            goto out;
        }
        clk.fake = tool_clock(&clk);
        clk.simulated = 1;
        for (n = 0; n < sim_calls; n++) {
            po_err e1;
            long r;
            /* The rounds of the other slots first: their calls come
             * before this one's (their clocks are behind it). */
            for (r = 0; bar.words != NULL && r < slot; r++)
                if (barrier_wait(&bar) != 0)
                    goto barrier_failed;
            po_err_clear(&e1);
            if (po_flow_get(&f, flags, &tok, &note, &e1) != PO_OK) {
                errors++;
                log_stderr(NULL, LOG_ERR, e1.msg);
            } else {
                stale += note.stale;
                sha256_hex(tok.access_token, h);
                if (strcmp(h, last) != 0)
                    changes++;
                memcpy(last, h, sizeof(h));
            }
            po_token_free(&tok);
            clk.fake += sim_step;
            for (r = slot; bar.words != NULL && r < slots; r++)
                if (barrier_wait(&bar) != 0)
                    goto barrier_failed;
        }
        if (0) {
        barrier_failed:
            rc = po_fail(&err, PO_LOCKED,
                         "--barrier: the other processes did not come "
                         "within 60 s (call %ld)",
                         n + 1);
            goto out;
        }
        o = json_object_new_object();
        json_object_object_add(o, "calls", json_object_new_int64(sim_calls));
        json_object_object_add(o, "errors", json_object_new_int64(errors));
        json_object_object_add(o, "distinct_tokens",
                               json_object_new_int64(changes));
        json_object_object_add(o, "stale", json_object_new_int64(stale));
        rc = errors == 0 ? PO_OK : PO_IO;
    } else {
        po_flow_note note;
        rc = po_flow_get(&f, flags, &tok, &note, &err);
        o = outcome(rc, &err);
        if (rc == PO_OK) {
            add_token(o, &tok);
            add_note(o, &note);
        }
    }
out:
    if (o == NULL)
        o = outcome(rc, &err);
    if (rc != PO_OK && err.msg[0] != '\0')
        log_stderr(NULL, LOG_ERR, err.msg);
    print_json(o);
    json_object_put(o);
    ret = rc == PO_OK ? 0 : 1;
    po_token_free(&tok);
    po_secret_free(password);
    po_config_free(&cfg);
    return ret;
}
