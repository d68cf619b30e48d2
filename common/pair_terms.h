/*
 * common/pair_terms.h — the per-pair terms of the rating fit, shared by the CPU fit
 * (zelo_loss.c) and the GPU fit (kernels/zelo_fit.cuh), so that both evaluate the same
 * arithmetic: the negative log-likelihood of one judged pair, its first two derivatives, and
 * the exp, log and erfcx they are built from. Plain C; under nvcc every function is
 * __host__ __device__ (the bit casts go through memcpy, which device code has too).
 */
#ifndef ZELO_PAIR_TERMS_H
#define ZELO_PAIR_TERMS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define PAIR_TERMS_FN static inline __host__ __device__
#else
#define PAIR_TERMS_FN static inline
#endif
// the loops over series coefficients are unrolled fully (then a local table's entries become
// constants of the code): gcc's pragma takes the count, nvcc's device pass has its own, and
// nvcc's host pass takes neither (its front end refuses gcc's, its host compiler nvcc's)
#define PAIR_TERMS_PRAGMA(x) _Pragma(#x)
#if defined(__CUDA_ARCH__)
#define PAIR_TERMS_UNROLL(n) PAIR_TERMS_PRAGMA(unroll)
#elif defined(__CUDACC__)
#define PAIR_TERMS_UNROLL(n)
#else
#define PAIR_TERMS_UNROLL(n) PAIR_TERMS_PRAGMA(GCC unroll n)
#endif

#define INV_SQRT_PI 0.56418958354775628695  // 1/√π
#define TWO_INV_SQRT_PI 1.12837916709551257390  // 2/√π

// the per-pair negative log-likelihood ℓ(d) = −p log F(d) − (1−p) log F(−d) and its first
// two derivatives in d. The Newton iterations need only ℓ' and ℓ''; ℓ itself (logs) only
// when a step must be checked on the objective, so the two are computed apart. The
// derivatives use no library call and no branch, so that the loop over the pairs, where
// the fit spends its time, is vectorised.

// e^x for x <= 0: x = k ln2 + r with |r| <= ln2/2, e^r by Taylor's series to r^13
// (truncation under 5e-18), 2^k written into the exponent bits. Below −708 the result would
// be subnormal, so x is clamped there; where e^x is used, it then multiplies terms that are
// negligible (under 1e-300) either way.
PAIR_TERMS_FN double exp_nonpositive(double x) {
    const double shift = 0x1.8p52;  // adding it rounds to an integer kept in the low bits
    const double ln2_hi = 6.93147180369123816490e-01;  // 32 bits: k·ln2_hi is exact
    const double ln2_lo = 1.90821492927058770002e-10;
    x = x > -708.0 ? x : -708.0;
    double kd = x * 1.44269504088896340736 + shift;
    uint64_t bits;
    memcpy(&bits, &kd, sizeof(bits));
    kd -= shift;
    double r = (x - kd * ln2_hi) - kd * ln2_lo;
    double q = 1.0 / 6227020800.0;  // 1/13!
    const double inv_factorial[13] = { 1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720,
                                       1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,
                                       1.0 / 39916800, 1.0 / 479001600 };
    PAIR_TERMS_UNROLL(13)
    for (int j = 12; j >= 0; j--) { q = q * r + inv_factorial[j]; }
    bits = (bits + 1023) << 52;  // the low bits held k; k + 1023 >= 1 after the clamp
    double scale;
    memcpy(&scale, &bits, sizeof(scale));
    return q * scale;
}

// log x for a normal x > 0: x = 2^k m with m in [√½, √2), log m = 2 atanh(s) with
// s = (m − 1)/(m + 1), |s| <= 0.172, by its series to s^23 (truncation under 1e-19)
PAIR_TERMS_FN double log_positive(double x) {
    const double ln2_hi = 6.93147180369123816490e-01;  // as in exp_nonpositive
    const double ln2_lo = 1.90821492927058770002e-10;
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    // counting the exponent from the bits of √½ puts the rest of x in [√½, √2)
    int64_t k = (int64_t)(bits - 0x3FE6A09E667F3BCDull) >> 52;
    uint64_t m_bits = bits - ((uint64_t)k << 52);
    double m;
    memcpy(&m, &m_bits, sizeof(m));
    // k as a double through the bits of 1.5·2^52 + k: a conversion that vectorises everywhere
    uint64_t k_bits = 0x4338000000000000ull + (uint64_t)k;
    double kd;
    memcpy(&kd, &k_bits, sizeof(kd));
    kd -= 0x1.8p52;
    double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double q = 1.0 / 23;
    PAIR_TERMS_UNROLL(11)
    for (int j = 10; j >= 0; j--) { q = q * s2 + 1.0 / (2 * j + 1); }
    return kd * ln2_hi + (2.0 * s * q + kd * ln2_lo);
}

// erfcx(t) = e^{t²} erfc(t) for t >= 0, as one polynomial in y = (t − 3)/(t + 3) ∈ [−1, 1):
// erfcx(t) = 3/(t + 3) · Σ a_k y^k. The coefficients come from dev/gen_erfcx_table.py
// (Chebyshev interpolation in mpmath), which checks this evaluation in float64: relative
// error under 6e-16 on [0, 1e8], and the limit 1/(√π t) beyond. The table is local to the
// function because device code cannot read a file-scope host array; unrolled, its entries
// become constants of the code.
PAIR_TERMS_FN double erfcx_nonneg(double t) {
    const double poly[25] = {
        3.58002302362779912e-01, -2.94464817723294470e-01, 1.96742785701367245e-01,
        -1.03489087300194529e-01, 3.98425870957655262e-02, -8.94241154134722133e-03,
        -4.04138875793666388e-04, 1.01135399864680717e-03, -1.82769896417389317e-04,
        -9.22592710777957208e-05, 3.58538222512792956e-05, 1.01326827865481332e-05,
        -5.82349199251421082e-06, -1.58300660264713142e-06, 9.21715997200549247e-07,
        3.32934150607809426e-07, -1.35856281422743274e-07, -7.79457866014506135e-08,
        1.52182334574190492e-08, 1.70569805155054383e-08, -2.38458371516506043e-10,
        -2.89639076557854352e-09, -3.59834575950359177e-10, 2.70088954133441912e-10,
        6.03427189454584192e-11,
    };
    double inv = 1.0 / (t + 3.0);
    double y = (t - 3.0) * inv;
    double q = poly[24];
    PAIR_TERMS_UNROLL(24)
    for (int k = 23; k >= 0; k--) { q = q * y + poly[k]; }
    return 3.0 * inv * q;
}

PAIR_TERMS_FN void thurstone_pair_derivs(double* d1, double* d2, double d, double p) {
    // With h(x) = F'(x)/F(x): ℓ' = −p h(d) + (1−p) h(−d) and, since h' = −h(2x + h),
    // ℓ'' = p h(d)(2d + h(d)) + (1−p) h(−d)(h(−d) − 2d). With t = |d| and X = erfcx(t),
    // F(−t) = ½e^{−t²}X and F(t) = 1 − F(−t), so h(−t) = 2/(√π X) never forms the
    // vanishing e^{−t²}, and neither tail loses precision.
    double t = fabs(d);
    double X = erfcx_nonneg(t);
    double gauss = exp_nonpositive(-t * t);
    double h_tail = TWO_INV_SQRT_PI / X;                           // h(−t)
    double h_head = INV_SQRT_PI * gauss / (1.0 - 0.5 * gauss * X);  // h(t), F(t) in [½, 1)
    double hp = d >= 0 ? h_head : h_tail;  // h(d)
    double hq = d >= 0 ? h_tail : h_head;  // h(−d)
    *d1 = -p * hp + (1.0 - p) * hq;
    double curv = p * hp * (2.0 * d + hp) + (1.0 - p) * hq * (hq - 2.0 * d);
    *d2 = curv > 0 ? curv : 0;  // exact value is > 0 (log-concave F); rounding may not be
}

PAIR_TERMS_FN double thurstone_pair_loss(double d, double p) {
    double t = fabs(d);
    double X = erfcx_nonneg(t);
    double log_tail = log_positive(0.5 * X) - t * t;  // log F(−t)
    // log F(t) = log(1 − F(−t)): forming 1 − F(−t) costs an absolute error of ~1e-16 in
    // the log, all that a sum of pair terms needs
    double log_head = log_positive(1.0 - 0.5 * exp_nonpositive(-t * t) * X);
    double lp = d >= 0 ? log_head : log_tail;  // log F(d)
    double lq = d >= 0 ? log_tail : log_head;  // log F(−d)
    return -(p * lp + (1.0 - p) * lq);
}

PAIR_TERMS_FN void bt_pair_derivs(double* d1, double* d2, double d, double p) {
    double z = exp_nonpositive(-fabs(d));
    double s_head = 1.0 / (1.0 + z), s_tail = z * s_head;  // σ(|d|), σ(−|d|)
    // ℓ' = σ(d) − p, written for d >= 0 as (1 − p) − σ(−d) so that it keeps its relative
    // precision when σ(d) and p are both near 1
    *d1 = d >= 0 ? (1.0 - p) - s_tail : s_tail - p;
    *d2 = s_head * s_tail;
}

PAIR_TERMS_FN double bt_pair_loss(double d, double p) {
    // −p log σ(d) − (1−p) log σ(−d), with log σ(t) = −log1p(e^{−t}), log σ(−t) = −t + log σ(t)
    double t = fabs(d);
    return log_positive(1.0 + exp_nonpositive(-t)) + (d >= 0 ? (1.0 - p) : p) * t;
}

#endif // ZELO_PAIR_TERMS_H
