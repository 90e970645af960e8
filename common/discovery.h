/*
 * discovery.h - OpenID Connect discovery (OpenID Connect Discovery 1.0
 * section 4, RFC 8414's metadata members): the URL of one endpoint of an
 * issuer, read from ISSUER/.well-known/openid-configuration.
 *
 * The document's "issuer" must equal the configured issuer exactly (a
 * provider answering for another issuer is refused), and the endpoint URL
 * must pass the same rules as token_url (po_http_check_url).  The request
 * goes through po_http_request (GET), so TLS, timeouts and retries are
 * those of token requests.  Nothing is cached here: the key sets that
 * depend on discovery are cached by jwks.c.
 */
#ifndef PO_DISCOVERY_H
#define PO_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "http.h"

#define PO_DISCOVERY_PATH "/.well-known/openid-configuration"

/* The value of member (e.g. "jwks_uri", "device_authorization_endpoint")
 * of issuer's discovery document, malloc'd into *url; the GET is made with
 * opts (its deadline bounds it).  PO_CONFIG without an issuer; network
 * outcomes as po_http_request; HTTP 5xx is PO_SERVER_ERROR, another
 * non-200 answer or a document that is not a JSON object
 * PO_MALFORMED_RESPONSE; a document for another issuer
 * PO_JWT_WRONG_ISSUER; no such member PO_NOT_FOUND, one whose URL is
 * refused PO_MALFORMED_RESPONSE.  Messages name the document's URL
 * (without its query) and the member. */
/* Read len bytes of text (need not be NUL-terminated) as a discovery
 * document, as po_discovery_url does after its GET: a JSON object (of at
 * most 256 KiB) whose "issuer" is exactly issuer and whose member is a URL
 * passing po_http_check_url with allow_http; *url receives a malloc'd copy
 * of it.  where names the document in messages (its URL, redacted).
 * PO_JWT_WRONG_ISSUER, PO_NOT_FOUND (no such member),
 * PO_MALFORMED_RESPONSE (not an object, too large, a URL refused),
 * PO_NOMEM; *url is NULL on failure.  No network, no state. */
po_rc po_discovery_parse(const char *text, size_t len, const char *issuer,
                         const char *member, int allow_http, const char *where,
                         char **url, po_err *err);

po_rc po_discovery_url(const po_http_opts *opts, const char *issuer,
                       const char *member, char **url, po_err *err);

#endif
