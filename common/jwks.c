/* jwks.c - JWK Sets: OpenSSL keys from JWKs, discovery, fetching and the
 * memory and disk caches. */
#define _GNU_SOURCE
#include "jwks.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "b64.h"
#include "discovery.h"
#include "http.h"
#include "secret.h"
#include "util.h"

#define URL_SHOWN_MAX 512
#define CACHE_VERSION 1

/* ------------------------------------------------------------------ */
/* keys                                                                */

void po_jwk_free(po_jwk *k)
{
    if (k == NULL)
        return;
    free(k->kid);
    free(k->kty);
    free(k->crv);
    free(k->alg);
    free(k->use);
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

void po_jwks_free(po_jwks *ks)
{
    size_t i;

    if (ks == NULL)
        return;
    for (i = 0; i < ks->n; i++)
        po_jwk_free(&ks->keys[i]);
    free(ks->keys);
    ks->keys = NULL;
    ks->n = 0;
}

/* A printable copy of s for messages. */
static void shown(const char *s, char *out, size_t n)
{
    size_t i;

    for (i = 0; s != NULL && s[i] != '\0' && i + 1 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
}

static po_rc opt_string(struct json_object *o, const char *name,
                        const char *kid, char **out, po_err *err)
{
    struct json_object *v;

    *out = NULL;
    if (!json_object_object_get_ex(o, name, &v) || v == NULL)
        return PO_OK;
    if (!json_object_is_type(v, json_type_string))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "JWK kid \"%s\": \"%s\" is not a string", kid, name);
    if ((*out = strdup(json_object_get_string(v))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

/* A base64url member of a JWK, decoded; want > 0 requires that size. */
static po_rc member_bytes(struct json_object *o, const char *name,
                          const char *kid, size_t want, unsigned char **out,
                          size_t *len, po_err *err)
{
    struct json_object *v;
    const char *s;
    char what[128];
    po_rc rc;
    po_err e;

    *out = NULL;
    if (!json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "JWK kid \"%s\": no \"%s\" string", kid, name);
    s = json_object_get_string(v);
    (void)snprintf(what, sizeof(what), "JWK kid \"%s\" member \"%s\"", kid,
                   name);
    po_err_clear(&e);
    rc = po_b64url_decode(s, (size_t)json_object_get_string_len(v), what, out,
                          len, &e);
    if (rc != PO_OK)
        return po_fail(err, rc == PO_NOMEM ? rc : PO_MALFORMED_RESPONSE, "%s",
                       e.msg);
    if (*len == 0 || (want > 0 && *len != want)) {
        free(*out);
        *out = NULL;
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "JWK kid \"%s\": \"%s\" has %zu bytes, expected %zu",
                       kid, name, *len, want);
    }
    return PO_OK;
}

/* EVP_PKEY_fromdata for a public key of type name from params. */
static po_rc pkey_fromdata(const char *name, OSSL_PARAM *params,
                           const char *kid, EVP_PKEY **out, po_err *err)
{
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    po_rc rc = PO_OK;

    *out = NULL;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1) {
        rc = po_fail(err, PO_NOMEM, "cannot create a %s key", name);
        goto out;
    }
    po_oom_reset();
    if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
        *out == NULL) {
        rc = po_out_of_memory()
                 ? po_fail(err, PO_NOMEM, "JWK kid \"%s\": out of memory", kid)
                 : po_fail(err, PO_MALFORMED_RESPONSE,
                           "JWK kid \"%s\": not a valid %s public key", kid,
                           name);
        goto out;
    }
    if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL)) == NULL ||
        EVP_PKEY_public_check(check) != 1) {
        rc = po_out_of_memory()
                 ? po_fail(err, PO_NOMEM, "JWK kid \"%s\": out of memory", kid)
                 : po_fail(err, PO_MALFORMED_RESPONSE,
                           "JWK kid \"%s\": the %s public key fails its "
                           "checks",
                           kid, name);
        goto out;
    }
    if (po_out_of_memory()) {
        /* OpenSSL carried on past a failed allocation: the key may be
         * incomplete (a size of 0) */
        rc = po_fail(err, PO_NOMEM, "JWK kid \"%s\": out of memory", kid);
        goto out;
    }
out:
    if (rc != PO_OK) {
        EVP_PKEY_free(*out);
        *out = NULL;
    }
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

static po_rc rsa_key(struct json_object *o, const char *kid, EVP_PKEY **out,
                     po_err *err)
{
    unsigned char *nb = NULL, *eb = NULL;
    size_t nl = 0, el = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    po_rc rc;

    if ((rc = member_bytes(o, "n", kid, 0, &nb, &nl, err)) != PO_OK ||
        (rc = member_bytes(o, "e", kid, 0, &eb, &el, err)) != PO_OK)
        goto out;
    if (nl > 2048 || el > 16) {
        rc = po_fail(err, PO_NOT_FOUND, "JWK kid \"%s\": RSA key too large",
                     kid);
        goto out;
    }
    if ((n = BN_bin2bn(nb, (int)nl, NULL)) == NULL ||
        (e = BN_bin2bn(eb, (int)el, NULL)) == NULL ||
        (bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if (BN_num_bits(n) < PO_RSA_BITS_MIN) {
        rc = po_fail(err, PO_NOT_FOUND,
                     "JWK kid \"%s\": RSA key of %d bits, at least %d "
                     "needed",
                     kid, BN_num_bits(n), PO_RSA_BITS_MIN);
        goto out;
    }
    rc = pkey_fromdata("RSA", params, kid, out, err);
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return rc;
}

static po_rc ec_key(struct json_object *o, const char *kid, const char *crv,
                    EVP_PKEY **out, po_err *err)
{
    unsigned char *x = NULL, *y = NULL, pub[1 + 2 * 48];
    size_t xl = 0, yl = 0, size;
    const char *group;
    OSSL_PARAM params[3];
    po_rc rc;

    if (strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        size = 32;
    } else if (strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        size = 48;
    } else {
        return po_fail(err, PO_NOT_FOUND, "JWK kid \"%s\": curve not used",
                       kid);
    }
    if ((rc = member_bytes(o, "x", kid, size, &x, &xl, err)) != PO_OK ||
        (rc = member_bytes(o, "y", kid, size, &y, &yl, err)) != PO_OK)
        goto out;
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, size);
    memcpy(pub + 1 + size, y, size);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)(uintptr_t)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                  1 + 2 * size);
    params[2] = OSSL_PARAM_construct_end();
    rc = pkey_fromdata("EC", params, kid, out, err);
out:
    free(x);
    free(y);
    return rc;
}

static po_rc okp_key(struct json_object *o, const char *kid, const char *crv,
                     EVP_PKEY **out, po_err *err)
{
    unsigned char *x = NULL;
    size_t xl = 0;
    OSSL_PARAM params[2];
    po_rc rc;

    if (strcmp(crv, "Ed25519") != 0)
        return po_fail(err, PO_NOT_FOUND, "JWK kid \"%s\": curve not used",
                       kid);
    if ((rc = member_bytes(o, "x", kid, 32, &x, &xl, err)) != PO_OK)
        goto out;
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, x, xl);
    params[1] = OSSL_PARAM_construct_end();
    rc = pkey_fromdata("ED25519", params, kid, out, err);
out:
    free(x);
    return rc;
}

po_rc po_jwk_from_json(struct json_object *obj, po_jwk *out, po_err *err)
{
    char kid[80];
    po_rc rc = PO_OK;
    po_jwk k;

    memset(&k, 0, sizeof(k));
    memset(out, 0, sizeof(*out));
    if (!json_object_is_type(obj, json_type_object)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "JWK: not an object");
        goto out;
    }
    if ((rc = opt_string(obj, "kid", "?", &k.kid, err)) != PO_OK)
        goto out;
    shown(k.kid != NULL ? k.kid : "(none)", kid, sizeof(kid));
    if ((rc = opt_string(obj, "kty", kid, &k.kty, err)) != PO_OK ||
        (rc = opt_string(obj, "crv", kid, &k.crv, err)) != PO_OK ||
        (rc = opt_string(obj, "alg", kid, &k.alg, err)) != PO_OK ||
        (rc = opt_string(obj, "use", kid, &k.use, err)) != PO_OK)
        goto out;
    if (k.kty == NULL) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE, "JWK kid \"%s\": no kty", kid);
        goto out;
    }
    if (strcmp(k.kty, "RSA") == 0) {
        rc = rsa_key(obj, kid, &k.pkey, err);
    } else if (strcmp(k.kty, "EC") == 0 && k.crv != NULL) {
        rc = ec_key(obj, kid, k.crv, &k.pkey, err);
    } else if (strcmp(k.kty, "OKP") == 0 && k.crv != NULL) {
        rc = okp_key(obj, kid, k.crv, &k.pkey, err);
    } else {
        /* oct (shared secrets) and everything else: never used. */
        rc = po_fail(err, PO_NOT_FOUND, "JWK kid \"%s\": key type not used",
                     kid);
    }
    if (rc != PO_OK)
        goto out;
    *out = k;
    memset(&k, 0, sizeof(k));
out:
    po_jwk_free(&k);
    return rc;
}

po_rc po_jwks_parse(const char *text, size_t len, po_jwks *out, size_t *skipped,
                    po_err *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL, *arr;
    size_t i, n, skip = 0;
    po_rc rc = PO_OK, krc;
    po_jwks ks = {NULL, 0};
    po_err e;

    out->keys = NULL;
    out->n = 0;
    if (len > INT_MAX || (tok = json_tokener_new_ex(16)) == NULL) {
        rc = po_fail(err, len > INT_MAX ? PO_MALFORMED_RESPONSE : PO_NOMEM,
                     "key set: cannot parse");
        goto out;
    }
    po_oom_reset();
    root = json_tokener_parse_ex(tok, text, (int)len);
    if (po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "key set: out of memory");
        goto out;
    }
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "keys", &arr) ||
        !json_object_is_type(arr, json_type_array)) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "key set: not a JSON object with a \"keys\" array");
        goto out;
    }
    n = json_object_array_length(arr);
    if ((ks.keys = calloc(n < PO_JWKS_KEYS_MAX ? n + 1 : PO_JWKS_KEYS_MAX,
                          sizeof(*ks.keys))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (ks.n >= PO_JWKS_KEYS_MAX) {
            skip += n - i;
            break;
        }
        krc = po_jwk_from_json(json_object_array_get_idx(arr, i),
                               &ks.keys[ks.n], &e);
        if (krc == PO_NOMEM) {
            rc = po_fail(err, PO_NOMEM, "out of memory");
            goto out;
        }
        if (krc != PO_OK) {
            skip++;
            continue;
        }
        ks.n++;
    }
    *out = ks;
    ks.keys = NULL;
    ks.n = 0;
    if (skipped != NULL)
        *skipped = skip;
out:
    po_jwks_free(&ks);
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

long po_jwks_max_age(const char *cc)
{
    const char *p = cc;
    long age = -1;

    if (cc == NULL || cc[0] == '\0')
        return PO_JWKS_TTL_DEFAULT;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, "max-age", 7) == 0 && p[7] == '=') {
            const char *d = p + 8;
            long v = 0;

            if (*d == '"')
                d++;
            if (*d < '0' || *d > '9') {
                age = 0;
            } else {
                for (; *d >= '0' && *d <= '9'; d++)
                    if (v < PO_JWKS_TTL_MAX)
                        v = v * 10 + (*d - '0');
                age = v;
            }
        } else if (strncasecmp(p, "no-store", 8) == 0 ||
                   strncasecmp(p, "no-cache", 8) == 0) {
            /* Bounded below: see jwks.h. */
            age = 0;
            break;
        }
        while (*p != '\0' && *p != ',')
            p++;
    }
    if (age < 0)
        return PO_JWKS_TTL_DEFAULT;
    if (age < PO_JWKS_TTL_MIN)
        return PO_JWKS_TTL_MIN;
    return age > PO_JWKS_TTL_MAX ? PO_JWKS_TTL_MAX : age;
}

/* ------------------------------------------------------------------ */
/* the disk cache                                                      */

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* issuer "\n" jwks_uri: what identifies a key source. */
static po_rc source_id(const po_jwks_source *src, char **out, po_err *err)
{
    po_buf b;
    po_rc rc;

    po_buf_init(&b, 16384, 0);
    if ((rc = po_buf_printf(&b, "%s\n%s", str_or_empty(src->issuer),
                            str_or_empty(src->jwks_uri))) != PO_OK ||
        (rc = po_buf_detach(&b, out)) != PO_OK) {
        po_buf_free(&b);
        return po_fail(err, rc, "issuer or jwks_uri too long");
    }
    return PO_OK;
}

po_rc po_jwks_cache_file(const po_jwks_source *src, char **out, po_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char hex[33], *id = NULL;
    po_buf b;
    po_rc rc;

    *out = NULL;
    po_buf_init(&b, 8192, 0);
    if (src->cache_dir == NULL)
        return po_fail(err, PO_USAGE, "no cache directory");
    if ((rc = source_id(src, &id, err)) != PO_OK)
        goto out;
    if (EVP_Digest(id, strlen(id), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen < 16) {
        rc = po_fail(err, PO_NOMEM, "SHA-256 failed");
        goto out;
    }
    for (i = 0; i < 16; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if ((rc = po_buf_printf(&b, "%s/jwks-%s.json", src->cache_dir, hex)) !=
            PO_OK ||
        (rc = po_buf_detach(&b, out)) != PO_OK) {
        rc = po_fail(err, rc, "%s: path too long", src->cache_dir);
        goto out;
    }
out:
    ERR_clear_error();
    po_buf_free(&b);
    free(id);
    return rc;
}

po_rc po_jwks_ensure_dir(const char *dir, po_err *err)
{
    struct stat st;
    char *copy = NULL, *slash;
    po_rc rc = PO_OK;

    if (dir == NULL || dir[0] != '/')
        return po_fail(err, PO_CONFIG,
                       "key cache directory \"%s\": not an absolute path",
                       dir != NULL ? dir : "");
    if (lstat(dir, &st) == -1 && errno == ENOENT) {
        if ((copy = strdup(dir)) == NULL)
            return po_fail(err, PO_NOMEM, "out of memory");
        for (slash = strchr(copy + 1, '/'); slash != NULL;
             slash = strchr(slash + 1, '/')) {
            *slash = '\0';
            if (mkdir(copy, 0700) == -1 && errno != EEXIST) {
                rc = po_fail(err, PO_IO, "%s: cannot create: %s", copy,
                             strerror(errno));
                goto out;
            }
            *slash = '/';
        }
        if (mkdir(copy, 0700) == -1 && errno != EEXIST) {
            rc = po_fail(err, PO_IO, "%s: cannot create: %s", dir,
                         strerror(errno));
            goto out;
        }
    }
    if (lstat(dir, &st) == -1) {
        rc = po_fail(err, PO_IO, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (S_ISLNK(st.st_mode)) {
        rc = po_fail(err, PO_IO, "%s: is a symbolic link, refused", dir);
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = po_fail(err, PO_IO, "%s: not a directory", dir);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc =
            po_fail(err, PO_IO, "%s: owned by uid %lu, not by uid %lu, refused",
                    dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
        goto out;
    }
    if ((st.st_mode & 022) != 0) {
        rc = po_fail(err, PO_IO,
                     "%s: writable by group or others, refused (chmod "
                     "0700)",
                     dir);
        goto out;
    }
out:
    free(copy);
    return rc;
}

/* What a disk cache file holds. */
typedef struct disk_state {
    int valid;  /* a usable file for this source was read  */
    char *jwks; /* the key set text                         */
    int64_t fetched_at;
    int64_t expires_at;
    int64_t refetch_at;
} disk_state;

static void disk_state_free(disk_state *d)
{
    free(d->jwks);
    memset(d, 0, sizeof(*d));
}

static int64_t get_i64(struct json_object *o, const char *name)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_int))
        return 0;
    return json_object_get_int64(v);
}

/* Read the disk file of src.  Anything unusable is logged and left out
 * (d->valid 0); only running out of memory is an error. */
static po_rc disk_read(const po_jwks_source *src, const char *path,
                       disk_state *d, po_err *err)
{
    struct json_object *root = NULL, *v;
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    po_rc rc = PO_OK, r;
    po_err e;

    memset(d, 0, sizeof(*d));
    po_err_clear(&e);
    r = po_read_file(path, PO_JWKS_FILE_MAX, 0, &text, &len, &st, &e);
    if (r == PO_NOT_FOUND)
        goto out;
    if (r == PO_NOMEM) {
        rc = po_fail(err, r, "%s", e.msg);
        goto out;
    }
    if (r != PO_OK) {
        po_logf(src->log, LOG_WARNING, "key cache %s ignored: %s", path, e.msg);
        goto out;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        po_logf(src->log, LOG_WARNING,
                "key cache %s ignored: owned by uid %lu or writable by "
                "others",
                path, (unsigned long)st.st_uid);
        goto out;
    }
    po_oom_reset();
    root = json_tokener_parse(text);
    if (po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "key cache %s: out of memory", path);
        goto out;
    }
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        get_i64(root, "version") != CACHE_VERSION) {
        po_logf(src->log, LOG_WARNING, "key cache %s ignored: corrupt", path);
        goto out;
    }
    if (!json_object_object_get_ex(root, "issuer", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), str_or_empty(src->issuer)) != 0 ||
        !json_object_object_get_ex(root, "source_jwks_uri", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), str_or_empty(src->jwks_uri)) != 0) {
        po_logf(src->log, LOG_WARNING,
                "key cache %s ignored: for another issuer", path);
        goto out;
    }
    d->fetched_at = get_i64(root, "fetched_at");
    d->expires_at = get_i64(root, "expires_at");
    d->refetch_at = get_i64(root, "refetch_at");
    if (json_object_object_get_ex(root, "jwks", &v) &&
        json_object_is_type(v, json_type_string) &&
        (d->jwks = strdup(json_object_get_string(v))) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    d->valid = 1;
out:
    if (root != NULL)
        json_object_put(root);
    free(text);
    if (rc != PO_OK)
        disk_state_free(d);
    return rc;
}

static po_rc write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return PO_IO;
        p += w;
        n -= (size_t)w;
    }
    return PO_OK;
}

/* Write d as src's disk file: temp file (O_EXCL|O_NOFOLLOW, 0600), fsync,
 * rename, fsync of the directory. */
static po_rc disk_write(const po_jwks_source *src, const char *path,
                        const disk_state *d, po_err *err)
{
    struct json_object *root = NULL;
    const char *text;
    unsigned char rnd[8];
    char *tmp = NULL;
    size_t plen = strlen(path);
    int fd = -1, dfd = -1, tries;
    po_rc rc = PO_OK;

    if ((root = json_object_new_object()) == NULL ||
        json_object_object_add(root, "version",
                               json_object_new_int(CACHE_VERSION)) != 0 ||
        json_object_object_add(
            root, "issuer",
            json_object_new_string(str_or_empty(src->issuer))) != 0 ||
        json_object_object_add(
            root, "source_jwks_uri",
            json_object_new_string(str_or_empty(src->jwks_uri))) != 0 ||
        json_object_object_add(root, "fetched_at",
                               json_object_new_int64(d->fetched_at)) != 0 ||
        json_object_object_add(root, "expires_at",
                               json_object_new_int64(d->expires_at)) != 0 ||
        json_object_object_add(root, "refetch_at",
                               json_object_new_int64(d->refetch_at)) != 0 ||
        json_object_object_add(
            root, "jwks", json_object_new_string(str_or_empty(d->jwks))) != 0 ||
        (text = json_object_to_json_string_ext(
             root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) ==
            NULL ||
        (tmp = malloc(plen + 32)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (tries = 0; tries < 16; tries++) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            memset(rnd, tries, sizeof(rnd));
        (void)snprintf(tmp, plen + 32, "%s.%02x%02x%02x%02x%02x%02x.tmp", path,
                       rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
        if (fd != -1 || errno != EEXIST)
            break;
    }
    if (fd == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) == -1 || write_all(fd, text, strlen(text)) != PO_OK ||
        fsync(fd) == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) == -1) {
        fd = -1;
        rc = po_fail(err, PO_IO, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot rename into place: %s", path,
                     strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    if ((dfd = open(src->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1)
        (void)fsync(dfd);
out:
    if (fd != -1)
        close(fd);
    if (dfd != -1)
        close(dfd);
    if (tmp != NULL && tmp[0] != '\0' && rc != PO_OK)
        (void)unlink(tmp);
    free(tmp);
    if (root != NULL)
        json_object_put(root);
    return rc;
}

/* An exclusive lock on the source's lock file, bounded in time. */
static po_rc disk_lock(const char *path, int *fdp, po_err *err)
{
    char *lock = NULL;
    size_t n = strlen(path);
    struct stat st;
    long waited = 0;
    int fd = -1;
    po_rc rc = PO_OK;

    *fdp = -1;
    if (n < 5 || (lock = malloc(n + 1)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    memcpy(lock, path, n - 5);
    memcpy(lock + n - 5, ".lock", 6); /* "....json" -> "....lock" */
    fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd == -1 || fstat(fd, &st) == -1) {
        rc = po_fail(err, PO_IO, "%s: cannot open: %s", lock, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        rc = po_fail(err, PO_IO, "%s: not a regular file of uid %lu", lock,
                     (unsigned long)geteuid());
        goto out;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = po_fail(err, PO_IO, "%s: cannot lock: %s", lock,
                         strerror(errno));
            goto out;
        }
        if (waited >= PO_JWKS_LOCK_MS) {
            rc = po_fail(err, PO_LOCKED,
                         "%s: held by another process for more than %ld ms",
                         lock, PO_JWKS_LOCK_MS);
            goto out;
        }
        po_sleep_ms(20);
        waited += 20;
    }
    *fdp = fd;
    fd = -1;
out:
    if (fd != -1)
        close(fd);
    free(lock);
    return rc;
}

static void disk_unlock(int *fd)
{
    if (*fd != -1) {
        (void)flock(*fd, LOCK_UN);
        close(*fd);
        *fd = -1;
    }
}

/* ------------------------------------------------------------------ */
/* fetching                                                            */

/* How requests for src are made. */
static void source_opts(const po_jwks_source *src, po_http_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->ca_file = src->ca_file;
    opts->connect_timeout_ms =
        src->connect_timeout_ms > 0 ? src->connect_timeout_ms : 5000;
    opts->deadline_ms =
        src->deadline_ms != 0 ? src->deadline_ms : po_mono_ms() + 20000u;
    opts->retries = src->retries;
    opts->allow_http = src->allow_http;
    opts->log = src->log;
}

/* GET url; PO_OK only for HTTP 200.  resp must be freed by the caller. */
static po_rc http_get(const po_jwks_source *src, const char *url,
                      const char *what, po_http_resp *resp, po_err *err)
{
    po_http_opts opts;

    source_opts(src, &opts);
    return po_http_get(&opts, url, what, resp, err);
}

/* OpenID Connect discovery: the jwks_uri of src->issuer, malloc'd. */
static po_rc discover(const po_jwks_source *src, char **jwks_uri, po_err *err)
{
    po_http_opts opts;
    po_rc rc;

    if (src->issuer == NULL || src->issuer[0] == '\0')
        return po_fail(err, PO_CONFIG,
                       "neither jwks_uri nor issuer is configured: no keys "
                       "to verify tokens with");
    source_opts(src, &opts);
    rc = po_discovery_url(&opts, src->issuer, "jwks_uri", jwks_uri, err);
    if (rc == PO_NOT_FOUND) /* an issuer without keys is broken */
        rc = PO_MALFORMED_RESPONSE;
    if (err != NULL && rc != PO_OK)
        err->rc = rc;
    return rc;
}

/* The Cache-Control header of a response, or NULL. */
static const char *resp_cache_control(const po_http_resp *resp)
{
    return resp->cache_control[0] != '\0' ? resp->cache_control : NULL;
}

/* Fetch the key set: into d (text, times) and ks (parsed). */
static po_rc fetch(po_jwks_cache *c, const po_jwks_source *src, int64_t now,
                   disk_state *d, po_jwks *ks, po_err *err)
{
    po_http_resp resp;
    char *discovered = NULL, show[URL_SHOWN_MAX];
    const char *url = src->jwks_uri;
    size_t skipped = 0;
    long ttl;
    po_rc rc;
    po_err e;

    memset(&resp, 0, sizeof(resp));
    po_buf_init(&resp.body, PO_HTTP_BODY_MAX, 1);
    po_err_clear(&e);
    if (url == NULL || url[0] == '\0') {
        if ((rc = discover(src, &discovered, err)) != PO_OK)
            goto out;
        url = discovered;
    }
    po_http_redact_url(url, show, sizeof(show));
    c->fetches++;
    if ((rc = http_get(src, url, "key set", &resp, err)) != PO_OK)
        goto out;
    if (resp.body.len > PO_JWKS_BODY_MAX) {
        rc = po_fail(err, PO_MALFORMED_RESPONSE,
                     "%s: key set larger than %d bytes, refused", show,
                     PO_JWKS_BODY_MAX);
        goto out;
    }
    if ((rc = po_jwks_parse(resp.body.data != NULL ? resp.body.data : "",
                            resp.body.len, ks, &skipped, &e)) != PO_OK) {
        rc = po_fail(err, rc, "%s: %s", show, e.msg);
        goto out;
    }
    ttl = po_jwks_max_age(resp_cache_control(&resp));
    free(d->jwks);
    if ((d->jwks = strdup(resp.body.data != NULL ? resp.body.data : "")) ==
        NULL) {
        po_jwks_free(ks);
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    d->fetched_at = now;
    d->expires_at = now + ttl;
    po_logf(src->log, LOG_DEBUG,
            "key set from %s: %zu key%s (%zu skipped), kept %ld s", show, ks->n,
            ks->n == 1 ? "" : "s", skipped, ttl);
out:
    po_http_resp_free(&resp);
    free(discovered);
    return rc;
}

void po_jwks_cache_init(po_jwks_cache *c)
{
    memset(c, 0, sizeof(*c));
}

void po_jwks_cache_free(po_jwks_cache *c)
{
    if (c == NULL)
        return;
    free(c->id);
    po_jwks_free(&c->keys);
    memset(c, 0, sizeof(*c));
}

/* Make c hold the keys for id (dropping others). */
static po_rc cache_take(po_jwks_cache *c, const char *id, po_jwks *ks,
                        const disk_state *d, po_err *err)
{
    if (c->id == NULL || strcmp(c->id, id) != 0) {
        free(c->id);
        c->refetch_at = 0;
        if ((c->id = strdup(id)) == NULL) {
            po_jwks_free(ks);
            return po_fail(err, PO_NOMEM, "out of memory");
        }
    }
    po_jwks_free(&c->keys);
    c->keys = *ks;
    ks->keys = NULL;
    ks->n = 0;
    c->fetched_at = d->fetched_at;
    c->expires_at = d->expires_at;
    if (d->refetch_at > c->refetch_at)
        c->refetch_at = d->refetch_at;
    return PO_OK;
}

/* Fresh keys from a disk state into c: 1 when taken. */
static po_rc take_disk(po_jwks_cache *c, const char *id, const disk_state *d,
                       int64_t now, int *taken, po_err *err)
{
    po_jwks ks = {NULL, 0};
    po_rc rc;
    po_err e;

    *taken = 0;
    if (!d->valid || d->jwks == NULL || now >= d->expires_at ||
        d->fetched_at > now + PO_JWKS_TTL_MAX)
        return PO_OK;
    rc = po_jwks_parse(d->jwks, strlen(d->jwks), &ks, NULL, &e);
    if (rc == PO_NOMEM)
        return po_fail(err, rc, "out of memory");
    if (rc != PO_OK)
        return PO_OK;
    if ((rc = cache_take(c, id, &ks, d, err)) != PO_OK)
        return rc;
    *taken = 1;
    return PO_OK;
}

static int memory_fresh(const po_jwks_cache *c, const char *id, int64_t now)
{
    return c->id != NULL && strcmp(c->id, id) == 0 && now < c->expires_at &&
           c->fetched_at <= now + PO_JWKS_TTL_MAX;
}

/* Fetch (under the lock when there is a disk cache) and store.  refetch
 * records this as an unknown-kid fetch. */
static po_rc fetch_and_store(po_jwks_cache *c, const po_jwks_source *src,
                             const char *id, const char *path, disk_state *d,
                             int64_t now, int refetch, po_err *err)
{
    po_jwks ks = {NULL, 0};
    po_rc rc, frc;
    po_err e;

    frc = fetch(c, src, now, d, &ks, err);
    if (refetch)
        d->refetch_at = now;
    if (frc == PO_OK && (rc = cache_take(c, id, &ks, d, err)) != PO_OK)
        return rc;
    if (refetch && c->id != NULL && strcmp(c->id, id) == 0)
        c->refetch_at = now;
    if (path != NULL && (frc == PO_OK || refetch)) {
        po_err_clear(&e);
        if (disk_write(src, path, d, &e) != PO_OK)
            po_logf(src->log, LOG_WARNING, "key cache not written: %s", e.msg);
    }
    return frc;
}

po_rc po_jwks_get(po_jwks_cache *c, const po_jwks_source *src, int64_t now,
                  const po_jwks **out, po_err *err)
{
    disk_state d;
    char *id = NULL, *path = NULL;
    int lock = -1, taken = 0;
    po_rc rc = PO_OK;
    po_err e;

    *out = NULL;
    memset(&d, 0, sizeof(d));
    if ((rc = source_id(src, &id, err)) != PO_OK)
        goto out;
    if (memory_fresh(c, id, now))
        goto done;
    if (src->cache_dir != NULL) {
        po_err_clear(&e);
        if (po_jwks_ensure_dir(src->cache_dir, &e) != PO_OK ||
            po_jwks_cache_file(src, &path, &e) != PO_OK) {
            po_logf(src->log, LOG_WARNING,
                    "key cache unusable, keys kept in memory only: %s", e.msg);
        }
    }
    if (path != NULL) {
        if ((rc = disk_read(src, path, &d, err)) != PO_OK ||
            (rc = take_disk(c, id, &d, now, &taken, err)) != PO_OK)
            goto out;
        if (taken)
            goto done;
        po_err_clear(&e);
        if (disk_lock(path, &lock, &e) != PO_OK) {
            po_logf(src->log, LOG_WARNING, "%s", e.msg);
        } else {
            /* Another process may have fetched while we waited. */
            disk_state_free(&d);
            if ((rc = disk_read(src, path, &d, err)) != PO_OK ||
                (rc = take_disk(c, id, &d, now, &taken, err)) != PO_OK)
                goto out;
            if (taken)
                goto done;
        }
    }
    if ((rc = fetch_and_store(c, src, id, lock != -1 ? path : NULL, &d, now, 0,
                              err)) != PO_OK)
        goto out;
done:
    *out = &c->keys;
out:
    disk_unlock(&lock);
    disk_state_free(&d);
    free(path);
    free(id);
    return rc;
}

po_rc po_jwks_refetch(po_jwks_cache *c, const po_jwks_source *src, int64_t now,
                      int *refetched, po_err *err)
{
    disk_state d;
    char *id = NULL, *path = NULL;
    int64_t last;
    int lock = -1, taken = 0;
    po_rc rc = PO_OK;
    po_err e;

    *refetched = 0;
    memset(&d, 0, sizeof(d));
    if ((rc = source_id(src, &id, err)) != PO_OK)
        goto out;
    last = c->id != NULL && strcmp(c->id, id) == 0 ? c->refetch_at : 0;
    if (src->cache_dir != NULL) {
        po_err_clear(&e);
        if (po_jwks_ensure_dir(src->cache_dir, &e) != PO_OK ||
            po_jwks_cache_file(src, &path, &e) != PO_OK ||
            disk_lock(path, &lock, &e) != PO_OK) {
            /* Without the file the limit cannot be shared: refuse the
             * fetch rather than let every process fetch. */
            po_logf(src->log, LOG_WARNING,
                    "key cache unusable, no refetch for an unknown kid: %s",
                    e.msg);
            goto out;
        }
        if ((rc = disk_read(src, path, &d, err)) != PO_OK)
            goto out;
        if (d.valid && d.refetch_at > last)
            last = d.refetch_at;
        /* Keys fetched by another process since ours: use them. */
        if (d.valid && d.fetched_at > c->fetched_at) {
            if ((rc = take_disk(c, id, &d, now, &taken, err)) != PO_OK)
                goto out;
            if (taken) {
                *refetched = 1;
                goto out;
            }
        }
    }
    /* A time in the future (the clock went back) does not block forever. */
    if (last != 0 && now >= last && now - last < PO_JWKS_REFETCH_MIN) {
        po_logf(src->log, LOG_NOTICE,
                "unknown key id: the key set was fetched again %lld s ago, "
                "not again before %ld s",
                (long long)(now - last), PO_JWKS_REFETCH_MIN);
        goto out;
    }
    if (last > now && last - now < PO_JWKS_REFETCH_MIN)
        goto out;
    if ((rc = fetch_and_store(c, src, id, path, &d, now, 1, err)) != PO_OK)
        goto out;
    *refetched = 1;
out:
    disk_unlock(&lock);
    disk_state_free(&d);
    free(path);
    free(id);
    return rc;
}
