/*
 * dev/bench_model.c — speed of model.c on the all-MiniLM-L6-v2 shape (L=6, C=384, NH=12,
 * I=1536, V=30522) with random weights: forward+backward training steps on a batch of 16
 * sequences of 256 tokens (tokens/s), and forward-only scoring of 100 documents of 256
 * tokens with bert_infer, in batches of 20 (docs/s). Each figure is the best step or
 * batch of the run (see below). dev/bench_model.sh runs it beside
 * dev/bench_model.py, which does the same work in PyTorch.
 *
 *   build/bench_model [train_steps [kernels|openblas|loops]]
 *
 * train_steps: default 3, after one warm-up step; the second argument picks the path of
 * the matrix products (model.h, matmul_path): cpu/gemm.c's kernels by default.
 */
#include <stdint.h>
#include <time.h>
#include "model.h"
#include "common/utils.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// a packed batch of B cross-encoder inputs of T tokens: [CLS]-like id, then random ids,
// token type 0 for the first quarter (the query) and 1 after (the document)
static void make_batch(int* ids, int* types, int* seq_starts, int B, int T, int V, uint64_t* state) {
    for (int b = 0; b <= B; b++) { seq_starts[b] = b * T; }
    for (int i = 0; i < B * T; i++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        int t = i % T;
        ids[i] = t == 0 ? 101 : (int)((*state >> 33) % (uint64_t)V);
        types[i] = t < T / 4 ? 0 : 1;
    }
}

int main(int argc, char** argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 3;
    const char* path = argc > 2 ? argv[2] : "kernels";
    if (steps < 1) { die("usage: %s [train_steps >= 1 [kernels|openblas|loops]]", argv[0]); }
    const char* err = matmul_select(path);
    if (err != NULL) { die("matrix products '%s': %s", path, err); }
    BertConfig cfg = {.vocab_size = 30522, .hidden_size = 384, .num_layers = 6, .num_heads = 12,
                      .intermediate_size = 1536, .max_position = 512, .type_vocab_size = 2,
                      .num_labels = 1, .layer_norm_eps = 1e-12f};
    const int B = 16, T = 256, DOCS = 100, SCORE_BATCH = 20;
    BertModel model;
    bert_build(&model, &cfg);
    bert_init_random(&model, 1337);
    uint64_t state = 42;
    int* ids = (int*)mallocCheck((size_t)DOCS * T * sizeof(int));
    int* types = (int*)mallocCheck((size_t)DOCS * T * sizeof(int));
    int* seq_starts = (int*)mallocCheck((size_t)(DOCS + 1) * sizeof(int));
    float* dlogits = (float*)mallocCheck(B * sizeof(float));
    float* dembeddings = (float*)mallocCheck((size_t)B * cfg.hidden_size * sizeof(float));
    for (int i = 0; i < B; i++) { dlogits[i] = 1.0f / B; }
    for (int i = 0; i < B * cfg.hidden_size; i++) { dembeddings[i] = 1e-3f; }
    printf("matrix products: %s\n", matmul_path_name(matmul_path));

    make_batch(ids, types, seq_starts, B, T, cfg.vocab_size, &state);
    // each figure is the best step (batch) of the run: on a machine shared with other work
    // the fastest one is the least disturbed; dev/bench_model.py measures the same way
    double train_s = 1e30;
    for (int step = 0; step <= steps; step++) {
        double t0 = now_seconds();
        bert_zero_grad(&model);
        bert_forward(&model, ids, types, seq_starts, B);
        bert_backward(&model, dlogits, dembeddings);
        double dt = now_seconds() - t0;
        if (step > 0 && dt < train_s) { train_s = dt; } // step 0 warms up (allocations, caches)
    }
    printf("C train: best step %.3f s for %d x %d tokens, %.1f tokens/s\n", train_s, B, T, B * T / train_s);

    make_batch(ids, types, seq_starts, DOCS, T, cfg.vocab_size, &state);
    bert_infer(&model, ids, types, seq_starts, SCORE_BATCH); // warm-up
    double batch_s = 1e30, checksum = 0.0;
    for (int d = 0; d < DOCS; d += SCORE_BATCH) {
        // the offsets of this slice, relative to its first token
        int starts[SCORE_BATCH + 1];
        for (int b = 0; b <= SCORE_BATCH; b++) { starts[b] = seq_starts[d + b] - seq_starts[d]; }
        double t0 = now_seconds();
        bert_infer(&model, ids + seq_starts[d], types + seq_starts[d], starts, SCORE_BATCH);
        double dt = now_seconds() - t0;
        if (dt < batch_s) { batch_s = dt; }
        for (int b = 0; b < SCORE_BATCH; b++) { checksum += model.logits[b]; }
    }
    double docs_per_s = SCORE_BATCH / batch_s;
    printf("C score: best batch %.3f s for %d documents of %d tokens, %.2f docs/s (%d documents, checksum %.4f)\n",
           batch_s, SCORE_BATCH, T, docs_per_s, DOCS, checksum);
    printf("RESULT c_train_tokens_per_s %.1f\nRESULT c_score_docs_per_s %.3f\n", B * T / train_s, docs_per_s);
    free(ids); free(types); free(seq_starts); free(dlogits); free(dembeddings);
    bert_free(&model);
    return 0;
}
