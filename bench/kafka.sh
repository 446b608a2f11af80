#!/usr/bin/env bash
# TCP RFC 5424 → GELF → Kafka, flowgo against rsyslog's omkafka (issue 15):
#
#   bench/kafka.sh [SERVER...]      SERVER: flowgo, rsyslog (default: both),
#                                   or flowgo-NAME: flowgo run from $BENCH_WORK/bin/flowgo-NAME
#                                   (an older build, for a before/after in one run)
#
# Each run starts a fresh standalone broker (internal/kfaked, franz-go's kfake
# as a process of its own) with a topic of 3 partitions, then the receiver,
# then flowgo-loadgen sends N records over one TCP connection and polls the
# topic's end offsets every 5 ms (-kafka-wait) until they grew by N. The
# run ends at the poll that saw the last record: records/s = N / (that time
# − the first record sent); CPU µs/record = the receiver's user+sys CPU over
# the run / N (all its threads; librdkafka's too); kfaked's CPU is reported
# apart. Repetitions are interleaved: run 1 of every configuration, then
# run 2, so that a busy neighbour hits them alike.
#
# Environment (defaults in brackets):
#   N         records per run [500000]
#   CODECS    kafka_compression / compression.codec [lz4]
#   ACKS      kafka_acks / acks [-1]
#   FULL      gelf_full_message for flowgo: true, false [true]
#   FLOWGO_KEYS extra [output] lines for flowgo, e.g. 'kafka_threads = 2'
#   BLACKHOLE 1: kfaked -blackhole (acknowledges, stores nothing) [0]
#   REPS [3]; BENCH_PORT [25514]; KAFKA_PORT [29092]
#   FLOWGO    the flowgo binary [$BENCH_WORK/bin/flowgo]
#   RSYSLOGD, RSYSLOG_MODULES: rsyslogd and a module directory with omkafka
#             (Debian rsyslog-kafka) [setup.sh's, else the system's]
#   RESULTS, RESULTS_SUFFIX as for net.sh
# Results: $RESULTS/kafka$RESULTS_SUFFIX.txt, one line per run, then the
# median (min–max) per configuration.
source "$(dirname "$0")/lib.sh"
self_check

SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(flowgo rsyslog)
N=${N:-500000}
CODECS=${CODECS:-lz4}
ACKS=${ACKS:-"-1"}
FULL=${FULL:-true}
KPORT=${KAFKA_PORT:-29092}
OUT=$RESULTS/kafka${RESULTS_SUFFIX:-}.txt

[[ -x $BIN/flowgo-loadgen && -x $FLOWGO && -x $BIN/kfaked ]] || { echo "run bench/setup.sh first" >&2; exit 2; }
if [[ " ${SERVERS[*]} " == *" rsyslog "* && ! -e $RSYSLOG_MODULES/omkafka.so ]]; then
	echo "rsyslog's omkafka is missing: apt-get install rsyslog-kafka (or set RSYSLOGD and RSYSLOG_MODULES)" >&2
	exit 2
fi

# config_flowgo BINARY DIR CODEC ACKS FULL
config_flowgo() {
	local bin=$1 d=$2 codec=$3 acks=$4 full=$5
	cat >"$d/flowgo.toml" <<EOT
[input]
type = "tcp"
listen = "127.0.0.1:$PORT"
format = "rfc5424"
framing = "line"

[output]
type = "kafka"
format = "gelf"
$([[ $full == true ]] || echo "gelf_full_message = $full")
kafka_brokers = ["127.0.0.1:$KPORT"]
kafka_topic = "logs"
kafka_acks = $acks
kafka_compression = "$codec"
${FLOWGO_KEYS:-}
EOT
	RECEIVER=("$bin" run -c "$d/flowgo.toml")
	CONFIG=$d/flowgo.toml
}

# config_rsyslog DIR CODEC ACKS: imtcp, a GELF-like JSON template with
# full_message (the raw line, as flowgo's), and omkafka with librdkafka's
# partitioner spreading keyless messages over the 3 partitions.
config_rsyslog() {
	local d=$1 codec=$2 acks=$3
	cat >"$d/rsyslog.conf" <<EOT
global(workDirectory="$d" maxMessageSize="64k")
module(load="imtcp" maxSessions="1000")
module(load="omkafka")
input(type="imtcp" address="127.0.0.1" port="$PORT" ruleset="bench")
$(gelf_template)
ruleset(name="bench") {
  action(type="omkafka" broker=["127.0.0.1:$KPORT"] topic="logs" template="gelf" partitions.auto="on"
         confParam=["compression.codec=$codec"] topicConfParam=["acks=$acks"])
}
EOT
	RECEIVER=("$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" -M "$RSYSLOG_MODULES")
	CONFIG=$d/rsyslog.conf
}

# start_broker DIR: a fresh kfaked; sets KFAKED to its pid.
start_broker() {
	local d=$1 args=(-port "$KPORT" -topic logs -partitions 3)
	[[ ${BLACKHOLE:-0} == 1 ]] && args+=(-blackhole)
	wait_port_free "$KPORT"
	"$BIN/kfaked" "${args[@]}" >"$d/kfaked.log" 2>&1 &
	KFAKED=$!
	wait_listen tcp "$KPORT" "$KFAKED"
}

declare -A RPS CPU KCPU RSS LOST
run_one() { # SERVER CODEC ACKS FULL REP
	local server=$1 codec=$2 acks=$3 full=$4 rep=$5
	local name="$server-$codec-acks$acks"
	[[ $server == flowgo* && $full == false ]] && name+="-short"
	local d=$WORK/run/kafka-$name-$rep
	rm -rf "$d" && mkdir -p "$d"
	case $server in
	flowgo) config_flowgo "$FLOWGO" "$d" "$codec" "$acks" "$full" ;;
	flowgo-*) config_flowgo "$BIN/$server" "$d" "$codec" "$acks" "$full" ;;
	rsyslog) config_rsyslog "$d" "$codec" "$acks" ;;
	esac
	local lg=("$BIN/flowgo-loadgen" -addr "127.0.0.1:$PORT" -n "$N" -kafka-wait "127.0.0.1:$KPORT/logs")
	if ((rep == 1)); then
		say ""
		say "## $name"
		sed 's/^/#   /' "$CONFIG" | tee -a "$OUT"
		show "$BIN/kfaked" -port "$KPORT" -topic logs -partitions 3 "$([[ ${BLACKHOLE:-0} == 1 ]] && echo -blackhole)"
		show "${RECEIVER[@]}"
		show "${lg[@]}"
	fi
	start_broker "$d" || { say "run=$rep $name failed: kfaked did not start"; return; }
	wait_port_free "$PORT"
	"${RECEIVER[@]}" >"$d/receiver.log" 2>&1 &
	local pid=$!
	if ! wait_listen tcp "$PORT" "$pid"; then
		say "run=$rep $name failed: the receiver did not listen: $(head -c 300 "$d/receiver.log")"
		stop_receiver "$pid"; stop_receiver "$KFAKED"
		return
	fi
	sleep 0.5
	local load t0 k0 lgout
	load=$(cut -d' ' -f1 /proc/loadavg)
	t0=$(cpu_ticks "$pid")
	k0=$(cpu_ticks "$KFAKED")
	if ! lgout=$("${lg[@]}" 2>>"$d/loadgen.log"); then
		say "run=$rep $name failed: $(tail -1 "$d/loadgen.log"); receiver: $(head -c 300 "$d/receiver.log")"
		stop_receiver "$pid"; stop_receiver "$KFAKED"
		return
	fi
	local t1 k1 peak
	t1=$(cpu_ticks "$pid")
	k1=$(cpu_ticks "$KFAKED")
	peak=$(peak_rss_kb "$pid")
	stop_receiver "$pid"
	stop_receiver "$KFAKED"
	local sent stored start done_ secs r c kc m
	sent=$(kv records "$lgout")
	stored=$(kv stored "$lgout")
	start=$(kv start_unix "$lgout")
	done_=$(kv done_unix "$lgout")
	secs=$(awk -v a="$start" -v b="$done_" 'BEGIN{printf "%.3f", b-a}')
	r=$(awk -v n="$stored" -v s="$secs" 'BEGIN{printf "%.0f", (s > 0 ? n/s : 0)}')
	c=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$stored" 'BEGIN{printf "%.2f", (n > 0 ? t/hz/n*1e6 : 0)}')
	kc=$(awk -v t="$((k1 - k0))" -v hz="$CLK_TCK" -v n="$stored" 'BEGIN{printf "%.2f", (n > 0 ? t/hz/n*1e6 : 0)}')
	m=$(awk -v k="$peak" 'BEGIN{printf "%.1f", k/1024}')
	say "run=$rep $name load1=$load sent=$sent stored=$stored lost=$((sent - stored)) seconds=$secs records_per_s=$r cpu_us_per_record=$c kfaked_cpu_us_per_record=$kc peak_rss_mb=$m"
	RPS[$name]+="$r "
	CPU[$name]+="$c "
	KCPU[$name]+="$kc "
	RSS[$name]+="$m "
	LOST[$name]=$((${LOST[$name]:-0} + sent - stored))
	NAMES[$name]=1
}

: >"$OUT"
say "# bench/kafka.sh ${SERVERS[*]}: N=$N REPS=$REPS CODECS=$CODECS ACKS=$ACKS FULL=$FULL BLACKHOLE=${BLACKHOLE:-0} FLOWGO_KEYS=${FLOWGO_KEYS:-}"
machine_header
declare -A NAMES
for rep in $(seq "$REPS"); do
	for codec in $CODECS; do
		for acks in $ACKS; do
			for server in "${SERVERS[@]}"; do
				if [[ $server == flowgo* ]]; then
					for full in $FULL; do
						# An older build may not know gelf_full_message.
						[[ $server == flowgo-* && $full != true ]] && continue
						run_one "$server" "$codec" "$acks" "$full" "$rep"
					done
				else
					run_one "$server" "$codec" "$acks" true "$rep"
				fi
			done
		done
	done
done
say ""
for name in $(printf '%s\n' "${!NAMES[@]}" | sort); do
	# shellcheck disable=SC2086
	say "= $name: records/s $(stats ${RPS[$name]}), CPU µs/record $(stats ${CPU[$name]}), kfaked CPU µs/record $(stats ${KCPU[$name]}), peak RSS MB $(stats ${RSS[$name]}), lost ${LOST[$name]}"
done
