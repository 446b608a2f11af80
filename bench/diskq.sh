#!/usr/bin/env bash
# The disk queue against the memory queue and against rsyslog's
# disk-assisted queue, TCP → file, in one run (issue 10's bars):
#
#   bench/diskq.sh                  # N=3000000 records per run, REPS=3
#
# For each repetition the four receivers run one after the other on the same
# load: flowgo with the memory queue, flowgo with the disk queue (sync =
# "interval", then "batch"), rsyslog with a LinkedList action queue with
# queue.filename and queue.saveOnShutdown="on" (JSON file, the closest to
# flowgo's GELF). Results: bench/results/net-*-tcp-diskq*.txt.
source "$(dirname "$0")/lib.sh"
export N=${N:-3000000} SUITES=tcp FRAMINGS=line CONNS=${CONNS:-1 4} REPS=1
reps=${REPS_DISKQ:-3}
for rep in $(seq "$reps"); do
	FLOWGO_QUEUE=memory RESULTS_SUFFIX=-diskq-mem-$rep "$BENCH_DIR/net.sh" flowgo
	FLOWGO_QUEUE=disk:interval RESULTS_SUFFIX=-diskq-interval-$rep "$BENCH_DIR/net.sh" flowgo
	FLOWGO_QUEUE=disk:batch RESULTS_SUFFIX=-diskq-batch-$rep "$BENCH_DIR/net.sh" flowgo
	RSYSLOG_QUEUE=da OUTPUTS=json RESULTS_SUFFIX=-diskq-da-$rep "$BENCH_DIR/net.sh" rsyslog
done
grep -h '^= ' "$RESULTS"/net-*-tcp-diskq-*.txt | sort
