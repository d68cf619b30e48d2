/*
 * kernels/pooler.cuh — the two heads on the last hidden states (model.c): the score head's
 * pieces (the [CLS] row of each sequence, tanh after the pooler dense layer; the dense
 * layers themselves are linear_*_cuda in matmul.cuh), the cosine score head (the means of
 * the query's and the document's tokens, and their scaled cosine) and the mean-pooled
 * sentence embedding. Every output entry has one thread, sums taken in token order.
 *
 * Templated on floatX, the storage type of the hidden states and their gradient
 * (kernels/bf16.cuh): float, or bf16 with the same float arithmetic. The [CLS] rows and tanh
 * feed and follow the pooler's Linear layer, so they are floatX like its input and output (the
 * gather an exact copy, tanh and its backward computed in float and rounded once); the means
 * (mean pooling's sentence embeddings, the cosine head's segment means) are float sums of the
 * floatX hidden states, stored as float, so the cosine and its logit are computed from them in
 * float and double exactly as in the fp32 backend. A gradient added into the hidden states'
 * (floatX) is added in float and rounded once.
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

#endif // ZELO_KERNELS_POOLER_CUH
