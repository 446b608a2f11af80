#!/usr/bin/env bash
# Installs what the benchmarks need and builds flowgo and flowgo-loadgen:
#   - syslog-ng (Debian package syslog-ng-core, installed with apt-get);
#   - rsyslog with its TLS driver: Debian's rsyslog and syslog-ng-core
#     conflict (each is "the system logger"), so rsyslog's packages are
#     downloaded with apt-get and unpacked under $BENCH_TOOLS, not installed;
#     their libraries (libestr0, libfastjson4, liblognorm5, libgnutls30,
#     librdkafka1 for omkafka) are installed with apt-get;
#   - a throw-away CA and server certificate for the TLS runs (openssl).
# Run as root (apt-get). Idempotent: what is there already is kept.
source "$(dirname "$0")/lib.sh"
OUT=/dev/null

need_update=1
apt_install() {
	if ((need_update)); then apt-get update -qq; need_update=0; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

command -v ss >/dev/null || apt_install iproute2
[[ -x /usr/bin/time ]] || apt_install time
command -v openssl >/dev/null || apt_install openssl
command -v syslog-ng >/dev/null || apt_install syslog-ng-core

if [[ ! -x $RSYSLOG_ROOT/usr/sbin/rsyslogd || ! -e $RSYSLOG_ROOT/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ]]; then
	apt_install libestr0 libfastjson4 liblognorm5 libgnutls30 librdkafka1
	mkdir -p "$TOOLS/debs"
	(cd "$TOOLS/debs" && apt-get download rsyslog rsyslog-gnutls rsyslog-kafka)
	for deb in "$TOOLS"/debs/*.deb; do dpkg-deb -x "$deb" "$RSYSLOG_ROOT"; done
fi
if ldd "$RSYSLOG_ROOT/usr/sbin/rsyslogd" "$RSYSLOG_ROOT"/usr/lib/x86_64-linux-gnu/rsyslog/*.so | grep -q 'not found'; then
	echo "rsyslog is missing libraries:" >&2
	ldd "$RSYSLOG_ROOT/usr/sbin/rsyslogd" "$RSYSLOG_ROOT"/usr/lib/x86_64-linux-gnu/rsyslog/*.so | grep 'not found' | sort -u >&2
	exit 1
fi

if [[ ! -s $CERTS/server.pem ]]; then
	mkdir -p "$CERTS"
	(
		cd "$CERTS"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
			-days 3650 -subj /CN=flowgo-bench-ca 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
			-subj /CN=localhost 2>/dev/null
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
			-days 3650 -extfile server.ext 2>/dev/null
	)
fi

build
echo "ready: $BIN/flowgo $BIN/flowgo-loadgen $BIN/kfaked, rsyslog $("$RSYSLOG_ROOT/usr/sbin/rsyslogd" -v | head -1 | awk '{print $2}'), $(syslog-ng --version | head -1), certificates in $CERTS"
