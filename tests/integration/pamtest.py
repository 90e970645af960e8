"""Drive pam_oauth.so with pamtester through libpam-wrapper.

    import pamtest
    env = pamtest.PamEnv(srv)                  # a private directory
    conf = env.config({"token_url": ..., ...}) # a pam-oauth.conf
    env.service("t", [("auth", "required", pamtest.module(), "config=" + conf)])
    r = env.run("t", "daemon", ["authenticate", "acct_mgmt"], password="x")
    r.ok, r.failed_op, r.error     # what pamtester saw
    r.exit("pam_sm_authenticate")  # the module's own return code, from its
                                   # debug line "pam_sm_authenticate: exit (X)"
    r.logs                         # [(priority, message)] the module logged

libpam-wrapper (LD_PRELOAD=libpam_wrapper.so, PAM_WRAPPER=1) makes libpam read
service files from PAM_WRAPPER_SERVICE_DIR instead of /etc/pam.d, so nothing
under /etc is touched and no root is needed for authentication.  It also
replaces pam_syslog: with PAM_WRAPPER_DEBUGLEVEL=2 every line the module logs
comes out on standard error as "PWRAP_DEBUG[...] - SYSLOG(PRIO): message",
which is how the tests read the module's log (pam-krb5's tests do the same
with a fake libpam).  Without PAM_WRAPPER_DEBUGLEVEL only LOG_ERR and worse
appear there.

pamtester needs local accounts.  LOCAL_USERS are base-passwd accounts that
exist on every Debian system (uid < 1000, so the tests pass minimum_uid=0);
the test registers an identity provider user of the same name.
"""

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import atexit

import harness

PAMTESTER = shutil.which("pamtester")

# pam_strerror() text (what pamtester prints) -> PAM code name.
STRERROR = {
    "Authentication failure": "PAM_AUTH_ERR",
    "Authentication service cannot retrieve authentication info":
        "PAM_AUTHINFO_UNAVAIL",
    "User not known to the underlying authentication module": "PAM_USER_UNKNOWN",
    "Error in service module": "PAM_SERVICE_ERR",
    "System error": "PAM_SYSTEM_ERR",
    "Permission denied": "PAM_PERM_DENIED",
    "Failure setting user credentials": "PAM_CRED_ERR",
    "Cannot make/remove an entry for the specified session": "PAM_SESSION_ERR",
    "Memory buffer error": "PAM_BUF_ERR",
    "Conversation error": "PAM_CONV_ERR",
    "Critical error - immediate abort": "PAM_ABORT",
    "Have exhausted maximum number of retries for service.": "PAM_MAXTRIES",
}

# pamtester's line for each operation that succeeded.
DONE = {
    "authenticate": "successfully authenticated",
    "acct_mgmt": "account management done",
    "open_session": "successfully opened a session",
    "close_session": "session has successfully been closed",
    "setcred": "credential info has successfully been set",
    "chauthtok": "authentication token altered successfully",
}

LOG_LINE = re.compile(r"^PWRAP_\w+\[[^\]]*\] - SYSLOG\((\d+)\): (.*)$")
EXIT_LINE = re.compile(r"^(pam_sm_\w+): exit \((PAM_\w+|other)\)$")

LOCAL_USER_CANDIDATES = ("daemon", "bin", "sys", "games", "man", "lp", "mail",
                         "news", "uucp", "proxy")


def _existing(names):
    out = []
    for name in names:
        try:
            pwd.getpwnam(name)
            out.append(name)
        except KeyError:
            pass
    return out


LOCAL_USERS = _existing(LOCAL_USER_CANDIDATES)


def _find_wrapper():
    for pattern in ("/usr/lib/*/libpam_wrapper.so", "/usr/lib/libpam_wrapper.so",
                    "/usr/lib64/libpam_wrapper.so", "/usr/local/lib/libpam_wrapper.so"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


WRAPPER = _find_wrapper()
WRAPPER_MODULES = os.path.join(os.path.dirname(WRAPPER), "pam_wrapper") if WRAPPER else None


SANITIZE = os.environ.get("PO_SANITIZE") == "1"


def _sanitizer_runtimes():
    """With PO_SANITIZE=1 the module is built with ASan and UBSan, and
    pamtester is not: their runtimes must be preloaded first."""
    out = []
    cc = os.environ.get("CC") or "cc"
    for lib in ("libasan.so", "libubsan.so"):
        try:
            path = subprocess.run([cc, "-print-file-name=" + lib], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            path = ""
        if path and os.path.isabs(path) and os.path.exists(path):
            out.append(os.path.realpath(path))
    return out


SANITIZER_PRELOAD = _sanitizer_runtimes() if SANITIZE else []


def valgrind(case):
    """The valgrind binary for a test that runs the module under it, or
    skip the test: valgrind not installed, or `make check VALGRIND=0`
    (PO_VALGRIND=0), which CI's second, partial run of the suite uses
    because the full run already has the valgrind cases."""
    if os.environ.get("PO_VALGRIND") == "0":
        case.skipTest("VALGRIND=0: the valgrind cases are left to a run without it")
    path = shutil.which("valgrind")
    if path is None:
        case.skipTest("valgrind is not installed")
    return path


def built_module():
    """The pam_oauth.so the build made (absolute path)."""
    return os.path.join(os.path.abspath(harness.build_dir()), "pam_oauth", "pam_oauth.so")


def module():
    """The pam_oauth.so under test: a copy of the built one staged where
    every process of the test can load it (harness.Stage: pamtester run as
    another user, sshd, a mount namespace with a private /tmp), whatever
    directory the checkout is in."""
    built = built_module()
    if not os.path.exists(built):
        return built
    st = harness.stage()
    copy = st.path("pam_oauth.so")
    if not os.path.exists(copy) or os.path.getmtime(copy) < os.path.getmtime(built):
        st.add(built, "pam_oauth.so", 0o644)
    return copy


def wrapper_module(name):
    """One of pam_wrapper's test modules: pam_matrix, pam_set_items, ..."""
    return os.path.join(WRAPPER_MODULES, name + ".so")


def skip_reason():
    """Why the PAM tests cannot run here, or None."""
    if PAMTESTER is None:
        return "pamtester is not installed (Debian package pamtester)"
    if WRAPPER is None:
        return "libpam_wrapper.so is not installed (Debian package libpam-wrapper)"
    if not os.path.exists(built_module()):
        return f"{built_module()} is not built (run make)"
    if len(LOCAL_USERS) < 3:
        return "fewer than three base-passwd accounts (daemon, bin, sys) exist"
    return None


def world_dir(prefix="pam-oauth-pam-"):
    """A fresh directory other users may traverse (0755), removed at exit.
    harness.tmpdir() is 0700, but the module writes caches as the user and
    oauth-token runs as the user."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    if os.environ.get("PO_KEEP_TMP") != "1":
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class PamResult:
    """What one pamtester run did."""

    def __init__(self, ops, proc, elapsed):
        self.ops = ops
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.logs = []
        self.other = []        # lines that are neither pamtester's nor logs
        self.done = []         # operations pamtester reported done
        self.error = None      # PAM code name of the failed operation
        self.prompts = 0
        for line in (proc.stdout + "\n" + proc.stderr).splitlines():
            while line.startswith("Password: "):
                self.prompts += 1
                line = line[len("Password: "):]
            if not line:
                continue
            m = LOG_LINE.match(line)
            if m:
                self.logs.append((int(m.group(1)), m.group(2)))
                continue
            if line.startswith("PWRAP_"):
                continue       # pam_wrapper's own diagnostics
            if line.startswith("pamtester: "):
                text = line[len("pamtester: "):]
                for op, msg in DONE.items():
                    if text.startswith(msg):
                        self.done.append(op)
                if text in STRERROR:
                    self.error = STRERROR[text]
                continue
            self.other.append(line)
        self.ok = proc.returncode == 0
        self.failed_op = None if self.ok else (ops[len(self.done)] if len(self.done) < len(ops) else None)

    def messages(self, priority=None):
        return [m for p, m in self.logs if priority is None or p <= priority]

    def exits(self, func):
        """Every return code the module logged for func, in order."""
        out = []
        for _, msg in self.logs:
            m = EXIT_LINE.match(msg)
            if m and m.group(1) == func:
                out.append(m.group(2))
        return out

    def exit(self, func):
        codes = self.exits(func)
        return codes[-1] if codes else None

    def text(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return (f"PamResult(rc={self.returncode}, done={self.done}, error={self.error}, "
                f"elapsed={self.elapsed:.2f}s)\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}")


class PamEnv:
    """A private directory with a pam_wrapper service directory, configuration
    files and the environment to run pamtester in."""

    def __init__(self, srv=None):
        self.srv = srv
        self.dir = world_dir()
        self.services = os.path.join(self.dir, "services")
        os.mkdir(self.services, 0o755)
        # Without an "other" service libpam logs an error for every pam_start.
        self.service("other", [(t, "required", "pam_deny.so", "")
                               for t in ("auth", "account", "password", "session")])
        self._n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def config(self, profiles, name=None, mode=0o600):
        """Write a pam-oauth.conf.  profiles: {profile: {key: value}} or, for
        one profile named default, {key: value}.  Returns its path."""
        if profiles and not any(isinstance(v, dict) for v in profiles.values()):
            profiles = {"default": profiles}
        lines = []
        for pname, keys in profiles.items():
            lines.append(f"[{pname}]")
            for k, v in keys.items():
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "yes" if v else "no"
                v = str(v)
                if v != v.strip() or '"' in v or "#" in v or ";" in v:
                    v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                lines.append(f"{k} = {v}")
            lines.append("")
        self._n += 1
        path = self.path(name or f"pam-oauth-{self._n}.conf")
        harness.write_file(path, "\n".join(lines), mode)
        return path

    def service(self, name, lines):
        """Write a service file; lines are (type, control, module, args)
        tuples or literal strings.  Returns name."""
        text = []
        for line in lines:
            if isinstance(line, str):
                text.append(line)
            else:
                t, control, mod, args = line
                if isinstance(args, (list, tuple)):
                    args = " ".join(args)
                text.append(f"{t} {control} {mod} {args}".rstrip())
        harness.write_file(os.path.join(self.services, name), "\n".join(text) + "\n", 0o644)
        return name

    def oauth_service(self, name, args, types=("auth", "account", "session"),
                      control="required"):
        """A service whose every line is pam_oauth.so with args."""
        return self.service(name, [(t, control, module(), args) for t in types])

    def environ(self, debuglevel=2, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PAM_WRAPPER", "LD_PRELOAD", "OAUTH_TOKEN", "PAM_OAUTH"))}
        env.update({
            "LD_PRELOAD": " ".join(SANITIZER_PRELOAD + [WRAPPER]),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.services,
            "LC_ALL": "C",
        })
        if SANITIZE:
            # RTLD_DEEPBIND does not mix with the sanitizer runtimes.  Leaks
            # of the programs around the module (pamtester, libpam) are not
            # ours: LeakSanitizer is left to pam-loop (see test_pam).
            env["PAM_WRAPPER_DISABLE_DEEPBIND"] = "1"
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if debuglevel is not None:
            env["PAM_WRAPPER_DEBUGLEVEL"] = str(debuglevel)
        if extra:
            env.update(extra)
        return env

    def run(self, service, user, ops, password="", debuglevel=2, env=None,
            items=None, timeout=90, as_user=None, groups=None):
        """Run pamtester SERVICE USER OPS... with password on its standard
        input (one line per prompt is given: the same password, 4 times).
        as_user (root only): run pamtester as that local account, like an
        unprivileged screen locker.  groups (root only): its supplementary
        groups, like a host that has root's group 0."""
        argv = [PAMTESTER, "-v"]
        for k, v in (items or {}).items():
            argv += ["-I", f"{k}={v}"]
        argv += [service, user] + list(ops)
        data = (password + "\n") * 4 if password is not None else ""
        start = time.monotonic()
        kw = {}
        if as_user is not None:
            pw = pwd.getpwnam(as_user)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        if groups is not None:
            kw["extra_groups"] = list(groups)
        proc = subprocess.run(argv, input=data.encode(), capture_output=True,
                              env=self.environ(debuglevel, env), timeout=timeout,
                              cwd="/", **kw)
        elapsed = time.monotonic() - start

        class P:
            pass
        p = P()
        p.returncode = proc.returncode
        p.stdout = proc.stdout.decode("utf-8", "replace")
        p.stderr = proc.stderr.decode("utf-8", "replace")
        return PamResult(list(ops), p, elapsed)


def is_root():
    return os.geteuid() == 0


class LocalUser:
    """A local account made with useradd for one test module (root only):
    uid >= 1000, a private home directory, /bin/sh.  remove() undoes it."""

    def __init__(self, name, parent=None):
        self.name = name
        parent = parent or world_dir("pam-oauth-home-")
        self.home = os.path.join(parent, name)
        try:
            pwd.getpwnam(name)
            # Left over by an interrupted run: start afresh.
            subprocess.run(["userdel", name], capture_output=True)
        except KeyError:
            pass
        subprocess.run(["useradd", "-M", "-U", "-d", self.home, "-s", "/bin/sh", name],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.mkdir(self.home, 0o700)
        os.chown(self.home, self.uid, self.gid)
        self._removed = False
        atexit.register(self.remove)

    def remove(self):
        if self._removed:
            return
        self._removed = True
        subprocess.run(["userdel", self.name], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def run(self, argv, env, **kw):
        """Run argv as this user (uid, gid, no supplementary groups)."""
        return subprocess.run(argv, env=env, user=self.uid, group=self.gid,
                              extra_groups=[], cwd=self.home, capture_output=True,
                              **kw)
