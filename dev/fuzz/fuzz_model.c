/*
 * dev/fuzz/fuzz_model.c — model.c's checkpoint reader (bert_load, model_<step>.bin and
 * rerank --model) on any bytes. Seed: a checkpoint of the tiny model (make_seeds.c).
 */
#include "dev/fuzz/fuzz.h"
#include "model.h"

static void load(const uint8_t* data, size_t size) {
    BertModel m;
    bert_load(&m, fuzz_file(0, "model.bin", data, size));
    bert_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
