"""Fleet mode (shared_cache = etcd) against a real 3-member etcd cluster.

The cluster (tests/integration/etcdcluster.py) runs on 127.0.0.1 with client
and peer TLS, client certificates required, its own CA made at start, and
authentication on: the profiles use an etcd user whose role may read and
write /pam-oauth/ only.  The token endpoints are the test authorization
server's (tests/authserver), which counts every request.

A "host" is a token cache directory of its own and, when the tests run as
root, a UTS namespace of its own (unshare --uts) with its own host name, the
name a host of the fleet is known by in the store.  Each host runs its own
processes: the real oauth-token, or tests/tools/po-flow where the test needs
a fake clock (--clock-file) to reach a token's expiry.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_fleet -v
"""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import etcdcluster
import harness

BUILD = harness.build_dir()
HELPER = os.path.join(BUILD, "curl_helper", "oauth-token")
PO_FLOW = os.path.join(BUILD, "tests", "tools", "po-flow")
FLUENT_LIFETIME = 86386  # the Fluent endpoint's expires_in


def _uts_works():
    """Whether this process may give a child a UTS namespace of its own
    (root, and not a container that forbids it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    p = subprocess.run(["unshare", "--uts", "sh", "-c", "hostname fleet-probe"],
                       capture_output=True)
    return p.returncode == 0


USE_UTS = _uts_works()

# sh script that runs a host's program: wait on the FIFO $1 (so that a
# storm starts at one instant), then, when $2 is set, enter a UTS
# namespace named $2; then the program.
HOST_SH = r'''
[ -n "$1" ] && exec 3<"$1"
h=$2; shift 2
if [ -n "$h" ]; then
    exec unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
fi
exec "$@"
'''


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def blocked_on_fifo(pid):
    try:
        with open(f"/proc/{pid}/wchan") as f:
            if f.read().strip() == "wait_for_partner":
                return True
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] in ("2", "257")
    except (OSError, IndexError):
        return False


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (HELPER, PO_FLOW):
            if not os.access(tool, os.X_OK):
                raise unittest.SkipTest(f"{tool} is not built")
        cls.etcd = etcdcluster.start()
        cls.srv = harness.server()
        cls.work = harness.tmpdir()
        cls.key = os.path.join(cls.work, "fleet.key")
        p = subprocess.run([HELPER, "fleet-key", cls.key], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        cls.other_key = os.path.join(cls.work, "other.key")
        subprocess.run([HELPER, "fleet-key", cls.other_key], check=True, capture_output=True)
        cls.logs = []  # every stderr a host wrote, for the secrets check

    def setUp(self):
        self.srv.reset()
        self.etcd.delete_prefix("/pam-oauth/")
        self.dir = harness.tmpdir()
        self.clock = os.path.join(self.dir, "clock")
        self.t0 = int(time.time())
        self.set_clock(self.t0)
        self.config = os.path.join(self.dir, "pam-oauth.conf")
        self.write_config()
        self.fifos = 0

    # ------------------------------------------------------------ set-up

    def fleet_keys(self, **extra):
        e = self.etcd
        keys = {"shared_cache": "etcd", "shared_cache_endpoints": " ".join(e.endpoints),
                "shared_cache_ca_file": e.ca_file, "shared_cache_client_cert": e.client_cert,
                "shared_cache_client_key": e.client_key, "shared_cache_user": e.user,
                "shared_cache_password_file": e.password_file,
                "shared_cache_key_file": self.key}
        keys.update(extra)
        return keys

    def write_config(self, **extra):
        """Profiles generic, fluent and wave, all in fleet mode; extra =
        {profile: {key: value}} overrides (None removes a key)."""
        srv = self.srv
        common = {"ca_file": srv.ca_file, "retries": "0", "timeout": "20s",
                  **self.fleet_keys()}
        profiles = {
            "generic": {"token_url": srv.url("/generic/token"),
                        "client_id": "test-client", "client_secret": "test-secret"},
            "fluent": {"token_url": srv.url("/fluent/oauth/token"), "grant": "password",
                       "body": "query", "client_auth": "post", "scope": "api",
                       "client_id": "fluent-api", "client_secret": "fluent-secret"},
            "wave": {"token_url": srv.url("/wave/oauth/token"), "body": "form",
                     "client_auth": "post", "audience": harness.WAVE_AUDIENCE,
                     "client_id": "wave-client", "client_secret": "wave-secret"},
        }
        lines = []
        for name, keys in profiles.items():
            lines.append(f"[{name}]")
            for key, value in {**common, **keys, **extra.get(name, {})}.items():
                if value is not None:
                    lines.append(f"{key} = {value}")
            lines.append("")
        harness.write_file(self.config, "\n".join(lines), 0o600)

    def set_clock(self, t):
        tmp = self.clock + ".tmp"
        harness.write_file(tmp, f"{int(t)}\n", 0o600)
        os.replace(tmp, self.clock)

    def cache(self, host):
        return os.path.join(self.dir, f"host{host}")

    def helper_argv(self, host, profile, *args):
        return [HELPER, "-c", self.config, "-p", profile,
                "-o", f"cache_dir={self.cache(host)}", *args]

    def flow_argv(self, host, profile, *args):
        return [PO_FLOW, "-c", self.config, "-p", profile, "-d", self.cache(host),
                "--clock-file", self.clock, *args]

    def wrap(self, host, argv, fifo=""):
        """argv run as host: in its own UTS namespace (as root)."""
        name = f"fleet-host-{host}" if USE_UTS else ""
        return ["sh", "-c", HOST_SH, "sh", fifo, name, *argv]

    def run_host(self, host, argv, stdin=None, timeout=120):
        p = subprocess.run(self.wrap(host, argv), input=stdin, capture_output=True,
                           text=True, timeout=timeout)
        self.logs.append(p.stderr)
        return p

    def helper(self, host, profile, *args, **kw):
        return self.run_host(host, self.helper_argv(host, profile, *args), **kw)

    def flow(self, host, profile, *args, **kw):
        """po-flow as host; returns (status, JSON line, stderr)."""
        p = self.run_host(host, self.flow_argv(host, profile, *args), **kw)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, f"stdout: {p.stdout!r} stderr: {p.stderr!r}")
        return p.returncode, json.loads(lines[-1]), p.stderr

    def storm(self, argvs, timeout=180):
        """[(host, argv)] started at one instant; returns (seconds until the
        last one ended, [(status, stdout, stderr)])."""
        self.fifos += 1
        fifo = os.path.join(self.dir, f"go-{self.fifos}")
        os.mkfifo(fifo, 0o600)
        procs = [subprocess.Popen(self.wrap(host, argv, fifo), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for host, argv in argvs]
        deadline = time.monotonic() + 30
        while not all(blocked_on_fifo(p.pid) for p in procs):
            self.assertLess(time.monotonic(), deadline, "the storm did not line up")
            time.sleep(0.01)
        start = time.monotonic()
        w = os.open(fifo, os.O_WRONLY)
        results = [None] * len(procs)

        def reap(i, p):
            out, err = p.communicate(timeout=timeout)
            results[i] = (p.returncode, out, err, time.monotonic())

        threads = [threading.Thread(target=reap, args=(i, p)) for i, p in enumerate(procs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os.close(w)
        end = max(r[3] for r in results)
        for r in results:
            self.logs.append(r[2])
        return end - start, [r[:3] for r in results]

    def login(self, host=0, profile="fluent", user="alice"):
        rc, out, err = self.flow(host, profile, "--login", user,
                                 stdin=harness.USERS[user] + "\n")
        self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
        return out

    def local_entry(self, host, profile):
        with open(os.path.join(self.cache(host), profile + ".json")) as f:
            return json.load(f)

    def status(self, host, profile):
        p = self.helper(host, profile, "--format", "json", "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def stats(self):
        return self.srv.stats()

    # ------------------------------------------------------------ tests

    def test_cold_start_20_hosts_10_callers_one_request(self):
        # The one request is held back 1 s at the server, so that every
        # other host arrives while it is under way and must wait on the
        # watch for the winner's token.
        self.srv.fault("/generic/token", "stall", 1, seconds=1)
        argvs = [(h, self.helper_argv(h, "generic", "-v")) for h in range(20)
                 for _ in range(10)]
        took, results = self.storm(argvs)
        for rc, out, err in results:
            self.assertEqual(rc, 0, err)
        tokens = {out.strip() for _, out, _ in results}
        stats = self.stats()
        watched = sum("waiting on a watch" in err for _, _, err in results)
        print(f"\n# 20 hosts x 10 concurrent cold callers: {stats['total']} token "
              f"request(s), {len(tokens)} distinct token(s), "
              f"{sum(1 for r in results if r[0] != 0)} failure(s), all done in "
              f"{took:.2f} s; {watched} host(s) waited on a watch for the winner",
              flush=True)
        # One process per host talked to the store; the losers watched.
        self.assertGreater(watched, 0)
        self.assertLessEqual(watched, 19)
        self.assertEqual(stats["total"], 1, stats["by_grant"])
        self.assertEqual(len(tokens), 1)
        token = tokens.pop()
        for h in range(20):
            self.assertEqual(self.local_entry(h, "generic")["access_token"], token)
        # The fleet counted it, with the host that made it.
        st = self.status(5, "generic")
        self.assertEqual((st["fleet"]["state"], st["fleet"]["requests"]), ("valid", 1))
        if USE_UTS:
            self.assertRegex(st["fleet"]["last_host"], r"^fleet-host-\d+$")
        # Later calls are local cache hits: no store, no request.
        p = self.helper(3, "generic")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, token))
        self.assertEqual(self.stats()["total"], 1)

    def test_refresh_storm_single_use_refresh_tokens(self):
        first = self.login(0)
        # Every other host takes the fleet's token, without a request.
        for h in range(1, 20):
            rc, out, err = self.flow(h, "fluent")
            self.assertEqual((rc, out["access_token_sha256"]),
                             (0, first["access_token_sha256"]), err)
        self.assertEqual(self.stats()["by_grant"], {"password": 1})
        # Past expiry: 20 hosts x 5 callers need a new token at once.
        self.set_clock(self.t0 + FLUENT_LIFETIME + 10)
        self.srv.fault("/fluent/oauth/token", "stall", 1, seconds=1)
        took, results = self.storm([(h, self.flow_argv(h, "fluent"))
                                    for h in range(20) for _ in range(5)])
        outs = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
        failures = sum(1 for rc, _, _ in results if rc != 0)
        stats = self.stats()
        print(f"\n# refresh storm, 20 hosts x 5 callers, single-use refresh tokens: "
              f"{stats['by_grant'].get('refresh_token', 0)} refresh request(s), "
              f"{failures} failure(s), {took:.2f} s", flush=True)
        for (rc, _, err), out in zip(results, outs):
            self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
        self.assertEqual(stats["by_grant"], {"password": 1, "refresh_token": 1})
        hashes = {o["access_token_sha256"] for o in outs}
        self.assertEqual(len(hashes), 1)
        self.assertNotIn(first["access_token_sha256"], hashes)
        rotated = {o["refresh_token_sha256"] for o in outs}
        self.assertEqual(len(rotated), 1)
        self.assertNotIn(first["refresh_token_sha256"], rotated)
        # The rotated refresh token is the fleet's: the next expiry refreshes
        # with it, once, from a host that never saw it.
        self.set_clock(self.t0 + 2 * (FLUENT_LIFETIME + 10))
        rc, out, err = self.flow(21, "fluent")
        self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
        self.assertEqual(self.stats()["by_grant"], {"password": 1, "refresh_token": 2})
        self.assertEqual(self.local_entry(21, "fluent")["username"], "alice")

    def test_sigkill_of_the_lock_holder(self):
        # The holder's lease covers its own timeout (4 s, plus a second).
        self.write_config(generic={"timeout": "4s"})
        self.srv.fault("/generic/token", "stall", 1, seconds=60)
        holder = subprocess.Popen(self.wrap(0, self.helper_argv(0, "generic")),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while self.stats()["total"] < 1:
            self.assertLess(time.monotonic(), deadline, "the holder made no request")
            time.sleep(0.02)
        self.assertEqual(len(self.etcd.keys("/pam-oauth/generic/lock")), 1)
        # The holder is mid-request, holding the fleet lock: kill it.
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        # Other hosts: patient ones (lock_timeout 15 s), and one with a bound
        # shorter than the lease.
        patient = [(h, self.helper_argv(h, "generic", "-o", "lock_timeout=15s",
                                        "-o", "timeout=20s"))
                   for h in range(1, 6) for _ in range(2)]
        hasty = [(9, self.helper_argv(9, "generic", "-o", "lock_timeout=1s",
                                      "-o", "timeout=20s"))]
        took, results = self.storm(patient + hasty)
        since_kill = time.monotonic() - killed
        for rc, out, err in results[:-1]:
            self.assertEqual(rc, 0, err)
        self.assertEqual(len({out for _, out, _ in results[:-1]}), 1)
        rc, out, err = results[-1]
        self.assertEqual(rc, 6, err)  # locked: it gave up at its bound
        self.assertRegex(err, r"the fleet lock /pam-oauth/generic/lock is held by "
                              r"host \S+ pid \d+ for more than \d+ ms")
        stats = self.stats()
        print(f"\n# SIGKILL of the fleet lock holder: the others had the token "
              f"{since_kill:.2f} s after the kill (lease 5 s), "
              f"{stats['total']} request(s) in all (the killed one included)",
              flush=True)
        self.assertEqual(stats["total"], 2)
        self.assertLess(since_kill, 5 + 1 + 10)
        self.assertEqual(self.etcd.keys("/pam-oauth/generic/lock"), [])

    def test_leader_killed_during_a_refresh_storm(self):
        self.login(0)
        for h in range(1, 20):
            self.assertEqual(self.flow(h, "fluent")[0], 0)
        self.set_clock(self.t0 + FLUENT_LIFETIME + 10)
        # The refresh takes 1.5 s at the server; the leader dies 0.5 s in.
        self.srv.fault("/fluent/oauth/token", "stall", 1, seconds=1.5)
        leader = self.etcd.leader()
        timer = threading.Timer(0.5, self.etcd.kill, args=(leader,))
        argvs = [(h, self.flow_argv(h, "fluent")) for h in range(20) for _ in range(5)]
        try:
            timer.start()
            took, results = self.storm(argvs)
        finally:
            timer.join()
        outs = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
        failures = sum(1 for rc, _, _ in results if rc != 0)
        stats = self.stats()
        refreshes = stats["by_grant"].get("refresh_token", 0)
        print(f"\n# leader (member {leader}) killed during a refresh storm of 20 hosts "
              f"x 5 callers: {refreshes} refresh request(s), {failures} failure(s), "
              f"{took:.2f} s", flush=True)
        try:
            for (rc, _, err), out in zip(results, outs):
                self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
            self.assertLessEqual(refreshes, 2)
            self.assertEqual(stats["by_grant"].get("password"), 1)
            # No lost refresh token: the next expiry refreshes from the fleet.
            self.set_clock(self.t0 + 2 * (FLUENT_LIFETIME + 10))
            rc, out, err = self.flow(21, "fluent")
            self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
            self.assertEqual(self.stats()["by_grant"].get("password"), 1)
        finally:
            self.etcd.restart(leader)

    def test_budget_shared_by_10_hosts(self):
        self.write_config(wave={"budget": "5"})
        results = [self.helper(h, "wave", "refresh") for h in range(10)]
        self.assertEqual([p.returncode for p in results], [0] * 5 + [5] * 5,
                         [p.stderr for p in results])
        month = time.strftime("%Y-%m", time.gmtime())
        self.assertIn(f"the fleet's monthly token budget of 5 requests for profile wave "
                      f"is used up (5 in {month} across the fleet", results[5].stderr)
        stats = self.stats()
        print(f"\n# budget 5 shared by 10 hosts: {stats['total']} token requests, "
              f"{sum(p.returncode == 5 for p in results)} refused before sending",
              flush=True)
        self.assertEqual(stats["total"], 5)
        self.assertIn("has used 5 of its monthly budget of 5", results[4].stderr)
        # Each host counted only its own; the fleet all of them.
        st = self.status(7, "wave")
        self.assertEqual((st["requests"], st["fleet"]["requests"]), (0, 5))
        # Concurrent forced renewals once the budget is spent: none sent.
        took, res = self.storm([(h, self.helper_argv(h, "wave", "refresh"))
                                for h in range(10)])
        self.assertEqual({rc for rc, _, _ in res}, {5})
        self.assertEqual(self.stats()["total"], 5)
        # --force goes past it, and is counted.
        p = self.helper(0, "wave", "--force", "refresh")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.status(1, "wave")["fleet"]["requests"], 6)

    def test_concurrent_counting_is_atomic(self):
        # 10 hosts renew at once with no budget: the fleet counts every
        # request made, however the compare-and-swap races went.
        took, res = self.storm([(h, self.helper_argv(h, "wave", "refresh"))
                                for h in range(10)])
        self.assertEqual({rc for rc, _, _ in res}, {0}, [e for _, _, e in res])
        self.assertEqual(self.status(0, "wave")["fleet"]["requests"],
                         self.stats()["total"])

    def tamper(self, key, how):
        value = self.etcd.get(key).decode()
        prefix = "pam-oauth-sealed:1:"
        self.assertTrue(value.startswith(prefix), value[:40])
        body = value[len(prefix):]
        if how == "flip":
            i = len(body) // 2
            body = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1:]
            value = prefix + body
        elif how == "truncate":
            value = value[:len(value) // 2]
        elif how == "foreign":
            value = '{"access_token":"planted"}'
        self.etcd.put(key, value)

    def test_tampered_truncated_foreign_values_are_ignored(self):
        p = self.helper(0, "generic")
        self.assertEqual(p.returncode, 0, p.stderr)
        first = p.stdout.strip()
        expect = {"flip": "fails authentication",
                  "truncate": "truncated",
                  "foreign": "not a sealed pam-oauth value"}
        for n, (how, why) in enumerate(expect.items(), 1):
            self.tamper("/pam-oauth/generic/token", how)
            p = self.helper(n, "generic")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stderr, r"warning: shared cache: the value of "
                                       r"/pam-oauth/generic/token \(revision \d+\) is "
                                       r"ignored: .*" + why)
            self.assertEqual(p.stderr.count("is ignored"), 1, p.stderr)
            self.assertNotEqual(p.stdout.strip(), first)
            self.assertNotIn("planted", p.stdout)
            self.assertEqual(self.stats()["total"], n + 1)  # refetched
            # ... and replaced: the next host takes it.
            q = self.helper(10 + n, "generic")
            self.assertEqual((q.returncode, q.stdout), (0, p.stdout), q.stderr)
            self.assertEqual(self.stats()["total"], n + 1)
        # A budget record tampered with is ignored too (and counted again).
        self.tamper("/pam-oauth/generic/budget", "flip")
        p = self.helper(20, "generic", "refresh")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("/pam-oauth/generic/budget (revision", p.stderr)
        self.assertEqual(self.status(20, "generic")["fleet"]["requests"], 1)

    def test_wrongly_keyed_value(self):
        p = self.helper(0, "generic")
        self.assertEqual(p.returncode, 0, p.stderr)
        other = self.write_other_key_config()
        q = self.run_host(1, [HELPER, "-c", other, "-p", "generic",
                              "-o", f"cache_dir={self.cache(1)}"])
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertRegex(q.stderr, r"is ignored: sealed under another key \(key id "
                                   r"[0-9a-f]{8}; shared_cache_key_file has key id "
                                   r"[0-9a-f]{8}\)")
        self.assertNotEqual(q.stdout, p.stdout)
        self.assertEqual(self.stats()["total"], 2)

    def write_other_key_config(self):
        with open(self.config) as f:
            text = f.read()
        other = os.path.join(self.dir, "other.conf")
        harness.write_file(other, text.replace(self.key, self.other_key), 0o600)
        return other

    def test_fencing_a_lease_lost_mid_request(self):
        # Host 0 takes the lock and its request stalls; its lease is revoked
        # (as if it had run out), host 1 renews and publishes; then host 0's
        # answer arrives: its write must not replace host 1's.
        self.srv.fault("/generic/token", "stall", 1, seconds=3)
        slow = subprocess.Popen(self.wrap(0, self.helper_argv(0, "generic")),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while self.stats()["total"] < 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        leases = self.etcd.leases()
        self.assertEqual(len(leases), 1, leases)
        self.etcd.revoke_lease(leases[0])
        fast = self.helper(1, "generic")
        self.assertEqual(fast.returncode, 0, fast.stderr)
        out, err = slow.communicate(timeout=30)
        self.logs.append(err)
        self.assertEqual(slow.returncode, 0, err)
        self.assertIn("another host published a token meanwhile", err)
        self.assertNotEqual(out, fast.stdout)  # host 0 keeps its own token
        # The fleet keeps host 1's.
        q = self.helper(2, "generic")
        self.assertEqual(q.stdout, fast.stdout)
        self.assertEqual(self.stats()["total"], 2)

    def test_login_is_shared_and_a_rejected_refresh_token_is_dropped(self):
        self.login(0)
        rc, out, err = self.flow(1, "fluent")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.stats()["by_grant"], {"password": 1})
        refresh = self.local_entry(1, "fluent")["refresh_token"]
        self.assertEqual(self.srv.revoke(token=refresh), 1)
        self.set_clock(self.t0 + FLUENT_LIFETIME + 10)
        rc, out, err = self.flow(2, "fluent")
        self.assertEqual((rc, out["outcome"]), (1, "invalid_grant"), err)
        self.assertEqual(out["message"], "the fleet's refresh token was rejected; run "
                                         "'oauth-token login' on one host (profile fluent)")
        # No host sends it again: the fleet dropped it.
        for h in (0, 1, 3):
            rc, out, err = self.flow(h, "fluent")
            self.assertEqual((rc, out["outcome"]), (1, "not_found"), err)
            self.assertIn("run 'oauth-token login' on one host", out["message"])
        self.assertEqual(self.stats()["by_grant"], {"password": 1, "refresh_token": 1})
        # A new login on any host serves the fleet again.
        self.login(3)
        rc, out, err = self.flow(0, "fluent")
        self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
        self.assertEqual(self.stats()["by_grant"], {"password": 2, "refresh_token": 1})

    def test_valid_token_served_through_an_outage(self):
        # Issue 14.8 in the fleet tier: the fleet's token is due (by
        # refresh_interval) but valid and the identity provider answers
        # 503: every host is served the valid token, its own copy or, for a
        # host that has none, the fleet's, with a note saying why; once it
        # has expired they fail; after the outage one renewal serves all.
        self.write_config(generic={"refresh_interval": "60"})
        rc, first, err = self.flow(0, "generic")
        self.assertEqual((rc, first["outcome"], first.get("stale")), (0, "ok", False), err)
        self.set_clock(self.t0 + 120)
        self.srv.fault("/generic/token", "status", count=-1, status=503)
        for host in (0, 1, 0):  # host 1 has no token of its own
            rc, out, err = self.flow(host, "generic")
            self.assertEqual((rc, out["outcome"], out.get("stale")), (0, "ok", True),
                             (host, out, err))
            self.assertEqual(out["access_token_sha256"], first["access_token_sha256"])
            self.assertIn("503", out["renewal"]["message"])
        self.assertEqual(self.stats()["total"], 4)  # 1 + one renewal per call
        self.set_clock(first["expires_at"] + 10)
        rc, out, err = self.flow(1, "generic")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("503", out["message"])
        self.srv.clear_faults()
        for host in (1, 0):
            rc, out, err = self.flow(host, "generic")
            self.assertEqual((rc, out["outcome"], out.get("stale")), (0, "ok", False), err)
            self.assertNotEqual(out["access_token_sha256"], first["access_token_sha256"])
        self.assertEqual(self.stats()["total"], 6)

    def test_invalidate_and_erase_reach_the_fleet(self):
        p = self.helper(0, "generic")
        token = p.stdout.strip()
        self.assertEqual(self.helper(1, "generic").stdout.strip(), token)
        # git's erase for the bad token, on host 1: no host is served it again.
        q = subprocess.run(self.wrap(1, [HELPER, "-c", self.config, "-p", "generic",
                                         "-o", f"cache_dir={self.cache(1)}", "git",
                                         "erase"]),
                           input=f"protocol=https\nhost=example.com\nusername=oauth2\n"
                                 f"password={token}\n\n",
                           capture_output=True, text=True)
        self.assertEqual(q.returncode, 0, q.stderr)
        r = self.helper(2, "generic")
        self.assertNotEqual(r.stdout.strip(), token)
        self.assertEqual(self.stats()["total"], 2)
        # erase drops the fleet's tokens, keeps its count.
        self.assertEqual(self.helper(2, "generic", "erase").returncode, 0)
        st = self.status(3, "generic")
        self.assertEqual((st["fleet"]["state"], st["fleet"]["requests"]), ("none", 2))

    def test_store_unreachable_fallback_local_and_fail(self):
        dead = etcdcluster.free_ports(2)
        endpoints = " ".join(f"https://127.0.0.1:{p}" for p in dead)
        self.write_config(generic={"shared_cache_endpoints": endpoints})
        p = self.helper(0, "generic", "-o", "shared_cache_timeout=3s")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.count("warning: shared cache unavailable, using this "
                                        "host's token cache alone"), 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertEqual(self.stats()["total"], 1)
        # A local hit afterwards does not try the store at all.
        q = self.helper(0, "generic")
        self.assertEqual((q.returncode, q.stderr), (0, ""))
        # fail: the call fails, and says why.
        p = self.helper(1, "generic", "-o", "shared_cache_fallback=fail")
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertRegex(p.stderr, r"shared cache: POST https://127\.0\.0\.1:\d+/v3/.*: "
                                   r"network error .*Couldn't connect")
        self.assertEqual(self.stats()["total"], 1)

    def test_never_waits_past_the_timeout(self):
        # A store that accepts connections and never answers.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        try:
            port = sock.getsockname()[1]
            self.write_config(generic={"shared_cache_endpoints": f"https://127.0.0.1:{port}",
                                       "timeout": "3s"})
            start = time.monotonic()
            p = self.helper(0, "generic", "-o", "shared_cache_fallback=fail")
            took = time.monotonic() - start
            self.assertEqual(p.returncode, 4, p.stderr)
            self.assertIn("timed out", p.stderr)
            self.assertLess(took, 3 + 1.5)
            # local: the store's own bound leaves time for the request.
            start = time.monotonic()
            p = self.helper(1, "generic", "-o", "shared_cache_timeout=1s")
            took = time.monotonic() - start
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("shared cache unavailable", p.stderr)
            self.assertLess(took, 3)
            print(f"\n# a store that never answers: fallback local done in {took:.2f} s "
                  f"(shared_cache_timeout 1 s, timeout 3 s)", flush=True)
        finally:
            sock.close()

    def test_store_errors_are_named(self):
        cases = [
            ({"shared_cache_password_file": self.write_secret("wrong-password")},
             r"user pam-oauth-fleet: etcdserver: authentication failed"),
            ({"shared_cache_prefix": "/other/"},
             r"permission denied: the role of user pam-oauth-fleet must grant "
             r"readwrite on the prefix /other/"),
            ({"shared_cache_user": None, "shared_cache_password_file": None},
             r"has authentication on: set shared_cache_user"),
            ({"shared_cache_client_cert": self.etcd.cn_client_cert,
              "shared_cache_client_key": self.etcd.cn_client_key},
             r"refuses a client certificate with a CommonName"),
            ({"shared_cache_client_cert": self.etcd.wrong_client_cert,
              "shared_cache_client_key": self.etcd.wrong_client_key},
             r"TLS|network error"),
            ({"shared_cache_ca_file": self.srv.ca_file},
             r"TLS handshake or certificate verification failed"),
            ({"shared_cache_key_file": os.path.join(self.dir, "missing.key")},
             r"shared_cache_key_file: .*missing\.key: no such file"),
        ]
        for n, (keys, pattern) in enumerate(cases):
            with self.subTest(keys=list(keys)):
                self.write_config(generic=keys)
                p = self.helper(n, "generic", "-o", "shared_cache_fallback=fail")
                self.assertIn(p.returncode, (2, 4), p.stderr)
                self.assertRegex(p.stderr, pattern)
                p = self.helper(n, "generic")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("shared cache unavailable", p.stderr)

    def write_secret(self, text):
        path = os.path.join(self.dir, f"secret-{len(os.listdir(self.dir))}")
        harness.write_file(path, text + "\n", 0o600)
        return path

    def test_cache_hit_loads_no_library(self):
        p = self.helper(0, "generic")
        self.assertEqual(p.returncode, 0, p.stderr)
        env = dict(os.environ, LD_DEBUG="libs")
        q = subprocess.run(self.helper_argv(0, "generic"), capture_output=True,
                           text=True, env=env)
        self.assertEqual(q.returncode, 0)
        loaded = set(re.findall(r"calling init: (\S+)", q.stderr))
        self.assertFalse([l for l in loaded if "libcurl" in l or "libcrypto" in l],
                         loaded)
        # ... while the store path loads libcurl and libcrypto.
        q = subprocess.run(self.helper_argv(1, "generic"), capture_output=True,
                           text=True, env=env)
        loaded = set(re.findall(r"calling init: (\S+)", q.stderr))
        self.assertTrue([l for l in loaded if "libcrypto" in l], loaded)

    def test_status_and_check_config(self):
        self.helper(0, "wave")
        p = self.helper(1, "wave", "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"fleet token:    valid\n")
        self.assertRegex(p.stdout, r"fleet requests: 1 in \d{4}-\d\d \(no budget\)\n")
        self.assertRegex(p.stdout, r"last request:   by \S+ at \d{4}-")
        p = subprocess.run([HELPER, "-c", self.config, "check-config"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        bad = os.path.join(self.dir, "bad.conf")
        harness.write_file(bad, "[x]\ntoken_url = https://idp.example/token\n"
                                "client_id = c\nclient_auth = none\nshared_cache = etcd\n"
                                "shared_cache_endpoints = http://10.0.0.1:2379 "
                                "https://10.0.0.2:2379\n"
                                "shared_cache_key_file = relative.key\n"
                                "shared_cache_prefix = pam\n"
                                "shared_cache_user = u\n", 0o600)
        p = subprocess.run([HELPER, "-c", bad, "check-config"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 2)
        for want in ("key 'shared_cache_endpoints': entry 1: http://10.0.0.1:2379: http:// "
                     "refused",
                     "key 'shared_cache_key_file': must be an absolute path",
                     "set both shared_cache_user and shared_cache_password_file",
                     "key 'shared_cache_prefix': must start and end with '/'"):
            self.assertIn(want, p.stderr)

    def test_zz_no_secret_in_the_store_or_any_log(self):
        # Runs last (by name): every host's output so far is in self.logs.
        self.login(0)
        self.assertEqual(self.helper(1, "generic").returncode, 0)
        self.assertEqual(self.helper(2, "wave").returncode, 0)
        secrets = {"test-secret", "fluent-secret", "wave-secret", harness.USERS["alice"],
                   self.etcd.password}
        for h in range(3):
            for name in os.listdir(self.cache(h)):
                if name.endswith(".json"):
                    e = self.local_entry(h, name[:-5])
                    secrets.update(v for v in (e.get("access_token"), e.get("refresh_token"))
                                   if v)
        with open(self.key, "rb") as f:
            key = f.read()
        dump = self.etcd.dump()
        self.assertIn("/pam-oauth/fluent/token", dump)
        logs = "\n".join(self.logs)
        members = "\n".join(self.etcd.log_tail(i, 10 ** 8) for i in range(3))
        for s in secrets:
            self.assertNotIn(s, dump)
            self.assertNotIn(s, logs)
            self.assertNotIn(s, members)
        for k in (key, base64.b64encode(key)):
            self.assertNotIn(k.decode(errors="replace"), dump)
        print(f"\n# no token, refresh token, client secret, password or key in "
              f"`etcdctl get --prefix ''` ({len(dump)} bytes), in {len(self.logs)} "
              f"captured host logs or in the members' logs ({len(members)} bytes); "
              f"{len(secrets)} secrets checked", flush=True)


if __name__ == "__main__":
    unittest.main()
