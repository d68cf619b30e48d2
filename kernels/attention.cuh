/*
 * kernels/attention.cuh — bidirectional multi-head attention inside each sequence of a
 * packed batch (model.c attention_head_*), forward and backward. No padding exists, so no
 * mask: a query row sees exactly the T keys of its own sequence.
 *
 * The simple, correct version (the fused, fast one is the next issue's). Forward: one block
 * per (query token, head); the block holds the query's row of T scores in shared memory,
 * softmaxes it, writes it to att (the backward needs it) and multiplies it with V. Backward
 * in two kernels, so that every output entry is written by one thread with a sum taken in
 * a fixed order (deterministic, no atomics): per (query token, head), dP = dy V^T, the
 * softmax backward dS, and dq = dS K; then per (key token, head), dk = dS^T Q and dv = P^T dy.
 *
 * qkv (N, 3*C): q, k, v of each token side by side, head h in columns [h*hs, (h+1)*hs) of
 * each; att (A) and datt (A): sequence s's (NH, T, T) block at att_offsets[s], as model.h.
 */
#ifndef ZELO_KERNELS_ATTENTION_CUH
#define ZELO_KERNELS_ATTENTION_CUH

#include "kernels/common.cuh"

// where the block of token t and head h finds its sequence: the sequence's first token, its
// length T, t's row i in it, and the offset of the head's (T, T) block in att
struct AttentionRow {
    int start, T, i;
    size_t head;
};
__device__ __forceinline__ AttentionRow attention_row(const int* seq_starts, const int* att_offsets, int S, int t, int h) {
    int s = sequence_of(seq_starts, S, t);
    AttentionRow r;
    r.start = seq_starts[s];
    r.T = seq_starts[s + 1] - r.start;
    r.i = t - r.start;
    r.head = (size_t)att_offsets[s] + (size_t)h * r.T * r.T;
    return r;
}

// grid (N, NH); dynamic shared memory (max_T + 32) floats
__global__ void attention_forward_kernel1(float* out, float* att, const float* qkv, const int* seq_starts,
                                          const int* att_offsets, int S, int C, int NH) {
    extern __shared__ float smem[];
    int t = blockIdx.x, h = blockIdx.y, hs = C / NH;
    AttentionRow r = attention_row(seq_starts, att_offsets, S, t, h);
    int start = r.start, T = r.T;
    float scale = 1.0f / sqrtf((float)hs);
    float* p = smem;          // (T) this query's row of scores, then of probabilities
    float* scratch = smem + T; // (32) for block_reduce
    const float* q = qkv + (size_t)t * 3 * C + h * hs;
    float local_max = -INFINITY;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        const float* k = qkv + (size_t)(start + j) * 3 * C + C + h * hs;
        float dot = 0.0f;
        for (int d = 0; d < hs; d++) { dot += q[d] * k[d]; }
        p[j] = scale * dot;
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
    float* att_row = att + r.head + (size_t)r.i * T;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        p[j] *= inv;
        att_row[j] = p[j];
    }
    __syncthreads();
    const float* v = qkv + (size_t)start * 3 * C + 2 * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < T; j++) { acc += p[j] * v[(size_t)j * 3 * C + d]; }
        out[(size_t)t * C + h * hs + d] = acc;
    }
}

// grid (N, NH), one block per (query token, head); dynamic shared memory (max_T + 32) floats.
// datt gets dS, the gradient wrt the scores; dqkv gets the head's columns of dq WRITTEN.
__global__ void attention_backward_query_kernel1(float* dqkv, float* datt, const float* dout, const float* qkv,
                                                 const float* att, const int* seq_starts, const int* att_offsets,
                                                 int S, int C, int NH) {
    extern __shared__ float smem[];
    int t = blockIdx.x, h = blockIdx.y, hs = C / NH;
    AttentionRow r = attention_row(seq_starts, att_offsets, S, t, h);
    int start = r.start, T = r.T;
    float scale = 1.0f / sqrtf((float)hs);
    float* ds = smem;          // (T) dP, then dS
    float* scratch = smem + T; // (32)
    const float* dy = dout + (size_t)t * C + h * hs;
    const float* p = att + r.head + (size_t)r.i * T;
    float local_dot = 0.0f;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        const float* v = qkv + (size_t)(start + j) * 3 * C + 2 * C + h * hs;
        float dp = 0.0f;
        for (int d = 0; d < hs; d++) { dp += dy[d] * v[d]; }
        ds[j] = dp;
        local_dot += p[j] * dp;
    }
    // softmax backward: dS = P * (dP - sum_j P dP)
    float dot = block_reduce(local_dot, scratch, 0);
    float* datt_row = datt + r.head + (size_t)r.i * T;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        ds[j] = p[j] * (ds[j] - dot);
        datt_row[j] = ds[j];
    }
    __syncthreads();
    const float* k = qkv + (size_t)start * 3 * C + C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < T; j++) { acc += ds[j] * k[(size_t)j * 3 * C + d]; }
        dqkv[(size_t)t * 3 * C + h * hs + d] = scale * acc;
    }
}

// grid (N, NH), one block per (key token, head): dk = dS^T q / sqrt(hs), dv = P^T dy, the
// head's columns of dqkv WRITTEN
__global__ void attention_backward_key_kernel1(float* dqkv, const float* datt, const float* dout, const float* qkv,
                                               const float* att, const int* seq_starts, const int* att_offsets,
                                               int S, int C, int NH) {
    int t = blockIdx.x, h = blockIdx.y, hs = C / NH;
    AttentionRow r = attention_row(seq_starts, att_offsets, S, t, h);
    int start = r.start, T = r.T;
    float scale = 1.0f / sqrtf((float)hs);
    const float* ds = datt + r.head + r.i;  // column i (this key's), stride T
    const float* p = att + r.head + r.i;
    const float* q = qkv + (size_t)start * 3 * C + h * hs;
    const float* dy = dout + (size_t)start * C + h * hs;
    for (int d = threadIdx.x; d < hs; d += blockDim.x) {
        float dk = 0.0f, dv = 0.0f;
        for (int i = 0; i < T; i++) {
            dk += ds[(size_t)i * T] * q[(size_t)i * 3 * C + d];
            dv += p[(size_t)i * T] * dy[(size_t)i * C + d];
        }
        dqkv[(size_t)t * 3 * C + C + h * hs + d] = scale * dk;
        dqkv[(size_t)t * 3 * C + 2 * C + h * hs + d] = dv;
    }
}

// ---- launchers: seq_starts (S+1) and att_offsets (S+1) on the device; max_T, the longest
// sequence, on the host (it sizes the shared memory) ----

#define ATTENTION_BLOCK_SIZE 128

void attention_forward_cuda(float* out, float* att, const float* qkv, const int* seq_starts, const int* att_offsets,
                            int S, int N, int max_T, int C, int NH, cudaStream_t stream) {
    dim3 grid(N, NH);
    size_t smem = (size_t)(max_T + 32) * sizeof(float);
    attention_forward_kernel1<<<grid, ATTENTION_BLOCK_SIZE, smem, stream>>>(out, att, qkv, seq_starts, att_offsets, S, C, NH);
    cudaCheck(cudaGetLastError());
}

// dqkv (N, 3*C) written; datt (A) scratch that ends holding dS
void attention_backward_cuda(float* dqkv, float* datt, const float* dout, const float* qkv, const float* att,
                             const int* seq_starts, const int* att_offsets, int S, int N, int max_T, int C, int NH,
                             cudaStream_t stream) {
    dim3 grid(N, NH);
    size_t smem = (size_t)(max_T + 32) * sizeof(float);
    attention_backward_query_kernel1<<<grid, ATTENTION_BLOCK_SIZE, smem, stream>>>(dqkv, datt, dout, qkv, att, seq_starts, att_offsets, S, C, NH);
    cudaCheck(cudaGetLastError());
    attention_backward_key_kernel1<<<grid, ATTENTION_BLOCK_SIZE, 0, stream>>>(dqkv, datt, dout, qkv, att, seq_starts, att_offsets, S, C, NH);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_ATTENTION_CUH
