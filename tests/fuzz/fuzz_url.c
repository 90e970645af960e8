/*
 * fuzz_url - the URL rules every endpoint passes (po_http_check_url: the
 * token_url and introspection_url of a configuration, and the jwks_uri a
 * discovery document names) and the redaction every message and log line
 * uses (po_http_redact_url), into buffers of every small size.
 *
 * Input: one byte (bit 0: allow_http; the rest: the redaction buffer's
 * size, 1..128), then the URL up to the first NUL.
 *
 * Properties: an accepted URL is https://, or http:// to a loopback host
 * with allow_http, without userinfo, spaces or control characters; the
 * redacted text fits its buffer and has no query, fragment, space or
 * control character; messages are printable.
 */
#include "fuzz.h"

#include <strings.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned b = fuzz_byte(&in);
    int allow_http = b & 1;
    size_t n = (b >> 1) + 1, i;
    char *url = fuzz_rest(&in, NULL);
    char *shown = malloc(n);
    po_err err;
    po_rc rc;

    FUZZ_CHECK(shown != NULL, "out of memory");
    po_http_redact_url(url, shown, n);
    FUZZ_CHECK(memchr(shown, '\0', n) != NULL, "not terminated");
    FUZZ_CHECK(strpbrk(shown, "?#") == NULL, "query or fragment shown: %s",
               shown);
    for (i = 0; shown[i] != '\0'; i++)
        FUZZ_CHECK((unsigned char)shown[i] > 0x20 &&
                       (unsigned char)shown[i] != 0x7f,
                   "space or control character shown");
    po_err_clear(&err);
    rc = po_http_check_url(url, allow_http, &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        const char *auth;
        size_t alen;

        FUZZ_CHECK(strncasecmp(url, "https://", 8) == 0 ||
                       (allow_http && strncasecmp(url, "http://", 7) == 0),
                   "scheme of an accepted URL");
        for (i = 0; url[i] != '\0'; i++)
            FUZZ_CHECK((unsigned char)url[i] > 0x20 &&
                           (unsigned char)url[i] != 0x7f,
                       "space or control character accepted");
        auth = strstr(url, "://") + 3;
        alen = strcspn(auth, "/?#");
        FUZZ_CHECK(memchr(auth, '@', alen) == NULL, "userinfo accepted");
        FUZZ_CHECK(alen > 0, "no host accepted");
    } else {
        FUZZ_CHECK(rc == PO_CONFIG, "check_url: %s", po_rc_name(rc));
    }
    free(shown);
    free(url);
    return 0;
}
