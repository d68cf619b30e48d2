#!/usr/bin/env bash
# Speed of model.c (dev/bench_model.c) beside PyTorch doing the same work (dev/bench_model.py)
# on the all-MiniLM-L6-v2 shape, both with THREADS threads (default 2: OMP_NUM_THREADS, and
# torch.set_num_threads): training steps (forward+backward, 16 x 256 tokens, tokens/s)
# and scoring (forward only, 100 documents of 256 tokens, docs/s).
# The two sides run in turns, ROUNDS times (default 3), so that load from other work on
# the machine falls on both alike; each run reports its best step and best scoring batch
# (warm-up excluded), and the median and the best of those over the rounds are printed,
# with the load average before and after: on a shared machine the fastest measurement is
# the least disturbed one, the median says how typical it is. When other work keeps the
# cores busy, threads that wait for each other lose time on both sides, and not alike;
# THREADS=1 compares the work itself.
# OpenBLAS picks its kernels by CPU model (or by OPENBLAS_CORETYPE, which this machine's
# environment sets to Haswell, i.e. AVX2), and releases older than a CPU fall back to AVX2
# kernels; on a CPU with AVX-512 the C side is therefore run twice, with the environment
# as it is and with OPENBLAS_CORETYPE=SKYLAKEX (OpenBLAS's AVX-512 kernels), and both C
# figures are printed.
set -eu
cd "$(dirname "$0")/.."
make -s build/bench_model
export OMP_NUM_THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
ROUNDS=${ROUNDS:-3}
have_torch=1
python3 -c "import torch, transformers" 2>/dev/null || have_torch=0
avx512=0
kernels="${OPENBLAS_CORETYPE:-chosen by OpenBLAS}"
if grep -q -w avx512f /proc/cpuinfo && [ "${kernels,,}" != skylakex ]; then avx512=1; fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(getconf _NPROCESSORS_ONLN) cores)"
for r in $(seq "$ROUNDS"); do
    echo "--- round $r (C with OpenBLAS kernels $kernels$([ "$avx512" = 1 ] && echo ", C with SKYLAKEX kernels"), PyTorch)"
    ./build/bench_model "$STEPS" | sed 's/^RESULT c_/RESULT c_default_/' | tee -a "$out" | grep -v '^RESULT'
    if [ "$avx512" = 1 ]; then
        OPENBLAS_CORETYPE=SKYLAKEX ./build/bench_model "$STEPS" | sed 's/^RESULT c_/RESULT c_avx512_/' | tee -a "$out" | grep -v '^RESULT'
    fi
    if [ "$have_torch" = 1 ]; then python3 dev/bench_model.py "$STEPS" | tee -a "$out" | grep -v '^RESULT'; fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# stat KEY best|median: over the rounds' results named KEY
stat() {
    awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' "$out" | sort -g |
        awk -v w="$2" '{ x[NR] = $1 } END { if (w == "best") print x[NR] + 0;
                                            else print (NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2) + 0 }'
}
row() {  # label, result key prefix
    printf '%-34s %9.1f %9.1f %9.2f %9.2f\n' "$1" "$(stat "$2"_train_tokens_per_s median)" "$(stat "$2"_train_tokens_per_s best)" \
        "$(stat "$2"_score_docs_per_s median)" "$(stat "$2"_score_docs_per_s best)"
}
printf '%-34s %19s %19s\n' "$ROUNDS rounds, $OMP_NUM_THREADS thread(s)" "train tok/s" "score docs/s"
printf '%-34s %9s %9s %9s %9s\n' "" median best median best
row "C (OpenBLAS kernels $kernels)" c_default
if [ "$avx512" = 1 ]; then row "C (OPENBLAS_CORETYPE=SKYLAKEX)" c_avx512; fi
if [ "$have_torch" = 1 ]; then
    row "PyTorch" torch
    for side in default avx512; do  # default: the kernels of the environment
        [ "$side" = avx512 ] && [ "$avx512" = 0 ] && continue
        for w in median best; do
            awk -v s="$side" -v w="$w" -v a="$(stat c_${side}_train_tokens_per_s $w)" -v b="$(stat torch_train_tokens_per_s $w)" \
                -v c="$(stat c_${side}_score_docs_per_s $w)" -v d="$(stat torch_score_docs_per_s $w)" \
                'BEGIN { printf "ratio C (%s kernels) / PyTorch, %-6s: train %.2fx, score %.2fx\n", s, w, a / b, c / d }'
        done
    done
else
    echo "PyTorch: not installed here, no comparison"
fi
