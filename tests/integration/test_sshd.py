"""A real login: OpenSSH's sshd with UsePAM, pam_oauth.so and the token
handed to the session, where oauth-token prints it.

sshd runs from its own sshd_config, host key and PID file in a temporary
directory, on a free port of 127.0.0.1, with libpam-wrapper preloaded so
that its PAM service file comes from a temporary directory: nothing under
/etc is touched.  (sshd needs its privilege separation directory /run/sshd;
the test creates it when missing and removes it again.)  A local user made
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
import socket
import subprocess
import time
import unittest
import urllib.request

import harness
import pamtest

SSHD = "/usr/sbin/sshd"
USER = "po-sshtest"
PASSWORD = "ssh p@ss+w0rd&=%"


def skip_reason():
    if not pamtest.is_root():
        return "needs root (sshd, useradd); CI runs it as root"
    for tool, pkg in ((SSHD, "openssh-server"), ("ssh", "openssh-client"),
                      ("sshpass", "sshpass"), ("ssh-keygen", "openssh-client"),
                      ("useradd", "passwd")):
        if shutil.which(tool) is None and not os.access(tool, os.X_OK):
            return f"{tool} is not installed (Debian package {pkg})"
    return pamtest.skip_reason()


SKIP = skip_reason()


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestSshdLogin(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)
        cls.dir = cls.env.dir
        cls.user = pamtest.LocalUser(USER)
        cls.created_run_sshd = False
        cls.sshd = None
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
            # offline login (test_offline_login); root's directory, 0700
            "offline_login": True,
            "offline_dir": os.path.join(d, "offline"),
            "retries": 0,
        }, name="pam-oauth.conf", mode=0o644)
        mod = pamtest.module()
        args = f"config={cls.conf} debug"
        cls.env.service("sshd", [
            ("auth", "[success=done authinfo_unavail=ignore default=die]", mod, args),
            ("auth", "requisite", "pam_deny.so", ""),
            ("account", "required", mod, args),
            ("session", "required", mod, args),
            # what common-session's pam_unix is in a real stack: after an
            # offline login pam_oauth has no token for the session (PAM_IGNORE)
            ("session", "required", "pam_permit.so", ""),
        ])
        key = os.path.join(d, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key],
                       check=True, capture_output=True)
        cls.port = free_port()
        config = os.path.join(d, "sshd_config")
        harness.write_file(config, "\n".join([
            f"Port {cls.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {key}",
            f"PidFile {os.path.join(d, 'sshd.pid')}",
            "UsePAM yes",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication no",
            "AuthorizedKeysFile none",
            "PermitRootLogin no",
            f"AllowUsers {USER}",
            "StrictModes no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "",
        ]), 0o600)
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)
            cls.created_run_sshd = True
        cls.log = os.path.join(d, "sshd.log")
        env = cls.env.environ(debuglevel=2)
        with open(cls.log, "wb") as log:
            cls.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", config], env=env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while True:
            if cls.sshd.poll() is not None:
                raise RuntimeError("sshd exited:\n" + cls.read_log())
            try:
                with socket.create_connection(("127.0.0.1", cls.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not listen:\n" + cls.read_log())
                time.sleep(0.1)

    @classmethod
    def read_log(cls):
        try:
            with open(cls.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @classmethod
    def tearDownClass(cls):
        if cls.sshd is not None and cls.sshd.poll() is None:
            cls.sshd.terminate()
            try:
                cls.sshd.wait(10)
            except subprocess.TimeoutExpired:
                cls.sshd.kill()
                cls.sshd.wait()
        cls.user.remove()
        if cls.created_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)

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


if __name__ == "__main__":
    unittest.main()
