/*
 * dev/fuzz/fuzz_dense.c — retrieval/dense.c's embedding-file reader (dense_store_load) on
 * any bytes, for a store of three texts embedded by the tiny model. When the input's first
 * byte is odd, the fields a fuzzer cannot guess (the texts' and the model's 64-bit hashes)
 * are set to the store's before the file is written, so that the checks past them are
 * reached too.
 */
#include "dev/fuzz/fuzz.h"
#include "dev/fuzz/tiny.h"
#include "retrieval/dense.h"

static BertModel model;
static const char* const TEXTS[3] = { "a b c", "b c d", "flow over a plate" };  // as make_seeds.c

static void load(const uint8_t* data, size_t size) {
    DenseStore store;
    dense_store_init(&store, &model, TEXTS, 3, 8);
    int fix = size > 0 && (data[0] & 1);
    size_t n = size > 0 ? size - 1 : 0;
    uint8_t* bytes = (uint8_t*)mallocCheck(n);
    memcpy(bytes, data + (size > 0), n);
    if (fix && n >= 40) {
        memcpy(bytes + 24, &store.text_hash, 8);   // header words 6, 7
        memcpy(bytes + 32, &store.model_hash, 8);  // header words 8, 9
    }
    const char* path = fuzz_file(0, "dense.bin", bytes, n);
    free(bytes);
    if (dense_store_load(&store, path)) {
        for (int i = 0; i < 3; i++) {
            if (store.row_of[i] >= 0) { (void)dense_store_row(&store, i)[store.C - 1]; }
        }
    }
    dense_store_free(&store);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (model.num_parameters == 0) {
        BertConfig config;
        fuzz_tiny_config(&config);
        bert_build(&model, &config);
        bert_init_random(&model, 1);
    }
    fuzz_run(load, data, size);
    return 0;
}
