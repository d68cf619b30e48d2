/*
 * io/metrics.c — trec_eval's ranking measures and the TREC run / qrels files; the conventions
 * and the decisions are listed in io/metrics.h.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>

#include "io/metrics.h"
#include "common/utils.h"

// ----------------------------------------------------------------------------
// ordering a ranking

typedef struct {
    const char* doc_id;
    float score;
    int grade;  // the qrels grade; 0 when the document is not judged
} RankedDoc;

static int compare_doc_ids(const void* a, const void* b) {
    return strcmp(((const RankedDoc*)a)->doc_id, ((const RankedDoc*)b)->doc_id);
}

// trec_eval's order: score descending, ties by document id descending. The id breaks every
// tie, so the order is total and qsort's instability cannot show.
static int compare_trec_order(const void* a, const void* b) {
    const RankedDoc* x = (const RankedDoc*)a;
    const RankedDoc* y = (const RankedDoc*)b;
    if (x->score > y->score) { return -1; }
    if (x->score < y->score) { return 1; }
    return strcmp(y->doc_id, x->doc_id);
}

// sorts docs (n) by id and stops on the first id that appears twice
static void sort_unique_doc_ids(RankedDoc* docs, int n, const char* qid, const char* where) {
    qsort(docs, (size_t)n, sizeof(RankedDoc), compare_doc_ids);
    for (int i = 1; i < n; i++) {
        if (strcmp(docs[i].doc_id, docs[i - 1].doc_id) == 0) {
            die("query '%s': document '%s' appears twice in the %s", qid, docs[i].doc_id, where);
        }
    }
}

static int compare_ints_descending(const void* a, const void* b) {
    int x = *(const int*)a;
    int y = *(const int*)b;
    return (x < y) - (x > y);
}

// ----------------------------------------------------------------------------
// measures

void metrics_eval_query(MetricScores* out, const char* qid,
                        const char* const* ranked_doc_ids, const float* scores, int n_ranked,
                        const char* const* qrel_doc_ids, const int* qrel_grades, int n_qrels) {
    RankedDoc* ranked = (RankedDoc*)mallocCheck((size_t)n_ranked * sizeof(RankedDoc));  // (n_ranked)
    for (int i = 0; i < n_ranked; i++) {
        if (isnan(scores[i])) {
            die("query '%s': document '%s' has a NaN score", qid, ranked_doc_ids[i]);
        }
        ranked[i] = (RankedDoc){ ranked_doc_ids[i], scores[i], 0 };
    }
    RankedDoc* judged = (RankedDoc*)mallocCheck((size_t)n_qrels * sizeof(RankedDoc));  // (n_qrels)
    for (int i = 0; i < n_qrels; i++) {
        judged[i] = (RankedDoc){ qrel_doc_ids[i], 0.0f, qrel_grades[i] };
    }

    // both lists sorted by id: duplicates become neighbours and the grades join in one pass
    sort_unique_doc_ids(ranked, n_ranked, qid, "ranking");
    sort_unique_doc_ids(judged, n_qrels, qid, "qrels");
    for (int i = 0, j = 0; i < n_ranked; i++) {
        while (j < n_qrels && strcmp(judged[j].doc_id, ranked[i].doc_id) < 0) { j++; }
        if (j < n_qrels && strcmp(judged[j].doc_id, ranked[i].doc_id) == 0) {
            ranked[i].grade = judged[j].grade;
        }
    }
    qsort(ranked, (size_t)n_ranked, sizeof(RankedDoc), compare_trec_order);

    // the ideal ranking: every positive grade of the qrels, best first
    int* ideal_gains = (int*)mallocCheck((size_t)n_qrels * sizeof(int));  // (n_qrels), num_rel used
    int num_rel = 0;
    for (int i = 0; i < n_qrels; i++) {
        if (judged[i].grade >= 1) { ideal_gains[num_rel++] = judged[i].grade; }
    }
    qsort(ideal_gains, (size_t)num_rel, sizeof(int), compare_ints_descending);

    double dcg = 0.0, ideal_dcg = 0.0;
    for (int i = 0; i < METRICS_NDCG_CUT && i < n_ranked; i++) {
        if (ranked[i].grade > 0) { dcg += ranked[i].grade / log2((double)(i + 2)); }
    }
    for (int i = 0; i < METRICS_NDCG_CUT && i < num_rel; i++) {
        ideal_dcg += ideal_gains[i] / log2((double)(i + 2));
    }

    int first_relevant_rank = 0;  // 0: none retrieved
    int rel_in_recall_cut = 0, rel_in_precision_cut = 0, rel_so_far = 0;
    double precision_sum = 0.0;  // sum of precision at the rank of each relevant doc <= the map cut
    for (int i = 0; i < n_ranked; i++) {
        if (ranked[i].grade < 1) { continue; }
        int rank = i + 1;
        rel_so_far++;
        if (first_relevant_rank == 0) { first_relevant_rank = rank; }
        if (rank <= METRICS_RECALL_CUT) { rel_in_recall_cut++; }
        if (rank <= METRICS_PRECISION_CUT) { rel_in_precision_cut++; }
        if (rank <= METRICS_MAP_CUT) { precision_sum += (double)rel_so_far / rank; }
    }

    // every "no relevant document" case is 0, as trec_eval reports it
    out->ndcg_at_10 = ideal_dcg > 0.0 ? dcg / ideal_dcg : 0.0;
    out->recall_at_100 = num_rel > 0 ? (double)rel_in_recall_cut / num_rel : 0.0;
    out->recip_rank = first_relevant_rank > 0 ? 1.0 / first_relevant_rank : 0.0;
    out->mrr_at_10 = first_relevant_rank > 0 && first_relevant_rank <= METRICS_MRR_CUT
                   ? 1.0 / first_relevant_rank : 0.0;
    out->map_at_100 = num_rel > 0 ? precision_sum / num_rel : 0.0;
    out->precision_at_10 = (double)rel_in_precision_cut / METRICS_PRECISION_CUT;
    out->num_rel = num_rel;
    out->num_ret = n_ranked;

    free(ideal_gains);
    free(judged);
    free(ranked);
}

int metrics_mean(MetricScores* mean, const MetricScores* per_query, int n_queries) {
    MetricScores sum = {0};
    int n_averaged = 0;
    for (int q = 0; q < n_queries; q++) {
        const MetricScores* s = &per_query[q];
        if (s->num_rel == 0) { continue; }
        sum.ndcg_at_10 += s->ndcg_at_10;
        sum.recall_at_100 += s->recall_at_100;
        sum.mrr_at_10 += s->mrr_at_10;
        sum.recip_rank += s->recip_rank;
        sum.map_at_100 += s->map_at_100;
        sum.precision_at_10 += s->precision_at_10;
        sum.num_rel += s->num_rel;
        sum.num_ret += s->num_ret;
        n_averaged++;
    }
    if (n_averaged > 0) {
        sum.ndcg_at_10 /= n_averaged;
        sum.recall_at_100 /= n_averaged;
        sum.mrr_at_10 /= n_averaged;
        sum.recip_rank /= n_averaged;
        sum.map_at_100 /= n_averaged;
        sum.precision_at_10 /= n_averaged;
    }
    *mean = sum;
    return n_averaged;
}

int metrics_eval_run(MetricScores* per_query, const TrecRun* run, const TrecQrels* qrels) {
    // both sides are sorted by qid, so one merge pass pairs them
    int r = 0, run_only = 0;
    for (int q = 0; q < qrels->num_queries; q++) {
        const char* qid = qrels->qids[q];
        while (r < run->num_queries && strcmp(run->qids[r], qid) < 0) { r++; run_only++; }
        int begin = 0, end = 0;  // an empty ranking when the run lacks the query
        if (r < run->num_queries && strcmp(run->qids[r], qid) == 0) {
            begin = run->offsets[r];
            end = run->offsets[r + 1];
            r++;
        }
        int qb = qrels->offsets[q];
        metrics_eval_query(&per_query[q], qid,
                           (const char* const*)run->doc_ids + begin, run->scores + begin, end - begin,
                           (const char* const*)qrels->doc_ids + qb, qrels->grades + qb,
                           qrels->offsets[q + 1] - qb);
    }
    return run_only + (run->num_queries - r);
}

// ----------------------------------------------------------------------------
// TREC files

typedef struct {
    char* qid;
    char* doc_id;
    double value;  // the score of a run line (already rounded to float), the grade of a qrels line
    long line;
} TrecLine;

static int compare_trec_lines(const void* a, const void* b) {
    const TrecLine* x = (const TrecLine*)a;
    const TrecLine* y = (const TrecLine*)b;
    int c = strcmp(x->qid, y->qid);
    if (c == 0) { c = strcmp(x->doc_id, y->doc_id); }
    if (c == 0) { c = (x->line > y->line) - (x->line < y->line); }
    return c;
}

static int is_field_separator(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Splits the file's text in place into lines of whitespace-separated fields, keeps qid,
// doc id and value (the score of a run, the grade of qrels), and sorts them by qid, then doc
// id, so that each query is contiguous and a repeated document sits next to its twin.
// Returns the lines (*num_lines; an stb_ds array); blank lines are skipped.
static TrecLine* parse_trec_lines(int* num_lines, char* text, size_t len, const char* path, int is_run) {
    if (memchr(text, '\0', len) != NULL) {
        die("%s: contains a NUL byte: not a text %s file", path, is_run ? "run" : "qrels");
    }
    const int want_fields = is_run ? 6 : 4;
    const char* format = is_run ? "'qid Q0 docid rank score tag'" : "'qid iter docid grade'";
    int n = 0;
    TrecLine* lines = NULL;
    char* p = text;
    for (long line = 1; *p != '\0'; line++) {
        char* fields[6];
        int nf = 0;
        // walk one line, cutting its fields with NULs
        while (*p != '\0' && *p != '\n') {
            if (is_field_separator(*p)) { *p++ = '\0'; continue; }
            if (nf < want_fields) { fields[nf] = p; }
            nf++;
            while (*p != '\0' && *p != '\n' && !is_field_separator(*p)) { p++; }
        }
        if (*p == '\n') { *p++ = '\0'; }
        if (nf == 0) { continue; }
        if (nf != want_fields) {
            die("%s:%ld: expected %d fields %s, found %d", path, line, want_fields, format, nf);
        }
        TrecLine tl = { fields[0], fields[2], 0.0, line };
        char* end;
        if (is_run) {
            errno = 0;
            // trec_eval ignores the rank column; it is only checked for form, since a rank
            // that is not an integer means the columns are not the ones we think
            strtol(fields[3], &end, 10);
            if (*end != '\0' || errno == ERANGE) {
                die("%s:%ld: rank '%s' is not an integer", path, line, fields[3]);
            }
            // text to double to float, as trec_eval's atof and float field do: straight
            // strtof could round some long decimals to the neighbouring float
            double score = strtod(fields[4], &end);
            if (*end != '\0') { die("%s:%ld: score '%s' is not a number", path, line, fields[4]); }
            if (isnan(score)) { die("%s:%ld: score is NaN", path, line); }
            tl.value = (float)score;
        } else {
            errno = 0;
            long grade = strtol(fields[3], &end, 10);
            if (*end != '\0' || errno == ERANGE || grade < INT_MIN || grade > INT_MAX) {
                die("%s:%ld: grade '%s' is not an integer", path, line, fields[3]);
            }
            tl.value = (double)grade;
        }
        if (n == INT_MAX) { die("%s: more than %d entries", path, INT_MAX); }
        arrput(lines, tl);
        n++;
    }
    if (n == 0) { die("%s: no entries: an empty %s file", path, is_run ? "run" : "qrels"); }

    qsort(lines, (size_t)n, sizeof(TrecLine), compare_trec_lines);
    for (int i = 1; i < n; i++) {
        if (strcmp(lines[i].qid, lines[i - 1].qid) == 0 && strcmp(lines[i].doc_id, lines[i - 1].doc_id) == 0) {
            die("%s:%ld: document '%s' appears twice for query '%s' (first on line %ld)",
                path, lines[i].line, lines[i].doc_id, lines[i].qid, lines[i - 1].line);
        }
    }
    *num_lines = n;
    return lines;
}

// fills the per-query index from sorted lines: qids (num_queries), offsets (num_queries + 1)
static void index_trec_queries(int* num_queries, char*** qids, int** offsets, const TrecLine* lines, int n) {
    int nq = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(lines[i].qid, lines[i - 1].qid) != 0) { nq++; }
    }
    *qids = (char**)mallocCheck((size_t)nq * sizeof(char*));
    *offsets = (int*)mallocCheck((size_t)(nq + 1) * sizeof(int));
    int q = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(lines[i].qid, lines[i - 1].qid) != 0) {
            (*qids)[q] = lines[i].qid;
            (*offsets)[q] = i;
            q++;
        }
    }
    (*offsets)[nq] = n;
    *num_queries = nq;
}

void metrics_read_trec_run(TrecRun* run, const char* path) {
    size_t len;
    run->text = readFileCheck(path, &len);
    int n;
    TrecLine* lines = parse_trec_lines(&n, run->text, len, path, 1);
    index_trec_queries(&run->num_queries, &run->qids, &run->offsets, lines, n);
    run->doc_ids = (char**)mallocCheck((size_t)n * sizeof(char*));
    run->scores = (float*)mallocCheck((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) {
        run->doc_ids[i] = lines[i].doc_id;
        run->scores[i] = (float)lines[i].value;  // exact: the value is a float already
    }
    arrfree(lines);
}

void metrics_read_trec_qrels(TrecQrels* qrels, const char* path) {
    size_t len;
    qrels->text = readFileCheck(path, &len);
    int n;
    TrecLine* lines = parse_trec_lines(&n, qrels->text, len, path, 0);
    index_trec_queries(&qrels->num_queries, &qrels->qids, &qrels->offsets, lines, n);
    qrels->doc_ids = (char**)mallocCheck((size_t)n * sizeof(char*));
    qrels->grades = (int*)mallocCheck((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        qrels->doc_ids[i] = lines[i].doc_id;
        qrels->grades[i] = (int)lines[i].value;  // exact: parsed as an int-range integer
    }
    arrfree(lines);
}

void trec_run_free(TrecRun* run) {
    free(run->text);
    free(run->qids);
    free(run->offsets);
    free(run->doc_ids);
    free(run->scores);
}

void trec_qrels_free(TrecQrels* qrels) {
    free(qrels->text);
    free(qrels->qids);
    free(qrels->offsets);
    free(qrels->doc_ids);
    free(qrels->grades);
}

// a field of a TREC line must be non-empty and free of whitespace, or the line misparses
static int is_trec_field(const char* s) {
    if (*s == '\0') { return 0; }
    for (; *s != '\0'; s++) {
        if (is_field_separator(*s) || *s == '\n') { return 0; }
    }
    return 1;
}

void metrics_write_trec_run(FILE* fp, const char* qid, const char* const* doc_ids,
                            const float* scores, int n, const char* tag) {
    if (!is_trec_field(qid)) { die("query id '%s' is empty or holds whitespace: cannot be written to a run file", qid); }
    if (!is_trec_field(tag)) { die("run tag '%s' is empty or holds whitespace: cannot be written to a run file", tag); }
    RankedDoc* docs = (RankedDoc*)mallocCheck((size_t)n * sizeof(RankedDoc));  // (n)
    for (int i = 0; i < n; i++) {
        if (!is_trec_field(doc_ids[i])) {
            die("query '%s': document id '%s' is empty or holds whitespace: cannot be written to a run file",
                qid, doc_ids[i]);
        }
        if (isnan(scores[i])) { die("query '%s': document '%s' has a NaN score", qid, doc_ids[i]); }
        docs[i] = (RankedDoc){ doc_ids[i], scores[i], 0 };
    }
    sort_unique_doc_ids(docs, n, qid, "ranking to write");
    qsort(docs, (size_t)n, sizeof(RankedDoc), compare_trec_order);
    for (int i = 0; i < n; i++) {
        // %.9g is the shortest fixed precision that reads back to the same float
        if (fprintf(fp, "%s Q0 %s %d %.9g %s\n", qid, docs[i].doc_id, i + 1, docs[i].score, tag) < 0) {
            die("writing the run of query '%s' failed: %s", qid, strerror(errno));
        }
    }
    free(docs);
}

typedef struct { int index; double key; } Keyed;

// key descending, then index ascending
static int by_key_desc(const void* x, const void* y) {
    const Keyed* a = (const Keyed*)x;
    const Keyed* b = (const Keyed*)y;
    if (a->key != b->key) { return a->key > b->key ? -1 : 1; }
    return a->index - b->index;
}

double metrics_ndcg_gains(const float* scores, const double* gains, int n, int cut) {
    Keyed* order = (Keyed*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(Keyed));
    double ideal = 0.0, dcg = 0.0;
    for (int j = 0; j < n; j++) { order[j] = (Keyed){ j, gains[j] }; }
    qsort(order, (size_t)n, sizeof(Keyed), by_key_desc);
    for (int r = 0; r < n && r < cut; r++) { ideal += order[r].key / log2(r + 2.0); }
    for (int j = 0; j < n; j++) { order[j] = (Keyed){ j, scores[j] }; }
    qsort(order, (size_t)n, sizeof(Keyed), by_key_desc);
    for (int r = 0; r < n && r < cut; r++) { dcg += gains[order[r].index] / log2(r + 2.0); }
    free(order);
    return ideal > 0.0 ? dcg / ideal : -1.0;
}
