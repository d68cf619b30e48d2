/*
 * retrieval/bm25.h — the BM25 first stage: an inverted index over a corpus and top-K retrieval.
 *
 * Scoring is Lucene's BM25 (BM25Similarity since Lucene 8, as pyserini and bm25s'
 * method="lucene"): for a query term t and a document d of length dl (its number of terms
 * after the analyzer, stopwords excluded),
 *     idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
 *     weight(t,d) = idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
 * and score(q,d) is the sum of weight(t,d) over the query's terms, a term counted as
 * often as it occurs in the query (Lucene does the same with one clause per occurrence;
 * we add count * weight once, equal up to float rounding).
 * Query terms the corpus never uses add nothing. Defaults k1 = 0.9, b = 0.4 (pyserini's).
 * Document lengths are EXACT: Lucene stores each length as a one-byte norm (a lossy
 * float-like code), so its scores differ slightly from ours; bm25s uses exact lengths too,
 * and the test compares with bm25s.
 *
 * The index is compressed sparse rows by term (CSR): the postings of term t are
 * [term_start[t], term_start[t+1]), each a document index (ascending) and a term frequency.
 * The weight of every posting is computed once (bm25_set_params) so that a search only
 * adds floats.
 *
 * File format (bm25_save / bm25_load), little-endian:
 *   header: 256 int32: [0] magic 20251001, [1] version 1, [2] n_docs, [3] n_terms,
 *           [4] [5] n_postings (low, high 32 bits), [6] [7] vocabulary bytes (low, high),
 *           [8] n_stopwords, [9] stopword bytes, [10] k1 and [11] b (float bit patterns);
 *           every other entry 0.
 *   vocabulary: the n_terms terms, each followed by a NUL byte, term 0 first
 *   stopwords:  the analyzer's n_stopwords stopwords, each followed by a NUL byte
 *   term_start: (n_terms + 1) int64
 *   post_doc:   (n_postings) int32
 *   post_tf:    (n_postings) int32
 *   doc_len:    (n_docs) int32
 */
#ifndef ZELO_BM25_H
#define ZELO_BM25_H

#include <stdint.h>
#include "retrieval/analyzer.h"
#include "common/strtab.h"

#define BM25_DEFAULT_K1 0.9f
#define BM25_DEFAULT_B 0.4f

typedef struct {
    int n_docs;
    int n_terms;
    int64_t n_postings;
    float k1;
    float b;
    double avg_doc_len;     // mean of doc_len over all documents, empty ones included
    Analyzer analyzer;      // the same analyzer must turn queries into terms
    StrTab vocab;           // term -> term id
    int64_t* term_start;    // (n_terms + 1,)
    int* post_doc;          // (n_postings,) document index, ascending within a term
    int* post_tf;           // (n_postings,) occurrences of the term in the document
    float* post_weight;     // (n_postings,) weight(t, d), from k1 and b
    int* doc_len;           // (n_docs,) terms in the document
    float* idf;             // (n_terms,)
    float* term_max_weight; // (n_terms,) largest post_weight of each term: orders a query's terms
} Bm25Index;

// indexes texts[0..n_docs) (a document's text is its title, a space, and its body: see
// io/beir.h; a NULL text is an error). stopwords == NULL takes the English stop set
// (retrieval/analyzer.h); k1, b as in bm25_set_params.
void bm25_build(Bm25Index* index, const char* const* texts, int n_docs,
                const char* const* stopwords, int n_stopwords, float k1, float b);
// (re)computes idf and every posting's weight for new k1 >= 0 and b in [0, 1]
void bm25_set_params(Bm25Index* index, float k1, float b);
void bm25_free(Bm25Index* index);

// the K best documents of each query, best first; equal scores are ordered by document
// index so that a run is reproducible. When fewer than K documents share a term with the
// query, the list goes on with score-0 documents in index order; when the corpus has
// fewer than K documents, the places past n_docs get document -1 and score 0.
// Queries run in parallel (OpenMP), each thread with its own (n_docs,) accumulator.
void bm25_search(int* doc_out /* (n_queries, K) */, float* score_out /* (n_queries, K) */,
                 const Bm25Index* index, const char* const* queries, int n_queries, int K);

// the scores of given documents for one query (what a BM25 judge needs for K candidates)
void bm25_score_docs(float* score_out /* (n,) */, const Bm25Index* index, const char* query,
                     const int* docs /* (n,) */, int n);

void bm25_save(const Bm25Index* index, const char* path);
// reads and checks an index file (die() naming the file and what is wrong)
void bm25_load(Bm25Index* index, const char* path);

#endif // ZELO_BM25_H
