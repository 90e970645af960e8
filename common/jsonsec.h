/*
 * jsonsec.h - JSON texts that may hold secrets (tokens, password verifiers),
 * parsed with json-c so that no copy json-c made is freed uncleansed.
 */
#ifndef PO_JSONSEC_H
#define PO_JSONSEC_H

#include <stddef.h>
#include "err.h"

struct json_object;

/* Parse len bytes of text as one JSON value followed only by white space,
 * nested at most depth deep.  The tokener's string buffer is sized for the
 * whole text before parsing, so json-c never reallocates (and frees
 * uncleansed) a buffer that held part of it; that buffer, and a partial
 * tree left by a failed parse, are cleansed before they are freed.  On
 * PO_OK *out is the value (free it with po_json_put_secret).  Otherwise
 * PO_MALFORMED_RESPONSE with the reason ("truncated JSON", "invalid JSON:
 * ...", "data after the JSON value", "empty"), or PO_NOMEM. */
po_rc po_json_parse_secret(const char *text, size_t len, int depth,
                           struct json_object **out, po_err *err);

/* Overwrite every string in the tree o, then release it.  NULL is
 * allowed. */
void po_json_put_secret(struct json_object *o);

#endif
