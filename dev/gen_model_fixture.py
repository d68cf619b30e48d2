"""
Writes the fixtures of test/test_model.c: a tiny random BERT cross-encoder run by Hugging Face
transformers (BertForSequenceClassification, eager attention) in float64 on a packed batch
of sequences of different lengths, the independent reference for model.c.

    python dev/gen_model_fixture.py      # writes test/fixtures/model/*.bin

The loss, computed the same way by the test, uses both heads:
    loss = sum_s 0.5 * (logit_s - y_s)^2 + sum_{s,c} embedding_{s,c} * R_{s,c}
so dloss/dlogits = logits - y and dloss/dembeddings = R.

Files (little-endian; each starts with a header of 256 int32, then its payload):
  model_params.bin  [0] magic 0x7A4C5846, [1] 1, [2..9] vocab, hidden, layers, heads,
                    intermediate, max_position, type_vocab, num_labels, [10] layer_norm_eps
                    (fp32 bits), [11] num_parameters, [12] N tokens, [13] S sequences,
                    [14] AdamW steps, [15..20] fp32 bits of lr, beta1, beta2, eps,
                    weight_decay, max_norm.
                    payload: seq_starts (S+1) i32, ids (N) i32, types (N) i32,
                    parameters (num_parameters) f32 in model.h order, y (S) f32, R (S*C) f32
  model_grads.bin   [0] magic, [1] 2; payload: loss (1), logits (S*num_labels),
                    embeddings (S*C), gradients (num_parameters), all f32 (rounded from f64)
  model_adamw.bin   [0] magic, [1] 3, [2..2+steps) fp32 bits of GRAD_SCALES; payload, f32
                    (rounded from f64):
                    - training: gradient norm before clipping at each of `steps` real steps
                      (forward, backward, clip to max_norm, AdamW) (steps), and the loss
                      after them (1)
                    - AdamW alone: the weights after `steps` steps whose gradients are
                      GRAD_SCALES[k] * (the fp32 gradients of model_grads.bin), minus the
                      weights before (num_parameters)

Why two AdamW checks: Adam's update g / (sqrt(v) + eps) turns an ABSOLUTE gradient error
into an error of up to error / eps in the update wherever the true gradient is near zero
(the key biases have an exactly zero gradient: softmax ignores a constant per row), so fp32
rounding of the backward pass moves such weights by a good fraction of lr. The training
check therefore compares what is smooth in the weights (the norms, the loss after the
steps); the AdamW-alone check feeds both sides the same gradients and compares every weight.
"""
import os
import struct

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

MAGIC = 0x7A4C5846
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "model")

CFG = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=128, max_position_embeddings=64, type_vocab_size=2, num_labels=1,
           layer_norm_eps=1e-12, hidden_act="gelu", hidden_dropout_prob=0.0,
           attention_probs_dropout_prob=0.0)
# lengths cover a single token and exactly max_position
LENGTHS = [7, 23, 64, 1, 40]
STEPS = 3
# weight decay far above the usual 0.01 so that decaying the wrong tensor changes the result
# by much more than the tolerance
LR, BETA1, BETA2, EPS, WD = 1e-3, 0.9, 0.999, 1e-8, 0.5
# gradient of AdamW-alone step k = GRAD_SCALES[k] * G: with max_norm = 0.6 |G| the first
# step is clipped and the others are not, and the sign flip exercises m against v
GRAD_SCALES = [1.0, 0.25, -0.5]
assert len(GRAD_SCALES) == STEPS


def flat_order(model, L):
    """the model's tensors in model.h order, qkv stacked per layer"""
    b = model.bert
    lay = b.encoder.layer
    def stack(fn):
        return [fn(lay[l]) for l in range(L)]
    return [
        [b.embeddings.word_embeddings.weight], [b.embeddings.position_embeddings.weight],
        [b.embeddings.token_type_embeddings.weight],
        [b.embeddings.LayerNorm.weight], [b.embeddings.LayerNorm.bias],
        [t for l in range(L) for t in (lay[l].attention.self.query.weight, lay[l].attention.self.key.weight,
                                       lay[l].attention.self.value.weight)],
        [t for l in range(L) for t in (lay[l].attention.self.query.bias, lay[l].attention.self.key.bias,
                                       lay[l].attention.self.value.bias)],
        stack(lambda x: x.attention.output.dense.weight), stack(lambda x: x.attention.output.dense.bias),
        stack(lambda x: x.attention.output.LayerNorm.weight), stack(lambda x: x.attention.output.LayerNorm.bias),
        stack(lambda x: x.intermediate.dense.weight), stack(lambda x: x.intermediate.dense.bias),
        stack(lambda x: x.output.dense.weight), stack(lambda x: x.output.dense.bias),
        stack(lambda x: x.output.LayerNorm.weight), stack(lambda x: x.output.LayerNorm.bias),
        [b.pooler.dense.weight], [b.pooler.dense.bias],
        [model.classifier.weight], [model.classifier.bias],
    ]


def set_flat(groups, flat):
    """copies flat (model.h order) into the tensors of flat_order's groups; returns the count"""
    off = 0
    with torch.no_grad():
        for g in groups:
            for t in g:
                t.copy_(torch.from_numpy(flat[off:off + t.numel()].reshape(t.shape)))
                off += t.numel()
    return off


def flatten(groups, grad=False):
    return np.concatenate([(t.grad if grad else t).detach().reshape(-1).numpy() for g in groups for t in g])


def run(model, ids, types, starts):
    """logits (S, 1) and mean-pooled last hidden states (S, C), one sequence at a time"""
    logits, embs = [], []
    for s in range(len(starts) - 1):
        a, b = starts[s], starts[s + 1]
        out = model(input_ids=ids[None, a:b], token_type_ids=types[None, a:b], output_hidden_states=True)
        logits.append(out.logits[0])
        embs.append(out.hidden_states[-1][0].mean(dim=0))
    return torch.stack(logits), torch.stack(embs)


def main():
    torch.manual_seed(1234)
    rng = np.random.default_rng(1234)
    config = BertConfig(**CFG, attn_implementation="eager")
    model = BertForSequenceClassification(config).eval()
    L, C = CFG["num_hidden_layers"], CFG["hidden_size"]
    # every tensor random (biases and LayerNorm too), so that a mix-up of any two shows;
    # values rounded to fp32 first, so the float64 reference runs exactly the test's weights
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                v = 1.0 + 0.1 * torch.randn(p.shape)
            elif name.endswith("bias"):
                v = 0.05 * torch.randn(p.shape)
            else:
                v = 0.1 * torch.randn(p.shape)
            p.copy_(v.float())
    model = model.double()
    groups = flat_order(model, L)

    starts = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int32)
    N, S = int(starts[-1]), len(LENGTHS)
    ids = rng.integers(0, CFG["vocab_size"], size=N).astype(np.int32)
    types = np.zeros(N, dtype=np.int32)
    for s in range(S):  # query part type 0, document part type 1, as a cross-encoder pair
        a, b = starts[s], starts[s + 1]
        types[a + (b - a) // 3 + 1:b] = 1 if b - a > 1 else 0
    y = rng.standard_normal(S).astype(np.float32)
    R = rng.standard_normal((S, C)).astype(np.float32)
    ids_t, types_t = torch.from_numpy(ids).long(), torch.from_numpy(types).long()
    y_t, R_t = torch.from_numpy(y).double(), torch.from_numpy(R).double()

    def loss_fn():
        logits, embs = run(model, ids_t, types_t, starts)
        return 0.5 * ((logits[:, 0] - y_t) ** 2).sum() + (embs * R_t).sum(), logits, embs

    params0 = flatten(groups).copy()
    loss, logits, embs = loss_fn()
    model.zero_grad()
    loss.backward()
    grads = flatten(groups, grad=True).copy()
    norm0 = float(np.sqrt((grads ** 2).sum()))
    max_norm = 0.6 * norm0  # the first step is clipped for sure

    # AdamW as Hugging Face sets it up: no decay on biases and LayerNorm weights
    def make_optimizer():
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
        return torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                                 lr=LR, betas=(BETA1, BETA2), eps=EPS)
    def set_params(flat):
        set_flat(groups, flat)

    # training: real steps
    opt = make_optimizer()
    norms = []
    for _ in range(STEPS):
        opt.zero_grad()
        l, _, _ = loss_fn()
        l.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
        opt.step()
    with torch.no_grad():
        loss_after = loss_fn()[0].item()

    # AdamW alone: the test's fp32 gradients, scaled, on the initial weights
    set_params(params0)
    opt = make_optimizer()
    g32 = grads.astype(np.float32).astype(np.float64)
    for scale in GRAD_SCALES:
        off = 0
        for g in groups:
            for t in g:
                t.grad = torch.from_numpy(scale * g32[off:off + t.numel()].reshape(t.shape)).clone()
                off += t.numel()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
    delta = flatten(groups) - params0
    print(f"N={N} S={S} params={params0.size} loss={loss.item():.6f} norms={norms} "
          f"max_norm={max_norm:.6f} loss after {STEPS} steps={loss_after:.6f}")

    os.makedirs(OUT, exist_ok=True)
    def f32bits(x):
        return struct.unpack("<i", struct.pack("<f", x))[0]
    h = np.zeros(256, dtype=np.int32)
    h[:15] = [MAGIC, 1, CFG["vocab_size"], C, L, CFG["num_attention_heads"], CFG["intermediate_size"],
              CFG["max_position_embeddings"], CFG["type_vocab_size"], CFG["num_labels"],
              f32bits(CFG["layer_norm_eps"]), params0.size, N, S, STEPS]
    h[15:21] = [f32bits(v) for v in (LR, BETA1, BETA2, EPS, WD, max_norm)]
    with open(os.path.join(OUT, "model_params.bin"), "wb") as f:
        f.write(h.tobytes())
        for a in (starts, ids, types):
            f.write(a.astype("<i4").tobytes())
        for a in (params0, y, R):
            f.write(a.astype("<f4").tobytes())
    def header(kind, extra=()):
        g = np.zeros(256, dtype=np.int32)
        g[:2 + len(extra)] = [MAGIC, kind, *extra]
        return g.tobytes()
    with open(os.path.join(OUT, "model_grads.bin"), "wb") as f:
        f.write(header(2))
        for a in (np.array([loss.item()]), logits.detach().numpy(), embs.detach().numpy(), grads):
            f.write(a.astype("<f4").tobytes())
    with open(os.path.join(OUT, "model_adamw.bin"), "wb") as f:
        f.write(header(3, [f32bits(v) for v in GRAD_SCALES]))
        for a in (np.array(norms), np.array([loss_after]), delta):
            f.write(a.astype("<f4").tobytes())


if __name__ == "__main__":
    main()
