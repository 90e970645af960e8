/*
 * test_config.c - the configuration file, the option table, profiles and
 * client secret loading (common/config.c).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "secret.h"
#include "util.h"

#define SECRET "s3cr3t-MARKER-value"

static char tmpdir[64]; /* "/tmp/test_config.XXXXXX" */
static unsigned file_seq;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

#define assert_contains(hay, needle)                                           \
    do {                                                                       \
        if (strstr((hay), (needle)) == NULL)                                   \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));       \
    } while (0)

#define assert_not_contains(hay, needle)                                       \
    do {                                                                       \
        if (strstr((hay), (needle)) != NULL)                                   \
            fail_msg("\"%s\" contains \"%s\"", (hay), (needle));               \
    } while (0)

static void write_bytes(const char *path, const char *data, size_t len,
                        mode_t mode)
{
    int fd;

    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

/* A new file under tmpdir with content (NUL-terminated) and mode; its path
 * goes to out. */
static void new_file(char *out, size_t n, const char *content, mode_t mode)
{
    (void)snprintf(out, n, "%s/f%u.conf", tmpdir, ++file_seq);
    write_bytes(out, content, strlen(content), mode);
}

/* Load content (mode 0600) into cfg. */
static po_rc load_text(po_config *cfg, const char *content, char *path,
                       size_t n, po_err *err)
{
    new_file(path, n, content, 0600);
    return po_config_load_file(cfg, path, 0, err);
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    (void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    unsetenv("PO_TEST_LEAK");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The table row of name (a test that names a missing key stops here). */
static const po_option *find_opt(const char *name)
{
    size_t n, i;
    const po_option *t = po_options(&n);

    for (i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    fail_msg("no option %s", name);
    abort();
}

/* The numeric value of key in p (retries is an int field, as are booleans
 * and enumerations). */
static long get_num(const po_profile *p, const char *key)
{
    const po_option *o = find_opt(key);
    const char *f;
    int i;
    long l;

    f = (const char *)p + o->offset;
    if (o->type == PO_OPT_BOOL || o->type == PO_OPT_ENUM ||
        strcmp(key, "retries") == 0) {
        memcpy(&i, f, sizeof(i));
        return i;
    }
    memcpy(&l, f, sizeof(l));
    return l;
}

static const char *get_str(const po_profile *p, const char *key)
{
    const po_option *o = find_opt(key);
    const char *s;

    memcpy(&s, (const char *)p + o->offset, sizeof(s));
    return s;
}

static void set_ok(po_profile *p, const char *key, const char *value)
{
    po_err err;

    po_err_clear(&err);
    if (po_profile_set(p, key, value, "test", &err) != PO_OK)
        fail_msg("setting %s: %s", key, err.msg);
}

/* A profile that validates (with a stub-free https URL). */
static void good_profile(po_profile *p, const char *name)
{
    po_err err;

    assert_int_equal(po_profile_init(p, name, &err), PO_OK);
    set_ok(p, "token_url", "https://auth.example.com/oauth/token");
    set_ok(p, "client_id", "client-1");
    set_ok(p, "client_secret_file", "/etc/pam-oauth/client.secret");
}

/* A source file: $PO_SOURCE_DIR/rel, ../../rel (cwd tests/unit), rel (cwd
 * the top directory), or relative to this binary (plain and build/san). */
static char *source_file(const char *rel)
{
    const char *top = getenv("PO_SOURCE_DIR");
    char exe[PATH_MAX], cand[PATH_MAX * 2], *slash;
    const char *prefixes[4];
    size_t i, np = 0;
    ssize_t n;

    if (top != NULL && top[0] != '\0') {
        (void)snprintf(cand, sizeof(cand), "%s/%s", top, rel);
        return strdup(cand);
    }
    prefixes[np++] = "../../";
    prefixes[np++] = "";
    for (i = 0; i < np; i++) {
        (void)snprintf(cand, sizeof(cand), "%s%s", prefixes[i], rel);
        if (access(cand, R_OK) == 0)
            return strdup(cand);
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        if ((slash = strrchr(exe, '/')) != NULL)
            *slash = '\0';
        prefixes[0] = "/../../";
        prefixes[1] = "/../../../../";
        for (i = 0; i < 2; i++) {
            (void)snprintf(cand, sizeof(cand), "%s%s%s", exe, prefixes[i], rel);
            if (access(cand, R_OK) == 0)
                return strdup(cand);
        }
    }
    fail_msg("cannot find %s: set PO_SOURCE_DIR to the source directory", rel);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The option table                                                    */

static void test_table(void **state)
{
    static const char *const keys[] = {"allow_http",
                                       "audience",
                                       "body",
                                       "budget",
                                       "ca_file",
                                       "cache_dir",
                                       "client_auth",
                                       "client_id",
                                       "client_secret",
                                       "client_secret_command",
                                       "client_secret_file",
                                       "connect_timeout",
                                       "default_lifetime",
                                       "device_authorization_url",
                                       "device_fallback_on",
                                       "device_prompt",
                                       "device_qr",
                                       "device_timeout",
                                       "git_username",
                                       "grant",
                                       "introspection_url",
                                       "issuer",
                                       "jwks_cache_dir",
                                       "jwks_uri",
                                       "jwt_algorithms",
                                       "jwt_audience",
                                       "jwt_leeway",
                                       "jwt_typ",
                                       "lock_timeout",
                                       "match",
                                       "minimum_uid",
                                       "offline_dir",
                                       "offline_lifetime",
                                       "offline_login",
                                       "offline_max_failures",
                                       "password_fallback",
                                       "refresh_interval",
                                       "refresh_margin",
                                       "registry_username",
                                       "remove_on_close",
                                       "require_roles",
                                       "require_scope",
                                       "resource",
                                       "retries",
                                       "roles_claim",
                                       "roles_source",
                                       "scope",
                                       "shared_cache",
                                       "shared_cache_ca_file",
                                       "shared_cache_client_cert",
                                       "shared_cache_client_key",
                                       "shared_cache_endpoints",
                                       "shared_cache_fallback",
                                       "shared_cache_key_file",
                                       "shared_cache_password_file",
                                       "shared_cache_prefix",
                                       "shared_cache_timeout",
                                       "shared_cache_user",
                                       "store_token",
                                       "timeout",
                                       "token_url",
                                       "user_claim",
                                       "username",
                                       "username_format",
                                       "verify",
                                       "verify_token"};
    size_t n, i, j;
    const po_option *t = po_options(&n);
    po_profile p;
    po_err err;

    (void)state;
    assert_int_equal(n, sizeof(keys) / sizeof(keys[0]));
    for (i = 0; i < n; i++) {
        assert_string_equal(t[i].name, keys[i]);
        if (i > 0)
            assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
        assert_non_null(t[i].doc);
        assert_true(strlen(t[i].doc) > 10 && strchr(t[i].doc, '\n') == NULL);
        assert_true(t[i].who >= PO_FOR_PAM && t[i].who <= PO_FOR_BOTH);
        assert_true(t[i].min <= t[i].max);
        assert_int_equal(t[i].type == PO_OPT_ENUM, t[i].enum_values != NULL);
        if (t[i].type != PO_OPT_STRING && t[i].type != PO_OPT_SECRET)
            assert_non_null(t[i].def); /* every number has a default */
        if (t[i].def != NULL && t[i].type == PO_OPT_ENUM) {
            for (j = 0; t[i].enum_values[j] != NULL; j++)
                if (strcmp(t[i].def, t[i].enum_values[j]) == 0)
                    break;
            assert_non_null(t[i].enum_values[j]);
        }
        for (j = 0; j < i; j++)
            assert_true(t[i].offset != t[j].offset);
        assert_true(po_option_known(t[i].name));
    }
    assert_int_equal(find_opt("client_secret")->type, PO_OPT_SECRET);
    assert_true(po_option_known("param.tenant"));
    assert_true(po_option_known("param.a.b-c_d"));
    assert_false(po_option_known("param."));
    assert_false(po_option_known("param.a b"));
    assert_false(po_option_known("colour"));
    assert_false(po_option_known("Token_URL"));
    assert_false(po_option_known(NULL));

    /* Every default parses: init applies them all. */
    assert_int_equal(po_profile_init(&p, "defaults", &err), PO_OK);
    po_profile_free(&p);
}

static void test_defaults(void **state)
{
    static const struct {
        const char *key;
        long num;
    } nums[] = {
        {"allow_http", 0},
        {"body", PO_BODY_FORM},
        {"budget", 0},
        {"client_auth", PO_CLIENT_AUTH_BASIC},
        {"connect_timeout", 5000},
        {"default_lifetime", 3600},
        {"device_prompt", 1},
        {"device_qr", 0},
        {"device_timeout", 300},
        {"grant", PO_GRANT_CLIENT_CREDENTIALS},
        {"lock_timeout", 10000},
        {"minimum_uid", 1000},
        {"offline_lifetime", 7 * 86400},
        {"offline_login", 0},
        {"offline_max_failures", 5},
        {"password_fallback", PO_FALLBACK_NONE},
        {"refresh_interval", 0},
        {"refresh_margin", -1},
        {"remove_on_close", 0},
        {"retries", 2},
        {"shared_cache", PO_SHARED_NONE},
        {"shared_cache_fallback", PO_FALLBACK_LOCAL},
        {"shared_cache_timeout", 5000},
        {"store_token", 0},
        {"timeout", 20000},
    };
    po_profile p;
    po_err err;
    size_t i;

    (void)state;
    assert_int_equal(po_profile_init(&p, "d", &err), PO_OK);
    assert_string_equal(p.name, "d");
    assert_null(p.source);
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (get_num(&p, nums[i].key) != nums[i].num)
            fail_msg("default of %s: %ld, expected %ld", nums[i].key,
                     get_num(&p, nums[i].key), nums[i].num);
    assert_int_equal(p.connect_timeout_ms, 5000);
    assert_int_equal(p.timeout_ms, 20000);
    assert_int_equal(p.lock_timeout_ms, 10000);
    assert_int_equal(p.retries, 2);
    assert_string_equal(p.username_format, "%u");
    assert_string_equal(p.roles_claim, "Roles");
    assert_string_equal(p.git_username, "oauth2");
    assert_string_equal(p.offline_dir, "/var/lib/pam-oauth/offline");
    assert_string_equal(p.shared_cache_prefix, "/pam-oauth/");
    assert_null(p.token_url);
    assert_null(p.client_id);
    assert_null(p.client_secret);
    assert_null(p.params);
    assert_int_equal(p.nparams, 0);
    po_profile_free(&p);
}

/* ------------------------------------------------------------------ */
/* Values of every type                                                */

typedef struct value_case {
    const char *key;
    const char *value;
    int ok;
    long num;         /* ok, numeric types                 */
    const char *str;  /* ok, strings (NULL: unset)         */
    const char *what; /* not ok: part of the message       */
} value_case;

#define GOOD(k, v, n)                                                          \
    {                                                                          \
        k, v, 1, n, NULL, NULL                                                 \
    }
#define GOODS(k, v, s)                                                         \
    {                                                                          \
        k, v, 1, 0, s, NULL                                                    \
    }
#define BAD(k, v, w)                                                           \
    {                                                                          \
        k, v, 0, 0, NULL, w                                                    \
    }

static const value_case value_cases[] = {
    /* booleans */
    GOOD("allow_http", "yes", 1),
    GOOD("allow_http", "No", 0),
    GOOD("allow_http", "true", 1),
    GOOD("allow_http", "FALSE", 0),
    GOOD("allow_http", "on", 1),
    GOOD("allow_http", "off", 0),
    GOOD("allow_http", "1", 1),
    GOOD("store_token", "0", 0),
    GOOD("remove_on_close", "On", 1),
    BAD("allow_http", "maybe", "'maybe' is not a boolean"),
    BAD("store_token", "2", "'2' is not a boolean"),
    BAD("remove_on_close", "yes please", "is not a boolean"),
    /* enumerations */
    GOOD("grant", "client_credentials", PO_GRANT_CLIENT_CREDENTIALS),
    GOOD("grant", "password", PO_GRANT_PASSWORD),
    GOOD("grant", "refresh_token", PO_GRANT_REFRESH_TOKEN),
    GOOD("grant", "PASSWORD", PO_GRANT_PASSWORD),
    GOOD("client_auth", "basic", PO_CLIENT_AUTH_BASIC),
    GOOD("client_auth", "post", PO_CLIENT_AUTH_POST),
    GOOD("client_auth", "none", PO_CLIENT_AUTH_NONE),
    GOOD("body", "form", PO_BODY_FORM),
    GOOD("body", "json", PO_BODY_JSON),
    GOOD("body", "query", PO_BODY_QUERY),
    BAD("grant", "implicit",
        "'implicit' is not one of client_credentials, password, "
        "refresh_token"),
    BAD("client_auth", "private_key_jwt",
        "'private_key_jwt' is not one of basic, post, none"),
    BAD("body", "xml", "'xml' is not one of form, json, query"),
    /* durations (seconds) */
    GOOD("default_lifetime", "90", 90),
    GOOD("default_lifetime", "90s", 90),
    GOOD("default_lifetime", "10m", 600),
    GOOD("default_lifetime", "24h", 86400),
    GOOD("default_lifetime", "1d", 86400),
    GOOD("default_lifetime", "2D", 172800),
    GOOD("refresh_interval", "10m", 600),
    GOOD("refresh_interval", "0", 0),
    GOOD("refresh_margin", "auto", -1),
    GOOD("refresh_margin", "AUTO", -1),
    GOOD("refresh_margin", "-1", -1),
    GOOD("refresh_margin", "0", 0),
    GOOD("refresh_margin", "5m", 300),
    GOOD("refresh_margin", "1d", 86400),
    BAD("default_lifetime", "0",
        "'0' is out of range (1 to 315360000 "
        "seconds)"),
    BAD("default_lifetime", "-5", "is out of range"),
    BAD("default_lifetime", "11y", "'11y' is not a duration"),
    BAD("default_lifetime", "10x", "is not a duration"),
    BAD("default_lifetime", "1.5h", "is not a duration"),
    BAD("default_lifetime", "10 m", "is not a duration"),
    BAD("default_lifetime", "+10", "is not a duration"),
    BAD("default_lifetime", "h", "is not a duration"),
    BAD("default_lifetime", "99999999999999999999", "is too large"),
    BAD("default_lifetime", "9223372036854775807d", "is too large"),
    BAD("default_lifetime", "9223372036854775807", "is out of range"),
    BAD("refresh_interval", "2y", "is not a duration"),
    BAD("refresh_interval", "366d", "is out of range (0 to 31536000"),
    BAD("refresh_margin", "-2",
        "is out of range (auto, or 0 to 86400 "
        "seconds)"),
    BAD("refresh_margin", "2d", "is out of range (auto, or 0 to 86400"),
    BAD("refresh_margin", "soon", "is not a duration"),
    /* milliseconds */
    GOOD("connect_timeout", "250", 250),
    GOOD("connect_timeout", "500ms", 500),
    GOOD("connect_timeout", "5s", 5000),
    GOOD("connect_timeout", "1m", 60000),
    GOOD("timeout", "20s", 20000),
    GOOD("timeout", "1h", 3600000),
    GOOD("timeout", "1MS", 1),
    GOOD("lock_timeout", "0", 0),
    GOOD("lock_timeout", "10m", 600000),
    BAD("connect_timeout", "0", "'0' is out of range (1 to 300000 ms)"),
    BAD("connect_timeout", "5 s", "is not a time"),
    BAD("connect_timeout", "5sec", "is not a time"),
    BAD("timeout", "2h", "is out of range (1 to 3600000 ms)"),
    BAD("timeout", "-1", "is out of range"),
    BAD("timeout", "1d", "is not a time"),
    BAD("lock_timeout", "-1ms", "is out of range"),
    BAD("timeout", "99999999999999999h", "is too large"),
    /* integers */
    GOOD("retries", "0", 0),
    GOOD("retries", "10", 10),
    GOOD("budget", "1000", 1000),
    GOOD("budget", "0", 0),
    GOOD("minimum_uid", "0", 0),
    GOOD("minimum_uid", "65534", 65534),
    BAD("retries", "11", "'11' is out of range (0 to 10)"),
    BAD("retries", "-1", "is out of range"),
    BAD("retries", "two", "'two' is not a decimal integer"),
    BAD("retries", "3x", "is not a decimal integer"),
    BAD("retries", "3s", "is not a decimal integer"),
    BAD("budget", "1e3", "is not a decimal integer"),
    BAD("budget", "-1", "is out of range"),
    BAD("minimum_uid", "4294967296", "is out of range"),
    BAD("minimum_uid", "+5", "is not a decimal integer"),
    BAD("minimum_uid", "0x10", "is not a decimal integer"),
    GOOD("offline_max_failures", "1", 1),
    GOOD("offline_max_failures", "1000", 1000),
    BAD("offline_max_failures", "0", "'0' is out of range (1 to 1000)"),
    BAD("offline_max_failures", "1001", "is out of range"),
    GOOD("offline_lifetime", "60", 60),
    GOOD("offline_lifetime", "12h", 43200),
    GOOD("offline_lifetime", "365d", 31536000),
    BAD("offline_lifetime", "59",
        "'59' is out of range (60 to 31536000 seconds)"),
    BAD("offline_lifetime", "366d", "is out of range"),
    GOOD("offline_login", "yes", 1),
    BAD("offline_login", "maybe", "is not a boolean"),
    /* strings */
    GOODS("token_url", "https://auth.example.com/oauth/token",
          "https://auth.example.com/oauth/token"),
    GOODS("scope", "read:consumers write:consumers",
          "read:consumers write:consumers"),
    GOODS("username_format", "%u@example.com", "%u@example.com"),
    GOODS("roles_claim", "realm_access.roles", "realm_access.roles"),
    GOODS("client_secret_command", "pass show oauth/client",
          "pass show oauth/client"),
    GOODS("scope", "tab\tinside", "tab\tinside"),
    BAD("scope", "bell\a", "the value contains a control character"),
    BAD("audience", "esc\x1b[0m", "the value contains a control character"),
    /* values with control characters are never echoed */
    BAD("timeout", "1\x1b[31m", "'(a value with control characters)' is not"),
    BAD("grant", "x\x1b", "'(a value with control characters)' is not one"),
    /* unknown keys */
    BAD("colour", "blue", "unknown key"),
    BAD("Token_URL", "https://a", "unknown key"),
};

static void test_values(void **state)
{
    size_t i;
    char path[PATH_MAX], content[PO_CONFIG_LINE_MAX + 64], want[PATH_MAX + 80];

    (void)state;
    for (i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
        const value_case *c = &value_cases[i];
        po_profile p;
        po_config cfg;
        po_err err;
        po_rc rc;

        /* po_profile_set, with where verbatim */
        assert_int_equal(po_profile_init(&p, "v", &err), PO_OK);
        po_err_clear(&err);
        rc = po_profile_set(&p, c->key, c->value, "PAM argument 'x'", &err);
        if (c->ok) {
            if (rc != PO_OK)
                fail_msg("%s = %s: %s", c->key, c->value, err.msg);
            if (c->str != NULL)
                assert_string_equal(get_str(&p, c->key), c->str);
            else
                assert_int_equal(get_num(&p, c->key), c->num);
        } else {
            if (rc != PO_CONFIG)
                fail_msg("%s = %s: accepted", c->key, c->value);
            (void)snprintf(want, sizeof(want),
                           "PAM argument 'x': key '%s': ", c->key);
            if (strncmp(err.msg, want, strlen(want)) != 0)
                fail_msg("message \"%s\" does not start with \"%s\"", err.msg,
                         want);
            assert_contains(err.msg, c->what);
        }
        po_profile_free(&p);

        /* the same line in a file: messages name file:line and key */
        if (strpbrk(c->value, "\a\x1b") != NULL)
            continue;
        (void)snprintf(content, sizeof(content),
                       "[v]\n# the value\n  %s =   %s  \n", c->key, c->value);
        po_config_init(&cfg);
        rc = load_text(&cfg, content, path, sizeof(path), &err);
        if (c->ok) {
            if (rc != PO_OK)
                fail_msg("file %s = %s: %s", c->key, c->value, err.msg);
            if (c->str != NULL)
                assert_string_equal(get_str(&cfg.profiles[0], c->key), c->str);
            else
                assert_int_equal(get_num(&cfg.profiles[0], c->key), c->num);
        } else {
            assert_int_equal(rc, PO_CONFIG);
            (void)snprintf(want, sizeof(want), "%s:3: key '%s': ", path,
                           c->key);
            if (strncmp(err.msg, want, strlen(want)) != 0)
                fail_msg("message \"%s\" does not start with \"%s\"", err.msg,
                         want);
            assert_contains(err.msg, c->what);
            assert_int_equal(cfg.nprofiles, 0); /* transactional */
        }
        po_config_free(&cfg);
    }
}

/* A failed set leaves the field alone; "" restores the default. */
static void test_set_keeps_and_resets(void **state)
{
    po_profile p;
    po_err err;

    (void)state;
    assert_int_equal(po_profile_init(&p, "r", &err), PO_OK);
    set_ok(&p, "timeout", "7s");
    assert_int_equal(po_profile_set(&p, "timeout", "7 s", "here", &err),
                     PO_CONFIG);
    assert_int_equal(p.timeout_ms, 7000);
    set_ok(&p, "timeout", "");
    assert_int_equal(p.timeout_ms, 20000);
    set_ok(&p, "username_format", "%u@corp");
    set_ok(&p, "username_format", "");
    assert_string_equal(p.username_format, "%u");
    set_ok(&p, "scope", "a b");
    set_ok(&p, "scope", NULL);
    assert_null(p.scope);
    set_ok(&p, "grant", "password");
    set_ok(&p, "grant", "");
    assert_int_equal(p.grant, PO_GRANT_CLIENT_CREDENTIALS);
    /* where NULL and bad arguments */
    assert_int_equal(po_profile_set(&p, "nope", "1", NULL, &err), PO_CONFIG);
    assert_contains(err.msg, "key 'nope': unknown key");
    assert_int_equal(po_profile_set(&p, "bad\x1b[2J", "1", "w", &err),
                     PO_CONFIG);
    assert_string_equal(err.msg, "w: key '(a value with control characters)': "
                                 "unknown key");
    assert_int_equal(po_profile_set(NULL, "scope", "x", "w", &err), PO_USAGE);
    assert_int_equal(po_profile_set(&p, NULL, "x", "w", NULL), PO_USAGE);
    po_profile_free(&p);
}

/* ------------------------------------------------------------------ */
/* Syntax                                                              */

typedef struct quote_case {
    const char *line_value; /* as written after "scope = "  */
    const char *value;      /* result; NULL: unset / error  */
    const char *what;       /* error message part, or NULL  */
} quote_case;

static const quote_case quote_cases[] = {
    {"\"a \\\"b\\\" \\\\ c\"", "a \"b\" \\ c", NULL},
    {"\"  spaced  \"", "  spaced  ", NULL},
    {"\"a\"   ", "a", NULL},
    {"\"\"", NULL, NULL},
    {"a\"b\"", "a\"b\"", NULL},
    {"\"# not a comment\"", "# not a comment", NULL},
    {"value # not a comment", "value # not a comment", NULL},
    {"value ; not a comment", "value ; not a comment", NULL},
    {"a = b", "a = b", NULL},
    {"\"unterminated", NULL, "unterminated quoted value"},
    {"\"ends in an escaped quote\\\"", NULL, "unterminated quoted value"},
    {"\"ends in a backslash\\", NULL, "unterminated quoted value"},
    {"\"a\" b", NULL, "text after the closing quote"},
    {"\"a\" # comment", NULL, "text after the closing quote"},
    {"\"a\\nb\"", NULL, "a backslash must be followed by"},
};

static void test_quoting(void **state)
{
    size_t i;
    char path[PATH_MAX], content[512], want[PATH_MAX + 64];

    (void)state;
    for (i = 0; i < sizeof(quote_cases) / sizeof(quote_cases[0]); i++) {
        const quote_case *c = &quote_cases[i];
        po_config cfg;
        po_err err;
        po_rc rc;

        po_config_init(&cfg);
        (void)snprintf(content, sizeof(content), "[q]\nscope = %s\n",
                       c->line_value);
        rc = load_text(&cfg, content, path, sizeof(path), &err);
        if (c->what == NULL) {
            if (rc != PO_OK)
                fail_msg("%s: %s", c->line_value, err.msg);
            if (c->value == NULL)
                assert_null(cfg.profiles[0].scope);
            else
                assert_string_equal(cfg.profiles[0].scope, c->value);
        } else {
            assert_int_equal(rc, PO_CONFIG);
            (void)snprintf(want, sizeof(want), "%s:2: key 'scope': ", path);
            assert_contains(err.msg, want);
            assert_contains(err.msg, c->what);
        }
        po_config_free(&cfg);
    }
}

static void test_crlf_comments_blank(void **state)
{
    char path[PATH_MAX];
    po_config cfg;
    po_err err;
    po_profile *p;

    (void)state;
    po_config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "\xef\xbb\xbf# a comment\r\n"
                               "; another\r\n"
                               "   # indented\r\n"
                               "\t; tab-indented\r\n"
                               "\r\n"
                               "   \r\n"
                               "[crlf]\r\n"
                               "token_url = https://a.example/token\r\n"
                               "scope = \"quoted\"\r\n"
                               "audience = plain \r\n"
                               "  # inside a section\r\n"
                               "timeout=3s\r\n"
                               "resource = last line without newline",
                               path, sizeof(path), &err),
                     PO_OK);
    assert_int_equal(cfg.nprofiles, 1);
    p = &cfg.profiles[0];
    assert_string_equal(p->name, "crlf");
    assert_string_equal(p->token_url, "https://a.example/token");
    assert_string_equal(p->scope, "quoted");
    assert_string_equal(p->audience, "plain");
    assert_string_equal(p->resource, "last line without newline");
    assert_int_equal(p->timeout_ms, 3000);
    assert_non_null(p->source);
    assert_contains(p->source, ":7");
    po_config_free(&cfg);

    /* an empty file and a file of comments are fine */
    assert_int_equal(load_text(&cfg, "", path, sizeof(path), &err), PO_OK);
    assert_int_equal(load_text(&cfg, "# nothing\n\n", path, sizeof(path), &err),
                     PO_OK);
    assert_int_equal(cfg.nprofiles, 0);
}

typedef struct syntax_case {
    const char *content;
    int line;
    const char *what;
} syntax_case;

static const syntax_case syntax_cases[] = {
    {"scope = x\n[a]\n", 1, "key 'scope': set before any [profile] section"},
    {"# c\n\ntimeout = 1s\n", 3, "key 'timeout': set before any [profile]"},
    {"[a]\njust words\n", 2,
     "expected 'key = value', '[profile]' or a "
     "comment"},
    {"[a]\n= value\n", 2, "no key before '='"},
    {"[a]\ncolour = blue\n", 2, "key 'colour': unknown key"},
    {"[a]\nclient id = x\n", 2, "key 'client id': unknown key"},
    {"[]\n", 1, "bad profile name ''"},
    {"[ ]\n", 1, "bad profile name ''"},
    {"[.hidden]\n", 1, "bad profile name '.hidden'"},
    {"[a b]\n", 1, "bad profile name 'a b'"},
    {"[a/b]\n", 1, "bad profile name 'a/b'"},
    {"[caf\xc3\xa9]\n", 1, "bad profile name"},
    {"[a]\n[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]"
     "\n",
     2, "bad profile name"},
    {"[a\n", 1, "section header without a closing ']'"},
    {"[a] junk\n", 1, "text after ']' in a section header"},
    {"[a]]\n", 1, "text after ']'"},
};

static void test_syntax_errors(void **state)
{
    size_t i;
    char path[PATH_MAX], want[PATH_MAX + 32];

    (void)state;
    for (i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
        po_config cfg;
        po_err err;

        po_config_init(&cfg);
        if (load_text(&cfg, syntax_cases[i].content, path, sizeof(path),
                      &err) != PO_CONFIG)
            fail_msg("accepted: %s", syntax_cases[i].content);
        (void)snprintf(want, sizeof(want), "%s:%d: ", path,
                       syntax_cases[i].line);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("\"%s\" does not start with \"%s\"", err.msg, want);
        assert_contains(err.msg, syntax_cases[i].what);
        assert_int_equal(cfg.nprofiles, 0);
    }
}

static void test_profile_names(void **state)
{
    static const struct {
        const char *header;
        const char *name;
    } good[] = {
        {"[a]", "a"},
        {"[ spaced ]", "spaced"},
        {"[Wave.prod-EU_2]", "Wave.prod-EU_2"},
        {"[a.]", "a."},
        {"[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    };
    static const char *const bad[] = {"", ".x", "a b", "a/b", "x:y", "a\n"};
    char path[PATH_MAX], content[256];
    po_profile p;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        po_config cfg;
        po_config_init(&cfg);
        (void)snprintf(content, sizeof(content), "%s\n", good[i].header);
        if (load_text(&cfg, content, path, sizeof(path), &err) != PO_OK)
            fail_msg("%s: %s", good[i].header, err.msg);
        assert_non_null(po_config_find(&cfg, good[i].name));
        po_config_free(&cfg);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(po_profile_init(&p, bad[i], &err), PO_CONFIG);
        assert_contains(err.msg, "bad profile name");
        assert_null(p.name);
    }
    assert_int_equal(po_profile_init(&p, NULL, &err), PO_CONFIG);
}

/* What a file or an argument says is shown in messages only without its
 * control characters (they could forge log lines or drive a terminal):
 * keys of quoted values and profile names included. */
static void test_messages_without_control_chars(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"[a]\nclient_secret\x16 = \"x\n", "unterminated quoted value"},
        {"[a]\nscope\x1b[2J = \"a\\b\"\n", "a backslash must be followed"},
        {"[a]\nscope\r\x7f = \"a\" b\n", "text after the closing quote"},
        {"[bad\x1b[31mname]\n", "bad profile name"},
    };
    const char *s;
    po_config cfg;
    po_profile p;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        po_config_init(&cfg);
        assert_int_equal(po_config_load_buffer(&cfg, "c.conf", S_IFREG | 0600,
                                               cases[i].text,
                                               strlen(cases[i].text), &err),
                         PO_CONFIG);
        assert_contains(err.msg, cases[i].want);
        for (s = err.msg; *s != '\0'; s++)
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                fail_msg("case %zu: control character in \"%s\"", i, err.msg);
        po_config_free(&cfg);
    }
    assert_int_equal(po_profile_init(&p, "x\x1b[31m", &err), PO_CONFIG);
    assert_contains(err.msg, "bad profile name");
    assert_not_contains(err.msg, "\x1b");
}

static void test_merge_and_override(void **state)
{
    char p1[PATH_MAX], p2[PATH_MAX];
    po_config cfg;
    po_profile *a;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    new_file(p1, sizeof(p1),
             "[a]\nscope = x\ntimeout = 5s\naudience = aud\n"
             "[b]\nscope = y\n"
             "[a]\nscope = z\n",
             0600);
    new_file(p2, sizeof(p2),
             "[c]\nscope = c\n"
             "[a]\naudience = later\nretries = 0\n",
             0600);
    assert_int_equal(po_config_load_file(&cfg, p1, 0, &err), PO_OK);
    assert_int_equal(cfg.nprofiles, 2);
    a = po_config_find(&cfg, "a");
    assert_non_null(a);
    assert_string_equal(a->scope, "z");
    assert_int_equal(a->timeout_ms, 5000);
    assert_int_equal(po_config_load_file(&cfg, p2, 0, &err), PO_OK);
    assert_int_equal(cfg.nprofiles, 3);
    a = po_config_find(&cfg, "a");
    assert_string_equal(a->scope, "z");        /* kept */
    assert_string_equal(a->audience, "later"); /* overridden */
    assert_int_equal(a->retries, 0);
    assert_int_equal(a->timeout_ms, 5000);
    assert_true(strncmp(a->source, p1, strlen(p1)) == 0); /* first header */
    assert_string_equal(strrchr(a->source, ':'), ":1");
    assert_string_equal(po_config_find(&cfg, "b")->scope, "y");
    assert_string_equal(po_config_find(&cfg, "c")->scope, "c");
    assert_null(po_config_find(&cfg, "d"));
    assert_null(po_config_find(NULL, "a"));
    po_config_free(&cfg);
    assert_int_equal(cfg.nprofiles, 0);
    assert_null(cfg.profiles);
}

/* An error leaves the configuration as it was before the file. */
static void test_transactional(void **state)
{
    char good[PATH_MAX], bad[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    new_file(good, sizeof(good), "[a]\nscope = before\n", 0600);
    new_file(bad, sizeof(bad),
             "[a]\nscope = after\nparam.x = 1\n[new]\nscope = n\n"
             "timeout = never\n",
             0600);
    assert_int_equal(po_config_load_file(&cfg, good, 0, &err), PO_OK);
    assert_int_equal(po_config_load_file(&cfg, bad, 0, &err), PO_CONFIG);
    assert_contains(err.msg, ":6: key 'timeout'");
    assert_int_equal(cfg.nprofiles, 1);
    assert_string_equal(cfg.profiles[0].scope, "before");
    assert_int_equal(cfg.profiles[0].nparams, 0);
    assert_null(po_config_find(&cfg, "new"));
    po_config_free(&cfg);
}

/* ------------------------------------------------------------------ */
/* param.NAME                                                          */

static void test_params(void **state)
{
    static const struct {
        const char *key;
        const char *what;
    } bad[] = {
        {"param.", "bad parameter name"},
        {"param.a/b", "bad parameter name"},
        {"param.a:b", "bad parameter name"},
        {"param.grant_type", "grant_type is a parameter pam-oauth sets itself"},
        {"param.client_id", "use the client_id key"},
        {"param.client_secret", "use client_secret_file"},
        {"param.username", "sets itself"},
        {"param.password", "sets itself"},
        {"param.refresh_token", "sets itself"},
        {"param.scope", "use the scope key"},
        {"param.audience", "use the audience key"},
        {"param.resource", "use the resource key"},
        {"param.Grant_Type", "sets itself"},
    };
    char path[PATH_MAX], content[256];
    po_config cfg;
    po_profile *p;
    po_err err;
    size_t i;

    (void)state;
    po_config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "[p]\n"
                               "param.tenant = acme\n"
                               "param.x-api.version_2 = \"two words\"\n"
                               "param.gone = soon\n"
                               "param.tenant = globex\n"
                               "param.gone =\n"
                               "param.extra = " SECRET "\n",
                               path, sizeof(path), &err),
                     PO_OK);
    p = &cfg.profiles[0];
    assert_int_equal(p->nparams, 3);
    assert_string_equal(p->params[0].name, "tenant"); /* position kept */
    assert_string_equal(p->params[0].value, "globex");
    assert_string_equal(p->params[1].name, "x-api.version_2");
    assert_string_equal(p->params[1].value, "two words");
    assert_string_equal(p->params[2].name, "extra");
    po_config_free(&cfg);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        po_config_init(&cfg);
        (void)snprintf(content, sizeof(content), "[p]\n%s = " SECRET "\n",
                       bad[i].key);
        assert_int_equal(load_text(&cfg, content, path, sizeof(path), &err),
                         PO_CONFIG);
        assert_contains(err.msg, ":2: key '");
        assert_contains(err.msg, bad[i].what);
        assert_not_contains(err.msg, SECRET);
    }
    /* a space in the name makes the key unknown-looking but is rejected */
    po_config_init(&cfg);
    assert_int_equal(
        load_text(&cfg, "[p]\nparam.a b = 1\n", path, sizeof(path), &err),
        PO_CONFIG);
    assert_contains(err.msg, "key 'param.a b': bad parameter name");
    assert_int_equal(load_text(&cfg,
                               "[p]\nparam.x = a\x01"
                               "b\n",
                               path, sizeof(path), &err),
                     PO_CONFIG);
    assert_contains(err.msg, "key 'param.x': ");
}

/* ------------------------------------------------------------------ */
/* File limits and file access                                         */

static void test_long_lines(void **state)
{
    size_t max = PO_CONFIG_LINE_MAX, n;
    char *buf = malloc(2 * max + 64), path[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    assert_non_null(buf);
    po_config_init(&cfg);
    /* a line of exactly PO_CONFIG_LINE_MAX bytes with its newline: fine */
    n = (size_t)sprintf(buf, "[a]\n#");
    memset(buf + n, 'x', max - 2);
    n += max - 2;
    buf[n++] = '\n';
    buf[n] = '\0';
    assert_int_equal(load_text(&cfg, buf, path, sizeof(path), &err), PO_OK);
    /* one more byte: refused, with the line number */
    n = (size_t)sprintf(buf, "[a]\n#");
    memset(buf + n, 'x', max - 1);
    n += max - 1;
    buf[n++] = '\n';
    buf[n] = '\0';
    assert_int_equal(load_text(&cfg, buf, path, sizeof(path), &err), PO_CONFIG);
    assert_contains(err.msg, ":2: line longer than 4095 bytes");
    /* the same without a final newline */
    buf[--n] = '\0';
    assert_int_equal(load_text(&cfg, buf, path, sizeof(path), &err), PO_CONFIG);
    assert_contains(err.msg, ":2: line longer than");
    buf[--n] = '\0';
    assert_int_equal(load_text(&cfg, buf, path, sizeof(path), &err), PO_OK);
    /* a long secret value is not echoed */
    n = (size_t)sprintf(buf, "[a]\nclient_secret = " SECRET);
    memset(buf + n, 'y', max);
    buf[n + max] = '\0';
    assert_int_equal(load_text(&cfg, buf, path, sizeof(path), &err), PO_CONFIG);
    assert_not_contains(err.msg, SECRET);
    po_config_free(&cfg);
    free(buf);
}

static void test_nul_byte(void **state)
{
    static const char data[] = "[a]\nscope = x\0" SECRET "\n";
    char path[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    (void)snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
    write_bytes(path, data, sizeof(data) - 1, 0600);
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_CONFIG);
    assert_contains(err.msg, ":2: contains a NUL byte");
    assert_not_contains(err.msg, SECRET);
    assert_int_equal(cfg.nprofiles, 0);
}

static void test_huge_file(void **state)
{
    size_t max = PO_CONFIG_FILE_MAX, i;
    char *buf = malloc(max + 1), path[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    assert_non_null(buf);
    po_config_init(&cfg);
    /* comment lines of 64 bytes, exactly the maximum size */
    for (i = 0; i < max; i += 64) {
        memset(buf + i, '#', 63);
        buf[i + 63] = '\n';
    }
    (void)snprintf(path, sizeof(path), "%s/max.conf", tmpdir);
    write_bytes(path, buf, max, 0600);
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_OK);
    buf[max] = '\n';
    (void)snprintf(path, sizeof(path), "%s/huge.conf", tmpdir);
    write_bytes(path, buf, max + 1, 0600);
    assert_int_not_equal(po_config_load_file(&cfg, path, 0, &err), PO_OK);
    assert_int_equal(err.rc, PO_TOO_LARGE);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "larger than 262144 bytes");
    free(buf);
}

static void test_symlink_and_missing(void **state)
{
    char target[PATH_MAX], link[PATH_MAX], missing[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    new_file(target, sizeof(target), "[a]\nscope = x\n", 0600);
    (void)snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(po_config_load_file(&cfg, link, PO_CFG_MISSING_OK, &err),
                     PO_IO);
    assert_contains(err.msg, link);
    assert_contains(err.msg, "symbolic link");
    assert_int_equal(cfg.nprofiles, 0);

    (void)snprintf(missing, sizeof(missing), "%s/missing.conf", tmpdir);
    assert_int_equal(po_config_load_file(&cfg, missing, 0, &err), PO_NOT_FOUND);
    assert_contains(err.msg, missing);
    assert_int_equal(po_config_load_file(&cfg, target, 0, &err), PO_OK);
    assert_int_equal(
        po_config_load_file(&cfg, missing, PO_CFG_MISSING_OK, &err), PO_OK);
    assert_int_equal(err.rc, PO_OK);
    assert_int_equal(cfg.nprofiles, 1); /* kept */
    /* a directory is not a configuration file */
    assert_int_equal(po_config_load_file(&cfg, tmpdir, 0, &err), PO_IO);
    assert_contains(err.msg, "not a regular file");
    assert_int_equal(po_config_load_file(NULL, target, 0, &err), PO_USAGE);
    po_config_free(&cfg);
}

static void test_inline_secret_permissions(void **state)
{
    static const struct {
        mode_t mode;
        po_rc rc;
        const char *word;
    } cases[] = {
        {0600, PO_OK, NULL},
        {0400, PO_OK, NULL},
        {0644, PO_CONFIG, "readable by others"},
        {0640, PO_CONFIG, "readable by others"},
        {0604, PO_CONFIG, "readable by others"},
        {0620, PO_CONFIG, "open to group or others"},
        {0601, PO_CONFIG, "open to group or others"},
    };
    char path[PATH_MAX], want[3 * PATH_MAX + 256];
    po_config cfg;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        po_config_init(&cfg);
        new_file(path, sizeof(path),
                 "[a]\nclient_id = c\nclient_secret = \"" SECRET "\"\n",
                 cases[i].mode);
        assert_int_equal(po_config_load_file(&cfg, path, 0, &err), cases[i].rc);
        if (cases[i].rc == PO_OK) {
            assert_string_equal(cfg.profiles[0].client_secret, SECRET);
        } else {
            (void)snprintf(want, sizeof(want),
                           "%s:3: client_secret is set but %s is %s (mode "
                           "%04o); run chmod 600 %s or use "
                           "client_secret_file/client_secret_command",
                           path, path, cases[i].word, (unsigned)cases[i].mode,
                           path);
            assert_string_equal(err.msg, want);
            assert_int_equal(cfg.nprofiles, 0);
        }
        po_config_free(&cfg);
    }
    /* an empty client_secret (unset) in a 0644 file is fine */
    new_file(path, sizeof(path), "[a]\nclient_secret =\n", 0644);
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_OK);
    po_config_free(&cfg);
    /* a control character in a secret: refused, not echoed */
    new_file(path, sizeof(path),
             "[a]\nclient_secret = " SECRET "\x01" SECRET "\n", 0600);
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_CONFIG);
    assert_contains(err.msg, ":2: key 'client_secret': the value contains");
    assert_not_contains(err.msg, SECRET);
    /* an unterminated quote around a secret: not echoed */
    new_file(path, sizeof(path), "[a]\nclient_secret = \"" SECRET "\n", 0600);
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_CONFIG);
    assert_contains(err.msg, "key 'client_secret': unterminated");
    assert_not_contains(err.msg, SECRET);
}

static void test_strict_owner(void **state)
{
    char path[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    new_file(path, sizeof(path), "[a]\nscope = x\n", 0664);
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_OK);
    assert_int_equal(po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
                     PO_CONFIG);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "writable by group or others (mode 0664)");
    new_file(path, sizeof(path), "[a]\nscope = x\n", 0646);
    assert_int_equal(po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
                     PO_CONFIG);
    new_file(path, sizeof(path), "[a]\nscope = y\n", 0644);
    assert_int_equal(po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
                     PO_OK);
    assert_string_equal(cfg.profiles[0].scope, "y");
    if (geteuid() == 0) { /* a file owned by someone else */
        assert_int_equal(chown(path, 4242, 4242), 0);
        assert_int_equal(
            po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
            PO_CONFIG);
        assert_contains(err.msg, "owned by uid 4242, not by root or uid 0");
        assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_OK);
    }
    po_config_free(&cfg);
}

/* PO_CFG_STRICT_OWNER: sshd's StrictModes for the directories that hold
 * the file, up to /. */
static void test_strict_dirs(void **state)
{
    char dir[256], sub[300], path[PATH_MAX];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    (void)snprintf(dir, sizeof(dir), "%s/etc-%u", tmpdir, ++file_seq);
    assert_int_equal(mkdir(dir, 0755), 0);
    (void)snprintf(sub, sizeof(sub), "%s/pam-oauth", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    (void)snprintf(path, sizeof(path), "%s/pam-oauth.conf", sub);
    write_bytes(path, "[a]\nscope = x\n", 14, 0644);
    assert_int_equal(po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
                     PO_OK);
    /* A directory above the file, writable by its group or by others. */
    assert_int_equal(chmod(dir, 0775), 0);
    assert_int_equal(po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
                     PO_CONFIG);
    assert_contains(err.msg, path);
    assert_contains(err.msg, dir);
    assert_contains(err.msg, "writable by its group (mode 0775)");
    assert_contains(err.msg, "StrictModes");
    assert_int_equal(po_config_load_file(&cfg, path, 0, &err), PO_OK);
    assert_int_equal(po_config_check(path, PO_CFG_STRICT_OWNER, NULL, NULL),
                     PO_CONFIG);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(sub, 0757), 0);
    assert_int_equal(po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
                     PO_CONFIG);
    assert_contains(err.msg, "writable by others (mode 0757)");
    assert_int_equal(chmod(sub, 0755), 0);
    if (geteuid() == 0) {
        /* a root-owned sticky directory (like /tmp) is fine */
        assert_int_equal(chmod(sub, 01777), 0);
        assert_int_equal(
            po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err), PO_OK);
        assert_int_equal(chmod(sub, 0755), 0);
        /* a directory owned by someone else */
        assert_int_equal(chown(dir, 4242, 4242), 0);
        assert_int_equal(
            po_config_load_file(&cfg, path, PO_CFG_STRICT_OWNER, &err),
            PO_CONFIG);
        assert_contains(err.msg, "is owned by uid 4242, not by root");
        assert_int_equal(chown(dir, 0, 0), 0);
    }
    po_config_free(&cfg);
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */

typedef struct validate_case {
    const char *settings[4][2]; /* key, value (value NULL = unset)   */
    const char *what;           /* NULL: valid                       */
} validate_case;

static const validate_case validate_cases[] = {
    {{{NULL, NULL}}, NULL},
    {{{"token_url", ""}}, "token_url is not set"},
    {{{"token_url", "http://auth.example.com/token"}}, "key 'token_url': "},
    {{{"token_url", "http://127.0.0.1:8080/token"}}, "key 'token_url': "},
    {{{"token_url", "http://127.0.0.1:8080/token"}, {"allow_http", "yes"}},
     NULL},
    {{{"token_url", "ftp://auth.example.com/token"}, {"allow_http", "yes"}},
     "key 'token_url': "},
    {{{"client_id", ""}}, "client_id is not set"},
    /* secret sources */
    {{{"client_auth", "none"}},
     "client_auth is none (a public client sends no secret) but "
     "client_secret_file is set"},
    {{{"client_auth", "none"}, {"client_secret_file", ""}}, NULL},
    {{{"client_auth", "none"},
      {"client_secret_file", ""},
      {"client_secret", SECRET}},
     "client_auth is none"},
    /* no secret source: a profile that serves a pam_oauth session cache
     * (po_profile_validate_pam refuses it: test_validate_no_secret) */
    {{{"client_auth", "post"}, {"client_secret_file", ""}}, NULL},
    {{{"client_secret_file", ""}}, NULL},
    {{{"client_secret_command", "pass show x"}},
     "client_secret_file and client_secret_command are both set"},
    {{{"client_secret", SECRET}},
     "client_secret and client_secret_file are both set"},
    {{{"client_secret_file", ""}, {"client_secret", SECRET}}, NULL},
    {{{"client_secret_file", ""}, {"client_secret_command", "cat /x"}}, NULL},
    {{{"client_secret_file", "relative/secret"}},
     "key 'client_secret_file': must be an absolute path"},
    /* grants */
    {{{"grant", "password"}}, NULL},
    {{{"grant", "refresh_token"}}, NULL},
    {{{"grant", "password"},
      {"client_auth", "none"},
      {"client_secret_file", ""},
      {"client_id", "FLUENT_INTEGRATION"}},
     NULL},
    /* username_format */
    {{{"username_format", "%u@example.com"}}, NULL},
    {{{"username_format", "100%%-%u"}}, NULL},
    {{{"username_format", "admin"}},
     "key 'username_format': must contain %u exactly once (found 0)"},
    {{{"username_format", "%u%u"}}, "exactly once (found 2)"},
    {{{"username_format", "%s-%u"}}, "'%s' is not allowed"},
    {{{"username_format", "%U"}}, "'%U' is not allowed"},
    {{{"username_format", "%u%"}}, "ends with a lone '%'"},
    /* cache_dir */
    {{{"cache_dir", "/var/cache/pam-oauth/%u"}}, NULL},
    {{{"cache_dir", "%h/.cache/oauth-%U"}}, NULL},
    {{{"cache_dir", "/run/%%/x"}}, NULL},
    {{{"cache_dir", "cache/%u"}}, "key 'cache_dir': must be an absolute path"},
    {{{"offline_dir", "var/offline"}},
     "key 'offline_dir': must be an absolute path"},
    {{{"cache_dir", "/tmp/%s"}}, "key 'cache_dir': '%s' is not allowed"},
    {{{"cache_dir", "/tmp/%"}}, "ends with a lone '%'"},
    /* match */
    {{{"match", "https://github.com/org https://git.example.com"}}, NULL},
    {{{"match", "  http://127.0.0.1:3000/x\thttps://h/ "}}, NULL},
    {{{"match", "github.com/org"}},
     "key 'match': entry 1 ('github.com/org') is not an https:// or http:// "
     "URL"},
    {{{"match", "https://a.example https://"}}, "key 'match': entry 2"},
    {{{"match", "https:///path"}}, "entry 1"},
    {{{"match", "ssh://git@host/x"}}, "entry 1"},
    /* fleet mode */
    {{{"shared_cache", "etcd"}},
     "shared_cache is etcd but "
     "shared_cache_endpoints is not set"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", " https://10.0.0.1:2379  https://e2/ "},
      {"shared_cache_key_file", "/etc/pam-oauth/fleet.key"}},
     NULL},
    {{{"shared_cache", "none"}, {"shared_cache_endpoints", "http://x"}}, NULL},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a:2379 http://b:2379"},
      {"shared_cache_key_file", "/k"}},
     "key 'shared_cache_endpoints': entry 2: http://b:2379: http:// refused"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a:2379/?x=1"},
      {"shared_cache_key_file", "/k"}},
     "no query or fragment allowed"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "   "},
      {"shared_cache_key_file", "/k"}},
     "key 'shared_cache_endpoints' lists no URL"},
    {{{"shared_cache", "etcd"}, {"shared_cache_endpoints", "https://a"}},
     "shared_cache_key_file is not set"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a"},
      {"shared_cache_key_file", "fleet.key"}},
     "key 'shared_cache_key_file': must be an absolute path"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a"},
      {"shared_cache_key_file", "/k"},
      {"shared_cache_user", "u"}},
     "set both shared_cache_user and shared_cache_password_file"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a"},
      {"shared_cache_key_file", "/k"},
      {"shared_cache_client_cert", "/c.pem"}},
     "set both shared_cache_client_cert and shared_cache_client_key"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a"},
      {"shared_cache_key_file", "/k"},
      {"shared_cache_prefix", "pam-oauth"}},
     "key 'shared_cache_prefix': must start and end with '/'"},
    {{{"shared_cache", "etcd"},
      {"shared_cache_endpoints", "https://a"},
      {"shared_cache_key_file", "/k"},
      {"shared_cache_ca_file", "ca.pem"}},
     "key 'shared_cache_ca_file': must be an absolute path"},
};

static void test_validate(void **state)
{
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof(validate_cases) / sizeof(validate_cases[0]); i++) {
        const validate_case *c = &validate_cases[i];
        po_profile p;
        po_err err;
        po_rc rc;

        good_profile(&p, "val");
        for (j = 0; j < 4 && c->settings[j][0] != NULL; j++)
            set_ok(&p, c->settings[j][0], c->settings[j][1]);
        po_err_clear(&err);
        rc = po_profile_validate(&p, &err);
        if (c->what == NULL) {
            if (rc != PO_OK)
                fail_msg("case %zu: %s", i, err.msg);
        } else {
            if (rc != PO_CONFIG)
                fail_msg("case %zu accepted, expected \"%s\"", i, c->what);
            assert_true(strncmp(err.msg, "profile 'val': ", 15) == 0);
            assert_contains(err.msg, c->what);
            assert_not_contains(err.msg, SECRET);
        }
        /* the same through po_config_check-style reporting */
        po_profile_free(&p);
    }
    assert_int_equal(po_profile_validate(NULL, NULL), PO_USAGE);
}

/* A confidential client without a secret source is accepted for reading
 * a session cache, refused for pam_oauth, which makes requests. */
static void test_validate_no_secret(void **state)
{
    static const char *const auths[] = {"basic", "post"};
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        po_profile p;
        po_err err;

        good_profile(&p, "val");
        set_ok(&p, "client_auth", auths[i]);
        set_ok(&p, "client_secret_file", "");
        assert_int_equal(po_profile_validate(&p, &err), PO_OK);
        assert_int_equal(po_profile_validate_pam(&p, &err), PO_CONFIG);
        assert_contains(err.msg, "no client secret is configured");
        assert_contains(err.msg, auths[i]);
        /* a request would say what is missing */
        assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_CONFIG);
        assert_contains(err.msg, "no client secret is configured");
        po_profile_free(&p);
    }
}

/* Messages of a profile from a file name its source. */
static void test_validate_names_source(void **state)
{
    char path[PATH_MAX], want[PATH_MAX + 64];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    assert_int_equal(
        load_text(&cfg, "# c\n[src]\nclient_id = x\nclient_auth = none\n", path,
                  sizeof(path), &err),
        PO_OK);
    assert_int_equal(po_profile_validate(&cfg.profiles[0], &err), PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "profile 'src' (%s:2): token_url is not set", path);
    assert_string_equal(err.msg, want);
    po_config_free(&cfg);
}

/* The device grant: an endpoint everywhere; for pam_oauth, verified
 * tokens only, and messages that name the line of the key at fault. */
static void test_validate_device(void **state)
{
    static const char text[] =
        "[ok]\n"                                               /* 1 */
        "token_url = https://idp.test/token\n"                 /* 2 */
        "client_id = c\n"                                      /* 3 */
        "client_auth = none\n"                                 /* 4 */
        "grant = device\n"                                     /* 5 */
        "issuer = https://idp.test\n"                          /* 6 */
        "verify = jwt\n"                                       /* 7 */
        "[none]\n"                                             /* 8 */
        "token_url = https://idp.test/token\n"                 /* 9 */
        "client_id = c\n"                                      /* 10 */
        "client_auth = none\n"                                 /* 11 */
        "device_authorization_url = https://idp.test/device\n" /* 12 */
        "grant = device\n"                                     /* 13 */
        "[explicit]\n"                                         /* 14 */
        "token_url = https://idp.test/token\n"                 /* 15 */
        "client_id = c\n"                                      /* 16 */
        "client_auth = none\n"                                 /* 17 */
        "grant = password\n"                                   /* 18 */
        "password_fallback = device\n"                         /* 19 */
        "device_authorization_url = https://idp.test/device\n" /* 20 */
        "verify = none\n"                                      /* 21 */
        "[noendpoint]\n"                                       /* 22 */
        "token_url = https://idp.test/token\n"                 /* 23 */
        "client_id = c\n"                                      /* 24 */
        "client_auth = none\n"                                 /* 25 */
        "grant = device\n"                                     /* 26 */
        "[badurl]\n"                                           /* 27 */
        "token_url = https://idp.test/token\n"                 /* 28 */
        "client_id = c\n"                                      /* 29 */
        "client_auth = none\n"                                 /* 30 */
        "device_authorization_url = http://idp.test/device\n"  /* 31 */
        "[fallback]\n"                                         /* 32 */
        "token_url = https://idp.test/token\n"                 /* 33 */
        "client_id = c\n"                                      /* 34 */
        "client_auth = none\n"                                 /* 35 */
        "grant = client_credentials\n"                         /* 36 */
        "device_fallback_on = AADSTS50076\n";                  /* 37 */
    char path[PATH_MAX], want[PATH_MAX * 4 + 1024];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    assert_int_equal(load_text(&cfg, text, path, sizeof(path), &err), PO_OK);
    assert_int_equal(cfg.nprofiles, 6);
    /* verified: fine for both */
    assert_int_equal(po_profile_validate(&cfg.profiles[0], &err), PO_OK);
    assert_int_equal(po_profile_validate_pam(&cfg.profiles[0], &err), PO_OK);
    /* verify none: the helper may, pam_oauth may not; the line of grant */
    assert_int_equal(po_profile_validate(&cfg.profiles[1], &err), PO_OK);
    assert_int_equal(po_profile_validate_pam(&cfg.profiles[1], &err),
                     PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "%s:13: key 'grant': profile 'none' (%s:8): a device login "
                   "needs verified tokens (verify = jwt, introspect or auto), "
                   "but verify is none (the default): whoever approves a "
                   "device code gets the token, so pam_oauth accepts it only "
                   "when its user_claim names the user who logs in",
                   path, path);
    assert_string_equal(err.msg, want);
    (void)snprintf(want, sizeof(want), "%s:13", path);
    assert_string_equal(po_profile_origin(&cfg.profiles[1], "grant"), want);
    assert_null(po_profile_origin(&cfg.profiles[1], "verify"));
    assert_null(po_profile_origin(&cfg.profiles[1], "no_such_key"));
    /* password_fallback = device and an explicit verify = none */
    assert_int_equal(po_profile_validate_pam(&cfg.profiles[2], &err),
                     PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "%s:19: key 'password_fallback': profile 'explicit' "
                   "(%s:14): a device login needs verified tokens (verify = "
                   "jwt, introspect or auto), but verify is none, set at "
                   "%s:21: whoever",
                   path, path, path);
    assert_true(strncmp(err.msg, want, strlen(want)) == 0);
    /* no endpoint at all: both refuse */
    assert_int_equal(po_profile_validate(&cfg.profiles[3], &err), PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "%s:26: key 'grant': profile 'noendpoint' (%s:22): the "
                   "device grant needs a device authorization endpoint; set "
                   "device_authorization_url, or issuer (whose OpenID "
                   "discovery document names it)",
                   path, path);
    assert_string_equal(err.msg, want);
    assert_int_equal(po_profile_validate(&cfg.profiles[4], &err), PO_CONFIG);
    assert_contains(err.msg, "key 'device_authorization_url': http://idp.test/"
                             "device: http:// refused");
    /* device_fallback_on without password_fallback */
    assert_int_equal(po_profile_validate(&cfg.profiles[5], &err), PO_OK);
    assert_int_equal(po_profile_validate_pam(&cfg.profiles[5], &err),
                     PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "%s:37: key 'device_fallback_on': profile 'fallback' "
                   "(%s:32): set password_fallback = device too, or remove it",
                   path, path);
    assert_string_equal(err.msg, want);
    po_config_free(&cfg);
}

/* Offline login needs a password login (pam_oauth's rule, naming the
 * lines of offline_login and grant), and an absolute offline_dir. */
static void test_validate_offline(void **state)
{
    static const char text[] =
        "[pw]\n"                                   /* 1 */
        "token_url = https://idp.test/token\n"     /* 2 */
        "client_id = c\n"                          /* 3 */
        "client_auth = none\n"                     /* 4 */
        "grant = password\n"                       /* 5 */
        "offline_login = yes\n"                    /* 6 */
        "[dev]\n"                                  /* 7 */
        "token_url = https://idp.test/token\n"     /* 8 */
        "client_id = c\n"                          /* 9 */
        "client_auth = none\n"                     /* 10 */
        "grant = device\n"                         /* 11 */
        "device_authorization_url = https://i/d\n" /* 12 */
        "verify = jwt\n"                           /* 13 */
        "issuer = https://idp.test\n"              /* 14 */
        "offline_login = yes\n"                    /* 15 */
        "[rel]\n"                                  /* 16 */
        "token_url = https://idp.test/token\n"     /* 17 */
        "client_id = c\n"                          /* 18 */
        "client_auth = none\n"                     /* 19 */
        "grant = password\n"                       /* 20 */
        "offline_dir = var/offline\n";             /* 21 */
    char path[PATH_MAX], want[PATH_MAX * 4 + 1024];
    po_config cfg;
    po_err err;

    (void)state;
    po_config_init(&cfg);
    assert_int_equal(load_text(&cfg, text, path, sizeof(path), &err), PO_OK);
    assert_int_equal(cfg.nprofiles, 3);
    assert_int_equal(po_profile_validate_pam(&cfg.profiles[0], &err), PO_OK);
    /* the helper ignores the key; pam_oauth refuses it on a device login */
    assert_int_equal(po_profile_validate(&cfg.profiles[1], &err), PO_OK);
    assert_int_equal(po_profile_validate_pam(&cfg.profiles[1], &err),
                     PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "%s:15: key 'offline_login': profile 'dev' (%s:7): "
                   "offline login checks the password of the last password "
                   "login, but grant is device, set at %s:11 (a device login "
                   "has no password); set grant = password or offline_login "
                   "= no",
                   path, path, path);
    assert_string_equal(err.msg, want);
    assert_int_equal(po_profile_validate(&cfg.profiles[2], &err), PO_CONFIG);
    (void)snprintf(want, sizeof(want),
                   "profile 'rel' (%s:16): key 'offline_dir': must be an "
                   "absolute path (root's own directory of the offline "
                   "verifiers)",
                   path);
    assert_string_equal(err.msg, want);
    po_config_free(&cfg);
}

/* Origins survive a copy; a PAM argument names itself. */
static void test_origins(void **state)
{
    po_profile p, q;
    po_err err;

    (void)state;
    good_profile(&p, "o");
    assert_null(po_profile_origin(&p, "verify"));
    assert_string_equal(po_profile_origin(&p, "token_url"), "test");
    assert_int_equal(
        po_profile_set(&p, "verify", "jwt", "PAM argument 'verify'", &err),
        PO_OK);
    assert_int_equal(po_profile_copy(&q, &p, &err), PO_OK);
    assert_string_equal(po_profile_origin(&q, "verify"),
                        "PAM argument 'verify'");
    /* a refused value leaves the origin as it was */
    assert_int_equal(po_profile_set(&q, "verify", "maybe", "x.conf:3", &err),
                     PO_CONFIG);
    assert_string_equal(po_profile_origin(&q, "verify"),
                        "PAM argument 'verify'");
    po_profile_free(&p);
    po_profile_free(&q);
}

/* ------------------------------------------------------------------ */
/* po_config_check                                                     */

typedef struct diag_log {
    char msgs[16][512];
    size_t n;
} diag_log;

static void collect(void *ctx, const char *msg)
{
    diag_log *d = ctx;

    if (d->n < 16)
        (void)snprintf(d->msgs[d->n], sizeof(d->msgs[0]), "%s", msg);
    d->n++;
}

static void test_check_reports_all(void **state)
{
    char path[PATH_MAX], want[PATH_MAX + 32], missing[PATH_MAX];
    diag_log d;
    size_t i;

    (void)state;
    new_file(path, sizeof(path),
             "scope = early\n"                   /* 1 */
             "[good]\n"                          /* 2 */
             "token_url = https://a.example/t\n" /* 3 */
             "client_id = id\n"                  /* 4 */
             "client_secret_file = /etc/p/s\n"   /* 5 */
             "timeout = soon\n"                  /* 6 */
             "[bad name]\n"                      /* 7 */
             "scope = ignored\n"                 /* 8 */
             "[nourl]\n"                         /* 9 */
             "client_id = x\n"                   /* 10 */
             "client_auth = none\n"              /* 11 */
             "bogus = 1\n"                       /* 12 */
             "client_secret = \"" SECRET "\"\n"  /* 13 */
             "username_format = %s\n",           /* 14 */
             0644);
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check(path, 0, collect, &d), PO_CONFIG);
    for (i = 0; i < d.n && i < 16; i++)
        assert_not_contains(d.msgs[i], SECRET);
    assert_int_equal(d.n, 7);
    (void)snprintf(want, sizeof(want), "%s:1: key 'scope'", path);
    assert_contains(d.msgs[0], want);
    (void)snprintf(want, sizeof(want), "%s:6: key 'timeout'", path);
    assert_contains(d.msgs[1], want);
    (void)snprintf(want, sizeof(want), "%s:7: bad profile name", path);
    assert_contains(d.msgs[2], want);
    (void)snprintf(want, sizeof(want), "%s:12: key 'bogus'", path);
    assert_contains(d.msgs[3], want);
    (void)snprintf(want, sizeof(want), "%s:13: client_secret is set but", path);
    assert_contains(d.msgs[4], want);
    /* then validation of each profile that was read */
    assert_contains(d.msgs[5], "profile 'nourl'");
    assert_contains(d.msgs[5], "token_url is not set");
    assert_contains(d.msgs[6], "profile 'nourl'");
    assert_contains(d.msgs[6], "key 'username_format': '%s' is not allowed");

    /* a profile with several problems reports each of them */
    new_file(path, sizeof(path),
             "[many]\nusername_format = x\ncache_dir = rel\nmatch = nope\n",
             0600);
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check(path, 0, collect, &d), PO_CONFIG);
    assert_int_equal(d.n, 5);
    assert_contains(d.msgs[0], "token_url is not set");
    assert_contains(d.msgs[1], "client_id is not set");
    assert_contains(d.msgs[2], "username_format");
    assert_contains(d.msgs[3], "cache_dir");
    assert_contains(d.msgs[4], "match");
    /* no secret source: a problem only for pam_oauth (PO_CFG_PAM_RULES) */
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check(path, PO_CFG_PAM_RULES, collect, &d),
                     PO_CONFIG);
    assert_int_equal(d.n, 6);
    assert_contains(d.msgs[5], "no client secret");

    /* a good file: nothing to say */
    new_file(path, sizeof(path),
             "[ok]\ntoken_url = https://a.example/t\nclient_id = i\n"
             "client_secret_file = /etc/s\n",
             0644);
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check(path, 0, collect, &d), PO_OK);
    assert_int_equal(d.n, 0);
    assert_int_equal(po_config_check(path, PO_CFG_STRICT_OWNER, NULL, NULL),
                     PO_OK);

    /* without diag: the first problem's code */
    new_file(path, sizeof(path), "[a]\ntimeout = x\n", 0600);
    assert_int_equal(po_config_check(path, 0, NULL, NULL), PO_CONFIG);

    /* missing files */
    (void)snprintf(missing, sizeof(missing), "%s/none.conf", tmpdir);
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check(missing, PO_CFG_MISSING_OK, collect, &d),
                     PO_OK);
    assert_int_equal(d.n, 0);
    assert_int_equal(po_config_check(missing, 0, collect, &d), PO_NOT_FOUND);
    assert_int_equal(d.n, 1);
    assert_contains(d.msgs[0], missing);

    /* strict owner problems are reported, and parsing goes on */
    new_file(path, sizeof(path), "[a]\nretries = 99\n", 0666);
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check(path, PO_CFG_STRICT_OWNER, collect, &d),
                     PO_CONFIG);
    assert_true(d.n >= 2);
    assert_contains(d.msgs[0], "writable by group or others");
    assert_contains(d.msgs[1], ":2: key 'retries'");
}

/* The buffer entry points: the same parser and checks without a file,
 * text that need not end in a NUL, the name and mode standing for the
 * file's. */
static void test_buffers(void **state)
{
    static const char text[] =
        "[b]\ntoken_url = https://a.example/t\n"
        "client_id = id\nclient_secret = " SECRET "\nscope = one two";
    static const char two[] = "[x]\ntimeout = y\nbogus = 1\n";
    char big_name[] = "big.conf";
    po_config cfg;
    po_profile *p;
    po_err err;
    diag_log d;
    char *big;

    (void)state;
    po_config_init(&cfg);
    /* only len bytes count: "scope = one" */
    assert_int_equal(po_config_load_buffer(&cfg, "mem.conf", S_IFREG | 0600,
                                           text, sizeof(text) - 5, &err),
                     PO_OK);
    assert_non_null(p = po_config_find(&cfg, "b"));
    assert_string_equal(p->scope, "one");
    assert_string_equal(p->client_secret, SECRET);
    assert_string_equal(p->source, "mem.conf:1");
    /* the mode given stands for the file's: an inline secret in a file
     * others can read is refused, and cfg keeps what it had */
    assert_int_equal(po_config_load_buffer(&cfg, "shared.conf", S_IFREG | 0644,
                                           "[c]\nclient_secret = x\n", 21,
                                           &err),
                     PO_CONFIG);
    assert_contains(err.msg, "shared.conf:2: client_secret is set but");
    assert_null(po_config_find(&cfg, "c"));
    assert_non_null(po_config_find(&cfg, "b"));
    /* a NUL inside the text is reported with its line */
    assert_int_equal(po_config_load_buffer(&cfg, "nul.conf", S_IFREG | 0600,
                                           "[d]\nscope = a\0b\n", 15, &err),
                     PO_CONFIG);
    assert_contains(err.msg, "nul.conf:2: contains a NUL byte");
    assert_int_equal(
        po_config_load_buffer(&cfg, "none.conf", S_IFREG | 0600, NULL, 0, &err),
        PO_OK);
    assert_int_equal(po_config_load_buffer(&cfg, "bad", 0600, NULL, 3, &err),
                     PO_USAGE);
    po_config_free(&cfg);

    /* check: every problem, named by the given name */
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check_buffer("m.conf", S_IFREG | 0644, 0, two,
                                            sizeof(two) - 1, collect, &d),
                     PO_CONFIG);
    /* a profile without a secret may only read a session cache: no
     * problem for oauth-token, one for pam_oauth (PO_CFG_PAM_RULES) */
    assert_int_equal(d.n, 4);
    assert_contains(d.msgs[0], "m.conf:2: key 'timeout'");
    assert_contains(d.msgs[1], "m.conf:3: key 'bogus'");
    assert_contains(d.msgs[2], "token_url is not set");
    assert_contains(d.msgs[3], "client_id is not set");
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check_buffer("m.conf", S_IFREG | 0644,
                                            PO_CFG_PAM_RULES, two,
                                            sizeof(two) - 1, collect, &d),
                     PO_CONFIG);
    assert_int_equal(d.n, 5);
    assert_contains(d.msgs[4], "no client secret");
    memset(&d, 0, sizeof(d));
    assert_int_equal(
        po_config_check_buffer("e.conf", S_IFREG | 0600, 0, "", 0, collect, &d),
        PO_OK);
    assert_int_equal(d.n, 0);

    /* over the file cap, as for a file */
    big = malloc(PO_CONFIG_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, '\n', PO_CONFIG_FILE_MAX + 1);
    po_config_init(&cfg);
    assert_int_equal(po_config_load_buffer(&cfg, big_name, S_IFREG | 0600, big,
                                           PO_CONFIG_FILE_MAX + 1, &err),
                     PO_TOO_LARGE);
    assert_contains(err.msg, "big.conf: larger than");
    memset(&d, 0, sizeof(d));
    assert_int_equal(po_config_check_buffer(big_name, S_IFREG | 0600, 0, big,
                                            PO_CONFIG_FILE_MAX + 1, collect,
                                            &d),
                     PO_TOO_LARGE);
    assert_int_equal(d.n, 1);
    assert_int_equal(po_config_check_buffer(big_name, S_IFREG | 0600, 0, big,
                                            PO_CONFIG_FILE_MAX, collect, &d),
                     PO_OK);
    free(big);
}

/* ------------------------------------------------------------------ */
/* Copies                                                              */

static void test_copy(void **state)
{
    const po_option *t;
    po_profile src, dst;
    po_err err;
    size_t n, i;

    (void)state;
    good_profile(&src, "orig");
    t = po_options(&n);
    for (i = 0; i < n; i++)
        if (t[i].type == PO_OPT_STRING || t[i].type == PO_OPT_SECRET)
            set_ok(&src, t[i].name, t[i].name); /* value = key name */
    set_ok(&src, "timeout", "3s");
    set_ok(&src, "grant", "password");
    set_ok(&src, "param.a", "1");
    set_ok(&src, "param.b", "2");
    src.source = strdup("file:9");
    assert_non_null(src.source);

    assert_int_equal(po_profile_copy(&dst, &src, &err), PO_OK);
    assert_string_equal(dst.name, "orig");
    assert_string_equal(dst.source, "file:9");
    assert_ptr_not_equal(dst.name, src.name);
    assert_ptr_not_equal(dst.source, src.source);
    for (i = 0; i < n; i++) {
        if (t[i].type != PO_OPT_STRING && t[i].type != PO_OPT_SECRET)
            continue;
        assert_string_equal(get_str(&dst, t[i].name), t[i].name);
        assert_ptr_not_equal(get_str(&dst, t[i].name),
                             get_str(&src, t[i].name));
    }
    assert_int_equal(dst.timeout_ms, 3000);
    assert_int_equal(dst.grant, PO_GRANT_PASSWORD);
    assert_int_equal(dst.retries, 2);
    assert_int_equal(dst.nparams, 2);
    assert_ptr_not_equal(dst.params, src.params);
    assert_ptr_not_equal(dst.params[1].value, src.params[1].value);
    assert_string_equal(dst.params[1].name, "b");
    assert_string_equal(dst.params[1].value, "2");

    /* independent: changing or freeing one leaves the other */
    set_ok(&dst, "scope", "changed");
    set_ok(&dst, "param.a", "");
    assert_string_equal(src.scope, "scope");
    assert_int_equal(src.nparams, 2);
    po_profile_free(&src);
    assert_string_equal(dst.client_secret, "client_secret");
    po_profile_free(&dst);
    assert_null(dst.name);

    /* a copy of a fresh profile (no params, no source) */
    assert_int_equal(po_profile_init(&src, "fresh", &err), PO_OK);
    assert_int_equal(po_profile_copy(&dst, &src, &err), PO_OK);
    assert_null(dst.params);
    assert_null(dst.source);
    assert_string_equal(dst.roles_claim, "Roles");
    po_profile_free(&src);
    po_profile_free(&dst);
}

/* ------------------------------------------------------------------ */
/* Client secrets                                                      */

static po_rc load_secret_file(const char *content, size_t len, mode_t mode,
                              char *path, size_t n, po_profile *p, po_err *err)
{
    good_profile(p, "sf");
    (void)snprintf(path, n, "%s/secret%u", tmpdir, ++file_seq);
    write_bytes(path, content, len, mode);
    set_ok(p, "client_secret_file", path);
    po_err_clear(err);
    return po_profile_load_secret(p, NULL, err);
}

static void test_secret_file(void **state)
{
    static const struct {
        const char *content;
        mode_t mode;
        po_rc rc;
        const char *result; /* or the message part */
    } cases[] = {
        {SECRET "\nsecond line\n", 0600, PO_OK, SECRET},
        {SECRET "\r\n", 0600, PO_OK, SECRET},
        {SECRET, 0400, PO_OK, SECRET},
        {" spaces kept \n", 0600, PO_OK, " spaces kept "},
        {SECRET "\n", 0640, PO_CONFIG,
         "is readable by others (mode 0640); "
         "run chmod 600 "},
        {SECRET "\n", 0644, PO_CONFIG, "(mode 0644); run chmod 600"},
        {SECRET "\n", 0604, PO_CONFIG, "(mode 0604)"},
        {SECRET "\n", 0610, PO_CONFIG, "open to group or others (mode 0610)"},
        {"\n" SECRET "\n", 0600, PO_CONFIG, "the first line is empty"},
        {"\r\n", 0600, PO_CONFIG, "the first line is empty"},
        {"", 0600, PO_CONFIG, "the first line is empty"},
    };
    char path[PATH_MAX], *big;
    po_profile p;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        po_rc rc =
            load_secret_file(cases[i].content, strlen(cases[i].content),
                             cases[i].mode, path, sizeof(path), &p, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: %s (%s)", i, po_rc_name(rc), err.msg);
        if (rc == PO_OK) {
            assert_string_equal(p.client_secret, cases[i].result);
            assert_null(p.client_secret_file); /* one source left */
            assert_int_equal(po_profile_validate(&p, &err), PO_OK);
            /* a second call does nothing */
            assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_OK);
            assert_string_equal(p.client_secret, cases[i].result);
        } else {
            assert_true(strncmp(err.msg, "profile 'sf': ", 14) == 0);
            assert_contains(err.msg, path);
            assert_contains(err.msg, cases[i].result);
            assert_not_contains(err.msg, SECRET);
            assert_null(p.client_secret);
            assert_non_null(p.client_secret_file);
        }
        po_profile_free(&p);
    }
    /* a NUL in the first line */
    assert_int_equal(
        load_secret_file("ab\0cd\n", 6, 0600, path, sizeof(path), &p, &err),
        PO_CONFIG);
    assert_contains(err.msg, "NUL");
    po_profile_free(&p);
    /* larger than PO_SECRET_MAX */
    big = malloc(PO_SECRET_MAX + 2);
    assert_non_null(big);
    memset(big, 'k', PO_SECRET_MAX + 1);
    assert_int_equal(load_secret_file(big, PO_SECRET_MAX + 1, 0600, path,
                                      sizeof(path), &p, &err),
                     PO_TOO_LARGE);
    po_profile_free(&p);
    assert_int_equal(load_secret_file(big, PO_SECRET_MAX, 0600, path,
                                      sizeof(path), &p, &err),
                     PO_OK);
    assert_int_equal(strlen(p.client_secret), PO_SECRET_MAX);
    po_profile_free(&p);
    free(big);
    /* someone else's file */
    if (geteuid() == 0) {
        good_profile(&p, "sf");
        (void)snprintf(path, sizeof(path), "%s/foreign.secret", tmpdir);
        write_bytes(path, SECRET "\n", strlen(SECRET) + 1, 0600);
        assert_int_equal(chown(path, 4242, 4242), 0);
        set_ok(&p, "client_secret_file", path);
        assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_CONFIG);
        assert_contains(err.msg, "is owned by uid 4242, not by uid 0 or root");
        assert_not_contains(err.msg, SECRET);
        po_profile_free(&p);
    }
    /* a symlink and a missing file */
    good_profile(&p, "sf");
    (void)snprintf(path, sizeof(path), "%s/secret-link", tmpdir);
    assert_int_equal(symlink("/etc/hostname", path), 0);
    set_ok(&p, "client_secret_file", path);
    assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_IO);
    assert_contains(err.msg, "symbolic link");
    set_ok(&p, "client_secret_file", "/nonexistent/secret");
    assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_NOT_FOUND);
    assert_contains(err.msg, "profile 'sf': client_secret_file: "
                             "/nonexistent/secret");
    po_profile_free(&p);
}

/* No child left behind: every command is reaped. */
static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static po_rc run_command(const char *cmd, const char *timeout, po_profile *p,
                         po_err *err)
{
    good_profile(p, "sc");
    set_ok(p, "client_secret_file", "");
    set_ok(p, "client_secret_command", cmd);
    if (timeout != NULL)
        set_ok(p, "timeout", timeout);
    po_err_clear(err);
    return po_profile_load_secret(p, NULL, err);
}

static void test_secret_command(void **state)
{
    static const struct {
        const char *cmd;
        po_rc rc;
        const char *result; /* or the message part */
    } cases[] = {
        {"printf '" SECRET "\\nsecond line\\n'", PO_OK, SECRET},
        {"printf '" SECRET "\\r\\n'", PO_OK, SECRET},
        {"printf '" SECRET "'", PO_OK, SECRET},
        {"echo one; echo two >&2; exit 0", PO_OK, "one"},
        {"echo \"${PO_TEST_LEAK:-unset}:$PATH\"", PO_OK,
         "unset:/usr/local/bin:/usr/bin:/bin"},
        {"read x; echo \"stdin:$x:$?\"", PO_OK, "stdin::1"},
        {"echo " SECRET "; exit 3", PO_CONFIG,
         "profile 'sc': client_secret_command exited with status 3"},
        {"/nonexistent/command", PO_CONFIG, "exited with status 127"},
        {"echo " SECRET "; kill -TERM $$", PO_CONFIG,
         "client_secret_command was killed by signal 15"},
        {"true", PO_CONFIG, "output: the first line is empty"},
        {"printf '\\n" SECRET "\\n'", PO_CONFIG, "the first line is empty"},
        {"head -c 5000 /dev/zero | tr '\\0' k", PO_TOO_LARGE,
         "printed more than 4096 bytes"},
    };
    po_profile p;
    po_err err;
    size_t i;

    (void)state;
    setenv("PO_TEST_LEAK", SECRET, 1);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        po_rc rc = run_command(cases[i].cmd, NULL, &p, &err);
        if (rc != cases[i].rc)
            fail_msg("%s: %s (%s)", cases[i].cmd, po_rc_name(rc), err.msg);
        if (rc == PO_OK) {
            assert_string_equal(p.client_secret, cases[i].result);
            assert_null(p.client_secret_command);
            assert_int_equal(po_profile_validate(&p, &err), PO_OK);
        } else {
            assert_contains(err.msg, cases[i].result);
            assert_not_contains(err.msg, SECRET);
            assert_null(p.client_secret);
        }
        po_profile_free(&p);
        assert_no_children();
    }
    unsetenv("PO_TEST_LEAK");
}

static void test_secret_command_fds(void **state)
{
    char cmd[128];
    po_profile p;
    po_err err;
    int fd;

    (void)state;
    fd = open("/dev/null", O_RDONLY); /* inheritable on purpose */
    assert_true(fd > 2);
    (void)snprintf(cmd, sizeof(cmd),
                   "if [ -e /dev/fd/%d ]; then echo open; else echo closed; "
                   "fi",
                   fd);
    assert_int_equal(run_command(cmd, NULL, &p, &err), PO_OK);
    assert_string_equal(p.client_secret, "closed");
    po_profile_free(&p);
    close(fd);
    assert_no_children();
}

static void test_secret_command_timeout(void **state)
{
    static const char *const cmds[] = {
        "sleep 5", "echo " SECRET "; sleep 5", /* no EOF */
        "echo " SECRET "; exec >&-; sleep 5",  /* EOF, no exit */
        "sleep 5 & echo " SECRET,              /* the child keeps stdout */
    };
    char cmd[PATH_MAX + 128], pidfile[PATH_MAX], buf[64], stat[PATH_MAX];
    po_profile p;
    po_err err;
    uint64_t t0;
    size_t i;
    FILE *f;
    long bg;

    (void)state;
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        t0 = po_mono_ms();
        assert_int_equal(run_command(cmds[i], "300ms", &p, &err), PO_TIMEOUT);
        assert_true(po_mono_ms() - t0 < 3000);
        assert_contains(err.msg, "profile 'sc': client_secret_command did "
                                 "not finish within 300 ms; killed");
        assert_not_contains(err.msg, SECRET);
        assert_null(p.client_secret);
        po_profile_free(&p);
        assert_no_children();
    }
    /* the whole process group is killed, background children too */
    (void)snprintf(pidfile, sizeof(pidfile), "%s/bg.pid", tmpdir);
    (void)snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > %s; wait", pidfile);
    assert_int_equal(run_command(cmd, "300ms", &p, &err), PO_TIMEOUT);
    po_profile_free(&p);
    f = fopen(pidfile, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &bg), 1);
    fclose(f);
    po_sleep_ms(100);
    (void)snprintf(stat, sizeof(stat), "/proc/%ld/stat", bg);
    f = fopen(stat, "r");
    if (f != NULL) { /* only a zombie (waiting for init) may remain */
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        assert_non_null(strstr(buf, ") Z"));
    }
}

/* A host that ignores SIGCHLD: children are reaped by the kernel, so the
 * exit status is unknown; output read to EOF is used. */
static void test_secret_command_sigchld_ignored(void **state)
{
    struct sigaction ign, old;
    po_profile p;
    po_err err;

    (void)state;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
    assert_int_equal(run_command("printf '" SECRET "\\n'", NULL, &p, &err),
                     PO_OK);
    assert_string_equal(p.client_secret, SECRET);
    po_profile_free(&p);
    assert_int_equal(run_command("sleep 5", "200ms", &p, &err), PO_TIMEOUT);
    po_profile_free(&p);
    assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
    assert_no_children();
}

static void test_load_secret_noop_and_errors(void **state)
{
    po_profile p;
    po_err err;

    (void)state;
    /* public client: nothing to load */
    good_profile(&p, "n");
    set_ok(&p, "client_auth", "none");
    set_ok(&p, "client_secret_file", "/nonexistent");
    assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_OK);
    assert_null(p.client_secret);
    po_profile_free(&p);
    /* inline secret: kept as it is */
    good_profile(&p, "n");
    set_ok(&p, "client_secret", SECRET);
    assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_OK);
    assert_string_equal(p.client_secret, SECRET);
    po_profile_free(&p);
    /* no source */
    good_profile(&p, "n");
    set_ok(&p, "client_secret_file", "");
    assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_CONFIG);
    assert_contains(err.msg, "no client secret is configured");
    /* two sources */
    set_ok(&p, "client_secret_file", "/x");
    set_ok(&p, "client_secret_command", "echo x");
    assert_int_equal(po_profile_load_secret(&p, NULL, &err), PO_CONFIG);
    assert_contains(err.msg, "both set");
    po_profile_free(&p);
    assert_int_equal(po_profile_load_secret(NULL, NULL, &err), PO_USAGE);
}

/* ------------------------------------------------------------------ */
/* Default paths                                                       */

static void restore_env(const char *name, char *saved)
{
    if (saved != NULL) {
        setenv(name, saved, 1);
        free(saved);
    } else {
        unsetenv(name);
    }
}

static void test_default_paths(void **state)
{
    char *home = po_strdup(getenv("HOME"));
    char *xdg = po_strdup(getenv("XDG_CONFIG_HOME"));
    char **v = NULL;
    po_err err;

    (void)state;
    setenv("XDG_CONFIG_HOME", "/tmp/xdg", 1);
    assert_int_equal(po_config_default_paths(1, &v, &err), PO_OK);
    assert_string_equal(v[0], PO_SYSTEM_CONFIG);
    assert_string_equal(v[1], "/tmp/xdg/pam-oauth/pam-oauth.conf");
    assert_null(v[2]);
    po_config_free_paths(v);

    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/home/tester", 1);
    assert_int_equal(po_config_default_paths(1, &v, &err), PO_OK);
    assert_string_equal(v[1], "/home/tester/.config/pam-oauth/pam-oauth.conf");
    assert_null(v[2]);
    po_config_free_paths(v);

    setenv("XDG_CONFIG_HOME", "relative", 1); /* ignored, as XDG says */
    assert_int_equal(po_config_default_paths(1, &v, &err), PO_OK);
    assert_string_equal(v[1], "/home/tester/.config/pam-oauth/pam-oauth.conf");
    po_config_free_paths(v);

    assert_int_equal(po_config_default_paths(0, &v, &err), PO_OK);
    assert_string_equal(v[0], PO_SYSTEM_CONFIG);
    assert_null(v[1]);
    po_config_free_paths(v);
    po_config_free_paths(NULL);
    assert_string_equal(PO_SYSTEM_CONFIG + strlen(PO_SYSTEM_CONFIG) -
                            strlen("/pam-oauth/pam-oauth.conf"),
                        "/pam-oauth/pam-oauth.conf");

    restore_env("HOME", home);
    restore_env("XDG_CONFIG_HOME", xdg);
}

/* ------------------------------------------------------------------ */
/* The man page and the example file mirror the table                  */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = malloc(1024 * 1024);
    size_t len;

    if (f == NULL || buf == NULL) {
        fail_msg("%s: %s", path, strerror(errno));
        abort();
    }
    len = fread(buf, 1, 1024 * 1024 - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* The line the man page gives under ".TP\n.B name": type, range, default
 * and reader, exactly as the table says. */
static void man_line(const po_option *o, char *buf, size_t n)
{
    char type[256], def[128];
    const char *who = o->who == PO_FOR_BOTH  ? "both"
                      : o->who == PO_FOR_PAM ? "pam_oauth"
                                             : "oauth\\-token";
    size_t i, used;

    switch (o->type) {
    case PO_OPT_STRING:
        (void)snprintf(type, sizeof(type), "\\fIstring\\fR");
        break;
    case PO_OPT_SECRET:
        (void)snprintf(type, sizeof(type), "\\fIsecret string\\fR");
        break;
    case PO_OPT_BOOL:
        (void)snprintf(type, sizeof(type), "\\fIboolean\\fR");
        break;
    case PO_OPT_LONG:
        (void)snprintf(type, sizeof(type), "\\fIinteger\\fR, %ld to %ld",
                       o->min, o->max);
        break;
    case PO_OPT_DURATION:
        if (o->min == -1)
            (void)snprintf(type, sizeof(type),
                           "\\fIduration\\fR or \\fBauto\\fR, 0 to %ld "
                           "seconds",
                           o->max);
        else
            (void)snprintf(type, sizeof(type),
                           "\\fIduration\\fR, %ld to %ld seconds", o->min,
                           o->max);
        break;
    case PO_OPT_MILLIS:
        (void)snprintf(type, sizeof(type), "\\fItime\\fR, %ld to %ld ms",
                       o->min, o->max);
        break;
    case PO_OPT_ENUM:
        used = (size_t)snprintf(type, sizeof(type), "\\fIone of\\fR ");
        for (i = 0; o->enum_values[i] != NULL; i++)
            used += (size_t)snprintf(type + used, sizeof(type) - used,
                                     "%s\\fB%s\\fR",
                                     i == 0                          ? ""
                                     : o->enum_values[i + 1] == NULL ? " or "
                                                                     : ", ",
                                     o->enum_values[i]);
        break;
    }
    if (o->def != NULL)
        (void)snprintf(def, sizeof(def), "default \\fB%s\\fR", o->def);
    else
        (void)snprintf(def, sizeof(def), "no default");
    (void)snprintf(buf, n, "%s; %s; read by %s.\n", type, def, who);
}

static void test_man_page(void **state)
{
    char *path = source_file("man/pam-oauth.conf.5");
    char *text = read_all(path), *keys, *end, *s, want[512], item[128];
    const po_option *t;
    size_t n, i;

    (void)state;
    keys = strstr(text, "\n.SH KEYS\n");
    end = keys != NULL ? strstr(keys + 1, "\n.SH ") : NULL;
    if (end == NULL) {
        fail_msg("%s: no KEYS section followed by another section", path);
        return;
    }
    *end = '\0';
    t = po_options(&n);
    for (i = 0; i < n; i++) {
        (void)snprintf(item, sizeof(item), "\n.TP\n.B %s\n", t[i].name);
        if ((s = strstr(keys, item)) == NULL)
            fail_msg("%s: key %s is not documented (no \"%s\")", path,
                     t[i].name, item + 1);
        man_line(&t[i], want, sizeof(want));
        if (strncmp(s + strlen(item), want, strlen(want)) != 0)
            fail_msg("%s: key %s: expected the line \"%s\"", path, t[i].name,
                     want);
    }
    /* and the section documents no key the table does not have */
    for (s = keys; (s = strstr(s, "\n.TP\n.B ")) != NULL; s++) {
        char name[64];
        if (sscanf(s + 8, "%63[a-z_]", name) != 1)
            fail_msg("%s: odd item in KEYS", path);
        if (strcmp(name, "param") != 0 && !po_option_known(name))
            fail_msg("%s: documents unknown key %s", path, name);
    }
    free(text);
    free(path);
}

/* The entry of key in the KEYS section text (up to the next .TP),
 * NUL-terminated in place of the next entry's newline; NULL if none. */
static char *man_entry(char *keys, const char *key)
{
    char item[128], *s, *next;

    (void)snprintf(item, sizeof(item), "\n.TP\n.B %s\n", key);
    if ((s = strstr(keys, item)) == NULL)
        return NULL;
    s += strlen(item);
    if ((next = strstr(s, "\n.TP\n")) != NULL)
        *next = '\0';
    return s;
}

/* allow_http is documented for every URL key it governs, and each of
 * those says so (issue 14.9). */
static void test_man_page_allow_http(void **state)
{
    static const char *const url_keys[] = {"token_url", "issuer", "jwks_uri",
                                           "introspection_url"};
    char *path = source_file("man/pam-oauth.conf.5");
    char *text = read_all(path), *copy, *entry, want[64];
    size_t i;

    (void)state;
    copy = strdup(text);
    assert_non_null(copy);
    entry = man_entry(copy, "allow_http");
    assert_non_null(entry);
    for (i = 0; i < sizeof(url_keys) / sizeof(url_keys[0]); i++) {
        (void)snprintf(want, sizeof(want), ".B %s", url_keys[i]);
        if (strstr(entry, want) == NULL &&
            (snprintf(want, sizeof(want), ".BR %s", url_keys[i]),
             strstr(entry, want) == NULL))
            fail_msg("%s: allow_http does not name %s", path, url_keys[i]);
    }
    for (i = 0; i < sizeof(url_keys) / sizeof(url_keys[0]); i++) {
        strcpy(copy, text);
        entry = man_entry(copy, url_keys[i]);
        if (entry == NULL || strstr(entry, "allow_http") == NULL)
            fail_msg("%s: %s does not mention allow_http", path, url_keys[i]);
    }
    free(copy);
    free(text);
    free(path);
}

/* username_format: the one mapping rule of pam_oauth and session-refresh. */
static void test_map_user(void **state)
{
    static const struct {
        const char *fmt, *user, *want;
        po_rc rc;
        const char *msg;
    } cases[] = {
        {NULL, "alice", "alice", PO_OK, NULL},
        {"", "alice", "alice", PO_OK, NULL},
        {"%u@example.com", "alice", "alice@example.com", PO_OK, NULL},
        {"CORP\\%u", "bob", "CORP\\bob", PO_OK, NULL},
        {"100%%-%u", "carol", "100%-carol", PO_OK, NULL},
        {"%u@example.com", "eve@evil.com", NULL, PO_USAGE, "contains '@'"},
        {"CORP\\%u", "a\\b", NULL, PO_USAGE, "contains '\\'"},
        {"%u", "a@b", "a@b", PO_OK, NULL}, /* no separator in the format */
        {"%u-%x", "alice", NULL, PO_CONFIG, "unknown conversion '%x'"},
        {"%", "alice", NULL, PO_CONFIG, "unknown conversion"},
        {"fixed", "alice", NULL, PO_CONFIG, "has no %u"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = (char *)0x1;
        po_err err;
        po_rc rc;

        po_err_clear(&err);
        rc = po_profile_map_user(cases[i].fmt, cases[i].user, &out, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %s, want %s (%s)", i, po_rc_name(rc),
                     po_rc_name(cases[i].rc), err.msg);
        if (cases[i].want != NULL) {
            assert_non_null(out);
            assert_string_equal(out, cases[i].want);
        } else {
            assert_null(out);
            assert_non_null(strstr(err.msg, cases[i].msg));
        }
        free(out);
    }
}

static void test_example_file(void **state)
{
    static const char *const names[] = {
        "froomle",  "wave",  "bloom", "fluent", "fluent-integration",
        "glewlwyd", "device"};
    char *path = source_file("examples/pam-oauth.conf");
    po_config cfg;
    po_profile *p;
    po_err err;
    size_t i;

    (void)state;
    po_config_init(&cfg);
    if (po_config_load_file(&cfg, path, 0, &err) != PO_OK)
        fail_msg("%s", err.msg);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        p = po_config_find(&cfg, names[i]);
        if (p == NULL)
            fail_msg("%s: no [%s]", path, names[i]);
        if (po_profile_validate_pam(p, &err) != PO_OK)
            fail_msg("%s", err.msg);
        assert_null(p->client_secret); /* no secret in an example */
    }
    assert_int_equal(cfg.nprofiles, sizeof(names) / sizeof(names[0]));
    p = po_config_find(&cfg, "froomle");
    assert_int_equal(p->body, PO_BODY_JSON);
    assert_int_equal(p->client_auth, PO_CLIENT_AUTH_POST);
    assert_int_equal(p->default_lifetime, 86400);
    assert_int_equal(p->refresh_interval, 600);
    p = po_config_find(&cfg, "wave");
    assert_int_equal(p->body, PO_BODY_FORM);
    assert_int_equal(p->budget, 1000);
    assert_non_null(p->audience);
    p = po_config_find(&cfg, "bloom");
    assert_non_null(p->audience);
    p = po_config_find(&cfg, "device");
    assert_int_equal(p->grant, PO_GRANT_DEVICE_CODE);
    assert_int_equal(p->verify, PO_VERIFY_JWT);
    assert_int_equal(p->device_timeout, 110);
    assert_non_null(p->scope);
    p = po_config_find(&cfg, "fluent");
    assert_int_equal(p->grant, PO_GRANT_PASSWORD);
    assert_int_equal(p->body, PO_BODY_QUERY);
    assert_int_equal(p->client_auth, PO_CLIENT_AUTH_POST);
    assert_string_equal(p->scope, "api");
    p = po_config_find(&cfg, "fluent-integration");
    assert_int_equal(p->client_auth, PO_CLIENT_AUTH_NONE);
    assert_string_equal(p->client_id, "FLUENT_INTEGRATION");
    assert_string_equal(p->scope, "retailer");
    po_config_free(&cfg);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_set_keeps_and_resets),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_crlf_comments_blank),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_profile_names),
        cmocka_unit_test(test_messages_without_control_chars),
        cmocka_unit_test(test_merge_and_override),
        cmocka_unit_test(test_transactional),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_huge_file),
        cmocka_unit_test(test_symlink_and_missing),
        cmocka_unit_test(test_inline_secret_permissions),
        cmocka_unit_test(test_strict_owner),
        cmocka_unit_test(test_strict_dirs),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_validate_no_secret),
        cmocka_unit_test(test_validate_names_source),
        cmocka_unit_test(test_validate_device),
        cmocka_unit_test(test_validate_offline),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_check_reports_all),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_secret_command),
        cmocka_unit_test(test_secret_command_fds),
        cmocka_unit_test(test_secret_command_timeout),
        cmocka_unit_test(test_secret_command_sigchld_ignored),
        cmocka_unit_test(test_load_secret_noop_and_errors),
        cmocka_unit_test(test_default_paths),
        cmocka_unit_test(test_man_page),
        cmocka_unit_test(test_man_page_allow_http),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_map_user),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
