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
import shutil
import subprocess
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
        # oauth-token, where the user can run it.
        helper = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")
        cls.helper = None
        if os.access(helper, os.X_OK):
            os.mkdir(os.path.join(d, "bin"), 0o755)
            cls.helper = os.path.join(d, "bin", "oauth-token")
            shutil.copy(helper, cls.helper)
            os.chmod(cls.helper, 0o755)
        # The configuration: readable by the user (oauth-token reads it in
        # the session), the client secret in a root-only file.
        secret = harness.write_file(os.path.join(d, "client.secret"), "test-secret\n", 0o600)
        cls.conf = cls.env.config({
            "token_url": cls.srv.url("/generic/token"),
            "grant": "password",
            "client_id": "test-client",
            "client_secret_file": secret,
            "ca_file": cls.srv.ca_file,
            "store_token": True,
            "timeout": "10s",
        }, name="pam-oauth.conf", mode=0o644)
        mod = pamtest.module()
        args = f"config={cls.conf} debug"
        cls.env.service("sshd", [
            ("auth", "[success=done authinfo_unavail=ignore default=die]", mod, args),
            ("auth", "requisite", "pam_deny.so", ""),
            ("account", "required", mod, args),
            ("session", "required", mod, args),
        ])
        cls.server = sshdtest.Sshd(cls.env, [
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
        ], allow_users=[USER])
        cls.server.start()
        cls.port = cls.server.port

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
        return subprocess.run(argv, env=env, capture_output=True, timeout=90)

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

    def test_wrong_password_refused(self):
        before = self.srv.stats()["total"]
        p = self.ssh("not the password", "true")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(self.srv.stats()["total"] - before, 1)
        self.assertFalse(os.path.exists(os.path.join(self.user.home, ".cache", "pam-oauth",
                                                     "default.json")))


if __name__ == "__main__":
    unittest.main()
