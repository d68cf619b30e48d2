/*
 * dev/cuda/layernorm_backward.cu — kernels/layernorm.cuh's backward (version 1: one warp per
 * row for dinp, one thread per channel summing the rows in order for dweight and dbias)
 * against model.c layernorm_backward, then timed; then its fusion with the backward of the
 * residual sum before it (residual_layernorm_backward_input_kernel1: the input gradient
 * written to both terms' gradients) against model.c layernorm_backward from zeros, bit for bit
 * against the unfused sequence it replaced (a zeroed buffer, layernorm_backward_cuda, a copy),
 * and timed beside that sequence.
 * GPU:      make build/gpu/dev_layernorm_backward && build/gpu/dev_layernorm_backward
 * emulator: make build/dev_layernorm_backward && build/dev_layernorm_backward
 */
#include "model.h"
#include "kernels/layernorm.cuh"
#include "dev/cuda/common.h"

// the sequence the fused kernel replaced: da (N, C) zeroed, the input gradient added into it,
// then copied to db; dweight, dbias (C) += theirs
static void layernorm_backward_then_copy(float* da, float* db, float* dweight, float* dbias, const float* dout,
                                         const float* res, const float* weight, const float* mean, const float* rstd,
                                         int N, int C) {
    size_t NC = (size_t)N * C;
    cudaCheck(cudaMemsetAsync(da, 0, NC * sizeof(float), 0));
    layernorm_backward_cuda(da, dweight, dbias, dout, res, weight, mean, rstd, N, C, 0);
    cudaCheck(cudaMemcpyAsync(db, da, NC * sizeof(float), cudaMemcpyDeviceToDevice, 0));
}

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

        printf("residual_layernorm_backward N=%d C=%d\n", N, C);
        // from the reference's gradients so far (the device's went on accumulating in the timing)
        float* d_dweight_pair = (float*)to_device(dweight, C * sizeof(float));
        float* d_dbias_pair = (float*)to_device(dbias, C * sizeof(float));
        cudaCheck(cudaMemcpy(d_dweight, dweight, C * sizeof(float), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(d_dbias, dbias, C * sizeof(float), cudaMemcpyHostToDevice));
        float* d_da = device_floats(NC);
        float* d_db = device_floats(NC);
        float* d_da_pair = device_floats(NC);
        float* d_db_pair = device_floats(NC);
        residual_layernorm_backward_cuda(d_da, d_db, d_dweight, d_dbias, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C, 0);
        layernorm_backward_then_copy(d_da_pair, d_db_pair, d_dweight_pair, d_dbias_pair, d_dout, d_inp, d_weight, d_mean,
                                     d_rstd, N, C);
        float* dres = (float*)calloc(NC, sizeof(float));
        layernorm_backward(dres, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
        cudaCheck(cudaDeviceSynchronize());
        validate_result(d_da, dres, NC, "da", tolerance(C));
        validate_result(d_db, dres, NC, "db", tolerance(C));
        validate_result(d_dweight, dweight, C, "dweight", tolerance(N));
        validate_result(d_dbias, dbias, C, "dbias", tolerance(N));
        validate_same_bytes(d_da, d_da_pair, NC, "da");
        validate_same_bytes(d_db, d_db_pair, NC, "db");
        validate_same_bytes(d_dweight, d_dweight_pair, C, "dweight");
        validate_same_bytes(d_dbias, d_dbias_pair, C, "dbias");

        ms = benchmark(100, [&] {
            layernorm_backward_then_copy(d_da_pair, d_db_pair, d_dweight_pair, d_dbias_pair, d_dout, d_inp, d_weight,
                                         d_mean, d_rstd, N, C);
        });
        // the zeroing writes da, the backward as above, the copy reads da and writes db
        report_time("zero + backward + copy", ms, 7.0 * NC * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] {
            residual_layernorm_backward_cuda(d_da, d_db, d_dweight, d_dbias, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C, 0);
        });
        // reads inp and dout, writes da and db (the params kernel reads inp and dout again)
        report_time("residual_layernorm_backward", ms, 4.0 * NC * sizeof(float), 0, bandwidth, tflops);
        cudaCheck(cudaFree(d_dweight_pair)); cudaCheck(cudaFree(d_dbias_pair));
        cudaCheck(cudaFree(d_da)); cudaCheck(cudaFree(d_db)); cudaCheck(cudaFree(d_da_pair)); cudaCheck(cudaFree(d_db_pair));
        free(dres);

        cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_weight)); cudaCheck(cudaFree(d_dout));
        cudaCheck(cudaFree(d_mean)); cudaCheck(cudaFree(d_rstd)); cudaCheck(cudaFree(d_dinp));
        cudaCheck(cudaFree(d_dweight)); cudaCheck(cudaFree(d_dbias));
        free(inp); free(weight); free(bias); free(dout); free(out); free(mean); free(rstd);
        free(dinp); free(dweight); free(dbias);
    }
    printf("layernorm_backward: all results match\n");
    return 0;
}
