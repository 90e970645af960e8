/* qr.c - QR codes drawn with half blocks, libqrencode loaded per call. */
#define _GNU_SOURCE
#include "qr.h"

#include <dlfcn.h>
#include <errno.h>
#include <qrencode.h> /* types only: libqrencode is not linked */
#include <stdio.h>
#include <string.h>

#define FULL "\xe2\x96\x88"  /* U+2588 */
#define UPPER "\xe2\x96\x80" /* U+2580 */
#define LOWER "\xe2\x96\x84" /* U+2584 */

typedef QRcode *(*encode_fn)(const char *string, int version, QRecLevel level,
                             QRencodeMode hint, int casesensitive);
typedef void (*free_fn)(QRcode *qrcode);

/* Whether the module at (x, y) of a symbol of width w drawn with the quiet
 * zone is light: the border is, and so is a module whose bit 0 is clear. */
static int light(const QRcode *q, int x, int y)
{
    x -= PO_QR_QUIET;
    y -= PO_QR_QUIET;
    if (x < 0 || y < 0 || x >= q->width || y >= q->width)
        return 1;
    return !(q->data[(size_t)y * (size_t)q->width + (size_t)x] & 1);
}

static po_rc draw(const QRcode *q, po_buf *out)
{
    int size = q->width + 2 * PO_QR_QUIET, x, y;
    po_rc rc = PO_OK;

    for (y = 0; y < size && rc == PO_OK; y += 2) {
        for (x = 0; x < size && rc == PO_OK; x++) {
            int top = light(q, x, y);
            /* below the last row is the terminal's dark background */
            int bottom = y + 1 < size && light(q, x, y + 1);
            rc = po_buf_puts(out, top && bottom ? FULL
                                  : top         ? UPPER
                                  : bottom      ? LOWER
                                                : " ");
        }
        if (rc == PO_OK)
            rc = po_buf_append(out, "\n", 1);
    }
    return rc;
}

po_rc po_qr_text(const char *text, po_buf *out, po_err *err)
{
    void *h = NULL;
    encode_fn encode;
    free_fn qrfree = NULL;
    QRcode *q = NULL;
    size_t before = out->len;
    const char *e;
    po_rc rc = PO_OK;

    if (text == NULL || text[0] == '\0')
        return po_fail(err, PO_USAGE, "no text to encode as a QR code");
    /* RTLD_NODELETE: a host that draws several codes maps the library
     * once; dlclose only drops our reference. */
    if ((h = dlopen(PO_QR_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) ==
        NULL) {
        e = dlerror();
        rc = po_fail(err, PO_CONFIG,
                     "cannot draw a QR code: cannot load %s (Debian package "
                     "libqrencode4): %s",
                     PO_QR_SONAME, e != NULL ? e : "unknown error");
        goto out;
    }
    *(void **)&encode = dlsym(h, "QRcode_encodeString");
    *(void **)&qrfree = dlsym(h, "QRcode_free");
    if (encode == NULL || qrfree == NULL) {
        rc = po_fail(err, PO_CONFIG,
                     "cannot draw a QR code: %s lacks QRcode_encodeString "
                     "or QRcode_free",
                     PO_QR_SONAME);
        goto out;
    }
    errno = 0;
    if ((q = encode(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1)) == NULL) {
        rc = errno == ERANGE ? po_fail(err, PO_TOO_LARGE,
                                       "the text is too long for a QR code")
             : errno == ENOMEM
                 ? po_fail(err, PO_NOMEM, "out of memory drawing a QR code")
                 : po_fail(err, PO_USAGE,
                           "cannot encode the text as a QR "
                           "code: %s",
                           strerror(errno != 0 ? errno : EINVAL));
        goto out;
    }
    if (q->version > PO_QR_VERSION_MAX || q->width <= 0 || q->data == NULL) {
        rc = po_fail(err, PO_TOO_LARGE,
                     "the text needs a QR code of version %d, wider than a "
                     "terminal (at most version %d)",
                     q->version, PO_QR_VERSION_MAX);
        goto out;
    }
    if ((rc = draw(q, out)) != PO_OK) {
        rc = po_fail(err, rc, "drawing a QR code: %s", po_rc_name(rc));
        goto out;
    }
out:
    if (rc != PO_OK && out->len > before) { /* nothing half drawn */
        out->len = before;
        out->data[before] = '\0';
    }
    if (q != NULL)
        qrfree(q);
    if (h != NULL)
        dlclose(h);
    return rc;
}
