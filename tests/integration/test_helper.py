"""oauth-token against the test authorization server: every command and
output form, the exit codes, `oauth-token curl`'s recovery from HTTP 401,
what a process listing can see, and unusable cache files.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_helper -v
"""

import email.utils
import fcntl
import json
import os
import pty
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import termios
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness

SRV = harness.server()
BUILD = harness.build_dir()
HELPER = os.path.join(BUILD, "curl_helper", "oauth-token")
GIT_HELPER = os.path.join(BUILD, "curl_helper", "git-credential-oauth-token")
CURL = shutil.which("curl")
RESOURCE = SRV.url("/api/resource")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=SRV.ssl_context()))
TOKEN_RE = re.compile(r"[!-~]+")
# Variables of the caller that would change what the helper or curl does.
DROPPED_ENV = ("OAUTH_TOKEN_", "PAM_OAUTH_", "XDG_", "GIT_", "CURL_")


def closed_port():
    """A port of 127.0.0.1 on which nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resource_status(token):
    """The HTTP status of /api/resource with token as a Bearer token."""
    req = urllib.request.Request(RESOURCE, headers={"Authorization": "Bearer " + token})
    try:
        with OPENER.open(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def config_text(extra=""):
    """Profiles for every vendor the server emulates, and broken ones."""
    generic = SRV.url("/generic/token")
    return f"""# pam-oauth test configuration
[default]
token_url = {generic}
client_id = test-client
client_secret = test-secret
ca_file = {SRV.ca_file}
retries = 0

[froomle]
token_url = {SRV.url("/froomle/oauth/token")}
client_id = froomle-client
client_secret = froomle-secret
client_auth = post
body = json
refresh_interval = 10m
ca_file = {SRV.ca_file}

[wave]
token_url = {SRV.url("/wave/oauth/token")}
client_id = wave-client
client_secret = wave-secret
client_auth = post
audience = {harness.WAVE_AUDIENCE}
budget = 2
ca_file = {SRV.ca_file}

[fluent]
token_url = {SRV.url("/fluent/oauth/token")}
client_id = fluent-api
client_secret = fluent-secret
client_auth = post
body = query
grant = password
scope = api
ca_file = {SRV.ca_file}

[wrong-secret]
token_url = {generic}
client_id = test-client
client_secret = not-the-secret
ca_file = {SRV.ca_file}

[down]
token_url = https://127.0.0.1:{closed_port()}/generic/token
client_id = test-client
client_secret = test-secret
ca_file = {SRV.ca_file}
retries = 0
timeout = 5s
{extra}"""


class HelperTestCase(unittest.TestCase):
    """A private directory, configuration and token cache per test, and
    ways to run the helper.  No tests of its own (test_git imports it)."""

    extra_config = ""

    def setUp(self):
        SRV.reset()
        self.dir = harness.tmpdir()
        self.cache = os.path.join(self.dir, "cache")
        self.config = harness.write_file(os.path.join(self.dir, "pam-oauth.conf"),
                                         config_text(self.extra_config))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(DROPPED_ENV) and not k.lower().endswith("_proxy")}
        env.update(HOME=self.dir, LC_ALL="C", PAM_OAUTH_CONFIG=self.config,
                   OAUTH_TOKEN_CACHE_DIR=self.cache)
        self.env = env

    def run_helper(self, *args, input=None, env=None, program=HELPER, timeout=60, **kw):
        """Run the helper; stdout and stderr as text (bytes input allowed)."""
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.run([program, *args], input=input, env=env or self.env,
                           capture_output=True, timeout=timeout, **kw)
        p.stdout = p.stdout.decode("utf-8", "replace")
        p.stderr = p.stderr.decode("utf-8", "replace")
        return p

    def ok(self, *args, **kw):
        p = self.run_helper(*args, **kw)
        self.assertEqual(p.returncode, 0, f"oauth-token {' '.join(args)}: {p.stderr}")
        return p

    def token(self, *args):
        """A token from `oauth-token [args] get`."""
        p = self.ok(*args, "get")
        self.assertRegex(p.stdout, r"^[!-~]+\n$")
        return p.stdout.strip()

    def total(self):
        return SRV.stats()["total"]

    def cache_file(self, profile="default"):
        return os.path.join(self.cache, profile + ".json")

    def assertNoSecret(self, text, *secrets):
        for s in secrets:
            self.assertNotIn(s, text)


class Get(HelperTestCase):
    def test_get_prints_the_token_and_nothing_else(self):
        p = self.ok("get")
        self.assertRegex(p.stdout, r"^[!-~]+\n$")
        self.assertEqual(p.stderr, "")
        self.assertEqual(resource_status(p.stdout.strip()), 200)

    def test_default_command_is_get_and_the_token_is_cached(self):
        first = self.token()
        p = self.ok()
        self.assertEqual(p.stdout, first + "\n")
        self.assertEqual(self.total(), 1)
        self.assertEqual(stat.S_IMODE(os.stat(self.cache_file()).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.cache).st_mode), 0o700)

    def test_profile_from_option_and_environment(self):
        self.token("-p", "froomle")
        self.token("--profile=wave")
        env = dict(self.env, OAUTH_TOKEN_PROFILE="froomle")
        self.ok(env=env)  # cached: no new request
        self.assertEqual(SRV.stats()["token_requests"],
                         {"froomle-client": 1, "wave-client": 1})

    def test_config_option_replaces_the_search(self):
        other = harness.write_file(os.path.join(self.dir, "other.conf"), f"""
[only-here]
token_url = {SRV.url("/generic/token")}
client_id = test-client
client_secret = test-secret
ca_file = {SRV.ca_file}
""")
        self.token("-c", other, "-p", "only-here")
        p = self.run_helper("-c", other, "-p", "froomle")
        self.assertEqual(p.returncode, 2)
        self.assertIn("froomle", p.stderr)
        p = self.run_helper("-c", os.path.join(self.dir, "missing.conf"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.conf", p.stderr)

    def test_override_option(self):
        p = self.ok("-o", "scope=read write", "--format", "json")
        self.assertEqual(json.loads(p.stdout)["scope"], "read write")

    def test_json(self):
        p = self.ok("--format", "json")
        doc = json.loads(p.stdout)
        self.assertEqual(set(doc), {"access_token", "token_type", "expires_at",
                                    "expires_in", "scope"})
        self.assertEqual(doc["token_type"], "Bearer")
        self.assertTrue(3590 <= doc["expires_in"] <= 3600, doc)
        self.assertTrue(abs(doc["expires_at"] - time.time() - 3600) < 10, doc)
        self.assertIsNone(doc["scope"])
        self.assertEqual(self.token(), doc["access_token"])
        p = self.ok("get", "--format=json")
        self.assertEqual(json.loads(p.stdout)["access_token"], doc["access_token"])

    def test_header_for_curl_H(self):
        p = self.ok("header")
        self.assertRegex(p.stdout, r"^Authorization: Bearer [!-~]+\n$")
        c = subprocess.run([CURL, "-sS", "--cacert", SRV.ca_file, "-H", "@-", RESOURCE],
                           input=p.stdout, capture_output=True, text=True, env=self.env)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertTrue(json.loads(c.stdout)["ok"])

    def test_curl_config_for_curl_K(self):
        p = self.ok("curl-config")
        token = self.token()
        self.assertEqual(p.stdout, f'header = "Authorization: Bearer {token}"\n')
        c = subprocess.run([CURL, "-sS", "--cacert", SRV.ca_file, "-K", "-", RESOURCE],
                           input=p.stdout, capture_output=True, text=True, env=self.env)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(json.loads(c.stdout)["client"], "test-client")

    def test_vendor_profiles(self):
        for profile in ("froomle", "wave"):
            with self.subTest(profile=profile):
                self.assertEqual(resource_status(self.token("-p", profile)), 200)


class CurlCommand(HelperTestCase):
    def curl(self, *args, **kw):
        return self.run_helper("curl", "-sS", "--cacert", SRV.ca_file, *args, **kw)

    def test_output_and_exit_status_are_curls(self):
        p = self.curl(RESOURCE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"ok": True, "client": "test-client",
                                                "user": None, "scope": None})
        p = self.curl("-f", SRV.url("/no/such/path"))
        self.assertEqual(p.returncode, 22)
        p = self.curl(f"https://127.0.0.1:{closed_port()}/")
        self.assertEqual(p.returncode, 7)
        self.assertIn("curl: (7)", p.stderr)

    def test_users_write_out_and_output_options_are_kept(self):
        p = self.curl("-o", "/dev/null", "-w", "%{http_code}", RESOURCE)
        self.assertEqual((p.returncode, p.stdout), (0, "200"))
        out = os.path.join(self.dir, "body")
        p = self.curl("-o", out, RESOURCE)
        self.assertEqual((p.returncode, p.stdout), (0, ""))
        with open(out) as f:
            self.assertTrue(json.load(f)["ok"])

    def test_first_argument_q_stays_first(self):
        p = self.run_helper("curl", "-q", "-sS", "--cacert", SRV.ca_file, RESOURCE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["ok"])

    def recover(self, invalidate):
        old = self.token()
        invalidate()
        before = self.total()
        p = self.curl(RESOURCE)
        self.assertEqual(p.returncode, 0, p.stderr)
        # exactly the final attempt's body, once
        self.assertEqual(json.loads(p.stdout)["ok"], True)
        self.assertEqual(self.total(), before + 1)
        new = self.token()
        self.assertNotEqual(new, old)
        self.assertEqual(self.total(), before + 1)

    def test_recovers_from_401_after_revocation(self):
        self.recover(lambda: SRV.revoke(all=True))

    def test_recovers_from_401_after_expiry(self):
        self.recover(lambda: SRV.expire(all=True))

    def test_a_second_401_is_final(self):
        self.token()
        SRV.fault("/api/resource", "status", count=2, status=401,
                  body={"error": "invalid_token", "n": 1})
        before = self.total()
        p = self.curl(RESOURCE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"error": "invalid_token", "n": 1})
        self.assertEqual(self.total(), before + 1)
        SRV.fault("/api/resource", "status", count=2, status=401)
        self.assertEqual(self.curl("-f", RESOURCE).returncode, 22)

    def test_no_token_no_curl(self):
        p = self.run_helper("-p", "wrong-secret", "curl", "-sS", "--cacert", SRV.ca_file,
                            RESOURCE)
        self.assertEqual(p.returncode, 3)
        self.assertEqual(p.stdout, "")
        self.assertEqual(SRV.stats()["resource_requests"], 0)

    def test_exit_status_with_sigchld_ignored_by_the_caller(self):
        def ignore_sigchld():
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        p = self.curl("-f", SRV.url("/no/such/path"), preexec_fn=ignore_sigchld)
        self.assertEqual(p.returncode, 22, p.stderr)

    def test_interrupt_while_the_token_is_fetched(self):
        SRV.fault("/generic/token", "stall", seconds=20)
        p = subprocess.Popen([HELPER, "curl", RESOURCE], env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=5)
        self.assertEqual(p.returncode, -signal.SIGINT)

    def test_missing_curl_program(self):
        env = dict(self.env, OAUTH_TOKEN_CURL=os.path.join(self.dir, "no-curl"))
        p = self.run_helper("curl", RESOURCE, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no-curl", p.stderr)


def proc_leaks(secret):
    """Every /proc/PID/{cmdline,environ} that holds secret."""
    found = []
    needle = secret.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    if needle in f.read():
                        found.append(f"{pid}/{name}")
            except OSError:
                pass
    return found


def children(pid):
    """PIDs whose parent is pid."""
    result = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            result.append(int(entry))
    return result


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


class ProcessListing(HelperTestCase):
    def test_token_not_in_any_argv_or_environment_while_curl_runs(self):
        token = self.token()
        SRV.fault("/api/resource", "stall", seconds=4)
        p = subprocess.Popen([HELPER, "curl", "-sS", "--cacert", SRV.ca_file, RESOURCE],
                             env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            kids = []
            while not kids and time.monotonic() < deadline:
                kids = children(p.pid)
                time.sleep(0.05)
            self.assertTrue(kids, "curl was not started")
            time.sleep(0.5)  # curl is connected and waiting on the stall
            argv = cmdline(kids[0])
            self.assertIn(b"-K", argv)
            self.assertTrue(any(a.startswith(b"/dev/fd/") for a in argv), argv)
            self.assertEqual(proc_leaks(token), [])
        finally:
            out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(json.loads(out)["ok"])

    def test_token_not_in_argv_while_a_token_is_fetched(self):
        SRV.fault("/generic/token", "stall", seconds=2)
        p = subprocess.Popen([HELPER, "get"], env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(1)
        self.assertIsNone(p.poll())
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        # nothing of the process held the (then future) token either
        self.assertEqual(proc_leaks(out.decode().strip()), [])


class Relay:
    """A TCP relay from a free port of 127.0.0.1 to port (each connection
    in a thread); stop() closes the port, so connections are refused."""

    def __init__(self, port):
        self.target = port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class Outage(HelperTestCase):
    """A valid token is served through an outage (issue 14.8): Froomle's
    profile renews every 10 minutes a token valid for 24 hours; when the
    renewal fails because the identity provider is unavailable, the cached
    token is printed (exit 0) with a warning, and callers do not each wait
    for the same failure."""

    PATH = "/froomle/oauth/token"

    def setUp(self):
        super().setUp()
        self.first = self.token("-p", "froomle")
        self.path = self.cache_file("froomle")

    def entry(self):
        with open(self.path) as f:
            return json.load(f)

    def make_due(self, **changes):
        """The cached token obtained 601 s ago: due by refresh_interval,
        valid for almost 24 h more."""
        entry = self.entry()
        entry.pop("renewal", None)
        now = int(time.time())
        entry.update({"obtained_at": now - 601, "expires_at": now - 601 + 86400, **changes})
        harness.write_file(self.path, json.dumps(entry))
        return entry

    def froomle_requests(self):
        return SRV.stats()["by_path"].get(self.PATH, 0)

    def assertServedStale(self, p, outcome):
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, self.first + "\n")
        self.assertIn("oauth-token: froomle: warning: renewing the token failed (%s: " % outcome,
                      p.stderr)
        self.assertRegex(p.stderr, r"using the cached token, valid until \d{4}-\d\d-\d\d "
                         r"\d\d:\d\d:\d\d UTC \(14\d\d min left\); the next renewal is "
                         r"tried after ")
        self.assertNoSecret(p.stderr, self.first)

    def test_served_through_each_kind_of_outage(self):
        cases = [("HTTP 503", "server_error", ("status",), {"status": 503}, ()),
                 ("HTTP 500", "server_error", ("status",), {"status": 500}, ()),
                 ("HTTP 429", "rate_limited", ("429",), {"retry_after": 0}, ()),
                 ("connection closed", "network", ("close",), {}, ()),
                 ("connection reset", "network", ("reset",), {}, ()),
                 ("garbage", "malformed_response", ("garbage",), {}, ()),
                 ("stall", "timeout", ("stall",), {"seconds": 10}, ("-o", "timeout=1500ms"))]
        for name, outcome, (kind,), kw, extra in cases:
            with self.subTest(name):
                SRV.clear_faults()
                self.make_due()
                SRV.fault(self.PATH, kind, count=-1, **kw)
                before = self.froomle_requests()
                p = self.run_helper("-p", "froomle", "-o", "retries=1", *extra, "get")
                self.assertServedStale(p, outcome)
                self.assertGreater(self.froomle_requests(), before)
                self.assertEqual(self.entry()["renewal"]["failures"], 1)
                # The next call, within the backoff, does not ask again.
                before = self.froomle_requests()
                p = self.run_helper("-p", "froomle", *extra, "get")
                self.assertServedStale(p, outcome)
                self.assertEqual(self.froomle_requests(), before)
        # The provider is back and the backoff over: a new token, no warning,
        # and the note is gone.
        SRV.clear_faults()
        entry = self.entry()
        entry["renewal"]["after"] = entry["renewal"]["failed_at"]
        harness.write_file(self.path, json.dumps(entry))
        p = self.ok("-p", "froomle", "get")
        self.assertEqual(p.stderr, "")
        self.assertNotEqual(p.stdout.strip(), self.first)
        self.assertNotIn("renewal", self.entry())

    def test_served_while_the_server_is_down(self):
        """The identity provider's port closed (connection refused): a TCP
        relay in front of the test server, stopped after the first token."""
        relay = Relay(SRV.port)
        try:
            conf = harness.write_file(os.path.join(self.dir, "relay.conf"), config_text().replace(
                SRV.url(self.PATH), f"https://127.0.0.1:{relay.port}{self.PATH}"))
            env = dict(self.env, PAM_OAUTH_CONFIG=conf)
            os.remove(self.path)
            self.first = self.ok("-p", "froomle", env=env).stdout.strip()
        finally:
            relay.stop()
        self.make_due()
        p = self.run_helper("-p", "froomle", "-o", "retries=0", env=env)
        self.assertServedStale(p, "network")
        self.assertIn("127.0.0.1:%d" % relay.port, p.stderr)

    def test_status_shows_the_failed_renewal(self):
        self.make_due()
        SRV.fault(self.PATH, "status", count=-1, status=503)
        self.ok("-p", "froomle", "-o", "retries=0", "get")
        p = self.ok("-p", "froomle", "status")
        self.assertIn("token:          refresh-due", p.stdout)
        self.assertRegex(p.stdout, r"renewal:        failed 1 time\(s\), last at \d{4}-.* UTC: "
                         r"server_error: token endpoint answered HTTP 503")
        self.assertIn("next attempt after", p.stdout)
        doc = json.loads(self.ok("-p", "froomle", "status", "--format", "json").stdout)
        self.assertEqual(doc["renewal"]["outcome"], "server_error")
        self.assertEqual(doc["renewal"]["failures"], 1)

    def test_a_rejection_is_not_served_stale(self):
        self.make_due()
        SRV.client("froomle-client", secret="rotated-secret")
        p = self.run_helper("-p", "froomle", "get")
        self.assertEqual((p.returncode, p.stdout), (3, ""), p.stderr)
        self.assertIn("invalid_client", p.stderr)

    def test_an_expired_token_is_not_served(self):
        now = int(time.time())
        self.make_due(obtained_at=now - 86400, expires_at=now - 1)
        SRV.fault(self.PATH, "status", count=-1, status=503)
        p = self.run_helper("-p", "froomle", "-o", "retries=0", "get")
        self.assertEqual((p.returncode, p.stdout), (4, ""), p.stderr)
        # During the backoff the next caller fails at once, without a request.
        before = self.froomle_requests()
        t = time.monotonic()
        p = self.run_helper("-p", "froomle", "get")
        self.assertEqual((p.returncode, p.stdout), (4, ""), p.stderr)
        self.assertIn("not tried again before", p.stderr)
        self.assertEqual(self.froomle_requests(), before)
        self.assertLess(time.monotonic() - t, 2)
        # oauth-token refresh always asks.
        p = self.run_helper("-p", "froomle", "-o", "retries=0", "refresh")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertEqual(self.froomle_requests(), before + 1)

    def test_many_callers_during_a_stall_wait_once(self):
        """20 callers while the provider stalls: one waits for the timeout
        (1.5 s) while the others get the cached token at once; none waits
        for the lock, and at most one request is made."""
        self.make_due()
        SRV.fault(self.PATH, "stall", count=-1, seconds=10)
        before = self.froomle_requests()
        t = time.monotonic()
        procs = [subprocess.Popen([HELPER, "-p", "froomle", "-o", "timeout=1500ms", "-o",
                                   "retries=0", "get"], env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(20)]
        results = [(p.wait(timeout=60), p.stdout.read().decode(), p.stderr.read().decode())
                   for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        elapsed = time.monotonic() - t
        self.assertEqual([r[0] for r in results], [0] * 20, [r[2] for r in results])
        self.assertEqual({r[1] for r in results}, {self.first + "\n"})
        self.assertLessEqual(self.froomle_requests() - before, 1)
        self.assertLess(elapsed, 1.5 + 3, results)
        sys.stderr.write(f"\n# 20 callers during a stall: {elapsed:.2f} s, "
                         f"{self.froomle_requests() - before} request(s)\n")


class Status(HelperTestCase):
    def test_status_without_a_token(self):
        p = self.ok("status")
        self.assertIn("token:          none", p.stdout)
        self.assertIn(self.cache_file(), p.stdout)

    def test_status_text(self):
        token = self.token("-p", "wave")
        p = self.ok("-p", "wave", "status")
        self.assertNoSecret(p.stdout + p.stderr, token, "wave-secret")
        self.assertIn("profile:        wave", p.stdout)
        self.assertIn("token url:      " + SRV.url("/wave/oauth/token"), p.stdout)
        self.assertIn(self.cache_file("wave"), p.stdout)
        self.assertIn("token:          valid", p.stdout)
        self.assertRegex(p.stdout, r"expires: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in \d+ s\)")
        self.assertIn("refresh token:  none", p.stdout)
        self.assertRegex(p.stdout, r"requests: +1 of 2 in \d{4}-\d\d")

    def test_status_json(self):
        token = self.token()
        p = self.ok("status", "--format", "json")
        self.assertNoSecret(p.stdout, token)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["profile"], "default")
        self.assertEqual(doc["state"], "valid")
        self.assertEqual(doc["cache_file"], self.cache_file())
        self.assertEqual(doc["requests"], 1)
        self.assertIsNone(doc["budget"])
        self.assertFalse(doc["refresh_token"])
        self.assertTrue(0 < doc["expires_in"] <= 3600)
        self.assertNotIn("access_token", doc)

    def test_status_refresh_due(self):
        self.token()
        p = self.ok("status", "--format", "json", "-o", "refresh_margin=1h")
        self.assertEqual(json.loads(p.stdout)["state"], "refresh-due")
        self.token("-p", "froomle")
        time.sleep(1.1)
        p = self.ok("-p", "froomle", "status", "-o", "refresh_interval=1s")
        self.assertIn("token:          refresh-due", p.stdout)


class Refresh(HelperTestCase):
    def test_refresh_fetches_a_new_token_and_prints_nothing(self):
        first = self.token()
        p = self.ok("refresh")
        self.assertEqual((p.stdout, p.stderr), ("", ""))
        second = self.token()
        self.assertNotEqual(first, second)
        self.assertEqual(self.total(), 2)
        self.assertEqual(json.loads(self.ok("status", "--format=json").stdout)["requests"], 2)

    def test_refresh_json(self):
        p = self.ok("refresh", "--format", "json")
        self.assertEqual(json.loads(p.stdout)["access_token"], self.token())
        self.assertEqual(self.total(), 1)

    def test_refresh_verbose_logs_the_expiry(self):
        p = self.ok("-v", "refresh")
        self.assertEqual(p.stdout, "")
        self.assertIn("new token, valid until", p.stderr)
        self.assertNoSecret(p.stderr, self.token(), "test-secret")


class Erase(HelperTestCase):
    def test_erase_drops_the_token(self):
        first = self.token()
        p = self.ok("erase")
        self.assertEqual(p.stdout, "")
        self.assertIn("token:          none", self.ok("status").stdout)
        with open(self.cache_file()) as f:
            self.assertNotIn(first, f.read())
        self.assertNotEqual(self.token(), first)
        self.assertEqual(self.total(), 2)
        self.ok("erase")
        self.ok("erase")


class Login(HelperTestCase):
    def login(self, user="alice", password=None, *extra):
        password = harness.USERS[user] if password is None else password
        return self.run_helper("-p", "fluent", "login", "--username", user,
                               "--password-stdin", *extra, input=password + "\n")

    def test_login_with_password_stdin(self):
        p = self.login()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("logged in as alice", p.stderr)
        self.assertNoSecret(p.stdout + p.stderr, "alice-pass", "fluent-secret")
        token = self.token("-p", "fluent")
        self.assertEqual(resource_status(token), 200)
        with open(self.cache_file("fluent"), "rb") as f:
            cached = f.read()
        self.assertNotIn(b"alice-pass", cached)
        self.assertNotIn(b"fluent-secret", cached)
        status = self.ok("-p", "fluent", "status").stdout
        self.assertIn("user:           alice", status)
        self.assertIn("refresh token:  cached", status)
        self.assertEqual(SRV.stats()["by_grant"], {"password": 1})

    def test_refresh_token_is_used_after_expiry(self):
        self.assertEqual(self.login().returncode, 0)
        first = self.token("-p", "fluent")
        SRV.expire(all=True)
        self.ok("-p", "fluent", "refresh")
        self.assertNotEqual(self.token("-p", "fluent"), first)
        self.assertEqual(SRV.stats()["by_grant"], {"password": 1, "refresh_token": 1})

    def test_rejected_refresh_token_says_why(self):
        """The server's error_description survives into the message
        (issue 14.9)."""
        self.assertEqual(self.login().returncode, 0)
        with open(self.cache_file("fluent")) as f:
            SRV.revoke(token=json.load(f)["refresh_token"])
        p = self.run_helper("-p", "fluent", "refresh")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("the refresh token was rejected (token endpoint answered HTTP 400: "
                      "invalid_grant: Invalid refresh token); run 'oauth-token login'", p.stderr)
        self.assertIn("refresh token:  none", self.ok("-p", "fluent", "status").stdout)

    def test_password_with_special_characters(self):
        p = self.login("carol")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.login("bob", harness.USERS["bob"] + "\r")  # a CRLF line
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_wrong_password(self):
        p = self.login("alice", "wrong")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("fluent", p.stderr)
        self.assertNotIn("wrong\n", p.stderr)

    def test_empty_password(self):
        p = self.login("alice", "")
        self.assertEqual(p.returncode, 2)
        self.assertIn("empty password", p.stderr)
        self.assertEqual(self.total(), 0)

    def test_get_before_login(self):
        p = self.run_helper("-p", "fluent")
        self.assertEqual(p.returncode, 1)
        self.assertIn("oauth-token login", p.stderr)

    def test_login_without_a_terminal(self):
        p = self.run_helper("-p", "fluent", "login", "--username", "alice",
                            start_new_session=True, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--password-stdin", p.stderr)

    def spawn_on_terminal(self, *args):
        """Run the helper on a new pseudo-terminal: (pid, master fd)."""
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(HELPER, [HELPER, *args], self.env)
            finally:
                os._exit(127)
        self.addCleanup(os.close, fd)
        return pid, fd

    def read_until(self, fd, marker, timeout=10):
        data, end = b"", time.monotonic() + timeout
        while marker not in data and time.monotonic() < end:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the other side is closed
                break
            if not chunk:
                break
            data += chunk
        return data

    def echo(self, fd):
        return bool(termios.tcgetattr(fd)[3] & termios.ECHO)

    def test_login_on_a_terminal(self):
        pid, fd = self.spawn_on_terminal("-p", "fluent", "login")
        self.assertTrue(self.read_until(fd, b"Username: ").endswith(b"Username: "))
        os.write(fd, b"alice\n")
        prompt = self.read_until(fd, b"): ")
        self.assertTrue(prompt.endswith(b"Password for alice (profile fluent): "), prompt)
        self.assertFalse(self.echo(fd))
        os.write(fd, b"alice-pass\n")
        rest = self.read_until(fd, b"cached\r\n")
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, rest)
        self.assertIn(b"logged in as alice", rest)
        self.assertNotIn(b"alice-pass", prompt + rest)
        self.assertTrue(self.echo(fd))
        self.assertEqual(resource_status(self.token("-p", "fluent")), 200)

    def test_interrupted_prompt_restores_the_terminal(self):
        pid, fd = self.spawn_on_terminal("-p", "fluent", "login", "--username", "alice")
        self.read_until(fd, b"): ")
        self.assertFalse(self.echo(fd))
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        self.assertTrue(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT,
                        status)
        self.assertTrue(self.echo(fd))
        self.assertEqual(self.total(), 0)

    def test_login_options_only_for_login(self):
        p = self.run_helper("get", "--password-stdin")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--password-stdin", p.stderr)


class CheckConfig(HelperTestCase):
    def test_clean_configuration(self):
        p = self.ok("check-config")
        self.assertEqual(p.stdout, f"{self.config}: ok\n")

    def test_every_problem_with_file_and_line(self):
        bad = harness.write_file(os.path.join(self.dir, "bad.conf"), f"""[one]
token_url = {SRV.url("/generic/token")}
client_id = test-client
colour = blue
retries = many
client_secret = x

[two]
client_id = nothing-else

[three]
token_url = {SRV.url("/generic/token")}
client_id = test-client
client_secret = y
match = https://git.example.com/ git.example.com/typo
""")
        p = self.run_helper("-c", bad, "check-config")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{bad}:4", p.stderr)
        self.assertIn("colour", p.stderr)
        self.assertIn(f"{bad}:5", p.stderr)
        self.assertIn("retries", p.stderr)
        self.assertIn("two", p.stderr)  # no token_url
        self.assertRegex(p.stderr, r"three.*match.*git\.example\.com/typo")
        self.assertGreaterEqual(p.stderr.count("oauth-token: "), 4)
        self.assertEqual(p.stdout, "")
        self.assertNotIn("x\n", p.stderr)

    def test_no_configuration_file(self):
        p = self.run_helper("-c", os.path.join(self.dir, "none.conf"), "check-config")
        self.assertEqual(p.returncode, 2)
        self.assertIn("none.conf", p.stderr)


class ExitCodes(HelperTestCase):
    def assertExit(self, code, args, *words, env=None):
        p = self.run_helper(*args, env=env)
        self.assertEqual(p.returncode, code, f"{args}: {p.stderr}")
        self.assertEqual(p.stdout, "")
        self.assertTrue(p.stderr.startswith("oauth-token: "), p.stderr)
        for w in words:
            self.assertIn(w, p.stderr)
        self.assertNotIn("secret\n", p.stderr)
        return p

    def test_rejected_credentials_3(self):
        p = self.assertExit(3, ["-p", "wrong-secret"], "oauth-token: wrong-secret: ",
                            "invalid_client")
        self.assertNoSecret(p.stderr, "not-the-secret")

    def test_identity_provider_unavailable_4(self):
        self.assertExit(4, ["-p", "down"], "oauth-token: down: ")
        SRV.fault("/generic/token", "status", count=-1, status=503)
        self.assertExit(4, [])
        SRV.clear_faults()
        SRV.fault("/generic/token", "garbage", count=-1)
        self.assertExit(4, [])
        SRV.clear_faults()
        SRV.fault("/generic/token", "429", count=-1, retry_after=0)
        self.assertExit(4, [])

    def test_rate_limited_says_when_and_whose_quota(self):
        """A 429 says when to try again, and for a profile with a monthly
        budget (Wave: 1000 tokens a month) that it is the vendor's quota
        (issue 14.9)."""
        when = int(time.time()) + 12 * 86400
        SRV.fault("/wave/oauth/token", "429", count=-1,
                  headers={"Retry-After": email.utils.formatdate(when, usegmt=True)})
        p = self.assertExit(4, ["-p", "wave", "-o", "retries=0"], "oauth-token: wave: ",
                            "HTTP 429", "try again after " +
                            time.strftime("%Y-%m-%d %H:%M", time.gmtime(when)),
                            "monthly quota for client wave-client is probably used up",
                            "budget = 2")
        SRV.clear_faults()
        SRV.fault("/generic/token", "429", count=-1, retry_after=30)
        p = self.assertExit(4, ["-o", "retries=0"], "the server asks to wait 30 s")
        self.assertNotIn("quota", p.stderr)

    def test_budget_5(self):
        self.ok("-p", "wave", "refresh")
        self.ok("-p", "wave", "refresh")
        self.assertExit(5, ["-p", "wave", "refresh"], "budget", "--force")
        self.assertEqual(self.total(), 2)
        p = self.ok("-p", "wave", "--force", "refresh")
        self.assertIn("warning", p.stderr)
        self.assertEqual(self.total(), 3)

    def test_lock_timeout_6(self):
        os.makedirs(self.cache, mode=0o700)
        fd = os.open(os.path.join(self.cache, "default.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.assertExit(6, ["-o", "lock_timeout=300ms"], "default.lock")
        finally:
            os.close(fd)
        self.token()

    def test_usage_2(self):
        self.assertExit(2, ["--bogus"], "'--bogus'", "--help")
        self.assertExit(2, ["-x"], "'-x'")
        self.assertExit(2, ["frobnicate"], "'frobnicate'")
        self.assertExit(2, ["get", "extra"], "'extra'")
        self.assertExit(2, ["-p"], "'-p'")
        self.assertExit(2, ["--format", "xml"], "xml")
        self.assertExit(2, ["erase", "--format", "json"], "--format")
        self.assertExit(2, ["--force=yes"], "--force")

    def test_configuration_2(self):
        self.assertExit(2, ["-p", "nonesuch"], "nonesuch", self.config)
        self.assertExit(2, ["-o", "retries=many"], "retries")
        self.assertExit(2, ["-o", "novalue"], "KEY=VALUE")
        p = self.assertExit(2, ["-o", "client_secret=hunter2"], "client_secret")
        self.assertNoSecret(p.stderr, "hunter2")
        self.assertExit(2, ["-o", "token_url=http://example.com/token"], "https")
        self.assertEqual(self.total(), 0)

    def test_help_and_version(self):
        p = self.ok("--help")
        for word in ("get", "header", "curl-config", "curl", "status", "refresh", "erase",
                     "login", "check-config", "--format", "--force", "Exit status",
                     "token_url", "OAUTH_TOKEN_PROFILE"):
            self.assertIn(word, p.stdout)
        for code in range(7):
            self.assertRegex(p.stdout, rf"\n  {code}  ")
        p = self.ok("--version")
        self.assertRegex(p.stdout, r"^oauth-token \(pam-oauth\) \d+\.\d+\.\d+\n$")

    def test_help_shows_the_files_read(self):
        """--help lists the configuration files this invocation reads; the
        default build reads /etc/pam-oauth, like the man pages say (issue
        14.9)."""
        env = {k: v for k, v in self.env.items() if k != "PAM_OAUTH_CONFIG"}
        env["XDG_CONFIG_HOME"] = os.path.join(self.dir, "xdg")
        p = self.ok("--help", env=env)
        files = p.stdout.split("\nConfiguration files, in the order read (from the "
                               "built-in search list):\n")[1].split("\n\n")[0]
        self.assertEqual(files.splitlines()[0].split(" (")[0], "  /etc/pam-oauth/pam-oauth.conf")
        self.assertEqual(files.splitlines()[1],
                         "  " + os.path.join(self.dir, "xdg", "pam-oauth", "pam-oauth.conf")
                         + " (missing: skipped)")
        p = self.ok("--help")
        self.assertIn("(from $PAM_OAUTH_CONFIG):\n  %s\n" % self.config, p.stdout)
        p = self.ok("-c", self.config, "-c", "/nonexistent.conf", "--help")
        self.assertIn("(from -c):\n  %s\n  /nonexistent.conf (missing: an error)\n"
                      % self.config, p.stdout)
        with open(os.path.join(harness.REPO_ROOT, "man", "pam-oauth.conf.5")) as f:
            self.assertIn(".I /etc/pam\\-oauth/pam\\-oauth.conf\nThe system file", f.read())


class BadCache(HelperTestCase):
    """An unusable cache file: a warning and a new token, never a crash."""

    def check_refetch(self, mangle):
        first = self.token()
        path = self.cache_file()
        mangle(path)
        p = self.run_helper("get")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("warning", p.stderr)
        self.assertIn(path, p.stderr)
        token = p.stdout.strip()
        self.assertNoSecret(p.stderr, first, token)
        self.assertEqual(self.total(), 2)
        self.assertEqual(resource_status(token), 200)
        st = os.lstat(path)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (os.geteuid(), 0o600))
        self.assertEqual(self.token(), token)  # and it is used from now on
        self.assertEqual(self.total(), 2)

    def test_corrupt(self):
        self.check_refetch(lambda path: harness.write_file(path, "{\"version\": 1, garbage"))

    def test_truncated(self):
        def truncate(path):
            with open(path, "rb") as f:
                data = f.read()
            harness.write_file(path, data[:len(data) // 2])
        self.check_refetch(truncate)

    def test_empty(self):
        self.check_refetch(lambda path: harness.write_file(path, ""))

    def test_binary(self):
        self.check_refetch(lambda path: harness.write_file(path, b"\0\xff\xfe{}\0"))

    def test_foreign_owner(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to chown")
        nobody = pwd.getpwnam("nobody")
        self.check_refetch(lambda path: os.chown(path, nobody.pw_uid, nobody.pw_gid))

    def test_symlink(self):
        def link(path):
            elsewhere = os.path.join(self.dir, "elsewhere.json")
            os.rename(path, elsewhere)
            os.symlink(elsewhere, path)
        self.check_refetch(link)
        # the link was replaced, its target left alone
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "elsewhere.json")))

    def test_group_writable(self):
        self.check_refetch(lambda path: os.chmod(path, 0o660))

    def forge_times(self, path, obtained, expires):
        with open(path) as f:
            entry = json.load(f)
        entry.update(access_token="forged-token", obtained_at=obtained, expires_at=expires)
        harness.write_file(path, json.dumps(entry))

    def test_times_out_of_bounds(self):
        """A forged or damaged entry is not served as fresh for ever
        (issue 14.5): times outside sane bounds are refused with a warning
        naming the file; a new token is fetched and the budget kept."""
        now = int(time.time())
        cases = [("expires_at -2^63", now - 10, -2**63),
                 ("expires_at 2^62", now - 10, 2**62),
                 ("expires_at 2^63-1", now - 10, 2**63 - 1),
                 ("obtained_at 0", 0, now + 3600),
                 ("obtained_at in a year", now + 366 * 86400, now + 367 * 86400),
                 ("lifetime over 10 years", now - 10, now + 11 * 366 * 86400)]
        for name, obtained, expires in cases:
            with self.subTest(name):
                SRV.reset()
                if os.path.exists(self.cache_file()):
                    os.remove(self.cache_file())
                self.check_refetch(lambda path: self.forge_times(path, obtained, expires))
                self.assertNotIn("forged-token", self.token())
                p = self.ok("status", "--format", "json")
                self.assertEqual(json.loads(p.stdout)["state"], "valid")

    def test_status_reads_a_corrupt_cache(self):
        self.token()
        harness.write_file(self.cache_file(), "not json")
        p = self.ok("status")
        self.assertIn("warning", p.stderr)
        self.assertIn("token:          none", p.stdout)


if __name__ == "__main__":
    unittest.main()
