/*
 * test/test_fusion.c — the first stage's pieces for hybrid candidates: top-K selection,
 * reciprocal rank fusion and exact dense search (retrieval/fusion.h, retrieval/dense.h).
 *
 * References, each written out here independently of the code under test: a fusion worked
 * by hand (k = 60, ties included); a brute force that, for every document of the lists,
 * finds its rank in each list by a linear scan, sums 1 / (k + rank) in double and sorts the
 * whole set with qsort; qsort of all scores for top-K; dot products in double (dense_dot) and
 * qsort for dense search. Top-K and the fusion are exact (the same doubles summed in the same
 * order, or equal floats compared): they must agree entry for entry. Dense search multiplies
 * in fp32 through the matrix products: its scores must be within 1e-5 of the double ones
 * (unit vectors of 64 entries: a dot product of 64 fp32 products and sums is off by a few
 * 1e-7 at most), and every document it returns must belong to the reference's top K up to
 * that margin (near-ties may swap, nothing else may).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>
#include "retrieval/fusion.h"
#include "retrieval/dense.h"
#include "common/utils.h"
#include "test/test.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

typedef struct { int index; double score; } Scored;

// best first: higher score, then lower index
static int by_score(const void* x, const void* y) {
    const Scored* a = (const Scored*)x;
    const Scored* b = (const Scored*)y;
    if (a->score != b->score) { return a->score > b->score ? -1 : 1; }
    return a->index - b->index;
}

static void test_rrf_by_hand(void) {
    // A = [1, 2, 3], B = [3, 4, 1]: documents 1 and 3 each score 1/61 + 1/63 (a tie, by index:
    // 1 then 3), 2 and 4 each 1/62 (2 then 4); a fifth place is empty
    const int a[3] = {1, 2, 3}, b[3] = {3, 4, 1};
    const int* lists[2] = {a, b};
    const int lengths[2] = {3, 3};
    int docs[5];
    float scores[5];
    rrf_fuse(docs, scores, lists, lengths, 2, 60, 5);
    const int want[5] = {1, 3, 2, 4, -1};
    CHECK(memcmp(docs, want, sizeof(want)) == 0, "rrf by hand: [%d %d %d %d %d], want [1 3 2 4 -1]", docs[0], docs[1],
          docs[2], docs[3], docs[4]);
    CHECK(scores[0] == (float)(1.0 / 61 + 1.0 / 63) && scores[2] == (float)(1.0 / 62) && scores[4] == 0.0f,
          "rrf by hand: scores %.9g %.9g %.9g", scores[0], scores[2], scores[4]);
    // k = 0: the first place of a list is worth 1, the second 1/2
    rrf_fuse(docs, scores, lists, lengths, 2, 0, 2);
    CHECK(docs[0] == 1 && docs[1] == 3 && scores[0] == (float)(1.0 + 1.0 / 3), "rrf k=0: %d %d %.9g", docs[0], docs[1], scores[0]);
}

// the rank (from 1) of d in list (n), 0 when absent
static int rank_in(const int* list, int n, int d) {
    for (int r = 0; r < n; r++) { if (list[r] == d) { return r + 1; } }
    return 0;
}

static void test_rrf_brute_force(void) {
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        int n_docs = 5 + (int)(next_u32() % 300), n_lists = 1 + (int)(next_u32() % 3), K = 1 + (int)(next_u32() % 120);
        int k = (int)(next_u32() % 100);
        int* lists[3];
        int lengths[3];
        for (int l = 0; l < n_lists; l++) {
            // a random permutation's prefix, with a -1 or two mixed in (ignored entries)
            int* perm = (int*)mallocCheck(sizeof(int) * (size_t)n_docs);
            for (int i = 0; i < n_docs; i++) { perm[i] = i; }
            for (int i = n_docs - 1; i > 0; i--) { int j = (int)(next_u32() % (uint32_t)(i + 1)); int t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
            lengths[l] = 1 + (int)(next_u32() % (uint32_t)n_docs);
            if (next_u32() % 4 == 0) { perm[lengths[l] - 1] = -1; }
            lists[l] = perm;
        }
        Scored* ref = (Scored*)mallocCheck(sizeof(Scored) * (size_t)n_docs);
        int n_ref = 0;
        for (int d = 0; d < n_docs; d++) {
            double sum = 0.0;
            int seen = 0;
            // in list order, as rrf_fuse adds: the same doubles in the same order
            for (int l = 0; l < n_lists; l++) {
                int r = rank_in(lists[l], lengths[l], d);
                if (r > 0) { sum += 1.0 / (double)(k + r); seen = 1; }
            }
            if (seen) { ref[n_ref++] = (Scored){d, (float)sum}; }
        }
        qsort(ref, (size_t)n_ref, sizeof(Scored), by_score);
        int* docs = (int*)mallocCheck(sizeof(int) * (size_t)K);
        float* scores = (float*)mallocCheck(sizeof(float) * (size_t)K);
        rrf_fuse(docs, scores, (const int* const*)lists, lengths, n_lists, k, K);
        for (int i = 0; i < K; i++) {
            int want = i < n_ref ? ref[i].index : -1;
            float want_score = i < n_ref ? (float)ref[i].score : 0.0f;
            if (docs[i] != want || scores[i] != want_score) { bad++; break; }
        }
        for (int l = 0; l < n_lists; l++) { free(lists[l]); }
        free(ref);
        free(docs);
        free(scores);
    }
    CHECK(bad == 0, "rrf against the brute force: %d of 200 random fusions differ", bad);
}

static void test_top_k(void) {
    int bad = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = (int)(next_u32() % 500), K = 1 + (int)(next_u32() % 80);
        int levels = 1 + (int)(next_u32() % 20);  // few distinct values: many ties
        float* scores = (float*)mallocCheck(sizeof(float) * (size_t)(n > 0 ? n : 1));
        Scored* ref = (Scored*)mallocCheck(sizeof(Scored) * (size_t)(n > 0 ? n : 1));
        for (int i = 0; i < n; i++) {
            scores[i] = (float)(next_u32() % (uint32_t)levels) - 3.5f;
            ref[i] = (Scored){i, scores[i]};
        }
        qsort(ref, (size_t)n, sizeof(Scored), by_score);
        int* idx = (int*)mallocCheck(sizeof(int) * (size_t)K);
        float* val = (float*)mallocCheck(sizeof(float) * (size_t)K);
        top_k(idx, val, scores, n, K);
        for (int i = 0; i < K; i++) {
            int want = i < n ? ref[i].index : -1;
            if (idx[i] != want || val[i] != (i < n ? (float)ref[i].score : 0.0f)) { bad++; break; }
        }
        free(scores); free(ref); free(idx); free(val);
    }
    CHECK(bad == 0, "top_k against qsort: %d of 300 random lists differ", bad);
}

static float gaussian(void) {
    double u1 = ((next_u32() >> 8) + 0.5) / 16777216.0, u2 = (next_u32() >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct { const DenseStore* store; const float* queries; int nq, K; } SearchArgs;

static void search_partial(const void* arg) {
    const SearchArgs* a = (const SearchArgs*)arg;
    int docs[25];
    float scores[25];
    dense_search(docs, scores, a->store, a->queries, 1, 25);
}

static void test_dense_search(void) {
    const int N = 700, C = 64, nq = 130, K = 25;  // 130 queries: three blocks of products
    DenseStore store;
    memset(&store, 0, sizeof(store));
    store.n_items = N;
    store.C = C;
    store.row_of = (int*)mallocCheck(sizeof(int) * N);
    // rows stored in a shuffled order: the search must map them back to their items
    for (int i = 0; i < N; i++) { store.row_of[i] = (i * 7 + 3) % N; }  // 7 is prime to 700
    arrsetlen(store.item_of, N);
    arrsetlen(store.rows, (size_t)N * C);
    for (int i = 0; i < N; i++) { store.item_of[store.row_of[i]] = i; }
    for (int r = 0; r < N; r++) {
        float* row = store.rows + (size_t)r * C;
        for (int c = 0; c < C; c++) { row[c] = gaussian(); }
        double norm = sqrt(dense_dot(row, row, C));
        for (int c = 0; c < C; c++) { row[c] = (float)(row[c] / norm); }
    }
    store.n = N;
    float* queries = (float*)mallocCheck(sizeof(float) * (size_t)nq * C);
    for (int i = 0; i < nq * C; i++) { queries[i] = gaussian() * 0.1f; }
    int* docs = (int*)mallocCheck(sizeof(int) * (size_t)nq * K);
    float* scores = (float*)mallocCheck(sizeof(float) * (size_t)nq * K);
    dense_search(docs, scores, &store, queries, nq, K);
    Scored* ref = (Scored*)mallocCheck(sizeof(Scored) * N);
    double worst = 0.0;
    int outside = 0, unsorted = 0;
    for (int q = 0; q < nq; q++) {
        for (int d = 0; d < N; d++) { ref[d] = (Scored){d, dense_dot(queries + (size_t)q * C, dense_store_row(&store, d), C)}; }
        qsort(ref, N, sizeof(Scored), by_score);
        for (int i = 0; i < K; i++) {
            int d = docs[(size_t)q * K + i];
            double exact = d >= 0 && d < N ? dense_dot(queries + (size_t)q * C, dense_store_row(&store, d), C) : -1e9;
            worst = fmax(worst, fabs(exact - scores[(size_t)q * K + i]));
            if (exact < ref[K - 1].score - 1e-5) { outside++; }
            if (i > 0 && scores[(size_t)q * K + i] > scores[(size_t)q * K + i - 1]) { unsorted++; }
        }
    }
    printf("dense search: worst |fp32 score - double| %.2e over %d queries x top %d\n", worst, nq, K);
    CHECK(worst <= 1e-5, "dense search scores off the double dot products by %.3g", worst);
    CHECK(outside == 0 && unsorted == 0, "dense search: %d documents outside the reference's top %d, %d out of order",
          outside, K, unsorted);
    // a store without every item is refused
    store.n = N - 1;
    SearchArgs args = {&store, queries, nq, K};
    char err[1024];
    int status = run_in_child(search_partial, &args, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "holds 699 of its 700 items"), "dense search over a partial store: status %d, '%s'", status, err);
    free(docs); free(scores); free(ref); free(queries);
    free(store.row_of);
    arrfree(store.item_of);
    arrfree(store.rows);
}

// interpolation worked by hand: model (1, 2, 3) standardises to (-a, 0, a), a = sqrt(3/2);
// first (10, 10, 40) has mean 20 and deviation sqrt(200), so (-1/sqrt2, -1/sqrt2, sqrt2).
// Tolerance 1e-6: the result is rounded once to float from double arithmetic.
static void test_interpolation(void) {
    float model[3] = { 1, 2, 3 }, first[3] = { 10, 10, 40 }, out[3];
    double a = sqrt(1.5), r = sqrt(0.5);
    double want[3] = { 0.25 * -a + 0.75 * -r, 0.75 * -r, 0.25 * a + 0.75 * 2 * r };
    interpolate_standardized(out, model, first, 3, 0.25);
    for (int i = 0; i < 3; i++) { CHECK(fabs(out[i] - want[i]) < 1e-6, "interpolation [%d]: %.7f, want %.7f", i, out[i], want[i]); }
    // a constant list adds nothing (no division by a zero deviation); out may alias an input
    float flat[3] = { 5, 5, 5 };
    interpolate_standardized(flat, model, flat, 3, 0.5);
    for (int i = 0; i < 3; i++) {
        double w = 0.5 * (i - 1) * a;
        CHECK(fabs(flat[i] - w) < 1e-6, "interpolation with a constant list [%d]: %.7f, want %.7f", i, flat[i], w);
    }
    // the ends: alpha 1 is the model's z-scores, alpha 0 the first stage's
    interpolate_standardized(out, model, first, 3, 0.0);
    CHECK(fabs(out[2] - 2 * r) < 1e-6 && fabs(out[0] + r) < 1e-6, "interpolation at alpha 0: %.7f %.7f", out[0], out[2]);
}

int main(void) {
    test_interpolation();
    test_rrf_by_hand();
    test_rrf_brute_force();
    test_top_k();
    test_dense_search();
    return test_summary("test_fusion");
}
