"""dev/bench_hf_step.py — transformers' BertForSequenceClassification training step on the GPU,
the peer that dev/gpu_check.sh holds dev/cuda/bert_step beside: the same shapes (MiniLM-L6 and
BERT-base, 8 sequences of 512 tokens, one label), randomly initialised from the config (nothing
downloaded), forward + backward + gradient clip + AdamW per step. --precision fp32 (the default)
runs with TF32 off, as kernels/matmul.cuh's fp32 cuBLAS calls; --precision bf16 runs the forward
under torch.autocast to bfloat16 over fp32 weights and AdamW state (PyTorch's mixed precision, the
peer of train_zelo --precision bf16); --compile wraps the model in torch.compile (its compilation
falls in the warm-up steps, outside the timing). Then MiniLM-L6 on bert_step.cu's mixed batch: 32
sequences of 32 + (157 i mod 481) tokens, padded to the longest (503) with an attention mask, as
transformers' models take a batch; its tokens/s counts the sequences' tokens, not the padding.
Prints one line per model: "hf_step <name> <precision>[ compiled] ms=<per step>
tokens_per_s=<...> attn=<implementation>" (the mixed one named "minilm-l6 mixed").
Usage: python3 dev/bench_hf_step.py [--attn sdpa|eager] [--precision fp32|bf16] [--compile] [--steps 10]
"""
import contextlib
import argparse
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

MODELS = {  # name: (layers, hidden size), 12 heads, intermediate 4x hidden, as bert_step.cu
    "minilm-l6": (6, 384),
    "bert-base": (12, 768),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_hf_step.py: no CUDA device visible to PyTorch")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    device = torch.device("cuda")
    mixed = [32 + (157 * i) % 481 for i in range(32)]  # bert_step.cu's mixed_batch
    runs = [(name, shape, [args.seq] * args.batch) for name, shape in MODELS.items()]
    runs.append(("minilm-l6 mixed", MODELS["minilm-l6"], mixed))
    for name, (layers, hidden), lengths in runs:
        config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=12, intermediate_size=4 * hidden,
                            max_position_embeddings=512, type_vocab_size=2, num_labels=1,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                            attn_implementation=args.attn)
        model = BertForSequenceClassification(config).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
        forward = torch.compile(model) if args.compile else model
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if args.precision == "bf16" \
            else contextlib.nullcontext
        batch, longest = len(lengths), max(lengths)
        length = torch.tensor(lengths, device=device)[:, None]
        position = torch.arange(longest, device=device)[None, :]
        mask = (position < length).long()  # (batch, longest): 1 on a sequence's tokens, 0 on padding
        ids = torch.randint(0, 30522, (batch, longest), device=device) * mask
        types = (position >= length // 2).long() * mask
        target = torch.randn(batch, device=device)

        def step():
            with autocast():
                logits = forward(input_ids=ids, token_type_ids=types, attention_mask=mask).logits[:, 0]
            loss = torch.nn.functional.mse_loss(logits.float(), target)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        for _ in range(3):  # warm-up: allocator, cuBLAS heuristics, AdamW state, compilation
            step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1e3 / args.steps
        tokens = sum(lengths)
        variant = args.precision + (" compiled" if args.compile else "")
        print(f"hf_step {name} {variant} ms={ms:.2f} tokens_per_s={tokens / (ms * 1e-3):.0f} attn={args.attn} "
              f"torch={torch.__version__}", flush=True)
        del model, optimizer, forward
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
