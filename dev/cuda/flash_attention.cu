/*
 * dev/cuda/flash_attention.cu — kernels/flash_attention.cuh's fused attention over a packed
 * batch (version 1: a block per (64-row tile, head), the scores in shared memory only, the
 * products on tensor cores), forward and backward, against model.c attention_head_forward and
 * _backward per (sequence, head) fed the same bf16 values; then timed beside attention.cuh's
 * simple kernels instantiated for bf16 on the same batch (joint packing), at BERT-base (head
 * size 64) and MiniLM (head size 32), 12 heads.
 *
 * The check is a loose one, against gross mistakes (a missed mask, rescale or scale moves
 * entries by 10% to 100%); test_cuda_bf16 holds the same kernels to bounds derived per entry.
 * The outputs are bf16, within 2^-8 of themselves, and P and dS are rounded to bf16 before
 * their products, each moving an entry by up to 2^-8 of a sum of |terms|, which is several
 * times |want| + rms(want) (the error measure of test_cuda) where the sum cancels: dv of a
 * 7-token sequence, 7 near-uniform probabilities times random dout, took 2.3e-2 under the
 * emulator. So 2^-4 for out and dqkv; lse (float: sums over hs, then T) the fp32 bound.
 *
 * TFLOP/s on the same flop counts for both (the products a softmax attention needs: 4 hs per
 * (query, key) pair and head forward, 8 backward); the fused backward computes Q K^T and dout
 * V^T twice (once per key tile, once per query tile), not counted.
 */
#include "model.h"
#include "kernels/flash_attention.cuh"
#include "dev/cuda/common.h"

// a bf16 device result (n) checked against want, as validate_result
static void validate_bf16(const bf16* d_got, const float* want, size_t n, const char* name, double tol) {
    bf16* h = (bf16*)malloc(n * sizeof(bf16));
    float* got = (float*)malloc(n * sizeof(float));
    cudaCheck(cudaMemcpy(h, d_got, n * sizeof(bf16), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) { got[i] = __bfloat162float(h[i]); }
    validate_host(got, want, n, name, tol);
    free(h);
    free(got);
}

// ms and TFLOP/s of one timed launcher (nothing when not timed: the emulator, DEV_CUDA_SMALL)
static void report_flops(const char* name, float ms, double flops) {
    if (ms > 0.0f) { printf("  %-34s %9.4f ms %8.2f TFLOP/s\n", name, ms, flops / (ms * 1e-3) / 1e12); }
}

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], att_offsets[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    int NH = BENCH_NH, S = bench_S;
    double pairs = bench_att_offsets(att_offsets, NH);  // sum over sequences of T^2
    size_t A = (size_t)att_offsets[S];
    int* d_seq_starts = (int*)to_device(seq_starts, (S + 1) * sizeof(int));
    int* d_att_offsets = (int*)to_device(att_offsets, (S + 1) * sizeof(int));
    int split_at[BENCH_MAX_S];  // the joint packing: no sequence is split, no gates
    for (int s = 0; s < S; s++) { split_at[s] = seq_starts[s + 1] - seq_starts[s]; }
    int* d_split_at = (int*)to_device(split_at, S * sizeof(int));
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci], hs = C / NH;
        size_t NC = (size_t)N * C;
        printf("flash_attention N=%d S=%d C=%d NH=%d (head size %d)\n", N, S, C, NH, hs);
        float* qkv = make_random(3 * NC, 1.0f);
        float* dout = make_random(NC, 1.0f);
        bf16* d_qkv = to_device_bf16(qkv, 3 * NC);
        bf16* d_dout = to_device_bf16(dout, NC);
        float* out = (float*)malloc(NC * sizeof(float));
        float* dqkv = (float*)malloc(3 * NC * sizeof(float));
        float* att = (float*)malloc(A * sizeof(float));
        float* datt = (float*)malloc(A * sizeof(float));
        float* lse = (float*)malloc((size_t)N * NH * sizeof(float));
        for (int s = 0; s < S; s++) {
            int start = seq_starts[s], T = seq_starts[s + 1] - start;
            for (int h = 0; h < NH; h++) {
                size_t head = (size_t)att_offsets[s] + (size_t)h * T * T;
                attention_head_forward(out + (size_t)start * C, att + head, qkv + (size_t)start * 3 * C, T, h, C, NH, T, 0.0f);
                attention_head_backward(dqkv + (size_t)start * 3 * C, datt + head, dout + (size_t)start * C,
                                        qkv + (size_t)start * 3 * C, att + head, T, h, C, NH, T);
                // each row's logsumexp, in double (the scores are small here: no maximum needed)
                for (int i = 0; i < T; i++) {
                    const float* q = qkv + (size_t)(start + i) * 3 * C + h * hs;
                    double sum = 0.0;
                    for (int j = 0; j < T; j++) {
                        const float* k = qkv + (size_t)(start + j) * 3 * C + C + h * hs;
                        double dot = 0.0;
                        for (int d = 0; d < hs; d++) { dot += (double)q[d] * k[d]; }
                        sum += exp(dot / sqrt((double)hs));
                    }
                    lse[(size_t)(start + i) * NH + h] = (float)log(sum);
                }
            }
        }
        bf16 *d_out, *d_dqkv, *d_att;
        float *d_lse, *d_delta, *d_datt;
        cudaCheck(cudaMalloc((void**)&d_out, NC * sizeof(bf16)));
        cudaCheck(cudaMalloc((void**)&d_dqkv, 3 * NC * sizeof(bf16)));
        cudaCheck(cudaMalloc((void**)&d_att, A * sizeof(bf16)));
        cudaCheck(cudaMemset(d_out, 0xFF, NC * sizeof(bf16)));  // NaN: an entry the kernel misses shows
        cudaCheck(cudaMemset(d_dqkv, 0xFF, 3 * NC * sizeof(bf16)));
        d_lse = device_floats((size_t)N * NH);
        d_delta = device_floats((size_t)N * NH);
        d_datt = device_floats(A);

        flash_attention_forward_cuda(d_out, d_lse, d_qkv, d_seq_starts, d_split_at, NULL, S, N, C, NH, 0);
        flash_attention_backward_cuda(d_dqkv, d_delta, NULL, NULL, d_dout, d_qkv, d_out, d_lse, d_seq_starts,
                                      d_split_at, NULL, S, N, C, NH, 0);
        cudaCheck(cudaDeviceSynchronize());
        validate_bf16(d_out, out, NC, "out", 1.0 / 16);
        validate_result(d_lse, lse, (size_t)N * NH, "lse", tolerance(hs + max_T));
        validate_bf16(d_dqkv, dqkv, 3 * NC, "dqkv", 1.0 / 16);

        float ms_forward = benchmark(20, [&] {
            flash_attention_forward_cuda(d_out, d_lse, d_qkv, d_seq_starts, d_split_at, NULL, S, N, C, NH, 0);
        });
        float ms_backward = benchmark(20, [&] {
            flash_attention_backward_cuda(d_dqkv, d_delta, NULL, NULL, d_dout, d_qkv, d_out, d_lse, d_seq_starts,
                                          d_split_at, NULL, S, N, C, NH, 0);
        });
        float ms_simple_forward = benchmark(20, [&] {
            attention_forward_cuda(d_out, d_att, d_qkv, d_seq_starts, d_att_offsets, d_split_at, NULL, S, N, max_T, C,
                                   NH, 0);
        });
        float ms_simple_backward = benchmark(20, [&] {
            attention_backward_cuda(d_dqkv, d_datt, NULL, NULL, d_dout, d_qkv, d_att, d_seq_starts, d_att_offsets,
                                    d_split_at, S, N, max_T, C, NH, 0);
        });
        double forward_flops = 4.0 * hs * NH * pairs, backward_flops = 8.0 * hs * NH * pairs;
        report_flops("flash forward (tensor cores)", ms_forward, forward_flops);
        report_flops("flash backward (tensor cores)", ms_backward, backward_flops);
        report_flops("simple forward (bf16, kernel1)", ms_simple_forward, forward_flops);
        report_flops("simple backward (bf16, kernel1)", ms_simple_backward, backward_flops);
        if (ms_forward > 0.0f) {
            printf("  forward + backward: flash %.4f ms, simple %.4f ms (%.1fx)\n", ms_forward + ms_backward,
                   ms_simple_forward + ms_simple_backward,
                   (ms_simple_forward + ms_simple_backward) / (ms_forward + ms_backward));
        }

        cudaCheck(cudaFree(d_qkv)); cudaCheck(cudaFree(d_dout)); cudaCheck(cudaFree(d_out));
        cudaCheck(cudaFree(d_dqkv)); cudaCheck(cudaFree(d_att)); cudaCheck(cudaFree(d_lse));
        cudaCheck(cudaFree(d_delta)); cudaCheck(cudaFree(d_datt));
        free(qkv); free(dout); free(out); free(dqkv); free(att); free(datt); free(lse);
    }
    cudaCheck(cudaFree(d_seq_starts)); cudaCheck(cudaFree(d_att_offsets)); cudaCheck(cudaFree(d_split_at));
    printf("flash_attention: all results match\n");
    return 0;
}
