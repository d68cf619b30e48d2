/*
 * dev/cuda/pooler.cu — the score head's kernels of kernels/pooler.cuh and kernels/matmul.cuh:
 * the [CLS] gather, tanh (the pooler's activation), the classifier Linear (C -> 1) and the
 * mean pooling of the sentence embeddings, forward and backward (one thread per entry),
 * against model.c's functions of the same names, then timed. These move little data (S rows);
 * the timings mostly show launch overhead.
 */
#include "model.h"
#include "kernels/pooler.cuh"
#include "kernels/matmul.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    matmul_setup();
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T), S = bench_S;
    int* d_seq_starts = (int*)to_device(seq_starts, (bench_S + 1) * sizeof(int));
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        size_t NC = (size_t)N * C, SC = (size_t)S * C;
        printf("pooler N=%d S=%d C=%d\n", N, S, C);
        float* hidden = make_random(NC, 2.0f);
        float* d_hidden = (float*)to_device(hidden, NC * sizeof(float));
        float* dpooled = make_random(SC, 1.0f);
        float* d_dpooled = (float*)to_device(dpooled, SC * sizeof(float));
        float* clsw = make_random(C, 0.1f);
        float* clsb = make_random(1, 0.1f);
        float* d_clsw = (float*)to_device(clsw, C * sizeof(float));
        float* d_clsb = (float*)to_device(clsb, sizeof(float));
        float* cls = (float*)malloc(SC * sizeof(float));
        float* pooled = (float*)malloc(SC * sizeof(float));
        float* mean = (float*)malloc(SC * sizeof(float));
        float* logits = (float*)malloc(S * sizeof(float));
        float* d_cls = device_floats(SC);
        float* d_pooled = device_floats(SC);
        float* d_mean = device_floats(SC);
        float* d_logits = device_floats(S);
        // forward: [CLS] rows, tanh (of the rows themselves: the pooler's Linear is matmul.cu's),
        // the classifier, the mean of each sequence
        cls_gather_forward(cls, hidden, seq_starts, S, C);
        tanh_forward(pooled, cls, SC);
        linear_forward(logits, pooled, clsw, clsb, S, C, 1);
        meanpool_forward(mean, hidden, seq_starts, S, C);
        cls_gather_forward_cuda(d_cls, d_hidden, d_seq_starts, S, C, 0);
        tanh_forward_cuda(d_pooled, d_cls, SC, 0);
        linear_forward_cuda(d_logits, d_pooled, d_clsw, d_clsb, S, C, 1, 0);
        meanpool_forward_cuda(d_mean, d_hidden, d_seq_starts, S, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        validate_result(d_cls, cls, SC, "cls", tolerance(1));
        validate_result(d_pooled, pooled, SC, "tanh", tolerance(1));
        validate_result(d_logits, logits, S, "logits", tolerance(C));
        validate_result(d_mean, mean, SC, "meanpool", tolerance(max_T));
        // backward: gradients accumulate into random starting values, the same on both sides
        float* dhidden = make_random(NC, 1.0f);
        float* d_dhidden = (float*)to_device(dhidden, NC * sizeof(float));
        float* dtanh = (float*)malloc(SC * sizeof(float));
        memcpy(dtanh, dpooled, SC * sizeof(float));
        float* d_dtanh = (float*)to_device(dpooled, SC * sizeof(float));
        tanh_backward_inplace(dtanh, pooled, SC);
        cls_gather_backward(dhidden, dtanh, seq_starts, S, C);
        meanpool_backward(dhidden, dpooled, seq_starts, S, C);
        tanh_backward_inplace_cuda(d_dtanh, d_pooled, SC, 0);
        cls_gather_backward_cuda(d_dhidden, d_dtanh, d_seq_starts, S, C, 0);
        meanpool_backward_cuda(d_dhidden, d_dpooled, d_seq_starts, S, N, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        validate_result(d_dtanh, dtanh, SC, "dtanh", tolerance(1));
        validate_result(d_dhidden, dhidden, NC, "dhidden", tolerance(2));  // two terms added per entry

        float ms = benchmark(100, [&] { cls_gather_forward_cuda(d_cls, d_hidden, d_seq_starts, S, C, 0); });
        report_time("cls_gather_forward_kernel1", ms, 2.0 * SC * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] { tanh_forward_cuda(d_pooled, d_cls, SC, 0); });
        report_time("tanh_forward_kernel1", ms, 2.0 * SC * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] { linear_forward_cuda(d_logits, d_pooled, d_clsw, d_clsb, S, C, 1, 0); });
        report_time("classifier (linear C->1)", ms, (SC + C) * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] { meanpool_forward_cuda(d_mean, d_hidden, d_seq_starts, S, C, 0); });
        report_time("meanpool_forward_kernel1", ms, (NC + SC) * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] { meanpool_backward_cuda(d_dhidden, d_dpooled, d_seq_starts, S, N, C, 0); });
        report_time("meanpool_backward_kernel1", ms, 2.0 * NC * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_hidden)); cudaCheck(cudaFree(d_dpooled)); cudaCheck(cudaFree(d_clsw));
        cudaCheck(cudaFree(d_clsb)); cudaCheck(cudaFree(d_cls)); cudaCheck(cudaFree(d_pooled));
        cudaCheck(cudaFree(d_mean)); cudaCheck(cudaFree(d_logits)); cudaCheck(cudaFree(d_dhidden));
        cudaCheck(cudaFree(d_dtanh));
        free(hidden); free(dpooled); free(clsw); free(clsb); free(cls); free(pooled); free(mean); free(logits);
        free(dhidden); free(dtanh);
    }
    cudaCheck(cudaFree(d_seq_starts));
    matmul_teardown();
    printf("pooler: all results match\n");
    return 0;
}
