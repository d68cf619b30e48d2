/*
 * test/rerank_checkpoint.c — writes the two train_zelo checkpoints test/test_rerank.sh
 * reranks with:
 *   OUT.bin          all-MiniLM-L6-v2's encoder and pooler with the classification head of
 *                    HEAD.safetensors (the head dev/gen_rerank_fixture.py gave transformers),
 *                    so that rerank's scores can be compared with the fixture's logits
 *   OUT_LABELS2.bin  a tiny random model with a two-label head, which rerank must refuse
 *   OUT_HF_DIR/      the model of OUT.bin exported as a Hugging Face cross-encoder, so that
 *                    rerank reads the same weights through its other loader
 *
 * usage: rerank_checkpoint MINILM_DIR HEAD.safetensors OUT.bin OUT_LABELS2.bin OUT_HF_DIR
 */
#include <stdio.h>

#include "model.h"
#include "safetensors.h"
#include "utils.h"
#include "weights.h"

// reads one tensor of the head file into dst, which holds numel floats
static void read_head_tensor(float* dst, size_t numel, const SafeTensors* st, const char* name) {
    const SafeTensorInfo* t = safetensors_find(st, name);
    if (t == NULL) { die("%s: no tensor '%s'", st->path, name); }
    if (safetensors_numel(t) != numel) {
        die("%s: tensor '%s' has %zu elements, the model wants %zu", st->path, name, safetensors_numel(t), numel);
    }
    safetensors_read_f32(dst, st, t);
}

int main(int argc, char** argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MINILM_DIR HEAD.safetensors OUT.bin OUT_LABELS2.bin OUT_HF_DIR\n", argv[0]);
        return 2;
    }
    BertModel model;
    // the seed only fills the classifier, which the head file then overwrites
    bert_load_hf(&model, argv[1], 1);
    SafeTensors head;
    safetensors_open(&head, argv[2]);
    size_t C = (size_t)model.config.hidden_size;
    read_head_tensor(model.params.clsw, C, &head, "classifier.weight");
    read_head_tensor(model.params.clsb, 1, &head, "classifier.bias");
    safetensors_close(&head);
    bert_save(&model, argv[3]);
    char vocab[4096];
    snprintf(vocab, sizeof(vocab), "%s/vocab.txt", argv[1]);
    bert_export_hf(&model, argv[5], vocab, 1);

    // the vocabulary size matches MiniLM's so that only the head can be the reason to refuse
    BertConfig two = {
        .vocab_size = model.config.vocab_size, .hidden_size = 8, .num_layers = 1, .num_heads = 2,
        .intermediate_size = 16, .max_position = 64, .type_vocab_size = 2, .num_labels = 2,
        .layer_norm_eps = 1e-12f,
    };
    BertModel labels2;
    bert_build(&labels2, &two);
    bert_init_random(&labels2, 3);
    bert_save(&labels2, argv[4]);
    bert_free(&labels2);
    bert_free(&model);
    return 0;
}
