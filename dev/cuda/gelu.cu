/*
 * dev/cuda/gelu.cu — kernels/gelu.cuh's forward and in-place backward (version 1: one thread
 * per entry) against model.c gelu_forward and gelu_backward_inplace, then timed, over the
 * MLP's activations (N, 4C).
 */
#include "model.h"
#include "kernels/gelu.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        size_t n = (size_t)N * 4 * bench_C[ci];
        printf("gelu N=%d 4C=%d\n", N, 4 * bench_C[ci]);
        float* inp = make_random(n, 4.0f);
        float* out = (float*)malloc(n * sizeof(float));
        float* dinout = make_random(n, 1.0f);
        float* d_inp = (float*)to_device(inp, n * sizeof(float));
        float* d_out = device_floats(n);
        float* d_dinout = (float*)to_device(dinout, n * sizeof(float));
        gelu_forward(out, inp, n);
        gelu_backward_inplace(dinout, inp, n);
        gelu_forward_cuda(d_out, d_inp, n, 0);
        gelu_backward_inplace_cuda(d_dinout, d_inp, n, 0);
        cudaCheck(cudaDeviceSynchronize());
        // K = 1: no sums, only erfc/exp differing by a few ulp from model.c's own fits
        validate_result(d_out, out, n, "out", tolerance(1));
        validate_result(d_dinout, dinout, n, "dinp", tolerance(1));

        float ms = benchmark(100, [&] { gelu_forward_cuda(d_out, d_inp, n, 0); });
        report_time("gelu_forward_kernel1", ms, 2.0 * n * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] { gelu_backward_inplace_cuda(d_dinout, d_inp, n, 0); });
        report_time("gelu_backward_inplace_kernel1", ms, 3.0 * n * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_dinout));
        free(inp); free(out); free(dinout);
    }
    printf("gelu: all results match\n");
    return 0;
}
