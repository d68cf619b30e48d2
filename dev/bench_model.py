"""
PyTorch peer of dev/bench_model.c: the same work on the all-MiniLM-L6-v2 shape with random
weights, float32 on the CPU, with as many threads as OMP_NUM_THREADS says (default 2).
- training: forward + backward of BertForSequenceClassification on 16 x 256 tokens, the
  loss using both the score and the mean-pooled last hidden state, as model.c's backward
  takes both (tokens/s)
- scoring: 100 documents of 256 tokens under torch.inference_mode, batches of 20 (docs/s)
Each figure is the best step (batch) of the run, as in dev/bench_model.c.
Attention is PyTorch's default (scaled_dot_product_attention). No padding: every sequence
has 256 tokens, so the padded batch is the packed one.
"""
import os
import sys
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

def main():
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, num_labels=1,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(cfg).eval()  # eval: no dropout, as model.c
    B, T, DOCS, SCORE_BATCH = 16, 256, 100, 20
    def batch(n):
        ids = torch.randint(0, cfg.vocab_size, (n, T))
        ids[:, 0] = 101
        types = torch.zeros(n, T, dtype=torch.long)
        types[:, T // 4:] = 1
        return ids, types
    ids, types = batch(B)
    weights = torch.full((B, cfg.hidden_size), 1e-3)
    def step():
        model.zero_grad(set_to_none=False)
        out = model(input_ids=ids, token_type_ids=types, output_hidden_states=True)
        emb = out.hidden_states[-1].mean(dim=1)
        loss = out.logits.sum() / B + (emb * weights).sum()
        loss.backward()
    # each figure is the best step (batch) of the run, as in dev/bench_model.c
    step()  # warm-up
    train_s = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        train_s = min(train_s, time.perf_counter() - t0)
    print(f"PyTorch train: best step {train_s:.3f} s for {B} x {T} tokens, {B * T / train_s:.1f} tokens/s "
          f"({threads} threads, torch {torch.__version__})")

    docs, dtypes = batch(DOCS)
    batch_s = float("inf")
    with torch.inference_mode():
        model(input_ids=docs[:SCORE_BATCH], token_type_ids=dtypes[:SCORE_BATCH])  # warm-up
        for d in range(0, DOCS, SCORE_BATCH):
            t0 = time.perf_counter()
            model(input_ids=docs[d:d + SCORE_BATCH], token_type_ids=dtypes[d:d + SCORE_BATCH]).logits
            batch_s = min(batch_s, time.perf_counter() - t0)
    score = SCORE_BATCH / batch_s
    print(f"PyTorch score: best batch {batch_s:.3f} s for {SCORE_BATCH} documents of {T} tokens, {score:.2f} docs/s")
    print(f"RESULT torch_train_tokens_per_s {B * T / train_s:.1f}")
    print(f"RESULT torch_score_docs_per_s {score:.3f}")

if __name__ == "__main__":
    main()
