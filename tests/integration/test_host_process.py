"""How the two programs load libcurl.

- Binding (issue 14.11): the module loads libcurl with RTLD_NOW (every
  symbol bound at once, inside sshd or sudo), oauth-token with RTLD_LAZY;
  the dynamic linker's relocation count (LD_DEBUG=statistics) with and
  without LD_BIND_NOW shows which.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_host_process -v
"""

import os
import secrets
import subprocess
import sys
import unittest

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
