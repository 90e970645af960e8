"""Shared helpers for pam-oauth's Python integration tests.

    import harness
    srv = harness.server()      # the test authorization server, started once
    srv.url("/generic/token")   # https://127.0.0.1:PORT/generic/token
    srv.ca_file                 # CA that signed its certificate

The server is tests/authserver/authserver.py (see its docstring for every
endpoint).  It runs in a temporary directory, is stopped at exit, and stops by
itself if this process dies (it watches its standard input).
"""

import atexit
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

# A test that presses Ctrl-C (SIGINT to the helper, the module's host)
# needs the programs it starts to see SIGINT and SIGQUIT as a terminal
# delivers them.  A suite started in the background of a non-interactive
# shell (`make check &`, nohup, some CI runners) inherits both ignored, and
# exec keeps an ignored signal ignored: the programs then rightly keep
# ignoring it, as a background job should.  Give them the default back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "authserver"))
import authserver  # noqa: E402  (the single source of the default accounts)

# username -> password of the server's default users.  bob's and carol's
# passwords hold the characters that break naive encoding: carol's is
# 'p &=+%"\'\\ü€😀;#?/' (space & = + % " ' backslash, non-ASCII, emoji, ; # ? /).
USERS = {name: user["password"] for name, user in authserver.DEFAULT_USERS.items()}
# client_id -> secret (None for a public client) of the default clients.
CLIENTS = {cid: opts.get("secret") for cid, opts in authserver.DEFAULT_CLIENTS.items()}
# The client whose id and secret need RFC 6749 2.3.1 encoding in Basic auth.
SPECIAL_CLIENT_ID = "c li:ent&="
SPECIAL_CLIENT_SECRET = CLIENTS[SPECIAL_CLIENT_ID]
WAVE_AUDIENCE = authserver.WAVE_AUDIENCE
BLOOM_AUDIENCE = authserver.BLOOM_AUDIENCE
BLOOM_SCOPE = authserver.BLOOM_SCOPE

STARTUP_TIMEOUT = 20


def build_dir():
    """Where the built binaries are (curl_helper/oauth-token, pam_oauth/pam_oauth.so)."""
    return os.environ.get("PO_BUILD_DIR") or REPO_ROOT


def tmpdir():
    """A fresh private directory, removed at exit unless PO_KEEP_TMP=1."""
    path = tempfile.mkdtemp(prefix="pam-oauth-test-")
    os.chmod(path, 0o700)
    if os.environ.get("PO_KEEP_TMP") != "1":
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def unreachable_reason(path):
    """Why another user cannot reach path (a directory on its way has no
    search permission for others), or None."""
    path = os.path.realpath(path)
    while True:
        st = os.stat(path)
        if not st.st_mode & 0o001:
            return f"{path} (mode {st.st_mode & 0o7777:04o}) is not searchable by other users"
        if path == "/":
            return None
        path = os.path.dirname(path)


class Stage:
    """The one rule for a test that runs something as another user, in
    another mount namespace or under sshd (issue 18): what that process
    needs (binaries, the module, configuration, CA files) is copied into a
    per-run directory it can reach, 0755 and owned by the test's user
    (root), under the test's own temporary directory; only the copies are
    made world-readable, never the checkout or anyone's own directory.

        stage = harness.Stage()
        helper = stage.add(path_to_oauth_token)          # 0755 copy
        ca = stage.add(srv.ca_file)                      # 0644 copy

    When the temporary directory itself cannot be reached by other users
    (TMPDIR inside a 0700 directory), it raises AssertionError saying what
    to change: a test that cannot stage fails, it does not skip."""

    def __init__(self, prefix="pam-oauth-stage-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)
        if os.environ.get("PO_KEEP_TMP") != "1":
            atexit.register(shutil.rmtree, self.dir, ignore_errors=True)
        why = unreachable_reason(self.dir)
        if why:
            raise AssertionError(
                f"cannot stage files for another user in {self.dir}: {why}. Run the "
                f"tests with TMPDIR set to a directory every user may traverse "
                f"(/tmp is), or make {os.path.dirname(self.dir)} searchable (chmod o+x)")

    def add(self, src, name=None, mode=None):
        """Copy src into the stage (as name); executables 0755, other files
        0644 unless mode says otherwise.  Returns the copy's path."""
        dst = os.path.join(self.dir, name or os.path.basename(src))
        os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
        shutil.copyfile(src, dst)
        if mode is None:
            mode = 0o755 if os.access(src, os.X_OK) else 0o644
        os.chmod(dst, mode)
        return dst

    def path(self, name):
        return os.path.join(self.dir, name)


_stage = None


def stage():
    """This process's Stage, made on first use."""
    global _stage
    if _stage is None:
        _stage = Stage()
    return _stage


def staged_helper():
    """oauth-token, staged where any user can run it (see Stage)."""
    built = os.path.join(build_dir(), "curl_helper", "oauth-token")
    if not os.access(built, os.X_OK):
        return built
    st = stage()
    copy = st.path("bin/oauth-token")
    if not os.path.exists(copy):
        st.add(built, "bin/oauth-token", 0o755)
    return copy


def write_file(path, text, mode=0o600):
    """Write text (str or bytes) to path with the given mode; returns path."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


class AuthServer:
    """A running authserver.py and its admin API."""

    def __init__(self, directory, info, process):
        self.dir = directory
        self.process = process
        self.pid = info["pid"]
        self.port = info["port"]
        self.wrong_cert_port = info["wrong_cert_port"]
        self.ca_file = info["ca_file"]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self.ssl_context()))

    def url(self, path):
        return self.base_url + path

    def wrong_cert_url(self, path):
        """The same server behind a certificate from an unrelated CA."""
        return f"https://127.0.0.1:{self.wrong_cert_port}{path}"

    def ssl_context(self):
        """A client context trusting only the test CA."""
        return ssl.create_default_context(cafile=self.ca_file)

    def admin(self, action, payload=None):
        """Call /_admin/<action> (POST with a JSON payload, GET without)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url("/_admin/" + action), data=data,
                                         headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=10) as response:
            return json.load(response)

    def reset(self):
        """Default users and clients; no tokens, faults or statistics."""
        self.admin("reset", {})

    def stats(self):
        """{"token_requests": {client_id: n}, "by_grant": {grant: n},
        "by_path": {path: n}, "total", "tokens_issued", "resource_requests",
        "git_requests", "last_requests": [{"path", "method", "query",
        "content_type", "headers", "body"}, ...] (the last 50), "git_log":
        [{"host": the Host header, "path", "authorization": bool}, ...]}."""
        return self.admin("stats")

    def fault(self, path, kind, count=1, **kw):
        """Queue a fault for path ("*": any non-admin path) for count requests
        (-1: until cleared).  kind and its keywords: stall (seconds=30),
        status (status=500, body), 429 (retry_after=1), garbage (body),
        huge (size=3 MiB), empty (status=403), redirect (location, status=302),
        close, reset; any kind but stall, close and reset takes headers={}."""
        self.admin("fault", {"path": path, "kind": kind, "count": count, **kw})

    def clear_faults(self):
        self.admin("clear-faults", {})

    def revoke(self, token=None, all=False):
        """Revoke one access or refresh token, or all access tokens."""
        return self.admin("revoke", {"token": token, "all": all})["count"]

    def expire(self, token=None, all=False):
        """Make one or all access tokens expired."""
        return self.admin("expire", {"token": token, "all": all})["count"]

    def client(self, client_id, **opts):
        """Create or update a client; options are authserver.CLIENT_DEFAULTS'
        keys: secret, grants, auth_methods, expires_in, omit_expires_in,
        lowercase_bearer, single_use_refresh, roles_in_response, audience,
        scopes, fixed_roles, retailer_id."""
        self.admin("client", {"client_id": client_id, **opts})

    def user(self, username, password, roles=None):
        """Create a user or change its password (and roles, when given)."""
        self.admin("user", {"username": username, "password": password, "roles": roles})

    def tokens(self, client_id=None):
        """{"access": [...], "refresh": [...]}: the tokens issued (to
        client_id, when given)."""
        return self.admin("tokens", {"client_id": client_id})

    # the device grant (RFC 8628)

    def device(self, **opts):
        """How the device endpoints answer (authserver.DEVICE_DEFAULTS):
        expires_in, interval (None: not sent), complete (send
        verification_uri_complete), slow_down=N (the next N polls),
        min_gap (seconds polls must be apart), response (a raw answer)."""
        return self.admin("device", opts)["options"]

    def device_approve(self, user_code, username):
        """The user approves user_code at the identity provider, as username."""
        return self.admin("device", {"approve": user_code, "username": username})

    def device_deny(self, user_code):
        return self.admin("device", {"deny": user_code})

    def device_expire(self, user_code):
        return self.admin("device", {"expire": user_code})

    def devices(self):
        """[{"user_code", "client_id", "state", "username", "polls",
        "slow_downs", "interval", "scope", "expires_in"}, ...]"""
        return self.admin("device", {"list": True})["devices"]

    def git_init(self, name, submodules=None):
        """Create a bare repository with one commit; returns its clone URL.
        submodules {path: {"url", "commit"}}: a .gitmodules and gitlinks."""
        return self.admin("git-init", {"name": name, "submodules": submodules})["url"]

    def git_commit(self, name):
        """The commit of an existing repository's main branch."""
        return self.admin("git-init", {"name": name})["commit"]

    # the JWT issuer (tests/authserver/jwt_issuer.py)

    @property
    def jwt_issuer(self):
        """The issuer URL of the JWT endpoints: BASE/jwt."""
        return self.url("/jwt")

    def jwt(self, **opts):
        """Configure the JWT issuer: alg (RS256 ... EdDSA), rotate=True (new
        kid), forge=KIND with count=N (the next N tokens forged, see
        jwt_issuer.FORGERIES), max_age (JWKS Cache-Control), audience,
        scope_claim (the access token's scope claim instead of the granted one),
        reset=True, device=False (discovery without the device endpoint).
        Returns {"ok", "alg", "kid"} (kid: the current key)."""
        return self.admin("jwt", opts)

    def jwt_stats(self):
        """{"jwks_fetches", "discovery_fetches", "tokens", "introspections",
        "alg", "kids", "current_kid"}."""
        return self.admin("jwt-stats", {})

    def jwt_token(self, username, password, client_id="test-client", scope=None):
        """A password-grant response from /jwt/token (as a dict)."""
        form = {"grant_type": "password", "username": username, "password": password}
        if scope:
            form["scope"] = scope
        secret = CLIENTS[client_id]
        request = urllib.request.Request(
            self.url("/jwt/token"), data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Authorization": "Basic " + base64.b64encode(
                         f"{client_id}:{secret}".encode()).decode()})
        with self._opener.open(request, timeout=10) as response:
            return json.load(response)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_server = None


def server():
    """The authorization server of this process, started on first use."""
    global _server
    if _server is None:
        directory = tmpdir()
        with open(os.path.join(directory, "stderr.log"), "wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, os.path.join(REPO_ROOT, "tests", "authserver", "authserver.py"),
                 "--dir", directory, "--watch-stdin"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr)
        info_path = os.path.join(directory, "server.json")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not os.path.exists(info_path):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                with open(os.path.join(directory, "stderr.log")) as f:
                    raise RuntimeError("authserver did not start:\n" + f.read())
            time.sleep(0.01)
        with open(info_path) as f:
            _server = AuthServer(directory, json.load(f), process)
        atexit.register(_server.stop)
    return _server
