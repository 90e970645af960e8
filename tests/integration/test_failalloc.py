"""Allocation failure: every allocation of a login and of a cache hit, failed
one at a time (tests/failalloc/: the core, pam_oauth, the helper, json-c and
libcrypto linked with wrappers that fail the Nth call).

A login through pam_oauth.so (pam-failwalk: two processes side by side, one
on the odd N and one on the even, walk N over pam_start .. pam_end against
the test server, verify = jwt, the token stored in the session) with the
right and with a wrong password, and a cache hit of oauth-token (one
process per N).  The outcome is never PAM_SUCCESS for a
wrong password, a right password succeeds whenever no failure was injected,
a stored token file is always whole, and oauth-token prints the cached token
exactly or nothing.  In the sanitizer build (make check SANITIZE=1)
LeakSanitizer checks, at the end of each process, that nothing leaked along
any of those paths; in the plain build the outcomes are checked and leaks
are left to that build (valgrind over thousands of logins would take an
hour).

Crashes or leaks inside json-c, OpenSSL or libcurl (theirs, not ours; libcurl
allocates through http.c's allocator, so its allocations are walked too) are
listed with the library and their N, not hidden and not failed.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import unittest

import harness
import pamtest

FA_DIR = os.path.join(harness.build_dir(), "tests", "failalloc")
WALK = os.path.join(FA_DIR, "pam-failwalk")
MODULE = os.path.join(os.path.abspath(FA_DIR), "pam_oauth.so")
HELPER = os.path.join(FA_DIR, "oauth-token")
PASSWORD = "fail-alloc-pass"

# What a login may end in when an allocation failed on the way: anything
# but a crash, and never success for a wrong password.
PAM_SUCCESS, PAM_BUF_ERR, PAM_AUTH_ERR = 0, 5, 7
PAM_NAMES = {0: "PAM_SUCCESS", 3: "PAM_SYSTEM_ERR", 4: "PAM_SYSTEM_ERR",
             5: "PAM_BUF_ERR", 6: "PAM_PERM_DENIED", 7: "PAM_AUTH_ERR",
             9: "PAM_AUTHINFO_UNAVAIL", 10: "PAM_USER_UNKNOWN", 19: "PAM_CONV_ERR",
             25: "PAM_IGNORE", 28: "PAM_ABORT", 14: "PAM_SESSION_ERR", 1: "PAM_OPEN_ERR",
             2: "PAM_SYMBOL_ERR", 13: "PAM_ACCT_EXPIRED", 12: "PAM_NEW_AUTHTOK_REQD",
             8: "PAM_CRED_INSUFFICIENT"}
LINE = re.compile(r"^(\d+)(?: pam_start (\d+))?(?: authenticate (\d+))?((?: [a-z]+ -?\d+)*?)"
                  r"(?: cache (\w+))? injected (\d) allocations (\d+)( leaked)?$")


LSAN_EXIT = 23


def sanitizer_env(slow_unwind=False):
    """LeakSanitizer on, exit status 23 for a report.  slow_unwind: every
    allocation's stack through frames without frame pointers (json-c and
    libcrypto are built without): slow, so only for short runs."""
    if not pamtest.SANITIZE:
        return {}
    opts = f"detect_leaks=1:exitcode={LSAN_EXIT}:abort_on_error=0"
    if slow_unwind:
        opts += ":fast_unwind_on_malloc=0"
    return {"ASAN_OPTIONS": opts, "LSAN_OPTIONS": "report_objects=1"}


JSONC = ("json_", "_json_", "lh_", "printbuf", "array_list", "sprintbuf")
OPENSSL = ("CRYPTO_", "EVP_", "OSSL_", "ossl_", "BN_", "bn_", "RSA_", "rsa_", "EC_",
           "ec_", "OPENSSL_", "ERR_", "ASN1_", "asn1_", "PROV", "evp_", "ECDSA_", "X509",
           "OBJ_", "BIO_", "ENGINE_", "DH_", "DSA_", "SHA", "MD5", "HMAC", "CONF_", "c2i_",
           "d2i_", "i2d_", "RAND_", "ED25519", "ossl", "x25519", "ecx_", "ecp_", "int_",
           "def_", "sk_", "OPENSSL_sk", "lh_OSSL", "OPENSSL_LH")
OURS = ("/common/", "/pam_oauth/", "/curl_helper/", "/tests/failalloc/pam-failwalk")


def symbolize(report):
    """The frames of a crash report as (function, source): ASan's "#N ... in
    F S" lines, or wrap.c's "failalloc: frame FILE+0xOFF" lines through
    addr2line."""
    frames = [(f, w) for f, w in re.findall(r"^\s*#\d+ 0x[0-9a-f]+ in (\S+) (\S+)",
                                            report, re.M)]
    if frames:
        return frames
    raw = re.findall(r"^failalloc: frame (.+)\+0x([0-9a-f]+)$", report, re.M)
    by_file = {}
    for path, off in raw:
        by_file.setdefault(path, []).append(off)
    names = {}
    for path, offs in by_file.items():
        try:
            out = subprocess.run(["addr2line", "-f", "-e", path] + ["0x" + o for o in offs],
                                 capture_output=True, text=True, timeout=60).stdout.split("\n")
        except (OSError, subprocess.SubprocessError):
            out = []
        for i, off in enumerate(offs):
            names[(path, off)] = (out[2 * i] if 2 * i < len(out) else "??",
                                  (out[2 * i + 1] if 2 * i + 1 < len(out) else "") +
                                  " " + path)
    return [names.get((p, o), ("??", p)) for p, o in raw]


ALLOCATOR = ("mem_free", "mem_malloc", "mem_realloc", "mem_strdup", "mem_calloc")


def owner(report):
    """Whose code a crash or leak report's innermost frame is in: "ours",
    "json-c", "OpenSSL", "libcurl" or "libc/unknown".  Frames of the handler, the
    wrappers and libc are skipped (strlen(NULL) is its caller's fault)."""
    for func, where in symbolize(report):
        if func in ("crashed", "raise", "abort") or "/tests/failalloc/wrap.c" in where \
                or func.startswith(("__asan", "__sanitizer")) \
                or func.startswith(("__wrap_", "__interceptor_", "__strlen", "__mem",
                                    "__str", "__GI_", "malloc", "calloc", "realloc",
                                    "strdup")) \
                or "libc.so" in where or "libasan" in where or "sanitizer_common" in where:
            continue
        if func in ALLOCATOR and "common/http.c" in where:
            # libcurl's allocator (curl_global_init_mem): a pass-through to
            # malloc and free that cleanses; a bad pointer it is handed is
            # its caller's
            continue
        if any(d in where for d in OURS):
            return "ours"
        if func.startswith(JSONC) or "json-c" in where:
            return "json-c"
        if func.startswith(OPENSSL) or "libcrypto" in where or "openssl" in where:
            return "OpenSSL"
        if "libcurl" in where or "libssl" in where:
            # libcurl allocates through http.c's cleansing allocator
            # (curl_global_init_mem), so its allocations are walked too
            return "libcurl"
        return "libc/unknown"
    return "libc/unknown"


CONSTRUCTORS = re.compile(r"^(json_object_new_\w*|json_tokener_new\w*|printbuf_new|"
                          r"\w+_new|\w+_new_\w+|\w+_dup|OPENSSL_strdup|CRYPTO_strdup)$")


def leak_owner(report):
    """Whose leak a LeakSanitizer report is: "ours" when a direct leak was
    allocated by our code, or by a json-c or OpenSSL constructor that our
    code called (what we create we must free); the library's when it was
    allocated inside the library on its own account (json_tokener_parse_ex
    dropping a value it could not add, say)."""
    blocks = re.split(r"^(?=(?:Direct|Indirect) leak of)", report, flags=re.M)
    owners = set()
    for block in blocks:
        if not block.startswith("Direct leak of"):
            continue
        frames = [(f, w) for f, w in re.findall(r"^\s*#\d+ 0x[0-9a-f]+ in (\S+) (\S+)",
                                                block, re.M)
                  if not f.startswith(("__interceptor_", "__wrap_"))
                  and "libasan" not in w and "sanitizer_common" not in w]
        who = "libc/unknown"
        for i, (func, where) in enumerate(frames):
            if any(d in where for d in OURS):
                who = "ours"
                break
            lib = "json-c" if func.startswith(JSONC) else \
                  "OpenSSL" if func.startswith(OPENSSL) else None
            if lib is None:
                continue
            # the outermost frame of the library before our code
            j = i
            while j + 1 < len(frames) and not any(d in frames[j + 1][1] for d in OURS):
                j += 1
            inside = [f for f, _ in frames[i:j + 1]]
            if j + 1 < len(frames) and CONSTRUCTORS.match(frames[j][0]) and \
                    "json_tokener_parse_ex" not in inside:
                who = "ours"
            else:
                who = lib
            break
        owners.add(who)
    if "ours" in owners:
        return "ours"
    return sorted(owners)[0] if owners else owner(report)


def report_of(err):
    """The sanitizer's or the crash handler's report in a process's
    standard error, from its first line."""
    starts = [i for i in (err.find("ERROR: AddressSanitizer"), err.find("ERROR: LeakSanitizer"),
                          err.find("failalloc: crash"), err.find("runtime error")) if i >= 0]
    return err[min(starts):min(starts) + 16000] if starts else err[-8000:]


def where_in(report):
    """The innermost named frames of a report (of its first direct leak, for
    a leak report), for the list of crashes."""
    m = re.search(r"^Direct leak of.*?(?=^\S|\Z)", report, re.M | re.S)
    if m:
        report = m.group(0)
    names = [f for f, _ in symbolize(report)
             if f not in ("crashed", "??", "raise", "abort")
             and not f.startswith(("__wrap_", "__GI_", "__interceptor_", "__sanitizer", "__asan"))]
    return " <- ".join(names[:6])


def summary(found):
    """{where: [N, ...]} as lines "where: N=a, b, c" (N in order; "exit"
    last)."""
    found = {w: sorted(ns, key=lambda n: (0, n) if isinstance(n, int) else (1, 0))
             for w, ns in found.items()}
    return "".join(f"#   {w}: N = {', '.join(map(str, ns[:12]))}"
                   f"{' ...' if len(ns) > 12 else ''} ({len(ns)})\n"
                   for w, ns in sorted(found.items()))


@unittest.skipIf(pamtest.skip_reason(), pamtest.skip_reason() or "")
class TestAllocationFailure(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for path in (WALK, MODULE, HELPER):
            if not os.access(path, os.R_OK):
                raise unittest.SkipTest(f"{path} is not built (make test-tools)")
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)
        cls.user = pamtest.LOCAL_USERS[0]

    def setUp(self):
        self.srv.reset()
        self.srv.user(self.user, PASSWORD, ["admin"])

    # -- the login -----------------------------------------------------------

    # Walks at once, one a core: walk w of WALKERS takes N = w, w+WALKERS, ...
    WALKERS = 2

    def login_service(self, name):
        """A service of its own for one walker (its own token and key
        caches): returns (service, cache file or None, operations)."""
        keys = {"token_url": self.srv.url("/jwt/token"), "grant": "password",
                "client_id": "test-client", "client_secret": "test-secret",
                "ca_file": self.srv.ca_file, "verify": "jwt",
                "issuer": self.srv.jwt_issuer, "require_roles": "admin",
                "roles_source": "token", "roles_claim": "realm_access.roles",
                "jwks_cache_dir": harness.tmpdir(), "timeout": "10s", "retries": 0}
        cachefile, ops = None, "acct"
        if pamtest.is_root():
            base = pamtest.world_dir("pam-oauth-failalloc-")
            os.chmod(base, 0o1777)
            keys.update(store_token=True, cache_dir=os.path.join(base, "%u"))
            cachefile = os.path.join(base, self.user, "default.json")
            ops = "acct,estab,open"
        conf = self.env.config(keys)
        args = f"config={conf} minimum_uid=0 fail_delay=0"
        svc = self.env.service(name, [(t, "required", MODULE, args)
                                      for t in ("auth", "account", "session")])
        return svc, cachefile, ops

    def walk(self, password):
        """Run pam-failwalk to the end in WALKERS processes side by side;
        returns the parsed lines and the crashes and leaks (N, report)."""
        walkers = [self.login_service(f"failalloc{w}") for w in range(1, self.WALKERS + 1)]
        with concurrent.futures.ThreadPoolExecutor(self.WALKERS) as pool:
            results = list(pool.map(lambda w: self.walk_one(password, w + 1, *walkers[w]),
                                    range(self.WALKERS)))
        lines, crashes = {}, []
        for walker_lines, walker_crashes in results:
            lines.update(walker_lines)
            crashes += walker_crashes
        return lines, crashes

    def walk_one(self, password, first, svc, cachefile, ops):
        """One walker, N = first, first+WALKERS, ... to the end, restarting
        after a crash.  A transaction that leaked is run again alone with
        full stacks for the report."""
        step = self.WALKERS
        env = self.env.environ(debuglevel=None, extra=sanitizer_env(slow_unwind=True))
        lines, crashes, start = {}, [], first
        while True:
            argv = [WALK, "-o", ops, "-f", str(start), "-s", str(step), "-m", MODULE]
            if cachefile:
                argv += ["-c", cachefile]
            p = subprocess.run(argv + [svc, self.user], input=(password + "\n").encode(),
                               capture_output=True, env=env, timeout=3000)
            out, err = p.stdout.decode(), p.stderr.decode(errors="replace")
            last = start - step
            for text in out.splitlines():
                m = LINE.match(text)
                if m:
                    lines[int(m.group(1))] = m
                    last = max(last, int(m.group(1)))
            if p.returncode == 3:
                # stopped after the transaction that leaked (its line says
                # so; the report, with whole stacks, is on standard error)
                at = err.find("ERROR: LeakSanitizer")
                crashes.append((last, err[at:at + 16000]))
                start = last + step
                continue
            if "done" in out:
                if p.returncode != 0:
                    # the walk ended, but the process reported memory errors
                    # or leaks at exit
                    crashes.append(("exit", report_of(err)))
                break
            crashes.append((last + step, report_of(err)))
            start = last + 2 * step
            if len(crashes) > 5000:
                break
        return lines, crashes

    def check_walk(self, lines, crashes, right):
        self.assertIn(0, lines, "no warm-up transaction")
        warm = lines[0]
        self.assertEqual(int(warm.group(3)), PAM_SUCCESS if right else PAM_AUTH_ERR,
                         warm.group(0))
        outcomes = {}
        total = int(warm.group(7))
        bad, verdicts = [], []
        for n, m in sorted(lines.items()):
            if n == 0:
                continue
            auth = int(m.group(3)) if m.group(3) is not None else None
            ops = dict(zip(m.group(4).split()[::2], map(int, m.group(4).split()[1::2])))
            injected = m.group(6) == "1"
            name = PAM_NAMES.get(auth, str(auth)) if auth is not None else \
                f"pam_start {m.group(2)}"
            outcomes[name] = outcomes.get(name, 0) + 1
            if not right and auth == PAM_SUCCESS:
                bad.append(f"N={n}: a wrong password authenticated")
            if right and not injected and (auth != PAM_SUCCESS or any(ops.values())):
                bad.append(f"N={n}: no failure injected, yet {m.group(0)}")
            if m.group(5) == "BAD":
                bad.append(f"N={n}: the stored token file is not a whole entry")
            if right and injected and auth not in (PAM_SUCCESS, PAM_BUF_ERR):
                verdicts.append(n)
        # each walker ends at the first N its transaction did not reach (a
        # login's count of allocations varies by a few between processes):
        # below the lower end, every N was walked by one or the other
        ends = [n for n, m in lines.items() if n > 0 and m.group(6) == "0"]
        self.assertTrue(ends, "no walker reached the end of the login")
        walked = min(ends)
        crashed = {n for n, _ in crashes}
        missing = [n for n in range(1, walked) if n not in lines and n not in crashed]
        self.assertFalse(missing, f"N not walked: {missing[:30]}")
        sys.stderr.write(
            f"\n# failalloc login ({'right' if right else 'wrong'} password, verify=jwt"
            f"{', token stored' if pamtest.is_root() else ''}): N = 1..{walked - 1}, every "
            f"allocation of the login walked (the warm-up, with libcrypto's one-time "
            f"initialisation, made {total}); outcomes: "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) + "\n")
        ours, found = [], {}
        for n, report in crashes:
            who = leak_owner(report) if "LeakSanitizer" in report else owner(report)
            found.setdefault(f"{who}: {where_in(report)}", []).append(n)
            if who == "ours" or who == "libc/unknown":
                ours.append(f"N={n}:\n{report[-3000:]}")
        if found:
            sys.stderr.write("# failalloc login: crashes and sanitizer reports, by place:\n"
                             + summary(found))
        # Running out of memory is PAM_BUF_ERR, not a verdict on the
        # password or the token.  json-c 0.16 sometimes drops a member
        # without a trace (its number parser clears errno after the failed
        # allocation), and then the login fails as if the answer lacked it:
        # a few such N, never more than 1 %.
        if verdicts:
            sys.stderr.write(f"# failalloc login: an allocation failure taken for a verdict "
                             f"(json-c dropped a member unnoticed): N = "
                             f"{', '.join(map(str, verdicts[:20]))} ({len(verdicts)})\n")
        if len(verdicts) > walked // 100:
            bad.append(f"{len(verdicts)} allocation failures ended in a verdict on the "
                       f"password or token instead of PAM_BUF_ERR: N = {verdicts[:30]}")
        self.assertFalse(bad, "\n".join(bad))
        self.assertFalse(ours, "\n\n".join(ours))

    def test_login_right_password(self):
        lines, crashes = self.walk(PASSWORD)
        self.check_walk(lines, crashes, right=True)

    def test_login_wrong_password(self):
        lines, crashes = self.walk("not-" + PASSWORD)
        self.check_walk(lines, crashes, right=False)

    # -- the cache hit -------------------------------------------------------

    def test_cache_hit(self):
        """oauth-token with a cached token, the token endpoint failing every
        request (so a token that is printed can only be the cached one)."""
        cache = harness.tmpdir()
        conf = self.env.config({"token_url": self.srv.url("/generic/token"),
                                "client_id": "test-client", "client_secret": "test-secret",
                                "ca_file": self.srv.ca_file, "cache_dir": cache,
                                "timeout": "5s", "retries": 0})
        plain = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_TOKEN", "PAM_OAUTH", "PO_FAILALLOC"))}
        p = subprocess.run([plain, "-c", conf], capture_output=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        token = p.stdout.decode()
        with open(os.path.join(cache, "default.json"), "rb") as f:
            entry = f.read()
        self.srv.fault("*", "status", status=503, count=-1)
        self.addCleanup(self.srv.clear_faults)
        env.update(sanitizer_env(slow_unwind=True))
        bad, outcomes, n, requests, theirs_list = [], {}, 0, 0, {}
        before = self.srv.stats()["total"]
        while True:
            n += 1
            p = subprocess.run([HELPER, "-c", conf], capture_output=True,
                               env=dict(env, PO_FAILALLOC=str(n)), timeout=60)
            out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
            m = re.search(r"failalloc: (\d+) allocations, failure injected at (none)?", err)
            report = m is None or "LeakSanitizer" in err or "AddressSanitizer" in err \
                or "runtime error" in err
            if report:
                who = leak_owner(err) if "LeakSanitizer" in err else owner(err)
                if out not in ("", token):
                    bad.append(f"N={n}: printed something else than the cached token")
                if who in ("ours", "libc/unknown"):
                    bad.append(f"N={n}: exit {p.returncode}, a crash or sanitizer report "
                               f"in {who}'s code: {where_in(err)}\n{err[-3000:]}")
                else:
                    theirs_list.setdefault(f"{who}: {where_in(err)}", []).append(n)
                if m is None:
                    outcomes["crash"] = outcomes.get("crash", 0) + 1
                    continue
                if p.returncode == LSAN_EXIT:
                    # a leak report at exit: the run itself ended as the
                    # output says
                    outcomes["leak report"] = outcomes.get("leak report", 0) + 1
                    if m.group(2):
                        break
                    continue
            if m.group(2):
                # N beyond the run's allocations: the control
                if p.returncode != 0 or out != token:
                    bad.append(f"N={n}: no failure injected, yet exit {p.returncode}")
                break
            if p.returncode == 0:
                outcomes["token"] = outcomes.get("token", 0) + 1
                if out != token:
                    bad.append(f"N={n}: printed something else than the cached token")
            else:
                outcomes[f"exit {p.returncode}"] = outcomes.get(f"exit {p.returncode}", 0) + 1
                if out != "":
                    bad.append(f"N={n}: exit {p.returncode} with output")
                # out of memory is "anything else" (1), not a usage error
                # (2) or the provider's answer (3, 4): oauth-token(1)
                if p.returncode != 1:
                    bad.append(f"N={n}: exit {p.returncode} for an allocation failure: "
                               + err.strip().splitlines()[0])
                if "out of memory" not in err and "out_of_memory" not in err:
                    bad.append(f"N={n}: the message does not say out of memory: "
                               + err.strip().splitlines()[0])
            if n > 20000:
                bad.append("more than 20000 allocations?")
                break
        requests = self.srv.stats()["total"] - before
        with open(os.path.join(cache, "default.json"), "rb") as f:
            after = f.read()
        sys.stderr.write(
            f"\n# failalloc cache hit: {n - 1} allocations walked, outcomes: "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            + f"; {requests} token requests attempted (all answered 503)\n"
            + ("# failalloc cache hit: crashes in other libraries, by place:\n"
               + summary(theirs_list) if theirs_list else ""))
        self.assertFalse(bad, "\n".join(bad))
        self.assertEqual(after, entry, "the cache file changed during the walk")


if __name__ == "__main__":
    unittest.main()
