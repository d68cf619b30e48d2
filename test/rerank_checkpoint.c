/*
 * test/rerank_checkpoint.c — writes the models test/test_rerank.sh reranks with, into
 * OUT_DIR:
 *   minilm_ce.bin  all-MiniLM-L6-v2's encoder and pooler with the classification head of
 *                  HEAD.safetensors (the head dev/gen_rerank_fixture.py gave transformers),
 *                  so that rerank's scores can be compared with the fixture's logits
 *   tiny.bin       a tiny random cross-encoder on MiniLM's vocabulary, for the checks of
 *                  the mechanics: it scores a pair in microseconds even without BLAS
 *   tiny_hf/       the same tiny model exported as a Hugging Face cross-encoder, so that
 *                  rerank reads the same weights through its other loader
 *   labels2.bin    a tiny random model with a two-label head, which rerank must refuse
 *
 * usage: rerank_checkpoint MINILM_DIR HEAD.safetensors OUT_DIR
 */
#include <stdio.h>

#include "model.h"
#include "io/safetensors.h"
#include "common/utils.h"
#include "io/weights.h"

// reads one tensor of the head file into dst, which holds numel floats
static void read_head_tensor(float* dst, size_t numel, const SafeTensors* st, const char* name) {
    const SafeTensorInfo* t = safetensors_find(st, name);
    if (t == NULL) { die("%s: no tensor '%s'", st->path, name); }
    if (safetensors_numel(t) != numel) {
        die("%s: tensor '%s' has %zu elements, the model wants %zu", st->path, name, safetensors_numel(t), numel);
    }
    safetensors_read_f32(dst, st, t);
}

// a random BERT of MiniLM's vocabulary and positions, so that the same tokenizer and the
// same --max-len serve it
static void save_tiny(const BertConfig* minilm, int num_labels, uint64_t seed, const char* path,
                      const char* export_dir, const char* vocab) {
    BertConfig cfg = {
        .vocab_size = minilm->vocab_size, .hidden_size = 8, .num_layers = 1, .num_heads = 2,
        .intermediate_size = 16, .max_position = minilm->max_position, .type_vocab_size = 2,
        .num_labels = num_labels, .layer_norm_eps = 1e-12f,
    };
    BertModel m;
    bert_build(&m, &cfg);
    bert_init_random(&m, seed);
    bert_save(&m, path);
    // rerank's default length, which test_rerank.sh scores the export at
    if (export_dir != NULL) { bert_export_hf(&m, export_dir, vocab, 1, 256); }
    bert_free(&m);
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MINILM_DIR HEAD.safetensors OUT_DIR\n", argv[0]);
        return 2;
    }
    const char* out = argv[3];
    char path[4096], dir[4096], vocab[4096];
    snprintf(vocab, sizeof(vocab), "%s/vocab.txt", argv[1]);

    BertModel model;
    // the seed only fills the classifier, which the head file then overwrites
    bert_load_hf(&model, argv[1], 1);
    SafeTensors head;
    safetensors_open(&head, argv[2]);
    size_t C = (size_t)model.config.hidden_size;
    read_head_tensor(model.params.clsw, C, &head, "classifier.weight");
    read_head_tensor(model.params.clsb, 1, &head, "classifier.bias");
    safetensors_close(&head);
    snprintf(path, sizeof(path), "%s/minilm_ce.bin", out);
    bert_save(&model, path);

    snprintf(path, sizeof(path), "%s/tiny.bin", out);
    snprintf(dir, sizeof(dir), "%s/tiny_hf", out);
    save_tiny(&model.config, 1, 5, path, dir, vocab);
    snprintf(path, sizeof(path), "%s/labels2.bin", out);
    save_tiny(&model.config, 2, 3, path, NULL, vocab);
    bert_free(&model);
    return 0;
}
