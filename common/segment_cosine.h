/*
 * common/segment_cosine.h — the arithmetic of the cosine score head (model.h, SCORE_HEAD_COSINE)
 * shared by the CPU (model.c) and the GPU (kernels/pooler.cuh), so that both take the same
 * spans and the same sums: where a (query, document) sequence's query and document lie, and
 * the three dot products of a cosine. Plain C; under nvcc every function is __host__ __device__.
 */
#ifndef ZELO_SEGMENT_COSINE_H
#define ZELO_SEGMENT_COSINE_H

#ifdef __CUDACC__
#define SEGMENT_COSINE_FN static inline __host__ __device__
#else
#define SEGMENT_COSINE_FN static inline
#endif

// The content tokens [*first, *first + n) of one side of the sequence [start, end) laid out as
// [CLS] query [SEP] document [SEP], n returned: side 0 the query's, from after [CLS] to before
// the first [SEP] (the token before the first type-1 token); side 1 the document's, from its
// first token to before the last [SEP]. [CLS] and [SEP] are left out: they are the same in
// every pair and would pull both means toward one point. A sequence with no type-1 token has
// an empty document. whole (the split packing, model.h): each side is its whole segment,
// [CLS] and [SEP] included, as the bi-encoder's mean pooling takes a text alone.
SEGMENT_COSINE_FN int segment_span(int* first, const int* types, int start, int end, int side, int whole) {
    int b = start;
    while (b < end && types[b] == 0) { b++; }
    if (whole) {
        *first = side == 0 ? start : b;
        return side == 0 ? b - start : end - b;
    }
    if (side == 0) {
        *first = start + 1;
        return b - 1 > start + 1 ? b - 1 - (start + 1) : 0;
    }
    *first = b;
    return end - 1 > b ? end - 1 - b : 0;
}

// u . v, u . u and v . v of two vectors of C floats, summed in double in index order
SEGMENT_COSINE_FN void cosine_sums(double* uv, double* uu, double* vv, const float* u, const float* v, int C) {
    *uv = 0.0;
    *uu = 0.0;
    *vv = 0.0;
    for (int c = 0; c < C; c++) {
        *uv += (double)u[c] * v[c];
        *uu += (double)u[c] * u[c];
        *vv += (double)v[c] * v[c];
    }
}

#endif // ZELO_SEGMENT_COSINE_H
