/*
 * qr.h - a QR code as text for a terminal or a PAM message, drawn with
 * Unicode half blocks: each line of text holds two rows of modules.
 *
 * The encoder is libqrencode (Debian libqrencode4), loaded with dlopen
 * when a code is drawn and released afterwards, so that neither frontend
 * loads it otherwise: the helper's cache hit and a password login never
 * do.  Nothing is kept between calls (no global state).
 *
 * Light modules (and a quiet zone of PO_QR_QUIET modules around the
 * symbol) are drawn, dark ones are blank: the code reads correctly on a
 * terminal with a dark background, the common case for ssh and consoles,
 * and scanners that read inverted codes read it on a light one.
 *   both rows light  U+2588 FULL BLOCK
 *   upper row light  U+2580 UPPER HALF BLOCK
 *   lower row light  U+2584 LOWER HALF BLOCK
 *   both rows dark   a space
 */
#ifndef PO_QR_H
#define PO_QR_H

#include "err.h"
#include "secret.h"

#define PO_QR_SONAME "libqrencode.so.4"
#define PO_QR_QUIET 2        /* modules of light border on each side     */
#define PO_QR_VERSION_MAX 13 /* 69 modules: 73 columns with the border   */

/* Append to out the QR code of text (byte mode, error correction level
 * L, the smallest version that holds it), one line per two module rows,
 * each line ending in '\n'.  PO_TOO_LARGE when text needs a version above
 * PO_QR_VERSION_MAX (wider than a terminal) or out's cap is reached;
 * PO_CONFIG when libqrencode cannot be loaded (the message says which
 * library and why); PO_USAGE for an empty text. */
po_rc po_qr_text(const char *text, po_buf *out, po_err *err);

#endif
