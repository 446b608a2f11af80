#!/usr/bin/env bash
# Runs flowgo's whole test suite, race detector on. Installs, with apt-get,
# the real peers and tools the tests use when they are missing: logger
# (bsdutils), openssl, kcat, and for dist/: systemd-analyze (systemd; nothing
# is started), strace, logrotate and PyYAML. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v logger >/dev/null || need+=(bsdutils)
command -v openssl >/dev/null || need+=(openssl)
command -v kcat >/dev/null || need+=(kcat)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v strace >/dev/null || need+=(strace)
command -v logrotate >/dev/null || need+=(logrotate)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

go test -race -count=1 -timeout 15m "$@" ./...
