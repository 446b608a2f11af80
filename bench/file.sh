#!/usr/bin/env bash
# File tailing, side by side: flowgo's file input and rsyslog's imfile read
# the same file of N RFC 5424 lines (~247 bytes, flowgo-loadgen -o) from its
# beginning into a file, one after the other, REPS times each. Usage:
#
#   N=5000000 bench/file.sh [SERVER...]     SERVER: flowgo, rsyslog [both]
#
# flowgo writes GELF (FLOWGO_OUTPUTS, any encoder: gelf rfc5424); rsyslog
# parses each line as RFC 5424 (imfile needParse="on") and writes the
# GELF-like JSON of bench/net.sh, and its default file format (OUTPUTS: json
# file). A run lasts from the receiver's start to the output's last write
# (see lib.sh's wait_output); CPU is the receiver's user+sys over the run.
# Results: $RESULTS/file-SERVER.txt.
source "$(dirname "$0")/lib.sh"
self_check

SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(flowgo rsyslog)
N=${N:-5000000}
FLOWGO_OUTPUTS=${FLOWGO_OUTPUTS:-gelf}
OUTPUTS=${OUTPUTS:-json file}
STALL=2
TIMEOUT=20
# rsyslog from bench/setup.sh's unpacked packages, else the system's.
RSYSLOGD=$RSYSLOG_ROOT/usr/sbin/rsyslogd
RSYSLOG_MODULES=(-M "$RSYSLOG_ROOT/usr/lib/x86_64-linux-gnu/rsyslog")
if [[ ! -x $RSYSLOGD ]]; then
	RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
	RSYSLOG_MODULES=()
fi

build
IN=$WORK/file-in-$N.log
if [[ ! -s $IN ]]; then
	"$BIN/flowgo-loadgen" -o "$IN" -n "$N" >/dev/null
fi

run() {
	local server=$1 output=$2 d
	d=$(mktemp -d "$WORK/file.XXXXXX")
	case $server in
	flowgo)
		cat >"$d/flowgo.toml" <<EOT
[input]
type = "file"
src = "$IN"
read_from = "beginning"
format = "rfc5424"
file_checkpoint_path = "$d/checkpoints.json"

[output]
type = "file"
file_path = "$d/out"
format = "$output"
framing = "line"
EOT
		RECEIVER=("$BIN/flowgo" run -c "$d/flowgo.toml")
		CONFIG=$d/flowgo.toml ;;
	rsyslog)
		local template=RSYSLOG_FileFormat
		[[ $output == json ]] && template=json
		cat >"$d/rsyslog.conf" <<EOT
global(workDirectory="$d" maxMessageSize="64k")
module(load="imfile")
input(type="imfile" file="$IN" tag="bench" ruleset="bench" needParse="on" freshStartTail="off")
template(name="json" type="list" option.jsonf="on") {
  constant(outname="version" value="1.1" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="short_message" name="msg" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="level" name="syslogseverity" format="jsonf" datatype="number")
  property(outname="_facility" name="syslogfacility-text" format="jsonf")
  property(outname="_appname" name="app-name" format="jsonf")
  property(outname="_procid" name="procid" format="jsonf")
  property(outname="_msgid" name="msgid" format="jsonf")
  property(outname="_structured_data" name="structured-data" format="jsonf")
}
ruleset(name="bench") { action(type="omfile" file="$d/out" template="$template") }
EOT
		RECEIVER=("$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" "${RSYSLOG_MODULES[@]}")
		CONFIG=$d/rsyslog.conf ;;
	esac
	say "# $server → $output: $(cut -d' ' -f1-3 /proc/loadavg) load; config $CONFIG:"
	sed 's/^/#   /' "$CONFIG" >>"$OUT"
	local start pid t0 lines mtime t1 secs cpu
	start=$EPOCHREALTIME
	"${RECEIVER[@]}" 2>"$d/stderr" &
	pid=$!
	t0=$(cpu_ticks "$pid")
	read -r lines mtime < <(wait_output "$d/out" "$N" "$STALL" "$TIMEOUT")
	t1=$(cpu_ticks "$pid")
	stop_receiver "$pid"
	secs=$(awk -v a="$start" -v b="$mtime" 'BEGIN{printf "%.3f", b - a}')
	cpu=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$lines" 'BEGIN{printf "%.2f", n ? t / hz * 1e6 / n : 0}')
	say "$server $output lines=$lines seconds=$secs lines_per_s=$(awk -v n="$lines" -v s="$secs" 'BEGIN{printf "%.0f", n / s}') cpu_us_per_line=$cpu"
	rm -rf "$d"
}

for server in "${SERVERS[@]}"; do
	OUT=$RESULTS/file-$server.txt
	: >"$OUT"
	machine_header
	[[ $server == rsyslog ]] && say "# rsyslog run: $RSYSLOGD, $("$RSYSLOGD" -v 2>/dev/null | head -1)"
	say "# input: $IN ($N lines, $(stat -c %s "$IN") bytes)"
	outputs=$OUTPUTS
	[[ $server == flowgo ]] && outputs=$FLOWGO_OUTPUTS
	for output in $outputs; do
		for _ in $(seq "$REPS"); do
			run "$server" "$output"
		done
	done
done
