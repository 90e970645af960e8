/* urlmatch.c - URL normalisation and prefix matching for `match` keys
 * (see urlmatch.h for the rules and why each is there). */
#define _GNU_SOURCE /* memrchr */
#include "urlmatch.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "util.h"

#define LABEL_MAX 63

static int is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* "https://" or "http://" (any case) at s; the length consumed, 0 if
 * neither.  *tls is set. */
static size_t scheme_len(const char *s, size_t n, int *tls)
{
    static const char https[] = "https://", http[] = "http://";
    size_t i;

    for (i = 0; i < sizeof(https) - 1 && i < n && lower(s[i]) == https[i]; i++)
        ;
    if (i == sizeof(https) - 1) {
        *tls = 1;
        return i;
    }
    for (i = 0; i < sizeof(http) - 1 && i < n && lower(s[i]) == http[i]; i++)
        ;
    if (i == sizeof(http) - 1) {
        *tls = 0;
        return i;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* hosts                                                               */

/* One part of an IPv4 address as WHATWG's URL standard (and inet_aton)
 * reads it: 0x hex, a leading 0 octal, else decimal.  -1 if invalid. */
static int64_t ipv4_part(const char *s, size_t n)
{
    int64_t v = 0;
    int base = 10;
    size_t i = 0;

    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8;
        i = 1;
    }
    if (n == 0)
        return -1;
    for (; i < n; i++) {
        int d;
        if (base == 16 && is_hex((unsigned char)s[i]))
            d = hex_val((unsigned char)s[i]);
        else if (s[i] >= '0' && s[i] <= '9' && s[i] - '0' < base)
            d = s[i] - '0';
        else
            return -1;
        v = v * base + d;
        if (v > 0xffffffffLL)
            return -1;
    }
    return v;
}

/* Whether the last label of h (n bytes, no trailing dot) is a number, in
 * which case the whole name must be an IPv4 address (WHATWG's "ends in a
 * number"). */
static int ends_in_number(const char *h, size_t n)
{
    const char *dot = memrchr(h, '.', n);
    const char *l = dot != NULL ? dot + 1 : h;
    size_t ln = (size_t)(h + n - l), i;

    if (ln == 0)
        return 0;
    if (ln >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
        for (i = 2; i < ln; i++)
            if (!is_hex((unsigned char)l[i]))
                return 0;
        return 1;
    }
    for (i = 0; i < ln; i++)
        if (l[i] < '0' || l[i] > '9')
            return 0;
    return 1;
}

/* h (n bytes) as an IPv4 address in dotted quad form into out. */
static int ipv4_normalise(const char *h, size_t n, char *out, size_t on)
{
    int64_t parts[4], v;
    size_t count = 0, start = 0, i;
    uint32_t a;

    for (i = 0; i <= n; i++) {
        if (i < n && h[i] != '.')
            continue;
        if (count == 4 || (parts[count] = ipv4_part(h + start, i - start)) < 0)
            return -1;
        count++;
        start = i + 1;
    }
    for (i = 0; i + 1 < count; i++)
        if (parts[i] > 255)
            return -1;
    v = parts[count - 1];
    if (v >= (int64_t)1 << (8 * (5 - count)))
        return -1;
    a = (uint32_t)v;
    for (i = 0; i + 1 < count; i++)
        a |= (uint32_t)parts[i] << (8 * (3 - i));
    (void)snprintf(out, on, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255,
                   (a >> 8) & 255, a & 255);
    return 0;
}

/* Normalise the host name or address h (n bytes, without brackets unless
 * v6) into out (size PO_URL_HOST_MAX + 1). */
static po_rc host_normalise(const char *h, size_t n, int v6, char *out,
                            po_err *err)
{
    char buf[PO_URL_HOST_MAX + 2];
    unsigned char addr[16];
    size_t i, label = 0;

    if (v6) {
        if (n == 0 || n >= 46)
            return po_fail(err, PO_USAGE, "not an IPv6 address");
        if (memchr(h, '%', n) != NULL)
            return po_fail(err, PO_USAGE,
                           "an IPv6 zone identifier is not accepted");
        memcpy(buf, h, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return po_fail(err, PO_USAGE, "not an IPv6 address");
        out[0] = '[';
        if (inet_ntop(AF_INET6, addr, out + 1, PO_URL_HOST_MAX - 2) == NULL)
            return po_fail(err, PO_USAGE, "not an IPv6 address");
        strcat(out, "]");
        return PO_OK;
    }
    if (n > 1 && h[n - 1] == '.')
        n--; /* the root label: git.example.com. is git.example.com */
    if (n == 0)
        return po_fail(err, PO_USAGE, "no host name");
    if (n > PO_URL_HOST_MAX)
        return po_fail(err, PO_USAGE, "host name longer than %d bytes",
                       PO_URL_HOST_MAX);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c >= 0x80)
            return po_fail(err, PO_USAGE,
                           "non-ASCII host name (use its xn-- form)");
        if (c == '.') {
            if (label == 0)
                return po_fail(err, PO_USAGE, "empty label in the host name");
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > LABEL_MAX)
                return po_fail(err, PO_USAGE,
                               "a label of the host name is longer than %d "
                               "bytes",
                               LABEL_MAX);
        } else {
            return po_fail(err, PO_USAGE, "a host name holds no '%c'",
                           c > 0x20 && c < 0x7f ? c : '?');
        }
        buf[i] = (char)lower(c);
    }
    if (label == 0)
        return po_fail(err, PO_USAGE, "empty label in the host name");
    buf[n] = '\0';
    if (ends_in_number(buf, n)) {
        if (ipv4_normalise(buf, n, out, PO_URL_HOST_MAX + 1) != 0)
            return po_fail(err, PO_USAGE, "not a valid IPv4 address");
        return PO_OK;
    }
    memcpy(out, buf, n + 1);
    return PO_OK;
}

/* host[:port] (n bytes, no userinfo) into u. */
static po_rc hostport_parse(const char *s, size_t n, po_url *u, po_err *err)
{
    const char *host = s, *port = NULL;
    size_t hn = n, pn = 0, i;
    unsigned long v = 0;
    int v6 = 0;
    po_rc rc;

    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (rb == NULL)
            return po_fail(err, PO_USAGE, "'[' without ']' in the host");
        host = s + 1;
        hn = (size_t)(rb - host);
        v6 = 1;
        if (rb + 1 < s + n) {
            if (rb[1] != ':')
                return po_fail(err, PO_USAGE, "text after ']' in the host");
            port = rb + 2;
            pn = (size_t)(s + n - port);
        }
    } else {
        const char *colon = memrchr(s, ':', n);
        if (colon != NULL) {
            hn = (size_t)(colon - s);
            port = colon + 1;
            pn = (size_t)(s + n - port);
        }
    }
    if ((rc = host_normalise(host, hn, v6, u->host, err)) != PO_OK)
        return rc;
    u->port = u->tls ? 443 : 80;
    if (port == NULL || pn == 0) /* "host:" has the default port */
        return PO_OK;
    for (i = 0; i < pn; i++) {
        if (port[i] < '0' || port[i] > '9')
            return po_fail(err, PO_USAGE, "the port is not a number");
        v = v * 10 + (unsigned long)(port[i] - '0');
        if (v > 65535)
            return po_fail(err, PO_USAGE, "the port is over 65535");
    }
    if (v == 0)
        return po_fail(err, PO_USAGE, "port 0");
    u->port = (unsigned)v;
    return PO_OK;
}

/* ------------------------------------------------------------------ */
/* paths                                                               */

/* Append the n bytes at s to u->path as segments: split on '/', empty
 * segments dropped; with decode, %XX is decoded (an encoded '/' or '\'
 * or a '%' not followed by two hex digits makes the path ambiguous);
 * without, a %XX left in it does (git decoded the path already: one more
 * level of encoding is a double-encoded path).  A '\', NUL, control
 * character, a byte that can never be in UTF-8 (C0, C1: overlong forms of
 * '.' and '/') or a dot segment with parameters (..;x, Tomcat's) makes it
 * ambiguous too. */
static po_rc path_parse(const char *s, size_t n, int decode, po_url *u,
                        po_err *err)
{
    size_t i, o = 0, seg = 0;

    u->path[0] = '\0';
    for (i = 0; i <= n; i++) {
        unsigned char c;

        if (i == n || s[i] == '/') {
            /* the end of a segment: an empty one is dropped */
            if (o > seg) {
                const char *g = u->path + seg;
                size_t gl = o - seg;
                if ((gl >= 2 && g[0] == '.' && g[1] == ';') ||
                    (gl >= 3 && g[0] == '.' && g[1] == '.' && g[2] == ';'))
                    u->ambiguous = 1;
                if (i < n) {
                    if (o + 1 > PO_URL_MAX)
                        goto too_long;
                    u->path[o++] = '/';
                    seg = o;
                }
            }
            continue;
        }
        c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && is_hex((unsigned char)s[i + 1]) &&
            is_hex((unsigned char)s[i + 2])) {
            if (decode) {
                c = (unsigned char)(hex_val((unsigned char)s[i + 1]) * 16 +
                                    hex_val((unsigned char)s[i + 2]));
                i += 2;
                if (c == '/' || c == '\\')
                    u->ambiguous = 1;
            } else {
                u->ambiguous = 1;
            }
        } else if (c == '%' && decode) {
            u->ambiguous = 1;
        }
        if (c == '\\' || c < 0x20 || c == 0x7f || c == 0xc0 || c == 0xc1)
            u->ambiguous = 1;
        if (o + 1 > PO_URL_MAX)
            goto too_long;
        u->path[o++] = (char)c;
    }
    if (o > 0 && u->path[o - 1] == '/')
        o--;
    u->path[o] = '\0';
    return PO_OK;
too_long:
    return po_fail(err, PO_USAGE, "path longer than %d bytes", PO_URL_MAX);
}

/* The path with its dot segments removed (RFC 3986 5.2.4; a ".." above
 * the root is dropped, as clients do) into out (size PO_URL_MAX + 1). */
static void remove_dots(const char *path, char *out)
{
    size_t o = 0;
    const char *s = path;

    out[0] = '\0';
    while (*s != '\0') {
        size_t n = strcspn(s, "/");
        if (n == 1 && s[0] == '.') {
            /* nothing */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before the removed segment */
        } else {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, s, n);
            o += n;
        }
        out[o] = '\0';
        s += n;
        if (*s == '/')
            s++;
    }
}

/* Whether path has a "." or ".." segment. */
static int has_dots(const char *path)
{
    const char *s = path;

    while (*s != '\0') {
        size_t n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 1;
        s += n;
        if (*s == '/')
            s++;
    }
    return 0;
}

/* Whether the segments of prefix begin those of path. */
static int under(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);

    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ------------------------------------------------------------------ */
/* the interface                                                       */

/* url (n bytes) into u.  prefix: a match entry (stricter). */
static po_rc url_parse(const char *url, size_t n, int prefix, po_url *u,
                       po_err *err)
{
    const char *auth, *end, *at, *path;
    size_t sl, i, pn;
    po_rc rc;

    memset(u, 0, sizeof(*u));
    if (n > PO_URL_MAX)
        return po_fail(err, PO_USAGE, "longer than %d bytes", PO_URL_MAX);
    for (i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return po_fail(err, PO_USAGE, "a space or control character");
    if ((sl = scheme_len(url, n, &u->tls)) == 0)
        return po_fail(err, PO_USAGE, "not an http:// or https:// URL");
    auth = url + sl;
    for (end = auth; end < url + n && *end != '/' && *end != '?' && *end != '#';
         end++)
        ;
    if (memchr(auth, '\\', (size_t)(end - auth)) != NULL)
        return po_fail(err, PO_USAGE, "a backslash in the host");
    at = memchr(auth, '@', (size_t)(end - auth));
    if (at != NULL) {
        if (prefix)
            return po_fail(err, PO_USAGE,
                           "a user name in a match prefix is not accepted");
        if (memchr(at + 1, '@', (size_t)(end - at - 1)) != NULL)
            return po_fail(err, PO_USAGE, "two '@' in the host");
        auth = at + 1;
    }
    {
        /* A host may be percent-encoded; it never holds an encoded '%'. */
        char host[PO_URL_HOST_MAX + 64];
        size_t hn = 0;
        const char *s;
        for (s = auth; s < end; s++) {
            unsigned char c = (unsigned char)*s;
            if (c == '%' && end - s >= 3 && is_hex((unsigned char)s[1]) &&
                is_hex((unsigned char)s[2])) {
                c = (unsigned char)(hex_val((unsigned char)s[1]) * 16 +
                                    hex_val((unsigned char)s[2]));
                s += 2;
                if (c == '%' || c == '@' || c == '/' || c == ':' || c == '[' ||
                    c == ']')
                    return po_fail(err, PO_USAGE, "an encoded '%c' in the host",
                                   c);
            }
            if (hn + 1 >= sizeof(host))
                return po_fail(err, PO_USAGE, "host name too long");
            host[hn++] = (char)c;
        }
        if ((rc = hostport_parse(host, hn, u, err)) != PO_OK)
            return rc;
    }
    path = end;
    for (pn = 0; path + pn < url + n && path[pn] != '?' && path[pn] != '#';
         pn++)
        ;
    if (prefix && path + pn < url + n)
        return po_fail(err, PO_USAGE,
                       "a query or fragment in a match prefix is not "
                       "accepted");
    if ((rc = path_parse(path, pn, 1, u, err)) != PO_OK)
        return rc;
    if (prefix && u->ambiguous)
        return po_fail(err, PO_USAGE,
                       "the path holds an encoded '/' or '\\', a '\\', a "
                       "stray '%%' or a control character");
    if (prefix && has_dots(u->path))
        return po_fail(err, PO_USAGE,
                       "a '.' or '..' segment in a match prefix is not "
                       "accepted");
    return PO_OK;
}

po_rc po_url_parse(const char *url, po_url *out, po_err *err)
{
    if (url == NULL)
        return po_fail(err, PO_USAGE, "no URL");
    return url_parse(url, strnlen(url, PO_URL_MAX + 1), 0, out, err);
}

po_rc po_url_parse_prefix(const char *s, size_t n, po_url *out, po_err *err)
{
    po_rc rc = url_parse(s, n, 1, out, err);

    if (rc == PO_USAGE && err != NULL)
        err->rc = rc = PO_CONFIG;
    return rc;
}

po_rc po_url_from_parts(const char *scheme, const char *hostport,
                        const char *path, po_url *out, po_err *err)
{
    size_t n;
    po_rc rc;

    memset(out, 0, sizeof(*out));
    if (scheme == NULL || hostport == NULL)
        return po_fail(err, PO_USAGE, "no protocol or host");
    n = strlen(scheme);
    if (n == 5 && lower(scheme[0]) == 'h' && lower(scheme[1]) == 't' &&
        lower(scheme[2]) == 't' && lower(scheme[3]) == 'p' &&
        lower(scheme[4]) == 's')
        out->tls = 1;
    else if (n == 4 && lower(scheme[0]) == 'h' && lower(scheme[1]) == 't' &&
             lower(scheme[2]) == 't' && lower(scheme[3]) == 'p')
        out->tls = 0;
    else
        return po_fail(err, PO_USAGE, "not http or https");
    n = strlen(hostport);
    if (n > PO_URL_HOST_MAX + 8)
        return po_fail(err, PO_USAGE, "host name too long");
    if (memchr(hostport, '@', n) != NULL || memchr(hostport, '/', n) != NULL ||
        memchr(hostport, '\\', n) != NULL || memchr(hostport, '%', n) != NULL)
        return po_fail(err, PO_USAGE, "not a host name");
    if ((rc = hostport_parse(hostport, n, out, err)) != PO_OK)
        return rc;
    if (path == NULL)
        return PO_OK;
    n = strlen(path);
    if (n > PO_URL_MAX)
        return po_fail(err, PO_USAGE, "path longer than %d bytes", PO_URL_MAX);
    return path_parse(path, n, 0, out, err);
}

long po_url_covers(const po_url *prefix, const po_url *u)
{
    char resolved[PO_URL_MAX + 1];

    if (prefix->tls != u->tls || prefix->port != u->port ||
        strcmp(prefix->host, u->host) != 0)
        return 0;
    if (prefix->path[0] == '\0')
        return 1;
    if (u->ambiguous || !under(prefix->path, u->path))
        return 0;
    remove_dots(u->path, resolved);
    if (!under(prefix->path, resolved))
        return 0;
    return 2 + (long)strlen(prefix->path);
}

po_rc po_url_match_list(const char *list, const po_url *u, long *best,
                        po_err *err)
{
    const char *s = list, *w;
    po_url p;
    po_err e;
    size_t n = 0;
    long score;

    *best = 0;
    while (s != NULL && (w = po_next_word(&s, &n)) != NULL) {
        po_err_clear(&e);
        if (po_url_parse_prefix(w, n, &p, &e) != PO_OK)
            return po_fail(err, PO_CONFIG, "'%.*s': %s", n > 200 ? 200 : (int)n,
                           w, e.msg);
        if ((score = po_url_covers(&p, u)) > *best)
            *best = score;
    }
    return PO_OK;
}

/* The best score of profile p's match key for u (0: none). */
static po_rc profile_score(const po_profile *p, const po_url *u, long *best,
                           po_err *err)
{
    po_err e;

    po_err_clear(&e);
    if (po_url_match_list(p->match, u, best, &e) != PO_OK)
        return po_fail(err, PO_CONFIG,
                       "profile %s (%s): match %s; expected "
                       "https://host[:port][/path]",
                       p->name, p->source != NULL ? p->source : "?", e.msg);
    return PO_OK;
}

po_rc po_url_choose_profile(const po_config *cfg, const po_profile *named,
                            const po_url *u, const char *shown,
                            const po_profile **out, po_err *err)
{
    const po_profile *best = NULL, *tie = NULL;
    long best_score = 0, score;
    char hostonly[PO_URL_HOST_MAX + 16];
    po_rc rc;
    size_t i;

    *out = NULL;
    if (named != NULL) {
        if (named->match == NULL || named->match[0] == '\0')
            return po_fail(err, PO_CONFIG,
                           "profile %s has no match key, so it would give "
                           "its token to any host that asks; name the URLs "
                           "it is for with 'match = https://host/' in the "
                           "profile or with -o match=... (this request: "
                           "%.200s)",
                           named->name, shown);
        if ((rc = profile_score(named, u, &score, err)) != PO_OK)
            return rc;
        if (score == 0)
            return po_fail(err, PO_NOT_FOUND,
                           "profile %s does not match %.200s (see its match "
                           "key)",
                           named->name, shown);
        best = named;
    } else {
        for (i = 0; i < cfg->nprofiles; i++) {
            const po_profile *p = &cfg->profiles[i];
            if ((rc = profile_score(p, u, &score, err)) != PO_OK)
                return rc;
            if (score > best_score) {
                best = p;
                best_score = score;
                tie = NULL;
            } else if (score > 0 && score == best_score) {
                tie = p;
            }
        }
        if (best == NULL)
            return po_fail(err, PO_NOT_FOUND,
                           "no profile matches %.200s (add it to a "
                           "profile's match key)",
                           shown);
        if (tie != NULL)
            return po_fail(err, PO_CONFIG,
                           "profiles %s and %s match %.200s equally well; "
                           "make one match key longer or use -p",
                           best->name, tie->name, shown);
    }
    /* http only to a loopback host, and only with allow_http */
    if (!u->tls) {
        if (!best->allow_http)
            return po_fail(err, PO_USAGE,
                           "%.200s: refusing to send a token over http "
                           "(allow_http is off in profile %s)",
                           shown, best->name);
        (void)snprintf(hostonly, sizeof(hostonly), "http://%s/", u->host);
        if ((rc = po_http_check_url(hostonly, 1, err)) != PO_OK)
            return rc;
    }
    *out = best;
    return PO_OK;
}
