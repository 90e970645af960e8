"""docker-credential-oauth-token: the docker-credential-helpers protocol.

Protocol  every case of fixtures/docker-credential.json (get, store, erase,
          list, version; hostile server URLs; the protocol's error
          conventions) run through the docker-credential-oauth-token name,
          each with a fresh cache and a reset test server; a token handed
          out works at the server's resource endpoint.
Frontend  the same through `oauth-token docker ACTION`, -p's profile must
          name the registry too, and erase drops the cached token.
Hostile   registry URLs that try to reach a profile's token from another
          host, port, scheme or path (case, trailing dots, IPv4 forms, dot
          segments, encoded slashes, empty labels): normalised by the rule
          git uses (common/urlmatch), so each goes to the profile that names
          that registry or to none, and no token is asked for in vain.
Skopeo    (when skopeo is installed: Debian's, the containers/image library
          podman and buildah use) `skopeo inspect` of an image on the test
          server's OCI registry, with credHelpers naming oauth-token in an
          auth file and no login: skopeo asks the helper, sends the token
          to the registry's token service, and reads the image; a registry
          no profile names gets no token and skopeo is refused.
Docker    the same with the docker CLI (`docker manifest inspect`, no daemon
          needed) when one is on PATH.
"""
import json
import os
import re
import shutil
import subprocess
import textwrap
import unittest

import harness
from test_helper import SRV, resource_status

BUILD = harness.build_dir()
HELPER_DIR = os.path.join(BUILD, "curl_helper")
DOCKER_HELPER = os.path.join(HELPER_DIR, "docker-credential-oauth-token")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                        "docker-credential.json")
SKOPEO = shutil.which("skopeo")


def config(extra=""):
    common = textwrap.dedent(f"""\
        token_url = {SRV.url("/generic/token")}
        client_id = test-client
        client_secret = test-secret
        ca_file = {SRV.ca_file}
        retries = 0
        """)
    return (f"[reg]\n{common}match = https://registry.example.com https://127.0.0.1:5000/\n\n"
            f"[quay]\n{common}registry_username = $oauthtoken\n"
            "match = https://quay.example.com\n\n"
            f"[scoped]\n{common}match = https://ghcr.example.com/org\n\n"
            f"[nomatch]\n{common}\n" + extra)


class Base(unittest.TestCase):
    extra = ""

    def setUp(self):
        SRV.reset()
        self.dir = harness.tmpdir()
        self.config = harness.write_file(os.path.join(self.dir, "pam-oauth.conf"),
                                         config(self.extra))
        self.env = {"PATH": HELPER_DIR + ":/usr/bin:/bin", "HOME": self.dir, "LC_ALL": "C",
                    "PAM_OAUTH_CONFIG": self.config,
                    "OAUTH_TOKEN_CACHE_DIR": os.path.join(self.dir, "cache")}

    def run_helper(self, argv, stdin):
        return subprocess.run(argv, input=stdin.encode(), env=self.env, capture_output=True,
                              timeout=60)

    def cached_state(self, profile):
        p = subprocess.run([os.path.join(HELPER_DIR, "oauth-token"), "-p", profile, "status",
                            "--format", "json"], env=self.env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["state"]


class Protocol(Base):
    def test_fixtures(self):
        with open(FIXTURES) as f:
            cases = json.load(f)["cases"]
        wrong = []
        for case in cases:
            SRV.reset()
            shutil.rmtree(self.env["OAUTH_TOKEN_CACHE_DIR"], ignore_errors=True)
            p = self.run_helper([DOCKER_HELPER, case["action"]], case["input"])
            out, err = p.stdout.decode(), p.stderr.decode()
            problems = []
            if p.returncode != case["status"]:
                problems.append(f"exit {p.returncode}, want {case['status']}")
            if "stdout" in case:
                want = case["stdout"]
                if "<TOKEN>" in want:
                    m = re.fullmatch(re.escape(want).replace(re.escape("<TOKEN>"), "([!-~]+)"),
                                     out, re.S)
                    if not m:
                        problems.append(f"stdout {out!r}, want {want!r}")
                    elif resource_status(json.loads(out)["Secret"]) != 200:
                        problems.append("the Secret is not a token the server accepts")
                elif out != want:
                    problems.append(f"stdout {out!r}, want {want!r}")
            if "stdout_regex" in case and not re.search(case["stdout_regex"], out):
                problems.append(f"stdout {out!r} does not match {case['stdout_regex']!r}")
            requests = SRV.stats()["total"]
            if requests != case["token_requests"]:
                problems.append(f"{requests} token requests, want {case['token_requests']}")
            if err:
                problems.append(f"stderr {err!r}")
            if problems:
                wrong.append(f"{case['name']}: " + "; ".join(problems))
        print(f"# docker credential protocol: {len(cases)} fixture cases")
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_no_secret_in_errors(self):
        p = self.run_helper([DOCKER_HELPER, "store"],
                            '{"ServerURL":"registry.example.com","Username":"bob",'
                            '"Secret":"hunter2-secret"}')
        self.assertEqual(p.returncode, 1)
        self.assertNotIn(b"hunter2-secret", p.stdout + p.stderr)

    def test_get_is_a_cache_hit_the_second_time(self):
        first = self.run_helper([DOCKER_HELPER, "get"], "registry.example.com")
        second = self.run_helper([DOCKER_HELPER, "get"], "registry.example.com")
        self.assertEqual(first.returncode, 0, first.stdout)
        self.assertEqual(first.stdout, second.stdout)
        self.assertEqual(SRV.stats()["total"], 1)


class Frontend(Base):
    HELPER = os.path.join(HELPER_DIR, "oauth-token")

    def test_docker_command(self):
        p = self.run_helper([self.HELPER, "docker", "get"], "quay.example.com")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(json.loads(p.stdout)["Username"], "$oauthtoken")

    def test_profile_option_must_name_the_registry(self):
        p = self.run_helper([self.HELPER, "-p", "quay", "docker", "get"], "registry.example.com")
        self.assertEqual((p.returncode, p.stdout), (1, b"credentials not found in native keychain\n"))
        p = self.run_helper([self.HELPER, "-p", "reg", "docker", "get"], "registry.example.com")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(SRV.stats()["total"], 1)

    def test_erase_drops_the_cached_token(self):
        p = self.run_helper([DOCKER_HELPER, "get"], "registry.example.com")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(self.cached_state("reg"), "valid")
        p = self.run_helper([DOCKER_HELPER, "erase"], "registry.example.com")
        self.assertEqual((p.returncode, p.stdout), (0, b""))
        self.assertEqual(self.cached_state("reg"), "none")

    def test_usage(self):
        p = self.run_helper([DOCKER_HELPER], "")
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"get, store, erase, list or version", p.stderr)


# (server URL, the profile that answers it, or None: not found, or a regex
# of the refusal on standard output)
HOSTILE = [
    ("registry.example.com.", "reg"),
    ("REGISTRY.EXAMPLE.COM:443", "reg"),
    ("https://Registry.Example.Com.:443/v2/", "reg"),
    ("registry.example.com:444", None),
    ("registry.example.com:80", None),
    ("registry.example.com:0", r"port"),
    ("registry.example.com:443:443", r"port|host"),
    ("registry.example.com..", r"host"),
    ("registry.example.com.evil.test", None),
    ("evil.test/registry.example.com", None),
    ("registry.example.com%2eevil.test", None),
    ("registry.example.com\\@evil.test", r"not allowed"),
    ("http://registry.example.com", None),
    ("127.1:5000", "reg"),
    ("0x7f.0.0.1:5000", "reg"),
    ("2130706433:5000", "reg"),
    ("0177.0.0.1:5000", "reg"),
    ("[::1]:5000", None),
    ("[::ffff:127.0.0.1]:5000", None),
    ("127.0.0.2:5000", None),
    ("ghcr.example.com", None),
    ("ghcr.example.com/org", "scoped"),
    ("ghcr.example.com/org/app", "scoped"),
    ("ghcr.example.com//org//app/", "scoped"),
    ("ghcr.example.com/%6frg/app", "scoped"),
    ("ghcr.example.com/org/./app", "scoped"),
    ("ghcr.example.com/org/sub/../app", "scoped"),
    ("ghcr.example.com/org/../evil", None),
    ("ghcr.example.com/org/app/../../evil", None),
    ("ghcr.example.com/evil/../org/app", None),
    ("ghcr.example.com/org%2f..%2fevil", None),
    ("ghcr.example.com/org%2Fapp", None),
    ("ghcr.example.com/org%5c..%5cevil", None),
    ("ghcr.example.com/organisation", None),
    ("ghcr.example.com/ORG/app", None),
    ("GHCR.example.com/org/app", "scoped"),
]


class Hostile(Base):
    def test_hostile_registry_urls(self):
        wrong = []
        for url, want in HOSTILE:
            SRV.reset()
            shutil.rmtree(self.env["OAUTH_TOKEN_CACHE_DIR"], ignore_errors=True)
            p = self.run_helper([DOCKER_HELPER, "get"], url + "\n")
            out = p.stdout.decode(errors="replace")
            requests = SRV.stats()["total"]
            if want is None or (want not in ("reg", "scoped")):
                refused = (p.returncode == 1 and requests == 0 and
                           (out == "credentials not found in native keychain\n" if want is None
                            else re.search(want, out) is not None and
                            "credentials not found" not in out))
                if not refused:
                    wrong.append(f"{url!r}: exit {p.returncode}, {requests} token requests, "
                                 f"stdout {out!r}; want {'not found' if want is None else want}")
                continue
            states = {name: self.cached_state(name) for name in ("reg", "scoped")}
            if p.returncode != 0 or requests != 1 or states[want] != "valid" or \
                    any(v != "none" for k, v in states.items() if k != want):
                wrong.append(f"{url!r}: exit {p.returncode}, {requests} token requests, "
                             f"cached {states}, stdout {out!r}; want profile {want}")
        print(f"# docker: {len(HOSTILE)} hostile registry URLs")
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_profile_without_a_match_key_answers_no_registry(self):
        p = self.run_helper([os.path.join(HELPER_DIR, "oauth-token"), "-p", "nomatch", "docker",
                             "get"], "registry.example.com")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"profile nomatch has no match key", p.stdout)
        self.assertEqual(SRV.stats()["total"], 0)

    def test_profile_option_with_a_match_override(self):
        # what a URL-scoped credHelpers entry would run: -p with -o match=
        p = self.run_helper([os.path.join(HELPER_DIR, "oauth-token"), "-p", "nomatch", "-o",
                             "match=https://other.example.com/", "docker", "get"],
                            "other.example.com.")
        self.assertEqual(p.returncode, 0, p.stdout)
        p = self.run_helper([os.path.join(HELPER_DIR, "oauth-token"), "-p", "nomatch", "-o",
                             "match=https://other.example.com/", "docker", "get"],
                            "other.example.com:8443")
        self.assertEqual((p.returncode, p.stdout), (1, b"credentials not found in native keychain\n"))
        self.assertEqual(SRV.stats()["total"], 1)


@unittest.skipUnless(SKOPEO, "skopeo is not installed (package skopeo)")
class Skopeo(Base):
    def setUp(self):
        super().setUp()
        self.host = f"127.0.0.1:{SRV.port}"
        self.certs = os.path.join(self.dir, "certs")
        os.mkdir(self.certs)
        shutil.copyfile(SRV.ca_file, os.path.join(self.certs, "ca.crt"))
        harness.write_file(self.config, config(f"[local-registry]\n"
                                               f"token_url = {SRV.url('/generic/token')}\n"
                                               "client_id = test-client\n"
                                               "client_secret = test-secret\n"
                                               f"ca_file = {SRV.ca_file}\n"
                                               f"match = https://{self.host}\n"))

    def inspect(self, image, helpers):
        auth = harness.write_file(os.path.join(self.dir, "auth.json"),
                                  json.dumps({"auths": {}, "credHelpers": helpers}))
        return subprocess.run([SKOPEO, "inspect", "--authfile", auth, "--cert-dir", self.certs,
                               f"docker://{image}"], env=self.env, capture_output=True,
                              text=True, timeout=120)

    def test_inspect_through_the_helper(self):
        p = self.inspect(f"{self.host}/team/app:latest", {self.host: "oauth-token"})
        self.assertEqual(p.returncode, 0, p.stderr)
        image = json.loads(p.stdout)
        self.assertEqual(image["Labels"], {"pam-oauth": "test"})
        self.assertEqual(image["RepoTags"], ["latest"])
        stats = SRV.stats()
        self.assertEqual(stats["token_requests"], {"test-client": 1})
        self.assertGreaterEqual(stats["registry_logins"], 1)
        self.assertEqual(set(stats["registry_usernames"]), {"oauth2accesstoken"})
        print(f"# skopeo inspect: {stats['registry_requests']} registry requests, "
              f"{stats['registry_logins']} token-service logins, {stats['total']} token request")

    def test_registry_no_profile_names_gets_no_token(self):
        # the helper is asked, but the profile's match key names another port
        harness.write_file(self.config, config())
        p = self.inspect(f"{self.host}/team/app:latest", {self.host: "oauth-token"})
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"(?i)unauthorized|authentication required|401")
        stats = SRV.stats()
        self.assertEqual((stats["total"], stats["registry_logins"]), (0, 0))


DOCKER = shutil.which("docker")


@unittest.skipUnless(DOCKER, "no docker CLI on PATH (Debian's is package docker-cli in "
                             "later releases, docker.io in bookworm)")
class DockerCli(Skopeo):
    """The docker CLI itself: `docker manifest inspect` reads the manifest
    with the CLI's own registry client (no daemon needed), with credHelpers
    in $DOCKER_CONFIG/config.json.  --insecure: the CLI does not take a CA
    file for this, so it does not verify the test certificate."""

    # Skopeo's skip (no skopeo) is not this class's: decide afresh.
    __unittest_skip__ = DOCKER is None

    def inspect(self, image, helpers):
        conf = os.path.join(self.dir, "docker")
        os.makedirs(conf, exist_ok=True)
        harness.write_file(os.path.join(conf, "config.json"),
                           json.dumps({"credHelpers": helpers}))
        env = dict(self.env, DOCKER_CONFIG=conf, DOCKER_HOST="unix:///nonexistent/docker.sock")
        return subprocess.run([DOCKER, "manifest", "inspect", "--insecure", image], env=env,
                              capture_output=True, text=True, timeout=120)

    def test_inspect_through_the_helper(self):
        p = self.inspect(f"{self.host}/team/app:latest", {self.host: "oauth-token"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["schemaVersion"], 2)
        stats = SRV.stats()
        self.assertEqual(stats["token_requests"], {"test-client": 1})
        self.assertEqual(set(stats["registry_usernames"]), {"oauth2accesstoken"})
        print(f"# docker manifest inspect: {stats['registry_logins']} token-service login(s), "
              f"{stats['total']} token request")


if __name__ == "__main__":
    unittest.main()
