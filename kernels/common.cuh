/*
 * kernels/common.cuh — what every CUDA layer shares: the *Check macros (file:line, then
 * exit non-zero; cuBLAS's and cuBLASLt's on a GPU only), CEIL_DIV, deterministic warp and
 * block sums, and the sequence lookup of a packed batch (model.h: tokens back to back,
 * seq_starts (S+1)).
 *
 * Every kernel here is plain CUDA that the project's emulator (kernels/cuda_emu.h) also
 * runs on the CPU: no inline PTX, no tensor cores, launches written out in full
 * (`kernel<<<grid, block, smem, stream>>>(args);`). Reductions never use float atomics:
 * a sum is always taken in the same order, so two runs give the same bytes.
 */
#ifndef ZELO_KERNELS_COMMON_CUH
#define ZELO_KERNELS_COMMON_CUH

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <cuda_runtime.h>

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

static inline void cuda_check(cudaError_t err, const char* file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "[CUDA ERROR] at %s:%d: %s\n", file, line, cudaGetErrorString(err));
        exit(EXIT_FAILURE);
    }
}
#define cudaCheck(err) (cuda_check((err), __FILE__, __LINE__))

#ifndef CUDA_EMULATOR
#include <cublas_v2.h>
static inline void cublas_check(cublasStatus_t status, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "[cuBLAS ERROR] at %s:%d: status %d\n", file, line, (int)status);
        exit(EXIT_FAILURE);
    }
}
#define cublasCheck(status) (cublas_check((status), __FILE__, __LINE__))
// cuBLASLt (the bf16 products, kernels/matmul.cuh) answers with cuBLAS's status codes
#include <cublasLt.h>
static inline void cublaslt_check(cublasStatus_t status, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "[cuBLASLt ERROR] at %s:%d: status %d\n", file, line, (int)status);
        exit(EXIT_FAILURE);
    }
}
#define cublasLtCheck(status) (cublaslt_check((status), __FILE__, __LINE__))
#endif

// the sum of v over the 32 lanes of a full warp, in a fixed butterfly order; every lane
// gets the same result
__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) { v += __shfl_xor_sync(0xffffffffu, v, offset); }
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset /= 2) { v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset)); }
    return v;
}
__device__ __forceinline__ double warp_sum_double(double v) {
    for (int offset = 16; offset > 0; offset /= 2) { v += __shfl_xor_sync(0xffffffffu, v, offset); }
    return v;
}

// the sum (or max) of v over the whole block, returned to every thread. blockDim.x must be a
// multiple of 32, at most 1024; every thread of the block must call it (it has barriers).
// shared: 32 floats of the caller's, free on entry and free again on return.
__device__ __forceinline__ float block_reduce(float v, float* shared, int is_max) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    v = is_max ? warp_max(v) : warp_sum(v);
    if (lane == 0) { shared[warp] = v; }
    __syncthreads();
    float w = lane < num_warps ? shared[lane] : (is_max ? -INFINITY : 0.0f);
    w = is_max ? warp_max(w) : warp_sum(w);
    __syncthreads();  // shared may be reused by the caller's next reduction
    return w;
}

// the sequence s that token t belongs to: seq_starts[s] <= t < seq_starts[s + 1]
__device__ __forceinline__ int sequence_of(const int* seq_starts, int S, int t) {
    int lo = 0, hi = S - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (seq_starts[mid] <= t) { lo = mid; } else { hi = mid - 1; }
    }
    return lo;
}

#endif // ZELO_KERNELS_COMMON_CUH
