/*
 * fuzz_discovery - an issuer's OpenID Connect discovery document, as
 * po_discovery_url reads it after its GET (po_discovery_parse): the
 * jwks_uri that jwks.c fetches keys from and the
 * device_authorization_endpoint of a device login, from the same bytes.
 *
 * Input: one byte (bit 0: allow_http), then the document.
 *
 * Properties: a URL handed back passes po_http_check_url with the same
 * allow_http, equals the document's member, and comes only from a
 * document naming the configured issuer (both as json-c reads them); a failure
 * hands back nothing and says why; no message holds a control character.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <json.h>

#include "discovery.h"
#include "http.h"

#define ISSUER "https://issuer.test/realm"
#define WHERE "https://issuer.test/realm/.well-known/openid-configuration"

/* Whether the JSON object in text has member name equal to want (json-c
 * read apart from the code under test: escapes such as \/ decoded). */
static int member_is(const char *text, size_t len, const char *name,
                     const char *want)
{
    json_tokener *tok = json_tokener_new();
    json_object *o, *v;
    int yes;

    if (tok == NULL)
        abort();
    o = json_tokener_parse_ex(tok, text, (int)len);
    yes = o != NULL && json_object_object_get_ex(o, name, &v) &&
          json_object_is_type(v, json_type_string) &&
          strcmp(json_object_get_string(v), want) == 0;
    json_object_put(o);
    json_tokener_free(tok);
    return yes;
}

static void one(const char *text, size_t len, const char *member,
                int allow_http)
{
    static char unset[] = "unset";
    char *url = unset;
    po_err err;
    po_rc rc;

    po_err_clear(&err);
    rc = po_discovery_parse(text, len, ISSUER, member, allow_http, WHERE, &url,
                            &err);
    FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
               err.msg);
    if (rc == PO_OK) {
        FUZZ_CHECK(url != NULL, "no %s", member);
        FUZZ_CHECK(po_http_check_url(url, allow_http, NULL) == PO_OK,
                   "a refused %s accepted: %s", member, url);
        FUZZ_CHECK(member_is(text, len, "issuer", ISSUER) &&
                       member_is(text, len, member, url),
                   "accepted without issuer %s and that %s", ISSUER, member);
        free(url);
    } else {
        FUZZ_CHECK(url == NULL, "a failure left a %s", member);
        FUZZ_CHECK(err.msg[0] != '\0' && err.rc == rc, "no message for %s",
                   po_rc_name(rc));
        FUZZ_CHECK(strncmp(err.msg, WHERE, strlen(WHERE)) == 0,
                   "the message does not name the document: %s", err.msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    int allow_http = fuzz_byte(&in) & 1;
    size_t len;
    char *text = fuzz_rest(&in, &len);

    one(text, len, "jwks_uri", allow_http);
    one(text, len, "device_authorization_endpoint", allow_http);
    free(text);
    return 0;
}
