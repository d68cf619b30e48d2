/*
 * zelo_loss.c — the zELO mathematics (see zelo_loss.h for the contract).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "utils.h"
#include "zelo_loss.h"

#define INV_SQRT_PI 0.56418958354775628695  // 1/√π
#define TWO_INV_SQRT_PI 1.12837916709551257390  // 2/√π

// ----------------------------------------------------------------------------
// links

double zelo_link_prob(double x, ZeloLink link) {
    if (link == ZELO_LINK_BT) {
        // two branches so that exp never overflows
        if (x >= 0) { return 1.0 / (1.0 + exp(-x)); }
        double z = exp(x);
        return z / (1.0 + z);
    }
    // ½ erfc(−x) keeps full relative precision in the lower tail, where ½(1 + erf(x)) cancels
    return 0.5 * erfc(-x);
}

const char* zelo_link_name(ZeloLink link) {
    return link == ZELO_LINK_BT ? "bt" : "thurstone";
}

int zelo_link_parse(ZeloLink* out, const char* name) {
    if (strcmp(name, "thurstone") == 0) { *out = ZELO_LINK_THURSTONE; return 1; }
    if (strcmp(name, "bt") == 0) { *out = ZELO_LINK_BT; return 1; }
    return 0;
}

// ----------------------------------------------------------------------------
// random numbers

void zelo_rng_seed(ZeloRng* rng, uint64_t seed) {
    rng->state = seed;
}

uint64_t zelo_rng_next(ZeloRng* rng) {
    // splitmix64: one add and a strong bit mix per draw; any seed (0 included) is fine
    rng->state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng->state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double zelo_rng_uniform(ZeloRng* rng) {
    return (double)(zelo_rng_next(rng) >> 11) * 0x1.0p-53;
}

double zelo_rng_normal(ZeloRng* rng) {
    // Box–Muller; 1 − u lies in (0, 1], so the log is finite
    double u1 = 1.0 - zelo_rng_uniform(rng);
    double u2 = zelo_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.28318530717958647692 * u2);
}

int zelo_rng_below(ZeloRng* rng, int n) {
    // multiply-shift on the top 32 bits: bias below 2^-32 · n, irrelevant here
    return (int)(((zelo_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

// ----------------------------------------------------------------------------
// pair graphs

int64_t zelo_pair_graph_capacity(int n, int k) {
    if (n < 2) { return 0; }
    int64_t complete = (int64_t)n * (n - 1) / 2;
    int64_t regular = (int64_t)n * k / 2;
    return complete < regular ? complete : regular;
}

// adjacency as an n×n bit matrix: the 2-opt repair asks "is this edge taken?" many times
typedef struct { uint64_t* bits; int n; } EdgeSet;

static int edge_has(const EdgeSet* s, int u, int v) {
    uint64_t i = (uint64_t)u * (uint64_t)s->n + (uint64_t)v;
    return (int)((s->bits[i >> 6] >> (i & 63)) & 1);
}

static void edge_add(EdgeSet* s, int u, int v) {
    uint64_t i = (uint64_t)u * (uint64_t)s->n + (uint64_t)v;
    uint64_t j = (uint64_t)v * (uint64_t)s->n + (uint64_t)u;
    s->bits[i >> 6] |= 1ull << (i & 63);
    s->bits[j >> 6] |= 1ull << (j & 63);
}

static int count_repeated_edges(const int* cycle, int n, const EdgeSet* taken) {
    int bad = 0;
    for (int i = 0; i < n; i++) { bad += edge_has(taken, cycle[i], cycle[(i + 1) % n]); }
    return bad;
}

// Turns a random permutation into a Hamiltonian cycle that uses no taken edge. Each move is
// a 2-opt: for a repeated edge i and another edge j (not touching it), reversing the path
// between them swaps edges (c_i,c_i+1),(c_j,c_j+1) for (c_i,c_j),(c_i+1,c_j+1); a move is
// made only if both new edges are free, so the number of repeated edges never grows.
static int repair_cycle(int* cycle, int n, const EdgeSet* taken, ZeloRng* rng) {
    int bad = count_repeated_edges(cycle, n, taken);
    for (int step = 0; bad > 0 && step < 200 * n; step++) {
        int i = zelo_rng_below(rng, n);
        if (!edge_has(taken, cycle[i], cycle[(i + 1) % n])) { continue; }
        int j = zelo_rng_below(rng, n);
        if (j == i || j == (i + 1) % n || i == (j + 1) % n) { continue; }
        int lo = i < j ? i : j, hi = i < j ? j : i;
        int u1 = cycle[lo], v1 = cycle[lo + 1], u2 = cycle[hi], v2 = cycle[(hi + 1) % n];
        if (edge_has(taken, u1, u2) || edge_has(taken, v1, v2)) { continue; }
        for (int x = lo + 1, y = hi; x < y; x++, y--) {
            int tmp = cycle[x]; cycle[x] = cycle[y]; cycle[y] = tmp;
        }
        bad = count_repeated_edges(cycle, n, taken);
    }
    return bad == 0;
}

int zelo_pair_graph(int* a, int* b, int n, int k, uint64_t seed) {
    if (k < 2 || k % 2 != 0) { die("zelo_pair_graph: k must be even and >= 2, got %d", k); }
    if (n < 0) { die("zelo_pair_graph: n must be >= 0, got %d", n); }
    ZeloRng rng;
    zelo_rng_seed(&rng, seed);
    int count = 0;
    if (n <= k + 1) {
        // k/2 edge-disjoint cycles need at least k+1 vertices: below that, judge everything
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                int flip = (int)(zelo_rng_next(&rng) >> 63);
                a[count] = flip ? j : i;
                b[count] = flip ? i : j;
                count++;
            }
        }
        return count;
    }
    EdgeSet taken = { callocCheck(((size_t)n * n + 63) / 64, sizeof(uint64_t)), n };
    int* cycle = mallocCheck((size_t)n * sizeof(int));
    for (int c = 0; c < k / 2; c++) {
        int ok = 0;
        for (int attempt = 0; attempt < 20 && !ok; attempt++) {
            for (int i = 0; i < n; i++) { cycle[i] = i; }
            for (int i = n - 1; i > 0; i--) {
                int j = zelo_rng_below(&rng, i + 1);
                int tmp = cycle[i]; cycle[i] = cycle[j]; cycle[j] = tmp;
            }
            ok = repair_cycle(cycle, n, &taken, &rng);
        }
        // when no repair was found (only for n near k) the repeated edges are skipped here
        for (int i = 0; i < n; i++) {
            int u = cycle[i], v = cycle[(i + 1) % n];
            if (edge_has(&taken, u, v)) { continue; }
            edge_add(&taken, u, v);
            int flip = (int)(zelo_rng_next(&rng) >> 63);
            a[count] = flip ? v : u;
            b[count] = flip ? u : v;
            count++;
        }
    }
    free(cycle);
    free(taken.bits);
    return count;
}

void zelo_graph_stats(ZeloGraphStats* out, const int* a, const int* b, int num_pairs, int n) {
    out->connected = 1;
    out->min_degree = 0;
    out->max_degree = 0;
    out->diameter = 0;
    if (n <= 0) { return; }
    // CSR adjacency: start (n+1,), nbr (2*num_pairs,)
    int* start = callocCheck((size_t)n + 1, sizeof(int));
    int* nbr = mallocCheck((size_t)2 * num_pairs * sizeof(int) + 1);
    for (int i = 0; i < num_pairs; i++) { start[a[i] + 1]++; start[b[i] + 1]++; }
    for (int i = 0; i < n; i++) { start[i + 1] += start[i]; }
    int* fill = mallocCheck((size_t)n * sizeof(int));
    memcpy(fill, start, (size_t)n * sizeof(int));
    for (int i = 0; i < num_pairs; i++) { nbr[fill[a[i]]++] = b[i]; nbr[fill[b[i]]++] = a[i]; }
    out->min_degree = start[1] - start[0];
    for (int i = 0; i < n; i++) {
        int deg = start[i + 1] - start[i];
        if (deg < out->min_degree) { out->min_degree = deg; }
        if (deg > out->max_degree) { out->max_degree = deg; }
    }
    int* dist = mallocCheck((size_t)n * sizeof(int));
    int* queue = mallocCheck((size_t)n * sizeof(int));
    for (int src = 0; src < n && out->connected; src++) {
        for (int i = 0; i < n; i++) { dist[i] = -1; }
        int head = 0, tail = 0;
        dist[src] = 0;
        queue[tail++] = src;
        while (head < tail) {
            int u = queue[head++];
            for (int e = start[u]; e < start[u + 1]; e++) {
                int v = nbr[e];
                if (dist[v] < 0) { dist[v] = dist[u] + 1; queue[tail++] = v; }
            }
        }
        if (tail < n) { out->connected = 0; out->diameter = -1; break; }
        if (dist[queue[n - 1]] > out->diameter) { out->diameter = dist[queue[n - 1]]; }
    }
    free(queue); free(dist); free(fill); free(nbr); free(start);
}

// ----------------------------------------------------------------------------
// the per-pair negative log-likelihood ℓ(d) = −p log F(d) − (1−p) log F(−d) and its first
// two derivatives in d

// erfcx(t) = e^{t²} erfc(t) for t > 26, where e^{t²} overflows: the continued fraction
// erfc(t) = e^{−t²}/√π · 1/(t + (1/2)/(t + 1/(t + (3/2)/(t + ...)))) converges fast there
static double erfcx_large(double t) {
    double f = t;
    for (int k = 40; k >= 1; k--) { f = t + 0.5 * k / f; }
    return INV_SQRT_PI / f;
}

static inline double thurstone_pair_terms(double* d1, double* d2, double d, double p) {
    // With h(x) = F'(x)/F(x): ℓ' = −p h(d) + (1−p) h(−d) and, since h' = −h(2x + h),
    // ℓ'' = p h(d)(2d + h(d)) + (1−p) h(−d)(h(−d) − 2d). Everything is computed from
    // E = erfc(|d|) so that neither tail loses precision.
    double t = fabs(d);
    double gauss = exp(-t * t);
    double E, h_tail, log_tail;  // erfc(t), h(−t), log F(−t)
    if (t <= 26.0) {
        E = erfc(t);
        h_tail = TWO_INV_SQRT_PI * gauss / E;
        log_tail = log(0.5 * E);
    } else {
        double x = erfcx_large(t);
        E = x * gauss;
        h_tail = TWO_INV_SQRT_PI / x;
        log_tail = log(0.5 * x) - t * t;
    }
    double F_head = 1.0 - 0.5 * E;            // F(t), in [½, 1)
    double h_head = INV_SQRT_PI * gauss / F_head;
    // log, not log1p (twice as slow in glibc): its absolute error stays ~1e-16, all that
    // a sum of pair terms needs
    double log_head = log(F_head);
    double hp, hq, lp, lq;                     // h(d), h(−d), log F(d), log F(−d)
    if (d >= 0) { hp = h_head; hq = h_tail; lp = log_head; lq = log_tail; }
    else        { hp = h_tail; hq = h_head; lp = log_tail; lq = log_head; }
    *d1 = -p * hp + (1.0 - p) * hq;
    double curv = p * hp * (2.0 * d + hp) + (1.0 - p) * hq * (hq - 2.0 * d);
    *d2 = curv > 0 ? curv : 0;  // exact value is > 0 (log-concave F); rounding may not be
    return -(p * lp + (1.0 - p) * lq);
}

static inline double bt_pair_terms(double* d1, double* d2, double d, double p) {
    double t = fabs(d);
    double z = exp(-t);
    double l1p = log(1.0 + z);  // z in (0, 1]: absolute error ~1e-16, as above
    double s_head = 1.0 / (1.0 + z), s_tail = z / (1.0 + z);  // σ(t), σ(−t)
    *d1 = (d >= 0 ? s_head : s_tail) - p;
    *d2 = s_head * s_tail;
    // −p log σ(d) − (1−p) log σ(−d), with log σ(t) = −l1p and log σ(−t) = −t − l1p
    return l1p + (d >= 0 ? (1.0 - p) : p) * t;
}

static inline double pair_terms(double* d1, double* d2, double d, double p, ZeloLink link) {
    return link == ZELO_LINK_BT ? bt_pair_terms(d1, d2, d, p) : thurstone_pair_terms(d1, d2, d, p);
}

// objective, gradient (n,) and per-pair curvature ℓ'' (num_pairs,) at e
static double query_eval(double* grad, double* curv, const double* e, int n, const int* a,
                         const int* b, const double* p, const double* offset, int num_pairs,
                         ZeloLink link, double lambda) {
    double f = 0.0;
    for (int i = 0; i < n; i++) { grad[i] = lambda * e[i]; f += 0.5 * lambda * e[i] * e[i]; }
    for (int i = 0; i < num_pairs; i++) {
        double d = e[a[i]] - e[b[i]] + (offset ? offset[i] : 0.0);
        double d1, d2;
        f += pair_terms(&d1, &d2, d, p[i], link);
        grad[a[i]] += d1;
        grad[b[i]] -= d1;
        curv[i] = d2;
    }
    return f;
}

double zelo_query_objective(double* grad, const double* e, int n, const int* a, const int* b,
                            const double* p, const double* offset, int num_pairs,
                            ZeloLink link, double lambda) {
    double* curv = mallocCheck((size_t)num_pairs * sizeof(double));
    double f = query_eval(grad, curv, e, n, a, b, p, offset, num_pairs, link, lambda);
    free(curv);
    return f;
}

// ----------------------------------------------------------------------------
// the rating fit

void zelo_fit_config_default(ZeloFitConfig* cfg, ZeloLink link) {
    cfg->link = link;
    cfg->lambda = link == ZELO_LINK_BT ? ZELO_DEFAULT_LAMBDA_BT : ZELO_DEFAULT_LAMBDA_THURSTONE;
    cfg->grad_tol = ZELO_DEFAULT_GRAD_TOL;
    cfg->max_iter = ZELO_DEFAULT_MAX_ITER;
}

static int pair_error(ZeloPairError* err, int query, int64_t pair, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int pair_error(ZeloPairError* err, int query, int64_t pair, const char* fmt, ...) {
    err->query = query;
    err->pair = pair;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return 0;
}

int zelo_pairs_check(ZeloPairError* err, const ZeloPairs* pairs, const ZeloFitConfig* cfg) {
    if (cfg->link != ZELO_LINK_THURSTONE && cfg->link != ZELO_LINK_BT) {
        return pair_error(err, -1, -1, "unknown link %d", (int)cfg->link);
    }
    if (!isfinite(cfg->lambda) || cfg->lambda < 0) {
        return pair_error(err, -1, -1, "lambda must be finite and >= 0, got %g", cfg->lambda);
    }
    if (!isfinite(cfg->grad_tol) || cfg->grad_tol <= 0) {
        return pair_error(err, -1, -1, "grad_tol must be finite and > 0, got %g", cfg->grad_tol);
    }
    if (cfg->max_iter < 1) { return pair_error(err, -1, -1, "max_iter must be >= 1"); }
    if (pairs->num_queries < 0) { return pair_error(err, -1, -1, "negative number of queries"); }
    if (pairs->doc_start[0] != 0 || pairs->pair_start[0] != 0) {
        return pair_error(err, -1, -1, "doc_start[0] and pair_start[0] must be 0");
    }
    for (int q = 0; q < pairs->num_queries; q++) {
        int64_t n = pairs->doc_start[q + 1] - pairs->doc_start[q];
        if (n < 0 || n > INT32_MAX) { return pair_error(err, q, -1, "bad document count %lld", (long long)n); }
        if (pairs->pair_start[q + 1] < pairs->pair_start[q]) {
            return pair_error(err, q, -1, "pair_start decreases");
        }
        for (int64_t i = pairs->pair_start[q]; i < pairs->pair_start[q + 1]; i++) {
            int x = pairs->a[i], y = pairs->b[i];
            if (x < 0 || x >= n || y < 0 || y >= n) {
                return pair_error(err, q, i, "document index out of range (a=%d, b=%d, %lld documents)",
                                  x, y, (long long)n);
            }
            if (x == y) { return pair_error(err, q, i, "a document compared with itself (index %d)", x); }
            double p = pairs->p[i];
            if (!isfinite(p) || p < 0.0 || p > 1.0) {
                return pair_error(err, q, i, "p must be a number in [0, 1], got %g", p);
            }
            if (pairs->offset && !isfinite(pairs->offset[i])) {
                return pair_error(err, q, i, "offset must be finite, got %g", pairs->offset[i]);
            }
        }
    }
    return 1;
}

// scratch for one thread, sized for the largest query: no allocation in the hot loop
typedef struct {
    double *e0, *e1, *g0, *g1, *step, *r, *z, *dir, *hd, *diag;  // (n_max,)
    double *c0, *c1;                                             // (p_max,) curvatures
} FitWork;

static void project_zero_mean(double* x, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) { m += x[i]; }
    m /= n;
    for (int i = 0; i < n; i++) { x[i] -= m; }
}

// (H d) with H = Σ_pairs curv·(u_a − u_b)(u_a − u_b)ᵀ + λI: a weighted graph Laplacian
static void hessian_times(double* out, const double* d, const double* curv, int n, const int* a,
                          const int* b, int num_pairs, double lambda) {
    for (int i = 0; i < n; i++) { out[i] = lambda * d[i]; }
    for (int i = 0; i < num_pairs; i++) {
        double t = curv[i] * (d[a[i]] - d[b[i]]);
        out[a[i]] += t;
        out[b[i]] -= t;
    }
}

// solves H step = −g to relative residual eta (inexact Newton); returns CG iterations
static int newton_direction(double* step, FitWork* w, const double* g, const double* curv, int n,
                            const int* a, const int* b, int num_pairs, double lambda, double eta) {
    for (int i = 0; i < n; i++) { w->diag[i] = lambda; }
    for (int i = 0; i < num_pairs; i++) { w->diag[a[i]] += curv[i]; w->diag[b[i]] += curv[i]; }
    // a document in no pair has a zero row when λ = 0; its residual stays 0 anyway
    for (int i = 0; i < n; i++) { if (!(w->diag[i] > 0)) { w->diag[i] = 1.0; } }
    double rr = 0.0, rz = 0.0;
    for (int i = 0; i < n; i++) {
        step[i] = 0.0;
        w->r[i] = -g[i];
        rr += g[i] * g[i];
    }
    double target = eta * eta * rr;
    for (int i = 0; i < n; i++) { w->z[i] = w->r[i] / w->diag[i]; }
    if (lambda == 0) { project_zero_mean(w->z, n); }  // stay in the gauge Σ = 0
    for (int i = 0; i < n; i++) { w->dir[i] = w->z[i]; rz += w->r[i] * w->z[i]; }
    int it = 0;
    int max_it = 2 * n + 10;
    while (it < max_it && rr > target) {
        hessian_times(w->hd, w->dir, curv, n, a, b, num_pairs, lambda);
        double dhd = 0.0;
        for (int i = 0; i < n; i++) { dhd += w->dir[i] * w->hd[i]; }
        if (!(dhd > 0)) { break; }
        double alpha = rz / dhd;
        rr = 0.0;
        for (int i = 0; i < n; i++) {
            step[i] += alpha * w->dir[i];
            w->r[i] -= alpha * w->hd[i];
            rr += w->r[i] * w->r[i];
        }
        it++;
        if (rr <= target) { break; }
        for (int i = 0; i < n; i++) { w->z[i] = w->r[i] / w->diag[i]; }
        if (lambda == 0) { project_zero_mean(w->z, n); }
        double rz_new = 0.0;
        for (int i = 0; i < n; i++) { rz_new += w->r[i] * w->z[i]; }
        double beta = rz_new / rz;
        rz = rz_new;
        for (int i = 0; i < n; i++) { w->dir[i] = w->z[i] + beta * w->dir[i]; }
    }
    return it;
}

static double inf_norm(const double* x, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) { double v = fabs(x[i]); if (v > m) { m = v; } }
    return m;
}

static void fit_one_query(double* ratings, ZeloFitStatus* st, FitWork* w, int n, const int* a,
                          const int* b, const double* p, const double* offset, int num_pairs,
                          const ZeloFitConfig* cfg) {
    double *e = w->e0, *e_new = w->e1, *g = w->g0, *g_new = w->g1, *c = w->c0, *c_new = w->c1;
    double lambda = cfg->lambda;
    for (int i = 0; i < n; i++) { e[i] = 0.0; }
    double f = query_eval(g, c, e, n, a, b, p, offset, num_pairs, cfg->link, lambda);
    double g_inf = inf_norm(g, n);
    int it = 0, cg_total = 0;
    while (g_inf > cfg->grad_tol && it < cfg->max_iter) {
        // forcing term √‖g‖: loose solves far away, quadratic convergence near the optimum
        double eta = fmin(0.5, sqrt(g_inf));
        cg_total += newton_direction(w->step, w, g, c, n, a, b, num_pairs, lambda, eta);
        double slope = 0.0;
        for (int i = 0; i < n; i++) { slope += g[i] * w->step[i]; }
        if (!(slope < 0)) {
            // CG stopped before making progress: fall back on the preconditioned gradient
            slope = 0.0;
            for (int i = 0; i < n; i++) { w->step[i] = -g[i] / w->diag[i]; slope += g[i] * w->step[i]; }
        }
        double t = 1.0, f_new = f, g_new_inf = g_inf;
        int accepted = 0;
        for (int ls = 0; ls < 60 && !accepted; ls++, t *= 0.5) {
            for (int i = 0; i < n; i++) { e_new[i] = e[i] + t * w->step[i]; }
            if (lambda == 0) { project_zero_mean(e_new, n); }
            f_new = query_eval(g_new, c_new, e_new, n, a, b, p, offset, num_pairs, cfg->link, lambda);
            g_new_inf = inf_norm(g_new, n);
            // Armijo; near the optimum f changes by less than its rounding, so a step that
            // keeps f within rounding and shrinks the gradient is taken as well
            int armijo = f_new <= f + 1e-4 * t * slope;
            int flat = f_new <= f + 1e-13 * (1.0 + fabs(f)) && g_new_inf < g_inf;
            accepted = armijo || flat;
        }
        if (!accepted) { break; }  // no decrease along a descent direction: reported below
        double* tmp;
        tmp = e; e = e_new; e_new = tmp;
        tmp = g; g = g_new; g_new = tmp;
        tmp = c; c = c_new; c_new = tmp;
        f = f_new;
        g_inf = g_new_inf;
        it++;
    }
    memcpy(ratings, e, (size_t)n * sizeof(double));
    st->converged = g_inf <= cfg->grad_tol;
    st->iterations = it;
    st->cg_iterations = cg_total;
    st->grad_inf = g_inf;
    st->objective = f;
}

int zelo_fit_ratings(double* ratings, ZeloFitStatus* status, ZeloPairError* err,
                     const ZeloPairs* pairs, const ZeloFitConfig* cfg) {
    if (!zelo_pairs_check(err, pairs, cfg)) { return -1; }
    int Q = pairs->num_queries;
    int n_max = 1;
    int64_t p_max = 1;
    for (int q = 0; q < Q; q++) {
        int n = (int)(pairs->doc_start[q + 1] - pairs->doc_start[q]);
        int64_t np = pairs->pair_start[q + 1] - pairs->pair_start[q];
        if (n > n_max) { n_max = n; }
        if (np > p_max) { p_max = np; }
    }
    int not_converged = 0;
    #pragma omp parallel reduction(+:not_converged)
    {
        FitWork w;
        double* buf = mallocCheck(((size_t)10 * n_max + (size_t)2 * p_max) * sizeof(double));
        double** slots[10] = { &w.e0, &w.e1, &w.g0, &w.g1, &w.step, &w.r, &w.z, &w.dir, &w.hd, &w.diag };
        for (int i = 0; i < 10; i++) { *slots[i] = buf + (size_t)i * n_max; }
        w.c0 = buf + (size_t)10 * n_max;
        w.c1 = w.c0 + p_max;
        #pragma omp for schedule(dynamic, 16)
        for (int q = 0; q < Q; q++) {
            int64_t d0 = pairs->doc_start[q], p0 = pairs->pair_start[q];
            int n = (int)(pairs->doc_start[q + 1] - d0);
            int np = (int)(pairs->pair_start[q + 1] - p0);
            ZeloFitStatus st = { 1, 0, 0, 0.0, 0.0 };
            if (n > 0) {
                fit_one_query(ratings + d0, &st, &w, n, pairs->a + p0, pairs->b + p0, pairs->p + p0,
                              pairs->offset ? pairs->offset + p0 : NULL, np, cfg);
            }
            if (!st.converged) { not_converged++; }
            if (status) { status[q] = st; }
        }
        free(buf);
    }
    return not_converged;
}

// ----------------------------------------------------------------------------
// the simulated judge

double zelo_sim_judge_prob(double score_a, double score_b, ZeloLink link, ZeloRng* rng) {
    double x = score_a - score_b + ZELO_SIM_JUDGE_SIGMA * zelo_rng_normal(rng);
    // "mixes 2% uniform noise" read as a mixture of the answer itself: 98% of the link's
    // probability plus 2% of a uniform draw (not: 2% of the answers replaced by noise)
    double u = zelo_rng_uniform(rng);
    return (1.0 - ZELO_SIM_JUDGE_UNIFORM) * zelo_link_prob(x, link) + ZELO_SIM_JUDGE_UNIFORM * u;
}

// ----------------------------------------------------------------------------
// calibration across queries

int64_t zelo_cross_query_capacity(int num_queries, int cycles, int m) {
    return zelo_pair_graph_capacity(num_queries, 2 * cycles) * (int64_t)m;
}

int64_t zelo_cross_query_pairs(ZeloCrossPair* out, int num_queries, const int* num_docs,
                               int cycles, int m, uint64_t seed) {
    int64_t cap = zelo_pair_graph_capacity(num_queries, 2 * cycles);
    int* qa = mallocCheck((size_t)cap * sizeof(int));
    int* qb = mallocCheck((size_t)cap * sizeof(int));
    int edges = zelo_pair_graph(qa, qb, num_queries, 2 * cycles, seed);
    // a second stream for the documents, so the query graph is the same for every m
    ZeloRng rng;
    zelo_rng_seed(&rng, seed ^ 0xD1B54A32D192ED03ull);
    int64_t count = 0;
    for (int e = 0; e < edges; e++) {
        int x = qa[e], y = qb[e];
        if (num_docs[x] <= 0 || num_docs[y] <= 0) { continue; }  // nothing to compare
        for (int j = 0; j < m; j++) {
            ZeloCrossPair* c = &out[count++];
            c->query_a = x;
            c->doc_a = zelo_rng_below(&rng, num_docs[x]);
            c->query_b = y;
            c->doc_b = zelo_rng_below(&rng, num_docs[y]);
        }
    }
    free(qa);
    free(qb);
    return count;
}

int zelo_calibrate_offsets(double* offsets, ZeloCalibrationStatus* status, ZeloPairError* err,
                           const ZeloCrossPair* cross, const double* p, int64_t num_cross,
                           const double* ratings, const int64_t* doc_start, int num_queries,
                           const ZeloFitConfig* cfg) {
    memset(status, 0, sizeof(*status));
    status->fit.converged = 1;
    for (int q = 0; q < num_queries; q++) { offsets[q] = 0.0; }
    if (num_cross == 0) {
        status->fallback_zero = 1;
        status->uncovered = num_queries;
        return 1;
    }
    // the offsets are one "query" whose documents are the queries; a cross pair's known
    // rating difference enters as its fixed offset
    int* a = mallocCheck((size_t)num_cross * sizeof(int));
    int* b = mallocCheck((size_t)num_cross * sizeof(int));
    double* off = mallocCheck((size_t)num_cross * sizeof(double));
    char* covered = callocCheck((size_t)num_queries + 1, 1);
    for (int64_t i = 0; i < num_cross; i++) {
        const ZeloCrossPair* c = &cross[i];
        if (c->query_a < 0 || c->query_a >= num_queries || c->query_b < 0 || c->query_b >= num_queries) {
            free(a); free(b); free(off); free(covered);
            return pair_error(err, -1, i, "cross pair names query %d or %d of %d", c->query_a,
                              c->query_b, num_queries);
        }
        int64_t na = doc_start[c->query_a + 1] - doc_start[c->query_a];
        int64_t nb = doc_start[c->query_b + 1] - doc_start[c->query_b];
        if (c->doc_a < 0 || c->doc_a >= na || c->doc_b < 0 || c->doc_b >= nb) {
            free(a); free(b); free(off); free(covered);
            return pair_error(err, -1, i, "cross pair names document %d of query %d or %d of query %d, "
                              "which do not exist", c->doc_a, c->query_a, c->doc_b, c->query_b);
        }
        a[i] = c->query_a;
        b[i] = c->query_b;
        off[i] = ratings[doc_start[c->query_a] + c->doc_a] - ratings[doc_start[c->query_b] + c->doc_b];
        covered[c->query_a] = covered[c->query_b] = 1;
    }
    for (int q = 0; q < num_queries; q++) { status->uncovered += !covered[q]; }
    int64_t ds[2] = { 0, num_queries }, ps[2] = { 0, num_cross };
    ZeloPairs one = { 1, ds, ps, a, b, p, off };
    int bad = zelo_fit_ratings(offsets, &status->fit, err, &one, cfg);
    free(a); free(b); free(off); free(covered);
    if (bad < 0) { err->query = -1; return 0; }
    return 1;
}

// ----------------------------------------------------------------------------
// targets and training losses

double zelo_target(double score) {
    return 0.5 * erfc(-score);
}

double zelo_mse_loss(float* dlogits, const float* logits, const float* targets, int n) {
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        double z = logits[i];
        double diff = 0.5 * erfc(-z) - targets[i];
        loss += diff * diff;
        dlogits[i] = (float)(2.0 * diff * INV_SQRT_PI * exp(-z * z) / n);
    }
    return loss / n;
}

double zelo_bce_loss(float* dlogits, const float* logits, const float* targets, int n) {
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        double d1, d2;
        loss += thurstone_pair_terms(&d1, &d2, logits[i], targets[i]);
        dlogits[i] = (float)(d1 / n);
    }
    return loss / n;
}

double zelo_pairwise_nll_loss(float* dlogits, const float* logits, const int* a, const int* b,
                              const float* p, int num_pairs, int n) {
    for (int i = 0; i < n; i++) { dlogits[i] = 0.0f; }
    if (num_pairs == 0) { return 0.0; }
    double loss = 0.0;
    for (int i = 0; i < num_pairs; i++) {
        double d1, d2;
        loss += thurstone_pair_terms(&d1, &d2, (double)logits[a[i]] - logits[b[i]], p[i]);
        dlogits[a[i]] += (float)(d1 / num_pairs);
        dlogits[b[i]] -= (float)(d1 / num_pairs);
    }
    return loss / num_pairs;
}

double zelo_listwise_loss(float* dlogits, const float* logits, const float* targets,
                          const int* group_start, int num_groups) {
    double loss = 0.0;
    for (int g = 0; g < num_groups; g++) {
        int s = group_start[g], e = group_start[g + 1];
        double zmax = -INFINITY, ysum = 0.0;
        for (int i = s; i < e; i++) {
            if (logits[i] > zmax) { zmax = logits[i]; }
            if (!(targets[i] >= 0)) { die("zelo_listwise_loss: target %d is %g, must be >= 0", i, targets[i]); }
            ysum += targets[i];
        }
        if (e > s && !(ysum > 0)) { die("zelo_listwise_loss: the targets of group %d sum to 0", g); }
        double zsum = 0.0;
        for (int i = s; i < e; i++) { zsum += exp(logits[i] - zmax); }
        double lse = zmax + log(zsum);  // max shift: exp never overflows
        for (int i = s; i < e; i++) {
            double t = targets[i] / ysum;
            loss -= t * (logits[i] - lse);
            dlogits[i] = (float)((exp(logits[i] - lse) - t) / num_groups);
        }
    }
    return num_groups > 0 ? loss / num_groups : 0.0;
}

double zelo_pairwise_bce_loss(float* dlogits, const float* logits, const float* p, int n) {
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        double d1, d2;
        loss += bt_pair_terms(&d1, &d2, logits[i], p[i]);
        dlogits[i] = (float)(d1 / n);
    }
    return loss / n;
}
