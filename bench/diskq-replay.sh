#!/usr/bin/env bash
# Replay of a disk queue backlog into a file output: records/s and peak RSS.
#
#   bench/diskq-replay.sh [RECORDS]     # default 20000000 (about 6.4 GB on disk, 5 GB of input)
#
# 1. flowgo-loadgen writes RECORDS RFC 5424 lines (~247 bytes) to a file.
# 2. flowgo reads them from stdin into a disk queue whose output cannot
#    deliver (a TLS output to a closed port): at the end of stdin it waits
#    shutdown_timeout (1 s) and exits, leaving the whole backlog queued.
# 3. flowgo starts again on the same queue with a GELF file output and an
#    empty stdin: the run's time, CPU and peak RSS (/usr/bin/time) measure
#    the replay. The RSS must not grow with the backlog.
source "$(dirname "$0")/lib.sh"
self_check
RECORDS=${1:-20000000}
build
d=$WORK/replay
rm -rf "$d" && mkdir -p "$d"
OUT=$RESULTS/diskq-replay.txt
: >"$OUT"
say "# bench/diskq-replay.sh $RECORDS"
machine_header
show "$BIN/flowgo-loadgen" -o "$d/in.log" -n "$RECORDS"
"$BIN/flowgo-loadgen" -o "$d/in.log" -n "$RECORDS" >/dev/null
cat >"$d/fill.toml" <<EOT
[input]
type = "stdin"
format = "rfc5424"
[output]
type = "tls"
connect = ["127.0.0.1:1"]
format = "gelf"
shutdown_timeout = "1s"
[queue]
type = "disk"
path = "$d/queue"
max_bytes = 17179869184
EOT
sed -e 's|type = "tls"|type = "file"|' -e "s|connect = .*|file_path = \"$d/out.log\"|" -e 's|"1s"|"1h"|' "$d/fill.toml" >"$d/replay.toml"
show "$BIN/flowgo" run -c "$d/fill.toml" "< $d/in.log"
/usr/bin/time -f "fill: %e s, %U user %S sys, peak RSS %M KB" "$BIN/flowgo" run -c "$d/fill.toml" <"$d/in.log" 2>"$d/fill.log" || true
tail -1 "$d/fill.log" | tee -a "$OUT"
rm -f "$d/in.log"
"$BIN/flowgo" queue inspect "$d/queue" | tail -3 | tee -a "$OUT"
show "$BIN/flowgo" run -c "$d/replay.toml" "< /dev/null"
/usr/bin/time -f "replay: %e s, %U user %S sys, peak RSS %M KB" "$BIN/flowgo" run -c "$d/replay.toml" </dev/null 2>"$d/replay.log"
tail -1 "$d/replay.log" | tee -a "$OUT"
written=$(wc -l <"$d/out.log")
secs=$(tail -1 "$d/replay.log" | awk '{print $2}')
say "replayed $written of $RECORDS records: $(awk -v n="$written" -v s="$secs" 'BEGIN{printf "%.0f", n/s}') records/s"
rm -rf "$d/out.log" "$d/queue"
