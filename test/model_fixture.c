/*
 * test/model_fixture.c — reads the tiny BERT fixture of test/fixtures/model (see model_fixture.h).
 */
#include <math.h>
#include <string.h>
#include "test/model_fixture.h"
#include "common/utils.h"

#define FIXTURE_MAGIC 0x7A4C5846
#define HEADER_INTS 256

static float float_bits(int bits) {
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

// reads one fixture file, checks its header and exact size; returns the payload
static char* read_fixture_file(Fixture* fx, int kind, size_t payload_bytes_if_known, size_t* payload_len) {
    static const char* names[8] = {NULL, "model_params.bin", "model_grads.bin", "model_adamw.bin", "model_cosine.bin",
                                   "model_maxsim.bin", "model_split.bin", "model_split_cosmax.bin"};
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, names[kind]);
    size_t len;
    char* buf = readFileCheck(path, &len);
    if (len < HEADER_INTS * sizeof(int)) { die("%s: shorter than its header", path); }
    int* h = (int*)buf;
    if (h[0] != FIXTURE_MAGIC || h[1] != kind) { die("%s: bad magic or kind (rerun dev/gen_model_fixture.py)", path); }
    *payload_len = len - HEADER_INTS * sizeof(int);
    if (payload_bytes_if_known != 0 && *payload_len != payload_bytes_if_known) {
        die("%s: payload of %zu bytes, expected %zu", path, *payload_len, payload_bytes_if_known);
    }
    fx->buffers[kind - 1] = buf;
    return buf + HEADER_INTS * sizeof(int);
}

void fixture_read(Fixture* fx) {
    size_t len;
    char* p = read_fixture_file(fx, 1, 0, &len);
    const int* h = (const int*)fx->buffers[0];
    fx->config = (BertConfig){
        .vocab_size = h[2], .hidden_size = h[3], .num_layers = h[4], .num_heads = h[5],
        .intermediate_size = h[6], .max_position = h[7], .type_vocab_size = h[8],
        .num_labels = h[9], .layer_norm_eps = float_bits(h[10]),
    };
    fx->num_parameters = (size_t)h[11];
    fx->N = h[12];
    fx->S = h[13];
    fx->steps = h[14];
    fx->lr = float_bits(h[15]);
    fx->beta1 = float_bits(h[16]);
    fx->beta2 = float_bits(h[17]);
    fx->eps = float_bits(h[18]);
    fx->weight_decay = float_bits(h[19]);
    fx->max_norm = float_bits(h[20]);
    size_t P = fx->num_parameters, N = fx->N, S = fx->S, C = fx->config.hidden_size;
    size_t want = 4 * ((S + 1) + 2 * N + P + S + S * C);
    if (len != want) { die("%s/model_params.bin: payload of %zu bytes, expected %zu", FIXTURE_DIR, len, want); }
    fx->seq_starts = (int*)p; p += 4 * (S + 1);
    fx->ids = (int*)p; p += 4 * N;
    fx->types = (int*)p; p += 4 * N;
    fx->params = (float*)p; p += 4 * P;
    fx->y = (float*)p; p += 4 * S;
    fx->R = (float*)p;

    p = read_fixture_file(fx, 2, 4 * (1 + S * fx->config.num_labels + S * C + P), &len);
    fx->loss = *(float*)p; p += 4;
    fx->logits = (float*)p; p += 4 * S * fx->config.num_labels;
    fx->embeddings = (float*)p; p += 4 * S * C;
    fx->grads = (float*)p;

    if (fx->steps < 1 || fx->steps > 8) { die("%s: %d AdamW steps, expected 1 to 8", FIXTURE_DIR, fx->steps); }
    p = read_fixture_file(fx, 3, 4 * (fx->steps + 1 + P), &len);
    for (int k = 0; k < fx->steps; k++) { fx->grad_scales[k] = float_bits(((const int*)fx->buffers[2])[2 + k]); }
    fx->norms = (float*)p; p += 4 * fx->steps;
    fx->loss_after = *(float*)p; p += 4;
    fx->delta = (float*)p;

    p = read_fixture_file(fx, 4, 4 * (1 + S + P), &len);
    fx->cosine_loss = *(float*)p; p += 4;
    fx->cosine_logits = (float*)p; p += 4 * S;
    fx->cosine_grads = (float*)p;

    p = read_fixture_file(fx, 5, 4 * (1 + S + P), &len);
    fx->maxsim_loss = *(float*)p; p += 4;
    fx->maxsim_logits = (float*)p; p += 4 * S;
    fx->maxsim_grads = (float*)p;

    size_t G = (size_t)fx->config.num_layers * fx->config.num_heads;
    p = read_fixture_file(fx, 6, 4 * (G + 1 + S + P + G), &len);
    fx->split_gates = (float*)p; p += 4 * G;
    fx->split_loss = *(float*)p; p += 4;
    fx->split_logits = (float*)p; p += 4 * S;
    fx->split_grads = (float*)p;

    p = read_fixture_file(fx, 7, 4 * (G + 1 + S + P + G), &len);
    for (size_t i = 0; i < G; i++) {
        if (((float*)p)[i] != fx->split_gates[i]) { die("%s/model_split_cosmax.bin: its gates are not model_split.bin's", FIXTURE_DIR); }
    }
    p += 4 * G;
    fx->split_cosmax_loss = *(float*)p; p += 4;
    fx->split_cosmax_logits = (float*)p; p += 4 * S;
    fx->split_cosmax_grads = (float*)p;
}

void fixture_free(Fixture* fx) {
    for (int i = 0; i < 7; i++) { free(fx->buffers[i]); }
}

double fixture_loss(const BertModel* m, const Fixture* fx, float* dlogits, float* dembeddings) {
    int S = fx->S, C = fx->config.hidden_size;
    double loss = 0.0;
    for (int s = 0; s < S; s++) {
        double d = (double)m->logits[s] - fx->y[s];
        loss += 0.5 * d * d;
        if (dlogits != NULL) { dlogits[s] = (float)d; }
    }
    for (int i = 0; i < S * C; i++) {
        loss += (double)m->embeddings[i] * fx->R[i];
        if (dembeddings != NULL) { dembeddings[i] = fx->R[i]; }
    }
    return loss;
}

BertModel fixture_model(const Fixture* fx) {
    BertModel m;
    bert_build(&m, &fx->config);
    if (m.num_parameters != fx->num_parameters) {
        die("%s: %zu parameters, model.h's layout has %zu (rerun dev/gen_model_fixture.py)", FIXTURE_DIR,
            fx->num_parameters, m.num_parameters);
    }
    memcpy(m.params_memory, fx->params, m.num_parameters * sizeof(float));
    return m;
}

double normwise_error(const float* got, const float* want, size_t n) {
    double max_diff = 0.0, max_want = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= max_diff)) { max_diff = d; } // also catches NaN
        if (fabs(want[i]) > max_want) { max_want = fabs(want[i]); }
    }
    return max_want > 0.0 ? max_diff / max_want : max_diff;
}
