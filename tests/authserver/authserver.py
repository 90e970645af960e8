#!/usr/bin/env python3
"""HTTPS test authorization server for pam-oauth's tests (standard library only).

    python3 authserver.py --dir DIR [--watch-stdin]

At start it generates, with the openssl CLI, a test CA (DIR/ca.pem), a server
certificate for 127.0.0.1 and localhost signed by it, and an unrelated CA with
its own certificate for the "wrong certificate" listener.  It listens on two
ephemeral ports of 127.0.0.1 and then writes DIR/server.json:
{"port", "wrong_cert_port", "ca_file", "pid"}.  It runs until SIGTERM/SIGINT
(or, with --watch-stdin, until its standard input reaches end of file, so it
never outlives the test process that started it).  Requests are logged, without
query strings, to DIR/server.log.

Token endpoints (POST), one per emulated vendor, sharing one user, client and
token store (see VENDORS):
  /generic/token        strict RFC 6749: form, JSON or query parameters; client
                        auth by HTTP Basic or in the parameters
  /froomle/oauth/token  JSON body only, client_credentials, 24 h tokens
  /wave/oauth/token     form body, client_credentials, required audience
  /bloom/oauth/token    form body, client_credentials, required audience
  /fluent/oauth/token   every parameter in the query string of a POST, password
                        and refresh_token grants, Fluent's response extras
Device authorization grant (RFC 8628), for the clients whose grants list it
(device-client, a public client, and test-client):
  /generic/device       POST: device authorization endpoint (form, JSON or
                        query parameters, client auth as for tokens); the
                        codes are redeemed at /generic/token or /jwt/token
                        with grant_type urn:ietf:params:oauth:grant-type:
                        device_code: authorization_pending until approved,
                        slow_down (interval + 5 s) when polled faster than
                        the interval, access_denied, expired_token
  /jwt/device           the same, named by the JWT issuer's discovery
  /device               the verification page: GET a form, POST user_code,
                        username, password, action=approve|deny
Protected resource: GET|POST /api/resource and /demo/resource.
git over HTTPS: /git/<repo>.git/... through `git http-backend` (a repository may
have submodules: /_admin/git-init {"name", "submodules": {path: {url, commit}}});
each git request's Host header and whether it carried credentials are logged
(stats "git_log"), so a test sees which host name received a token.
Kubernetes API stand-in for kubectl (`kubectl get --raw`): GET /version and
  any GET under /k8s/, with a valid Bearer token; 401 without (counted:
  kube_requests, kube_authorized).
OCI registry (Docker Registry HTTP API V2 with its token authentication):
  GET /v2/ and /v2/<name>/manifests|blobs|tags/... answer 401 with a Bearer
  challenge whose realm is GET /registry/token; that realm takes HTTP Basic
  credentials whose password is a valid access token of the store (what a
  docker credential helper hands the client) and returns a registry token.
  Every repository holds one small image, "latest" (counted:
  registry_logins, registry_usernames, registry_requests).
JWT issuer (jwt_issuer.py), issuer URL BASE/jwt:
  GET  /jwt/.well-known/openid-configuration   discovery document
  GET  /jwt/jwks        the key set, with Cache-Control: max-age (counted)
  POST /jwt/token       like /generic/token, but the access token is a JWT
                        (typ at+jwt) and an id_token comes with it; claims iss,
                        aud (the client_id), sub, preferred_username, username,
                        email, exp, iat, nbf, scope, realm_access.roles, groups
  POST /jwt/introspect  RFC 7662 for the store's tokens (client auth required)
Test control, without authentication: /_admin/{reset,stats,fault,clear-faults,
revoke,expire,client,user,git-init,tokens,jwt,jwt-stats,device}; tests/
integration/harness.py wraps them.  /_admin/device approves or denies a user
code as a given user, expires it, lists the authorizations, or sets how the
device endpoint answers (DEVICE_DEFAULTS: expires_in, interval, complete,
slow_down, min_gap, response).  /_admin/jwt takes {"alg", "rotate", "forge", "count", "max_age",
"audience", "scope_claim", "reset"} (see jwt_issuer.JwtIssuer.configure).
"""

import argparse
import base64
import copy
import dataclasses
import hmac
import html
import json
import os
import re
import secrets
import select
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jwt_issuer  # noqa: E402

HOST = "127.0.0.1"

WAVE_AUDIENCE = "https://api.wave.test"
BLOOM_AUDIENCE = "https://api.bloom.test"
# Bloom's token response lists the API permissions granted to the client.
BLOOM_SCOPE = "read:consumers write:consumers"

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 3.4
GRANTS = ("client_credentials", "password", "refresh_token", DEVICE_GRANT)

DEFAULT_USERS = {
    "alice": {"password": "alice-pass", "roles": ["admin", "dev"]},
    "bob": {"password": "b0b p@ss+w0rd&=%", "roles": ["dev"]},
    # Every character that breaks naive form encoding, quoting or UTF-8 handling.
    "carol": {"password": "p &=+%\"'\\ü€😀;#?/", "roles": []},
}

# Options a client carries; POST /_admin/client may set any of them.
CLIENT_DEFAULTS = {
    "secret": None,               # None: a public client (RFC 6749 2.1)
    "grants": list(GRANTS),       # others answer unauthorized_client
    "auth_methods": ["client_secret_basic", "client_secret_post"],
    "expires_in": None,           # access token lifetime; None: the endpoint's
    "omit_expires_in": False,     # leave expires_in out of the response
    "omit_scope": False,          # leave scope out (RFC 6749 5.1: = the request)
    "lowercase_bearer": False,    # token_type "bearer" instead of "Bearer"
    "single_use_refresh": True,   # rotate refresh tokens (Glewlwyd, Fluent)
    "roles_in_response": False,   # add the user's "roles" (generic endpoint)
    "audience": None,             # required audience; None: the endpoint's
    "scopes": None,               # allowed scope tokens; None: any
    "fixed_roles": None,          # Fluent "Roles" whatever the user's roles
    "retailer_id": 1,             # Fluent "Retailer_id"
}

DEFAULT_CLIENTS = {
    "test-client": {"secret": "test-secret"},
    # RFC 6749 2.3.1: Basic credentials are form-encoded before base64, so
    # this id and secret only survive a client that encodes them.
    "c li:ent&=": {"secret": "s%e:c+r&et é"},
    "public-client": {"grants": ["password", "refresh_token"]},
    "froomle-client": {"secret": "froomle-secret", "grants": ["client_credentials"]},
    "wave-client": {"secret": "wave-secret", "grants": ["client_credentials"]},
    "bloom-client": {"secret": "bloom-secret", "grants": ["client_credentials"],
                     "scopes": BLOOM_SCOPE.split()},
    # Fluent's API client: password grant, scope "api".
    "fluent-api": {"secret": "fluent-secret", "grants": ["password", "refresh_token"],
                   "scopes": ["api"]},
    # Fluent's FLUENT_INTEGRATION client has no secret, scope "retailer", and
    # answers with the RETAILER role, retailer 5 and a 1799 s lifetime.
    "FLUENT_INTEGRATION": {"grants": ["password", "refresh_token"], "scopes": ["retailer"],
                           "fixed_roles": ["RETAILER"], "retailer_id": 5,
                           "expires_in": 1799},
    # A public client for device logins (RFC 8628 clients usually are).
    "device-client": {"grants": [DEVICE_GRANT, "refresh_token"]},
}

# Device authorization endpoints (RFC 8628 3.1), and the token endpoint
# whose grant redeems their codes.
DEVICE_ENDPOINTS = {"/generic/device": "/generic/token", "/jwt/device": "/jwt/token"}
# RFC 8628 6.1: a base-20 alphabet without vowels, easy to type.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
# What /_admin/device can set (see Store.device_options).
DEVICE_DEFAULTS = {
    "expires_in": 600,        # lifetime of the codes
    "interval": 5,            # polling interval; None leaves it out
    "complete": True,         # send verification_uri_complete
    "slow_down": 0,           # answer the next N polls with slow_down
    "min_gap": None,          # seconds polls must be apart (default: interval)
    "response": None,         # a raw JSON object to answer instead (tests)
}


@dataclasses.dataclass(frozen=True)
class Vendor:
    """How one token endpoint behaves."""
    name: str
    expires_in: int          # default access token lifetime
    token_type: str
    grants: tuple            # grant types the endpoint knows
    sources: tuple           # where parameters may be: "query", "form", "json"
    basic_auth: bool = False  # client authentication by HTTP Basic accepted
    audience: str = None     # required audience parameter
    default_scope: str = None  # scope granted when none is requested
    fluent: bool = False     # Fluent's error envelope and response extras


VENDORS = {
    "/generic/token": Vendor("generic", 3600, "Bearer", GRANTS,
                             ("query", "form", "json"), basic_auth=True),
    # Froomle: JSON body, client credentials, "valid for 24 hours".
    "/froomle/oauth/token": Vendor("froomle", 86400, "Bearer", ("client_credentials",),
                                   ("json",)),
    # Wave and Bloom (both Auth0): form body with an audience.
    "/wave/oauth/token": Vendor("wave", 86400, "Bearer", ("client_credentials",),
                                ("form",), audience=WAVE_AUDIENCE),
    "/bloom/oauth/token": Vendor("bloom", 86400, "Bearer", ("client_credentials",),
                                 ("form",), audience=BLOOM_AUDIENCE,
                                 default_scope=BLOOM_SCOPE),
    # Fluent: "[POST] /oauth/token?{API Credentials}", lowercase "bearer",
    # expires_in 86386 in every example.
    "/fluent/oauth/token": Vendor("fluent", 86386, "bearer", ("password", "refresh_token"),
                                  ("query",), fluent=True),
}

RESOURCES = ("/api/resource", "/demo/resource")

FAULT_KINDS = ("stall", "status", "429", "garbage", "huge", "empty", "redirect",
               "close", "reset")

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_BODY = 64 << 20
LAST_REQUESTS = 50
# RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class OAuthError(Exception):
    """An RFC 6749 5.2 error response."""

    def __init__(self, status, error, description, headers=None, envelope=False):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}
        self.envelope = envelope

    def body(self):
        message = {"error": self.error, "error_description": self.description}
        if self.envelope:
            # Fluent's "Example Error Response" for bad user credentials.
            return {"errors": [{"code": str(self.status), "message": message}]}
        return message


def invalid_request(description):
    return OAuthError(400, "invalid_request", description)


# ---------------------------------------------------------------- parameters

class _Pairs(list):
    """A JSON object kept as its list of members, to spot repeated names."""


def unique_params(pairs):
    """Pairs as a dict; RFC 6749 3.2: no parameter may appear twice."""
    params = {}
    for name, value in pairs:
        if name in params:
            raise invalid_request(f"parameter {name} repeated")
        params[name] = value
    return params


def form_params(text):
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise invalid_request("parameters are not UTF-8") from None
    return unique_params(pairs)


def json_params(body):
    try:
        obj = json.loads(body, object_pairs_hook=_Pairs)
    except ValueError:
        raise invalid_request("malformed JSON body") from None
    if not isinstance(obj, _Pairs) or not all(isinstance(v, str) for _, v in obj):
        raise invalid_request("the JSON body must be an object of strings")
    return unique_params(obj)


def media_type(content_type):
    return content_type.split(";", 1)[0].strip().lower()


def read_params(vendor, query, content_type, body):
    """The request's parameters, from the places the vendor takes them."""
    params = form_params(query) if "query" in vendor.sources else {}
    media = media_type(content_type)
    body_sources = [s for s in vendor.sources if s != "query"]
    if not body_sources:
        # Fluent: the parameters belong in the query string, the body is empty.
        if body:
            raise invalid_request("parameters must be sent in the query string")
        return params
    # Body-only endpoints insist on their Content-Type even for an empty body.
    if "query" not in vendor.sources or body:
        kinds = {FORM: "form", JSON: "json"}
        if kinds.get(media) not in body_sources:
            expected = " or ".join(k for k, v in kinds.items() if v in body_sources)
            raise OAuthError(415, "invalid_request", f"Content-Type must be {expected}")
    if body:
        if media == JSON:
            from_body = json_params(body)
        else:
            try:
                from_body = form_params(body.decode("ascii"))
            except UnicodeDecodeError:
                raise invalid_request("form body is not ASCII") from None
        repeated = params.keys() & from_body.keys()
        if repeated:
            raise invalid_request(f"parameter {sorted(repeated)[0]} repeated")
        params.update(from_body)
    return params


def parse_basic(header):
    """Client credentials of an HTTP Basic header, or None without one.

    RFC 6749 2.3.1: the client id and secret are form-encoded, joined with
    ':' and base64-encoded; the first ':' of the decoded text separates them.
    """
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        client_id, sep, secret = text.partition(":")
        if not sep:
            raise ValueError
        return (urllib.parse.unquote_plus(client_id, errors="strict"),
                urllib.parse.unquote_plus(secret, errors="strict"))
    except ValueError:
        raise invalid_request("malformed Basic credentials") from None


def presented_token(header):
    """The access token in an Authorization header: Bearer, or the password of
    Basic credentials (how git sends a token it got as a password)."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except ValueError:
            return None
    return None


def secret_matches(expected, given):
    if expected is None:  # public client: nothing, or an empty secret
        return not given
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def granted_scope(requested, allowed, default):
    """The scope to grant: the request, checked against the allowed tokens
    (None: any), or the default when nothing was requested."""
    if requested is None:
        return default
    tokens = requested.split(" ")
    if not all(SCOPE_TOKEN.fullmatch(t) for t in tokens):
        raise OAuthError(400, "invalid_scope", "malformed scope")
    if allowed is not None and not set(tokens) <= set(allowed):
        raise OAuthError(400, "invalid_scope", f"scope not allowed: {requested}")
    return requested


# ---------------------------------------------------------------- the store

@dataclasses.dataclass
class AccessToken:
    client_id: str
    username: str
    scope: str
    expires_at: float
    revoked: bool = False


@dataclasses.dataclass
class RefreshToken:
    client_id: str
    username: str
    scope: str
    family: str       # every token rotated from the same grant
    used: bool = False
    revoked: bool = False


@dataclasses.dataclass
class DeviceAuth:
    """One device authorization (RFC 8628 3.2) and what became of it."""
    client_id: str
    user_code: str
    scope: str
    expires_at: float
    interval: float
    state: str = "pending"   # pending | approved | denied | used
    username: str = None     # who approved
    last_poll: float = 0.0
    polls: int = 0
    slow_downs: int = 0


@dataclasses.dataclass
class Issued:
    access_token: str
    expires_in: int
    scope: str
    username: str
    refresh_token: str = None


class Store:
    """Users, clients, tokens, faults and statistics, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.users = copy.deepcopy(DEFAULT_USERS)
            self.clients = {cid: {**copy.deepcopy(CLIENT_DEFAULTS), **copy.deepcopy(opts)}
                            for cid, opts in DEFAULT_CLIENTS.items()}
            self.access = {}
            self.refresh = {}
            self.faults = []
            self.devices = {}        # device_code -> DeviceAuth
            self.device_opts = dict(DEVICE_DEFAULTS)
            self.stats = {"token_requests": {}, "by_grant": {}, "by_path": {}, "total": 0,
                          "resource_requests": 0, "git_requests": 0, "tokens_issued": 0,
                          "device_requests": 0, "device_polls": 0, "device_slow_downs": 0,
                          "kube_requests": 0, "kube_authorized": 0, "registry_requests": 0, "registry_logins": 0,
                          "registry_usernames": []}
            self.registry_tokens = {}
            self.last_requests = deque(maxlen=LAST_REQUESTS)
            self.git_log = deque(maxlen=LAST_REQUESTS)

    # clients and users

    def client(self, client_id):
        with self.lock:
            return copy.deepcopy(self.clients.get(client_id))

    def set_client(self, client_id, options):
        unknown = options.keys() - CLIENT_DEFAULTS.keys()
        if unknown:
            raise ValueError(f"unknown client option {sorted(unknown)[0]}")
        if not set(options.get("grants", ())) <= set(GRANTS):
            raise ValueError("unknown grant type")
        with self.lock:
            client = self.clients.setdefault(client_id, copy.deepcopy(CLIENT_DEFAULTS))
            client.update(copy.deepcopy(options))

    def set_user(self, username, password, roles=None):
        with self.lock:
            user = self.users.setdefault(username, {"roles": []})
            user["password"] = password
            if roles is not None:
                user["roles"] = list(roles)

    def roles(self, username):
        with self.lock:
            return list(self.users.get(username, {}).get("roles", []))

    # grants

    def _issue(self, client_id, username, scope, expires_in, family=None):
        """A new access token, and a refresh token when given its family."""
        token = secrets.token_urlsafe(32)
        self.access[token] = AccessToken(client_id, username, scope, time.time() + expires_in)
        self.stats["tokens_issued"] += 1
        issued = Issued(token, expires_in, scope, username)
        if family is not None:
            issued.refresh_token = secrets.token_urlsafe(32)
            self.refresh[issued.refresh_token] = RefreshToken(client_id, username, scope, family)
        return issued

    def client_credentials(self, client_id, scope, expires_in):
        with self.lock:
            return self._issue(client_id, None, scope, expires_in)

    def password(self, client_id, username, password, scope, expires_in):
        """None when the user's credentials are wrong."""
        with self.lock:
            user = self.users.get(username)
            if user is None or not secret_matches(user["password"], password):
                return None
            return self._issue(client_id, username, scope, expires_in,
                               family=secrets.token_hex(8))

    def refresh_grant(self, client_id, refresh_token, requested_scope, expires_in, single_use):
        with self.lock:
            old = self.refresh.get(refresh_token)
            if old is None or old.revoked or old.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "Invalid refresh token")
            if old.used:
                # Replay of a rotated token: like Glewlwyd, distrust the whole
                # family, including the newest token rotated from this one.
                for token in self.refresh.values():
                    if token.family == old.family:
                        token.revoked = True
                raise OAuthError(400, "invalid_grant", "Invalid refresh token")
            # RFC 6749 6: the scope may shrink, never grow.
            scope = granted_scope(requested_scope, (old.scope or "").split(), old.scope)
            old.used = single_use
            # Without rotation the old refresh token stays valid and the
            # response carries none (RFC 6749 6 makes a new one optional).
            return self._issue(client_id, old.username, scope, expires_in,
                               family=old.family if single_use else None)

    # the device grant (RFC 8628)

    def device_options(self, **options):
        """Set how the device endpoints answer (DEVICE_DEFAULTS' keys)."""
        unknown = options.keys() - DEVICE_DEFAULTS.keys()
        if unknown:
            raise ValueError(f"unknown device option {sorted(unknown)[0]}")
        with self.lock:
            self.device_opts.update(options)
            return dict(self.device_opts)

    def device_authorize(self, client_id, scope):
        """A new device code and user code for client_id; returns
        (device_code, DeviceAuth copy, the options in force)."""
        with self.lock:
            opts = dict(self.device_opts)
            while True:
                raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
                user_code = raw[:4] + "-" + raw[4:]
                if all(d.user_code != user_code for d in self.devices.values()):
                    break
            device_code = secrets.token_urlsafe(32)
            interval = opts["interval"] if opts["interval"] is not None else 5
            self.devices[device_code] = DeviceAuth(
                client_id, user_code, scope, time.time() + opts["expires_in"], interval)
            self.stats["device_requests"] += 1
            return device_code, copy.copy(self.devices[device_code]), opts

    def _device_by_user_code(self, user_code):
        code = (user_code or "").upper().replace(" ", "")
        for device_code, d in self.devices.items():
            if d.user_code == code or d.user_code.replace("-", "") == code:
                return device_code, d
        raise ValueError(f"no device authorization with user code {user_code}")

    def device_decide(self, user_code, username, approve=True):
        """The user (approving as username) approves or denies user_code."""
        with self.lock:
            _, d = self._device_by_user_code(user_code)
            if d.state != "pending":
                raise ValueError(f"user code {d.user_code} is {d.state}")
            if approve and username not in self.users:
                raise ValueError(f"unknown user {username}")
            d.state = "approved" if approve else "denied"
            d.username = username
            return {"ok": True, "user_code": d.user_code, "state": d.state}

    def device_expire(self, user_code):
        with self.lock:
            _, d = self._device_by_user_code(user_code)
            d.expires_at = time.time() - 1
            return {"ok": True}

    def device_list(self):
        with self.lock:
            return [{"user_code": d.user_code, "client_id": d.client_id, "state": d.state,
                     "username": d.username, "polls": d.polls, "slow_downs": d.slow_downs,
                     "interval": d.interval, "scope": d.scope,
                     "expires_in": round(d.expires_at - time.time(), 1)}
                    for d in self.devices.values()]

    def device_grant(self, client_id, device_code, expires_in):
        """RFC 8628 3.5: one poll of the token endpoint."""
        with self.lock:
            self.stats["device_polls"] += 1
            d = self.devices.get(device_code)
            if d is None or d.client_id != client_id or d.state == "used":
                raise OAuthError(400, "invalid_grant", "Unknown or used device code")
            now = time.time()
            d.polls += 1
            gap = now - d.last_poll
            d.last_poll = now
            if now >= d.expires_at:
                raise OAuthError(400, "expired_token", "The device code has expired")
            if d.state == "denied":
                raise OAuthError(400, "access_denied", "The user denied the login")
            min_gap = self.device_opts["min_gap"]
            min_gap = d.interval if min_gap is None else min_gap
            if self.device_opts["slow_down"] > 0 or (d.polls > 1 and gap < min_gap - 0.25):
                # Too fast (or told to): 5 s more for this and every later poll.
                if self.device_opts["slow_down"] > 0:
                    self.device_opts["slow_down"] -= 1
                d.interval += 5
                d.slow_downs += 1
                self.stats["device_slow_downs"] += 1
                raise OAuthError(400, "slow_down", "Polling too fast")
            if d.state == "pending":
                raise OAuthError(400, "authorization_pending", "The user has not approved yet")
            d.state = "used"
            return self._issue(client_id, d.username, d.scope, expires_in,
                               family=secrets.token_hex(8))

    # access tokens

    def valid_access_token(self, token):
        with self.lock:
            record = self.access.get(token)
            if record is None or record.revoked or record.expires_at <= time.time():
                return None
            return copy.copy(record)

    @staticmethod
    def _records(tables, token, everything):
        """Every record of the tables, or those under the given token."""
        if everything:
            return [record for table in tables for record in table.values()]
        return [table[token] for table in tables if token in table]

    def revoke(self, token=None, everything=False):
        """Revoke an access or refresh token, or every access token."""
        with self.lock:
            tables = (self.access,) if everything else (self.access, self.refresh)
            records = self._records(tables, token, everything)
            for record in records:
                record.revoked = True
            return len(records)

    def expire(self, token=None, everything=False):
        with self.lock:
            records = self._records((self.access,), token, everything)
            for record in records:
                record.expires_at = time.time() - 1
            return len(records)

    # faults

    def add_fault(self, fault):
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self):
        with self.lock:
            self.faults.clear()

    def take_fault(self, path):
        """The first queued fault for this path, consuming one of its uses."""
        with self.lock:
            for fault in self.faults:
                if fault["path"] in (path, "*"):
                    if fault["count"] > 0:
                        fault["count"] -= 1
                        if fault["count"] == 0:
                            self.faults.remove(fault)
                    return dict(fault)
            return None

    # statistics

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def record_token_request(self, path, client_id, grant, summary):
        with self.lock:
            stats = self.stats
            stats["total"] += 1
            for table, key in (("token_requests", client_id), ("by_grant", grant),
                               ("by_path", path)):
                stats[table][key] = stats[table].get(key, 0) + 1
            self.last_requests.append(summary)

    def record_git_request(self, host, path, authorization):
        """Which host name a git request was sent to, and whether it
        carried credentials (the helper's answer)."""
        with self.lock:
            self.git_log.append({"host": host, "path": path,
                                 "authorization": bool(authorization)})

    def snapshot(self):
        with self.lock:
            return {**copy.deepcopy(self.stats), "last_requests": list(self.last_requests),
                    "git_log": list(self.git_log)}


# ---------------------------------------------------------------- git

GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "HOME": os.devnull,
}


def init_repo(root, name, submodules=None):
    """A bare repository ROOT/NAME.git with one commit on main (idempotent);
    submodules {path: {"url", "commit"}} adds a .gitmodules naming them and
    their gitlinks.  Returns the commit."""
    repo = os.path.join(root, name + ".git")
    if os.path.isdir(repo):
        return subprocess.run(("git", "rev-parse", "main"), env={**GIT_ENV, "GIT_DIR": repo},
                              check=True, text=True, capture_output=True).stdout.strip()
    env = {**GIT_ENV, "GIT_DIR": repo + ".tmp",
           "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}

    def git(*args, text=None):
        return subprocess.run(("git",) + args, input=text, env=env, check=True, text=True,
                              capture_output=True).stdout.strip()

    git("init", "--bare", "--quiet", "--initial-branch=main", repo + ".tmp")
    blob = git("hash-object", "-w", "--stdin", text=f"Test repository {name}\n")
    entries = f"100644 blob {blob}\tREADME\n"
    if submodules:
        gitmodules = "".join(f'[submodule "{p}"]\n\tpath = {p}\n\turl = {s["url"]}\n'
                             for p, s in sorted(submodules.items()))
        mblob = git("hash-object", "-w", "--stdin", text=gitmodules)
        entries += f"100644 blob {mblob}\t.gitmodules\n" + "".join(
            f"160000 commit {s['commit']}\t{p}\n" for p, s in sorted(submodules.items()))
    tree = git("mktree", text=entries)
    commit = git("commit-tree", tree, "-m", "Initial commit")
    git("update-ref", "refs/heads/main", commit)
    os.rename(repo + ".tmp", repo)
    return commit


def read_cgi_headers(stream):
    """Status code and headers of a CGI response (RFC 3875 6.2)."""
    status, headers = 200, []
    while True:
        line = stream.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as real servers do
    server_version = "pam-oauth-authserver"
    timeout = 120
    disable_nagle_algorithm = True

    # plumbing

    @property
    def store(self):
        return self.server.state.store

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_json(400, {"error": "invalid_request", "error_description": "bad body"})
            return
        path = url.path
        if path.startswith("/_admin/"):
            self.admin(path[len("/_admin/"):], body)
            return
        if path in VENDORS:
            self.record_token_request(url, body)
        elif path in DEVICE_ENDPOINTS:
            self.store.record_token_request(path, "", "device_authorization", {
                "path": path, "method": self.command, "query": url.query,
                "content_type": self.headers.get("Content-Type"),
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace")})
        elif path in RESOURCES:
            self.store.count("resource_requests")
        elif path.startswith("/git/"):
            self.store.count("git_requests")
            self.store.record_git_request(self.headers.get("Host", ""), path,
                                          self.headers.get("Authorization"))
        elif path.startswith("/k8s/") or path == "/version":
            self.store.count("kube_requests")
        elif path.startswith("/v2/") or path == "/registry/token":
            self.store.count("registry_requests")
        fault = self.store.take_fault(path)
        if fault is not None and self.apply_fault(fault, url):
            return
        if path in VENDORS:
            self.token(VENDORS[path], url.query, body)
        elif path in DEVICE_ENDPOINTS:
            self.device_authorization(path, url.query, body)
        elif path == "/device":
            self.device_page(url.query, body)
        elif path.startswith("/jwt/"):
            self.jwt(path[len("/jwt"):], url.query, body)
        elif path in RESOURCES:
            self.resource()
        elif path.startswith("/git/"):
            self.git(path[len("/git"):], url.query, body)
        elif path.startswith("/k8s/") or path == "/version":
            self.kube(path[len("/k8s"):] if path.startswith("/k8s/") else path)
        elif path == "/registry/token":
            self.registry_token(url.query)
        elif path.startswith("/v2/"):
            self.registry(path)
        else:
            self.send_json(404, {"error": "not_found"})

    do_GET = do_POST
    do_HEAD = do_POST

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
                if len(body) > MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length)

    def send_body(self, status, body, content_type=None, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj, headers=None):
        self.send_body(status, json.dumps(obj).encode(), JSON, headers)

    def drop_connection(self, reset):
        """Close the socket now; with reset, abort it with a TCP RST."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.rfile.close()  # its makefile() reference would keep the socket open
        self.connection.close()

    def log_request(self, code="-", size="-"):
        # Path only: Fluent-style query strings carry secrets.
        path = urllib.parse.urlsplit(self.path).path
        self.log_message("%s %s %s", self.command, path, code)

    def log_message(self, fmt, *args):
        self.server.state.log(f"{self.address_string()} {fmt % args}")

    # faults

    def apply_fault(self, fault, url):
        """Misbehave as the fault says; False when the request goes on."""
        kind, extra = fault["kind"], fault.get("headers") or {}
        if kind == "stall":
            # Each connection has its own thread: only this request waits.  A
            # client that gives up closes the connection, which turns readable:
            # the request is then dropped, and issues no token after the test
            # that stalled it has moved on.
            gone, _, _ = select.select([self.connection], [], [],
                                       float(fault.get("seconds", 30)))
            if gone:
                self.drop_connection(reset=False)
            return bool(gone)
        if kind == "reset":
            self.drop_connection(reset=True)
        elif kind == "close":
            partial = b'{"access_token":"truncated-'
            self.send_response(200)
            self.send_header("Content-Type", JSON)
            self.send_header("Content-Length", str(len(partial) + 4096))
            self.end_headers()
            self.wfile.write(partial)
            self.drop_connection(reset=False)
        elif kind == "status":
            body = fault.get("body", {"error": "server_error",
                                      "error_description": "injected fault"})
            if not isinstance(body, str):
                body = json.dumps(body)
            try:
                json.loads(body)
                content_type = JSON
            except ValueError:
                content_type = "text/plain"
            self.send_body(int(fault.get("status", 500)), body.encode(),
                           fault.get("content_type", content_type), extra)
        elif kind == "429":
            self.send_json(429, {"error": "too_many_requests",
                                 "error_description": "Rate limit exceeded"},
                           {"Retry-After": str(fault.get("retry_after", 1)), **extra})
        elif kind == "garbage":
            # A proxy's HTML error page served as JSON.
            body = fault.get("body", "<html><body><h1>502 Bad Gateway</h1></body></html>")
            self.send_body(200, body.encode(), JSON, extra)
        elif kind == "huge":
            # Well-formed JSON, so only a response size limit can refuse it.
            size = int(fault.get("size", 3 << 20))
            body = b'{"access_token":"huge","token_type":"Bearer","expires_in":3600,"padding":"'
            self.send_body(200, body + b"x" * size + b'"}', JSON, extra)
        elif kind == "empty":
            # Glewlwyd answers a bad password with an empty 403.
            self.send_body(int(fault.get("status", 403)), b"", None, extra)
        elif kind == "redirect":
            location = fault.get("location") or self.server.base_url + self.path
            self.send_body(int(fault.get("status", 302)), b"", None,
                           {"Location": location, **extra})
        return True

    # token endpoints

    def record_token_request(self, url, body):
        """Statistics, kept before any fault so that retries can be counted."""
        vendor = VENDORS[url.path]
        # Parsed as leniently as the generic endpoint, whatever the vendor.
        try:
            basic = parse_basic(self.headers.get("Authorization")) if vendor.basic_auth else None
        except OAuthError:
            basic = None
        try:
            params = read_params(VENDORS["/generic/token"], url.query,
                                 self.headers.get("Content-Type", ""), body)
        except OAuthError:
            params = {}
        client_id = basic[0] if basic else params.get("client_id", "")
        self.store.record_token_request(
            url.path, client_id, params.get("grant_type", ""),
            {"path": url.path, "method": self.command, "query": url.query,
             "content_type": self.headers.get("Content-Type"),
             "headers": dict(self.headers.items()),
             "body": body.decode("utf-8", "replace")})

    def token(self, vendor, query, body):
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 5.1
        try:
            if self.command != "POST":
                raise OAuthError(405, "invalid_request", "use POST", {"Allow": "POST"})
            params = read_params(vendor, query, self.headers.get("Content-Type", ""), body)
            basic = parse_basic(self.headers.get("Authorization")) if vendor.basic_auth else None
            client_id, client = self.authenticate_client(params, basic)
            issued = self.grant(vendor, client_id, client, params)
        except OAuthError as e:
            self.send_json(e.status, e.body(), {**e.headers, **no_store})
            return
        response = {"access_token": issued.access_token,
                    "token_type": "bearer" if client["lowercase_bearer"] else vendor.token_type}
        if not client["omit_expires_in"]:
            response["expires_in"] = issued.expires_in
        if issued.refresh_token:
            response["refresh_token"] = issued.refresh_token
        if issued.scope and not client["omit_scope"]:
            response["scope"] = issued.scope
        if vendor.fluent:
            # Fluent's "Response Model" extras.
            roles = client["fixed_roles"]
            if roles is None:
                roles = self.store.roles(issued.username)
            response.update({"Retailer_id": client["retailer_id"],
                             "FirstName": issued.username.capitalize(), "LastName": "Test",
                             "Roles": roles})
        elif client["roles_in_response"]:
            response["roles"] = self.store.roles(issued.username)
        self.send_json(200, response, no_store)

    def authenticate_client(self, params, basic):
        """RFC 6749 2.3: Basic credentials or client_id/client_secret
        parameters, never both; a public client sends client_id alone."""
        if basic is not None:
            if "client_secret" in params:
                raise invalid_request("more than one client authentication method")
            if params.get("client_id", basic[0]) != basic[0]:
                raise invalid_request("client_id does not match the Basic credentials")
            (client_id, secret), method = basic, "client_secret_basic"
        elif "client_id" in params:
            client_id, secret = params["client_id"], params.get("client_secret")
            method = "client_secret_post"
        else:
            raise OAuthError(401, "invalid_client", "Bad client credentials")
        client = self.store.client(client_id)
        if (client is None or not secret_matches(client["secret"], secret)
                or (client["secret"] is not None and method not in client["auth_methods"])):
            # Fluent's wording; RFC 6749 5.2 asks for the challenge after Basic.
            headers = {"WWW-Authenticate": 'Basic realm="test"'} if basic else {}
            raise OAuthError(401, "invalid_client", "Bad client credentials", headers)
        return client_id, client

    def grant(self, vendor, client_id, client, params):
        grant_type = params.get("grant_type")
        if not grant_type:
            raise invalid_request("missing grant_type")
        if grant_type not in vendor.grants:
            raise OAuthError(400, "unsupported_grant_type", f"unsupported grant {grant_type}")
        if grant_type not in client["grants"]:
            raise OAuthError(400, "unauthorized_client", f"{grant_type} not allowed for client")
        expires_in = vendor.expires_in if client["expires_in"] is None else client["expires_in"]
        if grant_type == "refresh_token":
            return self.store.refresh_grant(client_id, self.required(params, "refresh_token"),
                                            params.get("scope"), expires_in,
                                            client["single_use_refresh"])
        if grant_type == DEVICE_GRANT:
            return self.store.device_grant(client_id, self.required(params, "device_code"),
                                           expires_in)
        audience = client["audience"] or vendor.audience
        if audience and params.get("audience") != audience:
            raise invalid_request("missing or unknown audience")
        default_scope = " ".join(client["scopes"]) if client["scopes"] else vendor.default_scope
        scope = granted_scope(params.get("scope"), client["scopes"], default_scope)
        if grant_type == "client_credentials":
            return self.store.client_credentials(client_id, scope, expires_in)
        issued = self.store.password(client_id, self.required(params, "username"),
                                     self.required(params, "password"), scope, expires_in)
        if issued is None:
            raise OAuthError(400, "invalid_grant", "Bad credentials", envelope=vendor.fluent)
        return issued

    # the device grant (RFC 8628)

    def device_authorization(self, path, query, body):
        """RFC 8628 3.1/3.2: a device code and a user code for a client."""
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        try:
            if self.command != "POST":
                raise OAuthError(405, "invalid_request", "use POST", {"Allow": "POST"})
            params = read_params(VENDORS["/generic/token"], query,
                                 self.headers.get("Content-Type", ""), body)
            basic = parse_basic(self.headers.get("Authorization"))
            client_id, client = self.authenticate_client(params, basic)
            if DEVICE_GRANT not in client["grants"]:
                raise OAuthError(400, "unauthorized_client",
                                 "the device grant is not allowed for this client")
            scope = granted_scope(params.get("scope"), client["scopes"],
                                  " ".join(client["scopes"]) if client["scopes"] else None)
            device_code, d, opts = self.store.device_authorize(client_id, scope)
        except OAuthError as e:
            self.send_json(e.status, e.body(), {**e.headers, **no_store})
            return
        if opts["response"] is not None:
            # A test's own answer (malformed members, hostile text).
            self.send_json(200, opts["response"], no_store)
            return
        base = self.server.base_url
        response = {"device_code": device_code, "user_code": d.user_code,
                    "verification_uri": base + "/device",
                    "expires_in": int(opts["expires_in"])}
        if opts["complete"]:
            response["verification_uri_complete"] = (base + "/device?user_code="
                                                     + d.user_code)
        if opts["interval"] is not None:
            response["interval"] = opts["interval"]
        self.send_json(200, response, no_store)

    def device_page(self, query, body):
        """The verification page: GET shows a form, POST user_code, username,
        password and action=approve|deny decides (the user logging in at the
        identity provider)."""
        if self.command == "GET":
            code = urllib.parse.parse_qs(query).get("user_code", [""])[0]
            page = ("<!doctype html><title>Device login</title><form method=post>"
                    f"<input name=user_code value=\"{html.escape(code)}\">"
                    "<input name=username><input name=password type=password>"
                    "<button name=action value=approve>Approve</button>"
                    "<button name=action value=deny>Deny</button></form>")
            self.send_body(200, page.encode(), "text/html; charset=utf-8")
            return
        try:
            form = form_params(body.decode("ascii"))
            username = form.get("username", "")
            with self.store.lock:
                user = self.store.users.get(username)
                ok = user is not None and secret_matches(user["password"],
                                                         form.get("password"))
            if not ok:
                self.send_body(403, b"wrong user name or password", "text/plain")
                return
            result = self.store.device_decide(form.get("user_code"), username,
                                              form.get("action", "approve") == "approve")
        except (OAuthError, ValueError, UnicodeDecodeError) as e:
            self.send_body(400, str(e).encode(), "text/plain")
            return
        self.send_body(200, f"Login {result['state']}.".encode(), "text/plain")

    @staticmethod
    def required(params, name):
        if not params.get(name):
            raise invalid_request(f"missing {name}")
        return params[name]

    # the JWT issuer

    @property
    def issuer(self):
        return self.server.state.jwt

    def jwt(self, path, query, body):
        base = self.server.base_url
        if path == "/.well-known/openid-configuration" and self.command == "GET":
            self.send_json(200, self.issuer.discovery(base))
        elif path == "/jwks" and self.command == "GET":
            keys, cache_control = self.issuer.jwks()
            self.send_json(200, keys, {"Cache-Control": cache_control})
        elif path == "/token":
            self.jwt_token(query, body)
        elif path == "/introspect":
            self.jwt_introspect(query, body)
        else:
            self.send_json(404, {"error": "not_found"})

    def jwt_token(self, query, body):
        """/generic/token's grants, answered with JWTs."""
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        vendor = VENDORS["/generic/token"]
        try:
            if self.command != "POST":
                raise OAuthError(405, "invalid_request", "use POST", {"Allow": "POST"})
            params = read_params(vendor, query, self.headers.get("Content-Type", ""), body)
            basic = parse_basic(self.headers.get("Authorization"))
            client_id, client = self.authenticate_client(params, basic)
            issued = self.grant(vendor, client_id, client, params)
        except OAuthError as e:
            self.send_json(e.status, e.body(), {**e.headers, **no_store})
            return
        roles = self.store.roles(issued.username) if issued.username else []
        tokens = self.issuer.issue(self.server.base_url, client_id, issued.username,
                                   issued.scope, roles, issued.expires_in)
        with self.store.lock:
            self.store.access[tokens["access_token"]] = AccessToken(
                client_id, issued.username, issued.scope, time.time() + issued.expires_in)
        response = {"access_token": tokens["access_token"], "token_type": "Bearer",
                    "expires_in": issued.expires_in, "id_token": tokens["id_token"]}
        if issued.refresh_token:
            response["refresh_token"] = issued.refresh_token
        if issued.scope and not client["omit_scope"]:
            response["scope"] = issued.scope
        self.send_json(200, response, no_store)

    def jwt_introspect(self, query, body):
        """RFC 7662: the resource server (a client) asks about a token."""
        try:
            if self.command != "POST":
                raise OAuthError(405, "invalid_request", "use POST", {"Allow": "POST"})
            params = read_params(VENDORS["/generic/token"], query,
                                 self.headers.get("Content-Type", ""), body)
            basic = parse_basic(self.headers.get("Authorization"))
            self.authenticate_client(params, basic)
            token = self.required(params, "token")
        except OAuthError as e:
            self.send_json(e.status, e.body(), e.headers)
            return
        record = self.store.valid_access_token(token)
        roles = self.store.roles(record.username) if record and record.username else []
        self.send_json(200, self.issuer.introspect(self.server.base_url, record, roles),
                       {"Cache-Control": "no-store"})

    # protected resources

    def valid_token(self):
        token = presented_token(self.headers.get("Authorization"))
        return self.store.valid_access_token(token) if token else None

    def resource(self):
        record = self.valid_token()
        if record is None:
            # RFC 6750 3.1: no error code when no credentials were sent.
            challenge = 'Bearer realm="test"'
            if self.headers.get("Authorization"):
                challenge += ', error="invalid_token"'
            self.send_json(401, {"ok": False, "error": "invalid_token"},
                           {"WWW-Authenticate": challenge})
            return
        self.send_json(200, {"ok": True, "client": record.client_id, "user": record.username,
                             "scope": record.scope})

    def kube(self, path):
        """Enough of a Kubernetes API server for `kubectl get --raw`."""
        if self.valid_token() is None:
            self.send_json(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "Unauthorized", "reason": "Unauthorized",
                                 "code": 401})
            return
        self.store.count("kube_authorized")
        if path == "/version":
            self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-pam-oauth",
                                 "platform": "linux/amd64"})
            return
        self.send_json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                             "message": "pam-oauth test API server", "path": path})

    REGISTRY_SERVICE = "pam-oauth-test-registry"
    # One image in every repository: an empty layer set and a small config.
    REGISTRY_CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                                  "config": {"Labels": {"pam-oauth": "test"}},
                                  "rootfs": {"type": "layers", "diff_ids": []}}).encode()

    def registry_manifest(self):
        import hashlib
        config_digest = "sha256:" + hashlib.sha256(self.REGISTRY_CONFIG).hexdigest()
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(self.REGISTRY_CONFIG), "digest": config_digest},
            "layers": []}).encode()
        return manifest, "sha256:" + hashlib.sha256(manifest).hexdigest(), config_digest

    def registry_token(self, query):
        """The token realm: Basic credentials holding an access token."""
        token = presented_token(self.headers.get("Authorization"))
        scheme = (self.headers.get("Authorization") or "").partition(" ")[0].lower()
        if scheme != "basic" or not token or self.store.valid_access_token(token) is None:
            self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                           {"WWW-Authenticate": 'Basic realm="pam-oauth test registry"'})
            return
        username = base64.b64decode(self.headers["Authorization"].split(" ", 1)[1]).decode().partition(":")[0]
        params = urllib.parse.parse_qs(query)
        if params.get("service") != [self.REGISTRY_SERVICE]:
            self.send_json(400, {"errors": [{"code": "DENIED", "message": "wrong service"}]})
            return
        registry_token = "reg-" + secrets.token_urlsafe(24)
        with self.store.lock:
            self.store.registry_tokens[registry_token] = time.time() + 300
            self.store.stats["registry_logins"] += 1
            self.store.stats["registry_usernames"].append(username)
        self.send_json(200, {"token": registry_token, "access_token": registry_token,
                             "expires_in": 300})

    def registry(self, path):
        token = presented_token(self.headers.get("Authorization"))
        scheme = (self.headers.get("Authorization") or "").partition(" ")[0].lower()
        with self.store.lock:
            ok = scheme == "bearer" and self.store.registry_tokens.get(token, 0) > time.time()
        if not ok:
            scope = ""
            m = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/", path)
            if m:
                scope = f',scope="repository:{m.group(1)}:pull"'
            challenge = (f'Bearer realm="{self.server.base_url}/registry/token",'
                         f'service="{self.REGISTRY_SERVICE}"{scope}')
            self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                           {"WWW-Authenticate": challenge,
                            "Docker-Distribution-API-Version": "registry/2.0"})
            return
        api = {"Docker-Distribution-API-Version": "registry/2.0"}
        manifest, manifest_digest, config_digest = self.registry_manifest()
        if path == "/v2/":
            self.send_json(200, {}, api)
        elif re.match(r"^/v2/.+/manifests/(latest|" + re.escape(manifest_digest) + ")$", path):
            headers = {**api, "Docker-Content-Digest": manifest_digest}
            if self.command == "HEAD":
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type",
                                 "application/vnd.docker.distribution.manifest.v2+json")
                self.send_header("Content-Length", str(len(manifest)))
                self.end_headers()
                return
            self.send_body(200, manifest, "application/vnd.docker.distribution.manifest.v2+json",
                           headers)
        elif re.match(r"^/v2/.+/tags/list$", path):
            self.send_json(200, {"name": path[len("/v2/"):-len("/tags/list")],
                                 "tags": ["latest"]}, api)
        elif path.endswith("/blobs/" + config_digest):
            self.send_body(200, self.REGISTRY_CONFIG, "application/octet-stream",
                           {**api, "Docker-Content-Digest": config_digest})
        else:
            self.send_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}, api)

    def git(self, path_info, query, body):
        """CGI bridge to git http-backend (RFC 3875)."""
        record = self.valid_token()
        if record is None:
            # A Basic challenge makes git ask its credential helper.
            self.send_json(401, {"error": "invalid_token"},
                           {"WWW-Authenticate": 'Basic realm="test"'})
            return
        env = {**GIT_ENV, "GIT_PROJECT_ROOT": self.server.state.git_root,
               "GIT_HTTP_EXPORT_ALL": "1",
               "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": self.request_version,
               "REQUEST_METHOD": self.command, "PATH_INFO": path_info, "QUERY_STRING": query,
               "REMOTE_ADDR": self.client_address[0],
               "REMOTE_USER": record.username or record.client_id,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body))}
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            # Content-Encoding (gzip) and Git-Protocol pass through as HTTP_*.
            if key not in ("AUTHORIZATION", "CONTENT_TYPE", "CONTENT_LENGTH",
                           "TRANSFER_ENCODING"):
                env["HTTP_" + key] = value
        proc = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=self.server.state.log_file, env=env)

        def feed():
            try:
                with proc.stdin:
                    proc.stdin.write(body)
            except BrokenPipeError:  # http-backend refused the request early
                pass
        threading.Thread(target=feed, daemon=True).start()
        try:
            status, headers = read_cgi_headers(proc.stdout)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            chunked = not any(n.lower() == "content-length" for n, _ in headers)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while data := proc.stdout.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            proc.stdout.close()
            proc.wait()

    # admin API

    def admin(self, name, body):
        action = ADMIN_ACTIONS.get(name)
        if action is None:
            self.send_json(404, {"error": f"unknown admin action {name}"})
            return
        try:
            args = json.loads(body) if body else {}
            if not isinstance(args, dict):
                raise ValueError("expected a JSON object")
            self.send_json(200, action(self, args))
        except (ValueError, KeyError, TypeError) as e:
            self.send_json(400, {"error": f"{type(e).__name__}: {e}"})

    def admin_reset(self, args):
        self.store.reset()
        self.issuer.reset()
        return {"ok": True}

    def admin_jwt(self, args):
        return self.issuer.configure(**args)

    def admin_jwt_stats(self, args):
        return self.issuer.snapshot()

    def admin_stats(self, args):
        return self.store.snapshot()

    def admin_fault(self, args):
        fault = {"path": "*", "count": 1, **args}
        if fault.get("kind") not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if not (fault["count"] == -1 or fault["count"] > 0):
            raise ValueError("count must be positive, or -1 for every request")
        self.store.add_fault(fault)
        return {"ok": True}

    def admin_clear_faults(self, args):
        self.store.clear_faults()
        return {"ok": True}

    def admin_tokens(self, args):
        """Every access and refresh token issued to a client (for tests that
        look for them where they must not be, such as a process's memory)."""
        client_id = args.get("client_id")
        with self.store.lock:
            return {"access": [t for t, r in self.store.access.items()
                               if client_id is None or r.client_id == client_id],
                    "refresh": [t for t, r in self.store.refresh.items()
                                if client_id is None or r.client_id == client_id]}

    def admin_revoke(self, args):
        return {"ok": True, "count": self.store.revoke(args.get("token"),
                                                              bool(args.get("all")))}

    def admin_expire(self, args):
        return {"ok": True, "count": self.store.expire(args.get("token"),
                                                              bool(args.get("all")))}

    def admin_client(self, args):
        client_id = args.pop("client_id")
        self.store.set_client(client_id, args)
        return {"ok": True}

    def admin_user(self, args):
        self.store.set_user(args["username"], args["password"], args.get("roles"))
        return {"ok": True}

    def admin_device(self, args):
        """{"approve": USER_CODE, "username": U} | {"deny": USER_CODE} |
        {"expire": USER_CODE} | {"list": true} | DEVICE_DEFAULTS' keys."""
        if "approve" in args:
            return self.store.device_decide(args["approve"], args["username"], True)
        if "deny" in args:
            return self.store.device_decide(args["deny"], args.get("username"), False)
        if "expire" in args:
            return self.store.device_expire(args["expire"])
        if args.get("list"):
            return {"ok": True, "devices": self.store.device_list()}
        return {"ok": True, "options": self.store.device_options(**args)}

    def admin_git_init(self, args):
        name = args["name"].removesuffix(".git")
        if not REPO_NAME.fullmatch(name):
            raise ValueError("bad repository name")
        submodules = args.get("submodules") or {}
        if not all(REPO_NAME.fullmatch(p) and isinstance(s, dict)
                   and re.fullmatch(r"[0-9a-f]{40}", s.get("commit", ""))
                   and re.fullmatch(r"https?://[!-~]+", s.get("url", ""))
                   for p, s in submodules.items()):
            raise ValueError("bad submodules")
        state = self.server.state
        with state.git_lock:
            commit = init_repo(state.git_root, name, submodules)
        return {"ok": True, "url": f"{self.server.base_url}/git/{name}.git", "commit": commit}


ADMIN_ACTIONS = {
    "reset": Handler.admin_reset,
    "stats": Handler.admin_stats,
    "fault": Handler.admin_fault,
    "clear-faults": Handler.admin_clear_faults,
    "revoke": Handler.admin_revoke,
    "expire": Handler.admin_expire,
    "client": Handler.admin_client,
    "user": Handler.admin_user,
    "git-init": Handler.admin_git_init,
    "tokens": Handler.admin_tokens,
    "device": Handler.admin_device,
    "jwt": Handler.admin_jwt,
    "jwt-stats": Handler.admin_jwt_stats,
}


class State:
    """What both listeners share: the store, the git root and the log."""

    def __init__(self, directory):
        self.store = Store()
        self.jwt = jwt_issuer.JwtIssuer(directory)
        self.git_root = os.path.join(directory, "git")
        self.git_lock = threading.Lock()
        os.makedirs(self.git_root, mode=0o700, exist_ok=True)
        self.log_file = open(os.path.join(directory, "server.log"), "a", buffering=1)
        self._log_lock = threading.Lock()

    def log(self, line):
        with self._log_lock:
            self.log_file.write(f"{time.strftime('%H:%M:%S')} {line}\n")


class TLSServer(ThreadingHTTPServer):
    """One HTTPS listener on an ephemeral port of 127.0.0.1."""
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, context, state):
        self.context = context
        self.state = state
        super().__init__((HOST, 0), Handler)
        self.base_url = f"https://{HOST}:{self.server_address[1]}"

    def server_bind(self):
        # HTTPServer.server_bind would resolve a host name; nothing needs it.
        socketserver.TCPServer.server_bind(self)

    def process_request_thread(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, so a slow or
        # broken client never holds up accept().
        request.settimeout(Handler.timeout)
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except OSError as e:
            self.state.log(f"{client_address[0]} TLS handshake failed: {e}")
            request.close()
            return
        super().process_request_thread(request, client_address)

    def handle_error(self, request, client_address):
        self.state.log(f"{client_address[0]} connection error: {sys.exc_info()[1]!r}")


# ---------------------------------------------------------------- start-up

OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_certificates(directory):
    """Generate the test CA and its server certificate, then an unrelated CA
    and its own server certificate; returns their (cert, key) pairs."""
    config = os.path.join(directory, "openssl.cnf")
    with open(config, "w") as f:
        f.write(OPENSSL_CONFIG)

    def req(name, subject, extensions, *signer):
        cert, key = (os.path.join(directory, name + s) for s in (".pem", ".key"))
        subprocess.run(["openssl", "req", "-config", config, "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-days", "7",
                        "-keyout", key, "-out", cert, "-subj", subject,
                        "-extensions", extensions, *signer],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cert, key

    def server_pair(prefix, ca_name):
        ca, ca_key = req(prefix + "ca", f"/CN={ca_name}", "ca")
        return req(prefix + "server", "/CN=127.0.0.1", "server", "-CA", ca, "-CAkey", ca_key)

    return server_pair("", "pam-oauth test CA"), server_pair("wrong-", "unrelated test CA")


def tls_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="directory for certificates, state, logs")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when standard input reaches end of file")
    args = parser.parse_args()
    directory = os.path.abspath(args.dir)
    os.makedirs(directory, mode=0o700, exist_ok=True)

    server_cert, wrong_cert = make_certificates(directory)
    state = State(directory)
    main_server = TLSServer(tls_context(*server_cert), state)
    wrong_server = TLSServer(tls_context(*wrong_cert), state)
    for server in (main_server, wrong_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    info = {"port": main_server.server_address[1],
            "wrong_cert_port": wrong_server.server_address[1],
            "ca_file": os.path.join(directory, "ca.pem"), "pid": os.getpid()}
    with open(os.path.join(directory, "server.json.tmp"), "w") as f:
        json.dump(info, f)
    os.replace(os.path.join(directory, "server.json.tmp"), os.path.join(directory, "server.json"))
    state.log(f"listening on {info['port']}, wrong certificate on {info['wrong_cert_port']}")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.watch_stdin:
        def watch_stdin():
            # os.read, not sys.stdin: a daemon thread blocked inside a
            # buffered reader would abort the interpreter's shutdown.
            while os.read(0, 4096):
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    state.log("stopping")


if __name__ == "__main__":
    main()
