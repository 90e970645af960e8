/* jwt.c - compact JWS parsing, signature verification and claim checks. */
#include "jwt.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "b64.h"
#include "jwks.h"
#include "secret.h"

#define JSON_DEPTH_MAX 32
#define CLAIM_PATH_MAX 256

/* ------------------------------------------------------------------ */
/* parsing                                                             */

/* Parse len bytes of JSON that must be one object and nothing else. */
static po_rc parse_object(const unsigned char *text, size_t len,
                          const char *what, struct json_object **out,
                          po_err *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL;
    po_rc rc = PO_OK;
    int flags = JSON_TOKENER_STRICT;

    *out = NULL;
#ifdef JSON_TOKENER_VALIDATE_UTF8
    flags |= JSON_TOKENER_VALIDATE_UTF8;
#endif
    if (len > INT_MAX || memchr(text, '\0', len) != NULL) {
        rc = po_fail(err, PO_JWT_MALFORMED, "%s: not JSON text", what);
        goto out;
    }
    if ((tok = json_tokener_new_ex(JSON_DEPTH_MAX)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    json_tokener_set_flags(tok, flags);
    po_oom_reset();
    obj = json_tokener_parse_ex(tok, (const char *)text, (int)len);
    if (po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "%s: out of memory", what);
        goto out;
    }
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len) {
        rc = po_fail(err, PO_JWT_MALFORMED, "%s: bad JSON", what);
        goto out;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        rc = po_fail(err, PO_JWT_MALFORMED, "%s: not a JSON object", what);
        goto out;
    }
    *out = obj;
    obj = NULL;
out:
    if (obj != NULL)
        json_object_put(obj);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

/* Split token into its three segments; PO_JWT_MALFORMED otherwise. */
static po_rc split(const char *token, const char *seg[3], size_t len[3],
                   po_err *err)
{
    size_t n = strnlen(token, PO_JWT_MAX + 1), i, k = 0;
    const char *start = token;

    if (n > PO_JWT_MAX)
        return po_fail(err, PO_JWT_MALFORMED,
                       "token larger than %d bytes, refused", PO_JWT_MAX);
    for (i = 0; i <= n; i++) {
        if (i == n || token[i] == '.') {
            if (k == 3)
                return po_fail(err, PO_JWT_MALFORMED,
                               "token has more than 3 segments (a JWE or "
                               "not a JWT)");
            seg[k] = start;
            len[k] = (size_t)(token + i - start);
            k++;
            start = token + i + 1;
        }
    }
    if (k != 3)
        return po_fail(err, PO_JWT_MALFORMED,
                       "token has %zu segment%s, a JWS has 3", k,
                       k == 1 ? "" : "s");
    return PO_OK;
}

int po_jwt_looks_like(const char *token)
{
    const char *seg[3];
    size_t len[3], i, n;
    unsigned char *hdr = NULL;
    int ok = 0;

    if (token == NULL || split(token, seg, len, NULL) != PO_OK)
        return 0;
    for (i = 0; i < 3; i++)
        for (n = 0; n < len[i]; n++)
            if (!po_b64url_char((unsigned char)seg[i][n]))
                return 0;
    if (po_b64url_decode(seg[0], len[0], "header", &hdr, &n, NULL) != PO_OK)
        return 0;
    for (i = 0; i < n && isspace(hdr[i]); i++)
        ;
    ok = i < n && hdr[i] == '{';
    free(hdr);
    return ok;
}

void po_jwt_free(po_jwt *j)
{
    if (j == NULL)
        return;
    free(j->kid);
    free(j->typ);
    if (j->header != NULL)
        json_object_put(j->header);
    if (j->claims != NULL)
        json_object_put(j->claims);
    free(j->sig);
    if (j->signing_input != NULL) {
        po_cleanse(j->signing_input, j->signing_input_len);
        free(j->signing_input);
    }
    memset(j, 0, sizeof(*j));
}

/* An optional string member of the header into *out (malloc'd). */
static po_rc header_string(struct json_object *hdr, const char *name,
                           char **out, po_err *err)
{
    struct json_object *v;

    *out = NULL;
    if (!json_object_object_get_ex(hdr, name, &v))
        return PO_OK;
    if (!json_object_is_type(v, json_type_string))
        return po_fail(err, PO_JWT_MALFORMED,
                       "token header: \"%s\" is not a string", name);
    if ((*out = strdup(json_object_get_string(v))) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    return PO_OK;
}

po_rc po_jwt_parse(const char *token, po_jwt *out, po_err *err)
{
    const char *seg[3];
    size_t len[3], hn = 0, bn = 0;
    unsigned char *hdr = NULL, *body = NULL;
    struct json_object *v;
    po_rc rc = PO_OK;
    po_jwt j;

    memset(&j, 0, sizeof(j));
    memset(out, 0, sizeof(*out));
    if (token == NULL) {
        rc = po_fail(err, PO_JWT_MALFORMED, "no token");
        goto out;
    }
    if ((rc = split(token, seg, len, err)) != PO_OK)
        goto out;
    if ((rc = po_b64url_decode(seg[0], len[0], "token header", &hdr, &hn,
                               err)) != PO_OK ||
        (rc = parse_object(hdr, hn, "token header", &j.header, err)) != PO_OK)
        goto out;
    if (!json_object_object_get_ex(j.header, "alg", &v) ||
        !json_object_is_type(v, json_type_string)) {
        rc = po_fail(err, PO_JWT_MALFORMED, "token header: no \"alg\" string");
        goto out;
    }
    if ((rc = po_jwt_alg_parse(json_object_get_string(v), &j.alg, err)) !=
        PO_OK)
        goto out;
    if (json_object_object_get_ex(j.header, "crit", NULL)) {
        rc = po_fail(err, PO_JWT_MALFORMED,
                     "token header: \"crit\" extensions are not supported");
        goto out;
    }
    if ((rc = header_string(j.header, "kid", &j.kid, err)) != PO_OK ||
        (rc = header_string(j.header, "typ", &j.typ, err)) != PO_OK)
        goto out;
    if ((rc = po_b64url_decode(seg[1], len[1], "token payload", &body, &bn,
                               err)) != PO_OK ||
        (rc = parse_object(body, bn, "token payload", &j.claims, err)) != PO_OK)
        goto out;
    if (len[2] == 0) {
        rc = po_fail(err, PO_JWT_MALFORMED, "token signature: empty");
        goto out;
    }
    if ((rc = po_b64url_decode(seg[2], len[2], "token signature", &j.sig,
                               &j.sig_len, err)) != PO_OK)
        goto out;
    j.signing_input_len = len[0] + 1 + len[1];
    if ((j.signing_input = po_strndup(token, j.signing_input_len)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    *out = j;
    memset(&j, 0, sizeof(j));
out:
    if (hdr != NULL) {
        po_cleanse(hdr, hn);
        free(hdr);
    }
    if (body != NULL) {
        po_cleanse(body, bn);
        free(body);
    }
    po_jwt_free(&j);
    return rc;
}

/* ------------------------------------------------------------------ */
/* keys and signatures                                                 */

po_rc po_jwk_check_alg(const po_jwk *key, po_jwt_alg alg, po_err *err)
{
    const char *name = po_jwt_alg_name(alg);
    char kid[80];

    po_safe_text(key->kid != NULL ? key->kid : "(none)", kid, sizeof(kid));
    if ((int)alg < 0 || alg >= PO_JWT_ALG_COUNT)
        return po_fail(err, PO_JWT_ALG_REFUSED, "unknown algorithm");
    if (key->use != NULL && strcmp(key->use, "sig") != 0)
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "key kid \"%s\" is not for signatures (use is not "
                       "\"sig\")",
                       kid);
    if (key->alg != NULL && strcmp(key->alg, name) != 0)
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "key kid \"%s\" is for another algorithm than the "
                       "token's %s",
                       kid, name);
    if (key->kty == NULL || strcmp(key->kty, po_jwt_alg_info(alg)->kty) != 0)
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "key kid \"%s\" has key type %s, the token's %s needs "
                       "%s",
                       kid, key->kty != NULL ? key->kty : "(none)", name,
                       po_jwt_alg_info(alg)->kty);
    if (po_jwt_alg_info(alg)->crv != NULL &&
        (key->crv == NULL || strcmp(key->crv, po_jwt_alg_info(alg)->crv) != 0))
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "key kid \"%s\" is on curve %s, the token's %s needs "
                       "%s",
                       kid, key->crv != NULL ? key->crv : "(none)", name,
                       po_jwt_alg_info(alg)->crv);
    po_oom_reset();
    if (key->pkey == NULL ||
        !EVP_PKEY_is_a(key->pkey, po_jwt_alg_info(alg)->kty[0] == 'O'
                                      ? "ED25519"
                                      : po_jwt_alg_info(alg)->kty)) {
        if (po_out_of_memory())
            return po_fail(err, PO_NOMEM, "out of memory");
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "key kid \"%s\" is not a %s key", kid,
                       po_jwt_alg_info(alg)->kty);
    }
    return PO_OK;
}

/* RFC 7518 3.4: the JWS ECDSA signature is r || s, each half bytes; EVP
 * wants DER. */
static po_rc ecdsa_raw_to_der(const unsigned char *sig, size_t len, size_t half,
                              unsigned char **der, int *der_len, po_err *err)
{
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    po_rc rc = PO_OK;

    *der = NULL;
    if (len != 2 * half) {
        rc = po_fail(err, PO_JWT_BAD_SIGNATURE,
                     "token signature: %zu bytes, an ECDSA JWS signature "
                     "has %zu (raw r||s, not DER)",
                     len, 2 * half);
        goto out;
    }
    if ((es = ECDSA_SIG_new()) == NULL ||
        (r = BN_bin2bn(sig, (int)half, NULL)) == NULL ||
        (s = BN_bin2bn(sig + half, (int)half, NULL)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    if (ECDSA_SIG_set0(es, r, s) != 1) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    r = s = NULL;
    if ((*der_len = i2d_ECDSA_SIG(es, der)) <= 0) {
        *der = NULL;
        rc = po_fail(err, PO_NOMEM, "cannot encode the ECDSA signature");
        goto out;
    }
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

po_rc po_jwt_verify_sig(const po_jwt *j, const po_jwk *key, po_err *err)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *der = NULL;
    const unsigned char *sig = j->sig;
    size_t sig_len = j->sig_len;
    char kid[80];
    int der_len = 0, ok, size;
    po_rc rc = PO_OK;

    if ((rc = po_jwk_check_alg(key, j->alg, err)) != PO_OK)
        goto out;
    po_safe_text(key->kid != NULL ? key->kid : "(none)", kid, sizeof(kid));
    if (po_jwt_alg_info(j->alg)->half > 0) {
        if ((rc = ecdsa_raw_to_der(j->sig, j->sig_len,
                                   po_jwt_alg_info(j->alg)->half, &der,
                                   &der_len, err)) != PO_OK)
            goto out;
        sig = der;
        sig_len = (size_t)der_len;
    } else if (strcmp(po_jwt_alg_info(j->alg)->kty, "RSA") == 0) {
        po_oom_reset();
        size = EVP_PKEY_get_size(key->pkey);
        if (size <= 0 && po_out_of_memory()) {
            rc = po_fail(err, PO_NOMEM, "out of memory");
            goto out;
        }
        if (sig_len != (size_t)size) {
            rc = po_fail(err, PO_JWT_BAD_SIGNATURE,
                         "token signature: %zu bytes, key kid \"%s\" makes %d",
                         sig_len, kid, size);
            goto out;
        }
    }
    if ((md = EVP_MD_CTX_new()) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    po_oom_reset();
    if (EVP_DigestVerifyInit_ex(md, &pctx, po_jwt_alg_info(j->alg)->digest,
                                NULL, NULL, key->pkey, NULL) != 1) {
        rc = po_out_of_memory() ? po_fail(err, PO_NOMEM, "out of memory")
                                : po_fail(err, PO_JWT_ALG_REFUSED,
                                          "key kid \"%s\" cannot verify %s "
                                          "signatures",
                                          kid, po_jwt_alg_name(j->alg));
        goto out;
    }
    if (j->alg == PO_JWT_PS256) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) !=
                1) {
            rc = po_fail(err, PO_JWT_ALG_REFUSED,
                         "cannot set up PS256 verification");
            goto out;
        }
    } else if (strcmp(po_jwt_alg_info(j->alg)->kty, "RSA") == 0) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
            rc = po_fail(err, PO_JWT_ALG_REFUSED,
                         "cannot set up %s verification",
                         po_jwt_alg_name(j->alg));
            goto out;
        }
    }
    po_oom_reset();
    ok = EVP_DigestVerify(md, sig, sig_len,
                          (const unsigned char *)j->signing_input,
                          j->signing_input_len);
    if (ok != 1 && po_out_of_memory()) {
        rc = po_fail(err, PO_NOMEM, "out of memory verifying the signature");
        goto out;
    }
    if (ok != 1) {
        rc = po_fail(err, PO_JWT_BAD_SIGNATURE,
                     "token signature does not verify with key kid \"%s\" "
                     "(%s)",
                     kid, po_jwt_alg_name(j->alg));
        goto out;
    }
out:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return rc;
}

/* ------------------------------------------------------------------ */
/* claims                                                              */

/* A NumericDate claim: *present 0 when absent; PO_JWT_MALFORMED when not a
 * number. */
static po_rc numeric_date(struct json_object *claims, const char *name,
                          int64_t *out, int *present, po_err *err)
{
    struct json_object *v;
    double d;

    *present = 0;
    *out = 0;
    if (!json_object_object_get_ex(claims, name, &v))
        return PO_OK;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
    } else if (json_object_is_type(v, json_type_double)) {
        d = json_object_get_double(v);
        if (!isfinite(d) || d > 9.2e18 || d < -9.2e18)
            return po_fail(err, PO_JWT_MALFORMED,
                           "token claim \"%s\" is out of range", name);
        *out = (int64_t)d; /* truncates: seconds */
    } else {
        return po_fail(err, PO_JWT_MALFORMED,
                       "token claim \"%s\" is not a number", name);
    }
    *present = 1;
    return PO_OK;
}

/* a - b for a message, saturated: the claims are the sender's numbers,
 * anywhere in int64_t. */
static long long span(int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return LLONG_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return LLONG_MIN;
    return (long long)(a - b);
}

static int aud_contains(struct json_object *aud, const char *want)
{
    size_t i, n;

    if (json_object_is_type(aud, json_type_string))
        return strcmp(json_object_get_string(aud), want) == 0;
    if (!json_object_is_type(aud, json_type_array))
        return 0;
    n = json_object_array_length(aud);
    for (i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(aud, i);
        if (json_object_is_type(e, json_type_string) &&
            strcmp(json_object_get_string(e), want) == 0)
            return 1;
    }
    return 0;
}

po_rc po_jwt_check_claims(struct json_object *claims, const po_jwt_policy *pol,
                          int64_t now, unsigned flags, po_err *err)
{
    struct json_object *v;
    long leeway = pol->leeway >= 0 ? pol->leeway : PO_JWT_LEEWAY_DEFAULT;
    int optional = (flags & PO_CLAIMS_WHERE_PRESENT) != 0;
    char shown[160];
    int64_t t;
    int present;
    po_rc rc;

    if ((pol->issuer == NULL && !optional) || pol->audience == NULL)
        return po_fail(err, PO_CONFIG,
                       "token verification needs an issuer and an audience");
    if (!json_object_object_get_ex(claims, "iss", &v)) {
        if (!optional)
            return po_fail(err, PO_JWT_WRONG_ISSUER, "token has no \"iss\"");
    } else if (pol->issuer != NULL &&
               (!json_object_is_type(v, json_type_string) ||
                strcmp(json_object_get_string(v), pol->issuer) != 0)) {
        po_safe_text(json_object_is_type(v, json_type_string)
                         ? json_object_get_string(v)
                         : "(not a string)",
                     shown, sizeof(shown));
        return po_fail(err, PO_JWT_WRONG_ISSUER,
                       "token issuer \"%s\" is not the configured \"%s\"",
                       shown, pol->issuer);
    }
    if (!json_object_object_get_ex(claims, "aud", &v)) {
        if (!optional)
            return po_fail(err, PO_JWT_WRONG_AUDIENCE, "token has no \"aud\"");
    } else if (!aud_contains(v, pol->audience)) {
        return po_fail(err, PO_JWT_WRONG_AUDIENCE,
                       "token audience does not include \"%s\"", pol->audience);
    }
    if ((rc = numeric_date(claims, "exp", &t, &present, err)) != PO_OK)
        return rc;
    if (!present && (flags & PO_CLAIMS_EXP_REQUIRED) != 0)
        return po_fail(err, PO_JWT_MISSING_CLAIM, "token has no \"exp\"");
    if (present && now - leeway >= t)
        return po_fail(err, PO_JWT_EXPIRED,
                       "token expired %lld s ago (leeway %ld s)", span(now, t),
                       leeway);
    if ((rc = numeric_date(claims, "nbf", &t, &present, err)) != PO_OK)
        return rc;
    if (present && now + leeway < t)
        return po_fail(err, PO_JWT_NOT_YET_VALID,
                       "token not valid before %lld s from now (leeway %ld "
                       "s)",
                       span(t, now), leeway);
    if ((rc = numeric_date(claims, "iat", &t, &present, err)) != PO_OK)
        return rc;
    if (present && now + leeway < t)
        return po_fail(err, PO_JWT_NOT_YET_VALID,
                       "token issued %lld s in the future (leeway %ld s)",
                       span(t, now), leeway);
    return PO_OK;
}

/* typ: a media type compared case-insensitively, "application/" being
 * optional (RFC 7515 4.1.9). */
static int typ_matches(const char *have, const char *want)
{
    if (strncasecmp(have, "application/", 12) == 0)
        have += 12;
    if (strncasecmp(want, "application/", 12) == 0)
        want += 12;
    return strcasecmp(have, want) == 0;
}

po_rc po_jwt_select_keys(const po_jwt *j, const po_jwks *keys,
                         const po_jwk **out, size_t max, size_t *n, po_err *err)
{
    size_t i, named = 0;
    char kid[80];
    po_rc last = PO_OK;
    po_err e;

    *n = 0;
    po_err_clear(&e);
    for (i = 0; keys != NULL && i < keys->n && *n < max; i++) {
        const po_jwk *k = &keys->keys[i];

        if (j->kid != NULL && (k->kid == NULL || strcmp(k->kid, j->kid) != 0))
            continue;
        named++;
        if ((last = po_jwk_check_alg(k, j->alg, &e)) == PO_OK)
            out[(*n)++] = k;
        else if (last == PO_NOMEM)
            return po_fail(err, PO_NOMEM, "%s", e.msg);
    }
    if (*n > 0)
        return PO_OK;
    if (j->kid != NULL) {
        po_safe_text(j->kid, kid, sizeof(kid));
        if (named > 0)
            return po_fail(err, last, "%s", e.msg);
        return po_fail(err, PO_JWT_UNKNOWN_KEY,
                       "no key with kid \"%s\" in the issuer's key set", kid);
    }
    return po_fail(err, PO_JWT_UNKNOWN_KEY,
                   "token has no kid and no key in the issuer's key set "
                   "fits %s",
                   po_jwt_alg_name(j->alg));
}

po_rc po_jwt_verify(const char *token, const po_jwks *keys,
                    const po_jwt_policy *pol, int64_t now, po_jwt *out,
                    po_err *err)
{
    const po_jwk *cand[PO_JWT_KEYS_TRIED_MAX];
    po_jwt_algset allowed = pol->algs;
    size_t n = 0, i;
    char shown[80];
    po_rc rc = PO_OK;
    po_jwt j;

    memset(&j, 0, sizeof(j));
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (allowed == 0 && (rc = po_jwt_algset_parse(PO_JWT_ALGORITHMS_DEFAULT,
                                                  &allowed, err)) != PO_OK)
        goto out;
    if ((rc = po_jwt_parse(token, &j, err)) != PO_OK)
        goto out;
    if ((allowed & PO_JWT_ALG_BIT(j.alg)) == 0) {
        rc = po_fail(err, PO_JWT_ALG_REFUSED,
                     "token algorithm %s is not in jwt_algorithms",
                     po_jwt_alg_name(j.alg));
        goto out;
    }
    if ((rc = po_jwt_select_keys(&j, keys, cand, PO_JWT_KEYS_TRIED_MAX, &n,
                                 err)) != PO_OK)
        goto out;
    for (i = 0; i < n; i++) {
        if ((rc = po_jwt_verify_sig(&j, cand[i], err)) != PO_JWT_BAD_SIGNATURE)
            break;
    }
    if (rc != PO_OK)
        goto out;
    if (pol->typ != NULL && pol->typ[0] != '\0' &&
        (j.typ == NULL || !typ_matches(j.typ, pol->typ))) {
        po_safe_text(j.typ != NULL ? j.typ : "(none)", shown, sizeof(shown));
        rc = po_fail(err, PO_JWT_WRONG_TYPE,
                     "token typ \"%s\" is not the configured \"%s\"", shown,
                     pol->typ);
        goto out;
    }
    if ((rc = po_jwt_check_claims(j.claims, pol, now, PO_CLAIMS_EXP_REQUIRED,
                                  err)) != PO_OK)
        goto out;
    if (out != NULL) {
        *out = j;
        memset(&j, 0, sizeof(j));
    }
out:
    po_jwt_free(&j);
    return rc;
}
