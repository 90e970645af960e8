/*
 * fuzz_git - git-credential-oauth-token's input: git's credential request
 * (key=value lines up to a blank line; gitcredentials(7)), its checks, and
 * the URL matching of a profile's match key against the request.
 *
 * Today that code is curl_helper/git.c's static functions, so this file
 * includes git.c itself and calls parse_request, check_request and
 * match_profile (the rest of the helper is linked for the functions git.c
 * refers to).  When the matching moves into a core module, call its
 * functions instead of the include.
 *
 * Input: the first line is the profile's match key, set as a
 * configuration line sets it (one byte before it sets allow_http), the
 * rest is git's request.
 *
 * Properties: no parsed attribute holds a CR, LF or NUL; a request that
 * passes the checks and scores on a prefix has the prefix's scheme, its
 * host (default port aside, case-insensitively) and its path on a '/'
 * boundary, all re-derived here independently; messages are printable.
 */
#include "../../curl_helper/git.c"

#include "fuzz.h"

/* Independent re-derivation of what a match means, for the property. */
static size_t strip_default_port(const char *h, size_t n, int tls)
{
    const char *def = tls ? ":443" : ":80";
    size_t dl = strlen(def);

    return n > dl && strncmp(h + n - dl, def, dl) == 0 ? n - dl : n;
}

static int covers(const char *prefix, size_t n, const git_req *g)
{
    int tls = strncasecmp(prefix, "https://", 8) == 0;
    const char *host = prefix + (tls ? 8 : 7), *path, *rp;
    size_t hl, pl, rhl;

    if (!tls && strncasecmp(prefix, "http://", 7) != 0)
        return 0;
    path = memchr(host, '/', n - (size_t)(host - prefix));
    hl = path != NULL ? (size_t)(path - host) : n - (size_t)(host - prefix);
    pl = path != NULL ? n - (size_t)(path - prefix) : 0;
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    if (strcasecmp(g->protocol, tls ? "https" : "http") != 0)
        return 0;
    hl = strip_default_port(host, hl, tls);
    rhl = strip_default_port(g->host, strlen(g->host), tls);
    if (hl != rhl || strncasecmp(host, g->host, hl) != 0)
        return 0;
    if (pl <= 1)
        return 1;
    rp = g->path != NULL ? g->path : "";
    while (*rp == '/')
        rp++;
    /* path is "/a/b": the request's path must be "a/b" or "a/b/..." */
    return strlen(rp) >= pl - 1 && memcmp(rp, path + 1, pl - 1) == 0 &&
           (rp[pl - 1] == '\0' || rp[pl - 1] == '/');
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
    if (check_request(&g, &err) != PO_OK) {
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        goto out;
    }
    request_url(&g, url, sizeof(url));
    FUZZ_CHECK(fuzz_no_controls(url), "control character in the URL shown");
    if (match_profile(&p, &g, &score, &err) != PO_OK) {
        FUZZ_CHECK(fuzz_no_controls(err.msg), "control character in \"%s\"",
                   err.msg);
        goto out;
    }
    /* the best prefix covers the request; no prefix covers it when the
     * score is 0 */
    {
        int any = 0;

        for (s = match; *s != '\0';) {
            s += strspn(s, " \t");
            n = strcspn(s, " \t");
            if (n == 0)
                break;
            any |= covers(s, n, &g);
            s += n;
        }
        FUZZ_CHECK(any == (score > 0), "score %ld, covered %d", score, any);
    }
out:
    po_buf_free(&b);
    po_profile_free(&p);
    free(line);
    return 0;
}
