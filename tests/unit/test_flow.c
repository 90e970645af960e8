/* test_flow.c - the refresh policy, the month, the budget and the cache
 * paths of po_flow_* without a token server: the profile's token_url is
 * http://127.0.0.1:1/, so a request made by mistake ends in PO_NETWORK
 * (or another network-level error), never in the outcome a test expects. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "flow.h"
#include "oauth.h"
#include "secret.h"
#include "util.h"

#define FEB_10_2024 1707523200 /* 2024-02-10T00:00:00Z */

/* ------------------------------------------------------------------ */
/* pure functions                                                      */

static void test_margin(void **state)
{
    static const struct {
        long cfg;
        int64_t obtained, expires;
        long want;
    } rows[] = {
        {-1, 0, 3600, 300},    /* 10 % = 360, capped at 300       */
        {-1, 0, 86400, 300},   /* 24 h token                      */
        {-1, 0, 1000, 100},    /* 10 %                            */
        {-1, 1000, 2799, 179}, /* 1799 s (Fluent integration)     */
        {-1, 0, 50, 5},        /* 10 % = 5                        */
        {-1, 0, 30, 5},        /* 3 s, raised to 5                */
        {-1, 100, 100, 5},     /* no lifetime                     */
        {-1, 100, 50, 5},      /* nonsense: expired before issued */
        {0, 0, 3600, 0},       /* explicit 0                      */
        {60, 0, 3600, 60},     /* explicit                        */
        {900, 0, 600, 900},    /* explicit, larger than lifetime  */
        /* lifetimes whose computation would overflow (issue 14.5) */
        {-1, INT64_MIN, INT64_MAX, 300},
        {-1, INT64_MAX, INT64_MIN, 5},
        {-1, 1000, INT64_MIN, 5},
    };
    po_profile p;
    po_token t;
    size_t i;

    (void)state;
    memset(&p, 0, sizeof(p));
    memset(&t, 0, sizeof(t));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        p.refresh_margin = rows[i].cfg;
        t.obtained_at = rows[i].obtained;
        t.expires_at = rows[i].expires;
        if (po_flow_margin(&p, &t) != rows[i].want)
            fail_msg("row %zu: margin %ld, want %ld", i, po_flow_margin(&p, &t),
                     rows[i].want);
    }
}

static void test_fresh(void **state)
{
    static const struct {
        long margin, interval;
        int has_token, has_expires_in;
        int64_t obtained, expires, now;
        int want;
    } rows[] = {
        /* auto margin, 1 h token: 300 s */
        {-1, 0, 1, 1, 0, 3600, 0, 1},
        {-1, 0, 1, 1, 0, 3600, 3299, 1},
        {-1, 0, 1, 1, 0, 3600, 3300, 0},
        {-1, 0, 1, 1, 0, 3600, 4000, 0},
        /* no token at all */
        {-1, 0, 0, 1, 0, 3600, 10, 0},
        /* no expires_in: expires_at came from default_lifetime; same rule */
        {-1, 0, 1, 0, 0, 3600, 3299, 1},
        {-1, 0, 1, 0, 0, 3600, 3300, 0},
        /* short token: margin 5 */
        {-1, 0, 1, 1, 0, 30, 24, 1},
        {-1, 0, 1, 1, 0, 30, 25, 0},
        /* explicit margin */
        {0, 0, 1, 1, 0, 100, 99, 1},
        {0, 0, 1, 1, 0, 100, 100, 0},
        {120, 0, 1, 1, 0, 100, 0, 0},
        /* refresh_interval 600 (Froomle) on a 24 h token */
        {-1, 600, 1, 1, 1000, 87400, 1599, 1},
        {-1, 600, 1, 1, 1000, 87400, 1600, 0},
        /* refresh_interval longer than the lifetime: expiry decides */
        {-1, 7200, 1, 1, 0, 3600, 3300, 0},
        /* clock before obtained_at (clock stepped back) */
        {-1, 600, 1, 1, 1000, 4600, 900, 1},
        /* times no sum may overflow on (issue 14.5): never fresh */
        {-1, 0, 1, 1, 1000, INT64_MIN, 1000, 0},
        {300, 0, 1, 1, 1000, INT64_MIN, 1000, 0},
        /* obtained in the future: the cache decoder refuses such times,
         * is_fresh itself must only not overflow */
        {-1, 600, 1, 1, INT64_MAX, INT64_MAX, 1000, 1},
        {-1, 600, 1, 1, INT64_MIN, 4600, 1000, 0},
        {-1, 0, 1, 1, INT64_MIN, INT64_MAX, INT64_MAX, 0},
        /* a huge expiry is fresh only until refresh_interval */
        {-1, 600, 1, 1, 1000, INT64_MAX, 1599, 1},
        {-1, 600, 1, 1, 1000, INT64_MAX, 1600, 0},
    };
    po_profile p;
    po_token t;
    size_t i;

    (void)state;
    memset(&p, 0, sizeof(p));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(&t, 0, sizeof(t));
        p.refresh_margin = rows[i].margin;
        p.refresh_interval = rows[i].interval;
        t.access_token = rows[i].has_token ? (char *)(uintptr_t) "x" : NULL;
        t.has_expires_in = rows[i].has_expires_in;
        t.obtained_at = rows[i].obtained;
        t.expires_at = rows[i].expires;
        if (po_flow_is_fresh(&p, &t, rows[i].now) != rows[i].want)
            fail_msg("row %zu: fresh %d, want %d", i,
                     po_flow_is_fresh(&p, &t, rows[i].now), rows[i].want);
    }
    assert_int_equal(po_flow_is_fresh(&p, NULL, 0), 0);
}

static void test_month(void **state)
{
    static const struct {
        int64_t now;
        const char *want;
    } rows[] = {
        {0, "1970-01"},
        {1706745599, "2024-01"}, /* 2024-01-31T23:59:59Z */
        {1706745600, "2024-02"}, /* 2024-02-01T00:00:00Z */
        {1709251199, "2024-02"}, /* 2024-02-29T23:59:59Z (leap day) */
        {1709251200, "2024-03"},
        {1735689599, "2024-12"}, /* 2024-12-31T23:59:59Z */
        {1735689600, "2025-01"}, /* new year */
        {4102444800, "2100-01"},
    };
    char buf[8];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(buf, 'x', sizeof(buf));
        po_flow_month(rows[i].now, buf);
        if (strcmp(buf, rows[i].want) != 0)
            fail_msg("row %zu: %s, want %s", i, buf, rows[i].want);
    }
}

/* ------------------------------------------------------------------ */
/* the cache paths                                                     */

typedef struct fx {
    char base[64];
    char dir[128];
    po_profile p;
    po_flow f;
    int64_t now;
    po_log log;
    int warnings;
    int ignored; /* "token cache ... ignored" warnings */
    char last[1024];
} fx;

static int64_t fake_clock(void *ctx)
{
    return *(int64_t *)ctx;
}

static void capture_fn(void *ctx, int priority, const char *msg)
{
    fx *x = ctx;

    if (priority <= LOG_WARNING)
        x->warnings++;
    if (strstr(msg, " ignored: ") != NULL) {
        x->ignored++;
        (void)snprintf(x->last, sizeof(x->last), "%s", msg);
    }
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));
    po_err err;

    assert_non_null(x);
    strcpy(x->base, "/tmp/test_flow.XXXXXX");
    assert_non_null(mkdtemp(x->base));
    (void)snprintf(x->dir, sizeof(x->dir), "%s/cache", x->base);
    assert_int_equal(po_profile_init(&x->p, "wave", &err), PO_OK);
    assert_int_equal(po_str_replace(&x->p.token_url, "http://127.0.0.1:1/t"),
                     PO_OK);
    assert_int_equal(po_str_replace(&x->p.client_id, "cid"), PO_OK);
    assert_int_equal(po_str_replace(&x->p.client_secret, "csecret"), PO_OK);
    x->p.allow_http = 1;
    x->p.client_auth = PO_CLIENT_AUTH_POST;
    x->p.grant = PO_GRANT_CLIENT_CREDENTIALS;
    x->p.retries = 0;
    x->p.timeout_ms = 3000;
    x->p.connect_timeout_ms = 1000;
    x->p.lock_timeout_ms = 10000;
    x->p.refresh_margin = -1;
    x->p.budget = 3;
    x->now = FEB_10_2024;
    x->log.fn = capture_fn;
    x->log.ctx = x;
    x->f.profile = &x->p;
    x->f.cache_dir = x->dir;
    x->f.log = &x->log;
    x->f.clock = fake_clock;
    x->f.clock_ctx = &x->now;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;

    (void)nftw(x->base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    po_profile_free(&x->p);
    free(x);
    return 0;
}

/* Store an entry: a token obtained at obtained with lifetime life (no
 * token when life < 0), an optional refresh token, and a budget. */
static void put_entry(fx *x, int64_t obtained, long life, const char *rt,
                      const char *month, long count)
{
    po_cache_entry e;
    po_err err;

    memset(&e, 0, sizeof(e));
    if (life >= 0) {
        e.token.access_token = strdup("AT-cached");
        e.token.token_type = strdup("bearer");
        e.token.obtained_at = obtained;
        e.token.expires_at = obtained + life;
        e.token.has_expires_in = 1;
    }
    if (rt != NULL)
        e.token.refresh_token = strdup(rt);
    if (month != NULL)
        memcpy(e.budget_month, month, 8);
    e.budget_count = count;
    assert_int_equal(po_cache_ensure_dir(x->dir, &err), PO_OK);
    assert_int_equal(po_cache_write(x->dir, &x->p, &e, &err), PO_OK);
    po_cache_entry_free(&e);
}

static void get_entry(fx *x, po_cache_entry *e)
{
    po_err err;

    assert_int_equal(po_flow_status(&x->f, e, &err), PO_OK);
}

/* A child holding the profile's lock until killed. */
static pid_t hold_lock(fx *x)
{
    int pfd[2];
    char c;
    pid_t pid;
    po_err err;

    assert_int_equal(po_cache_ensure_dir(x->dir, &err), PO_OK);
    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        po_lock lk;
        close(pfd[0]);
        if (po_cache_lock(x->dir, &x->p, 1000, &lk, &err) != PO_OK)
            _exit(1);
        if (write(pfd[1], "L", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    return pid;
}

static void release(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_cache_only(void **state)
{
    fx *x = *state;
    po_token t;
    po_err err;
    struct stat st;

    /* Nothing cached: PO_NOT_FOUND, and no directory is created. */
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_CACHE_ONLY, &t, NULL, &err),
                     PO_NOT_FOUND);
    assert_non_null(strstr(err.msg, "wave"));
    assert_int_equal(stat(x->dir, &st), -1);
    /* Fresh: returned. */
    put_entry(x, x->now - 100, 3600, NULL, NULL, 0);
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_CACHE_ONLY, &t, NULL, &err),
                     PO_OK);
    assert_string_equal(t.access_token, "AT-cached");
    assert_int_equal(t.expires_at, x->now + 3500);
    po_token_free(&t);
    /* Stale (inside the margin): PO_NOT_FOUND, not a request. */
    x->now += 3300;
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_CACHE_ONLY, &t, NULL, &err),
                     PO_NOT_FOUND);
    assert_null(t.access_token);
    /* Contradictory flags. */
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_CACHE_ONLY | PO_FLOW_FORCE_NEW,
                                 &t, NULL, &err),
                     PO_USAGE);
    assert_int_equal(x->warnings, 0);
}

static void test_fast_path_needs_no_lock(void **state)
{
    fx *x = *state;
    po_token t;
    po_err err;
    pid_t pid;
    uint64_t t0;

    put_entry(x, x->now, 3600, NULL, NULL, 0);
    pid = hold_lock(x);
    t0 = po_mono_ms();
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_OK);
    assert_true(po_mono_ms() - t0 < 500);
    assert_string_equal(t.access_token, "AT-cached");
    po_token_free(&t);
    release(pid);
}

static void test_lock_bounds(void **state)
{
    fx *x = *state;
    po_token t;
    po_err err;
    pid_t pid;
    uint64_t t0, dt;

    put_entry(x, x->now - 7200, 3600, NULL, NULL, 0); /* expired */
    pid = hold_lock(x);
    /* Bounded by lock_timeout_ms. */
    x->p.lock_timeout_ms = 300;
    t0 = po_mono_ms();
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_LOCKED);
    dt = po_mono_ms() - t0;
    assert_true(dt >= 300 && dt < 1500);
    assert_non_null(strstr(err.msg, "wave.lock"));
    assert_non_null(strstr(err.msg, "held by another process"));
    /* Bounded by the deadline when that comes first. */
    x->p.lock_timeout_ms = 10000;
    x->f.deadline_ms = po_mono_ms() + 300;
    t0 = po_mono_ms();
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_LOCKED);
    dt = po_mono_ms() - t0;
    assert_true(dt < 1500);
    x->f.deadline_ms = 0;
    /* FORCE_NEW skips the fast path: it waits for the lock too. */
    x->p.lock_timeout_ms = 100;
    put_entry(x, x->now, 3600, NULL, NULL, 0);
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_FORCE_NEW, &t, NULL, &err),
                     PO_LOCKED);
    /* ... and invalidate, erase and login are under the lock as well. */
    {
        int done = 7;
        assert_int_equal(po_flow_invalidate(&x->f, NULL, &done, &err),
                         PO_LOCKED);
        assert_int_equal(done, 0);
        assert_int_equal(po_flow_erase(&x->f, &err), PO_LOCKED);
        assert_int_equal(po_flow_login(&x->f, "u", "pw", 0, &t, &err),
                         PO_LOCKED);
    }
    release(pid);
}

static void test_budget_refused_before_request(void **state)
{
    fx *x = *state;
    po_cache_entry e;
    po_token t;
    po_err err;

    /* Used up this month, token expired: refused, no request. */
    put_entry(x, x->now - 7200, 3600, NULL, "2024-02", 3);
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_BUDGET);
    assert_string_equal(err.msg,
                        "monthly token budget of 3 requests for profile wave "
                        "is used up (resets on 2024-03-01); use --force to "
                        "override");
    assert_null(t.access_token);
    /* The same with a refresh token cached, and with FORCE_NEW. */
    put_entry(x, x->now - 7200, 3600, "RT", "2024-02", 3);
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_BUDGET);
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_FORCE_NEW, &t, NULL, &err),
                     PO_BUDGET);
    /* ... and for login. */
    assert_int_equal(po_flow_login(&x->f, "u", "pw", 0, &t, &err), PO_BUDGET);
    /* Nothing changed in the cache. */
    get_entry(x, &e);
    assert_string_equal(e.budget_month, "2024-02");
    assert_int_equal(e.budget_count, 3);
    assert_string_equal(e.token.refresh_token, "RT");
    po_cache_entry_free(&e);
    /* Over budget in December: resets next year. */
    x->now = 1735000000; /* 2024-12-24 */
    put_entry(x, x->now - 7200, 3600, NULL, "2024-12", 5);
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_BUDGET);
    assert_non_null(strstr(err.msg, "resets on 2025-01-01"));
    /* A fresh token is served whatever the budget. */
    put_entry(x, x->now, 3600, NULL, "2024-12", 5);
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_OK);
    po_token_free(&t);
}

/* A request that cannot reach the server: the outcome is a network-level
 * error, and the counter does not move. */
static void assert_request_attempted(po_rc rc)
{
    if (rc == PO_BUDGET || rc == PO_OK || rc == PO_NOT_FOUND || rc == PO_LOCKED)
        fail_msg("expected a failed request, got %s", po_rc_name(rc));
}

static void test_budget_ignore_and_rollover(void **state)
{
    fx *x = *state;
    po_cache_entry e;
    po_token t;
    po_err err;

    put_entry(x, x->now - 7200, 3600, NULL, "2024-02", 3);
    /* --force passes the budget (and the unreachable server fails). */
    assert_request_attempted(
        po_flow_get(&x->f, PO_FLOW_IGNORE_BUDGET, &t, NULL, &err));
    get_entry(x, &e);
    assert_int_equal(e.budget_count, 3); /* did not reach a server */
    po_cache_entry_free(&e);
    /* A new month resets the counter: the request is attempted. */
    put_entry(x, x->now - 7200, 3600, NULL, "2024-01", 3);
    assert_request_attempted(po_flow_get(&x->f, 0, &t, NULL, &err));
    /* No budget: never refused. */
    x->p.budget = 0;
    put_entry(x, x->now - 7200, 3600, NULL, "2024-02", 5000);
    assert_request_attempted(po_flow_get(&x->f, 0, &t, NULL, &err));
}

static void test_password_grant_needs_login(void **state)
{
    fx *x = *state;
    po_token t;
    po_err err;

    x->p.grant = PO_GRANT_PASSWORD;
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_NOT_FOUND);
    assert_string_equal(err.msg, "no token cached for profile wave; run "
                                 "'oauth-token login'");
    /* Expired, no refresh token. */
    put_entry(x, x->now - 7200, 3600, NULL, NULL, 0);
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_NOT_FOUND);
    assert_non_null(strstr(err.msg, "oauth-token login"));
    /* The refresh_token primary grant as well. */
    x->p.grant = PO_GRANT_REFRESH_TOKEN;
    assert_int_equal(po_flow_get(&x->f, 0, &t, NULL, &err), PO_NOT_FOUND);
    /* Login arguments. */
    assert_int_equal(po_flow_login(&x->f, "u", NULL, 0, &t, &err), PO_USAGE);
    assert_int_equal(
        po_flow_login(&x->f, "u", "p", PO_FLOW_CACHE_ONLY, &t, &err), PO_USAGE);
}

static void test_invalidate(void **state)
{
    fx *x = *state;
    po_cache_entry e;
    po_err err;
    int done = -1;

    /* Nothing cached. */
    assert_int_equal(po_flow_invalidate(&x->f, "AT-cached", &done, &err),
                     PO_OK);
    assert_int_equal(done, 0);
    assert_int_equal(po_flow_invalidate(&x->f, NULL, &done, &err), PO_OK);
    assert_int_equal(done, 1);
    /* Another token (a newer one was fetched meanwhile): left alone. */
    put_entry(x, x->now, 3600, "RT", "2024-02", 2);
    assert_int_equal(po_flow_invalidate(&x->f, "AT-other", &done, &err), PO_OK);
    assert_int_equal(done, 0);
    assert_int_equal(po_flow_invalidate(&x->f, "AT-cache", &done, &err), PO_OK);
    assert_int_equal(done, 0);
    get_entry(x, &e);
    assert_string_equal(e.token.access_token, "AT-cached");
    po_cache_entry_free(&e);
    /* The cached token: dropped, refresh token and budget kept. */
    assert_int_equal(po_flow_invalidate(&x->f, "AT-cached", &done, &err),
                     PO_OK);
    assert_int_equal(done, 1);
    get_entry(x, &e);
    assert_null(e.token.access_token);
    assert_string_equal(e.token.refresh_token, "RT");
    assert_int_equal(e.budget_count, 2);
    po_cache_entry_free(&e);
    /* NULL: whatever is cached. */
    put_entry(x, x->now, 3600, NULL, "2024-02", 2);
    assert_int_equal(po_flow_invalidate(&x->f, NULL, &done, &err), PO_OK);
    assert_int_equal(done, 1);
    get_entry(x, &e);
    assert_null(e.token.access_token);
    po_cache_entry_free(&e);
}

static void test_erase_and_status(void **state)
{
    fx *x = *state;
    po_cache_entry e;
    po_err err;

    /* Status of nothing. */
    get_entry(x, &e);
    assert_null(e.token.access_token);
    assert_int_equal(e.budget_count, 0);
    po_cache_entry_free(&e);
    assert_int_equal(po_flow_erase(&x->f, &err), PO_OK);
    put_entry(x, x->now, 3600, "RT", "2024-02", 2);
    get_entry(x, &e);
    assert_string_equal(e.token.access_token, "AT-cached");
    assert_string_equal(e.token.refresh_token, "RT");
    po_cache_entry_free(&e);
    assert_int_equal(po_flow_erase(&x->f, &err), PO_OK);
    get_entry(x, &e);
    assert_null(e.token.access_token);
    assert_null(e.token.refresh_token);
    assert_string_equal(e.budget_month, "2024-02");
    assert_int_equal(e.budget_count, 2);
    po_cache_entry_free(&e);
    assert_int_equal(x->warnings, 0);
}

static void test_unusable_cache_warns_once(void **state)
{
    fx *x = *state;
    po_cache_entry e;
    po_token t;
    po_err err;
    char path[256];
    FILE *fp;

    put_entry(x, x->now, 3600, NULL, NULL, 0);
    (void)snprintf(path, sizeof(path), "%s/wave.json", x->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"version\":1,", fp);
    fclose(fp);
    x->p.budget = 0;
    assert_request_attempted(po_flow_get(&x->f, 0, &t, NULL, &err));
    assert_int_equal(x->ignored, 1);
    assert_non_null(strstr(x->last, "wave.json ignored: truncated JSON"));
    /* The failed attempt was noted in a new entry (no more warning). */
    get_entry(x, &e);
    assert_int_equal(x->ignored, 1);
    assert_true(e.renewal.failed_at != 0);
    po_cache_entry_free(&e);
    /* Status warns about a corrupt file too. */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"version\":1,", fp);
    fclose(fp);
    get_entry(x, &e);
    po_cache_entry_free(&e);
    assert_int_equal(x->ignored, 2);
}

/* ------------------------------------------------------------------ */
/* a valid token through an outage (issue 14.8)                        */

/* The identity provider is unreachable (127.0.0.1:1): a token due only by
 * refresh_interval or the margin, still valid, is served stale with a
 * note; the failure is noted in the cache with a backoff. */
static void test_stale_but_valid(void **state)
{
    fx *x = *state;
    po_flow_note note;
    po_cache_entry e;
    po_token t;
    po_err err;
    int64_t t0 = x->now;

    x->p.budget = 0;
    x->p.refresh_interval = 600; /* Froomle: every 10 min, 24 h tokens */
    put_entry(x, t0 - 700, 86400, NULL, NULL, 0);
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
    assert_string_equal(t.access_token, "AT-cached");
    assert_int_equal(note.stale, 1);
    assert_int_equal(note.renewal.rc, PO_NETWORK);
    assert_non_null(strstr(note.renewal.msg, "127.0.0.1:1"));
    assert_int_equal(note.renewal.failed_at, t0);
    assert_int_equal(note.renewal.after, t0 + 10);
    po_token_free(&t);
    get_entry(x, &e);
    assert_int_equal(e.renewal.failures, 1);
    assert_int_equal(e.renewal.after, t0 + 10);
    assert_string_equal(e.token.access_token, "AT-cached");
    po_cache_entry_free(&e);

    /* Within the backoff: served at once, no new attempt. */
    x->now = t0 + 9;
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
    assert_int_equal(note.stale, 1);
    assert_int_equal(note.renewal.failed_at, t0);
    po_token_free(&t);
    get_entry(x, &e);
    assert_int_equal(e.renewal.failures, 1);
    po_cache_entry_free(&e);

    /* After it: tried again, the wait doubles. */
    x->now = t0 + 10;
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
    assert_int_equal(note.stale, 1);
    assert_int_equal(note.renewal.failures, 2);
    assert_int_equal(note.renewal.after, t0 + 10 + 20);
    po_token_free(&t);

    /* A note without a failure: the margin (auto, 300 s of a 24 h token)
     * makes the token due as well. */
    x->p.refresh_interval = 0;
    put_entry(x, t0 - 86400 + 200, 86400, NULL, NULL, 0);
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
    assert_int_equal(note.stale, 1);
    po_token_free(&t);

    /* An explicit renewal (oauth-token refresh) ignores the backoff and
     * fails: it asked for a new token. */
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_FORCE_NEW, &t, &note, &err),
                     PO_NETWORK);
    assert_int_equal(note.stale, 0);
    assert_null(t.access_token);
    get_entry(x, &e);
    assert_int_equal(e.renewal.failures, 2);
    po_cache_entry_free(&e);

    /* Expired: no stale token, and within the backoff the noted failure
     * comes back at once. */
    x->now = t0 + 200;
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_NETWORK);
    get_entry(x, &e);
    assert_int_equal(e.renewal.failures, 3);
    assert_int_equal(e.renewal.after, t0 + 200 + 40);
    po_cache_entry_free(&e);
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_NETWORK);
    assert_non_null(strstr(err.msg, "not tried again before"));
    assert_int_equal(note.stale, 0);
    get_entry(x, &e);
    assert_int_equal(e.renewal.failures, 3); /* not attempted */
    po_cache_entry_free(&e);
}

/* The backoff doubles up to 10 minutes. */
static void test_stale_backoff_bounds(void **state)
{
    fx *x = *state;
    po_flow_note note;
    po_token t;
    po_err err;
    long i, want = 10;

    x->p.budget = 0;
    x->p.refresh_interval = 600;
    put_entry(x, x->now - 700, 86400, NULL, NULL, 0);
    for (i = 1; i <= 9; i++) {
        assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
        po_token_free(&t);
        assert_int_equal(note.renewal.failures, i);
        if (note.renewal.after - note.renewal.failed_at != want)
            fail_msg("failure %ld: waits %lld s, want %ld", i,
                     (long long)(note.renewal.after - note.renewal.failed_at),
                     want);
        want = want * 2 > 600 ? 600 : want * 2;
        x->now = note.renewal.after;
    }
}

/* Another process holds the lock (renewing): a due but valid token is
 * served without waiting; an expired one waits as before. */
static void test_stale_while_locked(void **state)
{
    fx *x = *state;
    po_flow_note note;
    po_token t;
    po_err err;
    pid_t pid;
    uint64_t t0;

    put_entry(x, x->now - 3500, 3600, NULL, NULL, 0); /* due: margin 300 */
    pid = hold_lock(x);
    t0 = po_mono_ms();
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
    assert_true(po_mono_ms() - t0 < 500);
    assert_string_equal(t.access_token, "AT-cached");
    assert_int_equal(note.stale, 0); /* nothing failed */
    po_token_free(&t);
    put_entry(x, x->now - 3600, 3600, NULL, NULL, 0); /* expired */
    x->p.lock_timeout_ms = 200;
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_LOCKED);
    release(pid);
}

/* The monthly budget used up: a due but still valid token is served. */
static void test_stale_when_budget_used_up(void **state)
{
    fx *x = *state;
    po_flow_note note;
    po_token t;
    po_err err;

    put_entry(x, x->now - 3500, 3600, NULL, "2024-02", 3);
    assert_int_equal(po_flow_get(&x->f, 0, &t, &note, &err), PO_OK);
    assert_int_equal(note.stale, 1);
    assert_int_equal(note.renewal.rc, PO_BUDGET);
    assert_non_null(strstr(note.renewal.msg, "budget"));
    po_token_free(&t);
    /* FORCE_NEW (oauth-token refresh) still fails. */
    assert_int_equal(po_flow_get(&x->f, PO_FLOW_FORCE_NEW, &t, &note, &err),
                     PO_BUDGET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_margin),
        cmocka_unit_test(test_fresh),
        cmocka_unit_test(test_month),
        cmocka_unit_test_setup_teardown(test_cache_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_needs_no_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lock_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_refused_before_request,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_ignore_and_rollover, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_password_grant_needs_login, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalidate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_cache_warns_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_but_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_backoff_bounds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_while_locked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_when_budget_used_up, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
