/*
 * kernels/embeddings.cuh — word + position + token type embeddings of a packed batch, and
 * their backward. Positions restart at 0 in every sequence (model.c embeddings_forward); the
 * "sequences" seq_starts (S+1) gives are the pieces of model.h's packing_layout, which under
 * the split packing are the two segments of each sequence, and may be empty.
 *
 * The backward is deterministic and takes the reference's order of summation: each
 * gradient entry is owned by one thread that adds the tokens' contributions one by one,
 * in token order, onto the entry's previous value, as model.c does. Tokens that share a
 * word id are grouped on the host (embedding_buckets: the ids come from the host anyway),
 * so no two threads ever write the same row and no float atomics are needed.
 *
 * Templated on floatX, the storage type of the tables and of the output and its gradient
 * (kernels/bf16.cuh): float, or bf16 with the same float arithmetic. The forward adds the
 * three rows in float and rounds the sum once as it stores it; the backward adds the bf16
 * gradient rows in float onto float table gradients (AdamW reads float gradients).
 */
#ifndef ZELO_KERNELS_EMBEDDINGS_CUH
#define ZELO_KERNELS_EMBEDDINGS_CUH

#include "kernels/bf16.cuh"

// out (N, C) = wte[ids[t]] + wpe[position of t] + wtt[types[t]]; one thread per (token, channel)
template <typename floatX>
__global__ void embeddings_forward_kernel1(floatX* out, const int* ids, const int* types, const int* seq_starts,
                                           int S, const floatX* wte, const floatX* wpe, const floatX* wtt,
                                           int N, int C) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * C) { return; }
    int t = (int)(idx / C), c = (int)(idx % C);
    int pos = t - seq_starts[sequence_of(seq_starts, S, t)];
    // summed left to right as the reference: (w + p) + y
    out[idx] = from_float<floatX>(to_float(wte[(size_t)ids[t] * C + c]) + to_float(wpe[(size_t)pos * C + c]) +
                                  to_float(wtt[(size_t)types[t] * C + c]));
}

// dwte rows of the word ids in the batch += the tokens' demb rows; one block per distinct
// id, threads over channels; tokens of a bucket in increasing token order
template <typename floatX>
__global__ void embeddings_backward_wte_kernel1(float* dwte, const floatX* demb, const int* bucket_tokens,
                                                const int* bucket_starts, const int* bucket_ids, int C) {
    int b = blockIdx.x;
    float* row = dwte + (size_t)bucket_ids[b] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = row[c];
        for (int i = bucket_starts[b]; i < bucket_starts[b + 1]; i++) { acc += to_float(demb[(size_t)bucket_tokens[i] * C + c]); }
        row[c] = acc;
    }
}

// dwpe (max_T, C) += the demb rows at each position, sequences in order; one thread per
// (position, channel)
template <typename floatX>
__global__ void embeddings_backward_wpe_kernel1(float* dwpe, const floatX* demb, const int* seq_starts,
                                                int S, int max_T, int C) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)max_T * C) { return; }
    int pos = (int)(idx / C), c = (int)(idx % C);
    float acc = dwpe[idx];
    for (int s = 0; s < S; s++) {
        if (seq_starts[s] + pos < seq_starts[s + 1]) { acc += to_float(demb[(size_t)(seq_starts[s] + pos) * C + c]); }
    }
    dwpe[idx] = acc;
}

// dwtt (TT, C) += the demb rows of each type, tokens in order; one thread per (type, channel)
template <typename floatX>
__global__ void embeddings_backward_wtt_kernel1(float* dwtt, const floatX* demb, const int* types,
                                                int N, int TT, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= TT * C) { return; }
    int type = idx / C, c = idx % C;
    float acc = dwtt[idx];
    for (int t = 0; t < N; t++) {
        if (types[t] == type) { acc += to_float(demb[(size_t)t * C + c]); }
    }
    dwtt[idx] = acc;
}

// Groups the tokens of a batch by word id, on the host: bucket_tokens (N) lists the tokens
// bucket by bucket, each bucket in increasing token order, bucket_starts (U+1) where each
// bucket begins, bucket_ids (U) its id; returns U, the number of distinct ids. Buckets come
// in increasing id order. ids (N) must lie in [0, V); counts (V) is scratch.
static inline int embedding_buckets(int* bucket_tokens, int* bucket_starts, int* bucket_ids,
                                    int* counts, const int* ids, int N, int V) {
    for (int v = 0; v < V; v++) { counts[v] = 0; }
    for (int t = 0; t < N; t++) { counts[ids[t]]++; }
    int U = 0, start = 0;
    for (int v = 0; v < V; v++) {
        if (counts[v] == 0) { continue; }
        bucket_ids[U] = v;
        bucket_starts[U] = start;
        int n = counts[v];
        counts[v] = start;  // from here on: where the next token of id v goes
        start += n;
        U++;
    }
    bucket_starts[U] = N;
    for (int t = 0; t < N; t++) { bucket_tokens[counts[ids[t]]++] = t; }
    return U;
}

// ---- launchers (all pointers on the device unless said otherwise) ----

// floatX (float or bf16) deduced from out and the tables
template <typename floatX>
void embeddings_forward_cuda(floatX* out, const int* ids, const int* types, const int* seq_starts, int S,
                             const floatX* wte, const floatX* wpe, const floatX* wtt, int N, int C,
                             cudaStream_t stream) {
    const int block_size = 256;
    int grid_size = (int)CEIL_DIV((size_t)N * C, block_size);
    embeddings_forward_kernel1<floatX><<<grid_size, block_size, 0, stream>>>(out, ids, types, seq_starts, S, wte, wpe, wtt, N, C);
    cudaCheck(cudaGetLastError());
}

// the buckets from embedding_buckets (U of them), copied to the device; max_T is the
// longest sequence of the batch or more (rows of dwpe touched: those past the longest leave
// their values as they are). The table gradients are float; floatX deduced from demb
template <typename floatX>
void embeddings_backward_cuda(float* dwte, float* dwpe, float* dwtt, const floatX* demb,
                              const int* bucket_tokens, const int* bucket_starts, const int* bucket_ids, int U,
                              const int* types, const int* seq_starts, int S, int max_T, int N, int TT, int C,
                              cudaStream_t stream) {
    const int block_size = 256;
    embeddings_backward_wte_kernel1<floatX><<<U, block_size, 0, stream>>>(dwte, demb, bucket_tokens, bucket_starts, bucket_ids, C);
    cudaCheck(cudaGetLastError());
    int grid_wpe = (int)CEIL_DIV((size_t)max_T * C, block_size);
    embeddings_backward_wpe_kernel1<floatX><<<grid_wpe, block_size, 0, stream>>>(dwpe, demb, seq_starts, S, max_T, C);
    cudaCheck(cudaGetLastError());
    int grid_wtt = CEIL_DIV(TT * C, block_size);
    embeddings_backward_wtt_kernel1<floatX><<<grid_wtt, block_size, 0, stream>>>(dwtt, demb, types, N, TT, C);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_EMBEDDINGS_CUH
