"""pam_oauth.so driven by pamtester through libpam-wrapper, against the test
authorization server (tests/authserver).

Most cases are rows of a table: the module arguments, the user, the password,
what the module must return (read from its own debug line "pam_sm_X: exit
(CODE)"), what pamtester must report, how many token requests the server must
see, and a log line that must appear.  Nothing under /etc is touched.

Base-passwd accounts (daemon, bin, sys: pamtest.LOCAL_USERS) stand in for
users, with identity provider users of the same names and alice's, bob's and
carol's passwords and roles; those lines pass minimum_uid=0.  The session
tests (the token handed to the user's cache, read back by oauth-token) need
root for setfsuid and a real account: they create one with useradd and skip
with the reason when not root.
"""

import json
import os
import re
import stat
import statistics
import subprocess
import sys
import unittest
import urllib.parse

import harness
import pamtest

SKIP = pamtest.skip_reason()

A, B, C, D = (pamtest.LOCAL_USERS + [None] * 4)[:4]
# local account -> (identity provider password, roles)
IDP = {}


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)


def idp_users(srv):
    """Register the local stand-ins at the server (after every reset)."""
    import authserver
    for local, idp in ((A, "alice"), (B, "bob"), (C, "carol")):
        user = authserver.DEFAULT_USERS[idp]
        IDP[local] = (user["password"], user["roles"])
        srv.user(local, user["password"], user["roles"])


class PamCase(unittest.TestCase):
    """Shared set-up: a server, a PamEnv, a profile for the generic endpoint."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)

    def setUp(self):
        self.srv.reset()
        idp_users(self.srv)

    # -- helpers -------------------------------------------------------------

    def profile(self, **keys):
        p = {
            "token_url": self.srv.url("/generic/token"),
            "grant": "password",
            "client_id": "test-client",
            "client_secret": "test-secret",
            "ca_file": self.srv.ca_file,
            "timeout": "10s",
            "retries": 1,
        }
        p.update(keys)
        return p

    def service(self, args="", conf=None, types=("auth", "account", "session"),
                low_uid=True, fail_delay=True, **profile):
        """A service of pam_oauth lines; returns its name."""
        conf = conf or self.env.config(self.profile(**profile))
        full = f"config={conf} " + args
        if low_uid:
            full += " minimum_uid=0"
        if fail_delay:
            full += " fail_delay=0"
        name = f"svc-{self.id().rsplit('.', 1)[-1]}"[:60]
        return self.env.oauth_service(name, full.strip() + " debug", types)

    def total(self):
        return self.srv.stats()["total"]

    def run_pam(self, service, user, ops=("authenticate",), password=None, **kw):
        if password is None:
            password = IDP.get(user, ("x",))[0]
        return self.env.run(service, user, list(ops), password=password, **kw)

    def assertLogged(self, r, pattern, priority=None):
        rx = re.compile(pattern)
        hits = [m for p, m in r.logs if rx.search(m) and (priority is None or p == priority)]
        self.assertTrue(hits, f"no log line matching {pattern!r} (priority {priority}) in\n" +
                        "\n".join(f"  {p} {m}" for p, m in r.logs))

    def assertNotLogged(self, r, text):
        """text is in no line the module logged and nowhere in the output
        but pam_wrapper's own trace lines."""
        for _, m in r.logs:
            self.assertNotIn(text, m)
        for line in r.text().splitlines():
            if not line.startswith("PWRAP_TRACE"):
                self.assertNotIn(text, line)


# ----------------------------------------------------------------- auth table

LONG_USER = "u" * 257
RIGHT = object()   # the user's right password

# name, user, password, extra PAM arguments, profile keys,
#   module exit code, pamtester error (None: success), requests, log regex
AUTH_CASES = [
    ("right password", A, RIGHT, "", {}, "PAM_SUCCESS", None, 1,
     r"^user \S+ authenticated as \S+ \(profile \[default\]\)$"),
    ("right password with every special character (bob)", B, RIGHT, "", {},
     "PAM_SUCCESS", None, 1, r"authenticated"),
    ("right password with every awkward character (carol)", C, RIGHT, "", {},
     "PAM_SUCCESS", None, 1, r"authenticated"),
    ("wrong password", A, "wrong-pass", "", {}, "PAM_AUTH_ERR", "PAM_AUTH_ERR", 1,
     r"rejected the credentials \(invalid_grant\)"),
    ("another user's password", A, "b0b p@ss+w0rd&=%", "", {}, "PAM_AUTH_ERR",
     "PAM_AUTH_ERR", 1, r"invalid_grant"),
    ("local user unknown at the identity provider", D, "alice-pass", "", {},
     "PAM_AUTH_ERR", "PAM_AUTH_ERR", 1, r"invalid_grant"),
    # A decoy request in its place, the password not sent (TestEnumeration).
    ("user unknown locally", "no-such-user-pam-oauth", "alice-pass", "", {},
     "PAM_USER_UNKNOWN", "PAM_USER_UNKNOWN", 1, r"not a local user.*password was not sent"),
    ("empty password: no request", A, "", "", {}, "PAM_AUTH_ERR", "PAM_AUTH_ERR", 0,
     r"empty password, no request sent"),
    ("user name with a control character", "dae\x01mon", "alice-pass", "", {},
     "PAM_USER_UNKNOWN", "PAM_USER_UNKNOWN", 0, r"control characters"),
    ("user name over 256 bytes", LONG_USER, "alice-pass", "", {},
     "PAM_USER_UNKNOWN", "PAM_USER_UNKNOWN", 0, r"longer than 256 bytes"),
    ("username_format with a suffix", A, "fmt-pass", "", {"username_format": "%u@example.com"},
     "PAM_SUCCESS", None, 1, r"authenticated as \S+@example\.com"),
    ("username_format %% is a literal %", A, "pct-pass", "", {"username_format": "x%%%u"},
     "PAM_SUCCESS", None, 1, r"authenticated as x%\S+ "),
    ("user name with '@' under an '@' format is ambiguous", "daemon@evil.test",
     "alice-pass", "", {"username_format": "%u@example.com"},
     "PAM_USER_UNKNOWN", "PAM_USER_UNKNOWN", 0, r"contains '@'.*ambiguous"),
    ("username_format without %u is refused", A, RIGHT, "", {"username_format": "admin"},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 0, r"username_format.*(%u|has no)"),
    ("username_format with an unknown conversion", A, RIGHT, "", {"username_format": "%d\\%u"},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 0, r"username_format.*'%d'"),
    ("username_format set by a PAM argument", A, "fmt-pass", "username_format=%u@example.com",
     {}, "PAM_SUCCESS", None, 1, r"authenticated as \S+@example\.com"),
    ("unknown argument is logged and ignored", A, RIGHT, "frobnicate no_such_key=1", {},
     "PAM_SUCCESS", None, 1, r"unknown PAM argument 'frobnicate' ignored"),
    ("unknown KEY=VALUE argument never shows its value", A, RIGHT, "no_such_key=s3cr3t-v4lue",
     {}, "PAM_SUCCESS", None, 1, r"unknown PAM argument 'no_such_key=\.\.\.' ignored"),
    ("bad value for a known key fails closed", A, RIGHT, "timeout=soon", {},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 0, r"PAM argument 'timeout'"),
    ("client_id overridden by a PAM argument: invalid_client", A, RIGHT, "client_id=nobody-client",
     {}, "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 1, r"rejected the OAuth client \(invalid_client\)"),
    ("a secret as a PAM argument is refused", A, RIGHT, "client_secret=p4m-arg-s3cret", {},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 0, r"secrets may not be PAM arguments"),
    ("wrong client secret: invalid_client", A, RIGHT, "", {"client_secret": "not-the-secret"},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 1, r"invalid_client"),
    ("client without the password grant: unauthorized_client", A, RIGHT, "",
     {"client_id": "froomle-client", "client_secret": "froomle-secret"},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 1, r"unauthorized_client"),
    ("scope the client may not have: invalid_scope", A, RIGHT, "",
     {"token_url": "/fluent/oauth/token", "client_id": "fluent-api",
      "client_secret": "fluent-secret", "body": "query", "client_auth": "post",
      "scope": "admin"},
     "PAM_SERVICE_ERR", "PAM_SERVICE_ERR", 1, r"invalid_scope"),
    ("server down: network", A, RIGHT, "", {"token_url": "https://127.0.0.1:1/token"},
     "PAM_AUTHINFO_UNAVAIL", "PAM_AUTHINFO_UNAVAIL", 0, r"unavailable \(network\)"),
    ("certificate from another CA: tls", A, RIGHT, "", {"token_url": "WRONGCERT"},
     "PAM_AUTHINFO_UNAVAIL", "PAM_AUTHINFO_UNAVAIL", 0, r"unavailable \(tls\)"),
    ("Fluent: query parameters, lowercase bearer, errors envelope", A, RIGHT, "",
     {"token_url": "/fluent/oauth/token", "client_id": "fluent-api",
      "client_secret": "fluent-secret", "body": "query", "client_auth": "post",
      "scope": "api"},
     "PAM_SUCCESS", None, 1, r"authenticated"),
    ("Fluent: wrong password in the errors envelope", A, "wrong", "",
     {"token_url": "/fluent/oauth/token", "client_id": "fluent-api",
      "client_secret": "fluent-secret", "body": "query", "client_auth": "post",
      "scope": "api"},
     "PAM_AUTH_ERR", "PAM_AUTH_ERR", 1, r"invalid_grant"),
    ("public client", A, RIGHT, "", {"client_id": "public-client", "client_secret": None,
                                     "client_auth": "none"},
     "PAM_SUCCESS", None, 1, r"authenticated"),
]


class TestAuthenticate(PamCase):

    def test_table(self):
        for (name, user, password, args, keys, code, error, requests, log) in AUTH_CASES:
            with self.subTest(name):
                self.srv.reset()
                idp_users(self.srv)
                if isinstance(password, str) and ("username_format" in keys or
                                                  "username_format" in args):
                    fmt = keys.get("username_format") or args.split("=", 1)[1]
                    idp = fmt.replace("%u", A).replace("%%", "%")
                    self.srv.user(idp, password, ["dev"])
                keys = dict(keys)
                if keys.get("token_url") == "WRONGCERT":
                    keys["token_url"] = self.srv.wrong_cert_url("/generic/token")
                elif keys.get("token_url", "").startswith("/"):
                    keys["token_url"] = self.srv.url(keys["token_url"])
                svc = self.service(args, **keys)
                pw = IDP[user][0] if password is RIGHT else password
                before = self.total()
                r = self.run_pam(svc, user, password=pw)
                self.assertEqual(r.exit("pam_sm_authenticate"), code, r)
                self.assertEqual(r.error, error, r)
                self.assertEqual(r.ok, error is None, r)
                self.assertEqual(self.total() - before, requests, r)
                self.assertLogged(r, log)
                if pw:
                    self.assertNotLogged(r, pw)
                self.assertNotLogged(r, "s3cr3t-v4lue")
                self.assertNotLogged(r, "p4m-arg-s3cret")
                self.assertNotLogged(r, "test-secret")

    def test_password_sent_exactly(self):
        """carol's password arrives at the server byte for byte (it only
        matches there if the encoding is right); so does the user name."""
        svc = self.service()
        r = self.run_pam(svc, C)
        self.assertTrue(r.ok, r)
        last = self.srv.stats()["last_requests"][-1]
        self.assertEqual(last["path"], "/generic/token")
        params = urllib.parse.parse_qs(last["body"], keep_blank_values=True)
        self.assertEqual(params["password"], [IDP[C][0]])
        self.assertEqual(params["username"], [C])
        self.assertEqual(params["grant_type"], ["password"])

    def test_low_uid_ignored_without_request(self):
        """minimum_uid defaults to 1000: daemon (uid 1) is ignored."""
        svc = self.service(low_uid=False)
        before = self.total()
        r = self.run_pam(svc, A)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_IGNORE", r)
        self.assertFalse(r.ok, r)     # an auth stack of nothing but ignores fails
        self.assertEqual(self.total(), before)
        self.assertLogged(r, r"uid \d+ is below minimum_uid 1000")

    def test_low_uid_prompted_and_password_left_to_next_module(self):
        """An ignored user is asked like any other (no prompt would tell a
        remote party the account is below minimum_uid); the answer goes,
        unsent, to the next module through PAM_AUTHTOK (here pam_oauth
        again, with minimum_uid=0 and use_first_pass, standing in for
        pam_unix try_first_pass)."""
        conf = self.env.config(self.profile())
        args = f"config={conf} fail_delay=0 debug"
        svc = self.env.service("svc-lowuid", [
            ("auth", "[success=done authinfo_unavail=ignore ignore=ignore default=die]",
             pamtest.module(), args),
            ("auth", "required", pamtest.module(), args + " minimum_uid=0 use_first_pass")])
        before = self.total()
        r = self.run_pam(svc, A)
        self.assertEqual(r.exits("pam_sm_authenticate"), ["PAM_IGNORE", "PAM_SUCCESS"], r)
        self.assertEqual(r.prompts, 1, r)
        self.assertTrue(r.ok, r)
        self.assertEqual(self.total(), before + 1)
        self.assertLogged(r, r"using the password of a previous module")

    def test_minimum_uid_argument(self):
        uid = pamtest.pwd.getpwnam(A).pw_uid
        svc = self.service(f"minimum_uid={uid + 1}", low_uid=False)
        r = self.run_pam(svc, A)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_IGNORE", r)
        svc = self.service(f"minimum_uid={uid}", low_uid=False)
        r = self.run_pam(svc, A)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)

    def test_profile_argument(self):
        conf = self.env.config({"default": self.profile(client_secret="wrong"),
                                "corp": self.profile()})
        r = self.run_pam(self.service("profile=corp", conf=conf), A)
        self.assertTrue(r.ok, r)
        self.assertLogged(r, r"profile \[corp\]")
        r = self.run_pam(self.service("profile=nope", conf=conf), A)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SERVICE_ERR", r)
        self.assertLogged(r, r"no profile \[nope\]")

    def test_config_problems(self):
        """Missing, group-writable or invalid configuration: PAM_SERVICE_ERR
        with the reason logged at LOG_ERR, no request."""
        good = self.env.config(self.profile())
        loose = self.env.config(self.profile(client_secret=None,
                                             client_secret_file=good), mode=0o666)
        os.chmod(loose, 0o666)
        invalid = self.env.config(self.profile(token_url="ftp://example.com/"))
        # Issue 14.7: a directory that holds the file, writable by its group.
        loose_dir = self.env.path("loose-dir")
        os.makedirs(loose_dir, exist_ok=True)
        os.chmod(loose_dir, 0o775)
        in_loose_dir = harness.write_file(os.path.join(loose_dir, "pam-oauth.conf"),
                                          open(good).read(), 0o600)
        for name, path, pattern in (
                ("missing", self.env.path("no-such.conf"), r"no-such\.conf"),
                ("group-writable", loose, r"writable by group or others"),
                ("in a group-writable directory", in_loose_dir,
                 r"refused: directory \S+/loose-dir is writable by its group \(mode 0775\)"
                 r".*StrictModes"),
                ("invalid token_url", invalid, r"token_url|ftp")):
            with self.subTest(name):
                before = self.total()
                r = self.run_pam(self.service(conf=path), A)
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SERVICE_ERR", r)
                self.assertEqual(self.total(), before)
                self.assertLogged(r, pattern, priority=3)

    def test_relative_config_path_fails_closed(self):
        r = self.run_pam(self.service("config=relative.conf"), A)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SERVICE_ERR", r)
        self.assertLogged(r, r"not an absolute path")

    @unittest.skipUnless(pamtest.is_root(), "needs root to run pamtester as another user")
    def test_unreadable_configuration_is_unavailable(self):
        """An unprivileged caller (a screen locker) that cannot read the
        configuration or the client secret file: PAM_AUTHINFO_UNAVAIL, a log
        line saying why, never success."""
        secret = harness.write_file(self.env.path("client.secret"), "test-secret\n", 0o600)
        readable = self.env.config(self.profile(client_secret=None, client_secret_file=secret),
                                   mode=0o644)
        private = self.env.config(self.profile(), mode=0o600)
        for name, conf, pattern in (
                ("configuration 0600 root", private, r"cannot\s+read the pam-oauth configuration"),
                ("client secret 0600 root", readable, r"cannot read the client secret")):
            with self.subTest(name):
                before = self.total()
                r = self.run_pam(self.service(conf=conf), A, as_user="nobody")
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
                self.assertEqual(r.error, "PAM_AUTHINFO_UNAVAIL", r)
                self.assertEqual(self.total(), before)
                self.assertLogged(r, pattern, priority=3)

    def test_fail_delay(self):
        """A failure asks for a 2 s delay by default (libpam applies it with
        some randomness); success does not wait."""
        svc = self.service(fail_delay=False)
        r = self.run_pam(svc, A, password="wrong")
        self.assertEqual(r.error, "PAM_AUTH_ERR", r)
        self.assertGreater(r.elapsed, 1.0, r)
        r = self.run_pam(svc, A)
        self.assertTrue(r.ok, r)
        self.assertLess(r.elapsed, 1.5, r)
        svc = self.service("fail_delay=0", fail_delay=False)
        r = self.run_pam(svc, A, password="wrong")
        self.assertLess(r.elapsed, 1.0, r)

    def test_chauthtok_ignored(self):
        svc = self.service(types=("password",))
        r = self.run_pam(svc, A, ops=["chauthtok"])
        self.assertEqual(r.exit("pam_sm_chauthtok"), "PAM_IGNORE", r)

    def test_authenticate_twice_on_one_handle(self):
        """A second authentication on one handle replaces the first one's
        state (whose cleanup cleanses the old token)."""
        svc = self.service()
        r = self.env.run(svc, A, ["authenticate", "authenticate", "acct_mgmt"],
                         password="alice-pass")
        self.assertEqual(r.exits("pam_sm_authenticate"), ["PAM_SUCCESS", "PAM_SUCCESS"], r)
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_SUCCESS", r)


# ----------------------------------------------------------------- enumeration

NO_SUCH_USER = "no-such-user-pam-oauth"


class TestEnumeration(PamCase):
    """No account oracle (the CVE-2018-15473 class): an existing user with a
    wrong password, a nonexistent user and a user below minimum_uid see the
    same conversation, and the first two fail in the same time, with one
    token request each; the nonexistent user's password is not sent."""

    def transcript(self, r):
        """What the conversation showed: pamtester's prompts and the lines
        that are not the module's log or pamtester's verdict."""
        return (r.prompts, r.other)

    def test_same_conversation(self):
        conf = self.env.config(self.profile())
        svc = self.env.oauth_service("enum-1000", f"config={conf} debug")
        svc0 = self.env.oauth_service("enum-0", f"config={conf} minimum_uid=0 debug")
        seen = {}
        for name, service, user in (("existing, wrong password", svc0, A),
                                    ("nonexistent", svc0, NO_SUCH_USER),
                                    ("nonexistent, minimum_uid 1000", svc, NO_SUCH_USER),
                                    ("below minimum_uid", svc, A)):
            r = self.run_pam(service, user, password="Wr0ng-pass-7")
            self.assertFalse(r.ok, r)
            seen[name] = self.transcript(r)
            # The fail delay (2 s, libpam varies it) is asked for every
            # failure, the ignored user's included.
            self.assertGreater(r.elapsed, 0.9, (name, r))
            self.assertNotLogged(r, "Wr0ng-pass-7")
        self.assertEqual(len(set(map(repr, seen.values()))), 1, seen)
        self.assertEqual(seen["nonexistent"][0], 1, seen)

    def test_same_time_and_work(self):
        svc = self.service()
        times = {A: [], NO_SUCH_USER: []}
        sent = []
        for i in range(12):
            for user in (A, NO_SUCH_USER) if i % 2 else (NO_SUCH_USER, A):
                before = self.total()
                r = self.run_pam(svc, user, password="Wr0ng-pass-7")
                self.assertFalse(r.ok, r)
                self.assertEqual(self.total() - before, 1, r)
                last = self.srv.stats()["last_requests"][-1]
                sent.append((user, urllib.parse.parse_qs(last["body"])))
                times[user].append(r.elapsed)
        for user, params in sent:
            if user == NO_SUCH_USER:
                # A random name that exists nowhere, a random password.
                self.assertNotEqual(params["username"], [NO_SUCH_USER])
                self.assertRegex(params["username"][0], r"^nonexistent-[0-9a-f]{16}$")
                self.assertNotEqual(params["password"], ["Wr0ng-pass-7"])
            else:
                self.assertEqual(params["username"], [A])
        known = statistics.median(times[A])
        unknown = statistics.median(times[NO_SUCH_USER])
        sys.stderr.write(f"\n# failure time, median of 12 (fail_delay=0): existing user "
                         f"{known * 1000:.1f} ms, nonexistent user {unknown * 1000:.1f} ms\n")
        self.assertLess(abs(known - unknown), max(0.25 * known, 0.005), times)

    def test_unknown_user_when_idp_is_down(self):
        """As for a real user: PAM_AUTHINFO_UNAVAIL, so the stack falls
        through the same way."""
        svc = self.service(timeout="2s", retries=0)
        self.srv.fault("/generic/token", "close", count=-1)
        try:
            for user in (A, NO_SUCH_USER):
                r = self.run_pam(svc, user, password="Wr0ng-pass-7")
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        finally:
            self.srv.clear_faults()


# ----------------------------------------------------------------- faults

# fault kind, its keywords, module exit code, outcome name in the log
FAULTS = [
    ("stall", {"seconds": 30}, "PAM_AUTHINFO_UNAVAIL", "timeout"),
    ("status", {"status": 500}, "PAM_AUTHINFO_UNAVAIL", "server_error"),
    ("status", {"status": 503}, "PAM_AUTHINFO_UNAVAIL", "server_error"),
    ("429", {"retry_after": 1}, "PAM_AUTHINFO_UNAVAIL", "rate_limited"),
    ("garbage", {}, "PAM_AUTHINFO_UNAVAIL", "malformed_response"),
    ("huge", {}, "PAM_AUTHINFO_UNAVAIL", "malformed_response"),
    ("empty", {"status": 500}, "PAM_AUTHINFO_UNAVAIL", "server_error"),
    ("empty", {"status": 200}, "PAM_AUTHINFO_UNAVAIL", "malformed_response"),
    ("redirect", {"location": "https://127.0.0.1:1/elsewhere"}, "PAM_AUTHINFO_UNAVAIL",
     "malformed_response"),
    ("close", {}, "PAM_AUTHINFO_UNAVAIL", "network"),
    ("reset", {}, "PAM_AUTHINFO_UNAVAIL", "network"),
    # Glewlwyd answers a bad password with an empty 403.
    ("empty", {"status": 403}, "PAM_AUTH_ERR", "invalid_grant"),
    ("status", {"status": 400, "body": '{"error":"invalid_request"}'}, "PAM_SERVICE_ERR",
     "invalid_request"),
    ("status", {"status": 400, "body": '{"error":"invalid_scope"}'}, "PAM_SERVICE_ERR",
     "invalid_scope"),
    ("status", {"status": 401, "body": '{"error":"invalid_client"}'}, "PAM_SERVICE_ERR",
     "invalid_client"),
]


class TestFaults(PamCase):

    def test_faults(self):
        """Every injected fault, on every attempt: the PAM code, the outcome
        in the log, and one deadline (timeout=3s) for the whole login."""
        svc = self.service(timeout="3s", retries=2)
        for kind, kw, code, outcome in FAULTS:
            with self.subTest(f"{kind} {kw}"):
                self.srv.clear_faults()
                self.srv.fault("/generic/token", kind, count=-1, **kw)
                r = self.run_pam(svc, A)
                self.srv.clear_faults()
                self.assertEqual(r.exit("pam_sm_authenticate"), code, r)
                self.assertEqual(r.error, code, r)
                self.assertLogged(r, r"\(%s\)" % outcome)
                self.assertLess(r.elapsed, 3 + 2.5, r)
                self.assertNotLogged(r, "alice-pass")

    def test_fault_once_then_retry_succeeds(self):
        svc = self.service(retries=2)
        for kind, kw in (("status", {"status": 503}), ("close", {}), ("429", {"retry_after": 1})):
            with self.subTest(kind):
                self.srv.clear_faults()
                self.srv.fault("/generic/token", kind, count=1, **kw)
                r = self.run_pam(svc, A)
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)

    def test_token_with_control_characters_refused(self):
        """Issue 14.7: an access or refresh token with CR, LF, a space or a
        control character would go into the session's cache, HTTP headers
        and git's line protocol: refused (malformed_response), as
        oauth-token refuses it (one rule, po_token_text_ok)."""
        svc = self.service(store_token=False)
        bad = [("access", {"access_token": "abc\r\nX-Injected: 1"}),
               ("access", {"access_token": "abc def"}),
               ("access", {"access_token": "abc\u0001"}),
               ("refresh", {"access_token": "good-token", "refresh_token": "r\nx"})]
        for which, members in bad:
            with self.subTest(repr(members)):
                body = json.dumps({"token_type": "bearer", "expires_in": 600, **members})
                self.srv.fault("/generic/token", "status", count=1, status=200, body=body)
                r = self.run_pam(svc, A)
                self.srv.clear_faults()
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
                self.assertLogged(r, r"the %s token holds characters not allowed" % which)
        body = json.dumps({"token_type": "bearer", "expires_in": 600,
                           "access_token": "good-token", "refresh_token": "good-refresh"})
        self.srv.fault("/generic/token", "status", count=1, status=200, body=body)
        r = self.run_pam(svc, A)
        self.srv.clear_faults()
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)

    def test_invalid_client_is_loud(self):
        svc = self.service(client_secret="wrong")
        r = self.run_pam(svc, A)
        self.assertEqual(r.error, "PAM_SERVICE_ERR", r)
        self.assertLogged(r, r"nobody can log in through this profile", priority=2)  # LOG_CRIT


# ----------------------------------------------------------------- stacking

class TestStacking(PamCase):

    def passdb(self, user, password, service):
        path = self.env.path(f"passdb-{service}")
        harness.write_file(path, f"{user}:{password}:{service}\n", 0o600)
        return path

    def conf(self, **keys):
        return self.env.config(self.profile(**keys))

    def oauth_line(self, control, args="", **keys):
        return ("auth", control, pamtest.module(),
                f"config={self.conf(**keys)} minimum_uid=0 fail_delay=0 debug {args}")

    def test_use_first_pass_after_another_module(self):
        """The first module asks and sets PAM_AUTHTOK (here pam_oauth itself
        with another profile: pam_matrix cannot play this part, it overwrites
        PAM_AUTHTOK in place when it is done); the second, with
        use_first_pass, uses that password without asking again."""
        conf = self.env.config({"first": self.profile(), "second": self.profile()})
        args = f"config={conf} minimum_uid=0 fail_delay=0 debug"
        svc = self.env.service("stack-ufp", [
            ("auth", "optional", pamtest.module(), args + " profile=first"),
            ("auth", "required", pamtest.module(), args + " profile=second use_first_pass")])
        before = self.total()
        r = self.run_pam(svc, A)
        self.assertTrue(r.ok, r)
        self.assertEqual(r.prompts, 1, r)
        self.assertEqual(r.exits("pam_sm_authenticate"), ["PAM_SUCCESS", "PAM_SUCCESS"], r)
        self.assertEqual(self.total(), before + 2)
        self.assertLogged(r, r"using the password of a previous module")

    def test_use_first_pass_after_pam_set_items(self):
        svc = self.set_items("stack-ufp-items", "use_first_pass")
        r = self.run_pam(svc, A, password="typed-wrong", env={"PAM_AUTHTOK": "alice-pass"})
        self.assertTrue(r.ok, r)
        self.assertEqual(r.prompts, 0, r)

    def test_use_first_pass_without_password(self):
        svc = self.env.service("stack-ufp-none", [self.oauth_line("required", "use_first_pass")])
        before = self.total()
        r = self.run_pam(svc, A)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertEqual(r.prompts, 0, r)
        self.assertEqual(self.total(), before)
        self.assertLogged(r, r"use_first_pass: no password from a previous module")

    def set_items(self, name, args):
        return self.env.service(name, [
            ("auth", "required", pamtest.wrapper_module("pam_set_items"), ""),
            self.oauth_line("required", args)])

    def test_try_first_pass(self):
        svc = self.set_items("stack-tfp", "try_first_pass")
        r = self.run_pam(svc, A, password="typed-wrong", env={"PAM_AUTHTOK": "alice-pass"})
        self.assertTrue(r.ok, r)
        self.assertEqual(r.prompts, 0, r)
        svc = self.env.service("stack-tfp-none", [self.oauth_line("required", "try_first_pass")])
        r = self.run_pam(svc, A)
        self.assertTrue(r.ok, r)
        self.assertEqual(r.prompts, 1, r)

    def test_without_first_pass_prompts(self):
        """Without use_first_pass/try_first_pass the module asks, even when
        an earlier module left a password."""
        svc = self.set_items("stack-nofp", "")
        r = self.run_pam(svc, A, password="alice-pass", env={"PAM_AUTHTOK": "stale"})
        self.assertTrue(r.ok, r)
        self.assertEqual(r.prompts, 1, r)

    def test_password_too_long_no_request(self):
        """Over PAM_MAX_RESP_SIZE - 1 bytes (only possible through
        PAM_AUTHTOK): refused before any request."""
        svc = self.set_items("stack-long", "use_first_pass")
        before = self.total()
        r = self.run_pam(svc, A, env={"PAM_AUTHTOK": "p" * 600})
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertEqual(self.total(), before)
        self.assertLogged(r, r"password longer than 511 bytes")
        r = self.run_pam(svc, A, env={"PAM_AUTHTOK": "p" * 511})
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertEqual(self.total(), before + 1)

    def fallback_service(self, name, **keys):
        """The man page's sshd stack: OAuth, falling back to a local module
        (pam_matrix standing in for pam_unix) only when the IdP is away."""
        db = self.passdb(A, "local-pass", name)
        return self.env.service(name, [
            self.oauth_line("[success=done authinfo_unavail=ignore default=die]",
                            **keys),
            ("auth", "required", pamtest.wrapper_module("pam_matrix"), f"passdb={db}")])

    def test_server_down_falls_through(self):
        svc = self.fallback_service("stack-fb-down")
        self.srv.fault("/generic/token", "close", count=-1)
        r = self.run_pam(svc, A, password="local-pass")
        self.srv.clear_faults()
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        self.assertTrue(r.ok, r)

    def test_unreachable_url_falls_through(self):
        svc = self.fallback_service("stack-fb-nourl", token_url="https://127.0.0.1:1/t")
        r = self.run_pam(svc, A, password="local-pass")
        self.assertTrue(r.ok, r)

    def test_wrong_password_does_not_fall_through(self):
        """The IdP said no: pam_matrix, which would accept this password, is
        not consulted."""
        svc = self.fallback_service("stack-fb-wrong")
        r = self.run_pam(svc, A, password="local-pass")
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertEqual(r.error, "PAM_AUTH_ERR", r)

    def test_right_password_is_done(self):
        svc = self.fallback_service("stack-fb-right")
        r = self.run_pam(svc, A, password="alice-pass")
        self.assertTrue(r.ok, r)


# ----------------------------------------------------------------- account

class TestAccount(PamCase):

    def fluent(self, **keys):
        p = dict(token_url=self.srv.url("/fluent/oauth/token"), client_id="fluent-api",
                 client_secret="fluent-secret", body="query", client_auth="post",
                 scope="api")
        p.update(keys)
        return p

    def acct(self, keys, user=A, client_opts=None):
        if client_opts:
            self.srv.client("test-client", secret="test-secret", **client_opts)
        svc = self.service(**keys)
        return self.run_pam(svc, user, ops=["authenticate", "acct_mgmt"])

    def test_account_table(self):
        # name, profile keys, user, client options, module exit, log regex
        cases = [
            ("no checks", {}, A, None, "PAM_SUCCESS", r"account checks passed"),
            ("all roles present (response 'roles')",
             {"require_roles": "admin dev", "roles_claim": "roles"}, A,
             {"roles_in_response": True}, "PAM_SUCCESS", r"require_roles"),
            ("one role missing", {"require_roles": "admin ops", "roles_claim": "roles"}, A,
             {"roles_in_response": True}, "PAM_PERM_DENIED", r'role "ops" is not in "roles"'),
            ("roles: all listed are required", {"require_roles": "admin", "roles_claim": "roles"},
             B, {"roles_in_response": True}, "PAM_PERM_DENIED", r'role "admin"'),
            ("no roles in the response", {"require_roles": "dev"}, A, None, "PAM_PERM_DENIED",
             r'no member "Roles"'),
            ("Fluent Roles (default roles_claim)", self.fluent(require_roles="dev"), B, None,
             "PAM_SUCCESS", r"require_roles"),
            ("Fluent Roles, role missing", self.fluent(require_roles="admin"), B, None,
             "PAM_PERM_DENIED", r'role "admin" is not in "Roles"'),
            ("Fluent empty Roles", self.fluent(require_roles="dev"), C, None,
             "PAM_PERM_DENIED", r'role "dev"'),
            ("scope granted", self.fluent(require_scope="api"), A, None, "PAM_SUCCESS",
             r"require_scope"),
            ("scope not granted", self.fluent(require_scope="api admin"), A, None,
             "PAM_PERM_DENIED", r'scope "admin" was not granted'),
            ("scope requested, server omits it", {"scope": "read write",
                                                  "require_scope": "write"}, A, None,
             "PAM_SUCCESS", r"require_scope"),
        ]
        for name, keys, user, client_opts, code, log in cases:
            with self.subTest(name):
                self.srv.reset()
                idp_users(self.srv)
                r = self.acct(keys, user, client_opts)
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
                self.assertEqual(r.exit("pam_sm_acct_mgmt"), code, r)
                self.assertEqual(r.ok, code == "PAM_SUCCESS", r)
                if code != "PAM_SUCCESS":
                    self.assertEqual(r.error, code, r)
                self.assertLogged(r, log)

    def test_not_authenticated_here_is_ignored(self):
        svc = self.service(require_roles="admin", types=("account",))
        r = self.run_pam(svc, A, ops=["acct_mgmt"])
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_IGNORE", r)

    def test_failed_authentication_leaves_nothing(self):
        svc = self.service()
        r = self.env.run(svc, A, ["authenticate"], password="wrong")
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)


# ----------------------------------------------------------------- hygiene

class TestHygiene(PamCase):

    def test_silent_on_stdout_and_stderr(self):
        """The module writes nothing to stdout or stderr itself: with
        pam_wrapper's log output off, pamtester's output is only its own."""
        svc = self.service()
        for password in ("alice-pass", "wrong"):
            r = self.run_pam(svc, A, ops=["authenticate", "acct_mgmt"], password=password,
                             debuglevel=None, env={"PAM_WRAPPER_DEBUGLEVEL": "0"})
            self.assertEqual(r.other, [], r)
            for line in r.text().splitlines():
                line = line.replace("Password: ", "")
                if line:
                    self.assertTrue(line.startswith(("pamtester: ", "PWRAP_")), line)
            self.assertEqual([m for _, m in r.logs], [], r)

    def test_no_secret_in_logs(self):
        """Every line the module logs, at every priority, with debug on:
        neither the password, nor the client secret.  (pam_wrapper's own
        trace level, PAM_WRAPPER_DEBUGLEVEL=3, prints PAM_AUTHTOK itself, so
        it is not used here.)"""
        svc = self.service("debug")
        r = self.run_pam(svc, C, ops=["authenticate", "acct_mgmt"], debuglevel=2)
        self.assertTrue(r.ok, r)
        self.assertGreater(len(r.logs), 3, r)
        lines = [m for _, m in r.logs] + r.other
        for s in [IDP[C][0], "test-secret"] + [p for p in IDP[C][0].split() if len(p) > 3]:
            for line in lines:
                self.assertNotIn(s, line)

    def test_entry_and_exit_logged_only_with_debug(self):
        conf = self.env.config(self.profile())
        svc = self.env.oauth_service("nodebug", f"config={conf} minimum_uid=0 fail_delay=0")
        r = self.run_pam(svc, A, ops=["authenticate"])
        self.assertTrue(r.ok, r)
        self.assertEqual(r.exits("pam_sm_authenticate"), [], r)
        self.assertEqual([p for p, _ in r.logs if p == 7], [], r)


# ----------------------------------------------------------------- sessions

class TestSession(PamCase):
    """The token handed to the user's session (root: a child that drops to
    the user writes it; useradd)."""

    user = None

    @classmethod
    def setUpClass(cls):
        if not pamtest.is_root():
            raise unittest.SkipTest("the session tests need root (to act as the user, "
                                    "useradd); CI runs them as root")
        super().setUpClass()
        cls.user = pamtest.LocalUser("po-pamtest")

    @classmethod
    def tearDownClass(cls):
        if cls.user:
            cls.user.remove()

    def setUp(self):
        super().setUp()
        self.srv.user(self.user.name, "sess-pass", ["dev"])
        self.cache = os.path.join(self.user.home, ".cache", "pam-oauth")
        subprocess.run(["rm", "-rf", os.path.join(self.user.home, ".cache")], check=True)
        self.secret = harness.write_file(self.env.path("client.secret"), "test-secret\n", 0o600)

    def conf(self, **keys):
        """Readable by the user (oauth-token reads it too): the secret in a
        root-only file."""
        return self.env.config(self.profile(client_secret=None, client_secret_file=self.secret,
                                            **keys), mode=0o644)

    def svc(self, extra="", **keys):
        conf = self.conf(**keys)
        show = harness.write_file(self.env.path("show-env"),
                                  "#!/bin/sh\nprintenv OAUTH_TOKEN_CACHE_DIR\nexit 0\n", 0o755)
        name = f"sess-{self.id().rsplit('.', 1)[-1]}"[:60]
        args = f"config={conf} fail_delay=0 debug {extra}"
        return self.env.service(name, [
            ("auth", "required", pamtest.module(), args),
            ("account", "required", pamtest.module(), args),
            ("session", "required", pamtest.module(), args),
            # pam_exec hands the PAM environment to its child: this shows
            # what the session would see.
            ("session", "optional", "pam_exec.so", f"stdout {show}"),
        ]), conf

    def entry(self):
        path = os.path.join(self.cache, "default.json")
        st = os.lstat(path)
        with open(path) as f:
            return st, json.load(f)

    def test_store_token(self):
        """store_token=yes: the token lands in ~/.cache/pam-oauth/default.json,
        owned by the user, 0600, in a 0700 directory; OAUTH_TOKEN_CACHE_DIR
        is in the session's environment; once per handle."""
        svc, conf = self.svc(store_token=True)
        r = self.run_pam(svc, self.user.name, ["authenticate", "acct_mgmt", "setcred",
                                               "open_session"], password="sess-pass")
        self.assertTrue(r.ok, r)
        st, e = self.entry()
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual((st.st_uid, st.st_gid), (self.user.uid, self.user.gid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        dst = os.lstat(self.cache)
        self.assertEqual(dst.st_uid, self.user.uid)
        self.assertEqual(stat.S_IMODE(dst.st_mode), 0o700)
        self.assertEqual(e["username"], self.user.name)
        self.assertTrue(e["access_token"])
        self.assertIn(self.cache, r.other, r)                  # printenv in the session
        self.assertEqual(len([m for _, m in r.logs if m.startswith("token of user")]), 1, r)
        self.assertLogged(r, r"token already stored")
        self.assertNotLogged(r, e["access_token"])
        if e.get("refresh_token"):
            self.assertNotLogged(r, e["refresh_token"])
        self.oauth_token_reads_it(conf, e["access_token"])

    def test_refused_account_leaves_no_hand_off(self):
        """store_token as root leaves the token's hand-off for a session in
        another process (sshd's keyboard-interactive); an account check
        that refuses the login removes it at once."""
        svc, _ = self.svc(store_token=True, require_roles="admin", roles_claim="roles")
        self.srv.client("test-client", secret="test-secret", roles_in_response=True)
        mine = f"handoff.{self.user.uid}."
        before = {n for n in os.listdir("/run/pam-oauth") if n.startswith(mine)} \
            if os.path.isdir("/run/pam-oauth") else set()
        r = self.run_pam(svc, self.user.name, ["authenticate", "acct_mgmt"],
                         password="sess-pass")
        self.assertFalse(r.ok, r)
        self.assertLogged(r, r'role "admin" is not in "roles"')
        self.assertLogged(r, r"the refused login's token hand-off \S+ was removed")
        after = {n for n in os.listdir("/run/pam-oauth") if n.startswith(mine)}
        self.assertEqual(after - before, set(), r)

    def oauth_token_reads_it(self, conf, token):
        helper = harness.staged_helper()   # the user may not reach the checkout
        if not os.access(helper, os.X_OK):
            self.skipTest(f"{helper} is not built yet: the cache hand-off to oauth-token "
                          "was not checked")
        before = self.total()
        env = {"PATH": "/usr/bin:/bin", "HOME": self.user.home,
               "OAUTH_TOKEN_CACHE_DIR": self.cache, "LC_ALL": "C"}
        p = self.user.run([helper, "-c", conf, "-p", "default"], env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stdout.decode().strip(), token)
        self.assertEqual(self.total(), before, "oauth-token made a new request")

    def test_store_off_by_default(self):
        svc, _ = self.svc()
        r = self.run_pam(svc, self.user.name, ["authenticate", "open_session"],
                         password="sess-pass")
        self.assertTrue(r.ok, r)
        self.assertFalse(os.path.exists(self.cache))
        self.assertLogged(r, r"store_token is off")

    def test_remove_on_close(self):
        svc, _ = self.svc(store_token=True, remove_on_close=True)
        r = self.run_pam(svc, self.user.name, ["authenticate", "open_session", "close_session"],
                         password="sess-pass")
        self.assertTrue(r.ok, r)
        self.assertLogged(r, r"stored in")
        self.assertLogged(r, r"removed from")
        self.assertFalse(os.path.exists(os.path.join(self.cache, "default.json")))

    def test_delete_cred(self):
        """PAM_DELETE_CRED (which pamtester cannot send: pam-loop does)
        removes what PAM_ESTABLISH_CRED stored."""
        loop = os.path.join(harness.build_dir(), "tests", "tools", "pam-loop")
        if not os.access(loop, os.X_OK):
            self.skipTest(f"{loop} is not built (make test-tools)")
        svc, _ = self.svc(store_token=True, remove_on_close=True)
        entry = os.path.join(self.cache, "default.json")
        p = subprocess.run([loop, "-n", "1", "-o", "estab", svc, self.user.name],
                           input=b"sess-pass\n", capture_output=True,
                           env=self.env.environ(debuglevel=None), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertTrue(os.path.exists(entry))
        p = subprocess.run([loop, "-n", "1", "-o", "estab,delete", svc, self.user.name],
                           input=b"sess-pass\n", capture_output=True,
                           env=self.env.environ(debuglevel=None), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertIn("delete 0", p.stdout.decode())
        self.assertFalse(os.path.exists(entry))

    def test_no_authentication_no_store(self):
        svc, _ = self.svc(store_token=True)
        r = self.run_pam(svc, self.user.name, ["open_session"])
        self.assertEqual(r.exit("pam_sm_open_session"), "PAM_IGNORE", r)
        self.assertFalse(os.path.exists(self.cache))

    def test_default_minimum_uid_admits_real_user(self):
        """The created user has uid >= 1000: no minimum_uid override."""
        self.assertGreaterEqual(self.user.uid, 1000)
        svc, _ = self.svc()
        r = self.run_pam(svc, self.user.name, password="sess-pass")
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)

    def test_symlink_in_cache_not_followed(self):
        """A link planted where the entry goes: the entry replaces the link
        (written as the user), the link's target is untouched."""
        os.makedirs(self.cache, 0o700)
        target = harness.write_file(self.env.path("victim"), "untouched\n", 0o644)
        os.chown(os.path.join(self.user.home, ".cache"), self.user.uid, self.user.gid)
        os.chown(self.cache, self.user.uid, self.user.gid)
        link = os.path.join(self.cache, "default.json")
        os.symlink(target, link)
        os.lchown(link, self.user.uid, self.user.gid)
        svc, _ = self.svc(store_token=True)
        r = self.run_pam(svc, self.user.name, ["authenticate", "open_session"],
                         password="sess-pass")
        with open(target) as f:
            self.assertEqual(f.read(), "untouched\n")
        if r.ok:
            self.assertFalse(os.path.islink(link))

    def test_cache_dir_user_dir_made_in_root_only_base(self):
        """cache_dir = BASE/%u with BASE root's alone (0755): the user's
        directory does not exist yet and the user could not make it, so
        root makes it (the user's, 0700) and the user's child writes the
        entry in it."""
        base = pamtest.world_dir("pam-oauth-caches-")
        svc, _ = self.svc(store_token=True, cache_dir=os.path.join(base, "%u"))
        r = self.run_pam(svc, self.user.name, ["authenticate", "open_session"],
                         password="sess-pass")
        self.assertTrue(r.ok, r)
        mine = os.path.join(base, self.user.name)
        st = os.lstat(mine)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (self.user.uid, self.user.gid, 0o700))
        self.assertEqual(os.lstat(os.path.join(mine, "default.json")).st_uid, self.user.uid)
        self.assertLogged(r, r"made cache directory .* for user")

    def test_no_confused_deputy_with_group_zero(self):
        """A directory root's group may write and the user may not (0775
        root:root), and a host with supplementary group 0 (pamtester as
        root here): no directory of the user's appears there, and the log
        says why."""
        base = pamtest.world_dir("pam-oauth-caches-")
        os.chmod(base, 0o775)
        svc, _ = self.svc(store_token=True, cache_dir=os.path.join(base, "%u"))
        r = self.run_pam(svc, self.user.name, ["authenticate", "open_session"],
                         password="sess-pass", groups=[0])
        self.assertEqual(r.exit("pam_sm_open_session"), "PAM_SESSION_ERR", r)
        self.assertFalse(os.path.lexists(os.path.join(base, self.user.name)), r)
        self.assertLogged(r, r"cannot store the token of user .*Permission denied.*"
                             r"writable by its group")

    def test_cache_dir_with_expansion(self):
        base = pamtest.world_dir("pam-oauth-caches-")
        os.chmod(base, 0o1777)
        svc, _ = self.svc(store_token=True, cache_dir=os.path.join(base, "%u"))
        r = self.run_pam(svc, self.user.name, ["authenticate", "open_session"],
                         password="sess-pass")
        self.assertTrue(r.ok, r)
        path = os.path.join(base, self.user.name, "default.json")
        self.assertEqual(os.lstat(path).st_uid, self.user.uid)
        self.assertIn(os.path.join(base, self.user.name), r.other, r)


# ----------------------------------------------------------------- memory

class TestMemory(PamCase):
    """pam-loop runs pam_start/pam_authenticate/pam_end cycles in one
    process: 100 under valgrind (definite and indirect leaks are errors;
    a leak on the path every cycle takes is reported from the first cycle
    on, and valgrind costs some 0.2 s a cycle) and 1000 natively (resident
    memory must not grow between cycles 100 and 1000: what builds up
    slowly shows there)."""

    CYCLES = 1000
    VALGRIND_CYCLES = 100
    LSAN_CYCLES = 200

    def loop(self):
        path = os.path.join(harness.build_dir(), "tests", "tools", "pam-loop")
        if not os.access(path, os.X_OK):
            self.skipTest(f"{path} is not built (make test-tools)")
        return path

    def loop_service(self):
        """auth + account for daemon; as root also the session calls, with
        the token stored in a sticky directory (cache_dir=BASE/%u) and
        removed again."""
        keys = {}
        self.ops = ["-a"]
        if pamtest.is_root():
            base = pamtest.world_dir("pam-oauth-loop-")
            os.chmod(base, 0o1777)
            keys = {"store_token": True, "remove_on_close": True,
                    "cache_dir": os.path.join(base, "%u")}
            self.ops = ["-o", "acct,estab,open,close,delete"]
        conf = self.env.config(self.profile(**keys))
        return self.env.oauth_service(
            "loop", f"config={conf} minimum_uid=0 fail_delay=0",
            ("auth", "account", "session"))

    def rss(self, out):
        return {int(m.group(1)): int(m.group(2))
                for m in re.finditer(r"^cycle (\d+) VmRSS (\d+)$", out, re.M)}

    @unittest.skipIf(pamtest.SANITIZE, "built with sanitizers: ASan's quarantine holds freed "
                     "memory, so resident size says nothing about leaks there")
    def test_rss_stable(self):
        loop = self.loop()
        svc = self.loop_service()
        env = self.env.environ(debuglevel=None)
        p = subprocess.run([loop, "-n", str(self.CYCLES)] + self.ops + [svc, A],
                           input=b"alice-pass\n", capture_output=True, env=env, timeout=600)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        rss = self.rss(out)
        growth = rss[self.CYCLES] - rss[100]
        sys.stderr.write(f"\n# RSS kB: cycle 100 {rss[100]}, cycle {self.CYCLES} "
                         f"{rss[self.CYCLES]}, growth {growth}\n")
        # 900 leaked handles of even 100 bytes would be 90 kB; allow for
        # allocator noise.
        self.assertLess(growth, 512, out)

    @unittest.skipIf(os.environ.get("PO_SANITIZE") == "1",
                     "built with sanitizers: LeakSanitizer covers leaks there")
    def test_valgrind(self):
        loop = self.loop()
        valgrind = pamtest.valgrind(self)
        svc = self.loop_service()
        # pam_wrapper's RTLD_DEEPBIND does not mix with valgrind.
        env = self.env.environ(debuglevel=None, extra={"PAM_WRAPPER_DISABLE_DEEPBIND": "1"})
        log = self.env.path("valgrind.log")
        p = subprocess.run([valgrind, "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect",
                            "--error-exitcode=99", f"--log-file={log}",
                            loop, "-n", str(self.VALGRIND_CYCLES)] + self.ops + [svc, A],
                           input=b"alice-pass\n", capture_output=True, env=env, timeout=1500)
        with open(log) as f:
            report = f.read()
        keys = ("in use at exit", "total heap usage", "definitely lost", "indirectly lost",
                "possibly lost", "still reachable", "ERROR SUMMARY")
        summary = [l for l in report.splitlines() if any(k in l for k in keys)]
        sys.stderr.write(f"\n# valgrind, {self.VALGRIND_CYCLES} cycles:\n" +
                         "".join(f"# {l}\n" for l in summary))
        self.assertEqual(p.returncode, 0, report[-6000:] + p.stderr.decode()[-2000:])
        self.assertIn(f"done {self.VALGRIND_CYCLES} cycles, 0 failures", p.stdout.decode())
        self.assertRegex(report, r"ERROR SUMMARY: 0 errors")


    @unittest.skipUnless(pamtest.SANITIZE, "only in the sanitizer build (valgrind covers "
                         "the plain build)")
    def test_leak_sanitizer(self):
        """The sanitizer build: pam-loop (built with ASan) under
        LeakSanitizer; any leak fails the run."""
        loop = self.loop()
        svc = self.loop_service()
        env = self.env.environ(debuglevel=None,
                               extra={"ASAN_OPTIONS": "detect_leaks=1:exitcode=23"})
        p = subprocess.run([loop, "-n", str(self.LSAN_CYCLES)] + self.ops + [svc, A],
                           input=b"alice-pass\n", capture_output=True, env=env, timeout=600)
        err = p.stderr.decode()
        self.assertNotIn("LeakSanitizer", err)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + err[-6000:])
        self.assertIn(f"done {self.LSAN_CYCLES} cycles, 0 failures", p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
