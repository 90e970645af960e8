/* secret.c - cleansing and bounded buffers. */
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void po_cleanse(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}

void po_secret_free(char *s)
{
    if (s == NULL)
        return;
    po_cleanse(s, strlen(s));
    free(s);
}

void po_secret_clear(char **sp)
{
    if (sp == NULL)
        return;
    po_secret_free(*sp);
    *sp = NULL;
}

int po_mem_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    volatile unsigned char diff = 0;
    size_t i;

    for (i = 0; i < n; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

int po_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la != lb)
        return 0;
    return po_mem_equal(a, b, la);
}

char *po_strdup(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

char *po_strndup(const char *s, size_t n)
{
    return strndup(s, n);
}

po_rc po_str_replace(char **dst, const char *src)
{
    char *copy = NULL;

    if (src != NULL && (copy = strdup(src)) == NULL)
        return PO_NOMEM;
    po_secret_free(*dst);
    *dst = copy;
    return PO_OK;
}

void po_buf_init(po_buf *b, size_t max, int secret)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->secret = secret;
}

/* Make room for len + n + 1 bytes.  A secret buffer is never realloc'd in
 * place: the old storage is copied, cleansed and freed. */
static po_rc buf_reserve(po_buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (n > b->max || b->len > b->max - n)
        return PO_TOO_LARGE;
    need = b->len + n + 1;
    if (need <= b->cap)
        return PO_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    if ((p = malloc(cap)) == NULL)
        return PO_NOMEM;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len + 1);
        if (b->secret)
            po_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return PO_OK;
}

po_rc po_buf_append(po_buf *b, const void *p, size_t n)
{
    po_rc rc;

    if ((rc = buf_reserve(b, n)) != PO_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return PO_OK;
}

po_rc po_buf_puts(po_buf *b, const char *s)
{
    return po_buf_append(b, s, strlen(s));
}

po_rc po_buf_printf(po_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    po_rc rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PO_USAGE;
    if ((rc = buf_reserve(b, (size_t)n)) != PO_OK)
        return rc;
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PO_OK;
}

po_rc po_buf_detach(po_buf *b, char **out)
{
    po_rc rc;

    if (b->data == NULL && (rc = buf_reserve(b, 0)) != PO_OK)
        return rc;
    b->data[b->len] = '\0';
    *out = b->data;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return PO_OK;
}

void po_buf_free(po_buf *b)
{
    if (b->data != NULL) {
        if (b->secret)
            po_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
