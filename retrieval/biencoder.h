/*
 * retrieval/biencoder.h — training an embedding model (a mean-pooled bi-encoder, as
 * retrieval/dense.h computes it) on zELO's ratings, and exact retrieval over a whole corpus.
 *
 * The loss, per training query g with candidates j in its group (each with the judge's fitted
 * rating e_j): a listwise softmax cross-entropy between
 *   the target distribution  t_j = softmax_j(e_j / T)           over g's own candidates, and
 *   the model's distribution p_j = softmax_j(cos(q_g, d_j) / tau) over g's candidates, and with
 *                                  in-batch negatives over every document of the step;
 *   L_g = -sum_j t_j log p_j,  the loss = mean over the groups of the step.
 * Documents of other queries get target 0: they are negatives, present only in p's denominator.
 *
 * tau scales the cosines ([-1, 1]) into logits; 0.05 is the usual temperature of contrastive
 * sentence-embedding training. T is the ratings' temperature: softmax(e / T) restricted to two
 * documents gives P(i before j) = sigmoid((e_i - e_j) / T), so T is chosen to make that equal
 * the rating fit's own link: T = 1 for Bradley–Terry, whose link is that sigmoid exactly, and
 * T = 1 / (1.702 * sqrt(2)) for Thurstone, whose link ½(1 + erf(x)) = Phi(sqrt(2) x) is
 * Phi(z) ≈ sigmoid(1.702 z) (within 0.01 everywhere). The target ranking then says no more and
 * no less than the judge's fitted win probabilities.
 *
 * Gradients go to the un-normalised mean-pooled embeddings (model->embeddings), through the
 * L2 normalisation and the cosine, so that bert_backward takes them as its dembeddings.
 */
#ifndef ZELO_BIENCODER_H
#define ZELO_BIENCODER_H

#include <stdint.h>
#include "io/beir.h"
#include "model.h"
#include "tokenizer/wordpiece.h"
#include "zelo_loss.h"

#define BIENCODER_DEFAULT_TAU 0.05
// ½(1 + erf(x)) ≈ sigmoid(1.702 sqrt(2) x): the logistic approximation of the normal CDF
#define BIENCODER_THURSTONE_T (1.0 / (1.702 * 1.4142135623730951))

typedef struct {
    double tau;     // temperature of the cosines
    double T;       // temperature of the ratings
    int in_batch;   // 1: every document of the step is a candidate of every query (target 0 for others')
} BiencoderLoss;

// the ratings' temperature that matches a rating fit's link (see above)
double biencoder_rating_temperature(ZeloLink link);

// emb (G + n, C): the raw (un-normalised) embeddings of G queries, then of n documents; group g
// owns the documents doc_start[g] .. doc_start[g+1] - 1 (rows G + j), doc_start (G + 1,),
// doc_start[0] = 0, doc_start[G] = n, every group non-empty. ratings (n,): each document's
// rating for its own group's query. Returns the loss (mean over groups, computed in double);
// demb (G + n, C) = d loss / d emb.
double biencoder_listwise_loss(float* demb, const float* emb, const float* ratings, const int* doc_start,
                               int G, int C, const BiencoderLoss* cfg);

// what the training step reads of the zELO targets stage: per training query its candidates
// and their fitted ratings
typedef struct {
    int n;                 // training queries
    int K;                 // row length of docs and ratings
    const int* query;      // (n,) query index
    const int* num_docs;   // (n,) real candidates of query i (<= K)
    const int* docs;       // (n, K) corpus indices
    const float* ratings;  // (n, K)
} BiencoderData;

// one micro-batch's sequences and buffers, reused from step to step
typedef struct {
    int groups, group_size, max_len;
    int G, n;              // queries and documents of the current micro-batch
    int* ids;              // (groups * (1 + group_size) * max_len,) packed token ids
    int* seq_starts;       // (groups * (1 + group_size) + 1,)
    int* doc_start;        // (groups + 1,)
    int* doc;              // (groups * group_size,) corpus index of each document
    float* ratings;        // (groups * group_size,)
    float* demb;           // (groups * (1 + group_size), C)
    int* order;            // (max(n_train, K),) scratch of the sampler
} BiencoderBatch;

void biencoder_batch_init(BiencoderBatch* b, int groups, int group_size, int max_len, int C, int n_train, int K);
void biencoder_batch_free(BiencoderBatch* b);

// one micro-batch of training step `step`: min(groups, n) distinct training queries, each with
// min(group_size, its candidates) of its candidates, drawn from a generator seeded by
// (seed, step, micro) alone; a forward pass of the queries and documents, the loss, and
// bert_backward of d loss / d emb times grad_scale (accumulated into model->grads).
// Returns the loss (unscaled).
double biencoder_step(BertModel* model, BiencoderBatch* b, const Tokenizer* tok, const Corpus* corpus,
                      const Queries* queries, const BiencoderData* data, const BiencoderLoss* cfg,
                      uint64_t seed, int step, int micro, float grad_scale);

// exact dense retrieval: for each of n_queries query texts, the k documents of the whole
// corpus with the largest cosine (embeddings as retrieval/dense.h computes them, at max_len),
// best first, ties to the lower index; a corpus of fewer than k documents pads with -1 / 0.
// docs_out and scores_out: (n_queries, k).
void biencoder_retrieve(int* docs_out, float* scores_out, BertModel* model, const Tokenizer* tok,
                        const Corpus* corpus, const char* const* query_texts, int n_queries, int k, int max_len);

// the same top-k over embeddings already computed: q (nq, C) and d (nd, C) L2-normalised
void biencoder_search(int* docs_out, float* scores_out, const float* q, int nq, const float* d, int nd, int C, int k);

#endif // ZELO_BIENCODER_H
