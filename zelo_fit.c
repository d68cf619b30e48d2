/*
 * zelo_fit — pairwise judgments in, one rating and one target per document out.
 *
 *   zelo_fit [options] JUDGMENTS.jsonl        judgments: one JSON object per line,
 *       {"query_id": "q1", "doc_a": "d3", "doc_b": "d7", "p": 0.8, "judge": "gpt"}
 *       p = P(doc_a is more relevant than doc_b), in [0, 1]; "judge" is optional. Several
 *       judgments of one pair (either order) are averaged per judge, then across judges.
 *   zelo_fit [options] --zbench-annotated FILE.jsonl
 *       imports a zbench annotated dataset ({"query": {"id"}, "documents": [{"id", "score"}]}
 *       per line; scores are Bradley–Terry ratings): every pair of a query's documents gets
 *       p = σ(score_a − score_b) and is refitted, so the ratings land on the chosen link's
 *       scale with our prior and gauge.
 * options:
 *   -o PATH          output (default: stdout); .tsv gives TSV unless --format says otherwise
 *   --format F       jsonl | tsv: rows (query_id, doc_id, rating, target)
 *   --link L         thurstone (default) | bt
 *   --lambda X       prior precision (default 0.01 thurstone, 0.002 bt)
 *   --tol X          stop at ‖∇‖∞ <= X (default 1e-9)    --max-iter N  (default 100)
 *   --device D       where the per-query fit runs: auto (the GPU when one is visible, default),
 *                    cpu, cuda (the batched fit of kernels/zelo_fit.cuh, ratings within 1e-9 of
 *                    the CPU's; refused with exit status 2 in a build without the CUDA backend
 *                    or with no GPU visible). The calibration's single fit runs on the CPU.
 *   --cross FILE     more cross-query judgments for calibration, one per line:
 *       {"query_id": "q1", "doc_a": "d3", "query_id_b": "q2", "doc_b": "d9", "p": 0.3}
 *       (doc_a answers query_id, doc_b answers query_id_b). Such lines may also stand in
 *       JUDGMENTS.jsonl itself, as train_zelo's judgments.jsonl holds them; without any,
 *       every offset b_q is 0 and the run says so.
 * Any malformed line (a repeated key included) stops the run with FILE:LINE (and :COLUMN
 * for bad JSON) and nothing is written; so does a file with no judgments. Queries whose fit did
 * not converge, and with --lambda 0 those whose ratings have no finite optimum (fitted with
 * the default prior instead), are listed on stderr and the exit status is 3 (the output is
 * written).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_ds.h>
#include "io/json.h"
#include "common/strtab.h"
#include "common/utils.h"
#include "model.h"
#include "zelo_loss.h"

// one judged pair after averaging
typedef struct {
    int query, a, b;   // a, b: local document indices, in the order first seen
    int line;          // line of its first judgment, for messages
} Pair;

// one judgment, oriented to its pair's order
typedef struct { int pair, judge; double p; } Judgment;

// a pair's key: its query and its two local document indices, lower first
typedef struct { int query, lo, hi; } PairKey;
typedef struct { PairKey key; } PairSlot;

// the arrays are stb_ds arrays, the maps stb_ds maps whose entry i is number i
typedef struct {
    StrTab queries;     // query id -> query index, in order of first appearance
    StrTab docs;        // "<query index>\x01<doc id>" -> global document number
    int* doc_query;     // (docs' count,) query of each document
    int* doc_local;     // (docs' count,) index within its query
    int* num_docs;      // (queries' count,)
    PairSlot* pair_keys;  // stb_ds hash map: PairKey -> pair index
    Pair* pairs;
    StrTab judges;
    Judgment* judgments;
} Dataset;

static const char* doc_id_of(const Dataset* ds, int global) {
    return strchr(strtab_get(&ds->docs, global), '\x01') + 1;
}

// global document number of (query, id), created when new
static int intern_doc(Dataset* ds, int q, const char* id) {
    char* key = mallocCheck(strlen(id) + 16);
    sprintf(key, "%d\x01%s", q, id);
    int added;
    int g = strtab_intern(&ds->docs, key, &added);
    free(key);
    if (added) {
        arrput(ds->doc_query, q);
        arrput(ds->doc_local, ds->num_docs[q]++);
    }
    return g;
}

static int intern_query(Dataset* ds, const char* id) {
    int added;
    int q = strtab_intern(&ds->queries, id, &added);
    if (added) { arrput(ds->num_docs, 0); }
    return q;
}

// the pair {a, b} of query q (local indices), created in this order when new; *flipped
// says whether (a, b) is the reverse of the stored order
static int intern_pair(Dataset* ds, int q, int a, int b, int line, int* flipped) {
    PairSlot slot = {{ q, a < b ? a : b, a < b ? b : a }};
    int i = (int)hmgeti(ds->pair_keys, slot.key);
    if (i < 0) {
        hmputs(ds->pair_keys, slot);
        i = (int)arrlen(ds->pairs);
        arrput(ds->pairs, ((Pair){ q, a, b, line }));
    }
    *flipped = ds->pairs[i].a != a;
    return i;
}

static void add_judgment(Dataset* ds, int pair, int judge, double p) {
    arrput(ds->judgments, ((Judgment){ pair, judge, p }));
}

// ----------------------------------------------------------------------------
// reading JSONL

typedef struct { const char* path; int line, col; } Where;  // col: 0 when not known

#define bad_line(w, ...) die_line(w, __VA_ARGS__)
__attribute__((format(printf, 2, 3), noreturn))
static void die_line(const Where* w, const char* fmt, ...) {
    fflush(stdout);
    if (w->col > 0) { fprintf(stderr, "error: %s:%d:%d: ", w->path, w->line, w->col); }
    else { fprintf(stderr, "error: %s:%d: ", w->path, w->line); }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (nothing written)\n");
    exit(1);
}

static const char* get_string(const Where* w, const JsonValue* obj, const char* key) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL) { bad_line(w, "missing \"%s\"", key); }
    if (v->type != JSON_STRING) { bad_line(w, "\"%s\" must be a string, got %s", key, json_type_name(v->type)); }
    if (strlen(v->str) != v->len || v->len == 0) { bad_line(w, "\"%s\" is empty or contains a NUL character", key); }
    return v->str;
}

static double get_prob(const Where* w, const JsonValue* obj, const char* key) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL) { bad_line(w, "missing \"%s\"", key); }
    if (v->type != JSON_NUMBER) { bad_line(w, "\"%s\" must be a number, got %s", key, json_type_name(v->type)); }
    // 17 digits: 1.0000000000000002 must not print as 1
    if (!isfinite(v->number) || v->number < 0 || v->number > 1) { bad_line(w, "\"%s\" = %.17g is not in [0, 1]", key, v->number); }
    return v->number;
}

// calls fn on every non-blank line of path, parsed as a JSON object
typedef void (*LineFn)(Dataset* ds, const Where* w, const JsonValue* obj, void* ctx);
static void for_each_jsonl(const char* path, LineFn fn, Dataset* ds, void* ctx) {
    size_t len;
    char* text = readFileCheck(path, &len);
    Where w = { path, 0, 0 };
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n') { end++; }
        w.line++;
        size_t s = pos;
        while (s < end && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r')) { s++; }
        if (s < end) {
            JsonValue v;
            char err[200];
            if (!json_parse(&v, text + pos, end - pos, err, sizeof(err))) {
                // json.c says "line 1, column C: what" of the line's text: FILE:LINE:C: what
                int skip = 0;
                if (sscanf(err, "line 1, column %d: %n", &w.col, &skip) == 1 && skip > 0) {
                    bad_line(&w, "bad JSON: %s", err + skip);
                }
                w.col = 0;
                bad_line(&w, "bad JSON: %s", err);
            }
            if (v.type != JSON_OBJECT) { bad_line(&w, "expected a JSON object, got %s", json_type_name(v.type)); }
            // json.c keeps the last of a repeated key; here that would silently pick one of
            // two values of "p" (or of an id), so a repeat is refused (a line holds few keys)
            for (int i = 0; i < v.count; i++) {
                for (int j = 0; j < i; j++) {
                    if (strcmp(v.keys[i], v.keys[j]) == 0) { bad_line(&w, "key \"%s\" appears twice", v.keys[i]); }
                }
            }
            fn(ds, &w, &v, ctx);
            json_free(&v);
        }
        pos = end + 1;
    }
    free(text);
}

static void read_judgment(Dataset* ds, const Where* w, const JsonValue* obj, void* ctx) {
    (void)ctx;
    // cross-query lines are read in a second pass, once every query's documents are known
    if (json_get(obj, "query_id_b") != NULL) { return; }
    const char* qid = get_string(w, obj, "query_id");
    const char* da = get_string(w, obj, "doc_a");
    const char* db = get_string(w, obj, "doc_b");
    double p = get_prob(w, obj, "p");
    const JsonValue* jv = json_get(obj, "judge");
    const char* judge = "";
    if (jv != NULL) { judge = get_string(w, obj, "judge"); }
    if (strcmp(da, db) == 0) { bad_line(w, "doc_a and doc_b are the same document \"%s\"", da); }
    int q = intern_query(ds, qid);
    // separate statements: intern_doc may move doc_local
    int ga = intern_doc(ds, q, da);
    int gb = intern_doc(ds, q, db);
    int a = ds->doc_local[ga], b = ds->doc_local[gb];
    int flipped;
    int pair = intern_pair(ds, q, a, b, w->line, &flipped);
    add_judgment(ds, pair, strtab_intern(&ds->judges, judge, NULL), flipped ? 1.0 - p : p);
}

static void read_zbench_line(Dataset* ds, const Where* w, const JsonValue* obj, void* ctx) {
    (void)ctx;
    const JsonValue* query = json_get(obj, "query");
    const JsonValue* docs = json_get(obj, "documents");
    if (query == NULL || query->type != JSON_OBJECT) { bad_line(w, "missing object \"query\""); }
    if (docs == NULL || docs->type != JSON_ARRAY) { bad_line(w, "missing array \"documents\""); }
    int q = intern_query(ds, get_string(w, query, "id"));
    if (ds->num_docs[q] > 0) { bad_line(w, "query \"%s\" appears twice", strtab_get(&ds->queries, q)); }
    double* score = mallocCheck(sizeof(double) * (docs->count + 1));
    for (int i = 0; i < docs->count; i++) {
        const JsonValue* d = &docs->items[i];
        if (d->type != JSON_OBJECT) { bad_line(w, "documents[%d] is not an object", i); }
        const char* id = get_string(w, d, "id");
        const JsonValue* s = json_get(d, "score");
        if (s == NULL || s->type != JSON_NUMBER || !isfinite(s->number)) {
            bad_line(w, "documents[%d] (\"%s\") needs a finite number \"score\"", i, id);
        }
        int before = ds->num_docs[q];
        intern_doc(ds, q, id);
        if (ds->num_docs[q] == before) { bad_line(w, "document \"%s\" listed twice", id); }
        score[i] = s->number;
    }
    int judge = strtab_intern(&ds->judges, "zbench", NULL);
    for (int i = 0; i < docs->count; i++) {
        for (int j = i + 1; j < docs->count; j++) {
            int flipped;
            int pair = intern_pair(ds, q, i, j, w->line, &flipped);
            add_judgment(ds, pair, judge, zelo_link_prob(score[i] - score[j], ZELO_LINK_BT));
        }
    }
    free(score);
}

// cross-query judgments, collected for the calibration (stb_ds arrays)
typedef struct {
    ZeloCrossPair* pairs; double* p; int* line;
    int only_cross;  // 1: every line must be cross-query (--cross); 0: others are skipped
} CrossSet;

static void read_cross(Dataset* ds, const Where* w, const JsonValue* obj, void* ctx) {
    CrossSet* cs = ctx;
    if (json_get(obj, "query_id_b") == NULL) {
        if (cs->only_cross) { bad_line(w, "a cross-query judgment needs \"query_id_b\""); }
        return;
    }
    const char* qa = get_string(w, obj, "query_id");
    const char* da = get_string(w, obj, "doc_a");
    const char* qb = get_string(w, obj, "query_id_b");
    const char* db = get_string(w, obj, "doc_b");
    double p = get_prob(w, obj, "p");
    int q1 = strtab_find(&ds->queries, qa);
    int q2 = strtab_find(&ds->queries, qb);
    if (q1 < 0 || q2 < 0) { bad_line(w, "query \"%s\" has no judgments", q1 < 0 ? qa : qb); }
    if (q1 == q2) { bad_line(w, "query_id and query_id_b are the same query \"%s\"", qa); }
    int ids[2];
    const char* names[2] = { da, db };
    int qs[2] = { q1, q2 };
    for (int i = 0; i < 2; i++) {
        char* key = mallocCheck(strlen(names[i]) + 16);
        sprintf(key, "%d\x01%s", qs[i], names[i]);
        ids[i] = strtab_find(&ds->docs, key);
        free(key);
        if (ids[i] < 0) { bad_line(w, "document \"%s\" has no judgments in query \"%s\"", names[i], i ? qb : qa); }
    }
    arrput(cs->pairs, ((ZeloCrossPair){ q1, ds->doc_local[ids[0]], q2, ds->doc_local[ids[1]] }));
    arrput(cs->p, p);
    arrput(cs->line, w->line);
}

// ----------------------------------------------------------------------------

static int compare_judgments(const void* x, const void* y) {
    const Judgment* a = x;
    const Judgment* b = y;
    if (a->pair != b->pair) { return a->pair < b->pair ? -1 : 1; }
    return (a->judge > b->judge) - (a->judge < b->judge);
}

// the number an option's value spells, all of it, or an error naming the option
static double number_option(const char* name, const char* value) {
    char* end = NULL;
    double v = strtod(value, &end);
    if (end == value || *end != '\0' || !isfinite(v)) { die("%s wants a number, got '%s'", name, value); }
    return v;
}

static void usage(void) {
    fprintf(stderr, "usage: zelo_fit [-o OUT] [--format jsonl|tsv] [--link thurstone|bt] [--lambda X]\n"
                    "                [--tol X] [--max-iter N] [--device auto|cpu|cuda] [--cross CROSS.jsonl]\n"
                    "                (JUDGMENTS.jsonl | --zbench-annotated FILE.jsonl)\n");
    exit(1);
}

int main(int argc, char** argv) {
    const char* out_path = NULL; const char* format = NULL; const char* input = NULL;
    const char* cross_path = NULL; const char* zbench_path = NULL; const char* device_name = "auto";
    ZeloLink link = ZELO_LINK_THURSTONE;
    double lambda = -1, tol = ZELO_DEFAULT_GRAD_TOL;
    int max_iter = ZELO_DEFAULT_MAX_ITER;
    for (int i = 1; i < argc; i++) {
        const char* arg = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(arg, "-o") == 0 && has_value) { out_path = argv[++i]; }
        else if (strcmp(arg, "--format") == 0 && has_value) { format = argv[++i]; }
        else if (strcmp(arg, "--link") == 0 && has_value) {
            if (!zelo_link_parse(&link, argv[++i])) { die("--link must be thurstone or bt, got '%s'", argv[i]); }
        }
        else if (strcmp(arg, "--lambda") == 0 && has_value) { lambda = number_option("--lambda", argv[++i]); if (!(lambda >= 0)) { die("--lambda must be >= 0"); } }
        else if (strcmp(arg, "--tol") == 0 && has_value) { tol = number_option("--tol", argv[++i]); if (!(tol > 0)) { die("--tol must be > 0"); } }
        else if (strcmp(arg, "--max-iter") == 0 && has_value) {
            double m = number_option("--max-iter", argv[++i]);
            if (m < 1 || m > 1e9 || m != floor(m)) { die("--max-iter must be a whole number >= 1"); }
            max_iter = (int)m;
        }
        else if (strcmp(arg, "--cross") == 0 && has_value) { cross_path = argv[++i]; }
        else if (strcmp(arg, "--device") == 0 && has_value) { device_name = argv[++i]; }
        else if (strcmp(arg, "--zbench-annotated") == 0 && has_value) { zbench_path = argv[++i]; }
        else if (arg[0] == '-' && arg[1] != '\0') { usage(); }
        else if (input == NULL) { input = arg; }
        else { usage(); }
    }
    if ((input == NULL) == (zbench_path == NULL)) { usage(); }
    Device device;
    const char* device_err = device_select(&device, device_name);
    if (device_err != NULL) { fprintf(stderr, "zelo_fit: --device '%s': %s\n", device_name, device_err); exit(2); }
    int tsv = 0;
    if (format != NULL) {
        if (strcmp(format, "tsv") == 0) { tsv = 1; }
        else if (strcmp(format, "jsonl") != 0) { die("--format must be jsonl or tsv, got '%s'", format); }
    } else if (out_path != NULL) {
        size_t n = strlen(out_path);
        tsv = n >= 4 && strcmp(out_path + n - 4, ".tsv") == 0;
    }

    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    strtab_init(&ds.queries); strtab_init(&ds.docs); strtab_init(&ds.judges);
    if (input) { for_each_jsonl(input, read_judgment, &ds, NULL); }
    else { for_each_jsonl(zbench_path, read_zbench_line, &ds, NULL); }
    // nothing to fit is an error, not an empty output: it is most often the wrong file, or
    // a judge that wrote nothing
    if (strtab_count(&ds.queries) == 0) {
        die("%s: no judgments (the file is empty or holds only blank lines; nothing written)", input ? input : zbench_path);
    }
    CrossSet cross = { 0 };
    if (input) { for_each_jsonl(input, read_cross, &ds, &cross); }
    cross.only_cross = 1;
    if (cross_path) { for_each_jsonl(cross_path, read_cross, &ds, &cross); }
    int Q = strtab_count(&ds.queries);
    int P = (int)arrlen(ds.pairs);
    int J = (int)arrlen(ds.judgments);

    // p per pair: average per (pair, judge), then the mean of those over judges
    if (J > 0) { qsort(ds.judgments, J, sizeof(Judgment), compare_judgments); } // NULL when none
    double* pair_p = callocCheck(P + 1, sizeof(double));
    for (int i = 0; i < J;) {
        int pair = ds.judgments[i].pair, judges = 0;
        double sum_over_judges = 0.0;
        while (i < J && ds.judgments[i].pair == pair) {
            int judge = ds.judgments[i].judge, count = 0;
            double sum = 0.0;
            for (; i < J && ds.judgments[i].pair == pair && ds.judgments[i].judge == judge; i++) {
                sum += ds.judgments[i].p;
                count++;
            }
            sum_over_judges += sum / count;
            judges++;
        }
        pair_p[pair] = sum_over_judges / judges;
    }

    // the batch: documents and pairs grouped by query (counting sort keeps file order)
    int64_t* doc_start = mallocCheck(sizeof(int64_t) * (Q + 1));
    int64_t* pair_start = callocCheck(Q + 1, sizeof(int64_t));
    doc_start[0] = 0;
    for (int q = 0; q < Q; q++) { doc_start[q + 1] = doc_start[q] + ds.num_docs[q]; }
    for (int i = 0; i < P; i++) { pair_start[ds.pairs[i].query + 1]++; }
    for (int q = 0; q < Q; q++) { pair_start[q + 1] += pair_start[q]; }
    int* fill = mallocCheck(sizeof(int) * (Q + 1));
    for (int q = 0; q < Q; q++) { fill[q] = (int)pair_start[q]; }
    int* pa = mallocCheck(sizeof(int) * (P + 1));
    int* pb = mallocCheck(sizeof(int) * (P + 1));
    double* pp = mallocCheck(sizeof(double) * (P + 1));
    int* pline = mallocCheck(sizeof(int) * (P + 1));
    for (int i = 0; i < P; i++) {
        int j = fill[ds.pairs[i].query]++;
        pa[j] = ds.pairs[i].a; pb[j] = ds.pairs[i].b; pp[j] = pair_p[i]; pline[j] = ds.pairs[i].line;
    }
    ZeloPairs batch = { Q, doc_start, pair_start, pa, pb, pp, NULL };
    ZeloFitConfig cfg;
    zelo_fit_config_default(&cfg, link);
    if (lambda >= 0) { cfg.lambda = lambda; }
    cfg.grad_tol = tol;
    cfg.max_iter = max_iter;
    double* ratings = mallocCheck(sizeof(double) * (doc_start[Q] + 1));
    ZeloFitStatus* status = mallocCheck(sizeof(ZeloFitStatus) * (Q + 1));
    ZeloPairError err;
    int not_converged = device == DEVICE_CUDA ? zelo_fit_ratings_gpu(ratings, status, &err, &batch, &cfg)
                                              : zelo_fit_ratings(ratings, status, &err, &batch, &cfg);
    if (not_converged < 0) {
        const char* path = input ? input : zbench_path;
        if (err.pair >= 0) { die("%s:%d: %s (nothing written)", path, pline[err.pair], err.message); }
        die("%s: %s (nothing written)", path, err.message);
    }

    double* offsets = callocCheck(Q + 1, sizeof(double));
    ZeloCalibrationStatus cal;
    if (!zelo_calibrate_offsets(offsets, &cal, &err, cross.pairs, cross.p, arrlen(cross.pairs), ratings, doc_start, Q, &cfg)) {
        if (err.pair >= 0) { die("%s:%d: %s (nothing written)", cross_path, cross.line[err.pair], err.message); }
        die("%s: %s (nothing written)", cross_path, err.message);
    }

    // all input is valid: write (to a temporary file renamed at the end, so a failing disk
    // never leaves a partial output under the final name)
    AtomicFile af;
    FILE* fp = out_path ? atomicOpen(&af, out_path, "w") : stdout;
    if (tsv) { fprintf(fp, "query_id\tdoc_id\trating\ttarget\n"); }
    for (int g = 0; g < strtab_count(&ds.docs); g++) {
        int q = ds.doc_query[g];
        double e = ratings[doc_start[q] + ds.doc_local[g]];
        double y = zelo_target(e + offsets[q]);
        if (tsv) {
            fprintf(fp, "%s\t%s\t%.17g\t%.17g\n", strtab_get(&ds.queries, q), doc_id_of(&ds, g), e + offsets[q], y);
        } else {
            fprintf(fp, "{\"query_id\": ");
            json_write_string(fp, strtab_get(&ds.queries, q));
            fprintf(fp, ", \"doc_id\": ");
            json_write_string(fp, doc_id_of(&ds, g));
            fprintf(fp, ", \"rating\": %.17g, \"target\": %.17g}\n", e + offsets[q], y);
        }
    }
    if (out_path) {
        atomicCommit(&af);
    } else {
        fflush(stdout);
    }

    fprintf(stderr, "zelo_fit: %d queries, %d documents, %d pairs from %d judgments, link %s, lambda %g, fitted on %s\n",
            Q, strtab_count(&ds.docs), P, J, zelo_link_name(link), cfg.lambda, device_describe(device));
    if (cal.fallback_zero) {
        fprintf(stderr, "zelo_fit: no cross-query judgments: every query offset b = 0 (ratings are not "
                        "comparable across queries)\n");
    } else {
        fprintf(stderr, "zelo_fit: calibrated %d query offsets from %lld cross-query judgments (%d queries "
                        "in none; offset fit %s after %d iterations)\n", Q, (long long)arrlen(cross.pairs), cal.uncovered,
                cal.fit.converged ? "converged" : "NOT CONVERGED", cal.fit.iterations);
    }
    // --lambda 0 where the maximum-likelihood ratings do not exist: fitted with the default
    // prior instead (zelo_loss.h), said here and in the exit status
    int no_optimum = 0;
    for (int q = 0; q < Q; q++) {
        if (status[q].no_optimum == ZELO_OPTIMUM_FINITE) { continue; }
        if (no_optimum++ < 20) {
            fprintf(stderr, "zelo_fit: warning: query \"%s\" has no finite rating optimum with lambda 0: %s; "
                            "fitted with lambda %g instead\n", strtab_get(&ds.queries, q),
                    status[q].no_optimum == ZELO_OPTIMUM_DISCONNECTED
                        ? "its judgments do not connect all its documents, so the offset between the parts is arbitrary"
                        : "some documents beat all the others with certainty (p = 1 or 0 on every pair that links them to the rest), so their ratings go to infinity",
                    status[q].lambda);
        }
    }
    if (cal.fit.no_optimum != ZELO_OPTIMUM_FINITE) {
        fprintf(stderr, "zelo_fit: warning: the query offsets have no finite optimum with lambda 0 (%s); fitted with "
                        "lambda %g instead\n", cal.fit.no_optimum == ZELO_OPTIMUM_DISCONNECTED
                        ? "the cross-query judgments do not connect all queries" : "some queries beat all others with certainty",
                cal.fit.lambda);
        no_optimum++;
    }
    if (no_optimum > 0) {
        fprintf(stderr, "zelo_fit: %d fits had no finite optimum with lambda 0 and took the default prior (output written; "
                        "exit status 3)\n", no_optimum);
    }
    int listed = 0;
    for (int q = 0; q < Q; q++) {
        if (status[q].converged) { continue; }
        if (listed++ < 20) {
            fprintf(stderr, "zelo_fit: warning: query \"%s\" did not converge: |grad| = %.2e after %d iterations\n",
                    strtab_get(&ds.queries, q), status[q].grad_inf, status[q].iterations);
        }
    }
    if (not_converged > 0 || !cal.fit.converged) {
        fprintf(stderr, "zelo_fit: %d queries did not converge (output written; exit status 3)\n", not_converged);
    }

    free(offsets); free(status); free(ratings);
    free(pline); free(pp); free(pb); free(pa); free(fill); free(pair_start); free(doc_start); free(pair_p);
    arrfree(cross.pairs); arrfree(cross.p); arrfree(cross.line);
    arrfree(ds.doc_query); arrfree(ds.doc_local); arrfree(ds.num_docs); arrfree(ds.pairs); arrfree(ds.judgments);
    hmfree(ds.pair_keys);
    strtab_free(&ds.queries); strtab_free(&ds.docs); strtab_free(&ds.judges);
    return (not_converged > 0 || !cal.fit.converged || no_optimum > 0) ? 3 : 0;
}
