"""The device authorization grant (RFC 8628) through oauth-token: `login
--device` against the test server's device endpoint, approved, denied,
expired, slowed down, cut off and interrupted; the QR code read back by
zbarimg; the token then served from the cache and refreshed.

Each login runs the real helper: the test reads the user code from its
standard error (or from a pty, for the QR code and Ctrl-C), approves or
denies it through the server's admin API as a given user, and checks what
the helper printed, stored and asked the server.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_device -v
"""

import json
import os
import re
import signal
import subprocess
import time
import unittest

import harness
import qrtext

SRV = harness.server()
BUILD = harness.build_dir()
HELPER = os.path.join(BUILD, "curl_helper", "oauth-token")
CODE_RE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")
DROPPED_ENV = ("OAUTH_TOKEN_", "PAM_OAUTH_", "XDG_", "GIT_", "CURL_")

try:
    import pexpect
except ImportError:  # Debian package python3-pexpect
    pexpect = None


def config_text():
    return f"""
[device]
token_url = {SRV.url("/generic/token")}
device_authorization_url = {SRV.url("/generic/device")}
grant = device
client_id = device-client
client_auth = none
scope = openid profile
ca_file = {SRV.ca_file}
retries = 0
timeout = 5s

[discovered]
token_url = {SRV.url("/jwt/token")}
issuer = {SRV.jwt_issuer}
grant = device
client_id = device-client
client_auth = none
ca_file = {SRV.ca_file}

[confidential]
token_url = {SRV.url("/generic/token")}
device_authorization_url = {SRV.url("/generic/device")}
client_id = test-client
client_secret = test-secret
client_auth = post
body = json
ca_file = {SRV.ca_file}

[password]
token_url = {SRV.url("/generic/token")}
grant = password
client_id = test-client
client_secret = test-secret
ca_file = {SRV.ca_file}
"""


class DeviceCase(unittest.TestCase):

    def setUp(self):
        SRV.reset()
        SRV.device(interval=1)
        self.dir = harness.tmpdir()
        self.cache = os.path.join(self.dir, "cache")
        self.config = harness.write_file(os.path.join(self.dir, "pam-oauth.conf"),
                                         config_text())
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(DROPPED_ENV) and not k.lower().endswith("_proxy")}
        env.update(HOME=self.dir, LC_ALL="C", PAM_OAUTH_CONFIG=self.config,
                   OAUTH_TOKEN_CACHE_DIR=self.cache)
        self.env = env

    def helper(self, *args, timeout=60):
        p = subprocess.run([HELPER, *args], env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        return p

    def login(self, *args, action=None, user="alice", before=None, timeout=90):
        """Run `oauth-token ARGS` (a device login), read the user code from
        its standard error, then action(user_code) (default: approve as
        user).  Returns (process, stdout, stderr, user_code)."""
        proc = subprocess.Popen([HELPER, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        err_lines, code = [], None
        deadline = time.monotonic() + timeout
        while code is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            err_lines.append(line)
            m = CODE_RE.search(line)
            if m is None and line.startswith("{"):
                code = json.loads(line)["user_code"]
            elif m is not None:
                code = m.group(1)
        if code is not None:
            if before is not None:
                before(code)
            if action is None:
                SRV.device_approve(code, user)
            else:
                action(code)
        # (not communicate(): it would skip what readline has buffered)
        rest = proc.stderr.read()
        out = proc.stdout.read()
        proc.wait(timeout=timeout)
        proc.stdout.close()
        proc.stderr.close()
        return proc, out, "".join(err_lines) + rest, code

    def cached(self, profile="device"):
        path = os.path.join(self.cache, profile + ".json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)


class Login(DeviceCase):

    def test_login_stores_and_serves_the_token_then_refreshes_it(self):
        proc, out, err, code = self.login("-p", "device", "login")
        self.assertEqual(proc.returncode, 0, err)
        token = out.strip()
        # nothing but the token on standard output
        self.assertRegex(out, r"^[!-~]+\n$")
        self.assertIn(f"To log in, open {SRV.url('/device')}?user_code={code}\n", err)
        self.assertIn(f"or open {SRV.url('/device')} and enter the code {code}\n", err)
        self.assertIn("logged in; token valid until", err)
        self.assertNotIn(token, err)
        entry = self.cached()
        self.assertEqual(entry["access_token"], token)
        self.assertTrue(entry["refresh_token"])
        (d,) = SRV.devices()
        self.assertEqual((d["state"], d["username"], d["scope"]), ("used", "alice",
                                                                   "openid profile"))
        self.assertEqual(d["slow_downs"], 0)  # the interval was kept
        # served from the cache: no new request, and neither libcurl nor
        # libqrencode (nor libcrypto) loaded
        before = SRV.stats()["total"]
        env = dict(self.env, LD_DEBUG="libs")
        p = subprocess.run([HELPER, "-p", "device"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, token + "\n"), p.stderr)
        self.assertEqual(SRV.stats()["total"], before)
        loaded = re.findall(r"calling init: (\S+)", p.stderr)
        self.assertTrue(any("libjson-c" in l for l in loaded), p.stderr)
        self.assertFalse([l for l in loaded if re.search(r"curl|qrencode|crypto|ssl", l)],
                         loaded)
        # refreshed with the refresh token the device login stored
        p = self.helper("-p", "device", "refresh", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        fresh = json.loads(p.stdout)["access_token"]
        self.assertNotEqual(fresh, token)
        stats = SRV.stats()
        self.assertEqual(stats["by_grant"].get("refresh_token"), 1)
        self.assertEqual(stats["device_requests"], 1)
        self.assertEqual(self.cached()["access_token"], fresh)
        # and then no token again: the message says to log in with --device
        SRV.revoke(self.cached()["refresh_token"])
        SRV.expire(all=True)
        p = self.helper("-p", "device", "refresh")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("run 'oauth-token login --device'", p.stderr)

    def test_json_line_for_a_program_without_a_terminal(self):
        proc, out, err, code = self.login("-p", "device", "login", "--device",
                                          "--format", "json")
        self.assertEqual(proc.returncode, 0, err)
        first = json.loads(err.splitlines()[0])
        self.assertEqual(set(first), {"user_code", "verification_uri",
                                      "verification_uri_complete", "expires_in",
                                      "interval"})
        self.assertEqual(first["user_code"], code)
        self.assertEqual(first["verification_uri"], SRV.url("/device"))
        self.assertEqual(first["verification_uri_complete"],
                         SRV.url("/device") + "?user_code=" + code)
        self.assertEqual(first["interval"], 1)
        self.assertTrue(0 < first["expires_in"] <= 300)
        self.assertEqual(len(err.splitlines()), 1, err)  # nothing else
        token = json.loads(out)
        self.assertEqual(token["access_token"], self.cached()["access_token"])
        self.assertEqual(token["token_type"], "Bearer")

    def test_discovery_and_a_jwt(self):
        proc, out, err, code = self.login("-p", "discovered", "login", user="bob")
        self.assertEqual(proc.returncode, 0, err)
        payload = out.strip().split(".")[1]
        claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=="))
        self.assertEqual(claims["preferred_username"], "bob")
        self.assertEqual(SRV.jwt_stats()["discovery_fetches"], 1)
        # an issuer whose discovery names no device endpoint
        SRV.jwt(device=False)
        p = self.helper("-p", "discovered", "login")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("the discovery document has no device_authorization_endpoint; "
                      "the issuer does not offer the device grant, or set "
                      "device_authorization_url", p.stderr)

    def test_confidential_client_json_body_and_a_password_profile(self):
        # --device on a profile whose primary grant is another one
        proc, out, err, code = self.login("-p", "confidential", "login", "--device")
        self.assertEqual(proc.returncode, 0, err)
        last = SRV.stats()["last_requests"]
        device_req = [r for r in last if r["path"] == "/generic/device"][0]
        self.assertEqual(json.loads(device_req["body"]),
                         {"client_id": "test-client", "client_secret": "test-secret"})
        poll = [r for r in last if r["path"] == "/generic/token"][-1]
        self.assertEqual(json.loads(poll["body"])["grant_type"],
                         "urn:ietf:params:oauth:grant-type:device_code")
        # a profile without a device endpoint says which keys to set
        p = self.helper("-p", "password", "login", "--device")
        self.assertEqual(p.returncode, 2)
        self.assertIn("set device_authorization_url, or issuer", p.stderr)

    def test_usage_errors(self):
        for args, what in ((("-p", "device", "login", "--device", "--username", "u"),
                            "--device asks for no user name or password"),
                           (("-p", "password", "login", "--format", "json"),
                            "--format is valid with 'login --device' only"),
                           (("-p", "device", "get", "--device"),
                            "--device is only valid with 'login'")):
            p = self.helper(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(what, p.stderr)
        self.assertEqual(SRV.stats()["device_requests"], 0)


class Outcomes(DeviceCase):

    def test_denied(self):
        proc, out, err, code = self.login("-p", "device", "login",
                                          action=SRV.device_deny)
        self.assertEqual(proc.returncode, 3, err)
        self.assertEqual(out, "")
        self.assertIn("access_denied: The user denied the login", err)
        self.assertIsNone(self.cached())

    def test_expired_code(self):
        SRV.device(expires_in=3)
        t0 = time.monotonic()
        proc, out, err, code = self.login("-p", "device", "login", action=lambda c: None)
        self.assertEqual(proc.returncode, 3, err)
        self.assertIn("the device code expired after 3 s before the login was approved",
                      err)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIsNone(self.cached())

    def test_expired_at_the_server(self):
        proc, out, err, code = self.login("-p", "device", "login",
                                          action=SRV.device_expire)
        self.assertEqual(proc.returncode, 3, err)
        self.assertIn("expired_token: The device code has expired", err)

    def test_device_timeout_bounds_the_login(self):
        t0 = time.monotonic()
        proc, out, err, code = self.login("-p", "device", "-o", "device_timeout=10s",
                                          "login", action=lambda c: None)
        took = time.monotonic() - t0
        self.assertEqual(proc.returncode, 3, err)
        self.assertRegex(err, r"The code is valid for (9|10) seconds\.")
        self.assertIn("the login was not approved within device_timeout (10 s)", err)
        self.assertTrue(9 <= took < 16, took)
        (d,) = SRV.devices()
        print(f"# device_timeout 10s: gave up after {took:.1f} s, {d['polls']} polls")
        self.assertEqual(d["slow_downs"], 0)

    def test_slow_down_adds_five_seconds_and_keeps_them(self):
        # The first poll is answered slow_down: the interval goes from 1 s
        # to 6 s.  The server answers slow_down again to any later poll
        # that comes sooner than 6 s after the one before.
        SRV.device(slow_down=1)
        times = []

        def approve_after_first_poll(code):
            deadline = time.monotonic() + 20
            while SRV.devices()[0]["polls"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            times.append(time.monotonic())
            SRV.device_approve(code, "alice")

        proc, out, err, code = self.login("-p", "device", "-v", "login",
                                          action=approve_after_first_poll)
        done = time.monotonic()
        self.assertEqual(proc.returncode, 0, err)
        (d,) = SRV.devices()
        self.assertEqual((d["polls"], d["slow_downs"], d["interval"]), (2, 1, 6), d)
        self.assertIn("slow_down: polling every 6 s", err)
        self.assertIn("2 poll(s), 0 pending, 1 slow_down", err)
        self.assertGreater(done - times[0], 4.5)
        print(f"# slow_down: {d['polls']} polls, interval {d['interval']} s after one "
              f"slow_down; token {done - times[0]:.1f} s after the first poll")

    def test_polls_keep_the_interval(self):
        SRV.device(interval=2)

        def approve_after_three_polls(code):
            deadline = time.monotonic() + 30
            while SRV.devices()[0]["polls"] < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            SRV.device_approve(code, "alice")

        t0 = time.monotonic()
        proc, out, err, code = self.login("-p", "device", "login",
                                          action=approve_after_three_polls)
        took = time.monotonic() - t0
        self.assertEqual(proc.returncode, 0, err)
        (d,) = SRV.devices()
        self.assertEqual((d["polls"], d["slow_downs"]), (4, 0), d)
        self.assertGreater(took, 7.5)  # 4 polls, 2 s apart, the first after 2 s

    def test_server_down(self):
        SRV.fault("/generic/device", "status", count=-1, status=503,
                  body={"error": "temporarily_unavailable"})
        p = self.helper("-p", "device", "login")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("device authorization endpoint answered HTTP 503: "
                      "temporarily_unavailable", p.stderr)
        SRV.clear_faults()
        p = self.helper("-p", "device", "-o",
                        f"device_authorization_url=https://127.0.0.1:{closed_port()}/d",
                        "login")
        self.assertEqual(p.returncode, 4, p.stderr)

    def test_polls_that_reach_nobody_back_off_then_succeed(self):
        # two polls are cut off (connection reset): the helper backs off
        # (2 s, then 4 s) and goes on polling
        SRV.fault("/generic/token", "reset", count=2)
        proc, out, err, code = self.login("-p", "device", "-v", "login")
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("2 unanswered", err)
        self.assertEqual(self.cached()["access_token"], out.strip())

    def test_hostile_answer_is_refused_before_anything_is_shown(self):
        SRV.device(response={"device_code": "d", "user_code": "\u001b]0;owned\u0007",
                             "verification_uri": SRV.url("/device"), "expires_in": 60})
        p = self.helper("-p", "device", "login")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("answered with a user_code longer than 128 bytes, holding a "
                      "control character or not UTF-8", p.stderr)
        self.assertNotIn("\u001b", p.stderr)
        self.assertNotIn("To log in", p.stderr)
        SRV.device(response={"device_code": "d", "user_code": "ABCD",
                             "verification_uri": "http://evil.test/device",
                             "expires_in": 60})
        p = self.helper("-p", "device", "login")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("verification_uri that is refused: http://evil.test/device",
                      p.stderr)

    def test_budget_is_checked_before_the_user_is_asked(self):
        proc, out, err, code = self.login("-p", "device", "-o", "budget=1", "login")
        self.assertEqual(proc.returncode, 0, err)
        p = self.helper("-p", "device", "-o", "budget=1", "login")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("monthly token budget of 1 requests", p.stderr)
        self.assertEqual(SRV.stats()["device_requests"], 1)


def closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipIf(pexpect is None, "python3-pexpect is not installed")
class Terminal(DeviceCase):

    def spawn(self, *args):
        env = dict(self.env, LC_ALL="C.UTF-8")
        # small reads: the output comes in many pieces every time, as it
        # can on a loaded machine (a QR code is some 2 KB of UTF-8)
        return pexpect.spawn(HELPER, list(args), env=env, encoding="utf-8", timeout=30,
                             dimensions=(60, 120), maxread=64)

    def approve_and_read_qr(self, child, code):
        """Approve code, read the helper's output to the end and return the
        QR code drawn in it: the code may arrive in many reads, and a match
        on the lines read so far can hold half of it."""
        SRV.device_approve(code, "alice")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 0, child.before)
        drawn = qrtext.extract(child.before)
        self.assertGreater(len(drawn.split("\n")), 10, child.before)
        return drawn

    def test_qr_code_decodes_to_the_complete_uri(self):
        child = self.spawn("-p", "device", "-o", "device_qr=yes", "login")
        child.expect(r"enter the code ([A-Z]{4}-[A-Z]{4})")
        code = child.match.group(1)
        child.expect(r"Or scan this QR code:\r\n")
        drawn = self.approve_and_read_qr(child, code)
        self.assertEqual(qrtext.decode(drawn), SRV.url("/device") + "?user_code=" + code)
        lines = drawn.split("\n")
        print(f"# QR code: {len(lines[0])} columns x {len(lines)} lines, decoded by "
              f"zbarimg to verification_uri_complete")

    def test_without_complete_uri_the_qr_code_holds_the_plain_uri(self):
        SRV.device(complete=False)
        child = self.spawn("-p", "device", "-o", "device_qr=yes", "login")
        child.expect(r"and enter the code ([A-Z]{4}-[A-Z]{4})")
        code = child.match.group(1)
        drawn = self.approve_and_read_qr(child, code)
        self.assertEqual(qrtext.decode(drawn), SRV.url("/device"))

    def test_ctrl_c_stops_cleanly(self):
        child = self.spawn("-p", "device", "login")
        child.expect(r"enter the code ([A-Z]{4}-[A-Z]{4})")
        code = child.match.group(1)
        time.sleep(1.5)  # a poll or two
        t0 = time.monotonic()
        child.sendintr()
        child.expect(pexpect.EOF)
        took = time.monotonic() - t0
        child.close()
        self.assertEqual(child.signalstatus, signal.SIGINT)
        self.assertIn("login cancelled; nothing was stored", child.before)
        self.assertIsNone(self.cached())
        self.assertLess(took, 5)
        # the server never saw a poll after the interrupt
        polls = SRV.devices()[0]["polls"]
        time.sleep(2)
        self.assertEqual(SRV.devices()[0]["polls"], polls)
        SRV.device_approve(code, "alice")  # too late: nobody collects it
        self.assertIsNone(self.cached())


if __name__ == "__main__":
    unittest.main()
