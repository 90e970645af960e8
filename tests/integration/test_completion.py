"""Shell completion: completion/oauth-token.bash and completion/_oauth-token.

Bash   the real bash with bash-completion's library loaded, the way an
       interactive shell loads completions/oauth-token: COMP_WORDS and
       COMP_CWORD as bash sets them (bash splits "--profile=x" at '='),
       then _oauth_token, and COMPREPLY compared with what is expected.
Zsh    an interactive zsh on a pseudo-terminal with compinit and the
       completion's directory first in $fpath; TAB is typed and what zsh
       lists or inserts is read back from the terminal.
Both take profile names from `oauth-token profiles`, so the tests also check
that a -c on the command line changes the names offered, and that the
profiles command lists what the configuration holds.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
import unittest

import harness

BUILD = harness.build_dir()
HELPER_DIR = os.path.join(BUILD, "curl_helper")
COMPLETION = os.path.join(harness.REPO_ROOT, "completion")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

PROFILE = """[{name}]
token_url = https://idp.example.com/token
client_id = c
client_secret_command = echo s
"""


class Fixture(unittest.TestCase):
    def setUp(self):
        self.dir = harness.tmpdir()
        self.config = harness.write_file(
            os.path.join(self.dir, "pam-oauth.conf"),
            "".join(PROFILE.format(name=n) for n in ("default", "froomle", "fluent-prod"))
            + "match = https://registry.example.com\n", 0o644)
        self.other = harness.write_file(os.path.join(self.dir, "other.conf"),
                                        PROFILE.format(name="only-other"), 0o644)
        self.env = {"PATH": HELPER_DIR + ":/usr/bin:/bin", "HOME": self.dir, "LC_ALL": "C",
                    "PAM_OAUTH_CONFIG": self.config, "TERM": "dumb"}


class Profiles(Fixture):
    def run_helper(self, *args):
        return subprocess.run([os.path.join(HELPER_DIR, "oauth-token"), *args], env=self.env,
                              capture_output=True, text=True, timeout=30)

    def test_lists_the_profiles_in_file_order(self):
        p = self.run_helper("profiles")
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (0, "default\nfroomle\nfluent-prod\n", ""))

    def test_json(self):
        p = self.run_helper("profiles", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = json.loads(p.stdout)
        self.assertEqual([e["name"] for e in listed], ["default", "froomle", "fluent-prod"])
        self.assertEqual(listed[2]["match"], "https://registry.example.com")
        self.assertEqual(listed[1]["source"], self.config + ":5")
        self.assertIsNone(listed[0]["match"])

    def test_config_option_and_merge(self):
        p = self.run_helper("-c", self.other, "profiles")
        self.assertEqual(p.stdout, "only-other\n")
        p = self.run_helper("-c", self.config, "-c", self.other, "profiles")
        self.assertEqual(p.stdout, "default\nfroomle\nfluent-prod\nonly-other\n")

    def test_errors(self):
        p = self.run_helper("-c", os.path.join(self.dir, "missing.conf"), "profiles")
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.conf", p.stderr)
        bad = harness.write_file(os.path.join(self.dir, "bad.conf"), "[ok]\nno equals sign\n")
        p = self.run_helper("-c", bad, "profiles")
        self.assertEqual(p.returncode, 2)
        self.assertIn("bad.conf:2", p.stderr)
        self.assertEqual(p.stdout, "")
        p = self.run_helper("profiles", "extra")
        self.assertEqual(p.returncode, 2)


@unittest.skipUnless(os.path.exists(BASH_COMPLETION),
                     "bash-completion is not installed (package bash-completion)")
class Bash(Fixture):
    SCRIPT = ('source "$1"; source "$2"; shift 2; COMP_WORDS=("$@"); '
              'COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; '
              '_oauth_token; printf "%s\\n" "${COMPREPLY[@]}"')

    def complete(self, *words):
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", self.SCRIPT, "bash",
                            BASH_COMPLETION, os.path.join(COMPLETION, "oauth-token.bash"),
                            *words], env=self.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stderr, "")
        return [l for l in p.stdout.split("\n") if l]

    def test_registered(self):
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                            'source "$1"; source "$2"; complete -p oauth-token', "bash",
                            BASH_COMPLETION, os.path.join(COMPLETION, "oauth-token.bash")],
                           env=self.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "complete -F _oauth_token oauth-token")

    def test_commands(self):
        self.assertEqual(self.complete("oauth-token", ""),
                         ["get", "header", "curl-config", "curl", "status", "refresh", "erase",
                          "login", "check-config", "fleet-key", "profiles", "git",
                          "docker"])
        self.assertEqual(self.complete("oauth-token", "st"), ["status"])
        self.assertEqual(self.complete("oauth-token", "-v", "re"), ["refresh"])

    def test_profiles(self):
        self.assertEqual(self.complete("oauth-token", "-p", ""),
                         ["default", "froomle", "fluent-prod"])
        self.assertEqual(self.complete("oauth-token", "status", "--profile", "=", "f"),
                         ["froomle", "fluent-prod"])
        self.assertEqual(self.complete("oauth-token", "-c", self.other, "-p", ""),
                         ["only-other"])
        self.assertEqual(self.complete("oauth-token", "--config", "=", self.other,
                                       "--profile", "=", ""), ["only-other"])

    def test_option_values(self):
        self.assertEqual(self.complete("oauth-token", "--format", "=", ""),
                         ["text", "json", "exec-credential"])
        self.assertEqual(self.complete("oauth-token", "-o", "refresh_"),
                         ["refresh_interval=", "refresh_margin="])
        self.assertIn("--if-due", self.complete("oauth-token", "refresh", "--"))
        self.assertEqual(self.complete("oauth-token", "git", ""),
                         ["get", "store", "erase", "capability"])
        self.assertEqual(self.complete("oauth-token", "docker", ""),
                         ["get", "store", "erase", "list", "version"])

    def test_curl_arguments_are_curls(self):
        if not os.path.exists("/usr/share/bash-completion/completions/curl"):
            self.skipTest("bash-completion has no completion for curl")
        self.assertEqual(self.complete("oauth-token", "-p", "froomle", "curl", "--verb"),
                         ["--verbose"])


@unittest.skipUnless(shutil.which("zsh"), "zsh is not installed (package zsh)")
class Zsh(Fixture):
    def complete(self, line):
        """What the terminal shows after typing line and TAB."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(shutil.which("zsh"), ["zsh", "-f", "-i"], self.env)
        try:
            def read(seconds, until=None):
                out, end = b"", time.time() + seconds
                while time.time() < end:
                    r, _, _ = select.select([fd], [], [], 0.05)
                    if r:
                        try:
                            chunk = os.read(fd, 65536)
                        except OSError:
                            break
                        if not chunk:
                            break
                        out += chunk
                        if until and until in out:
                            break
                return out
            os.write(fd, (f"PS1='READY> '; unsetopt beep; fpath=({COMPLETION} $fpath); "
                          "autoload -Uz compinit; compinit -u -D; "
                          "zstyle ':completion:*' menu no; print -r SETUP-''DONE\n").encode())
            read(10, b"SETUP-DONE")
            os.write(fd, line.encode() + b"\t")
            out = read(3)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", out.decode("utf-8", "replace"))

    def test_profiles_listed(self):
        out = self.complete("oauth-token -p ")
        for name in ("default", "froomle", "fluent-prod"):
            self.assertRegex(out, rf"(?m)(^|\s){re.escape(name)}(\s|$)", out)

    def test_profile_inserted_from_other_file(self):
        out = self.complete(f"oauth-token -c {self.other} --profile=")
        self.assertIn("--profile=only-other ", out)

    def test_command_and_option(self):
        self.assertIn("oauth-token status ", self.complete("oauth-token st"))
        self.assertIn("--if-due ", self.complete("oauth-token refresh --if"))
        out = self.complete("oauth-token --format=")
        for value in ("text", "json", "exec-credential"):
            self.assertIn(value, out)


if __name__ == "__main__":
    unittest.main()
