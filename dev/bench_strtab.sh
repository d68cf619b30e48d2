#!/usr/bin/env bash
# The string table: stb_ds (common/strtab.h) beside the hand-written table it replaced
# (dev/bench_strtab.c), one thread, ROUNDS turns each (default 5), on two corpora:
#   synthetic  Cranfield + CISI documents repeated 35 times with new ids (100,100 documents,
#              15 million words, 13,611 distinct; the corpus of dev/bench_bm25.sh)
#   vocabulary 100,000 documents of 60 words drawn by Zipf's law from 2,000,000 random
#              words (6 million words, about 700,000 distinct): a large vocabulary
# Not a test: it prints figures, it asserts only that the two tables number alike.
set -eu
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
ROUNDS=${ROUNDS:-5}
make -s build/bench_strtab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp" <<'EOF'
import itertools, json, os, random, sys
tmp = sys.argv[1]
with open(os.path.join(tmp, "synthetic.jsonl"), "w") as f:
    for r in range(35):
        for name in ("cranfield", "cisi"):
            for l in open(os.path.join("..", "shared", "data", name, "corpus.jsonl")):
                d = json.loads(l)
                f.write(json.dumps({"_id": f"r{r}-{name}-{d['_id']}", "title": d["title"], "text": d["text"]}) + "\n")
rng = random.Random(1)
V = 2000000
vocab = ["".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(rng.randint(2, 5))) + str(i % 97)
         for i in range(V)]
cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(V)))
with open(os.path.join(tmp, "vocabulary.jsonl"), "w") as f:
    for d in range(100000):
        f.write(json.dumps({"_id": str(d), "text": " ".join(rng.choices(vocab, cum_weights=cum, k=60))}) + "\n")
EOF

echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
for set in synthetic vocabulary; do
    echo "== $set"
    ./build/bench_strtab "$tmp/$set.jsonl" "$ROUNDS"
done
echo "load average after: $(cut -d" " -f1-3 /proc/loadavg)"
