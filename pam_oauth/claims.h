/*
 * claims.h - lists of strings from the token obtained at authentication,
 * for the account checks (account.c).
 */
#ifndef PO_PAM_CLAIMS_H
#define PO_PAM_CLAIMS_H

#include <stddef.h>

#include "err.h"
#include "internal.h"

typedef struct po_pam_strlist {
    char **v;
    size_t n;
} po_pam_strlist;

#pragma GCC visibility push(hidden)

/* Free the strings and the list; l is left empty. */
void po_pam_strlist_free(po_pam_strlist *l);

/* Append the whitespace-separated words of s to out. */
po_rc po_pam_split_words(const char *s, po_pam_strlist *out);

/* Whether l holds s (exact, case-sensitive). */
int po_pam_strlist_has(const po_pam_strlist *l, const char *s);

/* The strings of claim path for st from source: PO_ROLES_RESPONSE, a
 * member of the token response; PO_ROLES_TOKEN, a claim of the token that
 * the profile's verify proved at authentication (st->verified_claims).  A
 * name, or a dotted path into nested objects, holding an array of strings
 * or a space-separated string.  PO_NOT_FOUND when the source does not
 * have it (or, for PO_ROLES_TOKEN, nothing was verified),
 * PO_MALFORMED_RESPONSE when it has another type.  Claims of a token that
 * was not verified are never read. */
po_rc po_pam_claim(const po_pam_state *st, po_roles_source source,
                   const char *path, po_pam_strlist *out, po_err *err);

#pragma GCC visibility pop

#endif
