/*
 * dev/cuda/attention_forward.cu — kernels/attention.cuh's forward over a packed batch
 * (version 1: one block per (query token, head), the row of scores in shared memory, no
 * padding computed) against model.c attention_head_forward per (sequence, head), then timed.
 */
#include "model.h"
#include "kernels/attention.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], att_offsets[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    int NH = BENCH_NH;
    double pairs = bench_att_offsets(att_offsets, NH);  // sum over sequences of T^2
    size_t A = (size_t)att_offsets[bench_S];
    int* d_seq_starts = (int*)to_device(seq_starts, (bench_S + 1) * sizeof(int));
    int* d_att_offsets = (int*)to_device(att_offsets, (bench_S + 1) * sizeof(int));
    int split_at[BENCH_MAX_S];  // the joint packing: no sequence is split
    for (int s = 0; s < bench_S; s++) { split_at[s] = seq_starts[s + 1] - seq_starts[s]; }
    int* d_split_at = (int*)to_device(split_at, bench_S * sizeof(int));
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        printf("attention_forward N=%d S=%d C=%d NH=%d\n", N, bench_S, C, NH);
        float* qkv = make_random((size_t)N * 3 * C, 1.0f);
        float* out = (float*)malloc((size_t)N * C * sizeof(float));
        float* att = (float*)malloc(A * sizeof(float));
        for (int s = 0; s < bench_S; s++) {
            for (int h = 0; h < NH; h++) {
                int start = seq_starts[s], T = seq_starts[s + 1] - start;
                attention_head_forward(out + (size_t)start * C, att + att_offsets[s] + (size_t)h * T * T,
                                       qkv + (size_t)start * 3 * C, T, h, C, NH, T, 0.0f);
            }
        }
        float* d_qkv = (float*)to_device(qkv, (size_t)N * 3 * C * sizeof(float));
        float* d_out = device_floats((size_t)N * C);
        float* d_att = device_floats(A);
        attention_forward_cuda(d_out, d_att, d_qkv, d_seq_starts, d_att_offsets, d_split_at, NULL, bench_S, N, max_T, C,
                               NH, 0);
        cudaCheck(cudaDeviceSynchronize());
        int hs = C / NH;
        validate_result(d_att, att, A, "att", tolerance(hs + max_T));  // a score, then the softmax's sum
        validate_result(d_out, out, (size_t)N * C, "out", tolerance(hs + 2 * max_T));

        float ms = benchmark(20, [&] {
            attention_forward_cuda(d_out, d_att, d_qkv, d_seq_starts, d_att_offsets, d_split_at, NULL, bench_S, N, max_T,
                                   C, NH, 0);
        });
        // q k^T and p v: 2 * 2 * hs flops per (query, key) pair per head
        report_time("attention_forward_kernel1", ms, 0, 4.0 * hs * NH * pairs, bandwidth, tflops);
        // the same time measured on the bytes it must move: qkv in, out and att written
        report_time("  (as memory traffic)", ms, ((double)N * 4 * C + A) * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_qkv)); cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_att));
        free(qkv); free(out); free(att);
    }
    cudaCheck(cudaFree(d_seq_starts)); cudaCheck(cudaFree(d_att_offsets)); cudaCheck(cudaFree(d_split_at));
    printf("attention_forward: all results match\n");
    return 0;
}
