"""
Prints the polynomial that zelo_loss.c uses for erfcx(t) = e^{t²} erfc(t), t >= 0.

The Thurstone pair terms need erfc(|d|) and e^{−d²} to full relative precision in both tails;
the C library's erfc and exp are scalar calls, which keep the loop over pairs from being
vectorised. A single smooth representation on all of [0, ∞) needs no branch:

    erfcx(t) = K/(t + K) · Σ_{k=0}^{N} a_k y^k,   y = (t − K)/(t + K) ∈ [−1, 1),

because erfcx(t)·(t + K)/K tends to 1/(K√π) as t → ∞ and is smooth in y. The polynomial
is the interpolant at N+1 Chebyshev points, computed in 50-digit arithmetic (mpmath, an
independent reference) and converted to powers of y there; Σ|a_k| is about 1, so Horner's
rule in float64 loses nothing. The script then evaluates it in float64 as the C code does
and prints the worst relative error against mpmath on a dense grid of t up to 1e8.
K = 3 and N = 24 give under 5e-16 (a few ulps).
Run: python3 dev/gen_erfcx_table.py
"""
import mpmath
import numpy as np

K = 3
N = 24
mpmath.mp.dps = 50


def erfcx(t):
    return mpmath.exp(t * t) * mpmath.erfc(t)


def scaled(y):
    t = K * (1 + y) / (1 - y)
    return erfcx(t) * (t + K) / K


def chebyshev_coefficients():
    m = N + 1
    nodes = [mpmath.cos(mpmath.pi * (k + mpmath.mpf(0.5)) / m) for k in range(m)]
    values = [scaled(y) for y in nodes]
    coeffs = []
    for j in range(m):
        s = sum(values[k] * mpmath.cos(mpmath.pi * j * (k + mpmath.mpf(0.5)) / m) for k in range(m))
        coeffs.append(2 * s / m)
    coeffs[0] /= 2
    return coeffs


def power_coefficients(cheb):
    # T_0 = 1, T_1 = y, T_{j+1} = 2y T_j − T_{j−1}, each as a list of power coefficients
    t_prev, t_cur = [mpmath.mpf(1)], [mpmath.mpf(0), mpmath.mpf(1)]
    power = [mpmath.mpf(0)] * len(cheb)
    for j, c in enumerate(cheb):
        basis = t_prev if j == 0 else t_cur
        for k, v in enumerate(basis):
            power[k] += c * v
        if j >= 1:
            t_next = [mpmath.mpf(0)] + [2 * v for v in t_cur]
            for k, v in enumerate(t_prev):
                t_next[k] -= v
            t_prev, t_cur = t_cur, t_next
    return [float(v) for v in power]


def horner_float64(a, t):
    # the same operations, in the same order, as erfcx_nonneg in zelo_loss.c
    inv = 1.0 / (t + K)
    y = (t - K) * inv
    q = a[-1]
    for ak in a[-2::-1]:
        q = q * y + ak
    return K * inv * q


def main():
    a = power_coefficients(chebyshev_coefficients())
    grid = np.concatenate([np.linspace(0.0, 40.0, 8001), np.geomspace(40.0, 1e8, 400)])
    worst = 0.0
    for t in grid:
        want = erfcx(mpmath.mpf(float(t)))
        worst = max(worst, abs(float((horner_float64(a, float(t)) - want) / want)))
    print(f"// erfcx: K = {K}, degree {N}, sum |a_k| = {sum(abs(v) for v in a):.3f}, "
          f"worst relative error {worst:.1e} on [0, 1e8]")
    print(f"static const double ERFCX_POLY[{N + 1}] = {{")
    for i in range(0, N + 1, 3):
        print("    " + " ".join(f"{v:.17e}," for v in a[i:i + 3]))
    print("};")


if __name__ == "__main__":
    main()
