"""
Writes the fixtures of test/test_zelo.c into test/fixtures/zelo/ from independent references:
  fit_cases.bin     rating-fit problems solved by scipy.optimize in float64 (log_ndtr for the
                    Thurstone link, logaddexp for Bradley–Terry), each to ‖∇‖∞ < 1e-10
  zbench_cases.bin  Bradley–Terry problems (no prior) solved by zbench's fixed-point
                    iteration (dev/zbench_fixed_point.py), with a flag saying whether it converged
  losses.bin        the training losses and their gradients from PyTorch autograd (float64)
Run from the repository root: python3 dev/gen_zelo_fixture.py
Binary layout (little-endian): a header of 256 int32 [magic 0x5A454C4F, version 1, kind, sizes...]
then the records described by write_case / write_losses.
"""
import os
import struct
import sys

import numpy as np
import scipy.optimize
import scipy.special

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zbench_fixed_point as zfp  # noqa: E402

MAGIC = 0x5A454C4F
OUT = "test/fixtures/zelo"
SQRT2 = np.sqrt(2.0)
THURSTONE, BT = 0, 1


def header(kind, *sizes):
    h = np.zeros(256, dtype="<i4")
    h[0], h[1], h[2] = MAGIC, 1, kind
    h[3:3 + len(sizes)] = sizes
    return h.tobytes()


def log_link(x, link):
    """log F(x): Thurstone F(x) = ½(1 + erf x) = Φ(√2 x); Bradley–Terry F = σ."""
    if link == THURSTONE:
        return scipy.special.log_ndtr(SQRT2 * x)
    return -np.logaddexp(0.0, -x)


def objective(e, a, b, p, off, link, lam):
    d = e[a] - e[b] + off
    lp, lq = log_link(d, link), log_link(-d, link)
    f = -np.sum(p * lp + (1 - p) * lq) + 0.5 * lam * e @ e
    # F'(x)/F(x) from the log form: F'(x) = e^{-x²}/√π (Thurstone), σ(x)σ(-x) (BT)
    if link == THURSTONE:
        hp = np.exp(-d * d - lp) / np.sqrt(np.pi)
        hq = np.exp(-d * d - lq) / np.sqrt(np.pi)
    else:
        hp, hq = np.exp(lq), np.exp(lp)
    dd = -p * hp + (1 - p) * hq
    g = lam * e
    np.add.at(g, a, dd)
    np.add.at(g, b, -dd)
    if lam == 0:
        # the gauge: a penalty on the mean leaves the zero-mean optimum unchanged and makes
        # the problem strictly convex for the optimizer
        s = e.sum()
        f += 0.5 * s * s
        g = g + s
    return f, g


def solve_scipy(n, a, b, p, off, link, lam):
    fun = lambda e: objective(e, a, b, p, off, link, lam)  # noqa: E731
    res = scipy.optimize.minimize(fun, np.zeros(n), jac=True, method="L-BFGS-B",
                                  options=dict(maxiter=200000, maxcor=50, ftol=0, gtol=1e-13))
    e = res.x
    # polish with Newton steps on a Hessian built by differences of the gradient (scipy's
    # approx_fprime: independent of any second-derivative formula); a step is kept only if
    # it shrinks the gradient (the trust-region methods stall here on rounding of f)
    def hess(x):
        h = scipy.optimize.approx_fprime(x, lambda y: fun(y)[1], 1e-6)
        return 0.5 * (h + h.T)
    for _ in range(8):
        g = fun(e)[1]
        cand = e - np.linalg.solve(hess(e), g)
        if np.max(np.abs(fun(cand)[1])) >= np.max(np.abs(g)):
            break
        e = cand
    gmax = np.max(np.abs(fun(e)[1]))
    assert gmax < 1e-10, f"scipy reference not converged: |g| = {gmax}"
    return e, gmax


def cycles_graph(rng, n, k):
    """k/2 random Hamiltonian cycles, repeated edges kept (so repeated pairs occur)."""
    a, b = [], []
    for _ in range(k // 2):
        perm = rng.permutation(n)
        a += list(perm)
        b += list(np.roll(perm, -1))
    return np.array(a), np.array(b)


def make_problem(rng, n, graph, labels, link, with_offset):
    if graph == "complete":
        a, b = np.triu_indices(n, 1)
    elif graph.startswith("cycles"):
        a, b = cycles_graph(rng, n, int(graph[6:]))
    elif graph.startswith("random"):
        m = int(graph[6:])
        a = rng.integers(0, n, m)
        b = (a + rng.integers(1, n, m)) % n
    elif graph == "disconnected":
        h = n // 2
        a1, b1 = cycles_graph(rng, h, 4)
        a2, b2 = cycles_graph(rng, n - h, 4)
        a, b = np.concatenate([a1, a2 + h]), np.concatenate([b1, b2 + h])
    elif graph == "chain":
        a, b = np.arange(n - 1), np.arange(1, n)
    flip = rng.random(len(a)) < 0.5
    a, b = np.where(flip, b, a).astype(np.int32), np.where(flip, a, b).astype(np.int32)
    s = rng.normal(size=n)
    x = s[a] - s[b] + 0.2 * rng.normal(size=len(a))
    q = np.exp(log_link(x, link))
    if labels == "soft":
        p = q
    elif labels == "hard":
        p = (rng.random(len(a)) < q).astype(float)
    elif labels == "winner":  # soft labels, but document 0 wins every battle it is in
        p = q.copy()
        p[a == 0], p[b == 0] = 1.0, 0.0
    elif labels == "steep":  # a chain of near-certain wins: ratings spread over a wide range
        p = np.full(len(a), 0.999)
        p[flip] = 0.001
    off = rng.normal(scale=0.5, size=len(a)) if with_offset else np.zeros(len(a))
    return a, b, p, off


def write_case(f, n, a, b, p, off, link, has_offset, flag, lam, e_ref):
    f.write(struct.pack("<5i", n, len(a), link, has_offset, flag))
    f.write(struct.pack("<d", lam))
    f.write(np.asarray(a, "<i4").tobytes())
    f.write(np.asarray(b, "<i4").tobytes())
    f.write(np.asarray(p, "<f8").tobytes())
    if has_offset:
        f.write(np.asarray(off, "<f8").tobytes())
    f.write(np.asarray(e_ref, "<f8").tobytes())


def gen_fit_cases(rng):
    specs = [  # n, graph, labels, offsets, λ (None: the link's default)
        (2, "complete", "soft", False, None),
        (3, "complete", "hard", False, None),
        (5, "complete", "soft", True, None),
        (10, "cycles8", "soft", False, None),
        (30, "cycles4", "hard", False, None),
        (100, "cycles8", "soft", True, None),
        (200, "cycles8", "soft", False, None),
        (200, "random150", "soft", False, None),   # sparse: isolated documents, components
        (50, "complete", "soft", False, None),     # dense
        (40, "cycles8", "winner", False, None),
        (60, "disconnected", "hard", False, None),
        (20, "cycles8", "soft", False, 0.0),       # prior-free MLE (exists: soft, connected)
        (100, "cycles8", "soft", True, 0.5),
    ]
    cases = []
    for link in (THURSTONE, BT):
        for n, graph, labels, with_off, lam in specs:
            if lam is None:
                lam = 0.1 if link == THURSTONE else 0.02
            a, b, p, off = make_problem(rng, n, graph, labels, link, with_off)
            e, gmax = solve_scipy(n, a, b, p, off, link, lam)
            cases.append((n, a, b, p, off, link, int(with_off), 1, lam, e))
            print(f"fit  link={link} n={n:3d} pairs={len(a):4d} {graph:12s} {labels:6s} "
                  f"offset={int(with_off)} lambda={lam:<4} |g|={gmax:.1e}")
    with open(f"{OUT}/fit_cases.bin", "wb") as f:
        f.write(header(1, len(cases)))
        for c in cases:
            write_case(f, *c)


def gen_zbench_cases(rng):
    specs = [(10, "complete", "soft"), (30, "cycles8", "soft"), (100, "cycles8", "soft"),
             (50, "random600", "soft"), (20, "cycles8", "winner"), (40, "chain", "steep")]
    cases = []
    for n, graph, labels in specs:
        a, b, p, off = make_problem(rng, n, graph, labels, BT, False)
        w = zfp.win_matrix(n, a, b, p)
        e, conv, iters, _ = zfp.fixed_point(w, max_iters=200000, step_tol=1e-13)
        e_default, conv_default, it_default, _ = zfp.fixed_point(w)
        if conv:
            e_opt, _ = solve_scipy(n, a, b, p, off, BT, 0.0)
            note = f"|fixed point - scipy| = {np.max(np.abs(e - e_opt)):.1e}, " \
                   f"zbench defaults stop after {it_default} its at error {np.max(np.abs(e_default - e_opt)):.1e}"
        else:
            note = f"no fixed point after {iters} iterations; spread of ratings {np.ptp(e):.1f}; " \
                   f"zbench defaults: converged={conv_default} after {it_default} its"
        print(f"zbench n={n:3d} pairs={len(a):4d} {graph:10s} {labels:6s} converged={int(conv)}: {note}")
        cases.append((n, a, b, p, off, BT, 0, int(conv), 0.0, e))
    with open(f"{OUT}/zbench_cases.bin", "wb") as f:
        f.write(header(2, len(cases)))
        for c in cases:
            write_case(f, *c)


def gen_losses(rng):
    import torch  # only here: the other fixtures and dev/gen_zelo_shrinkage.py need no torch
    N, G, P = 64, 5, 120
    logits = rng.normal(scale=1.5, size=N).astype(np.float32)
    scores = rng.normal(scale=1.2, size=N)
    targets = (0.5 * (1 + scipy.special.erf(scores))).astype(np.float32)
    group_start = np.array([0, 10, 11, 30, 45, 64], dtype=np.int32)
    pa = rng.integers(0, N, P).astype(np.int32)
    pb = ((pa + rng.integers(1, N, P)) % N).astype(np.int32)
    pp = rng.random(P).astype(np.float32)
    pp[:10] = np.round(pp[:10])  # hard labels too
    logits2 = rng.normal(scale=2.0, size=N).astype(np.float32)
    probs2 = rng.random(N).astype(np.float32)

    t = lambda x: torch.tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
    y, s2 = t(targets), SQRT2

    def run(fn, x):
        z = t(x).requires_grad_(True)
        loss = fn(z)
        loss.backward()
        return loss.item(), z.grad.numpy().astype(np.float32)

    mse = run(lambda z: ((0.5 * (1 + torch.special.erf(z)) - y) ** 2).mean(), logits)
    bce = run(lambda z: -(y * torch.special.log_ndtr(s2 * z)
                          + (1 - y) * torch.special.log_ndtr(-s2 * z)).mean(), logits)
    pt = t(pp)
    ia, ib = torch.tensor(pa.astype(np.int64)), torch.tensor(pb.astype(np.int64))
    pnll = run(lambda z: -(pt * torch.special.log_ndtr(s2 * (z[ia] - z[ib]))
                           + (1 - pt) * torch.special.log_ndtr(-s2 * (z[ia] - z[ib]))).mean(), logits)

    def listwise(z):
        total = 0
        for g in range(G):
            lo, hi = group_start[g], group_start[g + 1]
            tg = y[lo:hi] / y[lo:hi].sum()
            total = total - (tg * torch.log_softmax(z[lo:hi], 0)).sum()
        return total / G
    lst = run(listwise, logits)
    pbce = run(lambda z: torch.nn.functional.binary_cross_entropy_with_logits(z, t(probs2)), logits2)
    target_ref = (0.5 * torch.special.erfc(-t(scores))).numpy()

    with open(f"{OUT}/losses.bin", "wb") as f:
        f.write(header(3, N, G, P))
        for arr, dt in [(logits, "<f4"), (targets, "<f4"), (scores, "<f8"), (target_ref, "<f8"),
                        (group_start, "<i4"), (pa, "<i4"), (pb, "<i4"), (pp, "<f4"),
                        (logits2, "<f4"), (probs2, "<f4")]:
            f.write(np.asarray(arr, dt).tobytes())
        f.write(np.array([mse[0], bce[0], pnll[0], lst[0], pbce[0]], "<f8").tobytes())
        for r in (mse, bce, pnll, lst, pbce):
            f.write(np.asarray(r[1], "<f4").tobytes())
    print(f"losses: mse {mse[0]:.6f} bce {bce[0]:.6f} pairwise-nll {pnll[0]:.6f} "
          f"listwise {lst[0]:.6f} pairwise-bce {pbce[0]:.6f}")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20250916)
    gen_fit_cases(rng)
    gen_zbench_cases(rng)
    gen_losses(rng)
    for name in ("fit_cases.bin", "zbench_cases.bin", "losses.bin"):
        print(f"{OUT}/{name}: {os.path.getsize(f'{OUT}/{name}')} bytes")
