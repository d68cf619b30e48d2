"""
Writes test/fixtures/zelo/scale_fit.txt: cases for zelo_pair_scale_fit (zelo_loss.c), the
cosine head's scale fitted to the ratings' pair probabilities, each with scipy's minimiser of
the same loss as the reference.
The loss of a scale k: the mean over pairs of −p log F(k(x_a − x_b)) − (1 − p) log F(k(x_b − x_a)),
F the Thurstone link ½ erfc(−d) = Φ(√2 d), computed with scipy.special.log_ndtr; the reference k is
scipy.optimize.minimize_scalar's bounded search over log k in [log 1e-3, log 1e4].
Run from the repository root: python3 dev/gen_scale_fit_fixture.py
Layout (text): a line "cases N"; then per case a line "n num_pairs k loss" and n lines of x, then
num_pairs lines "a b p". x and p are float32 values printed exactly (%.9g), as the C code reads
them; k and loss are the reference's (%.17g).
"""
import os

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_ndtr

OUT = "test/fixtures/zelo/scale_fit.txt"


def thurstone_prob(d):
    return np.exp(log_ndtr(np.sqrt(2.0) * d))


def pair_loss(k, x, a, b, p):
    d = k * (x[a].astype(np.float64) - x[b].astype(np.float64))
    return float(np.mean(-p * log_ndtr(np.sqrt(2.0) * d) - (1.0 - p) * log_ndtr(-np.sqrt(2.0) * d)))


def groups_case(rng, groups, size, rating_sd, cosine_slope, noise):
    """cosines near 0.6 that follow the ratings (slope cosine_slope per rating unit) with noise"""
    xs, a, b, p = [], [], [], []
    for g in range(groups):
        e = rng.normal(0.0, rating_sd, size)
        x = 0.6 + cosine_slope * e + rng.normal(0.0, noise, size)
        base = g * size
        for i in range(size):
            for j in range(i + 1, size):
                a.append(base + i)
                b.append(base + j)
                p.append(thurstone_prob(e[i] - e[j]))
        xs.append(x)
    return (np.concatenate(xs).astype(np.float32), np.array(a), np.array(b),
            np.array(p, dtype=np.float32))


def main():
    rng = np.random.default_rng(20261203)
    cases = [
        # the shape of train.c's fit: ratings a few tenths apart, cosines a few hundredths
        groups_case(rng, 4, 12, 0.25, 0.08, 0.02),
        # a sharper judge and cosines that barely move: a large scale
        groups_case(rng, 3, 10, 1.5, 0.002, 0.001),
        # cosines that follow the ratings loosely: a small scale
        groups_case(rng, 5, 8, 0.2, 0.5, 0.6),
    ]
    lines = [f"cases {len(cases)}"]
    for x, a, b, p in cases:
        p64 = p.astype(np.float64)
        res = minimize_scalar(lambda u: pair_loss(np.exp(u), x, a, b, p64),
                              bounds=(np.log(1e-3), np.log(1e4)), method="bounded",
                              options={"xatol": 1e-12, "maxiter": 1000})
        k = float(np.exp(res.x))
        lines.append(f"{len(x)} {len(a)} {k:.17g} {pair_loss(k, x, a, b, p64):.17g}")
        lines += [f"{v:.9g}" for v in x]
        lines += [f"{i} {j} {q:.9g}" for i, j, q in zip(a, b, p)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
