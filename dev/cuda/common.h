/*
 * dev/cuda/common.h — what the kernel programs of dev/cuda/ share (llm.c's dev/cuda manner):
 * random inputs, device copies, the check of a device result against the CPU reference, and
 * the timing with cudaEvents against the card's ceilings.
 *
 * Each program validates first, then times. Built by the emulator (CUDA_EMULATOR, `make
 * dev-cuda`) it validates only, at smaller shapes, and says that timing is skipped: the
 * emulator's clock says nothing about a GPU. Built by nvcc it validates at realistic shapes
 * (8 sequences of 512 tokens, BERT-base C=768 and MiniLM C=384, 12 heads) and times; with
 * DEV_CUDA_SMALL=1 it runs the emulator's shapes and does not time (for compute-sanitizer).
 *
 * Error measure and tolerance are test/test_cuda.cu's: per tensor, the max over entries of
 * |got - want| / (|want| + rms(want)), allowed 64 u sqrt(K) with u = 2^-24 and K the longest
 * chain of sums behind an output (stated at each check).
 */
#ifndef ZELO_DEV_CUDA_COMMON_H
#define ZELO_DEV_CUDA_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/common.cuh"
#include "kernels/bf16.cuh"

static inline double tolerance(double K) { return 64.0 * 5.9604644775390625e-8 * sqrt(K); }

// ---- shapes ----

// small shapes: under the emulator (the CPU references and the emulated kernels are slow at
// 4096 tokens), or on a GPU with DEV_CUDA_SMALL=1 set (for compute-sanitizer, which slows
// kernels 10-100x: dev/gpu_check.sh); timing is skipped then
static inline int small_shapes(void) {
#ifdef CUDA_EMULATOR
    return 1;
#else
    const char* small = getenv("DEV_CUDA_SMALL");
    return small != NULL && strcmp(small, "0") != 0 && small[0] != '\0';
#endif
}
// a packed batch: 8 sequences of 512 tokens, or a mix of short ones in small shapes
static const int full_lengths[] = {512, 512, 512, 512, 512, 512, 512, 512};
static const int small_lengths[] = {130, 7, 33, 1, 64};
#define BENCH_MAX_S 8
static const int* bench_lengths;
static int bench_S;  // sequences of the batch, set by bench_batch
// seq_starts (BENCH_MAX_S+1); returns N, the tokens of the batch, and the longest sequence in *max_T
static inline int bench_batch(int* seq_starts, int* max_T) {
    bench_lengths = small_shapes() ? small_lengths : full_lengths;
    bench_S = small_shapes() ? (int)(sizeof(small_lengths) / sizeof(int)) : (int)(sizeof(full_lengths) / sizeof(int));
    seq_starts[0] = 0;
    *max_T = 0;
    for (int s = 0; s < bench_S; s++) {
        seq_starts[s + 1] = seq_starts[s] + bench_lengths[s];
        if (bench_lengths[s] > *max_T) { *max_T = bench_lengths[s]; }
    }
    return seq_starts[bench_S];
}
// att_offsets (bench_S+1): where sequence s's (NH, T, T) block of attention starts, as model.c;
// returns the sum over sequences of T^2 (the (query, key) pairs, for flop counts)
static inline double bench_att_offsets(int* att_offsets, int NH) {
    double pairs = 0;
    att_offsets[0] = 0;
    for (int s = 0; s < bench_S; s++) {
        int T = bench_lengths[s];
        att_offsets[s + 1] = att_offsets[s] + NH * T * T;
        pairs += (double)T * T;
    }
    return pairs;
}
// hidden sizes: BERT-base and MiniLM, both 12 heads
static const int bench_C[] = {768, 384};
#define BENCH_NH 12
#define NUM_BENCH_C 2

// ---- random inputs and device copies ----

static uint64_t rng_state = 0x5eed2026u;
static inline float rand_uniform(void) {  // in [-1, 1)
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static inline float* make_random(size_t n, float scale) {
    float* x = (float*)malloc(n * sizeof(float));
    if (x == NULL) { fprintf(stderr, "out of memory at %s:%d\n", __FILE__, __LINE__); exit(EXIT_FAILURE); }
    for (size_t i = 0; i < n; i++) { x[i] = scale * rand_uniform(); }
    return x;
}
static inline void* to_device(const void* host, size_t bytes) {
    void* d;
    cudaCheck(cudaMalloc(&d, bytes));
    cudaCheck(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
    return d;
}
// x (n) rounded to bf16 in place (the reference's values), and the same values on the device
static inline bf16* to_device_bf16(float* x, size_t n) {
    bf16* h = (bf16*)malloc(n * sizeof(bf16));
    if (h == NULL) { fprintf(stderr, "out of memory at %s:%d\n", __FILE__, __LINE__); exit(EXIT_FAILURE); }
    for (size_t i = 0; i < n; i++) {
        h[i] = __float2bfloat16_rn(x[i]);
        x[i] = __bfloat162float(h[i]);
    }
    bf16* d = (bf16*)to_device(h, n * sizeof(bf16));
    free(h);
    return d;
}
static inline float* device_floats(size_t n) {
    float* d;
    cudaCheck(cudaMalloc(&d, n * sizeof(float)));
    cudaCheck(cudaMemset(d, 0xFF, n * sizeof(float)));  // NaN: an entry the kernel misses shows
    return d;
}

// ---- validation ----

// got against want (both on the host, n); prints the error and exits 1 when over tol
static inline void validate_host(const float* got, const float* want, size_t n, const char* name, double tol) {
    double sum_sq = 0.0;
    for (size_t i = 0; i < n; i++) { sum_sq += (double)want[i] * want[i]; }
    double rms = sqrt(sum_sq / (double)(n > 0 ? n : 1)), worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + rms);
        if (!(err <= worst)) { worst = err; worst_i = i; }  // a NaN is the worst
        if (isnan(err)) { break; }
    }
    int ok = worst <= tol;
    printf("  %-10s error %.2e (tolerance %.2e) %s\n", name, worst, tol, ok ? "OK" : "FAIL");
    if (!ok) {
        printf("  at %zu: got %.9g, want %.9g\n", worst_i, got[worst_i], want[worst_i]);
        exit(EXIT_FAILURE);
    }
}
// the same with got on the device
static inline void validate_result(const float* d_got, const float* want, size_t n, const char* name, double tol) {
    float* got = (float*)malloc(n * sizeof(float));
    cudaCheck(cudaMemcpy(got, d_got, n * sizeof(float), cudaMemcpyDeviceToHost));
    validate_host(got, want, n, name, tol);
    free(got);
}

// whether two device results (n) hold the same bytes, a fused kernel's and its unfused
// kernels'; exits 1 when not
static inline void validate_same_bytes(const float* d_a, const float* d_b, size_t n, const char* name) {
    float* a = (float*)malloc(n * sizeof(float));
    float* b = (float*)malloc(n * sizeof(float));
    cudaCheck(cudaMemcpy(a, d_a, n * sizeof(float), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(b, d_b, n * sizeof(float), cudaMemcpyDeviceToHost));
    int same = memcmp(a, b, n * sizeof(float)) == 0;
    printf("  %-10s %s\n", name, same ? "the unfused kernels' bytes" : "FAIL: bytes differ from the unfused kernels'");
    free(a);
    free(b);
    if (!same) { exit(EXIT_FAILURE); }
}

// ---- timing ----

// the card's ceilings: HBM from the memory clock (kHz, double data rate) and bus width;
// fp32 (non-tensor) from the SM count, the fp32 lanes per SM of the architecture and the clock
static inline void print_ceilings(double* bandwidth_gbs, double* fp32_tflops) {
    *bandwidth_gbs = 0.0;
    *fp32_tflops = 0.0;
#ifdef CUDA_EMULATOR
    printf("emulator: validation only, small shapes, timing skipped\n");
#else
    if (small_shapes()) {
        printf("DEV_CUDA_SMALL: validation only, small shapes, timing skipped\n");
        return;
    }
    int dev, mem_khz = 0, bus_bits = 0, sm_khz = 0, sms = 0, major = 0, minor = 0;
    cudaCheck(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    cudaCheck(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev));
    cudaCheck(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
    cudaCheck(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, dev));
    cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaCheck(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    cudaCheck(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    *bandwidth_gbs = 2.0 * mem_khz * 1e3 * (bus_bits / 8) / 1e9;
    // fp32 lanes per SM: 64 on sm_80 (A100), 128 on sm_86/89/90/10x
    int lanes = (major == 8 && minor == 0) || major < 8 ? 64 : 128;
    *fp32_tflops = 2.0 * sms * lanes * sm_khz * 1e3 / 1e12;
    printf("%s (sm_%d%d): ceilings %.0f GB/s HBM (memory clock %d MHz x %d-bit bus x 2), "
           "%.1f TFLOP/s fp32 non-tensor (%d SMs x %d lanes x 2 x %d MHz)\n",
           prop.name, major, minor, *bandwidth_gbs, mem_khz / 1000, bus_bits, *fp32_tflops, sms, lanes, sm_khz / 1000);
#endif
}

// runs launch() `repeats` times after one warm-up, returns the mean ms per run (0 under the
// emulator, which does not time)
template <class F>
static inline float benchmark(int repeats, F launch) {
#ifdef CUDA_EMULATOR
    (void)repeats; (void)launch;
    return 0.0f;
#else
    if (small_shapes()) { return 0.0f; }
    launch();
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    cudaCheck(cudaEventRecord(start, 0));
    for (int i = 0; i < repeats; i++) { launch(); }
    cudaCheck(cudaEventRecord(stop, 0));
    cudaCheck(cudaEventSynchronize(stop));
    float ms = 0.0f;
    cudaCheck(cudaEventElapsedTime(&ms, start, stop));
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    return ms / repeats;
#endif
}

// one result line: ms, and GB/s against the HBM ceiling (bytes: what the kernel must move at
// least) or TFLOP/s against the fp32 ceiling (flops > 0)
static inline void report_time(const char* name, float ms, double bytes, double flops, double bandwidth_gbs,
                        double fp32_tflops) {
#ifdef CUDA_EMULATOR
    (void)name; (void)ms; (void)bytes; (void)flops; (void)bandwidth_gbs; (void)fp32_tflops;
#else
    if (small_shapes()) { return; }
    if (flops > 0) {
        double tflops = flops / (ms * 1e-3) / 1e12;
        printf("  %-28s %9.4f ms %8.2f TFLOP/s (%4.1f%% of fp32)\n", name, ms, tflops, 100.0 * tflops / fp32_tflops);
    } else {
        double gbs = bytes / (ms * 1e-3) / 1e9;
        printf("  %-28s %9.4f ms %8.1f GB/s    (%4.1f%% of HBM)\n", name, ms, gbs, 100.0 * gbs / bandwidth_gbs);
    }
#endif
}

#endif // ZELO_DEV_CUDA_COMMON_H
