/*
 * dev/bench_zelo.c — the rating fit at the paper's scale: 112,000 queries × 100 documents ×
 * 400 judged pairs (4 random cycles), synthetic judgments from the sim judge's noise model.
 * Times the batched fit (OpenMP over queries) for the Thurstone link with its default prior
 * and for Bradley–Terry without prior (zbench's objective), first on 1 thread (the peers in
 * dev/zbench_fixed_point.py run on 1), then on all OMP_NUM_THREADS threads; prints
 * queries/s, the peak memory, a last line "rates: ..." for dev/bench_zelo.sh, and writes
 * the first queries to a file that dev/zbench_fixed_point.py times with numpy and scipy on
 * the same problems.
 * usage: ./build/bench_zelo [num_queries] [sample_file] [sample_queries]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <omp.h>

#include "common/utils.h"
#include "zelo_loss.h"

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;  // Linux reports KiB
}

// CPU seconds of the whole process (all threads): on a machine shared with other jobs the
// wall time depends on their load, CPU time / threads much less
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// fits every query on `threads` threads; returns queries/s and *cpu_us the CPU time per query
static double fit_and_report(double* cpu_us, const char* name, int threads, double* ratings, ZeloFitStatus* status,
                             const ZeloPairs* pairs, const ZeloFitConfig* cfg) {
    omp_set_num_threads(threads);
    ZeloPairError err;
    double t0 = omp_get_wtime(), c0 = cpu_seconds();
    int bad = zelo_fit_ratings(ratings, status, &err, pairs, cfg);
    double dt = omp_get_wtime() - t0, cpu = cpu_seconds() - c0;
    if (bad < 0) { die("bench: input rejected: %s", err.message); }
    int Q = pairs->num_queries, max_it = 0;
    double sum_it = 0, sum_cg = 0;
    for (int q = 0; q < Q; q++) {
        sum_it += status[q].iterations;
        sum_cg += status[q].cg_iterations;
        if (status[q].iterations > max_it) { max_it = status[q].iterations; }
    }
    printf("fit %-24s %d thread%s: %d queries in %.3f s = %.0f queries/s; Newton its mean %.2f max %d, "
           "CG its/query %.1f; not converged: %d\n", name, threads, threads > 1 ? "s" : "", Q, dt, Q / dt,
           sum_it / Q, max_it, sum_cg / Q, bad);
    printf("    CPU time %.3f s (%.1f us per query); the %d thread%s busy %.0f%% of the wall time\n",
           cpu, 1e6 * cpu / Q, threads, threads > 1 ? "s were" : " was", 100.0 * cpu / (dt * threads));
    *cpu_us = 1e6 * cpu / Q;
    return Q / dt;
}

int main(int argc, char** argv) {
    int Q = argc > 1 ? atoi(argv[1]) : 112000;
    const char* sample_path = argc > 2 ? argv[2] : NULL;
    int sample = argc > 3 ? atoi(argv[3]) : 200;
    const int n = 100, k = 8;
    const int P = n * k / 2;
    if (Q < 1 || sample < 0) { die("usage: bench_zelo [num_queries>0] [sample_file] [sample_queries]"); }
    if (sample > Q) { sample = Q; }
    printf("bench_zelo: %d queries x %d documents x %d pairs, %d threads\n", Q, n, P, omp_get_max_threads());

    int64_t* doc_start = mallocCheck(sizeof(int64_t) * (Q + 1));
    int64_t* pair_start = mallocCheck(sizeof(int64_t) * (Q + 1));
    int* a = mallocCheck(sizeof(int) * (size_t)Q * P);
    int* b = mallocCheck(sizeof(int) * (size_t)Q * P);
    double* p = mallocCheck(sizeof(double) * (size_t)Q * P);
    double* ratings = mallocCheck(sizeof(double) * (size_t)Q * n);
    ZeloFitStatus* status = mallocCheck(sizeof(ZeloFitStatus) * Q);
    double t0 = omp_get_wtime();
    #pragma omp parallel for schedule(dynamic, 64)
    for (int q = 0; q < Q; q++) {
        // one seed per query: the data do not depend on the number of threads
        ZeloRng rng;
        zelo_rng_seed(&rng, 0xBE7C0000ull + (uint64_t)q);
        double hidden[100];
        for (int i = 0; i < n; i++) { hidden[i] = zelo_rng_normal(&rng); }
        int64_t o = (int64_t)q * P;
        int m = zelo_pair_graph(a + o, b + o, n, k, zelo_rng_next(&rng));
        if (m != P) { die("bench: query %d got %d pairs, not %d", q, m, P); }
        for (int i = 0; i < P; i++) {
            p[o + i] = zelo_sim_judge_prob(hidden[a[o + i]], hidden[b[o + i]], ZELO_LINK_THURSTONE, &rng);
        }
        doc_start[q + 1] = (int64_t)(q + 1) * n;
        pair_start[q + 1] = (int64_t)(q + 1) * P;
    }
    doc_start[0] = pair_start[0] = 0;
    printf("generated the judgments in %.2f s (graphs + sim judge; not part of the fit timing)\n",
           omp_get_wtime() - t0);

    ZeloPairs pairs = { Q, doc_start, pair_start, a, b, p, NULL };
    ZeloFitConfig thurstone, bt;
    zelo_fit_config_default(&thurstone, ZELO_LINK_THURSTONE);
    zelo_fit_config_default(&bt, ZELO_LINK_BT);
    bt.lambda = 0.0;
    char name[64];
    snprintf(name, sizeof(name), "thurstone lambda=%g", thurstone.lambda);
    // 1 thread first: the same-thread comparison with the 1-thread peers; the BT fit last,
    // so that the ratings written to the sample are zbench's objective's
    int max_threads = omp_get_max_threads();
    double cpu_th, cpu_bt, unused;
    double th1 = fit_and_report(&cpu_th, name, 1, ratings, status, &pairs, &thurstone);
    double bt1 = fit_and_report(&cpu_bt, "bt lambda=0 (zbench's)", 1, ratings, status, &pairs, &bt);
    double thN = th1, btN = bt1;
    if (max_threads > 1) {
        thN = fit_and_report(&unused, name, max_threads, ratings, status, &pairs, &thurstone);
        btN = fit_and_report(&unused, "bt lambda=0 (zbench's)", max_threads, ratings, status, &pairs, &bt);
    }
    printf("peak memory (max RSS) %.0f MiB, of which the judgments %.0f MiB\n", peak_rss_mib(),
           (double)Q * P * (2 * sizeof(int) + sizeof(double)) / (1 << 20));

    if (sample_path && sample > 0) {
        // the sample, with our BT λ=0 ratings, as int32 [magic, version, queries, n, pairs] in a
        // 256-int32 header, then per query a (P,) int32, b (P,) int32, p (P,) f64, ratings (n,) f64
        FILE* fp = fopenCheck(sample_path, "wb");
        int32_t h[256] = { 0x5A454C4F, 1, sample, n, P };
        fwriteCheck(h, sizeof(h), 1, fp);
        for (int q = 0; q < sample; q++) {
            fwriteCheck(a + (int64_t)q * P, sizeof(int), P, fp);
            fwriteCheck(b + (int64_t)q * P, sizeof(int), P, fp);
            fwriteCheck(p + (int64_t)q * P, sizeof(double), P, fp);
            fwriteCheck(ratings + (int64_t)q * n, sizeof(double), n, fp);
        }
        fcloseCheck(fp);
    }
    printf("rates: threads %d thurstone_1 %.1f bt_1 %.1f thurstone_n %.1f bt_n %.1f cpu_us_thurstone %.2f cpu_us_bt %.2f\n",
           max_threads, th1, bt1, thN, btN, cpu_th, cpu_bt);
    free(status); free(ratings); free(p); free(b); free(a); free(pair_start); free(doc_start);
    return 0;
}
