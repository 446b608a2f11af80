#!/usr/bin/env bash
# Pipe-mode benchmark: `flowgo pipe --from rfc5424 --to gelf` converting a file
# of RFC 5424 lines (made by flowgo-loadgen -o, every line distinct) into a
# file, for a small and a large input, to show the rate and that memory does
# not grow with the input. Usage:
#
#   bench/pipe.sh [SIZE...]      SIZE in MB or GB (default: 5MB 500MB 5GB)
#
# Each run is timed by /usr/bin/time -v: wall clock, user+sys CPU and the
# maximum resident set. The input is read once before the runs so that it
# comes from the page cache (the figure is flowgo's, not the disk's); the
# output goes to a file on $BENCH_WORK and is deleted after each run. A 5 GB
# input needs about 5 GB for the input and 7 GB for the output.
# Environment: REPS [3], BENCH_WORK [/var/tmp/flowgo-bench], RESULTS.
# Results: bench/results/pipe.txt.
source "$(dirname "$0")/lib.sh"
self_check

SIZES=("$@")
((${#SIZES[@]})) || SIZES=(5MB 500MB 5GB)
OUT=$RESULTS/pipe${RESULTS_SUFFIX:-}.txt
: >"$OUT"
[[ -x $FLOWGO ]] || { echo "run bench/setup.sh first" >&2; exit 2; }
say "# bench/pipe.sh ${SIZES[*]}: REPS=$REPS"
machine_header
mkdir -p "$WORK/pipe"

# Lines are ~247 bytes on average (flowgo-loadgen's RFC 5424 from
# internal/sample), so SIZE/247 lines make about SIZE bytes.
lines_for() {
	local s=$1
	case $s in
	*GB) echo $((${s%GB} * 1000000000 / 247)) ;;
	*MB) echo $((${s%MB} * 1000000 / 247)) ;;
	*) echo "size $s: want NMB or NGB" >&2; exit 2 ;;
	esac
}

# tv KEY FILE: a value from /usr/bin/time -v's report.
tv() { awk -F': ' -v k="$1" 'index($0, k) {print $2}' "$2" | tail -1; }

for size in "${SIZES[@]}"; do
	n=$(lines_for "$size")
	in=$WORK/pipe/in-$size.log
	if [[ ! -s $in ]] || [[ $(cat "$in.lines" 2>/dev/null) != "$n" ]]; then
		show "$BIN/flowgo-loadgen" -o "$in" -n "$n"
		"$BIN/flowgo-loadgen" -o "$in" -n "$n" 2>&1 | tee -a "$OUT"
		echo "$n" >"$in.lines"
	fi
	bytes=$(stat -c %s "$in")
	avail=$(df -B1 --output=avail "$WORK" | tail -1)
	if ((avail < bytes * 2)); then
		say "# $size: only $((avail / 1000000)) MB free on $WORK for an output of about $((bytes * 3 / 2 / 1000000)) MB; skipped"
		continue
	fi
	cat "$in" >/dev/null # into the page cache
	say ""
	say "## pipe rfc5424 -> gelf, $size input: $n lines, $bytes bytes"
	show "/usr/bin/time -v $FLOWGO pipe --from rfc5424 --to gelf < $in > $WORK/pipe/out.gelf"
	rps=() cpu=() rss=()
	for rep in $(seq "$REPS"); do
		load=$(cut -d' ' -f1 /proc/loadavg)
		rm -f "$WORK/pipe/out.gelf"
		set +e
		/usr/bin/time -v -o "$WORK/pipe/time.txt" "$FLOWGO" pipe --from rfc5424 --to gelf \
			<"$in" >"$WORK/pipe/out.gelf" 2>"$WORK/pipe/stderr.txt"
		code=$?
		set -e
		if ((code != 0)); then
			say "run=$rep exit=$code: $(head -c 300 "$WORK/pipe/stderr.txt")"
			continue
		fi
		out_lines=$(wc -l <"$WORK/pipe/out.gelf")
		wall=$(tv "Elapsed (wall clock) time" "$WORK/pipe/time.txt")
		secs=$(awk -v t="$wall" 'BEGIN{n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s*60 + p[i]; printf "%.3f", s}')
		user=$(tv "User time (seconds)" "$WORK/pipe/time.txt")
		sys=$(tv "System time (seconds)" "$WORK/pipe/time.txt")
		maxrss=$(tv "Maximum resident set size (kbytes)" "$WORK/pipe/time.txt")
		r=$(awk -v n="$out_lines" -v s="$secs" 'BEGIN{printf "%.0f", (s > 0 ? n/s : 0)}')
		c=$(awk -v u="$user" -v s="$sys" -v n="$out_lines" 'BEGIN{printf "%.3f", (n > 0 ? (u+s)/n*1e6 : 0)}')
		m=$(awk -v k="$maxrss" 'BEGIN{printf "%.1f", k/1024}')
		say "run=$rep load1=$load lines_in=$n lines_out=$out_lines lost=$((n - out_lines)) seconds=$secs lines_per_s=$r user_s=$user sys_s=$sys cpu_us_per_line=$c peak_rss_mb=$m out_bytes=$(stat -c %s "$WORK/pipe/out.gelf")"
		rps+=("$r") cpu+=("$c") rss+=("$m")
		rm -f "$WORK/pipe/out.gelf"
	done
	say "= pipe $size: lines/s $(stats "${rps[@]}"), CPU µs/line $(stats "${cpu[@]}"), peak RSS MB $(stats "${rss[@]}")"
done
