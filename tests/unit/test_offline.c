/* test_offline.c - offline verifiers: the file names, the Argon2id
 * verifier and its encoding, the verdicts (match, wrong, locked, expired,
 * clock), removal, what a damaged or foreign file gets, directory and file
 * checks, the lock and concurrent checks. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <argon2.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "offline.h"
#include "secret.h"

#define T0 1700000000 /* the online login */
#define PW "c0rrect h\xc3\xb6rse \"battery\" staple"

typedef struct capture {
    int warnings, lines;
    char last[1024];
} capture;

static void capture_fn(void *ctx, int priority, const char *msg)
{
    capture *c = ctx;

    c->lines++;
    if (priority <= LOG_WARNING)
        c->warnings++;
    (void)snprintf(c->last, sizeof(c->last), "%s", msg);
}

typedef struct fx {
    char base[64];
    char dir[128];  /* base/offline: offline_dir            */
    char pdir[160]; /* base/offline/default                 */
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

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    po_err err;

    assert_non_null(f);
    strcpy(f->base, "/tmp/test_offline.XXXXXX");
    assert_non_null(mkdtemp(f->base));
    (void)snprintf(f->dir, sizeof(f->dir), "%s/offline", f->base);
    (void)snprintf(f->pdir, sizeof(f->pdir), "%s/default", f->dir);
    assert_int_equal(po_profile_init(&f->p, "default", &err), PO_OK);
    assert_int_equal(po_str_replace(&f->p.token_url, "https://idp.test/token"),
                     PO_OK);
    assert_int_equal(po_str_replace(&f->p.client_id, "cid"), PO_OK);
    assert_int_equal(po_str_replace(&f->p.offline_dir, f->dir), PO_OK);
    f->p.offline_login = 1;
    f->p.lock_timeout_ms = 5000;
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

static char *path_in(const char *dir, const char *name)
{
    char *s = NULL;

    assert_true(asprintf(&s, "%s/%s", dir, name) > 0);
    return s;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "re");
    char *buf = calloc(1, 70000);
    size_t n;

    assert_non_null(fp);
    assert_non_null(buf);
    n = fread(buf, 1, 69999, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static int exists(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    struct stat st;
    int r = lstat(p, &st) == 0;

    free(p);
    return r;
}

static void grants_sample(po_offline_grants *g)
{
    memset(g, 0, sizeof(*g));
    g->scope = strdup("openid api");
    g->roles_claim = strdup("realm_access.roles");
    g->roles_source = PO_ROLES_TOKEN;
    g->has_roles = 1;
    assert_int_equal(po_strlist_split("admin dev", &g->roles), PO_OK);
    /* A role with the characters JSON must escape. */
    g->roles.v = realloc(g->roles.v, 3 * sizeof(char *));
    g->roles.v[2] = strdup("we\"ird\\ro\x01le");
    g->roles.n = 3;
}

static void store(fx *f, const char *user, const char *pw, int64_t now)
{
    po_err err;

    po_err_clear(&err);
    assert_int_equal(po_offline_store(&f->p, user, pw, NULL, now, &err), PO_OK);
}

static po_offline_verdict check(fx *f, const char *user, const char *pw,
                                int64_t now, long *failures)
{
    po_offline_result r;
    po_offline_verdict v;
    po_err err;

    po_err_clear(&err);
    assert_int_equal(po_offline_check(&f->p, user, pw, now, &f->log, &r, &err),
                     PO_OK);
    v = r.verdict;
    if (failures != NULL)
        *failures = r.failures;
    po_offline_result_free(&r);
    return v;
}

/* ------------------------------------------------------------------ */
/* file names                                                          */

static void test_file_names(void **state)
{
    static const struct {
        const char *user, *name;
    } cases[] = {
        {"alice", "alice"},
        {"alice.smith@example.com", "alice.smith@example.com"},
        {"a+b_c-d", "a+b_c-d"},
        {"DOMAIN\\bob", "DOMAIN%5Cbob"},
        {"a/b", "a%2Fb"},
        {"../etc/passwd", "%2E.%2Fetc%2Fpasswd"},
        {".", "%2E"},
        {"..", "%2E."},
        {".hidden", "%2Ehidden"},
        {"x.lock", "x.lock"},
        {"a b", "a%20b"},
        {"50%", "50%25"},
        {"j\xc3\xb6rg", "j%C3%B6rg"},
        {"\x7f", "%7F"},
    };
    char *name = NULL, *names[sizeof(cases) / sizeof(cases[0])];
    char long_user[300];
    size_t i, j;
    po_err err;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(po_offline_file_name(cases[i].user, &names[i], &err),
                         PO_OK);
        assert_string_equal(names[i], cases[i].name);
        assert_null(strchr(names[i], '/'));
        assert_true(names[i][0] != '.');
    }
    /* No two users share a file. */
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (j = i + 1; j < sizeof(cases) / sizeof(cases[0]); j++)
            assert_string_not_equal(names[i], names[j]);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        free(names[i]);
    assert_int_equal(po_offline_file_name("", &name, &err), PO_USAGE);
    memset(long_user, 'u', PO_OFFLINE_NAME_MAX);
    long_user[PO_OFFLINE_NAME_MAX] = '\0';
    assert_int_equal(po_offline_file_name(long_user, &name, &err), PO_OK);
    free(name);
    long_user[PO_OFFLINE_NAME_MAX - 1] = '/'; /* 3 bytes once escaped */
    assert_int_equal(po_offline_file_name(long_user, &name, &err),
                     PO_TOO_LARGE);
    assert_non_null(strstr(err.msg, "too long"));
    assert_null(name);
}

/* ------------------------------------------------------------------ */
/* the verifier                                                        */

/* The stored file: mode, owner, the documented encoding, verifiable by
 * libargon2 itself, the grants, and no password. */
static void test_store_file(void **state)
{
    fx *f = *state;
    po_offline_grants g;
    json_object *o, *v, *roles;
    struct stat st;
    char *path, *text, first[200];
    const char *enc;
    po_err err;

    grants_sample(&g);
    assert_int_equal(po_offline_store(&f->p, "alice", PW, &g, T0, &err), PO_OK);
    po_offline_grants_free(&g);
    assert_int_equal(lstat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(lstat(f->pdir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    path = path_in(f->pdir, "alice");
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    text = slurp(path);
    assert_null(strstr(text, PW));
    assert_null(strstr(text, "c0rrect"));
    o = json_tokener_parse(text);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "verifier", &v));
    enc = json_object_get_string(v);
    (void)snprintf(first, sizeof(first), "$argon2id$v=19$m=%u,t=%u,p=%u$",
                   PO_OFFLINE_M_COST, PO_OFFLINE_T_COST, PO_OFFLINE_LANES);
    assert_int_equal(strncmp(enc, first, strlen(first)), 0);
    /* 16 bytes of salt and 32 of hash: 22 and 43 unpadded base64. */
    assert_int_equal(strlen(enc), strlen(first) + 22 + 1 + 43);
    assert_int_equal(enc[strlen(first) + 22], '$');
    assert_int_equal(argon2id_verify(enc, PW, strlen(PW)), ARGON2_OK);
    assert_int_equal(argon2id_verify(enc, "wrong", 5), ARGON2_VERIFY_MISMATCH);
    assert_true(json_object_object_get_ex(o, "online_at", &v));
    assert_int_equal(json_object_get_int64(v), T0);
    assert_true(json_object_object_get_ex(o, "failures", &v));
    assert_int_equal(json_object_get_int64(v), 0);
    assert_true(json_object_object_get_ex(o, "user", &v));
    assert_string_equal(json_object_get_string(v), "alice");
    assert_true(json_object_object_get_ex(o, "roles", &roles));
    assert_int_equal(json_object_array_length(roles), 3);
    json_object_put(o);
    free(text);
    free(path);
    /* No lock or temporary file left but the lock. */
    assert_true(exists(f->pdir, ".alice.lock"));
}

static void test_salt_differs(void **state)
{
    fx *f = *state;
    char *path = path_in(f->pdir, "alice"), *a, *b;

    store(f, "alice", PW, T0);
    a = slurp(path);
    store(f, "alice", PW, T0);
    b = slurp(path);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
    free(path);
}

static void test_match_and_grants(void **state)
{
    fx *f = *state;
    po_offline_grants g;
    po_offline_result r;
    po_err err;

    grants_sample(&g);
    assert_int_equal(po_offline_store(&f->p, "alice", PW, &g, T0, &err), PO_OK);
    po_offline_grants_free(&g);
    assert_int_equal(
        po_offline_check(&f->p, "alice", PW, T0 + 3600, &f->log, &r, &err),
        PO_OK);
    assert_int_equal(r.verdict, PO_OFFLINE_MATCH);
    assert_int_equal(r.online_at, T0);
    assert_int_equal(r.failures, 0);
    assert_string_equal(r.grants.scope, "openid api");
    assert_string_equal(r.grants.roles_claim, "realm_access.roles");
    assert_int_equal(r.grants.roles_source, PO_ROLES_TOKEN);
    assert_int_equal(r.grants.has_roles, 1);
    assert_int_equal(r.grants.roles.n, 3);
    assert_string_equal(r.grants.roles.v[0], "admin");
    assert_string_equal(r.grants.roles.v[2], "we\"ird\\ro\x01le");
    po_offline_result_free(&r);
    assert_int_equal(f->cap.warnings, 0);

    /* Without grants: nothing granted, roles unknown. */
    store(f, "bob", "bob-pass", T0);
    assert_int_equal(
        po_offline_check(&f->p, "bob", "bob-pass", T0, &f->log, &r, &err),
        PO_OK);
    assert_int_equal(r.verdict, PO_OFFLINE_MATCH);
    assert_null(r.grants.scope);
    assert_int_equal(r.grants.has_roles, 0);
    po_offline_result_free(&r);
}

static void test_password_edges(void **state)
{
    fx *f = *state;
    char longpw[512];
    po_err err;

    memset(longpw, 'p', 511);
    longpw[511] = '\0';
    longpw[3] = '\xff';
    store(f, "alice", longpw, T0);
    assert_int_equal(check(f, "alice", longpw, T0, NULL), PO_OFFLINE_MATCH);
    longpw[510] = 'q';
    assert_int_equal(check(f, "alice", longpw, T0, NULL), PO_OFFLINE_WRONG);
    /* A prefix of the password is wrong. */
    store(f, "alice", "abcdef", T0);
    assert_int_equal(check(f, "alice", "abcde", T0, NULL), PO_OFFLINE_WRONG);
    assert_int_equal(check(f, "alice", "abcdefg", T0, NULL), PO_OFFLINE_WRONG);
    assert_int_equal(po_offline_store(&f->p, "alice", "", NULL, T0, &err),
                     PO_USAGE);
}

/* ------------------------------------------------------------------ */
/* verdicts                                                            */

static void test_wrong_counts_then_match_resets(void **state)
{
    fx *f = *state;
    long failures = -1;
    char *path = path_in(f->pdir, "alice"), *text;

    store(f, "alice", PW, T0);
    assert_int_equal(check(f, "alice", "nope", T0, &failures),
                     PO_OFFLINE_WRONG);
    assert_int_equal(failures, 1);
    assert_int_equal(check(f, "alice", "nope2", T0, &failures),
                     PO_OFFLINE_WRONG);
    assert_int_equal(failures, 2);
    text = slurp(path);
    assert_non_null(strstr(text, "\"failures\":2"));
    free(text);
    assert_int_equal(check(f, "alice", PW, T0, &failures), PO_OFFLINE_MATCH);
    assert_int_equal(failures, 0);
    text = slurp(path);
    assert_non_null(strstr(text, "\"failures\":0"));
    free(text);
    free(path);
}

static void test_locked_until_online(void **state)
{
    fx *f = *state;
    long failures = 0;
    int i;

    f->p.offline_max_failures = 3;
    store(f, "alice", PW, T0);
    for (i = 1; i <= 3; i++) {
        assert_int_equal(check(f, "alice", "guess", T0, &failures),
                         PO_OFFLINE_WRONG);
        assert_int_equal(failures, i);
    }
    /* Even the right password is not checked now. */
    assert_int_equal(check(f, "alice", PW, T0, &failures), PO_OFFLINE_LOCKED);
    assert_int_equal(failures, 3);
    assert_int_equal(check(f, "alice", "guess", T0, &failures),
                     PO_OFFLINE_LOCKED);
    assert_int_equal(failures, 3);
    /* An online login stores a fresh verifier. */
    store(f, "alice", PW, T0 + 60);
    assert_int_equal(check(f, "alice", PW, T0 + 60, &failures),
                     PO_OFFLINE_MATCH);
}

static void test_expired_removed(void **state)
{
    fx *f = *state;

    f->p.offline_lifetime = 86400;
    store(f, "alice", PW, T0);
    assert_int_equal(check(f, "alice", PW, T0 + 86400, NULL), PO_OFFLINE_MATCH);
    assert_int_equal(check(f, "alice", "wrong", T0 + 86401, NULL),
                     PO_OFFLINE_EXPIRED);
    assert_false(exists(f->pdir, "alice"));
    assert_int_equal(check(f, "alice", PW, T0 + 86401, NULL), PO_OFFLINE_NONE);
}

static void test_clock_behind(void **state)
{
    fx *f = *state;

    store(f, "alice", PW, T0);
    assert_int_equal(
        check(f, "alice", PW, T0 - PO_OFFLINE_CLOCK_SLACK - 1, NULL),
        PO_OFFLINE_CLOCK);
    assert_true(exists(f->pdir, "alice"));
    assert_int_equal(check(f, "alice", PW, T0 - PO_OFFLINE_CLOCK_SLACK, NULL),
                     PO_OFFLINE_MATCH);
}

static void test_none_and_remove(void **state)
{
    fx *f = *state;
    struct stat st;
    int removed = -1;
    po_err err;

    /* No directory: NONE, and nothing is created. */
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_NONE);
    assert_int_equal(lstat(f->dir, &st), -1);
    assert_int_equal(po_offline_remove(&f->p, "alice", &removed, &err), PO_OK);
    assert_int_equal(removed, 0);
    store(f, "alice", PW, T0);
    /* Another user: NONE, and no lock file made for them. */
    assert_int_equal(check(f, "carol", PW, T0, NULL), PO_OFFLINE_NONE);
    assert_false(exists(f->pdir, ".carol.lock"));
    assert_int_equal(po_offline_remove(&f->p, "carol", NULL, &err), PO_OK);
    assert_false(exists(f->pdir, ".carol.lock"));
    /* Another profile in the same directory: NONE. */
    assert_int_equal(po_str_replace(&f->p.name, "other"), PO_OK);
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_NONE);
    assert_int_equal(po_str_replace(&f->p.name, "default"), PO_OK);
    assert_int_equal(po_offline_remove(&f->p, "alice", &removed, &err), PO_OK);
    assert_int_equal(removed, 1);
    assert_false(exists(f->pdir, "alice"));
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_NONE);
    assert_int_equal(f->cap.warnings, 0);
}

/* A verifier is only used by the token endpoint and client it came from. */
static void test_foreign_binding_removed(void **state)
{
    fx *f = *state;

    store(f, "alice", PW, T0);
    assert_int_equal(po_str_replace(&f->p.token_url, "https://other.test/t"),
                     PO_OK);
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_NONE);
    assert_false(exists(f->pdir, "alice"));
    assert_non_null(strstr(f->cap.last, "another token_url or client_id"));
    store(f, "alice", PW, T0);
    assert_int_equal(po_str_replace(&f->p.client_id, "cid2"), PO_OK);
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_NONE);
    assert_false(exists(f->pdir, "alice"));
}

/* Damaged contents: removed with a warning, never a crash or a match. */
static void test_damaged_files(void **state)
{
    static const char *const bodies[] = {
        "",
        "garbage",
        "{\"version\":1",
        "{\"version\":2,\"profile\":\"default\"}",
        "[1,2]",
        "{\"version\":1,\"profile\":\"default\",\"user\":\"alice\","
        "\"token_url\":\"https://idp.test/token\",\"client_id\":\"cid\","
        "\"verifier\":\"$argon2i$v=19$m=47104,t=2,p=1$c2FsdHNhbHRzYWx0$"
        "aGFzaGhhc2hoYXNoaGFzaA\",\"online_at\":1700000000,\"failures\":0,"
        "\"scope\":null,\"roles_source\":\"response\",\"roles_claim\":null,"
        "\"roles\":null}",
        "{\"version\":1,\"profile\":\"default\",\"user\":\"alice\","
        "\"token_url\":\"https://idp.test/token\",\"client_id\":\"cid\","
        "\"verifier\":\"$argon2id$v=19$m=4294967295,t=2,p=1$"
        "c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA\",\"online_at\":1700000000,"
        "\"failures\":0,\"scope\":null,\"roles_source\":\"response\","
        "\"roles_claim\":null,\"roles\":null}",
        "{\"version\":1,\"profile\":\"default\",\"user\":\"alice\","
        "\"token_url\":\"https://idp.test/token\",\"client_id\":\"cid\","
        "\"verifier\":\"$argon2id$v=19$m=47104,t=2,p=1$!!!$@@@\","
        "\"online_at\":1700000000,\"failures\":0,\"scope\":null,"
        "\"roles_source\":\"response\",\"roles_claim\":null,\"roles\":null}",
        "{\"version\":1,\"profile\":\"default\",\"user\":\"alice\","
        "\"token_url\":\"https://idp.test/token\",\"client_id\":\"cid\","
        "\"verifier\":\"x\",\"online_at\":-5,\"failures\":0,\"scope\":null,"
        "\"roles_source\":\"response\",\"roles_claim\":null,\"roles\":null}",
        "{\"version\":1,\"profile\":\"default\",\"user\":\"bob\","
        "\"token_url\":\"https://idp.test/token\",\"client_id\":\"cid\","
        "\"verifier\":\"x\",\"online_at\":1700000000,\"failures\":0,"
        "\"scope\":null,\"roles_source\":\"response\",\"roles_claim\":null,"
        "\"roles\":null}",
    };
    fx *f = *state;
    char *path;
    size_t i;

    store(f, "alice", PW, T0);
    path = path_in(f->pdir, "alice");
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int before = f->cap.warnings;

        write_text(path, bodies[i], 0600);
        assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_NONE);
        assert_false(exists(f->pdir, "alice"));
        assert_int_equal(f->cap.warnings, before + 1);
        assert_non_null(strstr(f->cap.last, "removed"));
    }
    free(path);
}

/* Unsafe files and directories are refused and left alone. */
static void test_unsafe_places(void **state)
{
    fx *f = *state;
    char *path = path_in(f->pdir, "alice"), *target, *text;
    po_offline_result r;
    po_err err;

    store(f, "alice", PW, T0);
    /* A symbolic link in the verifier's place. */
    target = path_in(f->base, "target");
    write_text(target, "{}", 0600);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(
        po_offline_check(&f->p, "alice", PW, T0, &f->log, &r, &err), PO_IO);
    assert_int_equal(r.verdict, PO_OFFLINE_NONE);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_true(exists(f->pdir, "alice"));
    /* Storing replaces the link, never writes through it. */
    store(f, "alice", PW, T0);
    text = slurp(target);
    assert_string_equal(text, "{}");
    free(text);
    /* Readable by others. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(
        po_offline_check(&f->p, "alice", PW, T0, &f->log, &r, &err), PO_IO);
    assert_non_null(strstr(err.msg, "group or others"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_MATCH);
    /* A profile directory open to others: refused for check and store. */
    assert_int_equal(chmod(f->pdir, 0755), 0);
    assert_int_equal(
        po_offline_check(&f->p, "alice", PW, T0, &f->log, &r, &err), PO_IO);
    assert_non_null(strstr(err.msg, "mode 0755"));
    assert_non_null(strstr(err.msg, f->pdir));
    assert_int_equal(po_offline_store(&f->p, "alice", PW, NULL, T0, &err),
                     PO_IO);
    assert_int_equal(chmod(f->pdir, 0700), 0);
    /* The top directory too. */
    assert_int_equal(chmod(f->dir, 0711), 0);
    assert_int_equal(po_offline_store(&f->p, "alice", PW, NULL, T0, &err),
                     PO_IO);
    assert_non_null(strstr(err.msg, "offline verifier directory"));
    assert_int_equal(chmod(f->dir, 0700), 0);
    /* A relative offline_dir. */
    assert_int_equal(po_str_replace(&f->p.offline_dir, "rel/dir"), PO_OK);
    assert_int_equal(po_offline_store(&f->p, "alice", PW, NULL, T0, &err),
                     PO_CONFIG);
    assert_non_null(strstr(err.msg, "not an absolute path"));
    free(target);
    free(path);
}

static void test_offline_dir_symlink_refused(void **state)
{
    fx *f = *state;
    char *real = path_in(f->base, "real");
    po_err err;

    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, f->dir), 0);
    assert_int_equal(po_offline_store(&f->p, "alice", PW, NULL, T0, &err),
                     PO_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    /* The profile's directory as a link. */
    assert_int_equal(unlink(f->dir), 0);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(symlink(real, f->pdir), 0);
    assert_int_equal(po_offline_store(&f->p, "alice", PW, NULL, T0, &err),
                     PO_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_non_null(strstr(err.msg, f->pdir));
    assert_int_equal(po_offline_remove(&f->p, "alice", NULL, &err), PO_IO);
    free(real);
}

/* A writer killed mid-write leaves .NAME.XXXXXX: removed under the lock,
 * and only that user's. */
static void test_stale_temps(void **state)
{
    fx *f = *state;
    char *a, *b, *c;

    store(f, "alice", PW, T0);
    a = path_in(f->pdir, ".alice.Ab12Cd");
    b = path_in(f->pdir, ".alice.b.Ab12Cd"); /* user "alice.b"'s */
    c = path_in(f->pdir, "alice.Ab12Cd");    /* user "alice.Ab12Cd" */
    write_text(a, "x", 0600);
    write_text(b, "x", 0600);
    write_text(c, "x", 0600);
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_MATCH);
    assert_false(exists(f->pdir, ".alice.Ab12Cd"));
    assert_true(exists(f->pdir, ".alice.b.Ab12Cd"));
    assert_true(exists(f->pdir, "alice.Ab12Cd"));
    assert_true(exists(f->pdir, ".alice.lock"));
    free(a);
    free(b);
    free(c);
}

static void test_lock_timeout(void **state)
{
    fx *f = *state;
    char *lock = path_in(f->pdir, ".alice.lock");
    po_offline_result r;
    po_err err;
    int fd;

    store(f, "alice", PW, T0);
    fd = open(lock, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    f->p.lock_timeout_ms = 150;
    assert_int_equal(
        po_offline_check(&f->p, "alice", PW, T0, &f->log, &r, &err), PO_LOCKED);
    assert_non_null(strstr(err.msg, ".alice.lock"));
    assert_int_equal(po_offline_store(&f->p, "alice", PW, NULL, T0, &err),
                     PO_LOCKED);
    close(fd);
    assert_int_equal(check(f, "alice", PW, T0, NULL), PO_OFFLINE_MATCH);
    free(lock);
}

/* N processes check a wrong password at once: every failure is counted
 * (no lost update), and the file always parses. */
static void test_concurrent_checks(void **state)
{
    enum { N = 6 };
    fx *f = *state;
    pid_t pids[N];
    long failures = 0;
    int i, status;

    f->p.offline_max_failures = 100;
    store(f, "alice", PW, T0);
    for (i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            po_offline_result r;
            po_err err;
            int ok =
                po_offline_check(&f->p, "alice", i % 2 ? "wrong" : "also wrong",
                                 T0, NULL, &r, &err) == PO_OK &&
                r.verdict == PO_OFFLINE_WRONG;
            /* and one concurrent online login's store */
            if (i == 0)
                ok = ok && po_offline_store(&f->p, "bob", "bob-pass", NULL, T0,
                                            &err) == PO_OK;
            _exit(ok ? 0 : 1);
        }
    }
    for (i = 0; i < N; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(check(f, "alice", "wrong", T0, &failures),
                     PO_OFFLINE_WRONG);
    assert_int_equal(failures, N + 1);
    assert_int_equal(check(f, "bob", "bob-pass", T0, NULL), PO_OFFLINE_MATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_names),
        cmocka_unit_test_setup_teardown(test_store_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_salt_differs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_and_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_counts_then_match_resets,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_until_online, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_binding_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_places, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_dir_symlink_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_temps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_checks, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
