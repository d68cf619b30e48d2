/*
 * zelo_loss.h — the zELO mathematics, independent of the model: pair graphs, the rating
 * fit (Thurstone or Bradley–Terry maximum likelihood with a Gaussian prior), calibration
 * across queries, targets, and the training losses with their gradients.
 *
 * Everything is plain structs of flat arrays so that train_zelo, the zelo_fit tool and a
 * later CUDA kernel share one layout: the pairs of all queries sit in one array, query q
 * owning pairs [pair_start[q], pair_start[q+1]) and ratings [doc_start[q], doc_start[q+1]);
 * document indices inside a pair are local to their query (0 .. num_docs-1).
 */
#ifndef ZELO_LOSS_H
#define ZELO_LOSS_H

#include <stdint.h>

// ----------------------------------------------------------------------------
// links: P(a beats b) = F(e_a - e_b)

typedef enum { ZELO_LINK_THURSTONE = 0, ZELO_LINK_BT = 1 } ZeloLink;

// F(x) = ½(1 + erf(x)) (Thurstone) or σ(x) (Bradley–Terry)
double zelo_link_prob(double x, ZeloLink link);
// the name used in files and options ("thurstone", "bt"); zelo_link_parse returns 1 on success
const char* zelo_link_name(ZeloLink link);
int zelo_link_parse(ZeloLink* out, const char* name);

// ----------------------------------------------------------------------------
// random numbers: seeded, reproducible on every platform (splitmix64)

typedef struct { uint64_t state; } ZeloRng;
void zelo_rng_seed(ZeloRng* rng, uint64_t seed);
uint64_t zelo_rng_next(ZeloRng* rng);
double zelo_rng_uniform(ZeloRng* rng);  // [0, 1)
double zelo_rng_normal(ZeloRng* rng);   // N(0, 1)
int zelo_rng_below(ZeloRng* rng, int n); // uniform in [0, n)

// ----------------------------------------------------------------------------
// pair graphs: the union of k/2 random Hamiltonian cycles over n candidates

// the most pairs zelo_pair_graph can return: min(n(n-1)/2, n*k/2)
int64_t zelo_pair_graph_capacity(int n, int k);
// writes the judged pairs (a[i], b[i]), each in a random order, and returns their count.
// k must be even and >= 2. For n <= k+1 the graph is complete. Otherwise each cycle is
// drawn as a random permutation whose edges that repeat an earlier cycle's are removed by
// random 2-opt moves; if that fails within its budget (possible only for n close to k)
// the repeated edges are dropped, so min degree < k, which zelo_graph_stats shows.
int zelo_pair_graph(int* a, int* b, int n, int k, uint64_t seed);

typedef struct {
    int connected;   // 1 if every candidate is reachable from every other
    int min_degree;
    int max_degree;
    int diameter;    // longest shortest path (BFS); -1 when not connected
} ZeloGraphStats;
void zelo_graph_stats(ZeloGraphStats* out, const int* a, const int* b, int num_pairs, int n);

// ----------------------------------------------------------------------------
// the rating fit, per query:
//   minimize  Σ_pairs −[p log F(d) + (1−p) log F(−d)] + (λ/2) Σ e²,  d = e_a − e_b + offset
// by Newton's method (the Hessian, a weighted graph Laplacian + λI, is solved by Jacobi-
// preconditioned conjugate gradients at O(pairs) per product) in double precision, until
// ‖∇‖∞ <= grad_tol. The objective itself is evaluated only where a step must be checked:
// a full step is taken when it halves the gradient or when convexity proves Armijo's
// condition from the new gradient, otherwise an Armijo line search decides. With λ > 0
// the optimum exists and is unique even for hard labels, documents that win every battle
// and disconnected graphs, and it satisfies Σe = 0 by itself; with λ = 0 (prior-free MLE,
// for comparisons only) the ratings are kept centred (gauge Σe = 0).

// The default prior. λ is the precision of a N(0, 1/λ) prior on each rating: 0.1 gives a
// standard deviation of 3.2 Thurstone units, beyond the ±2 where targets ½(1+erf(s))
// saturate, so it never decides an order the judgments support; its curvature is under
// 1% of what the 8 judged pairs of a document bring (≈ 8 × 1.27 at Δ = 0), yet it bounds
// the rating of a document that wins every battle. For Bradley–Terry, whose unit is
// ~2.3 times smaller in probability slope (σ'(0) = 1/4 vs 1/√π), the same strength is
// λ = 0.02.
#define ZELO_DEFAULT_LAMBDA_THURSTONE 0.1
#define ZELO_DEFAULT_LAMBDA_BT 0.02
#define ZELO_DEFAULT_GRAD_TOL 1e-9
#define ZELO_DEFAULT_MAX_ITER 100

typedef struct {
    int num_queries;
    const int64_t* doc_start;   // (Q+1,) ratings of query q: [doc_start[q], doc_start[q+1])
    const int64_t* pair_start;  // (Q+1,) pairs of query q: [pair_start[q], pair_start[q+1])
    const int* a;               // (P,) local index of the first document of each pair
    const int* b;               // (P,) local index of the second document
    const double* p;            // (P,) probability that a beats b, in [0, 1]
    const double* offset;       // (P,) or NULL: P(a beats b) = F(e_a − e_b + offset)
} ZeloPairs;

typedef struct {
    ZeloLink link;
    double lambda;    // prior precision, >= 0
    double grad_tol;  // stop when ‖∇‖∞ <= grad_tol
    int max_iter;     // Newton iterations before giving up (reported, never hidden)
} ZeloFitConfig;

// fills cfg with the defaults for a link
void zelo_fit_config_default(ZeloFitConfig* cfg, ZeloLink link);

typedef struct {
    int converged;     // 1 if ‖∇‖∞ <= grad_tol was reached
    int iterations;    // Newton iterations taken
    int cg_iterations; // conjugate-gradient iterations over all Newton steps
    double grad_inf;   // ‖∇‖∞ at the returned ratings
    double objective;  // the objective at the returned ratings
} ZeloFitStatus;

// the first bad input found, so a tool can name the line it came from
typedef struct {
    int query;          // -1 when the error concerns the whole batch (sizes, config)
    int64_t pair;       // global pair index, -1 when not about one pair
    char message[160];
} ZeloPairError;

// checks sizes, indices (unknown ids, self-pairs), p in [0,1], finite offsets and the config.
// returns 1 if all is well, else 0 with *err filled.
int zelo_pairs_check(ZeloPairError* err, const ZeloPairs* pairs, const ZeloFitConfig* cfg);

// fits every query (OpenMP over queries). ratings: (doc_start[Q],), status: (Q,) or NULL.
// returns the number of queries that did not converge, or -1 if the input is invalid
// (then *err says where, and nothing is written).
int zelo_fit_ratings(double* ratings, ZeloFitStatus* status, ZeloPairError* err,
                     const ZeloPairs* pairs, const ZeloFitConfig* cfg);

// the objective and its gradient for one query (for tests and tools), at ratings e (n,)
double zelo_query_objective(double* grad, const double* e, int n, const int* a, const int* b,
                            const double* p, const double* offset, int num_pairs,
                            ZeloLink link, double lambda);

// ----------------------------------------------------------------------------
// the simulated judge's noise model (the paper's authors' report): the judge draws
// x ~ N(s_a − s_b, 0.2²), applies the link and mixes in 2% uniform noise:
// p = 0.98 F(x) + 0.02 u, u ~ U(0, 1). Returns P(a beats b).
#define ZELO_SIM_JUDGE_SIGMA 0.2
#define ZELO_SIM_JUDGE_UNIFORM 0.02
double zelo_sim_judge_prob(double score_a, double score_b, ZeloLink link, ZeloRng* rng);

// ----------------------------------------------------------------------------
// calibration across queries. Absolute score s_qd = e_qd + b_q. A judge is asked "is d1
// more relevant to q1 than d2 is to q2?" for pairs sampled along random cycles over the
// queries; the offsets b are then fitted by the same likelihood, with the known rating
// difference e_q1d1 − e_q2d2 as each pair's fixed offset.

typedef struct {
    int query_a, doc_a;  // doc_a is local to query_a
    int query_b, doc_b;
} ZeloCrossPair;

// number of cross pairs zelo_cross_query_pairs writes: m per edge of the cycle graph
int64_t zelo_cross_query_capacity(int num_queries, int cycles, int m);
// samples m document pairs along each edge of `cycles` random cycles over the queries
// (the same graph construction as zelo_pair_graph with k = 2*cycles); documents are drawn
// uniformly from each query's num_docs. Returns the count written.
int64_t zelo_cross_query_pairs(ZeloCrossPair* out, int num_queries, const int* num_docs,
                               int cycles, int m, uint64_t seed);

typedef struct {
    int fallback_zero;   // 1 when there were no cross-query judgments: b = 0 everywhere
    int uncovered;       // queries that appear in no cross pair (their b is set by the prior)
    ZeloFitStatus fit;   // the fit of the offsets (a single "query" whose documents are queries)
} ZeloCalibrationStatus;

// offsets: (num_queries,). ratings/doc_start as fitted above; p: (num_cross,) judged
// P(doc_a of query_a beats doc_b of query_b). Returns 1 on success, 0 with *err on bad input.
int zelo_calibrate_offsets(double* offsets, ZeloCalibrationStatus* status, ZeloPairError* err,
                           const ZeloCrossPair* cross, const double* p, int64_t num_cross,
                           const double* ratings, const int64_t* doc_start, int num_queries,
                           const ZeloFitConfig* cfg);

// ----------------------------------------------------------------------------
// targets and training losses. Each returns the loss and writes dloss/dlogit (same shape as
// the logits); every loss is a mean (over items, pairs or queries as said).

// y = ½(1 + erf(s))
double zelo_target(double score);

// the paper's default: mean over i of (½(1 + erf(z_i)) − y_i)²
double zelo_mse_loss(float* dlogits, const float* logits, const float* targets, int n);
// mean binary cross-entropy of the same prediction ½(1 + erf(z)) against soft targets y
double zelo_bce_loss(float* dlogits, const float* logits, const float* targets, int n);
// pairwise Thurstone NLL on the model's own scores: mean over pairs of
// −[p log F(z_a − z_b) + (1−p) log F(z_b − z_a)], F the Thurstone link
double zelo_pairwise_nll_loss(float* dlogits, const float* logits, const int* a, const int* b,
                              const float* p, int num_pairs, int n);
// listwise softmax cross-entropy, mean over groups: group g holds items
// [group_start[g], group_start[g+1]); its target distribution is y normalised to sum 1
double zelo_listwise_loss(float* dlogits, const float* logits, const float* targets,
                          const int* group_start, int num_groups);
// the pairwise model: mean binary cross-entropy of σ(z) against the judged P(a beats b)
double zelo_pairwise_bce_loss(float* dlogits, const float* logits, const float* p, int n);

#endif // ZELO_LOSS_H
