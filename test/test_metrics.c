/*
 * test/test_metrics.c — the trec_eval measures and TREC files of io/metrics.c against
 * pytrec_eval, on the fixture written by dev/gen_metrics_fixture.py (200 synthetic queries:
 * graded and negative grades, queries without relevant documents or without a ranking,
 * ties, near-ties that only a float merges, rankings shorter than 10 and longer than 100,
 * run lines shuffled across queries with a random rank column); then the run writer by a
 * round trip, and the error paths in child processes.
 */
#include <string.h>
#include <unistd.h>

#include "io/metrics.h"
#include "test/test.h"
#include "common/utils.h"

#define FIXTURE_DIR "test/fixtures/metrics/"
#define NUM_MEASURES 6

// Tolerance of every per-query value and mean: 1e-12 absolute. Both sides compute the same
// formulas in double from the same integers (ranks, grades, counts); they can differ only
// by the rounding of log2 and of the summation order, a few ulps of values <= 1, i.e. about
// 1e-15. Anything at 1e-12 or above is a real disagreement (one document at another rank
// changes a value by 1e-3 at least), so this is far tighter than the 1e-6 a trec_eval
// printout would allow and still cannot fail on rounding alone.
#define TOLERANCE 1e-12

static void measures_of(double* v, const MetricScores* s) {
    v[0] = s->ndcg_at_10;
    v[1] = s->recall_at_100;
    v[2] = s->recip_rank;
    v[3] = s->mrr_at_10;
    v[4] = s->map_at_100;
    v[5] = s->precision_at_10;
}
static const char* measure_names[NUM_MEASURES] = {
    "ndcg_cut_10", "recall_100", "recip_rank", "mrr_10", "map_cut_100", "P_10"
};

// ----------------------------------------------------------------------------
// the fixture against pytrec_eval

typedef struct {
    char qid[64];
    int num_rel, num_ret;
    double v[NUM_MEASURES];  // in the order of measure_names
} ExpectedRow;

static int find_query(const TrecQrels* qrels, const char* qid) {
    for (int q = 0; q < qrels->num_queries; q++) {
        if (strcmp(qrels->qids[q], qid) == 0) { return q; }
    }
    return -1;
}

static void test_against_pytrec_eval(const TrecRun* run, const TrecQrels* qrels, const MetricScores* got,
                                     int run_only) {
    FILE* fp = fopenCheck(FIXTURE_DIR "expected.txt", "r");
    char line[1024];
    int n_rows = 0, saw_mean = 0;
    double worst = 0.0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (line[0] == '#') { continue; }
        int want_run_only;
        if (sscanf(line, "run_only %d", &want_run_only) == 1) {
            CHECK(run_only == want_run_only, "run queries without qrels: got %d, want %d", run_only, want_run_only);
            continue;
        }
        double g[NUM_MEASURES];
        if (strncmp(line, "mean ", 5) == 0) {
            int want_averaged, want_rel_sum, want_ret_sum;
            double w[NUM_MEASURES];
            if (sscanf(line, "mean %d %d %d %lf %lf %lf %lf %lf %lf", &want_averaged, &want_rel_sum, &want_ret_sum,
                       &w[0], &w[1], &w[2], &w[3], &w[4], &w[5]) != 9) {
                die("%sexpected.txt: malformed mean line '%s'", FIXTURE_DIR, line);
            }
            MetricScores mean;
            int n_averaged = metrics_mean(&mean, got, qrels->num_queries);
            CHECK(n_averaged == want_averaged && mean.num_rel == want_rel_sum && mean.num_ret == want_ret_sum,
                  "mean: averaged %d queries, num_rel sum %d, num_ret sum %d; want %d %d %d",
                  n_averaged, mean.num_rel, mean.num_ret, want_averaged, want_rel_sum, want_ret_sum);
            measures_of(g, &mean);
            for (int m = 0; m < NUM_MEASURES; m++) {
                double err = fabs(g[m] - w[m]);
                if (err > worst) { worst = err; }
                CHECK(err <= TOLERANCE, "mean %s: got %.17g, want %.17g", measure_names[m], g[m], w[m]);
            }
            printf("mean over %d queries: ndcg@10 %.6f recall@100 %.6f mrr@10 %.6f (pytrec_eval: %.6f %.6f %.6f)\n",
                   n_averaged, mean.ndcg_at_10, mean.recall_at_100, mean.mrr_at_10, w[0], w[1], w[3]);
            saw_mean = 1;
            continue;
        }
        ExpectedRow e;
        if (sscanf(line, "%63s %d %d %lf %lf %lf %lf %lf %lf", e.qid, &e.num_rel, &e.num_ret,
                   &e.v[0], &e.v[1], &e.v[2], &e.v[3], &e.v[4], &e.v[5]) != 9) {
            die("%sexpected.txt: malformed line '%s'", FIXTURE_DIR, line);
        }
        int q = find_query(qrels, e.qid);
        CHECK(q >= 0, "query '%s' of expected.txt is not in the qrels", e.qid);
        if (q < 0) { continue; }
        n_rows++;
        CHECK(got[q].num_rel == e.num_rel && got[q].num_ret == e.num_ret,
              "query '%s': num_rel %d num_ret %d, want %d %d", e.qid, got[q].num_rel, got[q].num_ret,
              e.num_rel, e.num_ret);
        measures_of(g, &got[q]);
        for (int m = 0; m < NUM_MEASURES; m++) {
            double err = fabs(g[m] - e.v[m]);
            if (err > worst) { worst = err; }
            CHECK(err <= TOLERANCE, "query '%s' %s: got %.17g, want %.17g", e.qid, measure_names[m], g[m], e.v[m]);
        }
    }
    fclose(fp);
    CHECK(n_rows == qrels->num_queries, "expected.txt has %d queries, the qrels %d", n_rows, qrels->num_queries);
    CHECK(saw_mean, "expected.txt has no mean line");
    printf("%d queries (%d in the run) vs pytrec_eval: worst absolute error %.3g (tolerance %.0e)\n",
           n_rows, run->num_queries, worst, TOLERANCE);
}

// ----------------------------------------------------------------------------
// the writer: what it writes must read back to the same evaluation, in trec_eval's order

static void test_write_read_round_trip(const TrecRun* run, const TrecQrels* qrels, const MetricScores* want,
                                       const char* tmp_dir) {
    char path[512];
    snprintf(path, sizeof(path), "%s/written_run.txt", tmp_dir);
    FILE* fp = fopenCheck(path, "w");
    for (int q = 0; q < run->num_queries; q++) {
        int b = run->offsets[q];
        metrics_write_trec_run(fp, run->qids[q], (const char* const*)run->doc_ids + b, run->scores + b,
                               run->offsets[q + 1] - b, "zelo");
    }
    fcloseCheck(fp);

    // the file itself: ranks 1, 2, ... per query, scores non-increasing, ties by id descending
    fp = fopenCheck(path, "r");
    char line[1024], prev_qid[256] = "", prev_doc[256] = "";
    float prev_score = 0.0f;
    int prev_rank = 0, bad_order = 0, n_lines = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        char qid[256], q0[8], doc[256], tag[64];
        int rank;
        float score;
        if (sscanf(line, "%255s %7s %255s %d %f %63s", qid, q0, doc, &rank, &score, tag) != 6) {
            die("%s: malformed line '%s'", path, line);
        }
        n_lines++;
        int same_query = strcmp(qid, prev_qid) == 0;
        if (rank != (same_query ? prev_rank + 1 : 1)) { bad_order++; }
        if (same_query && (score > prev_score || (score == prev_score && strcmp(doc, prev_doc) > 0))) { bad_order++; }
        snprintf(prev_qid, sizeof(prev_qid), "%s", qid);
        snprintf(prev_doc, sizeof(prev_doc), "%s", doc);
        prev_score = score;
        prev_rank = rank;
    }
    fclose(fp);
    CHECK(bad_order == 0, "written run: %d lines out of trec_eval's order or rank sequence", bad_order);
    CHECK(n_lines == run->offsets[run->num_queries], "written run: %d lines, want %d", n_lines,
          run->offsets[run->num_queries]);

    // and read back: the same floats, hence bit-identical measures
    TrecRun back;
    metrics_read_trec_run(&back, path);
    int same_scores = back.num_queries == run->num_queries &&
                      back.offsets[back.num_queries] == run->offsets[run->num_queries];
    for (int i = 0; same_scores && i < run->offsets[run->num_queries]; i++) {
        same_scores = strcmp(back.doc_ids[i], run->doc_ids[i]) == 0 && back.scores[i] == run->scores[i];
    }
    CHECK(same_scores, "written run does not read back to the same documents and float scores");
    MetricScores* again = (MetricScores*)mallocCheck((size_t)qrels->num_queries * sizeof(MetricScores));
    metrics_eval_run(again, &back, qrels);
    int identical = 1;
    for (int q = 0; q < qrels->num_queries; q++) {
        double a[NUM_MEASURES], b[NUM_MEASURES];
        measures_of(a, &again[q]);
        measures_of(b, &want[q]);
        for (int m = 0; m < NUM_MEASURES; m++) { identical = identical && a[m] == b[m]; }
    }
    CHECK(identical, "the written run evaluates differently from the run it was written from");
    free(again);
    trec_run_free(&back);
}

// ----------------------------------------------------------------------------
// error paths: each must stop the program with status 1 and a message that says where

typedef void (*DyingCall)(const void* arg);

// runs call(arg) in a child process and checks it exits with status 1, its stderr holding want
static void check_dies(DyingCall call, const void* arg, const char* want, const char* label) {
    char msg[2048];
    int status = run_in_child(call, arg, msg, sizeof(msg));
    int exited_1 = status == 1;
    CHECK(exited_1 && strstr(msg, want) != NULL, "%s: want exit 1 and a message with '%s', got status %d and '%s'",
          label, want, status, msg);
}

static void read_run_file(const void* path) {
    TrecRun run;
    metrics_read_trec_run(&run, path);
}
static void read_qrels_file(const void* path) {
    TrecQrels qrels;
    metrics_read_trec_qrels(&qrels, path);
}
static void eval_duplicate_ranking(const void* unused) {
    (void)unused;
    const char* ids[3] = { "a", "b", "a" };
    float scores[3] = { 1.0f, 2.0f, 3.0f };
    const char* qids[1] = { "a" };
    int grades[1] = { 1 };
    MetricScores s;
    metrics_eval_query(&s, "q7", ids, scores, 3, qids, grades, 1);
}
static void eval_nan_score(const void* unused) {
    (void)unused;
    const char* ids[2] = { "a", "b" };
    float scores[2] = { 1.0f, NAN };
    MetricScores s;
    metrics_eval_query(&s, "q8", ids, scores, 2, ids, (const int[2]){ 1, 0 }, 2);
}
static void write_id_with_space(const void* unused) {
    (void)unused;
    const char* ids[1] = { "doc 1" };
    float scores[1] = { 1.0f };
    metrics_write_trec_run(stdout, "q9", ids, scores, 1, "zelo");
}

static const char* write_text_file(char* path, size_t cap, const char* dir, const char* name, const char* text) {
    snprintf(path, cap, "%s/%s", dir, name);
    FILE* fp = fopenCheck(path, "w");
    fputs(text, fp);
    fcloseCheck(fp);
    return path;
}

static void test_errors(const char* tmp_dir) {
    struct { int is_run; const char* name; const char* text; const char* want; } cases[] = {
        { 1, "run_5_fields.txt", "q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4\n", "run_5_fields.txt:2: expected 6 fields" },
        { 1, "run_bad_score.txt", "q1 Q0 d1 1 0.5x t\n", "run_bad_score.txt:1: score '0.5x' is not a number" },
        { 1, "run_nan.txt", "q1 Q0 d1 1 0.5 t\n\nq1 Q0 d2 2 nan t\n", "run_nan.txt:3: score is NaN" },
        { 1, "run_bad_rank.txt", "q1 Q0 d1 0.5 1 t\n", "run_bad_rank.txt:1: rank '0.5' is not an integer" },
        { 1, "run_dup.txt", "q1 Q0 d1 1 0.5 t\nq2 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n",
          "run_dup.txt:3: document 'd1' appears twice for query 'q1' (first on line 1)" },
        { 1, "run_empty.txt", "\n  \n", "run_empty.txt: no entries" },
        { 0, "qrels_3_fields.txt", "q1 0 d1\n", "qrels_3_fields.txt:1: expected 4 fields" },
        { 0, "qrels_bad_grade.txt", "q1 0 d1 1\nq1 0 d2 1.5\n", "qrels_bad_grade.txt:2: grade '1.5' is not an integer" },
        { 0, "qrels_dup.txt", "q1 0 d1 1\nq1 0 d1 0\n", "qrels_dup.txt:2: document 'd1' appears twice" },
    };
    char path[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_text_file(path, sizeof(path), tmp_dir, cases[i].name, cases[i].text);
        check_dies(cases[i].is_run ? read_run_file : read_qrels_file, path, cases[i].want, cases[i].name);
    }
    check_dies(read_run_file, "/nonexistent/run.txt", "could not open '/nonexistent/run.txt'", "missing file");
    check_dies(eval_duplicate_ranking, NULL, "query 'q7': document 'a' appears twice in the ranking", "duplicate in memory");
    check_dies(eval_nan_score, NULL, "query 'q8': document 'b' has a NaN score", "NaN in memory");
    check_dies(write_id_with_space, NULL, "document id 'doc 1' is empty or holds whitespace", "writer id");
}

// NDCG with real-valued gains against scikit-learn's ndcg_score (dev/gen_graded_ndcg_fixture.py).
// Both sum at most 10 terms in double from the same printed inputs: 1e-12 covers the order of
// the additions and log2's last bits. Then the cases the fixture cannot hold: all gains zero
// (-1, nothing to find) and equal scores (by index, as the header says).
static void test_graded_ndcg(void) {
    FILE* fp = fopenCheck(FIXTURE_DIR "graded.txt", "r");
    int n, cases = 0;
    double worst = 0.0;
    while (fscanf(fp, "%d", &n) == 1) {
        double* gains = (double*)mallocCheck((size_t)n * sizeof(double));
        float* scores = (float*)mallocCheck((size_t)n * sizeof(float));
        double want;
        for (int j = 0; j < n; j++) { if (fscanf(fp, "%lf", &gains[j]) != 1) { die("graded.txt: a short line"); } }
        for (int j = 0; j < n; j++) { if (fscanf(fp, "%f", &scores[j]) != 1) { die("graded.txt: a short line"); } }
        if (fscanf(fp, "%lf", &want) != 1) { die("graded.txt: a short line"); }
        double got = metrics_ndcg_gains(scores, gains, n, METRICS_NDCG_CUT);
        CHECK(fabs(got - want) <= 1e-12, "graded NDCG@10, case %d (n %d): %.17g, scikit-learn %.17g", cases, n, got, want);
        worst = fmax(worst, fabs(got - want));
        free(gains); free(scores);
        cases++;
    }
    fclose(fp);
    CHECK(cases == 120, "graded.txt holds %d cases, want 120", cases);
    printf("graded NDCG@10: %d cases, worst |difference| from scikit-learn %.2e\n", cases, worst);
    double zero[3] = { 0, 0, 0 }, gains[3] = { 0, 1, 0 };
    float scores[3] = { 1, 2, 3 }, tied[3] = { 5, 5, 5 };
    CHECK(metrics_ndcg_gains(scores, zero, 3, 10) == -1.0, "graded NDCG with no positive gain: want -1");
    // all scores equal: index order, so the relevant document (index 1) is at rank 2
    CHECK(fabs(metrics_ndcg_gains(tied, gains, 3, 10) - 1.0 / log2(3.0)) < 1e-15, "graded NDCG with tied scores");
}

int main(void) {
    test_graded_ndcg();
    TrecRun run;
    TrecQrels qrels;
    metrics_read_trec_run(&run, FIXTURE_DIR "run.txt");
    metrics_read_trec_qrels(&qrels, FIXTURE_DIR "qrels.txt");
    MetricScores* per_query = (MetricScores*)mallocCheck((size_t)qrels.num_queries * sizeof(MetricScores));
    int run_only = metrics_eval_run(per_query, &run, &qrels);

    test_against_pytrec_eval(&run, &qrels, per_query, run_only);

    char tmp_dir[] = "/tmp/zelo_test_metrics_XXXXXX";
    if (mkdtemp(tmp_dir) == NULL) { die("could not create a temporary directory"); }
    test_write_read_round_trip(&run, &qrels, per_query, tmp_dir);
    test_errors(tmp_dir);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) { printf("note: could not remove %s\n", tmp_dir); }

    free(per_query);
    trec_run_free(&run);
    trec_qrels_free(&qrels);
    return test_summary("test_metrics");
}
