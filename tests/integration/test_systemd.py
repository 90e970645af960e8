"""The systemd units oauth-token-refresh@.service and .timer.

Units       `make install PREFIX=<tmp>/usr` writes the units with the
            installed helper's path in ExecStart; `systemd-analyze verify`
            on an instance of each must report nothing (it checks the
            directives, that ExecStart is an executable and that the
            Documentation= man pages exist), `systemd-analyze security
            --offline` must rate the service's exposure at most 2.0, and the
            hardening the unit promises is in it.
ExecStart   the service's ExecStart and Environment=, with systemd's
            specifiers (%i, %I, %C) expanded as systemd expands them for
            instance "froomle", run as an unprivileged user (root only; the
            dynamic user's stand-in) against the test authorization server:
            the first run gets a token into the CacheDirectory, a second one
            makes no request while the token is fresh, and one after the
            profile's refresh_interval renews it.  The one difference from
            systemd: $PAM_OAUTH_CONFIG points at the test's configuration
            instead of the system file.
Credentials the recipe client_secret_command = systemd-creds cat NAME with a
            credential directory laid out the way LoadCredential= makes it
            ($CREDENTIALS_DIRECTORY, a 0400 file owned by the service user):
            the secret reaches the token endpoint; without the credential the
            run fails, says which command failed, and sends no request.
"""
import os
import re
import shutil
import stat
import subprocess
import textwrap
import time
import unittest

import harness
import pamtest

SRV = harness.server()
UNIT = "oauth-token-refresh@"
NEEDED = ("systemd-analyze", "systemd-creds")
missing = [t for t in NEEDED if shutil.which(t) is None]


def parse_unit(path):
    """{section: [(key, value), ...]} of a unit file (no line continuations
    are used in ours)."""
    sections, current = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], [])
                continue
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def values(sections, section, key):
    return [v for k, v in sections.get(section, []) if k == key]


def expand(text, instance, cache_root):
    """systemd's specifiers that our units use (systemd.unit(5))."""
    out, i = [], 0
    table = {"i": instance, "I": instance, "C": cache_root, "%": "%"}
    while i < len(text):
        if text[i] == "%" and i + 1 < len(text):
            spec = text[i + 1]
            if spec not in table:
                raise AssertionError(f"specifier %{spec} in {text!r}: the test does not know it")
            out.append(table[spec])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@unittest.skipIf(missing, f"missing {', '.join(missing)} (package systemd)")
class Units(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = harness.tmpdir()
        os.chmod(cls.root, 0o755)
        cls.prefix = os.path.join(cls.root, "usr")
        # PREFIX=<tmp>/usr (not DESTDIR): ExecStart then names a file that
        # exists, which systemd-analyze verify checks.
        argv = ["make", "--no-print-directory", "-C", harness.REPO_ROOT, "install",
                f"PREFIX={cls.prefix}", "SANITIZE=" + os.environ.get("PO_SANITIZE", "0")]
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError("make install failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")
        cls.service = os.path.join(cls.unitdir, UNIT + ".service")
        cls.timer = os.path.join(cls.unitdir, UNIT + ".timer")
        # instances, as `systemctl enable oauth-token-refresh@froomle.timer` names them
        cls.vdir = os.path.join(cls.root, "verify")
        os.mkdir(cls.vdir)
        for kind in ("service", "timer"):
            os.symlink(os.path.join(cls.unitdir, f"{UNIT}.{kind}"),
                       os.path.join(cls.vdir, f"{UNIT}froomle.{kind}"))
        cls.env = dict(os.environ, MANPATH=os.path.join(cls.prefix, "share", "man"),
                       SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")

    def test_installed(self):
        for path in (self.service, self.timer):
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644, path)
        unit = parse_unit(self.service)
        self.assertEqual(values(unit, "Service", "ExecStart"),
                         [f"{self.prefix}/bin/oauth-token --profile=%i refresh --if-due"])

    def test_systemd_analyze_verify(self):
        """systemd-analyze verify: exit 0 and not a word of complaint."""
        p = subprocess.run(["systemd-analyze", "verify",
                            os.path.join(self.vdir, f"{UNIT}froomle.service"),
                            os.path.join(self.vdir, f"{UNIT}froomle.timer")],
                           env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_verify_catches_a_broken_unit(self):
        """The same check on a copy with a typo and a missing binary fails,
        so the check above can fail."""
        broken = os.path.join(self.root, f"{UNIT}broken.service")
        with open(self.service) as f:
            text = f.read()
        text = text.replace("ProtectSystem=strict", "ProtectSystem=strikt")
        text = text.replace(f"{self.prefix}/bin/oauth-token", f"{self.prefix}/bin/no-such-helper")
        harness.write_file(broken, text, 0o644)
        p = subprocess.run(["systemd-analyze", "verify", broken], env=self.env,
                           capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such-helper", p.stderr)
        self.assertIn("strikt", p.stderr)

    def test_security_exposure(self):
        """systemd-analyze security rates the service 2.0 or better ("OK")."""
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                            os.path.join(self.vdir, f"{UNIT}froomle.service")],
                           env=self.env, capture_output=True, text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        print(f"# systemd-analyze security: exposure {m.group(1)} for {UNIT}froomle.service")
        self.assertLessEqual(float(m.group(1)), 2.0, p.stdout)

    def test_hardening(self):
        unit = parse_unit(self.service)
        want = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                "ProtectHome": "yes", "PrivateTmp": "yes", "CacheDirectory": "oauth-token/%i",
                "CacheDirectoryMode": "0700", "UMask": "0077", "CapabilityBoundingSet": "",
                "Type": "oneshot"}
        got = {k: values(unit, "Service", k) for k in want}
        self.assertEqual(got, {k: [v] for k, v in want.items()})
        self.assertIn("OAUTH_TOKEN_CACHE_DIR=%C/oauth-token/%i",
                      values(unit, "Service", "Environment"))
        self.assertIn("network-online.target", values(unit, "Unit", "After"))
        timer = parse_unit(self.timer)
        self.assertEqual(values(timer, "Install", "WantedBy"), ["timers.target"])
        self.assertEqual(values(timer, "Timer", "OnUnitActiveSec"), ["1min"])


@unittest.skipIf(missing, f"missing {', '.join(missing)} (package systemd)")
class ExecStart(unittest.TestCase):
    """The service's command run the way systemd would run it."""

    @classmethod
    def setUpClass(cls):
        cls.unit = parse_unit(os.path.join(harness.REPO_ROOT, "systemd", UNIT + ".service.in"))
        cls.user = pamtest.LocalUser("po-systemd") if os.geteuid() == 0 else None

    def setUp(self):
        SRV.reset()
        self.work = pamtest.world_dir("pam-oauth-systemd-") if self.user else harness.tmpdir()
        # /var/cache as systemd's %C, with the CacheDirectory= it creates
        self.cache_root = os.path.join(self.work, "var-cache")
        cache = os.path.join(self.cache_root, "oauth-token", "froomle")
        os.makedirs(cache, 0o700)
        os.chmod(cache, 0o700)
        if self.user:
            os.chown(cache, self.user.uid, self.user.gid)
        self.cache = cache
        # the user cannot read the server's 0700 directory: a copy of its CA
        self.ca_file = os.path.join(self.work, "ca.pem")
        shutil.copyfile(SRV.ca_file, self.ca_file)
        os.chmod(self.ca_file, 0o644)

    def config(self, secret_line):
        text = textwrap.dedent(f"""\
            [froomle]
            token_url = {SRV.url("/froomle/oauth/token")}
            client_id = froomle-client
            client_auth = post
            body = json
            refresh_interval = 2
            retries = 0
            ca_file = {self.ca_file}
            """) + secret_line + "\n"
        # Readable by the service's user, as the system file is: no secret in it.
        path = harness.write_file(os.path.join(self.work, "pam-oauth.conf"), text, 0o644)
        return path

    def exec_start(self, config, extra_env=None):
        """Run ExecStart with the unit's Environment=; (rc, stdout, stderr)."""
        (line,) = values(self.unit, "Service", "ExecStart")
        argv = expand(line, "froomle", self.cache_root).split()
        self.assertEqual(argv[0], "@BINDIR@/oauth-token")
        argv[0] = harness.staged_helper() if self.user else os.path.join(
            harness.build_dir(), "curl_helper", "oauth-token")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "PAM_OAUTH_CONFIG": config}
        for assignment in values(self.unit, "Service", "Environment"):
            key, _, value = expand(assignment, "froomle", self.cache_root).partition("=")
            env[key] = value
        env.update(extra_env or {})
        if self.user:
            env.update(HOME="/", USER=self.user.name)
            p = self.user.run(argv, env, text=True, timeout=60)
        else:
            p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_renews_when_due_only(self):
        config = self.config("client_secret_command = echo froomle-secret")
        rc, out, err = self.exec_start(config)
        self.assertEqual((rc, out), (0, ""), err)
        entry = os.path.join(self.cache, "froomle.json")
        self.assertTrue(os.path.isfile(entry), os.listdir(self.cache))
        self.assertEqual(stat.S_IMODE(os.stat(entry).st_mode), 0o600)
        if self.user:
            self.assertEqual(os.stat(entry).st_uid, self.user.uid)
        self.assertEqual(SRV.stats()["token_requests"], {"froomle-client": 1})
        # the next timer run, within refresh_interval: nothing to do
        rc, out, err = self.exec_start(config)
        self.assertEqual((rc, out, err), (0, "", ""))
        self.assertEqual(SRV.stats()["token_requests"], {"froomle-client": 1})
        # after refresh_interval (2 s): renewed
        time.sleep(2.2)
        rc, out, err = self.exec_start(config)
        self.assertEqual((rc, out, err), (0, "", ""))
        self.assertEqual(SRV.stats()["token_requests"], {"froomle-client": 2})

    def credentials(self, name, secret):
        """A credential directory as LoadCredential= lays it out."""
        d = os.path.join(self.work, "credentials")
        os.mkdir(d, 0o700)
        path = harness.write_file(os.path.join(d, name), secret + "\n", 0o400)
        if self.user:
            os.chown(path, self.user.uid, self.user.gid)
            os.chown(d, self.user.uid, self.user.gid)
        return d

    def test_client_secret_from_systemd_creds(self):
        config = self.config("client_secret_command = systemd-creds cat froomle-secret")
        creds = self.credentials("froomle-secret", "froomle-secret")
        rc, out, err = self.exec_start(config, {"CREDENTIALS_DIRECTORY": creds})
        self.assertEqual((rc, out, err), (0, "", ""))
        self.assertEqual(SRV.stats()["token_requests"], {"froomle-client": 1})
        last = SRV.stats()["last_requests"][-1]
        self.assertIn('"client_secret": "froomle-secret"', last["body"].replace('":"', '": "'))

    def test_missing_credential_fails_before_any_request(self):
        config = self.config("client_secret_command = systemd-creds cat froomle-secret")
        rc, out, err = self.exec_start(config)
        self.assertNotEqual(rc, 0)
        self.assertIn("client_secret_command", err)
        self.assertNotIn("froomle-secret\n", err)
        self.assertEqual(SRV.stats()["total"], 0)
        self.assertFalse(os.path.exists(os.path.join(self.cache, "froomle.json")))


if __name__ == "__main__":
    unittest.main()
