"""
Writes test/fixtures/metrics/graded.txt for test/test_metrics.c: rankings with real-valued
gains (the judge's ratings, which train_zelo's fusion fit scores rankings by) and their
NDCG@10 from scikit-learn's ndcg_score, an implementation independent of io/metrics.c.

    pip install scikit-learn && python dev/gen_graded_ndcg_fixture.py

Each line: n, then n gains, then n scores, then the NDCG@10. Scores are distinct float32
values (printed exactly), so the order is the same under any tie rule (ignore_ties=True
sorts by score alone); gains are non-negative doubles printed with 17 digits, at least one
positive. Cases: n from 1 to 60, some with every gain but one zero, some with many equal
gains, some shorter than the cut.
"""
import os

import numpy as np
from sklearn.metrics import ndcg_score

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "metrics", "graded.txt")
rng = np.random.default_rng(20261203)
lines = []
for case in range(120):
    n = int(rng.integers(1, 61))
    kind = case % 3
    if kind == 0:
        gains = rng.normal(size=n)
        gains = gains - gains.min()          # ratings shifted to a zero minimum, as train_zelo does
    elif kind == 1:
        gains = np.zeros(n)
        gains[rng.integers(n)] = rng.uniform(0.1, 3.0)
    else:
        gains = rng.integers(0, 3, size=n).astype(np.float64)
    if gains.max() <= 0:
        gains[rng.integers(n)] = 1.0
    scores = rng.permutation(n * 7)[:n].astype(np.float32) * np.float32(0.37) - np.float32(5.0)
    want = ndcg_score(gains[None, :], scores.astype(np.float64)[None, :], k=10, ignore_ties=True) if n > 1 else 1.0
    lines.append(" ".join([str(n)] + ["%.17g" % g for g in gains] + ["%.9g" % s for s in scores] + ["%.17g" % want]))
with open(OUT, "w") as fp:
    fp.write("\n".join(lines) + "\n")
print("wrote %d cases to %s" % (len(lines), OUT))
