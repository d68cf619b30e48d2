/*
 * test/test_gemm.c — gemm() against a float64 triple loop, on every transpose combination,
 * on shapes that exercise each edge of the blocking (partial tiles in m and n, k across
 * several KC slices, m across several MC blocks), with strided operands, alpha and beta,
 * and beta = 0 over a c full of NaN (which must never be read).
 *
 * Tolerance: each entry of c is a k-term dot product summed in float32, whose error is at
 * most gamma_k * sum_p |a_ip b_pj| with gamma_k ~ k u (u = FLT_EPSILON / 2, Higham 3.1),
 * plus a few roundings for alpha, beta and the slices' partial sums. The test allows
 * (k + 4) * FLT_EPSILON * (|alpha| sum_p |a_ip b_pj| + |beta c_ij|): twice that bound, and
 * still a thousand times smaller than the error of dropping a single term.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "cpu/gemm.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float random_uniform(void) {  // in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / (1 << 24)) - 1.0);
}

typedef struct { int m, n, k, trans_a, trans_b, pad; float alpha, beta; } Case;

// runs one case; returns the worst error as a fraction of its allowance (> 1 fails)
static double check_case(const Case* t) {
    int m = t->m, n = t->n, k = t->k;
    // operands stored with row strides larger than their rows, as model.c's head views are
    int a_rows = t->trans_a ? k : m, a_cols = t->trans_a ? m : k;
    int b_rows = t->trans_b ? n : k, b_cols = t->trans_b ? k : n;
    int lda = a_cols + t->pad, ldb = b_cols + t->pad, ldc = n + t->pad;
    float* a = mallocCheck(sizeof(float) * ((size_t)a_rows * lda + 1));
    float* b = mallocCheck(sizeof(float) * ((size_t)b_rows * ldb + 1));
    float* c = mallocCheck(sizeof(float) * ((size_t)m * ldc + 1));
    float* c0 = mallocCheck(sizeof(float) * ((size_t)m * ldc + 1));
    for (size_t i = 0; i < (size_t)a_rows * lda; i++) { a[i] = random_uniform(); }
    for (size_t i = 0; i < (size_t)b_rows * ldb; i++) { b[i] = random_uniform(); }
    for (size_t i = 0; i < (size_t)m * ldc; i++) { c0[i] = t->beta == 0.0f ? NAN : random_uniform(); }
    memcpy(c, c0, sizeof(float) * (size_t)m * ldc);
    gemm(c, ldc, a, lda, t->trans_a, b, ldb, t->trans_b, m, n, k, t->alpha, t->beta);
    double worst = 0.0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0.0, abs_sum = 0.0;
            for (int p = 0; p < k; p++) {
                double av = t->trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double bv = t->trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += av * bv;
                abs_sum += fabs(av * bv);
            }
            double old = t->beta == 0.0f ? 0.0 : c0[(size_t)i * ldc + j];
            double want = t->alpha * sum + t->beta * old;
            double allow = (k + 4) * FLT_EPSILON * (fabs(t->alpha) * abs_sum + fabs(t->beta * old)) + 1e-30;
            double got = c[(size_t)i * ldc + j];
            double ratio = isfinite(got) ? fabs(got - want) / allow : INFINITY;
            if (ratio > worst) { worst = ratio; }
        }
        // the padding between rows of c belongs to somebody else and must be left alone
        for (int j = n; j < ldc; j++) {
            float was = c0[(size_t)i * ldc + j], now = c[(size_t)i * ldc + j];
            if (!(was == now || (isnan(was) && isnan(now)))) { worst = INFINITY; }
        }
    }
    free(a); free(b); free(c); free(c0);
    return worst;
}

int main(void) {
    printf("micro-kernel: %s, tile %d x %d\n", GEMM_KERNEL, GEMM_MR, GEMM_NR);
    // sizes around the tile and block edges: 1, a tile less one, a tile, a tile plus one,
    // several MC blocks (MC = 16 tiles), several KC slices (KC = 256)
    int ms[] = { 1, GEMM_MR - 1, GEMM_MR, GEMM_MR + 1, 16 * GEMM_MR + 5, 256, 401 };
    int ns[] = { 1, GEMM_NR - 1, GEMM_NR, GEMM_NR + 3, 384, 517 };
    int ks[] = { 1, 7, 32, 255, 256, 257, 700 };
    float alphas[] = { 1.0f, 0.1767767f, -2.0f };
    float betas[] = { 0.0f, 1.0f, 0.5f };
    int n_cases = 0;
    double worst_all = 0.0;
    for (int combo = 0; combo < 4; combo++) {
        for (size_t im = 0; im < sizeof(ms) / sizeof(ms[0]); im++) {
            for (size_t in = 0; in < sizeof(ns) / sizeof(ns[0]); in++) {
                for (size_t ik = 0; ik < sizeof(ks) / sizeof(ks[0]); ik++) {
                    // the big shapes once per combination is enough; the small ones all
                    if (ms[im] * ns[in] * ks[ik] > 4000000 && (im + in + ik) % 3 != 0) { continue; }
                    int pick = (int)(im * 7 + in * 3 + ik);
                    Case t = { ms[im], ns[in], ks[ik], combo >> 1, combo & 1, pick % 3 == 0 ? 0 : 5,
                               alphas[pick % 3], betas[(pick / 3) % 3] };
                    double worst = check_case(&t);
                    CHECK(worst <= 1.0, "m %d n %d k %d trans_a %d trans_b %d pad %d alpha %g beta %g: "
                          "error %.3g of the allowance", t.m, t.n, t.k, t.trans_a, t.trans_b, t.pad,
                          t.alpha, t.beta, worst);
                    if (worst > worst_all) { worst_all = worst; }
                    n_cases++;
                }
            }
        }
    }
    // k = 0: c = beta * c, nothing read from a or b
    Case empty = { 5, 7, 0, 0, 0, 2, 1.0f, 0.5f };
    CHECK(check_case(&empty) <= 1.0, "k = 0 must give beta * c");
    printf("%d products vs float64: worst error %.3g of the allowance (k + 4) * FLT_EPSILON * sum |a b|\n",
           n_cases, worst_all);
    return test_summary("test_gemm");
}
