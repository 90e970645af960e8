"""The device authorization grant against a real Glewlwyd (tests/glewlwyd/):
its OIDC plugin with auth-type-device-enabled, the public client
pam-device-client, discovery naming device_authorization_endpoint.

A user approves the way Glewlwyd's own web pages do it, through its API:
log in (POST /api/auth/, a session cookie), grant the client its scope
(PUT /api/auth/grant/CLIENT), then open the verification URL
(/api/oidc/device?code=USER_CODE&g_continue), which answers with a redirect
to prompt=deviceComplete.  Glewlwyd answers polls that come too early with
slow_down, so these tests also show that the interval is kept.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_glewlwyd_device -v
"""

import base64
import http.cookiejar
import io
import json
import os
import pwd
import re
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness
import pamtest

try:
    import pexpect
except ImportError:
    pexpect = None

HELPER = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")
CODE_RE = re.compile(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})")
PROMPT = "Press Enter once you have approved the login: "


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class GlewlwydDevice(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        import glewlwyd
        cls.g = glewlwyd.start()
        if "GLEWLWYD_DEVICE_URL" not in cls.g:
            raise unittest.SkipTest("this Glewlwyd set-up has no device client")
        cls.dir = harness.tmpdir()
        cls.ctx = ssl.create_default_context(cafile=cls.g["GLEWLWYD_CA_FILE"])

    def approve(self, user_code, user, password):
        """What a user does in a browser at Glewlwyd: log in, grant the
        client its scope, open the verification URL with the code."""
        g = self.g
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ctx),
            urllib.request.HTTPCookieProcessor(jar), NoRedirect)

        def call(method, path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(g["GLEWLWYD_BASE_URL"] + path, data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with opener.open(req, timeout=20) as r:
                    return r.status, dict(r.headers)
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers)

        status, _ = call("POST", "/api/auth/", {"username": user, "password": password})
        self.assertEqual(status, 200, "Glewlwyd user login")
        status, _ = call("PUT", "/api/auth/grant/" + g["GLEWLWYD_DEVICE_CLIENT_ID"],
                         {"scope": g["GLEWLWYD_SCOPE"]})
        self.assertEqual(status, 200, "Glewlwyd scope grant")
        status, headers = call("GET", "/api/oidc/device?code="
                               + urllib.parse.quote(user_code) + "&g_continue")
        self.assertEqual(status, 302)
        self.assertIn("prompt=deviceComplete", headers.get("Location", ""))

    def profile(self, **keys):
        g = self.g
        p = {"token_url": g["GLEWLWYD_TOKEN_URL"], "issuer": g["GLEWLWYD_ISSUER"],
             "grant": "device", "client_id": g["GLEWLWYD_DEVICE_CLIENT_ID"],
             "client_auth": "none", "scope": g["GLEWLWYD_SCOPE"],
             "ca_file": g["GLEWLWYD_CA_FILE"], "timeout": "20s", "device_timeout": "90s"}
        p.update(keys)
        return p

    def write_conf(self, profile):
        lines = ["[glewlwyd]"] + [f"{k} = {v}" for k, v in profile.items()
                                  if v is not None]
        return harness.write_file(os.path.join(self.dir, "device.conf"),
                                  "\n".join(lines) + "\n")

    def test_helper_login_then_refresh(self):
        g = self.g
        conf = self.write_conf(self.profile())
        cache = os.path.join(self.dir, "cache")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "LC_ALL": "C", "OAUTH_TOKEN_CACHE_DIR": cache}
        proc = subprocess.Popen([HELPER, "-c", conf, "-p", "glewlwyd", "-v", "login"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        lines = []
        code = None
        while code is None:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = CODE_RE.search(line)
            if m:
                code = m.group(1)
        self.assertIsNotNone(code, "".join(lines))
        # Glewlwyd's verification_uri_complete carries the code as "code"
        self.assertIn(f"To log in, open {g['GLEWLWYD_ISSUER']}/device?code={code}",
                      "".join(lines))
        time.sleep(6)  # a poll or two first: authorization_pending
        self.approve(code, g["GLEWLWYD_USER1"], g["GLEWLWYD_PASS1"])
        err = "".join(lines) + proc.stderr.read()
        out = proc.stdout.read()
        proc.wait(timeout=120)
        proc.stdout.close()
        proc.stderr.close()
        self.assertEqual(proc.returncode, 0, err)
        token = out.strip()
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.assertEqual(claims["username"], g["GLEWLWYD_USER1"])
        self.assertIn("0 slow_down", err)  # Glewlwyd enforces the interval
        m = re.search(r"device login: (\d+) poll\(s\), (\d+) pending", err)
        print(f"# Glewlwyd device login through oauth-token: {m.group(1)} polls, "
              f"{m.group(2)} authorization_pending, 0 slow_down")
        # the refresh token Glewlwyd gave keeps the profile alive
        p = subprocess.run([HELPER, "-c", conf, "-p", "glewlwyd", "refresh", "--format",
                            "json"], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(json.loads(p.stdout)["access_token"], token)

    @unittest.skipIf(pexpect is None or pamtest.skip_reason() is not None,
                     "pamtester, libpam-wrapper or python3-pexpect missing")
    def test_pam_login_bound_to_the_user(self):
        g = self.g
        if os.geteuid() != 0:
            self.skipTest("needs root to create the local accounts (useradd)")
        users = (g["GLEWLWYD_USER1"], g["GLEWLWYD_USER2"])
        for u in users:
            try:
                pwd.getpwnam(u)
                self.skipTest(f"a local account {u} already exists; not touching it")
            except KeyError:
                pass
        locals_ = [pamtest.LocalUser(u) for u in users]
        try:
            env = pamtest.PamEnv()
            conf = env.config(self.profile(
                verify="jwt", user_claim="username",
                # Glewlwyd's access tokens name the scope as their audience
                jwt_audience=g["GLEWLWYD_SCOPE"],
                jwks_cache_dir=os.path.join(self.dir, "jwks"), minimum_uid=0))
            env.oauth_service("gw-device", f"config={conf} fail_delay=0 debug")
            for approver, password, want in (
                    (g["GLEWLWYD_USER1"], g["GLEWLWYD_PASS1"], "PAM_SUCCESS"),
                    (g["GLEWLWYD_USER2"], g["GLEWLWYD_PASS2"], "PAM_AUTH_ERR")):
                with self.subTest(approver=approver):
                    log = io.StringIO()
                    child = pexpect.spawn(pamtest.PAMTESTER,
                                          ["-v", "gw-device", g["GLEWLWYD_USER1"],
                                           "authenticate"],
                                          env=env.environ(), encoding="utf-8", timeout=120)
                    child.logfile_read = log
                    child.expect(r"enter the code ([A-Z0-9]{4}-[A-Z0-9]{4})")
                    code = child.match.group(1)
                    child.expect(PROMPT)
                    self.approve(code, approver, password)
                    child.sendline("")
                    child.expect(pexpect.EOF)
                    child.close()
                    text = log.getvalue()
                    self.assertIn(f"pam_sm_authenticate: exit ({want})", text)
                    if want == "PAM_AUTH_ERR":
                        self.assertIn(f'the token\'s "username" is "{approver}", not the '
                                      f'user "{g["GLEWLWYD_USER1"]}"', text)
        finally:
            for u in locals_:
                u.remove()


if __name__ == "__main__":
    unittest.main()
