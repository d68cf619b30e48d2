/*
 * dev/cuda/zelo_fit.cu — kernels/zelo_fit.cuh's rating fit (version 1: one block per query,
 * every loop of zelo_loss.c's fit shared out over the block, each block's workspace in global
 * memory) against the CPU fit (zelo_fit_ratings, OpenMP over queries) at the paper's scale:
 * 112,000 queries x 100 documents x 400 pairs (4 random cycles), judgments from the sim
 * judge's noise model (dev/bench_zelo.c's workload), for Thurstone with its default prior and
 * Bradley–Terry without prior (zbench's objective; the host then searches every query for a
 * finite optimum). Each block size (64, 128, 256 threads) is validated first, every rating
 * within 1e-9 of the CPU's and the statuses equal (test/test_zelo_cuda.cu's rule), then timed:
 * the kernel with its inputs on the device, and the whole host call (zelo_fit_ratings_cuda:
 * checks, uploads, downloads), beside the CPU fit's wall time of the same batch on all
 * OpenMP threads. Under the emulator: 200 queries, 128 threads, validation only.
 * Prints per link "zelo_fit <link> Q=... gpu_ms=<kernel, best block size> call_ms=<host call>
 * cpu_ms=<CPU fit> (...)", which dev/gpu_check.sh puts in its summary.
 */
#include <omp.h>
#include "model.h"
#include "kernels/zelo_fit.cuh"
#include "dev/cuda/common.h"

#define DOCS 100
#define PAIRS 400  // k = 8: 4 cycles of 100 edges

// every rating within 1e-9 and the statuses equal, or exit 1
static void validate_fit(const double* got, const ZeloFitStatus* got_st, const double* want,
                         const ZeloFitStatus* want_st, int Q, const char* what) {
    double worst = 0.0;
    int bad_status = 0;
    for (int64_t i = 0; i < (int64_t)Q * DOCS; i++) {
        double e = fabs(got[i] - want[i]);
        if (!(e <= worst)) { worst = isnan(e) ? INFINITY : e; }  // a NaN is the worst
    }
    for (int q = 0; q < Q; q++) {
        const ZeloFitStatus *g = &got_st[q], *w = &want_st[q];
        bad_status += g->converged != w->converged || g->iterations != w->iterations ||
                      g->no_optimum != w->no_optimum || g->lambda != w->lambda;
    }
    int ok = worst <= 1e-9 && bad_status == 0;
    printf("  %-34s worst rating error %.1e (tolerance 1e-9), %d statuses differ %s\n", what, worst, bad_status,
           ok ? "OK" : "FAIL");
    if (!ok) { exit(EXIT_FAILURE); }
}

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    int Q = small_shapes() ? 200 : 112000;
    int64_t D = (int64_t)Q * DOCS, P = (int64_t)Q * PAIRS;
    int64_t* doc_start = (int64_t*)mallocCheck((size_t)(Q + 1) * sizeof(int64_t));
    int64_t* pair_start = (int64_t*)mallocCheck((size_t)(Q + 1) * sizeof(int64_t));
    int* a = (int*)mallocCheck((size_t)P * sizeof(int));
    int* b = (int*)mallocCheck((size_t)P * sizeof(int));
    double* p = (double*)mallocCheck((size_t)P * sizeof(double));
#ifdef _OPENMP  // nvcc_check compiles without -fopenmp
    #pragma omp parallel for schedule(dynamic, 64)
#endif
    for (int q = 0; q < Q; q++) {
        ZeloRng rng;  // a seed per query: the batch does not depend on the threads
        zelo_rng_seed(&rng, 0xBE7C0000ull + (uint64_t)q);
        double hidden[DOCS];
        for (int i = 0; i < DOCS; i++) { hidden[i] = zelo_rng_normal(&rng); }
        int64_t o = (int64_t)q * PAIRS;
        if (zelo_pair_graph(a + o, b + o, DOCS, 8, zelo_rng_next(&rng)) != PAIRS) { die("query %d: not 400 pairs", q); }
        for (int j = 0; j < PAIRS; j++) { p[o + j] = zelo_sim_judge_prob(hidden[a[o + j]], hidden[b[o + j]], ZELO_LINK_THURSTONE, &rng); }
        doc_start[q + 1] = (int64_t)(q + 1) * DOCS;
        pair_start[q + 1] = (int64_t)(q + 1) * PAIRS;
    }
    doc_start[0] = pair_start[0] = 0;
    ZeloPairs pairs = { Q, doc_start, pair_start, a, b, p, NULL };
    printf("zelo_fit: %d queries x %d documents x %d pairs, CPU fit on %d OpenMP threads\n", Q, DOCS, PAIRS,
           omp_get_max_threads());

    double* want = (double*)mallocCheck((size_t)D * sizeof(double));
    double* got = (double*)mallocCheck((size_t)D * sizeof(double));
    ZeloFitStatus* want_st = (ZeloFitStatus*)mallocCheck((size_t)Q * sizeof(ZeloFitStatus));
    ZeloFitStatus* got_st = (ZeloFitStatus*)mallocCheck((size_t)Q * sizeof(ZeloFitStatus));
    const int block_sizes[] = {64, 128, 256};
    int num_block_sizes = small_shapes() ? 1 : 3;
    for (int link = 0; link < 2; link++) {
        ZeloFitConfig cfg;
        zelo_fit_config_default(&cfg, (ZeloLink)link);
        if (link == ZELO_LINK_BT) { cfg.lambda = 0.0; }
        ZeloPairError err;
        double t0 = omp_get_wtime();
        int cpu_bad = zelo_fit_ratings(want, want_st, &err, &pairs, &cfg);
        double cpu_ms = 1e3 * (omp_get_wtime() - t0);
        if (cpu_bad != 0) { die("the CPU fit: %d queries not converged or the batch refused", cpu_bad); }
        printf("%s, lambda %g:\n", zelo_link_name(cfg.link), cfg.lambda);

        ZeloFitBatchCuda batch;
        zelo_fit_batch_upload(&batch, &pairs, &cfg);
        int slots = zelo_fit_default_slots(&batch);
        double* d_ratings;
        ZeloFitStatus* d_status;
        double* work;
        int* iwork;
        cudaCheck(cudaMalloc((void**)&d_ratings, (size_t)D * sizeof(double)));
        cudaCheck(cudaMalloc((void**)&d_status, (size_t)Q * sizeof(ZeloFitStatus)));
        cudaCheck(cudaMalloc((void**)&work, (size_t)slots * zelo_fit_work_doubles(DOCS, PAIRS) * sizeof(double)));
        cudaCheck(cudaMalloc((void**)&iwork, (size_t)slots * zelo_fit_work_ints(DOCS, PAIRS) * sizeof(int)));
        float best_ms = 0.0f;
        int best_block = ZELO_FIT_BLOCK_SIZE;
        for (int k = 0; k < num_block_sizes; k++) {
            int block_size = small_shapes() ? ZELO_FIT_BLOCK_SIZE : block_sizes[k];
            char what[64];
            snprintf(what, sizeof(what), "kernel1, %d blocks of %d threads", slots, block_size);
            zelo_fit_uploaded(got, got_st, &batch, &cfg, slots, block_size);
            validate_fit(got, got_st, want, want_st, Q, what);
            float ms = benchmark(5, [&] {
                zelo_fit_cuda(d_ratings, d_status, work, iwork, &batch.pairs, batch.no_optimum, &cfg, DOCS, PAIRS, slots,
                              block_size, 0);
            });
            report_time(what, ms, (double)P * (2 * sizeof(int) + sizeof(double)) + (double)D * sizeof(double), 0,
                        bandwidth, tflops);
            if (k == 0 || ms < best_ms) { best_ms = ms; best_block = block_size; }
        }
        // the whole call as the programs make it: check, host searches (λ = 0), uploads, downloads
        memset(got, 0xFF, (size_t)D * sizeof(double));
        t0 = omp_get_wtime();
        int bad = zelo_fit_ratings_cuda(got, got_st, &err, &pairs, &cfg);
        double call_ms = 1e3 * (omp_get_wtime() - t0);
        if (bad != 0) { die("zelo_fit_ratings_cuda: %d queries not converged or the batch refused", bad); }
        validate_fit(got, got_st, want, want_st, Q, "zelo_fit_ratings_cuda (host call)");
        if (small_shapes()) {
            printf("zelo_fit %s Q=%d validated (timing skipped)\n", zelo_link_name(cfg.link), Q);
        } else {
            printf("zelo_fit %s Q=%d gpu_ms=%.2f call_ms=%.1f cpu_ms=%.1f (kernel at %d threads a block; the call "
                   "with transfers; the CPU fit on %d threads)\n", zelo_link_name(cfg.link), Q, best_ms, call_ms, cpu_ms,
                   best_block, omp_get_max_threads());
        }
        const void* buffers[] = { d_ratings, d_status, work, iwork };
        for (const void* buffer : buffers) { cudaCheck(cudaFree((void*)buffer)); }
        zelo_fit_batch_free(&batch);
    }
    free(want); free(got); free(want_st); free(got_st);
    free(doc_start); free(pair_start); free(a); free(b); free(p);
    printf("zelo_fit: all results match\n");
    return 0;
}
