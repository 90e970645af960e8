"""The session-refresh helper (issue 15): a session token pam_oauth stored
(store_token) keeps being refreshed for an unprivileged user who cannot read
the client secret.

The helper's paths are fixed at build time (the system configuration, its
own path that oauth-token runs, the rate limit's state directory), so this
module builds oauth-token and session-refresh once more, with SYSCONFDIR,
LIBEXECDIR and RUNSTATEDIR inside a per-run stage (harness.Stage: root-owned,
0755, reachable by the test user), and installs the helper there the way the
packages do: root:pam-oauth 2755, the secret root:pam-oauth 0640, the state
directory root:pam-oauth 0770.  The group pam-oauth is made (groupadd
--system) when the machine has none, and removed again.

As root, pamtester logs a useradd'ed user in with store_token; then, as the
user (uid, gid, no supplementary group), the token goes stale and is expired
at the test server, and oauth-token refreshes it through the helper.  Root
only; skipped with the reason elsewhere.
"""

import grp
import json
import os
import shutil
import stat
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import harness
import pamtest

SKIP = pamtest.skip_reason()
GROUP = "pam-oauth"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIFETIME = 8          # s: access token lifetime at the server; fresh for 3 s
MIN_INTERVAL = 30     # PO_RENEW_MIN_INTERVAL
EXIT = {"ok": 0, "usage": 1, "config": 2, "refused": 3, "login": 4,
        "limited": 5, "tempfail": 6}

_made_group = False


def setUpModule():
    global _made_group
    if SKIP:
        raise unittest.SkipTest(SKIP)
    if not pamtest.is_root():
        raise unittest.SkipTest("the session-refresh tests need root (useradd, a setgid "
                                "helper, groupadd); CI runs them as root")
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True, capture_output=True)
        _made_group = True


def tearDownModule():
    if _made_group:
        subprocess.run(["groupdel", GROUP], capture_output=True)


class Build:
    """oauth-token and session-refresh built with the stage's paths."""

    def __init__(self):
        self.stage = harness.Stage("pam-oauth-refresh-")
        s = self.stage.dir
        self.etc = os.path.join(s, "etc")
        self.libexec = os.path.join(s, "libexec")
        self.run = os.path.join(s, "run")
        self.state = os.path.join(self.run, "pam-oauth-refresh")
        self.bdir = os.path.join(harness.tmpdir(), "refresh-build")
        sanitize = os.environ.get("PO_SANITIZE", "0")
        cmd = ["make", "-C", ROOT, "-j2", "--no-print-directory", f"B={self.bdir}",
               f"SANITIZE={sanitize}", f"SYSCONFDIR={self.etc}",
               f"LIBEXECDIR={self.libexec}", f"RUNSTATEDIR={self.run}",
               f"{self.bdir}/curl_helper/oauth-token",
               f"{self.bdir}/session_refresh/session-refresh"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"building the staged helpers failed:\n{p.stdout}\n{p.stderr}")
        gid = grp.getgrnam(GROUP).gr_gid
        for d, mode, g in ((self.etc, 0o755, 0), (os.path.join(self.etc, "pam-oauth"), 0o755, 0),
                           (self.libexec, 0o755, 0),
                           (os.path.join(self.libexec, "pam-oauth"), 0o755, 0),
                           (self.run, 0o755, 0),
                           (self.state, 0o770, gid)):
            os.makedirs(d, exist_ok=True)
            os.chown(d, 0, g)
            os.chmod(d, mode)
        self.oauth_token = self.stage.add(f"{self.bdir}/curl_helper/oauth-token",
                                          "bin/oauth-token", 0o755)
        self.helper = os.path.join(self.libexec, "pam-oauth", "session-refresh")
        shutil.copyfile(f"{self.bdir}/session_refresh/session-refresh", self.helper)
        os.chown(self.helper, 0, gid)
        os.chmod(self.helper, 0o2755)
        self.conf = os.path.join(self.etc, "pam-oauth", "pam-oauth.conf")
        self.secret = os.path.join(self.etc, "pam-oauth", "client.secret")
        self.ca = self.stage.add(harness.server().ca_file, "ca.pem", 0o644)
        self.gid = gid

    def clear_state(self):
        for n in os.listdir(self.state):
            os.unlink(os.path.join(self.state, n))


class RefreshCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)
        cls.b = Build()
        cls.user = pamtest.LocalUser("po-refresh")
        cls.other = pamtest.LocalUser("po-refresh2")

    @classmethod
    def tearDownClass(cls):
        cls.user.remove()
        cls.other.remove()

    def setUp(self):
        self.srv.reset()
        self.srv.client("sess-client", secret="sess-secret", expires_in=LIFETIME)
        self.srv.user(self.user.name, "sess-pass", ["dev"])
        self.srv.user(self.other.name, "other-pass", ["dev"])
        for u in (self.user, self.other):
            shutil.rmtree(os.path.join(u.home, ".cache"), ignore_errors=True)
        self.b.clear_state()
        harness.write_file(self.b.secret, "sess-secret\n", 0o640)
        os.chown(self.b.secret, 0, self.b.gid)
        self.system_conf()

    # -- set-up ----------------------------------------------------------------

    def system_conf(self, **keys):
        p = {"token_url": self.srv.url("/generic/token"), "grant": "password",
             "client_id": "sess-client", "client_secret_file": self.b.secret,
             "ca_file": self.b.ca, "timeout": "10s", "retries": 0, "store_token": True}
        p.update(keys)
        lines = ["[default]"] + [f"{k} = {'yes' if v is True else 'no' if v is False else v}"
                                 for k, v in p.items() if v is not None]
        harness.write_file(self.b.conf, "\n".join(lines) + "\n", 0o644)

    def login(self, user=None, password="sess-pass"):
        user = user or self.user
        svc = self.env.oauth_service(f"refresh-{self.id().rsplit('.', 1)[-1]}"[:60],
                                     f"config={self.b.conf} fail_delay=0 debug")
        r = self.env.run(svc, user.name, ["authenticate", "acct_mgmt", "setcred",
                                          "open_session"], password=password)
        self.assertTrue(r.ok, r)
        return self.entry(user)

    def cache_file(self, user=None):
        return os.path.join((user or self.user).home, ".cache", "pam-oauth", "default.json")

    def entry(self, user=None):
        with open(self.cache_file(user)) as f:
            return json.load(f)

    def user_env(self, user=None, **extra):
        env = {"PATH": "/usr/bin:/bin", "HOME": (user or self.user).home, "LC_ALL": "C"}
        env.update(extra)
        return env

    def go_stale(self, e):
        """Wait until e's token is no longer fresh (auto margin: 5 s), and
        expire it at the server too."""
        self.srv.expire(token=e["access_token"])
        delay = e["expires_at"] - 5 - time.time() + 0.3
        if delay > 0:
            time.sleep(delay)

    def oauth_token(self, user=None, env=None, args=("-p", "default")):
        return (user or self.user).run([self.b.oauth_token] + list(args),
                                       env or self.user_env(user), timeout=60)

    def helper(self, user=None, env=None, argv=None):
        argv = argv if argv is not None else [self.b.helper, "default"]
        return (user or self.user).run(argv, env if env is not None else {}, timeout=60)

    def accepted(self, token):
        req = urllib.request.Request(self.srv.url("/api/resource"),
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=self.srv.ssl_context(), timeout=10) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False

    def refresh_grants(self):
        return sum(1 for r in self.srv.stats()["last_requests"]
                   if "grant_type=refresh_token" in (r.get("body") or ""))


class TestRefreshThroughHelper(RefreshCase):

    def test_session_outlives_first_lifetime(self):
        """The token pam_oauth stored goes stale and is expired at the
        server; the user's oauth-token, which cannot read the secret, gets a
        fresh one through the helper; the rotated refresh token is saved."""
        e1 = self.login()
        self.assertEqual(e1.get("stored_by"), "pam_oauth")
        self.assertTrue(e1["refresh_token"])
        # the user cannot read the secret
        p = self.user.run(["cat", self.b.secret], self.user_env())
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"Permission denied", p.stderr)
        self.go_stale(e1)
        self.assertFalse(self.accepted(e1["access_token"]))
        p = self.oauth_token()
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        token = p.stdout.decode().strip()
        self.assertNotEqual(token, e1["access_token"])
        self.assertTrue(self.accepted(token))
        e2 = self.entry()
        self.assertEqual(e2["access_token"], token)
        self.assertTrue(e2["refresh_token"])
        self.assertNotEqual(e2["refresh_token"], e1["refresh_token"])   # rotated, saved
        self.assertEqual(e2.get("stored_by"), "pam_oauth")
        self.assertEqual(e2["username"], self.user.name)
        st = os.lstat(self.cache_file())
        self.assertEqual((st.st_uid, st.st_gid), (self.user.uid, self.user.gid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(self.refresh_grants(), 1)
        # the rate limit's state is the group's, out of the user's reach
        names = os.listdir(self.b.state)
        self.assertEqual(names, [f"{self.user.uid}.default"])
        p = self.user.run(["ls", self.b.state], self.user_env())
        self.assertNotEqual(p.returncode, 0)
        # a fresh token: served from the cache, nothing run, no request
        before = self.srv.stats()["total"]
        p = self.oauth_token()
        self.assertEqual((p.returncode, p.stdout.decode().strip()), (0, token))
        self.assertEqual(self.srv.stats()["total"], before)

    def test_second_refresh_within_rate_limit(self):
        e1 = self.login()
        self.go_stale(e1)
        self.assertEqual(self.helper().returncode, EXIT["ok"])
        e2 = self.entry()
        self.assertNotEqual(e2["access_token"], e1["access_token"])
        self.go_stale(e2)
        p = self.helper()
        self.assertEqual(p.returncode, EXIT["limited"])
        self.assertEqual(self.entry()["access_token"], e2["access_token"])
        self.assertEqual(self.refresh_grants(), 1)
        p = self.oauth_token()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"less than {MIN_INTERVAL} s ago", p.stderr.decode())

    def test_fresh_token_needs_no_request(self):
        self.login()
        before = self.srv.stats()["total"]
        self.assertEqual(self.helper().returncode, EXIT["ok"])
        self.assertEqual(self.srv.stats()["total"], before)
        self.assertEqual(os.listdir(self.b.state), [f"{self.user.uid}.default"])

    def test_hostile_environment_ignored(self):
        """PAM_OAUTH_CONFIG, a proxy, another cache directory, LD_PRELOAD:
        the helper reads the fixed system file, connects directly and
        writes the caller's own entry."""
        e1 = self.login()
        evil = harness.write_file(os.path.join(self.user.home, "evil.conf"),
                                  "[default]\ntoken_url = https://127.0.0.1:1/token\n"
                                  "client_id = sess-client\nclient_auth = none\n", 0o644)
        os.chown(evil, self.user.uid, self.user.gid)
        other_dir = os.path.join(self.user.home, "elsewhere")
        self.go_stale(e1)
        env = {"PAM_OAUTH_CONFIG": evil, "https_proxy": "http://127.0.0.1:1",
               "HTTPS_PROXY": "http://127.0.0.1:1", "ALL_PROXY": "http://127.0.0.1:1",
               "OAUTH_TOKEN_CACHE_DIR": other_dir, "XDG_RUNTIME_DIR": other_dir,
               "HOME": other_dir, "LD_PRELOAD": "/nonexistent/evil.so",
               "CURL_CA_BUNDLE": "/dev/null", "LC_ALL": "C"}
        p = self.helper(env=env)
        self.assertEqual(p.returncode, EXIT["ok"], p.stderr)
        self.assertEqual((p.stdout, p.stderr), (b"", b""))     # prints nothing
        self.assertNotEqual(self.entry()["access_token"], e1["access_token"])
        self.assertFalse(os.path.exists(other_dir))

    def test_refresh_token_gone_log_in_again(self):
        e1 = self.login()
        self.go_stale(e1)
        self.srv.revoke(token=e1["refresh_token"])
        p = self.oauth_token()
        self.assertNotEqual(p.returncode, 0)
        lines = p.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("log in again", lines[0])
        self.assertIsNone(self.entry()["refresh_token"])   # never sent again
        # and with none left: the same line, no request
        self.b.clear_state()
        before = self.refresh_grants()
        p = self.oauth_token()
        self.assertIn("log in again", p.stderr.decode())
        self.assertEqual(self.refresh_grants(), before)


class TestHelperRefuses(RefreshCase):

    def refused(self, code=EXIT["refused"]):
        before = self.srv.stats()["total"]
        p = self.helper()
        self.assertEqual(p.returncode, code, p)
        self.assertEqual((p.stdout, p.stderr), (b"", b""))
        self.assertEqual(self.srv.stats()["total"], before, "a request was made")
        return p

    def test_another_users_cache(self):
        """An entry file owned by someone else, and a link to another user's
        entry, are refused."""
        e1 = self.login()
        self.go_stale(e1)
        os.chown(self.cache_file(), self.other.uid, self.other.gid)
        self.refused()
        os.chown(self.cache_file(), self.user.uid, self.user.gid)
        self.login(self.other, "other-pass")
        os.unlink(self.cache_file())
        os.symlink(self.cache_file(self.other), self.cache_file())
        self.refused()

    def test_entry_not_from_pam_oauth(self):
        e1 = self.login()
        self.go_stale(e1)
        del e1["stored_by"]
        path = self.cache_file()
        with open(path, "w") as f:
            json.dump(e1, f)
        self.refused()
        # oauth-token says why instead of using the secret it cannot read
        p = self.oauth_token()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("client_secret_file", p.stderr.decode())

    def test_symlinked_cache(self):
        e1 = self.login()
        self.go_stale(e1)
        path = self.cache_file()
        real = path + ".real"
        os.rename(path, real)
        os.symlink(real, path)
        os.lchown(path, self.user.uid, self.user.gid)
        self.refused()

    def test_entry_of_another_idp_user(self):
        """The marker is the user's to forge: the IdP user must be the one
        pam_oauth logs this user in as."""
        e1 = self.login()
        self.go_stale(e1)
        e1["username"] = self.other.name
        with open(self.cache_file(), "w") as f:
            json.dump(e1, f)
        self.refused()

    def test_profile_without_store_token(self):
        e1 = self.login()
        self.go_stale(e1)
        self.system_conf(store_token=False)
        self.refused(EXIT["config"])

    def test_arguments(self):
        for argv in ([self.b.helper], [self.b.helper, "default", "x"],
                     [self.b.helper, "../etc"], [self.b.helper, ""]):
            p = self.helper(argv=argv)
            self.assertEqual(p.returncode, EXIT["usage"], argv)
            self.assertEqual((p.stdout, p.stderr), (b"", b""))

    def test_no_entry(self):
        self.refused()


class TestPublicClientAndCheckConfig(RefreshCase):

    def test_public_client_refreshes_itself(self):
        """client_auth = none (the IdP allows the password grant for a public
        client): no secret anywhere, oauth-token refreshes the session token
        itself, the helper is not involved."""
        self.srv.client("public-client", expires_in=LIFETIME)
        self.system_conf(client_id="public-client", client_auth="none",
                         client_secret_file=None)
        e1 = self.login()
        self.go_stale(e1)
        p = self.oauth_token()
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        token = p.stdout.decode().strip()
        self.assertTrue(self.accepted(token))
        self.assertNotEqual(self.entry()["refresh_token"], e1["refresh_token"])
        self.assertEqual(os.listdir(self.b.state), [])   # the helper did not run

    def test_check_config_session_only_profile(self):
        """A user's profile without a secret is not an error: check-config
        says it serves the session cache."""
        conf = harness.write_file(os.path.join(self.user.home, "user.conf"),
                                  f"[default]\ntoken_url = {self.srv.url('/generic/token')}\n"
                                  "client_id = sess-client\n", 0o600)
        os.chown(conf, self.user.uid, self.user.gid)
        p = self.oauth_token(args=("-c", conf, "check-config"))
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = p.stdout.decode()
        self.assertIn("no client secret: it serves only the session token", out)
        self.assertIn(self.b.helper, out)


class TestSshdSessionOutlivesToken(RefreshCase):
    """A real sshd login (UsePAM, store_token): inside the session, after
    the token's lifetime, oauth-token still prints a token the server
    accepts, refreshed through the helper."""

    @classmethod
    def setUpClass(cls):
        import sshdtest
        why = sshdtest.skip_reason(tools=[("sshpass", "sshpass")])
        if why:
            raise unittest.SkipTest(why)
        super().setUpClass()
        mod = pamtest.module()
        args = f"config={cls.b.conf} fail_delay=0 debug"
        cls.env.service("sshd", [
            ("auth", "[success=done authinfo_unavail=ignore default=die]", mod, args),
            ("auth", "requisite", "pam_deny.so", ""),
            ("account", "required", mod, args),
            ("session", "required", mod, args),
        ])
        cls.sshd = sshdtest.Sshd(cls.env, ["PasswordAuthentication yes",
                                          "KbdInteractiveAuthentication no"],
                                 allow_users=[cls.user.name])
        try:
            cls.sshd.start()
        except Exception:
            cls.sshd.stop()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()
        super().tearDownClass()

    def test_token_valid_after_its_lifetime(self):
        wait = LIFETIME + 1
        command = f"sleep {wait}; {self.b.oauth_token} -p default"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSHPASS": "sess-pass",
               "HOME": self.env.dir, "LC_ALL": "C"}
        argv = ["sshpass", "-e", "ssh", "-F", "/dev/null", "-p", str(self.sshd.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR", f"{self.user.name}@127.0.0.1", command]
        for _ in range(3):
            p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=120)
            if not (p.returncode == 255 and b"kex_exchange_identification" in p.stderr):
                break
            time.sleep(0.2)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertEqual(p.returncode, 0, f"{out}\n{err}\n--- sshd log\n{self.sshd.read_log()}")
        second = out.strip()
        self.assertTrue(self.accepted(second))
        by_grant = self.srv.stats()["by_grant"]
        # the login's password grant, then one refresh (by the helper)
        self.assertEqual((by_grant.get("password", 0), by_grant.get("refresh_token", 0)),
                         (1, 1), by_grant)
        self.assertEqual(os.listdir(self.b.state), [f"{self.user.uid}.default"])
        e = self.entry()
        self.assertEqual((e["access_token"], e.get("stored_by")), (second, "pam_oauth"))
