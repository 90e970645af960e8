"""Tests of the test authorization server itself (tests/authserver/authserver.py).

    cd tests/integration && python3 -m unittest test_authserver -v
"""

import base64
import concurrent.futures
import json
import os
import subprocess
import time
import unittest
import unittest.mock
import urllib.error
import urllib.parse
import urllib.request

import harness

SRV = harness.server()
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=SRV.ssl_context()))
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def request(path, data=None, headers=None, method=None):
    """(status, headers, JSON body or raw bytes) of a request to the server."""
    if isinstance(data, dict):
        data = urllib.parse.urlencode(data).encode()
        headers = {**FORM, **(headers or {})}
    req = urllib.request.Request(SRV.url(path), data=data, headers=headers or {},
                                 method=method or ("GET" if data is None else "POST"))
    try:
        with OPENER.open(req, timeout=10) as response:
            status, hdrs, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, hdrs, body = e.code, e.headers, e.read()
    try:
        return status, hdrs, json.loads(body)
    except ValueError:
        return status, hdrs, body


def basic(client_id, secret):
    """RFC 6749 2.3.1 client credentials: form-encode, then base64."""
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def generic(params, client=("test-client", "test-secret")):
    return request("/generic/token", params, basic(*client) if client else None)


def password_token(user="alice", client=("test-client", "test-secret")):
    status, _, body = generic({"grant_type": "password", "username": user,
                               "password": harness.USERS[user]}, client)
    assert status == 200, body
    return body


def json_post(path, obj):
    return request(path, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def fluent(**params):
    """Fluent: every parameter in the query string of a POST with no body."""
    return request("/fluent/oauth/token?" + urllib.parse.urlencode(params), b"")


def curl(*args, url=None, path="/generic/token"):
    """Run the curl CLI against the server, trusting the test CA."""
    return subprocess.run(["curl", "-sS", "--noproxy", "*", "--cacert", SRV.ca_file,
                           *args, url or SRV.url(path)], capture_output=True, timeout=20)


CURL_CC = ("-u", "test-client:test-secret", "-d", "grant_type=client_credentials")


class ServerTest(unittest.TestCase):
    def setUp(self):
        SRV.reset()

    def assertError(self, response, status, error):
        self.assertEqual(response[0], status, response[2])
        self.assertEqual(response[2]["error"], error, response[2])

    def assertResourceOK(self, access_token):
        status, _, body = request("/api/resource",
                                  headers={"Authorization": "Bearer " + access_token})
        self.assertEqual(status, 200, body)
        return body


class GenericTokenTest(ServerTest):
    def test_client_credentials_every_body_style(self):
        params = {"grant_type": "client_credentials", "client_id": "test-client",
                  "client_secret": "test-secret", "scope": "read write"}
        styles = {
            "basic": lambda: generic({"grant_type": "client_credentials", "scope": "read write"}),
            "form": lambda: generic(params, None),
            "json": lambda: json_post("/generic/token", params),
            "query": lambda: request("/generic/token?" + urllib.parse.urlencode(params), b""),
        }
        for style, call in styles.items():
            with self.subTest(style=style):
                status, headers, body = call()
                self.assertEqual(status, 200, body)
                self.assertEqual(body["token_type"], "Bearer")
                self.assertEqual(body["expires_in"], 3600)
                self.assertEqual(body["scope"], "read write")
                self.assertNotIn("refresh_token", body)
                self.assertEqual(headers["Cache-Control"], "no-store")
                self.assertEqual(self.assertResourceOK(body["access_token"])["client"],
                                 "test-client")

    def test_password_grant_for_every_user(self):
        for user, password in harness.USERS.items():
            for encode in ("form", "json"):
                with self.subTest(user=user, encode=encode):
                    params = {"grant_type": "password", "username": user, "password": password,
                              "client_id": "test-client", "client_secret": "test-secret"}
                    if encode == "form":
                        status, _, body = generic(params, None)
                    else:
                        status, _, body = json_post("/generic/token", params)
                    self.assertEqual(status, 200, body)
                    self.assertTrue(body["refresh_token"])
                    self.assertEqual(self.assertResourceOK(body["access_token"])["user"], user)

    def test_basic_credentials_are_form_decoded(self):
        special = (harness.SPECIAL_CLIENT_ID, harness.SPECIAL_CLIENT_SECRET)
        status, _, body = generic({"grant_type": "client_credentials"}, special)
        self.assertEqual(status, 200, body)
        # Without RFC 6749 2.3.1 encoding the first ':' splits the id.
        raw = "Basic " + base64.b64encode(":".join(special).encode()).decode()
        response = request("/generic/token", {"grant_type": "client_credentials"},
                           {"Authorization": raw})
        self.assertError(response, 401, "invalid_client")
        self.assertEqual(response[1]["WWW-Authenticate"], 'Basic realm="test"')
        # In the body, ordinary form encoding carries them.
        status, _, body = generic({"grant_type": "client_credentials", "client_id": special[0],
                                   "client_secret": special[1]}, None)
        self.assertEqual(status, 200, body)

    def test_client_authentication_errors(self):
        cc = {"grant_type": "client_credentials"}
        self.assertError(generic(cc, ("test-client", "wrong")), 401, "invalid_client")
        self.assertError(generic(cc, ("nobody", "x")), 401, "invalid_client")
        self.assertError(generic(cc, None), 401, "invalid_client")
        both = {**cc, "client_secret": "test-secret"}
        self.assertError(generic(both), 400, "invalid_request")
        wrong_body_secret = generic({**cc, "client_id": "test-client", "client_secret": "x"},
                                    None)
        self.assertError(wrong_body_secret, 401, "invalid_client")
        self.assertNotIn("WWW-Authenticate", wrong_body_secret[1])
        SRV.client("test-client", auth_methods=["client_secret_basic"])
        self.assertError(generic({**cc, "client_id": "test-client",
                                  "client_secret": "test-secret"}, None), 401, "invalid_client")

    def test_request_errors(self):
        self.assertError(generic({"grant_type": "implicit"}), 400, "unsupported_grant_type")
        self.assertError(generic({"scope": "x"}), 400, "invalid_request")
        self.assertError(generic({"grant_type": "password", "username": "alice",
                                  "password": "wrong"}), 400, "invalid_grant")
        self.assertError(generic({"grant_type": "password", "username": "alice"}),
                         400, "invalid_request")
        repeated = b"grant_type=client_credentials&grant_type=client_credentials"
        self.assertError(request("/generic/token", repeated,
                                 {**FORM, **basic("test-client", "test-secret")}),
                         400, "invalid_request")
        self.assertError(generic({"grant_type": "client_credentials", "scope": 'a"b'}),
                         400, "invalid_scope")
        self.assertEqual(request("/generic/token", b"x", {"Content-Type": "text/plain"})[0], 415)
        self.assertEqual(request("/generic/token")[0], 405)

    def test_public_client(self):
        status, _, body = generic({"grant_type": "password", "username": "bob",
                                   "password": harness.USERS["bob"],
                                   "client_id": "public-client"}, None)
        self.assertEqual(status, 200, body)
        self.assertIsNone(harness.CLIENTS["public-client"])
        self.assertError(generic({"grant_type": "client_credentials",
                                  "client_id": "public-client"}, None),
                         400, "unauthorized_client")

    def test_refresh_rotation_and_replay(self):
        first = password_token()["refresh_token"]
        refresh = {"grant_type": "refresh_token", "refresh_token": first}
        status, _, body = generic(refresh)
        self.assertEqual(status, 200, body)
        second = body["refresh_token"]
        self.assertNotEqual(second, first)
        self.assertResourceOK(body["access_token"])
        # Replaying the used token fails and, like Glewlwyd, revokes its successor.
        self.assertError(generic(refresh), 400, "invalid_grant")
        self.assertError(generic({"grant_type": "refresh_token", "refresh_token": second}),
                         400, "invalid_grant")
        # A refresh token only serves the client it was issued to.
        other = password_token(client=(harness.SPECIAL_CLIENT_ID,
                                       harness.SPECIAL_CLIENT_SECRET))["refresh_token"]
        self.assertError(generic({"grant_type": "refresh_token", "refresh_token": other}),
                         400, "invalid_grant")

    def test_refresh_scope_may_shrink_only(self):
        self.assertNotIn("scope", password_token())
        status, _, first = generic({"grant_type": "password", "username": "alice",
                                    "password": "alice-pass", "scope": "a b"})
        self.assertEqual((status, first.get("scope")), (200, "a b"), first)
        grow = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                "scope": "a b c"}
        self.assertError(generic(grow), 400, "invalid_scope")
        status, _, body = generic({**grow, "scope": "a"})
        self.assertEqual((status, body.get("scope")), (200, "a"), body)

    def test_reusable_refresh_tokens(self):
        SRV.client("test-client", single_use_refresh=False)
        refresh = {"grant_type": "refresh_token",
                   "refresh_token": password_token()["refresh_token"]}
        for _ in range(2):
            status, _, body = generic(refresh)
            self.assertEqual(status, 200, body)
            self.assertNotIn("refresh_token", body)

    def test_client_options(self):
        SRV.client("test-client", omit_expires_in=True, lowercase_bearer=True,
                   roles_in_response=True)
        body = password_token()
        self.assertNotIn("expires_in", body)
        self.assertEqual(body["token_type"], "bearer")
        self.assertEqual(body["roles"], ["admin", "dev"])
        SRV.client("test-client", omit_expires_in=False, expires_in=5, scopes=["x", "y"],
                   audience="https://aud.test", grants=["client_credentials"])
        status, _, body = generic({"grant_type": "client_credentials",
                                   "audience": "https://aud.test"})
        self.assertEqual((status, body.get("expires_in"), body.get("scope")), (200, 5, "x y"))
        self.assertError(generic({"grant_type": "client_credentials"}), 400, "invalid_request")
        self.assertError(generic({"grant_type": "client_credentials", "scope": "z",
                                  "audience": "https://aud.test"}), 400, "invalid_scope")
        self.assertError(generic({"grant_type": "password", "username": "alice",
                                  "password": "alice-pass"}), 400, "unauthorized_client")

    def test_new_client_and_user(self):
        SRV.client("new-client", secret="new secret", grants=["password"])
        SRV.user("dave", "dave pass", roles=["ops"])
        status, _, body = generic({"grant_type": "password", "username": "dave",
                                   "password": "dave pass"}, ("new-client", "new secret"))
        self.assertEqual(status, 200, body)
        status, _, body = fluent(grant_type="password", username="dave", password="dave pass",
                                 client_id="fluent-api", client_secret="fluent-secret")
        self.assertEqual(body["Roles"], ["ops"])
        SRV.reset()
        self.assertError(generic({"grant_type": "password", "username": "dave",
                                  "password": "dave pass"}), 400, "invalid_grant")


class VendorTest(ServerTest):
    def test_froomle(self):
        creds = {"client_id": "froomle-client", "client_secret": "froomle-secret",
                 "grant_type": "client_credentials"}
        status, _, body = json_post("/froomle/oauth/token", creds)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["token_type"], body["expires_in"]), ("Bearer", 86400))
        self.assertResourceOK(body["access_token"])
        self.assertError(request("/froomle/oauth/token", creds), 415, "invalid_request")
        self.assertError(json_post("/froomle/oauth/token", {**creds, "client_secret": "x"}),
                         401, "invalid_client")

    def test_wave(self):
        creds = {"grant_type": "client_credentials", "client_id": "wave-client",
                 "client_secret": "wave-secret", "audience": harness.WAVE_AUDIENCE}
        status, _, body = request("/wave/oauth/token", creds)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["token_type"], body["expires_in"]), ("Bearer", 86400))
        del creds["audience"]
        self.assertError(request("/wave/oauth/token", creds), 400, "invalid_request")
        self.assertError(request("/wave/oauth/token", {**creds, "audience": "https://x"}),
                         400, "invalid_request")
        self.assertEqual(json_post("/wave/oauth/token", creds)[0], 415)

    def test_bloom(self):
        creds = {"grant_type": "client_credentials", "client_id": "bloom-client",
                 "client_secret": "bloom-secret", "audience": harness.BLOOM_AUDIENCE}
        status, _, body = request("/bloom/oauth/token", creds)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["scope"], "read:consumers write:consumers")
        self.assertEqual((body["token_type"], body["expires_in"]), ("Bearer", 86400))
        status, _, body = request("/bloom/oauth/token", {**creds, "scope": "read:consumers"})
        self.assertEqual((status, body.get("scope")), (200, "read:consumers"))
        self.assertError(request("/bloom/oauth/token", {**creds, "scope": "admin"}),
                         400, "invalid_scope")

    def test_fluent_password_and_refresh(self):
        creds = {"scope": "api", "client_id": "fluent-api", "client_secret": "fluent-secret"}
        status, _, body = fluent(grant_type="password", username="alice",
                                 password="alice-pass", **creds)
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"access_token", "token_type", "refresh_token", "expires_in",
                                     "scope", "Retailer_id", "FirstName", "LastName", "Roles"})
        self.assertEqual((body["token_type"], body["expires_in"], body["scope"]),
                         ("bearer", 86386, "api"))
        self.assertEqual((body["Retailer_id"], body["Roles"]), (1, ["admin", "dev"]))
        self.assertResourceOK(body["access_token"])
        first = body["refresh_token"]
        status, _, body = fluent(grant_type="refresh_token", refresh_token=first, **creds)
        self.assertEqual(status, 200, body)
        self.assertNotEqual(body["refresh_token"], first)
        self.assertEqual(fluent(grant_type="refresh_token", refresh_token=first, **creds),
                         (400, unittest.mock.ANY, {"error": "invalid_grant",
                                                   "error_description": "Invalid refresh token"}))

    def test_fluent_errors(self):
        status, _, body = fluent(grant_type="password", username="alice", password="nope",
                                 scope="api", client_id="fluent-api", client_secret="fluent-secret")
        self.assertEqual((status, body), (400, {"errors": [{"code": "400", "message": {
            "error": "invalid_grant", "error_description": "Bad credentials"}}]}))
        in_body = {"grant_type": "password", "username": "alice", "password": "alice-pass",
                   "client_id": "fluent-api", "client_secret": "fluent-secret"}
        self.assertError(request("/fluent/oauth/token", in_body), 400, "invalid_request")
        status, _, body = fluent(grant_type="password", username="alice", password="alice-pass",
                                 client_id="fluent-api", client_secret="wrong")
        self.assertEqual((status, body), (401, {"error": "invalid_client",
                                                "error_description": "Bad client credentials"}))

    def test_fluent_integration_client(self):
        login = {"grant_type": "password", "username": "bob", "password": harness.USERS["bob"],
                 "client_id": "FLUENT_INTEGRATION", "scope": "retailer"}
        status, _, body = fluent(**login)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["Roles"], body["Retailer_id"], body["expires_in"], body["scope"]),
                         (["RETAILER"], 5, 1799, "retailer"))
        self.assertTrue(body["refresh_token"])
        status, _, body = fluent(**login, client_secret="anything")
        self.assertEqual((status, body), (401, {"error": "invalid_client",
                                                "error_description": "Bad client credentials"}))


class ResourceTest(ServerTest):
    def test_bearer_and_basic(self):
        token = password_token("carol")["access_token"]
        self.assertEqual(self.assertResourceOK(token)["user"], "carol")
        as_password = base64.b64encode(f"anyone:{token}".encode()).decode()
        for path in ("/api/resource", "/demo/resource"):
            status, _, body = request(path, b"", {"Authorization": "Basic " + as_password})
            self.assertEqual((status, body["ok"]), (200, True))
        self.assertEqual(SRV.stats()["resource_requests"], 3)

    def test_unauthorized(self):
        status, headers, _ = request("/api/resource")
        self.assertEqual((status, headers["WWW-Authenticate"]), (401, 'Bearer realm="test"'))
        token = password_token()["access_token"]
        other = password_token("bob")["access_token"]
        SRV.expire(token)
        SRV.revoke(other)
        for bad in (token, other, "unknown"):
            status, headers, _ = request("/api/resource",
                                         headers={"Authorization": "Bearer " + bad})
            self.assertEqual(status, 401)
            self.assertIn('error="invalid_token"', headers["WWW-Authenticate"])
        fresh = password_token()["access_token"]
        self.assertResourceOK(fresh)
        self.assertGreaterEqual(SRV.revoke(all=True), 3)
        self.assertEqual(request("/api/resource",
                                 headers={"Authorization": "Bearer " + fresh})[0], 401)


class FaultTest(ServerTest):
    def http_code(self, *args, path="/generic/token"):
        result = curl("-o", os.devnull, "-w", "%{http_code} %{size_download}", *args, path=path)
        code, size = result.stdout.decode().split()
        return int(code), int(size)

    def test_stall_blocks_only_its_request(self):
        SRV.fault("/generic/token", "stall", seconds=0.2)
        self.assertEqual(self.http_code(*CURL_CC), (200, unittest.mock.ANY))
        SRV.fault("/generic/token", "stall", seconds=2)
        with concurrent.futures.ThreadPoolExecutor() as pool:
            stalled = pool.submit(curl, "--max-time", "1", *CURL_CC)
            while SRV.stats()["total"] == 1:  # until the stalled request has the fault
                time.sleep(0.01)
            self.assertEqual(self.http_code(*CURL_CC), (200, unittest.mock.ANY))
            self.assertEqual(stalled.result().returncode, 28)  # curl: timeout

    def test_answered_faults(self):
        cases = [
            (("status",), {"status": 503, "body": "down"}, 503, 4),
            (("429",), {"retry_after": 7}, 429, None),
            (("garbage",), {}, 200, None),
            (("empty",), {}, 403, 0),
            (("empty",), {"status": 401}, 401, 0),
        ]
        for (kind,), kw, code, size in cases:
            with self.subTest(kind=kind, **kw):
                SRV.fault("/generic/token", kind, **kw)
                result = curl("-i", *CURL_CC)
                head, _, body = result.stdout.partition(b"\r\n\r\n")
                self.assertEqual(int(head.split()[1]), code)
                if size is not None:
                    self.assertEqual(len(body), size)
                if kind == "429":
                    self.assertIn(b"\r\nRetry-After: 7\r\n", head)
                if kind == "garbage":
                    self.assertRaises(ValueError, json.loads, body)

    def test_huge(self):
        SRV.fault("/generic/token", "huge")
        code, size = self.http_code(*CURL_CC)
        self.assertEqual(code, 200)
        self.assertGreater(size, 2 << 20)

    def test_redirect(self):
        SRV.fault("/generic/token", "redirect", location="https://127.0.0.1:1/elsewhere")
        result = curl("-D", "-", "-o", os.devnull, *CURL_CC)
        self.assertIn(b"HTTP/1.1 302", result.stdout)
        self.assertIn(b"Location: https://127.0.0.1:1/elsewhere", result.stdout)

    def test_connection_faults(self):
        for kind in ("close", "reset"):
            with self.subTest(kind=kind):
                SRV.fault("/generic/token", kind)
                result = curl(*CURL_CC)
                self.assertIn(result.returncode, (18, 52, 56), result.stderr)
        self.assertEqual(self.http_code(*CURL_CC)[0], 200)

    def test_wrong_certificate(self):
        result = curl(*CURL_CC, url=SRV.wrong_cert_url("/generic/token"))
        self.assertEqual(result.returncode, 60, result.stderr)  # peer certificate not trusted
        result = curl("--cacert", os.path.join(SRV.dir, "wrong-ca.pem"), *CURL_CC,
                      url=SRV.wrong_cert_url("/generic/token"))
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_count_order_and_path(self):
        SRV.fault("/generic/token", "status", status=500)
        SRV.fault("*", "status", count=2, status=503)
        SRV.fault("/wave/oauth/token", "status", status=502)
        codes = [self.http_code(*CURL_CC)[0] for _ in range(4)]
        self.assertEqual(codes, [500, 503, 503, 200])
        self.assertEqual(self.http_code(path="/wave/oauth/token")[0], 502)
        SRV.fault("/generic/token", "status", count=-1, status=500)
        self.assertEqual([self.http_code(*CURL_CC)[0] for _ in range(3)], [500] * 3)
        SRV.clear_faults()
        self.assertEqual(self.http_code(*CURL_CC)[0], 200)
        # Faulted requests still count.
        self.assertEqual(SRV.stats()["token_requests"]["test-client"], 8)


class GitTest(ServerTest):
    def git(self, *args, cwd=None, stdin=None, env=None):
        env = {"PATH": os.environ["PATH"], "HOME": harness.tmpdir(), "GIT_SSL_CAINFO": SRV.ca_file,
               "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
               **(env or {})}
        result = subprocess.run(["git", *args], cwd=cwd, env=env, input=stdin,
                                capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def test_clone(self):
        url = SRV.git_init("project")
        token = password_token()["access_token"]
        work = harness.tmpdir()
        self.git("-c", f"http.extraHeader=Authorization: Bearer {token}", "clone", url,
                 os.path.join(work, "bearer"))
        with open(os.path.join(work, "bearer", "README")) as f:
            self.assertEqual(f.read(), "Test repository project\n")
        # As git's credential helpers do: the token as a Basic password.
        helper = f"!f() {{ echo username=alice; echo password={token}; }}; f"
        self.git("-c", f"credential.helper={helper}", "clone", url, os.path.join(work, "basic"))
        self.assertGreaterEqual(SRV.stats()["git_requests"], 4)

    def test_push_and_gzip_fetch(self):
        url = SRV.git_init("busy")
        auth = f"http.extraHeader=Authorization: Bearer {password_token()['access_token']}"
        work = harness.tmpdir()
        mine, theirs = os.path.join(work, "mine"), os.path.join(work, "theirs")
        for clone in (mine, theirs):
            self.git("-c", auth, "clone", "-q", url, clone)
        # Many local commits, newer than the server's, make git gzip its
        # negotiation requests.
        commits = []
        for i in range(300):
            parent = "from refs/heads/main\n" if i == 0 else ""
            commits.append(f"commit refs/heads/local\ncommitter t <t@t> {1800000000 + i} +0000\n"
                           f"data 2\nc\n{parent}M 644 inline f\ndata {len(str(i))}\n{i}\n")
        self.git("fast-import", "--quiet", cwd=mine, stdin="".join(commits).encode())
        self.git("commit", "--allow-empty", "-qm", "news", cwd=theirs)
        self.git("-c", auth, "push", "-q", "origin", "HEAD:refs/heads/news", cwd=theirs)
        fetch = self.git("-c", auth, "fetch", "-q", "origin", cwd=mine,
                         env={"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"})
        self.assertIn(b"Send header: Content-Encoding: gzip", fetch.stderr)
        self.assertEqual(self.git("log", "-1", "--format=%s", "origin/news", cwd=mine).stdout,
                         b"news\n")

    def test_unauthorized(self):
        url = SRV.git_init("private")
        clone = subprocess.run(["git", "clone", url, os.path.join(harness.tmpdir(), "c")],
                               env={"PATH": os.environ["PATH"], "GIT_SSL_CAINFO": SRV.ca_file,
                                    "GIT_TERMINAL_PROMPT": "0"}, capture_output=True, timeout=30)
        self.assertNotEqual(clone.returncode, 0)
        self.assertIn(b"terminal prompts disabled", clone.stderr)  # git asked for credentials
        status, headers, _ = request("/git/private.git/info/refs?service=git-upload-pack")
        self.assertEqual((status, headers["WWW-Authenticate"]), (401, 'Basic realm="test"'))


class StatsAndLoadTest(ServerTest):
    def test_stats(self):
        password_token()
        generic({"grant_type": "client_credentials"}, ("test-client", "bad"))
        fluent(grant_type="password", username="bob", password="x", client_id="fluent-api",
               client_secret="fluent-secret")
        stats = SRV.stats()
        self.assertEqual(stats["token_requests"], {"test-client": 2, "fluent-api": 1})
        self.assertEqual(stats["by_grant"], {"password": 2, "client_credentials": 1})
        self.assertEqual((stats["total"], stats["tokens_issued"]), (3, 1))
        last = stats["last_requests"][-1]
        self.assertEqual((last["path"], last["method"], last["body"]),
                         ("/fluent/oauth/token", "POST", ""))
        self.assertIn("username=bob", last["query"])
        first = stats["last_requests"][0]
        self.assertEqual(first["content_type"], "application/x-www-form-urlencoded")
        self.assertTrue(first["headers"]["Authorization"].startswith("Basic "))
        self.assertIn("username=alice", first["body"])

    def test_parallel_clients(self):
        with concurrent.futures.ThreadPoolExecutor(100) as pool:
            results = list(pool.map(lambda _: generic({"grant_type": "client_credentials"})[0],
                                    range(200)))
        self.assertEqual(results, [200] * 200)
        self.assertEqual(SRV.stats()["tokens_issued"], 200)


if __name__ == "__main__":
    unittest.main()
