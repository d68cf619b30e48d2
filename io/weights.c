/*
 * io/weights.c — Hugging Face config.json / model.safetensors import and export (weights.h).
 */
#include "io/weights.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "common/utils.h"

// ----------------------------------------------------------------------------
// config.json

// a size field: required (transformers' defaults are bert-base sizes, which would silently
// build a different model than the weights), a positive integer
static int config_size(const JsonValue* root, const char* path, const char* key) {
    const JsonValue* v = json_get(root, key);
    if (v == NULL) { die("config '%s': missing \"%s\"", path, key); }
    if (v->type != JSON_NUMBER || v->number < 1 || v->number > 1e9 || v->number != (double)(int)v->number) {
        die("config '%s': \"%s\" must be a positive integer", path, key);
    }
    return (int)v->number;
}

// an option field: absent means transformers' default, present must have the right type
static const char* config_string(const JsonValue* root, const char* path, const char* key, const char* fallback) {
    const JsonValue* v = json_get(root, key);
    if (v == NULL) { return fallback; }
    if (v->type != JSON_STRING) { die("config '%s': \"%s\" must be a string, found a %s", path, key, json_type_name(v->type)); }
    return v->str;
}

static int config_bool(const JsonValue* root, const char* path, const char* key, int fallback) {
    const JsonValue* v = json_get(root, key);
    if (v == NULL) { return fallback; }
    if (v->type != JSON_TRUE && v->type != JSON_FALSE) {
        die("config '%s': \"%s\" must be true or false, found a %s", path, key, json_type_name(v->type));
    }
    return v->type == JSON_TRUE;
}

void bert_config_from_hf(BertConfig* config, const char* path) {
    size_t len;
    char* text = readFileCheck(path, &len);
    JsonValue root;
    char err[256];
    if (!json_parse(&root, text, len, err, sizeof(err))) { die("config '%s': not valid JSON: %s", path, err); }
    if (root.type != JSON_OBJECT) { die("config '%s': a JSON %s, not an object", path, json_type_name(root.type)); }

    // other families (roberta, electra, distilbert, ...) differ in tensor names or in
    // position ids, so loading them as BERT would give wrong scores without an error
    const JsonValue* model_type = json_get(&root, "model_type");
    if (model_type == NULL || model_type->type != JSON_STRING) { die("config '%s': missing or non-string \"model_type\"", path); }
    if (strcmp(model_type->str, "bert") != 0) {
        die("config '%s': model_type \"%s\" is not supported (only \"bert\")", path, model_type->str);
    }
    const char* act = config_string(&root, path, "hidden_act", "gelu");
    if (strcmp(act, "gelu") != 0) {
        die("config '%s': hidden_act \"%s\" is not supported (only \"gelu\", the erf form)", path, act);
    }
    const char* pos = config_string(&root, path, "position_embedding_type", "absolute");
    if (strcmp(pos, "absolute") != 0) {
        die("config '%s': position_embedding_type \"%s\" is not supported (only \"absolute\")", path, pos);
    }
    if (config_bool(&root, path, "is_decoder", 0)) { die("config '%s': is_decoder true is not supported (encoder only)", path); }
    if (config_bool(&root, path, "add_cross_attention", 0)) { die("config '%s': add_cross_attention true is not supported", path); }

    config->vocab_size = config_size(&root, path, "vocab_size");
    config->hidden_size = config_size(&root, path, "hidden_size");
    config->num_layers = config_size(&root, path, "num_hidden_layers");
    config->num_heads = config_size(&root, path, "num_attention_heads");
    config->intermediate_size = config_size(&root, path, "intermediate_size");
    config->max_position = config_size(&root, path, "max_position_embeddings");
    config->type_vocab_size = json_get(&root, "type_vocab_size") ? config_size(&root, path, "type_vocab_size") : 2;
    if (config->hidden_size % config->num_heads != 0) {
        die("config '%s': hidden_size %d is not a multiple of num_attention_heads %d", path, config->hidden_size, config->num_heads);
    }
    const JsonValue* eps = json_get(&root, "layer_norm_eps");
    if (eps != NULL && (eps->type != JSON_NUMBER || !(eps->number > 0) || !(eps->number < 1))) {
        die("config '%s': \"layer_norm_eps\" must be a number in (0, 1)", path);
    }
    config->layer_norm_eps = eps != NULL ? (float)eps->number : 1e-12f;

    // transformers stores the label count as the size of id2label; "num_labels" may appear
    // as well. An encoder-only checkpoint has neither and gets our cross-encoder's single
    // logit (transformers itself would default to 2, but such a file has no classifier to
    // disagree with).
    const JsonValue* id2label = json_get(&root, "id2label");
    const JsonValue* num_labels = json_get(&root, "num_labels");
    config->num_labels = 1;
    if (id2label != NULL) {
        if (id2label->type != JSON_OBJECT || id2label->count < 1) { die("config '%s': \"id2label\" must be a non-empty object", path); }
        config->num_labels = id2label->count;
    }
    if (num_labels != NULL) {
        int n = config_size(&root, path, "num_labels");
        if (id2label != NULL && n != id2label->count) {
            die("config '%s': num_labels %d disagrees with the %d entries of id2label", path, n, id2label->count);
        }
        config->num_labels = n;
    }
    json_free(&root);
    free(text);
}

// ----------------------------------------------------------------------------
// the name mapping

int hf_tensor_count(const BertConfig* config) { return 5 + 16 * config->num_layers + 4; }

static HfTensor* add_tensor(HfTensor* t, float* data, size_t rows, size_t cols, int is_head, const char* fmt, int layer) {
    int n = snprintf(t->name, sizeof(t->name), fmt, layer);
    if (n < 0 || (size_t)n >= sizeof(t->name)) { die("tensor name '%s' (layer %d) too long", fmt, layer); }
    t->data = data;
    t->ndim = cols == 0 ? 1 : 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->is_head = is_head;
    return t + 1;
}

void hf_tensor_list(HfTensor* out, const BertModel* model) {
    const BertConfig* c = &model->config;
    const ParameterTensors* p = &model->params;
    size_t V = c->vocab_size, C = c->hidden_size, I = c->intermediate_size;
    size_t P = c->max_position, TT = c->type_vocab_size, NL = c->num_labels;
    HfTensor* t = out;
    // cols 0 marks a vector; layer -1 is unused by names without "%d"
    t = add_tensor(t, p->wte, V, C, 0, "embeddings.word_embeddings.weight", -1);
    t = add_tensor(t, p->wpe, P, C, 0, "embeddings.position_embeddings.weight", -1);
    t = add_tensor(t, p->wtt, TT, C, 0, "embeddings.token_type_embeddings.weight", -1);
    t = add_tensor(t, p->emb_lnw, C, 0, 0, "embeddings.LayerNorm.weight", -1);
    t = add_tensor(t, p->emb_lnb, C, 0, 0, "embeddings.LayerNorm.bias", -1);
    for (int l = 0; l < c->num_layers; l++) {
        float* qkvw = p->qkvw + l * 3 * C * C;  // (3*C, C): query rows, key rows, value rows
        float* qkvb = p->qkvb + l * 3 * C;
        t = add_tensor(t, qkvw, C, C, 0, "encoder.layer.%d.attention.self.query.weight", l);
        t = add_tensor(t, qkvb, C, 0, 0, "encoder.layer.%d.attention.self.query.bias", l);
        t = add_tensor(t, qkvw + C * C, C, C, 0, "encoder.layer.%d.attention.self.key.weight", l);
        t = add_tensor(t, qkvb + C, C, 0, 0, "encoder.layer.%d.attention.self.key.bias", l);
        t = add_tensor(t, qkvw + 2 * C * C, C, C, 0, "encoder.layer.%d.attention.self.value.weight", l);
        t = add_tensor(t, qkvb + 2 * C, C, 0, 0, "encoder.layer.%d.attention.self.value.bias", l);
        t = add_tensor(t, p->attprojw + l * C * C, C, C, 0, "encoder.layer.%d.attention.output.dense.weight", l);
        t = add_tensor(t, p->attprojb + l * C, C, 0, 0, "encoder.layer.%d.attention.output.dense.bias", l);
        t = add_tensor(t, p->ln1w + l * C, C, 0, 0, "encoder.layer.%d.attention.output.LayerNorm.weight", l);
        t = add_tensor(t, p->ln1b + l * C, C, 0, 0, "encoder.layer.%d.attention.output.LayerNorm.bias", l);
        t = add_tensor(t, p->fcw + l * I * C, I, C, 0, "encoder.layer.%d.intermediate.dense.weight", l);
        t = add_tensor(t, p->fcb + l * I, I, 0, 0, "encoder.layer.%d.intermediate.dense.bias", l);
        t = add_tensor(t, p->fcprojw + l * C * I, C, I, 0, "encoder.layer.%d.output.dense.weight", l);
        t = add_tensor(t, p->fcprojb + l * C, C, 0, 0, "encoder.layer.%d.output.dense.bias", l);
        t = add_tensor(t, p->ln2w + l * C, C, 0, 0, "encoder.layer.%d.output.LayerNorm.weight", l);
        t = add_tensor(t, p->ln2b + l * C, C, 0, 0, "encoder.layer.%d.output.LayerNorm.bias", l);
    }
    t = add_tensor(t, p->poolw, C, C, 1, "pooler.dense.weight", -1);
    t = add_tensor(t, p->poolb, C, 0, 1, "pooler.dense.bias", -1);
    t = add_tensor(t, p->clsw, NL, C, 1, "classifier.weight", -1);
    add_tensor(t, p->clsb, NL, 0, 1, "classifier.bias", -1);
}

// the classifier sits beside "bert", not inside it, in BertForSequenceClassification
static int is_classifier(const HfTensor* t) { return strncmp(t->name, "classifier.", 11) == 0; }

static void format_shape(char* out, size_t cap, int ndim, const size_t* shape) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++) { n += (size_t)snprintf(out + n, cap - n, "%s%zu", d > 0 ? ", " : "", shape[d]); }
    if (n < cap) { snprintf(out + n, cap - n, "]"); }
}

// ----------------------------------------------------------------------------
// loading

// note_head: say on stderr which head tensors the file lacks (a bi-encoder never uses them);
// returns whether the file has the classifier
static int load_hf(BertModel* model, const char* dir, uint64_t seed, int note_head) {
    char path[4096];
    joinPathCheck(path, sizeof(path), dir, "config.json");
    BertConfig config;
    bert_config_from_hf(&config, path);
    bert_build(model, &config);
    // the head tensors a checkpoint may lack keep this initialisation; the rest is overwritten
    bert_init_random(model, seed);

    joinPathCheck(path, sizeof(path), dir, "model.safetensors");
    if (access(path, R_OK) != 0) {
        die("'%s' cannot be read (%s); only model.safetensors checkpoints are loaded (a pytorch_model.bin "
            "can be converted with the safetensors Python package)", path, strerror(errno));
    }
    SafeTensors st;
    safetensors_open(&st, path);
    const char* prefix;
    if (safetensors_find(&st, "bert.embeddings.word_embeddings.weight") != NULL) {
        prefix = "bert.";
    } else if (safetensors_find(&st, "embeddings.word_embeddings.weight") != NULL) {
        prefix = "";
    } else {
        die("safetensors file '%s': no tensor \"bert.embeddings.word_embeddings.weight\" or "
            "\"embeddings.word_embeddings.weight\"; not a BERT checkpoint", path);
    }

    int* used = (int*)callocCheck((size_t)st.num_tensors, sizeof(int));
    int has_classifier = 1;
    int count = hf_tensor_count(&config);
    HfTensor* list = (HfTensor*)mallocCheck((size_t)count * sizeof(HfTensor));
    hf_tensor_list(list, model);
    for (int i = 0; i < count; i++) {
        const HfTensor* h = &list[i];
        char name[128];
        snprintf(name, sizeof(name), "%s%s", is_classifier(h) ? "" : prefix, h->name);
        const SafeTensorInfo* t = safetensors_find(&st, name);
        if (t == NULL) {
            if (!h->is_head) { die("safetensors file '%s': tensor '%s' is missing", path, name); }
            if (is_classifier(h)) { has_classifier = 0; }
            if (!note_head) { continue; }
            fprintf(stderr, "note: '%s' has no tensor '%s'; it keeps BERT's random initialisation (seed %llu)\n",
                    path, name, (unsigned long long)seed);
            continue;
        }
        used[t - st.tensors] = 1;
        int same = t->ndim == h->ndim;
        for (int d = 0; same && d < h->ndim; d++) { same = t->shape[d] == h->shape[d]; }
        if (!same) {
            char want[64], found[64];
            format_shape(want, sizeof(want), h->ndim, h->shape);
            format_shape(found, sizeof(found), t->ndim, t->shape);
            die("safetensors file '%s', tensor '%s': shape %s, but config.json implies %s", path, name, found, want);
        }
        safetensors_read_f32(h->data, &st, t);
        size_t n = safetensors_numel(t);
        for (size_t k = 0; k < n; k++) {
            if (!isfinite(h->data[k])) {
                die("safetensors file '%s', tensor '%s': element %zu is %f; the checkpoint is corrupt", path, name, k, h->data[k]);
            }
        }
    }
    for (int i = 0; i < st.num_tensors; i++) {
        const char* name = st.tensors[i].name;
        size_t n = strlen(name);
        // position_ids is a registered buffer holding arange(P): not a weight
        if (used[i] || (n >= 12 && strcmp(name + n - 12, "position_ids") == 0)) { continue; }
        fprintf(stderr, "note: '%s': tensor '%s' is not used by this model and was ignored\n", path, name);
    }
    free(list);
    free(used);
    safetensors_close(&st);
    return has_classifier;
}

int bert_load_hf(BertModel* model, const char* dir, uint64_t seed) { return load_hf(model, dir, seed, 1); }

void bert_load_hf_encoder(BertModel* model, const char* dir, uint64_t seed) { load_hf(model, dir, seed, 0); }

// ----------------------------------------------------------------------------
// export

// the shortest decimal that reads back as the same float, so that config.json shows
// 1e-12 rather than 9.99999996e-13
static void write_float_shortest(FILE* fp, float x) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof(buf), "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x) { break; }
    }
    fputs(buf, fp);
}

// index of a token (a whole line) in vocab.txt, or -1
static int vocab_index(const char* text, size_t len, const char* token) {
    size_t tlen = strlen(token);
    int line = 0;
    for (size_t i = 0; i < len; line++) {
        size_t end = i;
        while (end < len && text[end] != '\n') { end++; }
        size_t stop = end > i && text[end - 1] == '\r' ? end - 1 : end;
        if (stop - i == tlen && memcmp(text + i, token, tlen) == 0) { return line; }
        i = end + 1;
    }
    return -1;
}

// with_head: a BertForSequenceClassification (the cross-encoder) or a bare BertModel (an encoder)
static void write_config_json(const BertModel* model, const char* path, int pad_id, int with_head) {
    const BertConfig* c = &model->config;
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    fprintf(fp, "{\n");
    fprintf(fp, "  \"architectures\": [\"%s\"],\n", with_head ? "BertForSequenceClassification" : "BertModel");
    fprintf(fp, "  \"model_type\": \"bert\",\n");
    fprintf(fp, "  \"vocab_size\": %d,\n", c->vocab_size);
    fprintf(fp, "  \"hidden_size\": %d,\n", c->hidden_size);
    fprintf(fp, "  \"num_hidden_layers\": %d,\n", c->num_layers);
    fprintf(fp, "  \"num_attention_heads\": %d,\n", c->num_heads);
    fprintf(fp, "  \"intermediate_size\": %d,\n", c->intermediate_size);
    fprintf(fp, "  \"max_position_embeddings\": %d,\n", c->max_position);
    fprintf(fp, "  \"type_vocab_size\": %d,\n", c->type_vocab_size);
    fprintf(fp, "  \"layer_norm_eps\": ");
    write_float_shortest(fp, c->layer_norm_eps);
    fprintf(fp, ",\n");
    fprintf(fp, "  \"hidden_act\": \"gelu\",\n");
    fprintf(fp, "  \"position_embedding_type\": \"absolute\",\n");
    // dropout only matters when transformers trains the export further; these are BERT's
    fprintf(fp, "  \"hidden_dropout_prob\": 0.1,\n");
    fprintf(fp, "  \"attention_probs_dropout_prob\": 0.1,\n");
    fprintf(fp, "  \"classifier_dropout\": null,\n");
    fprintf(fp, "  \"initializer_range\": 0.02,\n");
    fprintf(fp, "  \"pad_token_id\": %d,\n", pad_id);
    fprintf(fp, "  \"use_cache\": true,\n");
    fprintf(fp, "  \"torch_dtype\": \"float32\"%s\n", with_head ? "," : "");
    if (!with_head) {
        fprintf(fp, "}\n");
        atomicCommit(&af);
        return;
    }
    fprintf(fp, "  \"id2label\": {");
    for (int i = 0; i < c->num_labels; i++) { fprintf(fp, "%s\"%d\": \"LABEL_%d\"", i > 0 ? ", " : "", i, i); }
    fprintf(fp, "},\n");
    fprintf(fp, "  \"label2id\": {");
    for (int i = 0; i < c->num_labels; i++) { fprintf(fp, "%s\"LABEL_%d\": %d", i > 0 ? ", " : "", i, i); }
    fprintf(fp, "}\n");
    fprintf(fp, "}\n");
    atomicCommit(&af);
}

static const char* const SPECIAL_TOKENS[5][2] = {
    {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"},
};

static void write_tokenizer_files(const char* dir, int do_lower_case, int max_length) {
    char path[4096];
    joinPathCheck(path, sizeof(path), dir, "special_tokens_map.json");
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    fprintf(fp, "{");
    for (int i = 0; i < 5; i++) { fprintf(fp, "%s\"%s\": \"%s\"", i > 0 ? ", " : "", SPECIAL_TOKENS[i][0], SPECIAL_TOKENS[i][1]); }
    fprintf(fp, "}\n");
    atomicCommit(&af);

    joinPathCheck(path, sizeof(path), dir, "tokenizer_config.json");
    fp = atomicOpen(&af, path, "w");
    fprintf(fp, "{\n  \"tokenizer_class\": \"BertTokenizer\",\n");
    fprintf(fp, "  \"do_lower_case\": %s,\n", do_lower_case ? "true" : "false");
    // BERT's basic tokenizer: accents follow the casing (stripped when lower-casing)
    fprintf(fp, "  \"strip_accents\": null,\n  \"tokenize_chinese_chars\": true,\n");
    fprintf(fp, "  \"model_max_length\": %d,\n", max_length);
    for (int i = 0; i < 5; i++) { fprintf(fp, "  \"%s\": \"%s\"%s\n", SPECIAL_TOKENS[i][0], SPECIAL_TOKENS[i][1], i < 4 ? "," : ""); }
    fprintf(fp, "}\n");
    atomicCommit(&af);
}

static void export_hf(const BertModel* model, const char* dir, const char* vocab_path, int do_lower_case, int max_length,
                      int with_head) {
    if (max_length < 3 || max_length > model->config.max_position) {
        die("export to '%s': max_length %d is not in [3, %d] (the model's positions)", dir, max_length, model->config.max_position);
    }
    // the vocabulary is checked first, so a bad one leaves no half-written directory
    size_t vocab_len;
    char* vocab = readFileCheck(vocab_path, &vocab_len);
    for (int i = 0; i < 5; i++) {
        if (vocab_index(vocab, vocab_len, SPECIAL_TOKENS[i][1]) < 0) {
            die("vocabulary '%s' has no %s line; the exported tokenizer could not build cross-encoder inputs", vocab_path, SPECIAL_TOKENS[i][1]);
        }
    }
    int lines = 0;
    for (size_t i = 0; i < vocab_len; i++) { lines += vocab[i] == '\n'; }
    lines += vocab_len > 0 && vocab[vocab_len - 1] != '\n';
    if (lines > model->config.vocab_size) {
        die("vocabulary '%s' has %d tokens but the model's embedding table only %d rows", vocab_path, lines, model->config.vocab_size);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) { die("could not create directory '%s': %s", dir, strerror(errno)); }

    char path[4096];
    joinPathCheck(path, sizeof(path), dir, "vocab.txt");
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    fwriteCheck(vocab, 1, vocab_len, fp);
    atomicCommit(&af);
    joinPathCheck(path, sizeof(path), dir, "config.json");
    write_config_json(model, path, vocab_index(vocab, vocab_len, "[PAD]"), with_head);
    write_tokenizer_files(dir, do_lower_case, max_length);
    free(vocab);

    int count = hf_tensor_count(&model->config);
    HfTensor* list = (HfTensor*)mallocCheck((size_t)count * sizeof(HfTensor));
    hf_tensor_list(list, model);
    SafeTensorsWriter w;
    safetensors_writer_init(&w);
    for (int i = 0; i < count; i++) {
        // an encoder's checkpoint has its names bare and no classifier (all-MiniLM-L6-v2's layout)
        if (!with_head && is_classifier(&list[i])) { continue; }
        char name[128];
        snprintf(name, sizeof(name), "%s%s", is_classifier(&list[i]) || !with_head ? "" : "bert.", list[i].name);
        safetensors_writer_add(&w, name, list[i].data, list[i].ndim, list[i].shape);
    }
    joinPathCheck(path, sizeof(path), dir, "model.safetensors");
    safetensors_writer_write(&w, path);
    safetensors_writer_free(&w);
    free(list);
}

void bert_export_hf(const BertModel* model, const char* dir, const char* vocab_path, int do_lower_case, int max_length) {
    if (model->score_head != SCORE_HEAD_CLS) {
        die("--export writes BertForSequenceClassification, whose score is the [CLS] pooler's; a model with the %s "
            "head has no such form (rerank reads its model.bin)", score_head_name(model->score_head));
    }
    export_hf(model, dir, vocab_path, do_lower_case, max_length, 1);
}

void bert_export_hf_encoder(const BertModel* model, const char* dir, const char* vocab_path, int do_lower_case, int max_length) {
    export_hf(model, dir, vocab_path, do_lower_case, max_length, 0);
}
