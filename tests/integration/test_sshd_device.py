"""A real ssh login with the device authorization grant: OpenSSH's sshd with
KbdInteractiveAuthentication and AuthenticationMethods keyboard-interactive,
pam_oauth.so with grant = device, and ssh driven on a pty by
python3-pexpect, as a user at a terminal would: the code and URL arrive in
the keyboard-interactive prompt, the test approves the code at the test
server as the user, presses Enter, and the session opens; inside it
oauth-token prints the token the login stored.

sshd keeps the module's PAM_TEXT_INFO messages until its next prompt (they
travel in one SSH2_MSG_USERAUTH_INFO_REQUEST), which is why the module asks
for Enter: this test is the proof that an ssh user sees the code.

Root only (sshd, useradd), like test_sshd; nothing under /etc is touched
(libpam-wrapper reads the service file from a temporary directory).
"""

import io
import json
import os
import shutil
import unittest

import harness
import pamtest
import qrtext
import sshdtest

try:
    import pexpect
except ImportError:  # Debian package python3-pexpect
    pexpect = None

USER = "po-devtest"
OTHER = "po-devother"
CODE_RE = r"enter the code ([A-Z]{4}-[A-Z]{4})"
PROMPT = "Press Enter once you have approved the login: "


SKIP = ("python3-pexpect is not installed" if pexpect is None
        else sshdtest.skip_reason())


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)


class TestSshdDeviceLogin(unittest.TestCase):

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
        # oauth-token and the CA, staged where the user's session can reach
        # them (the checkout may be in a private directory: harness.Stage)
        cls.helper = harness.staged_helper()
        jwks = os.path.join(d, "jwks")
        os.mkdir(jwks, 0o700)
        cls.conf = cls.env.config({
            "token_url": cls.srv.url("/jwt/token"),
            "issuer": cls.srv.jwt_issuer,
            "grant": "device",
            "client_id": "device-client",
            "client_auth": "none",
            "scope": "openid",
            "verify": "jwt",
            "jwks_cache_dir": jwks,
            "ca_file": harness.stage().add(cls.srv.ca_file, "ca.pem", 0o644),
            "store_token": True,
            "device_timeout": "90s",
            "timeout": "10s",
        }, name="pam-oauth.conf", mode=0o644)
        mod = pamtest.module()
        args = f"config={cls.conf} debug"
        # the documented stack: the device login, pam_unix for the rest
        cls.env.service("sshd", [
            ("auth", "sufficient", mod, args),
            ("auth", "requisite", "pam_deny.so", ""),
            ("account", "required", mod, args),
            ("session", "required", mod, args),
        ])
        cls.server = sshdtest.Sshd(cls.env, [
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "AuthenticationMethods keyboard-interactive",
            "LoginGraceTime 120",
        ], allow_users=[USER])
        cls.server.start()
        cls.port = cls.server.port
        cls.known_hosts = cls.server.known_hosts

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
        self.srv.device(interval=2)
        self.srv.user(USER, "unused-password", ["dev"])
        self.srv.user(OTHER, "other-password", ["dev"])
        shutil.rmtree(os.path.join(self.user.home, ".cache"), ignore_errors=True)

    def ssh(self, command, qr=False):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "LC_ALL": "C.UTF-8", "TERM": "xterm"}
        # ssh's default LogLevel (INFO): it shows the keyboard-interactive
        # instruction that carries the module's last messages on a failure
        argv = ["-F", "/dev/null", "-p", str(self.port),
                "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "PreferredAuthentications=keyboard-interactive",
                "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=10",
                f"{USER}@127.0.0.1", command]
        log = io.StringIO()
        child = pexpect.spawn("ssh", argv, env=env, encoding="utf-8", timeout=60,
                              dimensions=(60, 160))
        child.logfile_read = log
        return child, log

    def test_device_login_over_ssh(self):
        before = self.srv.stats()
        child, log = self.ssh(f'echo "logged in as $(id -un)"; {self.helper} -c {self.conf}')
        child.expect(CODE_RE)
        code = child.match.group(1)
        child.expect(PROMPT)
        shown = log.getvalue()
        self.srv.device_approve(code, USER)
        child.sendline("")
        child.expect(r"logged in as " + USER + r"\r\n")
        child.expect(r"([!-~]{20,})\r\n")
        token = child.match.group(1)
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 0, log.getvalue() + self.read_log())
        # what the user saw, in the order ssh showed it
        self.assertIn(f"To log in, open {self.srv.url('/device')}?user_code={code}", shown)
        self.assertIn(f"enter the code {code}", shown)
        self.assertIn(PROMPT, shown)
        # the stored token, printed by oauth-token inside the session
        with open(os.path.join(self.user.home, ".cache", "pam-oauth",
                               "default.json")) as f:
            self.assertEqual(json.load(f)["access_token"], token)
        after = self.srv.stats()
        self.assertEqual(after["device_requests"] - before["device_requests"], 1)
        # authentication ran in sshd's keyboard-interactive child: the
        # session got the token through the hand-off
        self.assertIn("the login's token came from the hand-off", self.read_log())
        self.assertEqual([n for n in os.listdir("/run/pam-oauth")
                          if n.startswith(f"handoff.{self.user.uid}.")], [])
        self.assertNotIn(token, self.read_log())
        print("# what the user saw at the ssh prompt:")
        for line in log.getvalue().replace("\r\n", "\n").replace("\r", "").split("\n"):
            if token in line:
                line = line.replace(token, token[:12] + "...")
            print("#   " + line)

    def test_qr_code_in_the_ssh_prompt(self):
        # device_qr given as a PAM argument: the same profile otherwise
        mod = pamtest.module()
        args = f"config={self.conf} device_qr=yes debug"
        self.env.service("sshd", [("auth", "sufficient", mod, args),
                                  ("auth", "requisite", "pam_deny.so", ""),
                                  ("account", "required", mod, args),
                                  ("session", "required", mod, args)])
        try:
            child, log = self.ssh("true")
            child.expect(CODE_RE)
            code = child.match.group(1)
            child.expect(PROMPT)
            drawn = qrtext.extract(log.getvalue())
            self.srv.device_approve(code, USER)
            child.sendline("")
            child.expect(pexpect.EOF)
            child.close()
        finally:
            self.env.service("sshd", [("auth", "sufficient", mod, f"config={self.conf} debug"),
                                      ("auth", "requisite", "pam_deny.so", ""),
                                      ("account", "required", mod, f"config={self.conf} debug"),
                                      ("session", "required", mod, f"config={self.conf} debug")])
        self.assertEqual(child.exitstatus, 0, log.getvalue())
        self.assertEqual(qrtext.decode(drawn), self.srv.url("/device") + "?user_code=" + code)
        print("# the QR code in the ssh prompt decodes to verification_uri_complete "
              f"({len(drawn.split(chr(10)))} lines)")

    def test_approval_by_another_user_is_refused(self):
        child, log = self.ssh("true")
        child.expect(CODE_RE)
        code = child.match.group(1)
        child.expect(PROMPT)
        self.srv.device_approve(code, OTHER)
        child.sendline("")
        child.expect(pexpect.EOF)
        child.close()
        self.assertNotEqual(child.exitstatus, 0)
        # sshd's keyboard-interactive child clears its environment, so
        # pam_wrapper's log lines of that process are lost here; the
        # pamtester test checks the log line.  The user is told.
        self.assertIn(f"The login was not approved as {USER}.", log.getvalue())
        self.assertIn("Permission denied", log.getvalue())
        (d,) = self.srv.devices()
        self.assertEqual((d["state"], d["username"]), ("used", OTHER))
        self.assertFalse(os.path.exists(os.path.join(self.user.home, ".cache",
                                                     "pam-oauth", "default.json")))

    def test_denied(self):
        child, log = self.ssh("true")
        child.expect(CODE_RE)
        code = child.match.group(1)
        child.expect(PROMPT)
        self.srv.device_deny(code)
        child.sendline("")
        child.expect(pexpect.EOF)
        child.close()
        self.assertNotEqual(child.exitstatus, 0)
        self.assertIn("The login was denied.", log.getvalue())


if __name__ == "__main__":
    unittest.main()
