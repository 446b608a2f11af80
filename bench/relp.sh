#!/usr/bin/env bash
# RELP end to end, the receiving side compared: an rsyslogd (the sender)
# reads N RFC 5424 lines from a file (imfile) and forwards them with omrelp
# to the receiver under test on this machine, which writes them to a file:
#
#   flowgo:  relp input -> file output, GELF
#   rsyslog: imrelp -> omfile (RSYSLOG_FileFormat)
#
# Runs alternate between the receivers, REPS times each, in one script run.
# Per run: records/s from the sender's start to the output's last write,
# and the receiver's CPU (user+sys, every thread) per record. The sender
# is the same in both and is usually what limits records/s; CPU per record
# is the receivers' own figure. See lib.sh for the measuring.
#
# Usage: bench/relp.sh
# Environment (defaults in brackets):
#   N        records per run [1000000]
#   WINDOW   omrelp windowSize [1024]; omrelp's default, 128, stalls on its
#            own TCP_CORK (see docs/relp.md) whatever the receiver
#   REPS     runs per receiver [3]; BENCH_PORT [25514]
#   RSYSLOGD the rsyslogd with omrelp and imrelp [/usr/sbin/rsyslogd, from
#            the rsyslog and rsyslog-relp packages; .ci/tools installs them]
#   RESULTS  where the results go [bench/results]
# Results: $RESULTS/relp.txt.
source "$(dirname "$0")/lib.sh"
self_check

N=${N:-1000000}
WINDOW=${WINDOW:-1024}
RSYSLOGD=${RSYSLOGD:-/usr/sbin/rsyslogd}
STALL=2
TIMEOUT=30
OUT=$RESULTS/relp.txt
: >"$OUT"

[[ -x $RSYSLOGD ]] || { echo "$RSYSLOGD missing: install rsyslog and rsyslog-relp (.ci/tools)" >&2; exit 2; }
build
machine_header
say "# rsyslog (sender and imrelp): $("$RSYSLOGD" -v | head -1)"
say "# N=$N WINDOW=$WINDOW REPS=$REPS"

INPUT=$WORK/relp-in.log
if [[ ! -s $INPUT || $(wc -l <"$INPUT") -ne $N ]]; then
	show "$BIN/flowgo-loadgen" -o "$INPUT" -n "$N"
	"$BIN/flowgo-loadgen" -o "$INPUT" -n "$N" 2>/dev/null
fi

# config_sender DIR: rsyslogd reading INPUT from its start, forwarding each
# line as it is (%rawmsg%) over RELP, its action queue in memory.
config_sender() {
	cat >"$1/sender.conf" <<EOT
global(workDirectory="$1" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omrelp")
template(name="raw" type="string" string="%rawmsg%")
input(type="imfile" file="$INPUT" tag="bench" ruleset="fwd" freshStartTail="off")
ruleset(name="fwd") {
	action(type="omrelp" target="127.0.0.1" port="$PORT" template="raw" windowSize="$WINDOW")
}
EOT
	SENDER=("$RSYSLOGD" -n -f "$1/sender.conf" -i "$1/sender.pid")
}

config_receiver() {
	local d=$1 server=$2
	case $server in
	flowgo)
		cat >"$d/flowgo.toml" <<EOT
[input]
type = "relp"
listen = "127.0.0.1:$PORT"
format = "rfc5424"

[output]
type = "file"
file_path = "$d/out"
format = "gelf"
EOT
		RECEIVER=("$BIN/flowgo" run -c "$d/flowgo.toml")
		CONFIG=$d/flowgo.toml ;;
	rsyslog)
		cat >"$d/rsyslog.conf" <<EOT
global(workDirectory="$d" maxMessageSize="64k")
module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="$PORT" ruleset="bench")
ruleset(name="bench") { action(type="omfile" file="$d/out") }
EOT
		RECEIVER=("$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid")
		CONFIG=$d/rsyslog.conf ;;
	esac
}

declare -A RPS CPU
for rep in $(seq "$REPS"); do
	for server in flowgo rsyslog; do
		d=$WORK/run/relp-$server-$rep
		rm -rf "$d" && mkdir -p "$d"
		config_receiver "$d" "$server"
		config_sender "$d"
		if ((rep == 1)); then
			say ""
			say "## $server"
			sed 's/^/#   /' "$CONFIG" | tee -a "$OUT"
			say "#   sender:"
			sed 's/^/#   /' "$d/sender.conf" | tee -a "$OUT"
			show "${RECEIVER[@]}"
			show "${SENDER[@]}"
		fi
		wait_port_free "$PORT"
		"${RECEIVER[@]}" >"$d/receiver.log" 2>&1 &
		pid=$!
		wait_listen tcp "$PORT" "$pid" || { say "$server run=$rep: did not listen: $(head -c 300 "$d/receiver.log")"; stop_receiver "$pid"; continue; }
		sleep 0.5
		load=$(cut -d' ' -f1 /proc/loadavg)
		t0=$(cpu_ticks "$pid")
		start=$EPOCHREALTIME
		"${SENDER[@]}" >"$d/sender.log" 2>&1 &
		spid=$!
		read -r lines mtime < <(wait_output "$d/out" "$N" "$STALL" "$TIMEOUT")
		t1=$(cpu_ticks "$pid")
		stop_receiver "$spid"
		stop_receiver "$pid"
		rps=$(awk -v n="$lines" -v a="$start" -v b="$mtime" 'BEGIN{printf "%.0f", n / (b - a)}')
		us=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$lines" 'BEGIN{printf "%.2f", t / hz / n * 1e6}')
		say "$server run=$rep records=$lines lost=$((N - lines)) records_per_s=$rps cpu_us_per_record=$us load=$load"
		RPS[$server]+="$rps "
		CPU[$server]+="$us "
	done
done

say ""
say "# median (min–max) of $REPS runs; the machine may be shared: see load="
for server in flowgo rsyslog; do
	# shellcheck disable=SC2086
	say "$server: records/s $(stats ${RPS[$server]}), receiver CPU µs/record $(stats ${CPU[$server]})"
done
