#!/usr/bin/env bash
# Run the whole cfyauth test suite on a Debian 12 machine: install the servers
# the tests need (as root, through apt-get), then run every Go test. With
# CFYAUTH_REQUIRE_SERVERS=1 a test whose server is missing fails instead of
# skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/testenv/install.sh

export CFYAUTH_REQUIRE_SERVERS=${CFYAUTH_REQUIRE_SERVERS:-1}
go vet ./...
go test -count=1 -timeout 30m ./... "$@"
