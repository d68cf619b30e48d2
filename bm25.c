/*
 * bm25.c — inverted index, Lucene BM25 scoring, top-K search (formulas in bm25.h).
 */
#include <math.h>
#include "bm25.h"

#define BM25_MAGIC 20251001
#define BM25_VERSION 1

// appends one int to a growing array
static void push_int(int** arr, int64_t* len, int64_t* cap, int v) {
    if (*len == *cap) {
        *cap = *cap > 0 ? *cap * 2 : 1 << 16;
        *arr = (int*)reallocCheck(*arr, sizeof(int) * (size_t)*cap);
    }
    (*arr)[(*len)++] = v;
}

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
    int* word_term = NULL;  // (words.count,) term id of each word, -1 for a stopword
    int word_cap = 0;

    int* terms = NULL;      // (n_tokens,) term ids of all documents, one after the other
    int64_t n_tokens = 0, tokens_cap = 0;
    int64_t* doc_start = (int64_t*)mallocCheck(sizeof(int64_t) * ((size_t)n_docs + 1)); // (n_docs + 1,)
    index->doc_len = (int*)mallocCheck(sizeof(int) * ((size_t)n_docs > 0 ? (size_t)n_docs : 1));
    char word[ANALYZER_MAX_WORD + 1];
    char term[ANALYZER_MAX_WORD + 1];
    for (int d = 0; d < n_docs; d++) {
        doc_start[d] = n_tokens;
        if (texts[d] == NULL) { die("bm25_build: text of document %d is NULL", d); }
        const char* cursor = texts[d];
        int len;
        while ((len = analyzer_next_word(word, &cursor)) > 0) {
            int added;
            int w = strtab_intern(&words, word, (size_t)len, &added);
            if (added) {
                if (w == word_cap) {
                    word_cap = word_cap > 0 ? 2 * word_cap : 1 << 12;
                    word_term = (int*)reallocCheck(word_term, sizeof(int) * (size_t)word_cap);
                }
                memcpy(term, word, (size_t)len + 1);
                int tlen = analyzer_term(&index->analyzer, term, len);
                word_term[w] = tlen < 0 ? -1 : strtab_intern(&index->vocab, term, (size_t)tlen, NULL);
            }
            if (word_term[w] >= 0) { push_int(&terms, &n_tokens, &tokens_cap, word_term[w]); }
        }
        int64_t dl = n_tokens - doc_start[d];
        if (dl > INT32_MAX) { die("bm25_build: document %d has %lld terms, more than an int32 holds", d, (long long)dl); }
        index->doc_len[d] = (int)dl;
    }
    doc_start[n_docs] = n_tokens;
    strtab_free(&words);
    free(word_term);
    index->n_terms = index->vocab.count;

    build_postings(index, terms, doc_start);
    free(terms);
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
    index->idf = (float*)mallocCheck(sizeof(float) * (size_t)(index->n_terms > 0 ? index->n_terms : 1));
    index->post_weight = (float*)mallocCheck(sizeof(float) * (size_t)(index->n_postings > 0 ? index->n_postings : 1));
    double N = index->n_docs;
    // a term has postings only if some document has terms, so avg_doc_len > 0 below
    #pragma omp parallel for schedule(dynamic, 256)
    for (int t = 0; t < index->n_terms; t++) {
        double df = (double)(index->term_start[t + 1] - index->term_start[t]);
        double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        index->idf[t] = (float)idf;
        for (int64_t p = index->term_start[t]; p < index->term_start[t + 1]; p++) {
            double tf = index->post_tf[p];
            double norm = k1 * (1.0 - b + b * index->doc_len[index->post_doc[p]] / index->avg_doc_len);
            index->post_weight[p] = (float)(idf * tf / (tf + norm));
        }
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
    memset(index, 0, sizeof(*index));
}

typedef struct {
    int term;
    float count;    // occurrences in the query
} QueryTerm;

static int query_term_compare(const void* pa, const void* pb) {
    int a = ((const QueryTerm*)pa)->term, b = ((const QueryTerm*)pb)->term;
    return (a > b) - (a < b);
}

// the query's distinct terms with their counts, by term id, words outside the
// vocabulary left out; returns how many (the array grows as needed). A term that occurs
// m times is added once as m * weight: the same score up to float rounding, in one pass
// over its postings instead of m (long queries repeat their words).
static int query_terms(QueryTerm** out, int* cap, const Bm25Index* index, const char* query) {
    char word[ANALYZER_MAX_WORD + 1];
    const char* cursor = query;
    int n = 0;
    int len;
    while ((len = analyzer_next_word(word, &cursor)) > 0) {
        int tlen = analyzer_term(&index->analyzer, word, len);
        if (tlen < 0) { continue; }
        int t = strtab_find(&index->vocab, word, (size_t)tlen);
        if (t < 0) { continue; }
        if (n == *cap) {
            *cap = *cap > 0 ? 2 * *cap : 64;
            *out = (QueryTerm*)reallocCheck(*out, sizeof(QueryTerm) * (size_t)*cap);
        }
        (*out)[n++] = (QueryTerm){t, 1.0f};
    }
    qsort(*out, (size_t)n, sizeof(QueryTerm), query_term_compare);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && (*out)[m - 1].term == (*out)[i].term) { (*out)[m - 1].count += 1.0f; }
        else { (*out)[m++] = (*out)[i]; }
    }
    return m;
}

// documents per flag of the search's dirty map: 64 floats = 4 cache lines
#define SEARCH_BLOCK 64

typedef struct {
    float score;
    int doc;
} Hit;

// a ranks before b: higher score, then lower document index
static int hit_before(Hit a, Hit b) {
    return a.score > b.score || (a.score == b.score && a.doc < b.doc);
}

// min-heap on rank: heap[0] is the worst hit kept, the one a better candidate replaces
static void heap_sift_down(Hit* heap, int n, int i) {
    for (;;) {
        int worst = i, l = 2 * i + 1, r = 2 * i + 2;
        if (l < n && hit_before(heap[worst], heap[l])) { worst = l; }
        if (r < n && hit_before(heap[worst], heap[r])) { worst = r; }
        if (worst == i) { return; }
        Hit tmp = heap[i]; heap[i] = heap[worst]; heap[worst] = tmp;
        i = worst;
    }
}

static void heap_offer(Hit* heap, int* n, int K, Hit h) {
    if (*n < K) {
        // sift up
        int i = (*n)++;
        heap[i] = h;
        while (i > 0) {
            int parent = (i - 1) / 2;
            if (!hit_before(heap[parent], heap[i])) { break; }
            Hit tmp = heap[i]; heap[i] = heap[parent]; heap[parent] = tmp;
            i = parent;
        }
    } else if (hit_before(h, heap[0])) {
        heap[0] = h;
        heap_sift_down(heap, *n, 0);
    }
}

void bm25_search(int* doc_out, float* score_out, const Bm25Index* index,
                 const char* const* queries, int n_queries, int K) {
    if (K <= 0) { die("bm25_search: K = %d, need K >= 1", K); }
    int D = index->n_docs;
    int n_blocks = (D + SEARCH_BLOCK - 1) / SEARCH_BLOCK;
    #pragma omp parallel
    {
        float* acc = (float*)callocCheck((size_t)(D > 0 ? D : 1), sizeof(float));   // (D,) score so far
        unsigned char* dirty = (unsigned char*)callocCheck((size_t)(n_blocks > 0 ? n_blocks : 1), 1); // (n_blocks,)
        Hit* heap = (Hit*)mallocCheck(sizeof(Hit) * (size_t)K);                      // (K,)
        QueryTerm* terms = NULL;
        int terms_cap = 0;
        #pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < n_queries; q++) {
            int nt = query_terms(&terms, &terms_cap, index, queries[q]);
            // branch-free accumulation; a flag per block of documents records where to look,
            // so a query with rare terms scans few blocks and one with common terms scans
            // the whole array at memory speed
            for (int i = 0; i < nt; i++) {
                int t = terms[i].term;
                float count = terms[i].count;
                // local pointers: the byte stores to dirty may alias anything, and would
                // otherwise make the compiler reload the index fields at every posting
                const int* restrict post_doc = index->post_doc + index->term_start[t];
                const float* restrict post_weight = index->post_weight + index->term_start[t];
                int64_t n_post = index->term_start[t + 1] - index->term_start[t];
                for (int64_t p = 0; p < n_post; p++) {
                    int d = post_doc[p];
                    acc[d] += count * post_weight[p];
                    dirty[d / SEARCH_BLOCK] = 1;
                }
            }
            // blocks are scanned in document order, so a document that ties with the worst
            // hit kept comes after it and loses, as the order by index wants
            int n_heap = 0;
            for (int blk = 0; blk < n_blocks; blk++) {
                if (!dirty[blk]) { continue; }
                int end = (blk + 1) * SEARCH_BLOCK < D ? (blk + 1) * SEARCH_BLOCK : D;
                float threshold = n_heap < K ? 0.0f : heap[0].score; // weights are > 0
                for (int d = blk * SEARCH_BLOCK; d < end; d++) {
                    if (acc[d] > threshold) {
                        heap_offer(heap, &n_heap, K, (Hit){acc[d], d});
                        threshold = n_heap < K ? 0.0f : heap[0].score;
                    }
                }
            }
            // too few matches: the list goes on with unmatched documents, by index
            for (int d = 0; d < D && n_heap < K; d++) {
                if (acc[d] == 0.0f) { heap_offer(heap, &n_heap, K, (Hit){0.0f, d}); }
            }
            int* qdoc = doc_out + (int64_t)q * K;
            float* qscore = score_out + (int64_t)q * K;
            for (int r = n_heap; r < K; r++) { qdoc[r] = -1; qscore[r] = 0.0f; }
            // popping the worst hit fills the list from its end
            for (int r = n_heap - 1; r >= 0; r--) {
                qdoc[r] = heap[0].doc;
                qscore[r] = heap[0].score;
                heap[0] = heap[r];
                heap_sift_down(heap, r, 0);
            }
            for (int blk = 0; blk < n_blocks; blk++) {
                if (!dirty[blk]) { continue; }
                int end = (blk + 1) * SEARCH_BLOCK < D ? (blk + 1) * SEARCH_BLOCK : D;
                memset(acc + (size_t)blk * SEARCH_BLOCK, 0, sizeof(float) * (size_t)(end - blk * SEARCH_BLOCK));
                dirty[blk] = 0;
            }
        }
        free(acc);
        free(dirty);
        free(heap);
        free(terms);
    }
}

void bm25_score_docs(float* score_out, const Bm25Index* index, const char* query, const int* docs, int n) {
    QueryTerm* terms = NULL;
    int cap = 0;
    int nt = query_terms(&terms, &cap, index, query);
    for (int i = 0; i < n; i++) {
        int d = docs[i];
        if (d < 0 || d >= index->n_docs) { die("bm25_score_docs: document %d outside 0..%d", d, index->n_docs - 1); }
        float s = 0.0f;
        // the same terms, counts and order of additions as bm25_search: the same float
        for (int j = 0; j < nt; j++) {
            int t = terms[j].term;
            int64_t lo = index->term_start[t], hi = index->term_start[t + 1];
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (index->post_doc[mid] < d) { lo = mid + 1; } else { hi = mid; }
            }
            if (lo < index->term_start[t + 1] && index->post_doc[lo] == d) { s += terms[j].count * index->post_weight[lo]; }
        }
        score_out[i] = s;
    }
    free(terms);
}

// ----------------------------------------------------------------------------
// save / load

static int32_t float_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }
static float bits_float(int32_t i) { float f; memcpy(&f, &i, 4); return f; }

void bm25_save(const Bm25Index* index, const char* path) {
    const StrTab* sw = &index->analyzer.stopwords;
    if (sw->arena_len > INT32_MAX) { die("bm25_save: stopword list too long"); }
    int32_t header[256] = {0};
    header[0] = BM25_MAGIC;
    header[1] = BM25_VERSION;
    header[2] = index->n_docs;
    header[3] = index->n_terms;
    header[4] = (int32_t)(uint32_t)((uint64_t)index->n_postings & 0xffffffffu);
    header[5] = (int32_t)(uint32_t)((uint64_t)index->n_postings >> 32);
    header[6] = (int32_t)(uint32_t)((uint64_t)index->vocab.arena_len & 0xffffffffu);
    header[7] = (int32_t)(uint32_t)((uint64_t)index->vocab.arena_len >> 32);
    header[8] = sw->count;
    header[9] = (int32_t)sw->arena_len;
    header[10] = float_bits(index->k1);
    header[11] = float_bits(index->b);
    FILE* fp = fopenCheck(path, "wb");
    fwriteCheck(header, sizeof(int32_t), 256, fp);
    // strtab arenas are exactly the strings and their NULs, in number order
    fwriteCheck(index->vocab.arena, 1, index->vocab.arena_len, fp);
    fwriteCheck(sw->arena, 1, sw->arena_len, fp);
    fwriteCheck(index->term_start, sizeof(int64_t), (size_t)index->n_terms + 1, fp);
    fwriteCheck(index->post_doc, sizeof(int), (size_t)index->n_postings, fp);
    fwriteCheck(index->post_tf, sizeof(int), (size_t)index->n_postings, fp);
    fwriteCheck(index->doc_len, sizeof(int), (size_t)index->n_docs, fp);
    fcloseCheck(fp);
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
    int64_t expected = (int64_t)sizeof(header) + vocab_bytes + sw_bytes + 8 * ((int64_t)T + 1) + 8 * P + 4 * (int64_t)D;
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
        strtab_intern(&index->vocab, terms[t], strlen(terms[t]), &added);
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
