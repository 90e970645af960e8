/*
 * fuzz_b64 - common/b64: padded base64 (client_secret_basic, the key
 * material of nothing yet) and unpadded base64url (every JWT segment and
 * JWK member).
 *
 * Properties, both alphabets: a decoded text encodes back to exactly the
 * input (the decoders accept one encoding per byte string), and any bytes
 * encode to a text that decodes back to them; po_b64url_char agrees with
 * the decoder; refusals name no data and hold no control character.
 */
#include "fuzz.h"

#include "b64.h"
#include "secret.h"

static void std_round_trips(const uint8_t *data, size_t size)
{
    unsigned char *dec = NULL, *dec2 = NULL;
    size_t n = 0, n2 = 0;
    po_err err;
    po_buf b;

    po_err_clear(&err);
    po_buf_init(&b, 2 * size + 8, 0);
    if (po_b64_decode((const char *)data, size, "fuzz", &dec, &n, &err) ==
        PO_OK) {
        FUZZ_CHECK(n <= size / 4 * 3, "decoded %zu bytes of %zu", n, size);
        FUZZ_CHECK(po_b64_append(&b, dec, n) == PO_OK, "encode");
        FUZZ_CHECK(b.len == size &&
                       (size == 0 || memcmp(b.data, data, size) == 0),
                   "base64 encode(decode(x)) != x");
        free(dec);
    } else {
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
    }
    po_buf_free(&b);
    /* any bytes: decode(encode(x)) == x */
    po_buf_init(&b, 2 * size + 8, 0);
    FUZZ_CHECK(po_b64_append(&b, data, size) == PO_OK, "encode");
    FUZZ_CHECK(b.len == (size + 2) / 3 * 4, "encoded length %zu", b.len);
    FUZZ_CHECK(po_b64_decode(b.data != NULL ? b.data : "", b.len, "fuzz", &dec2,
                             &n2, &err) == PO_OK,
               "our encoding does not decode: %s", err.msg);
    FUZZ_CHECK(n2 == size && (size == 0 || memcmp(dec2, data, size) == 0),
               "base64 decode(encode(x)) != x");
    free(dec2);
    po_buf_free(&b);
}

static void url_round_trips(const uint8_t *data, size_t size)
{
    unsigned char *dec = NULL, *dec2 = NULL;
    char *enc = NULL, *enc2 = NULL;
    size_t n = 0, n2 = 0, i;
    int all_url = 1;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    for (i = 0; i < size; i++)
        all_url &= po_b64url_char(data[i]) != 0;
    rc = po_b64url_decode((const char *)data, size, "fuzz", &dec, &n, &err);
    if (rc == PO_OK) {
        FUZZ_CHECK(all_url, "decoded a text with non-base64url characters");
        FUZZ_CHECK(size % 4 != 1, "decoded a length of 4n+1");
        FUZZ_CHECK(po_b64url_encode(dec, n, &enc, &err) == PO_OK, "encode");
        FUZZ_CHECK(strlen(enc) == size && memcmp(enc, data, size) == 0,
                   "base64url encode(decode(x)) != x");
        free(enc);
        free(dec);
    } else {
        FUZZ_CHECK(rc == PO_JWT_MALFORMED, "decode: %s", po_rc_name(rc));
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
    }
    FUZZ_CHECK(po_b64url_encode(data, size, &enc2, &err) == PO_OK, "encode");
    for (i = 0; enc2[i] != '\0'; i++)
        FUZZ_CHECK(po_b64url_char((unsigned char)enc2[i]), "bad character");
    FUZZ_CHECK(po_b64url_decode(enc2, strlen(enc2), "fuzz", &dec2, &n2, &err) ==
                   PO_OK,
               "our encoding does not decode: %s", err.msg);
    FUZZ_CHECK(n2 == size && (size == 0 || memcmp(dec2, data, size) == 0),
               "base64url decode(encode(x)) != x");
    free(dec2);
    free(enc2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std_round_trips(data, size);
    url_round_trips(data, size);
    return 0;
}
