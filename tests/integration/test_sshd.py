"""A real login: OpenSSH's sshd with UsePAM, pam_oauth.so and the token
handed to the session, where oauth-token prints it.

sshd runs from its own sshd_config, host key and PID file in a temporary
directory, on a free port of 127.0.0.1, with libpam-wrapper preloaded so
that its PAM service file comes from a temporary directory: nothing under
/etc is touched (tests/integration/sshdtest.py).  A local user made
with useradd logs in with its identity provider password through sshpass;
inside the session `oauth-token` must print the token pam_oauth obtained at
login, without a new request, and the test authorization server must accept
that token.

Root only (sshd, useradd); skipped with the reason elsewhere.  Everything is
undone at the end: sshd killed by its PID, the user deleted.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.request

import harness
import pamtest
import sshdtest

USER = "po-sshtest"
PASSWORD = "ssh p@ss+w0rd&=%"


SKIP = sshdtest.skip_reason(tools=[("sshpass", "sshpass")])


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)


class TestSshdLogin(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)
        cls.dir = cls.env.dir
        cls.user = pamtest.LocalUser(USER)
        cls.server = None
        try:
            cls._start()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls):
        d = cls.dir
        # oauth-token, staged where the user's session can run it (the
        # checkout may be in a private directory: harness.Stage).
        helper = harness.staged_helper()
        cls.helper = helper if os.access(helper, os.X_OK) else None
        # The configuration: readable by the user (oauth-token reads it in
        # the session), the client secret in a root-only file.
        secret = harness.write_file(os.path.join(d, "client.secret"), "test-secret\n", 0o600)
        cls.keys = {
            "token_url": cls.srv.url("/generic/token"),
            "grant": "password",
            "client_id": "test-client",
            "client_secret_file": secret,
            "ca_file": harness.stage().add(cls.srv.ca_file, "ca.pem", 0o644),
            "store_token": True,
            "timeout": "10s",
            # offline login (test_offline_login); root's directory, 0700
            "offline_login": True,
            "offline_dir": os.path.join(d, "offline"),
            "retries": 0,
        }
        cls.conf = cls.write_conf()
        mod = pamtest.module()
        # fail_delay=0: libpam's delay varies by half its length either
        # way, which would hide the timing the no-oracle test compares.
        args = f"config={cls.conf} fail_delay=0 debug"
        cls.env.service("sshd", [
            ("auth", "[success=done authinfo_unavail=ignore default=die]", mod, args),
            ("auth", "requisite", "pam_deny.so", ""),
            ("account", "required", mod, args),
            ("session", "required", mod, args),
            # what common-session's pam_unix is in a real stack: after an
            # offline login pam_oauth has no token for the session (PAM_IGNORE)
            ("session", "required", "pam_permit.so", ""),
        ])
        cls.server = sshdtest.Sshd(cls.env, [
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication yes",
            "MaxStartups 100",
        ], allow_users=[USER])
        cls.server.start()
        cls.port = cls.server.port

    @classmethod
    def write_conf(cls, **extra):
        return cls.env.config(dict(cls.keys, **extra), name="pam-oauth.conf", mode=0o644)

    @classmethod
    def read_log(cls):
        return cls.server.read_log()

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
        cls.user.remove()

    def setUp(self):
        self.srv.reset()
        self.srv.user(USER, PASSWORD, ["dev"])
        shutil.rmtree(os.path.join(self.user.home, ".cache"), ignore_errors=True)

    def ssh(self, password, command):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSHPASS": password,
               "HOME": self.dir, "LC_ALL": "C"}
        argv = ["sshpass", "-e", "ssh", "-F", "/dev/null", "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR", f"{USER}@127.0.0.1", command]
        return self.run_ssh(argv, env)

    @staticmethod
    def run_ssh(argv, env):
        """Run ssh; a connection reset before the key exchange is the
        harness (pam_wrapper's start-up in sshd's new process races with
        the others' on /tmp/pam.X), not a login: tried again, twice."""
        for _ in range(3):
            p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=90)
            if not (p.returncode == 255 and b"kex_exchange_identification" in p.stderr):
                break
            time.sleep(0.2)
        return p

    def resource_status(self, token):
        req = urllib.request.Request(self.srv.url("/api/resource"),
                                     headers={"Authorization": "Bearer " + token})
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self.srv.ssl_context()))
        try:
            with opener.open(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def test_login_and_token_in_session(self):
        if self.helper is None:
            command = 'echo "dir=$OAUTH_TOKEN_CACHE_DIR"'
        else:
            command = (f'echo "dir=$OAUTH_TOKEN_CACHE_DIR"; '
                       f'{self.helper} -c {self.conf} -p default')
        before = self.srv.stats()
        p = self.ssh(PASSWORD, command)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertEqual(p.returncode, 0, f"ssh: {err}\n--- sshd log\n{self.read_log()}")
        after = self.srv.stats()
        # One token request: the login's password grant, none from oauth-token.
        self.assertEqual(after["total"] - before["total"], 1, out)
        self.assertEqual(after["by_grant"].get("password", 0)
                         - before["by_grant"].get("password", 0), 1)
        lines = out.splitlines()
        cache = os.path.join(self.user.home, ".cache", "pam-oauth")
        self.assertIn(f"dir={cache}", lines, out)
        with open(os.path.join(cache, "default.json")) as f:
            entry = json.load(f)
        st = os.lstat(os.path.join(cache, "default.json"))
        self.assertEqual(st.st_uid, self.user.uid)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        token = entry["access_token"]
        self.assertEqual(self.resource_status(token), 200)
        log = self.read_log()
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(token, log)
        self.assertIn("authenticated as " + USER, log)
        if self.helper is None:
            self.skipTest("curl_helper/oauth-token is not built: the login worked, "
                          "the token in the session was not read back")
        self.assertEqual(lines[-1], token, out + err)

    def kbdint(self, user, password):
        """ssh USER@ with keyboard-interactive only, the prompts answered by
        an SSH_ASKPASS program that records each prompt it is shown.
        Returns (prompts, seconds, exit status)."""
        log = os.path.join(self.dir, f"askpass-{user}.log")
        if os.path.exists(log):
            os.unlink(log)
        askpass = harness.write_file(os.path.join(self.dir, "askpass"), (
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"$ASKPASS_LOG\"\n"
            "printf '%s\\n' \"$ASKPASS_ANSWER\"\n"), 0o755)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "LC_ALL": "C", "SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force",
               "DISPLAY": ":0", "ASKPASS_LOG": log, "ASKPASS_ANSWER": password}
        argv = ["setsid", "-w", "ssh", "-F", "/dev/null", "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=keyboard-interactive",
                "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-T",
                f"{user}@127.0.0.1", "true"]
        start = time.monotonic()
        p = self.run_ssh(argv, env)
        took = time.monotonic() - start
        try:
            with open(log) as f:
                prompts = f.read().splitlines()
        except FileNotFoundError:
            prompts = []
        self.last_stderr = p.stderr.decode(errors="replace")
        return [x.replace(user, "USER") for x in prompts], took, p.returncode

    def test_keyboard_interactive_no_account_oracle(self):
        """Issue 14.1 through a real sshd: keyboard-interactive shows an
        existing user (wrong password) and a nonexistent one the same
        prompts, and both fail in about the same time."""
        prompts, _, rc = self.kbdint(USER, PASSWORD)
        self.assertIn(f"Accepted keyboard-interactive/pam for {USER}", self.read_log(),
                      f"exit {rc}: {self.last_stderr}")
        self.assertEqual(len(prompts), 1, prompts)
        seen = {}
        for user in (USER, "po-no-such-user") * 3:
            prompts, took, rc = self.kbdint(user, "Wr0ng-pass-7")
            self.assertNotEqual(rc, 0)
            seen.setdefault(user, []).append((prompts, took))
        known = [x for x, _ in seen[USER]]
        unknown = [x for x, _ in seen["po-no-such-user"]]
        self.assertEqual(known, unknown, seen)
        self.assertTrue(known[0], f"no prompt was shown: {seen}")
        t_known = min(t for _, t in seen[USER])
        t_unknown = min(t for _, t in seen["po-no-such-user"])
        sys.stderr.write(f"\n# sshd keyboard-interactive failure: existing user "
                         f"{t_known:.2f} s, nonexistent user {t_unknown:.2f} s, "
                         f"prompts {known[0]}\n")
        self.assertLess(abs(t_known - t_unknown), 0.5, seen)
        self.assertNotIn("Wr0ng-pass-7", self.read_log())

    def test_keyboard_interactive_account_checks(self):
        """sshd runs keyboard-interactive authentication in a child process:
        the account checks (require_roles, require_scope) must hold there
        too, not only for password authentication in the monitor."""
        self.srv.client("test-client", secret="test-secret", roles_in_response=True)
        cases = [
            ("role present", {"require_roles": "dev", "roles_claim": "roles"}, True),
            ("role missing", {"require_roles": "admin", "roles_claim": "roles"}, False),
            ("scope not granted", {"scope": "read", "require_scope": "read admin"}, False),
        ]
        try:
            for name, extra, ok in cases:
                with self.subTest(name):
                    self.write_conf(**extra)
                    # sshd reports every pam_acct_mgmt refusal in the
                    # child this way (the module's own lines stay there).
                    refused = "PAM: User account has expired for " + USER
                    before = self.read_log().count(refused)
                    _, _, rc = self.kbdint(USER, PASSWORD)
                    log = self.read_log()
                    if ok:
                        self.assertEqual(rc, 0, f"{self.last_stderr}\n{log}")
                        self.assertEqual(log.count(refused), before, log)
                    else:
                        self.assertNotEqual(rc, 0, f"{name}: logged in\n{log}")
                        self.assertEqual(log.count(refused), before + 1, log)
                        # The child wrote the token's hand-off at
                        # authentication; the refusal removed it.
                        left = [n for n in os.listdir("/run/pam-oauth")
                                if n.startswith(f"handoff.{self.user.uid}.")]
                        self.assertEqual(left, [], "a refused login's token was left")
        finally:
            self.write_conf()

    def test_wrong_password_refused(self):
        before = self.srv.stats()["total"]
        p = self.ssh("not the password", "true")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(self.srv.stats()["total"] - before, 1)
        self.assertFalse(os.path.exists(os.path.join(self.user.home, ".cache", "pam-oauth",
                                                     "default.json")))

    def test_offline_login(self):
        """Online once (the verifier is stored), then the identity provider
        fails every request: the right password still opens a session,
        logged as offline; a wrong one is refused."""
        p = self.ssh(PASSWORD, "true")
        self.assertEqual(p.returncode, 0, p.stderr.decode() + self.read_log())
        verifier = os.path.join(self.dir, "offline", "default", USER)
        st = os.lstat(verifier)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        with open(verifier) as f:
            self.assertTrue(json.load(f)["verifier"].startswith("$argon2id$v=19$"))
        self.srv.fault("/generic/token", "close", count=-1)
        try:
            p = self.ssh(PASSWORD, "echo offline-session-$USER")
            out = p.stdout.decode()
            self.assertEqual(p.returncode, 0, p.stderr.decode() + "\n" + self.read_log())
            self.assertIn(f"offline-session-{USER}", out)
            log = self.read_log()
            self.assertRegex(log, r"user po-sshtest \(as po-sshtest\), profile \[default\]: "
                                  r"authenticated offline")
            p = self.ssh("not the password", "true")
            self.assertNotEqual(p.returncode, 0)
            log = self.read_log()
            self.assertIn("authentication failure offline: wrong password (1 of 5", log)
        finally:
            self.srv.clear_faults()
        self.assertNotIn(PASSWORD, self.read_log())
        with open(verifier, "rb") as f:
            self.assertNotIn(PASSWORD.encode(), f.read())


    def test_offline_login_keyboard_interactive(self):
        """Keyboard-interactive: sshd runs authentication and acct_mgmt in
        a child, setcred and the session in the monitor (pam_oauth's
        handoff.c).  An offline login has no token to hand over: the
        session still opens, and nothing about it is logged as a
        failure."""
        p = self.ssh(PASSWORD, "true")
        self.assertEqual(p.returncode, 0, p.stderr.decode() + self.read_log())
        self.srv.fault("/generic/token", "close", count=-1)
        try:
            start = len(self.read_log())
            prompts, _, rc = self.kbdint(USER, PASSWORD)
            log = self.read_log()[start:]
            self.assertEqual(rc, 0, f"{self.last_stderr}\n{log}")
            self.assertEqual(len(prompts), 1, prompts)
            # The child logs only its errors here (see the account
            # checks test): the outage, then sshd's acceptance, which only
            # the offline check can have given.
            self.assertIn("the identity provider is unavailable", log)
            self.assertIn(f"Accepted keyboard-interactive/pam for {USER}", log)
            self.assertIn("pam_sm_open_session: exit (PAM_IGNORE)", log)
            bad = [l for l in log.splitlines()
                   if re.search(r"cannot|unusable|hand-off|not used for user|"
                                r"PAM_SESSION_ERR|PAM_CRED_ERR|session.*fail", l)]
            self.assertEqual(bad, [], log)
            # A wrong password is checked (and counted) in the child too.
            verifier = os.path.join(self.dir, "offline", "default", USER)
            with open(verifier) as f:
                failures = json.load(f)["failures"]
            _, _, rc = self.kbdint(USER, "Wr0ng-pass-7")
            self.assertNotEqual(rc, 0)
            with open(verifier) as f:
                self.assertEqual(json.load(f)["failures"], failures + 1)
        finally:
            self.srv.clear_faults()
        self.assertNotIn(PASSWORD, self.read_log())


if __name__ == "__main__":
    unittest.main()
