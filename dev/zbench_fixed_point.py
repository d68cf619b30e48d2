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
