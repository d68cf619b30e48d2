#!/usr/bin/env bash
# What a second process buys on this machine: train_zelo's judging stage and one training step,
# timed with 1 process and with 2 (mpirun -np 2), each speed-up printed beside the ideal 2.0x.
# - judging: the synthetic collection's battles (--candidates 10, no calibration) asked of a cmd
#   judge that spends a fixed amount of CPU on each battle (about a millisecond, standing in for
#   an LLM client): 2 processes run 2 judge programs. Timed from the "pairs:" line to the "fit:"
#   line of train_zelo's output (the judging between them; the fit itself takes milliseconds).
# - a training step: 64 sequences of the random 2-layer model, averaged over steps 1-5, from the
#   "training: N steps" line to the estimate train_zelo prints after step 5; 1 process with 1 and
#   with 2 OpenMP threads, 2 processes with 1 thread each and --batch-size 32 (the same step).
# The machine is shared: the load average is printed before and after. Usage:
#   bash dev/bench_mpi.sh
set -eu
cd "$(dirname "$0")/.."
make -s train_zelo
T=./train_zelo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
D=$(mktemp -d /tmp/bench_mpi_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$D"' EXIT
[ -r /proc/loadavg ] && echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"

# each line of a program's stdout with the time it arrived (train_zelo flushes every line)
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done; }
# seconds from the first line starting with $2 to the first later line starting with $3
between() {
    awk -v a="$2" -v b="$3" '
        { text = substr($0, index($0, " ") + 1) }
        ta != "" && tb == "" && index(text, b) == 1 { tb = $1 }
        ta == "" && index(text, a) == 1 { ta = $1 }
        END { if (ta == "" || tb == "") exit 1; printf "%.3f", tb - ta }' "$1"
}

# the stage files every timed run starts from: the collection, the index, the candidates and,
# for the training runs, the targets (the simulated judge's)
COMMON="--candidates 10 --cross-pairs 0 --threads 1"
$T --run-dir "$D/base" $COMMON --steps 1 >"$D/base.out" 2>&1
stage() { rm -rf "$1" && mkdir -p "$1" && cp -r "$D/base/synthetic" "$D/base/bm25.idx" "$D/base/candidates.bin" "$1/"; }

cat >"$D/judge.py" <<'EOF'
# a judge with a fixed CPU cost per battle: the answer depends on the texts' lengths
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    x = 0
    for i in range(20000):
        x += i * i
    print(json.dumps({"id": r["id"], "p": 0.7 if len(r["doc_a"]) > len(r["doc_b"]) else 0.3}), flush=True)
EOF
JUDGE=(--judge "cmd:python3 $D/judge.py" --steps 1)
stage "$D/j1" && $T --run-dir "$D/j1" $COMMON "${JUDGE[@]}" 2>/dev/null | stamp >"$D/j1.out"
stage "$D/j2" && mpirun -np 2 --oversubscribe $T --run-dir "$D/j2" $COMMON "${JUDGE[@]}" 2>/dev/null | stamp >"$D/j2.out"
cmp -s "$D/j1/judgments.jsonl" "$D/j2/judgments.jsonl" || { echo "bench_mpi: the two runs' judgments differ"; exit 1; }
battles=$(sed -n 's/.* pairs: \([0-9]*\) battles.*/\1/p' "$D/j1.out")
j1=$(between "$D/j1.out" "pairs:" "fit:")
j2=$(between "$D/j2.out" "pairs:" "fit:")

STEPS="--steps 8 --eval-every 100 --checkpoint-every 100"
train() {  # train NAME COMMAND...: seconds per step over steps 1-5
    local name=$1
    shift
    stage "$D/$name" && cp "$D/base/targets.bin" "$D/$name/"
    "$@" 2>/dev/null | stamp >"$D/$name.out"
    awk -v t="$(between "$D/$name.out" "training: 8 steps" "training: ")" 'BEGIN { printf "%.3f", t / 5 }'
}
t11=$(train t11 $T --run-dir "$D/t11" $COMMON $STEPS --batch-size 64)
t12=$(train t12 $T --run-dir "$D/t12" $COMMON $STEPS --batch-size 64 --threads 2)
t21=$(train t21 mpirun -np 2 --oversubscribe $T --run-dir "$D/t21" $COMMON $STEPS --batch-size 32)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf 'judging %s battles (cmd judge, ~1 ms of CPU each):\n' "$battles"
printf '  1 process (1 judge program)     %7.2f s\n' "$j1"
printf '  2 processes (2 judge programs)  %7.2f s   speed-up %.2fx (ideal 2.00x)\n' "$j2" "$(ratio "$j1" "$j2")"
printf 'one training step, 64 sequences (random model: 2 layers, hidden 128):\n'
printf '  1 process x 1 thread            %7.3f s\n' "$t11"
printf '  1 process x 2 threads           %7.3f s   speed-up %.2fx (ideal 2.00x)\n' "$t12" "$(ratio "$t11" "$t12")"
printf '  2 processes x 1 thread (32 each) %6.3f s   speed-up %.2fx (ideal 2.00x)\n' "$t21" "$(ratio "$t11" "$t21")"
[ -r /proc/loadavg ] && echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
