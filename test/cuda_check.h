/*
 * test/cuda_check.h — what the CUDA tests of kernels/ share (test_cuda.cu, test_cuda_bf16.cu):
 * seeded random inputs, device copies (outputs poisoned with NaN before a kernel writes
 * them), the comparison of a result with its reference under the error measure and
 * tolerance that test_cuda.cu's top comment derives, and the packed batch of sequences the
 * layers run on (with its tokens grouped by word id for the embeddings' backward), and a
 * random model's flat parameter buffer. Include after model.h, test/test.h
 * and kernels/common.cuh; one translation unit each.
 */
#ifndef ZELO_TEST_CUDA_CHECK_H
#define ZELO_TEST_CUDA_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/embeddings.cuh"

#define UNIT_ROUNDOFF 5.9604644775390625e-8  // 2^-24
#define TOL_FACTOR 64.0

static inline double tolerance(double K) { return TOL_FACTOR * UNIT_ROUNDOFF * sqrt(K); }

// ---- random inputs ----

static uint64_t rng_state;
static inline uint32_t rng_u32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static inline float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)(rng_u32() >> 8) * (1.0f / 16777216.0f);
}

// the seed from the command line, or the clock's; printed so that a failing run can be repeated
static inline void seed_from_args(const char* test, int argc, char** argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed;
    printf("%s: seed %llu (rerun with: %s %llu)\n", test, (unsigned long long)seed, test, (unsigned long long)seed);
}

// (zeroed first: gcc 12 cannot tell that the loop writes every entry, and warns that a caller
// may pass uninitialised values on)
static inline float* host_random(size_t n, float lo, float hi) {
    float* x = (float*)callocCheck(n, sizeof(float));
    for (size_t i = 0; i < n; i++) { x[i] = rng_uniform(lo, hi); }
    return x;
}

// ---- device buffers ----

static inline float* device_from(const float* x, size_t n) {
    float* d;
    cudaCheck(cudaMalloc((void**)&d, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d, x, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}
static inline int* device_from_ints(const int* x, size_t n) {
    int* d;
    cudaCheck(cudaMalloc((void**)&d, n * sizeof(int)));
    cudaCheck(cudaMemcpy(d, x, n * sizeof(int), cudaMemcpyHostToDevice));
    return d;
}
// an output the kernel must write in full: every byte 0xFF, a NaN in every float
static inline float* device_poisoned(size_t n) {
    float* d;
    cudaCheck(cudaMalloc((void**)&d, n * sizeof(float)));
    cudaCheck(cudaMemset(d, 0xFF, n * sizeof(float)));
    return d;
}
static inline void poison(float* d, size_t n) { cudaCheck(cudaMemset(d, 0xFF, n * sizeof(float))); }

static cudaStream_t stream;

// copies n floats back (after the stream's work) into a new host buffer
static inline float* host_from(const float* d, size_t n) {
    cudaCheck(cudaStreamSynchronize(stream));
    float* x = (float*)mallocCheck(n * sizeof(float));
    cudaCheck(cudaMemcpy(x, d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return x;
}

// ---- comparison ----

static double worst_error_seen = 0.0;

// checks got (host, n) against the reference want; K is the longest chain of sums behind an
// entry (see test_cuda.cu's top comment); prints the worst error either way. The scale
// rms(want) is taken over the whole tensor, or, when rows is not NULL, over each of its
// num_rows rows, rows[r] to rows[r + 1] (attention probabilities: a row of a length-7
// sequence holds values ~70 times those of a length-512 one). rounding: 0 for an output
// computed and stored in float; for one rounded to a narrower type as it is stored, the bound
// of that rounding relative to the value (2^-8 for bf16), which the check allows on top: an
// entry's error is what exceeds rounding |want|, over (1 + rounding) times its scale, held to
// the float tolerance (test_cuda_bf16.cu derives it)
static inline void expect_close_host(const char* what, int C, const float* got, const float* want, size_t n,
                                     double K, const size_t* rows, size_t num_rows, double rounding) {
    double worst = 0.0, worst_plain = 0.0;  // the latter: |got - want| / (|want| + rms), to print
    size_t worst_at = 0;
    int bad = 0;  // NaN (an unwritten entry) or infinite
    int zero_scale = 0;  // a reference of zeros only: the check would measure nothing
    for (size_t r = 0; r < (rows ? num_rows : 1); r++) {
        size_t begin = rows ? rows[r] : 0, end = rows ? rows[r + 1] : n;
        double sq = 0.0;
        for (size_t i = begin; i < end; i++) { sq += (double)want[i] * want[i]; }
        double rms = sqrt(sq / (double)(end - begin));
        if (!(rms > 0.0) && !rows) { zero_scale = 1; }
        for (size_t i = begin; i < end; i++) {
            // an exact match is no error even where the scale is zero (the rows of a length-1
            // sequence's dS are exactly 0 on both sides)
            double diff = fabs((double)got[i] - want[i]);
            double excess = fmax(diff - rounding * fabs(want[i]), 0.0);
            double err = diff == 0.0 ? 0.0 : excess / ((1.0 + rounding) * (fabs(want[i]) + rms));
            worst_plain = fmax(worst_plain, diff / (fabs(want[i]) + rms));
            if (!isfinite(got[i]) || !(err == err)) {
                if (!bad) { worst_at = i; }
                bad = 1;
            } else if (err > worst && !bad) {
                worst = err;
                worst_at = i;
            }
        }
    }
    double tol = tolerance(K);
    printf("  C=%-4d %-28s worst error %.2e (tolerance %.1e)%s", C, what, worst, tol, bad ? "  NON-FINITE" : "");
    if (rounding > 0.0) { printf(" beyond the rounding (%.2e with it)", worst_plain); }
    printf("\n");
    CHECK(!bad && !zero_scale && worst <= tol, "C=%d %s: %s at %zu: got %g, want %g (error %.3g, tolerance %.3g)",
          C, what, bad ? "non-finite" : (zero_scale ? "all-zero reference" : "too far"), worst_at, got[worst_at],
          want[worst_at], worst, tol);
    if (!bad && worst > worst_error_seen) { worst_error_seen = worst; }
}

// the same for a float tensor on the device, computed in float (no rounding allowed)
static inline void expect_close_rows(const char* what, int C, const float* got_device, const float* want, size_t n,
                                     double K, const size_t* rows, size_t num_rows) {
    float* got = host_from(got_device, n);
    expect_close_host(what, C, got, want, n, K, rows, num_rows, 0.0);
    free(got);
}

static inline void expect_close(const char* what, int C, const float* got_device, const float* want, size_t n,
                                double K) {
    expect_close_rows(what, C, got_device, want, n, K, NULL, 0);
}

// whether two device tensors of n T's hold the same bytes: two runs of a kernel, or a fused
// kernel's output and its unfused pair's
template <typename T>
static inline void expect_same_bytes(const char* what, int C, const T* a_device, const T* b_device, size_t n) {
    cudaCheck(cudaStreamSynchronize(stream));
    T* a = (T*)mallocCheck(n * sizeof(T));
    T* b = (T*)mallocCheck(n * sizeof(T));
    cudaCheck(cudaMemcpy(a, a_device, n * sizeof(T), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(b, b_device, n * sizeof(T), cudaMemcpyDeviceToHost));
    CHECK(memcmp(a, b, n * sizeof(T)) == 0, "C=%d %s: the bytes differ", C, what);
    free(a);
    free(b);
}

// ---- the batch ----

// the layers' shapes: hidden sizes and their heads (head size 64, BERT's intermediate size 4C)
#define NUM_SHAPES 3
static const int HIDDEN_SIZES[NUM_SHAPES] = {128, 384, 768}, NUM_HEADS[NUM_SHAPES] = {2, 6, 12};

#define NUM_SEQS 5
static const int SEQ_LENGTHS[NUM_SEQS] = {33, 1, 512, 7, 130};
// where each sequence's document starts under the split packing (model.h, Packing), relative
// to the sequence: inside it, or T for the sequences of 1 and 7 tokens, which have none
static const int SPLIT_POINTS[NUM_SEQS] = {12, 1, 300, 7, 64};
#define VOCAB 50       // few ids: many tokens share a row of wte, as in real text
#define TYPES 2
#define MAX_POSITION 512

typedef struct {
    int S, N, max_T;
    int seq_starts[NUM_SEQS + 1];
    int* ids;          // (N)
    int* types;        // (N)
    int att_offsets[NUM_SEQS + 1];  // for NH heads, as model.c
    int A;
    // on the device
    int *d_seq_starts, *d_ids, *d_types, *d_att_offsets;
    // the tokens grouped by word id (embedding_buckets), for the embeddings' backward: U
    // buckets, on the device
    int U;
    int *d_bucket_tokens, *d_bucket_starts, *d_bucket_ids;
} Batch;

static inline Batch make_batch(int NH) {
    Batch b;
    b.S = NUM_SEQS;
    b.seq_starts[0] = 0;
    b.max_T = 0;
    b.A = 0;
    for (int s = 0; s < NUM_SEQS; s++) {
        int T = SEQ_LENGTHS[s];
        b.seq_starts[s + 1] = b.seq_starts[s] + T;
        b.att_offsets[s] = b.A;
        b.A += NH * T * T;
        if (T > b.max_T) { b.max_T = T; }
    }
    b.att_offsets[NUM_SEQS] = b.A;
    b.N = b.seq_starts[NUM_SEQS];
    b.ids = (int*)mallocCheck((size_t)b.N * sizeof(int));
    b.types = (int*)mallocCheck((size_t)b.N * sizeof(int));
    for (int t = 0; t < b.N; t++) {
        b.ids[t] = (int)(rng_u32() % VOCAB);
        b.types[t] = (int)(rng_u32() % TYPES);
    }
    b.d_seq_starts = device_from_ints(b.seq_starts, NUM_SEQS + 1);
    b.d_ids = device_from_ints(b.ids, b.N);
    b.d_types = device_from_ints(b.types, b.N);
    b.d_att_offsets = device_from_ints(b.att_offsets, NUM_SEQS + 1);
    int* tokens = (int*)mallocCheck((size_t)b.N * sizeof(int));
    int* starts = (int*)mallocCheck((size_t)(b.N + 1) * sizeof(int));
    int* bucket_ids = (int*)mallocCheck((size_t)b.N * sizeof(int));
    int* counts = (int*)mallocCheck(VOCAB * sizeof(int));
    b.U = embedding_buckets(tokens, starts, bucket_ids, counts, b.ids, b.N, VOCAB);
    b.d_bucket_tokens = device_from_ints(tokens, b.N);
    b.d_bucket_starts = device_from_ints(starts, b.U + 1);
    b.d_bucket_ids = device_from_ints(bucket_ids, b.U);
    free(tokens); free(starts); free(bucket_ids); free(counts);
    return b;
}

static inline void free_batch(Batch* b) {
    free(b->ids);
    free(b->types);
    cudaCheck(cudaFree(b->d_seq_starts));
    cudaCheck(cudaFree(b->d_ids));
    cudaCheck(cudaFree(b->d_types));
    cudaCheck(cudaFree(b->d_att_offsets));
    cudaCheck(cudaFree(b->d_bucket_tokens));
    cudaCheck(cudaFree(b->d_bucket_starts));
    cudaCheck(cudaFree(b->d_bucket_ids));
}

// ---- a whole parameter buffer, for the optimizer's kernels ----

// model: 2 layers at hidden size C with NH heads over the batch's vocabulary, its parameters and
// their gradients uniform in [-1, 1)
static inline void random_model(BertModel* model, int C, int NH) {
    BertConfig cfg = {VOCAB, C, 2, NH, 4 * C, MAX_POSITION, TYPES, 1, 1e-12f};
    bert_build(model, &cfg);
    size_t n = model->num_parameters;
    for (size_t i = 0; i < n; i++) { model->params_memory[i] = rng_uniform(-1.0f, 1.0f); }
    model->grads_memory = malloc_and_point_parameters(&model->grads, model->param_sizes);
    for (size_t i = 0; i < n; i++) { model->grads_memory[i] = rng_uniform(-1.0f, 1.0f); }
}

// ---- the maxsim head's inputs ----

// the token types of the batch's sequences as (query, document) pairs, type 1 from split[s]
// (relative to sequence s) on: split at T, no document
static inline int* pair_types_split_at(const Batch* b, const int* split) {
    int* types = (int*)mallocCheck((size_t)b->N * sizeof(int));
    for (int s = 0; s < b->S; s++) {
        for (int t = b->seq_starts[s]; t < b->seq_starts[s + 1]; t++) { types[t] = t - b->seq_starts[s] >= split[s]; }
    }
    return types;
}

// the maxsim head's edge cases planted in hidden states (N, C) of the batch, in sequence 0 (its
// tokens 0-32; the query's content tokens 1-10 and the document's 12-31 when its document starts
// at token 12): token 20 a copy of token 15 and token 3 close to them, a tie for token 3's best
// match that the first (15) must win; tokens 5 and 25 the zero vector (cosine 0, no gradient)
static inline void plant_maxsim_cases(float* hidden, int C) {
    for (int c = 0; c < C; c++) {
        hidden[(size_t)20 * C + c] = hidden[(size_t)15 * C + c];
        hidden[(size_t)3 * C + c] = hidden[(size_t)15 * C + c] + rng_uniform(-0.1f, 0.1f);
        hidden[(size_t)5 * C + c] = 0.0f;
        hidden[(size_t)25 * C + c] = 0.0f;
    }
}

// ---- the attention probabilities' rows ----

// the rows of the (NH, T, T) attention blocks of L layers, for expect_close_rows: each row its
// own scale; returns the (num_rows + 1) boundaries
static inline size_t* attention_rows(const Batch* b, int NH, int L, size_t* num_rows) {
    *num_rows = (size_t)L * NH * b->N;
    size_t* rows = (size_t*)mallocCheck((*num_rows + 1) * sizeof(size_t));
    rows[0] = 0;
    size_t r = 0;
    for (int l = 0; l < L; l++) {
        for (int s = 0; s < b->S; s++) {
            int T = b->seq_starts[s + 1] - b->seq_starts[s];
            for (int i = 0; i < NH * T; i++, r++) { rows[r + 1] = rows[r] + (size_t)T; }
        }
    }
    return rows;
}

// ---- all-MiniLM-L6-v2 as a training-step fixture (for a test that includes model_fixture.h and
// io/weights.h, and links them) ----
#ifdef ZELO_MODEL_FIXTURE_H
// all-MiniLM-L6-v2 (the README's starting point), loaded from dir into *minilm with a seeded
// classifier head, as a Fixture: a packed batch of query-document pairs of random word ids,
// [CLS] (type 0) ... [SEP] (type 1) ... [SEP], lengths 33, 1, 130, 7 and 64 (seq_starts in
// starts (6)), random targets y and embedding weights R, and train_zelo's defaults with --init
// (lr 1e-4, clip 1.0, weight decay 0.01). The Fixture's params are minilm's; free the rest with
// minilm_fixture_free
static inline Fixture minilm_fixture(BertModel* minilm, int* starts, const char* dir) {
    static const int lengths[5] = {33, 1, 130, 7, 64};
    bert_load_hf(minilm, dir, 42);
    Fixture fx;
    memset(&fx, 0, sizeof(fx));
    fx.config = minilm->config;
    fx.num_parameters = minilm->num_parameters;
    fx.params = minilm->params_memory;
    fx.S = 5;
    starts[0] = 0;
    for (int s = 0; s < fx.S; s++) { starts[s + 1] = starts[s] + lengths[s]; }
    fx.N = starts[fx.S];
    fx.seq_starts = starts;
    fx.ids = (int*)mallocCheck((size_t)fx.N * sizeof(int));
    fx.types = (int*)mallocCheck((size_t)fx.N * sizeof(int));
    for (int s = 0; s < fx.S; s++) {
        int T = lengths[s], split = T / 3;
        for (int t = 0; t < T; t++) {
            int i = starts[s] + t;
            fx.ids[i] = t == 0 ? 101 : (t == T - 1 && T > 1) ? 102 : 1000 + (int)(rng_u32() % (uint32_t)(fx.config.vocab_size - 1000));
            fx.types[i] = t > split;
        }
    }
    fx.y = host_random((size_t)fx.S, -1.0f, 1.0f);
    fx.R = host_random((size_t)fx.S * fx.config.hidden_size, -1.0f, 1.0f);
    fx.lr = 1e-4f;
    fx.beta1 = 0.9f;
    fx.beta2 = 0.999f;
    fx.eps = 1e-8f;
    fx.weight_decay = 0.01f;
    fx.max_norm = 1.0f;
    return fx;
}

static inline void minilm_fixture_free(Fixture* fx, BertModel* minilm) {
    free(fx->ids);
    free(fx->types);
    free(fx->y);
    free(fx->R);
    bert_free(minilm);
}
#endif

#endif // ZELO_TEST_CUDA_CHECK_H
