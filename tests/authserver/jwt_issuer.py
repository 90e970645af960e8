"""JWT issuing for the test authorization server (standard library + openssl CLI).

    issuer = JwtIssuer(directory)
    issuer.issuer_url(base)          # BASE/jwt
    issuer.discovery(base)           # the OpenID Connect discovery document
    issuer.jwks()                    # {"keys": [...]}: every published key
    issuer.issue(base, client_id, username, scope, roles, expires_in)
                                     # {"access_token": JWT, "id_token": JWT}
    issuer.configure(alg=..., rotate=True, forge=..., ...)

Keys are generated with `openssl genpkey` (RSA 2048, EC P-256 and P-384,
Ed25519), lazily, one kind at a time, and signatures made with `openssl dgst`
(RSA, PSS, ECDSA; the DER ECDSA signature is converted to the JWS r||s form
here) or `openssl pkeyutl -rawin` (Ed25519).  The public JWKs are read from the
DER SubjectPublicKeyInfo that `openssl pkey -pubout -outform DER` prints.

Rotation adds a key with a new kid for the current algorithm's key kind; the
old key stays published (as a real provider does during a roll-over) and new
tokens use the new one.

Forgeries (FORGERIES) make the next token(s) wrong in one way each, for the
attack tests: alg none, the HS256/RSA-public-key confusion, a key that is not
published (with a published kid or an unknown one), wrong iss or aud, expired,
not yet valid, malformed base64url, over 16 KiB, another user, a truncated
signature, a DER ECDSA signature, no exp.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time

ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
KIND_OF = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa",
           "ES256": "p256", "ES384": "p384", "EdDSA": "ed25519"}
DIGEST_OF = {"RS256": "sha256", "RS384": "sha384", "RS512": "sha512", "PS256": "sha256",
             "ES256": "sha256", "ES384": "sha384"}
GENPKEY = {
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-pkeyopt", "ec_param_enc:named_curve"],
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
             "-pkeyopt", "ec_param_enc:named_curve"],
    "ed25519": ["-algorithm", "ED25519"],
}
FORGERIES = ("alg_none", "hs256_confusion", "wrong_key", "unknown_kid", "wrong_iss",
             "wrong_aud", "expired", "nbf_future", "malformed", "huge", "user_mismatch",
             "truncated_sig", "der_sig", "no_exp", "inactive")
MISMATCH_USER = "mallory"
DEFAULT_MAX_AGE = 300


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout


# ------------------------------------------------------------ minimal DER

def der_read(data, pos=0):
    """(tag, value, next position) of the TLV at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + length], pos + length


def der_children(value):
    pos, out = 0, []
    while pos < len(value):
        tag, child, pos = der_read(value, pos)
        out.append((tag, child))
    return out


def spki_key_bits(der):
    """The subjectPublicKey bytes of a DER SubjectPublicKeyInfo."""
    _, seq, _ = der_read(der)
    (_, _alg), (tag, bits) = der_children(seq)
    assert tag == 0x03 and bits[0] == 0
    return bits[1:]


def ecdsa_der_to_raw(der, size):
    _, seq, _ = der_read(der)
    (_, r), (_, s) = der_children(seq)
    return (int.from_bytes(r, "big").to_bytes(size, "big")
            + int.from_bytes(s, "big").to_bytes(size, "big"))


def unsigned(b):
    return b.lstrip(b"\x00") or b"\x00"


# ------------------------------------------------------------ keys

class Key:
    """A private key in a PEM file, its public PEM and its public JWK."""

    def __init__(self, directory, kind, kid):
        self.kind = kind
        self.kid = kid
        self.path = os.path.join(directory, f"jwt-{kid}.pem")
        openssl("genpkey", *GENPKEY[kind], "-out", self.path)
        os.chmod(self.path, 0o600)
        self.public_pem = openssl("pkey", "-in", self.path, "-pubout")
        bits = spki_key_bits(openssl("pkey", "-in", self.path, "-pubout", "-outform", "DER"))
        if kind == "rsa":
            _, seq, _ = der_read(bits)
            (_, n), (_, e) = der_children(seq)
            self.jwk = {"kty": "RSA", "n": b64u(unsigned(n)), "e": b64u(unsigned(e))}
        elif kind in ("p256", "p384"):
            size = 32 if kind == "p256" else 48
            assert bits[0] == 4 and len(bits) == 1 + 2 * size
            self.jwk = {"kty": "EC", "crv": "P-256" if kind == "p256" else "P-384",
                        "x": b64u(bits[1:1 + size]), "y": b64u(bits[1 + size:])}
        else:
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(bits)}
        self.jwk.update({"kid": kid, "use": "sig"})

    def sign(self, alg, data, der=False):
        """The JWS signature of data with this key for alg."""
        if alg == "EdDSA":
            with tempfile.NamedTemporaryFile(dir=os.path.dirname(self.path)) as f:
                f.write(data)
                f.flush()
                return openssl("pkeyutl", "-sign", "-inkey", self.path, "-rawin", "-in", f.name)
        args = ["dgst", "-" + DIGEST_OF[alg], "-sign", self.path]
        if alg == "PS256":
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
        sig = openssl(*args, data=data)
        if alg in ("ES256", "ES384") and not der:
            sig = ecdsa_der_to_raw(sig, 32 if alg == "ES256" else 48)
        return sig


def sign_token(header, claims, key, alg, der=False):
    signing_input = (b64u_json(header) + "." + b64u_json(claims)).encode()
    return signing_input.decode() + "." + b64u(key.sign(alg, signing_input, der=der))


# ------------------------------------------------------------ the issuer

class JwtIssuer:
    """Keys, published key set, token issuing and the forgery switch."""

    def __init__(self, directory):
        self.dir = directory
        self.lock = threading.RLock()
        self.published = []          # every key in the JWKS, oldest first
        self.current = {}            # kind -> the key new tokens use
        self.serial = 0
        self.reset()

    def reset(self):
        """Default algorithm, no forgery, counters at zero (keys are kept)."""
        with self.lock:
            self.alg = "RS256"
            self.forge = []              # [kind, remaining uses]
            self.max_age = DEFAULT_MAX_AGE
            self.audience = None         # None: the client_id
            self.device = True           # discovery names the device endpoint
            self.scope_claim = None      # None: the granted scope
            self.stats = {"jwks_fetches": 0, "discovery_fetches": 0, "tokens": 0,
                          "introspections": 0}

    # keys

    def _new_key(self, kind):
        self.serial += 1
        kid = f"{kind}-{self.serial}-{secrets.token_hex(4)}"
        return Key(self.dir, kind, kid)

    def key_for(self, alg):
        """The current key for alg.  The first call makes and publishes one
        key of every kind, as a provider publishes all its signing keys."""
        with self.lock:
            if not self.current:
                for kind in GENPKEY:
                    key = self._new_key(kind)
                    self.current[kind] = key
                    self.published.append(key)
            return self.current[KIND_OF[alg]]

    def rotate(self, alg=None):
        """A new key (new kid) for alg's kind; the old one stays published."""
        kind = KIND_OF[alg or self.alg]
        with self.lock:
            key = self._new_key(kind)
            self.current[kind] = key
            self.published.append(key)
            return key.kid

    def unpublished_key(self, alg, kid=None):
        """A key of alg's kind that is not in the key set."""
        key = self._new_key(KIND_OF[alg])
        if kid is not None:
            key.kid = kid
        return key

    # documents

    @staticmethod
    def issuer_url(base):
        return base + "/jwt"

    def discovery(self, base):
        with self.lock:
            self.stats["discovery_fetches"] += 1
        iss = self.issuer_url(base)
        doc = {"issuer": iss, "jwks_uri": iss + "/jwks", "token_endpoint": iss + "/token",
               "introspection_endpoint": iss + "/introspect",
               "grant_types_supported": ["password", "client_credentials", "refresh_token"],
               "id_token_signing_alg_values_supported": list(ALGS),
               "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                         "client_secret_post"]}
        if self.device:
            # RFC 8628 section 4
            doc["device_authorization_endpoint"] = iss + "/device"
            doc["grant_types_supported"].append(
                "urn:ietf:params:oauth:grant-type:device_code")
        return doc

    def jwks(self):
        """The key set and its Cache-Control header value; counts the fetch."""
        self.key_for(self.alg)
        with self.lock:
            self.stats["jwks_fetches"] += 1
            keys = [dict(k.jwk) for k in self.published]
            return {"keys": keys}, f"max-age={self.max_age}"

    # configuration

    def configure(self, alg=None, rotate=False, forge=None, count=1, max_age=None,
                  audience=None, scope_claim=None, reset=False, device=None):
        with self.lock:
            if reset:
                self.reset()
            if device is not None:
                self.device = bool(device)
            if alg is not None:
                if alg not in ALGS:
                    raise ValueError(f"alg must be one of {', '.join(ALGS)}")
                self.alg = alg
            if max_age is not None:
                self.max_age = int(max_age)
            if audience is not None:
                self.audience = audience or None
            if scope_claim is not None:
                # the access token's scope claim instead of the granted
                # scope ("" again: the granted scope)
                self.scope_claim = scope_claim or None
            kid = None
            if rotate:
                kid = self.rotate()
            if forge is not None:
                if forge not in FORGERIES:
                    raise ValueError(f"forge must be one of {', '.join(FORGERIES)}")
                self.forge = [forge, int(count)]
            return {"ok": True, "alg": self.alg, "kid": kid or self.key_for(self.alg).kid}

    def take_forgery(self):
        with self.lock:
            if not self.forge:
                return None
            kind = self.forge[0]
            self.forge[1] -= 1
            if self.forge[1] <= 0:
                self.forge = []
            return kind

    def snapshot(self):
        with self.lock:
            return {**self.stats, "alg": self.alg,
                    "kids": [k.kid for k in self.published],
                    "current_kid": self.current[KIND_OF[self.alg]].kid
                    if KIND_OF[self.alg] in self.current else None}

    # tokens

    def claims(self, base, client_id, username, scope, roles, expires_in, token_use):
        now = int(time.time())
        claims = {"iss": self.issuer_url(base),
                  "aud": self.audience or client_id,
                  "sub": "sub-" + hashlib.sha256((username or client_id).encode()).hexdigest()[:16],
                  "exp": now + int(expires_in), "iat": now, "nbf": now,
                  "jti": secrets.token_hex(8), "client_id": client_id}
        if username is not None:
            claims.update({"preferred_username": username, "username": username,
                           "email": f"{username}@jwt.test"})
        if token_use == "access":
            claims["scope"] = self.scope_claim if self.scope_claim is not None else scope or ""
            claims["realm_access"] = {"roles": list(roles or [])}
            claims["groups"] = [f"group-{r}" for r in roles or []]
        return claims

    def make(self, claims, forge=None, typ="JWT"):
        """One signed token with the current algorithm, forged as asked."""
        alg = self.alg
        key = self.key_for(alg)
        header = {"alg": alg, "typ": typ, "kid": key.kid}
        claims = dict(claims)
        now = int(time.time())
        der = False
        if forge == "wrong_iss":
            claims["iss"] = "https://evil.test/jwt"
        elif forge == "wrong_aud":
            claims["aud"] = "someone-else"
        elif forge == "expired":
            claims.update(exp=now - 3600, iat=now - 7200, nbf=now - 7200)
        elif forge == "nbf_future":
            claims["nbf"] = now + 3600
        elif forge == "user_mismatch":
            for name in ("preferred_username", "username"):
                claims[name] = MISMATCH_USER
            claims["email"] = MISMATCH_USER + "@jwt.test"
        elif forge == "huge":
            claims["padding"] = "x" * (17 * 1024)
        elif forge == "no_exp":
            claims.pop("exp", None)
        elif forge == "der_sig":
            der = True
        if forge == "alg_none":
            header = {"alg": "none", "typ": typ}
            return b64u_json(header) + "." + b64u_json(claims) + "."
        if forge == "hs256_confusion":
            rsa = self.key_for("RS256")
            header = {"alg": "HS256", "typ": typ, "kid": rsa.kid}
            signing_input = (b64u_json(header) + "." + b64u_json(claims)).encode()
            mac = hmac.new(rsa.public_pem, signing_input, hashlib.sha256).digest()
            return signing_input.decode() + "." + b64u(mac)
        if forge == "wrong_key":
            key = self.unpublished_key(alg, kid=key.kid)
        elif forge == "unknown_kid":
            key = self.unpublished_key(alg)
            header["kid"] = key.kid
        token = sign_token(header, claims, key, alg, der=der)
        if forge == "malformed":
            h, p, s = token.split(".")
            token = h + "." + p[:10] + "*" + p[11:] + "." + s
        elif forge == "truncated_sig":
            h, p, s = token.split(".")
            token = h + "." + p + "." + b64u(b64u_decode(s)[:-8])
        return token

    def issue(self, base, client_id, username, scope, roles, expires_in):
        """The access token and id token of one token response."""
        forge = self.take_forgery()
        with self.lock:
            self.stats["tokens"] += 1
        access = self.make(self.claims(base, client_id, username, scope, roles, expires_in,
                                       "access"), forge, typ="at+jwt")
        ident = self.make(self.claims(base, client_id, username, scope, roles, expires_in,
                                      "id"), forge)
        return {"access_token": access, "id_token": ident, "forged": forge}

    def introspect(self, base, record, roles):
        """RFC 7662 response for a store record (None: inactive)."""
        forge = self.take_forgery()
        with self.lock:
            self.stats["introspections"] += 1
        if record is None or forge == "inactive":
            return {"active": False}
        claims = self.claims(base, record.client_id, record.username, record.scope,
                             roles, max(1, int(record.expires_at - time.time())), "access")
        claims["exp"] = int(record.expires_at)
        claims.update(active=True, token_type="Bearer")
        if forge == "wrong_iss":
            claims["iss"] = "https://evil.test/jwt"
        elif forge == "wrong_aud":
            claims["aud"] = "someone-else"
        elif forge == "expired":
            claims["exp"] = int(time.time()) - 3600
        elif forge == "user_mismatch":
            for name in ("preferred_username", "username"):
                claims[name] = MISMATCH_USER
        return claims
