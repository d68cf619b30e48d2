/*
 * test/test_synth.c — the synthetic collection: deterministic, readable by the normal
 * loaders without a warning, tokenizable without [UNK], judged for every query, and a
 * real retrieval problem: BM25 finds part of the relevant documents, far from all.
 *
 * There is no outside reference for a generator; the independent checks are the project's
 * own loaders, tokenizer, BM25 and metrics (each checked against its reference in its own
 * test) applied to what it writes.
 */
#include <stdlib.h>
#include <unistd.h>
#include "io/beir.h"
#include "retrieval/bm25.h"
#include "io/metrics.h"
#include "io/synth.h"
#include "test/test.h"
#include "tokenizer/wordpiece.h"
#include "common/utils.h"

static const char* const FILES[] = {"corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv", "vocab.txt"};
#define N_FILES 5

static void path_in(char* out, size_t cap, const char* dir, const char* name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) { die("path too long: %s/%s", dir, name); }
}

static int same_bytes(const char* dir_a, const char* dir_b, const char* name) {
    char pa[512], pb[512];
    path_in(pa, sizeof(pa), dir_a, name);
    path_in(pb, sizeof(pb), dir_b, name);
    size_t la, lb;
    char* a = readFileCheck(pa, &la);
    char* b = readFileCheck(pb, &lb);
    int same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    return same;
}

static void remove_collection(const char* dir) {
    char p[512];
    for (int i = 0; i < N_FILES; i++) {
        path_in(p, sizeof(p), dir, FILES[i]);
        if (unlink(p) != 0) { die("could not remove %s", p); }
    }
    path_in(p, sizeof(p), dir, "qrels");
    if (rmdir(p) != 0 || rmdir(dir) != 0) { die("could not remove %s", dir); }
}

typedef struct { const SynthConfig* cfg; const char* dir; } WriteArgs;

static void write_collection(const void* arg) {
    const WriteArgs* a = (const WriteArgs*)arg;
    synth_write_collection(a->dir, a->cfg);
}

// 1 if synth_write_collection stops with exit status 1 on this config (run in a child
// process, since it exits; its message is captured and dropped to keep the test output clean)
static int refuses(const SynthConfig* cfg, const char* dir) {
    WriteArgs a = { cfg, dir };
    char err[1024];
    return run_in_child(write_collection, &a, err, sizeof(err)) == 1;
}

// mean NDCG@10 over the queries of a split; ranking of query q: docs[q*K .. q*K+K) with
// their scores
static double mean_ndcg(const Corpus* corpus, const Queries* queries, const Qrels* qrels,
                        const int* docs, const float* scores, int K) {
    const char** ranked_ids = (const char**)mallocCheck(sizeof(char*) * (size_t)K);
    const char** qrel_ids = (const char**)mallocCheck(sizeof(char*) * (size_t)(qrels->n > 0 ? qrels->n : 1));
    MetricScores* per_query = (MetricScores*)callocCheck((size_t)queries->n, sizeof(MetricScores));
    for (int q = 0; q < queries->n; q++) {
        int begin = qrels->query_start[q], n_rel = qrels->query_start[q + 1] - begin;
        if (n_rel == 0) { continue; }  // a query of the other split
        for (int i = 0; i < K; i++) { ranked_ids[i] = beir_id(corpus, docs[(size_t)q * K + i]); }
        for (int i = 0; i < n_rel; i++) { qrel_ids[i] = beir_id(corpus, qrels->doc[begin + i]); }
        metrics_eval_query(&per_query[q], beir_id(queries, q), ranked_ids, scores + (size_t)q * K, K,
                           qrel_ids, qrels->gain + begin, n_rel);
    }
    MetricScores mean;
    metrics_mean(&mean, per_query, queries->n);
    free(ranked_ids);
    free(qrel_ids);
    free(per_query);
    return mean.ndcg_at_10;
}

int main(void) {
    SynthConfig cfg;
    synth_default_config(&cfg);
    const char* tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char dir[256], dir_same[256], dir_other[256];
    snprintf(dir, sizeof(dir), "%s/zelo_synth_XXXXXX", tmp);
    snprintf(dir_same, sizeof(dir_same), "%s/zelo_synth_XXXXXX", tmp);
    snprintf(dir_other, sizeof(dir_other), "%s/zelo_synth_XXXXXX", tmp);
    if (mkdtemp(dir) == NULL || mkdtemp(dir_same) == NULL || mkdtemp(dir_other) == NULL) {
        die("could not create temporary directories under %s", tmp);
    }

    // ---- determinism: same seed, same bytes; another seed, another collection
    synth_write_collection(dir, &cfg);
    synth_write_collection(dir_same, &cfg);
    SynthConfig other = cfg;
    other.seed = cfg.seed + 1;
    synth_write_collection(dir_other, &other);
    for (int i = 0; i < N_FILES; i++) {
        CHECK(same_bytes(dir, dir_same, FILES[i]), "%s differs between two runs with the same seed", FILES[i]);
        CHECK(!same_bytes(dir, dir_other, FILES[i]), "%s is the same with seeds %llu and %llu", FILES[i],
              (unsigned long long)cfg.seed, (unsigned long long)other.seed);
    }

    // ---- configs it cannot honour are refused, not bent: no room for a document's four
    // facets, an empty split, and more queries than distinct (topic, facet pair)s (2 x 6)
    char dir_bad[512];
    path_in(dir_bad, sizeof(dir_bad), dir_other, "refused");
    SynthConfig bad = cfg;
    bad.n_facets = 3;
    CHECK(refuses(&bad, dir_bad), "n_facets = 3 accepted");
    bad = cfg;
    bad.n_queries = 3;
    bad.test_percent = 10;
    CHECK(refuses(&bad, dir_bad), "a test split of 10%% of 3 queries (none) accepted");
    bad = cfg;
    bad.n_topics = 2;
    bad.n_facets = 4;
    bad.n_queries = 13;
    CHECK(refuses(&bad, dir_bad), "13 distinct queries out of 12 possible accepted");
    CHECK(access(dir_bad, F_OK) != 0, "a refused config left %s behind", dir_bad);

    // ---- the BEIR loaders read it without a repair or a dropped line (strict qrels)
    char path[512];
    Corpus corpus;
    Queries queries;
    Qrels split[2];  // train, test
    path_in(path, sizeof(path), dir, "corpus.jsonl");
    beir_load_corpus(&corpus, path);
    path_in(path, sizeof(path), dir, "queries.jsonl");
    beir_load_queries(&queries, path);
    path_in(path, sizeof(path), dir, "qrels/train.tsv");
    beir_load_qrels(&split[0], path, &corpus, &queries, 1);
    path_in(path, sizeof(path), dir, "qrels/test.tsv");
    beir_load_qrels(&split[1], path, &corpus, &queries, 1);
    CHECK(corpus.n == cfg.n_docs, "corpus has %d documents, config says %d", corpus.n, cfg.n_docs);
    CHECK(queries.n == cfg.n_queries, "%d queries, config says %d", queries.n, cfg.n_queries);
    CHECK(corpus.n_replaced == 0 && queries.n_replaced == 0, "the loader repaired %lld + %lld bytes",
          (long long)corpus.n_replaced, (long long)queries.n_replaced);
    const char* names[3];
    int n_splits = beir_qrels_splits(names, dir);
    CHECK(n_splits == 2 && strcmp(names[0], "train") == 0 && strcmp(names[1], "test") == 0,
          "qrels splits found: %d", n_splits);

    // ---- qrels: every query judged in exactly one split, grades 1..3, all three used
    int n_in[2] = {0, 0}, grade_count[4] = {0, 0, 0, 0}, bad_grades = 0, bad_queries = 0;
    for (int q = 0; q < queries.n; q++) {
        int judged[2];
        for (int k = 0; k < 2; k++) {
            judged[k] = split[k].query_start[q + 1] - split[k].query_start[q];
            if (judged[k] > 0) { n_in[k]++; }
        }
        if ((judged[0] > 0) == (judged[1] > 0)) { bad_queries++; }
    }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < split[k].n; i++) {
            int g = split[k].gain[i];
            if (g < 1 || g > 3) { bad_grades++; } else { grade_count[g]++; }
        }
    }
    int n_test_expected = (cfg.n_queries * cfg.test_percent + 50) / 100;
    CHECK(bad_queries == 0, "%d queries are judged in neither or both splits", bad_queries);
    CHECK(n_in[1] == n_test_expected && n_in[0] == cfg.n_queries - n_test_expected,
          "split sizes train %d, test %d; expected %d, %d", n_in[0], n_in[1], cfg.n_queries - n_test_expected, n_test_expected);
    CHECK(bad_grades == 0, "%d judgments outside 1..3", bad_grades);
    CHECK(grade_count[1] > 0 && grade_count[2] > 0 && grade_count[3] > 0, "grades 1/2/3 used %d/%d/%d times",
          grade_count[1], grade_count[2], grade_count[3]);
    printf("%d documents, %d queries (train %d, test %d), judgments of grade 1/2/3: %d/%d/%d\n",
           corpus.n, queries.n, n_in[0], n_in[1], grade_count[1], grade_count[2], grade_count[3]);

    // ---- the written vocabulary: loads, no [UNK] in any text, every synthetic word is
    // one token, and query + document fit in 128 tokens (the one-minute run's length)
    Tokenizer tok;
    path_in(path, sizeof(path), dir, "vocab.txt");
    tokenizer_load(&tok, path);
    int ids_cap = 4096;
    int* ids = (int*)mallocCheck(sizeof(int) * (size_t)ids_cap);
    int n_unk = 0, longest_doc = 0, longest_query = 0;
    for (int k = 0; k < 2; k++) {
        const BeirTexts* t = k == 0 ? &corpus : &queries;
        for (int i = 0; i < t->n; i++) {
            int n = tokenizer_encode(&tok, ids, ids_cap, beir_text(t, i), beir_text_len(t, i));
            if (n > ids_cap) { die("text %s has %d tokens, more than this test expects", beir_id(t, i), n); }
            for (int j = 0; j < n; j++) { n_unk += ids[j] == tok.unk_id; }
            int* longest = k == 0 ? &longest_doc : &longest_query;
            if (n > *longest) { *longest = n; }
        }
    }
    CHECK(n_unk == 0, "%d [UNK] tokens in the synthetic texts", n_unk);
    CHECK(longest_query + longest_doc + 3 <= 128, "longest query %d + longest document %d + 3 special tokens > 128",
          longest_query, longest_doc);
    printf("longest document %d tokens, longest query %d tokens, vocabulary %d\n", longest_doc, longest_query, tok.vocab_size);
    // the synthetic words follow the single characters and their continuations
    int first_word = tokenizer_token_id(&tok, "##z") + 1;
    Analyzer analyzer;
    analyzer_init(&analyzer, NULL, 0);
    int n_split_words = 0, n_changed_terms = 0;
    for (int id = first_word; id < tok.vocab_size; id++) {
        const char* w = tokenizer_token(&tok, id);
        int n = tokenizer_encode(&tok, ids, ids_cap, w, strlen(w));
        if (n != 1 || ids[0] != id) { n_split_words++; }
        // each word must be its own BM25 term: not a stopword, untouched by the stemmer
        char term[ANALYZER_MAX_WORD + 1];
        const char* cursor = w;
        int len = analyzer_next_word(term, &cursor);
        int tl = analyzer_term(&analyzer, term, len);
        if (tl != (int)strlen(w) || strncmp(term, w, (size_t)tl) != 0) { n_changed_terms++; }
    }
    // the default has 272 words (io/synth.h): a bound well under it that still needs every
    // kind of word (concept forms, topic vocabularies, common words) to be written
    CHECK(first_word > 0 && tok.vocab_size - first_word >= 250, "only %d synthetic words in the vocabulary",
          tok.vocab_size - first_word);
    CHECK(n_split_words == 0, "%d synthetic words are not a single token", n_split_words);
    CHECK(n_changed_terms == 0, "%d synthetic words are changed by the BM25 analyzer", n_changed_terms);
    analyzer_free(&analyzer);

    // ---- BM25 on the test queries against random and oracle rankings
    const char** doc_texts = (const char**)mallocCheck(sizeof(char*) * (size_t)corpus.n);
    const char** query_texts = (const char**)mallocCheck(sizeof(char*) * (size_t)queries.n);
    for (int i = 0; i < corpus.n; i++) { doc_texts[i] = beir_text(&corpus, i); }
    for (int i = 0; i < queries.n; i++) { query_texts[i] = beir_text(&queries, i); }
    Bm25Index index;
    bm25_build(&index, doc_texts, corpus.n, NULL, 0, BM25_DEFAULT_K1, BM25_DEFAULT_B);
    const int K = 100;
    int* docs = (int*)mallocCheck(sizeof(int) * (size_t)queries.n * K);
    float* scores = (float*)mallocCheck(sizeof(float) * (size_t)queries.n * K);
    bm25_search(docs, scores, &index, query_texts, queries.n, K);
    double ndcg_bm25 = mean_ndcg(&corpus, &queries, &split[1], docs, scores, K);
    // share of the relevant documents (test split) in BM25's top K, for the record
    int n_rel = 0, n_found = 0;
    for (int q = 0; q < queries.n; q++) {
        for (int i = split[1].query_start[q]; i < split[1].query_start[q + 1]; i++) {
            n_rel++;
            for (int j = 0; j < K; j++) { n_found += docs[(size_t)q * K + j] == split[1].doc[i]; }
        }
    }
    double recall_bm25 = (double)n_found / n_rel;
    // the best a reranker of BM25's top K can do: those K documents ordered by their grades
    float* grade_scores = (float*)mallocCheck(sizeof(float) * (size_t)queries.n * K);
    for (int q = 0; q < queries.n; q++) {
        for (int j = 0; j < K; j++) {
            float g = 0.0f;
            for (int i = split[1].query_start[q]; i < split[1].query_start[q + 1]; i++) {
                if (split[1].doc[i] == docs[(size_t)q * K + j]) { g = (float)split[1].gain[i]; }
            }
            grade_scores[(size_t)q * K + j] = g;
        }
    }
    double ndcg_rerank_best = mean_ndcg(&corpus, &queries, &split[1], docs, grade_scores, K);
    free(grade_scores);
    // random: the first K of a permutation of the corpus shuffled by a fixed LCG (its own,
    // not the generator's), a new partial Fisher-Yates shuffle for each query
    int* perm = (int*)mallocCheck(sizeof(int) * (size_t)corpus.n);
    for (int i = 0; i < corpus.n; i++) { perm[i] = i; }
    uint64_t lcg = 12345;
    for (int q = 0; q < queries.n; q++) {
        for (int j = 0; j < K; j++) {
            lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
            int pick = j + (int)((lcg >> 33) % (uint64_t)(corpus.n - j));
            int t = perm[j]; perm[j] = perm[pick]; perm[pick] = t;
            docs[(size_t)q * K + j] = perm[j];
            scores[(size_t)q * K + j] = (float)(K - j);
        }
    }
    free(perm);
    double ndcg_random = mean_ndcg(&corpus, &queries, &split[1], docs, scores, K);
    // oracle: each query's judged documents ranked by grade (K is replaced by the largest
    // number of judgments, the unused places filled with distinct unjudged documents at -1)
    int K_oracle = 0;
    for (int q = 0; q < queries.n; q++) {
        int n = split[1].query_start[q + 1] - split[1].query_start[q];
        if (n > K_oracle) { K_oracle = n; }
    }
    int* odocs = (int*)mallocCheck(sizeof(int) * (size_t)queries.n * K_oracle);
    float* oscores = (float*)mallocCheck(sizeof(float) * (size_t)queries.n * K_oracle);
    for (int q = 0; q < queries.n; q++) {
        int begin = split[1].query_start[q], n = split[1].query_start[q + 1] - begin;
        uint8_t* judged = (uint8_t*)callocCheck((size_t)corpus.n, 1);
        for (int i = 0; i < n; i++) {
            odocs[(size_t)q * K_oracle + i] = split[1].doc[begin + i];
            oscores[(size_t)q * K_oracle + i] = (float)split[1].gain[begin + i];
            judged[split[1].doc[begin + i]] = 1;
        }
        int d = 0;
        for (int i = n; i < K_oracle; i++) {
            while (judged[d]) { d++; }
            odocs[(size_t)q * K_oracle + i] = d++;
            oscores[(size_t)q * K_oracle + i] = -1.0f;
        }
        free(judged);
    }
    double ndcg_oracle = mean_ndcg(&corpus, &queries, &split[1], odocs, oscores, K_oracle);
    printf("NDCG@10 on the %d test queries: random %.4f, BM25 %.4f, BM25 top %d reranked by the grades %.4f, "
           "oracle %.4f; BM25 recall@%d %.4f\n",
           n_in[1], ndcg_random, ndcg_bm25, K, ndcg_rerank_best, ndcg_oracle, K, recall_bm25);
    // Why these bounds (measured on the default config with seed 42: random 0.092, BM25
    // 0.649, BM25 top 100 reranked by the grades 0.975; the first default, with 20 topics,
    // gave 0.011-0.028, 0.56-0.62 and 0.88-0.90 over seeds 1 to 8 and 42; the bounds sit
    // far from all of these, so they test the property and not one seed's luck):
    // - the oracle ranks by the very grades, so it scores 1 up to rounding;
    // - random scores about the share of relevant documents (some 275 of 2,000 per query
    //   with 4 topics), well under 0.2;
    // - BM25 > 0.15: the query's form of a concept is the form half of the documents on
    //   that concept use, so there is real lexical signal; BM25 < 0.8: most relevant
    //   documents name a concept of the query with another form, which BM25 cannot match;
    // - the reranking ceiling at least 0.15 above BM25: within BM25's own candidates there
    //   is a large gain for a reranker that learns the synonymy from the training queries.
    CHECK(fabs(ndcg_oracle - 1.0) < 1e-9, "oracle NDCG@10 %.12f, expected 1", ndcg_oracle);
    CHECK(ndcg_random < 0.2, "random NDCG@10 %.4f, expected below 0.2", ndcg_random);
    CHECK(ndcg_bm25 > 0.15 && ndcg_bm25 < 0.8, "BM25 NDCG@10 %.4f outside (0.15, 0.8)", ndcg_bm25);
    CHECK(ndcg_bm25 > ndcg_random + 0.1, "BM25 NDCG@10 %.4f not clearly above random %.4f", ndcg_bm25, ndcg_random);
    CHECK(ndcg_rerank_best > ndcg_bm25 + 0.15, "BM25 top %d reranked by the grades %.4f leaves too little room above BM25 %.4f",
          K, ndcg_rerank_best, ndcg_bm25);

    free(odocs);
    free(oscores);
    free(docs);
    free(scores);
    free(doc_texts);
    free(query_texts);
    free(ids);
    bm25_free(&index);
    tokenizer_free(&tok);
    beir_free_qrels(&split[0]);
    beir_free_qrels(&split[1]);
    beir_free_texts(&corpus);
    beir_free_texts(&queries);
    remove_collection(dir);
    remove_collection(dir_same);
    remove_collection(dir_other);
    return test_summary("test_synth");
}
