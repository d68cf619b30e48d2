/*
 * dev/cuda/gelu.cu — kernels/gelu.cuh over the MLP's activations (N, 4C): the forward
 * (version 1: one thread per entry) against model.c gelu_forward, then timed; then the
 * backward fused with the fc layer's bias gradient (gelu_backward_bias_kernel1: one thread per
 * column, the rows in order) against model.c gelu_backward_inplace and the column sums, bit
 * for bit against the unfused pair it replaced (the in-place backward, one thread per entry,
 * then bias_backward_kernel1), and timed beside that pair.
 * GPU:      make build/gpu/dev_gelu && build/gpu/dev_gelu
 * emulator: make build/dev_gelu && build/dev_gelu
 */
#include "model.h"
#include "kernels/gelu.cuh"
#include "kernels/matmul.cuh"
#include "dev/cuda/common.h"

// dinout (n): the gradient wrt GELU's output on entry, wrt its input inp on return: the
// backward the fused kernel replaced, kept here as the baseline
__global__ void gelu_backward_inplace_kernel1(float* dinout, const float* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { dinout[i] *= gelu_derivative_device(inp[i]); }
}

// the pair: dinout (N, OC) in place, then dbias (OC) += its column sums
static void gelu_backward_then_bias(float* dinout, float* dbias, const float* inp, int N, int OC) {
    const int block_size = 256;
    size_t n = (size_t)N * OC;
    gelu_backward_inplace_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size>>>(dinout, inp, n);
    cudaCheck(cudaGetLastError());
    bias_backward_kernel1<float><<<CEIL_DIV(OC, block_size), block_size>>>(dbias, dinout, N, OC);
    cudaCheck(cudaGetLastError());
}

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int OC = 4 * bench_C[ci];
        size_t n = (size_t)N * OC;
        printf("gelu N=%d 4C=%d\n", N, OC);
        float* inp = make_random(n, 4.0f);
        float* out = (float*)malloc(n * sizeof(float));
        float* d_inp = (float*)to_device(inp, n * sizeof(float));
        float* d_out = device_floats(n);
        gelu_forward(out, inp, n);
        gelu_forward_cuda(d_out, d_inp, n, 0);
        cudaCheck(cudaDeviceSynchronize());
        // K = 1: no sums, only erfc/exp differing by a few ulp from model.c's own fits
        validate_result(d_out, out, n, "out", tolerance(1));
        float ms = benchmark(100, [&] { gelu_forward_cuda(d_out, d_inp, n, 0); });
        report_time("gelu_forward_kernel1", ms, 2.0 * n * sizeof(float), 0, bandwidth, tflops);

        printf("gelu_backward_bias N=%d 4C=%d\n", N, OC);
        float* dout = make_random(n, 1.0f);  // the gradient wrt GELU's output
        float* dbias = make_random(OC, 1.0f);  // accumulates: both sides start from it
        float* d_dinout = (float*)to_device(dout, n * sizeof(float));
        float* d_dbias = (float*)to_device(dbias, OC * sizeof(float));
        float* d_dinout_pair = (float*)to_device(dout, n * sizeof(float));
        float* d_dbias_pair = (float*)to_device(dbias, OC * sizeof(float));
        gelu_backward_bias_cuda(d_dinout, d_dbias, d_inp, N, OC, 0);
        gelu_backward_then_bias(d_dinout_pair, d_dbias_pair, d_inp, N, OC);
        gelu_backward_inplace(dout, inp, n);
        for (int c = 0; c < OC; c++) {  // the column sums in double, an order of their own
            double sum = 0.0;
            for (int t = 0; t < N; t++) { sum += dout[(size_t)t * OC + c]; }
            dbias[c] += (float)sum;
        }
        cudaCheck(cudaDeviceSynchronize());
        validate_result(d_dinout, dout, n, "dinp", tolerance(1));
        validate_result(d_dbias, dbias, OC, "dbias", tolerance(N));  // float sums over the N rows
        validate_same_bytes(d_dinout, d_dinout_pair, n, "dinp");
        validate_same_bytes(d_dbias, d_dbias_pair, OC, "dbias");

        // in place, so each run starts from the last one's output: the work is the same
        ms = benchmark(100, [&] { gelu_backward_then_bias(d_dinout_pair, d_dbias_pair, d_inp, N, OC); });
        // GELU's reads dinout and inp, writes dinout; the bias kernel reads dinout again
        report_time("gelu backward + bias (pair)", ms, 4.0 * n * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] { gelu_backward_bias_cuda(d_dinout, d_dbias, d_inp, N, OC, 0); });
        report_time("gelu_backward_bias_kernel1", ms, 3.0 * n * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_dinout));
        cudaCheck(cudaFree(d_dbias)); cudaCheck(cudaFree(d_dinout_pair)); cudaCheck(cudaFree(d_dbias_pair));
        free(inp); free(out); free(dout); free(dbias);
    }
    printf("gelu: all results match\n");
    return 0;
}
