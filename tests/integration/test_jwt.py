"""Token verification end to end: JWTs from the test server's /jwt endpoints
(tests/authserver/jwt_issuer.py) and from Glewlwyd, checked by
tests/tools/po-verify (the core, as the helper uses it) and by pam_oauth.so
through pamtester (user binding, roles from the verified token).

Each po-verify run prints one JSON line per token with the typed outcome;
the server counts its key set fetches, so the caching and the rate limit of
unknown-kid refetches are checked from the outside.
"""

import base64
import json
import os
import pwd
import stat
import subprocess
import unittest
import urllib.parse
import urllib.request

import harness

ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")

# forgery -> (the outcome po-verify must print, the algorithm to use)
ATTACKS = {
    "wrong_key": ("bad_signature", "RS256"),
    "alg_none": ("algorithm_refused", "RS256"),
    "hs256_confusion": ("algorithm_refused", "RS256"),
    "expired": ("expired", "ES256"),
    "nbf_future": ("not_yet_valid", "EdDSA"),
    "wrong_iss": ("wrong_issuer", "RS256"),
    "wrong_aud": ("wrong_audience", "PS256"),
    "malformed": ("malformed_token", "RS256"),
    "huge": ("malformed_token", "RS256"),
    "truncated_sig": ("bad_signature", "RS384"),
    "der_sig": ("bad_signature", "ES256"),
    "no_exp": ("missing_claim", "ES384"),
    "user_mismatch": ("user_mismatch", "RS256"),
    "unknown_kid": ("unknown_key", "RS256"),
}


def po_verify_path():
    return os.path.join(harness.build_dir(), "tests", "tools", "po-verify")


def run_verify(conf, profile, tokens, user=None, which=None, opts=(), count=None):
    """po-verify over tokens (a list); returns (results, stderr)."""
    argv = [po_verify_path()]
    for o in opts:
        argv += ["-o", o]
    if user is not None:
        argv += ["-u", user]
    if which is not None:
        argv += ["-w", which]
    if count is not None:
        argv += ["-n", str(count)]
    argv += [conf, profile]
    proc = subprocess.run(argv, input="\n".join(tokens) + "\n", capture_output=True,
                          text=True, timeout=120)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    for token in tokens:
        # The token never appears in what the tool prints or logs.
        if len(token) > 20:
            assert token not in proc.stdout and token not in proc.stderr, "token leaked"
    return results, proc.stderr


def write_conf(directory, profiles):
    lines = []
    for name, keys in profiles.items():
        lines.append(f"[{name}]")
        for k, v in keys.items():
            if v is not None:
                lines.append(f"{k} = {v}")
        lines.append("")
    return harness.write_file(os.path.join(directory, "pam-oauth.conf"), "\n".join(lines))


class JwtCase(unittest.TestCase):
    """A fresh key cache directory per test and a profile for /jwt."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()

    def setUp(self):
        self.srv.reset()
        self.dir = harness.tmpdir()
        self.cache = os.path.join(self.dir, "jwks")

    def conf(self, **keys):
        p = {"token_url": self.srv.url("/jwt/token"), "grant": "password",
             "client_id": "test-client", "client_secret": "test-secret",
             "ca_file": self.srv.ca_file, "verify": "jwt", "issuer": self.srv.jwt_issuer,
             "jwks_cache_dir": self.cache, "timeout": "10s", "retries": 0}
        p.update(keys)
        return write_conf(self.dir, {"jwt": p})

    def token(self, which="access_token", user="alice", password="alice-pass", scope=None):
        return self.srv.jwt_token(user, password, scope=scope)[which]

    def verify(self, tokens, conf=None, **kw):
        if isinstance(tokens, str):
            tokens = [tokens]
        results, stderr = run_verify(conf or self.conf(), "jwt", tokens, **kw)
        self.assertEqual(len(results), len(tokens), stderr)
        return results if len(results) > 1 else results[0]

    def fetches(self):
        return self.srv.jwt_stats()["jwks_fetches"]

    def assertOutcome(self, result, outcome):
        self.assertEqual(result["outcome"], outcome, result)


class TestAlgorithms(JwtCase):

    def test_each_algorithm(self):
        for alg in ALGS:
            with self.subTest(alg=alg):
                kid = self.srv.jwt(alg=alg)["kid"]
                r = self.verify(self.token(), user="alice")
                self.assertOutcome(r, "ok")
                self.assertEqual(r["method"], "jwt")
                self.assertEqual(r["alg"], alg)
                self.assertEqual(r["kid"], kid)
                self.assertEqual(r["user"], "alice")
                self.assertEqual(r["claims"]["realm_access"]["roles"], ["admin", "dev"])
                # the id_token too (its aud is the client_id)
                r = self.verify(self.token("id_token"), which="id", user="alice")
                self.assertOutcome(r, "ok")
        # One key set fetch for all of them: the disk cache.
        self.assertEqual(self.fetches(), 1)

    def test_memory_cache_in_one_context(self):
        conf = self.conf(jwks_cache_dir=os.path.join(self.dir, "other"))
        r, stderr = run_verify(conf, "jwt", [self.token()], count=5)
        self.assertEqual(len(r), 5, stderr)
        self.assertEqual([x["outcome"] for x in r], ["ok"] * 5)
        self.assertEqual([x["jwks_fetches"] for x in r], [1] * 5)
        self.assertEqual(self.fetches(), 1)

    def test_jwks_uri_skips_discovery(self):
        conf = self.conf(jwks_uri=self.srv.url("/jwt/jwks"))
        self.assertOutcome(self.verify(self.token(), conf=conf), "ok")
        stats = self.srv.jwt_stats()
        self.assertEqual((stats["discovery_fetches"], stats["jwks_fetches"]), (0, 1))

    def test_discovery_for_another_issuer_is_refused(self):
        # The discovery document names BASE/jwt, not BASE/jwt/.
        conf = self.conf(issuer=self.srv.jwt_issuer + "/")
        r = self.verify(self.token(), conf=conf)
        self.assertOutcome(r, "wrong_issuer")
        self.assertIn("discovery document", r["message"])
        self.assertEqual(self.fetches(), 0)

    def test_algorithm_refused_before_any_fetch(self):
        self.srv.jwt(alg="ES256")
        r = self.verify(self.token(), conf=self.conf(jwt_algorithms="RS256 EdDSA"))
        self.assertOutcome(r, "algorithm_refused")
        self.assertEqual(self.fetches(), 0)

    def test_typ(self):
        conf = self.conf(jwt_typ="at+jwt")
        self.assertOutcome(self.verify(self.token(), conf=conf), "ok")
        # the id_token is typ JWT
        self.assertOutcome(self.verify(self.token("id_token"), conf=conf, which="id"),
                           "wrong_type")

    def test_audience(self):
        # aud is the client_id; the audience key is not, so jwt_audience wins.
        self.assertOutcome(self.verify(self.token(), conf=self.conf(audience="api")),
                           "wrong_audience")
        self.assertOutcome(self.verify(self.token(), conf=self.conf(
            audience="api", jwt_audience="test-client")), "ok")
        self.srv.jwt(audience="https://api.test")
        self.assertOutcome(self.verify(self.token(), conf=self.conf(
            audience="https://api.test")), "ok")

    def test_cache_file(self):
        for max_age, kept in ((5, 60), (300, 300), (10 ** 7, 86400)):
            with self.subTest(max_age=max_age):
                cache = os.path.join(self.dir, f"c{max_age}")
                self.srv.jwt(max_age=max_age)
                self.assertOutcome(self.verify(self.token(), conf=self.conf(
                    jwks_cache_dir=cache)), "ok")
                st = os.lstat(cache)
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
                files = [f for f in os.listdir(cache) if f.endswith(".json")]
                self.assertEqual(len(files), 1)
                path = os.path.join(cache, files[0])
                self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), 0o600)
                with open(path) as f:
                    doc = json.load(f)
                self.assertEqual(doc["expires_at"] - doc["fetched_at"], kept)
                self.assertEqual(doc["issuer"], self.srv.jwt_issuer)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to chown")
    def test_foreign_cache_file_ignored(self):
        self.assertOutcome(self.verify(self.token()), "ok")
        path = [os.path.join(self.cache, f) for f in os.listdir(self.cache)
                if f.endswith(".json")][0]
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
        r, stderr = run_verify(self.conf(), "jwt", [self.token()])
        self.assertOutcome(r[0], "ok")
        self.assertIn("ignored", stderr)
        self.assertEqual(self.fetches(), 2)  # fetched again, not trusted

    def test_symlinked_cache_file_ignored(self):
        self.assertOutcome(self.verify(self.token()), "ok")
        path = [os.path.join(self.cache, f) for f in os.listdir(self.cache)
                if f.endswith(".json")][0]
        os.rename(path, path + ".real")
        os.symlink(path + ".real", path)
        r, stderr = run_verify(self.conf(), "jwt", [self.token()])
        self.assertOutcome(r[0], "ok")
        self.assertIn("symbolic link", stderr)
        self.assertEqual(self.fetches(), 2)

    def test_key_set_unavailable(self):
        self.srv.fault("/jwt/jwks", "status", status=503, count=-1)
        try:
            r = self.verify(self.token())
        finally:
            self.srv.clear_faults()
        self.assertOutcome(r, "server_error")
        self.assertFalse(r["verdict"])


class TestRotation(JwtCase):

    def test_rotation_refetches_once(self):
        self.assertOutcome(self.verify(self.token()), "ok")
        self.assertEqual(self.fetches(), 1)
        new_kid = self.srv.jwt(rotate=True)["kid"]
        r = self.verify(self.token())
        self.assertOutcome(r, "ok")
        self.assertEqual(r["kid"], new_kid)
        self.assertEqual(self.fetches(), 2)
        # Now cached: no more fetches, in another process either.
        self.assertOutcome(self.verify(self.token()), "ok")
        self.assertEqual(self.fetches(), 2)

    def test_unknown_kid_flood_is_rate_limited(self):
        self.assertOutcome(self.verify(self.token()), "ok")
        before = self.fetches()
        self.srv.jwt(forge="unknown_kid", count=20)
        bad = [self.token() for _ in range(20)]
        # Ten processes one after the other, then ten tokens in one process.
        for token in bad[:10]:
            self.assertOutcome(self.verify(token), "unknown_key")
        for r in self.verify(bad[10:]):
            self.assertOutcome(r, "unknown_key")
            self.assertTrue(r["verdict"])
        self.assertLessEqual(self.fetches() - before, 1)
        # A good token still verifies, from the cache.
        self.assertOutcome(self.verify(self.token()), "ok")
        self.assertLessEqual(self.fetches() - before, 1)

    def test_unknown_kid_flood_without_disk_cache_state(self):
        # Nothing cached yet: the first bad token fetches (the key set is
        # needed anyway) and one refetch may follow; never more.
        self.srv.jwt(forge="unknown_kid", count=20)
        bad = [self.token() for _ in range(20)]
        for token in bad:
            self.assertOutcome(self.verify(token), "unknown_key")
        self.assertLessEqual(self.fetches(), 2)


class TestAttacks(JwtCase):

    def test_forgeries(self):
        conf = self.conf()
        # warm the cache so that each case is about the token alone
        self.assertOutcome(self.verify(self.token(), conf=conf), "ok")
        for forge, (outcome, alg) in ATTACKS.items():
            with self.subTest(forge=forge):
                self.srv.jwt(alg=alg, forge=forge)
                token = self.token()
                r = self.verify(token, conf=conf, user="alice")
                self.assertOutcome(r, outcome)
                self.assertTrue(r["verdict"], r)
                self.assertIsNone(r["claims"])
                self.assertTrue(r["message"])
        self.srv.jwt(alg="RS256")
        self.assertOutcome(self.verify(self.token(), conf=conf, user="alice"), "ok")

    def test_payload_swapped_under_a_valid_signature(self):
        token = self.token()
        h, p, s = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        claims["preferred_username"] = "root"
        p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        self.assertOutcome(self.verify(".".join((h, p2, s)), user="root"), "bad_signature")

    def test_opaque_token_under_verify_jwt(self):
        self.assertOutcome(self.verify("2YotnFZFEjr1zCsicMWpAA"), "malformed_token")

    def test_missing_user_claim(self):
        r = self.verify(self.token(), conf=self.conf(user_claim="nickname"), user="alice")
        self.assertOutcome(r, "missing_claim")


class TestIntrospection(JwtCase):

    def opaque(self, user="alice", password="alice-pass"):
        form = {"grant_type": "password", "username": user, "password": password,
                "client_id": "test-client", "client_secret": "test-secret"}
        req = urllib.request.Request(self.srv.url("/generic/token"),
                                     data=urllib.parse.urlencode(form).encode())
        with self.srv._opener.open(req, timeout=10) as resp:
            return json.load(resp)["access_token"]

    def iconf(self, **keys):
        base = {"verify": "introspect", "introspection_url": self.srv.url("/jwt/introspect")}
        base.update(keys)
        return self.conf(**base)

    def test_active_token(self):
        for auth in ("basic", "post"):
            with self.subTest(client_auth=auth):
                r = self.verify(self.opaque(), conf=self.iconf(client_auth=auth),
                                user="alice")
                self.assertOutcome(r, "ok")
                self.assertEqual(r["method"], "introspect")
                self.assertEqual(r["user"], "alice")
                self.assertNotIn("active", r["claims"])
        self.assertEqual(self.srv.jwt_stats()["introspections"], 2)

    def test_inactive_and_wrong(self):
        token = self.opaque()
        self.srv.revoke(token)
        self.assertOutcome(self.verify(token, conf=self.iconf()), "token_inactive")
        for forge, outcome in (("inactive", "token_inactive"), ("wrong_iss", "wrong_issuer"),
                               ("wrong_aud", "wrong_audience"), ("expired", "expired"),
                               ("user_mismatch", "user_mismatch")):
            with self.subTest(forge=forge):
                self.srv.jwt(forge=forge)
                self.assertOutcome(self.verify(self.opaque(), conf=self.iconf(),
                                               user="alice"), outcome)

    def test_bad_client_secret(self):
        r = self.verify(self.opaque(), conf=self.iconf(client_secret="wrong"))
        self.assertOutcome(r, "invalid_client")
        self.assertFalse(r["verdict"])

    def test_auto(self):
        conf = self.iconf(verify="auto")
        self.assertEqual(self.verify(self.token(), conf=conf)["method"], "jwt")
        self.assertEqual(self.verify(self.opaque(), conf=conf)["method"], "introspect")
        # Without an introspection endpoint an opaque token is refused.
        conf = self.conf(verify="auto")
        self.assertOutcome(self.verify(self.opaque(), conf=conf), "token_unverified")
        # A token that looks like a JWT never falls back to introspection.
        self.srv.jwt(forge="wrong_key")
        self.assertOutcome(self.verify(self.token(), conf=self.iconf(verify="auto")),
                           "bad_signature")

    def test_none_trusts_nothing(self):
        r = self.verify(self.token(), conf=self.conf(verify="none"))
        self.assertOutcome(r, "ok")
        self.assertEqual(r["method"], "none")
        self.assertIsNone(r["claims"])
        self.assertEqual(self.fetches(), 0)


class TestConfiguration(JwtCase):

    def test_invalid_profiles(self):
        for keys, text in (({"issuer": None}, "issuer is not set"),
                           ({"verify": "introspect"}, "introspection_url is not set"),
                           ({"jwt_algorithms": "RS256 HS256"}, "HS256"),
                           ({"jwt_algorithms": "none"}, "none"),
                           ({"issuer": "http://example.test"}, "issuer"),
                           ({"verify": "none", "roles_source": "token"}, "roles_source"),
                           ({"jwks_cache_dir": "relative"}, "jwks_cache_dir")):
            with self.subTest(keys=keys):
                r = self.verify("x.y.z", conf=self.conf(**keys))
                self.assertOutcome(r, "config")
                self.assertIn(text, r["message"])


# ------------------------------------------------------------------ PAM

try:
    import pamtest
    PAM_SKIP = pamtest.skip_reason()
except Exception as e:  # pragma: no cover - import problems are reported as skips
    pamtest = None
    PAM_SKIP = f"pamtest unavailable: {e}"


@unittest.skipIf(PAM_SKIP, PAM_SKIP or "")
class TestPam(JwtCase):
    """pam_oauth.so with verify=jwt: the user binding and roles from the
    verified token.  The base-passwd account stands in for an IdP user of
    the same name with alice's password and roles."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = pamtest.PamEnv(cls.srv)
        cls.user = pamtest.LOCAL_USERS[0]

    def setUp(self):
        super().setUp()
        self.srv.user(self.user, "alice-pass", ["admin", "dev"])

    def service(self, **keys):
        p = {"token_url": self.srv.url("/jwt/token"), "grant": "password",
             "client_id": "test-client", "client_secret": "test-secret",
             "ca_file": self.srv.ca_file, "verify": "jwt", "issuer": self.srv.jwt_issuer,
             "jwks_cache_dir": self.cache, "timeout": "10s", "retries": 0}
        p.update(keys)
        conf = self.env.config(p)
        name = f"jwt-{self.id().rsplit('.', 1)[-1]}"[:60]
        return self.env.oauth_service(
            name, f"config={conf} minimum_uid=0 fail_delay=0 debug")

    def run_pam(self, service, ops=("authenticate",)):
        return self.env.run(service, self.user, list(ops), password="alice-pass")

    def assertLogged(self, r, text):
        self.assertTrue(any(text in m for _, m in r.logs),
                        f"no log line with {text!r} in\n" + "\n".join(m for _, m in r.logs))

    def test_verified_login(self):
        for claim in ("preferred_username", "username"):
            with self.subTest(user_claim=claim):
                r = self.run_pam(self.service(user_claim=claim),
                                 ("authenticate", "acct_mgmt"))
                self.assertTrue(r.ok, r)
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS")

    def test_claim_mismatch_is_auth_err(self):
        svc = self.service(user_claim="username")
        self.srv.jwt(forge="user_mismatch")
        r = self.run_pam(svc)
        self.assertFalse(r.ok)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR")
        self.assertLogged(r, "mallory")
        self.assertLogged(r, "user_mismatch")

    def test_forged_tokens_are_auth_err(self):
        svc = self.service()
        for forge, outcome in (("wrong_key", "bad_signature"),
                               ("alg_none", "algorithm_refused"),
                               ("hs256_confusion", "algorithm_refused"),
                               ("expired", "expired"), ("wrong_iss", "wrong_issuer"),
                               ("wrong_aud", "wrong_audience")):
            with self.subTest(forge=forge):
                self.srv.jwt(forge=forge)
                r = self.run_pam(svc)
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
                self.assertLogged(r, outcome)

    def test_keys_unavailable_is_authinfo_unavail(self):
        svc = self.service()
        self.srv.fault("/jwt/jwks", "status", status=503, count=-1)
        try:
            r = self.run_pam(svc)
        finally:
            self.srv.clear_faults()
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)

    def test_id_token(self):
        r = self.run_pam(self.service(verify_token="id"))
        self.assertTrue(r.ok, r)

    def test_roles_from_the_verified_token(self):
        svc = self.service(roles_source="token", roles_claim="realm_access.roles",
                           require_roles="admin")
        r = self.run_pam(svc, ("authenticate", "acct_mgmt"))
        self.assertTrue(r.ok, r)
        svc = self.service(roles_source="token", roles_claim="groups",
                           require_roles="group-dev")
        self.assertTrue(self.run_pam(svc, ("authenticate", "acct_mgmt")).ok)
        svc = self.service(roles_source="token", roles_claim="realm_access.roles",
                           require_roles="ops")
        r = self.run_pam(svc, ("authenticate", "acct_mgmt"))
        self.assertEqual(r.error, "PAM_PERM_DENIED", r)
        # scope, a space-separated string claim
        svc = self.service(roles_source="token", roles_claim="scope",
                           require_roles="profile", scope="openid profile")
        self.assertTrue(self.run_pam(svc, ("authenticate", "acct_mgmt")).ok)

    def test_require_scope_reads_the_verified_token(self):
        """Issue 14.9: the response has no scope member and the profile
        verifies: require_scope checks the verified token's scope claim,
        not the requested scope (which proves nothing)."""
        self.srv.client("test-client", secret="test-secret", omit_scope=True)
        cases = [
            # requested scope, require_scope, the token's scope claim: expected
            ("openid profile", "profile", "PAM_SUCCESS"),
            ("openid profile", "admin", "PAM_PERM_DENIED"),
        ]
        for scope, require, code in cases:
            with self.subTest(require=require):
                svc = self.service(scope=scope, require_scope=require)
                r = self.run_pam(svc, ("authenticate", "acct_mgmt"))
                self.assertEqual(r.exit("pam_sm_acct_mgmt"), code, r)
                self.assertLogged(r, "the verified token's scope claim")
        # The IdP granted less than asked, and says so only in the token:
        # "admin" was requested, so the old check passed; the token says no.
        self.srv.jwt(scope_claim="openid")
        try:
            svc = self.service(scope="openid admin", require_scope="admin")
            r = self.run_pam(svc, ("authenticate", "acct_mgmt"))
            self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_PERM_DENIED", r)
            self.assertLogged(r, 'scope "admin" was not granted (granted, from the '
                                 'verified token\'s scope claim: "openid")')
        finally:
            self.srv.jwt(scope_claim="")
        # Without verification the requested scope stands in (RFC 6749 5.1).
        svc = self.service(scope="openid profile", require_scope="profile", verify="none")
        r = self.run_pam(svc, ("authenticate", "acct_mgmt"))
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_SUCCESS", r)
        self.assertLogged(r, "from the requested scope")

    def test_pam_user_is_not_rewritten(self):
        # The token names another user: refused, and the module never takes
        # the token's user name for the PAM user (no pam_set_item(PAM_USER)).
        svc = self.service(user_claim="username")
        self.srv.jwt(forge="user_mismatch")
        r = self.env.run(svc, self.user, ["authenticate", "acct_mgmt"],
                         password="alice-pass")
        self.assertEqual(r.failed_op, "authenticate", r)
        self.assertFalse(any(f"authenticated as {'mallory'}" in m for _, m in r.logs))
        r = self.env.run(svc, self.user, ["authenticate", "acct_mgmt"],
                         password="alice-pass")
        self.assertTrue(r.ok, r)
        self.assertTrue(any(f"user {self.user} authenticated as {self.user}" in m
                            for _, m in r.logs), r)


# ------------------------------------------------------------------ Glewlwyd

class TestGlewlwyd(unittest.TestCase):
    """Real RS256 access tokens from Glewlwyd, verified through its real
    discovery document and key set; user binding with its username claim."""

    @classmethod
    def setUpClass(cls):
        import glewlwyd
        cls.g = glewlwyd.start()
        cls.dir = harness.tmpdir()

    def token(self, user, password):
        g = self.g
        form = {"grant_type": "password", "username": user, "password": password,
                "scope": g["GLEWLWYD_SCOPE"]}
        auth = base64.b64encode(f"{g['GLEWLWYD_CLIENT_ID']}:{g['GLEWLWYD_CLIENT_SECRET']}"
                                .encode()).decode()
        req = urllib.request.Request(g["GLEWLWYD_TOKEN_URL"],
                                     data=urllib.parse.urlencode(form).encode(),
                                     headers={"Authorization": "Basic " + auth})
        import ssl
        ctx = ssl.create_default_context(cafile=g["GLEWLWYD_CA_FILE"])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        with opener.open(req, timeout=30) as resp:
            return json.load(resp)["access_token"]

    def profile(self, **keys):
        g = self.g
        p = {"token_url": g["GLEWLWYD_TOKEN_URL"], "grant": "password",
             "client_id": g["GLEWLWYD_CLIENT_ID"], "client_secret": g["GLEWLWYD_CLIENT_SECRET"],
             "scope": g["GLEWLWYD_SCOPE"], "ca_file": g["GLEWLWYD_CA_FILE"],
             "verify": "jwt", "issuer": g["GLEWLWYD_ISSUER"],
             # Glewlwyd's access tokens name the scope as their audience.
             "jwt_audience": g["GLEWLWYD_SCOPE"], "user_claim": "username",
             "jwks_cache_dir": os.path.join(self.dir, "jwks"), "timeout": "20s"}
        p.update(keys)
        return p

    def verify(self, token, user=None, **keys):
        conf = write_conf(self.dir, {"g": self.profile(**keys)})
        results, stderr = run_verify(conf, "g", [token], user=user)
        self.assertEqual(len(results), 1, stderr)
        return results[0]

    def test_real_tokens_verify(self):
        g = self.g
        token = self.token(g["GLEWLWYD_USER1"], g["GLEWLWYD_PASS1"])
        r = self.verify(token, user=g["GLEWLWYD_USER1"])
        self.assertEqual(r["outcome"], "ok", r)
        self.assertEqual(r["alg"], "RS256")
        self.assertEqual(r["user"], g["GLEWLWYD_USER1"])
        self.assertEqual(r["claims"]["iss"], g["GLEWLWYD_ISSUER"])
        # with the key set URL instead of discovery, and the at+jwt typ
        r = self.verify(token, user=g["GLEWLWYD_USER1"], jwks_uri=g["GLEWLWYD_JWKS_URL"],
                        jwt_typ="at+jwt")
        self.assertEqual(r["outcome"], "ok", r)

    def test_mismatch_and_forgery(self):
        g = self.g
        token = self.token(g["GLEWLWYD_USER1"], g["GLEWLWYD_PASS1"])
        self.assertEqual(self.verify(token, user=g["GLEWLWYD_USER2"])["outcome"],
                         "user_mismatch")
        h, p, s = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        claims["username"] = g["GLEWLWYD_USER2"]
        p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        self.assertEqual(self.verify(".".join((h, p2, s)), user=g["GLEWLWYD_USER2"])["outcome"],
                         "bad_signature")
        self.assertEqual(self.verify(token, jwt_audience="other")["outcome"], "wrong_audience")

    @unittest.skipIf(PAM_SKIP, PAM_SKIP or "")
    def test_pam_login(self):
        g = self.g
        user = g["GLEWLWYD_USER1"]
        if os.geteuid() != 0:
            self.skipTest("needs root to create the local account (useradd)")
        try:
            pwd.getpwnam(user)
            self.skipTest(f"a local account {user} already exists; not touching it")
        except KeyError:
            pass
        local = pamtest.LocalUser(user)
        try:
            env = pamtest.PamEnv()
            good = env.config(self.profile(minimum_uid=0))
            env.oauth_service("gw", f"config={good} fail_delay=0 debug")
            r = env.run("gw", user, ["authenticate", "acct_mgmt"], password=g["GLEWLWYD_PASS1"])
            self.assertTrue(r.ok, r)
            self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS")
            # The binding claim names someone else: refused.
            bad = env.config(self.profile(minimum_uid=0, user_claim="sub"))
            env.oauth_service("gw-bad", f"config={bad} fail_delay=0 debug")
            r = env.run("gw-bad", user, ["authenticate"], password=g["GLEWLWYD_PASS1"])
            self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
            self.assertTrue(any("user_mismatch" in m for _, m in r.logs), r)
        finally:
            local.remove()


if __name__ == "__main__":
    unittest.main()
