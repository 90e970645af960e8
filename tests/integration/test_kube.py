"""kubectl: `oauth-token --format exec-credential`.

Schema    the output, for each apiVersion KUBERNETES_EXEC_INFO can ask for
          (none, v1, v1beta1, with the cluster information kubectl adds when
          provideClusterInfo is set), validated with jsonschema against
          fixtures/exec-credential.schema.json (client-go's ExecCredential);
          the schema itself refuses what client-go refuses (so the check can
          fail).  expirationTimestamp is UTC and is when the profile's policy
          renews the token (refresh_interval, margin), the token works at the
          resource server, and a second call is a cache hit.
Errors    an unsupported or malformed KUBERNETES_EXEC_INFO is a usage error
          (exit 2) naming the variable, before any request is made.
kubectl   when a kubectl is on PATH, a kubeconfig with an exec entry running
          oauth-token, against the test server's Kubernetes API stand-in:
          `kubectl get --raw /version` succeeds with the token, for v1 and
          v1beta1, and the server saw the Bearer token.
"""
import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import unittest

import harness
from test_helper import HelperTestCase, SRV, resource_status

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                           "exec-credential.schema.json")
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def schema_errors(instance):
    """jsonschema's errors for instance against the fixture ([] when valid).
    Debian's python3-jsonschema, in this interpreter or in /usr/bin/python3."""
    code = textwrap.dedent("""\
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = cls(schema, format_checker=jsonschema.FormatChecker())
        print(json.dumps(sorted(e.message for e in v.iter_errors(json.loads(sys.stdin.read())))))
        """)
    for python in (sys.executable, "/usr/bin/python3"):
        p = subprocess.run([python, "-c", code, SCHEMA_FILE], input=json.dumps(instance),
                           capture_output=True, text=True, timeout=60)
        if p.returncode == 0:
            return json.loads(p.stdout)
        if "No module named 'jsonschema'" not in p.stderr:
            raise AssertionError(p.stderr)
    raise AssertionError("jsonschema is not installed (package python3-jsonschema)")


def exec_info(version, **spec):
    return json.dumps({"kind": "ExecCredential", "apiVersion": version,
                       "spec": {"interactive": False, **spec}})


class ExecCredential(HelperTestCase):
    def credential(self, *args, info=None, profile=None):
        env = dict(self.env)
        if info is not None:
            env["KUBERNETES_EXEC_INFO"] = info
        argv = (["-p", profile] if profile else []) + ["--format", "exec-credential", *args]
        p = self.run_helper(*argv, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertTrue(p.stdout.endswith("}\n"))
        return json.loads(p.stdout)

    def check(self, cred, version):
        self.assertEqual(schema_errors(cred), [])
        self.assertEqual(cred["apiVersion"], version)
        self.assertEqual(cred["kind"], "ExecCredential")
        self.assertEqual(resource_status(cred["status"]["token"]), 200)
        stamp = cred["status"]["expirationTimestamp"]
        self.assertRegex(stamp, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()

    def test_v1_by_default_and_cached(self):
        before = time.time()
        cred = self.credential()
        expiry = self.check(cred, V1)
        # a 3600 s token, renewed 300 s (the auto margin) before it expires
        self.assertAlmostEqual(expiry - before, 3600 - 300, delta=5)
        self.assertEqual(self.credential(), cred)
        self.assertEqual(self.total(), 1)

    def test_api_version_from_kubernetes_exec_info(self):
        for version in (V1, V1BETA1):
            cluster = {"server": "https://127.0.0.1:6443", "certificate-authority-data":
                       base64.b64encode(b"x" * 3000).decode(), "config": {"any": "thing"}}
            cred = self.credential(info=exec_info(version, cluster=cluster))
            self.check(cred, version)

    def test_refresh_interval_sets_the_expiry(self):
        """Froomle: 24 h tokens renewed every 10 minutes: kubectl is told
        to run the plugin again after 10 minutes, not 24 hours."""
        before = time.time()
        expiry = self.check(self.credential(profile="froomle"), V1)
        self.assertAlmostEqual(expiry - before, 600, delta=5)

    def test_bad_exec_info(self):
        cases = {
            exec_info("client.authentication.k8s.io/v1alpha1"):
                "apiVersion 'client.authentication.k8s.io/v1alpha1' is not supported",
            '{"kind": "ExecCredential"}': "no apiVersion",
            '{"kind": "Pod", "apiVersion": "v1"}': "kind is not ExecCredential",
            "{not json": "not a JSON object",
            "[]": "not a JSON object",
            exec_info(V1) + "garbage": "not a JSON object",
        }
        for info, message in cases.items():
            env = dict(self.env, KUBERNETES_EXEC_INFO=info)
            p = self.run_helper("--format", "exec-credential", env=env)
            self.assertEqual(p.returncode, 2, info)
            self.assertIn("KUBERNETES_EXEC_INFO: " + message, p.stderr)
            self.assertEqual(p.stdout, "")
        self.assertEqual(self.total(), 0)

    def test_only_with_get(self):
        for command in ("status", "refresh", "header"):
            p = self.run_helper(command, "--format", "exec-credential")
            self.assertEqual(p.returncode, 2)
            self.assertIn("only valid with 'get'", p.stderr)

    def test_failure_is_not_a_credential(self):
        p = self.run_helper("-p", "wrong-secret", "--format", "exec-credential")
        self.assertEqual(p.returncode, 3)
        self.assertEqual(p.stdout, "")

    def test_schema_refuses_what_kubectl_refuses(self):
        good = {"apiVersion": V1, "kind": "ExecCredential",
                "status": {"token": "t", "expirationTimestamp": "2030-01-01T00:00:00Z"}}
        self.assertEqual(schema_errors(good), [])
        bad = [
            {**good, "apiVersion": "client.authentication.k8s.io/v1alpha1"},
            {**good, "kind": "Credential"},
            {k: v for k, v in good.items() if k != "status"},
            {**good, "status": {"expirationTimestamp": "2030-01-01T00:00:00Z"}},
            {**good, "status": {"token": "t", "expirationTimestamp": "2030-01-01 00:00:00"}},
            {**good, "status": {"token": "t", "expirationTimestamp": 1893456000}},
            {**good, "status": {"token": "", "expirationTimestamp": "2030-01-01T00:00:00Z"}},
            {**good, "status": {"token": "t", "clientKeyData": "k"}},
        ]
        for instance in bad:
            self.assertNotEqual(schema_errors(instance), [], instance)


KUBECTL = shutil.which("kubectl")


@unittest.skipUnless(KUBECTL, "no kubectl on PATH (kubectl is not in Debian 12's archive "
                              "in a version with the v1 exec API)")
class Kubectl(HelperTestCase):
    def kubeconfig(self, version):
        with open(SRV.ca_file, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        helper = os.path.join(harness.build_dir(), "curl_helper", "oauth-token")
        text = textwrap.dedent(f"""\
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster:
                server: {SRV.base_url}
                certificate-authority-data: {ca}
            users:
            - name: oauth
              user:
                exec:
                  apiVersion: {version}
                  command: {helper}
                  args: ["--profile", "default", "--format", "exec-credential"]
                  env:
                  - name: PAM_OAUTH_CONFIG
                    value: {self.config}
                  interactiveMode: Never
                  provideClusterInfo: true
            contexts:
            - name: test
              context: {{cluster: test, user: oauth}}
            current-context: test
            """)
        return harness.write_file(os.path.join(self.dir, f"kubeconfig-{version.rsplit('/', 1)[1]}"),
                                  text)

    def kubectl(self, kubeconfig, *args):
        env = dict(self.env, KUBECONFIG=kubeconfig, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
        return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True,
                              timeout=120)

    def test_kubectl_get_raw(self):
        for version in (V1, V1BETA1):
            SRV.reset()  # forgets the tokens: drop the cached one too
            self.ok("erase")
            p = self.kubectl(self.kubeconfig(version), "get", "--raw", "/version")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(json.loads(p.stdout)["gitVersion"], "v1.32.0-pam-oauth")
            stats = SRV.stats()
            self.assertGreaterEqual(stats["kube_requests"], 1)
            self.assertEqual(stats["token_requests"], {"test-client": 1})
            self.assertEqual(stats["kube_authorized"], stats["kube_requests"])
            print(f"# kubectl ({version}): {stats['kube_requests']} API request(s), all "
                  f"with the token; {stats['total']} token request(s)")

    def test_kubectl_without_a_token_is_refused(self):
        """The server really checks: a profile that cannot get a token
        makes kubectl fail."""
        path = self.kubeconfig(V1)
        with open(path) as f:
            text = f.read().replace('"--profile", "default"', '"--profile", "wrong-secret"')
        harness.write_file(path, text)
        p = self.kubectl(path, "get", "--raw", "/version")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(SRV.stats()["kube_authorized"], 0)


if __name__ == "__main__":
    unittest.main()
