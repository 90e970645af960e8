/* b64.c - strict base64 and base64url. */
#include "b64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char std_tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c in the chosen alphabet, or -1. */
static int value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int po_b64url_char(unsigned char c)
{
    return value(c, 1) >= 0;
}

/* n characters of in (padding already stripped) into a new buffer. */
static po_rc decode(const char *in, size_t n, int url, po_rc bad,
                    const char *what, unsigned char **out, size_t *outlen,
                    po_err *err)
{
    const char *name = url ? "base64url" : "base64";
    unsigned char *buf = NULL;
    uint32_t acc = 0;
    size_t i, o = 0, cap = n / 4 * 3 + 3;
    int bits = 0, v;
    po_rc rc = PO_OK;

    if (n % 4 == 1) {
        rc = po_fail(err, bad, "%s: bad %s: impossible length", what, name);
        goto out;
    }
    if ((buf = malloc(cap)) == NULL) {
        rc = po_fail(err, PO_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if ((v = value((unsigned char)in[i], url)) < 0) {
            rc = po_fail(err, bad, "%s: bad %s: %s at offset %zu", what, name,
                         in[i] == '=' ? "padding" : "invalid character", i);
            goto out;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Left-over bits must be zero: one encoding per byte string. */
    if ((acc & ((1u << bits) - 1u)) != 0) {
        rc = po_fail(err, bad, "%s: bad %s: non-canonical last character", what,
                     name);
        goto out;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    buf = NULL;
out:
    if (buf != NULL) {
        po_cleanse(buf, cap);
        free(buf);
    }
    return rc;
}

po_rc po_b64url_decode(const char *in, size_t n, const char *what,
                       unsigned char **out, size_t *outlen, po_err *err)
{
    *out = NULL;
    *outlen = 0;
    return decode(in, n, 1, PO_JWT_MALFORMED, what, out, outlen, err);
}

po_rc po_b64_decode(const char *in, size_t n, const char *what,
                    unsigned char **out, size_t *outlen, po_err *err)
{
    size_t pad = 0;

    *out = NULL;
    *outlen = 0;
    if (n % 4 != 0)
        return po_fail(err, PO_MALFORMED_RESPONSE,
                       "%s: bad base64: length %zu is not a multiple of 4",
                       what, n);
    while (pad < 2 && pad < n && in[n - 1 - pad] == '=')
        pad++;
    return decode(in, n - pad, 0, PO_MALFORMED_RESPONSE, what, out, outlen,
                  err);
}

po_rc po_b64_append(po_buf *out, const void *in, size_t n)
{
    const unsigned char *p = in;
    char q[4];
    size_t i;
    po_rc rc = PO_OK;

    for (i = 0; i < n && rc == PO_OK; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        q[0] = std_tab[(v >> 18) & 63];
        q[1] = std_tab[(v >> 12) & 63];
        q[2] = i + 1 < n ? std_tab[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? std_tab[v & 63] : '=';
        rc = po_buf_append(out, q, 4);
    }
    po_cleanse(q, sizeof(q));
    return rc;
}

po_rc po_b64url_encode(const void *in, size_t n, char **out, po_err *err)
{
    const unsigned char *p = in;
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0;
    char *buf;

    *out = NULL;
    if (n > SIZE_MAX / 4 * 3 - 4 || (buf = malloc(n / 3 * 4 + 5)) == NULL)
        return po_fail(err, PO_NOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            buf[o++] = url_tab[(acc >> bits) & 63u];
        }
    }
    if (bits > 0)
        buf[o++] = url_tab[(acc << (6 - bits)) & 63u];
    buf[o] = '\0';
    *out = buf;
    return PO_OK;
}
