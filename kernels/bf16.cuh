/*
 * kernels/bf16.cuh — the storage types of the layer kernels, and whole buffers converted
 * between them.
 *
 * The fp32 backend stores every tensor as float; the bf16 one (DESIGN.md: bf16 weights and
 * activations, fp32 master weights, AdamW state and reductions) stores weights and activations
 * as bfloat16 and keeps in float what must not lose bits: the master weights, AdamW's m and v,
 * the parameters' gradients (sums over every token of the batch), the LayerNorms' mean and
 * rstd, and every sum inside a kernel (LayerNorm statistics, softmax, dot products, column
 * sums). A layer kernel is templated on floatX, the storage type of its activations and
 * weights: it converts each value it loads to float (exact: a bfloat16 is the top half of a
 * float), computes in float, and rounds only what it stores. floatX = float is the fp32
 * backend's kernel unchanged, the exact twin of the CPU, and floatX = bf16 computes the same
 * floats from the same inputs, so each bf16 output is the fp32 kernel's output rounded once
 * (test_cuda_bf16).
 *
 * Rounding to bf16 is to nearest, ties to even (__float2bfloat16_rn): the nearest bf16, off by
 * at most 2^-8 of the value (bf16 keeps 8 significant bits), deterministic (no random state;
 * two runs, and every process of a run, give the same bytes), and the copy of the weights a
 * pure function of the fp32 master. Stochastic rounding pays off where the bf16 weights are the
 * only copy and an update under half a bf16 ulp would vanish every step; here the update goes
 * into the fp32 master, where it stays until the master's rounding moves (kernels/adamw.cuh).
 */
#ifndef ZELO_KERNELS_BF16_CUH
#define ZELO_KERNELS_BF16_CUH

#include <cuda_bf16.h>
#include "kernels/common.cuh"

typedef __nv_bfloat16 bf16;

// a stored value as float: exact for both storage types (on the host too, for the tests)
__host__ __device__ __forceinline__ float to_float(float x) { return x; }
__host__ __device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }
// a float as the storage type T: itself, or rounded to the nearest bf16 (ties to even)
template <typename T> __host__ __device__ __forceinline__ T from_float(float x);
template <> __host__ __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __host__ __device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

// out (n) = inp (n) in out's type, one thread per entry
template <typename Tout, typename Tin>
__global__ void convert_kernel1(Tout* out, const Tin* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = from_float<Tout>(to_float(inp[i])); }
}

// out (n) = inp (n) rounded to bf16, to nearest, ties to even (the master weights' copy)
void float_to_bf16_cuda(bf16* out, const float* inp, size_t n, cudaStream_t stream) {
    if (n == 0) { return; }  // no grid of zero blocks
    const int block_size = 256;
    convert_kernel1<bf16, float><<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

// out (n) = inp (n) as floats, exactly
void bf16_to_float_cuda(float* out, const bf16* inp, size_t n, cudaStream_t stream) {
    if (n == 0) { return; }  // no grid of zero blocks
    const int block_size = 256;
    convert_kernel1<float, bf16><<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_BF16_CUH
