/*
 * kernels/gelu.cuh — GELU in the exact erf form BERT uses, x Phi(x), and its backward
 * (model.c gelu_*) fused with the bias gradient of the fc layer before it. Phi(x) =
 * erfc(-x / sqrt 2) / 2 rather than (1 + erf(x / sqrt 2)) / 2: for negative x the latter is
 * a difference of nearly equal numbers and loses the relative accuracy that the reference
 * keeps by computing the tail directly.
 *
 * Templated on floatX, the storage type of the activations and their gradients (kernels/bf16.cuh):
 * float, or bf16 with the same float arithmetic; the bias gradient is float in both.
 */
#ifndef ZELO_KERNELS_GELU_CUH
#define ZELO_KERNELS_GELU_CUH

#include "kernels/bf16.cuh"

#define GELU_INV_SQRT2 0.70710678118654752f
#define GELU_INV_SQRT_2PI 0.39894228040143268f

__device__ __forceinline__ float normal_cdf_device(float x) { return 0.5f * erfcf(-x * GELU_INV_SQRT2); }

// out (n) = inp * Phi(inp)
template <typename floatX>
__global__ void gelu_forward_kernel1(floatX* out, const floatX* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = to_float(inp[i]);
        out[i] = from_float<floatX>(x * normal_cdf_device(x));
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
// unfused pair's (GELU's backward, then that kernel). Under bf16 it sums the gradient before
// its rounding to bf16, more exact than the unfused pair could. The rows go in chunks whose
// loads are all issued before any store (the compiler may not move a load above the previous
// row's store to dinout), so that a thread waits on memory once per chunk, not once per row
template <typename floatX>
__global__ void gelu_backward_bias_kernel1(floatX* dinout, float* dbias, const floatX* inp, int N, int OC) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= OC) { return; }
    float sum = 0.0f;
    for (int t0 = 0; t0 < N; t0 += GELU_BIAS_CHUNK) {
        float g[GELU_BIAS_CHUNK], x[GELU_BIAS_CHUNK];
        for (int r = 0; r < GELU_BIAS_CHUNK; r++) {
            // past the last row, the last row again: no branch between the loads
            size_t i = (size_t)min(t0 + r, N - 1) * OC + c;
            g[r] = to_float(dinout[i]);
            x[r] = to_float(inp[i]);
        }
        for (int r = 0; r < GELU_BIAS_CHUNK && t0 + r < N; r++) {
            float d = g[r] * gelu_derivative_device(x[r]);
            dinout[(size_t)(t0 + r) * OC + c] = from_float<floatX>(d);
            sum += d;
        }
    }
    dbias[c] += sum;
}

// floatX (float or bf16) deduced from the tensors' pointers, as for the launcher below
template <typename floatX>
void gelu_forward_cuda(floatX* out, const floatX* inp, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    gelu_forward_kernel1<floatX><<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

// dinout (N, OC): the gradient wrt GELU's output on entry, wrt its input inp on return;
// dbias (OC) += its column sums (the bias gradient of the layer before GELU)
template <typename floatX>
void gelu_backward_bias_cuda(floatX* dinout, float* dbias, const floatX* inp, int N, int OC, cudaStream_t stream) {
    // one thread per column, OC = 4C of them: small blocks spread them over more SMs
    const int block_size = 64;
    gelu_backward_bias_kernel1<floatX><<<CEIL_DIV(OC, block_size), block_size, 0, stream>>>(dinout, dbias, inp, N, OC);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_GELU_CUH
