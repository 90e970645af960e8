/* jwtalg.c - the JWS algorithms pam-oauth accepts, by name.
 *
 * Kept apart from jwt.c, which needs OpenSSL, so that configuration
 * checking can name algorithms without linking libcrypto (the helper's
 * cache hit loads no crypto library). */
#include "jwtalg.h"

#include <string.h>
#include <strings.h>

static const po_jwt_alg_desc algs[PO_JWT_ALG_COUNT] = {
    [PO_JWT_RS256] = {"RS256", "RSA", NULL, "SHA256", 0},
    [PO_JWT_RS384] = {"RS384", "RSA", NULL, "SHA384", 0},
    [PO_JWT_RS512] = {"RS512", "RSA", NULL, "SHA512", 0},
    [PO_JWT_PS256] = {"PS256", "RSA", NULL, "SHA256", 0},
    [PO_JWT_ES256] = {"ES256", "EC", "P-256", "SHA256", 32},
    [PO_JWT_ES384] = {"ES384", "EC", "P-384", "SHA384", 48},
    [PO_JWT_EDDSA] = {"EdDSA", "OKP", "Ed25519", NULL, 0},
};

const char *po_jwt_alg_name(po_jwt_alg alg)
{
    if ((int)alg < 0 || alg >= PO_JWT_ALG_COUNT)
        return "?";
    return algs[alg].name;
}

po_rc po_jwt_alg_parse(const char *name, po_jwt_alg *out, po_err *err)
{
    char shown[40];
    int i;

    for (i = 0; i < PO_JWT_ALG_COUNT; i++) {
        if (strcmp(name, algs[i].name) == 0) {
            *out = (po_jwt_alg)i;
            return PO_OK;
        }
    }
    po_safe_text(name, shown, sizeof(shown));
    if (strcasecmp(name, "none") == 0)
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "token algorithm \"%s\" (unsigned) is refused", shown);
    if (strncasecmp(name, "HS", 2) == 0)
        return po_fail(err, PO_JWT_ALG_REFUSED,
                       "token algorithm \"%s\" (HMAC, a shared secret) is "
                       "refused: only public-key signatures are accepted",
                       shown);
    return po_fail(err, PO_JWT_ALG_REFUSED,
                   "token algorithm \"%s\" is not supported", shown);
}

po_rc po_jwt_algset_parse(const char *list, po_jwt_algset *out, po_err *err)
{
    char word[32], shown[40];
    const char *p = list, *w;
    po_jwt_algset set = 0;
    po_jwt_alg a;
    size_t len;
    po_err e;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        for (w = p; *p != '\0' && *p != ' ' && *p != '\t' && *p != ','; p++)
            ;
        len = (size_t)(p - w);
        if (len == 0)
            continue;
        if (len >= sizeof(word)) {
            memcpy(word, w, sizeof(word) - 1);
            word[sizeof(word) - 1] = '\0';
            po_safe_text(word, shown, sizeof(shown));
            return po_fail(err, PO_CONFIG,
                           "jwt_algorithms: \"%s\" is not an algorithm", shown);
        }
        memcpy(word, w, len);
        word[len] = '\0';
        if (po_jwt_alg_parse(word, &a, &e) != PO_OK) {
            po_safe_text(word, shown, sizeof(shown));
            return po_fail(err, PO_CONFIG,
                           "jwt_algorithms: \"%s\" cannot be allowed (only "
                           "%s)",
                           shown, PO_JWT_ALGORITHMS_DEFAULT);
        }
        set |= PO_JWT_ALG_BIT(a);
    }
    if (set == 0)
        return po_fail(err, PO_CONFIG, "jwt_algorithms: empty list");
    *out = set;
    return PO_OK;
}

const po_jwt_alg_desc *po_jwt_alg_info(po_jwt_alg alg)
{
    return &algs[alg];
}
