/*
 * kernels/attention.cuh — bidirectional multi-head attention inside each sequence of a
 * packed batch (model.c attention_head_*), forward and backward. No padding exists, so no
 * mask: a query row sees exactly the T keys of its own sequence.
 *
 * The simple, correct version: the fp32 backend's, and the reference of the fused one
 * (kernels/flash_attention.cuh, bf16, which never stores the T x T scores). Forward: one block
 * per (query token, head); the block holds the query's row of T scores in shared memory,
 * softmaxes it, writes it to att (the backward needs it) and multiplies it with V. Backward
 * in two kernels, so that every output entry is written by one thread with a sum taken in
 * a fixed order (deterministic, no atomics): per (query token, head), dP = dy V^T, the
 * softmax backward dS, and dq = dS K; then per (key token, head), dk = dS^T Q and dv = P^T dy.
 *
 * qkv (N, 3*C): q, k, v of each token side by side, head h in columns [h*hs, (h+1)*hs) of
 * each; att (A) and datt (A): sequence s's (NH, T, T) block at att_offsets[s], as model.h.
 *
 * The split packing (model.h, Packing): split_at (S) gives where each sequence's document
 * starts (relative; T when it has none, and everywhere under the joint packing,
 * packing_layout); a score across the two segments gets the head's gate before the softmax.
 * The gates' gradient, the sum of those scores' dS, is taken without atomics too: the query
 * kernel writes each row's sum, one per (token, head), and one more kernel adds the rows up
 * per head in a fixed order, that of model.c's bert_backward.
 *
 * Both directions are templated on floatX, the storage type of qkv, out and att, and of dout
 * and dqkv (kernels/bf16.cuh): float, or bf16 with the same float arithmetic: the scores,
 * their softmax (maximum, exps, sum) and the products with V are float either way, and P V
 * takes the float probabilities, not their stored rounding. The backward reads the stored
 * probabilities (what the forward kept), sums dP, the softmax backward's row dot and every
 * product in float, and keeps dS in float (datt, scratch between its two kernels), so that
 * dq, dk and dv are each one float sum rounded once as stored. The gates and their gradient
 * are float in both (the fp32 master's, NH per layer).
 */
#ifndef ZELO_KERNELS_ATTENTION_CUH
#define ZELO_KERNELS_ATTENTION_CUH

#include "kernels/bf16.cuh"

// where the block of token t and head h finds its sequence: the sequence s, its first token,
// its length T, t's row i in it, and the offset of the head's (T, T) block in att
struct AttentionRow {
    int s, start, T, i;
    size_t head;
};
__device__ __forceinline__ AttentionRow attention_row(const int* seq_starts, const int* att_offsets, int S, int t, int h) {
    AttentionRow r;
    r.s = sequence_of(seq_starts, S, t);
    r.start = seq_starts[r.s];
    r.T = seq_starts[r.s + 1] - r.start;
    r.i = t - r.start;
    r.head = (size_t)att_offsets[r.s] + (size_t)h * r.T * r.T;
    return r;
}

// whether rows i and j lie in different segments of a sequence whose document starts at row
// split (never when split = T)
__device__ __forceinline__ bool across_segments(int i, int j, int split) {
    return (i < split) != (j < split);
}

// grid (N, NH); dynamic shared memory (max_T + 32) floats. gates (NH): the layer's, added to
// the scores across the segments; NULL adds nothing (the joint packing)
template <typename floatX>
__global__ void attention_forward_kernel1(floatX* out, floatX* att, const floatX* qkv, const int* seq_starts,
                                          const int* att_offsets, const int* split_at, const float* gates, int S, int C,
                                          int NH) {
    extern __shared__ float smem[];
    int t = blockIdx.x, h = blockIdx.y, hs = C / NH;
    AttentionRow r = attention_row(seq_starts, att_offsets, S, t, h);
    int start = r.start, T = r.T, split = split_at[r.s];
    float scale = 1.0f / sqrtf((float)hs);
    float* p = smem;          // (T) this query's row of scores, then of probabilities
    float* scratch = smem + T; // (32) for block_reduce
    const floatX* q = qkv + (size_t)t * 3 * C + h * hs;
    float local_max = -INFINITY;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        const floatX* k = qkv + (size_t)(start + j) * 3 * C + C + h * hs;
        float dot = 0.0f;
        for (int d = 0; d < hs; d++) { dot += to_float(q[d]) * to_float(k[d]); }
        p[j] = scale * dot;
        if (gates != NULL && across_segments(r.i, j, split)) { p[j] += gates[h]; }
        local_max = fmaxf(local_max, p[j]);
    }
    // subtracting the row maximum keeps exp from overflowing; it cancels out
    float maxv = block_reduce(local_max, scratch, 1);
    float local_sum = 0.0f;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        p[j] = expf(p[j] - maxv);
        local_sum += p[j];
    }
    float inv = 1.0f / block_reduce(local_sum, scratch, 0);
    floatX* att_row = att + r.head + (size_t)r.i * T;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        p[j] *= inv;
        att_row[j] = from_float<floatX>(p[j]);
    }
    __syncthreads();
    const floatX* v = qkv + (size_t)start * 3 * C + 2 * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < T; j++) { acc += p[j] * to_float(v[(size_t)j * 3 * C + d]); }
        out[(size_t)t * C + h * hs + d] = from_float<floatX>(acc);
    }
}

// grid (N, NH), one block per (query token, head); dynamic shared memory (max_T + 32) floats.
// datt gets dS, the gradient wrt the scores; dqkv gets the head's columns of dq WRITTEN;
// dgate_rows (N, NH), unless NULL, the row's sum of dS across the segments (its share of the
// gate's gradient) WRITTEN
template <typename floatX>
__global__ void attention_backward_query_kernel1(floatX* dqkv, float* datt, double* dgate_rows, const floatX* dout,
                                                 const floatX* qkv, const floatX* att, const int* seq_starts,
                                                 const int* att_offsets, const int* split_at, int S, int C, int NH) {
    extern __shared__ float smem[];
    int t = blockIdx.x, h = blockIdx.y, hs = C / NH;
    AttentionRow r = attention_row(seq_starts, att_offsets, S, t, h);
    int start = r.start, T = r.T, split = split_at[r.s];
    float scale = 1.0f / sqrtf((float)hs);
    float* ds = smem;          // (T) dP, then dS
    float* scratch = smem + T; // (32)
    const floatX* dy = dout + (size_t)t * C + h * hs;
    const floatX* p = att + r.head + (size_t)r.i * T;
    float local_dot = 0.0f;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        const floatX* v = qkv + (size_t)(start + j) * 3 * C + 2 * C + h * hs;
        float dp = 0.0f;
        for (int d = 0; d < hs; d++) { dp += to_float(dy[d]) * to_float(v[d]); }
        ds[j] = dp;
        local_dot += to_float(p[j]) * dp;
    }
    // softmax backward: dS = P * (dP - sum_j P dP)
    float dot = block_reduce(local_dot, scratch, 0);
    float* datt_row = datt + r.head + (size_t)r.i * T;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        ds[j] = to_float(p[j]) * (ds[j] - dot);
        datt_row[j] = ds[j];
    }
    __syncthreads();
    if (dgate_rows != NULL && threadIdx.x == 0) {
        // by one thread, in double and in key order, as model.c's attention_head_backward
        double sum = 0.0;
        for (int j = 0; j < T; j++) {
            if (across_segments(r.i, j, split)) { sum += ds[j]; }
        }
        dgate_rows[(size_t)t * NH + h] = sum;
    }
    const floatX* k = qkv + (size_t)start * 3 * C + C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < T; j++) { acc += ds[j] * to_float(k[(size_t)j * 3 * C + d]); }
        dqkv[(size_t)t * 3 * C + h * hs + d] = from_float<floatX>(scale * acc);
    }
}

// grid (N, NH), one block per (key token, head): dk = dS^T q / sqrt(hs), dv = P^T dy, the
// head's columns of dqkv WRITTEN
template <typename floatX>
__global__ void attention_backward_key_kernel1(floatX* dqkv, const float* datt, const floatX* dout, const floatX* qkv,
                                               const floatX* att, const int* seq_starts, const int* att_offsets,
                                               int S, int C, int NH) {
    int t = blockIdx.x, h = blockIdx.y, hs = C / NH;
    AttentionRow r = attention_row(seq_starts, att_offsets, S, t, h);
    int start = r.start, T = r.T;
    float scale = 1.0f / sqrtf((float)hs);
    const float* ds = datt + r.head + r.i;  // column i (this key's), stride T
    const floatX* p = att + r.head + r.i;
    const floatX* q = qkv + (size_t)start * 3 * C + h * hs;
    const floatX* dy = dout + (size_t)start * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float dk = 0.0f, dv = 0.0f;
        for (int i = 0; i < T; i++) {
            dk += ds[(size_t)i * T] * to_float(q[(size_t)i * 3 * C + d]);
            dv += to_float(p[(size_t)i * T]) * to_float(dy[(size_t)i * C + d]);
        }
        dqkv[(size_t)t * 3 * C + C + h * hs + d] = from_float<floatX>(scale * dk);
        dqkv[(size_t)t * 3 * C + 2 * C + h * hs + d] = from_float<floatX>(dv);
    }
}

// dgates (NH) += the layer's gates' gradient: per head, the rows' sums dgate_rows (N, NH) added
// in double over each sequence's rows in order, then the sequences' sums in order (model.c's
// gate_partial); one thread per head
__global__ void attention_gate_backward_kernel1(float* dgates, const double* dgate_rows, const int* seq_starts,
                                                int S, int NH) {
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= NH) { return; }
    double sum = 0.0;
    for (int s = 0; s < S; s++) {
        double partial = 0.0;
        for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) { partial += dgate_rows[(size_t)t * NH + h]; }
        sum += partial;
    }
    dgates[h] += (float)sum;
}

// ---- launchers: seq_starts (S+1), att_offsets (S+1) and split_at (S) on the device; max_T,
// the longest sequence, on the host (it sizes the shared memory) ----

#define ATTENTION_BLOCK_SIZE 128

// gates (NH): the layer's split-packing gates, or NULL (the joint packing); floatX (float or
// bf16) deduced from out, att and qkv
template <typename floatX>
void attention_forward_cuda(floatX* out, floatX* att, const floatX* qkv, const int* seq_starts, const int* att_offsets,
                            const int* split_at, const float* gates, int S, int N, int max_T, int C, int NH,
                            cudaStream_t stream) {
    dim3 grid(N, NH);
    size_t smem = (size_t)(max_T + 32) * sizeof(float);
    attention_forward_kernel1<floatX><<<grid, ATTENTION_BLOCK_SIZE, smem, stream>>>(out, att, qkv, seq_starts, att_offsets, split_at, gates, S, C, NH);
    cudaCheck(cudaGetLastError());
}

// dqkv (N, 3*C) written; datt (A) scratch that ends holding dS. dgates (NH): the layer's gates'
// gradient, accumulated (+=), with dgate_rows (N, NH) as scratch; both NULL for the joint packing.
// floatX deduced from dqkv, dout, qkv and att; datt is float for both
template <typename floatX>
void attention_backward_cuda(floatX* dqkv, float* datt, float* dgates, double* dgate_rows, const floatX* dout,
                             const floatX* qkv, const floatX* att, const int* seq_starts, const int* att_offsets,
                             const int* split_at, int S, int N, int max_T, int C, int NH, cudaStream_t stream) {
    dim3 grid(N, NH);
    size_t smem = (size_t)(max_T + 32) * sizeof(float);
    attention_backward_query_kernel1<floatX><<<grid, ATTENTION_BLOCK_SIZE, smem, stream>>>(dqkv, datt, dgates != NULL ? dgate_rows : NULL, dout, qkv, att, seq_starts, att_offsets, split_at, S, C, NH);
    cudaCheck(cudaGetLastError());
    attention_backward_key_kernel1<floatX><<<grid, ATTENTION_BLOCK_SIZE, 0, stream>>>(dqkv, datt, dout, qkv, att, seq_starts, att_offsets, S, C, NH);
    cudaCheck(cudaGetLastError());
    if (dgates != NULL) {
        attention_gate_backward_kernel1<<<CEIL_DIV(NH, 32), 32, 0, stream>>>(dgates, dgate_rows, seq_starts, S, NH);
        cudaCheck(cudaGetLastError());
    }
}

#endif // ZELO_KERNELS_ATTENTION_CUH
