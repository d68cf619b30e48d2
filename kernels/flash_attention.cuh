/*
 * kernels/flash_attention.cuh — the attention of kernels/attention.cuh (bidirectional, inside
 * each sequence of a packed batch, both packings), fused in the manner of FlashAttention: the
 * T x T scores never reach global memory, and the matrix products run on tensor cores.
 * attention.cuh's simple kernels stay its reference (test_cuda_bf16 holds this one to them and
 * to model.c). kernels/model_cuda.cu calls it for the layers under bf16 at head sizes 32 and 64.
 *
 * bf16 only: qkv, out, dout and dqkv are bf16; every score, probability, softmax statistic and
 * sum is float, as in attention.cuh's bf16 instantiation. Two roundings more than there: the
 * probabilities P and the scores' gradient dS are rounded to bf16 as operands of the products
 * P V, P^T dout, dS K and dS^T Q (tensor cores multiply bf16), each off by 2^-8 of itself at
 * most; the test derives what that allows.
 *
 * Tiles. A block takes FLASH_TILE rows of one sequence and one head: grid (CEIL_DIV(N,
 * FLASH_TILE) + S, NH), the tiles of the batch numbered sequence by sequence (flash_tile), the
 * last of each sequence partial, the blocks past the last tile idle. Rows past the sequence's
 * end are zeros in shared memory and never written out; keys past it score -inf. Any length
 * works (the blocks loop over the sequence's tiles); BERT's is at most 512.
 *
 * Forward: per query tile, over the sequence's key tiles in order: S = Q K^T (float, in shared
 * memory), scaled, the head's gate added across the segments (split_at, gates: attention.cuh);
 * the online softmax keeps each row's running maximum m and sum l (float, in every lane of the
 * warp that owns the row): a larger maximum rescales l and the output accumulator O by
 * exp(m_old - m_new), so that exp never overflows; P = exp(S - m), rounded to bf16, then O += P
 * V. Last, out = O / l (bf16) and the row's logsumexp L = m + log(l) (float, (N, NH)): what the
 * backward needs instead of att, to recompute the forward's float probabilities P = exp(S - L).
 *
 * Backward, deterministic without atomics: every output entry belongs to one block, which sums
 * it in a fixed order. A small kernel first: D = dout . out per (token, head), the softmax
 * backward's sum_j P dP (sum_j P_ij dP_ij = dout_i . sum_j P_ij v_j). Then one block per key
 * tile (dk = scale dS^T Q and dv = P^T dout, over the query tiles in order) and one per query
 * tile (dq = scale dS K over the key tiles in order, and the row's sum of dS across the
 * segments in double, into dgate_rows for attention.cuh's per-head reduction). Both recompute S,
 * P and dP = dout V^T for each pair of tiles, and dS = P (dP - D) (flash_backward_scores): the
 * products of S and dP are done twice, the price of no atomics.
 *
 * The products: every product of two tiles goes through Product::run, bf16 operands and a float
 * result in shared memory, with two implementations chosen at compile time: TensorCoreProduct
 * (nvcuda::wmma, 16x16x16 bf16 fragments into float accumulators; sm_80 and later; GPU only, the
 * emulator never sees it) and PlainProduct (a thread per output entry, one float sum in order:
 * the twin the emulator runs, against which test_cuda_bf16 holds the tensor cores on a GPU).
 * Everything else (tiling, masking, the online softmax, gates, reductions) is the same code for
 * both, so the emulator tests it through PlainProduct.
 *
 * Shared memory per block, head size 64 (32): forward 70 KB (50 KB), backward key kernel
 * 122.5 KB (90.5 KB), query kernel 96.5 KB (72.5 KB); above the default 48 KB, so each
 * launcher asks for it (cudaFuncSetAttribute; an H100 lends up to 227 KB a block and 228 KB an
 * SM, less 1 KB a block; an A100 163 and 164). An H100 SM then holds, at head size 64, 3
 * forward blocks (12 warps), 1 key block (4 warps) and 2 query blocks (8 warps); at 32, 4, 2
 * and 3: low occupancy, not tuned (the tile sizes, 4 warps, the float tiles in shared memory
 * are first choices), and never measured: no GPU has run this file yet.
 */
#ifndef ZELO_KERNELS_FLASH_ATTENTION_CUH
#define ZELO_KERNELS_FLASH_ATTENTION_CUH

#include <type_traits>
#include "kernels/attention.cuh"
#include "common/utils.h"
#ifndef CUDA_EMULATOR
#include <mma.h>
#endif

#define FLASH_TILE 64                                 // rows of a query tile, and of a key tile
#define FLASH_THREADS 128
#define FLASH_WARPS (FLASH_THREADS / 32)
#define FLASH_ROWS_PER_WARP (FLASH_TILE / FLASH_WARPS) // warp w owns rows w, w + FLASH_WARPS, ...

// The tiles in shared memory, for head size HS: their row strides (elements), padded by 16
// bytes so that the rows of a tile start in different banks, and a multiple of 16 bytes (8
// bf16, 4 floats) as wmma wants; and their bytes, each a multiple of 128, so that every tile
// and every 16 x 16 block of one starts 32-byte aligned (wmma's loads and stores need 32)
template <int HS> struct FlashTiles {
    static_assert(HS % 16 == 0, "the products take 16 x 16 x 16 blocks");
    static constexpr int LD_HEAD = HS + 8;          // (FLASH_TILE, HS) bf16: q, k, v, dout
    static constexpr int LD_PAIR = FLASH_TILE + 8;  // (FLASH_TILE, FLASH_TILE) bf16: P, dS
    static constexpr int LD_SCORE = FLASH_TILE + 4; // (FLASH_TILE, FLASH_TILE) float: S, dP
    static constexpr int LD_ACC = HS + 4;           // (FLASH_TILE, HS) float: O, dq, dk, dv
    static constexpr size_t HEAD = FLASH_TILE * LD_HEAD * sizeof(bf16);
    static constexpr size_t PAIR = FLASH_TILE * LD_PAIR * sizeof(bf16);
    static constexpr size_t SCORE = FLASH_TILE * LD_SCORE * sizeof(float);
    static constexpr size_t ACC = FLASH_TILE * LD_ACC * sizeof(float);
    static constexpr size_t ROW = FLASH_TILE * sizeof(float); // L or D of a tile's rows
    // each kernel's dynamic shared memory: the tiles it carves, in its order
    static constexpr size_t FORWARD = 3 * HEAD + PAIR + SCORE + ACC;
    static constexpr size_t BACKWARD_KEY = 4 * HEAD + 2 * SCORE + 2 * PAIR + 2 * ACC + 2 * ROW;
    static constexpr size_t BACKWARD_QUERY = 4 * HEAD + 2 * SCORE + PAIR + ACC + 2 * ROW;
};

// the next `bytes` of the block's shared memory at *at, as T*
template <typename T> __device__ __forceinline__ T* flash_carve(unsigned char** at, size_t bytes) {
    T* p = (T*)*at;
    *at += bytes;
    return p;
}

// ---- the products of two tiles ----
// run<A_T, B_T, M, N, K>: c (M, N) float, row stride ldc, = A B, or c + A B when accumulate;
// A (M, K) is a, bf16, row-major with row stride lda, or when A_T its transpose is, a (K, M);
// B (K, N) is b, row stride ldb, or when B_T its transpose is, b (N, K). M, N, K multiples of
// 16. Called by every thread of the block, after a barrier that made a, b and c visible; ends
// with one that makes c visible.

// the emulable twin: a thread per output entry, its float sum over K in order
struct PlainProduct {
    template <bool A_T, bool B_T, int M, int N, int K>
    static __device__ __forceinline__ void run(float* c, int ldc, const bf16* a, int lda, const bf16* b, int ldb,
                                               bool accumulate) {
        for (int e = threadIdx.x; e < M * N; e += blockDim.x) {
            int i = e / N, j = e % N;
            float sum = 0.0f;
            for (int k = 0; k < K; k++) {
                sum += to_float(A_T ? a[k * lda + i] : a[i * lda + k]) * to_float(B_T ? b[j * ldb + k] : b[k * ldb + j]);
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
        __syncthreads();
    }
};

#ifndef CUDA_EMULATOR
// tensor cores: each warp takes 16 x 16 blocks of c in turn, accumulating over K in float
// fragments (bf16 products are exact in float; the accumulation's rounding is the hardware's)
struct TensorCoreProduct {
    template <bool A_T, bool B_T, int M, int N, int K>
    static __device__ __forceinline__ void run(float* c, int ldc, const bf16* a, int lda, const bf16* b, int ldb,
                                               bool accumulate) {
        using namespace nvcuda;
        typedef typename std::conditional<A_T, wmma::col_major, wmma::row_major>::type LayoutA;
        typedef typename std::conditional<B_T, wmma::col_major, wmma::row_major>::type LayoutB;
        for (int f = threadIdx.x / 32; f < (M / 16) * (N / 16); f += blockDim.x / 32) {
            int i = f / (N / 16) * 16, j = f % (N / 16) * 16;
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
            if (accumulate) {
                wmma::load_matrix_sync(fc, c + i * ldc + j, ldc, wmma::mem_row_major);
            } else {
                wmma::fill_fragment(fc, 0.0f);
            }
            for (int k = 0; k < K; k += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, LayoutA> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LayoutB> fb;
                wmma::load_matrix_sync(fa, A_T ? a + k * lda + i : a + i * lda + k, lda);
                wmma::load_matrix_sync(fb, B_T ? b + j * ldb + k : b + k * ldb + j, ldb);
                wmma::mma_sync(fc, fa, fb, fc);
            }
            wmma::store_matrix_sync(c + i * ldc + j, fc, ldc, wmma::mem_row_major);
        }
        __syncthreads();
    }
};
typedef TensorCoreProduct FlashDefaultProduct;
#else
typedef PlainProduct FlashDefaultProduct;
#endif

// ---- what both implementations share ----

// a block's tile: its sequence's first token and length T, the tile's first row in it and its
// rows inside the sequence (FLASH_TILE but for the last tile); and for the scores, where the
// sequence's document starts and head h's gate (T and 0 without gates: nothing is across)
struct FlashTile {
    int start, T, row0, rows, split;
    float gate;
};
// the tile-th tile of the batch, numbered sequence by sequence; false past the last one. Every
// thread walks the S sequences (the grid has at most S blocks more than tiles): no table built
// on the host, so that the launchers take seq_starts alone. split_at (S), gates (NH) or NULL
__device__ __forceinline__ bool flash_tile(FlashTile* t, const int* seq_starts, const int* split_at,
                                           const float* gates, int S, int tile, int h) {
    for (int s = 0; s < S; s++) {
        int T = seq_starts[s + 1] - seq_starts[s], n = CEIL_DIV(T, FLASH_TILE);
        if (tile < n) {
            t->start = seq_starts[s];
            t->T = T;
            t->row0 = tile * FLASH_TILE;
            t->rows = min(FLASH_TILE, T - t->row0);
            t->split = gates != NULL ? split_at[s] : T;
            t->gate = gates != NULL ? gates[h] : 0.0f;
            return true;
        }
        tile -= n;
    }
    return false;
}

// dst (FLASH_TILE, HS), row stride ld: the HS columns at src of `rows` rows (row stride src_ld,
// elements), then zeros; 16 bytes a thread at a time (src 16-byte aligned: C and HS multiples of 8)
template <int HS>
__device__ __forceinline__ void flash_load_tile(bf16* dst, int ld, const bf16* src, size_t src_ld, int rows) {
    const int chunks = HS / 8;
    for (int e = threadIdx.x; e < FLASH_TILE * chunks; e += blockDim.x) {
        int r = e / chunks, col = e % chunks * 8;
        int4 x = make_int4(0, 0, 0, 0);
        if (r < rows) { x = *(const int4*)(src + r * src_ld + col); }
        *(int4*)(dst + r * ld + col) = x;
    }
}

// the score of query row i and key row j of t's sequence (model.c's order: scaled, then the
// gate across the segments); -inf for a key past the end
__device__ __forceinline__ float flash_score(float dot, float scale, int i, int j, const FlashTile& t) {
    if (j >= t.T) { return -INFINITY; }
    float score = scale * dot;
    if (across_segments(i, j, t.split)) { score += t.gate; }
    return score;
}

// the products of the kernels, in terms of their tiles (FlashTiles):
// s (FLASH_TILE, LD_SCORE) = a b^T, a and b (FLASH_TILE, LD_HEAD): Q K^T, dout V^T
template <typename Product, int HS>
__device__ __forceinline__ void flash_scores(float* s, const bf16* a, const bf16* b) {
    typedef FlashTiles<HS> Tiles;
    Product::template run<false, true, FLASH_TILE, FLASH_TILE, HS>(s, Tiles::LD_SCORE, a, Tiles::LD_HEAD, b,
                                                                  Tiles::LD_HEAD, false);
}
// acc (FLASH_TILE, LD_ACC) += p x, or p^T x when TRANSPOSE; p (FLASH_TILE, LD_PAIR), x
// (FLASH_TILE, LD_HEAD): P V, dS K; P^T dout, dS^T Q
template <typename Product, int HS, bool TRANSPOSE>
__device__ __forceinline__ void flash_accumulate(float* acc, const bf16* p, const bf16* x) {
    typedef FlashTiles<HS> Tiles;
    Product::template run<TRANSPOSE, false, FLASH_TILE, HS, FLASH_TILE>(acc, Tiles::LD_ACC, p, Tiles::LD_PAIR, x,
                                                                       Tiles::LD_HEAD, true);
}

// ---- forward ----

// grid (CEIL_DIV(N, FLASH_TILE) + S, NH), FLASH_THREADS threads, FlashTiles<HS>::FORWARD bytes
// of dynamic shared memory; a block per (query tile, head). out (N, C): the head's columns of
// the tile's rows WRITTEN; lse (N, NH): their logsumexp WRITTEN. gates (NH) or NULL, as
// attention_forward_kernel1
template <typename Product, int HS>
__global__ void __launch_bounds__(FLASH_THREADS)
flash_attention_forward_kernel1(bf16* out, float* lse, const bf16* qkv, const int* seq_starts, const int* split_at,
                                const float* gates, int S, int C, int NH) {
    typedef FlashTiles<HS> Tiles;
    extern __shared__ __align__(128) unsigned char flash_smem[];  // not smem: attention.cuh's is float
    int h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    FlashTile t;
    if (!flash_tile(&t, seq_starts, split_at, gates, S, blockIdx.x, h)) { return; }
    float scale = 1.0f / sqrtf((float)HS);
    unsigned char* at = flash_smem;
    bf16* q = flash_carve<bf16>(&at, Tiles::HEAD);     // (FLASH_TILE, LD_HEAD) the tile's queries
    bf16* k = flash_carve<bf16>(&at, Tiles::HEAD);     // (FLASH_TILE, LD_HEAD) a key tile's keys
    bf16* v = flash_carve<bf16>(&at, Tiles::HEAD);     // and values
    bf16* p = flash_carve<bf16>(&at, Tiles::PAIR);     // (FLASH_TILE, LD_PAIR) exp(S - m), rounded
    float* sc = flash_carve<float>(&at, Tiles::SCORE); // (FLASH_TILE, LD_SCORE) Q K^T
    float* o = flash_carve<float>(&at, Tiles::ACC);    // (FLASH_TILE, LD_ACC) sum of P V so far
    size_t ld3 = (size_t)3 * C;
    const bf16* base = qkv + (size_t)t.start * ld3 + h * HS;  // the sequence's first row, head h
    flash_load_tile<HS>(q, Tiles::LD_HEAD, base + (size_t)t.row0 * ld3, ld3, t.rows);
    for (int e = threadIdx.x; e < FLASH_TILE * HS; e += blockDim.x) { o[e / HS * Tiles::LD_ACC + e % HS] = 0.0f; }
    // the running maximum and sum of row warp + r FLASH_WARPS, the same in every lane
    float m[FLASH_ROWS_PER_WARP], l[FLASH_ROWS_PER_WARP];
    for (int r = 0; r < FLASH_ROWS_PER_WARP; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int col0 = 0; col0 < t.T; col0 += FLASH_TILE) {
        int cols = min(FLASH_TILE, t.T - col0);
        flash_load_tile<HS>(k, Tiles::LD_HEAD, base + C + (size_t)col0 * ld3, ld3, cols);
        flash_load_tile<HS>(v, Tiles::LD_HEAD, base + 2 * C + (size_t)col0 * ld3, ld3, cols);
        __syncthreads();
        flash_scores<Product, HS>(sc, q, k);
        for (int r = 0; r < FLASH_ROWS_PER_WARP; r++) {
            int i = warp + r * FLASH_WARPS;
            float x[FLASH_TILE / 32], tile_max = -INFINITY;
            for (int c = 0; c < FLASH_TILE / 32; c++) {
                int j = lane + 32 * c;
                x[c] = flash_score(sc[i * Tiles::LD_SCORE + j], scale, t.row0 + i, col0 + j, t);
                tile_max = fmaxf(tile_max, x[c]);
            }
            // the first key tile holds a key, so m_new is finite and alpha = exp(-inf) = 0 there
            float m_new = fmaxf(m[r], warp_max(tile_max));
            float alpha = expf(m[r] - m_new), sum = 0.0f;
            for (int c = 0; c < FLASH_TILE / 32; c++) {
                float e = expf(x[c] - m_new);
                sum += e;
                p[i * Tiles::LD_PAIR + lane + 32 * c] = from_float<bf16>(e);
            }
            // the sum of the float exps, not of their roundings: L is then the float softmax's
            l[r] = alpha * l[r] + warp_sum(sum);
            m[r] = m_new;
            for (int d = lane; d < HS; d += 32) { o[i * Tiles::LD_ACC + d] *= alpha; }
        }
        __syncthreads();
        flash_accumulate<Product, HS, false>(o, p, v);
    }
    for (int r = 0; r < FLASH_ROWS_PER_WARP; r++) {
        int i = warp + r * FLASH_WARPS;
        if (i >= t.rows) { continue; }
        size_t row = (size_t)t.start + t.row0 + i;
        float inv = 1.0f / l[r];
        for (int d = lane; d < HS; d += 32) { out[row * C + h * HS + d] = from_float<bf16>(o[i * Tiles::LD_ACC + d] * inv); }
        if (lane == 0) { lse[row * NH + h] = m[r] + logf(l[r]); }
    }
}

// ---- backward ----

// delta (N, NH) WRITTEN: per token and head, dout . out over the head's columns, a float sum in
// column order; one thread each
__global__ void flash_attention_delta_kernel1(float* delta, const bf16* dout, const bf16* out, int N, int C, int NH) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= N * NH) { return; }
    int hs = C / NH;
    size_t at = (size_t)(e / NH) * C + (e % NH) * hs;
    float sum = 0.0f;
    for (int d = 0; d < hs; d++) { sum += to_float(dout[at + d]) * to_float(out[at + d]); }
    delta[e] = sum;
}

// the backward's pass over a pair of tiles, between its products: from S = Q K^T (sc) and dP =
// dout V^T (dp), (FLASH_TILE, LD_SCORE) each, and the query rows' L and D (FLASH_TILE), per entry
// the forward's float probability P = exp(score - L) and dS = P (dP - D), both 0 past the
// query tile's rows or past the sequence's keys; ds and, when not NULL, p (FLASH_TILE,
// LD_PAIR) get them rounded to bf16 (the products' operands). Query rows are owned by warps as
// in the forward; gate_sum[r], when not NULL, gets the float dS of row warp + r FLASH_WARPS
// across the segments added in double (the lanes' in a fixed butterfly order). row0, rows: the
// query tile's first row and its rows; col0 the key tile's first row; t: either tile (the same
// sequence and head)
template <int HS>
__device__ __forceinline__ void flash_backward_scores(bf16* ds, bf16* p, double* gate_sum, const float* sc,
                                                      const float* dp, const float* L, const float* D, int row0,
                                                      int rows, int col0, const FlashTile& t, float scale) {
    typedef FlashTiles<HS> Tiles;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = 0; r < FLASH_ROWS_PER_WARP; r++) {
        int i = warp + r * FLASH_WARPS;
        double across = 0.0;
        for (int c = 0; c < FLASH_TILE / 32; c++) {
            int j = lane + 32 * c;
            float prob = 0.0f, grad = 0.0f;
            if (i < rows && col0 + j < t.T) {
                float score = flash_score(sc[i * Tiles::LD_SCORE + j], scale, row0 + i, col0 + j, t);
                prob = expf(score - L[i]);
                grad = prob * (dp[i * Tiles::LD_SCORE + j] - D[i]);
                if (across_segments(row0 + i, col0 + j, t.split)) { across += grad; }
            }
            ds[i * Tiles::LD_PAIR + j] = from_float<bf16>(grad);
            if (p != NULL) { p[i * Tiles::LD_PAIR + j] = from_float<bf16>(prob); }
        }
        if (gate_sum != NULL) { gate_sum[r] += warp_sum_double(across); }
    }
}

// L and D (FLASH_TILE) of a query tile's rows: lse and delta (N, NH) at the tile's first token
// `first` (rows past the tile's `rows`: 0, never used)
__device__ __forceinline__ void flash_load_rows(float* L, float* D, const float* lse, const float* delta,
                                                size_t first, int rows, int h, int NH) {
    for (int i = threadIdx.x; i < FLASH_TILE; i += blockDim.x) {
        L[i] = i < rows ? lse[(first + i) * NH + h] : 0.0f;
        D[i] = i < rows ? delta[(first + i) * NH + h] : 0.0f;
    }
}

// grid (CEIL_DIV(N, FLASH_TILE) + S, NH), FLASH_THREADS threads, FlashTiles<HS>::BACKWARD_KEY
// bytes of dynamic shared memory; a block per (key tile, head): dk = scale dS^T Q and dv = P^T
// dout, the head's columns of dqkv (N, 3*C) of the tile's rows WRITTEN
template <typename Product, int HS>
__global__ void __launch_bounds__(FLASH_THREADS)
flash_attention_backward_key_kernel1(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse,
                                     const float* delta, const int* seq_starts, const int* split_at,
                                     const float* gates, int S, int C, int NH) {
    typedef FlashTiles<HS> Tiles;
    extern __shared__ __align__(128) unsigned char flash_smem[];
    int h = blockIdx.y;
    FlashTile t;  // the key tile
    if (!flash_tile(&t, seq_starts, split_at, gates, S, blockIdx.x, h)) { return; }
    float scale = 1.0f / sqrtf((float)HS);
    unsigned char* at = flash_smem;
    bf16* k = flash_carve<bf16>(&at, Tiles::HEAD);      // (FLASH_TILE, LD_HEAD) the tile's keys
    bf16* v = flash_carve<bf16>(&at, Tiles::HEAD);      // and values
    bf16* q = flash_carve<bf16>(&at, Tiles::HEAD);      // (FLASH_TILE, LD_HEAD) a query tile's queries
    bf16* dy = flash_carve<bf16>(&at, Tiles::HEAD);     // and their dout
    float* sc = flash_carve<float>(&at, Tiles::SCORE);  // (FLASH_TILE, LD_SCORE) Q K^T
    float* dp = flash_carve<float>(&at, Tiles::SCORE);  // (FLASH_TILE, LD_SCORE) dout V^T
    bf16* p = flash_carve<bf16>(&at, Tiles::PAIR);      // (FLASH_TILE, LD_PAIR) P, rounded
    bf16* ds = flash_carve<bf16>(&at, Tiles::PAIR);     // (FLASH_TILE, LD_PAIR) dS, rounded
    float* dk = flash_carve<float>(&at, Tiles::ACC);    // (FLASH_TILE, LD_ACC) sum of dS^T Q so far
    float* dv = flash_carve<float>(&at, Tiles::ACC);    // (FLASH_TILE, LD_ACC) sum of P^T dout so far
    float* L = flash_carve<float>(&at, Tiles::ROW);     // (FLASH_TILE) the query rows' logsumexp
    float* D = flash_carve<float>(&at, Tiles::ROW);     // (FLASH_TILE) and dout . out
    size_t ld3 = (size_t)3 * C;
    const bf16* base = qkv + (size_t)t.start * ld3 + h * HS;
    flash_load_tile<HS>(k, Tiles::LD_HEAD, base + C + (size_t)t.row0 * ld3, ld3, t.rows);
    flash_load_tile<HS>(v, Tiles::LD_HEAD, base + 2 * C + (size_t)t.row0 * ld3, ld3, t.rows);
    for (int e = threadIdx.x; e < FLASH_TILE * HS; e += blockDim.x) {
        dk[e / HS * Tiles::LD_ACC + e % HS] = 0.0f;
        dv[e / HS * Tiles::LD_ACC + e % HS] = 0.0f;
    }
    for (int row0 = 0; row0 < t.T; row0 += FLASH_TILE) {
        int rows = min(FLASH_TILE, t.T - row0);
        flash_load_tile<HS>(q, Tiles::LD_HEAD, base + (size_t)row0 * ld3, ld3, rows);
        flash_load_tile<HS>(dy, Tiles::LD_HEAD, dout + (size_t)(t.start + row0) * C + h * HS, C, rows);
        flash_load_rows(L, D, lse, delta, (size_t)t.start + row0, rows, h, NH);
        __syncthreads();
        flash_scores<Product, HS>(sc, q, k);
        flash_scores<Product, HS>(dp, dy, v);
        flash_backward_scores<HS>(ds, p, NULL, sc, dp, L, D, row0, rows, t.row0, t, scale);
        __syncthreads();
        flash_accumulate<Product, HS, true>(dv, p, dy);
        flash_accumulate<Product, HS, true>(dk, ds, q);
    }
    for (int e = threadIdx.x; e < t.rows * HS; e += blockDim.x) {
        int i = e / HS, d = e % HS;
        bf16* row = dqkv + ((size_t)t.start + t.row0 + i) * ld3 + h * HS + d;
        row[C] = from_float<bf16>(scale * dk[i * Tiles::LD_ACC + d]);
        row[2 * C] = from_float<bf16>(dv[i * Tiles::LD_ACC + d]);
    }
}

// grid (CEIL_DIV(N, FLASH_TILE) + S, NH), FLASH_THREADS threads, FlashTiles<HS>::BACKWARD_QUERY
// bytes of dynamic shared memory; a block per (query tile, head): dq = scale dS K, the head's
// columns of dqkv (N, 3*C) of the tile's rows WRITTEN; dgate_rows (N, NH), unless NULL, each
// row's sum of dS across the segments WRITTEN
template <typename Product, int HS>
__global__ void __launch_bounds__(FLASH_THREADS)
flash_attention_backward_query_kernel1(bf16* dqkv, double* dgate_rows, const bf16* dout, const bf16* qkv,
                                       const float* lse, const float* delta, const int* seq_starts,
                                       const int* split_at, const float* gates, int S, int C, int NH) {
    typedef FlashTiles<HS> Tiles;
    extern __shared__ __align__(128) unsigned char flash_smem[];
    int h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    FlashTile t;
    if (!flash_tile(&t, seq_starts, split_at, gates, S, blockIdx.x, h)) { return; }
    float scale = 1.0f / sqrtf((float)HS);
    unsigned char* at = flash_smem;
    bf16* q = flash_carve<bf16>(&at, Tiles::HEAD);      // (FLASH_TILE, LD_HEAD) the tile's queries
    bf16* dy = flash_carve<bf16>(&at, Tiles::HEAD);     // and their dout
    bf16* k = flash_carve<bf16>(&at, Tiles::HEAD);      // (FLASH_TILE, LD_HEAD) a key tile's keys
    bf16* v = flash_carve<bf16>(&at, Tiles::HEAD);      // and values
    float* sc = flash_carve<float>(&at, Tiles::SCORE);  // (FLASH_TILE, LD_SCORE) Q K^T
    float* dp = flash_carve<float>(&at, Tiles::SCORE);  // (FLASH_TILE, LD_SCORE) dout V^T
    bf16* ds = flash_carve<bf16>(&at, Tiles::PAIR);     // (FLASH_TILE, LD_PAIR) dS, rounded
    float* dq = flash_carve<float>(&at, Tiles::ACC);    // (FLASH_TILE, LD_ACC) sum of dS K so far
    float* L = flash_carve<float>(&at, Tiles::ROW);     // (FLASH_TILE) the rows' logsumexp
    float* D = flash_carve<float>(&at, Tiles::ROW);     // (FLASH_TILE) and dout . out
    size_t ld3 = (size_t)3 * C;
    const bf16* base = qkv + (size_t)t.start * ld3 + h * HS;
    flash_load_tile<HS>(q, Tiles::LD_HEAD, base + (size_t)t.row0 * ld3, ld3, t.rows);
    flash_load_tile<HS>(dy, Tiles::LD_HEAD, dout + (size_t)(t.start + t.row0) * C + h * HS, C, t.rows);
    flash_load_rows(L, D, lse, delta, (size_t)t.start + t.row0, t.rows, h, NH);
    for (int e = threadIdx.x; e < FLASH_TILE * HS; e += blockDim.x) { dq[e / HS * Tiles::LD_ACC + e % HS] = 0.0f; }
    double gate_sum[FLASH_ROWS_PER_WARP];  // row warp + r FLASH_WARPS's, the same in every lane
    for (int r = 0; r < FLASH_ROWS_PER_WARP; r++) { gate_sum[r] = 0.0; }
    for (int col0 = 0; col0 < t.T; col0 += FLASH_TILE) {
        int cols = min(FLASH_TILE, t.T - col0);
        flash_load_tile<HS>(k, Tiles::LD_HEAD, base + C + (size_t)col0 * ld3, ld3, cols);
        flash_load_tile<HS>(v, Tiles::LD_HEAD, base + 2 * C + (size_t)col0 * ld3, ld3, cols);
        __syncthreads();
        flash_scores<Product, HS>(sc, q, k);
        flash_scores<Product, HS>(dp, dy, v);
        flash_backward_scores<HS>(ds, NULL, dgate_rows != NULL ? gate_sum : NULL, sc, dp, L, D, t.row0, t.rows, col0,
                                  t, scale);
        __syncthreads();
        flash_accumulate<Product, HS, false>(dq, ds, k);
    }
    for (int r = 0; r < FLASH_ROWS_PER_WARP; r++) {
        int i = warp + r * FLASH_WARPS;
        if (i >= t.rows) { continue; }
        size_t row = (size_t)t.start + t.row0 + i;
        for (int d = lane; d < HS; d += 32) { dqkv[row * ld3 + h * HS + d] = from_float<bf16>(scale * dq[i * Tiles::LD_ACC + d]); }
        if (dgate_rows != NULL && lane == 0) { dgate_rows[row * NH + h] = gate_sum[r]; }
    }
}

// ---- launchers: seq_starts (S+1) and split_at (S) on the device, as attention.cuh's; the
// head size C / NH must be 32 (MiniLM) or 64 (BERT); Product: TensorCoreProduct on a GPU by
// default, PlainProduct (the only one) under the emulator ----

template <typename Product, int HS>
void flash_attention_forward_launch(bf16* out, float* lse, const bf16* qkv, const int* seq_starts, const int* split_at,
                                    const float* gates, int S, int N, int C, int NH, cudaStream_t stream) {
    size_t smem = FlashTiles<HS>::FORWARD;
    cudaCheck(cudaFuncSetAttribute(flash_attention_forward_kernel1<Product, HS>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid(CEIL_DIV(N, FLASH_TILE) + S, NH);
    flash_attention_forward_kernel1<Product, HS><<<grid, FLASH_THREADS, smem, stream>>>(out, lse, qkv, seq_starts, split_at, gates, S, C, NH);
    cudaCheck(cudaGetLastError());
}

// out (N, C) and lse (N, NH), the rows' logsumexp for the backward, WRITTEN from qkv (N, 3*C);
// gates (NH): the layer's split-packing gates, or NULL (the joint packing)
template <typename Product = FlashDefaultProduct>
void flash_attention_forward_cuda(bf16* out, float* lse, const bf16* qkv, const int* seq_starts, const int* split_at,
                                  const float* gates, int S, int N, int C, int NH, cudaStream_t stream) {
    if (N == 0) { return; }  // no grid of zero blocks
    if (C / NH == 64) {
        flash_attention_forward_launch<Product, 64>(out, lse, qkv, seq_starts, split_at, gates, S, N, C, NH, stream);
    } else if (C / NH == 32) {
        flash_attention_forward_launch<Product, 32>(out, lse, qkv, seq_starts, split_at, gates, S, N, C, NH, stream);
    } else {
        die("flash_attention_forward_cuda: head size %d (C %d / %d heads) not supported: 32 or 64", C / NH, C, NH);
    }
}

template <typename Product, int HS>
void flash_attention_backward_launch(bf16* dqkv, double* dgate_rows, const bf16* dout, const bf16* qkv,
                                     const float* lse, const float* delta, const int* seq_starts, const int* split_at,
                                     const float* gates, int S, int N, int C, int NH, cudaStream_t stream) {
    size_t key_smem = FlashTiles<HS>::BACKWARD_KEY, query_smem = FlashTiles<HS>::BACKWARD_QUERY;
    cudaCheck(cudaFuncSetAttribute(flash_attention_backward_key_kernel1<Product, HS>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)key_smem));
    cudaCheck(cudaFuncSetAttribute(flash_attention_backward_query_kernel1<Product, HS>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)query_smem));
    dim3 grid(CEIL_DIV(N, FLASH_TILE) + S, NH);
    flash_attention_backward_key_kernel1<Product, HS><<<grid, FLASH_THREADS, key_smem, stream>>>(dqkv, dout, qkv, lse, delta, seq_starts, split_at, gates, S, C, NH);
    cudaCheck(cudaGetLastError());
    flash_attention_backward_query_kernel1<Product, HS><<<grid, FLASH_THREADS, query_smem, stream>>>(dqkv, dgate_rows, dout, qkv, lse, delta, seq_starts, split_at, gates, S, C, NH);
    cudaCheck(cudaGetLastError());
}

// dqkv (N, 3*C) WRITTEN from dout (N, C) and the forward's qkv, out and lse; delta (N, NH) float
// scratch. gates (NH) as the forward's; dgates (NH): their gradient, accumulated (+=), with
// dgate_rows (N, NH) as scratch; NULL both for the joint packing
template <typename Product = FlashDefaultProduct>
void flash_attention_backward_cuda(bf16* dqkv, float* delta, float* dgates, double* dgate_rows, const bf16* dout,
                                   const bf16* qkv, const bf16* out, const float* lse, const int* seq_starts,
                                   const int* split_at, const float* gates, int S, int N, int C, int NH,
                                   cudaStream_t stream) {
    if (N == 0) { return; }
    if (C / NH != 64 && C / NH != 32) {
        die("flash_attention_backward_cuda: head size %d (C %d / %d heads) not supported: 32 or 64", C / NH, C, NH);
    }
    const int block_size = 256;
    flash_attention_delta_kernel1<<<CEIL_DIV(N * NH, block_size), block_size, 0, stream>>>(delta, dout, out, N, C, NH);
    cudaCheck(cudaGetLastError());
    double* rows = dgates != NULL ? dgate_rows : NULL;
    if (C / NH == 64) {
        flash_attention_backward_launch<Product, 64>(dqkv, rows, dout, qkv, lse, delta, seq_starts, split_at, gates, S, N, C, NH, stream);
    } else {
        flash_attention_backward_launch<Product, 32>(dqkv, rows, dout, qkv, lse, delta, seq_starts, split_at, gates, S, N, C, NH, stream);
    }
    if (dgates != NULL) {
        attention_gate_backward_kernel1<<<CEIL_DIV(NH, 32), 32, 0, stream>>>(dgates, dgate_rows, seq_starts, S, NH);
        cudaCheck(cudaGetLastError());
    }
}

#endif // ZELO_KERNELS_FLASH_ATTENTION_CUH
