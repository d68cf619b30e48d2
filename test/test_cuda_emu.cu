/*
 * test/test_cuda_emu.cu — tests of the CUDA emulator (kernels/cuda_emu.h) through small
 * kernels. The expected values come from the CUDA programming guide's definitions, written
 * out sequentially here, never from the emulator. The same file compiles unchanged with nvcc
 * and then checks the same definitions on a GPU; the checks of emulator-only behaviour
 * (poison, stuck blocks, schedule order, copy directions) are under CUDA_EMULATOR.
 * `test_cuda_emu --race` and `--clean` run one kernel each, for test/test_cuda_emu_tsan.sh.
 */
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test/test.h"

#define cudaOk(call) do { cudaError_t e_ = (call); CHECK(e_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(e_)); } while (0)

// ---- barriers ----

// sum of each block's inputs by a tree in shared memory: wrong without the barriers
__global__ void block_sum(int* out, const int* in) {
    __shared__ int s[256];
    int t = threadIdx.y * blockDim.x + threadIdx.x, n = blockDim.x * blockDim.y;
    s[t] = in[blockIdx.x * n + t];
    __syncthreads();
    for (int stride = n / 2; stride > 0; stride /= 2) {
        if (t < stride) { s[t] += s[t + stride]; }
        __syncthreads();
    }
    if (t == 0) { out[blockIdx.x] = s[0]; }
}

// the same tree without any barrier: a race
__global__ void block_sum_racy(int* out, const int* in) {
    __shared__ int s[256];
    int t = threadIdx.x;
    s[t] = in[blockIdx.x * blockDim.x + t];
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) { s[t] += s[t + stride]; }
    }
    if (t == 0) { out[blockIdx.x] = s[0]; }
}

// each thread reads its right neighbour's slot, which that neighbour may not have written yet
__global__ void racy_neighbor(int* out, const int* in) {
    __shared__ int s[256];
    int t = threadIdx.x;
    s[t] = in[t];
    out[t] = s[(t + 1) % blockDim.x];
}

__global__ void barrier_variants(int* out) {
    int t = threadIdx.x;
    out[4 * t + 0] = __syncthreads_count(t % 3 == 0);
    out[4 * t + 1] = __syncthreads_and(t < 1000);
    out[4 * t + 2] = __syncthreads_and(t != 5);
    out[4 * t + 3] = __syncthreads_or(t == 7);
}

static void test_barriers(void) {
    const int blocks = 6, n = 256;
    int h_in[blocks * n], want[blocks], got[blocks];
    for (int b = 0; b < blocks; b++) {
        want[b] = 0;
        for (int i = 0; i < n; i++) {
            h_in[b * n + i] = (b * n + i) * 7919 % 1000 - 300;
            want[b] += h_in[b * n + i];
        }
    }
    int *d_in, *d_out;
    cudaOk(cudaMalloc(&d_in, sizeof(h_in)));
    cudaOk(cudaMalloc(&d_out, sizeof(got)));
    cudaOk(cudaMemcpy(d_in, h_in, sizeof(h_in), cudaMemcpyHostToDevice));
    block_sum<<<blocks, n>>>(d_out, d_in);
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int b = 0; b < blocks; b++) { bad += got[b] != want[b]; }
    CHECK(bad == 0, "block_sum: %d of %d blocks wrong (block 0: %d, want %d)", bad, blocks, got[0], want[0]);
    // a 2D block (16 x 16): threadIdx.y counts rows of blockDim.x threads
    block_sum<<<blocks, dim3(16, 16)>>>(d_out, d_in);
    cudaOk(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int b = 0; b < blocks; b++) { bad += got[b] != want[b]; }
    CHECK(bad == 0, "block_sum on 16x16 blocks: %d of %d blocks wrong", bad, blocks);
#ifdef CUDA_EMULATOR
    // the emulator runs thread 0 to its end before thread 1 starts: without barriers thread 0
    // adds slots nobody has written yet
    block_sum_racy<<<blocks, n>>>(d_out, d_in);
    cudaOk(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    CHECK(got[0] != want[0], "block_sum without barriers gave the right sum %d: the barrier test shows nothing", got[0]);
#endif
    int h_var[4 * 64], *d_var;
    cudaOk(cudaMalloc(&d_var, sizeof(h_var)));
    barrier_variants<<<1, 64>>>(d_var);
    cudaOk(cudaMemcpy(h_var, d_var, sizeof(h_var), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int t = 0; t < 64; t++) {
        bad += h_var[4 * t] != 22 || h_var[4 * t + 1] != 1 || h_var[4 * t + 2] != 0 || h_var[4 * t + 3] != 1;
    }
    CHECK(bad == 0, "__syncthreads_count/and/or: %d threads wrong (thread 0: %d %d %d %d)", bad, h_var[0], h_var[1], h_var[2], h_var[3]);
    cudaOk(cudaFree(d_var));
    cudaOk(cudaFree(d_in));
    cudaOk(cudaFree(d_out));
}

// ---- warp collectives ----

enum { N_CASES = 15 };
__device__ int value_of(int t) { return 1000 * (t / 32) + 3 * (t % 32) + 1; }

// out[c * n + t]: case c of thread t, as numbered in shuffle_reference
__global__ void shuffles(int* out) {
    int t = threadIdx.x, n = blockDim.x, lane = t % 32, v = value_of(t);
    const unsigned full = 0xffffffffu;
    out[0 * n + t] = __shfl_sync(full, v, (lane * 7 + 3) % 32);
    out[1 * n + t] = __shfl_sync(full, v, 5 + 8 * lane, 8);
    out[2 * n + t] = __shfl_up_sync(full, v, 3);
    out[3 * n + t] = __shfl_up_sync(full, v, 2, 16);
    out[4 * n + t] = __shfl_down_sync(full, v, 5);
    out[5 * n + t] = __shfl_down_sync(full, v, 1, 4);
    out[6 * n + t] = __shfl_xor_sync(full, v, 9);
    out[7 * n + t] = __shfl_xor_sync(full, v, 12, 8);
    // two halves of the warp in two groups at once, each with its own mask and operation
    if (lane < 16) {
        out[8 * n + t] = __shfl_xor_sync(0x0000ffffu, v, 4);
    } else {
        out[8 * n + t] = __shfl_down_sync(0xffff0000u, v, 2, 16);
    }
    // odd lanes shuffle among themselves while even lanes vote
    if (lane % 2) {
        out[9 * n + t] = __shfl_xor_sync(0xaaaaaaaau, v, 2);
    } else {
        out[9 * n + t] = (int)__ballot_sync(0x55555555u, lane % 4 == 0);
    }
    out[10 * n + t] = (int)__ballot_sync(full, v % 3 == 0 || lane == 31);
    out[11 * n + t] = __any_sync(full, lane == 17) + 2 * __all_sync(full, lane < 31) + 4 * __all_sync(full, v > 0);
    // a float butterfly sum and a double shuffle (8 bytes)
    float f = (float)v;
    for (int o = 16; o > 0; o /= 2) { f += __shfl_xor_sync(full, f, o); }
    out[12 * n + t] = (int)f;
    double d = (double)v * 0.5;
    out[13 * n + t] = (int)(2.0 * __shfl_down_sync(full, d, 1));
    // __syncwarp orders the warp's shared-memory writes before the reads of other lanes
    __shared__ int s[64];
    s[t] = v;
    __syncwarp();
    out[14 * n + t] = s[(t / 32) * 32 + (lane + 1) % 32];
}

// the programming guide's definitions, lane by lane; val(t) as value_of
static int ref_value(int t) { return 1000 * (t / 32) + 3 * (t % 32) + 1; }
static int shuffle_reference(int c, int t) {
    int lane = t % 32, w0 = t - lane;
    int v = ref_value(t);
    switch (c) {
    case 0: return ref_value(w0 + (lane * 7 + 3) % 32);
    case 1: return ref_value(w0 + lane / 8 * 8 + 5);                               // srcLane modulo width, in the lane's segment
    case 2: return lane >= 3 ? ref_value(t - 3) : v;                               // below the segment: own value
    case 3: return lane % 16 >= 2 ? ref_value(t - 2) : v;
    case 4: return lane + 5 < 32 ? ref_value(t + 5) : v;
    case 5: return lane % 4 + 1 < 4 ? ref_value(t + 1) : v;
    case 6: return ref_value(w0 + (lane ^ 9));
    case 7: return (lane ^ 12) < lane / 8 * 8 + 8 ? ref_value(w0 + (lane ^ 12)) : v; // a later segment: own value
    case 8: return lane < 16 ? ref_value(w0 + (lane ^ 4)) : (lane % 16 + 2 < 16 ? ref_value(t + 2) : v);
    case 9: return lane % 2 ? ref_value(w0 + (lane ^ 2)) : 0x11111111;
    case 10: {
        unsigned b = 0;
        for (int l = 0; l < 32; l++) { if (ref_value(w0 + l) % 3 == 0 || l == 31) { b |= 1u << l; } }
        return (int)b;
    }
    case 11: return 1 + 0 + 4;
    case 12: {
        int s = 0;
        for (int l = 0; l < 32; l++) { s += ref_value(w0 + l); }
        return s;
    }
    case 13: return lane + 1 < 32 ? ref_value(t + 1) : v;
    default: return ref_value(w0 + (lane + 1) % 32);
    }
}

// a block of 48 threads: its second warp has 16 lanes, so collectives name only those
__global__ void partial_warp(int* out) {
    int t = threadIdx.x;
    unsigned mask = t < 32 ? 0xffffffffu : 0x0000ffffu;
    out[t] = __shfl_down_sync(mask, value_of(t), 4, t < 32 ? 32 : 16);
}

static void test_shuffles(void) {
    const int n = 64;
    int* d_out;
    int* got = (int*)malloc(sizeof(int) * N_CASES * n);
    cudaOk(cudaMalloc(&d_out, sizeof(int) * N_CASES * n));
    shuffles<<<3, n>>>(d_out);
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(got, d_out, sizeof(int) * N_CASES * n, cudaMemcpyDeviceToHost));
    for (int c = 0; c < N_CASES; c++) {
        int bad = 0, first = -1;
        for (int t = 0; t < n; t++) {
            if (got[c * n + t] != shuffle_reference(c, t)) { bad++; if (first < 0) { first = t; } }
        }
        CHECK(bad == 0, "shuffle case %d: %d of %d threads wrong (thread %d: %d, want %d)", c, bad, n, first,
              first < 0 ? 0 : got[c * n + first], first < 0 ? 0 : shuffle_reference(c, first));
    }
    partial_warp<<<1, 48>>>(d_out);
    cudaOk(cudaMemcpy(got, d_out, sizeof(int) * 48, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int t = 0; t < 48; t++) {
        int lane = t % 32, width = t < 32 ? 32 : 16;
        int want = lane % width + 4 < width ? ref_value(t + 4) : ref_value(t);
        bad += got[t] != want;
    }
    CHECK(bad == 0, "shuffle in a 16-lane warp: %d threads wrong", bad);
    cudaOk(cudaFree(d_out));
    free(got);
}

// ---- dynamic shared memory, templates, indices, parameters ----

// reverses each block's slice through dynamic shared memory
template <typename T, int SCALE>
__global__ void reverse_block(T* out, const T* in) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* s = (T*)smem_raw;
    int t = threadIdx.x, n = blockDim.x, base = blockIdx.x * n;
    s[n - 1 - t] = in[base + t];
    __syncthreads();
    out[base + t] = s[t] * (T)SCALE;
}

// the first word of dynamic shared memory before anyone wrote it
__global__ void read_fresh_smem(unsigned* out) {
    extern __shared__ unsigned fresh[];
    out[blockIdx.x * blockDim.x + threadIdx.x] = fresh[threadIdx.x];
}

// fills all of a large dynamic shared buffer, then sums it
__global__ void big_smem(float* out, int words) {
    extern __shared__ float big[];
    for (int i = threadIdx.x; i < words; i += blockDim.x) { big[i] = 1.0f; }
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (int i = 0; i < words; i++) { s += big[i]; }
        out[0] = s;
    }
}

// every thread of a 3D grid of 3D blocks writes its global linear index once
__global__ void indices_3d(int* out) {
    int bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int per_block = blockDim.x * blockDim.y * blockDim.z;
    atomicAdd(&out[bx * per_block + tx], 1);
}

// each thread owns a copy of its parameters
__global__ void own_params(int* out, int k) {
    out += threadIdx.x;
    k += threadIdx.x;
    *out = k;
}

// static shared memory belongs to a block: blocks run at once must not see each other's
__global__ void shared_per_block(int* mismatches) {
    __shared__ int s[128];
    s[threadIdx.x] = blockIdx.x;
    __syncthreads();
    for (int i = 0; i < 128; i++) {
        if (s[i] != (int)blockIdx.x) { atomicAdd(mismatches, 1); }
    }
}

static void test_memory_and_launches(void) {
    const int n = 128, blocks = 4;
    float h_in[n * blocks], h_out[n * blocks];
    for (int i = 0; i < n * blocks; i++) { h_in[i] = (float)(i * 3 - 100); }
    float *d_in, *d_out;
    cudaOk(cudaMalloc(&d_in, sizeof(h_in)));
    cudaOk(cudaMalloc(&d_out, sizeof(h_out)));
    cudaOk(cudaMemcpy(d_in, h_in, sizeof(h_in), cudaMemcpyHostToDevice));
    reverse_block<float, 2><<<blocks, n, n * sizeof(float)>>>(d_out, d_in);
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(h_out, d_out, sizeof(h_out), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int b = 0; b < blocks; b++) {
        for (int t = 0; t < n; t++) { bad += h_out[b * n + t] != 2.0f * h_in[b * n + n - 1 - t]; }
    }
    CHECK(bad == 0, "reverse_block<float, 2> through dynamic shared memory: %d wrong", bad);

    // over 48 KB only after cudaFuncSetAttribute raised the kernel's limit
    int words = 96 * 1024 / 4;
    big_smem<<<1, 256, words * 4>>>(d_out, words);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "96 KB of dynamic shared memory launched without the attribute");
    cudaOk(cudaFuncSetAttribute(big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, words * 4));
    big_smem<<<1, 256, words * 4>>>(d_out, words);
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(h_out, d_out, 4, cudaMemcpyDeviceToHost));
    CHECK(h_out[0] == (float)words, "big_smem: sum %g, want %d", h_out[0], words);

    int *d_cnt, h_cnt[2 * 3 * 4 * 4 * 2 * 3];
    int total = (int)(sizeof(h_cnt) / sizeof(int));
    cudaOk(cudaMalloc(&d_cnt, sizeof(h_cnt)));
    cudaOk(cudaMemset(d_cnt, 0, sizeof(h_cnt)));
    indices_3d<<<dim3(2, 3, 4), dim3(4, 2, 3)>>>(d_cnt);
    cudaOk(cudaMemcpy(h_cnt, d_cnt, sizeof(h_cnt), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int i = 0; i < total; i++) { bad += h_cnt[i] != 1; }
    CHECK(bad == 0, "3D grid of 3D blocks: %d of %d threads not run exactly once", bad, total);

    own_params<<<1, 32>>>(d_cnt, 100);
    cudaOk(cudaMemcpy(h_cnt, d_cnt, 32 * sizeof(int), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int t = 0; t < 32; t++) { bad += h_cnt[t] != 100 + t; }
    CHECK(bad == 0, "parameters changed by one thread leak to others: %d wrong", bad);

    cudaOk(cudaMemset(d_cnt, 0, sizeof(int)));
    shared_per_block<<<64, 128>>>(d_cnt);
    cudaOk(cudaMemcpy(h_cnt, d_cnt, sizeof(int), cudaMemcpyDeviceToHost));
    CHECK(h_cnt[0] == 0, "static shared memory seen across blocks: %d mismatches", h_cnt[0]);

#ifdef CUDA_EMULATOR
    // fresh device memory and fresh dynamic shared memory read as 0xFF bytes (NaN)
    unsigned char* d_fresh;
    unsigned char h_fresh[1000];
    cudaOk(cudaMalloc(&d_fresh, sizeof(h_fresh)));
    cudaOk(cudaMemcpy(h_fresh, d_fresh, sizeof(h_fresh), cudaMemcpyDeviceToHost));
    bad = 0;
    for (size_t i = 0; i < sizeof(h_fresh); i++) { bad += h_fresh[i] != 0xff; }
    CHECK(bad == 0, "cudaMalloc: %d of %zu bytes not 0xFF", bad, sizeof(h_fresh));
    float fresh_f;
    memcpy(&fresh_f, h_fresh, 4);
    CHECK(isnan(fresh_f), "fresh device memory read as float is %g, not NaN", fresh_f);
    unsigned h_words[2 * 64];
    unsigned* d_words = (unsigned*)d_fresh;
    // the first block writes every word of the buffer: the second must see the poison again
    read_fresh_smem<<<1, 64, 64 * 4>>>(d_words);
    reverse_block<float, 1><<<1, 64, 64 * 4>>>((float*)d_words, (const float*)d_in);
    read_fresh_smem<<<2, 64, 64 * 4>>>(d_words);
    cudaOk(cudaMemcpy(h_words, d_words, sizeof(h_words), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int i = 0; i < 2 * 64; i++) { bad += h_words[i] != 0xffffffffu; }
    CHECK(bad == 0, "dynamic shared memory: %d of 128 words not poisoned at the start of a block", bad);
    cudaOk(cudaFree(d_fresh));
#endif
    cudaOk(cudaFree(d_cnt));
    cudaOk(cudaFree(d_in));
    cudaOk(cudaFree(d_out));
}

// ---- atomics ----

struct Counters {
    float fsum;
    int isum, imax, imin, cas_count, exch, sub;
    unsigned usum, umax;
    unsigned long long ullsum;
    double dsum;
};

__global__ void atomics(Counters* c) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(&c->fsum, 0.5f);
    atomicAdd(&c->isum, t);
    atomicAdd(&c->usum, 2u);
    atomicAdd(&c->ullsum, 3ull);
    atomicAdd(&c->dsum, 0.25);
    atomicMax(&c->imax, (t * 37) % 1001 - 500);
    atomicMin(&c->imin, (t * 37) % 1001 - 500);
    atomicMax(&c->umax, (unsigned)t * 3u);
    atomicSub(&c->sub, 2);
    atomicExch(&c->exch, 7);
    // an increment built from compare-and-swap, retried until it wins
    int old = 0, seen;
    while ((seen = atomicCAS(&c->cas_count, old, old + 1)) != old) { old = seen; }
}

static void test_atomics(void) {
    const int blocks = 8, n = 256, total = blocks * n;
    Counters h = {0.0f, 0, -1000000, 1000000, 0, 0, 0, 0u, 0u, 0ull, 0.0}, *d;
    cudaOk(cudaMalloc(&d, sizeof(Counters)));
    cudaOk(cudaMemcpy(d, &h, sizeof(Counters), cudaMemcpyHostToDevice));
    atomics<<<blocks, n>>>(d);
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(&h, d, sizeof(Counters), cudaMemcpyDeviceToHost));
    int want_max = -1000000, want_min = 1000000;
    for (int t = 0; t < total; t++) {
        int v = (t * 37) % 1001 - 500;
        want_max = v > want_max ? v : want_max;
        want_min = v < want_min ? v : want_min;
    }
    CHECK(h.fsum == 0.5f * total, "atomicAdd(float): %g, want %g", h.fsum, 0.5 * total);
    CHECK(h.isum == total * (total - 1) / 2, "atomicAdd(int): %d", h.isum);
    CHECK(h.usum == 2u * total && h.ullsum == 3ull * total, "atomicAdd(unsigned, ull): %u %llu", h.usum, h.ullsum);
    CHECK(h.dsum == 0.25 * total, "atomicAdd(double): %g", h.dsum);
    CHECK(h.imax == want_max && h.imin == want_min, "atomicMax/Min(int): %d %d, want %d %d", h.imax, h.imin, want_max, want_min);
    CHECK(h.umax == 3u * (total - 1), "atomicMax(unsigned): %u", h.umax);
    CHECK(h.cas_count == total, "atomicCAS increments: %d, want %d", h.cas_count, total);
    CHECK(h.exch == 7 && h.sub == -2 * total, "atomicExch/atomicSub: %d %d", h.exch, h.sub);
    cudaOk(cudaFree(d));
}

// ---- launch limits and errors ----

__global__ void write_one(int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = 1; }

static void test_launch_limits(void) {
    int* d;
    cudaOk(cudaMalloc(&d, 4096 * sizeof(int)));
    cudaOk(cudaMemset(d, 0, 4096 * sizeof(int)));
    struct { dim3 grid, block; size_t smem; cudaError_t want; const char* what; } cases[] = {
        {dim3(1), dim3(1025), 0, cudaErrorInvalidConfiguration, "1025 threads"},
        {dim3(1), dim3(32, 33), 0, cudaErrorInvalidConfiguration, "32 x 33 threads"},
        {dim3(1), dim3(1, 1, 65), 0, cudaErrorInvalidConfiguration, "block z 65"},
        {dim3(1, 65536), dim3(1), 0, cudaErrorInvalidConfiguration, "grid y 65536"},
        {dim3(1, 1, 65536), dim3(1), 0, cudaErrorInvalidConfiguration, "grid z 65536"},
        {dim3(0), dim3(32), 0, cudaErrorInvalidConfiguration, "empty grid"},
        {dim3(1), dim3(0), 0, cudaErrorInvalidConfiguration, "empty block"},
        {dim3(1), dim3(32), 48 * 1024 + 4, cudaErrorInvalidValue, "48 KB + 4 of shared memory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_one<<<cases[i].grid, cases[i].block, cases[i].smem>>>(d);
        cudaError_t peek = cudaPeekAtLastError();
        cudaError_t got = cudaGetLastError();
        CHECK(got == cases[i].want && peek == got, "launch with %s: %s (peek %s), want %s", cases[i].what,
              cudaGetErrorName(got), cudaGetErrorName(peek), cudaGetErrorName(cases[i].want));
        CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError did not reset after %s", cases[i].what);
    }
    int h[4096], ran = 0;
    cudaOk(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost));
    for (int i = 0; i < 4096; i++) { ran += h[i]; }
    CHECK(ran == 0, "a refused launch ran %d threads", ran);
    // the largest legal shapes run
    write_one<<<1, 1024, 48 * 1024>>>(d);
    write_one<<<dim3(1, 65535), dim3(1)>>>(d);
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost));
    ran = 0;
    for (int i = 0; i < 1024; i++) { ran += h[i]; }
    CHECK(ran == 1024, "1024 threads with 48 KB: %d ran", ran);
    cudaOk(cudaFree(d));
}

// ---- copies, streams, events, device ----

__global__ void add_one(float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { x[i] += 1.0f; }
}

static void test_runtime(void) {
    const int n = 1000;
    float a[n], b[n], c[n];
    for (int i = 0; i < n; i++) { a[i] = (float)i; b[i] = -1.0f; }
    float *d1, *d2, *pinned;
    cudaOk(cudaMalloc(&d1, sizeof(a)));
    cudaOk(cudaMalloc(&d2, sizeof(a)));
    cudaOk(cudaMallocHost(&pinned, sizeof(a)));
    cudaOk(cudaMemcpy(d1, a, sizeof(a), cudaMemcpyHostToDevice));
    cudaOk(cudaMemcpy(d2, d1, sizeof(a), cudaMemcpyDeviceToDevice));
    cudaOk(cudaMemcpy(pinned, d2, sizeof(a), cudaMemcpyDeviceToHost));
    cudaOk(cudaMemcpy(b, pinned, sizeof(a), cudaMemcpyHostToHost));
    CHECK(memcmp(a, b, sizeof(a)) == 0, "H2D, D2D, D2H, H2H copies changed the data");
    cudaStream_t s;
    cudaEvent_t start, stop;
    cudaOk(cudaStreamCreate(&s));
    cudaOk(cudaEventCreate(&start));
    cudaOk(cudaEventCreate(&stop));
    cudaOk(cudaEventRecord(start, s));
    cudaOk(cudaMemcpyAsync(d2, a, sizeof(a), cudaMemcpyDefault, s));
    add_one<<<(n + 255) / 256, 256, 0, s>>>(d2, n);
    cudaOk(cudaMemsetAsync(d1, 0, sizeof(a), s));
    cudaOk(cudaMemcpyAsync(c, d2, sizeof(a), cudaMemcpyDeviceToHost, s));
    cudaOk(cudaEventRecord(stop, s));
    cudaOk(cudaEventSynchronize(stop));
    cudaOk(cudaStreamSynchronize(s));
    int bad = 0;
    for (int i = 0; i < n; i++) { bad += c[i] != a[i] + 1.0f; }
    CHECK(bad == 0, "copy, kernel and copy back on a stream: %d wrong", bad);
    cudaOk(cudaMemcpy(b, d1, sizeof(a), cudaMemcpyDeviceToHost));
    CHECK(b[0] == 0.0f && b[n - 1] == 0.0f, "cudaMemsetAsync left %g", b[0]);
    float ms = -1.0f;
    cudaOk(cudaEventElapsedTime(&ms, start, stop));
    CHECK(ms >= 0.0f && ms < 10000.0f, "elapsed time %g ms", ms);
    cudaEvent_t never;
    cudaOk(cudaEventCreate(&never));
    CHECK(cudaEventElapsedTime(&ms, start, never) != cudaSuccess, "elapsed time to an event never recorded");
    (void)cudaGetLastError();
    cudaOk(cudaEventDestroy(never));
    cudaOk(cudaEventDestroy(start));
    cudaOk(cudaEventDestroy(stop));
    cudaOk(cudaStreamDestroy(s));
    cudaOk(cudaDeviceSynchronize());

    int count = 0;
    cudaOk(cudaGetDeviceCount(&count));
    CHECK(count >= 1, "cudaGetDeviceCount: %d", count);
    cudaOk(cudaSetDevice(0));
    cudaDeviceProp p;
    cudaOk(cudaGetDeviceProperties(&p, 0));
    CHECK(p.maxThreadsPerBlock == 1024 && p.warpSize == 32 && p.sharedMemPerBlock == 48 * 1024,
          "device properties: %d threads, warp %d, %zu bytes of shared memory", p.maxThreadsPerBlock, p.warpSize, p.sharedMemPerBlock);
    CHECK(strcmp(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument") == 0, "error string: %s",
          cudaGetErrorString(cudaErrorInvalidValue));
#ifdef CUDA_EMULATOR
    CHECK(count == 1 && strstr(p.name, "emulator") != NULL, "emulated device: %d devices, name %s", count, p.name);
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice, "cudaSetDevice(1) accepted");
    // copies whose kind contradicts where the pointers are
    CHECK(cudaMemcpy(b, a, sizeof(a), cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "H2D into host memory accepted");
    CHECK(cudaMemcpy(d1, d2, sizeof(a), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "D2H into device memory accepted");
    CHECK(cudaMemcpy(d1, a, sizeof(a), cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue, "D2D from host memory accepted");
    CHECK(cudaMemcpy(d1, a, sizeof(a) + 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "H2D past the allocation's end accepted");
    CHECK(cudaMemcpy(b, a, sizeof(a), (cudaMemcpyKind)7) == cudaErrorInvalidMemcpyDirection, "copy kind 7 accepted");
    CHECK(cudaMemset(b, 0, sizeof(b)) == cudaErrorInvalidValue, "cudaMemset of host memory accepted");
    CHECK(cudaFree(b) == cudaErrorInvalidValue, "cudaFree of host memory accepted");
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "the last failed call is not the last error");
#endif
    cudaOk(cudaFreeHost(pinned));
    cudaOk(cudaFree(d1));
    cudaOk(cudaFree(d2));
}

// ---- the toolkit's bfloat16, the math functions, qualifiers ----

__constant__ float scale_by[4];

__device__ __noinline__ float scaled(float x, int i) { return x * scale_by[i % 4]; }

__global__ void __launch_bounds__(256, 2) apply_scale(float* x) { x[threadIdx.x] = scaled(x[threadIdx.x], threadIdx.x); }

__global__ void no_parameters(void) {}

__global__ void bf16_ops(float* out) {
    __nv_bfloat16 a = __float2bfloat16(1.5f), b = __float2bfloat16(-0.25f);
    __nv_bfloat162 two = __floats2bfloat162_rn(3.0f, 0.5f);
    float2 f = __bfloat1622float2(two);
    out[0] = __bfloat162float(__hadd(a, b));
    out[1] = __bfloat162float(a * b);
    out[2] = f.x + f.y;
}

__global__ void to_bf16(float* out, const float* in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = __bfloat162float(__float2bfloat16(in[i])); }
}

__global__ void math_fns(float* out, float x) {
    out[0] = rsqrtf(x);
    out[1] = __expf(x);
    out[2] = __fdividef(x, 3.0f);
    out[3] = fmaxf(x, 5.0f) + fminf(x, 5.0f);
    out[4] = erff(x) + erfcf(x);
    out[5] = tanhf(x);
    out[6] = (float)(min(3, 4) + max(2u, 7u));
    out[7] = __saturatef(x) + __int_as_float(__float_as_int(x));
}

// round to nearest even on the upper 16 bits: bfloat16's definition
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static void test_types_and_math(void) {
    const int n = 7;
    float h_in[n] = {1.0f, 1.00390625f, 1.01171875f, -3.14159265f, 1e-20f, 65504.0f, 0.1f}, h_out[n];
    float *d_in, *d_out;
    cudaOk(cudaMalloc(&d_in, sizeof(h_in)));
    cudaOk(cudaMalloc(&d_out, 8 * sizeof(float)));
    cudaOk(cudaMemcpy(d_in, h_in, sizeof(h_in), cudaMemcpyHostToDevice));
    to_bf16<<<1, 32>>>(d_out, d_in, n);
    cudaOk(cudaMemcpy(h_out, d_out, sizeof(h_out), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < n; i++) { bad += h_out[i] != bf16_round(h_in[i]); }
    CHECK(bad == 0, "float -> bfloat16 -> float: %d of %d wrong (1.01171875 -> %.9g)", bad, n, h_out[2]);
    float m[8];
    math_fns<<<1, 1>>>(d_out, 2.0f);
    cudaOk(cudaMemcpy(m, d_out, sizeof(m), cudaMemcpyDeviceToHost));
    // fast intrinsics: about 2 ulp on a GPU
    CHECK(fabsf(m[0] - 0.70710678f) < 1e-6f && fabsf(m[1] - 7.3890561f) < 1e-5f && fabsf(m[2] - 0.66666667f) < 1e-6f,
          "rsqrtf, __expf, __fdividef: %g %g %g", m[0], m[1], m[2]);
    CHECK(m[3] == 7.0f && fabsf(m[4] - 1.0f) < 1e-6f && fabsf(m[5] - 0.96402758f) < 1e-6f && m[6] == 10.0f && m[7] == 3.0f,
          "fmaxf+fminf, erff+erfcf, tanhf, min+max, __saturatef: %g %g %g %g %g", m[3], m[4], m[5], m[6], m[7]);
    float h_scale[4] = {1.0f, 2.0f, -1.0f, 0.5f}, h_x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[4];
    cudaOk(cudaMemcpyToSymbol(scale_by, h_scale, sizeof(h_scale)));
    cudaOk(cudaMemcpyFromSymbol(back, scale_by, sizeof(back)));
    cudaOk(cudaMemcpy(d_out, h_x, sizeof(h_x), cudaMemcpyHostToDevice));
    apply_scale<<<1, 8>>>(d_out);
    no_parameters<<<2, 32>>>();
    cudaOk(cudaGetLastError());
    cudaOk(cudaMemcpy(h_x, d_out, sizeof(h_x), cudaMemcpyDeviceToHost));
    CHECK(memcmp(back, h_scale, sizeof(back)) == 0 && h_x[0] == 1.0f && h_x[1] == 4.0f && h_x[2] == -3.0f && h_x[7] == 4.0f,
          "__constant__ through cudaMemcpyToSymbol and a __noinline__ function: %g %g %g %g", h_x[0], h_x[1], h_x[2], h_x[7]);
    bf16_ops<<<1, 1>>>(d_out);
    cudaOk(cudaMemcpy(m, d_out, 3 * sizeof(float), cudaMemcpyDeviceToHost));
    CHECK(m[0] == 1.25f && m[1] == -0.375f && m[2] == 3.5f, "bfloat16 add, multiply, pair: %g %g %g", m[0], m[1], m[2]);
    cudaOk(cudaFree(d_in));
    cudaOk(cudaFree(d_out));
}

#ifdef CUDA_EMULATOR
// ---- the emulator's own rules: schedule order and stuck blocks ----

static void test_reverse_order(void) {
    const int n = 256;
    int h_in[n], fwd[n], rev[n];
    for (int i = 0; i < n; i++) { h_in[i] = i * 5 + 1; }
    int *d_in, *d_out, *d_zero;
    cudaOk(cudaMalloc(&d_in, sizeof(h_in)));
    cudaOk(cudaMalloc(&d_out, sizeof(fwd)));
    cudaOk(cudaMalloc(&d_zero, sizeof(h_in)));
    cudaOk(cudaMemcpy(d_in, h_in, sizeof(h_in), cudaMemcpyHostToDevice));
    cudaOk(cudaMemset(d_zero, 0, sizeof(h_in)));
    block_sum<<<1, n>>>(d_out, d_in);
    cudaOk(cudaMemcpy(fwd, d_out, sizeof(int), cudaMemcpyDeviceToHost));
    // a first launch on other inputs leaves other values in the shared slots
    racy_neighbor<<<1, n>>>(d_out, d_zero);
    racy_neighbor<<<1, n>>>(d_out, d_in);
    cudaOk(cudaMemcpy(fwd + 1, d_out, sizeof(int) * (n - 1), cudaMemcpyDeviceToHost));
    setenv("CUDA_EMU_REVERSE", "1", 1);
    block_sum<<<1, n>>>(d_out, d_in);
    cudaOk(cudaMemcpy(rev, d_out, sizeof(int), cudaMemcpyDeviceToHost));
    racy_neighbor<<<1, n>>>(d_out, d_zero);
    racy_neighbor<<<1, n>>>(d_out, d_in);
    cudaOk(cudaMemcpy(rev + 1, d_out, sizeof(int) * (n - 1), cudaMemcpyDeviceToHost));
    unsetenv("CUDA_EMU_REVERSE");
    CHECK(fwd[0] == rev[0], "a race-free sum differs in reverse order: %d vs %d", fwd[0], rev[0]);
    CHECK(memcmp(fwd + 1, rev + 1, sizeof(int) * (n - 1)) != 0, "the racy kernel gives the same result in both orders");
    cudaOk(cudaFree(d_in));
    cudaOk(cudaFree(d_out));
    cudaOk(cudaFree(d_zero));
}

__global__ void exit_before_barrier(int* out) {
    if (threadIdx.x % 2) { return; }
    __syncthreads();
    out[threadIdx.x] = 1;
}
__global__ void two_barriers(int* out) {
    if (threadIdx.x < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}
__global__ void shuffle_and_barrier(int* out) {
    if (threadIdx.x < 16) {
        out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
    } else {
        __syncthreads();
    }
}
__global__ void mask_without_self(int* out) {
    out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, (int)threadIdx.x, 1);
}
__global__ void ops_disagree(int* out) {
    if (threadIdx.x < 16) {
        out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
    } else {
        out[threadIdx.x] = (int)__ballot_sync(0xffffffffu, 1);
    }
}
__global__ void width_three(int* out) {
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (int)threadIdx.x, 1, 3);
}

// lanes that exited, that the block lacks or that the mask leaves out take no part in a
// collective; reading one gives 0xFF bytes (-1), as uninitialised memory would
__global__ void absent_lanes(int* out) {
    int t = threadIdx.x, n = blockDim.x;
    if (n == 32) {
        if (t >= 24) { return; }
        int x = __shfl_xor_sync(0xffffffffu, t, 8);   // lanes 16..23 read 24..31, which exited
        unsigned vote = __ballot_sync(0xffffffffu, 1); // exited lanes do not vote
        int y = t < 16 ? __shfl_down_sync(0x0000ffffu, t, 8) : -2; // lanes 8..15 read outside the mask
        out[3 * t] = x;
        out[3 * t + 1] = (int)vote;
        out[3 * t + 2] = y;
    } else {
        out[t] = __shfl_down_sync(0xffffffffu, t, 4); // a block of 20: lanes 16..19 read lanes it lacks
    }
}

static void test_absent_lanes(void) {
    int *d, h[3 * 32];
    cudaOk(cudaMalloc(&d, sizeof(h)));
    absent_lanes<<<1, 32>>>(d);
    cudaOk(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int t = 0; t < 24; t++) {
        bad += h[3 * t] != ((t ^ 8) < 24 ? (t ^ 8) : -1);
        bad += h[3 * t + 1] != 0x00ffffff;
        bad += h[3 * t + 2] != (t < 8 ? t + 8 : t < 16 ? -1 : -2);
    }
    CHECK(bad == 0, "collectives with exited lanes and a partial mask: %d results wrong (lane 16: %d %d %d)", bad, h[48], h[49], h[50]);
    absent_lanes<<<1, 20>>>(d);
    cudaOk(cudaMemcpy(h, d, 20 * sizeof(int), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int t = 0; t < 20; t++) { bad += h[t] != (t < 16 ? t + 4 : -1); }
    CHECK(bad == 0, "a shuffle reading lanes a 20-thread block lacks: %d results wrong", bad);
    cudaOk(cudaFree(d));
}

static void launch_stuck(const void* arg) {
    int which = *(const int*)arg, *d;
    if (cudaMalloc(&d, 64 * sizeof(int)) != cudaSuccess) { return; }
    if (which == 0) { exit_before_barrier<<<1, 64>>>(d); }
    if (which == 1) { two_barriers<<<1, 64>>>(d); }
    if (which == 2) { shuffle_and_barrier<<<1, 32>>>(d); }
    if (which == 3) { mask_without_self<<<1, 32>>>(d); }
    if (which == 4) { ops_disagree<<<1, 32>>>(d); }
    if (which == 5) { width_three<<<1, 32>>>(d); }
}

static void test_stuck_blocks(void) {
    // what each message must say: how many threads wait where, and why
    const char* want[][2] = {
        {"32 threads wait at __syncthreads (test/test_cuda_emu.cu:", "32 threads have exited"},
        {"wait at different __syncthreads", "16 threads wait at __syncthreads"},
        {"16 threads wait at __shfl_xor_sync(mask 0xffffffff)", "16 threads wait at __syncthreads"},
        {"the mask must name the calling lane", "mask 0x0000ffff"},
        {"lanes of warp 0 with mask 0xffffffff disagree: lane 0 calls __shfl_xor_sync", "lane 16 calls __ballot_sync"},
        {"the width must be a power of two up to 32", "__shfl_down_sync(mask 0xffffffff, width 3)"},
    };
    for (int which = 0; which < 6; which++) {
        char err[2048];
        int status = run_in_child(launch_stuck, &which, err, sizeof(err));
        CHECK(status == 1 && strstr(err, want[which][0]) && strstr(err, want[which][1]),
              "stuck case %d: exit %d, message: %s", which, status, err);
    }
}
#endif

// one kernel for the ThreadSanitizer build: the racy one or a race-free one
static int run_for_tsan(int racy) {
    const int n = 64;
    int h[n], *d_in, *d_out;
    for (int i = 0; i < n; i++) { h[i] = i; }
    // room for every case of the shuffles kernel
    if (cudaMalloc(&d_in, sizeof(h)) != cudaSuccess || cudaMalloc(&d_out, sizeof(int) * N_CASES * n) != cudaSuccess) { return 2; }
    cudaMemcpy(d_in, h, sizeof(h), cudaMemcpyHostToDevice);
    if (racy) {
        racy_neighbor<<<1, n>>>(d_out, d_in);
    } else {
        block_sum<<<2, n / 2>>>(d_out, d_in);
        shuffles<<<1, n>>>(d_out);
    }
    cudaMemcpy(h, d_out, sizeof(h), cudaMemcpyDeviceToHost);
    printf("%s kernel ran: %s\n", racy ? "racy" : "race-free", cudaGetErrorString(cudaGetLastError()));
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 2 && (!strcmp(argv[1], "--race") || !strcmp(argv[1], "--clean"))) { return run_for_tsan(!strcmp(argv[1], "--race")); }
#ifdef CUDA_EMULATOR
    // the checks of races below expect the forward order; test_reverse_order sets it itself
    unsetenv("CUDA_EMU_REVERSE");
#endif
    test_barriers();
    test_shuffles();
    test_memory_and_launches();
    test_atomics();
    test_launch_limits();
    test_runtime();
    test_types_and_math();
#ifdef CUDA_EMULATOR
    test_reverse_order();
    test_absent_lanes();
    test_stuck_blocks();
#endif
    return test_summary("test_cuda_emu");
}
