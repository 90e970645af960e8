/*
 * fuzz_jwt - a JWT as pam_oauth verifies it: po_jwt_looks_like (verify =
 * auto's choice), po_jwt_parse, key selection and signature checks with
 * every candidate key of a fixed JWK Set (RSA, EC P-256 and P-384,
 * Ed25519: jwt_fixed.h), the claim checks of a JWT and of an introspection
 * answer, and the whole po_jwt_verify.
 *
 * Input: the token (up to the first NUL, as a C string).  The seeds are
 * tokens signed with the fixed keys (make-seeds), so the fuzzer starts from
 * valid signatures; a mutated token fails its signature, but every parser
 * path before and after the signature runs (the claims are checked on
 * their own as well).
 *
 * Properties: whatever parses looks like a JWT; a verified token has an
 * allowed algorithm, a key with its kid and claims that pass the checks;
 * no message holds a control character.
 */
#include "fuzz.h"

#include <json.h>

#include "jwks.h"
#include "jwt.h"
#include "jwt_fixed.h"

static po_jwks keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t skipped = 0;
    po_err err;

    (void)argc;
    (void)argv;
    if (po_jwks_parse(fuzz_jwks, strlen(fuzz_jwks), &keys, &skipped, &err) !=
            PO_OK ||
        keys.n == 0 || skipped != 0) {
        fprintf(stderr, "fuzz_jwt: the fixed key set: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void msg_ok(const po_err *err)
{
    FUZZ_CHECK(fuzz_no_controls(err->msg), "control character in \"%s\"",
               err->msg);
}

/* Everything the verifier does with a parsed token, step by step. */
static void steps(const po_jwt *j, const po_jwt_policy *pol)
{
    const po_jwk *cand[PO_JWKS_KEYS_MAX];
    size_t n = 0, i;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    rc = po_jwt_select_keys(j, &keys, cand, PO_JWKS_KEYS_MAX, &n, &err);
    msg_ok(&err);
    if (rc == PO_OK) {
        FUZZ_CHECK(n > 0 && n <= keys.n, "%zu candidate keys", n);
        for (i = 0; i < n; i++) {
            FUZZ_CHECK(po_jwk_check_alg(cand[i], j->alg, &err) == PO_OK,
                       "a selected key does not fit the algorithm");
            rc = po_jwt_verify_sig(j, cand[i], &err);
            msg_ok(&err);
            FUZZ_CHECK(rc == PO_OK || rc == PO_JWT_BAD_SIGNATURE ||
                           rc == PO_JWT_ALG_REFUSED || rc == PO_NOMEM,
                       "signature check: %s", po_rc_name(rc));
        }
    }
    rc = po_jwt_check_claims(j->claims, pol, FUZZ_JWT_NOW,
                             PO_CLAIMS_EXP_REQUIRED, &err);
    msg_ok(&err);
    rc = po_jwt_check_claims(j->claims, pol, FUZZ_JWT_NOW,
                             PO_CLAIMS_WHERE_PRESENT, &err);
    msg_ok(&err);
    (void)rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    po_jwt_policy pol = {FUZZ_JWT_ISSUER, FUZZ_JWT_AUDIENCE, 0, -1, NULL};
    char *tok = fuzz_rest(&in, NULL);
    po_jwt j, v;
    po_err err;
    int looks;
    po_rc rc;

    looks = po_jwt_looks_like(tok);
    po_err_clear(&err);
    rc = po_jwt_parse(tok, &j, &err);
    msg_ok(&err);
    if (rc == PO_OK) {
        FUZZ_CHECK(looks, "parsed but does not look like a JWT");
        FUZZ_CHECK(j.header != NULL && j.claims != NULL && j.sig_len > 0,
                   "parsed without header, claims or signature");
        FUZZ_CHECK(json_object_is_type(j.claims, json_type_object),
                   "claims not an object");
        steps(&j, &pol);
        po_jwt_free(&j);
    }
    /* the whole check, as pam_oauth makes it (with typ required too) */
    memset(&v, 0, sizeof(v));
    rc = po_jwt_verify(tok, &keys, &pol, FUZZ_JWT_NOW, &v, &err);
    msg_ok(&err);
    if (rc == PO_OK) {
        FUZZ_CHECK(looks, "verified but does not look like a JWT");
        FUZZ_CHECK(v.kid == NULL || v.kid[0] != '\0', "empty kid verified");
        FUZZ_CHECK(po_jwt_check_claims(v.claims, &pol, FUZZ_JWT_NOW,
                                       PO_CLAIMS_EXP_REQUIRED, NULL) == PO_OK,
                   "verified claims fail the checks");
        po_jwt_free(&v);
    }
    pol.typ = "at+jwt";
    rc = po_jwt_verify(tok, &keys, &pol, FUZZ_JWT_NOW, &v, &err);
    msg_ok(&err);
    if (rc == PO_OK) {
        FUZZ_CHECK(v.typ != NULL, "typ required but absent");
        po_jwt_free(&v);
    }
    free(tok);
    return 0;
}
