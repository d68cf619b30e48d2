/*
 * dev/cuda/layernorm_backward.cu — kernels/layernorm.cuh's backward (version 1: one warp per
 * row for dinp, one thread per channel summing the rows in order for dweight and dbias)
 * against model.c layernorm_backward, then timed.
 */
#include "model.h"
#include "kernels/layernorm.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        size_t NC = (size_t)N * C;
        printf("layernorm_backward N=%d C=%d\n", N, C);
        float* inp = make_random(NC, 2.0f);
        float* weight = make_random(C, 1.0f);
        float* bias = make_random(C, 1.0f);
        float* dout = make_random(NC, 1.0f);
        float* out = (float*)malloc(NC * sizeof(float));
        float* mean = (float*)malloc((size_t)N * sizeof(float));
        float* rstd = (float*)malloc((size_t)N * sizeof(float));
        layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, 1e-12f);
        // gradients accumulate: both sides start from the same random values
        float* dinp = make_random(NC, 1.0f);
        float* dweight = make_random(C, 1.0f);
        float* dbias = make_random(C, 1.0f);
        float* d_inp = (float*)to_device(inp, NC * sizeof(float));
        float* d_weight = (float*)to_device(weight, C * sizeof(float));
        float* d_dout = (float*)to_device(dout, NC * sizeof(float));
        float* d_mean = (float*)to_device(mean, N * sizeof(float));
        float* d_rstd = (float*)to_device(rstd, N * sizeof(float));
        float* d_dinp = (float*)to_device(dinp, NC * sizeof(float));
        float* d_dweight = (float*)to_device(dweight, C * sizeof(float));
        float* d_dbias = (float*)to_device(dbias, C * sizeof(float));
        layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
        layernorm_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        validate_result(d_dinp, dinp, NC, "dinp", tolerance(C));        // two sums over the row
        validate_result(d_dweight, dweight, C, "dweight", tolerance(N));  // a sum over the tokens
        validate_result(d_dbias, dbias, C, "dbias", tolerance(N));

        float ms = benchmark(100, [&] {
            layernorm_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C, 0);
        });
        // reads inp, dout, dinp and writes dinp at least (the params kernel reads inp and dout again)
        report_time("layernorm_backward (both)", ms, 4.0 * NC * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_weight)); cudaCheck(cudaFree(d_dout));
        cudaCheck(cudaFree(d_mean)); cudaCheck(cudaFree(d_rstd)); cudaCheck(cudaFree(d_dinp));
        cudaCheck(cudaFree(d_dweight)); cudaCheck(cudaFree(d_dbias));
        free(inp); free(weight); free(bias); free(dout); free(out); free(mean); free(rstd);
        free(dinp); free(dweight); free(dbias);
    }
    printf("layernorm_backward: all results match\n");
    return 0;
}
