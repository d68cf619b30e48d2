/*
 * kernels/gelu.cuh — GELU in the exact erf form BERT uses, x Phi(x), and its backward
 * (model.c gelu_*) fused with the bias gradient of the fc layer before it. Phi(x) =
 * erfc(-x / sqrt 2) / 2 rather than (1 + erf(x / sqrt 2)) / 2: for negative x the latter is
 * a difference of nearly equal numbers and loses the relative accuracy that the reference
 * keeps by computing the tail directly.
 */
#ifndef ZELO_KERNELS_GELU_CUH
#define ZELO_KERNELS_GELU_CUH

#include "kernels/common.cuh"

#define GELU_INV_SQRT2 0.70710678118654752f
#define GELU_INV_SQRT_2PI 0.39894228040143268f

__device__ __forceinline__ float normal_cdf_device(float x) { return 0.5f * erfcf(-x * GELU_INV_SQRT2); }

// out (n) = inp * Phi(inp)
__global__ void gelu_forward_kernel1(float* out, const float* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = inp[i];
        out[i] = x * normal_cdf_device(x);
    }
}

// d GELU(x) / dx = Phi(x) + x phi(x); one code path for the fused kernel and the unfused one
// it replaced (dev/cuda/gelu.cu), so that both round alike
__device__ __forceinline__ float gelu_derivative_device(float x) {
    float pdf = GELU_INV_SQRT_2PI * expf(-0.5f * x * x);
    return normal_cdf_device(x) + x * pdf;
}

#define GELU_BIAS_CHUNK 8
// dinout (N, OC): the gradient wrt GELU's output on entry, wrt its input inp (N, OC) on
// return; dbias (OC) += the column sums of the latter, the bias gradient of the Linear layer
// whose output GELU took. One thread per column walks the rows in order with one float sum,
// bias_backward_kernel1's order exactly, so the result is deterministic and bit for bit the
// unfused pair's (GELU's backward, then that kernel). The rows go in chunks whose loads are
// all issued before any store (the compiler may not move a load above the previous row's
// store to dinout), so that a thread waits on memory once per chunk, not once per row
__global__ void gelu_backward_bias_kernel1(float* dinout, float* dbias, const float* inp, int N, int OC) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= OC) { return; }
    float sum = 0.0f;
    for (int t0 = 0; t0 < N; t0 += GELU_BIAS_CHUNK) {
        float g[GELU_BIAS_CHUNK], x[GELU_BIAS_CHUNK];
        for (int r = 0; r < GELU_BIAS_CHUNK; r++) {
            // past the last row, the last row again: no branch between the loads
            size_t i = (size_t)min(t0 + r, N - 1) * OC + c;
            g[r] = dinout[i];
            x[r] = inp[i];
        }
        for (int r = 0; r < GELU_BIAS_CHUNK && t0 + r < N; r++) {
            float d = g[r] * gelu_derivative_device(x[r]);
            dinout[(size_t)(t0 + r) * OC + c] = d;
            sum += d;
        }
    }
    dbias[c] += sum;
}

void gelu_forward_cuda(float* out, const float* inp, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    gelu_forward_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

// dinout (N, OC): the gradient wrt GELU's output on entry, wrt its input inp on return;
// dbias (OC) += its column sums (the bias gradient of the layer before GELU)
void gelu_backward_bias_cuda(float* dinout, float* dbias, const float* inp, int N, int OC, cudaStream_t stream) {
    // one thread per column, OC = 4C of them: small blocks spread them over more SMs
    const int block_size = 64;
    gelu_backward_bias_kernel1<<<CEIL_DIV(OC, block_size), block_size, 0, stream>>>(dinout, dbias, inp, N, OC);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_GELU_CUH
