#!/usr/bin/env bash
# Runs flowgo's whole test suite, race detector on. Installs, with apt-get,
# the real peers the tests talk to when they are missing: logger
# (bsdutils), openssl and kcat. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v logger >/dev/null || need+=(bsdutils)
command -v openssl >/dev/null || need+=(openssl)
command -v kcat >/dev/null || need+=(kcat)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

go test -race -count=1 -timeout 15m "$@" ./...
