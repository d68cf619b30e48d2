/*
 * retrieval/dense.h — sentence embeddings of a bi-encoder (all-MiniLM-L6-v2 and its kin) through our
 * BERT: each text becomes [CLS] text [SEP] (cut to max_len tokens as sentence-transformers
 * does), the last hidden states are averaged over every token of the sequence ([CLS] and
 * [SEP] included, as sentence-transformers' mean pooling does with its attention mask),
 * and the mean is L2-normalised, so that the dot product of two rows is their cosine.
 *
 * Used by the dense judge, by train_zelo to rank by dense similarity, and by its dense and
 * hybrid candidates (dense_search below).
 *
 * A DenseStore keeps the embeddings of some items of one collection (documents or
 * queries), computed once each. It can be saved to and loaded from a file, little-endian:
 *   header: 256 int32: [0] magic 20251101, [1] version 2, [2] n rows, [3] C,
 *           [4] n_items of the collection, [5] max_len, [6] [7] FNV-1a 64 of the
 *           collection's texts (low, high 32 bits), [8] [9] FNV-1a 64 of the model's
 *           parameter bytes up to the pooler (low, high); every other entry 0
 *   items:  (n,) int32, the collection index of each row, each at most once
 *   rows:   (n, C) float32, the L2-normalised embeddings
 * The fingerprints make a file computed for another corpus, another model or another
 * max_len an error instead of a silent mix-up.
 */
#ifndef ZELO_DENSE_H
#define ZELO_DENSE_H

#include <stdint.h>
#include "model.h"
#include "tokenizer/wordpiece.h"

// all-MiniLM-L6-v2's max_seq_length in sentence-transformers
#define DENSE_DEFAULT_MAX_LEN 256
// texts dense_embed tokenizes at a time, from the first: enough to sort into batches of even
// length, while the token buffer (chunk, max_len) stays small. A text's embedding depends on
// the texts of its chunk (their batches), so work split at multiples of DENSE_CHUNK (several
// processes) gives one call's bits.
#define DENSE_CHUNK 1024

// embeddings of texts[0..n), in order, each row L2-normalised. Texts are packed into
// batches of similar length (sorted by token count) so that little work is spent on
// unequal sequences; a progress line goes to stderr when n is large.
void dense_embed(float* out /* (n, C) */, BertModel* model, const Tokenizer* tok,
                 const char* const* texts, int n, int max_len);

// the dot product of two rows (the cosine of two normalised embeddings), in double
double dense_dot(const float* a, const float* b, int C);

typedef struct {
    int n_items;            // items of the collection
    int C;
    int max_len;
    uint64_t text_hash;     // FNV-1a 64 of the collection's texts
    uint64_t model_hash;    // FNV-1a 64 of the model's parameters that mean pooling reads
    int n;                  // rows held
    int* row_of;            // (n_items,) row of item i, -1 while not embedded
    int* item_of;           // stb_ds array (n,): item of each row
    float* rows;            // stb_ds array (n, C)
} DenseStore;

// FNV-1a 64 of the model's parameters that mean pooling reads (a store's model fingerprint)
uint64_t dense_model_hash(const BertModel* model);
// an empty store for the texts[0..n_items) of a collection embedded by model
void dense_store_init(DenseStore* store, const BertModel* model, const char* const* texts,
                      int n_items, int max_len);
// embeds those of items[0..n) that are not held yet (repeats allowed); texts[i] is the
// text of items[i], so that a caller lists only the texts it needs
void dense_store_fill(DenseStore* store, BertModel* model, const Tokenizer* tok,
                      const int* items, const char* const* texts, int n);
// the items of items[0..n) the store does not hold, each once, in order, into todo (m,) with
// their texts in todo_texts (m,); returns m. Both arrays must have room for n
int dense_store_missing(int* todo, const char** todo_texts, const DenseStore* store, const int* items,
                        const char* const* texts, int n);
// stores rows (m, C) as the embeddings of items[0..m) (computed elsewhere: another process);
// dies on an item held already
void dense_store_put(DenseStore* store, const int* items, const float* rows, int m);
// the embedding of an item; dies if it was never filled
const float* dense_store_row(const DenseStore* store, int item);
// writes the file atomically (path.tmp, then rename)
void dense_store_save(const DenseStore* store, const char* path);
// reads into an empty store the rows of a file made for the same collection, model and
// max_len (every header field, the item indices and the file length are checked; dies
// naming the file on a mismatch). Returns 0, changing nothing, when the file does not exist.
int dense_store_load(DenseStore* store, const char* path);
void dense_store_free(DenseStore* store);

// exact dense retrieval: for each of nq query embeddings, the K items of the store with the
// highest dot product, best first, equal scores by item index; places past the store's items
// get -1 and score 0. The store must hold every item of its collection. The dot products are
// matrix products in fp32 (model.h's linear_forward), 64 queries at a time.
void dense_search(int* item_out /* (nq, K) */, float* score_out /* (nq, K) */, const DenseStore* store,
                  const float* queries /* (nq, C) */, int nq, int K);

#endif // ZELO_DENSE_H
