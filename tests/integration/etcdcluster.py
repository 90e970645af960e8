"""A real 3-member etcd cluster on 127.0.0.1 for the fleet tests (stdlib only).

    import etcdcluster
    c = etcdcluster.start()        # once per process; stopped at exit
    c.endpoints                    # ["https://127.0.0.1:PORT", ...]
    c.ca_file, c.client_cert, c.client_key    # mutual TLS, made at start
    c.user, c.password_file        # an etcd user whose role covers PREFIX only
    c.ctl("get", "--prefix", "")   # etcdctl as root over mutual TLS
    c.leader()                     # index of the current leader
    c.kill(i), c.restart(i)        # SIGKILL a member, start it again

Everything is made at start in a private directory (on /dev/shm when it is
usable, like the members' data): a test CA, one certificate per member
(serverAuth and clientAuth, SAN 127.0.0.1: the v3 JSON gateway of etcd 3.4
dials the member's own gRPC port with it), a client certificate, and an
unrelated CA with a client certificate of its own (a certificate the cluster
must refuse).  The members listen on free ports of 127.0.0.1 with client and
peer TLS and client-certificate authentication required on both.  After the
cluster is healthy, authentication is enabled: a root user, and a user
(USER) with a role that may read and write PREFIX only.

The members die with this process (PR_SET_PDEATHSIG) should it be killed
before stop() runs.  Needs Debian's etcd-server and etcd-client (etcd and
etcdctl 3.4) and openssl; when they are missing start() raises
unittest.SkipTest saying which.
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
MEMBERS = 3
PREFIX = "/pam-oauth/"
USER = "pam-oauth-fleet"
START_TIMEOUT = 60
PR_SET_PDEATHSIG = 1

OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[member]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_lock = threading.Lock()
_cluster = None


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_ports(n):
    """n distinct free TCP ports of 127.0.0.1 (held open until all are found)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    def __init__(self, directory, bcrypt_cost=None):
        self.dir = directory
        self.bcrypt_cost = bcrypt_cost
        self.procs = [None] * MEMBERS
        self.logs = [os.path.join(directory, f"m{i}.log") for i in range(MEMBERS)]
        ports = free_ports(2 * MEMBERS)
        self.client_ports = ports[:MEMBERS]
        self.peer_ports = ports[MEMBERS:]
        self.endpoints = [f"https://127.0.0.1:{p}" for p in self.client_ports]
        self.names = [f"m{i}" for i in range(MEMBERS)]
        self.user = USER
        self.password = "fleet-" + os.urandom(12).hex()
        self.root_password = "root-" + os.urandom(12).hex()
        self._make_certificates()
        self.password_file = os.path.join(directory, "etcd-password")
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        self.auth = False

    # ---------------------------------------------------------- certificates

    def _make_certificates(self):
        d = os.path.join(self.dir, "pki")
        os.makedirs(d, mode=0o700)
        config = os.path.join(d, "openssl.cnf")
        with open(config, "w") as f:
            f.write(OPENSSL_CONFIG)

        def req(name, subject, extensions, *signer):
            cert, key = (os.path.join(d, name + s) for s in (".pem", ".key"))
            subprocess.run(["openssl", "req", "-config", config, "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-days", "7",
                            "-keyout", key, "-out", cert, "-subj", subject,
                            "-extensions", extensions, *signer],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(key, 0o600)
            return cert, key

        self.ca_file, ca_key = req("ca", "/CN=pam-oauth etcd test CA", "ca")
        signer = ("-CA", self.ca_file, "-CAkey", ca_key)
        self.member_certs = [req(f"member{i}", f"/CN=etcd-member-{i}", "member", *signer)
                             for i in range(MEMBERS)]
        # No CommonName: with client-cert-auth and auth on, etcd 3.4's
        # gateway refuses a client certificate that has one (HTTP 400).
        self.client_cert, self.client_key = req("client", "/O=pam-oauth fleet client",
                                                "client", *signer)
        # A client certificate with a CommonName (refused by the gateway).
        self.cn_client_cert, self.cn_client_key = req("cn-client", "/CN=pam-oauth-client",
                                                      "client", *signer)
        wrong_ca, wrong_key = req("wrong-ca", "/CN=unrelated test CA", "ca")
        self.wrong_client_cert, self.wrong_client_key = req(
            "wrong-client", "/O=pam-oauth fleet client", "client",
            "-CA", wrong_ca, "-CAkey", wrong_key)

    # ---------------------------------------------------------- members

    def _argv(self, i, state):
        cert, key = self.member_certs[i]
        cluster = ",".join(f"{n}=https://127.0.0.1:{p}"
                           for n, p in zip(self.names, self.peer_ports))
        return [ETCD, "--name", self.names[i],
                "--data-dir", os.path.join(self.dir, self.names[i] + ".etcd"),
                "--listen-client-urls", self.endpoints[i],
                "--advertise-client-urls", self.endpoints[i],
                "--listen-peer-urls", f"https://127.0.0.1:{self.peer_ports[i]}",
                "--initial-advertise-peer-urls", f"https://127.0.0.1:{self.peer_ports[i]}",
                "--initial-cluster", cluster, "--initial-cluster-state", state,
                "--initial-cluster-token", "pam-oauth-test-" + os.path.basename(self.dir),
                "--cert-file", cert, "--key-file", key, "--trusted-ca-file", self.ca_file,
                "--client-cert-auth",
                "--peer-cert-file", cert, "--peer-key-file", key,
                "--peer-trusted-ca-file", self.ca_file, "--peer-client-cert-auth",
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                "--logger", "zap", "--log-outputs", "stderr"] + (
                    ["--bcrypt-cost", str(self.bcrypt_cost)] if self.bcrypt_cost else [])

    def _spawn(self, i, state):
        with open(self.logs[i], "ab") as log:
            self.procs[i] = subprocess.Popen(self._argv(i, state), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log,
                                             preexec_fn=_die_with_parent)

    def start(self):
        for i in range(MEMBERS):
            self._spawn(i, "new")
        self.wait_healthy(range(MEMBERS))
        self._enable_auth()

    def wait_healthy(self, members, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        for i in members:
            while True:
                if self.procs[i].poll() is not None:
                    raise RuntimeError(f"etcd member {i} exited {self.procs[i].returncode}:\n"
                                       + self.log_tail(i))
                p = self.ctl("endpoint", "health", endpoints=[self.endpoints[i]],
                             check=False, timeout=10)
                if p.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"etcd member {i} not healthy after {timeout} s:\n"
                                       + p.stderr + self.log_tail(i))
                time.sleep(0.1)

    def log_tail(self, i, n=4000):
        try:
            with open(self.logs[i], errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def _enable_auth(self):
        self.ctl("user", "add", "root:" + self.root_password)
        self.ctl("role", "add", "pam-oauth")
        self.ctl("role", "grant-permission", "pam-oauth", "--prefix=true", "readwrite", PREFIX)
        self.ctl("user", "add", f"{self.user}:{self.password}")
        self.ctl("user", "grant-role", self.user, "pam-oauth")
        self.ctl("auth", "enable")
        self.auth = True

    # ---------------------------------------------------------- etcdctl

    def ctl(self, *args, endpoints=None, check=True, timeout=30, user=None):
        """etcdctl (API 3) over mutual TLS, as root once auth is enabled
        (user=(name, password) to be someone else); returns the
        CompletedProcess with text output."""
        argv = [ETCDCTL, "--endpoints", ",".join(endpoints or self.endpoints),
                "--cacert", self.ca_file, "--cert", self.client_cert,
                "--key", self.client_key, "--dial-timeout", "3s",
                "--command-timeout", "10s"]
        if user is not None:
            argv += ["--user", f"{user[0]}:{user[1]}"]
        elif self.auth:
            argv += ["--user", "root:" + self.root_password]
        env = {"PATH": "/usr/bin:/bin", "ETCDCTL_API": "3"}
        p = subprocess.run(argv + list(args), capture_output=True, text=True,
                           timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def dump(self):
        """Every key and value in the cluster as text (etcdctl get --prefix "")."""
        return self.ctl("get", "--prefix", "").stdout

    def keys(self, prefix=PREFIX):
        return self.ctl("get", "--prefix", "--keys-only", prefix).stdout.split()

    def delete_prefix(self, prefix=PREFIX):
        self.ctl("del", "--prefix", prefix)

    def get(self, key):
        """The raw value of key (bytes), or None."""
        p = self.ctl("get", key, "-w", "json")
        kvs = json.loads(p.stdout).get("kvs") or []
        if not kvs:
            return None
        import base64
        return base64.b64decode(kvs[0].get("value", ""))

    def put(self, key, value):
        """Put value (str) at key."""
        p = self.ctl("put", key, "--", value, check=False)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)

    def leases(self):
        """The IDs (hex) of the cluster's leases."""
        out = self.ctl("lease", "list").stdout.split()
        return [x for x in out[3:]] if out[:1] == ["found"] else []

    def revoke_lease(self, lease):
        self.ctl("lease", "revoke", lease)

    def status(self):
        """[(index, member id, leader id)] of the members that answer."""
        out = []
        for i in range(MEMBERS):
            if self.procs[i] is None or self.procs[i].poll() is not None:
                continue
            p = self.ctl("endpoint", "status", "-w", "json", endpoints=[self.endpoints[i]],
                         check=False, timeout=10)
            if p.returncode != 0:
                continue
            for st in json.loads(p.stdout):
                out.append((i, st["Status"]["header"]["member_id"], st["Status"]["leader"]))
        return out

    def leader(self, timeout=20):
        """The index of the member that is leader (waiting for an election)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            ids = {mid: i for i, mid, _ in st}
            leaders = {lid for _, _, lid in st if lid in ids}
            if len(leaders) == 1:
                return ids[leaders.pop()]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no etcd leader after {timeout} s: {st}")
            time.sleep(0.1)

    def kill(self, i):
        """SIGKILL member i."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def restart(self, i):
        """Start member i again on its old data and wait until it is healthy."""
        self.kill(i)
        self._spawn(i, "existing")
        self.wait_healthy([i])

    def stop(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def missing():
    """What is missing to run a cluster, or None."""
    for tool, package in ((ETCD, "etcd-server"), (ETCDCTL, "etcd-client")):
        if not os.access(tool, os.X_OK):
            return f"{tool} not found (Debian package {package})"
    if shutil.which("openssl") is None:
        return "openssl not found (Debian package openssl)"
    return None


def start(bcrypt_cost=None):
    """The cluster of this process, started on first use.  bcrypt_cost:
    etcd's --bcrypt-cost for the users' passwords (default etcd's, 10)."""
    global _cluster
    with _lock:
        if _cluster is not None:
            return _cluster
        why = missing()
        if why is not None:
            raise unittest.SkipTest("etcd cluster unavailable: " + why)
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        directory = tempfile.mkdtemp(prefix="pam-oauth-etcd-", dir=base)
        os.chmod(directory, 0o700)
        c = Cluster(directory, bcrypt_cost)
        atexit.register(c.stop)
        try:
            c.start()
        except BaseException:
            c.stop()
            raise
        _cluster = c
        return c


def stop():
    global _cluster
    with _lock:
        if _cluster is not None:
            _cluster.stop()
            _cluster = None
