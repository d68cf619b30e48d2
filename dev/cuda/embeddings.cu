/*
 * dev/cuda/embeddings.cu — kernels/embeddings.cuh's forward (one thread per (token, channel))
 * and backward (tokens grouped by word id on the host, each gradient entry summed by one
 * thread in token order) against model.c embeddings_forward and embeddings_backward, then
 * timed. BERT's vocabulary (30522), 512 positions, 2 token types.
 */
#include "model.h"
#include "kernels/embeddings.cuh"
#include "dev/cuda/common.h"

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    const int V = 30522, P = 512, TT = 2;
    // half the tokens from 100 frequent ids, so that word buckets hold many tokens, as in text
    int* ids = (int*)malloc(N * sizeof(int));
    int* types = (int*)malloc(N * sizeof(int));
    for (int t = 0; t < N; t++) {
        float r = 0.5f * (rand_uniform() + 1.0f);
        ids[t] = t % 2 ? (int)(r * 100) : (int)(r * (V - 1));
        types[t] = rand_uniform() > 0.0f;
    }
    int* bucket_tokens = (int*)malloc(N * sizeof(int));
    int* bucket_starts = (int*)malloc((N + 1) * sizeof(int));
    int* bucket_ids = (int*)malloc(N * sizeof(int));
    int* counts = (int*)malloc(V * sizeof(int));
    int U = embedding_buckets(bucket_tokens, bucket_starts, bucket_ids, counts, ids, N, V);
    int* d_ids = (int*)to_device(ids, N * sizeof(int));
    int* d_types = (int*)to_device(types, N * sizeof(int));
    int* d_seq_starts = (int*)to_device(seq_starts, (bench_S + 1) * sizeof(int));
    int* d_bucket_tokens = (int*)to_device(bucket_tokens, N * sizeof(int));
    int* d_bucket_starts = (int*)to_device(bucket_starts, (U + 1) * sizeof(int));
    int* d_bucket_ids = (int*)to_device(bucket_ids, U * sizeof(int));
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        size_t NC = (size_t)N * C;
        printf("embeddings N=%d C=%d (%d distinct ids)\n", N, C, U);
        float* wte = make_random((size_t)V * C, 1.0f);
        float* wpe = make_random((size_t)P * C, 1.0f);
        float* wtt = make_random((size_t)TT * C, 1.0f);
        float* out = (float*)malloc(NC * sizeof(float));
        float* demb = make_random(NC, 1.0f);
        // gradients accumulate: both sides start from the same random values
        float* dwte = make_random((size_t)V * C, 1.0f);
        float* dwpe = make_random((size_t)P * C, 1.0f);
        float* dwtt = make_random((size_t)TT * C, 1.0f);
        float* d_wte = (float*)to_device(wte, (size_t)V * C * sizeof(float));
        float* d_wpe = (float*)to_device(wpe, (size_t)P * C * sizeof(float));
        float* d_wtt = (float*)to_device(wtt, (size_t)TT * C * sizeof(float));
        float* d_out = device_floats(NC);
        float* d_demb = (float*)to_device(demb, NC * sizeof(float));
        float* d_dwte = (float*)to_device(dwte, (size_t)V * C * sizeof(float));
        float* d_dwpe = (float*)to_device(dwpe, (size_t)P * C * sizeof(float));
        float* d_dwtt = (float*)to_device(dwtt, (size_t)TT * C * sizeof(float));
        embeddings_forward(out, ids, types, seq_starts, bench_S, wte, wpe, wtt, C);
        embeddings_backward(dwte, dwpe, dwtt, demb, ids, types, seq_starts, bench_S, C);
        embeddings_forward_cuda(d_out, d_ids, d_types, d_seq_starts, bench_S, d_wte, d_wpe, d_wtt, N, C, 0);
        embeddings_backward_cuda(d_dwte, d_dwpe, d_dwtt, d_demb, d_bucket_tokens, d_bucket_starts, d_bucket_ids, U,
                                 d_types, d_seq_starts, bench_S, max_T, N, TT, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        // K = 1: the kernels add in the reference's order
        validate_result(d_out, out, NC, "out", tolerance(1));
        validate_result(d_dwte, dwte, (size_t)V * C, "dwte", tolerance(1));
        validate_result(d_dwpe, dwpe, (size_t)P * C, "dwpe", tolerance(1));
        validate_result(d_dwtt, dwtt, (size_t)TT * C, "dwtt", tolerance(1));

        float ms = benchmark(100, [&] {
            embeddings_forward_cuda(d_out, d_ids, d_types, d_seq_starts, bench_S, d_wte, d_wpe, d_wtt, N, C, 0);
        });
        // three rows read and one written per token
        report_time("embeddings_forward_kernel1", ms, 4.0 * NC * sizeof(float), 0, bandwidth, tflops);
        ms = benchmark(100, [&] {
            embeddings_backward_cuda(d_dwte, d_dwpe, d_dwtt, d_demb, d_bucket_tokens, d_bucket_starts, d_bucket_ids,
                                     U, d_types, d_seq_starts, bench_S, max_T, N, TT, C, 0);
        });
        // demb read three times (word, position, type), the touched rows read and written
        report_time("embeddings_backward (all 3)", ms, (3.0 * NC + 2.0 * (U + max_T + TT) * C) * sizeof(float), 0,
                    bandwidth, tflops);

        cudaCheck(cudaFree(d_wte)); cudaCheck(cudaFree(d_wpe)); cudaCheck(cudaFree(d_wtt));
        cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_demb)); cudaCheck(cudaFree(d_dwte));
        cudaCheck(cudaFree(d_dwpe)); cudaCheck(cudaFree(d_dwtt));
        free(wte); free(wpe); free(wtt); free(out); free(demb); free(dwte); free(dwpe); free(dwtt);
    }
    cudaCheck(cudaFree(d_ids)); cudaCheck(cudaFree(d_types)); cudaCheck(cudaFree(d_seq_starts));
    cudaCheck(cudaFree(d_bucket_tokens)); cudaCheck(cudaFree(d_bucket_starts)); cudaCheck(cudaFree(d_bucket_ids));
    free(ids); free(types); free(bucket_tokens); free(bucket_starts); free(bucket_ids); free(counts);
    printf("embeddings: all results match\n");
    return 0;
}
