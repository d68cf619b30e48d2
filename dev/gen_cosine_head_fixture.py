"""
Writes test/fixtures/model/model_cosine.bin: the cosine score head (model.h, SCORE_HEAD_COSINE)
on the tiny BERT of dev/gen_model_fixture.py, computed by Hugging Face transformers in float64
from the weights and batch that model_params.bin holds, for test/test_model.c.
    python dev/gen_cosine_head_fixture.py      # after dev/gen_model_fixture.py
The score of a sequence [CLS] query [SEP] document [SEP] is 20 * cos(u, v), u the mean of the
last hidden states of the query's tokens (after [CLS], before the first [SEP]: the token before
the first token of type 1), v the mean over the document's (from its first type-1 token to
before the last token); an empty side gives the score 0. The loss is test_model's:
    loss = sum_s 0.5 * (score_s - y_s)^2 + sum_{s,c} embedding_{s,c} * R_{s,c}
File: header of 256 int32, [0] magic 0x7A4C5846, [1] 4; payload f32 (rounded from f64): the
loss (1), the scores (S), the gradient of every parameter (num_parameters, model.h order).
"""
import os
import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification
from gen_model_fixture import CFG, MAGIC, OUT, flat_order, set_flat

SCALE = 20.0


def read_params():
    raw = open(os.path.join(OUT, "model_params.bin"), "rb").read()
    h = np.frombuffer(raw[:1024], dtype="<i4")
    assert h[0] == MAGIC and h[1] == 1, "model_params.bin: bad magic or kind"
    P, N, S, C = int(h[11]), int(h[12]), int(h[13]), int(h[3])
    ints = np.frombuffer(raw[1024:1024 + 4 * (S + 1 + 2 * N)], dtype="<i4")
    floats = np.frombuffer(raw[1024 + 4 * (S + 1 + 2 * N):], dtype="<f4")
    starts, ids, types = ints[:S + 1], ints[S + 1:S + 1 + N], ints[S + 1 + N:]
    params, y, R = floats[:P], floats[P:P + S], floats[P + S:].reshape(S, C)
    assert len(R.reshape(-1)) == S * C
    return starts, ids, types, params.astype(np.float64), y, R


def cosine(q, d):
    return SCALE * torch.nn.functional.cosine_similarity(q.mean(dim=0), d.mean(dim=0), dim=0)


def write_head_fixture(score, kind, name):
    """The fixture of a score head: score(q, d) of the last hidden states of a sequence's query
    and document tokens, in float64, with test_model's loss; written as kind to OUT/name."""
    starts, ids, types, params, y, R = read_params()
    model = BertForSequenceClassification(BertConfig(**CFG, attn_implementation="eager")).double().eval()
    groups = flat_order(model, CFG["num_hidden_layers"])
    assert set_flat(groups, params) == len(params)
    ids_t, types_t = torch.from_numpy(ids.copy()).long(), torch.from_numpy(types.copy()).long()
    scores, embs = [], []
    for s in range(len(starts) - 1):
        a, b = int(starts[s]), int(starts[s + 1])
        h = model.bert(input_ids=ids_t[None, a:b], token_type_ids=types_t[None, a:b]).last_hidden_state[0]
        embs.append(h.mean(dim=0))
        t = types[a:b]
        first_doc = int(np.argmax(t == 1)) if (t == 1).any() else b - a
        q, d = h[1:max(first_doc - 1, 1)], h[first_doc:max(b - a - 1, first_doc)]
        scores.append(h.sum() * 0.0 if len(q) == 0 or len(d) == 0 else score(q, d))
    scores = torch.stack(scores)
    loss = backward_test_loss(model, scores, torch.stack(embs), y, R)
    write_fixture(name, kind, [np.array([loss.item()]), scores.detach().numpy(), parameter_grads(groups)])
    print("scores", scores.detach().numpy())


def backward_test_loss(model, scores, embs, y, R):
    """test_model's loss of the scores (S,) and embeddings (S, C), backpropagated; returned"""
    y_t, R_t = torch.from_numpy(y.astype(np.float64)), torch.from_numpy(R.astype(np.float64))
    loss = 0.5 * ((scores - y_t) ** 2).sum() + (embs * R_t).sum()
    model.zero_grad()
    loss.backward()
    return loss


def parameter_grads(groups):
    """every parameter's gradient in model.h order; the pooler and the classifier take no part
    under the cosine head: their gradients are zero"""
    return np.concatenate([(t.grad if t.grad is not None else torch.zeros_like(t)).reshape(-1).numpy()
                           for g in groups for t in g])


def write_fixture(name, kind, arrays):
    """OUT/name: the 256-int32 header (magic, kind), then the arrays as little-endian f32"""
    with open(os.path.join(OUT, name), "wb") as f:
        g = np.zeros(256, dtype=np.int32)
        g[:2] = [MAGIC, kind]
        f.write(g.tobytes())
        for a in arrays:
            f.write(np.asarray(a).astype("<f4").tobytes())


def main():
    write_head_fixture(cosine, 4, "model_cosine.bin")


if __name__ == "__main__":
    main()
