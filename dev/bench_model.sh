#!/usr/bin/env bash
# Speed of model.c (dev/bench_model.c) beside PyTorch doing the same work (dev/bench_model.py)
# on the all-MiniLM-L6-v2 shape, both with 2 threads (OMP_NUM_THREADS=2, and
# torch.set_num_threads(2)): training steps (forward+backward, 16 x 256 tokens, tokens/s)
# and scoring (forward only, 100 documents of 256 tokens, docs/s).
# The two sides run in turns, ROUNDS times (default 2); each run reports its best step and
# best scoring batch, and the best over the rounds is kept: on a machine shared with other
# work, the fastest measurement is the least disturbed one.
# OpenBLAS picks its kernels by CPU model (or by OPENBLAS_CORETYPE, which this machine's
# environment sets to Haswell, i.e. AVX2), and releases older than a CPU fall back to AVX2
# kernels; on a CPU with AVX-512 the C side is therefore run twice, with the environment
# as it is and with OPENBLAS_CORETYPE=SKYLAKEX (OpenBLAS's AVX-512 kernels), and both C
# figures are printed.
set -eu
cd "$(dirname "$0")/.."
make -s build/bench_model
export OMP_NUM_THREADS=2
STEPS=${STEPS:-3}
ROUNDS=${ROUNDS:-2}
have_torch=1
python3 -c "import torch, transformers" 2>/dev/null || have_torch=0
avx512=0
kernels="${OPENBLAS_CORETYPE:-chosen by OpenBLAS}"
if grep -q -w avx512f /proc/cpuinfo && [ "${kernels,,}" != skylakex ]; then avx512=1; fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$ROUNDS"); do
    echo "--- round $r (C with OpenBLAS kernels $kernels$([ "$avx512" = 1 ] && echo ", C with SKYLAKEX kernels"), PyTorch)"
    ./build/bench_model "$STEPS" | sed 's/^RESULT c_/RESULT c_default_/' | tee -a "$out" | grep -v '^RESULT'
    if [ "$avx512" = 1 ]; then
        OPENBLAS_CORETYPE=SKYLAKEX ./build/bench_model "$STEPS" | sed 's/^RESULT c_/RESULT c_avx512_/' | tee -a "$out" | grep -v '^RESULT'
    fi
    if [ "$have_torch" = 1 ]; then python3 dev/bench_model.py "$STEPS" | tee -a "$out" | grep -v '^RESULT'; fi
done
best() { awk -v k="$1" '$1 == "RESULT" && $2 == k && $3 > m { m = $3 } END { print m + 0 }' "$out"; }
printf '%-40s %14s %14s\n' "best of $ROUNDS rounds, 2 threads" "train tok/s" "score docs/s"
printf '%-40s %14.1f %14.2f\n' "C (OpenBLAS kernels $kernels)" "$(best c_default_train_tokens_per_s)" "$(best c_default_score_docs_per_s)"
if [ "$avx512" = 1 ]; then
    printf '%-40s %14.1f %14.2f\n' "C (OPENBLAS_CORETYPE=SKYLAKEX)" "$(best c_avx512_train_tokens_per_s)" "$(best c_avx512_score_docs_per_s)"
fi
if [ "$have_torch" = 1 ]; then
    tt=$(best torch_train_tokens_per_s); ts=$(best torch_score_docs_per_s)
    printf '%-40s %14.1f %14.2f\n' "PyTorch" "$tt" "$ts"
    for side in default avx512; do  # default: the kernels of the environment
        [ "$side" = avx512 ] && [ "$avx512" = 0 ] && continue
        awk -v s="$side" -v a="$(best c_${side}_train_tokens_per_s)" -v b="$tt" -v c="$(best c_${side}_score_docs_per_s)" -v d="$ts" \
            'BEGIN { printf "ratio C (%s kernels) / PyTorch: train %.2fx, score %.2fx\n", s, a / b, c / d }'
    done
else
    echo "PyTorch: not installed here, no comparison"
fi
