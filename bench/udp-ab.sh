#!/usr/bin/env bash
# Interleaved A/B of flowgo builds on a UDP load: what one datagram costs the
# receiver and the load generator, below the rate where anything is lost, so
# that the figure is CPU, not loss. Usage:
#
#   bench/udp-ab.sh ROUNDS FLOWGO_BINARY...
#
# Each round runs every binary once, in the order given, against the same
# paced load. Environment (defaults in brackets): LOADGEN [$BIN/flowgo-loadgen],
# RATE datagrams/s [300000], N datagrams per run [3000000], SOCKETS [4],
# BATCH datagrams per sendmmsg [64], FORMAT flowgo's output format [gelf],
# UDP_RCVBUF flowgo's udp_recv_buffer in bytes [33554432].
# Prints one line per run: the receiver's CPU µs per datagram (user+sys of
# every thread, /proc/PID/stat, from before the load starts to the last
# record written), its context switches (every thread, /proc/PID/task), the
# load generator's user+sys seconds, and the lines written.
source "$(dirname "$0")/lib.sh"
self_check

(($# >= 2)) || { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 2; }
ROUNDS=$1
shift
LOADGEN=${LOADGEN:-$BIN/flowgo-loadgen}
RATE=${RATE:-300000}
N=${N:-3000000}
SOCKETS=${SOCKETS:-4}
BATCH=${BATCH:-64}
FORMAT=${FORMAT:-gelf}
UDP_RCVBUF=${UDP_RCVBUF:-$((32 << 20))}

# ctx_switches PID: voluntary and involuntary context switches of every live thread.
ctx_switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/{n += $2} END{print n}'
}

d=$WORK/run/udp-ab
for round in $(seq "$ROUNDS"); do
	for flowgo in "$@"; do
		rm -rf "$d" && mkdir -p "$d"
		cat >"$d/flowgo.toml" <<EOT
[input]
type = "udp"
listen = "127.0.0.1:$PORT"
format = "rfc5424"
udp_recv_buffer = $UDP_RCVBUF

[output]
type = "file"
file_path = "$d/out"
format = "$FORMAT"
framing = "line"
EOT
		wait_port_free "$PORT"
		"$flowgo" run -c "$d/flowgo.toml" 2>"$d/receiver.log" &
		pid=$!
		wait_listen udp "$PORT" "$pid"
		sleep 0.5
		t0=$(cpu_ticks "$pid")
		s0=$(ctx_switches "$pid")
		lg=$( { /usr/bin/time -f "loadgen_cpu_s=%U+%S" "$LOADGEN" -addr "127.0.0.1:$PORT" -proto udp \
			-c "$SOCKETS" -batch "$BATCH" -rate "$RATE" -n "$N" >/dev/null; } 2>&1 | grep -o 'loadgen_cpu_s=.*')
		read -r lines _ < <(wait_output "$d/out" "$N" 2 4)
		t1=$(cpu_ticks "$pid")
		s1=$(ctx_switches "$pid")
		stop_receiver "$pid"
		awk -v b="$(basename "$flowgo")" -v r="$round" -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$lines" \
			-v cs="$((s1 - s0))" -v lg="$lg" -v sent="$N" \
			'BEGIN{printf "round=%d build=%s cpu_us_per_datagram=%.2f context_switches=%d %s written=%d lost=%d\n",
				r, b, t/hz/n*1e6, cs, lg, n, sent-n}'
		rm -f "$d/out"
	done
done
