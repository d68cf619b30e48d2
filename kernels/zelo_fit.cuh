/*
 * kernels/zelo_fit.cuh — the rating fit of zelo_loss.c (zelo_fit_ratings) on the GPU: every
 * query's Newton iterations with the prior, the Hessian solved by Jacobi-preconditioned
 * conjugate gradients, Thurstone and Bradley–Terry links, in double precision, one block per
 * query (the card's "zELO Thurstone-likelihood kernel").
 *
 * The algorithm is zelo_loss.c's fit_one_query line for line: the same start (e = 0), the
 * same forcing term and CG stopping rule, the same acceptance of full steps (the gradient
 * halves, or Armijo proved from the new gradient by convexity), the same line search, the
 * same statuses; the pair terms are the same functions (common/pair_terms.h). A loop over
 * documents or pairs is shared out over the block's threads; its sums (the objective, dot
 * products, norms) are block reductions in a fixed order, so a query's result does not depend
 * on the run, only on the block size; they differ from the CPU's sequential sums by rounding
 * alone, which the Newton iterations wash out (test_zelo_cuda holds the two to 1e-9). Each
 * document's row of the pair graph is built in the CPU's order (the pairs where it is a, then
 * those where it is b, each by pair index): slots are claimed with integer atomics, then each
 * row is sorted, so the row sums run in the CPU's order too.
 *
 * With λ = 0 the check whether a query has a finite optimum (graph searches, zelo_loss.h's
 * ZeloOptimum) stays on the host (zelo_query_optima): it is O(n + pairs) per query, once; the
 * kernel takes its result and fits such queries with the link's default prior, as the CPU.
 *
 * Memory: each block owns a slot of workspace sized for the largest query (zelo_loss.c's
 * FitWork: ratings, gradient, CG vectors, the pair terms and the adjacency) and takes queries
 * blockIdx.x, blockIdx.x + gridDim.x, ...; the grid is as many slots as the caller gives, so
 * the workspace stays small (and in L2) however many queries there are.
 */
#ifndef ZELO_KERNELS_ZELO_FIT_CUH
#define ZELO_KERNELS_ZELO_FIT_CUH

#include <stdint.h>
#include "kernels/common.cuh"
#include "common/pair_terms.h"
#include "common/utils.h"
#include "zelo_loss.h"

// doubles and ints of one block's workspace for queries of at most n_max documents and
// p_max pairs: 10 vectors of n_max, the pair terms ℓ' and ℓ'' (p_max each) and the Hessian's
// off-diagonal (2 p_max); the rows (n_max + 1 starts, n_max splits), 2 n_max cursors, and each
// row entry's pair and other document (2 p_max each)
__host__ __device__ static inline size_t zelo_fit_work_doubles(int n_max, int p_max) {
    return 10 * (size_t)n_max + 4 * (size_t)p_max;
}
__host__ __device__ static inline size_t zelo_fit_work_ints(int n_max, int p_max) {
    return 4 * (size_t)n_max + 1 + 4 * (size_t)p_max;
}

// ---- block reductions in a fixed order (blockDim.x a multiple of 32, every thread calls) ----

// the sums of x and y over the block, returned to every thread; shared: 64 doubles
__device__ __forceinline__ void fit_block_sum2(double* x, double* y, double* shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    double sx = warp_sum_double(*x), sy = warp_sum_double(*y);
    if (lane == 0) { shared[warp] = sx; shared[32 + warp] = sy; }
    __syncthreads();
    sx = lane < num_warps ? shared[lane] : 0.0;
    sy = lane < num_warps ? shared[32 + lane] : 0.0;
    *x = warp_sum_double(sx);
    *y = warp_sum_double(sy);
    __syncthreads();  // shared is free again for the next reduction
}

__device__ __forceinline__ double fit_block_sum(double x, double* shared) {
    double unused = 0.0;
    fit_block_sum2(&x, &unused, shared);
    return x;
}

// ‖x‖∞ over the block, or NaN if some x is NaN or infinite (zelo_loss.c's inf_norm: such a
// gradient must never pass for converged)
__device__ __forceinline__ double fit_inf_norm(const double* x, int n, double* shared) {
    double m = 0.0;
    int bad = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        double v = fabs(x[i]);
        m = v > m ? v : m;
        bad |= !isfinite(x[i]);
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        double other = __shfl_xor_sync(0xffffffffu, m, offset);
        m = other > m ? other : m;
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
    if (lane == 0) { shared[warp] = m; }
    bad = __syncthreads_or(bad);
    m = lane < num_warps ? shared[lane] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) {
        double other = __shfl_xor_sync(0xffffffffu, m, offset);
        m = other > m ? other : m;
    }
    __syncthreads();
    return bad ? NAN : m;
}

__device__ __forceinline__ double fit_dot(const double* x, const double* y, int n, double* shared) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { s += x[i] * y[i]; }
    return fit_block_sum(s, shared);
}

__device__ __forceinline__ void fit_project_zero_mean(double* x, int n, double* shared) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { s += x[i]; }
    double m = fit_block_sum(s, shared) / n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { x[i] -= m; }
}

// ---- one query (the arrays of zelo_loss.c's FitWork, in one block's slot) ----

struct FitQuery {
    int n, num_pairs;
    const int* a;           // (num_pairs,) this query's pairs, local document indices
    const int* b;
    const double* p;
    const double* offset;   // (num_pairs,) or NULL
    ZeloLink link;
    double lambda;
    double *g, *h, *step, *r, *z, *dir, *hd, *inv_h;  // (n,)
    double *d1, *d2, *weight;  // (num_pairs,), (num_pairs,), (2 num_pairs,)
    int *row_start, *row_split, *fill, *pair, *nbr;   // as zelo_loss.c's FitWork
};

// the rows of the pair graph in zelo_loss.c's build_adjacency order
__device__ void fit_build_adjacency(const FitQuery* fq) {
    int n = fq->n, np = fq->num_pairs;
    int *count_a = fq->fill, *count_b = fq->fill + n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { count_a[i] = 0; count_b[i] = 0; }
    __syncthreads();
    for (int j = threadIdx.x; j < np; j += blockDim.x) {
        atomicAdd(&count_a[fq->a[j]], 1);
        atomicAdd(&count_b[fq->b[j]], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // a prefix sum over the documents: O(n), once per query
        int start = 0;
        for (int i = 0; i < n; i++) {
            fq->row_start[i] = start;
            fq->row_split[i] = start + count_a[i];
            start = fq->row_split[i] + count_b[i];
            count_a[i] = fq->row_start[i];  // the counts become each part's next free entry
            count_b[i] = fq->row_split[i];
        }
        fq->row_start[n] = start;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < np; j += blockDim.x) {
        int ka = atomicAdd(&count_a[fq->a[j]], 1), kb = atomicAdd(&count_b[fq->b[j]], 1);
        fq->pair[ka] = j;
        fq->nbr[ka] = fq->b[j];
        fq->pair[kb] = j;
        fq->nbr[kb] = fq->a[j];
    }
    __syncthreads();
    // the atomics handed out the entries in any order: sort each part of each row by pair
    // index (insertion sort: rows are short, k entries in a k-regular graph)
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int parts[3] = { fq->row_start[i], fq->row_split[i], fq->row_start[i + 1] };
        for (int part = 0; part < 2; part++) {
            for (int k = parts[part] + 1; k < parts[part + 1]; k++) {
                int pk = fq->pair[k], nk = fq->nbr[k], m = k;
                for (; m > parts[part] && fq->pair[m - 1] > pk; m--) {
                    fq->pair[m] = fq->pair[m - 1];
                    fq->nbr[m] = fq->nbr[m - 1];
                }
                fq->pair[m] = pk;
                fq->nbr[m] = nk;
            }
        }
    }
    __syncthreads();
}

// zelo_loss.c's query_derivs: at e, the gradient g, the Hessian's diagonal h and off-diagonal weight
__device__ void fit_derivs(const FitQuery* fq, const double* e) {
    __syncthreads();  // e was written by other threads
    for (int j = threadIdx.x; j < fq->num_pairs; j += blockDim.x) {
        double d = e[fq->a[j]] - e[fq->b[j]] + (fq->offset ? fq->offset[j] : 0.0);
        if (fq->link == ZELO_LINK_BT) { bt_pair_derivs(&fq->d1[j], &fq->d2[j], d, fq->p[j]); }
        else { thurstone_pair_derivs(&fq->d1[j], &fq->d2[j], d, fq->p[j]); }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < fq->n; i += blockDim.x) {
        double gi = fq->lambda * e[i], hi = fq->lambda;
        for (int k = fq->row_start[i]; k < fq->row_split[i]; k++) {
            gi += fq->d1[fq->pair[k]];
            hi += fq->d2[fq->pair[k]];
            fq->weight[k] = fq->d2[fq->pair[k]];
        }
        for (int k = fq->row_split[i]; k < fq->row_start[i + 1]; k++) {
            gi -= fq->d1[fq->pair[k]];
            hi += fq->d2[fq->pair[k]];
            fq->weight[k] = fq->d2[fq->pair[k]];
        }
        fq->g[i] = gi;
        fq->h[i] = hi;
    }
    __syncthreads();
}

// zelo_loss.c's query_value: the objective at e
__device__ double fit_value(const FitQuery* fq, const double* e, double* shared) {
    __syncthreads();  // e was written by other threads
    double f = 0.0;
    for (int i = threadIdx.x; i < fq->n; i += blockDim.x) { f += 0.5 * fq->lambda * e[i] * e[i]; }
    for (int j = threadIdx.x; j < fq->num_pairs; j += blockDim.x) {
        double d = e[fq->a[j]] - e[fq->b[j]] + (fq->offset ? fq->offset[j] : 0.0);
        f += fq->link == ZELO_LINK_BT ? bt_pair_loss(d, fq->p[j]) : thurstone_pair_loss(d, fq->p[j]);
    }
    return fit_block_sum(f, shared);
}

// zelo_loss.c's newton_direction: step solves H step = −g to residual max(eta ‖g‖, floor);
// returns the CG iterations
__device__ int fit_newton_direction(const FitQuery* fq, double eta, double floor, double* shared) {
    int n = fq->n;
    double rr = 0.0, rz = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        fq->inv_h[i] = fq->h[i] > 0 ? 1.0 / fq->h[i] : 1.0;
        fq->step[i] = 0.0;
        fq->r[i] = -fq->g[i];
        fq->z[i] = fq->r[i] * fq->inv_h[i];
        rr += fq->g[i] * fq->g[i];
    }
    rr = fit_block_sum(rr, shared);
    double target = fmax(eta * eta * rr, floor * floor);
    if (fq->lambda == 0) { fit_project_zero_mean(fq->z, n, shared); }
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        fq->dir[i] = fq->z[i];
        rz += fq->r[i] * fq->z[i];
    }
    rz = fit_block_sum(rz, shared);  // its barriers also publish dir to every thread
    int it = 0, max_it = 2 * n + 10;
    while (it < max_it && rr > target) {
        // hd = H dir, H = diag(h) − W (zelo_loss.c's hessian_times), and dᵀHd
        double dhd = 0.0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            double s = fq->h[i] * fq->dir[i];
            for (int k = fq->row_start[i]; k < fq->row_start[i + 1]; k++) { s -= fq->weight[k] * fq->dir[fq->nbr[k]]; }
            fq->hd[i] = s;
            dhd += fq->dir[i] * s;
        }
        dhd = fit_block_sum(dhd, shared);
        if (!(dhd > 0)) { break; }
        double alpha = rz / dhd, rz_new = 0.0;
        rr = 0.0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            fq->step[i] += alpha * fq->dir[i];
            fq->r[i] -= alpha * fq->hd[i];
            fq->z[i] = fq->r[i] * fq->inv_h[i];
            rr += fq->r[i] * fq->r[i];
            rz_new += fq->r[i] * fq->z[i];
        }
        fit_block_sum2(&rr, &rz_new, shared);
        it++;
        if (rr <= target) { break; }
        if (fq->lambda == 0) { fit_project_zero_mean(fq->z, n, shared); }
        double beta = rz_new / rz;
        rz = rz_new;
        for (int i = threadIdx.x; i < n; i += blockDim.x) { fq->dir[i] = fq->z[i] + beta * fq->dir[i]; }
        __syncthreads();  // the next product reads every thread's dir
    }
    return it;
}

// e_new = e + t step, centred when λ = 0
__device__ void fit_trial_point(const FitQuery* fq, double* e_new, const double* e, double t, double* shared) {
    for (int i = threadIdx.x; i < fq->n; i += blockDim.x) { e_new[i] = e[i] + t * fq->step[i]; }
    if (fq->lambda == 0) { fit_project_zero_mean(e_new, fq->n, shared); }
}

// zelo_loss.c's fit_one_query from the adjacency on: the ratings into one of the slot's two
// rating vectors e and e_new (returned) and the status (every thread's copy alike)
__device__ double* fit_query(ZeloFitStatus* st, const FitQuery* fq, double* e, double* e_new, double grad_tol,
                             int max_iter, double* shared) {
    int n = fq->n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) { e[i] = 0.0; }
    fit_derivs(fq, e);
    double g_inf = fit_inf_norm(fq->g, n, shared);
    double g_best = g_inf;
    double f = NAN;  // the objective at e, computed only when a line search needs it
    int it = 0, cg_total = 0;
    while (g_inf > grad_tol && it < max_iter) {
        double eta = fmin(0.5, g_inf);
        cg_total += fit_newton_direction(fq, eta, 0.5 * grad_tol, shared);
        double slope = fit_dot(fq->g, fq->step, n, shared);
        if (!(slope < 0)) {
            // CG stopped before making progress: fall back on the preconditioned gradient
            for (int i = threadIdx.x; i < n; i += blockDim.x) { fq->step[i] = -fq->g[i] * fq->inv_h[i]; }
            slope = fit_dot(fq->g, fq->step, n, shared);
        }
        fit_trial_point(fq, e_new, e, 1.0, shared);
        fit_derivs(fq, e_new);
        double g_new_inf = fit_inf_norm(fq->g, n, shared);
        if (g_new_inf <= 0.5 * g_best) {
            g_best = g_new_inf;
            f = NAN;
        } else if (fit_dot(fq->g, fq->step, n, shared) <= 1e-4 * slope) {
            f = NAN;
        } else {
            if (isnan(f)) { f = fit_value(fq, e, shared); }
            double t = 1.0, f_new = f;
            int accepted = 0;
            for (int ls = 0; ls < 60 && !accepted; ls++, t *= 0.5) {
                fit_trial_point(fq, e_new, e, t, shared);
                f_new = fit_value(fq, e_new, shared);
                if (ls > 0) {
                    fit_derivs(fq, e_new);
                    g_new_inf = fit_inf_norm(fq->g, n, shared);
                }
                int armijo = f_new <= f + 1e-4 * t * slope;
                int flat = f_new <= f + 1e-13 * (1.0 + fabs(f)) && g_new_inf < g_inf;
                accepted = armijo || flat;
            }
            if (!accepted) { break; }  // no decrease along a descent direction: reported below
            f = f_new;
        }
        double* tmp = e;
        e = e_new;
        e_new = tmp;
        g_inf = g_new_inf;
        it++;
    }
    if (isnan(f)) { f = fit_value(fq, e, shared); }
    st->converged = g_inf <= grad_tol;
    st->iterations = it;
    st->cg_iterations = cg_total;
    st->grad_inf = g_inf;
    st->objective = f;
    return e;
}

// ratings: (doc_start[Q],), status: (Q,); pairs: its arrays on the device; no_optimum: (Q,)
// ZeloOptimum of each query's prior-free fit, NULL when cfg.lambda > 0; work: gridDim.x slots
// of zelo_fit_work_doubles / _ints each. blockDim.x: a multiple of 32.
__global__ void zelo_fit_kernel1(double* ratings, ZeloFitStatus* status, double* work, int* iwork, ZeloPairs pairs,
                                 const int* no_optimum, ZeloFitConfig cfg, int n_max, int p_max) {
    __shared__ double shared[64];
    double* wd = work + blockIdx.x * zelo_fit_work_doubles(n_max, p_max);
    int* wi = iwork + blockIdx.x * zelo_fit_work_ints(n_max, p_max);
    double* vectors[10];
    for (int v = 0; v < 10; v++) { vectors[v] = wd + (size_t)v * n_max; }
    FitQuery fq;
    fq.g = vectors[2]; fq.h = vectors[3]; fq.step = vectors[4]; fq.r = vectors[5]; fq.z = vectors[6];
    fq.dir = vectors[7]; fq.hd = vectors[8]; fq.inv_h = vectors[9];
    fq.d1 = wd + 10 * (size_t)n_max;
    fq.d2 = fq.d1 + p_max;
    fq.weight = fq.d2 + p_max;
    fq.row_start = wi;
    fq.row_split = fq.row_start + n_max + 1;
    fq.fill = fq.row_split + n_max;
    fq.pair = fq.fill + 2 * (size_t)n_max;
    fq.nbr = fq.pair + 2 * (size_t)p_max;
    fq.link = cfg.link;
    for (int q = blockIdx.x; q < pairs.num_queries; q += gridDim.x) {
        int64_t d0 = pairs.doc_start[q], p0 = pairs.pair_start[q];
        fq.n = (int)(pairs.doc_start[q + 1] - d0);
        fq.num_pairs = (int)(pairs.pair_start[q + 1] - p0);
        fq.a = pairs.a + p0;
        fq.b = pairs.b + p0;
        fq.p = pairs.p + p0;
        fq.offset = pairs.offset ? pairs.offset + p0 : NULL;
        ZeloFitStatus st = { 1, 0, 0, 0.0, 0.0, ZELO_OPTIMUM_FINITE, cfg.lambda };
        if (fq.n > 0) {
            // without a prior the optimum may not exist: then the link's default prior, said
            // in the status (zelo_loss.h)
            st.no_optimum = no_optimum ? (ZeloOptimum)no_optimum[q] : ZELO_OPTIMUM_FINITE;
            fq.lambda = st.no_optimum == ZELO_OPTIMUM_FINITE ? cfg.lambda
                        : cfg.link == ZELO_LINK_BT ? ZELO_DEFAULT_LAMBDA_BT : ZELO_DEFAULT_LAMBDA_THURSTONE;
            st.lambda = fq.lambda;
            fit_build_adjacency(&fq);
            const double* e = fit_query(&st, &fq, vectors[0], vectors[1], cfg.grad_tol, cfg.max_iter, shared);
            for (int i = threadIdx.x; i < fq.n; i += blockDim.x) { ratings[d0 + i] = e[i]; }
        }
        if (threadIdx.x == 0) { status[q] = st; }
        __syncthreads();  // the slot is reused by the block's next query
    }
}

// the fit of every query of pairs (arrays on the device) into ratings and status (device),
// over num_slots blocks of block_size threads (a multiple of 32, at most 1024), each with its
// slot of work (num_slots * zelo_fit_work_doubles) and iwork (num_slots * zelo_fit_work_ints);
// n_max and p_max bound every query's documents and pairs
static void zelo_fit_cuda(double* ratings, ZeloFitStatus* status, double* work, int* iwork, const ZeloPairs* pairs,
                          const int* no_optimum, const ZeloFitConfig* cfg, int n_max, int p_max, int num_slots,
                          int block_size, cudaStream_t stream) {
    if (pairs->num_queries == 0) { return; }
    zelo_fit_kernel1<<<num_slots, block_size, 0, stream>>>(ratings, status, work, iwork, *pairs, no_optimum, *cfg,
                                                           n_max, p_max);
    cudaCheck(cudaGetLastError());
}

// ---- the whole call on host arrays (kernels/model_cuda.h declares it for the programs) ----

// 128 threads a block: a query of the paper's size (100 documents, 400 pairs) keeps most of
// them busy, and its many block reductions stay short (dev/cuda/zelo_fit.cu times 64 to 256)
#define ZELO_FIT_BLOCK_SIZE 128
// the workspace is one slot per block and the grid at most this many blocks per SM, and at
// most 1 GiB. 16 is an upper bound on what an SM holds at once (2048 threads); the kernel's
// registers allow fewer (126 a thread for sm_90, ptxas -v: 4 blocks of 128), so blocks beyond
// those wait for an SM and their slots only cost memory (20 KB each at the paper's size)
#define ZELO_FIT_SLOTS_PER_SM 16
#define ZELO_FIT_WORK_BYTES ((size_t)1 << 30)

// a device copy of n bytes of host memory (NULL for NULL)
static void* zelo_fit_device_copy(const void* host, size_t bytes) {
    if (host == NULL) { return NULL; }
    void* d;
    cudaCheck(cudaMalloc(&d, bytes > 0 ? bytes : 1));
    cudaCheck(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
    return d;
}

// a batch on the device, as zelo_fit_cuda takes it
typedef struct {
    ZeloPairs pairs;   // its arrays on the device
    int* no_optimum;   // (Q,) ZeloOptimum of each query without prior, on the device; NULL when λ > 0
    int n_max, p_max;  // the most documents and pairs of a query
    int64_t num_docs;  // D, the ratings
} ZeloFitBatchCuda;

// uploads a checked batch (zelo_pairs_check); with λ = 0 the host first finds the queries
// without a finite optimum (graph searches, O(n + pairs) each)
static void zelo_fit_batch_upload(ZeloFitBatchCuda* out, const ZeloPairs* pairs, const ZeloFitConfig* cfg) {
    int Q = pairs->num_queries;
    int64_t P = pairs->pair_start[Q];
    out->num_docs = pairs->doc_start[Q];
    out->n_max = 1;
    out->p_max = 1;
    for (int q = 0; q < Q; q++) {
        int64_t n = pairs->doc_start[q + 1] - pairs->doc_start[q], np = pairs->pair_start[q + 1] - pairs->pair_start[q];
        if (np > INT32_MAX) { die("zelo_fit_cuda: query %d has %lld pairs, more than a query may have", q, (long long)np); }
        if (n > out->n_max) { out->n_max = (int)n; }
        if (np > out->p_max) { out->p_max = (int)np; }
    }
    out->no_optimum = NULL;
    if (cfg->lambda == 0) {
        ZeloOptimum* optima = (ZeloOptimum*)mallocCheck((size_t)Q * sizeof(ZeloOptimum) + 1);
        zelo_query_optima(optima, pairs);
        int* as_int = (int*)mallocCheck((size_t)Q * sizeof(int) + 1);
        for (int q = 0; q < Q; q++) { as_int[q] = (int)optima[q]; }
        out->no_optimum = (int*)zelo_fit_device_copy(as_int, (size_t)Q * sizeof(int));
        free(as_int);
        free(optima);
    }
    out->pairs = *pairs;
    out->pairs.doc_start = (const int64_t*)zelo_fit_device_copy(pairs->doc_start, (size_t)(Q + 1) * sizeof(int64_t));
    out->pairs.pair_start = (const int64_t*)zelo_fit_device_copy(pairs->pair_start, (size_t)(Q + 1) * sizeof(int64_t));
    out->pairs.a = (const int*)zelo_fit_device_copy(pairs->a, (size_t)P * sizeof(int));
    out->pairs.b = (const int*)zelo_fit_device_copy(pairs->b, (size_t)P * sizeof(int));
    out->pairs.p = (const double*)zelo_fit_device_copy(pairs->p, (size_t)P * sizeof(double));
    out->pairs.offset = (const double*)zelo_fit_device_copy(pairs->offset, (size_t)P * sizeof(double));
}

static void zelo_fit_batch_free(ZeloFitBatchCuda* batch) {
    const void* buffers[] = { batch->no_optimum, batch->pairs.doc_start, batch->pairs.pair_start, batch->pairs.a,
                              batch->pairs.b, batch->pairs.p, batch->pairs.offset };
    for (const void* buffer : buffers) { cudaCheck(cudaFree((void*)buffer)); }
    memset(batch, 0, sizeof(*batch));
}

// the grid of a call: ZELO_FIT_SLOTS_PER_SM blocks per SM, no more than there are queries,
// and no more slots of workspace than ZELO_FIT_WORK_BYTES hold
static int zelo_fit_default_slots(const ZeloFitBatchCuda* batch) {
    int device, sms;
    cudaCheck(cudaGetDevice(&device));
    cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    size_t slot_bytes = zelo_fit_work_doubles(batch->n_max, batch->p_max) * sizeof(double) +
                        zelo_fit_work_ints(batch->n_max, batch->p_max) * sizeof(int);
    size_t slots = (size_t)sms * ZELO_FIT_SLOTS_PER_SM;
    if (slots > (size_t)batch->pairs.num_queries) { slots = (size_t)batch->pairs.num_queries; }
    if (slots > ZELO_FIT_WORK_BYTES / slot_bytes) { slots = ZELO_FIT_WORK_BYTES / slot_bytes; }
    return slots < 1 ? 1 : (int)slots;
}

// fits an uploaded batch over num_slots blocks of block_size threads into ratings (D) and
// status (Q, or NULL) on the host; returns the number of queries that did not converge. The
// device outputs are poisoned (0xFF bytes: NaN) first, so that an entry the kernel missed
// shows, not what the memory held before.
static int zelo_fit_uploaded(double* ratings, ZeloFitStatus* status, const ZeloFitBatchCuda* batch,
                             const ZeloFitConfig* cfg, int num_slots, int block_size) {
    int Q = batch->pairs.num_queries;
    size_t D = (size_t)batch->num_docs;
    double *d_work, *d_ratings;
    int* d_iwork;
    ZeloFitStatus* d_status;
    cudaCheck(cudaMalloc((void**)&d_work, num_slots * zelo_fit_work_doubles(batch->n_max, batch->p_max) * sizeof(double)));
    cudaCheck(cudaMalloc((void**)&d_iwork, num_slots * zelo_fit_work_ints(batch->n_max, batch->p_max) * sizeof(int)));
    cudaCheck(cudaMalloc((void**)&d_ratings, (D > 0 ? D : 1) * sizeof(double)));
    cudaCheck(cudaMalloc((void**)&d_status, (size_t)(Q > 0 ? Q : 1) * sizeof(ZeloFitStatus)));
    cudaCheck(cudaMemset(d_ratings, 0xFF, D * sizeof(double)));
    cudaCheck(cudaMemset(d_status, 0xFF, (size_t)Q * sizeof(ZeloFitStatus)));
    zelo_fit_cuda(d_ratings, d_status, d_work, d_iwork, &batch->pairs, batch->no_optimum, cfg, batch->n_max,
                  batch->p_max, num_slots, block_size, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(ratings, d_ratings, D * sizeof(double), cudaMemcpyDeviceToHost));
    ZeloFitStatus* st = status ? status : (ZeloFitStatus*)mallocCheck((size_t)Q * sizeof(ZeloFitStatus) + 1);
    cudaCheck(cudaMemcpy(st, d_status, (size_t)Q * sizeof(ZeloFitStatus), cudaMemcpyDeviceToHost));
    int not_converged = 0;
    for (int q = 0; q < Q; q++) { not_converged += !st[q].converged; }
    if (st != status) { free(st); }
    const void* buffers[] = { d_work, d_iwork, d_ratings, d_status };
    for (const void* buffer : buffers) { cudaCheck(cudaFree((void*)buffer)); }
    return not_converged;
}

int zelo_fit_ratings_cuda(double* ratings, ZeloFitStatus* status, ZeloPairError* err, const ZeloPairs* pairs,
                          const ZeloFitConfig* cfg) {
    if (!zelo_pairs_check(err, pairs, cfg)) { return -1; }
    if (pairs->num_queries == 0) { return 0; }
    ZeloFitBatchCuda batch;
    zelo_fit_batch_upload(&batch, pairs, cfg);
    int not_converged = zelo_fit_uploaded(ratings, status, &batch, cfg, zelo_fit_default_slots(&batch), ZELO_FIT_BLOCK_SIZE);
    zelo_fit_batch_free(&batch);
    return not_converged;
}

#endif // ZELO_KERNELS_ZELO_FIT_CUH
