/*
 * model.c — the CPU reference backend of the BERT cross-encoder: fp32 forward and backward
 * over packed variable-length batches, AdamW, checkpoints. Layers are plain functions over
 * flat arrays (outputs first); matrix products go through one matmul() that calls the
 * project's own blocked sgemm (cpu/gemm.c), OpenBLAS's when asked for, or readable loops (the
 * reference the other two are tested against); everything else is loops with OpenMP.
 * The gradient of a tensor is always ACCUMULATED (+=), as in PyTorch, so callers zero a
 * buffer before its first contribution.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <omp.h>
#ifdef USE_BLAS
#include <cblas.h>
#undef I  // OpenBLAS's cblas.h pulls in complex.h, whose I would shadow the intermediate size
#endif
#include "cpu/gemm.h"
#include "model.h"
#include "common/utils.h"
#include "common/segment_cosine.h"
#ifdef USE_CUDA
#include "kernels/model_cuda.h"
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoints are read and written as little-endian memory images"
#endif

MatmulPath matmul_path = MATMUL_KERNELS;

const char* matmul_path_name(MatmulPath path) {
    switch (path) {
        case MATMUL_LOOPS: return "plain loops";
        case MATMUL_KERNELS: {
            static char name[64];
            snprintf(name, sizeof(name), "gemm.c, %s kernel", GEMM_KERNEL);
            return name;
        }
        case MATMUL_OPENBLAS: return "OpenBLAS";
    }
    return "?";
}

const char* matmul_select(const char* name) {
    if (strcmp(name, "kernels") == 0) { matmul_path = MATMUL_KERNELS; return NULL; }
    if (strcmp(name, "loops") == 0) { matmul_path = MATMUL_LOOPS; return NULL; }
    if (strcmp(name, "openblas") == 0) {
#ifdef USE_BLAS
        matmul_path = MATMUL_OPENBLAS;
        return NULL;
#else
        return "this build has no OpenBLAS (make found none to link)";
#endif
    }
    return "unknown path (kernels, openblas or loops)";
}

const char* const PARAMETER_TENSOR_NAMES[NUM_PARAMETER_TENSORS] = {
    "wte", "wpe", "wtt", "emb_lnw", "emb_lnb", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln1w", "ln1b", "fcw", "fcb", "fcprojw", "fcprojb", "ln2w", "ln2b",
    "poolw", "poolb", "clsw", "clsb", "xgate",
};

// ----------------------------------------------------------------------------
// parameter layout

// no model this code trains comes near (bert-large has 2^28.3); the bound keeps every size
// computed from a config well inside size_t
#define MAX_PARAMETERS 1099511627776.0 // 2^40

// NULL when the config describes a BERT this code can run, else what is wrong with it
static const char* config_problem(const BertConfig* c) {
    if (c->vocab_size <= 0) { return "vocab_size must be positive"; }
    if (c->hidden_size <= 0) { return "hidden_size must be positive"; }
    if (c->num_layers < 0) { return "num_layers must not be negative"; }
    if (c->num_heads <= 0) { return "num_heads must be positive"; }
    if (c->hidden_size % c->num_heads != 0) { return "hidden_size must be a multiple of num_heads"; }
    if (c->intermediate_size <= 0) { return "intermediate_size must be positive"; }
    if (c->max_position <= 0) { return "max_position must be positive"; }
    if (c->type_vocab_size <= 0) { return "type_vocab_size must be positive"; }
    if (c->num_labels <= 0) { return "num_labels must be positive"; }
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps)) { return "layer_norm_eps must be positive and finite"; }
    // counted in double, which cannot wrap, so that a config of sizes near 2^31 (a crafted
    // header or config.json) never reaches fill_in_parameter_sizes' size_t products
    double V = c->vocab_size, C = c->hidden_size, L = c->num_layers, I = c->intermediate_size;
    double total = (V + c->max_position + c->type_vocab_size + c->num_labels) * C + L * (4 * C * C + 2 * I * C + I + 9 * C)
                   + C * C + 3 * C + c->num_labels;
    if (total > MAX_PARAMETERS) { return "the sizes describe more than 2^40 parameters"; }
    return NULL;
}

void fill_in_parameter_sizes(size_t* param_sizes, const BertConfig* config) {
    const char* problem = config_problem(config);
    if (problem != NULL) { die("invalid BERT config: %s", problem); }
    size_t V = config->vocab_size, C = config->hidden_size, L = config->num_layers;
    size_t I = config->intermediate_size, P = config->max_position, TT = config->type_vocab_size;
    size_t NL = config->num_labels;
    size_t sizes[NUM_PARAMETER_TENSORS] = {
        V * C, P * C, TT * C, C, C,
        L * 3 * C * C, L * 3 * C, L * C * C, L * C,
        L * C, L * C, L * I * C, L * I, L * C * I, L * C,
        L * C, L * C,
        C * C, C, NL * C, NL,
        0,  // xgate: a BERT has none (bert_split_segments)
    };
    memcpy(param_sizes, sizes, sizeof(sizes));
}

// points each of the n pointers of a struct of float* at consecutive slices of memory
static void point_tensors(float** ptrs, float* memory, const size_t* sizes, int n) {
    for (int i = 0; i < n; i++) {
        ptrs[i] = memory;
        memory += sizes[i];
    }
}

static size_t sum_sizes(const size_t* sizes, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) { total += sizes[i]; }
    return total;
}

float* malloc_and_point_parameters(ParameterTensors* params, const size_t* param_sizes) {
    size_t total = sum_sizes(param_sizes, NUM_PARAMETER_TENSORS);
    float* memory = (float*)callocCheck(total, sizeof(float));
    point_tensors((float**)params, memory, param_sizes, NUM_PARAMETER_TENSORS);
    return memory;
}

float parameter_tensor_lr_scale(const BertModel* model, int i) {
    if (i == XGATE_TENSOR) { return model->gate_lr_scale; }
    return i >= HEAD_FIRST_TENSOR ? model->head_lr_scale : 1.0f;
}

int parameter_tensor_decays(int i) {
    switch (i) {
        case 0: case 1: case 2:     // wte, wpe, wtt
        case 5: case 7: case 11: case 13: // qkvw, attprojw, fcw, fcprojw
        case 17: case 19:           // poolw, clsw
            return 1;
        default:
            return 0;
    }
}

// ----------------------------------------------------------------------------
// matrix product: c (m, n) = alpha * op(a) (m, k) @ op(b) (k, n) + beta * c, row-major,
// op(x) = x or its transpose; lda, ldb, ldc are row strides, so that strided views (one
// head's columns of the packed qkv) need no copy. beta = 0 never reads c.

// Row and column blocks of a product handed to different threads are cut at multiples of
// this, so that every piece is made of whole tiles of cpu/gemm.c's kernels (12 x 32 with
// AVX-512, 6 x 16 with AVX2, 4 x 16 in plain C) and of OpenBLAS's (multiples of 16)
#define TILE_MULTIPLE 96

static void matmul_loops(float* c, int ldc, const float* a, int lda, int trans_a,
                         const float* b, int ldb, int trans_b, int m, int n, int k,
                         float alpha, float beta) {
    #pragma omp parallel for collapse(2)
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float sum = 0.0f;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += av * bv;
            }
            float* out = &c[(size_t)i * ldc + j];
            *out = alpha * sum + (beta == 0.0f ? 0.0f : beta * *out);
        }
    }
}

// one thread's product through the chosen path
static void matmul_one_thread(float* c, int ldc, const float* a, int lda, int trans_a,
                              const float* b, int ldb, int trans_b, int m, int n, int k,
                              float alpha, float beta) {
#ifdef USE_BLAS
    if (matmul_path == MATMUL_OPENBLAS) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    gemm(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta);
}

// The threads are OpenMP's alone: gemm() is single-threaded and OpenBLAS is held to one
// thread (bert_build), and a large product is split by rows of c into one product per OpenMP
// thread. Letting OpenBLAS start threads of its own puts two thread pools on the same
// cores, each spinning while the other works. Inside a parallel region (forward_pass and
// bert_backward hand each thread whole products) the call is made as it is.
static void matmul(float* c, int ldc, const float* a, int lda, int trans_a,
                   const float* b, int ldb, int trans_b, int m, int n, int k,
                   float alpha, float beta) {
    if (matmul_path == MATMUL_LOOPS) {
        matmul_loops(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta);
        return;
    }
    // below ~1M multiply-adds a parallel region costs more than it saves
    if (omp_in_parallel() || (size_t)m * n * k < (1u << 20)) {
        matmul_one_thread(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta);
        return;
    }
    #pragma omp parallel
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int rows = ((m + nt - 1) / nt + TILE_MULTIPLE - 1) / TILE_MULTIPLE * TILE_MULTIPLE;
        int i0 = it * rows, i1 = i0 + rows < m ? i0 + rows : m;
        if (i0 < i1) {
            const float* a_rows = trans_a ? a + i0 : a + (size_t)i0 * lda;
            matmul_one_thread(c + (size_t)i0 * ldc, ldc, a_rows, lda, trans_a, b, ldb, trans_b, i1 - i0, n, k,
                              alpha, beta);
        }
    }
}

// ----------------------------------------------------------------------------
// layers

// tokens per block of row-wise work handed to one thread (see forward_pass). sgemm packs
// the whole weight matrix again for every block, which costs ~10% of the products at 128
// rows and half that at 256; 256 rows still make 16 blocks of a 16 x 256-token batch, enough
// for two threads to share the work evenly.
#define ROW_BLOCK 256

// sums over the rows of x (n, d), columns [c0, c1) only, into acc (d) +=; single-threaded
#define COLUMN_BLOCK 64
static void column_sum_range(float* acc, const float* x, int n, int d, int c0, int c1) {
    for (; c0 < c1; c0 += COLUMN_BLOCK) {
        int ce = c0 + COLUMN_BLOCK < c1 ? c0 + COLUMN_BLOCK : c1;
        float sum[COLUMN_BLOCK] = {0};
        for (int t = 0; t < n; t++) {
            const float* row = x + (size_t)t * d;
            for (int c = c0; c < ce; c++) { sum[c - c0] += row[c]; }
        }
        for (int c = c0; c < ce; c++) { acc[c] += sum[c - c0]; }
    }
}

// sums over the rows of x (n, d) into acc (d) +=. Each thread owns a block of columns and
// walks all rows, so the result is race-free and independent of the thread count.
static void column_sum_accumulate(float* acc, const float* x, int n, int d) {
    #pragma omp parallel for
    for (int c0 = 0; c0 < d; c0 += COLUMN_BLOCK) {
        column_sum_range(acc, x, n, d, c0, c0 + COLUMN_BLOCK < d ? c0 + COLUMN_BLOCK : d);
    }
}

// out (N, C) = word + position + type embeddings of each token; positions restart per sequence
void embeddings_forward(float* out, const int* ids, const int* types, const int* seq_starts,
                        int S, const float* wte, const float* wpe, const float* wtt, int C) {
    #pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < S; s++) {
        for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) {
            const float* w = wte + (size_t)ids[t] * C;
            const float* p = wpe + (size_t)(t - seq_starts[s]) * C;
            const float* y = wtt + (size_t)types[t] * C;
            float* o = out + (size_t)t * C;
            for (int c = 0; c < C; c++) { o[c] = w[c] + p[c] + y[c]; }
        }
    }
}

// scatters demb (N, C) into the three tables. Threads split the columns rather than the
// tokens, because several tokens share a row of wte (same id) and would race.
void embeddings_backward(float* dwte, float* dwpe, float* dwtt, const float* demb,
                         const int* ids, const int* types, const int* seq_starts, int S, int C) {
    #pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += COLUMN_BLOCK) {
        int c1 = c0 + COLUMN_BLOCK < C ? c0 + COLUMN_BLOCK : C;
        for (int s = 0; s < S; s++) {
            for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) {
                const float* d = demb + (size_t)t * C;
                float* w = dwte + (size_t)ids[t] * C;
                float* p = dwpe + (size_t)(t - seq_starts[s]) * C;
                float* y = dwtt + (size_t)types[t] * C;
                for (int c = c0; c < c1; c++) { w[c] += d[c]; p[c] += d[c]; y[c] += d[c]; }
            }
        }
    }
}

// out (N, C) = (inp - mean) * rstd * weight + bias per row; mean, rstd (N) kept for backward.
// Like the other row-wise forward layers it runs on the calling thread: forward_pass hands
// each thread blocks of rows (see there).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int N, int C, float eps) {
    for (int t = 0; t < N; t++) {
        const float* x = inp + (size_t)t * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) { m += x[c]; }
        m /= C;
        // two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which
        // cancels catastrophically when the mean is large against the spread
        float v = 0.0f;
        for (int c = 0; c < C; c++) { float d = x[c] - m; v += d * d; }
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        float* o = out + (size_t)t * C;
        for (int c = 0; c < C; c++) { o[c] = (x[c] - m) * s * weight[c] + bias[c]; }
        mean[t] = m;
        rstd[t] = s;
    }
}

// dinp (N, C) += the gradient wrt the LayerNorm's input, for the N rows given; single-threaded
static void layernorm_backward_input(float* dinp, const float* dout, const float* inp, const float* weight,
                                     const float* mean, const float* rstd, int N, int C) {
    for (int t = 0; t < N; t++) {
        const float* x = inp + (size_t)t * C;
        const float* g = dout + (size_t)t * C;
        float m = mean[t], s = rstd[t];
        // d/dx of a normalised row: the gradient minus its mean, minus its projection on
        // the normalised row itself, rescaled by rstd
        float gw_mean = 0.0f, gw_xhat_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            float gw = g[c] * weight[c];
            gw_mean += gw;
            gw_xhat_mean += gw * (x[c] - m) * s;
        }
        gw_mean /= C;
        gw_xhat_mean /= C;
        float* d = dinp + (size_t)t * C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            d[c] += (g[c] * weight[c] - gw_mean - xhat * gw_xhat_mean) * s;
        }
    }
}

// dweight, dbias (C) += their gradients, sums over all N tokens, columns [c0, c1) only;
// single-threaded
static void layernorm_backward_params(float* dweight, float* dbias, const float* dout, const float* inp,
                                      const float* mean, const float* rstd, int N, int C, int c0, int c1) {
    for (; c0 < c1; c0 += COLUMN_BLOCK) {
        int ce = c0 + COLUMN_BLOCK < c1 ? c0 + COLUMN_BLOCK : c1;
        float dw[COLUMN_BLOCK] = {0}, db[COLUMN_BLOCK] = {0};
        for (int t = 0; t < N; t++) {
            const float* x = inp + (size_t)t * C;
            const float* g = dout + (size_t)t * C;
            for (int c = c0; c < ce; c++) {
                dw[c - c0] += g[c] * (x[c] - mean[t]) * rstd[t];
                db[c - c0] += g[c];
            }
        }
        for (int c = c0; c < ce; c++) { dweight[c] += dw[c - c0]; dbias[c] += db[c - c0]; }
    }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int N, int C) {
    #pragma omp parallel for
    for (int r0 = 0; r0 < N; r0 += ROW_BLOCK) {
        int n = N - r0 < ROW_BLOCK ? N - r0 : ROW_BLOCK;
        layernorm_backward_input(dinp + (size_t)r0 * C, dout + (size_t)r0 * C, inp + (size_t)r0 * C,
                                 weight, mean + r0, rstd + r0, n, C);
    }
    // weight and bias gradients sum over tokens: columns split over threads (see column_sum_accumulate)
    #pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += COLUMN_BLOCK) {
        layernorm_backward_params(dweight, dbias, dout, inp, mean, rstd, N, C, c0,
                                  c0 + COLUMN_BLOCK < C ? c0 + COLUMN_BLOCK : C);
    }
}

// out (N, OC) = inp (N, C) @ weight^T + bias, weight (OC, C) as PyTorch's Linear
void linear_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int N, int C, int OC) {
    for (int t = 0; t < N; t++) {
        memcpy(out + (size_t)t * OC, bias, (size_t)OC * sizeof(float));
    }
    matmul(out, OC, inp, C, 0, weight, C, 1, N, OC, C, 1.0f, 1.0f);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int N, int C, int OC) {
    matmul(dinp, C, dout, OC, 0, weight, C, 0, N, C, OC, 1.0f, 1.0f);    // dinp (N, C) += dout @ W
    matmul(dweight, C, dout, OC, 1, inp, C, 0, OC, C, N, 1.0f, 1.0f);    // dW (OC, C) += dout^T @ inp
    column_sum_accumulate(dbias, dout, N, OC);
}

// e^x in fp32, written out so that loops calling it vectorize (libm's expf is an opaque
// call, and the softmax and GELU spend most of their time in it). x = n ln2 + r with
// |r| <= ln2/2 (ln2 split in two so that n ln2 is exact), e^r by its Taylor series to r^7
// (the next term is below 6e-9), 2^n written into the exponent bits: about 2 ulp. The
// clamp keeps 2^n a normal float; e^-87 stands in for anything smaller.
static inline float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // rounds x / ln2 to the nearest integer: adding 1.5 * 2^23 drops the fraction bits
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f - n * 1.42860682028622e-06f;
    float p = 1.0f + r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
                  + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// Phi(x) = P(N(0,1) < x) = erfc(-x / sqrt 2) / 2. erfc(z) for z >= 0 by the Chebyshev fit of
// Numerical Recipes (erfcc: t exp(-z^2 + poly(t)), relative error below 1.2e-7), the tail
// computed directly on both sides so that Phi of a negative x keeps its relative accuracy.
#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
static inline float normal_cdf(float x) {
    float z = (x < 0.0f ? -x : x) * INV_SQRT2;
    float t = 1.0f / (1.0f + 0.5f * z);
    float poly = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f
                 + t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f
                 + t * (-0.82215223f + t * 0.17087277f))))))));
    float tail = 0.5f * t * exp_approx(-z * z + poly); // P(N(0,1) > |x|)
    return x >= 0.0f ? 1.0f - tail : tail;
}

// GELU, the exact erf form BERT uses (not the tanh approximation): x Phi(x)
void gelu_forward(float* out, const float* inp, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        out[i] = inp[i] * normal_cdf(inp[i]);
    }
}

// dinout (n): the gradient wrt GELU's output on entry, wrt its input inp on return
void gelu_backward_inplace(float* dinout, const float* inp, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float pdf = INV_SQRT_2PI * exp_approx(-0.5f * x * x);
        dinout[i] *= normal_cdf(x) + x * pdf;
    }
}

// out (n) = a + b
void residual_forward(float* out, const float* a, const float* b, size_t n) {
    for (size_t i = 0; i < n; i++) { out[i] = a[i] + b[i]; }
}

// the keys [*j0, *j1) of the other segment than row i's, for segments [0, split_at) and [split_at, T)
static inline void other_segment(int* j0, int* j1, int i, int split_at, int T) {
    *j0 = i < split_at ? split_at : 0;
    *j1 = i < split_at ? T : split_at;
}

// Bidirectional multi-head attention inside each sequence of a packed batch, one head of
// one sequence per call (forward_pass spreads the (sequence, head) pairs over its threads).
// qkv (T, 3*C): the sequence's rows, q, k, v side by side per token; head h of q is columns
// [h*hs, (h+1)*hs). p (T, T): the head's softmax probabilities; out (T, C): its rows, of
// which the head writes columns [h*hs, (h+1)*hs). Rows [0, split_at) and [split_at, T) are the
// split packing's two segments (model.h): a score across them gets + gate. split_at = T: none.
void attention_head_forward(float* out, float* p, const float* qkv, int T, int h, int C, int NH, int split_at, float gate) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    const float* q = qkv + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    matmul(p, T, q, 3 * C, 0, k, 3 * C, 1, T, T, hs, scale, 0.0f);   // (T, T) = q k^T / sqrt(hs)
    for (int i = 0; i < T; i++) {
        float* row = p + (size_t)i * T;
        if (split_at < T) {
            int j0, j1;
            other_segment(&j0, &j1, i, split_at, T);
            for (int j = j0; j < j1; j++) { row[j] += gate; }
        }
        // subtracting the row maximum keeps exp from overflowing; it cancels out
        float maxv = -INFINITY;
        #pragma omp simd reduction(max:maxv)
        for (int j = 0; j < T; j++) { maxv = row[j] > maxv ? row[j] : maxv; }
        float sum = 0.0f;
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j < T; j++) { row[j] = exp_approx(row[j] - maxv); sum += row[j]; }
        float inv = 1.0f / sum;
        for (int j = 0; j < T; j++) { row[j] *= inv; }
    }
    matmul(out + h * hs, C, p, T, 0, v, 3 * C, 0, T, hs, T, 1.0f, 0.0f);
}

// the backward of attention_head_forward for one head of one sequence: dqkv (T, 3*C), the
// sequence's rows, gets the head's columns of q, k and v WRITTEN (every entry belongs to
// exactly one (sequence, head)); dp (T, T) is scratch; dout (T, C), p (T, T), split_at as in
// forward. Returns the gradient wrt the head's gate: the sum of the scores' gradients across
// the two segments (in double, row by row; 0 when split_at = T).
double attention_head_backward(float* dqkv, float* dp, const float* dout, const float* qkv,
                               const float* p, int T, int h, int C, int NH, int split_at) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    const float* q = qkv + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* dq = dqkv + h * hs;
    float* dk = dq + C;
    float* dv = dq + 2 * C;
    const float* dy = dout + h * hs;
    matmul(dp, T, dy, C, 0, v, 3 * C, 1, T, T, hs, 1.0f, 0.0f);     // dP (T, T) = dy v^T
    matmul(dv, 3 * C, p, T, 1, dy, C, 0, T, hs, T, 1.0f, 0.0f);     // dv (T, hs) = P^T dy
    // softmax backward per row: dS = P * (dP - sum_j P dP)
    for (int i = 0; i < T; i++) {
        const float* prow = p + (size_t)i * T;
        float* drow = dp + (size_t)i * T;
        float dot = 0.0f;
        #pragma omp simd reduction(+:dot)
        for (int j = 0; j < T; j++) { dot += prow[j] * drow[j]; }
        for (int j = 0; j < T; j++) { drow[j] = prow[j] * (drow[j] - dot); }
    }
    double dgate = 0.0;
    for (int i = 0; split_at < T && i < T; i++) {
        int j0, j1;
        other_segment(&j0, &j1, i, split_at, T);
        for (int j = j0; j < j1; j++) { dgate += dp[(size_t)i * T + j]; }
    }
    matmul(dq, 3 * C, dp, T, 0, k, 3 * C, 0, T, hs, T, scale, 0.0f); // dq = dS k / sqrt(hs)
    matmul(dk, 3 * C, dp, T, 1, q, 3 * C, 0, T, hs, T, scale, 0.0f); // dk = dS^T q / sqrt(hs)
    return dgate;
}

// The gradient of a Linear's weight, dweight (OC, C) += dout^T (OC, N) @ inp (N, C), and of its
// bias, dbias (OC) += column sums of dout (N, OC), as WEIGHT_GRAD_BLOCKS independent pieces
// that threads take one at a time. The larger of OC and C is cut, so the operand that every
// piece packs again inside sgemm is the smaller one.
#define WEIGHT_GRAD_BLOCKS 4
typedef struct {
    float* dweight;
    float* dbias;
    const float* dout;
    const float* inp;
    int N, C, OC;
} WeightGrad;

static void weight_grad_block(const WeightGrad* w, int block) {
    int N = w->N, C = w->C, OC = w->OC;
    int cut = OC >= C ? OC : C;
    int step = ((cut + WEIGHT_GRAD_BLOCKS - 1) / WEIGHT_GRAD_BLOCKS + TILE_MULTIPLE - 1) / TILE_MULTIPLE * TILE_MULTIPLE;
    int j0 = block * step < cut ? block * step : cut, j1 = j0 + step < cut ? j0 + step : cut;
    if (j0 < j1) {
        if (OC >= C) {  // rows [j0, j1) of dweight
            matmul(w->dweight + (size_t)j0 * C, C, w->dout + j0, OC, 1, w->inp, C, 0, j1 - j0, C, N, 1.0f, 1.0f);
        } else {        // columns [j0, j1) of dweight
            matmul(w->dweight + j0, C, w->dout, OC, 1, w->inp + j0, C, 0, OC, j1 - j0, N, 1.0f, 1.0f);
        }
    }
    int b0 = (int)((long)OC * block / WEIGHT_GRAD_BLOCKS), b1 = (int)((long)OC * (block + 1) / WEIGHT_GRAD_BLOCKS);
    column_sum_range(w->dbias, w->dout, N, OC, b0, b1);
}

// out (S, C) = inp at the first token ([CLS]) of each sequence
void cls_gather_forward(float* out, const float* inp, const int* seq_starts, int S, int C) {
    for (int s = 0; s < S; s++) {
        memcpy(out + (size_t)s * C, inp + (size_t)seq_starts[s] * C, (size_t)C * sizeof(float));
    }
}

void cls_gather_backward(float* dinp, const float* dout, const int* seq_starts, int S, int C) {
    for (int s = 0; s < S; s++) {
        float* d = dinp + (size_t)seq_starts[s] * C;
        for (int c = 0; c < C; c++) { d[c] += dout[(size_t)s * C + c]; }
    }
}

void tanh_forward(float* out, const float* inp, size_t n) {
    for (size_t i = 0; i < n; i++) { out[i] = tanhf(inp[i]); }
}

// dinout: gradient wrt tanh's output on entry, wrt its input on return; out = tanh(input)
void tanh_backward_inplace(float* dinout, const float* out, size_t n) {
    for (size_t i = 0; i < n; i++) { dinout[i] *= 1.0f - out[i] * out[i]; }
}

// out (S, C) = mean over each sequence's tokens of inp (N, C), as sentence-transformers' mean pooling
void meanpool_forward(float* out, const float* inp, const int* seq_starts, int S, int C) {
    #pragma omp parallel for
    for (int s = 0; s < S; s++) {
        float* o = out + (size_t)s * C;
        for (int c = 0; c < C; c++) { o[c] = 0.0f; }
        for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) {
            for (int c = 0; c < C; c++) { o[c] += inp[(size_t)t * C + c]; }
        }
        float inv = 1.0f / (float)(seq_starts[s + 1] - seq_starts[s]);
        for (int c = 0; c < C; c++) { o[c] *= inv; }
    }
}

void meanpool_backward(float* dinp, const float* dout, const int* seq_starts, int S, int C) {
    #pragma omp parallel for
    for (int s = 0; s < S; s++) {
        float inv = 1.0f / (float)(seq_starts[s + 1] - seq_starts[s]);
        for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) {
            for (int c = 0; c < C; c++) { dinp[(size_t)t * C + c] += dout[(size_t)s * C + c] * inv; }
        }
    }
}

// out (S, 2, C): per sequence, the mean of inp (N, C) over the query's content tokens, then
// over the document's (segment_span, common/segment_cosine.h; whole: the whole segments, for
// the split packing); an empty span gives zeros
void segment_means_forward(float* out, const float* inp, const int* types, const int* seq_starts, int S, int C, int whole) {
    #pragma omp parallel for
    for (int s = 0; s < S; s++) {
        for (int side = 0; side < 2; side++) {
            int first, n = segment_span(&first, types, seq_starts[s], seq_starts[s + 1], side, whole);
            float* o = out + ((size_t)s * 2 + side) * C;
            for (int c = 0; c < C; c++) { o[c] = 0.0f; }
            for (int t = first; t < first + n; t++) {
                for (int c = 0; c < C; c++) { o[c] += inp[(size_t)t * C + c]; }
            }
            if (n > 0) { for (int c = 0; c < C; c++) { o[c] /= (float)n; } }
        }
    }
}

void segment_means_backward(float* dinp, const float* dout, const int* types, const int* seq_starts, int S, int C, int whole) {
    #pragma omp parallel for
    for (int s = 0; s < S; s++) {
        for (int side = 0; side < 2; side++) {
            int first, n = segment_span(&first, types, seq_starts[s], seq_starts[s + 1], side, whole);
            const float* d = dout + ((size_t)s * 2 + side) * C;
            for (int t = first; t < first + n; t++) {
                for (int c = 0; c < C; c++) { dinp[(size_t)t * C + c] += d[c] / (float)n; }
            }
        }
    }
}

// logits (S) = scale * cos(u_s, v_s), u_s and v_s the two rows of segmeans (S, 2, C); 0 where
// either is the zero vector (an empty segment), which has no direction
void cosine_score_forward(float* logits, const float* segmeans, int S, int C, float scale) {
    for (int s = 0; s < S; s++) {
        const float* u = segmeans + (size_t)s * 2 * C;
        double uv, uu, vv;
        cosine_sums(&uv, &uu, &vv, u, u + C, C);
        logits[s] = uu > 0.0 && vv > 0.0 ? (float)(scale * uv / sqrt(uu * vv)) : 0.0f;
    }
}

// dsegmeans (S, 2, C) = (overwritten) the gradient of the loss wrt segmeans given dlogits (S):
// d cos / du = v / (|u||v|) - cos u / |u|^2, and symmetrically for v
void cosine_score_backward(float* dsegmeans, const float* dlogits, const float* segmeans, int S, int C, float scale) {
    for (int s = 0; s < S; s++) {
        const float* u = segmeans + (size_t)s * 2 * C;
        const float* v = u + C;
        float* du = dsegmeans + (size_t)s * 2 * C;
        float* dv = du + C;
        double uv, uu, vv;
        cosine_sums(&uv, &uu, &vv, u, v, C);
        if (!(uu > 0.0 && vv > 0.0)) {
            for (int c = 0; c < 2 * C; c++) { du[c] = 0.0f; }
            continue;
        }
        double inv = 1.0 / sqrt(uu * vv), cosine = uv * inv, g = (double)dlogits[s] * scale;
        for (int c = 0; c < C; c++) {
            du[c] = (float)(g * (v[c] * inv - cosine * u[c] / uu));
            dv[c] = (float)(g * (u[c] * inv - cosine * v[c] / vv));
        }
    }
}

// the cosine of a and b (C floats) given 1/|a| and 1/|b| (0 for a zero vector, whose cosine
// with anything is 0), the dot product summed in double in index order
static double cosine_with_norms(const float* a, const float* b, double inv_a, double inv_b, int C) {
    double ab = 0.0;
    for (int c = 0; c < C; c++) { ab += (double)a[c] * b[c]; }
    return ab * inv_a * inv_b;
}

static double inverse_norm(const float* a, int C) {
    double aa = 0.0;
    for (int c = 0; c < C; c++) { aa += (double)a[c] * a[c]; }
    return aa > 0.0 ? 1.0 / sqrt(aa) : 0.0;
}

// the inverse norms inv (n) of the rows [first, first + n) of inp (N, C)
static void inverse_norms(double* inv, const float* inp, int first, int n, int C) {
    for (int t = 0; t < n; t++) { inv[t] = inverse_norm(inp + (size_t)(first + t) * C, C); }
}

// the document token (an index into [0, nd)) whose cosine with the query token q is the
// largest, the first one on a tie; its cosine in *best
static int maxsim_best(double* best, const float* q, double inv_q, const float* d, const double* inv_d, int nd, int C) {
    int arg = 0;
    *best = -INFINITY;
    for (int j = 0; j < nd; j++) {
        double cs = cosine_with_norms(q, d + (size_t)j * C, inv_q, inv_d[j], C);
        if (cs > *best) { *best = cs; arg = j; }
    }
    return arg;
}

// logits (S) += scale x the mean over the query's content tokens of each one's largest cosine
// with a document content token (segment_span's spans of inp (N, C), the last hidden states):
// ColBERT's MaxSim, over the one joint encoding of the pair. Every query token looks for its
// best match in the document, so a word the two share counts at once, as it does for BM25,
// where the cosine head's means blur it with the rest. 0 where either side is empty.
void maxsim_score_forward(float* logits, const float* inp, const int* types, const int* seq_starts, int S, int C, float scale) {
    #pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < S; s++) {
        int qf, nq = segment_span(&qf, types, seq_starts[s], seq_starts[s + 1], 0, 0);
        int df, nd = segment_span(&df, types, seq_starts[s], seq_starts[s + 1], 1, 0);
        if (nq == 0 || nd == 0) { continue; }
        double* inv_d = (double*)mallocCheck((size_t)nd * sizeof(double));
        inverse_norms(inv_d, inp, df, nd, C);
        double sum = 0.0;
        for (int i = 0; i < nq; i++) {
            const float* q = inp + (size_t)(qf + i) * C;
            double best;
            maxsim_best(&best, q, inverse_norm(q, C), inp + (size_t)df * C, inv_d, nd, C);
            sum += best;
        }
        free(inv_d);
        logits[s] += (float)(scale * sum / nq);
    }
}

// dinp (N, C) += the gradient of the loss wrt inp given dlogits (S): each query token and its
// best document token (found again as in the forward pass) get scale x dlogit / nq times
// d cos(q, d) / dq = d / (|q||d|) - cos q / |q|^2, and symmetrically for d
void maxsim_score_backward(float* dinp, const float* dlogits, const float* inp, const int* types, const int* seq_starts,
                           int S, int C, float scale) {
    #pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < S; s++) {
        int qf, nq = segment_span(&qf, types, seq_starts[s], seq_starts[s + 1], 0, 0);
        int df, nd = segment_span(&df, types, seq_starts[s], seq_starts[s + 1], 1, 0);
        if (nq == 0 || nd == 0) { continue; }
        double* inv_d = (double*)mallocCheck((size_t)nd * sizeof(double));
        inverse_norms(inv_d, inp, df, nd, C);
        double g = (double)dlogits[s] * scale / nq;
        for (int i = 0; i < nq; i++) {
            const float* q = inp + (size_t)(qf + i) * C;
            double inv_q = inverse_norm(q, C), cs;
            int j = maxsim_best(&cs, q, inv_q, inp + (size_t)df * C, inv_d, nd, C);
            if (inv_q == 0.0 || inv_d[j] == 0.0) { continue; }  // a zero vector: the cosine is 0 around it
            const float* d = inp + (size_t)(df + j) * C;
            float* dq = dinp + (size_t)(qf + i) * C;
            float* dd = dinp + (size_t)(df + j) * C;
            for (int c = 0; c < C; c++) {
                dq[c] += (float)(g * (d[c] * inv_q * inv_d[j] - cs * q[c] * inv_q * inv_q));
                dd[c] += (float)(g * (q[c] * inv_q * inv_d[j] - cs * d[c] * inv_d[j] * inv_d[j]));
            }
        }
        free(inv_d);
    }
}

const char* score_head_name(ScoreHead head) {
    return head == SCORE_HEAD_COSINE_MAXSIM ? "cosine+maxsim" : head == SCORE_HEAD_MAXSIM ? "maxsim"
           : head == SCORE_HEAD_COSINE ? "cosine" : "cls";
}

int score_head_has_cosine(ScoreHead head) {
    return head == SCORE_HEAD_COSINE || head == SCORE_HEAD_COSINE_MAXSIM;
}

int score_head_has_maxsim(ScoreHead head) {
    return head == SCORE_HEAD_MAXSIM || head == SCORE_HEAD_COSINE_MAXSIM;
}

const char* packing_name(Packing packing) {
    return packing == PACKING_SPLIT ? "split" : "joint";
}

// ----------------------------------------------------------------------------
// the model

const char* device_select(Device* device, const char* name) {
    int want_cuda = strcmp(name, "cuda") == 0;
    if (strcmp(name, "cpu") == 0) {
        *device = DEVICE_CPU;
        return NULL;
    }
    if (!want_cuda && strcmp(name, "auto") != 0) { return "unknown device (auto, cpu or cuda)"; }
#ifdef USE_CUDA
    if (bert_cuda_device_count() > 0) {
        *device = DEVICE_CUDA;
        return NULL;
    }
    if (want_cuda) { return "no CUDA device is visible"; }
#else
    if (want_cuda) {
        return "this build has no CUDA backend (make builds it where nvcc and the CUDA libraries are found, "
               "without NO_CUDA=1)";
    }
#endif
    *device = DEVICE_CPU;
    return NULL;
}

const char* device_describe(Device device) {
#ifdef USE_CUDA
    if (device == DEVICE_CUDA) {
        static char description[300];
        char name[256];
        bert_cuda_device_name(name, sizeof(name));
        snprintf(description, sizeof(description), "cuda (%s)", name);
        return description;
    }
#endif
    return device == DEVICE_CUDA ? "cuda" : "cpu";
}

const char* precision_select(Precision* precision, const char* name, Device device) {
    if (strcmp(name, "fp32") == 0) {
        *precision = PRECISION_FP32;
    } else if (strcmp(name, "bf16") == 0) {
        if (device != DEVICE_CUDA) { return "bf16 runs on the GPU backend only, and the device is the CPU (--device cuda)"; }
        *precision = PRECISION_BF16;
    } else {
        return "unknown precision (fp32 or bf16)";
    }
    return NULL;
}

const char* precision_name(Precision precision) {
    return precision == PRECISION_BF16 ? "bf16" : "fp32";
}

int zelo_fit_ratings_gpu(double* ratings, ZeloFitStatus* status, ZeloPairError* err, const ZeloPairs* pairs,
                         const ZeloFitConfig* cfg) {
#ifdef USE_CUDA
    return zelo_fit_ratings_cuda(ratings, status, err, pairs, cfg);
#else
    (void)ratings; (void)status; (void)err; (void)pairs; (void)cfg;
    die("zelo_fit_ratings_gpu: this build has no CUDA backend");
#endif
}

void bert_to_device(BertModel* model, Device device, Precision precision) {
    if (device == DEVICE_CPU) {
        if (precision != PRECISION_FP32) { die("bert_to_device: the CPU computes in fp32 only"); }
        return;
    }
#ifdef USE_CUDA
    if (model->cuda != NULL) { die("bert_to_device: the model is on the device already"); }
    model->cuda = (struct BertModelCuda*)mallocCheck(sizeof(BertModelCuda));
    bert_cuda_build(model->cuda, &model->config, model->packing, precision);
    model->cuda->score_head = model->score_head;
    model->cuda->cosine_scale = model->cosine_scale;
    bert_cuda_upload_parameters(model->cuda, model->params_memory);
    if (model->m_memory != NULL) { bert_cuda_upload_optimizer(model->cuda, model->m_memory, model->v_memory); }
#else
    (void)model;
    (void)precision;
    die("bert_to_device: this build has no CUDA backend");
#endif
}

void bert_set_cosine_scale(BertModel* model, float scale) {
    if (!(scale > 0.0f) || !isfinite(scale)) { die("bert_set_cosine_scale: the scale is %g; it must be finite and > 0", (double)scale); }
    model->cosine_scale = scale;
#ifdef USE_CUDA
    if (model->cuda != NULL) { model->cuda->cosine_scale = scale; }
#endif
}

#ifdef USE_CUDA
// the last device forward pass's outputs, where callers of the CPU backend find them
static void take_device_outputs(BertModel* model) {
    model->logits = model->cuda->logits;
    model->embeddings = model->cuda->embeddings;
    model->num_tokens = model->cuda->num_tokens;
    model->num_seqs = model->cuda->num_seqs;
}
#endif

void bert_build(BertModel* model, const BertConfig* config) {
#ifdef USE_BLAS
    openblas_set_num_threads(1); // model.c threads the products itself, see matmul()
#endif
    memset(model, 0, sizeof(*model));
    model->config = *config;
    model->head_lr_scale = 1.0f;
    model->gate_lr_scale = 1.0f;
    model->cosine_scale = SCORE_HEAD_COSINE_SCALE;
    fill_in_parameter_sizes(model->param_sizes, config);
    model->num_parameters = sum_sizes(model->param_sizes, NUM_PARAMETER_TENSORS);
    model->params_memory = malloc_and_point_parameters(&model->params, model->param_sizes);
}

size_t split_gate_count(const BertConfig* config) {
    return (size_t)config->num_layers * config->num_heads;
}

void bert_split_segments(BertModel* model, float gate_init) {
    if (model->cuda != NULL || model->grads_memory != NULL || model->m_memory != NULL) {
        die("bert_split_segments: call it on a model just built or loaded, before training or bert_to_device");
    }
    if (model->packing == PACKING_SPLIT) { die("bert_split_segments: the model is split already"); }
    if (model->score_head == SCORE_HEAD_CLS) {
        die("the split packing is not read by the cls score head (a classifier trained on the joint sequence)");
    }
    if (!isfinite(gate_init)) { die("bert_split_segments: the gates' start %g is not finite", (double)gate_init); }
    size_t n = split_gate_count(&model->config);
    // the gates are the last tensor: the flat buffer grows at its end and the rest stays put
    model->params_memory = (float*)reallocCheck(model->params_memory, (model->num_parameters + n) * sizeof(float));
    model->param_sizes[XGATE_TENSOR] = n;
    model->num_parameters += n;
    point_tensors((float**)&model->params, model->params_memory, model->param_sizes, NUM_PARAMETER_TENSORS);
    for (size_t i = 0; i < n; i++) { model->params.xgate[i] = gate_init; }
    model->packing = PACKING_SPLIT;
}

// splitmix64: a tiny, well-mixed generator, so that a seed gives the same weights everywhere
static uint64_t rng_next(uint64_t* state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// uniform in (0, 1]: never 0, so that logf below stays finite
static double rng_uniform(uint64_t* state) {
    return ((rng_next(state) >> 11) + 1) * (1.0 / 9007199254740992.0);
}

// standard normal by Box-Muller (one of the pair is used: simpler, and init is not hot)
static double rng_normal(uint64_t* state) {
    double u1 = rng_uniform(state), u2 = rng_uniform(state);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void bert_init_random(BertModel* model, uint64_t seed) {
    uint64_t state = seed;
    float** tensors = (float**)&model->params;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        size_t n = model->param_sizes[i];
        int is_ln_weight = i == 3 || i == 9 || i == 15; // emb_lnw, ln1w, ln2w
        for (size_t j = 0; j < n; j++) {
            if (parameter_tensor_decays(i)) {
                tensors[i][j] = (float)(0.02 * rng_normal(&state));
            } else {
                tensors[i][j] = is_ln_weight ? 1.0f : 0.0f;
            }
        }
    }
}

// checks a packed batch against the config; dies naming the sequence and token at fault
void validate_batch(const BertConfig* cfg, const int* ids, const int* types,
                    const int* seq_starts, int S) {
    if (S <= 0) { die("bert_forward: a batch needs at least one sequence (got %d)", S); }
    if (seq_starts[0] != 0) { die("bert_forward: seq_starts[0] must be 0 (got %d)", seq_starts[0]); }
    for (int s = 0; s < S; s++) {
        int T = seq_starts[s + 1] - seq_starts[s];
        if (T <= 0) { die("bert_forward: sequence %d is empty or seq_starts decreases (length %d)", s, T); }
        if (T > cfg->max_position) {
            die("bert_forward: sequence %d has %d tokens, more than max_position %d", s, T, cfg->max_position);
        }
        for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) {
            if (ids[t] < 0 || ids[t] >= cfg->vocab_size) {
                die("bert_forward: token %d (sequence %d) has id %d outside [0, %d)", t, s, ids[t], cfg->vocab_size);
            }
            if (types != NULL && (types[t] < 0 || types[t] >= cfg->type_vocab_size)) {
                die("bert_forward: token %d (sequence %d) has type %d outside [0, %d)", t, s, types[t], cfg->type_vocab_size);
            }
        }
    }
}

// sizes of the activation tensors for N tokens, S sequences, A attention floats per layer,
// with Ls layers stored (L for training, 1 when all layers share one slot)
void fill_in_activation_sizes(size_t* sizes, const BertConfig* cfg, size_t N, size_t S,
                              size_t A, size_t Ls) {
    size_t C = cfg->hidden_size, I = cfg->intermediate_size;
    size_t act_sizes[NUM_ACTIVATION_TENSORS] = {
        N * C, N * C, N, N,                  // emb, emb_ln, emb_mean, emb_rstd
        Ls * N * 3 * C, Ls * A,              // qkv, att
        Ls * N * C, Ls * N * C, Ls * N * C,  // atty, res1, ln1
        Ls * N, Ls * N,                      // ln1_mean, ln1_rstd
        Ls * N * I, Ls * N * I,              // fch, fch_gelu
        Ls * N * C, Ls * N * C, Ls * N, Ls * N, // res2, ln2, ln2_mean, ln2_rstd
        S * C, S * C, S * (size_t)cfg->num_labels, S * C, // cls, pooled, logits, embeddings
        S * 2 * C,                           // segmeans
    };
    memcpy(sizes, act_sizes, sizeof(act_sizes));
}

int packing_layout(int* split_at, int* piece_starts, int* embed_types, const int* types, const int* seq_starts, int S,
                   Packing packing) {
    int split = packing == PACKING_SPLIT, N = seq_starts[S];
    for (int s = 0; s < S; s++) {
        int start = seq_starts[s], end = seq_starts[s + 1], b = start;
        while (split && b < end && (types == NULL || types[b] == 0)) { b++; }
        split_at[s] = split ? b - start : end - start;
        if (split) {
            piece_starts[2 * s] = start;
            piece_starts[2 * s + 1] = b;
        } else {
            piece_starts[s] = start;
        }
    }
    piece_starts[split ? 2 * S : S] = N;
    for (int t = 0; t < N; t++) { embed_types[t] = split || types == NULL ? 0 : types[t]; }
    return split ? 2 * S : S;
}

// the batch's layout under the model's packing (packing_layout), and room for the backward's
// per-(sequence, head) sums of the gates' gradient
static void split_layout(BertModel* model, int S, int N) {
    int NH = model->config.num_heads;
    model->split_at = (int*)reallocCheck(model->split_at, (size_t)(S > 0 ? S : 1) * sizeof(int));
    model->piece_starts = (int*)reallocCheck(model->piece_starts, (size_t)(2 * S + 1) * sizeof(int));
    model->embed_types = (int*)reallocCheck(model->embed_types, (size_t)(N > 0 ? N : 1) * sizeof(int));
    model->gate_partial = (double*)reallocCheck(model->gate_partial, (size_t)(S > 0 ? S : 1) * NH * sizeof(double));
    model->num_pieces = packing_layout(model->split_at, model->piece_starts, model->embed_types, model->types,
                                       model->seq_starts, S, model->packing);
}

static void forward_pass(BertModel* model, const int* ids, const int* types, const int* seq_starts,
                         int S, int keep_all_layers) {
    const BertConfig* cfg = &model->config;
    validate_batch(cfg, ids, types, seq_starts, S);
    int N = seq_starts[S];
    int C = cfg->hidden_size, NH = cfg->num_heads, I = cfg->intermediate_size, L = cfg->num_layers;

    // remember the batch: backward needs the offsets, ids and types
    model->seq_starts = (int*)reallocCheck(model->seq_starts, (size_t)(S + 1) * sizeof(int));
    model->att_offsets = (int*)reallocCheck(model->att_offsets, (size_t)(S + 1) * sizeof(int));
    model->inputs = (int*)reallocCheck(model->inputs, (size_t)N * sizeof(int));
    model->types = (int*)reallocCheck(model->types, (size_t)N * sizeof(int));
    memcpy(model->seq_starts, seq_starts, (size_t)(S + 1) * sizeof(int));
    memcpy(model->inputs, ids, (size_t)N * sizeof(int));
    if (types != NULL) { memcpy(model->types, types, (size_t)N * sizeof(int)); }
    else { memset(model->types, 0, (size_t)N * sizeof(int)); }
    size_t A = 0;
    for (int s = 0; s < S; s++) {
        size_t T = (size_t)(seq_starts[s + 1] - seq_starts[s]);
        model->att_offsets[s] = (int)A;
        A += (size_t)NH * T * T;
        if (A > INT32_MAX) { die("bert_forward: batch too large (attention needs %zu floats per layer)", A); }
    }
    model->att_offsets[S] = (int)A;
    model->att_size = (int)A;
    split_layout(model, S, N);
    model->num_tokens = N;
    model->num_seqs = S;

    // room for the activations, grown when this batch needs more than any before
    size_t Ls = keep_all_layers ? (size_t)L : 1;
    size_t sizes[NUM_ACTIVATION_TENSORS];
    fill_in_activation_sizes(sizes, cfg, N, S, A, Ls);
    size_t total = sum_sizes(sizes, NUM_ACTIVATION_TENSORS);
    if (total > model->acts_capacity) {
        free(model->acts_memory);
        model->acts_memory = (float*)mallocCheck(total * sizeof(float));
        model->acts_capacity = total;
    }
    point_tensors((float**)&model->acts, model->acts_memory, sizes, NUM_ACTIVATION_TENSORS);

    ParameterTensors p = model->params;
    ActivationTensors a = model->acts;
    embeddings_forward(a.emb, model->inputs, model->embed_types, model->piece_starts, model->num_pieces, p.wte, p.wpe,
                       p.wtt, C);
    const int* att_offsets = model->att_offsets;
    float eps = cfg->layer_norm_eps;
    // One parallel region for all layers. Work is handed out in blocks of ROW_BLOCK tokens
    // (every layer but the attention is row-wise) and, for the attention, in (sequence,
    // head) pairs, each taken by whichever thread is free (dynamic): no product is split
    // between threads and a thread delayed by other work on the machine only delays its
    // block, not every product. Each block runs the whole row-wise chain from the attention
    // dense layer to the next layer's qkv product while its rows are in cache, and threads
    // meet twice per layer. Single-threaded sgemm runs at full speed on blocks of 64 rows or more.
    #pragma omp parallel
    {
        #pragma omp for schedule(dynamic, 1)
        for (int r0 = 0; r0 < N; r0 += ROW_BLOCK) {
            int n = N - r0 < ROW_BLOCK ? N - r0 : ROW_BLOCK;
            layernorm_forward(a.emb_ln + (size_t)r0 * C, a.emb_mean + r0, a.emb_rstd + r0,
                              a.emb + (size_t)r0 * C, p.emb_lnw, p.emb_lnb, n, C, eps);
            if (L > 0) {
                linear_forward(a.qkv + (size_t)r0 * 3 * C, a.emb_ln + (size_t)r0 * C, p.qkvw, p.qkvb, n, C, 3 * C);
            }
        }
        for (int l = 0; l < L; l++) {
            // slot of this layer's activations; when only one slot exists, the layer input
            // (ln2 of the previous layer) is read, row by row, by res1 before the same rows
            // of ln2 are overwritten, and qkv is overwritten by the next layer's only after
            // the attention has read all of it
            size_t k = keep_all_layers ? (size_t)l : 0;
            const float* x = l == 0 ? a.emb_ln : a.ln2 + (keep_all_layers ? (size_t)(l - 1) : 0) * N * C;
            float* qkv = a.qkv + k * N * 3 * C;
            float* att = a.att + k * A;
            float* atty = a.atty + k * N * C;
            float* res1 = a.res1 + k * N * C;
            float* ln1 = a.ln1 + k * N * C;
            float* ln1_mean = a.ln1_mean + k * N;
            float* ln1_rstd = a.ln1_rstd + k * N;
            float* fch = a.fch + k * N * I;
            float* fch_gelu = a.fch_gelu + k * N * I;
            float* res2 = a.res2 + k * N * C;
            float* ln2 = a.ln2 + k * N * C;
            float* ln2_mean = a.ln2_mean + k * N;
            float* ln2_rstd = a.ln2_rstd + k * N;
            float* next_qkv = a.qkv + (keep_all_layers ? (size_t)l + 1 : 0) * N * 3 * C;

            #pragma omp for collapse(2) schedule(dynamic, 1)
            for (int s = 0; s < S; s++) {
                for (int h = 0; h < NH; h++) {
                    int start = model->seq_starts[s], T = model->seq_starts[s + 1] - start;
                    float gate = model->packing == PACKING_SPLIT ? p.xgate[(size_t)l * NH + h] : 0.0f;
                    attention_head_forward(atty + (size_t)start * C, att + att_offsets[s] + (size_t)h * T * T,
                                           qkv + (size_t)start * 3 * C, T, h, C, NH, model->split_at[s], gate);
                }
            }
            #pragma omp for schedule(dynamic, 1)
            for (int r0 = 0; r0 < N; r0 += ROW_BLOCK) {
                int n = N - r0 < ROW_BLOCK ? N - r0 : ROW_BLOCK;
                size_t rc = (size_t)r0 * C, ri = (size_t)r0 * I;
                // res1 first gets the dense output, then the residual is added in place
                linear_forward(res1 + rc, atty + rc, p.attprojw + (size_t)l * C * C, p.attprojb + (size_t)l * C, n, C, C);
                residual_forward(res1 + rc, res1 + rc, x + rc, (size_t)n * C);
                layernorm_forward(ln1 + rc, ln1_mean + r0, ln1_rstd + r0, res1 + rc,
                                  p.ln1w + (size_t)l * C, p.ln1b + (size_t)l * C, n, C, eps);
                linear_forward(fch + ri, ln1 + rc, p.fcw + (size_t)l * I * C, p.fcb + (size_t)l * I, n, C, I);
                gelu_forward(fch_gelu + ri, fch + ri, (size_t)n * I);
                linear_forward(res2 + rc, fch_gelu + ri, p.fcprojw + (size_t)l * C * I, p.fcprojb + (size_t)l * C, n, I, C);
                residual_forward(res2 + rc, res2 + rc, ln1 + rc, (size_t)n * C);
                layernorm_forward(ln2 + rc, ln2_mean + r0, ln2_rstd + r0, res2 + rc,
                                  p.ln2w + (size_t)l * C, p.ln2b + (size_t)l * C, n, C, eps);
                if (l + 1 < L) {
                    linear_forward(next_qkv + (size_t)r0 * 3 * C, ln2 + rc, p.qkvw + (size_t)(l + 1) * 3 * C * C,
                                   p.qkvb + (size_t)(l + 1) * 3 * C, n, C, 3 * C);
                }
            }
        }
    }
    const float* x = L == 0 ? a.emb_ln : a.ln2 + (keep_all_layers ? (size_t)(L - 1) : 0) * N * C;

    // the two heads: the cross-encoder score and the mean-pooled sentence embedding
    if (model->score_head != SCORE_HEAD_CLS) {
        if (cfg->num_labels != 1) {
            die("the %s score head makes one logit; the model has %d labels", score_head_name(model->score_head), cfg->num_labels);
        }
        // the cosine term writes the logits, the maxsim term adds to them
        if (score_head_has_cosine(model->score_head)) {
            segment_means_forward(a.segmeans, x, model->types, model->seq_starts, S, C, model->packing == PACKING_SPLIT);
            cosine_score_forward(a.logits, a.segmeans, S, C, model->cosine_scale);
        } else {
            memset(a.logits, 0, (size_t)S * sizeof(float));
        }
        if (score_head_has_maxsim(model->score_head)) {
            maxsim_score_forward(a.logits, x, model->types, model->seq_starts, S, C, model->cosine_scale);
        }
    } else {
        cls_gather_forward(a.cls, x, model->seq_starts, S, C);
        linear_forward(a.pooled, a.cls, p.poolw, p.poolb, S, C, C);
        tanh_forward(a.pooled, a.pooled, (size_t)S * C);
        linear_forward(a.logits, a.pooled, p.clsw, p.clsb, S, C, cfg->num_labels);
    }
    meanpool_forward(a.embeddings, x, model->seq_starts, S, C);
    model->logits = a.logits;
    model->embeddings = a.embeddings;
    model->backward_ready = keep_all_layers;
}

// Each bert_* call below dispatches once, on entry, on model->cuda (set by bert_to_device; it
// does not exist in a build without USE_CUDA): the device runs the whole call, or the CPU does.
#ifdef USE_CUDA
#define ON_DEVICE(model) ((model)->cuda != NULL)
#endif

void bert_forward(BertModel* model, const int* ids, const int* types, const int* seq_starts, int num_seqs) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        bert_cuda_forward(model->cuda, ids, types, seq_starts, num_seqs);
        take_device_outputs(model);
        return;
    }
#endif
    forward_pass(model, ids, types, seq_starts, num_seqs, 1);
}

void bert_infer(BertModel* model, const int* ids, const int* types, const int* seq_starts, int num_seqs) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {  // the device keeps a training step's activations (model_cuda.h)
        bert_cuda_forward(model->cuda, ids, types, seq_starts, num_seqs);
        take_device_outputs(model);
        return;
    }
#endif
    forward_pass(model, ids, types, seq_starts, num_seqs, 0);
}

void bert_zero_grad(BertModel* model) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        bert_cuda_zero_grad(model->cuda);
        return;
    }
#endif
    if (model->grads_memory != NULL) {
        memset(model->grads_memory, 0, model->num_parameters * sizeof(float));
    }
}

void bert_backward(BertModel* model, const float* dlogits, const float* dembeddings) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        bert_cuda_backward(model->cuda, dlogits, dembeddings);
        return;
    }
#endif
    if (!model->backward_ready) {
        die("bert_backward: needs the activations of a bert_forward call (none, or bert_infer ran last)");
    }
    if (model->grads_memory == NULL) {
        model->grads_memory = malloc_and_point_parameters(&model->grads, model->param_sizes);
    }
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, A = model->att_size;
    int C = cfg->hidden_size, NH = cfg->num_heads, I = cfg->intermediate_size, L = cfg->num_layers;
    int NL = cfg->num_labels;
    const int* seq_starts = model->seq_starts;

    // scratch: gradients of one layer's activations, reused by every layer
    enum { DH, DX, DRES2, DLN1, DRES1, DATTY, DFFN, DQKV, DATT, DHEADS, NUM_SCRATCH };
    size_t scratch_sizes[NUM_SCRATCH] = {
        (size_t)N * C,     // dh: gradient wrt the current layer's output (d ln2)
        (size_t)N * C,     // dx: gradient wrt the current layer's input
        (size_t)N * C,     // dres2
        (size_t)N * C,     // dln1
        (size_t)N * C,     // dres1
        (size_t)N * C,     // datty
        (size_t)N * I,     // dffn: gradient wrt fch
        (size_t)N * 3 * C, // dqkv
        (size_t)A,         // datt
        (size_t)S * C * 2, // dcls and dpooled, or the cosine head's dsegmeans
    };
    size_t total = sum_sizes(scratch_sizes, NUM_SCRATCH);
    if (total > model->scratch_capacity) {
        free(model->scratch_memory);
        model->scratch_memory = (float*)mallocCheck(total * sizeof(float));
        model->scratch_capacity = total;
    }
    float* buffers[NUM_SCRATCH];
    point_tensors(buffers, model->scratch_memory, scratch_sizes, NUM_SCRATCH);
    float *dh = buffers[DH], *dres2 = buffers[DRES2], *dln1 = buffers[DLN1];
    float *dres1 = buffers[DRES1], *datty = buffers[DATTY], *dffn = buffers[DFFN], *dqkv = buffers[DQKV];
    float *datt = buffers[DATT], *dcls = buffers[DHEADS], *dpooled = buffers[DHEADS] + (size_t)S * C;

    ParameterTensors p = model->params, g = model->grads;
    ActivationTensors a = model->acts;

    memset(dh, 0, (size_t)N * C * sizeof(float));
    if (dlogits != NULL && model->score_head != SCORE_HEAD_CLS) {
        if (score_head_has_cosine(model->score_head)) {
            cosine_score_backward(dcls, dlogits, a.segmeans, S, C, model->cosine_scale);
            segment_means_backward(dh, dcls, model->types, seq_starts, S, C, model->packing == PACKING_SPLIT);
        }
        if (score_head_has_maxsim(model->score_head)) {
            maxsim_score_backward(dh, dlogits, L == 0 ? a.emb_ln : a.ln2 + (size_t)(L - 1) * N * C, model->types, seq_starts,
                                  S, C, model->cosine_scale);
        }
    } else if (dlogits != NULL) {
        memset(dpooled, 0, (size_t)S * C * sizeof(float));
        linear_backward(dpooled, g.clsw, g.clsb, dlogits, a.pooled, p.clsw, S, C, NL);
        tanh_backward_inplace(dpooled, a.pooled, (size_t)S * C);
        memset(dcls, 0, (size_t)S * C * sizeof(float));
        linear_backward(dcls, g.poolw, g.poolb, dpooled, a.cls, p.poolw, S, C, C);
        cls_gather_backward(dh, dcls, seq_starts, S, C);
    }
    if (dembeddings != NULL) {
        meanpool_backward(dh, dembeddings, seq_starts, S, C);
    }

    // As in forward_pass, one parallel region, and work handed out piece by piece to
    // whichever thread is free. Per layer: (1) the input gradients of the row-wise chain,
    // LayerNorm 2 back to the attention output, in blocks of rows; (2) every piece that
    // needs all rows of (1) and nothing else: the weight gradients of the three dense layers
    // and of both LayerNorms, and the attention backward of each (sequence, head); (3) the
    // qkv layer's input gradient (row blocks) and weight gradient. No product is split
    // between threads and no thread waits for another between phases only.
    int num_row_blocks = (N + ROW_BLOCK - 1) / ROW_BLOCK;
    #pragma omp parallel
    for (int l = L - 1; l >= 0; l--) {
        // the gradient wrt a layer's input is the next (lower) layer's dh: the two buffers
        // trade places every layer
        float* dh = buffers[(L - 1 - l) % 2 == 0 ? DH : DX];
        float* dx = buffers[(L - 1 - l) % 2 == 0 ? DX : DH];
        const float* x = l == 0 ? a.emb_ln : a.ln2 + (size_t)(l - 1) * N * C;
        const float* qkv = a.qkv + (size_t)l * N * 3 * C;
        const float* att = a.att + (size_t)l * A;
        const float* atty = a.atty + (size_t)l * N * C;
        const float* res1 = a.res1 + (size_t)l * N * C;
        const float* ln1 = a.ln1 + (size_t)l * N * C;
        const float* fch = a.fch + (size_t)l * N * I;
        const float* fch_gelu = a.fch_gelu + (size_t)l * N * I;
        const float* res2 = a.res2 + (size_t)l * N * C;
        const float *ln1_mean = a.ln1_mean + (size_t)l * N, *ln1_rstd = a.ln1_rstd + (size_t)l * N;
        const float *ln2_mean = a.ln2_mean + (size_t)l * N, *ln2_rstd = a.ln2_rstd + (size_t)l * N;

        #pragma omp for schedule(dynamic, 1)
        for (int r0 = 0; r0 < N; r0 += ROW_BLOCK) {
            int n = N - r0 < ROW_BLOCK ? N - r0 : ROW_BLOCK;
            size_t rc = (size_t)r0 * C, ri = (size_t)r0 * I;
            // dh = d ln2  ->  dres2
            memset(dres2 + rc, 0, (size_t)n * C * sizeof(float));
            layernorm_backward_input(dres2 + rc, dh + rc, res2 + rc, p.ln2w + (size_t)l * C,
                                     ln2_mean + r0, ln2_rstd + r0, n, C);
            // res2 = ln1 + fcproj(gelu(fc(ln1))): d ln1 gets the residual, then the FFN path
            memcpy(dln1 + rc, dres2 + rc, (size_t)n * C * sizeof(float));
            matmul(dffn + ri, I, dres2 + rc, C, 0, p.fcprojw + (size_t)l * C * I, I, 0, n, I, C, 1.0f, 0.0f);
            gelu_backward_inplace(dffn + ri, fch + ri, (size_t)n * I);
            matmul(dln1 + rc, C, dffn + ri, I, 0, p.fcw + (size_t)l * I * C, C, 0, n, C, I, 1.0f, 1.0f);
            // d ln1  ->  dres1
            memset(dres1 + rc, 0, (size_t)n * C * sizeof(float));
            layernorm_backward_input(dres1 + rc, dln1 + rc, res1 + rc, p.ln1w + (size_t)l * C,
                                     ln1_mean + r0, ln1_rstd + r0, n, C);
            // res1 = x + attproj(attention(qkv(x))): dx gets the residual, then the attention path
            memcpy(dx + rc, dres1 + rc, (size_t)n * C * sizeof(float));
            matmul(datty + rc, C, dres1 + rc, C, 0, p.attprojw + (size_t)l * C * C, C, 0, n, C, C, 1.0f, 0.0f);
        }

        WeightGrad dense[3] = {  // the two big ones first: the small pieces fill in at the end
            {g.fcw + (size_t)l * I * C, g.fcb + (size_t)l * I, dffn, ln1, N, C, I},
            {g.fcprojw + (size_t)l * C * I, g.fcprojb + (size_t)l * C, dres2, fch_gelu, N, I, C},
            {g.attprojw + (size_t)l * C * C, g.attprojb + (size_t)l * C, dres1, atty, N, C, C},
        };
        int num_dense = 3 * WEIGHT_GRAD_BLOCKS, num_heads = S * NH;
        #pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < num_dense + num_heads + 2; task++) {
            if (task < num_dense) {
                weight_grad_block(&dense[task / WEIGHT_GRAD_BLOCKS], task % WEIGHT_GRAD_BLOCKS);
            } else if (task < num_dense + num_heads) {
                int s = (task - num_dense) / NH, h = (task - num_dense) % NH;
                int start = seq_starts[s], T = seq_starts[s + 1] - start;
                size_t head = (size_t)model->att_offsets[s] + (size_t)h * T * T;
                model->gate_partial[task - num_dense] =
                    attention_head_backward(dqkv + (size_t)start * 3 * C, datt + head, datty + (size_t)start * C,
                                            qkv + (size_t)start * 3 * C, att + head, T, h, C, NH, model->split_at[s]);
            } else if (task == num_dense + num_heads) {
                layernorm_backward_params(g.ln2w + (size_t)l * C, g.ln2b + (size_t)l * C, dh, res2,
                                          ln2_mean, ln2_rstd, N, C, 0, C);
            } else {
                layernorm_backward_params(g.ln1w + (size_t)l * C, g.ln1b + (size_t)l * C, dln1, res1,
                                          ln1_mean, ln1_rstd, N, C, 0, C);
            }
        }

        if (model->packing == PACKING_SPLIT) {  // summed in sequence order, whichever thread took which
            #pragma omp single
            for (int h = 0; h < NH; h++) {
                double sum = 0.0;
                for (int s = 0; s < S; s++) { sum += model->gate_partial[(size_t)s * NH + h]; }
                g.xgate[(size_t)l * NH + h] += (float)sum;
            }
        }
        WeightGrad dqkvw = {g.qkvw + (size_t)l * 3 * C * C, g.qkvb + (size_t)l * 3 * C, dqkv, x, N, C, 3 * C};
        #pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < WEIGHT_GRAD_BLOCKS + num_row_blocks; task++) {
            if (task < WEIGHT_GRAD_BLOCKS) {
                weight_grad_block(&dqkvw, task);
            } else {
                int r0 = (task - WEIGHT_GRAD_BLOCKS) * ROW_BLOCK, n = N - r0 < ROW_BLOCK ? N - r0 : ROW_BLOCK;
                matmul(dx + (size_t)r0 * C, C, dqkv + (size_t)r0 * 3 * C, 3 * C, 0, p.qkvw + (size_t)l * 3 * C * C,
                       C, 0, n, C, 3 * C, 1.0f, 1.0f);
            }
        }
    }
    // the gradient wrt the input of layer 0, where the last layer's dx was
    if (L % 2 == 1) { dh = buffers[DX]; }
    float* da = dres2;
    memset(da, 0, (size_t)N * C * sizeof(float));
    layernorm_backward(da, g.emb_lnw, g.emb_lnb, dh, a.emb, p.emb_lnw, a.emb_mean, a.emb_rstd, N, C);
    embeddings_backward(g.wte, g.wpe, g.wtt, da, model->inputs, model->embed_types, model->piece_starts,
                        model->num_pieces, C);
}

// squared L2 norm of x (n) in double, summed in fixed chunks and then in order, so the
// result does not depend on the number of threads
#define NORM_CHUNK 65536
static double sum_of_squares(const float* x, size_t n) {
    size_t num_chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double* partial = (double*)mallocCheck(num_chunks * sizeof(double));
    #pragma omp parallel for
    for (size_t ch = 0; ch < num_chunks; ch++) {
        size_t end = (ch + 1) * NORM_CHUNK < n ? (ch + 1) * NORM_CHUNK : n;
        double sum = 0.0;
        for (size_t i = ch * NORM_CHUNK; i < end; i++) { sum += (double)x[i] * x[i]; }
        partial[ch] = sum;
    }
    double total = 0.0;
    for (size_t ch = 0; ch < num_chunks; ch++) { total += partial[ch]; }
    free(partial);
    return total;
}

float* bert_grad_buffer(BertModel* model, void** device_stream) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        if (model->cuda->grads_memory == NULL) { die("bert_grad_buffer: no gradients (call bert_backward first)"); }
        *device_stream = model->cuda->stream;
        return model->cuda->grads_memory;
    }
#endif
    if (model->grads_memory == NULL) { die("bert_grad_buffer: no gradients (call bert_backward first)"); }
    *device_stream = NULL;
    return model->grads_memory;
}

int bert_device_memory(const BertModel* model, DeviceMemory* memory) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        *memory = bert_cuda_memory(model->cuda);
        return 1;
    }
#else
    (void)model;
    (void)memory;
#endif
    return 0;
}

size_t device_memory_total(const DeviceMemory* m) {
    return m->parameters + m->gradients + m->optimizer + m->activations + m->scratch + m->batch;
}

void device_memory_describe(char* out, size_t n, const DeviceMemory* m) {
    const double MiB = 1024.0 * 1024.0;
    snprintf(out, n, "%.1f MiB (parameters %.1f, gradients %.1f, AdamW %.1f, activations %.1f, scratch %.1f, batch %.1f)",
             device_memory_total(m) / MiB, m->parameters / MiB, m->gradients / MiB, m->optimizer / MiB, m->activations / MiB,
             m->scratch / MiB, m->batch / MiB);
}

float bert_clip_grad_norm(BertModel* model, float max_norm) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) { return bert_cuda_clip_grad_norm(model->cuda, max_norm); }
#endif
    if (model->grads_memory == NULL) { die("bert_clip_grad_norm: no gradients (call bert_backward first)"); }
    double norm = sqrt(sum_of_squares(model->grads_memory, model->num_parameters));
    if (!isfinite(norm)) { die("bert_clip_grad_norm: the gradient norm is %f (NaN or overflow in the backward pass)", norm); }
    // the same rule as torch.nn.utils.clip_grad_norm_, its 1e-6 included, so runs match
    double coef = max_norm / (norm + 1e-6);
    if (max_norm > 0.0f && coef < 1.0) {
        float c = (float)coef;
        #pragma omp parallel for
        for (size_t i = 0; i < model->num_parameters; i++) { model->grads_memory[i] *= c; }
    }
    return (float)norm;
}

void bert_adamw_update(BertModel* model, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int step) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        bert_cuda_adamw_update(model->cuda, lr, model->head_lr_scale, model->gate_lr_scale, beta1, beta2, eps, weight_decay,
                               step);
        return;
    }
#endif
    bert_adamw_update_range(model, lr, beta1, beta2, eps, weight_decay, step, 0, model->num_parameters);
}

void bert_adamw_update_range(BertModel* model, float lr, float beta1, float beta2, float eps,
                             float weight_decay, int step, size_t start, size_t end) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) { die("bert_adamw_update_range: the model is on the GPU, where AdamW updates it whole"); }
#endif
    if (model->grads_memory == NULL) { die("bert_adamw_update: no gradients (call bert_backward first)"); }
    if (step < 1) { die("bert_adamw_update: step counts from 1 (got %d)", step); }
    if (start > end || end > model->num_parameters) {
        die("bert_adamw_update_range: [%zu, %zu) is not a range of the %zu parameters", start, end, model->num_parameters);
    }
    if (model->m_memory == NULL) {
        model->m_memory = (float*)callocCheck(end - start, sizeof(float));
        model->v_memory = (float*)callocCheck(end - start, sizeof(float));
    }
    float bias_correction1 = 1.0f - powf(beta1, (float)step);
    float bias_correction2 = 1.0f - powf(beta2, (float)step);
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; offset += model->param_sizes[i], i++) {
        // the part of tensor i inside [start, end): [lo, hi) in the flat buffer
        size_t lo = offset > start ? offset : start;
        size_t hi = offset + model->param_sizes[i] < end ? offset + model->param_sizes[i] : end;
        if (lo >= hi) { continue; }
        float decay = parameter_tensor_decays(i) ? weight_decay : 0.0f;
        float lr_i = lr * parameter_tensor_lr_scale(model, i);
        float* param = model->params_memory + lo;
        const float* grad = model->grads_memory + lo;
        float* m = model->m_memory + (lo - start);
        float* v = model->v_memory + (lo - start);
        size_t n = hi - lo;
        #pragma omp parallel for
        for (size_t j = 0; j < n; j++) {
            m[j] = beta1 * m[j] + (1.0f - beta1) * grad[j];
            v[j] = beta2 * v[j] + (1.0f - beta2) * grad[j] * grad[j];
            float m_hat = m[j] / bias_correction1;
            float v_hat = v[j] / bias_correction2;
            // decoupled decay (Loshchilov & Hutter): shrinks the weight itself, outside Adam's scaling
            param[j] -= lr_i * (m_hat / (sqrtf(v_hat) + eps) + decay * param[j]);
        }
    }
}

void bert_free(BertModel* model) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {
        bert_cuda_free(model->cuda);
        free(model->cuda);
    }
#endif
    free(model->params_memory);
    free(model->grads_memory);
    free(model->m_memory);
    free(model->v_memory);
    free(model->acts_memory);
    free(model->scratch_memory);
    free(model->seq_starts);
    free(model->inputs);
    free(model->types);
    free(model->att_offsets);
    free(model->split_at);
    free(model->piece_starts);
    free(model->embed_types);
    free(model->gate_partial);
    memset(model, 0, sizeof(*model));
}

// ----------------------------------------------------------------------------
// checkpoints

#define HEADER_INTS 256

// writes header + payload to path.tmp, syncs it to disk, then renames it over path, so a
// crash leaves either the old file or the new one, never half of one
static void write_file_atomic(const char* path, const int* header, const float* const* payloads,
                              const size_t* counts, int num_payloads) {
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    fwriteCheck(header, sizeof(int), HEADER_INTS, fp);
    for (int i = 0; i < num_payloads; i++) { fwriteCheck(payloads[i], sizeof(float), counts[i], fp); }
    atomicCommit(&af);
}

// opens path and reads its header (refusing a file too short to hold one); returns the
// open file positioned at the payload, and its length in *len
static FILE* open_and_read_header(const char* path, int* header, const char* what, int64_t* len) {
    FILE* fp = fopenCheck(path, "rb");
    *len = fileLengthCheck(fp, path);
    if (*len < (int64_t)(HEADER_INTS * sizeof(int))) {
        die("'%s' is not a zelo.c %s: %lld bytes, shorter than its %zu-byte header", path, what, (long long)*len,
            HEADER_INTS * sizeof(int));
    }
    freadCheck(header, sizeof(int), HEADER_INTS, fp);
    return fp;
}

static uint64_t header_count(const int* header, int at) {
    return (uint64_t)(uint32_t)header[at] | ((uint64_t)(uint32_t)header[at + 1] << 32);
}

// a checkpoint holds the header, then num_arrays arrays of count floats: checked against the
// file's length in int64 before anything is allocated
static void payload_length_check(const char* path, int64_t len, uint64_t count, int num_arrays) {
    int64_t payload = len - (int64_t)(HEADER_INTS * sizeof(int));
    int64_t bytes = payloadBytesCheck(path, "parameter count", count > INT64_MAX ? -1 : (int64_t)count,
                                      num_arrays * (int64_t)sizeof(float), payload);
    fileSizeMatchCheck(path, len, (int64_t)(HEADER_INTS * sizeof(int)) + bytes);
}

static void check_reserved_zero(const int* header, int first, const char* path) {
    for (int i = first; i < HEADER_INTS; i++) {
        if (header[i] != 0) { die("'%s': header word %d is %d, expected 0 (corrupt file or newer format)", path, i, header[i]); }
    }
}

void bert_save(const BertModel* model, const char* path) {
    int header[HEADER_INTS] = {0};
    const BertConfig* c = &model->config;
    header[0] = BERT_CHECKPOINT_MAGIC;
    header[1] = BERT_CHECKPOINT_VERSION;
    header[2] = c->vocab_size;
    header[3] = c->hidden_size;
    header[4] = c->num_layers;
    header[5] = c->num_heads;
    header[6] = c->intermediate_size;
    header[7] = c->max_position;
    header[8] = c->type_vocab_size;
    header[9] = c->num_labels;
    memcpy(&header[10], &c->layer_norm_eps, sizeof(float));
#ifdef USE_CUDA
    // the host copy follows the device here, so that --export after a save sees these weights too
    if (ON_DEVICE(model)) { bert_cuda_download_parameters(model->cuda, model->params_memory); }
#endif
    header[11] = (int)(uint32_t)(model->num_parameters & 0xFFFFFFFFu);
    header[12] = (int)(uint32_t)(model->num_parameters >> 32);
    header[13] = (int)model->score_head;
    // word 14: the score head's scale (float bits); 0 under the cls head
    if (model->score_head != SCORE_HEAD_CLS) { memcpy(&header[14], &model->cosine_scale, sizeof(float)); }
    header[15] = (int)model->packing;
    const float* payloads[1] = {model->params_memory};
    size_t counts[1] = {model->num_parameters};
    write_file_atomic(path, header, payloads, counts, 1);
}

void bert_load(BertModel* model, const char* path) {
    int header[HEADER_INTS];
    int64_t len;
    FILE* fp = open_and_read_header(path, header, "model checkpoint", &len);
    if (header[0] != BERT_CHECKPOINT_MAGIC) {
        die("'%s' is not a zelo.c model checkpoint (magic 0x%08x, expected 0x%08x)", path,
            (unsigned)header[0], (unsigned)BERT_CHECKPOINT_MAGIC);
    }
    if (header[1] != BERT_CHECKPOINT_VERSION) {
        die("'%s': checkpoint version %d, this build reads version %d", path, header[1], BERT_CHECKPOINT_VERSION);
    }
    check_reserved_zero(header, 16, path);
    if (header[15] != PACKING_JOINT && header[15] != PACKING_SPLIT) {
        die("'%s': header word 15 (the packing) is %d, expected 0 (joint) or 1 (split)", path, header[15]);
    }
    if (header[13] < SCORE_HEAD_CLS || header[13] > SCORE_HEAD_COSINE_MAXSIM) {
        die("'%s': header word 13 (the score head) is %d, expected 0 (cls), 1 (cosine), 2 (maxsim) or 3 (cosine+maxsim)",
            path, header[13]);
    }
    if (header[15] == PACKING_SPLIT && header[13] == SCORE_HEAD_CLS) {
        die("'%s': the split packing (header word 15) with the cls head, which does not read it", path);
    }
    float cosine_scale = SCORE_HEAD_COSINE_SCALE;  // a cosine checkpoint written before word 14 held it
    if (header[14] != 0) {
        memcpy(&cosine_scale, &header[14], sizeof(float));
        if (header[13] == SCORE_HEAD_CLS || !(cosine_scale > 0.0f) || !isfinite(cosine_scale)) {
            die("'%s': header word 14 (the score head's scale) reads %g under the %s head; expected a finite scale > 0 "
                "under the other heads, 0 under the cls head", path, (double)cosine_scale,
                score_head_name((ScoreHead)header[13]));
        }
    } else if (score_head_has_maxsim((ScoreHead)header[13])) {
        die("'%s': header word 14 (the %s head's scale) is 0; a checkpoint of that head always stores its scale", path,
            score_head_name((ScoreHead)header[13]));
    }
    BertConfig cfg = {
        .vocab_size = header[2], .hidden_size = header[3], .num_layers = header[4],
        .num_heads = header[5], .intermediate_size = header[6], .max_position = header[7],
        .type_vocab_size = header[8], .num_labels = header[9],
    };
    memcpy(&cfg.layer_norm_eps, &header[10], sizeof(float));
    const char* problem = config_problem(&cfg);
    if (problem != NULL) { die("'%s': invalid config in the header: %s", path, problem); }
    size_t sizes[NUM_PARAMETER_TENSORS];
    fill_in_parameter_sizes(sizes, &cfg);
    size_t want = sum_sizes(sizes, NUM_PARAMETER_TENSORS);
    if (header[15] == PACKING_SPLIT) { want += split_gate_count(&cfg); }  // the gates
    uint64_t count = header_count(header, 11);
    if (count != want) {
        die("'%s': header says %llu floats, its config (%s packing) needs %zu", path, (unsigned long long)count,
            packing_name((Packing)header[15]), want);
    }
    payload_length_check(path, len, count, 1);
    bert_build(model, &cfg);
    model->score_head = (ScoreHead)header[13];
    model->cosine_scale = cosine_scale;
    if (header[15] == PACKING_SPLIT) { bert_split_segments(model, 0.0f); }  // the file's gates are read next
    freadCheck(model->params_memory, sizeof(float), count, fp);
    fclose(fp);
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        for (size_t j = 0; j < model->param_sizes[i]; j++) {
            if (!isfinite(model->params_memory[offset + j])) {
                die("'%s': tensor %s has a non-finite value at index %zu", path, PARAMETER_TENSOR_NAMES[i], j);
            }
        }
        offset += model->param_sizes[i];
    }
}

void bert_save_optimizer(const BertModel* model, int step, const char* path) {
#ifdef USE_CUDA
    if (ON_DEVICE(model)) {  // the state lives on the device: written from a host copy
        BertModel host = *model;
        host.cuda = NULL;
        host.m_memory = (float*)mallocCheck(model->num_parameters * sizeof(float));
        host.v_memory = (float*)mallocCheck(model->num_parameters * sizeof(float));
        int have = bert_cuda_download_optimizer(model->cuda, host.m_memory, host.v_memory);
        if (have) { bert_save_optimizer(&host, step, path); }
        free(host.m_memory);
        free(host.v_memory);
        if (!have) { die("bert_save_optimizer: no optimizer state (no AdamW step taken yet)"); }
        return;
    }
#endif
    if (model->m_memory == NULL) { die("bert_save_optimizer: no optimizer state (no AdamW step taken yet)"); }
    int header[HEADER_INTS] = {0};
    header[0] = BERT_OPTIMIZER_MAGIC;
    header[1] = BERT_CHECKPOINT_VERSION;
    header[2] = step;
    header[3] = (int)(uint32_t)(model->num_parameters & 0xFFFFFFFFu);
    header[4] = (int)(uint32_t)(model->num_parameters >> 32);
    const float* payloads[2] = {model->m_memory, model->v_memory};
    size_t counts[2] = {model->num_parameters, model->num_parameters};
    write_file_atomic(path, header, payloads, counts, 2);
}

int bert_load_optimizer(BertModel* model, const char* path) {
    int header[HEADER_INTS];
    int64_t len;
    FILE* fp = open_and_read_header(path, header, "optimizer state", &len);
    if (header[0] != BERT_OPTIMIZER_MAGIC) {
        die("'%s' is not a zelo.c optimizer state (magic 0x%08x, expected 0x%08x)", path,
            (unsigned)header[0], (unsigned)BERT_OPTIMIZER_MAGIC);
    }
    if (header[1] != BERT_CHECKPOINT_VERSION) {
        die("'%s': optimizer state version %d, this build reads version %d", path, header[1], BERT_CHECKPOINT_VERSION);
    }
    check_reserved_zero(header, 5, path);
    if (header[2] < 0) { die("'%s': negative step %d", path, header[2]); }
    uint64_t count = header_count(header, 3);
    if (count != model->num_parameters) {
        die("'%s': optimizer state for %llu parameters, the model has %zu", path, (unsigned long long)count,
            model->num_parameters);
    }
    payload_length_check(path, len, count, 2);
    if (model->m_memory == NULL) {
        model->m_memory = (float*)mallocCheck(count * sizeof(float));
        model->v_memory = (float*)mallocCheck(count * sizeof(float));
    }
    freadCheck(model->m_memory, sizeof(float), count, fp);
    freadCheck(model->v_memory, sizeof(float), count, fp);
    fclose(fp);
    for (size_t j = 0; j < count; j++) {
        if (!isfinite(model->m_memory[j]) || !(model->v_memory[j] >= 0.0f) || !isfinite(model->v_memory[j])) {
            die("'%s': non-finite or negative optimizer state at index %zu", path, j);
        }
    }
#ifdef USE_CUDA
    if (ON_DEVICE(model)) { bert_cuda_upload_optimizer(model->cuda, model->m_memory, model->v_memory); }
#endif
    return header[2];
}
