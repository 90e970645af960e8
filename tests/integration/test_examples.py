"""The shipped example profiles (examples/pam-oauth.conf): they pass
`oauth-token check-config`, and each works against the test server's
emulation of its vendor with only the deployment's own values overridden
(URL, CA, client id and secret file, and the audience the test server
expects).  Everything else (body style, client authentication, grant,
scope, lifetimes, budget) is the example's own."""
import json
import os
import shutil
import subprocess
import unittest

import glewlwyd
import harness

ROOT = os.environ.get("PO_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "pam-oauth.conf")
HELPER = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")


class Examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()

    def setUp(self):
        self.srv.reset()
        self.dir = harness.tmpdir()
        self.conf = os.path.join(self.dir, "pam-oauth.conf")
        shutil.copyfile(EXAMPLE, self.conf)
        os.chmod(self.conf, 0o600)

    def helper(self, profile, overrides, *args, stdin=None):
        argv = [HELPER, "-c", self.conf, "-p", profile]
        for k, v in overrides.items():
            argv += ["-o", f"{k}={v}"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_TOKEN", "PAM_OAUTH", "XDG_"))}
        env["OAUTH_TOKEN_CACHE_DIR"] = os.path.join(self.dir, "cache")
        return subprocess.run(argv + list(args), env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    def site(self, path, client, **extra):
        """The overrides that point a profile at the test server."""
        o = {"token_url": self.srv.url(path), "ca_file": self.srv.ca_file,
             "client_id": client}
        secret = harness.CLIENTS[client]
        if secret is not None:
            o["client_secret_file"] = harness.write_file(
                os.path.join(self.dir, client + ".secret"), secret + "\n", 0o600)
        o.update(extra)
        return o

    def last_request(self):
        return self.srv.stats()["last_requests"][-1]

    def test_check_config_accepts_the_shipped_file(self):
        r = subprocess.run([HELPER, "check-config", "-c", EXAMPLE],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok", r.stdout)

    def test_froomle_json_body_24h_and_10_minute_refresh(self):
        r = self.helper("froomle", self.site("/froomle/oauth/token", "froomle-client"),
                        "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_request()["content_type"], "application/json")
        out = json.loads(r.stdout)
        self.assertGreater(out["expires_in"], 86000)
        r = self.helper("froomle", self.site("/froomle/oauth/token", "froomle-client"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.srv.stats()["total"], 1, "a second call is a cache hit")

    def test_wave_form_audience_and_budget(self):
        o = self.site("/wave/oauth/token", "wave-client", audience=harness.WAVE_AUDIENCE)
        r = self.helper("wave", o)
        self.assertEqual(r.returncode, 0, r.stderr)
        req = self.last_request()
        self.assertTrue(req["content_type"].startswith("application/x-www-form-urlencoded"))
        r = self.helper("wave", o, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"1 of 1000|1/1000")

    def test_bloom_form_audience_and_scope(self):
        o = self.site("/bloom/oauth/token", "bloom-client", audience=harness.BLOOM_AUDIENCE)
        r = self.helper("bloom", o, "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["scope"], harness.BLOOM_SCOPE)

    def test_fluent_password_grant_in_the_query_string(self):
        o = self.site("/fluent/oauth/token", "fluent-api")
        r = self.helper("fluent", o, "login", "--username", "alice", "--password-stdin",
                        stdin=harness.USERS["alice"] + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        req = self.last_request()
        self.assertIn("grant_type=password", req["query"])
        self.assertFalse(req["body"])
        # Single-use refresh tokens: two refreshes in a row both work.
        for _ in range(2):
            r = self.helper("fluent", o, "refresh")
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.srv.stats()["by_grant"].get("refresh_token"), 2)

    def test_fluent_integration_public_client_with_refresh_tokens(self):
        o = self.site("/fluent/oauth/token", "FLUENT_INTEGRATION")
        r = self.helper("fluent-integration", o, "login", "--username", "alice",
                        "--password-stdin", stdin=harness.USERS["alice"] + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("client_secret", self.last_request()["query"])
        r = self.helper("fluent-integration", o, "refresh", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["scope"], "retailer")

    def test_device_profile(self):
        # the test server's JWT issuer stands in for the provider: its
        # discovery names the device endpoint
        o = {"token_url": self.srv.url("/jwt/token"), "issuer": self.srv.jwt_issuer,
             "ca_file": self.srv.ca_file, "client_id": "device-client"}
        self.srv.device(interval=1)
        argv = [HELPER, "-c", self.conf, "-p", "device"]
        for k, v in o.items():
            argv += ["-o", f"{k}={v}"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_TOKEN", "PAM_OAUTH", "XDG_"))}
        env["OAUTH_TOKEN_CACHE_DIR"] = os.path.join(self.dir, "cache")
        proc = subprocess.Popen(argv + ["login", "--format", "json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        shown = json.loads(proc.stderr.readline())
        self.srv.device_approve(shown["user_code"], "alice")
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
        self.assertEqual(proc.returncode, 0, err)
        self.assertTrue(json.loads(out)["access_token"])
        self.assertEqual(shown["expires_in"] <= 110, True)
        device_req = [r for r in self.srv.stats()["last_requests"]
                      if r["path"] == "/jwt/device"][0]
        self.assertIn("scope=openid+profile+offline_access", device_req["body"])

    def test_glewlwyd_profile(self):
        try:
            g = glewlwyd.start()
        except unittest.SkipTest as e:
            self.skipTest(str(e))
        o = {"token_url": g["GLEWLWYD_TOKEN_URL"], "ca_file": g["GLEWLWYD_CA_FILE"],
             "client_secret_file": harness.write_file(
                 os.path.join(self.dir, "gw.secret"), g["GLEWLWYD_CLIENT_SECRET"] + "\n",
                 0o600)}
        r = self.helper("glewlwyd", o, "login", "--username", g["GLEWLWYD_USER1"],
                        "--password-stdin", stdin=g["GLEWLWYD_PASS1"] + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
