/*
 * dev/fuzz/fuzz_beir_texts.c — io/beir.c's corpus.jsonl and queries.jsonl reader on any
 * bytes, then every text's id and length looked at.
 */
#include "dev/fuzz/fuzz.h"
#include "io/beir.h"

static void load(const uint8_t* data, size_t size) {
    const char* path = fuzz_file(0, "corpus.jsonl", data, size);
    Corpus c;
    beir_load_corpus(&c, path);
    for (int i = 0; i < c.n; i++) {
        if (beir_index_of(&c, beir_id(&c, i)) != i) { abort(); }
        if (beir_text_len(&c, i) != strlen(beir_text(&c, i))) { abort(); }  // NULs are dropped
        if (strlen(beir_body(&c, i)) > beir_text_len(&c, i)) { abort(); }
    }
    beir_free_texts(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
