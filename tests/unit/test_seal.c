/* test_seal.c - sealed values (AES-256-GCM), key files and keygen. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "b64.h"
#include "seal.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/po-test-seal-XXXXXX";

static char *path_in(const char *name)
{
    char *p = NULL;

    assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
    return p;
}

static void write_file(const char *path, const void *data, size_t n,
                       mode_t mode)
{
    FILE *f;

    (void)unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* A key file made by po_seal_keygen, loaded. */
static void new_key(const char *name, po_seal_key *k)
{
    char *path = path_in(name);
    po_err err;

    (void)unlink(path);
    assert_int_equal(po_seal_keygen(path, &err), PO_OK);
    if (po_seal_key_load(path, k, &err) != PO_OK)
        fail_msg("%s", err.msg);
    free(path);
}

static void test_roundtrip_and_binding(void **state)
{
    static const char *const texts[] = {"", "x",
                                        "{\"access_token\":\"s3cret\"}"};
    po_seal_key k;
    po_buf v;
    po_err err;
    char *plain = NULL;
    size_t i, n;

    (void)state;
    new_key("k1", &k);
    for (i = 0; i < ARRAY_LEN(texts); i++) {
        po_buf_init(&v, PO_SEAL_VALUE_MAX, 0);
        assert_int_equal(po_seal(&k, "/p/a/token", "a", texts[i],
                                 strlen(texts[i]), &v, &err),
                         PO_OK);
        assert_non_null(strstr(v.data, PO_SEAL_PREFIX));
        if (strlen(texts[i]) > 8) /* not by chance in the base64 */
            assert_null(strstr(v.data, texts[i]));
        assert_int_equal(
            po_unseal(&k, "/p/a/token", "a", v.data, v.len, &plain, &n, &err),
            PO_OK);
        assert_int_equal(n, strlen(texts[i]));
        assert_string_equal(plain, texts[i]);
        free(plain);
        /* Bound to the key name and the profile. */
        assert_int_equal(
            po_unseal(&k, "/p/a/budget", "a", v.data, v.len, &plain, &n, &err),
            PO_MALFORMED_RESPONSE);
        assert_non_null(strstr(err.msg, "fails authentication"));
        assert_int_equal(
            po_unseal(&k, "/p/a/token", "b", v.data, v.len, &plain, &n, &err),
            PO_MALFORMED_RESPONSE);
        assert_null(plain);
        po_buf_free(&v);
    }
    /* Two seals of one text differ (random nonces). */
    {
        po_buf a, b;
        po_buf_init(&a, PO_SEAL_VALUE_MAX, 0);
        po_buf_init(&b, PO_SEAL_VALUE_MAX, 0);
        assert_int_equal(po_seal(&k, "n", "p", "t", 1, &a, &err), PO_OK);
        assert_int_equal(po_seal(&k, "n", "p", "t", 1, &b, &err), PO_OK);
        assert_string_not_equal(a.data, b.data);
        po_buf_free(&a);
        po_buf_free(&b);
    }
    po_seal_key_clear(&k);
}

/* Every single-byte change of the decoded blob is refused. */
static void test_tampering(void **state)
{
    const size_t plen = strlen(PO_SEAL_PREFIX);
    po_seal_key k, other;
    po_buf v, t;
    po_err err;
    unsigned char *blob = NULL;
    char *plain = NULL;
    size_t n, i, len;

    (void)state;
    new_key("k2", &k);
    new_key("k3", &other);
    po_buf_init(&v, PO_SEAL_VALUE_MAX, 0);
    assert_int_equal(po_seal(&k, "name", "prof", "hello world", 11, &v, &err),
                     PO_OK);
    assert_int_equal(
        po_b64_decode(v.data + plen, v.len - plen, "t", &blob, &len, &err),
        PO_OK);
    for (i = 0; i < len; i++) {
        blob[i] ^= 0x01;
        po_buf_init(&t, PO_SEAL_VALUE_MAX, 0);
        assert_int_equal(po_buf_puts(&t, PO_SEAL_PREFIX), PO_OK);
        assert_int_equal(po_b64_append(&t, blob, len), PO_OK);
        assert_int_equal(
            po_unseal(&k, "name", "prof", t.data, t.len, &plain, &n, &err),
            PO_MALFORMED_RESPONSE);
        /* the first bytes are the key id */
        assert_non_null(strstr(err.msg, i < PO_SEAL_ID_LEN
                                            ? "sealed under another key"
                                            : "fails authentication"));
        assert_null(plain);
        po_buf_free(&t);
        blob[i] ^= 0x01;
    }
    /* Truncated: cut anywhere. */
    for (i = 0; i < v.len; i++) {
        po_rc rc = po_unseal(&k, "name", "prof", v.data, i, &plain, &n, &err);
        assert_int_equal(rc, PO_MALFORMED_RESPONSE);
        assert_null(plain);
    }
    assert_int_equal(
        po_unseal(&k, "name", "prof", v.data, plen + 8, &plain, &n, &err),
        PO_MALFORMED_RESPONSE);
    assert_non_null(strstr(err.msg, "truncated"));
    /* Another key: named as such, with both key ids. */
    assert_int_equal(
        po_unseal(&other, "name", "prof", v.data, v.len, &plain, &n, &err),
        PO_MALFORMED_RESPONSE);
    assert_non_null(strstr(err.msg, "sealed under another key (key id "));
    assert_non_null(strstr(err.msg, "shared_cache_key_file has key id "));
    /* Not ours at all. */
    assert_int_equal(
        po_unseal(&k, "name", "prof", "{\"a\":1}", 7, &plain, &n, &err),
        PO_MALFORMED_RESPONSE);
    assert_non_null(strstr(err.msg, "not a sealed pam-oauth value"));
    free(blob);
    po_buf_free(&v);
    po_seal_key_clear(&k);
    po_seal_key_clear(&other);
}

static void test_parse(void **state)
{
    static const struct {
        const char *in;
        po_rc rc;
        const char *msg;
    } cases[] = {
        {"", PO_MALFORMED_RESPONSE, "not a sealed pam-oauth value"},
        {"pam-oauth-sealed:2:AAAA", PO_MALFORMED_RESPONSE, "not a sealed"},
        {PO_SEAL_PREFIX, PO_MALFORMED_RESPONSE, "truncated"},
        {PO_SEAL_PREFIX "AAAA", PO_MALFORMED_RESPONSE, "truncated"},
        {PO_SEAL_PREFIX "AA=A", PO_MALFORMED_RESPONSE, "padding"},
        {PO_SEAL_PREFIX "AAAAA", PO_MALFORMED_RESPONSE, "truncated?"},
        {PO_SEAL_PREFIX "!!!!", PO_MALFORMED_RESPONSE, "invalid character"},
        {PO_SEAL_PREFIX "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 30 */
         PO_MALFORMED_RESPONSE, "truncated (30 bytes, at least 32"},
        {PO_SEAL_PREFIX "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", PO_OK,
         ""},
    };
    po_sealed s;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        po_err_clear(&err);
        po_rc rc = po_seal_parse(cases[i].in, strlen(cases[i].in), &s, &err);
        if (rc != cases[i].rc || strstr(err.msg, cases[i].msg) == NULL)
            fail_msg("'%s': %s (%s)", cases[i].in, po_rc_name(rc), err.msg);
        if (rc == PO_OK) {
            assert_int_equal(s.blob_len, 33);
            assert_int_equal(s.ciphertext_len, 1);
            assert_ptr_equal(s.tag, s.blob + 17);
            po_sealed_free(&s);
        } else {
            assert_null(s.blob);
        }
    }
}

static void test_key_files(void **state)
{
    unsigned char raw[PO_SEAL_KEY_LEN];
    char b64[64], *path = path_in("kf"), *link_path = path_in("kl");
    po_seal_key k, k2;
    po_buf b;
    po_err err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 7 + 1);
    /* raw bytes */
    write_file(path, raw, sizeof(raw), 0600);
    assert_int_equal(po_seal_key_load(path, &k, &err), PO_OK);
    assert_memory_equal(k.key, raw, sizeof(raw));
    /* the same key in base64, with or without a newline: the same id */
    po_buf_init(&b, 128, 0);
    assert_int_equal(po_b64_append(&b, raw, sizeof(raw)), PO_OK);
    (void)snprintf(b64, sizeof(b64), "%s\n", b.data);
    write_file(path, b64, strlen(b64), 0600);
    assert_int_equal(po_seal_key_load(path, &k2, &err), PO_OK);
    assert_memory_equal(k2.key, raw, sizeof(raw));
    assert_memory_equal(k2.id, k.id, PO_SEAL_ID_LEN);
    write_file(path, b.data, b.len, 0600);
    assert_int_equal(po_seal_key_load(path, &k2, &err), PO_OK);
    po_buf_free(&b);
    /* wrong lengths */
    write_file(path, raw, 31, 0600);
    assert_int_equal(po_seal_key_load(path, &k2, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "31 bytes; a key is 32 random bytes"));
    write_file(path, "not base64 at all, but 44 characters long!!", 44, 0600);
    assert_int_equal(po_seal_key_load(path, &k2, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "not 32 bytes in base64"));
    /* open to others, a symbolic link, missing, relative */
    write_file(path, raw, sizeof(raw), 0640);
    assert_int_equal(po_seal_key_load(path, &k2, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "mode 0640"));
    write_file(path, raw, sizeof(raw), 0600);
    (void)unlink(link_path);
    assert_int_equal(symlink(path, link_path), 0);
    assert_int_equal(po_seal_key_load(link_path, &k2, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(po_seal_key_load("/nonexistent/k", &k2, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "no such file"));
    assert_int_equal(po_seal_key_load("rel/k", &k2, &err), PO_CONFIG);
    /* no byte of the key in a message */
    assert_null(memmem(err.msg, strlen(err.msg), raw, 4));
    po_seal_key_clear(&k);
    po_seal_key_clear(&k2);
    free(path);
    free(link_path);
}

static void test_keygen(void **state)
{
    char *path = path_in("gen"), *link_path = path_in("genlink");
    char *missing = path_in("nodir/k");
    struct stat st;
    po_seal_key a, b;
    po_err err;

    (void)state;
    (void)unlink(path);
    assert_int_equal(po_seal_keygen(path, &err), PO_OK);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, PO_SEAL_KEY_LEN);
    assert_int_equal(po_seal_key_load(path, &a, &err), PO_OK);
    /* never replaced */
    assert_int_equal(po_seal_keygen(path, &err), PO_IO);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_int_equal(po_seal_key_load(path, &b, &err), PO_OK);
    assert_memory_equal(a.key, b.key, PO_SEAL_KEY_LEN);
    /* not even through a dangling link */
    (void)unlink(link_path);
    assert_int_equal(symlink("/tmp/po-test-seal-target-never", link_path), 0);
    assert_int_equal(po_seal_keygen(link_path, &err), PO_IO);
    assert_int_equal(access("/tmp/po-test-seal-target-never", F_OK), -1);
    /* no directory: nothing left behind */
    assert_int_equal(po_seal_keygen(missing, &err), PO_IO);
    assert_int_equal(po_seal_keygen("", &err), PO_USAGE);
    /* two keys differ */
    (void)unlink(path);
    assert_int_equal(po_seal_keygen(path, &err), PO_OK);
    assert_int_equal(po_seal_key_load(path, &b, &err), PO_OK);
    assert_memory_not_equal(a.key, b.key, PO_SEAL_KEY_LEN);
    po_seal_key_clear(&a);
    po_seal_key_clear(&b);
    free(path);
    free(link_path);
    free(missing);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_binding),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_keygen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
