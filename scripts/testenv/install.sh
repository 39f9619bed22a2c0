#!/usr/bin/env bash
# Install what the test suite needs and the machine may lack. Idempotent:
# packages already present are not fetched again.
set -euo pipefail

need=()
command -v python3 >/dev/null || need+=(python3)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install.sh: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 3
  fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
bash "$(dirname "$0")/systemd-user.sh" install
