/*
 * dev/bench_cuda_emu.cu — what the CUDA emulator (kernels/cuda_emu.h) costs: nanoseconds per
 * thread arriving at a __syncthreads, per lane of a __shfl_xor_sync, and the time of a
 * LayerNorm forward over 4096 x 768 in two common shapes (a warp per row; a block of 256 per
 * row). Prints wall and CPU seconds; `make build/bench_cuda_emu` (emulated) or any nvcc.
 * Every figure is the best of 3 runs; OMP_NUM_THREADS sets the threads running blocks.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <time.h>

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__global__ void barriers(int* out, int reps) {
    int acc = 0;
    for (int r = 0; r < reps; r++) { acc += r; __syncthreads(); }
    out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

__global__ void shuffles(float* out, int reps) {
    float v = (float)threadIdx.x;
    for (int r = 0; r < reps; r++) { v += __shfl_xor_sync(0xffffffffu, v, 1 + (r & 15)); }
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o /= 2) { v += __shfl_xor_sync(0xffffffffu, v, o); }
    return v;
}

// one warp per row of C
__global__ void layernorm_warp(float* out, const float* in, const float* w, const float* b, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) { return; }
    const float* x = in + (size_t)row * C;
    float s = 0.0f;
    for (int i = lane; i < C; i += 32) { s += x[i]; }
    float mean = warp_sum(s) / C;
    float v = 0.0f;
    for (int i = lane; i < C; i += 32) { v += (x[i] - mean) * (x[i] - mean); }
    float rstd = rsqrtf(warp_sum(v) / C + 1e-5f);
    for (int i = lane; i < C; i += 32) { out[(size_t)row * C + i] = (x[i] - mean) * rstd * w[i] + b[i]; }
}

// one block per row: warp sums, then the block's through shared memory
__global__ void layernorm_block(float* out, const float* in, const float* w, const float* b, int C) {
    __shared__ float part[32];
    const float* x = in + (size_t)blockIdx.x * C;
    int warps = blockDim.x / 32;
    float s = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) { s += x[i]; }
    s = warp_sum(s);
    if (threadIdx.x % 32 == 0) { part[threadIdx.x / 32] = s; }
    __syncthreads();
    float mean = 0.0f;
    for (int i = 0; i < warps; i++) { mean += part[i]; }
    mean /= C;
    __syncthreads();
    float v = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) { v += (x[i] - mean) * (x[i] - mean); }
    v = warp_sum(v);
    if (threadIdx.x % 32 == 0) { part[threadIdx.x / 32] = v; }
    __syncthreads();
    float var = 0.0f;
    for (int i = 0; i < warps; i++) { var += part[i]; }
    float rstd = rsqrtf(var / C + 1e-5f);
    for (int i = threadIdx.x; i < C; i += blockDim.x) { out[(size_t)blockIdx.x * C + i] = (x[i] - mean) * rstd * w[i] + b[i]; }
}

// best of 3 runs of the launch, wall and CPU seconds
#define TIME(label, per, launch) do { \
    double best_wall = 1e30, best_cpu = 1e30, count = (per); \
    for (int run = 0; run < 3; run++) { \
        double w0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID); \
        launch; \
        cudaDeviceSynchronize(); \
        double w = seconds(CLOCK_MONOTONIC) - w0, c = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0; \
        best_wall = w < best_wall ? w : best_wall; \
        best_cpu = c < best_cpu ? c : best_cpu; \
    } \
    if (count > 0) { printf("%-40s %8.1f ns wall %8.1f ns CPU\n", label, best_wall / count * 1e9, best_cpu / count * 1e9); } \
    else { printf("%-40s %8.3f s wall  %8.3f s CPU\n", label, best_wall, best_cpu); } \
} while (0)

int main(void) {
    const int blocks = 64, threads = 256, reps = 200, N = 4096, C = 768;
    int* d_int;
    float *x, *y, *w, *b;
    cudaMalloc(&d_int, blocks * threads * sizeof(int));
    cudaMalloc(&x, (size_t)N * C * sizeof(float));
    cudaMalloc(&y, (size_t)N * C * sizeof(float));
    cudaMalloc(&w, C * sizeof(float));
    cudaMalloc(&b, C * sizeof(float));
    cudaMemset(x, 0, (size_t)N * C * sizeof(float));
    cudaMemset(w, 0, C * sizeof(float));
    cudaMemset(b, 0, C * sizeof(float));
    double arrivals = (double)blocks * threads * reps;
    TIME("__syncthreads, per thread arriving", arrivals, (barriers<<<blocks, threads>>>(d_int, reps)));
    TIME("__shfl_xor_sync, per lane", arrivals, (shuffles<<<blocks, threads>>>((float*)d_int, reps)));
    TIME("LayerNorm 4096x768, a warp per row", 0, (layernorm_warp<<<N / 8, 256>>>(y, x, w, b, N, C)));
    TIME("LayerNorm 4096x768, 256 threads per row", 0, (layernorm_block<<<N, 256>>>(y, x, w, b, C)));
    printf("%s\n", cudaGetErrorString(cudaGetLastError()));
    return 0;
}
