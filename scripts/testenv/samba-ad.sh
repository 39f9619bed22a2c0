#!/usr/bin/env bash
# samba-ad.sh - throwaway Samba 4.17 Active Directory domain controller for
# the cfyauth tests, loopback only. The Go tests run it through
# internal/ldapprobe/ldaptest (package internal/ldapprobe/adtest).
#
#   samba-ad.sh install   apt-get install samba-ad-dc samba-ad-provision ldap-utils (starts no service)
#   samba-ad.sh start     provision a fresh domain in SAMBA_DIR, start samba, load the test data
#   samba-ad.sh env       print the connection settings as shell assignments
#   samba-ad.sh stop      stop samba by the PID this script recorded and remove SAMBA_DIR
#
# Environment (all optional):
#   SAMBA_DIR          working folder (default ${TMPDIR:-/tmp}/cfyauth-test-samba); wiped by start and stop
#   SAMBA_MAX_RUNTIME  seconds after which samba exits by itself (default 3600), in case a test run dies
#   SAMBA_KEEP=1       stop does not delete SAMBA_DIR
#
# Samba's LDAP ports cannot be changed: 389 (ldap), 636 (ldaps), 3268 and 3269
# (global catalog), plus 88 and 464 (Kerberos). Only one test package may run
# this at a time. Samba listens on 127.0.0.1 only. The realm EXAMPLE.TEST
# can never resolve to a real host, so a referral to it leads nowhere.
#
# Data: the service account svc-bind (password never expires) and the users
# alice, bob, carol, dave, jmueller (CN=Jürgen Müller), jsmith
# (CN=Smith\, John), disabled (account disabled), mustchange (must change
# its password), expired (account expired), locked (locked out by a
# password settings object after two wrong passwords). Groups: admins
# (alice), developers (bob, jmueller, jsmith), engineering (developers,
# carol), rnd (engineering): bob is three levels deep in rnd. cycle-a and
# cycle-b contain each other; dave is in cycle-a.
set -euo pipefail

DIR=${SAMBA_DIR:-${TMPDIR:-/tmp}/cfyauth-test-samba}
IP=127.0.0.1
REALM=EXAMPLE.TEST
DOMAIN=EXAMPLE
DNSDOMAIN=example.test
BASE="DC=example,DC=test"
USERS="CN=Users,$BASE"
HOSTNAME_DC=dc1
ADMIN_PW='Adm1n-Passw0rd!'
SVC_USER=svc-bind; SVC_PW='Svc-Passw0rd!'
USER_PW='User-Passw0rd!'
CONF="$DIR/etc/smb.conf"

now_ms() { date +%s%3N; }
log() { printf '[samba-ad.sh] %s\n' "$*" >&2; }

cmd_install() {
  if command -v samba >/dev/null && command -v samba-tool >/dev/null && [ -d /usr/share/samba/setup ] \
     && command -v ldapsearch >/dev/null; then log "samba AD DC already installed"; return 0; fi
  local tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # keeps the package scripts from starting samba, smbd, nmbd, winbind
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; tmp_policy=1
  fi
  local t0; t0=$(now_ms)
  # --no-install-recommends keeps libnss-winbind and libpam-winbind out: they would edit nsswitch and PAM.
  local pk="samba-ad-dc samba-ad-provision ldap-utils openssl"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pk >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pk >/dev/null; }
  [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "install took $(( $(now_ms) - t0 )) ms"
}

# gen_tls makes a CA and a server certificate for 127.0.0.1, localhost and
# dc1.example.test. Samba's own certificate has a negative serial number and
# no subject alternative name, which Go refuses.
gen_tls() {
  local d="$DIR/tls"; mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -sha256 -keyout "$d/ca.key" -out "$d/ca.pem" \
    -subj "/O=Test/CN=Test AD CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$d/server.key" -out "$d/server.csr" \
    -subj "/O=Test/CN=$HOSTNAME_DC.$DNSDOMAIN" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,DNS:localhost,DNS:%s,IP:%s\n' \
    "$HOSTNAME_DC.$DNSDOMAIN" "$(hostname)" "$IP" > "$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 365 \
    -sha256 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
  chmod 600 "$d"/*.key   # Samba refuses a key that others can read
}

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

cmd_start() {
  command -v samba >/dev/null || { log "samba is not installed: run '$0 install'"; exit 1; }
  if [ -f "$DIR/samba.pid" ] && kill -0 "$(cat "$DIR/samba.pid")" 2>/dev/null; then
    log "already running (pid $(cat "$DIR/samba.pid"))"; cmd_env; return 0; fi
  local p; for p in 389 636 3268 3269 88 464; do
    port_busy "$p" && { log "port $p is busy: another Samba or LDAP server runs on this machine"; exit 1; }; done
  local t0; t0=$(now_ms)
  rm -rf "$DIR"; mkdir -p "$DIR/logs"; chmod 700 "$DIR"
  gen_tls &
  local tls_pid=$!
  # SAMBA_INTERNAL DNS backend, but the dns service is not started; RFC 2307
  # attributes for uidNumber and gidNumber.
  samba-tool domain provision --targetdir="$DIR" --realm="$REALM" --domain="$DOMAIN" \
    --server-role=dc --dns-backend=SAMBA_INTERNAL --use-rfc2307 \
    --host-name="$HOSTNAME_DC" --host-ip="$IP" --adminpass="$ADMIN_PW" \
    --option="interfaces=$IP" --option="bind interfaces only=yes" >"$DIR/logs/provision.log" 2>&1 \
    || { tail -30 "$DIR/logs/provision.log" >&2; exit 1; }
  wait "$tls_pid"
  local t1; t1=$(now_ms)
  # Provision copies the host's resolver into "dns forwarder"; drop it. No
  # NetBIOS, no smbd or winbindd; logs inside DIR; our own certificate.
  python3 - "$CONF" "$DIR" <<'PY'
import re, sys
conf, d = sys.argv[1:]
s = open(conf).read()
s = re.sub(r'^\s*dns forwarder = .*\n', '', s, flags=re.M)
s = re.sub(r'^(\s*log file = ).*$', r'\g<1>' + d + '/logs/log.%m', s, flags=re.M)
extra = ["server services = ldap, cldap, kdc", "disable netbios = yes",
         "ldap server require strong auth = no", "panic action = ", "tls enabled = yes",
         "tls keyfile = %s/tls/server.key" % d, "tls certfile = %s/tls/server.pem" % d,
         "tls cafile = %s/tls/ca.pem" % d]
s = s.replace("[global]\n", "[global]\n" + "".join("\t%s\n" % e for e in extra), 1)
open(conf, "w").write(s)
PY
  # -i: foreground, so $! is samba itself; -M single: one process.
  setsid samba -i -M single -s "$CONF" --maximum-runtime="${SAMBA_MAX_RUNTIME:-3600}" \
    >"$DIR/logs/samba.out" 2>&1 </dev/null &
  echo $! > "$DIR/samba.pid"
  local i; for i in $(seq 1 300); do
    ldapsearch -x -H "ldap://$IP" -b '' -s base defaultNamingContext >/dev/null 2>&1 && break
    kill -0 "$(cat "$DIR/samba.pid")" 2>/dev/null || { log "samba died:"; tail -20 "$DIR/logs/samba.out" >&2; exit 1; }
    sleep 0.05
  done
  ldapsearch -x -H "ldap://$IP" -b '' -s base defaultNamingContext >/dev/null 2>&1 \
    || { log "samba is not answering on ldap://$IP after 15 s"; tail -20 "$DIR/logs/samba.out" >&2; cmd_stop; exit 1; }
  local t2; t2=$(now_ms)
  add_data || { cmd_stop; exit 1; }
  local t3; t3=$(now_ms)
  log "provision $((t1-t0)) ms, samba ready $((t2-t1)) ms, data $((t3-t2)) ms, total $((t3-t0)) ms"
  cmd_env
}

b64() { printf '%s' "$1" | base64 -w0; }
# unicodePwd is the password in double quotes, as UTF-16LE.
pwd_attr() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }

# user SAM CN [EXTRA LDIF LINES...] writes one user entry with the test
# password; the CN goes base64 so commas and non-ASCII letters survive.
user() {
  local sam=$1 cn=$2; shift 2
  local dn="CN=$(sed 's/,/\\,/g' <<<"$cn"),$USERS"
  printf 'dn:: %s\nobjectClass: user\ncn:: %s\nsAMAccountName: %s\nuserPrincipalName: %s@%s\nunicodePwd:: %s\n' \
    "$(b64 "$dn")" "$(b64 "$cn")" "$sam" "$sam" "$DNSDOMAIN" "$(pwd_attr "$USER_PW")"
  local line; for line in "$@"; do printf '%s\n' "$line"; done
  printf '\n'
}

group() {
  local name=$1; shift
  printf 'dn: CN=%s,%s\nobjectClass: group\nsAMAccountName: %s\n' "$name" "$USERS" "$name"
  local m; for m in "$@"; do printf 'member:: %s\n' "$(b64 "$m,$USERS")"; done
  printf '\n'
}

add_data() {
  local ldif="$DIR/data.ldif"
  {
    printf 'dn: CN=%s,%s\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@%s\ndescription: bind-only service account\nunicodePwd:: %s\nuserAccountControl: 66048\n\n' \
      "$SVC_USER" "$USERS" "$SVC_USER" "$SVC_USER" "$DNSDOMAIN" "$(pwd_attr "$SVC_PW")"
    user alice "Alice Admin" "givenName: Alice" "sn: Admin" "mail: alice@$DNSDOMAIN" "uid: alice" \
      "uidNumber: 10001" "gidNumber: 20001" "userAccountControl: 512"
    user bob "Bob User" "givenName: Bob" "sn: User" "mail: bob@$DNSDOMAIN" "userAccountControl: 512"
    user carol "Carol Viewer" "givenName: Carol" "sn: Viewer" "userAccountControl: 512"
    user dave "Dave Loop" "givenName: Dave" "sn: Loop" "mail: dave@$DNSDOMAIN" "userAccountControl: 512"
    user jmueller "Jürgen Müller" "givenName:: $(b64 'Jürgen')" "sn:: $(b64 'Müller')" \
      "mail: jmueller@$DNSDOMAIN" "userAccountControl: 512"
    user jsmith "Smith, John" "givenName: John" "sn: Smith" "mail: jsmith@$DNSDOMAIN" "userAccountControl: 512"
    user disabled "Disabled User" "userAccountControl: 514"
    user mustchange "Must Change" "userAccountControl: 512" "pwdLastSet: 0"
    # accountExpires is a FILETIME; this one is in 2012.
    user expired "Expired User" "userAccountControl: 512" "accountExpires: 130000000000000000"
    user locked "Locked User" "userAccountControl: 512"
    group admins "CN=Alice Admin"
    group developers "CN=Bob User" "CN=Jürgen Müller" 'CN=Smith\, John'
    group engineering "CN=developers" "CN=Carol Viewer"
    group rnd "CN=engineering"
    group cycle-a "CN=Dave Loop"
    group cycle-b "CN=cycle-a"
    printf 'dn: CN=cycle-a,%s\nchangetype: modify\nadd: member\nmember: CN=cycle-b,%s\n-\n\n' "$USERS" "$USERS"
    # A password settings object locks out "locked" after two wrong
    # passwords and applies to no other account.
    printf 'dn: CN=lockout-fast,CN=Password Settings Container,CN=System,%s\nobjectClass: msDS-PasswordSettings\n' "$BASE"
    printf 'msDS-PasswordSettingsPrecedence: 1\nmsDS-PasswordReversibleEncryptionEnabled: FALSE\nmsDS-PasswordHistoryLength: 0\n'
    printf 'msDS-PasswordComplexityEnabled: FALSE\nmsDS-MinimumPasswordLength: 1\nmsDS-MinimumPasswordAge: 0\n'
    printf 'msDS-MaximumPasswordAge: -8640000000000\nmsDS-LockoutThreshold: 2\nmsDS-LockoutObservationWindow: -18000000000\n'
    printf 'msDS-LockoutDuration: -18000000000\nmsDS-PSOAppliesTo: CN=Locked User,%s\n\n' "$USERS"
  } > "$ldif"
  local auth=(-x -H "ldaps://$IP" -D "Administrator@$DNSDOMAIN" -w "$ADMIN_PW")
  LDAPTLS_CACERT="$DIR/tls/ca.pem" ldapmodify -a "${auth[@]}" -f "$ldif" >"$DIR/logs/data.log" 2>&1 \
    || { log "loading the test data failed:"; cat "$DIR/logs/data.log" >&2; return 1; }
  local n; for n in 1 2; do
    LDAPTLS_CACERT="$DIR/tls/ca.pem" ldapsearch -x -H "ldaps://$IP" -D "locked@$DNSDOMAIN" -w wrong-password \
      -b '' -s base dn >/dev/null 2>&1 || true
  done
}

kv() { printf '%s=%q\n' "$1" "$2"; }   # eval-safe KEY=value lines
cmd_env() {
  kv AD_LDAP_URL "ldap://$IP:389"; kv AD_LDAPS_URL "ldaps://$IP:636"; kv AD_GC_URL "ldap://$IP:3268"
  kv AD_CA_FILE "$DIR/tls/ca.pem"; kv AD_REALM "$REALM"; kv AD_DOMAIN "$DOMAIN"; kv AD_DNS_DOMAIN "$DNSDOMAIN"
  kv AD_BASE_DN "$BASE"; kv AD_USERS_DN "$USERS"; kv AD_ADMIN_UPN "Administrator@$DNSDOMAIN"; kv AD_ADMIN_PW "$ADMIN_PW"
  kv AD_BIND_DN "CN=$SVC_USER,$USERS"; kv AD_BIND_UPN "$SVC_USER@$DNSDOMAIN"; kv AD_BIND_PW "$SVC_PW"
  kv AD_USER_PW "$USER_PW"; kv SAMBA_PID "$(cat "$DIR/samba.pid" 2>/dev/null || echo none)"
}

cmd_stop() {
  local pid=""; [ -f "$DIR/samba.pid" ] && pid=$(cat "$DIR/samba.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    local t0; t0=$(now_ms); kill -TERM "$pid"
    local i; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then log "samba $pid did not stop, SIGKILL"; kill -KILL "$pid"; fi
    log "stopped samba pid $pid in $(( $(now_ms) - t0 )) ms"
  else log "no running samba recorded in $DIR"; fi
  [ "${SAMBA_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  env)     cmd_env ;;
  stop)    cmd_stop ;;
  *) sed -n '2,28p' "$0"; exit 2 ;;
esac
