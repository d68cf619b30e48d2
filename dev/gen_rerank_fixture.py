"""
Writes the fixtures of test/test_rerank.sh into test/fixtures/rerank/:

run.trec          the candidates: 5 Cranfield queries x their BM25 top 20 (bm25s, English
                  stop words, no stemming), as a TREC run with the tag bm25
head.safetensors  a fixed random classification head, classifier.weight (1, C) and
                  classifier.bias (1), put on top of all-MiniLM-L6-v2's encoder and pooler
expected.tsv      qid, docid, then the logit of (query, document) at max_length 256 and at
                  max_length 64, from transformers BertForSequenceClassification (that
                  encoder and pooler, the head above) in float64, the pair tokenized by the
                  checkpoint's own Hugging Face tokenizer with longest-first truncation.
                  The document text is the title, a space, then the body, as io/beir.h builds it.
metrics.tsv       system, NDCG@10, Recall@100, MRR@10 over the 5 queries (qrels/test.tsv), by
                  pytrec_eval, on each query's top 10 of run.trec (the test reranks with
                  --top 10 --max-len 64, to stay quick on a CPU without BLAS): "input" in
                  the run's order, "reranked" ordered by the max_length 64 logits above.
                  MRR@10 is recip_rank of each ranking cut to its first 10 documents
                  (trec_eval's order: score descending, ties by document id descending).

Run from the repository root:  python dev/gen_rerank_fixture.py
"""
import json
import os
import random
import subprocess

import bm25s
import numpy as np
import pytrec_eval
import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertForSequenceClassification

OUT = "test/fixtures/rerank"
DATA = "../shared/data/cranfield"
NUM_QUERIES = 5
DEPTH = 20
MAX_LENGTHS = (256, 64)
METRICS_TOP = 10
METRICS_MAX_LENGTH = 64


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def beir_text(doc):
    title = doc.get("title") or ""
    return f"{title} {doc['text']}" if title else doc["text"]


def trec_order(scores):
    """doc ids of {doc: score}, score descending, ties by id descending"""
    return sorted(scores, key=lambda d: (-scores[d], [-ord(c) for c in d]))


def evaluate(run, qrels):
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_100"})
    per_query = ev.evaluate(run)
    top10 = {q: {d: run[q][d] for d in trec_order(run[q])[:10]} for q in run}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(per_query)
    return (sum(m["ndcg_cut_10"] for m in per_query.values()) / n,
            sum(m["recall_100"] for m in per_query.values()) / n,
            sum(m["recip_rank"] for m in rr.values()) / n)


def main():
    os.makedirs(OUT, exist_ok=True)
    corpus = read_jsonl(os.path.join(DATA, "corpus.jsonl"))
    queries = {q["_id"]: q["text"] for q in read_jsonl(os.path.join(DATA, "queries.jsonl"))}
    qrels = {}
    with open(os.path.join(DATA, "qrels", "test.tsv")) as f:
        next(f)
        for line in f:
            qid, did, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(grade)
    judged = sorted((q for q in qrels if any(g >= 1 for g in qrels[q].values())), key=int)
    qids = sorted(random.Random(4).sample(judged, NUM_QUERIES), key=int)

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([beir_text(d) for d in corpus], stopwords="en", show_progress=False),
                    show_progress=False)
    found, scores = retriever.retrieve(bm25s.tokenize([queries[q] for q in qids], stopwords="en", show_progress=False),
                                       k=DEPTH, show_progress=False)
    run = {}
    with open(os.path.join(OUT, "run.trec"), "w") as f:
        for i, qid in enumerate(qids):
            run[qid] = {}
            for r in range(DEPTH):
                did = corpus[found[i, r]]["_id"]
                score = float(np.float32(scores[i, r]))
                run[qid][did] = score
                f.write(f"{qid} Q0 {did} {r + 1} {score:.9g} bm25\n")

    model_dir = os.environ.get("ZELO_MINILM_DIR") or subprocess.check_output(["bash", "dev/find_minilm.sh"], text=True).strip()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=1, attn_implementation="eager")
    model.eval()
    hidden = model.config.hidden_size
    g = torch.Generator().manual_seed(77)
    # MiniLM's pooled vectors are much alike from one input to the next: a head of this
    # scale spreads the logits to order 1, so that a ranking and an error mean something
    head_w = torch.randn(1, hidden, generator=g) / hidden ** 0.5 * 30.0
    head_b = torch.tensor([0.25])
    with torch.no_grad():
        model.classifier.weight.copy_(head_w)
        model.classifier.bias.copy_(head_b)
    save_file({"classifier.weight": head_w.contiguous(), "classifier.bias": head_b}, os.path.join(OUT, "head.safetensors"))
    model = model.double()
    texts = {d["_id"]: beir_text(d) for d in corpus}
    logits = {L: {} for L in MAX_LENGTHS}
    truncated = {L: 0 for L in MAX_LENGTHS}
    with torch.no_grad():
        for qid in qids:
            for did in run[qid]:
                for L in MAX_LENGTHS:
                    e = tok(queries[qid], texts[did], truncation="longest_first", max_length=L)
                    truncated[L] += len(e["input_ids"]) == L
                    out = model(input_ids=torch.tensor([e["input_ids"]]), token_type_ids=torch.tensor([e["token_type_ids"]]))
                    logits[L][(qid, did)] = float(out.logits[0, 0])
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        for qid in qids:
            for did in run[qid]:
                f.write(f"{qid}\t{did}\t" + "\t".join(f"{logits[L][(qid, did)]:.9g}" for L in MAX_LENGTHS) + "\n")

    sub_qrels = {q: qrels[q] for q in qids}
    top = {q: {d: run[q][d] for d in trec_order(run[q])[:METRICS_TOP]} for q in qids}
    reranked = {q: {d: float(np.float32(logits[METRICS_MAX_LENGTH][(q, d)])) for d in top[q]} for q in qids}
    with open(os.path.join(OUT, "metrics.tsv"), "w") as f:
        for name, r in (("input", top), ("reranked", reranked)):
            ndcg, recall, mrr = evaluate(r, sub_qrels)
            f.write(f"{name}\t{ndcg:.6f}\t{recall:.6f}\t{mrr:.6f}\n")
            print(f"{name}: NDCG@10 {ndcg:.4f} Recall@100 {recall:.4f} MRR@10 {mrr:.4f}")
    all_logits = np.array(list(logits[256].values()))
    print(f"queries {qids}; {len(all_logits)} pairs; logits in [{all_logits.min():.3f}, {all_logits.max():.3f}]; "
          f"truncated: {truncated}")
    top3_truncated = sum(len(tok(queries[q], texts[d], truncation="longest_first", max_length=256)["input_ids"]) == 256
                         for q in qids for d in trec_order(run[q])[:3])
    print(f"of each query's top 3, {top3_truncated} pairs are truncated at max_length 256")


if __name__ == "__main__":
    main()
