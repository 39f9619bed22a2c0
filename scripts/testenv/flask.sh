#!/usr/bin/env bash
# Install Flask for the system Python, so the tests of 'cfyauth test' can run
# modules against the real flask and werkzeug as well as against cfyauth's
# stand-ins (a virtualenv without Flask gives those). Idempotent.
set -euo pipefail

if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import flask' 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "flask.sh: /usr/bin/python3 cannot import flask; run as root or install python3-flask with apt-get" >&2
  exit 3
fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-flask python3-venv >/dev/null
