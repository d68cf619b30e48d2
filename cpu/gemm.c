/*
 * cpu/gemm.c — single-threaded sgemm in the classic blocked layout (Goto's, as BLIS and
 * OpenBLAS use it). The product is cut into blocks sized for the caches:
 *
 *   for each KC-deep slice of k:        pack op(b)[slice, :] into column panels of NR
 *     for each MC-row block of m:       pack op(a)[rows, slice] into row panels of MR
 *       for each NR-column panel:       (one panel of b, KC x NR, stays in L1)
 *         for each MR-row panel:        (the block of a, MC x KC, stays in L2)
 *           micro-kernel: c tile (MR, NR) += a panel (MR, KC) @ b panel (KC, NR)
 *
 * Packing copies each operand once into the order the micro-kernel reads it (contiguous,
 * aligned, zero-padded to whole tiles), which also absorbs the transposes and the strides,
 * so one kernel serves every op(a), op(b); where an operand's rows run across the panel the
 * copy is a transpose, done in 8 x 8 blocks in registers. The micro-kernel keeps its whole MR x NR tile of
 * c in vector registers for the KC steps, and each step is one load of a row of the b panel
 * and MR broadcasts of a column of the a panel: 2 * MR * NR flops for about MR + NR/16 loads.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include "cpu/gemm.h"
#include "common/utils.h"

// ----------------------------------------------------------------------------
// micro-kernels: c (MR, NR; row stride ldc) = alpha * ap (MR, kc) @ bp (kc, NR) + beta * c,
// where ap holds column p of the a panel at ap[p * MR] and bp row p of the b panel at
// bp[p * NR], both 64-byte aligned. beta = 0 never reads c.

#if defined(__AVX512F__)
// 12 x 32: 24 accumulators of 16 floats, 2 registers for the b row, the rest for broadcasts
#define MR 12
#define NR 32
const char* const GEMM_KERNEL = "AVX-512";
static void micro_kernel(float* c, int ldc, const float* restrict ap, const float* restrict bp, int kc,
                         float alpha, float beta) {
    __m512 acc0[MR], acc1[MR];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) { acc0[i] = _mm512_setzero_ps(); acc1[i] = _mm512_setzero_ps(); }
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(ap[i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
        ap += MR;
        bp += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        float* row = c + (size_t)i * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc0[i]), r1 = _mm512_mul_ps(va, acc1[i]);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + 16), r1);
        }
        _mm512_storeu_ps(row, r0);
        _mm512_storeu_ps(row + 16, r1);
    }
}

#elif defined(__AVX2__) && defined(__FMA__)
// 6 x 16: 12 accumulators of 8 floats, 2 registers for the b row, 2 for broadcasts
#define MR 6
#define NR 16
const char* const GEMM_KERNEL = "AVX2";
static void micro_kernel(float* c, int ldc, const float* restrict ap, const float* restrict bp, int kc,
                         float alpha, float beta) {
    __m256 acc0[MR], acc1[MR];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) { acc0[i] = _mm256_setzero_ps(); acc1[i] = _mm256_setzero_ps(); }
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        #pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(ap + i);
            acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
        }
        ap += MR;
        bp += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        float* row = c + (size_t)i * ldc;
        __m256 r0 = _mm256_mul_ps(va, acc0[i]), r1 = _mm256_mul_ps(va, acc1[i]);
        if (beta != 0.0f) {
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), r0);
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), r1);
        }
        _mm256_storeu_ps(row, r0);
        _mm256_storeu_ps(row + 8, r1);
    }
}

#else
// plain C: the j loops are what the compiler vectorises for whatever vector unit it has
#define MR 4
#define NR 16
const char* const GEMM_KERNEL = "plain C";
static void micro_kernel(float* c, int ldc, const float* restrict ap, const float* restrict bp, int kc,
                         float alpha, float beta) {
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            for (int j = 0; j < NR; j++) { acc[i][j] += ap[i] * bp[j]; }
        }
        ap += MR;
        bp += NR;
    }
    for (int i = 0; i < MR; i++) {
        float* row = c + (size_t)i * ldc;
        for (int j = 0; j < NR; j++) { row[j] = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * row[j]); }
    }
}
#endif

const int GEMM_MR = MR, GEMM_NR = NR;

// cache blocking: a b panel of KC x NR floats (32 KiB with AVX-512) stays in L1 while the
// MC x KC block of a (192 KiB) streams from L2; the packed b slice (KC x NC) is read once
// per row block, from L2 or L3
#define KC 256
#define MC (MR * 16)
#define NC 4096

// ----------------------------------------------------------------------------
// packing

#if defined(__AVX__)
// dst[j * ldd + i] = src[i * lds + j] for i, j < 8: the 8 x 8 transpose of packing, in
// registers (pairs of rows interleaved, then pairs of pairs, then the two 128-bit halves)
static inline void transpose_8x8(float* dst, int ldd, const float* src, int lds) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) { r[i] = _mm256_loadu_ps(src + (size_t)i * lds); }
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     // i[0] i+1[0] i[1] i+1[1] | same for 4, 5
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); // i[2] i+1[2] i[3] i+1[3] | same for 6, 7
    }
    for (int h = 0; h < 8; h += 4) {  // rows h..h+3: u[h + c] holds column c | column c + 4
        u[h + 0] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int c = 0; c < 4; c++) {  // rows 0..3 of column c sit in u[c], rows 4..7 in u[4 + c]
        _mm256_storeu_ps(dst + (size_t)c * ldd, _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
        _mm256_storeu_ps(dst + (size_t)(c + 4) * ldd, _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
    }
}
#endif

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: the copy that packing does
// when the operand's rows run across the panel; in 8 x 8 blocks where the vector unit has them
static void transpose_copy(float* dst, int ldd, const float* src, int lds, int rows, int cols) {
    int i = 0;
#if defined(__AVX__)
    for (; i + 8 <= rows; i += 8) {
        int j = 0;
        for (; j + 8 <= cols; j += 8) {
            transpose_8x8(dst + (size_t)j * ldd + i, ldd, src + (size_t)i * lds + j, lds);
        }
        for (; j < cols; j++) {
            for (int r = i; r < i + 8; r++) { dst[(size_t)j * ldd + r] = src[(size_t)r * lds + j]; }
        }
    }
#endif
    for (; i < rows; i++) {
        for (int j = 0; j < cols; j++) { dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j]; }
    }
}

// ap (panels of MR rows, each (kc, MR)) = op(a)[i0 : i0 + mc, p0 : p0 + kc], rows past mc zero
static void pack_a(float* ap, const float* a, int lda, int trans_a, int i0, int mc, int p0, int kc) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        float* panel = ap + (size_t)ir * kc;
        if (trans_a) {  // a is (k, m): each step p of the panel is mr consecutive floats of a
            for (int p = 0; p < kc; p++) {
                const float* src = a + (size_t)(p0 + p) * lda + i0 + ir;
                for (int i = 0; i < mr; i++) { panel[(size_t)p * MR + i] = src[i]; }
            }
        } else {
            transpose_copy(panel, MR, a + (size_t)(i0 + ir) * lda + p0, lda, mr, kc);
        }
        for (int p = 0; mr < MR && p < kc; p++) {
            memset(panel + (size_t)p * MR + mr, 0, sizeof(float) * (MR - mr));
        }
    }
}

// bp (panels of NR columns, each (kc, NR)) = op(b)[p0 : p0 + kc, j0 : j0 + nc], columns past nc zero
static void pack_b(float* bp, const float* b, int ldb, int trans_b, int p0, int kc, int j0, int nc) {
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        float* panel = bp + (size_t)jr * kc;
        if (trans_b) {  // b is (n, k): the panel is the transpose of nr rows of b
            transpose_copy(panel, NR, b + (size_t)(j0 + jr) * ldb + p0, ldb, nr, kc);
        } else {
            for (int p = 0; p < kc; p++) {
                const float* src = b + (size_t)(p0 + p) * ldb + j0 + jr;
                for (int j = 0; j < nr; j++) { panel[(size_t)p * NR + j] = src[j]; }
            }
        }
        for (int p = 0; nr < NR && p < kc; p++) {
            memset(panel + (size_t)p * NR + nr, 0, sizeof(float) * (NR - nr));
        }
    }
}

// one 64-byte aligned scratch area per thread, grown on demand and kept for the next call
// (products of the same shapes repeat every step); the operating system takes it back at exit
static _Thread_local float* scratch;
static _Thread_local size_t scratch_floats;

static float* scratch_space(size_t floats) {
    if (floats > scratch_floats) {
        free(scratch);
        size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        scratch = aligned_alloc(64, bytes);
        if (scratch == NULL) { die("gemm: out of memory for %zu bytes of packing space", bytes); }
        scratch_floats = floats;
    }
    return scratch;
}

// ----------------------------------------------------------------------------

void gemm(float* c, int ldc, const float* a, int lda, int trans_a, const float* b, int ldb, int trans_b,
          int m, int n, int k, float alpha, float beta) {
    if (m <= 0 || n <= 0) { return; }
    if (k <= 0) {  // nothing to multiply: c = beta * c, as sgemm defines it
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float* out = &c[(size_t)i * ldc + j];
                *out = beta == 0.0f ? 0.0f : beta * *out;
            }
        }
        return;
    }
    int kc_max = k < KC ? k : KC;
    int nc_max = ((n < NC ? n : NC) + NR - 1) / NR * NR;
    float* bp = scratch_space((size_t)kc_max * (nc_max + MC));
    float* ap = bp + (size_t)kc_max * nc_max;
    float tile[MR * NR];  // an edge tile of c is computed here, then its valid part copied
    for (int j0 = 0; j0 < n; j0 += NC) {
        int nc = n - j0 < NC ? n - j0 : NC;
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = k - p0 < KC ? k - p0 : KC;
            float beta_slice = p0 == 0 ? beta : 1.0f;  // later slices add to the first one's result
            pack_b(bp, b, ldb, trans_b, p0, kc, j0, nc);
            for (int i0 = 0; i0 < m; i0 += MC) {
                int mc = m - i0 < MC ? m - i0 : MC;
                pack_a(ap, a, lda, trans_a, i0, mc, p0, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        const float* apanel = ap + (size_t)ir * kc;
                        const float* bpanel = bp + (size_t)jr * kc;
                        float* ctile = c + (size_t)(i0 + ir) * ldc + j0 + jr;
                        if (mr == MR && nr == NR) {
                            micro_kernel(ctile, ldc, apanel, bpanel, kc, alpha, beta_slice);
                            continue;
                        }
                        micro_kernel(tile, NR, apanel, bpanel, kc, alpha, 0.0f);
                        for (int i = 0; i < mr; i++) {
                            float* row = ctile + (size_t)i * ldc;
                            for (int j = 0; j < nr; j++) {
                                row[j] = tile[i * NR + j] + (beta_slice == 0.0f ? 0.0f : beta_slice * row[j]);
                            }
                        }
                    }
                }
            }
        }
    }
}
