/*
 * dev/cuda/profile_step.cu — where the time of one training step of kernels/model_cuda.cu
 * goes, for a kernel developer: the step train_zelo makes (bert_cuda_forward, _zero_grad,
 * _backward from the scores' derivatives, _clip_grad_norm, _adamw_update) with every layer
 * launcher's call bracketed by cudaEvents on the model's stream. Prints per launcher its calls,
 * its ms in the step and its share of the step (events around the whole step), sorted by
 * share, and the rest: memsets and copies between launches, and the GPU idle while the host
 * prepares the batch (set_batch) or waits for results. A linear_* launcher is cuBLAS's product
 * with the bias kernel under fp32, one cuBLASLt call with the bias in its epilogue under bf16.
 * Each shape runs at both precisions: fp32 (attention.cuh's kernels) and bf16 (the fused
 * attention of flash_attention.cuh, head sizes 32 and 64).
 *
 * model_cuda.cu is not changed for this: the launchers it calls are renamed by macros before
 * it is included here (its kernel headers are included first, so their definitions keep
 * their names). A launcher added to model_cuda.cu without a macro here goes uncounted: its
 * time falls into the rest, which the printout names.
 *
 * Checked: the launchers' times sum to no more than the step's (the events nest in stream
 * order; a launcher timed twice or a bracket around the wrong work would break it), and the
 * shares with the rest sum to 100%. On a GPU: MiniLM-L6 and BERT-base shapes, 8 packed
 * sequences of 512 tokens (dev/cuda/common.h), the second step after one warm-up step (the
 * first allocates). Under the emulator (and DEV_CUDA_SMALL=1): 2 layers at C=384 on the small
 * batch, the emulator's clock (what the CPU spends emulating each kernel).
 */
#include <algorithm>
#include "model.h"
#include "kernels/model_cuda.h"
#include "kernels/common.cuh"
#include "kernels/embeddings.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/gelu.cuh"
#include "kernels/matmul.cuh"
#include "kernels/attention.cuh"
#include "kernels/flash_attention.cuh"
#include "kernels/pooler.cuh"
#include "kernels/adamw.cuh"
#include "kernels/global_norm.cuh"
#include "kernels/zelo_fit.cuh"

// ---- the timing of each launcher call ----

#define MAX_TIMED_CALLS 2048
typedef struct { const char* name; cudaEvent_t start, end; } TimedCall;
static TimedCall timed_calls[MAX_TIMED_CALLS];
static int num_timed_calls = 0;
static cudaStream_t profiled_stream;  // the model's: every launcher of the step runs on it

static void profile_begin(void) {
    if (num_timed_calls == MAX_TIMED_CALLS) { die("profile_step: more than %d launches in a step", MAX_TIMED_CALLS); }
    cudaCheck(cudaEventRecord(timed_calls[num_timed_calls].start, profiled_stream));
}
static void profile_end(const char* name) {
    timed_calls[num_timed_calls].name = name;
    cudaCheck(cudaEventRecord(timed_calls[num_timed_calls].end, profiled_stream));
    num_timed_calls++;
}
#define PROFILED(name, call) do { profile_begin(); call; profile_end(name); } while (0)

// every launcher model_cuda.cu calls (a macro does not expand inside its own expansion, so
// the call inside is the real function)
#define embeddings_forward_cuda(...) PROFILED("embeddings_forward", embeddings_forward_cuda(__VA_ARGS__))
#define embeddings_backward_cuda(...) PROFILED("embeddings_backward", embeddings_backward_cuda(__VA_ARGS__))
#define layernorm_forward_cuda(...) PROFILED("layernorm_forward", layernorm_forward_cuda(__VA_ARGS__))
#define layernorm_backward_cuda(...) PROFILED("layernorm_backward", layernorm_backward_cuda(__VA_ARGS__))
#define residual_layernorm_forward_cuda(...) PROFILED("residual_layernorm_forward", residual_layernorm_forward_cuda(__VA_ARGS__))
#define residual_layernorm_backward_cuda(...) PROFILED("residual_layernorm_backward", residual_layernorm_backward_cuda(__VA_ARGS__))
#define layernorm_recompute_cuda(...) PROFILED("layernorm_recompute", layernorm_recompute_cuda(__VA_ARGS__))
#define gelu_forward_cuda(...) PROFILED("gelu_forward", gelu_forward_cuda(__VA_ARGS__))
#define gelu_backward_bias_cuda(...) PROFILED("gelu_backward_bias", gelu_backward_bias_cuda(__VA_ARGS__))
#define linear_forward_cuda(...) PROFILED("linear_forward", linear_forward_cuda(__VA_ARGS__))
#define linear_backward_cuda(...) PROFILED("linear_backward", linear_backward_cuda(__VA_ARGS__))
#define attention_forward_cuda(...) PROFILED("attention_forward", attention_forward_cuda(__VA_ARGS__))
#define attention_backward_cuda(...) PROFILED("attention_backward", attention_backward_cuda(__VA_ARGS__))
#define flash_attention_forward_cuda(...) PROFILED("flash_attention_forward", flash_attention_forward_cuda(__VA_ARGS__))
#define flash_attention_backward_cuda(...) PROFILED("flash_attention_backward", flash_attention_backward_cuda(__VA_ARGS__))
#define matmul_cuda(...) PROFILED("classifier_matmul", matmul_cuda(__VA_ARGS__))
#define bias_broadcast_cuda(...) PROFILED("bias_broadcast", bias_broadcast_cuda(__VA_ARGS__))
#define segment_means_forward_cuda(...) PROFILED("segment_means_forward", segment_means_forward_cuda(__VA_ARGS__))
#define segment_means_backward_cuda(...) PROFILED("segment_means_backward", segment_means_backward_cuda(__VA_ARGS__))
#define cosine_score_forward_cuda(...) PROFILED("cosine_score_forward", cosine_score_forward_cuda(__VA_ARGS__))
#define cosine_score_backward_cuda(...) PROFILED("cosine_score_backward", cosine_score_backward_cuda(__VA_ARGS__))
#define float_to_bf16_cuda(...) PROFILED("float_to_bf16", float_to_bf16_cuda(__VA_ARGS__))
#define cls_gather_forward_cuda(...) PROFILED("cls_gather_forward", cls_gather_forward_cuda(__VA_ARGS__))
#define cls_gather_backward_cuda(...) PROFILED("cls_gather_backward", cls_gather_backward_cuda(__VA_ARGS__))
#define tanh_forward_cuda(...) PROFILED("tanh_forward", tanh_forward_cuda(__VA_ARGS__))
#define tanh_backward_inplace_cuda(...) PROFILED("tanh_backward", tanh_backward_inplace_cuda(__VA_ARGS__))
#define meanpool_forward_cuda(...) PROFILED("meanpool_forward", meanpool_forward_cuda(__VA_ARGS__))
#define meanpool_backward_cuda(...) PROFILED("meanpool_backward", meanpool_backward_cuda(__VA_ARGS__))
#define global_norm_squared_cuda(...) PROFILED("global_norm_squared", global_norm_squared_cuda(__VA_ARGS__))
#define clip_cuda(...) PROFILED("clip", clip_cuda(__VA_ARGS__))
#define adamw_update_cuda(...) PROFILED("adamw_update", adamw_update_cuda(__VA_ARGS__))
#include "kernels/model_cuda.cu"
#include "dev/cuda/common.h"
#include "dev/cuda/bert_common.h"

typedef struct { const char* name; int calls; double ms; } LauncherTotal;

static bool by_time(const LauncherTotal& x, const LauncherTotal& y) { return x.ms > y.ms; }

// one step of the model on the batch, profiled: prints the table and checks its sums
static void profile_step(const char* what, BertModelCuda* gpu, const int* ids, const int* types, const int* seq_starts,
                         int S, const float* dlogits, int step) {
    cudaEvent_t step_start, step_end;
    cudaCheck(cudaEventCreate(&step_start));
    cudaCheck(cudaEventCreate(&step_end));
    num_timed_calls = 0;
    cudaCheck(cudaEventRecord(step_start, gpu->stream));
    bert_cuda_forward(gpu, ids, types, seq_starts, S);
    bert_cuda_zero_grad(gpu);
    bert_cuda_backward(gpu, dlogits, NULL);
    bert_cuda_clip_grad_norm(gpu, 1.0f);
    bert_cuda_adamw_update(gpu, 1e-5f, 1.0f, 1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
    cudaCheck(cudaEventRecord(step_end, gpu->stream));
    cudaCheck(cudaEventSynchronize(step_end));
    float step_ms;
    cudaCheck(cudaEventElapsedTime(&step_ms, step_start, step_end));

    LauncherTotal totals[64];
    int num_totals = 0;
    double timed_ms = 0.0;
    for (int i = 0; i < num_timed_calls; i++) {
        float ms;
        cudaCheck(cudaEventElapsedTime(&ms, timed_calls[i].start, timed_calls[i].end));
        int k = 0;
        while (k < num_totals && strcmp(totals[k].name, timed_calls[i].name) != 0) { k++; }
        if (k == num_totals) {
            LauncherTotal fresh = { timed_calls[i].name, 0, 0.0 };
            totals[num_totals++] = fresh;
        }
        totals[k].calls++;
        totals[k].ms += ms;
        timed_ms += ms;
    }
    std::sort(totals, totals + num_totals, by_time);
    printf("profile_step %s: %.3f ms, %d launches of %d launchers\n", what, step_ms, num_timed_calls, num_totals);
    printf("  %-26s %6s %10s %7s\n", "launcher", "calls", "ms", "share");
    double shares = 0.0;
    for (int k = 0; k < num_totals; k++) {
        double share = 100.0 * totals[k].ms / step_ms;
        shares += share;
        printf("  %-26s %6d %10.3f %6.2f%%\n", totals[k].name, totals[k].calls, totals[k].ms, share);
    }
    double rest = step_ms - timed_ms, rest_share = 100.0 * rest / step_ms;
    printf("  %-26s %6s %10.3f %6.2f%%  (memsets, copies, the host's work between launches)\n", "rest", "", rest,
           rest_share);
    shares += rest_share;
    // the events nest, so the launchers' sum stays under the step's (1e-3 relative: each
    // elapsed time is rounded to the events' resolution, about half a microsecond)
    int ok = timed_ms <= step_ms * (1.0 + 1e-3) + 1e-3 * num_timed_calls && num_timed_calls > 0 && fabs(shares - 100.0) < 1e-6;
    printf("  shares sum to %.4f%%; the launchers' %.3f ms %s the step's %.3f ms: %s\n", shares, timed_ms,
           ok ? "within" : "EXCEED", step_ms, ok ? "OK" : "FAIL");
    if (!ok) { exit(EXIT_FAILURE); }
    cudaCheck(cudaEventDestroy(step_start));
    cudaCheck(cudaEventDestroy(step_end));
}

int main(void) {
    double bandwidth, tflops;
    print_ceilings(&bandwidth, &tflops);
    matmul_setup();
    for (int i = 0; i < MAX_TIMED_CALLS; i++) {
        cudaCheck(cudaEventCreate(&timed_calls[i].start));
        cudaCheck(cudaEventCreate(&timed_calls[i].end));
    }
    int seq_starts[BENCH_MAX_S + 1], max_T;
    int N = bench_batch(seq_starts, &max_T), S = bench_S;
    int* ids = (int*)malloc(N * sizeof(int));
    int* types = (int*)malloc(N * sizeof(int));
    float* dlogits = make_random(S, 1.0f);
    const char* names[3] = {"2 layers C=384 (small)", "minilm-l6", "bert-base"};
    const int layers[3] = {2, 6, 12}, widths[3] = {384, 384, 768}, vocab[3] = {1000, 30522, 30522};
    const Precision precisions[2] = {PRECISION_FP32, PRECISION_BF16};
    for (int k = small_shapes() ? 0 : 1; k < (small_shapes() ? 1 : 3); k++) {
        for (Precision precision : precisions) {
            BertConfig config = bert_config(layers[k], widths[k], vocab[k]);
            BertModel cpu;  // only for its random initialisation and parameter layout
            BertModelCuda gpu;
            build_pair(&cpu, &gpu, &config, precision);
            random_batch(ids, types, seq_starts, S, config.vocab_size);
            profiled_stream = gpu.stream;
            char what[128];
            snprintf(what, sizeof(what), "%s %s, %d tokens in %d sequences (warm-up step)", names[k],
                     precision_name(precision), N, S);
            profile_step(what, &gpu, ids, types, seq_starts, S, dlogits, 1);
            snprintf(what, sizeof(what), "%s %s, %d tokens in %d sequences", names[k], precision_name(precision), N, S);
            profile_step(what, &gpu, ids, types, seq_starts, S, dlogits, 2);
            bert_cuda_free(&gpu);
            bert_free(&cpu);
        }
    }
    for (int i = 0; i < MAX_TIMED_CALLS; i++) {
        cudaCheck(cudaEventDestroy(timed_calls[i].start));
        cudaCheck(cudaEventDestroy(timed_calls[i].end));
    }
    matmul_teardown();
    free(ids); free(types); free(dlogits);
    printf("profile_step: done\n");
    return 0;
}
