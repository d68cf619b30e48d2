/*
 * kernels/pooler.cuh — the two heads on the last hidden states (model.c): the score head's
 * pieces (the [CLS] row of each sequence, tanh after the pooler dense layer; the dense
 * layers themselves are linear_*_cuda in matmul.cuh), the cosine score head (the means of
 * the query's and the document's tokens, and their scaled cosine), the maxsim score head
 * (each query token's largest cosine with a document token, averaged) and the mean-pooled
 * sentence embedding. Every output entry has one thread, sums taken in token order; maxsim
 * has a block per sequence, whose sums run in model.c's order too.
 *
 * Templated on floatX, the storage type of the hidden states and their gradient
 * (kernels/bf16.cuh): float, or bf16 with the same float arithmetic. The [CLS] rows and tanh
 * feed and follow the pooler's Linear layer, so they are floatX like its input and output (the
 * gather an exact copy, tanh and its backward computed in float and rounded once); the means
 * (mean pooling's sentence embeddings, the cosine head's segment means) are float sums of the
 * floatX hidden states, stored as float, so the cosine and its logit are computed from them in
 * float and double exactly as in the fp32 backend; maxsim reads the floatX hidden states as
 * floats and computes its cosines in double, as model.c's. A gradient added into the hidden
 * states' (floatX) is added in float and rounded once.
 */
#ifndef ZELO_KERNELS_POOLER_CUH
#define ZELO_KERNELS_POOLER_CUH

#include "kernels/bf16.cuh"
#include "common/segment_cosine.h"

// out (S, C) = inp (N, C) at the first token of each sequence
template <typename floatX>
__global__ void cls_gather_forward_kernel1(floatX* out, const floatX* inp, const int* seq_starts, int S, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    out[idx] = inp[(size_t)seq_starts[s] * C + c];
}

// dinp (N, C) += dout (S, C) at the first token of each sequence (distinct rows: no race)
template <typename floatX>
__global__ void cls_gather_backward_kernel1(floatX* dinp, const floatX* dout, const int* seq_starts, int S, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    floatX* d = dinp + (size_t)seq_starts[s] * C + c;
    *d = from_float<floatX>(to_float(*d) + to_float(dout[idx]));
}

template <typename floatX>
__global__ void tanh_forward_kernel1(floatX* out, const floatX* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = from_float<floatX>(tanhf(to_float(inp[i]))); }
}

// dinout: gradient wrt tanh's output on entry, wrt its input on return; out = tanh(input)
template <typename floatX>
__global__ void tanh_backward_inplace_kernel1(floatX* dinout, const floatX* out, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float y = to_float(out[i]);
        dinout[i] = from_float<floatX>(to_float(dinout[i]) * (1.0f - y * y));
    }
}

// out (S, C) = mean over each sequence's tokens of inp (N, C); one thread per (sequence, channel)
template <typename floatX>
__global__ void meanpool_forward_kernel1(float* out, const floatX* inp, const int* seq_starts, int S, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    float sum = 0.0f;
    for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) { sum += to_float(inp[(size_t)t * C + c]); }
    out[idx] = sum * (1.0f / (float)(seq_starts[s + 1] - seq_starts[s]));
}

// dinp (N, C) += dout of the token's sequence / its length; one thread per (token, channel)
template <typename floatX>
__global__ void meanpool_backward_kernel1(floatX* dinp, const float* dout, const int* seq_starts, int S, int N, int C) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * C) { return; }
    int t = (int)(idx / C), c = (int)(idx % C);
    int s = sequence_of(seq_starts, S, t);
    float inv = 1.0f / (float)(seq_starts[s + 1] - seq_starts[s]);
    dinp[idx] = from_float<floatX>(to_float(dinp[idx]) + dout[(size_t)s * C + c] * inv);
}

// out (S, 2, C): the mean of inp (N, C) over the query's content tokens, then the document's
// (whole: over each whole segment, the split packing's; segment_span); zeros for an empty span.
// One thread per (sequence, side, channel)
template <typename floatX>
__global__ void segment_means_forward_kernel1(float* out, const floatX* inp, const int* types, const int* seq_starts,
                                              int S, int C, int whole) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * 2 * C) { return; }
    int s = idx / (2 * C), side = (idx / C) % 2, c = idx % C;
    int first, n = segment_span(&first, types, seq_starts[s], seq_starts[s + 1], side, whole);
    float sum = 0.0f;
    for (int t = first; t < first + n; t++) { sum += to_float(inp[(size_t)t * C + c]); }
    out[idx] = n > 0 ? sum / (float)n : 0.0f;
}

// dinp (N, C) += dout (S, 2, C) / the span's length over the span's tokens; one thread per
// (sequence, side, channel): the spans are disjoint, so no two threads write one entry
template <typename floatX>
__global__ void segment_means_backward_kernel1(floatX* dinp, const float* dout, const int* types, const int* seq_starts,
                                               int S, int C, int whole) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * 2 * C) { return; }
    int s = idx / (2 * C), side = (idx / C) % 2, c = idx % C;
    int first, n = segment_span(&first, types, seq_starts[s], seq_starts[s + 1], side, whole);
    for (int t = first; t < first + n; t++) {
        floatX* d = dinp + (size_t)t * C + c;
        *d = from_float<floatX>(to_float(*d) + dout[idx] / (float)n);
    }
}

// logits (S) = scale * cos(u_s, v_s) of segmeans (S, 2, C), 0 where either is zero; one thread
// per sequence, the sums of common/segment_cosine.h, as model.c's
__global__ void cosine_score_forward_kernel1(float* logits, const float* segmeans, int S, int C, float scale) {
    int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= S) { return; }
    const float* u = segmeans + (size_t)s * 2 * C;
    double uv, uu, vv;
    cosine_sums(&uv, &uu, &vv, u, u + C, C);
    logits[s] = uu > 0.0 && vv > 0.0 ? (float)(scale * uv / sqrt(uu * vv)) : 0.0f;
}

// dsegmeans (S, 2, C) = (overwritten) the gradient wrt segmeans given dlogits (S); one thread
// per (sequence, channel), each recomputing its sequence's three sums
__global__ void cosine_score_backward_kernel1(float* dsegmeans, const float* dlogits, const float* segmeans,
                                              int S, int C, float scale) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    const float* u = segmeans + (size_t)s * 2 * C;
    const float* v = u + C;
    double uv, uu, vv;
    cosine_sums(&uv, &uu, &vv, u, v, C);
    float* du = dsegmeans + (size_t)s * 2 * C;
    if (!(uu > 0.0 && vv > 0.0)) {
        du[c] = 0.0f;
        du[C + c] = 0.0f;
        return;
    }
    double inv = 1.0 / sqrt(uu * vv), cosine = uv * inv, g = (double)dlogits[s] * scale;
    du[c] = (float)(g * (v[c] * inv - cosine * u[c] / uu));
    du[C + c] = (float)(g * (u[c] * inv - cosine * v[c] / vv));
}

// 1/|a| of a row a (C), the squares summed in double in index order as model.c's; 0 for the
// zero vector, whose cosine with anything is 0
template <typename floatX>
__device__ double inverse_norm_of(const floatX* a, int C) {
    double aa = 0.0;
    for (int c = 0; c < C; c++) { aa += (double)to_float(a[c]) * to_float(a[c]); }
    return aa > 0.0 ? 1.0 / sqrt(aa) : 0.0;
}

// the document token j in [0, nd) of the rows d (nd, C) whose cosine with the query token q (C)
// is the largest, its cosine in *best, given the inverse norms inv_q and inv_d (nd); called by
// a whole warp. Each lane takes every 32nd j, its dot products summed in double in index order
// as model.c's, and keeps its first best; the lanes then agree on the larger cosine, on a tie
// the smaller j: the first best j, as model.c's maxsim_best (0 with -inf if none compares)
template <typename floatX>
__device__ int warp_maxsim_best(double* best, const floatX* q, double inv_q, const floatX* d, const double* inv_d,
                                int nd, int C) {
    int arg = threadIdx.x % 32;
    double b = -INFINITY;
    for (int j = arg; j < nd; j += 32) {
        const floatX* dj = d + (size_t)j * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) { dot += (double)to_float(q[c]) * to_float(dj[c]); }
        double cs = dot * inv_q * inv_d[j];
        if (cs > b) {
            b = cs;
            arg = j;
        }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        double other = __shfl_xor_sync(0xffffffffu, b, offset);
        int other_arg = __shfl_xor_sync(0xffffffffu, arg, offset);
        if (other > b || (other == b && other_arg < arg)) {
            b = other;
            arg = other_arg;
        }
    }
    *best = b;
    return arg;
}

// the matches of one sequence [start, end) (its query's content tokens, nq from qf, and its
// document's, nd from df; segment_span's spans): inv (end - start) the inverse norm of each of
// its tokens, best (nq) each query token's best document token (from df) and cosine (nq) their
// cosine. The block's warps take a query token at a time. Called by every thread of the block;
// returns after a barrier, with the three complete
template <typename floatX>
__device__ void maxsim_matches(double* inv, int* best, double* cosine, const floatX* inp, int start, int end, int qf,
                               int nq, int df, int nd, int C) {
    for (int t = threadIdx.x; t < end - start; t += blockDim.x) {
        inv[t] = inverse_norm_of(inp + (size_t)(start + t) * C, C);
    }
    __syncthreads();
    int warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    for (int i = warp; i < nq; i += num_warps) {
        double b;
        int j = warp_maxsim_best(&b, inp + (size_t)(qf + i) * C, inv[qf - start + i], inp + (size_t)df * C,
                                 inv + (df - start), nd, C);
        if (threadIdx.x % 32 == 0) {
            best[i] = j;
            cosine[i] = b;
        }
    }
    __syncthreads();
}

// logits (S) += scale x the mean over each sequence's query content tokens of their best
// cosines with its document content tokens (model.c's maxsim_score_forward), inp (N, C); one
// block per sequence, its (end - start) x 20 bytes of shared memory holding maxsim_matches' three;
// the cosines summed in query order, as model.c's. Nothing added where either span is empty
template <typename floatX>
__global__ void maxsim_score_forward_kernel1(float* logits, const floatX* inp, const int* types, const int* seq_starts,
                                             int C, float scale) {
    extern __shared__ double maxsim_smem[];
    int s = blockIdx.x, start = seq_starts[s], end = seq_starts[s + 1], T = end - start;
    int qf, nq = segment_span(&qf, types, start, end, 0, 0);
    int df, nd = segment_span(&df, types, start, end, 1, 0);
    if (nq == 0 || nd == 0) { return; }  // the whole block, before any barrier
    double* inv = maxsim_smem;             // (T)
    double* cosine = maxsim_smem + T;      // (nq)
    int* best = (int*)(maxsim_smem + 2 * T);  // (nq)
    maxsim_matches(inv, best, cosine, inp, start, end, qf, nq, df, nd, C);
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (int i = 0; i < nq; i++) { sum += cosine[i]; }
        logits[s] += (float)(scale * sum / nq);
    }
}

// dinp (N, C) += the gradient wrt inp given dlogits (S), as model.c's maxsim_score_backward:
// each query token and its best document token (found again, as there) get scale x dlogit / nq
// times d cos(q, d) / dq = d / (|q||d|) - cos q / |q|^2, and symmetrically for d; nothing
// around a zero vector. One block per sequence (shared memory as the forward's): a thread per
// (query token, channel) adds its one term; a thread per (document token, channel) adds, in
// query order, the terms of the query tokens whose best it is, so no two threads write one
// entry and each sum runs in model.c's order, every term rounded from double to float as there
template <typename floatX>
__global__ void maxsim_score_backward_kernel1(floatX* dinp, const float* dlogits, const floatX* inp, const int* types,
                                              const int* seq_starts, int C, float scale) {
    extern __shared__ double maxsim_smem[];
    int s = blockIdx.x, start = seq_starts[s], end = seq_starts[s + 1], T = end - start;
    int qf, nq = segment_span(&qf, types, start, end, 0, 0);
    int df, nd = segment_span(&df, types, start, end, 1, 0);
    if (nq == 0 || nd == 0) { return; }
    double* inv = maxsim_smem;
    double* cosine = maxsim_smem + T;
    int* best = (int*)(maxsim_smem + 2 * T);
    maxsim_matches(inv, best, cosine, inp, start, end, qf, nq, df, nd, C);
    const double* inv_q = inv + (qf - start);  // (nq)
    const double* inv_d = inv + (df - start);  // (nd)
    double g = (double)dlogits[s] * scale / nq;
    for (int idx = threadIdx.x; idx < nq * C; idx += blockDim.x) {
        int i = idx / C, c = idx % C, j = best[i];
        if (inv_q[i] == 0.0 || inv_d[j] == 0.0) { continue; }
        float q = to_float(inp[(size_t)(qf + i) * C + c]), d = to_float(inp[(size_t)(df + j) * C + c]);
        floatX* dq = dinp + (size_t)(qf + i) * C + c;
        float term = (float)(g * (d * inv_q[i] * inv_d[j] - cosine[i] * q * inv_q[i] * inv_q[i]));
        *dq = from_float<floatX>(to_float(*dq) + term);
    }
    for (int idx = threadIdx.x; idx < nd * C; idx += blockDim.x) {
        int j = idx / C, c = idx % C;
        float d = to_float(inp[(size_t)(df + j) * C + c]);
        floatX* dd = dinp + (size_t)(df + j) * C + c;
        float sum = to_float(*dd);
        for (int i = 0; i < nq; i++) {
            if (best[i] != j || inv_q[i] == 0.0 || inv_d[j] == 0.0) { continue; }
            float q = to_float(inp[(size_t)(qf + i) * C + c]);
            sum += (float)(g * (q * inv_q[i] * inv_d[j] - cosine[i] * d * inv_d[j] * inv_d[j]));
        }
        *dd = from_float<floatX>(sum);
    }
}

// ---- launchers: floatX (float or bf16) deduced from the hidden states or their gradient ----

template <typename floatX>
void cls_gather_forward_cuda(floatX* out, const floatX* inp, const int* seq_starts, int S, int C, cudaStream_t stream) {
    const int block_size = 256;
    cls_gather_forward_kernel1<floatX><<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(out, inp, seq_starts, S, C);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void cls_gather_backward_cuda(floatX* dinp, const floatX* dout, const int* seq_starts, int S, int C, cudaStream_t stream) {
    const int block_size = 256;
    cls_gather_backward_kernel1<floatX><<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(dinp, dout, seq_starts, S, C);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void tanh_forward_cuda(floatX* out, const floatX* inp, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    tanh_forward_kernel1<floatX><<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void tanh_backward_inplace_cuda(floatX* dinout, const floatX* out, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    tanh_backward_inplace_kernel1<floatX><<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(dinout, out, n);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void meanpool_forward_cuda(float* out, const floatX* inp, const int* seq_starts, int S, int C, cudaStream_t stream) {
    const int block_size = 256;
    meanpool_forward_kernel1<floatX><<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(out, inp, seq_starts, S, C);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void meanpool_backward_cuda(floatX* dinp, const float* dout, const int* seq_starts, int S, int N, int C,
                            cudaStream_t stream) {
    const int block_size = 256;
    meanpool_backward_kernel1<floatX><<<(int)CEIL_DIV((size_t)N * C, (size_t)block_size), block_size, 0, stream>>>(dinp, dout, seq_starts, S, N, C);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void segment_means_forward_cuda(float* out, const floatX* inp, const int* types, const int* seq_starts, int S, int C,
                                int whole, cudaStream_t stream) {
    const int block_size = 256;
    segment_means_forward_kernel1<floatX><<<CEIL_DIV(S * 2 * C, block_size), block_size, 0, stream>>>(out, inp, types, seq_starts, S, C, whole);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void segment_means_backward_cuda(floatX* dinp, const float* dout, const int* types, const int* seq_starts, int S, int C,
                                 int whole, cudaStream_t stream) {
    const int block_size = 256;
    segment_means_backward_kernel1<floatX><<<CEIL_DIV(S * 2 * C, block_size), block_size, 0, stream>>>(dinp, dout, types, seq_starts, S, C, whole);
    cudaCheck(cudaGetLastError());
}

void cosine_score_forward_cuda(float* logits, const float* segmeans, int S, int C, float scale, cudaStream_t stream) {
    const int block_size = 128;
    cosine_score_forward_kernel1<<<CEIL_DIV(S, block_size), block_size, 0, stream>>>(logits, segmeans, S, C, scale);
    cudaCheck(cudaGetLastError());
}

void cosine_score_backward_cuda(float* dsegmeans, const float* dlogits, const float* segmeans, int S, int C, float scale,
                                cudaStream_t stream) {
    const int block_size = 256;
    cosine_score_backward_kernel1<<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(dsegmeans, dlogits, segmeans, S, C, scale);
    cudaCheck(cudaGetLastError());
}

// the maxsim kernels' block, and their shared memory at sequences of up to max_T tokens:
// maxsim_matches' inverse norms and best cosines (doubles) and best tokens (ints), 10 KB at
// BERT's 512 positions
#define MAXSIM_BLOCK_SIZE 256
static inline size_t maxsim_smem_bytes(int max_T) { return (size_t)max_T * (2 * sizeof(double) + sizeof(int)); }

template <typename floatX>
void maxsim_score_forward_cuda(float* logits, const floatX* inp, const int* types, const int* seq_starts, int S,
                               int max_T, int C, float scale, cudaStream_t stream) {
    maxsim_score_forward_kernel1<floatX><<<S, MAXSIM_BLOCK_SIZE, maxsim_smem_bytes(max_T), stream>>>(logits, inp, types, seq_starts, C, scale);
    cudaCheck(cudaGetLastError());
}

template <typename floatX>
void maxsim_score_backward_cuda(floatX* dinp, const float* dlogits, const floatX* inp, const int* types,
                                const int* seq_starts, int S, int max_T, int C, float scale, cudaStream_t stream) {
    maxsim_score_backward_kernel1<floatX><<<S, MAXSIM_BLOCK_SIZE, maxsim_smem_bytes(max_T), stream>>>(dinp, dlogits, inp, types, seq_starts, C, scale);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_POOLER_CUH
