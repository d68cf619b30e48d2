/*
 * retrieval/fusion.h — ranked lists fused, and the top K of a scored list, for the hybrid
 * candidates of train_zelo (--candidates-from hybrid: BM25 and dense retrieval).
 *
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): a document's fused score
 * is the sum over the lists that hold it of 1 / (k + rank), rank counted from 1; a list that
 * does not hold it adds nothing. Only ranks count, so BM25's unbounded scores and the dense
 * model's cosines need no common scale. k damps the weight of the first few ranks; 60 is the
 * paper's value, which it found good across collections.
 *
 * Score interpolation, for the reranker's final order: a cross-encoder trained for a few
 * hundred steps can rank worse than the first stage it reranks (issue 13's measurements in
 * the README), and the two orders carry partly different evidence. Each list is standardised
 * over the query's candidates (mean 0, standard deviation 1; a constant list becomes all 0),
 * since a logit and an RRF or BM25 score share no scale, then mixed with weight alpha on the
 * model. train_zelo fits alpha on validation queries against the judge's ratings.
 */
#ifndef ZELO_FUSION_H
#define ZELO_FUSION_H

#define RRF_DEFAULT_K 60

// the K best documents of the fusion of n_lists ranked lists (lists[l] holds lengths[l]
// document indices, best first, -1 entries ignored; a document at most once per list), best
// first; equal fused scores go by document index, so that a run is reproducible. Fewer than
// K distinct documents leave -1 and score 0 in the places past them.
void rrf_fuse(int* doc_out /* (K,) */, float* score_out /* (K,) */, const int* const* lists,
              const int* lengths, int n_lists, int k, int K);

// the K highest of scores[0..n) as (index, score), best first, equal scores by index; places
// past n get -1 and score 0. O(n log K) with a heap.
void top_k(int* index_out /* (K,) */, float* score_out /* (K,) */, const float* scores, int n, int K);

// out[j] = alpha * z(model)[j] + (1 - alpha) * z(first)[j] for one query's n candidates,
// z standardising a list over its n entries (population deviation, in double); alpha 1 is the
// model's order, 0 the first stage's. out may alias either input.
void interpolate_standardized(float* out /* (n,) */, const float* model /* (n,) */, const float* first /* (n,) */,
                              int n, double alpha);

#endif // ZELO_FUSION_H
