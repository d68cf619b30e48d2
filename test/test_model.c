/*
 * test/test_model.c — model.c against Hugging Face transformers (float64) on a tiny random
 * BERT cross-encoder and a packed batch of 5 sequences (lengths 7, 23, 64, 1, 40; fixtures
 * from dev/gen_model_fixture.py): forward outputs, the loss, every parameter gradient,
 * three AdamW steps with gradient clipping; then central finite differences of the
 * backward pass, BLAS against the plain loops, a batch of several copies of the fixture
 * batch (work split into row blocks) against the batch, bert_infer against bert_forward, checkpoint
 * round trips, and the refusal (in a child process) of corrupt files and bad batches.
 *
 * Errors are measured per tensor, normwise: max|got - want| / max|want|. fp32 against a
 * float64 reference has relative rounding errors that grow from 6e-8 (one rounding) with
 * sum lengths (<= 135 tokens, <= 128 features) and depth; what this test measures is
 * around 1e-6 (printed below). The tolerances (stated at each check) sit one to two orders
 * of magnitude above that and far below what any real bug gives (a wrong index, a missing
 * term or a wrong transpose moves a tensor by 1e-2 to O(1) of its scale).
 */
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "model.h"
#include "common/utils.h"
#include "test/test.h"
#include "test/model_fixture.h"

// compares every parameter tensor, printing each one's error; returns the worst
static double compare_parameter_tensors(const char* what, const float* got, const float* want,
                                        const size_t* sizes, double tol) {
    double worst = 0.0;
    size_t off = 0;
    printf("%s (normwise error per tensor, tolerance %.0e):\n", what, tol);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        double err = normwise_error(got + off, want + off, sizes[i]);
        printf("  %-9s %8zu values  err %.2e\n", PARAMETER_TENSOR_NAMES[i], sizes[i], err);
        CHECK(err <= tol, "%s: tensor %s error %.3e > %.0e", what, PARAMETER_TENSOR_NAMES[i], err, tol);
        if (!(err <= worst)) { worst = err; }
        off += sizes[i];
    }
    return worst;
}

// forward + backward of the fixture's batch; grads of m end up those of the test loss
static double forward_backward(BertModel* m, const Fixture* fx) {
    float* dlogits = (float*)mallocCheck((size_t)fx->S * sizeof(float));
    float* dembeddings = (float*)mallocCheck((size_t)fx->S * fx->config.hidden_size * sizeof(float));
    bert_forward(m, fx->ids, fx->types, fx->seq_starts, fx->S);
    double loss = fixture_loss(m, fx, dlogits, dembeddings);
    bert_zero_grad(m);
    bert_backward(m, dlogits, dembeddings);
    free(dlogits);
    free(dembeddings);
    return loss;
}

static double loss_at_fixture_batch(BertModel* m, const Fixture* fx) {
    bert_forward(m, fx->ids, fx->types, fx->seq_starts, fx->S);
    return fixture_loss(m, fx, NULL, NULL);
}

// m (the fixture's model with the cosine head) turned into the split packing with the gates
// of dev/gen_split_packing_fixture.py
static void split_fixture_model(BertModel* m, const Fixture* fx) {
    m->score_head = SCORE_HEAD_COSINE;
    bert_split_segments(m, 0.0f);
    memcpy(m->params.xgate, fx->split_gates, m->param_sizes[XGATE_TENSOR] * sizeof(float));
}

static void test_against_transformers(const Fixture* fx) {
    BertModel m = fixture_model(fx);
    int S = fx->S, C = fx->config.hidden_size;
    double loss = forward_backward(&m, fx);
    // forward: ~1e-6 measured; 2e-5 allows the growth of rounding with depth, see the top
    double e_logits = normwise_error(m.logits, fx->logits, S);
    double e_emb = normwise_error(m.embeddings, fx->embeddings, (size_t)S * C);
    double e_loss = fabs(loss - fx->loss) / fabs(fx->loss);
    printf("forward vs transformers float64: logits %.2e, embeddings %.2e, loss %.2e (tolerance 2e-5)\n",
           e_logits, e_emb, e_loss);
    CHECK(e_logits <= 2e-5, "logits error %.3e", e_logits);
    CHECK(e_emb <= 2e-5, "embeddings error %.3e", e_emb);
    CHECK(e_loss <= 2e-5, "loss error %.3e", e_loss);
    // gradients run through twice the depth of the forward (and the fp32 loss derivatives);
    // measured ~1e-6 to 1e-5: 1e-4
    compare_parameter_tensors("gradients vs transformers float64", m.grads_memory, fx->grads, m.param_sizes, 1e-4);

    // training: the same steps as torch.optim.AdamW + clip_grad_norm_ in float64; compared
    // on what is smooth in the weights (see dev/gen_model_fixture.py: Adam amplifies fp32
    // noise on gradients that are exactly zero, like the key biases', so weights are
    // compared by the AdamW-alone test instead)
    for (int step = 1; step <= fx->steps; step++) {
        if (step > 1) { forward_backward(&m, fx); }
        float norm = bert_clip_grad_norm(&m, fx->max_norm);
        // the norm sums 139521 squares of gradients that are ~4e-7 off: 1e-5
        double e = fabs(norm - fx->norms[step - 1]) / fx->norms[step - 1];
        printf("training step %d: gradient norm %.6f (reference %.6f, error %.2e, tolerance 1e-5)%s\n", step, norm,
               fx->norms[step - 1], e, norm > fx->max_norm ? ", clipped" : "");
        CHECK(e <= 1e-5, "step %d gradient norm error %.3e", step, e);
        bert_adamw_update(&m, fx->lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, step);
    }
    double loss_after = loss_at_fixture_batch(&m, fx);
    // the loss moved from 13.85 to -72.3, by ~lr per weight and step: the few weights that
    // Adam moves differently do so because their gradient is ~0, so the loss hardly feels
    // them; rounding of the loss itself is ~1e-6 relative: 1e-4
    double e_after = fabs(loss_after - fx->loss_after) / fabs(fx->loss_after);
    printf("loss after %d training steps %.6f (reference %.6f, error %.2e, tolerance 1e-4)\n", fx->steps,
           loss_after, fx->loss_after, e_after);
    CHECK(e_after <= 1e-4, "loss after training steps: error %.3e", e_after);
    bert_free(&m);
}

// AdamW alone: both sides get the same fp32 gradients (scaled per step), so only fp32
// arithmetic separates them, dominated by storing the weights in fp32 after each step:
// up to 2^-24 |w| per step, i.e. for LayerNorm weights (~1) 3 * 6e-8 = 1.8e-7 absolute,
// 6e-5 of the largest change (~3 lr = 3e-3) of such a tensor (measured: 4.7e-5; 1.5e-5 for
// the matrices, whose weights are smaller). Tolerance 1e-4 of the largest change. A wrong
// decay mask moves a tensor by lr * weight_decay * |w| * 3 ~ 1e-4 absolute (3e-2 of the
// change), a wrong bias correction or a missed clip by far more.
static void test_adamw_alone(const Fixture* fx) {
    BertModel m = fixture_model(fx);
    forward_backward(&m, fx); // allocates the gradients
    size_t P = m.num_parameters;
    for (int step = 1; step <= fx->steps; step++) {
        float scale = fx->grad_scales[step - 1];
        for (size_t i = 0; i < P; i++) { m.grads_memory[i] = scale * fx->grads[i]; }
        float norm = bert_clip_grad_norm(&m, fx->max_norm);
        int clipped = norm > fx->max_norm;
        // clipping multiplies every gradient by max_norm / (norm + 1e-6), as PyTorch does
        double coef = clipped ? fx->max_norm / ((double)norm + 1e-6) : 1.0;
        double worst = 0.0;
        for (size_t i = 0; i < P; i++) {
            double want = (double)(scale * fx->grads[i]) * coef;
            double e = fabs(m.grads_memory[i] - want);
            if (e > worst) { worst = e; }
        }
        double rel = worst / (fabs(scale) * fx->max_norm);
        printf("AdamW alone step %d: gradient scale %+.2f, norm %.3f%s, clipped gradients off by %.2e (tolerance 1e-6)\n",
               step, scale, norm, clipped ? " (clipped)" : " (not clipped)", rel);
        // fp32 rounding of one product: 1e-6 relative to the gradient scale
        CHECK(rel <= 1e-6, "clipping at step %d is off by %.3e", step, rel);
        bert_adamw_update(&m, fx->lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, step);
    }
    float* delta = (float*)mallocCheck(P * sizeof(float));
    for (size_t i = 0; i < P; i++) { delta[i] = m.params_memory[i] - fx->params[i]; }
    compare_parameter_tensors("AdamW alone, weight change over the steps vs torch float64", delta, fx->delta,
                              m.param_sizes, 1e-4);
    free(delta);
    bert_free(&m);
}

// the cheap deterministic generator the test uses to pick coordinates and directions
static uint64_t test_rng_state = 42;
static uint32_t test_rng(void) {
    test_rng_state = test_rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(test_rng_state >> 33);
}

// Central differences (L(w + h) - L(w - h)) / 2h of the fp32 forward, with the loss summed
// in double. The fp32 forward rounds the loss (~14) at ~1e-6 relative, so the difference
// quotient carries an absolute noise of ~1e-5 / h; h = 1e-2 (weights are ~0.1 to 1, and the
// network is smooth) keeps both that noise (~1e-3) and the h^2 truncation small. Each
// tensor is checked on its largest-gradient coordinate and on a random +-1 direction over
// a sample of 16 coordinates (whose directional derivative is large against the noise).
static void test_finite_differences(const Fixture* fx, ScoreHead head) {
    BertModel m = fixture_model(fx);
    m.score_head = head;
    printf("finite differences, %s head:\n", score_head_name(head));
    forward_backward(&m, fx);
    float* grads = (float*)mallocCheck(m.num_parameters * sizeof(float));
    memcpy(grads, m.grads_memory, m.num_parameters * sizeof(float));
    const float h = 1e-2f;
    size_t off = 0;
    double worst = 0.0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        size_t n = m.param_sizes[i];
        if (n == 0) { continue; }  // xgate of a joint model
        float* w = m.params_memory + off;
        const float* g = grads + off;
        // the coordinate of largest |gradient|, then 16 random coordinates with random signs
        size_t best = 0;
        for (size_t j = 0; j < n; j++) { if (fabsf(g[j]) > fabsf(g[best])) { best = j; } }
        size_t coords[17];
        float signs[17];
        int k = 0;
        coords[k] = best; signs[k] = 1.0f; k++;
        int sample = n < 16 ? (int)n : 16;
        for (int r = 0; r < sample; r++) {
            coords[k] = test_rng() % n;
            int dup = 0;
            for (int q = 1; q < k; q++) { dup |= coords[q] == coords[k]; }
            if (dup) { continue; }
            signs[k] = (test_rng() & 1) ? 1.0f : -1.0f;
            k++;
        }
        double err_max = 0.0;
        for (int mode = 0; mode < 2; mode++) {
            // mode 0: the largest coordinate alone; mode 1: the random direction
            int first = mode == 0 ? 0 : 1, last = mode == 0 ? 1 : k;
            if (first >= last) { continue; }
            // the fp32 steps w+ - w- are not exactly 2h, so the analytic side uses them
            float saved[17];
            double analytic = 0.0;
            for (int q = first; q < last; q++) {
                saved[q] = w[coords[q]];
                float plus = saved[q] + signs[q] * h, minus = saved[q] - signs[q] * h;
                analytic += (double)g[coords[q]] * ((double)plus - minus) / (2.0 * h);
            }
            for (int q = first; q < last; q++) { w[coords[q]] = saved[q] + signs[q] * h; }
            double lp = loss_at_fixture_batch(&m, fx);
            for (int q = first; q < last; q++) { w[coords[q]] = saved[q] - signs[q] * h; }
            double lm = loss_at_fixture_batch(&m, fx);
            for (int q = first; q < last; q++) { w[coords[q]] = saved[q]; }
            double numeric = (lp - lm) / (2.0 * h);
            double err = fabs(numeric - analytic) / (fabs(analytic) + 1e-2);
            if (err > err_max) { err_max = err; }
        }
        printf("  %-9s finite differences: worst error %.2e\n", PARAMETER_TENSOR_NAMES[i], err_max);
        // relative error with an absolute floor of 1e-2 on the derivative (the noise of the
        // quotient above is ~1e-3); measured worst ~4e-4 (noise and h^2 truncation):
        // tolerance 5e-3, while a wrong gradient term is off by O(1)
        CHECK(err_max <= 5e-3, "finite differences disagree on tensor %s: %.3e", PARAMETER_TENSOR_NAMES[i], err_max);
        if (err_max > worst) { worst = err_max; }
        off += n;
    }
    printf("finite differences: worst %.2e over all tensors (tolerance 5e-3)\n", worst);
    free(grads);
    bert_free(&m);
}

// cpu/gemm.c's kernels and OpenBLAS compute the same products as the plain loops in other
// orders: fp32 rounding of sums of <= 135 terms, measured ~1e-7 to 1e-6: 1e-5
static void compare_path_against_loops(const Fixture* fx, MatmulPath path) {
    int S = fx->S, C = fx->config.hidden_size;
    BertModel a = fixture_model(fx), b = fixture_model(fx);
    matmul_path = path;
    forward_backward(&a, fx);
    matmul_path = MATMUL_LOOPS;
    forward_backward(&b, fx);
    matmul_path = MATMUL_KERNELS;
    const char* name = matmul_path_name(path);
    double e_logits = normwise_error(b.logits, a.logits, S);
    double e_emb = normwise_error(b.embeddings, a.embeddings, (size_t)S * C);
    printf("plain loops vs %s: logits %.2e, embeddings %.2e (tolerance 1e-5)\n", name, e_logits, e_emb);
    CHECK(e_logits <= 1e-5, "loops vs %s logits %.3e", name, e_logits);
    CHECK(e_emb <= 1e-5, "loops vs %s embeddings %.3e", name, e_emb);
    char label[96];
    snprintf(label, sizeof(label), "gradients, plain loops vs %s", name);
    compare_parameter_tensors(label, b.grads_memory, a.grads_memory, a.param_sizes, 1e-5);
    bert_free(&a);
    bert_free(&b);
}

static void test_paths_against_loops(const Fixture* fx) {
    compare_path_against_loops(fx, MATMUL_KERNELS);
#ifdef USE_BLAS
    compare_path_against_loops(fx, MATMUL_OPENBLAS);
#else
    printf("plain loops vs OpenBLAS: not compiled with USE_BLAS\n");
#endif
}

// model.c hands threads blocks of 256 tokens (and (sequence, head) pairs); the fixture batch
// (135 tokens) fits in one block. Here it is packed COPIES times (675 tokens, block edges
// inside sequences) with the test loss on every copy: every copy must give the fixture
// batch's outputs, and the gradients must be COPIES times the fixture batch's. The products
// run over other row counts and longer sums than on the fixture batch, so the results agree
// to fp32 rounding of sums of <= 675 terms: outputs within 1e-6 as for a sequence alone
// (below; measured ~3e-7), gradients within 1e-5 as for the plain loops vs BLAS (measured
// ~2e-7 to 1e-6, worst 4.3e-6 on ln2b, a sum over 675 tokens whose terms largely cancel).
#define COPIES 5
static void test_row_blocks(const Fixture* fx) {
    int S = fx->S, N = fx->N, C = fx->config.hidden_size;
    BertModel one = fixture_model(fx), many = fixture_model(fx);
    forward_backward(&one, fx);
    int* ids = (int*)mallocCheck((size_t)COPIES * N * sizeof(int));
    int* types = (int*)mallocCheck((size_t)COPIES * N * sizeof(int));
    int* starts = (int*)mallocCheck((size_t)(COPIES * S + 1) * sizeof(int));
    float* dlogits = (float*)mallocCheck((size_t)COPIES * S * sizeof(float));
    float* dembeddings = (float*)mallocCheck((size_t)COPIES * S * C * sizeof(float));
    for (int c = 0; c < COPIES; c++) {
        memcpy(ids + (size_t)c * N, fx->ids, (size_t)N * sizeof(int));
        memcpy(types + (size_t)c * N, fx->types, (size_t)N * sizeof(int));
        for (int s = 0; s < S; s++) { starts[c * S + s] = c * N + fx->seq_starts[s]; }
    }
    starts[COPIES * S] = COPIES * N;
    bert_forward(&many, ids, types, starts, COPIES * S);
    double e_logits = 0.0, e_emb = 0.0;
    for (int c = 0; c < COPIES; c++) {
        double el = normwise_error(many.logits + (size_t)c * S, one.logits, S);
        double ee = normwise_error(many.embeddings + (size_t)c * S * C, one.embeddings, (size_t)S * C);
        if (!(el <= e_logits)) { e_logits = el; }
        if (!(ee <= e_emb)) { e_emb = ee; }
    }
    printf("%d copies of the batch (%d tokens): outputs differ by %.2e (logits), %.2e (embeddings) (tolerance 1e-6)\n",
           COPIES, COPIES * N, e_logits, e_emb);
    CHECK(e_logits <= 1e-6, "batch copies: logits differ by %.3e", e_logits);
    CHECK(e_emb <= 1e-6, "batch copies: embeddings differ by %.3e", e_emb);
    fixture_loss(&one, fx, dlogits, dembeddings);
    for (int c = 1; c < COPIES; c++) {
        memcpy(dlogits + (size_t)c * S, dlogits, (size_t)S * sizeof(float));
        memcpy(dembeddings + (size_t)c * S * C, dembeddings, (size_t)S * C * sizeof(float));
    }
    bert_zero_grad(&many);
    bert_backward(&many, dlogits, dembeddings);
    float* want = (float*)mallocCheck(one.num_parameters * sizeof(float));
    for (size_t i = 0; i < one.num_parameters; i++) { want[i] = COPIES * one.grads_memory[i]; }
    compare_parameter_tensors("gradients, batch copies vs the batch times copies", many.grads_memory, want,
                              one.param_sizes, 1e-5);
    free(want);
    free(ids); free(types); free(starts); free(dlogits); free(dembeddings);
    bert_free(&one);
    bert_free(&many);
}

// bert_infer shares one layer slot across layers but runs the same arithmetic: bit-identical
static void test_infer_matches_forward(const Fixture* fx) {
    int S = fx->S, C = fx->config.hidden_size;
    BertModel m = fixture_model(fx);
    bert_forward(&m, fx->ids, fx->types, fx->seq_starts, S);
    float* logits = (float*)mallocCheck((size_t)S * sizeof(float));
    float* emb = (float*)mallocCheck((size_t)S * C * sizeof(float));
    memcpy(logits, m.logits, (size_t)S * sizeof(float));
    memcpy(emb, m.embeddings, (size_t)S * C * sizeof(float));
    size_t capacity_forward = m.acts_capacity;
    BertModel lean = fixture_model(fx);
    bert_infer(&lean, fx->ids, fx->types, fx->seq_starts, S);
    CHECK(memcmp(logits, lean.logits, (size_t)S * sizeof(float)) == 0, "bert_infer logits differ from bert_forward");
    CHECK(memcmp(emb, lean.embeddings, (size_t)S * C * sizeof(float)) == 0, "bert_infer embeddings differ from bert_forward");
    CHECK(lean.acts_capacity < capacity_forward, "bert_infer should need less memory (%zu vs %zu floats)",
          lean.acts_capacity, capacity_forward);
    // a single sequence alone gives its result within the batch (no leak across sequences)
    int one[2] = {0, fx->seq_starts[3] - fx->seq_starts[2]};
    bert_forward(&lean, fx->ids + fx->seq_starts[2], fx->types + fx->seq_starts[2], one, 1);
    double e = normwise_error(lean.embeddings, emb + (size_t)2 * C, C);
    printf("sequence 2 alone vs in the batch: embeddings differ by %.2e (tolerance 1e-6)\n", e);
    CHECK(e <= 1e-6, "sequence 2 alone differs from its packed result by %.3e", e);
    free(logits);
    free(emb);
    bert_free(&m);
    bert_free(&lean);
}

// BERT's initialisation: weight matrices N(0, 0.02^2), LayerNorm weights 1, biases 0, and
// the same seed gives the same weights
static void test_init_random(const Fixture* fx) {
    BertModel a, b;
    bert_build(&a, &fx->config);
    bert_build(&b, &fx->config);
    bert_init_random(&a, 7);
    bert_init_random(&b, 7);
    CHECK(memcmp(a.params_memory, b.params_memory, a.num_parameters * sizeof(float)) == 0,
          "bert_init_random is not a function of its seed");
    size_t off = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        const char* name = PARAMETER_TENSOR_NAMES[i];
        const float* w = a.params_memory + off;
        size_t n = a.param_sizes[i];
        if (parameter_tensor_decays(i)) {
            double sum = 0.0, sum2 = 0.0;
            for (size_t j = 0; j < n; j++) { sum += w[j]; sum2 += (double)w[j] * w[j]; }
            double mean = sum / n, std = sqrt(sum2 / n - mean * mean);
            // a sample of n normals: the mean is off by ~0.02/sqrt(n), the std by
            // ~0.02/sqrt(2n); five of those standard errors (n >= 64 here)
            double tol_mean = 5 * 0.02 / sqrt((double)n), tol_std = 5 * 0.02 / sqrt(2.0 * n);
            CHECK(fabs(mean) <= tol_mean && fabs(std - 0.02) <= tol_std,
                  "init of %s: mean %.5f std %.5f, expected 0 and 0.02", name, mean, std);
        } else {
            int ln_weight = !strcmp(name, "emb_lnw") || !strcmp(name, "ln1w") || !strcmp(name, "ln2w");
            float want = ln_weight ? 1.0f : 0.0f;
            size_t bad = 0;
            for (size_t j = 0; j < n; j++) { bad += w[j] != want; }
            CHECK(bad == 0, "init of %s: %zu values differ from %g", name, bad, want);
        }
        off += n;
    }
    bert_free(&a);
    bert_free(&b);
}

// ---- refusals, run in a child process (the test binary re-executed in a child mode) ----

static const char* self_path;

// runs this binary with args in a child; returns its exit status (-1 if killed) and its
// stderr + stdout in out
static int run_child(const char* const* args, char* out, size_t outlen) {
    int fds[2];
    if (pipe(fds) != 0) { die("pipe failed"); }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { die("fork failed"); }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        const char* argv[8] = {self_path};
        for (int i = 0; args[i] != NULL && i < 6; i++) { argv[i + 1] = args[i]; }
        execv("/proc/self/exe", (char* const*)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < outlen && (r = read(fds[0], out + got, outlen - 1 - got)) > 0) { got += (size_t)r; }
    out[got] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// the child must exit with status 1 (die) and say `must_say`
static void expect_refusal(const char* what, const char* const* args, const char* must_say) {
    char out[4096];
    int status = run_child(args, out, sizeof(out));
    int ok = status == 1 && strstr(out, must_say) != NULL;
    CHECK(ok, "%s: expected exit 1 with a message containing '%s', got exit %d and: %s", what, must_say, status, out);
    if (ok) { printf("  refused %-34s %s", what, strstr(out, "error at") ? strstr(out, "error at") : out); }
}

static int child_main(int argc, char** argv) {
    BertModel m;
    if (strcmp(argv[1], "--load") == 0 && argc == 3) {
        bert_load(&m, argv[2]);
        return 0;
    }
    if (strcmp(argv[1], "--load-optimizer") == 0 && argc == 4) {
        bert_load(&m, argv[2]);
        bert_load_optimizer(&m, argv[3]);
        return 0;
    }
    if (strcmp(argv[1], "--split-cls") == 0 && argc == 2) {  // the split packing under the cls head
        BertConfig c = {.vocab_size = 10, .hidden_size = 8, .num_layers = 1, .num_heads = 2, .intermediate_size = 8,
                        .max_position = 8, .type_vocab_size = 2, .num_labels = 1, .layer_norm_eps = 1e-12f};
        bert_build(&m, &c);
        bert_split_segments(&m, -6.0f);
        return 0;
    }
    if (strcmp(argv[1], "--bad-batch") == 0 && argc == 3) {
        // a 2-layer config like the fixture's, and a batch broken as argv[2] says
        BertConfig c = {.vocab_size = 1000, .hidden_size = 64, .num_layers = 2, .num_heads = 4,
                        .intermediate_size = 128, .max_position = 64, .type_vocab_size = 2,
                        .num_labels = 1, .layer_norm_eps = 1e-12f};
        bert_build(&m, &c);
        int ids[70] = {0}, types[70] = {0};
        int starts[3] = {0, 5, 10};
        if (strcmp(argv[2], "id") == 0) { ids[7] = 1000; }
        if (strcmp(argv[2], "negative-id") == 0) { ids[7] = -1; }
        if (strcmp(argv[2], "type") == 0) { types[3] = 2; }
        if (strcmp(argv[2], "long") == 0) { starts[2] = 70; }
        if (strcmp(argv[2], "empty") == 0) { starts[1] = 0; }
        if (strcmp(argv[2], "start") == 0) { starts[0] = 1; }
        if (strcmp(argv[2], "backward-after-infer") == 0) {
            bert_infer(&m, ids, types, starts, 2);
            float d[2] = {1, 1};
            bert_backward(&m, d, NULL);
            return 0;
        }
        bert_forward(&m, ids, types, starts, 2);
        return 0;
    }
    die("unknown child mode %s", argv[1]);
}

// writes a copy of src to dst, with n bytes at offset replaced (or the file cut at `cut`)
static void write_modified(const char* dst, const char* src, long offset, const void* bytes, size_t n, long cut) {
    size_t len;
    char* buf = readFileCheck(src, &len);
    if (bytes != NULL) { memcpy(buf + offset, bytes, n); }
    FILE* fp = fopenCheck(dst, "wb");
    fwriteCheck(buf, 1, cut >= 0 ? (size_t)cut : len, fp);
    fcloseCheck(fp);
    free(buf);
}

static void test_checkpoints(const Fixture* fx) {
    char dir[] = "/tmp/test_model_XXXXXX";
    if (mkdtemp(dir) == NULL) { die("mkdtemp failed"); }
    char path[128], opt_path[128], bad[128], tmp[140];
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    snprintf(opt_path, sizeof(opt_path), "%s/optimizer.bin", dir);
    snprintf(bad, sizeof(bad), "%s/bad.bin", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    // round trip: one AdamW step so that m and v are not trivial
    BertModel m = fixture_model(fx);
    forward_backward(&m, fx);
    bert_adamw_update(&m, fx->lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    bert_save(&m, path);
    bert_save_optimizer(&m, 1, opt_path);
    CHECK(access(tmp, F_OK) != 0, "the temporary file %s was left behind", tmp);
    BertModel r;
    bert_load(&r, path);
    CHECK(memcmp(&r.config, &m.config, sizeof(BertConfig)) == 0, "config changed by save/load");
    CHECK(r.num_parameters == m.num_parameters &&
          memcmp(r.params_memory, m.params_memory, m.num_parameters * sizeof(float)) == 0,
          "parameters changed by save/load");
    int step = bert_load_optimizer(&r, opt_path);
    CHECK(step == 1, "optimizer step %d after load, saved 1", step);
    CHECK(memcmp(r.m_memory, m.m_memory, m.num_parameters * sizeof(float)) == 0 &&
          memcmp(r.v_memory, m.v_memory, m.num_parameters * sizeof(float)) == 0,
          "optimizer state changed by save/load");
    size_t len;
    free(readFileCheck(path, &len));
    CHECK(len == 1024 + 4 * m.num_parameters, "checkpoint has %zu bytes, expected %zu", len, 1024 + 4 * m.num_parameters);
    bert_free(&r);

    printf("checkpoint refusals (each in a child process):\n");
    const char* load_bad[] = {"--load", bad, NULL};
    int v;
    write_modified(bad, path, 0, NULL, 0, (long)len - 4);
    expect_refusal("truncated checkpoint", load_bad, bad);
    write_modified(bad, path, 0, NULL, 0, 100);
    expect_refusal("checkpoint shorter than its header", load_bad, bad);
    v = 0x12345678;
    write_modified(bad, path, 0, &v, 4, -1);
    expect_refusal("bad magic", load_bad, "not a zelo.c model checkpoint");
    v = BERT_CHECKPOINT_VERSION + 1;
    write_modified(bad, path, 4, &v, 4, -1);
    expect_refusal("wrong version", load_bad, "version");
    v = 65;  // hidden size not a multiple of the heads
    write_modified(bad, path, 3 * 4, &v, 4, -1);
    expect_refusal("invalid config", load_bad, "multiple of num_heads");
    v = (int)m.num_parameters + 1;
    write_modified(bad, path, 11 * 4, &v, 4, -1);
    expect_refusal("float count mismatch", load_bad, "floats");
    v = 7;
    write_modified(bad, path, 200 * 4, &v, 4, -1);
    expect_refusal("non-zero reserved header word", load_bad, "header word 200");
    float nan = NAN;
    write_modified(bad, path, 1024 + 4 * (long)(m.param_sizes[0] + 5), &nan, 4, -1);
    expect_refusal("NaN weight", load_bad, "tensor wpe");
    write_modified(bad, path, 0, NULL, 0, -1);
    FILE* fp = fopenCheck(bad, "ab");
    fwriteCheck(&v, 4, 1, fp);
    fcloseCheck(fp);
    expect_refusal("trailing bytes", load_bad, "truncated or corrupt");
    // sizes near 2^31 whose parameter count wraps around 2^64 to 4: a header and 4 floats
    // that once passed every check, then were read as a 2^61-float vocabulary table
    int crafted[256] = {BERT_CHECKPOINT_MAGIC, BERT_CHECKPOINT_VERSION, 0x7fffffff, 1 << 30, 3, 1, 1, 1073741787, 1, 1};
    float eps = 1e-12f;
    memcpy(&crafted[10], &eps, sizeof(eps));
    crafted[11] = 4;
    float four[4] = {0};
    fp = fopenCheck(bad, "wb");
    fwriteCheck(crafted, sizeof(int), 256, fp);
    fwriteCheck(four, sizeof(float), 4, fp);
    fcloseCheck(fp);
    expect_refusal("sizes near 2^31 (count wraps to 4)", load_bad, "more than 2^40 parameters");

    const char* opt_bad[] = {"--load-optimizer", path, bad, NULL};
    free(readFileCheck(opt_path, &len));
    write_modified(bad, opt_path, 0, NULL, 0, (long)len - 4);
    expect_refusal("truncated optimizer state", opt_bad, bad);
    write_modified(bad, path, 0, NULL, 0, -1);
    expect_refusal("model file as optimizer state", opt_bad, "not a zelo.c optimizer state");
    v = (int)m.num_parameters - 1;
    write_modified(bad, opt_path, 3 * 4, &v, 4, -1);
    expect_refusal("optimizer state of another size", opt_bad, "parameters");

    printf("bad batches refused by bert_forward (each in a child process):\n");
    const char* cases[][2] = {
        {"id", "id 1000 outside [0, 1000)"}, {"negative-id", "id -1 outside"},
        {"type", "type 2 outside [0, 2)"}, {"long", "more than max_position 64"},
        {"empty", "sequence 0 is empty"}, {"start", "seq_starts[0] must be 0"},
        {"backward-after-infer", "bert_infer ran last"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char* args[] = {"--bad-batch", cases[i][0], NULL};
        expect_refusal(cases[i][0], args, cases[i][1]);
    }

    bert_free(&m);
    unlink(path);
    unlink(opt_path);
    unlink(bad);
    rmdir(dir);
}

// a forward and backward pass of the fixture's model under head against transformers' float64
// loss, scores and gradients; then bert_infer gives bert_forward's scores, returned (S)
static float* check_head_against_fixture(BertModel* m, const Fixture* fx, ScoreHead head, float want_loss,
                                         const float* want_logits, const float* want_grads) {
    const char* name = score_head_name(head);
    m->score_head = head;
    double loss = forward_backward(m, fx);
    double e_logits = normwise_error(m->logits, want_logits, fx->S);
    double e_loss = fabs(loss - want_loss) / fabs(want_loss);
    printf("%s head vs transformers float64: scores %.2e, loss %.2e (tolerance 2e-5)\n", name, e_logits, e_loss);
    CHECK(e_logits <= 2e-5, "%s head scores error %.3e", name, e_logits);
    CHECK(e_loss <= 2e-5, "%s head loss error %.3e", name, e_loss);
    char what[96];
    snprintf(what, sizeof(what), "%s head gradients vs transformers float64", name);
    compare_parameter_tensors(what, m->grads_memory, want_grads, m->param_sizes, 1e-4);
    float* forward_logits = (float*)mallocCheck((size_t)fx->S * sizeof(float));
    memcpy(forward_logits, m->logits, (size_t)fx->S * sizeof(float));
    bert_infer(m, fx->ids, fx->types, fx->seq_starts, fx->S);
    CHECK(memcmp(forward_logits, m->logits, (size_t)fx->S * sizeof(float)) == 0, "%s head: bert_infer's scores differ", name);
    return forward_logits;
}

// a fresh directory dir ("/tmp/test_model_XXXXXX", replaced) and the paths model.bin and bad.bin in it
static void temp_checkpoint_paths(char* dir, char path[128], char bad[128]) {
    if (mkdtemp(dir) == NULL) { die("mkdtemp failed"); }
    snprintf(path, 128, "%s/model.bin", dir);
    snprintf(bad, 128, "%s/bad.bin", dir);
}

// removes what temp_checkpoint_paths made
static void remove_checkpoint_paths(const char* dir, const char* path, const char* bad) {
    unlink(path);
    unlink(bad);
    rmdir(dir);
}

// m saved to path and loaded back: the checkpoint keeps m's score head and its scale
static void check_head_checkpoint(const BertModel* m, const char* path) {
    const char* name = score_head_name(m->score_head);
    bert_save(m, path);
    BertModel r;
    bert_load(&r, path);
    CHECK(r.score_head == m->score_head, "the checkpoint lost the %s head (loaded %s)", name, score_head_name(r.score_head));
    CHECK(r.cosine_scale == m->cosine_scale, "the checkpoint lost the %s scale (loaded %g, saved %g)", name,
          (double)r.cosine_scale, (double)m->cosine_scale);
    bert_free(&r);
}

// The cosine score head against transformers' float64 (dev/gen_cosine_head_fixture.py), the
// same loss and tolerances as test_against_transformers: the head adds two means and a cosine
// in double on top of the last hidden states, no deeper chain of fp32 roundings. The fixture's
// sequence of one token has neither a query nor a document: its score is 0 on both sides.
// Then bert_infer agrees with bert_forward, and a checkpoint keeps the head.
static void test_cosine_head(const Fixture* fx) {
    BertModel m = fixture_model(fx);
    float* forward_logits = check_head_against_fixture(&m, fx, SCORE_HEAD_COSINE, fx->cosine_loss, fx->cosine_logits,
                                                       fx->cosine_grads);
    // the scale multiplies the cosine: one more float rounding, a relative 1e-6 at most
    bert_set_cosine_scale(&m, 3.5f);
    bert_infer(&m, fx->ids, fx->types, fx->seq_starts, fx->S);
    double worst = 0.0;
    for (int i = 0; i < fx->S; i++) {
        double want = (double)forward_logits[i] * 3.5 / SCORE_HEAD_COSINE_SCALE;
        worst = fmax(worst, fabs(m.logits[i] - want) / fmax(fabs(want), 1e-6));
    }
    CHECK(worst < 1e-6, "cosine head at scale 3.5: the scores are not 3.5 / %g of those at %g (worst relative %.2e)",
          SCORE_HEAD_COSINE_SCALE, SCORE_HEAD_COSINE_SCALE, worst);
    free(forward_logits);

    char dir[] = "/tmp/test_model_XXXXXX", path[128], bad[128];
    temp_checkpoint_paths(dir, path, bad);
    check_head_checkpoint(&m, path);
    BertModel r;
    // a cosine checkpoint from before word 14 held the scale was trained at the fixed 20
    int v = 0;
    write_modified(bad, path, 14 * 4, &v, 4, -1);
    bert_load(&r, bad);
    CHECK(r.cosine_scale == SCORE_HEAD_COSINE_SCALE, "a cosine checkpoint without a scale loaded scale %g, want %g",
          (double)r.cosine_scale, SCORE_HEAD_COSINE_SCALE);
    bert_free(&r);
    v = 4;
    write_modified(bad, path, 13 * 4, &v, 4, -1);
    const char* load_bad[] = {"--load", bad, NULL};
    expect_refusal("unknown score head", load_bad, "header word 13 (the score head) is 4");
    float f = -1.0f;
    write_modified(bad, path, 14 * 4, &f, 4, -1);
    expect_refusal("negative cosine scale", load_bad, "header word 14 (the score head's scale) reads -1");
    v = SCORE_HEAD_CLS;
    write_modified(bad, path, 13 * 4, &v, 4, -1);  // word 14 still holds 3.5
    expect_refusal("a scale under the cls head", load_bad, "reads 3.5 under the cls head");
    remove_checkpoint_paths(dir, path, bad);
    bert_free(&m);
}

// The split packing (model.h, Packing) against dev/gen_split_packing_fixture.py (float64, open
// gates of both signs): scores, loss and every gradient, the gates' included, at the cosine
// head's tolerances, under the cosine head and the cosine+maxsim head. Then what it is for: with the gates shut (-30: a key across weighs
// exp(-30) = 1e-13 of one inside, below fp32's resolution) every sequence scores as the
// bi-encoder, 20 x the cosine of the mean embeddings of its query and its document each
// encoded alone as a sequence of type 0 (bert_forward's mean-pooled embeddings); the sums
// differ only in order, so 1e-5. A checkpoint keeps the packing and the gates (and the
// cosine+maxsim head, whose checkpoint must hold its scale), and a corrupt word 15 or a split
// cls model is refused.
static void test_split_packing(const Fixture* fx) {
    BertModel m = fixture_model(fx);
    split_fixture_model(&m, fx);
    CHECK(m.num_parameters == fx->num_parameters + m.param_sizes[XGATE_TENSOR] && m.param_sizes[XGATE_TENSOR] == 8,
          "the split model has %zu parameters, want %zu + 8 gates", m.num_parameters, fx->num_parameters);
    free(check_head_against_fixture(&m, fx, SCORE_HEAD_COSINE, fx->split_loss, fx->split_logits, fx->split_grads));
    // the cosine+maxsim head adds the maxsim term (its query's and document's spans under the
    // split packing, model.h) to the same graph: again sums in double on the last hidden states
    free(check_head_against_fixture(&m, fx, SCORE_HEAD_COSINE_MAXSIM, fx->split_cosmax_loss, fx->split_cosmax_logits,
                                    fx->split_cosmax_grads));
    m.score_head = SCORE_HEAD_COSINE;

    int S = fx->S, C = fx->config.hidden_size;
    for (size_t i = 0; i < m.param_sizes[XGATE_TENSOR]; i++) { m.params.xgate[i] = -30.0f; }
    bert_infer(&m, fx->ids, fx->types, fx->seq_starts, S);
    float* split_logits = (float*)mallocCheck((size_t)S * sizeof(float));
    memcpy(split_logits, m.logits, (size_t)S * sizeof(float));
    // each segment as a sequence of its own, all type 0 (an empty document: no sequence)
    int* starts = (int*)mallocCheck((size_t)(2 * S + 1) * sizeof(int));
    int* doc_seq = (int*)mallocCheck((size_t)S * sizeof(int));
    int* zeros = (int*)callocCheck((size_t)fx->N, sizeof(int));
    int n = 0;
    for (int s = 0; s < S; s++) {
        int b = fx->seq_starts[s];
        while (b < fx->seq_starts[s + 1] && fx->types[b] == 0) { b++; }
        starts[n++] = fx->seq_starts[s];
        doc_seq[s] = b < fx->seq_starts[s + 1] ? n : -1;
        if (doc_seq[s] >= 0) { starts[n++] = b; }
    }
    starts[n] = fx->N;
    BertModel bi = fixture_model(fx);
    bert_infer(&bi, fx->ids, zeros, starts, n);
    double worst = 0.0;
    for (int s = 0; s < S; s++) {
        double want = 0.0;
        if (doc_seq[s] >= 0) {
            const float* u = bi.embeddings + (size_t)(doc_seq[s] - 1) * C;
            const float* v = bi.embeddings + (size_t)doc_seq[s] * C;
            double uv = 0.0, uu = 0.0, vv = 0.0;
            for (int c = 0; c < C; c++) { uv += (double)u[c] * v[c]; uu += (double)u[c] * u[c]; vv += (double)v[c] * v[c]; }
            want = SCORE_HEAD_COSINE_SCALE * uv / sqrt(uu * vv);
        }
        worst = fmax(worst, fabs(split_logits[s] - want) / fmax(fabs(want), 1.0));
    }
    printf("split packing, gates shut: scores vs the bi-encoder's (each text alone), worst relative %.2e (tolerance 1e-5)\n", worst);
    CHECK(worst <= 1e-5, "split packing with shut gates: scores differ from the bi-encoder's by %.3e", worst);
    free(split_logits); free(starts); free(doc_seq); free(zeros);
    bert_free(&bi);

    char dir[] = "/tmp/test_model_XXXXXX", path[128], bad[128];
    temp_checkpoint_paths(dir, path, bad);
    memcpy(m.params.xgate, fx->split_gates, m.param_sizes[XGATE_TENSOR] * sizeof(float));
    bert_save(&m, path);
    BertModel r;
    bert_load(&r, path);
    CHECK(r.packing == PACKING_SPLIT && r.num_parameters == m.num_parameters &&
          memcmp(r.params_memory, m.params_memory, m.num_parameters * sizeof(float)) == 0,
          "the split checkpoint did not load back as saved (packing %s, %zu parameters)", packing_name(r.packing),
          r.num_parameters);
    bert_free(&r);
    const char* load_bad[] = {"--load", bad, NULL};
    m.score_head = SCORE_HEAD_COSINE_MAXSIM;
    check_head_checkpoint(&m, path);
    int v = 0;
    write_modified(bad, path, 14 * 4, &v, 4, -1);
    expect_refusal("a cosine+maxsim checkpoint without its scale", load_bad, "(the cosine+maxsim head's scale) is 0");
    m.score_head = SCORE_HEAD_COSINE;
    bert_save(&m, path);
    v = 2;
    write_modified(bad, path, 15 * 4, &v, 4, -1);
    expect_refusal("unknown packing", load_bad, "header word 15 (the packing) is 2");
    v = PACKING_JOINT;  // the gates are then 8 floats too many
    write_modified(bad, path, 15 * 4, &v, 4, -1);
    expect_refusal("a split file read as joint", load_bad, "its config (joint packing) needs");
    v = 0;
    write_modified(bad, path, 14 * 4, &v, 4, -1);  // no scale,
    int cls = SCORE_HEAD_CLS;
    write_modified(bad, bad, 13 * 4, &cls, 4, -1);  // and the cls head, still split
    v = PACKING_SPLIT;
    write_modified(bad, bad, 15 * 4, &v, 4, -1);
    expect_refusal("split under the cls head", load_bad, "the split packing (header word 15) with the cls head");
    const char* split_cls[] = {"--split-cls", NULL};
    expect_refusal("bert_split_segments under the cls head", split_cls, "not read by the cls score head");
    remove_checkpoint_paths(dir, path, bad);
    bert_free(&m);
}

// The maxsim score head against transformers' float64 (dev/gen_maxsim_head_fixture.py): the
// same loss and tolerances as the cosine head's, for the same reason (the head's cosines and
// their mean are summed in double on top of the last hidden states); the fixture's maxima lead
// their runners-up by more than 1e-3, so fp32 finds the same best tokens. Then bert_infer
// agrees with bert_forward, and a checkpoint keeps the head and its scale, which a maxsim
// checkpoint must hold.
static void test_maxsim_head(const Fixture* fx) {
    BertModel m = fixture_model(fx);
    free(check_head_against_fixture(&m, fx, SCORE_HEAD_MAXSIM, fx->maxsim_loss, fx->maxsim_logits, fx->maxsim_grads));

    char dir[] = "/tmp/test_model_XXXXXX", path[128], bad[128];
    temp_checkpoint_paths(dir, path, bad);
    bert_set_cosine_scale(&m, 2.5f);
    check_head_checkpoint(&m, path);
    int v = 0;
    write_modified(bad, path, 14 * 4, &v, 4, -1);
    const char* load_bad[] = {"--load", bad, NULL};
    expect_refusal("a maxsim checkpoint without its scale", load_bad, "header word 14 (the maxsim head's scale) is 0");
    remove_checkpoint_paths(dir, path, bad);
    bert_free(&m);
}

// head_lr_scale: from the same weights and gradients, one AdamW step with the head's rate
// scaled by 3 moves every encoder weight exactly as with 1 (the same float arithmetic) and
// every head weight by 3 times as much. Each move is a difference of two floats of size <= ~1,
// rounded once each (about 6e-8 apiece), so 3 x one move and the other agree within 1e-6.
static void test_head_lr_scale(const Fixture* fx) {
    BertModel a = fixture_model(fx), b = fixture_model(fx);
    CHECK(a.head_lr_scale == 1.0f, "bert_build's head_lr_scale is %g, want 1", a.head_lr_scale);
    forward_backward(&a, fx);
    forward_backward(&b, fx);
    float* before = (float*)mallocCheck(a.num_parameters * sizeof(float));
    memcpy(before, a.params_memory, a.num_parameters * sizeof(float));
    b.head_lr_scale = 3.0f;
    bert_adamw_update(&a, 1e-2f, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    bert_adamw_update(&b, 1e-2f, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    size_t head = 0;
    for (int i = 0; i < HEAD_FIRST_TENSOR; i++) { head += a.param_sizes[i]; }
    CHECK(memcmp(a.params_memory, b.params_memory, head * sizeof(float)) == 0, "head_lr_scale moved the encoder's weights");
    double worst = 0.0, largest = 0.0;
    for (size_t j = head; j < a.num_parameters; j++) {
        double da = (double)before[j] - a.params_memory[j], db = (double)before[j] - b.params_memory[j];
        worst = fmax(worst, fabs(db - 3.0 * da));
        largest = fmax(largest, fabs(db));
    }
    CHECK(worst <= 1e-6 && largest > 1e-3, "head moves at 3x: worst |move(3) - 3 move(1)| %.2e, largest move %.2e", worst, largest);
    printf("head_lr_scale 3: encoder unchanged, head moves 3x within %.1e (largest move %.1e)\n", worst, largest);
    free(before);
    bert_free(&a);
    bert_free(&b);
}

int main(int argc, char** argv) {
    self_path = argv[0];
    if (argc > 1) { return child_main(argc, argv); }
    Fixture fx;
    fixture_read(&fx);
    test_against_transformers(&fx);
    test_adamw_alone(&fx);
    test_paths_against_loops(&fx);
    test_row_blocks(&fx);
    test_infer_matches_forward(&fx);
    test_finite_differences(&fx, SCORE_HEAD_CLS);
    test_cosine_head(&fx);
    test_finite_differences(&fx, SCORE_HEAD_COSINE);
    // the split packing has no finite differences here: a step of 1e-2 in the type embedding's
    // row 0, which every token reads under it, leaves a truncation error of 4.7e-3 against the
    // 5e-3 that holds the joint models; transformers' float64 autograd checks its gradients,
    // the gates' included
    test_split_packing(&fx);
    // no finite differences under maxsim: a step of 1e-2 moves some query token's best match
    // to another document token, where the max has no derivative (measured 6.6e-3 against the
    // 5e-3 that holds the smooth heads); transformers' autograd checks its gradients above
    test_maxsim_head(&fx);
    test_init_random(&fx);
    test_checkpoints(&fx);
    test_head_lr_scale(&fx);
    fixture_free(&fx);
    return test_summary("test_model");
}
