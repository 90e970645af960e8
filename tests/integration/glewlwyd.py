"""Run the project's HTTPS Glewlwyd test server from Python tests (stdlib only).

    import glewlwyd
    g = glewlwyd.start()          # dict of the GLEWLWYD_* values (see below)
    g["GLEWLWYD_TOKEN_URL"], g["GLEWLWYD_CA_FILE"], g["GLEWLWYD_CLIENT_ID"], ...

start() runs tests/glewlwyd/glewlwyd.sh once per process (later calls return the
cached values), and the instance is stopped at interpreter exit (or by stop()).
If the script exits 77 (packages missing and not root) start() raises
unittest.SkipTest with the script's explanation, so a test calling it from
setUpClass/setUp is skipped, not failed.

Keys: GLEWLWYD_TOKEN_URL, GLEWLWYD_CA_FILE, GLEWLWYD_ISSUER, GLEWLWYD_JWKS_URL,
GLEWLWYD_DISCOVERY_URL, GLEWLWYD_CLIENT_ID, GLEWLWYD_CLIENT_SECRET, GLEWLWYD_SCOPE,
GLEWLWYD_USER1, GLEWLWYD_PASS1, GLEWLWYD_USER2, GLEWLWYD_PASS2, GLEWLWYD_PORT,
GLEWLWYD_BASE_URL, and GLEWLWYD_DIR (the state directory).

Environment: GLEWLWYD_TEST_DIR=path uses (and keeps) that state directory
instead of a fresh temporary one; GLEWLWYD_PORT is honoured by the script.
"""

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "glewlwyd", "glewlwyd.sh")
SKIP_EXIT_CODE = 77
START_TIMEOUT = 1200      # seconds; covers a first-time apt-get install
STOP_TIMEOUT = 60

_lock = threading.RLock()
_state = {"env": None, "dir": None, "own_dir": False, "skip": None, "atexit": False}


def parse_env(text):
    """Parse the KEY='value' lines printed by `glewlwyd.sh env`."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        values[key] = "".join(shlex.split(raw)) if raw else ""
    return values


def _run(action, directory, timeout):
    return subprocess.run(["bash", SCRIPT, action, directory], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def start():
    """Start (once per process) and return a copy of the GLEWLWYD_* values."""
    with _lock:
        if _state["skip"]:
            raise unittest.SkipTest(_state["skip"])
        if _state["env"] is not None:
            return dict(_state["env"])
        if shutil.which("bash") is None or not os.path.isfile(SCRIPT):
            _state["skip"] = "Glewlwyd test server unavailable: bash or %s missing" % SCRIPT
            raise unittest.SkipTest(_state["skip"])

        directory = os.environ.get("GLEWLWYD_TEST_DIR")
        own_dir = not directory
        if own_dir:
            directory = tempfile.mkdtemp(prefix="pam-oauth-glewlwyd-")
        try:
            proc = _run("start", directory, START_TIMEOUT)
        except BaseException:
            _cleanup(directory, own_dir)
            raise
        if proc.returncode == SKIP_EXIT_CODE:
            _cleanup(directory, own_dir)
            _state["skip"] = ("Glewlwyd test server unavailable (glewlwyd.sh exit 77):\n"
                              + proc.stderr.strip())
            raise unittest.SkipTest(_state["skip"])
        if proc.returncode != 0:
            _cleanup(directory, own_dir)
            raise RuntimeError("glewlwyd.sh start failed (exit %d):\n%s"
                               % (proc.returncode, proc.stderr.strip()))

        with open(os.path.join(directory, "env"), encoding="utf-8") as f:
            env = parse_env(f.read())
        env["GLEWLWYD_DIR"] = directory
        _state.update(env=env, dir=directory, own_dir=own_dir)
        if not _state["atexit"]:
            atexit.register(stop)
            _state["atexit"] = True
        return dict(env)


def _cleanup(directory, own_dir):
    try:
        _run("stop", directory, STOP_TIMEOUT)
    except Exception:
        pass
    if own_dir:
        shutil.rmtree(directory, ignore_errors=True)


def stop():
    """Stop the instance started by start() (no-op if none); start() may be called again."""
    with _lock:
        directory, own_dir = _state["dir"], _state["own_dir"]
        _state.update(env=None, dir=None, own_dir=False)
        if directory:
            _cleanup(directory, own_dir)


def pid():
    """PID of the running instance, or None."""
    with _lock:
        if not _state["dir"]:
            return None
        try:
            with open(os.path.join(_state["dir"], "glewlwyd.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None
