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

#ifdef __cplusplus
extern "C" {
#endif

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
// `want` distinct indices of [0, n) into chosen (want,), one after another, each with probability
// proportional to its weight among those not yet drawn (weights > 0, want <= n); weight (n,) is
// scratch: a drawn index's weight is set to 0
void zelo_rng_draw_weighted(int* chosen, double* weight, int n, int want, ZeloRng* rng);

// ----------------------------------------------------------------------------
// pair graphs: the union of k/2 random Hamiltonian cycles over n candidates

// the most pairs zelo_pair_graph can return: min(n(n-1)/2, n*k/2)
int64_t zelo_pair_graph_capacity(int n, int k);
// writes the judged pairs (a[i], b[i]), each in a random order, and returns their count.
// k must be even and >= 2. For n <= k+1 the graph is complete. Otherwise it is exactly
// k-regular, n·k/2 distinct pairs: each cycle is drawn as a random permutation whose edges
// that repeat an earlier cycle's are removed by random 2-opt moves; if that fails (it can
// for n close to k: at n = k+2 the last cycle must be a Hamiltonian cycle of what the others
// leave, which need not exist) the whole graph is instead k/2 cycles of Walecki's
// decomposition of the complete graph over a random relabelling. Time and memory O(n·k).
int zelo_pair_graph(int* a, int* b, int n, int k, uint64_t seed);

// O(n + pairs): degrees, connectivity, and bounds on the diameter from two breadth-first
// searches (the exact diameter needs a search from every document: zelo_graph_diameter)
typedef struct {
    int connected;    // 1 if every candidate is reachable from every other
    int min_degree;
    int max_degree;
    int diameter_lo;  // diameter_lo <= diameter <= diameter_hi; both -1 when not connected
    int diameter_hi;
} ZeloGraphStats;
void zelo_graph_stats(ZeloGraphStats* out, const int* a, const int* b, int num_pairs, int n);
// the exact diameter (longest shortest path), -1 when not connected: O(n · pairs), for
// small graphs
int zelo_graph_diameter(const int* a, const int* b, int num_pairs, int n);

// ----------------------------------------------------------------------------
// failure mining (the paper's last loop, train_zelo --rounds): after a round of training the
// reranker scores a wider pool of each training query's first-stage documents, and the
// battles of the next round go where it fails: documents it ranks high that no battle has
// seen, and pairs it orders against the fitted ratings.

// the documents a query takes in: of n scored documents (the query's n_old current ones
// first, then pool documents it does not have), the new ones among the `cut` highest scores,
// best first, at most max_new; equal scores go by index. Writes their indices (>= n_old) to
// picked and returns their count.
int zelo_mine_documents(int* picked /* (max_new,) */, const float* scores /* (n,) */, int n, int n_old,
                        int cut, int max_new);

// the most pairs zelo_mine_pairs writes
int64_t zelo_mine_pairs_capacity(int n_old, int n_new, int k, int max_disagree);

// the new battles of one query whose n_old current documents have fitted ratings and judged
// pairs (old_a, old_b), and to which n_new documents are appended (local indices n_old ..
// n_old + n_new - 1); scores: the model's, of all n_old + n_new. First, up to max_disagree
// pairs of current documents, never judged, that the scores order against the ratings, the
// widest rating gap first (equal gaps by the pair's indices); then each new document against k
// opponents drawn uniformly from the query's other documents (all of them where there are no
// more than k), no pair twice. Each pair is written in a random order (which is shown first).
// Returns the count written.
int zelo_mine_pairs(int* a, int* b, const float* scores, const float* ratings /* (n_old,) */, int n_old,
                    int n_new, const int* old_a, const int* old_b, int64_t n_old_pairs, int k, int max_disagree,
                    uint64_t seed);

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
// for comparisons only) the ratings are kept centred (gauge Σe = 0), and a query whose MLE
// does not exist (ZeloOptimum below: checked in O(n + pairs) by searches over its pairs)
// is fitted with the link's default λ instead, which its status says (no_optimum, lambda)
// so that a tool can warn: the alternative, letting the ratings drift until the gradient
// falls under the tolerance, returned arbitrary ratings as "converged".

// The default prior. λ is the precision of a N(0, 1/λ) prior on each rating. Its job is to
// make the optimum finite and unique where the judgments alone do not (a document that wins
// every battle, a strict order, a disconnected graph); its price is that it pulls every
// rating toward 0, by about λ / (λ + μ), where μ is what the judgments say about how far
// apart documents are: the curvature of the pair terms, which is small for near-certain
// judgments, i.e. exactly for well-separated documents. So it shrinks more than its
// standard deviation suggests. Measured (dev/gen_zelo_shrinkage.py, scipy; test_zelo
// checks the same on this code), Thurstone, n = 100, k = 8, hidden ratings N(0, 1) judged
// exactly (p = F(Δ)): the slope of fitted on hidden ratings is 0.890 at λ = 0.1 (the
// default until this was measured), 0.932 at 0.05, 0.965 at 0.02, 0.978 at 0.01; the
// calibration offsets (60 queries) 0.928 at 0.1, 0.990 at 0.01. The default is λ = 0.01:
// about 2% shrinkage, while a document that wins all its 8 battles with certainty keeps a
// finite rating near the top (test_zelo's example: 2.79, the best other document 2.66;
// λ = 0.001 would shrink 0.2% less but put it at 3.33). A judge less sure than the model compresses further by itself: with
// the sim judge's noise (N(Δ, 0.2²) and 2% uniform) the slope is 0.835 at λ = 0, 0.829 at
// λ = 0.01 and 0.787 at λ = 0.1 (calibration: 0.823 at 0.01, 0.790 at 0.1); that part is
// the judge's, no λ undoes it. For Bradley–Terry, whose unit is ~2.26 times wider
// (σ'(0) = 1/4 vs 1/√π), the same strength is λ/2.26² ≈ λ/5: 0.002.
#define ZELO_DEFAULT_LAMBDA_THURSTONE 0.01
#define ZELO_DEFAULT_LAMBDA_BT 0.002
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

// why the prior-free fit (λ = 0) of a query has no finite, unique optimum
typedef enum {
    ZELO_OPTIMUM_FINITE = 0,        // it has one (always so with λ > 0)
    ZELO_OPTIMUM_DISCONNECTED = 1,  // the pairs do not connect all documents (a document in
                                    // no pair included): the offset between parts is arbitrary
    ZELO_OPTIMUM_AT_INFINITY = 2,   // connected, but the "beats" graph (a→b where p > 0, b→a
                                    // where p < 1) is not strongly connected: some documents
                                    // beat all the others with certainty, e.g. a document
                                    // that wins every battle or a strict total order
} ZeloOptimum;

typedef struct {
    int converged;     // 1 if ‖∇‖∞ <= grad_tol was reached
    int iterations;    // Newton iterations taken
    int cg_iterations; // conjugate-gradient iterations over all Newton steps
    double grad_inf;   // ‖∇‖∞ at the returned ratings
    double objective;  // the objective at the returned ratings
    ZeloOptimum no_optimum;  // FINITE, or why λ = 0 had no optimum: then the query was fitted
                             // with the link's default prior instead
    double lambda;     // the prior precision the query was fitted with
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

// what zelo_fit_ratings finds before it fits a query with λ = 0: whether the query's
// prior-free optimum exists (ZeloOptimum), by searches over its pairs, O(n + pairs), OpenMP
// over queries. out: (Q,). For the GPU fit (kernels/zelo_fit.cuh), which leaves it to the host.
void zelo_query_optima(ZeloOptimum* out, const ZeloPairs* pairs);

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

// ----------------------------------------------------------------------------
// the score head's linear probe (train.c's --head-fit): ridge regression with an intercept.
// w (d,) and *bias minimise  sum_i (x_i . w + bias - y_i)^2 + alpha * s * |w|^2, where x_i is
// row i of X (n, d) and s = tr(Xc^T Xc) / d, Xc being X with its column means removed: alpha is
// relative to the features' mean variance, so it means the same whatever their scale. The bias
// is not penalised. Returns 1, or 0 when the system is singular (alpha 0 with collinear or
// constant features), leaving w and *bias untouched.
int zelo_ridge_fit(double* w, double* bias, const float* X, const double* y, int n, int d, double alpha);

// the cosine head's scale (train.c's cosine_scale_fit): the k in [ZELO_SCALE_FIT_MIN,
// ZELO_SCALE_FIT_MAX] that minimises zelo_pairwise_nll_loss of the scores k x[0..n) on the pairs
// (a, b) with probabilities p. That loss is convex in k (−log F is convex and k x_a − k x_b is
// linear in k), so a golden-section search over log k finds its minimum, to a relative 1e-8 in
// k. *loss: the loss there. n: the length of x, which the pairs index. A result at either end of the range means the minimum lies beyond it
// (or, with every x_a = x_b, that the loss does not depend on k).
#define ZELO_SCALE_FIT_MIN 1e-3
#define ZELO_SCALE_FIT_MAX 1e4
double zelo_pair_scale_fit(double* loss, const float* x, int n, const int* a, const int* b, const float* p, int num_pairs);
// the loss that zelo_pair_scale_fit minimises, at scale k: zelo_pairwise_nll_loss of k x
double zelo_pair_scale_loss(double k, const float* x, const int* a, const int* b, const float* p, int num_pairs);

#ifdef __cplusplus
}
#endif

#endif // ZELO_LOSS_H
