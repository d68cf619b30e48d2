/*
 * kernels/global_norm.cuh — the global L2 norm of the gradients and the clip to a maximum
 * norm (model.c bert_clip_grad_norm, torch.nn.utils.clip_grad_norm_'s rule).
 *
 * Deterministic: the squares are summed in double in fixed chunks of GLOBAL_NORM_CHUNK
 * floats (one block each, a fixed tree inside the block), then the chunks' sums one by one
 * in order by a single thread. The reference sums the same chunks, each sequentially, so
 * the two agree to double rounding, far below the float result's last bit.
 */
#ifndef ZELO_KERNELS_GLOBAL_NORM_CUH
#define ZELO_KERNELS_GLOBAL_NORM_CUH

#include "kernels/common.cuh"

#define GLOBAL_NORM_CHUNK 65536
#define GLOBAL_NORM_BLOCK_SIZE 512

// partial[b] = sum of x[i]^2 over chunk b, in double; one block per chunk
__global__ void global_norm_partial_kernel1(double* partial, const float* x, size_t n) {
    __shared__ double warp_sums[32];
    size_t begin = (size_t)blockIdx.x * GLOBAL_NORM_CHUNK;
    size_t end = begin + GLOBAL_NORM_CHUNK < n ? begin + GLOBAL_NORM_CHUNK : n;
    double sum = 0.0;
    for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x) { sum += (double)x[i] * x[i]; }
    sum = warp_sum_double(sum);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) { warp_sums[warp] = sum; }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int w = 0; w < (int)blockDim.x / 32; w++) { total += warp_sums[w]; }
        partial[blockIdx.x] = total;
    }
}

// out[0] = sum of partial (num_chunks), in order; one thread
__global__ void global_norm_final_kernel1(double* out, const double* partial, int num_chunks) {
    if (threadIdx.x != 0 || blockIdx.x != 0) { return; }
    double total = 0.0;
    for (int c = 0; c < num_chunks; c++) { total += partial[c]; }
    out[0] = total;
}

// x (n) *= max_norm / (norm + 1e-6) when that is below 1; norm = sqrt(*norm_squared)
__global__ void clip_kernel1(float* x, size_t n, const double* norm_squared, float max_norm) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) { return; }
    double coef = max_norm / (sqrt(norm_squared[0]) + 1e-6);
    if (coef < 1.0) { x[i] *= (float)coef; }
}

// the scratch global_norm_squared_cuda needs for n floats: this many doubles, one per chunk
static inline size_t global_norm_num_chunks(size_t n) { return CEIL_DIV(n, (size_t)GLOBAL_NORM_CHUNK); }

// norm_squared (1 double) = the sum of squares of x (n); partial: global_norm_num_chunks(n) doubles
void global_norm_squared_cuda(double* norm_squared, double* partial, const float* x, size_t n, cudaStream_t stream) {
    int num_chunks = (int)global_norm_num_chunks(n);
    global_norm_partial_kernel1<<<num_chunks, GLOBAL_NORM_BLOCK_SIZE, 0, stream>>>(partial, x, n);
    cudaCheck(cudaGetLastError());
    global_norm_final_kernel1<<<1, 32, 0, stream>>>(norm_squared, partial, num_chunks);
    cudaCheck(cudaGetLastError());
}

// scales x so that its norm (sqrt of *norm_squared, on the device) is at most max_norm;
// nothing when max_norm <= 0
void clip_cuda(float* x, size_t n, const double* norm_squared, float max_norm, cudaStream_t stream) {
    if (!(max_norm > 0.0f)) { return; }
    const int block_size = 256;
    clip_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(x, n, norm_squared, max_norm);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_GLOBAL_NORM_CUH
