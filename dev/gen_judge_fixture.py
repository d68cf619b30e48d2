"""
Writes the fixtures of test/test_judge.c into test/fixtures/judge/, from Cranfield
(../shared/data/cranfield) and all-MiniLM-L6-v2 (dev/find_minilm.sh):

dense.jsonl   one line per battle: "query_id", "doc_a", "doc_b" (+ "query_id_b" for a
              cross-query battle), "cos_a", "cos_b": the cosine of each (query, document)
              by sentence-transformers (the model in float64). The documents include some
              longer than 256 tokens, which sentence-transformers cuts to max_seq_length.
embed.jsonl   a few texts ("kind": "query" or "doc", "id") with their normalised
              sentence-transformers embedding ("embedding", C floats).
model.jsonl   first line: "classifier_weight" (C floats), "classifier_bias", "max_len": a
              seeded random score head put on all-MiniLM-L6-v2 (whose pooler is kept);
              then one line per battle with "logit_a", "logit_b": the pointwise logits of
              [CLS] q [SEP] d [SEP] (the Hugging Face tokenizer, longest_first to max_len),
              and "logit_pair": the logit of [CLS] q [SEP] a [SEP] b [SEP], token types 0
              up to the first [SEP] and 1 after, the longest text losing its last token
              until the sequence fits (doc_b, then doc_a, then the query on equal lengths),
              both from transformers' BertForSequenceClassification in float64.
A document's text is its title, a space, and its body (the body alone without a title), as
io/beir.h defines it.

Run from the repository root:  python dev/gen_judge_fixture.py
"""
import json
import os
import subprocess

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertForSequenceClassification

OUT = "test/fixtures/judge"
DATA = "../shared/data/cranfield"
MAX_LEN_PAIR = 128


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def doc_text(d):
    title = d.get("title") or ""
    return title + " " + d["text"] if title else d["text"]


def main():
    os.makedirs(OUT, exist_ok=True)
    minilm = subprocess.check_output(["bash", "dev/find_minilm.sh"], text=True).strip()
    corpus = {d["_id"]: doc_text(d) for d in read_jsonl(os.path.join(DATA, "corpus.jsonl"))}
    queries = {q["_id"]: q["text"] for q in read_jsonl(os.path.join(DATA, "queries.jsonl"))}
    tok = AutoTokenizer.from_pretrained(minilm)

    # documents: the three longest (past 256 tokens) and some short ones; battles in both
    # orders, ordinary and cross-query
    ids = list(corpus)
    lengths = {i: len(tok.encode(corpus[i], add_special_tokens=False)) for i in ids}
    longest = sorted(ids, key=lambda i: -lengths[i])[:3]
    assert all(lengths[i] > 254 for i in longest)
    docs = longest + ["1", "2", "3", "12", "51", "184", "486"]
    qids = ["1", "2", "8", "23", "100"]
    battles = []
    for k in range(12):
        qa = qids[k % len(qids)]
        qb = qa if k < 8 else qids[(k + 2) % len(qids)]
        battles.append((qa, docs[k % len(docs)], qb, docs[(3 * k + 1) % len(docs)]))

    st = SentenceTransformer(minilm, device="cpu").double()
    assert st.max_seq_length == 256
    emb = {}
    for kind, table, keys in (("query", queries, qids), ("doc", corpus, docs)):
        vecs = st.encode([table[i] for i in keys], convert_to_numpy=True, normalize_embeddings=False)
        for i, v in zip(keys, vecs):
            emb[(kind, i)] = v  # the model's last module normalises already
    with open(os.path.join(OUT, "dense.jsonl"), "w") as f:
        for qa, da, qb, db in battles:
            line = {"query_id": qa, "doc_a": da, "doc_b": db}
            if qb != qa:
                line["query_id_b"] = qb
            line["cos_a"] = float(np.dot(emb[("query", qa)], emb[("doc", da)]))
            line["cos_b"] = float(np.dot(emb[("query", qb)], emb[("doc", db)]))
            f.write(json.dumps(line) + "\n")
    with open(os.path.join(OUT, "embed.jsonl"), "w") as f:
        for kind, i in (("query", "1"), ("query", "23"), ("doc", longest[0]), ("doc", "3")):
            v = emb[(kind, i)]
            f.write(json.dumps({"kind": kind, "id": i, "embedding": [float(x) for x in v]}) + "\n")

    model = BertForSequenceClassification.from_pretrained(minilm, num_labels=1).double().eval()
    gen = torch.Generator().manual_seed(20251101)
    C = model.config.hidden_size
    with torch.no_grad():
        model.classifier.weight.copy_(torch.randn(1, C, generator=gen, dtype=torch.float64) * 0.2)
        model.classifier.bias.fill_(0.1)
    # the head is stored as float32: the C model holds float32 weights
    w32 = model.classifier.weight.float().double()
    with torch.no_grad():
        model.classifier.weight.copy_(w32)

    def logit(ids, types):
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types]))
        return float(out.logits[0, 0])

    def pointwise(q, d):
        enc = tok(q, d, truncation="longest_first", max_length=MAX_LEN_PAIR)
        return logit(enc["input_ids"], enc["token_type_ids"])

    def pairwise(q, a, b):
        parts = [tok.encode(t, add_special_tokens=False) for t in (q, a, b)]
        room = MAX_LEN_PAIR - 4
        lens = [min(len(p), room) for p in parts]
        while sum(lens) > room:
            # the longest loses a token; ties go to doc_b, then doc_a, then the query
            k = max((2, 1, 0), key=lambda j: lens[j])
            lens[k] -= 1
        ids = [tok.cls_token_id] + parts[0][:lens[0]] + [tok.sep_token_id]
        types = [0] * len(ids)
        for p, n in ((parts[1], lens[1]), (parts[2], lens[2])):
            ids += p[:n] + [tok.sep_token_id]
            types += [1] * (n + 1)
        return logit(ids, types)

    with open(os.path.join(OUT, "model.jsonl"), "w") as f:
        f.write(json.dumps({"classifier_weight": [float(x) for x in w32[0]],
                            "classifier_bias": float(model.classifier.bias[0]),
                            "max_len": MAX_LEN_PAIR}) + "\n")
        for qa, da, qb, db in battles:
            line = {"query_id": qa, "doc_a": da, "doc_b": db}
            if qb != qa:
                line["query_id_b"] = qb
            line["logit_a"] = pointwise(queries[qa], corpus[da])
            line["logit_b"] = pointwise(queries[qb], corpus[db])
            if qb == qa:
                line["logit_pair"] = pairwise(queries[qa], corpus[da], corpus[db])
            f.write(json.dumps(line) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
