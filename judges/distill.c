/*
 * judges/distill.c — pairwise distillation: a student cross-encoder learns the teacher's
 * P(a beats b) from [CLS] q [SEP] a [SEP] b [SEP]. The contract is in judges/distill.h.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "judges/distill.h"
#include "common/utils.h"
#include "zelo_loss.h"

void distill_default_config(DistillConfig* cfg) {
    memset(cfg, 0, sizeof(*cfg));
    // one pass: every training battle seen once in each order. The teacher's answers are
    // soft labels (no noise to memorise away), so more passes mostly fit the training
    // battles; the held-out agreement tells whether a caller should ask for more.
    cfg->steps = 0;
    // 16 battles in both orders, the batch train_zelo's pointwise training uses (32)
    cfg->batch_size = 32;
    cfg->max_len = 0;
    // the usual fine-tuning settings of a pretrained BERT (as train_zelo's): the student
    // normally starts from a pretrained encoder, which a larger rate would wash out
    cfg->lr = 5e-5f;
    cfg->warmup_frac = 0.1f;
    cfg->weight_decay = 0.01f;
    cfg->grad_clip = 1.0f;
    cfg->seed = 42;
    // 10% is enough battles to measure agreement to about ±1% for a few thousand battles,
    // and costs the training little
    cfg->holdout_frac = 0.1;
}

// ----------------------------------------------------------------------------
// the hold-out split

static uint64_t fnv1a64(const char* s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) { h = (h ^ (uint8_t)*s) * 1099511628211ull; }
    return h;
}

// splitmix64's finaliser: every input bit reaches every output bit
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27; x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int distill_battle_is_holdout(const Corpus* corpus, const Queries* queries, const Battle* battle,
                              uint64_t seed, double holdout_frac) {
    // ids, not indices: the split stays the same when the files are reordered or grow
    uint64_t h = mix64(seed ^ 0xD1B54A32D192ED03ull);
    h = mix64(h ^ fnv1a64(beir_id(queries, battle->query_a)));
    uint64_t da = fnv1a64(beir_id(corpus, battle->doc_a)), db = fnv1a64(beir_id(corpus, battle->doc_b));
    h = mix64(h ^ (da < db ? da : db));
    h = mix64(h ^ (da < db ? db : da));
    double u = (double)(h >> 11) * 0x1.0p-53;  // [0, 1)
    return u < holdout_frac;
}

// ----------------------------------------------------------------------------
// input checks: a bad battle found now, named, rather than a crash or a silent miss later

static void check_config(const DistillConfig* cfg, const BertModel* student, const Tokenizer* tok, int max_len) {
    if (cfg->steps < 0) { die("distill: steps %d < 0", cfg->steps); }
    if (cfg->batch_size < 2 || cfg->batch_size % 2 != 0) {
        die("distill: batch_size %d must be even and >= 2 (each battle comes in both orders)", cfg->batch_size);
    }
    if (!(cfg->lr > 0.0f) || !isfinite(cfg->lr)) { die("distill: learning rate %g must be positive", cfg->lr); }
    if (!(cfg->warmup_frac >= 0.0f && cfg->warmup_frac <= 1.0f)) { die("distill: warmup_frac %g outside [0, 1]", cfg->warmup_frac); }
    if (!(cfg->weight_decay >= 0.0f) || !isfinite(cfg->weight_decay)) { die("distill: weight_decay %g < 0", cfg->weight_decay); }
    if (!(cfg->grad_clip >= 0.0f) || !isfinite(cfg->grad_clip)) { die("distill: grad_clip %g < 0 (0 turns clipping off)", cfg->grad_clip); }
    if (!(cfg->holdout_frac >= 0.0 && cfg->holdout_frac < 1.0)) { die("distill: holdout_frac %g outside [0, 1)", cfg->holdout_frac); }
    const BertConfig* mc = &student->config;
    if (mc->num_labels != 1) { die("distill: the student has %d labels; a pairwise judge answers with one logit", mc->num_labels); }
    if (mc->vocab_size < tok->vocab_size) {
        die("distill: the tokenizer has %d tokens, the student's embedding table only %d", tok->vocab_size, mc->vocab_size);
    }
    if (mc->type_vocab_size < 2) { die("distill: the pairwise input uses token types 0 and 1; the student has %d", mc->type_vocab_size); }
    if (max_len < 7) { die("distill: max_len %d leaves no room for a query, two documents and four special tokens", max_len); }
    if (max_len > mc->max_position) { die("distill: max_len %d exceeds the student's %d positions", max_len, mc->max_position); }
}

static void check_battles(const Corpus* corpus, const Queries* queries, const Battle* battles, const float* p, int n) {
    if (n <= 0) { die("distill: no battles to learn from (n = %d); the teacher must judge some first", n); }
    for (int i = 0; i < n; i++) {
        const Battle* b = &battles[i];
        if (b->query_a < 0 || b->query_a >= queries->n || b->query_b < 0 || b->query_b >= queries->n) {
            die("distill: battle %d names query %d / %d, outside the %d queries", i, b->query_a, b->query_b, queries->n);
        }
        if (b->doc_a < 0 || b->doc_a >= corpus->n || b->doc_b < 0 || b->doc_b >= corpus->n) {
            die("distill: battle %d names document %d / %d, outside the %d documents", i, b->doc_a, b->doc_b, corpus->n);
        }
        if (b->query_a != b->query_b) {
            die("distill: battle %d is cross-query (%s/%s against %s/%s): the pairwise input holds one query, "
                "so calibration battles cannot be distilled; leave them out", i, beir_id(queries, b->query_a),
                beir_id(corpus, b->doc_a), beir_id(queries, b->query_b), beir_id(corpus, b->doc_b));
        }
        if (b->doc_a == b->doc_b) {
            die("distill: battle %d sets document %s against itself (query %s)", i, beir_id(corpus, b->doc_a),
                beir_id(queries, b->query_a));
        }
        if (!(p[i] >= 0.0f && p[i] <= 1.0f)) {
            die("distill: the teacher's answer to battle %d (query %s, %s against %s) is %g, not a probability in [0, 1]",
                i, beir_id(queries, b->query_a), beir_id(corpus, b->doc_a), beir_id(corpus, b->doc_b), p[i]);
        }
    }
}

// ----------------------------------------------------------------------------
// packed batches of battles, each in both orders: sequence 2i is (a, b), 2i+1 is (b, a)

typedef struct {
    int max_len;
    int cap;          // sequences the buffers hold (even)
    int n_seqs;
    int n_tokens;
    int* ids;         // (n_tokens,) packed
    int* types;       // (n_tokens,)
    int* seq_starts;  // (n_seqs + 1,)
    float* target;    // (n_seqs,) the teacher's P(first document wins)
    int* item_ids;    // (cap, max_len) each sequence before packing
    int* item_types;  // (cap, max_len)
    int* item_len;    // (cap,)
} PairBatch;

static void pair_batch_init(PairBatch* b, int cap, int max_len) {
    b->max_len = max_len;
    b->cap = cap;
    b->ids = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->types = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->seq_starts = (int*)mallocCheck((size_t)(cap + 1) * sizeof(int));
    b->target = (float*)mallocCheck((size_t)cap * sizeof(float));
    b->item_ids = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->item_types = (int*)mallocCheck((size_t)cap * max_len * sizeof(int));
    b->item_len = (int*)mallocCheck((size_t)cap * sizeof(int));
}

static void pair_batch_free(PairBatch* b) {
    free(b->ids); free(b->types); free(b->seq_starts); free(b->target);
    free(b->item_ids); free(b->item_types); free(b->item_len);
}

// the battles which[0..m) in both orders, encoded as the pairwise judge encodes them
static void pair_batch_encode(PairBatch* b, const Tokenizer* tok, const Corpus* corpus, const Queries* queries,
                              const Battle* battles, const float* p, const int* which, int m) {
    if (2 * m > b->cap) { die("distill: batch of %d battles, room for %d", m, b->cap / 2); }
    #pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < 2 * m; s++) {
        const Battle* bt = &battles[which[s / 2]];
        int first = s % 2 == 0 ? bt->doc_a : bt->doc_b;
        int second = s % 2 == 0 ? bt->doc_b : bt->doc_a;
        b->item_len[s] = judge_encode_pairwise(b->item_ids + (size_t)s * b->max_len, b->item_types + (size_t)s * b->max_len,
                                               b->max_len, tok, beir_text(queries, bt->query_a),
                                               beir_text(corpus, first), beir_text(corpus, second));
    }
    b->n_seqs = 2 * m;
    b->n_tokens = 0;
    for (int s = 0; s < 2 * m; s++) {
        float pa = p[which[s / 2]];
        b->target[s] = s % 2 == 0 ? pa : 1.0f - pa;
        b->seq_starts[s] = b->n_tokens;
        memcpy(b->ids + b->n_tokens, b->item_ids + (size_t)s * b->max_len, (size_t)b->item_len[s] * sizeof(int));
        memcpy(b->types + b->n_tokens, b->item_types + (size_t)s * b->max_len, (size_t)b->item_len[s] * sizeof(int));
        b->n_tokens += b->item_len[s];
    }
    b->seq_starts[2 * m] = b->n_tokens;
}

// ----------------------------------------------------------------------------
// agreement with the teacher on the held-out battles

typedef struct {
    double bce;           // mean over held-out battles and both orders
    double agreement;     // share of decided answers (both orders) on the teacher's side of 0.5
    double antisymmetry;  // mean |σ(z_ab) + σ(z_ba) − 1|
} HoldoutFigures;

static double sigmoid(double x) {
    return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

// the teacher's entropy: the BCE of a student answering exactly p, below which none can go
static double teacher_entropy(const float* p, const int* holdout, int n_holdout) {
    double sum = 0.0;
    for (int i = 0; i < n_holdout; i++) {
        double q = p[holdout[i]];
        if (q > 0.0) { sum -= q * log(q); }
        if (q < 1.0) { sum -= (1.0 - q) * log(1.0 - q); }
    }
    return n_holdout > 0 ? sum / n_holdout : NAN;
}

static int teacher_decided(float p) { return fabs((double)p - 0.5) > DISTILL_TIE_MARGIN; }

static HoldoutFigures holdout_measure(BertModel* student, PairBatch* b, const Tokenizer* tok, const Corpus* corpus,
                                      const Queries* queries, const Battle* battles, const float* p,
                                      const int* holdout, int n_holdout) {
    HoldoutFigures f = { NAN, NAN, NAN };
    if (n_holdout == 0) { return f; }
    double bce = 0.0, antisym = 0.0;
    int64_t agree = 0, decided = 0;
    float* dlogits = (float*)mallocCheck((size_t)b->cap * sizeof(float));  // unused gradient of the loss
    for (int start = 0; start < n_holdout; start += b->cap / 2) {
        int m = n_holdout - start < b->cap / 2 ? n_holdout - start : b->cap / 2;
        pair_batch_encode(b, tok, corpus, queries, battles, p, holdout + start, m);
        bert_infer(student, b->ids, b->types, b->seq_starts, b->n_seqs);
        const float* z = student->logits;  // (2m,) num_labels is 1
        bce += zelo_pairwise_bce_loss(dlogits, z, b->target, 2 * m) * 2 * m;
        for (int i = 0; i < m; i++) {
            antisym += fabs(sigmoid(z[2 * i]) + sigmoid(z[2 * i + 1]) - 1.0);
            if (!teacher_decided(b->target[2 * i])) { continue; }
            for (int s = 2 * i; s <= 2 * i + 1; s++) {
                decided++;
                // a logit of exactly 0 prefers neither document: it does not agree
                agree += (z[s] > 0.0f && b->target[s] > 0.5f) || (z[s] < 0.0f && b->target[s] < 0.5f);
            }
        }
    }
    free(dlogits);
    f.bce = bce / (2.0 * n_holdout);
    f.antisymmetry = antisym / n_holdout;
    f.agreement = decided > 0 ? (double)agree / (double)decided : NAN;
    return f;
}

static void holdout_report(FILE* log, const char* when, int step, const HoldoutFigures* f, double floor) {
    printf("distill %s: held-out BCE %.4f (teacher entropy %.4f), agreement %.4f, mean |p(a,b) + p(b,a) - 1| %.4f\n",
           when, f->bce, floor, f->agreement, f->antisymmetry);
    if (log != NULL) {
        // NaN (no held-out battles) is not JSON: written as null
        char bce[32], agreement[32], antisym[32];
        snprintf(bce, sizeof(bce), isfinite(f->bce) ? "%.6f" : "null", f->bce);
        snprintf(agreement, sizeof(agreement), isfinite(f->agreement) ? "%.6f" : "null", f->agreement);
        snprintf(antisym, sizeof(antisym), isfinite(f->antisymmetry) ? "%.6f" : "null", f->antisymmetry);
        fprintf(log, "{\"distill_step\": %d, \"distill_eval\": {\"holdout_bce\": %s, \"holdout_agreement\": %s, "
                "\"holdout_antisymmetry\": %s}}\n", step, bce, agreement, antisym);
        fflush(log);
    }
}

// ----------------------------------------------------------------------------
// training

// the order of the training battles in epoch e: a permutation drawn from (seed, e) alone,
// so the batch of any step can be found without replaying the ones before it
typedef struct {
    int n;
    int epoch;     // the epoch `order` holds, -1 before the first
    int* order;    // (n,)
    uint64_t seed;
} EpochOrder;

static void epoch_order_set(EpochOrder* eo, int64_t epoch) {
    if (eo->epoch == epoch) { return; }
    ZeloRng rng;
    zelo_rng_seed(&rng, eo->seed ^ (0xC2B2AE3D27D4EB4Full * (uint64_t)(epoch + 1)));
    for (int i = 0; i < eo->n; i++) { eo->order[i] = i; }
    for (int i = eo->n - 1; i > 0; i--) {
        int j = zelo_rng_below(&rng, i + 1);
        int t = eo->order[i]; eo->order[i] = eo->order[j]; eo->order[j] = t;
    }
    eo->epoch = (int)epoch;
}

// which[0..m): the battles of step s (1-based), positions (s−1)m .. sm−1 of the epochs'
// orders laid end to end, mapped through train (the indices of the training battles)
static void step_battles(int* which, EpochOrder* eo, const int* train, int step, int m) {
    for (int j = 0; j < m; j++) {
        int64_t pos = (int64_t)(step - 1) * m + j;
        epoch_order_set(eo, pos / eo->n);
        which[j] = train[eo->order[pos % eo->n]];
    }
}

// linear warm-up over the first warmup_frac of the steps, then linear decay to 0
static float learning_rate(const DistillConfig* cfg, int step, int total) {
    int warmup = (int)(cfg->warmup_frac * (float)total);
    if (step <= warmup) { return cfg->lr * (float)step / (float)(warmup > 0 ? warmup : 1); }
    float frac = (float)(step - warmup) / (float)(total - warmup > 0 ? total - warmup : 1);
    return cfg->lr * (1.0f - frac);
}

// redrawn in place on a terminal, a line every 10 s elsewhere (a log file stays readable)
static void progress_print(int step, int total, double loss, double start, double* last) {
    double now = wall_seconds();
    int tty = isatty(fileno(stderr));
    if (step < total && now - *last < (tty ? 0.2 : 10.0)) { return; }
    *last = now;
    double rate = (double)step / (now - start + 1e-9);
    fprintf(stderr, "%sdistill: step %d/%d  loss %.4f  %.1f steps/s  %s %.0fs%s", tty ? "\r" : "", step, total, loss,
            rate, step < total ? "eta" : "took", step < total ? (total - step) / rate : now - start,
            tty && step < total ? "" : "\n");
    fflush(stderr);
}

DistillResult distill_pairwise(BertModel* student, const Tokenizer* tok, const Corpus* corpus,
                               const Queries* queries, const Battle* battles, const float* p, int n,
                               const DistillConfig* cfg, FILE* log) {
    int max_len = cfg->max_len > 0 ? cfg->max_len : student->config.max_position;
    check_config(cfg, student, tok, max_len);
    check_battles(corpus, queries, battles, p, n);

    DistillResult r;
    memset(&r, 0, sizeof(r));
    int* train = (int*)mallocCheck((size_t)n * sizeof(int));    // (n_train,) battle indices
    int* holdout = (int*)mallocCheck((size_t)n * sizeof(int));  // (n_holdout,)
    for (int i = 0; i < n; i++) {
        if (distill_battle_is_holdout(corpus, queries, &battles[i], cfg->seed, cfg->holdout_frac)) { holdout[r.n_holdout++] = i; }
        else { train[r.n_train++] = i; }
    }
    if (r.n_train == 0) {
        die("distill: all %d battles fell in the hold-out (holdout_frac %g): nothing left to train on", n, cfg->holdout_frac);
    }
    for (int i = 0; i < r.n_holdout; i++) { r.n_decided += teacher_decided(p[holdout[i]]); }
    int half = cfg->batch_size / 2;
    int total = cfg->steps > 0 ? cfg->steps : (r.n_train + half - 1) / half;
    printf("distill: %d battles, %d to train on (both orders), %d held out (%d with a preference); "
           "%d steps of %d sequences, max_len %d, lr %g\n",
           n, r.n_train, r.n_holdout, r.n_decided, total, cfg->batch_size, max_len, cfg->lr);
    if (r.n_holdout == 0) { printf("distill: no battle is held out, so agreement with the teacher is not measured\n"); }

    // inference of the hold-out in chunks of at least 64 sequences: fewer, larger products
    PairBatch batch;
    pair_batch_init(&batch, cfg->batch_size > 64 ? cfg->batch_size : 64, max_len);
    r.bce_floor = teacher_entropy(p, holdout, r.n_holdout);
    HoldoutFigures f = holdout_measure(student, &batch, tok, corpus, queries, battles, p, holdout, r.n_holdout);
    r.bce_start = f.bce; r.agreement_start = f.agreement; r.antisymmetry_start = f.antisymmetry;
    holdout_report(log, "before", 0, &f, r.bce_floor);

    EpochOrder eo = { r.n_train, -1, (int*)mallocCheck((size_t)r.n_train * sizeof(int)), cfg->seed };
    int* which = (int*)mallocCheck((size_t)half * sizeof(int));
    float* dlogits = (float*)mallocCheck((size_t)cfg->batch_size * sizeof(float));  // (B,)
    double t_start = wall_seconds(), last_print = 0.0;
    for (int step = 1; step <= total; step++) {
        double t0 = wall_seconds();
        step_battles(which, &eo, train, step, half);
        pair_batch_encode(&batch, tok, corpus, queries, battles, p, which, half);
        bert_zero_grad(student);
        bert_forward(student, batch.ids, batch.types, batch.seq_starts, batch.n_seqs);
        double loss = zelo_pairwise_bce_loss(dlogits, student->logits, batch.target, batch.n_seqs);
        if (!isfinite(loss)) { die("distill: step %d: the loss is %g; lower the learning rate", step, loss); }
        bert_backward(student, dlogits, NULL);
        float norm = bert_clip_grad_norm(student, cfg->grad_clip);
        float lr = learning_rate(cfg, step, total);
        bert_adamw_update(student, lr, 0.9f, 0.999f, 1e-8f, cfg->weight_decay, step);
        if (log != NULL) {
            fprintf(log, "{\"distill_step\": %d, \"distill_loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": %.1f}\n",
                    step, loss, lr, norm, batch.n_tokens / (wall_seconds() - t0 + 1e-9));
            fflush(log);
        }
        progress_print(step, total, loss, t_start, &last_print);
    }
    r.steps = total;

    f = holdout_measure(student, &batch, tok, corpus, queries, battles, p, holdout, r.n_holdout);
    r.bce_end = f.bce; r.agreement_end = f.agreement; r.antisymmetry_end = f.antisymmetry;
    holdout_report(log, "after", total, &f, r.bce_floor);

    free(eo.order);
    free(which);
    free(dlogits);
    free(train);
    free(holdout);
    pair_batch_free(&batch);
    return r;
}
