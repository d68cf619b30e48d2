"""
A PyTorch experiment for issue 13: which student architecture, trained on a finished
train_zelo run's targets, reaches the judge on the held-out queries. Not part of the
pipeline; it reads a run directory and prints NDCG@10 (pytrec_eval) before and after.

    python dev/student_arch.py --arch separate --run-dir runs/base/cranfield_s42 \
        --data ../shared/data/cranfield --threads 1

--arch:
  joint     [CLS] q [SEP] d [SEP], one sequence, the cosine of the two segments' mean tokens
            (train_zelo's cosine head)
  separate  [CLS] q [SEP] and [CLS] d [SEP] packed into one sequence with positions
            restarting at the second [CLS], no attention across the two: the bi-encoder
            (all-MiniLM-L6-v2's mean pooling and cosine) as a reranker
  gated     as separate, with a learnable bias per layer and head (--gate-init, its own rate
            --gate-lr) on the attention across the two, so that training may open it: a
            cross-encoder that starts as the bi-encoder
Training is train_zelo's default: 300 steps of 4 training queries x 8 candidates, the
rating-pairs loss (every pair of a group against 0.5 erfc(-(e_a - e_b)), Thurstone) on the
scale fitted by a grid over the untrained model's cosines (16 training queries), AdamW at
5e-5 with 10% warm-up and linear decay, weight decay 0.01 on matrices, clip 1, no dropout.
The training queries are those of ratings.tsv that are not held out (validation queries
included, a small difference from train_zelo); the held-out queries rerank the run's hybrid
candidates (run.hybrid.trec).
"""
import argparse, json, math, random, time, subprocess, numpy as np, torch, pytrec_eval
ap = argparse.ArgumentParser()
ap.add_argument("--arch", choices=["joint", "separate", "gated"], required=True)
ap.add_argument("--run-dir", required=True)
ap.add_argument("--data", required=True, help="the collection's folder, as train_zelo --data")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--gate-init", type=float, default=-6.0)
ap.add_argument("--gate-lr", type=float, default=3e-2)
ap.add_argument("--steps", type=int, default=300)
args = ap.parse_args()
arch, rundir, nthreads = args.arch, args.run_dir, args.threads
gate_init, gate_lr, steps = args.gate_init, args.gate_lr, args.steps
torch.set_num_threads(nthreads); torch.manual_seed(0); random.seed(0)
from transformers import AutoTokenizer, AutoModel
mdir = subprocess.check_output(["bash", "dev/find_minilm.sh"]).decode().strip()
tok = AutoTokenizer.from_pretrained(mdir); bert = AutoModel.from_pretrained(mdir, attn_implementation="eager")
D = args.data
docs = {}
for l in open(f"{D}/corpus.jsonl"):
    d = json.loads(l); docs[d["_id"]] = (d["title"] + " " + d["text"]) if d.get("title") else d["text"]
qs = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(f"{D}/queries.jsonl")}
qrels = {}
for l in list(open(f"{D}/qrels/test.tsv"))[1:]:
    q, d, s = l.split("\t"); qrels.setdefault(q, {})[d] = int(s)
hyb = {}
for l in open(f"{rundir}/run.hybrid.trec"):
    f = l.split(); hyb.setdefault(f[0], []).append(f[2])
heldout = set(hyb)
ratings = {}
for l in list(open(f"{rundir}/ratings.tsv"))[1:]:
    q, d, e, _ = l.split("\t")
    if q not in heldout: ratings.setdefault(q, {})[d] = float(e)
train_q = sorted(q for q in ratings if len(ratings[q]) >= 2)
print(arch, D, "train queries", len(train_q), "held-out", len(heldout), flush=True)
L, H = bert.config.num_hidden_layers, bert.config.num_attention_heads
gates = torch.nn.Parameter(torch.full((L, H), gate_init))
MAXLEN = 256

def encode(pairs):
    """pairs of (query, doc) texts -> scores (B,) cosine of segment means"""
    B = len(pairs)
    if arch == "joint":
        b = tok([p[0] for p in pairs], [p[1] for p in pairs], padding=True, truncation="only_second", max_length=MAXLEN, return_tensors="pt")
        ids, types, am = b["input_ids"], b["token_type_ids"], b["attention_mask"]
        pos = torch.arange(ids.shape[1])[None].expand_as(ids)
        seg = types.clone()
        qmask = ((types == 0) & (am == 1)).float(); qmask[:, 0] = 0
        # drop the [SEP] ending the query (last type-0 token) and the final [SEP]
        nq = (types == 0).sum(1) * am[:, 0]
        for i in range(B):
            qmask[i, nq[i] - 1] = 0
        dmask = ((types == 1) & (am == 1)).float()
        last = am.sum(1) - 1
        for i in range(B): dmask[i, last[i]] = 0
    else:
        qt = tok([p[0] for p in pairs], truncation=True, max_length=MAXLEN)["input_ids"]
        dt = tok([p[1] for p in pairs], truncation=True, max_length=MAXLEN)["input_ids"]
        T = max(len(a) + len(c) for a, c in zip(qt, dt))
        ids = torch.zeros(B, T, dtype=torch.long); am = torch.zeros(B, T, dtype=torch.long)
        pos = torch.zeros(B, T, dtype=torch.long); seg = torch.zeros(B, T, dtype=torch.long)
        qmask = torch.zeros(B, T); dmask = torch.zeros(B, T)
        for i, (a, c) in enumerate(zip(qt, dt)):
            n1, n2 = len(a), len(c)
            ids[i, :n1] = torch.tensor(a); ids[i, n1:n1 + n2] = torch.tensor(c)
            am[i, :n1 + n2] = 1; pos[i, :n1] = torch.arange(n1); pos[i, n1:n1 + n2] = torch.arange(n2)
            seg[i, n1:n1 + n2] = 1; qmask[i, :n1] = 1; dmask[i, n1:n1 + n2] = 1
        types = torch.zeros_like(ids)
    emb = bert.embeddings
    x = emb.word_embeddings(ids) + emb.position_embeddings(pos) + emb.token_type_embeddings(types)
    x = emb.dropout(emb.LayerNorm(x))
    pad = (1.0 - am[:, None, None, :].float()) * -1e9
    cross = (seg[:, :, None] != seg[:, None, :]).float()[:, None]  # (B,1,T,T)
    hd = bert.config.hidden_size // H
    for l, layer in enumerate(bert.encoder.layer):
        sa = layer.attention.self
        Bq, T, C = x.shape
        def heads(t): return t.view(Bq, T, H, hd).transpose(1, 2)
        q, k, v = heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + pad
        if arch == "separate": s = s + cross * -1e9
        elif arch == "gated": s = s + cross * gates[l][None, :, None, None]
        a = torch.softmax(s, -1)
        ctx = (a @ v).transpose(1, 2).reshape(Bq, T, C)
        ao = layer.attention.output
        x = ao.LayerNorm(ao.dropout(ao.dense(ctx)) + x)
        h = layer.intermediate(x)
        x = layer.output(h, x)
    qm = (x * qmask[..., None]).sum(1) / qmask.sum(1, keepdim=True)
    dm = (x * dmask[..., None]).sum(1) / dmask.sum(1, keepdim=True)
    return torch.nn.functional.cosine_similarity(qm, dm, dim=-1)

def evaluate():
    bert.eval(); run = {}
    with torch.no_grad():
        for q in sorted(heldout):
            ds = hyb[q]; sc = []
            for i in range(0, len(ds), 25):
                sc += encode([(qs[q], docs[d]) for d in ds[i:i + 25]]).tolist()
            run[q] = {d: s for d, s in zip(ds, sc)}
    ev = pytrec_eval.RelevanceEvaluator({q: qrels.get(q, {}) for q in run}, {"ndcg_cut.10"})
    bert.train()
    return np.mean([v["ndcg_cut_10"] for v in ev.evaluate(run).values()])

def draw_batch():
    out = []
    for q in random.sample(train_q, 4):
        ds = random.sample(sorted(ratings[q]), min(8, len(ratings[q])))
        out.append((q, ds))
    return out

def pair_loss(scores, es, scale):
    i, j = torch.triu_indices(len(es), len(es), 1)
    p = 0.5 * torch.erfc(-(es[i] - es[j]))
    z = scale * (scores[i] - scores[j])
    qq = (0.5 * torch.erfc(-z)).clamp(1e-7, 1 - 1e-7)
    return -(p * qq.log() + (1 - p) * (1 - qq).log()).mean()

bert.train()
for m in bert.modules():
    if isinstance(m, torch.nn.Dropout): m.p = 0.0
# the scale fit: cosines of 16 training queries' 8 docs at the start, grid over log scale
with torch.no_grad():
    bert.eval(); cos_e = []
    for q in random.Random(1).sample(train_q, 16):
        ds = sorted(ratings[q])[:50]
        cos_e.append((encode([(qs[q], docs[d]) for d in ds]), torch.tensor([ratings[q][d] for d in ds])))
    bert.train()
    grid = np.exp(np.linspace(np.log(0.5), np.log(50), 60))
    losses = [float(np.mean([pair_loss(c, e, k).item() for c, e in cos_e])) for k in grid]
    scale = float(grid[int(np.argmin(losses))])
print("scale", round(scale, 3), "loss", round(min(losses), 4), flush=True)
t0 = time.time()
print("step 0 ndcg@10", round(evaluate(), 4), "eval s", round(time.time() - t0), flush=True)
decay = [p for n, p in bert.named_parameters() if p.dim() >= 2]
nodecay = [p for n, p in bert.named_parameters() if p.dim() < 2]
groups = [{"params": decay, "weight_decay": 0.01, "lr": 5e-5}, {"params": nodecay, "weight_decay": 0.0, "lr": 5e-5}]
if arch == "gated": groups.append({"params": [gates], "weight_decay": 0.0, "lr": gate_lr})
opt = torch.optim.AdamW(groups)
base = [g["lr"] for g in groups]
warm = int(0.1 * steps)
t0 = time.time()
for step in range(1, steps + 1):
    f = step / warm if step <= warm else (steps - step) / (steps - warm)
    for g, b in zip(opt.param_groups, base): g["lr"] = b * f
    batch = draw_batch()
    pairs = [(qs[q], docs[d]) for q, ds in batch for d in ds]
    sc = encode(pairs)
    loss, o = 0, 0
    for q, ds in batch:
        loss = loss + pair_loss(sc[o:o + len(ds)], torch.tensor([ratings[q][d] for d in ds]), scale); o += len(ds)
    loss = loss / len(batch)
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(bert.parameters(), 1.0)
    opt.step()
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.4f} {(time.time()-t0)/step:.2f}s/step" + (f" gates mean {gates.mean().item():.2f} max {gates.max().item():.2f}" if arch == "gated" else ""), flush=True)
print("final ndcg@10", round(evaluate(), 4), flush=True)
