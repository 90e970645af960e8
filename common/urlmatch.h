/*
 * urlmatch.h - whether a URL is one a profile's `match` prefixes name, so
 * that a token goes only to the hosts it is for (CVE-2020-11008: a git
 * credential helper answering any host).  Used by the git credential
 * helper and by any other frontend that answers for URLs.
 *
 * Both sides are normalised before they are compared:
 *   - the scheme (http or https only) and the host compare without regard
 *     to case; a host loses one trailing dot; an IPv4 address in any form
 *     getaddrinfo would accept (127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1)
 *     becomes a dotted quad; an IPv6 literal is compared in its canonical
 *     form ([0:0::1] is [::1]); zone identifiers, non-ASCII names (use the
 *     xn-- form), empty labels and characters no host name has are
 *     refused;
 *   - the port defaults to 443 (https) or 80 (http), so host and host:443
 *     are one URL; any other port is another URL;
 *   - userinfo (user:password@) is never part of the host; an authority
 *     with two '@' or a backslash is refused;
 *   - the path is split on '/' with empty segments dropped ("a//b/" is
 *     a/b) and percent-encoding decoded, except that an encoded '/' or
 *     '\', a '\', NUL or another control character make the path
 *     ambiguous: servers read such paths differently, so it is covered
 *     only by prefixes without a path;
 *   - "." and ".." segments: a URL is covered only when its path is under
 *     the prefix's path both as written and with the dot segments removed
 *     (RFC 3986 5.2.4), since some servers resolve them and some do not:
 *     org/../evil is not under org/, evil/../org/x is not either, and
 *     org/./x and org/sub/../x are.
 *   - a query or fragment is not part of the path.
 * A prefix covers a URL when scheme, host and port are equal and the
 * prefix's path segments begin the URL's path; paths compare by segment
 * (org covers org/x.git, not organisation/x.git) and with case.
 */
#ifndef PO_URLMATCH_H
#define PO_URLMATCH_H

#include <stddef.h>
#include "config.h"
#include "err.h"

#define PO_URL_HOST_MAX 253 /* a DNS name; IPv6 literals are shorter */
#define PO_URL_MAX 8192     /* the longest URL or path considered    */

typedef struct po_url {
    int tls;                        /* https (1) or http (0)             */
    char host[PO_URL_HOST_MAX + 1]; /* normalised, see above; an IPv6
                                       address as "[...]"                 */
    unsigned port;                  /* 1..65535, the default filled in   */
    char path[PO_URL_MAX + 1];      /* decoded segments joined by '/',
                                       no leading or trailing '/'; dot
                                       segments kept                     */
    int ambiguous;                  /* the path is not to be judged      */
} po_url;

/* Parse an absolute http(s) URL as a client requests it: percent-encoded,
 * perhaps with userinfo (ignored), a query and a fragment (not part of the
 * path).  PO_USAGE saying what is wrong with it. */
po_rc po_url_parse(const char *url, po_url *out, po_err *err);

/* Parse the n bytes at s as a prefix of a match key,
 * "http[s]://host[:port][/path]": as po_url_parse, but userinfo, a query,
 * a fragment, an ambiguous path and "." or ".." segments are refused
 * (PO_CONFIG). */
po_rc po_url_parse_prefix(const char *s, size_t n, po_url *out, po_err *err);

/* The URL git's credential protocol describes: protocol, host (with an
 * optional ":port", an IPv6 address in brackets) and path (NULL when git
 * sends none), all as git sends them, already percent-decoded.  PO_USAGE
 * saying what is wrong. */
po_rc po_url_from_parts(const char *scheme, const char *hostport,
                        const char *path, po_url *out, po_err *err);

/* How well prefix covers u: 0 not at all, else 1 + the length of the
 * prefix's path, so that the longest prefix wins. */
long po_url_covers(const po_url *prefix, const po_url *u);

/* The best po_url_covers score of the space-separated prefixes in list for
 * u into *best (0 when none covers it, or list is NULL).  PO_CONFIG naming
 * the entry when one is not a valid prefix (err->msg: "'ENTRY': why"). */
po_rc po_url_match_list(const char *list, const po_url *u, long *best,
                        po_err *err);

/* The rule of every frontend that answers for URLs (git, docker): which
 * profile gets a request for u.  When named is not NULL (the profile -p
 * chose, with its -o overrides) it must have a match key (PO_CONFIG
 * otherwise: it would answer any host) that covers u (PO_NOT_FOUND
 * otherwise); else the profile of cfg whose match key covers u best (the
 * longest prefix) is chosen, PO_NOT_FOUND when none does, PO_CONFIG when
 * two cover it equally well.  For an http URL the profile needs
 * allow_http and the host must be a loopback one (PO_USAGE).  An invalid
 * match entry is PO_CONFIG naming the profile.  shown names the request
 * in messages (visible ASCII, no secret).  *out is the profile. */
po_rc po_url_choose_profile(const po_config *cfg, const po_profile *named,
                            const po_url *u, const char *shown,
                            const po_profile **out, po_err *err);

#endif
