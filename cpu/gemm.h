/*
 * cpu/gemm.h — the project's own single-threaded sgemm: blocked, with packed operands and a
 * register-tiled micro-kernel written for the vector unit the compiler targets (AVX-512,
 * AVX2 + FMA, or plain C that the compiler vectorises as it can). model.c threads the
 * products itself and calls this (or OpenBLAS) once per thread; see matmul() there.
 */
#ifndef ZELO_GEMM_H
#define ZELO_GEMM_H

// c (m, n) = alpha * op(a) (m, k) @ op(b) (k, n) + beta * c, row-major; op(x) = x, or its
// transpose when trans_x is 1 (then a is stored (k, m) and b (n, k)); lda, ldb, ldc are row
// strides. beta = 0 never reads c, so c may hold anything, NaN included. Single-threaded;
// safe to call from several threads at once (each thread packs into buffers of its own).
void gemm(float* c, int ldc, const float* a, int lda, int trans_a, const float* b, int ldb, int trans_b,
          int m, int n, int k, float alpha, float beta);

// the micro-kernel's tile: row blocks of c that are multiples of GEMM_MR (and column blocks
// multiples of GEMM_NR) keep every tile whole when a product is split among threads
extern const int GEMM_MR, GEMM_NR;

// which micro-kernel this build has: "AVX-512", "AVX2" or "plain C"
extern const char* const GEMM_KERNEL;

#endif // ZELO_GEMM_H
