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

#include "common/pair_terms.h"
#include "common/utils.h"
#include "zelo_loss.h"

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

void zelo_rng_draw_weighted(int* chosen, double* weight, int n, int want, ZeloRng* rng) {
    double total = 0.0;
    for (int j = 0; j < n; j++) { total += weight[j]; }
    for (int d = 0; d < want; d++) {
        double u = zelo_rng_uniform(rng) * total;
        int j = 0;
        while (j < n - 1 && (weight[j] == 0.0 || u >= weight[j])) { u -= weight[j++]; }
        while (weight[j] == 0.0) { j--; }  // u rounded past the last index still in: the one before
        chosen[d] = j;
        total -= weight[j];
        weight[j] = 0.0;
    }
}

// ----------------------------------------------------------------------------
// pair graphs

int64_t zelo_pair_graph_capacity(int n, int k) {
    if (n < 2) { return 0; }
    int64_t complete = (int64_t)n * (n - 1) / 2;
    int64_t regular = (int64_t)n * k / 2;
    return complete < regular ? complete : regular;
}

// the edges taken by earlier cycles, as each document's list of neighbours: a document has
// at most k of them, so "is this edge taken?" scans at most k entries, and the memory is
// n·k ints (an n×n bit matrix took 1.2 GB and 8 s to clear at n = 100,000)
typedef struct { int* nbr; int* deg; int k; } EdgeSet;  // nbr: (n, k), deg: (n,)

static int edge_has(const EdgeSet* s, int u, int v) {
    const int* row = s->nbr + (size_t)u * s->k;
    for (int i = 0; i < s->deg[u]; i++) {
        if (row[i] == v) { return 1; }
    }
    return 0;
}

static void edge_add(EdgeSet* s, int u, int v) {
    s->nbr[(size_t)u * s->k + s->deg[u]++] = v;
    s->nbr[(size_t)v * s->k + s->deg[v]++] = u;
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

static void shuffle(int* x, int n, ZeloRng* rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = zelo_rng_below(rng, i + 1);
        int tmp = x[i]; x[i] = x[j]; x[j] = tmp;
    }
}

// writes the n edges of a cycle (in a random order each) at a + count, b + count
static int add_cycle_pairs(int* a, int* b, int count, const int* cycle, const int* label, int n, ZeloRng* rng) {
    for (int i = 0; i < n; i++) {
        int u = label[cycle[i]], v = label[cycle[(i + 1) % n]];
        int flip = (int)(zelo_rng_next(rng) >> 63);
        a[count] = flip ? v : u;
        b[count] = flip ? u : v;
        count++;
    }
    return count;
}

// Where the random construction fails (it can for n close to k: at n = k + 2 the last cycle
// must be a Hamiltonian cycle of the 3-regular graph that the others leave, which need not
// exist), k/2 cycles of Walecki's decomposition, over a random relabelling of the documents.
// For odd n = 2m + 1, the points 0..2m−1 on a circle and a hub 2m, cycle r (0 <= r < m) runs
// hub, r, r+1, r−1, r+2, r−2, ..., r+m (mod 2m), hub: the m zigzag paths are edge-disjoint
// and cover every chord, the hub meets each point once, so the m cycles decompose K_n. For
// even n a second hub 2m+1 is put into each cycle in place of the path's chord of length m
// (between its m-th and (m+1)-th points): those chords are a perfect matching of the
// circle, so the cycles stay edge-disjoint and cover K_n minus a perfect matching. Both give
// (n−1)/2 or (n−2)/2 >= k/2 cycles, so the graph is always exactly k-regular.
static int walecki_graph(int* a, int* b, int n, int k, ZeloRng* rng) {
    int even = n % 2 == 0;
    int m = even ? (n - 2) / 2 : (n - 1) / 2;  // 2m points on the circle, m cycles
    int hub = 2 * m, second = even ? 2 * m + 1 : -1;
    int* label = mallocCheck((size_t)n * sizeof(int));
    int* order = mallocCheck((size_t)m * sizeof(int));
    int* cycle = mallocCheck((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) { label[i] = i; }
    shuffle(label, n, rng);
    for (int r = 0; r < m; r++) { order[r] = r; }
    shuffle(order, m, rng);
    int count = 0;
    for (int c = 0; c < k / 2; c++) {
        int r = order[c], len = 0;
        cycle[len++] = hub;
        for (int j = 0; j < 2 * m; j++) {
            if (j == m && second >= 0) { cycle[len++] = second; }
            int step = (j + 1) / 2;  // v_0 = r, v_{2i−1} = r + i, v_{2i} = r − i
            cycle[len++] = ((j % 2 == 1 ? r + step : r - step) % (2 * m) + 2 * m) % (2 * m);
        }
        count = add_cycle_pairs(a, b, count, cycle, label, n, rng);
    }
    free(cycle); free(order); free(label);
    return count;
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
    EdgeSet taken = { mallocCheck((size_t)n * k * sizeof(int)), callocCheck((size_t)n, sizeof(int)), k };
    int* cycle = mallocCheck((size_t)n * sizeof(int));
    int* identity = mallocCheck((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) { identity[i] = i; }
    int ok = 1;
    for (int c = 0; c < k / 2 && ok; c++) {
        ok = 0;
        for (int attempt = 0; attempt < 20 && !ok; attempt++) {
            memcpy(cycle, identity, (size_t)n * sizeof(int));
            shuffle(cycle, n, &rng);
            ok = repair_cycle(cycle, n, &taken, &rng);
        }
        if (ok) {
            for (int i = 0; i < n; i++) { edge_add(&taken, cycle[i], cycle[(i + 1) % n]); }
            count = add_cycle_pairs(a, b, count, cycle, identity, n, &rng);
        }
    }
    if (!ok) { count = walecki_graph(a, b, n, k, &rng); }
    free(identity);
    free(cycle);
    free(taken.nbr);
    free(taken.deg);
    return count;
}

// ----------------------------------------------------------------------------
// failure mining

typedef struct { float key; int i, j; } Ranked;

// higher key first, then lower (i, j); a NaN key last, so that an order exists whatever the scores
static int ranked_compare(const void* pa, const void* pb) {
    const Ranked* x = (const Ranked*)pa;
    const Ranked* y = (const Ranked*)pb;
    int nx = isnan(x->key), ny = isnan(y->key);
    if (nx != ny) { return nx - ny; }
    if (!nx && x->key != y->key) { return x->key > y->key ? -1 : 1; }
    if (x->i != y->i) { return x->i < y->i ? -1 : 1; }
    return (x->j > y->j) - (x->j < y->j);
}

int zelo_mine_documents(int* picked, const float* scores, int n, int n_old, int cut, int max_new) {
    if (n <= n_old || max_new <= 0 || cut <= 0) { return 0; }
    Ranked* order = (Ranked*)mallocCheck((size_t)n * sizeof(Ranked));
    for (int i = 0; i < n; i++) { order[i] = (Ranked){ scores[i], i, 0 }; }
    qsort(order, (size_t)n, sizeof(Ranked), ranked_compare);
    int count = 0;
    for (int r = 0; r < n && r < cut && count < max_new; r++) {
        if (order[r].i >= n_old) { picked[count++] = order[r].i; }
    }
    free(order);
    return count;
}

int64_t zelo_mine_pairs_capacity(int n_old, int n_new, int k, int max_disagree) {
    int64_t n = (int64_t)n_old + n_new;
    // a new document's k draws, and the pairs an earlier new document drew with it
    return (int64_t)(max_disagree > 0 ? max_disagree : 0) + (int64_t)n_new * (k < n - 1 ? k : n - 1);
}

static int pair_listed(const int* a, const int* b, int from, int to, int u, int v) {
    for (int p = from; p < to; p++) {
        if ((a[p] == u && b[p] == v) || (a[p] == v && b[p] == u)) { return 1; }
    }
    return 0;
}

int zelo_mine_pairs(int* a, int* b, const float* scores, const float* ratings, int n_old, int n_new,
                    const int* old_a, const int* old_b, int64_t n_old_pairs, int k, int max_disagree,
                    uint64_t seed) {
    ZeloRng rng;
    zelo_rng_seed(&rng, seed);
    int count = 0;
    if (max_disagree > 0 && n_old >= 2) {
        // judged[u * n_old + v]: the pair has a battle already, in either order
        unsigned char* judged = (unsigned char*)callocCheck((size_t)n_old * n_old, 1);
        for (int64_t p = 0; p < n_old_pairs; p++) {
            judged[(size_t)old_a[p] * n_old + old_b[p]] = judged[(size_t)old_b[p] * n_old + old_a[p]] = 1;
        }
        Ranked* against = (Ranked*)mallocCheck((size_t)n_old * (n_old - 1) / 2 * sizeof(Ranked));
        int64_t m = 0;
        for (int i = 0; i < n_old; i++) {
            for (int j = i + 1; j < n_old; j++) {
                double de = (double)ratings[i] - ratings[j], ds = (double)scores[i] - scores[j];
                if (judged[(size_t)i * n_old + j] || !(de * ds < 0.0)) { continue; }
                against[m++] = (Ranked){ (float)fabs(de), i, j };
            }
        }
        qsort(against, (size_t)m, sizeof(Ranked), ranked_compare);
        for (int64_t r = 0; r < m && count < max_disagree; r++) {
            int flip = (int)(zelo_rng_next(&rng) >> 63);
            a[count] = flip ? against[r].j : against[r].i;
            b[count] = flip ? against[r].i : against[r].j;
            count++;
        }
        free(against);
        free(judged);
    }
    int n = n_old + n_new, first_new_pair = count;
    int* others = (int*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(int));
    for (int u = n_old; u < n; u++) {
        int m = 0;
        for (int v = 0; v < n; v++) {
            if (v != u) { others[m++] = v; }
        }
        // a partial shuffle: the first draws of a random order, skipping pairs an earlier new
        // document drew with this one
        for (int r = 0, taken = 0; r < m && taken < k; r++) {
            int s = r + zelo_rng_below(&rng, m - r);
            int v = others[s];
            others[s] = others[r];
            others[r] = v;
            if (v >= n_old && pair_listed(a, b, first_new_pair, count, u, v)) { continue; }
            int flip = (int)(zelo_rng_next(&rng) >> 63);
            a[count] = flip ? v : u;
            b[count] = flip ? u : v;
            count++;
            taken++;
        }
    }
    free(others);
    return count;
}

// ----------------------------------------------------------------------------
// the objective (the pair terms ℓ, ℓ', ℓ'' are common/pair_terms.h's)

// the objective at e; diff: (num_pairs,) scratch
static double query_value(double* diff, const double* e, int n, const int* a, const int* b,
                          const double* p, const double* offset, int num_pairs, ZeloLink link,
                          double lambda) {
    double f = 0.0;
    for (int i = 0; i < n; i++) { f += 0.5 * lambda * e[i] * e[i]; }
    for (int i = 0; i < num_pairs; i++) { diff[i] = e[a[i]] - e[b[i]] + (offset ? offset[i] : 0.0); }
    if (link == ZELO_LINK_BT) {
        #pragma omp simd reduction(+:f)
        for (int i = 0; i < num_pairs; i++) { f += bt_pair_loss(diff[i], p[i]); }
    } else {
        #pragma omp simd reduction(+:f)
        for (int i = 0; i < num_pairs; i++) { f += thurstone_pair_loss(diff[i], p[i]); }
    }
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
                return pair_error(err, q, i, "p must be a number in [0, 1], got %.17g", p);
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
    double *e, *e_new;  // (n_max,) ratings: current and trial point
    double *g, *h;      // (n_max,) gradient and Hessian diagonal at the last point evaluated
    double *step, *r, *z, *dir, *hd, *inv_h;  // (n_max,) conjugate gradients
    double *d1, *d2;    // (p_max,) ℓ' and ℓ'' of each pair (d2 first holds the differences)
    // the pairs as adjacency lists (CSR), built once per query: row i lists the pairs that
    // judge document i, first those where it is a, then those where it is b, so that sums
    // over a document's pairs and the Hessian product are gathers, not read-modify-writes
    int* row_start;     // (n_max+1,)
    int* row_split;     // (n_max,) pairs where i is a: [row_start[i], row_split[i]), b: the rest
    int *pair, *nbr;    // (2 p_max,) each entry's pair and the other document in it
    double* weight;     // (2 p_max,) each entry's ℓ'': the off-diagonal of the Hessian
    int* fill;          // (2 n_max,) scratch for building the rows
    double* dbuf;       // the two allocations that hold all of the above
    int* ibuf;
} FitWork;

static void fit_work_alloc(FitWork* w, int n_max, int64_t p_max) {
    size_t n = (size_t)n_max, p = (size_t)p_max;
    w->dbuf = mallocCheck((10 * n + 4 * p) * sizeof(double));
    double** slots[10] = { &w->e, &w->e_new, &w->g, &w->h, &w->step, &w->r, &w->z, &w->dir,
                           &w->hd, &w->inv_h };
    for (int i = 0; i < 10; i++) { *slots[i] = w->dbuf + i * n; }
    w->d1 = w->dbuf + 10 * n;
    w->d2 = w->d1 + p;
    w->weight = w->d2 + p;
    w->ibuf = mallocCheck((4 * n + 1 + 4 * p) * sizeof(int));
    w->row_start = w->ibuf;
    w->row_split = w->row_start + n + 1;
    w->fill = w->row_split + n;
    w->pair = w->fill + 2 * n;
    w->nbr = w->pair + 2 * p;
}

static void fit_work_free(FitWork* w) {
    free(w->dbuf);
    free(w->ibuf);
}

static void build_adjacency(FitWork* w, int n, const int* a, const int* b, int num_pairs) {
    int *fill_a = w->fill, *fill_b = w->fill + n;
    for (int i = 0; i < n; i++) { fill_a[i] = 0; fill_b[i] = 0; }
    for (int j = 0; j < num_pairs; j++) { fill_a[a[j]]++; fill_b[b[j]]++; }
    w->row_start[0] = 0;
    for (int i = 0; i < n; i++) {
        w->row_split[i] = w->row_start[i] + fill_a[i];
        w->row_start[i + 1] = w->row_split[i] + fill_b[i];
        fill_a[i] = w->row_start[i];
        fill_b[i] = w->row_split[i];
    }
    for (int j = 0; j < num_pairs; j++) {
        int ka = fill_a[a[j]]++, kb = fill_b[b[j]]++;
        w->pair[ka] = j;
        w->nbr[ka] = b[j];
        w->pair[kb] = j;
        w->nbr[kb] = a[j];
    }
}

// ----------------------------------------------------------------------------
// searches over the pairs as a graph (w's adjacency, built by build_adjacency)

// Breadth-first search from src. mode 0 follows every pair both ways; mode 1 follows the
// arcs "beats": a→b where p > 0 and b→a where p < 1 (a pair with p strictly between 0 and
// 1 links both ways); mode 2 follows those arcs backwards. dist: (n,) hops from src, −1
// where not reached; queue: (n,) the documents reached, in order of distance. Returns how
// many were reached. O(n + pairs).
static int graph_search(int* dist, int* queue, const FitWork* w, const double* p, int mode, int src, int n) {
    for (int i = 0; i < n; i++) { dist[i] = -1; }
    int head = 0, tail = 0;
    dist[src] = 0;
    queue[tail++] = src;
    while (head < tail) {
        int u = queue[head++];
        for (int e = w->row_start[u]; e < w->row_start[u + 1]; e++) {
            int v = w->nbr[e];
            if (dist[v] >= 0) { continue; }
            if (mode != 0) {
                // u is the pair's a when e < row_split[u]; the arc u→v (mode 1) or v→u
                // (mode 2) needs p > 0 when it points from a to b, p < 1 otherwise
                double pe = p[w->pair[e]];
                int a_to_b = (mode == 1) == (e < w->row_split[u]);
                if (a_to_b ? !(pe > 0) : !(pe < 1)) { continue; }
            }
            dist[v] = dist[u] + 1;
            queue[tail++] = v;
        }
    }
    return tail;
}

// Whether the prior-free (λ = 0) maximum-likelihood ratings exist and are unique up to the
// gauge (Zermelo; Ford 1957): the comparison graph must be connected, else the offset
// between its parts is arbitrary, and the "beats" graph strongly connected, else a set of
// documents that beat all the others with certainty goes to +∞ (or loses to −∞). Strong
// connectivity is checked as: everything reachable from document 0 forwards and backwards.
static ZeloOptimum query_optimum(FitWork* w, const double* p, int n) {
    if (n < 2) { return ZELO_OPTIMUM_FINITE; }
    int *dist = w->fill, *queue = w->fill + n;
    if (graph_search(dist, queue, w, p, 0, 0, n) < n) { return ZELO_OPTIMUM_DISCONNECTED; }
    if (graph_search(dist, queue, w, p, 1, 0, n) < n || graph_search(dist, queue, w, p, 2, 0, n) < n) {
        return ZELO_OPTIMUM_AT_INFINITY;
    }
    return ZELO_OPTIMUM_FINITE;
}

// The diameter used to be computed here by a BFS from every document (15 s at n = 20,000);
// exactly, it cannot be had faster on these expander-like graphs, so zelo_graph_stats gives
// bounds from two searches (double sweep) and zelo_graph_diameter the exact value for
// small graphs.
void zelo_graph_stats(ZeloGraphStats* out, const int* a, const int* b, int num_pairs, int n) {
    memset(out, 0, sizeof(*out));
    out->connected = 1;
    if (n <= 0) { return; }
    FitWork w;
    fit_work_alloc(&w, n, num_pairs);
    build_adjacency(&w, n, a, b, num_pairs);
    out->min_degree = w.row_start[1] - w.row_start[0];
    for (int i = 0; i < n; i++) {
        int deg = w.row_start[i + 1] - w.row_start[i];
        if (deg < out->min_degree) { out->min_degree = deg; }
        if (deg > out->max_degree) { out->max_degree = deg; }
    }
    int *dist = w.fill, *queue = w.fill + n;
    int reached = graph_search(dist, queue, &w, NULL, 0, 0, n);
    if (reached < n) {
        out->connected = 0;
        out->diameter_lo = out->diameter_hi = -1;
    } else {
        // every document is within ecc(x) of x, so any two are within 2 ecc(x) of each other;
        // and the distance from y, the farthest document from 0, to its own farthest is one
        // the graph has
        int ecc0 = dist[queue[n - 1]];
        graph_search(dist, queue, &w, NULL, 0, queue[n - 1], n);
        int ecc1 = dist[queue[n - 1]];
        out->diameter_lo = ecc1 > ecc0 ? ecc1 : ecc0;
        out->diameter_hi = 2 * (ecc1 < ecc0 ? ecc1 : ecc0);
    }
    fit_work_free(&w);
}

int zelo_graph_diameter(const int* a, const int* b, int num_pairs, int n) {
    if (n <= 0) { return 0; }
    FitWork w;
    fit_work_alloc(&w, n, num_pairs);
    build_adjacency(&w, n, a, b, num_pairs);
    int diameter = 0;
    int *dist = w.fill, *queue = w.fill + n;
    for (int src = 0; src < n && diameter >= 0; src++) {
        if (graph_search(dist, queue, &w, NULL, 0, src, n) < n) { diameter = -1; }
        else if (dist[queue[n - 1]] > diameter) { diameter = dist[queue[n - 1]]; }
    }
    fit_work_free(&w);
    return diameter;
}

// ----------------------------------------------------------------------------
// the rating fit: derivatives, Hessian products, Newton steps

// at e: the gradient w->g (n,), the Hessian's diagonal λ + Σ ℓ'' w->h (n,) and its
// off-diagonal w->weight. Three loops: the differences, the pair terms (where the time
// goes: contiguous arrays, so it runs in vector registers), then each document's sums
// along its row.
static void query_derivs(FitWork* w, const double* e, int n, const int* a, const int* b,
                         const double* p, const double* offset, int num_pairs, ZeloLink link,
                         double lambda) {
    double* restrict d1 = w->d1;
    double* restrict d2 = w->d2;
    for (int j = 0; j < num_pairs; j++) { d2[j] = e[a[j]] - e[b[j]] + (offset ? offset[j] : 0.0); }
    if (link == ZELO_LINK_BT) {
        #pragma omp simd
        for (int j = 0; j < num_pairs; j++) { bt_pair_derivs(&d1[j], &d2[j], d2[j], p[j]); }
    } else {
        #pragma omp simd
        for (int j = 0; j < num_pairs; j++) { thurstone_pair_derivs(&d1[j], &d2[j], d2[j], p[j]); }
    }
    const int* restrict pair = w->pair;
    double* restrict weight = w->weight;
    for (int i = 0; i < n; i++) {
        double gi = lambda * e[i], hi = lambda;
        for (int k = w->row_start[i]; k < w->row_split[i]; k++) {
            gi += d1[pair[k]];
            hi += d2[pair[k]];
            weight[k] = d2[pair[k]];
        }
        for (int k = w->row_split[i]; k < w->row_start[i + 1]; k++) {
            gi -= d1[pair[k]];
            hi += d2[pair[k]];
            weight[k] = d2[pair[k]];
        }
        w->g[i] = gi;
        w->h[i] = hi;
    }
}

double zelo_query_objective(double* grad, const double* e, int n, const int* a, const int* b,
                            const double* p, const double* offset, int num_pairs,
                            ZeloLink link, double lambda) {
    FitWork w;
    fit_work_alloc(&w, n, num_pairs);
    build_adjacency(&w, n, a, b, num_pairs);
    query_derivs(&w, e, n, a, b, p, offset, num_pairs, link, lambda);
    memcpy(grad, w.g, (size_t)n * sizeof(double));
    double f = query_value(w.d1, e, n, a, b, p, offset, num_pairs, link, lambda);
    fit_work_free(&w);
    return f;
}

static void project_zero_mean(double* x, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) { m += x[i]; }
    m /= n;
    for (int i = 0; i < n; i++) { x[i] -= m; }
}

// out = H d with H = diag(h) − W: the weighted graph Laplacian + λI. Returns dᵀ H d.
static double hessian_times(double* restrict out, const FitWork* w, const double* restrict d, int n) {
    const int* restrict row_start = w->row_start;
    const int* restrict nbr = w->nbr;
    const double* restrict weight = w->weight;
    const double* restrict h = w->h;
    double dhd = 0.0;
    for (int i = 0; i < n; i++) {
        double s = h[i] * d[i];
        for (int k = row_start[i]; k < row_start[i + 1]; k++) { s -= weight[k] * d[nbr[k]]; }
        out[i] = s;
        dhd += d[i] * s;
    }
    return dhd;
}

// solves H step = −g (at the last point evaluated) to residual max(eta ‖g‖, floor) by
// conjugate gradients preconditioned with the diagonal; returns the CG iterations
static int newton_direction(FitWork* w, int n, double lambda, double eta, double floor) {
    double* restrict step = w->step;
    double* restrict r = w->r;
    double* restrict z = w->z;
    double* restrict dir = w->dir;
    double* restrict hd = w->hd;
    double* restrict inv_h = w->inv_h;
    const double* restrict g = w->g;
    const double* restrict h = w->h;
    // the sums below are vector reductions (omp simd): their order is fixed for a build
    double rr = 0.0, rz = 0.0;
    #pragma omp simd reduction(+:rr)
    for (int i = 0; i < n; i++) {
        // a document in no pair has a zero row when λ = 0; its residual stays 0 anyway
        inv_h[i] = h[i] > 0 ? 1.0 / h[i] : 1.0;
        step[i] = 0.0;
        r[i] = -g[i];
        z[i] = r[i] * inv_h[i];
        rr += g[i] * g[i];
    }
    double target = fmax(eta * eta * rr, floor * floor);
    // with λ = 0, Σr = 0 (the gradient and every column of the Laplacian sum to 0), so
    // centring z keeps rᵀz and keeps the iterates in the gauge Σ = 0
    if (lambda == 0) { project_zero_mean(z, n); }
    #pragma omp simd reduction(+:rz)
    for (int i = 0; i < n; i++) { dir[i] = z[i]; rz += r[i] * z[i]; }
    int it = 0;
    int max_it = 2 * n + 10;
    while (it < max_it && rr > target) {
        double dhd = hessian_times(hd, w, dir, n);
        if (!(dhd > 0)) { break; }
        double alpha = rz / dhd;
        double rz_new = 0.0;
        rr = 0.0;
        #pragma omp simd reduction(+:rr, rz_new)
        for (int i = 0; i < n; i++) {
            step[i] += alpha * dir[i];
            r[i] -= alpha * hd[i];
            z[i] = r[i] * inv_h[i];
            rr += r[i] * r[i];
            rz_new += r[i] * z[i];
        }
        it++;
        if (rr <= target) { break; }
        if (lambda == 0) { project_zero_mean(z, n); }
        double beta = rz_new / rz;
        rz = rz_new;
        for (int i = 0; i < n; i++) { dir[i] = z[i] + beta * dir[i]; }
    }
    return it;
}

// ‖x‖∞, or NaN if some x is NaN or infinite (which fmax alone would skip), so that such a
// gradient never passes for converged
static double inf_norm(const double* x, int n) {
    double m = 0.0, poison = 0.0;
    #pragma omp simd reduction(max:m) reduction(+:poison)
    for (int i = 0; i < n; i++) {
        double v = fabs(x[i]);
        m = v > m ? v : m;
        poison += 0.0 * x[i];
    }
    return m + poison;
}

static double dot(const double* x, const double* y, int n) {
    double s = 0.0;
    #pragma omp simd reduction(+:s)
    for (int i = 0; i < n; i++) { s += x[i] * y[i]; }
    return s;
}

static void fit_one_query(double* ratings, ZeloFitStatus* st, FitWork* w, int n, const int* a,
                          const int* b, const double* p, const double* offset, int num_pairs,
                          const ZeloFitConfig* cfg) {
    ZeloLink link = cfg->link;
    double lambda = cfg->lambda;
    build_adjacency(w, n, a, b, num_pairs);
    // without a prior the optimum may not exist: then the link's default prior makes it
    // finite, and the status says so (the caller warns; see zelo_loss.h)
    st->no_optimum = lambda == 0 ? query_optimum(w, p, n) : ZELO_OPTIMUM_FINITE;
    if (st->no_optimum != ZELO_OPTIMUM_FINITE) {
        lambda = link == ZELO_LINK_BT ? ZELO_DEFAULT_LAMBDA_BT : ZELO_DEFAULT_LAMBDA_THURSTONE;
    }
    st->lambda = lambda;
    for (int i = 0; i < n; i++) { w->e[i] = 0.0; }
    query_derivs(w, w->e, n, a, b, p, offset, num_pairs, link, lambda);
    double g_inf = inf_norm(w->g, n);
    // The objective (logs) is evaluated only when a step needs checking on it. A full
    // Newton step is taken unchecked when either
    //  - it shrinks ‖∇‖∞ to at most half of g_best, the smallest value reached by such
    //    steps, or
    //  - the slope along the step at the new point, ∇f(e+s)·s, is still <= 1e-4 ∇f(e)·s:
    //    f is convex, so f(e+s) <= f(e) + ∇f(e+s)·s, and this is Armijo's condition;
    // otherwise a backtracking line search on the objective decides. No cycle is possible:
    // each step of the first kind halves g_best, so either there are finitely many of them
    // (then the others, Armijo steps on a strictly convex objective, converge) or g_best,
    // the gradient at the last one, falls below grad_tol.
    double g_best = g_inf;
    double f = NAN;  // the objective at e, computed only when a line search needs it
    int it = 0, cg_total = 0;
    while (g_inf > cfg->grad_tol && it < cfg->max_iter) {
        // forcing term ‖∇‖ (quadratic convergence) but no residual below grad_tol/2: the
        // fit does not need it and rounding may not allow it
        double eta = fmin(0.5, g_inf);
        cg_total += newton_direction(w, n, lambda, eta, 0.5 * cfg->grad_tol);
        double slope = dot(w->g, w->step, n);
        if (!(slope < 0)) {
            // CG stopped before making progress: fall back on the preconditioned gradient
            for (int i = 0; i < n; i++) { w->step[i] = -w->g[i] * w->inv_h[i]; }
            slope = dot(w->g, w->step, n);
        }
        for (int i = 0; i < n; i++) { w->e_new[i] = w->e[i] + w->step[i]; }
        if (lambda == 0) { project_zero_mean(w->e_new, n); }
        query_derivs(w, w->e_new, n, a, b, p, offset, num_pairs, link, lambda);
        double g_new_inf = inf_norm(w->g, n);
        if (g_new_inf <= 0.5 * g_best) {
            g_best = g_new_inf;
            f = NAN;
        } else if (dot(w->g, w->step, n) <= 1e-4 * slope) {
            f = NAN;
        } else {
            if (isnan(f)) { f = query_value(w->d1, w->e, n, a, b, p, offset, num_pairs, link, lambda); }
            double t = 1.0, f_new = f;
            int accepted = 0;
            for (int ls = 0; ls < 60 && !accepted; ls++, t *= 0.5) {
                for (int i = 0; i < n; i++) { w->e_new[i] = w->e[i] + t * w->step[i]; }
                if (lambda == 0) { project_zero_mean(w->e_new, n); }
                f_new = query_value(w->d1, w->e_new, n, a, b, p, offset, num_pairs, link, lambda);
                if (ls > 0) {
                    query_derivs(w, w->e_new, n, a, b, p, offset, num_pairs, link, lambda);
                    g_new_inf = inf_norm(w->g, n);
                }
                // Armijo; near the optimum f changes by less than its rounding, so a step
                // that keeps f within rounding and shrinks the gradient is taken as well
                int armijo = f_new <= f + 1e-4 * t * slope;
                int flat = f_new <= f + 1e-13 * (1.0 + fabs(f)) && g_new_inf < g_inf;
                accepted = armijo || flat;
            }
            if (!accepted) { break; }  // no decrease along a descent direction: reported below
            f = f_new;
        }
        double* tmp = w->e;
        w->e = w->e_new;
        w->e_new = tmp;
        g_inf = g_new_inf;
        it++;
    }
    if (isnan(f)) { f = query_value(w->d1, w->e, n, a, b, p, offset, num_pairs, link, lambda); }
    memcpy(ratings, w->e, (size_t)n * sizeof(double));
    st->converged = g_inf <= cfg->grad_tol;
    st->iterations = it;
    st->cg_iterations = cg_total;
    st->grad_inf = g_inf;
    st->objective = f;
}

// the largest document and pair counts of a query of the batch (at least 1 each)
static void batch_maxima(int* n_max, int64_t* p_max, const ZeloPairs* pairs) {
    *n_max = 1;
    *p_max = 1;
    for (int q = 0; q < pairs->num_queries; q++) {
        int n = (int)(pairs->doc_start[q + 1] - pairs->doc_start[q]);
        int64_t np = pairs->pair_start[q + 1] - pairs->pair_start[q];
        if (n > *n_max) { *n_max = n; }
        if (np > *p_max) { *p_max = np; }
    }
}

void zelo_query_optima(ZeloOptimum* out, const ZeloPairs* pairs) {
    int n_max;
    int64_t p_max;
    batch_maxima(&n_max, &p_max, pairs);
    #pragma omp parallel
    {
        FitWork w;
        fit_work_alloc(&w, n_max, p_max);
        #pragma omp for schedule(dynamic, 16)
        for (int q = 0; q < pairs->num_queries; q++) {
            int64_t p0 = pairs->pair_start[q];
            int n = (int)(pairs->doc_start[q + 1] - pairs->doc_start[q]);
            build_adjacency(&w, n, pairs->a + p0, pairs->b + p0, (int)(pairs->pair_start[q + 1] - p0));
            out[q] = query_optimum(&w, pairs->p + p0, n);
        }
        fit_work_free(&w);
    }
}

int zelo_fit_ratings(double* ratings, ZeloFitStatus* status, ZeloPairError* err,
                     const ZeloPairs* pairs, const ZeloFitConfig* cfg) {
    if (!zelo_pairs_check(err, pairs, cfg)) { return -1; }
    int Q = pairs->num_queries;
    int n_max;
    int64_t p_max;
    batch_maxima(&n_max, &p_max, pairs);
    int not_converged = 0;
    #pragma omp parallel reduction(+:not_converged)
    {
        FitWork w;
        fit_work_alloc(&w, n_max, p_max);
        #pragma omp for schedule(dynamic, 16)
        for (int q = 0; q < Q; q++) {
            int64_t d0 = pairs->doc_start[q], p0 = pairs->pair_start[q];
            int n = (int)(pairs->doc_start[q + 1] - d0);
            int np = (int)(pairs->pair_start[q + 1] - p0);
            ZeloFitStatus st = { 1, 0, 0, 0.0, 0.0, ZELO_OPTIMUM_FINITE, cfg->lambda };
            if (n > 0) {
                fit_one_query(ratings + d0, &st, &w, n, pairs->a + p0, pairs->b + p0, pairs->p + p0,
                              pairs->offset ? pairs->offset + p0 : NULL, np, cfg);
            }
            if (!st.converged) { not_converged++; }
            if (status) { status[q] = st; }
        }
        fit_work_free(&w);
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
    status->fit.lambda = cfg->lambda;
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
        thurstone_pair_derivs(&d1, &d2, logits[i], targets[i]);
        loss += thurstone_pair_loss(logits[i], targets[i]);
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
        double d = (double)logits[a[i]] - logits[b[i]], d1, d2;
        thurstone_pair_derivs(&d1, &d2, d, p[i]);
        loss += thurstone_pair_loss(d, p[i]);
        dlogits[a[i]] += (float)(d1 / num_pairs);
        dlogits[b[i]] -= (float)(d1 / num_pairs);
    }
    return loss / num_pairs;
}

// in double throughout: rounding k x to float would make the loss jitter by ~1e-7 as k moves,
// and the search would land anywhere in the flat bottom that jitter hides (a relative ~1e-3 in k)
double zelo_pair_scale_loss(double k, const float* x, const int* a, const int* b, const float* p, int num_pairs) {
    double loss = 0.0;
    for (int i = 0; i < num_pairs; i++) { loss += thurstone_pair_loss(k * ((double)x[a[i]] - x[b[i]]), p[i]); }
    return loss / num_pairs;
}

double zelo_pair_scale_fit(double* loss, const float* x, int n, const int* a, const int* b, const float* p, int num_pairs) {
    if (n <= 0 || num_pairs <= 0) { die("zelo_pair_scale_fit: %d scores and %d pairs; it needs both", n, num_pairs); }
    for (int i = 0; i < num_pairs; i++) {
        if (a[i] < 0 || a[i] >= n || b[i] < 0 || b[i] >= n) { die("zelo_pair_scale_fit: pair %d joins %d and %d, outside [0, %d)", i, a[i], b[i], n); }
    }
    const double g = 0.6180339887498949;  // (sqrt 5 - 1) / 2: each step keeps this share of the bracket
    double lo = log(ZELO_SCALE_FIT_MIN), hi = log(ZELO_SCALE_FIT_MAX);
    double u1 = hi - g * (hi - lo), u2 = lo + g * (hi - lo);
    double f1 = zelo_pair_scale_loss(exp(u1), x, a, b, p, num_pairs);
    double f2 = zelo_pair_scale_loss(exp(u2), x, a, b, p, num_pairs);
    // the bracket of log k, 16.1 wide, shrinks below 1e-8 in 48 steps
    while (hi - lo > 1e-8) {
        if (f1 <= f2) {
            hi = u2; u2 = u1; f2 = f1;
            u1 = hi - g * (hi - lo);
            f1 = zelo_pair_scale_loss(exp(u1), x, a, b, p, num_pairs);
        } else {
            lo = u1; u1 = u2; f1 = f2;
            u2 = lo + g * (hi - lo);
            f2 = zelo_pair_scale_loss(exp(u2), x, a, b, p, num_pairs);
        }
    }
    double k = exp(0.5 * (lo + hi));
    *loss = zelo_pair_scale_loss(k, x, a, b, p, num_pairs);
    return k;
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
        bt_pair_derivs(&d1, &d2, logits[i], p[i]);
        loss += bt_pair_loss(logits[i], p[i]);
        dlogits[i] = (float)(d1 / n);
    }
    return loss / n;
}

// ----------------------------------------------------------------------------
// ridge regression

int zelo_ridge_fit(double* w, double* bias, const float* X, const double* y, int n, int d, double alpha) {
    if (n < 1 || d < 1) { return 0; }
    double* mean = (double*)callocCheck((size_t)d, sizeof(double));
    double* A = (double*)callocCheck((size_t)d * d, sizeof(double));  // (d, d) Xc^T Xc, then its Cholesky factor
    double* r = (double*)callocCheck((size_t)d, sizeof(double));      // (d,) Xc^T yc, then the solution
    double* xc = (double*)mallocCheck((size_t)d * sizeof(double));
    double ymean = 0.0;
    for (int i = 0; i < n; i++) {
        ymean += y[i];
        for (int k = 0; k < d; k++) { mean[k] += X[(size_t)i * d + k]; }
    }
    ymean /= n;
    for (int k = 0; k < d; k++) { mean[k] /= n; }
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < d; k++) { xc[k] = X[(size_t)i * d + k] - mean[k]; }
        double yc = y[i] - ymean;
        for (int k = 0; k < d; k++) {
            r[k] += xc[k] * yc;
            for (int l = 0; l <= k; l++) { A[(size_t)k * d + l] += xc[k] * xc[l]; }  // lower triangle
        }
    }
    double trace = 0.0;
    for (int k = 0; k < d; k++) { trace += A[(size_t)k * d + k]; }
    for (int k = 0; k < d; k++) { A[(size_t)k * d + k] += alpha * trace / d; }
    // Cholesky A = L L^T in place (lower triangle), then L z = r and L^T w = z
    int ok = 1;
    for (int k = 0; k < d && ok; k++) {
        for (int l = 0; l <= k; l++) {
            double sum = A[(size_t)k * d + l];
            for (int m = 0; m < l; m++) { sum -= A[(size_t)k * d + m] * A[(size_t)l * d + m]; }
            if (l < k) { A[(size_t)k * d + l] = sum / A[(size_t)l * d + l]; continue; }
            // a pivot that is not clearly positive: the features do not determine w
            if (!(sum > 1e-12 * (trace / d) && sum > 0.0)) { ok = 0; break; }
            A[(size_t)k * d + k] = sqrt(sum);
        }
    }
    if (ok) {
        for (int k = 0; k < d; k++) {
            double sum = r[k];
            for (int m = 0; m < k; m++) { sum -= A[(size_t)k * d + m] * r[m]; }
            r[k] = sum / A[(size_t)k * d + k];
        }
        for (int k = d - 1; k >= 0; k--) {
            double sum = r[k];
            for (int m = k + 1; m < d; m++) { sum -= A[(size_t)m * d + k] * r[m]; }
            r[k] = sum / A[(size_t)k * d + k];
        }
        double b = ymean;
        for (int k = 0; k < d; k++) { w[k] = r[k]; b -= r[k] * mean[k]; }
        *bias = b;
    }
    free(mean); free(A); free(r); free(xc);
    return ok;
}
