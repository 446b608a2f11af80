#!/usr/bin/env bash
# Runs flowgo's whole test suite, race detector on, after installing the
# tools the tests drive (.ci/tools: apt-get, which needs root, and only
# when a tool is missing). When they cannot be installed, the tests run
# anyway and those that need a missing tool fail, naming its package.
# Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"
if ! .ci/tools; then
  echo "test.sh: some tools are missing (see above): the tests that drive them will fail" >&2
fi
go test -race -count=1 -timeout 15m "$@" ./...
