/*
 * dev/fuzz/fuzz_qrels.c — io/beir.c's qrels/<split>.tsv reader on any bytes, against a
 * small fixed collection (documents d1..d3, queries q1, q2), in both strict and lenient mode
 * (the first byte of the input chooses).
 */
#include "dev/fuzz/fuzz.h"
#include "io/beir.h"

static Corpus corpus;
static Queries queries;

static void load(const uint8_t* data, size_t size) {
    int strict = size > 0 && (data[0] & 1);
    const char* path = fuzz_file(0, "qrels.tsv", data + (size > 0), size - (size > 0));
    Qrels q;
    beir_load_qrels(&q, path, &corpus, &queries, strict);
    for (int i = 0; i < q.n; i++) {
        if (q.query[i] < 0 || q.query[i] >= queries.n || q.doc[i] < 0 || q.doc[i] >= corpus.n) { abort(); }
    }
    if (q.query_start[queries.n] != q.n) { abort(); }
    beir_free_qrels(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (corpus.n == 0) {
        static const char docs[] = "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d2\", \"text\": \"b\"}\n{\"_id\": \"d3\", \"text\": \"c\"}\n";
        static const char qs[] = "{\"_id\": \"q1\", \"text\": \"x\"}\n{\"_id\": \"q2\", \"text\": \"y\"}\n";
        beir_load_corpus(&corpus, fuzz_file(1, "corpus.jsonl", docs, sizeof(docs) - 1));
        beir_load_queries(&queries, fuzz_file(2, "queries.jsonl", qs, sizeof(qs) - 1));
    }
    fuzz_run(load, data, size);
    return 0;
}
