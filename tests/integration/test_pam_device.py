"""pam_oauth.so with the device authorization grant (RFC 8628), through
pamtester and libpam-wrapper on a pty (python3-pexpect): the conversation
shows the code, the URL and the QR code, the test approves (or denies) the
code at the test server as a given identity provider user, answers the
Enter prompt, and reads the module's return code and log lines.

The binding rule under attack: a genuine, correctly signed token issued to
another identity provider user (who approved the code) must not log the
user in, and the refusal is logged with both names.  The password grant
handing over to the device grant (password_fallback) is tested with the
identity provider's "more than a password" answers, and a wrong password
stays a wrong password.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_pam_device -v
"""

import io
import os
import shutil
import time
import unittest

import harness
import pamtest
import qrtext

try:
    import pexpect
except ImportError:  # Debian package python3-pexpect
    pexpect = None

CODE_RE = r"enter the code ([A-Z]{4}-[A-Z]{4})"
PROMPT = "Press Enter once you have approved the login: "
AGAIN = "The login has not been approved yet."


def skip_reason():
    if pexpect is None:
        return "python3-pexpect is not installed"
    return pamtest.skip_reason()


SKIP = skip_reason()


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)


class Transcript:
    """What one pamtester run showed on its terminal, parsed like
    pamtest.PamResult (module log lines, pamtester's verdict)."""

    def __init__(self, ops, text, status):
        class P:
            pass
        p = P()
        p.returncode = status
        p.stdout = text.replace("\r\n", "\n")
        p.stderr = ""
        self.result = pamtest.PamResult(list(ops), p, 0.0)
        self.text = p.stdout
        # what a user sees: everything but pam_wrapper's log lines
        self.screen = "\n".join(l for l in self.text.split("\n")
                                if not l.startswith("PWRAP_"))


class DeviceLogin(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)
        cls.user, cls.other = pamtest.LOCAL_USERS[0], pamtest.LOCAL_USERS[1]
        cls.cache = harness.tmpdir()

    def setUp(self):
        self.srv.reset()
        self.srv.device(interval=1)
        # identity provider users with the names of local accounts
        self.srv.user(self.user, "user-pass", ["dev"])
        self.srv.user(self.other, "other-pass", ["dev"])

    def service(self, **keys):
        p = {"token_url": self.srv.url("/jwt/token"), "issuer": self.srv.jwt_issuer,
             "grant": "device", "client_id": "device-client", "client_auth": "none",
             "ca_file": self.srv.ca_file, "verify": "jwt",
             "jwks_cache_dir": self.cache, "timeout": "10s", "retries": 0,
             "device_timeout": "60s"}
        p.update(keys)
        p = {k: v for k, v in p.items() if v is not None}
        self.conf = self.env.config(p)
        name = f"dev-{self.id().rsplit('.', 1)[-1]}"[:60]
        return self.env.oauth_service(name, f"config={self.conf} minimum_uid=0 "
                                            "fail_delay=0 debug")

    def login(self, service, action="approve", as_user=None, enter=True,
              early=False, ops=("authenticate",), user=None, password=None,
              timeout=60):
        """pamtester -v SERVICE USER OPS on a pty.  action(code) runs once the
        code is shown ("approve": as as_user, default the user; "deny";
        None: nothing); enter answers the Enter prompt (early: before the
        approval); password answers a password prompt first."""
        user = user or self.user
        log = io.StringIO()
        child = pexpect.spawn(pamtest.PAMTESTER, ["-v", service, user, *ops],
                              env=self.env.environ(), encoding="utf-8",
                              timeout=timeout, dimensions=(80, 200))
        child.logfile_read = log
        code = None
        if password is not None:
            child.expect("Password: ")
            child.sendline(password)
        try:
            i = child.expect([CODE_RE, pexpect.EOF])
            if i == 0:
                code = child.match.group(1)
                if enter and early:
                    child.expect(PROMPT)
                    child.sendline("")
                    time.sleep(1.5)
                if action == "approve":
                    self.srv.device_approve(code, as_user or user)
                elif action == "deny":
                    self.srv.device_deny(code)
                elif action is not None:
                    action(code)
                if enter and not early:
                    child.expect(PROMPT)
                    child.sendline("")
                child.expect(pexpect.EOF)
        finally:
            child.close()
        t = Transcript(ops, log.getvalue(), child.exitstatus)
        t.code = code
        return t

    def logged(self, t, text):
        return [m for _, m in t.result.logs if text in m]

    def assertLogged(self, t, text):
        self.assertTrue(self.logged(t, text), f"no log line with {text!r} in\n{t.text}")

    # -----------------------------------------------------------------

    def test_code_shown_approved_logged_in(self):
        svc = self.service()
        t = self.login(svc, ops=("authenticate", "acct_mgmt"))
        r = t.result
        self.assertTrue(r.ok, t.text)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS")
        self.assertIn(f"To log in, open {self.srv.url('/device')}?user_code={t.code}",
                      t.screen)
        self.assertIn(f"or open {self.srv.url('/device')} and enter the code {t.code}",
                      t.screen)
        self.assertRegex(t.screen, r"The code is valid for (59|60) seconds\.")
        self.assertEqual(t.screen.count(PROMPT), 1)
        self.assertNotIn("Password:", t.screen)
        self.assertLogged(t, f"user {self.user} authenticated as {self.user} "
                             f"(profile [default], device login)")
        stats = self.srv.stats()
        self.assertEqual(stats["device_requests"], 1)
        self.assertNotIn("password", stats["by_grant"])
        (d,) = self.srv.devices()
        self.assertEqual((d["state"], d["username"], d["slow_downs"]),
                         ("used", self.user, 0))
        print("# pamtester device login, what the conversation showed:")
        for line in t.screen.strip().split("\n"):
            print("#   " + line)

    def test_enter_pressed_before_approval(self):
        # Enter comes first; the approval 1.5 s later is still picked up
        # by the polls, without a second prompt.
        t = self.login(self.service(), early=True)
        self.assertTrue(t.result.ok, t.text)
        self.assertEqual(t.screen.count(PROMPT), 1)
        self.assertNotIn(AGAIN, t.screen)

    def test_enter_long_before_approval_asks_again(self):
        # six intervals (1 s here) without an answer: ask again
        def approve_later(code):
            deadline = time.monotonic() + 30
            while (self.srv.devices()[0]["polls"] < 6
                   and time.monotonic() < deadline):
                time.sleep(0.1)
        log = io.StringIO()
        svc = self.service()
        child = pexpect.spawn(pamtest.PAMTESTER, ["-v", svc, self.user, "authenticate"],
                              env=self.env.environ(), encoding="utf-8", timeout=60)
        child.logfile_read = log
        child.expect(CODE_RE)
        code = child.match.group(1)
        child.expect(PROMPT)
        child.sendline("")
        child.expect(AGAIN + r".*press Enter: ")
        polls = self.srv.devices()[0]["polls"]
        self.srv.device_approve(code, self.user)
        child.sendline("")
        child.expect(pexpect.EOF)
        child.close()
        t = Transcript(("authenticate",), log.getvalue(), child.exitstatus)
        self.assertTrue(t.result.ok, t.text)
        self.assertGreaterEqual(polls, 5)
        print(f"# Enter before approval: asked again after {polls} pending polls")

    def test_denied_is_auth_err(self):
        t = self.login(self.service(), action="deny")
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertEqual(t.result.error, "PAM_AUTH_ERR")
        self.assertIn("The login was denied.", t.screen)
        self.assertLogged(t, "the device login was denied at the identity provider: "
                             "token endpoint answered HTTP 400: access_denied")

    def test_expired_is_auth_err_with_a_clear_message(self):
        self.srv.device(expires_in=4)
        t = self.login(self.service(), action=None)
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertIn("The login was not approved in time.", t.screen)
        self.assertLogged(t, "the device login was not approved in time: the device "
                             "code expired after 4 s before the login was approved")

    def test_device_timeout(self):
        t = self.login(self.service(device_timeout="10s", device_prompt="no"),
                       action=None, enter=False)
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertLogged(t, "the login was not approved within device_timeout (10 s)")

    def test_server_down_is_authinfo_unavail(self):
        svc = self.service()
        self.srv.fault("/jwt/device", "status", status=503, count=-1,
                       body={"error": "temporarily_unavailable"})
        t = self.login(svc)
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL",
                         t.text)
        self.assertIsNone(t.code)
        self.assertNotIn(PROMPT, t.screen)
        self.assertLogged(t, "the identity provider is unavailable")

    def test_slow_down_is_honoured(self):
        self.srv.device(slow_down=1)
        t0 = []

        def approve_after_first_poll(code):
            deadline = time.monotonic() + 20
            while self.srv.devices()[0]["polls"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            t0.append(time.monotonic())
            self.srv.device_approve(code, self.user)
        t = self.login(self.service(device_prompt="no"), action=approve_after_first_poll,
                       enter=False)
        self.assertTrue(t.result.ok, t.text)
        (d,) = self.srv.devices()
        # one slow_down: the interval went from 1 s to 6 s, and the next
        # poll came late enough not to earn another
        self.assertEqual((d["polls"], d["slow_downs"], d["interval"]), (2, 1, 6), d)
        self.assertLogged(t, "1 slow_down")
        print(f"# PAM slow_down: {d['polls']} polls, interval {d['interval']} s")

    def test_genuine_token_for_another_user_is_refused(self):
        # The attack: the code shown to USER is approved at the identity
        # provider by OTHER.  The token is genuine (signed by the issuer,
        # right audience, current) but names OTHER.
        t = self.login(self.service(), as_user=self.other)
        r = t.result
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        (d,) = self.srv.devices()
        self.assertEqual((d["state"], d["username"]), ("used", self.other))
        lines = self.logged(t, "user_mismatch")
        self.assertEqual(len(lines), 1, t.text)
        self.assertIn(f"user {self.user} (as {self.user}), profile [default], device "
                      f"login: authentication failure: the access token was refused "
                      f"(user_mismatch): the token's \"preferred_username\" is "
                      f"\"{self.other}\", not the user \"{self.user}\"", lines[0])
        self.assertFalse(self.logged(t, "authenticated as"))
        print("# binding attack, the log line: " + lines[0])

    def test_id_token_binding_and_introspection(self):
        # the id_token can carry the binding ...
        t = self.login(self.service(verify_token="id"))
        self.assertTrue(t.result.ok, t.text)
        t = self.login(self.service(verify_token="id"), as_user=self.other)
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertLogged(t, "the id token was refused (user_mismatch)")
        # ... and introspection of an opaque token (username member)
        svc = self.service(token_url=self.srv.url("/generic/token"),
                           device_authorization_url=self.srv.url("/generic/device"),
                           issuer=None, verify="introspect",
                           introspection_url=self.srv.url("/jwt/introspect"),
                           client_id="test-client", client_secret="test-secret",
                           client_auth="basic")
        t = self.login(svc)
        self.assertTrue(t.result.ok, t.text)
        t = self.login(svc, as_user=self.other)
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertLogged(t, "user_mismatch")

    def test_verify_none_is_a_configuration_error(self):
        svc = self.service(verify="none")
        t = self.login(svc)
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_SERVICE_ERR", t.text)
        with open(self.conf) as f:
            line = [i for i, l in enumerate(f.read().split("\n"), 1)
                    if l.startswith("grant =")][0]
        self.assertLogged(t, f"configuration: {self.conf}:{line}: key 'grant': "
                             f"profile 'default' ({self.conf}:1): a device login needs "
                             f"verified tokens")
        self.assertEqual(self.srv.stats()["device_requests"], 0)

    def test_qr_code_decodes_to_the_complete_uri(self):
        t = self.login(self.service(device_qr="yes"))
        self.assertTrue(t.result.ok, t.text)
        drawn = qrtext.extract(t.screen)
        self.assertGreater(len(drawn.split("\n")), 10, t.screen)
        self.assertEqual(qrtext.decode(drawn),
                         self.srv.url("/device") + "?user_code=" + t.code)

    def test_without_prompt_the_code_comes_as_info_and_polling_starts(self):
        t = self.login(self.service(device_prompt="no"), enter=False)
        self.assertTrue(t.result.ok, t.text)
        self.assertNotIn(PROMPT, t.screen)

    # -- password_fallback ----------------------------------------------

    def fallback_service(self, **keys):
        return self.service(grant="password", client_id="test-client",
                            client_secret="test-secret", client_auth="basic",
                            password_fallback="device", **keys)

    def test_interaction_required_goes_on_with_the_device_grant(self):
        for code in ("interaction_required", "mfa_required", "consent_required"):
            with self.subTest(code=code):
                self.srv.reset()
                self.srv.device(interval=1)
                self.srv.user(self.user, "user-pass")
                svc = self.fallback_service()
                self.srv.fault("/jwt/token", "status", status=400, count=1,
                               body={"error": code, "error_description": "MFA needed"})
                t = self.login(svc, password="user-pass")
                self.assertTrue(t.result.ok, t.text)
                self.assertIn("Your identity provider asks for more than a password.",
                              t.screen)
                self.assertLogged(t, f"the identity provider wants more than the "
                                     f"password ({code}): continuing with a device login")
                self.assertEqual(self.srv.stats()["device_requests"], 1)

    def test_device_login_is_never_offline_login(self):
        """Issue 13 with password_fallback: a password login the identity
        provider accepts stores a verifier; one it answers "more than a
        password" removes it, and the device login that follows stores
        none (it proved no password)."""
        offline = os.path.join(self.env.dir, "offline-fallback")
        shutil.rmtree(offline, ignore_errors=True)
        svc = self.fallback_service(offline_login="yes", offline_dir=offline)
        verifier = os.path.join(offline, "default", self.user)
        t = self.login(svc, password="user-pass")
        self.assertTrue(t.result.ok, t.text)
        self.assertIsNone(t.code)
        self.assertTrue(os.path.exists(verifier), t.text)
        self.srv.fault("/jwt/token", "status", status=400, count=1,
                       body={"error": "mfa_required"})
        t = self.login(svc, password="user-pass")
        self.assertTrue(t.result.ok, t.text)
        self.assertIsNotNone(t.code)
        self.assertLogged(t, "offline verifier removed: the identity provider wants "
                             "more than the password")
        self.assertFalse(self.logged(t, "offline verifier stored"), t.text)
        self.assertFalse(os.path.exists(verifier), t.text)

    def test_listed_invalid_grant_goes_on_with_the_device_grant(self):
        svc = self.fallback_service(device_fallback_on="AADSTS50079 | aadsts50076")
        self.srv.fault("/jwt/token", "status", status=400, count=1, body={
            "error": "invalid_grant",
            "error_description": "AADSTS50076: Due to a configuration change made by "
                                 "your administrator, you must use multi-factor "
                                 "authentication to access the resource."})
        t = self.login(svc, password="user-pass")
        self.assertTrue(t.result.ok, t.text)
        self.assertLogged(t, "is listed in device_fallback_on (\"aadsts50076\")")

    def test_wrong_password_stays_a_wrong_password(self):
        svc = self.fallback_service(device_fallback_on="AADSTS50076")
        t = self.login(svc, password="not-the-password")
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertIsNone(t.code)
        self.assertLogged(t, "rejected the credentials (invalid_grant)")
        self.assertEqual(self.srv.stats()["device_requests"], 0)

    def test_without_fallback_interaction_required_says_what_would_help(self):
        svc = self.service(grant="password", client_id="test-client",
                           client_secret="test-secret", client_auth="basic")
        self.srv.fault("/jwt/token", "status", status=400, count=1,
                       body={"error": "interaction_required"})
        t = self.login(svc, password="user-pass")
        self.assertEqual(t.result.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", t.text)
        self.assertLogged(t, "a device login (grant = device, or password_fallback = "
                             "device) can satisfy it")
        self.assertEqual(self.srv.stats()["device_requests"], 0)


if __name__ == "__main__":
    unittest.main()
