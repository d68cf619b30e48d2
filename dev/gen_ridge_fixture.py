"""
Writes test/fixtures/zelo/ridge_cases.bin: ridge regressions with an intercept, solved by
numpy's least squares on the augmented system [Xc; sqrt(alpha s) I] w = [yc; 0] (an SVD, not
the normal equations that zelo_ridge_fit factors), s = tr(Xc^T Xc) / d, Xc and yc centred,
bias = mean(y) - mean(X) . w. test/test_zelo.c checks zelo_ridge_fit against them.
Run from the repository root: python3 dev/gen_ridge_fixture.py
Layout (little-endian): 256 int32 [magic 0x5A454C4F, version 1, kind 5, number of cases],
then per case: int32 n, int32 d, f64 alpha, X (n, d) f32, y (n,) f64, w (d,) f64, bias f64.
"""
import os

import numpy as np

MAGIC = 0x5A454C4F
OUT = "test/fixtures/zelo/ridge_cases.bin"


def ridge(X, y, alpha):
    X = X.astype(np.float64)
    n, d = X.shape
    mean, ymean = X.mean(axis=0), y.mean()
    Xc, yc = X - mean, y - ymean
    s = np.trace(Xc.T @ Xc) / d
    A = np.vstack([Xc, np.sqrt(alpha * s) * np.eye(d)])
    rhs = np.concatenate([yc, np.zeros(d)])
    w = np.linalg.lstsq(A, rhs, rcond=None)[0]
    return w, ymean - mean @ w


def main():
    rng = np.random.default_rng(13)
    cases = []
    # (n, d, alpha, feature scale, feature offset): an ordinary fit; more features than
    # sequences (only the ridge term makes it solvable); no ridge at all; features of a large
    # scale and offset (alpha is relative to their variance, the bias takes the offset);
    # tanh-like features in [-1, 1] at the size of a MiniLM head
    for n, d, alpha, scale, offset in [(50, 8, 0.1, 1.0, 0.0), (5, 12, 1.0, 1.0, 0.0), (30, 4, 0.0, 1.0, 0.0),
                                       (40, 6, 0.01, 1000.0, 50.0), (300, 64, 1e-3, 1.0, 0.0)]:
        X = (scale * rng.standard_normal((n, d)) + offset).astype(np.float32)
        if d == 64:
            X = np.tanh(X).astype(np.float32)
        y = X.astype(np.float64) @ rng.standard_normal(d) / scale + 0.3 * rng.standard_normal(n) + 0.7
        w, bias = ridge(X, y, alpha)
        cases.append((n, d, alpha, X, y, w, bias))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        h = np.zeros(256, dtype="<i4")
        h[0], h[1], h[2], h[3] = MAGIC, 1, 5, len(cases)
        f.write(h.tobytes())
        for n, d, alpha, X, y, w, bias in cases:
            f.write(np.array([n, d], dtype="<i4").tobytes())
            f.write(np.array([alpha], dtype="<f8").tobytes())
            f.write(X.astype("<f4").tobytes())
            f.write(y.astype("<f8").tobytes())
            f.write(w.astype("<f8").tobytes())
            f.write(np.array([bias], dtype="<f8").tobytes())
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
