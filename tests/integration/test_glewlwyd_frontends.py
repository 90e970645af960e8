"""The two frontends against a real third-party authorization server,
Glewlwyd (tests/glewlwyd/), over HTTPS: a PAM login whose token the helper
then prints, and the helper's own commands, with Glewlwyd's quirks (an empty
403 for a bad password, lowercase bearer, single-use refresh tokens)."""
import json
import os
import pwd
import subprocess
import unittest

import glewlwyd
import harness
import pamtest

HELPER = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")


def profile(g, **keys):
    p = {"token_url": g["GLEWLWYD_TOKEN_URL"], "grant": "password",
         "client_id": g["GLEWLWYD_CLIENT_ID"],
         "client_secret": g["GLEWLWYD_CLIENT_SECRET"],
         "scope": g["GLEWLWYD_SCOPE"], "ca_file": g["GLEWLWYD_CA_FILE"],
         "timeout": "20s"}
    p.update(keys)
    return p


def write_conf(path, profiles):
    lines = []
    for name, keys in profiles.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in keys.items()]
        lines.append("")
    return harness.write_file(path, "\n".join(lines), 0o600)


class Helper(unittest.TestCase):
    """oauth-token against Glewlwyd."""

    @classmethod
    def setUpClass(cls):
        cls.g = glewlwyd.start()

    def setUp(self):
        self.dir = harness.tmpdir()
        self.cache = os.path.join(self.dir, "cache")
        self.conf = write_conf(os.path.join(self.dir, "pam-oauth.conf"), {
            "gw": profile(self.g, username=self.g["GLEWLWYD_USER2"]),
            "gw-post": profile(self.g, client_auth="post"),
            "gw-cc": profile(self.g, grant="client_credentials"),
        })

    def helper(self, *args, stdin=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_TOKEN", "PAM_OAUTH", "XDG_"))}
        env["OAUTH_TOKEN_CACHE_DIR"] = self.cache
        return subprocess.run([HELPER, "-c", self.conf] + list(args), env=env,
                              input=stdin, capture_output=True, text=True,
                              timeout=60)

    def cached(self, name):
        with open(os.path.join(self.cache, name + ".json")) as f:
            return json.load(f)

    def test_login_then_token_from_cache(self):
        # bob's password has & = + % and a space: it must arrive intact.
        r = self.helper("-p", "gw", "login", "--password-stdin",
                        stdin=self.g["GLEWLWYD_PASS2"] + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        entry = self.cached("gw")
        self.assertEqual(entry["token_type"].lower(), "bearer")
        self.assertNotIn(self.g["GLEWLWYD_PASS2"], json.dumps(entry))
        r = self.helper("-p", "gw")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), entry["access_token"])
        r = self.helper("-p", "gw", "header")
        self.assertEqual(r.stdout.strip(), "Authorization: Bearer " + entry["access_token"])

    def test_wrong_password_is_rejected_credentials(self):
        # Glewlwyd answers 403 with an empty body: exit 3 (rejected).
        r = self.helper("-p", "gw-post", "login", "--username",
                        self.g["GLEWLWYD_USER1"], "--password-stdin",
                        stdin="not-the-password\n")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("HTTP 403 with an empty body", r.stderr)
        self.assertNotIn("not-the-password", r.stderr)

    def test_single_use_refresh_tokens_rotate(self):
        r = self.helper("-p", "gw-post", "login", "--username",
                        self.g["GLEWLWYD_USER1"], "--password-stdin",
                        stdin=self.g["GLEWLWYD_PASS1"] + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        seen = {self.cached("gw-post")["access_token"]}
        refresh = {self.cached("gw-post")["refresh_token"]}
        # Each refresh spends the saved refresh token and saves the new one:
        # had the rotation been lost, the next refresh would fail (and
        # Glewlwyd would revoke the whole chain).
        for _ in range(3):
            r = self.helper("-p", "gw-post", "refresh")
            self.assertEqual(r.returncode, 0, r.stderr)
            entry = self.cached("gw-post")
            self.assertNotIn(entry["access_token"], seen)
            self.assertNotIn(entry["refresh_token"], refresh)
            seen.add(entry["access_token"])
            refresh.add(entry["refresh_token"])

    def test_client_credentials(self):
        r = self.helper("-p", "gw-cc", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["access_token"], self.cached("gw-cc")["access_token"])
        self.assertGreater(out["expires_in"], 0)


@unittest.skipIf(pamtest.skip_reason(), pamtest.skip_reason() or "")
class Pam(unittest.TestCase):
    """A PAM login through pam_oauth.so against Glewlwyd, then the token of
    that login printed by oauth-token run as the user."""

    @classmethod
    def setUpClass(cls):
        cls.g = glewlwyd.start()
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to create the local account (useradd)")
        # A local account named like the Glewlwyd user (bob: test_jwt uses
        # alice); never touch an account that exists already.
        cls.name = cls.g["GLEWLWYD_USER2"]
        try:
            pwd.getpwnam(cls.name)
            raise unittest.SkipTest(f"a local account {cls.name} exists; not touching it")
        except KeyError:
            pass
        cls.user = pamtest.LocalUser(cls.name)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "user"):
            cls.user.remove()

    def setUp(self):
        self.env = pamtest.PamEnv()
        self.cache = os.path.join(self.user.home, ".cache", "pam-oauth")
        self.conf = self.env.config(profile(self.g, store_token=True))
        self.env.oauth_service("gw", f"config={self.conf} fail_delay=0 debug")

    def test_right_password_then_helper_prints_the_session_token(self):
        r = self.env.run("gw", self.name, ["authenticate", "acct_mgmt", "open_session"],
                         password=self.g["GLEWLWYD_PASS2"])
        self.assertTrue(r.ok, r)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS")
        path = os.path.join(self.cache, "default.json")
        st = os.lstat(path)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (self.user.uid, 0o600))
        with open(path) as f:
            stored = json.load(f)["access_token"]
        # The helper, run as the user with its own copy of the profile, gets
        # the token of the login from the cache.  The helper and the CA file
        # are staged where the user can reach them (the checkout and
        # Glewlwyd's directory may be private).
        stage = harness.stage()
        ca = stage.add(self.g["GLEWLWYD_CA_FILE"], "glewlwyd-ca.pem", 0o644)
        conf = os.path.join(self.user.home, "pam-oauth.conf")
        write_conf(conf, {"default": profile(self.g, ca_file=ca)})
        os.chown(conf, self.user.uid, self.user.gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.user.home,
               "OAUTH_TOKEN_CACHE_DIR": self.cache}
        p = self.user.run([harness.staged_helper(), "-c", conf], env, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), stored)

    def test_wrong_password(self):
        r = self.env.run("gw", self.name, ["authenticate"], password="wrong password")
        self.assertFalse(r.ok, r)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR")


if __name__ == "__main__":
    unittest.main()
