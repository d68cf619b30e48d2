/*
 * kernels/layernorm.cuh — LayerNorm forward and backward (model.c layernorm_*), and both
 * fused with the residual sum that precedes each LayerNorm in a post-LN block; and the
 * forward's output recomputed from its kept mean and rstd, for a backward pass that did not
 * keep it (kernels/model_cuda.cu).
 *
 * One warp per row for the row-wise work: the row's sums are warp shuffles in a fixed
 * order. The weight and bias gradients sum over all rows: one thread per column walks the
 * rows in order, the reference's own order, so the result is deterministic and needs no
 * atomics (the fast, split version is the next issue's).
 *
 * Each kernel is templated on floatX, the storage type of the inputs, outputs, weight and bias
 * (kernels/bf16.cuh): float, or bf16 with the same float arithmetic. In both, mean and rstd
 * (N) and the weight and bias gradients are float, and every sum is a float sum.
 */
#ifndef ZELO_KERNELS_LAYERNORM_CUH
#define ZELO_KERNELS_LAYERNORM_CUH

#include "kernels/bf16.cuh"

// one entry of a normalised row. The forward kernels and the backward pass's recomputation
// (layernorm_recompute_kernel1) all call it, with the same float mean and rstd, so that a
// recomputed output is the forward's bit for bit
__device__ __forceinline__ float layernorm_entry(float x, float mean, float rstd, float weight, float bias) {
    return (x - mean) * rstd * weight + bias;
}

// the rest of a row's LayerNorm once its sum over C is known: o (C) = (x - mean) * rstd *
// weight + bias, mean and rstd written by lane 0. One code path for the plain and the fused
// kernel, so that both round the same operations the same way
template <typename floatX>
__device__ void layernorm_row_from_sum(floatX* o, float* mean, float* rstd, const floatX* x, float sum,
                                       const floatX* weight, const floatX* bias, int C, float eps, int lane) {
    float m = warp_sum(sum) / C;
    // two passes, as the reference: E[x^2] - E[x]^2 cancels when the mean is large
    float sq = 0.0f;
    for (int c = lane; c < C; c += 32) { float d = to_float(x[c]) - m; sq += d * d; }
    float v = warp_sum(sq) / C;
    float s = 1.0f / sqrtf(v + eps);
    for (int c = lane; c < C; c += 32) {
        o[c] = from_float<floatX>(layernorm_entry(to_float(x[c]), m, s, to_float(weight[c]), to_float(bias[c])));
    }
    if (lane == 0) {
        *mean = m;
        *rstd = s;
    }
}

// out (N, C) = (inp - mean) * rstd * weight + bias per row; mean, rstd (N) kept for backward
template <typename floatX>
__global__ void layernorm_forward_kernel1(floatX* out, float* mean, float* rstd, const floatX* inp,
                                          const floatX* weight, const floatX* bias, int N, int C, float eps) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) { return; }  // whole warps leave together: N rows, one warp each
    const floatX* x = inp + (size_t)row * C;
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) { sum += to_float(x[c]); }
    layernorm_row_from_sum(out + (size_t)row * C, mean + row, rstd + row, x, sum, weight, bias, C, eps, lane);
}

// out (N, C) = the LayerNorm of inp (N, C) from the forward's mean and rstd (N): the backward
// pass's recomputation of an output the forward did not keep, its bytes the forward's (the
// same statistics, layernorm_entry's arithmetic). Elementwise, one thread per entry
template <typename floatX>
__global__ void layernorm_recompute_kernel1(floatX* out, const floatX* inp, const float* mean, const float* rstd,
                                            const floatX* weight, const floatX* bias, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) { return; }
    size_t row = i / C, c = i % C;
    out[i] = from_float<floatX>(layernorm_entry(to_float(inp[i]), mean[row], rstd[row], to_float(weight[c]),
                                                to_float(bias[c])));
}

// res (N, C) = a + b, kept for backward, then out (N, C) = LayerNorm(res) as
// layernorm_forward_kernel1, mean, rstd (N): the residual sum and the LayerNorm after it in
// one launch, saving the residual kernel's pass over the three tensors. Each lane reads back
// only the entries of res it wrote itself (no synchronisation), so the results are the
// unfused pair's bit for bit. The statistics are those of res as stored (under bf16, the sum
// rounded), the input that the backward pass and the recomputation read back. res may be a
// (the forward adds in place); one warp per row
template <typename floatX>
__global__ void residual_layernorm_forward_kernel1(floatX* res, floatX* out, float* mean, float* rstd, const floatX* a,
                                                   const floatX* b, const floatX* weight, const floatX* bias, int N,
                                                   int C, float eps) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) { return; }
    size_t offset = (size_t)row * C;
    floatX* x = res + offset;
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        floatX r = from_float<floatX>(to_float(a[offset + c]) + to_float(b[offset + c]));
        x[c] = r;
        sum += to_float(r);
    }
    layernorm_row_from_sum(out + offset, mean + row, rstd + row, x, sum, weight, bias, C, eps, lane);
}

// The gradient wrt a row's input: d/dx of a normalised row is the gradient (times weight)
// minus its mean, minus its projection on the normalised row xhat itself, rescaled by rstd.
// The two means over the row (C), of g * weight and of g * weight * xhat, summed by the warp;
// with layernorm_backward_entry, one code path for the plain and the fused kernel, so that
// both round alike
template <typename floatX>
__device__ void layernorm_backward_row_means(float* gw_mean, float* gw_xhat_mean, const floatX* g, const floatX* x,
                                             const floatX* weight, float m, float s, int C, int lane) {
    float gw_sum = 0.0f, gw_xhat_sum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float gw = to_float(g[c]) * to_float(weight[c]);
        gw_sum += gw;
        gw_xhat_sum += gw * (to_float(x[c]) - m) * s;
    }
    *gw_mean = warp_sum(gw_sum) / C;
    *gw_xhat_mean = warp_sum(gw_xhat_sum) / C;
}
// one entry of the row's input gradient, from its gradient g, weight, input x and the means
__device__ __forceinline__ float layernorm_backward_entry(float g, float weight, float x, float m, float s,
                                                          float gw_mean, float gw_xhat_mean) {
    float xhat = (x - m) * s;
    return (g * weight - gw_mean - xhat * gw_xhat_mean) * s;
}

// dinp (N, C) += the gradient wrt the input of each row (added in float, then stored); one
// warp per row
template <typename floatX>
__global__ void layernorm_backward_input_kernel1(floatX* dinp, const floatX* dout, const floatX* inp,
                                                 const floatX* weight, const float* mean, const float* rstd, int N,
                                                 int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) { return; }
    const floatX* x = inp + (size_t)row * C;
    const floatX* g = dout + (size_t)row * C;
    float m = mean[row], s = rstd[row], gw_mean, gw_xhat_mean;
    layernorm_backward_row_means(&gw_mean, &gw_xhat_mean, g, x, weight, m, s, C, lane);
    floatX* d = dinp + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        float e = layernorm_backward_entry(to_float(g[c]), to_float(weight[c]), to_float(x[c]), m, s, gw_mean,
                                           gw_xhat_mean);
        d[c] = from_float<floatX>(to_float(d[c]) + e);
    }
}

// da, db (N, C) = the gradient wrt the input res of each row, written to both: the LayerNorm
// after a residual sum res = a + b, whose two terms get the same gradient, so that the
// backward pass needs neither a zeroed buffer to add into nor a copy. "0 + " rounds as the
// addition into a zeroed buffer did (-0 becomes +0), so the bytes are those of zeroing,
// layernorm_backward_input_kernel1 and copying; one warp per row
template <typename floatX>
__global__ void residual_layernorm_backward_input_kernel1(floatX* da, floatX* db, const floatX* dout,
                                                          const floatX* res, const floatX* weight, const float* mean,
                                                          const float* rstd, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) { return; }
    size_t offset = (size_t)row * C;
    const floatX* x = res + offset;
    const floatX* g = dout + offset;
    float m = mean[row], s = rstd[row], gw_mean, gw_xhat_mean;
    layernorm_backward_row_means(&gw_mean, &gw_xhat_mean, g, x, weight, m, s, C, lane);
    for (int c = lane; c < C; c += 32) {
        floatX d = from_float<floatX>(0.0f + layernorm_backward_entry(to_float(g[c]), to_float(weight[c]),
                                                                      to_float(x[c]), m, s, gw_mean, gw_xhat_mean));
        da[offset + c] = d;
        db[offset + c] = d;
    }
}

// dweight, dbias (C, float) += their gradients summed over the N rows in float; one thread
// per column
template <typename floatX>
__global__ void layernorm_backward_params_kernel1(float* dweight, float* dbias, const floatX* dout,
                                                  const floatX* inp, const float* mean, const float* rstd, int N,
                                                  int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) { return; }
    float dw = 0.0f, db = 0.0f;
    for (int t = 0; t < N; t++) {
        float g = to_float(dout[(size_t)t * C + c]);
        dw += g * (to_float(inp[(size_t)t * C + c]) - mean[t]) * rstd[t];
        db += g;
    }
    dweight[c] += dw;
    dbias[c] += db;
}

// ---- launchers: floatX (float or bf16) deduced from the tensors' pointers ----

template <typename floatX>
void layernorm_forward_cuda(floatX* out, float* mean, float* rstd, const floatX* inp, const floatX* weight,
                            const floatX* bias, int N, int C, float eps, cudaStream_t stream) {
    const int block_size = 256, rows_per_block = block_size / 32;
    layernorm_forward_kernel1<floatX><<<CEIL_DIV(N, rows_per_block), block_size, 0, stream>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
    cudaCheck(cudaGetLastError());
}

// out (N, C) = the LayerNorm of inp again, from the forward's mean and rstd (N): the forward's bytes
template <typename floatX>
void layernorm_recompute_cuda(floatX* out, const floatX* inp, const float* mean, const float* rstd,
                              const floatX* weight, const floatX* bias, int N, int C, cudaStream_t stream) {
    const int block_size = 256;
    size_t n = (size_t)N * C;
    layernorm_recompute_kernel1<floatX><<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, mean, rstd, weight, bias, N, C);
    cudaCheck(cudaGetLastError());
}

// dinp (N, C), dweight, dbias (C) += their gradients, as model.c layernorm_backward
template <typename floatX>
void layernorm_backward_cuda(floatX* dinp, float* dweight, float* dbias, const floatX* dout, const floatX* inp,
                             const floatX* weight, const float* mean, const float* rstd, int N, int C,
                             cudaStream_t stream) {
    const int block_size = 256, rows_per_block = block_size / 32;
    layernorm_backward_input_kernel1<floatX><<<CEIL_DIV(N, rows_per_block), block_size, 0, stream>>>(dinp, dout, inp, weight, mean, rstd, N, C);
    cudaCheck(cudaGetLastError());
    layernorm_backward_params_kernel1<floatX><<<CEIL_DIV(C, block_size), block_size, 0, stream>>>(dweight, dbias, dout, inp, mean, rstd, N, C);
    cudaCheck(cudaGetLastError());
}

// res (N, C) = a + b, then out (N, C), mean, rstd (N) as layernorm_forward_cuda of res
template <typename floatX>
void residual_layernorm_forward_cuda(floatX* res, floatX* out, float* mean, float* rstd, const floatX* a,
                                     const floatX* b, const floatX* weight, const floatX* bias, int N, int C, float eps,
                                     cudaStream_t stream) {
    const int block_size = 256, rows_per_block = block_size / 32;
    residual_layernorm_forward_kernel1<floatX><<<CEIL_DIV(N, rows_per_block), block_size, 0, stream>>>(res, out, mean, rstd, a, b, weight, bias, N, C, eps);
    cudaCheck(cudaGetLastError());
}

// da, db (N, C) = the gradient wrt the residual sum res = a + b before the LayerNorm, written
// (not added) to both terms' gradients; dweight, dbias (C) += theirs, as layernorm_backward_cuda
template <typename floatX>
void residual_layernorm_backward_cuda(floatX* da, floatX* db, float* dweight, float* dbias, const floatX* dout,
                                      const floatX* res, const floatX* weight, const float* mean, const float* rstd,
                                      int N, int C, cudaStream_t stream) {
    const int block_size = 256, rows_per_block = block_size / 32;
    residual_layernorm_backward_input_kernel1<floatX><<<CEIL_DIV(N, rows_per_block), block_size, 0, stream>>>(da, db, dout, res, weight, mean, rstd, N, C);
    cudaCheck(cudaGetLastError());
    layernorm_backward_params_kernel1<floatX><<<CEIL_DIV(C, block_size), block_size, 0, stream>>>(dweight, dbias, dout, res, mean, rstd, N, C);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_LAYERNORM_CUH
