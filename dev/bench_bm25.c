/*
 * bench_bm25.c — times our BM25 on a BEIR corpus: index build (analysis included) and
 * top-K search. dev/bench_bm25.sh runs it beside bm25s on the same files.
 *
 *   bench_bm25 <corpus.jsonl> <queries.jsonl> [K]
 *
 * Threads: OMP_NUM_THREADS. Prints one "result" line that the script parses:
 *   result docs D terms T postings P load_s L build_s B queries Q search_s S qps R
 * build_s: texts already in memory -> index ready (word splitting, stopwords, stemming,
 * postings, weights), the best of as many builds as fit in one second (at least one). search_s: query texts -> top-K lists (query analysis included), the
 * best of at least 5 runs and of as many as fit in one second.
 */
#include <omp.h>
#include "io/beir.h"
#include "retrieval/bm25.h"

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s corpus.jsonl queries.jsonl [K]\n", argv[0]);
        return 1;
    }
    int K = argc == 4 ? atoi(argv[3]) : 100;
    if (K < 1) { die("K must be >= 1, got '%s'", argv[3]); }
    double t0 = omp_get_wtime();
    Corpus corpus;
    Queries queries;
    beir_load_corpus(&corpus, argv[1]);
    beir_load_queries(&queries, argv[2]);
    double load_s = omp_get_wtime() - t0;
    const char** texts = (const char**)mallocCheck(sizeof(char*) * (size_t)corpus.n);
    const char** qtexts = (const char**)mallocCheck(sizeof(char*) * (size_t)queries.n);
    for (int i = 0; i < corpus.n; i++) { texts[i] = beir_text(&corpus, i); }
    for (int i = 0; i < queries.n; i++) { qtexts[i] = beir_text(&queries, i); }

    // like the search below: the best of as many builds as fit in a second, at least one
    // (a Cranfield build takes 10 ms, less than one stall of a loaded machine)
    Bm25Index index;
    double build_s = 1e30, spent = 0.0;
    for (int builds = 0; builds == 0 || spent < 1.0; builds++) {
        if (builds > 0) { bm25_free(&index); }
        t0 = omp_get_wtime();
        bm25_build(&index, texts, corpus.n, NULL, 0, BM25_DEFAULT_K1, BM25_DEFAULT_B);
        double s = omp_get_wtime() - t0;
        if (s < build_s) { build_s = s; }
        spent += s;
    }

    int* doc = (int*)mallocCheck(sizeof(int) * (size_t)queries.n * K);      // (Q, K)
    float* score = (float*)mallocCheck(sizeof(float) * (size_t)queries.n * K); // (Q, K)
    // best of at least 5 runs and of as many as fit in a second: on a shared machine a
    // thread that loses its core stalls a whole run for a scheduler tick (12 ms), longer
    // than a whole run on Cranfield, so a handful of runs can all be stalled
    double search_s = 1e30;
    int runs = 0;
    spent = 0.0;
    while (runs < 5 || spent < 1.0) {
        t0 = omp_get_wtime();
        bm25_search(doc, score, &index, qtexts, queries.n, K);
        double s = omp_get_wtime() - t0;
        if (s < search_s) { search_s = s; }
        spent += s;
        runs++;
    }
    printf("result docs %d terms %d postings %lld load_s %.4f build_s %.4f queries %d search_s %.5f qps %.1f threads %d runs %d\n",
           corpus.n, index.n_terms, (long long)index.n_postings, load_s, build_s, queries.n, search_s,
           queries.n / search_s, omp_get_max_threads(), runs);
    bm25_free(&index);
    beir_free_texts(&corpus);
    beir_free_texts(&queries);
    free(texts);
    free(qtexts);
    free(doc);
    free(score);
    return 0;
}
