/*
 * kernels/pooler.cuh — the two heads on the last hidden states (model.c): the score head's
 * pieces (the [CLS] row of each sequence, tanh after the pooler dense layer; the dense
 * layers themselves are linear_*_cuda in matmul.cuh) and the mean-pooled sentence
 * embedding. Every output entry has one thread, sums taken in token order.
 */
#ifndef ZELO_KERNELS_POOLER_CUH
#define ZELO_KERNELS_POOLER_CUH

#include "kernels/common.cuh"

// out (S, C) = inp (N, C) at the first token of each sequence
__global__ void cls_gather_forward_kernel1(float* out, const float* inp, const int* seq_starts, int S, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    out[idx] = inp[(size_t)seq_starts[s] * C + c];
}

// dinp (N, C) += dout (S, C) at the first token of each sequence (distinct rows: no race)
__global__ void cls_gather_backward_kernel1(float* dinp, const float* dout, const int* seq_starts, int S, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    dinp[(size_t)seq_starts[s] * C + c] += dout[idx];
}

__global__ void tanh_forward_kernel1(float* out, const float* inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = tanhf(inp[i]); }
}

// dinout: gradient wrt tanh's output on entry, wrt its input on return; out = tanh(input)
__global__ void tanh_backward_inplace_kernel1(float* dinout, const float* out, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { dinout[i] *= 1.0f - out[i] * out[i]; }
}

// out (S, C) = mean over each sequence's tokens of inp (N, C); one thread per (sequence, channel)
__global__ void meanpool_forward_kernel1(float* out, const float* inp, const int* seq_starts, int S, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= S * C) { return; }
    int s = idx / C, c = idx % C;
    float sum = 0.0f;
    for (int t = seq_starts[s]; t < seq_starts[s + 1]; t++) { sum += inp[(size_t)t * C + c]; }
    out[idx] = sum * (1.0f / (float)(seq_starts[s + 1] - seq_starts[s]));
}

// dinp (N, C) += dout of the token's sequence / its length; one thread per (token, channel)
__global__ void meanpool_backward_kernel1(float* dinp, const float* dout, const int* seq_starts, int S, int N, int C) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * C) { return; }
    int t = (int)(idx / C), c = (int)(idx % C);
    int s = sequence_of(seq_starts, S, t);
    float inv = 1.0f / (float)(seq_starts[s + 1] - seq_starts[s]);
    dinp[idx] += dout[(size_t)s * C + c] * inv;
}

// ---- launchers ----

void cls_gather_forward_cuda(float* out, const float* inp, const int* seq_starts, int S, int C, cudaStream_t stream) {
    const int block_size = 256;
    cls_gather_forward_kernel1<<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(out, inp, seq_starts, S, C);
    cudaCheck(cudaGetLastError());
}

void cls_gather_backward_cuda(float* dinp, const float* dout, const int* seq_starts, int S, int C, cudaStream_t stream) {
    const int block_size = 256;
    cls_gather_backward_kernel1<<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(dinp, dout, seq_starts, S, C);
    cudaCheck(cudaGetLastError());
}

void tanh_forward_cuda(float* out, const float* inp, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    tanh_forward_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(out, inp, n);
    cudaCheck(cudaGetLastError());
}

void tanh_backward_inplace_cuda(float* dinout, const float* out, size_t n, cudaStream_t stream) {
    const int block_size = 256;
    tanh_backward_inplace_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(dinout, out, n);
    cudaCheck(cudaGetLastError());
}

void meanpool_forward_cuda(float* out, const float* inp, const int* seq_starts, int S, int C, cudaStream_t stream) {
    const int block_size = 256;
    meanpool_forward_kernel1<<<CEIL_DIV(S * C, block_size), block_size, 0, stream>>>(out, inp, seq_starts, S, C);
    cudaCheck(cudaGetLastError());
}

void meanpool_backward_cuda(float* dinp, const float* dout, const int* seq_starts, int S, int N, int C,
                            cudaStream_t stream) {
    const int block_size = 256;
    meanpool_backward_kernel1<<<(int)CEIL_DIV((size_t)N * C, (size_t)block_size), block_size, 0, stream>>>(dinp, dout, seq_starts, S, N, C);
    cudaCheck(cudaGetLastError());
}

#endif // ZELO_KERNELS_POOLER_CUH
