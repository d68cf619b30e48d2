/*
 * kernels/matmul.cuh — every matrix product of the CUDA backend goes through matmul_cuda():
 * cuBLAS's sgemm on a GPU; in the emulated build (CUDA_EMULATOR) the project's own CPU
 * sgemm (cpu/gemm.c) on the emulated device pointers, which are host memory. Then the
 * Linear layer on top of it, PyTorch's (out, in) weight layout, as model.c's.
 *
 * The bias is written into the output before the product accumulates onto it (beta = 1),
 * the reference's own order of operations; its gradient is a column sum, one thread per
 * column walking the rows in order (deterministic, no atomics). Both are templated on floatX,
 * the storage type of the bias and the output (kernels/bf16.cuh): the broadcast copies it
 * exactly, and the bias gradient sums floatX rows in float into a float gradient.
 */
#ifndef ZELO_KERNELS_MATMUL_CUH
#define ZELO_KERNELS_MATMUL_CUH

#include "kernels/bf16.cuh"
#ifdef CUDA_EMULATOR
extern "C" {
#include "cpu/gemm.h"
}
#endif

#ifndef CUDA_EMULATOR
static cublasHandle_t cublas_handle;
#endif

// before the first product; once per process, later calls do nothing
void matmul_setup(void) {
#ifndef CUDA_EMULATOR
    if (cublas_handle != NULL) { return; }
    cublasCheck(cublasCreate(&cublas_handle));
    // fp32 exactly: no TF32 tensor cores, whatever NVIDIA_TF32_OVERRIDE says; this
    // backend is the CPU's twin, the bf16 one is the fast path
    cublasCheck(cublasSetMathMode(cublas_handle, CUBLAS_PEDANTIC_MATH));
#endif
}

void matmul_teardown(void) {
#ifndef CUDA_EMULATOR
    if (cublas_handle != NULL) { cublasCheck(cublasDestroy(cublas_handle)); }
    cublas_handle = NULL;
#endif
}

// c (m, n) = alpha * op(a) (m, k) @ op(b) (k, n) + beta * c, row-major as model.c's matmul;
// op(x) = x, or its transpose when trans_x is 1 (a then stored (k, m), b (n, k)); lda, ldb,
// ldc are row strides; beta = 0 never reads c
void matmul_cuda(float* c, int ldc, const float* a, int lda, int trans_a, const float* b, int ldb, int trans_b,
                 int m, int n, int k, float alpha, float beta, cudaStream_t stream) {
#ifdef CUDA_EMULATOR
    (void)stream;  // launches are synchronous in the emulator
    gemm(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta);
#else
    // cuBLAS is column-major: the row-major c is the column-major c^T = op(b)^T op(a)^T
    cublasCheck(cublasSetStream(cublas_handle, stream));
    cublasCheck(cublasSgemm(cublas_handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                            n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
#endif
}

// out (N, OC) = bias (OC) in every row
template <typename floatX>
__global__ void bias_broadcast_kernel1(floatX* out, const floatX* bias, int N, int OC) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx < (size_t)N * OC) { out[idx] = bias[idx % OC]; }
}

// dbias (OC) += column sums of dout (N, OC); one thread per column, rows in order
template <typename floatX>
__global__ void bias_backward_kernel1(float* dbias, const floatX* dout, int N, int OC) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= OC) { return; }
    float sum = 0.0f;
    for (int t = 0; t < N; t++) { sum += to_float(dout[(size_t)t * OC + c]); }
    dbias[c] += sum;
}

// floatX (float or bf16) deduced from out and bias
template <typename floatX>
void bias_broadcast_cuda(floatX* out, const floatX* bias, int N, int OC, cudaStream_t stream) {
    const int block_size = 256;
    bias_broadcast_kernel1<floatX><<<(int)CEIL_DIV((size_t)N * OC, (size_t)block_size), block_size, 0, stream>>>(out, bias, N, OC);
    cudaCheck(cudaGetLastError());
}

// dbias float; floatX deduced from dout
template <typename floatX>
void bias_backward_cuda(float* dbias, const floatX* dout, int N, int OC, cudaStream_t stream) {
    const int block_size = 256;
    bias_backward_kernel1<floatX><<<CEIL_DIV(OC, block_size), block_size, 0, stream>>>(dbias, dout, N, OC);
    cudaCheck(cudaGetLastError());
}

// out (N, OC) = inp (N, C) @ weight^T + bias, weight (OC, C)
void linear_forward_cuda(float* out, const float* inp, const float* weight, const float* bias,
                         int N, int C, int OC, cudaStream_t stream) {
    bias_broadcast_cuda(out, bias, N, OC, stream);
    matmul_cuda(out, OC, inp, C, 0, weight, C, 1, N, OC, C, 1.0f, 1.0f, stream);
}

// dinp (N, C), dweight (OC, C), dbias (OC) += their gradients; dbias NULL: the bias gradient
// is summed elsewhere, by the kernel that makes dout (the fc layer's: gelu_backward_bias_cuda),
// which saves this pass over dout
void linear_backward_cuda(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                          const float* weight, int N, int C, int OC, cudaStream_t stream) {
    matmul_cuda(dinp, C, dout, OC, 0, weight, C, 0, N, C, OC, 1.0f, 1.0f, stream);  // dinp += dout @ W
    matmul_cuda(dweight, C, dout, OC, 1, inp, C, 0, OC, C, N, 1.0f, 1.0f, stream);  // dW += dout^T @ inp
    if (dbias != NULL) { bias_backward_cuda(dbias, dout, N, OC, stream); }
}

#endif // ZELO_KERNELS_MATMUL_CUH
