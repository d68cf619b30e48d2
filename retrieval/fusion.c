/*
 * retrieval/fusion.c — reciprocal rank fusion and top-K selection (see fusion.h).
 */
#include <math.h>
#include <stdlib.h>
#include <stb/stb_ds.h>
#include "retrieval/fusion.h"
#include "common/utils.h"

// whether (score a, index ia) ranks below (score b, index ib): a lower score, or an equal
// score and a higher index
static int ranks_below(float a, int ia, float b, int ib) {
    return a < b || (a == b && ia > ib);
}

// restores the min-heap (the worst entry at the root) below position i
static void sift_down(int* idx, float* val, int n, int i) {
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && ranks_below(val[l], idx[l], val[worst], idx[worst])) { worst = l; }
        if (r < n && ranks_below(val[r], idx[r], val[worst], idx[worst])) { worst = r; }
        if (worst == i) { return; }
        int ti = idx[i]; idx[i] = idx[worst]; idx[worst] = ti;
        float tv = val[i]; val[i] = val[worst]; val[worst] = tv;
        i = worst;
    }
}

void top_k(int* index_out, float* score_out, const float* scores, int n, int K) {
    int m = n < K ? n : K;
    // a min-heap of the best m seen so far in index_out/score_out
    for (int i = 0; i < m; i++) { index_out[i] = i; score_out[i] = scores[i]; }
    for (int i = m / 2 - 1; i >= 0; i--) { sift_down(index_out, score_out, m, i); }
    for (int i = m; i < n; i++) {
        if (ranks_below(score_out[0], index_out[0], scores[i], i)) {
            index_out[0] = i;
            score_out[0] = scores[i];
            sift_down(index_out, score_out, m, 0);
        }
    }
    // popping the worst to the end leaves the heap's entries best first
    for (int end = m - 1; end > 0; end--) {
        int ti = index_out[0]; index_out[0] = index_out[end]; index_out[end] = ti;
        float tv = score_out[0]; score_out[0] = score_out[end]; score_out[end] = tv;
        sift_down(index_out, score_out, end, 0);
    }
    for (int i = m; i < K; i++) { index_out[i] = -1; score_out[i] = 0.0f; }
}

typedef struct {
    int key;        // document index
    double value;   // its fused score so far
} FusedDoc;

void rrf_fuse(int* doc_out, float* score_out, const int* const* lists, const int* lengths, int n_lists, int k, int K) {
    if (k < 0) { die("rrf_fuse: k = %d, must be >= 0", k); }
    FusedDoc* fused = NULL;  // stb_ds hash map: document -> score
    for (int l = 0; l < n_lists; l++) {
        for (int r = 0; r < lengths[l]; r++) {
            int d = lists[l][r];
            if (d < 0) { continue; }
            FusedDoc* e = hmgetp_null(fused, d);
            double add = 1.0 / (double)(k + r + 1);
            if (e == NULL) { hmput(fused, d, add); }
            else { e->value += add; }
        }
    }
    int n = (int)hmlen(fused);
    // the map's entries in document order, so that top_k's tie rule (lower index first) is
    // the document index's
    int max_doc = -1;
    for (int i = 0; i < n; i++) { max_doc = fused[i].key > max_doc ? fused[i].key : max_doc; }
    float* by_doc = (float*)mallocCheck(sizeof(float) * (size_t)(max_doc + 1 > 0 ? max_doc + 1 : 1));
    for (int d = 0; d <= max_doc; d++) { by_doc[d] = -1.0f; }  // below every fused score (> 0)
    for (int i = 0; i < n; i++) { by_doc[fused[i].key] = (float)fused[i].value; }
    top_k(doc_out, score_out, by_doc, max_doc + 1, K);
    // places past the fused documents (top_k ranked documents of no list there, at -1)
    for (int i = n; i < K; i++) { doc_out[i] = -1; score_out[i] = 0.0f; }
    free(by_doc);
    hmfree(fused);
}

// the mean and 1/deviation of x[0..n); 0 for the latter when x is constant, so that a
// constant list standardises to zeros instead of dividing by zero
static void standardizer(double* mean, double* inv_dev, const float* x, int n) {
    double m = 0.0, v = 0.0;
    for (int i = 0; i < n; i++) { m += x[i]; }
    m = n > 0 ? m / n : 0.0;
    for (int i = 0; i < n; i++) { v += (x[i] - m) * (x[i] - m); }
    v = n > 0 ? v / n : 0.0;
    *mean = m;
    *inv_dev = v > 0.0 ? 1.0 / sqrt(v) : 0.0;
}

void interpolate_standardized(float* out, const float* model, const float* first, int n, double alpha) {
    double mm, im, mf, inf;
    standardizer(&mm, &im, model, n);
    standardizer(&mf, &inf, first, n);
    for (int i = 0; i < n; i++) {
        out[i] = (float)(alpha * (model[i] - mm) * im + (1.0 - alpha) * (first[i] - mf) * inf);
    }
}
