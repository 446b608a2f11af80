#!/usr/bin/env bash
# End-to-end network benchmarks: flowgo-loadgen sends RFC 5424 lines to a
# receiver on this machine, which writes them to a file; see lib.sh for how a
# run is measured. Usage:
#
#   bench/net.sh [SERVER...]        SERVER: flowgo, rsyslog, syslog-ng (default: rsyslog syslog-ng)
#
# Environment (defaults in brackets):
#   SUITES   which runs: tcp, tls, udp [tcp tls udp]
#   N        records per TCP or TLS run [5000000]; N_UDP per UDP run [2000000]
#   CONNS    TCP/TLS connection counts [1 4]
#   UDP_RUNS UDP senders as SOCKETS:BATCH[:RATE], BATCH datagrams per sendmmsg
#            (1: a plain write each), RATE datagrams/s offered in all (none:
#            as fast as the sockets go) [1:1 1:64 4:64 4:64:400000]
#   FRAMINGS TCP framings: line, syslen (RFC 6587 octet counting) [line syslen]
#   TCP_RATE records/s offered in all by the TCP senders (none: as fast as they go)
#   TLS_VERSIONS [1.2 1.3]
#   OUTPUTS  baselines' output formats: file (the daemon's default file
#            format), json [file json for tcp; file for tls and udp];
#   FLOWGO_OUTPUTS flowgo's output formats, any encoder: gelf, or rfc5424
#            for the plain-file comparison with the baselines' file [gelf]
#   UDP_RCVBUF every UDP receiver's socket receive buffer, bytes [33554432]
#   FLOWGO_KEYS extra [output] lines for flowgo, e.g. 'file_buffer_size = 1048576'
#   FLOWGO   the flowgo binary [$BENCH_WORK/bin/flowgo]
#   FLOWGO_QUEUE flowgo's [queue]: memory, or disk:SYNC (SYNC: interval,
#            batch, none; the queue in the run's directory) [memory]
#   RSYSLOG_QUEUE rsyslog's action queue: direct (none), or da: a
#            disk-assisted LinkedList queue (queue.filename,
#            queue.saveOnShutdown="on") [direct]
#   REPS     repetitions of each run [3]; BENCH_PORT [25514]
#   RESULTS  where the results go [bench/results]; RESULTS_SUFFIX is added
#            to the file names
# Results: $RESULTS/net-SERVER-SUITE.txt, one line per run, then the
# median (min–max) per configuration.
source "$(dirname "$0")/lib.sh"
self_check

SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(rsyslog syslog-ng)
SUITES=${SUITES:-tcp tls udp}
N=${N:-5000000}
N_UDP=${N_UDP:-2000000}
CONNS=${CONNS:-1 4}
UDP_RUNS=${UDP_RUNS:-1:1 1:64 4:64 4:64:400000}
FRAMINGS=${FRAMINGS:-line syslen}
TLS_VERSIONS=${TLS_VERSIONS:-1.2 1.3}
STALL=2      # seconds without growth before the output is counted
TIMEOUT=20   # seconds without growth after which TCP records count as lost
UDP_TIMEOUT=4
UDP_RCVBUF=${UDP_RCVBUF:-$((32 << 20))}
UDP_RATE=

[[ -x $BIN/flowgo-loadgen ]] || { echo "run bench/setup.sh first" >&2; exit 2; }
[[ -s $CERTS/server.pem ]] || { echo "run bench/setup.sh first (certificates)" >&2; exit 2; }

# config_flowgo DIR PROTO FRAMING FORMAT: flowgo's config, with the documented keys.
config_flowgo() {
	local d=$1 proto=$2 framing=$3 format=$4
	{
		echo '[input]'
		echo "type = \"$proto\""
		echo "listen = \"127.0.0.1:$PORT\""
		echo 'format = "rfc5424"'
		case $proto in
		tcp) echo "framing = \"$framing\"" ;;
		tls) echo "framing = \"$framing\""
			echo "tls_cert = \"$CERTS/server.pem\""
			echo "tls_key = \"$CERTS/server.key\"" ;;
		udp) echo "udp_recv_buffer = $UDP_RCVBUF" ;;
		esac
		echo
		echo '[output]'
		echo 'type = "file"'
		echo "file_path = \"$d/out\""
		echo "format = \"$format\""
		echo 'framing = "line"'
		[[ -n ${FLOWGO_KEYS:-} ]] && echo "$FLOWGO_KEYS"
		if [[ ${FLOWGO_QUEUE:-memory} == disk:* ]]; then
			echo
			echo '[queue]'
			echo 'type = "disk"'
			echo "path = \"$d/queue\""
			echo "sync = \"${FLOWGO_QUEUE#disk:}\""
		fi
	} >"$d/flowgo.toml"
	RECEIVER=("$FLOWGO" run -c "$d/flowgo.toml")
	CONFIG=$d/flowgo.toml
}

# config_rsyslog DIR PROTO OUTPUT: rsyslog listening with imtcp (octet
# counting is detected per frame), imtcp over GnuTLS, or imudp, into omfile.
config_rsyslog() {
	local d=$1 proto=$2 output=$3 template=RSYSLOG_FileFormat
	[[ $output == json ]] && template=json
	{
		if [[ $proto == tls ]]; then
			echo "global(workDirectory=\"$d\" maxMessageSize=\"64k\""
			echo "  defaultNetstreamDriverCAFile=\"$CERTS/ca.pem\""
			echo "  defaultNetstreamDriverCertFile=\"$CERTS/server.pem\""
			echo "  defaultNetstreamDriverKeyFile=\"$CERTS/server.key\")"
			# rsyslog's own GnuTLS priority string offers no TLS 1.3 suite
			# ("No supported cipher suites"); GnuTLS's NORMAL does.
			echo 'module(load="imtcp" maxSessions="1000" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon" gnutlsPriorityString="NORMAL")'
			echo "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$PORT\" ruleset=\"bench\")"
		elif [[ $proto == tcp ]]; then
			echo "global(workDirectory=\"$d\" maxMessageSize=\"64k\")"
			echo 'module(load="imtcp" maxSessions="1000")'
			echo "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$PORT\" ruleset=\"bench\")"
		else
			echo "global(workDirectory=\"$d\" maxMessageSize=\"64k\")"
			echo 'module(load="imudp" threads="1" batchSize="128")'
			echo "input(type=\"imudp\" address=\"127.0.0.1\" port=\"$PORT\" ruleset=\"bench\" rcvBufSize=\"$UDP_RCVBUF\")"
		fi
		cat <<'EOT'
# A GELF-like JSON object per line (rsyslog does not split structured data
# into fields without mmpstrucdata; it is kept as one string here).
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
EOT
		local queue=''
		if [[ ${RSYSLOG_QUEUE:-direct} == da ]]; then
			queue=" queue.type=\"LinkedList\" queue.filename=\"q\" queue.saveOnShutdown=\"on\""
		fi
		echo "ruleset(name=\"bench\") { action(type=\"omfile\" file=\"$d/out\" template=\"$template\"$queue) }"
	} >"$d/rsyslog.conf"
	RECEIVER=("$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" -M "$RSYSLOG_MODULES")
	CONFIG=$d/rsyslog.conf
}

# config_syslogng DIR PROTO FRAMING OUTPUT: network() reads newline-framed
# RFC 5424 (flags(syslog-protocol)); syslog() reads octet-counted frames.
config_syslogng() {
	local d=$1 proto=$2 framing=$3 output=$4 template='' source
	[[ $output == json ]] && template='template("$(format-json --scope rfc5424 --scope sdata)\n")'
	local common="ip(\"127.0.0.1\") port($PORT)"
	case $proto in
	tcp) if [[ $framing == syslen ]]; then
			source="syslog($common transport(\"tcp\") max-connections(10) log-iw-size(100000))"
		else
			source="network($common transport(\"tcp\") flags(syslog-protocol) max-connections(10) log-iw-size(100000))"
		fi ;;
	tls) source="network($common transport(\"tls\") flags(syslog-protocol) max-connections(10) log-iw-size(100000)
		tls(key-file(\"$CERTS/server.key\") cert-file(\"$CERTS/server.pem\") peer-verify(optional-untrusted)))" ;;
	udp) source="network($common transport(\"udp\") flags(syslog-protocol) so-rcvbuf($UDP_RCVBUF))" ;;
	esac
	cat >"$d/syslog-ng.conf" <<EOT
@version: 3.38
options { threaded(yes); use-dns(no); use-fqdn(no); keep-hostname(yes); chain-hostnames(no);
          log-msg-size(65536); log-fifo-size(200000); };
source s_bench { $source; };
destination d_bench { file("$d/out" $template); };
log { source(s_bench); destination(d_bench); };
EOT
	RECEIVER=(syslog-ng -F --no-caps -f "$d/syslog-ng.conf" -R "$d/persist" -p "$d/pid" -c "$d/ctl")
	CONFIG=$d/syslog-ng.conf
}

# measure SERVER PROTO FRAMING OUTPUT CONNS LOADGEN_ARGS...: REPS runs of one
# configuration, each with a fresh receiver and output file.
measure() {
	local server=$1 proto=$2 framing=$3 output=$4 conns=$5
	shift 5
	local name="$proto"
	[[ $proto == tcp ]] && name+="-$framing"
	[[ $proto == tls ]] && name+="-$TLS_VERSION"
	name+="-c$conns"
	[[ $proto == udp ]] && name+="-b$UDP_BATCH"
	[[ $proto == udp && -n $UDP_RATE ]] && name+="-r$UDP_RATE"
	name+="-$output"
	[[ $proto != udp && -n ${TCP_RATE:-} ]] && name+="-r$TCP_RATE"
	[[ $server == flowgo && ${FLOWGO_QUEUE:-memory} != memory ]] && name+="-queue-${FLOWGO_QUEUE/:/-}"
	[[ $server == rsyslog && ${RSYSLOG_QUEUE:-direct} != direct ]] && name+="-queue-$RSYSLOG_QUEUE"
	local rps=() cpu=() rss=() lost_total=0 rep
	for rep in $(seq "$REPS"); do
		local d=$WORK/run/$server-$name-$rep
		rm -rf "$d" && mkdir -p "$d"
		case $server in
		flowgo) config_flowgo "$d" "$proto" "$framing" "$output" ;;
		rsyslog) config_rsyslog "$d" "$proto" "$output" ;;
		syslog-ng) config_syslogng "$d" "$proto" "$framing" "$output" ;;
		esac
		local lg=("$BIN/flowgo-loadgen" -addr "127.0.0.1:$PORT" -proto "$proto" -c "$conns" "$@")
		if ((rep == 1)); then
			say ""
			say "## $server $name"
			sed 's/^/#   /' "$CONFIG" | tee -a "$OUT"
			show "${RECEIVER[@]}"
			show "${lg[@]}"
		fi
		wait_port_free "$PORT"
		"${RECEIVER[@]}" >"$d/receiver.log" 2>&1 &
		local pid=$!
		if ! wait_listen "$([[ $proto == udp ]] && echo udp || echo tcp)" "$PORT" "$pid"; then
			say "run=$rep failed: the receiver did not listen: $(head -c 300 "$d/receiver.log")"
			stop_receiver "$pid"
			continue
		fi
		sleep 0.5 # let the receiver finish starting (threads, output file)
		local load t0 lgout
		load=$(cut -d' ' -f1 /proc/loadavg)
		t0=$(cpu_ticks "$pid")
		if ! lgout=$("${lg[@]}" 2>>"$d/loadgen.log"); then
			say "run=$rep failed: $(tail -1 "$d/loadgen.log"); receiver: $(head -c 300 "$d/receiver.log")"
			stop_receiver "$pid"
			continue
		fi
		local sent start offered
		sent=$(kv records "$lgout")
		start=$(kv start_unix "$lgout")
		offered=$(kv records_per_s "$lgout")
		local timeout=$TIMEOUT
		[[ $proto == udp ]] && timeout=$UDP_TIMEOUT
		local lines mtime
		read -r lines mtime < <(wait_output "$d/out" "$sent" "$STALL" "$timeout")
		local t1 peak
		t1=$(cpu_ticks "$pid")
		peak=$(peak_rss_kb "$pid")
		stop_receiver "$pid"
		local secs r c m lost
		secs=$(awk -v a="$start" -v b="$mtime" 'BEGIN{printf "%.3f", b-a}')
		r=$(awk -v n="$lines" -v s="$secs" 'BEGIN{printf "%.0f", (s > 0 ? n/s : 0)}')
		c=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$lines" 'BEGIN{printf "%.2f", (n > 0 ? t/hz/n*1e6 : 0)}')
		m=$(awk -v k="$peak" 'BEGIN{printf "%.1f", k/1024}')
		lost=$((sent - lines))
		lost_total=$((lost_total + lost))
		say "run=$rep load1=$load sent=$sent written=$lines lost=$lost seconds=$secs records_per_s=$r cpu_us_per_record=$c cpu_s=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", t/hz}') peak_rss_mb=$m offered_per_s=$offered"
		rps+=("$r")
		cpu+=("$c")
		rss+=("$m")
		rm -f "$d/out" # outputs are GBs; keep configs and logs
	done
	say "= $server $name: records/s $(stats "${rps[@]}"), CPU µs/record $(stats "${cpu[@]}"), peak RSS MB $(stats "${rss[@]}"), lost $lost_total"
	SUMMARY+=("$server $name: records/s $(stats "${rps[@]}"), CPU µs/record $(stats "${cpu[@]}"), peak RSS MB $(stats "${rss[@]}"), lost $lost_total")
}

outputs() { # SERVER SUITE
	if [[ $1 == flowgo ]]; then echo "${FLOWGO_OUTPUTS:-gelf}"; return; fi
	if [[ -n ${OUTPUTS:-} ]]; then echo "$OUTPUTS"; return; fi
	[[ $2 == tcp ]] && echo "file json" || echo file
}

SUMMARY=()
for server in "${SERVERS[@]}"; do
	for suite in $SUITES; do
		OUT=$RESULTS/net-$server-$suite${RESULTS_SUFFIX:-}.txt
		: >"$OUT"
		say "# bench/net.sh $server $suite: N=$N N_UDP=$N_UDP REPS=$REPS; RFC 5424 lines of ~247 bytes from flowgo-loadgen"
		machine_header
		for output in $(outputs "$server" "$suite"); do
			case $suite in
			tcp) for framing in $FRAMINGS; do for c in $CONNS; do
					measure "$server" tcp "$framing" "$output" "$c" -framing "$framing" -n "$N" ${TCP_RATE:+-rate "$TCP_RATE"}
				done; done ;;
			tls) for TLS_VERSION in $TLS_VERSIONS; do for c in $CONNS; do
					measure "$server" tls line "$output" "$c" -tls-version "$TLS_VERSION" -ca "$CERTS/ca.pem" -n "$N"
				done; done ;;
			udp) for run in $UDP_RUNS; do
					IFS=: read -r sockets UDP_BATCH UDP_RATE <<<"$run"
					local_rate=()
					[[ -n $UDP_RATE ]] && local_rate=(-rate "$UDP_RATE")
					measure "$server" udp none "$output" "$sockets" -batch "$UDP_BATCH" "${local_rate[@]}" -n "$N_UDP"
				done ;;
			esac
		done
	done
done
echo
printf '%s\n' "${SUMMARY[@]}"
