"""
Plots a train_zelo log: the training loss and the learning rate against the step (top),
and NDCG@10 on the evaluation queries against the step (bottom; Recall@100 and MRR@10
drawn faintly when the log has them).

The log is JSONL, one object per line, as train.c writes it:
  {"step": 12, "loss": 0.0312, "lr": 1.2e-4, "grad_norm": 0.8, "tokens_per_s": 4100.5}
  {"step": 100, "eval": {"ndcg@10": 0.41, "recall@100": 0.77, "mrr@10": 0.52}}
  {"step": 300, "round": 1, "eval": {...}}   (--rounds: the evaluation that ends a round)
A round's end is drawn as a dashed line across both plots, and its NDCG@10 is printed.
Any other line ({"event": ...}) is ignored. A line that is not JSON is an error, except
an unfinished last line (the run may still be writing), which is left out with a note.

Usage: python dev/plot_log.py runs/default/log.jsonl [-o loss.png]
(needs matplotlib; the PNG goes next to the log by default, as log.png)
"""
import argparse
import json
import math
import os
import sys

import matplotlib
matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt


def number(value, path, line_no, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        sys.exit(f"error: {path} line {line_no}: \"{key}\" is {value!r}, expected a number")
    return float(value)


def read_log(path):
    """Returns (train, evals, rounds): train = list of (step, loss, lr or None); evals = list of
    (step, {metric: value}); rounds = list of (round, step, ndcg@10 or None), one per round's end."""
    train, evals, rounds = [], [], []
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    # text after the last newline is an unfinished line (or nothing)
    unfinished = raw_lines.pop()
    for line_no, raw in enumerate(raw_lines, 1):
        if raw.strip() == b"":
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            sys.exit(f"error: {path} line {line_no}: not valid JSON: {e}")
        if not isinstance(obj, dict) or "step" not in obj:
            continue
        step = number(obj["step"], path, line_no, "step")
        if "loss" in obj:
            lr = number(obj["lr"], path, line_no, "lr") if "lr" in obj else None
            train.append((step, number(obj["loss"], path, line_no, "loss"), lr))
        elif "eval" in obj:
            ev = obj["eval"]
            if not isinstance(ev, dict):
                sys.exit(f"error: {path} line {line_no}: \"eval\" is not an object")
            evals.append((step, {k: number(v, path, line_no, "eval." + k) for k, v in ev.items()}))
            if "round" in obj:
                rounds.append((int(number(obj["round"], path, line_no, "round")), step, evals[-1][1].get("ndcg@10")))
    if unfinished.strip():
        print(f"note: {path}: the last line is unfinished and left out", file=sys.stderr)
    return train, evals, rounds


def running_mean(values, window):
    """Mean of the last `window` finite values at each point: the loss of one batch is noisy."""
    out, acc = [], []
    for v in values:
        if math.isfinite(v):
            acc.append(v)
            if len(acc) > window:
                acc.pop(0)
        out.append(sum(acc) / len(acc) if acc else float("nan"))
    return out


def plot(train, evals, rounds, out_path, title):
    fig, (ax_loss, ax_eval) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    if train:
        steps = [t[0] for t in train]
        losses = [t[1] for t in train]
        bad = sum(1 for v in losses if not math.isfinite(v))
        if bad:
            print(f"warning: {bad} training steps have a non-finite loss (not drawn)", file=sys.stderr)
        ax_loss.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss")
        if len(train) >= 50:
            window = max(5, len(train) // 50)
            ax_loss.plot(steps, running_mean(losses, window), color="tab:blue", linewidth=1.6,
                         label=f"loss, mean of {window} steps")
        if any(t[2] is not None for t in train):
            ax_lr = ax_loss.twinx()
            lr_points = [(t[0], t[2]) for t in train if t[2] is not None]
            ax_lr.plot([p[0] for p in lr_points], [p[1] for p in lr_points], color="tab:orange",
                       linewidth=1.0, label="learning rate")
            ax_lr.set_ylabel("learning rate", color="tab:orange")
            ax_lr.tick_params(axis="y", labelcolor="tab:orange")
            ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
            ax_lr.set_ylim(bottom=0)
            lines = ax_loss.get_lines() + ax_lr.get_lines()
            ax_loss.legend(lines, [l.get_label() for l in lines], loc="upper right")
        else:
            ax_loss.legend(loc="upper right")
    else:
        ax_loss.text(0.5, 0.5, "no training steps in the log", ha="center", va="center", transform=ax_loss.transAxes)
    ax_loss.set_ylabel("training loss")
    ax_loss.grid(alpha=0.3)

    if evals:
        steps = [e[0] for e in evals]
        names = sorted({k for e in evals for k in e[1]})
        for name in names:
            pts = [(s, e[name]) for s, e in zip(steps, (x[1] for x in evals)) if name in e]
            main = name == "ndcg@10"
            label = name
            if main:
                best = max(pts, key=lambda p: p[1])
                label = f"{name} (best {best[1]:.4f} at step {best[0]:g})"
            ax_eval.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if main else None,
                         linewidth=2.0 if main else 1.0, alpha=1.0 if main else 0.45, label=label)
        ax_eval.legend(loc="lower right")
    else:
        ax_eval.text(0.5, 0.5, "no evaluations in the log", ha="center", va="center", transform=ax_eval.transAxes)
    # drawn after the legends, which list the lines the axes hold when they are made
    for r, step, _ in rounds:
        for ax in (ax_loss, ax_eval):
            ax.axvline(step, color="gray", linestyle="--", linewidth=1.0)
        ax_eval.annotate(f"round {r} ends", (step, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                         textcoords="offset points", fontsize=8, color="gray", va="top")
    ax_eval.set_ylabel("evaluation queries")
    ax_eval.set_xlabel("step")
    ax_eval.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description="Plot a train_zelo JSONL log.")
    p.add_argument("log", help="the JSONL log of a run")
    p.add_argument("-o", "--out", help="PNG to write [the log's path with .png]")
    p.add_argument("--title", help="figure title [the log's path]")
    args = p.parse_args()
    train, evals, rounds = read_log(args.log)
    if not train and not evals:
        sys.exit(f"error: {args.log}: no training step and no evaluation in the log")
    out = args.out or os.path.splitext(args.log)[0] + ".png"
    plot(train, evals, rounds, out, args.title or args.log)
    print(f"{out}: {len(train)} training steps, {len(evals)} evaluations")
    for r, step, ndcg in rounds:
        print(f"round {r} ends at step {step:g}: NDCG@10 {ndcg:.4f}" if ndcg is not None else f"round {r} ends at step {step:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
