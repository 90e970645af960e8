"""common/flow.c end to end: single-flight, refresh-token rotation, crash
safety, the lock bound, the refresh policy and the budget.

Drives tests/tools/po-flow (one JSON line per run, never a token) against
the test authorization server (tests/authserver).  Time is faked with
--clock-file (a file holding the wall clock in seconds, read on every clock
call) or --simulate (a fake clock inside one process), so a month of policy
runs in seconds; the server's own clock is real, so the tokens stay valid
there.

    cd tests/integration && PO_BUILD_DIR=/work/main python3 -m unittest test_flow -v
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import time
import unittest
import urllib.request

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")


def _wait_for_harness(timeout=600):
    """harness.py is written by a colleague; wait until it exists."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(HARNESS):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{HARNESS} did not appear within {timeout} s")
        time.sleep(1)


_wait_for_harness()
import harness  # noqa: E402

PO_FLOW = os.path.join(harness.build_dir(), "tests", "tools", "po-flow")
PARALLEL = 50
FLUENT_LIFETIME = 86386  # the Fluent endpoint's expires_in


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class FlowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(PO_FLOW, os.X_OK):
            raise unittest.SkipTest(f"{PO_FLOW} is not built (make test-tools)")
        cls.srv = harness.server()

    def setUp(self):
        self.srv.reset()
        self.dir = harness.tmpdir()
        self.cache = os.path.join(self.dir, "cache")
        self.clock = os.path.join(self.dir, "clock")
        self.t0 = int(time.time())
        self.set_clock(self.t0)
        self.config = os.path.join(self.dir, "pam-oauth.conf")
        self.write_config()

    def write_config(self, **extra):
        """The profiles; extra = {profile: {key: value}} overrides."""
        srv = self.srv
        common = {"ca_file": srv.ca_file, "retries": "0", "timeout": "15s"}
        profiles = {
            "generic": {"token_url": srv.url("/generic/token"),
                        "client_id": "test-client", "client_secret": "test-secret"},
            "generic-pw": {"token_url": srv.url("/generic/token"), "grant": "password",
                           "client_id": "test-client", "client_secret": "test-secret"},
            "fluent": {"token_url": srv.url("/fluent/oauth/token"), "grant": "password",
                       "body": "query", "client_auth": "post", "scope": "api",
                       "client_id": "fluent-api", "client_secret": "fluent-secret"},
            "froomle": {"token_url": srv.url("/froomle/oauth/token"), "body": "json",
                        "client_auth": "post", "client_id": "froomle-client",
                        "client_secret": "froomle-secret"},
            "wave": {"token_url": srv.url("/wave/oauth/token"), "body": "form",
                     "client_auth": "post", "audience": harness.WAVE_AUDIENCE,
                     "client_id": "wave-client", "client_secret": "wave-secret",
                     "budget": "3"},
        }
        lines = []
        for name, keys in profiles.items():
            lines.append(f"[{name}]")
            for key, value in {**common, **keys, **extra.get(name, {})}.items():
                lines.append(f"{key} = {value}")
            lines.append("")
        harness.write_file(self.config, "\n".join(lines), 0o600)

    def set_clock(self, t):
        # Atomic, so that a reader never sees an empty file.
        tmp = self.clock + ".tmp"
        harness.write_file(tmp, f"{int(t)}\n", 0o600)
        os.replace(tmp, self.clock)

    def argv(self, profile, *args, clock=True):
        argv = [PO_FLOW, "-c", self.config, "-p", profile, "-d", self.cache]
        if clock:
            argv += ["--clock-file", self.clock]
        return argv + list(args)

    def flow(self, profile, *args, stdin=None, clock=True, timeout=60):
        """Run po-flow; returns (exit status, the JSON line, stderr)."""
        p = subprocess.run(self.argv(profile, *args, clock=clock), input=stdin,
                           capture_output=True, text=True, timeout=timeout)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, f"stdout: {p.stdout!r} stderr: {p.stderr!r}")
        return p.returncode, json.loads(lines[0]), p.stderr

    def ok(self, profile, *args, **kw):
        rc, out, err = self.flow(profile, *args, **kw)
        self.assertEqual((rc, out["outcome"]), (0, "ok"), f"{out} {err}")
        return out

    def parallel(self, profile, n, *args):
        """n po-flow processes started together; [(status, JSON, stderr)]."""
        procs = [subprocess.Popen(self.argv(profile, *args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(n)]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            results.append((p.returncode, json.loads(out.strip().splitlines()[-1]), err))
        return results

    def login(self, profile="fluent", user="alice"):
        return self.ok(profile, "--login", user, stdin=harness.USERS[user] + "\n")

    def cache_file(self, profile):
        with open(os.path.join(self.cache, profile + ".json")) as f:
            return json.load(f)

    def token_is_valid(self, token):
        request = urllib.request.Request(self.srv.url("/api/resource"),
                                         headers={"Authorization": "Bearer " + token})
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self.srv.ssl_context()))
        try:
            with opener.open(request, timeout=10) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return False

    def stats(self):
        return self.srv.stats()

    # ------------------------------------------------------------ tests

    def test_cold_cache_50_parallel_one_request(self):
        results = self.parallel("generic", PARALLEL)
        for rc, out, err in results:
            self.assertEqual((rc, out["outcome"]), (0, "ok"), f"{out} {err}")
        self.assertEqual(len({out["access_token_sha256"] for _, out, _ in results}), 1)
        stats = self.stats()
        self.assertEqual(stats["total"], 1, stats["by_grant"])
        self.assertEqual(stats["token_requests"], {"test-client": 1})
        print(f"\n# {PARALLEL} parallel on a cold cache: {stats['total']} token "
              f"request(s)", flush=True)
        # The answer is the cached token, and the server accepts it.
        token = self.cache_file("generic")["access_token"]
        self.assertEqual(results[0][1]["access_token_sha256"], sha256(token))
        self.assertTrue(self.token_is_valid(token))
        # Files: the entry and the lock, 0600, in a 0700 directory.
        self.assertEqual(sorted(os.listdir(self.cache)), ["generic.json", "generic.lock"])
        self.assertEqual(os.stat(self.cache).st_mode & 0o7777, 0o700)
        self.assertEqual(os.stat(os.path.join(self.cache, "generic.json")).st_mode & 0o7777,
                         0o600)

    def test_refresh_50_parallel_single_use_refresh_tokens(self):
        first = self.login()
        self.assertIsNotNone(first["refresh_token_sha256"])
        self.assertEqual(self.stats()["by_grant"], {"password": 1})
        # Past expiry (by the fake clock): everyone needs a new token.
        self.set_clock(self.t0 + FLUENT_LIFETIME + 10)
        results = self.parallel("fluent", PARALLEL)
        for rc, out, err in results:
            self.assertEqual((rc, out["outcome"]), (0, "ok"), f"{out} {err}")
        stats = self.stats()
        print(f"\n# {PARALLEL} parallel at refresh time: "
              f"{stats['by_grant'].get('refresh_token', 0)} refresh request(s), "
              f"{sum(1 for rc, _, _ in results if rc != 0)} failure(s)", flush=True)
        self.assertEqual(stats["by_grant"], {"password": 1, "refresh_token": 1})
        hashes = {out["access_token_sha256"] for _, out, _ in results}
        self.assertEqual(len(hashes), 1)
        self.assertNotIn(first["access_token_sha256"], hashes)
        entry = self.cache_file("fluent")
        self.assertEqual(hashes, {sha256(entry["access_token"])})
        self.assertTrue(self.token_is_valid(entry["access_token"]))
        # The rotated refresh token was saved: the next refresh works.
        self.assertNotEqual(sha256(entry["refresh_token"]), first["refresh_token_sha256"])
        self.assertEqual(entry["username"], "alice")
        self.set_clock(self.t0 + 2 * (FLUENT_LIFETIME + 10))
        again = self.ok("fluent")
        self.assertNotIn(again["access_token_sha256"], hashes)
        self.assertEqual(self.stats()["by_grant"], {"password": 1, "refresh_token": 2})

    def test_sigkill_during_200_refresh_cycles(self):
        # A server that does not rotate refresh tokens: a writer killed after
        # the server answered loses nothing then (with single-use tokens the
        # lost rotation would need a new login, whatever the client does).
        self.srv.client("test-client", single_use_refresh=False)
        self.login("generic-pw")
        rng = random.Random(20240210)
        states = set()
        leftovers = 0
        now = self.t0
        for cycle in range(200):
            now += 3600  # the generic endpoint's lifetime: always stale
            self.set_clock(now)
            p = subprocess.Popen(self.argv("generic-pw"), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.06))
            p.send_signal(signal.SIGKILL)
            p.wait()
            # The old or the new state, never a mix.
            with open(os.path.join(self.cache, "generic-pw.json")) as f:
                entry = json.load(f)
            self.assertEqual(entry["version"], 1, f"cycle {cycle}")
            self.assertTrue(entry["access_token"] and entry["refresh_token"], f"cycle {cycle}")
            self.assertEqual(entry["username"], "alice")
            states.add(entry["access_token"])
            leftovers += any(".json." in n for n in os.listdir(self.cache))
        # Stale again, so that the final call takes the lock.
        self.set_clock(now + 3600)
        final = self.ok("generic-pw")
        self.assertTrue(self.token_is_valid(self.cache_file("generic-pw")["access_token"]))
        # Some kills landed after a write, some before.
        self.assertGreater(len(states), 1)
        self.assertLess(len(states), 202)
        # Temporary files of killed writers are gone once a lock holder ran.
        self.assertEqual(sorted(os.listdir(self.cache)), ["generic-pw.json", "generic-pw.lock"])
        self.assertTrue(final["refresh_token_sha256"])
        print(f"\n# 200 kills: {len(states) - 1} completed refreshes, "
              f"{self.stats()['by_grant'].get('refresh_token', 0)} refresh requests, "
              f"{leftovers} times a temporary file was left", flush=True)

    def test_stopped_lock_holder_bounds_the_waiters(self):
        self.write_config(generic={"lock_timeout": "1500ms"})
        # A holder stuck in its request (the server stalls), then stopped.
        self.srv.fault("/generic/token", "stall", 1, seconds=60)
        holder = subprocess.Popen(self.argv("generic"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while self.stats()["total"] < 1:
                self.assertLess(time.monotonic(), deadline, "the holder made no request")
                time.sleep(0.02)
            holder.send_signal(signal.SIGSTOP)
            start = time.monotonic()
            results = self.parallel("generic", 5)
            took = time.monotonic() - start
            for rc, out, err in results:
                self.assertEqual((rc, out["outcome"]), (1, "locked"), f"{out} {err}")
                self.assertRegex(out["message"],
                                 r"^token cache lock .*/generic\.lock is held by another "
                                 r"process for more than 1500 ms \(a stopped or hung "
                                 r"oauth-token\?\)$")
                self.assertIn("generic.lock", err)
            self.assertGreaterEqual(took, 1.5)
            self.assertLess(took, 6)
            self.assertEqual(self.stats()["total"], 1)  # the waiters asked nothing
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            self.srv.clear_faults()
        # The lock died with its holder.
        self.ok("generic")
        self.assertEqual(self.stats()["total"], 2)

    def test_30_days_one_call_a_minute_24h_tokens(self):
        calls = 30 * 24 * 60
        p = subprocess.run(self.argv("froomle", "--simulate", str(calls), "60"),
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual((out["calls"], out["errors"]), (calls, 0), p.stderr)
        stats = self.stats()
        # One token per 24 h (refreshed 300 s early): day 0 .. day 30.
        self.assertLessEqual(stats["total"], 31, stats)
        self.assertGreaterEqual(stats["total"], 30, stats)
        self.assertEqual(out["distinct_tokens"], stats["total"])
        print(f"\n# 30 days, {calls} calls: {stats['total']} token requests", flush=True)

    def test_budget_stops_at_limit_and_force_passes(self):
        outs = [self.ok("wave", "--force-new") for _ in range(3)]
        self.assertEqual(len({o["access_token_sha256"] for o in outs}), 3)
        rc, out, err = self.flow("wave", "--force-new")
        self.assertEqual((rc, out["outcome"]), (1, "budget_exhausted"))
        month = time.strftime("%Y-%m", time.gmtime(self.t0))
        y, m = map(int, month.split("-"))
        nxt = f"{y + (m == 12):04d}-{m % 12 + 1:02d}-01"
        self.assertEqual(out["message"],
                         f"monthly token budget of 3 requests for profile wave is used "
                         f"up (resets on {nxt}); use --force to override")
        self.assertEqual(self.stats()["total"], 3)  # refused before any request
        # A fresh token is still served.
        self.ok("wave")
        # --ignore-budget passes it, with a warning.
        rc, out, err = self.flow("wave", "--force-new", "--ignore-budget")
        self.assertEqual((rc, out["outcome"]), (0, "ok"), err)
        self.assertIn("has used 4 of its monthly budget of 3", err)
        self.assertEqual(self.stats()["total"], 4)
        status = self.ok("wave", "--status")
        self.assertEqual((status["budget_month"], status["budget_count"]), (month, 4))
        # A new month (by the fake clock) starts from zero.
        self.set_clock(self.t0 + 32 * 86400)
        self.ok("wave", "--force-new")
        status = self.ok("wave", "--status")
        self.assertEqual(status["budget_count"], 1)
        self.assertEqual(self.stats()["total"], 5)

    def test_budget_warning_past_80_percent(self):
        self.write_config(wave={"budget": "5"})
        warnings = []
        for _ in range(5):
            rc, out, err = self.flow("wave", "--force-new")
            self.assertEqual(rc, 0, err)
            warnings.append("monthly budget" in err)
        self.assertEqual(warnings, [False, False, False, False, True])

    def test_refresh_interval_600(self):
        self.write_config(froomle={"refresh_interval": "10m"})
        first = self.ok("froomle")
        self.set_clock(self.t0 + 599)
        self.assertEqual(self.ok("froomle")["access_token_sha256"],
                         first["access_token_sha256"])
        self.assertEqual(self.stats()["total"], 1)
        self.set_clock(self.t0 + 600)
        second = self.ok("froomle")
        self.assertNotEqual(second["access_token_sha256"], first["access_token_sha256"])
        self.assertEqual(self.stats()["total"], 2)
        self.assertEqual(second["obtained_at"], self.t0 + 600)

    def test_rejected_refresh_token(self):
        # Password grant: the user is told to log in; the token is not resent.
        self.login()
        refresh = self.cache_file("fluent")["refresh_token"]
        self.assertEqual(self.srv.revoke(token=refresh), 1)
        self.set_clock(self.t0 + FLUENT_LIFETIME + 10)
        rc, out, err = self.flow("fluent")
        self.assertEqual((rc, out["outcome"]), (1, "invalid_grant"))
        self.assertEqual(out["message"], "the refresh token was rejected (token endpoint "
                                         "answered HTTP 400: invalid_grant: Invalid refresh "
                                         "token); run 'oauth-token login' (profile fluent)")
        self.assertIsNone(self.cache_file("fluent")["refresh_token"])
        rc, out, err = self.flow("fluent")
        self.assertEqual((rc, out["outcome"]), (1, "not_found"))
        self.assertIn("oauth-token login", out["message"])
        self.assertEqual(self.stats()["by_grant"], {"password": 1, "refresh_token": 1})
        # Client credentials: falls back to the primary grant.
        entry = {"version": 1, "profile": "generic", "token_url": self.srv.url("/generic/token"),
                 "client_id": "test-client", "access_token": "old", "refresh_token": "bogus",
                 "obtained_at": self.t0 - 7200, "expires_at": self.t0 - 3600}
        harness.write_file(os.path.join(self.cache, "generic.json"), json.dumps(entry))
        out = self.ok("generic")
        self.assertEqual(self.stats()["by_grant"],
                         {"password": 1, "refresh_token": 2, "client_credentials": 1})
        entry = self.cache_file("generic")
        self.assertIsNone(entry["refresh_token"])
        self.assertEqual(out["access_token_sha256"], sha256(entry["access_token"]))

    def test_login_invalidate_erase(self):
        rc, out, err = self.flow("fluent", "--login", "alice", stdin="wrong\n")
        self.assertEqual((rc, out["outcome"]), (1, "invalid_grant"))
        self.assertNotIn("wrong", out["message"] + err)
        first = self.login()
        # Invalidate: a hash that is not the cached token changes nothing.
        rc, out, err = self.flow("fluent", "--invalidate", "0" * 64)
        self.assertEqual((out["outcome"], out["done"]), ("ok", False))
        out = self.ok("fluent", "--invalidate", first["access_token_sha256"])
        self.assertTrue(out["done"])
        status = self.ok("fluent", "--status")
        self.assertIsNone(status["access_token_sha256"])
        self.assertEqual(status["refresh_token_sha256"], first["refresh_token_sha256"])
        # The next call refreshes.
        again = self.ok("fluent")
        self.assertNotEqual(again["access_token_sha256"], first["access_token_sha256"])
        # (the failed login reached the server too)
        self.assertEqual(self.stats()["by_grant"], {"password": 2, "refresh_token": 1})
        # Erase drops both tokens, keeps the count.
        self.ok("fluent", "--erase")
        status = self.ok("fluent", "--status")
        self.assertIsNone(status["access_token_sha256"])
        self.assertIsNone(status["refresh_token_sha256"])
        self.assertEqual(status["budget_count"], 3)  # wrong login, login, refresh

    def test_no_token_in_output(self):
        out = self.ok("generic")
        token = self.cache_file("generic")["access_token"]
        p = subprocess.run(self.argv("generic", "--status"), capture_output=True, text=True)
        self.assertNotIn(token, p.stdout + p.stderr + json.dumps(out))


if __name__ == "__main__":
    unittest.main()
