#!/usr/bin/env bash
# End-to-end latency (issue 15): flowgo-loadgen sends RFC 5424 lines over one
# TCP connection at a steady rate, each stamped with its send time
# (-latency), to a collector whose output the load generator reads back:
# it tails the output file, listens as the TLS output's GELF server, or
# consumes the Kafka topic, and reports p50, p99 and max of receive − send.
#
#   bench/latency.sh [SERVER...]    SERVER: flowgo, rsyslog (default: both), or
#                                   flowgo-NAME: $BENCH_WORK/bin/flowgo-NAME (an older build)
#
# Outputs (OUTPUTS):
#   file      GELF file, default settings
#   filebuf   GELF file with file_buffer_size = 1048576 (rsyslog: omfile
#             ioBufferSize="1m", with its default flushOnTXEnd)
#   kafka     GELF to Kafka, lz4, acks -1, a standalone kfaked, 3 partitions
#   tls       GELF over TLS, NUL-framed (rsyslog: omfwd with the GnuTLS
#             driver, TCP_FrameDelimiter 0)
#   tlsasync  flowgo's tls_async = true (no rsyslog counterpart)
#
# Environment (defaults in brackets):
#   RATES records/s [10000 100000 500000]; SECONDS_PER_RUN [10]
#   OUTPUTS [file filebuf kafka tls tlsasync]; REPS [3]
#   FULL gelf_full_message for flowgo [true]; FLOWGO (the binary)
#   BENCH_PORT [25514], KAFKA_PORT [29092], SINK_PORT [29601]
#   RESULTS, RESULTS_SUFFIX as for net.sh
#   WRITE_SIZE: the load generator's -write-size (default its own, 256 KiB;
#             under -rate a write carries at most 5 ms of records: 500 at
#             100000 records/s, every 5 ms)
#   PRIO [none]: rt runs the receiver, kfaked and the load generator alike
#             under SCHED_RR (chrt -r 10; needs root), so that other work on
#             a shared machine does not delay them: the latency of the
#             collector rather than of the machine's load. The kernel keeps
#             5% of each CPU for other work (sched_rt_runtime_us); use it
#             only at rates the machine carries (not 500000 on 2 cores).
# Results: $RESULTS/latency$RESULTS_SUFFIX.txt: one line per run, then the
# median (min–max) of each figure per configuration. Each run also says how
# much the machine held it up: rq_wait_s, the seconds the receiver's threads
# were runnable but waited for a CPU (/proc/PID/task/*/schedstat; threads
# that ended during the run are not counted), and sleep_late_ms, the latest
# a 1 ms sleep of the load generator woke up. With Kafka, before_ts_p99_ms
# and after_ts_p99_ms cut the latency at the records' timestamp, which the
# producer sets when it builds their record batch: the collector's part
# (input, queue, output) and the broker's and consumer's.
source "$(dirname "$0")/lib.sh"
self_check

SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(flowgo rsyslog)
RATES=${RATES:-10000 100000 500000}
SECS=${SECONDS_PER_RUN:-10}
OUTPUTS=${OUTPUTS:-file filebuf kafka tls tlsasync}
FULL=${FULL:-true}
KPORT=${KAFKA_PORT:-29092}
SPORT=${SINK_PORT:-29601}
OUT=$RESULTS/latency${RESULTS_SUFFIX:-}.txt
PRIO=${PRIO:-}
PRI=()
case $PRIO in
"" | none) ;;
rt) PRI=(chrt -r 10) ;;
*) echo "PRIO=$PRIO: want rt or none" >&2; exit 2 ;;
esac
if ((${#PRI[@]})) && ! "${PRI[@]}" true; then
	echo "PRIO=rt: chrt failed (root needed)" >&2
	exit 2
fi

[[ -x $BIN/flowgo-loadgen && -x $FLOWGO && -x $BIN/kfaked ]] || { echo "run bench/setup.sh first" >&2; exit 2; }
[[ -s $CERTS/server.pem ]] || { echo "run bench/setup.sh first (certificates)" >&2; exit 2; }

# configure SERVER OUTPUT DIR: the receiver's config, RECEIVER and SINK.
configure() {
	local server=$1 output=$2 d=$3
	SINK=("file:$d/out")
	case $output in
	kafka) SINK=("kafka:127.0.0.1:$KPORT/logs") ;;
	tls | tlsasync) SINK=("tls:127.0.0.1:$SPORT" -sink-cert "$CERTS/server.pem" -sink-key "$CERTS/server.key") ;;
	esac
	if [[ $server == flowgo* ]]; then
		{
			printf '[input]\ntype = "tcp"\nlisten = "127.0.0.1:%s"\nformat = "rfc5424"\nframing = "line"\n\n' "$PORT"
			printf '[output]\nformat = "gelf"\n'
			[[ $FULL == true ]] || printf 'gelf_full_message = %s\n' "$FULL"
			case $output in
			file) printf 'type = "file"\nfile_path = "%s/out"\n' "$d" ;;
			filebuf) printf 'type = "file"\nfile_path = "%s/out"\nfile_buffer_size = 1048576\n' "$d" ;;
			kafka) printf 'type = "kafka"\nkafka_brokers = ["127.0.0.1:%s"]\nkafka_topic = "logs"\nkafka_acks = -1\nkafka_compression = "lz4"\n' "$KPORT" ;;
			tls) printf 'type = "tls"\nconnect = ["127.0.0.1:%s"]\ntls_ca_file = "%s/ca.pem"\n' "$SPORT" "$CERTS" ;;
			tlsasync) printf 'type = "tls"\nconnect = ["127.0.0.1:%s"]\ntls_ca_file = "%s/ca.pem"\ntls_async = true\n' "$SPORT" "$CERTS" ;;
			esac
		} >"$d/flowgo.toml"
		RECEIVER=("$FLOWGO" run -c "$d/flowgo.toml")
		[[ $server == flowgo-* ]] && RECEIVER[0]=$BIN/$server
		CONFIG=$d/flowgo.toml
		return 0
	fi
	[[ $output == tlsasync ]] && return 1 # no rsyslog counterpart
	{
		echo "global(workDirectory=\"$d\" maxMessageSize=\"64k\" defaultNetstreamDriverCAFile=\"$CERTS/ca.pem\")"
		echo 'module(load="imtcp" maxSessions="1000")'
		[[ $output == kafka ]] && echo 'module(load="omkafka")'
		echo "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$PORT\" ruleset=\"bench\")"
		gelf_template
		echo 'ruleset(name="bench") {'
		case $output in
		file) echo "  action(type=\"omfile\" file=\"$d/out\" template=\"gelf\")" ;;
		filebuf) echo "  action(type=\"omfile\" file=\"$d/out\" template=\"gelf\" ioBufferSize=\"1m\")" ;;
		kafka) echo "  action(type=\"omkafka\" broker=[\"127.0.0.1:$KPORT\"] topic=\"logs\" template=\"gelf\" partitions.auto=\"on\""
			echo '         confParam=["compression.codec=lz4"] topicConfParam=["acks=-1"])' ;;
		tls) echo "  action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$SPORT\" protocol=\"tcp\" template=\"gelf\""
			echo '         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="anon" gnutlsPriorityString="NORMAL"'
			echo '         TCP_Framing="traditional" TCP_FrameDelimiter="0")' ;;
		esac
		echo '}'
	} >"$d/rsyslog.conf"
	RECEIVER=("$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" -M "$RSYSLOG_MODULES")
	CONFIG=$d/rsyslog.conf
}

# rq_wait_ms PID: the milliseconds the process's threads were runnable but
# waited for a CPU.
rq_wait_ms() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{w += $2} END {printf "%d", w / 1e6}'; }

declare -A P50 P99 MAX CPU WAIT NAMES
run_one() { # SERVER OUTPUT RATE REP
	local server=$1 output=$2 rate=$3 rep=$4
	local name="$server-$output-$rate"
	[[ $server == flowgo* && $FULL == false ]] && name+="-short"
	local d=$WORK/run/latency-$name-$rep
	rm -rf "$d" && mkdir -p "$d"
	configure "$server" "$output" "$d" || return 0
	local lg=("${PRI[@]}" "$BIN/flowgo-loadgen" -addr "127.0.0.1:$PORT" -rate "$rate" -d "${SECS}s")
	[[ -n ${WRITE_SIZE:-} ]] && lg+=(-write-size "$WRITE_SIZE")
	lg+=(-latency "${SINK[@]}")
	if ((rep == 1)); then
		say ""
		say "## $name"
		sed 's/^/#   /' "$CONFIG" | tee -a "$OUT"
		show "${RECEIVER[@]}"
		show "${lg[@]}"
	fi
	local kp=
	if [[ $output == kafka ]]; then
		wait_port_free "$KPORT"
		"${PRI[@]}" "$BIN/kfaked" -port "$KPORT" -topic logs -partitions 3 >"$d/kfaked.log" 2>&1 &
		kp=$!
		wait_listen tcp "$KPORT" "$kp" || { say "run=$rep $name failed: kfaked did not start"; return 0; }
	fi
	wait_port_free "$PORT"
	"${PRI[@]}" "${RECEIVER[@]}" >"$d/receiver.log" 2>&1 &
	local pid=$!
	if ! wait_listen tcp "$PORT" "$pid"; then
		say "run=$rep $name failed: the receiver did not listen: $(head -c 300 "$d/receiver.log")"
		stop_receiver "$pid"
		[[ -n $kp ]] && stop_receiver "$kp"
		return 0
	fi
	sleep 0.5
	local load t0 lgout w0
	load=$(cut -d' ' -f1 /proc/loadavg)
	t0=$(cpu_ticks "$pid")
	w0=$(rq_wait_ms "$pid")
	if ! lgout=$("${lg[@]}" 2>>"$d/loadgen.log"); then
		say "run=$rep $name failed: $(tail -1 "$d/loadgen.log"); receiver: $(head -c 300 "$d/receiver.log")"
	fi
	local t1 w1
	t1=$(cpu_ticks "$pid")
	w1=$(rq_wait_ms "$pid")
	stop_receiver "$pid"
	[[ -n $kp ]] && stop_receiver "$kp"
	rm -f "$d/out"
	[[ -n $lgout ]] || return 0
	local n p50 p99 mx c
	n=$(kv lat_records "$lgout")
	p50=$(kv lat_p50_ms "$lgout")
	p99=$(kv lat_p99_ms "$lgout")
	mx=$(kv lat_max_ms "$lgout")
	c=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$n" 'BEGIN{printf "%.2f", (n > 0 ? t/hz/n*1e6 : 0)}')
	local wait extra=
	wait=$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.2f", (b - a) / 1000}')
	[[ $output == kafka ]] && extra=" before_ts_p99_ms=$(kv lat_before_ts_p99_ms "$lgout") after_ts_p99_ms=$(kv lat_after_ts_p99_ms "$lgout")"
	say "run=$rep $name load1=$load sent=$(kv records "$lgout") read_back=$n offered_per_s=$(kv records_per_s "$lgout") p50_ms=$p50 p99_ms=$p99 max_ms=$mx cpu_us_per_record=$c rq_wait_s=$wait sleep_late_ms=$(kv lat_sleep_late_ms "$lgout")$extra"
	P50[$name]+="$p50 "
	P99[$name]+="$p99 "
	MAX[$name]+="$mx "
	CPU[$name]+="$c "
	WAIT[$name]+="$wait "
	NAMES[$name]=1
}

: >"$OUT"
say "# bench/latency.sh ${SERVERS[*]}: RATES=$RATES SECONDS_PER_RUN=$SECS OUTPUTS=$OUTPUTS REPS=$REPS FULL=$FULL PRIO=${PRIO:-none} WRITE_SIZE=${WRITE_SIZE:-default}"
machine_header
for rep in $(seq "$REPS"); do
	for rate in $RATES; do
		for output in $OUTPUTS; do
			for server in "${SERVERS[@]}"; do
				run_one "$server" "$output" "$rate" "$rep"
			done
		done
	done
done
say ""
for name in $(printf '%s\n' "${!NAMES[@]}" | sort -t- -k3,3n -k2,2 -k1,1); do
	# shellcheck disable=SC2086
	say "= $name: p50 ms $(stats ${P50[$name]}), p99 ms $(stats ${P99[$name]}), max ms $(stats ${MAX[$name]}), CPU µs/record $(stats ${CPU[$name]}), rq_wait s $(stats ${WAIT[$name]})"
done
