"""Offline login (issue 13) through pamtester and libpam-wrapper, against
the test authorization server made unavailable with fault injection.

An online login with offline_login = yes stores an Argon2id verifier of the
password under offline_dir; while the token endpoint fails with an
"unavailable" outcome (the connection closed, HTTP 503, a TLS failure) the
password is checked against it.  The cases: the verifier written (0600, the
documented encoding, checked with libargon2 itself through ctypes, not the
password); the IdP down with the right password (PAM_SUCCESS, logged as
offline), a wrong one (PAM_AUTH_ERR after the fail delay), five wrong ones
(refused until an online login), an expired verifier (PAM_AUTHINFO_UNAVAIL,
the file gone, the stack falls through); invalid_grant deleting it; the
account checks after an offline login; the session; and a sentinel sweep:
the password is in no file, no log line and no core of a process that
logged in offline (gcore of tests/tools/pam-loop).
"""

import ctypes
import ctypes.util
import glob
import json
import os
import re
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import time
import unittest

import harness
import pamtest
import test_pam
from test_pam import A, B, IDP

SKIP = pamtest.skip_reason()

# The documented parameters (common/offline.h).
ARGON2_PREFIX = "$argon2id$v=19$m=47104,t=2,p=1$"


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)


def argon2_verify(encoded, password):
    """libargon2's own argon2id_verify, independent of our parser."""
    name = ctypes.util.find_library("argon2")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.argon2id_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.argon2id_verify.restype = ctypes.c_int
    pw = password.encode()
    return lib.argon2id_verify(encoded.encode(), pw, len(pw))


class OfflineCase(test_pam.PamCase):
    """A fresh offline_dir per test, and helpers to take the IdP away."""

    def setUp(self):
        super().setUp()
        self.offline_dir = os.path.join(self.env.dir, f"offline-{self.id().rsplit('.', 1)[-1]}")
        shutil.rmtree(self.offline_dir, ignore_errors=True)
        self.addCleanup(self.srv.clear_faults)

    def service(self, args="", **profile):
        profile.setdefault("offline_login", True)
        profile.setdefault("offline_dir", self.offline_dir)
        profile.setdefault("retries", 0)
        return super().service(args, **profile)

    def verifier_path(self, user, profile="default"):
        return os.path.join(self.offline_dir, profile, user)

    def verifier(self, user):
        with open(self.verifier_path(user)) as f:
            return json.load(f)

    def idp_down(self, kind="close", **kw):
        self.srv.clear_faults()
        self.srv.fault("/generic/token", kind, count=-1, **kw)

    def idp_up(self):
        self.srv.clear_faults()

    def login(self, svc, user=A, password=None, ops=("authenticate",), **kw):
        return self.run_pam(svc, user, ops=list(ops), password=password, **kw)


class TestVerifier(OfflineCase):

    def test_written_after_online_login(self):
        svc = self.service()
        before = time.time()
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
        self.assertLogged(r, r"offline verifier stored")
        path = self.verifier_path(A)
        st = os.lstat(path)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_mode & 0o7777, 0o600)
        self.assertEqual(st.st_uid, os.geteuid())
        for d in (self.offline_dir, os.path.dirname(path)):
            self.assertEqual(os.lstat(d).st_mode & 0o7777, 0o700, d)
            self.assertEqual(os.lstat(d).st_uid, os.geteuid(), d)
        with open(path, "rb") as f:
            raw = f.read()
        password = IDP[A][0]
        self.assertNotIn(password.encode(), raw)
        v = json.loads(raw)
        self.assertEqual(v["version"], 1)
        self.assertEqual(v["profile"], "default")
        self.assertEqual(v["user"], A)
        self.assertEqual(v["failures"], 0)
        self.assertLessEqual(before - 1, v["online_at"])
        self.assertLessEqual(v["online_at"], time.time() + 1)
        enc = v["verifier"]
        self.assertTrue(enc.startswith(ARGON2_PREFIX), enc)
        salt, digest = enc[len(ARGON2_PREFIX):].split("$")
        self.assertEqual((len(salt), len(digest)), (22, 43), enc)  # 16 and 32 bytes
        rc = argon2_verify(enc, password)
        if rc is None:
            self.skipTest("libargon2 not found by ctypes")
        self.assertEqual(rc, 0)                              # ARGON2_OK
        self.assertNotEqual(argon2_verify(enc, password + "x"), 0)
        sys.stderr.write(f"\n# verifier: {enc[:len(ARGON2_PREFIX)]}<22 salt>$<43 hash>\n")

    def test_off_by_default(self):
        svc = self.service(offline_login=None)
        self.assertEqual(self.login(svc).exit("pam_sm_authenticate"), "PAM_SUCCESS")
        self.assertFalse(os.path.exists(self.offline_dir))
        self.idp_down()
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)

    def test_new_salt_every_online_login(self):
        svc = self.service()
        self.login(svc)
        first = self.verifier(A)["verifier"]
        self.login(svc)
        self.assertNotEqual(self.verifier(A)["verifier"], first)

    def test_unusable_directory_does_not_fail_online_login(self):
        os.makedirs(self.offline_dir, 0o755)
        os.chmod(self.offline_dir, 0o755)
        svc = self.service()
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
        self.assertLogged(r, r"cannot store the offline verifier.*mode 0755", priority=3)


class TestIdpDown(OfflineCase):

    def test_right_password(self):
        svc = self.service()
        self.login(svc)
        for kind, kw in (("close", {}), ("status", {"status": 503}), ("reset", {})):
            with self.subTest(kind):
                self.idp_down(kind, **kw)
                before = self.total()
                r = self.login(svc, ops=("authenticate", "acct_mgmt"))
                self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
                self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_SUCCESS", r)
                self.assertTrue(r.ok, r)
                self.assertEqual(self.total(), before + 1)     # one attempt, retries=0
                self.assertLogged(r, r"the identity provider is unavailable", priority=3)
                self.assertLogged(r, r"^user \S+ \(as \S+\), profile \[default\]: "
                                     r"authenticated offline: ", priority=5)
                self.assertNotLogged(r, IDP[A][0])

    def test_tls_failure_is_unavailable(self):
        """A certificate the CA file does not vouch for: no request body is
        sent, and the verifier (made for the same token_url) is used."""
        svc = self.service()
        self.login(svc)
        svc = self.service(ca_file="/etc/ssl/certs/ca-certificates.crt")
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
        self.assertLogged(r, r"\(tls\)")
        self.assertLogged(r, r"authenticated offline", priority=5)

    def test_wrong_password_costs_the_fail_delay(self):
        """The default 2 s delay (libpam applies it with some randomness,
        as test_pam's test_fail_delay says), against fail_delay=0."""
        svc = self.service(fail_delay=False)
        self.login(svc)
        self.idp_down()
        r = self.login(svc, password="not-alice-pass")
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertEqual(r.error, "PAM_AUTH_ERR", r)
        self.assertGreater(r.elapsed, 1.0, r)
        self.assertLogged(r, r"authentication failure offline: wrong password "
                             r"\(1 of 5 failed offline attempts", priority=5)
        self.assertEqual(self.verifier(A)["failures"], 1)
        quick = self.login(self.service(), password="not-alice-pass")
        self.assertEqual(quick.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", quick)
        self.assertLess(quick.elapsed, 1.0, quick)
        self.assertEqual(self.verifier(A)["failures"], 2)
        sys.stderr.write(f"\n# wrong offline password: {r.elapsed:.2f} s with the default "
                         f"fail delay, {quick.elapsed:.2f} s with fail_delay=0\n")

    def test_five_wrong_then_refused_until_online(self):
        svc = self.service()
        self.login(svc)
        self.idp_down()
        for i in range(1, 6):
            r = self.login(svc, password=f"guess-{i}")
            self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
            self.assertLogged(r, rf"wrong password \({i} of 5 ")
        self.assertLogged(r, r"offline login is now refused until an online login")
        # The right password now: refused, not even checked.
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertLogged(r, r"offline login refused: 5 failed offline attempts .*"
                             r"the password was not checked", priority=4)
        self.assertEqual(self.verifier(A)["failures"], 5)
        # An online login stores a fresh verifier; offline works again.
        self.idp_up()
        self.assertEqual(self.login(svc).exit("pam_sm_authenticate"), "PAM_SUCCESS")
        self.assertEqual(self.verifier(A)["failures"], 0)
        self.idp_down()
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)

    def test_concurrent_logins_count_every_failure(self):
        """Six logins at once with wrong passwords, and one with the right
        one: the lock serialises them, no count is lost, the file stays
        whole.  (Each pamtester gets its own PAM_WRAPPER_RUNTIME_DIR:
        pam_wrapper's shared /tmp/pam.X races between processes.)"""
        svc = self.service(offline_max_failures=100)
        self.login(svc)
        self.idp_down()
        procs = []
        for i in range(7):
            rt = self.env.path(f"pwrap-{self.id().rsplit('.', 1)[-1]}-{i}")
            os.makedirs(rt, exist_ok=True)
            password = IDP[A][0] if i == 6 else f"wrong-{i}"
            procs.append((i, subprocess.Popen(
                [pamtest.PAMTESTER, "-v", svc, A, "authenticate"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.env.environ(extra={"PAM_WRAPPER_RUNTIME_DIR": rt}))))
            procs[-1][1].stdin.write((password + "\n").encode())
            procs[-1][1].stdin.close()
            procs[-1][1].stdin = None
        for i, p in procs:
            out, err = p.communicate(timeout=120)
            text = (out + err).decode()
            want = "PAM_SUCCESS" if i == 6 else "PAM_AUTH_ERR"
            self.assertIn(f"pam_sm_authenticate: exit ({want})", text, text[-3000:])
        v = self.verifier(A)   # parses
        # The right password may have come at any point: it resets the
        # count, so what is left is the wrong ones after it.
        self.assertLessEqual(v["failures"], 6)
        self.login(svc, password="one more wrong")
        total = self.verifier(A)["failures"]
        self.assertEqual(total, v["failures"] + 1)
        # Without the right one: exactly six counted.
        svc = self.service(offline_max_failures=100)
        self.idp_up()
        self.login(svc)
        self.idp_down()
        procs = []
        for i in range(6):
            rt = self.env.path(f"pwrap2-{self.id().rsplit('.', 1)[-1]}-{i}")
            os.makedirs(rt, exist_ok=True)
            p = subprocess.Popen([pamtest.PAMTESTER, svc, A, "authenticate"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 env=self.env.environ(extra={"PAM_WRAPPER_RUNTIME_DIR": rt}))
            p.stdin.write(f"wrong-{i}\n".encode())
            p.stdin.close()
            p.stdin = None
            procs.append(p)
        for p in procs:
            p.communicate(timeout=120)
        self.assertEqual(self.verifier(A)["failures"], 6)

    def test_offline_success_resets_the_count(self):
        svc = self.service()
        self.login(svc)
        self.idp_down()
        self.login(svc, password="typo")
        self.assertEqual(self.verifier(A)["failures"], 1)
        self.assertEqual(self.login(svc).exit("pam_sm_authenticate"), "PAM_SUCCESS")
        self.assertEqual(self.verifier(A)["failures"], 0)

    def test_expired_is_removed_and_unavailable(self):
        svc = self.service(offline_lifetime="1h")
        self.login(svc)
        # An hour and a second later (the file's clock moved back instead).
        path = self.verifier_path(A)
        v = self.verifier(A)
        v["online_at"] -= 3601
        harness.write_file(path, json.dumps(v), 0o600)
        self.idp_down()
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        self.assertLogged(r, r"offline verifier expired and removed: the last online "
                             r"login was 1h 0m ago \(offline_lifetime 1h 0m\)")
        self.assertFalse(os.path.exists(path))
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        self.assertLogged(r, r"no offline verifier")

    def test_expired_falls_through_the_stack(self):
        """The man page's stack: an expired verifier leaves the login to
        the next module (pam_matrix standing in for pam_unix)."""
        conf = self.env.config(self.profile(offline_login=True, retries=0,
                                            offline_dir=self.offline_dir,
                                            offline_lifetime="1h"))
        db = self.env.path("passdb-offline")
        harness.write_file(db, f"{A}:local-pass:offline-fb\n", 0o600)
        svc = self.env.service("offline-fb", [
            ("auth", "[success=done authinfo_unavail=ignore default=die]", pamtest.module(),
             f"config={conf} minimum_uid=0 fail_delay=0 debug"),
            ("auth", "required", pamtest.wrapper_module("pam_matrix"), f"passdb={db}")])
        self.assertTrue(self.login(svc).ok)
        v = self.verifier(A)
        v["online_at"] -= 7200
        harness.write_file(self.verifier_path(A), json.dumps(v), 0o600)
        self.idp_down()
        r = self.login(svc, password="local-pass")
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        self.assertTrue(r.ok, r)

    def test_no_verifier(self):
        svc = self.service()
        self.idp_down()
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        self.assertLogged(r, r"no offline verifier")

    def test_nonexistent_user_is_never_offline_and_costs_the_same(self):
        """Issue 14.1 while the IdP is down: a nonexistent user keeps the
        decoy request (PAM_AUTHINFO_UNAVAIL, as a local user without a
        verifier gets), no verifier is read or written for it, and it
        spends one Argon2id computation like a wrong offline password, so
        its failure takes as long."""
        svc = self.service()
        self.login(svc)
        self.idp_down()
        times = {"wrong password": [], "no verifier": [], "nonexistent": []}
        for i in range(5):
            for name, user, password, want in (
                    ("wrong password", A, f"Wr0ng-pass-{i}", "PAM_AUTH_ERR"),
                    ("no verifier", B, "Wr0ng-pass-7", "PAM_AUTHINFO_UNAVAIL"),
                    ("nonexistent", test_pam.NO_SUCH_USER, IDP[A][0],
                     "PAM_AUTHINFO_UNAVAIL")):
                r = self.login(svc, user, password)
                self.assertEqual(r.exit("pam_sm_authenticate"), want, (name, r))
                if name != "wrong password":
                    self.assertLogged(r, "no verifier checked; one Argon2id computation")
                if name == "nonexistent":
                    self.assertLogged(r, "is not a local user, and the identity provider "
                                         "is unavailable")
                    self.assertNotLogged(r, "offline verifier")
                    self.assertNotLogged(r, "authenticated offline")
                times[name].append(r.elapsed)
        left = os.listdir(os.path.join(self.offline_dir, "default"))
        self.assertIn(A, left)
        self.assertFalse([n for n in left if test_pam.NO_SUCH_USER in n or n == B], left)
        med = {k: statistics.median(v) for k, v in times.items()}
        sys.stderr.write("\n# IdP down, failure time (median of 5, fail_delay=0): " +
                         ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in med.items()) + "\n")
        # Without the decoy computation the other two would take about one
        # Argon2id check (tens of ms, most of the wrong password's time) less.
        for name in ("no verifier", "nonexistent"):
            self.assertGreater(med[name], 0.7 * med["wrong password"], med)

    def test_other_user_or_profile(self):
        conf = self.env.config({"default": self.profile(offline_login=True, retries=0,
                                                        offline_dir=self.offline_dir),
                                "other": self.profile(offline_login=True, retries=0,
                                                      offline_dir=self.offline_dir)})
        base = f"config={conf} minimum_uid=0 fail_delay=0 debug"
        svc = self.env.oauth_service("offline-default", base, ("auth",))
        other = self.env.oauth_service("offline-other", base + " profile=other", ("auth",))
        self.login(svc)
        self.idp_down()
        # B never logged in; A's verifier is not B's, nor profile other's.
        self.assertEqual(self.login(svc, B, IDP[A][0]).exit("pam_sm_authenticate"),
                         "PAM_AUTHINFO_UNAVAIL")
        self.assertEqual(self.login(other).exit("pam_sm_authenticate"),
                         "PAM_AUTHINFO_UNAVAIL")
        self.assertEqual(self.login(svc).exit("pam_sm_authenticate"), "PAM_SUCCESS")

    def test_rejection_is_never_offline(self):
        """A rejected client is not an outage: no offline login."""
        svc = self.service()
        self.login(svc)
        svc = self.service(client_secret="wrong")
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SERVICE_ERR", r)
        self.assertTrue(os.path.exists(self.verifier_path(A)))


class TestInvalidGrant(OfflineCase):

    def test_password_changed_deletes_the_verifier(self):
        svc = self.service()
        self.login(svc)
        self.assertTrue(os.path.exists(self.verifier_path(A)))
        self.srv.user(A, "a-new-password", IDP[A][1])
        r = self.login(svc)                       # the old password, online
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertLogged(r, r"offline verifier removed: the identity provider rejected "
                             r"the password", priority=5)
        self.assertFalse(os.path.exists(self.verifier_path(A)))
        self.idp_down()
        r = self.login(svc)                       # the old password, offline
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)
        r = self.login(svc, password="a-new-password")
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTHINFO_UNAVAIL", r)


class TestVerifiedTokens(OfflineCase):
    """With verify = jwt, only a login whose token verified stores a
    verifier, and roles_source = token keeps the verified claim's roles."""

    def jwt_service(self, **keys):
        keys = dict(dict(token_url=self.srv.url("/jwt/token"), verify="jwt",
                         issuer=self.srv.jwt_issuer,
                         jwks_cache_dir=os.path.join(self.env.dir, "jwks")), **keys)
        return self.service(**keys)

    def test_forged_token_stores_nothing(self):
        svc = self.jwt_service()
        self.srv.jwt(forge="wrong_key")
        r = self.login(svc)
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_AUTH_ERR", r)
        self.assertLogged(r, r"bad_signature")
        self.assertFalse(os.path.exists(self.verifier_path(A)))

    def test_verified_roles_used_offline(self):
        svc = self.jwt_service(roles_source="token", roles_claim="realm_access.roles",
                               require_roles="admin")
        r = self.login(svc, ops=("authenticate", "acct_mgmt"))
        self.assertTrue(r.ok, r)
        v = self.verifier(A)
        self.assertEqual((v["roles_source"], v["roles_claim"]), ("token", "realm_access.roles"))
        self.assertIn("admin", v["roles"])
        self.srv.fault("/jwt/token", "close", count=-1)
        r = self.login(svc, ops=("authenticate", "acct_mgmt"))
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_SUCCESS", r)
        r = self.login(self.jwt_service(roles_source="token", roles_claim="realm_access.roles",
                                        require_roles="ops"),
                       ops=("authenticate", "acct_mgmt"))
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_PERM_DENIED", r)


class TestAccountAndSession(OfflineCase):

    def test_roles_and_scope_from_the_last_online_login(self):
        self.srv.client("test-client", secret="test-secret", roles_in_response=True)
        keys = dict(require_roles="admin", roles_claim="roles", scope="openid profile",
                    require_scope="profile")
        svc = self.service(**keys)
        for user in (A, B):
            r = self.login(svc, user, ops=("authenticate", "acct_mgmt"))
            self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
        v = self.verifier(A)
        self.assertEqual((v["roles_claim"], v["roles_source"], v["roles"], v["scope"]),
                         ("roles", "response", ["admin", "dev"], "openid profile"))
        self.idp_down()
        r = self.login(svc, A, ops=("authenticate", "acct_mgmt"))
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_SUCCESS", r)
        r = self.login(svc, B, ops=("authenticate", "acct_mgmt"))   # bob: dev only
        self.assertEqual(r.exit("pam_sm_authenticate"), "PAM_SUCCESS", r)
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_PERM_DENIED", r)
        self.assertLogged(r, r'role "admin" is not in "roles"')
        # A scope the last online login was not granted.
        svc2 = self.service(**dict(keys, require_scope="admin"))
        r = self.login(svc2, A, ops=("authenticate", "acct_mgmt"))
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_PERM_DENIED", r)
        self.assertLogged(r, r'scope "admin" was not granted')
        # The profile now reads another claim: the stored roles do not apply.
        svc3 = self.service(**dict(keys, roles_claim="groups"))
        r = self.login(svc3, A, ops=("authenticate", "acct_mgmt"))
        self.assertEqual(r.exit("pam_sm_acct_mgmt"), "PAM_PERM_DENIED", r)
        self.assertLogged(r, r'offline login: the roles stored at the last online login are '
                             r'those of "roles"')

    def test_session_after_offline_login(self):
        """No token to hand over: the session opens, nothing is stored."""
        cache = pamtest.world_dir("pam-oauth-offline-cache-")
        svc = self.service(store_token=False)
        self.login(svc)
        self.idp_down()
        conf = self.env.config(self.profile(offline_login=True, retries=0,
                                            offline_dir=self.offline_dir, store_token=True,
                                            cache_dir=os.path.join(cache, "%u")))
        args = f"config={conf} minimum_uid=0 fail_delay=0 debug"
        svc = self.env.service("offline-session", [
            ("auth", "required", pamtest.module(), args),
            ("session", "required", pamtest.module(), args),
            ("session", "required", "pam_permit.so", "")])
        r = self.login(svc, ops=("authenticate", "open_session", "close_session"))
        self.assertTrue(r.ok, r)
        self.assertEqual(r.exit("pam_sm_open_session"), "PAM_IGNORE", r)
        self.assertLogged(r, r"offline login: there is no token to store")
        self.assertEqual(os.listdir(cache), [])


class TestSentinel(OfflineCase):
    """The password appears in no file, no log line and no core."""

    SENTINEL = "Sentinel-Offline-7f3a9c1e"

    def setUp(self):
        super().setUp()
        self.srv.user(A, self.SENTINEL, IDP[A][1])

    def sweep_files(self, *roots):
        hits = []
        needle = self.SENTINEL.encode()
        for root in roots:
            for path in glob.glob(os.path.join(root, "**"), recursive=True):
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        if needle in f.read():
                            hits.append(path)
        return hits

    def test_files_and_logs(self):
        svc = self.service()
        runs = [self.login(svc, password=self.SENTINEL)]             # online
        self.idp_down()
        runs.append(self.login(svc, password=self.SENTINEL))         # offline, right
        runs.append(self.login(svc, password=self.SENTINEL + "x"))   # offline, wrong
        self.assertEqual([r.exit("pam_sm_authenticate") for r in runs],
                         ["PAM_SUCCESS", "PAM_SUCCESS", "PAM_AUTH_ERR"])
        for r in runs:
            self.assertNotLogged(r, self.SENTINEL)
        self.assertTrue(os.listdir(os.path.join(self.offline_dir, "default")))
        self.assertEqual(self.sweep_files(self.env.dir), [])
        # The sweep finds what is there.
        control = self.env.path("sweep-control")
        harness.write_file(control, "x" + self.SENTINEL + "y")
        self.assertEqual(self.sweep_files(self.env.dir), [control])
        os.unlink(control)

    @unittest.skipUnless(pamtest.is_root(), "gcore needs ptrace rights over pam-loop "
                         "(root here; CI runs as root)")
    @unittest.skipIf(pamtest.SANITIZE, "built with sanitizers: a core would hold ASan's "
                     "terabytes of shadow mappings (the plain build runs this sweep)")
    def test_core_of_a_process_that_logged_in_offline(self):
        loop = os.path.join(harness.build_dir(), "tests", "tools", "pam-loop")
        gcore = shutil.which("gcore")
        if not os.access(loop, os.X_OK):
            self.skipTest(f"{loop} is not built (make test-tools)")
        if gcore is None:
            self.skipTest("gcore is not installed (Debian package gdb)")
        svc = self.service()
        self.assertEqual(self.login(svc, password=self.SENTINEL).exit("pam_sm_authenticate"),
                         "PAM_SUCCESS")
        # Offline through a TLS failure: the password never reaches libcurl
        # or OpenSSL in this process, so what the core holds is the module's.
        offline = self.service(ca_file="/etc/ssl/certs/ca-certificates.crt")
        # A control string the sweep must find, so that it can fail: the
        # environment is in the core.
        control = "Control-" + self.SENTINEL[::-1]
        env = self.env.environ(debuglevel=None, extra={"PO_SWEEP_CONTROL": control})
        cores = []
        for password, code in ((self.SENTINEL, 0), (self.SENTINEL + "x", 7)):
            p = subprocess.Popen([loop, "-n", "3", "-S", "-e", str(code), "-o", "acct",
                                  offline, A], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
            p.stdin.write((password + "\n").encode())
            p.stdin.close()
            p.stdin = None
            line = p.stdout.readline().decode()
            while line and not line.startswith("paused"):
                line = p.stdout.readline().decode()
            try:
                if not line.startswith("paused"):
                    p.wait(60)
                    self.fail("pam-loop did not pause: " + p.stderr.read().decode())
                prefix = self.env.path(f"core-{code}")
                g = subprocess.run([gcore, "-o", prefix, str(p.pid)], capture_output=True,
                                   timeout=120)
                core = f"{prefix}.{p.pid}"
                self.assertTrue(os.path.exists(core), g.stdout.decode() + g.stderr.decode())
                cores.append((core, "right" if code == 0 else "wrong"))
            finally:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGUSR1)
                out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, out.decode() + err.decode())
        for core, which in cores:
            with open(core, "rb") as f:
                data = f.read()
            self.assertIn(control.encode(), data, core)
            self.assertNotIn(self.SENTINEL.encode(), data, core)
            self.assertNotIn(self.SENTINEL.encode("utf-16-le"), data, core)
            sys.stderr.write(f"\n# core of pam-loop after 3 offline logins with the "
                             f"{which} password: {len(data)} bytes, sentinel found "
                             f"{data.count(self.SENTINEL.encode())} times, control string "
                             f"{data.count(control.encode())} times\n")
            os.unlink(core)


class TestMemory(OfflineCase):
    """Offline logins in one process (pam-loop): no memory error or leak
    under valgrind, nor under LeakSanitizer in the sanitizer build."""

    CYCLES = 4

    def loop_args(self):
        loop = os.path.join(harness.build_dir(), "tests", "tools", "pam-loop")
        if not os.access(loop, os.X_OK):
            self.skipTest(f"{loop} is not built (make test-tools)")
        svc = self.service()
        self.assertEqual(self.login(svc).exit("pam_sm_authenticate"), "PAM_SUCCESS")
        self.idp_down()
        return [loop, "-n", str(self.CYCLES), "-o", "acct", self.service(), A]

    @unittest.skipIf(pamtest.SANITIZE, "built with sanitizers: LeakSanitizer covers it")
    def test_valgrind(self):
        valgrind = pamtest.valgrind(self)
        argv = self.loop_args()
        log = self.env.path("valgrind-offline.log")
        env = self.env.environ(debuglevel=None, extra={"PAM_WRAPPER_DISABLE_DEEPBIND": "1"})
        p = subprocess.run([valgrind, "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect",
                            "--error-exitcode=99", f"--log-file={log}"] + argv,
                           input=(IDP[A][0] + "\n").encode(), capture_output=True, env=env,
                           timeout=900)
        with open(log) as f:
            report = f.read()
        summary = [l for l in report.splitlines()
                   if "definitely lost" in l or "ERROR SUMMARY" in l]
        sys.stderr.write(f"\n# valgrind, {self.CYCLES} offline logins:\n" +
                         "".join(f"# {l}\n" for l in summary))
        self.assertEqual(p.returncode, 0, report[-6000:] + p.stderr.decode()[-2000:])
        self.assertIn(f"done {self.CYCLES} cycles, 0 failures", p.stdout.decode())

    @unittest.skipUnless(pamtest.SANITIZE, "only in the sanitizer build")
    def test_leak_sanitizer(self):
        argv = self.loop_args()
        env = self.env.environ(debuglevel=None,
                               extra={"ASAN_OPTIONS": "detect_leaks=1:exitcode=23"})
        p = subprocess.run(argv, input=(IDP[A][0] + "\n").encode(), capture_output=True,
                           env=env, timeout=600)
        err = p.stderr.decode()
        self.assertNotIn("LeakSanitizer", err)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + err[-6000:])
        self.assertIn(f"done {self.CYCLES} cycles, 0 failures", p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
