"""A throw-away OpenSSH sshd for the PAM tests (root only).

    server = sshdtest.Sshd(env, ["PasswordAuthentication yes", ...],
                           allow_users=["po-sshtest"])
    server.start()            # own config, host key and PID file in env.dir,
                              # a free port of 127.0.0.1, libpam-wrapper
                              # preloaded (the PAM service file "sshd" comes
                              # from env's service directory)
    server.port, server.known_hosts, server.read_log()
    server.stop()

sshd needs its privilege separation directory /run/sshd: it is created
when missing and removed again by stop().  Nothing under /etc is touched.
"""

import os
import shutil
import socket
import subprocess
import time

import harness
import pamtest

SSHD = "/usr/sbin/sshd"

# What every test server has; the tests add their authentication methods.
BASE_CONFIG = [
    "ListenAddress 127.0.0.1",
    "UsePAM yes",
    "PubkeyAuthentication no",
    "AuthorizedKeysFile none",
    "PermitRootLogin no",
    "StrictModes no",
    "PrintMotd no",
    "PrintLastLog no",
    "UseDNS no",
    "LogLevel VERBOSE",
]


def skip_reason(tools=()):
    """Why an sshd test cannot run here, or None.  tools: more (program,
    Debian package) pairs the test needs."""
    if not pamtest.is_root():
        return "needs root (sshd, useradd); CI runs it as root"
    for tool, pkg in ((SSHD, "openssh-server"), ("ssh", "openssh-client"),
                      ("ssh-keygen", "openssh-client"), ("useradd", "passwd"),
                      *tools):
        if shutil.which(tool) is None and not os.access(tool, os.X_OK):
            return f"{tool} is not installed (Debian package {pkg})"
    return pamtest.skip_reason()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:

    def __init__(self, env, config, allow_users):
        self.env = env
        self.dir = env.dir
        self.config_lines = list(config)
        self.allow_users = list(allow_users)
        self.process = None
        self.created_run_sshd = False
        self.port = free_port()
        self.log = os.path.join(self.dir, "sshd.log")
        self.known_hosts = os.path.join(self.dir, "known_hosts")

    def start(self):
        key = os.path.join(self.dir, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key],
                       check=True, capture_output=True)
        # the client knows the host key, as a user's known_hosts would
        with open(key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        harness.write_file(self.known_hosts, f"[127.0.0.1]:{self.port} {kind} {blob}\n",
                           0o644)
        config = os.path.join(self.dir, "sshd_config")
        harness.write_file(config, "\n".join(
            [f"Port {self.port}", f"HostKey {key}",
             f"PidFile {os.path.join(self.dir, 'sshd.pid')}",
             f"AllowUsers {' '.join(self.allow_users)}"]
            + BASE_CONFIG + self.config_lines + [""]), 0o600)
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)
            self.created_run_sshd = True
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", config],
                                            env=self.env.environ(debuglevel=2),
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log)
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("sshd exited:\n" + self.read_log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not listen:\n" + self.read_log())
                time.sleep(0.1)

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.created_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)
            self.created_run_sshd = False
