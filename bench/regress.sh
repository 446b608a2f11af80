#!/usr/bin/env bash
# Before/after in one run: two flowgo builds, interleaved, on the TCP → file
# (default and file_buffer_size = 1048576), TLS → file and pipe benchmarks,
# so that a change shows no regression elsewhere (issue 15):
#
#   bench/regress.sh OLD_FLOWGO NEW_FLOWGO
#
# Each round runs net.sh (REPS=1) for each build in turn, then pipe.sh; ROUNDS
# rounds [3]. N [3000000] records per network run; PIPE_SIZE [500MB].
# Results: $RESULTS/net-flowgo-{tcp,tls}-regress-{old,new}-ROUND.txt and
# pipe-regress-{old,new}-ROUND.txt; the summary lines are printed at the end.
source "$(dirname "$0")/lib.sh"
(($# == 2)) || { echo "usage: bench/regress.sh OLD_FLOWGO NEW_FLOWGO" >&2; exit 2; }
old=$1 new=$2
export N=${N:-3000000} CONNS=${CONNS:-1} FRAMINGS=${FRAMINGS:-line} TLS_VERSIONS=${TLS_VERSIONS:-1.3} REPS=1
for round in $(seq "${ROUNDS:-3}"); do
	for which in old new; do
		bin=$old
		[[ $which == new ]] && bin=$new
		FLOWGO=$bin SUITES="tcp tls" RESULTS_SUFFIX=-regress-$which-$round "$BENCH_DIR/net.sh" flowgo
		FLOWGO=$bin SUITES=tcp FLOWGO_KEYS='file_buffer_size = 1048576' RESULTS_SUFFIX=-regress-buf-$which-$round "$BENCH_DIR/net.sh" flowgo
		FLOWGO=$bin RESULTS_SUFFIX=-regress-$which-$round "$BENCH_DIR/pipe.sh" "${PIPE_SIZE:-500MB}"
	done
done
for which in old new; do
	echo "== $which"
	grep '^= ' "$RESULTS"/net-flowgo-*-regress-"$which"-*.txt "$RESULTS"/net-flowgo-*-regress-buf-"$which"-*.txt "$RESULTS"/pipe-regress-"$which"-*.txt | sort
done
