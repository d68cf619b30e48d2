/*
 * dev/cuda/layernorm_forward.cu — kernels/layernorm.cuh's forward (version 1: one warp per
 * row, two passes over the row) against model.c layernorm_forward, then timed; then its
 * fusion with the residual sum before it (residual_layernorm_forward_kernel1) against model.c
 * residual_forward + layernorm_forward, timed beside the unfused pair it replaced; then the
 * backward pass's recomputation of that output from res and the kept mean and rstd
 * (layernorm_recompute_kernel1) against the forward's own output, timed.
 * GPU:      make build/gpu/dev_layernorm_forward && build/gpu/dev_layernorm_forward
 * emulator: make build/dev_layernorm_forward && build/dev_layernorm_forward
 */
#include "model.h"
#include "kernels/layernorm.cuh"
#include "dev/cuda/common.h"

// out (n) = a + b: the residual kernel the fused one replaced, kept here as the baseline
__global__ void residual_forward_kernel1(float* out, const float* a, const float* b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = a[i] + b[i]; }
}

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        printf("layernorm_forward N=%d C=%d\n", N, C);
        float* inp = make_random((size_t)N * C, 2.0f);
        float* weight = make_random(C, 1.0f);
        float* bias = make_random(C, 1.0f);
        float* out = (float*)malloc((size_t)N * C * sizeof(float));
        float* mean = (float*)malloc((size_t)N * sizeof(float));
        float* rstd = (float*)malloc((size_t)N * sizeof(float));
        layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, 1e-12f);

        float* d_inp = (float*)to_device(inp, (size_t)N * C * sizeof(float));
        float* d_weight = (float*)to_device(weight, C * sizeof(float));
        float* d_bias = (float*)to_device(bias, C * sizeof(float));
        float* d_out = device_floats((size_t)N * C);
        float* d_mean = device_floats(N);
        float* d_rstd = device_floats(N);
        layernorm_forward_cuda(d_out, d_mean, d_rstd, d_inp, d_weight, d_bias, N, C, 1e-12f, 0);
        cudaCheck(cudaDeviceSynchronize());
        // K = C: mean and variance are sums over the row
        validate_result(d_mean, mean, N, "mean", tolerance(C));
        validate_result(d_rstd, rstd, N, "rstd", tolerance(C));
        validate_result(d_out, out, (size_t)N * C, "out", tolerance(C));

        float ms = benchmark(100, [&] {
            layernorm_forward_cuda(d_out, d_mean, d_rstd, d_inp, d_weight, d_bias, N, C, 1e-12f, 0);
        });
        // reads inp once, writes out once (weight, bias, mean, rstd are small)
        report_time("layernorm_forward_kernel1", ms, 2.0 * N * C * sizeof(float), 0, bandwidth, tflops);

        printf("residual_layernorm_forward N=%d C=%d\n", N, C);
        size_t NC = (size_t)N * C;
        float* a = make_random(NC, 1.0f);
        float* res = (float*)malloc(NC * sizeof(float));
        residual_forward(res, a, inp, NC);
        layernorm_forward(out, mean, rstd, res, weight, bias, N, C, 1e-12f);
        float* d_a = (float*)to_device(a, NC * sizeof(float));
        float* d_res = device_floats(NC);
        residual_layernorm_forward_cuda(d_res, d_out, d_mean, d_rstd, d_a, d_inp, d_weight, d_bias, N, C, 1e-12f, 0);
        cudaCheck(cudaDeviceSynchronize());
        validate_result(d_res, res, NC, "res", tolerance(1));
        validate_result(d_mean, mean, N, "mean", tolerance(C));
        validate_result(d_rstd, rstd, N, "rstd", tolerance(C));
        validate_result(d_out, out, NC, "out", tolerance(C));

        const int block_size = 256;
        ms = benchmark(100, [&] {
            residual_forward_kernel1<<<(int)CEIL_DIV(NC, (size_t)block_size), block_size>>>(d_res, d_a, d_inp, NC);
            layernorm_forward_cuda(d_out, d_mean, d_rstd, d_res, d_weight, d_bias, N, C, 1e-12f, 0);
        });
        // the pair: the residual reads a, inp and writes res, the LayerNorm reads res, writes out
        report_time("residual + layernorm (pair)", ms, 5.0 * NC * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] {
            residual_layernorm_forward_cuda(d_res, d_out, d_mean, d_rstd, d_a, d_inp, d_weight, d_bias, N, C, 1e-12f, 0);
        });
        // reads a and inp once, writes res and out once (the later passes reread res from cache)
        report_time("residual_layernorm_forward_kernel1", ms, 4.0 * NC * sizeof(float), 0, bandwidth, tflops);

        printf("layernorm_recompute N=%d C=%d\n", N, C);
        float* d_recomputed = device_floats(NC);
        layernorm_recompute_cuda(d_recomputed, d_res, d_mean, d_rstd, d_weight, d_bias, N, C, 0);
        cudaCheck(cudaMemcpy(out, d_out, NC * sizeof(float), cudaMemcpyDeviceToHost));
        // the forward's floats exactly (test_cuda checks the bytes), or the gradients would change
        validate_result(d_recomputed, out, NC, "out", 0.0);
        ms = benchmark(100, [&] {
            layernorm_recompute_cuda(d_recomputed, d_res, d_mean, d_rstd, d_weight, d_bias, N, C, 0);
        });
        // reads res once, writes out once
        report_time("layernorm_recompute_kernel1", ms, 2.0 * NC * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_weight)); cudaCheck(cudaFree(d_bias));
        cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_mean)); cudaCheck(cudaFree(d_rstd));
        cudaCheck(cudaFree(d_a)); cudaCheck(cudaFree(d_res)); cudaCheck(cudaFree(d_recomputed));
        free(inp); free(weight); free(bias); free(out); free(mean); free(rstd); free(a); free(res);
    }
    printf("layernorm_forward: all results match\n");
    return 0;
}
