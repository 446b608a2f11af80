#!/usr/bin/env bash
# Runs flowgo's whole test suite, race detector on, after installing the
# tools the tests drive (.ci/tools). Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"
.ci/tools
go test -race -count=1 -timeout 15m "$@" ./...
