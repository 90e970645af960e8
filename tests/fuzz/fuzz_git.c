/*
 * fuzz_git - git-credential-oauth-token's input: git's credential request
 * (key=value lines up to a blank line; gitcredentials(7)) and its checks
 * (curl_helper/git.c's static parse_request and check_request: this file
 * includes git.c, and the rest of the helper is linked for what git.c
 * refers to), then the URL matching of a profile's match key against the
 * request (urlmatch.h: po_url_from_parts, po_url_match_list,
 * po_url_parse_prefix, po_url_covers).
 *
 * Input: the first line is the profile's match key, set as a
 * configuration line sets it (one byte before it sets allow_http), the
 * rest is git's request.
 *
 * Properties: no parsed attribute holds a CR, LF or NUL; the request's
 * normalised URL has a lower-case host of host-name characters, a port,
 * and a path without empty segments or a '/' at either end; the list's
 * score is the best po_url_covers of its entries, each parsed alone, and a
 * covering prefix has the URL's scheme, host and port; messages are
 * printable.
 */
#include "../../curl_helper/git.c"

#include "fuzz.h"

/* What po_url's contract says a normalised URL looks like. */
static void check_url(const po_url *u)
{
    const char *c;
    size_t n = strlen(u->path);

    FUZZ_CHECK(u->host[0] != '\0' && u->port >= 1 && u->port <= 65535,
               "host or port");
    for (c = u->host; *c != '\0'; c++)
        FUZZ_CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                       strchr("-.[]:_", *c) != NULL,
                   "host character 0x%02x in %s", (unsigned char)*c, u->host);
    FUZZ_CHECK(n == 0 || (u->path[0] != '/' && u->path[n - 1] != '/' &&
                          strstr(u->path, "//") == NULL),
               "path \"%s\" not normalised", u->path);
}

static void no_breaks(const char *name, const char *v)
{
    if (v != NULL)
        FUZZ_CHECK(strpbrk(v, "\r\n") == NULL, "%s holds a line break", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    int allow_http = fuzz_byte(&in) & 1;
    char *line = fuzz_line(&in, NULL), *match = line;
    po_profile p;
    git_req g;
    po_buf b;
    po_err err;
    long score = 0;
    char url[512];
    po_url u;
    const char *s;
    size_t n;

    po_buf_init(&b, GIT_INPUT_MAX, 1);
    po_err_clear(&err);
    /* the match key as the configuration sets it (control characters and
     * over-long values are refused there) */
    if (po_profile_init(&p, "fuzz", NULL) != PO_OK)
        abort();
    if (po_profile_set(&p, "match", match, "fuzz.conf:2", NULL) != PO_OK ||
        po_profile_set(&p, "allow_http", allow_http ? "yes" : "no",
                       "fuzz.conf:3", NULL) != PO_OK)
        goto out;
    match = p.match != NULL ? p.match : match;
    if (in.n > 0 && po_buf_append(&b, in.p, in.n) != PO_OK)
        goto out;
    if (b.data == NULL && po_buf_puts(&b, "") != PO_OK)
        goto out;
    if (parse_request(&b, &g, &err) != PO_OK) {
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        goto out;
    }
    no_breaks("protocol", g.protocol);
    no_breaks("host", g.host);
    no_breaks("path", g.path);
    no_breaks("username", g.username);
    no_breaks("password", g.password);
    no_breaks("authtype", g.authtype);
    no_breaks("credential", g.credential);
    if (check_request(&g, &u, &err) != PO_OK) {
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        goto out;
    }
    check_url(&u);
    request_url(&g, url, sizeof(url));
    FUZZ_CHECK(fuzz_no_controls(url), "control character in the URL shown");
    if (po_url_match_list(match, &u, &score, &err) != PO_OK) {
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        goto out;
    }
    /* the list's score is its best entry's, each entry parsed alone */
    {
        long best = 0, one;
        po_url pre;

        for (s = match; *s != '\0';) {
            s += strspn(s, " \t");
            n = strcspn(s, " \t");
            if (n == 0)
                break;
            FUZZ_CHECK(po_url_parse_prefix(s, n, &pre, &err) == PO_OK,
                       "an entry the list took does not parse alone");
            one = po_url_covers(&pre, &u);
            if (one > 0)
                FUZZ_CHECK(pre.tls == u.tls && pre.port == u.port &&
                               strcmp(pre.host, u.host) == 0,
                           "%.*s covers another scheme, host or port", (int)n,
                           s);
            if (one > best)
                best = one;
            s += n;
        }
        FUZZ_CHECK(best == score, "score %ld, entries' best %ld", score, best);
    }
out:
    po_buf_free(&b);
    po_profile_free(&p);
    free(line);
    return 0;
}
