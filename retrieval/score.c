/*
 * retrieval/score.c — packed (query, document) batches and their scores; see score.h.
 */
#include "retrieval/score.h"

#include <math.h>
#include <string.h>

#include "common/progress.h"
#include "common/utils.h"

void batch_init(Batch* b, int cap, int max_len, Packing packing) {
    b->max_len = max_len;
    b->packing = packing;
    b->cap = cap;
    b->n_seqs = b->n_tokens = 0;
    b->ids = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->types = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->seq_starts = (int*)mallocCheck((size_t)(cap + 1) * sizeof(int));
    b->item_ids = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->item_types = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->item_len = (int*)mallocCheck((size_t)cap * sizeof(int));
}

void batch_free(Batch* b) {
    free(b->ids); free(b->types); free(b->seq_starts);
    free(b->item_ids); free(b->item_types); free(b->item_len);
}

void batch_encode(Batch* b, const Tokenizer* tok, const Queries* queries, const Corpus* corpus,
                  const int* query_of, const int* doc_of, int n) {
    if (n > b->cap) { die("batch of %d sequences, room for %d", n, b->cap); }
    // tokenizing is a good share of the time for a small model, and the tokenizer is
    // read-only, so the sequences of a batch are encoded in parallel
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) {
        int* ids = b->item_ids + (size_t)i * b->max_len;
        int* types = b->item_types + (size_t)i * b->max_len;
        const char* q = beir_text(queries, query_of[i]);
        const char* d = beir_text(corpus, doc_of[i]);
        size_t q_len = beir_text_len(queries, query_of[i]), d_len = beir_text_len(corpus, doc_of[i]);
        b->item_len[i] = b->packing == PACKING_SPLIT ? tokenizer_encode_split_pair(tok, ids, types, b->max_len, q, q_len, d, d_len)
                                                     : tokenizer_encode_pair(tok, ids, types, b->max_len, q, q_len, d, d_len);
    }
    b->n_seqs = n;
    b->n_tokens = 0;
    for (int i = 0; i < n; i++) {
        b->seq_starts[i] = b->n_tokens;
        memcpy(b->ids + b->n_tokens, b->item_ids + (size_t)i * b->max_len, (size_t)b->item_len[i] * sizeof(int));
        memcpy(b->types + b->n_tokens, b->item_types + (size_t)i * b->max_len, (size_t)b->item_len[i] * sizeof(int));
        b->n_tokens += b->item_len[i];
    }
    b->seq_starts[n] = b->n_tokens;
}

void score_pairs(float* scores, BertModel* model, Batch* b, const Tokenizer* tok, const Queries* queries,
                 const Corpus* corpus, const int* query_of, const int* doc_of, int n, const char* what) {
    Progress progress;
    progress_begin(&progress, what, n);
    for (int start = 0; start < n; start += b->cap) {
        int m = n - start < b->cap ? n - start : b->cap;
        batch_encode(b, tok, queries, corpus, query_of + start, doc_of + start, m);
        bert_infer(model, b->ids, b->types, b->seq_starts, m);
        for (int i = 0; i < m; i++) {
            float s = model->logits[(size_t)i * model->config.num_labels];
            if (!isfinite(s)) {
                die("the model scored query '%s', document '%s' as %f: the weights are broken",
                    beir_id(queries, query_of[start + i]), beir_id(corpus, doc_of[start + i]), (double)s);
            }
            scores[start + i] = s;
        }
        progress_update(&progress, start + m);
    }
}
