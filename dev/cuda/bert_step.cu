/*
 * dev/cuda/bert_step.cu — a whole training step of kernels/model_cuda.cu (forward, backward
 * from random derivatives of the scores, gradient clip, AdamW) timed at MiniLM-L6 and
 * BERT-base shapes on 8 packed sequences of 512 tokens, and at MiniLM-L6's on 32 packed
 * sequences of mixed lengths (32 to 503 tokens), at fp32 and bf16, for dev/gpu_check.sh to hold
 * beside transformers' BertForSequenceClassification (dev/bench_hf_step.py, which pads the
 * mixed batch). It first checks a small 2-layer step at each precision against model.c
 * (check_step).
 * Prints one line per model: "bert_step <name> ms=<per step> tokens_per_s=<...>", and the device
 * memory of each model's step; first, from the sizes alone (so under the emulator too), the
 * device memory of BERT-base's step on 64 sequences of 512 tokens (issue 15: it must fit an 80 GB
 * card) and the most such sequences that fit one.
 */
#include "model.h"
#include "kernels/model_cuda.cu"
#include "dev/cuda/common.h"
#include "dev/cuda/bert_common.h"

static void print_memory(const char* what, const DeviceMemory* memory) {
    char line[256];
    device_memory_describe(line, sizeof(line), memory);
    printf("bert_step device memory of %s: %s\n", what, line);
}

// BERT-base's training step on S packed sequences of 512 tokens, from the sizes the backend
// allocates (nothing is allocated)
static DeviceMemory bert_base_memory(size_t S, Precision precision) {
    BertConfig config = bert_config(12, 768, 30522);
    size_t T = 512;
    return bert_cuda_training_memory(&config, PACKING_JOINT, precision, S * T, S, (size_t)config.num_heads * S * T * T);
}

// the issue's target, and the most sequences of 512 tokens whose step fits 80 GB: 80e9 bytes, a
// few GB under what an 80 GB card reports (81,559 MiB and more), which leaves the CUDA context
// and cuBLAS's workspace their few hundred MB
static void print_bert_base_at_512(Precision precision) {
    DeviceMemory at_64 = bert_base_memory(64, precision);
    char what[96];
    snprintf(what, sizeof(what), "bert-base %s, 64 sequences of 512 tokens, from the sizes", precision_name(precision));
    print_memory(what, &at_64);
    const double card = 80e9;
    size_t most = 0;
    for (;;) {
        DeviceMemory next = bert_base_memory(most + 1, precision);
        if ((double)device_memory_total(&next) > card) { break; }
        most++;
    }
    printf("bert_step bert-base %s at 512 tokens: 64 sequences take %.1f GB; 80 GB holds up to %zu\n",
           precision_name(precision), device_memory_total(&at_64) / 1e9, most);
}

// ||got - want|| / ||want|| over n values (two-norm), printed and checked against tol; exits 1
// past it (a NaN included)
static void validate_normwise(const float* got, const float* want, size_t n, const char* name, double tol) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        diff += d * d;
        norm += (double)want[i] * want[i];
    }
    double err = sqrt(diff / (norm > 0.0 ? norm : 1.0));
    int ok = err <= tol;
    printf("  %-10s relative error %.2e (tolerance %.2e) %s\n", name, err, tol, ok ? "OK" : "FAIL");
    if (!ok) { exit(EXIT_FAILURE); }
}

// one training step of a 2-layer model at C=384 on the small batch, on both sides: the outputs,
// the gradient norm and the outputs after the update against model.c's (test/test_cuda.cu and
// test_cuda_bf16_model check every tensor; this is enough to know the timed code is right).
// fp32: test_cuda's bound per entry. bf16: the CPU holds the device's bf16-rounded weights, and
// each figure is held normwise to test_cuda_bf16_model's 4 x 2^-8 x sqrt(R), R the bf16
// roundings on its chain: 22 for the forward of 2 layers, 22 + 48 for the gradient norm (the
// backward's 2 + 10 L + 2, and the fused attention's dS, one a layer)
static void check_step(Precision precision, int* ids, int* types, const int* seq_starts, int S, int max_T,
                       const float* dlogits) {
    BertConfig config = bert_config(2, 384, 1000);
    BertModel cpu;
    BertModelCuda gpu;
    build_pair(&cpu, &gpu, &config, precision);
    int bf16 = precision == PRECISION_BF16;
    if (bf16) {
        for (size_t i = 0; i < cpu.num_parameters; i++) {
            cpu.params_memory[i] = __bfloat162float(__float2bfloat16_rn(cpu.params_memory[i]));
        }
        bert_cuda_upload_parameters(&gpu, cpu.params_memory);
    }
    random_batch(ids, types, seq_starts, S, config.vocab_size);
    printf("bert_step check %s: 2 layers, C=384, N=%d S=%d\n", precision_name(precision), seq_starts[S], S);
    // fp32: each embedding entry behind 2 layers of sums over 4C and the sequence, then the
    // mean over T; the norm sums every gradient, each behind the whole backward chain
    double K = 2.0 * (4 * 384 + max_T) + max_T;
    const double u = 0.00390625;  // 2^-8
    double forward_tol = bf16 ? 4.0 * u * sqrt(22.0) : tolerance(K);
    double backward_tol = bf16 ? 4.0 * u * sqrt(22.0 + 48.0) : tolerance(4 * K);
    void (*validate)(const float*, const float*, size_t, const char*, double) = bf16 ? validate_normwise : validate_host;
    size_t SC = (size_t)S * 384;
    bert_forward(&cpu, ids, types, seq_starts, S);
    bert_cuda_forward(&gpu, ids, types, seq_starts, S);
    validate(gpu.embeddings, cpu.embeddings, SC, "embeddings", forward_tol);
    bert_zero_grad(&cpu);
    bert_cuda_zero_grad(&gpu);
    bert_backward(&cpu, dlogits, NULL);
    bert_cuda_backward(&gpu, dlogits, NULL);
    float norm = bert_clip_grad_norm(&cpu, 1.0f), gpu_norm = bert_cuda_clip_grad_norm(&gpu, 1.0f);
    validate(&gpu_norm, &norm, 1, "grad norm", backward_tol);
    bert_adamw_update(&cpu, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    bert_cuda_adamw_update(&gpu, 1e-4f, 1.0f, 1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    // the parameters themselves are no fair test: Adam moves each by about lr whatever its
    // gradient's size, so a tiny gradient's rounding flips its step; the next forward pass
    // is (a missing or wrong update moves it by far more than this tolerance). Under bf16 the
    // two sides' weights now differ by the copy's rounding of the new master: one more a weight
    bert_forward(&cpu, ids, types, seq_starts, S);
    bert_cuda_forward(&gpu, ids, types, seq_starts, S);
    validate(gpu.embeddings, cpu.embeddings, SC, "after step", bf16 ? 4.0 * u * sqrt(23.0) : tolerance(4 * K));
    bert_cuda_free(&gpu);
    bert_free(&cpu);
}

// the card's dense bf16 tensor-core peak in TFLOP/s, for the bf16 step's MFU: SMs x clock x the
// bf16 flops an SM's tensor cores do per clock without sparsity (4,096 on sm_90, H100 and H200;
// 2,048 on sm_80, A100); 0 where the architecture is not one of those or under the emulator.
// The clock is the attribute's, the boost clock (1,980 MHz on an H100 SXM, which puts its peak
// at 1,070 TFLOP/s where NVIDIA's sheet says 989 at 1,830 MHz): the MFU is the lower for it
static double bf16_peak_tflops(void) {
#ifdef CUDA_EMULATOR
    return 0.0;
#else
    int dev, sm_khz = 0, sms = 0, major = 0, minor = 0;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, dev));
    cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaCheck(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    cudaCheck(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    int per_clock = major == 9 && minor == 0 ? 4096 : major == 8 && minor == 0 ? 2048 : 0;
    return (double)sms * sm_khz * 1e3 * per_clock / 1e12;
#endif
}

// the mixed batch: MIXED_S sequences of 32 + (157 i mod 481) tokens, i = 0, 1, ..., from 32 to
// 503 (9,151 tokens; padded to the longest, 16,096); dev/bench_hf_step.py draws the same lengths
#define MIXED_S 32
static void mixed_batch(int* seq_starts) {
    seq_starts[0] = 0;
    for (int i = 0; i < MIXED_S; i++) { seq_starts[i + 1] = seq_starts[i] + 32 + (157 * i) % 481; }
}

// times training steps of a model of the config on the packed batch (S sequences, seq_starts on
// the host) and prints its line: ms a step, tokens/s (the batch's tokens, no padding), TFLOP/s,
// and the device memory the step took
static void time_step(const char* what, const BertConfig* config, Precision precision, const int* seq_starts, int S,
                      const float* dlogits) {
    int N = seq_starts[S];
    int* ids = (int*)mallocCheck((size_t)N * sizeof(int));
    int* types = (int*)mallocCheck((size_t)N * sizeof(int));
    BertModel cpu;  // only for its random initialisation and parameter layout
    BertModelCuda gpu;
    build_pair(&cpu, &gpu, config, precision);
    random_batch(ids, types, seq_starts, S, config->vocab_size);
    int step = 0;
    float ms = benchmark(10, [&] {
        bert_cuda_forward(&gpu, ids, types, seq_starts, S);
        bert_cuda_zero_grad(&gpu);
        bert_cuda_backward(&gpu, dlogits, NULL);
        bert_cuda_clip_grad_norm(&gpu, 1.0f);
        bert_cuda_adamw_update(&gpu, 1e-5f, 1.0f, 1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, ++step);
    });
    // flops of the step: 6 per weight per token in the layers' products, and attention's
    // 4 hs per (query, key) pair per head forward, twice that backward
    double C = config->hidden_size, pairs = 0;
    for (int s = 0; s < S; s++) {
        double T = seq_starts[s + 1] - seq_starts[s];
        pairs += T * T;
    }
    double flops = config->num_layers * (6.0 * N * 12 * C * C + 12.0 * C * pairs);
    char name[96];
    snprintf(name, sizeof(name), "%s %s", what, precision_name(precision));
    double tflops = flops / (ms * 1e-3) / 1e12, peak = bf16_peak_tflops();
    char mfu[64] = "";
    if (precision == PRECISION_BF16 && peak > 0.0) {
        snprintf(mfu, sizeof(mfu), " mfu=%.1f%% of %.0f", 100.0 * tflops / peak, peak);
    }
    printf("bert_step %s ms=%.2f tokens_per_s=%.0f tflops=%.2f%s (%zu parameters, %d tokens in %d sequences)\n", name,
           ms, N / (ms * 1e-3), tflops, mfu, cpu.num_parameters, N, S);
    DeviceMemory memory = bert_cuda_memory(&gpu);
    print_memory(name, &memory);
    bert_cuda_free(&gpu);
    bert_free(&cpu);
    free(ids);
    free(types);
}

int main(void) {
    print_bert_base_at_512(PRECISION_FP32);
    print_bert_base_at_512(PRECISION_BF16);
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    matmul_setup();
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T), S = bench_S;
    int* ids = (int*)malloc(N * sizeof(int));
    int* types = (int*)malloc(N * sizeof(int));
    float* dlogits = make_random(S, 1.0f);

    // the check: a 2-layer model at C=384 (head size 32: under bf16 the fused attention), one
    // step on both sides at each precision
    check_step(PRECISION_FP32, ids, types, seq_starts, S, max_T, dlogits);
    check_step(PRECISION_BF16, ids, types, seq_starts, S, max_T, dlogits);

    if (small_shapes()) {
        printf("bert_step: results match; timing skipped in small shapes\n");
        matmul_teardown();
        free(ids); free(types); free(dlogits);
        return 0;
    }
    const char* names[2] = {"minilm-l6", "bert-base"};
    const int layers[2] = {6, 12}, widths[2] = {384, 768};
    const Precision precisions[2] = {PRECISION_FP32, PRECISION_BF16};
    for (int run = 0; run < 4; run++) {
        BertConfig config = bert_config(layers[run / 2], widths[run / 2], 30522);
        time_step(names[run / 2], &config, precisions[run % 2], seq_starts, S, dlogits);
    }
    // MiniLM-L6 on sequences of mixed lengths, packed: what the packing saves against a peer
    // that pads every sequence to the batch's longest (dev/bench_hf_step.py's "mixed" line)
    int mixed_starts[MIXED_S + 1];
    mixed_batch(mixed_starts);
    float* mixed_dlogits = make_random(MIXED_S, 1.0f);
    for (Precision precision : precisions) {
        BertConfig config = bert_config(6, 384, 30522);
        time_step("minilm-l6 mixed", &config, precision, mixed_starts, MIXED_S, mixed_dlogits);
    }
    matmul_teardown();
    free(ids); free(types); free(dlogits); free(mixed_dlogits);
    return 0;
}
