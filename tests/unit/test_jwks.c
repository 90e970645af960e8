/* test_jwks.c - JWKs to OpenSSL keys, Cache-Control lifetimes, and the key
 * set caches: the disk file (ownership, symlinks, atomic 0600 writes) and
 * the unknown-kid refetch rate limit, against a closed port on 127.0.0.1
 * (every fetch fails fast: the tests count attempts, not keys).  Fetching
 * real key sets is covered by tests/integration/test_jwt.py. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "b64.h"
#include "jwks.h"
#include "jwt.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1800000000LL

static char tmpdir[] = "/tmp/po-test-jwks-XXXXXX";
static char closed_url[128];
static char rsa_jwk[2048]; /* a valid RSA 2048 JWK, kid "r1" */
static int log_lines;
static char last_log[8192]; /* every line since the count was reset */

static void log_fn(void *ctx, int priority, const char *msg)
{
    (void)ctx;
    (void)priority;
    if (log_lines++ == 0)
        last_log[0] = '\0';
    if (strlen(last_log) + strlen(msg) + 2 < sizeof(last_log)) {
        strcat(last_log, msg);
        strcat(last_log, "\n");
    }
}

static const po_log test_log = {log_fn, NULL, 1};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A TCP port on 127.0.0.1 with nothing listening. */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int group_setup(void **state)
{
    EVP_PKEY *k;
    BIGNUM *n = NULL, *e = NULL;
    unsigned char buf[512];
    char *ns = NULL, *es = NULL;
    int nl, el;

    (void)state;
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    (void)snprintf(closed_url, sizeof(closed_url), "http://127.0.0.1:%d/jwks",
                   closed_port());
    if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) == NULL ||
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
        return -1;
    nl = BN_bn2bin(n, buf);
    if (po_b64url_encode(buf, (size_t)nl, &ns, NULL) != PO_OK)
        return -1;
    el = BN_bn2bin(e, buf);
    if (po_b64url_encode(buf, (size_t)el, &es, NULL) != PO_OK)
        return -1;
    (void)snprintf(rsa_jwk, sizeof(rsa_jwk),
                   "{\"kty\":\"RSA\",\"kid\":\"r1\",\"n\":\"%s\",\"e\":\"%s\"}",
                   ns, es);
    free(ns);
    free(es);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(k);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ */

static void test_parse_keys(void **state)
{
    static const struct {
        const char *jwk;
        size_t keys, skipped;
    } cases[] = {
        /* P-256 test vector of RFC 7517 A.1 */
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"1\","
         "\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
         "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\",\"use\":"
         "\"enc\"}",
         1, 0},
        /* the point moved off the curve */
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"1\","
         "\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
         "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyA\"}",
         0, 1},
        /* x too short for the curve */
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}", 0,
         1},
        /* Ed25519 test vector of RFC 8037 A.2 */
        {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
         "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
         1, 0},
        {"{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"}", 0, 1},
        {"{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}", 0, 1},
        /* RSA 512: too small */
        {"{\"kty\":\"RSA\",\"n\":"
         "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78"
         "LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
         "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvz"
         "qY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qN"
         "LyrdkT\",\"e\":\"AQAB\"}",
         0, 1},
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", 0, 1},
        {"{\"kty\":\"RSA\",\"n\":\"a+b/\",\"e\":\"AQAB\"}", 0, 1},
        {"{\"kty\":\"RSA\",\"e\":\"AQAB\"}", 0, 1},
        {"{\"kid\":\"no-kty\"}", 0, 1},
        {"{\"kty\":5}", 0, 1},
        {"\"not an object\"", 0, 1},
    };
    size_t i, skipped;
    char text[4096];

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_jwks ks;
        po_err err;

        (void)snprintf(text, sizeof(text), "{\"keys\":[%s]}", cases[i].jwk);
        assert_int_equal(po_jwks_parse(text, strlen(text), &ks, &skipped, &err),
                         PO_OK);
        if (ks.n != cases[i].keys || skipped != cases[i].skipped)
            fail_msg("case %zu: %zu keys, %zu skipped", i, ks.n, skipped);
        po_jwks_free(&ks);
    }
    /* the generated RSA key */
    {
        po_jwks ks;
        (void)snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}", rsa_jwk,
                       cases[0].jwk);
        assert_int_equal(po_jwks_parse(text, strlen(text), &ks, &skipped, NULL),
                         PO_OK);
        assert_int_equal(ks.n, 2);
        assert_string_equal(ks.keys[0].kid, "r1");
        assert_string_equal(ks.keys[0].kty, "RSA");
        assert_null(ks.keys[0].alg);
        assert_string_equal(ks.keys[1].use, "enc");
        assert_int_equal(EVP_PKEY_get_bits(ks.keys[0].pkey), 2048);
        po_jwks_free(&ks);
    }
}

static void test_parse_documents(void **state)
{
    static const char *const bad[] = {
        "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[", "null"};
    size_t i;
    po_jwks ks;
    po_err err;

    (void)state;
    for (i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(po_jwks_parse(bad[i], strlen(bad[i]), &ks, NULL, &err),
                         PO_MALFORMED_RESPONSE);
    assert_int_equal(po_jwks_parse("{\"keys\":[]}", 11, &ks, NULL, &err),
                     PO_OK);
    assert_int_equal(ks.n, 0);
    po_jwks_free(&ks);
}

static void test_max_age(void **state)
{
    static const struct {
        const char *cc;
        long want;
    } cases[] = {
        {NULL, 3600},
        {"", 3600},
        {"public", 3600},
        {"max-age=300", 300},
        {"public, max-age=7200, must-revalidate", 7200},
        {"MAX-AGE=600", 600},
        {"max-age=\"900\"", 900},
        {"max-age=5", 60},
        {"max-age=0", 60},
        {"max-age=", 60},
        {"max-age=999999999999999999999", 86400},
        {"max-age=172800", 86400},
        {"no-store", 60},
        {"no-cache, max-age=600", 60},
        {"s-maxage=10", 3600},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++)
        if (po_jwks_max_age(cases[i].cc) != cases[i].want)
            fail_msg("\"%s\": %ld, want %ld",
                     cases[i].cc ? cases[i].cc : "(null)",
                     po_jwks_max_age(cases[i].cc), cases[i].want);
}

/* A source whose every fetch fails at once (nothing listens). */
static po_jwks_source source(const char *dir)
{
    po_jwks_source s;

    memset(&s, 0, sizeof(s));
    s.issuer = "https://issuer.test";
    s.jwks_uri = closed_url;
    s.cache_dir = dir;
    s.allow_http = 1;
    s.connect_timeout_ms = 2000;
    s.retries = 0;
    s.log = &test_log;
    return s;
}

/* A child serving one HTTP/1.1 answer with body on 127.0.0.1; *port
 * receives the port.  Returns the child's pid. */
static pid_t serve_once(const char *body, int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    char req[4096], head[256];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c;
    size_t got = 0;
    ssize_t n;
    pid_t pid;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(listen(fd, 4), 0);
    *port = ntohs(a.sin_port);
    if ((pid = fork()) != 0) {
        assert_true(pid > 0);
        close(fd);
        return pid;
    }
    if ((c = accept(fd, NULL, NULL)) < 0)
        _exit(1);
    while (got < sizeof(req) - 1 &&
           (n = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    (void)snprintf(head, sizeof(head),
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   strlen(body));
    if (write(c, head, strlen(head)) < 0 || write(c, body, strlen(body)) < 0)
        _exit(1);
    close(c);
    _exit(0);
}

/* A key set that does not parse: the message says where and why, once
 * (it was formatted from err->msg into itself). */
static void test_fetch_bad_key_set_message(void **state)
{
    char url[64], want[160];
    po_jwks_source s;
    po_jwks_cache c;
    const po_jwks *keys = NULL;
    po_err err;
    int port, status;
    pid_t pid;

    (void)state;
    pid = serve_once("{\"no\":\"keys\"}", &port);
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks", port);
    memset(&s, 0, sizeof(s));
    s.issuer = "https://issuer.test";
    s.jwks_uri = url;
    s.allow_http = 1;
    s.connect_timeout_ms = 2000;
    s.log = &test_log;
    po_jwks_cache_init(&c);
    assert_int_equal(po_jwks_get(&c, &s, NOW, &keys, &err),
                     PO_MALFORMED_RESPONSE);
    (void)snprintf(want, sizeof(want),
                   "%s: key set: not a JSON object with a \"keys\" array", url);
    assert_string_equal(err.msg, want);
    po_jwks_cache_free(&c);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *subdir(const char *name)
{
    char *p = NULL;

    assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
    return p;
}

/* Write a disk cache file for s by hand. */
static void write_cache(const po_jwks_source *s, int64_t fetched,
                        int64_t expires, int64_t refetch, const char *jwks)
{
    struct json_object *o = json_object_new_object();
    char *path = NULL;
    FILE *f;

    assert_int_equal(po_jwks_ensure_dir(s->cache_dir, NULL), PO_OK);
    assert_int_equal(po_jwks_cache_file(s, &path, NULL), PO_OK);
    json_object_object_add(o, "version", json_object_new_int(1));
    json_object_object_add(o, "issuer", json_object_new_string(s->issuer));
    json_object_object_add(o, "source_jwks_uri",
                           json_object_new_string(s->jwks_uri));
    json_object_object_add(o, "fetched_at", json_object_new_int64(fetched));
    json_object_object_add(o, "expires_at", json_object_new_int64(expires));
    json_object_object_add(o, "refetch_at", json_object_new_int64(refetch));
    json_object_object_add(o, "jwks", json_object_new_string(jwks));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(json_object_to_json_string(o), f);
    fclose(f);
    chmod(path, 0600);
    json_object_put(o);
    free(path);
}

static void test_disk_cache_hit(void **state)
{
    char *dir = subdir("hit"), jwks[4096];
    po_jwks_source s = source(dir);
    po_jwks_cache c;
    const po_jwks *keys = NULL;
    po_err err;

    (void)state;
    (void)snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", rsa_jwk);
    write_cache(&s, NOW - 10, NOW + 100, 0, jwks);
    po_jwks_cache_init(&c);
    /* Fresh on disk: no fetch (one would fail). */
    assert_int_equal(po_jwks_get(&c, &s, NOW, &keys, &err), PO_OK);
    assert_int_equal(keys->n, 1);
    assert_int_equal(c.fetches, 0);
    /* Fresh in memory: the disk is not read again. */
    write_cache(&s, NOW - 10, NOW + 100, 0, "{\"keys\":[]}");
    assert_int_equal(po_jwks_get(&c, &s, NOW + 1, &keys, &err), PO_OK);
    assert_int_equal(keys->n, 1);
    /* Expired: a fetch is tried (and fails here). */
    assert_int_equal(po_jwks_get(&c, &s, NOW + 200, &keys, &err), PO_NETWORK);
    assert_int_equal(c.fetches, 1);
    po_jwks_cache_free(&c);
    free(dir);
}

static void test_refetch_rate_limit(void **state)
{
    char *dir = subdir("rate"), jwks[4096];
    po_jwks_source s = source(dir);
    po_jwks_cache c;
    const po_jwks *keys = NULL;
    int refetched = 7;
    po_err err;

    (void)state;
    (void)snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", rsa_jwk);
    /* Another process refetched 10 s ago: no fetch. */
    write_cache(&s, NOW - 10, NOW + 100, NOW - 10, jwks);
    po_jwks_cache_init(&c);
    assert_int_equal(po_jwks_get(&c, &s, NOW, &keys, &err), PO_OK);
    assert_int_equal(po_jwks_refetch(&c, &s, NOW, &refetched, &err), PO_OK);
    assert_int_equal(refetched, 0);
    assert_int_equal(c.fetches, 0);
    /* 61 s after it: one fetch (failing), recorded on disk... */
    assert_int_equal(po_jwks_refetch(&c, &s, NOW + 51, &refetched, &err),
                     PO_NETWORK);
    assert_int_equal(c.fetches, 1);
    /* ...so that the next 20 unknown kids, in this context or a new one,
     * fetch nothing for a minute. */
    for (int i = 0; i < 20; i++) {
        po_jwks_cache fresh;
        po_jwks_cache_init(&fresh);
        assert_int_equal(
            po_jwks_refetch(&c, &s, NOW + 52 + i, &refetched, &err), PO_OK);
        assert_int_equal(refetched, 0);
        /* (a new context takes the keys on disk: no network either) */
        assert_int_equal(
            po_jwks_refetch(&fresh, &s, NOW + 52 + i, &refetched, &err), PO_OK);
        assert_int_equal(fresh.fetches, 0);
        po_jwks_cache_free(&fresh);
    }
    assert_int_equal(c.fetches, 1);
    /* The failed fetch kept the old keys. */
    assert_int_equal(po_jwks_get(&c, &s, NOW + 60, &keys, &err), PO_OK);
    assert_int_equal(keys->n, 1);
    /* A clock far in the past does not block forever... */
    assert_int_equal(po_jwks_refetch(&c, &s, NOW - 1000, &refetched, &err),
                     PO_NETWORK);
    po_jwks_cache_free(&c);
    free(dir);
}

static void test_refetch_memory_only(void **state)
{
    po_jwks_source s = source(NULL);
    po_jwks_cache c;
    int refetched;
    po_err err;

    (void)state;
    po_jwks_cache_init(&c);
    assert_int_equal(po_jwks_refetch(&c, &s, NOW, &refetched, &err),
                     PO_NETWORK);
    assert_int_equal(c.fetches, 1);
    /* c holds no keys for the source: the limit is kept in c only when it
     * does; the disk cache is what limits across processes. */
    po_jwks_cache_free(&c);
}

static void test_unusable_files(void **state)
{
    char *dir = subdir("bad"), jwks[4096], *path = NULL, *real = NULL;
    po_jwks_source s = source(dir);
    po_jwks_cache c;
    const po_jwks *keys = NULL;
    po_err err;

    (void)state;
    (void)snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", rsa_jwk);
    write_cache(&s, NOW - 10, NOW + 100, 0, jwks);
    assert_int_equal(po_jwks_cache_file(&s, &path, NULL), PO_OK);

    /* group-writable: ignored with a warning, so a fetch is tried */
    chmod(path, 0620);
    po_jwks_cache_init(&c);
    log_lines = 0;
    assert_int_equal(po_jwks_get(&c, &s, NOW, &keys, &err), PO_NETWORK);
    assert_true(log_lines > 0);
    po_jwks_cache_free(&c);

    /* a symlink to a good file: ignored */
    chmod(path, 0600);
    assert_true(asprintf(&real, "%s.real", path) > 0);
    assert_int_equal(rename(path, real), 0);
    assert_int_equal(symlink(real, path), 0);
    po_jwks_cache_init(&c);
    log_lines = 0;
    assert_int_equal(po_jwks_get(&c, &s, NOW, &keys, &err), PO_NETWORK);
    assert_non_null(strstr(last_log, "symbolic link"));
    po_jwks_cache_free(&c);
    unlink(path);
    assert_int_equal(rename(real, path), 0);

    /* another issuer's file (same name by accident): ignored */
    {
        po_jwks_source other = s;
        other.issuer = "https://other.test";
        po_jwks_cache_init(&c);
        assert_int_equal(po_jwks_get(&c, &other, NOW, &keys, &err), PO_NETWORK);
        po_jwks_cache_free(&c);
    }

    /* foreign owner (root only) */
    if (geteuid() == 0) {
        struct passwd *nobody = getpwnam("nobody");
        if (nobody != NULL) {
            assert_int_equal(chown(path, nobody->pw_uid, nobody->pw_gid), 0);
            po_jwks_cache_init(&c);
            log_lines = 0;
            assert_int_equal(po_jwks_get(&c, &s, NOW, &keys, &err), PO_NETWORK);
            assert_non_null(strstr(last_log, "owned by uid"));
            po_jwks_cache_free(&c);
        }
    }
    free(real);
    free(path);
    free(dir);
}

static void test_ensure_dir(void **state)
{
    char *dir = subdir("a/b/c"), *loose = subdir("loose"),
         *link = subdir("link");
    struct stat st;
    po_err err;

    (void)state;
    assert_int_equal(po_jwks_ensure_dir(dir, &err), PO_OK);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(po_jwks_ensure_dir("relative/dir", &err), PO_CONFIG);
    assert_int_equal(mkdir(loose, 0777), 0);
    assert_int_equal(chmod(loose, 0777), 0);
    assert_int_equal(po_jwks_ensure_dir(loose, &err), PO_IO);
    assert_non_null(strstr(err.msg, "writable by group or others"));
    assert_int_equal(symlink(dir, link), 0);
    assert_int_equal(po_jwks_ensure_dir(link, &err), PO_IO);
    assert_non_null(strstr(err.msg, "symbolic link"));
    free(dir);
    free(loose);
    free(link);
}

static void test_cache_file_name(void **state)
{
    po_jwks_source a = source("/x"), b = source("/x");
    char *pa = NULL, *pb = NULL;

    (void)state;
    b.issuer = "https://issuer.test/other";
    assert_int_equal(po_jwks_cache_file(&a, &pa, NULL), PO_OK);
    assert_int_equal(po_jwks_cache_file(&b, &pb, NULL), PO_OK);
    assert_int_equal(strncmp(pa, "/x/jwks-", 8), 0);
    assert_int_equal(strlen(pa), strlen("/x/jwks-") + 32 + strlen(".json"));
    assert_string_not_equal(pa, pb);
    free(pa);
    free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_keys),
        cmocka_unit_test(test_parse_documents),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_fetch_bad_key_set_message),
        cmocka_unit_test(test_disk_cache_hit),
        cmocka_unit_test(test_refetch_rate_limit),
        cmocka_unit_test(test_refetch_memory_only),
        cmocka_unit_test(test_unusable_files),
        cmocka_unit_test(test_ensure_dir),
        cmocka_unit_test(test_cache_file_name),
    };
    return cmocka_run_group_tests_name("jwks", tests, group_setup,
                                       group_teardown);
}
