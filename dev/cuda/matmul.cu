/*
 * dev/cuda/matmul.cu — kernels/matmul.cuh's Linear layers (cuBLAS sgemm behind matmul_cuda,
 * fp32 without TF32; gemm.c under the emulator; the bias broadcast and column sums as
 * kernels) at the shapes of a BERT layer, against model.c linear_forward and
 * linear_backward, then timed in TFLOP/s against the fp32 non-tensor ceiling.
 */
#include "model.h"
#include "kernels/matmul.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    matmul_setup();
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        // qkv, attention projection, MLP up, MLP down
        const int shapes[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
        const char* names[4] = {"qkv", "attproj", "fc", "fcproj"};
        for (int k = 0; k < 4; k++) {
            int IC = shapes[k][0], OC = shapes[k][1];
            printf("linear %s N=%d C=%d OC=%d\n", names[k], N, IC, OC);
            float* inp = make_random((size_t)N * IC, 1.0f);
            float* weight = make_random((size_t)OC * IC, 0.05f);
            float* bias = make_random(OC, 0.1f);
            float* dout = make_random((size_t)N * OC, 1.0f);
            float* out = (float*)malloc((size_t)N * OC * sizeof(float));
            // gradients accumulate: both sides start from the same random values
            float* dinp = make_random((size_t)N * IC, 1.0f);
            float* dweight = make_random((size_t)OC * IC, 1.0f);
            float* dbias = make_random(OC, 1.0f);
            float* d_inp = (float*)to_device(inp, (size_t)N * IC * sizeof(float));
            float* d_weight = (float*)to_device(weight, (size_t)OC * IC * sizeof(float));
            float* d_bias = (float*)to_device(bias, OC * sizeof(float));
            float* d_dout = (float*)to_device(dout, (size_t)N * OC * sizeof(float));
            float* d_out = device_floats((size_t)N * OC);
            float* d_dinp = (float*)to_device(dinp, (size_t)N * IC * sizeof(float));
            float* d_dweight = (float*)to_device(dweight, (size_t)OC * IC * sizeof(float));
            float* d_dbias = (float*)to_device(dbias, OC * sizeof(float));
            linear_forward(out, inp, weight, bias, N, IC, OC);
            linear_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
            linear_forward_cuda(d_out, d_inp, d_weight, d_bias, N, IC, OC, 0);
            linear_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, N, IC, OC, 0);
            cudaCheck(cudaDeviceSynchronize());
            // each output a dot product of IC (forward), OC (dinp) or N (dweight, dbias) terms
            validate_result(d_out, out, (size_t)N * OC, "out", tolerance(IC));
            validate_result(d_dinp, dinp, (size_t)N * IC, "dinp", tolerance(OC));
            validate_result(d_dweight, dweight, (size_t)OC * IC, "dweight", tolerance(N));
            validate_result(d_dbias, dbias, OC, "dbias", tolerance(N));

            double flops = 2.0 * N * IC * OC;
            float ms = benchmark(20, [&] { linear_forward_cuda(d_out, d_inp, d_weight, d_bias, N, IC, OC, 0); });
            report_time("linear_forward_cuda", ms, 0, flops, bandwidth, tflops);
            ms = benchmark(20, [&] {
                linear_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, N, IC, OC, 0);
            });
            report_time("linear_backward_cuda", ms, 0, 2.0 * flops, bandwidth, tflops);

            cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_weight)); cudaCheck(cudaFree(d_bias));
            cudaCheck(cudaFree(d_dout)); cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_dinp));
            cudaCheck(cudaFree(d_dweight)); cudaCheck(cudaFree(d_dbias));
            free(inp); free(weight); free(bias); free(dout); free(out); free(dinp); free(dweight); free(dbias);
        }
    }
    matmul_teardown();
    printf("matmul: all results match\n");
    return 0;
}
