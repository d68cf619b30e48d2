#!/usr/bin/env bash
# The README's command shape (--init and --dense-model all-MiniLM-L6-v2, --judge bm25+dense,
# 50 candidates, the default training budget) on real collections, each on several held-out
# splits (--seed draws the split), and one table: BM25, dense, judge, the model before and
# after training (with -- --rounds N, at the end of each round too) and the reranker (the model
# interpolated with the first stage): NDCG@10,
# Recall@100, MRR@10; held-out queries, wall and training seconds
# of every run, then each collection's mean over its splits. Usage:
#
#   bash dev/quality.sh [--threads N] [--collections "cranfield cisi"] [--seeds "42 2 3"]
#                       [--data DIR] [--runs DIR] [--stages-from DIR] [-- train_zelo options]
#
# --data: the folder holding the collections (default ../shared/data); --runs: where the run
# directories <collection>_s<seed> go (default runs/quality). A run directory that already
# holds results.tsv is not run again, only read: delete it (or choose another --runs) to rerun.
# --stages-from DIR copies the stage files (BM25 index, candidates, judgments, targets,
# embeddings) of DIR/<collection>_s<seed> into a new run directory, so that a variant pays for
# training and evaluation only. Options after -- go to every train_zelo call after this
# script's own (a later option wins), e.g. -- --loss pairwise. The model is evaluated before
# and after training only (--eval-every past the end); pass -- --eval-every N for a curve.
set -eu
cd "$(dirname "$0")/.."
threads=1
collections="cranfield cisi"
seeds="42 2 3"
data=../shared/data
runs=runs/quality
stages_from=""
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --collections) collections=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --stages-from) stages_from=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "dev/quality.sh: unknown argument '$1' (see the usage at the top of the script)" >&2; exit 2 ;;
    esac
done
M=$(dev/find_minilm.sh)
make -s build/train_zelo
mkdir -p "$runs"
for c in $collections; do
    [ -d "$data/$c" ] || { echo "dev/quality.sh: no collection $data/$c" >&2; exit 2; }
    for s in $seeds; do
        dir="$runs/${c}_s$s"
        [ -f "$dir/results.tsv" ] && continue
        mkdir -p "$dir"
        if [ -n "$stages_from" ]; then
            for f in bm25.idx candidates.bin judgments.jsonl targets.bin ratings.tsv dense_docs.bin dense_queries.bin; do
                src="$stages_from/${c}_s$s/$f"
                [ -f "$src" ] && [ ! -f "$dir/$f" ] && cp "$src" "$dir/$f"
            done
        fi
        echo "dev/quality.sh: $c, --seed $s, in $dir (output in $dir/output.txt); load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        t0=$(date +%s.%N)
        ./build/train_zelo --data "$data/$c" --run-dir "$dir" --init "$M" --dense-model "$M" --judge bm25+dense \
            --candidates 50 --seed "$s" --threads "$threads" --eval-every 1000000000 "$@" > "$dir/output.txt" 2>&1 \
            || { echo "dev/quality.sh: train_zelo failed, see $dir/output.txt" >&2; exit 1; }
        echo "$(date +%s.%N) - $t0" | bc > "$dir/wall_s.txt"
    done
done
python3 - "$runs" "$collections" "$seeds" <<'EOF'
import re, sys
runs, collections, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
short = {"BM25": "BM25", "dense (bi-encoder cosine)": "dense", "model before training": "before",
         "zELO-trained model": "model"}
def row_name(name):
    for prefix, key in (("judge (", "judge"), ("hybrid (", "hybrid"), ("reranker (", "reranker")):
        if name.startswith(prefix):
            return key
    if name.startswith("model after round "):  # --rounds
        return "round " + name[len("model after round "):]
    return short.get(name, name)
# "reranker" is the final order (the model interpolated with the first stage, --val-frac);
# a run without it (--val-frac 0) is judged by the model alone
# --rounds: the model at the end of each round but the last, between "before" and "model"
rounds = sorted({row_name(l.split("\t")[0]) for c in collections for s in seeds
                 for l in open(f"{runs}/{c}_s{s}/results.tsv").read().split("\n")[1:] if l.startswith("model after round ")},
                key=lambda k: int(k.split()[1]))
cols = ["BM25", "dense", "hybrid", "judge", "before"] + rounds + ["model", "reranker"]
gaps = [("reranker", "BM25"), ("reranker", "dense"), ("reranker", "judge"), ("model", "judge")]
def gap(rows, a, b):
    a = a if a in rows else "model"
    return f"{rows[a][0] - rows[b][0]:+.4f}" if a in rows and b in rows else ""
print("| collection | seed | held-out | " + " | ".join(f"{c} NDCG@10 / R@100 / MRR@10" for c in cols)
      + " | " + " | ".join(f"{a} − {b}" for a, b in gaps) + " | alpha | wall s | training s |")
print("|" + "---|" * (len(cols) + len(gaps) + 6))
for c in collections:
    sums, n = {}, 0
    for s in seeds:
        d = f"{runs}/{c}_s{s}"
        out = open(f"{d}/output.txt").read()
        lines = open(f"{d}/results.tsv").read().split("\n")[1:]
        rows = {row_name(l.split("\t")[0]): [float(x) for x in l.split("\t")[1:]] for l in lines if l}
        held = re.search(r"held-out queries: (\d+)", out).group(1)
        trained = re.findall(r"training +\[#+\] \d+/\d+ +[\d.]+/s +took (\d+)s", out)
        alpha = re.search(r"alpha (\d\.\d+) on the model", out)
        wall = float(open(f"{d}/wall_s.txt").read())
        cells = [" / ".join(f"{x:.4f}" for x in rows[k]) if k in rows else "" for k in cols]
        print(f"| {c} | {s} | {held} | " + " | ".join(cells) + " | " + " | ".join(gap(rows, a, b) for a, b in gaps)
              + f" | {alpha.group(1) if alpha else ''} | {wall:.0f} | {trained[-1] if trained else ''} |")
        for k, v in rows.items():
            sums[k] = [a + b for a, b in zip(sums.get(k, [0.0, 0.0, 0.0]), v)]
        n += 1
    m = {k: [x / n for x in v] for k, v in sums.items()}
    cells = [" / ".join(f"{x:.4f}" for x in m[k]) if k in m else "" for k in cols]
    print(f"| {c} | mean of {n} | | " + " | ".join(cells) + " | " + " | ".join(gap(m, a, b) for a, b in gaps) + " | | | |")
EOF
