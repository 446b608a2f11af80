#!/usr/bin/env bash
# Before/after of a disk queue change in one interleaved run: two flowgo
# builds, each with the memory queue, the disk queue with sync = "interval"
# and with sync = "batch", TCP RFC 5424 → GELF file, 1 and 4 connections:
#
#   bench/diskq-ab.sh OLD_FLOWGO NEW_FLOWGO
#
# Each round runs, for each queue in turn, net.sh (REPS=1, CONNS [1 4]) with
# the old build, then the new one (the new one first in even rounds);
# ROUNDS [3] rounds, N [2000000] records per run. Results:
# $RESULTS/net-flowgo-tcp-$NAME-{old,new}-{memory,interval,batch}-ROUND.txt
# (NAME [diskqab]);
# the medians (min–max) per build, queue and connection count are printed
# at the end.
source "$(dirname "$0")/lib.sh"
(($# == 2)) || { echo "usage: bench/diskq-ab.sh OLD_FLOWGO NEW_FLOWGO" >&2; exit 2; }
old=$1 new=$2
export N=${N:-2000000} SUITES=tcp FRAMINGS=line CONNS=${CONNS:-1 4} REPS=1
name=${NAME:-diskqab}
for round in $(seq "${ROUNDS:-3}"); do
	order="old new"
	((round % 2 == 0)) && order="new old"
	for q in memory interval batch; do
		queue=memory
		[[ $q != memory ]] && queue=disk:$q
		for which in $order; do
			bin=$old
			[[ $which == new ]] && bin=$new
			FLOWGO=$bin FLOWGO_QUEUE=$queue RESULTS_SUFFIX=-$name-$which-$q-$round "$BENCH_DIR/net.sh" flowgo
		done
	done
done
# median (min–max) of the numbers on stdin, one a line, scaled by $1.
med() {
	sort -g | awk -v s="$1" '{ v[NR] = $1 / s } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf (s > 1 ? "%.0f k (%.0f–%.0f k)" : "%.2f (%.2f–%.2f)"), m, v[1], v[NR] }'
}
echo
echo "build queue conns: records/s median (min–max), CPU µs/record median (min–max), runs"
for which in old new; do
	for q in memory interval batch; do
		for c in $CONNS; do
			# The runs of this configuration: those after its "## flowgo tcp-line-cC-..." header.
			runs=$(awk -v c="$c" '/^## flowgo/ {on = ($3 ~ "-c" c "-")} on && /^run=/' \
				"$RESULTS"/net-flowgo-tcp-"$name"-"$which"-"$q"-*.txt)
			echo "$which $q c$c: $(grep -o 'records_per_s=[0-9]*' <<<"$runs" | cut -d= -f2 | med 1000)," \
				"$(grep -o 'cpu_us_per_record=[0-9.]*' <<<"$runs" | cut -d= -f2 | med 1), $(grep -c . <<<"$runs")"
		done
	done
done
