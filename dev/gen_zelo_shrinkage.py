"""
How much the rating fit's objective compresses ratings, measured with scipy alone (the same
objective as dev/gen_zelo_fixture.py, solved by L-BFGS-B; nothing from zelo_loss.c), for
the figures the README and zelo_loss.h quote and test_zelo checks.

Within a query: hidden ratings s ~ N(0, 1) for n = 100 documents, k = 8 (4 random
Hamiltonian cycles), Thurstone link. Two judges:
  exact  p = F(s_a − s_b): the model the fit assumes, so any compression is the prior's;
  sim    the sim judge's noise model (zelo_loss.h): p = 0.98 F(x) + 0.02 u,
         x ~ N(s_a − s_b, 0.2²), u ~ U(0, 1): a judge that is less sure than the model,
         which compresses the fitted ratings by itself, even with λ = 0.
The slope is the least-squares slope of fitted on hidden ratings (both centred per query),
pooled over the queries.

Across queries (calibration): 60 queries × 30 documents, query levels c_q ~ N(0, 0.7²),
s_qd = u_qd + c_q with u ~ N(0, 1), cross-query pairs along 4 random cycles over the
queries, 4 document pairs per edge, judged by the same judge; the slope is that of the
fitted offsets b_q on the hidden query levels (mean of s over the query's documents).

Run from the repository root: python3 dev/gen_zelo_shrinkage.py  (about a minute)
"""
import os
import sys

import numpy as np
import scipy.special

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_zelo_fixture import THURSTONE, cycles_graph, solve_scipy  # noqa: E402


def link(x):
    return 0.5 * scipy.special.erfc(-x)


def judge(rng, d, kind):
    if kind == "exact":
        return link(d)
    x = d + 0.2 * rng.normal(size=len(d))
    return 0.98 * link(x) + 0.02 * rng.random(len(d))


def slope(fitted, hidden):
    h = hidden - hidden.mean()
    return float(np.dot(fitted - fitted.mean(), h) / np.dot(h, h))


def within_query(lams, kind, queries=20, n=100, k=8, seed=1):
    rng = np.random.default_rng(seed)
    problems = []
    for _ in range(queries):
        s = rng.normal(size=n)
        a, b = cycles_graph(rng, n, k)
        problems.append((s, a, b, judge(rng, s[a] - s[b], kind)))
    out = []
    for lam in lams:
        fit, hid = [], []
        for s, a, b, p in problems:
            e, _ = solve_scipy(n, a, b, p, np.zeros(len(a)), THURSTONE, lam)
            fit.append(e - e.mean())
            hid.append(s - s.mean())
        fit, hid = np.concatenate(fit), np.concatenate(hid)
        out.append(float(np.dot(fit, hid) / np.dot(hid, hid)))
    return out


def calibration(lams, kind, Q=60, n=30, k=8, cycles=4, m=4, seed=2):
    rng = np.random.default_rng(seed)
    level = 0.7 * rng.normal(size=Q)
    hidden = rng.normal(size=(Q, n)) + level[:, None]
    graphs = []
    for q in range(Q):
        a, b = cycles_graph(rng, n, k)
        graphs.append((a, b, judge(rng, hidden[q, a] - hidden[q, b], kind)))
    qa, qb = cycles_graph(rng, Q, 2 * cycles)
    qa, qb = np.repeat(qa, m), np.repeat(qb, m)
    da, db = rng.integers(0, n, len(qa)), rng.integers(0, n, len(qa))
    cp = judge(rng, hidden[qa, da] - hidden[qb, db], kind)
    out = []
    for lam in lams:
        e = np.stack([solve_scipy(n, a, b, p, np.zeros(len(a)), THURSTONE, lam)[0] for a, b, p in graphs])
        off = e[qa, da] - e[qb, db]
        offsets, _ = solve_scipy(Q, qa, qb, cp, off, THURSTONE, lam)
        out.append(slope(offsets + e.mean(axis=1), hidden.mean(axis=1)))
    return out


if __name__ == "__main__":
    lams = [0.0, 0.01, 0.02, 0.05, 0.1]
    for kind in ("exact", "sim"):
        s = within_query(lams, kind)
        print(f"within a query, {kind:5s} judge: slope of fitted on hidden ratings: "
              + ", ".join(f"λ={lam:g}: {x:.3f}" for lam, x in zip(lams, s)))
    for kind in ("exact", "sim"):
        s = calibration(lams[1:], kind)
        print(f"calibration,    {kind:5s} judge: slope of fitted on hidden query levels: "
              + ", ".join(f"λ={lam:g}: {x:.3f}" for lam, x in zip(lams[1:], s)))
