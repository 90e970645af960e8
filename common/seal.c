/*
 * seal.c - AES-256-GCM sealing of shared-store values through a libcrypto
 * loaded with dlopen on first use.
 *
 * The only mutable static state is the table of libcrypto functions and
 * the status of loading it, written once inside pthread_once and
 * read-only afterwards (as http.c does for libcurl).
 */
#define _GNU_SOURCE
#include "seal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h> /* types and constants only: not linked */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "util.h"

#define CRYPTO_SONAME "libcrypto.so.3"
#define AAD_LABEL "pam-oauth seal v1"
#define ID_LABEL "pam-oauth key id v1"
#define KEY_FILE_MAX 4096
#define B64_KEY_LEN 44 /* padded base64 of 32 bytes */

/* ------------------------------------------------------------------ */
/* libcrypto, loaded once                                              */

static struct {
    EVP_CIPHER_CTX *(*ctx_new)(void);
    void (*ctx_free)(EVP_CIPHER_CTX *c);
    int (*ctx_ctrl)(EVP_CIPHER_CTX *c, int type, int arg, void *ptr);
    const EVP_CIPHER *(*aes_256_gcm)(void);
    int (*enc_init)(EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *e,
                    const unsigned char *key, const unsigned char *iv);
    int (*enc_update)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl,
                      const unsigned char *in, int inl);
    int (*enc_final)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl);
    int (*dec_init)(EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *e,
                    const unsigned char *key, const unsigned char *iv);
    int (*dec_update)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl,
                      const unsigned char *in, int inl);
    int (*dec_final)(EVP_CIPHER_CTX *c, unsigned char *out, int *outl);
    int (*digest)(const void *data, size_t count, unsigned char *md,
                  unsigned int *size, const EVP_MD *type, ENGINE *impl);
    const EVP_MD *(*sha256)(void);
} cr;
static po_rc crypto_load_rc = PO_CONFIG;
static char crypto_load_msg[256] = "libcrypto not loaded";
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_load(void)
{
    void *h;
    const char *e;

    h = dlopen(CRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        e = dlerror();
        (void)snprintf(crypto_load_msg, sizeof(crypto_load_msg),
                       "cannot load %s: %s", CRYPTO_SONAME,
                       e != NULL ? e : "unknown error");
        return;
    }
#define LOAD(field, sym)                                                       \
    do {                                                                       \
        *(void **)&cr.field = dlsym(h, sym);                                   \
        if (cr.field == NULL) {                                                \
            (void)snprintf(crypto_load_msg, sizeof(crypto_load_msg),           \
                           "%s: symbol %s not found", CRYPTO_SONAME, sym);     \
            return;                                                            \
        }                                                                      \
    } while (0)
    LOAD(ctx_new, "EVP_CIPHER_CTX_new");
    LOAD(ctx_free, "EVP_CIPHER_CTX_free");
    LOAD(ctx_ctrl, "EVP_CIPHER_CTX_ctrl");
    LOAD(aes_256_gcm, "EVP_aes_256_gcm");
    LOAD(enc_init, "EVP_EncryptInit_ex");
    LOAD(enc_update, "EVP_EncryptUpdate");
    LOAD(enc_final, "EVP_EncryptFinal_ex");
    LOAD(dec_init, "EVP_DecryptInit_ex");
    LOAD(dec_update, "EVP_DecryptUpdate");
    LOAD(dec_final, "EVP_DecryptFinal_ex");
    LOAD(digest, "EVP_Digest");
    LOAD(sha256, "EVP_sha256");
#undef LOAD
    crypto_load_msg[0] = '\0';
    crypto_load_rc = PO_OK;
}

static po_rc crypto_ready(po_err *err)
{
    if (pthread_once(&crypto_once, crypto_load) != 0)
        return po_fail(err, PO_CONFIG, "cannot initialise libcrypto");
    if (crypto_load_rc != PO_OK)
        return po_fail(err, crypto_load_rc, "%s", crypto_load_msg);
    return PO_OK;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

void po_seal_key_clear(po_seal_key *k)
{
    if (k != NULL)
        po_cleanse(k, sizeof(*k));
}

void po_seal_id_hex(const unsigned char id[PO_SEAL_ID_LEN], char out[9])
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < PO_SEAL_ID_LEN; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * PO_SEAL_ID_LEN] = '\0';
}

po_rc po_seal_key_parse(const char *path, const unsigned char *data, size_t n,
                        po_seal_key *out, po_err *err)
{
    po_rc rc = PO_OK;
    unsigned char *raw = NULL;
    size_t len = 0;
    po_err e;

    memset(out, 0, sizeof(*out));
    if (n == PO_SEAL_KEY_LEN) {
        memcpy(out->key, data, PO_SEAL_KEY_LEN);
        goto out;
    }
    if (n == B64_KEY_LEN + 1 && data[B64_KEY_LEN] == '\n')
        n--;
    if (n != B64_KEY_LEN) {
        rc = po_fail(err, PO_CONFIG,
                     "shared_cache_key_file %s: %zu bytes; a key is %d random "
                     "bytes (or their base64, %d characters); create one "
                     "with 'oauth-token fleet-key FILE'",
                     path, n, PO_SEAL_KEY_LEN, B64_KEY_LEN);
        goto out;
    }
    if ((rc = po_b64_decode((const char *)data, n, "key", &raw, &len, &e)) !=
            PO_OK ||
        len != PO_SEAL_KEY_LEN) {
        rc = po_fail(err, rc == PO_NOMEM ? PO_NOMEM : PO_CONFIG,
                     "shared_cache_key_file %s: not %d bytes in base64 (%s)",
                     path, PO_SEAL_KEY_LEN,
                     rc != PO_OK ? e.msg : "wrong length");
        goto out;
    }
    memcpy(out->key, raw, PO_SEAL_KEY_LEN);
out:
    if (raw != NULL) {
        po_cleanse(raw, len);
        free(raw);
    }
    if (rc != PO_OK)
        po_seal_key_clear(out);
    return rc;
}

po_rc po_seal_key_load(const char *path, po_seal_key *out, po_err *err)
{
    po_rc rc = PO_OK;
    unsigned char md[EVP_MAX_MD_SIZE], in[sizeof(ID_LABEL) + PO_SEAL_KEY_LEN];
    unsigned int mdlen = 0;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    po_err e;

    memset(out, 0, sizeof(*out));
    if (path == NULL || path[0] != '/') {
        rc = po_fail(err, PO_CONFIG,
                     "shared_cache_key_file must be an absolute path");
        goto out;
    }
    if ((rc = po_read_file(path, KEY_FILE_MAX, 1, &buf, &len, &st, &e)) !=
        PO_OK) {
        rc = po_fail(err, rc == PO_NOMEM ? PO_NOMEM : PO_CONFIG,
                     "shared_cache_key_file: %s", e.msg);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        rc = po_fail(err, PO_CONFIG,
                     "shared_cache_key_file %s is owned by uid %lu, not by "
                     "uid %lu or root; refused",
                     path, (unsigned long)st.st_uid, (unsigned long)geteuid());
        goto out;
    }
    if (st.st_mode & 077) {
        rc = po_fail(err, PO_CONFIG,
                     "shared_cache_key_file %s is open to group or others "
                     "(mode %04o); run chmod 600 %s",
                     path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if ((rc = po_seal_key_parse(path, (const unsigned char *)buf, len, out,
                                err)) != PO_OK ||
        (rc = crypto_ready(err)) != PO_OK)
        goto out;
    memcpy(in, ID_LABEL, sizeof(ID_LABEL)); /* with its NUL */
    memcpy(in + sizeof(ID_LABEL), out->key, PO_SEAL_KEY_LEN);
    if (cr.digest(in, sizeof(in), md, &mdlen, cr.sha256(), NULL) != 1 ||
        mdlen < PO_SEAL_ID_LEN) {
        rc = po_fail(err, PO_CONFIG, "SHA-256 failed in libcrypto");
        goto out;
    }
    memcpy(out->id, md, PO_SEAL_ID_LEN);
out:
    po_cleanse(in, sizeof(in));
    po_cleanse(md, sizeof(md));
    if (buf != NULL) {
        po_cleanse(buf, len);
        free(buf);
    }
    if (rc != PO_OK)
        po_seal_key_clear(out);
    return rc;
}

/* path's directory (malloc'd) and the file name within it. */
static po_rc split_path(const char *path, char **dir, const char **base,
                        po_err *err)
{
    const char *slash = strrchr(path, '/');

    *dir = NULL;
    if (slash == NULL) {
        *dir = po_strdup(".");
        *base = path;
    } else {
        *dir = po_strndup(path, slash == path ? 1 : (size_t)(slash - path));
        *base = slash + 1;
    }
    if (*dir == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    if (**base == '\0' || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
        return po_fail(err, PO_USAGE, "%s: not a file name", path);
    return PO_OK;
}

po_rc po_seal_keygen(const char *path, po_err *err)
{
    po_rc rc = PO_OK;
    unsigned char key[PO_SEAL_KEY_LEN];
    char tmp[NAME_MAX + 1];
    struct stat st;
    const char *base;
    char *dir = NULL;
    int dfd = -1, fd = -1, created = 0;
    ssize_t got;
    size_t have = 0;

    if (path == NULL || path[0] == '\0') {
        rc = po_fail(err, PO_USAGE, "no file name for the key");
        goto out;
    }
    if ((rc = split_path(path, &dir, &base, err)) != PO_OK)
        goto out;
    if (strlen(base) + 16 > NAME_MAX) {
        rc = po_fail(err, PO_USAGE, "%s: file name too long", path);
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot open directory %s: %s", path, dir,
                     strerror(errno));
        goto out;
    }
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        rc = po_fail(err, PO_IO,
                     "%s already exists; refusing to replace a key "
                     "(remove it first if you really mean to)",
                     path);
        goto out;
    }
    while (have < sizeof(key)) {
        got = getrandom(key + have, sizeof(key) - have, 0);
        if (got == -1 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = po_fail(err, PO_IO, "getrandom failed: %s", strerror(errno));
            goto out;
        }
        have += (size_t)got;
    }
    (void)snprintf(tmp, sizeof(tmp), ".%s.%lu.tmp", base,
                   (unsigned long)getpid());
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot create %s/%s: %s", path, dir, tmp,
                     strerror(errno));
        goto out;
    }
    created = 1;
    if (fchmod(fd, 0600) == -1 || po_write_all(fd, key, sizeof(key)) == -1 ||
        fsync(fd) == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot write %s/%s: %s", path, dir, tmp,
                     strerror(errno));
        goto out;
    }
    if (close(fd) == -1) {
        fd = -1;
        rc = po_fail(err, PO_IO, "%s: cannot write %s/%s: %s", path, dir, tmp,
                     strerror(errno));
        goto out;
    }
    fd = -1;
    /* link(2) never replaces: the key appears whole, or not at all. */
    if (linkat(dfd, tmp, dfd, base, 0) == -1) {
        rc = po_fail(err, PO_IO, "%s: %s", path,
                     errno == EEXIST ? "already exists; refusing to replace a "
                                       "key"
                                     : strerror(errno));
        goto out;
    }
    if (fsync(dfd) == -1 && errno != EINVAL) {
        rc = po_fail(err, PO_IO, "%s: cannot sync directory %s: %s", path, dir,
                     strerror(errno));
        goto out;
    }
out:
    po_cleanse(key, sizeof(key));
    if (fd != -1)
        close(fd);
    if (created)
        (void)unlinkat(dfd, tmp, 0);
    if (dfd != -1)
        close(dfd);
    free(dir);
    return rc;
}

/* ------------------------------------------------------------------ */
/* values                                                              */

void po_sealed_free(po_sealed *s)
{
    if (s == NULL)
        return;
    free(s->blob);
    memset(s, 0, sizeof(*s));
}

po_rc po_seal_parse(const char *value, size_t n, po_sealed *out, po_err *err)
{
    const size_t plen = sizeof(PO_SEAL_PREFIX) - 1;
    const size_t fixed = PO_SEAL_ID_LEN + PO_SEAL_NONCE_LEN + PO_SEAL_TAG_LEN;
    po_err e;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    if (n < plen || memcmp(value, PO_SEAL_PREFIX, plen) != 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "not a sealed pam-oauth value (%zu bytes without the "
                       "\"" PO_SEAL_PREFIX "\" prefix)",
                       n);
    if (n > PO_SEAL_VALUE_MAX)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "sealed value larger than %d bytes", PO_SEAL_VALUE_MAX);
    if ((rc = po_b64_decode(value + plen, n - plen, "sealed value", &out->blob,
                            &out->blob_len, &e)) != PO_OK) {
        /* Cut short at a multiple of 4 decodes fine and fails the length
         * check below; anything else names the offset. */
        return po_fail(err, rc == PO_NOMEM ? PO_NOMEM : PO_MALFORMED_RESPONSE,
                       "%s%s", e.msg,
                       (n - plen) % 4 != 0 ? " (truncated?)" : "");
    }
    if (out->blob_len < fixed) {
        size_t got = out->blob_len;
        po_sealed_free(out);
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "sealed value truncated (%zu bytes, at least %zu "
                       "needed)",
                       got, fixed);
    }
    out->id = out->blob;
    out->nonce = out->id + PO_SEAL_ID_LEN;
    out->ciphertext = out->nonce + PO_SEAL_NONCE_LEN;
    out->ciphertext_len = out->blob_len - fixed;
    out->tag = out->ciphertext + out->ciphertext_len;
    return PO_OK;
}

/* label NUL name NUL profile, into a new buffer. */
static po_rc make_aad(const char *name, const char *profile,
                      unsigned char **aad, size_t *len, po_err *err)
{
    size_t a = sizeof(AAD_LABEL), b = strlen(name) + 1, c = strlen(profile);

    *len = a + b + c;
    if ((*aad = malloc(*len)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    memcpy(*aad, AAD_LABEL, a);
    memcpy(*aad + a, name, b);
    memcpy(*aad + a + b, profile, c);
    return PO_OK;
}

po_rc po_seal(const po_seal_key *k, const char *name, const char *profile,
              const void *plain, size_t n, po_buf *out, po_err *err)
{
    po_rc rc = PO_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *blob = NULL, *aad = NULL;
    size_t aad_len = 0, blob_len, have = 0;
    int len = 0, fin = 0;
    ssize_t got;

    blob_len = PO_SEAL_ID_LEN + PO_SEAL_NONCE_LEN + n + PO_SEAL_TAG_LEN;
    if (n > PO_SEAL_VALUE_MAX / 4 * 3 - 64) {
        rc = po_fail(err, PO_TOO_LARGE, "%s: value too large to seal", name);
        goto out;
    }
    if ((rc = crypto_ready(err)) != PO_OK ||
        (rc = make_aad(name, profile, &aad, &aad_len, err)) != PO_OK)
        goto out;
    if ((blob = malloc(blob_len)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    memcpy(blob, k->id, PO_SEAL_ID_LEN);
    while (have < PO_SEAL_NONCE_LEN) {
        got = getrandom(blob + PO_SEAL_ID_LEN + have, PO_SEAL_NONCE_LEN - have,
                        0);
        if (got == -1 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = po_fail(err, PO_IO, "getrandom failed: %s", strerror(errno));
            goto out;
        }
        have += (size_t)got;
    }
    if ((ctx = cr.ctx_new()) == NULL ||
        cr.enc_init(ctx, cr.aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        cr.ctx_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, PO_SEAL_NONCE_LEN, NULL) !=
            1 ||
        cr.enc_init(ctx, NULL, NULL, k->key, blob + PO_SEAL_ID_LEN) != 1 ||
        cr.enc_update(ctx, NULL, &len, aad, (int)aad_len) != 1 ||
        (n > 0 && cr.enc_update(ctx, blob + PO_SEAL_ID_LEN + PO_SEAL_NONCE_LEN,
                                &len, plain, (int)n) != 1) ||
        cr.enc_final(ctx, blob + PO_SEAL_ID_LEN + PO_SEAL_NONCE_LEN + n,
                     &fin) != 1 ||
        cr.ctx_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, PO_SEAL_TAG_LEN,
                    blob + blob_len - PO_SEAL_TAG_LEN) != 1) {
        rc = po_fail(err, PO_CONFIG, "%s: AES-256-GCM failed in libcrypto",
                     name);
        goto out;
    }
    if ((rc = po_buf_puts(out, PO_SEAL_PREFIX)) != PO_OK ||
        (rc = po_b64_append(out, blob, blob_len)) != PO_OK) {
        rc = po_fail(err, rc, "%s: sealed value too large", name);
        goto out;
    }
out:
    if (ctx != NULL)
        cr.ctx_free(ctx);
    free(blob); /* ciphertext only */
    free(aad);
    return rc;
}

po_rc po_unseal(const po_seal_key *k, const char *name, const char *profile,
                const char *value, size_t n, char **plain, size_t *plain_len,
                po_err *err)
{
    po_rc rc = PO_OK;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *aad = NULL, tag[PO_SEAL_TAG_LEN];
    size_t aad_len = 0;
    po_sealed s;
    char *buf = NULL, theirs[9], ours[9];
    int len = 0, fin = 0;

    *plain = NULL;
    *plain_len = 0;
    memset(&s, 0, sizeof(s));
    if ((rc = po_seal_parse(value, n, &s, err)) != PO_OK)
        goto out;
    if (memcmp(s.id, k->id, PO_SEAL_ID_LEN) != 0) {
        po_seal_id_hex(s.id, theirs);
        po_seal_id_hex(k->id, ours);
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "sealed under another key (key id %s; "
                     "shared_cache_key_file has key id %s)",
                     theirs, ours);
        goto out;
    }
    if ((rc = crypto_ready(err)) != PO_OK ||
        (rc = make_aad(name, profile, &aad, &aad_len, err)) != PO_OK)
        goto out;
    if ((buf = malloc(s.ciphertext_len + 1)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    memcpy(tag, s.tag, sizeof(tag));
    if ((ctx = cr.ctx_new()) == NULL ||
        cr.dec_init(ctx, cr.aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        cr.ctx_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, PO_SEAL_NONCE_LEN, NULL) !=
            1 ||
        cr.dec_init(ctx, NULL, NULL, k->key, s.nonce) != 1 ||
        cr.dec_update(ctx, NULL, &len, aad, (int)aad_len) != 1 ||
        (s.ciphertext_len > 0 &&
         cr.dec_update(ctx, (unsigned char *)buf, &len, s.ciphertext,
                       (int)s.ciphertext_len) != 1) ||
        cr.ctx_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, PO_SEAL_TAG_LEN, tag) != 1) {
        rc = po_fail(err, PO_CONFIG, "%s: AES-256-GCM failed in libcrypto",
                     name);
        goto out;
    }
    if (cr.dec_final(ctx, (unsigned char *)buf + s.ciphertext_len, &fin) != 1) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "fails authentication (tampered with, or sealed for "
                     "another key name or profile)");
        goto out;
    }
    buf[s.ciphertext_len] = '\0';
    *plain = buf;
    *plain_len = s.ciphertext_len;
    buf = NULL;
out:
    if (ctx != NULL)
        cr.ctx_free(ctx);
    if (buf != NULL) {
        po_cleanse(buf, s.ciphertext_len + 1);
        free(buf);
    }
    free(aad);
    po_sealed_free(&s);
    return rc;
}
