"""The core's token requests (common/oauth.c, common/http.c) end to end,
through tests/tools/po-request, against the test authorization server and
Glewlwyd.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_core -v

po-request prints one JSON line (never a token: hashes only) and its log
lines, debug included, on stderr; see its header comment.
"""

import base64
import calendar
import email.utils
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness

SRV = harness.server()
PO_REQUEST = os.path.join(harness.build_dir(), "tests", "tools", "po-request")
SPECIAL_ID = harness.SPECIAL_CLIENT_ID
SPECIAL_SECRET = harness.SPECIAL_CLIENT_SECRET
GRANTS = ("client_credentials", "password", "refresh_token")
AUTHS = ("basic", "post", "none")
STYLES = ("form", "json", "query")


def ini_value(value):
    """A config file value: always quoted, backslash and quote escaped."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Result:
    """What one po-request run printed."""

    def __init__(self, proc, elapsed):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if len(lines) != 1:
            raise AssertionError("po-request printed %d lines:\n%s\nstderr:\n%s"
                                 % (len(lines), proc.stdout, proc.stderr))
        self.json = json.loads(lines[0])
        self.outcome = self.json["outcome"]
        self.logs = [line for line in proc.stderr.splitlines() if line.startswith("log: ")]

    def __getitem__(self, key):
        return self.json[key]

    def __repr__(self):
        return "Result(%r, stderr=%r)" % (self.json, self.stderr[-2000:])


class Runner:
    """Writes a one-profile config file and runs po-request on it."""

    def __init__(self):
        self.dir = harness.tmpdir()
        self.count = 0

    def run(self, profile, password=None, username=None, refresh_token=None,
            overrides=(), keep_tokens=False, timeout=60, extra_env=None):
        self.count += 1
        conf = os.path.join(self.dir, "c%d.conf" % self.count)
        text = "[p]\n" + "".join("%s = %s\n" % (k, ini_value(v))
                                 for k, v in profile.items() if v is not None)
        harness.write_file(conf, text, 0o600)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PO_") and k.lower() not in (
                   "http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env.update(extra_env or {})
        if username is not None:
            env["PO_USERNAME"] = username
        if refresh_token is not None:
            env["PO_REFRESH_TOKEN_FILE"] = harness.write_file(
                os.path.join(self.dir, "rt%d" % self.count), refresh_token)
        out_files = {}
        if keep_tokens:
            for kind in ("ACCESS", "REFRESH"):
                out_files[kind] = os.path.join(self.dir, "%s%d" % (kind.lower(), self.count))
                env["PO_%s_TOKEN_OUT" % kind] = out_files[kind]
        argv = [PO_REQUEST]
        for o in overrides:
            argv += ["-o", o]
        argv += [conf, "p"]
        start = time.monotonic()
        proc = subprocess.run(argv, input=(password + "\n") if password is not None else "",
                              capture_output=True, text=True, env=env, timeout=timeout)
        result = Result(proc, time.monotonic() - start)
        result.access_token = result.refresh_token = None
        for kind, path in out_files.items():
            if os.path.exists(path):
                with open(path) as f:
                    setattr(result, kind.lower() + "_token", f.read())
        return result


def generic_profile(grant, auth, style, **extra):
    client_id = "public-client" if auth == "none" else SPECIAL_ID
    profile = {"token_url": SRV.url("/generic/token"), "ca_file": SRV.ca_file,
               "grant": grant, "client_id": client_id, "client_auth": auth,
               "body": style, "timeout": "20s"}
    if auth != "none":
        profile["client_secret"] = SPECIAL_SECRET
    profile.update(extra)
    return profile


def request_params(req):
    """The parameters the server received, and the Basic pair if any."""
    if req["query"]:
        params = dict(urllib.parse.parse_qsl(req["query"], keep_blank_values=True))
    else:
        params = {}
    media = (req["content_type"] or "").split(";")[0].strip()
    if req["body"]:
        if media == "application/json":
            params.update(json.loads(req["body"]))
        else:
            params.update(urllib.parse.parse_qsl(req["body"], keep_blank_values=True))
    basic = None
    auth = {k.lower(): v for k, v in req["headers"].items()}.get("authorization")
    if auth and auth.startswith("Basic "):
        raw = base64.b64decode(auth[6:]).decode()
        cid, _, sec = raw.partition(":")
        basic = (raw, urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(sec))
    return params, basic


class CoreTestCase(unittest.TestCase):
    runner = None

    @classmethod
    def setUpClass(cls):
        if not os.access(PO_REQUEST, os.X_OK):
            raise unittest.SkipTest("%s not built (make test-tools)" % PO_REQUEST)
        cls.runner = Runner()

    def setUp(self):
        SRV.reset()

    def run_po(self, profile, **kw):
        return self.runner.run(profile, **kw)

    def last_request(self):
        return SRV.stats()["last_requests"][-1]

    def assertOutcome(self, result, outcome, status=None):
        self.assertEqual(result.outcome, outcome, result)
        if status is not None:
            self.assertEqual(result["http_status"], status, result)
        self.assertEqual(result.returncode, 0 if outcome == "ok" else 1, result)


class GenericMatrix(CoreTestCase):
    """Every grant x client_auth x body style on the RFC 6749 endpoint, with
    user names, passwords and client credentials that need encoding."""

    def refresh_token_for(self, auth, style):
        """A refresh token of this test's client (password grant)."""
        profile = generic_profile("password", auth, style)
        r = self.run_po(profile, username="bob", password=harness.USERS["bob"],
                        keep_tokens=True)
        self.assertOutcome(r, "ok")
        self.assertTrue(r.refresh_token)
        return r.refresh_token

    def check_arrived(self, req, grant, auth, style, user, refresh):
        params, basic = request_params(req)
        self.assertEqual(req["method"], "POST")
        self.assertEqual(params["grant_type"], grant)
        if style == "query":
            self.assertEqual(req["body"], "")
            self.assertIsNone(req["content_type"])
            self.assertIn("grant_type=" + grant, req["query"])
        else:
            self.assertEqual(req["query"], "")
            self.assertEqual(req["content_type"],
                             "application/json" if style == "json"
                             else "application/x-www-form-urlencoded")
        if grant == "password":
            self.assertEqual(params["username"], user)
            self.assertEqual(params["password"], harness.USERS[user])
        if grant == "refresh_token":
            self.assertEqual(params["refresh_token"], refresh)
        if auth == "basic":
            self.assertIsNotNone(basic)
            # RFC 6749 2.3.1: form-encoded, then base64
            self.assertEqual(basic[0], urllib.parse.quote_plus(SPECIAL_ID) + ":"
                             + urllib.parse.quote_plus(SPECIAL_SECRET))
            self.assertEqual(basic[1:], (SPECIAL_ID, SPECIAL_SECRET))
            self.assertNotIn("client_id", params)
            self.assertNotIn("client_secret", params)
        elif auth == "post":
            self.assertIsNone(basic)
            self.assertEqual(params["client_id"], SPECIAL_ID)
            self.assertEqual(params["client_secret"], SPECIAL_SECRET)
        else:
            self.assertIsNone(basic)
            self.assertEqual(params["client_id"], "public-client")
            self.assertNotIn("client_secret", params)

    def test_matrix(self):
        for grant in GRANTS:
            for auth in AUTHS:
                for style in STYLES:
                    with self.subTest(grant=grant, auth=auth, style=style):
                        SRV.reset()
                        refresh = user = password = None
                        if grant == "refresh_token":
                            refresh = self.refresh_token_for(auth, style)
                        if grant == "password":
                            user = "carol" if auth != "none" else "bob"
                            password = harness.USERS[user]
                        r = self.run_po(generic_profile(grant, auth, style),
                                        username=user, password=password,
                                        refresh_token=refresh)
                        req = self.last_request()
                        self.check_arrived(req, grant, auth, style, user, refresh)
                        if grant == "client_credentials" and auth == "none":
                            # a public client may not use client_credentials
                            self.assertOutcome(r, "unauthorized_client", 400)
                            continue
                        self.assertOutcome(r, "ok", 200)
                        self.assertEqual(r["token_type"], "Bearer")
                        self.assertTrue(r["expires_in_known"])
                        self.assertEqual(r["lifetime"], 3600)
                        self.assertEqual(r["has_refresh"], grant != "client_credentials")
                        self.assertEqual(len(r["access_token_sha256"]), 64)
                        self.assertIsNone(r["extra"])

    def test_special_user_names_and_scope(self):
        # a user whose name needs encoding, scope, audience, resource, extras
        SRV.user("d ave&=+%\"é", "pw \\ \"quoted\" & more")
        profile = generic_profile("password", "post", "form", scope="read write",
                                  resource="https://rs.test/a b")
        profile["param.tenant"] = "acme & co é"
        r = self.run_po(profile, username="d ave&=+%\"é",
                        password="pw \\ \"quoted\" & more")
        self.assertOutcome(r, "ok")
        self.assertEqual(r["scope"], "read write")
        params, _ = request_params(self.last_request())
        self.assertEqual(params["username"], "d ave&=+%\"é")
        self.assertEqual(params["password"], "pw \\ \"quoted\" & more")
        self.assertEqual(params["resource"], "https://rs.test/a b")
        self.assertEqual(params["tenant"], "acme & co é")
        self.assertEqual(params["scope"], "read write")

    def test_username_from_profile(self):
        profile = generic_profile("password", "basic", "json", username="alice")
        r = self.run_po(profile, password="alice-pass")
        self.assertOutcome(r, "ok")
        self.assertEqual(request_params(self.last_request())[0]["username"], "alice")

    def test_response_variants(self):
        SRV.client("test-client", omit_expires_in=True, lowercase_bearer=True)
        profile = {"token_url": SRV.url("/generic/token"), "ca_file": SRV.ca_file,
                   "client_id": "test-client", "client_secret": "test-secret",
                   "default_lifetime": "1234"}
        r = self.run_po(profile)
        self.assertOutcome(r, "ok")
        self.assertEqual(r["token_type"], "bearer")
        self.assertFalse(r["expires_in_known"])
        self.assertEqual(r["lifetime"], 1234)
        SRV.client("test-client", omit_expires_in=False, expires_in=77,
                   roles_in_response=True)
        r = self.run_po(profile, overrides=["grant=password"], username="alice",
                        password="alice-pass")
        self.assertOutcome(r, "ok")
        self.assertEqual(r["lifetime"], 77)
        self.assertEqual(r["extra"], {"roles": ["admin", "dev"]})

    def test_error_outcomes(self):
        base = generic_profile("password", "basic", "form")
        cases = [
            ({}, {"username": "alice", "password": "wrong"}, "invalid_grant", 400,
             "token endpoint answered HTTP 400: invalid_grant: Bad credentials"),
            ({"client_secret": "wrong"}, {"username": "alice", "password": "alice-pass"},
             "invalid_client", 401,
             "token endpoint answered HTTP 401: invalid_client: Bad client credentials"),
            ({"scope": "bad\\scope"}, {"username": "alice", "password": "alice-pass"},
             "invalid_scope", 400, "token endpoint answered HTTP 400: invalid_scope: "
             "malformed scope"),
        ]
        for change, kw, outcome, status, message in cases:
            with self.subTest(outcome=outcome):
                r = self.run_po({**base, **change}, **kw)
                self.assertOutcome(r, outcome, status)
                self.assertEqual(r["message"], message)
        # an invalid refresh token
        r = self.run_po(generic_profile("refresh_token", "basic", "form"),
                        refresh_token="not-a-token")
        self.assertOutcome(r, "invalid_grant", 400)
        self.assertIn("Invalid refresh token", r["message"])


class Vendors(CoreTestCase):
    """The four vendors' endpoints, success and error shapes."""

    def froomle(self, **kw):
        return {"token_url": SRV.url("/froomle/oauth/token"), "ca_file": SRV.ca_file,
                "client_id": "froomle-client", "client_secret": "froomle-secret",
                "client_auth": "post", "body": "json", **kw}

    def wave(self, **kw):
        return {"token_url": SRV.url("/wave/oauth/token"), "ca_file": SRV.ca_file,
                "client_id": "wave-client", "client_secret": "wave-secret",
                "client_auth": "post", "audience": harness.WAVE_AUDIENCE, **kw}

    def bloom(self, **kw):
        return {"token_url": SRV.url("/bloom/oauth/token"), "ca_file": SRV.ca_file,
                "client_id": "bloom-client", "client_secret": "bloom-secret",
                "client_auth": "post", "audience": harness.BLOOM_AUDIENCE, **kw}

    def fluent(self, **kw):
        return {"token_url": SRV.url("/fluent/oauth/token"), "ca_file": SRV.ca_file,
                "client_id": "fluent-api", "client_secret": "fluent-secret",
                "client_auth": "post", "body": "query", "grant": "password",
                "scope": "api", **kw}

    def test_froomle(self):
        r = self.run_po(self.froomle())
        self.assertOutcome(r, "ok", 200)
        self.assertEqual(r["lifetime"], 86400)
        req = self.last_request()
        self.assertEqual(req["content_type"], "application/json")
        self.assertEqual(json.loads(req["body"]),
                         {"grant_type": "client_credentials", "client_id": "froomle-client",
                          "client_secret": "froomle-secret"})
        self.assertOutcome(self.run_po(self.froomle(client_secret="nope")),
                           "invalid_client", 401)
        # a form body is refused (415 with an error code)
        self.assertOutcome(self.run_po(self.froomle(body="form")), "invalid_request", 415)
        # Basic is not understood there: no client at all
        self.assertOutcome(self.run_po(self.froomle(client_auth="basic")),
                           "invalid_client", 401)

    def test_wave(self):
        r = self.run_po(self.wave())
        self.assertOutcome(r, "ok", 200)
        self.assertEqual(r["lifetime"], 86400)
        params, _ = request_params(self.last_request())
        self.assertEqual(params["audience"], harness.WAVE_AUDIENCE)
        r = self.run_po(self.wave(audience="https://other.test"))
        self.assertOutcome(r, "invalid_request", 400)
        self.assertEqual(r["message"], "token endpoint answered HTTP 400: invalid_request: "
                         "missing or unknown audience")
        self.assertOutcome(self.run_po(self.wave(audience=None)), "invalid_request", 400)

    def test_bloom(self):
        r = self.run_po(self.bloom())
        self.assertOutcome(r, "ok", 200)
        self.assertEqual(r["scope"], harness.BLOOM_SCOPE)
        self.assertEqual(r["token_type"], "Bearer")
        self.assertEqual(r["lifetime"], 86400)
        r = self.run_po(self.bloom(scope="read:consumers"))
        self.assertOutcome(r, "ok")
        self.assertEqual(r["scope"], "read:consumers")
        r = self.run_po(self.bloom(scope="admin:everything"))
        self.assertOutcome(r, "invalid_scope", 400)
        self.assertOutcome(self.run_po(self.bloom(client_secret="x")), "invalid_client", 401)

    def test_fluent_password_and_extras(self):
        r = self.run_po(self.fluent(), username="alice", password="alice-pass")
        self.assertOutcome(r, "ok", 200)
        self.assertEqual(r["token_type"], "bearer")
        self.assertEqual(r["lifetime"], 86386)
        self.assertEqual(r["scope"], "api")
        self.assertTrue(r["has_refresh"])
        self.assertEqual(r["extra"], {"Retailer_id": 1, "FirstName": "Alice",
                                      "LastName": "Test", "Roles": ["admin", "dev"]})
        req = self.last_request()
        self.assertEqual(req["body"], "")
        params = dict(urllib.parse.parse_qsl(req["query"]))
        self.assertEqual(params, {"grant_type": "password", "username": "alice",
                                  "password": "alice-pass", "client_id": "fluent-api",
                                  "client_secret": "fluent-secret", "scope": "api"})

    def test_fluent_errors(self):
        r = self.run_po(self.fluent(), username="alice", password="bad")
        self.assertOutcome(r, "invalid_grant", 400)
        self.assertEqual(r["message"],
                         "token endpoint answered HTTP 400: invalid_grant: Bad credentials")
        r = self.run_po(self.fluent(client_secret="bad"), username="alice",
                        password="alice-pass")
        self.assertOutcome(r, "invalid_client", 401)
        self.assertEqual(r["message"], "token endpoint answered HTTP 401: invalid_client: "
                         "Bad client credentials")
        # parameters in a body are refused
        r = self.run_po(self.fluent(body="form"), username="alice", password="alice-pass")
        self.assertOutcome(r, "invalid_request", 400)

    def test_fluent_single_use_refresh(self):
        r = self.run_po(self.fluent(), username="bob", password=harness.USERS["bob"],
                        keep_tokens=True)
        self.assertOutcome(r, "ok")
        rt1 = r.refresh_token
        r2 = self.run_po(self.fluent(grant="refresh_token"), refresh_token=rt1,
                         keep_tokens=True)
        self.assertOutcome(r2, "ok")
        self.assertTrue(r2["has_refresh"])
        self.assertNotEqual(r2["refresh_token_sha256"], sha256(rt1))
        self.assertNotEqual(r2["access_token_sha256"], r["access_token_sha256"])
        self.assertEqual(r2["extra"]["FirstName"], "Bob")
        r3 = self.run_po(self.fluent(grant="refresh_token"), refresh_token=rt1)
        self.assertOutcome(r3, "invalid_grant", 400)
        self.assertEqual(r3["message"], "token endpoint answered HTTP 400: invalid_grant: "
                         "Invalid refresh token")

    def test_fluent_integration_client(self):
        r = self.run_po(self.fluent(client_id="FLUENT_INTEGRATION", client_auth="none",
                                    client_secret=None, scope="retailer"),
                        username="carol", password=harness.USERS["carol"])
        self.assertOutcome(r, "ok")
        self.assertEqual(r["lifetime"], 1799)
        self.assertEqual(r["scope"], "retailer")
        self.assertEqual(r["extra"], {"Retailer_id": 5, "FirstName": "Carol",
                                      "LastName": "Test", "Roles": ["RETAILER"]})
        params = dict(urllib.parse.parse_qsl(self.last_request()["query"]))
        self.assertEqual(params["password"], harness.USERS["carol"])
        self.assertNotIn("client_secret", params)


class Faults(CoreTestCase):
    """Transport faults and misbehaving servers, each with its outcome."""

    PATH = "/generic/token"

    def profile(self, **kw):
        return {"token_url": SRV.url(self.PATH), "ca_file": SRV.ca_file,
                "client_id": "test-client", "client_secret": "test-secret",
                "retries": "2", "timeout": "20s", **kw}

    def total(self):
        return SRV.stats()["total"]

    def test_stall_times_out(self):
        SRV.fault(self.PATH, "stall", seconds=10)
        r = self.run_po(self.profile(timeout="1500ms"))
        self.assertOutcome(r, "timeout")
        self.assertLess(r.elapsed, 5)
        self.assertEqual(self.total(), 1)

    def test_5xx_retried_then_server_error(self):
        for status in (500, 503):
            with self.subTest(status=status):
                SRV.reset()
                SRV.fault(self.PATH, "status", count=3, status=status)
                r = self.run_po(self.profile())
                self.assertOutcome(r, "server_error", status)
                self.assertEqual(self.total(), 3)
                self.assertEqual(r["message"], "token endpoint answered HTTP %d: "
                                 "server_error: injected fault (after 3 attempts)" % status)
                retries = [line for line in r.logs if "retrying" in line]
                self.assertEqual(len(retries), 2, r.logs)
                self.assertTrue(all(line.startswith("log: info: ") for line in retries))

    def test_5xx_once_then_ok(self):
        SRV.fault(self.PATH, "status", count=1, status=502, body="<html>bad gateway</html>")
        r = self.run_po(self.profile())
        self.assertOutcome(r, "ok")
        self.assertEqual(self.total(), 2)

    def test_no_retries(self):
        SRV.fault(self.PATH, "status", count=3, status=500)
        r = self.run_po(self.profile(retries="0"))
        self.assertOutcome(r, "server_error", 500)
        self.assertEqual(self.total(), 1)

    def test_429_retry_after(self):
        SRV.fault(self.PATH, "429", retry_after=1)
        r = self.run_po(self.profile())
        self.assertOutcome(r, "ok")
        self.assertEqual(self.total(), 2)
        self.assertGreaterEqual(r.elapsed, 1.0)
        self.assertTrue(any("HTTP 429; retrying in 1000 ms" in line for line in r.logs),
                        r.logs)

    def test_429_retry_after_beyond_deadline(self):
        SRV.fault(self.PATH, "429", retry_after=60)
        r = self.run_po(self.profile(timeout="5s"))
        self.assertOutcome(r, "rate_limited", 429)
        self.assertEqual(self.total(), 1)
        self.assertLess(r.elapsed, 4)
        # When to try again (issue 14.9), as a UTC time near now + 60 s.
        m = re.fullmatch(r"token endpoint answered HTTP 429: too_many_requests: Rate limit "
                         r"exceeded; the server asks to wait 60 s: try again after "
                         r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", r["message"])
        self.assertTrue(m, r["message"])
        when = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
        self.assertLess(abs(when - (time.time() + 60)), 10)

    def test_429_with_a_date_and_503(self):
        # A monthly quota's answer: "next month", as an HTTP date.
        when = int(time.time()) + 20 * 86400
        SRV.fault(self.PATH, "429",
                  headers={"Retry-After": email.utils.formatdate(when, usegmt=True)})
        r = self.run_po(self.profile(timeout="5s"))
        self.assertOutcome(r, "rate_limited", 429)
        self.assertIn("try again after %s" % time.strftime("%Y-%m-%d %H:%M", time.gmtime(when)),
                      r["message"])
        SRV.fault(self.PATH, "status", count=-1, status=503, headers={"Retry-After": "120"})
        r = self.run_po(self.profile(timeout="5s"))
        SRV.clear_faults()
        self.assertOutcome(r, "server_error", 503)
        self.assertIn("the server asks to wait 120 s: try again after", r["message"])

    def test_garbage(self):
        SRV.fault(self.PATH, "garbage")
        r = self.run_po(self.profile())
        self.assertOutcome(r, "malformed_response", 200)
        self.assertEqual(r["message"],
                         "token endpoint answered HTTP 200 with a body that is not JSON")
        self.assertEqual(self.total(), 1)

    def test_huge(self):
        SRV.fault(self.PATH, "huge")
        r = self.run_po(self.profile())
        self.assertOutcome(r, "malformed_response")
        self.assertIn("response body larger than 1 MiB", r["message"])
        self.assertEqual(self.total(), 1)

    def test_redirect(self):
        SRV.fault(self.PATH, "redirect", location="https://evil.test/steal")
        r = self.run_po(self.profile())
        self.assertOutcome(r, "malformed_response", 302)
        self.assertEqual(r["message"], "POST %s: HTTP 302: redirect refused" % SRV.url(self.PATH))
        self.assertEqual(self.total(), 1)

    def test_close_mid_response(self):
        SRV.fault(self.PATH, "close", count=3)
        r = self.run_po(self.profile())
        self.assertOutcome(r, "network")
        self.assertTrue(r["message"].startswith("POST %s: network error (curl: "
                                                % SRV.url(self.PATH)), r)
        self.assertTrue(r["message"].endswith(" (after 3 attempts)"), r)
        self.assertEqual(self.total(), 3)
        # The log says the request failed, not "HTTP 200" (the status curl
        # saw before the connection broke) (issue 14.9).
        last = [l for l in r.logs if "token request: grant" in l][-1]
        self.assertIn("failed after 3 attempt(s): network: POST", last)
        self.assertNotIn("HTTP 200", last)

    def test_unusable_ca_file(self):
        """A ca_file that cannot be used is said to be so: a configuration
        error (exit 2 for the helper), not a TLS failure (issue 14.9)."""
        garbage = harness.write_file(os.path.join(self.runner.dir, "garbage.pem"),
                                     "not a certificate\n", 0o644)
        cases = [(os.path.join(self.runner.dir, "missing.pem"), "cannot be read: No such file"),
                 (self.runner.dir, "is not a regular file"),
                 (garbage, "no usable CA certificates in ca_file")]
        for path, words in cases:
            with self.subTest(path):
                r = self.run_po(self.profile(ca_file=path))
                self.assertOutcome(r, "config")
                self.assertIn(words, r["message"])
                self.assertNotIn("TLS handshake", r["message"])
        self.assertEqual(self.total(), 0)

    def test_close_once_then_ok(self):
        SRV.fault(self.PATH, "close", count=1)
        self.assertOutcome(self.run_po(self.profile()), "ok")
        self.assertEqual(self.total(), 2)

    def test_reset(self):
        SRV.fault(self.PATH, "reset", count=3)
        r = self.run_po(self.profile())
        self.assertOutcome(r, "network")
        self.assertEqual(self.total(), 3)

    def test_empty_403_is_invalid_grant(self):
        SRV.fault(self.PATH, "empty", status=403)
        r = self.run_po(self.profile())
        self.assertOutcome(r, "invalid_grant", 403)
        self.assertEqual(r["message"], "token endpoint answered HTTP 403 with an empty body")

    def test_empty_400(self):
        # a refresh token rejected the Glewlwyd way: invalid_grant
        SRV.fault(self.PATH, "empty", status=400)
        r = self.run_po(self.profile(grant="refresh_token"), refresh_token="rt")
        self.assertOutcome(r, "invalid_grant", 400)
        self.assertEqual(r["message"], "token endpoint answered HTTP 400 with an empty "
                         "body (taken as a rejected refresh token)")
        # any other grant: invalid_request
        SRV.fault(self.PATH, "empty", status=400)
        r = self.run_po(self.profile())
        self.assertOutcome(r, "invalid_request", 400)
        self.assertEqual(r["message"], "token endpoint answered HTTP 400 with an empty body")
        # an error code in the body is taken as it is
        SRV.fault(self.PATH, "status", status=400, body={"error": "invalid_request"})
        r = self.run_po(self.profile(grant="refresh_token"), refresh_token="rt")
        self.assertOutcome(r, "invalid_request", 400)

    def test_empty_401_is_invalid_client(self):
        SRV.fault(self.PATH, "empty", status=401)
        self.assertOutcome(self.run_po(self.profile()), "invalid_client", 401)

    def test_wrong_certificate(self):
        url = SRV.wrong_cert_url(self.PATH)
        r = self.run_po(self.profile(token_url=url))
        self.assertOutcome(r, "tls")
        self.assertTrue(r["message"].startswith("POST %s: TLS" % url), r)
        self.assertEqual(self.total(), 0)

    def test_system_store_does_not_trust_test_ca(self):
        r = self.run_po(self.profile(ca_file=None))
        self.assertOutcome(r, "tls")

    def test_http_loopback_needs_allow_http(self):
        url = "http://127.0.0.1:%d%s" % (SRV.port, self.PATH)
        r = self.run_po(self.profile(token_url=url))
        self.assertOutcome(r, "config")
        self.assertIn("http://", r["message"])
        # allowed: the request goes out in clear text, which the TLS
        # server does not understand
        r = self.run_po(self.profile(token_url=url, allow_http="yes"))
        self.assertNotEqual(r.outcome, "config", r)
        self.assertIn(r.outcome, ("network", "malformed_response", "invalid_request"), r)

    def test_non_https_refused(self):
        for url in ("ftp://127.0.0.1/token", "http://auth.example.test/token",
                    "https://user:pw@127.0.0.1/token"):
            with self.subTest(url=url):
                r = self.run_po(self.profile(token_url=url, allow_http="yes"))
                self.assertOutcome(r, "config")
                self.assertNotIn("pw", r["message"])
        self.assertEqual(self.total(), 0)

    def test_message_never_has_query(self):
        # Fluent style: the secrets are in the query string of the URL
        SRV.fault("/fluent/oauth/token", "close", count=3)
        r = self.run_po({"token_url": SRV.url("/fluent/oauth/token"), "ca_file": SRV.ca_file,
                         "client_id": "fluent-api", "client_secret": "fluent-secret",
                         "client_auth": "post", "body": "query", "grant": "password",
                         "scope": "api"}, username="alice", password="alice-pass")
        self.assertOutcome(r, "network")
        for text in [r["message"]] + r.logs:
            self.assertNotIn("fluent-secret", text)
            self.assertNotIn("alice-pass", text)
            self.assertNotIn("?", text)


# OpenSSL settings that would let a client speak TLS 1.0 and 1.1 (security
# level 0): Debian's defaults already refuse them, so only with these does the
# TLS floor of the core itself show.
PERMISSIVE_OPENSSL_CONF = """openssl_conf = po_conf
[po_conf]
ssl_conf = po_ssl
[po_ssl]
system_default = po_system
[po_system]
MinProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
"""


class OldTlsServer:
    """An HTTPS token endpoint on 127.0.0.1 that speaks TLS 1.1 at most,
    with the test CA's server certificate."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps({"access_token": "old-tls-token", "token_type": "Bearer",
                               "expires_in": 3600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    def __init__(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.load_cert_chain(os.path.join(SRV.dir, "server.pem"),
                                os.path.join(SRV.dir, "server.key"))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/token" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class TlsFloor(CoreTestCase):
    """TLS 1.2 is the minimum the core accepts (CURLOPT_SSLVERSION), whatever
    the system's OpenSSL configuration allows (issue 14.7)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = harness.tmpdir()
        cls.conf = harness.write_file(os.path.join(cls.dir, "openssl.cnf"),
                                      PERMISSIVE_OPENSSL_CONF)
        try:
            cls.server = OldTlsServer()
        except (ssl.SSLError, ValueError) as e:
            raise unittest.SkipTest("Python's ssl cannot serve TLS 1.1 here: %s" % e)
        # The control: with these settings an ordinary client does connect
        # over TLS 1.1, so a refusal below is the core's own.
        p = subprocess.run(["curl", "-sS", "--cacert", SRV.ca_file, "--tlsv1.1",
                            "--tls-max", "1.1", "-d", "x", "-w", "%{http_code}", "-o",
                            os.devnull, cls.server.url],
                           env=dict(os.environ, OPENSSL_CONF=cls.conf), capture_output=True,
                           text=True, timeout=30)
        if p.stdout != "200":
            cls.server.stop()
            raise unittest.SkipTest("curl cannot reach a TLS 1.1 server even with "
                                    "OPENSSL_CONF allowing it: %s" % p.stderr.strip())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_tls_1_1_refused(self):
        r = self.run_po({"token_url": self.server.url, "ca_file": SRV.ca_file,
                         "client_id": "c", "client_secret": "s", "retries": "0"},
                        extra_env={"OPENSSL_CONF": self.conf})
        self.assertOutcome(r, "tls")
        self.assertIn("TLS", r["message"])

    def test_tls_1_2_and_later_accepted(self):
        r = self.run_po({"token_url": SRV.url("/generic/token"), "ca_file": SRV.ca_file,
                         "client_id": "test-client", "client_secret": "test-secret"},
                        extra_env={"OPENSSL_CONF": self.conf})
        self.assertOutcome(r, "ok")


class NoSecretsInLogs(CoreTestCase):
    """Many requests, debug logging on: no password, client secret or issued
    token ever appears in a log line or a message."""

    def test_no_secrets(self):
        outputs = []
        issued = []

        def run(profile, **kw):
            r = self.run_po(profile, keep_tokens=True, **kw)
            outputs.append(r.stdout)
            outputs.append(r.stderr)
            self.assertTrue(r.logs, r)
            issued.extend(t for t in (r.access_token, r.refresh_token) if t)
            return r

        for grant in GRANTS:
            for auth in AUTHS:
                for style in STYLES:
                    user = "carol" if grant == "password" else None
                    refresh = None
                    if grant == "refresh_token":
                        refresh = run(generic_profile("password", auth, style), username="bob",
                                      password=harness.USERS["bob"]).refresh_token
                    run(generic_profile(grant, auth, style), username=user,
                        password=harness.USERS.get(user), refresh_token=refresh)
                    # and a failure with the same secrets
                    run(generic_profile(grant, auth, style), username=user,
                        password="wrong " + harness.USERS["carol"], refresh_token="x" + (refresh or ""))
        fluent = {"token_url": SRV.url("/fluent/oauth/token"), "ca_file": SRV.ca_file,
                  "client_id": "fluent-api", "client_secret": "fluent-secret",
                  "client_auth": "post", "body": "query", "grant": "password", "scope": "api"}
        run(fluent, username="bob", password=harness.USERS["bob"])
        for kind, kw in (("429", {"retry_after": 0}), ("status", {"status": 503}),
                         ("close", {}), ("reset", {}), ("garbage", {}), ("redirect", {})):
            SRV.fault("*", kind, count=2, **kw)
            run(fluent, username="alice", password="alice-pass")
            run(generic_profile("password", "basic", "json"), username="carol",
                password=harness.USERS["carol"])
            SRV.clear_faults()
        for cid in ("froomle-client", "wave-client", "bloom-client"):
            vendor = cid.split("-")[0]
            run({"token_url": SRV.url("/%s/oauth/token" % vendor), "ca_file": SRV.ca_file,
                 "client_id": cid, "client_secret": harness.CLIENTS[cid],
                 "client_auth": "post", "body": "json" if vendor == "froomle" else "form",
                 "audience": {"wave": harness.WAVE_AUDIENCE,
                              "bloom": harness.BLOOM_AUDIENCE}.get(vendor)})

        secrets = set(issued)
        secrets.update(p for p in harness.USERS.values())
        secrets.update(s for s in harness.CLIENTS.values() if s)
        encoded = set()
        for s in list(secrets):
            encoded.add(urllib.parse.quote_plus(s))
            encoded.add(urllib.parse.quote(s))
            encoded.add(json.dumps(s)[1:-1])
        basic = base64.b64encode(("%s:%s" % (urllib.parse.quote_plus(SPECIAL_ID),
                                             urllib.parse.quote_plus(SPECIAL_SECRET))).encode())
        encoded.add(basic.decode()[:16])
        self.assertGreater(len(issued), 40)
        text = "\n".join(outputs)
        self.assertIn("log: debug: token request", text)
        for s in secrets | encoded:
            if len(s) >= 6:
                self.assertNotIn(s, text, "a secret leaked into the output")


class PrivilegedProcess(CoreTestCase):
    """In a setuid program (AT_SECURE) the environment is not trusted:
    proxies are ignored, and SSLKEYLOGFILE (which libcurl would honour)
    makes the core refuse to load libcurl.  Needs root, to make a setuid
    copy of po-request and run it as nobody."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            raise unittest.SkipTest("needs root and setpriv")
        cls.dir = harness.tmpdir()
        os.chmod(cls.dir, 0o755)
        cls.binary = os.path.join(cls.dir, "po-request")
        shutil.copy(PO_REQUEST, cls.binary)
        os.chmod(cls.binary, 0o4755)
        cls.plain = shutil.copy(PO_REQUEST, os.path.join(cls.dir, "po-request-plain"))
        os.chmod(cls.plain, 0o755)
        ca = shutil.copy(SRV.ca_file, os.path.join(cls.dir, "ca.pem"))
        os.chmod(ca, 0o644)
        cls.conf = harness.write_file(
            os.path.join(cls.dir, "c.conf"),
            "[p]\ntoken_url = %s\nca_file = %s\nclient_id = public-client\n"
            "client_auth = none\ngrant = password\nusername = alice\nretries = 0\n"
            % (ini_value(SRV.url("/generic/token")), ini_value(ca)), 0o644)

    def run_as_nobody(self, env, setuid=True):
        binary = self.binary if setuid else self.plain
        proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                               "--clear-groups", binary, self.conf, "p"],
                              input="alice-pass\n", capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", **env}, timeout=60)
        return Result(proc, 0)

    def test_sslkeylogfile_refused(self):
        keylog = os.path.join(self.dir, "keylog")
        r = self.run_as_nobody({"SSLKEYLOGFILE": keylog})
        self.assertOutcome(r, "config")
        self.assertIn("SSLKEYLOGFILE", r["message"])
        self.assertFalse(os.path.exists(keylog))
        self.assertEqual(SRV.stats()["total"], 0)
        self.assertOutcome(self.run_as_nobody({}), "ok")

    def test_proxy_environment_ignored(self):
        proxy = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                 "all_proxy": "http://127.0.0.1:9", "no_proxy": ""}
        self.assertOutcome(self.run_as_nobody(proxy), "ok")
        # the same without setuid honours the proxy (and fails on it)
        self.assertOutcome(self.run_as_nobody(proxy, setuid=False), "network")


class GlewlwydCore(CoreTestCase):
    """Against a real Glewlwyd: its empty 403, lowercase bearer, rotation."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import glewlwyd
        cls.g = glewlwyd.start()

    def setUp(self):
        pass  # not the test server

    def profile(self, **kw):
        g = self.g
        return {"token_url": g["GLEWLWYD_TOKEN_URL"], "ca_file": g["GLEWLWYD_CA_FILE"],
                "client_id": g["GLEWLWYD_CLIENT_ID"],
                "client_secret": g["GLEWLWYD_CLIENT_SECRET"],
                "scope": g["GLEWLWYD_SCOPE"], "grant": "password", **kw}

    def test_password_basic(self):
        r = self.run_po(self.profile(client_auth="basic"), username=self.g["GLEWLWYD_USER1"],
                        password=self.g["GLEWLWYD_PASS1"])
        self.assertOutcome(r, "ok", 200)
        self.assertEqual(r["token_type"].lower(), "bearer")
        self.assertTrue(r["has_refresh"])
        self.assertTrue(r["expires_in_known"])

    def test_password_post_special_characters(self):
        r = self.run_po(self.profile(client_auth="post"), username=self.g["GLEWLWYD_USER2"],
                        password=self.g["GLEWLWYD_PASS2"])
        self.assertOutcome(r, "ok", 200)

    def test_bad_password(self):
        for auth in ("basic", "post"):
            with self.subTest(auth=auth):
                r = self.run_po(self.profile(client_auth=auth),
                                username=self.g["GLEWLWYD_USER1"], password="wrong-password")
                self.assertOutcome(r, "invalid_grant", 403)
                self.assertNotIn("wrong-password", r.stdout + r.stderr)

    def test_bad_client_secret(self):
        # Glewlwyd: an empty 400, nothing to tell it from any bad request
        r = self.run_po(self.profile(client_secret="nope"), username=self.g["GLEWLWYD_USER1"],
                        password=self.g["GLEWLWYD_PASS1"])
        self.assertOutcome(r, "invalid_request", 400)
        self.assertNotIn("nope", r.stdout + r.stderr)

    def test_client_credentials(self):
        r = self.run_po(self.profile(grant="client_credentials"))
        self.assertOutcome(r, "ok", 200)
        self.assertFalse(r["has_refresh"])

    def test_refresh_rotation(self):
        r1 = self.run_po(self.profile(), username=self.g["GLEWLWYD_USER1"],
                         password=self.g["GLEWLWYD_PASS1"], keep_tokens=True)
        self.assertOutcome(r1, "ok")
        rt1 = r1.refresh_token
        r2 = self.run_po(self.profile(grant="refresh_token"), refresh_token=rt1,
                         keep_tokens=True)
        self.assertOutcome(r2, "ok")
        self.assertNotEqual(r2["access_token_sha256"], r1["access_token_sha256"])
        if r2["has_refresh"]:
            self.assertNotEqual(r2["refresh_token_sha256"], sha256(rt1))
        # reuse: an empty 400, taken as invalid_grant
        r3 = self.run_po(self.profile(grant="refresh_token"), refresh_token=rt1)
        self.assertOutcome(r3, "invalid_grant", 400)
        self.assertIn("taken as a rejected refresh token", r3["message"])


if __name__ == "__main__":
    unittest.main()
