/*
 * test_bm25.c — the analyzer and BM25 against bm25s (method="lucene", k1 0.9, b 0.4) with
 * PyStemmer's Porter stemmer, on Cranfield (fixture: dev/gen_bm25_fixture.py), plus the
 * Porter examples of the paper, save/load, and refusal of damaged index files.
 * Run from the repository root (reads ../shared/data/cranfield).
 */
#include <omp.h>
#include <unistd.h>
#include "io/beir.h"
#include "retrieval/bm25.h"
#include "test.h"

#define FIXTURE "test/fixtures/bm25/cranfield_bm25s.bin"
#define CRANFIELD "../shared/data/cranfield"

static uint32_t fnv1a_update(uint32_t h, const char* s, size_t len) {
    for (size_t i = 0; i < len; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

// our analyzer's terms of a text: how many, and the FNV-1a of "term\0term\0..." as the
// fixture writes it
static void analyze_hash(uint32_t* count, uint32_t* hash, const Analyzer* a, const char* text) {
    char word[ANALYZER_MAX_WORD + 1];
    const char* cursor = text;
    int len;
    uint32_t h = 2166136261u, n = 0;
    while ((len = analyzer_next_word(word, &cursor)) > 0) {
        int tlen = analyzer_term(a, word, len);
        if (tlen < 0) { continue; }
        h = fnv1a_update(h, word, (size_t)tlen + 1); // + 1: the NUL after the term
        n++;
    }
    *count = n;
    *hash = h;
}

static void test_porter_paper_examples(void) {
    // final stems worked out by hand from the rules of Porter (1980), independent of any
    // implementation; the first two are the paper's own worked examples
    const char* cases[][2] = {
        {"generalizations", "gener"}, {"oscillators", "oscil"},
        {"caresses", "caress"}, {"ponies", "poni"}, {"agreed", "agre"}, {"feed", "feed"},
        {"hopping", "hop"}, {"filing", "file"}, {"sing", "sing"}, {"happy", "happi"},
        {"sky", "sky"}, {"relational", "relat"}, {"adoption", "adopt"}, {"controll", "control"},
        {"is", "i"},          // the paper has no minimum length (Lucene's code keeps "is")
        {"trekking", "trek"}, // any double consonant but l, s, z is undoubled (Snowball: "trekk")
        {"s", ""},
    };
    int n = (int)(sizeof(cases) / sizeof(cases[0]));
    for (int i = 0; i < n; i++) {
        char buf[ANALYZER_MAX_WORD + 1];
        snprintf(buf, sizeof(buf), "%s", cases[i][0]);
        int len = porter_stem(buf, (int)strlen(buf));
        CHECK(len == (int)strlen(cases[i][1]) && strcmp(buf, cases[i][1]) == 0,
              "porter(%s) = '%s', expected '%s'", cases[i][0], buf, cases[i][1]);
    }
}

static void test_words(void) {
    // the word rule by hand: ASCII letters and digits, lower-cased, 255-byte pieces
    char text[700];
    memset(text, 'Q', 600);
    strcpy(text + 600, " Mach-2.5 caf\xC3\xA9 x");
    const char* want[] = {NULL, NULL, NULL, "mach", "2", "5", "caf", "x"};
    int want_len[] = {255, 255, 90, 4, 1, 1, 3, 1};
    char word[ANALYZER_MAX_WORD + 1];
    const char* cursor = text;
    int i = 0, len;
    while ((len = analyzer_next_word(word, &cursor)) > 0 && i < 8) {
        int ok = len == want_len[i] && (want[i] != NULL ? strcmp(word, want[i]) == 0 : word[0] == 'q' && word[len - 1] == 'q');
        CHECK(ok, "word %d: '%.20s' (length %d)", i, word, len);
        i++;
    }
    CHECK(i == 8 && len == 0, "expected 8 words, got %d", i);
}

// a tiny corpus whose scores are worked out with the formula of retrieval/bm25.h in double precision
static void test_tiny_corpus(void) {
    const char* docs[] = {"The cat sat.", "Cats and dogs", "", "dog dog dog"};
    Bm25Index ix;
    bm25_build(&ix, docs, 4, NULL, 0, 1.2f, 0.75f);
    CHECK(ix.doc_len[0] == 2 && ix.doc_len[1] == 2 && ix.doc_len[2] == 0 && ix.doc_len[3] == 3,
          "doc lengths %d %d %d %d, expected 2 2 0 3 (the, and are stopwords)", ix.doc_len[0], ix.doc_len[1], ix.doc_len[2], ix.doc_len[3]);
    CHECK(ix.n_terms == 3, "%d terms, expected 3 (cat, sat, dog)", ix.n_terms);
    int doc[2 * 4];
    float score[2 * 4];
    const char* queries[] = {"dogs", "zebra"};
    bm25_search(doc, score, &ix, queries, 2, 4);
    // "dog" is in documents 1 (tf 1, dl 2) and 3 (tf 3, dl 3); N = 4, df = 2, avgdl = 7/4
    double idf = log(1.0 + (4 - 2 + 0.5) / (2 + 0.5));
    double w1 = idf * 1 / (1 + 1.2 * (1 - 0.75 + 0.75 * 2 / 1.75));
    double w3 = idf * 3 / (3 + 1.2 * (1 - 0.75 + 0.75 * 3 / 1.75));
    // float32 weights: a few ulps of 1e-7
    CHECK(doc[0] == 3 && rel_err(score[0], w3, 1e-6) < 1e-6, "top hit %d %.7f, expected 3 %.7f", doc[0], score[0], w3);
    CHECK(doc[1] == 1 && rel_err(score[1], w1, 1e-6) < 1e-6, "second hit %d %.7f, expected 1 %.7f", doc[1], score[1], w1);
    CHECK(doc[2] == 0 && doc[3] == 2 && score[2] == 0.0f && score[3] == 0.0f, "unmatched documents follow by index: %d %d", doc[2], doc[3]);
    CHECK(doc[4] == 0 && doc[5] == 1 && doc[6] == 2 && doc[7] == 3 && score[4] == 0.0f, "a query with no known term lists documents by index");
    // a repeated query term counts twice
    const char* twice = "dog dogs";
    int d3 = 3;
    float s2;
    bm25_score_docs(&s2, &ix, twice, &d3, 1);
    CHECK(rel_err(s2, 2 * w3, 1e-6) < 1e-6, "repeated term: %.7f, expected %.7f", s2, 2 * w3);
    // K past the corpus: padding with -1
    int pdoc[6];
    float pscore[6];
    bm25_search(pdoc, pscore, &ix, queries, 1, 6);
    CHECK(pdoc[4] == -1 && pdoc[5] == -1 && pscore[5] == 0.0f, "places past n_docs: %d %d", pdoc[4], pdoc[5]);
    bm25_free(&ix);

    // an empty stopword list keeps "the" and "and"
    const char* const no_stopwords[1] = {NULL};
    bm25_build(&ix, docs, 4, no_stopwords, 0, 0.9f, 0.4f);
    CHECK(ix.doc_len[0] == 3 && ix.doc_len[1] == 3, "without stopwords: lengths %d %d, expected 3 3", ix.doc_len[0], ix.doc_len[1]);
    bm25_free(&ix);
}

static void load_index(const void* path) {
    Bm25Index ix;
    bm25_load(&ix, path);
}

// ranks before: higher score, then lower document index (the order bm25_search promises)
typedef struct { float score; int doc; } Ranked;
static int ranked_compare(const void* pa, const void* pb) {
    const Ranked* a = (const Ranked*)pa;
    const Ranked* b = (const Ranked*)pb;
    if (a->score != b->score) { return a->score > b->score ? -1 : 1; }
    return (a->doc > b->doc) - (a->doc < b->doc);
}

// bm25_search against an exhaustive reference, on Cranfield repeated `copies` times (every
// score then comes in at least `copies` exact copies, so the K-th place falls inside groups
// of ties): every document scored by bm25_score_docs (another code path: a binary search in
// each term's postings instead of the accumulator, the same additions in the same order,
// hence the same floats), sorted by (score descending, index ascending), followed by -1
// past the corpus. The lists must be EQUAL, documents and score bits, for each K of Ks.
// bm25_search bounds the K-th score from below in one of two ways, both covered: the exact
// K-th score when the corpus has fewer than K blocks of 64 documents, else the K-th largest
// block maximum. Queries [0, Q) are used, with two more: rare words (6 * copies matches,
// fewer than K for most K: the list goes on with score-0 documents by index, in both ways)
// and words the corpus lacks (no match at all).
static void test_search_exhaustive(const char* const* texts, int D, int copies, const char* const* qtexts, int Q,
                                   const int* Ks, int nK) {
    int Dc = copies * D;
    const char** textsc = (const char**)mallocCheck(sizeof(char*) * (size_t)Dc);
    for (int i = 0; i < Dc; i++) { textsc[i] = texts[i % D]; }
    Bm25Index ix;
    bm25_build(&ix, textsc, Dc, NULL, 0, BM25_DEFAULT_K1, BM25_DEFAULT_B);
    int Qx = Q + 2;
    const char** qx = (const char**)mallocCheck(sizeof(char*) * (size_t)Qx);
    for (int q = 0; q < Q; q++) { qx[q] = qtexts[q]; }
    qx[Q] = "sidewall multilayer destalling";  // each word in 2 Cranfield documents, 6 in all
    qx[Q + 1] = "qqqq zzzz";

    // the reference: every document ranked, per query
    int* all_docs = (int*)mallocCheck(sizeof(int) * (size_t)Dc);
    float* all_scores = (float*)mallocCheck(sizeof(float) * (size_t)Dc);
    Ranked* ranked = (Ranked*)mallocCheck(sizeof(Ranked) * (size_t)Qx * Dc); // (Qx, Dc)
    int* matches = (int*)mallocCheck(sizeof(int) * (size_t)Qx);
    for (int i = 0; i < Dc; i++) { all_docs[i] = i; }
    for (int q = 0; q < Qx; q++) {
        bm25_score_docs(all_scores, &ix, qx[q], all_docs, Dc);
        Ranked* r = ranked + (size_t)q * Dc;
        matches[q] = 0;
        for (int i = 0; i < Dc; i++) { r[i] = (Ranked){all_scores[i], i}; matches[q] += all_scores[i] > 0.0f; }
        qsort(r, (size_t)Dc, sizeof(Ranked), ranked_compare);
    }
    CHECK(matches[Q] == 6 * copies && matches[Q + 1] == 0, "rare-word queries match %d and %d documents, expected %d and 0",
          matches[Q], matches[Q + 1], 6 * copies);

    for (int k = 0; k < nK; k++) {
        int K = Ks[k];
        int* doc = (int*)mallocCheck(sizeof(int) * (size_t)Qx * K);
        float* score = (float*)mallocCheck(sizeof(float) * (size_t)Qx * K);
        bm25_search(doc, score, &ix, qx, Qx, K);
        int bad_queries = 0, cut_in_tie = 0;
        for (int q = 0; q < Qx; q++) {
            const Ranked* r = ranked + (size_t)q * Dc;
            int same = 1;
            for (int i = 0; i < K; i++) {
                int want_doc = i < Dc ? r[i].doc : -1;
                float want_score = i < Dc ? r[i].score : 0.0f;
                float got = score[(size_t)q * K + i];
                if (doc[(size_t)q * K + i] != want_doc || memcmp(&got, &want_score, sizeof(float)) != 0) { same = 0; }
            }
            if (!same && bad_queries++ < 3) { printf("copies %d, K %d, query %d: top-K differs from the exhaustive ranking\n", copies, K, q); }
            if (K < Dc && r[K - 1].score > 0.0f && r[K - 1].score == r[K].score) { cut_in_tie++; }
        }
        CHECK(bad_queries == 0, "copies %d, K %d (%s): %d of %d queries differ from the exhaustive ranking", copies, K,
              (Dc + 63) / 64 < K ? "exact K-th score" : "block maxima", bad_queries, Qx);
        // the ties are really there: whenever K is not a multiple of the copies and most
        // queries match more than K documents, a tie straddles the K-th place
        if (K % copies != 0 && K < Dc / 4) {
            CHECK(cut_in_tie >= Q / 2, "copies %d, K %d: only %d of %d queries have a tie across the K-th place", copies, K, cut_in_tie, Qx);
        }
        free(doc);
        free(score);
    }
    bm25_free(&ix);
    free(textsc); free(qx); free(all_docs); free(all_scores); free(ranked); free(matches);
}

// writes a copy of src with a change: truncated to keep bytes, or one int32 replaced
static void write_damaged(const char* dst, const char* src, long keep, long int_at, int32_t value) {
    size_t len;
    char* buf = readFileCheck(src, &len);
    if (int_at >= 0) { memcpy(buf + int_at, &value, 4); }
    FILE* fp = fopenCheck(dst, "wb");
    fwriteCheck(buf, 1, keep >= 0 ? (size_t)keep : len, fp);
    fcloseCheck(fp);
    free(buf);
}

static void test_damaged_files(const char* good, const Bm25Index* ix) {
    char bad[] = "/tmp/zelo_test_bm25_bad_XXXXXX";
    int fd = mkstemp(bad);
    if (fd < 0) { die("mkstemp failed"); }
    close(fd);
    long header = 256 * 4;
    // the strings' bytes, as the header gives them: vocabulary at entries 6 (low) and 7, stopwords at 9
    size_t len;
    char* file = readFileCheck(good, &len);
    int32_t h[10];
    memcpy(h, file, sizeof(h));
    free(file);
    long vocab_and_sw = (long)(((uint64_t)(uint32_t)h[7] << 32) | (uint32_t)h[6]) + (long)h[9];
    long post_doc_at = header + vocab_and_sw + 8 * ((long)ix->n_terms + 1);
    struct { const char* what; long keep; long int_at; int32_t value; const char* expect; } cases[] = {
        {"truncated", 5000, -1, 0, "bytes"},
        {"wrong magic", -1, 0, 12345, "not a BM25 index"},
        {"wrong version", -1, 4, 2, "version"},
        {"nonzero reserved header entry", -1, 4 * 100, 1, "header entry 100"},
        {"document index out of range", -1, post_doc_at, ix->n_docs + 5, "out of range"},
        {"term frequency 0", -1, post_doc_at + 4 * (long)ix->n_postings, 0, "term frequency"},
        // n_postings + 2^61: 8 bytes a posting times it wraps to the same file length
        {"n_postings near 2^61", -1, 4 * 5, 0x20000000, "n_postings"},
        {"vocabulary bytes near 2^63", -1, 4 * 7, 0x7fffffff, "vocabulary bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_damaged(bad, good, cases[i].keep, cases[i].int_at, cases[i].value);
        char err[1024];
        int status = run_in_child(load_index, bad, err, sizeof(err));
        CHECK(status == 1 && strstr(err, bad) != NULL && strstr(err, cases[i].expect) != NULL,
              "%s index: exit %d, stderr '%s' (expected the path and '%s')", cases[i].what, status, err, cases[i].expect);
    }
    unlink(bad);
}

int main(void) {
    test_porter_paper_examples();
    test_words();
    test_tiny_corpus();

    // ---- the bm25s fixture
    FILE* fp = fopenCheck(FIXTURE, "rb");
    int32_t header[256];
    freadCheck(header, sizeof(int32_t), 256, fp);
    if (header[0] != 20251002 || header[1] != 1) { die("%s: bad magic/version", FIXTURE); }
    int D = header[2], Q = header[3], K = header[4], ref_vocab = header[5];
    float k1, b;
    memcpy(&k1, &header[6], 4);
    memcpy(&b, &header[7], 4);
    uint32_t* ref_doc_count = (uint32_t*)mallocCheck(4 * (size_t)D);
    uint32_t* ref_doc_hash = (uint32_t*)mallocCheck(4 * (size_t)D);
    uint32_t* ref_query_count = (uint32_t*)mallocCheck(4 * (size_t)Q);
    uint32_t* ref_query_hash = (uint32_t*)mallocCheck(4 * (size_t)Q);
    int* ref_doc = (int*)mallocCheck(sizeof(int) * (size_t)Q * K);     // (Q, K)
    float* ref_score = (float*)mallocCheck(sizeof(float) * (size_t)Q * K); // (Q, K)
    freadCheck(ref_doc_count, 4, (size_t)D, fp);
    freadCheck(ref_doc_hash, 4, (size_t)D, fp);
    freadCheck(ref_query_count, 4, (size_t)Q, fp);
    freadCheck(ref_query_hash, 4, (size_t)Q, fp);
    freadCheck(ref_doc, sizeof(int), (size_t)Q * K, fp);
    freadCheck(ref_score, sizeof(float), (size_t)Q * K, fp);
    fcloseCheck(fp);

    Corpus corpus;
    Queries queries;
    beir_load_corpus(&corpus, CRANFIELD "/corpus.jsonl");
    beir_load_queries(&queries, CRANFIELD "/queries.jsonl");
    CHECK(corpus.n == D && queries.n == Q, "Cranfield has %d docs / %d queries, fixture %d / %d", corpus.n, queries.n, D, Q);
    const char** texts = (const char**)mallocCheck(sizeof(char*) * (size_t)D);
    const char** qtexts = (const char**)mallocCheck(sizeof(char*) * (size_t)Q);
    for (int i = 0; i < D; i++) { texts[i] = beir_text(&corpus, i); }
    for (int i = 0; i < Q; i++) { qtexts[i] = beir_text(&queries, i); }

    // 1. the analyzers agree term for term (count and hash of the term sequence)
    Analyzer an;
    analyzer_init(&an, NULL, 0);
    int doc_mismatch = 0, query_mismatch = 0, first_bad = -1;
    long total_terms = 0;
    for (int i = 0; i < D; i++) {
        uint32_t c, h;
        analyze_hash(&c, &h, &an, texts[i]);
        total_terms += c;
        if (c != ref_doc_count[i] || h != ref_doc_hash[i]) { if (doc_mismatch++ == 0) { first_bad = i; } }
    }
    for (int i = 0; i < Q; i++) {
        uint32_t c, h;
        analyze_hash(&c, &h, &an, qtexts[i]);
        if (c != ref_query_count[i] || h != ref_query_hash[i]) { query_mismatch++; }
    }
    analyzer_free(&an);
    CHECK(doc_mismatch == 0, "%d of %d documents analyzed differently from bm25s+PyStemmer (first: %d)", doc_mismatch, D, first_bad);
    CHECK(query_mismatch == 0, "%d of %d queries analyzed differently from bm25s+PyStemmer", query_mismatch, Q);
    printf("analyzer: %d docs (%ld terms) and %d queries identical to bm25s+PyStemmer\n", D, total_terms, Q);

    // 2. the index and top-K
    Bm25Index ix;
    bm25_build(&ix, texts, D, NULL, 0, k1, b);
    CHECK(ix.n_terms == ref_vocab, "vocabulary %d terms, bm25s %d", ix.n_terms, ref_vocab);
    int* got_doc = (int*)mallocCheck(sizeof(int) * (size_t)Q * K);
    float* got_score = (float*)mallocCheck(sizeof(float) * (size_t)Q * K);
    int* got_doc1 = (int*)mallocCheck(sizeof(int) * (size_t)Q * K);
    float* got_score1 = (float*)mallocCheck(sizeof(float) * (size_t)Q * K);
    omp_set_num_threads(2);
    bm25_search(got_doc, got_score, &ix, qtexts, Q, K);
    omp_set_num_threads(1);
    bm25_search(got_doc1, got_score1, &ix, qtexts, Q, K);
    CHECK(memcmp(got_doc, got_doc1, sizeof(int) * (size_t)Q * K) == 0 &&
          memcmp(got_score, got_score1, sizeof(float) * (size_t)Q * K) == 0, "1 and 2 threads give different results");

    // Tolerance 1e-4 relative: both sides store float32 weights (rounding 6e-8) and add a
    // query's ~10-30 terms in float32, so they differ by ~1e-6 at most; 1e-4 leaves room
    // while any formula difference (idf variant, length normalization) is far above it.
    // Ties: documents whose scores are within the tolerance can come in either order and
    // either can fall at the K-th place, so the lists are compared (a) rank by rank on
    // scores, (b) as sets only for documents scored clearly above the other list's K-th
    // score, (c) document by document on scores wherever both lists hold the document.
    const double tol = 1e-4;
    double worst_rank = 0, worst_doc = 0, worst_pair = 0;
    int bad_order = 0, missing = 0;
    float* pair_score = (float*)mallocCheck(sizeof(float) * (size_t)K);
    for (int q = 0; q < Q; q++) {
        const int* gd = got_doc + (size_t)q * K;
        const float* gs = got_score + (size_t)q * K;
        const int* rd = ref_doc + (size_t)q * K;
        const float* rs = ref_score + (size_t)q * K;
        for (int r = 0; r < K; r++) {
            double e = rel_err(gs[r], rs[r], 1e-3);
            if (e > worst_rank) { worst_rank = e; }
            if (r > 0 && (gs[r] > gs[r - 1] || (gs[r] == gs[r - 1] && gd[r] < gd[r - 1]))) { bad_order++; }
        }
        for (int side = 0; side < 2; side++) {
            const int* ad = side == 0 ? gd : rd;
            const float* as = side == 0 ? gs : rs;
            const int* bd = side == 0 ? rd : gd;
            const float* bs = side == 0 ? rs : gs;
            double cutoff = bs[K - 1] * (1.0 + tol) + 1e-6;
            for (int r = 0; r < K; r++) {
                int found = -1;
                for (int j = 0; j < K; j++) { if (bd[j] == ad[r]) { found = j; break; } }
                if (found >= 0) {
                    double e = rel_err(as[r], bs[found], 1e-3);
                    if (e > worst_doc) { worst_doc = e; }
                } else if (as[r] > cutoff) {
                    if (missing++ < 5) { printf("query %d: doc %d (score %.6f) is in one list only\n", q, ad[r], as[r]); }
                }
            }
        }
        bm25_score_docs(pair_score, &ix, qtexts[q], rd, K);
        for (int r = 0; r < K; r++) {
            double e = rel_err(pair_score[r], rs[r], 1e-3);
            if (e > worst_pair) { worst_pair = e; }
        }
    }
    printf("vs bm25s: worst relative error rank by rank %.2e, same document %.2e, bm25_score_docs %.2e\n",
           worst_rank, worst_doc, worst_pair);
    CHECK(worst_rank <= tol, "rank-by-rank score error %.2e > %.0e", worst_rank, tol);
    CHECK(worst_doc <= tol, "same-document score error %.2e > %.0e", worst_doc, tol);
    CHECK(worst_pair <= tol, "bm25_score_docs error %.2e > %.0e", worst_pair, tol);
    CHECK(missing == 0, "%d documents clearly above the cut-off are in one top-%d list only", missing, K);
    CHECK(bad_order == 0, "%d places out of order (score descending, then document index)", bad_order);

    // K = 1, 10, 100, 1000 and past the corpus. 1 copy (22 blocks): the exact K-th score
    // for every K but 1 and 10; 7 copies (154 blocks): block maxima for K <= 100; 46 copies
    // (64,400 documents, 1,007 blocks): block maxima for K = 1000 too, on 30 queries
    // (the reference scores every document of every query)
    const int Ks1[] = {1, 10, 100, 1000, 1405};
    test_search_exhaustive(texts, D, 1, qtexts, Q, Ks1, 5);
    const int Ks3[] = {1, 10, 100, 1000};
    test_search_exhaustive(texts, D, 3, qtexts, Q, Ks3, 4);
    test_search_exhaustive(texts, D, 7, qtexts, Q, Ks3, 4);
    const int Ks46[] = {100, 1000};
    test_search_exhaustive(texts, D, 46, qtexts, 30, Ks46, 2);

    // 3. save / load gives the same index and the same results, bit for bit
    char path[] = "/tmp/zelo_test_bm25_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { die("mkstemp failed"); }
    close(fd);
    bm25_save(&ix, path);
    Bm25Index loaded;
    bm25_load(&loaded, path);
    CHECK(loaded.n_terms == ix.n_terms && loaded.n_postings == ix.n_postings && loaded.n_docs == ix.n_docs &&
          loaded.k1 == ix.k1 && loaded.b == ix.b && strtab_count(&loaded.analyzer.stopwords) == N_ENGLISH_STOPWORDS,
          "loaded index differs in sizes or parameters");
    bm25_search(got_doc1, got_score1, &loaded, qtexts, Q, K);
    CHECK(memcmp(got_doc, got_doc1, sizeof(int) * (size_t)Q * K) == 0 &&
          memcmp(got_score, got_score1, sizeof(float) * (size_t)Q * K) == 0, "search on the loaded index differs");
    bm25_free(&loaded);
    test_damaged_files(path, &ix);
    unlink(path);

    bm25_free(&ix);
    beir_free_texts(&corpus);
    beir_free_texts(&queries);
    free(texts); free(qtexts); free(got_doc); free(got_score); free(got_doc1); free(got_score1); free(pair_score);
    free(ref_doc_count); free(ref_doc_hash); free(ref_query_count); free(ref_query_hash); free(ref_doc); free(ref_score);
    return test_summary("test_bm25");
}
