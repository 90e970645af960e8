/* test_urlmatch.c - URL normalisation and `match` prefixes: which URLs a
 * profile answers for (issue 14.2, the CVE-2020-11008 class).  Every row is
 * an input a hostile remote, submodule or redirect could send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "urlmatch.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* po_url_parse: what a URL normalises to, or NULL host when refused. */
static void test_parse(void **state)
{
    static const struct {
        const char *url;
        const char *host; /* NULL: refused; then path holds a word of
                             the message */
        unsigned port;
        const char *path;
        int ambiguous;
    } rows[] = {
        {"https://Git.Example.COM/Org/Repo.git", "git.example.com", 443,
         "Org/Repo.git", 0},
        {"HTTPS://git.example.com:443/org/", "git.example.com", 443, "org", 0},
        {"https://git.example.com.:443//org//x.git/", "git.example.com", 443,
         "org/x.git", 0},
        {"https://git.example.com:", "git.example.com", 443, "", 0},
        {"http://git.example.com/", "git.example.com", 80, "", 0},
        {"http://git.example.com:80", "git.example.com", 80, "", 0},
        {"https://git.example.com:08443/a", "git.example.com", 8443, "a", 0},
        /* userinfo is never the host */
        {"https://user:pw@git.example.com/org", "git.example.com", 443, "org",
         0},
        {"https://git.example.com@evil.test/org", "evil.test", 443, "org", 0},
        {"https://git.example.com:443@evil.test/", "evil.test", 443, "", 0},
        {"https://a@b@evil.test/", NULL, 0, "two '@'", 0},
        {"https://evil.test\\@git.example.com/", NULL, 0, "backslash", 0},
        {"https://evil.test\\.git.example.com/", NULL, 0, "backslash", 0},
        {"https://git.example.com#@evil.test/", "git.example.com", 443, "", 0},
        {"https://git.example.com?@evil.test/", "git.example.com", 443, "", 0},
        {"https://git.example.com/a?b=/../../x#/../y", "git.example.com", 443,
         "a", 0},
        /* IPv4 in every form a resolver accepts */
        {"https://127.0.0.1/", "127.0.0.1", 443, "", 0},
        {"https://127.1/", "127.0.0.1", 443, "", 0},
        {"https://127.0.1/", "127.0.0.1", 443, "", 0},
        {"https://0x7f.0.0.1/", "127.0.0.1", 443, "", 0},
        {"https://0X7F000001/", "127.0.0.1", 443, "", 0},
        {"https://2130706433/", "127.0.0.1", 443, "", 0},
        {"https://0177.0.0.1/", "127.0.0.1", 443, "", 0},
        {"https://127.0.0.1./", "127.0.0.1", 443, "", 0},
        {"https://%31%32%37.0.0.1/", "127.0.0.1", 443, "", 0},
        {"https://256.0.0.1/", NULL, 0, "IPv4", 0},
        {"https://1.2.3.4.5/", NULL, 0, "IPv4", 0},
        {"https://0x100.0.0.1/", NULL, 0, "IPv4", 0},
        {"https://09.0.0.1/", NULL, 0, "IPv4", 0},
        {"https://4294967296/", NULL, 0, "IPv4", 0},
        {"https://1.2.3.4.example/", "1.2.3.4.example", 443, "", 0},
        /* IPv6 */
        {"https://[::1]/", "[::1]", 443, "", 0},
        {"https://[0:0:0:0:0:0:0:1]:443/x", "[::1]", 443, "x", 0},
        {"https://[::FFFF:127.0.0.1]:8443/", "[::ffff:127.0.0.1]", 8443, "", 0},
        {"https://[fe80::1%25eth0]/", NULL, 0, "encoded '%'", 0},
        {"https://[fe80::1%eth0]/", NULL, 0, "zone", 0},
        {"https://[::1/", NULL, 0, "']'", 0},
        {"https://[::1]x/", NULL, 0, "after ']'", 0},
        {"https://[127.0.0.1]/", NULL, 0, "IPv6", 0},
        {"https://[::1]:/", "[::1]", 443, "", 0},
        /* ports */
        {"https://h.example:0/", NULL, 0, "port 0", 0},
        {"https://h.example:65536/", NULL, 0, "65535", 0},
        {"https://h.example:443x/", NULL, 0, "not a number", 0},
        {"https://h.example:-1/", NULL, 0, "not a number", 0},
        {"https://h.example:1:2/", NULL, 0, "holds no ':'", 0},
        /* names */
        {"https://xn--bcher-kva.example/", "xn--bcher-kva.example", 443, "", 0},
        {"https://b\xc3\xbc"
         "cher.example/",
         NULL, 0, "xn--", 0},
        {"https://git%2eexample.com/", "git.example.com", 443, "", 0},
        {"https://evil.test%2f.git.example.com/", NULL, 0, "encoded '/'", 0},
        {"https://evil.test%40git.example.com/", NULL, 0, "encoded '@'", 0},
        {"https://a..b/", NULL, 0, "empty label", 0},
        {"https://.a/", NULL, 0, "empty label", 0},
        {"https://a.b../", NULL, 0, "empty label", 0},
        {"https:///x", NULL, 0, "no host", 0},
        {"https://@/x", NULL, 0, "no host", 0},
        {"https://h_1.example/", "h_1.example", 443, "", 0},
        {"https://h*.example/", NULL, 0, "holds no '*'", 0},
        {"https://a.example/x y", NULL, 0, "space", 0},
        {"https://a.example/x\ny", NULL, 0, "control", 0},
        /* schemes */
        {"ftp://a.example/", NULL, 0, "http", 0},
        {"https:/a.example/", NULL, 0, "http", 0},
        {"https:a.example/", NULL, 0, "http", 0},
        {"//a.example/", NULL, 0, "http", 0},
        {"httpss://a.example/", NULL, 0, "http", 0},
        {"", NULL, 0, "http", 0},
        /* paths */
        {"https://h.example/a/%2e%2e/b", "h.example", 443, "a/../b", 0},
        {"https://h.example/a/./b", "h.example", 443, "a/./b", 0},
        {"https://h.example/my%20org/x", "h.example", 443, "my org/x", 0},
        {"https://h.example/%7Euser", "h.example", 443, "~user", 0},
        {"https://h.example/a%2Fb", "h.example", 443, "a/b", 1},
        {"https://h.example/a%2fb", "h.example", 443, "a/b", 1},
        {"https://h.example/a%5Cb", "h.example", 443, "a\\b", 1},
        {"https://h.example/a\\b", "h.example", 443, "a\\b", 1},
        {"https://h.example/a%00b", "h.example", 443, NULL, 1},
        {"https://h.example/a%0ab", "h.example", 443, NULL, 1},
        {"https://h.example/%c0%ae%c0%ae/x", "h.example", 443, NULL, 1},
        {"https://h.example/a%", "h.example", 443, "a%", 1},
        {"https://h.example/a%4", "h.example", 443, "a%4", 1},
        {"https://h.example/%u002e%u002e/x", "h.example", 443, NULL, 1},
        {"https://h.example/org/..;/evil", "h.example", 443, NULL, 1},
        {"https://h.example/org/.;x/evil", "h.example", 443, NULL, 1},
        {"https://h.example/org/x;y/z", "h.example", 443, "org/x;y/z", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        po_url u;
        po_err err;
        po_rc rc;

        po_err_clear(&err);
        rc = po_url_parse(rows[i].url, &u, &err);
        if (rows[i].host == NULL) {
            if (rc == PO_OK)
                fail_msg("row %zu (%s): accepted as %s", i, rows[i].url,
                         u.host);
            if (strstr(err.msg, rows[i].path) == NULL)
                fail_msg("row %zu (%s): message '%s', want '%s'", i,
                         rows[i].url, err.msg, rows[i].path);
            continue;
        }
        if (rc != PO_OK)
            fail_msg("row %zu (%s): refused: %s", i, rows[i].url, err.msg);
        if (strcmp(u.host, rows[i].host) != 0 || u.port != rows[i].port ||
            (rows[i].path != NULL && strcmp(u.path, rows[i].path) != 0) ||
            u.ambiguous != rows[i].ambiguous)
            fail_msg("row %zu (%s): %s port %u path '%s' ambiguous %d", i,
                     rows[i].url, u.host, u.port, u.path, u.ambiguous);
    }
}

/* Whether a prefix covers a URL. */
static void test_covers(void **state)
{
    static const struct {
        const char *prefix, *url;
        int covered;
    } rows[] = {
        {"https://git.example.com/org", "https://git.example.com/org/x.git", 1},
        {"https://git.example.com/org", "https://git.example.com/org", 1},
        {"https://git.example.com/org/", "https://git.example.com/org/x", 1},
        {"https://git.example.com/org", "https://git.example.com/organisation",
         0},
        {"https://git.example.com/org", "https://git.example.com/", 0},
        {"https://git.example.com/org", "https://git.example.com/or", 0},
        {"https://git.example.com/org",
         "https://git.example.com.evil.test/org/x", 0},
        {"https://git.example.com/org", "https://evilgit.example.com/org/x", 0},
        {"https://git.example.com/org", "https://example.com/org/x", 0},
        {"https://git.example.com/org", "https://sub.git.example.com/org/x", 0},
        /* dot segments: under the prefix both as written and resolved */
        {"https://h.example/org", "https://h.example/org/../evil", 0},
        {"https://h.example/org", "https://h.example/org/%2e%2e/evil", 0},
        {"https://h.example/org", "https://h.example/org/.%2E/evil", 0},
        {"https://h.example/org", "https://h.example/evil/../org/x", 0},
        {"https://h.example/org", "https://h.example/org/x/../../evil", 0},
        {"https://h.example/org", "https://h.example/org/./x", 1},
        {"https://h.example/org", "https://h.example/org/sub/../x", 1},
        {"https://h.example/org", "https://h.example/./org/x", 0},
        {"https://h.example/org/sub", "https://h.example/org/sub/../x", 0},
        {"https://h.example/org", "https://h.example/org/..", 0},
        {"https://h.example/org", "https://h.example//org//x", 1},
        /* ambiguous paths only under host-wide prefixes */
        {"https://h.example/org", "https://h.example/org/a%2Fb", 0},
        {"https://h.example/org", "https://h.example/org%2F..%2Fevil", 0},
        {"https://h.example/org", "https://h.example/org/..;/evil", 0},
        {"https://h.example/org", "https://h.example/org\\..\\evil", 0},
        {"https://h.example/", "https://h.example/org/a%2Fb", 1},
        {"https://h.example", "https://h.example/org/..;/evil", 1},
        /* hosts and ports */
        {"https://h.example/", "https://h.example:443/x", 1},
        {"https://h.example:443", "https://h.example/x", 1},
        {"https://h.example/", "https://h.example:8443/x", 0},
        {"https://h.example:8443/", "https://h.example/x", 0},
        {"http://h.example/", "https://h.example/", 0},
        {"https://h.example/", "http://h.example/", 0},
        {"http://h.example/", "http://h.example:80/", 1},
        {"https://GIT.Example.com/Org", "https://git.example.COM/Org/x", 1},
        {"https://git.example.com/Org", "https://git.example.com/org/x", 0},
        {"https://git.example.com./", "https://git.example.com/x", 1},
        {"https://git.example.com/", "https://git.example.com./x", 1},
        {"https://127.0.0.1/", "https://127.1/x", 1},
        {"https://127.0.0.1/", "https://2130706433/x", 1},
        {"https://127.0.0.1/", "https://127.0.0.2/x", 0},
        {"https://[::1]:8443/", "https://[0::1]:8443/x", 1},
        {"https://[::1]/", "https://127.0.0.1/x", 0},
        {"https://h.example/org", "https://u:p@h.example/org/x", 1},
        {"https://h.example/org", "https://h.example@evil.test/org/x", 0},
        {"https://h.example/my%20org", "https://h.example/my%20org/x", 1},
        {"https://h.example/%7Euser", "https://h.example/~user/x", 1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        po_url p, u;
        po_err err;

        if (po_url_parse_prefix(rows[i].prefix, strlen(rows[i].prefix), &p,
                                &err) != PO_OK)
            fail_msg("row %zu: prefix %s: %s", i, rows[i].prefix, err.msg);
        if (po_url_parse(rows[i].url, &u, &err) != PO_OK)
            fail_msg("row %zu: url %s: %s", i, rows[i].url, err.msg);
        if ((po_url_covers(&p, &u) > 0) != rows[i].covered)
            fail_msg("row %zu: %s %s %s", i, rows[i].prefix,
                     rows[i].covered ? "does not cover" : "covers",
                     rows[i].url);
    }
}

/* Entries of a match key that are refused (PO_CONFIG), with a word of the
 * message. */
static void test_bad_prefixes(void **state)
{
    static const struct {
        const char *prefix, *why;
    } rows[] = {
        {"git.example.com/path", "http"},
        {"ssh://git.example.com/", "http"},
        {"https://u@git.example.com/", "user name"},
        {"https://git.example.com/?x", "query"},
        {"https://git.example.com/#f", "fragment"},
        {"https://git.example.com/a/../b", "'..'"},
        {"https://git.example.com/./a", "'.'"},
        {"https://git.example.com/a%2Fb", "encoded"},
        {"https://git.example.com/a\\b", "'\\'"},
        {"https://git..example.com/", "empty label"},
        {"https://git.example.com:99999/", "65535"},
        {"https://", "no host"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        po_url p;
        po_err err;

        po_err_clear(&err);
        if (po_url_parse_prefix(rows[i].prefix, strlen(rows[i].prefix), &p,
                                &err) != PO_CONFIG ||
            err.rc != PO_CONFIG || strstr(err.msg, rows[i].why) == NULL)
            fail_msg("row %zu: %s: '%s' (want '%s')", i, rows[i].prefix,
                     err.msg, rows[i].why);
    }
}

/* git's request: protocol, host[:port], a path it has decoded already. */
static void test_from_git(void **state)
{
    static const struct {
        const char *protocol, *host, *path;
        const char *prefix; /* NULL: the request is refused */
        int covered;
    } rows[] = {
        {"https", "GIT.example.com:443", "org/x.git",
         "https://git.example.com/org", 1},
        {"HTTPS", "git.example.com", "org/x.git", "https://git.example.com/org",
         1},
        {"https", "git.example.com", NULL, "https://git.example.com/org", 0},
        {"https", "git.example.com", NULL, "https://git.example.com/", 1},
        {"https", "git.example.com", "org/../evil.git",
         "https://git.example.com/org", 0},
        {"https", "git.example.com", "evil/../org/x",
         "https://git.example.com/org", 0},
        {"https", "git.example.com", "org/sub/../x",
         "https://git.example.com/org", 1},
        /* a path with %XX left after git's decoding: double-encoded */
        {"https", "git.example.com", "org/%2e%2e/evil",
         "https://git.example.com/org", 0},
        {"https", "git.example.com", "org/%2e%2e/evil",
         "https://git.example.com/", 1},
        {"https", "git.example.com", "org/a\\b", "https://git.example.com/org",
         0},
        {"https", "git.example.com", "org/x?y=/../../evil",
         "https://git.example.com/org", 0},
        {"https", "git.example.com.", "org/x", "https://git.example.com/org",
         1},
        {"https", "127.1:8443", "x", "https://127.0.0.1:8443/", 1},
        {"https", "[::1]:8443", "x", "https://[::1]:8443/", 1},
        {"https", "git.example.com:8443", "x", "https://git.example.com/", 0},
        {"http", "git.example.com", "x", "https://git.example.com/", 0},
        {"https", "git.example.com@evil.test", NULL, NULL, 0},
        {"https", "evil.test/git.example.com", NULL, NULL, 0},
        {"https", "git.example.com%2f", NULL, NULL, 0},
        {"https", "evil.test\\git.example.com", NULL, NULL, 0},
        {"https", "", NULL, NULL, 0},
        {"https", "a..b", NULL, NULL, 0},
        {"ssh", "git.example.com", NULL, NULL, 0},
        {"https",
         "b\xc3\xbc"
         "cher.example",
         NULL, NULL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < ARRAY_LEN(rows); i++) {
        po_url p, u;
        po_err err;
        po_rc rc;

        rc = po_url_from_parts(rows[i].protocol, rows[i].host, rows[i].path, &u,
                               &err);
        if (rows[i].prefix == NULL) {
            if (rc == PO_OK)
                fail_msg("row %zu: %s accepted", i, rows[i].host);
            continue;
        }
        if (rc != PO_OK)
            fail_msg("row %zu: %s: %s", i, rows[i].host, err.msg);
        assert_int_equal(po_url_parse_prefix(rows[i].prefix,
                                             strlen(rows[i].prefix), &p, &err),
                         PO_OK);
        if ((po_url_covers(&p, &u) > 0) != rows[i].covered)
            fail_msg("row %zu: %s %s %s/%s", i, rows[i].prefix,
                     rows[i].covered ? "does not cover" : "covers",
                     rows[i].host, rows[i].path ? rows[i].path : "");
    }
}

static void test_match_list(void **state)
{
    po_url u;
    po_err err;
    long best = -1;

    (void)state;
    assert_int_equal(
        po_url_parse("https://git.example.com/org/team/x.git", &u, &err),
        PO_OK);
    assert_int_equal(po_url_match_list("https://git.example.com/ "
                                       "\thttps://git.example.com/org/team  "
                                       "https://git.example.com/org",
                                       &u, &best, &err),
                     PO_OK);
    assert_int_equal(best, 2 + (long)strlen("org/team"));
    assert_int_equal(
        po_url_match_list("https://other.example/", &u, &best, &err), PO_OK);
    assert_int_equal(best, 0);
    assert_int_equal(po_url_match_list(NULL, &u, &best, &err), PO_OK);
    assert_int_equal(best, 0);
    assert_int_equal(po_url_match_list("", &u, &best, &err), PO_OK);
    assert_int_equal(best, 0);
    /* A bad entry fails the whole key, so that a typo cannot let a less
     * specific profile answer in its place. */
    assert_int_equal(po_url_match_list("https://git.example.com/org "
                                       "git.example.com/org/team",
                                       &u, &best, &err),
                     PO_CONFIG);
    assert_non_null(strstr(err.msg, "'git.example.com/org/team'"));
}

/* po_url_choose_profile: the rule git and docker share. */
static void test_choose_profile(void **state)
{
    po_profile profs[5];
    po_config cfg;
    static const struct {
        const char *url;
        int named; /* index of -p's profile, or -1 */
        po_rc rc;
        int want; /* index of the chosen profile when PO_OK */
    } cases[] = {
        {"https://git.example.com/a/x.git", -1, PO_OK, 0},
        {"https://git.example.com/a/b/x.git", -1, PO_OK, 1}, /* longest */
        {"https://GIT.example.com./a/b/c", -1, PO_OK, 1},
        {"https://git.example.com/a/b/../../c", -1, PO_NOT_FOUND, 0},
        {"https://git.example.com/c", -1, PO_NOT_FOUND, 0},
        {"https://tie.example.com/x", -1, PO_CONFIG, 0},
        {"http://127.0.0.1:8080/x", -1, PO_USAGE, 0}, /* no allow_http */
        {"https://git.example.com/a/x", 0, PO_OK, 0},
        {"https://git.example.com/a/b/x", 0, PO_OK, 0}, /* -p wins */
        {"https://other.example.com/", 0, PO_NOT_FOUND, 0},
        {"https://git.example.com/a/x", 4, PO_CONFIG, 0}, /* no match */
    };
    size_t i;

    (void)state;
    memset(profs, 0, sizeof(profs));
    char n0[] = "a", m0[] = "https://git.example.com/a";
    char n1[] = "ab",
         m1[] = "https://git.example.com/a/b http://127.0.0.1:8080/";
    char n2[] = "tie1", m2[] = "https://tie.example.com";
    char n3[] = "tie2", m3[] = "https://TIE.example.com:443/";
    char n4[] = "none";

    profs[0].name = n0;
    profs[0].match = m0;
    profs[1].name = n1;
    profs[1].match = m1;
    profs[2].name = n2;
    profs[2].match = m2;
    profs[3].name = n3;
    profs[3].match = m3;
    profs[4].name = n4;
    memset(&cfg, 0, sizeof(cfg));
    cfg.profiles = profs;
    cfg.nprofiles = 5;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const po_profile *out = NULL;
        po_url u;
        po_err err;
        po_rc rc;

        po_err_clear(&err);
        assert_int_equal(po_url_parse(cases[i].url, &u, &err), PO_OK);
        rc = po_url_choose_profile(
            &cfg, cases[i].named >= 0 ? &profs[cases[i].named] : NULL, &u,
            cases[i].url, &out, &err);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d (%s)", cases[i].url, rc, cases[i].rc,
                     err.msg);
        if (rc == PO_OK)
            assert_ptr_equal(out, &profs[cases[i].want]);
        else
            assert_null(out);
    }
    /* the same http URL with allow_http: answered (loopback) */
    profs[1].allow_http = 1;
    {
        const po_profile *out = NULL;
        po_url u;
        po_err err;

        po_err_clear(&err);
        assert_int_equal(po_url_parse("http://127.0.0.1:8080/x", &u, &err),
                         PO_OK);
        assert_int_equal(po_url_choose_profile(&cfg, NULL, &u, "x", &out, &err),
                         PO_OK);
        assert_ptr_equal(out, &profs[1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_bad_prefixes),
        cmocka_unit_test(test_from_git),
        cmocka_unit_test(test_match_list),
        cmocka_unit_test(test_choose_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
