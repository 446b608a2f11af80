# shellcheck shell=bash
# Shared functions of the benchmark scripts; sourced, not run.
#
# A measured run: start the receiver (flowgo, rsyslog or syslog-ng) as a
# foreground process of its own with a config in a temp dir, wait until it
# listens, note the load average and the receiver's CPU time, run
# flowgo-loadgen, then poll the output file until it holds every record sent
# (its size stops growing and `wc -l` says so). The run ends at the output
# file's last modification: first record sent (flowgo-loadgen's start_unix)
# to last record written. CPU is user+sys of the receiver between the two
# readings (/proc/PID/stat, every thread, dead ones included); peak memory is
# its VmHWM.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=${RESULTS:-$BENCH_DIR/results}
# Scratch space: configs, outputs, binaries. Outputs of TCP runs are a few GB.
WORK=${BENCH_WORK:-/var/tmp/flowgo-bench}
# rsyslog and syslog-ng conflict as Debian packages (both are "the system
# logger"), so setup.sh installs syslog-ng-core with apt and unpacks rsyslog's
# packages here instead.
TOOLS=${BENCH_TOOLS:-/var/tmp/flowgo-bench-tools}
RSYSLOG_ROOT=$TOOLS/root
BIN=$WORK/bin
# The flowgo under test (FLOWGO=/path/to/old/flowgo for a before/after run).
FLOWGO=${FLOWGO:-$BIN/flowgo}
# rsyslog: the one setup.sh unpacked, else the system's (Debian's rsyslog,
# with rsyslog-kafka for omkafka), run as a foreground process of its own.
RSYSLOGD=${RSYSLOGD:-$RSYSLOG_ROOT/usr/sbin/rsyslogd}
RSYSLOG_MODULES=${RSYSLOG_MODULES:-$RSYSLOG_ROOT/usr/lib/x86_64-linux-gnu/rsyslog}
if [[ ! -x $RSYSLOGD && -x /usr/sbin/rsyslogd ]]; then
	RSYSLOGD=/usr/sbin/rsyslogd
	RSYSLOG_MODULES=/usr/lib/x86_64-linux-gnu/rsyslog
fi
CERTS=$WORK/certs
PORT=${BENCH_PORT:-25514}
REPS=${REPS:-3}
CLK_TCK=$(getconf CLK_TCK)

mkdir -p "$WORK" "$BIN" "$RESULTS"

# say prints a line to the terminal and to the current results file.
say() { echo "$*" | tee -a "$OUT"; }

# show prints a command, as run, to the terminal and the results file.
show() { say "+ $*"; }

# build compiles flowgo, flowgo-loadgen and kfaked (the standalone Kafka
# broker of the Kafka runs) from this tree.
build() {
	(cd "$REPO" && go build -o "$BIN/flowgo-loadgen" ./cmd/flowgo-loadgen && go build -o "$BIN/flowgo" ./cmd/flowgo &&
		go build -o "$BIN/kfaked" ./internal/kfaked)
}

# machine_header writes what the figures depend on.
machine_header() {
	say "# $(date -u +%FT%TZ) on $(uname -srm), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	say "# cpu: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
	say "# flowgo: $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown), binary $FLOWGO"
	say "# rsyslog: $("$RSYSLOGD" -v 2>/dev/null | head -1 || echo missing) ($RSYSLOGD)"
	say "# syslog-ng: $(syslog-ng --version 2>/dev/null | head -1 || echo missing)"
	say "# load average before this script: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# cpu_ticks PID: user+sys clock ticks of the process, all its threads.
cpu_ticks() {
	# Fields after the parenthesised command name; utime and stime are the
	# 14th and 15th fields of the whole line.
	sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# peak_rss_kb PID: the process's peak resident set.
peak_rss_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }

# wait_listen tcp|udp PORT PID: until something listens there (at most 15 s).
wait_listen() {
	local flag=-ltn
	[[ $1 == udp ]] && flag=-lun
	for _ in $(seq 150); do
		if ss -H "$flag" "sport = :$2" | grep -q .; then return 0; fi
		kill -0 "$3" 2>/dev/null || { echo "receiver exited before listening" >&2; return 1; }
		sleep 0.1
	done
	echo "nothing listens on $1 port $2" >&2
	return 1
}

# wait_port_free PORT: the previous receiver let go of the port.
wait_port_free() {
	for _ in $(seq 100); do
		ss -H -ltn "sport = :$1" | grep -q . || ss -H -lun "sport = :$1" | grep -q . || return 0
		sleep 0.1
	done
	echo "port $1 still in use" >&2
	return 1
}

# wait_output FILE EXPECTED STALL TIMEOUT: poll FILE's size every 0.2 s (a
# stat, nothing heavier, so as not to take CPU from the run). Each time it
# has not grown for STALL seconds, count its lines; done when they reach
# EXPECTED, or when it has not grown for TIMEOUT seconds (records were lost).
# Prints "LINES MTIME", the mtime in seconds with nanoseconds: the moment the
# last record was written, whenever the polling noticed it.
wait_output() {
	local file=$1 expected=$2 stall_us=$(($3 * 1000000)) timeout_us=$(($4 * 1000000))
	local size=-1 counted=-1 last_change now lines=0 cur
	last_change=${EPOCHREALTIME/./}
	while :; do
		cur=$(stat -c %s "$file" 2>/dev/null || echo 0)
		now=${EPOCHREALTIME/./}
		if [[ $cur != "$size" ]]; then
			size=$cur
			last_change=$now
		elif ((now - last_change >= stall_us)); then
			if [[ $counted != "$size" ]]; then # count once per size
				lines=$(wc -l <"$file" 2>/dev/null || echo 0)
				counted=$size
			fi
			if ((lines >= expected || now - last_change >= timeout_us)); then
				break
			fi
		fi
		sleep 0.2
	done
	echo "$lines $(stat -c %.9Y "$file" 2>/dev/null || echo "$EPOCHREALTIME")"
}

# stop_receiver PID: SIGTERM, then SIGKILL after 20 s.
stop_receiver() {
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 200); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# kv KEY LINE: the value of KEY in a key=value line.
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k{print $2}'; }

# stats VALUES...: "median (min–max)" of the values.
stats() {
	(($#)) || { echo -; return; }
	printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{
		m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
		printf "%s (%s–%s)", m, v[1], v[NR]}'
}

# self_check: the tools the scripts need.
self_check() {
	local missing=()
	for c in go ss awk stat wc openssl; do command -v "$c" >/dev/null || missing+=("$c"); done
	[[ -x /usr/bin/time ]] || missing+=(/usr/bin/time)
	if ((${#missing[@]})); then
		echo "missing: ${missing[*]} (run bench/setup.sh)" >&2
		exit 2
	fi
}

# gelf_template: rsyslog's GELF-like JSON, full_message included.
gelf_template() {
	cat <<'EOT'
template(name="gelf" type="list" option.jsonf="on") {
  constant(outname="version" value="1.1" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="short_message" name="msg" format="jsonf")
  property(outname="full_message" name="rawmsg" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="level" name="syslogseverity" format="jsonf" datatype="number")
  property(outname="_facility" name="syslogfacility-text" format="jsonf")
  property(outname="application_name" name="app-name" format="jsonf")
  property(outname="process_id" name="procid" format="jsonf")
  property(outname="_msgid" name="msgid" format="jsonf")
  property(outname="_structured_data" name="structured-data" format="jsonf")
}
EOT
}
