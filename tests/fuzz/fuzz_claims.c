/*
 * fuzz_claims - claim sets others wrote: the extra members of a token
 * response and the claims of an RFC 7662 introspection answer, as the
 * account checks and verify = introspect read them: po_claim_strings (the
 * roles and scopes), po_json_path, and po_jwt_check_claims with the
 * introspection flags (iss and aud where present) and the JWT ones.
 *
 * Input: the claim path (first line: roles_claim or user_claim, which the
 * configuration keeps free of control characters), then the JSON text.
 *
 * Properties: a claim read as strings gives non-empty words without
 * white space when it came from one string; a failure leaves the list
 * empty; messages are printable.
 */
#include "fuzz.h"

#include <json.h>

#include "claims.h"
#include "jwt.h"

#define NOW 1800000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    char *path = fuzz_line(&in, NULL);
    char *json = fuzz_rest(&in, NULL);
    po_jwt_policy pol = {"https://issuer.test/realm", "pam-client", 0, -1,
                         NULL};
    po_strlist l = {NULL, 0};
    json_object *root, *v;
    po_err err;
    po_rc rc;
    size_t i;

    po_err_clear(&err);
    rc = po_claim_strings(json, "fuzz", path, &l, &err);
    FUZZ_CHECK(!fuzz_no_controls(path) || fuzz_no_controls(err.msg),
               "control character in \"%s\"", err.msg);
    root = json_tokener_parse(json);
    v = root != NULL && json_object_is_type(root, json_type_object)
            ? po_json_path(root, path)
            : NULL;
    if (rc == PO_OK) {
        FUZZ_CHECK(v != NULL, "strings of a claim po_json_path does not find");
        for (i = 0; i < l.n; i++) {
            FUZZ_CHECK(l.v[i] != NULL, "NULL string");
            if (json_object_is_type(v, json_type_string))
                FUZZ_CHECK(l.v[i][0] != '\0' &&
                               strpbrk(l.v[i], " \t\n\r\f\v") == NULL,
                           "a word with white space: \"%s\"", l.v[i]);
        }
    } else {
        FUZZ_CHECK(l.n == 0 && l.v == NULL, "a failure left strings");
    }
    po_strlist_free(&l);

    if (root != NULL && json_object_is_type(root, json_type_object)) {
        FUZZ_CHECK(v != root, "the path named the root");
        po_err_clear(&err);
        rc =
            po_jwt_check_claims(root, &pol, NOW, PO_CLAIMS_WHERE_PRESENT, &err);
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        po_err_clear(&err);
        rc = po_jwt_check_claims(root, &pol, NOW, PO_CLAIMS_EXP_REQUIRED, &err);
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        pol.issuer = NULL;
        po_err_clear(&err);
        rc =
            po_jwt_check_claims(root, &pol, NOW, PO_CLAIMS_WHERE_PRESENT, &err);
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        (void)rc;
    }
    if (root != NULL)
        json_object_put(root);
    free(json);
    free(path);
    return 0;
}
