#!/usr/bin/env bash
# slapd.sh - throwaway OpenLDAP (slapd 2.5, Debian 12) for the cfyauth tests,
# loopback only. The Go tests run it through internal/ldapprobe/ldaptest.
#
#   slapd.sh install   apt-get install slapd ldap-utils (no auto-started system slapd)
#   slapd.sh start     build a fresh config+data dir, start slapd, load test data, print URLs
#   slapd.sh env       print the connection settings as shell assignments
#   slapd.sh verify    ldapwhoami/ldapsearch over ldap://, StartTLS, ldaps://, ldapi://
#   slapd.sh stop      stop slapd (by the PID this script recorded) and remove the dir
#   slapd.sh demo      install (if needed) + start + verify + stop, with timings
#
# Environment (all optional):
#   SLAPD_DIR      working dir (default ${TMPDIR:-/tmp}/cfyauth-test-slapd); wiped by start/stop
#   LDAP_PORT      plain + StartTLS port (default 38900)
#   LDAPS_PORT     ldaps port (default 38901)
#   SLAPD_MEMBEROF overlay (slapo-memberof, direct membership, stored)   [default]
#                  dynlist (slapo-dynlist, computed, NESTED memberOf)
#                  none
#   SLAPD_DEBUG    slapd -d level (default 0 = foreground, quiet; "stats" logs every op)
#   SLAPD_KEEP=1   stop does not delete SLAPD_DIR
#
# Groups (groupOfNames under ou=groups): admins (alice); developers (bob,
# jmueller, jsmith); engineering (developers, carol); rnd (engineering), so
# bob is three levels deep in rnd; cycle-a (dave, cycle-b) and cycle-b
# (cycle-a), a cycle. operators is a groupOfUniqueNames (alice, carol).
#
# Listens ONLY on 127.0.0.1 and [::1] (+ a unix socket in SLAPD_DIR).
set -euo pipefail

DIR=${SLAPD_DIR:-${TMPDIR:-/tmp}/cfyauth-test-slapd}
LDAP_PORT=${LDAP_PORT:-38900}
LDAPS_PORT=${LDAPS_PORT:-38901}
MEMBEROF=${SLAPD_MEMBEROF:-overlay}
DEBUG=${SLAPD_DEBUG:-0}

SUFFIX="dc=example,dc=org"
ADMIN_DN="cn=admin,$SUFFIX";                    ADMIN_PW="admin-secret"
SVC_DN="cn=svc-bind,ou=services,$SUFFIX";       SVC_PW="svc-secret"
USER_PW="user-secret"                            # same password for every test user
HOST=127.0.0.1

LDAPI_PATH="$DIR/ldapi"
ldapi_url() { printf 'ldapi://%s' "$(printf '%s' "$LDAPI_PATH" | sed 's,/,%2F,g')"; }
URL_LDAP="ldap://$HOST:$LDAP_PORT"
URL_LDAPS="ldaps://$HOST:$LDAPS_PORT"
URL_LDAP6="ldap://[::1]:$LDAP_PORT"
URL_LDAPS6="ldaps://[::1]:$LDAPS_PORT"

b64() { printf '%s' "$1" | base64 -w0; }
now_ms() { date +%s%3N; }
log() { printf '[slapd.sh] %s\n' "$*" >&2; }

cmd_install() {
  if command -v slapd >/dev/null && command -v ldapsearch >/dev/null; then
    log "slapd + ldap-utils already installed"; return 0
  fi
  # Debian's slapd postinst would start the system slapd (ldap:/// on *:389) through
  # invoke-rc.d unless policy-rc.d says no. Most CI images already have a policy-rc.d
  # that exits 101; if not, install a temporary one.
  local tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; tmp_policy=1
  fi
  local t0; t0=$(now_ms)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slapd ldap-utils openssl >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slapd ldap-utils openssl >/dev/null; }
  [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "install took $(( $(now_ms) - t0 )) ms"
}

gen_tls() {
  local d="$DIR/tls"; mkdir -p "$d"
  # CA
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -sha256 \
    -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/O=Test/CN=Test LDAP CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  # server key + CSR + cert signed by CA, SANs for every loopback name we use.
  # DNS:$(hostname) is there because libldap (ldapsearch & co) checks "localhost" URLs
  # against the machine's hostname instead; Go's crypto/tls does not.
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$d/server.key" -out "$d/server.csr" \
    -subj "/O=Test/CN=localhost" 2>/dev/null
  cat > "$d/ext.cnf" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:$(hostname),IP:127.0.0.1,IP:::1
EOF
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
  chmod 600 "$d"/*.key
}

gen_config() {
  local pwhash; pwhash=$(slappasswd -s "$ADMIN_PW")
  local overlay_mod="" overlay_db="" extra_schema=""
  case "$MEMBEROF" in
    overlay)
      overlay_mod="olcModuleLoad: memberof
olcModuleLoad: refint"
      overlay_db="
dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfDangling: ignore
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member
"
      ;;
    dynlist)
      extra_schema="include: file:///etc/ldap/schema/dyngroup.ldif"
      overlay_mod="olcModuleLoad: dynlist"
      overlay_db="
dn: olcOverlay={0}dynlist,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcDynListConfig
olcOverlay: {0}dynlist
olcDynListAttrSet: groupOfURLs memberURL member+memberOf@groupOfNames*
"
      ;;
    none) ;;
    *) log "bad SLAPD_MEMBEROF=$MEMBEROF"; exit 2 ;;
  esac

  cat > "$DIR/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $DIR/slapd.pid
olcArgsFile: $DIR/slapd.args
olcLogLevel: none
olcToolThreads: 1
olcTLSCACertificateFile: $DIR/tls/ca.pem
olcTLSCertificateFile: $DIR/tls/server.pem
olcTLSCertificateKeyFile: $DIR/tls/server.key
olcTLSVerifyClient: never

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 500
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * break
olcAccess: {1}to dn.exact="" by * read
olcAccess: {2}to dn.base="cn=Subschema" by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * none

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
$extra_schema

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
$overlay_mod

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbMaxSize: 104857600
olcSuffix: $SUFFIX
olcDbDirectory: $DIR/data
olcRootDN: $ADMIN_DN
olcRootPW: $pwhash
olcLastMod: TRUE
olcDbIndex: objectClass eq
olcDbIndex: cn,uid,mail eq,sub
olcDbIndex: uidNumber,gidNumber eq
olcDbIndex: member,memberUid eq
olcLimits: dn.exact="uid=carol,ou=users,$SUFFIX" size=2
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by self read by dn.exact="$SVC_DN" read by users read by * none
$overlay_db
EOF
}

gen_data() {
  local h; h=$(slappasswd -s "$USER_PW")
  local svch; svch=$(slappasswd -s "$SVC_PW")
  # non-ASCII and comma DNs; non-ASCII values go base64 (RFC 2849)
  local JDN="cn=Jürgen Müller,ou=users,$SUFFIX"
  local CDN="cn=Smith\\, John,ou=users,$SUFFIX"
  cat > "$DIR/data.ldif" <<EOF
dn: $SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example Org
dc: example

dn: ou=users,$SUFFIX
objectClass: organizationalUnit
ou: users

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: ou=posixgroups,$SUFFIX
objectClass: organizationalUnit
ou: posixgroups

dn: ou=services,$SUFFIX
objectClass: organizationalUnit
ou: services

dn: $SVC_DN
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: svc-bind
description: bind-only service account (read-only; cannot write)
userPassword: $svch

dn: uid=alice,ou=users,$SUFFIX
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: extensibleObject
email: alice@example.org
cn: Alice Admin
sn: Admin
givenName: Alice
uid: alice
mail: alice@example.org
uidNumber: 10001
gidNumber: 20001
homeDirectory: /home/alice
loginShell: /bin/bash
userPassword: $h

dn: uid=bob,ou=users,$SUFFIX
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: extensibleObject
email: bob@example.org
cn: Bob User
sn: User
givenName: Bob
uid: bob
mail: bob@example.org
uidNumber: 10002
gidNumber: 20002
homeDirectory: /home/bob
userPassword: $h

dn: uid=carol,ou=users,$SUFFIX
objectClass: inetOrgPerson
objectClass: posixAccount
cn: Carol Viewer
sn: Viewer
uid: carol
mail: carol@example.org
uidNumber: 10003
gidNumber: 20002
homeDirectory: /home/carol
userPassword: $h

dn:: $(b64 "$JDN")
objectClass: inetOrgPerson
objectClass: posixAccount
cn:: $(b64 "Jürgen Müller")
sn:: $(b64 "Müller")
givenName:: $(b64 "Jürgen")
displayName:: $(b64 "Jürgen Müller (Zürich)")
uid: jmueller
mail: jmueller@example.org
uidNumber: 10004
gidNumber: 20002
homeDirectory: /home/jmueller
userPassword: $h

dn: $CDN
objectClass: inetOrgPerson
cn: Smith, John
sn: Smith
givenName: John
uid: jsmith
mail: jsmith@example.org
userPassword: $h

dn: uid=ops*(eu),ou=users,$SUFFIX
objectClass: inetOrgPerson
cn: Ops Europe
sn: Ops
uid: ops*(eu)
mail: ops@example.org
userPassword: $h

dn: cn=admins,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: admins
member: uid=alice,ou=users,$SUFFIX

dn: cn=developers,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: developers
member: uid=bob,ou=users,$SUFFIX
member:: $(b64 "$JDN")
member: $CDN

dn: cn=engineering,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: engineering
description: nested group - contains the developers group and carol
member: cn=developers,ou=groups,$SUFFIX
member: uid=carol,ou=users,$SUFFIX

dn: cn=rnd,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: rnd
description: nested three deep - holds engineering, which holds developers
member: cn=engineering,ou=groups,$SUFFIX

dn: uid=dave,ou=users,$SUFFIX
objectClass: inetOrgPerson
cn: Dave Loop
sn: Loop
givenName: Dave
uid: dave
mail: dave@example.org
userPassword: $h

dn: cn=cycle-a,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: cycle-a
description: cycle - holds dave and cycle-b, which holds cycle-a
member: uid=dave,ou=users,$SUFFIX

dn: cn=cycle-b,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: cycle-b
member: cn=cycle-a,ou=groups,$SUFFIX

dn: cn=cycle-a,ou=groups,$SUFFIX
changetype: modify
add: member
member: cn=cycle-b,ou=groups,$SUFFIX
-

dn: cn=operators,ou=groups,$SUFFIX
objectClass: groupOfUniqueNames
cn: operators
description: groupOfUniqueNames (uniqueMember) - not covered by memberOf, found by filter search
uniqueMember: uid=alice,ou=users,$SUFFIX
uniqueMember: uid=carol,ou=users,$SUFFIX

dn: cn=admins,ou=posixgroups,$SUFFIX
objectClass: posixGroup
cn: admins
gidNumber: 20001
memberUid: alice

dn: cn=users,ou=posixgroups,$SUFFIX
objectClass: posixGroup
cn: users
gidNumber: 20002
memberUid: bob
memberUid: carol
memberUid: jmueller
EOF
}

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

cmd_start() {
  command -v slapd >/dev/null || { log "slapd not installed: run '$0 install'"; exit 1; }
  if [ -f "$DIR/slapd.pid" ] && kill -0 "$(cat "$DIR/slapd.pid")" 2>/dev/null; then
    log "already running (pid $(cat "$DIR/slapd.pid"))"; cmd_env; return 0
  fi
  for p in "$LDAP_PORT" "$LDAPS_PORT"; do port_busy "$p" && { log "port $p busy"; exit 1; }; done
  local t0; t0=$(now_ms)
  rm -rf "$DIR"; mkdir -p "$DIR/slapd.d" "$DIR/data"; chmod 700 "$DIR"
  gen_tls
  gen_config
  slapadd -n 0 -F "$DIR/slapd.d" -l "$DIR/config.ldif" >"$DIR/slapadd.log" 2>&1 \
    || { cat "$DIR/slapadd.log" >&2; exit 1; }
  local t1; t1=$(now_ms)
  # -d keeps slapd in the foreground (no fork), so $! is slapd itself and stderr is its log.
  # Running as root (no -u) in CI; add "-u openldap -g openldap" + chown if you prefer.
  setsid slapd -d "$DEBUG" -F "$DIR/slapd.d" \
    -h "$URL_LDAP/ $URL_LDAPS/ $URL_LDAP6/ $URL_LDAPS6/ $(ldapi_url)" \
    >"$DIR/slapd.log" 2>&1 </dev/null &
  echo $! > "$DIR/slapd.pid.launch"
  local i
  for i in $(seq 1 100); do
    ldapwhoami -x -H "$URL_LDAP" >/dev/null 2>&1 && break
    kill -0 "$(cat "$DIR/slapd.pid.launch")" 2>/dev/null || { log "slapd died:"; cat "$DIR/slapd.log" >&2; exit 1; }
    sleep 0.05
  done
  local t2; t2=$(now_ms)
  gen_data
  ldapadd -x -H "$URL_LDAP" -D "$ADMIN_DN" -w "$ADMIN_PW" -f "$DIR/data.ldif" >"$DIR/ldapadd.log" 2>&1 \
    || { cat "$DIR/ldapadd.log" >&2; exit 1; }
  local t3; t3=$(now_ms)
  log "config+certs $((t1-t0)) ms, slapd ready $((t2-t1)) ms, data load $((t3-t2)) ms, total $((t3-t0)) ms (memberOf=$MEMBEROF)"
  cmd_env
}

kv() { printf '%s=%q\n' "$1" "$2"; }   # eval-safe KEY=value lines
cmd_env() {
  kv LDAP_URL "$URL_LDAP"; kv LDAP_URL_V6 "$URL_LDAP6"; kv LDAPS_URL "$URL_LDAPS"; kv LDAPS_URL_V6 "$URL_LDAPS6"
  kv LDAPI_URL "$(ldapi_url)"; kv LDAP_CA_FILE "$DIR/tls/ca.pem"; kv LDAP_BASE_DN "$SUFFIX"
  kv LDAP_USERS_DN "ou=users,$SUFFIX"; kv LDAP_GROUPS_DN "ou=groups,$SUFFIX"
  kv LDAP_ADMIN_DN "$ADMIN_DN"; kv LDAP_ADMIN_PW "$ADMIN_PW"; kv LDAP_BIND_DN "$SVC_DN"; kv LDAP_BIND_PW "$SVC_PW"
  kv LDAP_USER_PW "$USER_PW"; kv SLAPD_PID "$(cat "$DIR/slapd.pid.launch" 2>/dev/null || echo none)"
}

cmd_stop() {
  local pid=""
  [ -f "$DIR/slapd.pid.launch" ] && pid=$(cat "$DIR/slapd.pid.launch")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    local t0; t0=$(now_ms)
    kill -TERM "$pid"
    local i; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then log "slapd $pid did not stop, SIGKILL"; kill -KILL "$pid"; fi
    log "stopped slapd pid $pid in $(( $(now_ms) - t0 )) ms"
  else
    log "no running slapd recorded in $DIR"
  fi
  [ "${SLAPD_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}

# --- verification -----------------------------------------------------------
FAILS=0
check() { # check <description> <command...>
  local d=$1; shift
  local out; if out=$("$@" 2>&1); then printf 'ok   %s\n' "$d"; else printf 'FAIL %s\n%s\n' "$d" "$out"; FAILS=$((FAILS+1)); fi
}
expect_fail() { # expect_fail <description> <needle> <command...>
  local d=$1 needle=$2; shift 2
  local out; if out=$("$@" 2>&1); then printf 'FAIL %s (unexpected success)\n' "$d"; FAILS=$((FAILS+1));
  elif grep -q -- "$needle" <<<"$out"; then printf 'ok   %s -> %s\n' "$d" "$(grep -m1 -- "$needle" <<<"$out")";
  else printf 'FAIL %s\n%s\n' "$d" "$out"; FAILS=$((FAILS+1)); fi
}
has() { # has <needle> <command...> : command succeeds and its output contains needle
  local needle=$1; shift; local out; out=$("$@" 2>&1) || { echo "$out"; return 1; }
  grep -qi -- "$needle" <<<"$out" || { echo "missing '$needle' in:"; echo "$out"; return 1; }
}

cmd_verify() {
  export LDAPTLS_CACERT="$DIR/tls/ca.pem" LDAPTLS_REQCERT=demand
  local S="$SVC_DN" P="$SVC_PW"
  check "anonymous whoami, plain ldap://"         has anonymous ldapwhoami -x -H "$URL_LDAP"
  check "service bind, plain ldap://"             has "dn:$S" ldapwhoami -x -H "$URL_LDAP" -D "$S" -w "$P"
  check "service bind, StartTLS (-ZZ)"            has "dn:$S" ldapwhoami -x -ZZ -H "$URL_LDAP" -D "$S" -w "$P"
  check "service bind, ldaps://"                  has "dn:$S" ldapwhoami -x -H "$URL_LDAPS" -D "$S" -w "$P"
  check "service bind, ldaps://localhost (DNS SAN)" has "dn:$S" ldapwhoami -x -H "ldaps://localhost:$LDAPS_PORT" -D "$S" -w "$P"
  check "service bind, ldap://[::1] StartTLS"     has "dn:$S" ldapwhoami -x -ZZ -H "$URL_LDAP6" -D "$S" -w "$P"
  check "service bind, ldaps://[::1]"             has "dn:$S" ldapwhoami -x -H "$URL_LDAPS6" -D "$S" -w "$P"
  check "root via ldapi:// SASL EXTERNAL"         has "cn=peercred" ldapwhoami -Y EXTERNAL -Q -H "$(ldapi_url)"
  check "user alice bind, ldaps://"               has "dn:uid=alice" ldapwhoami -x -H "$URL_LDAPS" -D "uid=alice,ou=users,$SUFFIX" -w "$USER_PW"
  check "non-ASCII user bind (UTF-8 DN)"          has "dn:cn=J" ldapwhoami -x -H "$URL_LDAP" -D "cn=Jürgen Müller,ou=users,$SUFFIX" -w "$USER_PW"
  check "comma-in-CN user bind (escaped DN)"      has "dn:cn=Smith" ldapwhoami -x -H "$URL_LDAP" -D "cn=Smith\\, John,ou=users,$SUFFIX" -w "$USER_PW"
  expect_fail "wrong password -> 49"              "Invalid credentials (49)" ldapwhoami -x -H "$URL_LDAP" -D "uid=alice,ou=users,$SUFFIX" -w wrong
  expect_fail "unknown user -> 49"                "Invalid credentials (49)" ldapwhoami -x -H "$URL_LDAP" -D "uid=nobody,ou=users,$SUFFIX" -w x
  expect_fail "StartTLS without CA -> cert error" "Connect error" env LDAPTLS_CACERT=/dev/null ldapwhoami -x -ZZ -H "$URL_LDAP"
  expect_fail "anonymous search sees nothing"     "No such object (32)" ldapsearch -x -LLL -H "$URL_LDAP" -b "$SUFFIX" "(uid=alice)" dn
  check "service account finds alice by uid (StartTLS)" has "dn: uid=alice" ldapsearch -x -ZZ -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=alice)" dn
  check "service account can't read userPassword" bash -c "! ldapsearch -x -LLL -H '$URL_LDAP' -D '$S' -w '$P' -b '$SUFFIX' '(uid=alice)' userPassword | grep -q userPassword"
  expect_fail "service account cannot write"      "Insufficient access (50)" ldapmodify -x -H "$URL_LDAP" -D "$S" -w "$P" <<<"dn: uid=bob,ou=users,$SUFFIX
changetype: modify
replace: mail
mail: x@example.org
"
  check "non-ASCII search by uid=jmueller"        has "Jürgen Müller" bash -c "ldapsearch -x -LLL -o ldif-wrap=no -H '$URL_LDAP' -D '$S' -w '$P' -b '$SUFFIX' '(uid=jmueller)' dn | perl -MMIME::Base64 -ne 'if(/^dn:: (.*)/){print decode_base64(\$1)} else {print}'"
  # slapd returns the DN in its "pretty" form: the escaped comma comes back as \2C
  check "comma CN search by uid=jsmith (DN comes back as cn=Smith\\2C John)" has 'cn=Smith\\2C John' ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=jsmith)" dn
  check "posixGroup users has memberUid bob"      has "memberUid: bob" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=posixgroups,$SUFFIX" "(cn=users)" memberUid
  check "nested group engineering contains developers group" has "member: cn=developers" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=groups,$SUFFIX" "(cn=engineering)" member
  check "three deep: rnd contains engineering"    has "dn: cn=rnd" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=groups,$SUFFIX" "(member=cn=engineering,ou=groups,$SUFFIX)" dn
  check "cycle: cycle-a contains cycle-b"         has "dn: cn=cycle-a" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=groups,$SUFFIX" "(member=cn=cycle-b,ou=groups,$SUFFIX)" dn
  check "cycle: cycle-b contains cycle-a"         has "dn: cn=cycle-b" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=groups,$SUFFIX" "(member=cn=cycle-a,ou=groups,$SUFFIX)" dn
  check "groupOfUniqueNames: (uniqueMember=alice DN) finds operators" has "dn: cn=operators" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=groups,$SUFFIX" "(uniqueMember=uid=alice,ou=users,$SUFFIX)" dn
  check "alice has email (extensibleObject) and mail" has "email: alice@example.org" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=alice)" email mail
  case "$MEMBEROF" in
    overlay|dynlist)
      check "memberOf on the developers GROUP = engineering (nesting via group memberOf)" has "memberOf: cn=engineering,ou=groups" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "ou=groups,$SUFFIX" "(cn=developers)" memberOf
      check "memberOf on alice = admins"          has "memberOf: cn=admins,ou=groups" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=alice)" memberOf
      check "memberOf on jsmith = developers"     has "memberOf: cn=developers,ou=groups" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=jsmith)" memberOf
      check "memberOf filter finds developers"    has "uid=bob" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(memberOf=cn=developers,ou=groups,$SUFFIX)" dn
      ;;
  esac
  if [ "$MEMBEROF" = dynlist ]; then
    check "NESTED memberOf: bob in engineering"  has "memberOf: cn=engineering,ou=groups" ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=bob)" memberOf
  fi
  echo "---- bob (memberOf=$MEMBEROF):"
  ldapsearch -x -LLL -H "$URL_LDAP" -D "$S" -w "$P" -b "$SUFFIX" "(uid=bob)" memberOf
  echo "verify: $FAILS failure(s)"
  return "$FAILS"
}

cmd_demo() {
  cmd_install
  local t0; t0=$(now_ms); cmd_start >/dev/null; local t1; t1=$(now_ms)
  log "start (fresh dir -> ready with data) took $((t1-t0)) ms"
  cmd_env
  local rc=0; cmd_verify || rc=$?
  cmd_stop
  return $rc
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  env)     cmd_env ;;
  verify)  cmd_verify ;;
  stop)    cmd_stop ;;
  demo)    cmd_demo ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
