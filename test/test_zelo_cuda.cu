/*
 * test/test_zelo_cuda.cu — the rating fit on the GPU (kernels/zelo_fit.cuh) against the CPU
 * fit (zelo_loss.c's zelo_fit_ratings), query by query: every rating and every status field.
 * Built by nvcc for a GPU and by the emulator (kernels/cuda_emu.h) for `make test`.
 *
 * Batches of random queries of mixed sizes (n from 2 to 300, with one query of one document
 * and one of none), pair graphs from zelo_pair_graph (k = 2 to 8; 4 to 8 with λ = 0, see
 * below), judgments from the sim judge's noise model (soft), hard labels (p in {0, 1}) or a mix, random per-pair offsets or
 * none, both links, the default prior and λ = 0, where some queries have no finite optimum
 * (hard labels in a strict order: AT_INFINITY; a document left out of every pair:
 * DISCONNECTED) and are fitted with the link's default prior instead. The kernel's outputs
 * are poisoned (0xFF bytes, NaN) before each launch. The seed is printed; `test_zelo_cuda
 * SEED` repeats a run.
 *
 * Tolerances. Ratings: 1e-9 absolute, the issue's bound. The two fits take the same steps
 * (same start, same Newton and CG iterations), so they differ only by the rounding of sums
 * taken in other orders (block trees against sequential loops), amplified by how badly the
 * query's Hessian is conditioned: measured under 1e-14 over a dozen seeds.
 * Not so for a single cycle (k = 2) without prior: its Laplacian's smallest nonzero
 * eigenvalue is about (2π/n)² ℓ'', so a gradient under the tolerance still leaves the
 * ratings uncertain by ‖∇‖ n²/(4π² ℓ''), and the hundreds of CG iterations such a query takes
 * amplify rounding: the two fits differed by up to 2.7e-9 at n = 287 (both converged). Such
 * ratings are not determined to 1e-9 by either fit, so the λ = 0 batches use k >= 4
 * (expanders, which the fit is for: train_zelo's default is k = 8). Statuses: converged,
 * no_optimum and lambda exactly; the Newton iterations exactly as well (rounding alone does
 * not move the gradient across a halving or the tolerance on these problems; if it ever did,
 * the run names the query); the objective within 1e-12 relative (sums of up to 1200 pair terms
 * in another order). CG iterations are not compared: their stopping test sits on a residual
 * that rounding moves, and they are a cost, not a result. Determinism: a second launch over
 * another number of blocks gives the same bits; the host API (zelo_fit_ratings_cuda) gives
 * the launch's bits and refuses bad input as the CPU does.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "test/test.h"
#include "zelo_loss.h"
#include "kernels/zelo_fit.cuh"

typedef struct {
    int Q;
    int64_t* doc_start;  // (Q+1)
    int64_t* pair_start; // (Q+1)
    int *a, *b;          // (P)
    double *p, *offset;  // (P), offset NULL when the batch has none
} Batch;

static uint64_t seed_base;

// Q random queries (see the top comment); kinds: 0 soft, 1 hard, 2 half hard, 3 one document
// in no pair (chosen at random per query)
static Batch make_batch(int Q, ZeloLink link, int with_offsets, int min_k, uint64_t seed) {
    Batch bt;
    bt.Q = Q;
    ZeloRng rng;
    zelo_rng_seed(&rng, seed);
    int* n = (int*)mallocCheck((size_t)Q * sizeof(int));
    int* k = (int*)mallocCheck((size_t)Q * sizeof(int));
    int64_t cap = 0;
    for (int q = 0; q < Q; q++) {
        // mostly the paper's size and below, a few up to 300; query 1 has one document, query 3 none
        n[q] = q == 1 ? 1 : q == 3 ? 0 : zelo_rng_below(&rng, 8) == 0 ? 120 + zelo_rng_below(&rng, 181) : 2 + zelo_rng_below(&rng, 110);
        k[q] = min_k + 2 * zelo_rng_below(&rng, (8 - min_k) / 2 + 1);  // min_k, ..., 8
        cap += zelo_pair_graph_capacity(n[q], k[q]);
    }
    bt.doc_start = (int64_t*)mallocCheck((size_t)(Q + 1) * sizeof(int64_t));
    bt.pair_start = (int64_t*)mallocCheck((size_t)(Q + 1) * sizeof(int64_t));
    bt.a = (int*)mallocCheck((size_t)(cap + 1) * sizeof(int));
    bt.b = (int*)mallocCheck((size_t)(cap + 1) * sizeof(int));
    bt.p = (double*)mallocCheck((size_t)(cap + 1) * sizeof(double));
    bt.offset = with_offsets ? (double*)mallocCheck((size_t)(cap + 1) * sizeof(double)) : NULL;
    bt.doc_start[0] = bt.pair_start[0] = 0;
    double hidden[300];
    for (int q = 0; q < Q; q++) {
        bt.doc_start[q + 1] = bt.doc_start[q] + n[q];
        int64_t p0 = bt.pair_start[q];
        int m = zelo_pair_graph(bt.a + p0, bt.b + p0, n[q], k[q], zelo_rng_next(&rng));
        int kind = zelo_rng_below(&rng, 4);
        for (int i = 0; i < n[q]; i++) { hidden[i] = 1.5 * zelo_rng_normal(&rng); }
        int kept = 0;
        for (int j = 0; j < m; j++) {
            int x = bt.a[p0 + j], y = bt.b[p0 + j];
            if (kind == 3 && (x == n[q] - 1 || y == n[q] - 1)) { continue; }  // the last document left out
            double p = zelo_sim_judge_prob(hidden[x], hidden[y], link, &rng);
            if (kind == 1 || (kind == 2 && zelo_rng_below(&rng, 2) == 0)) { p = hidden[x] > hidden[y] ? 1.0 : 0.0; }
            bt.a[p0 + kept] = x;
            bt.b[p0 + kept] = y;
            bt.p[p0 + kept] = p;
            if (bt.offset) { bt.offset[p0 + kept] = 0.5 * zelo_rng_normal(&rng); }
            kept++;
        }
        bt.pair_start[q + 1] = p0 + kept;
    }
    free(n);
    free(k);
    return bt;
}

static void free_batch(Batch* bt) {
    free(bt->doc_start); free(bt->pair_start); free(bt->a); free(bt->b); free(bt->p); free(bt->offset);
}

static ZeloPairs pairs_of(const Batch* bt) {
    ZeloPairs pairs = { bt->Q, bt->doc_start, bt->pair_start, bt->a, bt->b, bt->p, bt->offset };
    return pairs;
}

// the kernel on an upload of the batch, over num_slots blocks of block_size threads, into
// poisoned outputs (zelo_fit_uploaded); ratings (D) and status (Q) copied back
static void launch(double* ratings, ZeloFitStatus* status, const Batch* bt, const ZeloFitConfig* cfg, int num_slots,
                   int block_size) {
    ZeloPairs pairs = pairs_of(bt);
    ZeloFitBatchCuda batch;
    zelo_fit_batch_upload(&batch, &pairs, cfg);
    zelo_fit_uploaded(ratings, status, &batch, cfg, num_slots, block_size);
    zelo_fit_batch_free(&batch);
}

// the fields of a status (padding aside) are the same bits
static int same_status(const ZeloFitStatus* x, const ZeloFitStatus* y) {
    return x->converged == y->converged && x->iterations == y->iterations && x->cg_iterations == y->cg_iterations &&
           memcmp(&x->grad_inf, &y->grad_inf, sizeof(double)) == 0 &&
           memcmp(&x->objective, &y->objective, sizeof(double)) == 0 && x->no_optimum == y->no_optimum &&
           memcmp(&x->lambda, &y->lambda, sizeof(double)) == 0;
}

static double worst_rating_error = 0.0;

// one batch: the kernel against the CPU, then determinism and the host API
static void test_case(const char* name, ZeloLink link, double lambda, int with_offsets, int Q, int block_size,
                      uint64_t seed) {
    Batch bt = make_batch(Q, link, with_offsets, lambda > 0 ? 2 : 4, seed);
    ZeloPairs pairs = pairs_of(&bt);
    ZeloFitConfig cfg;
    zelo_fit_config_default(&cfg, link);
    cfg.lambda = lambda;
    int64_t D = bt.doc_start[Q];
    double* want = (double*)mallocCheck((size_t)D * sizeof(double));
    ZeloFitStatus* want_st = (ZeloFitStatus*)mallocCheck((size_t)Q * sizeof(ZeloFitStatus));
    ZeloPairError err;
    int want_bad = zelo_fit_ratings(want, want_st, &err, &pairs, &cfg);
    CHECK(want_bad >= 0, "%s: the CPU refused the batch: %s", name, err.message);

    double* got = (double*)mallocCheck((size_t)D * sizeof(double));
    ZeloFitStatus* got_st = (ZeloFitStatus*)mallocCheck((size_t)Q * sizeof(ZeloFitStatus));
    launch(got, got_st, &bt, &cfg, Q, block_size);
    double worst = 0.0, worst_objective = 0.0;
    int bad_ratings = 0, bad_status = 0, no_optimum = 0, max_iterations = 0;
    for (int q = 0; q < Q; q++) {
        for (int64_t i = bt.doc_start[q]; i < bt.doc_start[q + 1]; i++) {
            double e = fabs(got[i] - want[i]);
            if (!(e <= 1e-9)) {
                if (bad_ratings++ < 5) { printf("  query %d rating %lld: got %.17g, want %.17g\n", q, (long long)(i - bt.doc_start[q]), got[i], want[i]); }
                e = isnan(e) ? INFINITY : e;
            }
            worst = fmax(worst, e);
        }
        const ZeloFitStatus *g = &got_st[q], *w = &want_st[q];
        double objective_error = rel_err(g->objective, w->objective, 1.0);
        worst_objective = fmax(worst_objective, isnan(objective_error) ? INFINITY : objective_error);
        int same = g->converged == w->converged && g->iterations == w->iterations && g->no_optimum == w->no_optimum &&
                   g->lambda == w->lambda && objective_error <= 1e-12 && (!g->converged || g->grad_inf <= cfg.grad_tol);
        if (!same && bad_status++ < 5) {
            printf("  query %d status: got converged %d its %d no_optimum %d lambda %g objective %.17g |grad| %.2e; "
                   "want %d %d %d %g %.17g %.2e\n", q, g->converged, g->iterations, (int)g->no_optimum, g->lambda,
                   g->objective, g->grad_inf, w->converged, w->iterations, (int)w->no_optimum, w->lambda, w->objective,
                   w->grad_inf);
        }
        no_optimum += w->no_optimum != ZELO_OPTIMUM_FINITE;
        if (w->iterations > max_iterations) { max_iterations = w->iterations; }
    }
    worst_rating_error = fmax(worst_rating_error, worst);
    printf("%-44s Q=%d D=%lld P=%lld block %d: worst rating error %.1e, objective %.1e; %d queries without an "
           "optimum at lambda 0; Newton iterations up to %d\n", name, Q, (long long)D, (long long)bt.pair_start[Q],
           block_size, worst, worst_objective, no_optimum, max_iterations);
    CHECK(bad_ratings == 0, "%s: %d ratings differ from the CPU's by more than 1e-9 (worst %.2e)", name, bad_ratings, worst);
    CHECK(bad_status == 0, "%s: %d statuses differ from the CPU's", name, bad_status);
    CHECK(want_bad == 0, "%s: %d queries did not converge on the CPU (the batch should converge)", name, want_bad);
    if (lambda == 0) { CHECK(no_optimum > 0, "%s: no query lacks an optimum: the fallback is not exercised", name); }

    // the same bits over 3 blocks (each takes a third of the queries in turn)
    double* again = (double*)mallocCheck((size_t)D * sizeof(double));
    ZeloFitStatus* again_st = (ZeloFitStatus*)mallocCheck((size_t)Q * sizeof(ZeloFitStatus));
    launch(again, again_st, &bt, &cfg, 3, block_size);
    int same_bits = memcmp(again, got, (size_t)D * sizeof(double)) == 0;
    for (int q = 0; q < Q; q++) { same_bits &= same_status(&again_st[q], &got_st[q]); }
    CHECK(same_bits, "%s: 3 blocks give other bits than %d", name, Q);

    // the host API, at its own block size, into poisoned host arrays
    if (block_size == ZELO_FIT_BLOCK_SIZE) {
        memset(again, 0xFF, (size_t)D * sizeof(double));
        memset(again_st, 0xFF, (size_t)Q * sizeof(ZeloFitStatus));
        int bad = zelo_fit_ratings_cuda(again, again_st, &err, &pairs, &cfg);
        same_bits = bad == want_bad && memcmp(again, got, (size_t)D * sizeof(double)) == 0;
        for (int q = 0; q < Q; q++) { same_bits &= same_status(&again_st[q], &got_st[q]); }
        CHECK(same_bits, "%s: zelo_fit_ratings_cuda differs from the kernel's launch", name);
    }
    free(again); free(again_st); free(got); free(got_st); free(want); free(want_st);
    free_batch(&bt);
}

// bad input: refused before anything runs, with the CPU's error
static void test_refusal(void) {
    int64_t doc_start[2] = { 0, 3 }, pair_start[2] = { 0, 2 };
    int a[2] = { 0, 1 }, b[2] = { 1, 2 };
    double p[2] = { 0.5, 1.5 };
    ZeloPairs pairs = { 1, doc_start, pair_start, a, b, p, NULL };
    ZeloFitConfig cfg;
    zelo_fit_config_default(&cfg, ZELO_LINK_THURSTONE);
    double ratings[3];
    ZeloPairError err, want;
    int got = zelo_fit_ratings_cuda(ratings, NULL, &err, &pairs, &cfg);
    zelo_fit_ratings(ratings, NULL, &want, &pairs, &cfg);
    CHECK(got == -1 && err.query == 0 && err.pair == 1 && strcmp(err.message, want.message) == 0,
          "p = 1.5 not refused as the CPU refuses it (got %d: %s)", got, err.message);
}

int main(int argc, char** argv) {
    seed_base = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    printf("test_zelo_cuda: seed %llu (rerun with: test_zelo_cuda %llu)\n", (unsigned long long)seed_base,
           (unsigned long long)seed_base);
    const int Q = 40;
    for (int link = 0; link < 2; link++) {
        ZeloLink l = (ZeloLink)link;
        double prior = l == ZELO_LINK_BT ? ZELO_DEFAULT_LAMBDA_BT : ZELO_DEFAULT_LAMBDA_THURSTONE;
        for (int with_offsets = 0; with_offsets < 2; with_offsets++) {
            for (int zero = 0; zero < 2; zero++) {
                char name[96];
                snprintf(name, sizeof(name), "%s, lambda %g, %s", zelo_link_name(l), zero ? 0.0 : prior,
                         with_offsets ? "offsets" : "no offsets");
                test_case(name, l, zero ? 0.0 : prior, with_offsets, Q, ZELO_FIT_BLOCK_SIZE,
                          seed_base + 8 * (uint64_t)link + 2 * (uint64_t)with_offsets + (uint64_t)zero);
            }
        }
    }
    // other block sizes: other reduction trees, the same ratings within the tolerance
    test_case("thurstone, lambda 0.01, one warp a block", ZELO_LINK_THURSTONE, ZELO_DEFAULT_LAMBDA_THURSTONE, 1, 12, 32,
              seed_base + 100);
    test_case("bt, lambda 0, 256 threads a block", ZELO_LINK_BT, 0.0, 0, 12, 256, seed_base + 101);
    test_refusal();
    printf("worst rating error over all batches: %.2e (tolerance 1e-9)\n", worst_rating_error);
    return test_summary("test_zelo_cuda");
}
