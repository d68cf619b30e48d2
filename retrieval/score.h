/*
 * retrieval/score.h — a cross-encoder's scores of (query, document) pairs: each pair becomes
 * [CLS] query [SEP] document [SEP] (tokenizer_encode_pair: token types 0/1, longest-first
 * truncation to max_len), or [CLS] query [SEP] [CLS] document [SEP] for a model of the split
 * packing (tokenizer_encode_split_pair), the sequences of a batch are packed back to back with no
 * padding, and bert_infer gives one logit per sequence. train_zelo (training batches,
 * evaluation) and rerank share it, so both read exactly the same input.
 */
#ifndef ZELO_SCORE_H
#define ZELO_SCORE_H

#include "io/beir.h"
#include "model.h"
#include "tokenizer/wordpiece.h"

typedef struct {
    int max_len;
    Packing packing;     // how a pair becomes a sequence (model.h): the model's
    int cap;             // sequences a batch holds
    int n_seqs;
    int n_tokens;
    int* ids;            // (cap * max_len,) packed, back to back
    int* types;          // (cap * max_len,)
    int* seq_starts;     // (cap + 1,)
    int* item_ids;       // (cap, max_len) each sequence before packing
    int* item_types;     // (cap, max_len)
    int* item_len;       // (cap,)
} Batch;

void batch_init(Batch* b, int cap, int max_len, Packing packing);
void batch_free(Batch* b);
// the sequences of (queries[i], docs[i]) for i < n (query and corpus indices), packed
void batch_encode(Batch* b, const Tokenizer* tok, const Queries* queries, const Corpus* corpus,
                  const int* query_of, const int* doc_of, int n);
// scores[i] = the model's logit for (query_of[i], doc_of[i]), i < n, in batches of b->cap,
// with a progress line named `what` on stderr. Dies naming the pair if a score is not finite.
void score_pairs(float* scores, BertModel* model, Batch* b, const Tokenizer* tok, const Queries* queries,
                 const Corpus* corpus, const int* query_of, const int* doc_of, int n, const char* what);

#endif // ZELO_SCORE_H
