/*
 * test/test_cuda_bf16.cu — the bf16 kernels: the conversions of kernels/bf16.cuh, and the
 * layers templated on their storage type run with floatX = bf16 (the embeddings forward and
 * backward; LayerNorm forward, backward, their residual-fused forms and the recomputation;
 * GELU forward and its backward fused with the bias gradient; the Linear layer's bias
 * broadcast and bias gradient; the attention forward and backward over packed sequences, both
 * packings; the heads' [CLS] gather, tanh, mean pooling, segment means and cosine, and maxsim,
 * forward and backward) and AdamW writing the bf16 copy of its fp32 master; the matrix
 * products of bf16 operands (kernels/matmul.cuh: matmul_cuda into a float or bf16 c, the
 * Linear layer forward with its bias and backward). Seeded as test_cuda
 * (`test_cuda_bf16 SEED` repeats a run), on test_cuda's packed batch (test/cuda_check.h) at
 * C = 128, 384 and 768. And the fused attention (kernels/flash_attention.cuh), bf16 only, on a
 * batch of its own, against model.c and the simple kernels: its section derives its bounds.
 *
 * Each output is checked twice.
 * 1. Against model.c's function of the same name, in fp32, fed the SAME bf16-rounded inputs
 *    (every random input is drawn as a float and rounded to bf16 first, so that the kernel's
 *    bf16 and the reference's float hold the same values). Tolerances, per output:
 *    - an output kept in float (LayerNorm's mean and rstd, the weight and bias gradients,
 *      AdamW's master weights, m and v): test_cuda's fp32 bound, |got - want| <= tol (|want| +
 *      rms), tol = 64 u sqrt(K), u = 2^-24, K the longest chain of sums (stated at each
 *      check): the kernel computes in float from the same inputs, so only the order of its
 *      sums and the math library's few ulp separate it from model.c;
 *    - an output stored in bf16: the kernel computes y in float, within that bound of want
 *      (y = want + delta, |delta| <= tol (|want| + rms)), then stores got = RNE(y). bf16 keeps
 *      8 significant bits, so rounding to nearest moves y by at most half an ulp, 2^(e-8) for
 *      2^e <= |y|: |got - y| <= 2^-8 |y|. Hence |got - want| <= 2^-8 |want| + (1 + 2^-8)
 *      |delta|: each entry may be off by 2^-8 of itself on top of the fp32 bound, and no more
 *      (expect_close_host with rounding 2^-8: the error printed is what exceeds 2^-8 |want|,
 *      over (1 + 2^-8)(|want| + rms)).
 *    The 2^-8 is the exact bound of one rounding, not a margin, and the fp32 part is 1e-4 at
 *    most: so a kernel that rounds anything to bf16 before its last store (a statistic, a sum,
 *    a score, the master weights, AdamW's moments) fails, because over 10^4 to 10^6 entries
 *    some take both roundings near their worst (the checks that catch each such change are
 *    named at the checks: each was made to the kernel and seen to fail).
 * 2. Against the fp32 kernel (floatX = float), the twin, fed the same values as floats:
 *    floatX = bf16 computes the same floats from the same inputs, so a float output holds the
 *    twin's bytes and a bf16 output the twin's bytes rounded once (RNE on the host): any
 *    arithmetic of the bf16 kernel that differs from the fp32 backend's shows here, to the
 *    bit. (Not yet run on a GPU, where this takes nvcc to contract the same multiply-adds into
 *    FMAs in both instantiations of the same source.)
 * The products are the exception to 2: the fp32 product is another program (cpu/gemm.c under
 * the emulator, cuBLAS on a GPU) summing in another order. They are checked against the
 * reference as in 1, and on a GPU cuBLASLt's result against the twin's (matmul_kernel1, what
 * the emulator runs), each within its fp32 bound and rounding of the other (at expect_twin).
 * And the rounding itself: __float2bfloat16_rn on the host and float_to_bf16_cuda on the
 * device, round to nearest, ties to even, on values built bit by bit (ties either way, just
 * off a tie, carries into the exponent, overflow to infinity, subnormals, signed zeros, NaNs
 * whose payload is in the dropped bits) and on a million random bit patterns against the
 * definition written out on the bits; bf16_to_float_cuda exact on all 65,536 bf16 values.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <type_traits>
#include "model.h"
#include "test/test.h"
#include "kernels/bf16.cuh"
#include "kernels/embeddings.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/gelu.cuh"
#include "kernels/attention.cuh"
#include "kernels/flash_attention.cuh"
#include "kernels/matmul.cuh"
#include "kernels/pooler.cuh"
#include "kernels/adamw.cuh"
#include "test/cuda_check.h"
extern "C" {
#include "cpu/gemm.h"
}

// the bound of one rounding to bf16, relative to the value (the top of the file)
#define BF16_ROUNDING 0.00390625  // 2^-8

// ---- one tensor on every side ----

// a tensor as the reference, the bf16 kernel and its fp32 twin see it. T: its storage under
// bf16 (bf16, or float for what stays float)
template <typename T> struct Tensor {
    size_t n;
    float* ref;  // (n) host: the reference's values
    T* bf;       // (n) device: the bf16 kernel's
    float* fp;   // (n) device: the fp32 kernel's
};

// x (n) as T on the device
template <typename T> static inline T* device_as(const float* x, size_t n) {
    T* h = (T*)mallocCheck(n * sizeof(T));
    for (size_t i = 0; i < n; i++) { h[i] = from_float<T>(x[i]); }
    T* d;
    cudaCheck(cudaMalloc((void**)&d, n * sizeof(T)));
    cudaCheck(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    free(h);
    return d;
}

// an input, or an output that accumulates: n values uniform in [lo, hi) rounded to T first,
// the same values on every side
template <typename T> static Tensor<T> tensor_random(size_t n, float lo, float hi) {
    float* x = host_random(n, lo, hi);
    for (size_t i = 0; i < n; i++) { x[i] = to_float(from_float<T>(x[i])); }
    Tensor<T> t = {n, x, device_as<T>(x, n), device_from(x, n)};
    return t;
}

// every byte 0xFF on the device (NaN, in float as in bf16), so that an entry a kernel
// forgets to write fails
template <typename T> static void tensor_poison(Tensor<T>* t) {
    cudaCheck(cudaMemset(t->bf, 0xFF, t->n * sizeof(T)));
    poison(t->fp, t->n);
}

// an output the kernels write in full; ref for the reference to fill
template <typename T> static Tensor<T> tensor_output(size_t n) {
    Tensor<T> t = {n, (float*)mallocCheck(n * sizeof(float)), NULL, device_poisoned(n)};
    cudaCheck(cudaMalloc((void**)&t.bf, n * sizeof(T)));
    tensor_poison(&t);
    return t;
}

template <typename T> static void tensor_free(Tensor<T>* t) {
    free(t->ref);
    cudaCheck(cudaFree(t->bf));
    cudaCheck(cudaFree(t->fp));
}

// t's bf16 kernel output against the reference, K the chain of sums (a bf16 output allowed its
// rounding on top, the top of the file), and against the fp32 twin's: the same bytes, rounded
// to T. rows, num_rows: per-row scales, as expect_close_rows
template <typename T>
static void expect_tensor(const char* what, int C, const Tensor<T>* t, double K, const size_t* rows = NULL,
                          size_t num_rows = 0) {
    const bool is_bf16 = std::is_same<T, bf16>::value;
    cudaCheck(cudaStreamSynchronize(stream));
    T* got = (T*)mallocCheck(t->n * sizeof(T));
    cudaCheck(cudaMemcpy(got, t->bf, t->n * sizeof(T), cudaMemcpyDeviceToHost));
    float* got_float = (float*)mallocCheck(t->n * sizeof(float));
    for (size_t i = 0; i < t->n; i++) { got_float[i] = to_float(got[i]); }
    char name[96];
    snprintf(name, sizeof(name), "%s%s", what, is_bf16 ? " (bf16)" : "");
    expect_close_host(name, C, got_float, t->ref, t->n, K, rows, num_rows, is_bf16 ? BF16_ROUNDING : 0.0);
    float* twin = host_from(t->fp, t->n);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < t->n; i++) {
        T want = from_float<T>(twin[i]);
        if (memcmp(&want, &got[i], sizeof(T)) != 0 && differ++ == 0) { first = i; }
    }
    CHECK(differ == 0, "C=%d %s: %zu of %zu entries are not the fp32 kernel's%s (first at %zu: %.9g, twin %.9g)", C,
          name, differ, t->n, is_bf16 ? " rounded" : "", first, got_float[first], twin[first]);
    free(got);
    free(got_float);
    free(twin);
}

// ---- rounding to bf16 ----

static float float_of_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}
static uint16_t bits_of(bf16 h) {
    uint16_t u;
    memcpy(&u, &h, sizeof(u));
    return u;
}
static int is_bf16_nan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu) != 0; }

// round to nearest, ties to even, written out on the bits of a float that is not a NaN: add
// just under half of the 16 dropped bits' unit, plus the kept last bit, and truncate. Below a
// tie nothing carries, above one it does, and at a tie exactly when the kept last bit is 1
// (odd). A carry out of the mantissa increments the exponent, the largest finite value
// carries into infinity; subnormals round the same way
static uint16_t round_bits(uint32_t u) { return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16); }

static const struct { uint32_t in; uint16_t out; const char* what; } ROUNDING_CASES[] = {
    {0x3F800000u, 0x3F80u, "1, exact"},
    {0x3F808000u, 0x3F80u, "1 + 2^-8, a tie: down to the even 1"},
    {0x3F818000u, 0x3F82u, "1 + 3 2^-8, a tie: up to the even 1 + 2^-6"},
    {0x3F807FFFu, 0x3F80u, "just under a tie: down"},
    {0x3F808001u, 0x3F81u, "just over a tie: up"},
    {0xBF808000u, 0xBF80u, "-(1 + 2^-8), a tie: to the even -1"},
    {0xBF818000u, 0xBF82u, "-(1 + 3 2^-8), a tie: to the even -(1 + 2^-6)"},
    {0x3FFF8000u, 0x4000u, "a tie above 2 - 2^-7: up to 2, the exponent carried"},
    {0x7F7F7FFFu, 0x7F7Fu, "just under the tie above the largest finite bf16"},
    {0x7F7F8000u, 0x7F80u, "the tie above the largest finite bf16: infinity"},
    {0x00008000u, 0x0000u, "a subnormal tie: down to the even 0"},
    {0x00018000u, 0x0002u, "a subnormal tie: up to the even 2^-148"},
    {0x00000001u, 0x0000u, "the smallest subnormal float: 0"},
    {0x80000000u, 0x8000u, "-0"},
    {0x7F800000u, 0x7F80u, "infinity"},
    {0xFF800000u, 0xFF80u, "-infinity"},
};
// NaNs whose payload lies in the dropped bits alone: truncated or rounded on the bits they
// would turn into infinity; they must stay NaNs
static const uint32_t NAN_CASES[] = {0x7FC00000u, 0x7F800001u, 0xFF80FFFFu, 0x7FFFFFFFu};

// in (n) through float_to_bf16_cuda into out (n), on the host
static void round_on_device(bf16* out, const float* in, size_t n) {
    float* d_in = device_from(in, n);
    bf16* d_out;
    cudaCheck(cudaMalloc((void**)&d_out, n * sizeof(bf16)));
    float_to_bf16_cuda(d_out, d_in, n, stream);
    cudaCheck(cudaStreamSynchronize(stream));
    cudaCheck(cudaMemcpy(out, d_out, n * sizeof(bf16), cudaMemcpyDeviceToHost));
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
}

static void test_rounding(void) {
    const size_t num_cases = sizeof(ROUNDING_CASES) / sizeof(ROUNDING_CASES[0]);
    const size_t num_nans = sizeof(NAN_CASES) / sizeof(NAN_CASES[0]);
    const size_t num_random = (size_t)1 << 20, n = num_cases + num_nans + num_random;
    float* in = (float*)mallocCheck(n * sizeof(float));
    for (size_t i = 0; i < num_cases; i++) { in[i] = float_of_bits(ROUNDING_CASES[i].in); }
    for (size_t i = 0; i < num_nans; i++) { in[num_cases + i] = float_of_bits(NAN_CASES[i]); }
    for (size_t i = num_cases + num_nans; i < n; i++) { in[i] = float_of_bits(rng_u32() ^ (rng_u32() << 16)); }
    bf16* on_device = (bf16*)mallocCheck(n * sizeof(bf16));
    round_on_device(on_device, in, n);
    int host_bad = 0, device_bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &in[i], sizeof(u));
        uint16_t host = bits_of(__float2bfloat16_rn(in[i])), device = bits_of(on_device[i]), want;
        int host_ok, device_ok;
        if (isnan(in[i])) {  // any NaN will do (the host and sm_80's cvt give 0x7FFF, the canonical one)
            want = 0x7FFFu;
            host_ok = is_bf16_nan(host);
            device_ok = is_bf16_nan(device);
        } else {
            want = i < num_cases ? ROUNDING_CASES[i].out : round_bits(u);
            host_ok = host == want;
            device_ok = device == want;
        }
        if (i < num_cases) {  // the table and the formula agree
            CHECK(round_bits(u) == want, "%s: the bit formula gives %04x", ROUNDING_CASES[i].what, round_bits(u));
        }
        if ((!host_ok || !device_ok) && host_bad + device_bad < 8) {
            printf("FAIL rounding %08x (%s) to bf16: host %04x, device %04x, want %04x\n", u,
                   i < num_cases ? ROUNDING_CASES[i].what : (i < num_cases + num_nans ? "a NaN" : "random bits"), host,
                   device, want);
        }
        host_bad += !host_ok;
        device_bad += !device_ok;
    }
    printf("  rounding to bf16: %zu cases built bit by bit, %zu NaNs, %zu random floats: %d wrong on the host, %d on "
           "the device\n", num_cases, num_nans, num_random, host_bad, device_bad);
    CHECK(host_bad == 0, "__float2bfloat16_rn: %d of %zu roundings wrong", host_bad, n);
    CHECK(device_bad == 0, "float_to_bf16_cuda: %d of %zu roundings wrong", device_bad, n);

    // bf16 -> float: exact, every value (its bits are the float's top half)
    const size_t all = 65536;
    uint16_t* values = (uint16_t*)mallocCheck(all * sizeof(uint16_t));
    for (size_t i = 0; i < all; i++) { values[i] = (uint16_t)i; }
    bf16* d_values;  // the same bytes
    cudaCheck(cudaMalloc((void**)&d_values, all * sizeof(bf16)));
    cudaCheck(cudaMemcpy(d_values, values, all * sizeof(bf16), cudaMemcpyHostToDevice));
    float* d_floats = device_poisoned(all);
    bf16_to_float_cuda(d_floats, d_values, all, stream);
    float* floats = host_from(d_floats, all);
    int wrong = 0;
    for (size_t i = 0; i < all; i++) {
        uint32_t u;
        memcpy(&u, &floats[i], sizeof(u));
        wrong += is_bf16_nan((uint16_t)i) ? !isnan(floats[i]) : u != (uint32_t)i << 16;
    }
    CHECK(wrong == 0, "bf16_to_float_cuda: %d of 65536 values wrong", wrong);
    free(in); free(on_device); free(values); free(floats);
    cudaCheck(cudaFree(d_values));
    cudaCheck(cudaFree(d_floats));
}

// ---- the layers ----

// The embeddings: bf16 tables, their sum in float rounded once into the bf16 output; the
// backward adds the bf16 gradient rows in float onto the float table gradients, in the
// reference's order (test_cuda's tolerances: two additions, K = 1; the reference's order of
// summation, K = 1). The sum's first addition rounded to bf16 fails out; a table gradient
// accumulated in bf16 fails it
static void test_embeddings(const Batch* b, int C) {
    int N = b->N, S = b->S;
    size_t NC = (size_t)N * C;
    Tensor<bf16> wte = tensor_random<bf16>((size_t)VOCAB * C, -1.0f, 1.0f);
    Tensor<bf16> wpe = tensor_random<bf16>((size_t)MAX_POSITION * C, -1.0f, 1.0f);
    Tensor<bf16> wtt = tensor_random<bf16>((size_t)TYPES * C, -1.0f, 1.0f), out = tensor_output<bf16>(NC);
    embeddings_forward(out.ref, b->ids, b->types, b->seq_starts, S, wte.ref, wpe.ref, wtt.ref, C);
    embeddings_forward_cuda(out.bf, b->d_ids, b->d_types, b->d_seq_starts, S, wte.bf, wpe.bf, wtt.bf, N, C, stream);
    embeddings_forward_cuda(out.fp, b->d_ids, b->d_types, b->d_seq_starts, S, wte.fp, wpe.fp, wtt.fp, N, C, stream);
    expect_tensor("embeddings_forward", C, &out, 1);

    Tensor<bf16> demb = tensor_random<bf16>(NC, -1.0f, 1.0f);
    Tensor<float> dwte = tensor_random<float>((size_t)VOCAB * C, -1.0f, 1.0f);
    Tensor<float> dwpe = tensor_random<float>((size_t)MAX_POSITION * C, -1.0f, 1.0f);
    Tensor<float> dwtt = tensor_random<float>((size_t)TYPES * C, -1.0f, 1.0f);
    embeddings_backward_cuda(dwte.bf, dwpe.bf, dwtt.bf, demb.bf, b->d_bucket_tokens, b->d_bucket_starts,
                             b->d_bucket_ids, b->U, b->d_types, b->d_seq_starts, S, b->max_T, N, TYPES, C, stream);
    embeddings_backward_cuda(dwte.fp, dwpe.fp, dwtt.fp, demb.fp, b->d_bucket_tokens, b->d_bucket_starts,
                             b->d_bucket_ids, b->U, b->d_types, b->d_seq_starts, S, b->max_T, N, TYPES, C, stream);
    embeddings_backward(dwte.ref, dwpe.ref, dwtt.ref, demb.ref, b->ids, b->types, b->seq_starts, S, C);
    expect_tensor("embeddings_backward dwte", C, &dwte, 1);
    expect_tensor("embeddings_backward dwpe", C, &dwpe, 1);
    expect_tensor("embeddings_backward dwtt", C, &dwtt, 1);
    Tensor<bf16>* bf16s[] = {&wte, &wpe, &wtt, &out, &demb};
    for (Tensor<bf16>* t : bf16s) { tensor_free(t); }
    Tensor<float>* floats[] = {&dwte, &dwpe, &dwtt};
    for (Tensor<float>* t : floats) { tensor_free(t); }
}

static void test_layernorm(const Batch* b, int C) {
    int N = b->N;
    size_t NC = (size_t)N * C;
    const float eps = 1e-12f;
    // inputs with a mean far from zero against their spread, where a one-pass variance would fail
    Tensor<bf16> inp = tensor_random<bf16>(NC, 2.0f, 4.0f), weight = tensor_random<bf16>(C, 0.5f, 1.5f);
    Tensor<bf16> bias = tensor_random<bf16>(C, -1.0f, 1.0f), out = tensor_output<bf16>(NC);
    Tensor<float> mean = tensor_output<float>(N), rstd = tensor_output<float>(N);
    layernorm_forward(out.ref, mean.ref, rstd.ref, inp.ref, weight.ref, bias.ref, N, C, eps);
    layernorm_forward_cuda(out.bf, mean.bf, rstd.bf, inp.bf, weight.bf, bias.bf, N, C, eps, stream);
    layernorm_forward_cuda(out.fp, mean.fp, rstd.fp, inp.fp, weight.fp, bias.fp, N, C, eps, stream);
    // sums over C. The row's sum or its squared deviations summed in bf16 fail mean or rstd,
    // out and the backward's outputs (at 10 to 20 times their tolerance at C = 128 already)
    expect_tensor("layernorm_forward out", C, &out, C);
    expect_tensor("layernorm_forward mean", C, &mean, C);
    expect_tensor("layernorm_forward rstd", C, &rstd, C);

    // backward: dinp (bf16) and the parameters' gradients (float) accumulate, from the same
    // values on every side. Sums over C for dinp (the row's two means), over N for dweight
    // (in the reference's order for dbias: K = 1); a column summed in bf16 fails dweight and
    // dbias, the row's means summed in bf16 fail dinp
    Tensor<bf16> dout = tensor_random<bf16>(NC, -1.0f, 1.0f), dinp = tensor_random<bf16>(NC, -1.0f, 1.0f);
    Tensor<float> dweight = tensor_random<float>(C, -1.0f, 1.0f), dbias = tensor_random<float>(C, -1.0f, 1.0f);
    layernorm_backward_cuda(dinp.bf, dweight.bf, dbias.bf, dout.bf, inp.bf, weight.bf, mean.bf, rstd.bf, N, C, stream);
    layernorm_backward_cuda(dinp.fp, dweight.fp, dbias.fp, dout.fp, inp.fp, weight.fp, mean.fp, rstd.fp, N, C, stream);
    layernorm_backward(dinp.ref, dweight.ref, dbias.ref, dout.ref, inp.ref, weight.ref, mean.ref, rstd.ref, N, C);
    expect_tensor("layernorm_backward dinp", C, &dinp, C);
    expect_tensor("layernorm_backward dweight", C, &dweight, N);
    expect_tensor("layernorm_backward dbias", C, &dbias, 1);

    // the backward fused with the residual sum's: the input gradient written to both terms
    // (the reference adds into zeros), the parameters' gradients going on from the above
    Tensor<bf16> da = tensor_output<bf16>(NC), db = tensor_output<bf16>(NC);
    residual_layernorm_backward_cuda(da.bf, db.bf, dweight.bf, dbias.bf, dout.bf, inp.bf, weight.bf, mean.bf, rstd.bf,
                                     N, C, stream);
    residual_layernorm_backward_cuda(da.fp, db.fp, dweight.fp, dbias.fp, dout.fp, inp.fp, weight.fp, mean.fp, rstd.fp,
                                     N, C, stream);
    memset(da.ref, 0, NC * sizeof(float));
    layernorm_backward(da.ref, dweight.ref, dbias.ref, dout.ref, inp.ref, weight.ref, mean.ref, rstd.ref, N, C);
    memcpy(db.ref, da.ref, NC * sizeof(float));
    expect_tensor("residual_layernorm_backward da", C, &da, C);
    expect_tensor("residual_layernorm_backward db", C, &db, C);
    expect_tensor("residual_layernorm_backward dweight", C, &dweight, N);
    expect_tensor("residual_layernorm_backward dbias", C, &dbias, 1);

    // the residual sum fused with the LayerNorm after it, in place (res = a) as the forward pass
    // calls it. res is the float sum of two bf16 values (exact) rounded once; the statistics are
    // those of res as stored, so the twin is the fp32 LayerNorm of the rounded res
    Tensor<bf16> a = tensor_random<bf16>(NC, -1.0f, 1.0f);
    for (size_t i = 0; i < NC; i++) { a.ref[i] = to_float(from_float<bf16>(a.ref[i] + inp.ref[i])); }
    cudaCheck(cudaMemcpy(a.fp, a.ref, NC * sizeof(float), cudaMemcpyHostToDevice));
    tensor_poison(&out); tensor_poison(&mean); tensor_poison(&rstd);
    residual_layernorm_forward_cuda(a.bf, out.bf, mean.bf, rstd.bf, a.bf, inp.bf, weight.bf, bias.bf, N, C, eps,
                                    stream);
    layernorm_forward_cuda(out.fp, mean.fp, rstd.fp, a.fp, weight.fp, bias.fp, N, C, eps, stream);
    layernorm_forward(out.ref, mean.ref, rstd.ref, a.ref, weight.ref, bias.ref, N, C, eps);
    expect_tensor("residual_layernorm res", C, &a, 1);
    expect_tensor("residual_layernorm out", C, &out, C);  // sums over C, as above
    expect_tensor("residual_layernorm mean", C, &mean, C);
    expect_tensor("residual_layernorm rstd", C, &rstd, C);
    // its output recomputed from res and the kept mean and rstd: the forward's bytes
    bf16* recomputed;
    cudaCheck(cudaMalloc((void**)&recomputed, NC * sizeof(bf16)));
    cudaCheck(cudaMemset(recomputed, 0xFF, NC * sizeof(bf16)));
    layernorm_recompute_cuda(recomputed, a.bf, mean.bf, rstd.bf, weight.bf, bias.bf, N, C, stream);
    expect_same_bytes("layernorm_recompute out (bf16)", C, recomputed, out.bf, NC);

    Tensor<bf16>* bf16s[] = {&inp, &weight, &bias, &out, &dout, &dinp, &da, &db, &a};
    for (Tensor<bf16>* t : bf16s) { tensor_free(t); }
    Tensor<float>* floats[] = {&mean, &rstd, &dweight, &dbias};
    for (Tensor<float>* t : floats) { tensor_free(t); }
    cudaCheck(cudaFree(recomputed));
}

// GELU over the intermediate activations (N, I), across its tails on both sides; its backward
// fused with the fc layer's bias gradient, which sums the float gradient before its rounding
static void test_gelu(const Batch* b, int C) {
    int N = b->N, I = 4 * C;
    size_t n = (size_t)N * I;
    Tensor<bf16> inp = tensor_random<bf16>(n, -6.0f, 6.0f), out = tensor_output<bf16>(n);
    gelu_forward(out.ref, inp.ref, n);
    gelu_forward_cuda(out.bf, inp.bf, n, stream);
    gelu_forward_cuda(out.fp, inp.fp, n, stream);
    // no sums: K = 1. Phi(x) rounded to bf16 before the product fails it (two roundings)
    expect_tensor("gelu_forward", C, &out, 1);

    Tensor<bf16> dinout = tensor_random<bf16>(n, -1.0f, 1.0f);
    Tensor<float> dbias = tensor_random<float>(I, -1.0f, 1.0f);
    gelu_backward_bias_cuda(dinout.bf, dbias.bf, inp.bf, N, I, stream);
    gelu_backward_bias_cuda(dinout.fp, dbias.fp, inp.fp, N, I, stream);
    gelu_backward_inplace(dinout.ref, inp.ref, n);
    for (int c = 0; c < I; c++) {  // the column sums in double, an order of their own
        double sum = 0.0;
        for (int t = 0; t < N; t++) { sum += dinout.ref[(size_t)t * I + c]; }
        dbias.ref[c] += (float)sum;
    }
    expect_tensor("gelu_backward_bias dinp", C, &dinout, 1);
    // float sums over the N rows; summing the gradient as rounded to bf16 fails it (N
    // roundings of 2^-9 relative on average, a random walk far above the fp32 bound)
    expect_tensor("gelu_backward_bias dbias", C, &dbias, N);
    tensor_free(&inp); tensor_free(&out); tensor_free(&dinout); tensor_free(&dbias);
}

// The Linear layer's bias, at the qkv layer's width: written into the output before the
// product (an exact copy: K = 1, no rounding beyond the bias's own), and its gradient, the
// column sums of a bf16 output gradient added in float onto the float gradient (the sums in
// double, an order of their own: K = N). Summing a column in bf16 fails dbias
static void test_bias(const Batch* b, int C) {
    int N = b->N, OC = 3 * C;
    size_t n = (size_t)N * OC;
    Tensor<bf16> bias = tensor_random<bf16>(OC, -1.0f, 1.0f), out = tensor_output<bf16>(n);
    for (size_t i = 0; i < n; i++) { out.ref[i] = bias.ref[i % OC]; }
    bias_broadcast_cuda(out.bf, bias.bf, N, OC, stream);
    bias_broadcast_cuda(out.fp, bias.fp, N, OC, stream);
    expect_tensor("bias_broadcast", C, &out, 1);
    Tensor<bf16> dout = tensor_random<bf16>(n, -1.0f, 1.0f);
    Tensor<float> dbias = tensor_random<float>(OC, -1.0f, 1.0f);
    bias_backward_cuda(dbias.bf, dout.bf, N, OC, stream);
    bias_backward_cuda(dbias.fp, dout.fp, N, OC, stream);
    for (int c = 0; c < OC; c++) {
        double sum = 0.0;
        for (int t = 0; t < N; t++) { sum += dout.ref[(size_t)t * OC + c]; }
        dbias.ref[c] += (float)sum;
    }
    expect_tensor("bias_backward dbias", C, &dbias, N);
    tensor_free(&bias); tensor_free(&out); tensor_free(&dout); tensor_free(&dbias);
}

// ---- the matrix products: bf16 a and b, fp32 sums, c rounded once ----

// a device tensor of n T's as floats on the host (exact for both)
template <typename T> static float* host_floats(const T* d, size_t n) {
    cudaCheck(cudaStreamSynchronize(stream));
    T* h = (T*)mallocCheck(n * sizeof(T));
    cudaCheck(cudaMemcpy(h, d, n * sizeof(T), cudaMemcpyDeviceToHost));
    float* x = (float*)mallocCheck(n * sizeof(float));
    for (size_t i = 0; i < n; i++) { x[i] = to_float(h[i]); }
    free(h);
    return x;
}

// a product's c (n Tc's on the device) against the fp32 reference fed the same bf16 values.
// Each product of two bf16 values is exact in float, so both sides are fp32 sums of the same
// terms in different orders: test_cuda's 64 u sqrt(K), K the terms of the longest sum; a bf16
// c is that sum rounded once, 2^-8 of itself on top (the top of the file)
template <typename Tc>
static void expect_product(const char* what, int C, const Tc* got_device, const float* want, size_t n, double K) {
    const bool is_bf16 = std::is_same<Tc, bf16>::value;
    float* got = host_floats(got_device, n);
    char name[128];  // what, up to 95 characters, and its suffix
    snprintf(name, sizeof(name), "%s%s", what, is_bf16 ? " (bf16)" : "");
    expect_close_host(name, C, got, want, n, K, NULL, 0, is_bf16 ? BF16_ROUNDING : 0.0);
    free(got);
}

#ifndef CUDA_EMULATOR
// On a GPU: cuBLASLt's c (n Tc's) against the twin's (matmul_kernel1) from the same inputs.
// Each is an fp32 sum within 64 u sqrt(K) (|exact| + rms) of the exact value, in its own order
// (cuBLASLt's tiles and tensor-core accumulation), so the two are within twice that
// (tolerance(4K)); a bf16 c is rounded once on each side, 2^-8 of the value each: 2^-7 on top
template <typename Tc>
static void expect_twin(const char* what, int C, const Tc* got_device, const Tc* twin_device, size_t n, double K) {
    const bool is_bf16 = std::is_same<Tc, bf16>::value;
    float* got = host_floats(got_device, n);
    float* twin = host_floats(twin_device, n);
    char name[128];  // what, up to 95 characters, and its suffix
    snprintf(name, sizeof(name), "%s%s cuBLASLt/twin", what, is_bf16 ? " (bf16)" : "");
    expect_close_host(name, C, got, twin, n, 4.0 * K, NULL, 0, is_bf16 ? 2.0 * BF16_ROUNDING : 0.0);
    free(got);
    free(twin);
}
#endif

// matmul_cuda with bf16 a and b into a Tc c, both transposes, beta 0 (c poisoned: a product
// that reads it fails) and 1 (c random, read once), at shapes no multiple of 16 (ragged tiles,
// odd row strides), against cpu/gemm.c's fp32 product of the same values: K = k terms and
// beta c. (The C column of the printout shows k.) Dropping the rounding of a bf16 c (storing
// the float's top half) fails it; so does rounding the sum to bf16 every 16 terms
template <typename Tc>
static void test_matmul(void) {
    const int shapes[2][3] = {{37, 53, 75}, {130, 77, 683}};
    for (int s = 0; s < 2; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int trans_a = 0; trans_a <= 1; trans_a++) {
            for (int trans_b = 0; trans_b <= 1; trans_b++) {
                for (int beta = 0; beta <= 1; beta++) {
                    int lda = trans_a ? m : k, ldb = trans_b ? k : n;
                    Tensor<bf16> a = tensor_random<bf16>((size_t)m * k, -1.0f, 1.0f);
                    Tensor<bf16> b = tensor_random<bf16>((size_t)k * n, -1.0f, 1.0f);
                    size_t mn = (size_t)m * n;
                    Tensor<Tc> c = beta ? tensor_random<Tc>(mn, -1.0f, 1.0f) : tensor_output<Tc>(mn);
#ifndef CUDA_EMULATOR
                    Tc* twin;  // c as it starts: random, or poisoned for beta 0
                    cudaCheck(cudaMalloc((void**)&twin, c.n * sizeof(Tc)));
                    cudaCheck(cudaMemcpy(twin, c.bf, c.n * sizeof(Tc), cudaMemcpyDeviceToDevice));
#endif
                    gemm(c.ref, n, a.ref, lda, trans_a, b.ref, ldb, trans_b, m, n, k, 1.0f, (float)beta);
                    matmul_cuda(c.bf, n, a.bf, lda, trans_a, b.bf, ldb, trans_b, m, n, k, 1.0f, (float)beta, stream);
                    char name[64];
                    snprintf(name, sizeof(name), "matmul (%d, %d) %c%c beta %d", m, n, trans_a ? 'T' : 'N',
                             trans_b ? 'T' : 'N', beta);
                    expect_product(name, k, c.bf, c.ref, c.n, k + 1);
#ifndef CUDA_EMULATOR
                    matmul_twin_cuda(twin, n, a.bf, lda, trans_a, b.bf, ldb, trans_b, m, n, k, 1.0f, (float)beta,
                                     (const Tc*)NULL, stream);
                    expect_twin(name, k, c.bf, twin, c.n, k + 1);
                    cudaCheck(cudaFree(twin));
#endif
                    tensor_free(&a); tensor_free(&b); tensor_free(&c);
                }
            }
        }
    }
}

// The Linear layer in bf16, N rows (N, IC) -> (N, OC), against model.c's linear_forward and
// linear_backward on the same values. The forward: one product with the bias added to its fp32
// sums, rounded once (K = IC terms and the bias); dropping the bias from the twin fails it, and
// so does adding it to the product already rounded to bf16 (two roundings). The backward
// accumulates: dinp (bf16, K = OC terms and dinp), dweight (float, K = N and dweight), dbias
// (float, the column sums: K = N), each from random values on every side; with_dbias 0 passes
// NULL, as the fc layer does (its bias gradient comes with GELU's backward)
static void test_linear(const char* what, int C, int N, int IC, int OC, int with_dbias) {
    size_t n_out = (size_t)N * OC, n_inp = (size_t)N * IC, n_weight = (size_t)OC * IC;
    Tensor<bf16> inp = tensor_random<bf16>(n_inp, -1.0f, 1.0f), weight = tensor_random<bf16>(n_weight, -1.0f, 1.0f);
    Tensor<bf16> bias = tensor_random<bf16>(OC, -1.0f, 1.0f), out = tensor_output<bf16>(n_out);
    linear_forward(out.ref, inp.ref, weight.ref, bias.ref, N, IC, OC);
    linear_forward_cuda(out.bf, inp.bf, weight.bf, bias.bf, N, IC, OC, stream);
    char name[96];
    snprintf(name, sizeof(name), "linear_forward %s", what);
    expect_product(name, C, out.bf, out.ref, n_out, IC + 1);
#ifndef CUDA_EMULATOR
    Tensor<bf16> twin = tensor_output<bf16>(n_out);
    matmul_twin_cuda(twin.bf, OC, inp.bf, IC, 0, weight.bf, IC, 1, N, OC, IC, 1.0f, 0.0f, bias.bf, stream);
    expect_twin(name, C, out.bf, twin.bf, n_out, IC + 1);
    tensor_free(&twin);
#endif

    Tensor<bf16> dout = tensor_random<bf16>(n_out, -1.0f, 1.0f), dinp = tensor_random<bf16>(n_inp, -1.0f, 1.0f);
    Tensor<float> dweight = tensor_random<float>(n_weight, -1.0f, 1.0f), dbias = tensor_random<float>(OC, -1.0f, 1.0f);
#ifndef CUDA_EMULATOR
    // the twin's two products from the same starting gradients (its fp side holds them as floats)
    bf16* dinp_twin = device_as<bf16>(dinp.ref, n_inp);
    matmul_twin_cuda(dinp_twin, IC, dout.bf, OC, 0, weight.bf, IC, 0, N, IC, OC, 1.0f, 1.0f, (const bf16*)NULL, stream);
    matmul_twin_cuda(dweight.fp, IC, dout.bf, OC, 1, inp.bf, IC, 0, OC, IC, N, 1.0f, 1.0f, (const float*)NULL, stream);
#endif
    linear_backward_cuda(dinp.bf, dweight.bf, with_dbias ? dbias.bf : NULL, dout.bf, inp.bf, weight.bf, N, IC, OC,
                         stream);
    linear_backward(dinp.ref, dweight.ref, dbias.ref, dout.ref, inp.ref, weight.ref, N, IC, OC);
    snprintf(name, sizeof(name), "linear_backward %s dinp", what);
    expect_product(name, C, dinp.bf, dinp.ref, n_inp, OC + 1);
#ifndef CUDA_EMULATOR
    expect_twin(name, C, dinp.bf, dinp_twin, n_inp, OC + 1);
    cudaCheck(cudaFree(dinp_twin));
#endif
    snprintf(name, sizeof(name), "linear_backward %s dweight", what);
    expect_product(name, C, dweight.bf, dweight.ref, n_weight, N + 1);
#ifndef CUDA_EMULATOR
    expect_twin(name, C, dweight.bf, dweight.fp, n_weight, N + 1);
#endif
    if (with_dbias) {
        snprintf(name, sizeof(name), "linear_backward %s dbias", what);
        expect_product(name, C, dbias.bf, dbias.ref, (size_t)OC, N);
    }
    Tensor<bf16>* bf16s[] = {&inp, &weight, &bias, &out, &dout, &dinp};
    for (Tensor<bf16>* t : bf16s) { tensor_free(t); }
    tensor_free(&dweight); tensor_free(&dbias);
}

// The attention forward of each layout, joint and split (SPLIT_POINTS, the gates drawn in
// [-2, 1], float as the fp32 master's). q and k uniform in [-2, 2) at head size 64 give scores
// of standard deviation 1.3 (up to ~6), softmaxes neither flat nor one-hot, where a score
// rounded to bf16 moves its probability by up to 2^-8 |score|, several times 2^-8
static void test_attention(const Batch* b, int C, int NH, int split) {
    int N = b->N, S = b->S, A = b->A, hs = C / NH;
    size_t NC = (size_t)N * C;
    int split_at[NUM_SEQS];
    for (int s = 0; s < S; s++) { split_at[s] = split ? SPLIT_POINTS[s] : b->seq_starts[s + 1] - b->seq_starts[s]; }
    float* gates = split ? host_random(NH, -2.0f, 1.0f) : NULL;
    Tensor<bf16> qkv = tensor_random<bf16>(NC * 3, -2.0f, 2.0f), out = tensor_output<bf16>(NC);
    Tensor<bf16> att = tensor_output<bf16>((size_t)A);
    for (int s = 0; s < S; s++) {
        int start = b->seq_starts[s], T = b->seq_starts[s + 1] - start;
        for (int h = 0; h < NH; h++) {
            attention_head_forward(out.ref + (size_t)start * C, att.ref + b->att_offsets[s] + (size_t)h * T * T,
                                   qkv.ref + (size_t)start * 3 * C, T, h, C, NH, split_at[s], split ? gates[h] : 0.0f);
        }
    }
    int* d_split_at = device_from_ints(split_at, S);
    float* d_gates = split ? device_from(gates, NH) : NULL;
    attention_forward_cuda(out.bf, att.bf, qkv.bf, b->d_seq_starts, b->d_att_offsets, d_split_at, d_gates, S, N,
                           b->max_T, C, NH, stream);
    attention_forward_cuda(out.fp, att.fp, qkv.fp, b->d_seq_starts, b->d_att_offsets, d_split_at, d_gates, S, N,
                           b->max_T, C, NH, stream);
    size_t num_rows;
    size_t* rows = attention_rows(b, NH, 1, &num_rows);
    // scores: sums over hs; the softmax's sum and P V: sums over T. A dot product summed in
    // bf16, a score or an exp rounded to bf16, or the softmax's sum taken in bf16 fail att and
    // out; P V summed in bf16 fails out
    char name[64];
    snprintf(name, sizeof(name), "attention_forward att%s", split ? " (split)" : "");
    expect_tensor(name, C, &att, hs + b->max_T, rows, num_rows);
    snprintf(name, sizeof(name), "attention_forward out%s", split ? " (split)" : "");
    expect_tensor(name, C, &out, hs + 2 * b->max_T);

    // The backward from the stored probabilities: the reference's, rounded to bf16 (what a bf16
    // forward keeps) on every side, so that the backward's own error is measured alone. dS
    // (datt) stays float, scratch between the backward's two kernels; dq, dk, dv are bf16, each
    // one float sum rounded once; the gates' gradient accumulates in float (test_cuda's
    // tolerances: dS over hs then T, dq, dk, dv a sum over T more, the gates' gradient as dS)
    Tensor<bf16> p = {(size_t)A, att.ref, NULL, NULL};
    for (int i = 0; i < A; i++) { p.ref[i] = to_float(from_float<bf16>(p.ref[i])); }
    p.bf = device_as<bf16>(p.ref, (size_t)A);
    p.fp = device_from(p.ref, (size_t)A);
    att.ref = NULL;
    Tensor<bf16> dout = tensor_random<bf16>(NC, -1.0f, 1.0f), dqkv = tensor_output<bf16>(NC * 3);
    Tensor<float> datt = tensor_output<float>((size_t)A);
    Tensor<float> dgates = tensor_random<float>(split ? NH : 1, -1.0f, 1.0f);
    double* gate_partial = (double*)mallocCheck((size_t)S * NH * sizeof(double));
    for (int s = 0; s < S; s++) {
        int start = b->seq_starts[s], T = b->seq_starts[s + 1] - start;
        for (int h = 0; h < NH; h++) {
            size_t head = (size_t)b->att_offsets[s] + (size_t)h * T * T;
            gate_partial[s * NH + h] = attention_head_backward(dqkv.ref + (size_t)start * 3 * C, datt.ref + head,
                                                               dout.ref + (size_t)start * C,
                                                               qkv.ref + (size_t)start * 3 * C, p.ref + head, T, h, C,
                                                               NH, split_at[s]);
        }
    }
    for (int h = 0; split && h < NH; h++) {  // over the sequences in order, as model.c's bert_backward
        double sum = 0.0;
        for (int s = 0; s < S; s++) { sum += gate_partial[s * NH + h]; }
        dgates.ref[h] += (float)sum;
    }
    double* d_dgate_rows = NULL;
    if (split) { cudaCheck(cudaMalloc((void**)&d_dgate_rows, (size_t)N * NH * sizeof(double))); }
    attention_backward_cuda(dqkv.bf, datt.bf, split ? dgates.bf : NULL, d_dgate_rows, dout.bf, qkv.bf, p.bf,
                            b->d_seq_starts, b->d_att_offsets, d_split_at, S, N, b->max_T, C, NH, stream);
    attention_backward_cuda(dqkv.fp, datt.fp, split ? dgates.fp : NULL, d_dgate_rows, dout.fp, qkv.fp, p.fp,
                            b->d_seq_starts, b->d_att_offsets, d_split_at, S, N, b->max_T, C, NH, stream);
    // dP or the softmax backward's row dot summed in bf16 fail dS and dq, dk; dS kept in bf16
    // between the kernels fails dk; dq, dk or dv summed in bf16 fail that entry
    snprintf(name, sizeof(name), "attention_backward dS%s", split ? " (split)" : "");
    expect_tensor(name, C, &datt, hs + b->max_T, rows, num_rows);
    snprintf(name, sizeof(name), "attention_backward dqkv%s", split ? " (split)" : "");
    expect_tensor(name, C, &dqkv, hs + 2 * b->max_T);
    // (the gates' gradient sums dS over every row and cancels more than test_cuda's, q and k
    // being wider here: worst seen 4.4e-5, C = 384 on seed 42, of its 9.2e-5)
    if (split) { expect_tensor("attention_backward dgates", C, &dgates, hs + b->max_T); }
    tensor_free(&qkv); tensor_free(&out); tensor_free(&att); tensor_free(&p);
    tensor_free(&dout); tensor_free(&dqkv); tensor_free(&datt); tensor_free(&dgates);
    free(rows);
    free(gates);
    free(gate_partial);
    cudaCheck(cudaFree(d_split_at));
    cudaCheck(cudaFree(d_gates));
    cudaCheck(cudaFree(d_dgate_rows));
}

// ---- the fused attention (kernels/flash_attention.cuh) ----
//
// Its forward and backward on a packed batch of its own (lengths 130, 1, 64, 7, 150, 33: one
// sequence of a single token, one of exactly one tile, partial tiles of lengths that are not
// multiples of 16, and two of several key tiles, which exercise the online rescaling), at
// head sizes 64 (C = 128) and 32 (C = 64), both packings (split points inside sequences, one at
// a tile's edge, sequences without a document; gates in [-2, 1]). Checked against model.c's
// attention_head_forward and _backward fed the same bf16 values, the backward from the
// forward's float probabilities (what the fused backward recomputes), and against
// attention.cuh's simple kernels instantiated for float (the fp32 backend's, whose bf16
// instantiation test_attention holds to be their output rounded once: its bf16 stored
// probabilities, which the fused backward never reads, would only add a rounding here).
//
// Tolerances. Each output is a float y rounded once as stored (bf16: out, dq, dk, dv) or kept
// (float: lse, the gates' gradient), and y differs from the reference's float by the fp32
// error of sums taken in another order (test_cuda's 64 u sqrt(K), K as test_attention's), by
// what two roundings to bf16 inside the kernels propagate, bounded per entry (an allowance, in
// double from the reference's own P, dS, q, k, v and dout), and by a known move:
// - P rounded before P V: each exp(S - m) off by 2^-8 of itself, so out_id by at most 2^-8
//   sum_j P_ij |v_jd|; P^T dout likewise, dv_jd by 2^-8 sum_i P_ij |dout_id|;
// - D = dout . out from the stored bf16 out instead of sum_j P dP: off by dD_i = sum_d dout_id
//   (out_id - want_id), known (the kernel's own out against the reference's), so dS_ij moves
//   by -P_ij dD_i, dq_id by scale sum_j -P_ij dD_i k_jd, dk_jd by scale sum_i -P_ij dD_i q_id
//   and the gates' gradient by the sum of -P_ij dD_i across the segments: the reference is
//   moved by these (signed; allowing their absolute values instead lets a gate gradient
//   summed over every key, not only those across, pass);
// - dS rounded before dS K and dS^T Q: off by 2^-8 of itself (|dS_ij| + P_ij |dD_i|), so dq_id
//   by 2^-8 scale sum_j (|dS_ij| + P_ij |dD_i|) |k_jd| more, dk_jd by the same over i with
//   |q_id|.
// expect_flash takes (1 + 2^-8) allowance off each entry's difference from the moved reference
// (the store rounds y's error too), then holds the rest to the bf16 rule (2^-8 |want| for the
// store, then 64 u sqrt(K)): the allowances are bounds, not margins, and it prints how much of
// all it allows the worst entry takes (55% to 70% for out and dqkv on seed 1; the gates'
// gradient, beyond its move, at worst 3.2e-5 of its 5.6e-5, C = 128 on seed 6, over seeds 1-9
// and 42: a sum over every row that cancels, as test_attention's). The lse (float) against
// the logsumexp taken in double on the host, K = hs + max_T. On a GPU the tensor cores'
// products against model.c with the same rule (their float accumulation, in the hardware's
// order and rounding, within the fp32 bound), and against the plain ones: each side within
// its allowance of the reference, moved by its own known move, stored with its own rounding, so
// the two allowances added, the difference of the moves, and 2 x 2^-8 |want|.
// Each of these changes to the kernels was made and seen to fail here: no rescaling of O, no
// mask of the keys past the end, the scores or the softmax sum l rounded to bf16, the gate left
// out of the backward's scores, D = 0, the gate's gradient summed over every key, dS from the
// rounded P.

#define FLASH_SEQS 6
static const int FLASH_LENGTHS[FLASH_SEQS] = {130, 1, 64, 7, 150, 33};
static const int FLASH_SPLITS[FLASH_SEQS] = {64, 1, 20, 7, 97, 12};  // 1 and 7: no document

// a batch and its inputs, on the host and the device
struct FlashCase {
    int S, N, C, NH, max_T, split;
    int seq_starts[FLASH_SEQS + 1], split_at[FLASH_SEQS], att_offsets[FLASH_SEQS + 1];
    int *d_seq_starts, *d_split_at, *d_att_offsets;
    float* gates;    // (NH), NULL under the joint packing
    float* d_gates;
    float* dgates0;  // (NH) what the gates' gradient holds before the backward adds to it
    Tensor<bf16> qkv, dout;  // (N, 3*C), (N, C)
};

// the fused attention's outputs, as floats on the host
struct FlashOutputs {
    float *out, *lse, *dqkv, *dgates;  // (N, C), (N, NH), (N, 3*C), (NH)
};


// the forward, then the backward from its out and lse, with the products of Product; every
// output poisoned first
template <typename Product> static FlashOutputs flash_outputs(const FlashCase* f) {
    int N = f->N, C = f->C, NH = f->NH;
    size_t NC = (size_t)N * C, NNH = (size_t)N * NH;
    bf16 *out, *dqkv;
    float *lse, *delta, *dgates;
    double* dgate_rows;
    cudaCheck(cudaMalloc((void**)&out, NC * sizeof(bf16)));
    cudaCheck(cudaMalloc((void**)&dqkv, 3 * NC * sizeof(bf16)));
    cudaCheck(cudaMemset(out, 0xFF, NC * sizeof(bf16)));
    cudaCheck(cudaMemset(dqkv, 0xFF, 3 * NC * sizeof(bf16)));
    lse = device_poisoned(NNH);
    delta = device_poisoned(NNH);
    dgates = device_from(f->dgates0, NH);
    cudaCheck(cudaMalloc((void**)&dgate_rows, NNH * sizeof(double)));
    cudaCheck(cudaMemset(dgate_rows, 0xFF, NNH * sizeof(double)));
    flash_attention_forward_cuda<Product>(out, lse, f->qkv.bf, f->d_seq_starts, f->d_split_at, f->d_gates, f->S, N, C,
                                          NH, stream);
    flash_attention_backward_cuda<Product>(dqkv, delta, f->split ? dgates : NULL, dgate_rows, f->dout.bf, f->qkv.bf,
                                           out, lse, f->d_seq_starts, f->d_split_at, f->d_gates, f->S, N, C, NH,
                                           stream);
    FlashOutputs o = {host_floats(out, NC), host_floats(lse, NNH), host_floats(dqkv, 3 * NC), host_floats(dgates, NH)};
    cudaCheck(cudaFree(out)); cudaCheck(cudaFree(dqkv)); cudaCheck(cudaFree(lse)); cudaCheck(cudaFree(delta));
    cudaCheck(cudaFree(dgates)); cudaCheck(cudaFree(dgate_rows));
    return o;
}

static void free_flash_outputs(FlashOutputs* o) {
    free(o->out); free(o->lse); free(o->dqkv); free(o->dgates);
}

// got (n) against want (n) moved by the known shift (n; NULL: none), as expect_close_host
// (rounding: the stores' allowance relative to |want|), after (1 + rounding) slack[i] (NULL:
// none) is taken off entry i's difference: what is left must fit the bf16 rule (the top of
// the section). Prints too the largest share of its whole allowance an entry's error takes
static void expect_flash(const char* what, int C, const float* got, const float* want, const double* shift,
                         const double* slack, size_t n, double K, double rounding) {
    float* target = (float*)mallocCheck(n * sizeof(float));
    float* left = (float*)mallocCheck(n * sizeof(float));
    double sq = 0.0, used = 0.0;
    for (size_t i = 0; i < n; i++) {
        target[i] = (float)(want[i] + (shift ? shift[i] : 0.0));
        sq += (double)target[i] * target[i];
    }
    double rms = sqrt(sq / (double)n);
    for (size_t i = 0; i < n; i++) {
        double diff = (double)got[i] - target[i], room = slack ? (1.0 + rounding) * slack[i] : 0.0;
        left[i] = isfinite(got[i]) ? (float)(target[i] + copysign(fmax(fabs(diff) - room, 0.0), diff)) : got[i];
        double allowed = room + rounding * fabs(target[i]) + (1.0 + rounding) * tolerance(K) * (fabs(target[i]) + rms);
        used = fmax(used, fabs(diff) / allowed);
    }
    expect_close_host(what, C, left, target, n, K, NULL, 0, rounding);
    printf("         (the worst entry off by %.0f%% of all it is allowed)\n", 100.0 * used);
    free(target);
    free(left);
}

// the rows' logsumexp (N, NH), the scores' taken in double from the same bf16 values
static float* flash_lse(const FlashCase* f) {
    int C = f->C, NH = f->NH, hs = C / NH;
    float* lse = (float*)mallocCheck((size_t)f->N * NH * sizeof(float));
    double* scores = (double*)mallocCheck((size_t)f->max_T * sizeof(double));
    for (int s = 0; s < f->S; s++) {
        int start = f->seq_starts[s], T = f->seq_starts[s + 1] - start, split = f->split_at[s];
        for (int h = 0; h < NH; h++) {
            for (int i = 0; i < T; i++) {
                const float* q = f->qkv.ref + (size_t)(start + i) * 3 * C + h * hs;
                double maxs = -INFINITY, sum = 0.0;
                for (int j = 0; j < T; j++) {
                    const float* k = f->qkv.ref + (size_t)(start + j) * 3 * C + C + h * hs;
                    double dot = 0.0;
                    for (int d = 0; d < hs; d++) { dot += (double)q[d] * k[d]; }
                    scores[j] = dot / sqrt((double)hs) + (f->split && (i < split) != (j < split) ? f->gates[h] : 0.0);
                    maxs = fmax(maxs, scores[j]);
                }
                for (int j = 0; j < T; j++) { sum += exp(scores[j] - maxs); }
                lse[(size_t)(start + i) * NH + h] = (float)(maxs + log(sum));
            }
        }
    }
    free(scores);
    return lse;
}

// the bounds of the section's top, per entry of out (N, C) and dqkv (N, 3*C), and the known
// shifts of dqkv and the gates' gradient (NH); P and dS (A): the reference's, out_got: the
// fused forward's stored out
struct FlashBounds {
    double *out, *dqkv, *dqkv_shift, *dgates_shift;
};
static FlashBounds flash_bounds(const FlashCase* f, const float* P, const float* dS, const float* out_ref,
                                const float* out_got) {
    int C = f->C, NH = f->NH, hs = C / NH, N = f->N;
    const double r = BF16_ROUNDING;
    double scale = 1.0 / sqrt((double)hs);
    FlashBounds b;
    size_t sizes[4] = {(size_t)N * C, (size_t)N * 3 * C, (size_t)N * 3 * C, (size_t)NH};
    double** bound[4] = {&b.out, &b.dqkv, &b.dqkv_shift, &b.dgates_shift};
    for (int k = 0; k < 4; k++) {
        *bound[k] = (double*)mallocCheck(sizes[k] * sizeof(double));
        memset(*bound[k], 0, sizes[k] * sizeof(double));
    }
    double *shift = b.dqkv_shift, *gate_shift = b.dgates_shift;
    double* dD = (double*)mallocCheck((size_t)f->max_T * sizeof(double));
    for (int s = 0; s < f->S; s++) {
        int start = f->seq_starts[s], T = f->seq_starts[s + 1] - start, split = f->split_at[s];
        for (int h = 0; h < NH; h++) {
            const float* p = P + f->att_offsets[s] + (size_t)h * T * T;
            const float* ds = dS + f->att_offsets[s] + (size_t)h * T * T;
            // x (token t, part 0 q, 1 k, 2 v, column d) of the head
            auto x = [&](int t, int part, int d) { return (double)f->qkv.ref[(size_t)(start + t) * 3 * C + part * C + h * hs + d]; };
            auto dy = [&](int t, int d) { return (double)f->dout.ref[(size_t)(start + t) * C + h * hs + d]; };
            for (int i = 0; i < T; i++) {
                size_t at = (size_t)(start + i) * C + h * hs;
                dD[i] = 0.0;
                for (int d = 0; d < hs; d++) { dD[i] += dy(i, d) * ((double)out_got[at + d] - out_ref[at + d]); }
                for (int d = 0; d < hs; d++) {
                    for (int j = 0; j < T; j++) { b.out[at + d] += r * p[(size_t)i * T + j] * fabs(x(j, 2, d)); }
                }
            }
            for (int i = 0; i < T; i++) {
                size_t row = (size_t)(start + i) * 3 * C + h * hs;
                for (int j = 0; j < T; j++) {
                    size_t key = (size_t)(start + j) * 3 * C + h * hs;
                    double pij = p[(size_t)i * T + j];
                    double moved = -pij * dD[i];  // dS's move
                    double rounded = r * (fabs(ds[(size_t)i * T + j]) + pij * fabs(dD[i]));  // its rounding
                    for (int d = 0; d < hs; d++) {
                        shift[row + d] += scale * moved * x(j, 1, d);                       // dq
                        b.dqkv[row + d] += scale * rounded * fabs(x(j, 1, d));
                        shift[key + C + d] += scale * moved * x(i, 0, d);                   // dk
                        b.dqkv[key + C + d] += scale * rounded * fabs(x(i, 0, d));
                        b.dqkv[key + 2 * C + d] += r * pij * fabs(dy(i, d));                 // dv
                    }
                    if (f->split && (i < split) != (j < split)) { gate_shift[h] += moved; }
                }
            }
        }
    }
    free(dD);
    return b;
}

static void free_flash_bounds(FlashBounds* b) {
    free(b->out); free(b->dqkv); free(b->dqkv_shift); free(b->dgates_shift);
}

// got's outputs against want's (lse where want has it) moved by b's shifts, within b's bounds
// and the stores' rounding allowance `rounding`
static void expect_flash_outputs(const char* what, const FlashCase* f, const FlashOutputs* got,
                                 const FlashOutputs* want, const FlashBounds* b, double rounding) {
    int N = f->N, C = f->C, NH = f->NH, hs = C / NH, max_T = f->max_T;
    size_t NC = (size_t)N * C;
    char name[96];
    const char* packing = f->split ? " (split)" : "";
    snprintf(name, sizeof(name), "flash out %s%s", what, packing);
    expect_flash(name, C, got->out, want->out, NULL, b->out, NC, hs + 2 * max_T, rounding);
    if (want->lse != NULL) {
        snprintf(name, sizeof(name), "flash lse %s%s", what, packing);
        expect_flash(name, C, got->lse, want->lse, NULL, NULL, (size_t)N * NH, hs + max_T, 0.0);
    }
    snprintf(name, sizeof(name), "flash dqkv %s%s", what, packing);
    expect_flash(name, C, got->dqkv, want->dqkv, b->dqkv_shift, b->dqkv, 3 * NC, hs + 2 * max_T, rounding);
    if (f->split) {
        snprintf(name, sizeof(name), "flash dgates %s", what);
        expect_flash(name, C, got->dgates, want->dgates, b->dgates_shift, NULL, (size_t)NH, hs + max_T, 0.0);
    }
}

static void test_flash_attention(int C, int NH, int split) {
    FlashCase f;
    f.S = FLASH_SEQS, f.C = C, f.NH = NH, f.split = split, f.max_T = 0;
    int S = f.S, hs = C / NH;
    f.seq_starts[0] = 0;
    f.att_offsets[0] = 0;
    for (int s = 0; s < S; s++) {
        int T = FLASH_LENGTHS[s];
        f.seq_starts[s + 1] = f.seq_starts[s] + T;
        f.att_offsets[s + 1] = f.att_offsets[s] + NH * T * T;
        f.split_at[s] = split ? FLASH_SPLITS[s] : T;
        if (T > f.max_T) { f.max_T = T; }
    }
    int N = f.N = f.seq_starts[S], A = f.att_offsets[S];
    size_t NC = (size_t)N * C;
    f.d_seq_starts = device_from_ints(f.seq_starts, S + 1);
    f.d_split_at = device_from_ints(f.split_at, S);
    f.d_att_offsets = device_from_ints(f.att_offsets, S + 1);
    f.gates = split ? host_random(NH, -2.0f, 1.0f) : NULL;
    f.d_gates = split ? device_from(f.gates, NH) : NULL;
    f.dgates0 = host_random(NH, -1.0f, 1.0f);
    f.qkv = tensor_random<bf16>(3 * NC, -2.0f, 2.0f);
    f.dout = tensor_random<bf16>(NC, -1.0f, 1.0f);

    // model.c: the forward per (sequence, head), then the backward from its float probabilities;
    // the gates' gradient over the sequences in order, as bert_backward
    FlashOutputs ref = {(float*)mallocCheck(NC * sizeof(float)), flash_lse(&f), (float*)mallocCheck(3 * NC * sizeof(float)),
                        (float*)mallocCheck((size_t)NH * sizeof(float))};
    float* P = (float*)mallocCheck((size_t)A * sizeof(float));
    float* dS = (float*)mallocCheck((size_t)A * sizeof(float));
    for (int h = 0; h < NH; h++) {
        double sum = 0.0;
        for (int s = 0; s < S; s++) {
            int start = f.seq_starts[s], T = f.seq_starts[s + 1] - start;
            size_t head = (size_t)f.att_offsets[s] + (size_t)h * T * T;
            const float* qkv = f.qkv.ref + (size_t)start * 3 * C;
            attention_head_forward(ref.out + (size_t)start * C, P + head, qkv, T, h, C, NH, f.split_at[s],
                                   split ? f.gates[h] : 0.0f);
            sum += attention_head_backward(ref.dqkv + (size_t)start * 3 * C, dS + head, f.dout.ref + (size_t)start * C,
                                           qkv, P + head, T, h, C, NH, f.split_at[s]);
        }
        ref.dgates[h] = f.dgates0[h] + (float)sum;
    }

    // the simple kernels, floatX = float, on the same values
    float *d_out = device_poisoned(NC), *d_att = device_poisoned((size_t)A), *d_datt = device_poisoned((size_t)A);
    float *d_dqkv = device_poisoned(3 * NC), *d_dgates = device_from(f.dgates0, NH);
    double* d_dgate_rows;
    cudaCheck(cudaMalloc((void**)&d_dgate_rows, (size_t)N * NH * sizeof(double)));
    attention_forward_cuda(d_out, d_att, f.qkv.fp, f.d_seq_starts, f.d_att_offsets, f.d_split_at, f.d_gates, S, N,
                           f.max_T, C, NH, stream);
    attention_backward_cuda(d_dqkv, d_datt, split ? d_dgates : NULL, d_dgate_rows, f.dout.fp, f.qkv.fp, d_att,
                            f.d_seq_starts, f.d_att_offsets, f.d_split_at, S, N, f.max_T, C, NH, stream);
    FlashOutputs simple = {host_from(d_out, NC), NULL, host_from(d_dqkv, 3 * NC), host_from(d_dgates, NH)};

    // the fused attention's plain products (the emulable twin); a second run gives the same bytes
    FlashOutputs plain = flash_outputs<PlainProduct>(&f), again = flash_outputs<PlainProduct>(&f);
    CHECK(memcmp(plain.dqkv, again.dqkv, 3 * NC * sizeof(float)) == 0 &&
              memcmp(plain.dgates, again.dgates, (size_t)NH * sizeof(float)) == 0,
          "C=%d flash backward: two runs differ", C);
    FlashBounds bounds = flash_bounds(&f, P, dS, ref.out, plain.out);
    printf("  C=%-4d flash attention, head size %d%s: plain products\n", C, hs, split ? ", split packing" : "");
    expect_flash_outputs("vs model.c", &f, &plain, &ref, &bounds, BF16_ROUNDING);
    expect_flash_outputs("vs simple", &f, &plain, &simple, &bounds, BF16_ROUNDING);
#ifndef CUDA_EMULATOR
    // the tensor cores: against model.c (their own out in dD), and against the plain products
    FlashOutputs tc = flash_outputs<TensorCoreProduct>(&f);
    FlashBounds tc_bounds = flash_bounds(&f, P, dS, ref.out, tc.out);
    expect_flash_outputs("tensor cores vs model.c", &f, &tc, &ref, &tc_bounds, BF16_ROUNDING);
    // against the plain products: each side within its bounds of the reference, moved by its
    // own shift, and stored with its own rounding
    for (size_t i = 0; i < NC; i++) { tc_bounds.out[i] += bounds.out[i]; }
    for (size_t i = 0; i < 3 * NC; i++) {
        tc_bounds.dqkv[i] += bounds.dqkv[i];
        tc_bounds.dqkv_shift[i] -= bounds.dqkv_shift[i];
    }
    for (int h = 0; h < NH; h++) { tc_bounds.dgates_shift[h] -= bounds.dgates_shift[h]; }
    expect_flash_outputs("tensor cores vs plain", &f, &tc, &plain, &tc_bounds, 2.0 * BF16_ROUNDING);
    free_flash_outputs(&tc);
    free_flash_bounds(&tc_bounds);
#endif

    free_flash_outputs(&plain); free_flash_outputs(&again); free_flash_outputs(&simple);
    free(ref.out); free(ref.lse); free(ref.dqkv); free(ref.dgates);
    free(P); free(dS); free(f.gates); free(f.dgates0);
    free_flash_bounds(&bounds);
    tensor_free(&f.qkv); tensor_free(&f.dout);
    cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_att)); cudaCheck(cudaFree(d_datt));
    cudaCheck(cudaFree(d_dqkv)); cudaCheck(cudaFree(d_dgates)); cudaCheck(cudaFree(d_dgate_rows));
    cudaCheck(cudaFree(f.d_seq_starts)); cudaCheck(cudaFree(f.d_split_at)); cudaCheck(cudaFree(f.d_att_offsets));
    cudaCheck(cudaFree(f.d_gates));
}

// The heads on bf16 hidden states (test_cuda's tolerances). The [CLS] rows: an exact copy
// (K = 1); tanh over N C entries and its backward from the stored (bf16) output, no sums (K =
// 1; 1 - y^2 or tanh's input rounded to bf16 first fails them, two roundings); the means, float
// sums over a sequence's or a segment's tokens kept in float (K = max_T; summed in bf16 they
// fail), the cosine and its backward computed from those float means exactly as in the fp32
// backend (K = max_T, as test_cuda), and the gradients added into bf16 hidden-state gradients
// (each a float addition rounded once; K = 1 from the same values, max_T after the cosine's
// backward). Each backward accumulates into its own random dhidden, so that each bf16 entry is
// one rounding of its twin's. maxsim (test_cuda's layouts and planted cases, the tie exact in
// bf16 too: a copy) computes its cosines in double from the bf16 values read as floats, the same
// doubles as model.c's from the same values, rounded to float once: the logits, float, K = 1;
// its gradient terms added in float in model.c's order and the sum rounded to bf16 once, K = 1
static void test_pooler(const Batch* b, int C) {
    int N = b->N, S = b->S;
    size_t NC = (size_t)N * C, SC = (size_t)S * C, S2C = (size_t)S * 2 * C;
    Tensor<bf16> hidden = tensor_random<bf16>(NC, -2.0f, 2.0f), cls = tensor_output<bf16>(SC);
    cls_gather_forward(cls.ref, hidden.ref, b->seq_starts, S, C);
    cls_gather_forward_cuda(cls.bf, hidden.bf, b->d_seq_starts, S, C, stream);
    cls_gather_forward_cuda(cls.fp, hidden.fp, b->d_seq_starts, S, C, stream);
    expect_tensor("cls_gather_forward", C, &cls, 1);
    Tensor<bf16> dcls = tensor_random<bf16>(SC, -1.0f, 1.0f), dhidden = tensor_random<bf16>(NC, -1.0f, 1.0f);
    cls_gather_backward(dhidden.ref, dcls.ref, b->seq_starts, S, C);
    cls_gather_backward_cuda(dhidden.bf, dcls.bf, b->d_seq_starts, S, C, stream);
    cls_gather_backward_cuda(dhidden.fp, dcls.fp, b->d_seq_starts, S, C, stream);
    expect_tensor("cls_gather_backward", C, &dhidden, 1);

    Tensor<bf16> th = tensor_output<bf16>(NC), dth = tensor_random<bf16>(NC, -1.0f, 1.0f);
    tanh_forward(th.ref, hidden.ref, NC);
    tanh_forward_cuda(th.bf, hidden.bf, NC, stream);
    tanh_forward_cuda(th.fp, hidden.fp, NC, stream);
    expect_tensor("tanh_forward", C, &th, 1);
    for (size_t i = 0; i < NC; i++) { th.ref[i] = to_float(from_float<bf16>(th.ref[i])); }  // as the forward stored it
    cudaCheck(cudaMemcpy(th.fp, th.ref, NC * sizeof(float), cudaMemcpyHostToDevice));
    tanh_backward_inplace(dth.ref, th.ref, NC);
    tanh_backward_inplace_cuda(dth.bf, th.bf, NC, stream);
    tanh_backward_inplace_cuda(dth.fp, th.fp, NC, stream);
    expect_tensor("tanh_backward", C, &dth, 1);

    Tensor<float> emb = tensor_output<float>(SC), demb = tensor_random<float>(SC, -1.0f, 1.0f);
    meanpool_forward(emb.ref, hidden.ref, b->seq_starts, S, C);
    meanpool_forward_cuda(emb.bf, hidden.bf, b->d_seq_starts, S, C, stream);
    meanpool_forward_cuda(emb.fp, hidden.fp, b->d_seq_starts, S, C, stream);
    expect_tensor("meanpool_forward", C, &emb, b->max_T);
    Tensor<bf16> dhidden_mean = tensor_random<bf16>(NC, -1.0f, 1.0f);
    meanpool_backward(dhidden_mean.ref, demb.ref, b->seq_starts, S, C);
    meanpool_backward_cuda(dhidden_mean.bf, demb.bf, b->d_seq_starts, S, N, C, stream);
    meanpool_backward_cuda(dhidden_mean.fp, demb.fp, b->d_seq_starts, S, N, C, stream);
    expect_tensor("meanpool_backward", C, &dhidden_mean, 1);

    // the cosine head, over a pair's types (test_cuda's) and, as the split packing, whole segments
    int* pair_types = (int*)mallocCheck((size_t)N * sizeof(int));
    for (int q = 0; q < S; q++) {
        int a = b->seq_starts[q], T = b->seq_starts[q + 1] - a;
        for (int t = 0; t < T; t++) { pair_types[a + t] = T > 1 && t > T / 3 ? 1 : 0; }
    }
    int* d_pair_types = device_from_ints(pair_types, N);
    for (int whole = 0; whole <= 1; whole++) {
        Tensor<float> segmeans = tensor_output<float>(S2C), logits = tensor_output<float>((size_t)S);
        Tensor<float> dlogits = tensor_random<float>((size_t)S, -1.0f, 1.0f), dsegmeans = tensor_output<float>(S2C);
        Tensor<bf16> dh = tensor_random<bf16>(NC, -1.0f, 1.0f);
        segment_means_forward(segmeans.ref, hidden.ref, pair_types, b->seq_starts, S, C, whole);
        cosine_score_forward(logits.ref, segmeans.ref, S, C, SCORE_HEAD_COSINE_SCALE);
        cosine_score_backward(dsegmeans.ref, dlogits.ref, segmeans.ref, S, C, SCORE_HEAD_COSINE_SCALE);
        segment_means_backward(dh.ref, dsegmeans.ref, pair_types, b->seq_starts, S, C, whole);
        // the bf16 hidden states, then the fp32 twins; the cosine kernels are float in both
        segment_means_forward_cuda(segmeans.bf, hidden.bf, d_pair_types, b->d_seq_starts, S, C, whole, stream);
        segment_means_forward_cuda(segmeans.fp, hidden.fp, d_pair_types, b->d_seq_starts, S, C, whole, stream);
        Tensor<float>* sides[] = {&segmeans, &logits, &dlogits, &dsegmeans};
        for (int fp = 0; fp <= 1; fp++) {
            float* x[4];
            for (int k = 0; k < 4; k++) { x[k] = fp ? sides[k]->fp : sides[k]->bf; }
            cosine_score_forward_cuda(x[1], x[0], S, C, SCORE_HEAD_COSINE_SCALE, stream);
            cosine_score_backward_cuda(x[3], x[2], x[0], S, C, SCORE_HEAD_COSINE_SCALE, stream);
        }
        segment_means_backward_cuda(dh.bf, dsegmeans.bf, d_pair_types, b->d_seq_starts, S, C, whole, stream);
        segment_means_backward_cuda(dh.fp, dsegmeans.fp, d_pair_types, b->d_seq_starts, S, C, whole, stream);
        expect_tensor(whole ? "segment_means_forward whole" : "segment_means_forward", C, &segmeans, b->max_T);
        expect_tensor(whole ? "cosine_score_forward whole" : "cosine_score_forward", C, &logits, b->max_T);
        expect_tensor(whole ? "cosine_score_backward whole" : "cosine_score_backward", C, &dsegmeans, b->max_T);
        expect_tensor(whole ? "segment_means_backward whole" : "segment_means_backward", C, &dh, b->max_T);
        for (Tensor<float>* t : sides) { tensor_free(t); }
        tensor_free(&dh);
    }

    // maxsim: plant_maxsim_cases' values rounded to bf16, the same on every side
    float* planted = (float*)mallocCheck(NC * sizeof(float));
    memcpy(planted, hidden.ref, NC * sizeof(float));
    plant_maxsim_cases(planted, C);
    for (size_t i = 0; i < NC; i++) { planted[i] = to_float(from_float<bf16>(planted[i])); }
    Tensor<bf16> ms_hidden = {NC, planted, device_as<bf16>(planted, NC), device_from(planted, NC)};
    int* split_types = pair_types_split_at(b, SPLIT_POINTS);
    for (int layout = 0; layout < 2; layout++) {
        const int* types = layout == 0 ? pair_types : split_types;
        int* d_types = device_from_ints(types, N);
        Tensor<float> logits = tensor_random<float>((size_t)S, -1.0f, 1.0f);
        Tensor<float> dlogits = tensor_random<float>((size_t)S, -1.0f, 1.0f);
        Tensor<bf16> dh = tensor_random<bf16>(NC, -1.0f, 1.0f);
        maxsim_score_forward(logits.ref, ms_hidden.ref, types, b->seq_starts, S, C, SCORE_HEAD_COSINE_SCALE);
        maxsim_score_backward(dh.ref, dlogits.ref, ms_hidden.ref, types, b->seq_starts, S, C, SCORE_HEAD_COSINE_SCALE);
        maxsim_score_forward_cuda(logits.bf, ms_hidden.bf, d_types, b->d_seq_starts, S, b->max_T, C,
                                  SCORE_HEAD_COSINE_SCALE, stream);
        maxsim_score_forward_cuda(logits.fp, ms_hidden.fp, d_types, b->d_seq_starts, S, b->max_T, C,
                                  SCORE_HEAD_COSINE_SCALE, stream);
        maxsim_score_backward_cuda(dh.bf, dlogits.bf, ms_hidden.bf, d_types, b->d_seq_starts, S, b->max_T, C,
                                   SCORE_HEAD_COSINE_SCALE, stream);
        maxsim_score_backward_cuda(dh.fp, dlogits.fp, ms_hidden.fp, d_types, b->d_seq_starts, S, b->max_T, C,
                                   SCORE_HEAD_COSINE_SCALE, stream);
        expect_tensor(layout == 0 ? "maxsim_score_forward" : "maxsim_score_forward split", C, &logits, 1);
        expect_tensor(layout == 0 ? "maxsim_score_backward" : "maxsim_score_backward split", C, &dh, 1);
        tensor_free(&logits); tensor_free(&dlogits); tensor_free(&dh);
        cudaCheck(cudaFree(d_types));
    }

    Tensor<bf16>* bf16s[] = {&hidden, &cls, &dcls, &dhidden, &th, &dth, &dhidden_mean, &ms_hidden};
    for (Tensor<bf16>* t : bf16s) { tensor_free(t); }
    tensor_free(&emb); tensor_free(&demb);
    free(pair_types); free(split_types);
    cudaCheck(cudaFree(d_pair_types));
}

// ---- AdamW: the fp32 master, fp32 m and v, the bf16 copy ----

// two steps over a model's flat buffer (its tensors, weight decay where parameter_tensor_decays
// says) from a random master (all of float's bits) and fp32 gradients
static void test_adamw(int C, int NH) {
    BertModel model;
    random_model(&model, C, NH);
    size_t n = model.num_parameters;
    int decays[NUM_PARAMETER_TENSORS];
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { decays[i] = parameter_tensor_decays(i); }
    float* d_grads = device_from(model.grads_memory, n);
    // the master (bf: the bf16 backend's, fp: the fp32 backend's weights); m and v from zeros
    Tensor<float> master = {n, model.params_memory, device_from(model.params_memory, n),
                            device_from(model.params_memory, n)};
    Tensor<float> m = {n, NULL, NULL, NULL}, v = {n, NULL, NULL, NULL};
    Tensor<float>* moments[] = {&m, &v};
    for (Tensor<float>* t : moments) {
        cudaCheck(cudaMalloc((void**)&t->bf, n * sizeof(float)));
        cudaCheck(cudaMalloc((void**)&t->fp, n * sizeof(float)));
        cudaCheck(cudaMemset(t->bf, 0, n * sizeof(float)));
        cudaCheck(cudaMemset(t->fp, 0, n * sizeof(float)));
    }
    bf16* d_params;  // the copy, written by the step
    cudaCheck(cudaMalloc((void**)&d_params, n * sizeof(bf16)));
    cudaCheck(cudaMemset(d_params, 0xFF, n * sizeof(bf16)));
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
    for (int step = 1; step <= 2; step++) {
        adamw_update_cuda(master.bf, d_params, m.bf, v.bf, d_grads, model.param_sizes, decays, NUM_PARAMETER_TENSORS,
                          lr, beta1, beta2, eps, weight_decay, step, stream);
        adamw_update_cuda(master.fp, m.fp, v.fp, d_grads, model.param_sizes, decays, NUM_PARAMETER_TENSORS, lr, beta1,
                          beta2, eps, weight_decay, step, stream);
        bert_adamw_update(&model, lr, beta1, beta2, eps, weight_decay, step);
    }
    m.ref = model.m_memory;
    v.ref = model.v_memory;
    // the same expressions as the reference: K = 1. The update applied to the bf16 copy
    // instead of the master fails master (2^-9 of a weight against an fp32 bound of 4e-6);
    // m or v kept in bf16 fail m or v
    expect_tensor("adamw master", C, &master, 1);
    expect_tensor("adamw m", C, &m, 1);
    expect_tensor("adamw v", C, &v, 1);
    // the copy: against the reference's master within a rounding, and, to the bit, the device
    // master rounded to nearest even
    Tensor<bf16> copy = {n, model.params_memory, d_params, master.bf};
    expect_tensor("adamw params", C, &copy, 1);
    cudaCheck(cudaFree(d_grads));
    cudaCheck(cudaFree(d_params));
    Tensor<float>* device_side[] = {&master, &m, &v};
    for (Tensor<float>* t : device_side) {
        cudaCheck(cudaFree(t->bf));
        cudaCheck(cudaFree(t->fp));
    }
    bert_free(&model);
}

// Updates under half a bf16 ulp: weights at 1 with a constant gradient, each step moving the
// master by lr = 2^-12 (Adam's normalised step), a quarter of the half ulp 2^-9 below 1 that
// rounding to nearest drops: a bf16 weight updated by itself would stay at 1 forever. The
// master keeps them, and its copy follows it: after 20 steps the master is near 1 - 20 2^-12
// and the copy 1 - 2^-8, the nearest bf16; at every step the copy is the master rounded
static void test_adamw_small_updates(void) {
    const size_t n = 64, sizes[1] = {n};
    const int decays[1] = {0};
    const float lr = 1.0f / 4096.0f;
    float* ones = (float*)mallocCheck(n * sizeof(float));
    for (size_t i = 0; i < n; i++) { ones[i] = 1.0f; }
    float *d_master = device_from(ones, n), *d_grads = device_from(ones, n), *d_m, *d_v;
    cudaCheck(cudaMalloc((void**)&d_m, n * sizeof(float)));
    cudaCheck(cudaMalloc((void**)&d_v, n * sizeof(float)));
    cudaCheck(cudaMemset(d_m, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_v, 0, n * sizeof(float)));
    bf16* d_params;
    cudaCheck(cudaMalloc((void**)&d_params, n * sizeof(bf16)));
    bf16* copy = (bf16*)mallocCheck(n * sizeof(bf16));
    float previous = 1.0f, master = 1.0f;
    int off_copy = 0, large_steps = 0;
    for (int step = 1; step <= 20; step++) {
        adamw_update_cuda(d_master, d_params, d_m, d_v, d_grads, sizes, decays, 1, lr, 0.9f, 0.999f, 1e-8f, 0.0f, step,
                          stream);
        cudaCheck(cudaStreamSynchronize(stream));
        cudaCheck(cudaMemcpy(&master, d_master, sizeof(float), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(copy, d_params, n * sizeof(bf16), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) { off_copy += bits_of(copy[i]) != bits_of(from_float<bf16>(master)); }
        large_steps += !(previous - master < 0.5f / 256.0f);
        previous = master;
    }
    float moved = to_float(copy[0]);
    printf("  %-35s master %.7f, its bf16 copy %.7f after 20 steps of ~2^-12\n", "adamw small updates", master, moved);
    CHECK(off_copy == 0 && large_steps == 0,
          "adamw small updates: %d copies not the master rounded, %d steps of half a bf16 ulp or more", off_copy,
          large_steps);
    CHECK(moved == 1.0f - 1.0f / 256.0f && to_float(from_float<bf16>(1.0f - lr)) == 1.0f,
          "adamw small updates: the copy is %.9g after 20 steps, want 1 - 2^-8", moved);
    free(ones);
    free(copy);
    float* device_buffers[] = {d_master, d_grads, d_m, d_v};
    for (float* d : device_buffers) { cudaCheck(cudaFree(d)); }
    cudaCheck(cudaFree(d_params));
}

int main(int argc, char** argv) {
    seed_from_args("test_cuda_bf16", argc, argv);
    cudaCheck(cudaStreamCreate(&stream));
    matmul_setup();
    test_rounding();
    test_matmul<float>();
    test_matmul<bf16>();
    for (int k = 0; k < NUM_SHAPES; k++) {
        int C = HIDDEN_SIZES[k], NH = NUM_HEADS[k];
        Batch b = make_batch(NH);
        test_embeddings(&b, C);
        test_layernorm(&b, C);
        test_gelu(&b, C);
        test_bias(&b, C);
        // the qkv layer; the fc layer, whose bias gradient comes with GELU's backward (NULL
        // here); the classifier, one output column over the sequences' [CLS] rows
        test_linear("qkv", C, b.N, C, 3 * C, 1);
        test_linear("fc", C, b.N, C, 4 * C, 0);
        test_linear("classifier", C, b.S, C, 1, 1);
        test_attention(&b, C, NH, 0);
        test_attention(&b, C, NH, 1);
        test_pooler(&b, C);
        free_batch(&b);
    }
    for (int split = 0; split <= 1; split++) {
        test_flash_attention(128, 2, split);  // head size 64 (BERT's)
        test_flash_attention(64, 2, split);   // head size 32 (MiniLM's)
    }
    test_adamw(128, 2);
    test_adamw_small_updates();
    matmul_teardown();
    cudaCheck(cudaStreamDestroy(stream));
    printf("worst error over all checks (beyond the bf16 rounding): %.2e\n", worst_error_seen);
    return test_summary("test_cuda_bf16");
}
