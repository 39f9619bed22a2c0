#!/usr/bin/env bash
# Install what the test suite needs and the machine may lack. Idempotent:
# packages already present are not fetched again. Debian's policy-rc.d keeps
# package scripts from starting the system-wide services; the tests start
# their own, on loopback only.
set -euo pipefail

need=()
command -v python3 >/dev/null || need+=(python3)
command -v supervisord >/dev/null || need+=(supervisor)
command -v xmlsec1 >/dev/null || need+=(xmlsec1)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install.sh: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 3
  fi
  tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    tmp_policy=1
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  [ "$tmp_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# Each server's own script installs it; they are listed here one per line.
bash "$(dirname "$0")/slapd.sh" install
bash "$(dirname "$0")/systemd-user.sh" install
bash "$(dirname "$0")/flask.sh"
bash "$(dirname "$0")/samba-ad.sh" install
