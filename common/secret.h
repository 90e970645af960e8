/*
 * secret.h - memory that may hold secrets, and bounded buffers.
 *
 * Anything that ever held a password, client secret, access token or
 * refresh token is cleansed before it is freed.  po_buf is the only growing
 * buffer in common/: it has a maximum size fixed at creation, so no input
 * can make it grow without bound (curl's dynbuf, OpenSSH's sshbuf).
 */
#ifndef PO_SECRET_H
#define PO_SECRET_H

#include <stddef.h>
#include "err.h"

/* Overwrite n bytes at p with zeros in a way the compiler cannot drop. */
void po_cleanse(void *p, size_t n);

/* Cleanse strlen(s) bytes of s, then free it.  NULL is allowed. */
void po_secret_free(char *s);

/* Replace *sp with NULL after po_secret_free(*sp). */
void po_secret_clear(char **sp);

/* Whether strings a and b are equal, compared in time that depends only on
 * their lengths (for tokens). */
int po_secret_equal(const char *a, const char *b);

/* Whether the n bytes at a and b are equal, compared in time that depends
 * only on n (for hashes and MACs). */
int po_mem_equal(const void *a, const void *b, size_t n);

/* strdup that returns NULL for a NULL argument or when out of memory. */
char *po_strdup(const char *s);

/* strndup that returns NULL when out of memory. */
char *po_strndup(const char *s, size_t n);

/* Replace the string *dst with a copy of src (NULL allowed); the old value
 * is cleansed and freed.  Returns PO_NOMEM on allocation failure, leaving
 * *dst unchanged. */
po_rc po_str_replace(char **dst, const char *src);

/* A bounded, NUL-terminated growing buffer.  When secret is set, every
 * reallocation and the final free cleanse the old storage. */
typedef struct po_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len; /* bytes used, excluding the NUL                */
    size_t cap; /* bytes allocated                              */
    size_t max; /* hard cap on len                              */
    int secret; /* cleanse on realloc and free                  */
} po_buf;

/* Initialise an empty buffer that may hold at most max bytes. */
void po_buf_init(po_buf *b, size_t max, int secret);

/* Append n bytes.  PO_TOO_LARGE when len + n would exceed max (the buffer
 * is unchanged), PO_NOMEM when allocation fails. */
po_rc po_buf_append(po_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. */
po_rc po_buf_puts(po_buf *b, const char *s);

/* Append formatted text (same errors as po_buf_append). */
po_rc po_buf_printf(po_buf *b, const char *fmt, ...) PO_PRINTF(2, 3);

/* Take ownership of the data (NUL-terminated, never NULL on PO_OK: an empty
 * buffer yields ""), leaving b empty.  The caller frees it (with
 * po_secret_free when b was secret). */
po_rc po_buf_detach(po_buf *b, char **out);

/* Cleanse (when secret) and free the storage; b is left empty and usable. */
void po_buf_free(po_buf *b);

#endif
