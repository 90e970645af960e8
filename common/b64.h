/*
 * b64.h - base64 (RFC 4648 section 4, padded) and base64url (section 5,
 * unpadded), strict in both directions.
 *
 * No library: the helper links this for client_secret_basic without
 * loading libcrypto.  Decoders accept exactly one encoding per byte
 * string: the wrong alphabet, misplaced or missing padding, a length no
 * encoder produces and non-zero left-over bits are all refused.
 */
#ifndef PO_B64_H
#define PO_B64_H

#include <stddef.h>
#include "err.h"
#include "secret.h"

/* Append the padded base64 of n bytes at p to out (PO_TOO_LARGE at out's
 * cap, PO_NOMEM). */
po_rc po_b64_append(po_buf *out, const void *p, size_t n);

/* Decode n bytes of padded base64 into *out (malloc'd, n / 4 * 3 + 1 bytes
 * at most, NUL-terminated for convenience) with *outlen the decoded size.
 * Bad input is PO_MALFORMED_RESPONSE with a message that names what and
 * the offset, never the data. */
po_rc po_b64_decode(const char *in, size_t n, const char *what,
                    unsigned char **out, size_t *outlen, po_err *err);

/* Strict base64url without padding: '=' and any byte outside
 * [A-Za-z0-9_-] are refused, as is a length of 4n+1 and non-zero bits left
 * over in the last character.  *out is malloc'd (NUL-terminated) and
 * *outlen set.  PO_JWT_MALFORMED on bad input (what names the part for the
 * message), PO_NOMEM. */
po_rc po_b64url_decode(const char *in, size_t n, const char *what,
                       unsigned char **out, size_t *outlen, po_err *err);

/* Whether c is a base64url character. */
int po_b64url_char(unsigned char c);

/* The base64url encoding (no padding) of n bytes, into *out (malloc'd,
 * NUL-terminated).  PO_NOMEM. */
po_rc po_b64url_encode(const void *in, size_t n, char **out, po_err *err);

#endif
