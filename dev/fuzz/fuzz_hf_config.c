/*
 * dev/fuzz/fuzz_hf_config.c — io/weights.c's Hugging Face config.json reader
 * (bert_config_from_hf) on any bytes; a config it accepts must give sizes a model can be
 * laid out from.
 */
#include "dev/fuzz/fuzz.h"
#include "io/weights.h"

static void load(const uint8_t* data, size_t size) {
    BertConfig config;
    bert_config_from_hf(&config, fuzz_file(0, "config.json", data, size));
    if (config.vocab_size <= 0 || config.hidden_size <= 0 || config.num_layers <= 0 || config.num_heads <= 0) { abort(); }
    size_t sizes[NUM_PARAMETER_TENSORS];
    fill_in_parameter_sizes(sizes, &config);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
