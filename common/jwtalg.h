/*
 * jwtalg.h - the JWS algorithms pam-oauth accepts (RFC 7518 names), as an
 * enum and a set, with no dependency on OpenSSL.
 */
#ifndef PO_JWTALG_H
#define PO_JWTALG_H

#include <stddef.h>
#include "err.h"

#define PO_JWT_ALGORITHMS_DEFAULT "RS256 RS384 RS512 PS256 ES256 ES384 EdDSA"
#define PO_JWT_KEYS_TRIED_MAX 8 /* keys tried for a token without kid  */

typedef enum po_jwt_alg {
    PO_JWT_RS256 = 0,
    PO_JWT_RS384,
    PO_JWT_RS512,
    PO_JWT_PS256,
    PO_JWT_ES256,
    PO_JWT_ES384,
    PO_JWT_EDDSA,
    PO_JWT_ALG_COUNT
} po_jwt_alg;

/* A set of algorithms: bit (1u << alg). */
typedef unsigned po_jwt_algset;
#define PO_JWT_ALG_BIT(a) (1u << (unsigned)(a))

/* The JWS name of alg ("RS256", "EdDSA"), or "?" */
const char *po_jwt_alg_name(po_jwt_alg alg);

/* The algorithm named name (case-sensitive, as RFC 7518 spells it).
 * "none", HS256/384/512 and anything unknown are PO_JWT_ALG_REFUSED. */
po_rc po_jwt_alg_parse(const char *name, po_jwt_alg *out, po_err *err);

/* Parse a space/comma-separated list of algorithm names into *out.  An
 * empty list, "none", HS* or an unknown name is PO_CONFIG naming it. */
po_rc po_jwt_algset_parse(const char *list, po_jwt_algset *out, po_err *err);

/* What verifying an algorithm needs. */
typedef struct po_jwt_alg_desc {
    const char *name;   /* the JWS name                          */
    const char *kty;    /* the JWK key type it needs             */
    const char *crv;    /* NULL: no curve                        */
    const char *digest; /* NULL: EdDSA signs the message         */
    size_t half;        /* ECDSA: bytes of r and of s            */
} po_jwt_alg_desc;

/* The description of alg, which must be < PO_JWT_ALG_COUNT. */
const po_jwt_alg_desc *po_jwt_alg_info(po_jwt_alg alg);

#endif
