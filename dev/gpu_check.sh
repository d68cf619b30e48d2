#!/usr/bin/env bash
# dev/gpu_check.sh — everything a GPU can tell us, in one call on a bare GPU machine (nvcc and
# PyTorch there, no internet, maybe no MPI or OpenBLAS), in under 8 minutes:
#   1. probe the tools; build the CPU programs (NO_BLAS=1 when OpenBLAS does not link),
#      test_cuda and the dev/cuda programs with nvcc for the card's architecture;
#   2. test_cuda on the GPU (every kernel, and training steps of a random model, the tiny BERT
#      fixture and all-MiniLM-L6-v2 when its weights are there, against model.c), and
#      test_cuda_bf16 (the bf16 kernels, and the fused attention's tensor-core products against
#      their plain twin and model.c: their only run), test_cuda_bf16_model (bf16 training
#      steps against the CPU's fp32), test_zelo_cuda (the rating-fit kernel against
#      zelo_loss.c); with 2 GPUs and mpirun,
#      test/test_mpi.sh on them (TEST_MPI_DEVICE=cuda: gradients summed by NCCL);
#   3. the dev/cuda kernel benchmarks (ms, GB/s or TFLOP/s against the card's ceilings), among
#      them the rating fit at the paper's scale (dev/cuda/zelo_fit: 112,000 queries x 400
#      pairs, GPU ms beside the CPU fit's ms of the same batch) and the fused attention
#      (dev/cuda/flash_attention: forward and backward on tensor cores beside the simple
#      kernels, 8 x 512 tokens, head sizes 64 and 32, ms and TFLOP/s);
#   4. a training step of kernels/model_cuda (dev/cuda/bert_step) beside transformers'
#      BertForSequenceClassification (dev/bench_hf_step.py), MiniLM-L6 and BERT-base shapes,
#      8 sequences of 512 tokens, fp32 without TF32 and bf16 (PyTorch's: autocast, SDPA,
#      torch.compile); then the fp32 step profiled, each launcher's share of it
#      (dev/cuda/profile_step, cudaEvents);
#   5. compute-sanitizer memcheck and racecheck over the dev/cuda programs at small shapes
#      (DEV_CUDA_SMALL=1: every kernel, the 2-layer training step), then memcheck over
#      test_cuda, in what is left of the time budget (GPU_CHECK_BUDGET_S, 470 s);
# then one summary table. Logs go to $OUT (when set) or build/gpu_check/, one file per step.
# Without a GPU it says so, builds what it can and skips the steps that need one.
# Usage: dev/gpu_check.sh [--no-build]   (--no-build: use the builds already there)
set -u
cd "$(dirname "$0")/.." || exit 1
LOG_DIR=${OUT:-build/gpu_check}
mkdir -p "$LOG_DIR"
BUILD_STEPS=1
for arg in "$@"; do
    case $arg in
        --no-build) BUILD_STEPS=0 ;;
        *) echo "usage: dev/gpu_check.sh [--no-build]" >&2; exit 2 ;;
    esac
done
START=$SECONDS
BUDGET_S=${GPU_CHECK_BUDGET_S:-470}  # the whole run stays under 8 minutes
SUMMARY=()
FAILED=0

# run NAME TIMEOUT_S CMD...: runs CMD with its output in $LOG_DIR/NAME.log, for at most
# TIMEOUT_S or what is left of the budget; records the result in LAST_STATUS, LAST_SECONDS
run() {
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS rc left=$((BUDGET_S - (SECONDS - START)))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 10 ]; then
        echo "== $name: skipped, the time budget is spent"
        LAST_STATUS="NO TIME" LAST_SECONDS=0 FAILED=1
        return 1
    fi
    echo "== $name: $*"
    timeout "$limit" "$@" > "$LOG_DIR/$name.log" 2>&1
    rc=$?
    local status=PASS
    if [ $rc -eq 124 ]; then status="TIMEOUT(${limit}s)"; FAILED=1
    elif [ $rc -ne 0 ]; then status="FAIL(rc=$rc)"; FAILED=1; fi
    LAST_STATUS=$status
    LAST_SECONDS=$((SECONDS - t0))
    tail -n 3 "$LOG_DIR/$name.log" | sed 's/^/   /'
    return $rc
}
# note NAME STATUS SECONDS FIGURES: a row of the summary
note() { SUMMARY+=("$(printf '%-26s %-14s %5ss  %s' "$1" "$2" "$3" "$4")"); }
skip() { note "$1" "SKIPPED" 0 "$2"; }

# ---- 1. probe ----
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
CUDA_BIN=${NVCC:+$(dirname "$NVCC")}
SANITIZER=$(command -v compute-sanitizer || true)
# the toolkit puts it in bin/ or in compute-sanitizer/ beside it
for candidate in ${CUDA_BIN:+"$CUDA_BIN/compute-sanitizer" "$CUDA_BIN/../compute-sanitizer/compute-sanitizer"}; do
    [ -z "$SANITIZER" ] && [ -x "$candidate" ] && SANITIZER=$candidate
done
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
GPU_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '.')
HAVE_GPU=0
[ -n "$GPU_NAME" ] && HAVE_GPU=1
ARCH=sm_${GPU_CAP:-90}
MAKE_FLAGS=()
if ! cc dev/probe_blas.c -lopenblas -o /dev/null 2>/dev/null; then MAKE_FLAGS+=(NO_BLAS=1); fi
[ -n "$NVCC" ] && MAKE_FLAGS+=("NVCC=$NVCC")
TORCH=$(python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' 2>/dev/null || echo "")
# libstb-dev: the CPU programs include <stb/stb_ds.h>. A bare GPU machine may lack the package
# and cannot install it: copy the header beside the checkout first (mkdir -p .stb && cp -r
# /usr/include/stb .stb/, with /.stb/ in .git/info/exclude, and carry .stb) and it is used
STB_USERS=$(grep -rl --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh' 'include.*stb' . 2>/dev/null | grep -v '^./build/' | head -n 3 | tr '\n' ' ')
if [ -z "$STB_USERS" ]; then STB="not used by this build"
elif [ -f /usr/include/stb/stb_ds.h ]; then STB="present"
elif [ -f .stb/stb/stb_ds.h ]; then STB="carried in .stb/"; MAKE_FLAGS+=(STB_INCLUDE=.stb)
else STB="MISSING /usr/include/stb/stb_ds.h, needed by $STB_USERS(install libstb-dev, or carry .stb/stb/stb_ds.h)"; fi
{
    echo "gpu:       ${GPU_NAME:-none visible (nvidia-smi found none)}${GPU_CAP:+ (compute capability $GPU_CAP, building for $ARCH)}"
    echo "nvcc:      ${NVCC:-not found}${NVCC:+ ($("$NVCC" --version | tail -n 2 | head -n 1))}"
    echo "sanitizer: ${SANITIZER:-not found}"
    echo "python:    ${TORCH:-torch or transformers not importable}"
    echo "openblas:  $([[ " ${MAKE_FLAGS[*]} " == *" NO_BLAS=1 "* ]] && echo 'does not link: building with NO_BLAS=1' || echo links)"
    echo "mpi:       $(command -v mpirun > /dev/null && echo present || echo 'absent (train_zelo is then one process; the 2-GPU step is skipped)')"
    echo "stb_ds.h:  $STB"
} | tee "$LOG_DIR/probe.log"
[ $HAVE_GPU -eq 0 ] && echo "no GPU visible: the steps that need one are skipped"

# ---- build ----
DEV_PROGRAMS=$(for f in dev/cuda/*.cu; do basename "$f" .cu; done)
if [ $BUILD_STEPS -eq 1 ]; then
    JOBS=$(nproc)
    run build_cpu 300 make -j"$JOBS" "${MAKE_FLAGS[@]}" train_zelo rerank zelo_fit || true
    note "build CPU programs" "$LAST_STATUS" "$LAST_SECONDS" "${MAKE_FLAGS[*]}"
    if [ -n "$NVCC" ]; then
        GPU_TARGETS="build/gpu/test_cuda build/gpu/test_cuda_bf16 build/gpu/test_cuda_bf16_model build/gpu/test_zelo_cuda $(for p in $DEV_PROGRAMS; do echo "build/gpu/dev_$p"; done)"
        # shellcheck disable=SC2086 # GPU_TARGETS is a list of targets
        run build_nvcc 300 make -j"$JOBS" "${MAKE_FLAGS[@]}" "NVCC_FLAGS=-O3 -arch=$ARCH" $GPU_TARGETS
        note "build nvcc ($ARCH)" "$LAST_STATUS" "$LAST_SECONDS" "test_cuda, test_cuda_bf16, test_cuda_bf16_model, test_zelo_cuda + $(echo "$DEV_PROGRAMS" | wc -w) dev/cuda programs"
    else
        skip "build nvcc" "nvcc not found"
    fi
else
    skip "build" "--no-build"
fi

# ---- 2.-5. on the GPU ----
if [ $HAVE_GPU -eq 0 ]; then
    for step in "test_cuda (GPU)" "test_cuda_bf16 (GPU)" "test_cuda_bf16_model (GPU)" "test_zelo_cuda (GPU)" "2 processes, 2 GPUs (NCCL)" "memcheck/racecheck" "kernel benchmarks" \
                "rating fit 112k queries" "training step vs HF" "training step HF bf16" "profile of a step"; do skip "$step" "no GPU"; done
else
    # the all-MiniLM-L6-v2 step needs its weights (pip package or ZELO_MINILM_DIR); a machine
    # without them runs the rest and says so
    bash dev/find_minilm.sh >/dev/null 2>&1 || export ZELO_NO_MINILM=1
    run test_cuda 120 build/gpu/test_cuda || true
    note "test_cuda (GPU)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'passed, [0-9]+ failed' "$LOG_DIR/test_cuda.log" | tail -n 1)"
    # the bf16 kernels against model.c on bf16-rounded inputs, and bit for bit against the fp32
    # kernels: on a GPU that last check also says whether nvcc contracts both alike
    run test_cuda_bf16 60 build/gpu/test_cuda_bf16 || true
    note "test_cuda_bf16 (GPU)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'passed, [0-9]+ failed' "$LOG_DIR/test_cuda_bf16.log" | tail -n 1)"
    # the bf16 model's training steps (cuBLASLt's products) against the CPU's fp32
    run test_cuda_bf16_model 60 build/gpu/test_cuda_bf16_model || true
    note "test_cuda_bf16_model (GPU)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'passed, [0-9]+ failed' "$LOG_DIR/test_cuda_bf16_model.log" | tail -n 1)"
    run test_zelo_cuda 60 build/gpu/test_zelo_cuda || true
    note "test_zelo_cuda (GPU)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'passed, [0-9]+ failed|^worst rating' "$LOG_DIR/test_zelo_cuda.log" | tr '\n' ';')"

    # several GPUs: test/test_mpi.sh's runs with --device cuda, gradients summed by NCCL, which
    # wants one GPU per process: two GPUs at least
    GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    if [ "$GPUS" -ge 2 ] && command -v mpirun > /dev/null; then
        run test_mpi_gpu 240 env TEST_MPI_DEVICE=cuda bash test/test_mpi.sh || true
        note "2 processes, 2 GPUs (NCCL)" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'passed, [0-9]+ failed' "$LOG_DIR/test_mpi_gpu.log" | tail -n 1)"
    else
        skip "2 processes, 2 GPUs (NCCL)" "$GPUS GPU(s)$(command -v mpirun > /dev/null || echo ', no mpirun'): NCCL wants one GPU per process"
    fi

    ok=0 total=0 t0=$SECONDS bad=""
    for p in $DEV_PROGRAMS; do
        # the whole-step programs have their own steps below
        [ "$p" = bert_step ] || [ "$p" = profile_step ] && continue
        total=$((total + 1))
        if run "bench_$p" 60 "build/gpu/dev_$p"; then ok=$((ok + 1)); else bad="$bad $p"; fi
    done
    note "kernel benchmarks" "$([ $ok -eq $total ] && echo PASS || echo FAIL)" $((SECONDS - t0)) "$ok/$total validated and timed${bad:+; failed:$bad} (figures: bench_*.log)"
    note "rating fit 112k queries" "$(grep -q '^zelo_fit: all results match' "$LOG_DIR/bench_zelo_fit.log" 2>/dev/null && echo PASS || echo FAIL)" 0 \
        "$(grep '^zelo_fit .* gpu_ms=' "$LOG_DIR/bench_zelo_fit.log" 2>/dev/null | sed 's/^zelo_fit //; s/ (.*//' | tr '\n' ';')"

    run bert_step 120 build/gpu/dev_bert_step || true
    note "training step zelo.c" "$LAST_STATUS" "$LAST_SECONDS" "$(grep '^bert_step .* ms=' "$LOG_DIR/bert_step.log" | sed 's/^bert_step //; s/ (.*//' | tr '\n' ';')"
    note "device memory, computed" "$LAST_STATUS" 0 "$(grep '^bert_step bert-base .* at 512 tokens' "$LOG_DIR/bert_step.log" | sed 's/^bert_step //' | tr '\n' ';')"
    if [ -n "$TORCH" ]; then
        # the issue's peer first: bf16 autocast, SDPA attention, torch.compile (three shapes, three
        # compilations)
        run hf_step_bf16 240 python3 dev/bench_hf_step.py --precision bf16 --compile || true
        note "training step HF bf16" "$LAST_STATUS" "$LAST_SECONDS" "$(grep '^hf_step ' "$LOG_DIR/hf_step_bf16.log" | sed 's/^hf_step //; s/ torch=.*//' | tr '\n' ';')"
        # issue 15's speed goals, side by side from this one call: zelo.c's bf16 tokens/s over the
        # compiled bf16 peer's on BERT-base at 512 (goal 1.2x, and MFU 40%) and on MiniLM's mixed
        # lengths, packed against padded (goal 1.5x)
        ratios=""
        for model in "bert-base" "minilm-l6 mixed"; do
            ours=$(grep "^bert_step $model bf16 ms=" "$LOG_DIR/bert_step.log" 2>/dev/null | sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p')
            peer=$(grep "^hf_step $model bf16 compiled ms=" "$LOG_DIR/hf_step_bf16.log" 2>/dev/null | sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p')
            if [ -n "$ours" ] && [ -n "$peer" ] && [ "$peer" -gt 0 ]; then
                ratios="$ratios $model: $ours / $peer tokens/s = $(awk -v a="$ours" -v b="$peer" 'BEGIN { printf "%.2fx", a / b }');"
            else
                ratios="$ratios $model: no figure;"
            fi
        done
        mfu=$(grep '^bert_step bert-base bf16 ms=' "$LOG_DIR/bert_step.log" 2>/dev/null | sed -n 's/.*mfu=\([0-9.]*%\).*/\1/p')
        note "speed goals (bf16)" "$LAST_STATUS" 0 "${ratios# } bert-base MFU ${mfu:-no figure}"
        # then the fp32 peer (TF32 off), beside the fp32 backend: after the goals' figures, so that a
        # short budget spends itself here
        run hf_step 180 python3 dev/bench_hf_step.py || true
        note "training step HF" "$LAST_STATUS" "$LAST_SECONDS" "$(grep '^hf_step ' "$LOG_DIR/hf_step.log" | sed 's/^hf_step //; s/ torch=.*//' | tr '\n' ';')"
    else
        skip "training step HF" "torch/transformers not importable"
    fi
    run profile_step 120 build/gpu/dev_profile_step || true
    # the BERT-base step's three largest shares at each precision
    shares=""
    for precision in fp32 bf16; do
        shares="$shares bert-base $precision: $(sed -n "/^profile_step bert-base $precision, [0-9]* tokens in [0-9]* sequences:/,/shares sum/p" \
            "$LOG_DIR/profile_step.log" | sed -n '3,5p' | awk '{printf "%s %s; ", $1, $4}')"
    done
    note "profile of a step" "$LAST_STATUS" "$LAST_SECONDS" "${shares# }(all: profile_step.log)"

    # last: the sanitizers, slow, get what time is left
    if [ -n "$SANITIZER" ]; then
        for tool in memcheck racecheck; do
            ok=0 total=0 t0=$SECONDS bad=""
            for p in $DEV_PROGRAMS; do
                total=$((total + 1))
                if run "${tool}_$p" 60 env DEV_CUDA_SMALL=1 "$SANITIZER" --tool "$tool" --error-exitcode 1 "build/gpu/dev_$p"; then
                    ok=$((ok + 1))
                else
                    bad="$bad $p"
                fi
            done
            note "$tool dev/cuda (small)" "$([ $ok -eq $total ] && echo PASS || echo FAIL)" $((SECONDS - t0)) "$ok/$total clean${bad:+; failed:$bad}"
        done
        # test_cuda at its own sizes under memcheck: the slowest check; it gets what time is left
        run memcheck_test_cuda 150 "$SANITIZER" --tool memcheck --error-exitcode 1 build/gpu/test_cuda || true
        note "memcheck test_cuda" "$LAST_STATUS" "$LAST_SECONDS" "$(grep -E 'ERROR SUMMARY' "$LOG_DIR/memcheck_test_cuda.log" 2>/dev/null | tail -n 1)"
    else
        skip "compute-sanitizer" "not found"
    fi
fi

echo
echo "==== dev/gpu_check.sh summary ($((SECONDS - START)) s; logs in $LOG_DIR) ===="
echo "gpu: ${GPU_NAME:-none}"
printf '%s\n' "${SUMMARY[@]}" | tee "$LOG_DIR/summary.txt"
if [ $HAVE_GPU -eq 1 ]; then
    echo "kernel figures (bench_*.log):"
    grep -h ceilings "$LOG_DIR"/bench_*.log 2>/dev/null | head -n 1
    grep -h -v ceilings "$LOG_DIR"/bench_*.log 2>/dev/null | grep -E ' N=| n=|parameters \(|GB/s|TFLOP/s|forward \+ backward:'
fi
exit $FAILED
