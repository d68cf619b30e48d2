/*
 * dev/bench_gemm.c — cpu/gemm.c against OpenBLAS's sgemm, one thread each, on the products one
 * training step of the all-MiniLM-L6-v2 shape makes (C = 384, I = 1536, 256-token row
 * blocks, 32-wide heads): GFLOP/s of each and their ratio, the best of several timed
 * repetitions of each (a shared machine disturbs some of them; the fastest is the least
 * disturbed). OpenBLAS's kernels are those it picks, or those OPENBLAS_CORETYPE names.
 *
 *   build/bench_gemm
 */
#include <math.h>
#include <cblas.h>
#undef I  // cblas.h pulls in complex.h
#include "cpu/gemm.h"
#include "common/utils.h"

typedef struct { int m, n, k, trans_a, trans_b; const char* what; } Shape;

static const Shape SHAPES[] = {
    { 256, 1152, 384, 0, 1, "qkv projection, x W^T" },
    { 256, 384, 384, 0, 1, "attention output, x W^T" },
    { 256, 1536, 384, 0, 1, "MLP up, x W^T" },
    { 256, 384, 1536, 0, 1, "MLP down, x W^T" },
    { 256, 384, 1536, 0, 0, "input gradient, dy W" },
    { 384, 384, 4096, 1, 0, "weight gradient, dy^T x" },
    { 1536, 384, 1024, 1, 0, "weight gradient (MLP), dy^T x" },
    { 256, 256, 32, 0, 1, "scores of one head, q k^T" },
    { 256, 32, 256, 0, 0, "one head's output, P v" },
};

// seconds of the fastest of 5 rounds, each repeating the product for >= 0.2 s
static double time_product(int use_blas, const Shape* s, float* c, const float* a, const float* b) {
    int lda = s->trans_a ? s->m : s->k, ldb = s->trans_b ? s->k : s->n;
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = wall_seconds();
        int reps = 0;
        do {
            if (use_blas) {
                cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans,
                            s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
            } else {
                gemm(c, s->n, a, lda, s->trans_a, b, ldb, s->trans_b, s->m, s->n, s->k, 1.0f, 0.0f);
            }
            reps++;
        } while (wall_seconds() - t0 < 0.2);
        double t = (wall_seconds() - t0) / reps;
        if (t < best) { best = t; }
    }
    return best;
}

int main(void) {
    openblas_set_num_threads(1);
    printf("gemm.c (%s kernel, tile %d x %d) vs OpenBLAS sgemm, 1 thread, GFLOP/s\n", GEMM_KERNEL, GEMM_MR, GEMM_NR);
    printf("%-32s %5s %5s %5s %3s %8s %8s %7s\n", "product", "m", "n", "k", "op", "gemm.c", "OpenBLAS", "ratio");
    double log_sum = 0.0;
    int n_shapes = (int)(sizeof(SHAPES) / sizeof(SHAPES[0]));
    for (int i = 0; i < n_shapes; i++) {
        const Shape* s = &SHAPES[i];
        float* a = mallocCheck(sizeof(float) * s->m * s->k);
        float* b = mallocCheck(sizeof(float) * s->k * s->n);
        float* c = mallocCheck(sizeof(float) * s->m * s->n);
        for (int j = 0; j < s->m * s->k; j++) { a[j] = (float)(j % 17) * 0.01f; }
        for (int j = 0; j < s->k * s->n; j++) { b[j] = (float)(j % 13) * 0.01f; }
        double flops = 2.0 * s->m * s->n * s->k;
        double ours = time_product(0, s, c, a, b), theirs = time_product(1, s, c, a, b);
        printf("%-32s %5d %5d %5d  %c%c %8.1f %8.1f %6.2fx\n", s->what, s->m, s->n, s->k, s->trans_a ? 'T' : 'N',
               s->trans_b ? 'T' : 'N', flops / ours * 1e-9, flops / theirs * 1e-9, theirs / ours);
        log_sum += log(theirs / ours);
        free(a); free(b); free(c);
    }
    printf("geometric mean of the ratios gemm.c / OpenBLAS: %.2fx\n", exp(log_sum / n_shapes));
    return 0;
}
