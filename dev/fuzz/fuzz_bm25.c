/*
 * dev/fuzz/fuzz_bm25.c — retrieval/bm25.c's index reader (bm25_load, bm25.idx) on any
 * bytes; an index it accepts is then searched, which must stay inside its arrays.
 */
#include "dev/fuzz/fuzz.h"
#include "retrieval/bm25.h"

static void load(const uint8_t* data, size_t size) {
    Bm25Index index;
    bm25_load(&index, fuzz_file(0, "bm25.idx", data, size));
    const char* queries[2] = { "flow over a plate", "b c d s" };
    int docs[2 * 3];
    float scores[2 * 3];
    bm25_search(docs, scores, &index, queries, 2, 3);
    for (int i = 0; i < 6; i++) {
        if (docs[i] < -1 || docs[i] >= index.n_docs) { abort(); }
    }
    bm25_free(&index);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
