/*
 * dev/cuda/matmul.cu — kernels/matmul.cuh's Linear layers (cuBLAS sgemm behind matmul_cuda,
 * fp32 without TF32; gemm.c under the emulator; the bias broadcast and column sums as
 * kernels) at the shapes of a BERT layer, against model.c linear_forward and
 * linear_backward, then timed in TFLOP/s against the fp32 non-tensor ceiling. Then the same
 * layers in bf16 (cuBLASLt on the tensor cores, fp32 sums; matmul_kernel1 under the emulator)
 * on the same values rounded to bf16, their TFLOP/s beside the fp32 figures (the percentage
 * still of the fp32 non-tensor ceiling, which the tensor cores pass).
 */
#include "model.h"
#include "kernels/matmul.cuh"
#include "dev/cuda/common.h"

// a result stored in float (n, on the device) against the float reference: the fp32 bound tol
static void validate_stored(const float* d_got, const float* want, size_t n, const char* name, double tol) {
    validate_result(d_got, want, n, name, tol);
}
// stored in bf16: one rounding, 2^-8 of the value, beyond the fp32 bound, so |got - want| /
// (|want| + rms) <= 2^-8 + tol
static void validate_stored(const bf16* d_got, const float* want, size_t n, const char* name, double tol) {
    float* d_float = device_floats(n);
    bf16_to_float_cuda(d_float, d_got, n, 0);
    cudaCheck(cudaDeviceSynchronize());
    validate_result(d_float, want, n, name, 1.0 / 256.0 + tol);
    cudaCheck(cudaFree(d_float));
}

// the layer on the device, forward and backward, against the reference's out, dinp, dweight and
// dbias (the gradients from the same starting values), then timed; floatX (float or bf16) the
// storage of out, inp, weight, bias, dout and dinp, the weight and bias gradients float
template <typename floatX>
static void check_and_time(const char* precision, floatX* d_out, floatX* d_dinp, float* d_dweight, float* d_dbias,
                           const floatX* d_inp, const floatX* d_weight, const floatX* d_bias, const floatX* d_dout,
                           const float* out, const float* dinp, const float* dweight, const float* dbias, int N,
                           int IC, int OC, double bandwidth, double tflops) {
    linear_forward_cuda(d_out, d_inp, d_weight, d_bias, N, IC, OC, 0);
    linear_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, N, IC, OC, 0);
    cudaCheck(cudaDeviceSynchronize());
    // each output a dot product of IC (forward), OC (dinp) or N (dweight, dbias) terms
    char name[4][32];
    const char* what[4] = {"out", "dinp", "dweight", "dbias"};
    for (int i = 0; i < 4; i++) { snprintf(name[i], sizeof(name[i]), "%s %s", what[i], precision); }
    validate_stored(d_out, out, (size_t)N * OC, name[0], tolerance(IC));
    validate_stored(d_dinp, dinp, (size_t)N * IC, name[1], tolerance(OC));
    validate_stored(d_dweight, dweight, (size_t)OC * IC, name[2], tolerance(N));
    validate_stored(d_dbias, dbias, OC, name[3], tolerance(N));

    double flops = 2.0 * N * IC * OC;
    char label[64];
    float ms = benchmark(20, [&] { linear_forward_cuda(d_out, d_inp, d_weight, d_bias, N, IC, OC, 0); });
    snprintf(label, sizeof(label), "linear_forward_cuda %s", precision);
    report_time(label, ms, 0, flops, bandwidth, tflops);
    ms = benchmark(20, [&] {
        linear_backward_cuda(d_dinp, d_dweight, d_dbias, d_dout, d_inp, d_weight, N, IC, OC, 0);
    });
    snprintf(label, sizeof(label), "linear_backward_cuda %s", precision);
    report_time(label, ms, 0, 2.0 * flops, bandwidth, tflops);
}

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    matmul_setup();
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T);
    for (int ci = 0; ci < NUM_BENCH_C; ci++) {
        int C = bench_C[ci];
        // qkv, attention projection, MLP up, MLP down
        const int shapes[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
        const char* names[4] = {"qkv", "attproj", "fc", "fcproj"};
        for (int k = 0; k < 4; k++) {
            int IC = shapes[k][0], OC = shapes[k][1];
            printf("linear %s N=%d C=%d OC=%d\n", names[k], N, IC, OC);
            float* inp = make_random((size_t)N * IC, 1.0f);
            float* weight = make_random((size_t)OC * IC, 0.05f);
            float* bias = make_random(OC, 0.1f);
            float* dout = make_random((size_t)N * OC, 1.0f);
            float* out = (float*)malloc((size_t)N * OC * sizeof(float));
            // gradients accumulate: both sides start from the same random values
            float* dinp = make_random((size_t)N * IC, 1.0f);
            float* dweight = make_random((size_t)OC * IC, 1.0f);
            float* dbias = make_random(OC, 1.0f);
            float* d_inp = (float*)to_device(inp, (size_t)N * IC * sizeof(float));
            float* d_weight = (float*)to_device(weight, (size_t)OC * IC * sizeof(float));
            float* d_bias = (float*)to_device(bias, OC * sizeof(float));
            float* d_dout = (float*)to_device(dout, (size_t)N * OC * sizeof(float));
            float* d_out = device_floats((size_t)N * OC);
            float* d_dinp = (float*)to_device(dinp, (size_t)N * IC * sizeof(float));
            float* d_dweight = (float*)to_device(dweight, (size_t)OC * IC * sizeof(float));
            float* d_dbias = (float*)to_device(dbias, OC * sizeof(float));
            linear_forward(out, inp, weight, bias, N, IC, OC);
            linear_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
            check_and_time("fp32", d_out, d_dinp, d_dweight, d_dbias, d_inp, d_weight, d_bias, d_dout, out, dinp,
                           dweight, dbias, N, IC, OC, bandwidth, tflops);

            // bf16: every input rounded, the gradients going on from the fp32 row's (dinp
            // rounded too, dweight and dbias float, uploaded again)
            bf16* b_inp = to_device_bf16(inp, (size_t)N * IC);
            bf16* b_weight = to_device_bf16(weight, (size_t)OC * IC);
            bf16* b_bias = to_device_bf16(bias, OC);
            bf16* b_dout = to_device_bf16(dout, (size_t)N * OC);
            bf16* b_dinp = to_device_bf16(dinp, (size_t)N * IC);
            bf16* b_out;
            cudaCheck(cudaMalloc((void**)&b_out, (size_t)N * OC * sizeof(bf16)));
            cudaCheck(cudaMemset(b_out, 0xFF, (size_t)N * OC * sizeof(bf16)));  // NaN: an entry missed shows
            cudaCheck(cudaMemcpy(d_dweight, dweight, (size_t)OC * IC * sizeof(float), cudaMemcpyHostToDevice));
            cudaCheck(cudaMemcpy(d_dbias, dbias, OC * sizeof(float), cudaMemcpyHostToDevice));
            linear_forward(out, inp, weight, bias, N, IC, OC);
            linear_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
            check_and_time("bf16", b_out, b_dinp, d_dweight, d_dbias, b_inp, b_weight, b_bias, b_dout, out, dinp,
                           dweight, dbias, N, IC, OC, bandwidth, tflops);
            bf16* bf16_buffers[] = {b_inp, b_weight, b_bias, b_dout, b_dinp, b_out};
            for (bf16* d : bf16_buffers) { cudaCheck(cudaFree(d)); }

            cudaCheck(cudaFree(d_inp)); cudaCheck(cudaFree(d_weight)); cudaCheck(cudaFree(d_bias));
            cudaCheck(cudaFree(d_dout)); cudaCheck(cudaFree(d_out)); cudaCheck(cudaFree(d_dinp));
            cudaCheck(cudaFree(d_dweight)); cudaCheck(cudaFree(d_dbias));
            free(inp); free(weight); free(bias); free(dout); free(out); free(dinp); free(dweight); free(dbias);
        }
    }
    matmul_teardown();
    printf("matmul: all results match\n");
    return 0;
}
