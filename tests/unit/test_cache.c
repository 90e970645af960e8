/* test_cache.c - the token cache: round trips, permissions, atomic writes,
 * unusable files, directories, identity, the lock and writing as another
 * user.  Some cases need root (chown, setfsuid) and are skipped without. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "oauth.h"
#include "secret.h"
#include "util.h"

#define NOBODY 65534

static const po_user nobody = {"nobody", NOBODY, NOBODY, NULL};

/* ------------------------------------------------------------------ */
/* fixtures                                                            */

typedef struct capture {
    int warnings;
    int lines;
    char last[1024];
} capture;

static void capture_fn(void *ctx, int priority, const char *msg)
{
    capture *c = ctx;

    c->lines++;
    if (priority == LOG_WARNING)
        c->warnings++;
    (void)snprintf(c->last, sizeof(c->last), "%s", msg);
}

typedef struct fx {
    char base[64]; /* a fresh temporary directory            */
    char dir[128]; /* base/cache (created by the tests)       */
    po_profile p;
    capture cap;
    po_log log;
} fx;

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void profile_fill(po_profile *p, const char *name, const char *url,
                         const char *client)
{
    po_err err;

    assert_int_equal(po_profile_init(p, name, &err), PO_OK);
    assert_int_equal(po_str_replace(&p->token_url, url), PO_OK);
    assert_int_equal(po_str_replace(&p->client_id, client), PO_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    strcpy(f->base, "/tmp/test_cache.XXXXXX");
    assert_non_null(mkdtemp(f->base));
    (void)snprintf(f->dir, sizeof(f->dir), "%s/cache", f->base);
    profile_fill(&f->p, "prof", "https://auth.example.test/token", "cid");
    f->log.fn = capture_fn;
    f->log.ctx = &f->cap;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    (void)nftw(f->base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    po_profile_free(&f->p);
    free(f);
    return 0;
}

static void make_dir(const fx *f)
{
    po_err err;

    assert_int_equal(po_cache_ensure_dir(f->dir, &err), PO_OK);
}

static char *path_in(const fx *f, const char *name)
{
    char *s = NULL;

    assert_true(asprintf(&s, "%s/%s", f->dir, name) > 0);
    return s;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* A complete entry with awkward strings. */
static void sample_entry(po_cache_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->token.access_token = strdup("at-\"quoted\"\\back\\slash/\x01\t\n-end");
    e->token.refresh_token = strdup("rt-\xc3\xa9\xe2\x82\xac-\xf0\x9f\x94\x91");
    e->token.id_token = strdup("eyJhbGciOi.eyJzdWIi.sig");
    e->token.token_type = strdup("Bearer");
    e->token.scope = strdup("read write");
    e->token.extra_json =
        strdup("{\"Retailer_id\":1,\"Roles\":[\"A\",\"B\"],\"FirstName\":"
               "\"J\\u00f6rg\",\"nested\":{\"x\":null,\"y\":1.5}}");
    e->token.obtained_at = 1700000000;
    e->token.expires_at = 1700086400;
    e->token.has_expires_in = 1;
    e->username = strdup("alice@example.com");
    memcpy(e->budget_month, "2023-11", 8);
    e->budget_count = 42;
}

static void read_entry(fx *f, po_cache_entry *e)
{
    po_err err;

    assert_int_equal(po_cache_read(f->dir, &f->p, &f->log, e, &err), PO_OK);
}

/* ------------------------------------------------------------------ */
/* round trip, modes, atomicity                                        */

static void test_round_trip(void **state)
{
    fx *f = *state;
    po_cache_entry in, out;
    po_err err;

    make_dir(f);
    sample_entry(&in);
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    read_entry(f, &out);
    assert_int_equal(f->cap.warnings, 0);
    assert_string_equal(out.token.access_token, in.token.access_token);
    assert_string_equal(out.token.refresh_token, in.token.refresh_token);
    assert_string_equal(out.token.id_token, in.token.id_token);
    assert_string_equal(out.token.token_type, "Bearer");
    assert_string_equal(out.token.scope, "read write");
    assert_int_equal(out.token.obtained_at, 1700000000);
    assert_int_equal(out.token.expires_at, 1700086400);
    assert_int_equal(out.token.has_expires_in, 1);
    assert_string_equal(out.username, "alice@example.com");
    assert_string_equal(out.budget_month, "2023-11");
    assert_int_equal(out.budget_count, 42);
    assert_non_null(out.token.extra_json);
    assert_non_null(strstr(out.token.extra_json, "\"Roles\":[\"A\",\"B\"]"));
    assert_non_null(strstr(out.token.extra_json, "J\xc3\xb6rg"));
    assert_non_null(strstr(out.token.extra_json, "\"nested\":{"));
    assert_int_equal(out.from_pam, 0);
    po_cache_entry_free(&out);

    /* The marker of a session token survives a write and a read. */
    in.from_pam = 1;
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    read_entry(f, &out);
    assert_int_equal(out.from_pam, 1);
    po_cache_entry_free(&out);
    in.from_pam = 0;

    /* An entry with nothing but a budget, and NULL strings. */
    po_cache_entry_free(&in);
    memcpy(in.budget_month, "2024-02", 8);
    in.budget_count = 3;
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    read_entry(f, &out);
    assert_null(out.token.access_token);
    assert_null(out.token.refresh_token);
    assert_null(out.token.extra_json);
    assert_null(out.username);
    assert_string_equal(out.budget_month, "2024-02");
    assert_int_equal(out.budget_count, 3);
    assert_int_equal(f->cap.warnings, 0);
    po_cache_entry_free(&out);
}

/* The pure decoder and encoder: no file, text without a terminating NUL,
 * encode(decode(x)) == x for an encoded entry, and a bad text named. */
/* The wall time the pure decoder is asked at: after sample_entry's
 * obtained_at, before its expiry. */
#define NOW 1700000100

static void test_decode_encode(void **state)
{
    fx *f = *state;
    po_cache_entry in, out, again;
    po_buf b1, b2;
    po_err err;
    char *copy;

    sample_entry(&in);
    po_buf_init(&b1, PO_CACHE_FILE_MAX, 1);
    po_buf_init(&b2, PO_CACHE_FILE_MAX, 1);
    assert_int_equal(po_cache_entry_encode(&f->p, &in, &b1), PO_OK);
    assert_int_equal(b1.data[b1.len - 1], '\n');
    /* decode from a copy that has no NUL after it */
    copy = malloc(b1.len);
    assert_non_null(copy);
    memcpy(copy, b1.data, b1.len);
    assert_int_equal(po_cache_entry_decode(copy, b1.len, &f->p, "mem", NOW,
                                           &f->log, &out, &err),
                     PO_OK);
    free(copy);
    assert_string_equal(out.token.access_token, in.token.access_token);
    assert_string_equal(out.token.refresh_token, in.token.refresh_token);
    assert_string_equal(out.username, in.username);
    assert_string_equal(out.budget_month, "2023-11");
    assert_int_equal(out.budget_count, 42);
    assert_int_equal(po_cache_entry_encode(&f->p, &out, &b2), PO_OK);
    assert_int_equal(b2.len, b1.len);
    assert_memory_equal(b2.data, b1.data, b1.len);
    assert_int_equal(po_cache_entry_decode(b2.data, b2.len, &f->p, "mem", NOW,
                                           &f->log, &again, &err),
                     PO_OK);
    po_cache_entry_free(&again);
    po_cache_entry_free(&out);

    /* a bad text: PO_IO, the reason, an empty entry */
    assert_int_equal(
        po_cache_entry_decode("{\"version\":1,\"budget_count\":-1}", 31, &f->p,
                              "mem", NOW, &f->log, &out, &err),
        PO_IO);
    assert_non_null(strstr(err.msg, "budget_count"));
    assert_null(out.token.access_token);
    /* nothing but white space after the object: not a NUL either */
    assert_int_equal(po_cache_entry_decode("{\"version\":1}\n\0", 15, &f->p,
                                           "mem", NOW, &f->log, &out, &err),
                     PO_IO);
    assert_non_null(strstr(err.msg, "data after the JSON value"));
    assert_int_equal(po_cache_entry_decode("{\"version\":1} \t\r\n", 17, &f->p,
                                           "mem", NOW, &f->log, &out, &err),
                     PO_OK);
    po_cache_entry_free(&out);
    /* another client's token is dropped, its budget kept */
    assert_int_equal(po_str_replace(&f->p.client_id, "other"), PO_OK);
    assert_int_equal(po_cache_entry_decode(b1.data, b1.len, &f->p, "mem", NOW,
                                           &f->log, &out, &err),
                     PO_OK);
    assert_null(out.token.access_token);
    assert_null(out.username);
    assert_int_equal(out.budget_count, 42);
    assert_non_null(strstr(f->cap.last, "mem holds a token for another"));
    po_cache_entry_free(&out);

    /* the buffer's cap holds */
    po_buf_free(&b2);
    po_buf_init(&b2, 64, 1);
    assert_int_equal(po_cache_entry_encode(&f->p, &in, &b2), PO_TOO_LARGE);
    po_buf_free(&b1);
    po_buf_free(&b2);
    po_cache_entry_free(&in);
}

static void test_modes(void **state)
{
    fx *f = *state;
    po_cache_entry in;
    struct stat st;
    po_err err;
    char deep[256], *file, *lock;
    po_lock lk;
    mode_t old = umask(0);

    (void)snprintf(deep, sizeof(deep), "%s/a/b/c", f->dir);
    assert_int_equal(po_cache_ensure_dir(deep, &err), PO_OK);
    umask(old);
    /* Every component created is 0700. */
    assert_int_equal(lstat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(lstat(deep, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    /* The parent that existed keeps its mode. */
    assert_int_equal(chmod(f->base, 0711), 0);
    assert_int_equal(po_cache_ensure_dir(deep, &err), PO_OK);
    assert_int_equal(lstat(f->base, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);

    old = umask(0);
    sample_entry(&in);
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    assert_int_equal(po_cache_lock(f->dir, &f->p, 0, &lk, &err), PO_OK);
    po_cache_unlock(&lk);
    umask(old);
    file = path_in(f, "prof.json");
    lock = path_in(f, "prof.lock");
    assert_int_equal(lstat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(lstat(lock, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    po_cache_entry_free(&in);
    free(file);
    free(lock);
}

/* Names in f->dir other than . and .. , space-separated. */
static void list_dir(const fx *f, char *out, size_t n)
{
    DIR *d = opendir(f->dir);
    struct dirent *de;

    assert_non_null(d);
    out[0] = '\0';
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        strncat(out, de->d_name, n - strlen(out) - 2);
        strcat(out, " ");
    }
    closedir(d);
}

static void test_atomic_no_temp_files(void **state)
{
    fx *f = *state;
    po_cache_entry in, out;
    po_err err;
    char names[1024], *file;
    int i;

    make_dir(f);
    sample_entry(&in);
    for (i = 0; i < 20; i++) {
        in.budget_count = i;
        assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    }
    list_dir(f, names, sizeof(names));
    assert_string_equal(names, "prof.json ");

    /* An entry too large to write: the old file stays, no temp file. */
    free(in.token.extra_json);
    in.token.extra_json = malloc(PO_CACHE_FILE_MAX + 64);
    assert_non_null(in.token.extra_json);
    memset(in.token.extra_json, ' ', PO_CACHE_FILE_MAX + 63);
    memcpy(in.token.extra_json, "{\"k\":\"", 6);
    memset(in.token.extra_json + 6, 'x', PO_CACHE_FILE_MAX);
    strcpy(in.token.extra_json + 6 + PO_CACHE_FILE_MAX, "\"}");
    assert_int_not_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    assert_non_null(strstr(err.msg, "prof.json"));
    list_dir(f, names, sizeof(names));
    assert_string_equal(names, "prof.json ");
    read_entry(f, &out);
    assert_int_equal(out.budget_count, 19);
    po_cache_entry_free(&out);

    /* The rename fails (a directory is in the way): the temporary file is
     * removed. */
    file = path_in(f, "prof.json");
    assert_int_equal(unlink(file), 0);
    assert_int_equal(mkdir(file, 0700), 0);
    free(in.token.extra_json);
    in.token.extra_json = NULL;
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_IO);
    assert_non_null(strstr(err.msg, f->dir));
    list_dir(f, names, sizeof(names));
    assert_string_equal(names, "prof.json ");
    assert_int_equal(rmdir(file), 0);
    po_cache_entry_free(&in);
    free(file);
}

/* A lock holder removes temporary files left by a killed writer. */
static void test_stale_temp_removed_under_lock(void **state)
{
    fx *f = *state;
    po_lock lk;
    po_err err;
    char names[1024], *tmp, *other;

    make_dir(f);
    tmp = path_in(f, "prof.json.AbC123");
    other = path_in(f, "prof.json.keep");
    write_text(tmp, "{", 0600);
    write_text(other, "{", 0600);
    assert_int_equal(po_cache_lock(f->dir, &f->p, 0, &lk, &err), PO_OK);
    po_cache_unlock(&lk);
    list_dir(f, names, sizeof(names));
    assert_null(strstr(names, "prof.json.AbC123"));
    assert_non_null(strstr(names, "prof.json.keep"));
    free(tmp);
    free(other);
}

/* ------------------------------------------------------------------ */
/* unusable files                                                      */

enum setup_kind { TEXT, SYMLINK, DIRECTORY, FIFO, HUGE };

typedef struct bad_case {
    const char *name;
    enum setup_kind kind;
    const char *text;
    mode_t mode;
    int foreign;        /* chown to nobody (root only) */
    const char *reason; /* a substring of the warning */
} bad_case;

#define GOOD                                                                   \
    "{\"version\":1,\"token_url\":\"https://auth.example.test/token\","        \
    "\"client_id\":\"cid\",\"access_token\":\"AT\","                           \
    "\"obtained_at\":1700000000,\"expires_at\":1700003600,"                    \
    "\"budget_month\":\"2024-01\",\"budget_count\":2}"

static const bad_case bad_cases[] = {
    {"corrupt", TEXT, "{\"version\":1,,}", 0600, 0, "invalid JSON"},
    {"truncated", TEXT,
     "{\"version\":1,\"token_url\":\"https://auth.example.test/token\","
     "\"access_tok",
     0600, 0, "truncated"},
    {"empty", TEXT, "", 0600, 0, "empty"},
    {"not an object", TEXT, "[1,2]", 0600, 0, "not a JSON object"},
    {"no version", TEXT, "{\"access_token\":\"AT\"}", 0600, 0, "version"},
    {"future version", TEXT, "{\"version\":2}", 0600, 0, "version"},
    {"token not a string", TEXT, "{\"version\":1,\"access_token\":5}", 0600, 0,
     "access_token"},
    {"expiry not a number", TEXT,
     "{\"version\":1,\"access_token\":\"A\",\"expires_at\":\"soon\"}", 0600, 0,
     "expires_at"},
    {"bool not a bool", TEXT, "{\"version\":1,\"has_expires_in\":\"yes\"}",
     0600, 0, "has_expires_in"},
    {"extra not an object", TEXT, "{\"version\":1,\"extra\":[]}", 0600, 0,
     "extra"},
    {"bad month", TEXT, "{\"version\":1,\"budget_month\":\"January\"}", 0600, 0,
     "budget_month"},
    {"month 13", TEXT, "{\"version\":1,\"budget_month\":\"2024-13\"}", 0600, 0,
     "budget_month"},
    {"month 00", TEXT, "{\"version\":1,\"budget_month\":\"2024-00\"}", 0600, 0,
     "budget_month"},
    {"month not digits", TEXT, "{\"version\":1,\"budget_month\":\"20x4-01\"}",
     0600, 0, "budget_month"},
    {"count too large", TEXT, "{\"version\":1,\"budget_count\":1000000001}",
     0600, 0, "budget_count"},
    {"count beyond int64", TEXT,
     "{\"version\":1,\"budget_count\":99999999999999999999}", 0600, 0,
     "budget_count"},
    {"negative count", TEXT, "{\"version\":1,\"budget_count\":-1}", 0600, 0,
     "budget_count"},
    {"trailing data", TEXT, GOOD " {}", 0600, 0, "after"},
    {"huge", HUGE, NULL, 0600, 0, "larger than"},
    {"symlink", SYMLINK, GOOD, 0600, 0, "symbolic link"},
    {"directory", DIRECTORY, NULL, 0700, 0, "not a regular file"},
    {"fifo", FIFO, NULL, 0600, 0, "not a regular file"},
    {"group writable", TEXT, GOOD, 0620, 0, "0620"},
    {"world readable", TEXT, GOOD, 0604, 0, "0604"},
    {"group readable", TEXT, GOOD, 0640, 0, "0640"},
    {"foreign owner", TEXT, GOOD, 0600, 1, "owned by uid 65534"},
};

static void test_unusable_files(void **state)
{
    fx *f = *state;
    size_t i;
    char *file = path_in(f, "prof.json");
    char *target = path_in(f, "target.json");

    make_dir(f);
    /* The control: GOOD itself is read. */
    {
        po_cache_entry e;
        write_text(file, GOOD, 0600);
        read_entry(f, &e);
        assert_string_equal(e.token.access_token, "AT");
        assert_int_equal(e.budget_count, 2);
        assert_int_equal(f->cap.warnings, 0);
        po_cache_entry_free(&e);
        unlink(file);
    }
    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case *c = &bad_cases[i];
        po_cache_entry e;
        char *big;

        if (c->foreign && geteuid() != 0)
            continue;
        memset(&f->cap, 0, sizeof(f->cap));
        switch (c->kind) {
        case TEXT:
            write_text(file, c->text, c->mode);
            break;
        case SYMLINK:
            write_text(target, c->text, c->mode);
            assert_int_equal(symlink(target, file), 0);
            break;
        case DIRECTORY:
            assert_int_equal(mkdir(file, c->mode), 0);
            break;
        case FIFO:
            assert_int_equal(mkfifo(file, c->mode), 0);
            break;
        case HUGE:
            big = malloc(PO_CACHE_FILE_MAX + 2);
            assert_non_null(big);
            memset(big, ' ', PO_CACHE_FILE_MAX + 1);
            big[PO_CACHE_FILE_MAX + 1] = '\0';
            memcpy(big, GOOD, strlen(GOOD));
            write_text(file, big, c->mode);
            free(big);
            break;
        }
        if (c->foreign)
            assert_int_equal(chown(file, NOBODY, NOBODY), 0);
        read_entry(f, &e);
        if (e.token.access_token != NULL || f->cap.warnings != 1)
            fail_msg("case '%s': token %s, %d warnings (%s)", c->name,
                     e.token.access_token ? "read" : "not read",
                     f->cap.warnings, f->cap.last);
        assert_int_equal(e.budget_count, 0);
        if (strstr(f->cap.last, "token cache ") != f->cap.last ||
            strstr(f->cap.last, file) == NULL ||
            strstr(f->cap.last, c->reason) == NULL ||
            strstr(f->cap.last, "fetching a new token") == NULL ||
            strstr(f->cap.last, "AT\"") != NULL)
            fail_msg("case '%s': warning '%s'", c->name, f->cap.last);
        po_cache_entry_free(&e);
        if (c->kind == DIRECTORY)
            rmdir(file);
        else
            unlink(file);
        unlink(target);
    }
    /* No file: an empty entry and no warning. */
    {
        po_cache_entry e;
        memset(&f->cap, 0, sizeof(f->cap));
        read_entry(f, &e);
        assert_null(e.token.access_token);
        assert_int_equal(f->cap.lines, 0);
        po_cache_entry_free(&e);
    }
    /* No directory either. */
    {
        po_cache_entry e;
        po_err err;
        char missing[256];
        (void)snprintf(missing, sizeof(missing), "%s/none/deeper", f->base);
        assert_int_equal(po_cache_read(missing, &f->p, &f->log, &e, &err),
                         PO_OK);
        assert_null(e.token.access_token);
        po_cache_entry_free(&e);
    }
    free(file);
    free(target);
}

/* Times a cache file may not make us believe (issue 14.5): the token is
 * dropped with a warning naming the file, the budget counter is kept. */
static void test_insane_times(void **state)
{
    static const int64_t now = 1750000000; /* 2025-06-15 */
    static const struct {
        const char *name;
        const char *obtained, *expires; /* JSON numbers */
        int used;                       /* whether the token is believed */
        const char *reason;
    } rows[] = {
        {"sane", "1749999000", "1750003600", 1, NULL},
        {"no obtained_at", NULL, "1750003600", 0, "before 2000"},
        {"obtained in 1970", "0", "3600", 0, "before 2000"},
        {"obtained 1999-12-31T23:59:59", "946684799", "946688399", 0,
         "before 2000"},
        {"obtained 2000-01-01", "946684800", "946688400", 1, NULL},
        {"expires_at -2^63", "1749999000", "-9223372036854775808", 0,
         "not between"},
        {"expires_at 2^62", "1749999000", "4611686018427387904", 0,
         "not between"},
        {"expires_at 2^63-1", "1749999000", "9223372036854775807", 0,
         "not between"},
        {"obtained_at 2^63-1", "9223372036854775807", "9223372036854775807", 0,
         "in the future"},
        {"obtained_at -2^63", "-9223372036854775808", "1750003600", 0,
         "before 2000"},
        {"lifetime 0", "1749999000", "1749999000", 0, "not between"},
        {"expired before obtained", "1749999000", "1749998000", 0,
         "not between"},
        {"lifetime 10 years", "1749999000", "2066223000", 1, NULL},
        {"lifetime 10 years + 1 s", "1749999000", "2066223001", 0,
         "not between"},
        {"obtained 300 s ahead (skew)", "1750000300", "1750003900", 1, NULL},
        {"obtained 301 s ahead", "1750000301", "1750003901", 0,
         "in the future"},
        {"obtained a year ahead", "1781536000", "1781539600", 0,
         "in the future"},
    };
    fx *f = *state;
    char *file = path_in(f, "prof.json");
    char text[1024];
    size_t i;

    make_dir(f);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        po_cache_entry e;
        po_err err;
        int n;

        n = snprintf(text, sizeof(text),
                     "{\"version\":1,\"token_url\":"
                     "\"https://auth.example.test/token\",\"client_id\":"
                     "\"cid\",\"access_token\":\"AT\",\"refresh_token\":"
                     "\"RT\",\"username\":\"u\"%s%s%s%s,"
                     "\"budget_month\":\"2025-06\",\"budget_count\":7}",
                     rows[i].obtained ? ",\"obtained_at\":" : "",
                     rows[i].obtained ? rows[i].obtained : "",
                     rows[i].expires ? ",\"expires_at\":" : "",
                     rows[i].expires ? rows[i].expires : "");
        assert_true(n > 0 && (size_t)n < sizeof(text));
        write_text(file, text, 0600);
        memset(&f->cap, 0, sizeof(f->cap));
        assert_int_equal(
            po_cache_read_at(f->dir, &f->p, now, &f->log, &e, &err), PO_OK);
        if (rows[i].used) {
            if (e.token.access_token == NULL || f->cap.warnings != 0)
                fail_msg("%s: refused (%s)", rows[i].name, f->cap.last);
        } else {
            if (e.token.access_token != NULL || e.token.refresh_token != NULL ||
                e.username != NULL || f->cap.warnings != 1)
                fail_msg("%s: token kept, %d warnings", rows[i].name,
                         f->cap.warnings);
            if (strstr(f->cap.last, file) == NULL ||
                strstr(f->cap.last, rows[i].reason) == NULL ||
                strstr(f->cap.last, "AT") != NULL)
                fail_msg("%s: warning '%s'", rows[i].name, f->cap.last);
        }
        /* The budget counter survives either way. */
        assert_string_equal(e.budget_month, "2025-06");
        assert_int_equal(e.budget_count, 7);
        po_cache_entry_free(&e);
    }
    /* An entry without a token: its times are not looked at. */
    write_text(file,
               "{\"version\":1,\"obtained_at\":-5,\"expires_at\":-9,"
               "\"budget_month\":\"2025-06\",\"budget_count\":3}",
               0600);
    {
        po_cache_entry e;
        po_err err;
        memset(&f->cap, 0, sizeof(f->cap));
        assert_int_equal(
            po_cache_read_at(f->dir, &f->p, now, &f->log, &e, &err), PO_OK);
        assert_int_equal(f->cap.warnings, 0);
        assert_int_equal(e.budget_count, 3);
        po_cache_entry_free(&e);
    }
    free(file);
}

/* The note of a failed renewal (issue 14.8): written, read back, and
 * dropped (the token kept) when it makes no sense. */
static void test_renewal_note(void **state)
{
    static const int64_t now = 1750000000;
    static const struct {
        const char *note;
        int kept;
    } rows[] = {
        {"{\"failed_at\":1749999990,\"after\":1750000010,\"failures\":2,"
         "\"outcome\":\"timeout\",\"message\":\"m\"}",
         1},
        {"[]", 0},
        {"{\"failed_at\":1749999990,\"after\":1749999989,\"failures\":2,"
         "\"outcome\":\"timeout\"}",
         0},
        {"{\"failed_at\":1749999990,\"after\":1750099991,\"failures\":2,"
         "\"outcome\":\"timeout\"}",
         0},
        {"{\"failed_at\":1760000000,\"after\":1760000010,\"failures\":2,"
         "\"outcome\":\"timeout\"}",
         0},
        {"{\"failed_at\":5,\"after\":10,\"failures\":2,\"outcome\":"
         "\"timeout\"}",
         0},
        {"{\"failed_at\":1749999990,\"after\":1750000010,\"failures\":0,"
         "\"outcome\":\"timeout\"}",
         0},
        {"{\"failed_at\":1749999990,\"after\":1750000010,\"failures\":2,"
         "\"outcome\":\"invalid_grant\"}",
         0},
        {"{\"failed_at\":\"x\",\"after\":1750000010,\"failures\":2,"
         "\"outcome\":\"timeout\"}",
         0},
    };
    fx *f = *state;
    po_cache_entry in, out;
    po_err err;
    char *file = path_in(f, "prof.json"), text[1024];
    size_t i;

    make_dir(f);
    sample_entry(&in);
    in.renewal.failed_at = 1700000100;
    in.renewal.after = 1700000120;
    in.renewal.failures = 3;
    in.renewal.rc = PO_SERVER_ERROR;
    strcpy(in.renewal.msg, "token endpoint answered HTTP 503: \"quoted\"");
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);
    assert_int_equal(
        po_cache_read_at(f->dir, &f->p, 1700000200, &f->log, &out, &err),
        PO_OK);
    assert_int_equal(f->cap.warnings, 0);
    assert_int_equal(out.renewal.failed_at, 1700000100);
    assert_int_equal(out.renewal.after, 1700000120);
    assert_int_equal(out.renewal.failures, 3);
    assert_int_equal(out.renewal.rc, PO_SERVER_ERROR);
    assert_string_equal(out.renewal.msg, in.renewal.msg);
    po_cache_entry_free(&out);
    po_cache_entry_free(&in);

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        (void)snprintf(text, sizeof(text),
                       "{\"version\":1,\"token_url\":"
                       "\"https://auth.example.test/token\",\"client_id\":"
                       "\"cid\",\"access_token\":\"AT\",\"obtained_at\":"
                       "1749999000,\"expires_at\":1750003600,\"renewal\":%s}",
                       rows[i].note);
        write_text(file, text, 0600);
        memset(&f->cap, 0, sizeof(f->cap));
        assert_int_equal(
            po_cache_read_at(f->dir, &f->p, now, &f->log, &out, &err), PO_OK);
        assert_string_equal(out.token.access_token, "AT");
        if (rows[i].kept != (out.renewal.failed_at != 0) ||
            f->cap.warnings != !rows[i].kept)
            fail_msg("row %zu: note %s, %d warnings", i,
                     out.renewal.failed_at ? "kept" : "dropped",
                     f->cap.warnings);
        if (!rows[i].kept &&
            (strstr(f->cap.last, file) == NULL ||
             strstr(f->cap.last, "failed renewal is ignored") == NULL))
            fail_msg("row %zu: warning '%s'", i, f->cap.last);
        po_cache_entry_free(&out);
    }
    free(file);
}

/* ------------------------------------------------------------------ */
/* directories                                                         */

static void test_dir_refused(void **state)
{
    fx *f = *state;
    char real[128], link[128], sub[256];
    po_err err;

    (void)snprintf(real, sizeof(real), "%s/real", f->base);
    (void)snprintf(link, sizeof(link), "%s/link", f->base);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, link), 0);
    /* A symlinked directory, with or without a trailing slash. */
    assert_int_equal(po_cache_ensure_dir(link, &err), PO_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_non_null(strstr(err.msg, link));
    (void)snprintf(sub, sizeof(sub), "%s/", link);
    assert_int_equal(po_cache_ensure_dir(sub, &err), PO_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    /* Writable by group or others. */
    assert_int_equal(chmod(real, 0770), 0);
    assert_int_equal(po_cache_ensure_dir(real, &err), PO_IO);
    assert_non_null(strstr(err.msg, "writable by others"));
    assert_int_equal(chmod(real, 0707), 0);
    assert_int_equal(po_cache_ensure_dir(real, &err), PO_IO);
    assert_int_equal(chmod(real, 0755), 0);
    assert_int_equal(po_cache_ensure_dir(real, &err), PO_OK);
    /* Not a directory. */
    (void)snprintf(sub, sizeof(sub), "%s/file", f->base);
    write_text(sub, "x", 0600);
    assert_int_equal(po_cache_ensure_dir(sub, &err), PO_IO);
    assert_non_null(strstr(err.msg, "not a directory"));
    /* Owned by someone else. */
    if (geteuid() == 0) {
        assert_int_equal(chown(real, NOBODY, NOBODY), 0);
        assert_int_equal(po_cache_ensure_dir(real, &err), PO_IO);
        assert_non_null(strstr(err.msg, "owned by uid 65534"));
        assert_non_null(strstr(err.msg, "refusing to use it"));
    }
}

static void test_cache_dir_selection(void **state)
{
    fx *f = *state;
    char *d = NULL;
    po_err err;
    const char *names[] = {"OAUTH_TOKEN_CACHE_DIR", "XDG_RUNTIME_DIR",
                           "XDG_CACHE_HOME", "HOME"};
    char *saved[4];
    size_t i;

    for (i = 0; i < 4; i++)
        saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
    setenv("HOME", "/home/tester", 1);
    setenv("OAUTH_TOKEN_CACHE_DIR", "/run/x/cache", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    setenv("XDG_CACHE_HOME", "/home/tester/.xc", 1);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_OK);
    assert_string_equal(d, "/run/x/cache");
    free(d);
    setenv("OAUTH_TOKEN_CACHE_DIR", "relative/dir", 1);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_OK);
    assert_string_equal(d, "/run/user/1000/pam-oauth");
    free(d);
    unsetenv("OAUTH_TOKEN_CACHE_DIR");
    setenv("XDG_RUNTIME_DIR", "", 1);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_OK);
    assert_string_equal(d, "/home/tester/.xc/pam-oauth");
    free(d);
    setenv("XDG_CACHE_HOME", "rel", 1);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_OK);
    assert_string_equal(d, "/home/tester/.cache/pam-oauth");
    free(d);
    /* The profile's cache_dir wins, with %U %h %% expanded. */
    assert_int_equal(po_str_replace(&f->p.cache_dir, "%h/c/%U/100%%"), PO_OK);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_OK);
    {
        char want[128];
        (void)snprintf(want, sizeof(want), "/home/tester/c/%lu/100%%",
                       (unsigned long)geteuid());
        assert_string_equal(d, want);
    }
    free(d);
    assert_int_equal(po_str_replace(&f->p.cache_dir, "rel/%U"), PO_OK);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "absolute"));
    assert_int_equal(po_str_replace(&f->p.cache_dir, "/x/%q"), PO_OK);
    assert_int_equal(po_cache_dir(&f->p, &d, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "%q"));
    for (i = 0; i < 4; i++) {
        if (saved[i] != NULL)
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
}

static void test_user_dir(void **state)
{
    fx *f = *state;
    char *d = NULL, run[64];
    po_err err;
    const uid_t u = 4000123;
    po_user bob = {"bob", u, u, "/home/bob"}, nohome = {"bob", u, u, NULL};

    /* No /run/user/UID: the home directory. */
    assert_int_equal(po_cache_user_dir(&f->p, &bob, &d, &err), PO_OK);
    assert_string_equal(d, "/home/bob/.cache/pam-oauth");
    free(d);
    assert_int_equal(po_cache_user_dir(&f->p, &nohome, &d, &err), PO_IO);
    /* The profile's cache_dir with the user's values. */
    assert_int_equal(po_str_replace(&f->p.cache_dir, "/var/c/%u-%U%h"), PO_OK);
    assert_int_equal(po_cache_user_dir(&f->p, &bob, &d, &err), PO_OK);
    assert_string_equal(d, "/var/c/bob-4000123/home/bob");
    free(d);
    po_secret_clear(&f->p.cache_dir);
    /* /run/user/UID owned by the user; not when owned by someone else. */
    if (geteuid() == 0 && access("/run/user", W_OK) == 0) {
        (void)snprintf(run, sizeof(run), "/run/user/%lu", (unsigned long)u);
        if (mkdir(run, 0700) == 0) {
            assert_int_equal(chown(run, u, u), 0);
            assert_int_equal(po_cache_user_dir(&f->p, &bob, &d, &err), PO_OK);
            assert_string_equal(d, "/run/user/4000123/pam-oauth");
            free(d);
            assert_int_equal(chown(run, 0, 0), 0);
            assert_int_equal(po_cache_user_dir(&f->p, &bob, &d, &err), PO_OK);
            assert_string_equal(d, "/home/bob/.cache/pam-oauth");
            free(d);
            rmdir(run);
        }
    }
}

/* ------------------------------------------------------------------ */
/* identity                                                            */

static void test_identity_mismatch(void **state)
{
    fx *f = *state;
    po_cache_entry in, out;
    po_profile other;
    po_err err;

    make_dir(f);
    sample_entry(&in);
    assert_int_equal(po_cache_write(f->dir, &f->p, &in, &err), PO_OK);

    /* Same name, another token endpoint. */
    profile_fill(&other, "prof", "https://other.example.test/token", "cid");
    assert_int_equal(po_cache_read(f->dir, &other, &f->log, &out, &err), PO_OK);
    assert_null(out.token.access_token);
    assert_null(out.token.refresh_token);
    assert_null(out.username);
    assert_string_equal(out.budget_month, "2023-11");
    assert_int_equal(out.budget_count, 42);
    assert_int_equal(f->cap.warnings, 0);
    po_cache_entry_free(&out);
    po_profile_free(&other);

    /* Another client. */
    profile_fill(&other, "prof", "https://auth.example.test/token", "cid2");
    assert_int_equal(po_cache_read(f->dir, &other, &f->log, &out, &err), PO_OK);
    assert_null(out.token.access_token);
    assert_int_equal(out.budget_count, 42);
    po_cache_entry_free(&out);
    po_profile_free(&other);

    /* The original profile still gets it. */
    read_entry(f, &out);
    assert_non_null(out.token.access_token);
    po_cache_entry_free(&out);
    po_cache_entry_free(&in);
}

static void test_file_names(void **state)
{
    fx *f = *state;
    char *path = NULL;
    po_err err;
    po_profile bad;

    assert_int_equal(po_cache_file("/c/d/", &f->p, &path, &err), PO_OK);
    assert_string_equal(path, "/c/d/prof.json");
    free(path);
    /* A name that would leave the directory is refused. */
    bad = f->p;
    bad.name = (char *)(uintptr_t) "../x";
    assert_int_equal(po_cache_file("/c", &bad, &path, &err), PO_USAGE);
    bad.name = (char *)(uintptr_t) "a/b";
    assert_int_equal(po_cache_file("/c", &bad, &path, &err), PO_USAGE);
    /* Removing a missing entry is fine. */
    assert_int_equal(po_cache_remove(f->dir, &f->p, &err), PO_OK);
}

/* ------------------------------------------------------------------ */
/* the lock                                                            */

/* Fork a child holding p's lock until killed; returns its pid. */
static pid_t hold_lock(const char *dir, const po_profile *p)
{
    int pfd[2];
    char c;
    pid_t pid;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        po_lock lk;
        po_err err;
        close(pfd[0]);
        if (po_cache_lock(dir, p, 1000, &lk, &err) != PO_OK)
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

static void test_lock_timeout(void **state)
{
    fx *f = *state;
    po_lock lk;
    po_err err;
    uint64_t t0, dt;
    pid_t pid;

    make_dir(f);
    pid = hold_lock(f->dir, &f->p);
    t0 = po_mono_ms();
    assert_int_equal(po_cache_lock(f->dir, &f->p, 300, &lk, &err), PO_LOCKED);
    dt = po_mono_ms() - t0;
    assert_int_equal(lk.fd, -1);
    assert_true(dt >= 300);
    assert_true(dt < 1000);
    assert_non_null(strstr(err.msg, "prof.lock"));
    assert_non_null(strstr(err.msg, "more than 300 ms"));
    /* Zero timeout: one attempt. */
    t0 = po_mono_ms();
    assert_int_equal(po_cache_lock(f->dir, &f->p, 0, &lk, &err), PO_LOCKED);
    assert_true(po_mono_ms() - t0 < 100);
    /* Released when the holder dies (no stale lock). */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_int_equal(po_cache_lock(f->dir, &f->p, 300, &lk, &err), PO_OK);
    assert_true(lk.fd >= 0);
    /* A second lock in the same process is refused while held. */
    {
        po_lock lk2;
        assert_int_equal(po_cache_lock(f->dir, &f->p, 20, &lk2, &err),
                         PO_LOCKED);
    }
    po_cache_unlock(&lk);
    assert_int_equal(lk.fd, -1);
    po_cache_unlock(&lk); /* harmless */
}

static void test_lock_symlink_refused(void **state)
{
    fx *f = *state;
    po_lock lk;
    po_err err;
    char *lock, *target;

    make_dir(f);
    lock = path_in(f, "prof.lock");
    target = path_in(f, "elsewhere");
    assert_int_equal(symlink(target, lock), 0);
    assert_int_equal(po_cache_lock(f->dir, &f->p, 0, &lk, &err), PO_IO);
    assert_non_null(strstr(err.msg, "prof.lock"));
    assert_int_equal(access(target, F_OK), -1);
    free(lock);
    free(target);
}

/* ------------------------------------------------------------------ */
/* as another user                                                     */

static void assert_fsids_root(void)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;

    assert_int_equal(setfsuid((uid_t)-1), 0);
    assert_int_equal(setfsgid((gid_t)-1), 0);
    assert_int_equal(getresuid(&r, &e, &s), 0);
    assert_int_equal(r | e | s, 0);
    assert_int_equal(getresgid(&gr, &ge, &gs), 0);
    assert_int_equal(gr | ge | gs, 0);
}

/* base/NAME owned by nobody, 0700; base made traversable. */
static void nobody_home(const fx *f, const char *name, char *out, size_t n)
{
    assert_int_equal(chmod(f->base, 0711), 0);
    (void)snprintf(out, n, "%s/%s", f->base, name);
    assert_int_equal(mkdir(out, 0700), 0);
    assert_int_equal(chown(out, NOBODY, NOBODY), 0);
}

/* In a child running as nobody: read the entry, check the access token and
 * the budget. */
static int read_as_nobody(const char *dir, const po_profile *p,
                          const char *want_at, long want_count)
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0) {
        po_cache_entry e;
        po_err err;
        if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(10);
        if (po_cache_read(dir, p, NULL, &e, &err) != PO_OK)
            _exit(11);
        if (e.token.access_token == NULL ||
            strcmp(e.token.access_token, want_at) != 0)
            _exit(12);
        if (e.budget_count != want_count)
            _exit(13);
        if (!e.from_pam) /* store_as marks the session's token */
            _exit(14);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

/* In a child running as nobody: write an entry with a budget count. */
static void write_as_nobody(const char *dir, const po_profile *p, long count)
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0) {
        po_cache_entry e;
        po_err err;
        memset(&e, 0, sizeof(e));
        memcpy(e.budget_month, "2024-05", 8);
        e.budget_count = count;
        if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0 ||
            po_cache_ensure_dir(dir, &err) != PO_OK ||
            po_cache_write(dir, p, &e, &err) != PO_OK)
            _exit(1);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_store_as_nobody(void **state)
{
    fx *f = *state;
    char home[128], dir[256], file[300];
    po_token t;
    po_err err;
    struct stat st;

    if (geteuid() != 0)
        skip();
    nobody_home(f, "home", home, sizeof(home));
    (void)snprintf(dir, sizeof(dir), "%s/.cache/pam-oauth", home);
    write_as_nobody(dir, &f->p, 7);

    memset(&t, 0, sizeof(t));
    t.access_token = strdup("AT-for-nobody");
    t.refresh_token = strdup("RT");
    t.token_type = strdup("bearer");
    t.obtained_at = (int64_t)time(NULL);
    t.expires_at = t.obtained_at + 3600;
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, "nobody", NULL, &err),
        PO_OK);
    assert_fsids_root();
    (void)snprintf(file, sizeof(file), "%s/prof.json", dir);
    assert_int_equal(lstat(file, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    assert_int_equal(st.st_gid, NOBODY);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    assert_int_equal(st.st_mode & 07777, 0700);
    (void)snprintf(file, sizeof(file), "%s/prof.lock", dir);
    assert_int_equal(lstat(file, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    /* The user reads it back, the budget kept. */
    assert_int_equal(read_as_nobody(dir, &f->p, "AT-for-nobody", 7), 0);

    /* A fresh tree: every component created belongs to the user. */
    (void)snprintf(dir, sizeof(dir), "%s/new/deeper", home);
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, NULL, NULL, &err), PO_OK);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    assert_fsids_root();

    /* remove_as removes the entry as the user; a missing one is fine. */
    assert_int_equal(po_cache_remove_as(&f->p, &nobody, dir, NULL, &err),
                     PO_OK);
    (void)snprintf(file, sizeof(file), "%s/prof.json", dir);
    assert_int_equal(access(file, F_OK), -1);
    assert_int_equal(po_cache_remove_as(&f->p, &nobody, dir, NULL, &err),
                     PO_OK);
    (void)snprintf(dir, sizeof(dir), "%s/never", home);
    assert_int_equal(po_cache_remove_as(&f->p, &nobody, dir, NULL, &err),
                     PO_OK);
    assert_fsids_root();
    po_token_free(&t);
}

static void test_store_as_refuses_planted_links(void **state)
{
    fx *f = *state;
    char home[128], etc[128], dir[256];
    po_token t;
    po_err err;
    DIR *d;
    struct dirent *de;
    int n = 0;

    if (geteuid() != 0)
        skip();
    nobody_home(f, "home", home, sizeof(home));
    /* A root-owned directory standing in for /etc. */
    (void)snprintf(etc, sizeof(etc), "%s/etc", f->base);
    assert_int_equal(mkdir(etc, 0755), 0);
    memset(&t, 0, sizeof(t));
    t.access_token = strdup("AT");

    /* The cache directory itself is a symlink to it. */
    (void)snprintf(dir, sizeof(dir), "%s/cache", home);
    assert_int_equal(symlink(etc, dir), 0);
    assert_int_equal(lchown(dir, NOBODY, NOBODY), 0);
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, NULL, NULL, &err), PO_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_fsids_root();

    /* A parent is a symlink to it: mkdir as the user is denied there. */
    (void)snprintf(dir, sizeof(dir), "%s/cache/pam-oauth", home);
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, NULL, NULL, &err), PO_IO);
    assert_fsids_root();

    /* The target was not touched. */
    d = opendir(etc);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    assert_int_equal(n, 0);

    /* A directory of the user's that root owns is refused too. */
    (void)snprintf(dir, sizeof(dir), "%s/rootdir", home);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, NULL, NULL, &err), PO_IO);
    assert_fsids_root();
    po_token_free(&t);
}

/* %u takes the account's name as one directory name: a name that would
 * climb, split or hide is refused, naming the reason. */
static void test_user_dir_refuses_bad_names(void **state)
{
    fx *f = *state;
    static const struct {
        const char *name, *why;
    } bad[] = {
        {"..", "'.' or '..'"}, {".", "'.' or '..'"},  {"../root", "'/'"},
        {"a/b", "'/'"},        {"x\001y", "control"}, {"tab\there", "control"},
        {"", "empty"},
    };
    char *d = NULL;
    po_err err;
    size_t i;

    assert_int_equal(po_str_replace(&f->p.cache_dir, "/var/cache/po/%u"),
                     PO_OK);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        po_user u = {bad[i].name, 4000, 4000, "/home/x"};
        assert_int_equal(po_cache_user_dir(&f->p, &u, &d, &err), PO_CONFIG);
        assert_null(d);
        assert_non_null(strstr(err.msg, "cannot be used as a directory"));
        assert_non_null(strstr(err.msg, bad[i].why));
    }
    /* Dots inside a name are fine; %U and %h never take the name. */
    {
        po_user u = {"a.b..c", 4000, 4000, "/home/x"};
        assert_int_equal(po_cache_user_dir(&f->p, &u, &d, &err), PO_OK);
        assert_string_equal(d, "/var/cache/po/a.b..c");
        free(d);
    }
    assert_int_equal(po_str_replace(&f->p.cache_dir, "/var/cache/po/%U"),
                     PO_OK);
    {
        po_user u = {"..", 4000, 4000, "/home/x"};
        assert_int_equal(po_cache_user_dir(&f->p, &u, &d, &err), PO_OK);
        assert_string_equal(d, "/var/cache/po/4000");
        free(d);
    }
}

/* In a child of the test that is root with supplementary group 0 (as sshd
 * or su often are): store for nobody with cache_dir base/%u. */
static int store_with_group_zero(fx *f, const char *base, char *msg,
                                 size_t msglen)
{
    int pfd[2], st;
    pid_t pid;
    ssize_t n;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gid_t zero = 0;
        char tmpl[300], dir[300];
        po_token t;
        po_err err;
        po_rc rc;
        po_user u = nobody;

        close(pfd[0]);
        if (setgroups(1, &zero) != 0)
            _exit(20);
        (void)snprintf(tmpl, sizeof(tmpl), "%s/%%u", base);
        (void)snprintf(dir, sizeof(dir), "%s/nobody", base);
        if (po_str_replace(&f->p.cache_dir, tmpl) != PO_OK)
            _exit(21);
        memset(&t, 0, sizeof(t));
        t.access_token = strdup("AT");
        rc = po_cache_store_as(&f->p, &u, dir, &t, NULL, NULL, &err);
        if (write(pfd[1], err.msg, strlen(err.msg)) < 0)
            _exit(22);
        _exit(rc == PO_OK ? 0 : 1);
    }
    close(pfd[1]);
    n = read(pfd[0], msg, msglen - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The confused deputy: a directory root's group may write (0775
 * root:root) and nobody may not.  A host with group 0 must not make a
 * directory for nobody there: the child that writes has nobody's groups
 * only, and root does not make it either (the directory is not root's
 * alone). */
static void test_store_as_no_confused_deputy(void **state)
{
    fx *f = *state;
    char base[128], mine[160], msg[600];
    struct stat st;

    if (geteuid() != 0)
        skip();
    assert_int_equal(chmod(f->base, 0755), 0);
    (void)snprintf(base, sizeof(base), "%s/group-writable", f->base);
    assert_int_equal(mkdir(base, 0775), 0);
    assert_int_equal(chmod(base, 0775), 0);
    assert_int_equal(chown(base, 0, 0), 0);
    assert_int_equal(store_with_group_zero(f, base, msg, sizeof(msg)), 1);
    (void)snprintf(mine, sizeof(mine), "%s/nobody", base);
    assert_int_equal(lstat(mine, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(msg, "Permission denied"));
    assert_non_null(strstr(msg, "writable by its group"));
}

/* cache_dir = BASE/%u with BASE root's alone (0755 root:root): the user
 * could not make BASE/user, so root makes it, the user's and 0700; the
 * rest is written by the user. */
static void test_store_as_makes_user_dir(void **state)
{
    fx *f = *state;
    char base[128], tmpl[160], dir[160], file[200];
    struct stat st;
    po_token t;
    po_err err;

    if (geteuid() != 0)
        skip();
    assert_int_equal(chmod(f->base, 0755), 0);
    (void)snprintf(base, sizeof(base), "%s/root-only", f->base);
    assert_int_equal(mkdir(base, 0755), 0);
    (void)snprintf(tmpl, sizeof(tmpl), "%s/%%u/tokens", base);
    assert_int_equal(po_str_replace(&f->p.cache_dir, tmpl), PO_OK);
    (void)snprintf(dir, sizeof(dir), "%s/nobody/tokens", base);
    memset(&t, 0, sizeof(t));
    t.access_token = strdup("AT");
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, NULL, NULL, &err), PO_OK);
    (void)snprintf(file, sizeof(file), "%s/nobody", base);
    assert_int_equal(lstat(file, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_uid, NOBODY);
    assert_int_equal(st.st_gid, NOBODY);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    (void)snprintf(file, sizeof(file), "%s/prof.json", dir);
    assert_int_equal(lstat(file, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
    /* Stored again: the directory is there, nothing changes. */
    assert_int_equal(
        po_cache_store_as(&f->p, &nobody, dir, &t, NULL, NULL, &err), PO_OK);
    po_token_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_no_temp_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_temp_removed_under_lock,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insane_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_note, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_dir_selection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_user_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_mismatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_symlink_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_as_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_as_refuses_planted_links,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_dir_refuses_bad_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_as_no_confused_deputy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_as_makes_user_dir, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
