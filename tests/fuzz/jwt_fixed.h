/*
 * jwt_fixed.h - the fixed key set of fuzz_jwt, written by
 * `tests/fuzz/make-seeds --new-jwt-keys` with the tokens of
 * tests/fuzz/corpus/fuzz_jwt/ that it signs.  Public keys only: the
 * private halves were thrown away after signing the seeds.
 */
#ifndef PO_FUZZ_JWT_FIXED_H
#define PO_FUZZ_JWT_FIXED_H

/* when the seeds were made: their claims are valid then */
#define FUZZ_JWT_NOW 1796138593LL
#define FUZZ_JWT_ISSUER "https://issuer.fuzz/jwt"
#define FUZZ_JWT_AUDIENCE "fuzz-client"

static const char fuzz_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"sXijxnn4SCX_"
    "Kjy3JJu3r49Z9Ltjd2J7IcDnbdnmZ2p"
    "n8f78SjgJt1KiWLk0-5J7TRudaA9lih_9MMrb_YrIbob8sEvhjMlOR2WytXpXvkMK32SnB"
    "-GSe0sHbGvM33TVSVePne51eNvc76Per2R2DQ3ULVv8goHZakh_ePzpkdPQbryN8fxsqbF"
    "xyxtbK5Sg7UH1mFjONgAmyzwK2njQ0jzZguAFm0rA2jku0ue_AFtZHMMng4B3WpNZLDsyZ"
    "2o0KB8nU-bVSdlPZNtLbY-TzINUOlXeNXl83etyfW62Jk1ktxBUv-RKeR3kaaLuvrQxsqa"
    "BwDaAVX9IoP6fTd8SWw\",\"e\":\"AQAB\",\"kid\":\"rsa-1-c4364f9f\",\"use\":"
    "\"sig\"},{\""
    "kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"6HfoO6QN6JNc_6XF7d0Z4_TxD9WfM9Wi7_"
    "8IPEJp-"
    "20\",\"y\":\"ZjNRSLIMEdW0XyKU15mRlB1d_RqriKogY8odC-kSsaA\",\"kid\":\"p256-"
    "2-96"
    "6c731d\",\"use\":\"sig\"},{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":"
    "\"eKcGTHibpqntfeaEcC"
    "I49hw675uU2Vq7rTcEVNni_CNoTpiqIi0tkM3Aq7xzCOcZ\",\"y\":\"AmXyTK8d-QiMyNgTd"
    "HwaLqtkO1D49-yqvl_g2pubFWsp499PI4ZGy2sYasv3t5jn\",\"kid\":\"p384-3-409f3ee"
    "b\",\"use\":\"sig\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
    "\"ZmdRK2PW3h4vc4OHx7ph"
    "b1LraHmiWVUvWJ-QnLy_Nso\",\"kid\":\"ed25519-4-a32d8ee6\",\"use\":\"sig\"}]"
    "}";

#endif
