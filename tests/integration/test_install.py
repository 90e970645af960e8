"""`make install` and `make uninstall` into a DESTDIR, and the man pages.

Installs with DESTDIR=<tmp> PREFIX=/usr (as a distribution package would),
checks every installed path, its type and its mode, checks that nothing else
was installed (nothing under /etc: no secret ships), then uninstalls and
checks that no file is left.  The man pages must format without a warning
from man(1)/groff (the check lintian runs) and have a NAME line that
lexgrog(1) (mandb's whatis parser) understands.
"""
import os
import stat
import subprocess
import unittest

import harness

ROOT = harness.REPO_ROOT
MAN_PAGES = ("man/oauth-token.1", "man/pam-oauth.conf.5", "man/pam_oauth.8")


def pam_dir():
    """Where the Makefile puts the module: libpam's libdir + /security."""
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "pam"], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        libdir = ""
    return (libdir or "/lib") + "/security"


def unit_dir():
    """Where the Makefile puts systemd units for PREFIX=/usr: systemd.pc's
    systemdsystemunitdir, else /usr/lib/systemd/system."""
    try:
        d = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                           capture_output=True, text=True).stdout.strip()
    except OSError:
        d = ""
    return d or "/usr/lib/systemd/system"


def make_env():
    """The environment for a nested make: without the jobserver of the make
    that runs the tests."""
    env = dict(os.environ)
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(var, None)
    return env


def run_make(target, destdir):
    """make TARGET DESTDIR=destdir PREFIX=/usr, reusing the build the tests
    run against (PO_SANITIZE picks build/san)."""
    argv = ["make", "--no-print-directory", "-C", ROOT, target, f"DESTDIR={destdir}",
            "PREFIX=/usr", "SANITIZE=" + os.environ.get("PO_SANITIZE", "0")]
    return subprocess.run(argv, env=make_env(), capture_output=True, text=True, timeout=600)


def tree(root):
    """{relative path: lstat} of everything under root (directories too)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            found["/" + os.path.relpath(path, root)] = os.lstat(path)
    return found


class Install(unittest.TestCase):
    def setUp(self):
        self.dest = os.path.join(harness.tmpdir(), "dest")
        os.mkdir(self.dest)
        self.pamdir = pam_dir()
        # path -> (kind, mode or symlink target)
        self.expected = {
            f"{self.pamdir}/pam_oauth.so": ("file", 0o644),
            "/usr/bin/oauth-token": ("file", 0o755),
            "/usr/bin/git-credential-oauth-token": ("link", "oauth-token"),
            "/usr/bin/docker-credential-oauth-token": ("link", "oauth-token"),
            "/usr/share/man/man1/oauth-token.1": ("file", 0o644),
            "/usr/share/man/man5/pam-oauth.conf.5": ("file", 0o644),
            "/usr/share/man/man8/pam_oauth.8": ("file", 0o644),
            "/usr/share/doc/pam-oauth/examples/pam-oauth.conf": ("file", 0o600),
            f"{unit_dir()}/oauth-token-refresh@.service": ("file", 0o644),
            f"{unit_dir()}/oauth-token-refresh@.timer": ("file", 0o644),
            "/usr/share/bash-completion/completions/oauth-token": ("file", 0o644),
            "/usr/share/zsh/site-functions/_oauth-token": ("file", 0o644),
        }

    def install(self):
        p = run_make("install", self.dest)
        self.assertEqual(p.returncode, 0, "make install failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])
        return tree(self.dest)

    def test_install_paths_and_modes(self):
        """make install puts every file in place with its mode, and nothing else."""
        installed = self.install()
        problems = []
        for path, (kind, want) in self.expected.items():
            st = installed.get(path)
            if st is None:
                problems.append(f"{path}: not installed")
            elif kind == "link":
                if not stat.S_ISLNK(st.st_mode):
                    problems.append(f"{path}: not a symlink")
                elif os.readlink(self.dest + path) != want:
                    problems.append(f"{path}: points to {os.readlink(self.dest + path)}, want {want}")
                elif not os.path.samefile(self.dest + path, self.dest + "/usr/bin/oauth-token"):
                    problems.append(f"{path}: does not resolve to the installed oauth-token")
            elif not stat.S_ISREG(st.st_mode):
                problems.append(f"{path}: not a regular file")
            elif stat.S_IMODE(st.st_mode) != want:
                problems.append(f"{path}: mode {stat.S_IMODE(st.st_mode):04o}, want {want:04o}")
        self.assertEqual(problems, [])
        files = {p for p, st in installed.items() if not stat.S_ISDIR(st.st_mode)}
        self.assertEqual(files - set(self.expected), set(), "unexpected files installed")
        self.assertFalse([p for p in installed if p == "/etc" or p.startswith("/etc/")],
                         "make install must not install anything under /etc")
        for path, st in installed.items():
            if stat.S_ISDIR(st.st_mode):
                self.assertEqual(stat.S_IMODE(st.st_mode) & 0o022, 0,
                                 f"directory {path} is group/world-writable")

    def test_unit_names_the_installed_helper(self):
        """The service's ExecStart is the helper make install put in BINDIR,
        and its comments name the system configuration under SYSCONFDIR."""
        self.install()
        with open(self.dest + f"{unit_dir()}/oauth-token-refresh@.service") as f:
            text = f.read()
        self.assertIn("\nExecStart=/usr/bin/oauth-token --profile=%i refresh --if-due\n", text)
        self.assertNotRegex(text, r"@[A-Z]+@", "a placeholder was left unreplaced")
        self.assertIn("/etc/pam-oauth/pam-oauth.conf", text)

    def test_installed_binaries_are_the_built_ones(self):
        """The installed module and helper are the files make built."""
        self.install()
        build = harness.build_dir()
        for built, path in ((os.path.join(build, "pam_oauth", "pam_oauth.so"),
                             f"{self.pamdir}/pam_oauth.so"),
                            (os.path.join(build, "curl_helper", "oauth-token"),
                             "/usr/bin/oauth-token")):
            with open(built, "rb") as a, open(self.dest + path, "rb") as b:
                self.assertTrue(a.read() == b.read(), f"{path} differs from {built}")

    def test_install_twice(self):
        """A second make install over the first succeeds (upgrade in place)."""
        self.install()
        installed = self.install()
        self.assertTrue(stat.S_ISLNK(installed["/usr/bin/git-credential-oauth-token"].st_mode))
        self.assertTrue(stat.S_ISLNK(installed["/usr/bin/docker-credential-oauth-token"].st_mode))

    def test_uninstall_removes_everything(self):
        """make uninstall removes every installed file and the doc directory."""
        self.install()
        p = run_make("uninstall", self.dest)
        self.assertEqual(p.returncode, 0, "make uninstall failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])
        left = tree(self.dest)
        files = sorted(p for p, st in left.items() if not stat.S_ISDIR(st.st_mode))
        self.assertEqual(files, [], "left behind by make uninstall")
        for path in self.expected:
            self.assertFalse(os.path.lexists(self.dest + path), f"{path} still there")
        self.assertNotIn("/usr/share/doc/pam-oauth", left, "doc directory left behind")

    def test_uninstall_when_not_installed(self):
        """make uninstall on an empty DESTDIR succeeds (nothing to remove)."""
        p = run_make("uninstall", self.dest)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])


class ManPages(unittest.TestCase):
    """Each man page must exist, format without warnings and have a NAME."""

    def lint(self, page):
        path = os.path.join(ROOT, page)
        self.assertTrue(os.path.isfile(path), f"{page} is missing (make install needs it)")
        # What lintian runs (checks/documentation/manual.pm).
        env = dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80")
        p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"man -l {page} failed: {p.stderr}")
        self.assertEqual(p.stderr.strip(), "", f"{page}: formatter warnings:\n{p.stderr}")
        self.assertTrue(p.stdout.strip(), f"{page} formats to nothing")
        # groff with all warnings, as a second opinion on the macros.
        p = subprocess.run(["groff", "-man", "-z", "-wmac", "-wdelim", "-wel", "-wscale",
                            "-wescape", "-wreg", "-wdi", "-wsyntax", path],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stderr.strip(), "", f"{page}: groff warnings:\n{p.stderr}")
        # The whatis entry mandb builds from the NAME section.
        p = subprocess.run(["lexgrog", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"{page}: lexgrog cannot parse its NAME section:\n"
                         + p.stdout + p.stderr)
        name = os.path.basename(page).rsplit(".", 1)[0]
        self.assertIn(name, p.stdout, f"{page}: NAME section does not name {name}")
        return path

    def test_oauth_token_1(self):
        self.lint("man/oauth-token.1")

    def test_pam_oauth_conf_5(self):
        self.lint("man/pam-oauth.conf.5")

    def test_pam_oauth_8(self):
        self.lint("man/pam_oauth.8")

    def test_sections_match_file_names(self):
        """.TH names the page and the section its file name says."""
        problems = []
        for page in MAN_PAGES:
            path = os.path.join(ROOT, page)
            if not os.path.isfile(path):
                problems.append(f"{page}: missing")
                continue
            name, section = os.path.basename(page).rsplit(".", 1)
            with open(path, encoding="utf-8") as f:
                th = next((l for l in f if l.startswith(".TH ")), None)
            if th is None:
                problems.append(f"{page}: no .TH line")
                continue
            fields = th.split()
            if len(fields) < 3 or fields[1].strip('"').lower() != name.lower() \
                    or fields[2].strip('"') != section:
                problems.append(f"{page}: {th.strip()!r} does not say {name}({section})")
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main()
