"""
An independent PyTorch + Hugging Face reference for the training stage of train_zelo.

It reads a FINISHED train_zelo run directory (ratings.tsv: the targets the run fitted;
judgments.jsonl: the judged pairs; run.bm25.trec: the BM25 candidates of the held-out
queries), trains transformers' BertForSequenceClassification(num_labels=1) from the same
Hugging Face start on the same targets with the same loss, optimizer, schedule and batch
shape as train_zelo, and prints the held-out NDCG@10 (pytrec_eval) beside BM25's and the C
model's from the run's own TREC files. When the reference lands near the C figure, that
figure is what the data allows; when it lands well above, look for a bug in train_zelo.

Run from the repository root, after a train_zelo run (here the README's Cranfield run with
--loss pairwise); give --steps and --loss as the C run had them, to compare like with like,
and --eval-every to compare its figures epoch by epoch:

    python dev/torch_train_ref.py --run-dir runs/cran_sim_pw --init "$(dev/find_minilm.sh)" \
        --data ../shared/data/cranfield --loss pairwise --steps 831 --eval-every 277 --threads 2

Matched (file:line of train_zelo's code):
- items: every (query, document, target) row of ratings.tsv, candidates in their order
- batch: 4 training queries drawn with replacement x 8 of each one's candidates without
  replacement, first the ends of its judged pairs drawn at random (up to 4 x 8 draws), then
  any candidates to fill up (microbatch_sample, train.c:773); batch 32, group 8 (train.c:98)
- text: query first, then "title text" (title and a space when there is a title; io/beir.c:140),
  [CLS] q [SEP] d [SEP], 256 tokens, longest-first truncation (tokenizer/wordpiece.c:339,
  train.c:306)
- loss mse: mean of (0.5 erfc(-logit) - target)^2 (zelo_mse_loss, zelo_loss.c:835);
  pairwise: mean over the judged pairs inside a group of -(p log F(d) + (1-p) log F(-d)),
  d = logit_a - logit_b, F(x) = 0.5 erfc(-x) (zelo_loss.c:857, 313)
- steps: ceil(rows / 32) by default (train.c:1288); lr 1e-4 with --init (train.c, parse_options);
  warm-up over int(0.1 * steps) steps with lr(step) = peak * step / warmup from step 1,
  then linear decay to 0 at the last step (learning_rate, train.c:833)
- AdamW betas (0.9, 0.999), eps 1e-8 (train.c:1369), decoupled weight decay 0.01 on the
  matrices and embedding tables only, not on biases or LayerNorm (model.c:117, 990);
  gradient clipping at global norm 1.0 with torch's rule (model.c:956)
- no dropout (model.c has none); fp32
Not matched:
- the batch RNG: Python's random, seeded by --seed, not train.c's per-step generator
- the classifier head (all-MiniLM-L6-v2 has the pooler but no classifier): transformers
  draws it from N(0, 0.02) like bert_init_random (model.c:595), but a different draw
- gradient accumulation (train_zelo's --grad-accum, default 1) is not offered
- evaluation during training only with --eval-every (train_zelo's default: every steps/5),
  since one evaluation of every held-out candidate takes minutes on a CPU
"""
import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field

# the tokenizer's own thread pool would compete with --threads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytrec_eval
import torch
from transformers import BertForSequenceClassification, BertTokenizerFast

EVAL_BATCH = 64  # train_zelo scores in batches of max(batch size, 64) (train.c:1292)


def die(msg):
    print(f"torch_train_ref: {msg}", file=sys.stderr)
    sys.exit(1)


def need(path):
    if not os.path.isfile(path):
        die(f"{path} does not exist")
    return path


def read_texts(path, with_title):
    """{_id: text} of a BEIR corpus.jsonl / queries.jsonl, a document's text as io/beir.c builds it"""
    texts = {}
    with open(need(path), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                title = (o.get("title") or "") if with_title else ""
                texts[o["_id"]] = f"{title} {o['text']}" if title else o["text"]
    return texts


@dataclass
class TrainQuery:
    qid: str
    docs: list = field(default_factory=list)     # candidate doc ids, in the run's order
    targets: list = field(default_factory=list)  # their targets in (0, 1)
    pairs: list = field(default_factory=list)    # judged (a, b, p), a and b indices into docs


def read_training(run_dir):
    """the training queries of ratings.tsv, with the within-query judged pairs of judgments.jsonl"""
    train = {}
    with open(need(os.path.join(run_dir, "ratings.tsv"))) as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["query_id", "doc_id", "rating", "target"]:
            die(f"{f.name}: header {header}, expected query_id doc_id rating target")
        for line in f:
            qid, did, _, target = line.rstrip("\n").split("\t")
            q = train.setdefault(qid, TrainQuery(qid))
            q.docs.append(did)
            q.targets.append(float(target))
    if not train:
        die(f"{run_dir}/ratings.tsv has no rows")
    index = {qid: {d: j for j, d in enumerate(q.docs)} for qid, q in train.items()}
    path = need(os.path.join(run_dir, "judgments.jsonl"))
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            o = json.loads(line)
            qid = o["query_id"]
            # cross-query battles (query_id_b) only calibrated the offsets
            if o.get("query_id_b", qid) != qid or qid not in train:
                continue
            a, b = index[qid].get(o["doc_a"]), index[qid].get(o["doc_b"])
            if a is None or b is None:
                die(f"{path}:{line_no}: a document that is not among query {qid}'s candidates in ratings.tsv")
            train[qid].pairs.append((a, b, float(o["p"])))
    return list(train.values())


def read_trec(path):
    """{qid: {doc: score}} of a TREC run, queries in the file's order"""
    run = {}
    with open(need(path)) as f:
        for line in f:
            qid, _, did, _, score, _ = line.split()
            run.setdefault(qid, {})[did] = float(score)
    return run


def read_qrels(path):
    qrels = {}
    with open(need(path)) as f:
        next(f)  # query-id corpus-id score
        for line in f:
            qid, did, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(grade)
    return qrels


def ndcg10(run, qrels):
    """mean NDCG@10 over the queries of run (graded gains as in qrels)"""
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10"}).evaluate(run)
    return sum(m["ndcg_cut_10"] for m in per_query.values()) / len(per_query)


def sample_batch(rng, train, num_groups, group_size):
    """items (qid, doc, target) and judged pairs (i, j, p) inside a group, i and j indices
    into items: train.c's microbatch_sample with another generator"""
    items, pairs = [], []
    for _ in range(num_groups):
        q = rng.choice(train)
        want = min(group_size, len(q.docs))
        pos = {}  # candidate index -> position in the group, in the order taken
        # the ends of judged pairs first, so that the pairwise loss has pairs in every group
        tries = 0
        while len(pos) < want and tries < 4 * want and q.pairs:
            a, b, _ = rng.choice(q.pairs)
            for j in (a, b):
                if len(pos) < want:
                    pos.setdefault(j, len(pos))
            tries += 1
        while len(pos) < want:
            pos.setdefault(rng.randrange(len(q.docs)), len(pos))
        base = len(items)
        items += [(q.qid, q.docs[j], q.targets[j]) for j in pos]
        pairs += [(base + pos[a], base + pos[b], p) for a, b, p in q.pairs if a in pos and b in pos]
    return items, pairs


def log_thurstone(x):
    """log F(x), F(x) = 0.5 erfc(-x) = Phi(sqrt(2) x): log_ndtr keeps both tails precise"""
    return torch.special.log_ndtr(math.sqrt(2.0) * x)


def batch_loss(logits, targets, pairs, kind):
    if kind == "mse":
        return ((0.5 * torch.erfc(-logits) - targets) ** 2).mean()
    if not pairs:
        return logits.sum() * 0.0  # train.c: a zero gradient, and the optimizer still steps
    a, b, p = (torch.tensor(v) for v in zip(*pairs))
    d = logits[a] - logits[b]
    return -(p * log_thurstone(d) + (1 - p) * log_thurstone(-d)).mean()


def learning_rate(args, step, total):
    """train.c's learning_rate (linear schedule), its warm-up length computed in float32 as there"""
    warmup = int(np.float32(args.warmup) * np.float32(total))
    if step <= warmup:
        return args.lr * step / max(warmup, 1)
    return args.lr * (1.0 - (step - warmup) / max(total - warmup, 1))


class Evaluator:
    """scores every (held-out query, BM25 candidate) pair; tokenized once, in batches of
    similar length so that little compute goes to padding"""

    def __init__(self, tok, cand, queries, docs, max_len):
        self.tok = tok
        self.keys = [(q, d) for q in cand for d in cand[q]]
        for q, d in self.keys:
            if q not in queries or d not in docs:
                die(f"run.bm25.trec names query {q} / document {d}, which --data does not have")
        self.enc = tok([queries[q] for q, _ in self.keys], [docs[d] for _, d in self.keys],
                       truncation="longest_first", max_length=max_len)
        self.order = sorted(range(len(self.keys)), key=lambda i: len(self.enc["input_ids"][i]))

    @torch.no_grad()
    def run(self, model):
        model.eval()
        run = {}
        for s in range(0, len(self.order), EVAL_BATCH):
            idx = self.order[s:s + EVAL_BATCH]
            batch = self.tok.pad({k: [v[i] for i in idx] for k, v in self.enc.items()}, return_tensors="pt")
            for i, z in zip(idx, model(**batch).logits[:, 0].tolist()):
                q, d = self.keys[i]
                run.setdefault(q, {})[d] = z
        model.train()
        return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True, help="a finished train_zelo run directory")
    ap.add_argument("--init", required=True, help="Hugging Face model directory (dev/find_minilm.sh prints all-MiniLM-L6-v2's)")
    ap.add_argument("--data", required=True, help="the BEIR directory the run was made from")
    ap.add_argument("--split", default="test", help="qrels split of the held-out queries [test]")
    ap.add_argument("--loss", choices=("mse", "pairwise"), default="mse", help="training loss [mse]")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps [one epoch: ceil(rows / batch size)]")
    ap.add_argument("--lr", type=float, default=1e-4, help="peak learning rate [1e-4, train_zelo's with --init]")
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps spent warming up [0.1]")
    ap.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decoupled weight decay [0.01]")
    ap.add_argument("--grad-clip", type=float, default=1.0, help="global gradient-norm clip, 0 for none [1.0]")
    ap.add_argument("--batch-size", type=int, default=32, help="sequences per batch [32]")
    ap.add_argument("--group-size", type=int, default=8, help="candidates of one query in a batch [8]")
    ap.add_argument("--max-len", type=int, default=256, help="tokens per (query, document) sequence [256]")
    ap.add_argument("--seed", type=int, default=42, help="seed of the batches and of the classifier head [42]")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads [torch's default]")
    ap.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps [0: at the end only]")
    ap.add_argument("--eval-limit", type=int, default=0,
                    help="evaluate only the first Q held-out queries: a quick smoke test, not a figure to report [0: all]")
    args = ap.parse_args()
    if args.batch_size % args.group_size != 0:
        die(f"--batch-size ({args.batch_size}) must be a multiple of --group-size ({args.group_size})")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    train = read_training(args.run_dir)
    rows = sum(len(q.docs) for q in train)
    num_pairs = sum(len(q.pairs) for q in train)
    if args.loss == "pairwise" and num_pairs == 0:
        die(f"{args.run_dir}/judgments.jsonl holds no judged pair of the training queries")
    queries = read_texts(os.path.join(args.data, "queries.jsonl"), with_title=False)
    docs = read_texts(os.path.join(args.data, "corpus.jsonl"), with_title=True)
    missing = [q.qid for q in train if q.qid not in queries] + [d for q in train for d in q.docs if d not in docs]
    if missing:
        die(f"ratings.tsv names ids that {args.data} does not have (a run of another collection?): {missing[:5]}")
    qrels = read_qrels(os.path.join(args.data, "qrels", f"{args.split}.tsv"))
    bm25 = read_trec(os.path.join(args.run_dir, "run.bm25.trec"))
    model_path = os.path.join(args.run_dir, "run.model.trec")
    c_model = read_trec(model_path) if os.path.isfile(model_path) else None
    held_out = list(bm25)[:args.eval_limit] if args.eval_limit > 0 else list(bm25)
    unjudged = [q for q in bm25 if q not in qrels]
    if unjudged:
        die(f"held-out queries without judgments in qrels/{args.split}.tsv (see --split): {unjudged[:5]}")
    total = args.steps if args.steps > 0 else -(-rows // args.batch_size)
    print(f"{len(train)} training queries, {rows} items, {num_pairs} judged pairs; "
          f"{len(bm25)} held-out queries, {len(held_out)} evaluated", flush=True)
    print(f"from the run's files, all {len(bm25)} held-out queries: BM25 NDCG@10 {ndcg10(bm25, qrels):.4f}"
          + (f", train_zelo model {ndcg10(c_model, qrels):.4f}" if c_model else ""), flush=True)
    log_path = os.path.join(args.run_dir, "log.jsonl")
    if os.path.isfile(log_path):
        with open(log_path) as f:
            c_steps = max((o["step"] for o in map(json.loads, f) if "loss" in o), default=0)
        print(f"train_zelo trained {c_steps} steps (log.jsonl); this run trains {total}", flush=True)

    tok = BertTokenizerFast.from_pretrained(args.init)
    torch.manual_seed(args.seed)  # the classifier head's random draw
    model = BertForSequenceClassification.from_pretrained(
        args.init, num_labels=1, dtype=torch.float32,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    model.train()
    # train_zelo decays the matrices and embedding tables, never biases or LayerNorm (model.c:117)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": args.weight_decay},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    cand = {q: bm25[q] for q in held_out}
    evaluator = Evaluator(tok, cand, queries, docs, args.max_len)
    sub_qrels = {q: qrels[q] for q in held_out}

    print(f"training: {total} steps of {args.batch_size} sequences ({args.batch_size // args.group_size} queries x "
          f"{args.group_size} documents), {args.loss} loss, lr {args.lr:g}", flush=True)
    rng = random.Random(args.seed)
    t0 = time.time()
    losses = []
    for step in range(1, total + 1):
        items, pairs = sample_batch(rng, train, args.batch_size // args.group_size, args.group_size)
        batch = tok([queries[q] for q, _, _ in items], [docs[d] for _, d, _ in items], truncation="longest_first",
                    max_length=args.max_len, padding=True, return_tensors="pt")
        logits = model(**batch).logits[:, 0]
        loss = batch_loss(logits, torch.tensor([t for _, _, t in items]), pairs, args.loss)
        opt.zero_grad()
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        lr = learning_rate(args, step, total)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            die(f"step {step}: the loss is {losses[-1]}")
        if step % 10 == 0 or step in (1, total):
            elapsed = time.time() - t0
            # the mean since the last line: one batch's loss is noisy
            print(f"step {step}/{total}: loss {sum(losses) / len(losses):.5f}, lr {lr:.3e}, {elapsed:.0f}s, "
                  f"ETA {elapsed / step * (total - step):.0f}s", flush=True)
            losses = []
        if args.eval_every > 0 and step % args.eval_every == 0 and step < total:
            print(f"step {step}: NDCG@10 {ndcg10(evaluator.run(model), sub_qrels):.4f}", flush=True)

    ours = ndcg10(evaluator.run(model), sub_qrels)
    print(f"\nheld-out queries: {len(held_out)} of {len(bm25)}"
          + (" (--eval-limit: a smoke test, not a figure to report)" if len(held_out) < len(bm25) else ""))
    print(f"{'system':<34} NDCG@10")
    print(f"{'BM25 (run.bm25.trec)':<34} {ndcg10(cand, sub_qrels):.4f}")
    if c_model:
        print(f"{'train_zelo model (run.model.trec)':<34} {ndcg10({q: c_model[q] for q in held_out if q in c_model}, sub_qrels):.4f}")
    print(f"{'PyTorch reference':<34} {ours:.4f}  ({total} steps, {args.loss}, {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
