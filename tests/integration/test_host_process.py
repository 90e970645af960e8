"""What pam_oauth.so leaves in, and does to, the process that loads it, and
how the two programs load libcurl.

- Secrets after pam_end (issue 14.6): tests/tools/pam-loop runs
  pam_start/pam_authenticate/pam_end cycles in one process and waits; the
  test then reads every writable mapping of that process through
  /proc/PID/mem (what a core dump holds: gcore(1) finds the same) and counts
  the password, the client secret, the Basic header and every access and
  refresh token the server issued.  There must be none.
- Binding (issue 14.11): the module loads libcurl with RTLD_NOW (every
  symbol bound at once, inside sshd or sudo), oauth-token with RTLD_LAZY;
  the dynamic linker's relocation count (LD_DEBUG=statistics) with and
  without LD_BIND_NOW shows which.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_host_process -v
"""

import base64
import os
import secrets
import subprocess
import sys
import unittest
import urllib.parse

import harness
import pamtest

SKIP = pamtest.skip_reason()
LOOP = os.path.join(harness.build_dir(), "tests", "tools", "pam-loop")
HELPER = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")


def setUpModule():
    if SKIP:
        raise unittest.SkipTest(SKIP)
    if not os.access(LOOP, os.X_OK):
        raise unittest.SkipTest(f"{LOOP} is not built (make test-tools)")


CHUNK = 1 << 20
# AddressSanitizer's shadow memory is a terabyte-sized mapping of shadow
# bytes only; no mapping that can hold our data is this large.
MAPPING_MAX = 1 << 30


def scan(pid, needles):
    """{name: occurrences} of each bytes value in needles in the writable
    (and anonymous) mappings of process pid, read in chunks that overlap by
    the longest needle."""
    counts = {name: 0 for name in needles}
    overlap = max(len(v) for v in needles.values()) - 1
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            perms = fields[1]
            name = fields[5] if len(fields) > 5 else ""
            if "r" not in perms or name in ("[vvar]", "[vsyscall]") or hi - lo > MAPPING_MAX:
                continue
            if "w" not in perms and name:
                continue  # a file's text: never holds what came at run time
            tail = b""
            for at in range(lo, hi, CHUNK):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(CHUNK, hi - at))
                except OSError:
                    tail = b""
                    continue
                for key, value in needles.items():
                    # a match inside the overlap was counted with the last chunk
                    counts[key] += data.count(value) - tail.count(value)
                tail = data[-overlap:] if overlap > 0 else b""
    return counts


class SecretsAfterPamEnd(unittest.TestCase):
    """After three logins and pam_end, no copy of the password, the client
    secret, the Basic header or a token is left in the host's memory: the
    module's own buffers are cleansed, OpenSSL cleanses the plaintext it
    decrypted (SSL_OP_CLEANSE_PLAINTEXT), libcurl reads the request body
    from ours (CURLOPT_READFUNCTION) and its own copies of the request and
    the response are cleansed when freed (curl_global_init_mem)."""

    CYCLES = 3

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)

    def sweep(self, **profile):
        self.srv.reset()
        user = pamtest.LOCAL_USERS[0]
        password = "pw-" + secrets.token_hex(12)
        client_id = "mem-" + secrets.token_hex(4)
        client_secret = "cs-" + secrets.token_hex(12)
        self.srv.user(user, password)
        self.srv.client(client_id, secret=client_secret, grants=["password", "refresh_token"])
        conf = self.env.config({"token_url": self.srv.url("/generic/token"), "grant": "password",
                                "client_id": client_id, "client_secret": client_secret,
                                "ca_file": self.srv.ca_file, "minimum_uid": 0, **profile})
        svc = self.env.service("mem", [("auth", "required", pamtest.module(),
                                        f"config={conf} fail_delay=0")])
        p = subprocess.Popen([LOOP, "-n", str(self.CYCLES), "-w", svc, user],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env.environ(debuglevel=None))
        try:
            p.stdin.write((password + "\n").encode())
            p.stdin.flush()
            out = b""
            while b"waiting" not in out:
                line = p.stdout.readline()
                if not line:
                    self.fail("pam-loop ended: " + out.decode() + p.stderr.read().decode())
                out += line
            self.assertIn(f"done {self.CYCLES} cycles, 0 failures", out.decode())
            tokens = self.srv.tokens(client_id)
            self.assertEqual(len(tokens["access"]), self.CYCLES)
            basic = base64.b64encode(f"{urllib.parse.quote_plus(client_id)}:"
                                     f"{urllib.parse.quote_plus(client_secret)}".encode())
            needles = {"password": password.encode(), "client secret": client_secret.encode(),
                       "Basic header": basic}
            for i, t in enumerate(tokens["access"]):
                needles[f"access token {i + 1}"] = t.encode()
            for i, t in enumerate(tokens["refresh"]):
                needles[f"refresh token {i + 1}"] = t.encode()
            try:
                counts = scan(p.pid, needles)
            except PermissionError as e:
                self.skipTest(f"cannot read the memory of pam-loop: {e}")
        finally:
            p.stdin.close()
            p.wait(timeout=60)
            p.stdout.close()
            p.stderr.close()
        summary = ", ".join(f"{k} {v}" for k, v in counts.items()
                            if not k[-1].isdigit() or v)
        sys.stderr.write(f"\n# copies in pam-loop's memory after {self.CYCLES} logins "
                         f"and pam_end ({profile or 'basic, form'}): {summary}; "
                         f"{sum(v for k, v in counts.items() if 'token' in k)} copies of "
                         f"the {len(needles) - 3} tokens issued\n")
        self.assertEqual({k: v for k, v in counts.items() if v}, {})

    def test_client_secret_basic_form_body(self):
        self.sweep()

    def test_client_secret_post_json_body(self):
        self.sweep(client_auth="post", body="json")

    def test_everything_in_the_query_string(self):
        # Fluent's style: the password and client secret are in the URL.
        self.sweep(client_auth="post", body="query")


def relocations(argv, env):
    """The dynamic linker's final relocation count for a run of argv."""
    p = subprocess.run(argv, env=dict(env, LD_DEBUG="statistics"), capture_output=True,
                       timeout=60)
    lines = [l for l in p.stderr.decode(errors="replace").splitlines()
             if "final number of relocations:" in l]
    if p.returncode != 0 or not lines:
        raise AssertionError(f"{argv}: exit {p.returncode}: {p.stderr.decode()[-2000:]}")
    return int(lines[-1].rsplit(":", 1)[1])


class LibcurlBinding(unittest.TestCase):
    """Issue 14.11: symbols libcurl's dependencies leave to lazy binding are
    bound at once inside a host process (LD_BIND_NOW changes next to
    nothing) and only when used in oauth-token's own process (LD_BIND_NOW
    adds about 1,800 relocations on Debian 12)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.server()
        cls.env = pamtest.PamEnv(cls.srv)

    def setUp(self):
        if pamtest.SANITIZE:
            self.skipTest("the sanitizer runtimes' own relocations blur the count")
        self.srv.reset()

    def test_the_module_binds_libcurl_at_once(self):
        user = pamtest.LOCAL_USERS[0]
        self.srv.user(user, "bind-pass")
        conf = self.env.config({"token_url": self.srv.url("/generic/token"),
                                "grant": "password", "client_id": "test-client",
                                "client_secret": "test-secret", "ca_file": self.srv.ca_file,
                                "minimum_uid": 0})
        svc = self.env.service("bind", [("auth", "required", pamtest.module(),
                                         f"config={conf} fail_delay=0")])
        env = self.env.environ(debuglevel=None)
        argv = [LOOP, "-n", "1", svc, user]

        def count(extra):
            p = subprocess.run(argv, input=b"bind-pass\n", capture_output=True,
                               env=dict(env, LD_DEBUG="statistics", **extra), timeout=60)
            lines = [l for l in p.stderr.decode().splitlines()
                     if "final number of relocations:" in l]
            self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
            return int(lines[-1].rsplit(":", 1)[1])
        lazy, now = count({}), count({"LD_BIND_NOW": "1"})
        sys.stderr.write(f"\n# pam-loop + pam_oauth.so: {lazy} relocations, "
                         f"{now} with LD_BIND_NOW\n")
        self.assertLess(now - lazy, 300)

    def test_the_helper_binds_lazily(self):
        d = harness.tmpdir()
        conf = harness.write_file(os.path.join(d, "c.conf"), f"""[default]
token_url = {self.srv.url("/generic/token")}
client_id = test-client
client_secret = test-secret
ca_file = {self.srv.ca_file}
""")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_TOKEN_", "PAM_OAUTH_", "XDG_", "LD_"))}
        counts = []
        for extra in ({}, {"LD_BIND_NOW": "1"}):
            cache = os.path.join(d, "cache-" + secrets.token_hex(4))  # a cold fetch
            counts.append(relocations([HELPER, "-c", conf, "get"],
                                      dict(env, OAUTH_TOKEN_CACHE_DIR=cache, **extra)))
        lazy, now = counts
        sys.stderr.write(f"\n# oauth-token cold fetch: {lazy} relocations, {now} with "
                         f"LD_BIND_NOW\n")
        self.assertGreater(now - lazy, 500)


if __name__ == "__main__":
    unittest.main()
