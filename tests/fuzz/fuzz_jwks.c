/*
 * fuzz_jwks - what an issuer publishes: a JWK Set document (po_jwks_parse
 * builds OpenSSL keys from RSA, EC and OKP members) and the key set's
 * Cache-Control header (po_jwks_max_age).  The same bytes go to both.
 * (The discovery document is fuzz_discovery's.)
 *
 * Input: one byte (ignored: it was allow_http for the discovery document,
 * and is kept so that the corpus keeps its meaning), then the document.
 *
 * Properties: at most PO_JWKS_KEYS_MAX keys, each with an OpenSSL key of
 * the type its kty names, a curve matching its crv, and each fits exactly
 * the algorithms its type allows; a lifetime stays in its bounds; messages
 * are printable.
 */
#include "fuzz.h"

#include <openssl/evp.h>

#include "jwks.h"
#include "jwt.h"

#define ISSUER "https://issuer.test/realm"

static void check_key(const po_jwk *k)
{
    static const po_jwt_alg algs[] = {PO_JWT_RS256, PO_JWT_RS384, PO_JWT_RS512,
                                      PO_JWT_PS256, PO_JWT_ES256, PO_JWT_ES384,
                                      PO_JWT_EDDSA};
    size_t i, fits = 0;

    FUZZ_CHECK(k->pkey != NULL && k->kty != NULL, "a key without pkey or kty");
    if (strcmp(k->kty, "RSA") == 0) {
        FUZZ_CHECK(EVP_PKEY_is_a(k->pkey, "RSA"), "RSA JWK, other key");
        FUZZ_CHECK(EVP_PKEY_get_bits(k->pkey) >= PO_RSA_BITS_MIN,
                   "RSA key of %d bits", EVP_PKEY_get_bits(k->pkey));
    } else if (strcmp(k->kty, "EC") == 0) {
        FUZZ_CHECK(EVP_PKEY_is_a(k->pkey, "EC"), "EC JWK, other key");
        FUZZ_CHECK(k->crv != NULL && (strcmp(k->crv, "P-256") == 0 ||
                                      strcmp(k->crv, "P-384") == 0),
                   "EC curve");
    } else {
        FUZZ_CHECK(strcmp(k->kty, "OKP") == 0, "kty %s", k->kty);
        FUZZ_CHECK(EVP_PKEY_is_a(k->pkey, "ED25519"), "OKP JWK, other key");
    }
    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        fits += po_jwk_check_alg(k, algs[i], NULL) == PO_OK;
    FUZZ_CHECK(fits <= 4, "a key fits %zu algorithms", fits);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    char *text;
    po_jwks ks;
    size_t skipped = 0, i;
    po_err err;
    long age;
    po_rc rc;

    (void)fuzz_byte(&in);
    text = fuzz_rest(&in, &size);
    po_err_clear(&err);
    rc = po_jwks_parse(text, size, &ks, &skipped, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(ks.n <= PO_JWKS_KEYS_MAX, "%zu keys", ks.n);
        for (i = 0; i < ks.n; i++)
            check_key(&ks.keys[i]);
        po_jwks_free(&ks);
    } else {
        FUZZ_CHECK(ks.n == 0 && ks.keys == NULL, "a failure left keys");
    }

    age = po_jwks_max_age(text);
    FUZZ_CHECK(age >= PO_JWKS_TTL_MIN && age <= PO_JWKS_TTL_MAX, "max-age %ld",
               age);
    free(text);
    return 0;
}
