/*
 * claims.h - string lists read from a JSON claims set: the members of a
 * token response beside the tokens (Fluent's "Roles"), or the claims of a
 * token that verify.h proved.  Which set may be trusted for what is the
 * caller's decision; this module only reads.
 */
#ifndef PO_CLAIMS_H
#define PO_CLAIMS_H

#include <stddef.h>
#include "err.h"

struct json_object;

#define PO_CLAIM_PATH_MAX 256

/* A list of malloc'd strings. */
typedef struct po_strlist {
    char **v;
    size_t n;
} po_strlist;

/* Free the strings and the list; l is left empty. */
void po_strlist_free(po_strlist *l);

/* Append the whitespace-separated words of s (NULL: none) to out. */
po_rc po_strlist_split(const char *s, po_strlist *out);

/* Whether l holds s (exact, case-sensitive). */
int po_strlist_has(const po_strlist *l, const char *s);

/* The member of obj named path, or else the value at path read as a dotted
 * path through nested objects ("realm_access.roles"); NULL when absent. */
struct json_object *po_json_path(struct json_object *obj, const char *path);

/* Append to out the strings of claim path in the JSON object text json: an
 * array of strings, or one string of space-separated words.  source names
 * the claims set in messages ("token response").  PO_NOT_FOUND when json
 * is empty or has no such claim, PO_MALFORMED_RESPONSE when json is not an
 * object or the claim has another type, PO_CONFIG for an empty or over-long
 * path, PO_NOMEM.  On failure out is left empty. */
po_rc po_claim_strings(const char *json, const char *source, const char *path,
                       po_strlist *out, po_err *err);

#endif
