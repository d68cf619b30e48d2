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
# The C side runs with its default matrix products (cpu/gemm.c's kernels), then, in a build
# with OpenBLAS, with OpenBLAS's sgemm as the kernel developer's reference: with the
# kernels OpenBLAS picks by itself (or that OPENBLAS_CORETYPE names: this machine's
# environment sets Haswell, i.e. AVX2), and on a CPU with AVX-512 also with its AVX-512
# kernels (OPENBLAS_CORETYPE=SKYLAKEX). The ratio to PyTorch is that of the default build.
set -eu
cd "$(dirname "$0")/.."
make -s build/bench_model
export OMP_NUM_THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
ROUNDS=${ROUNDS:-3}
have_torch=1
python3 -c "import torch, transformers" 2>/dev/null || have_torch=0
have_openblas=1
./build/bench_model 1 openblas >/dev/null 2>&1 || have_openblas=0
avx512=0
kernels="${OPENBLAS_CORETYPE:-chosen by OpenBLAS}"
if [ "$have_openblas" = 1 ] && grep -q -w avx512f /proc/cpuinfo && [ "${kernels,,}" != skylakex ]; then avx512=1; fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(getconf _NPROCESSORS_ONLN) cores)"
for r in $(seq "$ROUNDS"); do
    echo "--- round $r"
    ./build/bench_model "$STEPS" kernels | sed 's/^RESULT c_/RESULT c_kernels_/' | tee -a "$out" | grep -v '^RESULT'
    if [ "$have_openblas" = 1 ]; then
        ./build/bench_model "$STEPS" openblas | sed 's/^RESULT c_/RESULT c_openblas_/' | tee -a "$out" | grep -v '^RESULT'
    fi
    if [ "$avx512" = 1 ]; then
        OPENBLAS_CORETYPE=SKYLAKEX ./build/bench_model "$STEPS" openblas | sed 's/^RESULT c_/RESULT c_skylakex_/' |
            tee -a "$out" | grep -v '^RESULT'
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
    printf '%-40s %9.1f %9.1f %9.2f %9.2f\n' "$1" "$(stat "$2"_train_tokens_per_s median)" "$(stat "$2"_train_tokens_per_s best)" \
        "$(stat "$2"_score_docs_per_s median)" "$(stat "$2"_score_docs_per_s best)"
}
ratio() {  # label, key prefix of the numerator, of the denominator
    for w in median best; do
        awk -v l="$1" -v w="$w" -v a="$(stat "$2"_train_tokens_per_s $w)" -v b="$(stat "$3"_train_tokens_per_s $w)" \
            -v c="$(stat "$2"_score_docs_per_s $w)" -v d="$(stat "$3"_score_docs_per_s $w)" \
            'BEGIN { printf "ratio %s, %-6s: train %.2fx, score %.2fx\n", l, w, a / b, c / d }'
    done
}
printf '%-40s %19s %19s\n' "$ROUNDS rounds, $OMP_NUM_THREADS thread(s)" "train tok/s" "score docs/s"
printf '%-40s %9s %9s %9s %9s\n' "" median best median best
row "C (gemm.c, $(./build/bench_model 1 kernels | sed -n 's/^matrix products: gemm.c, //p'))" c_kernels
if [ "$have_openblas" = 1 ]; then row "C with OpenBLAS (kernels: $kernels)" c_openblas; fi
if [ "$avx512" = 1 ]; then row "C with OpenBLAS (SKYLAKEX kernels)" c_skylakex; fi
if [ "$have_torch" = 1 ]; then
    row "PyTorch" torch
    ratio "C / PyTorch" c_kernels torch
else
    echo "PyTorch: not installed here, no comparison"
fi
if [ "$have_openblas" = 1 ]; then ratio "gemm.c / OpenBLAS ($kernels)" c_kernels c_openblas; fi
if [ "$avx512" = 1 ]; then ratio "gemm.c / OpenBLAS (SKYLAKEX)" c_kernels c_skylakex; fi
