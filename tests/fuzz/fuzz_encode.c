/*
 * fuzz_encode - the encoders that put what others chose (user names,
 * passwords, client ids and secrets, scopes) into requests:
 * po_form_encode (application/x-www-form-urlencoded), po_json_quote (a
 * JSON string literal) and po_oauth_basic_auth (RFC 6749 2.3.1).
 *
 * The core has no decoders of its own for these, so the properties decode
 * with an independent one: form-decoding (written here) and json-c give
 * back exactly the input; the form encoding uses only its alphabet with
 * upper-case %XX; the Basic value is "Basic " base64(form(id) ":"
 * form(secret)) and decodes (po_b64_decode) to exactly that.
 *
 * Input: id, a NUL byte, secret (each up to the next NUL); the id is also
 * the text the form and JSON encoders get.
 */
#include "fuzz.h"

#include <json.h>

#include "b64.h"
#include "oauth.h"
#include "secret.h"

static void check_form(const char *s, const char *enc, size_t n)
{
    size_t len = 0;
    char *dec = fuzz_form_decode(enc, n, &len);

    FUZZ_CHECK(dec != NULL && len == strlen(s),
               "form encoding outside its alphabet or of the wrong length");
    FUZZ_CHECK(strcmp(dec, s) == 0, "form decode(encode(x)) != x");
    free(dec);
}

static void check_json(const char *s)
{
    po_buf b;
    json_object *o;

    po_buf_init(&b, 8 * strlen(s) + 16, 0);
    FUZZ_CHECK(po_json_quote(&b, s) == PO_OK, "po_json_quote failed");
    o = json_tokener_parse(b.data);
    FUZZ_CHECK(o != NULL && json_object_is_type(o, json_type_string),
               "json-c does not read the quoted string back");
    FUZZ_CHECK((size_t)json_object_get_string_len(o) == strlen(s) &&
                   memcmp(json_object_get_string(o), s, strlen(s)) == 0,
               "JSON decode(quote(x)) != x");
    FUZZ_CHECK(strpbrk(b.data, "\n\r\t") == NULL,
               "a raw control character in the JSON text");
    json_object_put(o);
    po_buf_free(&b);
}

static void check_basic(const char *id, const char *secret)
{
    char *hdr = NULL, *colon;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    po_rc rc;

    rc = po_oauth_basic_auth(id, secret, &hdr);
    if (rc == PO_TOO_LARGE)
        return;
    FUZZ_CHECK(rc == PO_OK, "po_oauth_basic_auth: %s", po_rc_name(rc));
    FUZZ_CHECK(strncmp(hdr, "Basic ", 6) == 0, "no \"Basic \"");
    FUZZ_CHECK(po_b64_decode(hdr + 6, strlen(hdr + 6), "basic", &raw, &rawlen,
                             NULL) == PO_OK,
               "the Basic value is not strict base64");
    FUZZ_CHECK(strlen((char *)raw) == rawlen, "a NUL in the credentials");
    colon = strchr((char *)raw, ':');
    FUZZ_CHECK(colon != NULL && strchr(colon + 1, ':') == NULL,
               "not exactly one ':'");
    check_form(id, (char *)raw, (size_t)(colon - (char *)raw));
    check_form(secret != NULL ? secret : "", colon + 1, strlen(colon + 1));
    po_cleanse(raw, rawlen);
    free(raw);
    po_secret_free(hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    char *all = fuzz_rest(&in, NULL);
    const char *id = all;
    const char *secret = NULL;
    size_t idlen = strlen(id);
    po_buf b;

    if (idlen < size)
        secret = all + idlen + 1;
    po_buf_init(&b, 3 * idlen + 1, 1);
    FUZZ_CHECK(po_form_encode(&b, id) == PO_OK, "po_form_encode failed");
    check_form(id, b.data != NULL ? b.data : "", b.len);
    po_buf_free(&b);
    check_json(id);
    check_basic(id, secret);
    free(all);
    return 0;
}
