/* test_jwt.c - JWS verification: keys made in-process with OpenSSL EVP
 * (RSA 2048, EC P-256/P-384, Ed25519), tokens signed here, a JWK Set built
 * from the keys, each algorithm verified, and each attack refused with its
 * typed outcome. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jwks.h"
#include "b64.h"
#include "jwt.h"
#include "secret.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ISS "https://issuer.test/realm"
#define AUD "pam-client"
#define NOW 1800000000LL

/* ------------------------------------------------------------------ */
/* keys, JWKs and signing, all with EVP                                */

enum { K_RSA, K_RSA2, K_EC256, K_EC384, K_ED, K_COUNT };
static EVP_PKEY *keys[K_COUNT];

static EVP_PKEY *gen(int which)
{
    switch (which) {
    case K_RSA:
    case K_RSA2:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case K_EC256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case K_EC384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    default:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
}

static char *b64(const void *p, size_t n)
{
    char *s = NULL;
    assert_int_equal(po_b64url_encode(p, n, &s, NULL), PO_OK);
    return s;
}

static char *bn_b64(const BIGNUM *bn, int pad)
{
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)n);
    char *s;

    assert_non_null(buf);
    assert_int_equal(BN_bn2binpad(bn, buf, n), n);
    s = b64(buf, (size_t)n);
    free(buf);
    return s;
}

/* A JWK for key k as a json object; extra ("alg", "use") may be NULL. */
static struct json_object *jwk(int k, const char *kid, const char *alg,
                               const char *use)
{
    struct json_object *o = json_object_new_object();
    EVP_PKEY *p = keys[k];
    char *a = NULL, *b = NULL;

    if (k == K_RSA || k == K_RSA2) {
        BIGNUM *n = NULL, *e = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_N, &n),
                         1);
        assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_RSA_E, &e),
                         1);
        json_object_object_add(o, "kty", json_object_new_string("RSA"));
        a = bn_b64(n, 0);
        b = bn_b64(e, 0);
        json_object_object_add(o, "n", json_object_new_string(a));
        json_object_object_add(o, "e", json_object_new_string(b));
        BN_free(n);
        BN_free(e);
    } else if (k == K_EC256 || k == K_EC384) {
        BIGNUM *x = NULL, *y = NULL;
        int size = k == K_EC256 ? 32 : 48;
        assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_EC_PUB_X, &x),
                         1);
        assert_int_equal(EVP_PKEY_get_bn_param(p, OSSL_PKEY_PARAM_EC_PUB_Y, &y),
                         1);
        json_object_object_add(o, "kty", json_object_new_string("EC"));
        json_object_object_add(
            o, "crv", json_object_new_string(k == K_EC256 ? "P-256" : "P-384"));
        a = bn_b64(x, size);
        b = bn_b64(y, size);
        json_object_object_add(o, "x", json_object_new_string(a));
        json_object_object_add(o, "y", json_object_new_string(b));
        BN_free(x);
        BN_free(y);
    } else {
        unsigned char raw[32];
        size_t len = sizeof(raw);
        assert_int_equal(EVP_PKEY_get_raw_public_key(p, raw, &len), 1);
        json_object_object_add(o, "kty", json_object_new_string("OKP"));
        json_object_object_add(o, "crv", json_object_new_string("Ed25519"));
        a = b64(raw, len);
        json_object_object_add(o, "x", json_object_new_string(a));
    }
    if (kid != NULL)
        json_object_object_add(o, "kid", json_object_new_string(kid));
    if (alg != NULL)
        json_object_object_add(o, "alg", json_object_new_string(alg));
    if (use != NULL)
        json_object_object_add(o, "use", json_object_new_string(use));
    free(a);
    free(b);
    return o;
}

static char *rsa_pem; /* K_RSA's public key PEM: the confusion attack */

/* The issuer's key set (K_RSA2 is NOT in it: the "wrong key"). */
static po_jwks jwks;
static char *jwks_text;

static void build_jwks(void)
{
    struct json_object *set = json_object_new_object();
    struct json_object *arr = json_object_new_array();

    json_object_array_add(arr, jwk(K_RSA, "rsa1", "RS256", "sig"));
    json_object_array_add(arr, jwk(K_RSA, "rsa-any", NULL, NULL));
    json_object_array_add(arr, jwk(K_RSA, "rsa-ps", "PS256", "sig"));
    json_object_array_add(arr, jwk(K_RSA, "rsa-enc", NULL, "enc"));
    json_object_array_add(arr, jwk(K_EC256, "ec256", "ES256", "sig"));
    json_object_array_add(arr, jwk(K_EC384, "ec384", NULL, NULL));
    json_object_array_add(arr, jwk(K_ED, "ed1", "EdDSA", NULL));
    /* A shared-secret key: must be skipped, never used. */
    {
        struct json_object *oct = json_object_new_object();
        json_object_object_add(oct, "kty", json_object_new_string("oct"));
        json_object_object_add(oct, "kid", json_object_new_string("hmac"));
        json_object_object_add(oct, "k", json_object_new_string("c2VjcmV0"));
        json_object_array_add(arr, oct);
    }
    json_object_object_add(set, "keys", arr);
    jwks_text = strdup(json_object_to_json_string(set));
    json_object_put(set);
}

static const char *digest_of(const char *alg)
{
    if (strcmp(alg, "EdDSA") == 0)
        return NULL;
    if (strstr(alg, "384") != NULL)
        return "SHA384";
    if (strstr(alg, "512") != NULL)
        return "SHA512";
    return "SHA256";
}

/* Sign input with key k for alg; ECDSA converted to raw r||s unless der. */
static unsigned char *sign(int k, const char *alg, const char *input,
                           size_t *len, int der)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig;
    size_t n = 0;

    assert_int_equal(EVP_DigestSignInit_ex(md, &pctx, digest_of(alg), NULL,
                                           NULL, keys[k], NULL),
                     1);
    if (strcmp(alg, "PS256") == 0) {
        assert_int_equal(
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(md, NULL, &n, (const unsigned char *)input,
                                    strlen(input)),
                     1);
    sig = malloc(n);
    assert_int_equal(EVP_DigestSign(md, sig, &n, (const unsigned char *)input,
                                    strlen(input)),
                     1);
    EVP_MD_CTX_free(md);
    if ((k == K_EC256 || k == K_EC384) && !der) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        int half = k == K_EC256 ? 32 : 48;
        unsigned char *raw = malloc((size_t)(2 * half));

        assert_non_null(es);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, half);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + half, half);
        ECDSA_SIG_free(es);
        free(sig);
        sig = raw;
        n = (size_t)(2 * half);
    }
    *len = n;
    return sig;
}

/* The PEM text of key k's public key (for the HMAC confusion attack). */
static char *public_pem(int k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    assert_int_equal(PEM_write_bio_PUBKEY(bio, keys[k]), 1);
    n = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

/* ------------------------------------------------------------------ */
/* building tokens                                                     */

typedef enum {
    M_NONE,
    M_TRUNCATE_SIG,  /* drop the last 10 bytes of the signature     */
    M_BAD_B64,       /* a '*' in the payload                        */
    M_PADDING,       /* '=' padding appended to the header          */
    M_TWO_SEGMENTS,  /* "h.p"                                       */
    M_FOUR_SEGMENTS, /* "h.p.s.x"                                   */
    M_HUGE,          /* payload padded past 16 KiB                  */
    M_EMPTY_SIG,     /* "h.p."                                      */
    M_FLIP_PAYLOAD,  /* payload changed after signing               */
} mutation;

typedef struct tcase {
    const char *name;
    int key;                  /* signing key                                */
    const char *alg;          /* header alg                                 */
    const char *kid;          /* header kid, NULL = none                    */
    const char *extra_header; /* ,"k":v appended to the header       */
    long exp, nbf, iat;       /* relative to NOW; 0 = omitted (exp:
                                 LONG_MIN = omitted)                 */
    const char *iss, *aud_json;
    mutation mut;
    int der;                  /* ECDSA: DER instead of raw                  */
    const char *hmac;         /* sign with HS256 and this secret instead    */
    const char *payload_json; /* whole payload override              */
    const char *typ_policy;
    const char *algs_policy;
    po_rc want;
} tcase;

#define OMIT 0x7fffffffL

static char *make_token(const tcase *c)
{
    char header[512], payload[20000], *h, *p, *s, *input, *tok;
    unsigned char *sig = NULL;
    size_t siglen = 0, n;
    po_buf b;

    (void)snprintf(header, sizeof(header),
                   "{\"alg\":\"%s\",\"typ\":\"JWT\"%s%s%s%s", c->alg,
                   c->kid ? ",\"kid\":\"" : "", c->kid ? c->kid : "",
                   c->kid ? "\"" : "", c->extra_header ? c->extra_header : "");
    strcat(header, "}");
    if (c->payload_json != NULL) {
        (void)snprintf(payload, sizeof(payload), "%s", c->payload_json);
    } else {
        po_buf_init(&b, sizeof(payload) - 1, 0);
        po_buf_printf(&b,
                      "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"u1\","
                      "\"preferred_username\":\"alice\"",
                      c->iss ? c->iss : ISS,
                      c->aud_json ? c->aud_json : "\"" AUD "\"");
        if (c->exp != OMIT)
            po_buf_printf(&b, ",\"exp\":%lld", NOW + (c->exp ? c->exp : 300));
        if (c->nbf)
            po_buf_printf(&b, ",\"nbf\":%lld", NOW + c->nbf);
        if (c->iat)
            po_buf_printf(&b, ",\"iat\":%lld", NOW + c->iat);
        if (c->mut == M_HUGE) {
            po_buf_puts(&b, ",\"pad\":\"");
            for (n = 0; n < 17000; n++)
                po_buf_puts(&b, "x");
            po_buf_puts(&b, "\"");
        }
        po_buf_puts(&b, "}");
        (void)snprintf(payload, sizeof(payload), "%s", b.data);
        po_buf_free(&b);
    }
    h = b64(header, strlen(header));
    p = b64(payload, strlen(payload));
    input = malloc(strlen(h) + strlen(p) + 2);
    sprintf(input, "%s.%s", h, p);
    if (c->hmac != NULL) {
        unsigned char mac[64];
        size_t maclen = 0;
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, c->hmac,
                                  strlen(c->hmac), (unsigned char *)input,
                                  strlen(input), mac, sizeof(mac), &maclen));
        sig = malloc(maclen);
        memcpy(sig, mac, maclen);
        siglen = maclen;
    } else if (strcmp(c->alg, "none") != 0) {
        sig = sign(c->key, c->alg, input, &siglen, c->der);
    }
    if (c->mut == M_TRUNCATE_SIG)
        siglen -= 10;
    s = b64(sig, siglen);
    tok = malloc(strlen(h) + strlen(p) + 2 * strlen(s) + 64);
    if (c->mut == M_FLIP_PAYLOAD) {
        char *p2 = b64(
            "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":9999999999,"
            "\"preferred_username\":\"root\"}",
            strlen("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                   "\",\"exp\":9999999999,\"preferred_username\":\"root\"}"));
        sprintf(tok, "%s.%s.%s", h, p2, s);
        free(p2);
    } else if (c->mut == M_TWO_SEGMENTS) {
        sprintf(tok, "%s", input);
    } else if (c->mut == M_FOUR_SEGMENTS) {
        sprintf(tok, "%s.%s.%s", input, s, s);
    } else if (c->mut == M_EMPTY_SIG || strcmp(c->alg, "none") == 0) {
        sprintf(tok, "%s.", input);
    } else if (c->mut == M_PADDING) {
        sprintf(tok, "%s==.%s.%s", h, p, s);
    } else if (c->mut == M_BAD_B64) {
        sprintf(tok, "%s.*%s.%s", h, p + 1, s);
    } else {
        sprintf(tok, "%s.%s", input, s);
    }
    free(h);
    free(p);
    free(s);
    free(input);
    free(sig);
    return tok;
}

static char *public_pem(int k);

static int group_setup(void **state)
{
    size_t skipped = 9;
    int i;

    (void)state;
    for (i = 0; i < K_COUNT; i++)
        if ((keys[i] = gen(i)) == NULL)
            return -1;
    build_jwks();
    rsa_pem = public_pem(K_RSA);
    if (po_jwks_parse(jwks_text, strlen(jwks_text), &jwks, &skipped, NULL) !=
        PO_OK)
        return -1;
    /* 7 usable keys, the oct key skipped. */
    if (jwks.n != 7 || skipped != 1)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int i;

    (void)state;
    po_jwks_free(&jwks);
    free(jwks_text);
    free(rsa_pem);
    for (i = 0; i < K_COUNT; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

static void run_cases(const tcase *cases, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const tcase *c = &cases[i];
        po_jwt_policy pol = {ISS, AUD, 0, 60, c->typ_policy};
        char *tok = make_token(c);
        po_jwt j;
        po_err err;
        po_rc rc;

        po_err_clear(&err);
        if (c->algs_policy != NULL)
            assert_int_equal(
                po_jwt_algset_parse(c->algs_policy, &pol.algs, NULL), PO_OK);
        rc = po_jwt_verify(tok, &jwks, &pol, NOW, &j, &err);
        if (getenv("PO_TEST_VERBOSE") != NULL)
            printf("# %-45s %-18s %s\n", c->name, po_rc_name(rc), err.msg);
        if (rc != c->want)
            fail_msg("case %s: got %s (%s), want %s", c->name, po_rc_name(rc),
                     err.msg, po_rc_name(c->want));
        if (rc == PO_OK) {
            struct json_object *u =
                po_json_path(j.claims, "preferred_username");
            assert_non_null(u);
            assert_string_equal(json_object_get_string(u), "alice");
            po_jwt_free(&j);
        } else {
            /* The message never holds the token. */
            assert_null(strstr(err.msg, tok));
            assert_true(err.msg[0] != '\0');
        }
        free(tok);
    }
}

/* ------------------------------------------------------------------ */
/* tests                                                               */

static void test_algorithms(void **state)
{
    static const tcase cases[] = {
        {"RS256", K_RSA, "RS256", "rsa1", .want = PO_OK},
        {"RS384", K_RSA, "RS384", "rsa-any", .want = PO_OK},
        {"RS512", K_RSA, "RS512", "rsa-any", .want = PO_OK},
        {"PS256", K_RSA, "PS256", "rsa-ps", .want = PO_OK},
        {"ES256", K_EC256, "ES256", "ec256", .want = PO_OK},
        {"ES384", K_EC384, "ES384", "ec384", .want = PO_OK},
        {"EdDSA", K_ED, "EdDSA", "ed1", .want = PO_OK},
        {"EdDSA, no kid", K_ED, "EdDSA", NULL, .want = PO_OK},
        {"ES384, no kid", K_EC384, "ES384", NULL, .want = PO_OK},
        {"aud array", K_RSA, "RS256", "rsa1", .aud_json = "[\"x\",\"" AUD "\"]",
         .want = PO_OK},
        {"exp within leeway", K_RSA, "RS256", "rsa1", .exp = -30,
         .want = PO_OK},
        {"nbf within leeway", K_RSA, "RS256", "rsa1", .nbf = 30, .want = PO_OK},
        {"typ at+jwt", K_ED, "EdDSA", "ed1", .extra_header = ",\"x\":1",
         .typ_policy = "application/JWT", .want = PO_OK},
        {"embedded jwk header ignored", K_RSA, "RS256", "rsa1",
         .extra_header = ",\"jku\":\"https://evil.test/jwks\"", .want = PO_OK},
    };
    (void)state;
    run_cases(cases, ARRAY_LEN(cases));
}

static void test_attacks(void **state)
{
    tcase cases[] = {
        {"unknown kid", K_RSA, "RS256", "nope", .want = PO_JWT_UNKNOWN_KEY},
        {"wrong key (same kid)", K_RSA2, "RS256", "rsa1",
         .want = PO_JWT_BAD_SIGNATURE},
        {"wrong key, no kid", K_RSA2, "RS256", NULL,
         .want = PO_JWT_BAD_SIGNATURE},
        {"alg none", K_RSA, "none", "rsa1", .want = PO_JWT_ALG_REFUSED},
        {"alg None", K_RSA, "None", NULL, .want = PO_JWT_ALG_REFUSED},
        {"HS256 with the RSA public key PEM as secret", K_RSA, "HS256", "rsa1",
         .hmac = rsa_pem, .want = PO_JWT_ALG_REFUSED},
        {"HS256 against the oct key", K_RSA, "HS256", "hmac", .hmac = "secret",
         .want = PO_JWT_ALG_REFUSED},
        {"expired", K_RSA, "RS256", "rsa1", .exp = -120,
         .want = PO_JWT_EXPIRED},
        {"exp missing", K_RSA, "RS256", "rsa1", .exp = OMIT,
         .want = PO_JWT_MISSING_CLAIM},
        {"not yet valid (nbf)", K_RSA, "RS256", "rsa1", .nbf = 600,
         .want = PO_JWT_NOT_YET_VALID},
        {"issued in the future (iat)", K_RSA, "RS256", "rsa1", .iat = 600,
         .want = PO_JWT_NOT_YET_VALID},
        {"wrong issuer", K_RSA, "RS256", "rsa1", .iss = "https://evil.test",
         .want = PO_JWT_WRONG_ISSUER},
        {"issuer prefix", K_RSA, "RS256", "rsa1", .iss = ISS "/x",
         .want = PO_JWT_WRONG_ISSUER},
        {"wrong audience", K_RSA, "RS256", "rsa1", .aud_json = "\"other\"",
         .want = PO_JWT_WRONG_AUDIENCE},
        {"audience array without ours", K_RSA, "RS256", "rsa1",
         .aud_json = "[\"a\",\"b\"]", .want = PO_JWT_WRONG_AUDIENCE},
        {"malformed base64 (invalid char)", K_RSA, "RS256", "rsa1",
         .mut = M_BAD_B64, .want = PO_JWT_MALFORMED},
        {"malformed base64 (padding)", K_RSA, "RS256", "rsa1", .mut = M_PADDING,
         .want = PO_JWT_MALFORMED},
        {"two segments", K_RSA, "RS256", "rsa1", .mut = M_TWO_SEGMENTS,
         .want = PO_JWT_MALFORMED},
        {"four segments", K_RSA, "RS256", "rsa1", .mut = M_FOUR_SEGMENTS,
         .want = PO_JWT_MALFORMED},
        {"huge token", K_RSA, "RS256", "rsa1", .mut = M_HUGE,
         .want = PO_JWT_MALFORMED},
        {"empty signature", K_RSA, "RS256", "rsa1", .mut = M_EMPTY_SIG,
         .want = PO_JWT_MALFORMED},
        {"payload not JSON", K_RSA, "RS256", "rsa1",
         .payload_json = "{\"iss\":", .want = PO_JWT_MALFORMED},
        {"payload an array", K_RSA, "RS256", "rsa1", .payload_json = "[1]",
         .want = PO_JWT_MALFORMED},
        {"payload with trailing garbage", K_RSA, "RS256", "rsa1",
         .payload_json = "{\"exp\":1}x", .want = PO_JWT_MALFORMED},
        {"exp not a number", K_RSA, "RS256", "rsa1",
         .payload_json =
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":\"9999999999\"}",
         .want = PO_JWT_MALFORMED},
        {"crit header", K_RSA, "RS256", "rsa1",
         .extra_header = ",\"crit\":[\"x\"]", .want = PO_JWT_MALFORMED},
        {"JWK alg disagrees (RS256 token, PS256 key)", K_RSA, "RS256", "rsa-ps",
         .want = PO_JWT_ALG_REFUSED},
        {"JWK alg disagrees (RS384 token, RS256 key)", K_RSA, "RS384", "rsa1",
         .want = PO_JWT_ALG_REFUSED},
        {"JWK use enc", K_RSA, "RS256", "rsa-enc", .want = PO_JWT_ALG_REFUSED},
        {"EC key for an RSA alg", K_RSA, "RS256", "ec256",
         .want = PO_JWT_ALG_REFUSED},
        {"P-384 key for ES256", K_EC384, "ES256", "ec384",
         .want = PO_JWT_ALG_REFUSED},
        {"truncated signature", K_RSA, "RS256", "rsa1", .mut = M_TRUNCATE_SIG,
         .want = PO_JWT_BAD_SIGNATURE},
        {"truncated EdDSA signature", K_ED, "EdDSA", "ed1",
         .mut = M_TRUNCATE_SIG, .want = PO_JWT_BAD_SIGNATURE},
        {"ES256 with a DER signature", K_EC256, "ES256", "ec256", .der = 1,
         .want = PO_JWT_BAD_SIGNATURE},
        {"payload changed after signing", K_RSA, "RS256", "rsa1",
         .mut = M_FLIP_PAYLOAD, .want = PO_JWT_BAD_SIGNATURE},
        {"algorithm not allowed by the profile", K_EC256, "ES256", "ec256",
         .algs_policy = "RS256 EdDSA", .want = PO_JWT_ALG_REFUSED},
        {"ES512 unsupported", K_EC256, "ES512", "ec256",
         .want = PO_JWT_ALG_REFUSED},
        {"typ mismatch", K_RSA, "RS256", "rsa1", .typ_policy = "at+jwt",
         .want = PO_JWT_WRONG_TYPE},
    };

    (void)state;
    assert_non_null(rsa_pem);
    assert_non_null(strstr(rsa_pem, "BEGIN PUBLIC KEY"));
    run_cases(cases, ARRAY_LEN(cases));
}

static void test_alg_lists(void **state)
{
    po_jwt_algset set = 0;
    po_err err;

    (void)state;
    assert_int_equal(po_jwt_algset_parse(PO_JWT_ALGORITHMS_DEFAULT, &set, &err),
                     PO_OK);
    assert_int_equal(set, (1u << PO_JWT_ALG_COUNT) - 1u);
    assert_int_equal(po_jwt_algset_parse("RS256, EdDSA", &set, &err), PO_OK);
    assert_int_equal(set, PO_JWT_ALG_BIT(PO_JWT_RS256) |
                              PO_JWT_ALG_BIT(PO_JWT_EDDSA));
    assert_int_equal(po_jwt_algset_parse("RS256 HS256", &set, &err), PO_CONFIG);
    assert_non_null(strstr(err.msg, "HS256"));
    assert_int_equal(po_jwt_algset_parse("none", &set, &err), PO_CONFIG);
    assert_int_equal(po_jwt_algset_parse("  ", &set, &err), PO_CONFIG);
    assert_int_equal(po_jwt_algset_parse("rs256", &set, &err), PO_CONFIG);
}

static void test_looks_like(void **state)
{
    tcase c = {"x", K_ED, "EdDSA", "ed1", .want = PO_OK};
    char *tok;

    (void)state;
    tok = make_token(&c);
    assert_true(po_jwt_looks_like(tok));
    free(tok);
    assert_false(po_jwt_looks_like("2YotnFZFEjr1zCsicMWpAA"));
    assert_false(po_jwt_looks_like("a.b"));
    assert_false(po_jwt_looks_like("YWJj.YWJj.YWJj")); /* "abc" header */
    assert_false(po_jwt_looks_like("eyJ4IjoxfQ.e30.a+b"));
    assert_true(po_jwt_looks_like("eyJ4IjoxfQ.e30.YQ"));
    assert_false(po_jwt_looks_like(NULL));
}

static void test_claims_paths(void **state)
{
    struct json_object *o = json_tokener_parse(
        "{\"realm_access\":{\"roles\":[\"a\",\"b\"]},\"a.b\":\"dotted\","
        "\"scope\":\"x y\"}");
    struct json_object *v;

    (void)state;
    v = po_json_path(o, "realm_access.roles");
    assert_non_null(v);
    assert_true(json_object_is_type(v, json_type_array));
    v = po_json_path(o, "a.b");
    assert_string_equal(json_object_get_string(v), "dotted");
    assert_null(po_json_path(o, "realm_access.missing"));
    assert_null(po_json_path(o, "scope.x"));
    assert_null(po_json_path(o, ""));
    assert_null(po_json_path(o, "."));
    json_object_put(o);
}

/* Introspection responses go through the same claim checks, exp optional. */
static void test_check_claims(void **state)
{
    static const struct {
        const char *json;
        unsigned flags;
        po_rc want;
    } cases[] = {
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", 0, PO_OK},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", 1, PO_JWT_MISSING_CLAIM},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000000.5}", 0,
         PO_OK},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1799999900}", 0,
         PO_JWT_EXPIRED},
        {"{\"iss\":5,\"aud\":\"" AUD "\"}", 0, PO_JWT_WRONG_ISSUER},
        {"{\"aud\":\"" AUD "\"}", 0, PO_JWT_WRONG_ISSUER},
        {"{\"iss\":\"" ISS "\"}", 0, PO_JWT_WRONG_AUDIENCE},
        {"{\"iss\":\"" ISS "\",\"aud\":[1,2]}", 0, PO_JWT_WRONG_AUDIENCE},
        {"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"nbf\":true}", 0,
         PO_JWT_MALFORMED},
        /* introspection: iss and aud checked where present */
        {"{}", PO_CLAIMS_WHERE_PRESENT, PO_OK},
        {"{\"iss\":\"x\"}", PO_CLAIMS_WHERE_PRESENT, PO_JWT_WRONG_ISSUER},
        {"{\"aud\":[\"x\"]}", PO_CLAIMS_WHERE_PRESENT, PO_JWT_WRONG_AUDIENCE},
        {"{\"exp\":1}", PO_CLAIMS_WHERE_PRESENT, PO_JWT_EXPIRED},
        /* the sender's numbers at the ends of the range: the messages'
         * arithmetic must not overflow (fuzz_claims) */
        {"{\"exp\":-9223372036854775808}", PO_CLAIMS_WHERE_PRESENT,
         PO_JWT_EXPIRED},
        {"{\"exp\":-110000900099900099000,\"nbf\":5}", PO_CLAIMS_WHERE_PRESENT,
         PO_JWT_EXPIRED},
        {"{\"nbf\":9223372036854775807}", PO_CLAIMS_WHERE_PRESENT,
         PO_JWT_NOT_YET_VALID},
        {"{\"iat\":9223372036854775807}", PO_CLAIMS_WHERE_PRESENT,
         PO_JWT_NOT_YET_VALID},
        {"{\"exp\":9223372036854775807,\"nbf\":-9223372036854775808}",
         PO_CLAIMS_WHERE_PRESENT, PO_OK},
    };
    po_jwt_policy pol = {ISS, AUD, 0, 60, NULL};
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(cases); i++) {
        struct json_object *o = json_tokener_parse(cases[i].json);
        po_err err;
        po_rc rc;

        assert_non_null(o);
        rc = po_jwt_check_claims(o, &pol, NOW, cases[i].flags, &err);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].json, po_rc_name(rc),
                     po_rc_name(cases[i].want));
        if (rc == PO_JWT_EXPIRED && strstr(cases[i].json, "-9") != NULL &&
            strstr(err.msg, "expired 9223372036854775807 s ago") == NULL)
            fail_msg("%s: \"%s\"", cases[i].json, err.msg);
        json_object_put(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alg_lists),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_attacks),
        cmocka_unit_test(test_looks_like),
        cmocka_unit_test(test_claims_paths),
        cmocka_unit_test(test_check_claims),
    };
    return cmocka_run_group_tests_name("jwt", tests, group_setup,
                                       group_teardown);
}
