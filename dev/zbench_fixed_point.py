"""
The Bradley–Terry fixed-point iteration that zbench (github.com/zeroentropy-ai/zbench)
uses to turn pairwise judgments into ratings, re-implemented in numpy from its description,
for comparison with zelo_fit (tests and the benchmark).

zbench's scheme, as described in its repository:
  - a dense (N, N) matrix w of win weights: for a judged pair (a, b) with P(a beats b) = p,
    w[a, b] += p and w[b, a] += 1 - p; the diagonal holds 0.5 (each document "ties itself",
    which keeps every sum below positive);
  - update (an MM / Zermelo-style step in log space, damped):
        e_i += lr_t * ( log sum_j w[i, j] σ(e_j - e_i) - log sum_j w[j, i] σ(e_i - e_j) ),
    with lr_t = (1 + t)^(-1/8), then the ratings are centred;
  - the loss is the Bradley–Terry negative log-likelihood of w; it stops when the loss
    changes by less than epsilon (1e-4) or after max_iters (1000) and says so.
There is no prior: where the maximum-likelihood ratings do not exist (a document that wins
every battle) the iteration drifts and stops on the loss criterion wherever it is.
"""
import numpy as np


def win_matrix(n, a, b, p):
    """(N, N) win weights from pair arrays, zbench's layout (diagonal 0.5)."""
    w = np.zeros((n, n))
    np.add.at(w, (a, b), p)
    np.add.at(w, (b, a), 1.0 - p)
    w[np.arange(n), np.arange(n)] += 0.5
    return w


def bt_loss(w, e):
    """-sum_ij w_ij log σ(e_i - e_j), computed without overflow."""
    diff = e[:, None] - e[None, :]
    return float(np.sum(w * np.logaddexp(0.0, -diff)))


def fixed_point(w, epsilon=1e-4, max_iters=1000, step_tol=None):
    """Returns (ratings, converged, iterations, losses). zbench's own stopping rule is the
    loss change < epsilon; step_tol (ours, for the test fixtures) stops instead when no
    rating moves by more than step_tol, which pins the fixed point far more tightly."""
    n = w.shape[0]
    e = np.zeros(n)
    losses = []
    for t in range(max_iters):
        diff = e[None, :] - e[:, None]                 # diff[i, j] = e_j - e_i
        s = 0.5 * (1.0 + np.tanh(0.5 * diff))          # σ(e_j - e_i), overflow-free
        gain = np.sum(w * s, axis=1)                   # sum_j w_ij σ(e_j - e_i)
        loss_side = np.sum(w.T * s.T, axis=1)          # sum_j w_ji σ(e_i - e_j)
        step = (np.log(gain) - np.log(loss_side)) * (1.0 + t) ** -0.125
        e = e + step
        e -= e.mean()
        losses.append(bt_loss(w, e))
        if step_tol is not None:
            if np.max(np.abs(step - step.mean())) < step_tol:
                return e, True, t + 1, losses
        elif len(losses) > 2 and abs(losses[-2] - losses[-1]) < epsilon:
            return e, True, t + 1, losses
    return e, False, max_iters, losses


def _bench(sample_path, rates, max_queries=200, scipy_queries=50):
    """Times the fixed point (one query at a time, zbench's defaults) and scipy on the
    queries dev/bench_zelo.c wrote, and compares their ratings with ours (BT, no prior).
    rates: bench_zelo's queries/s ("threads", "thurstone_1", "bt_1", "thurstone_n", "bt_n") and
    CPU µs per query on 1 thread ("cpu_us_thurstone", "cpu_us_bt"): on a shared machine the
    wall times depend on the others' load, CPU times much less."""
    import time
    import scipy.optimize
    raw = open(sample_path, "rb").read()
    head = np.frombuffer(raw[:1024], "<i4")
    assert head[0] == 0x5A454C4F and head[1] == 1, f"{sample_path}: bad header"
    nq, n, m = int(head[2]), int(head[3]), int(head[4])
    rec = m * 4 * 2 + m * 8 + n * 8
    queries = []
    for q in range(min(nq, max_queries)):
        o = 1024 + q * rec
        a = np.frombuffer(raw[o:o + 4 * m], "<i4")
        b = np.frombuffer(raw[o + 4 * m:o + 8 * m], "<i4")
        p = np.frombuffer(raw[o + 8 * m:o + 16 * m], "<f8")
        ours = np.frombuffer(raw[o + 16 * m:o + 16 * m + 8 * n], "<f8")
        queries.append((a, b, p, ours))

    t0, c0 = time.perf_counter(), time.process_time()
    results = [fixed_point(win_matrix(n, a, b, p)) for a, b, p, _ in queries]
    t_fp, c_fp = time.perf_counter() - t0, time.process_time() - c0
    err_fp = max(np.max(np.abs(r[0] - q[3])) for r, q in zip(results, queries))
    not_conv = sum(not r[1] for r in results)
    its = np.mean([r[2] for r in results])

    def objective(e, a, b, p):
        d = e[a] - e[b]
        f = np.sum(np.logaddexp(0.0, -d) * p + np.logaddexp(0.0, d) * (1 - p))
        dd = 1.0 / (1.0 + np.exp(-d)) - p
        g = np.zeros(n)
        np.add.at(g, a, dd)
        np.add.at(g, b, -dd)
        s = e.sum()  # the gauge, as in dev/gen_zelo_fixture.py
        return f + 0.5 * s * s, g + s
    sq = queries[:scipy_queries]
    t0, c0 = time.perf_counter(), time.process_time()
    sols = [scipy.optimize.minimize(objective, np.zeros(n), args=(a, b, p), jac=True, method="L-BFGS-B",
                                    options=dict(gtol=1e-9, ftol=0, maxiter=10000)).x for a, b, p, _ in sq]
    t_sp, c_sp = time.perf_counter() - t0, time.process_time() - c0
    err_sp = max(np.max(np.abs(x - q[3])) for x, q in zip(sols, sq))

    qps_fp, qps_sp = len(queries) / t_fp, len(sq) / t_sp
    print(f"numpy fixed point (zbench defaults, 1 query at a time), 1 thread: {len(queries)} queries, {qps_fp:.1f} "
          f"queries/s, {its:.0f} iterations mean, {not_conv} not within epsilon; max |e - ours| = {err_fp:.1e}")
    print(f"scipy L-BFGS-B (gtol 1e-9, BT, no prior), 1 thread:                {len(sq)} queries, {qps_sp:.1f} "
          f"queries/s; max |e - ours| = {err_sp:.1e}")
    us_fp, us_sp = 1e6 * c_fp / len(queries), 1e6 * c_sp / len(sq)
    print(f"ratio of CPU time per query, 1 thread each: numpy fixed point {us_fp:.0f} us / ours {rates['cpu_us_bt']:.1f} us "
          f"= {us_fp / rates['cpu_us_bt']:.0f}x (same BT objective), {us_fp / rates['cpu_us_thurstone']:.0f}x (Thurstone "
          f"+ prior); scipy {us_sp:.0f} us = {us_sp / rates['cpu_us_bt']:.0f}x (same BT objective)")
    n = int(rates["threads"])
    rows = [(1, "1")] + ([(n, "n")] if n > 1 else [])
    for threads, key in rows:
        ours = f"ours {threads} thread{'s' if threads > 1 else ''}"
        print(f"ratio {ours} / numpy fixed point 1 thread: {rates['bt_' + key] / qps_fp:.0f}x (same BT objective), "
              f"{rates['thurstone_' + key] / qps_fp:.0f}x (Thurstone + prior)")
        print(f"ratio {ours} / scipy 1 thread:             {rates['bt_' + key] / qps_sp:.0f}x (same BT objective)")


if __name__ == "__main__":
    import sys
    words = sys.argv[2:]
    _bench(sys.argv[1], {words[i]: float(words[i + 1]) for i in range(0, len(words), 2)})
