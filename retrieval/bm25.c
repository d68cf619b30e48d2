/*
 * retrieval/bm25.c — inverted index, Lucene BM25 scoring, top-K search (formulas in bm25.h).
 */
#include <float.h>
#include <math.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <stb/stb_ds.h>
#include "retrieval/bm25.h"

#define BM25_MAGIC 20251001
#define BM25_VERSION 1

// fills the postings from the documents' term lists: (term, doc) pairs are grouped by
// term, documents ascending, since documents are visited in order
static void build_postings(Bm25Index* index, const int* terms, const int64_t* doc_start) {
    int T = index->n_terms;
    int D = index->n_docs;
    int* last_doc = (int*)mallocCheck(sizeof(int) * (size_t)T);    // (T,) last document counted
    int64_t* df = (int64_t*)callocCheck((size_t)T, sizeof(int64_t)); // (T,)
    for (int t = 0; t < T; t++) { last_doc[t] = -1; }
    for (int d = 0; d < D; d++) {
        for (int64_t i = doc_start[d]; i < doc_start[d + 1]; i++) {
            int t = terms[i];
            if (last_doc[t] != d) { last_doc[t] = d; df[t]++; }
        }
    }
    index->term_start = (int64_t*)mallocCheck(sizeof(int64_t) * (size_t)(T + 1));
    index->term_start[0] = 0;
    for (int t = 0; t < T; t++) { index->term_start[t + 1] = index->term_start[t] + df[t]; }
    index->n_postings = index->term_start[T];
    index->post_doc = (int*)mallocCheck(sizeof(int) * (size_t)index->n_postings);
    index->post_tf = (int*)mallocCheck(sizeof(int) * (size_t)index->n_postings);
    int64_t* next = df; // reused: next free posting of each term
    for (int t = 0; t < T; t++) { next[t] = index->term_start[t]; last_doc[t] = -1; }
    for (int d = 0; d < D; d++) {
        for (int64_t i = doc_start[d]; i < doc_start[d + 1]; i++) {
            int t = terms[i];
            if (last_doc[t] != d) {
                last_doc[t] = d;
                index->post_doc[next[t]] = d;
                index->post_tf[next[t]] = 1;
                next[t]++;
            } else {
                index->post_tf[next[t] - 1]++;
            }
        }
    }
    free(last_doc);
    free(df);
}

void bm25_build(Bm25Index* index, const char* const* texts, int n_docs,
                const char* const* stopwords, int n_stopwords, float k1, float b) {
    memset(index, 0, sizeof(*index));
    if (n_docs < 0) { die("bm25_build: n_docs = %d", n_docs); }
    index->n_docs = n_docs;
    analyzer_init(&index->analyzer, stopwords, n_stopwords);
    strtab_init(&index->vocab);

    // each distinct word is analyzed once: a corpus has far fewer distinct words than
    // words, and the stemmer is the expensive part of indexing
    StrTab words;
    strtab_init(&words);
    int* word_term = NULL;  // stb_ds array (words' count,): term id of each word, -1 for a stopword

    int* terms = NULL;      // stb_ds array (tokens,): term ids of all documents, one after the other
    int64_t* doc_start = (int64_t*)mallocCheck(sizeof(int64_t) * ((size_t)n_docs + 1)); // (n_docs + 1,)
    index->doc_len = (int*)mallocCheck(sizeof(int) * ((size_t)n_docs > 0 ? (size_t)n_docs : 1));
    char word[ANALYZER_MAX_WORD + 1];
    char term[ANALYZER_MAX_WORD + 1];
    for (int d = 0; d < n_docs; d++) {
        doc_start[d] = arrlen(terms);
        if (texts[d] == NULL) { die("bm25_build: text of document %d is NULL", d); }
        const char* cursor = texts[d];
        int len;
        while ((len = analyzer_next_word(word, &cursor)) > 0) {
            int added;
            int w = strtab_intern(&words, word, &added);
            if (added) {
                memcpy(term, word, (size_t)len + 1);
                int tlen = analyzer_term(&index->analyzer, term, len);
                arrput(word_term, tlen < 0 ? -1 : strtab_intern(&index->vocab, term, NULL));
            }
            if (word_term[w] >= 0) { arrput(terms, word_term[w]); }
        }
        int64_t dl = arrlen(terms) - doc_start[d];
        if (dl > INT32_MAX) { die("bm25_build: document %d has %lld terms, more than an int32 holds", d, (long long)dl); }
        index->doc_len[d] = (int)dl;
    }
    doc_start[n_docs] = arrlen(terms);
    strtab_free(&words);
    arrfree(word_term);
    index->n_terms = strtab_count(&index->vocab);

    build_postings(index, terms, doc_start);
    arrfree(terms);
    free(doc_start);
    bm25_set_params(index, k1, b);
}

void bm25_set_params(Bm25Index* index, float k1, float b) {
    if (!(k1 >= 0.0f) || !isfinite(k1) || !(b >= 0.0f && b <= 1.0f)) {
        die("BM25 parameters k1 = %g, b = %g: need k1 >= 0 and 0 <= b <= 1", k1, b);
    }
    index->k1 = k1;
    index->b = b;
    int64_t total = 0;
    for (int d = 0; d < index->n_docs; d++) { total += index->doc_len[d]; }
    index->avg_doc_len = index->n_docs > 0 ? (double)total / index->n_docs : 0.0;
    free(index->idf);
    free(index->post_weight);
    free(index->term_max_weight);
    index->idf = (float*)mallocCheck(sizeof(float) * (size_t)(index->n_terms > 0 ? index->n_terms : 1));
    index->post_weight = (float*)mallocCheck(sizeof(float) * (size_t)(index->n_postings > 0 ? index->n_postings : 1));
    index->term_max_weight = (float*)mallocCheck(sizeof(float) * (size_t)(index->n_terms > 0 ? index->n_terms : 1));
    double N = index->n_docs;
    // a term has postings only if some document has terms, so avg_doc_len > 0 below
    #pragma omp parallel for schedule(dynamic, 256)
    for (int t = 0; t < index->n_terms; t++) {
        double df = (double)(index->term_start[t + 1] - index->term_start[t]);
        double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        index->idf[t] = (float)idf;
        float max_weight = 0.0f;
        for (int64_t p = index->term_start[t]; p < index->term_start[t + 1]; p++) {
            double tf = index->post_tf[p];
            double norm = k1 * (1.0 - b + b * index->doc_len[index->post_doc[p]] / index->avg_doc_len);
            index->post_weight[p] = (float)(idf * tf / (tf + norm));
            if (index->post_weight[p] > max_weight) { max_weight = index->post_weight[p]; }
        }
        index->term_max_weight[t] = max_weight;
    }
}

void bm25_free(Bm25Index* index) {
    analyzer_free(&index->analyzer);
    strtab_free(&index->vocab);
    free(index->term_start);
    free(index->post_doc);
    free(index->post_tf);
    free(index->post_weight);
    free(index->doc_len);
    free(index->idf);
    free(index->term_max_weight);
    memset(index, 0, sizeof(*index));
}

typedef struct {
    int term;
    float count;    // occurrences in the query
    double bound;   // count * the term's largest weight (exact in double): the most it adds
} QueryTerm;

static int query_term_by_id(const void* pa, const void* pb) {
    int a = ((const QueryTerm*)pa)->term, b = ((const QueryTerm*)pb)->term;
    return (a > b) - (a < b);
}

// larger bound first, then term id: the order in which a document's weights are added
static int query_term_by_bound(const void* pa, const void* pb) {
    const QueryTerm* a = (const QueryTerm*)pa;
    const QueryTerm* b = (const QueryTerm*)pb;
    if (a->bound != b->bound) { return a->bound > b->bound ? -1 : 1; }
    return (a->term > b->term) - (a->term < b->term);
}

// the term id of a word (from analyzer_next_word; analyzed in place), or -1 for a
// stopword or a term the corpus does not have
static int word_term(const Bm25Index* index, char* word, int len) {
    int tlen = analyzer_term(&index->analyzer, word, len);
    return tlen < 0 ? -1 : strtab_find(&index->vocab, word);
}

// the words a search thread has met, each with its term: queries share most of their
// words, and the stemmer was three quarters of the analysis of a query
typedef struct {
    StrTab words;   // words as analyzer_next_word gives them
    int* term;      // stb_ds array (words' count,): word_term of each
} WordCache;

// the query's distinct terms with their counts, words outside the vocabulary left out;
// returns how many (*out is an stb_ds array, reused); cache (or NULL) remembers analyzed words.
// A term that occurs m times is added once
// as m * weight: the same score up to float rounding, in one pass over its postings
// instead of m (long queries repeat their words).
// The terms come sorted by bound, largest first (then by id). bm25_search and
// bm25_score_docs add a document's weights in this one order, so both compute the same
// float; any other order would round differently and change scores in the last bit.
static int query_terms(QueryTerm** out, WordCache* cache, const Bm25Index* index, const char* query) {
    char word[ANALYZER_MAX_WORD + 1];
    const char* cursor = query;
    arrsetlen(*out, 0);
    int len;
    while ((len = analyzer_next_word(word, &cursor)) > 0) {
        int t;
        if (cache == NULL) {
            t = word_term(index, word, len);
        } else {
            int added;
            int w = strtab_intern(&cache->words, word, &added);
            if (added) { arrput(cache->term, word_term(index, word, len)); }
            t = cache->term[w];
        }
        if (t < 0) { continue; }
        arrput(*out, ((QueryTerm){t, 1.0f, 0.0}));
    }
    int n = (int)arrlen(*out);
    if (n == 0) { return 0; } // *out may still be NULL, which qsort must not be given
    qsort(*out, (size_t)n, sizeof(QueryTerm), query_term_by_id);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && (*out)[m - 1].term == (*out)[i].term) { (*out)[m - 1].count += 1.0f; }
        else { (*out)[m++] = (*out)[i]; }
    }
    for (int i = 0; i < m; i++) { (*out)[i].bound = (double)(*out)[i].count * index->term_max_weight[(*out)[i].term]; }
    qsort(*out, (size_t)m, sizeof(QueryTerm), query_term_by_bound);
    return m;
}

typedef struct {
    float score;
    int doc;
} Hit;

// a ranks before b: higher score, then lower document index. Bitwise & and |, not && and
// ||: the partition below then has no branch that depends on the scores
static inline int hit_before(Hit a, Hit b) {
    return (a.score > b.score) | ((a.score == b.score) & (a.doc < b.doc));
}

// moves the median of hit[0], hit[n/2], hit[n-1] to hit[n-1], the partition's pivot, so
// that sorted or reversed input does not make a quickselect quadratic
static void median_to_end(Hit* hit, int n) {
    Hit tmp;
    int m = n / 2;
    if (hit_before(hit[m], hit[0])) { tmp = hit[0]; hit[0] = hit[m]; hit[m] = tmp; }
    if (hit_before(hit[n - 1], hit[0])) { tmp = hit[0]; hit[0] = hit[n - 1]; hit[n - 1] = tmp; }
    // hit[0] is the best of the three, the better of the other two is the median
    if (hit_before(hit[m], hit[n - 1])) { tmp = hit[m]; hit[m] = hit[n - 1]; hit[n - 1] = tmp; }
}

// puts the hits that rank before the pivot hit[n-1] in front, the pivot next; returns
// its position. Branch-free: every hit is swapped with the first one not in front, and
// the front grows only when the hit belongs there (a mispredicted branch per hit would
// cost more than the whole swap).
static int partition_hits(Hit* hit, int n) {
    median_to_end(hit, n);
    Hit pivot = hit[n - 1];
    int front = 0;
    for (int i = 0; i < n - 1; i++) {
        Hit h = hit[i];
        hit[i] = hit[front];
        hit[front] = h;
        front += hit_before(h, pivot);
    }
    hit[n - 1] = hit[front];
    hit[front] = pivot;
    return front;
}

// reorders hit[0..n) so that hit[0..k) are the k best, in no order (quickselect), k < n
static void select_hits(Hit* hit, int n, int k) {
    int lo = 0, hi = n; // hit[0..lo) rank before hit[lo..hi), which rank before hit[hi..n)
    while (hi - lo > 1) {
        int p = lo + partition_hits(hit + lo, hi - lo);
        if (p == k) { return; }
        if (p < k) { lo = p + 1; } else { hi = p; }
    }
}

// sorts hit[0..n), best first
static void sort_hits(Hit* hit, int n) {
    while (n > 16) {
        int p = partition_hits(hit, n);
        // recursion on the smaller side keeps the stack depth logarithmic
        if (p < n - 1 - p) { sort_hits(hit, p); hit += p + 1; n -= p + 1; }
        else { sort_hits(hit + p + 1, n - 1 - p); n = p; }
    }
    for (int i = 1; i < n; i++) {
        Hit h = hit[i];
        int j = i;
        for (; j > 0 && hit_before(h, hit[j - 1]); j--) { hit[j] = hit[j - 1]; }
        hit[j] = h;
    }
}

// the best K (or fewer) of the documents docs[0..n), into hit[0..K) best first (hit has
// room for n); returns how many
static int best_hits(Hit* hit, int K, const float* acc, const int* docs, int n) {
    for (int i = 0; i < n; i++) { hit[i] = (Hit){acc[docs[i]], docs[i]}; }
    if (n > K) { select_hits(hit, n, K); n = K; }
    sort_hits(hit, n);
    return n;
}

// one thread's buffers for bm25_search. The accumulator is padded to whole blocks of 64
// documents so that the passes over it have no ragged end.
typedef struct {
    float* acc;             // (nb * 64,) score so far; 0 = no query term met yet (weights are > 0)
    unsigned char* dirty;   // (nb,) 1 for a block of 64 documents where acc may be > 0
    float* block_max;       // (nb,) the largest acc of each block
    int* docs;              // (nb * 64 + 16,) a list of documents (+ 16: whole-vector stores)
    Hit* hit;               // (nb * 64,) selection space
    QueryTerm* terms;   // stb_ds array
    WordCache words;
} Search;

// the postings of term t: documents, weights, how many
static int64_t term_postings(const int** doc, const float** weight, const Bm25Index* index, int t) {
    *doc = index->post_doc + index->term_start[t];
    *weight = index->post_weight + index->term_start[t];
    return index->term_start[t + 1] - index->term_start[t];
}

// adds the term's weight to every document that has it, and flags the blocks where acc is
// no longer 0. A term with at least one posting per block on average (the long lists that
// take most of the time) flags its whole span once at the end: a byte store per posting
// made that loop 15% slower.
static void add_term(Search* s, const Bm25Index* index, const QueryTerm* qt) {
    // restrict: the byte stores could otherwise alias the index and make the compiler
    // reload its fields at every posting
    const int* restrict doc;
    const float* restrict weight;
    int64_t n = term_postings((const int**)&doc, (const float**)&weight, index, qt->term);
    float* restrict acc = s->acc;
    unsigned char* restrict dirty = s->dirty;
    float count = qt->count;
    if (n > 0 && n >= (index->n_docs >> 6)) {
        // the postings are read once: prefetched far ahead as non-temporal data, they do
        // not push the accumulator out of the L2 cache (15% faster on the 100k corpus)
        for (int64_t p0 = 0; p0 < n; p0 += 16) {
            if (p0 + 512 < n) {
                __builtin_prefetch(doc + p0 + 512, 0, 0);
                __builtin_prefetch(weight + p0 + 512, 0, 0);
            }
            int64_t end = p0 + 16 < n ? p0 + 16 : n;
            #pragma GCC unroll 4
            for (int64_t p = p0; p < end; p++) {
                int d = doc[p];
                acc[d] = fmaf(count, weight[p], acc[d]);
            }
        }
        memset(dirty + (doc[0] >> 6), 1, (size_t)((doc[n - 1] >> 6) - (doc[0] >> 6) + 1));
    } else {
        for (int64_t p = 0; p < n; p++) {
            int d = doc[p];
            acc[d] = fmaf(count, weight[p], acc[d]);
            dirty[d >> 6] = 1;
        }
    }
}

// The two passes over the accumulator, in AVX-512 where the compiler targets it: gcc does
// not vectorize these loops (a float max, a compaction), and they ran ten times slower.
#ifdef __AVX512F__
// block_max[b] = the largest acc of block b, 0 for a clean block
static void block_maxima(Search* s, int nb) {
    for (int blk = 0; blk < nb; blk++) {
        __m512 m = _mm512_setzero_ps();
        if (s->dirty[blk]) {
            const float* a = s->acc + ((size_t)blk << 6);
            m = _mm512_max_ps(_mm512_max_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(a + 16)),
                              _mm512_max_ps(_mm512_loadu_ps(a + 32), _mm512_loadu_ps(a + 48)));
        }
        s->block_max[blk] = _mm512_reduce_max_ps(m);
    }
}

// the documents with acc >= cut, ascending, into s->docs; returns how many. Only dirty
// blocks are read, and with use_max only those whose block_max reaches the cut.
static int documents_above(Search* s, int nb, float cut, int use_max) {
    int n = 0;
    __m512 vcut = _mm512_set1_ps(cut);
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int blk = 0; blk < nb; blk++) {
        if (!s->dirty[blk] || (use_max && s->block_max[blk] < cut)) { continue; }
        for (int j = blk << 6; j < (blk + 1) << 6; j += 16) {
            __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(s->acc + j), vcut, _CMP_GE_OQ);
            // compress in a register, then a plain store of all 16 lanes: a compressing
            // store to memory is microcoded on AMD Zen 4 and 5, and many times slower
            __m512i picked = _mm512_maskz_compress_epi32(m, _mm512_add_epi32(lane, _mm512_set1_epi32(j)));
            _mm512_storeu_si512(s->docs + n, picked);
            n += __builtin_popcount(m);
        }
    }
    return n;
}
#else
static void block_maxima(Search* s, int nb) {
    for (int blk = 0; blk < nb; blk++) {
        float m = 0.0f;
        if (s->dirty[blk]) {
            for (int j = blk << 6; j < (blk + 1) << 6; j++) { m = s->acc[j] > m ? s->acc[j] : m; }
        }
        s->block_max[blk] = m;
    }
}

static int documents_above(Search* s, int nb, float cut, int use_max) {
    int n = 0;
    for (int blk = 0; blk < nb; blk++) {
        if (!s->dirty[blk] || (use_max && s->block_max[blk] < cut)) { continue; }
        for (int j = blk << 6; j < (blk + 1) << 6; j++) {
            s->docs[n] = j;
            n += s->acc[j] >= cut;
        }
    }
    return n;
}
#endif

// the K-th largest of v[0..n) (v >= 0), or 0 when fewer than K values are > 0: the largest
// x with at least K values >= x, found by bisection on x's bit pattern (for floats >= 0 the
// order of the bit patterns as integers is the order of the numbers). 31 counting passes,
// which the compiler vectorizes: cheaper than a selection, and exact. search_one uses it on
// fewer than K * 64 values, so it costs a small multiple of sorting the K results.
static float kth_largest(const float* v, int n, int K) {
    uint32_t lo = 0, hi = 0x7f800000u; // at least K values >= lo; fewer than K >= hi (+inf)
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        float x;
        memcpy(&x, &mid, sizeof(x));
        int count = 0;
        for (int i = 0; i < n; i++) { count += v[i] >= x; }
        if (count >= K) { lo = mid; } else { hi = mid; }
    }
    float x;
    memcpy(&x, &lo, sizeof(x));
    return x;
}

// The K best documents of one query. Every posting of the query's terms is added, term at
// a time (about two cycles per posting, nearly all of the time). Dynamic pruning was tried
// twice and dropped. MaxScore (add whole terms until the K-th best score so far exceeds
// what the remaining terms can give a document not met yet, then add those terms only to
// the documents still in the running) does stop after a third of the postings on the 100k
// corpus of dev/bench_bm25.sh, but thousands of documents stay in the running for each
// remaining term, and finding them in its postings cost more than adding the postings
// whole: a galloping search took 70 cycles per document (the postings are not in cache),
// a bit-set test per posting 3-5 cycles (mispredicted branches), an AVX-512 gather of the
// bit set no less, and in a micro-benchmark AVX-512 VP2INTERSECT (which few CPUs have) won
// only when under ~4% of the documents were left.
// The selection then reads only the few documents that can be in the top K: those at or
// above theta, a lower bound of the K-th best score.
static void search_one(int* qdoc /* (K,) */, float* qscore /* (K,) */, Search* s,
                       const Bm25Index* index, const char* query, int K) {
    int D = index->n_docs;
    int nb = (D + 63) >> 6;
    int nt = query_terms(&s->terms, &s->words, index, query);
    for (int i = 0; i < nt; i++) { add_term(s, index, &s->terms[i]); }

    // theta: with fewer than K blocks, the exact K-th best score; else the K-th largest
    // block maximum (K blocks hold a document that high), close to it when the best
    // documents are spread over the corpus
    float theta;
    if (nb < K) {
        theta = kth_largest(s->acc, nb << 6, K);
    } else {
        block_maxima(s, nb);
        theta = kth_largest(s->block_max, nb, K);
    }
    if (theta == 0.0f) { theta = FLT_TRUE_MIN; } // fewer than K matches: all of them
    int n = documents_above(s, nb, theta, nb >= K);
    int n_hit = best_hits(s->hit, K, s->acc, s->docs, n);

    for (int r = 0; r < n_hit; r++) { qdoc[r] = s->hit[r].doc; qscore[r] = s->hit[r].score; }
    // too few matches: the list goes on with unmatched documents, by index
    for (int d = 0; d < D && n_hit < K; d++) {
        if (s->acc[d] == 0.0f) { qdoc[n_hit] = d; qscore[n_hit] = 0.0f; n_hit++; }
    }
    for (int r = n_hit; r < K; r++) { qdoc[r] = -1; qscore[r] = 0.0f; }
    for (int blk = 0; blk < nb; blk++) {
        if (!s->dirty[blk]) { continue; }
        memset(s->acc + ((size_t)blk << 6), 0, sizeof(float) * 64);
        s->dirty[blk] = 0;
    }
}

void bm25_search(int* doc_out, float* score_out, const Bm25Index* index,
                 const char* const* queries, int n_queries, int K) {
    if (K <= 0) { die("bm25_search: K = %d, need K >= 1", K); }
    size_t nb = ((size_t)index->n_docs + 63) / 64;
    #pragma omp parallel
    {
        Search s = {0};
        strtab_init(&s.words.words);
        s.acc = (float*)callocCheck(nb * 64 + 1, sizeof(float));
        s.dirty = (unsigned char*)callocCheck(nb + 1, 1);
        s.block_max = (float*)mallocCheck(sizeof(float) * (nb + 1));
        s.docs = (int*)mallocCheck(sizeof(int) * (nb * 64 + 16));
        s.hit = (Hit*)mallocCheck(sizeof(Hit) * (nb * 64 + 1));
        #pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < n_queries; q++) {
            search_one(doc_out + (int64_t)q * K, score_out + (int64_t)q * K, &s, index, queries[q], K);
        }
        free(s.acc); free(s.dirty); free(s.block_max); free(s.docs); free(s.hit); arrfree(s.terms);
        strtab_free(&s.words.words);
        arrfree(s.words.term);
    }
}

void bm25_score_docs(float* score_out, const Bm25Index* index, const char* query, const int* docs, int n) {
    QueryTerm* terms = NULL;   // stb_ds array
    int nt = query_terms(&terms, NULL, index, query);
    for (int i = 0; i < n; i++) {
        int d = docs[i];
        if (d < 0 || d >= index->n_docs) { die("bm25_score_docs: document %d outside 0..%d", d, index->n_docs - 1); }
        float s = 0.0f;
        // the same terms, order and operations (fmaf) as bm25_search: the same float
        for (int j = 0; j < nt; j++) {
            int t = terms[j].term;
            int64_t lo = index->term_start[t], hi = index->term_start[t + 1];
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (index->post_doc[mid] < d) { lo = mid + 1; } else { hi = mid; }
            }
            if (lo < index->term_start[t + 1] && index->post_doc[lo] == d) { s = fmaf(terms[j].count, index->post_weight[lo], s); }
        }
        score_out[i] = s;
    }
    arrfree(terms);
}

// ----------------------------------------------------------------------------
// save / load

static int32_t float_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }
static float bits_float(int32_t i) { float f; memcpy(&f, &i, 4); return f; }

// bytes of a string table's strings, each with its NUL: what write_strings writes
static int64_t strings_bytes(const StrTab* t) {
    int64_t bytes = 0;
    for (int i = 0; i < strtab_count(t); i++) { bytes += (int64_t)strlen(strtab_get(t, i)) + 1; }
    return bytes;
}

// the strings and their NULs back to back, in number order
static void write_strings(FILE* fp, const StrTab* t) {
    for (int i = 0; i < strtab_count(t); i++) {
        const char* s = strtab_get(t, i);
        fwriteCheck(s, 1, strlen(s) + 1, fp);
    }
}

void bm25_save(const Bm25Index* index, const char* path) {
    const StrTab* sw = &index->analyzer.stopwords;
    int64_t vocab_bytes = strings_bytes(&index->vocab);
    int64_t sw_bytes = strings_bytes(sw);
    if (sw_bytes > INT32_MAX) { die("bm25_save: stopword list too long"); }
    int32_t header[256] = {0};
    header[0] = BM25_MAGIC;
    header[1] = BM25_VERSION;
    header[2] = index->n_docs;
    header[3] = index->n_terms;
    header[4] = (int32_t)(uint32_t)((uint64_t)index->n_postings & 0xffffffffu);
    header[5] = (int32_t)(uint32_t)((uint64_t)index->n_postings >> 32);
    header[6] = (int32_t)(uint32_t)((uint64_t)vocab_bytes & 0xffffffffu);
    header[7] = (int32_t)(uint32_t)((uint64_t)vocab_bytes >> 32);
    header[8] = strtab_count(sw);
    header[9] = (int32_t)sw_bytes;
    header[10] = float_bits(index->k1);
    header[11] = float_bits(index->b);
    AtomicFile af;  // a killed run never leaves half an index under the final name
    FILE* fp = atomicOpen(&af, path, "wb");
    fwriteCheck(header, sizeof(int32_t), 256, fp);
    write_strings(fp, &index->vocab);
    write_strings(fp, sw);
    fwriteCheck(index->term_start, sizeof(int64_t), (size_t)index->n_terms + 1, fp);
    fwriteCheck(index->post_doc, sizeof(int), (size_t)index->n_postings, fp);
    fwriteCheck(index->post_tf, sizeof(int), (size_t)index->n_postings, fp);
    fwriteCheck(index->doc_len, sizeof(int), (size_t)index->n_docs, fp);
    atomicCommit(&af);
}

// splits arena[0..len) into count NUL-terminated strings; returns them as an array of
// pointers into the arena, or NULL if the bytes do not split that way
static const char** split_strings(const char* arena, size_t len, int count) {
    const char** s = (const char**)mallocCheck(sizeof(char*) * (size_t)(count > 0 ? count : 1));
    size_t pos = 0;
    for (int i = 0; i < count; i++) {
        const char* end = pos < len ? memchr(arena + pos, '\0', len - pos) : NULL;
        if (end == NULL) { free(s); return NULL; }
        s[i] = arena + pos;
        pos = (size_t)(end - arena) + 1;
    }
    if (pos != len) { free(s); return NULL; }
    return s;
}

void bm25_load(Bm25Index* index, const char* path) {
    memset(index, 0, sizeof(*index));
    FILE* fp = fopenCheck(path, "rb");
    fseekCheck(fp, 0, SEEK_END);
    long file_size = ftell(fp);
    fseekCheck(fp, 0, SEEK_SET);
    int32_t header[256];
    if (file_size < (long)sizeof(header)) { die("%s: %ld bytes, too short for a BM25 index header", path, file_size); }
    freadCheck(header, sizeof(int32_t), 256, fp);
    if (header[0] != BM25_MAGIC) { die("%s: not a BM25 index (magic %d, expected %d)", path, header[0], BM25_MAGIC); }
    if (header[1] != BM25_VERSION) { die("%s: BM25 index version %d, this build reads version %d", path, header[1], BM25_VERSION); }
    for (int i = 12; i < 256; i++) {
        if (header[i] != 0) { die("%s: header entry %d is %d, expected 0 (corrupt header?)", path, i, header[i]); }
    }
    int D = header[2], T = header[3], n_sw = header[8];
    int64_t P = (int64_t)(((uint64_t)(uint32_t)header[5] << 32) | (uint32_t)header[4]);
    int64_t vocab_bytes = (int64_t)(((uint64_t)(uint32_t)header[7] << 32) | (uint32_t)header[6]);
    int64_t sw_bytes = header[9];
    if (D < 0 || T < 0 || P < 0 || vocab_bytes < T || n_sw < 0 || sw_bytes < 2 * (int64_t)n_sw) {
        die("%s: impossible sizes in header (n_docs %d, n_terms %d, n_postings %lld, vocabulary bytes %lld, "
            "%d stopwords in %lld bytes)", path, D, T, (long long)P, (long long)vocab_bytes, n_sw, (long long)sw_bytes);
    }
    // each term checked against the file's length first, so that the sum cannot overflow
    int64_t left = file_size - (int64_t)sizeof(header);
    int64_t expected = (int64_t)sizeof(header) + payloadBytesCheck(path, "vocabulary bytes", vocab_bytes, 1, left)
                       + payloadBytesCheck(path, "stopword bytes", sw_bytes, 1, left)
                       + payloadBytesCheck(path, "n_terms + 1", (int64_t)T + 1, 8, left)
                       + payloadBytesCheck(path, "n_postings", P, 8, left) + payloadBytesCheck(path, "n_docs", D, 4, left);
    if (expected != file_size) {
        die("%s: %ld bytes, but its header describes %lld (truncated or not a BM25 index)", path, file_size, (long long)expected);
    }

    char* vocab = (char*)mallocCheck((size_t)vocab_bytes);
    char* sw = (char*)mallocCheck((size_t)sw_bytes);
    freadCheck(vocab, 1, (size_t)vocab_bytes, fp);
    freadCheck(sw, 1, (size_t)sw_bytes, fp);
    const char** terms = split_strings(vocab, (size_t)vocab_bytes, T);
    if (terms == NULL) { die("%s: the vocabulary is not %d NUL-terminated terms", path, T); }
    const char** stopwords = split_strings(sw, (size_t)sw_bytes, n_sw);
    if (stopwords == NULL) { die("%s: the stopword list is not %d NUL-terminated words", path, n_sw); }
    for (int i = 0; i < n_sw; i++) {
        for (const char* c = stopwords[i]; *c; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))) { die("%s: stopword %d ('%s') is not lower-case letters and digits", path, i, stopwords[i]); }
        }
        if (stopwords[i][0] == '\0' || strlen(stopwords[i]) > ANALYZER_MAX_WORD) { die("%s: stopword %d has a bad length", path, i); }
    }
    // n_stopwords == 0 must stay "no stopwords", not the default list
    analyzer_init(&index->analyzer, n_sw > 0 ? stopwords : ENGLISH_STOPWORDS, n_sw);
    strtab_init(&index->vocab);
    for (int t = 0; t < T; t++) {
        int added;
        strtab_intern(&index->vocab, terms[t], &added);
        if (!added) { die("%s: term %d ('%s') appears twice in the vocabulary", path, t, terms[t]); }
    }
    free(terms);
    free(stopwords);
    free(vocab);
    free(sw);

    index->n_docs = D;
    index->n_terms = T;
    index->n_postings = P;
    index->term_start = (int64_t*)mallocCheck(sizeof(int64_t) * ((size_t)T + 1));
    index->post_doc = (int*)mallocCheck(sizeof(int) * (size_t)(P > 0 ? P : 1));
    index->post_tf = (int*)mallocCheck(sizeof(int) * (size_t)(P > 0 ? P : 1));
    index->doc_len = (int*)mallocCheck(sizeof(int) * (size_t)(D > 0 ? D : 1));
    freadCheck(index->term_start, sizeof(int64_t), (size_t)T + 1, fp);
    freadCheck(index->post_doc, sizeof(int), (size_t)P, fp);
    freadCheck(index->post_tf, sizeof(int), (size_t)P, fp);
    freadCheck(index->doc_len, sizeof(int), (size_t)D, fp);
    fcloseCheck(fp);

    // every invariant the search relies on, so a damaged file cannot make it read out of bounds
    if (index->term_start[0] != 0 || index->term_start[T] != P) { die("%s: postings offsets do not span 0..%lld", path, (long long)P); }
    int64_t* tf_sum = (int64_t*)callocCheck((size_t)(D > 0 ? D : 1), sizeof(int64_t)); // (D,)
    for (int t = 0; t < T; t++) {
        int64_t s = index->term_start[t], e = index->term_start[t + 1];
        if (e <= s || e > P) { die("%s: term %d: postings [%lld, %lld) empty or outside 0..%lld", path, t, (long long)s, (long long)e, (long long)P); }
        for (int64_t p = s; p < e; p++) {
            int d = index->post_doc[p];
            if (d < 0 || d >= D || (p > s && d <= index->post_doc[p - 1])) { die("%s: posting %lld of term %d: document %d out of range or out of order", path, (long long)p, t, d); }
            if (index->post_tf[p] < 1) { die("%s: posting %lld: term frequency %d < 1", path, (long long)p, index->post_tf[p]); }
            tf_sum[d] += index->post_tf[p];
        }
    }
    for (int d = 0; d < D; d++) {
        if (tf_sum[d] != index->doc_len[d]) { die("%s: document %d has length %d but its postings count %lld terms", path, d, index->doc_len[d], (long long)tf_sum[d]); }
    }
    free(tf_sum);
    float k1 = bits_float(header[10]), b = bits_float(header[11]);
    if (!(isfinite(k1) && k1 >= 0.0f && b >= 0.0f && b <= 1.0f)) { die("%s: bad BM25 parameters k1 = %g, b = %g", path, k1, b); }
    bm25_set_params(index, k1, b);
}
