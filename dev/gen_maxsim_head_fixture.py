"""
Writes test/fixtures/model/model_maxsim.bin: the maxsim score head (model.h, SCORE_HEAD_MAXSIM)
on the tiny BERT of dev/gen_model_fixture.py, computed by Hugging Face transformers in float64
from the weights and batch that model_params.bin holds, for test/test_model.c.
    python dev/gen_maxsim_head_fixture.py      # after dev/gen_model_fixture.py
The score of a sequence [CLS] query [SEP] document [SEP] is 20 * the mean over the query's
tokens (after [CLS], before the first [SEP]) of the largest cosine between that token's last
hidden state and a document token's (from the first type-1 token to before the last token);
an empty side gives the score 0. The loss is test_model's:
    loss = sum_s 0.5 * (score_s - y_s)^2 + sum_{s,c} embedding_{s,c} * R_{s,c}
A max has no gradient where two document tokens tie for a query token: the script checks that
every maximum leads the runner-up by more than 1e-4, so that fp32 picks the same token (its
scores agree with these to 2e-5 at scale 20, test_model's tolerance: a cosine to 1e-6).
File: header of 256 int32, [0] magic 0x7A4C5846, [1] 5; payload f32 (rounded from f64): the
loss (1), the scores (S), the gradient of every parameter (num_parameters, model.h order).
"""
import torch
from gen_cosine_head_fixture import write_head_fixture

SCALE = 20.0


def maxsim(q, d):
    cos = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(d, dim=1).T
    if d.shape[0] > 1:
        top2 = cos.topk(2, dim=1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
        assert margin > 1e-4, f"a query token's best two document tokens are {margin:.1e} apart: draw another batch"
    return SCALE * cos.max(dim=1).values.mean()


def main():
    write_head_fixture(maxsim, 5, "model_maxsim.bin")


if __name__ == "__main__":
    main()
