"""
Writes the fixtures of test/test_weights.c into test/fixtures/weights/:

dtypes.safetensors  (written by the `safetensors` package, not by our writer)
    f16, bf16           bit patterns: every 17th of the 65536, plus signed zeros,
                        subnormals, the largest/smallest normals, infinities and NaNs
    f16_as_f32          the same values converted by numpy (f16) and torch (bf16)
    bf16_as_f32
tiny_f16/, tiny_bf16/  BertForSequenceClassification directories (V=32, C=8, L=2) written by
                    transformers' own save_pretrained in float16 / bfloat16, every
                    parameter N(0, 1) so no value is trivial; tiny_f16_as_f32.safetensors
                    and tiny_bf16_as_f32.safetensors: the same parameters converted to
                    fp32 by torch
head.safetensors    a fixed random classification head, classifier.weight (1, C) and
                    classifier.bias (1), put on top of all-MiniLM-L6-v2
pairs.jsonl         the 32 (query, doc) texts, 16 from cranfield and 16 from cisi; the first
                    pair of each collection keeps its whole document (truncated to 256
                    tokens), the others keep the document's first 30 words, so that the
                    test's forward passes stay within seconds on a CPU without BLAS
minilm.bin          header of 256 int32: [0] magic 0x4D57465A, [1] version 1,
                    [2] num_pairs, [3] pair tokens, [4] num_texts, [5] text tokens,
                    [6] hidden size C, [7] num_labels, [8] max_length; then
                    pair_starts (num_pairs+1) int32, pair_ids int32, pair_types int32,
                    logits (num_pairs, num_labels) f32,
                    text_starts (num_texts+1) int32, text_ids int32,
                    pooled (num_texts, C) f32, normalized (num_texts, C) f32
    pairs: [CLS] q [SEP] d [SEP] by the checkpoint's own Hugging Face tokenizer, longest-first
    truncation to 256; logits from transformers BertForSequenceClassification (the
    checkpoint's encoder and pooler, the head above), run in float64 so that the reference
    itself adds no error worth counting. texts: the queries, then the documents, of the
    odd-numbered pairs (16 + 16), tokenized by sentence-transformers (max_seq_length 256);
    pooled = the output of its Pooling module (mean over tokens), normalized = the final
    output after its Normalize module, both from sentence-transformers in float64.

Run from the repository root:  python dev/gen_weights_fixture.py
"""
import json
import os
import random
import subprocess

import numpy as np
import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertForSequenceClassification

OUT = "test/fixtures/weights"
DATA = "../shared/data"
MAX_LENGTH = 256
SHORT_DOC_WORDS = 30
MAX_QUERY_WORDS = 40
MAGIC = 0x4D57465A


def dtype_fixture():
    specials_f16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x0200, 0x03FF, 0x83FF, 0x0400, 0x8400,
                    0x3C00, 0xBC00, 0x3555, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7C01, 0x7E00,
                    0xFE00, 0x7FFF]
    specials_bf16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x8080, 0x3F80, 0xBF80,
                     0x3EAB, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7F81, 0x7FC0, 0xFFC0, 0x7FFF]
    f16_bits = np.array(sorted(set(range(0, 65536, 17)) | set(specials_f16)), dtype=np.uint16)
    bf16_bits = np.array(sorted(set(range(0, 65536, 17)) | set(specials_bf16)), dtype=np.uint16)
    f16 = torch.from_numpy(f16_bits.view(np.float16).copy())
    f16_as_f32 = torch.from_numpy(f16_bits.view(np.float16).astype(np.float32))
    bf16 = torch.from_numpy(bf16_bits.view(np.int16).copy()).view(torch.bfloat16)
    bf16_as_f32 = bf16.float()
    save_file({"f16": f16, "f16_as_f32": f16_as_f32, "bf16": bf16, "bf16_as_f32": bf16_as_f32},
              os.path.join(OUT, "dtypes.safetensors"))


def tiny_checkpoints():
    from transformers import BertConfig
    config = BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16, num_labels=1)
    for dtype, name in ((torch.float16, "tiny_f16"), (torch.bfloat16, "tiny_bf16")):
        torch.manual_seed(3)
        model = BertForSequenceClassification(config)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p))
        model = model.to(dtype)
        model.save_pretrained(os.path.join(OUT, name))
        expected = {k: p.detach().float().contiguous() for k, p in model.named_parameters()}
        save_file(expected, os.path.join(OUT, name + "_as_f32.safetensors"))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pick_pairs(collection, n, rng):
    """n (query, doc) pairs: even ones a judged-relevant doc, odd ones a random doc."""
    corpus = {d["_id"]: d for d in read_jsonl(os.path.join(DATA, collection, "corpus.jsonl"))}
    queries = {q["_id"]: q for q in read_jsonl(os.path.join(DATA, collection, "queries.jsonl"))}
    qrels = {}
    with open(os.path.join(DATA, collection, "qrels", "test.tsv")) as f:
        next(f)
        for line in f:
            qid, did, score = line.split("\t")
            if int(score) > 0 and did in corpus:
                qrels.setdefault(qid, []).append(did)
    # queries of at most 40 words (most of them; some cisi queries are whole paragraphs),
    # again for the test's CPU time
    qids = sorted((q for q in qrels if q in queries and len(queries[q]["text"].split()) <= MAX_QUERY_WORDS),
                  key=lambda q: int(q) if q.isdigit() else q)
    doc_ids = sorted(corpus)
    pairs = []
    for i, qid in enumerate(rng.sample(qids, n)):
        did = rng.choice(qrels[qid]) if i % 2 == 0 else rng.choice(doc_ids)
        pairs.append({"collection": collection, "query_id": qid, "doc_id": did,
                      "query": queries[qid]["text"], "doc": corpus[did]["text"]})
    return pairs


def packed(seqs):
    starts = np.zeros(len(seqs) + 1, dtype=np.int32)
    starts[1:] = np.cumsum([len(s) for s in seqs])
    return starts, np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs])


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    dtype_fixture()
    tiny_checkpoints()

    model_dir = os.environ.get("ZELO_MINILM_DIR") or subprocess.check_output(["bash", "dev/find_minilm.sh"], text=True).strip()
    rng = random.Random(2509)
    pairs = pick_pairs("cranfield", 16, rng) + pick_pairs("cisi", 16, rng)
    for i, p in enumerate(pairs):
        if i % 16 != 0:
            p["doc"] = " ".join(p["doc"].split()[:SHORT_DOC_WORDS])
    with open(os.path.join(OUT, "pairs.jsonl"), "w") as f:
        for p in pairs:
            f.write(json.dumps(p) + "\n")

    # cross-encoder logits
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = [tok(p["query"], p["doc"], truncation="longest_first", max_length=MAX_LENGTH) for p in pairs]
    model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=1, attn_implementation="eager")
    model.eval()
    hidden = model.config.hidden_size
    g = torch.Generator().manual_seed(1234)
    # MiniLM's pooled vectors differ little from one input to the next, so a head of this
    # scale is needed for logits of order 1 (a relative error near 0 would mean nothing)
    head_w = torch.randn(1, hidden, generator=g) / hidden ** 0.5 * 30.0
    head_b = torch.tensor([0.0])
    with torch.no_grad():
        model.classifier.weight.copy_(head_w)
        model.classifier.bias.copy_(head_b)
    save_file({"classifier.weight": head_w.contiguous(), "classifier.bias": head_b}, os.path.join(OUT, "head.safetensors"))
    # the pooler must come from the checkpoint (it has one), not from transformers' init
    from safetensors import safe_open
    with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        assert torch.equal(f.get_tensor("pooler.dense.weight"), model.bert.pooler.dense.weight.detach())
    model = model.double()
    logits = []
    with torch.no_grad():
        for e in enc:
            out = model(input_ids=torch.tensor([e["input_ids"]]), token_type_ids=torch.tensor([e["token_type_ids"]]))
            logits.append(out.logits[0].float().numpy())
    logits = np.stack(logits).astype(np.float32)
    pair_starts, pair_ids = packed([e["input_ids"] for e in enc])
    _, pair_types = packed([e["token_type_ids"] for e in enc])

    # sentence embeddings: the full pipeline, and the same without its Normalize module
    st = SentenceTransformer(model_dir, device="cpu").double()
    assert st.max_seq_length == MAX_LENGTH
    st_pooled = SentenceTransformer(modules=[st[0], st[1]], device="cpu").double()
    texts = [p["query"] for p in pairs[1::2]] + [p["doc"] for p in pairs[1::2]]
    feats = st.tokenize(texts)
    text_seqs = [ids[mask.bool()].tolist() for ids, mask in zip(feats["input_ids"], feats["attention_mask"])]
    normalized = st.encode(texts, batch_size=8, convert_to_tensor=True).float().numpy()
    pooled = st_pooled.encode(texts, batch_size=8, convert_to_tensor=True).float().numpy()
    text_starts, text_ids = packed(text_seqs)

    header = np.zeros(256, dtype=np.int32)
    header[:9] = [MAGIC, 1, len(pairs), len(pair_ids), len(texts), len(text_ids), hidden, 1, MAX_LENGTH]
    with open(os.path.join(OUT, "minilm.bin"), "wb") as f:
        for a in [header, pair_starts, pair_ids, pair_types, logits, text_starts, text_ids, pooled, normalized]:
            f.write(np.ascontiguousarray(a).tobytes())
    print(f"{len(pairs)} pairs ({len(pair_ids)} tokens, {sum(len(e['input_ids']) == MAX_LENGTH for e in enc)} truncated), "
          f"{len(texts)} texts ({len(text_ids)} tokens); logits in [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()
