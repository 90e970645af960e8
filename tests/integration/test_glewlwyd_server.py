"""Integration test of the HTTPS Glewlwyd test server (tests/glewlwyd/glewlwyd.sh).

Checks what the pam-oauth integration tests rely on: the token endpoint over
HTTPS with the generated CA, both client authentication methods, the RS256
access token with the "username" claim, discovery and JWKS, and Glewlwyd's
quirks (403 + empty body on a bad password, lower-case "bearer", single-use
rotating refresh tokens).  Skipped when the server cannot be set up (exit 77).
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glewlwyd  # noqa: E402

_MARK = "\n--http-code:"


def curl(url, *args, cacert=None, data=None):
    """Run curl; returns (curl exit code, HTTP status int, body bytes)."""
    cmd = ["curl", "-sS", "--max-time", "20", "-w", _MARK + "%{http_code}"]
    if cacert:
        cmd += ["--cacert", cacert]
    for key, value in (data or []):
        cmd += ["--data-urlencode", "%s=%s" % (key, value)]
    cmd += list(args) + [url]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    body, _, code = proc.stdout.rpartition(_MARK.encode())
    return proc.returncode, int(code or b"0"), body


def b64url(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def rs256_valid(jwt, jwk):
    """Verify an RS256 JWS with an RSA JWK (RSASSA-PKCS1-v1_5, SHA-256)."""
    signing_input, _, sig = jwt.rpartition(".")
    n = int.from_bytes(b64url(jwk["n"]), "big")
    e = int.from_bytes(b64url(jwk["e"]), "big")
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(b64url(sig), "big"), e, n).to_bytes(k, "big")
    t = bytes.fromhex("3031300d060960864801650304020105000420") + \
        hashlib.sha256(signing_input.encode()).digest()
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


class GlewlwydServerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.g = glewlwyd.start()      # raises SkipTest on exit 77
        cls.pid = glewlwyd.pid()

    @classmethod
    def tearDownClass(cls):
        glewlwyd.stop()
        for _ in range(50):
            if not cls._alive(cls.pid):
                break
            time.sleep(0.1)
        if cls._alive(cls.pid):
            raise AssertionError("glewlwyd pid %s still running after stop" % cls.pid)

    @staticmethod
    def _alive(pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, TypeError, IndexError):
            return False
        return comm == "glewlwyd" and state != "Z"

    # -- helpers -------------------------------------------------------------
    def token(self, data, *args):
        return curl(self.g["GLEWLWYD_TOKEN_URL"], *args,
                    cacert=self.g["GLEWLWYD_CA_FILE"], data=data)

    def basic(self):
        return ("-u", "%s:%s" % (self.g["GLEWLWYD_CLIENT_ID"], self.g["GLEWLWYD_CLIENT_SECRET"]))

    def password_grant(self, user, password):
        rc, code, body = self.token([("grant_type", "password"), ("username", user),
                                     ("password", password), ("scope", self.g["GLEWLWYD_SCOPE"])],
                                    *self.basic())
        self.assertEqual(rc, 0)
        return code, body

    def get_json(self, url):
        rc, code, body = curl(url, cacert=self.g["GLEWLWYD_CA_FILE"])
        self.assertEqual((rc, code), (0, 200), body)
        return json.loads(body)

    # -- tests ---------------------------------------------------------------
    def test_env_values(self):
        g = self.g
        base = "https://127.0.0.1:%s" % g["GLEWLWYD_PORT"]
        self.assertEqual(g["GLEWLWYD_TOKEN_URL"], base + "/api/oidc/token")
        self.assertEqual(g["GLEWLWYD_ISSUER"], base + "/api/oidc")
        self.assertEqual(g["GLEWLWYD_JWKS_URL"], base + "/api/oidc/jwks")
        self.assertEqual(g["GLEWLWYD_DISCOVERY_URL"],
                         base + "/api/oidc/.well-known/openid-configuration")
        self.assertTrue(os.path.isfile(g["GLEWLWYD_CA_FILE"]))
        self.assertEqual((g["GLEWLWYD_CLIENT_ID"], g["GLEWLWYD_CLIENT_SECRET"], g["GLEWLWYD_SCOPE"]),
                         ("pam-client", "pam-client-secret", "pam"))
        self.assertEqual((g["GLEWLWYD_USER1"], g["GLEWLWYD_PASS1"]), ("alice", "alice-pass"))
        self.assertEqual((g["GLEWLWYD_USER2"], g["GLEWLWYD_PASS2"]), ("bob", "b0b p@ss+w0rd&=%"))
        # `glewlwyd.sh env DIR` prints the same values as DIR/env
        out = subprocess.run(["bash", glewlwyd.SCRIPT, "env", g["GLEWLWYD_DIR"]],
                             stdout=subprocess.PIPE, text=True, timeout=30, check=True).stdout
        env = glewlwyd.parse_env(out)
        for key, value in env.items():
            self.assertEqual(g[key], value, key)

    def test_password_grant_https_basic_auth(self):
        code, body = self.password_grant(self.g["GLEWLWYD_USER1"], self.g["GLEWLWYD_PASS1"])
        self.assertEqual(code, 200, body)
        tok = json.loads(body)
        self.assertTrue(tok.get("access_token"))
        self.assertTrue(tok.get("refresh_token"))
        self.assertEqual(tok["token_type"], "bearer")    # quirk: lower case
        self.assertEqual(tok["expires_in"], 3600)
        header_b64, payload_b64, _ = tok["access_token"].split(".")
        header, claims = json.loads(b64url(header_b64)), json.loads(b64url(payload_b64))
        self.assertEqual(header["alg"], "RS256")
        self.assertEqual(claims["username"], self.g["GLEWLWYD_USER1"])
        self.assertEqual(claims["iss"], self.g["GLEWLWYD_ISSUER"])
        self.assertEqual(claims["exp"] - claims["iat"], 3600)

    def test_password_grant_client_secret_post_special_password(self):
        rc, code, body = self.token([
            ("grant_type", "password"), ("client_id", self.g["GLEWLWYD_CLIENT_ID"]),
            ("client_secret", self.g["GLEWLWYD_CLIENT_SECRET"]),
            ("username", self.g["GLEWLWYD_USER2"]), ("password", self.g["GLEWLWYD_PASS2"]),
            ("scope", self.g["GLEWLWYD_SCOPE"])])
        self.assertEqual((rc, code), (0, 200), body)
        tok = json.loads(body)
        self.assertTrue(tok.get("access_token") and tok.get("refresh_token"))
        claims = json.loads(b64url(tok["access_token"].split(".")[1]))
        self.assertEqual(claims["username"], "bob")

    def test_bad_password_is_403_with_empty_body(self):
        code, body = self.password_grant(self.g["GLEWLWYD_USER1"], "not-" + self.g["GLEWLWYD_PASS1"])
        self.assertEqual(code, 403)
        self.assertEqual(body, b"")

    def refresh(self, rt):
        return self.token([("grant_type", "refresh_token"), ("refresh_token", rt)], *self.basic())

    def new_refresh_token(self):
        code, body = self.password_grant(self.g["GLEWLWYD_USER1"], self.g["GLEWLWYD_PASS1"])
        self.assertEqual(code, 200, body)
        return json.loads(body)["refresh_token"]

    def rotate(self, rt):
        """Refresh with rt; assert success and a new refresh token; return it."""
        rc, code, body = self.refresh(rt)
        self.assertEqual((rc, code), (0, 200), body)
        tok = json.loads(body)
        self.assertTrue(tok.get("access_token"))
        self.assertEqual(tok["token_type"], "bearer")
        self.assertTrue(tok.get("refresh_token"))
        self.assertNotEqual(tok["refresh_token"], rt)
        return tok["refresh_token"]

    def test_refresh_token_single_use_and_rotating(self):
        rt1 = self.new_refresh_token()
        rt2 = self.rotate(rt1)
        rt3 = self.rotate(rt2)               # the chain goes on
        self.assertNotEqual(rt3, rt1)
        # a second use of a consumed refresh token: 400 and an empty body
        self.assertEqual(self.refresh(rt1), (0, 400, b""))

    def test_refresh_token_reuse_revokes_the_chain(self):
        rt1 = self.new_refresh_token()
        other = self.new_refresh_token()     # an unrelated session
        rt2 = self.rotate(rt1)
        self.assertEqual(self.refresh(rt1), (0, 400, b""))
        # quirk (reuse detection): the rotated successor is revoked as well
        self.assertEqual(self.refresh(rt2), (0, 400, b""))
        # ... but other sessions are not affected
        self.rotate(other)

    def test_client_credentials_grant(self):
        rc, code, body = self.token([("grant_type", "client_credentials"),
                                     ("scope", self.g["GLEWLWYD_SCOPE"])], *self.basic())
        self.assertEqual((rc, code), (0, 200), body)
        self.assertTrue(json.loads(body).get("access_token"))

    def test_discovery_document(self):
        d = self.get_json(self.g["GLEWLWYD_DISCOVERY_URL"])
        self.assertEqual(d["issuer"], self.g["GLEWLWYD_ISSUER"])
        self.assertEqual(d["token_endpoint"], self.g["GLEWLWYD_TOKEN_URL"])
        self.assertEqual(d["jwks_uri"], self.g["GLEWLWYD_JWKS_URL"])
        self.assertIn("RS256", d.get("id_token_signing_alg_values_supported", []))

    def test_jwks_verifies_access_token(self):
        jwks = self.get_json(self.g["GLEWLWYD_JWKS_URL"])
        keys = [k for k in jwks["keys"] if k.get("kty") == "RSA"]
        self.assertTrue(keys, jwks)
        code, body = self.password_grant(self.g["GLEWLWYD_USER1"], self.g["GLEWLWYD_PASS1"])
        self.assertEqual(code, 200, body)
        at = json.loads(body)["access_token"]
        kid = json.loads(b64url(at.split(".")[0])).get("kid")
        candidates = [k for k in keys if kid is None or k.get("kid") == kid]
        self.assertTrue(candidates, "kid %r not in JWKS" % kid)
        self.assertTrue(any(rs256_valid(at, k) for k in candidates))
        tampered = at[:-4] + ("AAAA" if not at.endswith("AAAA") else "BBBB")
        self.assertFalse(any(rs256_valid(tampered, k) for k in candidates))

    def test_tls_is_real(self):
        # without our CA the certificate is not trusted (curl exit 60) ...
        rc, _, _ = curl(self.g["GLEWLWYD_DISCOVERY_URL"])
        self.assertEqual(rc, 60)
        # ... and the port does not speak plain HTTP
        rc, code, _ = curl(self.g["GLEWLWYD_BASE_URL"].replace("https:", "http:") + "/config")
        self.assertNotEqual(code, 200)

    def test_listens_on_loopback_only(self):
        pid = glewlwyd.pid()
        self.assertTrue(pid)
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:      # 0A = LISTEN
                    listening.append(cols[1])
        port_hex = "%04X" % int(self.g["GLEWLWYD_PORT"])
        self.assertEqual(listening, ["0100007F:" + port_hex])


if __name__ == "__main__":
    unittest.main()
