"""
Writes test/fixtures/zelo/pair_terms.bin: the per-pair negative log-likelihood
ℓ(d) = −p log F(d) − (1−p) log F(−d) and its slope ℓ'(d), for both links, in 50-digit
arithmetic (mpmath), at differences d that cover the centre, both tails, the far tails where
e^{−d²} underflows, and the points where the C code's approximations change regime.
test/test_zelo.c checks zelo_loss.c's own erfcx series, exp and log through them.
Run from the repository root: python3 dev/gen_zelo_pair_fixture.py
Layout (little-endian): 256 int32 [magic 0x5A454C4F, version 1, kind 4, count], then for
the Thurstone link and then Bradley–Terry: d, p, loss, slope, term_p, term_q, each
(count,) f64, where slope = term_q − term_p (see pair_terms).
"""
import os

import mpmath
import numpy as np

mpmath.mp.dps = 50
MAGIC = 0x5A454C4F
OUT = "test/fixtures/zelo/pair_terms.bin"


def thurstone_cdf(x):
    return mpmath.erfc(-x) / 2


def thurstone_density(x):
    return mpmath.exp(-x * x) / mpmath.sqrt(mpmath.pi)


def bt_cdf(x):
    return 1 / (1 + mpmath.exp(-x))


def bt_density(x):
    return bt_cdf(x) * bt_cdf(-x)


def pair_terms(d, p, cdf, density):
    """ℓ(d), ℓ'(d) and the two terms of ℓ' = −p F'(d)/F(d) + (1−p) F'(−d)/F(−d), whose
    sizes set the test's tolerance where they cancel."""
    d, p = mpmath.mpf(d), mpmath.mpf(p)
    loss = -p * mpmath.log(cdf(d)) - (1 - p) * mpmath.log(cdf(-d))
    term_p = p * density(d) / cdf(d)
    term_q = (1 - p) * density(-d) / cdf(-d)
    return float(loss), float(term_q - term_p), float(term_p), float(term_q)


def points():
    rng = np.random.default_rng(20250917)
    base = [0.0, 1e-8, 0.1, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 10.0, 20.0, 26.0, 26.5, 27.0,
            27.3, 40.0, 100.0, 700.0, 745.0, 1000.0, 1e5]
    ds = sorted(set(base + [-x for x in base]))
    ps = [0.0, 0.02, 0.3, 0.5, 0.97, 1.0]
    pts = [(d, p) for d in ds for p in ps]
    pts += [(float(d), float(p)) for d, p in zip(rng.uniform(-8, 8, 60), rng.uniform(0, 1, 60))]
    return pts


def main():
    pts = points()
    d = np.array([x for x, _ in pts])
    p = np.array([y for _, y in pts])
    blocks = []
    for cdf, density in ((thurstone_cdf, thurstone_density), (bt_cdf, bt_density)):
        terms = [pair_terms(x, y, cdf, density) for x, y in pts]
        blocks += [d, p] + [np.array([t[j] for t in terms]) for j in range(4)]
    h = np.zeros(256, dtype="<i4")
    h[0], h[1], h[2], h[3] = MAGIC, 1, 4, len(pts)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as fp:
        fp.write(h.tobytes())
        for blk in blocks:
            fp.write(blk.astype("<f8").tobytes())
    print(f"{OUT}: {len(pts)} points per link")


if __name__ == "__main__":
    main()
