/*
 * kernels/gelu.cuh — GELU in the exact erf form BERT uses, x Phi(x), and its backward
 * (model.c gelu_*). Phi(x) = erfc(-x / sqrt 2) / 2 rather than (1 + erf(x / sqrt 2)) / 2:
 * for negative x the latter is a difference of nearly equal numbers and loses the
 * relative accuracy that the reference keeps by computing the tail directly.
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

// dinout (n): the gradient wrt GELU's output on entry, wrt its input inp on return
__global__ void gelu_backward_inplace_kernel1(float* dinout, const float* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = inp[i];
        float pdf = GELU_INV_SQRT_2PI * expf(-0.5f * x * x);
        dinout[i] *= normal_cdf_device(x) + x * pdf;
    }
}

void gelu_forward_cuda(float* out, const float* inp, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    gelu_forward_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

void gelu_backward_inplace_cuda(float* dinout, const float* inp, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    gelu_backward_inplace_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(dinout, inp, n);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_GELU_CUH
