"""The Debian and RPM packages, built from this working tree.

DebianPackages    packaging/build-deb builds libpam-oauth and oauth-token;
                  their contents, modes, dependencies, PAM profile and
                  maintainer scripts are checked and lintian must report no
                  error.
InstalledDebian   (root only) installs both with dpkg -i on this machine,
                  logs in through the INSTALLED module with pamtester via
                  libpam-wrapper (a private PAM service directory: /etc/pam.d
                  is never used), checks that the PAM profile stacked as
                  pam-auth-update writes it lets local passwords through when
                  the identity provider is down, runs the installed
                  oauth-token, then purges both and checks that /etc/pam.d
                  and /var/lib/pam are exactly as they were.
RpmPackages       packaging/build-rpm builds the RPMs; rpm -qlp must list the
                  module and the helper.

The builds run once per process and are shared by the tests.
"""
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import textwrap
import time
import unittest

import harness

ROOT = harness.REPO_ROOT
PACKAGES = ("libpam-oauth", "oauth-token")
BUILD_TIMEOUT = 600
# What tests/debian-packages must list for this module.
TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper", "lintian": "lintian",
         "rpmbuild": "rpm", "pamtester": "pamtester"}
PAM_WRAPPER = "libpam_wrapper.so"
# The packages build their own binaries, without sanitizers: building and
# installing them again in `make check SANITIZE=1` would test nothing new.
SANITIZE = os.environ.get("PO_SANITIZE", "0") == "1"
SANITIZE_REASON = "packages are built without sanitizers: checked by the plain `make check`"


def makefile_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)


def multiarch():
    try:
        return subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "x86_64-linux-gnu"


def pam_dir():
    p = subprocess.run(["pkg-config", "--variable=libdir", "pam"], capture_output=True, text=True)
    return (p.stdout.strip() or "/lib") + "/security"


def missing_tools(*tools):
    return [f"{t} (package {TOOLS[t]})" for t in tools if shutil.which(t) is None]


def clean_env():
    """The environment for the builds: no jobserver of an outer make, and
    no test-only variables."""
    env = dict(os.environ)
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CFLAGS", "LDFLAGS",
                "CPPFLAGS", "LD_PRELOAD"):
        env.pop(var, None)
    return env


_builds = {}


def dpkg(*args, timeout=300):
    """dpkg ARGS; while another process (an apt-get elsewhere on the
    machine) holds dpkg's lock, wait for it, up to two minutes."""
    deadline = time.monotonic() + 120
    while True:
        p = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=timeout,
                           env=dict(clean_env(), DEBIAN_FRONTEND="noninteractive"))
        if p.returncode == 0 or "lock" not in p.stderr or time.monotonic() > deadline:
            return p
        time.sleep(2)


def build(kind):
    """Run packaging/build-<kind> once per process into a temporary
    directory; returns {file name: path}.  Raises AssertionError with the
    log's tail when the build failed (every later call raises it again)."""
    if kind not in _builds:
        out = os.path.join(harness.tmpdir(), kind)
        script = os.path.join(ROOT, "packaging", "build-" + kind)
        try:
            p = subprocess.run([script, out], env=clean_env(), capture_output=True, text=True,
                               timeout=BUILD_TIMEOUT)
            if p.returncode != 0:
                _builds[kind] = AssertionError(
                    f"packaging/build-{kind} failed (exit {p.returncode}):\n"
                    + p.stderr[-6000:] + p.stdout[-2000:])
            else:
                _builds[kind] = {os.path.basename(l): l for l in p.stdout.split() if l}
        except subprocess.TimeoutExpired:
            _builds[kind] = AssertionError(f"packaging/build-{kind}: no result in {BUILD_TIMEOUT} s")
    result = _builds[kind]
    if isinstance(result, Exception):
        raise result
    return result


def deb(name):
    """The path of binary package name's .deb."""
    files = build("deb")
    version = makefile_version()
    matches = [p for f, p in files.items() if re.match(rf"^{re.escape(name)}_{re.escape(version)}_\w+\.deb$", f)]
    if len(matches) != 1:
        raise AssertionError(f"no single {name}_{version}_*.deb among {sorted(files)}")
    return matches[0]


def deb_listing(path):
    """{path: (mode string, link target or None)} from dpkg-deb -c."""
    out = subprocess.run(["dpkg-deb", "-c", path], check=True, capture_output=True,
                         text=True).stdout
    listing = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        mode, name = fields[0], fields[5]
        target = None
        if " -> " in name:
            name, target = name.split(" -> ", 1)
        listing[name[1:].rstrip("/") or "/"] = (mode, target)
    return listing


def deb_field(path, field):
    return subprocess.run(["dpkg-deb", "-f", path, field], check=True, capture_output=True,
                          text=True).stdout.strip()


def extract(path):
    """dpkg-deb -x and -e into a temporary directory; returns it."""
    d = tempfile.mkdtemp(dir=harness.tmpdir())
    subprocess.run(["dpkg-deb", "-x", path, d], check=True)
    subprocess.run(["dpkg-deb", "-e", path, os.path.join(d, "DEBIAN")], check=True)
    return d


def parse_pam_config(text):
    """A pam-auth-update profile: {field: value}, multi-line values joined
    with newlines, leading whitespace of continuation lines removed."""
    fields, key = {}, None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] = (fields[key] + "\n" + line.strip()).strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def pam_line(text):
    """(control, module, [arguments]) of a PAM stack line; the control may
    be a bracketed list with spaces."""
    m = re.match(r"^\s*(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$", text)
    if not m:
        raise AssertionError(f"not a PAM line: {text!r}")
    return m.group(1), m.group(2), m.group(3).split()


def installed(package):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return p.returncode == 0 and "installed" in p.stdout.split()[-1:]


def snapshot(*dirs):
    """{path: content or None (directory) or ('->', target)} of dirs."""
    state = {}
    for top in dirs:
        if not os.path.exists(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            state[dirpath] = None
            for name in filenames + dirnames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    state[path] = ("->", os.readlink(path))
                elif os.path.isfile(path):
                    with open(path, "rb") as f:
                        state[path] = f.read()
    return state


def free_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipIf(SANITIZE, SANITIZE_REASON)
class DebianPackages(unittest.TestCase):
    """The .deb files themselves."""

    @classmethod
    def setUpClass(cls):
        missing = missing_tools("dpkg-buildpackage", "dh", "lintian")
        if missing:
            raise AssertionError("missing: " + ", ".join(missing)
                                 + "; they must be in tests/debian-packages")

    def test_libpam_oauth_contents(self):
        """libpam-oauth: the module, its man page, the example, /etc/pam-oauth,
        the pam-auth-update profile; nothing else, no secret."""
        listing = deb_listing(deb("libpam-oauth"))
        module = f"{pam_dir()}/pam_oauth.so"
        want = {
            module: "-rw-r--r--",
            "/usr/share/man/man8/pam_oauth.8.gz": "-rw-r--r--",
            "/usr/share/doc/libpam-oauth/examples/pam-oauth.conf": "-rw-r--r--",
            "/usr/share/pam-configs/oauth": "-rw-r--r--",
            "/usr/share/doc/libpam-oauth/copyright": "-rw-r--r--",
            "/usr/share/doc/libpam-oauth/changelog.gz": "-rw-r--r--",
            "/etc/pam-oauth": "drwxr-xr-x",
        }
        self.assertEqual({path: listing.get(path, ("missing",))[0] for path in want}, want)
        etc = [p for p in listing if p.startswith("/etc/")]
        self.assertEqual(etc, ["/etc/pam-oauth"], "only the empty /etc/pam-oauth directory may ship in /etc")
        files = {p for p, (mode, _) in listing.items() if not mode.startswith("d")}
        self.assertEqual(files - set(want), set(), "unexpected files in libpam-oauth")

    def test_oauth_token_contents(self):
        """oauth-token: the helper, its git symlink, the two man pages, the
        systemd units and the bash and zsh completions where Debian's
        systemd, bash-completion and zsh look."""
        listing = deb_listing(deb("oauth-token"))
        want = {
            "/usr/bin/oauth-token": "-rwxr-xr-x",
            "/lib/systemd/system/oauth-token-refresh@.service": "-rw-r--r--",
            "/lib/systemd/system/oauth-token-refresh@.timer": "-rw-r--r--",
            "/usr/share/bash-completion/completions/oauth-token": "-rw-r--r--",
            "/usr/share/zsh/vendor-completions/_oauth-token": "-rw-r--r--",
            "/usr/share/man/man1/oauth-token.1.gz": "-rw-r--r--",
            "/usr/share/man/man5/pam-oauth.conf.5.gz": "-rw-r--r--",
            "/usr/share/doc/oauth-token/copyright": "-rw-r--r--",
            "/usr/share/doc/oauth-token/changelog.gz": "-rw-r--r--",
        }
        self.assertEqual({path: listing.get(path, ("missing",))[0] for path in want}, want)
        links = {"/usr/bin/git-credential-oauth-token": "oauth-token",
                 "/usr/bin/docker-credential-oauth-token": "oauth-token",
                 "/usr/share/man/man1/git-credential-oauth-token.1.gz": "oauth-token.1.gz",
                 "/usr/share/man/man1/docker-credential-oauth-token.1.gz": "oauth-token.1.gz"}
        self.assertEqual({path: listing.get(path, ("missing", None))[1] for path in links}, links)
        for path in links:
            self.assertTrue(listing[path][0].startswith("l"), f"{path}: {listing[path]}")
        files = {p for p, (mode, _) in listing.items() if not mode.startswith("d")}
        self.assertEqual(files - set(want) - set(links), set(), "unexpected files in oauth-token")
        self.assertFalse([p for p in listing if p.startswith("/etc")], "oauth-token ships nothing in /etc")

    def test_control_fields(self):
        """Version from the Makefile; libcurl4 named (dlopen'd), the rest
        from shlibs."""
        for name in PACKAGES:
            path = deb(name)
            self.assertEqual(deb_field(path, "Version"), makefile_version(), name)
            depends = [d.strip().split()[0] for d in deb_field(path, "Depends").split(",")]
            self.assertIn("libcurl4", depends, name)
            self.assertIn("libc6", depends, f"{name}: shlibs:Depends not filled in")
            self.assertTrue(any(d.startswith("libjson-c") for d in depends), f"{name}: {depends}")
        depends = deb_field(deb("libpam-oauth"), "Depends")
        self.assertIn("libpam0g", depends)
        self.assertIn("libpam-runtime", depends)

    def test_pam_auth_update_profile(self):
        """Off by default, before pam_unix, and any failure falls through."""
        d = extract(deb("libpam-oauth"))
        with open(os.path.join(d, "usr/share/pam-configs/oauth")) as f:
            profile = parse_pam_config(f.read())
        self.assertEqual(profile.get("Default"), "no")
        self.assertEqual(profile.get("Auth-Type"), "Primary")
        unix_priority = 256
        if os.path.exists("/usr/share/pam-configs/unix"):
            with open("/usr/share/pam-configs/unix") as f:
                unix_priority = int(parse_pam_config(f.read())["Priority"])
        self.assertGreater(int(profile["Priority"]), unix_priority,
                           "pam_oauth must come before pam_unix")
        for field in ("Auth", "Auth-Initial"):
            control, module, _ = pam_line(profile[field])
            self.assertEqual(module, "pam_oauth.so", field)
            for action in ("success=end", "default=ignore", "authinfo_unavail=ignore"):
                self.assertIn(action, control, field)
        self.assertIn("try_first_pass", profile["Auth"])

    def test_maintainer_scripts(self):
        """postinst registers the profile, prerm removes it on remove only."""
        d = os.path.join(extract(deb("libpam-oauth")), "DEBIAN")
        with open(os.path.join(d, "postinst")) as f:
            self.assertIn("pam-auth-update --package", f.read())
        with open(os.path.join(d, "prerm")) as f:
            prerm = f.read()
        self.assertRegex(prerm, r'if \[ "\$1" = "remove" \]; then\s+pam-auth-update --package --remove oauth')
        with open(os.path.join(d, "postrm")) as f:
            self.assertRegex(f.read(), r'if \[ "\$1" = "purge" \]; then\s+'
                                       r'rm -rf /var/lib/pam-oauth/offline')

    def test_lintian_no_errors(self):
        """lintian: no E: line (warnings are allowed)."""
        files = build("deb")
        debs = [p for f, p in files.items() if f.endswith(".deb")]
        p = subprocess.run(["lintian", "--no-tag-display-limit", *sorted(debs)],
                           capture_output=True, text=True, timeout=600)
        errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], "lintian errors:\n" + p.stdout)
        self.assertIn(p.returncode, (0, 1, 2), p.stderr)


@unittest.skipIf(SANITIZE, SANITIZE_REASON)
@unittest.skipUnless(os.geteuid() == 0, "installing packages with dpkg -i needs root")
class InstalledDebian(unittest.TestCase):
    """The packages installed on this machine, then purged."""

    @classmethod
    def setUpClass(cls):
        already = [p for p in PACKAGES if installed(p)]
        if already:
            raise unittest.SkipTest(f"{', '.join(already)} already installed on this machine: "
                                    "not touching it (dpkg --purge it to run these tests)")
        missing = missing_tools("pamtester")
        if missing:
            raise AssertionError("missing: " + ", ".join(missing))
        cls.module = f"{pam_dir()}/pam_oauth.so"
        cls.etc_existed = os.path.exists("/etc/pam-oauth")
        cls.var_existed = os.path.exists("/var/lib/pam-oauth")
        cls.before = snapshot("/etc/pam.d", "/var/lib/pam")
        debs = [deb(p) for p in PACKAGES]
        cls.addClassCleanup(cls.purge_quietly)
        p = dpkg("-i", *debs)
        if p.returncode != 0:
            raise AssertionError("dpkg -i failed:\n" + p.stdout + p.stderr)
        cls.user = pwd.getpwuid(os.getuid()).pw_name
        cls.srv = harness.server()
        cls.password = "pkg-test-pass"
        cls.srv.user(cls.user, cls.password)

    @classmethod
    def purge_quietly(cls):
        left = [p for p in PACKAGES if installed(p) or subprocess.run(
            ["dpkg-query", "-W", p], capture_output=True).returncode == 0]
        if left:
            subprocess.run(["dpkg", "--purge", *left], capture_output=True,
                           env=dict(clean_env(), DEBIAN_FRONTEND="noninteractive"))

    def config(self, **extra):
        """A 0600 configuration with profile "up" (the test server) and
        profile "down" (a closed port); returns (path, cache_dir)."""
        work = harness.tmpdir()
        cache = os.path.join(work, "cache")
        path = os.path.join(work, "pam-oauth.conf")
        common = textwrap.dedent(f"""\
            grant = password
            client_id = test-client
            client_secret = test-secret
            ca_file = {self.srv.ca_file}
            minimum_uid = 0
            store_token = yes
            cache_dir = {cache}
            retries = 0
            timeout = 5s
            """)
        harness.write_file(path, f"[up]\ntoken_url = {self.srv.url('/generic/token')}\n{common}\n"
                                 f"[down]\ntoken_url = https://127.0.0.1:{free_port()}/generic/token\n"
                                 f"{common}")
        return path, cache

    def pamtester(self, service_text, password, *ops):
        """pamtester SERVICE USER OPS... through pam_wrapper with the given
        service file; returns (exit status, output)."""
        d = harness.tmpdir()
        harness.write_file(os.path.join(d, "test"), service_text, 0o644)
        harness.write_file(os.path.join(d, "other"), "auth required pam_deny.so\n"
                           "account required pam_deny.so\nsession required pam_deny.so\n", 0o644)
        env = dict(clean_env(), LD_PRELOAD=PAM_WRAPPER, PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=d, PAM_WRAPPER_DEBUGLEVEL="2")
        p = subprocess.run(["pamtester", "-v", "test", self.user, *(ops or ("authenticate",))],
                           input=password + "\n", env=env, capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout + p.stderr

    def test_1_installed_files(self):
        """dpkg put the module where PAM looks, the helper on PATH, an empty
        /etc/pam-oauth, and left /etc/pam.d alone (the profile is off)."""
        owned = subprocess.run(["dpkg", "-L", "libpam-oauth"], check=True, capture_output=True,
                               text=True).stdout.split()
        self.assertIn(self.module, owned)
        st = os.stat(self.module)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        self.assertEqual(os.stat("/usr/bin/oauth-token").st_mode & 0o777, 0o755)
        self.assertEqual(os.readlink("/usr/bin/git-credential-oauth-token"), "oauth-token")
        self.assertTrue(os.path.isdir("/etc/pam-oauth"))
        self.assertEqual(stat.S_IMODE(os.stat("/etc/pam-oauth").st_mode), 0o755)
        now = snapshot("/etc/pam.d")
        self.assertEqual(now, {k: v for k, v in self.before.items() if k.startswith("/etc/pam.d")},
                         "installing changed /etc/pam.d: the profile must be off by default")
        # the man pages are where man finds them
        p = subprocess.run(["man", "-w", "8", "pam_oauth"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_2_login_through_installed_module(self):
        """pamtester logs in through the installed pam_oauth.so: right
        password accepted and the token stored, wrong password refused."""
        config, cache = self.config()
        service = (f"auth required {self.module} config={config} profile=up fail_delay=0\n"
                   "account required pam_permit.so\n"
                   f"session optional {self.module} config={config} profile=up\n")
        before = self.srv.stats()["by_grant"].get("password", 0)
        rc, out = self.pamtester(service, self.password, "authenticate", "open_session")
        self.assertEqual(rc, 0, out)
        self.assertGreater(self.srv.stats()["by_grant"].get("password", 0), before,
                           "no password grant reached the server")
        entry = os.path.join(cache, "up.json")
        self.assertTrue(os.path.exists(entry), f"no token stored in {cache}: {out}")
        self.assertEqual(stat.S_IMODE(os.stat(entry).st_mode), 0o600)
        rc, out = self.pamtester(service, "wrong-password")
        self.assertNotEqual(rc, 0, "a wrong password was accepted:\n" + out)

    def test_3_profile_falls_through_to_unix_when_idp_down(self):
        """The installed pam-auth-update profile, stacked the way
        pam-auth-update writes common-auth, with pam_exec standing in for
        pam_unix (whose password for this user we cannot know) and, like
        pam_unix try_first_pass, reusing the password typed for pam_oauth:
        the IdP password works while the IdP is up, the local password
        always (IdP down included), nothing else."""
        with open("/usr/share/pam-configs/oauth") as f:
            profile = parse_pam_config(f.read())
        control, module, args = pam_line(profile["Auth-Initial"])
        self.assertEqual(module, "pam_oauth.so")
        # pam-auth-update: success=end becomes a jump over the remaining
        # primary modules (here pam_unix) to pam_permit.
        control = control.replace("success=end", "success=2")
        config, _ = self.config()
        work = harness.tmpdir()
        # pam_exec expose_authtok: PAM_AUTHTOK (NUL-terminated) on stdin,
        # or a prompt when no module set it.
        local_unix = harness.write_file(os.path.join(work, "local-unix"), textwrap.dedent("""\
            #!/bin/sh
            pw=$(tr -d '\\000')
            [ "$pw" = local-pass ]
            """), 0o755)

        def stack(which):
            return (f"auth {control} {self.module} {' '.join(args)} config={config} "
                    f"profile={which} fail_delay=0\n"
                    f"auth [success=1 default=ignore] pam_exec.so quiet expose_authtok {local_unix}\n"
                    "auth requisite pam_deny.so\n"
                    "auth required pam_permit.so\n")

        cases = [("up", self.password, 0), ("up", "local-pass", 0), ("up", "nothing", 1),
                 ("down", "local-pass", 0), ("down", self.password, 1), ("down", "nothing", 1)]
        wrong = []
        for which, password, want in cases:
            rc, out = self.pamtester(stack(which), password)
            if (rc == 0) != (want == 0):
                wrong.append(f"IdP {which}, password {password!r}: pamtester exit {rc}, "
                             f"want {'success' if want == 0 else 'failure'}\n{out}")
            elif out.count("Password:") != 1:
                wrong.append(f"IdP {which}, password {password!r}: asked for the password "
                             f"{out.count('Password:')} times, want once\n{out}")
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_4_installed_helper(self):
        """/usr/bin/oauth-token gets a token the resource server accepts."""
        p = subprocess.run(["/usr/bin/oauth-token", "--version"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(makefile_version(), p.stdout)
        work = harness.tmpdir()
        config = harness.write_file(os.path.join(work, "pam-oauth.conf"), textwrap.dedent(f"""\
            [cc]
            token_url = {self.srv.url('/generic/token')}
            client_id = test-client
            client_secret = test-secret
            ca_file = {self.srv.ca_file}
            cache_dir = {work}/cache
            """))
        p = subprocess.run(["/usr/bin/oauth-token", "-c", config, "-p", "cc"], env=clean_env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        token = p.stdout.strip()
        self.assertTrue(token)
        import urllib.request
        req = urllib.request.Request(self.srv.url("/api/resource"),
                                     headers={"Authorization": "Bearer " + token})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self.srv.ssl_context()))
        with opener.open(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
        # the git credential helper name runs the same binary
        # so does the docker credential helper's, which docker finds on PATH
        p = subprocess.run(["/usr/bin/docker-credential-oauth-token", "version"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("docker-credential-oauth-token (pam-oauth)", p.stdout)
        p = subprocess.run(["/usr/bin/git-credential-oauth-token", "--help"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_5_installed_units_and_completion(self):
        """The installed units pass systemd-analyze verify (ExecStart is the
        installed /usr/bin/oauth-token, the man pages are installed), and
        bash finds the completion where bash-completion loads it from."""
        if shutil.which("systemd-analyze") is None:
            self.fail("systemd-analyze missing (package systemd, in tests/debian-packages)")
        work = harness.tmpdir()
        for kind in ("service", "timer"):
            os.symlink(f"/lib/systemd/system/oauth-token-refresh@.{kind}",
                       os.path.join(work, f"oauth-token-refresh@pkgtest.{kind}"))
        p = subprocess.run(["systemd-analyze", "verify",
                            os.path.join(work, "oauth-token-refresh@pkgtest.service"),
                            os.path.join(work, "oauth-token-refresh@pkgtest.timer")],
                           capture_output=True, text=True, timeout=120,
                           env=dict(clean_env(), SYSTEMD_LOG_COLOR="0"))
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))
        with open("/lib/systemd/system/oauth-token-refresh@.service") as f:
            self.assertIn("\nExecStart=/usr/bin/oauth-token --profile=%i refresh --if-due\n",
                          f.read())
        if os.path.exists("/usr/share/bash-completion/bash_completion"):
            p = subprocess.run(["bash", "--norc", "-c",
                                "source /usr/share/bash-completion/bash_completion; "
                                "_completion_loader oauth-token; complete -p oauth-token"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.stdout.strip(), "complete -F _oauth_token oauth-token",
                             p.stderr)

    def test_9_purge(self):
        """dpkg --purge leaves /etc/pam.d and /var/lib/pam as they were, and
        takes the offline verifiers away."""
        if not self.var_existed:
            # what pam_oauth leaves after an online login with offline_login
            os.makedirs("/var/lib/pam-oauth/offline/default", 0o700)
            with open("/var/lib/pam-oauth/offline/default/someone", "w") as f:
                f.write("{}")
        p = dpkg("--purge", *PACKAGES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for name in PACKAGES:
            self.assertFalse(installed(name), f"{name} still installed")
        for path in (self.module, "/usr/bin/oauth-token", "/usr/bin/git-credential-oauth-token",
                     "/usr/bin/docker-credential-oauth-token", "/usr/share/pam-configs/oauth",
                     "/lib/systemd/system/oauth-token-refresh@.service",
                     "/usr/share/bash-completion/completions/oauth-token"):
            self.assertFalse(os.path.lexists(path), f"{path} left behind")
        if not self.etc_existed:
            self.assertFalse(os.path.exists("/etc/pam-oauth"), "/etc/pam-oauth left behind")
        if not self.var_existed:
            self.assertFalse(os.path.exists("/var/lib/pam-oauth"),
                             "/var/lib/pam-oauth (offline verifiers) left behind")
        self.assertEqual(snapshot("/etc/pam.d", "/var/lib/pam"), self.before,
                         "the PAM configuration differs from before the installation")


@unittest.skipIf(SANITIZE, SANITIZE_REASON)
class RpmPackages(unittest.TestCase):
    """packaging/build-rpm with Debian's rpmbuild."""

    @classmethod
    def setUpClass(cls):
        missing = missing_tools("rpmbuild")
        if missing:
            raise AssertionError("missing: " + ", ".join(missing)
                                 + "; it must be in tests/debian-packages")

    def rpm(self, name):
        files = build("rpm")
        matches = [p for f, p in files.items()
                   if re.match(rf"^{re.escape(name)}-{re.escape(makefile_version())}-[^-]+\.\w+\.rpm$", f)]
        self.assertEqual(len(matches), 1, f"no single {name} RPM among {sorted(files)}")
        return matches[0]

    def query(self, path, *what):
        return subprocess.run(["rpm", "-qp", *what, path], check=True, capture_output=True,
                              text=True).stdout.split("\n")

    def test_pam_oauth_rpm(self):
        files = self.query(self.rpm("pam-oauth"), "-l")
        libdir = subprocess.run(["rpm", "--eval", "%{_libdir}"], capture_output=True,
                                text=True).stdout.strip()
        for path in (f"{libdir}/security/pam_oauth.so", "/usr/share/man/man8/pam_oauth.8",
                     "/etc/pam-oauth"):
            self.assertTrue(any(f == path or f.startswith(path + ".") for f in files),
                            f"{path} not in {files}")
        self.assertFalse([f for f in files if "/bin/" in f], "the helper belongs to oauth-token")
        self.assertIn("libcurl(x86-64)", self.query(self.rpm("pam-oauth"), "--requires"))

    def test_oauth_token_rpm(self):
        files = self.query(self.rpm("oauth-token"), "-l")
        for path in ("/usr/bin/oauth-token", "/usr/bin/git-credential-oauth-token",
                     "/usr/share/man/man1/oauth-token.1", "/usr/share/man/man5/pam-oauth.conf.5",
                     "/usr/lib/systemd/system/oauth-token-refresh@.service",
                     "/usr/lib/systemd/system/oauth-token-refresh@.timer",
                     "/usr/share/bash-completion/completions/oauth-token",
                     "/usr/share/zsh/site-functions/_oauth-token"):
            self.assertTrue(any(f == path or f.startswith(path + ".") for f in files),
                            f"{path} not in {files}")
        self.assertFalse([f for f in files if "pam_oauth.so" in f])
        listing = subprocess.run(["rpm", "-qlvp", self.rpm("oauth-token")], check=True,
                                 capture_output=True, text=True).stdout
        self.assertRegex(listing, r"(?m)^l.*/usr/bin/git-credential-oauth-token -> oauth-token$")
        self.assertRegex(listing, r"(?m)^l.*/usr/bin/docker-credential-oauth-token -> oauth-token$")
        self.assertRegex(listing, r"(?m)^-rwxr-xr-x.*/usr/bin/oauth-token$")


if __name__ == "__main__":
    unittest.main()
