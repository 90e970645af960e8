#!/usr/bin/env bash
# glewlwyd.sh - a throw-away, loopback-only, HTTPS Glewlwyd OAuth2/OIDC server
# for the pam-oauth integration tests (Debian 12 package "glewlwyd" 2.7.x).
#
# Usage:
#   glewlwyd.sh start DIR   install packages if needed (root only), create a test
#                           CA + server certificate, a sqlite database and an RS256
#                           signing key in DIR, run glewlwyd with its own TLS on
#                           https://127.0.0.1:PORT, configure it, self-test it.
#                           Idempotent: re-running it re-applies the configuration
#                           and keeps a healthy running instance.
#   glewlwyd.sh stop DIR    stop the instance started from DIR (and nothing else)
#   glewlwyd.sh env DIR     print shell-sourceable GLEWLWYD_* lines (also in DIR/env)
#
# Exit codes: 0 ok, 1 error, 2 usage, 77 "skip" (packages missing and not root).
#
# Environment knobs: GLEWLWYD_PORT (default: the port recorded in DIR, else a
# free one), GLEWLWYD_START_TIMEOUT (seconds to wait for the daemon, default 30).
#
# What is configured (all through Glewlwyd's admin REST API):
#   scope   "pam"  (password required)
#   users   alice / alice-pass,  bob / "b0b p@ss+w0rd&=%"
#   client  pam-client / pam-client-secret, confidential, grants password,
#           client_credentials, refresh_token, device_authorization; auth
#           client_secret_basic + _post
#   client  pam-device-client, public, grants device_authorization and
#           refresh_token (RFC 8628; a user approves at
#           /api/oidc/device?code=USER_CODE after logging in)
#   plugin  "oidc": RS256 (RSA-2048 key generated here), JWKS published, access
#           tokens valid 3600 s, single-use rotating refresh tokens, the user's
#           "username" copied into the access token as claim "username".
#
# Behaviour of Glewlwyd 2.7.5 worth knowing (observed; the first three are
# checked by self_test below, chain revocation by
# tests/integration/test_glewlwyd_server.py):
#   * a wrong user password on the password grant answers HTTP 403 with an EMPTY
#     body (no RFC 6749 {"error":"invalid_grant"} JSON);
#   * token_type in token responses is lower-case "bearer";
#   * refresh tokens are single-use and rotate: a refresh returns a NEW
#     refresh_token, and a second use of the old one is rejected with HTTP 400
#     and, again, an empty body.  Reuse detection: that second use ALSO revokes
#     the newer refresh token(s) of the same chain (a client that retries with
#     a stale refresh token loses the whole session; other sessions are fine);
#   * use_secure_connection=false in the config file still makes glewlwyd
#     demand valid key/pem files ("secure connection is active but certificate
#     is not valid, exiting"); we always run with TLS, so it is always true;
#   * the oidc plugin only picks up changed parameters after
#     PUT /api/mod/plugin/oidc/reset.
set -euo pipefail

PROG=glewlwyd.sh
HOST=127.0.0.1                     # the only address anything here binds to
SCOPE=pam
CLIENT_ID=pam-client
CLIENT_SECRET=pam-client-secret
DEVICE_CLIENT_ID=pam-device-client   # public, device authorization grant
USER1=alice; PASS1='alice-pass'
USER2=bob;   PASS2='b0b p@ss+w0rd&=%'
ACCESS_TTL=3600
REFRESH_TTL=1209600
PACKAGES="glewlwyd dbconfig-no-thanks sqlite3 jq curl openssl ca-certificates"
START_TIMEOUT=${GLEWLWYD_START_TIMEOUT:-30}

log()  { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }
usage() { echo "usage: $0 {install|start|stop|env} DIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
ACTION=$1
[ -n "$2" ] || usage
mkdir -p -- "$2"
DIR=$(cd -- "$2" && pwd -P)

CONF=$DIR/glewlwyd.conf
DB=$DIR/glewlwyd.db
PIDFILE=$DIR/glewlwyd.pid
PORTFILE=$DIR/port
LOGFILE=$DIR/glewlwyd.log
OUTFILE=$DIR/glewlwyd.out
ENVFILE=$DIR/env
CA_KEY=$DIR/ca.key;   CA_CERT=$DIR/ca.pem
TLS_KEY=$DIR/server.key; TLS_CERT=$DIR/server.pem
JWT_KEY=$DIR/jwt-rsa.key; JWT_PUB=$DIR/jwt-rsa.pub.pem
ADMIN_PASS_FILE=$DIR/admin-password
JAR=$DIR/admin.cookies
SCRATCH=$DIR/tmp

# ------------------------------------------------------------------ helpers
# is $1 a live (not zombie) process named glewlwyd?
is_glewlwyd() {
  local stat
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = glewlwyd ] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }                                # field 3 = state
  [ "${stat%% *}" != Z ]
}

# pid of the glewlwyd started from DIR, if it is alive (pid file + /proc check)
instance_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 1
  read -r pid < "$PIDFILE" || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  is_glewlwyd "$pid" || return 1
  echo "$pid"
}

stop_instance() {
  local pid
  if pid=$(instance_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do                       # <= 5 s, then SIGKILL
      is_glewlwyd "$pid" || break
      sleep 0.1
    done
    if is_glewlwyd "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    log "stopped glewlwyd pid $pid ($DIR)"
  fi
  rm -f "$PIDFILE"
}

# something accepts TCP connections on 127.0.0.1:$1 ?
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

pick_free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))            # below Linux' ephemeral range
    port_busy "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# shell single-quoting
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

env_lines() {
  local port=$1 base="https://$HOST:$1"
  local k v
  while IFS='=' read -r k v; do
    printf '%s=%s\n' "$k" "$(shq "$v")"
  done <<EOF
GLEWLWYD_TOKEN_URL=$base/api/oidc/token
GLEWLWYD_CA_FILE=$CA_CERT
GLEWLWYD_ISSUER=$base/api/oidc
GLEWLWYD_JWKS_URL=$base/api/oidc/jwks
GLEWLWYD_DISCOVERY_URL=$base/api/oidc/.well-known/openid-configuration
GLEWLWYD_CLIENT_ID=$CLIENT_ID
GLEWLWYD_CLIENT_SECRET=$CLIENT_SECRET
GLEWLWYD_SCOPE=$SCOPE
GLEWLWYD_USER1=$USER1
GLEWLWYD_PASS1=$PASS1
GLEWLWYD_USER2=$USER2
GLEWLWYD_PASS2=$PASS2
GLEWLWYD_PORT=$port
GLEWLWYD_BASE_URL=$base
GLEWLWYD_DEVICE_URL=$base/api/oidc/device_authorization
GLEWLWYD_DEVICE_CLIENT_ID=$DEVICE_CLIENT_ID
EOF
}

# ------------------------------------------------------------------ stop / env
case $ACTION in
  stop) stop_instance; exit 0 ;;
  env)
    [ -s "$PORTFILE" ] || die "no instance state in $DIR (run: $0 start $DIR)"
    env_lines "$(cat "$PORTFILE")"
    exit 0 ;;
  start|install) ;;
  *) usage ;;
esac

# ------------------------------------------------------------------ 1. packages
schema_file() {
  local f
  for f in /usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz \
           /usr/share/dbconfig-common/data/glewlwyd/install/sqlite3; do
    [ -r "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

packages_ok() {
  local c
  for c in glewlwyd sqlite3 jq curl openssl timeout; do
    command -v "$c" >/dev/null 2>&1 || return 1
  done
  [ -d /usr/lib/glewlwyd/plugin ] && schema_file >/dev/null
}

# run apt-get while invoke-rc.d is told "no" (exit 101) so that the package's
# own service (port 4593 on ALL interfaces) is never started by its postinst.
apt_install_no_services() {
  local policy=/usr/sbin/policy-rc.d backup=/usr/sbin/policy-rc.d.glewlwyd-sh.bak rc=0
  if [ -e "$policy" ]; then mv -f "$policy" "$backup"; fi
  # shellcheck disable=SC2064
  trap "rm -f '$policy'; [ -e '$backup' ] && mv -f '$backup' '$policy'; true" EXIT
  printf '#!/bin/sh\n# temporary, from %s: start no service\nexit 101\n' "$PROG" > "$policy"
  chmod 755 "$policy"
  export DEBIAN_FRONTEND=noninteractive
  # "No configuration": no dbconfig-managed database; with dbconfig-no-thanks
  # the default answer would make the postinst fail.  dbconfig-no-thanks
  # satisfies the dbconfig dependency without mariadb-client & co.
  echo "glewlwyd glewlwyd/config_type select No configuration" | debconf-set-selections
  # shellcheck disable=SC2086
  timeout 900 apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends $PACKAGES \
      >"$DIR/apt.log" 2>&1 ||
    { timeout 300 apt-get -o DPkg::Lock::Timeout=120 update >>"$DIR/apt.log" 2>&1 &&
      timeout 900 apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends $PACKAGES \
        >>"$DIR/apt.log" 2>&1; } || rc=$?
  rm -f "$policy"
  [ -e "$backup" ] && mv -f "$backup" "$policy"
  trap - EXIT
  [ "$rc" = 0 ] || { tail -n 20 "$DIR/apt.log" >&2; die "apt-get install failed (see $DIR/apt.log)"; }
  # Keep the packaged unit / init script from starting at a later boot.
  systemctl disable glewlwyd.service >/dev/null 2>&1 || true
  update-rc.d glewlwyd disable >/dev/null 2>&1 || true
}

if ! packages_ok; then
  if [ "$(id -u)" != 0 ]; then
    log "needed packages are missing and this is not root; install them with:"
    echo "echo 'glewlwyd glewlwyd/config_type select No configuration' | sudo debconf-set-selections" >&2
    echo "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES" >&2
    exit 77
  fi
  log "installing: $PACKAGES"
  apt_install_no_services
  packages_ok || die "packages installed but glewlwyd/sqlite3/jq/curl/openssl still missing"
fi
# "install" (used by .ci/run) stops here: packages only, no instance.
[ "$ACTION" = install ] && exit 0

# The packaged glewlwyd.service must not be running (it would listen on all
# interfaces).  Only relevant when systemd is actually PID 1.
if [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ] &&
   systemctl is-active --quiet glewlwyd.service 2>/dev/null; then
  log "stopping and disabling the packaged glewlwyd.service"
  systemctl disable --now glewlwyd.service >/dev/null 2>&1 || true
fi

umask 077
mkdir -p "$SCRATCH"

# ------------------------------------------------------------------ 2. TLS material
# A private test CA (EC P-256) and a server certificate for IP 127.0.0.1.
# Regenerated when missing, not matching the CA, or expiring within a day.
certs_ok() {
  [ -s "$CA_KEY" ] && [ -s "$CA_CERT" ] && [ -s "$TLS_KEY" ] && [ -s "$TLS_CERT" ] || return 1
  openssl verify -CAfile "$CA_CERT" "$TLS_CERT" >/dev/null 2>&1 || return 1
  openssl x509 -in "$TLS_CERT" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  openssl x509 -in "$TLS_CERT" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$HOST"
}

CERTS_CHANGED=0
if ! certs_ok; then
  log "creating test CA and server certificate for $HOST"
  rm -f "$CA_KEY" "$CA_CERT" "$TLS_KEY" "$TLS_CERT"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$CA_KEY" -out "$CA_CERT" -days 3650 -sha256 \
    -subj "/O=pam-oauth tests/CN=pam-oauth test CA $(date +%s)" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$SCRATCH/openssl.err" ||
    die "CA generation failed: $(cat "$SCRATCH/openssl.err")"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TLS_KEY" -out "$SCRATCH/server.csr" -subj "/O=pam-oauth tests/CN=$HOST" \
    2>"$SCRATCH/openssl.err" || die "server key generation failed: $(cat "$SCRATCH/openssl.err")"
  cat > "$SCRATCH/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:$HOST
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
  openssl x509 -req -in "$SCRATCH/server.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
    -set_serial "0x$(openssl rand -hex 15)" -days 825 -sha256 \
    -extfile "$SCRATCH/server.ext" -out "$TLS_CERT" 2>"$SCRATCH/openssl.err" ||
    die "server certificate signing failed: $(cat "$SCRATCH/openssl.err")"
  chmod 644 "$CA_CERT" "$TLS_CERT"
  certs_ok || die "generated certificates do not verify"
  CERTS_CHANGED=1
fi

# ------------------------------------------------------------------ 3. JWT signing key
if [ ! -s "$JWT_KEY" ] || [ ! -s "$JWT_PUB" ]; then
  log "creating RSA-2048 token signing key"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$JWT_KEY" 2>/dev/null
  openssl pkey -in "$JWT_KEY" -pubout -out "$JWT_PUB" 2>/dev/null
fi

# ------------------------------------------------------------------ 4. database
if [ ! -s "$DB" ]; then
  log "creating sqlite database"
  schema=$(schema_file)
  case $schema in
    *.gz) zcat "$schema" ;;
    *)    cat "$schema" ;;
  esac | sqlite3 "$DB" || { rm -f "$DB"; die "loading schema $schema failed"; }
fi
[ -s "$ADMIN_PASS_FILE" ] || openssl rand -hex 16 > "$ADMIN_PASS_FILE"
ADMIN_PASS=$(cat "$ADMIN_PASS_FILE")

# ------------------------------------------------------------------ 5. config + daemon
write_config() {   # $1 = port
  local middleware=""    # only if present: a missing folder is logged as ERROR
  [ -d /usr/lib/glewlwyd/user_middleware ] &&
    middleware='user_middleware_module_path="/usr/lib/glewlwyd/user_middleware"'
  cat > "$CONF.new" <<EOF
# generated by $PROG - test instance, loopback only, HTTPS
port=$1
bind_address="$HOST"
external_url="https://$HOST:$1"
api_prefix="api"
login_url="login.html"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file="$LOGFILE"
cookie_secure=1
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
plugin_api_run_enabled=""
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
$middleware
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
use_secure_connection=true
secure_connection_key_file="$TLS_KEY"
secure_connection_pem_file="$TLS_CERT"
database =
{
  type = "sqlite3"
  path = "$DB"
};
EOF
}

https_code() {   # $1 = url ; prints the HTTP status (000 on failure)
  curl -s -o /dev/null -w '%{http_code}' --cacert "$CA_CERT" --max-time 3 "$1" 2>/dev/null || true
}

# start glewlwyd on $1 and wait (bounded) until /config answers over HTTPS.
# returns 1 if the daemon died (e.g. port taken), dies on timeout.
launch() {
  local port=$1 pid deadline
  write_config "$port"; mv -f "$CONF.new" "$CONF"
  echo "$port" > "$PORTFILE"
  log "starting glewlwyd on https://$HOST:$port"
  setsid glewlwyd --config-file="$CONF" </dev/null >>"$OUTFILE" 2>&1 &
  pid=$!
  echo "$pid" > "$PIDFILE"
  deadline=$((SECONDS + START_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(https_code "https://$HOST:$port/config")" = 200 ] && return 0
    if ! instance_pid >/dev/null; then
      rm -f "$PIDFILE"
      log "glewlwyd exited during startup; last log lines:"
      tail -n 5 "$LOGFILE" "$OUTFILE" 2>/dev/null >&2 || true
      return 1
    fi
    sleep 0.1
  done
  stop_instance
  die "glewlwyd did not answer on https://$HOST:$port/config within ${START_TIMEOUT}s (see $LOGFILE)"
}

RECORDED_PORT=$(cat "$PORTFILE" 2>/dev/null || true)
WANT_PORT=${GLEWLWYD_PORT:-$RECORDED_PORT}

if pid=$(instance_pid); then
  write_config "$RECORDED_PORT"
  if [ -n "$WANT_PORT" ] && [ "$WANT_PORT" != "$RECORDED_PORT" ]; then
    log "running instance uses port $RECORDED_PORT, $WANT_PORT wanted: restarting"; stop_instance
  elif [ "$CERTS_CHANGED" = 1 ] || ! cmp -s "$CONF.new" "$CONF"; then
    log "certificates/config changed: restarting"; stop_instance
  elif [ "$(https_code "https://$HOST:$RECORDED_PORT/config")" != 200 ]; then
    log "running instance (pid $pid) does not answer: restarting"; stop_instance
  else
    log "glewlwyd already running (pid $pid, port $RECORDED_PORT)"
  fi
  rm -f "$CONF.new"
fi

if ! instance_pid >/dev/null; then
  if [ -n "$WANT_PORT" ]; then
    port_busy "$WANT_PORT" && die "127.0.0.1:$WANT_PORT is already in use (set GLEWLWYD_PORT)"
    launch "$WANT_PORT" || die "glewlwyd failed to start on port $WANT_PORT"
  else
    ok=0
    for _ in 1 2 3 4 5; do
      port=$(pick_free_port) || die "no free port found"
      if launch "$port"; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || die "glewlwyd failed to start (5 attempts)"
  fi
fi
PORT=$(cat "$PORTFILE")
BASE="https://$HOST:$PORT"
API="$BASE/api"

# ------------------------------------------------------------------ 6. configure via admin API
# curl wrapper: always TLS-verified against our CA, always time-bounded.
c() { curl -sS --cacert "$CA_CERT" --max-time 10 "$@"; }

admin_login() {   # $1 = password ; 0 when the admin session cookie was obtained
  local code
  rm -f "$JAR"
  code=$(c -o /dev/null -w '%{http_code}' -c "$JAR" -H 'Content-Type: application/json' \
         -d "$(jq -nc --arg p "$1" '{username:"admin", password:$p}')" "$API/auth/") || true
  [ "$code" = 200 ]
}

# upsert COLLECTION_URL ID JSON : PUT when ID exists, POST otherwise
upsert() {
  local url=$1 id=$2 body=$3 code
  code=$(c -o /dev/null -w '%{http_code}' -b "$JAR" "$url/$id") || true
  if [ "$code" = 200 ]; then
    code=$(c -o "$SCRATCH/api.out" -w '%{http_code}' -b "$JAR" -X PUT \
           -H 'Content-Type: application/json' -d "$body" "$url/$id") || true
  else
    code=$(c -o "$SCRATCH/api.out" -w '%{http_code}' -b "$JAR" -X POST \
           -H 'Content-Type: application/json' -d "$body" "$url/") || true
  fi
  [ "$code" = 200 ] || die "admin API upsert $url/$id: HTTP $code $(cat "$SCRATCH/api.out" 2>/dev/null)"
}

# The schema ships admin/"password".  Replace it by a random per-DIR password
# the first time (anyone on the host can reach 127.0.0.1).
if ! admin_login "$ADMIN_PASS"; then
  admin_login password || die "admin login failed (neither stored nor default password)"
  upsert "$API/user" admin "$(jq -nc --arg p "$ADMIN_PASS" \
    '{username:"admin", name:"The Administrator", email:"", enabled:true,
      scope:["g_admin","g_profile"], password:$p}')"
  admin_login "$ADMIN_PASS" || die "admin login with the new password failed"
fi

upsert "$API/scope" "$SCOPE" "$(jq -nc --arg s "$SCOPE" \
  '{name:$s, display_name:"pam-oauth tests", description:"scope used by the pam-oauth integration tests",
    password_required:true, password_max_age:0, scheme:{}}')"

for n in 1 2; do
  eval "u=\$USER$n p=\$PASS$n"
  # shellcheck disable=SC2154
  upsert "$API/user" "$u" "$(jq -nc --arg u "$u" --arg p "$p" --arg s "$SCOPE" \
    '{username:$u, name:("test user " + $u), email:($u + "@example.invalid"),
      password:$p, enabled:true, scope:[$s, "openid"]}')"
done

upsert "$API/client" "$CLIENT_ID" "$(jq -nc --arg id "$CLIENT_ID" --arg sec "$CLIENT_SECRET" --arg s "$SCOPE" \
  '{client_id:$id, name:"pam-oauth test client", description:"", enabled:true,
    confidential:true, client_secret:$sec, redirect_uri:[], scope:[$s],
    authorization_type:["password", "client_credentials", "refresh_token", "device_authorization"],
    token_endpoint_auth_method:["client_secret_basic", "client_secret_post"]}')"

# A public client for the device authorization grant (RFC 8628).
upsert "$API/client" "$DEVICE_CLIENT_ID" "$(jq -nc --arg id "$DEVICE_CLIENT_ID" --arg s "$SCOPE" \
  '{client_id:$id, name:"pam-oauth device login", description:"", enabled:true,
    confidential:false, redirect_uri:[], scope:[$s, "openid"],
    authorization_type:["device_authorization", "refresh_token"]}')"

upsert "$API/mod/plugin" oidc "$(jq -nc \
  --rawfile key "$JWT_KEY" --rawfile pub "$JWT_PUB" --arg iss "$API/oidc" \
  --argjson at "$ACCESS_TTL" --argjson rt "$REFRESH_TTL" '
  {module:"oidc", name:"oidc", display_name:"OpenID Connect (pam-oauth tests)", enabled:true,
   parameters:{
     iss:$iss,
     "jwt-type":"rsa", "jwt-key-size":"256", key:$key, cert:$pub,   # RS256
     "jwks-show":true,
     "access-token-duration":$at, "refresh-token-duration":$rt, "code-duration":600,
     "refresh-token-rolling":true, "refresh-token-one-use":"always",
     "allow-non-oidc":true,
     "auth-type-code-enabled":true, "auth-type-token-enabled":false,
     "auth-type-none-enabled":false, "auth-type-password-enabled":true,
     "auth-type-client-enabled":true, "auth-type-device-enabled":true,
     "auth-type-refresh-enabled":true,
     "subject-type":"public", "scope":[], "claims":[],
     "additional-parameters":[{"user-parameter":"username", "token-parameter":"username"}],
     "name-claim":"on-demand", "email-claim":"on-demand", "scope-claim":"no",
     "address-claim":{type:"no"}, "pkce-allowed":false,
     "introspection-revocation-allowed":true,
     "introspection-revocation-allow-target-client":true,
     "introspection-revocation-auth-scope":[]
   }}')"
code=$(c -o /dev/null -w '%{http_code}' -b "$JAR" -X PUT "$API/mod/plugin/oidc/reset") || true
[ "$code" = 200 ] || die "oidc plugin reset: HTTP $code"
c -o /dev/null -b "$JAR" -X DELETE "$API/auth/" || true
rm -f "$JAR"

# ------------------------------------------------------------------ 7. self test
TOKEN_URL="$API/oidc/token"

b64url_json() {   # decode one base64url JWT segment to JSON
  local s
  s=$(printf '%s' "$1" | tr '_-' '/+')
  case $(( ${#s} % 4 )) in 2) s="$s==" ;; 3) s="$s=" ;; esac
  printf '%s' "$s" | base64 -d 2>/dev/null
}

self_test() {
  local code body at rt rt2 hdr claims
  # the discovery document becomes available once the plugin has (re)loaded
  for _ in $(seq 1 50); do
    [ "$(https_code "$API/oidc/.well-known/openid-configuration")" = 200 ] && break
    sleep 0.1
  done
  c -o "$SCRATCH/disc.json" "$API/oidc/.well-known/openid-configuration" ||
    die "self-test: discovery not reachable"
  jq -e --arg iss "$API/oidc" --arg tok "$TOKEN_URL" \
     '.issuer == $iss and .token_endpoint == $tok and (.jwks_uri | startswith("https://"))' \
     "$SCRATCH/disc.json" >/dev/null || die "self-test: unexpected discovery: $(cat "$SCRATCH/disc.json")"
  c "$API/oidc/jwks" | jq -e '[.keys[] | select(.kty == "RSA")] | length >= 1' >/dev/null ||
    die "self-test: JWKS has no RSA key"

  # password grant, client_secret_basic
  body=$(c -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=password \
         --data-urlencode "username=$USER1" --data-urlencode "password=$PASS1" \
         --data-urlencode "scope=$SCOPE" "$TOKEN_URL") || die "self-test: token request failed"
  at=$(jq -r '.access_token // empty' <<<"$body"); rt=$(jq -r '.refresh_token // empty' <<<"$body")
  if [ -z "$at" ] || [ -z "$rt" ]; then die "self-test: password grant gave no access/refresh token: $body"; fi
  # quirk: lower-case token_type
  [ "$(jq -r .token_type <<<"$body")" = bearer ] || die "self-test: token_type is not \"bearer\": $body"
  [ "$(jq -r .expires_in <<<"$body")" = "$ACCESS_TTL" ] || die "self-test: expires_in != $ACCESS_TTL: $body"
  hdr=$(b64url_json "${at%%.*}"); claims=$(b64url_json "$(cut -d. -f2 <<<"$at")")
  [ "$(jq -r .alg <<<"$hdr")" = RS256 ] || die "self-test: access token not RS256: $hdr"
  [ "$(jq -r .username <<<"$claims")" = "$USER1" ] || die "self-test: no username claim: $claims"

  # password grant, client_secret_post, password full of URL-special characters
  body=$(c -d grant_type=password --data-urlencode "client_id=$CLIENT_ID" \
         --data-urlencode "client_secret=$CLIENT_SECRET" --data-urlencode "username=$USER2" \
         --data-urlencode "password=$PASS2" --data-urlencode "scope=$SCOPE" "$TOKEN_URL") || true
  jq -e '.access_token and .refresh_token' >/dev/null 2>&1 <<<"$body" ||
    die "self-test: client_secret_post grant for $USER2 failed: $body"

  # quirk: wrong password -> 403 and an empty body
  code=$(c -o "$SCRATCH/bad.out" -w '%{http_code}' -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=password \
         --data-urlencode "username=$USER1" --data-urlencode "password=wrong-$PASS1" \
         --data-urlencode "scope=$SCOPE" "$TOKEN_URL") || true
  [ "$code" = 403 ] || die "self-test: bad password gave HTTP $code, expected 403"
  [ ! -s "$SCRATCH/bad.out" ] || die "self-test: bad password body not empty: $(cat "$SCRATCH/bad.out")"

  # quirk: single-use, rotating refresh tokens
  body=$(c -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=refresh_token \
         --data-urlencode "refresh_token=$rt" "$TOKEN_URL") || true
  rt2=$(jq -r '.refresh_token // empty' <<<"$body" 2>/dev/null || true)
  if ! jq -e '.access_token' >/dev/null 2>&1 <<<"$body" || [ -z "$rt2" ] || [ "$rt2" = "$rt" ]; then
    die "self-test: refresh did not return a new access+refresh token: $body"
  fi
  code=$(c -o "$SCRATCH/reuse.out" -w '%{http_code}' -u "$CLIENT_ID:$CLIENT_SECRET" \
         -d grant_type=refresh_token --data-urlencode "refresh_token=$rt" "$TOKEN_URL") || true
  [ "$code" != 200 ] || die "self-test: a used refresh token was accepted again"
  if [ "$code" != 400 ] || [ -s "$SCRATCH/reuse.out" ]; then
    log "note: reused refresh token gave HTTP $code (body: $(head -c 200 "$SCRATCH/reuse.out")), 400 + empty body expected"
  fi

  # plain HTTP must not be served on the TLS port
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$HOST:$PORT/config" 2>/dev/null || true)" != 200 ] ||
    die "self-test: plain HTTP answered on port $PORT"
}
self_test

# ------------------------------------------------------------------ 8. env
env_lines "$PORT" > "$ENVFILE.new"; chmod 644 "$ENVFILE.new"; mv -f "$ENVFILE.new" "$ENVFILE"
log "ready: pid $(instance_pid) $BASE (env in $ENVFILE)"
