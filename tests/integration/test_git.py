"""git-credential-oauth-token: real git clones and fetches over HTTPS from
the test server's git http-backend, and git's credential protocol fed
directly (Debian 12's git 2.39 does not send capability[]=authtype).

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_git -v
"""

import os
import re
import secrets
import shutil
import subprocess
import time
import unittest

import harness
from test_helper import (GIT_HELPER, HELPER, SRV, HelperTestCase, children, closed_port,
                         proc_leaks, resource_status)

HOST = f"127.0.0.1:{SRV.port}"
GENERIC = SRV.url("/generic/token")


def profile(name, match, *lines):
    body = "\n".join(lines)
    return f"""
[{name}]
token_url = {GENERIC}
client_id = test-client
client_secret = test-secret
ca_file = {SRV.ca_file}
match = {match}
{body}
"""


class GitOverHttps(HelperTestCase):
    extra_config = (profile("git", f"https://{HOST}/")
                    + profile("gitpath", f"https://{HOST}/git/"))

    def setUp(self):
        super().setUp()
        self.name = "repo-" + secrets.token_hex(4)
        self.url = SRV.git_init(self.name)
        self.gitconfig = os.path.join(self.dir, "gitconfig")
        self.set_helper(f"{GIT_HELPER} -p git")
        self.genv = dict(self.env, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=self.gitconfig,
                         GIT_TERMINAL_PROMPT="0", GIT_SSL_CAINFO=SRV.ca_file)
        self.genv.pop("SSH_ASKPASS", None)
        self.work = os.path.join(self.dir, "work")

    def set_helper(self, helper, *extra):
        lines = "\n".join(extra)
        harness.write_file(self.gitconfig, f"""[credential]
\thelper =
\thelper = {helper}
{lines}
""")

    def git(self, *args, check=True, env=None):
        p = subprocess.run(["git", *args], env=env or self.genv, capture_output=True,
                           text=True, timeout=120, cwd=self.dir)
        if check:
            self.assertEqual(p.returncode, 0, f"git {' '.join(args)}:\n{p.stderr}")
        return p

    def clone(self):
        self.git("clone", "--quiet", self.url, self.work)
        with open(os.path.join(self.work, "README")) as f:
            self.assertEqual(f.read(), f"Test repository {self.name}\n")

    def test_clone_and_fetch(self):
        self.clone()
        self.assertEqual(SRV.stats()["token_requests"], {"test-client": 1})
        self.git("-C", self.work, "fetch", "--quiet")
        self.git("-C", self.work, "pull", "--quiet")
        self.assertEqual(self.total(), 1)  # the cached token served them all
        self.assertTrue(os.path.exists(self.cache_file("git")))

    def test_profile_chosen_by_match(self):
        self.set_helper(GIT_HELPER)
        self.clone()
        self.assertTrue(os.path.exists(self.cache_file("git")))
        self.assertFalse(os.path.exists(self.cache_file("gitpath")))

    def test_longest_match_with_use_http_path(self):
        self.set_helper(GIT_HELPER, "\tuseHttpPath = true")
        self.clone()
        self.assertTrue(os.path.exists(self.cache_file("gitpath")))
        self.assertFalse(os.path.exists(self.cache_file("git")))

    def test_helper_by_name_from_path(self):
        # git prepends "git credential-" to a bare helper name
        self.set_helper("oauth-token -p git")
        env = dict(self.genv, PATH=os.path.dirname(GIT_HELPER) + os.pathsep + self.genv["PATH"])
        self.git("clone", "--quiet", self.url, self.work, env=env)
        self.assertEqual(self.total(), 1)

    def test_revoked_token_fails_once_then_recovers(self):
        self.clone()
        old = self.token("-p", "git")
        SRV.revoke(all=True)
        before = self.total()
        first = self.git("-C", self.work, "fetch", "--quiet", check=False)
        if first.returncode != 0:
            # git 2.39 does not retry: it reports the token with erase ...
            self.assertIn("Authentication failed", first.stderr)
            status = self.ok("-p", "git", "status").stdout
            self.assertIn("token:          none", status)
            # ... and the next fetch gets a new one
            self.git("-C", self.work, "fetch", "--quiet")
        self.assertEqual(self.total(), before + 1)
        new = self.token("-p", "git")
        self.assertNotEqual(new, old)
        self.assertEqual(resource_status(new), 200)

    def git_log(self, host=None):
        """The server's log of git requests (to host, when given)."""
        log = SRV.stats()["git_log"]
        return [r for r in log if host is None or r["host"] == host]

    def test_profile_without_match_never_answers(self):
        """-p NAME with a profile that has no match key: refused, with how
        to scope it; no token is requested or sent (issue 14.2)."""
        self.set_helper(f"{GIT_HELPER} -p wave")  # wave has no match key
        p = self.git("clone", "--quiet", self.url, self.work, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("profile wave has no match key", p.stderr)
        self.assertIn("match = https://git.example.com/", p.stderr)
        self.assertIn("credential.https://git.example.com.helper", p.stderr)
        self.assertEqual(self.total(), 0)
        self.assertFalse(any(r["authorization"] for r in self.git_log()))
        # Scoped in git's URL-specific helper, as the message says.
        SRV.reset()
        self.name = "repo-" + secrets.token_hex(4)
        self.url = SRV.git_init(self.name)
        harness.write_file(self.gitconfig, f"""[credential]
\thelper =
[credential "https://{HOST}"]
\thelper = {GIT_HELPER} -p git -o match=https://{HOST}/
""")
        self.clone()

    def test_malicious_submodule_gets_no_token(self):
        """A submodule on another host (localhost: the same server under
        another name) asks for credentials: the helper answers only for
        its profile's host (the CVE-2020-11008 class)."""
        sub = "sub-" + secrets.token_hex(4)
        SRV.git_init(sub)
        commit = SRV.git_commit(sub)
        evil = f"https://localhost:{SRV.port}/git/{sub}.git"
        same = f"https://{HOST}/git/{sub}.git"
        evil_super = SRV.git_init("super-" + secrets.token_hex(4),
                                  {"lib": {"url": evil, "commit": commit}})
        good_super = SRV.git_init("super-" + secrets.token_hex(4),
                                  {"lib": {"url": same, "commit": commit}})
        # The control: a submodule on the profile's host gets the token.
        work = os.path.join(self.dir, "w-good")
        self.git("clone", "--quiet", "--recurse-submodules", good_super, work)
        self.assertTrue(os.path.exists(os.path.join(work, "lib", "README")))
        for helper in (GIT_HELPER, f"{GIT_HELPER} -p git"):
            with self.subTest(helper=helper):
                SRV.reset()
                shutil.rmtree(self.cache, ignore_errors=True)
                self.set_helper(helper)
                work = os.path.join(self.dir, "w-" + secrets.token_hex(4))
                p = self.git("clone", "--quiet", "--recurse-submodules", evil_super, work,
                             check=False)
                self.assertNotEqual(p.returncode, 0)
                self.assertRegex(p.stderr, rf"(no profile matches|profile git does not match) "
                                 rf"https://localhost:{SRV.port}/")
                # The superproject came with the token ...
                self.assertTrue(os.path.exists(os.path.join(work, "README")), p.stderr)
                self.assertTrue(any(r["authorization"] for r in self.git_log(HOST)))
                # ... the submodule's host asked and got nothing.
                evil_requests = self.git_log(f"localhost:{SRV.port}")
                self.assertTrue(evil_requests)
                self.assertFalse(any(r["authorization"] for r in evil_requests), evil_requests)
        # A profile without a match key (what answered every host before):
        # nothing for anyone, above all not the submodule's host.
        SRV.reset()
        shutil.rmtree(self.cache, ignore_errors=True)
        self.set_helper(f"{GIT_HELPER} -p default")
        work = os.path.join(self.dir, "w-nomatch")
        p = self.git("clone", "--quiet", "--recurse-submodules", evil_super, work, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("profile default has no match key", p.stderr)
        self.assertFalse(any(r["authorization"] for r in self.git_log(f"localhost:{SRV.port}")))

    def test_redirect_to_another_host_gets_no_token(self):
        """A remote that redirects to another host: git asks for the new
        host's credentials, which the helper does not give."""
        SRV.fault(f"/git/{self.name}.git/info/refs", "redirect", status=302,
                  location=f"https://localhost:{SRV.port}/git/{self.name}.git/info/refs"
                           "?service=git-upload-pack")
        p = self.git("clone", "--quiet", self.url, self.work, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"profile git does not match https://localhost:{SRV.port}/", p.stderr)
        evil_requests = self.git_log(f"localhost:{SRV.port}")
        self.assertTrue(evil_requests)
        self.assertFalse(any(r["authorization"] for r in evil_requests), evil_requests)
        self.assertEqual(self.total(), 0)
        # The same with a profile without a match key (which answered any
        # host before): refused.
        SRV.fault(f"/git/{self.name}.git/info/refs", "redirect", status=302,
                  location=f"https://localhost:{SRV.port}/git/{self.name}.git/info/refs"
                           "?service=git-upload-pack")
        self.set_helper(f"{GIT_HELPER} -p default")
        p = self.git("clone", "--quiet", self.url, self.work, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertFalse(any(r["authorization"] for r in self.git_log(f"localhost:{SRV.port}")))

    def test_dot_segments_do_not_leave_a_path_prefix(self):
        """A profile for one repository (path prefix, useHttpPath): a remote
        URL that climbs out of it with .. gets no token, one that stays in
        it does."""
        other = "other-" + secrets.token_hex(4)
        SRV.git_init(other)
        conf = harness.write_file(os.path.join(self.dir, "one-repo.conf"),
                                  profile("one-repo", f"https://{HOST}/git/{self.name}.git"))
        env = dict(self.genv, PAM_OAUTH_CONFIG=conf)
        self.set_helper(GIT_HELPER, "\tuseHttpPath = true")
        for url in (f"https://{HOST}/git/{self.name}.git/../{other}.git",
                    f"https://{HOST}/git/{self.name}.git/%2e%2e/{other}.git"):
            with self.subTest(url=url):
                SRV.reset()
                p = self.git("clone", "--quiet", url, os.path.join(self.dir, "w-bad"),
                             check=False, env=env)
                self.assertNotEqual(p.returncode, 0)
                self.assertNotIn("one-repo: ", p.stderr.replace("profile one-repo", ""))
                self.assertFalse(any(r["authorization"] for r in self.git_log()), self.git_log())
                self.assertEqual(self.total(), 0)
        SRV.reset()
        self.git("clone", "--quiet", f"https://{HOST}/git/./{self.name}.git", self.work, env=env)
        self.assertTrue(any(r["authorization"] for r in self.git_log()))

    def test_host_without_profile(self):
        self.set_helper(f"{GIT_HELPER} -p git")
        self.clone()
        other = os.path.join(self.dir, "no-profile.conf")
        harness.write_file(other, profile("elsewhere", "https://git.example.com/"))
        env = dict(self.genv, PAM_OAUTH_CONFIG=other)
        self.set_helper(GIT_HELPER)
        p = self.git("clone", "--quiet", self.url, os.path.join(self.dir, "w2"), check=False,
                     env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"no profile matches https://{HOST}/", p.stderr)

    def test_token_not_in_argv_or_environment_during_clone(self):
        token = self.token("-p", "git")
        SRV.fault(f"/git/{self.name}.git/git-upload-pack", "stall", seconds=4)
        p = subprocess.Popen(["git", "clone", "--quiet", self.url, self.work], env=self.genv,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.dir)
        try:
            deadline = time.monotonic() + 10
            while not children(p.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)  # git-remote-https holds the token, the server stalls
            self.assertIsNone(p.poll(), "the clone did not stall")
            self.assertEqual(proc_leaks(token), [])
        finally:
            out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.total(), 1)


class GitProtocol(HelperTestCase):
    extra_config = (profile("git", f"https://{HOST}/")
                    + profile("example-org", "https://git.example.com/org")
                    + profile("example-team", "https://git.example.com/team/ https://other.example")
                    + profile("dup-a", "https://dup.example.com/")
                    + profile("dup-b", "https://dup.example.com:443")
                    + profile("local-http", "http://127.0.0.1:8080/ http://git.example.net/",
                              "allow_http = yes"))

    def helper(self, action, text, *args, program=GIT_HELPER):
        return self.run_helper(*args, action, input=text, program=program)

    def answer(self, text, *args, **kw):
        p = self.helper("get", text, *args, **kw)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertTrue(p.stdout.endswith("\n"))
        return p.stdout.splitlines()

    def request(self, host=HOST, protocol="https", path=None, extra=""):
        text = f"protocol={protocol}\nhost={host}\n"
        if path is not None:
            text += f"path={path}\n"
        return text + extra + "\n"

    def check_expiry(self, line):
        m = re.fullmatch(r"password_expiry_utc=(\d+)", line)
        self.assertTrue(m, line)
        self.assertTrue(abs(int(m.group(1)) - time.time() - 3600) < 10, line)

    def test_answer_for_old_git(self):
        lines = self.answer(self.request(path=f"git/x.git", extra="wwwauth[]=Basic realm=x\n"))
        self.assertEqual(len(lines), 3, lines)
        self.assertEqual(lines[0], "username=oauth2")
        token = lines[1].removeprefix("password=")
        self.assertEqual(lines[1], "password=" + token)
        self.assertEqual(token, self.token("-p", "git"))
        self.assertEqual(resource_status(token), 200)
        self.check_expiry(lines[2])

    def test_git_username(self):
        lines = self.answer(self.request(), "-o", "git_username=x-token-auth")
        self.assertEqual(lines[0], "username=x-token-auth")

    def test_answer_with_authtype_capability(self):
        text = "capability[]=authtype\ncapability[]=state\n" + self.request()
        lines = self.answer(text)
        self.assertEqual(len(lines), 5, lines)
        self.assertEqual(lines[:2], ["capability[]=authtype", "authtype=Bearer"])
        token = self.token("-p", "git")
        self.assertEqual(lines[2], "credential=" + token)
        self.assertEqual(lines[3], "ephemeral=1")
        self.check_expiry(lines[4])
        self.assertFalse(any(l.startswith(("username=", "password=")) for l in lines))

    def test_empty_capability_resets_the_list(self):
        lines = self.answer("capability[]=authtype\ncapability[]=\n" + self.request())
        self.assertEqual(lines[0], "username=oauth2")

    def test_capability_action(self):
        p = self.helper("capability", "")
        self.assertEqual((p.returncode, p.stdout), (0, "version 0\ncapability authtype\n"))

    def test_store_is_silent(self):
        token = self.token("-p", "git")
        p = self.helper("store", self.request(extra=f"username=oauth2\npassword={token}\n"))
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        self.assertEqual(self.token("-p", "git"), token)
        self.assertEqual(self.total(), 1)

    def test_unknown_action_is_ignored(self):
        p = self.helper("frobnicate", self.request())
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        self.assertEqual(self.total(), 0)

    def test_oauth_token_git_command(self):
        lines = self.answer(self.request(), "git", program=HELPER)
        self.assertEqual(lines[1], "password=" + self.token("-p", "git"))

    def test_erase_the_current_token(self):
        token = self.token("-p", "git")
        p = self.helper("erase", self.request(extra=f"username=oauth2\npassword={token}\n"))
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        self.assertIn("token:          none", self.ok("-p", "git", "status").stdout)
        self.assertNotEqual(self.token("-p", "git"), token)
        self.assertEqual(self.total(), 2)

    def test_erase_a_stale_token_keeps_the_newer_one(self):
        stale = self.token("-p", "git")
        self.ok("-p", "git", "refresh")
        newer = self.token("-p", "git")
        p = self.helper("erase", self.request(extra=f"password={stale}\n"))
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        self.assertEqual(self.token("-p", "git"), newer)
        self.assertEqual(self.total(), 2)

    def test_erase_a_credential_with_authtype(self):
        token = self.token("-p", "git")
        other = self.request(extra=f"capability[]=authtype\nauthtype=Basic\ncredential={token}\n")
        self.assertEqual(self.helper("erase", other).returncode, 0)
        self.assertEqual(self.token("-p", "git"), token)  # not a Bearer credential
        mine = self.request(extra=f"capability[]=authtype\nauthtype=Bearer\ncredential={token}\n")
        self.assertEqual(self.helper("erase", mine).returncode, 0)
        self.assertNotEqual(self.token("-p", "git"), token)

    def test_erase_for_a_host_no_profile_covers(self):
        token = self.token("-p", "git")
        p = self.helper("erase", self.request(host="github.com", extra=f"password={token}\n"))
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        self.assertEqual(self.token("-p", "git"), token)

    def chosen(self, host, path=None, *args):
        """The profile that answered, from the cache file it created."""
        before = set(os.listdir(self.cache)) if os.path.isdir(self.cache) else set()
        p = self.helper("get", self.request(host=host, path=path), *args)
        if p.returncode != 0:
            self.assertEqual(p.stdout, "")
            return None
        after = {f for f in os.listdir(self.cache) if f.endswith(".json")}
        new = after - before
        self.assertEqual(len(new), 1, (before, after))
        return new.pop().removesuffix(".json")

    def test_match_prefix_boundaries(self):
        self.assertEqual(self.chosen("git.example.com", "org/x.git"), "example-org")
        self.assertEqual(self.chosen("git.example.com.evil.test", "org/x.git"), None)
        self.assertEqual(self.chosen("evilgit.example.com", "org/x.git"), None)
        self.assertEqual(self.chosen("git.example.com", "organisation/x.git"), None)
        self.assertEqual(self.chosen("git.example.com", None), None)  # no useHttpPath
        self.assertEqual(self.chosen("git.example.com:8443", "org/x.git"), None)

    def test_match_ignores_case_and_default_port(self):
        self.assertEqual(self.chosen("GIT.Example.COM:443", "org/a/b.git"), "example-org")

    def test_longest_match_wins(self):
        self.assertEqual(self.chosen("git.example.com", "team/x.git"), "example-team")
        lines = self.answer(self.request(host="other.example"))
        self.assertEqual(lines[1], "password=" + self.token("-p", "example-team"))

    def test_equal_matches_are_an_error(self):
        p = self.helper("get", self.request(host="dup.example.com"))
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        self.assertIn("dup-a", p.stderr)
        self.assertIn("dup-b", p.stderr)

    def test_profile_option_respects_its_match(self):
        p = self.helper("get", self.request(host="git.example.com", path="team/x.git"),
                        "-p", "example-org")
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertIn("does not match", p.stderr)
        # a profile without a match key answers nowhere (issue 14.2) ...
        p = self.helper("get", self.request(host="anything.example"), "-p", "default")
        self.assertEqual((p.returncode, p.stdout), (2, ""))
        self.assertIn("profile default has no match key", p.stderr)
        self.assertIn("(this request: https://anything.example/)", p.stderr)
        # erase gives nothing away: it drops only the token git hands back
        token = self.token()
        p = self.helper("erase", self.request(host="anything.example",
                                              extra="password=other\n"), "-p", "default")
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        self.assertEqual(self.token(), token)
        p = self.helper("erase", self.request(host="anything.example",
                                              extra=f"password={token}\n"), "-p", "default")
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        self.assertNotEqual(self.token(), token)
        # ... until one is given, in the file or on the command line
        lines = self.answer(self.request(host="anything.example"), "-p", "default",
                            "-o", "match=https://anything.example/")
        self.assertEqual(lines[0], "username=oauth2")
        self.assertEqual(self.total(), 2)

    def test_hostile_requests(self):
        """Requests a malicious remote, submodule or redirect could make git
        send, against path- and host-scoped match keys (issue 14.2)."""
        port = SRV.port
        cases = [
            # (host, path, the profile that answers or None)
            ("git.example.com", "org/x.git", "example-org"),
            ("git.example.com", "org/../evil.git", None),
            ("git.example.com", "org/x/../../evil.git", None),
            ("git.example.com", "evil/../org/x.git", None),
            ("git.example.com", "org/sub/../x.git", "example-org"),
            ("git.example.com", "org/./x.git", "example-org"),
            ("git.example.com", "org//x.git", "example-org"),
            ("git.example.com", "org/%2e%2e/evil.git", None),
            ("git.example.com", "org/..;/evil.git", None),
            ("git.example.com", "org\\..\\evil.git", None),
            ("git.example.com", "org/x.git?a=/../../evil", None),
            ("GIT.EXAMPLE.COM.", "org/x.git", "example-org"),
            ("git.example.com:443", "org/x.git", "example-org"),
            ("git.example.com:0443", "org/x.git", "example-org"),
            ("git.example.com:8443", "org/x.git", None),
            ("git.example.com.evil.test", "org/x.git", None),
            ("evil.test", "org/x.git", None),
            (f"127.0.0.1:{port}", None, "git"),
            (f"127.1:{port}", None, "git"),
            (f"2130706433:{port}", None, "git"),
            (f"0x7f.0.0.1:{port}", None, "git"),
            (f"127.0.0.1.:{port}", None, "git"),
            (f"127.0.0.2:{port}", None, None),
            (f"[::1]:{port}", None, None),
            (f"localhost:{port}", None, None),
            (f"127.0.0.1:{port + 1 if port < 65535 else port - 1}", None, None),
        ]
        for host, path, want in cases:
            with self.subTest(host=host, path=path):
                if os.path.isdir(self.cache):
                    for f in os.listdir(self.cache):
                        os.remove(os.path.join(self.cache, f))
                self.assertEqual(self.chosen(host, path), want)
        for host in ("git.example.com@evil.test", "evil.test/git.example.com",
                     "git.example.com%2f", "a..b", "[::1", "[fe80::1%eth0]",
                     "b\u00fccher.example"):
            with self.subTest(host=host):
                p = self.helper("get", self.request(host=host).encode())
                self.assertEqual((p.returncode, p.stdout), (2, ""), p.stderr)
                self.assertIn("not a host name", p.stderr)
        self.assertEqual(SRV.stats()["token_requests"].get("test-client", 0),
                         sum(1 for c in cases if c[2]))

    def test_malformed_match_key_fails_closed(self):
        # A typo must not let a less specific profile answer in its place.
        bad = harness.write_file(os.path.join(self.dir, "bad.conf"),
                                 profile("any", "https://git.example.org/")
                                 + profile("bad-match", "git.example.org/path"))
        p = self.helper("get", self.request(host="git.example.org", path="path/x.git"),
                        "-c", bad)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.returncode, 2)
        self.assertIn("bad-match", p.stderr)
        self.assertIn("git.example.org/path", p.stderr)

    def test_http_only_to_loopback_with_allow_http(self):
        lines = self.answer(self.request(protocol="http", host="127.0.0.1:8080"))
        self.assertTrue(lines[1].startswith("password="))
        p = self.helper("get", self.request(protocol="http", host="git.example.net"))
        self.assertEqual((p.returncode, p.stdout), (2, ""))
        self.assertIn("loopback", p.stderr)
        p = self.helper("get", self.request(protocol="http", host=HOST))
        self.assertEqual((p.returncode, p.stdout), (1, ""))  # git's match is https
        p = self.helper("get", self.request(protocol="http", host=HOST), "-p", "default",
                        "-o", f"match=http://{HOST}/")
        self.assertEqual((p.returncode, p.stdout), (2, ""))
        self.assertIn("allow_http", p.stderr)

    def test_lines_after_the_blank_line_are_not_read(self):
        lines = self.answer(self.request() + "host=evil.example\n\n")
        self.assertEqual(lines[0], "username=oauth2")

    def test_malformed_requests(self):
        good = f"protocol=https\nhost={HOST}\n"
        cases = [
            ("CR in a value", f"protocol=https\nhost={HOST}\r\n\n", "carriage return"),
            ("CR in the protocol", f"protocol=https\r\nhost={HOST}\n\n", "carriage return"),
            ("CR in an unknown key", good + "x-note=a\rb\n\n", "carriage return"),
            ("NUL in a value", f"protocol=https\nhost={HOST}\0evil.example\n\n", "NUL"),
            ("NUL in a password", good + "password=a\0b\n\n", "NUL"),
            ("line without =", good + "garbage\n\n", "no '='"),
            ("empty key", good + "=value\n\n", "empty key"),
            ("repeated host", good + "host=evil.example\n\n", "'host' given twice"),
            ("repeated protocol", good + "protocol=https\n\n", "'protocol' given twice"),
            ("repeated password", good + "password=a\npassword=b\n\n", "given twice"),
            ("empty host", "protocol=https\nhost=\n\n", "empty host"),
            ("no host", "protocol=https\n\n", "no host"),
            ("no protocol", f"host={HOST}\n\n", "no protocol"),
            ("host with a slash", "protocol=https\nhost=a.example/b\n\n", "not a host name"),
            ("unknown protocol", f"protocol=ssh\nhost={HOST}\n\n", "'ssh' is not supported"),
            ("cert protocol", "protocol=cert\nhost=\n\n", "empty host"),
            ("no matching profile", "protocol=https\nhost=github.com\n\n",
             "no profile matches https://github.com/"),
            ("empty request", "\n", "no protocol"),
        ]
        for name, text, message in cases:
            with self.subTest(name):
                p = self.helper("get", text.encode())
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertIn(message, p.stderr)
                self.assertTrue(p.stderr.startswith("oauth-token: "), p.stderr)
                self.assertNotIn("evil", p.stderr)
                p = self.helper("erase", text.encode())
                if message != "no profile matches https://github.com/":
                    self.assertNotEqual(p.returncode, 0, name)
                self.assertEqual(p.stdout, "")
        self.assertEqual(self.total(), 0)

    def test_store_rejects_malformed_input(self):
        p = self.helper("store", f"protocol=https\nhost={HOST}\npassword=a\rb\n\n")
        self.assertEqual((p.returncode, p.stdout), (2, ""))
        self.assertNotIn("a\rb", p.stderr)

    def test_no_token_when_the_provider_fails(self):
        SRV.fault("/generic/token", "status", count=-1, status=500)
        p = self.helper("get", self.request(), "-o", "retries=0")
        self.assertEqual((p.returncode, p.stdout), (4, ""))
        self.assertIn("oauth-token: git: ", p.stderr)

    def test_closed_port_profile(self):
        p = self.helper("get", self.request(), "-o",
                        f"token_url=https://127.0.0.1:{closed_port()}/t", "-o", "retries=0")
        self.assertEqual((p.returncode, p.stdout), (4, ""))


if __name__ == "__main__":
    unittest.main()
