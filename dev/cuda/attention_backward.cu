/*
 * dev/cuda/attention_backward.cu — kernels/attention.cuh's backward over a packed batch
 * (version 1: a block per (query token, head) for dS and dq, then a block per (key token,
 * head) for dk and dv) against model.c attention_head_backward per (sequence, head), then timed.
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
    int split_at[BENCH_MAX_S];  // the joint packing: no sequence is split, no gates
    for (int s = 0; s < bench_S; s++) { split_at[s] = seq_starts[s + 1] - seq_starts[s]; }
    int* d_split_at = (int*)to_device(split_at, bench_S * sizeof(int));
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci], hs = C / NH;
        printf("attention_backward N=%d S=%d C=%d NH=%d\n", N, bench_S, C, NH);
        float* qkv = make_random((size_t)N * 3 * C, 1.0f);
        float* dout = make_random((size_t)N * C, 1.0f);
        float* out = (float*)malloc((size_t)N * C * sizeof(float));
        float* att = (float*)malloc(A * sizeof(float));
        float* datt = (float*)malloc(A * sizeof(float));
        float* dqkv = (float*)malloc((size_t)N * 3 * C * sizeof(float));
        for (int s = 0; s < bench_S; s++) {
            for (int h = 0; h < NH; h++) {
                int start = seq_starts[s], T = seq_starts[s + 1] - start;
                size_t head = (size_t)att_offsets[s] + (size_t)h * T * T;
                attention_head_forward(out + (size_t)start * C, att + head, qkv + (size_t)start * 3 * C, T, h, C, NH, T, 0.0f);
                attention_head_backward(dqkv + (size_t)start * 3 * C, datt + head, dout + (size_t)start * C,
                                        qkv + (size_t)start * 3 * C, att + head, T, h, C, NH, T);
            }
        }
        float* d_qkv = (float*)to_device(qkv, (size_t)N * 3 * C * sizeof(float));
        float* d_dout = (float*)to_device(dout, (size_t)N * C * sizeof(float));
        float* d_att = (float*)to_device(att, A * sizeof(float));
        float* d_datt = device_floats(A);
        float* d_dqkv = device_floats((size_t)N * 3 * C);
        attention_backward_cuda(d_dqkv, d_datt, NULL, NULL, d_dout, d_qkv, d_att, d_seq_starts, d_att_offsets,
                                d_split_at, bench_S, N, max_T, C, NH, 0);
        cudaCheck(cudaDeviceSynchronize());
        // dP is a sum over hs, the softmax backward one over T, dq/dk a further one over T
        validate_result(d_datt, datt, A, "dS", tolerance(hs + max_T));
        validate_result(d_dqkv, dqkv, (size_t)N * 3 * C, "dqkv", tolerance(hs + 2 * max_T));

        float ms = benchmark(20, [&] {
            attention_backward_cuda(d_dqkv, d_datt, NULL, NULL, d_dout, d_qkv, d_att, d_seq_starts, d_att_offsets,
                                    d_split_at, bench_S, N, max_T, C, NH, 0);
        });
        // dP = dy v^T, dv = P^T dy, dq = dS k, dk = dS^T q: 4 products of 2 hs flops per pair and head
        report_time("attention_backward (both)", ms, 0, 8.0 * hs * NH * pairs, bandwidth, tflops);
        report_time("  (as memory traffic)", ms, ((double)N * 4 * C + 2.0 * A) * sizeof(float), 0, bandwidth, tflops);

        cudaCheck(cudaFree(d_qkv)); cudaCheck(cudaFree(d_dout)); cudaCheck(cudaFree(d_att));
        cudaCheck(cudaFree(d_datt)); cudaCheck(cudaFree(d_dqkv));
        free(qkv); free(dout); free(out); free(att); free(datt); free(dqkv);
    }
    cudaCheck(cudaFree(d_seq_starts)); cudaCheck(cudaFree(d_att_offsets)); cudaCheck(cudaFree(d_split_at));
    printf("attention_backward: all results match\n");
    return 0;
}
