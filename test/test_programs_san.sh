#!/usr/bin/env bash
# test_programs_san.sh — the three programs built with AddressSanitizer + UBSan (make test-san
# builds them into build/san and sets ASAN_OPTIONS / UBSAN_OPTIONS: leak checking on, every
# report fatal with exit status 86): the tiny synthetic run of train_zelo stopped at step 3
# and resumed, rerank and zelo_fit on what it wrote, a bi-encoder trained on its stage files
# and exported, and rerank refusing a checkpoint whose
# sizes near 2^31 once wrapped the parameter count. A run passes when it exits as it should
# and its output holds no sanitizer report (a leak at exit included).
# The sanitized programs are read from $SAN_BIN (default build/san).
# Ends with "test_programs_san: N passed, N failed" and a non-zero status on any failure.
set -u
cd "$(dirname "$0")/.."
BIN=${SAN_BIN:-build/san}
source test/check.sh
# exit status $1 is the wanted one and file $2 holds no sanitizer report
clean_exit() { test "$1" -eq "$3" && ! grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$2"; }
D=$(mktemp -d /tmp/test_programs_san_XXXXXX)
trap 'rm -rf "$D"' EXIT
for p in train_zelo rerank zelo_fit; do
    if [ ! -x "$BIN/$p" ]; then echo "FAIL: $BIN/$p is not built (make test-san builds it)"; echo "test_programs_san: 0 passed, 1 failed"; exit 1; fi
done

SMALL="--candidates 30 --steps 6 --batch-size 16 --eval-every 3 --checkpoint-every 3 --threads 2 --lr 1e-3"
"$BIN/train_zelo" --run-dir "$D/run" $SMALL --stop-at 3 >"$D/stop.out" 2>&1
check "train_zelo --stop-at 3: exit 0, no sanitizer report (see $D/stop.out)" clean_exit $? "$D/stop.out" 0
"$BIN/train_zelo" --run-dir "$D/run" $SMALL --resume >"$D/resume.out" 2>&1
check "train_zelo --resume to step 6: exit 0, no sanitizer report" clean_exit $? "$D/resume.out" 0
check "... and it wrote model.bin" test -f "$D/run/model.bin"

"$BIN/rerank" --model "$D/run/model.bin" --data "$D/run/synthetic" --run "$D/run/run.bm25.trec" --top 10 \
    --qrels "$D/run/synthetic/qrels/test.tsv" --out "$D/rerank.trec" --threads 2 >"$D/rerank.out" 2>&1
check "rerank on the run's model: exit 0, no sanitizer report" clean_exit $? "$D/rerank.out" 0

"$BIN/zelo_fit" -o "$D/ratings.tsv" "$D/run/judgments.jsonl" >"$D/fit.out" 2>&1
check "zelo_fit on the run's judgments: exit 0, no sanitizer report" clean_exit $? "$D/fit.out" 0

# a bi-encoder on the same stage files, exported as a sentence-transformers folder
"$BIN/train_zelo" --run-dir "$D/run" --candidates 30 --train bi-encoder --steps 2 --batch-size 16 --threads 2 \
    --export "$D/st" >"$D/bi.out" 2>&1
check "train_zelo --train bi-encoder --export: exit 0, no sanitizer report" clean_exit $? "$D/bi.out" 0
: >"$D/empty.jsonl"
"$BIN/zelo_fit" -o "$D/empty.tsv" "$D/empty.jsonl" >"$D/fit_empty.out" 2>&1
status=$?
check "zelo_fit on an empty judgments file: no sanitizer report" clean_exit $status "$D/fit_empty.out" $status

# the review's crash: a model file valid but for sizes near 2^31, whose parameter count wraps
# around 2^64 to 4 floats (vocab 2^31-1, hidden 2^30, 3 layers, 1 head, intermediate 1, ...)
python3 - "$D/crafted.bin" <<'EOF'
import struct, sys
header = [0x7A4C4231, 1, 0x7fffffff, 1 << 30, 3, 1, 1, 1073741787, 1, 1]
header += [struct.unpack("<i", struct.pack("<f", 1e-12))[0], 4] + [0] * 244
open(sys.argv[1], "wb").write(struct.pack("<256i", *header) + bytes(16))
EOF
"$BIN/rerank" --model "$D/crafted.bin" --vocab "$D/run/vocab.txt" --data "$D/run/synthetic" \
    --run "$D/run/run.bm25.trec" --out "$D/crafted.trec" >"$D/crafted.out" 2>&1
check "rerank refuses a checkpoint with sizes near 2^31: exit 1, no sanitizer report" clean_exit $? "$D/crafted.out" 1
check "... naming the file and the config" grep -q "crafted.bin': invalid config in the header" "$D/crafted.out"

echo "test_programs_san: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
