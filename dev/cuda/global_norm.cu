/*
 * dev/cuda/global_norm.cu — kernels/global_norm.cuh's squared gradient norm (version 1: one
 * block per 65536-float chunk summing in double, then the chunks in order) and clip against
 * a plain C loop with model.c bert_clip_grad_norm's rule, over a buffer as long as
 * BERT-base's parameters (110M floats; 1M under the emulator), then timed.
 */
#include "model.h"
#include "kernels/global_norm.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    // BERT-base with a one-label head: model.c's parameter count
    size_t n = small_shapes() ? 1000003 : 109483009;
    printf("global_norm n=%zu\n", n);
    float* x = make_random(n, 0.01f);
    float* d_x = (float*)to_device(x, n * sizeof(float));
    double* d_norm_squared;
    double* d_partial;
    cudaCheck(cudaMalloc(&d_norm_squared, sizeof(double)));
    cudaCheck(cudaMalloc(&d_partial, global_norm_num_chunks(n) * sizeof(double)));
    global_norm_squared_cuda(d_norm_squared, d_partial, d_x, n, 0);
    double got;
    cudaCheck(cudaMemcpy(&got, d_norm_squared, sizeof(double), cudaMemcpyDeviceToHost));
    double want = 0.0;
    for (size_t i = 0; i < n; i++) { want += (double)x[i] * x[i]; }
    // a sum of n squares in double (u = 2^-53) in two orders: far inside float's tolerance
    float got_f = (float)got, want_f = (float)want;
    float* d_got = (float*)to_device(&got_f, sizeof(float));
    validate_result(d_got, &want_f, 1, "norm^2", tolerance(1));
    // clip to half the norm: x *= max_norm / (norm + 1e-6), as bert_clip_grad_norm
    float max_norm = 0.5f * (float)sqrt(want);
    clip_cuda(d_x, n, d_norm_squared, max_norm, 0);
    cudaCheck(cudaDeviceSynchronize());
    float coef = (float)(max_norm / (sqrt(want) + 1e-6));
    for (size_t i = 0; i < n; i++) { x[i] *= coef; }
    validate_result(d_x, x, n, "clipped", tolerance(1));

    float ms = benchmark(20, [&] { global_norm_squared_cuda(d_norm_squared, d_partial, d_x, n, 0); });
    report_time("global_norm_squared_cuda", ms, (double)n * sizeof(float), 0, bandwidth, tflops);
    // a max_norm above the norm: every thread reads the norm and leaves x unchanged
    ms = benchmark(20, [&] { clip_cuda(d_x, n, d_norm_squared, 1e30f, 0); });
    report_time("clip_kernel1 (no scaling)", ms, (double)n * sizeof(float), 0, bandwidth, tflops);
    cudaCheck(cudaFree(d_x)); cudaCheck(cudaFree(d_norm_squared)); cudaCheck(cudaFree(d_partial));
    cudaCheck(cudaFree(d_got));
    free(x);
    printf("global_norm: all results match\n");
    return 0;
}
