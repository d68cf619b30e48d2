"""
Writes test/fixtures/model/model_split.bin and model_split_cosmax.bin: the split packing
(model.h, PACKING_SPLIT) with the cosine head, and with the cosine+maxsim head, on the tiny BERT
of dev/gen_model_fixture.py, computed in float64 from the weights and batch that
model_params.bin holds, for test/test_model.c.
    python dev/gen_split_packing_fixture.py      # after dev/gen_model_fixture.py
The batch's token types mark each sequence's two segments: type 0 the query's, type 1 the
document's. Under the split packing every token is embedded with token type 0 and a position
counted from the start of its own segment; in layer l, head h, a score from a token to one of
the other segment gets + GATES[l][h] before the softmax; the score is 20 * cos(u, v), u and v
the means of the last hidden states over each whole segment ([CLS] and [SEP] included), 0
where the document is empty. The cosine+maxsim head adds 20 * the maxsim mean of
dev/gen_maxsim_head_fixture.py over segment_span's spans: the query's tokens after [CLS] and
before its [SEP], the document's from its [CLS] to before its [SEP]. The encoder is transformers' BertModel's own modules (the
embedding tables and LayerNorm, the q/k/v and dense Linears, the intermediate and output
blocks); only the attention's softmax is written here, as the bias is not one of its options.
The loss is test_model's:
    loss = sum_s 0.5 * (score_s - y_s)^2 + sum_{s,c} embedding_{s,c} * R_{s,c}
embedding_s being the mean of the last hidden states over the whole sequence.
File: header of 256 int32, [0] magic 0x7A4C5846, [1] 6 (cosine) or 7 (cosine+maxsim); payload f32 (rounded from f64): the
gates (L * NH), the loss (1), the scores (S), the gradient of every parameter and then of the
gates (num_parameters + L * NH, model.h order).
"""
import math
import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification
from gen_model_fixture import CFG, flat_order, set_flat
from gen_cosine_head_fixture import backward_test_loss, parameter_grads, read_params, write_fixture
from gen_maxsim_head_fixture import maxsim

SCALE = 20.0
L, NH = CFG["num_hidden_layers"], CFG["num_attention_heads"]
# gates of both signs and sizes: open enough that the attention across carries a real share
# (exp(-1) to exp(0.5) of a key's weight), so that a wrong bias or gradient shows
GATES = [[-1.0 + 0.5 * l - 0.25 * h for h in range(NH)] for l in range(L)]


def encode(bert, gates, ids, types):
    """last hidden states (T, C) of one sequence under the split packing"""
    T = len(ids)
    doc = types == 1
    first_doc = int(doc.nonzero()[0]) if doc.any() else T
    pos = torch.tensor([t if t < first_doc else t - first_doc for t in range(T)])
    emb = bert.embeddings
    x = emb.word_embeddings(ids) + emb.position_embeddings(pos) + emb.token_type_embeddings(torch.zeros_like(ids))
    x = emb.LayerNorm(x)
    seg = (torch.arange(T) >= first_doc)
    cross = (seg[:, None] != seg[None, :]).double()  # (T, T)
    hd = CFG["hidden_size"] // NH
    for l, layer in enumerate(bert.encoder.layer):
        sa = layer.attention.self
        def heads(t):
            return t.view(T, NH, hd).transpose(0, 1)  # (NH, T, hd)
        q, k, v = heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + cross[None] * gates[l][:, None, None]
        ctx = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, -1)
        x = layer.attention.output(ctx, x)  # dense, then LayerNorm of it + x
        x = layer.output(layer.intermediate(x), x)
    return x, first_doc


def cosine(q, d):
    return SCALE * torch.nn.functional.cosine_similarity(q.mean(dim=0), d.mean(dim=0), dim=0)


def cosine_maxsim(q, d):
    """the cosine of the whole segments + maxsim (SCALE included) between the query's tokens
    without [CLS] and [SEP] and the document's without its last token, [SEP]"""
    return cosine(q, d) + maxsim(q[1:-1], d[:-1])


def write_split_fixture(head, kind, name):
    starts, ids, types, params, y, R = read_params()
    model = BertForSequenceClassification(BertConfig(**CFG, attn_implementation="eager")).double().eval()
    groups = flat_order(model, L)
    assert set_flat(groups, params) == len(params)
    gates = torch.tensor(GATES, dtype=torch.float64, requires_grad=True)
    ids_t, types_t = torch.from_numpy(ids.copy()).long(), torch.from_numpy(types.copy()).long()
    scores, embs = [], []
    for s in range(len(starts) - 1):
        a, b = int(starts[s]), int(starts[s + 1])
        h, first_doc = encode(model.bert, gates, ids_t[a:b], types_t[a:b])
        embs.append(h.mean(dim=0))
        q, d = h[:first_doc], h[first_doc:]
        if len(d) == 0:
            scores.append(h.sum() * 0.0)
        else:
            scores.append(head(q, d))
    scores = torch.stack(scores)
    loss = backward_test_loss(model, scores, torch.stack(embs), y, R)
    grads = np.concatenate([parameter_grads(groups), gates.grad.reshape(-1).numpy()])
    write_fixture(name, kind, [np.array(GATES).reshape(-1), np.array([loss.item()]), scores.detach().numpy(), grads])
    print(name, "scores", scores.detach().numpy(), "gate gradients", gates.grad.numpy().reshape(-1))


def main():
    write_split_fixture(cosine, 6, "model_split.bin")
    write_split_fixture(cosine_maxsim, 7, "model_split_cosmax.bin")


if __name__ == "__main__":
    main()
