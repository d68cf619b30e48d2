/*
 * dev/fuzz/tiny.h — the model of the binary seeds (make_seeds.c) and of the targets that
 * need a built model to read into: small enough that a seed is a few kilobytes.
 */
#ifndef ZELO_FUZZ_TINY_H
#define ZELO_FUZZ_TINY_H

#include "model.h"

static inline void fuzz_tiny_config(BertConfig* c) {
    *c = (BertConfig){ .vocab_size = 16, .hidden_size = 4, .num_layers = 1, .num_heads = 2, .intermediate_size = 8,
                       .max_position = 16, .type_vocab_size = 2, .num_labels = 1, .layer_norm_eps = 1e-12f };
}

#endif // ZELO_FUZZ_TINY_H
