/*
 * io/metrics.h — ranking quality measures computed exactly as trec_eval computes them
 * (checked against pytrec_eval-terrier 0.5.11, which bundles trec_eval 9.0.x), and the
 * TREC text files they are usually exchanged in: runs (`qid Q0 docid rank score tag`) and
 * qrels (`qid iter docid grade`).
 *
 * The trec_eval conventions followed here, each one checked by the fixture of
 * test/test_metrics.c (dev/gen_metrics_fixture.py):
 * - a ranking is ordered by score descending, and documents with equal scores by document
 *   id in DESCENDING byte order (strcmp); the rank column of a run file is ignored;
 * - scores are compared in single precision: trec_eval keeps each score in a float (it reads
 *   the text as a double, then stores it in a float), so two scores that round to the same
 *   float are a tie, broken by document id. Scores are floats here for that reason, and the
 *   run reader rounds text the same way, through a double;
 * - a document is relevant when its grade is >= 1; the gain of a document is its grade when
 *   that is positive and 0 otherwise (judged non-relevant, unjudged, or a negative grade,
 *   which trec_eval reads as "in the pool but not judged");
 * - NDCG@10 discounts the gain at rank r by log2(r + 1), and the ideal ranking is built from
 *   every judged document of the query, retrieved or not (old trec_eval releases left rank 2
 *   undiscounted, dividing by log2(r) from rank 2 on: their figures differ from these);
 * - a document id appearing twice in one query's ranking or qrels is an error (trec_eval
 *   stops with "duplicate docs"; a dictionary-based pytrec_eval cannot even express it).
 * Our own decisions, where trec_eval has none or one we do not want:
 * - MRR@10 is trec_eval's recip_rank cut at 10: 1/r for the first relevant document at rank
 *   r <= 10, else 0 (MS MARCO's definition). recip_rank itself (no cut) is reported too.
 * - a query that has qrels but no ranking is scored 0 on every measure, as `trec_eval -c`
 *   does (plain trec_eval and pytrec_eval leave it out, which flatters a run that skips
 *   hard queries);
 * - metrics_mean averages over the queries that have at least one relevant document.
 *   trec_eval would add a 0 for a query without any: every measure is 0/0 there, and
 *   averaging in zeros would make a perfect ranker score below 1.
 */
#ifndef ZELO_METRICS_H
#define ZELO_METRICS_H

#include <stdio.h>

// cut-offs of the measures below, fixed because they are the ones the project reports
#define METRICS_NDCG_CUT 10
#define METRICS_RECALL_CUT 100
#define METRICS_MRR_CUT 10
#define METRICS_MAP_CUT 100
#define METRICS_PRECISION_CUT 10

typedef struct {
    double ndcg_at_10;       // trec_eval ndcg_cut_10
    double recall_at_100;    // trec_eval recall_100: relevant in the top 100 / all relevant
    double mrr_at_10;        // recip_rank cut at 10 (see above)
    double recip_rank;       // trec_eval recip_rank: 1/rank of the first relevant document
    double map_at_100;       // trec_eval map_cut_100
    double precision_at_10;  // trec_eval P_10: relevant in the top 10 / 10
    int num_rel;             // judged documents with grade >= 1 (in a mean: the sum)
    int num_ret;             // documents in the ranking (in a mean: the sum)
} MetricScores;

// Scores one query. The ranking is given in any order (it is sorted here, trec_eval's way).
// qid only names the query in error messages. Dies on a NaN score or a document id
// repeated in the ranking or in the qrels.
void metrics_eval_query(MetricScores* out, const char* qid,
                        const char* const* ranked_doc_ids, const float* scores, int n_ranked,
                        const char* const* qrel_doc_ids, const int* qrel_grades, int n_qrels);

// NDCG at `cut` of the order of scores[0..n) (descending, equal scores by index ascending)
// where document j's gain is gains[j] >= 0, any real number: a judge's graded preference
// rather than a human grade (train_zelo's fusion fit). Linear gains, the discount log2(r + 1)
// at rank r, the ideal order of the same n gains. -1 when every gain is 0 (nothing to find).
double metrics_ndcg_gains(const float* scores, const double* gains, int n, int cut);

// Mean of every measure over the queries with num_rel > 0; num_rel and num_ret of the mean
// are sums over those queries, as in trec_eval's "all" line. Returns how many queries were
// averaged (0 leaves every field of *mean at 0).
int metrics_mean(MetricScores* mean, const MetricScores* per_query, int n_queries);

// A run file in memory. Queries are sorted by qid and each query's entries by document id
// (strcmp order), whatever the order of the lines in the file.
typedef struct {
    char* text;          // the file's bytes; every string below points into it
    int num_queries;
    char** qids;         // (num_queries)
    int* offsets;        // (num_queries + 1) query q owns entries offsets[q] .. offsets[q+1]-1
    char** doc_ids;      // (offsets[num_queries])
    float* scores;       // (offsets[num_queries]) rounded as trec_eval rounds them (see above)
} TrecRun;

// A qrels file in memory, laid out as TrecRun.
typedef struct {
    char* text;
    int num_queries;
    char** qids;         // (num_queries)
    int* offsets;        // (num_queries + 1)
    char** doc_ids;      // (offsets[num_queries])
    int* grades;         // (offsets[num_queries])
} TrecQrels;

// Readers of whitespace-separated TREC files. A malformed line (wrong number of fields, a
// score or rank or grade that is not a number, a NaN score), a document repeated within a
// query, or a file without any entry stops the program with the file and line.
void metrics_read_trec_run(TrecRun* run, const char* path);
void metrics_read_trec_qrels(TrecQrels* qrels, const char* path);
void trec_run_free(TrecRun* run);
void trec_qrels_free(TrecQrels* qrels);

// Writes one query's ranking as `qid Q0 docid rank score tag` lines, sorted and ranked in
// trec_eval's order so that the rank column agrees with what trec_eval computes. Scores are
// printed with 9 significant digits, which read back to the very same float: a ranking
// evaluates the same from the file as from memory. Dies on a NaN score, a repeated
// document id, or an id or tag that is empty or holds whitespace (the format could not
// carry it).
void metrics_write_trec_run(FILE* fp, const char* qid, const char* const* doc_ids,
                            const float* scores, int n, const char* tag);

// Scores every query of the qrels against the run: per_query (qrels->num_queries) in the
// qrels' order. A qrels query absent from the run scores 0 (see above). Returns the number
// of run queries that have no qrels, which are left out as trec_eval leaves them out.
int metrics_eval_run(MetricScores* per_query, const TrecRun* run, const TrecQrels* qrels);

#endif // ZELO_METRICS_H
