#!/usr/bin/env bash
# The rating fit at the paper's scale (112,000 queries x 100 documents x 400 pairs), first on
# 1 thread, then on OMP_NUM_THREADS threads (default 2); then zbench's numpy fixed point and
# scipy on a sample of the same queries, one at a time, on 1 thread (numpy/scipy limited to
# 1 thread). The ratios print same-thread first; every row says its thread counts. Usage:
#   bash dev/bench_zelo.sh [num_queries]
set -eu
cd "$(dirname "$0")/.."
make -s build/bench_zelo
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
sample=$(mktemp /tmp/bench_zelo.XXXXXX)
trap 'rm -f "$sample"' EXIT
# the machine is shared: its load says how much of the cores the fit could get
[ -r /proc/loadavg ] && echo "load average before the fit: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(./build/bench_zelo "${1:-112000}" "$sample" 200)
echo "$out"
rates=$(echo "$out" | sed -n 's/^rates: //p')
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python3 dev/zbench_fixed_point.py "$sample" $rates
[ -r /proc/loadavg ] && echo "load average after the peers: $(cut -d' ' -f1-3 /proc/loadavg)"
