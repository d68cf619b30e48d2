/*
 * kernels/matmul.cuh — every matrix product of the CUDA backend goes through matmul_cuda(),
 * templated on the storage types of c (Tc) and of a and b (Tab). Then the Linear layer on top
 * of it, PyTorch's (out, in) weight layout, as model.c's.
 *
 * fp32 (Tc = Tab = float): cuBLAS's sgemm on a GPU; in the emulated build (CUDA_EMULATOR) the
 * project's own CPU sgemm (cpu/gemm.c) on the emulated device pointers, which are host memory.
 * The bias is written into the output before the product accumulates onto it (beta = 1), the
 * reference's own order of operations.
 *
 * bf16 a and b (Tab = bf16; c bf16 or float): every product of two bf16 values is exact in
 * float (8 + 8 significant bits), the sums run in fp32, and c is read (beta != 0) and written
 * once in its own type: a bf16 c is the fp32 result rounded once. On a GPU this is cuBLASLt
 * (tensor cores, fp32 accumulation); the Linear layer's bias joins the product in its epilogue,
 * in fp32 before that one rounding. Under the emulator it is matmul_kernel1, the twin: one
 * thread per entry of c, the k products summed in float in order, which a GPU test also runs
 * beside cuBLASLt to compare the two (test_cuda_bf16).
 *
 * The bias gradient is a column sum, one thread per column walking the rows in order
 * (deterministic, no atomics), templated on floatX like the bias broadcast: the broadcast
 * copies the bias exactly, and the gradient sums floatX rows in float into a float gradient.
 * The weight gradient stays float for either floatX (the parameters' gradients are sums over
 * every token of the batch, kernels/bf16.cuh).
 */
#ifndef ZELO_KERNELS_MATMUL_CUH
#define ZELO_KERNELS_MATMUL_CUH

#include <stdint.h>
#include <string.h>
#include <type_traits>
#include "kernels/bf16.cuh"
#ifdef CUDA_EMULATOR
extern "C" {
#include "cpu/gemm.h"
}
#endif

#ifndef CUDA_EMULATOR
static cublasHandle_t cublas_handle;
static cublasLtHandle_t cublaslt_handle;
// cuBLASLt's scratch (split-k partial sums and the like), allocated once: it may not be
// reallocated while a product that uses it is in flight
#define CUBLASLT_WORKSPACE_SIZE ((size_t)32 << 20)
static void* cublaslt_workspace;
static void cublaslt_plans_clear(void);
#endif

// before the first product; once per process, later calls do nothing
void matmul_setup(void) {
#ifndef CUDA_EMULATOR
    if (cublas_handle != NULL) { return; }
    cublasCheck(cublasCreate(&cublas_handle));
    // fp32 exactly: no TF32 tensor cores, whatever NVIDIA_TF32_OVERRIDE says; this
    // backend is the CPU's twin, the bf16 one is the fast path
    cublasCheck(cublasSetMathMode(cublas_handle, CUBLAS_PEDANTIC_MATH));
    cublasLtCheck(cublasLtCreate(&cublaslt_handle));
    cudaCheck(cudaMalloc(&cublaslt_workspace, CUBLASLT_WORKSPACE_SIZE));
#endif
}

void matmul_teardown(void) {
#ifndef CUDA_EMULATOR
    if (cublas_handle != NULL) {
        cublasCheck(cublasDestroy(cublas_handle));
        cublaslt_plans_clear();
        cublasLtCheck(cublasLtDestroy(cublaslt_handle));
        cudaCheck(cudaFree(cublaslt_workspace));
    }
    cublas_handle = NULL;
    cublaslt_handle = NULL;
    cublaslt_workspace = NULL;
#endif
}

// ---- bf16 products: the twin ----

// c (m, n) = alpha * op(a) (m, k) @ op(b) (k, n) + beta * c + bias, row-major, as matmul_cuda;
// bias (n) added to every row, or NULL. One thread per entry of c: the k products summed in
// float in order, then alpha, beta c and the bias in float, rounded once into Tc
template <typename Tc, typename Tab>
__global__ void matmul_kernel1(Tc* c, int ldc, const Tab* a, int lda, int trans_a, const Tab* b, int ldb,
                               int trans_b, int m, int n, int k, float alpha, float beta, const Tc* bias) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)m * n) { return; }
    int i = (int)(idx / n), j = (int)(idx % n);
    float sum = 0.0f;
    for (int p = 0; p < k; p++) {
        float x = to_float(trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]);
        float y = to_float(trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
        sum += x * y;
    }
    float v = alpha * sum;
    if (beta != 0.0f) { v += beta * to_float(c[(size_t)i * ldc + j]); }
    if (bias != NULL) { v += to_float(bias[j]); }
    c[(size_t)i * ldc + j] = from_float<Tc>(v);
}

// the twin's launcher, in every build: what the emulator runs for the bf16 products, and on a
// GPU the reference that test_cuda_bf16 holds cuBLASLt to (slow there: no tiling)
template <typename Tc, typename Tab>
void matmul_twin_cuda(Tc* c, int ldc, const Tab* a, int lda, int trans_a, const Tab* b, int ldb, int trans_b, int m,
                      int n, int k, float alpha, float beta, const Tc* bias, cudaStream_t stream) {
    const int block_size = 256;
    matmul_kernel1<Tc, Tab><<<(int)CEIL_DIV((size_t)m * n, (size_t)block_size), block_size, 0, stream>>>(
        c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta, bias);
    cudaCheck(cudaGetLastError());
}

// ---- bf16 products: cuBLASLt ----

#ifndef CUDA_EMULATOR
// the largest power of two up to 256 that divides p's address: cuBLASLt's heuristic assumes
// 256-byte aligned operands unless told, and the layers' tensors start at any offset of the
// flat buffers
static inline uint32_t alignment_of(const void* p) {
    uint32_t align = 256;
    while (align > 1 && (uintptr_t)p % align != 0) { align /= 2; }
    return align;
}

// cuBLASLt's setup of a product (descriptor, layouts, the heuristic's choice of algorithm) costs
// tens of microseconds of host time; a training step repeats a dozen shapes once per layer, so
// each shape's setup is made once and kept as a plan, found again by its shape, transposes,
// types and alignments (which the heuristic's choice depends on). Only the bias pointer
// changes between calls of one plan
typedef struct {
    int m, n, k, trans_a, trans_b, lda, ldb, ldc, has_bias;
    cudaDataType_t c_type;
    uint32_t align_a, align_b, align_c;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t layout_a, layout_b, layout_c;
    cublasLtMatmulAlgo_t algo;
} CublasLtPlan;
#define MAX_CUBLASLT_PLANS 128
static CublasLtPlan cublaslt_plans[MAX_CUBLASLT_PLANS];
static int num_cublaslt_plans;

static void cublaslt_plans_clear(void) {
    for (int i = 0; i < num_cublaslt_plans; i++) {
        CublasLtPlan* p = &cublaslt_plans[i];
        cublasLtCheck(cublasLtMatrixLayoutDestroy(p->layout_a));
        cublasLtCheck(cublasLtMatrixLayoutDestroy(p->layout_b));
        cublasLtCheck(cublasLtMatrixLayoutDestroy(p->layout_c));
        cublasLtCheck(cublasLtMatmulDescDestroy(p->desc));
    }
    num_cublaslt_plans = 0;
}

// the plan for a product: the kept one of its key, else a new one (all of them dropped first
// when the table is full: a run's shapes are far fewer, so that happens only between runs)
static const CublasLtPlan* cublaslt_plan(const CublasLtPlan* key) {
    for (int i = 0; i < num_cublaslt_plans; i++) {
        const CublasLtPlan* p = &cublaslt_plans[i];
        if (p->m == key->m && p->n == key->n && p->k == key->k && p->trans_a == key->trans_a &&
            p->trans_b == key->trans_b && p->lda == key->lda && p->ldb == key->ldb && p->ldc == key->ldc &&
            p->has_bias == key->has_bias && p->c_type == key->c_type && p->align_a == key->align_a &&
            p->align_b == key->align_b && p->align_c == key->align_c) {
            return p;
        }
    }
    if (num_cublaslt_plans == MAX_CUBLASLT_PLANS) { cublaslt_plans_clear(); }
    CublasLtPlan* p = &cublaslt_plans[num_cublaslt_plans];
    *p = *key;
    int m = key->m, n = key->n, k = key->k;
    // column-major, as cuBLAS: the row-major c is the column-major c^T (n, m) = op(b)^T op(a)^T,
    // and a row-major (rows, cols) operand is the column-major (cols, rows) one
    cublasLtCheck(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t op_b = key->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = key->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof(op_b)));
    cublasLtCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_a, sizeof(op_a)));
    if (key->has_bias) {  // (n): a row of the column-major c^T per entry, so a column of c
        cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        int32_t bias_type = key->c_type;
        cublasLtCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                     sizeof(epilogue)));
        cublasLtCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                     sizeof(bias_type)));
    }
    cublasLtCheck(cublasLtMatrixLayoutCreate(&p->layout_b, CUDA_R_16BF, key->trans_b ? k : n, key->trans_b ? n : k,
                                             key->ldb));
    cublasLtCheck(cublasLtMatrixLayoutCreate(&p->layout_a, CUDA_R_16BF, key->trans_a ? m : k, key->trans_a ? k : m,
                                             key->lda));
    cublasLtCheck(cublasLtMatrixLayoutCreate(&p->layout_c, key->c_type, n, m, key->ldc));
    cublasLtMatmulPreference_t preference;
    cublasLtCheck(cublasLtMatmulPreferenceCreate(&preference));
    uint64_t workspace_size = CUBLASLT_WORKSPACE_SIZE;
    cublasLtCheck(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &workspace_size, sizeof(workspace_size)));
    cublasLtCheck(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                       &key->align_b, sizeof(key->align_b)));
    cublasLtCheck(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                       &key->align_a, sizeof(key->align_a)));
    cublasLtCheck(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                       &key->align_c, sizeof(key->align_c)));
    cublasLtCheck(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                       &key->align_c, sizeof(key->align_c)));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    cublasLtCheck(cublasLtMatmulAlgoGetHeuristic(cublaslt_handle, p->desc, p->layout_b, p->layout_a, p->layout_c,
                                                 p->layout_c, preference, 1, &heuristic, &found));
    cublasLtCheck(cublasLtMatmulPreferenceDestroy(preference));
    if (found == 0) {
        fprintf(stderr, "[cuBLASLt ERROR] at %s:%d: no algorithm for the bf16 product c (%d, %d) = op(a) @ op(b), "
                "k = %d, trans_a %d, trans_b %d, lda %d, ldb %d, ldc %d, c %s, bias %s\n", __FILE__, __LINE__, m, n, k,
                key->trans_a, key->trans_b, key->lda, key->ldb, key->ldc, key->c_type == CUDA_R_16BF ? "bf16" : "float",
                key->has_bias ? "yes" : "no");
        exit(EXIT_FAILURE);
    }
    p->algo = heuristic.algo;
    num_cublaslt_plans++;
    return p;
}

// as matmul_twin_cuda, with a and b bf16, on the tensor cores: sums in fp32 (in cuBLASLt's
// order), the bias in the epilogue, c rounded once
template <typename Tc>
void matmul_cublaslt(Tc* c, int ldc, const bf16* a, int lda, int trans_a, const bf16* b, int ldb, int trans_b,
                     int m, int n, int k, float alpha, float beta, const Tc* bias, cudaStream_t stream) {
    CublasLtPlan key;
    memset(&key, 0, sizeof(key));
    key.m = m; key.n = n; key.k = k;
    key.trans_a = trans_a; key.trans_b = trans_b;
    key.lda = lda; key.ldb = ldb; key.ldc = ldc;
    key.has_bias = bias != NULL;
    key.c_type = std::is_same<Tc, bf16>::value ? CUDA_R_16BF : CUDA_R_32F;
    // each pointer's real alignment: the heuristic assumes 256 bytes unless told, and the
    // layers' tensors start at any offset of the flat buffers
    key.align_a = alignment_of(a); key.align_b = alignment_of(b); key.align_c = alignment_of(c);
    const CublasLtPlan* plan = cublaslt_plan(&key);
    if (bias != NULL) {
        cublasLtCheck(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                     sizeof(bias)));
    }
    cublasLtCheck(cublasLtMatmul(cublaslt_handle, plan->desc, &alpha, b, plan->layout_b, a, plan->layout_a, &beta, c,
                                 plan->layout_c, c, plan->layout_c, &plan->algo, cublaslt_workspace,
                                 CUBLASLT_WORKSPACE_SIZE, stream));
}
#endif

// a bf16 product with its bias (n) or NULL: cuBLASLt on a GPU, the twin under the emulator
template <typename Tc>
void matmul_bf16_cuda(Tc* c, int ldc, const bf16* a, int lda, int trans_a, const bf16* b, int ldb, int trans_b,
                      int m, int n, int k, float alpha, float beta, const Tc* bias, cudaStream_t stream) {
#ifdef CUDA_EMULATOR
    matmul_twin_cuda(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta, bias, stream);
#else
    matmul_cublaslt(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta, bias, stream);
#endif
}

// ---- every product ----

// c (m, n) = alpha * op(a) (m, k) @ op(b) (k, n) + beta * c, row-major as model.c's matmul;
// op(x) = x, or its transpose when trans_x is 1 (a then stored (k, m), b (n, k)); lda, ldb,
// ldc are row strides; beta = 0 never reads c. Tab = bf16: Tc bf16 or float, fp32 sums, c
// rounded once (the top of the file); Tab = float: Tc float, the fp32 backend below
template <typename Tc, typename Tab>
void matmul_cuda(Tc* c, int ldc, const Tab* a, int lda, int trans_a, const Tab* b, int ldb, int trans_b,
                 int m, int n, int k, float alpha, float beta, cudaStream_t stream) {
    static_assert(std::is_same<Tab, bf16>::value, "matmul_cuda: a and b are both float or both bf16");
    matmul_bf16_cuda(c, ldc, a, lda, trans_a, b, ldb, trans_b, m, n, k, alpha, beta, (const Tc*)NULL, stream);
}

// fp32: the backend that is the CPU's exact twin (the top of the file)
template <>
void matmul_cuda<float, float>(float* c, int ldc, const float* a, int lda, int trans_a, const float* b, int ldb,
                               int trans_b, int m, int n, int k, float alpha, float beta, cudaStream_t stream) {
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

// ---- the Linear layer ----

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

// out (N, OC) = inp (N, C) @ weight^T + bias, weight (OC, C), bias (OC).
// Only the bias is fused: cuBLASLt's GELU epilogues (GELU_BIAS, GELU_AUX) compute GELU's tanh
// approximation, and BERT's GELU is the exact erf form (kernels/gelu.cuh, model.c), so the fc
// layer's GELU stays a kernel of its own
template <typename floatX>
void linear_forward_cuda(floatX* out, const floatX* inp, const floatX* weight, const floatX* bias, int N, int C,
                         int OC, cudaStream_t stream);

// fp32: the bias broadcast, then the product accumulated onto it, the reference's order
template <>
void linear_forward_cuda<float>(float* out, const float* inp, const float* weight, const float* bias, int N, int C,
                                int OC, cudaStream_t stream) {
    bias_broadcast_cuda(out, bias, N, OC, stream);
    matmul_cuda(out, OC, inp, C, 0, weight, C, 1, N, OC, C, 1.0f, 1.0f, stream);
}

// bf16: one product, the bias added to its fp32 sums and the whole rounded once (written first
// and accumulated onto, the bias would be rounded into out before the product)
template <>
void linear_forward_cuda<bf16>(bf16* out, const bf16* inp, const bf16* weight, const bf16* bias, int N, int C, int OC,
                               cudaStream_t stream) {
    matmul_bf16_cuda(out, OC, inp, C, 0, weight, C, 1, N, OC, C, 1.0f, 0.0f, bias, stream);
}

// dinp (N, C) floatX, dweight (OC, C) and dbias (OC) float += their gradients; dbias NULL:
// the bias gradient is summed elsewhere, by the kernel that makes dout (the fc layer's:
// gelu_backward_bias_cuda), which saves this pass over dout
template <typename floatX>
void linear_backward_cuda(floatX* dinp, float* dweight, float* dbias, const floatX* dout, const floatX* inp,
                          const floatX* weight, int N, int C, int OC, cudaStream_t stream) {
    matmul_cuda(dinp, C, dout, OC, 0, weight, C, 0, N, C, OC, 1.0f, 1.0f, stream);  // dinp += dout @ W
    matmul_cuda(dweight, C, dout, OC, 1, inp, C, 0, OC, C, N, 1.0f, 1.0f, stream);  // dW += dout^T @ inp
    if (dbias != NULL) { bias_backward_cuda(dbias, dout, N, OC, stream); }
}

#endif // ZELO_KERNELS_MATMUL_CUH
