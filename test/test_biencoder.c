/*
 * test/test_biencoder.c — the bi-encoder's zELO loss, training step, exact search and
 * sentence-transformers export (retrieval/biencoder.h, io/sentence_transformers.h), against
 * independent references:
 *   - the loss's gradient against central finite differences of the loss (double on the C side);
 *   - the loss and d loss / d emb against PyTorch autograd in float64 (fixtures of
 *     dev/gen_biencoder_fixture.py, test/fixtures/biencoder/loss.json);
 *   - one whole step on a tiny random BERT: the loss and every parameter's gradient against
 *     PyTorch's (step.json, step_grads.safetensors);
 *   - exact top-k search against a full sort;
 *   - the export: its small files byte for byte against those sentence-transformers loaded,
 *     and our embeddings of the exported folder against sentence-transformers' own.
 * `build/test_biencoder export DIR` writes the tiny model's export, for the fixture script.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "test/test.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/sentence_transformers.h"
#include "io/weights.h"
#include "retrieval/biencoder.h"
#include "retrieval/dense.h"
#include "tokenizer/wordpiece.h"

#define FIXTURES "test/fixtures/biencoder"
#define SCRATCH "build/test_biencoder_files"

static JsonValue read_json(const char* path) {
    size_t len;
    char* text = readFileCheck(path, &len);
    JsonValue v;
    char err[256];
    if (!json_parse(&v, text, len, err, sizeof(err))) { die("%s: %s", path, err); }
    free(text);
    return v;
}

static const JsonValue* member(const JsonValue* obj, const char* key) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL) { die("fixture: no member '%s'", key); }
    return v;
}

static double number(const JsonValue* obj, const char* key) { return member(obj, key)->number; }

// an array of numbers into a new float / int array
static float* floats_of(const JsonValue* a) {
    float* out = (float*)mallocCheck((size_t)(a->count > 0 ? a->count : 1) * sizeof(float));
    for (int i = 0; i < a->count; i++) { out[i] = (float)a->items[i].number; }
    return out;
}

static int* ints_of(const JsonValue* a) {
    int* out = (int*)mallocCheck((size_t)(a->count > 0 ? a->count : 1) * sizeof(int));
    for (int i = 0; i < a->count; i++) { out[i] = (int)a->items[i].number; }
    return out;
}

// ----------------------------------------------------------------------------
// the loss

// Central differences with the step actually taken in float ((x + h) - (x - h) as stored),
// so that only the truncation error h^2 f''' / 6 remains; the loss itself is double. The
// error is taken relative to max(1, |gradient|) (gradients reach ~1/tau = 20). Measured with
// h = 1e-3: 6e-6 at tau = 0.05, 5e-8 at tau = 1; the tolerance, 1e-4, leaves a margin for the
// third derivative (up to ~1/tau^3) and still fails a gradient that is wrong in one term.
static void test_finite_differences(void) {
    int G = 3, C = 5;
    int doc_start[4] = { 0, 2, 5, 9 };
    int n = 9, S = G + n;
    float emb[12 * 5], demb[12 * 5], ratings[9];
    ZeloRng rng;
    zelo_rng_seed(&rng, 7);
    for (int i = 0; i < S * C; i++) { emb[i] = (float)zelo_rng_normal(&rng); }
    for (int j = 0; j < n; j++) { ratings[j] = (float)zelo_rng_normal(&rng); }
    for (int in_batch = 0; in_batch <= 1; in_batch++) {
        for (int ti = 0; ti < 2; ti++) {
            BiencoderLoss cfg = { ti == 0 ? 0.05 : 1.0, 0.4155, in_batch };
            float an[12 * 5], scratch[12 * 5];
            biencoder_listwise_loss(an, emb, ratings, doc_start, G, C, &cfg);
            double worst = 0.0, h = 1e-3;
            for (int i = 0; i < S * C; i++) {
                memcpy(scratch, emb, sizeof(emb));
                float up = (float)(emb[i] + h), down = (float)(emb[i] - h);
                scratch[i] = up;
                double lp = biencoder_listwise_loss(demb, scratch, ratings, doc_start, G, C, &cfg);
                scratch[i] = down;
                double lm = biencoder_listwise_loss(demb, scratch, ratings, doc_start, G, C, &cfg);
                double fd = (lp - lm) / ((double)up - (double)down);
                double err = fabs(fd - an[i]) / fmax(1.0, fabs(an[i]));
                if (err > worst) { worst = err; }
            }
            printf("finite differences, tau %g, in-batch %d: worst error %.2e (tolerance 1e-4)\n", cfg.tau, in_batch, worst);
            CHECK(worst < 1e-4, "gradient off the finite differences by %.3g (tau %g, in-batch %d)", worst, cfg.tau, in_batch);
        }
    }
    // a shift of the ratings of one query changes nothing (softmax), a scale of an
    // embedding changes nothing (cosine): both are properties of the definition
    BiencoderLoss cfg = { 0.05, 0.4155, 1 };
    double l0 = biencoder_listwise_loss(demb, emb, ratings, doc_start, G, C, &cfg);
    float shifted[9], scaled[12 * 5];
    for (int j = 0; j < n; j++) { shifted[j] = ratings[j] + (j >= 2 && j < 5 ? 3.0f : 0.0f); }
    memcpy(scaled, emb, sizeof(emb));
    for (int c = 0; c < C; c++) { scaled[4 * C + c] *= 4.0f; }
    double l1 = biencoder_listwise_loss(demb, emb, shifted, doc_start, G, C, &cfg);
    double l2 = biencoder_listwise_loss(demb, scaled, ratings, doc_start, G, C, &cfg);
    CHECK(fabs(l1 - l0) < 1e-6 && fabs(l2 - l0) < 1e-6, "invariances: loss %.9f, ratings shifted %.9f, a row scaled %.9f", l0, l1, l2);
}

// PyTorch float64 on the same float32 inputs: the C loss is double too (tolerance 1e-10
// relative: summation order only); demb is rounded to float32 on return (tolerance 1e-6
// relative to the largest entry of the case: a few float ulps)
static void test_loss_fixture(void) {
    JsonValue v = read_json(FIXTURES "/loss.json");
    for (int k = 0; k < v.count; k++) {
        const JsonValue* cs = &v.items[k];
        int G = (int)number(cs, "G"), C = (int)number(cs, "C");
        int* doc_start = ints_of(member(cs, "doc_start"));
        float* ratings = floats_of(member(cs, "ratings"));
        float* emb = floats_of(member(cs, "emb"));
        const JsonValue* want = member(cs, "demb");
        BiencoderLoss cfg = { number(cs, "tau"), number(cs, "T"), (int)number(cs, "in_batch") };
        float* demb = (float*)mallocCheck((size_t)want->count * sizeof(float));
        double loss = biencoder_listwise_loss(demb, emb, ratings, doc_start, G, C, &cfg);
        double ref = number(cs, "loss"), scale = 0.0, worst = 0.0;
        for (int i = 0; i < want->count; i++) { scale = fmax(scale, fabs(want->items[i].number)); }
        for (int i = 0; i < want->count; i++) { worst = fmax(worst, fabs(demb[i] - want->items[i].number) / scale); }
        printf("PyTorch case %d (G %d, tau %g, T %g, in-batch %d): loss %.12f vs %.12f, demb worst %.2e\n", k, G, cfg.tau,
               cfg.T, cfg.in_batch, loss, ref, worst);
        CHECK(rel_err(loss, ref, 1e-12) < 1e-10, "case %d: loss %.15g, PyTorch %.15g", k, loss, ref);
        CHECK(worst < 1e-6, "case %d: demb off PyTorch's by %.3g relative", k, worst);
        free(doc_start); free(ratings); free(emb); free(demb);
    }
    json_free(&v);
}

// the ratings' temperature: sigmoid(x / T) against the Thurstone link ½(1 + erf(x)); the
// logistic approximation Phi(z) ≈ sigmoid(1.702 z) is off by at most 0.0095 (measured here:
// 0.00946), so 0.0096 holds it and a wrong T (a missing sqrt(2): 0.08 off) fails
static void test_rating_temperature(void) {
    double T = biencoder_rating_temperature(ZELO_LINK_THURSTONE), worst = 0.0;
    for (double x = -4.0; x <= 4.0; x += 1e-3) { worst = fmax(worst, fabs(1.0 / (1.0 + exp(-x / T)) - 0.5 * (1.0 + erf(x)))); }
    printf("rating temperature %.4f: softmax pairs off the Thurstone link by %.5f at worst (tolerance 0.0096)\n", T, worst);
    CHECK(worst < 0.0096, "T = %g: the pairwise odds are off the link by %.4f", T, worst);
    CHECK(biencoder_rating_temperature(ZELO_LINK_BT) == 1.0, "Bradley-Terry's temperature is 1");
}

static void bad_groups(const void* arg) {
    (void)arg;
    int doc_start[3] = { 0, 2, 2 };
    float emb[4 * 2] = { 1, 0, 0, 1, 1, 1, 0, 1 }, demb[8], ratings[2] = { 0, 1 };
    BiencoderLoss cfg = { 0.05, 1.0, 0 };
    biencoder_listwise_loss(demb, emb, ratings, doc_start, 2, 2, &cfg);
}

static void test_refusals(void) {
    char err[512];
    int status = run_in_child(bad_groups, NULL, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "group 1 has no document") != NULL, "an empty group: status %d, '%s'", status, err);
}

// ----------------------------------------------------------------------------
// one step on the tiny BERT

static void load_tiny(BertModel* m) { bert_load_hf_encoder(m, FIXTURES "/tiny", 1); }

// fp32 forward and backward against float64: the gradients' normwise error per tensor,
// tolerance 1e-4 (test_model.c's fp32 backward sits near 1e-6 against float64; the cosines'
// 1/tau = 20 and the softmax's cancellations cost up to two orders more here)
static void test_step_fixture(void) {
    JsonValue v = read_json(FIXTURES "/step.json");
    BertModel m;
    load_tiny(&m);
    const JsonValue* seqs = member(&v, "seqs");
    int S = seqs->count, N = 0;
    for (int s = 0; s < S; s++) { N += seqs->items[s].count; }
    int* ids = (int*)mallocCheck((size_t)N * sizeof(int));
    int* starts = (int*)mallocCheck((size_t)(S + 1) * sizeof(int));
    starts[0] = 0;
    for (int s = 0; s < S; s++) {
        for (int t = 0; t < seqs->items[s].count; t++) { ids[starts[s] + t] = (int)seqs->items[s].items[t].number; }
        starts[s + 1] = starts[s] + seqs->items[s].count;
    }
    int G = (int)number(&v, "G");
    int* doc_start = ints_of(member(&v, "doc_start"));
    float* ratings = floats_of(member(&v, "ratings"));
    BiencoderLoss cfg = { number(&v, "tau"), number(&v, "T"), (int)number(&v, "in_batch") };
    int C = m.config.hidden_size;
    float* demb = (float*)mallocCheck((size_t)S * C * sizeof(float));
    bert_zero_grad(&m);
    bert_forward(&m, ids, NULL, starts, S);
    double loss = biencoder_listwise_loss(demb, m.embeddings, ratings, doc_start, G, C, &cfg);
    bert_backward(&m, NULL, demb);
    double ref = number(&v, "loss");
    printf("tiny BERT step: loss %.9f, PyTorch %.9f\n", loss, ref);
    CHECK(rel_err(loss, ref, 1e-3) < 1e-5, "loss %.9g, PyTorch %.9g (fp32 forward, tolerance 1e-5)", loss, ref);

    SafeTensors st;
    safetensors_open(&st, FIXTURES "/step_grads.safetensors");
    int count = hf_tensor_count(&m.config), compared = 0;
    HfTensor* list = (HfTensor*)mallocCheck((size_t)count * sizeof(HfTensor));
    hf_tensor_list(list, &m);
    double* diff = (double*)callocCheck((size_t)count, sizeof(double));  // |got - want| per tensor
    double* norm = (double*)callocCheck((size_t)count, sizeof(double));  // |want|
    double largest = 0.0;
    for (int i = 0; i < count; i++) {
        const SafeTensorInfo* t = safetensors_find(&st, list[i].name);
        if (t == NULL) { norm[i] = -1.0; continue; }  // the classifier: a BertModel has none
        size_t n = safetensors_numel(t);
        float* want = (float*)mallocCheck(n * sizeof(float));
        safetensors_read_f32(want, &st, t);
        const float* got = m.grads_memory + (list[i].data - m.params_memory);
        for (size_t k = 0; k < n; k++) { diff[i] += ((double)got[k] - want[k]) * ((double)got[k] - want[k]); norm[i] += (double)want[k] * want[k]; }
        diff[i] = sqrt(diff[i]);
        norm[i] = sqrt(norm[i]);
        largest = fmax(largest, norm[i]);
        compared++;
        free(want);
    }
    // Some gradients are 0 in exact arithmetic: the key biases (softmax ignores a shift that is
    // the same for every key) and the pooler (outside the loss). fp32 leaves rounding there, so
    // each tensor's error is taken relative to its norm, but at least 1e-3 of the largest's
    // (the key biases' rounding is 2e-8 of it).
    double worst = 0.0;
    const char* worst_name = "";
    for (int i = 0; i < count; i++) {
        if (norm[i] < 0.0) { continue; }
        double err = diff[i] / fmax(norm[i], 1e-3 * largest);
        if (err > worst) { worst = err; worst_name = list[i].name; }
    }
    free(diff); free(norm);
    printf("tiny BERT step: %d gradient tensors, worst normwise error %.2e (%s; tolerance 1e-4)\n", compared, worst, worst_name);
    CHECK(compared == count - 2, "%d of %d tensors found in the fixture", compared, count - 2);
    CHECK(worst < 1e-4, "gradient of %s off PyTorch's by %.3g", worst_name, worst);
    safetensors_close(&st);
    free(list); free(ids); free(starts); free(doc_start); free(ratings); free(demb);
    bert_free(&m);
    json_free(&v);
}

// ----------------------------------------------------------------------------
// exact search

static const double* sort_scores;
static int by_score(const void* a, const void* b) {
    int i = *(const int*)a, j = *(const int*)b;
    if (sort_scores[i] != sort_scores[j]) { return sort_scores[i] > sort_scores[j] ? -1 : 1; }
    return i - j;
}

// the heap's top k against a full sort of the same float scores; scores repeat (rows that
// are copies), so that the tie rule is exercised
static void test_search(void) {
    int nq = 4, nd = 37, C = 3;
    float q[4 * 3], d[37 * 3];
    ZeloRng rng;
    zelo_rng_seed(&rng, 3);
    for (int i = 0; i < nq * C; i++) { q[i] = (float)zelo_rng_normal(&rng); }
    for (int j = 0; j < nd; j++) {
        for (int c = 0; c < C; c++) { d[j * C + c] = j % 5 == 4 ? d[(j - 1) * C + c] : (float)zelo_rng_normal(&rng); }
    }
    int ks[3] = { 1, 10, 50 };
    for (int t = 0; t < 3; t++) {
        int k = ks[t], bad = 0;
        int* docs = (int*)mallocCheck((size_t)nq * k * sizeof(int));
        float* scores = (float*)mallocCheck((size_t)nq * k * sizeof(float));
        biencoder_search(docs, scores, q, nq, d, nd, C, k);
        for (int i = 0; i < nq; i++) {
            double all[37];
            int order[37];
            for (int j = 0; j < nd; j++) { all[j] = (float)dense_dot(q + i * C, d + j * C, C); order[j] = j; }
            sort_scores = all;
            qsort(order, nd, sizeof(int), by_score);
            for (int r = 0; r < k; r++) {
                int want = r < nd ? order[r] : -1;
                bad += docs[i * k + r] != want;
            }
        }
        CHECK(bad == 0, "top %d: %d places differ from the full sort", k, bad);
        free(docs); free(scores);
    }
}

// ----------------------------------------------------------------------------
// the export

static void export_tiny(const char* dir) {
    BertModel m;
    load_tiny(&m);
    bert_export_sentence_transformers(&m, dir, FIXTURES "/tiny/vocab.txt", 1, m.config.max_position);
    bert_free(&m);
}

static void test_export(void) {
    const char* dir = SCRATCH "/st";
    export_tiny(dir);
    const char* files[7] = { "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "config.json",
                             "tokenizer_config.json", "special_tokens_map.json", "1_Pooling/config.json" };
    for (int i = 0; i < 7; i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof(a), "%s/%s", dir, files[i]);
        snprintf(b, sizeof(b), FIXTURES "/st_export/%s", files[i]);
        size_t la, lb;
        char* ta = readFileCheck(a, &la);
        char* tb = readFileCheck(b, &lb);
        CHECK(la == lb && memcmp(ta, tb, la) == 0, "%s differs from the file sentence-transformers loaded (%s)", a, b);
        free(ta); free(tb);
    }
    struct stat sb;
    CHECK(stat(SCRATCH "/st/2_Normalize", &sb) == 0 && S_ISDIR(sb.st_mode), "the export has no 2_Normalize folder");

    // our embeddings of the exported folder, read back as a user's run would, against
    // sentence-transformers' float32 ones: normalised vectors, tolerance 1e-5 absolute (fp32 on
    // both sides, different summation orders: a few 1e-7; a wrong pooling or a missing
    // normalisation is off by far more)
    JsonValue v = read_json(FIXTURES "/st_export/st_embeddings.json");
    const JsonValue* texts = member(&v, "texts");
    const JsonValue* embs = member(&v, "embeddings");
    int max_len = (int)number(&v, "max_seq_length");
    BertModel m;
    bert_load_hf_encoder(&m, dir, 1);
    Tokenizer tok;
    tokenizer_load(&tok, dir);
    int n = texts->count, C = m.config.hidden_size;
    const char** t = (const char**)mallocCheck((size_t)n * sizeof(char*));
    for (int i = 0; i < n; i++) { t[i] = texts->items[i].str; }
    float* out = (float*)mallocCheck((size_t)n * C * sizeof(float));
    dense_embed(out, &m, &tok, t, n, max_len);
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < C; c++) { worst = fmax(worst, fabs(out[i * C + c] - embs->items[i].items[c].number)); }
    }
    printf("export: %d texts embedded by sentence-transformers from the export, ours off by %.2e at worst (tolerance 1e-5)\n",
           n, worst);
    CHECK(embs->count == n && worst < 1e-5, "our embeddings of the export differ from sentence-transformers' by %.3g", worst);
    free(t); free(out);
    tokenizer_free(&tok);
    bert_free(&m);
    json_free(&v);
}

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "export") == 0) {
        export_tiny(argv[2]);
        return 0;
    }
    if (argc != 1) { fprintf(stderr, "usage: test_biencoder [export DIR]\n"); return 2; }
    makeDirsCheck(SCRATCH);
    test_finite_differences();
    test_rating_temperature();
    test_refusals();
    test_search();
    test_loss_fixture();
    test_step_fixture();
    test_export();
    return test_summary("test_biencoder");
}
