"""
Checks a directory written by bert_export_hf (io/weights.c): transformers (AutoTokenizer +
AutoModelForSequenceClassification) and sentence-transformers (CrossEncoder) must load it
with no missing or unexpected tensor and score each (query, doc) as the C forward pass did.

Usage, from the repository root, after build/test_weights has written the export:
    python dev/check_export.py build/export_minilm_ce build/export_minilm_ce_scores.jsonl
The scores file has one JSON object per line: {"query", "doc", "score" (the C logit),
"max_length" (the truncation the C side's token ids were made with)}. CrossEncoder runs
with its defaults, so the export's model_max_length must be that max_length.

Tolerance: 1e-4 relative (values under 1e-2 compared absolutely). Both sides run the same
fp32 weights in fp32 with different summation orders, which moves a logit by a few 1e-6
relative; a wrong tensor name, a transposed matrix or a different tokenization moves it by
far more. Exits non-zero if any score is off.
"""
import json
import sys

import torch
from sentence_transformers import CrossEncoder
from transformers import AutoModelForSequenceClassification, AutoTokenizer

TOL = 1e-4


def worst_rel_err(got, want):
    got = torch.as_tensor(got, dtype=torch.float64).flatten()
    want = torch.as_tensor(want, dtype=torch.float64).flatten()
    err = (got - want).abs() / want.abs().clamp(min=1e-2)
    return err.max().item(), err.argmax().item()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python dev/check_export.py EXPORT_DIR SCORES_JSONL")
    export_dir, scores_path = sys.argv[1], sys.argv[2]
    with open(scores_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    max_lengths = {r["max_length"] for r in rows}
    if len(max_lengths) != 1:
        sys.exit(f"{scores_path}: rows disagree on max_length {max_lengths}")
    max_length = max_lengths.pop()
    pairs = [(r["query"], r["doc"]) for r in rows]
    c_scores = torch.tensor([r["score"] for r in rows], dtype=torch.float64)
    torch.set_num_threads(2)
    ok = True

    tok = AutoTokenizer.from_pretrained(export_dir)
    model, info = AutoModelForSequenceClassification.from_pretrained(export_dir, output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    print(f"transformers: {type(model).__name__}, tokenizer {type(tok).__name__}, num_labels {model.config.num_labels}, "
          f"loading problems: {problems or 'none'}")
    ok &= not problems
    with torch.no_grad():
        hf = torch.cat([model(**tok(q, d, truncation=True, max_length=max_length, return_tensors="pt")).logits[:, 0] for q, d in pairs])
    err, at = worst_rel_err(hf, c_scores)
    print(f"transformers logits vs C: worst relative error {err:.3g} (pair {at}: {hf[at].item():.7f} vs {c_scores[at].item():.7f}), {len(rows)} pairs")
    ok &= err <= TOL

    # the export's tokenizer_config.json names the length the model was scored at, so the
    # defaults of transformers and CrossEncoder truncate as the C side did
    print(f"tokenizer model_max_length {tok.model_max_length}, C scores made at max_length {max_length}")
    ok &= tok.model_max_length == max_length

    ce = CrossEncoder(export_dir, device="cpu")
    raw = ce.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
    err, at = worst_rel_err(raw, c_scores)
    print(f"CrossEncoder raw scores vs C logits: worst relative error {err:.3g} (pair {at})")
    ok &= err <= TOL
    # CrossEncoder's default for one label is a sigmoid on the logit
    default = ce.predict(pairs, convert_to_tensor=True)
    err, at = worst_rel_err(default, torch.sigmoid(c_scores))
    print(f"CrossEncoder default scores ({type(ce.activation_fn).__name__ if hasattr(ce, 'activation_fn') else 'default activation'}) "
          f"vs sigmoid(C logits): worst relative error {err:.3g} (pair {at})")
    ok &= err <= TOL

    print("export check: " + ("OK" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
