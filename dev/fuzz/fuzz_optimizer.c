/*
 * dev/fuzz/fuzz_optimizer.c — model.c's optimizer-state reader (bert_load_optimizer,
 * optimizer_<step>.bin) on any bytes, into a built tiny model (dev/fuzz/tiny.h).
 */
#include "dev/fuzz/fuzz.h"
#include "dev/fuzz/tiny.h"

static BertModel model;

static void load(const uint8_t* data, size_t size) {
    bert_load_optimizer(&model, fuzz_file(0, "optimizer.bin", data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (model.num_parameters == 0) {
        BertConfig config;
        fuzz_tiny_config(&config);
        bert_build(&model, &config);
        // the reader allocates m and v into the model when it has none: done here, so that
        // nothing a refused call allocates outlives it (dev/fuzz/fuzz.h)
        model.m_memory = (float*)callocCheck(model.num_parameters, sizeof(float));
        model.v_memory = (float*)callocCheck(model.num_parameters, sizeof(float));
    }
    fuzz_run(load, data, size);
    return 0;
}
